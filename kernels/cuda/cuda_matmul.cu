// cuda_matmul.cu — out[N, T] = W[K, N]^T x[K, T] (+ bias): path choice,
// scratch layout, and the prefill path.
//
// Paths (chosen at record time, stored in the op):
// - T <= mmvq_max_t (default 8), quantized W: quantize x to int8 groups, then
//   the integer mat-vec (cuda_mmvq*.cu). Memory-bound: streams W once.
// - T <= mmvq_max_t, F32/F16/BF16 W: f32 mat-vec (cuda_matvec.cu).
// - mmvq_max_t < T <= mmq_max_t (default 128), quantized W: the same int8
//   groups on the int8 tensor cores, straight from the quantized blocks
//   (cuda_mmq.cu): W streams once, no f16 copy.
// - larger T (or float W): tensor cores through cuBLAS. F16/BF16 W are used in place (x is
//   converted to the same 16-bit type); F32 W run as an f32 GEMM (no TF32);
//   quantized W are dequantized to f16 one tile of rows at a time into scratch
//   (SW_CUDA_DEQUANT_TILE_MB, default 64 MiB) and each tile is one GemmEx
//   (f16 in, f32 accumulate and out).
//
// Weights are used in their GGUF layout; upload_weight does not repack. A
// repacked, 16-byte-aligned layout is the next step if the H200 bench shows
// the 2-byte loads of the packed blocks costing bandwidth (cuda_quant.cuh).
//
// Unverified on hardware (written without a GPU).
#include "cuda_internal.h"
#include "cuda_quant.cuh"

#define CONV_THREADS 256
#define DQ_THREADS 128

static inline size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

static bool is_float_type(int t) {
    return t == SW_TYPE_F32 || t == SW_TYPE_F16 || t == SW_TYPE_BF16;
}

// Rows of W per dequantized f16 tile.
static int64_t tile_rows(const sw_cuda_backend *be, int64_t K, int64_t N) {
    int64_t r = (int64_t)(be->dequant_tile_bytes / ((size_t)K * 2));
    r = r / 64 * 64;
    if (r < 64) r = 64;
    return SW_MIN(r, N);
}

void swcu_matmul_plan(const sw_cuda_backend *be, swcu_op *op) {
    const swcu_tensor *w = &op->t[0], *x = &op->t[1];
    const int64_t T = x->ne[1];
    if (T <= be->mmvq_max_t) op->i[0] = is_float_type(w->type) ? SWCU_MM_MMV_FLOAT : SWCU_MM_MMVQ;
    else if (T <= be->mmq_max_t && !is_float_type(w->type)) op->i[0] = SWCU_MM_MMQ;
    else op->i[0] = SWCU_MM_CUBLAS;
    op->i[1] = op->i[0] == SWCU_MM_CUBLAS && !is_float_type(w->type)
                   ? (int32_t)tile_rows(be, w->ne[0], w->ne[1])
                   : 0;
}

size_t swcu_matmul_scratch(const sw_cuda_backend *be, const swcu_op *op) {
    (void)be;
    const swcu_tensor *w = &op->t[0], *x = &op->t[1];
    const size_t K = (size_t)w->ne[0], T = (size_t)x->ne[1];
    switch (op->i[0]) {
    case SWCU_MM_MMVQ:
    case SWCU_MM_MMQ: return align256(T * K) + align256(T * (K / 32) * sizeof(float2));
    case SWCU_MM_MMV_FLOAT: return 0;
    default:
        if (w->type == SW_TYPE_F32) return 0;
        return align256(T * K * 2) + (is_float_type(w->type) ? 0 : (size_t)op->i[1] * K * 2);
    }
}

// x [K, T] f32 (row stride xs floats) -> [T][K] f16 or bf16, contiguous.
// Bytes: reads 4KT, writes 2KT.
template <bool BF16>
__global__ void __launch_bounds__(CONV_THREADS)
k_convert_x(const float *__restrict__ x, int64_t xs, int64_t K, uint16_t *__restrict__ y) {
    const int64_t k = (int64_t)blockIdx.x * CONV_THREADS + threadIdx.x, t = blockIdx.y;
    if (k >= K) return;
    const float v = x[t * xs + k];
    y[t * K + k] = BF16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v))
                        : __half_as_ushort(__float2half_rn(v));
}

