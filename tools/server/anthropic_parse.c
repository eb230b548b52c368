/* anthropic_parse.c — parse and validate Anthropic Messages request bodies
 * into the internal request.
 *
 * Parameters are named the way Anthropic's API does ("messages.1.content.0.type")
 * and every failure is a 400 in Anthropic's shape. What the local model
 * cannot honour is refused rather than ignored (image and document blocks,
 * extended thinking, server tools); unknown fields are ignored as vendor
 * extras. A trailing assistant message is a prefix the answer continues
 * (continue_final), as at Anthropic. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anthropic.h"

#define BAD_REQ "invalid_request_error"

static bool bad(srv_error *e, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* A 400 whose message starts with the parameter, as Anthropic's do. */
static bool bad(srv_error *e, const char *param, const char *fmt, ...) {
    char msg[sizeof e->msg - 160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_error_set(e, 400, BAD_REQ, "invalid_value", param, "%s: %s", param, msg);
    return false;
}

static bool need_string(const cJSON *o, const char *name, const char *param, const char **out,
                        srv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    char p[200];
    snprintf(p, sizeof p, "%.150s.%.40s", param, name);
    if (!v) return bad(e, p, "Field required");
    if (!cJSON_IsString(v)) return srv_json_type_error(e, p, "a string", v);
    *out = v->valuestring;
    return true;
}

/* Text of a list of text blocks (system, tool_result content), joined by
 * newlines. Other block types are refused. */
static bool text_blocks(const cJSON *arr, const char *param, sbuf *b, srv_error *e) {
    int i = 0;
    const cJSON *blk;
    cJSON_ArrayForEach(blk, arr) {
        char p[160];
        snprintf(p, sizeof p, "%s.%d", param, i);
        if (!cJSON_IsObject(blk)) return srv_json_type_error(e, p, "an object", blk);
        const char *type = NULL, *text = NULL;
        if (!need_string(blk, "type", p, &type, e)) return false;
        if (strcmp(type, "text") != 0)
            return bad(e, p, "block type '%.40s' is not supported here; only 'text'", type);
        if (!need_string(blk, "text", p, &text, e)) return false;
        if (i++) sbuf_puts(b, "\n");
        sbuf_puts(b, text);
    }
    return !b->oom || srv_json_nomem(e);
}

/* A string, or a list of text blocks, as one malloc'd text. */
static bool text_or_blocks(const cJSON *v, const char *param, char **out, srv_error *e) {
    if (cJSON_IsString(v)) {
        *out = strdup(v->valuestring);
        return *out || srv_json_nomem(e);
    }
    if (!cJSON_IsArray(v)) return srv_json_type_error(e, param, "a string or a list of blocks", v);
    sbuf b = {0};
    sbuf_puts(&b, "");
    if (!text_blocks(v, param, &b, e)) {
        sbuf_free(&b);
        return false;
    }
    *out = sbuf_take(&b);
    return *out || srv_json_nomem(e);
}

/* ---- messages ------------------------------------------------------------------- */

/* Whether id names a tool_use block of message m. */
static bool has_tool_use(const srv_msg *m, const char *id) {
    for (size_t i = 0; m && i < m->n_blocks; i++)
        if (m->blocks[i].type == SRV_BLOCK_TOOL_USE && !strcmp(m->blocks[i].id, id)) return true;
    return false;
}

static bool parse_tool_use(const cJSON *blk, const char *p, srv_block *b, srv_error *e) {
    const char *id = NULL, *name = NULL;
    if (!need_string(blk, "id", p, &id, e) || !need_string(blk, "name", p, &name, e)) return false;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(blk, "input");
    char pi[160];
    snprintf(pi, sizeof pi, "%s.input", p);
    if (!input) return bad(e, pi, "Field required");
    if (!cJSON_IsObject(input)) return srv_json_type_error(e, pi, "an object", input);
    if (!(b->id = strdup(id)) || !(b->name = strdup(name)) ||
        !(b->input = cJSON_PrintUnformatted(input)))
        return srv_json_nomem(e);
    return true;
}

static bool parse_tool_result(const cJSON *blk, const char *p, const srv_msg *prev, srv_block *b,
                              srv_error *e) {
    const char *id = NULL;
    if (!need_string(blk, "tool_use_id", p, &id, e)) return false;
    if (!has_tool_use(prev, id))
        return bad(e, p,
                   "tool_result block with tool_use_id '%.64s' has no matching tool_use block "
                   "in the previous (assistant) message",
                   id);
    const cJSON *c = srv_json_field(blk, "content");
    char pc[160];
    snprintf(pc, sizeof pc, "%s.content", p);
    if (c && !text_or_blocks(c, pc, &b->text, e)) return false;
    if (!c && !(b->text = strdup(""))) return srv_json_nomem(e);
    if (!(b->id = strdup(id))) return srv_json_nomem(e);
    return srv_json_opt_bool(blk, "is_error", &b->is_error, e);
}

/* One content block of message i (role), appended to m. */
static bool parse_block(const cJSON *blk, const char *p, const srv_msg *prev, srv_msg *m,
                        srv_error *e) {
    if (!cJSON_IsObject(blk)) return srv_json_type_error(e, p, "an object", blk);
    const char *type = NULL;
    if (!need_string(blk, "type", p, &type, e)) return false;
    bool user = !strcmp(m->role, "user");
    srv_block *b;
    if (!strcmp(type, "text")) {
        const char *text = NULL;
        if (!need_string(blk, "text", p, &text, e)) return false;
        if (!(b = srv_msg_add_block(m, SRV_BLOCK_TEXT)) || !(b->text = strdup(text)))
            return srv_json_nomem(e);
        return true;
    }
    if (!strcmp(type, "tool_use")) {
        if (user) return bad(e, p, "tool_use blocks may only appear in assistant messages");
        if (!(b = srv_msg_add_block(m, SRV_BLOCK_TOOL_USE))) return srv_json_nomem(e);
        return parse_tool_use(blk, p, b, e);
    }
    if (!strcmp(type, "tool_result")) {
        if (!user) return bad(e, p, "tool_result blocks may only appear in user messages");
        if (!(b = srv_msg_add_block(m, SRV_BLOCK_TOOL_RESULT))) return srv_json_nomem(e);
        return parse_tool_result(blk, p, prev, b, e);
    }
    static const char *const known[] = {"image",        "document",          "thinking",
                                        "redacted_thinking", "search_result", "server_tool_use",
                                        "web_search_tool_result", "container_upload"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(type, known[i]))
            return bad(e, p,
                       "'%s' content blocks are not supported by this server (text, tool_use and "
                       "tool_result only)",
                       type);
    return bad(e, p, "unknown content block type '%.40s'; expected text, tool_use or tool_result",
               type);
}

static bool parse_messages(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs || cJSON_IsNull(msgs)) return bad(e, "messages", "Field required");
    if (!cJSON_IsArray(msgs)) return srv_json_type_error(e, "messages", "a list", msgs);
    if (cJSON_GetArraySize(msgs) == 0) return bad(e, "messages", "at least one message is required");
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char p[64];
        snprintf(p, sizeof p, "messages.%d", i);
        if (!cJSON_IsObject(m)) return srv_json_type_error(e, p, "an object", m);
        const char *role = NULL;
        if (!need_string(m, "role", p, &role, e)) return false;
        if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
            snprintf(p, sizeof p, "messages.%d.role", i);
            return bad(e, p, "unexpected role '%.40s'; expected 'user' or 'assistant' (the "
                             "system prompt is the top-level 'system' field)", role);
        }
        size_t prev_i = r->n_msgs; /* msgs moves when it grows: take prev after */
        srv_msg *sm = srv_request_add_msg(r, role);
        if (!sm) return srv_json_nomem(e);
        const srv_msg *prev = prev_i ? &r->msgs[prev_i - 1] : NULL;
        if (prev && strcmp(prev->role, "assistant") != 0) prev = NULL;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(p, sizeof p, "messages.%d.content", i);
        if (!c) return bad(e, p, "Field required");
        if (cJSON_IsString(c)) {
            srv_block *b = srv_msg_add_block(sm, SRV_BLOCK_TEXT);
            if (!b || !(b->text = strdup(c->valuestring))) return srv_json_nomem(e);
        } else if (cJSON_IsArray(c)) {
            int j = 0;
            const cJSON *blk;
            cJSON_ArrayForEach(blk, c) {
                char pb[96];
                snprintf(pb, sizeof pb, "%s.%d", p, j++);
                if (!parse_block(blk, pb, prev, sm, e)) return false;
            }
        } else {
            return srv_json_type_error(e, p, "a string or a list of content blocks", c);
        }
        i++;
    }
    /* A final assistant turn is a prefix of the answer (text only). */
    const srv_msg *last = &r->msgs[r->n_msgs - 1];
    if (!strcmp(last->role, "assistant")) {
        for (size_t j = 0; j < last->n_blocks; j++)
            if (last->blocks[j].type != SRV_BLOCK_TEXT) {
                char p[64];
                snprintf(p, sizeof p, "messages.%zu.content.%zu", r->n_msgs - 1, j);
                return bad(e, p, "the final assistant message is a prefix to continue: text "
                                 "blocks only");
            }
        r->continue_final = true;
    }
    return true;
}

