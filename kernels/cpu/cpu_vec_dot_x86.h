/* cpu_vec_dot_x86.h — the plain-row matmul kernels of the 256-bit x86 kernel
 * sets, written once and compiled per set: cpu_vec_dot_avx2.c (AVX2 + FMA +
 * F16C), cpu_vec_dot_avxvnni.c (+ AVX-VNNI) and cpu_vec_dot_avx512.c (+
 * AVX-512 VL/VNNI, EVEX encodings). The includer defines
 *   SW_X86_DPBUSD(acc, u, s)  acc + the sums of 4 u8 x s8 products per int32
 *   SW_X86_DPWSSD(acc, a, b)  acc + the sums of 2 s16 x s16 products per int32
 *   SW_X86_DOT_LOOKUP         the name of its type -> kernel lookup
 * (AVX2 builds them from maddubs / madd / add: the same exact integer sums;
 * no int16 intermediate can saturate, see below).
 *
 * Integer kernels: weights are unpacked to bytes in registers, and the u8 x
 * s8 dot products (maddubs + madd, or VPDPBUSD) form the block sums, with the
 * sub-block scale as the int16 operand of madd / VPDPWSSD where there is one.
 * One operand must be unsigned: unsigned weight codes are used as is, with
 * the offset moved to the activation block sums (Q4_0/Q4_1/Q5_0/Q5_1 via s,
 * Q2_K..Q6_K via bsums); only Q8_0 is signed and uses |w| and sign(x, w).
 * Activation quants are within [-127, 127], so no int16 pair sum can
 * saturate (worst 2 * 128 * 127 for Q8_0 weights).
 *
 * Each kernel is written once for a compile-time column count nc (1..4) and
 * instantiated four times, so that the per-column accumulators stay in
 * registers: the weight block is unpacked once and reused for every column. */
#ifndef SW_X86_DPBUSD
#error "define SW_X86_DPBUSD, SW_X86_DPWSSD and SW_X86_DOT_LOOKUP before including cpu_vec_dot_x86.h"
#endif

#include <immintrin.h>

#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static ALWAYS_INLINE float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

/* Sum of u8 x s8 products in groups of 4 bytes -> 8 x s32. */
static ALWAYS_INLINE __m256i dot_us(__m256i u, __m256i s) {
    return SW_X86_DPBUSD(_mm256_setzero_si256(), u, s);
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles, then high nibbles. */
static ALWAYS_INLINE __m256i nibbles(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

/* 32 bits -> 32 bytes, 0xff where the bit is set (byte j <- bit j). */
static ALWAYS_INLINE __m256i bits_to_bytes(uint32_t bits) {
    __m256i v = _mm256_set1_epi32((int)bits);
    /* byte j takes source byte j / 8 of the 32-bit word */
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0x0000000000000000LL);
    v = _mm256_shuffle_epi8(v, shuf);
    const __m256i sel = _mm256_set1_epi64x(0x8040201008040201LL); /* bit j % 8 */
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

static ALWAYS_INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Bit `bit` of every byte of v moved to bit `pos` (others cleared); bit and
 * pos are constants once the group loops are unrolled. A 16-bit shift moves
 * each byte's own bit into place, and the mask drops what crossed bytes. */
static ALWAYS_INLINE __m256i bit_to(__m256i v, int bit, int pos) {
    __m256i t = bit >= pos ? _mm256_srli_epi16(v, bit - pos) : _mm256_slli_epi16(v, pos - bit);
    return _mm256_and_si256(t, _mm256_set1_epi8((char)(1 << pos)));
}

#define XQ8(x, xs, c) ((const sw_cpu_q8 *)((const uint8_t *)(x) + (size_t)(c) * (xs)))
#define XQ8K(x, xs, c) ((const sw_block_q8_K *)((const uint8_t *)(x) + (size_t)(c) * (xs)))

#define INSTANTIATE(name) SW_CPU_INSTANTIATE_NC(name, const void *)

/* ---------------------------------------------------------- float weights -- */

/* 8 weights as f32 from each float type. */
static ALWAYS_INLINE __m256 ld_f32(const float *p) {
    return _mm256_loadu_ps(p);
}
static ALWAYS_INLINE __m256 ld_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static ALWAYS_INLINE __m256 ld_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
#define SC_F32(v) (v)

/* Two accumulators per column hide the FMA latency when nc is small. */
#define FLOAT_KERNEL(name, WT, LOAD, CONV)                                                         \
    static ALWAYS_INLINE void name##_nc(int64_t k, const void *w, const void *x, size_t xs,        \
                                        float *res, const int nc) {                                \
        const WT *wr = w;                                                                          \
        const float *xc[SW_CPU_MAX_COLS];                                                          \
        __m256 a0[SW_CPU_MAX_COLS], a1[SW_CPU_MAX_COLS];                                           \
        for (int c = 0; c < nc; c++) {                                                             \
            xc[c] = (const float *)((const uint8_t *)x + (size_t)c * xs);                          \
            a0[c] = a1[c] = _mm256_setzero_ps();                                                   \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= k; i += 16) {                                                             \
            __m256 w0 = LOAD(wr + i), w1 = LOAD(wr + i + 8);                                       \
            for (int c = 0; c < nc; c++) {                                                         \
                a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xc[c] + i), a0[c]);                    \
                a1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xc[c] + i + 8), a1[c]);                \
            }                                                                                      \
        }                                                                                          \
        for (; i + 8 <= k; i += 8) {                                                               \
            __m256 w0 = LOAD(wr + i);                                                              \
            for (int c = 0; c < nc; c++)                                                           \
                a0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xc[c] + i), a0[c]);                    \
        }                                                                                          \
        for (int c = 0; c < nc; c++) {                                                             \
            float s = hsum_ps(_mm256_add_ps(a0[c], a1[c]));                                        \
            for (int64_t j = i; j < k; j++)                                                        \
                s += CONV(wr[j]) * xc[c][j];                                                       \
            res[c] = s;                                                                            \
        }                                                                                          \
    }                                                                                              \
    INSTANTIATE(name)

