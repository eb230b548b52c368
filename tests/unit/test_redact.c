/* test_redact.c — privacy-preserving spill-over: every PII span found (all of
 * them, overlaps resolved), typed placeholders stable within a request and
 * across a chat body's messages (system, parts, tool calls, tool results,
 * stop), literal placeholders in the user's text never issued, whole-text
 * restore, and streaming restore over every 1-, 2- and 3-chunk split of an
 * answer (never half a placeholder out, nothing held that cannot be one);
 * the router's PII actions (local / redact / refuse, key > request > policy)
 * and the policy file's "pii" object, key "pii" and "reference_price". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "redact.h"
#include "router.h"

static sw_pii *g_pii;

static int setup(void **state) {
    (void)state;
    sw_err err = {{0}};
    return sw_pii_create(SW_PII_ALL, &g_pii, &err) == SW_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    sw_pii_free(g_pii);
    return 0;
}

static sw_redactor *new_redactor(void) {
    sw_redactor *r = NULL;
    sw_err err = {{0}};
    if (sw_redactor_create(g_pii, &r, &err) != SW_OK) fail_msg("%s", err.msg);
    return r;
}

static char *redact(sw_redactor *r, const char *text) {
    char *out = NULL;
    size_t n = 0;
    sw_err err = {{0}};
    if (sw_redact_text(r, text, strlen(text), &out, &n, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(n, strlen(out));
    return out;
}

static char *restore(const sw_redactor *r, const char *text) {
    char *out = NULL;
    size_t n = 0;
    sw_err err = {{0}};
    if (sw_restore_text(r, text, strlen(text), &out, &n, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(n, strlen(out));
    return out;
}

#define EMAIL "jane.doe@example.com"
#define EMAIL2 "bob@mail.example.org"
#define PHONE "(415) 555-2671"
#define CARD "4111 1111 1111 1111"
#define IBAN "DE89 3704 0044 0532 0130 00"
#define SSN "123-45-6789"

static void test_find_all(void **state) {
    (void)state;
    const char *t = "mail " EMAIL ", call " PHONE ", card " CARD ", iban " IBAN ", ssn " SSN
                    ", again " EMAIL;
    sw_pii_match *m = NULL;
    size_t n = 0;
    sw_err err = {{0}};
    assert_int_equal(sw_pii_find_all(g_pii, t, strlen(t), &m, &n, &err), SW_OK);
    assert_int_equal(n, 6);
    static const struct {
        sw_pii_kind k;
        const char *v;
    } want[] = {{SW_PII_EMAIL, EMAIL}, {SW_PII_PHONE, PHONE}, {SW_PII_CARD, CARD},
                {SW_PII_IBAN, IBAN},   {SW_PII_SSN, SSN},     {SW_PII_EMAIL, EMAIL}};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i].kind, want[i].k);
        assert_int_equal(m[i].len, strlen(want[i].v));
        assert_memory_equal(t + m[i].offset, want[i].v, m[i].len);
        if (i) assert_true(m[i].offset >= m[i - 1].offset + m[i - 1].len); /* sorted, disjoint */
    }
    free(m);
    /* nothing found: NULL, 0 */
    assert_int_equal(sw_pii_find_all(g_pii, "no data here", 12, &m, &n, &err), SW_OK);
    assert_null(m);
    assert_int_equal(n, 0);
}

