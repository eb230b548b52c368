/* test_quant.c — the reference quant formats (loader/quant.c, quant_k.c):
 *  (a) f16 / bf16 conversions against independent references (GCC's _Float16
 *      and a double-precision nearest-value search);
 *  (b) quantize -> dequantize error bounds derived from each format's step size;
 *  (c) hand-built blocks whose values were worked out by hand from the GGUF
 *      block layouts, plus element-by-element spec readers on random bytes;
 *  (d) error paths, non-finite inputs, alignment and buffer bounds.
 * The cross-check against the gguf Python package is tests/py/test_dequant_gguf.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spillway.h>

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unif(uint64_t *s) {
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static double rng_gauss(uint64_t *s) {
    double u1 = rng_unif(s), u2 = rng_unif(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

/* f16 -> float by GCC's own _Float16 (libgcc soft-float or F16C): the
 * independent reference for our bit-level conversion. */
static float ref_f16_to_f32(uint16_t h) {
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}

static uint16_t ref_f32_to_f16(float f) {
    volatile _Float16 v = (_Float16)f; /* volatile: force the rounding to happen */
    _Float16 w = v;
    uint16_t h;
    memcpy(&h, &w, 2);
    return h;
}

/* ---- (a) f16 ----------------------------------------------------------------------- */

static void test_f16_all_halves(void **state) {
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = sw_f16_to_f32(h);
        const float r = ref_f16_to_f32(h);
        const bool is_nan = ((h & 0x7C00) == 0x7C00) && (h & 0x3FF);
        if (is_nan) {
            if (!isnan(f) || !isnan(r) || signbit(f) != signbit(r))
                fail_msg("half 0x%04x: expected NaN with sign %d, got %a", h, !!signbit(r), f);
            const uint16_t back = sw_f32_to_f16(f);
            if ((back & 0x7C00) != 0x7C00 || !(back & 0x3FF) || (back & 0x8000) != (h & 0x8000))
                fail_msg("half NaN 0x%04x -> f32 -> 0x%04x is not a NaN of the same sign", h, back);
            continue;
        }
        if (f2u(f) != f2u(r))
            fail_msg("half 0x%04x: got %a (0x%08x), _Float16 says %a (0x%08x)", h, f, f2u(f), r,
                     f2u(r));
        const uint16_t back = sw_f32_to_f16(f);
        if (back != h) fail_msg("half 0x%04x -> %a -> 0x%04x, not a round trip", h, f, back);
    }
}

static void check_f32_to_f16(float f) {
    const uint16_t got = sw_f32_to_f16(f), want = ref_f32_to_f16(f);
    if (isnan(f)) {
        if ((got & 0x7C00) != 0x7C00 || !(got & 0x3FF) || !!(got & 0x8000) != !!signbit(f))
            fail_msg("f32 NaN 0x%08x -> 0x%04x, not a NaN of the same sign", f2u(f), got);
        return;
    }
    if (got != want)
        fail_msg("f32 %a (0x%08x) -> f16 0x%04x, _Float16 says 0x%04x", f, f2u(f), got, want);
}

static void test_f32_to_f16_vs_float16(void **state) {
    (void)state;
    /* Every half, the exact midpoint between each pair of neighbours (a tie,
     * representable in f32), and one f32 ulp either side of that midpoint. */
    for (uint32_t i = 0; i < 0x7C00; i++) {
        const float a = ref_f16_to_f32((uint16_t)i), b = ref_f16_to_f32((uint16_t)(i + 1));
        const float mid = (float)(((double)a + (double)b) / 2.0);
        for (int s = 0; s < 2; s++) {
            const float sg = s ? -1.0f : 1.0f;
            check_f32_to_f16(sg * a);
            check_f32_to_f16(sg * mid);
            check_f32_to_f16(sg * nextafterf(mid, 0.0f));
            check_f32_to_f16(sg * nextafterf(mid, INFINITY));
        }
    }
    /* Specials and edges: overflow threshold 65520 (ties to inf), smallest
     * subnormal 2^-24, the 2^-25 tie (to zero), just above it. */
    const float special[] = {0.0f,
                             -0.0f,
                             INFINITY,
                             -INFINITY,
                             NAN,
                             -NAN,
                             u2f(0x7F800001u), /* signalling NaN */
                             u2f(0xFFC12345u),
                             65504.0f,
                             65519.996f,
                             65520.0f,
                             65536.0f,
                             1e10f,
                             FLT_MAX,
                             0x1.0p-24f,
                             0x1.0p-25f,
                             nextafterf(0x1.0p-25f, 1.0f),
                             0x1.8p-25f,
                             0x1.8p-24f,
                             0x1.4p-24f,
                             0x1.0p-14f,
                             nextafterf(0x1.0p-14f, 0.0f),
                             0x1.ffcp-15f,
                             1e-30f,
                             FLT_MIN,
                             0x1.0p-149f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        check_f32_to_f16(special[i]);
        check_f32_to_f16(-special[i]);
    }
    /* Random bit patterns, and random values in and around the half range. */
    uint64_t s = 12345;
    for (int i = 0; i < 2000000; i++)
        check_f32_to_f16(u2f((uint32_t)rng_next(&s)));
    for (int i = 0; i < 1000000; i++)
        check_f32_to_f16((float)ldexp(rng_gauss(&s), (int)(rng_next(&s) % 60) - 40));
}

/* bf16 reference: the nearest of the two bf16 neighbours of x, compared in
 * double (where the differences are exact), ties to the even one; a value
 * beyond the largest finite bf16 compares against 2^128, the step to inf. */
