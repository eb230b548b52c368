/* cloud_wire.c — OpenAI <-> Anthropic / OpenAI-compatible wire translation
 * (cloud_wire.h). Everything here is pure JSON work; no I/O. */
#include "cloud_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sw_provider_str(sw_provider p) {
    return p == SW_PROVIDER_ANTHROPIC ? "anthropic" : p == SW_PROVIDER_OPENAI ? "openai" : "?";
}

sw_status sw_provider_parse(const char *name, sw_provider *out, sw_err *err) {
    if (name && !strcmp(name, "anthropic")) *out = SW_PROVIDER_ANTHROPIC;
    else if (name && !strcmp(name, "openai")) *out = SW_PROVIDER_OPENAI;
    else
        return sw_err_set(err, SW_E_INVALID_ARG, "provider '%s': expected \"anthropic\" or \"openai\"",
                          name ? name : "(null)");
    return SW_OK;
}

/* ---- requests ------------------------------------------------------------------ */

/* Append text to a growing string (realloc); false on out-of-memory. */
static bool str_cat(char **s, const char *sep, const char *add) {
    size_t a = *s ? strlen(*s) : 0, b = strlen(add), c = *s && a ? strlen(sep) : 0;
    char *n = realloc(*s, a + b + c + 1);
    if (!n) return false;
    if (c) memcpy(n + a, sep, c);
    memcpy(n + a + c, add, b + 1);
    *s = n;
    return true;
}

/* The text of one message's content: a string or an array of text parts.
 * Returns a malloc'd string or NULL with err. */
static char *content_text(const cJSON *content, int idx, sw_err *err) {
    if (cJSON_IsString(content)) {
        char *s = strdup(content->valuestring);
        if (!s) sw_err_set(err, SW_E_NOMEM, "out of memory");
        return s;
    }
    if (!cJSON_IsArray(content)) {
        sw_err_set(err, SW_E_UNSUPPORTED,
                   "messages[%d].content: expected a string or an array of text parts", idx);
        return NULL;
    }
    char *s = strdup("");
    int k = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            sw_err_set(err, SW_E_UNSUPPORTED,
                       "messages[%d].content[%d].type: '%.32s' is not supported by the cloud "
                       "mapping (text parts only)", idx, k,
                       cJSON_IsString(type) ? type->valuestring : "?");
            free(s);
            return NULL;
        }
        if (!s || !str_cat(&s, "", text->valuestring)) {
            free(s);
            sw_err_set(err, SW_E_NOMEM, "out of memory");
            return NULL;
        }
        k++;
    }
    if (!s) sw_err_set(err, SW_E_NOMEM, "out of memory");
    return s;
}

static int32_t requested_max_tokens(const cJSON *req, int32_t def) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens");
    if (!cJSON_IsNumber(m)) m = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    if (cJSON_IsNumber(m) && m->valuedouble >= 1) return (int32_t)m->valuedouble;
    return def > 0 ? def : 4096;
}