static void test_redact_text(void **state) {
    (void)state;
    sw_redactor *r = new_redactor();
    char *a = redact(r, "To " EMAIL " and " EMAIL2 ", cc " EMAIL ". Call " PHONE " or pay " CARD ".");
    assert_string_equal(a, "To [EMAIL_1] and [EMAIL_2], cc [EMAIL_1]. Call [PHONE_1] or pay [CARD_1].");
    assert_int_equal(sw_redactor_spans(r), 5);
    assert_int_equal(sw_redactor_values(r), 4);
    assert_int_equal(sw_redactor_kinds(r), SW_PII_EMAIL | SW_PII_PHONE | SW_PII_CARD);
    /* a second text of the same request keeps the mapping */
    char *b = redact(r, "IBAN " IBAN ", SSN " SSN ", mail " EMAIL2);
    assert_string_equal(b, "IBAN [IBAN_1], SSN [SSN_1], mail [EMAIL_2]");
    char *back = restore(r, a);
    assert_string_equal(back, "To " EMAIL " and " EMAIL2 ", cc " EMAIL ". Call " PHONE " or pay " CARD ".");
    free(back);
    /* placeholders the request never issued stay as they are */
    back = restore(r, "[EMAIL_3] [EMAIL_0] [EMAIL_01] [email_1] [EMAIL_1 [EMAIL_1]] [[CARD_1]");
    assert_string_equal(back, "[EMAIL_3] [EMAIL_0] [EMAIL_01] [email_1] [EMAIL_1 " EMAIL "] [" CARD);
    free(back);
    free(a);
    free(b);
    sw_redactor_free(r);
}

static void test_reserved_literals(void **state) {
    (void)state;
    sw_redactor *r = new_redactor();
    /* the user wrote "[EMAIL_1]" themselves: the address gets [EMAIL_2] */
    const char *t = "template var [EMAIL_1] is filled with " EMAIL;
    char *a = redact(r, t);
    assert_string_equal(a, "template var [EMAIL_1] is filled with [EMAIL_2]");
    char *back = restore(r, a);
    assert_string_equal(back, t); /* the literal stays literal */
    free(back);
    free(a);
    sw_redactor_free(r);
}

static char *print(const cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    assert_non_null(s);
    return s;
}

static void test_chat_body(void **state) {
    (void)state;
    const char *json =
        "{\"model\":\"x\",\"stop\":[\"" EMAIL2 "\",\"END\"],\"messages\":["
        "{\"role\":\"system\",\"content\":\"The customer is " EMAIL ", card " CARD ".\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Write to " EMAIL
        " and " EMAIL2 "\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/a.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"phone\\\":\\\"" PHONE "\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"IBAN " IBAN " ([EMAIL_2] is a literal)\"},"
        "{\"role\":\"user\",\"content\":\"And " SSN "?\"}]}";
    cJSON *body = cJSON_Parse(json);
    assert_non_null(body);
    sw_redactor *r = new_redactor();
    sw_err err = {{0}};
    assert_int_equal(sw_redact_chat_body(r, body, &err), SW_OK);
    char *s = print(body);
    /* not one value is left, anywhere */
    static const char *const values[] = {EMAIL, EMAIL2, PHONE, CARD, IBAN, SSN, "4111", "555-2671"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (strstr(s, values[i])) fail_msg("'%s' survived redaction: %s", values[i], s);
    /* [EMAIL_2] was written by the tool: the second address gets [EMAIL_3] */
    const cJSON *msgs = cJSON_GetObjectItem(body, "messages");
    assert_string_equal(cJSON_GetArrayItem(msgs, 0)->child->next->valuestring,
                        "The customer is [EMAIL_1], card [CARD_1].");
    const cJSON *parts = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(parts, 0), "text")->valuestring,
                        "Write to [EMAIL_1] and [EMAIL_3]");
    const cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 2), "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(call, "function"), "arguments")->valuestring,
                        "{\"phone\":\"[PHONE_1]\"}");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 3), "content")->valuestring,
                        "IBAN [IBAN_1] ([EMAIL_2] is a literal)");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 4), "content")->valuestring,
                        "And [SSN_1]?");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(body, "stop"), 0)->valuestring, "[EMAIL_3]");
    assert_non_null(strstr(s, "http://x/a.png")); /* other parts untouched */
    assert_int_equal(sw_redactor_spans(r), 8);
    assert_int_equal(sw_redactor_values(r), 6);
    /* an answer that quotes placeholders gets the values back */
    char *back = restore(r, "Sent [CARD_1] details to [EMAIL_3]; [EMAIL_2] unchanged; call [PHONE_1].");
    assert_string_equal(back, "Sent " CARD " details to " EMAIL2 "; [EMAIL_2] unchanged; call " PHONE ".");
    free(back);
    free(s);
    cJSON_Delete(body);
    sw_redactor_free(r);
}

