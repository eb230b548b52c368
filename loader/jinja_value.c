/* jinja_value.c — the value model of the Jinja interpreter: the render arena,
 * strings, sequences, dicts, and Python's semantics for them: truthiness, ==
 * and ordering, len(), iteration, str() and repr() (ints, floats as Python
 * prints them, quoted strings, lists, tuples, dicts, views, namespaces). */
#include "jinja_stb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

/* ---- arena ------------------------------------------------------------------- */

struct jchunk {
    jchunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char mem[];
};

#define CHUNK 65536

bool ja_charge(jarena *a, size_t n) {
    a->used += n;
    if (a->limit && a->used > a->limit) a->over = true;
    return !a->over;
}

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jchunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK / 4 ? n : CHUNK;
        jchunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->cap = cap;
        nc->used = 0;
        if (cap == n && c) { /* a big block: keep the current chunk for small ones */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
        ja_charge(a, sizeof *nc + cap);
    }
    void *p = c->mem + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n) {
    char *p = ja_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ja_track_array(jarena *a, void *arr) {
    if (arr) arrput(a->arrays, arr);
}

void ja_free_all(jarena *a) {
    for (size_t i = 0; i < (size_t)arrlen(a->dicts); i++) {
        jdict *d = a->dicts[i];
        arrfree(d->e);
        arrfree(d->next);
        hmfree(d->idx);
    }
    arrfree(a->dicts);
    for (size_t i = 0; i < (size_t)arrlen(a->arrays); i++) {
        void *p = a->arrays[i];
        arrfree(p);
    }
    arrfree(a->arrays);
    jchunk *c = a->head;
    while (c) {
        jchunk *n = c->next;
        free(c);
        c = n;
    }
    memset(a, 0, sizeof *a);
}

/* ---- strings and containers ------------------------------------------------------ */

jstr *jstr_new(jarena *a, const char *s, size_t n) {
    jstr *r = ja_alloc(a, sizeof *r + n + 1);
    if (!r) return NULL;
    r->len = n;
    r->s = (char *)(r + 1);
    if (n) memcpy(r->s, s, n);
    r->s[n] = '\0';
    r->ncp = ju_count(r->s, n);
    return r;
}

jv jv_from_jstr(jstr *s, bool safe) {
    jv v = {0};
    v.t = JV_STR;
    v.safe = safe;
    v.s = s;
    return v;
}

bool jx_room(jctx *c, size_t n) {
    if (c->a->limit && (n > c->a->limit || c->a->used > c->a->limit - n))
        return jx_fail(c, SW_E_RANGE, "template render exceeds its memory bound (%zu bytes)",
                       c->a->limit);
    return true;
}

bool jv_str(jctx *c, const char *s, size_t n, jv *out) {
    if (!jx_room(c, n)) return false;
    jstr *r = jstr_new(c->a, s, n);
    if (!r) return jx_fail(c, SW_E_NOMEM, "out of memory");
    *out = jv_from_jstr(r, false);
    return true;
}

bool jv_strz(jctx *c, const char *s, jv *out) { return jv_str(c, s, strlen(s), out); }

jv jv_undef_name(jctx *c, const char *name, size_t n) {
    jv v = jv_undef();
    jundef *u = ja_alloc(c->a, sizeof *u);
    if (!u) return v;
    jstr *s = jstr_new(c->a, name, n);
    if (s) u->name = jv_from_jstr(s, false);
    v.u = u;
    return v;
}

static const char *objtype_of(const jv *obj) {
    switch (obj->t) {
    case JV_NONE: return "None";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return obj->safe ? "markupsafe.Markup object" : "str object";
    case JV_DICT: return "dict object";
    case JV_NS: return "jinja2.utils.Namespace object";
    case JV_LOOP: return "jinja2.runtime.LoopContext object";
    case JV_MACRO: return "jinja2.runtime.Macro object";
    case JV_FUNC: return "builtin_function_or_method object";
    case JV_SEQ:
        switch (obj->q->kind) {
        case SQ_TUPLE: return "tuple object";
        case SQ_ITEMS: return "dict_items object";
        case SQ_KEYS: return "dict_keys object";
        case SQ_VALUES: return "dict_values object";
        case SQ_RANGE: return "range object";
        case SQ_ITER: return "generator object";
        default: return "list object";
        }
    default: return "Undefined";
    }
}

jv jv_undef_attr(jctx *c, const jv *obj, const jv *name, jundef_exc exc, const char *hint) {
    jv v = jv_undef();
    jundef *u = ja_alloc(c->a, sizeof *u);
    if (!u) return v;
    u->exc = (uint8_t)exc;
    u->hint = hint;
    u->name = *name;
    u->objtype = objtype_of(obj);
    v.u = u;
    return v;
}

jv jv_undef_hint(jctx *c, const char *hint) {
    jv v = jv_undef();
    jundef *u = ja_alloc(c->a, sizeof *u);
    if (!u) return v;
    u->hint = hint;
    v.u = u;
    return v;
}

jseq *jseq_new(jctx *c, uint8_t kind, size_t n) {
    if (!ja_charge(c->a, 0)) {
        jx_fail(c, SW_E_RANGE, "template render exceeds its memory bound");
        return NULL;
    }
    if (n > (SIZE_MAX / sizeof(jv)) / 2) {
        jx_fail(c, SW_E_RANGE, "sequence of %zu items is too large", n);
        return NULL;
    }
    jseq *q = ja_alloc(c->a, sizeof *q + n * sizeof(jv));
    if (!q) {
        jx_fail(c, SW_E_NOMEM, "out of memory");
        return NULL;
    }
    q->kind = kind;
    q->n = n;
    q->v = (jv *)(q + 1);
    return q;
}

bool jv_seq(jctx *c, uint8_t kind, const jv *items, size_t n, jv *out) {
    jseq *q = jseq_new(c, kind, n);
    if (!q) return false;
    if (n) memcpy(q->v, items, n * sizeof *items);
    jv v = {0};
    v.t = JV_SEQ;
    v.q = q;
    *out = v;
    return true;
}

/* ---- dicts ---------------------------------------------------------------------------- */

#define DICT_INDEX_AT 8

jdict *jdict_new_a(jarena *a) {
    jdict *d = ja_alloc(a, sizeof *d);
    if (!d) return NULL;
    arrput(a->dicts, d);
    return d;
}

jdict *jdict_new(jctx *c) {
    jdict *d = jdict_new_a(c->a);
    if (!d) jx_fail(c, SW_E_NOMEM, "out of memory");
    return d;
}

size_t jdict_len(const jdict *d) { return (size_t)arrlen(d->e); }

static uint64_t bytes_hash(const char *s, size_t n);

/* Python's hash agrees for 1, 1.0 and True; ours must too. Strings by content. */
static uint64_t key_hash(const jv *k) {
    uint64_t h = 1469598103934665603ULL;
    switch (k->t) {
    case JV_STR: return bytes_hash(k->s->s, k->s->len);
    case JV_BOOL: return (uint64_t)k->b * 0x9E3779B97F4A7C15ULL + 7;
    case JV_INT: return (uint64_t)k->i * 0x9E3779B97F4A7C15ULL + 7;
    case JV_FLOAT:
        if (k->f == floor(k->f) && fabs(k->f) < 9.2e18)
            return (uint64_t)(int64_t)k->f * 0x9E3779B97F4A7C15ULL + 7;
        {
            uint64_t bits;
            memcpy(&bits, &k->f, sizeof bits);
            return bits * 0x9E3779B97F4A7C15ULL + 13;
        }
    case JV_NONE: return 0x51ED270B27D0ULL;
    case JV_SEQ: /* tuples */
        for (size_t i = 0; i < k->q->n; i++) h = (h ^ key_hash(&k->q->v[i])) * 1099511628211ULL;
        return h;
    default: return (uint64_t)k->t;
    }
}

static bool key_eq(const jv *a, const jv *b) {
    if (a->t == JV_STR && b->t == JV_STR)
        return a->s->len == b->s->len && memcmp(a->s->s, b->s->s, a->s->len) == 0;
    bool eq = false;
    jv_eq(NULL, a, b, &eq);
    return eq;
}

static void dict_index(jarena *a, jdict *d) {
    (void)a;
    size_t n = (size_t)arrlen(d->e);
    while (d->n_idx < n) {
        size_t i = d->n_idx++;
        uint64_t h = key_hash(&d->e[i].k);
        ptrdiff_t at = hmgeti(d->idx, h);
        if (at >= 0) {
            d->next[i] = d->idx[at].value;
            d->idx[at].value = (int32_t)i;
        } else {
            d->next[i] = -1;
            hmput(d->idx, h, (int32_t)i);
        }
    }
}

static ptrdiff_t dict_find(const jdict *d, const jv *key) {
    size_t n = (size_t)arrlen(d->e);
    if (d->n_idx == 0 || d->n_idx < n) {
        /* linear below the threshold (and for keys appended since the index) */
        for (size_t i = d->n_idx; i < n; i++)
            if (key_eq(&d->e[i].k, key)) return (ptrdiff_t)i;
        if (d->n_idx == 0) return -1;
    }
    uint64_t h = key_hash(key);
    ptrdiff_t at = hmgeti(((jdict *)d)->idx, h);
    if (at < 0) return -1;
    for (int32_t i = d->idx[at].value; i >= 0; i = d->next[i])
        if (key_eq(&d->e[i].k, key)) return i;
    return -1;
}

jv *jdict_get(const jdict *d, const jv *key) {
    if (!d) return NULL;
    ptrdiff_t i = dict_find(d, key);
    return i >= 0 ? &d->e[i].v : NULL;
}

static uint64_t bytes_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

jv *jdict_get_str(const jdict *d, const char *k, size_t n) {
    if (!d) return NULL;
    size_t cnt = (size_t)arrlen(d->e);
    for (size_t i = d->n_idx; i < cnt; i++) {
        const jv *kk = &d->e[i].k;
        if (kk->t == JV_STR && kk->s->len == n && memcmp(kk->s->s, k, n) == 0) return &d->e[i].v;
    }
    if (d->n_idx == 0) return NULL;
    ptrdiff_t at = hmgeti(((jdict *)d)->idx, bytes_hash(k, n));
    if (at < 0) return NULL;
    for (int32_t i = d->idx[at].value; i >= 0; i = d->next[i]) {
        const jv *kk = &d->e[i].k;
        if (kk->t == JV_STR && kk->s->len == n && memcmp(kk->s->s, k, n) == 0) return &d->e[i].v;
    }
    return NULL;
}

bool jdict_set_a(jarena *a, jdict *d, const jv *key, const jv *val) {
    ptrdiff_t i = dict_find(d, key);
    if (i >= 0) {
        d->e[i].v = *val;
        return true;
    }
    jdent e = {*key, *val};
    arrput(d->e, e);
    arrput(d->next, -1);
    ja_charge(a, sizeof e + sizeof(int32_t) + sizeof(jdidx));
    if ((size_t)arrlen(d->e) > DICT_INDEX_AT) dict_index(a, d);
    return true;
}

bool jdict_set(jctx *c, jdict *d, const jv *key, const jv *val) {
    if (!jv_hashable(key)) {
        char b[64];
        snprintf(b, sizeof b, "%s", jv_type_name(key));
        return jx_fail(c, SW_E_INVALID_ARG, "unhashable type: '%s'", b);
    }
    jdict_set_a(c->a, d, key, val);
    if (c->a->over) return jx_fail(c, SW_E_RANGE, "template render exceeds its memory bound");
    return true;
}

/* ---- Python semantics ------------------------------------------------------------------- */

const char *jv_type_name(const jv *v) {
    switch (v->t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return v->safe ? "Markup" : "str";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_LOOP: return "LoopContext";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "builtin_function_or_method";
    case JV_SEQ:
        switch (v->q->kind) {
        case SQ_TUPLE: return "tuple";
        case SQ_ITEMS: return "dict_items";
        case SQ_KEYS: return "dict_keys";
        case SQ_VALUES: return "dict_values";
        case SQ_RANGE: return "range";
        case SQ_ITER: return "generator";
        default: return "list";
        }
    }
    return "object";
}

bool jv_truthy(const jv *v) {
    switch (v->t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v->b;
    case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0.0;
    case JV_STR: return v->s->len > 0;
    case JV_SEQ: return v->q->kind == SQ_ITER ? true : v->q->n > 0;
    case JV_DICT: return jdict_len(v->d) > 0;
    default: return true;
    }
}

bool jv_hashable(const jv *v) {
    switch (v->t) {
    case JV_DICT:
    case JV_NS: return v->t == JV_NS;
    case JV_SEQ:
        if (v->q->kind == SQ_LIST || v->q->kind == SQ_ITEMS || v->q->kind == SQ_KEYS) return false;
        if (v->q->kind == SQ_TUPLE)
            for (size_t i = 0; i < v->q->n; i++)
                if (!jv_hashable(&v->q->v[i])) return false;
        return true;
    default: return true;
    }
}

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static int64_t num_i(const jv *v) { return v->t == JV_INT ? v->i : (int64_t)v->b; }

/* Compare an int and a float exactly, as Python does. */
static int cmp_int_float(int64_t i, double f) {
    if (isnan(f)) return 2; /* unordered */
    if (f >= 9223372036854775808.0) return -1;
    if (f < -9223372036854775808.0) return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi) return -1;
    if (i > fi) return 1;
    return fl < f ? -1 : 0;
}

