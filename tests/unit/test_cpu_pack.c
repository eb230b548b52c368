/* test_cpu_pack.c — the CPU backend's packed weight layout (cpu_pack.c):
 * a weight uploaded with sw_be_upload_weight (packed, on the AVX2 backend)
 * must give the same matmul results as the same bytes uploaded with
 * sw_be_upload (plain rows), and get_rows must read the same rows from it.
 *
 * Both paths quantize the activations identically and form exact integer block
 * sums; only the float summation order differs (8-lane accumulators vs row
 * dot products), so outputs agree to a few ulps of M = sum |w x|: we allow
 * 2 * (K / 8 + 64) * 2^-24 * M. Any layout error (wrong lane, block, scale or
 * nibble half) moves outputs by O(M / sqrt(K)) and fails.
 * Shapes: N with and without a plain tail (N % 8), T = 1..9 (partial column
 * tiles), row views starting at multiples of 8, 1 and 2 threads; and a plain
 * upload over a packed range must turn it back into plain rows. */
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

static sw_test_rng rng = {12345}; /* shared LCG: tests/unit/support/sw_test.c */
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

typedef struct {
    sw_backend *be[2]; /* AVX2 backends, 1 and 2 threads; NULL without AVX2 */
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    sw_err err = {{0}};
    unsetenv("SW_CPU_NO_SIMD");
    for (int th = 1; th <= 2; th++)
        if (sw_backend_cpu_create(th, &f->be[th - 1], &err) != SW_OK) fail_msg("%s", err.msg);
    if (!sw_backend_cpu_uses_simd(f->be[0])) {
        print_message("note: no AVX2 on this CPU: nothing is packed, nothing to test\n");
        for (int i = 0; i < 2; i++) {
            sw_backend_free(f->be[i]);
            f->be[i] = NULL;
        }
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 2; i++)
        sw_backend_free(f->be[i]);
    free(f);
    return 0;
}

/* out = w[rows r0 .. r0+n) x for the weight at bw (K x Nall), T columns. */
static void matmul(sw_backend *be, sw_buffer *bw, sw_type type, int64_t K, int64_t r0, int64_t n,
                   const float *x, int64_t T, const float *bias, float *out) {
    sw_err err = {{0}};
    sw_buffer *bx, *bo, *bb;
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * K * T, SW_BUF_COMPUTE, &bx, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * n * T, SW_BUF_COMPUTE, &bo, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * n, SW_BUF_COMPUTE, &bb, &err), SW_OK);
    assert_int_equal(sw_be_upload(be, bx, 0, x, sizeof(float) * K * T, &err), SW_OK);
    if (bias) assert_int_equal(sw_be_upload(be, bb, 0, bias, sizeof(float) * n, &err), SW_OK);
    sw_tensor whole = sw_tensor_make(bw, 0, type, K, r0 + n, 1, 1);
    sw_tensor tw = sw_tensor_rows(&whole, r0, n);
    sw_tensor tx = sw_tensor_make(bx, 0, SW_TYPE_F32, K, T, 1, 1);
    sw_tensor to = sw_tensor_make(bo, 0, SW_TYPE_F32, n, T, 1, 1);
    sw_tensor tb = sw_tensor_make(bb, 0, SW_TYPE_F32, n, 1, 1, 1);
    if (sw_be_matmul(be, &tw, &tx, bias ? &tb : NULL, &to, &err) != SW_OK)
        fail_msg("matmul: %s", err.msg);
    assert_int_equal(sw_be_download(be, bo, 0, out, sizeof(float) * n * T, &err), SW_OK);
    sw_be_buf_free(be, bx);
    sw_be_buf_free(be, bo);
    sw_be_buf_free(be, bb);
}