/* A whole chat.completion gets its values back: content and tool call arguments. */
static void test_restore_response(void **state) {
    (void)state;
    sw_redactor *r = new_redactor();
    free(redact(r, EMAIL " " CARD));
    cJSON *resp = cJSON_Parse(
        "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"To [EMAIL_1]!\","
        "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"pay\","
        "\"arguments\":\"{\\\"card\\\":\\\"[CARD_1]\\\"}\"}}]}},"
        "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":null}}]}");
    assert_non_null(resp);
    sw_err err = {{0}};
    assert_int_equal(sw_restore_chat_response(r, resp, &err), SW_OK);
    const cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "choices"), 0), "message");
    assert_string_equal(cJSON_GetObjectItem(msg, "content")->valuestring, "To " EMAIL "!");
    const cJSON *f = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0), "function");
    assert_string_equal(cJSON_GetObjectItem(f, "arguments")->valuestring, "{\"card\":\"" CARD "\"}");
    cJSON_Delete(resp);
    sw_redactor_free(r);
}

/* ---- streaming ------------------------------------------------------------------------ */

typedef struct acc {
    char buf[1024];
    size_t n;
} acc;

static void feed(sw_restore_stream *st, const char *p, size_t n, acc *a) {
    char *out = NULL;
    size_t len = 0;
    sw_err err = {{0}};
    if (sw_restore_feed(st, p, n, &out, &len, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_true(a->n + len < sizeof a->buf);
    memcpy(a->buf + a->n, out, len);
    a->n += len;
    a->buf[a->n] = '\0';
    free(out);
    assert_true(sw_restore_held(st) < 24);
}

static void finish(sw_restore_stream *st, acc *a) {
    char *out = NULL;
    size_t len = 0;
    sw_err err = {{0}};
    if (sw_restore_finish(st, &out, &len, &err) != SW_OK) fail_msg("%s", err.msg);
    memcpy(a->buf + a->n, out, len);
    a->n += len;
    a->buf[a->n] = '\0';
    free(out);
}

/* Restore `answer` fed in chunks cut at cuts[0..k) and compare with want. */
static void stream_split(const sw_redactor *r, const char *answer, const size_t *cuts, size_t k,
                         const char *want) {
    sw_restore_stream *st = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_restore_stream_create(r, &st, &err), SW_OK);
    acc a = {.n = 0};
    size_t at = 0, len = strlen(answer);
    for (size_t i = 0; i <= k; i++) {
        size_t end = i < k ? cuts[i] : len;
        feed(st, answer + at, end - at, &a);
        at = end;
    }
    finish(st, &a);
    if (strcmp(a.buf, want)) {
        char where[64] = "";
        for (size_t i = 0; i < k; i++) snprintf(where + strlen(where), sizeof where - strlen(where), " %zu", cuts[i]);
        fail_msg("cuts%s: got '%s', want '%s'", where, a.buf, want);
    }
    sw_restore_stream_free(st);
}

static void test_stream_every_split(void **state) {
    (void)state;
    sw_redactor *r = new_redactor();
    char *q = redact(r, "Mail " EMAIL ", call " PHONE ", pay " CARD ", ssn " SSN);
    assert_string_equal(q, "Mail [EMAIL_1], call [PHONE_1], pay [CARD_1], ssn [SSN_1]");
    /* the cloud's answer: placeholders back to back, at both ends, split by
     * brackets that are not placeholders, an unissued one, a cut-off one */
    const char *answer = "[EMAIL_1][PHONE_1] [x] [EMAIL_2] ok [[CARD_1]] [SSN_1 [SSN_1][EMAIL_";
    const char *want = EMAIL PHONE " [x] [EMAIL_2] ok [" CARD "] [SSN_1 " SSN "[EMAIL_";
    size_t len = strlen(answer);
    stream_split(r, answer, NULL, 0, want);
    size_t cuts[3];
    for (size_t i = 0; i <= len; i++) {
        cuts[0] = i;
        stream_split(r, answer, cuts, 1, want);
        for (size_t j = i; j <= len; j++) {
            cuts[1] = j;
            stream_split(r, answer, cuts, 2, want);
        }
    }
    /* byte by byte */
    size_t many[128];
    for (size_t i = 0; i + 1 < len; i++) many[i] = i + 1;
    stream_split(r, answer, many, len - 1, want);
    free(q);
    sw_redactor_free(r);
}

/* Only a possible placeholder prefix is held; everything else goes at once. */
static void test_stream_holds_only_prefixes(void **state) {
    (void)state;
    sw_redactor *r = new_redactor();
    free(redact(r, "a " EMAIL " b " PHONE));
    sw_restore_stream *st = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_restore_stream_create(r, &st, &err), SW_OK);
    acc a = {.n = 0};
    feed(st, "price [10] and [EM", 18, &a);
    assert_string_equal(a.buf, "price [10] and ");
    assert_int_equal(sw_restore_held(st), 3);
    feed(st, "AIL_", 4, &a);
    assert_int_equal(sw_restore_held(st), 7);
    feed(st, "1", 1, &a);
    assert_int_equal(sw_restore_held(st), 8);
    feed(st, "] x [", 5, &a);
    assert_string_equal(a.buf, "price [10] and " EMAIL " x ");
    assert_int_equal(sw_restore_held(st), 1);
    feed(st, "CARD_1", 6, &a); /* no card was redacted: not a prefix */
    assert_string_equal(a.buf, "price [10] and " EMAIL " x [CARD_1");
    assert_int_equal(sw_restore_held(st), 0);
    feed(st, " [EMAIL_2", 9, &a); /* only EMAIL_1 exists */
    assert_int_equal(sw_restore_held(st), 0);
    feed(st, " [PHONE_", 8, &a);
    assert_int_equal(sw_restore_held(st), 7);
    finish(st, &a); /* a prefix that never completed goes out as it was */
    assert_string_equal(a.buf, "price [10] and " EMAIL " x [CARD_1 [EMAIL_2 [PHONE_");
    sw_restore_stream_free(st);
    sw_redactor_free(r);
}