static int num_cmp(const jv *a, const jv *b) {
    if (a->t != JV_FLOAT && b->t != JV_FLOAT) {
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y;
    }
    if (a->t == JV_FLOAT && b->t == JV_FLOAT) {
        if (isnan(a->f) || isnan(b->f)) return 2;
        return a->f < b->f ? -1 : a->f > b->f;
    }
    if (a->t == JV_FLOAT) {
        int r = cmp_int_float(num_i(b), a->f);
        return r == 2 ? 2 : -r;
    }
    return cmp_int_float(num_i(a), b->f);
}

static bool seq_is_listlike(const jseq *q) { return q->kind == SQ_LIST || q->kind == SQ_TUPLE; }

bool jv_eq(jctx *c, const jv *a, const jv *b, bool *eq) {
    *eq = false;
    if (c && !jx_step(c, 1)) return false;
    if (is_num(a) && is_num(b)) {
        *eq = num_cmp(a, b) == 0;
        return true;
    }
    if (a->t != b->t) return true;
    switch (a->t) {
    case JV_UNDEF:
    case JV_NONE: *eq = true; return true;
    case JV_STR:
        *eq = a->s->len == b->s->len && memcmp(a->s->s, b->s->s, a->s->len) == 0;
        return true;
    case JV_SEQ: {
        const jseq *x = a->q, *y = b->q;
        if (x == y && x->kind != SQ_ITER) {
            *eq = true;
            return true;
        }
        bool same_kind = x->kind == y->kind ||
                         (x->kind == SQ_KEYS && y->kind == SQ_KEYS) ||
                         (x->kind == SQ_ITEMS && y->kind == SQ_ITEMS);
        if (!same_kind || x->kind == SQ_ITER || x->kind == SQ_VALUES) {
            /* dict_values and iterators compare by identity */
            *eq = x == y;
            return true;
        }
        if (x->n != y->n) return true;
        if (x->kind == SQ_KEYS || x->kind == SQ_ITEMS) {
            /* set-like: same members regardless of order */
            for (size_t i = 0; i < x->n; i++) {
                bool found = false;
                for (size_t j = 0; j < y->n && !found; j++)
                    if (!jv_eq(c, &x->v[i], &y->v[j], &found)) return false;
                if (!found) return true;
            }
            *eq = true;
            return true;
        }
        for (size_t i = 0; i < x->n; i++) {
            bool e;
            if (!jv_eq(c, &x->v[i], &y->v[i], &e)) return false;
            if (!e) return true;
        }
        *eq = true;
        return true;
    }
    case JV_DICT: {
        if (jdict_len(a->d) != jdict_len(b->d)) return true;
        for (size_t i = 0; i < jdict_len(a->d); i++) {
            jv *o = jdict_get(b->d, &a->d->e[i].k);
            if (!o) return true;
            bool e;
            if (!jv_eq(c, &a->d->e[i].v, o, &e)) return false;
            if (!e) return true;
        }
        *eq = true;
        return true;
    }
    case JV_NS: *eq = a->d == b->d; return true;
    case JV_LOOP: *eq = a->lp == b->lp; return true;
    case JV_MACRO: *eq = a->m == b->m; return true;
    case JV_FUNC: *eq = a->fn == b->fn; return true;
    default: return true;
    }
}

