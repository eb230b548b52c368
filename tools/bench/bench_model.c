/* bench_model.c — `spillway-bench model`: llama-bench style prompt-processing
 * (pp: one forward over p tokens) and token-generation (tg: n single-token
 * decode steps from an empty context) throughput, median over repetitions. */
#include <spillway.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct bench_opts {
    const char *model;
    int32_t n_prompt, n_gen, reps, threads;
    const char *backend;
    bool json;
} bench_opts;

static void bench_usage(FILE *f) {
    fprintf(f, "usage: spillway-bench model -m FILE [-p 128] [-n 64] [--backend cpu|cuda|vulkan|auto]\n"
               "                            [--threads N] [--reps 3] [--json]\n");
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
    *o = (bench_opts){.n_prompt = 128, .n_gen = 64, .reps = 3, .backend = "auto"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        } else if (!v) {
            fprintf(stderr, "spillway-bench model: %s: unknown flag or missing value\n", a);
            return 2;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-p")) ok = to_i32(v, 0, &o->n_prompt);
        else if (!strcmp(a, "-n")) ok = to_i32(v, 0, &o->n_gen);
        else if (!strcmp(a, "--reps") || !strcmp(a, "-r")) ok = to_i32(v, 1, &o->reps);
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) ok = to_i32(v, 1, &o->threads);
        else if (!strcmp(a, "--backend")) o->backend = v;
        else {
            fprintf(stderr, "spillway-bench model: unknown flag %s\n", a);
            bench_usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "spillway-bench model: bad value for %s: '%s'\n", a, v);
            return 2;
        }
        i++;
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

/* One sequence: its block table grows as tokens are fed. */
typedef struct bseq {
    int32_t *blocks;
    int32_t n_blocks;
    int32_t n_past;
} bseq;

static void bseq_reset(sw_kv_cache *kv, bseq *s) {
    for (int32_t i = 0; i < s->n_blocks; i++) sw_kv_free_block(kv, s->blocks[i]);
    s->n_blocks = 0;
    s->n_past = 0;
}

static sw_status bseq_eval(sw_model *m, sw_kv_cache *kv, bseq *s, const int32_t *toks,
                           int32_t *pos, int32_t n, float *logits, sw_err *err) {
    int32_t bs = sw_kv_block_size(kv);
    while (s->n_blocks * bs < s->n_past + n) {
        int32_t b = sw_kv_alloc_block(kv);
        if (b < 0) return sw_err_set(err, SW_E_NOMEM, "KV cache full");
        s->blocks[s->n_blocks++] = b;
    }
    for (int32_t i = 0; i < n; i++) pos[i] = s->n_past + i;
    int32_t seq_start[2] = {0, n};
    const int32_t *tables[1] = {s->blocks};
    sw_batch b = {.n_tokens = n, .tokens = toks, .pos = pos, .n_seqs = 1,
                  .seq_start = seq_start, .block_tables = tables, .n_blocks = &s->n_blocks};
    sw_status st = sw_model_forward(m, kv, &b, logits, err);
    if (st == SW_OK) s->n_past += n;
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

/* Time pp and tg for o->reps repetitions; rates in tok/s. */
static sw_status run_bench(const bench_opts *o, sw_model *m, sw_kv_cache *kv, bseq *s,
                           double *pp, double *tg, sw_err *err) {
    int32_t n_vocab = (int32_t)sw_model_config_get(m)->n_vocab;
    int32_t n_max = SW_MAX(o->n_prompt, 1);
    int32_t *toks = malloc((size_t)n_max * sizeof *toks), *pos = malloc((size_t)n_max * sizeof *pos);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    sw_status st = SW_OK;
    if (!toks || !pos || !logits) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    /* Arbitrary but fixed token ids, like llama-bench's random tokens. */
    uint32_t r = 12345;
    for (int32_t i = 0; i < n_max; i++) {
        r = r * 1664525u + 1013904223u;
        toks[i] = (int32_t)((r >> 8) % (uint32_t)n_vocab);
    }
    /* Warm up: one prompt pass and one decode step (page faults, allocations). */
    if (o->n_prompt > 0 && (st = bseq_eval(m, kv, s, toks, pos, o->n_prompt, logits, err)))
        goto done;
    bseq_reset(kv, s);
    if ((st = bseq_eval(m, kv, s, toks, pos, 1, logits, err))) goto done;
    bseq_reset(kv, s);
    for (int32_t rep = 0; rep < o->reps; rep++) {
        if (o->n_prompt > 0) {
            double t0 = sw_time_s();
            if ((st = bseq_eval(m, kv, s, toks, pos, o->n_prompt, logits, err))) goto done;
            pp[rep] = o->n_prompt / (sw_time_s() - t0);
            bseq_reset(kv, s);
        }
        if (o->n_gen > 0) {
            double t0 = sw_time_s();
            for (int32_t i = 0; i < o->n_gen; i++)
                if ((st = bseq_eval(m, kv, s, &toks[i % n_max], pos, 1, logits, err))) goto done;
            tg[rep] = o->n_gen / (sw_time_s() - t0);
            bseq_reset(kv, s);
        }
    }
done:
    free(toks);
    free(pos);
    free(logits);
    return st;
}

int sw_bench_model_main(int argc, char **argv) {
    bench_opts o;
    int rc = bench_parse(argc, argv, &o);
    if (rc) return rc;
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_model *m = NULL;
    sw_kv_cache *kv = NULL;
    bseq s = {0};
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
    sw_kv_params kp = {.block_size = 16, .n_blocks = (n_ctx + 15) / 16, .type = SW_TYPE_F16};
    s.blocks = malloc((size_t)kp.n_blocks * sizeof *s.blocks);
    if (!s.blocks || sw_kv_cache_create(m, &kp, &kv, &err) != SW_OK ||
        run_bench(&o, m, kv, &s, pp, tg, &err) != SW_OK) {
        fprintf(stderr, "spillway-bench model: %s\n", err.msg);
        goto done;
    }

    double pp_med = o.n_prompt > 0 ? median(pp, o.reps) : 0;
    double tg_med = o.n_gen > 0 ? median(tg, o.reps) : 0;
    uint64_t wbytes = sw_model_weight_bytes(m);
    double gbps = (double)wbytes * tg_med / 1e9;
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
        cJSON_AddNumberToObject(j, "reps", o.reps);
        cJSON_AddNumberToObject(j, "weight_bytes", (double)wbytes);
        cJSON_AddNumberToObject(j, "n_params", (double)sw_model_n_params(m));
        cJSON_AddNumberToObject(j, "pp_tok_s", pp_med);
        cJSON_AddNumberToObject(j, "tg_tok_s", tg_med);
        cJSON_AddNumberToObject(j, "tg_gbps", gbps);
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
            snprintf(test, sizeof test, "tg%d", o.n_gen);
            printf("| %-28.28s | %10s | %8s | %-7s | %7d | %-6s | %12.2f |\n", mname, size, params,
                   bname, threads, test, tg_med);
            printf("tg weight streaming: %.2f GB/s (median of %d reps)\n", gbps, o.reps);
        }
    }
    rc = 0;
done:
    free(pp);
    free(tg);
    free(s.blocks);
    sw_kv_cache_free(kv);
    sw_model_free(m);
    sw_backend_free(be);
    return rc;
}
