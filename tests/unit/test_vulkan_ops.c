/* test_vulkan_ops.c — every op of the Vulkan backend against a reference:
 * matmul and get_rows against the dequantized weights (sw_dequantize_row) in
 * double precision; rms_norm, rope, kv_write, attention (causal and
 * non-causal, with and without a sliding window), swiglu, geglu, add, scale
 * and softcap against the CPU backend on the same inputs. Also: transfers at unaligned offsets
 * through both the mapped and the staging path, mid-step downloads, error
 * paths, and both matvec reductions (subgroup and shared memory).
 *
 * Matmul runs on four backends: the default (fast path: 16/8-bit loads, f16
 * weight tiles, subgroup reductions), fast with shared-memory reductions and
 * staged transfers, SW_VK_PLAIN=1 (the plain 32-bit-word shaders), and plain
 * with shared-memory reductions. On a device with 16-bit and 8-bit storage and
 * shaderFloat16 (lavapipe has them) the test asserts that the first two really
 * run the fast shaders and the last two never do, case by case, by the
 * backend's per-shader dispatch counts.
 *
 * Skips (exit 77) when built without Vulkan or when no Vulkan device exists.
 *
 * Tolerances, with u = 2^-24 (float rounding):
 * - get_rows: the shader computes d*sc*q - dmin*m with its own operation order
 *   (and maybe fma), a few roundings of terms no larger than the row's largest
 *   magnitude: |err| <= 8u * max|row|.
 * - matmul: float sums of K products, each product off by the weight's few
 *   roundings: |err| <= (K + 64) u sum_k |w_k x_k| + 8u max_k|w_k| sum_k |x_k|.
 *   We do not compare bit-exact with the CPU backend, which quantizes
 *   activations to 8 bits for quantized weights.
 * - rms_norm/add vs CPU: 16u relative to the magnitudes involved; swiglu
 *   (10 + 2|gate|)u, as GLSL's exp is only within 3 + 2|x| ulp.
 * - rope vs CPU (theta in double there, float here): the angle error is
 *   ~4u |theta| (float product + pow) plus the reduction, so
 *   |err| <= 16u (|theta| + 4) (|a| + |b|).
 * - kv_write: F32 exact; F16 within 1 f16 ulp (packHalf2x16's rounding mode is
 *   implementation-defined; the CPU rounds to nearest even).
 * - attention: output is a convex combination of value rows. Relative errors
 *   e_j in the weights p_j move it by at most 2 max_j e_j max|v| (GLSL exp is
 *   within 3 + 2|x| ulp, |x| <= ~25 here), and the float sums over ctx
 *   positions add ctx u max|v|: |err| <= (ctx + 64) 2u max|v|. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sw_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_backend.h"
#include "quant.h"

/* Under ASan, lavapipe's one-time allocation is kept reachable by the library
 * itself (kernels/vulkan/vk_device.c, pin_lavapipe_under_asan). */

#ifdef SW_HAVE_VULKAN
#include "vk_backend.h"
#include "vk_device.h"

#define U 0x1p-24

static sw_test_rng rng = {0x5eed}; /* shared LCG: tests/unit/support/sw_test.c */
/* the matmul tests draw from their own stream, so that their number of cases
 * does not change the data of the tests after them */
static sw_test_rng mm_rng = {0x3a7e};
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

typedef struct {
    sw_backend *vk;            /* default: mapped transfers, subgroup reductions, fast path */
    sw_backend *vk_nosg;       /* SW_VK_FORCE_STAGING=1 and SW_VK_NO_SUBGROUP=1 */
    sw_backend *vk_plain;      /* SW_VK_PLAIN=1 */
    sw_backend *vk_plain_nosg; /* SW_VK_PLAIN=1, SW_VK_NO_SUBGROUP=1, SW_VK_FORCE_STAGING=1 */
    sw_backend *cpu;
    bool device_fast; /* the device reports what the fast path needs */
} fixture;

static fixture *g_fix;

/* SW_VK_NO_COOP=1 always: cooperative matrices take f16 inputs, outside the
 * bounds below; test_coop_check covers them where a device has them. */
static sw_backend *make_vk(const char *staging, const char *nosg, const char *plain) {
    setenv("SW_VK_FORCE_STAGING", staging, 1);
    setenv("SW_VK_NO_SUBGROUP", nosg, 1);
    setenv("SW_VK_PLAIN", plain, 1);
    setenv("SW_VK_NO_COOP", "1", 1);
    sw_backend *be = NULL;
    sw_err err = {{0}};
    sw_status st = sw_backend_vulkan_create(-1, &be, &err);
    unsetenv("SW_VK_FORCE_STAGING");
    unsetenv("SW_VK_NO_SUBGROUP");
    unsetenv("SW_VK_PLAIN");
    unsetenv("SW_VK_NO_COOP");
    if (st != SW_OK) {
        printf("vulkan backend unavailable: %s\n", err.msg);
        return NULL;
    }
    return be;
}

/* ------------------------------------------------------------ helpers -- */

/* A device tensor filled from host data: buffer of its own, at `pad` bytes
 * offset so that offsets other than 0 are exercised. */
typedef struct {
    sw_buffer *buf;
    sw_tensor t;
} dtensor;

static dtensor dt_make(sw_backend *be, sw_type type, int64_t ne0, int64_t ne1, int64_t ne2,
                       int64_t ne3, size_t pad, const void *data) {
    dtensor d;
    sw_err err = {{0}};
    sw_tensor tmp = sw_tensor_make(NULL, pad, type, ne0, ne1, ne2, ne3);
    size_t n = sw_tensor_nbytes(&tmp);
    if (sw_be_buf_alloc(be, pad + n + 64, SW_BUF_COMPUTE, &d.buf, &err) != SW_OK)
        fail_msg("buf_alloc: %s", err.msg);
    d.t = tmp;
    d.t.buf = d.buf;
    if (data && sw_be_upload(be, d.buf, pad, data, n, &err) != SW_OK)
        fail_msg("upload: %s", err.msg);
    return d;
}

static void dt_read(sw_backend *be, const sw_tensor *t, void *out) {
    sw_err err = {{0}};
    if (sw_be_download(be, t->buf, t->offset, out, sw_tensor_nbytes(t), &err) != SW_OK)
        fail_msg("download: %s", err.msg);
}

static void dt_free(sw_backend *be, dtensor *d) { sw_be_buf_free(be, d->buf); }

static void ok(sw_status st, const sw_err *err) {
    if (st != SW_OK) fail_msg("%s: %s", sw_status_str(st), err->msg);
}

static const sw_type k_types[] = {SW_TYPE_F32,  SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q8_0,
                                  SW_TYPE_Q4_0, SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1,
                                  SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K,
                                  SW_TYPE_Q6_K};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

/* Random weights [K, N] quantized to type; *deq receives the dequantized
 * values (the truth). Returns the raw blocks (malloc'd). */
static void *make_weights(sw_type type, int64_t K, int64_t N, float **deq, sw_test_rng *r) {
    size_t rs = sw_row_size(type, K);
    uint8_t *q = malloc(rs * (size_t)N);
    float *f = malloc(sizeof(float) * (size_t)(K * N));
    *deq = malloc(sizeof(float) * (size_t)(K * N));
    assert_non_null(q);
    for (int64_t i = 0; i < K * N; i++) f[i] = sw_test_nrand(r);
    sw_err err = {{0}};
    for (int64_t n = 0; n < N; n++) {
        ok(sw_quantize_row(type, f + n * K, q + (size_t)n * rs, K, &err), &err);
        ok(sw_dequantize_row(type, q + (size_t)n * rs, *deq + n * K, K, &err), &err);
    }
    free(f);
    return q;
}

/* ------------------------------------------------------- transfers -- */