bool jv_cmp(jctx *c, const jv *a, const jv *b, int *cmp, const char *opname) {
    if (!jx_step(c, 1)) return false;
    if (a->t == JV_UNDEF) return jx_undef_fail(c, a);
    if (b->t == JV_UNDEF) return jx_undef_fail(c, b);
    if (is_num(a) && is_num(b)) {
        *cmp = num_cmp(a, b);
        return true;
    }
    if (a->t == JV_STR && b->t == JV_STR) {
        size_t n = a->s->len < b->s->len ? a->s->len : b->s->len;
        int r = memcmp(a->s->s, b->s->s, n);
        *cmp = r ? (r < 0 ? -1 : 1) : (a->s->len < b->s->len ? -1 : a->s->len > b->s->len);
        return true;
    }
    if (a->t == JV_SEQ && b->t == JV_SEQ && a->q->kind == b->q->kind && seq_is_listlike(a->q)) {
        size_t n = a->q->n < b->q->n ? a->q->n : b->q->n;
        for (size_t i = 0; i < n; i++) {
            bool e;
            if (!jv_eq(c, &a->q->v[i], &b->q->v[i], &e)) return false;
            if (!e) return jv_cmp(c, &a->q->v[i], &b->q->v[i], cmp, opname);
        }
        *cmp = a->q->n < b->q->n ? -1 : a->q->n > b->q->n;
        return true;
    }
    return jx_fail(c, SW_E_INVALID_ARG, "'%s' not supported between instances of '%s' and '%s'",
                   opname, jv_type_name(a), jv_type_name(b));
}

