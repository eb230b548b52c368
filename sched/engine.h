/* engine.h — the serving engine: a continuous-batching scheduler over one
 * loaded model. Requests are submitted from any thread; one scheduler thread
 * runs iteration-level steps (every running decode plus prefill chunks of new
 * requests, up to a token budget, in one sw_model_forward), streams tokens back
 * through each request's callback, shares full KV blocks between requests with
 * the same token prefix (prefix cache), and preempts the youngest sequence by
 * recompute when the paged KV cache runs out.
 *
 * Threading: every function here may be called from any thread, including from
 * inside an event callback — except sw_engine_free, which must not be called
 * from a callback (it joins the thread that runs callbacks). Callbacks run on
 * the scheduler thread, one at a time, never under an engine lock; a slow
 * callback slows every stream, so hand work off quickly.
 *
 * Event order per request: one SW_EVENT_HIDDEN event when the request asked
 * for its prompt's hidden states (before any token; none when it ends before
 * its prefill does), zero or more SW_EVENT_TOKEN events, then exactly one
 * SW_EVENT_FINAL event; after the final event the engine never touches the
 * request's user pointer again. Concatenating the text of all events of a
 * request (token and final) gives the completion text.
 *
 * Hidden states (sw_request.hidden): the model's final hidden state after the
 * output norm, i.e. the vector the output matrix turns into logits, taken
 * from the prefill that runs anyway. SW_HIDDEN_LAST gives the last prompt
 * token's (the one whose logits give the first generated token); SW_HIDDEN_MEAN
 * gives the mean over all prompt positions (for embeddings), or over a span
 * of them (sw_request.hidden_begin/end). A position's
 * state depends only on the tokens up to it, so a cached prefix block's
 * states are those of any prompt that shares the prefix: from the first mean
 * request on (prefix cache on), every prefill records the hidden-state sum of
 * each prompt block it completes, keyed by the block's chain hash, and a mean
 * request takes cached blocks whose sum is recorded (blocks cached before
 * that are computed again).
 * With no_generate the request ends after its prefill (events: HIDDEN, then
 * FINAL with reason length and 0 completion tokens), and its prompt may fill
 * the whole context.
 *
 * Encoders (bert: sw_model_config.causal false, embed_only): every request
 * must be no_generate; each prompt is computed whole in one step (so it may
 * have at most max_batch_tokens tokens) and the prefix cache is off (a
 * block's K/V depends on the tokens after it). Requests are still batched:
 * many prompts share a step. */
#ifndef SW_ENGINE_H
#define SW_ENGINE_H

#include "model.h"
#include "sampler.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_engine sw_engine;

#define SW_ENGINE_DEFAULT_CTX 8192                  /* n_ctx when not given */
#define SW_ENGINE_DEFAULT_KV_BYTES (2ull << 30)     /* KV budget cap: CPU or no mem info */

typedef struct sw_engine_params {
    /* KV cache. n_blocks > 0 wins; else kv_memory_bytes > 0; else the default:
     * room for max_running sequences of n_ctx tokens, capped at half the
     * device's free memory when the backend reports it (and at
     * SW_ENGINE_DEFAULT_KV_BYTES on the CPU or when it cannot tell), and never
     * less than one n_ctx sequence. */
    int32_t kv_block_size;    /* tokens per block; <= 0: 16 */
    int32_t kv_n_blocks;
    uint64_t kv_memory_bytes; /* --kv-memory */
    bool kv_f32;              /* store K/V as f32 instead of the default f16 */
    /* Scheduling. */
    int32_t max_batch_tokens; /* token budget per step; <= 0: 512 */
    int32_t max_running;      /* sequences holding KV at once; <= 0: 64; clamped
                                 to max_batch_tokens so every decode fits a step */
    int32_t max_queued;       /* waiting requests before submit says SW_E_BUSY; <= 0: 1024 */
    int32_t n_ctx;            /* tokens per sequence (prompt + generated); <= 0:
                                 min(model's training context, SW_ENGINE_DEFAULT_CTX).
                                 Clamped to the training context and to the KV
                                 cache's capacity (a sequence must fit alone). */
    bool no_prefix_cache;     /* disable sharing of full prefix blocks */
    /* Sample every token from its whole row of logits, never from the device
     * summary (for tests and debugging: the results are the same). */
    bool full_logits;
} sw_engine_params;

/* Fill p with the defaults above (all zero is also valid and means the same). */
void sw_engine_params_default(sw_engine_params *p);

