// cuda_get_rows.cu — out[:, t] = dequantize(table[:, ids[t]]) to F32, for every
// type the backend supports. Values are bit-identical to sw_dequantize_row
// (cuda_quant.cuh evaluates the reference's operations in its order, unfused).
// An id outside the table raises SWCU_EFLAG_ID and leaves that row as zeros.
// Unverified on hardware (written without a GPU).
#include "cuda_internal.h"
#include "cuda_quant.cuh"

#define GR_THREADS 128

struct swcu_store_f32 {
    float *o;
    SWCU_HD void operator()(int i, float v) const { o[i] = v; }
};

// Quantized table: one thread per unit of the row (cuda_quant.cuh).
// Bytes: reads T * row_bytes of the table + 4T of ids; writes 4 * T * n.
template <int TYPE>
__global__ void __launch_bounds__(GR_THREADS)
k_get_rows_q(const uint8_t *__restrict__ table, uint64_t tnb1, int64_t rows,
             const int32_t *__restrict__ ids, uint8_t *__restrict__ out, uint64_t onb1,
             int units_per_row, int32_t *errw, int opi) {
    typedef swcu_q<TYPE> Q;
    const int t = blockIdx.y;
    const int u = blockIdx.x * GR_THREADS + threadIdx.x;
    if (u >= units_per_row) return;
    const int id = ids[t];
    const int b = u / Q::UPB, iu = u % Q::UPB;
    float *o = (float *)(out + (uint64_t)t * onb1) + (int64_t)b * Q::QK;
    if (id < 0 || id >= rows) {
        if (u == 0) swcu_flag(errw, SWCU_EFLAG_ID, opi, t, id);
        for (int i = 0; i < Q::QK / Q::UPB; i++) o[iu * (Q::QK / Q::UPB) + i] = 0.0f;
        return;
    }
    swcu_store_f32 st = {o};
    Q::dequant(table + (uint64_t)id * tnb1 + (uint64_t)b * Q::BYTES, iu, st);
}

// F32 / F16 / BF16 table: one thread per element.
// Bytes: reads T * n * sizeof(elem) + 4T, writes 4 * T * n.
template <int TYPE>
__global__ void __launch_bounds__(GR_THREADS)
k_get_rows_f(const uint8_t *__restrict__ table, uint64_t tnb1, int64_t rows,
             const int32_t *__restrict__ ids, uint8_t *__restrict__ out, uint64_t onb1, int64_t n,
             int32_t *errw, int opi) {
    const int t = blockIdx.y;
    const int64_t i = (int64_t)blockIdx.x * GR_THREADS + threadIdx.x;
    if (i >= n) return;
    const int id = ids[t];
    float *o = (float *)(out + (uint64_t)t * onb1);
    if (id < 0 || id >= rows) {
        if (i == 0) swcu_flag(errw, SWCU_EFLAG_ID, opi, t, id);
        o[i] = 0.0f;
        return;
    }
    const uint8_t *r = table + (uint64_t)id * tnb1;
    if (TYPE == SW_TYPE_F32) o[i] = ((const float *)r)[i];
    else if (TYPE == SW_TYPE_F16) o[i] = swcu_h2f(((const uint16_t *)r)[i]);
    else o[i] = swcu_bf2f(((const uint16_t *)r)[i]);
}

namespace {
struct launch_q {
    const swcu_op *op;
    sw_cuda_backend *be;
    cudaError_t e;
    template <int TYPE> void operator()() {
        typedef swcu_q<TYPE> Q;
        const swcu_tensor *tb = &op->t[0], *id = &op->t[1], *o = &op->t[2];
        const int units = (int)(tb->ne[0] / Q::QK * Q::UPB);
        dim3 grid((units + GR_THREADS - 1) / GR_THREADS, (unsigned)id->ne[0]);
        k_get_rows_q<TYPE><<<grid, GR_THREADS, 0, be->stream>>>(
            tb->p, tb->nb[1], tb->ne[1], (const int32_t *)id->p, o->p, o->nb[1], units,
            be->errw_dev, op->index);
        e = cudaGetLastError();
    }
};
} // namespace

sw_status swcu_run_get_rows(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *tb = &op->t[0], *id = &op->t[1], *o = &op->t[2];
    const int64_t n = tb->ne[0], T = id->ne[0];
    if (T > 65535)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda get_rows: %lld ids (at most 65535 per call)",
                          (long long)T);
    if (tb->type == SW_TYPE_F32 || tb->type == SW_TYPE_F16 || tb->type == SW_TYPE_BF16) {
        dim3 grid((unsigned)((n + GR_THREADS - 1) / GR_THREADS), (unsigned)T);
        const int32_t *ids = (const int32_t *)id->p;
        if (tb->type == SW_TYPE_F32)
            k_get_rows_f<SW_TYPE_F32><<<grid, GR_THREADS, 0, be->stream>>>(
                tb->p, tb->nb[1], tb->ne[1], ids, o->p, o->nb[1], n, be->errw_dev, op->index);
        else if (tb->type == SW_TYPE_F16)
            k_get_rows_f<SW_TYPE_F16><<<grid, GR_THREADS, 0, be->stream>>>(
                tb->p, tb->nb[1], tb->ne[1], ids, o->p, o->nb[1], n, be->errw_dev, op->index);
        else
            k_get_rows_f<SW_TYPE_BF16><<<grid, GR_THREADS, 0, be->stream>>>(
                tb->p, tb->nb[1], tb->ne[1], ids, o->p, o->nb[1], n, be->errw_dev, op->index);
        SWCU_LAUNCHED("k_get_rows_f");
        return SW_OK;
    }
    launch_q l = {op, be, cudaSuccess};
    if (!swcu_dispatch_quant(tb->type, l))
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda get_rows: no kernel for %s tables",
                          sw_type_name((uint32_t)tb->type));
    if (l.e != cudaSuccess) return swcu_cuda_fail(err, l.e, "launch k_get_rows_q", op);
    return SW_OK;
}
