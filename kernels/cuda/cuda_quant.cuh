// cuda_quant.cuh — the per-type quant math of the CUDA backend, written once
// for host and device (SWCU_HD) so that cuda_quant_selftest.cu can check it
// against the reference dequantizers on a machine without a GPU.
//
// Weights are read straight from the GGUF block layout (no repacking; see
// cuda_matmul.cu for why). Each block is cut into "units", the work of one
// thread in the mat-vec and dequantize kernels:
//
//   type   block  bytes  units  elements/unit        x groups of 32 / unit
//   Q4_0   32     18     1      32                   1
//   Q4_1   32     20     1      32                   1
//   Q5_0   32     22     1      32                   1
//   Q5_1   32     24     1      32                   1
//   Q8_0   32     34     1      32                   1
//   Q2_K   256    84     2      128 (one qs half)    4
//   Q3_K   256    110    2      128 (one qs half)    4
//   Q4_K   256    144    4      64  (32 qs bytes)    2
//   Q5_K   256    176    4      64                   2
//   Q6_K   256    210    4      64  (32 ql bytes)    2
//
// Activations for the integer dot products are quantized per 32 elements to
// int8 with a float scale d and s = d * sum(q) ("q8_1 style", but kept as two
// floats in a separate array so the int8 data stays 16-byte aligned). With
// x_hat = d * q, every vdot below computes sum_e w_hat[e] * x_hat[e] exactly in
// integer arithmetic per group, then scales in float: its only error versus
// dequantize(W) . x_hat is float rounding of a handful of terms per unit.
//
// Alignment: a unit reads 32-bit words at offsets that are 4-byte aligned for
// Q4_1, Q5_1, Q2_K, Q4_K, Q5_K (block sizes are multiples of 4) and only
// 2-byte aligned for the others; the backend rejects weight tensors whose base
// or row stride is not aligned to min(block bytes' lowest set bit, 4). The
// K-quant mat-vec units read their 32-byte runs of quants with 16-byte loads
// (swcu_ld_run32), whatever the run's alignment.
#ifndef SW_CUDA_QUANT_CUH
#define SW_CUDA_QUANT_CUH

#include "cuda_common.cuh"
#include "quant.h"

