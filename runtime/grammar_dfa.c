/* grammar_dfa.c — the regular layer of the grammar machinery (see
 * grammar_internal.h): the arena, code point sets, expressions, and their
 * compilation to byte DFAs.
 *
 * An expression becomes a Thompson NFA over bytes (a code point set becomes
 * the UTF-8 byte-range sequences of its ranges), then a DFA by the subset
 * construction over byte classes (bytes no edge tells apart share a column),
 * and finally loses its dead states, so that every state of a DFA we hand out
 * can still reach an accepting one: a prefix the DFA has not refused can be
 * completed. Every construction counts states against a cap. */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

/* ---- arena ---------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk;

struct sw_arena {
    arena_chunk *head;
    size_t total;
    bool failed;
};

sw_arena *sw_arena_create(void) {
    return calloc(1, sizeof(sw_arena));
}

void sw_arena_free(sw_arena *a) {
    if (!a) return;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

bool sw_arena_failed(const sw_arena *a) {
    return a->failed;
}

void *sw_arena_alloc(sw_arena *a, size_t n) {
    if (a->failed) return NULL;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > (64u << 10) ? n : (64u << 10);
        if (a->total + cap > SW_GRAMMAR_MAX_ARENA) {
            a->failed = true;
            return NULL;
        }
        c = malloc(sizeof *c + cap);
        if (!c) {
            a->failed = true;
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        a->total += cap;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *sw_arena_strndup(sw_arena *a, const char *s, size_t n) {
    char *p = sw_arena_alloc(a, n + 1);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---- code point sets ---------------------------------------------------------- */

static int cmp_range(const void *x, const void *y) {
    const uint32_t *a = x, *b = y;
    return a[0] < b[0] ? -1 : a[0] > b[0];
}

void sw_cpset_normalize(sw_cpset *s) {
    if (s->n <= 0) return;
    qsort(s->r, (size_t)s->n, 2 * sizeof(uint32_t), cmp_range);
    int32_t k = 0;
    for (int32_t i = 0; i < s->n; i++) {
        uint32_t lo = s->r[2 * i], hi = s->r[2 * i + 1];
        if (lo > hi) continue;
        if (k > 0 && lo <= s->r[2 * k - 1] + 1) {
            if (hi > s->r[2 * k - 1]) s->r[2 * k - 1] = hi;
        } else {
            s->r[2 * k] = lo;
            s->r[2 * k + 1] = hi;
            k++;
        }
    }
    s->n = k;
}

bool sw_cpset_has(const sw_cpset *s, uint32_t cp) {
    for (int32_t i = 0; i < s->n; i++)
        if (cp >= s->r[2 * i] && cp <= s->r[2 * i + 1]) return true;
    return false;
}

sw_cpset sw_cpset_complement(sw_arena *a, const sw_cpset *s) {
    sw_cpset out = {0, sw_arena_alloc(a, (size_t)(s->n + 3) * 2 * sizeof(uint32_t))};
    if (!out.r) return out;
    uint32_t next = 0;
    for (int32_t i = 0; i < s->n; i++) {
        if (s->r[2 * i] > next) {
            out.r[2 * out.n] = next;
            out.r[2 * out.n + 1] = s->r[2 * i] - 1;
            out.n++;
        }
        next = s->r[2 * i + 1] + 1;
    }
    if (next <= SW_CP_MAX) {
        out.r[2 * out.n] = next;
        out.r[2 * out.n + 1] = SW_CP_MAX;
        out.n++;
    }
    /* drop the surrogates */
    uint32_t no_sur[4] = {0, 0xD7FF, 0xE000, SW_CP_MAX};
    sw_cpset sur = {2, no_sur};
    return sw_cpset_intersect(a, &out, &sur);
}

sw_cpset sw_cpset_intersect(sw_arena *a, const sw_cpset *x, const sw_cpset *y) {
    sw_cpset out = {0, sw_arena_alloc(a, (size_t)(x->n + y->n + 1) * 2 * sizeof(uint32_t))};
    if (!out.r) return out;
    int32_t i = 0, j = 0;
    while (i < x->n && j < y->n) {
        uint32_t lo = SW_MAX(x->r[2 * i], y->r[2 * j]);
        uint32_t hi = SW_MIN(x->r[2 * i + 1], y->r[2 * j + 1]);
        if (lo <= hi) {
            out.r[2 * out.n] = lo;
            out.r[2 * out.n + 1] = hi;
            out.n++;
        }
        if (x->r[2 * i + 1] < y->r[2 * j + 1]) i++;
        else j++;
    }
    return out;
}

/* ---- expressions ---------------------------------------------------------------- */

static sw_rx *rx_new(sw_arena *a, uint8_t kind) {
    sw_rx *x = sw_arena_alloc(a, sizeof *x);
    if (x) x->kind = kind;
    return x;
}

sw_rx *sw_rx_none(sw_arena *a) {
    return rx_new(a, SW_RX_NONE);
}

sw_rx *sw_rx_empty(sw_arena *a) {
    return rx_new(a, SW_RX_EMPTY);
}

sw_rx *sw_rx_lit(sw_arena *a, const void *bytes, size_t n) {
    if (n == 0) return sw_rx_empty(a);
    if (n > INT32_MAX) return NULL;
    sw_rx *x = rx_new(a, SW_RX_LIT);
    uint8_t *p = sw_arena_alloc(a, n);
    if (!x || !p) return NULL;
    memcpy(p, bytes, n);
    x->n = (int32_t)n;
    x->u.lit = p;
    return x;
}

sw_rx *sw_rx_str(sw_arena *a, const char *s) {
    return sw_rx_lit(a, s, strlen(s));
}

sw_rx *sw_rx_byteset(sw_arena *a, const uint8_t set[32]) {
    sw_rx *x = rx_new(a, SW_RX_BYTES);
    uint8_t *p = sw_arena_alloc(a, 32);
    if (!x || !p) return NULL;
    memcpy(p, set, 32);
    x->u.set = p;
    return x;
}

