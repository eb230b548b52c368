/* cpu_ops_avx2.c — AVX2 + FMA + F16C rows of the small ops of cpu_ops.c
 * (the kernel sets' swiglu, geglu, to_f16 and rms rows, cpu_kernels.c): the same
 * arithmetic as the scalar rows, 8 lanes at a time, with a polynomial exp
 * (cpu_exp_simd.h) in place of libm's expf.
 * Compiled with -mavx2 -mfma -mf16c; run only after the run-time CPU check. */
#include <immintrin.h>

#include "cpu_exp_simd.h"
#include "cpu_internal.h"

/* y = silu(g) u = g sigmoid(g) u with sigmoid(g) = 1 / (1 + e^-g) for g >= 0
 * and e^g / (1 + e^g) below: the exponent is never positive, so it cannot
 * overflow, and the result is exact to ~6 ulp (exp 2, then 4 roundings).
 * Eight lanes with a g below -80 (where e^g nears the subnormals the
 * polynomial does not produce) go through the scalar row. */
void sw_cpu_swiglu_row_avx2(const float *g, const float *u, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 low = _mm256_set1_ps(-80.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(g + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(a, low, _CMP_LT_OQ))) {
            sw_cpu_swiglu_row(g + i, u + i, y + i, 8);
            continue;
        }
        __m256 e = sw_exp_neg8(_mm256_or_ps(a, sign)); /* e^-|g| */
        __m256 num = _mm256_blendv_ps(one, e, a);      /* the sign of g selects e */
        __m256 s = _mm256_div_ps(_mm256_mul_ps(a, num), _mm256_add_ps(one, e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    sw_cpu_swiglu_row(g + i, u + i, y + i, n - i);
}

/* y = gelu(g) u = g sigmoid(t) u, t = 2 sqrt(2/pi) (g + 0.044715 g^3) (the
 * tanh form of GELU, sw_cpu_gelu_tanh), with the sigmoid written as swiglu's above
 * so that the exponent is never positive; t has the sign of g. Eight lanes
 * with a t below -80 go through the scalar row. */
void sw_cpu_geglu_row_avx2(const float *g, const float *u, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 low = _mm256_set1_ps(-80.0f), c = _mm256_set1_ps(2.0f * 0.7978845608028654f);
    const __m256 k = _mm256_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(g + i);
        __m256 t = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, a), _mm256_mul_ps(a, a), a));
        if (_mm256_movemask_ps(_mm256_cmp_ps(t, low, _CMP_LT_OQ))) {
            sw_cpu_geglu_row(g + i, u + i, y + i, 8);
            continue;
        }
        __m256 e = sw_exp_neg8(_mm256_or_ps(t, sign)); /* e^-|t| */
        __m256 num = _mm256_blendv_ps(one, e, t);
        __m256 s = _mm256_div_ps(_mm256_mul_ps(a, num), _mm256_add_ps(one, e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    sw_cpu_geglu_row(g + i, u + i, y + i, n - i);
}

/* F16C rounds to nearest even, as sw_cpu_f32_to_f16 (NaN payloads aside) */
void sw_cpu_to_f16_row_avx2(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = sw_cpu_f32_to_f16(x[i]);
}

/* The sum of squares in double (4 lanes, two chains), then (x scale) w in
 * float: two roundings per element, as the scalar row. */
void sw_cpu_rms_row_avx2(const float *x, const float *w, float *y, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_fmadd_pd(a, a, s0);
        s1 = _mm256_fmadd_pd(b, b, s1);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (int64_t j = i; j < n; j++)
        ss += (double)x[j] * (double)x[j];
    float scale = sw_cpu_rms_scale(ss, n, eps);
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
                                              _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}
