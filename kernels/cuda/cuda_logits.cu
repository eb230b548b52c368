// cuda_logits.cu — per-row summary of a logits matrix [V, R] on the device:
// max, logsumexp and entropy of softmax, and the top k (id, logprob) pairs, so
// only 3 + 2k numbers per row cross the bus instead of V. Semantics match the
// host default in runtime/backend.c: NaN logits are ignored, ties keep the
// lower id first, missing entries are id -1 with logprob -inf; sums of
// exponentials are accumulated in double.
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
// round; writes 4 * (3 + 2k).
__global__ void __launch_bounds__(LG_THREADS)
k_logits_summary(const uint8_t *__restrict__ logits, uint64_t nb1, int64_t V, int k,
                 float *__restrict__ stats, int32_t *__restrict__ ids, float *__restrict__ lps) {
    __shared__ float shf[32];
    __shared__ int shi[32];
    __shared__ double shd[2][32];
    const int r = blockIdx.x, tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int nw = LG_THREADS / 32;
    const float *l = (const float *)(logits + (uint64_t)r * nb1);

    // max (fmaxf drops NaN)
    float mx = -INFINITY;
    for (int64_t j = tid; j < V; j += LG_THREADS) mx = fmaxf(mx, l[j]);
    mx = swcu_warp_max(mx);
    if (lane == 0) shf[warp] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < nw; w++) mx = fmaxf(mx, shf[w]);
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
    const double lse = isfinite(mx) ? (double)mx + log(se) : (double)mx;
    if (tid == 0) {
        stats[3 * r + 0] = mx;
        stats[3 * r + 1] = (float)lse;
        stats[3 * r + 2] = isfinite(mx) ? (float)(log(se) - sel / se) : 0.0f;
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
            lps[(int64_t)r * k + round] = bj >= 0 ? (float)((double)bv - lse) : -INFINITY;
        }
        if (bj < 0) { // nothing left: the rest stay empty
            for (int rest = round + 1 + tid; rest < k; rest += LG_THREADS) {
                ids[(int64_t)r * k + rest] = -1;
                lps[(int64_t)r * k + rest] = -INFINITY;
            }
            break;
        }
        pv = bv;
        pj = bj;
    }
}

sw_status swcu_logits_summary(sw_cuda_backend *be, const swcu_tensor *lt, int32_t k,
                              sw_logits_stats *stats, int32_t *top_ids, float *top_logprobs,
                              sw_err *err) {
    const swcu_op *op = NULL; // for the check macros: "backend" in messages
    const int64_t V = lt->ne[0], R = lt->ne[1];
    if (R > INT32_MAX || V > INT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda logits_summary: [%lld, %lld] too large",
                          (long long)V, (long long)R);
    const size_t n_stats = (size_t)R * 3, n_top = (size_t)R * (size_t)k;
    const size_t bytes = (n_stats + 2 * n_top) * 4;
    sw_status st = swcu_ensure_scratch(be, bytes, err);
    if (st == SW_OK) st = swcu_ensure_host_small(be, bytes, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "cuda logits_summary");
    float *d_stats = (float *)be->scratch;
    int32_t *d_ids = (int32_t *)(d_stats + n_stats);
    float *d_lps = (float *)(d_ids + n_top);
    k_logits_summary<<<(unsigned)R, LG_THREADS, 0, be->stream>>>(lt->p, lt->nb[1], V, k, d_stats,
                                                                  d_ids, d_lps);
    SWCU_LAUNCHED("k_logits_summary");
    SWCU_TRY(cudaMemcpyAsync(be->host_small, be->scratch, bytes, cudaMemcpyDeviceToHost, be->stream));
    SWCU_TRY(cudaStreamSynchronize(be->stream));
    const float *h = (const float *)be->host_small;
    for (int64_t r = 0; r < R; r++) {
        stats[r].max = h[3 * r];
        stats[r].logsumexp = h[3 * r + 1];
        stats[r].entropy = h[3 * r + 2];
    }
    if (k > 0) {
        memcpy(top_ids, h + n_stats, n_top * sizeof(int32_t));
        memcpy(top_logprobs, h + n_stats + n_top, n_top * sizeof(float));
    }
    return SW_OK;
}
