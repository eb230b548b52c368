/* test_step_signature.c — the backend counters (sw_be_stats) and the shape of
 * a decode step over time, on the CPU backend (and on Vulkan when a device
 * exists: lavapipe in CI), with stories260K and a synthetic tiny q8_0 model:
 * - one sequence decoding its whole context (512 positions; 100 on lavapipe)
 *   issues the same step every time (one signature) when the block tables have a fixed
 *   capacity, as the engine sets it; the default (the need rounded up to a
 *   power of two) gives one signature per width, so the count is seen to move;
 * - a steady batch of 8 and of 64 sequences at staggered positions (each
 *   crossing block boundaries at its own time) keeps one signature too;
 * - the ops per decode step are what the forward pass issues per layer plus the
 *   embedding, the logits rows, the final norm and the classifier, and the op
 *   counter counts ops outside a step without making a step;
 * - through the engine: a request's decode steps share one signature, apart
 *   from its prefill step;
 * - q/k/v and gate/up concatenated at load give the logits of the separate
 *   weights (up to the rounding of the sums) in fewer ops. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend.h"
#include "engine.h"
#include "model.h"

static const char *g_backend = "cpu";
static const char *g_path;
static int32_t g_steps; /* decode steps of the one-sequence test; 0: the whole context */

typedef struct fx {
    sw_backend *be;
    sw_model *m;
    sw_kv_cache *kv;
    int32_t bs, n_ctx, n_vocab, n_layer;
    float *logits;
} fx;

static void fx_open_with(fx *f, int32_t max_seqs, bool no_concat) {
    sw_err err = {{0}};
    memset(f, 0, sizeof *f);
    sw_backend_config bc = {.name = g_backend, .n_threads = 2, .device = -1};
    if (sw_backend_create(&bc, &f->be, &err) != SW_OK) fail_msg("backend: %s", err.msg);
    sw_model_params mp = {.no_concat = no_concat};
    if (sw_model_load(g_path, f->be, &mp, &f->m, &err) != SW_OK) fail_msg("load: %s", err.msg);
    const sw_model_config *c = sw_model_config_get(f->m);
    f->n_ctx = (int32_t)SW_MIN(c->n_ctx_train, 512);
    f->n_vocab = (int32_t)c->n_vocab;
    f->n_layer = (int32_t)c->n_layer;
    f->bs = 16;
    sw_kv_params kp = {.block_size = f->bs, .n_blocks = max_seqs * ((f->n_ctx + f->bs - 1) / f->bs),
                       .type = SW_TYPE_F16};
    if (sw_kv_cache_create(f->m, &kp, &f->kv, &err) != SW_OK) fail_msg("kv: %s", err.msg);
    f->logits = malloc(sizeof(float) * (size_t)max_seqs * (size_t)f->n_vocab);
}

static void fx_open(fx *f, int32_t max_seqs) { fx_open_with(f, max_seqs, false); }

static void fx_close(fx *f) {
    free(f->logits);
    sw_kv_cache_free(f->kv);
    sw_model_free(f->m);
    sw_backend_free(f->be);
}

/* S sequences decoding in lock step: sequence s starts at position start[s]
 * (its context before that is written by the first step, a prefill). */
typedef struct lockstep {
    int32_t S;
    int32_t *blocks;   /* [S][max_blocks] */
    int32_t *n_blocks; /* [S] */
    int32_t max_blocks;
    int32_t *pos;      /* [S]: next position */
} lockstep;

static void ls_init(fx *f, lockstep *l, int32_t S, const int32_t *start) {
    l->S = S;
    l->max_blocks = (f->n_ctx + f->bs - 1) / f->bs;
    l->blocks = calloc((size_t)S * (size_t)l->max_blocks, sizeof(int32_t));
    l->n_blocks = calloc((size_t)S, sizeof(int32_t));
    l->pos = calloc((size_t)S, sizeof(int32_t));
    for (int32_t s = 0; s < S; s++) l->pos[s] = start[s];
}

static void ls_free(fx *f, lockstep *l) {
    for (int32_t s = 0; s < l->S; s++)
        for (int32_t i = 0; i < l->n_blocks[s]; i++) sw_kv_free_block(f->kv, l->blocks[s * l->max_blocks + i]);
    free(l->blocks);
    free(l->n_blocks);
    free(l->pos);
}

