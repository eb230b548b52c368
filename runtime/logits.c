/* logits.c — one row's statistics and top k (see logits.h). */
#include "logits.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The row is summed in LANES independent float lanes (lane j takes every
 * LANES-th element of a chunk of CHUNK), each chunk's lanes then added in
 * double: the same operations in the same order on every host and vector
 * width, so the results are bit-identical everywhere (the file is built with
 * -ffp-contract=off: no fused multiply-adds either), and the loops vectorise
 * under GCC's default -ftrapping-math because every test is an integer one on
 * the bit patterns. A lane adds CHUNK / LANES = 16 terms in [0, 1] per chunk:
 * log Z and H come out good to ~1e-7 relative even for 128k terms. */
#define CHUNK 256
#define LANES 16

/* a float's bits as a signed integer that orders like the float (NaN
 * excluded by the caller) */
static inline int32_t ord_key(uint32_t b) {
    return (int32_t)(b ^ ((uint32_t)((int32_t)b >> 31) & 0x7FFFFFFFu));
}

/* whether any of the LANES floats at p is above t (NaN never is): one
 * vector compare (GCC/Clang vector extensions) and an OR of the masks */
typedef float f32xl __attribute__((vector_size(4 * LANES)));
typedef int32_t i32xl __attribute__((vector_size(4 * LANES)));
static inline bool block_above(const float *p, float t) {
    f32xl x;
    memcpy(&x, p, sizeof x);
    const i32xl gt = x > t;
    uint64_t h[LANES / 2], any = 0;
    memcpy(h, &gt, sizeof h);
    for (int j = 0; j < LANES / 2; j++) any |= h[j];
    return any != 0;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__) &&     \
    defined(__has_attribute)
#if __has_attribute(target_clones)
/* the host's widest vectors, chosen at load time (ifunc) */
#define ROW_STATS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef ROW_STATS_CLONES
#define ROW_STATS_CLONES
#endif

ROW_STATS_CLONES
void sw_logits_row_stats(const float *l, int64_t V, int32_t k, sw_logits_stats *st, int32_t *ids,
                         float *logits) {
    /* the largest logit and the NaN count, on the bit patterns (integer
     * reductions, which vectorise) */
    const uint32_t *lb = (const uint32_t *)(const void *)l;
    int32_t key = INT32_MIN, n_nan = 0;
    for (int64_t i = 0; i < V; i++) {
        const uint32_t b = lb[i];
        /* all ones when b is a NaN: |b| above the bits of +inf */
        const int32_t nan = (int32_t)(0x7F800000u - (b & 0x7FFFFFFFu)) >> 31;
        const int32_t kb = (ord_key(b) & ~nan) | (INT32_MIN & nan);
        n_nan -= nan;
        key = kb > key ? kb : key;
    }
    /* every logit NaN (or V = 0): m = -inf, as a compare-based max gives */
    const float m = key == INT32_MIN ? -INFINITY : sw_u2f((uint32_t)ord_key((uint32_t)key));
    double sum = 0.0, sum_el = 0.0;
    if (isfinite(m)) {
        /* exp in float (~2 ulp). Zero-weight tokens are skipped (masked) so
         * that 0 * -inf does not poison the entropy sum; NaN logits give NaN
         * weights, masked too. */
        float w[CHUNK], e[CHUNK];
        for (int64_t i0 = 0; i0 < V; i0 += CHUNK) {
            const int64_t n = V - i0 < CHUNK ? V - i0 : CHUNK;
            for (int64_t t = 0; t < n; t++) {
                const float d = l[i0 + t] - m;
                const float wt = sw_exp_neg(d);
                const float et = wt * d;
                /* keep finite positive weights only: 0 < bits < +inf */
                const uint32_t keep = sw_f2u(wt) - 1u < 0x7F7FFFFFu ? 0xFFFFFFFFu : 0u;
                w[t] = sw_u2f(sw_f2u(wt) & keep);
                e[t] = sw_u2f(sw_f2u(et) & keep);
            }
            for (int64_t t = n; t < CHUNK; t++) w[t] = e[t] = 0.0f;
            float sw[LANES], se[LANES];
            for (int j = 0; j < LANES; j++) sw[j] = se[j] = 0.0f;
            for (int t = 0; t < CHUNK; t += LANES)
                for (int j = 0; j < LANES; j++) {
                    sw[j] += w[t + j];
                    se[j] += e[t + j];
                }
            for (int j = 0; j < LANES; j++) {
                sum += (double)sw[j];
                sum_el += (double)se[j];
            }
        }
    }
    memset(st, 0, sizeof *st);
    st->max = m;
    st->n_nan = n_nan;
    if (sum > 0.0) {
        double lz_rel = log(sum);
        /* H = -sum p log p = log S - (sum e*d)/S, with d = l - m */
        double h = lz_rel - sum_el / sum;
        st->sum_exp = sum;
        st->log_z = (double)m + lz_rel;
        st->entropy = (float)(h > 0.0 ? h : 0.0);
    } else {
        st->log_z = (double)m;
    }
    st->logsumexp = (float)st->log_z;

    /* top k: a small insertion-sorted list; most logits fail the first compare.
     * ids rise with i, so an equal logit never beats the current k-th. Once
     * the list is full, a block of LANES logits none of which is above the
     * k-th (the same compare, vectorised) is skipped whole. */
    int32_t have = 0;
    for (int64_t i0 = 0; i0 < V && k > 0; i0 += LANES) {
        const int64_t n = V - i0 < LANES ? V - i0 : LANES;
        if (have == k && n == LANES && !block_above(l + i0, logits[k - 1])) continue;
        for (int64_t i = i0; i < i0 + n; i++) {
            float x = l[i];
            if (x != x) continue;
            if (have == k && !(x > logits[k - 1])) continue;
            int32_t j = have < k ? have++ : k - 1;
            while (j > 0 && x > logits[j - 1]) {
                ids[j] = ids[j - 1];
                logits[j] = logits[j - 1];
                j--;
            }
            ids[j] = (int32_t)i;
            logits[j] = x;
        }
    }
    for (int32_t j = have; j < k; j++) {
        ids[j] = -1;
        logits[j] = -INFINITY;
    }
}
