/* oai_write.c — write OpenAI-shaped JSON: errors, chat and completions
 * responses, stream chunks (SSE), usage and logprobs.
 *
 * JSON is written by hand into an sbuf rather than through cJSON: model output
 * is a byte string that may contain NUL or half a UTF-8 character (a token's
 * piece), which a C-string JSON library cannot represent, and the streaming
 * path writes one small object per token where building a tree would be the
 * dominant cost. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "oai.h"

/* ---- errors ---------------------------------------------------------------- */

void oai_error_set(oai_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...) {
    if (!e) return;
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

static void json_cstr(sbuf *b, const char *s) { oai_json_str(b, s, strlen(s)); }

static void json_cstr_or_null(sbuf *b, const char *s) {
    if (s && *s) json_cstr(b, s);
    else sbuf_puts(b, "null");
}

static void error_obj(sbuf *b, const oai_error *e) {
    sbuf_puts(b, "{\"error\":{\"message\":");
    json_cstr(b, e->msg);
    sbuf_puts(b, ",\"type\":");
    json_cstr_or_null(b, e->type);
    sbuf_puts(b, ",\"param\":");
    json_cstr_or_null(b, e->param);
    sbuf_puts(b, ",\"code\":");
    json_cstr_or_null(b, e->code);
    sbuf_puts(b, "}}");
}

char *oai_error_json(const oai_error *e) {
    sbuf b = {0};
    error_obj(&b, e);
    return sbuf_take(&b);
}

/* ---- scalars ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) k = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 3, cp = c & 0x07;
    else return 0;
    if (k >= n) return 0;
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k + 1;
}

void oai_json_str(sbuf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    sbuf_reserve(b, n + 2);
    sbuf_add(b, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
                i++;
                continue;
            }
            sbuf_add(b, s + run, i - run);
            char esc[8];
            switch (c) {
            case '"': sbuf_add(b, "\\\"", 2); break;
            case '\\': sbuf_add(b, "\\\\", 2); break;
            case '\n': sbuf_add(b, "\\n", 2); break;
            case '\r': sbuf_add(b, "\\r", 2); break;
            case '\t': sbuf_add(b, "\\t", 2); break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                sbuf_add(b, esc, 6);
            }
            i++;
            run = i;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        sbuf_add(b, s + run, i - run);
        sbuf_add(b, "\xEF\xBF\xBD", 3); /* U+FFFD for a stray byte */
        i++;
        run = i;
    }
    sbuf_add(b, s + run, n - run);
    sbuf_add(b, "\"", 1);
}

void oai_json_logprob(sbuf *b, float lp) {
    if (!isfinite(lp) || lp < -9999.0f) sbuf_puts(b, "-9999.0");
    else sbuf_printf(b, "%.6g", (double)lp);
}

/* ---- logprobs ----------------------------------------------------------------- */

/* The bytes of token id's piece; control tokens are rendered (an alternative
 * may be "</s>"). Returns a pointer to buf or to *heap (caller frees *heap). */
static const char *piece(const sw_tokenizer *tok, int32_t id, char *buf, size_t cap,
                         char **heap, size_t *len) {
    *heap = NULL;
    size_t need = sw_token_to_piece(tok, id, true, buf, cap);
    if (need <= cap) {
        *len = need;
        return buf;
    }
    *heap = malloc(need);
    if (!*heap) {
        *len = 0;
        return buf;
    }
    *len = sw_token_to_piece(tok, id, true, *heap, need);
    return *heap;
}

static void chat_lp_entry(sbuf *b, const sw_tokenizer *tok, int32_t id, float lp) {
    char buf[128], *heap;
    size_t len;
    const char *p = piece(tok, id, buf, sizeof buf, &heap, &len);
    sbuf_puts(b, "{\"token\":");
    oai_json_str(b, p, len);
    sbuf_puts(b, ",\"logprob\":");
    oai_json_logprob(b, lp);
    sbuf_puts(b, ",\"bytes\":[");
    for (size_t i = 0; i < len; i++) sbuf_printf(b, i ? ",%u" : "%u", (unsigned char)p[i]);
    sbuf_puts(b, "]");
    free(heap);
}

