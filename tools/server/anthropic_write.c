/* anthropic_write.c — Anthropic-shaped JSON: errors, whole messages and the
 * streaming event sequence (message_start, content_block_start, ping,
 * content_block_delta with text_delta / input_json_delta, content_block_stop,
 * message_delta with the stop reason and usage, message_stop), as the
 * anthropic_writer of req.h. Written by hand like oai_write.c, for the same
 * reasons (model text is bytes; one small object per token). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anthropic.h"
#include "oai.h"

/* ---- errors ---------------------------------------------------------------------- */

const char *anthropic_error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static void error_obj(sbuf *b, const srv_error *e) {
    const char *t = anthropic_error_type(e->status);
    sbuf_printf(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", t);
    oai_json_str(b, e->msg, strlen(e->msg));
    sbuf_puts(b, "}}");
}

char *anthropic_error_json(const srv_error *e) {
    sbuf b = {0};
    error_obj(&b, e);
    return sbuf_take(&b);
}

/* ---- pieces ---------------------------------------------------------------------- */

const char *anthropic_stop_reason(const srv_result *r) {
    switch (r->finish) {
    case SRV_FINISH_LENGTH: return "max_tokens";
    case SRV_FINISH_TOOL_CALLS: return "tool_use";
    case SRV_FINISH_CONTENT_FILTER: return "refusal";
    default: return r->stop_sequence && r->stop_sequence[0] ? "stop_sequence" : "end_turn";
    }
}

static void json_cstr(sbuf *b, const char *s) { oai_json_str(b, s, strlen(s)); }

/* "stop_reason":..,"stop_sequence":.. */
static void stop_fields(sbuf *b, const srv_result *r) {
    sbuf_printf(b, "\"stop_reason\":\"%s\",\"stop_sequence\":", anthropic_stop_reason(r));
    if (r->finish == SRV_FINISH_STOP && r->stop_sequence && r->stop_sequence[0])
        json_cstr(b, r->stop_sequence);
    else
        sbuf_puts(b, "null");
}

/* {"id":..,"type":"message","role":"assistant","model":.. (the head of a
 * message object, without its closing brace). */
static void message_head(sbuf *b, const srv_out *o) {
    sbuf_puts(b, "{\"id\":");
    json_cstr(b, o->id);
    sbuf_puts(b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    json_cstr(b, o->model);
}

static void tool_use_block(sbuf *b, const char *id, const char *name, const char *input) {
    sbuf_puts(b, "{\"type\":\"tool_use\",\"id\":");
    json_cstr(b, id ? id : "");
    sbuf_puts(b, ",\"name\":");
    json_cstr(b, name ? name : "");
    sbuf_puts(b, ",\"input\":");
    /* the arguments are JSON already; anything else is sent as an empty object */
    cJSON *in = input ? cJSON_Parse(input) : NULL;
    sbuf_puts(b, cJSON_IsObject(in) ? input : "{}");
    cJSON_Delete(in);
    sbuf_puts(b, "}");
}

/* ---- streams ----------------------------------------------------------------------- */

static void event(sbuf *b, const char *name) { sbuf_printf(b, "event: %s\ndata: ", name); }

/* A pending "spillway" object rides on the next event: message_start, or,
 * when a probed stream's route is decided later, the next content_block_start
 * and the closing message_delta. */
static void spillway_field(srv_out *o, sbuf *b) {
    if (!o->spillway) return;
    sbuf_puts(b, ",\"spillway\":");
    sbuf_puts(b, o->spillway);
    o->spillway = NULL;
}

static void stream_start(srv_out *o, sbuf *b) {
    event(b, "message_start");
    sbuf_puts(b, "{\"type\":\"message_start\",\"message\":");
    message_head(b, o);
    sbuf_printf(b,
                ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
                "\"input_tokens\":%d,\"output_tokens\":0}",
                o->prompt_tokens);
    spillway_field(o, b);
    sbuf_puts(b, "}}\n\n");
    o->block = -1;
    o->n_blocks = 0;
}

static void block_stop(srv_out *o, sbuf *b) {
    if (o->block < 0) return;
    event(b, "content_block_stop");
    sbuf_printf(b, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", o->block);
    o->block = -1;
}

/* Open the next content block (closing the one before); a ping follows the
 * first, as Anthropic's streams do. */
static void block_start(srv_out *o, sbuf *b, const char *block_json, bool is_text) {
    block_stop(o, b);
    o->block = o->n_blocks++;
    o->block_is_text = is_text;
    event(b, "content_block_start");
    sbuf_printf(b, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":", o->block);
    sbuf_puts(b, block_json);
    spillway_field(o, b);
    sbuf_puts(b, "}\n\n");
    if (o->block == 0) {
        event(b, "ping");
        sbuf_puts(b, "{\"type\":\"ping\"}\n\n");
    }
}

static void stream_text(srv_out *o, sbuf *b, const char *text, size_t len,
                        const sw_token_info *tok) {
    if (len == 0) return;
    if (o->block < 0 || !o->block_is_text) block_start(o, b, "{\"type\":\"text\",\"text\":\"\"}", true);
    event(b, "content_block_delta");
    sbuf_printf(b, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":",
                o->block);
    oai_json_str(b, text, len);
    sbuf_puts(b, "}}\n\n");
}

static void stream_tool_call(srv_out *o, sbuf *b, size_t index, const char *id, const char *name,
                             const char *args, size_t args_len) {
    if (id || name || o->block < 0 || o->block_is_text) {
        sbuf blk = {0};
        tool_use_block(&blk, id, name, NULL);
        if (blk.oom) b->oom = true;
        else block_start(o, b, blk.p, false);
        sbuf_free(&blk);
    }
    if (!args_len) return;
    event(b, "content_block_delta");
    sbuf_printf(b, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                   "\"input_json_delta\",\"partial_json\":",
                o->block);
    oai_json_str(b, args, args_len);
    sbuf_puts(b, "}}\n\n");
}

static void stream_finish(srv_out *o, sbuf *b, const srv_result *r) {
    /* an answer without any content still has its (empty) text block, as
     * the whole message does */
    if (o->n_blocks == 0) block_start(o, b, "{\"type\":\"text\",\"text\":\"\"}", true);
    block_stop(o, b);
    event(b, "message_delta");
    sbuf_puts(b, "{\"type\":\"message_delta\",\"delta\":{");
    stop_fields(b, r);
    sbuf_printf(b, "},\"usage\":{\"input_tokens\":%d,\"output_tokens\":%d}",
                r->usage.prompt_tokens, r->usage.completion_tokens);
    spillway_field(o, b);
    sbuf_puts(b, "}\n\n");
    event(b, "message_stop");
    sbuf_puts(b, "{\"type\":\"message_stop\"}\n\n");
}

static void stream_error(srv_out *o, sbuf *b, const srv_error *e) {
    event(b, "error");
    error_obj(b, e);
    sbuf_puts(b, "\n\n");
}

/* ---- whole messages ------------------------------------------------------------------ */

static void response(srv_out *o, sbuf *b, const srv_result *r) {
    message_head(b, o);
    sbuf_puts(b, ",\"content\":[");
    bool text = r->text_len > 0 || r->n_calls == 0;
    if (text) {
        sbuf_puts(b, "{\"type\":\"text\",\"text\":");
        oai_json_str(b, r->text, r->text_len);
        sbuf_puts(b, "}");
    }
    for (size_t i = 0; i < r->n_calls; i++) {
        if (text || i) sbuf_puts(b, ",");
        tool_use_block(b, r->calls[i].id, r->calls[i].name, r->calls[i].arguments);
    }
    sbuf_puts(b, "],");
    stop_fields(b, r);
    sbuf_printf(b, ",\"usage\":{\"input_tokens\":%d,\"output_tokens\":%d}",
                r->usage.prompt_tokens, r->usage.completion_tokens);
    if (o->spillway) {
        sbuf_puts(b, ",\"spillway\":");
        sbuf_puts(b, o->spillway);
    }
    sbuf_puts(b, "}");
}

const srv_writer anthropic_writer = {
    .id_prefix = "msg_",
    .stream_start = stream_start,
    .stream_text = stream_text,
    .stream_tool_call = stream_tool_call,
    .stream_finish = stream_finish,
    .stream_error = stream_error,
    .response = response,
    .error_json = anthropic_error_json,
};
