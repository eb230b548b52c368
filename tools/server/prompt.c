/* prompt.c — from the internal request to the local model's prompt: chat
 * messages (content blocks, a top-level system text) rendered with the chat
 * template, or the completions prompt, then tokenized. srv_prompt_render is
 * the one place messages become prompt text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A message's content as one text: text blocks joined by newlines; tool
 * calls and tool results as the model's family writes them (toolcall.c). */
static char *msg_text(const srv *s, const srv_msg *m) {
    sbuf b = {0};
    sbuf_puts(&b, "");
    for (size_t i = 0; i < m->n_blocks; i++) {
        const srv_block *k = &m->blocks[i];
        if (i) sbuf_puts(&b, "\n");
        if (k->type == SRV_BLOCK_TEXT) sbuf_puts(&b, k->text ? k->text : "");
        else srv_tools_render_block(s, k, &b);
    }
    return sbuf_take(&b);
}

/* A system text with the tools' description after it (either may be NULL). */
static char *join_system(const char *system, const char *tools) {
    sbuf b = {0};
    sbuf_puts(&b, system ? system : "");
    if (system && *system && tools) sbuf_puts(&b, "\n\n");
    if (tools) sbuf_puts(&b, tools);
    return sbuf_take(&b);
}

bool srv_prompt_render(const srv *s, const srv_request *r, char **out, srv_error *e) {
    *out = NULL;
    /* the tools' description joins the system text (or becomes it) */
    char *tools = srv_tools_system_text(s, r);
    bool first_system = r->n_msgs && !strcmp(r->msgs[0].role, "system");
    bool own_system = r->system || (tools && !first_system);
    size_t n = r->n_msgs + (own_system ? 1 : 0);
    sw_chat_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    bool ok = false;
    if (!msgs || !texts || (srv_tools_active(r) && !tools)) {
        nomem(e);
        goto done;
    }
    size_t k = 0;
    if (own_system) {
        msgs[k].role = "system";
        texts[k] = join_system(r->system, tools);
        if (!texts[k]) {
            nomem(e);
            goto done;
        }
        msgs[k].content = texts[k];
        k++;
    }
    for (size_t i = 0; i < r->n_msgs; i++, k++) {
        char *t = msg_text(s, &r->msgs[i]);
        if (t && i == 0 && first_system && !own_system) {
            char *j = join_system(t, tools);
            free(t);
            t = j;
        }
        if (!(texts[k] = t)) {
            nomem(e);
            goto done;
        }
        msgs[k].role = r->msgs[i].role;
        msgs[k].content = texts[k];
    }
    /* A final assistant message to continue: the turns before it, the
     * opening of the assistant's turn, then its text as the answer's start. */
    size_t n_render = r->continue_final ? n - 1 : n;
    int32_t bos = sw_tokenizer_bos(s->tok), eos = sw_tokenizer_eos(s->tok);
    const char *bos_s = bos >= 0 ? sw_tokenizer_token_text(s->tok, bos) : "";
    const char *eos_s = eos >= 0 ? sw_tokenizer_token_text(s->tok, eos) : "";
    sw_err err = {{0}};
    if (sw_chat_render(s->chat, msgs, n_render, true, bos_s ? bos_s : "", eos_s ? eos_s : "",
                       out, &err) != SW_OK) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "messages",
                      "the %s chat template cannot render these messages: %s",
                      sw_chat_kind_name(s->chat), err.msg);
        goto done;
    }
    if (r->continue_final) {
        sbuf b = {0};
        sbuf_puts(&b, *out);
        sbuf_puts(&b, msgs[n - 1].content);
        free(*out);
        if (!(*out = sbuf_take(&b))) {
            nomem(e);
            goto done;
        }
    }
    ok = true;
done:
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(msgs);
    free(tools);
    return ok;
}

static bool chat_prompt(const srv *s, const srv_request *r, int32_t **ids, size_t *n,
                        srv_error *e) {
    char *text = NULL;
    if (!srv_prompt_render(s, r, &text, e)) return false;
    int32_t bos = sw_tokenizer_bos(s->tok);
    const char *bos_s = bos >= 0 ? sw_tokenizer_token_text(s->tok, bos) : "";
    /* A template that spells BOS out already put it in the text. */
    bool add_bos = sw_tokenizer_add_bos(s->tok) && bos >= 0 && !sw_chat_spells_bos(s->chat);
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