void oai_chat_logprobs(sbuf *b, const sw_tokenizer *tok, const sw_token_info *toks, size_t n) {
    sbuf_puts(b, "{\"content\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_puts(b, ",");
        chat_lp_entry(b, tok, toks[i].id, toks[i].logprob);
        sbuf_puts(b, ",\"top_logprobs\":[");
        for (int32_t j = 0; j < toks[i].n_top && j < SW_MAX_TOP_LOGPROBS; j++) {
            if (j) sbuf_puts(b, ",");
            chat_lp_entry(b, tok, toks[i].top_ids[j], toks[i].top_logprobs[j]);
            sbuf_puts(b, "}");
        }
        sbuf_puts(b, "]}");
    }
    sbuf_puts(b, "],\"refusal\":null}");
}

void oai_cmpl_logprobs(sbuf *b, const sw_tokenizer *tok, const sw_token_info *toks, size_t n,
                       size_t *offset) {
    char buf[128], *heap;
    size_t len;
    sbuf_puts(b, "{\"tokens\":[");
    for (size_t i = 0; i < n; i++) {
        const char *p = piece(tok, toks[i].id, buf, sizeof buf, &heap, &len);
        if (i) sbuf_puts(b, ",");
        oai_json_str(b, p, len);
        free(heap);
    }
    sbuf_puts(b, "],\"token_logprobs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_puts(b, ",");
        oai_json_logprob(b, toks[i].logprob);
    }
    sbuf_puts(b, "],\"top_logprobs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_puts(b, ",");
        sbuf_puts(b, "{");
        /* A dict keyed by token text: two ids with the same text would
         * collide, so keep the first (more likely) one. */
        int32_t seen_n = 0;
        char seen[SW_MAX_TOP_LOGPROBS][48];
        for (int32_t j = 0; j < toks[i].n_top && j < SW_MAX_TOP_LOGPROBS; j++) {
            const char *p = piece(tok, toks[i].top_ids[j], buf, sizeof buf, &heap, &len);
            bool dup = false;
            for (int32_t k = 0; k < seen_n && !dup; k++)
                dup = strlen(seen[k]) == len && len < sizeof seen[k] && !memcmp(seen[k], p, len);
            if (!dup) {
                if (seen_n) sbuf_puts(b, ",");
                oai_json_str(b, p, len);
                sbuf_puts(b, ":");
                oai_json_logprob(b, toks[i].top_logprobs[j]);
                if (len < sizeof seen[0] && !memchr(p, '\0', len)) {
                    memcpy(seen[seen_n], p, len);
                    seen[seen_n][len] = '\0';
                } else {
                    seen[seen_n][0] = '\0';
                }
                seen_n++;
            }
            free(heap);
        }
        sbuf_puts(b, "}");
    }
    sbuf_puts(b, "],\"text_offset\":[");
    for (size_t i = 0; i < n; i++) {
        sbuf_printf(b, i ? ",%zu" : "%zu", *offset);
        /* Offsets count the bytes the client sees, and control tokens render
         * to nothing in the text. */
        *offset += sw_token_to_piece(tok, toks[i].id, false, buf, 0);
    }
    sbuf_puts(b, "]}");
}

void oai_usage(sbuf *b, const sw_usage *u) {
    sbuf_printf(b,
                "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens,
                u->cached_prompt_tokens);
}

/* ---- objects -------------------------------------------------------------------- */

static void meta_head(sbuf *b, const oai_meta *m, const char *object) {
    sbuf_puts(b, "{\"id\":");
    json_cstr(b, m->id);
    sbuf_printf(b, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":", object, m->created);
    json_cstr(b, m->model);
    sbuf_puts(b, ",\"system_fingerprint\":");
    json_cstr(b, m->fingerprint);
    if (m->spillway) {
        sbuf_puts(b, ",\"spillway\":");
        sbuf_puts(b, m->spillway);
    }
}

static void finish_field(sbuf *b, const char *finish) {
    sbuf_puts(b, ",\"finish_reason\":");
    if (finish) sbuf_printf(b, "\"%s\"", finish);
    else sbuf_puts(b, "null");
}

