/* chat.c — chat template families, rendered natively (no Jinja engine).
 *
 * Each family reproduces, byte for byte, what the model vendor's official Jinja
 * template (tokenizer_config.json / GGUF tokenizer.chat_template) produces for a
 * list of system/user/assistant messages, with HF's rendering settings
 * (trim_blocks, lstrip_blocks). The reference template of each family:
 *
 *   chatml     the generic ChatML template (Qwen, OpenHermes, ...): every turn is
 *              "<|im_start|>ROLE\nCONTENT<|im_end|>\n". No BOS.
 *   llama2     meta-llama/Llama-2-*-chat-hf: "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s>",
 *              BOS before every [INST], content strip()ped, roles alternate.
 *   llama3     meta-llama/Meta-Llama-3-*-Instruct: BOS, then per message
 *              "<|start_header_id|>ROLE<|end_header_id|>\n\n" + trim(content) + "<|eot_id|>".
 *              (The 3.1+ templates add a dated default system header; not reproduced.)
 *   mistral    Mistral-7B-Instruct-v0.1/v0.2, Mixtral-8x7B-Instruct (v1 tokenizer): BOS, then
 *              " [INST] " + (first turn: SYSTEM + "\n\n") + U + " [/INST]", " " + A + EOS.
 *   zephyr     HuggingFaceH4/zephyr-7b-beta: "<|ROLE|>\nCONTENT" + EOS + "\n". No BOS.
 *   gemma      google/gemma-3-*-it (gemma 1/2 render the same without a system role): BOS,
 *              "<start_of_turn>ROLE\n" + trim(content) + "<end_of_turn>\n", the assistant role
 *              is "model", a system message is prefixed (+ "\n\n") to the first user turn.
 *   phi3       microsoft/Phi-3-mini-4k-instruct (current): "<|ROLE|>\nCONTENT<|end|>\n",
 *              then "<|assistant|>\n" for a generation prompt, else EOS. No BOS. (The first
 *              Phi-3 release spelled bos_token and dropped system messages; it is detected as
 *              phi3 too and renders identically for user/assistant turns.)
 *   deepseek   deepseek-llm-*-chat: BOS, system as "S\n\n", "User: U\n\n", "Assistant: A" + EOS,
 *              generation prompt "Assistant:".
 *   deepseek2  DeepSeek-V2(-Lite)-Chat: the very same template text as deepseek-llm, so the two
 *              names render identically; detection reports deepseek2, as llama.cpp does.
 *   deepseek3  DeepSeek-V3 / R1: BOS, all system messages joined by "\n\n" up front, then
 *              "<｜User｜>U", "<｜Assistant｜>A<｜end▁of▁sentence｜>", prompt "<｜Assistant｜>".
 *
 * BOS and double BOS: where the official template spells bos_token, the rendered text
 * starts with the BOS text (sw_chat_spells_bos() is true). The caller then tokenizes
 * the text with special-token parsing ON and add_bos OFF, so the model sees exactly
 * one BOS; for the other families it tokenizes with the model's usual add_bos.
 * bos/eos == NULL selects the family's conventional token text (e.g. "<s>"), "" omits it.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------- */

static const char *const k_names[SW_CHAT_COUNT] = {
    [SW_CHAT_CHATML] = "chatml",     [SW_CHAT_LLAMA2] = "llama2",
    [SW_CHAT_LLAMA3] = "llama3",     [SW_CHAT_MISTRAL] = "mistral",
    [SW_CHAT_ZEPHYR] = "zephyr",     [SW_CHAT_GEMMA] = "gemma",
    [SW_CHAT_PHI3] = "phi3",         [SW_CHAT_DEEPSEEK] = "deepseek",
    [SW_CHAT_DEEPSEEK2] = "deepseek2", [SW_CHAT_DEEPSEEK3] = "deepseek3",
};

const char *sw_chat_kind_name(sw_chat_kind k) {
    if ((int)k < 0 || k >= SW_CHAT_COUNT) return "unknown";
    return k_names[k];
}