FLOAT_KERNEL(dot_f32, float, ld_f32, SC_F32)
FLOAT_KERNEL(dot_f16, uint16_t, ld_f16, sw_cpu_f16_to_f32)
FLOAT_KERNEL(dot_bf16, uint16_t, ld_bf16, sw_cpu_bf16_to_f32)

/* ------------------------------------------------------ 32-element blocks -- */

/* The 32-element kernels alternate between two sets of accumulators on even
 * and odd blocks: with one column a block has only one FMA into its
 * accumulator, and a single chain would wait on the FMA latency every block
 * (measured: ~5 cycles per block, half the throughput). */
#define BLOCK32_DRIVER(name)                                                                       \
    static ALWAYS_INLINE void name##_nc(int64_t k, const void *w, const void *x, size_t xs,        \
                                        float *res, const int nc) {                                \
        __m256 a0[SW_CPU_MAX_COLS], a1[SW_CPU_MAX_COLS];                                           \
        float m0[SW_CPU_MAX_COLS], m1[SW_CPU_MAX_COLS];                                            \
        for (int c = 0; c < nc; c++) {                                                             \
            a0[c] = a1[c] = _mm256_setzero_ps();                                                   \
            m0[c] = m1[c] = 0.0f;                                                                  \
        }                                                                                          \
        int64_t nb = k / 32, b = 0;                                                                \
        for (; b + 2 <= nb; b += 2) {                                                              \
            name##_blk(w, b, x, xs, nc, a0, m0);                                                   \
            name##_blk(w, b + 1, x, xs, nc, a1, m1);                                               \
        }                                                                                          \
        if (b < nb) name##_blk(w, b, x, xs, nc, a0, m0);                                           \
        for (int c = 0; c < nc; c++)                                                               \
            res[c] = hsum_ps(_mm256_add_ps(a0[c], a1[c])) + (m0[c] + m1[c]);                       \
    }                                                                                              \
    INSTANTIATE(name)

