/* prompt.c — from the internal request to the local model's prompt: chat
 * messages (content blocks, a top-level system text, tools) turned back into
 * the OpenAI shape templates are written for and rendered with the chat
 * template (the model's own Jinja, exactly as transformers would), or the
 * completions prompt, then tokenized. render_chat is the one place messages
 * become prompt text, for generation and for POST /apply-template alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "oai.h"
#include "server.h"

static bool nomem(srv_error *e) {
    srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return false;
}

static bool tokenize(const srv *s, const char *text, bool add_bos, int32_t **ids, size_t *n,
                     srv_error *e) {
    sw_err err = {{0}};
    if (sw_tokenize(s->tok, text, strlen(text), add_bos, true, ids, n, &err) != SW_OK) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", NULL,
                      "cannot tokenize the prompt: %s", err.msg);
        return false;
    }
    return true;
}

/* Render bounds for chat templates: model files and requests are untrusted. */
static const sw_jinja_limits k_template_limits = {
    .max_steps = 50000000, .max_output = (size_t)32 << 20, .max_memory = (size_t)128 << 20,
    .max_depth = 128};

/* Render OpenAI-shaped messages (and tools, kwargs) with the server's chat
 * template; a template that raises is a 400 with its message. */
static bool render_chat(const srv *s, const cJSON *messages, const cJSON *tools,
                        const cJSON *kwargs, bool add_generation_prompt, char **out,
                        srv_error *e) {
    int32_t bos = sw_tokenizer_bos(s->tok), eos = sw_tokenizer_eos(s->tok);
    sw_chat_input in = {
        .messages = messages,
        .tools = tools,
        .kwargs = kwargs,
        .add_generation_prompt = add_generation_prompt,
        .openai = true,
        .bos_token = bos >= 0 ? sw_tokenizer_token_text(s->tok, bos) : NULL,
        .eos_token = eos >= 0 ? sw_tokenizer_token_text(s->tok, eos) : NULL,
        .limits = &k_template_limits,
    };
    /* transformers picks the tokenizer's "tool_use" template when tools are given */
    const sw_chat_template *t =
        s->chat_tools && cJSON_GetArraySize(tools) > 0 ? s->chat_tools : s->chat;
    sw_err err = {{0}};
    sw_status st = sw_chat_render_template(t, &in, out, NULL, &err);
    if (st == SW_OK) return true;
    if (st == SW_E_NOMEM) return nomem(e);
    srv_error_set(e, 400, "invalid_request_error", "invalid_value", "messages",
                  "the chat template (%s) cannot render these messages: %s",
                  sw_chat_template_label(t), err.msg);
    return false;
}

/* The request's messages in the OpenAI shape templates are written for: the
 * system text first; text blocks joined by newlines; an assistant's tool calls
 * as tool_calls with their arguments as objects; each tool result as a "tool"
 * message (with the called tool's name). */
static cJSON *tool_call_json(const srv_block *k) {
    cJSON *c = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    if (!c || !fn) {
        cJSON_Delete(c);
        cJSON_Delete(fn);
        return NULL;
    }
    if (k->id) cJSON_AddStringToObject(c, "id", k->id);
    cJSON_AddStringToObject(c, "type", "function");
    cJSON_AddStringToObject(fn, "name", k->name ? k->name : "");
    cJSON *args = cJSON_Parse(k->input ? k->input : "{}");
    if (args) cJSON_AddItemToObject(fn, "arguments", args);
    else cJSON_AddStringToObject(fn, "arguments", k->input ? k->input : "");
    cJSON_AddItemToObject(c, "function", fn);
    return c;
}

static const char *called_tool(const srv_request *r, const char *id) {
    for (size_t i = 0; id && i < r->n_msgs; i++)
        for (size_t j = 0; j < r->msgs[i].n_blocks; j++) {
            const srv_block *k = &r->msgs[i].blocks[j];
            if (k->type == SRV_BLOCK_TOOL_USE && k->id && !strcmp(k->id, id)) return k->name;
        }
    return NULL;
}

