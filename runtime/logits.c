/* logits.c — one row's statistics and top k (see logits.h). */
#include "logits.h"

#include <math.h>

/* Weights are made a chunk at a time into a small buffer so that the exp loop
 * vectorises; the sums then run over them in index order, as one pass would. */
#define CHUNK 256

void sw_logits_row_stats(const float *l, int64_t V, int32_t k, sw_logits_stats *st, int32_t *ids,
                         float *logits) {
    float m = -INFINITY;
    int32_t n_nan = 0;
    for (int64_t i = 0; i < V; i++) {
        float x = l[i];
        n_nan += x != x;
        m = x > m ? x : m;
    }
    double sum = 0.0, sum_el = 0.0;
    if (isfinite(m)) {
        /* exp in float (~2 ulp), accumulation in double: log Z and H come out
         * good to ~1e-7 relative even for 128k terms. Zero-weight tokens are
         * skipped so that 0 * -inf does not poison the entropy sum; NaN logits
         * give NaN weights, skipped too. */
        float w[CHUNK];
        for (int64_t i0 = 0; i0 < V; i0 += CHUNK) {
            int64_t n = V - i0 < CHUNK ? V - i0 : CHUNK;
            for (int64_t i = 0; i < n; i++) w[i] = sw_exp_neg(l[i0 + i] - m);
            for (int64_t i = 0; i < n; i++) {
                if (!(w[i] > 0.0f)) continue;
                sum += (double)w[i];
                sum_el += (double)w[i] * (double)(l[i0 + i] - m);
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
     * ids rise with i, so an equal logit never beats the current k-th. */
    int32_t have = 0;
    for (int64_t i = 0; i < V && k > 0; i++) {
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
    for (int32_t j = have; j < k; j++) {
        ids[j] = -1;
        logits[j] = -INFINITY;
    }
}
