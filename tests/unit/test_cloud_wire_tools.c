/* test_cloud_wire_tools.c — tool calling through the cloud wire mapping
 * (fallback/cloud_wire.h): an OpenAI chat request with tools, an assistant's
 * tool_calls and "tool" messages becomes Anthropic's tools, tool_use and
 * tool_result blocks (and tool_choice each way); an Anthropic answer's
 * tool_use blocks become OpenAI tool_calls, streamed (input_json_delta parts
 * in order, with their index) and whole, with the stop sequence kept; an
 * OpenAI stream's tool_calls parts are passed on; a Messages body passes
 * through sw_wire_anthropic_native untouched but for model, stream and the
 * spillway extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cloud_wire.h"
#include "sse.h"

static cJSON *get(const cJSON *o, const char *path) {
    /* "a.b.0.c": object keys and array indexes */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(cur, atoi(tok))
                                           : cJSON_GetObjectItemCaseSensitive(cur, tok);
    return (cJSON *)cur;
}

static const char *str(const cJSON *o, const char *path) {
    const cJSON *v = get(o, path);
    if (!cJSON_IsString(v)) fail_msg("%s is not a string", path);
    return v->valuestring;
}

static void test_request_tools(void **state) {
    (void)state;
    sw_err err = {{0}};
    cJSON *req = cJSON_Parse(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
        "\"w\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
        "\"parallel_tool_calls\":false}");
    assert_non_null(req);
    cJSON *a = sw_wire_anthropic_request(req, "claude", 100, false, &err);
    if (!a) fail_msg("%s", err.msg);
    cJSON *msgs = get(a, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    assert_string_equal(str(msgs, "0.content"), "weather?");
    assert_string_equal(str(msgs, "1.role"), "assistant");
    assert_string_equal(str(msgs, "1.content.0.type"), "tool_use");
    assert_string_equal(str(msgs, "1.content.0.id"), "call_1");
    assert_string_equal(str(msgs, "1.content.0.input.city"), "Paris");
    /* the tool's answer and the next user text share one user turn */
    assert_string_equal(str(msgs, "2.role"), "user");
    assert_string_equal(str(msgs, "2.content.0.type"), "tool_result");
    assert_string_equal(str(msgs, "2.content.0.tool_use_id"), "call_1");
    assert_string_equal(str(msgs, "2.content.0.content"), "sunny");
    assert_string_equal(str(msgs, "2.content.1.text"), "thanks");
    assert_string_equal(str(a, "tools.0.name"), "get_weather");
    assert_string_equal(str(a, "tools.0.input_schema.properties.city.type"), "string");
    assert_string_equal(str(a, "tool_choice.type"), "tool");
    assert_string_equal(str(a, "tool_choice.name"), "get_weather");
    assert_true(cJSON_IsTrue(get(a, "tool_choice.disable_parallel_tool_use")));
    cJSON_Delete(a);
    /* "required" -> any; arguments that are not an object are refused by name */
    cJSON_ReplaceItemInObject(req, "tool_choice", cJSON_CreateString("required"));
    a = sw_wire_anthropic_request(req, "claude", 100, false, &err);
    assert_string_equal(str(a, "tool_choice.type"), "any");
    cJSON_Delete(a);
    cJSON *args = get(req, "messages.1.tool_calls.0.function");
    cJSON_ReplaceItemInObject(args, "arguments", cJSON_CreateString("[1]"));
    assert_null(sw_wire_anthropic_request(req, "claude", 100, false, &err));
    assert_non_null(strstr(err.msg, "messages[1].tool_calls[0].function.arguments"));
    cJSON_Delete(req);
}

static void test_native(void **state) {
    (void)state;
    sw_err err = {{0}};
    const char *body = "{\"model\":\"mine\",\"max_tokens\":5,\"stream\":false,\"spillway\":{},"
                       "\"system\":[{\"type\":\"text\",\"text\":\"s\",\"cache_control\":{\"type\":"
                       "\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                       "\"text\",\"text\":\"hi\"}]}],\"top_k\":3}";
    cJSON *req = cJSON_Parse(body);
    cJSON *n = sw_wire_anthropic_native(req, "claude-x", true, &err);
    assert_string_equal(str(n, "model"), "claude-x");
    assert_true(cJSON_IsTrue(get(n, "stream")));
    assert_null(get(n, "spillway"));
    /* everything else is the client's, untouched */
    cJSON_DeleteItemFromObject(req, "model");
    cJSON_DeleteItemFromObject(req, "stream");
    cJSON_DeleteItemFromObject(req, "spillway");
    cJSON_DeleteItemFromObject(n, "model");
    cJSON_DeleteItemFromObject(n, "stream");
    assert_true(cJSON_Compare(req, n, true));
    cJSON_Delete(n);
    cJSON_Delete(req);
}

static void test_answer_tools(void **state) {
    (void)state;
    sw_err err = {{0}};
    cJSON *msg = cJSON_Parse("{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"c\",\"content\":["
                             "{\"type\":\"text\",\"text\":\"ok \"},{\"type\":\"tool_use\",\"id\":"
                             "\"toolu_1\",\"name\":\"f\",\"input\":{\"a\":[1,2]}}],\"stop_reason\":"
                             "\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}");
    cJSON *o = sw_wire_anthropic_response(msg, &err);
    assert_non_null(o);
    assert_string_equal(str(o, "choices.0.finish_reason"), "tool_calls");
    assert_string_equal(str(o, "choices.0.message.content"), "ok ");
    assert_string_equal(str(o, "choices.0.message.tool_calls.0.id"), "toolu_1");
    assert_string_equal(str(o, "choices.0.message.tool_calls.0.function.name"), "f");
    assert_string_equal(str(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"a\":[1,2]}");
    cJSON_Delete(o);
    cJSON_Delete(msg);
    msg = cJSON_Parse("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],"
                      "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"##\"}");
    o = sw_wire_anthropic_response(msg, &err);
    assert_string_equal(str(o, "choices.0.finish_reason"), "stop");
    assert_string_equal(str(o, "choices.0.stop_sequence"), "##");
    assert_null(get(o, "choices.0.message.tool_calls"));
    cJSON_Delete(o);
    cJSON_Delete(msg);
}

typedef struct parts {
    char log[1024]; /* "T:text|C0:id:name:args|F:finish:stop" in order */
} parts;

static sw_status on_chunk(void *user, const sw_cloud_chunk *c, sw_err *err) {
    (void)err;
    parts *p = user;
    size_t n = strlen(p->log);
    char *o = p->log + n;
    size_t cap = sizeof p->log - n;
    if (c->content && c->content[0]) snprintf(o, cap, "T:%s|", c->content);
    else if (c->tool)
        snprintf(o, cap, "C%d:%s:%s:%s|", c->tool_index, c->tool_id ? c->tool_id : "",
                 c->tool_name ? c->tool_name : "", c->tool_args ? c->tool_args : "");
    else if (c->finish_reason)
        snprintf(o, cap, "F:%s:%s|", c->finish_reason, c->stop_sequence ? c->stop_sequence : "");
    return SW_OK;
}

static void feed(sw_provider prov, const char *stream, parts *p) {
    sw_err err = {{0}};
    memset(p, 0, sizeof *p);
    sw_wire_stream ws;
    sw_wire_stream_init(&ws, prov, on_chunk, p);
    sw_sse_parser *sp = NULL;
    assert_int_equal(sw_sse_create(0, &sp, &err), SW_OK);
    if (sw_sse_feed(sp, stream, strlen(stream), sw_wire_stream_event, &ws, &err) != SW_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(sw_sse_finish(sp, &err), SW_OK);
    assert_int_equal(sw_wire_stream_end(&ws, &err), SW_OK);
    sw_sse_free(sp);
}

#define EV(name, json) "event: " name "\ndata: " json "\n\n"

static void test_stream_tools(void **state) {
    (void)state;
    parts p;
    feed(SW_PROVIDER_ANTHROPIC,
         EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}")
         EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
         EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hm\"}}")
         EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
         EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{}}}")
         EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}")
         EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}")
         EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}")
         EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"g\",\"input\":{}}}")
         EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}")
         EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}")
         EV("message_stop", "{\"type\":\"message_stop\"}"),
         &p);
    assert_string_equal(p.log, "T:hm|C0:t1:f:|C0:::{\"a\":|C0:::1}|C1:t2:g:|F:tool_calls:|");
    feed(SW_PROVIDER_ANTHROPIC,
         EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}")
         EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
         EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}")
         EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"END\"},\"usage\":{\"output_tokens\":1}}")
         EV("message_stop", "{\"type\":\"message_stop\"}"),
         &p);
    assert_string_equal(p.log, "T:x|F:stop:END|");
    feed(SW_PROVIDER_OPENAI,
         "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
         "\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
         "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n"
         "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
         "data: [DONE]\n\n",
         &p);
    assert_string_equal(p.log, "C0:call_1:f:|C0:::{}|F:tool_calls:|");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_tools),
        cmocka_unit_test(test_native),
        cmocka_unit_test(test_answer_tools),
        cmocka_unit_test(test_stream_tools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
