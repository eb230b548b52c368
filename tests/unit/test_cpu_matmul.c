/* test_cpu_matmul.c — the CPU backend's matmul for every weight type, against
 * "dequantize-then-f64 math": weights dequantized with sw_dequantize_row (the
 * reference dequantizer) and dot products in double, for K = 256, 512, 4096,
 * odd N (7, 33: partial row chunks), T = 1, 3, 8, 17 (partial column tiles),
 * 1 and 2 threads, on every kernel set the host has (scalar, AVX2, AVX-VNNI,
 * AVX-512 VNNI; the others are named with the reason they are skipped).
 *
 * Two checks per output, both normalised by M = sum_k |w_k x_k|:
 *  1. exact-arithmetic check: the reference takes the same 8-bit activations
 *     the kernels use (re-derived here: per block d = amax/127, q = rint(x/d))
 *     so the integer products must agree and only float rounding remains. A
 *     kernel sums nb block terms (nb = K/32 or K/256) in float after exact
 *     integer block sums; we allow 64 * 2^-24 * M (K-quants: where d*sum and
 *     dmin*sum may cancel, the same bound is applied to the uncancelled
 *     magnitude, which for random data is within 4x of M, so we allow 4x).
 *     For float weights the error is float summation over K terms: we allow
 *     (K/8 + 64) * 2^-24 * M, about 2e-5 * M at K = 4096 (Higham's bound for
 *     blocked summation is below that). A wrong nibble order, scale index or
 *     high-bit position moves outputs by O(M / sqrt(K)) >= 1.5e-2 M: it fails.
 *  2. activation-quantization bound against the unquantized x: each x_k moves
 *     by at most amax_b / 254 (half a step of its block), so
 *     |err| <= sum_b (amax_b / 254) sum_{k in b} |w_k| (+ the check-1 term). */
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
#include "cpu_internal.h"

static sw_test_rng rng = {0}; /* shared LCG: tests/unit/support/sw_test.c */
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

typedef sw_test_cpu_grid fixture;

static int setup(void **state) {
    *state = sw_test_cpu_grid_create();
    return 0;
}

static int teardown(void **state) {
    sw_test_cpu_grid_free(*state);
    return 0;
}

/* The activation quantization the kernels use, re-derived: returns the
 * dequantized value of x[k] and the block's amax. */
