/* chat.h — chat templates: render an OpenAI-style message list into the prompt
 * text a model was trained on. Templates are recognised from
 * tokenizer.chat_template (Jinja source) by their markers, or chosen by name
 * (--chat-template NAME); we implement each family natively, no Jinja engine. */
#ifndef SW_CHAT_H
#define SW_CHAT_H

#include "gguf.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_chat_kind {
    SW_CHAT_CHATML = 0,
    SW_CHAT_LLAMA2,
    SW_CHAT_LLAMA3,
    SW_CHAT_MISTRAL,
    SW_CHAT_ZEPHYR,
    SW_CHAT_GEMMA,
    SW_CHAT_PHI3,
    SW_CHAT_DEEPSEEK,
    SW_CHAT_DEEPSEEK2,
    SW_CHAT_DEEPSEEK3,
    SW_CHAT_COUNT
} sw_chat_kind;

typedef struct sw_chat_msg {
    const char *role;    /* "system", "user", "assistant" (borrowed) */
    const char *content; /* borrowed */
} sw_chat_msg;

const char *sw_chat_kind_name(sw_chat_kind k);
/* Comma-separated list of the accepted names, for help and error messages. */
const char *sw_chat_names(void);
/* Name -> kind; an unknown name is SW_E_NOT_FOUND with a message naming the
 * --chat-template flag and listing the valid names. */
sw_status sw_chat_from_name(const char *name, sw_chat_kind *out, sw_err *err);
/* Recognise the family of a Jinja template source. SW_E_NOT_FOUND if unknown. */
sw_status sw_chat_detect(const char *tmpl_source, sw_chat_kind *out, sw_err *err);
/* Template of a model: tokenizer.chat_template if recognised; SW_E_NOT_FOUND
 * when the model has none, SW_E_UNSUPPORTED when it has one we do not know. */
sw_status sw_chat_from_gguf(const sw_gguf *g, sw_chat_kind *out, sw_err *err);

/* Render msgs. bos/eos are the model's BOS/EOS token texts (may be "" or NULL)
 * for templates that spell them out. add_assistant appends the opening of an
 * assistant turn. *out is returned (free with free()). An unknown role or a
 * message order the template cannot express is SW_E_INVALID_ARG. */
sw_status sw_chat_render(sw_chat_kind k, const sw_chat_msg *msgs, size_t n_msgs,
                         bool add_assistant, const char *bos, const char *eos, char **out,
                         sw_err *err);

/* True when the family's official template spells bos_token, i.e. the rendered
 * text begins with the BOS text. Tokenize such text with special-token parsing
 * and WITHOUT adding a BOS (else the model sees two); for the other families use
 * the model's usual add_bos. In sw_chat_render, bos/eos == NULL selects the
 * family's conventional token text ("<s>", "<|begin_of_text|>", ...), "" omits it. */
bool sw_chat_spells_bos(sw_chat_kind k);

#ifdef __cplusplus
}
#endif
#endif
