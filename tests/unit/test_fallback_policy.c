/* test_fallback_policy.c — routing decisions for every reason, request
 * extension parsing, monitor thresholds and window, circuit breaker state
 * machine (injected clock, concurrent callers), backoff schedule and
 * Retry-After parsing, ledger lines (parsed back) and totals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "config.h"
#include "monitor.h"
#include "resilience.h"
#include "router.h"

/* ---- router ------------------------------------------------------------------------- */

static bool g_cloud_up = true;
static bool cloud_up(void *user) {
    (void)user;
    return g_cloud_up;
}

static sw_router *make_router(sw_router_policy *pol) {
    sw_router *r = NULL;
    sw_err err = {{0}};
    if (sw_router_create(pol, cloud_up, NULL, &r, &err) != SW_OK) fail_msg("%s", err.msg);
    return r;
}

static sw_route_request base_req(void) {
    sw_route_request q;
    memset(&q, 0, sizeof q);
    static const char *const texts[] = {"Summarize the history of Rome in three sentences."};
    q.texts = texts;
    q.n_texts = 1;
    q.prompt_tokens = 100;
    q.max_tokens = 200;
    q.local_n_ctx = 4096;
    return q;
}

static sw_route_decision decide(sw_router *r, const sw_route_request *q) {
    sw_route_decision d;
    sw_err err = {{0}};
    if (sw_router_decide(r, q, &d, &err) != SW_OK) fail_msg("%s", err.msg);
    return d;
}

#define EXPECT(q, ROUTE, REASON)                                                              \
    do {                                                                                      \
        sw_route_decision d_ = decide(r, &(q));                                               \
        if (d_.route != (ROUTE) || d_.reason != (REASON))                                     \
            fail_msg("line %d: got %s/%s (%s), want %s/%s", __LINE__, sw_route_str(d_.route), \
                     sw_route_reason_str(d_.reason), d_.message, sw_route_str(ROUTE),         \
                     sw_route_reason_str(REASON));                                            \
    } while (0)