/* ---- the router's PII actions ------------------------------------------------------------ */

static bool cloud_up(void *user) {
    (void)user;
    return true;
}

static sw_route_decision decide(const sw_router *r, const sw_route_request *q) {
    sw_route_decision d;
    sw_err err = {{0}};
    if (sw_router_decide(r, q, &d, &err) != SW_OK) fail_msg("%s", err.msg);
    return d;
}

static void test_router_actions(void **state) {
    (void)state;
    sw_key_policy keys[] = {{"sk-redact", false, false, SW_PII_ACTION_REDACT},
                            {"sk-refuse", false, false, SW_PII_ACTION_REFUSE},
                            {"sk-private", true, false, SW_PII_ACTION_REDACT}};
    sw_router_policy pol;
    sw_router_policy_default(&pol);
    pol.keys = keys;
    pol.n_keys = 3;
    sw_router *r = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_router_create(&pol, cloud_up, NULL, &r, &err), SW_OK);
    static const char *const text[] = {"Mail " EMAIL " about it"};
    sw_route_request q;
    memset(&q, 0, sizeof q);
    q.texts = text;
    q.n_texts = 1;
    q.prompt_tokens = 100;
    q.max_tokens = 100;
    q.local_n_ctx = 4096;

    /* default action local: pinned */
    sw_route_decision d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_LOCAL);
    assert_int_equal(d.reason, SW_REASON_PII);
    assert_int_equal(d.pii_action, SW_PII_ACTION_LOCAL);
    assert_false(d.redact);
    /* request: redact -> routed as if clean, may escalate, redact set */
    q.pii_action = SW_PII_ACTION_REDACT;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_LOCAL);
    assert_int_equal(d.reason, SW_REASON_DEFAULT);
    assert_true(d.redact);
    assert_true(d.may_escalate);
    assert_int_equal(d.pii_kinds, SW_PII_EMAIL);
    /* ... overflow goes to the cloud, redacted */
    q.prompt_tokens = 4090;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_CLOUD);
    assert_int_equal(d.reason, SW_REASON_OVERFLOW);
    assert_true(d.redact);
    assert_non_null(strstr(d.message, "redacted: email"));
    assert_null(strstr(d.message, "example.com"));
    q.prompt_tokens = 100;
    /* ... explicit cloud too */
    q.route = SW_PREF_CLOUD;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_CLOUD);
    assert_int_equal(d.reason, SW_REASON_EXPLICIT_CLOUD);
    assert_true(d.redact);
    q.route = SW_PREF_AUTO;
    /* refuse */
    q.pii_action = SW_PII_ACTION_REFUSE;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.reason, SW_REASON_PII);
    assert_int_equal(d.http_status, 400);
    assert_string_equal(d.error_code, "pii_detected");
    /* the key's setting wins over the request's */
    q.api_key = "sk-redact";
    d = decide(r, &q);
    assert_int_equal(d.pii_action, SW_PII_ACTION_REDACT);
    assert_true(d.redact);
    q.api_key = "sk-refuse";
    q.pii_action = SW_PII_ACTION_REDACT;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    /* private never leaves, whatever the action */
    q.api_key = "sk-private";
    q.prompt_tokens = 4090;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.reason, SW_REASON_PRIVATE);
    assert_false(d.redact);
    q.prompt_tokens = 100;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_LOCAL);
    assert_int_equal(d.reason, SW_REASON_PRIVATE);
    assert_false(d.pii_scanned);
    q.api_key = NULL;
    q.private_request = true;
    q.route = SW_PREF_CLOUD;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    /* clean text with redact: nothing to redact */
    q.private_request = false;
    q.route = SW_PREF_AUTO;
    static const char *const clean[] = {"Tell me about Rome"};
    q.texts = clean;
    d = decide(r, &q);
    assert_int_equal(d.reason, SW_REASON_DEFAULT);
    assert_false(d.redact);
    /* the policy default */
    sw_router_free(r);
    pol.pii_action = SW_PII_ACTION_REDACT;
    assert_int_equal(sw_router_create(&pol, cloud_up, NULL, &r, &err), SW_OK);
    memset(&q, 0, sizeof q);
    q.texts = text;
    q.n_texts = 1;
    q.local_n_ctx = 4096;
    q.prompt_tokens = 4090;
    q.max_tokens = 100;
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_CLOUD);
    assert_true(d.redact);
    q.pii_action = SW_PII_ACTION_LOCAL; /* the request may ask for more care */
    d = decide(r, &q);
    assert_int_equal(d.route, SW_ROUTE_REJECT);
    assert_int_equal(d.reason, SW_REASON_PII);
    sw_router_free(r);
}