sw_rx *sw_rx_byterange(sw_arena *a, uint8_t lo, uint8_t hi) {
    uint8_t set[32] = {0};
    for (unsigned c = lo; c <= hi; c++) set[c >> 3] |= (uint8_t)(1u << (c & 7));
    return sw_rx_byteset(a, set);
}

sw_rx *sw_rx_cps(sw_arena *a, const sw_cpset *s) {
    sw_rx *x = rx_new(a, SW_RX_CPS);
    uint32_t *r = sw_arena_alloc(a, (size_t)(s->n > 0 ? s->n : 1) * 2 * sizeof(uint32_t));
    if (!x || !r) return NULL;
    if (s->n > 0) memcpy(r, s->r, (size_t)s->n * 2 * sizeof(uint32_t));
    x->n = s->n;
    x->u.ranges = r;
    sw_cpset t = {x->n, r};
    sw_cpset_normalize(&t);
    x->n = t.n;
    if (x->n == 0) x->kind = SW_RX_NONE;
    return x;
}

sw_rx *sw_rx_cprange(sw_arena *a, uint32_t lo, uint32_t hi) {
    sw_cpset s = {1, (uint32_t[]){lo, hi}};
    return sw_rx_cps(a, &s);
}

static sw_rx *rx_list(sw_arena *a, uint8_t kind, sw_rx *const *kids, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        if (!kids[i]) return NULL;
    if (kind == SW_RX_CAT) {
        /* x∅ = ∅; drop ε */
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++) {
            if (kids[i]->kind == SW_RX_NONE) return sw_rx_none(a);
            if (kids[i]->kind != SW_RX_EMPTY) m++;
        }
        if (m == 0) return sw_rx_empty(a);
        if (m == 1)
            for (int32_t i = 0; i < n; i++)
                if (kids[i]->kind != SW_RX_EMPTY) return kids[i];
    } else {
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++)
            if (kids[i]->kind != SW_RX_NONE) m++;
        if (m == 0) return sw_rx_none(a);
        if (m == 1)
            for (int32_t i = 0; i < n; i++)
                if (kids[i]->kind != SW_RX_NONE) return kids[i];
    }
    sw_rx *x = rx_new(a, kind);
    sw_rx **k = sw_arena_alloc(a, (size_t)n * sizeof *k);
    if (!x || !k) return NULL;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (kids[i]->kind != (kind == SW_RX_CAT ? SW_RX_EMPTY : SW_RX_NONE)) k[m++] = kids[i];
    x->n = m;
    x->u.kids = k;
    return x;
}

sw_rx *sw_rx_cat(sw_arena *a, sw_rx *const *kids, int32_t n) {
    return rx_list(a, SW_RX_CAT, kids, n);
}

sw_rx *sw_rx_cat2(sw_arena *a, sw_rx *x, sw_rx *y) {
    sw_rx *k[2] = {x, y};
    return sw_rx_cat(a, k, 2);
}

sw_rx *sw_rx_cat3(sw_arena *a, sw_rx *x, sw_rx *y, sw_rx *z) {
    sw_rx *k[3] = {x, y, z};
    return sw_rx_cat(a, k, 3);
}

sw_rx *sw_rx_alt(sw_arena *a, sw_rx *const *kids, int32_t n) {
    return rx_list(a, SW_RX_ALT, kids, n);
}

sw_rx *sw_rx_alt2(sw_arena *a, sw_rx *x, sw_rx *y) {
    sw_rx *k[2] = {x, y};
    return sw_rx_alt(a, k, 2);
}

sw_rx *sw_rx_rep(sw_arena *a, sw_rx *x, int32_t min, int32_t max) {
    if (!x) return NULL;
    if (max >= 0 && max < min) return sw_rx_none(a);
    if (max == 0 || x->kind == SW_RX_EMPTY) return sw_rx_empty(a);
    if (x->kind == SW_RX_NONE) return min == 0 ? sw_rx_empty(a) : x;
    if (min == 1 && max == 1) return x;
    sw_rx *r = rx_new(a, SW_RX_REP);
    sw_rx **k = sw_arena_alloc(a, sizeof *k);
    if (!r || !k) return NULL;
    k[0] = x;
    r->n = 1;
    r->u.kids = k;
    r->min = min;
    r->max = max;
    return r;
}

sw_rx *sw_rx_opt(sw_arena *a, sw_rx *x) {
    return sw_rx_rep(a, x, 0, 1);
}

sw_rx *sw_rx_from_dfa(sw_arena *a, const sw_dfa *d) {
    if (d->n_states == 0) return sw_rx_none(a);
    sw_rx *x = rx_new(a, SW_RX_DFA);
    if (x) x->u.dfa = d;
    return x;
}

static int64_t sat_add(int64_t a, int64_t b) {
    return a + b > INT32_MAX ? INT32_MAX : a + b;
}

static int64_t sat_mul(int64_t a, int64_t b) {
    if (a == 0 || b == 0) return 0;
    return a > INT32_MAX / b ? INT32_MAX : a * b;
}

/* Bytes of the UTF-8 sequences a code point set expands to (an estimate of
 * its NFA states: one per byte of each range sequence). */
static int64_t cps_weight(const sw_rx *x) {
    int64_t w = 0;
    for (int32_t i = 0; i < x->n; i++) {
        uint32_t lo = x->u.ranges[2 * i], hi = x->u.ranges[2 * i + 1];
        int len = hi < 0x80 ? 1 : hi < 0x800 ? 2 : hi < 0x10000 ? 3 : 4;
        w = sat_add(w, (lo == hi ? 1 : 3) * len);
    }
    return w;
}