static void roundtrip(sw_backend *be) {
    sw_err err = {{0}};
    sw_buffer *b;
    ok(sw_be_buf_alloc(be, 4099, SW_BUF_COMPUTE, &b, &err), &err);
    uint8_t src[1500], dst[1500];
    for (int i = 0; i < 1500; i++) src[i] = (uint8_t)(i * 7 + 3);
    ok(sw_be_upload(be, b, 3, src, 1499, &err), &err);
    memset(dst, 0, sizeof dst);
    ok(sw_be_download(be, b, 3, dst, 1499, &err), &err);
    assert_memory_equal(src, dst, 1499);
    /* partial read at another odd offset */
    ok(sw_be_download(be, b, 3 + 501, dst, 77, &err), &err);
    assert_memory_equal(src + 501, dst, 77);
    /* past the end: an error, not a crash */
    assert_int_equal(sw_be_upload(be, b, 4000, src, 200, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "upload"));
    sw_be_buf_free(be, b);

    /* larger than the 16 MiB staging buffer: chunked */
    size_t big = ((size_t)16 << 20) + 12345;
    uint8_t *h = malloc(big), *r = malloc(big);
    for (size_t i = 0; i < big; i++) h[i] = (uint8_t)(i ^ (i >> 9));
    ok(sw_be_buf_alloc(be, big + 8, SW_BUF_WEIGHTS, &b, &err), &err);
    ok(sw_be_upload(be, b, 5, h, big, &err), &err);
    ok(sw_be_download(be, b, 5, r, big, &err), &err);
    assert_memory_equal(h, r, big);
    sw_be_buf_free(be, b);
    /* host-visible usage */
    ok(sw_be_buf_alloc(be, 100, SW_BUF_HOST_VISIBLE, &b, &err), &err);
    ok(sw_be_upload(be, b, 1, h, 99, &err), &err);
    ok(sw_be_download(be, b, 1, r, 99, &err), &err);
    assert_memory_equal(h, r, 99);
    sw_be_buf_free(be, b);
    free(h);
    free(r);
}

static void test_roundtrip(void **state) {
    (void)state;
    roundtrip(g_fix->vk);
    roundtrip(g_fix->vk_nosg);
}

static void test_mem_info(void **state) {
    (void)state;
    size_t fr = 0, tot = 0;
    sw_err err = {{0}};
    ok(sw_be_mem_info(g_fix->vk, &fr, &tot, &err), &err);
    assert_true(tot > 0);
    assert_true(fr <= tot);
    assert_true(sw_be_supports_type(g_fix->vk, SW_TYPE_Q4_K));
    assert_false(sw_be_supports_type(g_fix->vk, SW_TYPE_IQ2_XXS));
    assert_string_equal(sw_backend_name(g_fix->vk), "vulkan");
}

/* ------------------------------------------------------------ get_rows -- */

static void get_rows_case(sw_backend *be, sw_type type, int64_t n, int64_t rows) {
    float *deq;
    void *q = make_weights(type, n, rows, &deq, &rng);
    int32_t ids[4] = {(int32_t)rows - 1, 0, 2, (int32_t)rows - 1};
    int64_t T = 4;
    dtensor tab = dt_make(be, type, n, rows, 1, 1, 2 * sw_row_size(type, n) + 6, q);
    /* the pad puts the table at an offset that is not a multiple of 4, as a
     * row view of a quantized tensor can be */
    dtensor id = dt_make(be, SW_TYPE_I32, T, 1, 1, 1, 12, ids);
    dtensor out = dt_make(be, SW_TYPE_F32, n, T, 1, 1, 4, NULL);
    sw_err err = {{0}};
    ok(sw_be_get_rows(be, &tab.t, &id.t, &out.t, &err), &err);
    float *got = malloc(sizeof(float) * (size_t)(n * T));
    dt_read(be, &out.t, got);
    for (int64_t t = 0; t < T; t++) {
        const float *ref = deq + ids[t] * n;
        float mx = 0;
        for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, fabsf(ref[i]));
        for (int64_t i = 0; i < n; i++)
            if (!(fabs((double)got[t * n + i] - ref[i]) <= 8 * U * mx))
                fail_msg("get_rows %s n=%lld: token %lld elem %lld: got %.9g want %.9g",
                         sw_type_name(type), (long long)n, (long long)t, (long long)i,
                         got[t * n + i], ref[i]);
    }
    free(got);
    free(deq);
    free(q);
    dt_free(be, &tab);
    dt_free(be, &id);
    dt_free(be, &out);
}

static void test_get_rows(void **state) {
    (void)state;
    for (size_t i = 0; i < N_TYPES; i++) {
        get_rows_case(g_fix->vk, k_types[i], 256, 5);
        get_rows_case(g_fix->vk, k_types[i], 512, 3);
    }
    /* ragged plain rows */
    get_rows_case(g_fix->vk, SW_TYPE_F32, 7, 4);
    get_rows_case(g_fix->vk, SW_TYPE_F16, 33, 4);
    get_rows_case(g_fix->vk, SW_TYPE_BF16, 5, 3);
}

/* -------------------------------------------------------------- matmul -- */

static void test_fast_path_enabled(void **state) {
    (void)state;
    printf("the device %s 16/8-bit storage and float16: the fast path is %s\n",
           g_fix->device_fast ? "has" : "lacks", g_fix->device_fast ? "tested" : "not tested");
    assert_int_equal(sw_vk_backend_fast_path(g_fix->vk), g_fix->device_fast);
    assert_int_equal(sw_vk_backend_fast_path(g_fix->vk_nosg), g_fix->device_fast);
    assert_false(sw_vk_backend_fast_path(g_fix->vk_plain));
    assert_false(sw_vk_backend_fast_path(g_fix->vk_plain_nosg));
    assert_false(sw_vk_backend_fast_path(g_fix->cpu));
    assert_int_equal(sw_vk_backend_shader_dispatches(g_fix->vk, "no_such_shader"), 0);
}

/* The matmul shaders by path; a case must dispatch exactly one of them, of
 * the path the backend and the weights' offset call for. */
enum { SH_PLAIN_DECODE, SH_PLAIN_PREFILL, SH_FAST_DECODE, SH_FAST_PREFILL, SH_FAST_PREFILL32, N_PATH };
static const char *const k_path_name[N_PATH] = {"matvec / matvec_sg", "matmul",
                                                "matvec_fast / matvec_fast_sg", "matmul_fast",
                                                "matmul_fast32"};

static void path_counts(sw_backend *be, uint64_t c[N_PATH]) {
    c[SH_PLAIN_DECODE] = sw_vk_backend_shader_dispatches(be, "matvec") +
                         sw_vk_backend_shader_dispatches(be, "matvec_sg");
    c[SH_PLAIN_PREFILL] = sw_vk_backend_shader_dispatches(be, "matmul");
    c[SH_FAST_DECODE] = sw_vk_backend_shader_dispatches(be, "matvec_fast") +
                        sw_vk_backend_shader_dispatches(be, "matvec_fast_sg");
    c[SH_FAST_PREFILL] = sw_vk_backend_shader_dispatches(be, "matmul_fast");
    c[SH_FAST_PREFILL32] = sw_vk_backend_shader_dispatches(be, "matmul_fast32");
}

/* The fast shaders read 16-bit fields at even offsets (F32: 32-bit words at
 * multiples of 4); weights elsewhere take the plain shaders. */
static int expected_path(sw_backend *be, sw_type type, int64_t T, size_t wpad) {
    bool fast = sw_vk_backend_fast_path(be) && wpad % (type == SW_TYPE_F32 ? 4 : 2) == 0;
    if (T <= 8) return fast ? SH_FAST_DECODE : SH_PLAIN_DECODE;
    if (!fast) return SH_PLAIN_PREFILL;
    return type == SW_TYPE_F32 || type == SW_TYPE_BF16 ? SH_FAST_PREFILL32 : SH_FAST_PREFILL;
}

/* wpad: byte offset of the weights in their buffer; 0 picks an odd-looking
 * one (the row size when that is not a multiple of 4, else 8). x sits at
 * offset 16 (16-byte loads on the fast path) when wpad is 64, else at 20. */
