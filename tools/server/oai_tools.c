/* oai_tools.c — the OpenAI wire format's tool calling, parsed into the
 * internal request: "tools" (function tools with a JSON Schema of
 * parameters), "tool_choice" ("none" | "auto" | "required" | a named
 * function), "parallel_tool_calls", an assistant message's "tool_calls"
 * (TOOL_USE blocks) and "tool" messages (TOOL_RESULT blocks, each answering
 * a call of the assistant message before it). Every field is checked and a
 * failure names it as OpenAI does ("tools[1].function.name"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

#define BAD_REQ "invalid_request_error"

static bool bad(srv_error *e, const char *param, const char *msg, const char *arg) {
    srv_error_set(e, 400, BAD_REQ, "invalid_value", param, msg, arg);
    return false;
}

/* OpenAI: ^[a-zA-Z0-9_-]{1,64}$ */
static bool name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool parse_tool(const cJSON *t, size_t i, srv_request *r, srv_error *e) {
    char p[96];
    snprintf(p, sizeof p, "tools[%zu]", i);
    if (!cJSON_IsObject(t)) return srv_json_type_error(e, p, "an object", t);
    const cJSON *type = srv_json_field(t, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "function")) {
        snprintf(p + strlen(p), sizeof p - strlen(p), ".type");
        return bad(e, p, "tool type must be 'function'%s", "");
    }
    const cJSON *fn = srv_json_field(t, "function");
    snprintf(p, sizeof p, "tools[%zu].function", i);
    if (!cJSON_IsObject(fn)) return srv_json_type_error(e, p, "an object", fn);
    const cJSON *name = srv_json_field(fn, "name"), *desc = srv_json_field(fn, "description");
    const cJSON *params = srv_json_field(fn, "parameters");
    snprintf(p, sizeof p, "tools[%zu].function.name", i);
    if (!cJSON_IsString(name)) return srv_json_type_error(e, p, "a string", name);
    if (!name_ok(name->valuestring))
        return bad(e, p, "function name '%.64s' must match ^[a-zA-Z0-9_-]{1,64}$", name->valuestring);
    for (size_t k = 0; k < r->n_tools; k++)
        if (!strcmp(r->tools[k].name, name->valuestring))
            return bad(e, "tools", "function names must be unique: '%s' appears twice", name->valuestring);
    snprintf(p, sizeof p, "tools[%zu].function.description", i);
    if (desc && !cJSON_IsString(desc)) return srv_json_type_error(e, p, "a string", desc);
    snprintf(p, sizeof p, "tools[%zu].function.parameters", i);
    if (params && !cJSON_IsObject(params)) return srv_json_type_error(e, p, "a JSON Schema object", params);
    srv_tool *tool = &r->tools[r->n_tools++];
    if (!(tool->name = strdup(name->valuestring)) || (desc && !(tool->description = strdup(desc->valuestring))) ||
        (params && !(tool->parameters = cJSON_Duplicate(params, true))))
        return srv_json_nomem(e);
    return true;
}

static bool parse_choice(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *tc = srv_json_field(root, "tool_choice");
    r->tool_choice = r->n_tools ? SRV_TOOL_AUTO : SRV_TOOL_NONE;
    if (!tc) return true;
    if (cJSON_IsString(tc)) {
        const char *v = tc->valuestring;
        if (!strcmp(v, "none")) r->tool_choice = SRV_TOOL_NONE;
        else if (!strcmp(v, "auto")) r->tool_choice = SRV_TOOL_AUTO;
        else if (!strcmp(v, "required")) r->tool_choice = SRV_TOOL_ANY;
        else return bad(e, "tool_choice", "'%.40s' is not one of 'none', 'auto', 'required'", v);
    } else if (cJSON_IsObject(tc)) {
        const cJSON *fn = srv_json_field(tc, "function");
        const cJSON *name = fn ? srv_json_field(fn, "name") : NULL;
        if (!cJSON_IsString(name)) return srv_json_type_error(e, "tool_choice.function.name", "a string", name);
        size_t k = 0;
        while (k < r->n_tools && strcmp(r->tools[k].name, name->valuestring)) k++;
        if (k == r->n_tools)
            return bad(e, "tool_choice", "tool_choice names '%.64s', which is not among the tools",
                       name->valuestring);
        r->tool_choice = SRV_TOOL_NAMED;
        if (!(r->tool_name = strdup(name->valuestring))) return srv_json_nomem(e);
    } else {
        return srv_json_type_error(e, "tool_choice", "a string or an object", tc);
    }
    if (r->tool_choice != SRV_TOOL_NONE && !r->n_tools)
        return bad(e, "tool_choice", "tool_choice '%s' needs tools", cJSON_IsString(tc) ? tc->valuestring : "function");
    return true;
}

bool oai_parse_tools(const cJSON *root, srv_request *r, srv_error *e) {
    const cJSON *tools = srv_json_field(root, "tools");
    if (tools) {
        if (!cJSON_IsArray(tools)) return srv_json_type_error(e, "tools", "an array", tools);
        size_t n = (size_t)cJSON_GetArraySize(tools), i = 0;
        if (n && !(r->tools = calloc(n, sizeof *r->tools))) return srv_json_nomem(e);
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            if (!parse_tool(t, i++, r, e)) return false;
        }
    }
    r->parallel_tool_calls = true;
    if (!srv_json_opt_bool(root, "parallel_tool_calls", &r->parallel_tool_calls, e)) return false;
    return parse_choice(root, r, e);
}