static uint16_t ref_f32_to_bf16(float x) {
    const uint32_t u = f2u(x);
    const uint16_t lo = (uint16_t)(u >> 16); /* truncation toward zero */
    const uint16_t hi = (uint16_t)(lo + 1);  /* next bf16 away from zero */
    const double ax = fabs((double)x);
    const double vlo = fabs((double)u2f((uint32_t)lo << 16));
    const double vhi =
        (hi & 0x7FFF) == 0x7F80 ? ldexp(1.0, 128) : fabs((double)u2f((uint32_t)hi << 16));
    const double dl = ax - vlo, dh = vhi - ax;
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

static void check_bf16(float f) {
    const uint16_t got = sw_f32_to_bf16(f);
    if (isnan(f)) {
        if ((got & 0x7F80) != 0x7F80 || !(got & 0x7F) || !!(got & 0x8000) != !!signbit(f))
            fail_msg("f32 NaN 0x%08x -> bf16 0x%04x, not a NaN of the same sign", f2u(f), got);
        return;
    }
    const uint16_t want = ref_f32_to_bf16(f);
    if (got != want)
        fail_msg("f32 %a (0x%08x) -> bf16 0x%04x, expected 0x%04x", f, f2u(f), got, want);
}

static void test_bf16(void **state) {
    (void)state;
    /* bf16 -> f32 is exact: every bf16 value must survive the round trip */
    for (uint32_t i = 0; i < 65536; i++) {
        const uint16_t h = (uint16_t)i;
        const float f = sw_bf16_to_f32(h);
        if (f2u(f) != (uint32_t)h << 16) fail_msg("bf16 0x%04x -> 0x%08x", h, f2u(f));
        const bool is_nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        const uint16_t back = sw_f32_to_bf16(f);
        if (is_nan ? !((back & 0x7F80) == 0x7F80 && (back & 0x7F)) : back != h)
            fail_msg("bf16 0x%04x -> f32 -> 0x%04x", h, back);
        /* ties between this value and the next, and one ulp either side */
        const uint32_t mid = ((uint32_t)h << 16) | 0x8000u;
        check_bf16(u2f(mid));
        check_bf16(u2f(mid - 1));
        check_bf16(u2f(mid + 1));
    }
    const float special[] = {0.0f,
                             INFINITY,
                             NAN,
                             u2f(0x7F800001u),
                             u2f(0x7F810000u),
                             FLT_MAX,
                             u2f(0x7F7F8000u),
                             u2f(0x7F7F7FFFu),
                             FLT_MIN,
                             0x1.0p-149f,
                             1.0f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        check_bf16(special[i]);
        check_bf16(-special[i]);
    }
    uint64_t s = 777;
    for (int i = 0; i < 2000000; i++)
        check_bf16(u2f((uint32_t)rng_next(&s)));
}

/* ---- (b) round-trip error bounds ------------------------------------------------- */
/*
 * Rounding to the nearest of evenly spaced levels with step D leaves an error
 * uniform on [-D/2, D/2], i.e. a mean square of D^2/12. Each format fixes D for
 * every group of elements that shares a scale, from the group's own data:
 *
 *   Q8_0  groups of 32, D = amax / 127           (levels -127..127)
 *   Q4_0  groups of 32, D = amax / 8             (levels -8..7, amax on -8)
 *   Q5_0  groups of 32, D = amax / 16            (levels -16..15)
 *   Q4_1  groups of 32, D = (max - min) / 15
 *   Q5_1  groups of 32, D = (max - min) / 31
 *   Q2_K  groups of 16, D = (max(hi,0) - min(lo,0)) / 3   (the K-quant min is
 *   Q4_K  groups of 32, D = (max(hi,0) - min(lo,0)) / 15   subtracted and
 *   Q5_K  groups of 32, D = (max(hi,0) - min(lo,0)) / 31   non-negative)
 *   Q3_K  groups of 16, D = amax / 4             (levels -4..3)
 *   Q6_K  groups of 16, D = amax / 32            (levels -32..31)
 *
 * Bound: MSE <= K * mean(D^2/12), K = c * 1.2 * 1.2 where
 *  - c = 1 + 1.5/nmax for the signed formats with one level more on one side
 *    (-nmax..nmax-1): on the short side, a band D/2 wide of the 2*nmax*D range
 *    clamps with error in [D/2, D], mean square 7*D^2/12, so for data spread
 *    evenly the MSE grows by 1 + 6/(4*nmax); c = 1 otherwise;
 *  - 1.2 for the stored scales: the f16 super/block scales (2^-11 relative) and
 *    the K-quants' 4/6/8-bit sub-block scales (relative error 1/(2*sc), about
 *    5% in D, 10% in MSE, for sub-blocks of similar spread as here);
 *  - 1.2 for sampling: over >= 256 elements the relative spread of the mean of
 *    u^2 (u uniform) is 0.89/sqrt(256) = 5.6%, so 20% is > 3 sigma.
 * The largest K (Q3_K) is 1.98 < 4: a quantizer that lost one bit of level
 * resolution (D doubled, MSE x4) fails every bound; test_bound_catches_lost_bit
 * checks that. F16/BF16 are checked per element against their relative
 * precision 2^-11 / 2^-8 and F32 for identity.
 */
typedef struct {
    sw_type type;
    int group; /* elements sharing one step */
    int kind;  /* 0: amax/nmax, 1: (max-min)/nmax, 2: (max(hi,0)-min(lo,0))/nmax */
    int nmax;
    double c; /* asymmetric-level clamp factor */
} bound_spec;

static const bound_spec k_bounds[] = {
    {SW_TYPE_Q8_0, 32, 0, 127, 1.0},
    {SW_TYPE_Q4_0, 32, 0, 8, 1.0 + 1.5 / 8},
    {SW_TYPE_Q5_0, 32, 0, 16, 1.0 + 1.5 / 16},
    {SW_TYPE_Q4_1, 32, 1, 15, 1.0},
    {SW_TYPE_Q5_1, 32, 1, 31, 1.0},
    {SW_TYPE_Q2_K, 16, 2, 3, 1.0},
    {SW_TYPE_Q3_K, 16, 0, 4, 1.0 + 1.5 / 4},
    {SW_TYPE_Q4_K, 32, 2, 15, 1.0},
    {SW_TYPE_Q5_K, 32, 2, 31, 1.0},
    {SW_TYPE_Q6_K, 16, 0, 32, 1.0 + 1.5 / 32},
};

/* mean over the row of D^2/12 */
static double expected_mse(const bound_spec *b, const float *x, int64_t n) {
    double acc = 0;
    for (int64_t g = 0; g < n; g += b->group) {
        double lo = x[g], hi = x[g], amax = 0;
        for (int i = 0; i < b->group; i++) {
            const double v = x[g + i];
            lo = fmin(lo, v);
            hi = fmax(hi, v);
            amax = fmax(amax, fabs(v));
        }
        double range = b->kind == 0 ? amax : b->kind == 1 ? hi - lo : fmax(hi, 0) - fmin(lo, 0);
        const double d = range / b->nmax;
        acc += d * d / 12.0 * b->group;
    }
    return acc / (double)n;
}

static double mse_of(const float *x, const float *y, int64_t n) {
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    return e / (double)n;
}

static void fill(float *x, int64_t n, int dist, uint64_t seed) {
    uint64_t s = seed * 1000003u + (uint64_t)dist;
    for (int64_t i = 0; i < n; i++) {
        switch (dist) {
        case 0:
            x[i] = (float)rng_gauss(&s);
            break; /* N(0,1) */
        case 1:
            x[i] = (float)(2.0 * rng_unif(&s) - 1.0);
            break; /* U(-1,1) */
        default:
            x[i] = (float)(0.02 * (rng_unif(&s) + 0.5));
            break; /* U(0.01,0.03) */
        }
    }
}

static const char *k_dist_name[] = {"gaussian", "uniform(-1,1)", "uniform(0.01,0.03)"};

static void roundtrip(sw_type t, const float *x, float *y, int64_t n) {
    const size_t rs = sw_row_size(t, n);
    assert_true(rs > 0);
    uint8_t *q = malloc(rs);
    assert_non_null(q);
    sw_err err = {{0}};
    assert_int_equal(sw_quantize_row(t, x, q, n, &err), SW_OK);
    assert_int_equal(sw_dequantize_row(t, q, y, n, &err), SW_OK);
    free(q);
}

static void test_roundtrip_bounds(void **state) {
    (void)state;
    const int64_t sizes[] = {256, 512, 4096};
    float *x = malloc(4096 * sizeof *x), *y = malloc(4096 * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t ti = 0; ti < sizeof k_bounds / sizeof k_bounds[0]; ti++) {
        const bound_spec *b = &k_bounds[ti];
        const double K = b->c * 1.2 * 1.2;
        double worst = 0;
        for (int dist = 0; dist < 3; dist++)
            for (uint64_t seed = 1; seed <= 4; seed++)
                for (size_t si = 0; si < 3; si++) {
                    const int64_t n = sizes[si];
                    fill(x, n, dist, seed);
                    roundtrip(b->type, x, y, n);
                    const double mse = mse_of(x, y, n), want = expected_mse(b, x, n);
                    worst = fmax(worst, mse / want);
                    if (!(mse <= K * want))
                        fail_msg("%s %s seed %llu n=%lld: MSE %.4g > %.2f x D^2/12 = %.4g",
                                 sw_type_name(b->type), k_dist_name[dist], (unsigned long long)seed,
                                 (long long)n, mse, K, K * want);
                }
        printf("  %-5s MSE / mean(D^2/12): worst %.3f, bound %.3f\n", sw_type_name(b->type), worst,
               K);
    }
    free(x);
    free(y);
}

/* A quantizer that keeps one bit less of each level must fail the bound: clear
 * the low bit of every 4-bit level of Q4_0 and Q4_K blocks (levels 0..15 become
 * 0,2,..,14: step doubled, offset half a step) and check the bound trips. */
static void test_bound_catches_lost_bit(void **state) {
    (void)state;
    const int64_t n = 4096;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    const sw_type types[] = {SW_TYPE_Q4_0, SW_TYPE_Q4_K};
    const size_t qs_off[] = {offsetof(sw_block_q4_0, qs), offsetof(sw_block_q4_K, qs)};
    const size_t qs_len[] = {SW_QK4_0 / 2, SW_QK_K / 2};
    const bound_spec *spec[] = {&k_bounds[1], &k_bounds[7]};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(spec[k]->type, types[k]);
        fill(x, n, 0, 9);
        const size_t rs = sw_row_size(types[k], n), bs = sw_type_get(types[k])->type_size;
        uint8_t *q = malloc(rs);
        assert_non_null(q);
        assert_int_equal(sw_quantize_row(types[k], x, q, n, NULL), SW_OK);
        for (size_t blk = 0; blk < rs / bs; blk++)
            for (size_t i = 0; i < qs_len[k]; i++)
                q[blk * bs + qs_off[k] + i] &= 0xEE;
        assert_int_equal(sw_dequantize_row(types[k], q, y, n, NULL), SW_OK);
        const double K = spec[k]->c * 1.2 * 1.2;
        const double mse = mse_of(x, y, n), want = expected_mse(spec[k], x, n);
        if (mse <= K * want)
            fail_msg("%s with a lost bit passes the bound (%.4g <= %.4g): bound too loose",
                     sw_type_name(types[k]), mse, K * want);
        free(q);
    }
    free(x);
    free(y);
}