// ---- activation groups ----
// Load the 8 int words of one 32-element int8 group (16-byte aligned).
SWCU_HD void swcu_ld_group(const int8_t *p, int v[8]) {
#ifdef __CUDA_ARCH__
    const int4 a = ((const int4 *)p)[0], b = ((const int4 *)p)[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
#else
    memcpy(v, p, 32);
#endif
}

// The scale of a group with largest magnitude amax: the largest maps to 127.
SWCU_HD float swcu_q8_scale(float amax) { return amax / 127.0f; }
// One element: round to nearest (even) and clamp (x / d is within 127 up to
// rounding of d). A zero group quantizes to zeros.
SWCU_HD int swcu_q8_elem(float x, float d) {
    if (d == 0.0f) return 0;
#ifdef __CUDA_ARCH__
    float r = rintf(__fdiv_rn(x, d));
#else
    float r = nearbyintf(x / d);
#endif
    return (int)fminf(127.0f, fmaxf(-127.0f, r));
}

// ---- K-quant scale helpers (as loader/quant_k.c) ----
SWCU_HD void swcu_scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}
SWCU_HD int swcu_scale_q3_K(int j, const uint8_t *q) {
    const int lo = j < 8 ? (q[j] & 0x0F) : (q[j - 8] >> 4);
    const int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

// Bits 0..3 of b moved to bit 4 of bytes 0..3 (the fifth bit of Q5_0/Q5_1).
SWCU_HD int swcu_spread4(uint32_t b) {
    return (int)(((b & 1u) << 4) | ((b & 2u) << 11) | ((b & 4u) << 18) | ((b & 8u) << 25));
}

// ---- per-type traits and kernels ----
// swcu_q<T>::QK, BYTES, UPB (units per block), vdot<NT>(...), dequant(...).
//
// vdot: blk = the block, u = unit, xq = int8 activations of token 0 starting at
// the block's first element, xds = {d, d*sum q} of its first group, xq_st and
// xds_st = the per-token strides (in int8s and float2s). Adds the unit's dot
// product for tokens t < nt (nt <= NT) to acc[t].
//
// unpack32 (the int8 tensor-core matmul): one 32-element group of a block as
// int8 values, integer scales per 16 and float factors (see each type).
//
// dequant: st(i, v) is called with every element i (index inside the block)
// of unit u and its value, computed in exactly the reference's operation
// order (swcu_fmul etc. are never fused), so the values are bit-identical to
// sw_dequantize_row.
template <int TYPE> struct swcu_q;

template <> struct swcu_q<SW_TYPE_Q4_0> {
    enum { QK = 32, BYTES = 18, UPB = 1 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk));
        int lo[4], hi[4];
SWCU_UNROLL
        for (int i = 0; i < 4; i++) {
            const uint32_t v = swcu_ld_u32_a2(blk + 2 + 4 * i);
            lo[i] = (int)(v & 0x0F0F0F0Fu);
            hi[i] = (int)((v >> 4) & 0x0F0F0F0Fu);
        }
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int x[8], s = 0;
            swcu_ld_group(xq + t * xq_st, x);
SWCU_UNROLL
            for (int i = 0; i < 4; i++) s = swcu_dp4a(hi[i], x[i + 4], swcu_dp4a(lo[i], x[i], s));
            const float2 ds = xds[t * xds_st];
            acc[t] += d * (ds.x * (float)s - 8.0f * ds.y);
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk));
        for (int j = 0; j < 16; j++) {
            const int q = blk[2 + j];
            st(j, swcu_fmul((float)((q & 0x0F) - 8), d));
            st(j + 16, swcu_fmul((float)((q >> 4) - 8), d));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        (void)g;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((blk[2 + j] & 0x0F) - 8);
            q[j + 16] = (int8_t)((blk[2 + j] >> 4) - 8);
        }
        sc[0] = sc[1] = 1;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = 0.0f;
    }
};

template <> struct swcu_q<SW_TYPE_Q4_1> {
    enum { QK = 32, BYTES = 20, UPB = 1 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk)), m = swcu_h2f(swcu_ld_u16(blk + 2));
        int lo[4], hi[4];
SWCU_UNROLL
        for (int i = 0; i < 4; i++) {
            const uint32_t v = swcu_ld_u32_a4(blk + 4 + 4 * i);
            lo[i] = (int)(v & 0x0F0F0F0Fu);
            hi[i] = (int)((v >> 4) & 0x0F0F0F0Fu);
        }
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int x[8], s = 0;
            swcu_ld_group(xq + t * xq_st, x);
SWCU_UNROLL
            for (int i = 0; i < 4; i++) s = swcu_dp4a(hi[i], x[i + 4], swcu_dp4a(lo[i], x[i], s));
            const float2 ds = xds[t * xds_st];
            acc[t] += d * ds.x * (float)s + m * ds.y;
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk)), m = swcu_h2f(swcu_ld_u16(blk + 2));
        for (int j = 0; j < 16; j++) {
            const int q = blk[4 + j];
            st(j, swcu_fadd(swcu_fmul((float)(q & 0x0F), d), m));
            st(j + 16, swcu_fadd(swcu_fmul((float)(q >> 4), d), m));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        (void)g;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(blk[4 + j] & 0x0F);
            q[j + 16] = (int8_t)(blk[4 + j] >> 4);
        }
        sc[0] = sc[1] = 1;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = swcu_h2f(swcu_ld_u16(blk + 2));
    }
};

template <> struct swcu_q<SW_TYPE_Q5_0> {
    enum { QK = 32, BYTES = 22, UPB = 1 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk));
        const uint32_t qh = swcu_ld_u32_a2(blk + 2);
        int lo[4], hi[4];
SWCU_UNROLL
        for (int i = 0; i < 4; i++) {
            const uint32_t v = swcu_ld_u32_a2(blk + 6 + 4 * i);
            lo[i] = (int)(v & 0x0F0F0F0Fu) | swcu_spread4((qh >> (4 * i)) & 0xFu);
            hi[i] = (int)((v >> 4) & 0x0F0F0F0Fu) | swcu_spread4((qh >> (4 * i + 16)) & 0xFu);
        }
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int x[8], s = 0;
            swcu_ld_group(xq + t * xq_st, x);
