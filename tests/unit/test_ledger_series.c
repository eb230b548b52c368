/* test_ledger_series.c — the ledger beyond its totals: savings priced at the
 * policy's reference_price when there is no (priced) cloud model, redaction
 * counts in lines / totals / Prometheus text, and the minute / hour / day
 * time series (bucket edges, sparse points, windows, a ring that wraps and
 * drops what is older than it reaches), parsed back with cJSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"

static sw_ledger *make(const char *path, const char *ref_model, const sw_price *ref_price) {
    static const sw_price prices[] = {{"claude-sonnet-4*", 3.0, 15.0}};
    sw_ledger_params lp = {.path = path, .prices = prices, .n_prices = 1,
                           .reference_model = ref_model, .reference_price = ref_price};
    sw_ledger *l = NULL;
    sw_err err = {{0}};
    if (sw_ledger_create(&lp, &l, &err) != SW_OK) fail_msg("%s", err.msg);
    return l;
}

static void add(sw_ledger *l, double t, sw_route route, sw_route_reason reason, int64_t in,
                int64_t out, int32_t redacted) {
    sw_ledger_entry e = {.unix_time = t, .request_id = "r", .route = route, .reason = reason,
                         .model = route == SW_ROUTE_CLOUD ? "claude-sonnet-4-5" : "local",
                         .tokens_in = in, .tokens_out = out, .latency_ms = 10,
                         .error = route == SW_ROUTE_REJECT, .redacted_spans = redacted,
                         .redacted_kinds = redacted ? SW_PII_EMAIL | SW_PII_CARD : 0};
    sw_err err = {{0}};
    if (sw_ledger_record(l, &e, NULL, &err) != SW_OK) fail_msg("%s", err.msg);
}

static cJSON *usage(sw_ledger *l, sw_ledger_bucket b, int n, double now) {
    char *s = b == SW_BUCKET_COUNT ? sw_ledger_usage_json(l) : sw_ledger_usage_series_json(l, b, n, now);
    assert_non_null(s);
    cJSON *o = cJSON_Parse(s);
    if (!o) fail_msg("not JSON: %s", s);
    free(s);
    return o;
}

static double num(const cJSON *o, const char *path) {
    /* "a.b.c" */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        if (!cur) fail_msg("no %s", path);
    }
    if (!cJSON_IsNumber(cur)) fail_msg("%s is not a number", path);
    return cur->valuedouble;
}

/* Savings without a cloud: the policy's reference price. */
static void test_reference_price(void **state) {
    (void)state;
    sw_price ref = {"gpt-4o", 2.5, 10.0};
    sw_ledger *l = make(NULL, NULL, &ref);
    for (int i = 0; i < 5; i++) add(l, 0, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 1000000, 100000, 0);
    cJSON *u = usage(l, SW_BUCKET_COUNT, 0, 0);
    assert_int_equal((int)num(u, "requests.total"), 5);
    assert_int_equal((int)num(u, "requests.local"), 5);
    assert_true(fabs(num(u, "savings_usd") - 5 * (2.5 + 1.0)) < 1e-9);
    assert_string_equal(cJSON_GetObjectItem(u, "reference_model")->valuestring, "gpt-4o");
    assert_true(num(u, "reference_price.input") == 2.5 && num(u, "reference_price.output") == 10);
    cJSON_Delete(u);
    sw_ledger_free(l);

    /* a priced cloud model wins over the reference price ... */
    l = make(NULL, "claude-sonnet-4-5", &ref);
    add(l, 0, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 1000000, 0, 0);
    u = usage(l, SW_BUCKET_COUNT, 0, 0);
    assert_true(fabs(num(u, "savings_usd") - 3.0) < 1e-9);
    assert_string_equal(cJSON_GetObjectItem(u, "reference_model")->valuestring, "claude-sonnet-4-5");
    cJSON_Delete(u);
    sw_ledger_free(l);
    /* ... an unpriced one does not */
    l = make(NULL, "mistral-large", &ref);
    add(l, 0, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 1000000, 0, 0);
    u = usage(l, SW_BUCKET_COUNT, 0, 0);
    assert_true(fabs(num(u, "savings_usd") - 2.5) < 1e-9);
    cJSON_Delete(u);
    sw_ledger_free(l);
    /* neither: no savings, null reference */
    l = make(NULL, NULL, NULL);
    add(l, 0, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 1000000, 0, 0);
    u = usage(l, SW_BUCKET_COUNT, 0, 0);
    assert_true(num(u, "savings_usd") == 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(u, "reference_model")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(u, "reference_price")));
    cJSON_Delete(u);
    sw_ledger_free(l);
    /* a bad reference price is refused */
    sw_price bad = {"x", -1, 1};
    sw_ledger_params lp = {.reference_price = &bad};
    sw_err err = {{0}};
    assert_int_equal(sw_ledger_create(&lp, &l, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "reference_price"));
}