/* Per-element worst case for the 32-blocks: RTN is off by at most D/2 (D on
 * the clamped side of the signed formats), plus the f16 rounding of d and m
 * (2^-11 relative each, times at most nmax levels of d). */
static void test_elementwise_32(void **state) {
    (void)state;
    const int64_t n = 4096;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t ti = 0; ti < 5; ti++) {
        const bound_spec *b = &k_bounds[ti];
        for (int dist = 0; dist < 3; dist++) {
            fill(x, n, dist, 5);
            roundtrip(b->type, x, y, n);
            for (int64_t g = 0; g < n; g += 32) {
                double lo = x[g], hi = x[g], amax = 0;
                for (int i = 0; i < 32; i++) {
                    lo = fmin(lo, x[g + i]);
                    hi = fmax(hi, x[g + i]);
                    amax = fmax(amax, fabs(x[g + i]));
                }
                const double D = (b->kind == 0 ? amax : hi - lo) / b->nmax;
                const double rtn = (b->c > 1.0 ? 1.0 : 0.5) * D;
                const double tol = rtn + (b->nmax * D + fabs(lo)) * 0x1.0p-11 + 1e-30;
                for (int i = 0; i < 32; i++)
                    if (!(fabs((double)x[g + i] - y[g + i]) <= tol))
                        fail_msg("%s %s: element %lld = %g came back as %g (tol %g)",
                                 sw_type_name(b->type), k_dist_name[dist], (long long)(g + i),
                                 x[g + i], y[g + i], tol);
            }
        }
    }
    free(x);
    free(y);
}

