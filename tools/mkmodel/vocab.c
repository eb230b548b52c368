/* vocab.c — the tokenizer metadata of a synthetic model: a generated
 * SentencePiece-style vocabulary, a generated WordPiece one (bert), or the
 * tokenizer.* keys of another GGUF. */
#include "mkmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPM_SPACE "\xE2\x96\x81" /* U+2581, SentencePiece's word-boundary mark */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

typedef struct vocab_build {
    char **text;
    float *score;
    int32_t *type;
    int64_t n, cap;
} vocab_build;

static bool vb_add(vocab_build *v, const char *s, float score, int32_t type) {
    if (v->n >= v->cap) return true; /* full: callers stop on their own */
    v->text[v->n] = strdup(s);
    if (!v->text[v->n]) return false;
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
    return true;
}

/* Lowercase strings of length len in lexicographic order, optionally prefixed
 * with U+2581, until the vocab is full. Each string of length len >= 2 is the
 * concatenation of a vocab entry of length len-1 and a single letter, so the
 * SentencePiece merge loop can reach every piece. */
static bool add_words(vocab_build *v, int len, bool space) {
    char buf[16];
    int idx[8] = {0};
    size_t pre = space ? strlen(SPM_SPACE) : 0;
    if (len > 8) return true;
    for (;;) {
        if (v->n >= v->cap) return true;
        memcpy(buf, SPM_SPACE, pre);
        for (int i = 0; i < len; i++)
            buf[pre + (size_t)i] = (char)('a' + idx[i]);
        buf[pre + (size_t)len] = '\0';
        if (!vb_add(v, buf, -(float)v->n, TT_NORMAL)) return false;
        int k = len - 1; /* odometer increment */
        while (k >= 0 && ++idx[k] == 26)
            idx[k--] = 0;
        if (k < 0) return true;
    }
}

static void vb_free(vocab_build *v) {
    if (v->text)
        for (int64_t i = 0; i < v->n; i++)
            free(v->text[i]);
    free(v->text);
    free(v->score);
    free(v->type);
}

sw_status mk_write_vocab(sw_gguf_writer *w, int64_t n_vocab, sw_err *err) {
    if (n_vocab < MK_MIN_VOCAB || n_vocab > INT32_MAX)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "--vocab %lld: a generated vocab needs %d..%d entries",
                          (long long)n_vocab, MK_MIN_VOCAB, INT32_MAX);
    vocab_build v = {0};
    v.cap = n_vocab;
    v.text = calloc((size_t)n_vocab, sizeof *v.text);
    v.score = calloc((size_t)n_vocab, sizeof *v.score);
    v.type = calloc((size_t)n_vocab, sizeof *v.type);
    sw_status st = SW_E_NOMEM;
    bool ok = v.text && v.score && v.type;
    ok = ok && vb_add(&v, "<unk>", 0, TT_UNKNOWN) && vb_add(&v, "<s>", 0, TT_CONTROL) &&
         vb_add(&v, "</s>", 0, TT_CONTROL);
    for (int b = 0; ok && b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        ok = vb_add(&v, buf, 0, TT_BYTE);
    }
    ok = ok && vb_add(&v, SPM_SPACE, -(float)v.n, TT_NORMAL);
    /* printable ASCII, then the same with a word-boundary mark in front */
    for (int c = 33; ok && c < 127; c++) {
        char buf[2] = {(char)c, 0};
        ok = vb_add(&v, buf, -(float)v.n, TT_NORMAL);
    }
    for (int c = 33; ok && c < 127; c++) {
        char buf[8];
        snprintf(buf, sizeof buf, SPM_SPACE "%c", c);
        ok = vb_add(&v, buf, -(float)v.n, TT_NORMAL);
    }
    for (int len = 2; ok && len <= 8 && v.n < v.cap; len++)
        ok = add_words(&v, len, false) && add_words(&v, len, true);
    if (!ok) {
        st = sw_err_set(err, SW_E_NOMEM, "vocabulary of %lld entries", (long long)n_vocab);
        goto done;
    }
    if (v.n != n_vocab) {
        st = sw_err_set(err, SW_E_INTERNAL, "vocabulary generator made %lld of %lld entries",
                        (long long)v.n, (long long)n_vocab);
        goto done;
    }
    if ((st = sw_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama")) != SW_OK ||
        (st = sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text,
                                         (uint64_t)v.n)) != SW_OK ||
        (st = sw_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SW_GGUF_FLOAT32, v.score,
                                     (uint64_t)v.n)) != SW_OK ||
        (st = sw_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SW_GGUF_INT32, v.type,
                                     (uint64_t)v.n)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0)) != SW_OK ||
        (st = sw_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true)) != SW_OK ||
        (st = sw_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false)) != SW_OK) {
        sw_err_set(err, st, "setting tokenizer metadata: %s", sw_status_str(st));
        goto done;
    }
    st = SW_OK;
