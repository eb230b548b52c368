/* tokenizer_spm.c — SentencePiece-style tokenization ("llama" vocabs) as
 * llama.cpp does it: spaces become U+2581, the text is split into UTF-8
 * characters, and adjacent symbols are merged greedily, always taking the pair
 * whose concatenation is the vocab entry with the highest score (ties: the
 * leftmost). Symbols that end up outside the vocab fall back to <0xXX> byte
 * tokens (or the unknown token when the vocab has no byte tokens). */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct spm_work {
    char *w; /* escaped text */
    size_t wn;
    sw_tok_sym *sym;
    size_t nsym;
    sw_tok_heap heap;
} spm_work;

static sw_status try_bigram(const sw_tokenizer *t, spm_work *b, int32_t l, int32_t r, sw_err *err) {
    if (l < 0 || r < 0) return SW_OK;
    /* Symbols are adjacent spans of the buffer, so the pair's text is a span. */
    uint32_t n = b->sym[l].n + b->sym[r].n;
    int32_t id = sw_tok_strmap_get(&t->map, &t->str, b->w + b->sym[l].off, n);
    if (id < 0 || id >= t->n_vocab) return SW_OK;
    sw_tok_bigram bg = {-(double)t->score[id], l, r, n};
    return sw_tok_heap_push(&b->heap, bg, err);
}

static sw_status emit_symbol(const sw_tokenizer *t, const spm_work *b, const sw_tok_sym *s,
                             sw_tok_vec *out, sw_err *err) {
    int32_t id = sw_tok_strmap_get(&t->map, &t->str, b->w + s->off, s->n);
    if (id >= 0 && id < t->n_vocab) return sw_tok_vec_push(out, id, err);
    /* A merged symbol is always a token, so this is a single character the
     * vocab lacks: spell it in bytes. */
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t bt = t->byte_tok[(unsigned char)b->w[s->off + i]];
        if (bt < 0) bt = t->unk;
        if (bt < 0) continue; /* no byte tokens and no <unk>: nothing to say */
        sw_status st = sw_tok_vec_push(out, bt, err);
        if (st != SW_OK) return st;
    }
    return SW_OK;
}

/* Escape: optional leading space, then ' ' -> U+2581 ("\xE2\x96\x81"). */
static sw_status escape(const char *text, size_t len, bool space_prefix, spm_work *b, sw_err *err) {
    if (len > (SIZE_MAX - 4) / 3) return sw_err_set(err, SW_E_RANGE, "tokenizer: input too large");
    b->w = malloc(3 * (len + 1) + 1);
    if (!b->w) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (%zu bytes)", len);
    size_t o = 0;
    if (space_prefix) {
        memcpy(b->w, "\xE2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(b->w + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            b->w[o++] = text[i];
        }
    }
    b->w[o] = '\0';
    b->wn = o;
    return SW_OK;
}

sw_status sw_tok_spm_fragment(const sw_tokenizer *t, const char *text, size_t len,
                              bool space_prefix, sw_tok_vec *out, sw_err *err) {
    spm_work b = {0};
    sw_status st = escape(text, len, space_prefix, &b, err);
    if (st != SW_OK) return st;
    if (b.wn == 0) goto done;
    b.sym = malloc(b.wn * sizeof *b.sym);
    if (!b.sym) {
        st = sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (symbols)");
        goto done;
    }
    for (size_t off = 0; off < b.wn;) {
        size_t n = sw_tok_utf8_len((unsigned char)b.w[off]);
        if (n > b.wn - off) n = b.wn - off;
        sw_tok_sym *s = &b.sym[b.nsym];
        s->off = (uint32_t)off;
        s->n = (uint32_t)n;
        s->prev = (int32_t)b.nsym - 1;
        s->next = off + n == b.wn ? -1 : (int32_t)b.nsym + 1;
        s->id = -1;
        b.nsym++;
        off += n;
    }
    for (size_t i = 1; i < b.nsym && st == SW_OK; i++)
        st = try_bigram(t, &b, (int32_t)i - 1, (int32_t)i, err);
    sw_tok_bigram bg;
    while (st == SW_OK && sw_tok_heap_pop(&b.heap, &bg)) {
        sw_tok_sym *l = &b.sym[bg.left], *r = &b.sym[bg.right];
        /* stale: one side was merged away or grew since the pair was queued */
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) b.sym[r->next].prev = bg.left;
        st = try_bigram(t, &b, l->prev, bg.left, err);
        if (st == SW_OK) st = try_bigram(t, &b, bg.left, l->next, err);
    }
    for (int32_t i = 0; st == SW_OK && i != -1; i = b.sym[i].next)
        st = emit_symbol(t, &b, &b.sym[i], out, err);
done:
    free(b.w);
    free(b.sym);
    free(b.heap.v);
    return st;
}
