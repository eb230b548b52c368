/* test_sampler_summary.c — sampling from a device summary of the logits
 * (sw_be_logits_summary + sw_sampler_sample_summary) gives exactly what
 * sampling from the whole row gives: two samplers with the same settings and
 * history, one fed full rows and one fed the CPU backend's summary (falling
 * back to the full row when the summary says it cannot decide), must report
 * bit-identical token info step after step (token, logprob, entropy, top
 * logprobs) and stay in step (same RNG draws, same penalty history). Across
 * greedy, top-k, top-p, min-p, their mixes, penalties, bans and negative
 * biases, peaked and flat rows, ties and -inf logits, vocabularies smaller and
 * larger than the summary; and the summary must decide most draws where it
 * can (else this would test only the fallback). Also the "needs the full row"
 * predicate and the summary op's validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sw_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_backend.h"
#include "sampler.h"

static sw_test_rng rng = {0x5A3F};

typedef struct {
    const char *name;
    sw_sampler_params p;
    bool summary_can_decide; /* most draws should come from the summary */
} config;

static sw_sampler_params base(void) {
    sw_sampler_params p;
    sw_sampler_params_default(&p);
    p.seed = 99;
    p.repeat_last_n = 32;
    return p;
}

static sw_logit_bias k_bans[] = {{3, -100.0f}, {7, -2.5f}, {11, -100.0f}, {1, -0.75f}};

static int n_configs(config *c) {
    int n = 0;
    sw_sampler_params p = base();
    p.temperature = 0.0f;
    c[n++] = (config){"greedy", p, true};
    p.n_top_logprobs = 20;
    c[n++] = (config){"greedy top20", p, true};
    p = base();
    c[n++] = (config){"defaults (t 0.8, k 40, p 0.95, min_p 0.05)", p, true};
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    c[n++] = (config){"top_k 40", p, true};
    p = base();
    p.top_k = 0;
    p.min_p = 0.0f;
    p.top_p = 0.9f;
    c[n++] = (config){"top_p 0.9", p, true};
    p.top_p = 1.0f;
    p.min_p = 0.2f;
    c[n++] = (config){"min_p 0.2", p, true};
    p.top_p = 0.7f;
    p.n_top_logprobs = 3;
    c[n++] = (config){"top_p 0.7 min_p 0.2", p, true};
    p = base();
    p.top_k = 6;
    p.repeat_penalty = 1.3f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.logit_bias = k_bans;
    p.n_logit_bias = 4;
    p.n_top_logprobs = 5;
    c[n++] = (config){"top_k 6, penalties, bans", p, true};
    p.temperature = 0.0f;
    c[n++] = (config){"greedy, penalties, bans", p, true};
    /* settings no summary decides: every draw from the full row */
    p = base();
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    c[n++] = (config){"pure temperature", p, false};
    p = base();
    p.repeat_penalty = 0.8f;
    c[n++] = (config){"repeat_penalty < 1", p, false};
    return n;
}

/* A row of logits, as next-token rows look: kind 0 a few confident tokens
 * over noise, 1 a power law (p ~ rank^-2, random ranks), 2 the power law on a
 * coarse grid (many ties), 3 flat noise on the grid (the nucleus spans much of
 * the vocabulary: top-p without top-k cannot be decided). A few -inf. */
static void make_row(float *l, int32_t V, int kind) {
    for (int32_t i = 0; i < V; i++) {
        float x = kind == 0 || kind == 3 ? sw_test_nrand(&rng) * 0.6f
                                         : -2.0f * logf(1.0f + (float)(sw_test_urand(&rng) * V));
        if (kind >= 2) x = roundf(x * 4.0f) / 4.0f;
        l[i] = x;
    }
    if (kind == 0)
        for (int j = 0; j < 6; j++) l[(int32_t)(sw_test_urand(&rng) * V)] += 7.0f - (float)j;
    l[V / 3] = -INFINITY;
    l[V / 5] = l[V / 7];
}