static void quantize_ref(const float *x, int64_t K, int64_t blk, double *xq, double *amax_out) {
    for (int64_t b = 0; b < K / blk; b++) {
        float amax = 0;
        for (int64_t j = 0; j < blk; j++)
            amax = fmaxf(amax, fabsf(x[b * blk + j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        for (int64_t j = 0; j < blk; j++) {
            float q = nearbyintf(x[b * blk + j] * id);
            xq[b * blk + j] = (double)d * (double)q;
        }
        amax_out[b] = amax;
    }
}

static int64_t act_block(sw_type t) {
    switch (t) {
    case SW_TYPE_F32:
    case SW_TYPE_F16:
    case SW_TYPE_BF16:
        return 0;
    case SW_TYPE_Q2_K:
    case SW_TYPE_Q3_K:
    case SW_TYPE_Q4_K:
    case SW_TYPE_Q5_K:
    case SW_TYPE_Q6_K:
        return 256;
    default:
        return 32;
    }
}

typedef struct {
    double worst1, worst2; /* largest err / allowed seen */
} stats;

static void run_case(fixture *f, sw_type type, int64_t K, int64_t N, int64_t T, bool with_bias,
                     stats *st) {
    sw_err err = {{0}};
    size_t row = sw_row_size(type, K);
    assert_true(row > 0);
    float *wf = malloc(sizeof(float) * (size_t)(K * N));
    float *x = malloc(sizeof(float) * (size_t)(K * T));
    float *bias = malloc(sizeof(float) * (size_t)N);
    uint8_t *wq = malloc(row * (size_t)N);
    float *wd = malloc(sizeof(float) * (size_t)(K * N));
    double *xq = malloc(sizeof(double) * (size_t)(K * T));
    double *amax = malloc(sizeof(double) * (size_t)(K * T));
    float *out = malloc(sizeof(float) * (size_t)(N * T));

    for (int64_t n = 0; n < N; n++) {
        float rs = (float)(0.02 + urand()); /* per-row scale */
        for (int64_t k = 0; k < K; k++)
            wf[n * K + k] = nrand() * rs;
        if (n % 5 == 1) /* an all-zero block: d = 0 paths */
            for (int64_t k = 0; k < SW_MIN(K, 256); k++)
                wf[n * K + k] = 0.0f;
        bias[n] = nrand();
    }
    for (int64_t i = 0; i < K * T; i++)
        x[i] = nrand() * (urand() < 0.01 ? 20.0f : 1.0f);
    for (int64_t n = 0; n < N; n++) {
        if (sw_quantize_row(type, wf + n * K, wq + (size_t)n * row, K, &err) != SW_OK)
            fail_msg("quantize %s: %s", sw_type_name(type), err.msg);
        if (sw_dequantize_row(type, wq + (size_t)n * row, wd + n * K, K, &err) != SW_OK)
            fail_msg("dequantize %s: %s", sw_type_name(type), err.msg);
    }
    int64_t blk = act_block(type);
    for (int64_t t = 0; t < T; t++) {
        if (blk)
            quantize_ref(x + t * K, K, blk, xq + t * K, amax + t * (K / blk));
        else
            for (int64_t k = 0; k < K; k++)
                xq[t * K + k] = x[t * K + k];
    }
    /* float types: (K/8 + 64) u; quantized: 64 u per check-1 (see header) */
    const double u = 0x1p-24;
    double tol1 = blk == 0 ? ((double)K / 8 + 64) * u : 64 * u;
    if (blk == 256) tol1 *= 4;

    for (int isa = 0; isa < SW_CPU_ISA_COUNT; isa++) {
        if (!f->be[isa][0]) continue;
        for (int th = 0; th < 2; th++) {
            sw_backend *be = f->be[isa][th];
            sw_buffer *bw = NULL, *bx = NULL, *bo = NULL, *bb = NULL;
            assert_int_equal(sw_be_buf_alloc(be, row * (size_t)N, SW_BUF_WEIGHTS, &bw, &err),
                             SW_OK);
            assert_int_equal(
                sw_be_buf_alloc(be, sizeof(float) * (size_t)(K * T), SW_BUF_COMPUTE, &bx, &err),
                SW_OK);
            assert_int_equal(
                sw_be_buf_alloc(be, sizeof(float) * (size_t)(N * T), SW_BUF_COMPUTE, &bo, &err),
                SW_OK);
            assert_int_equal(
                sw_be_buf_alloc(be, sizeof(float) * (size_t)N, SW_BUF_COMPUTE, &bb, &err), SW_OK);
            sw_tensor tw = sw_tensor_make(bw, 0, type, K, N, 1, 1);
            sw_tensor tx = sw_tensor_make(bx, 0, SW_TYPE_F32, K, T, 1, 1);
            sw_tensor to = sw_tensor_make(bo, 0, SW_TYPE_F32, N, T, 1, 1);
            sw_tensor tb = sw_tensor_make(bb, 0, SW_TYPE_F32, N, 1, 1, 1);
            assert_int_equal(sw_be_upload_weight(be, &tw, wq, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bx, 0, x, sizeof(float) * (size_t)(K * T), &err),
                             SW_OK);
            assert_int_equal(sw_be_upload(be, bb, 0, bias, sizeof(float) * (size_t)N, &err), SW_OK);
            sw_status s = sw_be_matmul(be, &tw, &tx, with_bias ? &tb : NULL, &to, &err);
            if (s != SW_OK) fail_msg("matmul %s: %s", sw_type_name(type), err.msg);
            assert_int_equal(sw_be_download(be, bo, 0, out, sizeof(float) * (size_t)(N * T), &err),
                             SW_OK);

            for (int64_t t = 0; t < T; t++)
                for (int64_t n = 0; n < N; n++) {
                    const float *wr = wd + n * K, *xr = x + t * K;
                    const double *xqr = xq + t * K;
                    double ref_q = 0, ref_x = 0, M = 0, qbound = 0;
                    for (int64_t k = 0; k < K; k++) {
                        ref_q += (double)wr[k] * xqr[k];
                        ref_x += (double)wr[k] * xr[k];
                        M += fabs((double)wr[k] * xqr[k]);
                    }
                    if (blk)
                        for (int64_t b = 0; b < K / blk; b++) {
                            double sw = 0;
                            for (int64_t j = 0; j < blk; j++)
                                sw += fabs((double)wr[b * blk + j]);
                            qbound += amax[t * (K / blk) + b] / 254.0 * sw * (1 + 1e-6);
                        }
                    double b0 = with_bias ? bias[n] : 0.0;
                    double got = (double)out[t * N + n] - b0;
                    double a1 = tol1 * M + 1e-30 + (with_bias ? u * fabs(b0) * 2 : 0);
                    double e1 = fabs(got - ref_q);
                    double a2 = qbound + a1, e2 = fabs(got - ref_x);
                    if (e1 / a1 > st->worst1) st->worst1 = e1 / a1;
                    if (e2 / a2 > st->worst2) st->worst2 = e2 / a2;
                    if (e1 > a1 || e2 > a2)
                        fail_msg("matmul %s K=%lld N=%lld T=%lld %s threads=%d: out[%lld][%lld] = "
                                 "%.9g, ref %.9g (same-x8 ref), %.9g (f32 x); err %.3g > %.3g or "
                                 "%.3g > %.3g",
                                 sw_type_name(type), (long long)K, (long long)N, (long long)T,
                                 sw_cpu_isa_name((sw_cpu_isa)isa), th + 1, (long long)t, (long long)n, got,
                                 ref_q, ref_x, e1, a1, e2, a2);
                }
            sw_be_buf_free(be, bw);
            sw_be_buf_free(be, bx);
            sw_be_buf_free(be, bo);
            sw_be_buf_free(be, bb);
        }
    }
    free(wf);
    free(x);
    free(bias);
    free(wq);
    free(wd);
    free(xq);
    free(amax);
    free(out);
}

static void test_type(void **state, sw_type type) {
    fixture *f = *state;
    rng.s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)type;
    static const int64_t Ks[] = {256, 512, 4096};
    static const int64_t Ns[] = {7, 33};
    static const int64_t Ts[] = {1, 3, 8, 17};
    stats st = {0, 0};
    int i = 0;
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 2; b++)
            for (size_t c = 0; c < 4; c++, i++)
                run_case(f, type, Ks[a], Ns[b], Ts[c], i % 3 == 0, &st);
    print_message("%-5s worst err/allowed: same-x8 ref %.3f, f32-x ref %.3f\n", sw_type_name(type),
                  st.worst1, st.worst2);
}

#define TYPE_TEST(t, T)                                                                            \
    static void test_matmul_##t(void **state) {                                                    \
        test_type(state, T);                                                                       \
    }