/* Symmetric types: q = signed codes; out += dw * dx * sum(q * qx). */
#define SYM32_KERNEL(name, BT, UNPACK)                                                             \
    static ALWAYS_INLINE void name##_blk(const void *w, int64_t b, const void *x, size_t xs,       \
                                         const int nc, __m256 *acc, float *macc) {                 \
        (void)macc;                                                                                \
        const BT *wb = (const BT *)w + b;                                                          \
        __m256i q = UNPACK(wb);                                                                    \
        __m256i aq = _mm256_sign_epi8(q, q);                                                       \
        float dw = f16(wb->d);                                                                     \
        for (int c = 0; c < nc; c++) {                                                             \
            const sw_cpu_q8 *xb = XQ8(x, xs, c) + b;                                               \
            __m256i y = _mm256_loadu_si256((const __m256i *)xb->qs);                               \
            __m256i p = dot_us(aq, _mm256_sign_epi8(y, q));                                        \
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb->d), _mm256_cvtepi32_ps(p), acc[c]);   \
        }                                                                                          \
    }                                                                                              \
    BLOCK32_DRIVER(name)

/* Offset types: u = unsigned codes, w = dw u + m; out += dw dx sum(u qx) + m s
 * with s = dx sum(qx). Q4_0 and Q5_0 are also run this way, as codes with
 * m = -8 dw / -16 dw: unsigned codes go straight into maddubs, saving the
 * subtract and the two sign operations per block. */
#define OFF32_KERNEL(name, BT, UNPACK, MEXPR)                                                      \
    static ALWAYS_INLINE void name##_blk(const void *w, int64_t b, const void *x, size_t xs,       \
                                         const int nc, __m256 *acc, float *macc) {                 \
        const BT *wb = (const BT *)w + b;                                                          \
        __m256i u = UNPACK(wb);                                                                    \
        float dw = f16(wb->d), mw = MEXPR(wb, dw);                                                 \
        for (int c = 0; c < nc; c++) {                                                             \
            const sw_cpu_q8 *xb = XQ8(x, xs, c) + b;                                               \
            __m256i y = _mm256_loadu_si256((const __m256i *)xb->qs);                               \
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb->d), _mm256_cvtepi32_ps(dot_us(u, y)), \
                                     acc[c]);                                                      \
            macc[c] += mw * xb->s;                                                                 \
        }                                                                                          \
    }                                                                                              \
    BLOCK32_DRIVER(name)

static ALWAYS_INLINE __m256i unpack_q4_0(const sw_block_q4_0 *b) {
    return nibbles(b->qs);
}
static ALWAYS_INLINE __m256i unpack_q4_1(const sw_block_q4_1 *b) {
    return nibbles(b->qs);
}
/* 5th bit j of qh -> 16 on byte j */
static ALWAYS_INLINE __m256i fifth_bits(const uint8_t *qh) {
    return _mm256_and_si256(bits_to_bytes(load_u32(qh)), _mm256_set1_epi8(16));
}
static ALWAYS_INLINE __m256i unpack_q5_0(const sw_block_q5_0 *b) {
    return _mm256_or_si256(nibbles(b->qs), fifth_bits(b->qh));
}
static ALWAYS_INLINE __m256i unpack_q5_1(const sw_block_q5_1 *b) {
    return _mm256_or_si256(nibbles(b->qs), fifth_bits(b->qh));
}
static ALWAYS_INLINE __m256i unpack_q8_0(const sw_block_q8_0 *b) {
    return _mm256_loadu_si256((const __m256i *)b->qs);
}
#define M_Q4_0(b, dw) (-8.0f * (dw))
#define M_Q5_0(b, dw) (-16.0f * (dw))
#define M_FIELD(b, dw) f16((b)->m)

OFF32_KERNEL(dot_q4_0, sw_block_q4_0, unpack_q4_0, M_Q4_0)
OFF32_KERNEL(dot_q4_1, sw_block_q4_1, unpack_q4_1, M_FIELD)
OFF32_KERNEL(dot_q5_0, sw_block_q5_0, unpack_q5_0, M_Q5_0)
OFF32_KERNEL(dot_q5_1, sw_block_q5_1, unpack_q5_1, M_FIELD)
SYM32_KERNEL(dot_q8_0, sw_block_q8_0, unpack_q8_0)

/* ---------------------------------------------------------------- K-quants -- */

