/* cpu_vec_dot.c — portable scalar matmul kernels (the fallback on CPUs without
 * AVX2, and an independent formulation the AVX2 kernels are tested against),
 * the 8-bit activation quantizers shared by both paths, and the type table.
 *
 * The scalar kernels unpack each weight block into plain integers (quants with
 * their offsets applied, per-16 scales and mins) and then do integer dot
 * products with the quantized activations, so they need no per-type SIMD
 * tricks: what they compute is exactly
 *   sum_blocks dx * (dw * sum_i sc_i * sum_j q_j qx_j  -  dmin * sum_i mn_i * bsum_i)
 * with the only rounding in the final float products and sums. */
#include "cpu_internal.h"

#include <pthread.h>

float sw_cpu_f16_table[65536];

static void fill_tables(void) {
    for (uint32_t h = 0; h < 65536; h++)
        sw_cpu_f16_table[h] = sw_cpu_f16_to_f32((uint16_t)h);
}

void sw_cpu_init_tables(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fill_tables);
}

/* ------------------------------------------------------------------ types -- */

bool sw_cpu_matmul_type(sw_type t, sw_cpu_act *act) {
    switch (t) {
    case SW_TYPE_F32:
    case SW_TYPE_F16:
    case SW_TYPE_BF16:
        *act = SW_CPU_ACT_F32;
        return true;
    case SW_TYPE_Q4_0:
    case SW_TYPE_Q4_1:
    case SW_TYPE_Q5_0:
    case SW_TYPE_Q5_1:
    case SW_TYPE_Q8_0:
        *act = SW_CPU_ACT_Q8;
        return true;
    case SW_TYPE_Q2_K:
    case SW_TYPE_Q3_K:
    case SW_TYPE_Q4_K:
    case SW_TYPE_Q5_K:
    case SW_TYPE_Q6_K:
        *act = SW_CPU_ACT_Q8K;
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------ quantizers -- */

/* Round to nearest even, as nearbyintf in the default rounding mode and as a
 * SIMD quantizer would, but inline: without SSE4.1 nearbyintf is a libm call
 * per element. Adding and subtracting 1.5 * 2^23 leaves the integer part in
 * the mantissa, rounded by the FPU; exact for |v| < 2^22 (ours are <= 127.5).
 * Scale amax/127 keeps every quant in [-127, 127]: -128 would break the sign
 * trick of the AVX2 kernels. */
static inline int8_t round_even_q8(float v) {
    const float magic = 12582912.0f; /* not folded: IEEE forbids (v + m) - m -> v */
    /* clamp first, in float: a NaN or inf input (a broken activation) then
     * gives a defined quant instead of an undefined float -> int conversion */
    if (!(v >= -127.0f)) v = -127.0f; /* comparisons, not fminf/fmaxf: those are */
    if (!(v <= 127.0f)) v = 127.0f;   /* libm calls without SSE4.1 */
    return (int8_t)(int)((v + magic) - magic);
}
void sw_cpu_quantize_q8(const float *x, sw_cpu_q8 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax; /* NaN ignored */
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            y[b].qs[j] = round_even_q8(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = d;
        y[b].s = d * (float)sum;
        y[b].sum = sum;
    }
}

void sw_cpu_quantize_q8_K(const float *x, sw_block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / SW_QK_K; b++, x += SW_QK_K) {
        float amax = 0.0f;
        for (int j = 0; j < SW_QK_K; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < SW_QK_K; j++) {
            y[b].qs[j] = round_even_q8(x[j] * id);
        }
        for (int g = 0; g < SW_QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += y[b].qs[16 * g + j];
            y[b].bsums[g] = (int16_t)s;
        }
        y[b].d = d;
    }
}

/* --------------------------------------------------------- float weights -- */

static inline const float *xcol_f32(const void *x, size_t xs, int c) {
    return (const float *)((const uint8_t *)x + (size_t)c * xs);
}

/* Eight partial sums: independent chains the compiler can keep in one SIMD
 * register (a single float sum cannot be reordered without -ffast-math), and
 * a summation error that grows with K/8 rather than K. */
#define FLOAT_DOT(name, T, CONV)                                                                   \
    static void name(int64_t k, const void *w, const void *x, size_t xs, int nc, float *res) {     \
        const T *wr = w;                                                                           \
        for (int c = 0; c < nc; c++) {                                                             \
            const float *xc = xcol_f32(x, xs, c);                                                  \
            float acc[8] = {0};                                                                    \
            int64_t i = 0;                                                                         \
            for (; i + 8 <= k; i += 8)                                                             \
                for (int j = 0; j < 8; j++)                                                        \
                    acc[j] += CONV(wr[i + j]) * xc[i + j];                                         \
            float s =                                                                              \
                ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])); \
            for (; i < k; i++)                                                                     \
                s += CONV(wr[i]) * xc[i];                                                          \
            res[c] = s;                                                                            \
        }                                                                                          \
    }
