/* ledger.c — JSONL cost ledger and running totals (ledger.h). */
#include "ledger.h"

#include "sw_strbuf.h"

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

static const struct {
    const char *name;
    double seconds;
    int capacity;
} k_buckets[SW_BUCKET_COUNT] = {
    [SW_BUCKET_MINUTE] = {"minute", 60, 1440},
    [SW_BUCKET_HOUR] = {"hour", 3600, 744},
    [SW_BUCKET_DAY] = {"day", 86400, 400},
};

/* One slot of a ring: the totals of the bucket that starts at t0. */
typedef struct bucket {
    double t0; /* < 0: never used */
    sw_ledger_totals v;
} bucket;

struct sw_ledger {
    pthread_mutex_t mu;
    int fd;                 /* -1: no file */
    char *path;
    sw_price *prices;       /* owned copies (model strings too) */
    size_t n_prices;
    char *reference_model;
    bool have_reference;    /* savings are priced at `reference` */
    sw_price reference;     /* .model owned */
    sw_ledger_totals t;
    bucket *ring[SW_BUCKET_COUNT];
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
    /* The reference price: the reference model's own, else the policy's. */
    if (l->reference_model && sw_ledger_price(l, l->reference_model, &l->reference)) {
        l->have_reference = true;
        l->reference.model = strdup(l->reference_model);
    } else if (p && p->reference_price) {
        const sw_price *rp = p->reference_price;
        if (!isfinite(rp->input_per_mtok) || !isfinite(rp->output_per_mtok) ||
            rp->input_per_mtok < 0 || rp->output_per_mtok < 0) {
            st = sw_err_set(err, SW_E_INVALID_ARG,
                            "reference_price: input %g / output %g USD per Mtok must be >= 0",
                            rp->input_per_mtok, rp->output_per_mtok);
            goto fail;
        }
        l->have_reference = true;
        l->reference = *rp;
        l->reference.model = strdup(rp->model && rp->model[0] ? rp->model : "reference");
    }
    if (l->have_reference && !l->reference.model) {
        st = sw_err_set(err, SW_E_NOMEM, "sw_ledger_create: out of memory");
        goto fail;
    }
    for (int b = 0; b < SW_BUCKET_COUNT; b++) {
        l->ring[b] = calloc((size_t)k_buckets[b].capacity, sizeof *l->ring[b]);
        if (!l->ring[b]) {
            st = sw_err_set(err, SW_E_NOMEM, "sw_ledger_create: out of memory");
            goto fail;
        }
        for (int i = 0; i < k_buckets[b].capacity; i++) l->ring[b][i].t0 = -1;
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
    free((char *)l->reference.model);
    for (int b = 0; b < SW_BUCKET_COUNT; b++) free(l->ring[b]);
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

static double price_tokens(const sw_price *p, int64_t in, int64_t out) {
    return ((double)in * p->input_per_mtok + (double)out * p->output_per_mtok) / 1e6;
}

static double cost_of(const sw_ledger *l, const char *model, int64_t in, int64_t out) {
    sw_price p;
    if (!sw_ledger_price(l, model, &p)) return 0;
    return price_tokens(&p, in, out);
}

/* Count one request into t (the totals, or a time bucket). */
static void totals_add(sw_ledger_totals *t, const sw_ledger_entry *e, int64_t tin, int64_t tout,
                       double cost, double savings) {
    t->requests[e->route]++;
    t->by_reason[e->route][e->reason]++;
    t->errors += e->error;
    t->tokens_in[e->route] += tin;
    t->tokens_out[e->route] += tout;
    t->cost_usd += cost;
    t->savings_usd += savings;
    t->latency_ms_sum[e->route] += e->latency_ms > 0 ? e->latency_ms : 0;
    if (e->redacted_spans > 0) {
        t->redacted_requests++;
        t->redacted_spans += (uint64_t)e->redacted_spans;
    }
}

/* The slot of ring b for time t, reset when it held an older bucket; NULL
 * when it holds a newer one (t is older than the ring reaches). */
static bucket *slot_for(sw_ledger *l, int b, double t) {
    double w = k_buckets[b].seconds;
    double t0 = floor(t / w) * w;
    int64_t idx = (int64_t)floor(t / w) % k_buckets[b].capacity;
    if (idx < 0) idx += k_buckets[b].capacity;
    bucket *s = &l->ring[b][idx];
    if (s->t0 == t0) return s;
    if (s->t0 > t0) return NULL;
    memset(&s->v, 0, sizeof s->v);
    s->t0 = t0;
    return s;
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
    else if (e->route == SW_ROUTE_LOCAL && l->have_reference)
        savings = price_tokens(&l->reference, tin, tout);

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
        char kinds[64] = "";
        if (e->redacted_spans > 0) sw_pii_kinds_str(e->redacted_kinds, kinds, sizeof kinds);
        cJSON_AddNumberToObject(o, "redacted", e->redacted_spans > 0 ? e->redacted_spans : 0);
        cJSON_AddStringToObject(o, "redacted_kinds", kinds);
        if (e->has_route_score && isfinite(e->route_score))
            cJSON_AddNumberToObject(o, "route_score", round(e->route_score * 1e4) / 1e4);
        line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }

    sw_status st = SW_OK;
    pthread_mutex_lock(&l->mu);
    totals_add(&l->t, e, tin, tout, cost, savings);
    for (int b = 0; b < SW_BUCKET_COUNT; b++) {
        bucket *slot = slot_for(l, b, now);
        if (slot) totals_add(&slot->v, e, tin, tout, cost, savings);
    }
    sw_ledger_totals *t = &l->t;
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

/* requests, reasons, errors, tokens, cost, savings, redacted: the members
 * that the totals and each time bucket share. */
static void add_totals(cJSON *o, const sw_ledger_totals *t) {
    cJSON *req = cJSON_AddObjectToObject(o, "requests");
    cJSON *reasons = cJSON_AddObjectToObject(o, "reasons");
    uint64_t total = 0;
    for (int r = 0; r < SW_ROUTE_COUNT; r++) total += t->requests[r];
    cJSON_AddNumberToObject(req, "total", (double)total);
    for (int r = 0; r < SW_ROUTE_COUNT; r++) {
        cJSON_AddNumberToObject(req, sw_route_str((sw_route)r), (double)t->requests[r]);
        cJSON *rr = cJSON_AddObjectToObject(reasons, sw_route_str((sw_route)r));
        for (int k = 0; k < SW_REASON_COUNT; k++)
            if (t->by_reason[r][k])
                cJSON_AddNumberToObject(rr, sw_route_reason_str((sw_route_reason)k),
                                        (double)t->by_reason[r][k]);
    }
    cJSON_AddNumberToObject(o, "errors", (double)t->errors);
    cJSON *tok = cJSON_AddObjectToObject(o, "tokens");
    for (int r = 0; r < SW_ROUTE_COUNT; r++) {
        cJSON *x = cJSON_AddObjectToObject(tok, sw_route_str((sw_route)r));
        cJSON_AddNumberToObject(x, "input", (double)t->tokens_in[r]);
        cJSON_AddNumberToObject(x, "output", (double)t->tokens_out[r]);
    }
    cJSON_AddNumberToObject(o, "cost_usd", t->cost_usd);
    cJSON_AddNumberToObject(o, "savings_usd", t->savings_usd);
    cJSON *red = cJSON_AddObjectToObject(o, "redacted");
    cJSON_AddNumberToObject(red, "requests", (double)t->redacted_requests);
    cJSON_AddNumberToObject(red, "spans", (double)t->redacted_spans);
}

static cJSON *usage_obj(sw_ledger *l) {
    sw_ledger_totals t;
    sw_ledger_totals_get(l, &t);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "object", "spillway.usage");
    add_totals(o, &t);
    if (l && l->have_reference) {
        cJSON_AddStringToObject(o, "reference_model", l->reference.model);
        cJSON *rp = cJSON_AddObjectToObject(o, "reference_price");
        cJSON_AddNumberToObject(rp, "input", l->reference.input_per_mtok);
        cJSON_AddNumberToObject(rp, "output", l->reference.output_per_mtok);
    } else {
        cJSON_AddNullToObject(o, "reference_model");
        cJSON_AddNullToObject(o, "reference_price");
    }
    return o;
}

static char *print_free(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *sw_ledger_usage_json(sw_ledger *l) { return print_free(usage_obj(l)); }

const char *sw_ledger_bucket_str(sw_ledger_bucket b) {
    return (unsigned)b < SW_BUCKET_COUNT ? k_buckets[b].name : "?";
}

sw_status sw_ledger_bucket_parse(const char *s, sw_ledger_bucket *out, sw_err *err) {
    for (int b = 0; s && b < SW_BUCKET_COUNT; b++) {
        if (!strcmp(s, k_buckets[b].name)) {
            *out = (sw_ledger_bucket)b;
            return SW_OK;
        }
    }
    return sw_err_set(err, SW_E_INVALID_ARG, "bucket: '%.40s' is not minute, hour or day",
                      s ? s : "(null)");
}

double sw_ledger_bucket_seconds(sw_ledger_bucket b) {
    return (unsigned)b < SW_BUCKET_COUNT ? k_buckets[b].seconds : 0;
}

int sw_ledger_bucket_capacity(sw_ledger_bucket b) {
    return (unsigned)b < SW_BUCKET_COUNT ? k_buckets[b].capacity : 0;
}

char *sw_ledger_usage_series_json(sw_ledger *l, sw_ledger_bucket b, int n, double now) {
    if (!l || (unsigned)b >= SW_BUCKET_COUNT) return NULL;
    cJSON *o = usage_obj(l);
    if (!o) return NULL;
    int cap = k_buckets[b].capacity;
    n = n < 1 ? 1 : n > cap ? cap : n;
    if (now <= 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        now = (double)tv.tv_sec + tv.tv_usec / 1e6;
    }
    double w = k_buckets[b].seconds;
    double end = (floor(now / w) + 1) * w, start = end - n * w;
    cJSON *ser = cJSON_AddObjectToObject(o, "series");
    cJSON_AddStringToObject(ser, "bucket", k_buckets[b].name);
    cJSON_AddNumberToObject(ser, "bucket_s", w);
    cJSON_AddNumberToObject(ser, "start", start);
    cJSON_AddNumberToObject(ser, "end", end);
    cJSON *pts = cJSON_AddArrayToObject(ser, "points");
    /* Copy the slots out under the lock, build JSON outside it. */
    bucket *copy = malloc((size_t)n * sizeof *copy);
    int m = 0;
    if (copy) {
        pthread_mutex_lock(&l->mu);
        for (int i = 0; i < n; i++) {
            double t0 = start + i * w;
            int64_t idx = (int64_t)floor(t0 / w + 0.5) % cap;
            if (idx < 0) idx += cap;
            const bucket *s = &l->ring[b][idx];
            if (s->t0 == t0) copy[m++] = *s;
        }
        pthread_mutex_unlock(&l->mu);
    }
    for (int i = 0; i < m && pts; i++) {
        cJSON *pt = cJSON_CreateObject();
        if (!pt) break;
        cJSON_AddNumberToObject(pt, "t", copy[i].t0);
        add_totals(pt, &copy[i].v);
        cJSON_AddItemToArray(pts, pt);
    }
    bool ok = copy && pts && cJSON_GetArraySize(pts) == m;
    free(copy);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_free(o);
}

char *sw_ledger_prometheus(sw_ledger *l) {
    sw_ledger_totals t;
    sw_ledger_totals_get(l, &t);
    sw_strbuf b = {0};
    sw_strbuf_printf(&b, "# HELP spillway_route_requests_total Finished requests by route and reason.\n"
                  "# TYPE spillway_route_requests_total counter\n");
    for (int r = 0; r < SW_ROUTE_COUNT; r++)
        for (int k = 0; k < SW_REASON_COUNT; k++)
            if (t.by_reason[r][k])
                sw_strbuf_printf(&b, "spillway_route_requests_total{route=\"%s\",reason=\"%s\"} %llu\n",
                          sw_route_str((sw_route)r), sw_route_reason_str((sw_route_reason)k),
                          (unsigned long long)t.by_reason[r][k]);
    sw_strbuf_printf(&b, "# HELP spillway_route_errors_total Finished requests that failed.\n"
                  "# TYPE spillway_route_errors_total counter\n"
                  "spillway_route_errors_total %llu\n", (unsigned long long)t.errors);
    sw_strbuf_printf(&b, "# HELP spillway_route_tokens_total Tokens by route and direction.\n"
                  "# TYPE spillway_route_tokens_total counter\n");
    for (int r = 0; r < SW_ROUTE_COUNT; r++) {
        sw_strbuf_printf(&b, "spillway_route_tokens_total{route=\"%s\",direction=\"input\"} %lld\n",
                  sw_route_str((sw_route)r), (long long)t.tokens_in[r]);
        sw_strbuf_printf(&b, "spillway_route_tokens_total{route=\"%s\",direction=\"output\"} %lld\n",
                  sw_route_str((sw_route)r), (long long)t.tokens_out[r]);
    }
    sw_strbuf_printf(&b, "# HELP spillway_cloud_cost_usd_total Money spent on the cloud provider.\n"
                  "# TYPE spillway_cloud_cost_usd_total counter\n"
                  "spillway_cloud_cost_usd_total %.9g\n", t.cost_usd);
    sw_strbuf_printf(&b, "# HELP spillway_cloud_savings_usd_total What locally served tokens would "
                  "have cost on the cloud model.\n"
                  "# TYPE spillway_cloud_savings_usd_total counter\n"
                  "spillway_cloud_savings_usd_total %.9g\n", t.savings_usd);
    sw_strbuf_printf(&b, "# HELP spillway_pii_redacted_requests_total Requests sent to the cloud with "
                  "personal data replaced by placeholders.\n"
                  "# TYPE spillway_pii_redacted_requests_total counter\n"
                  "spillway_pii_redacted_requests_total %llu\n",
              (unsigned long long)t.redacted_requests);
    sw_strbuf_printf(&b, "# HELP spillway_pii_redacted_spans_total Spans of personal data replaced by "
                  "placeholders.\n"
                  "# TYPE spillway_pii_redacted_spans_total counter\n"
                  "spillway_pii_redacted_spans_total %llu\n",
              (unsigned long long)t.redacted_spans);
    sw_strbuf_printf(&b, "# HELP spillway_ledger_write_errors_total Ledger lines that could not be written.\n"
                  "# TYPE spillway_ledger_write_errors_total counter\n"
                  "spillway_ledger_write_errors_total %llu\n", (unsigned long long)t.write_errors);
    return sw_strbuf_take(&b);
}