/* PII in a tool call's arguments counts like PII in a message. */
static void test_router_scans_tool_calls(void **state) {
    (void)state;
    sw_router_policy pol;
    sw_router_policy_default(&pol);
    sw_router *r = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_router_create(&pol, cloud_up, NULL, &r, &err), SW_OK);
    cJSON *msgs = cJSON_Parse("[{\"role\":\"user\",\"content\":\"look it up\"},"
                              "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
                              "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"to\\\":\\\"" EMAIL "\\\"}\"}}]}]");
    assert_non_null(msgs);
    sw_route_request q;
    memset(&q, 0, sizeof q);
    q.messages = msgs;
    q.local_n_ctx = 4096;
    q.prompt_tokens = 10;
    sw_route_decision d = decide(r, &q);
    assert_int_equal(d.reason, SW_REASON_PII);
    cJSON_Delete(msgs);
    sw_router_free(r);
}

static void test_extension_pii(void **state) {
    (void)state;
    sw_route_request q;
    memset(&q, 0, sizeof q);
    sw_err err = {{0}};
    cJSON *b = cJSON_Parse("{\"spillway\":{\"pii\":\"redact\",\"route\":\"auto\"}}");
    assert_int_equal(sw_route_parse_extension(b, &q, &err), SW_OK);
    assert_int_equal(q.pii_action, SW_PII_ACTION_REDACT);
    cJSON_Delete(b);
    static const char *const bad[] = {"{\"spillway\":{\"pii\":\"hide\"}}", "{\"spillway\":{\"pii\":true}}"};
    for (size_t i = 0; i < 2; i++) {
        b = cJSON_Parse(bad[i]);
        assert_int_equal(sw_route_parse_extension(b, &q, &err), SW_E_INVALID_ARG);
        assert_non_null(strstr(err.msg, "spillway.pii"));
        cJSON_Delete(b);
    }
}

