/* quant_k.c — the K-quants (Q2_K .. Q6_K): 256-element super-blocks made of 16
 * or 32-element sub-blocks, each with its own small integer scale (and min)
 * that is itself quantized against one or two f16 super-block factors.
 *
 * Dequantizers follow ggml's reference loops and arithmetic order exactly
 * (e.g. Q4_K is `(d * sc) * q - (dmin * m)`), so the result is bit-identical to
 * ggml / gguf-py; see the note on FMA contraction in quant.c.
 *
 * Quantizers are round-to-nearest with a small search for each sub-block's
 * scale (and min): a handful of candidate scales around the naive
 * range / levels, each refined by a least-squares fit, scored by the actual
 * squared error after rounding; the sub-block factors are then quantized to
 * 4/6/8 bits and the values re-rounded against the factors actually stored. */
#include "quant.h"

#include <math.h>
#include <string.h>

/* ---- element layout ----------------------------------------------------------- */
/* Q2_K and Q3_K keep 2-bit fields: element e of the super-block is in byte
 * (e / 128) * 32 + e % 32 of qs, at bit 2 * ((e % 128) / 32). Q3_K's third bit
 * is bit e / 32 of hmask[e % 32]. Scale index is e / 16 for all 16-element
 * sub-block types (Q2_K, Q3_K, Q6_K) and e / 32 for Q4_K / Q5_K. */

/* Q4_K / Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes. Sub-blocks 0-3
 * keep their scale and min in the low 6 bits of bytes j and j+4; sub-blocks
 * 4-7 keep the low 4 bits in the nibbles of byte j+4 and the top 2 bits in the
 * spare top bits of bytes j-4 (scale) and j (min). */
static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void set_scale_min_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t q[12]) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4));
    }
}

/* Q3_K: 16 six-bit scales (stored biased by +32) in 12 bytes: the low 4 bits
 * of scale j are the low nibble of byte j (j < 8) or the high nibble of byte
 * j - 8; the top 2 bits are bits 2*(j/4) .. +1 of byte 8 + j % 4. */
