/* oai_write.c — write OpenAI-shaped JSON: errors, chat and completions
 * responses, stream chunks (SSE), usage and logprobs; the two OpenAI writers
 * of req.h (oai_chat_writer, oai_cmpl_writer).
 *
 * JSON is written by hand into an sbuf rather than through cJSON: model output
 * is a byte string that may contain NUL or half a UTF-8 character (a token's
 * piece), which a C-string JSON library cannot represent, and the streaming
 * path writes one small object per token where building a tree would be the
 * dominant cost. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

/* ---- errors ---------------------------------------------------------------- */

static void json_cstr(sbuf *b, const char *s) { oai_json_str(b, s, strlen(s)); }

static void json_cstr_or_null(sbuf *b, const char *s) {
    if (s && *s) json_cstr(b, s);
    else sbuf_puts(b, "null");
}

static void error_obj(sbuf *b, const srv_error *e) {
    sbuf_puts(b, "{\"error\":{\"message\":");
    json_cstr(b, e->msg);
    sbuf_puts(b, ",\"type\":");
    json_cstr_or_null(b, e->type);
    sbuf_puts(b, ",\"param\":");
    json_cstr_or_null(b, e->param);
    sbuf_puts(b, ",\"code\":");
    json_cstr_or_null(b, e->code);
    sbuf_puts(b, "}}");
}

char *oai_error_json(const srv_error *e) {
    sbuf b = {0};
    error_obj(&b, e);
    return sbuf_take(&b);
}

/* ---- scalars ----------------------------------------------------------------- */

void oai_json_str(sbuf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    sbuf_reserve(b, n + 2);
    sbuf_add(b, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
                i++;
                continue;
            }
            sbuf_add(b, s + run, i - run);
            char esc[8];
            switch (c) {
            case '"': sbuf_add(b, "\\\"", 2); break;
            case '\\': sbuf_add(b, "\\\\", 2); break;
            case '\n': sbuf_add(b, "\\n", 2); break;
            case '\r': sbuf_add(b, "\\r", 2); break;
            case '\t': sbuf_add(b, "\\t", 2); break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                sbuf_add(b, esc, 6);
            }
            i++;
            run = i;
            continue;
        }
        uint32_t cp;
        size_t k = sw_utf8_decode((const char *)s + i, n - i, &cp);
        if (k) {
            i += k;
            continue;
        }
        sbuf_add(b, s + run, i - run);
        sbuf_add(b, "\xEF\xBF\xBD", 3); /* U+FFFD for a stray byte */
        i++;
        run = i;
    }
    sbuf_add(b, s + run, n - run);
    sbuf_add(b, "\"", 1);
}

void oai_json_logprob(sbuf *b, float lp) {
    if (!isfinite(lp) || lp < -9999.0f) sbuf_puts(b, "-9999.0");
    else sbuf_printf(b, "%.6g", (double)lp);
}

/* ---- logprobs ----------------------------------------------------------------- */

/* The bytes of token id's piece; control tokens are rendered (an alternative
 * may be "</s>"). Returns a pointer to buf or to *heap (caller frees *heap). */
static const char *piece(const sw_tokenizer *tok, int32_t id, char *buf, size_t cap,
                         char **heap, size_t *len) {
    *heap = NULL;
    size_t need = sw_token_to_piece(tok, id, true, buf, cap);
    if (need <= cap) {
        *len = need;
        return buf;
    }
    *heap = malloc(need);
    if (!*heap) {
        *len = 0;
        return buf;
    }
    *len = sw_token_to_piece(tok, id, true, *heap, need);
    return *heap;
}

static void chat_lp_entry(sbuf *b, const sw_tokenizer *tok, int32_t id, float lp) {
    char buf[128], *heap;
    size_t len;
    const char *p = piece(tok, id, buf, sizeof buf, &heap, &len);
    sbuf_puts(b, "{\"token\":");
    oai_json_str(b, p, len);
    sbuf_puts(b, ",\"logprob\":");
    oai_json_logprob(b, lp);
    sbuf_puts(b, ",\"bytes\":[");
    for (size_t i = 0; i < len; i++) sbuf_printf(b, i ? ",%u" : "%u", (unsigned char)p[i]);
    sbuf_puts(b, "]");
    free(heap);
}

