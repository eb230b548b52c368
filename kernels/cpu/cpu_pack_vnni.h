/* cpu_pack_vnni.h — matmul kernels for the packed R-row layout of cpu_pack.c
 * built on VPDPBUSD (u8 x s8 products, 4 per 32-bit lane, added into int32),
 * written once over a vector of R 32-bit lanes and compiled per kernel set:
 *   cpu_pack_avx512.c   R = 16, zmm, AVX-512 VNNI (EVEX)
 *   cpu_pack_avxvnni.c  R = 8,  ymm, AVX-VNNI (VEX)
 * The includer defines PK_R, the vector types vi / vf and the VI_ / VF_
 * operations below, and PK_LOOKUP, the name of its type -> kernel lookup.
 * One call computes a group of R weight rows against nc <= PK_COLS activation
 * columns; lane r of every accumulator belongs to row r, so activations are
 * broadcast (straight from memory into the VPDPBUSD on AVX-512) and no
 * horizontal sums are needed.
 *
 * Integer sums are exact, as in the AVX2 kernels (cpu_pack_avx2.c), but
 * VPDPBUSD adds into int32 directly, so there are no int16 intermediates to
 * bound: one instruction per 4 elements x R rows where AVX2 needs maddubs,
 * an int16 add and (every few) a madd.
 *   Q4_0, Q5_0: isum = sum u qx - o sum(qx) (o = 8, 16; the activation
 *               block carries -o sum(qx), see sw_cpu_kernels.q8_offset_sum,
 *               and the sum starts there), out += dw dx isum.
 *   Q8_0:       codes w + 128 (w xor 0x80) are unsigned, o = 128, as above.
 *   Q4_1, Q5_1: out += dw dx sum(u qx) + m s, s = dx sum(qx).
 *   Q4_K, Q5_K: per group g of 32, sum u qx times the 6-bit scale in float
 *               (cvt + fma: a VPMULLD is two uops), the mins against the
 *               activation's bsums in int32 (VPDPWSSD);
 *               out += d dx sum_g sc_g isum_g - dmin dx corr.
 *   Q6_K:       per 16 elements sum u qx times the signed scale in float; the
 *               offset 32 through the bsums: out += d dx (sum - 32 corr).
 * The float steps round per group (at most 16 per 256 elements) instead of
 * once per block: well inside the tolerances of test_cpu_pack. */
#include <string.h>

#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define PK_V (4 * PK_R) /* bytes in one vector */

#define XQ8(x, xs, c) ((const sw_cpu_q8 *)((const uint8_t *)(x) + (size_t)(c) * (xs)))
#define XQ8K(x, xs, c) ((const sw_block_q8_K *)((const uint8_t *)(x) + (size_t)(c) * (xs)))

static ALWAYS_INLINE uint32_t pk_rd32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 4 bytes at p in every lane */
#define VI_BC32(p) VI_SET1_32((int)pk_rd32(p))
/* VPDPBUSD with the 4 bytes at p broadcast as its signed operand; the
 * includer may define it as one instruction with a memory broadcast */
#ifndef VI_DPBUSD_BC
#define VI_DPBUSD_BC(acc, u, p) VI_DPBUSD((acc), (u), VI_BC32(p))
#endif

/* Decode (one or two columns) is bound by the memory stream: ask for each
 * unit PF_AHEAD bytes ahead of its use, as the AVX2 kernels do (see
 * cpu_pack_avx2.h); with more columns the kernels are compute-bound. */
#define PF_AHEAD 8192
static ALWAYS_INLINE void pk_prefetch(const uint8_t *u, int bytes, const int nc) {
    if (nc > 2) return;
    for (int l = 0; l < bytes; l += 64)
        _mm_prefetch((const char *)u + PF_AHEAD + l, _MM_HINT_T0);
}
/* In two stages: into L2 PF_AHEAD bytes ahead, into L1 PF_NEAR bytes ahead
 * (see prefetch_unit_staged in cpu_pack_avx2.h, and what it measured). The
 * 32-element block types and the K-quants (Q4_K/Q5_K/Q6_K decode over 29-33
 * MB of flushed weights: 15 -> 17-18 GB/s with one thread, 29 -> 31-34 with
 * two, against a 37 GB/s read pass) use it. */
