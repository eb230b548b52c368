/* bench_model.c — `spillway-bench model`: llama-bench style prompt-processing
 * (pp: one forward over p tokens) and token-generation (tg: n decode steps from
 * an empty context, of one sequence or of a batch of b sequences in lock step)
 * throughput, median over repetitions; and what a decode step costs in backend
 * ops (sw_be_stats): ops per decode step and the distinct step signatures over
 * a generation (1 = every step could replay one CUDA graph). */
#include <spillway.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct bench_opts {
    const char *model;
    int32_t n_prompt, n_gen, reps, threads, batch;
    const char *backend;
    bool json;
} bench_opts;

static void bench_usage(FILE *f) {
    fprintf(f, "usage: spillway-bench model -m FILE [-p 128] [-n 64] [-b 1] [--backend cpu|cuda|vulkan|auto]\n"
               "                            [--threads N] [--reps 3] [--json]\n"
               "  -b, --batch B   tg decodes B sequences in lock step (tok/s counts all B)\n");
}

static bool to_i32(const char *s, int32_t lo, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

static int bench_parse(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.n_prompt = 128, .n_gen = 64, .reps = 3, .batch = 1, .backend = "auto"};
    static const struct option longs[] = {
        {"model", required_argument, NULL, 'm'},   {"reps", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'}, {"batch", required_argument, NULL, 'b'},
        {"backend", required_argument, NULL, 'B'}, {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:p:n:r:t:b:h", longs, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p': ok = to_i32(optarg, 0, &o->n_prompt); break;
        case 'n': ok = to_i32(optarg, 0, &o->n_gen); break;
        case 'r': ok = to_i32(optarg, 1, &o->reps); break;
        case 't': ok = to_i32(optarg, 1, &o->threads); break;
        case 'b': ok = to_i32(optarg, 1, &o->batch); break;
        case 'B': o->backend = optarg; break;
        case 'J': o->json = true; break;
        case 'h': bench_usage(stdout); exit(0);
        case ':':
            fprintf(stderr, "spillway-bench model: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "spillway-bench model: unknown flag %s\n", argv[optind - 1]);
            bench_usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "spillway-bench model: bad value for %s: '%s'\n", argv[optind - 1],
                    optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spillway-bench model: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->model) {
        fprintf(stderr, "spillway-bench model: -m FILE is required\n");
        bench_usage(stderr);
        return 2;
    }
    if (o->n_prompt == 0 && o->n_gen == 0) {
        fprintf(stderr, "spillway-bench model: nothing to do (-p 0 -n 0)\n");
        return 2;
    }
    return 0;
}

/* The sequences of a run: each one's block table grows as tokens are fed;
 * every step hands the backend tables of one fixed width (cap), as the engine
 * does, so decode steps keep one shape. */
typedef struct bseq {
    int32_t *blocks;
    int32_t n_blocks;
    int32_t n_past;
} bseq;

typedef struct bench_run {
    sw_model *m;
    sw_kv_cache *kv;
    int32_t n_seqs, cap, n_vocab, k;
    bseq *seqs;          /* [n_seqs] */
    int32_t *pos, *seq_start, *n_blocks;
    const int32_t **tables;
    uint8_t *summarized;    /* [n_seqs] zeros: no row comes whole */
    sw_logits_stats *stats; /* the engine's summary of each row's logits */
    int32_t *top_ids;
    float *top_logits;
} bench_run;

static void bseq_reset(bench_run *r) {
    for (int32_t q = 0; q < r->n_seqs; q++) {
        bseq *s = &r->seqs[q];
        for (int32_t i = 0; i < s->n_blocks; i++) sw_kv_free_block(r->kv, s->blocks[i]);
        s->n_blocks = 0;
        s->n_past = 0;
    }
}

/* One forward: sequences [0, n) each feed `per` tokens (toks[0..n * per)).
 * Rows of logits come back summarized (statistics and the k best), as the
 * engine asks for them when sampling. */
static sw_status bseq_eval(bench_run *r, int32_t n, int32_t per, const int32_t *toks,
                           sw_err *err) {
    int32_t bs = sw_kv_block_size(r->kv);
    for (int32_t q = 0; q < n; q++) {
        bseq *s = &r->seqs[q];
        while (s->n_blocks * bs < s->n_past + per) {
            int32_t b = sw_kv_alloc_block(r->kv);
            if (b < 0) return sw_err_set(err, SW_E_NOMEM, "KV cache full");
            s->blocks[s->n_blocks++] = b;
        }
        r->seq_start[q] = q * per;
        r->tables[q] = s->blocks;
        r->n_blocks[q] = s->n_blocks;
        for (int32_t i = 0; i < per; i++) r->pos[q * per + i] = s->n_past + i;
    }
    r->seq_start[n] = n * per;
    sw_batch b = {.n_tokens = n * per, .tokens = toks, .pos = r->pos, .n_seqs = n,
                  .seq_start = r->seq_start, .block_tables = r->tables, .n_blocks = r->n_blocks,
                  .block_table_cap = r->cap};
    sw_logits_out o = {.full_rows = r->summarized, .k = r->k, .stats = r->stats,
                       .top_ids = r->top_ids, .top_logits = r->top_logits};
    sw_status st = sw_model_forward_out(r->m, r->kv, &b, &o, err);
    if (st == SW_OK)
        for (int32_t q = 0; q < n; q++) r->seqs[q].n_past += per;
    return st;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int32_t n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static cJSON *num_array(const double *v, int32_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* What a decode step costs in backend ops, over the timed generations. */
typedef struct step_costs {
    uint32_t ops_per_step;   /* ops of the last decode step */
    uint32_t signatures;     /* most distinct step signatures in one generation */
} step_costs;

/* Time pp (sequence 0) and tg (all sequences in lock step) for o->reps
 * repetitions; rates in tok/s. */
static sw_status run_bench(const bench_opts *o, bench_run *r, double *pp, double *tg,
                           step_costs *sc, sw_err *err) {
    sw_backend *be = sw_model_backend(r->m);
    int32_t n_max = SW_MAX(o->n_prompt, 1) + o->n_gen * o->batch;
    int32_t *toks = malloc((size_t)n_max * sizeof *toks);
    if (!toks) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    sw_status st = SW_OK;
    /* Arbitrary but fixed token ids, like llama-bench's random tokens. */
    uint32_t x = 12345;
    for (int32_t i = 0; i < n_max; i++) {
        x = x * 1664525u + 1013904223u;
        toks[i] = (int32_t)((x >> 8) % (uint32_t)r->n_vocab);
    }
    /* Warm up: one prompt pass and one decode step (page faults, allocations). */
    if (o->n_prompt > 0 && (st = bseq_eval(r, 1, o->n_prompt, toks, err))) goto done;
    bseq_reset(r);
    if ((st = bseq_eval(r, o->batch, 1, toks, err))) goto done;
    bseq_reset(r);
    for (int32_t rep = 0; rep < o->reps; rep++) {
        if (o->n_prompt > 0) {
            double t0 = sw_time_s();
            if ((st = bseq_eval(r, 1, o->n_prompt, toks, err))) goto done;
            pp[rep] = o->n_prompt / (sw_time_s() - t0);
            bseq_reset(r);
        }
        if (o->n_gen > 0) {
            sw_be_stats_reset(be);
            double t0 = sw_time_s();
            for (int32_t i = 0; i < o->n_gen; i++)
                if ((st = bseq_eval(r, o->batch, 1, toks + (size_t)i * o->batch, err))) goto done;
            tg[rep] = (double)o->n_gen * o->batch / (sw_time_s() - t0);
            sw_be_stats bs;
            sw_be_stats_get(be, &bs);
            sc->ops_per_step = bs.last_step_ops;
            sc->signatures = SW_MAX(sc->signatures, bs.n_signatures);
            bseq_reset(r);
        }
    }
done:
    free(toks);
    return st;
}

/* Everything a run needs besides the model and the cache; NULL when out of memory. */
static bool bench_run_alloc(bench_run *r, int32_t n_seqs, int32_t max_tokens) {
    r->n_seqs = n_seqs;
    r->seqs = calloc((size_t)n_seqs, sizeof *r->seqs);
    r->pos = malloc((size_t)max_tokens * sizeof *r->pos);
    r->seq_start = malloc((size_t)(n_seqs + 1) * sizeof *r->seq_start);
    r->n_blocks = malloc((size_t)n_seqs * sizeof *r->n_blocks);
    r->tables = malloc((size_t)n_seqs * sizeof *r->tables);
    r->summarized = calloc((size_t)n_seqs, 1);
    r->stats = malloc((size_t)n_seqs * sizeof *r->stats);
    r->top_ids = malloc((size_t)n_seqs * (size_t)r->k * sizeof *r->top_ids);
    r->top_logits = malloc((size_t)n_seqs * (size_t)r->k * sizeof *r->top_logits);
    bool ok = r->seqs && r->pos && r->seq_start && r->n_blocks && r->tables && r->summarized &&
              r->stats && r->top_ids && r->top_logits;
    for (int32_t q = 0; ok && q < n_seqs; q++)
        ok = (r->seqs[q].blocks = malloc((size_t)r->cap * sizeof(int32_t))) != NULL;
    return ok;
}

static void bench_run_free(bench_run *r) {
    for (int32_t q = 0; r->seqs && q < r->n_seqs; q++) free(r->seqs[q].blocks);
    free(r->seqs);
    free(r->pos);
    free(r->seq_start);
    free(r->n_blocks);
    free(r->tables);
    free(r->summarized);
    free(r->stats);
    free(r->top_ids);
    free(r->top_logits);
}

int sw_bench_model_main(int argc, char **argv) {
    bench_opts o;
    int rc = bench_parse(argc, argv, &o);
    if (rc) return rc;
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_model *m = NULL;
    sw_kv_cache *kv = NULL;
    bench_run run = {0};
    step_costs sc = {0};
    double *pp = calloc((size_t)o.reps, sizeof *pp), *tg = calloc((size_t)o.reps, sizeof *tg);
    rc = 1;
    if (!pp || !tg) goto done;
    sw_backend_config bc = {.name = o.backend, .n_threads = o.threads};
    if (sw_backend_create(&bc, &be, &err) != SW_OK) {
        fprintf(stderr, "spillway-bench model: backend %s: %s\n", o.backend, err.msg);
        goto done;
    }
    sw_model_params mp = {.progress = !o.json};
    if (sw_model_load(o.model, be, &mp, &m, &err) != SW_OK) {
        fprintf(stderr, "spillway-bench model: %s\n", err.msg);
        goto done;
    }
    const sw_model_config *cfg = sw_model_config_get(m);
    int32_t n_ctx = SW_MAX(o.n_prompt, o.n_gen);
    if (n_ctx > cfg->n_ctx_train) {
        fprintf(stderr, "spillway-bench model: -p/-n %d exceeds the model's context %lld\n", n_ctx,
                (long long)cfg->n_ctx_train);
        goto done;
    }
    run.m = m;
    run.cap = (n_ctx + 15) / 16;
    run.n_vocab = (int32_t)cfg->n_vocab;
    run.k = SW_MIN(40, run.n_vocab); /* the default top_k */
    sw_kv_params kp = {.block_size = 16, .n_blocks = o.batch * run.cap, .type = SW_TYPE_F16};
    if (!bench_run_alloc(&run, o.batch, SW_MAX(o.n_prompt, o.batch))) {
        fprintf(stderr, "spillway-bench model: out of memory\n");
        goto done;
    }
    if (sw_kv_cache_create(m, &kp, &kv, &err) != SW_OK ||
        (run.kv = kv, run_bench(&o, &run, pp, tg, &sc, &err)) != SW_OK) {
        fprintf(stderr, "spillway-bench model: %s\n", err.msg);
        goto done;
    }

    double pp_med = o.n_prompt > 0 ? median(pp, o.reps) : 0;
    double tg_med = o.n_gen > 0 ? median(tg, o.reps) : 0;
    uint64_t wbytes = sw_model_weight_bytes(m);
    double gbps = (double)wbytes * tg_med / o.batch / 1e9; /* weights stream once a step */
    const char *bname = sw_backend_name(be);
    int32_t threads = be->n_threads;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", o.model);
        cJSON_AddStringToObject(j, "model_name", cfg->name);
        cJSON_AddStringToObject(j, "arch", cfg->arch_name);
        cJSON_AddStringToObject(j, "backend", bname);
        if (!strcmp(bname, "cpu"))
            cJSON_AddStringToObject(j, "cpu_isa", sw_cpu_isa_name(sw_backend_cpu_isa(be)));
        cJSON_AddNumberToObject(j, "threads", threads);
        cJSON_AddNumberToObject(j, "n_prompt", o.n_prompt);
        cJSON_AddNumberToObject(j, "n_gen", o.n_gen);
        cJSON_AddNumberToObject(j, "batch", o.batch);
        cJSON_AddNumberToObject(j, "n_layer", (double)cfg->n_layer);
        cJSON_AddNumberToObject(j, "reps", o.reps);
        cJSON_AddNumberToObject(j, "weight_bytes", (double)wbytes);
        cJSON_AddNumberToObject(j, "n_params", (double)sw_model_n_params(m));
        cJSON_AddNumberToObject(j, "pp_tok_s", pp_med);
        cJSON_AddNumberToObject(j, "tg_tok_s", tg_med);
        cJSON_AddNumberToObject(j, "tg_gbps", gbps);
        if (o.n_gen > 0) {
            cJSON_AddNumberToObject(j, "ops_per_decode_step", sc.ops_per_step);
            cJSON_AddNumberToObject(j, "step_signatures", sc.signatures);
        }
        if (o.n_prompt > 0) cJSON_AddItemToObject(j, "pp_tok_s_reps", num_array(pp, o.reps));
        if (o.n_gen > 0) cJSON_AddItemToObject(j, "tg_tok_s_reps", num_array(tg, o.reps));
        char *txt = cJSON_PrintUnformatted(j);
        if (txt) printf("%s\n", txt);
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("| %-28s | %10s | %8s | %-7s | %7s | %-6s | %12s |\n", "model", "size", "params",
               "backend", "threads", "test", "t/s");
        printf("|%s|%s|%s|%s|%s|%s|%s|\n", "------------------------------", "-----------:",
               "---------:", "---------", "--------:", "--------", "-------------:");
        const char *mname = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
        char size[32], params[32], test[32];
        snprintf(size, sizeof size, "%.2f MiB", (double)wbytes / (1 << 20));
        snprintf(params, sizeof params, "%.2f M", (double)sw_model_n_params(m) / 1e6);
        if (o.n_prompt > 0) {
            snprintf(test, sizeof test, "pp%d", o.n_prompt);
            printf("| %-28.28s | %10s | %8s | %-7s | %7d | %-6s | %12.2f |\n", mname, size, params,
                   bname, threads, test, pp_med);
        }
        if (o.n_gen > 0) {
            if (o.batch > 1) snprintf(test, sizeof test, "tg%dx%d", o.n_gen, o.batch);
            else snprintf(test, sizeof test, "tg%d", o.n_gen);
            printf("| %-28.28s | %10s | %8s | %-7s | %7d | %-6s | %12.2f |\n", mname, size, params,
                   bname, threads, test, tg_med);
            printf("tg weight streaming: %.2f GB/s (median of %d reps); %u backend ops per "
                   "decode step (%lld layers), %u step signature(s)\n",
                   gbps, o.reps, sc.ops_per_step, (long long)cfg->n_layer, sc.signatures);
        }
    }
    rc = 0;
done:
    free(pp);
    free(tg);
    bench_run_free(&run);
    sw_kv_cache_free(kv);
    sw_model_free(m);
    sw_backend_free(be);
    return rc;
}
