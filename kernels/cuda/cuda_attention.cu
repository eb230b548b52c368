// cuda_attention.cu — causal attention over the paged KV cache with GQA,
// flash-decoding style: online softmax over key tiles, no score matrix in
// memory, and the key range of each query optionally split across blocks
// (split-K) with a combine pass, so that a decode step with few tokens still
// fills the GPU.
//
// A sliding window (SWCU_A_WINDOW > 0) cuts each query's keys to the last
// `window` positions of its causal context; the splits divide that range.
//
// Work split: one thread block per (split, kv head x head group, token). The
// block holds Gb query heads that share one KV head (GQA: K/V tiles are read
// once for all of them), Gb * head_dim <= 2048. Per tile of KT keys (32, or
// 16 when head_dim > 128): resolve the keys' slots through the block table,
// stage K and V as f32 in shared memory, score every (head, key) pair, update
// each head's running max m and sum l (one thread per head), rescale and
// accumulate the outputs (<= 16 per thread, in registers). head_dim <= 256.
//
// Bytes: per (token, kv head, head group) the token's context of K and V,
// 2 * ctx * head_dim * (2 or 4), from DRAM or L2 (blocks of one sequence and
// kv head share it); q and out 4 * Gb * head_dim each; with splits, partials
// of 4 * (head_dim + 2) per (token, head, split) written and read once more.
//
// Data checks on the device: a token in no sequence, a position past
// max_blocks * block_size, or a block id outside the cache raise an error flag
// (reported as SW_E_RANGE) and the offending keys are skipped.
//
// Two kernels, chosen at record time (swcu_attention_plan, stored in the op):
// - k_attention_warp, the decode kernel (any token count), where head_dim
//   times the element size is 16, 32, ..., 512 bytes and the cache rows are
//   16-byte aligned: a warp's lanes split into groups of head_dim / E lanes
//   (E = 8 f16 or 4 f32 elements, one 16-byte load of K and one of V per lane
//   per key), each group takes its own key, the group reduces q.k with
//   shuffles and keeps an online softmax per head in registers (no shared
//   tiles, no block barrier per key); four warps per block, then the groups
//   and the warps merge their states. Up to 8 query heads of a GQA group share
//   each K/V load.
// - k_attention, tiled through shared memory as described above: any head_dim
//   up to 256, any alignment.
// Both split the key range when the blocks would not fill the device; the
// split count depends on the block tables' capacity, not on the current
// context (graphs replay across decode steps; empty splits merge as nothing).
//
// Status: prefill uses the same kernels (each query token re-reads its context
// from L2); a query-tiled tensor-core kernel is the next step. Unverified on
// hardware (written without a GPU); the host self-test runs the decode
// kernel's schedule and arithmetic (cuda_attention.cuh).
#include "cuda_internal.h"
#include "cuda_attention.cuh"

#define ATT_THREADS 128
#define ATT_MAX_HD 256
#define ATT_MAX_GD 2048                         // Gb * head_dim
#define ATT_MAX_GB 64                           // heads per block (one thread each updates m, l)
#define ATT_ACC (ATT_MAX_GD / ATT_THREADS)      // outputs per thread

struct attn_args {
    const uint8_t *q;
    uint64_t q_ts, q_hs; // byte strides: token, head
    const uint8_t *kc, *vc;
    uint64_t c_hs, c_ss, c_bs; // byte strides: kv head, slot in block, block
    int f16;
    int64_t n_blocks;
    uint8_t *out;
    uint64_t o_ts, o_hs;
    const int32_t *seq_start, *pos, *bt;
    int n_seqs, max_blocks, bs;
    int n_head, D, G, Gb, n_hg, KT, n_splits;
    int window; // sliding window in positions; 0 = whole causal context
    float scale;
    float *part;     // [T][n_head][n_splits][D]
    float2 *part_ml; // [T][n_head][n_splits]: (m, l)
    int32_t *errw;
    int opi;
};

static constexpr int attn_kt(int D) { return D <= 128 ? 32 : 16; }

