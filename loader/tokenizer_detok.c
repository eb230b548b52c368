/* tokenizer_detok.c — from ids back to bytes: the per-token piece cache
 * (built once at load), sw_token_to_piece, whole-sequence sw_detokenize, and
 * the streaming sw_detok that holds back an incomplete UTF-8 character until
 * the token that completes it arrives and emits only valid UTF-8 (U+FFFD for
 * each byte that does not start a valid sequence, as sw_utf8_sanitize). */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* <0xXX> -> byte value, or -1 if text is not of that form. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Piece of a NORMAL token into out (room for 2*n+4 bytes); returns its length. */
static size_t normal_piece(const sw_tokenizer *t, const char *s, size_t n, char *out) {
    size_t o = 0;
    if (t->type == SW_TOK_BPE) {
        /* undo the GPT-2 byte-to-unicode mapping; a char outside it (not
         * produced by the converter) is passed through unchanged */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = sw_utf8_decode(s + i, n - i, &cp);
            if (k == 0) {
                out[o++] = s[i++];
                continue;
            }
            if (cp < 512 && t->byte_dec[cp] >= 0)
                out[o++] = (char)t->byte_dec[cp];
            else {
                memcpy(out + o, s + i, k);
                o += k;
            }
            i += k;
        }
        return o;
    }
    /* SPM and WordPiece: U+2581 stands for a space */
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            out[o++] = ' ';
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

sw_status sw_tok_build_pieces(sw_tokenizer *t, sw_err *err) {
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        total += t->str.len[i];
    if (total > UINT32_MAX / 2)
        return sw_err_set(err, SW_E_RANGE, "tokenizer: vocabulary text too large");
    t->piece = malloc(total + 1);
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    char *tmp = malloc(2 * (size_t)t->max_token_len + 8);
    if (!t->piece || !t->piece_off || !tmp) {
        free(tmp);
        return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (piece cache)");
    }
    size_t o = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const char *s = sw_tok_str(&t->str, i);
        size_t n = t->str.len[i], k = 0;
        uint8_t a = t->attr[i];
        t->piece_off[i] = (uint32_t)o;
        if (a & (SW_TATTR_CONTROL | SW_TATTR_UNKNOWN)) {
            k = 0; /* rendered only on request, from the raw text */
        } else if (a & SW_TATTR_USER_DEFINED) {
            memcpy(tmp, s, n);
            k = n;
        } else if (a & SW_TATTR_NORMAL) {
            k = normal_piece(t, s, n, tmp);
        } else if (a & SW_TATTR_BYTE) {
            int v = parse_byte_token(s, n);
            if (v >= 0) {
                tmp[0] = (char)v;
                k = 1;
            }
        }
        /* UNUSED / UNDEFINED tokens render as nothing, like control ones.
         * A NUL byte (<0x00>, or BPE's U+0100) is not text: it is dropped
         * here, once, so every output path (C strings included) agrees and
         * nothing after it is lost. No piece is longer than its token text,
         * so the arena suffices. */
        for (size_t j = 0; j < k; j++)
            if (tmp[j] != '\0') t->piece[o++] = tmp[j];
    }
    t->piece_off[t->n_vocab] = (uint32_t)o;
    free(tmp);
    return SW_OK;
}

/* Borrowed view of the bytes a token contributes. */
static const char *piece_of(const sw_tokenizer *t, int32_t id, bool render_special, size_t *n) {
    if ((t->attr[id] & (SW_TATTR_CONTROL | SW_TATTR_UNKNOWN)) && render_special) {
        *n = t->str.len[id];
        return sw_tok_str(&t->str, id);
    }
    *n = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

const char *sw_token_piece(const sw_tokenizer *t, int32_t id, size_t *n) {
    *n = 0;
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return piece_of(t, id, false, n);
}

size_t sw_token_to_piece(const sw_tokenizer *t, int32_t id, bool render_special, char *buf,
                         size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab) return 0;
    size_t n;
    const char *p = piece_of(t, id, render_special, &n);
    if (buf && cap) memcpy(buf, p, n < cap ? n : cap);
    return n;
}

