/* logits.h — the statistics of one row of logits, written once and shared by
 * the sampler (sampler.c) and the host implementation of the backends' logits
 * summary (backend.c), so that sampling from a summary made on the host gives
 * bit for bit what sampling from the full row gives.
 *
 * The row statistics (sw_logits_stats, backend.h): the largest logit m,
 * sum_exp = sum_j e^(l_j - m) and log_z = m + log(sum_exp) in double, the
 * entropy of softmax(l), the count of NaN logits, and the k best tokens in the
 * sampler's total order (logit descending, then id ascending) with their raw
 * logits. */
#ifndef SW_LOGITS_H
#define SW_LOGITS_H

#include <stdint.h>
#include <string.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline uint32_t sw_f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float sw_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* exp(x) for x <= 0, within ~2 ulp of the true value. Our own rather than libm's
 * so that (a) the loops over a 128k vocabulary vectorise (no calls, no branches)
 * and (b) weights, hence sampled tokens, are bit-identical on every IEEE-754
 * platform. x < -86 (and -inf) gives exactly 0: such a token weighs < 1e-37 of
 * the most likely one. Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then a
 * degree-7 Taylor polynomial (truncation < 1e-8 relative) scaled by 2^n. */
static inline float sw_exp_neg(float x) {
    /* The clamp is done on the bit pattern: for x <= 0 (sign set), "x < -86" is
     * "bits(x) > bits(-86)" as unsigned, -inf included. Float compares would keep
     * GCC from vectorising under its default -ftrapping-math. */
    const uint32_t lim = 0xC2AC0000u; /* bits of -86.0f */
    const float magic = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
    uint32_t xb = sw_f2u(x);
    uint32_t under = xb > lim && (xb >> 31) ? 0xFFFFFFFFu : 0u;
    float xc = sw_u2f((xb & ~under) | (lim & under));
    float t = xc * 1.44269504f + magic;
    float n = t - magic;
    int32_t ni = (int32_t)(sw_f2u(t) - sw_f2u(magic));
    float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return sw_u2f((sw_f2u(p) + ((uint32_t)ni << 23)) & ~under);
}

/* Summarize l[0..V): *st, and the k best (NaN logits skipped) into ids[0..k)
 * and logits[0..k) (ids and logits may be NULL when k == 0); slots past the
 * number of non-NaN logits get id -1 and logit -inf. The sums skip NaN and
 * zero-weight logits; with m = -inf or +inf (nothing finite to normalise by)
 * sum_exp is 0, log_z = m and the entropy 0. */
void sw_logits_row_stats(const float *l, int64_t V, int32_t k, sw_logits_stats *st, int32_t *ids,
                         float *logits);

#ifdef __cplusplus
}
#endif
#endif
