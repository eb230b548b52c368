/* test_cuda_model.c — the whole forward pass on the CUDA backend, as
 * test_vulkan_model.c does it for Vulkan:
 * (a) stories260K (F32 weights) greedy decoding of "Once upon a time" gives
 *     the same 48 tokens as the CPU backend and as llama.cpp's reference, with
 *     F16 and F32 KV caches;
 * (b) synthetic q8_0 and q4_K models (spillway-mkmodel --shape tiny): three
 *     sequences batched in one step (a 27-token prefill: the int8 tensor-core
 *     matmul, then decodes: the int8 mat-vec) give the CPU backend's greedy
 *     tokens, the first step's logits agree within a normalized error of 1e-2
 *     (both quantize activations to 8 bits, in different groupings for the
 *     K-quants), and each sequence decoded alone gives the tokens it got in the
 *     batch (batched = alone);
 * (c) the same with CUDA graphs on: the same tokens, and the decode steps
 *     replay a captured graph (the block tables have a fixed width).
 * Skips (exit 77) only where there is no GPU (sw_test_cuda_gate); a GPU that
 * is present but unusable fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_backend.h"
#include "model.h"
#include "sw_test.h"
#include "sw_test_model.h"

#ifdef SW_HAVE_CUDA
#include "cuda_backend.h"

static sw_backend *g_cuda, *g_graphs, *g_cpu;

static void stories(sw_backend *be, sw_type kv_type) {
    char path[1024];
    if (!sw_test_stories_path(path, sizeof path)) {
        skip();
        return;
    }
    const int32_t *pp[1] = {sw_test_stories_prompt};
    int32_t len = 5, cpu[48], cu[48];
    sw_test_greedy_batch(g_cpu, path, kv_type, pp, &len, 1, 48, cpu, NULL);
    sw_test_greedy_batch(be, path, kv_type, pp, &len, 1, 48, cu, NULL);
    for (int i = 0; i < 48; i++)
        if (cpu[i] != cu[i] || cu[i] != sw_test_stories_ref[i])
            fail_msg("stories260K (%s kv): token %d: cpu %d cuda %d llama.cpp %d",
                     sw_type_name(kv_type), i, cpu[i], cu[i], sw_test_stories_ref[i]);
}

static void test_stories_f16_kv(void **state) {
    (void)state;
    stories(g_cuda, SW_TYPE_F16);
}

static void test_stories_f32_kv(void **state) {
    (void)state;
    stories(g_cuda, SW_TYPE_F32);
}

enum { S = 3, NG = 8 };

static void synthetic_batched(sw_backend *be, const char *type) {
    char path[1024];
    if (!sw_test_synthetic_model("test_cuda_model", "tiny", type, path, sizeof path)) {
        skip();
        return;
    }
    sw_test_prompts tp;
    sw_test_prompts_make(&tp);
    const int32_t *const *pp = tp.p, *lens = tp.lens;
    int32_t cpu[S * NG], cu[S * NG], alone[NG];
    int64_t V = sw_test_model_vocab(g_cpu, path);
    float *lc = malloc(sizeof(float) * (size_t)(S * V)), *lg = malloc(sizeof(float) * (size_t)(S * V));
    sw_test_greedy_batch(g_cpu, path, SW_TYPE_F16, pp, lens, S, NG, cpu, lc);
    sw_cuda_stats s0, s1;
    sw_backend_cuda_stats(be, &s0);
    sw_test_greedy_batch(be, path, SW_TYPE_F16, pp, lens, S, NG, cu, lg);
    sw_backend_cuda_stats(be, &s1);
    if (s1.mm_mmq == s0.mm_mmq) fail_msg("%s: the 27-token prefill did not use the int8 tensor cores", type);
    double nerr = sw_test_nerr(lc, lg, (size_t)(S * V));
    if (!(nerr <= 1e-2)) fail_msg("%s first-step logits: normalized error %.3g > 1e-2", type, nerr);
    for (int i = 0; i < S * NG; i++)
        if (cpu[i] != cu[i])
            fail_msg("%s batched: sequence %d token %d: cpu %d cuda %d (logit nerr %.3g)", type,
                     i / NG, i % NG, cpu[i], cu[i], nerr);
    for (int i = 0; i < S; i++) {
        sw_test_greedy_batch(be, path, SW_TYPE_F16, &pp[i], &lens[i], 1, NG, alone, NULL);
        for (int j = 0; j < NG; j++)
            if (alone[j] != cu[i * NG + j])
                fail_msg("%s: sequence %d token %d: alone %d, batched %d", type, i, j, alone[j],
                         cu[i * NG + j]);
    }
    free(lc);
    free(lg);
}

static void test_synthetic_q8_0(void **state) {
    (void)state;
    synthetic_batched(g_cuda, "q8_0");
}

static void test_synthetic_q4_k(void **state) {
    (void)state;
    synthetic_batched(g_cuda, "q4_K");
}

/* Graphs: the same tokens, and the decode steps replay. */
static void test_graphs(void **state) {
    (void)state;
    sw_cuda_stats s0, s1;
    sw_backend_cuda_stats(g_graphs, &s0);
    synthetic_batched(g_graphs, "q4_K");
    stories(g_graphs, SW_TYPE_F16);
    sw_backend_cuda_stats(g_graphs, &s1);
    print_message("graphs: %lld captures, %lld replays\n", (long long)(s1.captures - s0.captures),
                  (long long)(s1.replays - s0.replays));
    assert_true(s1.replays - s0.replays >= NG);
}

int main(void) {
    int gate = sw_test_cuda_gate();
    if (gate != 0) return gate;
    sw_err err = {{0}};
    if (sw_backend_cuda_create(0, &g_cuda, &err) != SW_OK) {
        printf("FAIL: cuda backend: %s\n", err.msg);
        return 1;
    }
    setenv("SW_CUDA_GRAPHS", "1", 1);
    sw_status st = sw_backend_cuda_create(0, &g_graphs, &err);
    unsetenv("SW_CUDA_GRAPHS");
    if (st != SW_OK || sw_backend_cpu_create(2, &g_cpu, &err) != SW_OK) {
        printf("FAIL: graphs or cpu backend: %s\n", err.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_f16_kv),  cmocka_unit_test(test_stories_f32_kv),
        cmocka_unit_test(test_synthetic_q8_0),  cmocka_unit_test(test_synthetic_q4_k),
        cmocka_unit_test(test_graphs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sw_backend_free(g_cuda);
    sw_backend_free(g_graphs);
    sw_backend_free(g_cpu);
    return rc;
}

#else

int main(void) { return sw_test_cuda_gate(); }

#endif