sw_status sw_detokenize(const sw_tokenizer *t, const int32_t *ids, size_t n, bool render_special,
                        char **out, sw_err *err) {
    if (!t || !out || (n && !ids))
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_detokenize: NULL argument");
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return sw_err_set(err, SW_E_RANGE, "sw_detokenize: token %zu has id %d, vocab has %d",
                              i, (int)ids[i], (int)t->n_vocab);
        size_t k;
        piece_of(t, ids[i], render_special, &k);
        total += k;
    }
    char *s = malloc(total + 1);
    if (!s) return sw_err_set(err, SW_E_NOMEM, "sw_detokenize: out of memory (%zu bytes)", total);
    size_t o = 0, i = 0;
    /* SPM tokenization put a space in front of the text (after BOS, if any);
     * take it off the first text token so that detokenize(tokenize(x)) == x. */
    bool strip = t->add_space_prefix;
    if (n && ids[0] == t->bos && t->bos >= 0) {
        size_t k;
        const char *p = piece_of(t, ids[0], render_special, &k);
        memcpy(s, p, k);
        o = k;
        i = 1;
    }
    for (; i < n; i++) {
        size_t k;
        const char *p = piece_of(t, ids[i], render_special, &k);
        if (strip && k > 0 && p[0] == ' ' && (t->attr[ids[i]] & SW_TATTR_NORMAL)) {
            p++;
            k--;
        }
        strip = false;
        memcpy(s + o, p, k);
        o += k;
    }
    s[o] = '\0';
    *out = s;
    return SW_OK;
}

/* ---- streaming ---- */

struct sw_detok {
    const sw_tokenizer *t; /* borrowed */
    bool render_special;
    char *buf; /* output of the last call, NUL-terminated (room for 3 * cap + 1) */
    char *raw; /* the held bytes and the new piece, before sanitizing */
    size_t cap;
    char held[4]; /* incomplete UTF-8 tail carried to the next push */
    size_t nheld;
};

sw_detok *sw_detok_create(const sw_tokenizer *t, bool render_special) {
    if (!t) return NULL;
    sw_detok *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->t = t;
    d->render_special = render_special;
    d->cap = 64;
    d->buf = malloc(3 * d->cap + 1);
    d->raw = malloc(d->cap);
    if (!d->buf || !d->raw) {
        free(d->buf);
        free(d->raw);
        free(d);
        return NULL;
    }
    d->buf[0] = '\0';
    return d;
}

void sw_detok_free(sw_detok *d) {
    if (!d) return;
    free(d->buf);
    free(d->raw);
    free(d);
}

/* Bytes at the end of s[0..n) that start a UTF-8 sequence the data does not
 * finish yet (0 if the tail is complete or is not valid UTF-8 anyway). */
static size_t incomplete_tail(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking for the lead */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
        if (c >= 0xF5) need = 1;
        return need > back ? back : 0;
    }
    return 0;
}

const char *sw_detok_push(sw_detok *d, int32_t id) {
    if (!d) return "";
    size_t k = 0;
    const char *p = "";
    if (id >= 0 && id < d->t->n_vocab) p = piece_of(d->t, id, d->render_special, &k);
    size_t need = d->nheld + k;
    if (need > d->cap) {
        size_t cap = d->cap;
        while (cap < need)
            cap *= 2;
        char *r = realloc(d->raw, cap);
        if (r) d->raw = r;
        char *b = r ? realloc(d->buf, 3 * cap + 1) : NULL;
        if (!b) {
            /* Out of memory: say nothing now; the held bytes stay held. */
            d->buf[0] = '\0';
            return d->buf;
        }
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->raw, d->held, d->nheld);
    memcpy(d->raw + d->nheld, p, k);
    size_t n = d->nheld + k;
    size_t tail = incomplete_tail(d->raw, n);
    memcpy(d->held, d->raw + n - tail, tail);
    d->nheld = tail;
    d->buf[sw_utf8_sanitize_into(d->raw, n - tail, d->buf)] = '\0';
    return d->buf;
}

const char *sw_detok_flush(sw_detok *d) {
    if (!d) return "";
    /* what is still held never completes: U+FFFD per byte (cap >= 64 > 3) */
    d->buf[sw_utf8_sanitize_into(d->held, d->nheld, d->buf)] = '\0';
    d->nheld = 0;
    return d->buf;
}