/* One forward: every sequence feeds n[s] tokens from its position on. */
static void ls_step(fx *f, lockstep *l, const int32_t *n, int32_t cap) {
    int32_t T = 0;
    for (int32_t s = 0; s < l->S; s++) T += n[s];
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)T), *pos = malloc(sizeof(int32_t) * (size_t)T);
    int32_t *ss = malloc(sizeof(int32_t) * (size_t)(l->S + 1));
    const int32_t **tables = malloc(sizeof(int32_t *) * (size_t)l->S);
    int32_t t = 0;
    for (int32_t s = 0; s < l->S; s++) {
        ss[s] = t;
        while (l->n_blocks[s] * f->bs < l->pos[s] + n[s]) {
            int32_t b = sw_kv_alloc_block(f->kv);
            assert_true(b >= 0);
            l->blocks[s * l->max_blocks + l->n_blocks[s]++] = b;
        }
        tables[s] = l->blocks + s * l->max_blocks;
        for (int32_t i = 0; i < n[s]; i++, t++) {
            pos[t] = l->pos[s] + i;
            tok[t] = (7 * pos[t] + 13 * s + 1) % f->n_vocab;
        }
        l->pos[s] += n[s];
    }
    ss[l->S] = T;
    sw_batch b = {.n_tokens = T, .tokens = tok, .pos = pos, .n_seqs = l->S, .seq_start = ss,
                  .block_tables = tables, .n_blocks = l->n_blocks, .block_table_cap = cap};
    sw_err err = {{0}};
    if (sw_model_forward(f->m, f->kv, &b, f->logits, &err) != SW_OK) fail_msg("forward: %s", err.msg);
    free(tok);
    free(pos);
    free(ss);
    free(tables);
}

/* Prefill each sequence up to its start, reset the counters, then decode
 * `steps` tokens per sequence; returns the counters of the decode. */
static sw_be_stats decode_run(fx *f, int32_t S, const int32_t *start, int32_t steps, int32_t cap) {
    lockstep l;
    int32_t zero[64] = {0};
    ls_init(f, &l, S, zero);
    int32_t *n = malloc(sizeof(int32_t) * (size_t)S);
    for (int32_t s = 0; s < S; s++) n[s] = start[s];
    ls_step(f, &l, n, cap);
    sw_be_stats_reset(f->be);
    for (int32_t s = 0; s < S; s++) n[s] = 1;
    for (int32_t i = 0; i < steps; i++) ls_step(f, &l, n, cap);
    sw_be_stats st;
    sw_be_stats_get(f->be, &st);
    free(n);
    ls_free(f, &l);
    return st;
}

static void test_one_sequence_whole_context(void **state) {
    (void)state;
    fx f;
    fx_open(&f, 1);
    const int32_t cap = (f.n_ctx + f.bs - 1) / f.bs, start[1] = {1};
    const int32_t steps = g_steps > 0 ? g_steps : f.n_ctx - 1;
    sw_be_stats st = decode_run(&f, 1, start, steps, cap);
    print_message("%s: %d decode steps, %u ops each (%d layers), %u signature(s)\n", g_backend,
                  steps, st.last_step_ops, f.n_layer, st.n_signatures);
    assert_int_equal(st.steps, steps);
    assert_int_equal(st.n_signatures, 1);
    assert_int_equal(st.ops, st.steps * st.last_step_ops);
    /* the forward pass: embedding, per layer the ops of one block, the last
     * residual add, the rows that produce logits, the final norm and the
     * classifier; at most 10 ops per layer (the fused ops and weights) */
    const uint32_t per_layer = (st.last_step_ops - 5) / (uint32_t)f.n_layer;
    print_message("%s: %u ops per layer\n", g_backend, per_layer);
    assert_true(st.last_step_ops > 5 && (st.last_step_ops - 5) % (uint32_t)f.n_layer == 0);
    assert_true(per_layer <= 10);
    /* without a capacity, the tables grow by powers of two: one signature per width */
    st = decode_run(&f, 1, start, steps, 0);
    int32_t widths = 0, need = (steps + 1 + f.bs - 1) / f.bs;
    for (int32_t w = 1; w < 2 * need; w *= 2) widths++;
    print_message("%s: without a table capacity, %u signatures\n", g_backend, st.n_signatures);
    assert_int_equal(st.n_signatures, widths);
    /* ops outside a step are counted but make no step */
    sw_be_stats_reset(f.be);
    float tmp[4] = {1, 2, 3, 4};
    sw_buffer *buf = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_be_buf_alloc(f.be, sizeof tmp, SW_BUF_COMPUTE, &buf, &err), SW_OK);
    assert_int_equal(sw_be_upload(f.be, buf, 0, tmp, sizeof tmp, &err), SW_OK);
    sw_tensor t = sw_tensor_make(buf, 0, SW_TYPE_F32, 4, 1, 1, 1);
    assert_int_equal(sw_be_add(f.be, &t, &t, &t, &err), SW_OK);
    assert_int_equal(sw_be_download(f.be, buf, 0, tmp, sizeof tmp, &err), SW_OK);
    assert_true(tmp[3] == 8.0f);
    sw_be_stats_get(f.be, &st);
    assert_int_equal(st.ops, 1);
    assert_int_equal(st.steps, 0);
    assert_int_equal(st.n_signatures, 0);
    sw_be_buf_free(f.be, buf);
    fx_close(&f);
}

