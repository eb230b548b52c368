// cuda_attention.cuh — the online-softmax arithmetic of the attention kernels
// (cuda_attention.cu: tiled, any head_dim; cuda_attention_warp.cu: warp per
// key, the decode kernel), written once for host and device so that the
// host self-test (cuda_quant_selftest.cu) runs the decode kernel's whole
// schedule on the host: which split, warp and lane group takes which key,
// every update and every merge, in the kernel's order.
//
// State of a partial softmax over some keys: running max m, sum l of
// e^(s - m), and acc = sum e^(s - m) v (n values); m = -inf, l = 0, acc = 0
// for no keys. Merging two states in any order gives the state of the union.
#ifndef SW_CUDA_ATTENTION_CUH
#define SW_CUDA_ATTENTION_CUH

#include "cuda_common.cuh"

#define ATT_SPLIT_KEYS 256 // keys per split, roughly, when splitting pays
#define ATT_MAX_SPLITS 64
#define ATTW_WARPS 4       // warps per block of the decode kernel
#define ATTW_MAX_GB 8      // query heads per block of the decode kernel (registers)

SWCU_HD float swcu_expf(float x) { return expf(x); }

// Fold one key's score s and value slice v[0..n) into (m, l, acc).
SWCU_HD void swcu_online_update(float &m, float &l, float *acc, int n, float s, const float *v) {
    const float mn = fmaxf(m, s);
    const float alpha = swcu_expf(m - mn); // 0 when m = -inf
    const float p = swcu_expf(s - mn);
    l = l * alpha + p;
    for (int e = 0; e < n; e++) acc[e] = acc[e] * alpha + p * v[e];
    m = mn;
}

// Merge (m2, l2, acc2) into (m, l, acc); either may be empty (m = -inf).
SWCU_HD void swcu_online_merge(float &m, float &l, float *acc, int n, float m2, float l2,
                               const float *acc2) {
    const float mn = fmaxf(m, m2);
    if (mn == -INFINITY) return; // both empty
    const float a1 = m == -INFINITY ? 0.0f : swcu_expf(m - mn);
    const float a2 = m2 == -INFINITY ? 0.0f : swcu_expf(m2 - mn);
    l = l * a1 + l2 * a2;
    for (int e = 0; e < n; e++) acc[e] = acc[e] * a1 + acc2[e] * a2;
    m = mn;
}

// The keys [*k0, *k1) of split `split` out of n_splits over the keys
// [key_lo, n_keys) (key_lo > 0: a sliding window): equal shares rounded up to
// `gran` keys (the kernel's step), the last ones possibly empty.
SWCU_HD void swcu_attn_split_range(int key_lo, int n_keys, int n_splits, int split, int gran,
                                   int *k0, int *k1) {
    int chunk = (n_keys - key_lo + n_splits - 1) / n_splits;
    chunk = (chunk + gran - 1) / gran * gran;
    const int a = key_lo + split * chunk;
    *k0 = a < n_keys ? a : n_keys;
    *k1 = a + chunk < n_keys ? a + chunk : n_keys;
}

// The decode kernel's schedule inside a split: iteration `it` of warp `w`,
// lane group `grp` (kpw groups of 32 / kpw lanes per warp) takes key
// k0 + (it * ATTW_WARPS + w) * kpw + grp.
SWCU_HD int swcu_attnw_key(int k0, int it, int w, int grp, int kpw) {
    return k0 + (it * ATTW_WARPS + w) * kpw + grp;
}

#endif
