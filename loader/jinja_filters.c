/* jinja_filters.c — jinja2's built-in filters and tests with their Python
 * signatures and quirks (default/d, length, join, map, select/reject and the
 * *attr variants, dictsort, sort, unique, items, indent, round, int, ...),
 * transformers' tojson. The globals and the methods of lists and dicts are in
 * jinja_globals.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"


/* ---- argument binding ------------------------------------------------------------------ */

bool jf_bind(jctx *c, const char *fname, const char *const *names, size_t n, const jv *defs,
             const jargs *a, jv *out) {
    if (a->npos > n)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() takes at most %zu argument%s (%zu given)",
                       fname, n, n == 1 ? "" : "s", a->npos);
    bool set[16] = {0};
    if (n > 16) return jx_fail(c, SW_E_INTERNAL, "too many parameters");
    for (size_t i = 0; i < a->npos; i++) {
        out[i] = a->pos[i];
        set[i] = true;
    }
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < n && !(strlen(names[i]) == a->kwn[k].n && !memcmp(names[i], a->kwn[k].s, a->kwn[k].n)))
            i++;
        if (i == n)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() got an unexpected keyword argument '%.*s'",
                           fname, (int)a->kwn[k].n, a->kwn[k].s);
        if (set[i])
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() got multiple values for argument '%s'",
                           fname, names[i]);
        out[i] = a->kwv[k];
        set[i] = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (set[i]) continue;
        if (defs[i].t == JV_UNDEF && !defs[i].u)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() missing required argument '%s'", fname,
                           names[i]);
        out[i] = defs[i];
    }
    return true;
}

#define REQ jv_undef()

bool jx_want_int(jctx *c, const jv *v, const char *what, int64_t *out) {
    if (v->t == JV_INT) *out = v->i;
    else if (v->t == JV_BOOL) *out = v->b;
    else if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    else
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s: '%s' object cannot be interpreted as an integer",
                       what, jv_type_name(v));
    return true;
}

static bool soft_str(jctx *c, const jv *v, jv *out) { return jv_to_str(c, v, out); }


/* ---- attribute getters (make_attrgetter) --------------------------------------------------- */

typedef struct getter {
    jv parts[8];
    size_t n;
    bool lower;   /* ignore_case postprocess */
    jv def;       /* default for missing (map) */
    bool has_def;
} getter;

static bool getter_init(jctx *c, getter *g, const jv *attr, bool lower) {
    memset(g, 0, sizeof *g);
    g->lower = lower;
    if (attr->t == JV_NONE || attr->t == JV_UNDEF) return true;
    if (attr->t != JV_STR) {
        g->parts[0] = *attr;
        g->n = 1;
        return true;
    }
    const char *s = attr->s->s;
    size_t len = attr->s->len, i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != '.') j++;
        if (g->n == 8) return jx_fail(c, SW_E_INVALID_ARG, "attribute path too long");
        bool digits = j > i;
        for (size_t k = i; k < j; k++)
            if (s[k] < '0' || s[k] > '9') digits = false;
        if (digits && j - i < 18) {
            int64_t v = 0;
            for (size_t k = i; k < j; k++) v = v * 10 + (s[k] - '0');
            g->parts[g->n++] = jv_int(v);
        }
        else if (!jv_str(c, s + i, j - i, &g->parts[g->n++])) return false;
        i = j + 1;
    }
    return true;
}

static bool ignore_case(jctx *c, const jv *v, jv *out) {
    if (v->t == JV_STR) return jstr_lower(c, v, out);
    *out = *v;
    return true;
}

static bool getter_get(jctx *c, const getter *g, const jv *item, jv *out) {
    jv v = *item;
    for (size_t i = 0; i < g->n; i++) {
        jv next;
        if (!jx_getitem(c, &v, &g->parts[i], &next)) return false;
        v = next;
        if (g->has_def && v.t == JV_UNDEF) v = g->def;
    }
    if (g->lower) return ignore_case(c, &v, out);
    *out = v;
    return true;
}

/* ---- stable sorting -------------------------------------------------------------------------- */

typedef struct sortent {
    jv key, val;
} sortent;

static bool sort_ents(jctx *c, sortent *e, size_t n, bool reverse) {
    if (n < 2) return true;
    sortent *tmp = ja_alloc(c->a, n * sizeof *tmp);
    if (!tmp) return jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int cm;
                /* right goes first only when strictly before left */
                if (!(reverse ? jv_cmp(c, &e[i].key, &e[j].key, &cm, "<")
                              : jv_cmp(c, &e[j].key, &e[i].key, &cm, "<")))
                    return false;
                if (cm == 2) cm = 1;
                tmp[k++] = cm < 0 ? e[j++] : e[i++];
            }
            while (i < mid) tmp[k++] = e[i++];
            while (j < hi) tmp[k++] = e[j++];
        }
        memcpy(e, tmp, n * sizeof *e);
    }
    return true;
}

/* ---- filters ----------------------------------------------------------------------------------- */

typedef enum {
    F_ABS, F_ATTR, F_BATCH, F_CAPITALIZE, F_CENTER, F_COUNT, F_D, F_DEFAULT, F_DICTSORT, F_E,
    F_ESCAPE, F_FIRST, F_FLOAT, F_FORCEESCAPE, F_FORMAT, F_GROUPBY, F_INDENT, F_INT, F_JOIN, F_LAST,
    F_LENGTH, F_LIST, F_LOWER, F_ITEMS, F_MAP, F_MIN, F_MAX, F_REJECT, F_REJECTATTR, F_REPLACE,
    F_REVERSE, F_ROUND, F_SAFE, F_SELECT, F_SELECTATTR, F_SLICE, F_SORT, F_STRING, F_SUM, F_TITLE,
    F_TRIM, F_TRUNCATE, F_UNIQUE, F_UPPER, F_WORDCOUNT, F_TOJSON, F_FILESIZEFORMAT, F_PPRINT,
    F_RANDOM, F_STRIPTAGS, F_URLENCODE, F_URLIZE, F_WORDWRAP, F_XMLATTR, F_COUNT_
} filter_id;

static const char *const k_filters[F_COUNT_] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join",
    "last", "length", "list", "lower", "items", "map", "min", "max", "reject", "rejectattr",
    "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string",
    "sum", "title", "trim", "truncate", "unique", "upper", "wordcount", "tojson",
    "filesizeformat", "pprint", "random", "striptags", "urlencode", "urlize", "wordwrap",
    "xmlattr"};

int jf_filter_id(const char *name, size_t n) {
    for (int i = 0; i < F_COUNT_; i++)
        if (strlen(k_filters[i]) == n && !memcmp(k_filters[i], name, n)) return i;
    return -1;
}

static bool f_default(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"default_value", "boolean"};
    jv defs[2], p[2];
    if (!jv_str(c, "", 0, &defs[0])) return false;
    defs[1] = jv_bool(false);
    if (!jf_bind(c, "default", nm, 2, defs, a, p)) return false;
    *out = (v->t == JV_UNDEF || (jv_truthy(&p[1]) && !jv_truthy(v))) ? p[0] : *v;
    return true;
}

