/* resilience.h — what keeps a flaky cloud provider from hurting us: a
 * retry schedule (exponential backoff with jitter, Retry-After honoured,
 * bounded attempts and total time) and a per-provider circuit breaker.
 *
 * Both take their clock (and the schedule its randomness) from the caller so
 * that tests can drive them deterministically. */
#ifndef SW_RESILIENCE_H
#define SW_RESILIENCE_H

#include <time.h>

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- retry schedule ---------------------------------------------------------- */

typedef struct sw_retry_policy {
    int max_attempts;    /* total tries including the first; <= 0: 3 */
    double base_delay_s; /* first backoff; <= 0: 0.5 */
    double max_delay_s;  /* cap of one computed backoff; <= 0: 8 */
    double budget_s;     /* no retry may start later than this after the first
                            attempt began; <= 0: 30 */
} sw_retry_policy;

void sw_retry_policy_default(sw_retry_policy *p);

/* HTTP statuses worth retrying: 408, 429, 500, 502, 503, 504, 529 (Anthropic's
 * "overloaded"). Everything else (400, 401, 403, 404, 422...) will fail again. */
bool sw_retry_status_retryable(long http_status);

/* Decide whether to retry after attempt number `attempts_done` (1-based)
 * failed, `elapsed_s` after the first attempt began. retry_after_s < 0 means
 * the response had no Retry-After. jitter_u in [0, 1) is the random draw.
 * The delay is the provider's Retry-After when given (it knows best; not
 * capped by max_delay_s), else "equal jitter" backoff: half of
 * min(max, base * 2^(n-1)) plus a uniform share of the other half, so that
 * clients that failed together do not retry together. Returns false (no
 * retry) when attempts are used up or the delay would end past the budget;
 * *delay_s (optional) receives the delay either way. */
bool sw_retry_next(const sw_retry_policy *p, int attempts_done, double elapsed_s,
                   double retry_after_s, double jitter_u, double *delay_s);

/* Parse a Retry-After header value: delta-seconds ("120", fractional accepted)
 * or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", RFC 7231 IMF-fixdate, also
 * RFC 850 and asctime forms) relative to `now` (wall-clock seconds since the
 * epoch). Returns the delay in seconds (0 for a date in the past) or -1 when
 * the value is not understood. */
double sw_retry_after_parse(const char *value, time_t now);

/* ---- circuit breaker ---------------------------------------------------------- */

typedef enum sw_breaker_state {
    SW_BREAKER_CLOSED = 0, /* calls flow */
    SW_BREAKER_OPEN,       /* calls are refused until the cool-down ends */
    SW_BREAKER_HALF_OPEN,  /* one probe call is let through; its outcome decides */
} sw_breaker_state;

const char *sw_breaker_state_str(sw_breaker_state s); /* "closed", "open", "half_open" */

/* Returns monotonic seconds; NULL in sw_breaker_create means sw_time_s. */
typedef double (*sw_clock_fn)(void *user);

typedef struct sw_breaker sw_breaker;

/* Open after `failure_threshold` consecutive failures (<= 0: 5); stay open for
 * `cooldown_s` (<= 0: 30), then let one probe through (half-open). A probe that
 * never reports (caller crashed out, cancelled) is presumed failed after
 * another cool-down so the breaker cannot stick half-open. Thread-safe. */
sw_status sw_breaker_create(int failure_threshold, double cooldown_s, sw_clock_fn clock,
                            void *clock_user, sw_breaker **out, sw_err *err);
void sw_breaker_free(sw_breaker *b); /* NULL is a no-op */

/* May a call start now? Closed: yes. Open: no, unless the cool-down is over,
 * which moves to half-open and grants this caller the probe. Half-open: no
 * while the probe is out. A granted call must be followed by exactly one
 * sw_breaker_success or sw_breaker_failure. */
bool sw_breaker_allow(sw_breaker *b);
/* Would sw_breaker_allow say yes now? Changes nothing (for routing decisions
 * made ahead of the call). */
bool sw_breaker_would_allow(sw_breaker *b);
void sw_breaker_success(sw_breaker *b);
void sw_breaker_failure(sw_breaker *b);

typedef struct sw_breaker_info {
    sw_breaker_state state;
    int consecutive_failures;
    uint64_t opened_count;      /* times it went to open */
    double open_remaining_s;    /* cool-down left when open, else 0 */
} sw_breaker_info;
void sw_breaker_info_get(sw_breaker *b, sw_breaker_info *out);

#ifdef __cplusplus
}
#endif
#endif
