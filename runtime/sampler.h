/* sampler.h — token sampling from logits: greedy, temperature, top-k, top-p,
 * min-p, repetition/presence/frequency penalties, logit bias, seeded RNG. For every
 * sampled token it reports the log-probability, the top-n alternatives and the
 * entropy of the model's distribution (log_softmax of the raw logits, before
 * penalties and temperature) — what the confidence monitor and OpenAI's
 * logprobs need. */
#ifndef SW_SAMPLER_H
#define SW_SAMPLER_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenAI caps top_logprobs at 20; we keep the same bound. */
#define SW_MAX_TOP_LOGPROBS 20
/* Most logit_bias entries one request may carry. */
#define SW_MAX_LOGIT_BIAS 1024
/* A bias at or below this bans the token outright (OpenAI: -100 bans). */
#define SW_LOGIT_BIAS_BAN (-100.0f)

/* OpenAI's logit_bias: bias is added to token id's logit before penalties,
 * truncation and temperature; bias <= SW_LOGIT_BIAS_BAN bans the token. */
typedef struct sw_logit_bias {
    int32_t id;
    float bias; /* finite, in [-100, 100] */
} sw_logit_bias;

typedef struct sw_sampler_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off (llama.cpp semantics) */
    int32_t repeat_last_n;   /* window of history for all penalties; -1: all, 0: off */
    float presence_penalty;  /* 0: off (OpenAI semantics) */
    float frequency_penalty; /* 0: off */
    uint64_t seed;
    int32_t n_top_logprobs;  /* 0..SW_MAX_TOP_LOGPROBS alternatives reported */
    /* [n_logit_bias] (0..SW_MAX_LOGIT_BIAS); borrowed by sw_sampler_create,
     * which copies it. A token listed twice gets the sum. */
    const sw_logit_bias *logit_bias;
    int32_t n_logit_bias;
} sw_sampler_params;

void sw_sampler_params_default(sw_sampler_params *p); /* greedy off: temp 0.8, top_k 40, top_p 0.95, min_p 0.05 */

typedef struct sw_token_info {
    int32_t id;
    float logprob; /* log p(id) under the raw model distribution */
    float entropy; /* nats, of the raw model distribution */
    int32_t n_top;
    int32_t top_ids[SW_MAX_TOP_LOGPROBS];      /* most likely first */
    float top_logprobs[SW_MAX_TOP_LOGPROBS];
} sw_token_info;

typedef struct sw_sampler sw_sampler;

sw_status sw_sampler_create(const sw_sampler_params *p, int32_t n_vocab, sw_sampler **out,
                            sw_err *err);
void sw_sampler_free(sw_sampler *s);
/* Add a token to the history the penalties look at (prompt and generated). */
void sw_sampler_accept(sw_sampler *s, int32_t id);
void sw_sampler_reset(sw_sampler *s); /* clear history, re-seed */
/* Sample from logits[n_vocab] (not modified). */
sw_status sw_sampler_sample(sw_sampler *s, const float *logits, sw_token_info *out, sw_err *err);
/* The same with a mask: only ids with allow[id] != 0 can be drawn (allow NULL:
 * all). The reported logprob, alternatives and entropy are still those of the
 * unmasked model distribution. SW_E_INVALID_ARG when the mask and the logit
 * bias's bans leave no token. */
sw_status sw_sampler_sample_masked(sw_sampler *s, const float *logits, const uint8_t *allow,
                                   sw_token_info *out, sw_err *err);
/* The draw sw_sampler_sample would make, restricted to allowed tokens:
 * top-k, top-p and min-p truncate over the whole vocabulary, then the
 * disallowed candidates are dropped and the rest renormalized (greedy: the
 * argmax if allowed); only when no candidate is allowed is the truncation
 * redone over the allowed tokens (as sw_sampler_sample_masked). So drawing
 * unmasked first and, when that token is not allowed, drawing again with this
 * (rejection sampling) samples exactly this distribution: constrained
 * decoding needs the full mask only after a rejection. */
sw_status sw_sampler_sample_allowed(sw_sampler *s, const float *logits, const uint8_t *allow,
                                    sw_token_info *out, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
