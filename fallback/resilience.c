/* resilience.c — retry schedule, Retry-After parsing, circuit breaker. */
#include "resilience.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void sw_retry_policy_default(sw_retry_policy *p) {
    p->max_attempts = 3;
    p->base_delay_s = 0.5;
    p->max_delay_s = 8.0;
    p->budget_s = 30.0;
}

bool sw_retry_status_retryable(long s) {
    return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 529;
}

bool sw_retry_next(const sw_retry_policy *p, int attempts_done, double elapsed_s,
                   double retry_after_s, double jitter_u, double *delay_s) {
    sw_retry_policy d;
    sw_retry_policy_default(&d);
    int max_attempts = p && p->max_attempts > 0 ? p->max_attempts : d.max_attempts;
    double base = p && p->base_delay_s > 0 ? p->base_delay_s : d.base_delay_s;
    double cap = p && p->max_delay_s > 0 ? p->max_delay_s : d.max_delay_s;
    double budget = p && p->budget_s > 0 ? p->budget_s : d.budget_s;
    if (jitter_u < 0) jitter_u = 0;
    if (jitter_u >= 1) jitter_u = 0.999999;
    double delay;
    if (retry_after_s >= 0) {
        delay = retry_after_s;
    } else {
        int n = attempts_done < 1 ? 1 : attempts_done;
        double exp = base * ldexp(1.0, n > 60 ? 60 : n - 1);
        double c = exp < cap ? exp : cap;
        delay = c / 2 + jitter_u * c / 2;
    }
    if (delay_s) *delay_s = delay;
    if (attempts_done >= max_attempts) return false;
    return elapsed_s + delay <= budget;
}

double sw_retry_after_parse(const char *v, time_t now) {
    if (!v) return -1;
    while (*v == ' ' || *v == '\t') v++;
    if (!*v) return -1;
    if (isdigit((unsigned char)*v)) {
        char *end;
        double s = strtod(v, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (*end || !(s >= 0) || s > 1e7) return -1;
        return s;
    }
    /* HTTP-date in its three historical forms (RFC 7231 7.1.1.1); GMT always. */
    static const char *forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                  "%a %b %e %H:%M:%S %Y"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(v, forms[i], &tm);
        if (!end) continue;
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (*end) continue;
        time_t t = timegm(&tm);
        if (t == (time_t)-1) return -1;
        double d = difftime(t, now);
        return d > 0 ? d : 0;
    }
    return -1;
}

/* ---- circuit breaker ------------------------------------------------------------ */

struct sw_breaker {
    pthread_mutex_t mu;
    int threshold;
    double cooldown_s;
    sw_clock_fn clock;
    void *clock_user;
    sw_breaker_state state;
    int failures;        /* consecutive */
    double opened_at;    /* when it last went open */
    double probe_at;     /* when the half-open probe was granted */
    uint64_t opened_count;
};

const char *sw_breaker_state_str(sw_breaker_state s) {
    switch (s) {
    case SW_BREAKER_CLOSED: return "closed";
    case SW_BREAKER_OPEN: return "open";
    case SW_BREAKER_HALF_OPEN: return "half_open";
    }
    return "?";
}

static double default_clock(void *user) {
    (void)user;
    return sw_time_s();
}

sw_status sw_breaker_create(int failure_threshold, double cooldown_s, sw_clock_fn clock,
                            void *clock_user, sw_breaker **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_breaker_create: out is NULL");
    *out = NULL;
    sw_breaker *b = calloc(1, sizeof *b);
    if (!b) return sw_err_set(err, SW_E_NOMEM, "sw_breaker_create: out of memory");
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return sw_err_set(err, SW_E_INTERNAL, "sw_breaker_create: pthread_mutex_init failed");
    }
    b->threshold = failure_threshold > 0 ? failure_threshold : 5;
    b->cooldown_s = cooldown_s > 0 ? cooldown_s : 30.0;
    b->clock = clock ? clock : default_clock;
    b->clock_user = clock_user;
    *out = b;
    return SW_OK;
}

void sw_breaker_free(sw_breaker *b) {
    if (!b) return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Under the lock: may a call go now, and if `take`, claim the probe. */
static bool allow_locked(sw_breaker *b, bool take) {
    double now = b->clock(b->clock_user);
    switch (b->state) {
    case SW_BREAKER_CLOSED: return true;
    case SW_BREAKER_OPEN:
        if (now - b->opened_at < b->cooldown_s) return false;
        if (take) {
            b->state = SW_BREAKER_HALF_OPEN;
            b->probe_at = now;
        }
        return true;
    case SW_BREAKER_HALF_OPEN:
        /* A probe that never reported is presumed lost: grant a new one. */
        if (now - b->probe_at < b->cooldown_s) return false;
        if (take) b->probe_at = now;
        return true;
    }
    return false;
}

bool sw_breaker_allow(sw_breaker *b) {
    if (!b) return true;
    pthread_mutex_lock(&b->mu);
    bool ok = allow_locked(b, true);
    pthread_mutex_unlock(&b->mu);
    return ok;
}

bool sw_breaker_would_allow(sw_breaker *b) {
    if (!b) return true;
    pthread_mutex_lock(&b->mu);
    bool ok = allow_locked(b, false);
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void sw_breaker_success(sw_breaker *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->state = SW_BREAKER_CLOSED;
    b->failures = 0;
    pthread_mutex_unlock(&b->mu);
}

void sw_breaker_failure(sw_breaker *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->failures++;
    /* A failed probe re-opens at once; in closed, the threshold decides. A
     * failure reported while already open (a call that started before it
     * opened) does not extend the cool-down. */
    if (b->state == SW_BREAKER_HALF_OPEN ||
        (b->state == SW_BREAKER_CLOSED && b->failures >= b->threshold)) {
        b->state = SW_BREAKER_OPEN;
        b->opened_at = b->clock(b->clock_user);
        b->opened_count++;
    }
    pthread_mutex_unlock(&b->mu);
}

void sw_breaker_info_get(sw_breaker *b, sw_breaker_info *out) {
    memset(out, 0, sizeof *out);
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    out->state = b->state;
    out->consecutive_failures = b->failures;
    out->opened_count = b->opened_count;
    if (b->state == SW_BREAKER_OPEN) {
        double left = b->cooldown_s - (b->clock(b->clock_user) - b->opened_at);
        out->open_remaining_s = left > 0 ? left : 0;
    }
    pthread_mutex_unlock(&b->mu);
}