static void run_config(sw_backend *be, const config *c, int32_t V) {
    sw_err err = {{0}};
    sw_sampler *full = NULL, *sum = NULL;
    assert_int_equal(sw_sampler_create(&c->p, V, &full, &err), SW_OK);
    assert_int_equal(sw_sampler_create(&c->p, V, &sum, &err), SW_OK);
    for (int i = 0; i < 12; i++) { /* a prompt: history for the penalties */
        int32_t id = (int32_t)(sw_test_urand(&rng) * V);
        sw_sampler_accept(full, id);
        sw_sampler_accept(sum, id);
    }
    const bool needs_full = sw_sampler_needs_full_logits(sum);
    assert_int_equal(needs_full, !c->summary_can_decide);
    float *l = malloc(sizeof(float) * V);
    sw_buffer *buf = NULL;
    assert_int_equal(sw_be_buf_alloc(be, sizeof(float) * V, SW_BUF_COMPUTE, &buf, &err), SW_OK);
    sw_tensor t = sw_tensor_make(buf, 0, SW_TYPE_F32, V, 1, 1, 1);
    int32_t ids[SW_SAMPLER_SUMMARY_MAX_K];
    float tops[SW_SAMPLER_SUMMARY_MAX_K];
    const int steps = 160;
    int decided = 0;
    for (int step = 0; step < steps; step++) {
        make_row(l, V, step % 4);
        assert_int_equal(sw_be_upload(be, buf, 0, l, sizeof(float) * V, &err), SW_OK);
        sw_token_info a, b;
        if (sw_sampler_sample(full, l, &a, &err) != SW_OK) fail_msg("%s: %s", c->name, err.msg);
        bool from_summary = false;
        if (!needs_full) {
            int32_t k = SW_MIN(sw_sampler_summary_k(sum), V);
            sw_logits_stats st;
            assert_int_equal(sw_be_logits_summary(be, &t, k, &st, ids, tops, &err), SW_OK);
            sw_status s = sw_sampler_sample_summary(sum, &st, ids, tops, k, &b, &err);
            if (s != SW_OK && s != SW_E_RANGE) fail_msg("%s: %s", c->name, err.msg);
            from_summary = s == SW_OK;
        }
        if (!from_summary && sw_sampler_sample(sum, l, &b, &err) != SW_OK)
            fail_msg("%s: %s", c->name, err.msg);
        decided += from_summary;
        if (memcmp(&a, &b, sizeof a) != 0)
            fail_msg("%s, V %d, step %d (%s): full row drew %d (lp %.9g H %.9g), summary path %d "
                     "(lp %.9g H %.9g)",
                     c->name, V, step, from_summary ? "summary" : "fallback", a.id,
                     (double)a.logprob, (double)a.entropy, b.id, (double)b.logprob,
                     (double)b.entropy);
        sw_sampler_accept(full, a.id);
        sw_sampler_accept(sum, b.id);
    }
    print_message("%-44s V %6d: %3d of %d draws decided by the summary\n", c->name, V, decided,
                  steps);
    /* where the summary can decide, it must decide most draws; the flat rows
     * of top-p / min-p without top-k are the ones that fall back */
    if (c->summary_can_decide) assert_true(decided >= steps / 3);
    else assert_int_equal(decided, 0);
    sw_be_buf_free(be, buf);
    free(l);
    sw_sampler_free(full);
    sw_sampler_free(sum);
}

static void test_summary_equals_full(void **state) {
    sw_backend *be = *state;
    config c[16];
    int n = n_configs(c);
    static const int32_t vocabs[] = {50, 3000, 32000};
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++)
        for (int i = 0; i < n; i++) run_config(be, &c[i], vocabs[v]);
}

/* The predicate's other cases, and a summary that says it cannot decide
 * leaves the sampler as it was. */
static void test_needs_full(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_sampler_params p = base();
    sw_sampler *s = NULL;
    sw_logit_bias up = {5, 1.0f};
    p.logit_bias = &up;
    p.n_logit_bias = 1;
    assert_int_equal(sw_sampler_create(&p, 1000, &s, &err), SW_OK);
    assert_true(sw_sampler_needs_full_logits(s)); /* a positive bias can lift anything */
    sw_sampler_free(s);
    p = base();
    p.top_k = SW_SAMPLER_SUMMARY_MAX_K;
    assert_int_equal(sw_sampler_create(&p, 1000, &s, &err), SW_OK);
    assert_true(sw_sampler_needs_full_logits(s)); /* more than a summary carries */
    sw_sampler_free(s);
    p = base();
    p.top_k = 0;
    p.presence_penalty = 0.5f;
    assert_int_equal(sw_sampler_create(&p, 1000, &s, &err), SW_OK);
    sw_sampler_accept(s, 1);
    assert_true(sw_sampler_needs_full_logits(s)); /* the nucleus needs the penalised row */
    sw_sampler_free(s);
    p = base();
    assert_int_equal(sw_sampler_create(&p, 1000, &s, &err), SW_OK);
    assert_false(sw_sampler_needs_full_logits(s));
    assert_int_equal(sw_sampler_summary_k(s), 40);
    /* a NaN row is never decided by a summary (the full row names the error) */
    sw_logits_stats st = {.max = 1.0f, .n_nan = 1, .sum_exp = 1.0, .log_z = 1.0};
    int32_t ids[40] = {0};
    float tl[40] = {0};
    sw_token_info ti;
    assert_int_equal(sw_sampler_sample_summary(s, &st, ids, tl, 40, &ti, &err), SW_E_RANGE);
    sw_sampler_free(s);
}

static int setup(void **state) {
    sw_backend *be = NULL;
    sw_err err = {{0}};
    if (sw_backend_cpu_create(1, &be, &err) != SW_OK) return -1;
    *state = be;
    return 0;
}

static int teardown(void **state) {
    sw_backend_free(*state);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_equals_full),
        cmocka_unit_test(test_needs_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
