/* tokenizer_util.c — the containers the tokenizers are built on: an int
 * vector, a string table (one arena, NUL-terminated entries), an open
 * addressing text->index map, a uint64-keyed map (merge pairs, trie edges), the
 * merge-candidate heap, and UTF-8 helpers. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- vector ---- */

sw_status sw_tok_vec_push(sw_tok_vec *a, int32_t x, sw_err *err) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (%zu ids)", cap);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return SW_OK;
}

/* ---- string table ---- */

sw_status sw_tok_strtab_add(sw_tok_strtab *s, const char *text, size_t len, int32_t *idx,
                            sw_err *err) {
    if (s->n == INT32_MAX || len > UINT32_MAX - 1 || s->arena_len + len + 1 > UINT32_MAX)
        return sw_err_set(err, SW_E_RANGE, "tokenizer: string table over 4 GiB or 2^31 entries");
    if (s->n == s->cap) {
        int32_t cap = s->cap ? (s->cap > INT32_MAX / 2 ? INT32_MAX : s->cap * 2) : 1024;
        uint32_t *off = realloc(s->off, (size_t)cap * sizeof *off);
        if (!off) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (string table)");
        s->off = off;
        uint32_t *ln = realloc(s->len, (size_t)cap * sizeof *ln);
        if (!ln) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (string table)");
        s->len = ln;
        s->cap = cap;
    }
    if (s->arena_len + len + 1 > s->arena_cap) {
        size_t cap = s->arena_cap ? s->arena_cap : 4096;
        while (cap < s->arena_len + len + 1)
            cap *= 2;
        char *a = realloc(s->arena, cap);
        if (!a) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (string arena)");
        s->arena = a;
        s->arena_cap = cap;
    }
    if (len) memcpy(s->arena + s->arena_len, text, len);
    s->arena[s->arena_len + len] = '\0';
    s->off[s->n] = (uint32_t)s->arena_len;
    s->len[s->n] = (uint32_t)len;
    s->arena_len += len + 1;
    *idx = s->n++;
    return SW_OK;
}