static void matmul_check(sw_backend *be, sw_type type, int64_t K, int64_t N, int64_t T, bool bias,
                         size_t wpad, bool one_dispatch) {
    float *deq;
    void *q = make_weights(type, K, N, &deq, &mm_rng);
    float *x = malloc(sizeof(float) * (size_t)(K * T));
    float *bv = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < K * T; i++) x[i] = sw_test_nrand(&mm_rng);
    for (int64_t i = 0; i < N; i++) bv[i] = sw_test_nrand(&mm_rng);
    /* odd byte offset of the weights (unaligned quant rows) when the type allows */
    if (wpad == 0) wpad = sw_row_size(type, K) % 4 ? sw_row_size(type, K) : 8;
    dtensor w = dt_make(be, type, K, N, 1, 1, wpad, q);
    dtensor xd = dt_make(be, SW_TYPE_F32, K, T, 1, 1, wpad == 64 ? 16 : 20, x);
    dtensor bd = dt_make(be, SW_TYPE_F32, N, 1, 1, 1, 4, bv);
    dtensor out = dt_make(be, SW_TYPE_F32, N, T, 1, 1, 36, NULL);
    sw_err err = {{0}};
    uint64_t c0[N_PATH], c1[N_PATH];
    path_counts(be, c0);
    ok(sw_be_matmul(be, &w.t, &xd.t, bias ? &bd.t : NULL, &out.t, &err), &err);
    path_counts(be, c1);
    int want = expected_path(be, type, T, wpad);
    for (int p = 0; p < N_PATH && one_dispatch; p++)
        if (c1[p] - c0[p] != (p == want ? 1u : 0u))
            fail_msg("matmul %s K=%lld N=%lld T=%lld (weights at +%zu): expected one dispatch "
                     "of %s, got %llu of %s",
                     sw_type_name(type), (long long)K, (long long)N, (long long)T, wpad,
                     k_path_name[want], (unsigned long long)(c1[p] - c0[p]), k_path_name[p]);
    float *got = malloc(sizeof(float) * (size_t)(N * T));
    dt_read(be, &out.t, got);
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) {
            double ref = bias ? bv[n] : 0.0, s = 0.0, wmax = 0.0, xs = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)deq[n * K + k] * x[t * K + k];
                ref += p;
                s += fabs(p);
                wmax = fmax(wmax, fabs(deq[n * K + k]));
                xs += fabs(x[t * K + k]);
            }
            double tol = (double)(K + 64) * U * s + 8 * U * wmax * xs + 4 * U * fabs(ref);
            double e = fabs((double)got[t * N + n] - ref);
            if (!(e <= tol))
                fail_msg("matmul %s K=%lld N=%lld T=%lld%s (%s): out[%lld, %lld] = %.9g, ref "
                         "%.9g (err %.3g > tol %.3g)",
                         sw_type_name(type), (long long)K, (long long)N, (long long)T,
                         bias ? " +bias" : "", k_path_name[want], (long long)n, (long long)t,
                         got[t * N + n], ref, e, tol);
        }
    free(got);
    free(x);
    free(bv);
    free(deq);
    free(q);
    dt_free(be, &w);
    dt_free(be, &xd);
    dt_free(be, &bd);
    dt_free(be, &out);
}

static void matmul_case(sw_backend *be, sw_type type, int64_t K, int64_t N, int64_t T, bool bias,
                        size_t wpad) {
    matmul_check(be, type, K, N, T, bias, wpad, true);
}

/* Every type, K from one block to 4096, N odd and across the fast path's
 * 2-row decode groups and 64-row prefill tiles, T on both sides of the
 * decode / prefill switch (8) and of the 64-token tile. The N = 65 cases put
 * the weights at offset 64, where plain rows whose size is a multiple of 16
 * take the fast path's 16-byte loads. */
static void matmul_all(sw_backend *be) {
    static const int64_t Ts[] = {1, 2, 5, 8, 9, 33, 100}, Ns[] = {7, 65};
    for (size_t i = 0; i < N_TYPES; i++) {
        sw_type type = k_types[i];
        int64_t bs = sw_type_get(type)->blck_size;
        /* plain: 36 ends inside an 8-element chunk and a 32-wide tile */
        int64_t Ks[2] = {bs == 1 ? 36 : bs, bs == 1 ? 256 : bs == 32 ? 288 : 768};
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                for (int c = 0; c < 7; c++)
                    matmul_case(be, type, Ks[b], Ns[a], Ts[c], (a + b + c) % 2 == 1,
                                a ? 64 : 0);
        for (int c = 0; c < 7; c += 3) matmul_case(be, type, 4096, 33, Ts[c], c == 3, 0);
    }
    /* ragged K for the plain types (tails inside an 8-element chunk) */
    matmul_case(be, SW_TYPE_F32, 37, 5, 1, false, 0);
    matmul_case(be, SW_TYPE_F32, 37, 5, 9, true, 0);
    matmul_case(be, SW_TYPE_F16, 100, 6, 2, false, 0);
    matmul_case(be, SW_TYPE_F16, 100, 6, 40, false, 0);
    matmul_case(be, SW_TYPE_F16, 100, 70, 5, true, 64);
    matmul_case(be, SW_TYPE_BF16, 66, 3, 8, true, 0);
    matmul_case(be, SW_TYPE_BF16, 66, 3, 65, false, 64);
    matmul_case(be, SW_TYPE_F32, 1001, 3, 3, true, 64);
}

static void test_matmul(void **state) {
    (void)state;
    matmul_all(g_fix->vk);
    /* the shapes above must have run both fast shaders' every variant */
    if (g_fix->device_fast) {
        assert_true(sw_vk_backend_shader_dispatches(g_fix->vk, "matmul_fast") > 0);
        assert_true(sw_vk_backend_shader_dispatches(g_fix->vk, "matmul_fast32") > 0);
        assert_true(sw_vk_backend_shader_dispatches(g_fix->vk, "matvec_fast") +
                        sw_vk_backend_shader_dispatches(g_fix->vk, "matvec_fast_sg") > 0);
    }
}

static void test_matmul_nosg(void **state) {
    (void)state;
    matmul_all(g_fix->vk_nosg);
    /* SW_VK_NO_SUBGROUP=1: the shared-memory reductions only */
    assert_int_equal(sw_vk_backend_shader_dispatches(g_fix->vk_nosg, "matvec_fast_sg"), 0);
    assert_int_equal(sw_vk_backend_shader_dispatches(g_fix->vk_nosg, "matvec_sg"), 0);
}

static void test_matmul_plain(void **state) {
    (void)state;
    matmul_all(g_fix->vk_plain);
}

static void test_matmul_plain_reduction(void **state) {
    (void)state;
    /* the plain shared-memory matvec on every type; the tiled path is the same shader */
    for (size_t i = 0; i < N_TYPES; i++) {
        matmul_case(g_fix->vk_plain_nosg, k_types[i], 256, 33, 1, true, 0);
        matmul_case(g_fix->vk_plain_nosg, k_types[i], 512, 7, 8, false, 0);
    }
    assert_int_equal(sw_vk_backend_shader_dispatches(g_fix->vk_plain_nosg, "matvec_sg"), 0);
}

/* Weights at offsets the fast shaders cannot read (odd; F32 at 2 mod 4) take
 * the plain shaders on the fast backend, and give the same answers. */
static void test_matmul_misaligned(void **state) {
    (void)state;
    static const sw_type types[] = {SW_TYPE_F16, SW_TYPE_BF16, SW_TYPE_Q4_0, SW_TYPE_Q6_K};
    for (size_t i = 0; i < 4; i++)
        for (int T = 1; T <= 9; T += 8) {
            int64_t bs = sw_type_get(types[i])->blck_size;
            matmul_case(g_fix->vk, types[i], bs == 1 ? 64 : 2 * bs, 5, T, T == 9, 3);
        }
    matmul_case(g_fix->vk, SW_TYPE_F32, 64, 5, 2, true, 6);
    matmul_case(g_fix->vk, SW_TYPE_F32, 64, 5, 17, false, 6);
}

/* The self-check behind the cooperative-matrix matmul (kernels/vulkan/
 * vk_coop.c), on shaders that run everywhere: the fast and plain tiled
 * matmuls agree; a shader that computes only 8 of the check's 80 tokens
 * (matvec) is caught; the cooperative shader is refused where it was not
 * enabled. Where a device has cooperative matrices (not lavapipe), a default
 * backend must have them on, and agree with matmul_fast within the check's
 * f16-input bound. */