static bool f_join(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"d", "attribute"};
    jv defs[2], p[2];
    if (!jv_str(c, "", 0, &defs[0])) return false;
    defs[1] = jv_none();
    if (!jf_bind(c, "join", nm, 2, defs, a, p)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    getter g;
    if (!getter_init(c, &g, &p[1], false)) return false;
    jv sep;
    if (!jv_to_str(c, &p[0], &sep)) return false;
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        jv it = items[i];
        if (g.n && !getter_get(c, &g, &items[i], &it)) goto fail;
        if ((i && !jb_put(c, &b, sep.s->s, sep.s->len)) || !jv_str_to(c, &b, &it)) goto fail;
    }
    return jb_take(c, &b, out);
fail:
    free(b.p);
    return false;
}

static bool f_length(jctx *c, const jv *v, jv *out) {
    size_t n;
    if (v->t == JV_LOOP) {
        *out = jv_int((int64_t)v->lp->n);
        return true;
    }
    if (!jv_len(c, v, &n)) return false;
    *out = jv_int((int64_t)n);
    return true;
}

static bool f_first_last(jctx *c, const jv *v, bool last, jv *out) {
    if (last && v->t == JV_SEQ && v->q->kind == SQ_ITER)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: 'generator' object is not reversible");
    if (v->t != JV_UNDEF && v->t != JV_SEQ && v->t != JV_STR && v->t != JV_DICT)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: '%s' object is not %s", jv_type_name(v),
                       last ? "reversible" : "iterable");
    const jv *items;
    size_t n;
    jseq *q = v->t == JV_SEQ ? v->q : NULL;
    if (q && q->kind == SQ_ITER && !last) {
        /* next(iter(gen)) takes one item only */
        if (q->pos < q->n) {
            *out = q->v[q->pos++];
            return true;
        }
        *out = jv_undef_hint(c, "No first item, sequence was empty.");
        return true;
    }
    if (!jx_items(c, v, &items, &n)) return false;
    if (n == 0) {
        *out = jv_undef_hint(c, last ? "No last item, sequence was empty." : "No first item, sequence was empty.");
        return true;
    }
    *out = items[last ? n - 1 : 0];
    return true;
}

static bool f_list(jctx *c, const jv *v, jv *out) {
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    return jv_seq(c, SQ_LIST, items, n, out);
}

static bool f_items(jctx *c, const jv *v, jv *out) {
    if (v->t == JV_UNDEF) return jv_seq(c, SQ_ITER, NULL, 0, out);
    if (v->t != JV_DICT)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: Can only get item pairs from a mapping.");
    size_t n = jdict_len(v->d);
    jseq *q = jseq_new(c, SQ_ITER, n);
    if (!q) return false;
    for (size_t i = 0; i < n; i++) {
        jv pair[2] = {v->d->e[i].k, v->d->e[i].v};
        if (!jv_seq(c, SQ_TUPLE, pair, 2, &q->v[i])) return false;
    }
    *out = jx_seq_val(q);
    return true;
}

bool jx_dict_view(jctx *c, const jdict *d, uint8_t kind, jv *out) {
    size_t n = jdict_len(d);
    jseq *q = jseq_new(c, kind, n);
    if (!q) return false;
    for (size_t i = 0; i < n; i++) {
        if (kind == SQ_KEYS) q->v[i] = d->e[i].k;
        else if (kind == SQ_VALUES) q->v[i] = d->e[i].v;
        else {
            jv pair[2] = {d->e[i].k, d->e[i].v};
            if (!jv_seq(c, SQ_TUPLE, pair, 2, &q->v[i])) return false;
        }
    }
    *out = jx_seq_val(q);
    return true;
}

static bool f_dictsort(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"case_sensitive", "by", "reverse"};
    jv defs[3] = {jv_bool(false), jv_undef(), jv_bool(false)}, p[3];
    if (!jv_str(c, "key", 3, &defs[1]) || !jf_bind(c, "dictsort", nm, 3, defs, a, p)) return false;
    int pos;
    if (p[1].t == JV_STR && p[1].s->len == 3 && !memcmp(p[1].s->s, "key", 3)) pos = 0;
    else if (p[1].t == JV_STR && p[1].s->len == 5 && !memcmp(p[1].s->s, "value", 5)) pos = 1;
    else return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: You can only sort by either \"key\" or \"value\"");
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    if (v->t != JV_DICT)
        return jx_fail(c, SW_E_INVALID_ARG, "AttributeError: '%s' object has no attribute 'items'",
                       jv_type_name(v));
    size_t n = jdict_len(v->d);
    sortent *e = ja_alloc(c->a, (n ? n : 1) * sizeof *e);
    if (!e) return jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        jv pair[2] = {v->d->e[i].k, v->d->e[i].v};
        if (!jv_seq(c, SQ_TUPLE, pair, 2, &e[i].val)) return false;
        e[i].key = pair[pos];
        if (!jv_truthy(&p[0]) && !ignore_case(c, &pair[pos], &e[i].key)) return false;
    }
    if (!sort_ents(c, e, n, jv_truthy(&p[2]))) return false;
    jseq *q = jseq_new(c, SQ_LIST, n);
    if (!q) return false;
    for (size_t i = 0; i < n; i++) q->v[i] = e[i].val;
    *out = jx_seq_val(q);
    return true;
}

static bool f_sort(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"reverse", "case_sensitive", "attribute"};
    jv defs[3] = {jv_bool(false), jv_bool(false), jv_none()}, p[3];
    if (!jf_bind(c, "sort", nm, 3, defs, a, p)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    /* attribute may name several comma-separated keys */
    jv attrs[8];
    size_t na = 0;
    if (p[2].t == JV_STR) {
        jv parts;
        jv comma;
        if (!jv_str(c, ",", 1, &comma)) return false;
        jargs sa = {.pos = &comma, .npos = 1};
        if (!jstr_method(c, &p[2], "split", 5, &sa, &parts)) return false;
        for (size_t i = 0; i < parts.q->n && na < 8; i++) attrs[na++] = parts.q->v[i];
    } else {
        attrs[na++] = p[2];
    }
    sortent *e = ja_alloc(c->a, (n ? n : 1) * sizeof *e);
    if (!e) return jx_fail(c, SW_E_NOMEM, "out of memory");
    bool lower = !jv_truthy(&p[1]);
    for (size_t i = 0; i < n; i++) {
        jv keys[8];
        for (size_t k = 0; k < na; k++) {
            getter g;
            if (!getter_init(c, &g, &attrs[k], lower) || !getter_get(c, &g, &items[i], &keys[k]))
                return false;
        }
        e[i].val = items[i];
        if (!jv_seq(c, SQ_LIST, keys, na, &e[i].key)) return false;
    }
    if (!sort_ents(c, e, n, jv_truthy(&p[0]))) return false;
    jseq *q = jseq_new(c, SQ_LIST, n);
    if (!q) return false;
    for (size_t i = 0; i < n; i++) q->v[i] = e[i].val;
    if (!jx_step(c, n)) return false;
    *out = jx_seq_val(q);
    return true;
}