/* Steady batches: every sequence at its own position, all decoding. */
static void steady_batch(int32_t S, int32_t steps) {
    fx f;
    fx_open(&f, S);
    int32_t start[64];
    for (int32_t s = 0; s < S; s++) start[s] = 1 + (s * 37) % 200;
    const int32_t cap = (f.n_ctx + f.bs - 1) / f.bs;
    sw_be_stats st = decode_run(&f, S, start, steps, cap);
    print_message("%s: batch of %d, %d steps: %u ops per step, %u signature(s)\n", g_backend, S,
                  steps, st.last_step_ops, st.n_signatures);
    assert_int_equal(st.steps, steps);
    assert_int_equal(st.n_signatures, 1);
    fx_close(&f);
}

static void test_steady_batch_8(void **state) {
    (void)state;
    steady_batch(8, 40);
}

static void test_steady_batch_64(void **state) {
    (void)state;
    steady_batch(64, 24);
}

/* The engine passes its n_ctx as the table capacity: one request gives one
 * prefill signature and one decode signature, however long it runs. */
typedef struct done {
    int n_final, n_tok;
} done;

static void on_ev(void *user, const sw_event *ev) {
    done *d = user;
    if (ev->type == SW_EVENT_FINAL) __atomic_store_n(&d->n_final, 1, __ATOMIC_SEQ_CST);
    else d->n_tok++;
}

static void test_engine_decode_signature(void **state) {
    (void)state;
    fx f;
    fx_open(&f, 1);
    sw_engine_params p;
    sw_engine_params_default(&p);
    p.n_ctx = 160;
    sw_engine *e = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_engine_create(f.m, &p, &e, &err), SW_OK);
    int32_t prompt[5] = {1, 20, 30, 40, 50};
    done d = {0};
    sw_request q = {.prompt = prompt, .n_prompt = 5, .max_tokens = 120, .ignore_eos = true,
                    .on_event = on_ev, .user = &d};
    sw_sampler_params_default(&q.sampling);
    q.sampling.temperature = 0.0f;
    sw_be_stats_reset(f.be);
    assert_int_equal(sw_engine_submit(e, &q, NULL, &err), SW_OK);
    for (int i = 0; i < 60000 && !__atomic_load_n(&d.n_final, __ATOMIC_SEQ_CST); i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sw_engine_free(e);
    assert_int_equal(d.n_tok, 120);
    sw_be_stats st;
    sw_be_stats_get(f.be, &st);
    print_message("%s engine: %llu steps, %u signatures\n", g_backend, (unsigned long long)st.steps,
                  st.n_signatures);
    assert_int_equal(st.steps, 120);
    assert_int_equal(st.n_signatures, 2);
    fx_close(&f);
}

/* Weights concatenated at load (q/k/v, gate/up: one matmul each) give the
 * logits of the separate weights, with fewer ops per step. */