#define PF_NEAR 2048
static ALWAYS_INLINE void pk_prefetch_staged(const uint8_t *u, int bytes, const int nc) {
    if (nc > 2) return;
    for (int l = 0; l < bytes; l += 64) {
        _mm_prefetch((const char *)u + PF_AHEAD + l, _MM_HINT_T1);
        _mm_prefetch((const char *)u + PF_NEAR + l, _MM_HINT_T0);
    }
}

/* Byte j of each 32-bit lane zero-extended to the lane (pshufb control:
 * 0x80 selects zero), and byte j into both int16 halves of the lane. */
static ALWAYS_INLINE vi pk_byte_ctrl(int j) {
    const int z = (int)0x80808000;
    return VI_SET4_32(z | j, z | (4 + j), z | (8 + j), z | (12 + j));
}
static ALWAYS_INLINE vi pk_pair_ctrl(int j) {
    const int z = (int)0x80008000;
    return VI_SET4_32(z | j | j << 16, z | (4 + j) | (4 + j) << 16, z | (8 + j) | (8 + j) << 16,
                      z | (12 + j) | (12 + j) << 16);
}

/* ---------------------------------------------------------------- F32 -- */

/* [K][R] floats: per k one weight vector, one broadcast and FMA per column;
 * two accumulator sets (even and odd k) keep 2 nc FMA chains in flight. */
static ALWAYS_INLINE void pk_f32_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                    float *res, const int nc) {
    const float *g = (const float *)w;
    const float *xc[PK_COLS];
    vf a0[PK_COLS], a1[PK_COLS];
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++) {
        xc[c] = (const float *)((const uint8_t *)x + (size_t)c * xs);
        a0[c] = a1[c] = VF_ZERO;
    }
    int64_t k = 0;
    for (; k + 2 <= K; k += 2) {
        vf w0 = VF_LD(g + k * PK_R), w1 = VF_LD(g + (k + 1) * PK_R);
        _Pragma("GCC unroll 8")
        for (int c = 0; c < nc; c++) {
            a0[c] = VF_FMA(w0, VF_SET1(xc[c][k]), a0[c]);
            a1[c] = VF_FMA(w1, VF_SET1(xc[c][k + 1]), a1[c]);
        }
    }
    if (k < K) {
        vf w0 = VF_LD(g + k * PK_R);
        _Pragma("GCC unroll 8")
        for (int c = 0; c < nc; c++)
            a0[c] = VF_FMA(w0, VF_SET1(xc[c][k]), a0[c]);
    }
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++)
        VF_ST(res + PK_R * c, VF_ADD(a0[c], a1[c]));
}

/* ------------------------------------------------- 32-element blocks -- */

/* Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (has_m: an f16 m per block; five: a 5th bit;
 * q8: 8 vectors of signed bytes). Code vector j holds elements pos(j) ..
 * pos(j) + 3 of every row: 4j (q8 and the low nibbles), 16 + 4(j - 4) for
 * the high nibbles. The columns' integer sums run side by side (one chain per
 * column, interleaved): a column's 9 dependent VPDPBUSDs in a row would wait
 * on each other's latency. */
static ALWAYS_INLINE vi pk_b32_codes(const uint8_t *u, int qs_off, int j, const bool five,
                                     const bool q8) {
    if (q8) return VI_XOR(VI_LD(u + qs_off + PK_V * j), VI_SET1_8((char)0x80));
    vi v = VI_LD(u + qs_off + PK_V * (j % 4));
    if (j >= 4) v = VI_SRLI16(v, 4);
    v = VI_AND(v, VI_SET1_8(0x0f));
    if (five) { /* to bit 4: bit j for the low codes, bit 4 + (j - 4) = j for the high */
        vi h = VI_LD(u + qs_off + 4 * PK_V);
        h = j < 4 ? VI_SLLI16(h, 4 - j) : j == 4 ? h : VI_SRLI16(h, j - 4);
        v = VI_OR(v, VI_AND(h, VI_SET1_8(0x10)));
    }
    return v;
}