static void test_coop_check(void **state) {
    (void)state;
    sw_err err = {{0}};
    double nerr = -1.0;
    sw_vk_device_info *devs = NULL;
    int n = 0;
    ok(sw_vk_list_devices(&devs, &n, &err), &err);
    int di = sw_vk_preferred_device(devs, n);
    bool has_coop = devs[di].coop_nv_f16_16x16x16 && devs[di].vulkan_memory_model &&
                    devs[di].subgroup_size == 32 && g_fix->device_fast;
    free(devs);
    sw_backend *be = NULL;
    ok(sw_backend_vulkan_create(-1, &be, &err), &err);
    printf("cooperative matrices: device %s them, backend %s\n", has_coop ? "has" : "lacks",
           sw_vk_backend_coop_matrix(be) ? "on" : "off");
    assert_int_equal(sw_vk_backend_coop_matrix(be), has_coop);
    if (has_coop) {
        ok(sw_vk_backend_compare_shaders(be, "matmul_coop", "matmul_fast", &nerr, &err), &err);
        if (!(nerr <= 1e-2)) fail_msg("matmul_coop vs matmul_fast: normalized error %.3g", nerr);
    }
    sw_backend_free(be);
    assert_false(sw_vk_backend_coop_matrix(g_fix->vk));
    assert_false(sw_vk_backend_coop_matrix(g_fix->vk_plain));
    if (g_fix->device_fast) {
        ok(sw_vk_backend_compare_shaders(g_fix->vk, "matmul_fast", "matmul", &nerr, &err), &err);
        if (!(nerr <= 1e-5)) fail_msg("matmul_fast vs matmul: normalized error %.3g", nerr);
        ok(sw_vk_backend_compare_shaders(g_fix->vk_nosg, "matvec", "matmul_fast", &nerr, &err),
           &err);
        if (!(nerr > 0.5)) fail_msg("matvec on 80 tokens vs matmul_fast: only %.3g", nerr);
    }
    assert_int_equal(sw_vk_backend_compare_shaders(g_fix->vk_plain, "matmul_fast", "matmul",
                                                   &nerr, &err),
                     SW_E_UNSUPPORTED);
    /* SW_VK_NO_COOP=1: not enabled, so refused */
    assert_int_equal(sw_vk_backend_compare_shaders(g_fix->vk, "matmul_coop", "matmul", &nerr,
                                                   &err),
                     SW_E_UNSUPPORTED);
    assert_int_equal(sw_vk_backend_compare_shaders(g_fix->vk, "nope", "matmul", &nerr, &err),
                     SW_E_INVALID_ARG);
    assert_int_equal(sw_vk_backend_compare_shaders(g_fix->vk, "rope", "matmul", &nerr, &err),
                     SW_E_INVALID_ARG);
    assert_int_equal(sw_vk_backend_compare_shaders(g_fix->vk_nosg, "matvec_sg", "matmul", &nerr,
                                                   &err),
                     SW_E_UNSUPPORTED);
    assert_int_equal(sw_vk_backend_compare_shaders(g_fix->cpu, "matmul", "matmul", &nerr, &err),
                     SW_E_INVALID_ARG);
}

/* ----------------------------------------------- ops against the CPU -- */

/* Run the same op on the CPU and Vulkan backends: tensors are created on
 * both from the same host data. */
typedef struct {
    dtensor c, v;
} pair;

static pair pair_make(sw_type type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
                      const void *data) {
    pair p;
    p.c = dt_make(g_fix->cpu, type, ne0, ne1, ne2, ne3, 0, data);
    p.v = dt_make(g_fix->vk, type, ne0, ne1, ne2, ne3, 8, data);
    return p;
}

static void pair_free(pair *p) {
    dt_free(g_fix->cpu, &p->c);
    dt_free(g_fix->vk, &p->v);
}

static float *frand_n(int64_t n) {
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) f[i] = nrand();
    return f;
}

/* Download both results of a pair and compare with a relative tolerance on
 * each element: |a - b| <= rel * max(|a|, |b|, floor). */
static void compare_pair(const char *what, const sw_tensor *c, const sw_tensor *v, double rel,
                         double floor) {
    int64_t n = sw_tensor_nbytes(c) / sizeof(float);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    dt_read(g_fix->cpu, c, a);
    dt_read(g_fix->vk, v, b);
    for (int64_t i = 0; i < n; i++) {
        double m = fmax(fmax(fabs(a[i]), fabs(b[i])), floor);
        if (!(fabs((double)a[i] - b[i]) <= rel * m))
            fail_msg("%s: element %lld: cpu %.9g vulkan %.9g", what, (long long)i, a[i], b[i]);
    }
    free(a);
    free(b);
}

static void test_rms_norm(void **state) {
    (void)state;
    static const int64_t shapes[][2] = {{33, 5}, {300, 3}, {4096, 2}};
    for (int s = 0; s < 3; s++) {
        int64_t n = shapes[s][0], r = shapes[s][1];
        float *x = frand_n(n * r), *w = frand_n(n);
        pair px = pair_make(SW_TYPE_F32, n, r, 1, 1, x), pw = pair_make(SW_TYPE_F32, n, 1, 1, 1, w);
        pair po = pair_make(SW_TYPE_F32, n, r, 1, 1, NULL);
        sw_err err = {{0}};
        ok(sw_be_rms_norm(g_fix->cpu, &px.c.t, &pw.c.t, 1e-5f, &po.c.t, &err), &err);
        ok(sw_be_rms_norm(g_fix->vk, &px.v.t, &pw.v.t, 1e-5f, &po.v.t, &err), &err);
        compare_pair("rms_norm", &po.c.t, &po.v.t, 16 * U * sqrt((double)n), 1e-3);
        /* in place */
        ok(sw_be_rms_norm(g_fix->cpu, &px.c.t, &pw.c.t, 1e-6f, &px.c.t, &err), &err);
        ok(sw_be_rms_norm(g_fix->vk, &px.v.t, &pw.v.t, 1e-6f, &px.v.t, &err), &err);
        compare_pair("rms_norm in place", &px.c.t, &px.v.t, 16 * U * sqrt((double)n), 1e-3);
        pair_free(&px);
        pair_free(&pw);
        pair_free(&po);
        free(x);
        free(w);
    }
}