#define CONV_F32(v) (v)
FLOAT_DOT(dot_f32, float, CONV_F32)
FLOAT_DOT(dot_f16, uint16_t, sw_cpu_f16_lut)
FLOAT_DOT(dot_bf16, uint16_t, sw_cpu_bf16_to_f32)

/* ----------------------------------------------------- 32-element blocks -- */

/* Unpack one block into signed quants q[32] (offset applied for the symmetric
 * types), its scale d and offset m (0 for the symmetric types). */
static inline void unpack_q4_0(const void *blk, int8_t *q, float *d, float *m) {
    const sw_block_q4_0 *b = blk;
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((b->qs[j] & 0x0f) - 8);
        q[j + 16] = (int8_t)((b->qs[j] >> 4) - 8);
    }
    *d = sw_cpu_f16_to_f32(b->d);
    *m = 0.0f;
}

static inline void unpack_q4_1(const void *blk, int8_t *q, float *d, float *m) {
    const sw_block_q4_1 *b = blk;
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(b->qs[j] & 0x0f);
        q[j + 16] = (int8_t)(b->qs[j] >> 4);
    }
    *d = sw_cpu_f16_to_f32(b->d);
    *m = sw_cpu_f16_to_f32(b->m);
}

static inline uint32_t load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void unpack_q5_0(const void *blk, int8_t *q, float *d, float *m) {
    const sw_block_q5_0 *b = blk;
    uint32_t qh = load_u32(b->qh); /* bit j = 5th bit of element j */
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((b->qs[j] & 0x0f) | (((qh >> j) & 1u) << 4)) - 16);
        q[j + 16] = (int8_t)(((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16);
    }
    *d = sw_cpu_f16_to_f32(b->d);
    *m = 0.0f;
}

static inline void unpack_q5_1(const void *blk, int8_t *q, float *d, float *m) {
    const sw_block_q5_1 *b = blk;
    uint32_t qh = load_u32(b->qh);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((b->qs[j] & 0x0f) | (((qh >> j) & 1u) << 4));
        q[j + 16] = (int8_t)((b->qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4));
    }
    *d = sw_cpu_f16_to_f32(b->d);
    *m = sw_cpu_f16_to_f32(b->m);
}

static inline void unpack_q8_0(const void *blk, int8_t *q, float *d, float *m) {
    const sw_block_q8_0 *b = blk;
    memcpy(q, b->qs, 32);
    *d = sw_cpu_f16_to_f32(b->d);
    *m = 0.0f;
}