SWCU_UNROLL
            for (int i = 0; i < 4; i++) s = swcu_dp4a(hi[i], x[i + 4], swcu_dp4a(lo[i], x[i], s));
            const float2 ds = xds[t * xds_st];
            acc[t] += d * (ds.x * (float)s - 16.0f * ds.y);
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk));
        const uint32_t qh = swcu_ld_u32_a2(blk + 2);
        for (int j = 0; j < 16; j++) {
            const int q = blk[6 + j];
            const int lo = (q & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            st(j, swcu_fmul((float)(lo - 16), d));
            st(j + 16, swcu_fmul((float)(hi - 16), d));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        (void)g;
        const uint32_t qh = swcu_ld_u32_a2(blk + 2);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(((blk[6 + j] & 0x0F) | (int)(((qh >> j) & 1u) << 4)) - 16);
            q[j + 16] = (int8_t)(((blk[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4)) - 16);
        }
        sc[0] = sc[1] = 1;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = 0.0f;
    }
};

template <> struct swcu_q<SW_TYPE_Q5_1> {
    enum { QK = 32, BYTES = 24, UPB = 1 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk)), m = swcu_h2f(swcu_ld_u16(blk + 2));
        const uint32_t qh = swcu_ld_u32_a4(blk + 4);
        int lo[4], hi[4];
SWCU_UNROLL
        for (int i = 0; i < 4; i++) {
            const uint32_t v = swcu_ld_u32_a4(blk + 8 + 4 * i);
            lo[i] = (int)(v & 0x0F0F0F0Fu) | swcu_spread4((qh >> (4 * i)) & 0xFu);
            hi[i] = (int)((v >> 4) & 0x0F0F0F0Fu) | swcu_spread4((qh >> (4 * i + 16)) & 0xFu);
        }
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int x[8], s = 0;
            swcu_ld_group(xq + t * xq_st, x);
SWCU_UNROLL
            for (int i = 0; i < 4; i++) s = swcu_dp4a(hi[i], x[i + 4], swcu_dp4a(lo[i], x[i], s));
            const float2 ds = xds[t * xds_st];
            acc[t] += d * ds.x * (float)s + m * ds.y;
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk)), m = swcu_h2f(swcu_ld_u16(blk + 2));
        const uint32_t qh = swcu_ld_u32_a4(blk + 4);
        for (int j = 0; j < 16; j++) {
            const int q = blk[8 + j];
            const int lo = (q & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (q >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            st(j, swcu_fadd(swcu_fmul((float)lo, d), m));
            st(j + 16, swcu_fadd(swcu_fmul((float)hi, d), m));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        (void)g;
        const uint32_t qh = swcu_ld_u32_a4(blk + 4);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((blk[8 + j] & 0x0F) | (int)(((qh >> j) & 1u) << 4));
            q[j + 16] = (int8_t)((blk[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4));
        }
        sc[0] = sc[1] = 1;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = swcu_h2f(swcu_ld_u16(blk + 2));
    }
};

template <> struct swcu_q<SW_TYPE_Q8_0> {
    enum { QK = 32, BYTES = 34, UPB = 1 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk));
        int w[8];
SWCU_UNROLL
        for (int i = 0; i < 8; i++) w[i] = (int)swcu_ld_u32_a2(blk + 2 + 4 * i);
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int x[8], s = 0;
            swcu_ld_group(xq + t * xq_st, x);
SWCU_UNROLL
            for (int i = 0; i < 8; i++) s = swcu_dp4a(w[i], x[i], s);
            acc[t] += d * xds[t * xds_st].x * (float)s;
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        (void)u;
        const float d = swcu_h2f(swcu_ld_u16(blk));
        for (int j = 0; j < 32; j++) st(j, swcu_fmul((float)(int8_t)blk[2 + j], d));
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        (void)g;
        for (int j = 0; j < 32; j++) q[j] = (int8_t)blk[2 + j];
        sc[0] = sc[1] = 1;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = 0.0f;
    }
};

