/* chat.h — chat templates: render an OpenAI-style message list into the prompt
 * text a model was trained on, exactly as Hugging Face's apply_chat_template
 * does: the model's own Jinja template (tokenizer.chat_template, or a named
 * tokenizer.chat_template.<name> such as tool_use), a template file, or one of
 * our built-in template texts chosen by name (--chat-template NAME), run by the
 * Jinja interpreter (jinja.h). */
#ifndef SW_CHAT_H
#define SW_CHAT_H

#include "gguf.h"
#include "jinja.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

typedef struct sw_chat_template sw_chat_template;

/* Comma-separated names of the built-in templates, for help and errors. */
const char *sw_chat_names(void);
/* A built-in template by name; an unknown name is SW_E_NOT_FOUND with a message
 * naming the --chat-template flag and the valid names. */
sw_status sw_chat_template_builtin(const char *name, sw_chat_template **out, sw_err *err);
/* The Jinja text of a built-in template (NULL if unknown). */
const char *sw_chat_builtin_source(const char *name);
/* Parse template text; label names it in messages ("file:x.jinja", ...). A syntax
 * error is SW_E_FORMAT naming the label and line. */
sw_status sw_chat_template_parse(const char *src, size_t len, const char *label,
                                 sw_chat_template **out, sw_err *err);
/* Read and parse a template file (--chat-template-file). */
sw_status sw_chat_template_file(const char *path, sw_chat_template **out, sw_err *err);
/* The model's template: tokenizer.chat_template when name is NULL, else
 * tokenizer.chat_template.<name>. SW_E_NOT_FOUND when the model has none,
 * except that a gemma/gemma2/gemma3 file without tokenizer.chat_template gets
 * the built-in gemma template. */
sw_status sw_chat_template_gguf(const sw_gguf *g, const char *name, sw_chat_template **out,
                                sw_err *err);
void sw_chat_template_free(sw_chat_template *t);
/* "chatml", "model", "model:tool_use", "file:PATH" ... (owned by t) */
const char *sw_chat_template_label(const sw_chat_template *t);
const char *sw_chat_template_source(const sw_chat_template *t);

/* What a render sees, as transformers passes it: messages, tools (None when
 * absent), documents=None, add_generation_prompt, bos_token / eos_token when
 * given, and extra keyword arguments (e.g. enable_thinking) that may override
 * the tokens but not the others. Each of messages / tools / kwargs comes either
 * as JSON text (read like Python's json.loads, so 1 and 1.0 stay apart) or as a
 * cJSON tree; all pointers are borrowed. */
typedef struct sw_chat_input {
    const char *messages_json;
    size_t messages_json_len;
    const struct cJSON *messages;
    const char *tools_json;
    size_t tools_json_len;
    const struct cJSON *tools;
    const char *kwargs_json;   /* a JSON object */
    size_t kwargs_json_len;
    const struct cJSON *kwargs;
    bool add_generation_prompt;
    /* Adapt OpenAI messages the way templates were trained: a tool call's
     * "arguments" string becomes the object it encodes, "content": null becomes "". */
    bool openai;
    const char *bos_token, *eos_token; /* NULL: not defined */
    const sw_jinja_limits *limits;     /* NULL: defaults */
} sw_chat_input;

/* Render into *out (malloc'd, NUL-terminated; length in *out_len if non-NULL).
 * A template that raises (raise_exception, undefined attribute, ...) is
 * SW_E_INVALID_ARG with its message; bad JSON input is SW_E_FORMAT; a template
 * past its time / memory bounds is SW_E_RANGE. */
sw_status sw_chat_render_template(const sw_chat_template *t, const sw_chat_input *in, char **out,
                                  size_t *out_len, sw_err *err);

/* Whether the template renders tools (a conversation rendered with a probe
 * tool differs from the same rendered without, or renders only with it):
 * such a template describes tools and renders tool calls its own way. */
bool sw_chat_template_uses_tools(const sw_chat_template *t);

/* Render with every variable given as one JSON object (name -> value), as
 * template.render(**vars) does in Python; no adaptation, no defaults. */
sw_status sw_chat_render_vars(const sw_chat_template *t, const char *vars_json, size_t len,
                              const sw_jinja_limits *lim, char **out, size_t *out_len, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