/* native: the template renders tool calls itself (tool_calls, "tool" messages);
 * else calls and results are text in the model family's syntax (toolcall.c). */
static bool add_message(cJSON *arr, const srv *s, const srv_request *r, const srv_msg *m,
                        bool native) {
    sbuf text = {0};
    sbuf_puts(&text, "");
    cJSON *calls = NULL;
    bool any_text = false;
    for (size_t i = 0; i < m->n_blocks; i++) {
        const srv_block *k = &m->blocks[i];
        if (!native && k->type != SRV_BLOCK_TEXT) {
            if (any_text) sbuf_puts(&text, "\n");
            srv_tools_render_block(s, k, &text);
            any_text = true;
        } else if (k->type == SRV_BLOCK_TOOL_USE) {
            cJSON *c = tool_call_json(k);
            if (!c || (!calls && !(calls = cJSON_CreateArray()))) {
                cJSON_Delete(c);
                goto oom;
            }
            cJSON_AddItemToArray(calls, c);
        } else if (k->type == SRV_BLOCK_TOOL_RESULT) {
            cJSON *t = cJSON_CreateObject();
            if (!t) goto oom;
            cJSON_AddStringToObject(t, "role", "tool");
            if (k->id) cJSON_AddStringToObject(t, "tool_call_id", k->id);
            const char *name = called_tool(r, k->id);
            if (name) cJSON_AddStringToObject(t, "name", name);
            sbuf res = {0};
            if (k->is_error) sbuf_puts(&res, "Error: ");
            sbuf_puts(&res, k->text ? k->text : "");
            char *rt = sbuf_take(&res);
            cJSON_AddStringToObject(t, "content", rt ? rt : "");
            free(rt);
            cJSON_AddItemToArray(arr, t);
        } else {
            if (any_text) sbuf_puts(&text, "\n");
            sbuf_puts(&text, k->text ? k->text : "");
            any_text = true;
        }
    }
    if (any_text || calls || m->n_blocks == 0) {
        cJSON *o = cJSON_CreateObject();
        char *t = sbuf_take(&text);
        if (!o || !t) {
            cJSON_Delete(o);
            free(t);
            cJSON_Delete(calls);
            return false;
        }
        cJSON_AddStringToObject(o, "role", m->role);
        cJSON_AddStringToObject(o, "content", t);
        free(t);
        if (calls) cJSON_AddItemToObject(o, "tool_calls", calls);
        cJSON_AddItemToArray(arr, o);
        return true;
    }
    sbuf_free(&text);
    return true;
oom:
    sbuf_free(&text);
    cJSON_Delete(calls);
    return false;
}

/* A system text with the tools' description after it (either may be NULL). */
static char *join_system(const char *system, const char *tools) {
    sbuf b = {0};
    sbuf_puts(&b, system ? system : "");
    if (system && *system && tools) sbuf_puts(&b, "\n\n");
    if (tools) sbuf_puts(&b, tools);
    return sbuf_take(&b);
}

/* The messages in the OpenAI shape; tools_text (templates without tool
 * support) joins the system message or becomes one. */