static void test_router_reasons(void **state) {
    (void)state;
    g_cloud_up = true;
    sw_key_policy keys[] = {{"sk-private-key", true, false, SW_PII_ACTION_INHERIT},
                            {"sk-local-only", false, true, SW_PII_ACTION_INHERIT}};
    sw_router_policy pol;
    sw_router_policy_default(&pol);
    pol.queue_threshold = 8;
    pol.kv_pressure_threshold = 0.9;
    pol.keys = keys;
    pol.n_keys = 2;
    sw_router *r = make_router(&pol);
    static const char *const pii_text[] = {"my card is 4111 1111 1111 1111"};

    sw_route_request q = base_req();
    sw_route_decision d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_LOCAL);
    assert_int_equal(d.reason, SW_REASON_DEFAULT);
    assert_true(d.may_escalate);
    assert_true(d.pii_scanned);

    q = base_req(); q.route = SW_PREF_LOCAL;                 EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_EXPLICIT_LOCAL);
    q = base_req(); q.route = SW_PREF_CLOUD;                 EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_EXPLICIT_CLOUD);
    d = decide(r, &q);
    assert_false(d.local_fallback); /* the client demanded cloud */
    q = base_req(); q.private_request = true;                EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_PRIVATE);
    d = decide(r, &q);
    assert_false(d.may_escalate);
    assert_false(d.pii_scanned);
    q = base_req(); q.api_key = "sk-private-key";            EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_PRIVATE);
    q = base_req(); q.api_key = "sk-local-only";             EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_POLICY_LOCAL);
    q = base_req(); q.api_key = "sk-unknown";                EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_DEFAULT);
    q = base_req(); q.texts = pii_text;                      EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_PII);
    d = decide(r, &q);
    assert_int_equal(d.pii_kinds, SW_PII_CARD);
    assert_false(d.may_escalate);
    assert_null(strstr(d.message, "4111")); /* never echo the data */

    /* overflow */
    q = base_req(); q.prompt_tokens = 4000;                  EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_OVERFLOW);
    d = decide(r, &q);
    assert_false(d.local_fallback);
    q = base_req(); q.prompt_tokens = 4096; q.max_tokens = 0; EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_OVERFLOW);
    q = base_req(); q.prompt_tokens = 3896; q.max_tokens = 200; EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_DEFAULT); /* fits exactly */
    q = base_req(); q.prompt_tokens = 4000; q.private_request = true;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.reason, SW_REASON_PRIVATE);
    assert_int_equal(d.http_status, 400);
    assert_string_equal(d.error_code, "context_length_exceeded");
    assert_non_null(strstr(d.message, "4000"));
    q = base_req(); q.prompt_tokens = 4000; q.texts = pii_text; EXPECT(q, SW_ROUTE_REJECT, SW_REASON_PII);
    q = base_req(); q.prompt_tokens = 4000; q.route = SW_PREF_LOCAL; EXPECT(q, SW_ROUTE_REJECT, SW_REASON_EXPLICIT_LOCAL);
    q = base_req(); q.prompt_tokens = 4000; q.api_key = "sk-local-only"; EXPECT(q, SW_ROUTE_REJECT, SW_REASON_POLICY_LOCAL);

    /* conflicts */
    q = base_req(); q.route = SW_PREF_CLOUD; q.private_request = true;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.http_status, 400);
    assert_string_equal(d.error_code, "route_conflict");
    assert_non_null(strstr(d.message, "private"));
    q = base_req(); q.route = SW_PREF_CLOUD; q.texts = pii_text;       EXPECT(q, SW_ROUTE_REJECT, SW_REASON_PII);
    q = base_req(); q.route = SW_PREF_CLOUD; q.api_key = "sk-local-only"; EXPECT(q, SW_ROUTE_REJECT, SW_REASON_POLICY_LOCAL);

    /* load */
    q = base_req(); q.queue_waiting = 8;                     EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_QUEUE_FULL);
    d = decide(r, &q);
    assert_true(d.local_fallback);
    q = base_req(); q.queue_waiting = 7;                     EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_DEFAULT);
    q = base_req(); q.kv_used_frac = 0.95;                   EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_KV_PRESSURE);
    q = base_req(); q.kv_used_frac = 0.95; q.private_request = true; EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_PRIVATE);

    /* cloud down */
    g_cloud_up = false;
    q = base_req(); q.queue_waiting = 8;                     EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_CLOUD_UNAVAILABLE);
    q = base_req(); q.prompt_tokens = 4000;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.reason, SW_REASON_CLOUD_UNAVAILABLE);
    assert_string_equal(d.error_code, "context_length_exceeded");
    q = base_req(); q.route = SW_PREF_CLOUD;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.http_status, 503);
    assert_string_equal(d.error_code, "cloud_unavailable");
    q = base_req();
    d = decide(r, &q);
    assert_false(d.may_escalate);
    g_cloud_up = true;
    sw_router_free(r);

    /* default route cloud; messages scanned from JSON */
    sw_router_policy_default(&pol);
    pol.default_route = SW_PREF_CLOUD;
    r = make_router(&pol);
    q = base_req();                                          EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_POLICY_CLOUD);
    cJSON *msgs = cJSON_Parse("[{\"role\":\"system\",\"content\":\"hi\"},{\"role\":\"user\",\"content\":"
                              "[{\"type\":\"text\",\"text\":\"write to ann@example.org\"}]}]");
    q = base_req(); q.messages = msgs;                       EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_PII);
    cJSON_Delete(msgs);
    sw_router_free(r);
    /* tools to the cloud: only requests that may call tools; privacy and an
     * explicit local route still win; cloud down -> local */
    sw_router_policy_default(&pol);
    pol.tools_route = SW_PREF_CLOUD;
    r = make_router(&pol);
    q = base_req();                                          EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_DEFAULT);
    q = base_req(); q.tools = true;                          EXPECT(q, SW_ROUTE_CLOUD, SW_REASON_POLICY_CLOUD);
    d = decide(r, &q);
    assert_true(d.local_fallback);
    assert_non_null(strstr(d.message, "tools"));
    q = base_req(); q.tools = true; q.private_request = true; EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_PRIVATE);
    q = base_req(); q.tools = true; q.route = SW_PREF_LOCAL; EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_EXPLICIT_LOCAL);
    g_cloud_up = false;
    q = base_req(); q.tools = true;                          EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_CLOUD_UNAVAILABLE);
    g_cloud_up = true;
    sw_router_free(r);
    /* no cloud at all */
    sw_router_policy_default(&pol);
    sw_err err = {{0}};
    assert_int_equal(sw_router_create(&pol, NULL, NULL, &r, &err), SW_OK);
    q = base_req(); q.queue_waiting = 1000; q.kv_used_frac = 1; EXPECT(q, SW_ROUTE_LOCAL, SW_REASON_DEFAULT);
    sw_router_free(r);
    sw_router_free(NULL);
    assert_string_equal(sw_route_reason_str(SW_REASON_CLOUD_FAILED), "cloud_failed");
    char hv[64];
    sw_route_header_value(SW_ROUTE_CLOUD, SW_REASON_OVERFLOW, hv, sizeof hv);
    assert_string_equal(hv, "cloud; reason=overflow");
}

