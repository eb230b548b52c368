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

/* Under ASan, lavapipe's one-time allocation is kept reachable by the library
 * itself (kernels/vulkan/vk_device.c, pin_lavapipe_under_asan). */

#ifdef SW_HAVE_VULKAN
#include "vk_backend.h"
#include "vk_device.h"

static sw_backend *g_vk, *g_vk_plain, *g_cpu;
static bool g_device_fast; /* the device has what the fast path needs */

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *env_dir(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* ---- a model and its sequences on one backend ---- */

typedef struct {
    sw_model *m;
    sw_kv_cache *kv;
} fixture;

static void fx_open(fixture *f, sw_backend *be, const char *path, sw_type kv_type) {
    sw_err err = {{0}};
    sw_model_params mp = {.progress = false};
    if (sw_model_load(path, be, &mp, &f->m, &err) != SW_OK)
        fail_msg("load %s on %s: %s", path, sw_backend_name(be), err.msg);
    sw_kv_params kp = {.block_size = 8, .n_blocks = 64, .type = kv_type};
    if (sw_kv_cache_create(f->m, &kp, &f->kv, &err) != SW_OK) fail_msg("kv: %s", err.msg);
}

static void fx_close(fixture *f) {
    sw_kv_cache_free(f->kv);
    sw_model_free(f->m);
}

typedef struct {
    int32_t blocks[64];
    int32_t n_blocks, n_past;
} seq;

static int32_t argmax(const float *v, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = (int32_t)i;
    return best;
}

/* One step: sequence i gets toks[i][0..n[i]); logits[i * V ..] = its last
 * token's logits. */
static void step(fixture *f, seq *s, const int32_t *const *toks, const int32_t *n, int32_t S,
                 float *logits) {
    int32_t T = 0, tokens[128], pos[128], seq_start[9], nb[8];
    const int32_t *tables[8];
    assert_true(S <= 8);
    int32_t bs = sw_kv_block_size(f->kv);
    for (int32_t i = 0; i < S; i++) {
        while (s[i].n_blocks * bs < s[i].n_past + n[i]) {
            int32_t b = sw_kv_alloc_block(f->kv);
            assert_true(b >= 0 && s[i].n_blocks < 64);
            s[i].blocks[s[i].n_blocks++] = b;
        }
        seq_start[i] = T;
        for (int32_t j = 0; j < n[i]; j++, T++) {
            assert_true(T < 128);
            tokens[T] = toks[i][j];
            pos[T] = s[i].n_past + j;
        }
        tables[i] = s[i].blocks;
        nb[i] = s[i].n_blocks;
    }
    seq_start[S] = T;
    sw_batch b = {.n_tokens = T, .tokens = tokens, .pos = pos, .n_seqs = S,
                  .seq_start = seq_start, .block_tables = tables, .n_blocks = nb};
    sw_err err = {{0}};
    if (sw_model_forward(f->m, f->kv, &b, logits, &err) != SW_OK)
        fail_msg("forward on %s: %s", sw_backend_name(sw_model_backend(f->m)), err.msg);
    for (int32_t i = 0; i < S; i++) s[i].n_past += n[i];
}

static void release(fixture *f, seq *s) {
    for (int32_t i = 0; i < s->n_blocks; i++) sw_kv_free_block(f->kv, s->blocks[i]);
    s->n_blocks = s->n_past = 0;
}

/* Greedy decoding of S sequences batched together: the first step prefills
 * them all, then one token each per step. out[i * n_gen + j]. first_logits
 * (optional, S * V) receives the prefill step's logits. */
static void greedy_batch(sw_backend *be, const char *path, sw_type kv_type,
                         const int32_t *const *prompts, const int32_t *lens, int32_t S,
                         int32_t n_gen, int32_t *out, float *first_logits) {
    fixture f;
    fx_open(&f, be, path, kv_type);
    int64_t V = sw_model_config_get(f.m)->n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)(V * S));
    seq s[8];
    memset(s, 0, sizeof s);
    step(&f, s, prompts, lens, S, logits);
    if (first_logits) memcpy(first_logits, logits, sizeof(float) * (size_t)(V * S));
    int32_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, next[8];
    const int32_t *tp[8];
    for (int32_t j = 0; j < n_gen; j++) {
        for (int32_t i = 0; i < S; i++) {
            next[i] = out[i * n_gen + j] = argmax(logits + i * V, V);
            tp[i] = &next[i];
        }
        if (j + 1 < n_gen) step(&f, s, tp, ones, S, logits);
    }
    for (int32_t i = 0; i < S; i++) release(&f, &s[i]);
    free(logits);
    fx_close(&f);
}

/* ---- (a) stories260K ---- */

