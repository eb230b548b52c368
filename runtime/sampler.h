/* sampler.h — token sampling from logits: greedy, temperature, top-k, top-p,
 * min-p, repetition/presence/frequency penalties, logit bias, seeded RNG. For every
 * sampled token it reports the log-probability, the top-n alternatives and the
 * entropy of the model's distribution (log_softmax of the raw logits, before
 * penalties and temperature) — what the confidence monitor and OpenAI's
 * logprobs need. */
#ifndef SW_SAMPLER_H
#define SW_SAMPLER_H

#include "backend.h"
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

/* ---- sampling from a logits summary (sampling on the device) ----
 * A backend can summarize a row of logits on the device (sw_be_logits_summary:
 * the row's statistics and its k best tokens), so that only those numbers
 * cross the bus. sw_sampler_sample_summary draws from such a summary exactly
 * what sw_sampler_sample draws from the full row (same token, same RNG state
 * after, the same reported logprobs up to how the backend computed log Z: bit
 * for bit with the host summary of runtime/logits.c) whenever the summary
 * decides the draw, and otherwise leaves the sampler untouched and returns
 * SW_E_RANGE: then sample from the full row. */

/* Most candidates sw_sampler_summary_k asks for; room kept for penalties and
 * bans that push candidates down; candidates for top-p / min-p without top-k. */
#define SW_SAMPLER_SUMMARY_MAX_K 256
#define SW_SAMPLER_SUMMARY_SLACK 16
#define SW_SAMPLER_SUMMARY_NUCLEUS 64

/* Whether no summary can decide this sampler's draws, so it needs the full row:
 * a positive logit bias or a penalty that can raise a logit (repeat_penalty < 1,
 * negative presence / frequency penalty), a temperature draw over the whole
 * vocabulary (no top_k, top_p or min_p), penalties or biases without top_k
 * (the nucleus needs the transformed normaliser), or a top_k beyond what a
 * summary holds. Grammar masks are the caller's to add (engine.c). */
bool sw_sampler_needs_full_logits(const sw_sampler *s);
/* Candidates a summary should carry for this sampler's next draw. */
int32_t sw_sampler_summary_k(const sw_sampler *s);
/* Sample from a summary of the raw logits: st, and the k best tokens ids[0..k)
 * with their raw logits in the order logit descending, id ascending (as
 * sw_be_logits_summary gives them). SW_E_RANGE (nothing changed) when the
 * summary does not decide the draw. */
sw_status sw_sampler_sample_summary(sw_sampler *s, const sw_logits_stats *st,
                                    const int32_t *ids, const float *logits, int32_t k,
                                    sw_token_info *out, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