static void test_router_extension(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_route_request q;
    memset(&q, 0, sizeof q);
    cJSON *b = cJSON_Parse("{\"spillway\":{\"route\":\"cloud\",\"private\":true}}");
    assert_int_equal(sw_route_parse_extension(b, &q, &err), SW_OK);
    assert_int_equal(q.route, SW_PREF_CLOUD);
    assert_true(q.private_request);
    cJSON_Delete(b);
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"spillway\":{\"route\":\"moon\"}}", "spillway.route"},
        {"{\"spillway\":{\"route\":1}}", "spillway.route"},
        {"{\"spillway\":{\"private\":\"yes\"}}", "spillway.private"},
        {"{\"spillway\":{\"privat\":true}}", "spillway.privat"},
        {"{\"spillway\":[]}", "spillway"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = cJSON_Parse(bad[i].body);
        assert_int_equal(sw_route_parse_extension(b, &q, &err), SW_E_INVALID_ARG);
        if (strncmp(err.msg, bad[i].field, strlen(bad[i].field))) fail_msg("'%s' for %s", err.msg, bad[i].body);
        cJSON_Delete(b);
    }
    /* header set private; the body cannot undo it */
    memset(&q, 0, sizeof q);
    q.private_request = sw_route_header_private(" True");
    b = cJSON_Parse("{\"spillway\":{\"private\":false}}");
    assert_int_equal(sw_route_parse_extension(b, &q, &err), SW_OK);
    assert_true(q.private_request);
    cJSON_Delete(b);
    assert_true(sw_route_header_private("1"));
    assert_false(sw_route_header_private("0"));
    assert_false(sw_route_header_private("10"));
    assert_false(sw_route_header_private(NULL));
}

/* ---- monitor ------------------------------------------------------------------------- */

/* The fixed thresholds the tests below judge by (no longer the defaults:
 * the default monitor calibrates a share, test_monitor_self_calibrating). */
static void fixed_thresholds(sw_monitor_params *p) {
    sw_monitor_params_default(p);
    p->cloud_share = NAN;
    p->min_mean_logprob = -2.0f;
    p->max_low_share = 0.4f;
    p->max_mean_entropy = 3.0f;
}

static void test_monitor_window(void **state) {
    (void)state;
    sw_monitor_params p;
    fixed_thresholds(&p);
    p.probe_tokens = 4;
    sw_monitor *m = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    /* confident: logprob ~ -0.1 */
    assert_int_equal(sw_monitor_feed(m, -0.1f, 0.5f, "Hel", 3), SW_MONITOR_PROBING);
    assert_int_equal(sw_monitor_feed(m, -0.2f, 0.5f, "lo", 2), SW_MONITOR_PROBING);
    assert_int_equal(sw_monitor_feed(m, -0.1f, 0.5f, ",", 1), SW_MONITOR_PROBING);
    size_t n;
    assert_string_equal(sw_monitor_held(m, &n), "Hello,");
    assert_int_equal(sw_monitor_feed(m, -0.2f, 0.5f, " w", 2), SW_MONITOR_PASS);
    assert_string_equal(sw_monitor_held(m, &n), "Hello, w"); /* release this */
    assert_int_equal(sw_monitor_feed(m, -9.f, 9.f, "x", 1), SW_MONITOR_PASS); /* decided: stays */
    sw_monitor_stats s;
    sw_monitor_stats_get(m, &s);
    assert_int_equal(s.n_tokens, 4);
    assert_true(fabs(s.mean_logprob + 0.15) < 1e-6);
    char *js = sw_monitor_stats_json(&s);
    assert_non_null(strstr(js, "\"verdict\":\"pass\""));
    free(js);
    sw_monitor_free(m);

    /* each check alone */
    static const struct {
        float lp, h;
        const char *check;
    } cases[] = {
        {-2.5f, 0.5f, "mean_logprob"},
        {-0.2f, 3.5f, "mean_entropy"},
        {-0.2f, 0.5f, ""},
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
        sw_monitor_verdict v = SW_MONITOR_PROBING;
        for (int t = 0; t < 4; t++) v = sw_monitor_feed(m, cases[i].lp, cases[i].h, "", 0);
        sw_monitor_stats_get(m, &s);
        assert_string_equal(s.failed_check, cases[i].check);
        assert_int_equal(v, cases[i].check[0] ? SW_MONITOR_ESCALATE : SW_MONITOR_PASS);
        sw_monitor_free(m);
    }
    /* low share: 2 of 4 tokens below p=0.1, mean logprob still above -2 */
    p.max_low_share = 0.4f;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    sw_monitor_feed(m, -2.4f, 0, "", 0);
    sw_monitor_feed(m, -0.01f, 0, "", 0);
    sw_monitor_feed(m, -2.4f, 0, "", 0);
    assert_int_equal(sw_monitor_feed(m, -0.01f, 0, "", 0), SW_MONITOR_ESCALATE);
    sw_monitor_stats_get(m, &s);
    assert_string_equal(s.failed_check, "low_share");
    assert_true(fabs(s.low_share - 0.5) < 1e-9);
    sw_monitor_free(m);
    /* disabled check: NaN */
    p.max_low_share = NAN;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    for (int t = 0; t < 2; t++) {
        sw_monitor_feed(m, -2.4f, 0, "", 0);
        sw_monitor_feed(m, -0.01f, 0, "", 0);
    }
    assert_int_equal(sw_monitor_verdict_get(m), SW_MONITOR_PASS);
    sw_monitor_free(m);
    /* short answer ends inside the window: below min_tokens passes; above is judged */
    p.max_low_share = 0.4f;
    p.probe_tokens = 16;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    sw_monitor_feed(m, -5.f, 0, "No", 2);
    assert_int_equal(sw_monitor_finish(m), SW_MONITOR_PASS);
    sw_monitor_free(m);
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    for (int t = 0; t < 5; t++) sw_monitor_feed(m, -5.f, 0, "x", 1);
    assert_int_equal(sw_monitor_finish(m), SW_MONITOR_ESCALATE);
    sw_monitor_free(m);
    /* -inf logprob does not poison the mean */
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WHOLE, &m, &err), SW_OK);
    for (int t = 0; t < 40; t++) sw_monitor_feed(m, t == 3 ? -INFINITY : -0.1f, 0.2f, "", 0);
    assert_int_equal(sw_monitor_verdict_get(m), SW_MONITOR_PROBING); /* whole mode: no early verdict */
    assert_int_equal(sw_monitor_finish(m), SW_MONITOR_ESCALATE);     /* -100/40 = -2.6 < -2 */
    sw_monitor_free(m);
    /* disabled monitor */
    p.enabled = false;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    assert_int_equal(sw_monitor_feed(m, -50.f, 9.f, "x", 1), SW_MONITOR_PASS);
    sw_monitor_free(m);
    p.enabled = true;
    p.low_prob = 0;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "low_prob"));
}