// Q2_K: scales[16] @0, qs[64] @16, d @80, dmin @82. Unit = half hf: qs bytes
// 32*hf.., shift 2j gives the 32 elements 128*hf + 32*j + l; scale byte
// 8*hf + 2*j + l/16 (low nibble scale, high nibble min).
template <> struct swcu_q<SW_TYPE_Q2_K> {
    enum { QK = 256, BYTES = 84, UPB = 2 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        const float d = swcu_h2f(swcu_ld_u16(blk + 80)), dmin = swcu_h2f(swcu_ld_u16(blk + 82));
        const uint8_t *sc = blk + 8 * u;
        uint32_t v[8];
        swcu_ld_run32(blk + 16 + 32 * u, v);
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            float a = 0.0f;
SWCU_UNROLL
            for (int j = 0; j < 4; j++) {
                const int g = 4 * u + j;
                int x[8];
                swcu_ld_group(xq + t * xq_st + 32 * g, x);
                int s0 = 0, s1 = 0, m0 = 0, m1 = 0;
SWCU_UNROLL
                for (int i = 0; i < 4; i++) {
                    s0 = swcu_dp4a((int)((v[i] >> (2 * j)) & 0x03030303u), x[i], s0);
                    m0 = swcu_dp4a(0x01010101, x[i], m0);
                    s1 = swcu_dp4a((int)((v[i + 4] >> (2 * j)) & 0x03030303u), x[i + 4], s1);
                    m1 = swcu_dp4a(0x01010101, x[i + 4], m1);
                }
                const int c0 = sc[2 * j], c1 = sc[2 * j + 1];
                const float dx = xds[t * xds_st + g].x;
                a += dx * (d * (float)((c0 & 0x0F) * s0 + (c1 & 0x0F) * s1) -
                           dmin * (float)((c0 >> 4) * m0 + (c1 >> 4) * m1));
            }
            acc[t] += a;
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        const float d = swcu_h2f(swcu_ld_u16(blk + 80)), dmin = swcu_h2f(swcu_ld_u16(blk + 82));
        const uint8_t *q = blk + 16 + 32 * u;
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 2; k++) {
                const int sc = blk[8 * u + 2 * j + k];
                const float dl = swcu_fmul(d, (float)(sc & 0x0F));
                const float ml = swcu_fmul(dmin, (float)(sc >> 4));
                for (int l = 0; l < 16; l++)
                    st(128 * u + 32 * j + 16 * k + l,
                       swcu_fsub(swcu_fmul(dl, (float)((q[16 * k + l] >> (2 * j)) & 3)), ml));
            }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    // group g = 32 elements 128 hf + 32 j + l: 2-bit q, a 4-bit scale and min per 16
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        const int hf = g >> 2, j = g & 3;
        const float dmin = swcu_h2f(swcu_ld_u16(blk + 82));
        for (int l = 0; l < 32; l++) q[l] = (int8_t)((blk[16 + 32 * hf + l] >> (2 * j)) & 3);
        for (int h = 0; h < 2; h++) {
            const int b = blk[8 * hf + 2 * j + h];
            sc[h] = b & 0x0F;
            mB[h] = -swcu_fmul(dmin, (float)(b >> 4));
        }
        *dA = swcu_h2f(swcu_ld_u16(blk + 80));
    }
};

