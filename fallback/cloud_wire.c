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

static const char *str_or(const cJSON *o, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

static int32_t int_or(const cJSON *o, const char *key, int32_t def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int32_t)v->valuedouble : def;
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

/* The turn being built: a role and its content blocks; consecutive
 * messages of one role merge into it. */
typedef struct turn {
    const char *role; /* NULL: none yet */
    cJSON *blocks;    /* array of Anthropic content blocks; owned */
} turn;

static bool add_text_block(cJSON *blocks, const char *text) {
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddItemToArray(blocks, b)) {
        cJSON_Delete(b);
        return false;
    }
    return cJSON_AddStringToObject(b, "type", "text") && cJSON_AddStringToObject(b, "text", text);
}

/* Close the turn into the messages array: a turn of text blocks only is one
 * string (joined by blank lines), as Anthropic's examples write it. */
static bool flush_turn(turn *t, cJSON *arr) {
    if (!t->role) return true;
    bool only_text = true;
    char *text = NULL;
    const cJSON *b;
    cJSON_ArrayForEach(b, t->blocks) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(b, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "text")) only_text = false;
    }
    cJSON *m = cJSON_CreateObject();
    bool ok = m && cJSON_AddItemToArray(arr, m) && cJSON_AddStringToObject(m, "role", t->role);
    if (ok && only_text) {
        cJSON_ArrayForEach(b, t->blocks) {
            if (!(ok = str_cat(&text, "\n\n", cJSON_GetObjectItemCaseSensitive(b, "text")->valuestring)))
                break;
        }
        ok = ok && cJSON_AddStringToObject(m, "content", text ? text : "");
        cJSON_Delete(t->blocks);
    } else if (ok) {
        cJSON_AddItemToObject(m, "content", t->blocks);
    } else {
        cJSON_Delete(m);
        cJSON_Delete(t->blocks);
    }
    free(text);
    t->blocks = NULL;
    t->role = NULL;
    return ok;
}

/* Move to a turn of role (merging into the open one of the same role). */
static bool turn_for(turn *t, const char *role, cJSON *arr) {
    if (t->role && !strcmp(t->role, role)) return true;
    if (!flush_turn(t, arr)) return false;
    t->role = role;
    t->blocks = cJSON_CreateArray();
    return t->blocks != NULL;
}

/* An assistant's OpenAI tool_calls as tool_use blocks. */
static sw_status add_tool_uses(cJSON *blocks, const cJSON *calls, int idx, sw_err *err) {
    int k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        const char *id = str_or(c, "id", NULL), *name = str_or(fn, "name", NULL);
        if (!id || !name)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "messages[%d].tool_calls[%d]: id and function.name are required", idx, k);
        const char *args = str_or(fn, "arguments", "{}");
        cJSON *input = cJSON_Parse(args[0] ? args : "{}");
        if (!cJSON_IsObject(input)) {
            cJSON_Delete(input);
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "messages[%d].tool_calls[%d].function.arguments: not a JSON object", idx, k);
        }
        cJSON *b = cJSON_CreateObject();
        if (!b || !cJSON_AddItemToArray(blocks, b)) {
            cJSON_Delete(b);
            cJSON_Delete(input);
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        }
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", id);
        cJSON_AddStringToObject(b, "name", name);
        cJSON_AddItemToObject(b, "input", input);
        k++;
    }
    return SW_OK;
}