/* Every K-quant super-block is handled as 8 groups of 32 unsigned codes u_g,
 * each with an int16 scale vector s_g (one scale per 16-element half), plus
 * one per-16 correction against the activation's bsums:
 *   out += dx * (d * sum_g s_g . (u_g qx)  +  cf * sum_i cv_i bsum_i)
 * where (cv, cf) = (mins, -dmin) for Q2_K/Q4_K/Q5_K and (scales, -off * d)
 * for the offset codes of Q3_K (off 4) and Q6_K (off 32). A type provides a
 * PREP (scalar scale decoding, loads shared by its groups) and a GROUP(g)
 * producing u_g and s_g in registers; the column loop is shared. */
typedef struct {
    int8_t sc[16];      /* per-32 scales (Q4_K, Q5_K: first 8) */
    __m256i s_lo, s_hi; /* per-16 scales as int16, sub-blocks 0-7 / 8-15 in both lanes */
    __m256i cv;         /* per-16 correction coefficients, int16 */
    float d, cf;
    __m256i aux; /* a vector the groups share (qh, hmask) */
} kprep;

/* For the types with a scale per 16: keep the 16 int16 scales as two
 * lane-broadcast halves, from which pair_scales() cuts group g's vector
 * (scale 2g on the low 16 bytes, 2g + 1 on the high) with one shuffle. */
static ALWAYS_INLINE void set_scales16(kprep *kp, __m256i s16) {
    kp->s_lo = _mm256_permute2x128_si256(s16, s16, 0x00);
    kp->s_hi = _mm256_permute2x128_si256(s16, s16, 0x11);
}
static ALWAYS_INLINE __m256i pair_scales(const kprep *kp, int g) {
    int j = g % 4; /* int16 elements 2j (low lane) and 2j + 1 (high lane) */
    __m256i ctrl = _mm256_set_m128i(_mm_set1_epi16((short)(((4 * j + 3) << 8) | (4 * j + 2))),
                                    _mm_set1_epi16((short)(((4 * j + 1) << 8) | (4 * j))));
    return _mm256_shuffle_epi8(g < 4 ? kp->s_lo : kp->s_hi, ctrl);
}

#define KQUANT_KERNEL(name, BT, PREP, GROUP)                                                       \
    static ALWAYS_INLINE void name##_nc(int64_t k, const void *w, const void *x, size_t xs,        \
                                        float *res, const int nc) {                                \
        const BT *wb = w;                                                                          \
        __m256 acc[SW_CPU_MAX_COLS];                                                               \
        for (int c = 0; c < nc; c++)                                                               \
            acc[c] = _mm256_setzero_ps();                                                          \
        for (int64_t b = 0; b < k / SW_QK_K; b++) {                                                \
            kprep kp;                                                                              \
            PREP(&wb[b], &kp);                                                                     \
            __m256i isum[SW_CPU_MAX_COLS];                                                         \
            for (int c = 0; c < nc; c++)                                                           \
                isum[c] = _mm256_setzero_si256();                                                  \
            _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) {                                  \
                __m256i u, s;                                                                      \
                GROUP(&wb[b], &kp, g, &u, &s);                                                     \
                for (int c = 0; c < nc; c++) {                                                     \
                    __m256i y =                                                                    \
                        _mm256_loadu_si256((const __m256i *)(XQ8K(x, xs, c)[b].qs + 32 * g));      \
                    isum[c] = SW_X86_DPWSSD(isum[c], _mm256_maddubs_epi16(u, y), s);               \
                }                                                                                  \
            }                                                                                      \
            for (int c = 0; c < nc; c++) {                                                         \
                const sw_block_q8_K *xb = XQ8K(x, xs, c) + b;                                      \
                __m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);                       \
                __m256i corr = _mm256_madd_epi16(bs, kp.cv);                                       \
                acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(kp.d * xb->d),                             \
                                         _mm256_cvtepi32_ps(isum[c]), acc[c]);                     \
                acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(kp.cf * xb->d), _mm256_cvtepi32_ps(corr),  \
                                         acc[c]);                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int c = 0; c < nc; c++)                                                               \
            res[c] = hsum_ps(acc[c]);                                                              \
    }                                                                                              \
    INSTANTIATE(name)

/* Scales are decoded with whole-word masks into byte vectors and widened
 * with one instruction: writing 16 int16 one by one and reading them back as a
 * vector would stall on store forwarding in every block. */
