/* ledger.c — JSONL cost ledger and running totals (ledger.h). */
#include "ledger.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct sw_ledger {
    pthread_mutex_t mu;
    int fd;                 /* -1: no file */
    char *path;
    sw_price *prices;       /* owned copies (model strings too) */
    size_t n_prices;
    char *reference_model;
    sw_ledger_totals t;
};

static void free_prices(sw_price *p, size_t n) {
    for (size_t i = 0; p && i < n; i++) free((char *)p[i].model);
    free(p);
}

sw_status sw_ledger_create(const sw_ledger_params *p, sw_ledger **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_ledger_create: out is NULL");
    *out = NULL;
    sw_ledger *l = calloc(1, sizeof *l);
    if (!l) return sw_err_set(err, SW_E_NOMEM, "sw_ledger_create: out of memory");
    l->fd = -1;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return sw_err_set(err, SW_E_INTERNAL, "sw_ledger_create: pthread_mutex_init failed");
    }
    sw_status st = SW_OK;
    if (p && p->n_prices) {
        l->prices = calloc(p->n_prices, sizeof *l->prices);
        if (!l->prices) {
            st = sw_err_set(err, SW_E_NOMEM, "sw_ledger_create: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < p->n_prices; i++) {
            const sw_price *src = &p->prices[i];
            if (!src->model || !src->model[0]) {
                st = sw_err_set(err, SW_E_INVALID_ARG, "prices[%zu]: empty model name", i);
                goto fail;
            }
            if (!isfinite(src->input_per_mtok) || !isfinite(src->output_per_mtok) ||
                src->input_per_mtok < 0 || src->output_per_mtok < 0) {
                st = sw_err_set(err, SW_E_INVALID_ARG,
                                "prices.%s: input %g / output %g USD per Mtok must be >= 0",
                                src->model, src->input_per_mtok, src->output_per_mtok);
                goto fail;
            }
            l->prices[i] = *src;
            l->prices[i].model = strdup(src->model);
            l->n_prices = i + 1;
            if (!l->prices[i].model) {
                st = sw_err_set(err, SW_E_NOMEM, "sw_ledger_create: out of memory");
                goto fail;
            }
        }
    }
    if (p && p->reference_model && !(l->reference_model = strdup(p->reference_model))) {
        st = sw_err_set(err, SW_E_NOMEM, "sw_ledger_create: out of memory");
        goto fail;
    }
    if (p && p->path && p->path[0]) {
        l->path = strdup(p->path);
        l->fd = open(p->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (!l->path || l->fd < 0) {
            st = sw_err_set(err, SW_E_IO, "ledger '%s': cannot open for appending: %s", p->path,
                            strerror(errno));
            goto fail;
        }
    }
    *out = l;
    return SW_OK;
fail:
    sw_ledger_free(l);
    return st;
}

void sw_ledger_free(sw_ledger *l) {
    if (!l) return;
    if (l->fd >= 0) close(l->fd);
    free(l->path);
    free_prices(l->prices, l->n_prices);
    free(l->reference_model);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

bool sw_ledger_price(const sw_ledger *l, const char *model, sw_price *out) {
    if (!l || !model) return false;
    const sw_price *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < l->n_prices; i++) {
        const char *m = l->prices[i].model;
        size_t n = strlen(m);
        if (n && m[n - 1] == '*') {
            /* prefix: loses to an exact name and to a longer prefix */
            if (!strncmp(m, model, n - 1) && (!best || (best_len != (size_t)-1 && n - 1 > best_len))) {
                best = &l->prices[i];
                best_len = n - 1;
            }
        } else if (!strcmp(m, model)) {
            best = &l->prices[i];
            best_len = (size_t)-1;
        }
    }
    if (best && out) *out = *best;
    return best != NULL;
}

static double cost_of(const sw_ledger *l, const char *model, int64_t in, int64_t out) {
    sw_price p;
    if (!sw_ledger_price(l, model, &p)) return 0;
    return ((double)in * p.input_per_mtok + (double)out * p.output_per_mtok) / 1e6;
}

static void iso_time(double unix_time, char *buf, size_t cap) {
    time_t secs = (time_t)floor(unix_time);
    int ms = (int)((unix_time - floor(unix_time)) * 1000);
    if (ms > 999) ms = 999;
    if (ms < 0) ms = 0;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%.24s.%03dZ", base, ms % 1000);
}

sw_status sw_ledger_record(sw_ledger *l, const sw_ledger_entry *e, double *cost_usd, sw_err *err) {
    if (cost_usd) *cost_usd = 0;
    if (!l || !e) return sw_err_set(err, SW_E_INVALID_ARG, "sw_ledger_record: NULL argument");
    if ((unsigned)e->route >= SW_ROUTE_COUNT || (unsigned)e->reason >= SW_REASON_COUNT)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_ledger_record: route %d / reason %d out of range",
                          (int)e->route, (int)e->reason);
    int64_t tin = e->tokens_in > 0 ? e->tokens_in : 0;
    int64_t tout = e->tokens_out > 0 ? e->tokens_out : 0;
    double cost = 0, savings = 0;
    if (e->route == SW_ROUTE_CLOUD) cost = cost_of(l, e->model, tin, tout);
    else if (e->route == SW_ROUTE_LOCAL && l->reference_model)
        savings = cost_of(l, l->reference_model, tin, tout);

    double now = e->unix_time;
    if (now <= 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        now = (double)tv.tv_sec + tv.tv_usec / 1e6;
    }
    char when[40];
    iso_time(now, when, sizeof when);

    cJSON *o = cJSON_CreateObject();
    char *line = NULL;
    if (o) {
        cJSON_AddStringToObject(o, "time", when);
        cJSON_AddStringToObject(o, "request_id", e->request_id ? e->request_id : "");
        cJSON_AddStringToObject(o, "route", sw_route_str(e->route));
        cJSON_AddStringToObject(o, "reason", sw_route_reason_str(e->reason));
        cJSON_AddStringToObject(o, "model", e->model ? e->model : "");
        cJSON_AddNumberToObject(o, "tokens_in", (double)tin);
        cJSON_AddNumberToObject(o, "tokens_out", (double)tout);
        cJSON_AddNumberToObject(o, "latency_ms", round(e->latency_ms * 10) / 10);
        cJSON_AddNumberToObject(o, "cost_usd", cost);
        cJSON_AddNumberToObject(o, "savings_usd", savings);
        cJSON_AddStringToObject(o, "status", e->error ? "error" : "ok");
        line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }

    sw_status st = SW_OK;
    pthread_mutex_lock(&l->mu);
    sw_ledger_totals *t = &l->t;
    t->requests[e->route]++;
    t->by_reason[e->route][e->reason]++;
    t->errors += e->error;
    t->tokens_in[e->route] += tin;
    t->tokens_out[e->route] += tout;
    t->cost_usd += cost;
    t->savings_usd += savings;
    t->latency_ms_sum[e->route] += e->latency_ms > 0 ? e->latency_ms : 0;
    if (l->fd >= 0) {
        if (!line) {
            t->write_errors++;
            st = sw_err_set(err, SW_E_NOMEM, "ledger: out of memory formatting a line");
        } else {
            size_t n = strlen(line);
            line[n] = '\n'; /* replace the NUL: one write for the whole line */
            ssize_t w;
            do w = write(l->fd, line, n + 1);
            while (w < 0 && errno == EINTR);
            if (w != (ssize_t)(n + 1)) {
                t->write_errors++;
                st = sw_err_set(err, SW_E_IO, "ledger '%s': write failed: %s", l->path,
                                w < 0 ? strerror(errno) : "short write");
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    free(line);
    if (cost_usd) *cost_usd = cost;
    return st;
}

void sw_ledger_totals_get(sw_ledger *l, sw_ledger_totals *out) {
    memset(out, 0, sizeof *out);
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    *out = l->t;
    pthread_mutex_unlock(&l->mu);
}

char *sw_ledger_usage_json(sw_ledger *l) {
    sw_ledger_totals t;
    sw_ledger_totals_get(l, &t);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "object", "spillway.usage");
    cJSON *req = cJSON_AddObjectToObject(o, "requests");
    cJSON *reasons = cJSON_AddObjectToObject(o, "reasons");
    uint64_t total = 0;
    for (int r = 0; r < SW_ROUTE_COUNT; r++) total += t.requests[r];
    cJSON_AddNumberToObject(req, "total", (double)total);
    for (int r = 0; r < SW_ROUTE_COUNT; r++) {
        cJSON_AddNumberToObject(req, sw_route_str((sw_route)r), (double)t.requests[r]);
        cJSON *rr = cJSON_AddObjectToObject(reasons, sw_route_str((sw_route)r));
        for (int k = 0; k < SW_REASON_COUNT; k++)
            if (t.by_reason[r][k])
                cJSON_AddNumberToObject(rr, sw_route_reason_str((sw_route_reason)k),
                                        (double)t.by_reason[r][k]);
    }
    cJSON_AddNumberToObject(o, "errors", (double)t.errors);
    cJSON *tok = cJSON_AddObjectToObject(o, "tokens");
    for (int r = 0; r < SW_ROUTE_COUNT; r++) {
        if (r == SW_ROUTE_REJECT) continue;
        cJSON *x = cJSON_AddObjectToObject(tok, sw_route_str((sw_route)r));
        cJSON_AddNumberToObject(x, "input", (double)t.tokens_in[r]);
        cJSON_AddNumberToObject(x, "output", (double)t.tokens_out[r]);
    }
    cJSON_AddNumberToObject(o, "cost_usd", t.cost_usd);
    cJSON_AddNumberToObject(o, "savings_usd", t.savings_usd);
    if (l && l->reference_model) cJSON_AddStringToObject(o, "reference_model", l->reference_model);
    else cJSON_AddNullToObject(o, "reference_model");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* A growable string for the Prometheus text. */
typedef struct pbuf {
    char *p;
    size_t len, cap;
    bool oom;
} pbuf;

static void pb_printf(pbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void pb_printf(pbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

char *sw_ledger_prometheus(sw_ledger *l) {
    sw_ledger_totals t;
    sw_ledger_totals_get(l, &t);
    pbuf b = {0};
    pb_printf(&b, "# HELP spillway_route_requests_total Finished requests by route and reason.\n"
                  "# TYPE spillway_route_requests_total counter\n");
    for (int r = 0; r < SW_ROUTE_COUNT; r++)
        for (int k = 0; k < SW_REASON_COUNT; k++)
            if (t.by_reason[r][k])
                pb_printf(&b, "spillway_route_requests_total{route=\"%s\",reason=\"%s\"} %llu\n",
                          sw_route_str((sw_route)r), sw_route_reason_str((sw_route_reason)k),
                          (unsigned long long)t.by_reason[r][k]);
    pb_printf(&b, "# HELP spillway_route_errors_total Finished requests that failed.\n"
                  "# TYPE spillway_route_errors_total counter\n"
                  "spillway_route_errors_total %llu\n", (unsigned long long)t.errors);
    pb_printf(&b, "# HELP spillway_route_tokens_total Tokens by route and direction.\n"
                  "# TYPE spillway_route_tokens_total counter\n");
    for (int r = 0; r < SW_ROUTE_COUNT; r++) {
        if (r == SW_ROUTE_REJECT) continue;
        pb_printf(&b, "spillway_route_tokens_total{route=\"%s\",direction=\"input\"} %lld\n",
                  sw_route_str((sw_route)r), (long long)t.tokens_in[r]);
        pb_printf(&b, "spillway_route_tokens_total{route=\"%s\",direction=\"output\"} %lld\n",
                  sw_route_str((sw_route)r), (long long)t.tokens_out[r]);
    }
    pb_printf(&b, "# HELP spillway_cloud_cost_usd_total Money spent on the cloud provider.\n"
                  "# TYPE spillway_cloud_cost_usd_total counter\n"
                  "spillway_cloud_cost_usd_total %.9g\n", t.cost_usd);
    pb_printf(&b, "# HELP spillway_cloud_savings_usd_total What locally served tokens would "
                  "have cost on the cloud model.\n"
                  "# TYPE spillway_cloud_savings_usd_total counter\n"
                  "spillway_cloud_savings_usd_total %.9g\n", t.savings_usd);
    pb_printf(&b, "# HELP spillway_ledger_write_errors_total Ledger lines that could not be written.\n"
                  "# TYPE spillway_ledger_write_errors_total counter\n"
                  "spillway_ledger_write_errors_total %llu\n", (unsigned long long)t.write_errors);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