static cJSON *request_messages(const srv *s, const srv_request *r, size_t n_msgs, bool native,
                               const char *tools_text) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    bool first_system = n_msgs && !strcmp(r->msgs[0].role, "system");
    /* --system-prompt stands in for a system message the chat does not bring */
    const char *system = r->system ? r->system : first_system ? NULL : s->cfg.system_prompt;
    if (system || (tools_text && !first_system)) {
        char *sys = join_system(system, tools_text);
        cJSON *o = cJSON_CreateObject();
        if (!o || !sys) {
            free(sys);
            cJSON_Delete(o);
            goto oom;
        }
        cJSON_AddStringToObject(o, "role", "system");
        cJSON_AddStringToObject(o, "content", sys);
        free(sys);
        cJSON_AddItemToArray(arr, o);
        tools_text = NULL;
    }
    for (size_t i = 0; i < n_msgs; i++) {
        if (!add_message(arr, s, r, &r->msgs[i], native)) goto oom;
        if (i == 0 && first_system && tools_text) {
            /* the tools' description after the first system message's text */
            cJSON *first = cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1);
            cJSON *c = cJSON_GetObjectItemCaseSensitive(first, "content");
            char *sys = join_system(cJSON_IsString(c) ? c->valuestring : "", tools_text);
            if (!sys) goto oom;
            cJSON_ReplaceItemInObjectCaseSensitive(first, "content", cJSON_CreateString(sys));
            free(sys);
        }
    }
    return arr;
oom:
    cJSON_Delete(arr);
    return NULL;
}

static cJSON *request_tools(const srv_request *r) {
    if (r->n_tools == 0) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < r->n_tools; i++) {
        const srv_tool *t = &r->tools[i];
        cJSON *o = cJSON_CreateObject(), *fn = cJSON_CreateObject();
        cJSON *params = t->parameters ? cJSON_Duplicate(t->parameters, 1)
                                      : cJSON_Parse("{\"type\": \"object\", \"properties\": {}}");
        if (!o || !fn || !params) {
            cJSON_Delete(o);
            cJSON_Delete(fn);
            cJSON_Delete(params);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddStringToObject(o, "type", "function");
        cJSON_AddStringToObject(fn, "name", t->name);
        if (t->description) cJSON_AddStringToObject(fn, "description", t->description);
        cJSON_AddItemToObject(fn, "parameters", params);
        cJSON_AddItemToObject(o, "function", fn);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* llama.cpp's extension: extra template variables, e.g. {"enable_thinking": false} */
static const cJSON *template_kwargs(const cJSON *body) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(body, "chat_template_kwargs");
    return cJSON_IsObject(k) ? k : NULL;
}

bool srv_prompt_render(const srv *s, const srv_request *r, char **out, srv_error *e) {
    *out = NULL;
    /* A final assistant message to continue: the turns before it, the
     * opening of the assistant's turn, then its text as the answer's start. */
    size_t n_render = r->continue_final && r->n_msgs ? r->n_msgs - 1 : r->n_msgs;
    /* a template that knows tools gets them (its own tool prompt and syntax);
     * for one that does not, the tools are described in the system prompt */
    bool active = srv_tools_active(r);
    bool native = s->chat_native_tools || (active && s->chat_tools);
    char *tools_text = !native && active ? srv_tools_system_text(s, r) : NULL;
    cJSON *msgs = request_messages(s, r, n_render, native, tools_text);
    cJSON *tools = native && active ? request_tools(r) : NULL;
    bool ok = msgs && (!native || !active || tools) && (native || !active || tools_text);
    if (!ok) nomem(e);
    else ok = render_chat(s, msgs, tools, template_kwargs(r->raw), true, out, e);
    cJSON_Delete(msgs);
    cJSON_Delete(tools);
    free(tools_text);
    if (ok && r->continue_final && r->n_msgs) {
        const srv_msg *last = &r->msgs[r->n_msgs - 1];
        sbuf b = {0};
        sbuf_puts(&b, *out);
        for (size_t i = 0; i < last->n_blocks; i++)
            if (last->blocks[i].type == SRV_BLOCK_TEXT && last->blocks[i].text)
                sbuf_puts(&b, last->blocks[i].text);
        free(*out);
        if (!(*out = sbuf_take(&b))) return nomem(e);
    }
    return ok;
}

int srv_handle_apply_template(srv_conn *sc) {
    srv *s = sc->s;
    srv_error e;
    cJSON *root = srv_json_parse_object(sc->body, sc->body_len, &e);
    if (!root) return srv_respond_error(sc, &e);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    const cJSON *agp = cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt");
    char *text = NULL;
    int ret;
    if (!cJSON_IsArray(msgs)) {
        srv_error_set(&e, 400, "invalid_request_error",
                      msgs ? "invalid_type" : "missing_required_parameter", "messages",
                      "'messages' must be an array of messages");
        ret = srv_respond_error(sc, &e);
    } else if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools)) {
        srv_error_set(&e, 400, "invalid_request_error", "invalid_type", "tools",
                      "'tools' must be an array of tools");
        ret = srv_respond_error(sc, &e);
    } else if (agp && !cJSON_IsBool(agp)) {
        srv_error_set(&e, 400, "invalid_request_error", "invalid_type", "add_generation_prompt",
                      "'add_generation_prompt' must be a boolean");
        ret = srv_respond_error(sc, &e);
    } else if (!render_chat(s, msgs, cJSON_IsArray(tools) ? tools : NULL, template_kwargs(root),
                            agp ? cJSON_IsTrue(agp) : true, &text, &e)) {
        ret = srv_respond_error(sc, &e);
    } else {
        sbuf b = {0};
        sbuf_puts(&b, "{\"prompt\":");
        oai_json_str(&b, text, strlen(text));
        sbuf_puts(&b, "}");
        ret = srv_respond(sc, 200, sbuf_take(&b), NULL);
    }
    free(text);
    cJSON_Delete(root);
    return ret;
}