bool jv_len(jctx *c, const jv *v, size_t *n) {
    switch (v->t) {
    case JV_UNDEF: *n = 0; return true;
    case JV_STR: *n = v->s->ncp; return true;
    case JV_DICT: *n = jdict_len(v->d); return true;
    case JV_SEQ:
        if (v->q->kind != SQ_ITER) {
            *n = v->q->n;
            return true;
        }
        break;
    case JV_LOOP: *n = (size_t)-1; break; /* handled by the evaluator (loop.length) */
    default: break;
    }
    return jx_fail(c, SW_E_INVALID_ARG, "object of type '%s' has no len()", jv_type_name(v));
}

bool jv_iter(jctx *c, const jv *v, const jv **items, size_t *n, jv **scratch) {
    *items = NULL;
    *n = 0;
    *scratch = NULL;
    switch (v->t) {
    case JV_UNDEF: return true;
    case JV_SEQ:
        if (v->q->kind == SQ_ITER) {
            *items = v->q->v + v->q->pos;
            *n = v->q->n - v->q->pos;
            v->q->pos = v->q->n;
        } else {
            *items = v->q->v;
            *n = v->q->n;
        }
        return jx_step(c, *n / 8 + 1);
    case JV_DICT: {
        size_t k = jdict_len(v->d);
        jv *keys = ja_alloc(c->a, (k ? k : 1) * sizeof *keys);
        if (!keys) return jx_fail(c, SW_E_NOMEM, "out of memory");
        for (size_t i = 0; i < k; i++) keys[i] = v->d->e[i].k;
        *items = keys;
        *n = k;
        return jx_step(c, k / 8 + 1);
    }
    case JV_STR: {
        const jstr *s = v->s;
        jv *chars = ja_alloc(c->a, (s->ncp ? s->ncp : 1) * sizeof *chars);
        if (!chars) return jx_fail(c, SW_E_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < s->len;) {
            size_t len;
            ju_decode(s->s, s->len, i, &len);
            jstr *ch = jstr_new(c->a, s->s + i, len);
            if (!ch) return jx_fail(c, SW_E_NOMEM, "out of memory");
            chars[k++] = jv_from_jstr(ch, v->safe);
            i += len;
        }
        *items = chars;
        *n = k;
        return jx_step(c, k / 4 + 1);
    }
    default:
        return jx_fail(c, SW_E_INVALID_ARG, "'%s' object is not iterable", jv_type_name(v));
    }
}

