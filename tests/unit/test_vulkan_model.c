/* test_vulkan_model.c — the whole forward pass on the Vulkan backend:
 * (a) stories260K (F32 weights) greedy decoding of "Once upon a time"
 *     (ids 1 403 407 261 378) gives the same 48 tokens as the CPU backend and
 *     as llama.cpp's reference, with F16 and F32 KV caches;
 * (b) synthetic q8_0 models (spillway-mkmodel --shape tiny / gemma3-tiny):
 *     several sequences batched in one step (mixed prefill and decode) give
 *     the same greedy tokens as the CPU backend, and the first step's logits
 *     agree within a normalized error of 1e-2 (the CPU backend quantizes
 *     activations to 8 bits for q8_0 weights, the Vulkan shaders do not, so
 *     logits differ by the activation quantization: ~1/127 relative per dot
 *     product at worst, far less on average).
 * Both run on the default backend, which takes the fast matmul path (16/8-bit
 * loads, f16 weight tiles) where the device has 16/8-bit storage and float16
 * (asserted, with the fast shaders' dispatch counts), and on a backend made
 * with SW_VK_PLAIN=1 (the plain shaders only).
 * Skips (exit 77) without Vulkan, without a device, or without the files. */
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

#include "backend.h"
#include "cpu_backend.h"
#include "model.h"
#include "sw_test_model.h"

/* Under ASan, lavapipe's one-time allocation is kept reachable by the library
 * itself (kernels/vulkan/vk_device.c, pin_lavapipe_under_asan). */

#ifdef SW_HAVE_VULKAN
#include "vk_backend.h"
#include "vk_device.h"

static sw_backend *g_vk, *g_vk_plain, *g_cpu;
static bool g_device_fast; /* the device has what the fast path needs */

/* Dispatches of the fast matmul shaders so far. */
static uint64_t fast_dispatches(sw_backend *be) {
    return sw_vk_backend_shader_dispatches(be, "matvec_fast") +
           sw_vk_backend_shader_dispatches(be, "matvec_fast_sg") +
           sw_vk_backend_shader_dispatches(be, "matmul_fast") +
           sw_vk_backend_shader_dispatches(be, "matmul_fast32") +
           sw_vk_backend_shader_dispatches(be, "matmul_coop");
}

/* After a model ran on be: the fast shaders ran iff be is on the fast path. */
static void check_path(sw_backend *be, uint64_t fast_before) {
    uint64_t n = fast_dispatches(be) - fast_before;
    if (sw_vk_backend_fast_path(be) ? n == 0 : n != 0)
        fail_msg("the %s path ran %llu fast matmul dispatches",
                 sw_vk_backend_fast_path(be) ? "fast" : "plain", (unsigned long long)n);
}

static void stories(sw_backend *be, sw_type kv_type) {
    char path[1024];
    if (!sw_test_stories_path(path, sizeof path)) {
        skip();
        return;
    }
    const int32_t *pp[1] = {sw_test_stories_prompt};
    int32_t len = 5, cpu[48], vk[48];
    sw_test_greedy_batch(g_cpu, path, kv_type, pp, &len, 1, 48, cpu, NULL);
    uint64_t f0 = fast_dispatches(be);
    sw_test_greedy_batch(be, path, kv_type, pp, &len, 1, 48, vk, NULL);
    check_path(be, f0);
    for (int i = 0; i < 48; i++)
        if (cpu[i] != vk[i])
            fail_msg("stories260K (%s kv): token %d: cpu %d vulkan %d", sw_type_name(kv_type), i,
                     cpu[i], vk[i]);
    for (int i = 0; i < 48; i++)
        if (vk[i] != sw_test_stories_ref[i])
            fail_msg("stories260K (%s kv): token %d: vulkan %d, llama.cpp %d",
                     sw_type_name(kv_type), i, vk[i], sw_test_stories_ref[i]);
}

static void test_fast_path_enabled(void **state) {
    (void)state;
    assert_int_equal(sw_vk_backend_fast_path(g_vk), g_device_fast);
    assert_false(sw_vk_backend_fast_path(g_vk_plain));
}

static void test_stories_f16_kv(void **state) {
    (void)state;
    stories(g_vk, SW_TYPE_F16);
}