cJSON *sw_wire_anthropic_request(const cJSON *req, const char *model, int32_t default_max_tokens,
                                 bool stream, sw_err *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        sw_err_set(err, SW_E_INVALID_ARG, "messages: expected a non-empty array");
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = out ? cJSON_AddArrayToObject(out, "messages") : NULL;
    char *system = NULL, *pending = NULL;
    const char *pending_role = NULL;
    if (!arr) goto oom;
    int idx = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) {
            sw_err_set(err, SW_E_INVALID_ARG, "messages[%d].role: expected a string", idx);
            goto fail;
        }
        const char *r = role->valuestring;
        bool is_sys = !strcmp(r, "system") || !strcmp(r, "developer");
        if (!is_sys && strcmp(r, "user") && strcmp(r, "assistant")) {
            sw_err_set(err, SW_E_UNSUPPORTED,
                       "messages[%d].role: '%.32s' is not supported by the anthropic mapping", idx, r);
            goto fail;
        }
        char *text = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), idx, err);
        if (!text) goto fail;
        bool ok = true;
        if (is_sys) {
            ok = str_cat(&system, "\n\n", text);
        } else if (pending_role && !strcmp(pending_role, r)) {
            /* Anthropic wants user/assistant turns; merge a repeated role. */
            ok = str_cat(&pending, "\n\n", text);
        } else {
            if (pending_role) {
                cJSON *mm = cJSON_CreateObject();
                ok = mm && cJSON_AddStringToObject(mm, "role", pending_role) &&
                     cJSON_AddStringToObject(mm, "content", pending) &&
                     cJSON_AddItemToArray(arr, mm);
                free(pending);
                pending = NULL;
            }
            pending_role = r;
            ok = ok && str_cat(&pending, "", text);
        }
        free(text);
        if (!ok) goto oom;
        idx++;
    }
    if (!pending_role) {
        sw_err_set(err, SW_E_INVALID_ARG, "messages: no user or assistant message");
        goto fail;
    }
    {
        cJSON *mm = cJSON_CreateObject();
        if (!mm || !cJSON_AddStringToObject(mm, "role", pending_role) ||
            !cJSON_AddStringToObject(mm, "content", pending) || !cJSON_AddItemToArray(arr, mm))
            goto oom;
    }
    /* Key order for readability of captured requests: model first. */
    cJSON_AddItemToObject(out, "model", cJSON_CreateString(model ? model : ""));
    cJSON_AddNumberToObject(out, "max_tokens", requested_max_tokens(req, default_max_tokens));
    if (system) cJSON_AddStringToObject(out, "system", system);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    if (cJSON_IsNumber(t)) {
        double v = t->valuedouble < 0 ? 0 : t->valuedouble > 1 ? 1 : t->valuedouble;
        cJSON_AddNumberToObject(out, "temperature", v);
    }
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(req, "top_p");
    if (cJSON_IsNumber(tp)) cJSON_AddNumberToObject(out, "top_p", tp->valuedouble);
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (cJSON_IsString(stop) || cJSON_IsArray(stop)) {
        cJSON *ss = cJSON_AddArrayToObject(out, "stop_sequences");
        if (cJSON_IsString(stop)) {
            cJSON_AddItemToArray(ss, cJSON_CreateString(stop->valuestring));
        } else {
            const cJSON *s;
            cJSON_ArrayForEach(s, stop) {
                if (!cJSON_IsString(s)) {
                    sw_err_set(err, SW_E_INVALID_ARG, "stop: expected strings");
                    goto fail;
                }
                cJSON_AddItemToArray(ss, cJSON_CreateString(s->valuestring));
            }
        }
    }
    if (stream) cJSON_AddTrueToObject(out, "stream");
    free(system);
    free(pending);
    return out;
oom:
    sw_err_set(err, SW_E_NOMEM, "anthropic request: out of memory");
fail:
    free(system);
    free(pending);
    cJSON_Delete(out);
    return NULL;
}

cJSON *sw_wire_openai_request(const cJSON *req, const char *model, bool stream,
                              bool include_usage, sw_err *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        sw_err_set(err, SW_E_INVALID_ARG, "messages: expected a non-empty array");
        return NULL;
    }
    cJSON *out = cJSON_Duplicate(req, true);
    if (!out) {
        sw_err_set(err, SW_E_NOMEM, "openai request: out of memory");
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(out, "spillway");
    cJSON_DeleteItemFromObjectCaseSensitive(out, "model");
    cJSON_DeleteItemFromObjectCaseSensitive(out, "stream");
    cJSON_DeleteItemFromObjectCaseSensitive(out, "stream_options");
    /* We read the first choice only; asking for more would be paid for and lost. */
    cJSON_DeleteItemFromObjectCaseSensitive(out, "n");
    /* logit_bias keys are token ids of the local model's vocabulary: for the
     * cloud model they would name unrelated tokens. */
    cJSON_DeleteItemFromObjectCaseSensitive(out, "logit_bias");
    cJSON_AddStringToObject(out, "model", model ? model : "");
    cJSON_AddBoolToObject(out, "stream", stream);
    if (stream && include_usage) {
        cJSON *so = cJSON_AddObjectToObject(out, "stream_options");
        if (so) cJSON_AddTrueToObject(so, "include_usage");
    }
    return out;
}

/* ---- answers -------------------------------------------------------------------- */

const char *sw_wire_anthropic_finish(const char *r) {
    if (!r) return "stop";
    if (!strcmp(r, "max_tokens")) return "length";
    if (!strcmp(r, "tool_use")) return "tool_calls";
    if (!strcmp(r, "refusal")) return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn, future reasons */
}