/* ---- output buffers ------------------------------------------------------------------------ */

bool jb_put(jctx *c, jbuf *b, const char *s, size_t n) {
    if (n == 0) return true;
    size_t maxo = c->lim->max_output;
    if (b->len + n > maxo)
        return jx_fail(c, SW_E_RANGE, "template output exceeds %zu bytes", maxo);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return jx_fail(c, SW_E_NOMEM, "out of memory");
        if (!ja_charge(c->a, cap - b->cap))
            return jx_fail(c, SW_E_RANGE, "template render exceeds its memory bound");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

bool jb_putc(jctx *c, jbuf *b, char ch) { return jb_put(c, b, &ch, 1); }

bool jb_printf(jctx *c, jbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return jx_fail(c, SW_E_INTERNAL, "format error");
    if ((size_t)k >= sizeof tmp) k = (int)sizeof tmp - 1;
    return jb_put(c, b, tmp, (size_t)k);
}

bool jb_take(jctx *c, jbuf *b, jv *out) {
    bool ok = jv_str(c, b->p ? b->p : "", b->len, out);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return ok;
}

/* ---- str() and repr() ------------------------------------------------------------------------ */

void jfloat_repr(double f, char *buf, size_t cap) {
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        snprintf(buf, cap, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    /* shortest digits that round-trip */
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    bool neg = e[0] == '-';
    const char *p = e + neg;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp10 = atoi(p + 1);
    int decpt = exp10 + 1;
    char out[64];
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -decpt; i++) out[k++] = '0';
            for (int i = 0; i < nd; i++) out[k++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++) out[k++] = digits[i];
            for (int i = nd; i < decpt; i++) out[k++] = '0';
            out[k++] = '.';
            out[k++] = '0';
        } else {
            for (int i = 0; i < nd; i++) {
                if (i == decpt) out[k++] = '.';
                out[k++] = digits[i];
            }
        }
        out[k] = '\0';
    } else {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (int i = 1; i < nd; i++) out[k++] = digits[i];
        }
        out[k] = '\0';
        snprintf(out + k, sizeof out - k, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(buf, cap, "%s", out);
}