static void test_swiglu_add(void **state) {
    (void)state;
    int64_t n = 37, r = 6;
    float *a = frand_n(n * r), *b = frand_n(n * r);
    for (int i = 0; i < 5; i++) a[i] *= 30.0f; /* large |gate|: the exp tails */
    pair pa = pair_make(SW_TYPE_F32, n, r, 1, 1, a), pb = pair_make(SW_TYPE_F32, n, r, 1, 1, b);
    pair po = pair_make(SW_TYPE_F32, n, r, 1, 1, NULL);
    sw_err err = {{0}};
    ok(sw_be_swiglu(g_fix->cpu, &pa.c.t, &pb.c.t, &po.c.t, &err), &err);
    ok(sw_be_swiglu(g_fix->vk, &pa.v.t, &pb.v.t, &po.v.t, &err), &err);
    /* silu(g) u = g u / (1 + exp(-g)): GLSL's exp is only within 3 + 2|x| ulp
     * (Vulkan spec, precision of built-ins), so the bound grows with |g|; the
     * rest (negation, add, divide, multiplies, the CPU's own expf) stays
     * within 10 ulp */
    {
        float *c = malloc(sizeof(float) * (size_t)(n * r)), *v = malloc(sizeof(float) * (size_t)(n * r));
        dt_read(g_fix->cpu, &po.c.t, c);
        dt_read(g_fix->vk, &po.v.t, v);
        for (int64_t i = 0; i < n * r; i++) {
            double m = fmax(fmax(fabs(c[i]), fabs(v[i])), 1e-30);
            if (!(fabs((double)c[i] - v[i]) <= (10.0 + 2.0 * fabs(a[i])) * U * m))
                fail_msg("swiglu: element %lld (gate %g): cpu %.9g vulkan %.9g", (long long)i,
                         a[i], c[i], v[i]);
        }
        free(c);
        free(v);
    }
    /* geglu: gelu(g) u = g u / (1 + exp(-2v)), v = sqrt(2/pi) (g + 0.044715 g^3):
     * GLSL's exp within 3 + 4|v| ulp, and each side's float v (~4 roundings)
     * moves exp(-2v) by 8|v| u relative; 10 ulp for the rest */
    ok(sw_be_geglu(g_fix->cpu, &pa.c.t, &pb.c.t, &po.c.t, &err), &err);
    ok(sw_be_geglu(g_fix->vk, &pa.v.t, &pb.v.t, &po.v.t, &err), &err);
    {
        float *c = malloc(sizeof(float) * (size_t)(n * r)), *v = malloc(sizeof(float) * (size_t)(n * r));
        dt_read(g_fix->cpu, &po.c.t, c);
        dt_read(g_fix->vk, &po.v.t, v);
        for (int64_t i = 0; i < n * r; i++) {
            double g = a[i], gv = fabs(0.7978845608 * (g + 0.044715 * g * g * g));
            double m = fmax(fmax(fabs(c[i]), fabs(v[i])), 1e-30);
            if (!(fabs((double)c[i] - v[i]) <= (13.0 + 20.0 * gv) * U * m))
                fail_msg("geglu: element %lld (gate %g): cpu %.9g vulkan %.9g", (long long)i,
                         a[i], c[i], v[i]);
        }
        free(c);
        free(v);
    }
    /* scale: one rounding on both sides, the same one */
    ok(sw_be_scale(g_fix->cpu, &pa.c.t, 0.37f, &po.c.t, &err), &err);
    ok(sw_be_scale(g_fix->vk, &pa.v.t, 0.37f, &po.v.t, &err), &err);
    compare_pair("scale", &po.c.t, &po.v.t, 0.0, 1.0);
    /* softcap cap 5 (the 30x gates saturate): the shader's tanh goes through
     * exp(2|t|): (8 + 8|t|) u of the cap, absolute */
    {
        ok(sw_be_softcap(g_fix->cpu, &pa.c.t, 5.0f, &po.c.t, &err), &err);
        ok(sw_be_softcap(g_fix->vk, &pa.v.t, 5.0f, &po.v.t, &err), &err);
        float *c = malloc(sizeof(float) * (size_t)(n * r)), *v = malloc(sizeof(float) * (size_t)(n * r));
        dt_read(g_fix->cpu, &po.c.t, c);
        dt_read(g_fix->vk, &po.v.t, v);
        for (int64_t i = 0; i < n * r; i++)
            if (!(fabs((double)c[i] - v[i]) <= (8.0 + 8.0 * fabs(a[i] / 5.0)) * U * 5.0) ||
                !(fabsf(v[i]) <= 5.0f))
                fail_msg("softcap: element %lld (x %g): cpu %.9g vulkan %.9g", (long long)i, a[i],
                         c[i], v[i]);
        free(c);
        free(v);
    }
    ok(sw_be_add(g_fix->cpu, &pa.c.t, &pb.c.t, &pa.c.t, &err), &err);
    ok(sw_be_add(g_fix->vk, &pa.v.t, &pb.v.t, &pa.v.t, &err), &err);
    /* a sum's rounding is relative to the operands, not to the (maybe small) result */
    compare_pair("add in place", &pa.c.t, &pa.v.t, 2 * U, 8.0);
    /* strided views: columns 3..19 of each row */
    sw_tensor cc = sw_tensor_cols(&pb.c.t, 3, 16), vc = sw_tensor_cols(&pb.v.t, 3, 16);
    sw_tensor ca = sw_tensor_cols(&pa.c.t, 10, 16), va = sw_tensor_cols(&pa.v.t, 10, 16);
    ok(sw_be_add(g_fix->cpu, &cc, &ca, &cc, &err), &err);
    ok(sw_be_add(g_fix->vk, &vc, &va, &vc, &err), &err);
    compare_pair("add strided", &pb.c.t, &pb.v.t, 2 * U, 16.0);
    pair_free(&pa);
    pair_free(&pb);
    pair_free(&po);
    free(a);
    free(b);
}

static void rope_case(int mode, int64_t hd, int32_t n_dims, bool ff, bool strided) {
    int64_t nh = 3, T = 5, row = strided ? hd * (nh + 2) : hd * nh;
    float *x = frand_n(row * T), *f = frand_n(n_dims / 2);
    for (int i = 0; i < n_dims / 2; i++) f[i] = 1.0f + fabsf(f[i]);
    int32_t pos[5] = {0, 1, 17, 63, 130};
    pair px = pair_make(SW_TYPE_F32, row, T, 1, 1, x), pp = pair_make(SW_TYPE_I32, T, 1, 1, 1, pos);
    pair pf = pair_make(SW_TYPE_F32, n_dims / 2, 1, 1, 1, f);
    sw_tensor vc = px.c.t, vv = px.v.t;
    sw_tensor hc = sw_tensor_make(vc.buf, vc.offset + (strided ? (size_t)hd * 4 : 0), SW_TYPE_F32,
                                  hd, nh, T, 1);
    sw_tensor hv = sw_tensor_make(vv.buf, vv.offset + (strided ? (size_t)hd * 4 : 0), SW_TYPE_F32,
                                  hd, nh, T, 1);
    hc.nb[2] = hv.nb[2] = (size_t)row * 4;
    sw_rope_params p = {.n_dims = n_dims, .mode = mode, .freq_base = 10000.0f,
                        .freq_scale = 0.5f, .freq_factors = NULL};
    sw_err err = {{0}};
    if (ff) p.freq_factors = &pf.c.t;
    ok(sw_be_rope(g_fix->cpu, &hc, &pp.c.t, &p, &err), &err);
    if (ff) p.freq_factors = &pf.v.t;
    ok(sw_be_rope(g_fix->vk, &hv, &pp.v.t, &p, &err), &err);
    /* |theta| <= 130 * 0.5: 16u (65 + 4) relative to the pair's magnitude */
    compare_pair("rope", &px.c.t, &px.v.t, 16 * U * 70 * 4, 1.0);
    pair_free(&px);
    pair_free(&pp);
    pair_free(&pf);
    free(x);
    free(f);
}

static void test_rope(void **state) {
    (void)state;
    for (int mode = 0; mode <= 2; mode += 2) {
        rope_case(mode, 16, 16, false, false);
        rope_case(mode, 16, 8, true, true);
        rope_case(mode, 64, 64, true, false);
        rope_case(mode, 32, 24, false, true);
    }
}

/* ------------------------------------------------------------ fused ops -- */

/* The fused ops against the CPU backend's (which equal the sequences they
 * replace, test_cpu_ops), with the tolerances of the ops they fuse. */
