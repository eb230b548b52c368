// cuda_mmvq_k.cu — decode mat-vec for the 256-element K-quant types (Q2_K,
// Q3_K, Q4_K, Q5_K, Q6_K). The kernel is cuda_mmvq.cuh.
#include "cuda_mmvq.cuh"

sw_status swcu_mmvq_k(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                      const int8_t *xq, const float2 *xds, int64_t T, float *out, int64_t os,
                      const float *bias, cudaStream_t st, const swcu_op *op, sw_err *err) {
    cudaError_t e;
    switch (type) {
    case SW_TYPE_Q2_K: e = swcu_launch_mmvq<SW_TYPE_Q2_K>(w, ws, K, N, xq, xds, T, out, os, bias, st); break;
    case SW_TYPE_Q3_K: e = swcu_launch_mmvq<SW_TYPE_Q3_K>(w, ws, K, N, xq, xds, T, out, os, bias, st); break;
    case SW_TYPE_Q4_K: e = swcu_launch_mmvq<SW_TYPE_Q4_K>(w, ws, K, N, xq, xds, T, out, os, bias, st); break;
    case SW_TYPE_Q5_K: e = swcu_launch_mmvq<SW_TYPE_Q5_K>(w, ws, K, N, xq, xds, T, out, os, bias, st); break;
    case SW_TYPE_Q6_K: e = swcu_launch_mmvq<SW_TYPE_Q6_K>(w, ws, K, N, xq, xds, T, out, os, bias, st); break;
    default:
        return sw_err_set(err, SW_E_INTERNAL, "cuda matmul: %s is not a K-quant type",
                          sw_type_name((uint32_t)type));
    }
    if (e != cudaSuccess) return swcu_cuda_fail(err, e, "launch k_mmvq", op);
    return SW_OK;
}
