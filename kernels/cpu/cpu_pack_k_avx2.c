/* cpu_pack_k_avx2.c — AVX2 matmul kernels for the packed 8-row K-quant
 * layouts of cpu_pack.c (Q4_K, Q5_K, Q6_K) against sw_block_q8_K activations:
 * one call computes a group of 8 weight rows against nc <= 4 columns, lane r
 * of every accumulator belonging to row r (see cpu_pack_avx2.c for the idea).
 * Compiled with -mavx2 -mfma -mf16c; run only after the run-time CPU check.
 *
 * Per super-block and column the integer sums are exactly those of the plain
 * row kernels (dot_q4_K ... in cpu_vec_dot_avx2.c), per row instead of per
 * lane of a row:
 *   isum = sum over 16- or 32-element sub-blocks i of sc_i * sum u qx
 *          (u: the unsigned codes),
 *   corr = sum_i cv_i * bsum_i, cv = mins (Q4_K, Q5_K) or scales (Q6_K),
 * and out += (d dx) isum - (dmin dx | 32 d dx) corr in float.
 *
 * Integer bounds (activation quants in [-127, 127]): a maddubs pair is at
 * most 2 * 15 * 127 = 3810 for Q4_K (8 summed in int16: 30480), 2 * 31 * 127
 * = 7874 for Q5_K (4: 31496), 2 * 63 * 127 = 16002 for Q6_K (2: 32004); the
 * int16 sums are then multiplied by their scale with one madd into int32.
 *
 * Scales are brought into the form madd wants with one shuffle each: the
 * 6-bit K4 scales are first decoded for all 8 rows to byte vectors (lane r =
 * 4 consecutive scales of row r), then pair_ctrl(j) puts scale j of each lane
 * into both int16 halves of that lane, zero-extended. Q6_K's signed 8-bit
 * scales are stored in (scale 2g, scale 2g+1) pairs per lane, sign-extended
 * with one cvtepi8_epi16 and duplicated per half with one shuffle. */
#include "cpu_pack_avx2.h"

#define XQ8K(x, xs, c) ((const sw_block_q8_K *)((const uint8_t *)(x) + (size_t)(c) * (xs)))

#define Q4K_UNIT (8 * (int)sizeof(sw_block_q4_K))
#define Q5K_UNIT (8 * (int)sizeof(sw_block_q5_K))
#define Q6K_UNIT (8 * (int)sizeof(sw_block_q6_K))

/* Shuffle control: byte j of each 32-bit lane into both of its int16 halves,
 * zero-extended (0x80 selects zero). */
static ALWAYS_INLINE __m256i pair_ctrl(int j) {
    const char z = (char)0x80;
    const char a = (char)j, b = (char)(4 + j), c = (char)(8 + j), d = (char)(12 + j);
    return _mm256_setr_epi8(a, z, a, z, b, z, b, z, c, z, c, z, d, z, d, z, /* low 128 */
                            a, z, a, z, b, z, b, z, c, z, c, z, d, z, d, z);
}

/* Ls, Lm, H (cpu_pack.c) -> byte vectors with lane r = sc[r][0..3] (s[0]),
 * sc[r][4..7] (s[1]), m[r][0..3] (m[0]), m[r][4..7] (m[1]). The 16-bit shifts
 * move bits across bytes; the masks keep only each byte's own. */
static ALWAYS_INLINE void k4_decode(const uint8_t *p, __m256i s[2], __m256i m[2]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    __m256i ls = ld(p), lm = ld(p + 32), h = ld(p + 64);
    s[0] = _mm256_or_si256(_mm256_and_si256(ls, m4),
                           _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
    s[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ls, 4), m4),
                           _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
    m[0] = _mm256_or_si256(_mm256_and_si256(lm, m4), _mm256_and_si256(h, m30));
    m[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lm, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
}

/* corr[c] += sum_g m[r][g] (bsum[2g] + bsum[2g+1]) for the K4 mins of one
 * unit: per group one madd of (m, m) with the broadcast pair of bsums. */
static ALWAYS_INLINE void k4_mins(const __m256i mv[2], const void *x, size_t xs, int64_t b,
                                  __m256i *corr, const int nc) {
    _Pragma("GCC unroll 8")
    for (int g = 0; g < 8; g++) {
        __m256i mn = _mm256_shuffle_epi8(mv[g / 4], pair_ctrl(g % 4));
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++)
            corr[c] = _mm256_add_epi32(
                corr[c], _mm256_madd_epi16(mn, bcast32(XQ8K(x, xs, c)[b].bsums + 2 * g)));
    }
}