static void test_plain_types(void **state) {
    (void)state;
    const int64_t n = 4096;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    fill(x, n, 0, 3);
    roundtrip(SW_TYPE_F32, x, y, n);
    assert_memory_equal(x, y, n * sizeof *x);
    roundtrip(SW_TYPE_F16, x, y, n);
    for (int64_t i = 0; i < n; i++) {
        /* RTN to 11 significant bits: relative error <= 2^-11 (normal range),
         * absolute <= 2^-25 in the subnormal range */
        const double tol = fmax(fabs((double)x[i]) * 0x1.0p-11, 0x1.0p-25);
        if (!(fabs((double)x[i] - y[i]) <= tol)) fail_msg("f16: %a -> %a", x[i], y[i]);
        assert_int_equal(f2u(y[i]), f2u(ref_f16_to_f32(ref_f32_to_f16(x[i]))));
    }
    roundtrip(SW_TYPE_BF16, x, y, n);
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs((double)x[i] - y[i]) <= fabs((double)x[i]) * 0x1.0p-8))
            fail_msg("bf16: %a -> %a", x[i], y[i]);
        assert_int_equal(f2u(y[i]), (uint32_t)ref_f32_to_bf16(x[i]) << 16);
    }
    free(x);
    free(y);
}

/* ---- (c) hand-built blocks ----------------------------------------------------------- */
/* f16 constants are written as bit patterns: 0x3C00 = 1.0, 0x3800 = 0.5,
 * 0x3400 = 0.25, 0x3000 = 0.125, 0xBC00 = -1.0, 0x4000 = 2.0. */

static void dequant(sw_type t, const void *blk, int64_t n, float *y) {
    sw_err err = {{0}};
    if (sw_dequantize_row(t, blk, y, n, &err) != SW_OK) fail_msg("%s", err.msg);
}

static void test_block_sizes(void **state) {
    (void)state;
    /* the byte counts of the GGUF block layouts */
    assert_int_equal(sizeof(sw_block_q4_0), 18);
    assert_int_equal(sizeof(sw_block_q4_1), 20);
    assert_int_equal(sizeof(sw_block_q5_0), 22);
    assert_int_equal(sizeof(sw_block_q5_1), 24);
    assert_int_equal(sizeof(sw_block_q8_0), 34);
    assert_int_equal(sizeof(sw_block_q2_K), 84);
    assert_int_equal(sizeof(sw_block_q3_K), 110);
    assert_int_equal(sizeof(sw_block_q4_K), 144);
    assert_int_equal(sizeof(sw_block_q5_K), 176);
    assert_int_equal(sizeof(sw_block_q6_K), 210);
}