sw_status sw_chat_from_name(const char *name, sw_chat_kind *out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_from_name: out is NULL");
    if (!name)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "chat template name is NULL (--chat-template accepts: %s)",
                          sw_chat_names());
    for (int k = 0; k < SW_CHAT_COUNT; k++) {
        if (!strcmp(name, k_names[k])) {
            *out = (sw_chat_kind)k;
            return SW_OK;
        }
    }
    return sw_err_set(err, SW_E_NOT_FOUND,
                      "unknown chat template '%.100s' (--chat-template accepts: %s)", name,
                      sw_chat_names());
}

bool sw_chat_spells_bos(sw_chat_kind k) {
    switch (k) {
    case SW_CHAT_LLAMA2:
    case SW_CHAT_LLAMA3:
    case SW_CHAT_MISTRAL:
    case SW_CHAT_GEMMA:
    case SW_CHAT_DEEPSEEK:
    case SW_CHAT_DEEPSEEK2:
    case SW_CHAT_DEEPSEEK3: return true;
    default: return false;
    }
}

/* ---- detection ------------------------------------------------------------ */

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

/* Markers are checked from the most specific to the most generic: e.g. DeepSeek-V3
 * templates also contain "Assistant", Phi-3 and Zephyr share "<|user|>". */
sw_status sw_chat_detect(const char *src, sw_chat_kind *out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_detect: out is NULL");
    if (!src) return sw_err_set(err, SW_E_INVALID_ARG, "chat template source is NULL");
    sw_chat_kind k;
    if (has(src, "<|im_start|>")) k = SW_CHAT_CHATML;
    else if (has(src, "<|start_header_id|>") && has(src, "<|end_header_id|>")) k = SW_CHAT_LLAMA3;
    else if (has(src, "<start_of_turn>")) k = SW_CHAT_GEMMA;
    else if (has(src, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") &&
             has(src, "<\xef\xbd\x9c" "User\xef\xbd\x9c>"))
        k = SW_CHAT_DEEPSEEK3;
    else if (has(src, "'Assistant: ' + message['content'] + eos_token") ||
             (has(src, "'User: '") && has(src, "'Assistant:'")))
        k = SW_CHAT_DEEPSEEK2;
    else if (has(src, "<|assistant|>") && has(src, "<|end|>")) k = SW_CHAT_PHI3;
    else if (has(src, "<|user|>") &&
             (has(src, "</s>") || has(src, "eos_token") || has(src, "<|endoftext|>")))
        k = SW_CHAT_ZEPHYR;
    else if (has(src, "[INST]")) k = has(src, "<<SYS>>") ? SW_CHAT_LLAMA2 : SW_CHAT_MISTRAL;
    else {
        size_t n = strlen(src);
        return sw_err_set(err, SW_E_NOT_FOUND,
                          "unrecognised chat template (%zu bytes, starts with '%.60s'); "
                          "choose one with --chat-template (%s)",
                          n, src, sw_chat_names());
    }
    *out = k;
    return SW_OK;
}

sw_status sw_chat_from_gguf(const sw_gguf *g, sw_chat_kind *out, sw_err *err) {
    if (!g || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_from_gguf: NULL argument");
    const char *src = NULL;
    sw_status st = sw_gguf_get_str(g, "tokenizer.chat_template", &src, err);
    if (st != SW_OK) {
        /* A non-string value is a malformed file; a missing key just means "no template". */
        if (st == SW_E_NOT_FOUND)
            return sw_err_set(err, SW_E_NOT_FOUND,
                              "%s: no tokenizer.chat_template; choose one with --chat-template (%s)",
                              sw_gguf_path(g) ? sw_gguf_path(g) : "model", sw_chat_names());
        return st;
    }
    st = sw_chat_detect(src, out, err);
    if (st == SW_E_NOT_FOUND)
        return sw_err_wrap(err, SW_E_UNSUPPORTED, "%s: tokenizer.chat_template",
                           sw_gguf_path(g) ? sw_gguf_path(g) : "model");
    return st;
}

/* ---- rendering helpers ---------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom || n == 0) return;
    uint64_t need;
    if (!sw_add_u64(b->len, n, &need) || !sw_add_u64(need, 1, &need) || need > SIZE_MAX) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                cap = (size_t)need;
                break;
            }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_put(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* Python's str.strip() (used by Jinja's trim filter) for the ASCII whitespace it
 * knows: space, \t \n \v \f \r and the separators \x1c-\x1f. Non-ASCII Unicode
 * whitespace (NBSP, U+2000...) is kept: a rare divergence from the Jinja output. */
static bool is_py_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static void sb_put_trim(sbuf *b, const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n && is_py_space((unsigned char)s[i])) i++;
    while (n > i && is_py_space((unsigned char)s[n - 1])) n--;
    sb_putn(b, s + i, n - i);
}

typedef enum { R_SYSTEM, R_USER, R_ASSISTANT } role_t;

static const char *role_str(role_t r) {
    return r == R_SYSTEM ? "system" : r == R_USER ? "user" : "assistant";
}

typedef struct render_ctx {
    const sw_chat_msg *msgs;
    const role_t *roles;
    size_t n;
    bool add_assistant;
    const char *bos, *eos;
    sbuf *b;
} render_ctx;

/* Templates that raise_exception() unless the turns after an optional first system
 * message go user, assistant, user, ... (llama2, mistral, gemma). */
static sw_status check_alternating(sw_chat_kind k, const role_t *roles, size_t n, sw_err *err) {
    size_t first = (n > 0 && roles[0] == R_SYSTEM) ? 1 : 0;
    if (first == 1 && n == 1)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "chat message 0: the %s template cannot render a system message "
                          "without a following user message",
                          k_names[k]);
    for (size_t i = first; i < n; i++) {
        role_t want = ((i - first) % 2 == 0) ? R_USER : R_ASSISTANT;
        if (roles[i] != want)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "chat message %zu: role '%s' where '%s' was expected; the %s "
                              "template needs alternating user/assistant turns after an optional "
                              "first system message",
                              i, role_str(roles[i]), role_str(want), k_names[k]);
    }
    return SW_OK;
}

