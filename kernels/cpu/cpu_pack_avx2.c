/* cpu_pack_avx2.c — AVX2 matmul kernels for the packed 8-row layout of
 * cpu_pack.c (F32, Q4_0, Q8_0; the K-quants are in cpu_pack_k_avx2.c, which
 * the table at the end hands on to): one call computes a group of 8 weight rows against nc <= 4
 * activation columns. Lane r of every accumulator belongs to row r, so
 * activations are broadcast and no horizontal sums are needed; each unpacked
 * weight vector is used for all nc columns and each activation load for 8 rows.
 * Compiled with -mavx2 -mfma -mf16c; run only after the run-time CPU check.
 *
 * Integer bounds: activation quants are in [-127, 127]. Q4_0 codes u in
 * [0, 15] go straight into maddubs (|pair| <= 2 * 15 * 127 = 3810), so the 8
 * maddubs of a block can be summed in int16 (<= 30480) before one madd; the
 * offset 8 is applied with the block sum s of the activations. Q8_0 uses |w|
 * and sign(x, w) (|pair| <= 2 * 128 * 127 = 32512), widened every time. */
#include <immintrin.h>

#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

#define XQ8(x, xs, c) ((const sw_cpu_q8 *)((const uint8_t *)(x) + (size_t)(c) * (xs)))

static ALWAYS_INLINE uint32_t ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static ALWAYS_INLINE __m256i bcast32(const void *p) {
    return _mm256_set1_epi32((int)ld32(p));
}

#define INSTANTIATE(name) SW_CPU_INSTANTIATE_NC(name, const uint8_t *)

/* F32 [K][8]: per k one weight vector, one broadcast and FMA per column. Two
 * interleaved accumulator sets (even and odd k) keep 2 nc FMA chains in
 * flight. Separate 1-D arrays, not a 2-D one: GCC keeps those in registers. */
static ALWAYS_INLINE void pk_f32_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                    float *res, const int nc) {
    const float *g = (const float *)w;
    const float *xc[SW_CPU_MAX_COLS];
    __m256 a0[SW_CPU_MAX_COLS], a1[SW_CPU_MAX_COLS];
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++) {
        xc[c] = (const float *)((const uint8_t *)x + (size_t)c * xs);
        a0[c] = a1[c] = _mm256_setzero_ps();
    }
    int64_t k = 0;
    for (; k + 2 <= K; k += 2) {
        __m256 w0 = _mm256_loadu_ps(g + k * 8), w1 = _mm256_loadu_ps(g + k * 8 + 8);
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++) {
            a0[c] = _mm256_fmadd_ps(w0, _mm256_broadcast_ss(xc[c] + k), a0[c]);
            a1[c] = _mm256_fmadd_ps(w1, _mm256_broadcast_ss(xc[c] + k + 1), a1[c]);
        }
    }
    if (k < K) {
        __m256 w0 = _mm256_loadu_ps(g + k * 8);
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++)
            a0[c] = _mm256_fmadd_ps(w0, _mm256_broadcast_ss(xc[c] + k), a0[c]);
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(res + 8 * c, _mm256_add_ps(a0[c], a1[c]));
}
INSTANTIATE(pk_f32)

/* Q4_0 units of 144 bytes: 8 f16 scales, 4 x 32 bytes of nibbles. The block's
 * 8 unpacked vectors stay in registers while each column is finished in turn
 * (8 + nc + 4 live vectors); looping columns inside the vectors instead makes
 * GCC hoist all 8 nc broadcasts and spill. */
static ALWAYS_INLINE void pk_q4_0_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                     float *res, const int nc) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[SW_CPU_MAX_COLS];
_Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *u = w + (size_t)b * 144;
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)u));
        __m256i lo[4], hi[4];
        for (int j = 0; j < 4; j++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(u + 16 + 32 * j));
            lo[j] = _mm256_and_si256(v, m4);
            hi[j] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
_Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++) {
            const sw_cpu_q8 *xb = XQ8(x, xs, c) + b;
            __m256i s = _mm256_maddubs_epi16(lo[0], bcast32(xb->qs));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[0], bcast32(xb->qs + 16)));
            for (int j = 1; j < 4; j++) {
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[j], bcast32(xb->qs + 4 * j)));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[j], bcast32(xb->qs + 16 + 4 * j)));
            }
            __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(s, ones));
            /* sum (u - 8) q dx = dx sum(u q) - 8 s */
            __m256 v = _mm256_fmadd_ps(f, _mm256_set1_ps(xb->d), _mm256_set1_ps(-8.0f * xb->s));
            acc[c] = _mm256_fmadd_ps(dw, v, acc[c]);
        }
    }
_Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(res + 8 * c, acc[c]);
}
INSTANTIATE(pk_q4_0)

/* Q8_0 units of 272 bytes: 8 f16 scales, 8 x 32 bytes of int8. */
static ALWAYS_INLINE void pk_q8_0_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                     float *res, const int nc) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[SW_CPU_MAX_COLS];
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *u = w + (size_t)b * 272;
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)u));
        __m256i s[SW_CPU_MAX_COLS];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++)
            s[c] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(u + 16 + 32 * j));
            __m256i av = _mm256_sign_epi8(v, v);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < nc; c++) {
                __m256i y = _mm256_sign_epi8(bcast32(XQ8(x, xs, c)[b].qs + 4 * j), v);
                s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(_mm256_maddubs_epi16(av, y), ones));
            }
        }
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++) {
            __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(XQ8(x, xs, c)[b].d));
            acc[c] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s[c]), acc[c]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(res + 8 * c, acc[c]);
}
INSTANTIATE(pk_q8_0)

sw_cpu_pack_fn sw_cpu_pack_kernel_avx2(sw_type t) {
    switch (t) {
    case SW_TYPE_F32:
        return pk_f32;
    case SW_TYPE_Q4_0:
        return pk_q4_0;
    case SW_TYPE_Q8_0:
        return pk_q8_0;
    default:
        return sw_cpu_pack_kernel_k_avx2(t);
    }
}