static bool f_unique(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"case_sensitive", "attribute"};
    jv defs[2] = {jv_bool(false), jv_none()}, p[2];
    if (!jf_bind(c, "unique", nm, 2, defs, a, p)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    getter g;
    if (!getter_init(c, &g, &p[1], !jv_truthy(&p[0]))) return false;
    jdict *seen = jdict_new(c);
    jseq *q = jseq_new(c, SQ_ITER, n);
    if (!seen || !q) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jv key;
        if (!getter_get(c, &g, &items[i], &key)) return false;
        if (!jv_hashable(&key))
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unhashable type: '%s'", jv_type_name(&key));
        if (jdict_get(seen, &key)) continue;
        jv t = jv_bool(true);
        if (!jdict_set(c, seen, &key, &t)) return false;
        q->v[k++] = items[i];
    }
    q->n = k;
    *out = jx_seq_val(q);
    return true;
}

static bool f_minmax(jctx *c, const jv *v, const jargs *a, bool max, jv *out) {
    static const char *const nm[] = {"case_sensitive", "attribute"};
    jv defs[2] = {jv_bool(false), jv_none()}, p[2];
    if (!jf_bind(c, max ? "max" : "min", nm, 2, defs, a, p)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    if (n == 0) {
        *out = jv_undef_hint(c, "No aggregated item, sequence was empty.");
        return true;
    }
    getter g;
    if (!getter_init(c, &g, &p[1], !jv_truthy(&p[0]))) return false;
    size_t best = 0;
    jv bk;
    if (!getter_get(c, &g, &items[0], &bk)) return false;
    for (size_t i = 1; i < n; i++) {
        jv k;
        int cm;
        if (!getter_get(c, &g, &items[i], &k) || !jv_cmp(c, &k, &bk, &cm, max ? ">" : "<")) return false;
        if (cm == 2) continue;
        if (max ? cm > 0 : cm < 0) {
            best = i;
            bk = k;
        }
    }
    *out = items[best];
    return true;
}

/* map / select / reject / selectattr / rejectattr */
static bool f_map(jctx *c, const jv *v, const jargs *a, jv *out) {
    if (!jv_truthy(v)) return jv_seq(c, SQ_ITER, NULL, 0, out);
    const jv *items;
    size_t n;
    getter g;
    bool by_attr = a->npos == 0;
    int fid = -1;
    jargs rest = {0};
    if (by_attr) {
        jv attr = jv_undef(), def = jv_none();
        bool have = false;
        for (size_t k = 0; k < a->nkw; k++) {
            if (a->kwn[k].n == 9 && !memcmp(a->kwn[k].s, "attribute", 9)) attr = a->kwv[k], have = true;
            else if (a->kwn[k].n == 7 && !memcmp(a->kwn[k].s, "default", 7)) def = a->kwv[k];
            else return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: Unexpected keyword argument '%.*s'",
                                (int)a->kwn[k].n, a->kwn[k].s);
        }
        if (!have) return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: map requires a filter argument");
        if (!getter_init(c, &g, &attr, false)) return false;
        if (def.t != JV_NONE) {
            g.def = def;
            g.has_def = true;
        }
    } else {
        if (a->pos[0].t != JV_STR)
            return jx_fail(c, SW_E_INVALID_ARG, "TemplateRuntimeError: No filter named '%s'.",
                           jv_type_name(&a->pos[0]));
        fid = jf_filter_id(a->pos[0].s->s, a->pos[0].s->len);
        if (fid < 0)
            return jx_fail(c, SW_E_INVALID_ARG, "TemplateRuntimeError: No filter named '%.*s'.",
                           (int)a->pos[0].s->len, a->pos[0].s->s);
        rest = *a;
        rest.pos++;
        rest.npos--;
    }
    if (!jx_items(c, v, &items, &n)) return false;
    jseq *q = jseq_new(c, SQ_ITER, n);
    if (!q) return false;
    for (size_t i = 0; i < n; i++) {
        if (by_attr ? !getter_get(c, &g, &items[i], &q->v[i])
                    : !jx_filter(c, fid, &items[i], &rest, &q->v[i]))
            return false;
    }
    *out = jx_seq_val(q);
    return true;
}

static bool f_select(jctx *c, const jv *v, const jargs *a, bool attr, bool want, jv *out) {
    if (!jv_truthy(v)) return jv_seq(c, SQ_ITER, NULL, 0, out);
    getter g = {0};
    size_t off = 0;
    if (attr) {
        if (a->npos < 1)
            return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: Missing parameter for attribute name");
        if (!getter_init(c, &g, &a->pos[0], false)) return false;
        off = 1;
    }
    int tid = -2; /* -2: plain truthiness */
    jargs rest = {.kwn = a->kwn, .kwv = a->kwv, .nkw = a->nkw};
    if (a->npos > off) {
        const jv *name = &a->pos[off];
        if (name->t != JV_STR)
            return jx_fail(c, SW_E_INVALID_ARG, "TemplateRuntimeError: No test named %s.", jv_type_name(name));
        tid = jf_test_id(name->s->s, name->s->len);
        if (tid < 0)
            return jx_fail(c, SW_E_INVALID_ARG, "TemplateRuntimeError: No test named '%.*s'.",
                           (int)name->s->len, name->s->s);
        rest.pos = a->pos + off + 1;
        rest.npos = a->npos - off - 1;
    }
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    jseq *q = jseq_new(c, SQ_ITER, n);
    if (!q) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (attr && !getter_get(c, &g, &items[i], &x)) return false;
        bool r;
        if (tid == -2) r = jv_truthy(&x);
        else if (!jx_test(c, tid, &x, &rest, &r)) return false;
        if (r == want) q->v[k++] = items[i];
    }
    q->n = k;
    *out = jx_seq_val(q);
    return true;
}

static bool f_replace(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"old", "new", "count"};
    jv defs[3] = {REQ, REQ, jv_none()}, p[3];
    if (!jf_bind(c, "replace", nm, 3, defs, a, p)) return false;
    jv s, o, w;
    if (!jv_to_str(c, v, &s) || !jv_to_str(c, &p[0], &o) || !jv_to_str(c, &p[1], &w)) return false;
    s.safe = o.safe = w.safe = false;
    int64_t cnt = -1;
    if (p[2].t != JV_NONE && !jx_want_int(c, &p[2], "replace", &cnt)) return false;
    return jstr_replace(c, &s, &o, &w, cnt, out);
}