int64_t sw_rx_weight(const sw_rx *x) {
    if (!x) return 0;
    switch (x->kind) {
    case SW_RX_NONE:
    case SW_RX_EMPTY: return 1;
    case SW_RX_LIT: return x->n + 1;
    case SW_RX_BYTES: return 2;
    case SW_RX_CPS: return cps_weight(x) + 1;
    case SW_RX_DFA: return x->u.dfa->n_states + 1;
    case SW_RX_CAT:
    case SW_RX_ALT: {
        int64_t w = 2;
        for (int32_t i = 0; i < x->n; i++) w = sat_add(w, sw_rx_weight(x->u.kids[i]));
        return w;
    }
    case SW_RX_REP: {
        int64_t copies = x->max < 0 ? x->min + 1 : x->max;
        return sat_add(sat_mul(sw_rx_weight(x->u.kids[0]), copies), copies + 2);
    }
    }
    return 1;
}

/* ---- NFA ------------------------------------------------------------------------ */

typedef struct nfa_edge {
    int32_t to, next; /* next edge of the same state */
    uint8_t lo, hi;   /* a byte range; eps when eps */
    uint8_t eps;
} nfa_edge;

typedef struct nfa {
    int32_t n_states, cap_states;
    int32_t *first; /* [n_states]: first edge, -1 */
    nfa_edge *e;
    int32_t n_e, cap_e;
    int32_t cap;  /* most states allowed */
    bool over, nomem;
} nfa;

static int32_t nfa_state(nfa *f) {
    if (f->n_states >= f->cap) {
        f->over = true;
        return -1;
    }
    if (f->n_states == f->cap_states) {
        int32_t c = f->cap_states ? 2 * f->cap_states : 256;
        int32_t *p = realloc(f->first, (size_t)c * sizeof *p);
        if (!p) {
            f->nomem = true;
            return -1;
        }
        f->first = p;
        f->cap_states = c;
    }
    f->first[f->n_states] = -1;
    return f->n_states++;
}

static bool nfa_edge_add(nfa *f, int32_t from, int32_t to, bool eps, uint8_t lo, uint8_t hi) {
    if (from < 0 || to < 0) return false;
    if (f->n_e == f->cap_e) {
        int32_t c = f->cap_e ? 2 * f->cap_e : 512;
        nfa_edge *p = realloc(f->e, (size_t)c * sizeof *p);
        if (!p) {
            f->nomem = true;
            return false;
        }
        f->e = p;
        f->cap_e = c;
    }
    nfa_edge *e = &f->e[f->n_e];
    e->to = to;
    e->eps = eps;
    e->lo = lo;
    e->hi = hi;
    e->next = f->first[from];
    f->first[from] = f->n_e++;
    return true;
}

static bool failed(const nfa *f) {
    return f->over || f->nomem;
}

/* UTF-8 encoding of cp into b; returns its length. */
static int utf8_enc(uint32_t cp, uint8_t *b) {
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | (cp >> 12));
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (uint8_t)(0xF0 | (cp >> 18));
    b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Edges from s to t for every UTF-8 encoding of a code point in [lo, hi]
 * (surrogates excluded by the callers): split the range until each piece is a
 * product of byte ranges, then chain one edge per byte. */
static void nfa_utf8_range(nfa *f, int32_t s, int32_t t, uint32_t lo, uint32_t hi, int depth) {
    if (failed(f) || lo > hi || depth > 16) return;
    static const uint32_t k_len_max[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= k_len_max[i] && hi > k_len_max[i]) {
            nfa_utf8_range(f, s, t, lo, k_len_max[i], depth + 1);
            nfa_utf8_range(f, s, t, k_len_max[i] + 1, hi, depth + 1);
            return;
        }
    uint8_t bl[4], bh[4];
    int n = utf8_enc(lo, bl);
    utf8_enc(hi, bh);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                nfa_utf8_range(f, s, t, lo, lo | m, depth + 1);
                nfa_utf8_range(f, s, t, (lo | m) + 1, hi, depth + 1);
                return;
            }
            if ((hi & m) != m) {
                nfa_utf8_range(f, s, t, lo, (hi & ~m) - 1, depth + 1);
                nfa_utf8_range(f, s, t, hi & ~m, hi, depth + 1);
                return;
            }
        }
    }
    int32_t cur = s;
    for (int i = 0; i < n; i++) {
        int32_t nx = i == n - 1 ? t : nfa_state(f);
        nfa_edge_add(f, cur, nx, false, bl[i], bh[i]);
        cur = nx;
    }
}