static constexpr size_t attn_smem(int D, int Gb, int KT) {
    return sizeof(float) * ((size_t)Gb * D + (size_t)KT * (D + 1) + (size_t)KT * D +
                            (size_t)Gb * KT + 3 * (size_t)Gb) +
           sizeof(int) * (size_t)KT;
}

// The kernel's assumptions about the plan, checked at compile time: one
// thread per head for m/l and per key for the slots, the outputs fit the
// per-thread accumulators, and the dynamic shared memory of every head_dim at
// the largest head group the plan picks stays within the 48 KiB a launch gets
// without cudaFuncSetAttribute.
static constexpr size_t attn_smem_max() {
    size_t m = 0;
    for (int D = 1; D <= ATT_MAX_HD; D++) {
        const int gb = ATT_MAX_GD / D < ATT_MAX_GB ? ATT_MAX_GD / D : ATT_MAX_GB;
        const size_t s = attn_smem(D, gb, attn_kt(D));
        if (s > m) m = s;
    }
    return m;
}
static_assert(ATT_MAX_GB <= ATT_THREADS && attn_kt(1) <= ATT_THREADS, "k_attention: too few threads");
static_assert(ATT_ACC * ATT_THREADS >= ATT_MAX_GD, "k_attention: accumulators too few");
static_assert(attn_smem_max() <= 48 * 1024, "k_attention: over 48 KiB of dynamic shared memory");

__device__ __forceinline__ float kv_load(const uint8_t *p, int d, int f16) {
    return f16 ? swcu_h2f(((const uint16_t *)p)[d]) : ((const float *)p)[d];
}

// Token t's sequence and its number of keys (its position + 1); 0 keys, with
// an error flag raised by the reporter thread, when seq_start or pos is bad.
__device__ __forceinline__ int attn_keys(const attn_args &a, int t, bool reporter, int *seq_out) {
    // the sequence of token t: the last s with seq_start[s] <= t
    int lo = 0, hi = a.n_seqs;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (a.seq_start[mid] <= t) lo = mid;
        else hi = mid;
    }
    *seq_out = lo;
    if (!(a.seq_start[lo] <= t && t < a.seq_start[lo + 1])) {
        if (reporter) swcu_flag(a.errw, SWCU_EFLAG_SEQ, a.opi, t, lo);
        return 0;
    }
    const int p = a.pos[t];
    if (p < 0 || (int64_t)p >= (int64_t)a.max_blocks * a.bs) {
        if (reporter) swcu_flag(a.errw, SWCU_EFLAG_POS, a.opi, t, p);
        return 0;
    }
    return p + 1;
}