/* w = d q + m per element, so w.x = d dx sum(q qx) + m (dx sum qx) = ... + m s. */
#define BLOCK32_DOT(name, BT, UNPACK)                                                              \
    static void name(int64_t k, const void *w, const void *x, size_t xs, int nc, float *res) {     \
        const BT *wb = w;                                                                          \
        float acc[SW_CPU_MAX_COLS] = {0};                                                          \
        for (int64_t b = 0; b < k / 32; b++) {                                                     \
            int8_t q[32];                                                                          \
            float d, m;                                                                            \
            UNPACK(&wb[b], q, &d, &m);                                                             \
            for (int c = 0; c < nc; c++) {                                                         \
                const sw_cpu_q8 *xb =                                                              \
                    (const sw_cpu_q8 *)((const uint8_t *)x + (size_t)c * xs) + b;                  \
                int32_t s = 0;                                                                     \
                for (int j = 0; j < 32; j++)                                                       \
                    s += (int32_t)q[j] * xb->qs[j];                                                \
                acc[c] += d * xb->d * (float)s + m * xb->s;                                        \
            }                                                                                      \
        }                                                                                          \
        for (int c = 0; c < nc; c++)                                                               \
            res[c] = acc[c];                                                                       \
    }
BLOCK32_DOT(dot_q4_0, sw_block_q4_0, unpack_q4_0)
BLOCK32_DOT(dot_q4_1, sw_block_q4_1, unpack_q4_1)
BLOCK32_DOT(dot_q5_0, sw_block_q5_0, unpack_q5_0)
BLOCK32_DOT(dot_q5_1, sw_block_q5_1, unpack_q5_1)
BLOCK32_DOT(dot_q8_0, sw_block_q8_0, unpack_q8_0)

/* ---------------------------------------------------------------- K-quants -- */

/* A K-quant super-block unpacked: w_j = d * sc[j/16] * q_j - dmin * mn[j/16]. */
typedef struct {
    int8_t q[SW_QK_K];
    int16_t sc[16], mn[16];
    float d, dmin;
} kunpacked;

/* The 6-bit scale and min of sub-block j (of 8) in a Q4_K/Q5_K scales[12]. */
static inline void scale_min_k4(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void unpack_q2_K(const void *blk, kunpacked *u) {
    const sw_block_q2_K *b = blk;
    for (int i = 0; i < 16; i++) {
        u->sc[i] = b->scales[i] & 0x0f;
        u->mn[i] = b->scales[i] >> 4;
    }
    /* element 128 h + 32 s + l (l < 32) holds bits 2s..2s+1 of qs[32 h + l] */
    for (int h = 0; h < 2; h++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++)
                u->q[128 * h + 32 * s + l] = (int8_t)((b->qs[32 * h + l] >> (2 * s)) & 3);
    u->d = sw_cpu_f16_to_f32(b->d);
    u->dmin = sw_cpu_f16_to_f32(b->dmin);
}

static void unpack_q3_K(const void *blk, kunpacked *u) {
    const sw_block_q3_K *b = blk;
    /* 16 6-bit scales: low 4 bits in scales[0..7] (two per byte), high 2 bits
     * in scales[8..11] (four per byte); stored with an offset of 32 */
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? b->scales[i] & 0x0f : b->scales[i - 8] >> 4;
        int hi = (b->scales[8 + i % 4] >> (2 * (i / 4))) & 3;
        u->sc[i] = (int16_t)((lo | (hi << 4)) - 32);
        u->mn[i] = 0;
    }
    /* element 128 h + 32 s + l: low 2 bits as Q2_K, and a set bit (4h + s) of
     * hmask[l] means "no -4" */
    for (int h = 0; h < 2; h++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++) {
                int lo = (b->qs[32 * h + l] >> (2 * s)) & 3;
                int hb = (b->hmask[l] >> (4 * h + s)) & 1;
                u->q[128 * h + 32 * s + l] = (int8_t)(lo - (hb ? 0 : 4));
            }
    u->d = sw_cpu_f16_to_f32(b->d);
    u->dmin = 0.0f;
}

static void unpack_q4_K(const void *blk, kunpacked *u) {
    const sw_block_q4_K *b = blk;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        scale_min_k4(j, b->scales, &sc, &mn);
        u->sc[2 * j] = u->sc[2 * j + 1] = (int16_t)sc;
        u->mn[2 * j] = u->mn[2 * j + 1] = (int16_t)mn;
    }
    /* element 64 p + l: low nibble of qs[32 p + l]; 64 p + 32 + l: high nibble */
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            u->q[64 * p + l] = (int8_t)(b->qs[32 * p + l] & 0x0f);
            u->q[64 * p + 32 + l] = (int8_t)(b->qs[32 * p + l] >> 4);
        }
    u->d = sw_cpu_f16_to_f32(b->d);
    u->dmin = sw_cpu_f16_to_f32(b->dmin);
}