static void chat_logprobs(sbuf *b, const sw_tokenizer *tok, const sw_token_info *toks, size_t n) {
    sbuf_puts(b, "{\"content\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_puts(b, ",");
        chat_lp_entry(b, tok, toks[i].id, toks[i].logprob);
        sbuf_puts(b, ",\"top_logprobs\":[");
        for (int32_t j = 0; j < toks[i].n_top && j < SW_MAX_TOP_LOGPROBS; j++) {
            if (j) sbuf_puts(b, ",");
            chat_lp_entry(b, tok, toks[i].top_ids[j], toks[i].top_logprobs[j]);
            sbuf_puts(b, "}");
        }
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "],\"refusal\":null}");
}

static void cmpl_logprobs(sbuf *b, const sw_tokenizer *tok, const sw_token_info *toks, size_t n,
                       size_t *offset) {
    char buf[128], *heap;
    size_t len;
    sbuf_puts(b, "{\"tokens\":[");
    for (size_t i = 0; i < n; i++) {
        const char *p = piece(tok, toks[i].id, buf, sizeof buf, &heap, &len);
        if (i) sbuf_puts(b, ",");
        oai_json_str(b, p, len);
        free(heap);
    }
    sbuf_puts(b, "],\"token_logprobs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_puts(b, ",");
        oai_json_logprob(b, toks[i].logprob);
    }
    sbuf_puts(b, "],\"top_logprobs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_puts(b, ",");
        sbuf_puts(b, "{");
        /* A dict keyed by token text: two ids with the same text would
         * collide, so keep the first (more likely) one. */
        int32_t seen_n = 0;
        char seen[SW_MAX_TOP_LOGPROBS][48];
        for (int32_t j = 0; j < toks[i].n_top && j < SW_MAX_TOP_LOGPROBS; j++) {
            const char *p = piece(tok, toks[i].top_ids[j], buf, sizeof buf, &heap, &len);
            bool dup = false;
            for (int32_t k = 0; k < seen_n && !dup; k++)
                dup = strlen(seen[k]) == len && len < sizeof seen[k] && !memcmp(seen[k], p, len);
            if (!dup) {
                if (seen_n) sbuf_puts(b, ",");
                oai_json_str(b, p, len);
                sbuf_puts(b, ":");
                oai_json_logprob(b, toks[i].top_logprobs[j]);
                if (len < sizeof seen[0] && !memchr(p, '\0', len)) {
                    memcpy(seen[seen_n], p, len);
                    seen[seen_n][len] = '\0';
                } else {
                    seen[seen_n][0] = '\0';
                }
                seen_n++;
            }
            free(heap);
        }
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "],\"text_offset\":[");
    for (size_t i = 0; i < n; i++) {
        sbuf_printf(b, i ? ",%zu" : "%zu", *offset);
        /* Offsets count the bytes the client sees, and control tokens render
         * to nothing in the text. */
        *offset += sw_token_to_piece(tok, toks[i].id, false, buf, 0);
    }
    sbuf_puts(b, "]}");
}

static void usage_field(sbuf *b, const sw_usage *u) {
    sbuf_printf(b,
                "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens,
                u->cached_prompt_tokens);
}

/* ---- objects -------------------------------------------------------------------- */

static const char *finish_str(srv_finish f) {
    switch (f) {
    case SRV_FINISH_LENGTH: return "length";
    case SRV_FINISH_TOOL_CALLS: return "tool_calls";
    case SRV_FINISH_CONTENT_FILTER: return "content_filter";
    default: return "stop";
    }
}

static void meta_head(sbuf *b, const srv_out *o, const char *object) {
    sbuf_puts(b, "{\"id\":");
    json_cstr(b, o->id);
    sbuf_printf(b, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":", object, o->created);
    json_cstr(b, o->model);
    sbuf_puts(b, ",\"system_fingerprint\":");
    json_cstr(b, o->fingerprint);
    if (o->spillway) {
        sbuf_puts(b, ",\"spillway\":");
        sbuf_puts(b, o->spillway);
    }
}

static void finish_field(sbuf *b, const char *finish) {
    sbuf_puts(b, ",\"finish_reason\":");
    if (finish) sbuf_printf(b, "\"%s\"", finish);
    else sbuf_puts(b, "null");
}

/* The end of a whole response: the choice's finish_reason, usage. */
static void response_tail(sbuf *b, const srv_result *r) {
    finish_field(b, finish_str(r->finish));
    sbuf_puts(b, "}],");
    usage_field(b, &r->usage);
    sbuf_puts(b, "}");
}