static bool f_indent(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"width", "first", "blank"};
    jv defs[3] = {jv_int(4), jv_bool(false), jv_bool(false)}, p[3];
    if (!jf_bind(c, "indent", nm, 3, defs, a, p)) return false;
    jv ind;
    if (p[0].t == JV_STR) {
        ind = p[0];
    } else {
        int64_t w = 0;
        if (!jx_want_int(c, &p[0], "indent", &w)) return false;
        jv sp;
        if (!jv_str(c, " ", 1, &sp) || !jstr_repeat(c, &sp, w, &ind)) return false;
    }
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    if (v->t != JV_STR)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unsupported operand type(s) for +=: '%s' and 'str'",
                       jv_type_name(v));
    jv nl, s;
    if (!jv_str(c, "\n", 1, &nl) || !jstr_concat(c, v, &nl, &s)) return false;
    jv lines;
    if (!jstr_splitlines(c, &s, false, &lines)) return false;
    jbuf b = {0};
    const jseq *L = lines.q;
    bool blank = jv_truthy(&p[2]);
    for (size_t i = 0; i < L->n; i++) {
        const jstr *ln = L->v[i].s;
        if (i > 0) {
            if (!jb_putc(c, &b, '\n')) goto fail;
            if ((blank || ln->len) && !jb_put(c, &b, ind.s->s, ind.s->len)) goto fail;
        }
        if (!jb_put(c, &b, ln->s, ln->len)) goto fail;
    }
    jv r;
    if (!jb_take(c, &b, &r)) return false;
    if (jv_truthy(&p[1])) {
        if (!jstr_concat(c, &ind, &r, &r)) return false;
    }
    r.safe = v->safe;
    *out = r;
    return true;
fail:
    free(b.p);
    return false;
}

/* Python int(str, base) */
static bool parse_py_int(const jstr *s, int base, int64_t *out) {
    const char *p = s->s, *e = s->s + s->len;
    while (p < e && ju_isspace((unsigned char)*p)) p++;
    while (e > p && ju_isspace((unsigned char)e[-1])) e--;
    bool neg = false;
    if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (e - p > 1 && p[0] == '0') {
            char x = (char)(p[1] | 0x20);
            int b2 = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
            if (b2 && (base == 0 || base == b2)) {
                base = b2;
                p += 2;
                if (p < e && *p == '_') p++;
            }
        }
        if (base == 0) base = 10;
    }
    if (p >= e) return false;
    uint64_t v = 0;
    bool last_us = true;
    for (; p < e; p++) {
        if (*p == '_') {
            if (last_us) return false;
            last_us = true;
            continue;
        }
        int d = *p >= '0' && *p <= '9' ? *p - '0' : (*p | 0x20) >= 'a' && (*p | 0x20) <= 'z' ? (*p | 0x20) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > ((uint64_t)INT64_MAX + 1 - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
        last_us = false;
    }
    if (last_us) return false;
    if (!neg && v > (uint64_t)INT64_MAX) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Python float(str) */
static bool parse_py_float(const jstr *s, double *out) {
    const char *p = s->s, *e = s->s + s->len;
    while (p < e && ju_isspace((unsigned char)*p)) p++;
    while (e > p && ju_isspace((unsigned char)e[-1])) e--;
    if (p >= e || e - p > 400) return false;
    char buf[420];
    size_t k = 0;
    for (const char *q = p; q < e; q++) {
        if (*q == '_') {
            if (q == p || q + 1 == e || !(q[-1] >= '0' && q[-1] <= '9') || !(q[1] >= '0' && q[1] <= '9'))
                return false;
            continue;
        }
        buf[k++] = *q;
    }
    buf[k] = '\0';
    /* strtod accepts hex floats and "infinity"/"nan(...)" forms Python also accepts in part */
    const char *t = buf + (buf[0] == '+' || buf[0] == '-');
    if ((t[0] == '0' && (t[1] | 0x20) == 'x')) return false;
    char *end;
    double d = strtod(buf, &end);
    if (*end) return false;
    if (strchr(t, '(')) return false;
    *out = d;
    return true;
}

static bool f_int(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"default", "base"};
    jv defs[2] = {jv_int(0), jv_int(10)}, p[2];
    if (!jf_bind(c, "int", nm, 2, defs, a, p)) return false;
    int64_t base = 10;
    if (!jx_want_int(c, &p[1], "int", &base)) return false;
    switch (v->t) {
    case JV_UNDEF: return jx_undef_fail(c, v);
    case JV_INT: *out = *v; return true;
    case JV_BOOL: *out = jv_int(v->b); return true;
    case JV_FLOAT:
        if (isfinite(v->f) && fabs(v->f) < 9.2e18) {
            *out = jv_int((int64_t)v->f);
            return true;
        }
        break;
    case JV_STR: {
        int64_t r;
        if (parse_py_int(v->s, (int)base, &r)) {
            *out = jv_int(r);
            return true;
        }
        double d;
        if (parse_py_float(v->s, &d) && isfinite(d) && fabs(d) < 9.2e18) {
            *out = jv_int((int64_t)d);
            return true;
        }
        break;
    }
    default: break;
    }
    *out = p[0];
    return true;
}

static bool f_float(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"default"};
    jv defs[1] = {jv_float(0.0)}, p[1];
    if (!jf_bind(c, "float", nm, 1, defs, a, p)) return false;
    switch (v->t) {
    case JV_UNDEF: return jx_undef_fail(c, v);
    case JV_FLOAT: *out = *v; return true;
    case JV_INT: *out = jv_float((double)v->i); return true;
    case JV_BOOL: *out = jv_float(v->b); return true;
    case JV_STR: {
        double d;
        if (parse_py_float(v->s, &d)) {
            *out = jv_float(d);
            return true;
        }
        break;
    }
    default: break;
    }
    *out = p[0];
    return true;
}

static double round_half_even(double x) {
    double r = nearbyint(x); /* default rounding mode: ties to even */
    return r;
}

static bool f_round(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"precision", "method"};
    jv defs[2] = {jv_int(0), jv_undef()}, p[2];
    if (!jv_str(c, "common", 6, &defs[1]) || !jf_bind(c, "round", nm, 2, defs, a, p)) return false;
    int64_t prec = 0;
    if (!jx_want_int(c, &p[0], "round", &prec)) return false;
    const char *m = p[1].t == JV_STR ? p[1].s->s : "";
    size_t ml = p[1].t == JV_STR ? p[1].s->len : 0;
    bool common = ml == 6 && !memcmp(m, "common", 6), ceil_ = ml == 4 && !memcmp(m, "ceil", 4),
         floor_ = ml == 5 && !memcmp(m, "floor", 5);
    if (!common && !ceil_ && !floor_)
        return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: method must be common, ceil or floor");
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    if (v->t != JV_INT && v->t != JV_FLOAT && v->t != JV_BOOL)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: type %s doesn't define __round__ method", jv_type_name(v));
    if (common) {
        if (v->t != JV_FLOAT) {
            *out = jv_int(v->t == JV_INT ? v->i : v->b); /* round(int, n) stays int */
            return true;
        }
        double x = v->f;
        if (!isfinite(x)) {
            *out = *v;
            return true;
        }
        if (prec >= 0 && prec < 300) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            *out = jv_float(strtod(buf, NULL));
        } else if (prec < 0 && prec > -300) {
            double pw = pow(10.0, (double)-prec);
            *out = jv_float(round_half_even(x / pw) * pw);
        } else {
            *out = jv_float(prec > 0 ? x : 0.0 * x);
        }
        return true;
    }
    double x = v->t == JV_FLOAT ? v->f : (double)(v->t == JV_INT ? v->i : v->b);
    double pw = pow(10.0, (double)prec);
    double y = ceil_ ? ceil(x * pw) : floor(x * pw);
    *out = jv_float(y / pw);
    return true;
}