done:
    vb_free(&v);
    return st;
}

sw_status mk_write_wpm_vocab(sw_gguf_writer *w, int64_t n_vocab, sw_err *err) {
    if (n_vocab < MK_MIN_WPM_VOCAB || n_vocab > INT32_MAX)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "--vocab %lld: a generated WordPiece vocab needs %d..%d entries",
                          (long long)n_vocab, MK_MIN_WPM_VOCAB, INT32_MAX);
    vocab_build v = {0};
    v.cap = n_vocab;
    v.text = calloc((size_t)n_vocab, sizeof *v.text);
    v.score = calloc((size_t)n_vocab, sizeof *v.score);
    v.type = calloc((size_t)n_vocab, sizeof *v.type);
    sw_status st = SW_E_NOMEM;
    bool ok = v.text && v.score && v.type;
    static const char *const specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (size_t i = 0; ok && i < sizeof specials / sizeof specials[0]; i++)
        ok = vb_add(&v, specials[i], 0, TT_CONTROL);
    /* every printable ASCII char but the capitals (the tokenizer lowercases)
     * as a word start and as a continuation, so that any text is covered;
     * then longer pieces of both kinds */
    for (int space = 1; space >= 0; space--)
        for (int c = 33; ok && c < 127; c++) {
            if (c >= 'A' && c <= 'Z') continue;
            char buf[8];
            snprintf(buf, sizeof buf, "%s%c", space ? SPM_SPACE : "", c);
            ok = vb_add(&v, buf, 0, TT_NORMAL);
        }
    for (int len = 2; ok && len <= 8 && v.n < v.cap; len++)
        ok = add_words(&v, len, true) && add_words(&v, len, false);
    if (!ok) {
        st = sw_err_set(err, SW_E_NOMEM, "vocabulary of %lld entries", (long long)n_vocab);
        goto done;
    }
    if ((st = sw_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert")) != SW_OK ||
        (st = sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v.text,
                                         (uint64_t)v.n)) != SW_OK ||
        (st = sw_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SW_GGUF_INT32, v.type,
                                     (uint64_t)v.n)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", 2)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2)) != SW_OK ||
        (st = sw_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3)) != SW_OK ||
        (st = sw_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true)) != SW_OK ||
        (st = sw_gguf_writer_set_bool(w, "tokenizer.ggml.add_sep_token", true)) != SW_OK) {
        sw_err_set(err, st, "setting tokenizer metadata: %s", sw_status_str(st));
        goto done;
    }
    st = SW_OK;
done:
    vb_free(&v);
    return st;
}

sw_status mk_copy_vocab(sw_gguf_writer *w, const sw_gguf *src, int64_t *n_vocab, sw_err *err) {
    int64_t tok = sw_gguf_find_key(src, "tokenizer.ggml.tokens");
    if (tok < 0 || sw_gguf_kv_type(src, tok) != SW_GGUF_ARRAY ||
        sw_gguf_kv_arr_type(src, tok) != SW_GGUF_STRING)
        return sw_err_set(err, SW_E_FORMAT, "'%s': no string array 'tokenizer.ggml.tokens'",
                          sw_gguf_path(src));
    uint64_t n = sw_gguf_kv_arr_n(src, tok);
    if (n == 0 || n > INT32_MAX)
        return sw_err_set(err, SW_E_FORMAT, "'%s': tokenizer.ggml.tokens has %llu entries",
                          sw_gguf_path(src), (unsigned long long)n);
    for (int64_t i = 0; i < sw_gguf_n_kv(src); i++) {
        const char *key = sw_gguf_kv_key(src, i);
        if (strncmp(key, "tokenizer.", 10) != 0) continue;
        sw_status st = sw_gguf_writer_copy_kv(w, src, i);
        if (st != SW_OK)
            return sw_err_set(err, st, "'%s': copying key '%s': %s", sw_gguf_path(src), key,
                              sw_status_str(st));
    }
    *n_vocab = (int64_t)n;
    return SW_OK;
}
