// cuda_rope.cu — rotary position embedding in place on x [head_dim, n_heads, T]
// (strided rows allowed), NORM (adjacent pairs) and NEOX (halves), with
// optional per-pair frequency factors. theta and cos/sin are computed in
// double and rounded once to float, and the rotation uses unfused float
// products, exactly as the CPU reference. Unverified on hardware.
#include "cuda_internal.h"
#include "cuda_common.cuh"

#define ROPE_THREADS 256

// One block per token: first the n_dims/2 (cos, sin) pairs of this position
// into shared memory, then every (head, pair). Bytes: reads and writes
// 4 * n_heads * n_dims per token, reads 4 (pos) + 2 * n_dims (factors).
__global__ void __launch_bounds__(ROPE_THREADS)
k_rope(uint8_t *x, uint64_t nb1, uint64_t nb2, int n_heads, int n_dims, int neox,
       const int32_t *__restrict__ pos, const float *__restrict__ ff, float base, float fscale) {
    extern __shared__ float cs[]; // [n_dims]: cos, sin interleaved
    const int t = blockIdx.x, half = n_dims / 2;
    const double p = (double)pos[t];
    for (int i = threadIdx.x; i < half; i += ROPE_THREADS) {
        double inv = (double)fscale * pow((double)base, -2.0 * (double)i / (double)n_dims);
        if (ff) inv /= (double)ff[i];
        double s, c;
        sincos(p * inv, &s, &c);
        cs[2 * i] = (float)c;
        cs[2 * i + 1] = (float)s;
    }
    __syncthreads();
    for (int k = threadIdx.x; k < n_heads * half; k += ROPE_THREADS) {
        const int h = k / half, i = k % half;
        float *v = (float *)(x + (uint64_t)h * nb1 + (uint64_t)t * nb2);
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const float a = v[i0], b = v[i1], c = cs[2 * i], s = cs[2 * i + 1];
        v[i0] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
        v[i1] = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
    }
}

sw_status swcu_run_rope(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *x = &op->t[0], *pos = &op->t[1], *ff = &op->t[2];
    const int64_t T = x->ne[2];
    if (T > INT32_MAX || x->ne[1] > INT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda rope: too many tokens or heads");
    const int n_dims = op->i[0];
    k_rope<<<(unsigned)T, ROPE_THREADS, (size_t)n_dims * sizeof(float), be->stream>>>(
        x->p, x->nb[1], x->nb[2], (int)x->ne[1], n_dims, op->i[1] == 2, (const int32_t *)pos->p,
        (const float *)ff->p, op->f[0], op->f[1]);
    SWCU_LAUNCHED("k_rope");
    return SW_OK;
}