/* ---- tools -------------------------------------------------------------------------- */

static bool tool_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool parse_tools(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *tools = srv_json_field(root, "tools");
    if (!tools) return true;
    if (!cJSON_IsArray(tools)) return srv_json_type_error(e, "tools", "a list", tools);
    size_t n = (size_t)cJSON_GetArraySize(tools);
    if (n == 0) return true;
    if (!(r->tools = calloc(n, sizeof *r->tools))) return srv_json_nomem(e);
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        char p[64];
        snprintf(p, sizeof p, "tools.%zu", r->n_tools);
        if (!cJSON_IsObject(t)) return srv_json_type_error(e, p, "an object", t);
        const cJSON *type = srv_json_field(t, "type");
        if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "custom")))
            return bad(e, p, "server tools ('%.40s') are not supported by this server; give "
                             "client tools with name, description and input_schema",
                       cJSON_IsString(type) ? type->valuestring : "?");
        const char *name = NULL;
        if (!need_string(t, "name", p, &name, e)) return false;
        if (!tool_name_ok(name))
            return bad(e, p, "tool name '%.64s' must match ^[a-zA-Z0-9_-]{1,128}$", name);
        for (size_t k = 0; k < r->n_tools; k++)
            if (!strcmp(r->tools[k].name, name))
                return bad(e, "tools", "tool names must be unique: '%s' appears twice", name);
        const cJSON *desc = srv_json_field(t, "description");
        if (desc && !cJSON_IsString(desc)) {
            snprintf(p + strlen(p), sizeof p - strlen(p), ".description");
            return srv_json_type_error(e, p, "a string", desc);
        }
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
        char ps[80];
        snprintf(ps, sizeof ps, "%s.input_schema", p);
        if (!schema) return bad(e, ps, "Field required");
        if (!cJSON_IsObject(schema)) return srv_json_type_error(e, ps, "an object", schema);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(schema, "type");
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "object") != 0)
            return bad(e, ps, "input_schema.type must be 'object'");
        srv_tool *tool = &r->tools[r->n_tools++];
        if (!(tool->name = strdup(name)) ||
            (desc && !(tool->description = strdup(desc->valuestring))) ||
            !(tool->parameters = cJSON_Duplicate(schema, true)))
            return srv_json_nomem(e);
    }
    return true;
}