/* The logprobs of one streamed token as a JSON value, or NULL. */
static char *token_logprobs(srv_out *o, const sw_token_info *tok, bool chat) {
    if (!o->logprobs || !tok) return NULL;
    sbuf lp = {0};
    if (chat) chat_logprobs(&lp, o->tok, tok, 1);
    else cmpl_logprobs(&lp, o->tok, tok, 1, &o->text_offset);
    return sbuf_take(&lp);
}

/* One chat.completion.chunk as an SSE event. delta_role: include "role":
 * "assistant"; text may be NULL (no content key); tool_call: a prepared
 * "tool_calls" array or NULL; finish NULL -> null. The "spillway" object
 * rides on the first chunk only. */
static void chat_chunk(srv_out *o, sbuf *b, bool delta_role, const char *text, size_t text_len,
                       const char *tool_calls, const char *logprobs_json, const char *finish) {
    sbuf_puts(b, "data: ");
    meta_head(b, o, "chat.completion.chunk");
    o->spillway = NULL;
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":{");
    bool comma = false;
    if (delta_role) {
        sbuf_puts(b, "\"role\":\"assistant\"");
        comma = true;
    }
    if (text) {
        if (comma) sbuf_puts(b, ",");
        sbuf_puts(b, "\"content\":");
        oai_json_str(b, text, text_len);
        comma = true;
    }
    if (tool_calls) {
        if (comma) sbuf_puts(b, ",");
        sbuf_puts(b, "\"tool_calls\":");
        sbuf_puts(b, tool_calls);
    }
    sbuf_puts(b, "},\"logprobs\":");
    sbuf_puts(b, logprobs_json ? logprobs_json : "null");
    finish_field(b, finish);
    sbuf_puts(b, "}]");
    if (o->include_usage) sbuf_puts(b, ",\"usage\":null");
    sbuf_puts(b, "}\n\n");
}

static void cmpl_chunk(srv_out *o, sbuf *b, const char *text, size_t text_len,
                       const char *logprobs_json, const char *finish) {
    sbuf_puts(b, "data: ");
    meta_head(b, o, "text_completion");
    o->spillway = NULL;
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"text\":");
    oai_json_str(b, text ? text : "", text ? text_len : 0);
    sbuf_puts(b, ",\"logprobs\":");
    sbuf_puts(b, logprobs_json ? logprobs_json : "null");
    finish_field(b, finish);
    sbuf_puts(b, "}]");
    if (o->include_usage) sbuf_puts(b, ",\"usage\":null");
    sbuf_puts(b, "}\n\n");
}

/* The final usage chunk of stream_options.include_usage: empty choices. */
static void usage_chunk(srv_out *o, sbuf *b, bool chat, const sw_usage *u) {
    sbuf_puts(b, "data: ");
    meta_head(b, o, chat ? "chat.completion.chunk" : "text_completion");
    sbuf_puts(b, ",\"choices\":[],");
    usage_field(b, u);
    sbuf_puts(b, "}\n\n");
}

static void sse_done(sbuf *b) { sbuf_puts(b, "data: [DONE]\n\n"); }

/* "tool_calls": [...] entries (whole, or one streamed part). */
static void tool_call_obj(sbuf *b, long index, const char *id, const char *name, const char *args,
                          size_t args_len) {
    sbuf_puts(b, "{");
    if (index >= 0) sbuf_printf(b, "\"index\":%ld,", index);
    if (id) {
        sbuf_puts(b, "\"id\":");
        json_cstr(b, id);
        sbuf_puts(b, ",\"type\":\"function\",");
    }
    sbuf_puts(b, "\"function\":{");
    if (name) {
        sbuf_puts(b, "\"name\":");
        json_cstr(b, name);
        sbuf_puts(b, ",");
    }
    sbuf_puts(b, "\"arguments\":");
    oai_json_str(b, args ? args : "", args ? args_len : 0);
    sbuf_puts(b, "}}");
}

/* ---- the chat writer ---- */

static void chat_start(srv_out *o, sbuf *b) { chat_chunk(o, b, true, "", 0, NULL, NULL, NULL); }

static void chat_text(srv_out *o, sbuf *b, const char *text, size_t len, const sw_token_info *tok) {
    char *lp = token_logprobs(o, tok, true);
    chat_chunk(o, b, false, text, len, NULL, lp, NULL);
    free(lp);
}

