/* chat.c — chat templates as Jinja: the model's own (from the GGUF),
 * a file, or a built-in text chosen by name, rendered with transformers'
 * variables (messages, tools, documents, add_generation_prompt, bos/eos tokens,
 * extra keyword arguments) and, for OpenAI requests, the adaptation templates
 * expect (tool-call arguments as objects, null content as "").
 *
 * The built-in texts are ours. Each reproduces what its family's official
 * template renders for system / user / assistant conversations (trim_blocks and
 * lstrip_blocks on, as transformers renders):
 *   chatml     "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message (Qwen, OpenHermes, ...)
 *   llama2     "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s>", alternating roles
 *   llama3     BOS, "<|start_header_id|>ROLE<|end_header_id|>\n\n" + trim(C) + "<|eot_id|>"
 *   mistral    BOS, " [INST] " + (first turn: SYSTEM "\n\n") + U + " [/INST]", " " + A + EOS
 *   zephyr     "<|ROLE|>\nCONTENT" + EOS + "\n"
 *   gemma      BOS, "<start_of_turn>ROLE\n" + trim(C) + "<end_of_turn>\n", assistant -> model,
 *              the system text prefixed to the first user turn
 *   phi3       "<|ROLE|>\nCONTENT<|end|>\n", then "<|assistant|>\n" or EOS
 *   deepseek   BOS, "S\n\n", "User: U\n\n", "Assistant: A" + EOS, prompt "Assistant:"
 *   deepseek2  the same text as deepseek (DeepSeek-V2 kept deepseek-llm's template)
 *   deepseek3  BOS, system texts joined by "\n\n", "<｜User｜>U", "<｜Assistant｜>A<｜end▁of▁sentence｜>" */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"

struct sw_chat_template {
    sw_jinja_tmpl *tmpl;
    char *label;
    char *source;
};

/* ---- built-in template texts ------------------------------------------------------- */

#define ALTERNATE                                                                            \
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"                       \
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}" \
    "{%- endif -%}"

#define SPLIT_SYSTEM                                                                         \
    "{%- if messages and messages[0]['role'] == 'system' -%}"                                \
    "{%- set system_message = messages[0]['content'] -%}"                                    \
    "{%- set loop_messages = messages[1:] -%}"                                               \
    "{%- else -%}"                                                                           \
    "{%- set loop_messages = messages -%}"                                                   \
    "{%- endif -%}"

static const char k_chatml[] =
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' ~ message['role'] ~ '\\n' ~ message['content'] ~ '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

static const char k_llama2[] =
    SPLIT_SYSTEM
    "{%- for message in loop_messages -%}" ALTERNATE
    "{%- if loop.first and system_message is defined -%}"
    "{%- set content = '<<SYS>>\\n' ~ system_message ~ '\\n<</SYS>>\\n\\n' ~ message['content'] -%}"
    "{%- else -%}{%- set content = message['content'] -%}{%- endif -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- bos_token ~ '[INST] ' ~ content | trim ~ ' [/INST]' -}}"
    "{%- else -%}"
    "{{- ' ' ~ content | trim ~ ' ' ~ eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}";

static const char k_llama3[] =
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{- '<|start_header_id|>' ~ message['role'] ~ '<|end_header_id|>\\n\\n' ~ "
    "message['content'] | trim ~ '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}"
    "{%- endif -%}";

static const char k_mistral[] =
    SPLIT_SYSTEM
    "{{- bos_token -}}"
    "{%- for message in loop_messages -%}" ALTERNATE
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.first and system_message is defined -%}"
    "{{- ' [INST] ' ~ system_message ~ '\\n\\n' ~ message['content'] ~ ' [/INST]' -}}"
    "{%- else -%}{{- ' [INST] ' ~ message['content'] ~ ' [/INST]' -}}{%- endif -%}"
    "{%- else -%}{{- ' ' ~ message['content'] ~ eos_token -}}{%- endif -%}"
    "{%- endfor -%}";

static const char k_zephyr[] =
    "{%- for message in messages -%}"
    "{{- '<|' ~ message['role'] ~ '|>\\n' ~ message['content'] ~ eos_token ~ '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- endif -%}";