void oai_sse_chat_chunk(sbuf *b, const oai_meta *m, bool delta_role, const char *text,
                        size_t text_len, const char *logprobs_json, const char *finish,
                        bool usage_null) {
    sbuf_puts(b, "data: ");
    meta_head(b, m, "chat.completion.chunk");
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"delta\":{");
    bool comma = false;
    if (delta_role) {
        sbuf_puts(b, "\"role\":\"assistant\"");
        comma = true;
    }
    if (text) {
        if (comma) sbuf_puts(b, ",");
        sbuf_puts(b, "\"content\":");
        oai_json_str(b, text, text_len);
    }
    sbuf_puts(b, "},\"logprobs\":");
    sbuf_puts(b, logprobs_json ? logprobs_json : "null");
    finish_field(b, finish);
    sbuf_puts(b, "}]");
    if (usage_null) sbuf_puts(b, ",\"usage\":null");
    sbuf_puts(b, "}\n\n");
}

void oai_sse_cmpl_chunk(sbuf *b, const oai_meta *m, const char *text, size_t text_len,
                        const char *logprobs_json, const char *finish, bool usage_null) {
    sbuf_puts(b, "data: ");
    meta_head(b, m, "text_completion");
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"text\":");
    oai_json_str(b, text ? text : "", text ? text_len : 0);
    sbuf_puts(b, ",\"logprobs\":");
    sbuf_puts(b, logprobs_json ? logprobs_json : "null");
    finish_field(b, finish);
    sbuf_puts(b, "}]");
    if (usage_null) sbuf_puts(b, ",\"usage\":null");
    sbuf_puts(b, "}\n\n");
}

void oai_sse_usage_chunk(sbuf *b, const oai_meta *m, bool chat, const sw_usage *u) {
    sbuf_puts(b, "data: ");
    meta_head(b, m, chat ? "chat.completion.chunk" : "text_completion");
    sbuf_puts(b, ",\"choices\":[],");
    oai_usage(b, u);
    sbuf_puts(b, "}\n\n");
}

void oai_sse_error(sbuf *b, const oai_error *e) {
    sbuf_puts(b, "data: ");
    error_obj(b, e);
    sbuf_puts(b, "\n\n");
}

void oai_sse_done(sbuf *b) { sbuf_puts(b, "data: [DONE]\n\n"); }

void oai_chat_response(sbuf *b, const oai_meta *m, const char *text, size_t text_len,
                       const char *logprobs_json, const char *finish, const sw_usage *u) {
    meta_head(b, m, "chat.completion");
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    oai_json_str(b, text, text_len);
    sbuf_puts(b, ",\"refusal\":null},\"logprobs\":");
    sbuf_puts(b, logprobs_json ? logprobs_json : "null");
    finish_field(b, finish);
    sbuf_puts(b, "}],");
    oai_usage(b, u);
    sbuf_puts(b, "}");
}

void oai_cmpl_response(sbuf *b, const oai_meta *m, const char *text, size_t text_len,
                       const char *logprobs_json, const char *finish, const sw_usage *u) {
    meta_head(b, m, "text_completion");
    sbuf_puts(b, ",\"choices\":[{\"index\":0,\"text\":");
    oai_json_str(b, text, text_len);
    sbuf_puts(b, ",\"logprobs\":");
    sbuf_puts(b, logprobs_json ? logprobs_json : "null");
    finish_field(b, finish);
    sbuf_puts(b, "}],");
    oai_usage(b, u);
    sbuf_puts(b, "}");
}

/* ---- ids -------------------------------------------------------------------------- */

uint64_t oai_random_u64(void) {
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v) return v;
    /* No entropy yet (very early boot): a counter mixed with the clock is
     * still unique per process, which is all ids and default seeds need. */
    static atomic_uint_fast64_t ctr;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48);
    z += 0x9E3779B97F4A7C15ull * (atomic_fetch_add(&ctr, 1) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void oai_make_id(char *buf, size_t cap, const char *prefix) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = (size_t)snprintf(buf, cap, "%s", prefix);
    uint64_t r = 0;
    for (int i = 0; i < 24 && n + 1 < cap; i++) {
        if (i % 8 == 0) r = oai_random_u64();
        buf[n++] = alnum[r % 62];
        r /= 62;
    }
    if (n < cap) buf[n] = '\0';
}
