/* test_fallback_parsers.c — SSE parser (split reads at every byte, CR/LF/CRLF,
 * comments, multi-line data, BOM, malformed streams), PII detectors (true and
 * false positives, Luhn/IBAN/SSN validation) and the provider wire mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_wire.h"
#include "pii.h"
#include "sse.h"

/* ---- SSE ------------------------------------------------------------------------- */

typedef struct collected {
    char log[4096]; /* "event|data|id;" per event */
    int n;
} collected;

static sw_status collect(void *user, const sw_sse_event *ev, sw_err *err) {
    (void)err;
    collected *c = user;
    size_t used = strlen(c->log);
    snprintf(c->log + used, sizeof c->log - used, "%s|%s|%s;", ev->event, ev->data, ev->id);
    c->n++;
    return SW_OK;
}

/* Feed text in pieces of `step` bytes; return the final status. */
static sw_status feed_steps(const char *text, size_t step, collected *c, sw_err *err) {
    sw_sse_parser *p = NULL;
    assert_int_equal(sw_sse_create(0, &p, err), SW_OK);
    memset(c, 0, sizeof *c);
    size_t n = strlen(text);
    sw_status st = SW_OK;
    for (size_t i = 0; i < n && st == SW_OK; i += step)
        st = sw_sse_feed(p, text + i, SW_MIN(step, n - i), collect, c, err);
    if (st == SW_OK) st = sw_sse_finish(p, err);
    sw_sse_free(p);
    return st;
}

static void test_sse_basic_and_split(void **state) {
    (void)state;
    const char *text = "\xEF\xBB\xBF: comment\r\n"
                       "event: message_start\r\n"
                       "data: {\"a\":1}\r\n\r\n"
                       "data:line1\n"
                       "data: line2\n"
                       "id: 7\n"
                       "retry: 100\n\n"
                       "event: ping\rdata: x\r\r"
                       "event: no-data\n\n"
                       "data\n\n";
    const char *want = "message_start|{\"a\":1}|;|line1\nline2|7;ping|x|7;||7;";
    /* every split size, including one byte at a time (splits CRLF and the BOM) */
    for (size_t step = 1; step <= strlen(text); step++) {
        collected c;
        sw_err err = {{0}};
        sw_status st = feed_steps(text, step, &c, &err);
        if (st != SW_OK) fail_msg("step %zu: %s", step, err.msg);
        if (strcmp(c.log, want)) fail_msg("step %zu: got '%s'", step, c.log);
        assert_int_equal(c.n, 4);
    }
}

static void test_sse_malformed(void **state) {
    (void)state;
    collected c;
    sw_err err = {{0}};
    assert_int_equal(feed_steps("this is not an event stream\n\n", 5, &c, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "unknown field"));
    assert_int_equal(c.n, 0);
    /* truncated: an event without its blank line, and an unterminated line */
    assert_int_equal(feed_steps("data: {\"a\":1}\n", 3, &c, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "middle of an event"));
    assert_int_equal(feed_steps("data: {\"a\":1}\n\ndata: x", 3, &c, &err), SW_E_FORMAT);
    assert_int_equal(c.n, 1);
    /* NUL byte */
    sw_sse_parser *p = NULL;
    assert_int_equal(sw_sse_create(0, &p, &err), SW_OK);
    assert_int_equal(sw_sse_feed(p, "data: a\0b\n\n", 11, collect, &c, &err), SW_E_FORMAT);
    /* stays failed */
    assert_int_equal(sw_sse_feed(p, "data: ok\n\n", 10, collect, &c, &err), SW_E_FORMAT);
    sw_sse_free(p);
    /* size limit */
    assert_int_equal(sw_sse_create(64, &p, &err), SW_OK);
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    assert_int_equal(sw_sse_feed(p, big, sizeof big, collect, &c, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "limit"));
    sw_sse_free(p);
    sw_sse_free(NULL);
}