static const int32_t k_prompt[5] = {1, 403, 407, 261, 378};
/* llama.cpp's greedy continuation (shared/reference/stories260K-greedy.json) */
static const int32_t k_ref[48] = {
    432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
    295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352,
    266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432,
};

static bool stories_path(char *out, size_t cap) {
    const char *d = env_dir("SW_SHARED_DIR");
    if (!d) {
        printf("SKIP: SW_SHARED_DIR is not set\n");
        return false;
    }
    snprintf(out, cap, "%s/models/stories260K.gguf", d);
    if (!file_exists(out)) {
        printf("SKIP: %s is absent\n", out);
        return false;
    }
    return true;
}

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
    if (!stories_path(path, sizeof path)) {
        skip();
        return;
    }
    const int32_t *pp[1] = {k_prompt};
    int32_t len = 5, cpu[48], vk[48];
    greedy_batch(g_cpu, path, kv_type, pp, &len, 1, 48, cpu, NULL);
    uint64_t f0 = fast_dispatches(be);
    greedy_batch(be, path, kv_type, pp, &len, 1, 48, vk, NULL);
    check_path(be, f0);
    for (int i = 0; i < 48; i++)
        if (cpu[i] != vk[i])
            fail_msg("stories260K (%s kv): token %d: cpu %d vulkan %d", sw_type_name(kv_type), i,
                     cpu[i], vk[i]);
    for (int i = 0; i < 48; i++)
        if (vk[i] != k_ref[i])
            fail_msg("stories260K (%s kv): token %d: vulkan %d, llama.cpp %d",
                     sw_type_name(kv_type), i, vk[i], k_ref[i]);
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

static bool synthetic(const char *shape, const char *type, char *path, size_t cap) {
    const char *bin = env_dir("SW_BIN_DIR"), *tmp = env_dir("SW_TMP_DIR");
    if (!bin) {
        printf("SKIP: SW_BIN_DIR is not set\n");
        return false;
    }
    char exe[1024], cmd[3072];
    snprintf(exe, sizeof exe, "%s/spillway-mkmodel", bin);
    if (!file_exists(exe)) {
        printf("SKIP: %s is not built\n", exe);
        return false;
    }
    snprintf(path, cap, "%s/test_vulkan_model-%s-%s.gguf", tmp ? tmp : "/tmp", shape, type);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' --shape %s --type %s >/dev/null 2>&1", exe, path,
             shape, type);
    int rc = system(cmd);
    if (rc != 0) fail_msg("command failed (%d): %s", rc, cmd);
    return true;
}

static void synthetic_batched(sw_backend *be, const char *shape) {
    char path[1024];
    if (!synthetic(shape, "q8_0", path, sizeof path)) {
        skip();
        return;
    }
    enum { S = 3, NG = 8 };
    /* prompt lengths straddle the block size (8) and include a single token */
    int32_t lens[S] = {1, 9, 17}, p[S][17];
    uint32_t r = 11;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < lens[i]; j++) {
            r = r * 1103515245u + 12345u;
            p[i][j] = 3 + (int32_t)((r >> 16) % 200u);
        }
    const int32_t *pp[S] = {p[0], p[1], p[2]};
    int32_t cpu[S * NG], vk[S * NG];
    /* vocabulary of the tiny shape: read from the model on the CPU side */
    fixture f;
    fx_open(&f, g_cpu, path, SW_TYPE_F16);
    int64_t V = sw_model_config_get(f.m)->n_vocab;
    fx_close(&f);
    float *lc = malloc(sizeof(float) * (size_t)(S * V)), *lv = malloc(sizeof(float) * (size_t)(S * V));
    greedy_batch(g_cpu, path, SW_TYPE_F16, pp, lens, S, NG, cpu, lc);
    uint64_t f0 = fast_dispatches(be);
    greedy_batch(be, path, SW_TYPE_F16, pp, lens, S, NG, vk, lv);
    check_path(be, f0);
    /* the 27-token first step is a prefill: the tiled shader, fast (or on
     * cooperative matrices, where the device has them) or plain */
    const char *tiled = sw_vk_backend_coop_matrix(be) ? "matmul_coop"
                        : sw_vk_backend_fast_path(be) ? "matmul_fast"
                                                      : "matmul";
    if (sw_vk_backend_shader_dispatches(be, tiled) == 0) fail_msg("%s never ran", tiled);
    double num = 0, den = 0;
    for (int64_t i = 0; i < S * V; i++) {
        num += ((double)lc[i] - lv[i]) * ((double)lc[i] - lv[i]);
        den += (double)lc[i] * lc[i];
    }
    double nerr = sqrt(num / (den > 0 ? den : 1));
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