static bool chat_prompt(const srv *s, const srv_request *r, int32_t **ids, size_t *n,
                        srv_error *e) {
    char *text = NULL;
    if (!srv_prompt_render(s, r, &text, e)) return false;
    int32_t bos = sw_tokenizer_bos(s->tok);
    const char *bos_s = bos >= 0 ? sw_tokenizer_token_text(s->tok, bos) : "";
    /* A template that spells BOS out already put it in the text. */
    bool add_bos = sw_tokenizer_add_bos(s->tok) && bos >= 0;
    if (add_bos && bos_s && *bos_s && !strncmp(text, bos_s, strlen(bos_s))) add_bos = false;
    bool ok = tokenize(s, text, add_bos, ids, n, e);
    free(text);
    return ok;
}

static bool completion_prompt(const srv *s, const srv_request *r, int32_t **ids, size_t *n,
                              char **echo, srv_error *e) {
    if (r->prompt_ids) {
        *ids = malloc(r->n_prompt_ids * sizeof **ids);
        if (!*ids) return nomem(e);
        memcpy(*ids, r->prompt_ids, r->n_prompt_ids * sizeof **ids);
        *n = r->n_prompt_ids;
        if (r->echo) {
            sw_err err = {{0}};
            if (sw_detokenize(s->tok, *ids, *n, false, echo, &err) != SW_OK) *echo = NULL;
        }
        return true;
    }
    if (r->echo) *echo = strdup(r->prompt);
    bool add_bos = sw_tokenizer_add_bos(s->tok) && sw_tokenizer_bos(s->tok) >= 0;
    if (!tokenize(s, r->prompt, add_bos, ids, n, e)) return false;
    if (*n == 0) {
        free(*ids);
        *ids = NULL;
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt",
                      "the prompt is empty after tokenization (and this model adds no BOS)");
        return false;
    }
    return true;
}

bool srv_prompt_tokens(const srv *s, const srv_request *r, int32_t **ids, size_t *n, char **echo,
                       srv_error *e) {
    *ids = NULL;
    *n = 0;
    *echo = NULL;
    bool ok = r->wire == SRV_WIRE_OAI_COMPLETIONS ? completion_prompt(s, r, ids, n, echo, e)
                                                  : chat_prompt(s, r, ids, n, e);
    if (ok && *n > (size_t)INT32_MAX) {
        srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded", NULL,
                      "the prompt is too long");
        ok = false;
    }
    if (!ok) {
        free(*ids);
        free(*echo);
        *ids = NULL;
        *echo = NULL;
        *n = 0;
    }
    return ok;
}
