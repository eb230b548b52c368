/* jinja_globals.c — what a chat template can call besides filters: the
 * globals (range as the sandbox has it, at most 100000 items; dict; namespace;
 * raise_exception and strftime_now as transformers defines them; joiner) and
 * the methods of lists, tuples, dicts and floats. String methods are in
 * jinja_str.c, the loop's in jinja_eval.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "jinja_impl.h"

#define MAX_RANGE 100000

static bool g_range(jctx *c, const jargs *a, jv *out) {
    if (a->nkw) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: range() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 3)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: range expected at most 3 arguments, got %zu", a->npos);
    int64_t v[3];
    for (size_t i = 0; i < a->npos; i++)
        if (!jx_want_int(c, &a->pos[i], "range", &v[i])) return false;
    int64_t start = a->npos == 1 ? 0 : v[0], stop = a->npos == 1 ? v[0] : v[1], step = a->npos == 3 ? v[2] : 1;
    if (step == 0) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: range() arg 3 must not be zero");
    __int128 span = step > 0 ? (__int128)stop - start : (__int128)start - stop;
    __int128 st = step > 0 ? step : -(__int128)step;
    __int128 n = span <= 0 ? 0 : (span + st - 1) / st;
    if (n > MAX_RANGE)
        return jx_fail(c, SW_E_RANGE, "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
                       MAX_RANGE);
    jseq *q = jseq_new(c, SQ_RANGE, (size_t)n);
    if (!q) return false;
    for (size_t i = 0; i < (size_t)n; i++) q->v[i] = jv_int(start + (int64_t)i * step);
    q->r_start = start;
    q->r_stop = stop;
    q->r_step = step;
    if (!jx_step(c, (uint64_t)n / 8)) return false;
    *out = jx_seq_val(q);
    return true;
}

/* dict(mapping-or-pairs, **kw) / namespace(...) */
static bool g_dict(jctx *c, const jargs *a, bool ns, jv *out) {
    if (a->npos > 1)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: dict expected at most 1 argument, got %zu", a->npos);
    jdict *d = jdict_new(c);
    if (!d) return false;
    if (a->npos == 1) {
        const jv *src = &a->pos[0];
        if (src->t == JV_DICT) {
            for (size_t i = 0; i < jdict_len(src->d); i++)
                if (!jdict_set(c, d, &src->d->e[i].k, &src->d->e[i].v)) return false;
        } else {
            if (src->t == JV_UNDEF) return jx_undef_fail(c, src);
            const jv *items;
            size_t n;
            if (!jx_items(c, src, &items, &n)) return false;
            for (size_t i = 0; i < n; i++) {
                const jv *kv;
                size_t m;
                if (items[i].t != JV_SEQ && items[i].t != JV_STR)
                    return jx_fail(c, SW_E_INVALID_ARG, "TypeError: cannot convert dictionary update sequence element #%zu to a sequence", i);
                if (!jx_items(c, &items[i], &kv, &m)) return false;
                if (m != 2)
                    return jx_fail(c, SW_E_INVALID_ARG, "ValueError: dictionary update sequence element #%zu has length %zu; 2 is required", i, m);
                if (!jdict_set(c, d, &kv[0], &kv[1])) return false;
            }
        }
    }
    for (size_t k = 0; k < a->nkw; k++) {
        jv key;
        if (!jv_str(c, a->kwn[k].s, a->kwn[k].n, &key) || !jdict_set(c, d, &key, &a->kwv[k])) return false;
    }
    jv v = {0};
    v.t = ns ? JV_NS : JV_DICT;
    v.d = d;
    *out = v;
    return true;
}

static bool g_strftime(jctx *c, const jargs *a, jv *out) {
    if (a->npos != 1 || a->nkw || a->pos[0].t != JV_STR)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: strftime_now() takes one string argument");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t t = tv.tv_sec;
    localtime_r(&t, &tm);
    /* %f (microseconds) is Python's own; the rest is C strftime */
    const jstr *f = a->pos[0].s;
    jbuf fmt = {0};
    for (size_t i = 0; i < f->len; i++) {
        if (f->s[i] == '%' && i + 1 < f->len && f->s[i + 1] == 'f') {
            if (!jb_printf(c, &fmt, "%06ld", (long)tv.tv_usec)) goto fail;
            i++;
        } else if (f->s[i] == '%' && i + 1 < f->len && f->s[i + 1] == '%') {
            if (!jb_put(c, &fmt, "%%", 2)) goto fail;
            i++;
        } else if (!jb_putc(c, &fmt, f->s[i])) {
            goto fail;
        }
    }
    size_t cap = fmt.len * 8 + 256;
    if (!jx_room(c, cap)) goto fail;
    char *buf = malloc(cap);
    if (!buf) {
        jx_fail(c, SW_E_NOMEM, "out of memory");
        goto fail;
    }
    size_t n = fmt.len ? strftime(buf, cap, fmt.p, &tm) : 0;
    bool ok = jv_str(c, buf, n, out);
    free(buf);
    free(fmt.p);
    return ok;
fail:
    free(fmt.p);
    return false;
}