TYPE_TEST(f32, SW_TYPE_F32)
TYPE_TEST(f16, SW_TYPE_F16)
TYPE_TEST(bf16, SW_TYPE_BF16)
TYPE_TEST(q4_0, SW_TYPE_Q4_0)
TYPE_TEST(q4_1, SW_TYPE_Q4_1)
TYPE_TEST(q5_0, SW_TYPE_Q5_0)
TYPE_TEST(q5_1, SW_TYPE_Q5_1)
TYPE_TEST(q8_0, SW_TYPE_Q8_0)
TYPE_TEST(q2_K, SW_TYPE_Q2_K)
TYPE_TEST(q3_K, SW_TYPE_Q3_K)
TYPE_TEST(q4_K, SW_TYPE_Q4_K)
TYPE_TEST(q5_K, SW_TYPE_Q5_K)
TYPE_TEST(q6_K, SW_TYPE_Q6_K)

/* Strided x and out (column views of wider rows), as the forward pass makes
 * with fused projections. */
static void test_matmul_strided(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t K = 256, N = 9, T = 5, XW = 300, OW = 20;
    sw_backend *be = f->be[f->best][1];
    rng.s = 77;
    float *wf = malloc(sizeof(float) * K * N), *xw = malloc(sizeof(float) * XW * T);
    float *ow = malloc(sizeof(float) * OW * T);
    for (int64_t i = 0; i < K * N; i++)
        wf[i] = nrand();
    for (int64_t i = 0; i < XW * T; i++)
        xw[i] = nrand();
    sw_buffer *bw, *bx, *bo;
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * K * N, SW_BUF_WEIGHTS, &bw, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * XW * T, SW_BUF_COMPUTE, &bx, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * OW * T, SW_BUF_COMPUTE, &bo, &err), SW_OK);
    assert_int_equal(sw_be_upload(be, bw, 0, wf, sizeof(float) * K * N, &err), SW_OK);
    assert_int_equal(sw_be_upload(be, bx, 0, xw, sizeof(float) * XW * T, &err), SW_OK);
    memset(ow, 0, sizeof(float) * OW * T);
    assert_int_equal(sw_be_upload(be, bo, 0, ow, sizeof(float) * OW * T, &err), SW_OK);
    sw_tensor tw = sw_tensor_make(bw, 0, SW_TYPE_F32, K, N, 1, 1);
    sw_tensor xfull = sw_tensor_make(bx, 0, SW_TYPE_F32, XW, T, 1, 1);
    sw_tensor ofull = sw_tensor_make(bo, 0, SW_TYPE_F32, OW, T, 1, 1);
    sw_tensor tx = sw_tensor_cols(&xfull, 13, K), to = sw_tensor_cols(&ofull, 4, N);
    assert_int_equal(sw_be_matmul(be, &tw, &tx, NULL, &to, &err), SW_OK);
    assert_int_equal(sw_be_download(be, bo, 0, ow, sizeof(float) * OW * T, &err), SW_OK);
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < OW; c++) {
            if (c < 4 || c >= 4 + N) {
                assert_true(ow[t * OW + c] == 0.0f); /* outside the view: untouched */
                continue;
            }
            double ref = 0, M = 0;
            for (int64_t k = 0; k < K; k++) {
                ref += (double)wf[(c - 4) * K + k] * xw[t * XW + 13 + k];
                M += fabs((double)wf[(c - 4) * K + k] * xw[t * XW + 13 + k]);
            }
            assert_true(fabs(ow[t * OW + c] - ref) <= ((double)K / 8 + 64) * 0x1p-24 * M);
        }
    sw_be_buf_free(be, bw);
    sw_be_buf_free(be, bx);
    sw_be_buf_free(be, bo);
    free(wf);
    free(xw);
    free(ow);
}