__global__ void __launch_bounds__(ATT_THREADS) k_attention(attn_args a) {
    extern __shared__ float sm[];
    const int D = a.D, KT = a.KT, Gb = a.Gb;
    float *q_s = sm;                     // [Gb][D]
    float *k_s = q_s + Gb * D;           // [KT][D + 1] (padded: no bank conflicts)
    float *v_s = k_s + KT * (D + 1);     // [KT][D]
    float *s_s = v_s + KT * D;           // [Gb][KT] scores, then weights
    float *m_s = s_s + Gb * KT;          // [Gb] running max
    float *l_s = m_s + Gb;               // [Gb] running sum
    float *al_s = l_s + Gb;              // [Gb] rescale factor of this tile
    int *slot_s = (int *)(al_s + Gb);    // [KT]

    const int split = blockIdx.x, kvh = blockIdx.y / a.n_hg, hg = blockIdx.y % a.n_hg;
    const int t = blockIdx.z, tid = threadIdx.x;
    const int h0 = kvh * a.G + hg * Gb, gn = min(Gb, a.G - hg * Gb);
    const bool reporter = tid == 0 && split == 0 && blockIdx.y == 0;

    int seq;
    const int n_keys = attn_keys(a, t, reporter, &seq);
    // keys [key_lo, n_keys): the causal context, cut to the sliding window if any
    const int key_lo = a.window > 0 ? max(0, n_keys - a.window) : 0;
    int k0, k1;
    swcu_attn_split_range(key_lo, n_keys, a.n_splits, split, KT, &k0, &k1);

    for (int e = tid; e < gn * D; e += ATT_THREADS) {
        const int g = e / D, d = e % D;
        q_s[g * D + d] = ((const float *)(a.q + (uint64_t)t * a.q_ts + (uint64_t)(h0 + g) * a.q_hs))[d];
    }
    if (tid < Gb) {
        m_s[tid] = -INFINITY;
        l_s[tid] = 0.0f;
    }
    float acc[ATT_ACC];
#pragma unroll
    for (int r = 0; r < ATT_ACC; r++) acc[r] = 0.0f;
    __syncthreads();

    const int32_t *table = a.bt + (int64_t)seq * a.max_blocks;
    for (int j0 = k0; j0 < k1; j0 += KT) {
        const int nj = min(KT, k1 - j0);
        if (tid < KT) {
            int slot = -1;
            if (tid < nj) {
                const int j = j0 + tid, blk = table[j / a.bs];
                if (blk < 0 || blk >= a.n_blocks) swcu_flag(a.errw, SWCU_EFLAG_BLOCK, a.opi, t, blk);
                else slot = blk * a.bs + j % a.bs;
            }
            slot_s[tid] = slot;
        }
        __syncthreads();
        for (int e = tid; e < KT * D; e += ATT_THREADS) {
            const int j = e / D, d = e % D, slot = slot_s[j];
            float kv = 0.0f, vv = 0.0f;
            if (slot >= 0) {
                const uint64_t off = (uint64_t)kvh * a.c_hs + (uint64_t)(slot % a.bs) * a.c_ss +
                                     (uint64_t)(slot / a.bs) * a.c_bs;
                kv = kv_load(a.kc + off, d, a.f16);
                vv = kv_load(a.vc + off, d, a.f16);
            }
            k_s[j * (D + 1) + d] = kv;
            v_s[j * D + d] = vv;
        }
        __syncthreads();
        for (int e = tid; e < Gb * KT; e += ATT_THREADS) {
            const int g = e / KT, j = e % KT;
            float s = -INFINITY;
            if (g < gn && slot_s[j] >= 0) {
                const float *qg = q_s + g * D, *kj = k_s + j * (D + 1);
                float dot = 0.0f;
                for (int d = 0; d < D; d++) dot += qg[d] * kj[d];
                s = dot * a.scale;
            }
            s_s[e] = s;
        }
        __syncthreads();
        if (tid < gn) {
            float *sg = s_s + tid * KT;
            const float mo = m_s[tid];
            float mx = mo;
            for (int j = 0; j < KT; j++) mx = fmaxf(mx, sg[j]);
            float alpha = 1.0f;
            if (mx == -INFINITY) { // nothing valid yet: weights 0, nothing to rescale
                for (int j = 0; j < KT; j++) sg[j] = 0.0f;
            } else {
                alpha = expf(mo - mx); // 0 when mo = -inf
                float sum = 0.0f;
                for (int j = 0; j < KT; j++) {
                    const float pj = expf(sg[j] - mx); // 0 for -inf scores
                    sg[j] = pj;
                    sum += pj;
                }
                l_s[tid] = l_s[tid] * alpha + sum;
                m_s[tid] = mx;
            }
            al_s[tid] = alpha;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < ATT_ACC; r++) {
            const int e = tid + r * ATT_THREADS;
            if (e < gn * D) {
                const int g = e / D, d = e % D;
                const float *pg = s_s + g * KT;
                float v = acc[r] * al_s[g];
                for (int j = 0; j < nj; j++) v += pg[j] * v_s[j * D + d];
                acc[r] = v;
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < ATT_ACC; r++) {
        const int e = tid + r * ATT_THREADS;
        if (e < gn * D) {
            const int g = e / D, d = e % D, h = h0 + g;
            if (a.n_splits == 1) {
                const float l = l_s[g];
                ((float *)(a.out + (uint64_t)t * a.o_ts + (uint64_t)h * a.o_hs))[d] =
                    l > 0.0f ? acc[r] / l : 0.0f;
            } else {
                a.part[(((int64_t)t * a.n_head + h) * a.n_splits + split) * D + d] = acc[r];
            }
        }
    }
    if (a.n_splits > 1 && tid < gn)
        a.part_ml[((int64_t)t * a.n_head + h0 + tid) * a.n_splits + split] =
            make_float2(m_s[tid], l_s[tid]);
}

// 16 bytes of K or V as floats: 8 f16 or 4 f32.
template <bool F16> __device__ __forceinline__ void attnw_load(const uint8_t *p, float *v) {
    const uint4 u = *(const uint4 *)p;
    if (F16) {
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            v[2 * i] = swcu_h2f((uint16_t)(w[i] & 0xffffu));
            v[2 * i + 1] = swcu_h2f((uint16_t)(w[i] >> 16));
        }
    } else {
        v[0] = __uint_as_float(u.x);
        v[1] = __uint_as_float(u.y);
        v[2] = __uint_as_float(u.z);
        v[3] = __uint_as_float(u.w);
    }
}

// The decode kernel (see the top of the file). grid (split, kv head x head
// group, token), ATTW_WARPS warps. Bytes: as k_attention, read with 16-byte
// loads by groups of lanes that together cover one key's row.
template <bool F16, int GB>
__global__ void __launch_bounds__(ATTW_WARPS * 32) k_attention_warp(attn_args a) {
    constexpr int E = F16 ? 8 : 4, ES = F16 ? 2 : 4;
    __shared__ float s_acc[ATTW_WARPS][GB][ATT_MAX_HD];
    __shared__ float s_m[ATTW_WARPS][GB], s_l[ATTW_WARPS][GB];
    const int D = a.D, L = D / E, kpw = 32 / L;
    const int lane = threadIdx.x % 32, w = threadIdx.x / 32, grp = lane / L, sub = lane % L;
    const int split = blockIdx.x, kvh = blockIdx.y / a.n_hg, hg = blockIdx.y % a.n_hg;
    const int t = blockIdx.z, h0 = kvh * a.G + hg * GB, gn = min(GB, a.G - hg * GB);
    const bool reporter = threadIdx.x == 0 && split == 0 && blockIdx.y == 0;
    int seq;
    const int n_keys = attn_keys(a, t, reporter, &seq);
    const int key_lo = a.window > 0 ? max(0, n_keys - a.window) : 0;
    int k0, k1;
    swcu_attn_split_range(key_lo, n_keys, a.n_splits, split, ATTW_WARPS * kpw, &k0, &k1);

    float q[GB][E], acc[GB][E], m[GB], l[GB];
#pragma unroll
    for (int g = 0; g < GB; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++) {
            acc[g][e] = 0.0f;
            q[g][e] = g < gn ? ((const float *)(a.q + (uint64_t)t * a.q_ts +
                                                (uint64_t)(h0 + g) * a.q_hs))[sub * E + e]
                             : 0.0f;
        }
    }
    const int32_t *table = a.bt + (int64_t)seq * a.max_blocks;
    const int step = ATTW_WARPS * kpw, n_it = (k1 - k0 + step - 1) / step;
    for (int it = 0; it < n_it; it++) {
        const int j = swcu_attnw_key(k0, it, w, grp, kpw);
        bool valid = j < k1;
        float kv[E], vv[E];
#pragma unroll
        for (int e = 0; e < E; e++) kv[e] = vv[e] = 0.0f;
        if (valid) {
            const int blk = table[j / a.bs];
            if (blk < 0 || blk >= a.n_blocks) {
                if (sub == 0) swcu_flag(a.errw, SWCU_EFLAG_BLOCK, a.opi, t, blk);
                valid = false;
            } else {
                const uint64_t off = (uint64_t)kvh * a.c_hs + (uint64_t)(j % a.bs) * a.c_ss +
                                     (uint64_t)blk * a.c_bs + (uint64_t)sub * E * ES;
                attnw_load<F16>(a.kc + off, kv);
                attnw_load<F16>(a.vc + off, vv);
            }
        }
#pragma unroll
        for (int g = 0; g < GB; g++) {
            if (g >= gn) break; // uniform: every lane reaches the same shuffles
            float part = 0.0f;
#pragma unroll
            for (int e = 0; e < E; e++) part += q[g][e] * kv[e];
            for (int o = L / 2; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
            if (valid) swcu_online_update(m[g], l[g], acc[g], E, part * a.scale, vv);
        }
    }
    // merge the lane groups of the warp, then the warps
    for (int o = L; o < 32; o <<= 1) {
#pragma unroll
        for (int g = 0; g < GB; g++) {
            if (g >= gn) break;
            float acc2[E];
#pragma unroll
            for (int e = 0; e < E; e++) acc2[e] = __shfl_xor_sync(0xffffffffu, acc[g][e], o);
            const float m2 = __shfl_xor_sync(0xffffffffu, m[g], o);
            const float l2 = __shfl_xor_sync(0xffffffffu, l[g], o);
            swcu_online_merge(m[g], l[g], acc[g], E, m2, l2, acc2);
        }
    }
    if (grp == 0)
#pragma unroll
        for (int g = 0; g < GB; g++) {
            if (g >= gn) break;
#pragma unroll
            for (int e = 0; e < E; e++) s_acc[w][g][sub * E + e] = acc[g][e];
            if (sub == 0) {
                s_m[w][g] = m[g];
                s_l[w][g] = l[g];
            }
        }
    __syncthreads();
    for (int idx = threadIdx.x; idx < gn * D; idx += ATTW_WARPS * 32) {
        const int g = idx / D, d = idx % D, h = h0 + g;
        float M = -INFINITY, Lt = 0.0f, O = 0.0f;
        for (int w2 = 0; w2 < ATTW_WARPS; w2++)
            swcu_online_merge(M, Lt, &O, 1, s_m[w2][g], s_l[w2][g], &s_acc[w2][g][d]);
        if (a.n_splits == 1) {
            ((float *)(a.out + (uint64_t)t * a.o_ts + (uint64_t)h * a.o_hs))[d] =
                Lt > 0.0f ? O / Lt : 0.0f;
        } else {
            const int64_t pi = ((int64_t)t * a.n_head + h) * a.n_splits + split;
            a.part[pi * D + d] = O;
            if (d == 0) a.part_ml[pi] = make_float2(M, Lt);
        }
    }
}

// Merge the splits of one (head, token): out = sum_s o_s e^(m_s - M) / sum_s
// l_s e^(m_s - M). grid (n_head, T). Bytes: reads 4 * n_splits * (D + 2),
// writes 4D per (head, token).
__global__ void __launch_bounds__(ATT_THREADS)
k_attention_combine(const float *__restrict__ part, const float2 *__restrict__ part_ml,
                    int n_splits, int D, int n_head, uint8_t *out, uint64_t o_ts, uint64_t o_hs) {
    const int h = blockIdx.x, t = blockIdx.y;
    const int64_t base = ((int64_t)t * n_head + h) * n_splits;
    float M = -INFINITY;
    for (int s = 0; s < n_splits; s++) M = fmaxf(M, part_ml[base + s].x);
    float L = 0.0f;
    if (M != -INFINITY)
        for (int s = 0; s < n_splits; s++) {
            const float2 ml = part_ml[base + s];
            if (ml.x != -INFINITY) L += ml.y * expf(ml.x - M);
        }
    float *o = (float *)(out + (uint64_t)t * o_ts + (uint64_t)h * o_hs);
    for (int d = threadIdx.x; d < D; d += ATT_THREADS) {
        float v = 0.0f;
        if (L > 0.0f) {
            for (int s = 0; s < n_splits; s++) {
                const float2 ml = part_ml[base + s];
                if (ml.x != -INFINITY) v += part[(base + s) * D + d] * expf(ml.x - M);
            }
            v /= L;
        }
        o[d] = v;
    }
}

sw_status swcu_attention_plan(const sw_cuda_backend *be, swcu_op *op, sw_err *err) {
    const int D = op->i[SWCU_A_HEADDIM], nh = op->i[SWCU_A_NHEAD], nkv = op->i[SWCU_A_NHEADKV];
    if (D <= 0 || D > ATT_MAX_HD)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cuda attention: head_dim %d (supported: 1..%d)",
                          D, ATT_MAX_HD);
    const int G = nh / nkv;
    // the decode kernel: head_dim a power-of-two number of 16-byte loads
    // (<= 32 lanes per key), cache rows on 16-byte boundaries
    const swcu_tensor *kc = &op->t[1], *vc = &op->t[2];
    const int E = kc->type == SW_TYPE_F16 ? 8 : 4, L = D / E;
    const bool pow2 = L > 0 && L <= 32 && (L & (L - 1)) == 0 && D % E == 0;
    const uint64_t al = (uint64_t)(uintptr_t)kc->p | (uint64_t)(uintptr_t)vc->p | kc->nb[1] |
                        kc->nb[2] | kc->nb[3];
    const bool warp = pow2 && al % 16 == 0;
    int Gb;
    if (warp) {
        Gb = 1;
        while (Gb < SW_MIN(G, ATTW_MAX_GB)) Gb *= 2;
    } else {
        Gb = SW_MIN(SW_MIN(G, ATT_MAX_GD / D), ATT_MAX_GB);
    }
    const int n_hg = (G + Gb - 1) / Gb;
    op->i[SWCU_A_WARP] = warp;
    const int64_t T = op->t[5].ne[0];
    if (T > 65535 || (int64_t)nkv * n_hg > 65535)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "cuda attention: %lld tokens x %d kv heads is over the grid limit",
                          (long long)T, nkv);
    // Split the key range only when (token, kv head, group) blocks alone would
    // leave SMs idle. The count is part of the op, hence of the graph
    // signature: it depends on the capacity of the block tables (the longest
    // context the step can see, fixed for a run), never on the current
    // context, so decode steps keep one signature. Each split takes an equal
    // share of the current context (the kernels compute it on the device);
    // splits past it write empty partials, which the combine skips.
    const int64_t cap_keys = (int64_t)op->i[SWCU_A_MAXBLOCKS] * op->i[SWCU_A_BLOCKSIZE];
    const int64_t blocks = T * nkv * n_hg, target = 2 * (int64_t)SW_MAX(be->info.sm_count, 1);
    int splits = 1;
    // a sliding window bounds the keys any query reads
    const int window = op->i[SWCU_A_WINDOW];
    const int64_t span = window > 0 && cap_keys > window ? window : cap_keys;
    if (blocks < target && span > ATT_SPLIT_KEYS) {
        int64_t want = SW_MIN((target + blocks - 1) / blocks,
                              (span + ATT_SPLIT_KEYS - 1) / ATT_SPLIT_KEYS);
        while (splits < want && splits < ATT_MAX_SPLITS) splits *= 2;
    }
    op->i[SWCU_A_SPLITS] = splits;
    op->i[SWCU_A_GB] = Gb;
    return SW_OK;
}

