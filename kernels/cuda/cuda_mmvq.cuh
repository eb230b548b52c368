// cuda_mmvq.cuh — the quantized mat-vec kernel template (decode, T <= 8),
// instantiated per weight type in cuda_mmvq_legacy.cu (Q4_0..Q8_0) and
// cuda_mmvq_k.cu (Q2_K..Q6_K) so the two compile in parallel.
//
// out[n, t] = sum_k W[n, k] * x_hat[t, k] (+ bias[n]): W in its GGUF layout,
// x_hat the int8 groups made by swcu_quantize_q8. A row is handled by `tpr`
// threads (32, 64 or 128: swcu_mmv_tpr), 128 / tpr rows per block; thread i
// of a row takes units i, i + tpr, ... (consecutive threads read consecutive
// units, so a warp reads a contiguous stretch of the row), accumulates all T
// tokens from one read of the weights, then the row's threads reduce with
// shuffles (and shared memory across warps when tpr > 32).
//
// Bytes per call: N * row_bytes of weights from DRAM (the point: decode
// streams each weight once), T * (K + K/4) of activations per row-block from
// L1/L2, 4 * N * T written.
//
// Unverified on hardware (written without a GPU); the per-unit math is
// checked on the host by sw_cuda_quant_selftest.
#ifndef SW_CUDA_MMVQ_CUH
#define SW_CUDA_MMVQ_CUH

#include "cuda_internal.h"
#include "cuda_quant.cuh"

#define MMVQ_THREADS 128

template <int TYPE, int NT>
__global__ void __launch_bounds__(MMVQ_THREADS)
k_mmvq(const uint8_t *__restrict__ w, uint64_t ws, int units, int N, const int8_t *__restrict__ xq,
       const float2 *__restrict__ xds, int K, int nt, float *__restrict__ out, int64_t os,
       const float *__restrict__ bias) {
    typedef swcu_q<TYPE> Q;
    __shared__ float sh[MMVQ_THREADS / 32][NT];
    const int tpr = blockDim.x;
    const int row = blockIdx.x * blockDim.y + threadIdx.y;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if (row < N) {
        const uint8_t *wr = w + (uint64_t)row * ws;
        for (int u = threadIdx.x; u < units; u += tpr) {
            const int b = u / Q::UPB, iu = u % Q::UPB;
            Q::template vdot<NT>(wr + (uint64_t)b * Q::BYTES, iu, xq + (int64_t)b * Q::QK,
                                 xds + (int64_t)b * (Q::QK / 32), K, K / 32, nt, acc);
        }
    }
    swcu_mmv_store<NT>(acc, sh, tpr, row, N, nt, out, os, bias);
}

template <int TYPE>
static cudaError_t swcu_launch_mmvq(const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                                    const int8_t *xq, const float2 *xds, int64_t T, float *out,
                                    int64_t os, const float *bias, cudaStream_t st) {
    typedef swcu_q<TYPE> Q;
    const int units = (int)(K / Q::QK * Q::UPB);
    const int tpr = swcu_mmv_tpr(units);
    dim3 block(tpr, MMVQ_THREADS / tpr);
    const unsigned grid = (unsigned)((N + block.y - 1) / block.y);
    const int nt = (int)T;
    if (T <= 1)
        k_mmvq<TYPE, 1><<<grid, block, 0, st>>>(w, ws, units, (int)N, xq, xds, (int)K, nt, out, os, bias);
    else if (T <= 2)
        k_mmvq<TYPE, 2><<<grid, block, 0, st>>>(w, ws, units, (int)N, xq, xds, (int)K, nt, out, os, bias);
    else if (T <= 4)
        k_mmvq<TYPE, 4><<<grid, block, 0, st>>>(w, ws, units, (int)N, xq, xds, (int)K, nt, out, os, bias);
    else
        k_mmvq<TYPE, 8><<<grid, block, 0, st>>>(w, ws, units, (int)N, xq, xds, (int)K, nt, out, os, bias);
    return cudaGetLastError();
}

#endif