/* Build x between fresh states; *s / *t receive its entry and exit. */
static void nfa_build(nfa *f, const sw_rx *x, int32_t *s, int32_t *t) {
    *s = nfa_state(f);
    *t = nfa_state(f);
    if (failed(f)) return;
    switch (x->kind) {
    case SW_RX_NONE: break;
    case SW_RX_EMPTY: nfa_edge_add(f, *s, *t, true, 0, 0); break;
    case SW_RX_LIT: {
        int32_t cur = *s;
        for (int32_t i = 0; i < x->n && !failed(f); i++) {
            int32_t nx = i == x->n - 1 ? *t : nfa_state(f);
            nfa_edge_add(f, cur, nx, false, x->u.lit[i], x->u.lit[i]);
            cur = nx;
        }
        break;
    }
    case SW_RX_BYTES:
        for (int c = 0; c < 256;) {
            if (!(x->u.set[c >> 3] >> (c & 7) & 1)) {
                c++;
                continue;
            }
            int lo = c;
            while (c < 256 && (x->u.set[c >> 3] >> (c & 7) & 1)) c++;
            nfa_edge_add(f, *s, *t, false, (uint8_t)lo, (uint8_t)(c - 1));
        }
        break;
    case SW_RX_CPS:
        for (int32_t i = 0; i < x->n; i++) {
            uint32_t lo = x->u.ranges[2 * i], hi = SW_MIN(x->u.ranges[2 * i + 1], SW_CP_MAX);
            /* UTF-8 carries no surrogates: skip D800..DFFF */
            if (lo <= 0xDFFF && hi >= 0xD800) {
                if (lo < 0xD800) nfa_utf8_range(f, *s, *t, lo, 0xD7FF, 0);
                if (hi > 0xDFFF) nfa_utf8_range(f, *s, *t, 0xE000, hi, 0);
            } else {
                nfa_utf8_range(f, *s, *t, lo, hi, 0);
            }
        }
        break;
    case SW_RX_DFA: {
        const sw_dfa *d = x->u.dfa;
        int32_t base = f->n_states;
        for (int32_t q = 0; q < d->n_states; q++) nfa_state(f);
        if (failed(f)) return;
        nfa_edge_add(f, *s, base, true, 0, 0);
        for (int32_t q = 0; q < d->n_states && !failed(f); q++) {
            if (d->accept[q]) nfa_edge_add(f, base + q, *t, true, 0, 0);
            for (int c = 0; c < 256;) {
                int32_t to = sw_dfa_step(d, q, (uint8_t)c);
                int lo = c;
                while (c < 256 && sw_dfa_step(d, q, (uint8_t)c) == to) c++;
                if (to >= 0) nfa_edge_add(f, base + q, base + to, false, (uint8_t)lo, (uint8_t)(c - 1));
            }
        }
        break;
    }
    case SW_RX_CAT: {
        int32_t cur = *s;
        for (int32_t i = 0; i < x->n && !failed(f); i++) {
            int32_t ks, kt;
            nfa_build(f, x->u.kids[i], &ks, &kt);
            nfa_edge_add(f, cur, ks, true, 0, 0);
            cur = kt;
        }
        nfa_edge_add(f, cur, *t, true, 0, 0);
        break;
    }
    case SW_RX_ALT:
        for (int32_t i = 0; i < x->n && !failed(f); i++) {
            int32_t ks, kt;
            nfa_build(f, x->u.kids[i], &ks, &kt);
            nfa_edge_add(f, *s, ks, true, 0, 0);
            nfa_edge_add(f, kt, *t, true, 0, 0);
        }
        break;
    case SW_RX_REP: {
        const sw_rx *k = x->u.kids[0];
        int32_t cur = *s;
        for (int32_t i = 0; i < x->min && !failed(f); i++) {
            int32_t ks, kt;
            nfa_build(f, k, &ks, &kt);
            nfa_edge_add(f, cur, ks, true, 0, 0);
            cur = kt;
        }
        if (x->max < 0) {
            int32_t ks, kt;
            nfa_build(f, k, &ks, &kt);
            nfa_edge_add(f, cur, ks, true, 0, 0);
            nfa_edge_add(f, kt, cur, true, 0, 0);
        } else {
            for (int32_t i = x->min; i < x->max && !failed(f); i++) {
                int32_t ks, kt;
                nfa_edge_add(f, cur, *t, true, 0, 0);
                nfa_build(f, k, &ks, &kt);
                nfa_edge_add(f, cur, ks, true, 0, 0);
                cur = kt;
            }
        }
        nfa_edge_add(f, cur, *t, true, 0, 0);
        break;
    }
    }
}

/* ---- subset construction ------------------------------------------------------- */

typedef struct iset_table {
    int32_t *pool; /* the sets, back to back */
    size_t n_pool, cap_pool;
    size_t *off;   /* [n]: start of set i in pool */
    int32_t *len;  /* [n] */
    int32_t n, cap;
    int32_t *slots; /* open addressing: set id or -1 */
    size_t n_slots;
} iset_table;