/* acc[c] += (d dx) isum[c] - (dm dx) corr[c], as the plain kernels do */
static ALWAYS_INLINE void finish_block(__m256 d, __m256 dm, const void *x, size_t xs, int64_t b,
                                       const __m256i *isum, const __m256i *corr, __m256 *acc,
                                       const int nc) {
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++) {
        __m256 dx = _mm256_set1_ps(XQ8K(x, xs, c)[b].d);
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(isum[c]), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_mul_ps(dm, dx), _mm256_cvtepi32_ps(corr[c]), acc[c]);
    }
}

/* Q4_K and Q5_K, five = false / true. Per pair p of groups (a loop, not
 * unrolled: fully unrolled, GCC hoists the maddubs of several groups and
 * spills them) and half of a group (16 elements: 4 codes vectors in
 * registers), each column sums 4 maddubs in int16. Q4_K adds the two halves
 * in int16 (8 maddubs <= 30480) before the scale's madd; Q5_K's larger codes
 * take one madd per half. Q5_K's 5th bits come from the qh vector of (p,
 * half), bit 2i + odd for group 2p + odd, elements 4i..4i+3 of the half. */
static ALWAYS_INLINE void pk_k4_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                   float *res, const int nc, const bool five) {
    __m256 acc[SW_CPU_MAX_COLS];
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / SW_QK_K; b++) {
        const uint8_t *u = w + (size_t)b * (five ? Q5K_UNIT : Q4K_UNIT);
        prefetch_unit_staged(u, five ? Q5K_UNIT : Q4K_UNIT, nc);
        __m256i sv[2], mv[2], isum[SW_CPU_MAX_COLS], corr[SW_CPU_MAX_COLS], scp[8];
        k4_decode(u + 8 * SW_PK_K4_SCALES, sv, mv);
        _Pragma("GCC unroll 8")
        for (int g = 0; g < 8; g++)
            scp[g] = _mm256_shuffle_epi8(sv[g / 4], pair_ctrl(g % 4));
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++)
            isum[c] = corr[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 1")
        for (int p = 0; p < 4; p++) {
            _Pragma("GCC unroll 2")
            for (int odd = 0; odd < 2; odd++) {
                int g = 2 * p + odd;
                __m256i s[SW_CPU_MAX_COLS];
                _Pragma("GCC unroll 2")
                for (int half = 0; half < 2; half++) {
                    __m256i q[4];
                    _Pragma("GCC unroll 4")
                    for (int i = 0; i < 4; i++) {
                        __m256i v = ld(u + 8 * SW_PK_K4_QS + 256 * p + 32 * (4 * half + i));
                        if (odd) v = _mm256_srli_epi16(v, 4);
                        q[i] = _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
                        if (five) {
                            __m256i h = ld(u + 8 * SW_PK_Q5K_QH + 64 * p + 32 * half);
                            int bit = 2 * i + odd; /* -> bit 4 */
                            h = bit >= 4 ? _mm256_srli_epi16(h, bit - 4)
                                         : _mm256_slli_epi16(h, 4 - bit);
                            q[i] = _mm256_or_si256(q[i],
                                                   _mm256_and_si256(h, _mm256_set1_epi8(0x10)));
                        }
                    }
                    _Pragma("GCC unroll 4")
                    for (int c = 0; c < nc; c++) {
                        const int8_t *xq = XQ8K(x, xs, c)[b].qs + 32 * g + 16 * half;
                        __m256i t = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], bcast32(xq)),
                                                     _mm256_maddubs_epi16(q[1], bcast32(xq + 4)));
                        t = _mm256_add_epi16(t, _mm256_maddubs_epi16(q[2], bcast32(xq + 8)));
                        t = _mm256_add_epi16(t, _mm256_maddubs_epi16(q[3], bcast32(xq + 12)));
                        KEEP_SUM(t);
                        if (five)
                            isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(t, scp[g]));
                        else
                            s[c] = half ? _mm256_add_epi16(s[c], t) : t;
                    }
                }
                if (!five) {
                    _Pragma("GCC unroll 4")
                    for (int c = 0; c < nc; c++)
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s[c], scp[g]));
                }
            }
        }
        k4_mins(mv, x, xs, b, corr, nc);
        finish_block(ld_f16x8(u), ld_f16x8(u + 16), x, xs, b, isum, corr, acc, nc);
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(res + 8 * c, acc[c]);
}
SW_CPU_PK_VARIANT(q4_K, pk_k4_nc, false)
SW_CPU_PK_VARIANT(q5_K, pk_k4_nc, true)

