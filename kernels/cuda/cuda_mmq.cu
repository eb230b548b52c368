// cuda_mmq.cu — the int8 tensor-core matmul (MMQ) for 9..128 rows of
// activations on quantized weights in their GGUF blocks: the kernel and its
// launcher. The tile functions, and what the kernel assumes, are in
// cuda_mmq.cuh (shared with the host self-test).
//
// Bytes: each weight once per block column (ceil(T / BT) of them: one for
// T <= 128), 4 N T written, the activations (T (K + K/4)) once per block row
// from L2. Unverified on hardware (written without a GPU): the first device
// run checks it through test_cuda_ops (matmul at T = 17, 64 and 100 against the
// host-quantized activations, and inside a graph in test_graph_replay).
#include "cuda_internal.h"
#include "cuda_mmq.cuh"

// c += A b on the tensor cores (fragments as in cuda_mmq.cuh). sm_80+.
SWCU_D void swcu_mma_s8_16816(int c[4], const int a[2], int b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, "
                 "{%6}, {%0, %1, %2, %3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b));
#else
    (void)c, (void)a, (void)b;
#endif
}

template <int TYPE, int NF>
__global__ void __launch_bounds__(MMQ_THREADS)
k_mmq(const uint8_t *__restrict__ w, uint64_t ws, int K, int N, const int8_t *__restrict__ xq,
      const float2 *__restrict__ xds, int T, float *__restrict__ out, int64_t os,
      const float *__restrict__ bias) {
    constexpr int BT = 8 * NF;
    __shared__ swcu_mmq_w tw;
    __shared__ swcu_mmq_x<BT> tx;
    const int tid = threadIdx.x, lane = tid % 32, wp = tid / 32;
    const int n0 = blockIdx.x * MMQ_ROWS, t0 = blockIdx.y * BT, G = K / 32;
    float acc[NF][4];
#pragma unroll
    for (int f = 0; f < NF; f++)
#pragma unroll
        for (int i = 0; i < 4; i++) acc[f][i] = 0.0f;
    for (int g = 0; g < G; g++) {
        if (tid < MMQ_ROWS) {
            const int n = n0 + tid;
            swcu_mmq_load_w<TYPE>(tw, tid, n < N ? w + (uint64_t)n * ws : nullptr, g);
        }
        for (int j = tid; j < BT; j += MMQ_THREADS) {
            const int t = t0 + j;
            swcu_mmq_load_x<BT>(tx, j, t < T ? xq + (int64_t)t * K : nullptr,
                                t < T ? xds + (int64_t)t * G : nullptr, g);
        }
        __syncthreads();
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int a[2];
            swcu_mmq_frag_a(tw, wp, lane, h, a);
#pragma unroll
            for (int f = 0; f < NF; f++) {
                int c[4] = {0, 0, 0, 0};
                swcu_mma_s8_16816(c, a, swcu_mmq_frag_b(tx, f, lane, h));
                swcu_mmq_fold(tw, tx, wp, lane, h, f, c, acc[f]);
            }
        }
        __syncthreads(); // the tiles are refilled for the next group
    }
#pragma unroll
    for (int f = 0; f < NF; f++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int row = n0 + 16 * wp + swcu_mma_c_row(lane, i);
            const int tok = t0 + 8 * f + swcu_mma_c_col(lane, i);
            if (row < N && tok < T) out[(int64_t)tok * os + row] = acc[f][i] + (bias ? bias[row] : 0.0f);
        }
}

namespace {
struct launch_mmq {
    const uint8_t *w;
    int64_t ws, K, N, T, os;
    const int8_t *xq;
    const float2 *xds;
    float *out;
    const float *bias;
    cudaStream_t st;
    cudaError_t e;
    template <int NF, int TYPE> void go() {
        dim3 grid((unsigned)((N + MMQ_ROWS - 1) / MMQ_ROWS), (unsigned)((T + 8 * NF - 1) / (8 * NF)));
        k_mmq<TYPE, NF><<<grid, MMQ_THREADS, 0, st>>>(w, (uint64_t)ws, (int)K, (int)N, xq, xds,
                                                       (int)T, out, os, bias);
        e = cudaGetLastError();
    }
    template <int TYPE> void operator()() {
        if (T <= 32) go<4, TYPE>();
        else go<16, TYPE>();
    }
};
} // namespace

sw_status swcu_mmq(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                   const int8_t *xq, const float2 *xds, int64_t T, float *out, int64_t os,
                   const float *bias, cudaStream_t st, const swcu_op *op, sw_err *err) {
    if (T > 65535 * 128)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda matmul: %lld rows for the int8 tensor cores",
                          (long long)T);
    launch_mmq l = {w, ws, K, N, T, os, xq, xds, out, bias, st, cudaSuccess};
    if (!swcu_dispatch_quant(type, l))
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda matmul: no int8 tensor-core kernel for %s",
                          sw_type_name((uint32_t)type));
    if (l.e != cudaSuccess) return swcu_cuda_fail(err, l.e, "launch k_mmq", op);
    return SW_OK;
}