static void test_hand_32_blocks(void **state) {
    (void)state;
    float y[32];
    uint8_t b[34];

    /* Q4_0: d = 0.5, qs[j] = j | (15-j) << 4. Element j (low nibble) is
     * (j - 8) * 0.5; element j+16 (high nibble) is (15 - j - 8) * 0.5. */
    wr16(b, 0x3800);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(SW_TYPE_Q4_0, b, 32, y);
    for (int j = 0; j < 16; j++) {
        assert_float_equal(y[j], (j - 8) * 0.5f, 0.0f);
        assert_float_equal(y[j + 16], (7 - j) * 0.5f, 0.0f);
    }
    assert_float_equal(y[0], -4.0f, 0.0f);
    assert_float_equal(y[15], 3.5f, 0.0f);
    assert_float_equal(y[16], 3.5f, 0.0f);
    assert_float_equal(y[31], -4.0f, 0.0f);

    /* Q4_1: d = 0.25, m = -1.0, same nibbles: j * 0.25 - 1, (15 - j) * 0.25 - 1 */
    wr16(b, 0x3400);
    wr16(b + 2, 0xBC00);
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(SW_TYPE_Q4_1, b, 32, y);
    for (int j = 0; j < 16; j++) {
        assert_float_equal(y[j], j * 0.25f - 1.0f, 0.0f);
        assert_float_equal(y[j + 16], (15 - j) * 0.25f - 1.0f, 0.0f);
    }
    assert_float_equal(y[31], -1.0f, 0.0f);
    assert_float_equal(y[15], 2.75f, 0.0f);

    /* Q5_0: d = 1.0, qh = 0xAAAA5555 (bytes 55 55 AA AA): bit j is 1 for even
     * j < 16 and for odd j >= 16; qs[j] = j | (15-j) << 4.
     *   element 0:  nibble 0,  qh bit 0 = 1  -> 16 - 16 = 0
     *   element 1:  nibble 1,  qh bit 1 = 0  ->  1 - 16 = -15
     *   element 16: nibble 15, qh bit 16 = 0 -> 15 - 16 = -1
     *   element 17: nibble 14, qh bit 17 = 1 -> 30 - 16 = 14 */
    wr16(b, 0x3C00);
    b[2] = 0x55, b[3] = 0x55, b[4] = 0xAA, b[5] = 0xAA;
    for (int j = 0; j < 16; j++)
        b[6 + j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(SW_TYPE_Q5_0, b, 32, y);
    assert_float_equal(y[0], 0.0f, 0.0f);
    assert_float_equal(y[1], -15.0f, 0.0f);
    assert_float_equal(y[16], -1.0f, 0.0f);
    assert_float_equal(y[17], 14.0f, 0.0f);
    for (int j = 0; j < 16; j++) {
        assert_float_equal(y[j], (float)(j + (j % 2 == 0 ? 16 : 0) - 16), 0.0f);
        assert_float_equal(y[j + 16], (float)(15 - j + (j % 2 == 1 ? 16 : 0) - 16), 0.0f);
    }

    /* Q5_1: d = 0.5, m = 2.0, same qh/qs: q * 0.5 + 2 */
    wr16(b, 0x3800);
    wr16(b + 2, 0x4000);
    b[4] = 0x55, b[5] = 0x55, b[6] = 0xAA, b[7] = 0xAA;
    for (int j = 0; j < 16; j++)
        b[8 + j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(SW_TYPE_Q5_1, b, 32, y);
    assert_float_equal(y[0], 10.0f, 0.0f);  /* 16 * 0.5 + 2 */
    assert_float_equal(y[1], 2.5f, 0.0f);   /* 1 * 0.5 + 2 */
    assert_float_equal(y[16], 9.5f, 0.0f);  /* 15 * 0.5 + 2 */
    assert_float_equal(y[17], 17.0f, 0.0f); /* 30 * 0.5 + 2 */

    /* Q8_0: d = 0.125, qs[j] = 8j - 128 -> j - 16 */
    wr16(b, 0x3000);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(8 * j - 128);
    dequant(SW_TYPE_Q8_0, b, 32, y);
    for (int j = 0; j < 32; j++)
        assert_float_equal(y[j], (float)(j - 16), 0.0f);
}

/* Q4_0 / Q8_0 quantize data that lies exactly on their levels to known bytes. */
static void test_hand_quantize(void **state) {
    (void)state;
    float x[32];
    uint8_t q[34];
    /* x = (k - 8) * 0.5 for level k = j % 16 (j < 16) and 15 - j%16 above.
     * amax is 4.0 at x[0] = -4.0, so d = -4 / -8 = 0.5 and every value is exact. */
    for (int j = 0; j < 16; j++) {
        x[j] = (j - 8) * 0.5f;
        x[j + 16] = (7 - j) * 0.5f;
    }
    assert_int_equal(sw_quantize_row(SW_TYPE_Q4_0, x, q, 32, NULL), SW_OK);
    assert_int_equal(rd16(q), 0x3800);
    for (int j = 0; j < 16; j++)
        assert_int_equal(q[2 + j], j | ((15 - j) << 4));
    /* x = j - 16: amax 16, d = 16/127, levels round(x * 127/16) */
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    assert_int_equal(sw_quantize_row(SW_TYPE_Q8_0, x, q, 32, NULL), SW_OK);
    assert_int_equal((int8_t)q[2], -127);
    assert_int_equal((int8_t)q[2 + 16], 0);
    assert_int_equal((int8_t)q[2 + 21], 40);  /* 5 * 127/16 = 39.69 */
    assert_int_equal((int8_t)q[2 + 31], 119); /* 15 * 127/16 = 119.06 */
    assert_int_equal(rd16(q), 0x3008);        /* 16/127 = 0.125984 -> f16 0x3008 (0.1259766) */

    /* Exact ties, where ggml's rounding rules show. Q8_0 with amax 127: d = 1,
     * levels roundf(x), halves away from zero. */
    memset(x, 0, sizeof x);
    x[0] = 127.0f, x[1] = 2.5f, x[2] = -2.5f, x[3] = 0.5f, x[4] = -126.5f, x[5] = 1.25f;
    assert_int_equal(sw_quantize_row(SW_TYPE_Q8_0, x, q, 32, NULL), SW_OK);
    assert_int_equal(rd16(q), 0x3C00);
    const int want8[6] = {127, 3, -3, 1, -127, 1};
    for (int j = 0; j < 6; j++)
        assert_int_equal((int8_t)q[2 + j], want8[j]);
    /* Q4_0 with max 8: d = 8 / -8 = -1, level = trunc(-x + 8.5), so x = 2.5
     * gives level 6 (value 2) and x = -2.5 level 11 (value -3): ties go up in
     * level, whatever the sign of x. */
    memset(x, 0, sizeof x);
    x[0] = 8.0f, x[1] = 2.5f, x[2] = -2.5f, x[3] = -7.9f;
    assert_int_equal(sw_quantize_row(SW_TYPE_Q4_0, x, q, 32, NULL), SW_OK);
    assert_int_equal(rd16(q), 0xBC00);
    assert_int_equal(q[2] & 15, 0);  /* 8 -> level 0 */
    assert_int_equal(q[3] & 15, 6);  /* 2.5 */
    assert_int_equal(q[4] & 15, 11); /* -2.5 */
    assert_int_equal(q[5] & 15, 15); /* -7.9 -> 16.4, clamped to 15 */
    assert_int_equal(q[6] & 15, 8);  /* 0 */
}

/* Element-wise readers of the K-quant layouts, by byte offset (Q2_K: scales 0,
 * qs 16, d 80, dmin 82; Q3_K: hmask 0, qs 32, scales 96, d 108; Q4_K: d 0,
 * dmin 2, scales 4, qs 16; Q5_K: d 0, dmin 2, scales 4, qh 16, qs 48; Q6_K:
 * ql 0, qh 128, scales 192, d 208), with the same arithmetic as ggml. */
static int two_bits(const uint8_t *qs, int e) {
    return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

static float spec_q2_K(const uint8_t *b, int e) {
    const float d = ref_f16_to_f32(rd16(b + 80)), dmin = ref_f16_to_f32(rd16(b + 82));
    const uint8_t sc = b[e / 16];
    return d * (float)(sc & 15) * (float)two_bits(b + 16, e) - dmin * (float)(sc >> 4);
}

static float spec_q3_K(const uint8_t *b, int e) {
    const int j = e / 16;
    const uint8_t *s = b + 96;
    const int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
    const int sc = (lo | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const int hbit = (b[e % 32] >> (e / 32)) & 1;
    const int q = two_bits(b + 32, e) - (hbit ? 0 : 4);
    return ref_f16_to_f32(rd16(b + 108)) * (float)sc * (float)q;
}

static void k4_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static float spec_q45_K(const uint8_t *b, int e, bool five) {
    int sc, m;
    k4_scale_min(b + 4, e / 32, &sc, &m);
    const uint8_t *qs = b + (five ? 48 : 16);
    const uint8_t byte = qs[(e / 64) * 32 + e % 32];
    int q = (e % 64) < 32 ? (byte & 15) : (byte >> 4);
    if (five) q |= ((b[16 + e % 32] >> (e / 32)) & 1) << 4;
    const float d = ref_f16_to_f32(rd16(b)), dmin = ref_f16_to_f32(rd16(b + 2));
    return d * (float)sc * (float)q - dmin * (float)m;
}

static float spec_q6_K(const uint8_t *b, int e) {
    const int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
    const uint8_t byte = b[64 * h + l + (k % 2 ? 32 : 0)];
    const int lo = k < 2 ? (byte & 15) : (byte >> 4);
    const int hi = (b[128 + 32 * h + l] >> (2 * k)) & 3;
    const int q = (lo | (hi << 4)) - 32;
    return ref_f16_to_f32(rd16(b + 208)) * (float)(int8_t)b[192 + e / 16] * (float)q;
}

static void test_hand_q2_K(void **state) {
    (void)state;
    uint8_t b[84];
    float y[256];
    /* scales[j] = j | (15-j) << 4 (scale j, min 15-j), every 2-bit field of a
     * qs byte 0xE4 = 11 10 01 00 is its own index, so level = (e % 128) / 32;
     * d = 0.5, dmin = 0.25: y[e] = 0.5 * j * level - 0.25 * (15 - j), j = e/16 */
    for (int j = 0; j < 16; j++)
        b[j] = (uint8_t)(j | ((15 - j) << 4));
    memset(b + 16, 0xE4, 64);
    wr16(b + 80, 0x3800);
    wr16(b + 82, 0x3400);
    dequant(SW_TYPE_Q2_K, b, 256, y);
    assert_float_equal(y[0], -3.75f, 0.0f);  /* j 0, level 0: 0 - 0.25*15 */
    assert_float_equal(y[40], -2.25f, 0.0f); /* j 2, level 1: 1 - 3.25 */
    assert_float_equal(y[100], 6.75f, 0.0f); /* j 6, level 3: 9 - 2.25 */
    assert_float_equal(y[160], 3.75f, 0.0f); /* j 10, level 1: 5 - 1.25 */
    assert_float_equal(y[255], 22.5f, 0.0f); /* j 15, level 3: 22.5 - 0 */
    for (int e = 0; e < 256; e++)
        assert_float_equal(y[e], spec_q2_K(b, e), 0.0f);
}

static void test_hand_q3_K(void **state) {
    (void)state;
    uint8_t b[110];
    float y[256];
    /* 6-bit scales j - 8 stored as j + 24 = 0x18..0x27, packed by hand: low
     * nibbles 8,9,..,F,0,..,7 (bytes 0-7 hold j and j+8), top bits 1 for j < 8
     * and 2 for j >= 8, i.e. bytes 8-11 = 01 01 10 10 = 0xA5. hmask 0x0F: the
     * high bit is set (no -4) for elements 0-127 and clear (-4) for 128-255;
     * qs 0xE4: 2-bit level (e % 128) / 32. d = 1. */
    static const uint8_t scales[12] = {0x08, 0x19, 0x2A, 0x3B, 0x4C, 0x5D,
                                       0x6E, 0x7F, 0xA5, 0xA5, 0xA5, 0xA5};
    memset(b, 0x0F, 32);
    memset(b + 32, 0xE4, 64);
    memcpy(b + 96, scales, 12);
    wr16(b + 108, 0x3C00);
    dequant(SW_TYPE_Q3_K, b, 256, y);
    assert_float_equal(y[0], 0.0f, 0.0f);    /* scale -8, level 0, +0 */
    assert_float_equal(y[40], -6.0f, 0.0f);  /* scale -6, level 1, +0 */
    assert_float_equal(y[130], 0.0f, 0.0f);  /* scale 0 */
    assert_float_equal(y[170], -6.0f, 0.0f); /* scale 2, level 1 - 4 = -3 */
    assert_float_equal(y[200], -8.0f, 0.0f); /* scale 4, level 2 - 4 = -2 */
    assert_float_equal(y[255], -7.0f, 0.0f); /* scale 7, level 3 - 4 = -1 */
    for (int e = 0; e < 256; e++)
        assert_float_equal(y[e], spec_q3_K(b, e), 0.0f);
}

/* scales = {1, 2, 3, 4, 17, 33, 49, 63}, mins = {0, 5, 10, 20, 40, 50, 60, 63},
 * packed by hand: bytes 0-3 = sc[j] | (sc[j+4] >> 4) << 6, bytes 4-7 =
 * m[j] | (m[j+4] >> 4) << 6, bytes 8-11 = (sc[j+4] & 15) | (m[j+4] & 15) << 4. */
static const uint8_t k_k4_scales[12] = {0x41, 0x82, 0xC3, 0xC4, 0x80, 0xC5,
                                        0xCA, 0xD4, 0x81, 0x21, 0xC1, 0xFF};

static void test_hand_q4_K(void **state) {
    (void)state;
    uint8_t b[144];
    float y[256];
    /* d = 1, dmin = 0.5; qs[i] = (i % 16) | ((i % 16) ^ 15) << 4. Element e is
     * in qs[(e/64)*32 + e%32], low nibble when e % 64 < 32. */
    wr16(b, 0x3C00);
    wr16(b + 2, 0x3800);
    memcpy(b + 4, k_k4_scales, 12);
    for (int i = 0; i < 128; i++)
        b[16 + i] = (uint8_t)((i % 16) | (((i % 16) ^ 15) << 4));
    dequant(SW_TYPE_Q4_K, b, 256, y);
    assert_float_equal(y[0], 0.0f, 0.0f);     /* sc 1 * 0 - 0.5 * 0 */
    assert_float_equal(y[37], 17.5f, 0.0f);   /* byte 5 high = 10: 2 * 10 - 0.5 * 5 */
    assert_float_equal(y[140], 184.0f, 0.0f); /* byte 76 low = 12: 17 * 12 - 20 */
    assert_float_equal(y[200], 362.0f, 0.0f); /* byte 104 low = 8: 49 * 8 - 30 */
    assert_float_equal(y[255], -31.5f, 0.0f); /* byte 127 high = 0: 0 - 31.5 */
    for (int e = 0; e < 256; e++)
        assert_float_equal(y[e], spec_q45_K(b, e, false), 0.0f);
}

static void test_hand_q5_K(void **state) {
    (void)state;
    uint8_t b[176];
    float y[256];
    /* as Q4_K, plus qh[l] = 0x55: bit 4 set for sub-blocks 0, 2, 4, 6 */
    wr16(b, 0x3C00);
    wr16(b + 2, 0x3800);
    memcpy(b + 4, k_k4_scales, 12);
    memset(b + 16, 0x55, 32);
    for (int i = 0; i < 128; i++)
        b[48 + i] = (uint8_t)((i % 16) | (((i % 16) ^ 15) << 4));
    dequant(SW_TYPE_Q5_K, b, 256, y);
    assert_float_equal(y[0], 16.0f, 0.0f);     /* 1 * 16 - 0 */
    assert_float_equal(y[37], 17.5f, 0.0f);    /* sub-block 1: no bit 4 */
    assert_float_equal(y[140], 456.0f, 0.0f);  /* 17 * 28 - 20 */
    assert_float_equal(y[200], 1146.0f, 0.0f); /* 49 * 24 - 30 */
    assert_float_equal(y[255], -31.5f, 0.0f);
    for (int e = 0; e < 256; e++)
        assert_float_equal(y[e], spec_q45_K(b, e, true), 0.0f);
}

static void test_hand_q6_K(void **state) {
    (void)state;
    uint8_t b[210];
    float y[256];
    /* ql[i] = i, qh = 0xE4 (2-bit field k of each byte is k), scales[j] =
     * 8j - 64, d = 0.5. Element e: half h = e/128, quarter k = (e%128)/32,
     * l = e%32; nibble from ql[64h + l + 32*(k odd)], low for k < 2; top bits k. */
    for (int i = 0; i < 128; i++)
        b[i] = (uint8_t)i;
    memset(b + 128, 0xE4, 64);
    for (int j = 0; j < 16; j++)
        b[192 + j] = (uint8_t)(int8_t)(8 * j - 64);
    wr16(b + 208, 0x3800);
    dequant(SW_TYPE_Q6_K, b, 256, y);
    assert_float_equal(y[0], 1024.0f, 0.0f);   /* 0.5 * -64 * (0 - 32) */
    assert_float_equal(y[37], 264.0f, 0.0f);   /* ql[37]=0x25 low 5, k 1: 21-32 = -11; sc -48 */
    assert_float_equal(y[100], -144.0f, 0.0f); /* ql[36]=0x24 high 2, k 3: 50-32 = 18; sc -16 */
    assert_float_equal(y[200], 64.0f, 0.0f);   /* ql[72]=0x48 high 4, k 2: 36-32 = 4; sc 32 */
    assert_float_equal(y[255], 644.0f, 0.0f);  /* ql[127]=0x7F high 7, k 3: 55-32 = 23; sc 56 */
    for (int e = 0; e < 256; e++)
        assert_float_equal(y[e], spec_q6_K(b, e), 0.0f);
}

/* Random bytes (with finite f16 factors) through the element-wise readers:
 * covers every bit of every field, not just the patterns above. */
static void test_random_k_blocks(void **state) {
    (void)state;
    uint64_t s = 4242;
    uint8_t b[210];
    float y[256];
    static const uint16_t factors[] = {0x3C00, 0x2E66, 0xB800, 0x0001, 0x7BFF, 0x1400};
    for (int iter = 0; iter < 200; iter++) {
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)rng_next(&s);
        const uint16_t f1 = factors[iter % 6], f2 = factors[(iter / 6) % 6];
        wr16(b + 80, f1), wr16(b + 82, f2);
        dequant(SW_TYPE_Q2_K, b, 256, y);
        for (int e = 0; e < 256; e++)
            assert_float_equal(y[e], spec_q2_K(b, e), 0.0f);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)rng_next(&s);
        wr16(b + 108, f1);
        dequant(SW_TYPE_Q3_K, b, 256, y);
        for (int e = 0; e < 256; e++)
            assert_float_equal(y[e], spec_q3_K(b, e), 0.0f);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)rng_next(&s);
        wr16(b, f1), wr16(b + 2, f2);
        dequant(SW_TYPE_Q4_K, b, 256, y);
        for (int e = 0; e < 256; e++)
            assert_float_equal(y[e], spec_q45_K(b, e, false), 0.0f);
        dequant(SW_TYPE_Q5_K, b, 256, y);
        for (int e = 0; e < 256; e++)
            assert_float_equal(y[e], spec_q45_K(b, e, true), 0.0f);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)rng_next(&s);
        wr16(b + 208, f1);
        dequant(SW_TYPE_Q6_K, b, 256, y);
        for (int e = 0; e < 256; e++)
            assert_float_equal(y[e], spec_q6_K(b, e), 0.0f);
    }
}

