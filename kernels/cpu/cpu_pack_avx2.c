/* cpu_pack_avx2.c — AVX2 matmul kernels for the packed 8-row layout of
 * cpu_pack.c, F32 and the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0; the K-quants are in cpu_pack_k_avx2.c): one call computes a group of
 * 8 weight rows against nc <= 4 activation columns. Lane r of every
 * accumulator belongs to row r, so activations are broadcast and no
 * horizontal sums are needed; each unpacked weight vector is used for all nc
 * columns and each activation load for 8 rows.
 * Compiled with -mavx2 -mfma -mf16c; run only after the run-time CPU check.
 *
 * Per block and column the integer sum is exactly that of the plain row
 * kernels (dot_q4_0 ... in cpu_vec_dot_avx2.c), per row instead of per lane
 * of a row: isum = sum u qx over the unsigned codes u, and then
 *   out += dw (dx isum - o s)        Q4_0, Q5_0 (offset o = 8, 16)
 *   out += dw (dx isum) + m s        Q4_1, Q5_1
 * with s = dx sum(qx), the activation block's scaled sum.
 *
 * Integer bounds: activation quants are in [-127, 127]. 4-bit codes u in
 * [0, 15] go straight into maddubs (|pair| <= 2 * 15 * 127 = 3810), so the 8
 * maddubs of a block can be summed in int16 (<= 30480) before one madd; 5-bit
 * codes (<= 31: 7874 a pair) take one int16 sum of 4 per half block (31496)
 * and a madd each. Q8_0 uses |w| and sign(x, w) (|pair| <= 2 * 128 * 127 =
 * 32512), widened every time. */
#include "cpu_pack_avx2.h"

#define XQ8(x, xs, c) ((const sw_cpu_q8 *)((const uint8_t *)(x) + (size_t)(c) * (xs)))

/* F32 [K][8]: per k one weight vector, one broadcast and FMA per column. Two
 * interleaved accumulator sets (even and odd k) keep 2 nc FMA chains in
 * flight. Separate 1-D arrays, not a 2-D one: GCC keeps those in registers.
 * No software prefetch: the hardware prefetcher follows this one plain stream
 * already (decode at the machine's read bandwidth), and prefetch_unit per
 * line measured 10-20% slower. */
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
SW_CPU_PK_INSTANTIATE(f32)

/* Integer sum of one block for one column: the 8 code vectors (lo[j]:
 * elements 4j..4j+3 of each row, hi[j]: 16+4j..16+4j+3) against the
 * broadcast activation quants. */
static ALWAYS_INLINE __m256i b32_isum(const __m256i lo[4], const __m256i hi[4], const int8_t *xq,
                                      const bool five) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s = _mm256_maddubs_epi16(lo[0], bcast32(xq));
    __m256i t = _mm256_maddubs_epi16(hi[0], bcast32(xq + 16));
    if (!five) s = _mm256_add_epi16(s, t);
    _Pragma("GCC unroll 4")
    for (int j = 1; j < 4; j++) {
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[j], bcast32(xq + 4 * j)));
        __m256i h = _mm256_maddubs_epi16(hi[j], bcast32(xq + 16 + 4 * j));
        if (five)
            t = _mm256_add_epi16(t, h);
        else
            s = _mm256_add_epi16(s, h);
    }
    __m256i r = _mm256_madd_epi16(s, ones);
    return five ? _mm256_add_epi32(r, _mm256_madd_epi16(t, ones)) : r;
}

/* Q4_0, Q4_1, Q5_0, Q5_1 (has_m: an f16 m per block; five: a 5th bit). The
 * block's 8 unpacked vectors stay in registers while each column is finished
 * in turn (8 + nc + 4 live vectors); looping columns inside the vectors
 * instead makes GCC hoist all 8 nc broadcasts and spill. The m term is added
 * off the accumulator's dependency chain (one add on it per block). */
static ALWAYS_INLINE void pk_b32_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                    float *res, const int nc, const bool has_m, const bool five) {
    const int qs_off = has_m ? 32 : 16, unit = qs_off + 128 + (five ? 32 : 0);
    const float off = five ? -16.0f : -8.0f; /* the offset types' o, negated */
    const __m256i m4 = _mm256_set1_epi8(0x0f), m16 = _mm256_set1_epi8(0x10);
    __m256 acc[SW_CPU_MAX_COLS];
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *u = w + (size_t)b * unit;
        prefetch_unit_staged(u, unit, nc);
        __m256 dw = ld_f16x8(u);
        __m256i lo[4], hi[4], h = five ? ld(u + qs_off + 128) : _mm256_setzero_si256();
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            __m256i v = ld(u + qs_off + 32 * j);
            lo[j] = _mm256_and_si256(v, m4);
            hi[j] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (five) { /* to bit 4: bit j for the low codes, bit 4 + j for the high */
                __m256i hl = _mm256_slli_epi16(h, 4 - j);
                __m256i hh = j == 0 ? h : _mm256_srli_epi16(h, j);
                lo[j] = _mm256_or_si256(lo[j], _mm256_and_si256(hl, m16));
                hi[j] = _mm256_or_si256(hi[j], _mm256_and_si256(hh, m16));
            }
        }
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++) {
            const sw_cpu_q8 *xb = XQ8(x, xs, c) + b;
            __m256 f = _mm256_cvtepi32_ps(b32_isum(lo, hi, xb->qs, five));
            if (has_m) {
                __m256 ms = _mm256_mul_ps(ld_f16x8(u + 16), _mm256_set1_ps(xb->s));
                __m256 v = _mm256_fmadd_ps(dw, _mm256_mul_ps(f, _mm256_set1_ps(xb->d)), ms);
                acc[c] = _mm256_add_ps(acc[c], v);
            } else {
                __m256 v = _mm256_fmadd_ps(f, _mm256_set1_ps(xb->d), _mm256_set1_ps(off * xb->s));
                acc[c] = _mm256_fmadd_ps(dw, v, acc[c]);
            }
        }
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(res + 8 * c, acc[c]);
}
SW_CPU_PK_VARIANT(q4_0, pk_b32_nc, false, false)
SW_CPU_PK_VARIANT(q4_1, pk_b32_nc, true, false)
SW_CPU_PK_VARIANT(q5_0, pk_b32_nc, false, true)
SW_CPU_PK_VARIANT(q5_1, pk_b32_nc, true, true)

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
        prefetch_unit_staged(u, 272, nc);
        __m256 dw = ld_f16x8(u);
        __m256i s[SW_CPU_MAX_COLS];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++)
            s[c] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            __m256i v = ld(u + 16 + 32 * j);
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
SW_CPU_PK_INSTANTIATE(q8_0)