/* Python's repr() of a str: quotes chosen as Python does, escapes of
 * backslash, the quote, \n \r \t, and non-printable code points. */
static bool repr_str(jctx *c, jbuf *b, const jstr *s, bool safe) {
    if (safe && !jb_puts(c, b, "Markup(")) return false;
    bool has_sq = memchr(s->s, '\'', s->len) != NULL, has_dq = memchr(s->s, '"', s->len) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    if (!jb_putc(c, b, q)) return false;
    size_t start = 0;
    for (size_t i = 0; i < s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s->s, s->len, i, &len);
        char esc[16];
        const char *e = NULL;
        if (cp == '\\') e = "\\\\";
        else if (cp == (uint32_t)q) e = q == '\'' ? "\\'" : "\\\"";
        else if (cp == '\n') e = "\\n";
        else if (cp == '\r') e = "\\r";
        else if (cp == '\t') e = "\\t";
        else if (!ju_isprintable(cp) || (len == 1 && cp >= 0x80)) {
            if (cp < 0x100) snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
            else if (cp < 0x10000) snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            else snprintf(esc, sizeof esc, "\\U%08x", (unsigned)cp);
            e = esc;
        }
        if (e) {
            if (!jb_put(c, b, s->s + start, i - start) || !jb_puts(c, b, e)) return false;
            start = i + len;
        }
        i += len;
    }
    if (!jb_put(c, b, s->s + start, s->len - start) || !jb_putc(c, b, q)) return false;
    return !safe || jb_putc(c, b, ')');
}

static bool repr_items(jctx *c, jbuf *b, const jv *v, size_t n, int depth) {
    for (size_t i = 0; i < n; i++) {
        if (i && !jb_put(c, b, ", ", 2)) return false;
        if (!jv_repr_to(c, b, &v[i], depth + 1)) return false;
    }
    return true;
}

