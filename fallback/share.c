/* share.c — sliding-window quantile controller for the cloud share (share.h). */
#include "share.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sw_share_ctl {
    pthread_mutex_t mu;
    double share;
    int32_t cap;     /* window size */
    int32_t n;       /* scores in the window */
    int32_t head;    /* ring: the oldest score when full */
    double *ring;    /* [cap] in arrival order */
    double *sorted;  /* [n] ascending */
    int32_t n_warm;  /* warm-start scores still in the window (the oldest) */
    double debt;     /* share x decisions - cloud decisions, within +-SW_SHARE_FEEDBACK */
    uint64_t decided, cloud;
};

static double clamp(double x, double lo, double hi) { return fmin(fmax(x, lo), hi); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* first index whose value is >= v (upper: > v) */
static int32_t bound(const double *a, int32_t n, double v, bool upper) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (a[mid] < v || (upper && a[mid] == v)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int32_t lower_bound(const double *a, int32_t n, double v) { return bound(a, n, v, false); }

static void sorted_insert(sw_share_ctl *c, double v) {
    int32_t i = lower_bound(c->sorted, c->n, v);
    memmove(c->sorted + i + 1, c->sorted + i, (size_t)(c->n - i) * sizeof *c->sorted);
    c->sorted[i] = v;
    c->n++;
}

static void sorted_remove(sw_share_ctl *c, double v) {
    int32_t i = lower_bound(c->sorted, c->n, v);
    if (i >= c->n || c->sorted[i] != v) return; /* cannot happen */
    memmove(c->sorted + i, c->sorted + i + 1, (size_t)(c->n - i - 1) * sizeof *c->sorted);
    c->n--;
}

/* Add a score; the oldest leaves when the window is full, and while warm
 * scores remain a live one replaces the oldest of them. */
static void push(sw_share_ctl *c, double v, bool warm) {
    if (c->n == c->cap || (!warm && c->n_warm > 0)) {
        sorted_remove(c, c->ring[c->head]);
        c->head = (c->head + 1) % c->cap;
        if (c->n_warm > 0) c->n_warm--;
    }
    c->ring[(c->head + c->n) % c->cap] = v; /* sorted_insert counts it */
    sorted_insert(c, v);
    if (warm) c->n_warm++;
}

sw_status sw_share_ctl_create(double share, int32_t window, const double *warm, int32_t n_warm,
                              sw_share_ctl **out, sw_err *err) {
    *out = NULL;
    if (!(share >= 0.0 && share <= 1.0))
        return sw_err_set(err, SW_E_INVALID_ARG, "cloud share %g must be in [0, 1]", share);
    if (window <= 0) window = SW_SHARE_DEFAULT_WINDOW;
    sw_share_ctl *c = calloc(1, sizeof *c);
    if (!c) return sw_err_set(err, SW_E_NOMEM, "out of memory for the share controller");
    c->share = share;
    c->cap = window;
    c->ring = malloc((size_t)window * sizeof *c->ring);
    c->sorted = malloc((size_t)window * sizeof *c->sorted);
    double *w = n_warm > 0 ? malloc((size_t)n_warm * sizeof *w) : NULL;
    if (!c->ring || !c->sorted || (n_warm > 0 && !w)) {
        free(w);
        sw_share_ctl_free(c);
        return sw_err_set(err, SW_E_NOMEM, "out of memory for a window of %d scores", window);
    }
    pthread_mutex_init(&c->mu, NULL);
    int32_t m = 0;
    for (int32_t i = 0; i < n_warm; i++)
        if (isfinite(warm[i])) w[m++] = warm[i];
    if (m > 0) qsort(w, (size_t)m, sizeof *w, cmp_double);
    /* k evenly spaced quantiles of the warm set, pushed in a fixed shuffled
     * order (stride p, coprime with k) so that as live scores push the oldest
     * out, the window's warm part keeps the training distribution's shape */
    int32_t k = SW_MIN(m, window);
    int64_t p = k % 7919 ? 7919 : 1;
    for (int32_t i = 0; i < k; i++) {
        int64_t j = ((int64_t)i * p) % k;
        push(c, w[(j * m + m / 2) / k], true);
    }
    free(w);
    *out = c;
    return SW_OK;
}

void sw_share_ctl_free(sw_share_ctl *c) {
    if (!c) return;
    if (c->ring && c->sorted) pthread_mutex_destroy(&c->mu);
    free(c->ring);
    free(c->sorted);
    free(c);
}

/* The share aimed at for the next decision: the target plus the shortfall
 * spread over SW_SHARE_FEEDBACK decisions. Under the lock. */
static double aim(const sw_share_ctl *c) {
    return clamp(c->share + c->debt / SW_SHARE_FEEDBACK, 0.0, 1.0);
}

/* How many of the window's scores may lie above a score that goes to the
 * cloud: those with fewer than slots - 1/2 above (ties at their middle). */
static double slots(const sw_share_ctl *c) { return aim(c) * (c->n + 1); }

/* Under the lock: the lowest score (exclusive) that goes to the cloud now. */
static double threshold(const sw_share_ctl *c) {
    if (c->n == 0) return NAN;
    /* a score above sorted[i] has at most n - 1 - i above it */
    int32_t k = (int32_t)ceil(slots(c) - 0.5) - 1; /* most allowed above */
    if (k < 0) return INFINITY;
    if (k >= c->n) return -INFINITY;
    return c->sorted[c->n - 1 - k];
}

bool sw_share_ctl_decide(sw_share_ctl *c, double score) {
    if (isnan(score)) return false;
    pthread_mutex_lock(&c->mu);
    bool cloud;
    if (c->share <= 0.0) cloud = false;
    else if (c->share >= 1.0) cloud = true;
    else {
        int32_t lo = lower_bound(c->sorted, c->n, score), hi = bound(c->sorted, c->n, score, true);
        double above = c->n - hi, mid = above + (hi - lo + 1) / 2.0; /* rank from the top */
        cloud = mid - 0.5 < slots(c);
        c->debt = clamp(c->debt + c->share - cloud, -SW_SHARE_FEEDBACK, SW_SHARE_FEEDBACK);
    }
    if (isfinite(score)) push(c, score, false);
    c->decided++;
    c->cloud += cloud;
    pthread_mutex_unlock(&c->mu);
    return cloud;
}

double sw_share_ctl_threshold(sw_share_ctl *c) {
    pthread_mutex_lock(&c->mu);
    double t = threshold(c);
    pthread_mutex_unlock(&c->mu);
    return t;
}

double sw_share_ctl_share(const sw_share_ctl *c) { return c->share; }

void sw_share_ctl_counts(sw_share_ctl *c, uint64_t *decided, uint64_t *cloud) {
    pthread_mutex_lock(&c->mu);
    if (decided) *decided = c->decided;
    if (cloud) *cloud = c->cloud;
    pthread_mutex_unlock(&c->mu);
}
