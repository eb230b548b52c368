/* fuzz_anthropic.c — libFuzzer target for the server's Anthropic Messages
 * request parser (tools/server/anthropic_parse.c) and the Anthropic writer:
 * the first byte picks /v1/messages or /v1/messages/count_tokens; the rest is
 * the body. An accepted request must satisfy what the core relies on (roles
 * user/assistant, blocks with their fields, every tool_result answering a
 * tool_use of the assistant message before it, a named tool_choice naming a
 * given tool, max_tokens >= 1 unless counting) and render through the writer
 * (a whole message and a stream with text and a tool call must be JSON); a
 * rejected one must carry a 4xx and an error body that is valid JSON.
 * Seeds: corpus/anthropic/. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anthropic.h"

static volatile uint64_t g_sink;

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) __builtin_trap();                                                        \
    } while (0)

static bool answers_tool_use(const srv_msg *prev, const char *id) {
    for (size_t i = 0; prev && i < prev->n_blocks; i++)
        if (prev->blocks[i].type == SRV_BLOCK_TOOL_USE && !strcmp(prev->blocks[i].id, id))
            return true;
    return false;
}

static void check_request(const srv_request *r, bool counting) {
    CHECK(r->wire == SRV_WIRE_ANTHROPIC && r->raw && r->n_msgs > 0);
    CHECK(counting || r->max_tokens >= 1);
    for (size_t i = 0; i < r->n_msgs; i++) {
        const srv_msg *m = &r->msgs[i];
        bool user = !strcmp(m->role, "user");
        CHECK(user || !strcmp(m->role, "assistant"));
        const srv_msg *prev = i > 0 && !strcmp(r->msgs[i - 1].role, "assistant") ? &r->msgs[i - 1]
                                                                               : NULL;
        for (size_t j = 0; j < m->n_blocks; j++) {
            const srv_block *b = &m->blocks[j];
            switch (b->type) {
            case SRV_BLOCK_TEXT: CHECK(b->text); break;
            case SRV_BLOCK_TOOL_USE: {
                CHECK(!user && b->id && b->name && b->input);
                cJSON *in = cJSON_Parse(b->input);
                CHECK(cJSON_IsObject(in));
                cJSON_Delete(in);
                break;
            }
            case SRV_BLOCK_TOOL_RESULT:
                CHECK(user && b->id && b->text && answers_tool_use(prev, b->id));
                break;
            }
        }
    }
    CHECK(!r->continue_final || !strcmp(r->msgs[r->n_msgs - 1].role, "assistant"));
    for (size_t i = 0; i < r->n_tools; i++)
        CHECK(r->tools[i].name && cJSON_IsObject(r->tools[i].parameters));
    if (r->tool_choice == SRV_TOOL_NAMED) {
        bool found = false;
        for (size_t i = 0; i < r->n_tools; i++) found |= !strcmp(r->tools[i].name, r->tool_name);
        CHECK(found);
    }
    for (int i = 0; i < r->n_stop; i++) CHECK(r->stop[i] && r->stop[i][0]);
    CHECK(r->format.type != SRV_FORMAT_JSON_SCHEMA || cJSON_IsObject(r->format.schema));
    const char **texts = NULL;
    size_t n = 0;
    CHECK(srv_request_texts(r, &texts, &n));
    for (size_t i = 0; i < n; i++) g_sink += strlen(texts[i]);
    free(texts);
}

/* The writer's output for this request must be JSON (whole) and SSE events
 * whose data are JSON (stream). */
static void check_writer(const srv_request *r) {
    srv_out o = {.w = &anthropic_writer, .id = "msg_x", .model = r->model ? r->model : "m",
                 .fingerprint = "fp", .spillway = "{\"route\":\"local\"}", .block = -1};
    const char *text = r->n_msgs && r->msgs[0].n_blocks && r->msgs[0].blocks[0].text
                           ? r->msgs[0].blocks[0].text
                           : "";
    srv_tool_call call = {"toolu_1", "f", "{\"a\":1}"};
    srv_result res = {.finish = r->n_stop ? SRV_FINISH_STOP : SRV_FINISH_TOOL_CALLS,
                      .stop_sequence = r->n_stop ? r->stop[0] : NULL,
                      .text = text,
                      .text_len = strlen(text),
                      .calls = &call,
                      .n_calls = 1};
    sbuf b = {0};
    o.w->response(&o, &b, &res);
    cJSON *j = cJSON_Parse(b.p);
    CHECK(cJSON_IsObject(j));
    cJSON_Delete(j);
    sbuf_free(&b);
    o.w->stream_start(&o, &b);
    o.w->stream_text(&o, &b, text, strlen(text), NULL);
    o.w->stream_tool_call(&o, &b, 0, "toolu_1", "f", "{\"a\":", 5);
    o.w->stream_tool_call(&o, &b, 0, NULL, NULL, "1}", 2);
    o.w->stream_finish(&o, &b, &res);
    CHECK(!b.oom && b.p);
    for (char *line = strtok(b.p, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "data: ", 6) != 0) continue;
        cJSON *d = cJSON_Parse(line + 6);
        CHECK(cJSON_IsObject(d));
        cJSON_Delete(d);
    }
    sbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool counting = data[0] & 1;
    srv_request r;
    srv_error e;
    memset(&e, 0, sizeof e);
    if (!anthropic_parse_request((const char *)data + 1, size - 1, counting, &r, &e)) {
        CHECK(e.status >= 400 && e.status < 600);
        CHECK(e.type && memchr(e.msg, 0, sizeof e.msg) != NULL && e.msg[0]);
        char *s = anthropic_error_json(&e);
        cJSON *j = s ? cJSON_Parse(s) : NULL;
        CHECK(cJSON_IsObject(j));
        cJSON_Delete(j);
        free(s);
        return 0;
    }
    check_request(&r, counting);
    check_writer(&r);
    srv_request_free(&r);
    CHECK(r.raw == NULL && r.msgs == NULL);
    return 0;
}