static bool f_tojson(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    jv defs[4] = {jv_bool(false), jv_none(), jv_none(), jv_bool(false)}, p[4];
    if (!jf_bind(c, "tojson", nm, 4, defs, a, p)) return false;
    jdump_opts o = {.ensure_ascii = jv_truthy(&p[0]), .sort_keys = jv_truthy(&p[3])};
    jv ind = jv_none();
    if (p[1].t == JV_STR) {
        ind = p[1];
    } else if (p[1].t == JV_INT || p[1].t == JV_BOOL) {
        jv sp;
        if (!jv_str(c, " ", 1, &sp) || !jstr_repeat(c, &sp, p[1].t == JV_INT ? p[1].i : p[1].b, &ind))
            return false;
    } else if (p[1].t != JV_NONE) {
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: can't multiply sequence by non-int of type '%s'",
                       jv_type_name(&p[1]));
    }
    if (ind.t == JV_STR) {
        o.indent = ind.s->s;
        o.indent_len = ind.s->len;
    }
    o.item_sep = o.indent ? "," : ", ";
    o.key_sep = ": ";
    if (p[2].t != JV_NONE) {
        const jv *items;
        size_t n;
        if (p[2].t != JV_SEQ || !jx_items(c, &p[2], &items, &n) || n != 2 || items[0].t != JV_STR ||
            items[1].t != JV_STR)
            return c->failed ? false
                             : jx_fail(c, SW_E_INVALID_ARG, "ValueError: separators must be a pair of strings");
        o.item_sep = items[0].s->s;
        o.key_sep = items[1].s->s;
        o.item_sep_len = items[0].s->len;
        o.key_sep_len = items[1].s->len;
    } else {
        o.item_sep_len = strlen(o.item_sep);
        o.key_sep_len = strlen(o.key_sep);
    }
    jbuf b = {0};
    if (!jjson_dump(c, &b, v, &o, 0)) {
        free(b.p);
        return false;
    }
    return jb_take(c, &b, out);
}

static bool f_batch_slice(jctx *c, const jv *v, const jargs *a, bool slice, jv *out) {
    static const char *const nm[] = {"n", "fill_with"};
    jv defs[2] = {REQ, jv_none()}, p[2];
    if (!jf_bind(c, slice ? "slice" : "batch", nm, 2, defs, a, p)) return false;
    int64_t k = 0;
    if (!jx_want_int(c, &p[0], slice ? "slice" : "batch", &k)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    if (k <= 0) {
        if (!slice && n == 0) return jv_seq(c, SQ_ITER, NULL, 0, out);
        if (!slice) return jx_fail(c, SW_E_INVALID_ARG, "batch size must be positive");
        return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: integer division or modulo by zero");
    }
    bool fill = p[1].t != JV_NONE;
    size_t groups = slice ? (size_t)k : (n + (size_t)k - 1) / (size_t)k;
    if (!jx_room(c, groups * 32) || !jx_step(c, groups)) return false;
    jseq *q = jseq_new(c, SQ_ITER, groups);
    if (!q) return false;
    size_t per = slice ? n / (size_t)k : 0, extra = slice ? n % (size_t)k : 0, off = 0;
    for (size_t g = 0; g < groups; g++) {
        size_t start, end;
        if (slice) {
            start = off + g * per;
            if (g < extra) off++;
            end = off + (g + 1) * per;
        } else {
            start = g * (size_t)k;
            end = start + (size_t)k < n ? start + (size_t)k : n;
        }
        size_t len = end - start, want = len;
        if (fill && (slice ? g >= extra : len < (size_t)k)) want = slice ? len + 1 : (size_t)k;
        jseq *part = jseq_new(c, SQ_LIST, want);
        if (!part) return false;
        for (size_t i = 0; i < want; i++) part->v[i] = i < len ? items[start + i] : p[1];
        q->v[g] = jx_seq_val(part);
    }
    *out = jx_seq_val(q);
    return true;
}

static bool f_groupby(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"attribute", "default", "case_sensitive"};
    jv defs[3] = {REQ, jv_none(), jv_bool(false)}, p[3];
    if (!jf_bind(c, "groupby", nm, 3, defs, a, p)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    bool cs = jv_truthy(&p[2]);
    getter g, raw;
    if (!getter_init(c, &g, &p[0], !cs) || !getter_init(c, &raw, &p[0], false)) return false;
    if (p[1].t != JV_NONE) {
        g.def = raw.def = p[1];
        g.has_def = raw.has_def = true;
    }
    sortent *e = ja_alloc(c->a, (n ? n : 1) * sizeof *e);
    if (!e) return jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        e[i].val = items[i];
        if (!getter_get(c, &g, &items[i], &e[i].key)) return false;
    }
    if (!sort_ents(c, e, n, false)) return false;
    jv *groups = ja_alloc(c->a, (n ? n : 1) * sizeof *groups);
    if (!groups) return jx_fail(c, SW_E_NOMEM, "out of memory");
    size_t ng = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        for (;;) {
            bool eq = false;
            if (j >= n || !jv_eq(c, &e[i].key, &e[j].key, &eq)) break;
            if (!eq) break;
            j++;
        }
        if (c->failed) return false;
        jseq *lst = jseq_new(c, SQ_LIST, j - i);
        if (!lst) return false;
        for (size_t k = i; k < j; k++) lst->v[k - i] = e[k].val;
        jv key = e[i].key;
        if (!cs && !getter_get(c, &raw, &e[i].val, &key)) return false;
        jv pair[2] = {key, jx_seq_val(lst)};
        if (!jv_seq(c, SQ_TUPLE, pair, 2, &groups[ng++])) return false;
        i = j;
    }
    return jv_seq(c, SQ_LIST, groups, ng, out);
}

static bool f_sum(jctx *c, const jv *v, const jargs *a, jv *out);
static bool f_truncate(jctx *c, const jv *v, const jargs *a, jv *out);
static bool f_wordcount(jctx *c, const jv *v, jv *out);

bool jx_one_arg(jctx *c, const char *name, const jargs *a) {
    if (a->npos || a->nkw)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() takes exactly 1 argument (%zu given)", name,
                       1 + a->npos + a->nkw);
    return true;
}