/* ---- the policy file ------------------------------------------------------------------ */

static sw_status parse(sw_route_config *c, const char *json, sw_err *err) {
    return sw_route_config_parse(c, json, strlen(json), "rc.json", err);
}

static void test_config(void **state) {
    (void)state;
    sw_route_config c;
    sw_route_config_init(&c);
    sw_err err = {{0}};
    assert_int_equal(c.policy.pii_action, SW_PII_ACTION_LOCAL);
    assert_int_equal(parse(&c, "{\"pii\": {\"action\": \"redact\", \"detectors\": [\"email\", \"card\"]},"
                               " \"keys\": {\"k1\": {\"pii\": \"refuse\"}, \"k2\": {}},"
                               " \"reference_price\": {\"model\": \"gpt-4o\", \"input\": 2.5, \"output\": 10}}",
                           &err), SW_OK);
    assert_int_equal(c.policy.pii_action, SW_PII_ACTION_REDACT);
    assert_int_equal(c.policy.pii_kinds, SW_PII_EMAIL | SW_PII_CARD);
    assert_int_equal(c.n_keys, 2);
    assert_int_equal(c.keys[0].pii, SW_PII_ACTION_REFUSE);
    assert_int_equal(c.keys[1].pii, SW_PII_ACTION_INHERIT);
    assert_true(c.have_reference_price);
    assert_string_equal(c.reference_price.model, "gpt-4o");
    assert_true(c.reference_price.input_per_mtok == 2.5 && c.reference_price.output_per_mtok == 10);
    /* the array form still names the detectors */
    assert_int_equal(parse(&c, "{\"pii\": [\"ssn\"]}", &err), SW_OK);
    assert_int_equal(c.policy.pii_kinds, SW_PII_SSN);
    assert_int_equal(c.policy.pii_action, SW_PII_ACTION_REDACT);
    sw_route_config_free(&c);

    static const struct {
        const char *json, *field;
    } bad[] = {
        {"{\"pii\": {\"action\": \"hide\"}}", "pii.action"},
        {"{\"pii\": {\"acton\": \"local\"}}", "pii.acton"},
        {"{\"pii\": {\"detectors\": [\"mail\"]}}", "pii.detectors[0]"},
        {"{\"pii\": \"redact\"}", "pii"},
        {"{\"keys\": {\"secret-key-value\": {\"pii\": \"yes\"}}}", "keys[0].pii"},
        {"{\"reference_price\": {\"input\": 1}}", "reference_price"},
        {"{\"reference_price\": {\"input\": -1, \"output\": 1}}", "reference_price.input"},
        {"{\"reference_price\": {\"input\": 1, \"output\": 1, \"cur\": \"EUR\"}}", "reference_price.cur"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sw_route_config_init(&c);
        assert_int_equal(parse(&c, bad[i].json, &err), SW_E_INVALID_ARG);
        char want[80];
        snprintf(want, sizeof want, "rc.json: %s:", bad[i].field);
        if (!strstr(err.msg, want)) fail_msg("case %zu: '%s' does not name %s", i, err.msg, want);
        assert_null(strstr(err.msg, "secret-key-value"));
        sw_route_config_free(&c);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_all),
        cmocka_unit_test(test_redact_text),
        cmocka_unit_test(test_reserved_literals),
        cmocka_unit_test(test_chat_body),
        cmocka_unit_test(test_restore_response),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_stream_holds_only_prefixes),
        cmocka_unit_test(test_router_actions),
        cmocka_unit_test(test_router_scans_tool_calls),
        cmocka_unit_test(test_extension_pii),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
