/* test_sampler.c — sampler correctness against independent double-precision
 * references computed here: raw logprob/entropy/top-n, the exact sets kept by
 * top-k/top-p/min-p, empirical frequencies (chi-square), temperature direction,
 * penalties, seeding, and parameter validation. All draws use fixed seeds, so the
 * statistical checks are deterministic (no flakiness), yet they still fail if the
 * sampler draws from a wrong distribution. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

/* ---- helpers ---------------------------------------------------------------- */

/* A test-local generator (not the sampler's) for random logits. */
static uint64_t lcg_state;
static double lcg_uniform(void) {
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(lcg_state >> 11) * 0x1.0p-53;
}
static float rand_logit(double scale) {
    /* sum of uniforms: roughly normal, no libm needed */
    double s = 0;
    for (int i = 0; i < 4; i++) s += lcg_uniform() - 0.5;
    return (float)(s * scale);
}

static sw_sampler_params plain_params(void) {
    sw_sampler_params p;
    sw_sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = 1234;
    p.n_top_logprobs = 0;
    return p;
}

static sw_sampler *make(const sw_sampler_params *p, int32_t n_vocab) {
    sw_sampler *s = NULL;
    sw_err err = {{0}};
    sw_status st = sw_sampler_create(p, n_vocab, &s, &err);
    if (st != SW_OK) fail_msg("sw_sampler_create: %s", err.msg);
    return s;
}

static int32_t sample1(sw_sampler *s, const float *logits) {
    sw_token_info info;
    sw_err err = {{0}};
    sw_status st = sw_sampler_sample(s, logits, &info, &err);
    if (st != SW_OK) fail_msg("sw_sampler_sample: %s", err.msg);
    return info.id;
}

/* Draw n tokens, counting into counts[n_vocab]. */
static void draw_counts(sw_sampler *s, const float *logits, int32_t n_vocab, int n, long *counts) {
    memset(counts, 0, (size_t)n_vocab * sizeof *counts);
    for (int i = 0; i < n; i++) {
        int32_t id = sample1(s, logits);
        assert_true(id >= 0 && id < n_vocab);
        counts[id]++;
    }
}

/* Reference: probabilities of softmax(logits / temp) restricted to keep[]. */
static void ref_probs(const float *logits, const int *keep, int n, double temp, double *out) {
    double m = -INFINITY, z = 0;
    for (int i = 0; i < n; i++)
        if (keep[i] && logits[i] > m) m = logits[i];
    for (int i = 0; i < n; i++) {
        out[i] = keep[i] ? exp((logits[i] - m) / temp) : 0.0;
        z += out[i];
    }
    for (int i = 0; i < n; i++) out[i] /= z;
}

/* Pearson chi-square of observed counts against expected probabilities, over the
 * tokens with p > 0. Returns the statistic; *df receives the degrees of freedom. */
static double chi_square(const long *counts, const double *p, int n, int draws, int *df) {
    double chi = 0;
    int cells = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] <= 0) continue;
        double e = p[i] * draws, d = (double)counts[i] - e;
        chi += d * d / e;
        cells++;
    }
    *df = cells - 1;
    return chi;
}

/* Upper 0.1% critical values of chi-square for df = 1..10. With fixed seeds the
 * test is deterministic; the bound is what a correct sampler passes with 99.9%
 * probability for any seed, and a wrong distribution fails by a wide margin. */
static const double k_chi2_999[11] = {0,     10.83, 13.82, 16.27, 18.47, 20.52,
                                      22.46, 24.32, 26.12, 27.88, 29.59};

static void expect_distribution(sw_sampler *s, const float *logits, const double *p, int n,
                                int draws) {
    long *counts = calloc((size_t)n, sizeof *counts);
    assert_non_null(counts);
    draw_counts(s, logits, n, draws, counts);
    for (int i = 0; i < n; i++)
        if (p[i] == 0 && counts[i] != 0)
            fail_msg("token %d drawn %ld times but is outside the allowed set", i, counts[i]);
        else if (p[i] > 0 && counts[i] == 0)
            fail_msg("token %d (p=%g) never drawn in %d draws", i, p[i], draws);
    int df;
    double chi = chi_square(counts, p, n, draws, &df);
    assert_true(df >= 1 && df <= 10);
    if (chi > k_chi2_999[df]) fail_msg("chi-square %.2f > %.2f (df %d)", chi, k_chi2_999[df], df);
    free(counts);
}

