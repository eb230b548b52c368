/* test_cpu_pack.c — the CPU backend's packed weight layout (cpu_pack.c):
 * on every kernel set that packs (AVX2 and AVX-VNNI: R = 8 rows per group,
 * AVX-512: R = 16) that the host has, a weight uploaded with
 * sw_be_upload_weight (packed) must give the same matmul results as the same
 * bytes uploaded with sw_be_upload (plain rows), and get_rows must read the
 * same rows from it.
 *
 * Both paths quantize the activations identically and form exact integer block
 * sums; only the float summation order differs (8-lane accumulators vs row
 * dot products), so outputs agree to a few ulps of M = sum |w x|: we allow
 * 2 * (K / 8 + 64) * 2^-24 * M. Any layout error (wrong lane, block, scale or
 * nibble half) moves outputs by O(M / sqrt(K)) and fails.
 * The packed outputs are also checked against dequantize-then-f64 math with
 * the kernels' 8-bit activations re-derived here, with test_cpu_matmul's
 * bounds: 64 * 2^-24 * M for the 32-element types, 4x that for the K-quants
 * (d * sum and dmin * sum may cancel), (K / 8 + 64) * 2^-24 * M for F32.
 * Shapes: N with and without a plain tail (N % R), T = 1..9 (partial column
 * tiles; the K-quants and the 32-element types also T = 37, a prefill, and the
 * 32-element types K = 896 and 4864, Qwen2.5-0.5B's), row views starting at
 * multiples of R, 1 and 2 threads; and a plain upload over a packed range must
 * turn it back into plain rows.
 * Exactly: with power-of-two d, dmin and m and integer activations of block
 * maximum 127 (so dx = 1) every float step of both kernels is exact, and
 * packed, plain and the f64 reference must agree bit for bit: the packed
 * kernels form the same integer sums as the plain ones.
 * Round trip: sw_cpu_pack_unpack_row gives back the exact plain bytes of every
 * packed row of every packed type (random bytes, so every scale bit pattern),
 * and the tail rows stay where they were. */
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

static sw_test_rng rng = {12345}; /* shared LCG: tests/unit/support/sw_test.c */
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

typedef sw_test_cpu_grid fixture;

/* The kernel sets that pack, as the loop over them: isa takes each one the
 * host has, R its rows per group. */
static int pack_rows(sw_cpu_isa isa) {
    return isa == SW_CPU_ISA_AVX512 ? 16 : isa == SW_CPU_ISA_SCALAR ? 0 : 8;
}
#define FOR_PACKING_ISA(f, isa)                                                                    \
    for (int isa = SW_CPU_ISA_AVX2; isa < SW_CPU_ISA_COUNT; isa++)                                 \
        if ((f)->be[isa][0])

static int setup(void **state) {
    *state = sw_test_cpu_grid_create();
    return 0;
}

static void weights_free(void);