static void test_fused_ops(void **state) {
    (void)state;
    sw_err err = {{0}};
    int64_t n = 300, r = 3;
    float *x = frand_n(n * r), *h = frand_n(n * r), *w = frand_n(n);
    pair px = pair_make(SW_TYPE_F32, n, r, 1, 1, x), ph = pair_make(SW_TYPE_F32, n, r, 1, 1, h);
    pair pw = pair_make(SW_TYPE_F32, n, 1, 1, 1, w);
    ok(sw_be_add_rms_norm(g_fix->cpu, &px.c.t, &ph.c.t, &pw.c.t, 1e-5f, &ph.c.t, &err), &err);
    ok(sw_be_add_rms_norm(g_fix->vk, &px.v.t, &ph.v.t, &pw.v.t, 1e-5f, &ph.v.t, &err), &err);
    compare_pair("add_rms_norm x", &px.c.t, &px.v.t, 2 * U, 8.0);
    compare_pair("add_rms_norm out", &ph.c.t, &ph.v.t, 16 * U * sqrt((double)n), 1e-3);
    pair_free(&px);
    pair_free(&ph);
    pair_free(&pw);
    free(x);
    free(h);
    free(w);
    /* rope_kv_write on q, k, v as columns of one matrix, both rope modes,
     * partial rotation, f32 and f16 caches */
    for (int c = 0; c < 4; c++) {
        const int mode = c % 2 ? 2 : 0;
        const sw_type ct = c < 2 ? SW_TYPE_F32 : SW_TYPE_F16;
        const int64_t hd = 16, nh = 4, nkv = 2, T = 5, qd = nh * hd, kvd = nkv * hd;
        const int64_t row = qd + 2 * kvd, bs = 4, nb = 8;
        const int32_t n_dims = c == 2 ? 8 : 16;
        float *m = frand_n(row * T);
        int32_t pos[5] = {0, 1, 17, 63, 130}, slots[5] = {3, 0, 17, 30, 12};
        pair pm = pair_make(SW_TYPE_F32, row, T, 1, 1, m), pp = pair_make(SW_TYPE_I32, T, 1, 1, 1, pos);
        pair ps = pair_make(SW_TYPE_I32, T, 1, 1, 1, slots);
        size_t cbytes = sw_row_size(ct, hd) * (size_t)(nkv * bs * nb);
        uint8_t *zero = calloc(1, cbytes);
        pair kc = pair_make(ct, hd, nkv, bs, nb, zero), vc = pair_make(ct, hd, nkv, bs, nb, zero);
        sw_rope_params p = {n_dims, mode, 10000.0f, 0.5f, NULL};
        for (int b = 0; b < 2; b++) {
            sw_backend *be = b ? g_fix->vk : g_fix->cpu;
            const sw_tensor *mt = b ? &pm.v.t : &pm.c.t;
            sw_tensor qh = sw_tensor_make(mt->buf, mt->offset, SW_TYPE_F32, hd, nh, T, 1);
            sw_tensor kh = sw_tensor_make(mt->buf, mt->offset + (size_t)qd * 4, SW_TYPE_F32, hd, nkv, T, 1);
            qh.nb[2] = kh.nb[2] = mt->nb[1];
            sw_tensor v = sw_tensor_cols(mt, qd + kvd, kvd);
            ok(sw_be_rope_kv_write(be, &qh, &kh, &v, b ? &pp.v.t : &pp.c.t, &p,
                                   b ? &kc.v.t : &kc.c.t, b ? &vc.v.t : &vc.c.t,
                                   b ? &ps.v.t : &ps.c.t, &err),
               &err);
        }
        /* q (and k, v as they were): rope's bound; the caches: the same, plus
         * f16 rounding (half an f16 ulp, 2^-11 relative) */
        compare_pair("rope_kv_write q", &pm.c.t, &pm.v.t, 16 * U * 70 * 4, 1.0);
        for (int w2 = 0; w2 < 2; w2++) {
            pair *pc = w2 ? &vc : &kc;
            float *a = malloc(sizeof(float) * (size_t)(hd * nkv * bs * nb));
            float *bv = malloc(sizeof(float) * (size_t)(hd * nkv * bs * nb));
            uint8_t *ra = malloc(cbytes), *rb = malloc(cbytes);
            dt_read(g_fix->cpu, &pc->c.t, ra);
            dt_read(g_fix->vk, &pc->v.t, rb);
            sw_dequantize_row(ct, ra, a, hd * nkv * bs * nb, NULL);
            sw_dequantize_row(ct, rb, bv, hd * nkv * bs * nb, NULL);
            const double rel = 16 * U * 70 * 4 + (ct == SW_TYPE_F16 ? 0x1p-11 : 0);
            for (int64_t i = 0; i < hd * nkv * bs * nb; i++)
                if (!(fabs((double)a[i] - bv[i]) <= rel * fmax(fmax(fabs(a[i]), fabs(bv[i])), 1.0)))
                    fail_msg("rope_kv_write %s cache (%s, mode %d) element %lld: cpu %.9g vulkan %.9g",
                             w2 ? "v" : "k", sw_type_name(ct), mode, (long long)i, a[i], bv[i]);
            free(a);
            free(bv);
            free(ra);
            free(rb);
        }
        free(m);
        free(zero);
        pair_free(&pm);
        pair_free(&pp);
        pair_free(&ps);
        pair_free(&kc);
        pair_free(&vc);
    }
}

/* --------------------------------------------------- kv cache + attention -- */

typedef struct {
    int32_t hd, nh, nkv, bs, n_blocks; /* n_blocks: set by attention_case */
    sw_type type;
    bool non_causal; /* attention: every token sees its whole sequence (bert) */
} kv_shape;

static void test_kv_write(void **state) {
    (void)state;
    for (int ty = 0; ty < 2; ty++) {
        sw_type type = ty ? SW_TYPE_F16 : SW_TYPE_F32;
        int64_t hd = 16, nkv = 2, bs = 4, nb = 6, T = 7;
        float *k = frand_n(hd * nkv * T), *v = frand_n(hd * nkv * T);
        int32_t slots[7] = {0, 5, 23, 9, 10, 11, 2};
        pair pk = pair_make(SW_TYPE_F32, hd * nkv, T, 1, 1, k);
        pair pv = pair_make(SW_TYPE_F32, hd * nkv, T, 1, 1, v);
        pair ps = pair_make(SW_TYPE_I32, T, 1, 1, 1, slots);
        size_t cbytes = sw_row_size(type, hd) * (size_t)(nkv * bs * nb);
        uint8_t *zero = calloc(1, cbytes);
        pair kc = pair_make(type, hd, nkv, bs, nb, zero), vc = pair_make(type, hd, nkv, bs, nb, zero);
        sw_err err = {{0}};
        ok(sw_be_kv_write(g_fix->cpu, &pk.c.t, &pv.c.t, &kc.c.t, &vc.c.t, &ps.c.t, &err), &err);
        ok(sw_be_kv_write(g_fix->vk, &pk.v.t, &pv.v.t, &kc.v.t, &vc.v.t, &ps.v.t, &err), &err);
        uint8_t *a = malloc(cbytes), *b = malloc(cbytes);
        for (int c = 0; c < 2; c++) {
            pair *pc = c ? &vc : &kc;
            dt_read(g_fix->cpu, &pc->c.t, a);
            dt_read(g_fix->vk, &pc->v.t, b);
            if (type == SW_TYPE_F32) {
                assert_memory_equal(a, b, cbytes);
            } else {
                for (size_t i = 0; i < cbytes / 2; i++) {
                    uint16_t x, y;
                    memcpy(&x, a + 2 * i, 2);
                    memcpy(&y, b + 2 * i, 2);
                    if (abs((int)x - (int)y) > 1)
                        fail_msg("kv_write f16 %s half %zu: cpu %04x vulkan %04x",
                                 c ? "v" : "k", i, x, y);
                }
            }
        }
        free(a);
        free(b);
        free(zero);
        free(k);
        free(v);
        pair_free(&pk);
        pair_free(&pv);
        pair_free(&ps);
        pair_free(&kc);
        pair_free(&vc);
    }
}