/* Logits whose softmax is exactly probs[] (up to float rounding), with ids permuted
 * so that the most likely tokens are not simply the lowest ids. */
static const double k_probs[8] = {0.30, 0.22, 0.16, 0.12, 0.09, 0.06, 0.03, 0.02};
static const int k_perm[8] = {5, 2, 7, 0, 3, 6, 1, 4};
static void make_logits8(float *logits) {
    for (int r = 0; r < 8; r++) logits[k_perm[r]] = (float)log(k_probs[r]);
}

/* ---- raw statistics ------------------------------------------------------------ */

static void check_raw_stats(int32_t n_vocab, double scale, int n_top) {
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    assert_non_null(logits);
    lcg_state = 42 + (uint64_t)n_vocab;
    for (int32_t i = 0; i < n_vocab; i++) logits[i] = rand_logit(scale);
    logits[3] = -INFINITY; /* a masked token must not break the entropy */
    logits[7] = logits[11]; /* a tie: the lower id must come first in top-n */

    /* reference in double */
    double m = -INFINITY, z = 0, h = 0;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > m) m = logits[i];
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] != -INFINITY) z += exp((double)logits[i] - m);
    double lz = m + log(z);
    for (int32_t i = 0; i < n_vocab; i++) {
        if (logits[i] == -INFINITY) continue;
        double lp = logits[i] - lz;
        h -= exp(lp) * lp;
    }

    sw_sampler_params p = plain_params();
    p.n_top_logprobs = n_top;
    sw_sampler *s = make(&p, n_vocab);
    sw_token_info info;
    assert_int_equal(sw_sampler_sample(s, logits, &info, NULL), SW_OK);
    assert_true(fabs(info.logprob - (logits[info.id] - lz)) < 1e-5);
    assert_true(fabs(info.entropy - h) < 1e-5 * (1 + h));
    assert_int_equal(info.n_top, n_top);

    /* reference top-n by repeated linear scans (independent of the sampler's method) */
    char *taken = calloc((size_t)n_vocab, 1);
    for (int j = 0; j < n_top; j++) {
        int32_t best = -1;
        for (int32_t i = 0; i < n_vocab; i++)
            if (!taken[i] && (best < 0 || logits[i] > logits[best])) best = i;
        taken[best] = 1;
        assert_int_equal(info.top_ids[j], best);
        assert_true(fabs(info.top_logprobs[j] - (logits[best] - lz)) < 1e-5);
    }
    free(taken);
    sw_sampler_free(s);
    free(logits);
}

static void test_raw_stats_small(void **state) {
    (void)state;
    check_raw_stats(1000, 8.0, SW_MAX_TOP_LOGPROBS);
}

static void test_raw_stats_128k(void **state) {
    (void)state;
    check_raw_stats(128256, 12.0, 5);
}

static void test_raw_stats_tie_order(void **state) {
    (void)state;
    float logits[6] = {1, 3, 3, 2, 3, 0};
    sw_sampler_params p = plain_params();
    p.n_top_logprobs = 4;
    sw_sampler *s = make(&p, 6);
    sw_token_info info;
    assert_int_equal(sw_sampler_sample(s, logits, &info, NULL), SW_OK);
    assert_int_equal(info.top_ids[0], 1);
    assert_int_equal(info.top_ids[1], 2);
    assert_int_equal(info.top_ids[2], 4);
    assert_int_equal(info.top_ids[3], 3);
    /* uniform distribution: entropy log(n) */
    float flat[6] = {0, 0, 0, 0, 0, 0};
    assert_int_equal(sw_sampler_sample(s, flat, &info, NULL), SW_OK);
    assert_true(fabs(info.entropy - log(6.0)) < 1e-6);
    assert_true(fabs(info.logprob + log(6.0)) < 1e-6);
    sw_sampler_free(s);
}

static void test_n_top_clamped_to_vocab(void **state) {
    (void)state;
    float logits[3] = {0, 1, 2};
    sw_sampler_params p = plain_params();
    p.n_top_logprobs = 20;
    sw_sampler *s = make(&p, 3);
    sw_token_info info;
    assert_int_equal(sw_sampler_sample(s, logits, &info, NULL), SW_OK);
    assert_int_equal(info.n_top, 3);
    assert_int_equal(info.top_ids[0], 2);
    sw_sampler_free(s);
}

/* ---- greedy ------------------------------------------------------------------- */