static sw_status stop_cb(void *user, const sw_sse_event *ev, sw_err *err) {
    (void)user;
    (void)ev;
    return sw_err_set(err, SW_E_CANCELLED, "stop here");
}

static void test_sse_callback_stops(void **state) {
    (void)state;
    sw_sse_parser *p = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_sse_create(0, &p, &err), SW_OK);
    assert_int_equal(sw_sse_feed(p, "data: 1\n\ndata: 2\n\n", 18, stop_cb, NULL, &err), SW_E_CANCELLED);
    assert_string_equal(err.msg, "stop here");
    assert_int_equal(sw_sse_count(p), 1);
    sw_sse_free(p);
}

/* ---- PII --------------------------------------------------------------------------- */

static unsigned scan(const sw_pii *p, const char *text) {
    unsigned found = 0;
    sw_err err = {{0}};
    sw_status st = sw_pii_scan(p, text, strlen(text), false, &found, NULL, &err);
    if (st != SW_OK) fail_msg("scan '%s': %s", text, err.msg);
    return found;
}

static void test_pii_validators(void **state) {
    (void)state;
    assert_true(sw_pii_luhn_ok("4111 1111 1111 1111", 19));
    assert_true(sw_pii_luhn_ok("79927398713", 11));
    assert_false(sw_pii_luhn_ok("4111 1111 1111 1112", 19));
    assert_true(sw_pii_iban_ok("GB82 WEST 1234 5698 7654 32", 27));
    assert_true(sw_pii_iban_ok("DE89370400440532013000", 22));
    assert_false(sw_pii_iban_ok("GB82 WEST 1234 5698 7654 33", 27)); /* checksum */
    assert_false(sw_pii_iban_ok("GB82WEST123456987654", 20));        /* length for GB */
    assert_false(sw_pii_iban_ok("ZZ82WEST12345698765432", 22));      /* no such country */
    assert_true(sw_pii_ssn_ok("123-45-6789", 11));
    assert_false(sw_pii_ssn_ok("000-12-3456", 11));
    assert_false(sw_pii_ssn_ok("666-12-3456", 11));
    assert_false(sw_pii_ssn_ok("912-12-3456", 11));
    assert_false(sw_pii_ssn_ok("123-00-4567", 11));
    assert_false(sw_pii_ssn_ok("123-45-0000", 11));
}

static void test_pii_true_positives(void **state) {
    (void)state;
    sw_pii *p = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_pii_create(SW_PII_ALL, &p, &err), SW_OK);
    static const struct {
        const char *text;
        unsigned kind;
    } cases[] = {
        {"mail me at jane.doe+work@example.co.uk please", SW_PII_EMAIL},
        {"Contact: bob@mail.example.com.", SW_PII_EMAIL},
        {"call (415) 555-2671 today", SW_PII_PHONE},
        {"call 415-555-2671", SW_PII_PHONE},
        {"call 1 415.555.2671", SW_PII_PHONE},
        {"ring +44 20 7946 0958 now", SW_PII_PHONE},
        {"phone: +1 (415) 555-2671", SW_PII_PHONE},
        {"tel +4930123456", SW_PII_PHONE},
        {"card 4111 1111 1111 1111 exp 12/27", SW_PII_CARD},
        {"card 4111-1111-1111-1111", SW_PII_CARD},
        {"card 4111111111111111", SW_PII_CARD},
        {"amex 3782 822463 10005", SW_PII_CARD},
        {"mc 5555555555554444.", SW_PII_CARD},
        {"card 4111 1111 1111 1111 2024", SW_PII_CARD}, /* trailing group */
        {"IBAN GB82 WEST 1234 5698 7654 32 for rent", SW_PII_IBAN},
        {"pay to DE89370400440532013000.", SW_PII_IBAN},
        {"FR1420041010050500013M02606", SW_PII_IBAN},
        {"ssn 123-45-6789", SW_PII_SSN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned got = scan(p, cases[i].text);
        if (!(got & cases[i].kind)) fail_msg("missed %s in '%s'", sw_pii_kind_str(cases[i].kind), cases[i].text);
    }
    /* first-match location */
    sw_pii_match m;
    unsigned found;
    const char *t = "x ssn 123-45-6789";
    assert_int_equal(sw_pii_scan(p, t, strlen(t), true, &found, &m, &err), SW_OK);
    assert_int_equal(m.kind, SW_PII_SSN);
    assert_int_equal(m.offset, 6);
    assert_int_equal(m.len, 11);
    sw_pii_free(p);
}