static int teardown(void **state) {
    sw_test_cpu_grid_free(*state);
    weights_free();
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

/* Elements per activation block of the kernels for weight type t (0: F32 x). */
static int64_t act_block(sw_type t) {
    switch (t) {
    case SW_TYPE_F32: return 0;
    case SW_TYPE_Q4_K:
    case SW_TYPE_Q5_K:
    case SW_TYPE_Q6_K: return 256;
    default: return 32;
    }
}

/* The kernels' activation quantization, re-derived (as test_cpu_matmul):
 * per block d = amax / 127, q = rint(x / d); xq = d q. */
static void quantize_ref(const float *x, int64_t K, int64_t blk, double *xq) {
    if (!blk) {
        for (int64_t k = 0; k < K; k++)
            xq[k] = x[k];
        return;
    }
    for (int64_t b = 0; b < K / blk; b++) {
        float amax = 0;
        for (int64_t j = 0; j < blk; j++)
            amax = fmaxf(amax, fabsf(x[b * blk + j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        for (int64_t j = 0; j < blk; j++)
            xq[b * blk + j] = (double)d * (double)nearbyintf(x[b * blk + j] * id);
    }
}

static double worst_ref; /* largest err / allowed against the f64 reference */

/* Random weights of one (type, K, N): quantized (wq) and dequantized (wd).
 * Quantizing is most of this test's time, so the last set is kept and
 * reused while the callers sweep T, threads and kernel sets over it. */
static struct {
    sw_type type;
    int64_t K, N;
    uint8_t *wq;
    float *wd, *bias;
} wcache;

static void weights_free(void) {
    free(wcache.wq);
    free(wcache.wd);
    free(wcache.bias);
    memset(&wcache, 0, sizeof wcache);
}

static void weights(sw_type type, int64_t K, int64_t N) {
    if (wcache.wq && wcache.type == type && wcache.K == K && wcache.N == N) return;
    weights_free();
    sw_err err = {{0}};
    size_t row = sw_row_size(type, K);
    float *wf = malloc(sizeof(float) * K * N);
    wcache.wq = malloc(row * (size_t)N);
    wcache.wd = malloc(sizeof(float) * K * N);
    wcache.bias = malloc(sizeof(float) * N);
    for (int64_t i = 0; i < K * N; i++)
        wf[i] = nrand();
    for (int64_t i = 0; i < N; i++)
        wcache.bias[i] = nrand();
    for (int64_t r = 0; r < N; r++) {
        assert_int_equal(sw_quantize_row(type, wf + r * K, wcache.wq + r * row, K, &err), SW_OK);
        assert_int_equal(sw_dequantize_row(type, wcache.wq + r * row, wcache.wd + r * K, K, &err),
                         SW_OK);
    }
    free(wf);
    wcache.type = type;
    wcache.K = K;
    wcache.N = N;
}

static void check_type(sw_backend *be, sw_type type, int64_t K, int64_t N, int64_t T, int64_t r0) {
    sw_err err = {{0}};
    size_t row = sw_row_size(type, K), nbytes = row * (size_t)N;
    weights(type, K, N);
    const uint8_t *wq = wcache.wq;
    const float *wd = wcache.wd, *bias = wcache.bias;
    float *x = malloc(sizeof(float) * K * T);
    for (int64_t i = 0; i < K * T; i++)
        x[i] = nrand();
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

    /* packed vs dequantize-then-f64 with the same 8-bit activations */
    int64_t blk = act_block(type);
    double *xq = malloc(sizeof(double) * K * T);
    for (int64_t t = 0; t < T; t++)
        quantize_ref(x + t * K, K, blk, xq + t * K);
    double tol = blk == 0 ? ((double)K / 8 + 64) * 0x1p-24 : 64 * 0x1p-24 * (blk == 256 ? 4 : 1);
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < n; r++) {
            double ref = bv ? bv[r] : 0, M = bv ? fabs(bv[r]) : 0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)wd[(r0 + r) * K + k] * xq[t * K + k];
                ref += p;
                M += fabs(p);
            }
            double e = fabs((double)op[t * n + r] - ref), a = tol * M + 1e-30;
            if (e / a > worst_ref) worst_ref = e / a;
            if (e > a)
                fail_msg("%s K=%lld N=%lld T=%lld r0=%lld: out[%lld][%lld] packed %.9g, f64 ref "
                         "%.9g (err %.3g > %.3g)",
                         sw_type_name((uint32_t)type), (long long)K, (long long)N, (long long)T,
                         (long long)r0, (long long)t, (long long)r, op[t * n + r], ref, e, a);
        }
    free(xq);

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
    free(x);
}

static void test_types(void **state, sw_type type) {
    fixture *f = *state;
    static const int64_t Ks[] = {64, 96, 512};
    static const int64_t Ts[] = {1, 2, 4, 5, 9};
    worst_ref = 0;
    for (size_t a = 0; a < 3; a++)
        for (int nv = 0; nv < 3; nv++)
            FOR_PACKING_ISA(f, isa) {
                int R = pack_rows((sw_cpu_isa)isa);
                const int64_t N = nv == 0 ? 16 : nv == 1 ? 21 : 64; /* 16: R = 8's 2 groups */
                for (int th = 0; th < 2; th++)
                    for (size_t c = 0; c < 5; c++)
                        check_type(f->be[isa][th], type, Ks[a], N, Ts[c], c % 2 && N > R ? R : 0);
            }
}

/* N = one group, one group and a 1-row tail, an R-1-row tail, two groups, 4
 * groups + 3 rows (for R = 8 and 16 both); T = 1 .. the set's column tile + 1
 * (every partial tile) and 37 (a prefill), with 1 thread, and T = 1, 37 with
 * 2; for each K of Ks, a third of them as row views. */
static void test_shapes(void **state, sw_type type, const int64_t *Ks, size_t nK) {
    fixture *f = *state;
    static const int64_t Ns[] = {8, 9, 15, 16, 17, 31, 32, 35, 67};
    worst_ref = 0;
    int i = 0;
    for (size_t a = 0; a < nK; a++)
        for (size_t b = 0; b < sizeof Ns / sizeof Ns[0]; b++)
            FOR_PACKING_ISA(f, isa) {
                int R = pack_rows((sw_cpu_isa)isa);
                int P = sw_cpu_kernels_get((sw_cpu_isa)isa)->pack_cols;
                for (int th = 0; th < 2; th++)
                    for (int64_t T = 1; T <= P + 2; T++, i++) {
                        if (th == 1 && T > 1 && T < P + 2) continue;
                        check_type(f->be[isa][th], type, Ks[a], Ns[b], T == P + 2 ? 37 : T,
                                   i % 3 == 1 && Ns[b] > R ? R : 0);
                    }
            }
    print_message("%-5s worst err/allowed vs f64 reference: %.3f\n", sw_type_name((uint32_t)type),
                  worst_ref);
}

/* K-quants: K a multiple of 256 (2304 = 9 super-blocks). */
static void test_types_k(void **state, sw_type type) {
    static const int64_t Ks[] = {256, 512, 2304};
    test_shapes(state, type, Ks, 3);
}

/* 32-element types: one block, two, and Qwen2.5-0.5B's K = 896 (28 blocks,
 * no multiple of 256) and 4864 (152). */
static void test_types_b32(void **state, sw_type type) {
    static const int64_t Ks[] = {32, 64, 896, 4864};
    test_shapes(state, type, Ks, 4);
}

static void test_pack_f32(void **state) {
    test_types(state, SW_TYPE_F32);
    fixture *f = *state;
    FOR_PACKING_ISA(f, isa) /* K not a multiple of 32 */
        check_type(f->be[isa][1], SW_TYPE_F32, 172, pack_rows((sw_cpu_isa)isa) + 3, 6, 0);
    print_message("f32   worst err/allowed vs f64 reference: %.3f\n", worst_ref);
}
static void test_pack_q4_0(void **state) {
    test_types(state, SW_TYPE_Q4_0);
    print_message("q4_0  worst err/allowed vs f64 reference: %.3f\n", worst_ref);
    test_types_b32(state, SW_TYPE_Q4_0);
}
static void test_pack_q8_0(void **state) {
    test_types(state, SW_TYPE_Q8_0);
    print_message("q8_0  worst err/allowed vs f64 reference: %.3f\n", worst_ref);
    test_types_b32(state, SW_TYPE_Q8_0);
}
/* test_pack_<name>: fn on SW_TYPE_<T> */
#define PACK_TEST(name, T, fn)                                                                     \
    static void test_pack_##name(void **state) { fn(state, SW_TYPE_##T); }
PACK_TEST(q4_1, Q4_1, test_types_b32)
PACK_TEST(q5_0, Q5_0, test_types_b32)
PACK_TEST(q5_1, Q5_1, test_types_b32)
PACK_TEST(q4_K, Q4_K, test_types_k)
PACK_TEST(q5_K, Q5_K, test_types_k)
PACK_TEST(q6_K, Q6_K, test_types_k)

/* ---- exact integer sums ---- */

/* Random blocks with d = 2^-3, dmin = 2^-5, m = -1 (Q5_1: -2) (Q6_K: d =
 * 2^-4): every dequantized weight is an exact multiple of 2^-5 below 2^10.
 * Per type: where its d and its dmin or m (if any: m != 0) are, and their
 * f16 values. */
static const struct {
    sw_type type;
    size_t d, m;
    uint16_t dv, mv;
} k_pow2[] = {
    {SW_TYPE_Q4_0, offsetof(sw_block_q4_0, d), 0, 0x3000 /* 2^-3 */, 0},
    {SW_TYPE_Q4_1, offsetof(sw_block_q4_1, d), offsetof(sw_block_q4_1, m), 0x3000, 0xbc00 /* -1 */},
    {SW_TYPE_Q5_0, offsetof(sw_block_q5_0, d), 0, 0x3000, 0},
    {SW_TYPE_Q5_1, offsetof(sw_block_q5_1, d), offsetof(sw_block_q5_1, m), 0x3000, 0xc000 /* -2 */},
    {SW_TYPE_Q8_0, offsetof(sw_block_q8_0, d), 0, 0x3000, 0},
    {SW_TYPE_Q4_K, offsetof(sw_block_q4_K, d), offsetof(sw_block_q4_K, dmin), 0x3000,
     0x2800 /* 2^-5 */},
    {SW_TYPE_Q5_K, offsetof(sw_block_q5_K, d), offsetof(sw_block_q5_K, dmin), 0x3000, 0x2800},
    {SW_TYPE_Q6_K, offsetof(sw_block_q6_K, d), 0, 0x2c00 /* 2^-4 */, 0},
};

static void random_pow2_blocks(sw_type type, uint8_t *w, size_t nbytes) {
    for (size_t i = 0; i < nbytes; i++)
        w[i] = (uint8_t)(urand() * 256);
    size_t i = 0, n = sizeof k_pow2 / sizeof k_pow2[0];
    while (i < n && k_pow2[i].type != type)
        i++;
    assert_true(i < n);
    size_t bs = sw_type_get((uint32_t)type)->type_size;
    for (size_t b = 0; b < nbytes / bs; b++) {
        memcpy(w + b * bs + k_pow2[i].d, &k_pow2[i].dv, 2);
        if (k_pow2[i].mv) memcpy(w + b * bs + k_pow2[i].m, &k_pow2[i].mv, 2);
    }
}

/* Largest |d sc u| + |dmin m| (Q6_K: |d sc| (63 + 32); the 32-element types
 * |d u| + |m| or d o, o = 8, 16: the code and offset terms) over any weight:
 * bounds every term either kernel forms, per |x|. */
static double term_bound(sw_type type) {
    switch (type) {
    case SW_TYPE_Q4_0: return 0x1p-3 * (15 + 8);
    case SW_TYPE_Q4_1: return 0x1p-3 * 15 + 1;
    case SW_TYPE_Q5_0: return 0x1p-3 * (31 + 16);
    case SW_TYPE_Q5_1: return 0x1p-3 * 31 + 2;
    case SW_TYPE_Q8_0: return 0x1p-3 * 128;
    case SW_TYPE_Q4_K: return 0x1p-3 * 63 * 15 + 0x1p-5 * 63;
    case SW_TYPE_Q5_K: return 0x1p-3 * 63 * 31 + 0x1p-5 * 63;
    default: return 0x1p-4 * 128 * (63 + 32);
    }
}

static void check_exact(sw_backend *be, sw_type type, int64_t K, int64_t N, int64_t T) {
    sw_err err = {{0}};
    size_t row = sw_row_size(type, K), nbytes = row * (size_t)N;
    uint8_t *wq = malloc(nbytes);
    float *wd = malloc(sizeof(float) * K * N), *x = malloc(sizeof(float) * K * T);
    float *op = malloc(sizeof(float) * N * T), *oq = malloc(sizeof(float) * N * T);
    random_pow2_blocks(type, wq, nbytes);
    for (int64_t r = 0; r < N; r++)
        assert_int_equal(sw_dequantize_row(type, wq + r * row, wd + r * K, K, &err), SW_OK);
    /* integers in [-2, 2], one +-127 per activation block: d = 127 / 127 = 1,
     * q = x */
    int64_t blk = act_block(type);
    double sum_abs_x = 0;
    for (int64_t t = 0; t < T; t++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) {
            float v = (float)((int)(urand() * 5) - 2);
            if (k % blk == (t * 37) % blk) v = urand() < 0.5 ? 127.0f : -127.0f;
            x[t * K + k] = v;
            s += fabs(v);
        }
        sum_abs_x = fmax(sum_abs_x, s);
    }
    /* every term is a multiple of 2^-5 (Q6_K: 2^-4) and all of them together
     * stay below 2^24 such units, so no float step can round */
    double unit = type == SW_TYPE_Q6_K ? 0x1p-4 : 0x1p-5;
    assert_true(term_bound(type) * sum_abs_x < 0x1p24 * unit);

    sw_buffer *bp, *bq;
    assert_int_equal(sw_be_buf_alloc(be, nbytes, SW_BUF_WEIGHTS, &bp, &err), SW_OK);
    assert_int_equal(sw_be_buf_alloc(be, nbytes, SW_BUF_WEIGHTS, &bq, &err), SW_OK);
    sw_tensor tp = sw_tensor_make(bp, 0, type, K, N, 1, 1);
    assert_int_equal(sw_be_upload_weight(be, &tp, wq, &err), SW_OK);
    assert_non_null(sw_cpu_pack_find(bp, 0));
    assert_int_equal(sw_be_upload(be, bq, 0, wq, nbytes, &err), SW_OK);
    matmul(be, bp, type, K, 0, N, x, T, NULL, op);
    matmul(be, bq, type, K, 0, N, x, T, NULL, oq);
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < N; r++) {
            double ref = 0;
            for (int64_t k = 0; k < K; k++)
                ref += (double)wd[r * K + k] * x[t * K + k];
            if ((double)op[t * N + r] != ref || (double)oq[t * N + r] != ref)
                fail_msg("%s K=%lld N=%lld T=%lld: out[%lld][%lld] packed %.9g, plain %.9g, exact "
                         "%.9g",
                         sw_type_name((uint32_t)type), (long long)K, (long long)N, (long long)T,
                         (long long)t, (long long)r, op[t * N + r], oq[t * N + r], ref);
        }
    sw_be_buf_free(be, bp);
    sw_be_buf_free(be, bq);
    free(wq);
    free(wd);
    free(x);
    free(op);
    free(oq);
}

