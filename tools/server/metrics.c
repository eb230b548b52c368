/* metrics.c — counters and histograms behind GET /metrics (see metrics.h). */
#include "metrics.h"

#include <string.h>

#include "sbuf.h"

/* Seconds. TTFT spans a queue wait on a busy server; ITL is a decode step. */
static const double k_ttft_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
                                       0.75,  1.0,  2.5,   5.0,  10.0,  20.0, 40.0, 80.0};
static const double k_itl_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04,
                                      0.05,  0.075,  0.1,   0.15, 0.2,   0.3,  0.5,   1.0,  2.5};
static const double k_e2e_bounds[] = {0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0,
                                      320.0, 640.0};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void hist_init(srv_hist *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n < SRV_HIST_MAX_BUCKETS ? n : SRV_HIST_MAX_BUCKETS;
}

static void hist_add(srv_hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->ttft, k_ttft_bounds, N_OF(k_ttft_bounds));
    hist_init(&m->itl, k_itl_bounds, N_OF(k_itl_bounds));
    hist_init(&m->e2e, k_e2e_bounds, N_OF(k_e2e_bounds));
    hist_init(&m->queue, k_ttft_bounds, N_OF(k_ttft_bounds));
}

void srv_metrics_destroy(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

void srv_metrics_request(srv_metrics *m, const char *endpoint, int status) {
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_req; i++)
        if (m->req[i].status == status && !strcmp(m->req[i].endpoint, endpoint)) break;
    if (i == m->n_req && m->n_req < SRV_METRICS_MAX_SERIES) {
        /* Endpoints are a fixed set and statuses few, so the table stays small;
         * past the cap new series are dropped rather than grown without bound. */
        m->req[i].endpoint = endpoint;
        m->req[i].status = status;
        m->req[i].n = 0;
        m->n_req++;
    }
    if (i < m->n_req) m->req[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_ttft(srv_metrics *m, double s) {
    pthread_mutex_lock(&m->mu);
    hist_add(&m->ttft, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_itl(srv_metrics *m, double s) {
    pthread_mutex_lock(&m->mu);
    hist_add(&m->itl, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_finished(srv_metrics *m, const sw_usage *u, double e2e_s, double queue_s,
                          sw_finish_reason why) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (uint64_t)(u->prompt_tokens > 0 ? u->prompt_tokens : 0);
    m->gen_tokens += (uint64_t)(u->completion_tokens > 0 ? u->completion_tokens : 0);
    m->cached_tokens += (uint64_t)(u->cached_prompt_tokens > 0 ? u->cached_prompt_tokens : 0);
    switch (why) {
    case SW_FINISH_STOP: m->finish_stop++; break;
    case SW_FINISH_LENGTH: m->finish_length++; break;
    case SW_FINISH_CANCELLED: m->finish_cancelled++; break;
    default: m->finish_error++; break;
    }
    hist_add(&m->e2e, e2e_s);
    if (queue_s >= 0) hist_add(&m->queue, queue_s);
    pthread_mutex_unlock(&m->mu);
}

static void render_hist(sbuf *b, const char *name, const char *help, const srv_hist *h) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        sbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    sbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    sbuf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name,
                (unsigned long long)h->count);
}

static void gauge(sbuf *b, const char *name, const char *help, double v) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void counter(sbuf *b, const char *name, const char *help, double v) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %.17g\n", name, help, name, name, v);
}

char *srv_metrics_render(srv_metrics *m, const sw_engine_stats *st, int active, int state) {
    sbuf b = {0};
    pthread_mutex_lock(&m->mu);
    sbuf_puts(&b, "# HELP spillway_requests_total HTTP requests by endpoint and status.\n"
                  "# TYPE spillway_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        sbuf_printf(&b, "spillway_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                    m->req[i].endpoint, m->req[i].status, (unsigned long long)m->req[i].n);
    counter(&b, "spillway_prompt_tokens_total", "Prompt tokens of finished generations.",
            (double)m->prompt_tokens);
    counter(&b, "spillway_generation_tokens_total", "Tokens generated by finished generations.",
            (double)m->gen_tokens);
    counter(&b, "spillway_cached_prompt_tokens_total",
            "Prompt tokens served from the prefix cache.", (double)m->cached_tokens);
    sbuf_puts(&b, "# HELP spillway_generations_total Finished generations by finish reason.\n"
                  "# TYPE spillway_generations_total counter\n");
    sbuf_printf(&b, "spillway_generations_total{reason=\"stop\"} %llu\n",
                (unsigned long long)m->finish_stop);
    sbuf_printf(&b, "spillway_generations_total{reason=\"length\"} %llu\n",
                (unsigned long long)m->finish_length);
    sbuf_printf(&b, "spillway_generations_total{reason=\"cancelled\"} %llu\n",
                (unsigned long long)m->finish_cancelled);
    sbuf_printf(&b, "spillway_generations_total{reason=\"error\"} %llu\n",
                (unsigned long long)m->finish_error);
    render_hist(&b, "spillway_time_to_first_token_seconds",
                "Time from submission to the first generated token.", &m->ttft);
    render_hist(&b, "spillway_inter_token_latency_seconds",
                "Time between consecutive generated tokens of a request.", &m->itl);
    render_hist(&b, "spillway_request_duration_seconds",
                "Time from submission to the end of a generation.", &m->e2e);
    render_hist(&b, "spillway_queue_time_seconds",
                "Time from submission to the first token, for requests that got one.",
                &m->queue);
    pthread_mutex_unlock(&m->mu);

    gauge(&b, "spillway_http_requests_in_progress", "HTTP requests being handled.", active);
    gauge(&b, "spillway_model_loaded", "1 once the model is loaded and serving.",
          st ? 1.0 : 0.0);
    (void)state;
    if (st) {
        gauge(&b, "spillway_requests_waiting", "Requests queued in the engine (queue depth).",
              st->waiting);
        gauge(&b, "spillway_requests_running", "Sequences holding KV cache.", st->running);
        gauge(&b, "spillway_kv_blocks_used", "KV blocks referenced by sequences.",
              st->kv_blocks_used);
        gauge(&b, "spillway_kv_blocks_cached", "Unreferenced KV blocks kept for the prefix cache.",
              st->kv_blocks_cached);
        gauge(&b, "spillway_kv_blocks_total", "KV blocks in the cache.", st->kv_blocks_total);
        gauge(&b, "spillway_kv_block_size_tokens", "Tokens per KV block.", st->kv_block_size);
        gauge(&b, "spillway_kv_usage_ratio", "Fraction of KV blocks in use.",
              st->kv_blocks_total > 0 ? (double)st->kv_blocks_used / st->kv_blocks_total : 0.0);
        gauge(&b, "spillway_context_tokens", "Per-sequence context length.", st->n_ctx);
        counter(&b, "spillway_prefix_cache_hits_total", "Full prompt blocks found in the cache.",
                (double)st->prefix_hits);
        counter(&b, "spillway_prefix_cache_misses_total", "Full prompt blocks not in the cache.",
                (double)st->prefix_misses);
        gauge(&b, "spillway_prefix_cache_hit_rate", "hits / (hits + misses).",
              st->prefix_hit_rate);
        counter(&b, "spillway_preemptions_total", "Sequences preempted for KV memory.",
                (double)st->preempted);
        gauge(&b, "spillway_prompt_tokens_per_second", "Prefill throughput over the last ~10 s.",
              st->prompt_tok_s);
        gauge(&b, "spillway_generation_tokens_per_second",
              "Generation throughput over the last ~10 s.", st->gen_tok_s);
        counter(&b, "spillway_engine_steps_total", "Forward passes run.", (double)st->steps);
    }
    return sbuf_take(&b);
}