// Q3_K: hmask[32] @0, qs[64] @32, scales[12] @96, d @108. Like Q2_K; the third
// bit of element 128*hf + 32*j + l is bit 4*hf + j of hmask[l]; a clear bit
// means -4.
template <> struct swcu_q<SW_TYPE_Q3_K> {
    enum { QK = 256, BYTES = 110, UPB = 2 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        const float d = swcu_h2f(swcu_ld_u16(blk + 108));
        uint32_t v[8], hm[8];
        swcu_ld_run32(blk + 32 + 32 * u, v);
        swcu_ld_run32(blk, hm);
        int sc[8];
SWCU_UNROLL
        for (int k = 0; k < 8; k++) sc[k] = swcu_scale_q3_K(8 * u + k, blk + 96);
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            float a = 0.0f;
SWCU_UNROLL
            for (int j = 0; j < 4; j++) {
                const int g = 4 * u + j, bit = 4 * u + j;
                int x[8];
                swcu_ld_group(xq + t * xq_st + 32 * g, x);
                int s0 = 0, s1 = 0;
SWCU_UNROLL
                for (int i = 0; i < 8; i++) {
                    const uint32_t q = ((v[i] >> (2 * j)) & 0x03030303u) |
                                       (((hm[i] >> bit) & 0x01010101u) << 2);
                    const int qs = swcu_vsub4((int)q, 0x04040404);
                    if (i < 4) s0 = swcu_dp4a(qs, x[i], s0);
                    else s1 = swcu_dp4a(qs, x[i], s1);
                }
                a += xds[t * xds_st + g].x * (float)(sc[2 * j] * s0 + sc[2 * j + 1] * s1);
            }
            acc[t] += d * a;
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        const float d = swcu_h2f(swcu_ld_u16(blk + 108));
        const uint8_t *q = blk + 32 + 32 * u, *hm = blk;
        for (int j = 0; j < 4; j++) {
            const int m = 1 << (4 * u + j);
            for (int k = 0; k < 2; k++) {
                const float dl = swcu_fmul(d, (float)swcu_scale_q3_K(8 * u + 2 * j + k, blk + 96));
                for (int l = 16 * k; l < 16 * k + 16; l++) {
                    const int v = ((q[l] >> (2 * j)) & 3) - ((hm[l] & m) ? 0 : 4);
                    st(128 * u + 32 * j + l, swcu_fmul(dl, (float)v));
                }
            }
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    // group g = 32 elements 128 u + 32 j + l: q - 4 in -4..3, a signed 6-bit scale per 16
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        const int u = g >> 2, j = g & 3, m = 1 << (4 * u + j);
        for (int l = 0; l < 32; l++)
            q[l] = (int8_t)(((blk[32 + 32 * u + l] >> (2 * j)) & 3) - ((blk[l] & m) ? 0 : 4));
        sc[0] = swcu_scale_q3_K(8 * u + 2 * j, blk + 96);
        sc[1] = swcu_scale_q3_K(8 * u + 2 * j + 1, blk + 96);
        *dA = swcu_h2f(swcu_ld_u16(blk + 108));
        mB[0] = mB[1] = 0.0f;
    }
};

// Q4_K: d @0, dmin @2, scales[12] @4, qs[128] @16. Unit p: qs bytes 32p..,
// low nibbles = elements 64p + l (sub-block 2p), high = 64p + 32 + l (2p+1).
template <> struct swcu_q<SW_TYPE_Q4_K> {
    enum { QK = 256, BYTES = 144, UPB = 4 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        const float d = swcu_h2f(swcu_ld_u16(blk)), dmin = swcu_h2f(swcu_ld_u16(blk + 2));
        int sa, ma, sb, mb;
        swcu_scale_min_k4(2 * u, blk + 4, &sa, &ma);
        swcu_scale_min_k4(2 * u + 1, blk + 4, &sb, &mb);
        int lo[8], hi[8];
        uint32_t run[8];
        swcu_ld_run32(blk + 16 + 32 * u, run);
SWCU_UNROLL
        for (int i = 0; i < 8; i++) {
            lo[i] = (int)(run[i] & 0x0F0F0F0Fu);
            hi[i] = (int)((run[i] >> 4) & 0x0F0F0F0Fu);
        }
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int xa[8], xb[8], s0 = 0, s1 = 0;
            swcu_ld_group(xq + t * xq_st + 64 * u, xa);
            swcu_ld_group(xq + t * xq_st + 64 * u + 32, xb);
SWCU_UNROLL
            for (int i = 0; i < 8; i++) {
                s0 = swcu_dp4a(lo[i], xa[i], s0);
                s1 = swcu_dp4a(hi[i], xb[i], s1);
            }
            const float2 da = xds[t * xds_st + 2 * u], db = xds[t * xds_st + 2 * u + 1];
            acc[t] += d * (da.x * (float)(sa * s0) + db.x * (float)(sb * s1)) -
                      dmin * ((float)ma * da.y + (float)mb * db.y);
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        const float d = swcu_h2f(swcu_ld_u16(blk)), dmin = swcu_h2f(swcu_ld_u16(blk + 2));
        int sc, m;
        swcu_scale_min_k4(2 * u, blk + 4, &sc, &m);
        const float d1 = swcu_fmul(d, (float)sc), m1 = swcu_fmul(dmin, (float)m);
        swcu_scale_min_k4(2 * u + 1, blk + 4, &sc, &m);
        const float d2 = swcu_fmul(d, (float)sc), m2 = swcu_fmul(dmin, (float)m);
        const uint8_t *q = blk + 16 + 32 * u;
        for (int l = 0; l < 32; l++) {
            st(64 * u + l, swcu_fsub(swcu_fmul(d1, (float)(q[l] & 0x0F)), m1));
            st(64 * u + 32 + l, swcu_fsub(swcu_fmul(d2, (float)(q[l] >> 4)), m2));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    // group g = sub-block g: nibbles of qs[32 (g / 2) ..], a 6-bit scale and min
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        const uint8_t *qs = blk + 16 + 32 * (g >> 1);
        const int sh = 4 * (g & 1);
        for (int l = 0; l < 32; l++) q[l] = (int8_t)((qs[l] >> sh) & 0x0F);
        int s, m;
        swcu_scale_min_k4(g, blk + 4, &s, &m);
        sc[0] = sc[1] = s;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = -swcu_fmul(swcu_h2f(swcu_ld_u16(blk + 2)), (float)m);
    }
};

// Q5_K: d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48. As Q4_K; the
// fifth bit of element l of sub-block j is bit j of qh[l].
template <> struct swcu_q<SW_TYPE_Q5_K> {
    enum { QK = 256, BYTES = 176, UPB = 4 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        const float d = swcu_h2f(swcu_ld_u16(blk)), dmin = swcu_h2f(swcu_ld_u16(blk + 2));
        int sa, ma, sb, mb;
        swcu_scale_min_k4(2 * u, blk + 4, &sa, &ma);
        swcu_scale_min_k4(2 * u + 1, blk + 4, &sb, &mb);
        int lo[8], hi[8];
        uint32_t run[8], hrun[8];
        swcu_ld_run32(blk + 48 + 32 * u, run);
        swcu_ld_run32(blk + 16, hrun);
SWCU_UNROLL
        for (int i = 0; i < 8; i++) {
            const uint32_t v = run[i], h = hrun[i];
            lo[i] = (int)((v & 0x0F0F0F0Fu) | (((h >> (2 * u)) & 0x01010101u) << 4));
            hi[i] = (int)(((v >> 4) & 0x0F0F0F0Fu) | (((h >> (2 * u + 1)) & 0x01010101u) << 4));
        }
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int xa[8], xb[8], s0 = 0, s1 = 0;
            swcu_ld_group(xq + t * xq_st + 64 * u, xa);
            swcu_ld_group(xq + t * xq_st + 64 * u + 32, xb);
SWCU_UNROLL
            for (int i = 0; i < 8; i++) {
                s0 = swcu_dp4a(lo[i], xa[i], s0);
                s1 = swcu_dp4a(hi[i], xb[i], s1);
            }
            const float2 da = xds[t * xds_st + 2 * u], db = xds[t * xds_st + 2 * u + 1];
            acc[t] += d * (da.x * (float)(sa * s0) + db.x * (float)(sb * s1)) -
                      dmin * ((float)ma * da.y + (float)mb * db.y);
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        const float d = swcu_h2f(swcu_ld_u16(blk)), dmin = swcu_h2f(swcu_ld_u16(blk + 2));
        int sc, m;
        swcu_scale_min_k4(2 * u, blk + 4, &sc, &m);
        const float d1 = swcu_fmul(d, (float)sc), m1 = swcu_fmul(dmin, (float)m);
        swcu_scale_min_k4(2 * u + 1, blk + 4, &sc, &m);
        const float d2 = swcu_fmul(d, (float)sc), m2 = swcu_fmul(dmin, (float)m);
        const uint8_t *ql = blk + 48 + 32 * u, *qh = blk + 16;
        const int u1 = 1 << (2 * u), u2 = 2 << (2 * u);
        for (int l = 0; l < 32; l++) {
            st(64 * u + l,
               swcu_fsub(swcu_fmul(d1, (float)((ql[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0))), m1));
            st(64 * u + 32 + l,
               swcu_fsub(swcu_fmul(d2, (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0))), m2));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    // as Q4_K; the fifth bit of element l of sub-block g is bit g of qh[l]
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        const uint8_t *qs = blk + 48 + 32 * (g >> 1), *qh = blk + 16;
        const int sh = 4 * (g & 1);
        for (int l = 0; l < 32; l++)
            q[l] = (int8_t)(((qs[l] >> sh) & 0x0F) | (((qh[l] >> g) & 1) << 4));
        int s, m;
        swcu_scale_min_k4(g, blk + 4, &s, &m);
        sc[0] = sc[1] = s;
        *dA = swcu_h2f(swcu_ld_u16(blk));
        mB[0] = mB[1] = -swcu_fmul(swcu_h2f(swcu_ld_u16(blk + 2)), (float)m);
    }
};

// Q6_K: ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208. Unit
// u = 2*hf + a: ql bytes 64hf + 32a + l hold elements 128hf + 32a + l (low
// nibble, qh[32hf + l] bits 2a..2a+1) and 128hf + 64 + 32a + l (high nibble,
// bits 2a+4..2a+5); element e of half hf has scale 8hf + (e % 128) / 16.
template <> struct swcu_q<SW_TYPE_Q6_K> {
    enum { QK = 256, BYTES = 210, UPB = 4 };
    template <int NT>
    static SWCU_HD void vdot(const uint8_t *blk, int u, const int8_t *xq, const float2 *xds,
                             int64_t xq_st, int64_t xds_st, int nt, float *acc) {
        const int hf = u >> 1, a = u & 1;
        const float d = swcu_h2f(swcu_ld_u16(blk + 208));
        const int8_t *sc = (const int8_t *)(blk + 192) + 8 * hf;
        int lo[8], hi[8];
        uint32_t run[8], hrun[8];
        swcu_ld_run32(blk + 64 * hf + 32 * a, run);
        swcu_ld_run32(blk + 128 + 32 * hf, hrun);
SWCU_UNROLL
        for (int i = 0; i < 8; i++) {
            const uint32_t v = run[i], h = hrun[i];
            lo[i] = swcu_vsub4((int)((v & 0x0F0F0F0Fu) | (((h >> (2 * a)) & 0x03030303u) << 4)),
                               0x20202020);
            hi[i] = swcu_vsub4(
                (int)(((v >> 4) & 0x0F0F0F0Fu) | (((h >> (2 * a + 4)) & 0x03030303u) << 4)),
                0x20202020);
        }
        const int gl = 4 * hf + a, gh = 4 * hf + 2 + a;
        const int cl0 = sc[2 * a], cl1 = sc[2 * a + 1], ch0 = sc[4 + 2 * a], ch1 = sc[5 + 2 * a];
SWCU_UNROLL
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            int xl[8], xh[8], l0 = 0, l1 = 0, h0 = 0, h1 = 0;
            swcu_ld_group(xq + t * xq_st + 32 * gl, xl);
            swcu_ld_group(xq + t * xq_st + 32 * gh, xh);
SWCU_UNROLL
            for (int i = 0; i < 4; i++) {
                l0 = swcu_dp4a(lo[i], xl[i], l0);
                l1 = swcu_dp4a(lo[i + 4], xl[i + 4], l1);
                h0 = swcu_dp4a(hi[i], xh[i], h0);
                h1 = swcu_dp4a(hi[i + 4], xh[i + 4], h1);
            }
            acc[t] += d * (xds[t * xds_st + gl].x * (float)(cl0 * l0 + cl1 * l1) +
                           xds[t * xds_st + gh].x * (float)(ch0 * h0 + ch1 * h1));
        }
    }
    template <typename ST> static SWCU_HD void dequant(const uint8_t *blk, int u, ST &st) {
        const int hf = u >> 1, a = u & 1;
        const float d = swcu_h2f(swcu_ld_u16(blk + 208));
        const int8_t *sc = (const int8_t *)(blk + 192) + 8 * hf;
        const uint8_t *ql = blk + 64 * hf + 32 * a, *qh = blk + 128 + 32 * hf;
        for (int l = 0; l < 32; l++) {
            const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> (2 * a)) & 3) << 4)) - 32;
            const int q2 = ((ql[l] >> 4) | (((qh[l] >> (2 * a + 4)) & 3) << 4)) - 32;
            st(128 * hf + 32 * a + l, swcu_fmul(swcu_fmul(d, (float)sc[2 * a + l / 16]), (float)q1));
            st(128 * hf + 64 + 32 * a + l,
               swcu_fmul(swcu_fmul(d, (float)sc[4 + 2 * a + l / 16]), (float)q2));
        }
    }

    // MMQ (cuda_mmq.cu): weights of group g (32 elements) as int8 q[32] with
    // w[i] = dA * sc[i / 16] * q[i] + mB[i / 16], up to float rounding.
    // group g = 32 elements 128 hf + 32 r + l: q - 32, a signed 8-bit scale per 16
    static SWCU_HD void unpack32(const uint8_t *blk, int g, int8_t *q, int sc[2], float *dA,
                                 float mB[2]) {
        const int hf = g >> 2, r = g & 3, a = r & 1, hi = r >> 1;
        const uint8_t *ql = blk + 64 * hf + 32 * a, *qh = blk + 128 + 32 * hf;
        for (int l = 0; l < 32; l++) {
            const int nib = hi ? ql[l] >> 4 : ql[l] & 0x0F;
            q[l] = (int8_t)((nib | (((qh[l] >> (2 * a + 4 * hi)) & 3) << 4)) - 32);
        }
        const int8_t *scales = (const int8_t *)(blk + 192) + 8 * hf + 2 * r;
        sc[0] = scales[0];
        sc[1] = scales[1];
        *dA = swcu_h2f(swcu_ld_u16(blk + 208));
        mB[0] = mB[1] = 0.0f;
    }
};

