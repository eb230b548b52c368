/* metrics.h — the server's Prometheus metrics: request counts by endpoint and
 * status, token counters, latency histograms (time to first token,
 * inter-token latency, end-to-end), rendered together with the engine's
 * gauges (queue depth, running, KV blocks, prefix cache, preemptions) as
 * Prometheus text exposition format 0.0.4. All functions are thread-safe. */
#ifndef SW_SERVER_METRICS_H
#define SW_SERVER_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "engine.h"

#define SRV_HIST_MAX_BUCKETS 24
#define SRV_METRICS_MAX_SERIES 128

typedef struct srv_hist {
    const double *bounds; /* upper bounds in seconds, ascending; static */
    int n_bounds;
    uint64_t counts[SRV_HIST_MAX_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
    double sum;
    uint64_t count;
} srv_hist;

typedef struct srv_req_series {
    const char *endpoint; /* static string */
    int status;
    uint64_t n;
} srv_req_series;

typedef struct srv_metrics {
    pthread_mutex_t mu;
    srv_req_series req[SRV_METRICS_MAX_SERIES];
    int n_req;
    uint64_t prompt_tokens, gen_tokens, cached_tokens;
    uint64_t finish_stop, finish_length, finish_cancelled, finish_error;
    srv_hist ttft, itl, e2e, queue;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
/* endpoint: a static string (the route's name). */
void srv_metrics_request(srv_metrics *m, const char *endpoint, int status);
void srv_metrics_ttft(srv_metrics *m, double seconds);
void srv_metrics_itl(srv_metrics *m, double seconds);
/* A generation finished: its usage, end-to-end and queue time, finish reason. */
void srv_metrics_finished(srv_metrics *m, const sw_usage *u, double e2e_s, double queue_s,
                          sw_finish_reason why);

/* Render everything as Prometheus text. st: the engine's stats, or NULL while
 * the model loads. active: HTTP requests in progress. Returns malloc'd text
 * (NULL when out of memory). */
char *srv_metrics_render(srv_metrics *m, const sw_engine_stats *st, int active, int state);

#endif
