/* tokenizer_wpm.c — WordPiece ("bert" vocabs), following Hugging Face's
 * BertNormalizer + BertPreTokenizer + WordPiece, which is what the reference
 * ids come from:
 *   normalize: drop NUL, U+FFFD and control chars; whitespace separates words;
 *              CJK ideographs stand alone; strip accents (NFD, then drop Mn);
 *              lowercase;
 *   split:     on whitespace, and every punctuation char is a word of its own;
 *   WordPiece: greedy longest-match-first; a word that cannot be covered, or
 *              has more than 100 chars, becomes [UNK].
 * GGUF stores word-initial pieces with a U+2581 prefix and continuation
 * pieces without the "##", so "▁" + word is matched from its start and the
 * continuation pieces are looked up as they are. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#define WPM_MAX_WORD_CHARS 100

typedef struct wpm_word {
    char *b; /* "\xE2\x96\x81" + word bytes */
    size_t n, cap;
    uint32_t *cpos; /* byte offset (in b) of each char of the word */
    size_t nch, cpcap;
} wpm_word;

static bool is_chinese(uint32_t cp) {
    /* The ranges BERT calls CJK; 0x2B920 (not 0x2B820) as HF's Rust code has. */
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static bool is_ws(uint32_t cp) {
    return cp == '\t' || cp == '\n' || cp == '\r' || sw_tok_is_white_space(cp);
}

static bool is_control(uint32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    int c = sw_tok_ucat(cp);
    return c == SW_UCAT_CC || c == SW_UCAT_CF || c == SW_UCAT_CN || c == SW_UCAT_CO ||
           c == SW_UCAT_CS;
}

static bool is_punct(uint32_t cp) {
    /* All ASCII punctuation and symbols ($+<=>^`|~ included), plus Unicode P*. */
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return true;
    int c = sw_tok_ucat(cp);
    return c >= SW_UCAT_PC && c <= SW_UCAT_PS;
}

static sw_status word_add(wpm_word *w, uint32_t cp, sw_err *err) {
    if (w->n + 4 + 1 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        char *b = realloc(w->b, cap);
        if (!b) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (word)");
        w->b = b;
        w->cap = cap;
    }
    if (w->nch == w->cpcap) {
        size_t cap = w->cpcap ? w->cpcap * 2 : 32;
        uint32_t *c = realloc(w->cpos, cap * sizeof *c);
        if (!c) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (word)");
        w->cpos = c;
        w->cpcap = cap;
    }
    if (w->n == 0) {
        memcpy(w->b, "\xE2\x96\x81", 3);
        w->n = 3;
    }
    w->cpos[w->nch++] = (uint32_t)w->n;
    w->n += sw_tok_utf8_encode(cp, w->b + w->n);
    return SW_OK;
}

/* WordPiece over the collected word; resets it. */
static sw_status word_flush(const sw_tokenizer *t, wpm_word *w, sw_tok_vec *out, sw_err *err) {
    if (w->nch == 0) return SW_OK;
    size_t mark = out->n;
    sw_status st = SW_OK;
    bool ok = w->nch <= WPM_MAX_WORD_CHARS;
    for (size_t s = 0; ok && s < w->nch && st == SW_OK;) {
        /* word-initial pieces carry the U+2581 prefix at b[0..3) */
        size_t from = s == 0 ? 0 : w->cpos[s];
        size_t e = w->nch, found_e = 0;
        int32_t found = -1;
        for (; e > s; e--) {
            size_t to = e == w->nch ? w->n : w->cpos[e];
            if (to - from > t->max_token_len) continue;
            int32_t id = sw_tok_strmap_get(&t->map, &t->str, w->b + from, to - from);
            if (id >= 0 && id < t->n_vocab) {
                found = id;
                found_e = e;
                break;
            }
        }
        if (found < 0) {
            ok = false;
            break;
        }
        st = sw_tok_vec_push(out, found, err);
        s = found_e;
    }
    if (st == SW_OK && !ok) {
        out->n = mark;
        st = sw_tok_vec_push(out, t->unk, err);
    }
    w->n = 0;
    w->nch = 0;
    return st;
}

/* A normalized char: punctuation isolates, everything else joins the word. */
static sw_status emit_char(const sw_tokenizer *t, wpm_word *w, uint32_t cp, sw_tok_vec *out,
                           sw_err *err) {
    sw_status st = SW_OK;
    uint32_t low[3];
    size_t nl = 1;
    low[0] = cp;
    if (t->wpm_lowercase) nl = sw_tok_tolower(cp, low);
    for (size_t i = 0; i < nl && st == SW_OK; i++) {
        if (is_ws(low[i])) {
            st = word_flush(t, w, out, err);
        } else if (is_punct(low[i])) {
            st = word_flush(t, w, out, err);
            if (st == SW_OK) st = word_add(w, low[i], err);
            if (st == SW_OK) st = word_flush(t, w, out, err);
        } else {
            st = word_add(w, low[i], err);
        }
    }
    return st;
}

sw_status sw_tok_wpm_fragment(const sw_tokenizer *t, const char *text, size_t len, sw_tok_vec *out,
                              sw_err *err) {
    if (t->unk < 0)
        return sw_err_set(err, SW_E_FORMAT, "tokenizer: WordPiece vocab has no unknown token");
    wpm_word w = {0};
    sw_status st = SW_OK;
    for (size_t i = 0; i < len && st == SW_OK;) {
        uint32_t cp;
        size_t k = sw_utf8_decode(text + i, len - i, &cp);
        if (k == 0) {
            cp = 0xFFFD;
            k = 1;
        }
        i += k;
        if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
        if (is_ws(cp)) {
            st = word_flush(t, &w, out, err);
            continue;
        }
        if (is_chinese(cp)) {
            st = word_flush(t, &w, out, err);
            if (st == SW_OK) st = emit_char(t, &w, cp, out, err);
            if (st == SW_OK) st = word_flush(t, &w, out, err);
            continue;
        }
        if (t->wpm_strip_accents) {
            uint32_t d[4];
            size_t nd = sw_tok_nfd(cp, d);
            for (size_t j = 0; j < nd && st == SW_OK; j++) {
                if (sw_tok_ucat(d[j]) == SW_UCAT_MN) continue;
                st = emit_char(t, &w, d[j], out, err);
            }
        } else {
            st = emit_char(t, &w, cp, out, err);
        }
    }
    if (st == SW_OK) st = word_flush(t, &w, out, err);
    free(w.b);
    free(w.cpos);
    return st;
}
