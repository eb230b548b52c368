/* cpu_exp_simd.h — e^x for x <= 0 on a SIMD vector, written once for ymm and
 * zmm (the includer's target flags decide which it can compile): x = n ln2 +
 * r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n put into the
 * exponent; |rel err| ~ 2 ulp. Inputs below -87 give ~1e-38 instead of 0,
 * below anything a softmax sum or a sigmoid can notice. Used by the
 * attention row loops and the SIMD elementwise ops. */
#ifndef SW_CPU_EXP_SIMD_H
#define SW_CPU_EXP_SIMD_H

#include <immintrin.h>

#define SW_EXP_NEG_BODY(P, V, VI, ROUND, CAST)                                                           \
    x = P##_max_ps(x, P##_set1_ps(-87.0f));                                                        \
    V n = ROUND(P##_mul_ps(x, P##_set1_ps(1.44269504088896341f)));                                 \
    V r = P##_fnmadd_ps(n, P##_set1_ps(0.693359375f), x);                                          \
    r = P##_fnmadd_ps(n, P##_set1_ps(-2.12194440e-4f), r);                                         \
    V p = P##_set1_ps(1.9875691500e-4f);                                                           \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.3981999507e-3f));                                         \
    p = P##_fmadd_ps(p, r, P##_set1_ps(8.3334519073e-3f));                                         \
    p = P##_fmadd_ps(p, r, P##_set1_ps(4.1665795894e-2f));                                         \
    p = P##_fmadd_ps(p, r, P##_set1_ps(1.6666665459e-1f));                                         \
    p = P##_fmadd_ps(p, r, P##_set1_ps(5.0000001201e-1f));                                         \
    p = P##_fmadd_ps(P##_mul_ps(p, r), r, P##_add_ps(r, P##_set1_ps(1.0f)));                       \
    VI e = P##_slli_epi32(P##_add_epi32(P##_cvtps_epi32(n), P##_set1_epi32(127)), 23);             \
    return P##_mul_ps(p, CAST(e));

#define SW_ROUND8(v) _mm256_round_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline __attribute__((always_inline)) __m256 sw_exp_neg8(__m256 x) {
    SW_EXP_NEG_BODY(_mm256, __m256, __m256i, SW_ROUND8, _mm256_castsi256_ps)
}

#ifdef __AVX512F__
#define SW_ROUND16(v) _mm512_roundscale_ps((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline __attribute__((always_inline)) __m512 sw_exp_neg16(__m512 x) {
    SW_EXP_NEG_BODY(_mm512, __m512, __m512i, SW_ROUND16, _mm512_castsi512_ps)
}
#endif

#endif