/* Every kernel set's activation quantizers must produce the scalar ones'
 * bytes exactly (the matmul results of the paths depend on it), also for
 * zeros, ties, huge values, infinities and NaN; n covers a partial group of
 * 16 blocks (the AVX-512 q8 quantizer's). */
static void test_quantize_paths(void **state) {
    fixture *f = *state;
    rng.s = 4242;
    const int64_t n = 256 * 6 + 128;
    float *x = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++)
        x[i] = nrand() * (i % 97 == 0 ? 1000.0f : 1.0f);
    for (int64_t i = 256; i < 288; i++)
        x[i] = 0.0f; /* all-zero block */
    for (int64_t i = 288; i < 320; i++)
        x[i] = (float)(i - 304) * 0.5f; /* ties at x.5 */
    x[300] = 127.0f;
    x[600] = INFINITY;
    x[900] = NAN;
    x[1200] = -1e30f;
    x[1300] = NAN; /* a NaN as the second half of a 32-block's first 16 */
    x[1290] = -NAN;
    sw_cpu_q8 *a = calloc((size_t)n / 32, sizeof *a), *b = calloc((size_t)n / 32, sizeof *b);
    sw_block_q8_K *ka = calloc((size_t)n / 256, sizeof *ka),
                  *kb = calloc((size_t)n / 256, sizeof *kb);
    sw_cpu_quantize_q8(x, a, n);
    sw_cpu_quantize_q8_K(x, ka, n);
    for (int64_t i = 0; i < n / 32; i++) {
        int32_t sum = 0;
        for (int j = 0; j < 32; j++)
            sum += a[i].qs[j];
        assert_int_equal(a[i].sum, sum);
    }
    for (int isa = SW_CPU_ISA_AVX2; isa < SW_CPU_ISA_COUNT; isa++) {
        if (!f->be[isa][0]) continue;
        const sw_cpu_kernels *k = sw_cpu_kernels_get((sw_cpu_isa)isa);
        memset(b, 0, sizeof *b * (size_t)(n / 32));
        memset(kb, 0, sizeof *kb * (size_t)(n / 256));
        k->quantize_q8(x, b, n);
        k->quantize_q8_K(x, kb, n / 256 * 256);
        for (int64_t i = 0; i < n / 32; i++) {
            if (memcmp(a[i].qs, b[i].qs, 32) != 0)
                fail_msg("%s q8 block %lld: quants differ", sw_cpu_isa_name((sw_cpu_isa)isa),
                         (long long)i);
            /* d, s: equal or both NaN (the inf/NaN blocks) */
            assert_true(a[i].d == b[i].d || (isnan(a[i].d) && isnan(b[i].d)));
            assert_true(a[i].s == b[i].s || (isnan(a[i].s) && isnan(b[i].s)));
            assert_int_equal(a[i].sum, b[i].sum);
        }
        for (int64_t i = 0; i < n / 256; i++) {
            if (memcmp(ka[i].qs, kb[i].qs, 256) != 0 || memcmp(ka[i].bsums, kb[i].bsums, 32) != 0)
                fail_msg("%s q8_K block %lld: quants or bsums differ",
                         sw_cpu_isa_name((sw_cpu_isa)isa), (long long)i);
            assert_true(ka[i].d == kb[i].d || (isnan(ka[i].d) && isnan(kb[i].d)));
        }
    }
    /* the tie block (elements 288..319 = -8.0, -7.5, ... 7.5, with x[300] = 127):
     * amax 127 gives d = id = 1 exactly, so the x.5 values round to even */
    assert_int_equal(a[9].qs[300 - 288], 127);
    assert_int_equal(a[9].qs[1], -8); /* -7.5 */
    assert_int_equal(a[9].qs[3], -6); /* -6.5 */
    assert_int_equal(a[9].qs[5], -6); /* -5.5 */
    assert_int_equal(a[9].qs[31], 8); /* 7.5 */
    free(x);
    free(a);
    free(b);
    free(ka);
    free(kb);
}