static ALWAYS_INLINE void pk_b32_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                    float *res, const int nc, const bool has_m, const bool five,
                                    const bool q8) {
    const int nq = q8 ? 8 : 4, qs_off = (has_m ? 4 : 2) * PK_R;
    const int unit = qs_off + nq * PK_V + (five ? PK_V : 0);
    vf acc[PK_COLS];
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++)
        acc[c] = VF_ZERO;
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *u = w + (size_t)b * unit;
        pk_prefetch_staged(u, unit, nc);
        vi is[PK_COLS];
        _Pragma("GCC unroll 8")
        for (int c = 0; c < nc; c++) /* -o sum(qx), see q8_offset_sum */
            is[c] = has_m ? VI_ZERO : VI_BC32(&XQ8(x, xs, c)[b].sum);
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) {
            vi q = pk_b32_codes(u, qs_off, j, five, q8);
            int pos = q8 || j < 4 ? 4 * j : 16 + 4 * (j - 4);
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                is[c] = VI_DPBUSD_BC(is[c], q, XQ8(x, xs, c)[b].qs + pos);
        }
        vf dw = VF_LDF16(u), mw = has_m ? VF_LDF16(u + 2 * PK_R) : VF_ZERO;
        _Pragma("GCC unroll 8")
        for (int c = 0; c < nc; c++) {
            const sw_cpu_q8 *xb = XQ8(x, xs, c) + b;
            acc[c] = VF_FMA(VF_MUL(dw, VF_SET1(xb->d)), VF_CVT(is[c]), acc[c]);
            if (has_m) acc[c] = VF_FMA(mw, VF_SET1(xb->s), acc[c]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++)
        VF_ST(res + PK_R * c, acc[c]);
}

/* ------------------------------------------------------------ K-quants -- */

/* The K4 scales and mins (Ls, Lm, H of cpu_pack.c) -> byte vectors with lane
 * r = sc[r][0..3] (s[0]), sc[r][4..7] (s[1]), m[r][0..3] (m[0]), m[r][4..7]
 * (m[1]). The 16-bit shifts move bits across bytes; the masks keep only each
 * byte's own. */
static ALWAYS_INLINE void pk_k4_decode(const uint8_t *p, vi s[2], vi m[2]) {
    const vi m4 = VI_SET1_8(0x0f), m30 = VI_SET1_8(0x30);
    vi ls = VI_LD(p), lm = VI_LD(p + PK_V), h = VI_LD(p + 2 * PK_V);
    s[0] = VI_OR(VI_AND(ls, m4), VI_AND(VI_SLLI16(h, 4), m30));
    s[1] = VI_OR(VI_AND(VI_SRLI16(ls, 4), m4), VI_AND(VI_SLLI16(h, 2), m30));
    m[0] = VI_OR(VI_AND(lm, m4), VI_AND(h, m30));
    m[1] = VI_OR(VI_AND(VI_SRLI16(lm, 4), m4), VI_AND(VI_SRLI16(h, 2), m30));
}

/* The K-quant kernels keep their per-column accumulators in res between
 * super-blocks (one load and store per column and block): the registers go to
 * two sets of integer chains and the float sums of the block. */
static ALWAYS_INLINE void pk_k_zero(float *res, const int nc) {
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++)
        VF_ST(res + PK_R * c, VF_ZERO);
}

/* res[c] -= (dm dx) corr[c], the correction of the block's mins or offset */
static ALWAYS_INLINE void pk_k_corr(vf dm, const void *x, size_t xs, int64_t b, const vi *corr,
                                    float *res, const int nc) {
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++) {
        vf dx = VF_SET1(XQ8K(x, xs, c)[b].d);
        VF_ST(res + PK_R * c, VF_FNMA(VF_MUL(dm, dx), VF_CVT(corr[c]), VF_LD(res + PK_R * c)));
    }
}