/* OpenAI tools and tool_choice -> Anthropic's. */
static sw_status map_tools(const cJSON *req, cJSON *out, sw_err *err) {
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        cJSON *at = cJSON_AddArrayToObject(out, "tools");
        int k = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            const char *name = str_or(fn, "name", NULL);
            if (!name) return sw_err_set(err, SW_E_INVALID_ARG, "tools[%d].function.name: required", k);
            cJSON *o = cJSON_CreateObject();
            if (!at || !o || !cJSON_AddItemToArray(at, o)) {
                cJSON_Delete(o);
                return sw_err_set(err, SW_E_NOMEM, "out of memory");
            }
            cJSON_AddStringToObject(o, "name", name);
            const char *desc = str_or(fn, "description", NULL);
            if (desc) cJSON_AddStringToObject(o, "description", desc);
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
            cJSON *schema = cJSON_IsObject(params) ? cJSON_Duplicate(params, true)
                                                   : cJSON_Parse("{\"type\":\"object\"}");
            cJSON_AddItemToObject(o, "input_schema", schema);
            k++;
        }
    }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    const cJSON *ptc = cJSON_GetObjectItemCaseSensitive(req, "parallel_tool_calls");
    if (!tc || cJSON_IsNull(tc)) return SW_OK;
    cJSON *c = cJSON_AddObjectToObject(out, "tool_choice");
    if (!c) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    const char *fname = str_or(cJSON_GetObjectItemCaseSensitive(tc, "function"), "name", NULL);
    if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "none")) {
        cJSON_AddStringToObject(c, "type", "none");
    } else if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "required")) {
        cJSON_AddStringToObject(c, "type", "any");
    } else if (cJSON_IsObject(tc) && fname) {
        cJSON_AddStringToObject(c, "type", "tool");
        cJSON_AddStringToObject(c, "name", fname);
    } else if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "auto")) {
        cJSON_AddStringToObject(c, "type", "auto");
    } else {
        return sw_err_set(err, SW_E_INVALID_ARG, "tool_choice: expected \"auto\", \"none\", "
                                                 "\"required\" or a function");
    }
    if (cJSON_IsFalse(ptc)) cJSON_AddTrueToObject(c, "disable_parallel_tool_use");
    return SW_OK;
}

/* One OpenAI message into the turns. */
static sw_status map_message(const cJSON *m, int idx, turn *t, cJSON *arr, char **system,
                             sw_err *err) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    if (!cJSON_IsString(role))
        return sw_err_set(err, SW_E_INVALID_ARG, "messages[%d].role: expected a string", idx);
    const char *r = role->valuestring;
    bool is_sys = !strcmp(r, "system") || !strcmp(r, "developer");
    bool is_tool = !strcmp(r, "tool");
    if (!is_sys && !is_tool && strcmp(r, "user") && strcmp(r, "assistant"))
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "messages[%d].role: '%.32s' is not supported by the anthropic mapping", idx, r);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
    bool has_calls = !strcmp(r, "assistant") && cJSON_GetArraySize(calls) > 0;
    char *text = NULL;
    if (!(has_calls && (!content || cJSON_IsNull(content))) &&
        !(text = content_text(content, idx, err)))
        return SW_E_UNSUPPORTED; /* or out of memory; err says which */
    sw_status st = SW_OK;
    if (is_sys) {
        if (!str_cat(system, "\n\n", text)) st = sw_err_set(err, SW_E_NOMEM, "out of memory");
    } else if (is_tool) {
        /* a tool's answer is a tool_result block of a user turn */
        const char *id = str_or(m, "tool_call_id", NULL);
        cJSON *b = cJSON_CreateObject();
        if (!id) {
            st = sw_err_set(err, SW_E_INVALID_ARG, "messages[%d].tool_call_id: required", idx);
        } else if (!turn_for(t, "user", arr) || !b || !cJSON_AddItemToArray(t->blocks, b)) {
            st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        } else {
            b = NULL; /* owned by the turn now */
            cJSON *last = cJSON_GetArrayItem(t->blocks, cJSON_GetArraySize(t->blocks) - 1);
            cJSON_AddStringToObject(last, "type", "tool_result");
            cJSON_AddStringToObject(last, "tool_use_id", id);
            cJSON_AddStringToObject(last, "content", text);
        }
        cJSON_Delete(b);
    } else if (!turn_for(t, r, arr) ||
               (text && (text[0] || !has_calls) && !add_text_block(t->blocks, text))) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
    } else if (has_calls) {
        st = add_tool_uses(t->blocks, calls, idx, err);
    }
    free(text);
    return st;
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
    char *system = NULL;
    turn t = {NULL, NULL};
    if (!arr) goto oom;
    int idx = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (map_message(m, idx, &t, arr, &system, err) != SW_OK) goto fail;
        idx++;
    }
    if (!t.role) {
        sw_err_set(err, SW_E_INVALID_ARG, "messages: no user or assistant message");
        goto fail;
    }
    if (!flush_turn(&t, arr)) goto oom;
    /* Key order for readability of captured requests: model first. */
    cJSON_AddItemToObject(out, "model", cJSON_CreateString(model ? model : ""));
    cJSON_AddNumberToObject(out, "max_tokens", requested_max_tokens(req, default_max_tokens));
    if (system) cJSON_AddStringToObject(out, "system", system);
    const cJSON *tmp = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    if (cJSON_IsNumber(tmp)) {
        double v = tmp->valuedouble < 0 ? 0 : tmp->valuedouble > 1 ? 1 : tmp->valuedouble;
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
    if (map_tools(req, out, err) != SW_OK) goto fail;
    if (stream) cJSON_AddTrueToObject(out, "stream");
    free(system);
    return out;
oom:
    sw_err_set(err, SW_E_NOMEM, "anthropic request: out of memory");
fail:
    cJSON_Delete(t.blocks);
    free(system);
    cJSON_Delete(out);
    return NULL;
}

