// cuda_rope.cu — rotary position embedding in place on x [head_dim, n_heads, T]
// (strided rows allowed), NORM (adjacent pairs) and NEOX (halves), with
// optional per-pair frequency factors; and the fused rope_kv_write (q rotated
// in place, k rotated on its way into the cache, v copied: one launch instead
// of rope, rope, kv_write). theta and cos/sin are computed in
// double and rounded once to float, and the rotation uses unfused float
// products, exactly as the CPU reference. Unverified on hardware.
#include "cuda_internal.h"
#include "cuda_common.cuh"

#define ROPE_THREADS 256

// One block per token: first the n_dims/2 (cos, sin) pairs of this position
// into shared memory, then every (head, pair). Bytes: reads and writes
// 4 * n_heads * n_dims per token, reads 4 (pos) + 2 * n_dims (factors).
// cos, sin of token t's angles into cs (shared), then a barrier.
__device__ __forceinline__ void rope_angles(float *cs, int t, int n_dims,
                                            const int32_t *__restrict__ pos,
                                            const float *__restrict__ ff, float base, float fscale) {
    const int half = n_dims / 2;
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
}

// Rotate the pairs of n_heads heads of token t in place.
__device__ __forceinline__ void rope_heads(uint8_t *x, uint64_t nb1, uint64_t nb2, int t,
                                           int n_heads, int n_dims, int neox, const float *cs) {
    const int half = n_dims / 2;
    for (int k = threadIdx.x; k < n_heads * half; k += ROPE_THREADS) {
        const int h = k / half, i = k % half;
        float *v = (float *)(x + (uint64_t)h * nb1 + (uint64_t)t * nb2);
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const float a = v[i0], b = v[i1], c = cs[2 * i], s = cs[2 * i + 1];
        v[i0] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
        v[i1] = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
    }
}

__global__ void __launch_bounds__(ROPE_THREADS)
k_rope(uint8_t *x, uint64_t nb1, uint64_t nb2, int n_heads, int n_dims, int neox,
       const int32_t *__restrict__ pos, const float *__restrict__ ff, float base, float fscale) {
    extern __shared__ float cs[]; // [n_dims]: cos, sin interleaved
    const int t = blockIdx.x;
    rope_angles(cs, t, n_dims, pos, ff, base, fscale);
    rope_heads(x, nb1, nb2, t, n_heads, n_dims, neox, cs);
}

// Element d of a head after rotation, from the head as it is (read-only): the
// arithmetic of rope_heads for d's pair; dims past n_dims unchanged.
__device__ __forceinline__ float rope_elem(const float *v, int d, int n_dims, int neox,
                                           const float *cs) {
    const int half = n_dims / 2;
    if (d >= n_dims) return v[d];
    const int i = neox ? d % half : d / 2;
    const bool first = neox ? d < half : (d % 2) == 0;
    const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
    const float a = v[i0], b = v[i1], c = cs[2 * i], s = cs[2 * i + 1];
    return first ? __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s))
                 : __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
}

struct rope_kv_args {
    uint8_t *q;
    uint64_t qnb1, qnb2;
    const uint8_t *k, *v;
    uint64_t knb1, knb2, vnb1;
    uint8_t *kc, *vc;
    uint64_t cnb1, cnb2, cnb3;
    int n_head, n_kv, hd, bs, n_dims, neox, f16;
    int64_t n_slots;
    const int32_t *pos, *slots;
    const float *ff;
    float base, fscale;
    int32_t *errw;
    int opi;
};

// One block per token: the angles; q's pairs in place; every element of k
// (rotated) and v into the cache slot. Bytes: q read and written, k and v
// read, 2 n_kv head_dim (2 or 4) written, per token.
__global__ void __launch_bounds__(ROPE_THREADS) k_rope_kv_write(rope_kv_args a) {
    extern __shared__ float cs[];
    const int t = blockIdx.x;
    rope_angles(cs, t, a.n_dims, a.pos, a.ff, a.base, a.fscale);
    rope_heads(a.q, a.qnb1, a.qnb2, t, a.n_head, a.n_dims, a.neox, cs);
    const int slot = a.slots[t];
    if (slot < 0 || slot >= a.n_slots) {
        if (threadIdx.x == 0) swcu_flag(a.errw, SWCU_EFLAG_SLOT, a.opi, t, slot);
        return;
    }
    const uint64_t cslot = (uint64_t)(slot % a.bs) * a.cnb2 + (uint64_t)(slot / a.bs) * a.cnb3;
    for (int e = threadIdx.x; e < 2 * a.n_kv * a.hd; e += ROPE_THREADS) {
        const bool isv = e >= a.n_kv * a.hd;
        const int ee = isv ? e - a.n_kv * a.hd : e, h = ee / a.hd, d = ee % a.hd;
        float val;
        if (isv) {
            val = ((const float *)(a.v + (uint64_t)t * a.vnb1))[ee];
        } else {
            const float *kh = (const float *)(a.k + (uint64_t)h * a.knb1 + (uint64_t)t * a.knb2);
            val = rope_elem(kh, d, a.n_dims, a.neox, cs);
        }
        uint8_t *dst = (isv ? a.vc : a.kc) + (uint64_t)h * a.cnb1 + cslot;
        if (a.f16) ((__half *)dst)[d] = __float2half_rn(val);
        else ((float *)dst)[d] = val;
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

sw_status swcu_run_rope_kv_write(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *q = &op->t[0], *k = &op->t[1], *v = &op->t[2], *pos = &op->t[3],
                      *ff = &op->t[4], *kc = &op->t[5], *vc = &op->t[6], *sl = &op->t[7];
    const int64_t T = q->ne[2];
    if (T > INT32_MAX || q->ne[1] > INT32_MAX || kc->ne[0] * kc->ne[1] > INT32_MAX / 2)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda rope_kv_write: too many tokens or heads");
    rope_kv_args a;
    memset(&a, 0, sizeof a);
    a.q = q->p;
    a.qnb1 = q->nb[1];
    a.qnb2 = q->nb[2];
    a.k = k->p;
    a.knb1 = k->nb[1];
    a.knb2 = k->nb[2];
    a.v = v->p;
    a.vnb1 = v->nb[1];
    a.kc = kc->p;
    a.vc = vc->p;
    a.cnb1 = kc->nb[1];
    a.cnb2 = kc->nb[2];
    a.cnb3 = kc->nb[3];
    a.n_head = (int)q->ne[1];
    a.n_kv = (int)kc->ne[1];
    a.hd = (int)kc->ne[0];
    a.bs = (int)kc->ne[2];
    a.n_slots = kc->ne[2] * kc->ne[3];
    a.n_dims = op->i[0];
    a.neox = op->i[1] == 2;
    a.f16 = kc->type == SW_TYPE_F16;
    a.pos = (const int32_t *)pos->p;
    a.slots = (const int32_t *)sl->p;
    a.ff = (const float *)ff->p;
    a.base = op->f[0];
    a.fscale = op->f[1];
    a.errw = be->errw_dev;
    a.opi = op->index;
    k_rope_kv_write<<<(unsigned)T, ROPE_THREADS, (size_t)a.n_dims * sizeof(float), be->stream>>>(a);
    SWCU_LAUNCHED("k_rope_kv_write");
    return SW_OK;
}