static void test_greedy(void **state) {
    (void)state;
    enum { N = 5000 };
    float *logits = malloc(N * sizeof *logits);
    lcg_state = 7;
    for (int i = 0; i < N; i++) logits[i] = rand_logit(10);
    int32_t best = 0;
    for (int i = 1; i < N; i++)
        if (logits[i] > logits[best]) best = i;
    sw_sampler_params p = plain_params();
    p.temperature = 0.0f;
    p.top_k = 1; /* irrelevant for greedy, must not matter */
    sw_sampler *s = make(&p, N);
    for (int r = 0; r < 3; r++) assert_int_equal(sample1(s, logits), best);
    /* ties go to the lowest id */
    logits[N - 1] = logits[best];
    logits[best / 2] = logits[best];
    assert_int_equal(sample1(s, logits), best / 2);
    sw_sampler_free(s);

    p.temperature = -1.0f; /* negative is greedy too */
    s = make(&p, N);
    assert_int_equal(sample1(s, logits), best / 2);
    sw_sampler_free(s);
    free(logits);
}

/* ---- truncation sets and distributions --------------------------------------- */

static void test_full_distribution(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    int keep[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    sw_sampler_params sp = plain_params();
    sw_sampler *s = make(&sp, 8);
    expect_distribution(s, logits, p, 8, 20000);
    sw_sampler_free(s);
}

static void test_top_k(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    sw_sampler_params sp = plain_params();
    sp.top_k = 3;
    int keep[8] = {0};
    for (int r = 0; r < 3; r++) keep[k_perm[r]] = 1; /* the three most likely */
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    sw_sampler *s = make(&sp, 8);
    expect_distribution(s, logits, p, 8, 20000);
    sw_sampler_free(s);
}

static void test_top_p(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    /* cumulative: .30 .52 .68 .80 .89 ...; top_p 0.75 keeps the smallest prefix
     * reaching it: 4 tokens (0.80) */
    sw_sampler_params sp = plain_params();
    sp.top_p = 0.75f;
    int keep[8] = {0};
    for (int r = 0; r < 4; r++) keep[k_perm[r]] = 1;
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    sw_sampler *s = make(&sp, 8);
    expect_distribution(s, logits, p, 8, 20000);
    sw_sampler_free(s);

    /* top_p tiny: at least one token is kept (the most likely) */
    sp.top_p = 0.0f;
    s = make(&sp, 8);
    for (int i = 0; i < 100; i++) assert_int_equal(sample1(s, logits), k_perm[0]);
    sw_sampler_free(s);
}

static void test_top_k_then_top_p(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    /* top-k 3 renormalises to .30/.68, .22/.68, .16/.68 = .441 .324 .235; top_p 0.7
     * then needs the first two (.765) */
    sw_sampler_params sp = plain_params();
    sp.top_k = 3;
    sp.top_p = 0.7f;
    int keep[8] = {0};
    keep[k_perm[0]] = keep[k_perm[1]] = 1;
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    sw_sampler *s = make(&sp, 8);
    expect_distribution(s, logits, p, 8, 20000);
    sw_sampler_free(s);
}

static void test_min_p(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    /* keep p >= 0.35 * 0.30 = 0.105: .30 .22 .16 .12 */
    sw_sampler_params sp = plain_params();
    sp.min_p = 0.35f;
    int keep[8] = {0};
    for (int r = 0; r < 4; r++) keep[k_perm[r]] = 1;
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    sw_sampler *s = make(&sp, 8);
    expect_distribution(s, logits, p, 8, 20000);
    sw_sampler_free(s);
}

static void test_temperature(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    int keep[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    double p[8];
    long counts[8];
    double top_share[3];
    const float temps[3] = {0.5f, 1.0f, 2.0f};
    for (int t = 0; t < 3; t++) {
        sw_sampler_params sp = plain_params();
        sp.temperature = temps[t];
        ref_probs(logits, keep, 8, temps[t], p);
        sw_sampler *s = make(&sp, 8);
        expect_distribution(s, logits, p, 8, 20000);
        sw_sampler_reset(s);
        draw_counts(s, logits, 8, 20000, counts);
        top_share[t] = counts[k_perm[0]] / 20000.0;
        sw_sampler_free(s);
    }
    /* lower temperature sharpens (more mass on the argmax), higher flattens */
    assert_true(top_share[0] > top_share[1] + 0.05);
    assert_true(top_share[1] > top_share[2] + 0.05);
}

static const float *g_ref_logits;
static int cmp_ref(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    float la = g_ref_logits[a], lb = g_ref_logits[b];
    if (la != lb) return la > lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Large vocabulary: the quickselect/incremental-sort paths must keep exactly the
 * reference sets. Every draw must fall inside the reference set. */
static void test_large_vocab_sets(void **state) {
    (void)state;
    enum { N = 128256 };
    float *logits = malloc(N * sizeof *logits);
    int32_t *order = malloc(N * sizeof *order);
    char *in = malloc(N);
    lcg_state = 99;
    for (int i = 0; i < N; i++) logits[i] = rand_logit(6);
    for (int i = 0; i < 200; i++) logits[(i * 7919) % N] = 3.0f; /* many exact ties */

    /* reference order: logit desc, id asc, by libc's qsort over indices */
    for (int i = 0; i < N; i++) order[i] = i;
    g_ref_logits = logits;
    qsort(order, N, sizeof *order, cmp_ref);

    /* top-k 40 (heap selection) and 3000 (quickselect); the 200 tied logits sit
     * inside the top 3000, so ties are broken at the boundary of neither but the
     * order among them is exercised */
    sw_sampler_params sp = plain_params();
    sw_sampler *s;
    const int ks[2] = {40, 3000};
    for (int t = 0; t < 2; t++) {
        sp.top_k = ks[t];
        sp.temperature = 3.0f; /* flatten, so that draws reach deep into the set */
        memset(in, 0, N);
        for (int r = 0; r < ks[t]; r++) in[order[r]] = 1;
        s = make(&sp, N);
        for (int i = 0; i < 100; i++) {
            int32_t id = sample1(s, logits);
            if (!in[id]) fail_msg("top-k %d: drew %d outside the reference set", ks[t], id);
        }
        sw_sampler_free(s);
    }

    /* top-p 0.5 over the whole vocabulary (no top-k): incremental sort path */
    sp = plain_params();
    sp.top_p = 0.5f;
    double m = logits[order[0]], z = 0, cum = 0;
    for (int i = 0; i < N; i++) z += exp(logits[i] - m);
    memset(in, 0, N);
    int kept = 0;
    while (kept < N) {
        cum += exp(logits[order[kept]] - m);
        in[order[kept++]] = 1;
        if (cum >= 0.5 * z) break;
    }
    assert_true(kept > 256); /* the nucleus spans more than the first sorted chunk */
    s = make(&sp, N);
    for (int i = 0; i < 100; i++) {
        int32_t id = sample1(s, logits);
        if (!in[id]) fail_msg("top-p 0.5: drew %d outside the %d-token nucleus", id, kept);
    }
    sw_sampler_free(s);

    /* min-p 0.2 alone */
    sp = plain_params();
    sp.min_p = 0.2f;
    s = make(&sp, N);
    for (int i = 0; i < 100; i++) {
        int32_t id = sample1(s, logits);
        if (!((double)logits[id] >= m + log(0.2f)))
            fail_msg("min-p: drew %d with logit %g below the threshold", id, logits[id]);
    }
    sw_sampler_free(s);
    free(in);
    free(order);
    free(logits);
}

/* ---- penalties ----------------------------------------------------------------- */

static int32_t greedy_after(sw_sampler_params sp, const float *logits, int32_t n,
                            const int32_t *hist, int n_hist) {
    sp.temperature = 0.0f;
    sw_sampler *s = make(&sp, n);
    for (int i = 0; i < n_hist; i++) sw_sampler_accept(s, hist[i]);
    int32_t id = sample1(s, logits);
    sw_sampler_free(s);
    return id;
}

static void test_repeat_penalty(void **state) {
    (void)state;
    sw_sampler_params sp = plain_params();
    const int32_t h0[] = {0};
    /* positive logits are divided: 2.0 / 1.1 = 1.818 < 1.9 */
    const float pos[3] = {2.0f, 1.9f, -5.0f};
    sp.repeat_penalty = 1.1f;
    assert_int_equal(greedy_after(sp, pos, 3, NULL, 0), 0);
    assert_int_equal(greedy_after(sp, pos, 3, h0, 1), 1);
    sp.repeat_penalty = 1.04f; /* 2.0 / 1.04 = 1.923 > 1.9 */
    assert_int_equal(greedy_after(sp, pos, 3, h0, 1), 0);
    /* negative logits are multiplied: -1.0 * 1.1 = -1.1 < -1.05 */
    const float neg[3] = {-1.0f, -1.05f, -5.0f};
    sp.repeat_penalty = 1.1f;
    assert_int_equal(greedy_after(sp, neg, 3, h0, 1), 1);
    sp.repeat_penalty = 1.04f; /* -1.04 > -1.05 */
    assert_int_equal(greedy_after(sp, neg, 3, h0, 1), 0);
    /* repetition penalty ignores counts: three repeats cost as much as one */
    const int32_t h3[] = {0, 0, 0};
    assert_int_equal(greedy_after(sp, neg, 3, h3, 3), 0);
}

static void test_presence_frequency(void **state) {
    (void)state;
    const float l[3] = {2.0f, 1.5f, 0.0f};
    const int32_t h1[] = {0}, h3[] = {0, 2, 0, 0};
    sw_sampler_params sp = plain_params();
    sp.presence_penalty = 0.6f; /* 2.0 - 0.6 = 1.4 < 1.5 */
    assert_int_equal(greedy_after(sp, l, 3, h1, 1), 1);
    sp.presence_penalty = 0.4f; /* 1.6 > 1.5, and presence does not grow with count */
    assert_int_equal(greedy_after(sp, l, 3, h1, 1), 0);
    assert_int_equal(greedy_after(sp, l, 3, h3, 4), 0);
    sp.presence_penalty = 0.0f;
    sp.frequency_penalty = 0.2f; /* one occurrence: 1.8; three: 1.4 */
    assert_int_equal(greedy_after(sp, l, 3, h1, 1), 0);
    assert_int_equal(greedy_after(sp, l, 3, h3, 4), 1);
    /* both: 2.0 - (0.1 + 0.3*1) = 1.6 > 1.5; with 3 occurrences 2.0 - 1.0 = 1.0 */
    sp.presence_penalty = 0.1f;
    sp.frequency_penalty = 0.3f;
    assert_int_equal(greedy_after(sp, l, 3, h1, 1), 0);
    assert_int_equal(greedy_after(sp, l, 3, h3, 4), 1);
    /* negative penalties encourage repetition */
    const float l2[3] = {1.0f, 1.5f, 0.0f};
    sp.presence_penalty = -1.0f;
    sp.frequency_penalty = 0.0f;
    assert_int_equal(greedy_after(sp, l2, 3, h1, 1), 0);
}

static void test_penalty_window(void **state) {
    (void)state;
    const float l[8] = {2.0f, 1.5f, 0, 0, 0, 0, 0, 0};
    sw_sampler_params sp = plain_params();
    sp.presence_penalty = 1.0f;
    sp.repeat_last_n = 2;
    const int32_t recent[] = {5, 0, 6};    /* 0 is still in the last 2 */
    const int32_t evicted[] = {0, 5, 6};   /* 0 fell out of the window */
    assert_int_equal(greedy_after(sp, l, 8, recent, 3), 1);
    assert_int_equal(greedy_after(sp, l, 8, evicted, 3), 0);
    sp.repeat_last_n = 0; /* off */
    assert_int_equal(greedy_after(sp, l, 8, recent, 3), 0);
    /* unbounded: token 0 seen 1000 tokens ago still counts */
    sp.repeat_last_n = -1;
    int32_t *h = malloc(1001 * sizeof *h);
    h[0] = 0;
    for (int i = 1; i < 1001; i++) h[i] = 2 + i % 6;
    assert_int_equal(greedy_after(sp, l, 8, h, 1001), 1);
    /* frequency with unbounded history counts every occurrence across growth */
    sp.presence_penalty = 0.0f;
    sp.frequency_penalty = 0.001f; /* 2.0 - 0.001*count: count 501 -> 1.499 < 1.5 */
    for (int i = 0; i < 1001; i++) h[i] = (i % 2 == 0) ? 0 : 3;
    assert_int_equal(greedy_after(sp, l, 8, h, 1001), 1);
    assert_int_equal(greedy_after(sp, l, 8, h, 997), 0); /* 499 -> 1.501 */
    free(h);
    /* reset clears the history */
    sp.frequency_penalty = 0.0f;
    sp.presence_penalty = 1.0f;
    sp.temperature = 0.0f;
    sw_sampler *s = make(&sp, 8);
    sw_sampler_accept(s, 0);
    assert_int_equal(sample1(s, l), 1);
    sw_sampler_reset(s);
    assert_int_equal(sample1(s, l), 0);
    sw_sampler_accept(s, -1); /* out of range: ignored */
    sw_sampler_accept(s, 8);
    assert_int_equal(sample1(s, l), 0);
    sw_sampler_free(s);
}

/* ---- seeding ------------------------------------------------------------------- */

static void test_seed_reproducible(void **state) {
    (void)state;
    enum { N = 1000, T = 200 };
    float *logits = malloc(N * sizeof *logits);
    lcg_state = 5;
    for (int i = 0; i < N; i++) logits[i] = rand_logit(4);
    sw_sampler_params sp = plain_params();
    sp.top_k = 50;
    sp.top_p = 0.9f;
    sp.min_p = 0.01f;
    sp.repeat_penalty = 1.1f;
    sp.presence_penalty = 0.2f;
    int32_t a[T], b[T], c[T], r[T];
    sp.seed = 77;
    sw_sampler *s1 = make(&sp, N), *s2 = make(&sp, N);
    for (int t = 0; t < T; t++) {
        a[t] = sample1(s1, logits);
        sw_sampler_accept(s1, a[t]);
        b[t] = sample1(s2, logits);
        sw_sampler_accept(s2, b[t]);
    }
    assert_memory_equal(a, b, sizeof a);
    /* reset re-seeds and clears the history: the same sequence again */
    sw_sampler_reset(s1);
    for (int t = 0; t < T; t++) {
        r[t] = sample1(s1, logits);
        sw_sampler_accept(s1, r[t]);
    }
    assert_memory_equal(a, r, sizeof a);
    sw_sampler_free(s1);
    sw_sampler_free(s2);

    sp.seed = 78;
    s1 = make(&sp, N);
    for (int t = 0; t < T; t++) {
        c[t] = sample1(s1, logits);
        sw_sampler_accept(s1, c[t]);
    }
    int same = 0;
    for (int t = 0; t < T; t++) same += a[t] == c[t];
    assert_true(same < T / 2);
    sw_sampler_free(s1);
    free(logits);
}

/* ---- errors -------------------------------------------------------------------- */

static void expect_invalid(sw_sampler_params p, int32_t n_vocab, const char *field) {
    sw_sampler *s = (sw_sampler *)&p; /* sentinel: must be reset to NULL */
    sw_err err = {{0}};
    assert_int_equal(sw_sampler_create(&p, n_vocab, &s, &err), SW_E_INVALID_ARG);
    assert_null(s);
    if (!strstr(err.msg, field)) fail_msg("error '%s' does not name '%s'", err.msg, field);
}

/* ---- logit bias ------------------------------------------------------------------ */

static void test_logit_bias(void **state) {
    (void)state;
    sw_sampler_params sp = plain_params();
    const float l3[3] = {2.0f, 1.9f, -5.0f};
    sw_logit_bias b[2] = {{0, -0.2f}, {0, 0.0f}};
    sp.logit_bias = b;
    sp.n_logit_bias = 1;
    assert_int_equal(greedy_after(sp, l3, 3, NULL, 0), 1); /* 1.8 < 1.9 */
    b[0] = (sw_logit_bias){2, 7.5f};
    assert_int_equal(greedy_after(sp, l3, 3, NULL, 0), 2); /* 2.5 > 2.0 */
    b[0] = (sw_logit_bias){2, 3.0f}; /* listed twice: the sum (-5 + 7.5 > 2; either alone < 2) */
    b[1] = (sw_logit_bias){2, 4.5f};
    sp.n_logit_bias = 2;
    assert_int_equal(greedy_after(sp, l3, 3, NULL, 0), 2);
    /* -100 bans even a token far ahead of the rest */
    const float far[3] = {500.0f, 1.0f, 0.0f};
    b[0] = (sw_logit_bias){0, -100.0f};
    sp.n_logit_bias = 1;
    assert_int_equal(greedy_after(sp, far, 3, NULL, 0), 1);
    /* the bias comes before the repeat penalty (llama.cpp's order): token 0 is
     * -0.5 + 1 = 0.5, halved to 0.25 > 0.1 (the other order gives 0 < 0.1) */
    const float ord[3] = {-0.5f, 0.1f, -5.0f};
    const int32_t h0[] = {0};
    b[0] = (sw_logit_bias){0, 1.0f};
    sp.repeat_penalty = 2.0f;
    assert_int_equal(greedy_after(sp, ord, 3, h0, 1), 0);
    sp.repeat_penalty = 1.0f;

    /* sampling: a banned token is never drawn, the rest keep their odds, and
     * the reported logprob is the raw model's; the caller's array is copied */
    float logits[8];
    make_logits8(logits);
    sw_logit_bias ban = {k_perm[0], -100.0f};
    sp = plain_params();
    sp.logit_bias = &ban;
    sp.n_logit_bias = 1;
    sw_sampler *s = make(&sp, 8);
    ban.bias = 100.0f; /* must not matter: the sampler holds its own copy */
    int keep[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    keep[k_perm[0]] = 0;
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    expect_distribution(s, logits, p, 8, 20000);
    sw_token_info info;
    sw_err err = {{0}};
    assert_int_equal(sw_sampler_sample(s, logits, &info, &err), SW_OK);
    double m = logits[0], z = 0.0;
    for (int i = 1; i < 8; i++) m = logits[i] > m ? logits[i] : m;
    for (int i = 0; i < 8; i++) z += exp(logits[i] - m);
    assert_float_equal(info.logprob, logits[info.id] - m - log(z), 1e-5);
    sw_sampler_free(s);
}

/* ---- masks (constrained decoding) ------------------------------------------------ */

static void test_mask(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    uint8_t allow[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    allow[k_perm[0]] = allow[k_perm[2]] = 0; /* the most likely and the third */
    sw_sampler_params sp = plain_params();
    sp.temperature = 0.0f;
    sw_sampler *s = make(&sp, 8);
    sw_token_info info;
    sw_err err = {{0}};
    assert_int_equal(sw_sampler_sample_masked(s, logits, allow, &info, &err), SW_OK);
    assert_int_equal(info.id, k_perm[1]);
    /* logprob and alternatives are the unmasked model's */
    assert_float_equal(info.logprob, log(k_probs[1]), 1e-5);
    sw_sampler_free(s);
    /* sampling: masked tokens are never drawn */
    sp = plain_params();
    s = make(&sp, 8);
    long counts[8];
    draw_counts(s, logits, 8, 20000, counts);
    for (int i = 0; i < 8; i++) assert_true(counts[i] > 0); /* unmasked sampler: all drawn */
    for (int r = 0; r < 20000; r++) {
        assert_int_equal(sw_sampler_sample_masked(s, logits, allow, &info, &err), SW_OK);
        assert_true(allow[info.id]);
    }
    /* nothing allowed: a clear error, not a dead token */
    memset(allow, 0, sizeof allow);
    assert_int_equal(sw_sampler_sample_masked(s, logits, allow, &info, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "no token"));
    /* a mask plus bans that leave nothing */
    allow[3] = 1;
    sw_sampler_free(s);
    sw_logit_bias ban = {3, -100.0f};
    sp.logit_bias = &ban;
    sp.n_logit_bias = 1;
    s = make(&sp, 8);
    assert_int_equal(sw_sampler_sample_masked(s, logits, allow, &info, &err), SW_E_INVALID_ARG);
    sw_sampler_free(s);
}

/* Rejection sampling for constrained decoding: draw unmasked, keep the token
 * if allowed, else draw with sw_sampler_sample_allowed. The result must be the
 * truncated distribution (here top-k 4) conditioned on the allowed tokens,
 * which differs from masking first (that would keep four allowed tokens). */
static void test_allowed_rejection(void **state) {
    (void)state;
    float logits[8];
    make_logits8(logits);
    uint8_t allow[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    allow[k_perm[0]] = allow[k_perm[2]] = 0;
    sw_sampler_params sp = plain_params();
    sp.top_k = 4;
    sw_sampler *s = make(&sp, 8);
    long counts[8] = {0};
    const int draws = 20000;
    sw_token_info info;
    sw_err err = {{0}};
    int rejected = 0;
    for (int r = 0; r < draws; r++) {
        assert_int_equal(sw_sampler_sample(s, logits, &info, &err), SW_OK);
        if (!allow[info.id]) {
            rejected++;
            assert_int_equal(sw_sampler_sample_allowed(s, logits, allow, &info, &err), SW_OK);
            assert_true(allow[info.id]);
        }
        counts[info.id]++;
    }
    int keep[8] = {0};
    keep[k_perm[1]] = keep[k_perm[3]] = 1;
    double p[8];
    ref_probs(logits, keep, 8, 1.0, p);
    for (int i = 0; i < 8; i++)
        if ((p[i] == 0) != (counts[i] == 0)) fail_msg("token %d: p %g, drawn %ld times", i, p[i], counts[i]);
    int df;
    double chi = chi_square(counts, p, 8, draws, &df);
    if (chi > k_chi2_999[df]) fail_msg("chi-square %.2f > %.2f (df %d)", chi, k_chi2_999[df], df);
    /* about (0.30 + 0.16) / 0.80 of the first draws are refused */
    assert_true(rejected > draws / 2 && rejected < draws * 2 / 3);
    sw_sampler_free(s);
    /* nothing allowed survives the truncation: the allowed tokens are truncated
     * instead (greedy over them here) */
    sp = plain_params();
    sp.top_k = 1;
    s = make(&sp, 8);
    for (int r = 0; r < 100; r++) {
        assert_int_equal(sw_sampler_sample_allowed(s, logits, allow, &info, &err), SW_OK);
        assert_int_equal(info.id, k_perm[1]);
    }
    sw_sampler_free(s);
    /* greedy: the argmax if allowed, else the best allowed */
    sp = plain_params();
    sp.temperature = 0.0f;
    s = make(&sp, 8);
    assert_int_equal(sw_sampler_sample_allowed(s, logits, allow, &info, &err), SW_OK);
    assert_int_equal(info.id, k_perm[1]);
    allow[k_perm[0]] = 1;
    assert_int_equal(sw_sampler_sample_allowed(s, logits, allow, &info, &err), SW_OK);
    assert_int_equal(info.id, k_perm[0]);
    sw_sampler_free(s);
}

static void test_invalid_params(void **state) {
    (void)state;
    sw_sampler_params p = plain_params();
    expect_invalid(p, 0, "n_vocab");
    expect_invalid(p, -5, "n_vocab");
    p.top_p = -0.1f;
    expect_invalid(p, 10, "top_p");
    p = plain_params();
    p.top_p = NAN;
    expect_invalid(p, 10, "top_p");
    p = plain_params();
    p.n_top_logprobs = 21;
    expect_invalid(p, 10, "n_top_logprobs");
    p.n_top_logprobs = -1;
    expect_invalid(p, 10, "n_top_logprobs");
    p = plain_params();
    p.min_p = 1.5f;
    expect_invalid(p, 10, "min_p");
    p = plain_params();
    p.repeat_penalty = 0.0f;
    expect_invalid(p, 10, "repeat_penalty");
    p = plain_params();
    p.repeat_last_n = -2;
    expect_invalid(p, 10, "repeat_last_n");
    p = plain_params();
    p.temperature = NAN;
    expect_invalid(p, 10, "temperature");
    p = plain_params();
    p.frequency_penalty = INFINITY;
    expect_invalid(p, 10, "frequency_penalty");
    sw_logit_bias lb = {10, 1.0f};
    p = plain_params();
    p.logit_bias = &lb;
    p.n_logit_bias = 1;
    expect_invalid(p, 10, "token id 10"); /* past the vocabulary */
    lb.id = -1;
    expect_invalid(p, 10, "token id -1");
    lb = (sw_logit_bias){3, 100.5f};
    expect_invalid(p, 10, "logit_bias of token 3");
    lb.bias = NAN;
    expect_invalid(p, 10, "logit_bias of token 3");
    p.n_logit_bias = SW_MAX_LOGIT_BIAS + 1;
    expect_invalid(p, 10, "n_logit_bias");
    p.logit_bias = NULL;
    p.n_logit_bias = 1;
    expect_invalid(p, 10, "n_logit_bias");

    /* bad logits */
    p = plain_params();
    sw_sampler *s = make(&p, 3);
    sw_token_info info;
    sw_err err = {{0}};
    float nanl[3] = {0, NAN, 1};
    assert_int_equal(sw_sampler_sample(s, nanl, &info, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "logit[1]"));
    float masked[3] = {-INFINITY, -INFINITY, -INFINITY};
    assert_int_equal(sw_sampler_sample(s, masked, &info, &err), SW_E_INVALID_ARG);
    /* -inf on some tokens is a mask: they are never drawn */
    float some[3] = {-INFINITY, 0, -INFINITY};
    for (int i = 0; i < 50; i++) assert_int_equal(sample1(s, some), 1);
    sw_sampler_free(s);
    sw_sampler_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_stats_small),
        cmocka_unit_test(test_raw_stats_128k),
        cmocka_unit_test(test_raw_stats_tie_order),
        cmocka_unit_test(test_n_top_clamped_to_vocab),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_full_distribution),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_top_k_then_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_large_vocab_sets),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_presence_frequency),
        cmocka_unit_test(test_penalty_window),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_allowed_rejection),
        cmocka_unit_test(test_invalid_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