bool jf_call_filter(jctx *c, int fid, const jv *v, const jargs *a, jv *out) {
    if (!jx_step(c, 1)) return false;
    jv s;
    switch (fid) {
    case F_ABS:
        if (!jx_one_arg(c, "abs", a)) return false;
        if (v->t == JV_INT) {
            if (v->i == INT64_MIN) return jx_fail(c, SW_E_RANGE, "integer overflow");
            *out = jv_int(v->i < 0 ? -v->i : v->i);
        } else if (v->t == JV_BOOL) *out = jv_int(v->b);
        else if (v->t == JV_FLOAT) *out = jv_float(fabs(v->f));
        else if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
        else return jx_fail(c, SW_E_INVALID_ARG, "TypeError: bad operand type for abs(): '%s'", jv_type_name(v));
        return true;
    case F_ATTR: {
        static const char *const nm[] = {"name"};
        jv defs[1] = {REQ}, p[1];
        if (!jf_bind(c, "attr", nm, 1, defs, a, p)) return false;
        if (p[0].t != JV_STR) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: attribute name must be string");
        if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
        bool found;
        if (!jx_pyattr(c, v, p[0].s->s, p[0].s->len, out, &found)) return false;
        if (!found) *out = jv_undef_attr(c, v, &p[0], JU_UNDEFINED, NULL);
        return true;
    }
    case F_BATCH: return f_batch_slice(c, v, a, false, out);
    case F_SLICE: return f_batch_slice(c, v, a, true, out);
    case F_CAPITALIZE: return jx_one_arg(c, "capitalize", a) && soft_str(c, v, &s) && jstr_capitalize(c, &s, out);
    case F_CENTER: {
        static const char *const nm[] = {"width"};
        jv defs[1] = {jv_int(80)}, p[1];
        if (!jf_bind(c, "center", nm, 1, defs, a, p) || !soft_str(c, v, &s)) return false;
        jargs ca = {.pos = p, .npos = 1};
        return jstr_method(c, &s, "center", 6, &ca, out);
    }
    case F_COUNT:
    case F_LENGTH: return jx_one_arg(c, "length", a) && f_length(c, v, out);
    case F_D:
    case F_DEFAULT: return f_default(c, v, a, out);
    case F_DICTSORT: return f_dictsort(c, v, a, out);
    case F_E:
    case F_ESCAPE: return jx_one_arg(c, "escape", a) && jstr_escape(c, v, out);
    case F_FORCEESCAPE: {
        if (!jx_one_arg(c, "forceescape", a) || !jv_to_str(c, v, &s)) return false;
        s.safe = false;
        return jstr_escape(c, &s, out);
    }
    case F_FIRST: return jx_one_arg(c, "first", a) && f_first_last(c, v, false, out);
    case F_LAST: return jx_one_arg(c, "last", a) && f_first_last(c, v, true, out);
    case F_FLOAT: return f_float(c, v, a, out);
    case F_INT: return f_int(c, v, a, out);
    case F_FORMAT: {
        if (a->npos && a->nkw)
            return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: can't handle positional and keyword arguments at the same time");
        if (!soft_str(c, v, &s)) return false;
        jv args;
        if (a->nkw) {
            jdict *d = jdict_new(c);
            if (!d) return false;
            for (size_t k = 0; k < a->nkw; k++) {
                jv key;
                if (!jv_str(c, a->kwn[k].s, a->kwn[k].n, &key) || !jdict_set(c, d, &key, &a->kwv[k])) return false;
            }
            args = jv_none();
            args.t = JV_DICT;
            args.d = d;
        } else if (!jv_seq(c, SQ_TUPLE, a->pos, a->npos, &args)) {
            return false;
        }
        return jstr_percent(c, &s, &args, out);
    }
    case F_GROUPBY: return f_groupby(c, v, a, out);
    case F_INDENT: return f_indent(c, v, a, out);
    case F_JOIN: return f_join(c, v, a, out);
    case F_LIST: return jx_one_arg(c, "list", a) && f_list(c, v, out);
    case F_LOWER: return jx_one_arg(c, "lower", a) && soft_str(c, v, &s) && jstr_lower(c, &s, out);
    case F_UPPER: return jx_one_arg(c, "upper", a) && soft_str(c, v, &s) && jstr_upper(c, &s, out);
    case F_TITLE: return jx_one_arg(c, "title", a) && soft_str(c, v, &s) && jstr_title_filter(c, &s, out);
    case F_ITEMS: return jx_one_arg(c, "items", a) && f_items(c, v, out);
    case F_MAP: return f_map(c, v, a, out);
    case F_MIN: return f_minmax(c, v, a, false, out);
    case F_MAX: return f_minmax(c, v, a, true, out);
    case F_SELECT: return f_select(c, v, a, false, true, out);
    case F_REJECT: return f_select(c, v, a, false, false, out);
    case F_SELECTATTR: return f_select(c, v, a, true, true, out);
    case F_REJECTATTR: return f_select(c, v, a, true, false, out);
    case F_REPLACE: return f_replace(c, v, a, out);
    case F_REVERSE: {
        if (!jx_one_arg(c, "reverse", a)) return false;
        if (v->t == JV_STR) return jstr_slice(c, v, (int64_t)v->s->ncp - 1, -1, -1, out);
        const jv *items;
        size_t n;
        if (v->t == JV_SEQ && v->q->kind == SQ_ITER) {
            /* not reversible: list(value) reversed */
            if (!jx_items(c, v, &items, &n)) return false;
            jseq *q = jseq_new(c, SQ_LIST, n);
            if (!q) return false;
            for (size_t i = 0; i < n; i++) q->v[i] = items[n - 1 - i];
            *out = jx_seq_val(q);
            return true;
        }
        if (v->t != JV_SEQ && v->t != JV_DICT && v->t != JV_UNDEF)
            return jx_fail(c, SW_E_INVALID_ARG, "FilterArgumentError: argument must be iterable");
        if (!jx_items(c, v, &items, &n)) return false;
        jseq *q = jseq_new(c, SQ_ITER, n);
        if (!q) return false;
        for (size_t i = 0; i < n; i++) q->v[i] = items[n - 1 - i];
        *out = jx_seq_val(q);
        return true;
    }
    case F_ROUND: return f_round(c, v, a, out);
    case F_SAFE:
        if (!jx_one_arg(c, "safe", a) || !jv_to_str(c, v, out)) return false;
        out->safe = true;
        return true;
    case F_SORT: return f_sort(c, v, a, out);
    case F_STRING: return jx_one_arg(c, "string", a) && soft_str(c, v, out);
    case F_SUM: return f_sum(c, v, a, out);
    case F_TRIM: {
        static const char *const nm[] = {"chars"};
        jv defs[1] = {jv_none()}, p[1];
        if (!jf_bind(c, "trim", nm, 1, defs, a, p) || !soft_str(c, v, &s)) return false;
        return jstr_strip(c, &s, &p[0], 3, out);
    }
    case F_TRUNCATE: return f_truncate(c, v, a, out);
    case F_UNIQUE: return f_unique(c, v, a, out);
    case F_WORDCOUNT: return jx_one_arg(c, "wordcount", a) && f_wordcount(c, v, out);
    case F_TOJSON: return f_tojson(c, v, a, out);
    default:
        return jx_fail(c, SW_E_UNSUPPORTED, "the '%s' filter is not supported in chat templates",
                       k_filters[fid]);
    }
}