static void test_pii_false_positives(void **state) {
    (void)state;
    sw_pii *p = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_pii_create(SW_PII_ALL, &p, &err), SW_OK);
    static const char *const clean[] = {
        "The meeting is on 2023-10-15 at 10:30.",
        "Server at 192.168.100.200 port 8080",
        "version 1.2.3-beta, build 20231015",
        "pi is 3.14159265358979",
        "order number 1234567890 shipped",
        "card 4111 1111 1111 1112 (bad checksum)",
        "timestamp 1700000000000 ms",               /* 13 digits, Luhn-irrelevant prefix */
        "0000 0000 0000 0000",
        "the ISBN 978-3-16-148410-0 is printed",
        "GB82 WEST 1234 5698 7654 33",                /* IBAN with a wrong check */
        "AB12 CDEF GHIJ KLMN",                        /* not a country */
        "000-12-3456 and 666-12-3456 and 912-34-5678", /* never-issued SSN ranges */
        "123-456-7890",                               /* NANP area code cannot start with 1 */
        "price +3 points",
        "user@localhost is not an address with a TLD",
        "a..b@example.com is invalid",
        "x = y @ z.w",
        "",
    };
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) {
        unsigned got = scan(p, clean[i]);
        if (got) {
            char k[64];
            sw_pii_kinds_str(got, k, sizeof k);
            fail_msg("false positive (%s) in '%s'", k, clean[i]);
        }
    }
    sw_pii_free(p);
    /* only the selected detectors run */
    assert_int_equal(sw_pii_create(SW_PII_EMAIL, &p, &err), SW_OK);
    assert_int_equal(scan(p, "ssn 123-45-6789 mail a@b.io"), SW_PII_EMAIL);
    sw_pii_free(p);
    sw_pii_kind k;
    assert_int_equal(sw_pii_kind_parse("iban", &k, &err), SW_OK);
    assert_int_equal(k, SW_PII_IBAN);
    assert_int_equal(sw_pii_kind_parse("dna", &k, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "dna"));
}

/* ---- wire mapping -------------------------------------------------------------------- */

