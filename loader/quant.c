/* quant.c — scalar f16/bf16 conversions, the reference dequantizers and
 * round-to-nearest quantizers of the 32-element block types (Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0), and the checked dispatchers sw_dequantize_row /
 * sw_quantize_row. The K-quants live in quant_k.c.
 *
 * This file is the numerical truth the other kernels are tested against, so it
 * is written plainly: one loop per block layout, arithmetic in the same order
 * as ggml's reference code (e.g. Q4_1 is `q * d + m`, not `fma`), so that our
 * results are bit-identical to ggml/gguf-py. The build uses -std=c11 (ISO
 * mode), in which GCC does not contract a*b+c into an FMA; keep it that way.
 *
 * Blocks are copied out of / into the byte stream with memcpy, so callers may
 * pass pointers of any alignment (GGUF data is aligned, slices of it need not
 * be). Multi-byte fields are read host-endian; GGUF is little-endian and so
 * are all hosts we build for. */
#include "quant.h"

#include <math.h>
#include <string.h>

/* ---- f16 / bf16 ------------------------------------------------------------ */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Kept inline so the row loops below do not pay a call per element. */
static inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) /* inf / NaN: keep the payload, so NaN stays NaN */
        return bits_f32(sign | 0x7F800000u | (mant << 13));
    if (exp != 0) /* normal: rebias 15 -> 127 */
        return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
    /* zero / subnormal: the value is mant * 2^-24. Build 2^-14 * (1 + mant/1024)
     * as a normal float and subtract 2^-14: the difference is exact (and +0
     * for mant = 0, to which the sign is then applied). */
    const float v = bits_f32((113u << 23) | (mant << 13)) - bits_f32(113u << 23);
    return bits_f32(sign | f32_bits(v));
}

float sw_f16_to_f32(uint16_t h) {
    return f16_to_f32(h);
}

uint16_t sw_f32_to_f16(float f) {
    const uint32_t x = f32_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: quiet it, keep the top payload bits */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x38800000u) { /* |f| >= 2^-14: a normal half, or overflow */
        /* Rebias the exponent and drop 13 mantissa bits, rounding to nearest
         * even. A carry out of the mantissa correctly bumps the exponent, and
         * anything at or past 65520 ends up >= 0x7C00, i.e. infinity. */
        uint32_t h = (a >> 13) - (112u << 10);
        const uint32_t rem = a & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
        if (h >= 0x7C00u) h = 0x7C00u;
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) /* |f| <= 2^-25: rounds to zero (2^-25 is a tie, even is 0) */
        return sign;
    /* Subnormal half: the result is |f| / 2^-24 rounded to an integer. With
     * the implicit bit, |f| = m * 2^(e-150), so the count is m >> (126 - e). */
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e; /* 14..24 here */
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) h++; /* may reach 0x400, the smallest normal */
    return (uint16_t)(sign | h);
}

float sw_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t sw_f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: truncating could make it inf, so quiet it */
        return (uint16_t)((x >> 16) | 0x40u);
    /* round to nearest even on the 16 dropped bits; overflow carries into inf */
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

void sw_dequantize_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = f16_to_f32(h);
    }
}

void sw_dequantize_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = sw_bf16_to_f32(h);
    }
}

void sw_quantize_f16(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = sw_f32_to_f16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

void sw_quantize_bf16(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = sw_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* ---- 32-element block types: dequantize ------------------------------------ */
/* In all of them element j of a block sits in the low nibble of qs[j] and
 * element j+16 in the high nibble; Q5 types keep bit 4 of element j in bit j of
 * the little-endian 32-bit qh. */

void sw_dequantize_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK4_0; b++) {
        sw_block_q4_0 x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK4_0;
        const float d = f16_to_f32(x.d);
        for (int j = 0; j < SW_QK4_0 / 2; j++) {
            y[j] = (float)((x.qs[j] & 0x0F) - 8) * d;
            y[j + SW_QK4_0 / 2] = (float)((x.qs[j] >> 4) - 8) * d;
        }
    }
}

void sw_dequantize_q4_1(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK4_1; b++) {
        sw_block_q4_1 x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK4_1;
        const float d = f16_to_f32(x.d), m = f16_to_f32(x.m);
        for (int j = 0; j < SW_QK4_1 / 2; j++) {
            y[j] = (float)(x.qs[j] & 0x0F) * d + m;
            y[j + SW_QK4_1 / 2] = (float)(x.qs[j] >> 4) * d + m;
        }
    }
}