static int get_scale_q3_K(int j, const uint8_t *q) {
    const int lo = j < 8 ? (q[j] & 0x0F) : (q[j - 8] >> 4);
    const int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

static void set_scales_q3_K(const int sc[16], uint8_t q[12]) {
    memset(q, 0, 12);
    for (int j = 0; j < 16; j++) {
        const int v = sc[j] + 32; /* 0..63 */
        if (j < 8)
            q[j] |= (uint8_t)(v & 0x0F);
        else
            q[j - 8] |= (uint8_t)((v & 0x0F) << 4);
        q[8 + j % 4] |= (uint8_t)(((v >> 4) & 3) << (2 * (j / 4)));
    }
}

/* ---- dequantize ----------------------------------------------------------------- */

void sw_dequantize_q2_K(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q2_K x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK_K;
        const float d = sw_f16_to_f32(x.d), dmin = sw_f16_to_f32(x.dmin);
        int is = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = x.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++) { /* two 16-element sub-blocks per shift */
                    const uint8_t sc = x.scales[is++];
                    const float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void sw_dequantize_q3_K(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q3_K x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK_K;
        const float d = sw_f16_to_f32(x.d);
        int is = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = x.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                /* hmask bit = which group of 32 elements we are in (0..7) */
                const uint8_t m = (uint8_t)(1u << (4 * half + shift / 2));
                for (int k = 0; k < 2; k++) {
                    const float dl = d * (float)get_scale_q3_K(is++, x.scales);
                    for (int l = 16 * k; l < 16 * k + 16; l++) {
                        /* a set high bit means +0, a clear one -4: levels -4..3 */
                        const int v = ((q[l] >> shift) & 3) - ((x.hmask[l] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

void sw_dequantize_q4_K(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q4_K x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK_K;
        const float d = sw_f16_to_f32(x.d), dmin = sw_f16_to_f32(x.dmin);
        for (int j = 0; j < 8; j += 2) { /* 64 elements: low nibbles, then high */
            const uint8_t *q = x.qs + 16 * j;
            uint8_t sc, m;
            get_scale_min_k4(j, x.scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            get_scale_min_k4(j + 1, x.scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void sw_dequantize_q5_K(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q5_K x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK_K;
        const float d = sw_f16_to_f32(x.d), dmin = sw_f16_to_f32(x.dmin);
        for (int j = 0; j < 8; j += 2) {
            const uint8_t *ql = x.qs + 16 * j;
            /* bit 4 of sub-block j's element l is bit j of qh[l] */
            const uint8_t u1 = (uint8_t)(1u << j), u2 = (uint8_t)(2u << j);
            uint8_t sc, m;
            get_scale_min_k4(j, x.scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            get_scale_min_k4(j + 1, x.scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((ql[l] & 0x0F) + ((x.qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((ql[l] >> 4) + ((x.qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

void sw_dequantize_q6_K(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q6_K x;
        memcpy(&x, p + (size_t)b * sizeof x, sizeof x);
        float *y = dst + b * SW_QK_K;
        const float d = sw_f16_to_f32(x.d);
        for (int half = 0; half < 2; half++) { /* 128 elements: 64 ql bytes, 32 qh bytes */
            const uint8_t *ql = x.ql + 64 * half, *qh = x.qh + 32 * half;
            float ds[8]; /* d * scale, as ggml evaluates d * sc * q left to right */
            for (int k = 0; k < 8; k++)
                ds[k] = d * (float)x.scales[8 * half + k];
            /* element l of each quarter uses scale is + 2 * quarter, is = l / 16 */
            for (int is = 0; is < 2; is++) {
                for (int l = 16 * is; l < 16 * is + 16; l++) {
                    const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = ds[is + 0] * (float)q1;
                    y[l + 32] = ds[is + 2] * (float)q2;
                    y[l + 64] = ds[is + 4] * (float)q3;
                    y[l + 96] = ds[is + 6] * (float)q4;
                }
            }
            y += 128;
        }
    }
}

/* ---- quantize: sub-block fits -------------------------------------------------- */

/* v rounded to the nearest integer, clamped to [lo, hi]; NaN maps to lo. Clamping happens before
 * the conversion because float->int of an out-of-range value is undefined. */
static inline int round_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    /* Round to nearest (ties to even) by adding 1.5 * 2^23: the sum's ulp is
     * 1, so the FPU rounds for us and the integer sits in the low mantissa
     * bits. Exact for |v| < 2^22 (here |v| <= 128); avoids a libm call in the
     * hot loops of the scale search. */
    const float t = v + 12582912.0f;
    uint32_t u;
    memcpy(&u, &t, sizeof u);
    return (int)(u & 0x007FFFFFu) - 0x00400000;
}

/* Squared error of x ~ scale * L - mn, L = RTN((x + mn) / scale) in 0..nmax. */
static double sse_asym(const float *x, int n, int nmax, float scale, float mn) {
    double e = 0;
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = round_clamp((x[i] + mn) * inv, 0, nmax);
        const double r = (double)scale * l - mn - x[i];
        e += r * r;
    }
    return e;
}

/* Fit x ~ scale * L - mn with L in 0..nmax, scale >= 0 and mn >= 0 (the K-quant
 * formats store the min as an unsigned multiple of dmin that is subtracted, so
 * the offset can only pull values down; a sub-block of positives gets mn = 0).
 * Returns the scale and sets *mn_out. */
static float fit_scale_min(const float *x, int n, int nmax, float *mn_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    if (lo > 0) lo = 0;
    if (!(hi > lo)) { /* constant non-positive block (or NaN): the min alone is exact */
        *mn_out = lo == lo ? -lo : 0.0f;
        return 0.0f;
    }
    const float range = hi - lo;
    float best_scale = range / (float)nmax, best_mn = -lo;
    double best_err = sse_asym(x, n, nmax, best_scale, best_mn);
    /* Candidate level assignments from scales within about one level of the
     * naive one; each refit by least squares (x ~ scale * L + off) and scored
     * by its real error after re-rounding. */
    for (int k = -10; k <= 10; k++) {
        const float iscale = ((float)nmax + 0.1f * (float)k) / range;
        double sl = 0, sll = 0, sx = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            const int l = round_clamp(iscale * (x[i] - lo), 0, nmax);
            sl += l;
            sll += (double)l * l;
            sx += x[i];
            sxl += (double)x[i] * l;
        }
        const double det = n * sll - sl * sl;
        if (!(det > 0)) continue;
        double scale = (n * sxl - sl * sx) / det;
        double off = (sll * sx - sl * sxl) / det;
        if (off > 0) { /* the format cannot add an offset: refit through 0 */
            off = 0;
            scale = sxl / sll;
        }
        if (!(scale > 0)) continue;
        const double err = sse_asym(x, n, nmax, (float)scale, (float)-off);
        if (err < best_err) {
            best_err = err;
            best_scale = (float)scale;
            best_mn = (float)-off;
        }
    }
    *mn_out = best_mn;
    return best_scale;
}

/* The value with the largest magnitude, sign kept (first on ties). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (amax < fabsf(x[i])) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    return max;
}

/* Squared error of x ~ scale * L, L = RTN(x / scale) in -nmax..nmax-1. */
static double sse_sym(const float *x, int n, int nmax, float scale) {
    double e = 0;
    const float inv = scale != 0 ? 1.0f / scale : 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = round_clamp(x[i] * inv, -nmax, nmax - 1);
        const double r = (double)scale * l - x[i];
        e += r * r;
    }
    return e;
}

/* Fit x ~ scale * L with L in -nmax..nmax-1 (Q3_K: 4, Q6_K: 32). The naive
 * scale maps the largest-magnitude value onto -nmax, so the extra negative
 * level lands on that value's side whatever its sign (scale may be negative). */
static float fit_scale_sym(const float *x, int n, int nmax) {
    const float max = signed_absmax(x, n);
    if (max == 0.0f || !isfinite(max)) return 0.0f;
    float best = max / (float)-nmax;
    double best_err = sse_sym(x, n, nmax, best);
    for (int k = -9; k <= 9; k++) {
        if (k == 0) continue;
        const float iscale = -((float)nmax + 0.1f * (float)k) / max;
        double sxl = 0, sll = 0;
        for (int i = 0; i < n; i++) {
            const int l = round_clamp(iscale * x[i], -nmax, nmax - 1);
            sxl += (double)x[i] * l;
            sll += (double)l * l;
        }
        if (!(sll > 0)) continue;
        const float scale = (float)(sxl / sll);
        if (scale == 0.0f) continue;
        const double err = sse_sym(x, n, nmax, scale);
        if (err < best_err) {
            best_err = err;
            best = scale;
        }
    }
    return best;
}

/* Asymmetric super-block (Q2_K, Q4_K, Q5_K): fit nsub sub-blocks of `sub`
 * elements with levels 0..nmax, quantize their scales and mins to 0..smax
 * against f16 factors d and dmin, and re-round the values to L[0..255]. */
static void quantize_super_asym(const float *x, int sub, int nmax, int smax, uint16_t *d16,
                                uint16_t *dmin16, uint8_t *sc_q, uint8_t *m_q, uint8_t *L) {
    const int nsub = SW_QK_K / sub;
    float scales[SW_QK_K / 16], mins[SW_QK_K / 16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < nsub; j++) {
        scales[j] = fit_scale_min(x + sub * j, sub, nmax, &mins[j]);
        max_scale = fmaxf(max_scale, scales[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    const float inv_s = max_scale > 0 ? (float)smax / max_scale : 0.0f;
    const float inv_m = max_min > 0 ? (float)smax / max_min : 0.0f;
    for (int j = 0; j < nsub; j++) {
        sc_q[j] = (uint8_t)round_clamp(scales[j] * inv_s, 0, smax);
        m_q[j] = (uint8_t)round_clamp(mins[j] * inv_m, 0, smax);
    }
    *d16 = sw_f32_to_f16(max_scale / (float)smax);
    *dmin16 = sw_f32_to_f16(max_min / (float)smax);
    /* re-round against what the dequantizer will actually compute */
    const float d = sw_f16_to_f32(*d16), dmin = sw_f16_to_f32(*dmin16);
    for (int j = 0; j < nsub; j++) {
        const float dl = d * (float)sc_q[j], ml = dmin * (float)m_q[j];
        for (int i = sub * j; i < sub * (j + 1); i++)
            L[i] = (uint8_t)(dl > 0 ? round_clamp((x[i] + ml) / dl, 0, nmax) : 0);
    }
}

/* Symmetric super-block (Q3_K, Q6_K): 16 sub-blocks of 16 with levels
 * -nmax..nmax-1, signed scales quantized to -smax..smax-1 against one f16 d.
 * Writes the levels biased by +nmax into L[0..255]. */
static void quantize_super_sym(const float *x, int nmax, int smax, uint16_t *d16, int sc_q[16],
                               uint8_t *L) {
    float scales[16];
    for (int j = 0; j < 16; j++)
        scales[j] = fit_scale_sym(x + 16 * j, 16, nmax);
    /* as for values: the largest-magnitude scale maps to -smax */
    const float max_scale = signed_absmax(scales, 16);
    const float iscale = max_scale != 0.0f ? -(float)smax / max_scale : 0.0f;
    for (int j = 0; j < 16; j++)
        sc_q[j] = round_clamp(iscale * scales[j], -smax, smax - 1);
    *d16 = sw_f32_to_f16(iscale != 0.0f ? 1.0f / iscale : 0.0f);
    const float d = sw_f16_to_f32(*d16);
    for (int j = 0; j < 16; j++) {
        const float dl = d * (float)sc_q[j];
        for (int i = 16 * j; i < 16 * (j + 1); i++)
            L[i] = (uint8_t)((dl != 0.0f ? round_clamp(x[i] / dl, -nmax, nmax - 1) : 0) + nmax);
    }
}

/* Q2_K / Q3_K low 2 bits of each level, in the layout described at the top. */
static void pack_2bit(const uint8_t *L, uint8_t qs[SW_QK_K / 4]) {
    memset(qs, 0, SW_QK_K / 4);
    for (int e = 0; e < SW_QK_K; e++)
        qs[(e / 128) * 32 + e % 32] |= (uint8_t)((L[e] & 3) << (2 * ((e % 128) / 32)));
}

/* Q4_K / Q5_K low 4 bits: each 64 elements share 32 bytes, low nibble first. */
static void pack_4bit_k(const uint8_t *L, uint8_t qs[SW_QK_K / 2]) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 0x0F) | ((L[64 * c + 32 + l] & 0x0F) << 4));
}

/* ---- quantize: blocks ------------------------------------------------------------ */

void sw_quantize_q2_K(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q2_K y;
        uint8_t L[SW_QK_K], sc[16], m[16];
        quantize_super_asym(src + b * SW_QK_K, 16, 3, 15, &y.d, &y.dmin, sc, m, L);
        for (int j = 0; j < 16; j++)
            y.scales[j] = (uint8_t)(sc[j] | (m[j] << 4));
        pack_2bit(L, y.qs);
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q3_K(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q3_K y;
        uint8_t L[SW_QK_K];
        int sc[16];
        quantize_super_sym(src + b * SW_QK_K, 4, 32, &y.d, sc, L);
        set_scales_q3_K(sc, y.scales);
        pack_2bit(L, y.qs);
        memset(y.hmask, 0, sizeof y.hmask);
        for (int e = 0; e < SW_QK_K; e++)
            if (L[e] & 4) y.hmask[e % 32] |= (uint8_t)(1u << (e / 32));
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q4_K(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q4_K y;
        uint8_t L[SW_QK_K], sc[8], m[8];
        quantize_super_asym(src + b * SW_QK_K, 32, 15, 63, &y.d, &y.dmin, sc, m, L);
        set_scale_min_k4(sc, m, y.scales);
        pack_4bit_k(L, y.qs);
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q5_K(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q5_K y;
        uint8_t L[SW_QK_K], sc[8], m[8];
        quantize_super_asym(src + b * SW_QK_K, 32, 31, 63, &y.d, &y.dmin, sc, m, L);
        set_scale_min_k4(sc, m, y.scales);
        pack_4bit_k(L, y.qs);
        /* bit 4 of sub-block j's element l goes to bit j of qh[l] */
        memset(y.qh, 0, sizeof y.qh);
        for (int e = 0; e < SW_QK_K; e++)
            y.qh[e % 32] |= (uint8_t)(((L[e] >> 4) & 1) << (e / 32));
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}

void sw_quantize_q6_K(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t b = 0; b < n / SW_QK_K; b++) {
        sw_block_q6_K y;
        uint8_t L[SW_QK_K];
        int sc[16];
        quantize_super_sym(src + b * SW_QK_K, 32, 128, &y.d, sc, L);
        for (int j = 0; j < 16; j++)
            y.scales[j] = (int8_t)sc[j];
        /* each 128 elements: quarters 0/2 in the low/high nibbles of ql[0..31],
         * quarters 1/3 in ql[32..63]; their top 2 bits in qh[0..31] */
        for (int h = 0; h < 2; h++) {
            const uint8_t *l8 = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                y.ql[64 * h + l] = (uint8_t)((l8[l] & 0x0F) | ((l8[l + 64] & 0x0F) << 4));
                y.ql[64 * h + l + 32] = (uint8_t)((l8[l + 32] & 0x0F) | ((l8[l + 96] & 0x0F) << 4));
                y.qh[32 * h + l] = (uint8_t)((l8[l] >> 4) | ((l8[l + 32] >> 4) << 2) |
                                             ((l8[l + 64] >> 4) << 4) | ((l8[l + 96] >> 4) << 6));
            }
        }
        memcpy(p + (size_t)b * sizeof y, &y, sizeof y);
    }
}