/* ---- requests ---- */

typedef enum sw_event_type {
    SW_EVENT_TOKEN = 0, /* one generated token */
    SW_EVENT_FINAL,     /* the request is over; exactly one per request */
    SW_EVENT_HIDDEN,    /* the prompt's final hidden states (sw_request.hidden) */
} sw_event_type;

/* sw_request.hidden flags: which final hidden states of the prompt to deliver. */
#define SW_HIDDEN_LAST 1u /* the last prompt token's */
#define SW_HIDDEN_MEAN 2u /* the mean over all prompt positions */

typedef enum sw_finish_reason {
    SW_FINISH_NONE = 0, /* token events */
    SW_FINISH_STOP,     /* end-of-generation token, a stop token id, or a stop string */
    SW_FINISH_LENGTH,   /* max_tokens reached, or the sequence filled n_ctx */
    SW_FINISH_CANCELLED,/* sw_engine_cancel, or the engine was freed */
    SW_FINISH_ERROR,    /* see message */
} sw_finish_reason;

const char *sw_finish_reason_str(sw_finish_reason r); /* "stop", "length", ... */

typedef struct sw_usage {
    int32_t prompt_tokens;
    /* Sampled tokens, including a final stop token (which gets no token event). */
    int32_t completion_tokens;
    /* Prompt tokens whose KV came from the prefix cache at first admission. */
    int32_t cached_prompt_tokens;
} sw_usage;

typedef struct sw_event {
    sw_event_type type;
    uint64_t id;          /* the request id returned by sw_engine_submit */
    /* Text that became ready with this event: complete UTF-8, never part of a
     * stop string. May be empty (held back). Borrowed: valid only during the
     * callback. NUL-terminated; text_len excludes the NUL. */
    const char *text;
    size_t text_len;
    /* SW_EVENT_TOKEN: the token, its log-probability under the raw model
     * distribution, entropy, and n_top_logprobs alternatives. */
    sw_token_info token;
    /* SW_EVENT_FINAL only: */
    sw_finish_reason finish;
    const char *message;  /* error text, or which stop matched; "" otherwise. Borrowed. */
    sw_usage usage;
    /* SW_EVENT_HIDDEN only: n_embd floats each, after the output norm; NULL
     * when not asked for. Borrowed: valid only during the callback. */
    const float *hidden_last;
    const float *hidden_mean;
    int32_t n_embd;
    /* Monotonic seconds (sw_time_s clock); t_first_token is 0 when no token was
     * sampled. Valid in every event (t_finished only in the final one). */
    double t_queued, t_first_token, t_finished;
} sw_event;

typedef void (*sw_event_fn)(void *user, const sw_event *ev);

#define SW_MAX_TEXT_IDS 4

typedef struct sw_request {
    const int32_t *prompt;        /* [n_prompt] token ids, copied; n_prompt >= 1 */
    int32_t n_prompt;
    sw_sampler_params sampling;   /* copied; its n_top_logprobs is replaced by the field below */
    int32_t n_top_logprobs;       /* 0..SW_MAX_TOP_LOGPROBS alternatives per token event */
    /* <= 0: until the context is full (reason length at n_ctx). */
    int32_t max_tokens;
    const int32_t *stop_ids;      /* [n_stop_ids] extra stop tokens, copied */
    int32_t n_stop_ids;
    const char *const *stop_strings; /* [n_stop_strings] NUL-terminated, copied; "" ignored */
    int32_t n_stop_strings;
    bool ignore_eos;              /* do not stop on the model's end-of-generation tokens */
    /* JSON mode (OpenAI's response_format json_object): only tokens that keep
     * the output a prefix of one JSON object (whitespace, then an object) are
     * sampled, and the request finishes (stop) when the object closes. */
    bool json_object;
    unsigned hidden;              /* SW_HIDDEN_* flags; 0: no SW_EVENT_HIDDEN */
    /* SW_HIDDEN_MEAN over prompt positions [hidden_begin, hidden_end) only
     * (e.g. the user's query inside a chat prompt); both 0: every position.
     * Cached prefix blocks outside the span are taken without their states. */
    int32_t hidden_begin, hidden_end;
    bool no_generate;             /* prefill only, no token (e.g. embeddings) */
    /* Grammar-constrained output (JSON Schema, GBNF: grammar.h): only tokens
     * that keep the output a viable prefix of a sentence are sampled (exact
     * rejection sampling: see sw_sampler_sample_allowed), the end-of-generation
     * tokens and stop_ids only once the output is a complete sentence, and the
     * request finishes (stop) as soon as nothing can follow. Stop strings do not
     * apply: the grammar decides where the output ends. Borrowed: the engine
     * keeps its own reference until the final event. NULL: unconstrained. */
    struct sw_grammar *grammar;
    /* Control tokens this request may write as their vocabulary text (e.g.
     * Mistral's [TOOL_CALLS], a tool-call marker): the grammar matches that
     * text and the output includes it; other control tokens render as nothing. */
    int32_t text_ids[SW_MAX_TEXT_IDS];
    int32_t n_text_ids;           /* 0..SW_MAX_TEXT_IDS */
    sw_event_fn on_event;         /* required */
    void *user;                   /* passed to on_event; borrowed until the final event */
} sw_request;

