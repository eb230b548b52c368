// cuda_rms_norm.cu — out = x / rms(x) * w per row, and the fused
// add_rms_norm: x = x + h first (each element added, stored and squared by one
// thread), then the same norm. The sum of squares and the
// scale are computed in double exactly as the CPU reference does, so results
// match it up to the order of the (double) additions; the products are float,
// unfused: (x * scale) * w. out may alias x (each element is read, then
// written, by the same thread after the reduction). Unverified on hardware.
#include "cuda_internal.h"
#include "cuda_common.cuh"

#define RMS_THREADS 256

// One block per row. Bytes: reads 4n (x) + 4n (w, from L2 after the first
// rows), writes 4n per row.
// ADD: h (strides of x) is added into x first; out may alias h.
template <bool ADD>
__global__ void __launch_bounds__(RMS_THREADS)
k_rms_norm(uint8_t *x, uint64_t xnb1, uint64_t xnb2, uint64_t xnb3, int64_t ne1,
           int64_t ne2, const uint8_t *h, uint64_t hnb1, uint64_t hnb2, uint64_t hnb3,
           const float *__restrict__ w, uint8_t *out, uint64_t onb1, uint64_t onb2,
           uint64_t onb3, int n, float eps) {
    __shared__ double sh[32];
    const int64_t r = blockIdx.x, i1 = r % ne1, i2 = (r / ne1) % ne2, i3 = r / (ne1 * ne2);
    float *xr = (float *)(x + i1 * xnb1 + i2 * xnb2 + i3 * xnb3);
    float *yr = (float *)(out + i1 * onb1 + i2 * onb2 + i3 * onb3);
    double ss = 0.0;
    if (ADD) {
        const float *hr = (const float *)(h + i1 * hnb1 + i2 * hnb2 + i3 * hnb3);
        for (int i = threadIdx.x; i < n; i += RMS_THREADS) {
            const float v = __fadd_rn(xr[i], hr[i]);
            xr[i] = v;
            ss += (double)v * (double)v;
        }
    } else {
        for (int i = threadIdx.x; i < n; i += RMS_THREADS) ss += (double)xr[i] * (double)xr[i];
    }
    ss = swcu_warp_sum_d(ss);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) sh[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        double v = lane < RMS_THREADS / 32 ? sh[lane] : 0.0;
        v = swcu_warp_sum_d(v);
        if (lane == 0) sh[0] = v;
    }
    __syncthreads();
    const float scale = (float)(1.0 / sqrt(sh[0] / (double)n + (double)eps));
    for (int i = threadIdx.x; i < n; i += RMS_THREADS)
        yr[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

sw_status swcu_run_rms_norm(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *x = &op->t[0], *w = &op->t[1], *o = &op->t[2];
    const int64_t rows = x->ne[1] * x->ne[2] * x->ne[3];
    if (rows > INT32_MAX || x->ne[0] > INT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda rms_norm: too many rows");
    k_rms_norm<false><<<(unsigned)rows, RMS_THREADS, 0, be->stream>>>(
        x->p, x->nb[1], x->nb[2], x->nb[3], x->ne[1], x->ne[2], nullptr, 0, 0, 0,
        (const float *)w->p, o->p, o->nb[1], o->nb[2], o->nb[3], (int)x->ne[0], op->f[0]);
    SWCU_LAUNCHED("k_rms_norm");
    return SW_OK;
}

sw_status swcu_run_add_rms_norm(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *x = &op->t[0], *h = &op->t[1], *w = &op->t[2], *o = &op->t[3];
    const int64_t rows = x->ne[1] * x->ne[2] * x->ne[3];
    if (rows > INT32_MAX || x->ne[0] > INT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda add_rms_norm: too many rows");
    k_rms_norm<true><<<(unsigned)rows, RMS_THREADS, 0, be->stream>>>(
        x->p, x->nb[1], x->nb[2], x->nb[3], x->ne[1], x->ne[2], h->p, h->nb[1], h->nb[2],
        h->nb[3], (const float *)w->p, o->p, o->nb[1], o->nb[2], o->nb[3], (int)x->ne[0],
        op->f[0]);
    SWCU_LAUNCHED("k_rms_norm<add>");
    return SW_OK;
}