/* ---- families --------------------------------------------------------------- */

static void render_chatml(render_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        sb_put(c->b, "<|im_start|>");
        sb_put(c->b, role_str(c->roles[i]));
        sb_put(c->b, "\n");
        sb_put(c->b, c->msgs[i].content);
        sb_put(c->b, "<|im_end|>\n");
    }
    if (c->add_assistant) sb_put(c->b, "<|im_start|>assistant\n");
}

/* The system text is glued into the first user turn and the combined content is
 * strip()ped as a whole, exactly like the reference. add_assistant has no effect: the
 * template ends every user turn with " [/INST]", which already opens the reply. */
static void render_llama2(render_ctx *c) {
    size_t i = 0;
    const char *sys = NULL;
    if (c->n > 0 && c->roles[0] == R_SYSTEM) sys = c->msgs[i++].content;
    bool first = true;
    for (; i < c->n; i++) {
        if (c->roles[i] == R_USER) {
            sbuf content = {0};
            if (first && sys) {
                sb_put(&content, "<<SYS>>\n");
                sb_put(&content, sys);
                sb_put(&content, "\n<</SYS>>\n\n");
            }
            sb_put(&content, c->msgs[i].content);
            if (content.oom) c->b->oom = true;
            sb_put(c->b, c->bos);
            sb_put(c->b, "[INST] ");
            sb_put_trim(c->b, content.p ? content.p : "");
            sb_put(c->b, " [/INST]");
            free(content.p);
        } else {
            sb_put(c->b, " ");
            sb_put_trim(c->b, c->msgs[i].content);
            sb_put(c->b, " ");
            sb_put(c->b, c->eos);
        }
        first = false;
    }
}