/* Create an engine over m (borrowed: must outlive the engine; one engine per
 * model, since the forward pass keeps per-model scratch). Creates the KV cache,
 * starts the scheduler thread, and logs the cache size in blocks, tokens and
 * bytes. p may be NULL for defaults. */
sw_status sw_engine_create(sw_model *m, const sw_engine_params *p, sw_engine **out, sw_err *err);

/* Stop the scheduler, cancel every request (each gets its final event with
 * reason cancelled, delivered before this returns), free everything.
 * NULL is a no-op. Not from inside a callback. */
void sw_engine_free(sw_engine *e);

/* Queue a request. Context rule: the prompt must leave room for at least one
 * generated token (n_prompt < n_ctx), and when max_tokens > 0 the whole
 * request must fit (n_prompt + max_tokens <= n_ctx); otherwise SW_E_RANGE with
 * a message giving both numbers (the server's context_length_exceeded).
 * SW_E_BUSY when max_queued requests already wait. SW_E_INVALID_ARG for an
 * empty prompt, a token id outside the vocabulary, no callback, or bad
 * sampling parameters. On success *id (optional) receives the request id and
 * the callback will receive exactly one final event. */
sw_status sw_engine_submit(sw_engine *e, const sw_request *req, uint64_t *id, sw_err *err);

/* Cancel a waiting or running request: its KV blocks are released at once and
 * its final event (reason cancelled) follows shortly on the scheduler thread.
 * SW_E_NOT_FOUND when the id is unknown or the request already finished. */
sw_status sw_engine_cancel(sw_engine *e, uint64_t id);

typedef struct sw_engine_stats {
    int32_t running;          /* sequences holding KV */
    int32_t waiting;          /* queued, including preempted ones */
    uint64_t preempted;       /* preemptions so far */
    int32_t kv_blocks_used;   /* blocks referenced by sequences */
    int32_t kv_blocks_cached; /* unreferenced blocks kept for the prefix cache */
    int32_t kv_blocks_total;
    int32_t kv_block_size;
    int32_t n_ctx;
    int32_t max_running, max_queued; /* the limits in force (for routing decisions) */
    /* Prefix cache, counted in full blocks looked up at admission. */
    uint64_t prefix_hits, prefix_misses;
    double prefix_hit_rate;   /* hits / (hits + misses), 0 when none */
    /* Throughput over the last ~10 s: prefill tokens computed (cache hits
     * excluded, recompute included) and tokens sampled. */
    double prompt_tok_s, gen_tok_s;
    uint64_t total_prompt_tokens, total_gen_tokens;
    uint64_t steps;           /* forward passes run */
    /* Grammar-constrained sampling: tokens sampled under a grammar, how many
     * of them needed the full vocabulary mask (the unconstrained draw was not
     * allowed), and the seconds spent in grammar work (checks and masks). */
    uint64_t grammar_tokens, grammar_masks;
    double grammar_seconds;
    /* Tokens drawn from a device summary of the logits, and from whole rows
     * (constrained decoding, samplers that need them, undecided summaries). */
    uint64_t sampled_from_summary, sampled_from_full;
    uint64_t requests_finished;
} sw_engine_stats;

void sw_engine_stats_get(sw_engine *e, sw_engine_stats *out);
/* The per-sequence context the engine enforces (after clamping). */
int32_t sw_engine_n_ctx(const sw_engine *e);

/* Check the KV bookkeeping invariants (every block free, referenced or
 * cached, reference counts consistent). For tests and debugging. */
sw_status sw_engine_check(sw_engine *e, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