static void chat_tool_call(srv_out *o, sbuf *b, size_t index, const char *id, const char *name,
                           const char *args, size_t args_len) {
    sbuf tc = {0};
    sbuf_puts(&tc, "[");
    tool_call_obj(&tc, (long)index, id, name, args, args_len);
    sbuf_puts(&tc, "]");
    if (tc.oom) b->oom = true;
    else chat_chunk(o, b, false, NULL, 0, tc.p, NULL, NULL);
    sbuf_free(&tc);
}

static void chat_finish(srv_out *o, sbuf *b, const srv_result *r) {
    chat_chunk(o, b, false, NULL, 0, NULL, NULL, finish_str(r->finish));
    if (o->include_usage) usage_chunk(o, b, true, &r->usage);
    sse_done(b);
}

static void stream_error(srv_out *o, sbuf *b, const srv_error *e) {
    sbuf_puts(b, "data: ");
    error_obj(b, e);
    sbuf_puts(b, "\n\n");
    sse_done(b);
}

static void chat_response(srv_out *o, sbuf *b, const srv_result *r) {
    meta_head(b, o, "chat.completion");
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (r->n_calls && !r->text_len) sbuf_puts(b, "null");
    else oai_json_str(b, r->text, r->text_len);
    if (r->n_calls) {
        sbuf_puts(b, ",\"tool_calls\":[");
        for (size_t i = 0; i < r->n_calls; i++) {
            if (i) sbuf_puts(b, ",");
            const srv_tool_call *c = &r->calls[i];
            tool_call_obj(b, -1, c->id, c->name, c->arguments, strlen(c->arguments));
        }
        sbuf_puts(b, "]");
    }
    sbuf_puts(b, ",\"refusal\":null},\"logprobs\":");
    if (o->logprobs) chat_logprobs(b, o->tok, r->toks, r->n_toks);
    else sbuf_puts(b, "null");
    response_tail(b, r);
}

const srv_writer oai_chat_writer = {
    .id_prefix = "chatcmpl-",
    .stream_start = chat_start,
    .stream_text = chat_text,
    .stream_tool_call = chat_tool_call,
    .stream_finish = chat_finish,
    .stream_error = stream_error,
    .response = chat_response,
    .error_json = oai_error_json,
};

/* ---- the completions writer ---- */

/* A completions stream opens with its echoed prompt, or with its first text. */
static void cmpl_start(srv_out *o, sbuf *b) {
    if (o->echo_len) cmpl_chunk(o, b, o->echo, o->echo_len, NULL, NULL);
}

static void cmpl_text(srv_out *o, sbuf *b, const char *text, size_t len, const sw_token_info *tok) {
    char *lp = token_logprobs(o, tok, false);
    cmpl_chunk(o, b, text, len, lp, NULL);
    free(lp);
}

/* Completions have no tool calls: the core never asks for them (no tools on
 * this endpoint); should it, the arguments are text. */
static void cmpl_tool_call(srv_out *o, sbuf *b, size_t index, const char *id, const char *name,
                           const char *args, size_t args_len) {
    cmpl_chunk(o, b, args, args_len, NULL, NULL);
}

static void cmpl_finish(srv_out *o, sbuf *b, const srv_result *r) {
    cmpl_chunk(o, b, "", 0, NULL, finish_str(r->finish));
    if (o->include_usage) usage_chunk(o, b, false, &r->usage);
    sse_done(b);
}

static void cmpl_response(srv_out *o, sbuf *b, const srv_result *r) {
    meta_head(b, o, "text_completion");
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"text\":");
    sbuf full = {0};
    if (o->echo) sbuf_add(&full, o->echo, o->echo_len);
    sbuf_add(&full, r->text, r->text_len);
    oai_json_str(b, full.p ? full.p : "", full.n);
    if (full.oom) b->oom = true;
    sbuf_free(&full);
    sbuf_puts(b, ",\"logprobs\":");
    if (o->logprobs) {
        size_t off = o->echo_len;
        cmpl_logprobs(b, o->tok, r->toks, r->n_toks, &off);
    } else {
        sbuf_puts(b, "null");
    }
    response_tail(b, r);
}

const srv_writer oai_cmpl_writer = {
    .id_prefix = "cmpl-",
    .stream_start = cmpl_start,
    .stream_text = cmpl_text,
    .stream_tool_call = cmpl_tool_call,
    .stream_finish = cmpl_finish,
    .stream_error = stream_error,
    .response = cmpl_response,
    .error_json = oai_error_json,
};