static bool m_dict(jctx *c, const jv *self, const jname *m, const jargs *a, jv *out) {
    const jdict *d = self->d;
    if (m->n == 3 && !memcmp(m->s, "get", 3)) {
        if (a->nkw) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: get() takes no keyword arguments");
        if (a->npos < 1 || a->npos > 2)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: get expected at most 2 arguments, got %zu", a->npos);
        if (!jv_hashable(&a->pos[0]))
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unhashable type: '%s'", jv_type_name(&a->pos[0]));
        const jv *v = jdict_get(d, &a->pos[0]);
        *out = v ? *v : a->npos == 2 ? a->pos[1] : jv_none();
        return true;
    }
    if (a->npos || a->nkw)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %.*s() takes no arguments", (int)m->n, m->s);
    if (m->n == 5 && !memcmp(m->s, "items", 5)) return jx_dict_view(c, d, SQ_ITEMS, out);
    if (m->n == 4 && !memcmp(m->s, "keys", 4)) return jx_dict_view(c, d, SQ_KEYS, out);
    if (m->n == 6 && !memcmp(m->s, "values", 6)) return jx_dict_view(c, d, SQ_VALUES, out);
    if (m->n == 4 && !memcmp(m->s, "copy", 4)) {
        jargs ca = {.pos = self, .npos = 1};
        return g_dict(c, &ca, false, out);
    }
    return jx_fail(c, SW_E_UNSUPPORTED, "dict.%.*s() is not supported", (int)m->n, m->s);
}

static bool m_seq(jctx *c, const jv *self, const jname *m, const jargs *a, jv *out) {
    const jseq *q = self->q;
    if (a->nkw) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %.*s() takes no keyword arguments", (int)m->n, m->s);
    if (m->n == 4 && !memcmp(m->s, "copy", 4)) return jv_seq(c, SQ_LIST, q->v, q->n, out);
    if (a->npos < 1) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %.*s() takes at least 1 argument", (int)m->n, m->s);
    if (m->n == 5 && !memcmp(m->s, "count", 5)) {
        int64_t k = 0;
        for (size_t i = 0; i < q->n; i++) {
            bool e;
            if (!jv_eq(c, &q->v[i], &a->pos[0], &e)) return false;
            k += e;
        }
        *out = jv_int(k);
        return true;
    }
    /* index(x[, start[, end]]) */
    int64_t n = (int64_t)q->n, st = 0, en = n;
    if (a->npos > 1 && !jx_want_int(c, &a->pos[1], "index", &st)) return false;
    if (a->npos > 2 && !jx_want_int(c, &a->pos[2], "index", &en)) return false;
    if (st < 0) st = st + n < 0 ? 0 : st + n;
    if (en < 0) en = en + n < 0 ? 0 : en + n;
    if (en > n) en = n;
    for (int64_t i = st; i < en; i++) {
        bool e;
        if (!jv_eq(c, &q->v[i], &a->pos[0], &e)) return false;
        if (e) {
            *out = jv_int(i);
            return true;
        }
    }
    return jx_fail(c, SW_E_INVALID_ARG, "ValueError: value is not in %s", q->kind == SQ_TUPLE ? "tuple" : "list");
}

bool jf_call_builtin(jctx *c, const jfunc *f, const jargs *a, jv *out) {
    switch (f->kind) {
    case JB_RANGE: return g_range(c, a, out);
    case JB_DICT: return g_dict(c, a, false, out);
    case JB_NAMESPACE: return g_dict(c, a, true, out);
    case JB_RAISE: {
        jv msg = a->npos ? a->pos[0] : jv_undef();
        if (a->npos != 1 || a->nkw)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: raise_exception() takes 1 positional argument but %zu were given",
                           a->npos + a->nkw);
        jv s;
        if (!jv_to_str(c, &msg, &s)) return false;
        c->raised = true;
        return jx_fail(c, SW_E_INVALID_ARG, "%.*s", (int)s.s->len, s.s->s);
    }
    case JB_STRFTIME: return g_strftime(c, a, out);
    case JB_JOINER: {
        /* joiner(sep) returns a callable; the call gives "" first, sep afterwards */
        jfunc *j = ja_alloc(c->a, sizeof *j);
        if (!j) return jx_fail(c, SW_E_NOMEM, "out of memory");
        j->kind = JB_METHOD;
        j->name.s = "__joiner__";
        j->name.n = 10;
        if (a->npos) j->self = a->pos[0];
        else if (!jv_str(c, ", ", 2, &j->self)) return false;
        jv v = {0};
        v.t = JV_FUNC;
        v.fn = j;
        *out = v;
        return true;
    }
    case JB_METHOD: {
        const jv *self = &f->self;
        if (f->name.n == 10 && !memcmp(f->name.s, "__joiner__", 10)) {
            jfunc *mf = (jfunc *)f;
            if (mf->name.s[2] == 'j') { /* first call */
                mf->name.s = "__joined__";
                return jv_str(c, "", 0, out);
            }
            *out = *self;
            return true;
        }
        if (f->name.n == 10 && !memcmp(f->name.s, "__joined__", 10)) {
            *out = *self;
            return true;
        }
        if (self->t == JV_STR) return jstr_method(c, self, f->name.s, f->name.n, a, out);
        if (self->t == JV_DICT) return m_dict(c, self, &f->name, a, out);
        if (self->t == JV_SEQ) return m_seq(c, self, &f->name, a, out);
        if (self->t == JV_FLOAT) {
            *out = jv_bool(isfinite(self->f) && self->f == floor(self->f));
            return true;
        }
        return jx_fail(c, SW_E_UNSUPPORTED, "method %.*s is not supported", (int)f->name.n, f->name.s);
    }
    default:
        return jx_fail(c, SW_E_UNSUPPORTED, "%.*s() is not supported in chat templates", (int)f->name.n,
                       f->name.s);
    }
}