static void test_concat_same_logits(void **state) {
    (void)state;
    fx a, b;
    fx_open_with(&a, 2, false);
    fx_open_with(&b, 2, true);
    lockstep la, lb;
    int32_t zero[2] = {0, 0}, n[2] = {9, 4};
    ls_init(&a, &la, 2, zero);
    ls_init(&b, &lb, 2, zero);
    for (int step = 0; step < 6; step++) {
        sw_be_stats_reset(a.be);
        sw_be_stats_reset(b.be);
        ls_step(&a, &la, n, 0);
        ls_step(&b, &lb, n, 0);
        /* the matmul kernels may block rows differently for a taller
         * weight (the CPU's F32 path does): float rounding of the sums only,
         * far below what a wrong row or column would do */
        double num = 0, den = 0;
        for (int64_t i = 0; i < 2 * (int64_t)a.n_vocab; i++) {
            num += ((double)a.logits[i] - b.logits[i]) * ((double)a.logits[i] - b.logits[i]);
            den += (double)b.logits[i] * b.logits[i];
        }
        if (!(sqrt(num / den) <= 1e-5))
            fail_msg("step %d: concatenated weights: logits nerr %.3g", step, sqrt(num / den));
        n[0] = n[1] = 1;
    }
    sw_be_stats sa, sb;
    sw_be_stats_get(a.be, &sa);
    sw_be_stats_get(b.be, &sb);
    print_message("%s: %u ops per step concatenated, %u separate\n", g_backend, sa.last_step_ops,
                  sb.last_step_ops);
    assert_true(sa.last_step_ops < sb.last_step_ops);
    ls_free(&a, &la);
    ls_free(&b, &lb);
    fx_close(&a);
    fx_close(&b);
}

static const struct CMUnitTest k_tests[] = {
    cmocka_unit_test(test_one_sequence_whole_context),
    cmocka_unit_test(test_steady_batch_8),
    cmocka_unit_test(test_steady_batch_64),
    cmocka_unit_test(test_engine_decode_signature),
    cmocka_unit_test(test_concat_same_logits),
};

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
}

int main(void) {
    int failed = 0, groups = 0;
    char stories[1024], synth[1024], cmd[3072];
    const char *shared = getenv("SW_SHARED_DIR"), *bin = getenv("SW_BIN_DIR"),
               *tmp = getenv("SW_TMP_DIR");
    snprintf(stories, sizeof stories, "%s/models/stories260K.gguf", shared ? shared : "/work/shared");
    if (file_exists(stories)) {
        g_path = stories;
        failed += cmocka_run_group_tests_name("signature_stories260K_cpu", k_tests, NULL, NULL);
        groups++;
    } else {
        printf("stories260K: %s not found\n", stories);
    }
    if (bin && tmp) {
        snprintf(synth, sizeof synth, "%s/signature_tiny_q8_0.gguf", tmp);
        snprintf(cmd, sizeof cmd, "'%s/spillway-mkmodel' -o '%s' --shape tiny --type q8_0 > /dev/null",
                 bin, synth);
        if (system(cmd) == 0 && file_exists(synth)) {
            g_path = synth;
            failed += cmocka_run_group_tests_name("signature_tiny_q8_0_cpu", k_tests, NULL, NULL);
            groups++;
        } else {
            printf("synthetic model: '%s' failed\n", cmd);
        }
    } else {
        printf("synthetic model: SW_BIN_DIR / SW_TMP_DIR not set\n");
    }
    if (file_exists(stories)) {
        sw_backend_config bc = {.name = "vulkan", .device = -1};
        sw_backend *probe = NULL;
        sw_err err = {{0}};
        if (sw_backend_create(&bc, &probe, &err) == SW_OK) {
            sw_backend_free(probe);
            g_path = stories;
            g_backend = "vulkan";
            g_steps = 100; /* lavapipe is slow; the whole context runs on the CPU */
            const struct CMUnitTest vk[] = {cmocka_unit_test(test_one_sequence_whole_context),
                                            cmocka_unit_test(test_steady_batch_8)};
            failed += cmocka_run_group_tests_name("signature_stories260K_vulkan", vk, NULL, NULL);
            groups++;
        } else {
            printf("vulkan group skipped: %s\n", err.msg);
        }
    }
    if (groups == 0) {
        printf("SKIP: no model (neither stories260K nor spillway-mkmodel)\n");
        return 77;
    }
    return failed;
}
