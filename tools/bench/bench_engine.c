/* bench_engine.c — spillway-bench engine: for each concurrency level, submit
 * that many requests at once (random prompts of --prompt tokens, greedy,
 * ignoring EOS so each generates exactly --gen tokens) to a fresh engine and
 * measure generation throughput, time to first token and inter-token latency
 * as the client sees them (at the event callback). */
#include "bench_engine.h"

#include <spillway.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

typedef struct bench_opts {
    const char *model;
    const char *backend;
    int32_t threads;
    int32_t conc[32];
    int n_conc;
    int32_t prompt, gen;
    int32_t batch_tokens, block_size;
    uint64_t kv_memory;
    bool json;
} bench_opts;

/* One request's client-side view. Written only by the scheduler thread's
 * callbacks; read by main after the shared done counter says it finished. */
typedef struct req_stats {
    double t_submit, t_first, t_last;
    double *itl;   /* [gen] gaps between consecutive token events, seconds */
    int32_t n_tok, n_itl;
    sw_finish_reason reason;
    char message[256];
} req_stats;

typedef struct bench_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_done;
} bench_run;

typedef struct req_ctx {
    bench_run *run;
    req_stats *st;
} req_ctx;

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-bench engine -m FILE [options]\n"
            "  --concurrency LIST   comma-separated request counts (default 1,4,16,64)\n"
            "  --prompt N           prompt tokens per request (default 128)\n"
            "  --gen N              generated tokens per request (default 128)\n"
            "  --threads N          CPU threads (default: all cores)\n"
            "  --backend NAME       cpu|cuda|vulkan|auto (default auto)\n"
            "  --batch-tokens N     engine token budget per step (default 512)\n"
            "  --block-size N       KV block size in tokens (default 16)\n"
            "  --kv-memory BYTES    KV cache budget (default: enough for every request)\n"
            "  --json               print a JSON array, one object per concurrency\n");
}