// Call F.template operator()<TYPE>() for a runtime quant type; false if the
// type has no swcu_q specialization.
template <typename F> static inline bool swcu_dispatch_quant(int type, F &&f) {
    switch (type) {
    case SW_TYPE_Q4_0: f.template operator()<SW_TYPE_Q4_0>(); return true;
    case SW_TYPE_Q4_1: f.template operator()<SW_TYPE_Q4_1>(); return true;
    case SW_TYPE_Q5_0: f.template operator()<SW_TYPE_Q5_0>(); return true;
    case SW_TYPE_Q5_1: f.template operator()<SW_TYPE_Q5_1>(); return true;
    case SW_TYPE_Q8_0: f.template operator()<SW_TYPE_Q8_0>(); return true;
    case SW_TYPE_Q2_K: f.template operator()<SW_TYPE_Q2_K>(); return true;
    case SW_TYPE_Q3_K: f.template operator()<SW_TYPE_Q3_K>(); return true;
    case SW_TYPE_Q4_K: f.template operator()<SW_TYPE_Q4_K>(); return true;
    case SW_TYPE_Q5_K: f.template operator()<SW_TYPE_Q5_K>(); return true;
    case SW_TYPE_Q6_K: f.template operator()<SW_TYPE_Q6_K>(); return true;
    default: return false;
    }
}

// The host self-tests: run checker C (a struct {sw_err *err; sw_status st;}
// with a template operator()<TYPE>) for every quant type, first failure out.
template <typename C> static inline sw_status swcu_check_each_quant(sw_err *err) {
    static const int types[] = {SW_TYPE_Q4_0, SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1,
                                SW_TYPE_Q8_0, SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K,
                                SW_TYPE_Q5_K, SW_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        C c = {err, SW_OK};
        if (!swcu_dispatch_quant(types[i], c))
            return sw_err_set(err, SW_E_INTERNAL, "selftest: no swcu_q for %s",
                              sw_type_name((uint32_t)types[i]));
        if (c.st != SW_OK) return c.st;
    }
    return SW_OK;
}

#endif