/* Q6_K: codes of group 4h + i, elements 4j..4j+3 (v = the 96 bytes of (h,
 * j)): a nibble of one of the two ql vectors and bits 2i..2i+1 of the qh
 * vector moved to bits 4-5. */
static ALWAYS_INLINE __m256i q6_codes(const uint8_t *v, int i) {
    __m256i l = ld(v + 32 * (i & 1));
    if (i >= 2) l = _mm256_srli_epi16(l, 4);
    __m256i h = ld(v + 64);
    h = i == 0 ? _mm256_slli_epi16(h, 4)
        : i == 1 ? _mm256_slli_epi16(h, 2)
        : i == 2 ? h
                 : _mm256_srli_epi16(h, 2);
    return _mm256_or_si256(_mm256_and_si256(l, _mm256_set1_epi8(0x0f)),
                           _mm256_and_si256(h, _mm256_set1_epi8(0x30)));
}

/* Q6_K: two maddubs per int16 sum; elements 0-15 of group g take scale 2g,
 * 16-31 scale 2g + 1. The offset 32 goes through the bsums with the scales.
 * The loop runs over (h, pair of j) with the 4 groups of h unrolled inside. */
static ALWAYS_INLINE void pk_q6_K_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                     float *res, const int nc) {
    /* int16 pair (a, b) of each lane -> (a, a) / (b, b) */
    const __m256i dup0 = _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13, 0, 1,
                                          0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
    const __m256i dup1 = _mm256_setr_epi8(2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15, 2,
                                          3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15);
    __m256 acc[SW_CPU_MAX_COLS];
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / SW_QK_K; b++) {
        const uint8_t *u = w + (size_t)b * Q6K_UNIT;
        prefetch_unit_staged(u, Q6K_UNIT, nc);
        __m256i isum[SW_CPU_MAX_COLS], corr[SW_CPU_MAX_COLS], sc[16];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < nc; c++)
            isum[c] = corr[c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8")
        for (int g = 0; g < 8; g++) {
            /* lane r = (scale 2g, scale 2g + 1) of row r, as int16 */
            const uint8_t *sg = u + 8 * SW_PK_Q6K_SCALES + 16 * g;
            __m256i sp = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sg));
            sc[2 * g] = _mm256_shuffle_epi8(sp, dup0);
            sc[2 * g + 1] = _mm256_shuffle_epi8(sp, dup1);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < nc; c++)
                corr[c] = _mm256_add_epi32(
                    corr[c], _mm256_madd_epi16(sp, bcast32(XQ8K(x, xs, c)[b].bsums + 2 * g)));
        }
        _Pragma("GCC unroll 1")
        for (int hj = 0; hj < 8; hj++) {
            int h = hj / 4, jj = hj % 4; /* elements 8jj..8jj+7 of groups 4h..4h+3 */
            const uint8_t *v = u + 8 * SW_PK_Q6K_Q + 96 * (8 * h + 2 * jj);
            _Pragma("GCC unroll 4")
            for (int i = 0; i < 4; i++) {
                int g = 4 * h + i;
                __m256i q0 = q6_codes(v, i), q1 = q6_codes(v + 96, i), s16 = sc[2 * g + jj / 2];
                _Pragma("GCC unroll 4")
                for (int c = 0; c < nc; c++) {
                    const int8_t *xq = XQ8K(x, xs, c)[b].qs + 32 * g + 8 * jj;
                    __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(q0, bcast32(xq)),
                                                 _mm256_maddubs_epi16(q1, bcast32(xq + 4)));
                    KEEP_SUM(s);
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s, s16));
                }
            }
        }
        __m256 d = ld_f16x8(u);
        finish_block(d, _mm256_mul_ps(d, _mm256_set1_ps(32.0f)), x, xs, b, isum, corr, acc, nc);
    }
    _Pragma("GCC unroll 4")
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(res + 8 * c, acc[c]);
}
SW_CPU_PK_INSTANTIATE(q6_K)