static void test_pack_exact(void **state) {
    fixture *f = *state;
    static const sw_type types[] = {SW_TYPE_Q4_0, SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1,
                                    SW_TYPE_Q8_0, SW_TYPE_Q4_K, SW_TYPE_Q5_K, SW_TYPE_Q6_K};
    FOR_PACKING_ISA(f, isa) {
        int R = pack_rows((sw_cpu_isa)isa), P = sw_cpu_kernels_get((sw_cpu_isa)isa)->pack_cols;
        for (int th = 0; th < 2; th++)
            for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
                for (int64_t T = 1; T <= P + 1; T++) {
                    check_exact(f->be[isa][th], types[i], 256, 2 * R + 1, T);
                    check_exact(f->be[isa][th], types[i], 512, 3 * R, T);
                }
    }
}

/* ---- unpack_row round trip ---- */

static void check_roundtrip(sw_backend *be, sw_type type, int64_t K, int64_t N) {
    sw_err err = {{0}};
    size_t row = sw_row_size(type, K), nbytes = row * (size_t)N;
    uint8_t *w = malloc(nbytes), *r1 = malloc(row);
    if (type == SW_TYPE_F32)
        for (int64_t i = 0; i < K * N; i++)
            ((float *)w)[i] = nrand();
    else
        for (size_t i = 0; i < nbytes; i++)
            w[i] = (uint8_t)(urand() * 256); /* any bytes: every scale bit pattern */
    sw_buffer *b;
    assert_int_equal(sw_be_buf_alloc(be, nbytes, SW_BUF_WEIGHTS, &b, &err), SW_OK);
    sw_tensor t = sw_tensor_make(b, 0, type, K, N, 1, 1);
    assert_int_equal(sw_be_upload_weight(be, &t, w, &err), SW_OK);
    const sw_cpu_packed *e = sw_cpu_pack_find(b, 0);
    if (!e)
        fail_msg("%s K=%lld N=%lld: not packed", sw_type_name((uint32_t)type), (long long)K,
                 (long long)N);
    assert_int_equal(e->type, type);
    assert_int_equal(e->size, nbytes);
    assert_int_equal(e->Np, N - N % e->R);
    assert_int_equal(e->R, sw_cpu_kernels_get(sw_backend_cpu_isa(be))->pack_rows);
    const uint8_t *base = (const uint8_t *)b->data + e->off;
    assert_true(memcmp(base, w, (size_t)e->Np * row) != 0); /* really repacked */
    for (int64_t r = 0; r < e->Np; r++) {
        memset(r1, 0xa5, row);
        sw_cpu_pack_unpack_row(e, base, r, r1);
        if (memcmp(r1, w + (size_t)r * row, row) != 0)
            fail_msg("%s K=%lld N=%lld: row %lld does not unpack to its plain bytes",
                     sw_type_name((uint32_t)type), (long long)K, (long long)N, (long long)r);
    }
    assert_memory_equal(base + (size_t)e->Np * row, w + (size_t)e->Np * row,
                        (size_t)(N - e->Np) * row); /* the tail stays plain */
    sw_be_buf_free(be, b);
    free(w);
    free(r1);
}