static ALWAYS_INLINE uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
/* int16 x 16 from 16 bytes (signed / unsigned) */
static ALWAYS_INLINE __m256i widen_s8(__m128i v) {
    return _mm256_cvtepi8_epi16(v);
}
static ALWAYS_INLINE __m256i widen_u8(__m128i v) {
    return _mm256_cvtepu8_epi16(v);
}

/* Q2_K: group g = 4h + s is bits 2s..2s+1 of qs[32h .. 32h+31]; scales[i] has
 * the scale in its low nibble and the min in its high nibble */
static ALWAYS_INLINE void prep_q2_K(const sw_block_q2_K *b, kprep *kp) {
    __m128i raw = _mm_loadu_si128((const __m128i *)b->scales);
    __m128i m4 = _mm_set1_epi8(0x0f);
    set_scales16(kp, widen_u8(_mm_and_si128(raw, m4)));
    kp->cv = widen_u8(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    kp->d = f16(b->d);
    kp->cf = -f16(b->dmin);
}
static ALWAYS_INLINE void group_q2_K(const sw_block_q2_K *b, const kprep *kp, int g, __m256i *u,
                                     __m256i *s) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (g / 4)));
    *u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (g % 4)), _mm256_set1_epi8(3));
    *s = pair_scales(kp, g);
}

/* Q3_K: 16 6-bit scales (offset 32): low 4 bits in the nibbles of scales[0..7]
 * (scales 0-7 low nibbles, 8-15 high nibbles), high 2 bits in the 2-bit fields
 * of scales[8..11] (field f of byte 8 + i % 4 for scale i = 4f + i % 4).
 * Code = low 2 bits (as Q2_K) + 4 * bit g of hmask[l], in [0, 7]; weight =
 * code - 4. */
static ALWAYS_INLINE void prep_q3_K(const sw_block_q3_K *b, kprep *kp) {
    uint32_t a = rd32(b->scales), c4 = rd32(b->scales + 4), h = rd32(b->scales + 8);
    const uint32_t lo = 0x0f0f0f0fu, m2 = 0x03030303u;
    /* built in registers: four 32-bit stores read back as one vector would
     * miss store-to-load forwarding */
    __m128i w = _mm_set_epi32((int)(((c4 >> 4) & lo) | (((h >> 6) & m2) << 4)),
                              (int)(((a >> 4) & lo) | (((h >> 4) & m2) << 4)),
                              (int)((c4 & lo) | (((h >> 2) & m2) << 4)),
                              (int)((a & lo) | (((h >> 0) & m2) << 4)));
    __m128i v = _mm_sub_epi8(w, _mm_set1_epi8(32));
    kp->cv = widen_s8(v);
    set_scales16(kp, kp->cv);
    kp->d = f16(b->d);
    kp->cf = -4.0f * kp->d;
    kp->aux = _mm256_loadu_si256((const __m256i *)b->hmask);
}
static ALWAYS_INLINE void group_q3_K(const sw_block_q3_K *b, const kprep *kp, int g, __m256i *u,
                                     __m256i *s) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (g / 4)));
    __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (g % 4)), _mm256_set1_epi8(3));
    *u = _mm256_or_si256(lo, bit_to(kp->aux, g, 2));
    *s = pair_scales(kp, g);
}

/* Q4_K / Q5_K scales[12]: 8 6-bit scales and 8 6-bit mins. Words a, b, c =
 * bytes 0-3, 4-7, 8-11: scales 0-3 = a & 63, mins 0-3 = b & 63; scales 4-7 =
 * low nibbles of c with the top 2 bits of a as bits 4-5, mins 4-7 = high
 * nibbles of c with the top 2 bits of b. One scale and min per group of 32. */
