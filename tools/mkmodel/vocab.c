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

/* Room for n entries; false when out of memory (vb_free cleans up either way). */
static bool vb_init(vocab_build *v, int64_t n) {
    memset(v, 0, sizeof *v);
    v->cap = n;
    v->text = calloc((size_t)n, sizeof *v->text);
    v->score = calloc((size_t)n, sizeof *v->score);
    v->type = calloc((size_t)n, sizeof *v->type);
    return v->text && v->score && v->type;
}

/* A tokenizer key: a u32, or a bool (v 0/1). */
typedef struct vocab_key {
    const char *key;
    uint32_t v;
    bool is_bool;
} vocab_key;

/* Check the built vocab (ok: no allocation failed; it must be full) and
 * write it with the model name, scores when asked, and the keys. */
static sw_status vb_finish(sw_gguf_writer *w, const vocab_build *v, bool ok, const char *model,
                           bool scores, const vocab_key *keys, size_t n_keys, sw_err *err) {
    if (!ok) return sw_err_set(err, SW_E_NOMEM, "vocabulary of %lld entries", (long long)v->cap);
    if (v->n != v->cap)
        return sw_err_set(err, SW_E_INTERNAL, "vocabulary generator made %lld of %lld entries",
                          (long long)v->n, (long long)v->cap);
    sw_status st = sw_gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (st == SW_OK)
        st = sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->text,
                                        (uint64_t)v->n);
    if (st == SW_OK && scores)
        st = sw_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SW_GGUF_FLOAT32, v->score,
                                    (uint64_t)v->n);
    if (st == SW_OK)
        st = sw_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SW_GGUF_INT32, v->type,
                                    (uint64_t)v->n);
    for (size_t i = 0; st == SW_OK && i < n_keys; i++)
        st = keys[i].is_bool ? sw_gguf_writer_set_bool(w, keys[i].key, keys[i].v != 0)
                             : sw_gguf_writer_set_u32(w, keys[i].key, keys[i].v);
    if (st != SW_OK)
        return sw_err_set(err, st, "setting tokenizer metadata: %s", sw_status_str(st));
    return SW_OK;
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
    vocab_build v;
    bool ok = vb_init(&v, n_vocab);
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
    static const vocab_key keys[] = {
        {"tokenizer.ggml.bos_token_id", 1, false}, {"tokenizer.ggml.eos_token_id", 2, false},
        {"tokenizer.ggml.unknown_token_id", 0, false}, {"tokenizer.ggml.add_bos_token", 1, true},
        {"tokenizer.ggml.add_eos_token", 0, true}};
    sw_status st = vb_finish(w, &v, ok, "llama", true, keys, sizeof keys / sizeof keys[0], err);
    vb_free(&v);
    return st;
}

sw_status mk_write_wpm_vocab(sw_gguf_writer *w, int64_t n_vocab, sw_err *err) {
    if (n_vocab < MK_MIN_WPM_VOCAB || n_vocab > INT32_MAX)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "--vocab %lld: a generated WordPiece vocab needs %d..%d entries",
                          (long long)n_vocab, MK_MIN_WPM_VOCAB, INT32_MAX);
    vocab_build v;
    bool ok = vb_init(&v, n_vocab);
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
    static const vocab_key keys[] = {
        {"tokenizer.ggml.token_type_count", 2, false}, {"tokenizer.ggml.padding_token_id", 0, false},
        {"tokenizer.ggml.unknown_token_id", 1, false}, {"tokenizer.ggml.bos_token_id", 2, false},
        {"tokenizer.ggml.seperator_token_id", 3, false}, {"tokenizer.ggml.add_bos_token", 1, true},
        {"tokenizer.ggml.add_sep_token", 1, true}};
    sw_status st = vb_finish(w, &v, ok, "bert", false, keys, sizeof keys / sizeof keys[0], err);
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
