/* cpu_quant_avx512.c — the AVX-512 activation quantizers: the same bytes as
 * sw_cpu_quantize_q8 / _q8_K (cpu_vec_dot.c) step for step -- d = amax / 127
 * and id = 1 / d in float, q = round-to-nearest-even(x * id) clamped to
 * [-127, 127], a NaN to -127 -- with the two divisions of 16 blocks done as
 * one vector division each: per block they were a serial chain (maximum,
 * divide, divide, quantize) that the scalar divisions kept from overlapping.
 * Compiled with the AVX-512 flags of the CMake rule for *_avx512.c; run only
 * after the run-time CPU check. */
#include <immintrin.h>

#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* max(|v|, m) with m first never NaN: a NaN element is ignored, as the
 * scalar comparison ignores it (MAXPS returns its second operand then) */
static ALWAYS_INLINE __m512 absmax(__m512 v, __m512 m) {
    return _mm512_max_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), v), m);
}

/* 16 x round(x * id) clamped, as int32 */
static ALWAYS_INLINE __m512i quant16(const float *x, __m512 vid) {
    __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_loadu_ps(x), vid),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    return _mm512_cvtps_epi32(r);
}

/* d = amax / 127, id = 1 / d (0 for d = 0) for 16 blocks at once */
static ALWAYS_INLINE void scales16(const float *amax, float *d, float *id) {
    __m512 vd = _mm512_div_ps(_mm512_loadu_ps(amax), _mm512_set1_ps(127.0f));
    __mmask16 pos = _mm512_cmp_ps_mask(vd, _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_storeu_ps(d, vd);
    _mm512_storeu_ps(id, _mm512_maskz_div_ps(pos, _mm512_set1_ps(1.0f), vd));
}

void sw_cpu_quantize_q8_avx512(const float *x, sw_cpu_q8 *y, int64_t n) {
    float amax[16], d[16], id[16];
    for (int64_t b0 = 0; b0 < n / 32; b0 += 16, x += 16 * 32) {
        int nb = (int)SW_MIN((int64_t)16, n / 32 - b0);
        for (int i = 0; i < 16; i++) {
            __m512 m = _mm512_setzero_ps();
            if (i < nb) m = absmax(_mm512_loadu_ps(x + 32 * i + 16), absmax(_mm512_loadu_ps(x + 32 * i), m));
            amax[i] = _mm512_reduce_max_ps(m);
        }
        scales16(amax, d, id);
        for (int i = 0; i < nb; i++) {
            sw_cpu_q8 *yb = y + b0 + i;
            __m512 vid = _mm512_set1_ps(id[i]);
            __m512i q0 = quant16(x + 32 * i, vid), q1 = quant16(x + 32 * i + 16, vid);
            _mm_storeu_si128((__m128i *)yb->qs, _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(yb->qs + 16), _mm512_cvtsepi32_epi8(q1));
            int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            yb->d = d[i];
            yb->s = d[i] * (float)sum;
            yb->sum = sum;
        }
    }
}

void sw_cpu_quantize_q8_K_avx512(const float *x, sw_block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / SW_QK_K; b++, x += SW_QK_K) {
        /* one scale for 256: four independent maximum chains, then the groups */
        __m512 m[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (int i = 0; i < SW_QK_K; i += 64)
            for (int k = 0; k < 4; k++)
                m[k] = absmax(_mm512_loadu_ps(x + i + 16 * k), m[k]);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m[0], m[1]),
                                                        _mm512_max_ps(m[2], m[3])));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        for (int g = 0; g < SW_QK_K / 16; g++) {
            __m512i q = quant16(x + 16 * g, vid);
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * g), _mm512_cvtsepi32_epi8(q));
            y[b].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[b].d = d;
    }
}