cJSON *sw_wire_anthropic_native(const cJSON *req, const char *model, bool stream, sw_err *err) {
    cJSON *out = cJSON_Duplicate(req, true);
    if (!out) {
        sw_err_set(err, SW_E_NOMEM, "anthropic request: out of memory");
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(out, "spillway");
    cJSON_DeleteItemFromObjectCaseSensitive(out, "model");
    cJSON_DeleteItemFromObjectCaseSensitive(out, "stream");
    cJSON_AddStringToObject(out, "model", model ? model : "");
    if (stream) cJSON_AddTrueToObject(out, "stream");
    return out;
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

/* tool_calls (taken, may be NULL): the message's OpenAI tool_calls array;
 * stop_sequence (may be NULL) is kept in the choice. */
static cJSON *make_completion(const char *id, const char *model, double created,
                              const char *content, const char *finish, int32_t pt, int32_t ct,
                              cJSON *tool_calls, const char *stop_sequence) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        cJSON_Delete(tool_calls);
        return NULL;
    }
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
    if (tool_calls) cJSON_AddItemToObject(msg, "tool_calls", tool_calls);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", finish);
    if (stop_sequence) cJSON_AddStringToObject(c, "stop_sequence", stop_sequence);
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

/* An Anthropic tool_use block as an OpenAI tool call appended to calls. */
static bool add_tool_call(cJSON *calls, const cJSON *block) {
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(calls, c)) {
        cJSON_Delete(c);
        return false;
    }
    char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(block, "input"));
    cJSON *fn;
    bool ok = cJSON_AddStringToObject(c, "id", str_or(block, "id", "")) &&
              cJSON_AddStringToObject(c, "type", "function") &&
              (fn = cJSON_AddObjectToObject(c, "function")) &&
              cJSON_AddStringToObject(fn, "name", str_or(block, "name", "")) &&
              cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
    free(args);
    return ok;
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
    cJSON *calls = NULL;
    const cJSON *b;
    cJSON_ArrayForEach(b, content) {
        if (!strcmp(str_or(b, "type", ""), "tool_use")) {
            if (!calls) calls = cJSON_CreateArray();
            if (!calls || !add_tool_call(calls, b)) {
                free(text);
                cJSON_Delete(calls);
                sw_err_set(err, SW_E_NOMEM, "out of memory");
                return NULL;
            }
            continue;
        }
        if (strcmp(str_or(b, "type", ""), "text")) continue; /* thinking etc.: not mapped */
        const char *t = str_or(b, "text", NULL);
        if (!t) {
            free(text);
            cJSON_Delete(calls);
            sw_err_set(err, SW_E_FORMAT, "anthropic answer: text block without \"text\"");
            return NULL;
        }
        if (!text || !str_cat(&text, "", t)) {
            free(text);
            cJSON_Delete(calls);
            sw_err_set(err, SW_E_NOMEM, "out of memory");
            return NULL;
        }
    }
    if (!text) {
        cJSON_Delete(calls);
        sw_err_set(err, SW_E_NOMEM, "out of memory");
        return NULL;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(msg, "usage");
    cJSON *o = make_completion(str_or(msg, "id", ""), str_or(msg, "model", ""), (double)time(NULL),
                               text, sw_wire_anthropic_finish(str_or(msg, "stop_reason", NULL)),
                               int_or(usage, "input_tokens", 0), int_or(usage, "output_tokens", 0),
                               calls, str_or(msg, "stop_sequence", NULL));
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
                               int_or(usage, "completion_tokens", 0),
                               cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), true),
                               NULL);
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
    s->cur_tool = -1;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Build and deliver one chunk: ch says what it carries (json is filled
 * here); role: the delta opens with the assistant role. */