static void test_monitor_judge(void **state) {
    (void)state;
    float lp[8], h[8];
    for (int i = 0; i < 8; i++) {
        lp[i] = -0.3f;
        h[i] = 1.0f;
    }
    sw_monitor_params p;
    fixed_thresholds(&p);
    sw_monitor_stats s;
    assert_int_equal(sw_monitor_judge(&p, lp, h, 8, &s), SW_MONITOR_PASS);
    for (int i = 0; i < 8; i++) h[i] = 4.0f;
    assert_int_equal(sw_monitor_judge(&p, lp, h, 8, &s), SW_MONITOR_ESCALATE);
    assert_string_equal(s.failed_check, "mean_entropy");
    assert_int_equal(sw_monitor_judge(&p, lp, NULL, 8, &s), SW_MONITOR_PASS);
    /* the defaults have no fixed threshold: the judge alone never escalates */
    for (int i = 0; i < 8; i++) lp[i] = -9.0f;
    assert_int_equal(sw_monitor_judge(NULL, lp, h, 8, &s), SW_MONITOR_PASS);
}

/* The default monitor: the probe window's score goes to a share controller
 * warm-started from the prior, which escalates about cloud_share of the
 * answers, whatever the model's confidence scale: a confident model (mean
 * logprob around -0.2) and an unsure one (around -2.5, where no answer is
 * near the prior) both escalate near the target; the ones escalated are the
 * least confident. */
static uint64_t g_mrng = 7;
static double mrand(void) {
    g_mrng = g_mrng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((g_mrng >> 11) + 0.5) / 9007199254740992.0;
}