static void attention_case(kv_shape s, bool heads_layout, int32_t window) {
    /* three sequences: a prefill continuation (3 tokens at 5..7), a fresh
     * prefill of 17 tokens, and one decode token at position 150 (three
     * 64-position tiles: the online softmax rescales across tiles) */
    enum { S = 3 };
    int32_t seq_len[S] = {3, 17, 1}, first_pos[S] = {5, 0, 150};
    int32_t T = 21, max_blocks = 0;
    int32_t seq_start[S + 1] = {0, 3, 20, 21}, pos[21];
    for (int q = 0; q < S; q++) {
        for (int i = 0; i < seq_len[q]; i++) pos[seq_start[q] + i] = first_pos[q] + i;
        int32_t need = (first_pos[q] + seq_len[q] - 1) / s.bs + 1;
        if (need > max_blocks) max_blocks = need;
    }
    s.n_blocks = S * max_blocks + 5;
    /* block tables: a random permutation of the cache's blocks, so that each
     * sequence's blocks are scattered and interleaved with the others' */
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)s.n_blocks);
    for (int i = 0; i < s.n_blocks; i++) perm[i] = i;
    for (int i = s.n_blocks - 1; i > 0; i--) {
        int j = (int)(urand() * (i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    assert_true(S * max_blocks <= s.n_blocks);
    int32_t *bt = malloc(sizeof(int32_t) * (size_t)(S * max_blocks));
    for (int i = 0; i < S * max_blocks; i++) bt[i] = perm[i];

    /* caches with random contents everywhere (stale blocks included) */
    int64_t n_elem = (int64_t)s.hd * s.nkv * s.bs * s.n_blocks;
    float *kf = frand_n(n_elem), *vf = frand_n(n_elem);
    size_t es = s.type == SW_TYPE_F16 ? 2 : 4;
    uint8_t *kraw = malloc((size_t)n_elem * es), *vraw = malloc((size_t)n_elem * es);
    if (s.type == SW_TYPE_F16) {
        sw_quantize_f16(kf, kraw, n_elem);
        sw_quantize_f16(vf, vraw, n_elem);
    } else {
        memcpy(kraw, kf, (size_t)n_elem * 4);
        memcpy(vraw, vf, (size_t)n_elem * 4);
    }
    float *qf = frand_n((int64_t)s.hd * s.nh * T);
    pair kc = pair_make(s.type, s.hd, s.nkv, s.bs, s.n_blocks, kraw);
    pair vc = pair_make(s.type, s.hd, s.nkv, s.bs, s.n_blocks, vraw);
    pair pq = heads_layout ? pair_make(SW_TYPE_F32, s.hd, s.nh, T, 1, qf)
                           : pair_make(SW_TYPE_F32, (int64_t)s.hd * s.nh, T, 1, 1, qf);
    pair po = pair_make(SW_TYPE_F32, (int64_t)s.hd * s.nh, T, 1, 1, NULL);
    pair pss = pair_make(SW_TYPE_I32, S + 1, 1, 1, 1, seq_start);
    pair ppos = pair_make(SW_TYPE_I32, T, 1, 1, 1, pos);
    pair pbt = pair_make(SW_TYPE_I32, max_blocks, S, 1, 1, bt);
    sw_attn_params p = {.n_head = s.nh, .n_head_kv = s.nkv, .head_dim = s.hd,
                        .scale = 1.0f / sqrtf((float)s.hd), .block_size = s.bs, .n_seqs = S,
                        .max_blocks = max_blocks, .max_ctx = 151,
                        .non_causal = s.non_causal, .window = window};
    sw_err err = {{0}};
    p.seq_start = &pss.c.t;
    p.pos = &ppos.c.t;
    p.block_tables = &pbt.c.t;
    ok(sw_be_attention(g_fix->cpu, &pq.c.t, &kc.c.t, &vc.c.t, &p, &po.c.t, &err), &err);
    p.seq_start = &pss.v.t;
    p.pos = &ppos.v.t;
    p.block_tables = &pbt.v.t;
    ok(sw_be_attention(g_fix->vk, &pq.v.t, &kc.v.t, &vc.v.t, &p, &po.v.t, &err), &err);
    /* values are ~N(0, 1), |v| < 4: (151 + 64) 2u * 4 absolute */
    char what[128];
    snprintf(what, sizeof what, "attention hd=%d nh=%d nkv=%d bs=%d window=%d %s%s%s", s.hd,
             s.nh, s.nkv, s.bs, window, sw_type_name(s.type),
             heads_layout ? " [hd, nh, T]" : "", s.non_causal ? " non-causal" : "");
    compare_pair(what, &po.c.t, &po.v.t, (151 + 64) * 2 * U * 4, 1.0);
    pair_free(&kc);
    pair_free(&vc);
    pair_free(&pq);
    pair_free(&po);
    pair_free(&pss);
    pair_free(&ppos);
    pair_free(&pbt);
    free(perm);
    free(bt);
    free(kf);
    free(vf);
    free(kraw);
    free(vraw);
    free(qf);
}

static void test_attention(void **state) {
    (void)state;
    static const int32_t gqa[3][2] = {{4, 4}, {4, 2}, {8, 2}};
    for (int ty = 0; ty < 2; ty++)
        for (int g = 0; g < 3; g++) {
            kv_shape s = {.hd = 16, .nh = gqa[g][0], .nkv = gqa[g][1], .bs = 4,
                          .type = ty ? SW_TYPE_F16 : SW_TYPE_F32};
            attention_case(s, false, 0);
        }
    kv_shape big = {.hd = 128, .nh = 4, .nkv = 1, .bs = 16, .type = SW_TYPE_F16};
    attention_case(big, true, 0);
    kv_shape odd = {.hd = 72, .nh = 2, .nkv = 2, .bs = 3, .type = SW_TYPE_F32};
    attention_case(odd, false, 0);
    /* non-causal (bert): each token sees its sequence up to the batch's last
     * position, the tokens after it included */
    kv_shape nc = {.hd = 32, .nh = 4, .nkv = 4, .bs = 4, .type = SW_TYPE_F16, .non_causal = true};
    attention_case(nc, false, 0);
    nc.type = SW_TYPE_F32;
    nc.nkv = 2;
    attention_case(nc, true, 0);
    /* sliding windows: 1 (the token alone), 6 (inside the prefills), 70 (the
     * decode at 150 starts mid-tile); head_dim 256 with one kv head: Gemma 3 */
    kv_shape swa = {.hd = 16, .nh = 4, .nkv = 2, .bs = 4, .type = SW_TYPE_F16};
    attention_case(swa, false, 1);
    attention_case(swa, true, 6);
    attention_case(swa, false, 70);
    kv_shape gemma = {.hd = 256, .nh = 4, .nkv = 1, .bs = 16, .type = SW_TYPE_F16};
    attention_case(gemma, false, 70);
}

/* ------------------------------------------- tensors over one binding -- */

/* A backend whose bindings may span only 64 KiB (SW_VK_MAX_BINDING) runs
 * get_rows, matmul and the elementwise ops on tensors larger than that in
 * pieces (as a 262k vocabulary needs on lavapipe's 128 MiB): same results
 * as the unsplit backend / the reference. */
static void test_split_bindings(void **state) {
    (void)state;
    setenv("SW_VK_MAX_BINDING", "65536", 1);
    sw_backend *be = make_vk("0", "0", "0");
    unsetenv("SW_VK_MAX_BINDING");
    assert_non_null(be);
    sw_err err = {{0}};
    /* get_rows: 700 rows of 272 bytes (q8_0, 256) = 186 KiB: three pieces;
     * ids from every piece, and an invalid one (zeros) */
    float *deq;
    const int64_t n = 256, rows = 700, T = 5;
    void *q = make_weights(SW_TYPE_Q8_0, n, rows, &deq, &rng);
    int32_t ids[5] = {699, 0, 300, 241, 700};
    dtensor tab = dt_make(be, SW_TYPE_Q8_0, n, rows, 1, 1, 0, q);
    dtensor id = dt_make(be, SW_TYPE_I32, T, 1, 1, 1, 0, ids);
    dtensor out = dt_make(be, SW_TYPE_F32, n, T, 1, 1, 0, NULL);
    ok(sw_be_get_rows(be, &tab.t, &id.t, &out.t, &err), &err);
    float *got = malloc(sizeof(float) * (size_t)(n * T));
    dt_read(be, &out.t, got);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < n; i++) {
            float want = ids[t] < rows ? deq[ids[t] * n + i] : 0.0f;
            if (!(fabsf(got[t * n + i] - want) <= 8 * U * 4))
                fail_msg("split get_rows: token %lld [%lld] = %g, want %g", (long long)t,
                         (long long)i, got[t * n + i], want);
        }
    free(got);
    free(deq);
    free(q);
    dt_free(be, &tab);
    dt_free(be, &id);
    dt_free(be, &out);
    /* matmul: q4_K weights of 100 KiB (decode and prefill), and an output of
     * 131 KiB (split over tokens too) */
    matmul_check(be, SW_TYPE_Q4_K, 256, 700, 1, false, 64, false);
    matmul_check(be, SW_TYPE_Q4_K, 256, 700, 30, true, 64, false);
    matmul_check(be, SW_TYPE_F16, 512, 48, 700, false, 64, false);
    /* elementwise: [3000, 20] f32 = 234 KiB */
    int64_t m = 3000, r = 20;
    float *a = frand_n(m * r), *c = malloc(sizeof(float) * (size_t)(m * r));
    dtensor da = dt_make(be, SW_TYPE_F32, m, r, 1, 1, 0, a);
    dtensor db = dt_make(be, SW_TYPE_F32, m, r, 1, 1, 0, NULL);
    ok(sw_be_scale(be, &da.t, 3.0f, &db.t, &err), &err);
    ok(sw_be_add(be, &da.t, &db.t, &db.t, &err), &err);
    dt_read(be, &db.t, c);
    for (int64_t i = 0; i < m * r; i++)
        if (c[i] != a[i] + a[i] * 3.0f)
            fail_msg("split scale+add: [%lld] = %g, want %g", (long long)i, c[i],
                     a[i] + a[i] * 3.0f);
    free(a);
    free(c);
    dt_free(be, &da);
    dt_free(be, &db);
    sw_backend_free(be);
}

/* ----------------------------------------------------- steps and errors -- */

/* Ops recorded in a step see each other's results; a download in the middle
 * of a step sees everything recorded before it. */
static void test_step(void **state) {
    (void)state;
    sw_backend *be = g_fix->vk;
    int64_t n = 40;
    float *a = frand_n(n), *b = frand_n(n), got[40];
    dtensor da = dt_make(be, SW_TYPE_F32, n, 1, 1, 1, 0, a);
    dtensor db = dt_make(be, SW_TYPE_F32, n, 1, 1, 1, 0, b);
    sw_err err = {{0}};
    ok(sw_be_begin(be, &err), &err);
    assert_int_equal(sw_be_begin(be, &err), SW_E_INVALID_ARG);
    ok(sw_be_add(be, &da.t, &db.t, &da.t, &err), &err); /* a + b */
    ok(sw_be_add(be, &da.t, &db.t, &da.t, &err), &err); /* a + 2b */
    dt_read(be, &da.t, got);
    for (int i = 0; i < n; i++) assert_true(got[i] == (a[i] + b[i]) + b[i]);
    ok(sw_be_add(be, &da.t, &da.t, &db.t, &err), &err); /* b = 2 (a + 2b) */
    ok(sw_be_upload(be, da.buf, 0, a, sizeof(float) * (size_t)n, &err), &err);
    ok(sw_be_add(be, &da.t, &db.t, &da.t, &err), &err);
    ok(sw_be_end(be, &err), &err);
    dt_read(be, &da.t, got);
    for (int i = 0; i < n; i++) {
        float bb = ((a[i] + b[i]) + b[i]) * 2.0f;
        assert_true(got[i] == a[i] + bb);
    }
    assert_int_equal(sw_be_end(be, &err), SW_E_INVALID_ARG);
    dt_free(be, &da);
    dt_free(be, &db);
    free(a);
    free(b);
}

static void test_errors(void **state) {
    (void)state;
    sw_backend *be = g_fix->vk;
    sw_err err = {{0}};
    /* a weight type without a shader: an error naming the op, not a crash */
    dtensor w = dt_make(be, SW_TYPE_Q8_K, 256, 2, 1, 1, 0, NULL);
    dtensor x = dt_make(be, SW_TYPE_F32, 256, 1, 1, 1, 0, NULL);
    dtensor o = dt_make(be, SW_TYPE_F32, 2, 1, 1, 1, 0, NULL);
    assert_int_equal(sw_be_matmul(be, &w.t, &x.t, NULL, &o.t, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "matmul"));
    dtensor ids = dt_make(be, SW_TYPE_I32, 1, 1, 1, 1, 0, (int32_t[]){0});
    dtensor row = dt_make(be, SW_TYPE_F32, 256, 1, 1, 1, 0, NULL);
    assert_int_equal(be->ops->get_rows(be, &w.t, &ids.t, &row.t, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "get_rows"));
    /* the backend still works afterwards, in and out of a step */
    ok(sw_be_begin(be, &err), &err);
    assert_int_equal(be->ops->matmul(be, &w.t, &x.t, NULL, &o.t, &err), SW_E_UNSUPPORTED);
    ok(sw_be_end(be, &err), &err);
    /* an out-of-range id gives zeros rather than reading outside the table */
    float *f = frand_n(256 * 2), got[256];
    dtensor tab = dt_make(be, SW_TYPE_F32, 256, 2, 1, 1, 0, f);
    dtensor bad = dt_make(be, SW_TYPE_I32, 1, 1, 1, 1, 0, (int32_t[]){7});
    ok(sw_be_get_rows(be, &tab.t, &bad.t, &row.t, &err), &err);
    dt_read(be, &row.t, got);
    for (int i = 0; i < 256; i++) assert_true(got[i] == 0.0f);
    free(f);
    dt_free(be, &w);
    dt_free(be, &x);
    dt_free(be, &o);
    dt_free(be, &ids);
    dt_free(be, &row);
    dt_free(be, &tab);
    dt_free(be, &bad);
    /* a tensor reaching past the end of its buffer */
    dtensor small = dt_make(be, SW_TYPE_F32, 8, 1, 1, 1, 0, NULL); /* 32 + 64 bytes */
    sw_tensor over = sw_tensor_make(small.buf, 64, SW_TYPE_F32, 16, 1, 1, 1);
    assert_int_equal(sw_be_add(be, &over, &over, &over, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "add"));
    dt_free(be, &small);
    /* a device index that does not exist */
    sw_backend *none = NULL;
    assert_int_equal(sw_backend_vulkan_create(999, &none, &err), SW_E_NOT_FOUND);
    assert_null(none);
}

static void test_profile(void **state) {
    (void)state;
    /* SW_VK_PROFILE=1 prints per-op times at end(); it must not change results */
    setenv("SW_VK_PROFILE", "1", 1);
    sw_backend *be = NULL;
    sw_err err = {{0}};
    sw_status st = sw_backend_vulkan_create(-1, &be, &err);
    unsetenv("SW_VK_PROFILE");
    ok(st, &err);
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
    dtensor da = dt_make(be, SW_TYPE_F32, 8, 1, 1, 1, 0, a);
    ok(sw_be_begin(be, &err), &err);
    ok(sw_be_add(be, &da.t, &da.t, &da.t, &err), &err);
    ok(sw_be_swiglu(be, &da.t, &da.t, &da.t, &err), &err);
    ok(sw_be_end(be, &err), &err);
    dt_read(be, &da.t, got);
    for (int i = 0; i < 8; i++) {
        float y = 2 * a[i];
        assert_true(fabsf(got[i] - y / (1 + expf(-y)) * y) <= 1e-5f * y * y);
    }
    dt_free(be, &da);
    sw_backend_free(be);
}

static int setup(void **state) {
    (void)state;
    return 0;
}

int main(void) {
    g_fix = calloc(1, sizeof *g_fix);
    g_fix->vk = make_vk("0", "0", "0");
    if (!g_fix->vk) {
        printf("SKIP: no usable Vulkan device\n");
        free(g_fix);
        return 77;
    }
    g_fix->vk_nosg = make_vk("1", "1", "0");
    g_fix->vk_plain = make_vk("0", "0", "1");
    g_fix->vk_plain_nosg = make_vk("1", "1", "1");
    sw_err err = {{0}};
    if (!g_fix->vk_nosg || !g_fix->vk_plain || !g_fix->vk_plain_nosg ||
        sw_backend_cpu_create(1, &g_fix->cpu, &err) != SW_OK) {
        printf("cannot create the other vulkan backends or the cpu backend: %s\n", err.msg);
        return 1;
    }
    g_fix->device_fast = sw_vk_preferred_device_fast();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_roundtrip, setup),
        cmocka_unit_test(test_mem_info),
        cmocka_unit_test(test_get_rows),
        cmocka_unit_test(test_fast_path_enabled),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_matmul_nosg),
        cmocka_unit_test(test_matmul_plain),
        cmocka_unit_test(test_matmul_plain_reduction),
        cmocka_unit_test(test_matmul_misaligned),
        cmocka_unit_test(test_coop_check),
        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_swiglu_add),
        cmocka_unit_test(test_split_bindings),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_kv_write),
        cmocka_unit_test(test_fused_ops),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_profile),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sw_backend_free(g_fix->vk);
    sw_backend_free(g_fix->vk_nosg);
    sw_backend_free(g_fix->vk_plain);
    sw_backend_free(g_fix->vk_plain_nosg);
    sw_backend_free(g_fix->cpu);
    free(g_fix);
    return rc;
}

#else /* !SW_HAVE_VULKAN */

int main(void) {
    printf("SKIP: built without Vulkan (configure with -DSW_VULKAN=ON)\n");
    return 77;
}

#endif