static void render_llama3(render_ctx *c) {
    sb_put(c->b, c->bos);
    for (size_t i = 0; i < c->n; i++) {
        sb_put(c->b, "<|start_header_id|>");
        sb_put(c->b, role_str(c->roles[i]));
        sb_put(c->b, "<|end_header_id|>\n\n");
        sb_put_trim(c->b, c->msgs[i].content);
        sb_put(c->b, "<|eot_id|>");
    }
    if (c->add_assistant) sb_put(c->b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Like llama2, add_assistant changes nothing: " [/INST]" is the generation prompt. */
static void render_mistral(render_ctx *c) {
    size_t i = 0;
    const char *sys = NULL;
    if (c->n > 0 && c->roles[0] == R_SYSTEM) sys = c->msgs[i++].content;
    bool first = true;
    sb_put(c->b, c->bos);
    for (; i < c->n; i++) {
        if (c->roles[i] == R_USER) {
            sb_put(c->b, " [INST] ");
            if (first && sys) {
                sb_put(c->b, sys);
                sb_put(c->b, "\n\n");
            }
            sb_put(c->b, c->msgs[i].content);
            sb_put(c->b, " [/INST]");
        } else {
            sb_put(c->b, " ");
            sb_put(c->b, c->msgs[i].content);
            sb_put(c->b, c->eos);
        }
        first = false;
    }
}

static void render_zephyr(render_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        sb_put(c->b, "<|");
        sb_put(c->b, role_str(c->roles[i]));
        sb_put(c->b, "|>\n");
        sb_put(c->b, c->msgs[i].content);
        sb_put(c->b, c->eos);
        sb_put(c->b, "\n");
    }
    if (c->add_assistant) sb_put(c->b, "<|assistant|>\n");
}

static void render_gemma(render_ctx *c) {
    size_t i = 0;
    const char *sys = NULL;
    if (c->n > 0 && c->roles[0] == R_SYSTEM) sys = c->msgs[i++].content;
    bool first = true;
    sb_put(c->b, c->bos);
    for (; i < c->n; i++) {
        sb_put(c->b, "<start_of_turn>");
        sb_put(c->b, c->roles[i] == R_ASSISTANT ? "model" : "user");
        sb_put(c->b, "\n");
        if (first && sys) { /* the prefix itself is not trimmed, only the turn's content */
            sb_put(c->b, sys);
            sb_put(c->b, "\n\n");
        }
        sb_put_trim(c->b, c->msgs[i].content);
        sb_put(c->b, "<end_of_turn>\n");
        first = false;
    }
    if (c->add_assistant) sb_put(c->b, "<start_of_turn>model\n");
}

static void render_phi3(render_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        sb_put(c->b, "<|");
        sb_put(c->b, role_str(c->roles[i]));
        sb_put(c->b, "|>\n");
        sb_put(c->b, c->msgs[i].content);
        sb_put(c->b, "<|end|>\n");
    }
    sb_put(c->b, c->add_assistant ? "<|assistant|>\n" : c->eos);
}

static void render_deepseek2(render_ctx *c) {
    sb_put(c->b, c->bos);
    for (size_t i = 0; i < c->n; i++) {
        switch (c->roles[i]) {
        case R_SYSTEM:
            sb_put(c->b, c->msgs[i].content);
            sb_put(c->b, "\n\n");
            break;
        case R_USER:
            sb_put(c->b, "User: ");
            sb_put(c->b, c->msgs[i].content);
            sb_put(c->b, "\n\n");
            break;
        case R_ASSISTANT:
            sb_put(c->b, "Assistant: ");
            sb_put(c->b, c->msgs[i].content);
            sb_put(c->b, c->eos);
            break;
        }
    }
    if (c->add_assistant) sb_put(c->b, "Assistant:");
}

#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"           /* <｜User｜> */
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>" /* <｜Assistant｜> */
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

/* The V3 template spells its end-of-turn marker literally rather than via eos_token,
 * so eos is not used here. */
static void render_deepseek3(render_ctx *c) {
    sb_put(c->b, c->bos);
    bool first_sys = true;
    for (size_t i = 0; i < c->n; i++) {
        if (c->roles[i] != R_SYSTEM) continue;
        if (!first_sys) sb_put(c->b, "\n\n");
        sb_put(c->b, c->msgs[i].content);
        first_sys = false;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->roles[i] == R_USER) {
            sb_put(c->b, DS_USER);
            sb_put(c->b, c->msgs[i].content);
        } else if (c->roles[i] == R_ASSISTANT) {
            sb_put(c->b, DS_ASSISTANT);
            sb_put(c->b, c->msgs[i].content);
            sb_put(c->b, DS_EOS);
        }
    }
    if (c->add_assistant) sb_put(c->b, DS_ASSISTANT);
}