/* res[c] += (d dx) fs[c], the block's end */
static ALWAYS_INLINE void pk_k_finish(vf d, const void *x, size_t xs, int64_t b, const vf *fs,
                                      float *res, const int nc) {
    _Pragma("GCC unroll 8")
    for (int c = 0; c < nc; c++) {
        vf dx = VF_SET1(XQ8K(x, xs, c)[b].d);
        VF_ST(res + PK_R * c, VF_FMA(VF_MUL(d, dx), fs[c], VF_LD(res + PK_R * c)));
    }
}

/* Q4_K and Q5_K (five). Groups 2p (low nibbles) and 2p + 1 (high nibbles)
 * share qs vectors 8p .. 8p + 7 (vector 8p + j: elements 4j .. 4j + 3 of
 * both) and run as two sets of chains side by side; Q5_K's 5th bits come
 * from the qh vector of (p, half = j / 4), bit 2 (j % 4) + odd. */
static ALWAYS_INLINE void pk_k4_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                   float *res, const int nc, const bool five) {
    const int unit = PK_R * (int)(five ? sizeof(sw_block_q5_K) : sizeof(sw_block_q4_K));
    pk_k_zero(res, nc);
    for (int64_t b = 0; b < K / SW_QK_K; b++) {
        const uint8_t *u = w + (size_t)b * unit;
        pk_prefetch_staged(u, unit, nc);
        vi sv[2], mv[2];
        pk_k4_decode(u + PK_R * SW_PK_K4_SCALES, sv, mv);
        {
            /* corr[c] = sum_g m_g (bsum[2g] + bsum[2g + 1]) */
            vi corr[PK_COLS];
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                corr[c] = VI_ZERO;
            _Pragma("GCC unroll 8")
            for (int g = 0; g < 8; g++) {
                vi mn = VI_SHUF8(mv[g / 4], pk_pair_ctrl(g % 4));
                _Pragma("GCC unroll 8")
                for (int c = 0; c < nc; c++)
                    corr[c] = VI_DPWSSD(corr[c], mn, VI_BC32(XQ8K(x, xs, c)[b].bsums + 2 * g));
            }
            pk_k_corr(VF_LDF16(u + 2 * PK_R), x, xs, b, corr, res, nc);
        }
        /* the 8 scales as floats, made here where g is a constant: inside
         * the loop over p the shuffle controls would be built at run time */
        vf sf[8], fs[PK_COLS];
        _Pragma("GCC unroll 8")
        for (int g = 0; g < 8; g++)
            sf[g] = VF_CVT(VI_SHUF8(sv[g / 4], pk_byte_ctrl(g % 4)));
        _Pragma("GCC unroll 8")
        for (int c = 0; c < nc; c++)
            fs[c] = VF_ZERO;
        _Pragma("GCC unroll 1")
        for (int p = 0; p < 4; p++) {
            vi is0[PK_COLS], is1[PK_COLS];
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                is0[c] = is1[c] = VI_ZERO;
            _Pragma("GCC unroll 8")
            for (int j = 0; j < 8; j++) {
                vi v = VI_LD(u + PK_R * SW_PK_K4_QS + PK_V * (8 * p + j));
                vi q0 = VI_AND(v, VI_SET1_8(0x0f)), q1 = VI_AND(VI_SRLI16(v, 4), VI_SET1_8(0x0f));
                if (five) {
                    vi h = VI_LD(u + PK_R * SW_PK_Q5K_QH + 2 * PK_V * p + PK_V * (j / 4));
                    int bit = 2 * (j % 4); /* and bit + 1 for the high nibbles; -> bit 4 */
                    vi h0 = bit >= 4 ? VI_SRLI16(h, bit - 4) : VI_SLLI16(h, 4 - bit);
                    vi h1 = bit + 1 >= 4 ? VI_SRLI16(h, bit + 1 - 4) : VI_SLLI16(h, 3 - bit);
                    q0 = VI_OR(q0, VI_AND(h0, VI_SET1_8(0x10)));
                    q1 = VI_OR(q1, VI_AND(h1, VI_SET1_8(0x10)));
                }
                _Pragma("GCC unroll 8")
                for (int c = 0; c < nc; c++) {
                    const int8_t *xq = XQ8K(x, xs, c)[b].qs + 64 * p + 4 * j;
                    is0[c] = VI_DPBUSD_BC(is0[c], q0, xq);
                    is1[c] = VI_DPBUSD_BC(is1[c], q1, xq + 32);
                }
            }
            vf s0 = sf[2 * p], s1 = sf[2 * p + 1];
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                fs[c] = VF_FMA(s1, VF_CVT(is1[c]), VF_FMA(s0, VF_CVT(is0[c]), fs[c]));
        }
        pk_k_finish(VF_LDF16(u), x, xs, b, fs, res, nc);
    }
}