static bool repr_dict(jctx *c, jbuf *b, const jdict *d, int depth) {
    if (!jb_putc(c, b, '{')) return false;
    for (size_t i = 0; i < jdict_len(d); i++) {
        if (i && !jb_put(c, b, ", ", 2)) return false;
        if (!jv_repr_to(c, b, &d->e[i].k, depth + 1) || !jb_put(c, b, ": ", 2) ||
            !jv_repr_to(c, b, &d->e[i].v, depth + 1))
            return false;
    }
    return jb_putc(c, b, '}');
}

bool jv_repr_to(jctx *c, jbuf *b, const jv *v, int depth) {
    if (depth > 500) return jx_fail(c, SW_E_RANGE, "maximum recursion depth exceeded in repr");
    if (!jx_step(c, 1)) return false;
    switch (v->t) {
    case JV_UNDEF: return jb_puts(c, b, "Undefined");
    case JV_STR: return repr_str(c, b, v->s, v->safe);
    case JV_DICT: return repr_dict(c, b, v->d, depth);
    case JV_NS:
        return jb_puts(c, b, "<Namespace ") && repr_dict(c, b, v->d, depth) && jb_putc(c, b, '>');
    case JV_SEQ: {
        const jseq *q = v->q;
        switch (q->kind) {
        case SQ_LIST:
            return jb_putc(c, b, '[') && repr_items(c, b, q->v, q->n, depth) && jb_putc(c, b, ']');
        case SQ_TUPLE:
            return jb_putc(c, b, '(') && repr_items(c, b, q->v, q->n, depth) &&
                   (q->n != 1 || jb_putc(c, b, ',')) && jb_putc(c, b, ')');
        case SQ_ITEMS:
        case SQ_KEYS:
        case SQ_VALUES: {
            const char *nm = q->kind == SQ_ITEMS ? "dict_items([" : q->kind == SQ_KEYS ? "dict_keys(["
                                                                                    : "dict_values([";
            return jb_puts(c, b, nm) && repr_items(c, b, q->v, q->n, depth) && jb_puts(c, b, "])");
        }
        case SQ_RANGE:
            if (q->r_step == 1) return jb_printf(c, b, "range(%lld, %lld)", (long long)q->r_start, (long long)q->r_stop);
            return jb_printf(c, b, "range(%lld, %lld, %lld)", (long long)q->r_start,
                             (long long)q->r_stop, (long long)q->r_step);
        default: return jb_puts(c, b, "<generator object>"); /* Python shows an address */
        }
    }
    default: return jv_str_to(c, b, v);
    }
}

bool jv_str_to(jctx *c, jbuf *b, const jv *v) {
    switch (v->t) {
    case JV_UNDEF: return true;
    case JV_NONE: return jb_put(c, b, "None", 4);
    case JV_BOOL: return v->b ? jb_put(c, b, "True", 4) : jb_put(c, b, "False", 5);
    case JV_INT: return jb_printf(c, b, "%lld", (long long)v->i);
    case JV_FLOAT: {
        char t[40];
        jfloat_repr(v->f, t, sizeof t);
        return jb_puts(c, b, t);
    }
    case JV_STR: return jb_put(c, b, v->s->s, v->s->len);
    case JV_LOOP: return jb_printf(c, b, "<LoopContext %zu/%zu>", v->lp->i + 1, v->lp->n);
    case JV_MACRO: return jb_printf(c, b, "<Macro '%.*s'>", (int)v->m->name.n, v->m->name.s);
    case JV_FUNC:
        return jb_printf(c, b, "<built-in method %.*s>", (int)v->fn->name.n, v->fn->name.s);
    default: return jv_repr_to(c, b, v, 0);
    }
}

bool jv_to_str(jctx *c, const jv *v, jv *out) {
    if (v->t == JV_STR) {
        *out = *v;
        return true;
    }
    jbuf b = {0};
    if (!jv_str_to(c, &b, v)) {
        free(b.p);
        return false;
    }
    return jb_take(c, &b, out);
}