/* SW_CPU_ISA picks the kernel set of a new backend; one the host lacks, or a
 * name that is none, is a clear error, never a silent fallback. */
static void test_isa_selection(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    sw_backend *be = NULL;
    for (int isa = 0; isa < SW_CPU_ISA_COUNT; isa++) {
        setenv("SW_CPU_ISA", sw_cpu_isa_name((sw_cpu_isa)isa), 1);
        sw_status st = sw_backend_cpu_create(1, &be, &err);
        if (f->be[isa][0]) {
            assert_int_equal(st, SW_OK);
            assert_int_equal(sw_backend_cpu_isa(be), isa);
            sw_backend_free(be);
        } else {
            assert_int_equal(st, SW_E_UNSUPPORTED);
            assert_null(be);
            assert_non_null(strstr(err.msg, f->why[isa]));
            print_message("SW_CPU_ISA=%s: %s\n", sw_cpu_isa_name((sw_cpu_isa)isa), err.msg);
        }
    }
    setenv("SW_CPU_ISA", "avx9000", 1);
    assert_int_equal(sw_backend_cpu_create(1, &be, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "avx9000"));
    setenv("SW_CPU_ISA", "auto", 1);
    assert_int_equal(sw_backend_cpu_create(1, &be, &err), SW_OK);
    assert_int_equal(sw_backend_cpu_isa(be), f->best);
    sw_backend_free(be);
    unsetenv("SW_CPU_ISA");
    setenv("SW_CPU_NO_SIMD", "1", 1); /* the older spelling of scalar */
    assert_int_equal(sw_backend_cpu_create(1, &be, &err), SW_OK);
    assert_int_equal(sw_backend_cpu_isa(be), SW_CPU_ISA_SCALAR);
    sw_backend_free(be);
    unsetenv("SW_CPU_NO_SIMD");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_f32),     cmocka_unit_test(test_matmul_f16),
        cmocka_unit_test(test_matmul_bf16),    cmocka_unit_test(test_matmul_q4_0),
        cmocka_unit_test(test_matmul_q4_1),    cmocka_unit_test(test_matmul_q5_0),
        cmocka_unit_test(test_matmul_q5_1),    cmocka_unit_test(test_matmul_q8_0),
        cmocka_unit_test(test_matmul_q2_K),    cmocka_unit_test(test_matmul_q3_K),
        cmocka_unit_test(test_matmul_q4_K),    cmocka_unit_test(test_matmul_q5_K),
        cmocka_unit_test(test_matmul_q6_K),    cmocka_unit_test(test_matmul_strided),
        cmocka_unit_test(test_quantize_paths),  cmocka_unit_test(test_isa_selection),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