static bool parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->backend = "auto";
    o->prompt = 128;
    o->gen = 128;
    const int32_t def[] = {1, 4, 16, 64};
    memcpy(o->conc, def, sizeof def);
    o->n_conc = 4;
    int i = 0;
    if (argc > 0 && !strcmp(argv[0], "engine")) i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "spillway-bench engine: %s needs a value (or is unknown)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--threads")) ok = parse_i32(v, 1, 1024, &o->threads);
        else if (!strcmp(a, "--prompt")) ok = parse_i32(v, 1, 1 << 20, &o->prompt);
        else if (!strcmp(a, "--gen")) ok = parse_i32(v, 1, 1 << 20, &o->gen);
        else if (!strcmp(a, "--batch-tokens")) ok = parse_i32(v, 1, 1 << 20, &o->batch_tokens);
        else if (!strcmp(a, "--block-size")) ok = parse_i32(v, 1, 4096, &o->block_size);
        else if (!strcmp(a, "--kv-memory")) {
            char *end;
            errno = 0;
            unsigned long long b = strtoull(v, &end, 10);
            ok = !errno && end != v && !*end && b > 0;
            o->kv_memory = b;
        } else if (!strcmp(a, "--concurrency")) {
            o->n_conc = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && ok;
                 t = strtok_r(NULL, ",", &save)) {
                if (o->n_conc == (int)(sizeof o->conc / sizeof o->conc[0])) ok = false;
                else ok = parse_i32(t, 1, 1 << 16, &o->conc[o->n_conc++]);
            }
            ok = ok && o->n_conc > 0;
        } else {
            fprintf(stderr, "spillway-bench engine: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "spillway-bench engine: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if (!o->model) {
        fprintf(stderr, "spillway-bench engine: -m FILE is required\n");
        usage(stderr);
        return 2;
    }
    return -1; /* go on */
}

static void on_event(void *user, const sw_event *ev) {
    req_ctx *c = user;
    req_stats *s = c->st;
    double now = sw_time_s();
    if (ev->type == SW_EVENT_TOKEN) {
        if (s->n_tok == 0) s->t_first = now;
        else if (s->n_itl < s->n_tok) s->itl[s->n_itl++] = now - s->t_last;
        s->t_last = now;
        s->n_tok++;
        return;
    }
    s->reason = ev->finish;
    snprintf(s->message, sizeof s->message, "%s", ev->message);
    pthread_mutex_lock(&c->run->mu);
    c->run->n_done++;
    pthread_cond_broadcast(&c->run->cv);
    pthread_mutex_unlock(&c->run->mu);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double pct(const double *v, size_t n, double p) {
    if (n == 0) return 0.0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

typedef struct level_result {
    int32_t concurrency;
    double wall_s, gen_tok_s, ttft_p50, ttft_p99, itl_p50, itl_p99;
    uint64_t preempted;
    int failed;
} level_result;

static void random_prompt(const sw_model *m, int32_t *ids, int32_t n, uint64_t *rng) {
    const sw_tokenizer *t = sw_model_tokenizer(m);
    int32_t vocab = (int32_t)sw_model_config_get(m)->n_vocab;
    int32_t k = 0;
    if (t && sw_tokenizer_bos(t) >= 0 && sw_tokenizer_add_bos(t)) ids[k++] = sw_tokenizer_bos(t);
    /* Skip the first ids: special and byte tokens live there in most vocabs. */
    int32_t lo = vocab > 1024 ? 512 : 3;
    while (k < n) {
        *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[k++] = lo + (int32_t)((uint32_t)(*rng >> 33) % (uint32_t)(vocab - lo));
    }
}

static sw_status run_level(sw_model *m, const bench_opts *o, int32_t conc, uint64_t seed,
                           level_result *out, sw_err *err) {
    memset(out, 0, sizeof *out);
    out->concurrency = conc;
    int32_t bs = o->block_size > 0 ? o->block_size : 16;
    int32_t per_req = o->prompt + o->gen;
    sw_engine_params ep;
    sw_engine_params_default(&ep);
    ep.kv_block_size = bs;
    ep.n_ctx = per_req + 1;
    if (o->kv_memory) ep.kv_memory_bytes = o->kv_memory;
    else ep.kv_n_blocks = conc * ((per_req + bs - 1) / bs) + 1; /* no preemption */
    if (o->batch_tokens > 0) ep.max_batch_tokens = o->batch_tokens;
    ep.max_running = SW_MAX(conc, 1);
    if (ep.max_running > ep.max_batch_tokens) ep.max_batch_tokens = ep.max_running;
    ep.max_queued = conc + 1;
    ep.no_prefix_cache = true; /* random prompts share nothing but BOS */
    sw_engine *e;
    sw_status st = sw_engine_create(m, &ep, &e, err);
    if (st != SW_OK) return st;

    bench_run run = {.n_done = 0};
    pthread_mutex_init(&run.mu, NULL);
    pthread_cond_init(&run.cv, NULL);
    req_stats *rs = calloc((size_t)conc, sizeof *rs);
    req_ctx *ctx = calloc((size_t)conc, sizeof *ctx);
    double *itl_buf = malloc((size_t)conc * (size_t)o->gen * sizeof *itl_buf);
    int32_t *ids = malloc((size_t)conc * (size_t)o->prompt * sizeof *ids);
    int submitted = 0;
    if (!rs || !ctx || !itl_buf || !ids) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory for %d requests", conc);
        goto done;
    }
    for (int32_t i = 0; i < conc; i++) {
        random_prompt(m, ids + (size_t)i * (size_t)o->prompt, o->prompt, &seed);
        rs[i].itl = itl_buf + (size_t)i * (size_t)o->gen;
        ctx[i].run = &run;
        ctx[i].st = &rs[i];
    }
    double t0 = sw_time_s();
    for (int32_t i = 0; i < conc; i++) {
        sw_request q;
        memset(&q, 0, sizeof q);
        q.prompt = ids + (size_t)i * (size_t)o->prompt;
        q.n_prompt = o->prompt;
        sw_sampler_params_default(&q.sampling);
        q.sampling.temperature = 0.0f;
        q.max_tokens = o->gen;
        q.ignore_eos = true;
        q.on_event = on_event;
        q.user = &ctx[i];
        rs[i].t_submit = sw_time_s();
        if ((st = sw_engine_submit(e, &q, NULL, err)) != SW_OK) break;
        submitted++;
    }
    pthread_mutex_lock(&run.mu);
    while (run.n_done < submitted) pthread_cond_wait(&run.cv, &run.mu);
    pthread_mutex_unlock(&run.mu);
    if (st != SW_OK) goto done;
    double t1 = sw_time_s();

    double *ttft = malloc((size_t)conc * sizeof *ttft);
    double *itl = malloc((size_t)conc * (size_t)o->gen * sizeof *itl);
    if (!ttft || !itl) {
        free(ttft);
        free(itl);
        st = sw_err_set(err, SW_E_NOMEM, "out of memory for latency samples");
        goto done;
    }
    size_t n_itl = 0;
    uint64_t gen_tokens = 0;
    for (int32_t i = 0; i < conc; i++) {
        if (rs[i].reason != SW_FINISH_LENGTH) {
            out->failed++;
            fprintf(stderr, "request %d ended with %s %s\n", i, sw_finish_reason_str(rs[i].reason),
                    rs[i].message);
        }
        ttft[i] = rs[i].n_tok > 0 ? rs[i].t_first - rs[i].t_submit : 0.0;
        memcpy(itl + n_itl, rs[i].itl, (size_t)rs[i].n_itl * sizeof *itl);
        n_itl += (size_t)rs[i].n_itl;
        gen_tokens += (uint64_t)rs[i].n_tok;
    }
    qsort(ttft, (size_t)conc, sizeof *ttft, cmp_double);
    qsort(itl, n_itl, sizeof *itl, cmp_double);
    out->wall_s = t1 - t0;
    out->gen_tok_s = out->wall_s > 0 ? (double)gen_tokens / out->wall_s : 0.0;
    out->ttft_p50 = pct(ttft, (size_t)conc, 50) * 1e3;
    out->ttft_p99 = pct(ttft, (size_t)conc, 99) * 1e3;
    out->itl_p50 = pct(itl, n_itl, 50) * 1e3;
    out->itl_p99 = pct(itl, n_itl, 99) * 1e3;
    sw_engine_stats es;
    sw_engine_stats_get(e, &es);
    out->preempted = es.preempted;
    free(ttft);
    free(itl);
done:
    sw_engine_free(e); /* cancels anything left, so the waits above cannot hang */
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.mu);
    free(rs);
    free(ctx);
    free(itl_buf);
    free(ids);
    return st;
}

int sw_bench_engine_main(int argc, char **argv) {
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    sw_err err = {{0}};
    sw_backend_config bc = {.name = o.backend, .n_threads = o.threads};
    sw_backend *be = NULL;
    sw_model *m = NULL;
    sw_status st = sw_backend_create(&bc, &be, &err);
    if (st == SW_OK) {
        sw_model_params mp = {0};
        st = sw_model_load(o.model, be, &mp, &m, &err);
    }
    if (st != SW_OK) {
        fprintf(stderr, "spillway-bench engine: %s\n", err.msg);
        sw_backend_free(be);
        return 1;
    }
    if ((int64_t)o.prompt + o.gen >= sw_model_config_get(m)->n_ctx_train) {
        fprintf(stderr, "spillway-bench engine: --prompt + --gen = %d exceeds the model context %lld\n",
                o.prompt + o.gen, (long long)sw_model_config_get(m)->n_ctx_train);
        sw_model_free(m);
        sw_backend_free(be);
        return 2;
    }
    /* Warm-up: thread pool, scratch buffers, page faults on the weights. */
    level_result warm;
    bench_opts wo = o;
    wo.prompt = SW_MIN(o.prompt, 16);
    wo.gen = SW_MIN(o.gen, 4);
    st = run_level(m, &wo, 1, 1, &warm, &err);

    level_result *res = calloc((size_t)o.n_conc, sizeof *res);
    if (!res && st == SW_OK) st = sw_err_set(&err, SW_E_NOMEM, "out of memory");
    for (int k = 0; k < o.n_conc && st == SW_OK; k++) {
        st = run_level(m, &o, o.conc[k], 1000 + (uint64_t)k, &res[k], &err);
        if (st == SW_OK && !o.json)
            fprintf(stderr, "concurrency %d: %.1f gen tok/s, TTFT p50 %.1f ms\n", o.conc[k],
                    res[k].gen_tok_s, res[k].ttft_p50);
    }
    if (st != SW_OK) {
        fprintf(stderr, "spillway-bench engine: %s\n", err.msg);
        rc = 1;
    } else if (o.json) {
        printf("[\n");
        for (int k = 0; k < o.n_conc; k++)
            printf("  {\"concurrency\": %d, \"prompt\": %d, \"gen\": %d, \"backend\": \"%s\", "
                   "\"gen_tok_s\": %.2f, \"ttft_p50_ms\": %.3f, \"ttft_p99_ms\": %.3f, "
                   "\"itl_p50_ms\": %.3f, \"itl_p99_ms\": %.3f, \"wall_s\": %.3f, "
                   "\"preempted\": %llu, \"failed\": %d}%s\n",
                   res[k].concurrency, o.prompt, o.gen, sw_backend_name(be), res[k].gen_tok_s,
                   res[k].ttft_p50, res[k].ttft_p99, res[k].itl_p50, res[k].itl_p99,
                   res[k].wall_s, (unsigned long long)res[k].preempted, res[k].failed,
                   k + 1 < o.n_conc ? "," : "");
        printf("]\n");
    } else {
        printf("%-12s %12s %12s %12s %12s %12s %10s\n", "concurrency", "gen tok/s", "TTFT p50 ms",
               "TTFT p99 ms", "ITL p50 ms", "ITL p99 ms", "wall s");
        for (int k = 0; k < o.n_conc; k++)
            printf("%-12d %12.1f %12.2f %12.2f %12.2f %12.2f %10.2f\n", res[k].concurrency,
                   res[k].gen_tok_s, res[k].ttft_p50, res[k].ttft_p99, res[k].itl_p50,
                   res[k].itl_p99, res[k].wall_s);
    }
    for (int k = 0; k < o.n_conc && res; k++)
        if (res[k].failed) rc = 1;
    free(res);
    sw_model_free(m);
    sw_backend_free(be);
    return rc;
}
