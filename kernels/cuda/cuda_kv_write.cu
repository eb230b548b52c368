// cuda_kv_write.cu — store this step's k and v (F32 [head_dim * n_head_kv, T],
// strided rows allowed) into the paged caches [head_dim, n_head_kv,
// block_size, n_blocks] (F16 or F32) at slots[t]. F16 rounding is
// round-to-nearest-even, as the CPU backend. A slot outside the cache raises
// SWCU_EFLAG_SLOT and that token is skipped. Unverified on hardware.
#include "cuda_internal.h"
#include "cuda_common.cuh"

#define KV_THREADS 256

// grid (chunks of head_dim * n_head_kv, T, 2 = k/v). Bytes: reads 4 * 2 * T *
// n_kv * head_dim (+ 4T slots), writes 2 * T * n_kv * head_dim * (2 or 4).
__global__ void __launch_bounds__(KV_THREADS)
k_kv_write(const uint8_t *k, uint64_t knb1, const uint8_t *v, uint64_t vnb1, uint8_t *kc,
           uint8_t *vc, uint64_t cnb1, uint64_t cnb2, uint64_t cnb3, int hd, int nkv, int bs,
           int64_t n_slots, int f16, const int32_t *__restrict__ slots, int32_t *errw, int opi) {
    const int t = blockIdx.y, which = blockIdx.z;
    const int e = blockIdx.x * KV_THREADS + threadIdx.x;
    const int slot = slots[t];
    if (slot < 0 || slot >= n_slots) {
        if (e == 0 && which == 0) swcu_flag(errw, SWCU_EFLAG_SLOT, opi, t, slot);
        return;
    }
    if (e >= hd * nkv) return;
    const int h = e / hd, d = e % hd;
    const float val = ((const float *)((which ? v : k) + (uint64_t)t * (which ? vnb1 : knb1)))[e];
    uint8_t *dst = (which ? vc : kc) + (uint64_t)h * cnb1 + (uint64_t)(slot % bs) * cnb2 +
                   (uint64_t)(slot / bs) * cnb3;
    if (f16) ((__half *)dst)[d] = __float2half_rn(val);
    else ((float *)dst)[d] = val;
}

sw_status swcu_run_kv_write(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *k = &op->t[0], *v = &op->t[1], *kc = &op->t[2], *vc = &op->t[3],
                      *sl = &op->t[4];
    const int64_t T = k->ne[1], n = kc->ne[0] * kc->ne[1];
    if (T > 65535 || n > INT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda kv_write: %lld tokens (at most 65535)",
                          (long long)T);
    dim3 grid((unsigned)((n + KV_THREADS - 1) / KV_THREADS), (unsigned)T, 2);
    k_kv_write<<<grid, KV_THREADS, 0, be->stream>>>(
        k->p, k->nb[1], v->p, v->nb[1], kc->p, vc->p, kc->nb[1], kc->nb[2], kc->nb[3],
        (int)kc->ne[0], (int)kc->ne[1], (int)kc->ne[2], kc->ne[2] * kc->ne[3],
        kc->type == SW_TYPE_F16, (const int32_t *)sl->p, be->errw_dev, op->index);
    SWCU_LAUNCHED("k_kv_write");
    return SW_OK;
}