static void test_redaction_counts(void **state) {
    (void)state;
    char path[256];
    const char *dir = getenv("SW_TMP_DIR");
    snprintf(path, sizeof path, "%s/series-ledger.%d.jsonl", dir && dir[0] ? dir : "/tmp", (int)getpid());
    unlink(path);
    sw_ledger *l = make(path, "claude-sonnet-4-5", NULL);
    add(l, 0, SW_ROUTE_CLOUD, SW_REASON_OVERFLOW, 100, 10, 3);
    add(l, 0, SW_ROUTE_CLOUD, SW_REASON_OVERFLOW, 100, 10, 0);
    add(l, 0, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 100, 10, 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        const cJSON *r = cJSON_GetObjectItem(o, "redacted"), *k = cJSON_GetObjectItem(o, "redacted_kinds");
        assert_true(cJSON_IsNumber(r) && cJSON_IsString(k));
        assert_int_equal(r->valueint, n == 0 ? 3 : 0);
        assert_string_equal(k->valuestring, n == 0 ? "email,card" : "");
        cJSON_Delete(o);
        n++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(n, 3);
    sw_ledger_totals t;
    sw_ledger_totals_get(l, &t);
    assert_int_equal(t.redacted_requests, 1);
    assert_int_equal(t.redacted_spans, 3);
    cJSON *u = usage(l, SW_BUCKET_COUNT, 0, 0);
    assert_int_equal((int)num(u, "redacted.requests"), 1);
    assert_int_equal((int)num(u, "redacted.spans"), 3);
    cJSON_Delete(u);
    char *prom = sw_ledger_prometheus(l);
    assert_non_null(strstr(prom, "\nspillway_pii_redacted_requests_total 1\n"));
    assert_non_null(strstr(prom, "\nspillway_pii_redacted_spans_total 3\n"));
    free(prom);
    sw_ledger_free(l);
}

static const cJSON *points(const cJSON *u) {
    const cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(u, "series"), "points");
    assert_true(cJSON_IsArray(p));
    return p;
}