bool oai_parse_tool_calls(const cJSON *calls, size_t i, srv_msg *m, srv_error *e) {
    char p[96];
    snprintf(p, sizeof p, "messages[%zu].tool_calls", i);
    if (!cJSON_IsArray(calls)) return srv_json_type_error(e, p, "an array", calls);
    size_t k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, calls) {
        snprintf(p, sizeof p, "messages[%zu].tool_calls[%zu]", i, k);
        if (!cJSON_IsObject(c)) return srv_json_type_error(e, p, "an object", c);
        const cJSON *id = srv_json_field(c, "id"), *fn = srv_json_field(c, "function");
        const cJSON *name = fn ? srv_json_field(fn, "name") : NULL, *args = fn ? srv_json_field(fn, "arguments") : NULL;
        snprintf(p, sizeof p, "messages[%zu].tool_calls[%zu].id", i, k);
        if (!cJSON_IsString(id)) return srv_json_type_error(e, p, "a string", id);
        snprintf(p, sizeof p, "messages[%zu].tool_calls[%zu].function.name", i, k);
        if (!cJSON_IsString(name)) return srv_json_type_error(e, p, "a string", name);
        snprintf(p, sizeof p, "messages[%zu].tool_calls[%zu].function.arguments", i, k);
        if (args && !cJSON_IsString(args)) return srv_json_type_error(e, p, "a string (JSON text)", args);
        cJSON *obj = cJSON_Parse(args && args->valuestring[0] ? args->valuestring : "{}");
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            return bad(e, p, "the arguments are not a JSON object%s", "");
        }
        srv_block *b = srv_msg_add_block(m, SRV_BLOCK_TOOL_USE);
        char *input = b ? cJSON_PrintUnformatted(obj) : NULL;
        cJSON_Delete(obj);
        if (!input || !(b->id = strdup(id->valuestring)) || !(b->name = strdup(name->valuestring))) {
            free(input);
            return srv_json_nomem(e);
        }
        b->input = input;
        k++;
    }
    return true;
}

/* The text of a tool message's content: a string, or text parts joined. */
static char *tool_content(const cJSON *c, const char *p, srv_error *e) {
    if (cJSON_IsString(c)) {
        char *t = strdup(c->valuestring);
        if (!t) srv_json_nomem(e);
        return t;
    }
    if (!cJSON_IsArray(c)) {
        srv_json_type_error(e, p, "a string or an array of text parts", c);
        return NULL;
    }
    sbuf b = {0};
    sbuf_puts(&b, "");
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *t = srv_json_field(part, "text");
        if (!cJSON_IsString(t)) {
            sbuf_free(&b);
            srv_json_type_error(e, p, "text parts", part);
            return NULL;
        }
        if (b.n) sbuf_puts(&b, "\n");
        sbuf_puts(&b, t->valuestring);
    }
    char *out = sbuf_take(&b);
    if (!out) srv_json_nomem(e);
    return out;
}

bool oai_parse_tool_message(const cJSON *msg, size_t i, srv_request *r, srv_error *e) {
    char p[96];
    snprintf(p, sizeof p, "messages[%zu].tool_call_id", i);
    const cJSON *id = srv_json_field(msg, "tool_call_id");
    if (!cJSON_IsString(id)) return srv_json_type_error(e, p, "a string", id);
    /* it answers a call of the assistant message before this run of tool messages */
    srv_msg *prev = r->n_msgs ? &r->msgs[r->n_msgs - 1] : NULL;
    bool into_prev = prev && !strcmp(prev->role, "user") && prev->n_blocks &&
                     prev->blocks[0].type == SRV_BLOCK_TOOL_RESULT;
    const srv_msg *asst = into_prev ? (r->n_msgs > 1 ? &r->msgs[r->n_msgs - 2] : NULL) : prev;
    bool found = false;
    for (size_t k = 0; asst && !strcmp(asst->role, "assistant") && k < asst->n_blocks; k++)
        found |= asst->blocks[k].type == SRV_BLOCK_TOOL_USE && !strcmp(asst->blocks[k].id, id->valuestring);
    if (!found)
        return bad(e, p,
                   "a 'tool' message must answer a tool call ('%.64s') of the assistant message "
                   "before it",
                   id->valuestring);
    snprintf(p, sizeof p, "messages[%zu].content", i);
    char *text = tool_content(cJSON_GetObjectItemCaseSensitive(msg, "content"), p, e);
    if (!text) return false;
    srv_msg *m = into_prev ? prev : srv_request_add_msg(r, "user");
    srv_block *b = m ? srv_msg_add_block(m, SRV_BLOCK_TOOL_RESULT) : NULL;
    if (!b || !(b->id = strdup(id->valuestring))) {
        free(text);
        return srv_json_nomem(e);
    }
    b->text = text;
    return true;
}