size_t swcu_attention_scratch(const swcu_op *op) {
    const int splits = op->i[SWCU_A_SPLITS];
    if (splits <= 1) return 0;
    const size_t n = (size_t)op->t[5].ne[0] * (size_t)op->i[SWCU_A_NHEAD] * (size_t)splits;
    return ((n * (size_t)op->i[SWCU_A_HEADDIM] * sizeof(float) + 255) & ~(size_t)255) +
           n * sizeof(float2);
}

sw_status swcu_run_attention(sw_cuda_backend *be, const swcu_op *op, sw_err *err) {
    const swcu_tensor *q = &op->t[0], *kc = &op->t[1], *vc = &op->t[2], *o = &op->t[3];
    attn_args a;
    memset(&a, 0, sizeof a);
    const int D = op->i[SWCU_A_HEADDIM], nh = op->i[SWCU_A_NHEAD], nkv = op->i[SWCU_A_NHEADKV];
    const int64_t T = op->t[5].ne[0];
    const bool q2d = q->ne[0] == (int64_t)D * nh && q->ne[2] == 1;
    const bool o2d = o->ne[0] == (int64_t)D * nh && o->ne[2] == 1;
    a.q = q->p;
    a.q_ts = q2d ? q->nb[1] : q->nb[2];
    a.q_hs = q2d ? (uint64_t)D * 4 : q->nb[1];
    a.out = o->p;
    a.o_ts = o2d ? o->nb[1] : o->nb[2];
    a.o_hs = o2d ? (uint64_t)D * 4 : o->nb[1];
    a.kc = kc->p;
    a.vc = vc->p;
    a.c_hs = kc->nb[1];
    a.c_ss = kc->nb[2];
    a.c_bs = kc->nb[3];
    a.f16 = kc->type == SW_TYPE_F16;
    a.n_blocks = kc->ne[3];
    a.seq_start = (const int32_t *)op->t[4].p;
    a.pos = (const int32_t *)op->t[5].p;
    a.bt = (const int32_t *)op->t[6].p;
    a.n_seqs = op->i[SWCU_A_NSEQS];
    a.max_blocks = op->i[SWCU_A_MAXBLOCKS];
    a.bs = op->i[SWCU_A_BLOCKSIZE];
    a.n_head = nh;
    a.D = D;
    a.G = nh / nkv;
    a.Gb = op->i[SWCU_A_GB];
    a.n_hg = (a.G + a.Gb - 1) / a.Gb;
    a.KT = attn_kt(D);
    a.n_splits = op->i[SWCU_A_SPLITS];
    a.window = op->i[SWCU_A_WINDOW];
    a.scale = op->f[0];
    a.errw = be->errw_dev;
    a.opi = op->index;
    if (a.n_splits > 1) {
        const size_t n = (size_t)T * (size_t)nh * (size_t)a.n_splits;
        a.part = (float *)be->scratch;
        a.part_ml = (float2 *)(be->scratch + ((n * (size_t)D * sizeof(float) + 255) & ~(size_t)255));
    }
    dim3 grid((unsigned)a.n_splits, (unsigned)(nkv * a.n_hg), (unsigned)T);
    if (op->i[SWCU_A_WARP]) {
        const dim3 blk(ATTW_WARPS * 32);
#define ATTW_CASE(gb)                                                                   \
    case gb:                                                                            \
        if (a.f16) k_attention_warp<true, gb><<<grid, blk, 0, be->stream>>>(a);         \
        else k_attention_warp<false, gb><<<grid, blk, 0, be->stream>>>(a);             \
        break;
        switch (a.Gb) {
            ATTW_CASE(1)
            ATTW_CASE(2)
            ATTW_CASE(4)
            ATTW_CASE(8)
        default: return sw_err_set(err, SW_E_INTERNAL, "cuda attention: head group %d", a.Gb);
        }
#undef ATTW_CASE
        SWCU_LAUNCHED("k_attention_warp");
    } else {
        k_attention<<<grid, ATT_THREADS, attn_smem(D, a.Gb, a.KT), be->stream>>>(a);
        SWCU_LAUNCHED("k_attention");
    }
    if (a.n_splits > 1) {
        dim3 g2((unsigned)nh, (unsigned)T);
        k_attention_combine<<<g2, ATT_THREADS, 0, be->stream>>>(a.part, a.part_ml, a.n_splits, D, nh,
                                                                 a.out, a.o_ts, a.o_hs);
        SWCU_LAUNCHED("k_attention_combine");
    }
    return SW_OK;
}