static void test_series(void **state) {
    (void)state;
    sw_price ref = {"ref", 1.0, 2.0};
    sw_ledger *l = make(NULL, NULL, &ref);
    const double T = 1700000000; /* 2023-11-14T22:13:20Z: 20 s into a minute */
    const double m0 = floor(T / 60) * 60;
    add(l, m0, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 10, 5, 0);        /* first second of the minute */
    add(l, m0 + 59.999, SW_ROUTE_LOCAL, SW_REASON_PII, 10, 5, 0);   /* last instant of it */
    add(l, m0 + 60, SW_ROUTE_CLOUD, SW_REASON_OVERFLOW, 100, 50, 2);/* the next minute */
    add(l, m0 + 180, SW_ROUTE_REJECT, SW_REASON_PRIVATE, 7, 0, 0);  /* two minutes later */

    /* the last 5 minutes as seen at m0+200: buckets m0-60 .. m0+180 */
    cJSON *u = usage(l, SW_BUCKET_MINUTE, 5, m0 + 200);
    const cJSON *s = cJSON_GetObjectItem(u, "series");
    assert_string_equal(cJSON_GetObjectItem(s, "bucket")->valuestring, "minute");
    assert_true(num(u, "series.bucket_s") == 60);
    assert_true(num(u, "series.start") == m0 - 60);
    assert_true(num(u, "series.end") == m0 + 240);
    const cJSON *p = points(u);
    assert_int_equal(cJSON_GetArraySize(p), 3); /* empty minutes are absent */
    const cJSON *p0 = cJSON_GetArrayItem(p, 0), *p1 = cJSON_GetArrayItem(p, 1), *p2 = cJSON_GetArrayItem(p, 2);
    assert_true(num(p0, "t") == m0 && num(p1, "t") == m0 + 60 && num(p2, "t") == m0 + 180);
    assert_int_equal((int)num(p0, "requests.local"), 2);
    assert_int_equal((int)num(p0, "reasons.local.default"), 1);
    assert_int_equal((int)num(p0, "reasons.local.pii"), 1);
    assert_int_equal((int)num(p0, "tokens.local.input"), 20);
    assert_true(fabs(num(p0, "savings_usd") - 2 * (10 * 1.0 + 5 * 2.0) / 1e6) < 1e-15);
    assert_int_equal((int)num(p1, "requests.cloud"), 1);
    assert_true(fabs(num(p1, "cost_usd") - (100 * 3.0 + 50 * 15.0) / 1e6) < 1e-15);
    assert_int_equal((int)num(p1, "redacted.spans"), 2);
    assert_int_equal((int)num(p2, "requests.reject"), 1);
    assert_int_equal((int)num(p2, "tokens.reject.input"), 7); /* the refused prompt */
    assert_int_equal((int)num(p2, "errors"), 1);
    /* the series sums to the totals */
    assert_int_equal((int)num(u, "requests.total"), 4);
    cJSON_Delete(u);

    /* a window that ends before the last request leaves it out */
    u = usage(l, SW_BUCKET_MINUTE, 2, m0 + 60);
    assert_int_equal(cJSON_GetArraySize(points(u)), 2);
    cJSON_Delete(u);
    /* n is clamped to [1, capacity] */
    u = usage(l, SW_BUCKET_MINUTE, 0, m0 + 200);
    assert_true(num(u, "series.end") - num(u, "series.start") == 60);
    assert_int_equal(cJSON_GetArraySize(points(u)), 1);
    cJSON_Delete(u);
    u = usage(l, SW_BUCKET_MINUTE, 1 << 30, m0 + 200);
    assert_true(num(u, "series.end") - num(u, "series.start") == 60.0 * sw_ledger_bucket_capacity(SW_BUCKET_MINUTE));
    assert_int_equal(cJSON_GetArraySize(points(u)), 3);
    cJSON_Delete(u);

    /* hours and days see all four in one bucket */
    static const sw_ledger_bucket coarse[] = {SW_BUCKET_HOUR, SW_BUCKET_DAY};
    for (int i = 0; i < 2; i++) {
        u = usage(l, coarse[i], 3, m0 + 200);
        p = points(u);
        assert_int_equal(cJSON_GetArraySize(p), 1);
        double w = sw_ledger_bucket_seconds(coarse[i]);
        assert_true(num(cJSON_GetArrayItem(p, 0), "t") == floor(T / w) * w);
        assert_int_equal((int)num(cJSON_GetArrayItem(p, 0), "requests.total"), 4);
        cJSON_Delete(u);
    }

    /* a day later the minute ring has wrapped: the slot of m0 is reused by
     * m0 + 1440 minutes, and a late entry for m0 no longer fits */
    double later = m0 + 1440 * 60;
    add(l, later, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 1, 1, 0);
    add(l, m0 + 1, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, 1, 1, 0); /* too old for minutes */
    u = usage(l, SW_BUCKET_MINUTE, 1440, later);
    p = points(u);
    /* m0 (overwritten) is out of the window anyway; m0+60 and m0+180 are in */
    assert_int_equal(cJSON_GetArraySize(p), 3);
    assert_true(num(cJSON_GetArrayItem(p, 0), "t") == m0 + 60);
    assert_true(num(cJSON_GetArrayItem(p, 2), "t") == later);
    cJSON_Delete(u);
    u = usage(l, SW_BUCKET_HOUR, 48, later);
    p = points(u);
    assert_int_equal(cJSON_GetArraySize(p), 2);
    assert_int_equal((int)num(cJSON_GetArrayItem(p, 0), "requests.total"), 5); /* the late one counts here */
    cJSON_Delete(u);
    assert_int_equal((int)num(u = usage(l, SW_BUCKET_COUNT, 0, 0), "requests.total"), 6);
    cJSON_Delete(u);

    sw_ledger_bucket b;
    sw_err err = {{0}};
    assert_int_equal(sw_ledger_bucket_parse("hour", &b, &err), SW_OK);
    assert_int_equal(b, SW_BUCKET_HOUR);
    assert_int_equal(sw_ledger_bucket_parse("week", &b, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "week"));
    sw_ledger_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_price),
        cmocka_unit_test(test_redaction_counts),
        cmocka_unit_test(test_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