static cJSON *make_completion(const char *id, const char *model, double created,
                              const char *content, const char *finish, int32_t pt, int32_t ct) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", created);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", content);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", finish);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", pt);
    cJSON_AddNumberToObject(u, "completion_tokens", ct);
    cJSON_AddNumberToObject(u, "total_tokens", (double)pt + ct);
    /* cJSON returns NULL from every Add* on OOM; check the deepest one */
    if (!cJSON_GetObjectItemCaseSensitive(u, "total_tokens")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static const char *str_or(const cJSON *o, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

static int32_t int_or(const cJSON *o, const char *key, int32_t def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int32_t)v->valuedouble : def;
}

cJSON *sw_wire_anthropic_response(const cJSON *msg, sw_err *err) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsObject(msg) || strcmp(str_or(msg, "type", ""), "message") ||
        !cJSON_IsArray(content)) {
        sw_err_set(err, SW_E_FORMAT,
                   "anthropic answer: expected {\"type\":\"message\",\"content\":[...]}");
        return NULL;
    }
    char *text = strdup("");
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        if (strcmp(str_or(b, "type", ""), "text")) continue; /* tool_use, thinking: not mapped */
        const char *t = str_or(b, "text", NULL);
        if (!t) {
            free(text);
            sw_err_set(err, SW_E_FORMAT, "anthropic answer: text block without \"text\"");
            return NULL;
        }
        if (!text || !str_cat(&text, "", t)) {
            free(text);
            sw_err_set(err, SW_E_NOMEM, "out of memory");
            return NULL;
        }
    }
    if (!text) {
        sw_err_set(err, SW_E_NOMEM, "out of memory");
        return NULL;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(msg, "usage");
    cJSON *o = make_completion(str_or(msg, "id", ""), str_or(msg, "model", ""), (double)time(NULL),
                               text, sw_wire_anthropic_finish(str_or(msg, "stop_reason", NULL)),
                               int_or(usage, "input_tokens", 0), int_or(usage, "output_tokens", 0));
    free(text);
    if (!o) sw_err_set(err, SW_E_NOMEM, "out of memory");
    return o;
}

cJSON *sw_wire_openai_response(const cJSON *resp, sw_err *err) {
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(resp, "choices");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    if (!cJSON_IsObject(resp) || !cJSON_IsArray(choices) || !cJSON_IsObject(msg)) {
        sw_err_set(err, SW_E_FORMAT, "openai answer: expected choices[0].message");
        return NULL;
    }
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsString(content) && !cJSON_IsNull(content)) {
        sw_err_set(err, SW_E_FORMAT, "openai answer: choices[0].message.content is not a string");
        return NULL;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(resp, "usage");
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(resp, "created");
    cJSON *o = make_completion(str_or(resp, "id", ""), str_or(resp, "model", ""),
                               cJSON_IsNumber(created) ? created->valuedouble : (double)time(NULL),
                               cJSON_IsString(content) ? content->valuestring : "",
                               str_or(c0, "finish_reason", "stop"), int_or(usage, "prompt_tokens", 0),
                               int_or(usage, "completion_tokens", 0));
    if (!o) sw_err_set(err, SW_E_NOMEM, "out of memory");
    return o;
}

/* ---- streaming -------------------------------------------------------------------- */

void sw_wire_stream_init(sw_wire_stream *s, sw_provider p, sw_cloud_chunk_fn fn, void *user) {
    memset(s, 0, sizeof *s);
    s->provider = p;
    s->fn = fn;
    s->user = user;
    s->created = (double)time(NULL);
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Build and deliver one chunk. role/content/finish may be NULL. */
static sw_status emit(sw_wire_stream *s, bool role, const char *content, const char *finish,
                      bool usage, sw_err *err) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return sw_err_set(err, SW_E_NOMEM, "stream chunk: out of memory");
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", s->created);
    cJSON_AddStringToObject(o, "model", s->model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (!usage) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (content) cJSON_AddStringToObject(d, "content", content);
        cJSON_AddNullToObject(c, "logprobs");
        if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
        else cJSON_AddNullToObject(c, "finish_reason");
    } else {
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", s->prompt_tokens);
        cJSON_AddNumberToObject(u, "completion_tokens", s->completion_tokens);
        cJSON_AddNumberToObject(u, "total_tokens", (double)s->prompt_tokens + s->completion_tokens);
    }
    sw_cloud_chunk ch = {o, content, finish, usage};
    sw_status st = SW_OK;
    if (s->fn) st = s->fn(s->user, &ch, err);
    s->chunks++;
    if (role) s->role_sent = true;
    cJSON_Delete(o);
    return st;
}

