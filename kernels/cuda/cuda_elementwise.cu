// cuda_elementwise.cu — the elementwise ops on F32 tensors of one 4-D shape
// with strided rows: add (out = a + b), swiglu (silu(a) * b), geglu
// (gelu_tanh(a) * b), scale (a * f) and softcap (f * tanh(a / f)). They mirror
// the CPU backend's formulas: silu(g) = g / (1 + exp(-g)) and gelu(g) =
// g / (1 + exp(-2u)), u = sqrt(2/pi) (g + 0.044715 g^3) (the tanh form of
// GELU written as g * sigmoid(2u)), with IEEE division and CUDA's expf and
// tanhf (<= 2 ulp), so results are within a few ulp of the CPU; add and scale
// are exact. out may alias a or b (each element is read and written by one
// thread). swiglu fused with the next matmul's int8 quantization:
// cuda_matvec.cu. Unverified on hardware.
#include "cuda_internal.h"
#include "cuda_common.cuh"

#define EW_THREADS 256
#define EW_PER_THREAD 4
#define EW_CHUNK (EW_THREADS * EW_PER_THREAD)

template <int OP> __device__ __forceinline__ float ew_apply(float x, float y, float f);
template <> __device__ __forceinline__ float ew_apply<SWCU_ADD>(float x, float y, float) {
    return __fadd_rn(x, y);
}
template <> __device__ __forceinline__ float ew_apply<SWCU_SWIGLU>(float x, float y, float) {
    return __fmul_rn(__fdiv_rn(x, __fadd_rn(1.0f, expf(-x))), y);
}
template <> __device__ __forceinline__ float ew_apply<SWCU_GEGLU>(float x, float y, float) {
    const float u = __fmul_rn(0.7978845608028654f,
                              __fadd_rn(x, __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, x), x), x)));
    return __fmul_rn(__fdiv_rn(x, __fadd_rn(1.0f, expf(__fmul_rn(-2.0f, u)))), y);
}
template <> __device__ __forceinline__ float ew_apply<SWCU_SCALE>(float x, float, float f) {
    return __fmul_rn(x, f);
}
template <> __device__ __forceinline__ float ew_apply<SWCU_SOFTCAP>(float x, float, float f) {
    return __fmul_rn(f, tanhf(__fdiv_rn(x, f)));
}

// grid (rows, chunks of EW_CHUNK elements of a row). Bytes: reads 8 (binary)
// or 4 (unary), writes 4 per element. Unary ops get b = a and never read it.
template <int OP>
__global__ void __launch_bounds__(EW_THREADS)
k_elementwise(const uint8_t *a, uint64_t anb1, uint64_t anb2, uint64_t anb3, const uint8_t *b,
              uint64_t bnb1, uint64_t bnb2, uint64_t bnb3, uint8_t *o, uint64_t onb1,
              uint64_t onb2, uint64_t onb3, int64_t ne0, int64_t ne1, int64_t ne2, float f) {
    const bool binary = OP == SWCU_ADD || OP == SWCU_SWIGLU || OP == SWCU_GEGLU;
    const int64_t r = blockIdx.x, i1 = r % ne1, i2 = (r / ne1) % ne2, i3 = r / (ne1 * ne2);
    const float *ar = (const float *)(a + i1 * anb1 + i2 * anb2 + i3 * anb3);
    const float *br = (const float *)(b + i1 * bnb1 + i2 * bnb2 + i3 * bnb3);
    float *orow = (float *)(o + i1 * onb1 + i2 * onb2 + i3 * onb3);
    const int64_t i0 = (int64_t)blockIdx.y * EW_CHUNK + threadIdx.x;
#pragma unroll
    for (int k = 0; k < EW_PER_THREAD; k++) {
        const int64_t i = i0 + (int64_t)k * EW_THREADS;
        if (i >= ne0) break;
        orow[i] = ew_apply<OP>(ar[i], binary ? br[i] : 0.0f, f);
    }
}

template <int OP>
static void launch(sw_cuda_backend *be, dim3 grid, const swcu_tensor *a, const swcu_tensor *b,
                   const swcu_tensor *o, float f) {
    k_elementwise<OP><<<grid, EW_THREADS, 0, be->stream>>>(
        a->p, a->nb[1], a->nb[2], a->nb[3], b->p, b->nb[1], b->nb[2], b->nb[3], o->p, o->nb[1],
        o->nb[2], o->nb[3], a->ne[0], a->ne[1], a->ne[2], f);
}

// Binary ops: t = a, b, out. Unary ops (scale, softcap): t = x, out; f0 the
// factor / cap.
sw_status swcu_run_elementwise(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const bool unary = op->kind == SWCU_SCALE || op->kind == SWCU_SOFTCAP;
    const swcu_tensor *a = &op->t[0], *b = unary ? &op->t[0] : &op->t[1];
    const swcu_tensor *o = unary ? &op->t[1] : &op->t[2];
    if (op->kind == SWCU_SWIGLU && op->i[0] == 1) // fused with the next matmul's quantize
        return swcu_swiglu_q8(op, (int8_t *)be->scratch,
                              (float2 *)(be->scratch + swcu_xds_offset(a->ne[1], a->ne[0])),
                              be->stream, err);
    const int64_t rows = a->ne[1] * a->ne[2] * a->ne[3];
    const int64_t chunks = (a->ne[0] + EW_CHUNK - 1) / EW_CHUNK;
    if (rows > INT32_MAX || chunks > 65535)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda elementwise: shape too large");
    dim3 grid((unsigned)rows, (unsigned)chunks);
    const float f = op->f[0];
    switch (op->kind) {
    case SWCU_ADD: launch<SWCU_ADD>(be, grid, a, b, o, f); break;
    case SWCU_SWIGLU: launch<SWCU_SWIGLU>(be, grid, a, b, o, f); break;
    case SWCU_GEGLU: launch<SWCU_GEGLU>(be, grid, a, b, o, f); break;
    case SWCU_SCALE: launch<SWCU_SCALE>(be, grid, a, b, o, f); break;
    case SWCU_SOFTCAP: launch<SWCU_SOFTCAP>(be, grid, a, b, o, f); break;
    default:
        return sw_err_set(err, SW_E_INTERNAL, "cuda elementwise: op kind %d is not elementwise",
                          op->kind);
    }
    SWCU_LAUNCHED("k_elementwise");
    return SW_OK;
}