// Stores of one unit into the block's shared staging area (f16).
struct swcu_store_sm {
    __half *o;
    SWCU_HD void operator()(int i, float v) const { o[i] = __float2half_rn(v); }
};

// Dequantize `rows` rows of W into an f16 tile [rows][K]. A block takes
// DQ_THREADS consecutive units of one row (whole quant blocks: DQ_THREADS is a
// multiple of every type's units per block), one thread per unit, into shared
// memory; then the block writes its stretch of the row, contiguous, with
// coalesced 16-byte stores. Bytes: reads rows * row_bytes, writes 2 rows K.
template <int TYPE>
__global__ void __launch_bounds__(DQ_THREADS)
k_dequant_f16(const uint8_t *__restrict__ w, uint64_t ws, int units, int ublocks, int64_t K,
              __half *__restrict__ tile) {
    typedef swcu_q<TYPE> Q;
    constexpr int EPU = Q::QK / Q::UPB; // elements per unit
    static_assert(DQ_THREADS % Q::UPB == 0, "k_dequant_f16: a block must take whole quant blocks");
    __shared__ __align__(16) __half sm[DQ_THREADS * EPU];
    const int64_t r = blockIdx.x / ublocks;
    const int u0 = (blockIdx.x % ublocks) * DQ_THREADS, ul = threadIdx.x, u = u0 + ul;
    const int n_units = min(DQ_THREADS, units - u0);
    if (ul < n_units) {
        const int b = u / Q::UPB, iu = u % Q::UPB;
        swcu_store_sm st = {sm + (ul / Q::UPB) * Q::QK};
        Q::dequant(w + (uint64_t)r * ws + (uint64_t)b * Q::BYTES, iu, st);
    }
    __syncthreads();
    // n_units * EPU halves from element (u0 / UPB) * QK of the row; both are
    // multiples of 8 halves (16 bytes), and so are K and the tile's base
    uint4 *dst = (uint4 *)(tile + r * K + (int64_t)(u0 / Q::UPB) * Q::QK);
    const uint4 *src = (const uint4 *)sm;
    for (int c = threadIdx.x; c < n_units * EPU / 8; c += DQ_THREADS) dst[c] = src[c];
}

namespace {
struct launch_dq {
    const uint8_t *w;
    int64_t ws, K, rows;
    __half *tile;
    cudaStream_t st;
    cudaError_t e;
    template <int TYPE> void operator()() {
        typedef swcu_q<TYPE> Q;
        const int units = (int)(K / Q::QK * Q::UPB);
        const int ublocks = (units + DQ_THREADS - 1) / DQ_THREADS;
        k_dequant_f16<TYPE><<<(unsigned)(rows * ublocks), DQ_THREADS, 0, st>>>(
            w, (uint64_t)ws, units, ublocks, K, tile);
        e = cudaGetLastError();
    }
};
} // namespace

// out[n, t] += bias[n]. Bytes: reads 4N + 4NT, writes 4NT.
__global__ void __launch_bounds__(CONV_THREADS)
k_add_bias(float *__restrict__ out, int64_t os, int64_t N, const float *__restrict__ bias) {
    const int64_t n = (int64_t)blockIdx.x * CONV_THREADS + threadIdx.x, t = blockIdx.y;
    if (n < N) out[t * os + n] += bias[n];
}