void sw_tok_strtab_clear(sw_tok_strtab *s) {
    free(s->arena);
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* ---- text -> index map ---- */

uint32_t sw_tok_hash(const char *s, size_t n) {
    /* FNV-1a: short keys, good enough spread for power-of-two tables. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

sw_status sw_tok_strmap_init(sw_tok_strmap *m, size_t expected, sw_err *err) {
    memset(m, 0, sizeof *m);
    if (expected > SIZE_MAX / 4) return sw_err_set(err, SW_E_RANGE, "tokenizer: map too large");
    m->cap = pow2_at_least(expected * 2 + 1);
    m->slot = malloc(m->cap * sizeof *m->slot);
    m->hash = malloc(m->cap * sizeof *m->hash);
    if (!m->slot || !m->hash) {
        sw_tok_strmap_clear(m);
        return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (token map)");
    }
    for (size_t i = 0; i < m->cap; i++)
        m->slot[i] = -1;
    return SW_OK;
}

void sw_tok_strmap_clear(sw_tok_strmap *m) {
    free(m->slot);
    free(m->hash);
    memset(m, 0, sizeof *m);
}

static sw_status strmap_grow(sw_tok_strmap *m, sw_err *err) {
    sw_tok_strmap n;
    sw_status s = sw_tok_strmap_init(&n, m->cap, err);
    if (s != SW_OK) return s;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i] < 0) continue;
        size_t j = m->hash[i] & (n.cap - 1);
        while (n.slot[j] >= 0)
            j = (j + 1) & (n.cap - 1);
        n.slot[j] = m->slot[i];
        n.hash[j] = m->hash[i];
    }
    n.count = m->count;
    sw_tok_strmap_clear(m);
    *m = n;
    return SW_OK;
}

sw_status sw_tok_strmap_put(sw_tok_strmap *m, const sw_tok_strtab *st, int32_t i, int32_t *existing,
                            sw_err *err) {
    if ((m->count + 1) * 2 > m->cap) {
        sw_status s = strmap_grow(m, err);
        if (s != SW_OK) return s;
    }
    const char *txt = sw_tok_str(st, i);
    size_t n = st->len[i];
    uint32_t h = sw_tok_hash(txt, n);
    size_t j = h & (m->cap - 1);
    while (m->slot[j] >= 0) {
        int32_t k = m->slot[j];
        if (m->hash[j] == h && st->len[k] == n && memcmp(sw_tok_str(st, k), txt, n) == 0) {
            if (existing) *existing = k;
            return SW_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slot[j] = i;
    m->hash[j] = h;
    m->count++;
    if (existing) *existing = -1;
    return SW_OK;
}

int32_t sw_tok_strmap_get(const sw_tok_strmap *m, const sw_tok_strtab *st, const char *s,
                          size_t n) {
    if (!m->cap) return -1;
    uint32_t h = sw_tok_hash(s, n);
    size_t j = h & (m->cap - 1);
    while (m->slot[j] >= 0) {
        int32_t k = m->slot[j];
        if (m->hash[j] == h && st->len[k] == n && memcmp(sw_tok_str(st, k), s, n) == 0) return k;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---- uint64 map ---- */

static size_t u64_slot(uint64_t k, size_t cap) {
    /* splitmix64 finalizer: the keys (id pairs, node<<8|byte) are highly
     * structured, so mix before masking. */
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    k ^= k >> 31;
    return (size_t)k & (cap - 1);
}

sw_status sw_tok_u64map_init(sw_tok_u64map *m, size_t expected, sw_err *err) {
    memset(m, 0, sizeof *m);
    if (expected > SIZE_MAX / 4) return sw_err_set(err, SW_E_RANGE, "tokenizer: map too large");
    m->cap = pow2_at_least(expected * 2 + 1);
    m->key = malloc(m->cap * sizeof *m->key);
    m->va = malloc(m->cap * sizeof *m->va);
    m->vb = malloc(m->cap * sizeof *m->vb);
    if (!m->key || !m->va || !m->vb) {
        sw_tok_u64map_clear(m);
        return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (pair map)");
    }
    for (size_t i = 0; i < m->cap; i++)
        m->key[i] = UINT64_MAX;
    return SW_OK;
}

void sw_tok_u64map_clear(sw_tok_u64map *m) {
    free(m->key);
    free(m->va);
    free(m->vb);
    memset(m, 0, sizeof *m);
}

sw_status sw_tok_u64map_put(sw_tok_u64map *m, uint64_t k, int32_t a, int32_t b, bool *inserted,
                            sw_err *err) {
    if ((m->count + 1) * 2 > m->cap) {
        sw_tok_u64map n;
        sw_status s = sw_tok_u64map_init(&n, m->cap, err);
        if (s != SW_OK) return s;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->key[i] == UINT64_MAX) continue;
            size_t j = u64_slot(m->key[i], n.cap);
            while (n.key[j] != UINT64_MAX)
                j = (j + 1) & (n.cap - 1);
            n.key[j] = m->key[i];
            n.va[j] = m->va[i];
            n.vb[j] = m->vb[i];
        }
        n.count = m->count;
        sw_tok_u64map_clear(m);
        *m = n;
    }
    size_t j = u64_slot(k, m->cap);
    while (m->key[j] != UINT64_MAX) {
        if (m->key[j] == k) {
            if (inserted) *inserted = false;
            return SW_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->key[j] = k;
    m->va[j] = a;
    m->vb[j] = b;
    m->count++;
    if (inserted) *inserted = true;
    return SW_OK;
}

bool sw_tok_u64map_get(const sw_tok_u64map *m, uint64_t k, int32_t *a, int32_t *b) {
    if (!m->cap) return false;
    size_t j = u64_slot(k, m->cap);
    while (m->key[j] != UINT64_MAX) {
        if (m->key[j] == k) {
            if (a) *a = m->va[j];
            if (b) *b = m->vb[j];
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

/* ---- heap ---- */

static bool bigram_less(const sw_tok_bigram *x, const sw_tok_bigram *y) {
    if (x->key != y->key) return x->key < y->key;
    return x->left < y->left;
}

sw_status sw_tok_heap_push(sw_tok_heap *h, sw_tok_bigram b, sw_err *err) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        sw_tok_bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (merge queue)");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_less(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return SW_OK;
}

bool sw_tok_heap_pop(sw_tok_heap *h, sw_tok_bigram *out) {
    if (h->n == 0) return false;
    *out = h->v[0];
    sw_tok_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_less(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_less(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return true;
}

/* ---- UTF-8 ---- */


size_t sw_tok_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