static uint64_t hash_ints(const int32_t *v, int32_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n;
    for (int32_t i = 0; i < n; i++) {
        h ^= (uint32_t)v[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static void iset_free(iset_table *t) {
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->slots);
}

static bool iset_grow_slots(iset_table *t) {
    size_t ns = t->n_slots ? 2 * t->n_slots : 1024;
    int32_t *s = malloc(ns * sizeof *s);
    if (!s) return false;
    for (size_t i = 0; i < ns; i++) s[i] = -1;
    for (int32_t id = 0; id < t->n; id++) {
        uint64_t h = hash_ints(t->pool + t->off[id], t->len[id]);
        size_t i = h & (ns - 1);
        while (s[i] >= 0) i = (i + 1) & (ns - 1);
        s[i] = id;
    }
    free(t->slots);
    t->slots = s;
    t->n_slots = ns;
    return true;
}

/* Id of set v[0..n) (sorted), adding it if new (*added). -1 when out of memory. */
static int32_t iset_intern(iset_table *t, const int32_t *v, int32_t n, bool *added) {
    *added = false;
    if ((size_t)(t->n + 1) * 2 > t->n_slots && !iset_grow_slots(t)) return -1;
    uint64_t h = hash_ints(v, n);
    size_t i = h & (t->n_slots - 1);
    while (t->slots[i] >= 0) {
        int32_t id = t->slots[i];
        if (t->len[id] == n && !memcmp(t->pool + t->off[id], v, (size_t)n * sizeof *v)) return id;
        i = (i + 1) & (t->n_slots - 1);
    }
    if (t->n == t->cap) {
        int32_t c = t->cap ? 2 * t->cap : 256;
        size_t *o = realloc(t->off, (size_t)c * sizeof *o);
        if (!o) return -1;
        t->off = o;
        int32_t *l = realloc(t->len, (size_t)c * sizeof *l);
        if (!l) return -1;
        t->len = l;
        t->cap = c;
    }
    if (t->n_pool + (size_t)n > t->cap_pool) {
        size_t c = t->cap_pool ? 2 * t->cap_pool : 4096;
        while (c < t->n_pool + (size_t)n) c *= 2;
        int32_t *p = realloc(t->pool, c * sizeof *p);
        if (!p) return -1;
        t->pool = p;
        t->cap_pool = c;
    }
    memcpy(t->pool + t->n_pool, v, (size_t)n * sizeof *v);
    t->off[t->n] = t->n_pool;
    t->len[t->n] = n;
    t->n_pool += (size_t)n;
    t->slots[i] = t->n;
    *added = true;
    return t->n++;
}

static int cmp_i32(const void *x, const void *y) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* Epsilon closure of the n states in buf (in place, sorted on return). */
typedef struct closure_ctx {
    int32_t *stamp; /* [nfa states] */
    int32_t gen;
    int32_t *stack;
} closure_ctx;

static int32_t eps_closure(const nfa *f, closure_ctx *c, int32_t *buf, int32_t n) {
    c->gen++;
    int32_t sp = 0, out = 0;
    for (int32_t i = 0; i < n; i++)
        if (c->stamp[buf[i]] != c->gen) {
            c->stamp[buf[i]] = c->gen;
            c->stack[sp++] = buf[i];
        }
    while (sp > 0) {
        int32_t s = c->stack[--sp];
        buf[out++] = s;
        for (int32_t e = f->first[s]; e >= 0; e = f->e[e].next)
            if (f->e[e].eps && c->stamp[f->e[e].to] != c->gen) {
                c->stamp[f->e[e].to] = c->gen;
                c->stack[sp++] = f->e[e].to;
            }
    }
    qsort(buf, (size_t)out, sizeof *buf, cmp_i32);
    return out;
}

typedef struct dfa_build {
    int32_t n, cap;
    int32_t *next; /* [cap * n_classes] */
    uint8_t *accept;
    int32_t n_classes;
} dfa_build;

static bool dfa_build_add(dfa_build *b) {
    if (b->n == b->cap) {
        int32_t c = b->cap ? 2 * b->cap : 64;
        int32_t *nx = realloc(b->next, (size_t)c * (size_t)b->n_classes * sizeof *nx);
        if (!nx) return false;
        b->next = nx;
        uint8_t *ac = realloc(b->accept, (size_t)c);
        if (!ac) return false;
        b->accept = ac;
        b->cap = c;
    }
    for (int32_t k = 0; k < b->n_classes; k++) b->next[(size_t)b->n * b->n_classes + k] = -1;
    b->accept[b->n] = 0;
    b->n++;
    return true;
}

/* Keep the states reachable from 0 that can reach an accepting state; fill d
 * (taking b's arrays or copying). */
static sw_status dfa_finish(dfa_build *b, const uint8_t cls[256], sw_dfa *d, sw_err *err) {
    memset(d, 0, sizeof *d);
    int32_t n = b->n, k = b->n_classes;
    int32_t *map = malloc((size_t)(n ? n : 1) * sizeof *map);
    uint8_t *live = calloc((size_t)(n ? n : 1), 1);
    /* reverse edges, CSR */
    int32_t *rc = calloc((size_t)n + 1, sizeof *rc);
    int32_t *rv = malloc(((size_t)n * k + 1) * sizeof *rv);
    int32_t *queue = malloc((size_t)(n ? n : 1) * sizeof *queue);
    sw_status st = SW_OK;
    if (!map || !live || !rc || !rv || !queue) {
        st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory building a DFA");
        goto done;
    }
    for (int32_t q = 0; q < n; q++)
        for (int32_t c = 0; c < k; c++) {
            int32_t to = b->next[(size_t)q * k + c];
            if (to >= 0) rc[to + 1]++;
        }
    for (int32_t q = 0; q < n; q++) rc[q + 1] += rc[q];
    {
        int32_t *fill = calloc((size_t)(n ? n : 1), sizeof *fill);
        if (!fill) {
            st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory building a DFA");
            goto done;
        }
        for (int32_t q = 0; q < n; q++)
            for (int32_t c = 0; c < k; c++) {
                int32_t to = b->next[(size_t)q * k + c];
                if (to >= 0) rv[rc[to] + fill[to]++] = q;
            }
        free(fill);
    }
    int32_t qh = 0, qt = 0;
    for (int32_t q = 0; q < n; q++)
        if (b->accept[q]) {
            live[q] = 1;
            queue[qt++] = q;
        }
    while (qh < qt) {
        int32_t q = queue[qh++];
        for (int32_t i = rc[q]; i < rc[q + 1]; i++)
            if (!live[rv[i]]) {
                live[rv[i]] = 1;
                queue[qt++] = rv[i];
            }
    }
    if (n == 0 || !live[0]) goto done; /* the empty language */
    int32_t m = 0;
    for (int32_t q = 0; q < n; q++) map[q] = live[q] ? m++ : -1;
    d->n_states = m;
    d->n_classes = k;
    memcpy(d->cls, cls, 256);
    d->next = malloc((size_t)m * k * sizeof *d->next);
    d->accept = malloc((size_t)m);
    d->has_out = calloc((size_t)m, 1);
    d->dist = malloc((size_t)m * sizeof *d->dist);
    if (!d->next || !d->accept || !d->has_out || !d->dist) {
        sw_dfa_free(d);
        st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory building a DFA");
        goto done;
    }
    for (int32_t q = 0; q < n; q++) {
        if (map[q] < 0) continue;
        int32_t nq = map[q];
        d->accept[nq] = b->accept[q];
        for (int32_t c = 0; c < k; c++) {
            int32_t to = b->next[(size_t)q * k + c];
            int32_t v = to >= 0 ? map[to] : -1;
            d->next[(size_t)nq * k + c] = v;
            if (v >= 0) d->has_out[nq] = 1;
        }
    }
    /* distances to acceptance: BFS backwards over the live states */
    for (int32_t q = 0; q < m; q++) d->dist[q] = -1;
    qh = qt = 0;
    for (int32_t q = 0; q < n; q++)
        if (map[q] >= 0 && b->accept[q]) {
            d->dist[map[q]] = 0;
            queue[qt++] = q;
        }
    while (qh < qt) {
        int32_t q = queue[qh++];
        for (int32_t i = rc[q]; i < rc[q + 1]; i++) {
            int32_t p = rv[i];
            if (map[p] >= 0 && d->dist[map[p]] < 0) {
                d->dist[map[p]] = d->dist[map[q]] + 1;
                queue[qt++] = p;
            }
        }
    }
done:
    free(map);
    free(live);
    free(rc);
    free(rv);
    free(queue);
    return st;
}

/* has_out and dist of every state (d->next and d->accept set). */
static bool dfa_annotate(sw_dfa *d) {
    int32_t n = d->n_states, k = d->n_classes;
    free(d->has_out);
    free(d->dist);
    d->has_out = calloc((size_t)(n ? n : 1), 1);
    d->dist = malloc((size_t)(n ? n : 1) * sizeof *d->dist);
    int32_t *rc = calloc((size_t)n + 2, sizeof *rc), *rv = malloc(((size_t)n * k + 1) * sizeof *rv);
    int32_t *queue = malloc((size_t)(n ? n : 1) * sizeof *queue);
    bool ok = d->has_out && d->dist && rc && rv && queue;
    if (ok) {
        for (int32_t q = 0; q < n; q++)
            for (int32_t c = 0; c < k; c++) {
                int32_t t = d->next[(size_t)q * k + c];
                if (t >= 0) d->has_out[q] = 1, rc[t + 2]++;
            }
        for (int32_t q = 0; q < n; q++) rc[q + 2] += rc[q + 1];
        for (int32_t q = 0; q < n; q++)
            for (int32_t c = 0; c < k; c++) {
                int32_t t = d->next[(size_t)q * k + c];
                if (t >= 0) rv[rc[t + 1]++] = q;
            }
        /* now rc[t] .. rc[t+1] are t's predecessors */
        int32_t qh = 0, qt = 0;
        for (int32_t q = 0; q < n; q++) {
            d->dist[q] = d->accept[q] ? 0 : -1;
            if (d->accept[q]) queue[qt++] = q;
        }
        while (qh < qt) {
            int32_t q = queue[qh++];
            for (int32_t i = rc[q]; i < rc[q + 1]; i++)
                if (d->dist[rv[i]] < 0) {
                    d->dist[rv[i]] = d->dist[q] + 1;
                    queue[qt++] = rv[i];
                }
        }
    }
    free(rc);
    free(rv);
    free(queue);
    return ok;
}

/* Hopcroft's partition refinement: merge the states no input tells apart.
 * A sink state (index n, every refused byte goes there) joins the
 * partition so that "refuses c" splits like any other target; every other
 * state can still accept, so the sink stays alone and is dropped at the end. */
static sw_status dfa_minimize(sw_dfa *d, sw_err *err) {
    int32_t n = d->n_states, k = d->n_classes, N = n + 1;
    if (n <= 1) return SW_OK;
    int32_t *tgt = malloc((size_t)N * k * sizeof *tgt);       /* complete transitions */
    int32_t *poff = calloc((size_t)k * (N + 1), sizeof *poff); /* predecessors per class, CSR */
    int32_t *pred = malloc((size_t)N * k * sizeof *pred);
    int32_t *elems = malloc((size_t)N * sizeof *elems), *loc = malloc((size_t)N * sizeof *loc);
    int32_t *blk = malloc((size_t)N * sizeof *blk), *first = malloc((size_t)N * sizeof *first);
    int32_t *last = malloc((size_t)N * sizeof *last), *mark = calloc((size_t)N, sizeof *mark);
    int32_t *work = malloc((size_t)N * sizeof *work), *touched = malloc((size_t)N * sizeof *touched);
    int32_t *snap = malloc((size_t)N * sizeof *snap);
    uint8_t *in_w = calloc((size_t)N, 1);
    sw_status st = SW_OK;
    if (!tgt || !poff || !pred || !elems || !loc || !blk || !first || !last || !mark || !work ||
        !touched || !snap || !in_w) {
        st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory minimizing a DFA");
        goto done;
    }
    for (int32_t q = 0; q < N; q++)
        for (int32_t c = 0; c < k; c++) {
            int32_t t = q < n ? d->next[(size_t)q * k + c] : n;
            tgt[(size_t)q * k + c] = t < 0 ? n : t;
        }
    for (int32_t q = 0; q < N; q++)
        for (int32_t c = 0; c < k; c++) poff[(size_t)c * (N + 1) + tgt[(size_t)q * k + c] + 1]++;
    for (int32_t c = 0; c < k; c++)
        for (int32_t q = 0; q < N; q++) poff[(size_t)c * (N + 1) + q + 1] += poff[(size_t)c * (N + 1) + q];
    {
        int32_t *fill = calloc((size_t)k * N, sizeof *fill);
        if (!fill) {
            st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory minimizing a DFA");
            goto done;
        }
        for (int32_t q = 0; q < N; q++)
            for (int32_t c = 0; c < k; c++) {
                int32_t t = tgt[(size_t)q * k + c];
                pred[(size_t)c * N + poff[(size_t)c * (N + 1) + t] + fill[(size_t)c * N + t]++] = q;
            }
        free(fill);
    }
    /* initial blocks: accepting, then the rest (with the sink) */
    int32_t nb = 0, e = 0;
    for (int pass = 1; pass >= 0; pass--) {
        int32_t start = e;
        for (int32_t q = 0; q < N; q++)
            if ((q < n && d->accept[q]) == pass) {
                elems[e] = q;
                loc[q] = e++;
                blk[q] = nb;
            }
        if (e > start) {
            first[nb] = start;
            last[nb] = e;
            nb++;
        }
    }
    int32_t nw = 0;
    for (int32_t b = 0; b < nb; b++) work[nw++] = b, in_w[b] = 1;
    while (nw > 0) {
        int32_t a = work[--nw];
        in_w[a] = 0;
        int32_t na = last[a] - first[a];
        memcpy(snap, elems + first[a], (size_t)na * sizeof *snap);
        for (int32_t c = 0; c < k; c++) {
            int32_t nt = 0;
            for (int32_t i = 0; i < na; i++) {
                int32_t q = snap[i];
                const int32_t *ps = pred + (size_t)c * N;
                for (int32_t j = poff[(size_t)c * (N + 1) + q]; j < poff[(size_t)c * (N + 1) + q + 1]; j++) {
                    int32_t p = ps[j], y = blk[p];
                    /* move p into the marked front of its block */
                    int32_t pos = first[y] + mark[y];
                    if (loc[p] < pos) continue; /* already marked */
                    int32_t other = elems[pos];
                    elems[loc[p]] = other;
                    loc[other] = loc[p];
                    elems[pos] = p;
                    loc[p] = pos;
                    if (mark[y]++ == 0) touched[nt++] = y;
                }
            }
            for (int32_t t = 0; t < nt; t++) {
                int32_t y = touched[t], m = mark[y];
                mark[y] = 0;
                if (m == last[y] - first[y]) continue;
                int32_t z = nb++;
                first[z] = first[y];
                last[z] = first[y] + m;
                first[y] += m;
                for (int32_t i = first[z]; i < last[z]; i++) blk[elems[i]] = z;
                if (in_w[y] || last[z] - first[z] <= last[y] - first[y]) work[nw++] = z, in_w[z] = 1;
                else work[nw++] = y, in_w[y] = 1;
            }
        }
    }
    if (nb - 1 == n) goto done; /* already minimal */
    /* renumber: the start's block first, the sink's block dropped */
    int32_t *id = malloc((size_t)nb * sizeof *id);
    int32_t *nx = malloc((size_t)(nb - 1) * k * sizeof *nx);
    uint8_t *acc = malloc((size_t)(nb - 1));
    if (!id || !nx || !acc) {
        free(id), free(nx), free(acc);
        st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory minimizing a DFA");
        goto done;
    }
    for (int32_t b = 0; b < nb; b++) id[b] = -1;
    int32_t m = 0;
    id[blk[0]] = m++;
    for (int32_t q = 0; q < n; q++)
        if (id[blk[q]] < 0) id[blk[q]] = m++;
    for (int32_t b = 0; b < nb; b++) {
        if (b == blk[n]) continue;
        int32_t rep = elems[first[b]], nbk = id[b];
        acc[nbk] = d->accept[rep];
        for (int32_t c = 0; c < k; c++) {
            int32_t t = tgt[(size_t)rep * k + c];
            nx[(size_t)nbk * k + c] = t == n ? -1 : id[blk[t]];
        }
    }
    free(id);
    free(d->next);
    free(d->accept);
    d->next = nx;
    d->accept = acc;
    d->n_states = m;
    if (!dfa_annotate(d)) st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory minimizing a DFA");
done:
    free(tgt), free(poff), free(pred), free(elems), free(loc), free(blk), free(first), free(last);
    free(mark), free(work), free(touched), free(snap), free(in_w);
    return st;
}

sw_status sw_dfa_build(const sw_rx *x, int32_t cap, sw_dfa *out, const char *what, sw_err *err) {
    memset(out, 0, sizeof *out);
    nfa f = {0};
    f.cap = SW_GRAMMAR_MAX_NFA_STATES;
    int32_t s0, accept;
    nfa_build(&f, x, &s0, &accept);
    sw_status st = SW_OK;
    closure_ctx cc = {0};
    iset_table sets = {0};
    dfa_build b = {0};
    int32_t *buf = NULL, *bucket_n = NULL, **bucket = NULL, *bucket_mem = NULL;
    if (f.over) {
        st = sw_err_set(err, SW_E_RANGE,
                        "%s is too large: its automaton needs over %d states (counted repetitions "
                        "such as maxLength or {n,m} copy their body)",
                        what, SW_GRAMMAR_MAX_NFA_STATES);
        goto done;
    }
    if (f.nomem) goto nomem;

    /* byte classes: the boundaries of every edge's range */
    uint8_t cut[257] = {0};
    cut[0] = 1;
    for (int32_t i = 0; i < f.n_e; i++)
        if (!f.e[i].eps) {
            cut[f.e[i].lo] = 1;
            cut[f.e[i].hi + 1] = 1;
        }
    uint8_t cls[256];
    int32_t k = -1;
    for (int c = 0; c < 256; c++) {
        if (cut[c]) ++k;
        cls[c] = (uint8_t)k;
    }
    b.n_classes = k + 1;

    cc.stamp = calloc((size_t)f.n_states, sizeof *cc.stamp);
    cc.stack = malloc((size_t)f.n_states * sizeof *cc.stack);
    int32_t buf_cap = f.n_states;
    buf = malloc((size_t)buf_cap * sizeof *buf);
    bucket_n = calloc((size_t)b.n_classes, sizeof *bucket_n);
    bucket = calloc((size_t)b.n_classes, sizeof *bucket);
    if (!cc.stamp || !cc.stack || !buf || !bucket_n || !bucket) goto nomem;

    buf[0] = s0;
    int32_t n0 = eps_closure(&f, &cc, buf, 1);
    bool added;
    if (iset_intern(&sets, buf, n0, &added) < 0 || !dfa_build_add(&b)) goto nomem;
    /* per-class target lists, reused for each DFA state */
    size_t bucket_cap = 0;
    for (int32_t d = 0; d < sets.n; d++) {
        if (sets.n > cap) {
            st = sw_err_set(err, SW_E_RANGE, "%s is too complex: its DFA needs over %d states",
                            what, cap);
            goto done;
        }
        const int32_t *set = sets.pool + sets.off[d];
        int32_t len = sets.len[d];
        /* count targets per class, then fill */
        memset(bucket_n, 0, (size_t)b.n_classes * sizeof *bucket_n);
        size_t total = 0;
        for (int32_t i = 0; i < len; i++) {
            if (set[i] == accept) b.accept[d] = 1;
            for (int32_t e = f.first[set[i]]; e >= 0; e = f.e[e].next)
                if (!f.e[e].eps)
                    for (int32_t c = cls[f.e[e].lo]; c <= cls[f.e[e].hi]; c++) {
                        bucket_n[c]++;
                        total++;
                    }
        }
        if (total > bucket_cap) {
            free(bucket_mem);
            bucket_cap = total * 2;
            bucket_mem = malloc(bucket_cap * sizeof *bucket_mem);
            if (!bucket_mem) goto nomem;
        }
        size_t off = 0;
        for (int32_t c = 0; c < b.n_classes; c++) {
            bucket[c] = bucket_mem + off;
            off += (size_t)bucket_n[c];
            bucket_n[c] = 0;
        }
        for (int32_t i = 0; i < len; i++)
            for (int32_t e = f.first[set[i]]; e >= 0; e = f.e[e].next)
                if (!f.e[e].eps)
                    for (int32_t c = cls[f.e[e].lo]; c <= cls[f.e[e].hi]; c++)
                        bucket[c][bucket_n[c]++] = f.e[e].to;
        for (int32_t c = 0; c < b.n_classes; c++) {
            if (bucket_n[c] == 0) continue;
            if (bucket_n[c] > buf_cap) {
                /* a bucket may list a state more than once */
                int32_t *nb = realloc(buf, (size_t)bucket_n[c] * sizeof *nb);
                if (!nb) goto nomem;
                buf = nb;
                buf_cap = bucket_n[c];
            }
            memcpy(buf, bucket[c], (size_t)bucket_n[c] * sizeof *buf);
            /* a state may appear twice in a bucket: eps_closure dedups */
            int32_t m = eps_closure(&f, &cc, buf, bucket_n[c]);
            int32_t id = iset_intern(&sets, buf, m, &added);
            if (id < 0) goto nomem;
            if (added && !dfa_build_add(&b)) goto nomem;
            b.next[(size_t)d * b.n_classes + c] = id;
        }
    }
    st = dfa_finish(&b, cls, out, err);
    if (st == SW_OK) st = dfa_minimize(out, err);
    goto done;
nomem:
    st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory building the automaton of %s", what);
done:
    free(f.first);
    free(f.e);
    free(cc.stamp);
    free(cc.stack);
    free(buf);
    free(bucket_n);
    free(bucket);
    free(bucket_mem);
    iset_free(&sets);
    free(b.next);
    free(b.accept);
    return st;
}

/* The product of a and b: L(a) ∩ L(b), or with minus L(a) \ L(b) (then a
 * state of b may be -1: b has refused, and a alone decides). */
static sw_status dfa_product(const sw_dfa *a, const sw_dfa *b, bool minus, int32_t cap, sw_dfa *out,
                             const char *what, sw_err *err) {
    memset(out, 0, sizeof *out);
    if (a->n_states == 0 || (b->n_states == 0 && !minus)) return SW_OK;
    /* classes of the product: distinct (class in a, class in b) pairs */
    uint8_t cls[256];
    sw_dfa empty_b;
    if (b->n_states == 0) { /* minus nothing: b's classes are one */
        memset(&empty_b, 0, sizeof empty_b);
        empty_b.n_classes = 1;
        b = &empty_b;
    }
    int32_t *pid = malloc((size_t)a->n_classes * (size_t)b->n_classes * sizeof *pid);
    if (!pid) return sw_err_set(err, SW_E_NOMEM, "grammar: out of memory intersecting automata");
    for (int32_t i = 0; i < a->n_classes * b->n_classes; i++) pid[i] = -1;
    int32_t k = 0;
    uint8_t ca[256], cb[256];
    for (int c = 0; c < 256; c++) {
        int32_t p = a->cls[c] * b->n_classes + b->cls[c];
        if (pid[p] < 0) {
            ca[k] = a->cls[c];
            cb[k] = b->cls[c];
            pid[p] = k++;
        }
        cls[c] = (uint8_t)pid[p];
    }
    free(pid);
    dfa_build d = {0};
    d.n_classes = k;
    iset_table pairs = {0};
    sw_status st = SW_OK;
    bool added;
    int32_t p0[2] = {0, b->n_states ? 0 : -1};
    if (iset_intern(&pairs, p0, 2, &added) < 0 || !dfa_build_add(&d)) goto nomem;
    for (int32_t s = 0; s < pairs.n; s++) {
        if (pairs.n > cap) {
            st = sw_err_set(err, SW_E_RANGE, "%s is too complex: its DFA needs over %d states",
                            what, cap);
            goto done;
        }
        int32_t qa = pairs.pool[pairs.off[s]], qb = pairs.pool[pairs.off[s] + 1];
        bool b_acc = qb >= 0 && b->accept[qb];
        d.accept[s] = a->accept[qa] && (minus ? !b_acc : b_acc);
        for (int32_t c = 0; c < k; c++) {
            int32_t ta = a->next[(size_t)qa * a->n_classes + ca[c]];
            int32_t tb = qb >= 0 ? b->next[(size_t)qb * b->n_classes + cb[c]] : -1;
            if (ta < 0 || (tb < 0 && !minus)) continue;
            int32_t pr[2] = {ta, tb};
            int32_t id = iset_intern(&pairs, pr, 2, &added);
            if (id < 0) goto nomem;
            if (added && !dfa_build_add(&d)) goto nomem;
            d.next[(size_t)s * k + c] = id;
        }
    }
    st = dfa_finish(&d, cls, out, err);
    if (st == SW_OK) st = dfa_minimize(out, err);
    goto done;
nomem:
    st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory intersecting automata for %s", what);
done:
    iset_free(&pairs);
    free(d.next);
    free(d.accept);
    return st;
}

sw_status sw_dfa_intersect(const sw_dfa *a, const sw_dfa *b, int32_t cap, sw_dfa *out,
                           const char *what, sw_err *err) {
    return dfa_product(a, b, false, cap, out, what, err);
}

sw_status sw_dfa_subtract(const sw_dfa *a, const sw_dfa *b, int32_t cap, sw_dfa *out,
                          const char *what, sw_err *err) {
    return dfa_product(a, b, true, cap, out, what, err);
}

void sw_dfa_free(sw_dfa *d) {
    if (!d) return;
    free(d->next);
    free(d->accept);
    free(d->has_out);
    free(d->dist);
    memset(d, 0, sizeof *d);
}

bool sw_dfa_matches(const sw_dfa *d, const void *s, size_t n) {
    if (d->n_states == 0) return false;
    const uint8_t *p = s;
    int32_t q = 0;
    for (size_t i = 0; i < n; i++) {
        q = sw_dfa_step(d, q, p[i]);
        if (q < 0) return false;
    }
    return d->accept[q];
}
