// cuda_logits.cu — per-row summary of a logits matrix [V, R] on the device:
// the statistics of sw_logits_stats (max, sum of exponentials and log Z in
// double, entropy, NaN count) and the top k (id, raw logit) pairs, so only
// 32 + 8k bytes per row cross the bus instead of 4V (into pinned memory).
// Semantics match the host version in runtime/logits.c: NaN logits are
// ignored (and counted), ties keep the lower id first, missing entries are id
// -1 with logit -inf; exponentials are expf (the host uses its own exp within
// 2 ulp, and sums in another order), so log Z and the entropy agree with the
// host to ~1e-6 relative, not bit for bit: a sampler fed this summary draws
// the same tokens as one fed the full row, with logprobs that may differ in
// the last bits.
//
// Top-k is k rounds of a block-wide arg-max below the previous pick, i.e. k
// passes over the row (from L2 after the first): meant for the small k of the
// sampler and the monitor. Unverified on hardware (written without a GPU).
#include "cuda_internal.h"
#include "cuda_common.cuh"

#define LG_THREADS 512

// Is (v, j) ahead of (bv, bj) in the order value descending, id ascending?
__device__ __forceinline__ bool lg_better(float v, int j, float bv, int bj) {
    return bj < 0 || v > bv || (v == bv && j < bj);
}

// One block per row. Bytes: reads 4V twice for the stats and once per top-k
// round; writes 32 + 8k.
__global__ void __launch_bounds__(LG_THREADS)
k_logits_summary(const uint8_t *__restrict__ logits, uint64_t nb1, int64_t V, int k,
                 sw_logits_stats *__restrict__ stats, int32_t *__restrict__ ids,
                 float *__restrict__ tops) {
    __shared__ float shf[32];
    __shared__ int shi[32];
    __shared__ double shd[2][32];
    const int r = blockIdx.x, tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int nw = LG_THREADS / 32;
    const float *l = (const float *)(logits + (uint64_t)r * nb1);

    // max (fmaxf drops NaN) and the NaN count
    float mx = -INFINITY;
    int n_nan = 0;
    for (int64_t j = tid; j < V; j += LG_THREADS) {
        mx = fmaxf(mx, l[j]);
        n_nan += isnan(l[j]) ? 1 : 0;
    }
    mx = swcu_warp_max(mx);
    n_nan = swcu_warp_sum_i(n_nan);
    if (lane == 0) {
        shf[warp] = mx;
        shi[warp] = n_nan;
    }
    __syncthreads();
    mx = -INFINITY;
    n_nan = 0;
    for (int w = 0; w < nw; w++) {
        mx = fmaxf(mx, shf[w]);
        n_nan += shi[w];
    }
    __syncthreads();

    // sum e^(l - mx) and sum e^(l - mx) (l - mx), in double
    double se = 0.0, sel = 0.0;
    if (isfinite(mx)) {
        for (int64_t j = tid; j < V; j += LG_THREADS) {
            const float v = l[j];
            if (isnan(v)) continue;
            const float dv = v - mx;
            const double e = (double)expf(dv);
            se += e;
            if (e > 0.0) sel += e * (double)dv; // a -inf logit adds 0, not 0 * -inf = NaN
        }
    }
    se = swcu_warp_sum_d(se);
    sel = swcu_warp_sum_d(sel);
    if (lane == 0) {
        shd[0][warp] = se;
        shd[1][warp] = sel;
    }
    __syncthreads();
    se = 0.0;
    sel = 0.0;
    for (int w = 0; w < nw; w++) {
        se += shd[0][w];
        sel += shd[1][w];
    }
    const double lse = se > 0.0 ? (double)mx + log(se) : (double)mx;
    if (tid == 0) {
        sw_logits_stats st;
        st.max = mx;
        st.logsumexp = (float)lse;
        const double h = se > 0.0 ? log(se) - sel / se : 0.0;
        st.entropy = (float)(h > 0.0 ? h : 0.0);
        st.n_nan = n_nan;
        st.sum_exp = se;
        st.log_z = lse;
        stats[r] = st;
    }

    // top k: each round picks the best entry strictly behind the previous pick
    float pv = 0.0f;
    int pj = -1;
    for (int round = 0; round < k; round++) {
        float bv = 0.0f;
        int bj = -1;
        for (int64_t j = tid; j < V; j += LG_THREADS) {
            const float v = l[j];
            if (isnan(v)) continue;
            if (pj >= 0 && !(v < pv || (v == pv && (int)j > pj))) continue; // already taken
            if (lg_better(v, (int)j, bv, bj)) {
                bv = v;
                bj = (int)j;
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oj = __shfl_xor_sync(0xffffffffu, bj, o);
            if (oj >= 0 && lg_better(ov, oj, bv, bj)) {
                bv = ov;
                bj = oj;
            }
        }
        __syncthreads(); // the previous round's readers of shf/shi are done
        if (lane == 0) {
            shf[warp] = bv;
            shi[warp] = bj;
        }
        __syncthreads();
        bv = 0.0f;
        bj = -1;
        for (int w = 0; w < nw; w++)
            if (shi[w] >= 0 && lg_better(shf[w], shi[w], bv, bj)) {
                bv = shf[w];
                bj = shi[w];
            }
        if (tid == 0) {
            ids[(int64_t)r * k + round] = bj;
            tops[(int64_t)r * k + round] = bj >= 0 ? bv : -INFINITY;
        }
        if (bj < 0) { // nothing left: the rest stay empty
            for (int rest = round + 1 + tid; rest < k; rest += LG_THREADS) {
                ids[(int64_t)r * k + rest] = -1;
                tops[(int64_t)r * k + rest] = -INFINITY;
            }
            break;
        }
        pv = bv;
        pj = bj;
    }
}

sw_status swcu_logits_summary(sw_cuda_backend *be, const swcu_tensor *lt, int32_t k,
                              sw_logits_stats *stats, int32_t *top_ids, float *top_logits,
                              sw_err *err) {
    const swcu_op *op = NULL; // for the check macros: "backend" in messages
    const int64_t V = lt->ne[0], R = lt->ne[1];
    if (R > INT32_MAX || V > INT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda logits_summary: [%lld, %lld] too large",
                          (long long)V, (long long)R);
    const size_t st_bytes = (size_t)R * sizeof(sw_logits_stats), n_top = (size_t)R * (size_t)k;
    const size_t bytes = st_bytes + 2 * n_top * 4;
    sw_status st = swcu_ensure_scratch(be, bytes, err);
    if (st == SW_OK) st = swcu_ensure_host_small(be, bytes, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "cuda logits_summary");
    sw_logits_stats *d_stats = (sw_logits_stats *)be->scratch;
    int32_t *d_ids = (int32_t *)(be->scratch + st_bytes);
    float *d_tops = (float *)(d_ids + n_top);
    k_logits_summary<<<(unsigned)R, LG_THREADS, 0, be->stream>>>(lt->p, lt->nb[1], V, k, d_stats,
                                                                  d_ids, d_tops);
    SWCU_LAUNCHED("k_logits_summary");
    SWCU_TRY(cudaMemcpyAsync(be->host_small, be->scratch, bytes, cudaMemcpyDeviceToHost, be->stream));
    SWCU_TRY(cudaStreamSynchronize(be->stream));
    const uint8_t *h = (const uint8_t *)be->host_small;
    memcpy(stats, h, st_bytes);
    if (k > 0) {
        memcpy(top_ids, h + st_bytes, n_top * sizeof(int32_t));
        memcpy(top_logits, h + st_bytes + n_top * 4, n_top * sizeof(float));
    }
    return SW_OK;
}