static sw_status run_cublas(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *w = &op->t[0], *x = &op->t[1], *bias = &op->t[2], *o = &op->t[3];
    const int64_t K = w->ne[0], N = w->ne[1], T = x->ne[1];
    const int64_t xs = (int64_t)(x->nb[1] / 4), os = (int64_t)(o->nb[1] / 4);
    float *out = (float *)o->p;
    const float alpha = 1.0f, beta = 0.0f;
    if (T > 65535) return sw_err_set(err, SW_E_UNSUPPORTED, "cuda matmul: T = %lld over 65535", (long long)T);
    if (w->type == SW_TYPE_F32) {
        SWCU_CUBLAS(cublasGemmEx(be->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)T, (int)K, &alpha,
                                 w->p, CUDA_R_32F, (int)(w->nb[1] / 4), x->p, CUDA_R_32F, (int)xs,
                                 &beta, out, CUDA_R_32F, (int)os, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    } else {
        uint16_t *x16 = (uint16_t *)be->scratch;
        const bool bf = w->type == SW_TYPE_BF16;
        dim3 g((unsigned)((K + CONV_THREADS - 1) / CONV_THREADS), (unsigned)T);
        if (bf) k_convert_x<true><<<g, CONV_THREADS, 0, be->stream>>>((const float *)x->p, xs, K, x16);
        else k_convert_x<false><<<g, CONV_THREADS, 0, be->stream>>>((const float *)x->p, xs, K, x16);
        SWCU_LAUNCHED("k_convert_x");
        const cudaDataType_t ty = bf ? CUDA_R_16BF : CUDA_R_16F;
        if (is_float_type(w->type)) {
            SWCU_CUBLAS(cublasGemmEx(be->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)T, (int)K,
                                     &alpha, w->p, ty, (int)(w->nb[1] / 2), x16, ty, (int)K, &beta,
                                     out, CUDA_R_32F, (int)os, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
        } else {
            __half *tile = (__half *)(be->scratch + align256((size_t)T * (size_t)K * 2));
            const int64_t nc = op->i[1];
            for (int64_t n0 = 0; n0 < N; n0 += nc) {
                const int64_t rows = SW_MIN(nc, N - n0);
                launch_dq l = {w->p + (uint64_t)n0 * w->nb[1], (int64_t)w->nb[1], K, rows, tile,
                               be->stream, cudaSuccess};
                if (!swcu_dispatch_quant(w->type, l))
                    return sw_err_set(err, SW_E_UNSUPPORTED, "cuda matmul: no kernel for %s",
                                      sw_type_name((uint32_t)w->type));
                if (l.e != cudaSuccess) return swcu_cuda_fail(err, l.e, "launch k_dequant_f16", op);
                SWCU_CUBLAS(cublasGemmEx(be->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)T,
                                         (int)K, &alpha, tile, CUDA_R_16F, (int)K, x16, CUDA_R_16F,
                                         (int)K, &beta, out + n0, CUDA_R_32F, (int)os,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            }
        }
    }
    if (bias->p) {
        dim3 g((unsigned)((N + CONV_THREADS - 1) / CONV_THREADS), (unsigned)T);
        k_add_bias<<<g, CONV_THREADS, 0, be->stream>>>(out, os, N, (const float *)bias->p);
        SWCU_LAUNCHED("k_add_bias");
    }
    return SW_OK;
}

sw_status swcu_run_matmul(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *w = &op->t[0], *x = &op->t[1], *bias = &op->t[2], *o = &op->t[3];
    const int64_t K = w->ne[0], N = w->ne[1], T = x->ne[1];
    const int64_t xs = (int64_t)(x->nb[1] / 4), os = (int64_t)(o->nb[1] / 4);
    const float *bp = (const float *)bias->p;
    switch (op->i[0]) {
    case SWCU_MM_MMV_FLOAT:
        return swcu_mmv_float(w->type, w->p, (int64_t)w->nb[1], K, N, (const float *)x->p, xs, T,
                              (float *)o->p, os, bp, be->stream, op, err);
    case SWCU_MM_MMVQ:
    case SWCU_MM_MMQ: {
        int8_t *xq = (int8_t *)be->scratch;
        float2 *xds = (float2 *)(be->scratch + swcu_xds_offset(T, K));
        if (!op->i[2]) { // else the swiglu before quantized x (fuse_swiglu_quantize)
            sw_status st =
                swcu_quantize_q8((const float *)x->p, xs, K, T, xq, xds, be->stream, op, err);
            if (st != SW_OK) return st;
        }
        if (op->i[0] == SWCU_MM_MMQ)
            return swcu_mmq(w->type, w->p, (int64_t)w->nb[1], K, N, xq, xds, T, (float *)o->p, os,
                            bp, be->stream, op, err);
        const bool kq = w->type == SW_TYPE_Q2_K || w->type == SW_TYPE_Q3_K ||
                        w->type == SW_TYPE_Q4_K || w->type == SW_TYPE_Q5_K || w->type == SW_TYPE_Q6_K;
        return (kq ? swcu_mmvq_k : swcu_mmvq_legacy)(w->type, w->p, (int64_t)w->nb[1], K, N, xq,
                                                      xds, T, (float *)o->p, os, bp, be->stream, op,
                                                      err);
    }
    default: return run_cublas(be, op, err);
    }
}