static void check_type(sw_backend *be, sw_type type, int64_t K, int64_t N, int64_t T, int64_t r0) {
    sw_err err = {{0}};
    size_t row = sw_row_size(type, K), nbytes = row * (size_t)N;
    float *wf = malloc(sizeof(float) * K * N), *x = malloc(sizeof(float) * K * T);
    float *bias = malloc(sizeof(float) * N), *wd = malloc(sizeof(float) * K * N);
    uint8_t *wq = malloc(nbytes);
    for (int64_t i = 0; i < K * N; i++)
        wf[i] = nrand();
    for (int64_t i = 0; i < K * T; i++)
        x[i] = nrand();
    for (int64_t i = 0; i < N; i++)
        bias[i] = nrand();
    for (int64_t r = 0; r < N; r++) {
        assert_int_equal(sw_quantize_row(type, wf + r * K, wq + r * row, K, &err), SW_OK);
        assert_int_equal(sw_dequantize_row(type, wq + r * row, wd + r * K, K, &err), SW_OK);
    }
    sw_buffer *bp, *bq; /* packed, plain */
    assert_int_equal(sw_be_buf_alloc(be, nbytes, SW_BUF_WEIGHTS, &bp, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, nbytes, SW_BUF_WEIGHTS, &bq, &err), SW_OK);
    sw_tensor tp = sw_tensor_make(bp, 0, type, K, N, 1, 1);
    assert_int_equal(sw_be_upload_weight(be, &tp, wq, &err), SW_OK);
    assert_int_equal(sw_be_upload(be, bq, 0, wq, nbytes, &err), SW_OK);

    int64_t n = N - r0;
    float *op = malloc(sizeof(float) * n * T), *oq = malloc(sizeof(float) * n * T);
    const float *bv = T % 2 ? bias : NULL;
    matmul(be, bp, type, K, r0, n, x, T, bv, op);
    matmul(be, bq, type, K, r0, n, x, T, bv, oq);
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < n; r++) {
            double M = bv ? fabs(bv[r]) : 0;
            for (int64_t k = 0; k < K; k++)
                M += fabs((double)wd[(r0 + r) * K + k] * x[t * K + k]);
            double tol = 2 * ((double)K / 8 + 64) * 0x1p-24 * M + 1e-30;
            double e = fabs((double)op[t * n + r] - oq[t * n + r]);
            if (e > tol)
                fail_msg("%s K=%lld N=%lld T=%lld r0=%lld: out[%lld][%lld] packed %.9g, plain %.9g "
                         "(err %.3g > %.3g)",
                         sw_type_name((uint32_t)type), (long long)K, (long long)N, (long long)T,
                         (long long)r0, (long long)t, (long long)r, op[t * n + r], oq[t * n + r],
                         e, tol);
        }

    /* get_rows reads the packed rows back exactly */
    int32_t ids[5] = {0, (int32_t)N - 1, 3 % (int32_t)N, (int32_t)(N / 2), 7 % (int32_t)N};
    sw_buffer *bi, *bo;
    assert_int_equal(sw_be_buf_alloc(be, sizeof ids, SW_BUF_COMPUTE, &bi, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * K * 5, SW_BUF_COMPUTE, &bo, &err), SW_OK);
    assert_int_equal(sw_be_upload(be, bi, 0, ids, sizeof ids, &err), SW_OK);
    sw_tensor ti = sw_tensor_make(bi, 0, SW_TYPE_I32, 5, 1, 1, 1);
    sw_tensor to = sw_tensor_make(bo, 0, SW_TYPE_F32, K, 5, 1, 1);
    assert_int_equal(sw_be_get_rows(be, &tp, &ti, &to, &err), SW_OK);
    float *g = malloc(sizeof(float) * K * 5);
    assert_int_equal(sw_be_download(be, bo, 0, g, sizeof(float) * K * 5, &err), SW_OK);
    for (int i = 0; i < 5; i++)
        assert_memory_equal(g + (int64_t)i * K, wd + (int64_t)ids[i] * K, sizeof(float) * K);

    /* a plain upload over the packed range makes it plain again */
    assert_int_equal(sw_be_upload(be, bp, 0, wq, nbytes, &err), SW_OK);
    matmul(be, bp, type, K, r0, n, x, T, bv, op);
    assert_memory_equal(op, oq, sizeof(float) * n * T);

    sw_be_buf_free(be, bi);
    sw_be_buf_free(be, bo);
    sw_be_buf_free(be, bp);
    sw_be_buf_free(be, bq);
    free(g);
    free(op);
    free(oq);
    free(wf);
    free(x);
    free(bias);
    free(wd);
    free(wq);
}

static void test_types(void **state, sw_type type) {
    fixture *f = *state;
    if (!f->be[0]) return;
    static const int64_t Ks[] = {64, 96, 512};
    static const int64_t Ns[] = {8, 21, 64};
    static const int64_t Ts[] = {1, 2, 4, 5, 9};
    for (int th = 0; th < 2; th++)
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t c = 0; c < 5; c++)
                    check_type(f->be[th], type, Ks[a], Ns[b], Ts[c], c % 2 && Ns[b] > 8 ? 8 : 0);
}

static void test_pack_f32(void **state) {
    test_types(state, SW_TYPE_F32);
    fixture *f = *state;
    if (f->be[0]) check_type(f->be[1], SW_TYPE_F32, 172, 19, 6, 0); /* K not a multiple of 32 */
}
static void test_pack_q4_0(void **state) {
    test_types(state, SW_TYPE_Q4_0);
}
static void test_pack_q8_0(void **state) {
    test_types(state, SW_TYPE_Q8_0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_f32),
        cmocka_unit_test(test_pack_q4_0),
        cmocka_unit_test(test_pack_q8_0),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