/* Q6_K: the codes of group 4h + i, elements 4j..4j+3 (v = the 3 vectors of
 * (h, j)): a nibble of one of the two ql vectors and bits 2i..2i+1 of the qh
 * vector moved to bits 4-5. */
static ALWAYS_INLINE vi pk_q6_codes(const uint8_t *v, int i) {
    vi l = VI_LD(v + PK_V * (i & 1));
    if (i >= 2) l = VI_SRLI16(l, 4);
    vi h = VI_LD(v + 2 * PK_V);
    h = i == 0 ? VI_SLLI16(h, 4) : i == 1 ? VI_SLLI16(h, 2) : i == 2 ? h : VI_SRLI16(h, 2);
    return VI_OR(VI_AND(l, VI_SET1_8(0x0f)), VI_AND(h, VI_SET1_8(0x30)));
}

/* Q6_K: elements 0-15 of group g take scale 2g, 16-31 scale 2g + 1 (signed
 * bytes, stored as int16 pairs per lane after cvt); the two halves run as
 * two sets of chains side by side. */
static ALWAYS_INLINE void pk_q6_K_nc(int64_t K, const uint8_t *w, const void *x, size_t xs,
                                     float *res, const int nc) {
    const int unit = PK_R * (int)sizeof(sw_block_q6_K);
    pk_k_zero(res, nc);
    for (int64_t b = 0; b < K / SW_QK_K; b++) {
        const uint8_t *u = w + (size_t)b * unit;
        pk_prefetch_staged(u, unit, nc);
        vf d = VF_LDF16(u);
        {
            vi corr[PK_COLS];
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                corr[c] = VI_ZERO;
            _Pragma("GCC unroll 8")
            for (int g = 0; g < 8; g++) {
                vi sp = VI_LD_S8_S16(u + PK_R * SW_PK_Q6K_SCALES + 2 * PK_R * g);
                _Pragma("GCC unroll 8")
                for (int c = 0; c < nc; c++)
                    corr[c] = VI_DPWSSD(corr[c], sp, VI_BC32(XQ8K(x, xs, c)[b].bsums + 2 * g));
            }
            pk_k_corr(VF_MUL(d, VF_SET1(32.0f)), x, xs, b, corr, res, nc);
        }
        vf fs[PK_COLS];
        _Pragma("GCC unroll 8")
        for (int c = 0; c < nc; c++)
            fs[c] = VF_ZERO;
        /* h runs as a loop, i unrolled: the code shifts of pk_q6_codes
         * depend on i and must be constants */
        _Pragma("GCC unroll 1")
        for (int h = 0; h < 2; h++)
        _Pragma("GCC unroll 4")
        for (int i = 0; i < 4; i++) {
            int g = 4 * h + i;
            const uint8_t *v = u + PK_R * SW_PK_Q6K_Q + 3 * PK_V * 8 * h;
            vi is0[PK_COLS], is1[PK_COLS];
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                is0[c] = is1[c] = VI_ZERO;
            _Pragma("GCC unroll 4")
            for (int j = 0; j < 4; j++) {
                vi q0 = pk_q6_codes(v + 3 * PK_V * j, i), q1 = pk_q6_codes(v + 3 * PK_V * (j + 4), i);
                _Pragma("GCC unroll 8")
                for (int c = 0; c < nc; c++) {
                    const int8_t *xq = XQ8K(x, xs, c)[b].qs + 32 * g + 4 * j;
                    is0[c] = VI_DPBUSD_BC(is0[c], q0, xq);
                    is1[c] = VI_DPBUSD_BC(is1[c], q1, xq + 16);
                }
            }
            /* the int16 scales of the two halves, sign-extended */
            vi sp = VI_LD_S8_S16(u + PK_R * SW_PK_Q6K_SCALES + 2 * PK_R * g);
            vf s0 = VF_CVT(VI_SRAI32(VI_SLLI32(sp, 16), 16)), s1 = VF_CVT(VI_SRAI32(sp, 16));
            _Pragma("GCC unroll 8")
            for (int c = 0; c < nc; c++)
                fs[c] = VF_FMA(s1, VF_CVT(is1[c]), VF_FMA(s0, VF_CVT(is0[c]), fs[c]));
        }
        pk_k_finish(d, x, xs, b, fs, res, nc);
    }
}