static void unpack_q5_K(const void *blk, kunpacked *u) {
    const sw_block_q5_K *b = blk;
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        scale_min_k4(j, b->scales, &sc, &mn);
        u->sc[2 * j] = u->sc[2 * j + 1] = (int16_t)sc;
        u->mn[2 * j] = u->mn[2 * j + 1] = (int16_t)mn;
    }
    /* as Q4_K, plus a 5th bit: bit s of qh[l] for element 32 s + l */
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            int h0 = (b->qh[l] >> (2 * p)) & 1, h1 = (b->qh[l] >> (2 * p + 1)) & 1;
            u->q[64 * p + l] = (int8_t)((b->qs[32 * p + l] & 0x0f) | (h0 << 4));
            u->q[64 * p + 32 + l] = (int8_t)((b->qs[32 * p + l] >> 4) | (h1 << 4));
        }
    u->d = sw_cpu_f16_to_f32(b->d);
    u->dmin = sw_cpu_f16_to_f32(b->dmin);
}

static void unpack_q6_K(const void *blk, kunpacked *u) {
    const sw_block_q6_K *b = blk;
    for (int i = 0; i < 16; i++) {
        u->sc[i] = b->scales[i];
        u->mn[i] = 0;
    }
    /* per half h: ql[64], qh[32]; four 32-element groups take the low/high
     * nibbles of ql[0..31] / ql[32..63] and successive 2-bit fields of qh */
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int8_t *q = u->q + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
    u->d = sw_cpu_f16_to_f32(b->d);
    u->dmin = 0.0f;
}

#define KQUANT_DOT(name, BT, UNPACK)                                                               \
    static void name(int64_t k, const void *w, const void *x, size_t xs, int nc, float *res) {     \
        const BT *wb = w;                                                                          \
        float acc[SW_CPU_MAX_COLS] = {0};                                                          \
        kunpacked u;                                                                               \
        for (int64_t b = 0; b < k / SW_QK_K; b++) {                                                \
            UNPACK(&wb[b], &u);                                                                    \
            for (int c = 0; c < nc; c++) {                                                         \
                const sw_block_q8_K *xb =                                                          \
                    (const sw_block_q8_K *)((const uint8_t *)x + (size_t)c * xs) + b;              \
                int32_t isum = 0, msum = 0;                                                        \
                for (int i = 0; i < 16; i++) {                                                     \
                    int32_t s = 0;                                                                 \
                    for (int j = 0; j < 16; j++)                                                   \
                        s += (int32_t)u.q[16 * i + j] * xb->qs[16 * i + j];                        \
                    isum += s * u.sc[i];                                                           \
                    msum += (int32_t)u.mn[i] * xb->bsums[i];                                       \
                }                                                                                  \
                acc[c] += xb->d * (u.d * (float)isum - u.dmin * (float)msum);                      \
            }                                                                                      \
        }                                                                                          \
        for (int c = 0; c < nc; c++)                                                               \
            res[c] = acc[c];                                                                       \
    }
KQUANT_DOT(dot_q2_K, sw_block_q2_K, unpack_q2_K)
KQUANT_DOT(dot_q3_K, sw_block_q3_K, unpack_q3_K)
KQUANT_DOT(dot_q4_K, sw_block_q4_K, unpack_q4_K)
KQUANT_DOT(dot_q5_K, sw_block_q5_K, unpack_q5_K)
KQUANT_DOT(dot_q6_K, sw_block_q6_K, unpack_q6_K)

sw_cpu_dot_fn sw_cpu_dot_scalar(sw_type t) { SW_CPU_DOT_LOOKUP(t) }