static void test_pack_unpack_roundtrip(void **state) {
    fixture *f = *state;
    static const sw_type types[] = {SW_TYPE_F32,  SW_TYPE_Q4_0, SW_TYPE_Q4_1,
                                    SW_TYPE_Q5_0, SW_TYPE_Q5_1, SW_TYPE_Q8_0,
                                    SW_TYPE_Q4_K, SW_TYPE_Q5_K, SW_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_true(sw_cpu_pack_type(types[i]));
        int64_t K = act_block(types[i]) == 256 ? 512 : 96;
        FOR_PACKING_ISA(f, isa) {
            int R = pack_rows((sw_cpu_isa)isa);
            check_roundtrip(f->be[isa][0], types[i], K, R);
            check_roundtrip(f->be[isa][0], types[i], K, 2 * R + 5);
            check_roundtrip(f->be[isa][0], types[i], 2 * K, 64);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_f32),
        cmocka_unit_test(test_pack_q4_0),
        cmocka_unit_test(test_pack_q4_1),
        cmocka_unit_test(test_pack_q5_0),
        cmocka_unit_test(test_pack_q5_1),
        cmocka_unit_test(test_pack_q8_0),
        cmocka_unit_test(test_pack_q4_K),
        cmocka_unit_test(test_pack_q5_K),
        cmocka_unit_test(test_pack_q6_K),
        cmocka_unit_test(test_pack_exact),
        cmocka_unit_test(test_pack_unpack_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