void sw_dequantize_q5_0(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK5_0; b++) {
        sw_block_q5_0 x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK5_0;
        const float d = f16_to_f32(x.d);
        uint32_t qh;
        memcpy(&qh, x.qh, 4);
        for (int j = 0; j < SW_QK5_0 / 2; j++) {
            const int lo = (x.qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (x.qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            y[j] = (float)(lo - 16) * d;
            y[j + SW_QK5_0 / 2] = (float)(hi - 16) * d;
        }
    }
}

void sw_dequantize_q5_1(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK5_1; b++) {
        sw_block_q5_1 x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK5_1;
        const float d = f16_to_f32(x.d), m = f16_to_f32(x.m);
        uint32_t qh;
        memcpy(&qh, x.qh, 4);
        for (int j = 0; j < SW_QK5_1 / 2; j++) {
            const int lo = (x.qs[j] & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (x.qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            y[j] = (float)lo * d + m;
            y[j + SW_QK5_1 / 2] = (float)hi * d + m;
        }
    }
}

void sw_dequantize_q8_0(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK8_0; b++) {
        sw_block_q8_0 x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK8_0;
        const float d = f16_to_f32(x.d);
        for (int j = 0; j < SW_QK8_0; j++)
            y[j] = (float)x.qs[j] * d;
    }
}

/* ---- 32-element block types: quantize --------------------------------------- */
/* Same arithmetic as ggml's reference (RTN) quantizers, so a file we quantize
 * is byte-identical to what llama.cpp / gguf-py would write from the same f32
 * data: the scale is computed in f32, its reciprocal taken before the scale is
 * rounded to f16, and levels are truncated after adding an offset + 0.5. */

/* (int)v clamped to [0, hi], defined for NaN and +-inf (which map to 0 / hi),
 * where a plain cast would be undefined behaviour. */
static inline int trunc_clamp(float v, int hi) {
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* roundf(v) for |v| <= 127 without the libm call (which dominates the Q8_0
 * quantizer otherwise): v - trunc(v) is exact, so compare it with 0.5. */
static inline int round_half_away(float v) {
    const int t = (int)v;
    const float frac = v - (float)t;
    if (frac >= 0.5f) return t + 1;
    if (frac <= -0.5f) return t - 1;
    return t;
}

/* The block value with the largest magnitude, sign kept (the first one on ties). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

void sw_quantize_q4_0(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK4_0; b++) {
        const float *x = src + b * SW_QK4_0;
        sw_block_q4_0 y;
        /* the largest-magnitude value maps to level 0 (= -8): the sign of d
         * puts the asymmetric extra level on that value's side */
        const float d = signed_absmax(x, SW_QK4_0) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y.d = sw_f32_to_f16(d);
        for (int j = 0; j < SW_QK4_0 / 2; j++) {
            const int q0 = trunc_clamp(x[j] * id + 8.5f, 15);
            const int q1 = trunc_clamp(x[j + SW_QK4_0 / 2] * id + 8.5f, 15);
            y.qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q4_1(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK4_1; b++) {
        const float *x = src + b * SW_QK4_1;
        sw_block_q4_1 y;
        float mn, mx;
        min_max(x, SW_QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y.d = sw_f32_to_f16(d);
        y.m = sw_f32_to_f16(mn);
        for (int j = 0; j < SW_QK4_1 / 2; j++) {
            const int q0 = trunc_clamp((x[j] - mn) * id + 0.5f, 15);
            const int q1 = trunc_clamp((x[j + SW_QK4_1 / 2] - mn) * id + 0.5f, 15);
            y.qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

/* Q5 types: low 4 bits into the nibbles, bit 4 of element j into qh bit j. */
static void pack_q5(const int *q, uint8_t qs[16], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_bytes, &qh, 4);
}

void sw_quantize_q5_0(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK5_0; b++) {
        const float *x = src + b * SW_QK5_0;
        sw_block_q5_0 y;
        const float d = signed_absmax(x, SW_QK5_0) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int q[SW_QK5_0];
        for (int j = 0; j < SW_QK5_0; j++)
            q[j] = trunc_clamp(x[j] * id + 16.5f, 31);
        y.d = sw_f32_to_f16(d);
        pack_q5(q, y.qs, y.qh);
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q5_1(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK5_1; b++) {
        const float *x = src + b * SW_QK5_1;
        sw_block_q5_1 y;
        float mn, mx;
        min_max(x, SW_QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int q[SW_QK5_1];
        for (int j = 0; j < SW_QK5_1; j++)
            q[j] = trunc_clamp((x[j] - mn) * id + 0.5f, 31);
        y.d = sw_f32_to_f16(d);
        y.m = sw_f32_to_f16(mn);
        pack_q5(q, y.qs, y.qh);
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q8_0(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK8_0; b++) {
        const float *x = src + b * SW_QK8_0;
        sw_block_q8_0 y;
        float amax = 0.0f;
        for (int j = 0; j < SW_QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y.d = sw_f32_to_f16(d);
        for (int j = 0; j < SW_QK8_0; j++) {
            /* roundf (half away from zero) as ggml; clamp first so NaN/inf
             * cannot reach an undefined float->int conversion */
            float v = x[j] * id;
            if (!(v >= -127.0f)) v = v != v ? 0.0f : -127.0f;
            if (v > 127.0f) v = 127.0f;
            y.qs[j] = (int8_t)round_half_away(v);
        }
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

/* ---- checked dispatch -------------------------------------------------------- */

typedef void (*dequant_fn)(const void *, float *, int64_t);
typedef void (*quant_fn)(const float *, void *, int64_t);

static void dequantize_f32(const void *src, float *dst, int64_t n) {
    memmove(dst, src, (size_t)n * sizeof(float));
}

static void quantize_f32(const float *src, void *dst, int64_t n) {
    memmove(dst, src, (size_t)n * sizeof(float));
}

static dequant_fn dequant_for(sw_type t) {
    switch (t) {
    case SW_TYPE_F32:
        return dequantize_f32;
    case SW_TYPE_F16:
        return sw_dequantize_f16;
    case SW_TYPE_BF16:
        return sw_dequantize_bf16;
    case SW_TYPE_Q4_0:
        return sw_dequantize_q4_0;
    case SW_TYPE_Q4_1:
        return sw_dequantize_q4_1;
    case SW_TYPE_Q5_0:
        return sw_dequantize_q5_0;
    case SW_TYPE_Q5_1:
        return sw_dequantize_q5_1;
    case SW_TYPE_Q8_0:
        return sw_dequantize_q8_0;
    case SW_TYPE_Q2_K:
        return sw_dequantize_q2_K;
    case SW_TYPE_Q3_K:
        return sw_dequantize_q3_K;
    case SW_TYPE_Q4_K:
        return sw_dequantize_q4_K;
    case SW_TYPE_Q5_K:
        return sw_dequantize_q5_K;
    case SW_TYPE_Q6_K:
        return sw_dequantize_q6_K;
    default:
        return NULL;
    }
}

static quant_fn quant_for(sw_type t) {
    switch (t) {
    case SW_TYPE_F32:
        return quantize_f32;
    case SW_TYPE_F16:
        return sw_quantize_f16;
    case SW_TYPE_BF16:
        return sw_quantize_bf16;
    case SW_TYPE_Q4_0:
        return sw_quantize_q4_0;
    case SW_TYPE_Q4_1:
        return sw_quantize_q4_1;
    case SW_TYPE_Q5_0:
        return sw_quantize_q5_0;
    case SW_TYPE_Q5_1:
        return sw_quantize_q5_1;
    case SW_TYPE_Q8_0:
        return sw_quantize_q8_0;
    case SW_TYPE_Q2_K:
        return sw_quantize_q2_K;
    case SW_TYPE_Q3_K:
        return sw_quantize_q3_K;
    case SW_TYPE_Q4_K:
        return sw_quantize_q4_K;
    case SW_TYPE_Q5_K:
        return sw_quantize_q5_K;
    case SW_TYPE_Q6_K:
        return sw_quantize_q6_K;
    default:
        return NULL;
    }
}

/* Shared argument checks; `what` is "dequantize" or "quantize". */
static sw_status check_row(const char *what, sw_type type, bool have_fn, const void *src,
                           const void *dst, int64_t n, sw_err *err) {
    const sw_type_traits *t = sw_type_get((uint32_t)type);
    if (!t)
        return sw_err_set(err, SW_E_UNSUPPORTED, "%s: unknown tensor type id %u (n=%lld)", what,
                          (unsigned)type, (long long)n);
    if (!have_fn)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "%s: tensor type %s (id %u) is not supported (n=%lld)", what, t->name,
                          (unsigned)type, (long long)n);
    if (n < 0 || n % t->blck_size != 0)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: n=%lld elements is not a non-negative multiple of the %s block "
                          "size %lld",
                          what, (long long)n, t->name, (long long)t->blck_size);
    if (n > 0 && (!src || !dst))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s buffer is NULL (type %s, n=%lld)", what,
                          src ? "destination" : "source", t->name, (long long)n);
    return SW_OK;
}

sw_status sw_dequantize_row(sw_type type, const void *src, float *dst, int64_t n, sw_err *err) {
    const dequant_fn fn = dequant_for(type);
    const sw_status st = check_row("dequantize", type, fn != NULL, src, dst, n, err);
    if (st != SW_OK) return st;
    if (n > 0) fn(src, dst, n);
    return SW_OK;
}

sw_status sw_quantize_row(sw_type type, const float *src, void *dst, int64_t n, sw_err *err) {
    const quant_fn fn = quant_for(type);
    const sw_status st = check_row("quantize", type, fn != NULL, src, dst, n, err);
    if (st != SW_OK) return st;
    if (n > 0) fn(src, dst, n);
    return SW_OK;
}
