// cuda_matvec.cu — the decode-side helpers of matmul: quantizing activations to
// int8 groups for the integer mat-vec (swcu_quantize_q8), and the mat-vec for
// F32 / F16 / BF16 weights (x stays f32; products and sums in f32).
// Unverified on hardware (written without a GPU).
#include "cuda_internal.h"
#include "cuda_quant.cuh"

#define Q8_WARPS 4
#define MMVF_THREADS 128

// One warp per 32-element group: amax, d = amax / 127, q = rint(x / d), and
// s = d * sum(q). grid (ceil(G / 4), T). Bytes: reads 4K, writes K + K/4 per
// token.
__global__ void __launch_bounds__(Q8_WARPS * 32)
k_quantize_q8(const float *__restrict__ x, int64_t xs, int G, int8_t *__restrict__ xq,
              float2 *__restrict__ xds) {
    const int lane = threadIdx.x % 32, g = blockIdx.x * Q8_WARPS + threadIdx.x / 32;
    const int t = blockIdx.y;
    if (g >= G) return; // whole warps leave; no block-level sync below
    const int64_t K = (int64_t)G * 32;
    const float v = x[(int64_t)t * xs + (int64_t)g * 32 + lane];
    const float amax = swcu_warp_max(fabsf(v));
    const float d = swcu_q8_scale(amax);
    const int q = swcu_q8_elem(v, d);
    const int sum = swcu_warp_sum_i(q);
    xq[(int64_t)t * K + (int64_t)g * 32 + lane] = (int8_t)q;
    if (lane == 0) xds[(int64_t)t * G + g] = make_float2(d, d * (float)sum);
}

// The swiglu kernel's arithmetic, then k_quantize_q8's, one warp per group.
// grid (ceil(G / 4), T). Bytes: reads 8K, writes 4K + K + K/4 per token.
__global__ void __launch_bounds__(Q8_WARPS * 32)
k_swiglu_q8(const uint8_t *a, uint64_t anb1, const uint8_t *b, uint64_t bnb1, uint8_t *o,
            uint64_t onb1, int G, int8_t *__restrict__ xq, float2 *__restrict__ xds) {
    const int lane = threadIdx.x % 32, g = blockIdx.x * Q8_WARPS + threadIdx.x / 32;
    const int t = blockIdx.y;
    if (g >= G) return;
    const int64_t K = (int64_t)G * 32, e = (int64_t)g * 32 + lane;
    const float x = ((const float *)(a + (uint64_t)t * anb1))[e];
    const float y = ((const float *)(b + (uint64_t)t * bnb1))[e];
    const float v = __fmul_rn(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))), y);
    ((float *)(o + (uint64_t)t * onb1))[e] = v;
    const float amax = swcu_warp_max(fabsf(v));
    const float d = swcu_q8_scale(amax);
    const int q = swcu_q8_elem(v, d);
    const int sum = swcu_warp_sum_i(q);
    xq[(int64_t)t * K + e] = (int8_t)q;
    if (lane == 0) xds[(int64_t)t * G + g] = make_float2(d, d * (float)sum);
}

sw_status swcu_swiglu_q8(const swcu_op *op, int8_t *xq, float2 *xds, cudaStream_t st,
                         sw_err *err) {
    const swcu_tensor *a = &op->t[0], *b = &op->t[1], *o = &op->t[2];
    const int64_t G = a->ne[0] / 32, T = a->ne[1];
    if (T > 65535) return sw_err_set(err, SW_E_UNSUPPORTED, "cuda swiglu: %lld rows", (long long)T);
    dim3 grid((unsigned)((G + Q8_WARPS - 1) / Q8_WARPS), (unsigned)T);
    k_swiglu_q8<<<grid, Q8_WARPS * 32, 0, st>>>(a->p, a->nb[1], b->p, b->nb[1], o->p, o->nb[1],
                                                (int)G, xq, xds);
    SWCU_LAUNCHED("k_swiglu_q8");
    return SW_OK;
}

sw_status swcu_quantize_q8(const float *x, int64_t xs, int64_t K, int64_t T, int8_t *xq,
                           float2 *xds, cudaStream_t st, const swcu_op *op, sw_err *err) {
    const int64_t G = K / 32;
    dim3 grid((unsigned)((G + Q8_WARPS - 1) / Q8_WARPS), (unsigned)T);
    k_quantize_q8<<<grid, Q8_WARPS * 32, 0, st>>>(x, xs, (int)G, xq, xds);
    SWCU_LAUNCHED("k_quantize_q8");
    return SW_OK;
}

template <int TYPE> SWCU_D float mmvf_elem(const uint8_t *r, int64_t k) {
    if (TYPE == SW_TYPE_F32) return ((const float *)r)[k];
    if (TYPE == SW_TYPE_F16) return swcu_h2f(((const uint16_t *)r)[k]);
    return swcu_bf2f(((const uint16_t *)r)[k]);
}