static bool f_sum(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"attribute", "start"};
    jv defs[2] = {jv_none(), jv_int(0)}, p[2];
    if (!jf_bind(c, "sum", nm, 2, defs, a, p)) return false;
    const jv *items;
    size_t n;
    if (!jx_items(c, v, &items, &n)) return false;
    getter g;
    if (!getter_init(c, &g, &p[0], false)) return false;
    jv acc = p[1];
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (g.n && !getter_get(c, &g, &items[i], &x)) return false;
        if (acc.t == JV_STR)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: sum() can't sum strings [use ''.join(seq) instead]");
        bool num = (acc.t == JV_INT || acc.t == JV_FLOAT || acc.t == JV_BOOL) &&
                   (x.t == JV_INT || x.t == JV_FLOAT || x.t == JV_BOOL);
        if (num) {
            if (acc.t == JV_FLOAT || x.t == JV_FLOAT) {
                double s = (acc.t == JV_FLOAT ? acc.f : (double)(acc.t == JV_INT ? acc.i : acc.b)) +
                           (x.t == JV_FLOAT ? x.f : (double)(x.t == JV_INT ? x.i : x.b));
                acc = jv_float(s);
            } else {
                int64_t r;
                if (__builtin_add_overflow(acc.t == JV_INT ? acc.i : acc.b, x.t == JV_INT ? x.i : x.b, &r))
                    return jx_fail(c, SW_E_RANGE, "integer overflow");
                acc = jv_int(r);
            }
        } else if (acc.t == JV_SEQ && x.t == JV_SEQ && acc.q->kind == SQ_LIST && x.q->kind == SQ_LIST) {
            jseq *q = jseq_new(c, SQ_LIST, acc.q->n + x.q->n);
            if (!q) return false;
            if (acc.q->n) memcpy(q->v, acc.q->v, acc.q->n * sizeof(jv));
            if (x.q->n) memcpy(q->v + acc.q->n, x.q->v, x.q->n * sizeof(jv));
            acc = jx_seq_val(q);
        } else {
            if (x.t == JV_UNDEF) return jx_undef_fail(c, &x);
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unsupported operand type(s) for +: '%s' and '%s'",
                           jv_type_name(&acc), jv_type_name(&x));
        }
    }
    *out = acc;
    return true;
}

static bool f_truncate(jctx *c, const jv *v, const jargs *a, jv *out) {
    static const char *const nm[] = {"length", "killwords", "end", "leeway"};
    jv defs[4] = {jv_int(255), jv_bool(false), jv_undef(), jv_none()}, p[4];
    if (!jv_str(c, "...", 3, &defs[2]) || !jf_bind(c, "truncate", nm, 4, defs, a, p)) return false;
    int64_t len = 0, leeway = 5;
    if (!jx_want_int(c, &p[0], "truncate", &len)) return false;
    if (p[3].t != JV_NONE && !jx_want_int(c, &p[3], "truncate", &leeway)) return false;
    if (v->t != JV_STR) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: object of type '%s' has no len()", jv_type_name(v));
    if (p[2].t != JV_STR) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: end must be a string");
    int64_t endl = (int64_t)p[2].s->ncp;
    if (len < endl) return jx_fail(c, SW_E_INVALID_ARG, "AssertionError: expected length >= %lld, got %lld",
                                   (long long)endl, (long long)len);
    if (leeway < 0) return jx_fail(c, SW_E_INVALID_ARG, "AssertionError: expected leeway >= 0");
    if ((int64_t)v->s->ncp <= len + leeway) {
        *out = *v;
        return true;
    }
    jv head;
    if (!jstr_slice(c, v, 0, len - endl, 1, &head)) return false;
    if (!jv_truthy(&p[1])) {
        /* drop the last partial word: rsplit(" ", 1)[0] */
        const char *sp = NULL;
        for (size_t i = head.s->len; i-- > 0;)
            if (head.s->s[i] == ' ') {
                sp = head.s->s + i;
                break;
            }
        if (sp && !jv_str(c, head.s->s, (size_t)(sp - head.s->s), &head)) return false;
    }
    return jstr_concat(c, &head, &p[2], out);
}

static bool f_wordcount(jctx *c, const jv *v, jv *out) {
    jv s;
    if (!soft_str(c, v, &s)) return false;
    int64_t n = 0;
    bool in = false;
    for (size_t i = 0; i < s.s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s.s->s, s.s->len, i, &len);
        bool w = cp == '_' || (cp < 0x80 ? ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9')
                                        : ju_is_ident_cont(cp));
        if (w && !in) n++;
        in = w;
        i += len;
    }
    *out = jv_int(n);
    return true;
}

/* ---- tests ------------------------------------------------------------------------------------- */

typedef enum {
    TS_ODD, TS_EVEN, TS_DIVISIBLEBY, TS_DEFINED, TS_UNDEFINED, TS_FILTER, TS_TEST, TS_NONE, TS_BOOLEAN,
    TS_FALSE, TS_TRUE, TS_INTEGER, TS_FLOAT, TS_LOWER, TS_UPPER, TS_STRING, TS_MAPPING, TS_NUMBER,
    TS_SEQUENCE, TS_ITERABLE, TS_CALLABLE, TS_SAMEAS, TS_ESCAPED, TS_IN, TS_EQ1, TS_EQ2, TS_EQ3, TS_NE1,
    TS_NE2, TS_GT1, TS_GT2, TS_GT3, TS_GE1, TS_GE2, TS_LT1, TS_LT2, TS_LT3, TS_LE1, TS_LE2, TS_COUNT_
} test_id;

static const char *const k_tests[TS_COUNT_] = {
    "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean",
    "false", "true", "integer", "float", "lower", "upper", "string", "mapping", "number",
    "sequence", "iterable", "callable", "sameas", "escaped", "in", "==", "eq", "equalto", "!=",
    "ne", ">", "gt", "greaterthan", ">=", "ge", "<", "lt", "lessthan", "<=", "le"};

int jf_test_id(const char *name, size_t n) {
    for (int i = 0; i < TS_COUNT_; i++)
        if (strlen(k_tests[i]) == n && !memcmp(k_tests[i], name, n)) return i;
    return -1;
}

static bool test_arg(jctx *c, const char *name, const jargs *a, jv *out) {
    static const char *const nm[] = {"other"};
    jv defs[1] = {REQ};
    return jf_bind(c, name, nm, 1, defs, a, out);
}