static void test_monitor_self_calibrating(void **state) {
    (void)state;
    sw_monitor_params p;
    sw_monitor_params_default(&p);
    assert_true(fabsf(p.cloud_share - SW_MONITOR_DEFAULT_SHARE) < 1e-6f);
    assert_true(isnan(p.min_mean_logprob) && isnan(p.max_low_share) && isnan(p.max_mean_entropy));
    p.probe_tokens = 8;
    sw_err err = {{0}};
    const double centers[] = {-0.2, -2.5};
    const float shares[] = {0.1f, 0.3f};
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 2; k++) {
            p.cloud_share = shares[k];
            int32_t n_prior = 0;
            const double *prior = sw_monitor_share_prior(&n_prior);
            assert_true(n_prior > 0 && prior[0] > 0 && prior[n_prior - 1] < 1);
            sw_share_ctl *budget = NULL;
            assert_int_equal(sw_share_ctl_create(p.cloud_share, 0, prior, n_prior, &budget, &err),
                             SW_OK);
            int escalated = 0, n = 64;
            double lp_esc = 0, lp_pass = 0;
            for (int r = 0; r < n; r++) {
                sw_monitor *m = NULL;
                assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
                sw_monitor_set_budget(m, budget);
                double mean = centers[c] * (0.5 + mrand()); /* this answer's confidence */
                sw_monitor_verdict v = SW_MONITOR_PROBING;
                for (int t = 0; t < 8; t++) v = sw_monitor_feed(m, (float)mean, 1.0f, "x", 1);
                assert_int_not_equal(v, SW_MONITOR_PROBING);
                sw_monitor_stats s;
                sw_monitor_stats_get(m, &s);
                assert_true(fabs(s.score - (1 - exp(s.mean_logprob))) < 1e-9);
                if (v == SW_MONITOR_ESCALATE) {
                    assert_string_equal(s.failed_check, "cloud_share");
                    escalated++;
                    lp_esc += mean;
                } else {
                    lp_pass += mean;
                }
                sw_monitor_free(m);
            }
            double got = (double)escalated / n;
            printf("mean logprob around %.1f, cloud_share %.1f: escalated %.3f of %d answers\n",
                   centers[c], shares[k], got, n);
            assert_true(escalated > 0 && fabs(got - shares[k]) <= 0.07);
            assert_true(lp_esc / escalated < lp_pass / (n - escalated)); /* the least confident */
            sw_share_ctl_free(budget);
        }
    /* fewer than min_tokens: passes unscored (the budget does not see it) */
    sw_share_ctl *budget = NULL;
    assert_int_equal(sw_share_ctl_create(1.0, 0, NULL, 0, &budget, &err), SW_OK);
    sw_monitor *m = NULL;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    sw_monitor_set_budget(m, budget);
    sw_monitor_feed(m, -9.f, 1.f, "No", 2);
    assert_int_equal(sw_monitor_finish(m), SW_MONITOR_PASS);
    sw_monitor_stats s;
    sw_monitor_stats_get(m, &s);
    assert_true(isnan(s.score));
    uint64_t decided;
    sw_share_ctl_counts(budget, &decided, NULL);
    assert_true(decided == 0);
    sw_monitor_free(m);
    /* a share of 1 escalates every scored answer; the JSON carries the score */
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    sw_monitor_set_budget(m, budget);
    for (int t = 0; t < 8; t++) sw_monitor_feed(m, -0.01f, 0.1f, "x", 1);
    assert_int_equal(sw_monitor_verdict_get(m), SW_MONITOR_ESCALATE);
    sw_monitor_stats_get(m, &s);
    char *js = sw_monitor_stats_json(&s);
    assert_non_null(strstr(js, "\"score\":0.01"));
    free(js);
    sw_monitor_free(m);
    /* without a budget a self-calibrating monitor has nothing to compare with */
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_OK);
    for (int t = 0; t < 8; t++) sw_monitor_feed(m, -9.f, 9.f, "x", 1);
    assert_int_equal(sw_monitor_verdict_get(m), SW_MONITOR_PASS);
    sw_monitor_free(m);
    sw_share_ctl_free(budget);
    p.cloud_share = 1.5f;
    assert_int_equal(sw_monitor_create(&p, SW_MONITOR_WINDOW, &m, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "cloud_share"));
}

/* The policy file: a fixed threshold switches the self-calibrating share off;
 * both at once is an error naming the field. */