static void test_wire_anthropic_request(void **state) {
    (void)state;
    sw_err err = {{0}};
    cJSON *req = cJSON_Parse(
        "{\"model\":\"local\",\"temperature\":1.5,\"top_p\":0.9,\"stop\":[\"END\",\"##\"],"
        "\"max_tokens\":77,\"spillway\":{\"route\":\"cloud\"},\"messages\":["
        "{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"no emojis\"}]},"
        "{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"user\",\"content\":\"there\"},"
        "{\"role\":\"assistant\",\"content\":\"yes?\"},{\"role\":\"user\",\"content\":\"q\"}]}");
    assert_non_null(req);
    cJSON *a = sw_wire_anthropic_request(req, "claude-x", 4096, true, &err);
    if (!a) fail_msg("%s", err.msg);
    assert_string_equal(cJSON_GetObjectItem(a, "model")->valuestring, "claude-x");
    assert_string_equal(cJSON_GetObjectItem(a, "system")->valuestring, "be brief\n\nno emojis");
    assert_int_equal(cJSON_GetObjectItem(a, "max_tokens")->valueint, 77);
    assert_true(cJSON_GetObjectItem(a, "temperature")->valuedouble == 1.0); /* clamped */
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "stream")));
    cJSON *msgs = cJSON_GetObjectItem(a, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 3); /* two user turns merged */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring,
                        "hi\n\nthere");
    cJSON *ss = cJSON_GetObjectItem(a, "stop_sequences");
    assert_int_equal(cJSON_GetArraySize(ss), 2);
    assert_null(cJSON_GetObjectItem(a, "stop"));
    assert_null(cJSON_GetObjectItem(a, "spillway"));
    cJSON_Delete(a);
    /* default max_tokens; unsupported part type names the field */
    cJSON_DeleteItemFromObject(req, "max_tokens");
    a = sw_wire_anthropic_request(req, "m", 1234, false, &err);
    assert_int_equal(cJSON_GetObjectItem(a, "max_tokens")->valueint, 1234);
    cJSON_Delete(a);
    cJSON_Delete(req);
    req = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}");
    assert_null(sw_wire_anthropic_request(req, "m", 0, false, &err));
    assert_non_null(strstr(err.msg, "messages[0].content[0].type"));
    cJSON_Delete(req);
    req = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}");
    assert_null(sw_wire_anthropic_request(req, "m", 0, false, &err));
    cJSON_Delete(req);
}

static void test_wire_openai_request(void **state) {
    (void)state;
    sw_err err = {{0}};
    cJSON *req = cJSON_Parse("{\"model\":\"local\",\"n\":3,\"stream\":false,\"spillway\":{\"private\":false},"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"seed\":5,"
                             "\"logit_bias\":{\"50\":-100}}");
    cJSON *o = sw_wire_openai_request(req, "gpt-x", true, true, &err);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, "gpt-x");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "stream")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "stream_options"), "include_usage")));
    assert_null(cJSON_GetObjectItem(o, "spillway"));
    assert_null(cJSON_GetObjectItem(o, "n"));
    assert_null(cJSON_GetObjectItem(o, "logit_bias")); /* local token ids */
    assert_int_equal(cJSON_GetObjectItem(o, "seed")->valueint, 5); /* passed through */
    cJSON_Delete(o);
    cJSON_Delete(req);
}

static void test_wire_responses(void **state) {
    (void)state;
    sw_err err = {{0}};
    cJSON *msg = cJSON_Parse("{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"c\",\"content\":["
                             "{\"type\":\"text\",\"text\":\"Hel\"},{\"type\":\"tool_use\"},"
                             "{\"type\":\"text\",\"text\":\"lo\"}],\"stop_reason\":\"max_tokens\","
                             "\"usage\":{\"input_tokens\":12,\"output_tokens\":3}}");
    cJSON *o = sw_wire_anthropic_response(msg, &err);
    assert_non_null(o);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content")->valuestring, "Hello");
    assert_string_equal(cJSON_GetObjectItem(c0, "finish_reason")->valuestring, "length");
    cJSON *u = cJSON_GetObjectItem(o, "usage");
    assert_int_equal(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, 12);
    assert_int_equal(cJSON_GetObjectItem(u, "completion_tokens")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(u, "total_tokens")->valueint, 15);
    cJSON_Delete(o);
    cJSON_Delete(msg);
    assert_string_equal(sw_wire_anthropic_finish("end_turn"), "stop");
    assert_string_equal(sw_wire_anthropic_finish("stop_sequence"), "stop");
    assert_string_equal(sw_wire_anthropic_finish("tool_use"), "tool_calls");
    msg = cJSON_Parse("{\"type\":\"error\"}");
    assert_null(sw_wire_anthropic_response(msg, &err));
    cJSON_Delete(msg);
    msg = cJSON_Parse("{\"choices\":[]}");
    assert_null(sw_wire_openai_response(msg, &err));
    cJSON_Delete(msg);
}

typedef struct chunks {
    char text[512];
    char finish[32];
    int n, usage, roles;
    int prompt, completion;
} chunks;