static bool mod_eq(jctx *c, const jv *v, const jv *m, int64_t want, bool *out) {
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    if (m->t == JV_UNDEF) return jx_undef_fail(c, m);
    bool vn = v->t == JV_INT || v->t == JV_BOOL || v->t == JV_FLOAT;
    bool mn = m->t == JV_INT || m->t == JV_BOOL || m->t == JV_FLOAT;
    if (!vn || !mn)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unsupported operand type(s) for %%: '%s' and '%s'",
                       jv_type_name(v), jv_type_name(m));
    if (v->t == JV_FLOAT || m->t == JV_FLOAT) {
        double x = v->t == JV_FLOAT ? v->f : (double)(v->t == JV_INT ? v->i : v->b);
        double y = m->t == JV_FLOAT ? m->f : (double)(m->t == JV_INT ? m->i : m->b);
        if (y == 0) return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: float modulo");
        double r = fmod(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        *out = r == (double)want;
        return true;
    }
    int64_t x = v->t == JV_INT ? v->i : v->b, y = m->t == JV_INT ? m->i : m->b;
    if (y == 0) return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: integer division or modulo by zero");
    int64_t r = y == -1 ? 0 : x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    *out = r == want;
    return true;
}

bool jf_call_test(jctx *c, int tid, const jv *v, const jargs *a, bool *out) {
    if (!jx_step(c, 1)) return false;
    jv o;
    int cm;
    switch (tid) {
    case TS_ODD: {
        jv two = jv_int(2);
        return jx_one_arg(c, "odd", a) && mod_eq(c, v, &two, 1, out);
    }
    case TS_EVEN: {
        jv two = jv_int(2);
        return jx_one_arg(c, "even", a) && mod_eq(c, v, &two, 0, out);
    }
    case TS_DIVISIBLEBY:
        return test_arg(c, "divisibleby", a, &o) && mod_eq(c, v, &o, 0, out);
    case TS_DEFINED: *out = v->t != JV_UNDEF; return jx_one_arg(c, "defined", a);
    case TS_UNDEFINED: *out = v->t == JV_UNDEF; return jx_one_arg(c, "undefined", a);
    case TS_FILTER: *out = v->t == JV_STR && jf_filter_id(v->s->s, v->s->len) >= 0; return true;
    case TS_TEST: *out = v->t == JV_STR && jf_test_id(v->s->s, v->s->len) >= 0; return true;
    case TS_NONE: *out = v->t == JV_NONE; return jx_one_arg(c, "none", a);
    case TS_BOOLEAN: *out = v->t == JV_BOOL; return jx_one_arg(c, "boolean", a);
    case TS_FALSE: *out = v->t == JV_BOOL && !v->b; return jx_one_arg(c, "false", a);
    case TS_TRUE: *out = v->t == JV_BOOL && v->b; return jx_one_arg(c, "true", a);
    case TS_INTEGER: *out = v->t == JV_INT; return jx_one_arg(c, "integer", a);
    case TS_FLOAT: *out = v->t == JV_FLOAT; return jx_one_arg(c, "float", a);
    case TS_LOWER:
    case TS_UPPER: {
        jv s;
        if (!jx_one_arg(c, "lower", a) || !jv_to_str(c, v, &s)) return false;
        *out = tid == TS_LOWER ? jstr_islower(&s) : jstr_isupper(&s);
        return true;
    }
    case TS_STRING: *out = v->t == JV_STR; return jx_one_arg(c, "string", a);
    case TS_MAPPING: *out = v->t == JV_DICT; return jx_one_arg(c, "mapping", a);
    case TS_NUMBER: *out = v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; return jx_one_arg(c, "number", a);
    case TS_SEQUENCE:
        /* len() and __getitem__: str, list, tuple, range, dict, and Undefined */
        *out = v->t == JV_STR || v->t == JV_DICT || v->t == JV_UNDEF ||
               (v->t == JV_SEQ && (v->q->kind == SQ_LIST || v->q->kind == SQ_TUPLE || v->q->kind == SQ_RANGE));
        return jx_one_arg(c, "sequence", a);
    case TS_ITERABLE:
        *out = v->t == JV_STR || v->t == JV_DICT || v->t == JV_UNDEF || v->t == JV_SEQ || v->t == JV_LOOP;
        return jx_one_arg(c, "iterable", a);
    case TS_CALLABLE:
        *out = v->t == JV_MACRO || v->t == JV_FUNC || v->t == JV_UNDEF || v->t == JV_LOOP;
        return jx_one_arg(c, "callable", a);
    case TS_SAMEAS: {
        if (!test_arg(c, "sameas", a, &o)) return false;
        /* identity: singletons and small ints are shared in CPython; other objects by reference */
        if (v->t != o.t) *out = false;
        else if (v->t == JV_NONE || v->t == JV_UNDEF) *out = v->t == JV_NONE || v->u == o.u;
        else if (v->t == JV_BOOL) *out = v->b == o.b;
        else if (v->t == JV_INT) *out = v->i == o.i && v->i >= -5 && v->i <= 256;
        else if (v->t == JV_STR) *out = v->s == o.s;
        else if (v->t == JV_SEQ) *out = v->q == o.q;
        else if (v->t == JV_DICT || v->t == JV_NS) *out = v->d == o.d;
        else *out = false;
        return true;
    }
    case TS_ESCAPED: *out = v->t == JV_STR && v->safe; return jx_one_arg(c, "escaped", a);
    case TS_IN: {
        static const char *const nm[] = {"seq"};
        jv defs[1] = {REQ};
        jv hay;
        if (!jf_bind(c, "in", nm, 1, defs, a, &hay)) return false;
        /* reuse the evaluator's "in" through a tiny compare */
        if (hay.t == JV_STR) {
            if (v->t != JV_STR)
                return jx_fail(c, SW_E_INVALID_ARG, "TypeError: 'in <string>' requires string as left operand, not %s",
                               jv_type_name(v));
            return jstr_contains(c, &hay, v, out);
        }
        if (hay.t == JV_DICT) {
            *out = jv_hashable(v) && jdict_get(hay.d, v) != NULL;
            return true;
        }
        const jv *items;
        size_t n;
        if (!jx_items(c, &hay, &items, &n)) return false;
        *out = false;
        for (size_t i = 0; i < n && !*out; i++)
            if (!jv_eq(c, v, &items[i], out)) return false;
        return true;
    }
    case TS_EQ1:
    case TS_EQ2:
    case TS_EQ3:
    case TS_NE1:
    case TS_NE2:
        if (!test_arg(c, k_tests[tid], a, &o) || !jv_eq(c, v, &o, out)) return false;
        if (tid == TS_NE1 || tid == TS_NE2) *out = !*out;
        return true;
    default:
        if (!test_arg(c, k_tests[tid], a, &o)) return false;
        {
            const char *sym = tid <= TS_GT3 ? ">" : tid <= TS_GE2 ? ">=" : tid <= TS_LT3 ? "<" : "<=";
            if (!jv_cmp(c, v, &o, &cm, sym)) return false;
            if (cm == 2) *out = false;
            else if (tid <= TS_GT3) *out = cm > 0;
            else if (tid <= TS_GE2) *out = cm >= 0;
            else if (tid <= TS_LT3) *out = cm < 0;
            else *out = cm <= 0;
        }
        return true;
    }
}