static bool parse_tool_choice(const cJSON *root, srv_request *r, srv_error *e) {
    r->parallel_tool_calls = true;
    const cJSON *tc = srv_json_field(root, "tool_choice");
    if (!tc) return true;
    if (!cJSON_IsObject(tc)) return srv_json_type_error(e, "tool_choice", "an object", tc);
    const char *type = NULL;
    if (!need_string(tc, "type", "tool_choice", &type, e)) return false;
    if (!strcmp(type, "auto")) r->tool_choice = SRV_TOOL_AUTO;
    else if (!strcmp(type, "any")) r->tool_choice = SRV_TOOL_ANY;
    else if (!strcmp(type, "none")) r->tool_choice = SRV_TOOL_NONE;
    else if (!strcmp(type, "tool")) r->tool_choice = SRV_TOOL_NAMED;
    else
        return bad(e, "tool_choice.type", "'%.40s' is not one of 'auto', 'any', 'tool', 'none'",
                   type);
    bool disable = false;
    if (!srv_json_opt_bool(tc, "disable_parallel_tool_use", &disable, e)) return false;
    r->parallel_tool_calls = !disable;
    if ((r->tool_choice == SRV_TOOL_ANY || r->tool_choice == SRV_TOOL_NAMED) && !r->n_tools)
        return bad(e, "tool_choice", "tool_choice '%s' needs tools", type);
    if (r->tool_choice != SRV_TOOL_NAMED) return true;
    const char *name = NULL;
    if (!need_string(tc, "name", "tool_choice", &name, e)) return false;
    for (size_t i = 0; i < r->n_tools; i++)
        if (!strcmp(r->tools[i].name, name))
            return (r->tool_name = strdup(name)) || srv_json_nomem(e);
    return bad(e, "tool_choice.name", "'%.64s' is not one of the given tools", name);
}

