/* cpu_ops_avx512.c — the AVX-512 swiglu and geglu rows: cpu_ops_avx2.c's, 16
 * lanes at a time (its polynomial exp is most of the work; the other small ops are
 * memory-bound and run the AVX2 rows).
 * Compiled with the AVX-512 flags of the CMake rule for *_avx512.c; run only
 * after the run-time CPU check. */
#include <immintrin.h>

#include "cpu_exp_simd.h"
#include "cpu_internal.h"

void sw_cpu_swiglu_row_avx512(const float *g, const float *u, float *y, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f), sign = _mm512_set1_ps(-0.0f);
    const __m512 low = _mm512_set1_ps(-80.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_loadu_ps(g + i);
        if (_mm512_cmp_ps_mask(a, low, _CMP_LT_OQ)) { /* see cpu_ops_avx2.c */
            sw_cpu_swiglu_row(g + i, u + i, y + i, 16);
            continue;
        }
        __m512 e = sw_exp_neg16(_mm512_or_ps(a, sign)); /* e^-|g| */
        __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(a));
        __m512 num = _mm512_mask_blend_ps(neg, one, e);
        __m512 s = _mm512_div_ps(_mm512_mul_ps(a, num), _mm512_add_ps(one, e));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    sw_cpu_swiglu_row_avx2(g + i, u + i, y + i, n - i);
}

void sw_cpu_geglu_row_avx512(const float *g, const float *u, float *y, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f), sign = _mm512_set1_ps(-0.0f);
    const __m512 low = _mm512_set1_ps(-80.0f), c = _mm512_set1_ps(2.0f * 0.7978845608028654f);
    const __m512 k = _mm512_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_loadu_ps(g + i);
        __m512 t = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_mul_ps(k, a), _mm512_mul_ps(a, a), a));
        if (_mm512_cmp_ps_mask(t, low, _CMP_LT_OQ)) { /* see cpu_ops_avx2.c */
            sw_cpu_geglu_row(g + i, u + i, y + i, 16);
            continue;
        }
        __m512 e = sw_exp_neg16(_mm512_or_ps(t, sign)); /* e^-|t| */
        __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(t));
        __m512 num = _mm512_mask_blend_ps(neg, one, e);
        __m512 s = _mm512_div_ps(_mm512_mul_ps(a, num), _mm512_add_ps(one, e));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    sw_cpu_geglu_row_avx2(g + i, u + i, y + i, n - i);
}