/* ---- (d) error paths and robustness ---------------------------------------------------- */

static void expect_err(sw_status got, sw_status want, const sw_err *err, const char *s1,
                       const char *s2) {
    assert_int_equal(got, want);
    if (!strstr(err->msg, s1) || (s2 && !strstr(err->msg, s2)))
        fail_msg("error message '%s' should name '%s'%s%s", err->msg, s1, s2 ? " and " : "",
                 s2 ? s2 : "");
}

static void test_errors(void **state) {
    (void)state;
    float x[512] = {0};
    uint8_t q[1024] = {0};
    sw_err err;
    expect_err(sw_dequantize_row(SW_TYPE_Q4_0, q, x, 33, &err), SW_E_INVALID_ARG, &err, "q4_0",
               "33");
    expect_err(sw_quantize_row(SW_TYPE_Q4_K, x, q, 100, &err), SW_E_INVALID_ARG, &err, "q4_K",
               "100");
    expect_err(sw_quantize_row(SW_TYPE_Q6_K, x, q, 255, &err), SW_E_INVALID_ARG, &err, "q6_K",
               "255");
    expect_err(sw_dequantize_row(SW_TYPE_F16, q, x, -2, &err), SW_E_INVALID_ARG, &err, "f16", "-2");
    expect_err(sw_dequantize_row(SW_TYPE_Q8_1, q, x, 32, &err), SW_E_UNSUPPORTED, &err, "q8_1",
               "32");
    expect_err(sw_quantize_row(SW_TYPE_Q8_K, x, q, 256, &err), SW_E_UNSUPPORTED, &err, "q8_K",
               NULL);
    expect_err(sw_dequantize_row(SW_TYPE_IQ2_XXS, q, x, 256, &err), SW_E_UNSUPPORTED, &err,
               "iq2_xxs", NULL);
    expect_err(sw_dequantize_row(SW_TYPE_I32, q, x, 4, &err), SW_E_UNSUPPORTED, &err, "i32", NULL);
    expect_err(sw_dequantize_row((sw_type)4, q, x, 32, &err), SW_E_UNSUPPORTED, &err, "4", NULL);
    expect_err(sw_quantize_row((sw_type)1000, x, q, 32, &err), SW_E_UNSUPPORTED, &err, "1000",
               NULL);
    expect_err(sw_dequantize_row((sw_type)-1, q, x, 32, &err), SW_E_UNSUPPORTED, &err, "unknown",
               NULL);
    expect_err(sw_dequantize_row(SW_TYPE_Q4_0, NULL, x, 32, &err), SW_E_INVALID_ARG, &err, "NULL",
               "q4_0");
    expect_err(sw_quantize_row(SW_TYPE_Q4_0, x, NULL, 32, &err), SW_E_INVALID_ARG, &err, "NULL",
               NULL);
    /* NULL err is allowed; n = 0 is a no-op even with NULL buffers */
    assert_int_equal(sw_dequantize_row(SW_TYPE_Q4_0, q, x, 31, NULL), SW_E_INVALID_ARG);
    assert_int_equal(sw_dequantize_row(SW_TYPE_Q4_K, NULL, NULL, 0, &err), SW_OK);
    assert_int_equal(sw_quantize_row(SW_TYPE_Q2_K, NULL, NULL, 0, NULL), SW_OK);
}

