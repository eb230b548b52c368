/* fuzz_toolcall.c — libFuzzer target for the server's tool-call reader
 * (tools/server/toolcall.c), which turns a model's answer into content text
 * and tool calls, incrementally. Byte 0 picks the syntax (Hermes <tool_call>
 * blocks, Llama 3's bare JSON, Mistral's [TOOL_CALLS][...] list or
 * [TOOL_CALLS]name[ARGS]{...}: the server takes it from its chat template's
 * text), whether the answer may hold text, and seeds the chunk sizes; the
 * rest is the answer. Checks: no crash; fed whole or in random chunks, the text and the
 * calls (names, arguments) come out the same; every reported call's
 * arguments parse as a JSON object; the text is never longer than the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "server.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

typedef struct seen {
    sbuf text;
    sbuf calls; /* "name\0args\0" per call part, as the sink heard them */
} seen;

static void on_text(void *user, const char *t, size_t n) {
    sbuf_add(&((seen *)user)->text, t, n);
}

static void on_call(void *user, size_t index, const char *id, const char *name, const char *args, size_t n) {
    seen *s = user;
    sbuf_printf(&s->calls, "%zu:", index);
    if (name) sbuf_printf(&s->calls, "%s(", name);
    CHECK(!id == !name);
    sbuf_add(&s->calls, args, n);
}

static void run(const srv *sv, bool calls_only, const char *text, size_t n, uint32_t seed, seen *out,
                char **args_out) {
    srv_tool_parser *p = srv_tool_parser_create(sv, calls_only, "call_");
    CHECK(p);
    srv_tool_sink sink = {out, on_text, on_call};
    for (size_t off = 0; off < n;) {
        size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 11 : n - off;
        if (k > n - off) k = n - off;
        srv_tool_parser_feed(p, text + off, k, &sink);
        off += k;
    }
    srv_tool_parser_finish(p, &sink);
    const srv_tool_call *calls;
    size_t nc = srv_tool_parser_calls(p, &calls);
    sbuf all = {0};
    for (size_t i = 0; i < nc; i++) {
        cJSON *j = cJSON_Parse(calls[i].arguments);
        CHECK(cJSON_IsObject(j));
        cJSON_Delete(j);
        sbuf_printf(&all, "%s(%s)", calls[i].name, calls[i].arguments);
    }
    *args_out = sbuf_take(&all);
    srv_tool_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    /* the reader only asks for the chat template's text */
    static sw_chat_template *tmpl[4];
    static const char *const src[4] = {"<|im_start|>", "<|start_header_id|>", "[TOOL_CALLS]",
                                       "[TOOL_CALLS][ARGS]"};
    static srv sv;
    int k = data[0] & 3;
    bool calls_only = data[0] & 4;
    if (!tmpl[k]) CHECK(sw_chat_template_parse(src[k], strlen(src[k]), "fuzz", &tmpl[k], NULL) == SW_OK);
    sv.chat = tmpl[k];
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    seen a = {0}, b = {0};
    char *ca = NULL, *cb = NULL;
    run(&sv, calls_only, text, n, 0, &a, &ca);
    run(&sv, calls_only, text, n, (uint32_t)data[0] * 2654435761u + 1, &b, &cb);
    CHECK(a.text.n == b.text.n && (!a.text.n || !memcmp(a.text.p, b.text.p, a.text.n)));
    CHECK(a.text.n <= n);
    CHECK(ca && cb && !strcmp(ca, cb));
    /* the streamed call parts add up to the same calls (pieces differ) */
    free(ca);
    free(cb);
    sbuf_free(&a.text);
    sbuf_free(&b.text);
    sbuf_free(&a.calls);
    sbuf_free(&b.calls);
    return 0;
}