static sw_status on_chunk(void *user, const sw_cloud_chunk *c, sw_err *err) {
    (void)err;
    chunks *k = user;
    k->n++;
    assert_string_equal(cJSON_GetObjectItem(c->json, "object")->valuestring, "chat.completion.chunk");
    if (c->content) strncat(k->text, c->content, sizeof k->text - strlen(k->text) - 1);
    if (c->finish_reason) snprintf(k->finish, sizeof k->finish, "%s", c->finish_reason);
    if (c->is_usage) {
        k->usage++;
        cJSON *u = cJSON_GetObjectItem(c->json, "usage");
        k->prompt = cJSON_GetObjectItem(u, "prompt_tokens")->valueint;
        k->completion = cJSON_GetObjectItem(u, "completion_tokens")->valueint;
    }
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(c->json, "choices"), 0);
    if (cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "role")) k->roles++;
    return SW_OK;
}

static void test_wire_anthropic_stream(void **state) {
    (void)state;
    const char *stream =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_9\","
        "\"model\":\"claude-x\",\"usage\":{\"input_tokens\":21,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"there\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"stop_sequence\"},\"usage\":{\"output_tokens\":2}}\n\n"
        "event: some_future_event\ndata: {\"type\":\"some_future_event\"}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    sw_err err = {{0}};
    for (size_t step = 1; step < 64; step += 7) {
        chunks k;
        memset(&k, 0, sizeof k);
        sw_wire_stream ws;
        sw_wire_stream_init(&ws, SW_PROVIDER_ANTHROPIC, on_chunk, &k);
        sw_sse_parser *p = NULL;
        assert_int_equal(sw_sse_create(0, &p, &err), SW_OK);
        size_t n = strlen(stream);
        for (size_t i = 0; i < n; i += step)
            if (sw_sse_feed(p, stream + i, SW_MIN(step, n - i), sw_wire_stream_event, &ws, &err))
                fail_msg("%s", err.msg);
        assert_int_equal(sw_sse_finish(p, &err), SW_OK);
        assert_int_equal(sw_wire_stream_end(&ws, &err), SW_OK);
        sw_sse_free(p);
        assert_string_equal(k.text, "Hi there");
        assert_string_equal(k.finish, "stop");
        assert_int_equal(k.roles, 1);
        assert_int_equal(k.usage, 1);
        assert_int_equal(k.prompt, 21);
        assert_int_equal(k.completion, 2);
        assert_string_equal(ws.id, "msg_9");
    }
    /* an error event and a stream cut before message_stop */
    chunks k;
    memset(&k, 0, sizeof k);
    sw_wire_stream ws;
    sw_wire_stream_init(&ws, SW_PROVIDER_ANTHROPIC, on_chunk, &k);
    sw_sse_event ev = {"error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                                "\"message\":\"Overloaded\"}}", 0, ""};
    ev.data_len = strlen(ev.data);
    assert_int_equal(sw_wire_stream_event(&ws, &ev, &err), SW_E_BACKEND);
    assert_true(ws.error_retryable);
    assert_string_equal(ws.error_type, "overloaded_error");
    assert_int_equal(sw_wire_stream_end(&ws, &err), SW_E_FORMAT);
    sw_sse_event bad = {"", "{oops", 5, ""};
    assert_int_equal(sw_wire_stream_event(&ws, &bad, &err), SW_E_FORMAT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_basic_and_split),
        cmocka_unit_test(test_sse_malformed),
        cmocka_unit_test(test_sse_callback_stops),
        cmocka_unit_test(test_pii_validators),
        cmocka_unit_test(test_pii_true_positives),
        cmocka_unit_test(test_pii_false_positives),
        cmocka_unit_test(test_wire_anthropic_request),
        cmocka_unit_test(test_wire_openai_request),
        cmocka_unit_test(test_wire_responses),
        cmocka_unit_test(test_wire_anthropic_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