/* ------------------------------------------------------ instantiation -- */

/* pk_<t>_nc(k, w, x, xs, res, nc, ...) for a constant nc -> a static run-time
 * entry pk_<t> dispatching on nc, then the lookup. */
#define PK_ENTRY(t, ...)                                                                           \
    static void pk_##t(int64_t k, const uint8_t *w, const void *x, size_t xs, int nc,              \
                       float *res) {                                                               \
        switch (nc) {                                                                              \
        case 1: pk_##t##_base(k, w, x, xs, res, 1 __VA_ARGS__); break;                             \
        case 2: pk_##t##_base(k, w, x, xs, res, 2 __VA_ARGS__); break;                             \
        case 3: pk_##t##_base(k, w, x, xs, res, 3 __VA_ARGS__); break;                             \
        case 4: pk_##t##_base(k, w, x, xs, res, 4 __VA_ARGS__); break;                             \
        PK_MORE_COLS(t, __VA_ARGS__)                                                               \
        }                                                                                          \
    }
#if PK_COLS > 4
#define PK_MORE_COLS(t, ...)                                                                       \
    case 5: pk_##t##_base(k, w, x, xs, res, 5 __VA_ARGS__); break;                                 \
    case 6: pk_##t##_base(k, w, x, xs, res, 6 __VA_ARGS__); break;                                 \
    case 7: pk_##t##_base(k, w, x, xs, res, 7 __VA_ARGS__); break;                                 \
    default: pk_##t##_base(k, w, x, xs, res, 8 __VA_ARGS__); break;
#else
#define PK_MORE_COLS(t, ...)                                                                       \
    default: pk_##t##_base(k, w, x, xs, res, 4 __VA_ARGS__); break;
#endif

#define pk_f32_base pk_f32_nc
#define pk_q4_0_base pk_b32_nc
#define pk_q4_1_base pk_b32_nc
#define pk_q5_0_base pk_b32_nc
#define pk_q5_1_base pk_b32_nc
#define pk_q8_0_base pk_b32_nc
#define pk_q4_K_base pk_k4_nc
#define pk_q5_K_base pk_k4_nc
#define pk_q6_K_base pk_q6_K_nc
PK_ENTRY(f32)
PK_ENTRY(q4_0, , false, false, false)
PK_ENTRY(q4_1, , true, false, false)
PK_ENTRY(q5_0, , false, true, false)
PK_ENTRY(q5_1, , true, true, false)
PK_ENTRY(q8_0, , false, false, true)
PK_ENTRY(q4_K, , false)
PK_ENTRY(q5_K, , true)
PK_ENTRY(q6_K)

sw_cpu_pack_fn PK_LOOKUP(sw_type t) {
    switch (t) {
    case SW_TYPE_F32: return pk_f32;
    case SW_TYPE_Q4_0: return pk_q4_0;
    case SW_TYPE_Q4_1: return pk_q4_1;
    case SW_TYPE_Q5_0: return pk_q5_0;
    case SW_TYPE_Q5_1: return pk_q5_1;
    case SW_TYPE_Q8_0: return pk_q8_0;
    case SW_TYPE_Q4_K: return pk_q4_K;
    case SW_TYPE_Q5_K: return pk_q5_K;
    case SW_TYPE_Q6_K: return pk_q6_K;
    default: return NULL;
    }
}