static sw_status emit(sw_wire_stream *s, bool role, sw_cloud_chunk *ch, sw_err *err) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return sw_err_set(err, SW_E_NOMEM, "stream chunk: out of memory");
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", s->created);
    cJSON_AddStringToObject(o, "model", s->model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (!ch->is_usage) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (role) cJSON_AddStringToObject(d, "role", "assistant");
        if (ch->content) cJSON_AddStringToObject(d, "content", ch->content);
        if (ch->tool) {
            cJSON *tc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "tool_calls");
            cJSON_AddItemToArray(arr, tc);
            cJSON_AddNumberToObject(tc, "index", ch->tool_index);
            if (ch->tool_id) cJSON_AddStringToObject(tc, "id", ch->tool_id);
            if (ch->tool_id) cJSON_AddStringToObject(tc, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(tc, "function");
            if (ch->tool_name) cJSON_AddStringToObject(fn, "name", ch->tool_name);
            cJSON_AddStringToObject(fn, "arguments", ch->tool_args ? ch->tool_args : "");
        }
        cJSON_AddNullToObject(c, "logprobs");
        if (ch->finish_reason) cJSON_AddStringToObject(c, "finish_reason", ch->finish_reason);
        else cJSON_AddNullToObject(c, "finish_reason");
        if (ch->stop_sequence) cJSON_AddStringToObject(c, "stop_sequence", ch->stop_sequence);
    } else {
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", s->prompt_tokens);
        cJSON_AddNumberToObject(u, "completion_tokens", s->completion_tokens);
        cJSON_AddNumberToObject(u, "total_tokens", (double)s->prompt_tokens + s->completion_tokens);
    }
    ch->json = o;
    sw_status st = SW_OK;
    if (s->fn) st = s->fn(s->user, ch, err);
    s->chunks++;
    if (role) s->role_sent = true;
    cJSON_Delete(o);
    return st;
}

static sw_status emit_text(sw_wire_stream *s, bool role, const char *content, sw_err *err) {
    sw_cloud_chunk ch = {.content = content};
    return emit(s, role, &ch, err);
}

static sw_status emit_usage(sw_wire_stream *s, sw_err *err) {
    sw_cloud_chunk ch = {.is_usage = true};
    return emit(s, false, &ch, err);
}

static sw_status emit_tool(sw_wire_stream *s, int index, const char *id, const char *name,
                           const char *args, sw_err *err) {
    sw_cloud_chunk ch = {.tool = true, .tool_index = index, .tool_id = id, .tool_name = name,
                         .tool_args = args};
    return emit(s, !s->role_sent, &ch, err);
}