static const sw_type k_all[] = {SW_TYPE_F32,  SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q4_0,
                                SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1, SW_TYPE_Q8_0,
                                SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K,
                                SW_TYPE_Q6_K};
#define N_ALL (sizeof k_all / sizeof k_all[0])

/* Every supported type: the traits say so, zeros come back as zeros, NaN /
 * inf / huge inputs neither crash nor trip UBSan, unaligned buffers give the
 * same bytes, and nothing is written past sw_row_size. */
static void test_robustness(void **state) {
    (void)state;
    enum { N = 512 };
    float x[N], y[N], y2[N];
    uint8_t *buf = malloc(4 * N + 64), *buf2 = malloc(4 * N + 64);
    assert_non_null(buf);
    assert_non_null(buf2);
    for (size_t ti = 0; ti < N_ALL; ti++) {
        const sw_type t = k_all[ti];
        const sw_type_traits *tr = sw_type_get(t);
        assert_non_null(tr);
        assert_true(tr->can_dequantize);
        assert_true(tr->can_quantize);
        const size_t rs = sw_row_size(t, N);

        memset(x, 0, sizeof x);
        memset(buf, 0xA5, 4 * N + 64);
        assert_int_equal(sw_quantize_row(t, x, buf, N, NULL), SW_OK);
        for (size_t i = rs; i < 4 * N + 64; i++)
            if (buf[i] != 0xA5) fail_msg("%s: quantize wrote byte %zu past the row", tr->name, i);
        assert_int_equal(sw_dequantize_row(t, buf, y, N, NULL), SW_OK);
        for (int i = 0; i < N; i++)
            if (y[i] != 0.0f) fail_msg("%s: zeros came back as %g at %d", tr->name, y[i], i);

        /* unaligned: offset the block stream by one byte */
        fill(x, N, 0, 11);
        assert_int_equal(sw_quantize_row(t, x, buf, N, NULL), SW_OK);
        assert_int_equal(sw_quantize_row(t, x, buf2 + 1, N, NULL), SW_OK);
        assert_memory_equal(buf, buf2 + 1, rs);
        assert_int_equal(sw_dequantize_row(t, buf2 + 1, y2, N, NULL), SW_OK);
        assert_int_equal(sw_dequantize_row(t, buf, y, N, NULL), SW_OK);
        assert_memory_equal(y, y2, sizeof y);

        /* non-finite and out-of-range input: must not crash (results unspecified) */
        x[3] = NAN, x[40] = INFINITY, x[77] = -INFINITY, x[300] = 3e38f, x[301] = -3e38f;
        assert_int_equal(sw_quantize_row(t, x, buf, N, NULL), SW_OK);
        assert_int_equal(sw_dequantize_row(t, buf, y, N, NULL), SW_OK);
        for (int i = 0; i < N; i++)
            x[i] = NAN;
        assert_int_equal(sw_quantize_row(t, x, buf, N, NULL), SW_OK);
        assert_int_equal(sw_dequantize_row(t, buf, y, N, NULL), SW_OK);
        /* tiny values (subnormal scales) */
        for (int i = 0; i < N; i++)
            x[i] = (float)(i % 7) * 1e-40f;
        assert_int_equal(sw_quantize_row(t, x, buf, N, NULL), SW_OK);
        assert_int_equal(sw_dequantize_row(t, buf, y, N, NULL), SW_OK);
    }
    free(buf);
    free(buf2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_all_halves),
        cmocka_unit_test(test_f32_to_f16_vs_float16),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_plain_types),
        cmocka_unit_test(test_roundtrip_bounds),
        cmocka_unit_test(test_bound_catches_lost_bit),
        cmocka_unit_test(test_elementwise_32),
        cmocka_unit_test(test_block_sizes),
        cmocka_unit_test(test_hand_32_blocks),
        cmocka_unit_test(test_hand_quantize),
        cmocka_unit_test(test_hand_q2_K),
        cmocka_unit_test(test_hand_q3_K),
        cmocka_unit_test(test_hand_q4_K),
        cmocka_unit_test(test_hand_q5_K),
        cmocka_unit_test(test_hand_q6_K),
        cmocka_unit_test(test_random_k_blocks),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_robustness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