// 8 consecutive weights starting at element 8c (16- or 32-byte aligned).
template <int TYPE> SWCU_D void mmvf_load8(const uint8_t *r, int64_t c, float wv[8]) {
    if (TYPE == SW_TYPE_F32) {
        const float4 a = ((const float4 *)r)[2 * c], b = ((const float4 *)r)[2 * c + 1];
        wv[0] = a.x; wv[1] = a.y; wv[2] = a.z; wv[3] = a.w;
        wv[4] = b.x; wv[5] = b.y; wv[6] = b.z; wv[7] = b.w;
    } else {
        const uint4 u = ((const uint4 *)r)[c];
        const uint32_t p[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint16_t lo = (uint16_t)(p[i] & 0xffffu), hi = (uint16_t)(p[i] >> 16);
            wv[2 * i] = TYPE == SW_TYPE_F16 ? swcu_h2f(lo) : swcu_bf2f(lo);
            wv[2 * i + 1] = TYPE == SW_TYPE_F16 ? swcu_h2f(hi) : swcu_bf2f(hi);
        }
    }
}

// Row-parallel like k_mmvq (tpr threads per row). VEC: 16-byte weight loads
// and float4 activation loads, 8 elements per step (needs K % 8 == 0 and
// aligned rows); otherwise one element per step. Bytes: N * K * sizeof(w)
// from DRAM, T * 4K of x per row-block from L1/L2, 4NT written.
template <int TYPE, int NT, bool VEC>
__global__ void __launch_bounds__(MMVF_THREADS)
k_mmv_float(const uint8_t *__restrict__ w, uint64_t ws, int64_t K, int N,
            const float *__restrict__ x, int64_t xs, int nt, float *__restrict__ out, int64_t os,
            const float *__restrict__ bias) {
    __shared__ float sh[MMVF_THREADS / 32][NT];
    const int tpr = blockDim.x;
    const int row = blockIdx.x * blockDim.y + threadIdx.y;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if (row < N) {
        const uint8_t *wr = w + (uint64_t)row * ws;
        if (VEC) {
            for (int64_t c = threadIdx.x; c < K / 8; c += tpr) {
                float wv[8];
                mmvf_load8<TYPE>(wr, c, wv);
#pragma unroll
                for (int t = 0; t < NT; t++) {
                    if (t >= nt) break;
                    const float4 *xp = (const float4 *)(x + (int64_t)t * xs) + 2 * c;
                    const float4 a = xp[0], b = xp[1];
                    acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w +
                              wv[4] * b.x + wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
                }
            }
        } else {
            for (int64_t k = threadIdx.x; k < K; k += tpr) {
                const float wk = mmvf_elem<TYPE>(wr, k);
#pragma unroll
                for (int t = 0; t < NT; t++) {
                    if (t >= nt) break;
                    acc[t] += wk * x[(int64_t)t * xs + k];
                }
            }
        }
    }
    swcu_mmv_store<NT>(acc, sh, tpr, row, N, nt, out, os, bias);
}

template <int TYPE>
static void launch_mmv_float(const uint8_t *w, int64_t ws, int64_t K, int64_t N, const float *x,
                             int64_t xs, int64_t T, float *out, int64_t os, const float *bias,
                             cudaStream_t st) {
    const size_t esz = TYPE == SW_TYPE_F32 ? 4 : 2;
    const bool vec = K % 8 == 0 && (uintptr_t)w % 16 == 0 && (ws % 16) == 0 &&
                     (uintptr_t)x % 16 == 0 && xs % 4 == 0 && (K * (int64_t)esz) % 16 == 0;
    const int tpr = swcu_mmv_tpr(vec ? K / 8 : K / 2);
    dim3 block(tpr, MMVF_THREADS / tpr);
    const unsigned grid = (unsigned)((N + block.y - 1) / block.y);
    const int nt = (int)T;
#define MMVF(NT_, V_) \
    k_mmv_float<TYPE, NT_, V_><<<grid, block, 0, st>>>(w, ws, K, (int)N, x, xs, nt, out, os, bias)
    if (!vec) MMVF(8, false);
    else if (T <= 1) MMVF(1, true);
    else if (T <= 2) MMVF(2, true);
    else if (T <= 4) MMVF(4, true);
    else MMVF(8, true);
#undef MMVF
}

sw_status swcu_mmv_float(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                         const float *x, int64_t xs, int64_t T, float *out, int64_t os,
                         const float *bias, cudaStream_t st, const swcu_op *op, sw_err *err) {
    switch (type) {
    case SW_TYPE_F32: launch_mmv_float<SW_TYPE_F32>(w, ws, K, N, x, xs, T, out, os, bias, st); break;
    case SW_TYPE_F16: launch_mmv_float<SW_TYPE_F16>(w, ws, K, N, x, xs, T, out, os, bias, st); break;
    case SW_TYPE_BF16: launch_mmv_float<SW_TYPE_BF16>(w, ws, K, N, x, xs, T, out, os, bias, st); break;
    default:
        return sw_err_set(err, SW_E_INTERNAL, "cuda matmul: %s is not a float type",
                          sw_type_name((uint32_t)type));
    }
    SWCU_LAUNCHED("k_mmv_float");
    return SW_OK;
}