/* content_block_start / content_block_delta: text, or a tool_use's parts. */
static sw_status anthropic_block(sw_wire_stream *s, const cJSON *j, const char *type, sw_err *err) {
    bool start = type[14] == 's';
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, start ? "content_block" : "delta");
    if (!cJSON_IsObject(d)) return sw_err_set(err, SW_E_FORMAT, "%s without its object", type);
    const char *dt = str_or(d, "type", "");
    if (start) s->cur_tool = -1;
    if (start && !strcmp(dt, "tool_use")) {
        const char *id = str_or(d, "id", NULL), *name = str_or(d, "name", NULL);
        if (!id || !name) return sw_err_set(err, SW_E_FORMAT, "tool_use block without id or name");
        s->cur_tool = s->n_tools++;
        /* input arrives in input_json_delta events; a non-empty one here is whole */
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(d, "input");
        char *args = cJSON_GetArraySize(in) > 0 ? cJSON_PrintUnformatted(in) : NULL;
        sw_status st = emit_tool(s, s->cur_tool, id, name, args, err);
        free(args);
        return st;
    }
    if (!start && !strcmp(dt, "input_json_delta")) {
        const char *pj = str_or(d, "partial_json", NULL);
        if (s->cur_tool < 0 || !pj) return sw_err_set(err, SW_E_FORMAT, "input_json_delta outside a tool_use block");
        return pj[0] ? emit_tool(s, s->cur_tool, NULL, NULL, pj, err) : SW_OK;
    }
    if (strcmp(dt, start ? "text" : "text_delta")) return SW_OK; /* thinking etc.: not mapped */
    const char *text = str_or(d, "text", NULL);
    if (!text) return sw_err_set(err, SW_E_FORMAT, "%s: text without \"text\"", type);
    if (!text[0]) return SW_OK;
    return emit_text(s, !s->role_sent, text, err);
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
        return emit_text(s, true, "", err);
    }
    if (!strcmp(type, "content_block_delta") || !strcmp(type, "content_block_start"))
        return anthropic_block(s, j, type, err);
    if (!strcmp(type, "message_delta")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "delta");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
        s->completion_tokens = int_or(u, "output_tokens", s->completion_tokens);
        s->prompt_tokens = int_or(u, "input_tokens", s->prompt_tokens);
        const cJSON *sr = cJSON_GetObjectItemCaseSensitive(d, "stop_reason");
        if (cJSON_IsString(sr)) {
            copy_str(s->finish_reason, sizeof s->finish_reason, sw_wire_anthropic_finish(sr->valuestring));
            sw_cloud_chunk ch = {.finish_reason = s->finish_reason,
                                 .stop_sequence = str_or(d, "stop_sequence", NULL)};
            return emit(s, !s->role_sent, &ch, err);
        }
        return SW_OK;
    }
    if (!strcmp(type, "message_stop")) {
        s->done = true;
        return emit_usage(s, err);
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

/* An OpenAI delta's tool_calls parts. */
static sw_status openai_tool_calls(sw_wire_stream *s, const cJSON *calls, sw_err *err) {
    const cJSON *tc;
    cJSON_ArrayForEach(tc, calls) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 || idx->valuedouble > 1e6)
            return sw_err_set(err, SW_E_FORMAT, "openai stream: tool_calls entry without an index");
        int i = (int)idx->valuedouble;
        if (i >= s->n_tools) s->n_tools = i + 1;
        const char *args = str_or(fn, "arguments", NULL);
        sw_status st = emit_tool(s, i, str_or(tc, "id", NULL), str_or(fn, "name", NULL),
                                 args && args[0] ? args : NULL, err);
        if (st != SW_OK) return st;
    }
    return SW_OK;
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
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(d, "tool_calls");
    if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0) {
        if (role || (content && content[0])) {
            sw_status st = emit_text(s, true, content ? content : "", err);
            if (st != SW_OK) return st;
            role = false;
            content = NULL;
        }
        sw_status st = openai_tool_calls(s, calls, err);
        if (st != SW_OK || !finish) return st;
    }
    if (!role && !(content && content[0]) && !finish) return SW_OK;
    if (content && !content[0] && !role) content = NULL;
    sw_cloud_chunk ch = {.content = content, .finish_reason = finish ? s->finish_reason : NULL};
    return emit(s, role || (!s->role_sent && content), &ch, err);
}

sw_status sw_wire_stream_event(void *stream, const sw_sse_event *ev, sw_err *err) {
    sw_wire_stream *s = stream;
    if (s->done) return SW_OK; /* trailing events after the end marker are ignored */
    if (s->provider == SW_PROVIDER_OPENAI && !strcmp(ev->data, "[DONE]")) {
        s->done = true;
        return emit_usage(s, err);
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
