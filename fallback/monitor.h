/* monitor.h — the confidence monitor. The local model's answer is judged by
 * the numbers the sampler reports for every token: log-probability of the
 * sampled token and entropy of the distribution (raw model, before
 * temperature). Two ways to use it:
 *
 *  - Probe window (streaming, and non-streaming that wants an early verdict):
 *    the first probe_tokens tokens are held back from the client (the monitor
 *    keeps their text); when the window is full the statistics are compared
 *    with the thresholds and the verdict is PASS (release the held text, stream
 *    the rest as it comes) or ESCALATE (cancel local work, ask the cloud).
 *    An answer that ends inside the window is judged on what it has.
 *  - Whole answer (non-streaming): feed every token, judge at the end.
 *
 * Two ways to judge (params.cloud_share says which):
 *  - Self-calibrating (the default): the window's score, 1 - exp(mean
 *    logprob) (one minus the geometric-mean token probability), goes to a
 *    sw_share_ctl (sw_monitor_set_budget) that escalates the answers whose
 *    score is in the top cloud_share of recent traffic. A model's confidence
 *    has its own scale (a fixed threshold that suits one model never fires on
 *    another); a share does not. The controller is warm-started from a weak
 *    prior (sw_monitor_share_prior) and adapts to the traffic.
 *  - Fixed thresholds (cloud_share NaN): escalate when ANY enabled check
 *    fails: mean logprob below min_mean_logprob, share of tokens with
 *    p < low_prob above max_low_share, mean entropy above max_mean_entropy.
 * Either way fewer than min_tokens tokens always pass (one or two tokens say
 * too little to overrule the local model) and are not scored.
 *
 * A sw_monitor belongs to one request and is not thread-safe; feed it from the
 * engine's event callback. */
#ifndef SW_MONITOR_H
#define SW_MONITOR_H

#include "share.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_monitor_params {
    bool enabled;             /* false: every request passes without probing */
    int32_t probe_tokens;     /* window size; <= 0: 16 */
    int32_t min_tokens;       /* below this many tokens, always pass; default 4 */
    float low_prob;           /* a token with p < low_prob is "low"; default 0.1 */
    /* Self-calibrating: escalate this share of the scored answers, in [0, 1];
     * default SW_MONITOR_DEFAULT_SHARE; NaN: the fixed thresholds judge. */
    float cloud_share;
    /* Fixed thresholds; a NaN disables that check (all NaN by default). */
    float min_mean_logprob;   /* e.g. -2.0 (geometric-mean p ~ 0.14) */
    float max_low_share;      /* e.g. 0.4 */
    float max_mean_entropy;   /* nats, e.g. 3.0 */
} sw_monitor_params;

#define SW_MONITOR_DEFAULT_SHARE 0.1f

void sw_monitor_params_default(sw_monitor_params *p);

/* The self-calibrating monitor's warm start: n (set) pseudo-scores of a weak,
 * model-agnostic prior (mean token surprisal spread evenly over 0.05..1.5
 * nats, as scores 1 - exp(-x)); each live score replaces one (share.h), so
 * after n answers the threshold is the traffic's own. Static storage. */
const double *sw_monitor_share_prior(int32_t *n);

/* The window's score from its mean logprob: 1 - exp(mean logprob), in [0, 1]. */
double sw_monitor_score(double mean_logprob);

typedef enum sw_monitor_verdict {
    SW_MONITOR_PROBING = 0, /* window not full yet: hold the text back */
    SW_MONITOR_PASS,        /* confident enough: release and stream */
    SW_MONITOR_ESCALATE,    /* low confidence: go to the cloud */
} sw_monitor_verdict;

const char *sw_monitor_verdict_str(sw_monitor_verdict v); /* "probing", "pass", "escalate" */

typedef struct sw_monitor_stats {
    sw_monitor_verdict verdict;
    int32_t n_tokens;        /* tokens the verdict is based on */
    double mean_logprob;
    double low_share;        /* in [0, 1] */
    double mean_entropy;
    double score;            /* self-calibrating: the score judged; NaN otherwise */
    /* Which check failed ("mean_logprob", "low_share", "mean_entropy",
     * "cloud_share"), or "" */
    const char *failed_check;
} sw_monitor_stats;

typedef enum sw_monitor_mode {
    SW_MONITOR_WINDOW = 0, /* verdict when the probe window fills */
    SW_MONITOR_WHOLE,      /* verdict only at sw_monitor_finish */
} sw_monitor_mode;

typedef struct sw_monitor sw_monitor;

/* p is copied (NULL: defaults). */
sw_status sw_monitor_create(const sw_monitor_params *p, sw_monitor_mode mode, sw_monitor **out,
                            sw_err *err);
void sw_monitor_free(sw_monitor *m); /* NULL is a no-op */
/* The budget of a self-calibrating monitor (borrowed; shared by every
 * request's monitor). Without one, a monitor whose params have a cloud_share
 * passes every answer (nothing to compare its score with). */
void sw_monitor_set_budget(sw_monitor *m, sw_share_ctl *budget);

/* One sampled token: its logprob, entropy, and the text that became ready with
 * it (borrowed; may be empty). While the verdict is PROBING the text is kept
 * in the hold buffer; afterwards it is not (the caller streams it directly).
 * Returns the verdict after this token; once PASS or ESCALATE it stays. */
sw_monitor_verdict sw_monitor_feed(sw_monitor *m, float logprob, float entropy, const char *text,
                                   size_t text_len);
/* Text that is not a token (e.g. the final event's flush): held while probing. */
sw_status sw_monitor_hold_text(sw_monitor *m, const char *text, size_t len, sw_err *err);
/* The answer ended: decide if still undecided (window not full / whole mode). */
sw_monitor_verdict sw_monitor_finish(sw_monitor *m);

sw_monitor_verdict sw_monitor_verdict_get(const sw_monitor *m);
/* The held text (borrowed, NUL-terminated, valid until the next feed/free) */
const char *sw_monitor_held(const sw_monitor *m, size_t *len);
/* Statistics the verdict was based on (or the running ones while probing). */
void sw_monitor_stats_get(const sw_monitor *m, sw_monitor_stats *out);
/* Render stats as a JSON object for response metadata, e.g.
 * {"verdict":"pass","tokens":16,"mean_logprob":-0.42,"low_share":0.0625,
 *  "mean_entropy":0.91,"score":0.343}. Returns a malloc'd string (caller
 * frees) or NULL. */
char *sw_monitor_stats_json(const sw_monitor_stats *s);

/* One-shot judge over a whole answer (arrays of n borrowed values) by the
 * fixed thresholds (it has no budget: a cloud_share is ignored). */
sw_monitor_verdict sw_monitor_judge(const sw_monitor_params *p, const float *logprobs,
                                    const float *entropies, size_t n, sw_monitor_stats *out);

#ifdef __cplusplus
}
#endif
#endif