/* Conventional BOS/EOS texts of each family, used when the caller passes NULL. */
static void default_tokens(sw_chat_kind k, const char **bos, const char **eos) {
    const char *b = "", *e = "";
    switch (k) {
    case SW_CHAT_LLAMA2:
    case SW_CHAT_MISTRAL: b = "<s>"; e = "</s>"; break;
    case SW_CHAT_LLAMA3: b = "<|begin_of_text|>"; e = "<|eot_id|>"; break;
    case SW_CHAT_ZEPHYR: e = "</s>"; break;
    case SW_CHAT_GEMMA: b = "<bos>"; e = "<eos>"; break;
    case SW_CHAT_PHI3: e = "<|endoftext|>"; break;
    case SW_CHAT_DEEPSEEK:
    case SW_CHAT_DEEPSEEK2:
    case SW_CHAT_DEEPSEEK3: b = DS_BOS; e = DS_EOS; break;
    default: break;
    }
    if (!*bos) *bos = b;
    if (!*eos) *eos = e;
}

sw_status sw_chat_render(sw_chat_kind k, const sw_chat_msg *msgs, size_t n_msgs,
                         bool add_assistant, const char *bos, const char *eos, char **out,
                         sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_chat_render: out is NULL");
    *out = NULL;
    if ((int)k < 0 || k >= SW_CHAT_COUNT)
        return sw_err_set(err, SW_E_INVALID_ARG, "chat template kind %d out of range", (int)k);
    if (n_msgs > 0 && !msgs)
        return sw_err_set(err, SW_E_INVALID_ARG, "chat messages: NULL array with %zu messages",
                          n_msgs);

    role_t *roles = malloc((n_msgs ? n_msgs : 1) * sizeof *roles);
    if (!roles) return sw_err_set(err, SW_E_NOMEM, "chat render: %zu messages", n_msgs);
    for (size_t i = 0; i < n_msgs; i++) {
        const char *r = msgs[i].role;
        if (!r) {
            free(roles);
            return sw_err_set(err, SW_E_INVALID_ARG, "chat message %zu: role is NULL", i);
        }
        if (!strcmp(r, "system")) roles[i] = R_SYSTEM;
        else if (!strcmp(r, "user")) roles[i] = R_USER;
        else if (!strcmp(r, "assistant")) roles[i] = R_ASSISTANT;
        else {
            sw_err_set(err, SW_E_INVALID_ARG,
                       "chat message %zu: unknown role '%.64s' (expected system, user or "
                       "assistant)",
                       i, r);
            free(roles);
            return SW_E_INVALID_ARG;
        }
        if (!msgs[i].content) {
            free(roles);
            return sw_err_set(err, SW_E_INVALID_ARG, "chat message %zu (%s): content is NULL",
                              i, r);
        }
    }
    if (k == SW_CHAT_LLAMA2 || k == SW_CHAT_MISTRAL || k == SW_CHAT_GEMMA) {
        sw_status st = check_alternating(k, roles, n_msgs, err);
        if (st != SW_OK) {
            free(roles);
            return st;
        }
    }

    default_tokens(k, &bos, &eos);
    sbuf b = {0};
    render_ctx c = {msgs, roles, n_msgs, add_assistant, bos, eos, &b};
    switch (k) {
    case SW_CHAT_CHATML: render_chatml(&c); break;
    case SW_CHAT_LLAMA2: render_llama2(&c); break;
    case SW_CHAT_LLAMA3: render_llama3(&c); break;
    case SW_CHAT_MISTRAL: render_mistral(&c); break;
    case SW_CHAT_ZEPHYR: render_zephyr(&c); break;
    case SW_CHAT_GEMMA: render_gemma(&c); break;
    case SW_CHAT_PHI3: render_phi3(&c); break;
    case SW_CHAT_DEEPSEEK:
    case SW_CHAT_DEEPSEEK2: render_deepseek2(&c); break;
    case SW_CHAT_DEEPSEEK3: render_deepseek3(&c); break;
    default: break;
    }
    free(roles);
    if (b.oom) {
        free(b.p);
        return sw_err_set(err, SW_E_NOMEM, "chat render (%s): out of memory", k_names[k]);
    }
    if (!b.p) { /* nothing rendered (e.g. no messages, no prompt): still a valid string */
        b.p = calloc(1, 1);
        if (!b.p) return sw_err_set(err, SW_E_NOMEM, "chat render: out of memory");
    }
    *out = b.p;
    return SW_OK;
}