/* ---- the request -------------------------------------------------------------------- */

static bool parse_stop_sequences(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *s = srv_json_field(root, "stop_sequences");
    if (!s) return true;
    if (!cJSON_IsArray(s)) return srv_json_type_error(e, "stop_sequences", "a list of strings", s);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, s) {
        char p[48];
        snprintf(p, sizeof p, "stop_sequences.%d", i++);
        if (!cJSON_IsString(it)) return srv_json_type_error(e, p, "a string", it);
        if (!it->valuestring[0]) continue;
        if (!srv_request_add_stop(r, it->valuestring)) return srv_json_nomem(e);
    }
    return true;
}

static bool parse_sampling(const cJSON *root, srv_request *r, srv_error *e) {
    sw_sampler_params *sp = &r->sp;
    if (!srv_json_opt_num(root, "temperature", 0, 1, false, &sp->temperature, e) ||
        !srv_json_opt_num(root, "top_p", 0, 1, false, &sp->top_p, e))
        return false;
    bool given = false;
    int32_t top_k = 0;
    if (!srv_json_opt_int(root, "top_k", 0, 1e9, &top_k, &given, e)) return false;
    if (given) sp->top_k = top_k;
    const cJSON *md = srv_json_field(root, "metadata");
    if (md) {
        if (!cJSON_IsObject(md)) return srv_json_type_error(e, "metadata", "an object", md);
        const cJSON *u = srv_json_field(md, "user_id");
        if (u && !cJSON_IsString(u)) return srv_json_type_error(e, "metadata.user_id", "a string", u);
    }
    /* adaptive thinking lets the model decide, and this one does not think */
    const cJSON *th = srv_json_field(root, "thinking");
    const cJSON *tt = th ? cJSON_GetObjectItemCaseSensitive(th, "type") : NULL;
    if (th && !(cJSON_IsString(tt) && (!strcmp(tt->valuestring, "disabled") ||
                                       !strcmp(tt->valuestring, "adaptive"))))
        return bad(e, "thinking", "extended thinking is not supported by this server");
    return true;
}

/* output_config: effort (a hint, accepted) and format, a JSON schema the
 * answer must follow. */
static bool parse_output_config(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *oc = srv_json_field(root, "output_config");
    if (!oc) return true;
    if (!cJSON_IsObject(oc)) return srv_json_type_error(e, "output_config", "an object", oc);
    const cJSON *f = srv_json_field(oc, "format");
    if (!f) return true;
    if (!cJSON_IsObject(f)) return srv_json_type_error(e, "output_config.format", "an object", f);
    const char *type = NULL;
    if (!need_string(f, "type", "output_config.format", &type, e)) return false;
    if (strcmp(type, "json_schema") != 0)
        return bad(e, "output_config.format.type", "'%.40s' is not 'json_schema'", type);
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(f, "schema");
    if (!schema) return bad(e, "output_config.format.schema", "Field required");
    if (!cJSON_IsObject(schema))
        return srv_json_type_error(e, "output_config.format.schema", "an object", schema);
    r->format.type = SRV_FORMAT_JSON_SCHEMA;
    r->format.strict = true;
    return (r->format.schema = cJSON_Duplicate(schema, true)) || srv_json_nomem(e);
}

bool anthropic_parse_request(const char *body, size_t len, bool count_tokens, srv_request *r,
                             srv_error *e) {
    if (!srv_json_begin_request(r, SRV_WIRE_ANTHROPIC, body, len, e)) return false;
    const cJSON *root = r->raw;
    bool ok = false;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (!count_tokens) {
        double d = 0;
        if (!v) {
            bad(e, "max_tokens", "Field required");
            goto done;
        }
        if (!srv_json_int(v, "max_tokens", 1, INT32_MAX, &d, e)) goto done;
        r->max_tokens = (int32_t)d;
    }
    if ((v = srv_json_field(root, "system")) && !text_or_blocks(v, "system", &r->system, e))
        goto done;
    if (!parse_messages(root, r, e) || !parse_tools(root, r, e) || !parse_tool_choice(root, r, e) ||
        !parse_stop_sequences(root, r, e) || !parse_sampling(root, r, e) ||
        !parse_output_config(root, r, e) ||
        !srv_json_opt_bool(root, "stream", &r->stream, e))
        goto done;
    r->sp.seed = srv_random_u64();
    r->hints.spillway = cJSON_GetObjectItemCaseSensitive(root, "spillway");
    ok = true;
done:
    if (!ok) srv_request_free(r);
    return ok;
}