static ALWAYS_INLINE void prep_k4_scales(const uint8_t *s, kprep *kp) {
    uint32_t a = rd32(s), b = rd32(s + 4), c = rd32(s + 8);
    const uint32_t m6 = 0x3f3f3f3fu, lo = 0x0f0f0f0fu, m2 = 0x03030303u;
    __m128i v = _mm_set_epi32((int)(((c >> 4) & lo) | (((b >> 6) & m2) << 4)), /* mins 4-7 */
                              (int)(b & m6),                                   /* mins 0-3 */
                              (int)((c & lo) | (((a >> 6) & m2) << 4)),        /* scales 4-7 */
                              (int)(a & m6));                                  /* scales 0-3 */
    _mm_storeu_si128((__m128i *)kp->sc, v); /* sc[0..7] = scales */
    /* mins, each repeated for the two 16-element halves of its group */
    __m128i mins = _mm_unpackhi_epi64(v, v);
    kp->cv = widen_u8(_mm_unpacklo_epi8(mins, mins));
}
static ALWAYS_INLINE void prep_q4_K(const sw_block_q4_K *b, kprep *kp) {
    prep_k4_scales(b->scales, kp);
    kp->d = f16(b->d);
    kp->cf = -f16(b->dmin);
}
/* group 2p is the low nibbles of qs[32p ..], 2p+1 the high nibbles */
static ALWAYS_INLINE __m256i nib_group(const uint8_t *qs, int g) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (g / 2)));
    if (g % 2) q = _mm256_srli_epi16(q, 4);
    return _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
}
static ALWAYS_INLINE void group_q4_K(const sw_block_q4_K *b, const kprep *kp, int g, __m256i *u,
                                     __m256i *s) {
    *u = nib_group(b->qs, g);
    *s = _mm256_set1_epi16(kp->sc[g]);
}

/* Q5_K: Q4_K plus a 5th bit, bit g of qh[l] */
static ALWAYS_INLINE void prep_q5_K(const sw_block_q5_K *b, kprep *kp) {
    prep_k4_scales(b->scales, kp);
    kp->d = f16(b->d);
    kp->cf = -f16(b->dmin);
    kp->aux = _mm256_loadu_si256((const __m256i *)b->qh);
}
static ALWAYS_INLINE void group_q5_K(const sw_block_q5_K *b, const kprep *kp, int g, __m256i *u,
                                     __m256i *s) {
    *u = _mm256_or_si256(nib_group(b->qs, g), bit_to(kp->aux, g, 4));
    *s = _mm256_set1_epi16(kp->sc[g]);
}

/* Q6_K: per half h (groups 4h..4h+3): group 4h + j takes the low (j < 2) or
 * high (j >= 2) nibbles of ql[64h + 32 (j & 1) ..] and bits 2j..2j+1 of
 * qh[32h + l] as bits 4-5; code in [0, 63], weight = code - 32 */
static ALWAYS_INLINE void prep_q6_K(const sw_block_q6_K *b, kprep *kp) {
    __m128i v = _mm_loadu_si128((const __m128i *)b->scales);
    kp->cv = widen_s8(v);
    set_scales16(kp, kp->cv);
    kp->d = f16(b->d);
    kp->cf = -32.0f * kp->d;
}
static ALWAYS_INLINE void group_q6_K(const sw_block_q6_K *b, const kprep *kp, int g, __m256i *u,
                                     __m256i *s) {
    int h = g / 4, j = g % 4;
    __m256i l = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (j & 1)));
    if (j >= 2) l = _mm256_srli_epi16(l, 4);
    l = _mm256_and_si256(l, _mm256_set1_epi8(0x0f));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    /* bits 2j..2j+1 of qh moved to bits 4..5 */
    __m256i hb = 2 * j >= 4 ? _mm256_srli_epi16(qh, 2 * j - 4) : _mm256_slli_epi16(qh, 4 - 2 * j);
    hb = _mm256_and_si256(hb, _mm256_set1_epi8(0x30));
    *u = _mm256_or_si256(l, hb);
    *s = pair_scales(kp, g);
}

KQUANT_KERNEL(dot_q2_K, sw_block_q2_K, prep_q2_K, group_q2_K)
KQUANT_KERNEL(dot_q3_K, sw_block_q3_K, prep_q3_K, group_q3_K)
KQUANT_KERNEL(dot_q4_K, sw_block_q4_K, prep_q4_K, group_q4_K)
KQUANT_KERNEL(dot_q5_K, sw_block_q5_K, prep_q5_K, group_q5_K)
KQUANT_KERNEL(dot_q6_K, sw_block_q6_K, prep_q6_K, group_q6_K)

sw_cpu_dot_fn SW_X86_DOT_LOOKUP(sw_type t) { SW_CPU_DOT_LOOKUP(t) }