static void test_monitor_config(void **state) {
    (void)state;
    static const struct {
        const char *json;
        float share, min_mean_logprob; /* NaN: off */
        const char *error;             /* the field named, or NULL */
    } cases[] = {
        {"{}", SW_MONITOR_DEFAULT_SHARE, NAN, NULL},
        {"{\"monitor\": {\"probe_tokens\": 8}}", SW_MONITOR_DEFAULT_SHARE, NAN, NULL},
        {"{\"monitor\": {\"min_mean_logprob\": -2}}", NAN, -2.0f, NULL},
        {"{\"monitor\": {\"min_mean_logprob\": null}}", SW_MONITOR_DEFAULT_SHARE, NAN, NULL},
        {"{\"monitor\": {\"cloud_share\": 0.3}}", 0.3f, NAN, NULL},
        {"{\"monitor\": {\"cloud_share\": null, \"max_low_share\": null}}", NAN, NAN, NULL},
        {"{\"monitor\": {\"cloud_share\": 0.2, \"max_mean_entropy\": 3}}", 0, 0,
         "monitor.cloud_share"},
        {"{\"monitor\": {\"cloud_share\": 1.5}}", 0, 0, "monitor.cloud_share"},
        {"{\"monitor\": {\"cloud_share\": \"10%\"}}", 0, 0, "monitor.cloud_share"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sw_route_config c;
        sw_route_config_init(&c);
        sw_err err = {{0}};
        sw_status st = sw_route_config_parse(&c, cases[i].json, strlen(cases[i].json), "rc.json",
                                             &err);
        if (cases[i].error) {
            assert_int_equal(st, SW_E_INVALID_ARG);
            if (!strstr(err.msg, cases[i].error)) fail_msg("case %zu: %s", i, err.msg);
        } else {
            assert_int_equal(st, SW_OK);
            float got = c.monitor.cloud_share, want = cases[i].share;
            if (isnan(want) ? !isnan(got) : fabsf(got - want) > 1e-6f)
                fail_msg("case %zu: cloud_share %g, want %g", i, got, want);
            got = c.monitor.min_mean_logprob, want = cases[i].min_mean_logprob;
            if (isnan(want) ? !isnan(got) : fabsf(got - want) > 1e-6f)
                fail_msg("case %zu: min_mean_logprob %g, want %g", i, got, want);
        }
        sw_route_config_free(&c);
    }
}

/* ---- breaker, backoff ---------------------------------------------------------------- */

static double fake_now;
static double fake_clock(void *u) {
    (void)u;
    return fake_now;
}

static void test_breaker_states(void **state) {
    (void)state;
    sw_breaker *b = NULL;
    sw_err err = {{0}};
    fake_now = 100;
    assert_int_equal(sw_breaker_create(3, 10, fake_clock, NULL, &b, &err), SW_OK);
    sw_breaker_info bi;
    for (int i = 0; i < 2; i++) {
        assert_true(sw_breaker_allow(b));
        sw_breaker_failure(b);
    }
    sw_breaker_success(b); /* a success resets the consecutive count */
    for (int i = 0; i < 2; i++) {
        assert_true(sw_breaker_allow(b));
        sw_breaker_failure(b);
    }
    sw_breaker_info_get(b, &bi);
    assert_int_equal(bi.state, SW_BREAKER_CLOSED);
    assert_true(sw_breaker_allow(b));
    sw_breaker_failure(b);
    sw_breaker_info_get(b, &bi);
    assert_int_equal(bi.state, SW_BREAKER_OPEN);
    assert_int_equal(bi.opened_count, 1);
    assert_false(sw_breaker_allow(b));
    fake_now += 9.9;
    assert_false(sw_breaker_would_allow(b));
    assert_false(sw_breaker_allow(b));
    fake_now += 0.2;
    assert_true(sw_breaker_would_allow(b));
    sw_breaker_info_get(b, &bi);
    assert_int_equal(bi.state, SW_BREAKER_OPEN); /* peeking changed nothing */
    assert_true(sw_breaker_allow(b));            /* the probe */
    sw_breaker_info_get(b, &bi);
    assert_int_equal(bi.state, SW_BREAKER_HALF_OPEN);
    assert_false(sw_breaker_allow(b));           /* only one probe */
    sw_breaker_failure(b);                       /* probe failed: open again */
    sw_breaker_info_get(b, &bi);
    assert_int_equal(bi.state, SW_BREAKER_OPEN);
    assert_true(bi.open_remaining_s > 9.9);
    fake_now += 10.1;
    assert_true(sw_breaker_allow(b));
    sw_breaker_success(b);
    sw_breaker_info_get(b, &bi);
    assert_int_equal(bi.state, SW_BREAKER_CLOSED);
    assert_int_equal(bi.consecutive_failures, 0);
    /* a probe that never reports is presumed lost after a cool-down */
    for (int i = 0; i < 3; i++) {
        sw_breaker_allow(b);
        sw_breaker_failure(b);
    }
    fake_now += 10.1;
    assert_true(sw_breaker_allow(b));
    assert_false(sw_breaker_allow(b));
    fake_now += 10.1;
    assert_true(sw_breaker_allow(b));
    sw_breaker_free(b);
    assert_string_equal(sw_breaker_state_str(SW_BREAKER_HALF_OPEN), "half_open");
}

typedef struct race {
    sw_breaker *b;
    int granted;
} race;

static void *race_probe(void *arg) {
    race *r = arg;
    if (sw_breaker_allow(r->b)) __atomic_add_fetch(&r->granted, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_breaker_threads(void **state) {
    (void)state;
    sw_breaker *b = NULL;
    sw_err err = {{0}};
    fake_now = 0;
    assert_int_equal(sw_breaker_create(1, 5, fake_clock, NULL, &b, &err), SW_OK);
    sw_breaker_allow(b);
    sw_breaker_failure(b);
    fake_now = 6;
    race r = {b, 0};
    pthread_t t[16];
    for (int i = 0; i < 16; i++) pthread_create(&t[i], NULL, race_probe, &r);
    for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);
    assert_int_equal(r.granted, 1); /* exactly one half-open probe among racing threads */
    sw_breaker_free(b);
}

static void test_backoff_schedule(void **state) {
    (void)state;
    sw_retry_policy p = {5, 0.5, 4.0, 30.0};
    double d;
    /* equal jitter: [c/2, c) with c = min(4, 0.5 * 2^(n-1)) */
    assert_true(sw_retry_next(&p, 1, 0, -1, 0.0, &d));
    assert_true(fabs(d - 0.25) < 1e-9);
    assert_true(sw_retry_next(&p, 1, 0, -1, 0.999999, &d));
    assert_true(d < 0.5 && d > 0.49);
    assert_true(sw_retry_next(&p, 2, 0, -1, 0.5, &d));
    assert_true(fabs(d - 0.75) < 1e-9);
    assert_true(sw_retry_next(&p, 4, 0, -1, 0.0, &d));
    assert_true(fabs(d - 2.0) < 1e-9); /* capped at 4, half of it */
    /* Retry-After wins, even above the cap */
    assert_true(sw_retry_next(&p, 1, 0, 7.0, 0.3, &d));
    assert_true(fabs(d - 7.0) < 1e-9);
    /* attempts exhausted, budget exceeded */
    assert_false(sw_retry_next(&p, 5, 0, -1, 0.0, &d));
    assert_false(sw_retry_next(&p, 1, 28, 5.0, 0.0, &d));
    assert_true(sw_retry_next(&p, 1, 20, 5.0, 0.0, &d));
    assert_true(sw_retry_status_retryable(529));
    assert_true(sw_retry_status_retryable(429));
    assert_false(sw_retry_status_retryable(400));
    assert_false(sw_retry_status_retryable(401));
}

static void test_retry_after_parse(void **state) {
    (void)state;
    time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_true(fabs(sw_retry_after_parse("120", now) - 120) < 1e-9);
    assert_true(fabs(sw_retry_after_parse(" 1.5 ", now) - 1.5) < 1e-9);
    assert_true(fabs(sw_retry_after_parse("Wed, 21 Oct 2015 07:28:30 GMT", now) - 30) < 1e-9);
    assert_true(fabs(sw_retry_after_parse("Wednesday, 21-Oct-15 07:29:00 GMT", now) - 60) < 1e-9);
    assert_true(fabs(sw_retry_after_parse("Wed Oct 21 07:28:10 2015", now) - 10) < 1e-9);
    assert_true(sw_retry_after_parse("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0); /* past */
    assert_true(sw_retry_after_parse("soon", now) < 0);
    assert_true(sw_retry_after_parse("12abc", now) < 0);
    assert_true(sw_retry_after_parse("-5", now) < 0);
    assert_true(sw_retry_after_parse("", now) < 0);
    assert_true(sw_retry_after_parse(NULL, now) < 0);
}

/* ---- ledger ------------------------------------------------------------------------- */

static void tmp_path(char *buf, size_t cap, const char *name) {
    const char *dir = getenv("SW_TMP_DIR");
    snprintf(buf, cap, "%s/%s.%d", dir && dir[0] ? dir : "/tmp", name, (int)getpid());
}

typedef struct ledger_thread {
    sw_ledger *l;
    int id;
} ledger_thread;

static void *ledger_writer(void *arg) {
    ledger_thread *t = arg;
    for (int i = 0; i < 50; i++) {
        char rid[32];
        snprintf(rid, sizeof rid, "t%d-%d", t->id, i);
        sw_ledger_entry e = {0, rid, (i % 2) ? SW_ROUTE_CLOUD : SW_ROUTE_LOCAL,
                             (i % 2) ? SW_REASON_QUEUE_FULL : SW_REASON_DEFAULT,
                             (i % 2) ? "claude-sonnet-4-5" : "local-llama", 1000, 100, 12.5, false, 0, 0, false, 0};
        sw_ledger_record(t->l, &e, NULL, NULL);
    }
    return NULL;
}

static void test_ledger(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "ledger.jsonl");
    unlink(path);
    sw_price prices[] = {{"claude-sonnet-4*", 3.0, 15.0}, {"claude-sonnet-4-5", 3.0, 15.0},
                         {"claude*", 100, 100}, {"gpt-4o", 2.5, 10.0}};
    sw_ledger_params lp = {path, prices, 4, "claude-sonnet-4-5", NULL};
    sw_ledger *l = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_ledger_create(&lp, &l, &err), SW_OK);
    sw_price pr;
    assert_true(sw_ledger_price(l, "claude-sonnet-4-0", &pr)); /* longest prefix */
    assert_true(pr.input_per_mtok == 3.0);
    assert_true(sw_ledger_price(l, "claude-haiku", &pr));
    assert_true(pr.input_per_mtok == 100);
    assert_false(sw_ledger_price(l, "mistral", &pr));

    double cost;
    sw_ledger_entry e = {1700000000.25, "req-1", SW_ROUTE_CLOUD, SW_REASON_OVERFLOW, "gpt-4o",
                         1000000, 200000, 1534.24, false, 0, 0, false, 0};
    assert_int_equal(sw_ledger_record(l, &e, &cost, &err), SW_OK);
    assert_true(fabs(cost - (2.5 + 2.0)) < 1e-9);
    sw_ledger_entry e2 = {0, "req-2", SW_ROUTE_LOCAL, SW_REASON_PII, "local-llama", 2000, 1000, 80, false, 0, 0, false, 0};
    assert_int_equal(sw_ledger_record(l, &e2, &cost, &err), SW_OK);
    assert_true(cost == 0);
    sw_ledger_entry e3 = {0, "req-\"3\"", SW_ROUTE_REJECT, SW_REASON_PRIVATE, "", 5000, 0, 1, true, 0, 0, false, 0};
    assert_int_equal(sw_ledger_record(l, &e3, NULL, &err), SW_OK);
    /* concurrent writers: lines stay whole */
    pthread_t th[4];
    ledger_thread lt[4];
    for (int i = 0; i < 4; i++) {
        lt[i] = (ledger_thread){l, i};
        pthread_create(&th[i], NULL, ledger_writer, &lt[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);

    /* parse every line back and recompute the sums */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int n = 0;
    double sum_cost = 0, sum_sav = 0;
    int64_t cloud_in = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) fail_msg("line %d is not JSON: %s", n + 1, line);
        static const char *const keys[] = {"time", "request_id", "route", "reason", "model", "tokens_in",
                                           "tokens_out", "latency_ms", "cost_usd", "savings_usd", "status"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (!cJSON_GetObjectItem(j, keys[k])) fail_msg("line %d lacks %s", n + 1, keys[k]);
        sum_cost += cJSON_GetObjectItem(j, "cost_usd")->valuedouble;
        sum_sav += cJSON_GetObjectItem(j, "savings_usd")->valuedouble;
        if (!strcmp(cJSON_GetObjectItem(j, "route")->valuestring, "cloud"))
            cloud_in += (int64_t)cJSON_GetObjectItem(j, "tokens_in")->valuedouble;
        if (n == 0) {
            assert_string_equal(cJSON_GetObjectItem(j, "time")->valuestring, "2023-11-14T22:13:20.250Z");
            assert_string_equal(cJSON_GetObjectItem(j, "reason")->valuestring, "overflow");
            assert_true(cJSON_GetObjectItem(j, "latency_ms")->valuedouble == 1534.2);
        }
        if (n == 2) {
            assert_string_equal(cJSON_GetObjectItem(j, "request_id")->valuestring, "req-\"3\"");
            assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "error");
        }
        cJSON_Delete(j);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 3 + 200);
    sw_ledger_totals t;
    sw_ledger_totals_get(l, &t);
    assert_int_equal(t.requests[SW_ROUTE_CLOUD], 1 + 100);
    assert_int_equal(t.requests[SW_ROUTE_LOCAL], 1 + 100);
    assert_int_equal(t.requests[SW_ROUTE_REJECT], 1);
    assert_int_equal(t.by_reason[SW_ROUTE_LOCAL][SW_REASON_PII], 1);
    assert_int_equal(t.errors, 1);
    assert_int_equal(t.tokens_in[SW_ROUTE_CLOUD], cloud_in);
    assert_true(fabs(t.cost_usd - sum_cost) < 1e-9);
    assert_true(fabs(t.savings_usd - sum_sav) < 1e-9);
    /* savings: local tokens at the reference model's price */
    double want_sav = (2000 * 3.0 + 1000 * 15.0) / 1e6 + 100 * (1000 * 3.0 + 100 * 15.0) / 1e6;
    assert_true(fabs(t.savings_usd - want_sav) < 1e-9);

    char *js = sw_ledger_usage_json(l);
    cJSON *u = cJSON_Parse(js);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "requests"), "total")->valueint, 203);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "reasons"), "cloud"),
                                         "queue_full")->valueint, 100);
    assert_true(fabs(cJSON_GetObjectItem(u, "cost_usd")->valuedouble - sum_cost) < 1e-9);
    cJSON_Delete(u);
    free(js);
    char *prom = sw_ledger_prometheus(l);
    assert_non_null(strstr(prom, "spillway_route_requests_total{route=\"cloud\",reason=\"overflow\"} 1\n"));
    assert_non_null(strstr(prom, "spillway_route_requests_total{route=\"local\",reason=\"default\"} 100\n"));
    assert_non_null(strstr(prom, "# TYPE spillway_cloud_cost_usd_total counter"));
    free(prom);
    sw_ledger_free(l);
    unlink(path);

    /* errors name the path / model */
    lp.path = "/nonexistent-dir/x/ledger.jsonl";
    assert_int_equal(sw_ledger_create(&lp, &l, &err), SW_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x/ledger.jsonl"));
    sw_price badp[] = {{"m1", -1, 0}};
    sw_ledger_params lp2 = {NULL, badp, 1, NULL, NULL};
    assert_int_equal(sw_ledger_create(&lp2, &l, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "m1"));
    /* totals-only ledger */
    lp2.prices = NULL;
    lp2.n_prices = 0;
    assert_int_equal(sw_ledger_create(&lp2, &l, &err), SW_OK);
    assert_int_equal(sw_ledger_record(l, &e2, &cost, &err), SW_OK);
    sw_ledger_free(l);
    sw_ledger_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_reasons),   cmocka_unit_test(test_router_extension),
        cmocka_unit_test(test_monitor_window),   cmocka_unit_test(test_monitor_judge),
        cmocka_unit_test(test_monitor_self_calibrating),
        cmocka_unit_test(test_monitor_config),
        cmocka_unit_test(test_breaker_states),   cmocka_unit_test(test_breaker_threads),
        cmocka_unit_test(test_backoff_schedule), cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_ledger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