static sw_status anthropic_event(sw_wire_stream *s, const cJSON *j, const char *type, sw_err *err) {
    if (!strcmp(type, "message_start")) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        if (!cJSON_IsObject(m)) return sw_err_set(err, SW_E_FORMAT, "message_start without \"message\"");
        copy_str(s->id, sizeof s->id, str_or(m, "id", ""));
        copy_str(s->model, sizeof s->model, str_or(m, "model", ""));
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(m, "usage");
        s->prompt_tokens = int_or(u, "input_tokens", 0);
        s->completion_tokens = int_or(u, "output_tokens", 0);
        return emit(s, true, "", NULL, false, err);
    }
    if (!strcmp(type, "content_block_delta") || !strcmp(type, "content_block_start")) {
        bool start = type[14] == 's';
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, start ? "content_block" : "delta");
        if (!cJSON_IsObject(d)) return sw_err_set(err, SW_E_FORMAT, "%s without its object", type);
        const char *dt = str_or(d, "type", "");
        if (strcmp(dt, start ? "text" : "text_delta")) return SW_OK; /* tool/thinking: not mapped */
        const char *text = str_or(d, "text", NULL);
        if (!text) return sw_err_set(err, SW_E_FORMAT, "%s: text without \"text\"", type);
        if (!text[0]) return SW_OK;
        return emit(s, !s->role_sent, text, NULL, false, err);
    }
    if (!strcmp(type, "message_delta")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delta");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
        s->completion_tokens = int_or(u, "output_tokens", s->completion_tokens);
        s->prompt_tokens = int_or(u, "input_tokens", s->prompt_tokens);
        const cJSON *sr = cJSON_GetObjectItemCaseSensitive(d, "stop_reason");
        if (cJSON_IsString(sr)) {
            copy_str(s->finish_reason, sizeof s->finish_reason, sw_wire_anthropic_finish(sr->valuestring));
            return emit(s, !s->role_sent, NULL, s->finish_reason, false, err);
        }
        return SW_OK;
    }
    if (!strcmp(type, "message_stop")) {
        s->done = true;
        return emit(s, false, NULL, NULL, true, err);
    }
    if (!strcmp(type, "error")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *et = str_or(e, "type", "error");
        copy_str(s->error_type, sizeof s->error_type, et);
        s->error_retryable = !strcmp(et, "overloaded_error") || !strcmp(et, "api_error") ||
                             !strcmp(et, "rate_limit_error");
        return sw_err_set(err, SW_E_BACKEND, "anthropic stream error %.40s: %.200s", et,
                          str_or(e, "message", ""));
    }
    return SW_OK; /* ping, content_block_stop, and event types added later */
}

static sw_status openai_event(sw_wire_stream *s, const cJSON *j, sw_err *err) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsObject(e)) {
        const char *et = str_or(e, "type", str_or(e, "code", "error"));
        copy_str(s->error_type, sizeof s->error_type, et);
        s->error_retryable = !strcmp(et, "server_error") || !strcmp(et, "rate_limit_exceeded");
        return sw_err_set(err, SW_E_BACKEND, "openai stream error %.40s: %.200s", et,
                          str_or(e, "message", ""));
    }
    if (!s->id[0]) copy_str(s->id, sizeof s->id, str_or(j, "id", ""));
    if (!s->model[0]) copy_str(s->model, sizeof s->model, str_or(j, "model", ""));
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(j, "created");
    if (cJSON_IsNumber(created)) s->created = created->valuedouble;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) {
        s->prompt_tokens = int_or(u, "prompt_tokens", s->prompt_tokens);
        s->completion_tokens = int_or(u, "completion_tokens", s->completion_tokens);
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!cJSON_IsArray(choices))
        return sw_err_set(err, SW_E_FORMAT, "openai stream chunk without \"choices\"");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    if (!c0) return SW_OK; /* the usage-only chunk; delivered at [DONE] */
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    const char *content = str_or(d, "content", NULL);
    bool role = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "role")) && !s->role_sent;
    const char *finish = str_or(c0, "finish_reason", NULL);
    if (finish) copy_str(s->finish_reason, sizeof s->finish_reason, finish);
    if (!role && !(content && content[0]) && !finish) return SW_OK;
    if (content && !content[0] && !role) content = NULL;
    return emit(s, role || (!s->role_sent && content), content, finish ? s->finish_reason : NULL,
                false, err);
}

sw_status sw_wire_stream_event(void *stream, const sw_sse_event *ev, sw_err *err) {
    sw_wire_stream *s = stream;
    if (s->done) return SW_OK; /* trailing events after the end marker are ignored */
    if (s->provider == SW_PROVIDER_OPENAI && !strcmp(ev->data, "[DONE]")) {
        s->done = true;
        return emit(s, false, NULL, NULL, true, err);
    }
    cJSON *j = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return sw_err_set(err, SW_E_FORMAT, "%s stream: event data is not a JSON object: '%.60s'",
                          sw_provider_str(s->provider), ev->data);
    }
    sw_status st;
    if (s->provider == SW_PROVIDER_ANTHROPIC) {
        const char *type = str_or(j, "type", ev->event);
        st = anthropic_event(s, j, type, err);
    } else {
        st = openai_event(s, j, err);
    }
    cJSON_Delete(j);
    return st;
}

sw_status sw_wire_stream_end(const sw_wire_stream *s, sw_err *err) {
    if (s->done) return SW_OK;
    if (s->provider == SW_PROVIDER_OPENAI && s->finish_reason[0]) return SW_OK;
    return sw_err_set(err, SW_E_FORMAT, "%s stream ended before its end marker (%s)",
                      sw_provider_str(s->provider),
                      s->provider == SW_PROVIDER_ANTHROPIC ? "message_stop" : "[DONE]");
}