static const char k_gemma[] =
    "{{- bos_token -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] | trim ~ '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}" ALTERNATE
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{- '<start_of_turn>' ~ role ~ '\\n' ~ (first_user_prefix if loop.first else '') ~ "
    "message['content'] | trim ~ '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

static const char k_phi3[] =
    "{%- for message in messages -%}"
    "{{- '<|' ~ message['role'] ~ '|>\\n' ~ message['content'] ~ '<|end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\\n' -}}{%- else -%}{{- eos_token -}}{%- endif -%}";

static const char k_deepseek[] =
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{- 'User: ' ~ message['content'] ~ '\\n\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}{{- 'Assistant: ' ~ message['content'] ~ eos_token -}}"
    "{%- elif message['role'] == 'system' -%}{{- message['content'] ~ '\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'Assistant:' -}}{%- endif -%}";

static const char k_deepseek3[] =
    "{{- bos_token -}}"
    "{{- messages | selectattr('role', 'equalto', 'system') | map(attribute='content') | join('\\n\\n') -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{- '<\xef\xbd\x9cUser\xef\xbd\x9c>' ~ message['content'] -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>' ~ message['content'] ~ "
    "'<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>' -}}{%- endif -%}";

static const struct {
    const char *name;
    const char *src;
} k_builtin[] = {
    {"chatml", k_chatml},   {"llama2", k_llama2},       {"llama3", k_llama3},
    {"mistral", k_mistral}, {"zephyr", k_zephyr},       {"gemma", k_gemma},
    {"phi3", k_phi3},       {"deepseek", k_deepseek},   {"deepseek2", k_deepseek},
    {"deepseek3", k_deepseek3},
};

const char *sw_chat_names(void) {
    return "chatml, llama2, llama3, mistral, zephyr, gemma, phi3, deepseek, deepseek2, deepseek3";
}

const char *sw_chat_builtin_source(const char *name) {
    for (size_t i = 0; name && i < sizeof k_builtin / sizeof k_builtin[0]; i++)
        if (!strcmp(name, k_builtin[i].name)) return k_builtin[i].src;
    return NULL;
}

/* ---- templates ----------------------------------------------------------------------------- */

sw_status sw_chat_template_parse(const char *src, size_t len, const char *label,
                                 sw_chat_template **out, sw_err *err) {
    if (!out || (!src && len)) return sw_err_set(err, SW_E_INVALID_ARG, "chat template: NULL argument");
    *out = NULL;
    sw_chat_template *t = calloc(1, sizeof *t);
    if (!t) return sw_err_set(err, SW_E_NOMEM, "chat template: out of memory");
    t->label = strdup(label ? label : "template");
    t->source = malloc(len + 1);
    if (!t->label || !t->source) {
        sw_chat_template_free(t);
        return sw_err_set(err, SW_E_NOMEM, "chat template: out of memory");
    }
    if (len) memcpy(t->source, src, len);
    t->source[len] = '\0';
    sw_status st = sw_jinja_parse(src, len, &t->tmpl, err);
    if (st != SW_OK) {
        sw_err_wrap(err, st, "chat template %s", t->label);
        sw_chat_template_free(t);
        return st;
    }
    *out = t;
    return SW_OK;
}

sw_status sw_chat_template_builtin(const char *name, sw_chat_template **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_template_builtin: out is NULL");
    *out = NULL;
    const char *src = sw_chat_builtin_source(name);
    if (!src)
        return sw_err_set(err, SW_E_NOT_FOUND,
                          "unknown chat template '%.100s' (--chat-template accepts: %s; "
                          "--chat-template-file takes a Jinja file)",
                          name ? name : "(null)", sw_chat_names());
    return sw_chat_template_parse(src, strlen(src), name, out, err);
}

sw_status sw_chat_template_file(const char *path, sw_chat_template **out, sw_err *err) {
    if (!path || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_template_file: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sw_err_set(err, SW_E_IO, "--chat-template-file %s: cannot open", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16384;
            if (cap > ((size_t)64 << 20)) {
                free(buf);
                fclose(f);
                return sw_err_set(err, SW_E_RANGE, "--chat-template-file %s: larger than 64 MiB", path);
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return sw_err_set(err, SW_E_NOMEM, "--chat-template-file %s: out of memory", path);
            }
            buf = nb;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return sw_err_set(err, SW_E_IO, "--chat-template-file %s: read error", path);
    }
    char label[4200];
    snprintf(label, sizeof label, "file:%s", path);
    sw_status st = sw_chat_template_parse(buf, len, label, out, err);
    free(buf);
    return st;
}

sw_status sw_chat_template_gguf(const sw_gguf *g, const char *name, sw_chat_template **out,
                                sw_err *err) {
    if (!g || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_template_gguf: NULL argument");
    *out = NULL;
    char key[256], label[300];
    if (name) {
        snprintf(key, sizeof key, "tokenizer.chat_template.%s", name);
        snprintf(label, sizeof label, "model:%s", name);
    } else {
        snprintf(key, sizeof key, "tokenizer.chat_template");
        snprintf(label, sizeof label, "model");
    }
    const char *src = NULL;
    sw_status st = sw_gguf_get_str(g, key, &src, err);
    const char *path = sw_gguf_path(g) ? sw_gguf_path(g) : "model";
    const char *arch = NULL;
    if (st == SW_E_NOT_FOUND && !name &&
        sw_gguf_get_str(g, "general.architecture", &arch, NULL) == SW_OK &&
        (!strcmp(arch, "gemma") || !strcmp(arch, "gemma2") || !strcmp(arch, "gemma3"))) {
        /* a Gemma file without a template (the Gemma 3 270M GGUF has none):
         * Gemma's turn format is known */
        src = sw_chat_builtin_source("gemma");
        return sw_chat_template_parse(src, strlen(src), "gemma (built-in; the file has none)",
                                      out, err);
    }
    if (st == SW_E_NOT_FOUND)
        return sw_err_set(err, SW_E_NOT_FOUND,
                          "%s: no %s; choose one with --chat-template NAME (%s) or "
                          "--chat-template-file FILE",
                          path, key, sw_chat_names());
    if (st != SW_OK) return st;
    st = sw_chat_template_parse(src, strlen(src), label, out, err);
    if (st != SW_OK) sw_err_wrap(err, st, "%s", path);
    return st;
}

void sw_chat_template_free(sw_chat_template *t) {
    if (!t) return;
    sw_jinja_free(t->tmpl);
    free(t->label);
    free(t->source);
    free(t);
}

const char *sw_chat_template_label(const sw_chat_template *t) { return t ? t->label : NULL; }
const char *sw_chat_template_source(const sw_chat_template *t) { return t ? t->source : NULL; }

/* ---- OpenAI adaptation ---------------------------------------------------------------------- */

/* A copy of messages with tool-call arguments parsed and null contents emptied. */
static cJSON *adapt_openai(const cJSON *messages) {
    cJSON *m = cJSON_Duplicate(messages, 1);
    if (!m || !cJSON_IsArray(m)) return m;
    cJSON *msg;
    cJSON_ArrayForEach(msg, m) {
        if (!cJSON_IsObject(msg)) continue;
        cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (content && cJSON_IsNull(content))
            cJSON_ReplaceItemInObjectCaseSensitive(msg, "content", cJSON_CreateString(""));
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
        cJSON *call;
        cJSON_ArrayForEach(call, calls) {
            cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
            cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            if (!cJSON_IsString(args) || !args->valuestring) continue;
            cJSON *parsed = cJSON_Parse(args->valuestring);
            if (parsed) cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
        }
    }
    return m;
}

/* ---- render ------------------------------------------------------------------------------------ */

static sw_status set_value(sw_jinja_vars *v, const char *name, const char *json, size_t len,
                           const cJSON *j, sw_err *err) {
    if (json) return sw_jinja_vars_set_json(v, name, json, len, err);
    if (j) return sw_jinja_vars_set_cjson(v, name, j, err);
    return sw_jinja_vars_set_none(v, name, err);
}

/* Extra keyword arguments: each member of the object becomes a variable (the
 * tokens may be overridden); those the call already passes by name are a
 * TypeError in Python, so here too. */
static sw_status set_kwargs(sw_jinja_vars *v, const sw_chat_input *in, sw_err *err) {
    static const char *const fixed[] = {"messages", "tools", "documents", "add_generation_prompt",
                                        NULL};
    if (in->kwargs_json) return sw_jinja_vars_update_json(v, in->kwargs_json, in->kwargs_json_len, fixed, err);
    if (in->kwargs) return sw_jinja_vars_update_cjson(v, in->kwargs, fixed, err);
    return SW_OK;
}

sw_status sw_chat_render_template(const sw_chat_template *t, const sw_chat_input *in, char **out,
                                  size_t *out_len, sw_err *err) {
    if (!t || !in || !out) return sw_err_set(err, SW_E_INVALID_ARG, "chat render: NULL argument");
    *out = NULL;
    if (!in->messages_json && !in->messages)
        return sw_err_set(err, SW_E_INVALID_ARG, "chat render: no messages");
    sw_jinja_vars *v = NULL;
    sw_status st = sw_jinja_vars_create(&v, err);
    if (st != SW_OK) return st;
    cJSON *adapted = NULL;
    const char *mjson = in->messages_json;
    const cJSON *mj = in->messages;
    if (in->openai) {
        cJSON *parsed = NULL;
        if (mjson) {
            parsed = cJSON_ParseWithLength(mjson, in->messages_json_len);
            if (!parsed) {
                st = sw_err_set(err, SW_E_FORMAT, "messages: not valid JSON");
                goto done;
            }
            mj = parsed;
        }
        adapted = adapt_openai(mj);
        cJSON_Delete(parsed);
        if (!adapted) {
            st = sw_err_set(err, SW_E_NOMEM, "messages: out of memory");
            goto done;
        }
        mjson = NULL;
        mj = adapted;
    }
    st = set_value(v, "messages", mjson, in->messages_json_len, mj, err);
    if (st == SW_OK) st = set_value(v, "tools", in->tools_json, in->tools_json_len, in->tools, err);
    if (st == SW_OK) st = sw_jinja_vars_set_none(v, "documents", err);
    if (st == SW_OK) st = sw_jinja_vars_set_bool(v, "add_generation_prompt", in->add_generation_prompt, err);
    if (st == SW_OK && in->bos_token) st = sw_jinja_vars_set_str(v, "bos_token", in->bos_token, err);
    if (st == SW_OK && in->eos_token) st = sw_jinja_vars_set_str(v, "eos_token", in->eos_token, err);
    if (st == SW_OK) st = set_kwargs(v, in, err);
    if (st == SW_OK) {
        st = sw_jinja_render(t->tmpl, v, in->limits, out, out_len, err);
        if (st != SW_OK && st != SW_E_INVALID_ARG)
            sw_err_wrap(err, st, "chat template %s", t->label);
    }
done:
    cJSON_Delete(adapted);
    sw_jinja_vars_free(v);
    return st;
}

sw_status sw_chat_render_vars(const sw_chat_template *t, const char *vars_json, size_t len,
                              const sw_jinja_limits *lim, char **out, size_t *out_len, sw_err *err) {
    if (!t || !vars_json || !out) return sw_err_set(err, SW_E_INVALID_ARG, "chat render: NULL argument");
    *out = NULL;
    sw_jinja_vars *v = NULL;
    sw_status st = sw_jinja_vars_create(&v, err);
    if (st == SW_OK) st = sw_jinja_vars_update_json(v, vars_json, len, NULL, err);
    if (st == SW_OK) {
        st = sw_jinja_render(t->tmpl, v, lim, out, out_len, err);
        if (st != SW_OK && st != SW_E_INVALID_ARG) sw_err_wrap(err, st, "chat template %s", t->label);
    }
    sw_jinja_vars_free(v);
    return st;
}

bool sw_chat_template_uses_tools(const sw_chat_template *t) {
    static const char msgs[] = "[{\"role\": \"user\", \"content\": \"Hello\"}]";
    static const char tools[] =
        "[{\"type\": \"function\", \"function\": {\"name\": \"probe_tool_7f3a\", \"description\":"
        " \"A probe.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"x\": "
        "{\"type\": \"string\"}}, \"required\": [\"x\"]}}}]";
    sw_chat_input in = {.messages_json = msgs, .messages_json_len = sizeof msgs - 1,
                        .add_generation_prompt = true};
    char *without = NULL, *with = NULL;
    /* a template that renders only with tools (a tool_use one that loops
     * over them) uses them too */
    bool plain = sw_chat_render_template(t, &in, &without, NULL, NULL) == SW_OK;
    in.tools_json = tools;
    in.tools_json_len = sizeof tools - 1;
    bool differ = sw_chat_render_template(t, &in, &with, NULL, NULL) == SW_OK && (!plain || strcmp(with, without));
    free(without);
    free(with);
    return differ;
}