static void test_stories_f32_kv(void **state) {
    (void)state;
    stories(g_vk, SW_TYPE_F32);
}

static void test_stories_plain(void **state) {
    (void)state;
    stories(g_vk_plain, SW_TYPE_F16);
}

/* ---- (b) synthetic q8_0, batched ---- */

static void synthetic_batched(sw_backend *be, const char *shape) {
    char path[1024];
    if (!sw_test_synthetic_model("test_vulkan_model", shape, "q8_0", path, sizeof path)) {
        skip();
        return;
    }
    enum { S = 3, NG = 8 };
    sw_test_prompts tp;
    sw_test_prompts_make(&tp);
    const int32_t *const *pp = tp.p, *lens = tp.lens;
    int32_t cpu[S * NG], vk[S * NG];
    int64_t V = sw_test_model_vocab(g_cpu, path);
    float *lc = malloc(sizeof(float) * (size_t)(S * V)), *lv = malloc(sizeof(float) * (size_t)(S * V));
    sw_test_greedy_batch(g_cpu, path, SW_TYPE_F16, pp, lens, S, NG, cpu, lc);
    uint64_t f0 = fast_dispatches(be);
    sw_test_greedy_batch(be, path, SW_TYPE_F16, pp, lens, S, NG, vk, lv);
    check_path(be, f0);
    /* the 27-token first step is a prefill: the tiled shader, fast (or on
     * cooperative matrices, where the device has them) or plain */
    const char *tiled = sw_vk_backend_coop_matrix(be) ? "matmul_coop"
                        : sw_vk_backend_fast_path(be) ? "matmul_fast"
                                                      : "matmul";
    if (sw_vk_backend_shader_dispatches(be, tiled) == 0) fail_msg("%s never ran", tiled);
    double nerr = sw_test_nerr(lc, lv, (size_t)(S * V));
    if (!(nerr <= 1e-2))
        fail_msg("%s q8_0 first-step logits: normalized error %.3g > 1e-2", shape, nerr);
    for (int i = 0; i < S * NG; i++)
        if (cpu[i] != vk[i])
            fail_msg("%s q8_0 batched: sequence %d token %d: cpu %d vulkan %d (logit nerr %.3g)",
                     shape, i / NG, i % NG, cpu[i], vk[i], nerr);
    free(lc);
    free(lv);
}

static void test_synthetic_batched(void **state) {
    (void)state;
    synthetic_batched(g_vk, "tiny");
}

static void test_synthetic_batched_plain(void **state) {
    (void)state;
    synthetic_batched(g_vk_plain, "tiny");
}

/* gemma3's path (q/k norms, GeGLU, post-norms, scaled embeddings; the longest
 * sequence ends at position 24, past layers 0 and 1's 16-position window) */
static void test_synthetic_gemma3(void **state) {
    (void)state;
    synthetic_batched(g_vk, "gemma3-tiny");
}

int main(void) {
    sw_err err = {{0}};
    if (sw_backend_vulkan_create(-1, &g_vk, &err) != SW_OK) {
        printf("SKIP: no usable Vulkan device: %s\n", err.msg);
        return 77;
    }
    setenv("SW_VK_PLAIN", "1", 1);
    sw_status st = sw_backend_vulkan_create(-1, &g_vk_plain, &err);
    unsetenv("SW_VK_PLAIN");
    if (st != SW_OK || sw_backend_cpu_create(2, &g_cpu, &err) != SW_OK) {
        printf("plain vulkan or cpu backend: %s\n", err.msg);
        sw_backend_free(g_vk);
        sw_backend_free(g_vk_plain);
        return 1;
    }
    g_device_fast = sw_vk_preferred_device_fast();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path_enabled),
        cmocka_unit_test(test_stories_f16_kv),
        cmocka_unit_test(test_stories_f32_kv),
        cmocka_unit_test(test_stories_plain),
        cmocka_unit_test(test_synthetic_batched),
        cmocka_unit_test(test_synthetic_batched_plain),
        cmocka_unit_test(test_synthetic_gemma3),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sw_backend_free(g_vk);
    sw_backend_free(g_vk_plain);
    sw_backend_free(g_cpu);
    return rc;
}

#else

int main(void) {
    printf("SKIP: built without Vulkan (configure with -DSW_VULKAN=ON)\n");
    return 77;
}

#endif
