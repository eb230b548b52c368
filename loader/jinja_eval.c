/* jinja_eval.c — the evaluator: statements and expressions over the AST with
 * jinja2's runtime semantics in the immutable sandbox.
 *
 * Scoping follows what jinja2's compiled code does: an if block shares its
 * frame; every for-loop iteration, macro call, caller, with block, set/filter
 * block body and {% generation %} body gets a fresh scope whose parent is the
 * scope it was written in (lexical, read live). Attribute and item lookups go
 * through the sandbox rules: Python attributes first for ".", items first for
 * "[]", a missing one is Undefined, methods that would mutate a list or dict
 * are an Undefined that raises SecurityError when used. */
#include "jinja_stb.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

#define MAX_FRAMES 3000

typedef enum { EX_OK = 0, EX_ERR, EX_BREAK, EX_CONTINUE } exres;

static bool eval(jctx *c, jscope *s, const jnode *n, jv *out);
static exres exec_body(jctx *c, jscope *s, jnode **body);

bool jx_fail(jctx *c, sw_status st, const char *fmt, ...) {
    if (!c->failed) {
        c->failed = true;
        c->st = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, sizeof c->msg, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool jx_step(jctx *c, uint64_t n) {
    if (c->failed) return false;
    c->steps += n;
    if (c->steps > c->lim->max_steps)
        return jx_fail(c, SW_E_RANGE, "template render exceeds %llu steps",
                       (unsigned long long)c->lim->max_steps);
    if (c->a->over)
        return jx_fail(c, SW_E_RANGE, "template render exceeds its memory bound (%zu bytes)",
                       c->a->limit);
    return true;
}

void jx_undef_message(const jv *u, char *buf, size_t cap) {
    const jundef *d = u->u;
    if (!d) {
        snprintf(buf, cap, "value is undefined");
        return;
    }
    if (d->hint) {
        snprintf(buf, cap, "%s", d->hint);
        return;
    }
    char nm[200] = "";
    if (d->name.t == JV_STR) {
        snprintf(nm, sizeof nm, "'%.*s'", (int)(d->name.s->len > 180 ? 180 : d->name.s->len),
                 d->name.s->s);
    } else if (d->name.t == JV_INT) {
        snprintf(nm, sizeof nm, "%lld", (long long)d->name.i);
    } else {
        snprintf(nm, sizeof nm, "%s", jv_type_name(&d->name));
    }
    if (!d->objtype)
        snprintf(buf, cap, "%s is undefined", nm);
    else if (d->name.t == JV_STR)
        snprintf(buf, cap, "'%s' has no attribute %s", d->objtype, nm);
    else
        snprintf(buf, cap, "%s has no element %s", d->objtype, nm);
}

bool jx_undef_fail(jctx *c, const jv *u) {
    char m[400];
    jx_undef_message(u, m, sizeof m);
    bool sec = u->u && u->u->exc == JU_SECURITY;
    return jx_fail(c, SW_E_INVALID_ARG, "%s: %s", sec ? "SecurityError" : "UndefinedError", m);
}

/* ---- scopes -------------------------------------------------------------------------- */

static jscope *scope_new(jctx *c, jscope *parent) {
    jscope *s = ja_alloc(c->a, sizeof *s);
    if (!s) {
        jx_fail(c, SW_E_NOMEM, "out of memory");
        return NULL;
    }
    s->parent = parent;
    return s;
}

static const jv *lookup(const jscope *s, const char *name, size_t n) {
    for (; s; s = s->parent) {
        for (uint32_t i = 0; i < s->n; i++)
            if (s->names[i].n == n && !memcmp(s->names[i].s, name, n)) return &s->vals[i];
        if (s->vars) {
            const jv *v = jdict_get_str(s->vars, name, n);
            if (v) return v;
        }
    }
    return NULL;
}

static bool scope_set(jctx *c, jscope *s, const char *name, size_t n, const jv *v) {
    for (uint32_t i = 0; i < s->n; i++)
        if (s->names[i].n == n && !memcmp(s->names[i].s, name, n)) {
            s->vals[i] = *v;
            return true;
        }
    if (s->vars) {
        jv *slot = jdict_get_str(s->vars, name, n);
        if (slot) {
            *slot = *v;
            return true;
        }
    }
    if (s->n < JSCOPE_INLINE) {
        s->names[s->n].s = name;
        s->names[s->n].n = n;
        s->vals[s->n++] = *v;
        return true;
    }
    if (!s->vars && !(s->vars = jdict_new(c))) return false;
    jv key;
    if (!jv_str(c, name, n, &key)) return false;
    return jdict_set(c, s->vars, &key, v);
}

/* ---- attributes and items --------------------------------------------------------------- */

static bool name_is(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    return n == k && memcmp(s, lit, k) == 0;
}

static bool in_list(const char *s, size_t n, const char *const *list) {
    for (size_t i = 0; list[i]; i++)
        if (name_is(s, n, list[i])) return true;
    return false;
}

static const char *const k_dict_safe[] = {"get", "items", "keys", "values", "copy", "fromkeys", NULL};
static const char *const k_dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const k_list_safe[] = {"copy", "count", "index", NULL};
static const char *const k_list_unsafe[] = {"append", "clear", "extend", "insert", "pop",
                                            "remove", "reverse", "sort", NULL};
static const char *const k_tuple_safe[] = {"count", "index", NULL};

static bool method(jctx *c, const jv *self, const char *name, size_t n, jv *out) {
    jfunc *f = ja_alloc(c->a, sizeof *f);
    if (!f) return jx_fail(c, SW_E_NOMEM, "out of memory");
    f->kind = JB_METHOD;
    f->self = *self;
    f->name.s = name;
    f->name.n = n;
    jv v = {0};
    v.t = JV_FUNC;
    v.fn = f;
    *out = v;
    return true;
}

static bool unsafe_attr(jctx *c, const jv *obj, const char *name, size_t n, jv *out) {
    char *hint = ja_alloc(c->a, n + 96);
    if (!hint) return jx_fail(c, SW_E_NOMEM, "out of memory");
    snprintf(hint, n + 96, "access to attribute '%.*s' of '%s' object is unsafe.", (int)n, name,
             jv_type_name(obj));
    jv key;
    if (!jv_str(c, name, n, &key)) return false;
    *out = jv_undef_attr(c, obj, &key, JU_SECURITY, hint);
    return true;
}

static bool is_dunder(const char *name, size_t n) {
    return n >= 4 && name[0] == '_' && name[1] == '_' && name[n - 1] == '_' && name[n - 2] == '_';
}

static bool loop_attr(jctx *c, const jv *obj, const char *name, size_t n, jv *out, bool *found);
static bool py_attr(jctx *c, const jv *obj, const char *name, size_t n, jv *out, bool *found);

/* Python attribute of obj, if it has one (*found). */
bool jx_pyattr(jctx *c, const jv *obj, const char *name, size_t n, jv *out, bool *found) {
    return py_attr(c, obj, name, n, out, found);
}

static bool py_attr(jctx *c, const jv *obj, const char *name, size_t n, jv *out, bool *found) {
    *found = true;
    if (is_dunder(name, n) && obj->t != JV_UNDEF) return unsafe_attr(c, obj, name, n, out);
    switch (obj->t) {
    case JV_DICT:
        if (in_list(name, n, k_dict_safe)) return method(c, obj, name, n, out);
        if (in_list(name, n, k_dict_unsafe)) return unsafe_attr(c, obj, name, n, out);
        break;
    case JV_STR:
        if (jstr_has_method(name, n)) return method(c, obj, name, n, out);
        break;
    case JV_SEQ:
        if (obj->q->kind == SQ_LIST) {
            if (in_list(name, n, k_list_safe)) return method(c, obj, name, n, out);
            if (in_list(name, n, k_list_unsafe)) return unsafe_attr(c, obj, name, n, out);
        } else if (obj->q->kind == SQ_TUPLE || obj->q->kind == SQ_RANGE) {
            if (in_list(name, n, k_tuple_safe)) return method(c, obj, name, n, out);
            if (obj->q->kind == SQ_RANGE) {
                int64_t v = name_is(name, n, "start") ? obj->q->r_start
                            : name_is(name, n, "stop") ? obj->q->r_stop
                            : name_is(name, n, "step") ? obj->q->r_step : INT64_MIN;
                if (v != INT64_MIN) {
                    *out = jv_int(v);
                    return true;
                }
            }
        }
        break;
    case JV_NS: {
        const jv *v = jdict_get_str(obj->d, name, n);
        if (v) {
            *out = *v;
            return true;
        }
        break;
    }
    case JV_LOOP: return loop_attr(c, obj, name, n, out, found);
    case JV_FLOAT:
        if (name_is(name, n, "real")) {
            *out = *obj;
            return true;
        }
        if (name_is(name, n, "imag")) {
            *out = jv_float(0);
            return true;
        }
        if (name_is(name, n, "is_integer")) return method(c, obj, name, n, out);
        break;
    case JV_INT:
    case JV_BOOL:
        if (name_is(name, n, "real") || name_is(name, n, "numerator")) {
            *out = jv_int(obj->t == JV_INT ? obj->i : obj->b);
            return true;
        }
        if (name_is(name, n, "imag")) {
            *out = jv_int(0);
            return true;
        }
        if (name_is(name, n, "denominator")) {
            *out = jv_int(1);
            return true;
        }
        break;
    default: break;
    }
    *found = false;
    return true;
}

/* obj[key] as Python does it, *found false on TypeError/LookupError. */
static bool py_item(jctx *c, const jv *obj, const jv *key, jv *out, bool *found) {
    *found = false;
    switch (obj->t) {
    case JV_DICT:
        if (jv_hashable(key)) {
            const jv *v = jdict_get(obj->d, key);
            if (v) {
                *out = *v;
                *found = true;
            }
        }
        return true;
    case JV_SEQ:
    case JV_STR: {
        if (key->t != JV_INT && key->t != JV_BOOL) return true;
        if (obj->t == JV_SEQ && (obj->q->kind != SQ_LIST && obj->q->kind != SQ_TUPLE &&
                                 obj->q->kind != SQ_RANGE))
            return true;
        int64_t i = key->t == JV_INT ? key->i : key->b;
        if (obj->t == JV_STR) return jstr_index(c, obj, i, out, found);
        int64_t n = (int64_t)obj->q->n;
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
            *out = obj->q->v[i];
            *found = true;
        }
        return true;
    }
    default: return true;
    }
}

bool jx_getattr(jctx *c, const jv *obj, const char *name, size_t n, jv *out) {
    if (!jx_step(c, 1)) return false;
    if (obj->t == JV_UNDEF) return jx_undef_fail(c, obj);
    bool found;
    if (!py_attr(c, obj, name, n, out, &found)) return false;
    if (found) return true;
    jv key;
    if (!jv_str(c, name, n, &key)) return false;
    if (!py_item(c, obj, &key, out, &found)) return false;
    if (!found) *out = jv_undef_attr(c, obj, &key, JU_UNDEFINED, NULL);
    return true;
}

static bool slice_item(jctx *c, const jv *obj, const jv *lo, const jv *hi, const jv *st, jv *out);

bool jx_getitem(jctx *c, const jv *obj, const jv *key, jv *out) {
    if (!jx_step(c, 1)) return false;
    if (obj->t == JV_UNDEF) return jx_undef_fail(c, obj);
    bool found;
    if (!py_item(c, obj, key, out, &found)) return false;
    if (found) return true;
    if (key->t == JV_STR) {
        if (!py_attr(c, obj, key->s->s, key->s->len, out, &found)) return false;
        if (found) return true;
    }
    *out = jv_undef_attr(c, obj, key, JU_UNDEFINED, NULL);
    return true;
}

/* ---- slices ------------------------------------------------------------------------------ */

static bool slice_bound(const jv *v, bool *ok, int64_t *out, bool *given) {
    *given = false;
    if (!v || v->t == JV_NONE) return true;
    if (v->t == JV_INT) *out = v->i;
    else if (v->t == JV_BOOL) *out = v->b;
    else *ok = false;
    *given = true;
    return true;
}

/* PySlice_AdjustIndices: normalised start/stop for length n and step. */
static size_t slice_adjust(int64_t n, int64_t *start, int64_t *stop, int64_t step, bool has_start,
                           bool has_stop) {
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    if (!has_start) *start = step < 0 ? hi : lo;
    else if (*start < 0) { *start += n; if (*start < lo) *start = lo; }
    else if (*start > hi) *start = hi;
    if (!has_stop) *stop = step < 0 ? lo : hi;
    else if (*stop < 0) { *stop += n; if (*stop < lo) *stop = lo; }
    else if (*stop > hi) *stop = hi;
    if (step < 0) return *stop < *start ? (size_t)((*start - *stop - 1) / (-step) + 1) : 0;
    return *start < *stop ? (size_t)((*stop - *start - 1) / step + 1) : 0;
}

static bool slice_item(jctx *c, const jv *obj, const jv *lo, const jv *hi, const jv *st, jv *out) {
    bool ok = true, hs, he, hst;
    int64_t start = 0, stop = 0, step = 1;
    slice_bound(lo, &ok, &start, &hs);
    slice_bound(hi, &ok, &stop, &he);
    slice_bound(st, &ok, &step, &hst);
    bool sliceable = obj->t == JV_STR ||
                     (obj->t == JV_SEQ && (obj->q->kind == SQ_LIST || obj->q->kind == SQ_TUPLE ||
                                           obj->q->kind == SQ_RANGE));
    if (!sliceable || !ok) {
        if (obj->t == JV_UNDEF) return jx_undef_fail(c, obj);
        jv key = jv_none();
        *out = jv_undef_attr(c, obj, &key, JU_UNDEFINED, "slice of an object that has none");
        return true;
    }
    if (step == 0) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: slice step cannot be zero");
    if (obj->t == JV_STR) {
        int64_t n = (int64_t)obj->s->ncp;
        size_t cnt = slice_adjust(n, &start, &stop, step, hs, he);
        (void)cnt;
        return jstr_slice(c, obj, start, stop, step, out);
    }
    const jseq *q = obj->q;
    size_t cnt = slice_adjust((int64_t)q->n, &start, &stop, step, hs, he);
    jseq *r = jseq_new(c, q->kind == SQ_TUPLE ? SQ_TUPLE : SQ_LIST, cnt);
    if (!r) return false;
    for (size_t k = 0; k < cnt; k++) r->v[k] = q->v[start + (int64_t)k * step];
    if (!jx_step(c, cnt / 8)) return false;
    jv v = {0};
    v.t = JV_SEQ;
    v.q = r;
    *out = v;
    return true;
}

/* ---- loop context ---------------------------------------------------------------------------- */

static bool loop_attr(jctx *c, const jv *obj, const char *name, size_t n, jv *out, bool *found) {
    const jloop *l = obj->lp;
    *found = true;
    int64_t len = (int64_t)l->n, i = (int64_t)l->i;
    if (name_is(name, n, "index")) *out = jv_int(i + 1);
    else if (name_is(name, n, "index0")) *out = jv_int(i);
    else if (name_is(name, n, "revindex")) *out = jv_int(len - i);
    else if (name_is(name, n, "revindex0")) *out = jv_int(len - i - 1);
    else if (name_is(name, n, "first")) *out = jv_bool(i == 0);
    else if (name_is(name, n, "last")) *out = jv_bool(i == len - 1);
    else if (name_is(name, n, "length")) *out = jv_int(len);
    else if (name_is(name, n, "depth")) *out = jv_int(l->depth0 + 1);
    else if (name_is(name, n, "depth0")) *out = jv_int(l->depth0);
    else if (name_is(name, n, "previtem"))
        *out = i > 0 ? l->items[i - 1] : jv_undef_hint(c, "there is no previous item");
    else if (name_is(name, n, "nextitem"))
        *out = i + 1 < len ? l->items[i + 1] : jv_undef_hint(c, "there is no next item");
    else if (name_is(name, n, "cycle") || name_is(name, n, "changed"))
        return method(c, obj, name, n, out);
    else *found = false;
    return true;
}

static bool loop_method(jctx *c, jloop *l, const jname *name, const jargs *a, jv *out) {
    if (name_is(name->s, name->n, "cycle")) {
        if (a->npos == 0) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: no items for cycling given");
        *out = a->pos[l->i % a->npos];
        return true;
    }
    /* changed(*values) */
    jv vals;
    if (!jv_seq(c, SQ_TUPLE, a->pos, a->npos, &vals)) return false;
    bool same = false;
    if (l->have_changed && !jv_eq(c, &l->last_changed, &vals, &same)) return false;
    if (!same) {
        l->last_changed = vals;
        l->have_changed = true;
    }
    *out = jv_bool(!same);
    return true;
}

/* ---- calls ----------------------------------------------------------------------------------- */

static bool call_macro(jctx *c, const jmacro *m, const jargs *a, jv *out);
static exres run_for(jctx *c, jscope *s, const jnode *n, const jv *iterable, int depth0, jv *out);

bool jx_call(jctx *c, const jv *fn, const jargs *a, jv *out) {
    if (!jx_step(c, 1)) return false;
    switch (fn->t) {
    case JV_UNDEF: return jx_undef_fail(c, fn);
    case JV_MACRO: return call_macro(c, fn->m, a, out);
    case JV_FUNC:
        if (fn->fn->kind == JB_METHOD && fn->fn->self.t == JV_LOOP)
            return loop_method(c, fn->fn->self.lp, &fn->fn->name, a, out);
        return jf_call_builtin(c, fn->fn, a, out);
    case JV_LOOP: {
        jloop *l = fn->lp;
        if (!(l->node->flags & JF_RECURSIVE))
            return jx_fail(c, SW_E_INVALID_ARG,
                           "TypeError: The loop must have the 'recursive' marker to be called "
                           "recursively.");
        if (a->npos != 1 || a->nkw)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: loop() takes exactly one argument");
        if (++c->depth > c->lim->max_depth)
            return jx_fail(c, SW_E_RANGE, "template recursion deeper than %d", c->lim->max_depth);
        exres r = run_for(c, l->scope, l->node, &a->pos[0], l->depth0 + 1, out);
        c->depth--;
        return r == EX_OK;
    }
    default:
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: '%s' object is not callable",
                       jv_type_name(fn));
    }
}

/* Run body into a fresh buffer; the text becomes *out. */
static bool capture(jctx *c, jscope *s, jnode **body, jv *out) {
    jbuf buf = {0};
    jbuf *saved = c->out;
    c->out = &buf;
    exres r = exec_body(c, s, body);
    c->out = saved;
    if (r != EX_OK) {
        free(buf.p);
        if (r == EX_BREAK || r == EX_CONTINUE)
            return jx_fail(c, SW_E_INVALID_ARG, "break/continue outside a loop");
        return false;
    }
    return jb_take(c, &buf, out);
}

/* jinja2's Macro.__call__: positional, then keywords by name, then defaults (evaluated
 * in the macro's scope), caller / kwargs / varargs when the body uses them. */
static bool call_macro(jctx *c, const jmacro *m, const jargs *a, jv *out) {
    const jnode *def = m->def;
    size_t np = (size_t)arrlen(def->names), nd = (size_t)arrlen(def->list2);
    char mname[80];
    snprintf(mname, sizeof mname, "%.*s", (int)(m->name.n > 60 ? 60 : m->name.n), m->name.s);
    if (++c->depth > c->lim->max_depth) {
        c->depth--;
        return jx_fail(c, SW_E_RANGE, "template recursion deeper than %d (macro '%s')",
                       c->lim->max_depth, mname);
    }
    jscope *s = scope_new(c, m->closure);
    bool ok = s != NULL;
    /* keyword arguments not consumed yet */
    bool *used = ok ? ja_alloc(c->a, (a->nkw ? a->nkw : 1) * sizeof *used) : NULL;
    if (ok && !used) ok = jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t p = 0; ok && p < np; p++) {
        const jname *pn = &def->names[p];
        jv v;
        bool have = false;
        if (p < a->npos) {
            v = a->pos[p];
            have = true;
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (!used[k] && a->kwn[k].n == pn->n && !memcmp(a->kwn[k].s, pn->s, pn->n)) {
                    v = a->kwv[k];
                    used[k] = true;
                    have = true;
                    break;
                }
        }
        if (!have) {
            size_t first_default = np - nd;
            if (p >= first_default) {
                ok = eval(c, s, def->list2[p - first_default], &v);
            } else {
                char *hint = ja_alloc(c->a, pn->n + 48);
                if (!hint) {
                    ok = jx_fail(c, SW_E_NOMEM, "out of memory");
                    break;
                }
                snprintf(hint, pn->n + 48, "parameter '%.*s' was not provided", (int)pn->n, pn->s);
                v = jv_undef_hint(c, hint);
            }
        }
        if (ok) ok = scope_set(c, s, pn->s, pn->n, &v);
    }
    /* JF_CALLER is only set when no parameter is named caller */
    if (ok && (def->flags & JF_CALLER)) {
        jv cv;
        bool have = false;
        for (size_t k = 0; !have && k < a->nkw; k++)
            if (!used[k] && name_is(a->kwn[k].s, a->kwn[k].n, "caller")) {
                cv = a->kwv[k];
                used[k] = have = true;
            }
        if (!have) cv = jv_undef_hint(c, "No caller defined");
        ok = scope_set(c, s, "caller", 6, &cv);
    }
    if (ok) {
        if (def->flags & JF_KWARGS) {
            jdict *kw = jdict_new(c);
            ok = kw != NULL;
            for (size_t k = 0; ok && k < a->nkw; k++) {
                if (used[k]) continue;
                jv key;
                ok = jv_str(c, a->kwn[k].s, a->kwn[k].n, &key) && jdict_set(c, kw, &key, &a->kwv[k]);
            }
            if (ok) {
                jv kv = {0};
                kv.t = JV_DICT;
                kv.d = kw;
                ok = scope_set(c, s, "kwargs", 6, &kv);
            }
        } else {
            for (size_t k = 0; ok && k < a->nkw; k++)
                if (!used[k]) {
                    if (name_is(a->kwn[k].s, a->kwn[k].n, "caller"))
                        ok = jx_fail(c, SW_E_INVALID_ARG,
                                     "TypeError: macro '%s' was invoked with two values for the "
                                     "special caller argument. This is most likely a bug.",
                                     mname);
                    else
                        ok = jx_fail(c, SW_E_INVALID_ARG,
                                     "TypeError: macro '%s' takes no keyword argument '%.*s'",
                                     mname, (int)a->kwn[k].n, a->kwn[k].s);
                }
        }
    }
    if (ok) {
        if (def->flags & JF_VARARGS) {
            jv va;
            size_t extra = a->npos > np ? a->npos - np : 0;
            ok = jv_seq(c, SQ_TUPLE, a->pos + (a->npos - extra), extra, &va) &&
                 scope_set(c, s, "varargs", 7, &va);
        } else if (a->npos > np) {
            ok = jx_fail(c, SW_E_INVALID_ARG,
                         "TypeError: macro '%s' takes not more than %zu argument(s)", mname, np);
        }
    }
    if (ok) ok = capture(c, s, def->list, out);
    c->depth--;
    return ok;
}

/* Evaluate call arguments: positional, keywords, *args, **kwargs. */
static bool eval_args(jctx *c, jscope *s, const jnode *n, jargs *a, const jv *extra_kw_val,
                      const char *extra_kw) {
    size_t np = (size_t)arrlen(n->list), nk = (size_t)arrlen(n->list2);
    jv dyn = jv_undef(), dynkw = jv_undef();
    if (n->c && !eval(c, s, n->c, &dyn)) return false;
    if (n->d && !eval(c, s, n->d, &dynkw)) return false;
    const jv *dyn_items = NULL;
    size_t ndyn = 0;
    jv *scratch;
    if (n->c && !jv_iter(c, &dyn, &dyn_items, &ndyn, &scratch)) return false;
    size_t ndk = 0;
    if (n->d) {
        if (dynkw.t != JV_DICT)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: argument after ** must be a mapping, not %s",
                           jv_type_name(&dynkw));
        ndk = jdict_len(dynkw.d);
    }
    size_t tot_pos = np + ndyn, tot_kw = nk + ndk + (extra_kw ? 1 : 0);
    jv *pos = ja_alloc(c->a, (tot_pos ? tot_pos : 1) * sizeof *pos);
    jv *kwv = ja_alloc(c->a, (tot_kw ? tot_kw : 1) * sizeof *kwv);
    jname *kwn = ja_alloc(c->a, (tot_kw ? tot_kw : 1) * sizeof *kwn);
    if (!pos || !kwv || !kwn) return jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < np; i++)
        if (!eval(c, s, n->list[i], &pos[i])) return false;
    for (size_t i = 0; i < ndyn; i++) pos[np + i] = dyn_items[i];
    for (size_t i = 0; i < nk; i++) {
        kwn[i] = n->names[i];
        if (!eval(c, s, n->list2[i], &kwv[i])) return false;
    }
    for (size_t i = 0; i < ndk; i++) {
        const jv *k = &dynkw.d->e[i].k;
        if (k->t != JV_STR) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: keywords must be strings");
        kwn[nk + i].s = k->s->s;
        kwn[nk + i].n = k->s->len;
        kwv[nk + i] = dynkw.d->e[i].v;
    }
    if (extra_kw) {
        kwn[tot_kw - 1].s = extra_kw;
        kwn[tot_kw - 1].n = strlen(extra_kw);
        kwv[tot_kw - 1] = *extra_kw_val;
    }
    /* duplicate keywords are a TypeError in Python */
    for (size_t i = 0; i < tot_kw; i++)
        for (size_t j = i + 1; j < tot_kw; j++)
            if (kwn[i].n == kwn[j].n && !memcmp(kwn[i].s, kwn[j].s, kwn[i].n))
                return jx_fail(c, SW_E_INVALID_ARG, "TypeError: got multiple values for keyword argument '%.*s'",
                               (int)kwn[i].n, kwn[i].s);
    a->pos = pos;
    a->npos = tot_pos;
    a->kwn = kwn;
    a->kwv = kwv;
    a->nkw = tot_kw;
    return true;
}

/* ---- operators ------------------------------------------------------------------------------- */

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static double as_f(const jv *v) {
    return v->t == JV_FLOAT ? v->f : v->t == JV_INT ? (double)v->i : (double)v->b;
}
static int64_t as_i(const jv *v) { return v->t == JV_INT ? v->i : (int64_t)v->b; }

static const char *op_sym(int op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "** or pow()";
    default: return "?";
    }
}

static bool type_err(jctx *c, int op, const jv *a, const jv *b) {
    if (op == OP_ADD && a->t == JV_STR)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: can only concatenate str (not \"%s\") to str",
                       jv_type_name(b));
    if (op == OP_ADD && a->t == JV_SEQ && a->q->kind == SQ_LIST)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: can only concatenate list (not \"%s\") to list",
                       jv_type_name(b));
    return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'",
                   op_sym(op), jv_type_name(a), jv_type_name(b));
}

static bool int_pow(jctx *c, int64_t b, int64_t e, jv *out) {
    if (e < 0) {
        if (b == 0) return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
        *out = jv_float(pow((double)b, (double)e));
        return true;
    }
    int64_t r = 1, x = b;
    while (e > 0) {
        if (e & 1 && __builtin_mul_overflow(r, x, &r))
            return jx_fail(c, SW_E_RANGE, "integer overflow in **");
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(x, x, &x))
            return jx_fail(c, SW_E_RANGE, "integer overflow in **");
    }
    *out = jv_int(r);
    return true;
}

static bool seq_repeat(jctx *c, const jv *seq, int64_t k, jv *out) {
    size_t n = seq->q->n;
    if (k < 0) k = 0;
    uint64_t tot;
    if (!sw_mul_u64(n, (uint64_t)k, &tot) || !jx_room(c, tot * sizeof(jv)))
        return jx_fail(c, SW_E_RANGE, "sequence repetition exceeds the memory bound");
    jseq *q = jseq_new(c, seq->q->kind == SQ_TUPLE ? SQ_TUPLE : SQ_LIST, (size_t)tot);
    if (!q) return false;
    for (size_t i = 0; i < (size_t)tot; i++) q->v[i] = seq->q->v[i % n];
    if (!jx_step(c, tot / 8)) return false;
    jv v = {0};
    v.t = JV_SEQ;
    v.q = q;
    *out = v;
    return true;
}

static bool binop(jctx *c, int op, const jv *a, const jv *b, jv *out) {
    if (a->t == JV_UNDEF) return jx_undef_fail(c, a);
    if (b->t == JV_UNDEF) return jx_undef_fail(c, b);
    if (is_num(a) && is_num(b)) {
        bool fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        if (op == OP_DIV) {
            double y = as_f(b);
            if (y == 0) return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: division by zero");
            *out = jv_float(as_f(a) / y);
            return true;
        }
        if (fl) {
            double x = as_f(a), y = as_f(b), r;
            switch (op) {
            case OP_ADD: r = x + y; break;
            case OP_SUB: r = x - y; break;
            case OP_MUL: r = x * y; break;
            case OP_FLOORDIV:
            case OP_MOD: {
                if (y == 0)
                    return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: float %s",
                                   op == OP_MOD ? "modulo" : "floor division by zero");
                double m = fmod(x, y);
                if (m != 0 && ((y < 0) != (m < 0))) m += y;
                if (op == OP_MOD) {
                    r = m == 0 ? copysign(0.0, y) : m;
                } else {
                    double d = (x - m) / y;
                    double fd = floor(d);
                    if (d - fd > 0.5) fd += 1;
                    r = d == 0 ? copysign(0.0, x / y) : fd;
                }
                break;
            }
            case OP_POW:
                if (x == 0 && y < 0)
                    return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
                if (x < 0 && y != floor(y))
                    return jx_fail(c, SW_E_INVALID_ARG, "ValueError: complex results are not supported");
                r = pow(x, y);
                break;
            default: return type_err(c, op, a, b);
            }
            *out = jv_float(r);
            return true;
        }
        int64_t x = as_i(a), y = as_i(b), r;
        switch (op) {
        case OP_ADD:
            if (__builtin_add_overflow(x, y, &r)) return jx_fail(c, SW_E_RANGE, "integer overflow");
            break;
        case OP_SUB:
            if (__builtin_sub_overflow(x, y, &r)) return jx_fail(c, SW_E_RANGE, "integer overflow");
            break;
        case OP_MUL:
            if (__builtin_mul_overflow(x, y, &r)) return jx_fail(c, SW_E_RANGE, "integer overflow");
            break;
        case OP_FLOORDIV:
        case OP_MOD: {
            if (y == 0)
                return jx_fail(c, SW_E_INVALID_ARG, "ZeroDivisionError: integer %s by zero",
                               op == OP_MOD ? "modulo" : "division");
            if (x == INT64_MIN && y == -1) return jx_fail(c, SW_E_RANGE, "integer overflow");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q -= 1;
                m += y;
            }
            r = op == OP_MOD ? m : q;
            break;
        }
        case OP_POW: return int_pow(c, x, y, out);
        default: return type_err(c, op, a, b);
        }
        *out = jv_int(r);
        return true;
    }
    if (op == OP_ADD) {
        if (a->t == JV_STR && b->t == JV_STR) return jstr_concat(c, a, b, out);
        if (a->t == JV_SEQ && b->t == JV_SEQ && a->q->kind == b->q->kind &&
            (a->q->kind == SQ_LIST || a->q->kind == SQ_TUPLE)) {
            size_t n = a->q->n + b->q->n;
            if (!jx_room(c, n * sizeof(jv))) return false;
            jseq *q = jseq_new(c, a->q->kind, n);
            if (!q) return false;
            if (a->q->n) memcpy(q->v, a->q->v, a->q->n * sizeof(jv));
            if (b->q->n) memcpy(q->v + a->q->n, b->q->v, b->q->n * sizeof(jv));
            if (!jx_step(c, n / 8)) return false;
            jv v = {0};
            v.t = JV_SEQ;
            v.q = q;
            *out = v;
            return true;
        }
        return type_err(c, op, a, b);
    }
    if (op == OP_MUL) {
        const jv *seq = NULL, *k = NULL;
        if ((a->t == JV_STR || a->t == JV_SEQ) && (b->t == JV_INT || b->t == JV_BOOL)) seq = a, k = b;
        else if ((b->t == JV_STR || b->t == JV_SEQ) && (a->t == JV_INT || a->t == JV_BOOL)) seq = b, k = a;
        if (seq && seq->t == JV_STR) return jstr_repeat(c, seq, as_i(k), out);
        if (seq && (seq->q->kind == SQ_LIST || seq->q->kind == SQ_TUPLE))
            return seq_repeat(c, seq, as_i(k), out);
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: can't multiply sequence by non-int of type '%s'",
                       jv_type_name(b));
    }
    if (op == OP_MOD && a->t == JV_STR) return jstr_percent(c, a, b, out);
    return type_err(c, op, a, b);
}

static bool contains(jctx *c, const jv *needle, const jv *hay, bool *in) {
    *in = false;
    switch (hay->t) {
    case JV_STR:
        if (needle->t == JV_UNDEF) return jx_undef_fail(c, needle);
        if (needle->t != JV_STR)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: 'in <string>' requires string as left operand, not %s",
                           jv_type_name(needle));
        return jstr_contains(c, hay, needle, in);
    case JV_DICT:
        if (!jv_hashable(needle))
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unhashable type: '%s'", jv_type_name(needle));
        *in = jdict_get(hay->d, needle) != NULL;
        return true;
    case JV_UNDEF: return true;
    case JV_SEQ: {
        const jv *items;
        size_t n;
        jv *scratch;
        if (!jv_iter(c, hay, &items, &n, &scratch)) return false;
        for (size_t i = 0; i < n; i++) {
            bool e;
            if (!jv_eq(c, needle, &items[i], &e)) return false;
            if (e) {
                *in = true;
                if (hay->q->kind == SQ_ITER) hay->q->pos = (size_t)(&items[i] - hay->q->v) + 1;
                return true;
            }
        }
        return true;
    }
    default:
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: argument of type '%s' is not iterable",
                       jv_type_name(hay));
    }
}

static bool compare(jctx *c, jscope *s, const jnode *n, jv *out) {
    jv left;
    if (!eval(c, s, n->a, &left)) return false;
    for (size_t i = 0; i < (size_t)arrlen(n->list); i++) {
        const jnode *o = n->list[i];
        jv right;
        if (!eval(c, s, o->a, &right)) return false;
        bool r;
        switch (o->op) {
        case OP_EQ:
        case OP_NE:
            if (!jv_eq(c, &left, &right, &r)) return false;
            if (o->op == OP_NE) r = !r;
            break;
        case OP_IN:
        case OP_NOTIN:
            if (!contains(c, &left, &right, &r)) return false;
            if (o->op == OP_NOTIN) r = !r;
            break;
        default: {
            static const char *const sym[] = {[OP_LT] = "<", [OP_LTEQ] = "<=", [OP_GT] = ">",
                                               [OP_GTEQ] = ">="};
            int cm;
            if (!jv_cmp(c, &left, &right, &cm, sym[o->op])) return false;
            if (cm == 2) r = false; /* NaN */
            else r = o->op == OP_LT ? cm < 0 : o->op == OP_LTEQ ? cm <= 0 : o->op == OP_GT ? cm > 0
                                                                                          : cm >= 0;
        }
        }
        if (!r) {
            *out = jv_bool(false);
            return true;
        }
        left = right;
    }
    *out = jv_bool(true);
    return true;
}

/* ---- expressions ------------------------------------------------------------------------------ */

static bool eval_filter(jctx *c, jscope *s, const jnode *n, jv *out) {
    jv self;
    if (n->a) {
        if (!eval(c, s, n->a, &self)) return false;
    } else {
        self = c->filter_input;
    }
    jargs a;
    if (!eval_args(c, s, n, &a, NULL, NULL)) return false;
    if (n->fid < 0)
        return jx_fail(c, SW_E_INVALID_ARG, "TemplateRuntimeError: No filter named '%.*s' found.",
                       (int)n->name.n, n->name.s);
    return jx_filter(c, n->fid, &self, &a, out);
}

static bool eval_test(jctx *c, jscope *s, const jnode *n, jv *out) {
    jv self;
    if (!eval(c, s, n->a, &self)) return false;
    jargs a;
    if (!eval_args(c, s, n, &a, NULL, NULL)) return false;
    if (n->fid < 0)
        return jx_fail(c, SW_E_INVALID_ARG, "TemplateRuntimeError: No test named '%.*s' found.",
                       (int)n->name.n, n->name.s);
    bool r;
    if (!jx_test(c, n->fid, &self, &a, &r)) return false;
    *out = jv_bool(r);
    return true;
}

bool jx_filter(jctx *c, int fid, const jv *self, const jargs *a, jv *out) {
    if (++c->depth > c->lim->max_depth) {
        c->depth--;
        return jx_fail(c, SW_E_RANGE, "template recursion deeper than %d", c->lim->max_depth);
    }
    bool ok = jf_call_filter(c, fid, self, a, out);
    c->depth--;
    return ok;
}

bool jx_test(jctx *c, int fid, const jv *self, const jargs *a, bool *out) {
    return jf_call_test(c, fid, self, a, out);
}

static bool eval_items(jctx *c, jscope *s, jnode **list, uint8_t kind, jv *out) {
    size_t n = (size_t)arrlen(list);
    jseq *q = jseq_new(c, kind, n);
    if (!q) return false;
    for (size_t i = 0; i < n; i++)
        if (!eval(c, s, list[i], &q->v[i])) return false;
    jv v = {0};
    v.t = JV_SEQ;
    v.q = q;
    *out = v;
    return true;
}

static bool eval_inner(jctx *c, jscope *s, const jnode *n, jv *out) {
    switch (n->kind) {
    case N_CONST: *out = n->value; return true;
    case N_NAME: {
        const jv *v = lookup(s, n->name.s, n->name.n);
        *out = v ? *v : jv_undef_name(c, n->name.s, n->name.n);
        return true;
    }
    case N_GETATTR: {
        jv obj;
        return eval(c, s, n->a, &obj) && jx_getattr(c, &obj, n->name.s, n->name.n, out);
    }
    case N_GETITEM: {
        jv obj;
        if (!eval(c, s, n->a, &obj)) return false;
        if (n->b->kind == N_SLICE) {
            jv b[3];
            const jnode *parts[3] = {n->b->a, n->b->b, n->b->c};
            for (int k = 0; k < 3; k++) {
                b[k] = jv_none();
                if (parts[k] && !eval(c, s, parts[k], &b[k])) return false;
            }
            return slice_item(c, &obj, &b[0], &b[1], &b[2], out);
        }
        jv key;
        return eval(c, s, n->b, &key) && jx_getitem(c, &obj, &key, out);
    }
    case N_CALL: {
        jv fn;
        jargs a;
        return eval(c, s, n->a, &fn) && eval_args(c, s, n, &a, NULL, NULL) && jx_call(c, &fn, &a, out);
    }
    case N_FILTER: return eval_filter(c, s, n, out);
    case N_TEST: return eval_test(c, s, n, out);
    case N_BINOP: {
        jv a, b;
        return eval(c, s, n->a, &a) && eval(c, s, n->b, &b) && binop(c, n->op, &a, &b, out);
    }
    case N_CONCAT: {
        /* str_join: str() of each operand, left to right; appending to the
         * first keeps x = x ~ y linear */
        jv acc;
        for (size_t i = 0; i < (size_t)arrlen(n->list); i++) {
            jv v, t;
            if (!eval(c, s, n->list[i], &v) || !jv_to_str(c, &v, &t)) return false;
            if (i == 0) acc = t;
            else if (!jstr_append(c, acc.s, t.s->s, t.s->len, false, &acc)) return false;
        }
        acc.safe = false;
        *out = acc;
        return true;
    }
    case N_COMPARE: return compare(c, s, n, out);
    case N_AND:
    case N_OR: {
        jv a;
        if (!eval(c, s, n->a, &a)) return false;
        bool t = jv_truthy(&a);
        if ((n->kind == N_AND) != t) {
            *out = a;
            return true;
        }
        return eval(c, s, n->b, out);
    }
    case N_NOT: {
        jv a;
        if (!eval(c, s, n->a, &a)) return false;
        *out = jv_bool(!jv_truthy(&a));
        return true;
    }
    case N_NEG:
    case N_POS: {
        jv a;
        if (!eval(c, s, n->a, &a)) return false;
        if (a.t == JV_UNDEF) return jx_undef_fail(c, &a);
        if (a.t == JV_FLOAT) *out = jv_float(n->kind == N_NEG ? -a.f : a.f);
        else if (a.t == JV_INT || a.t == JV_BOOL) {
            int64_t v = as_i(&a);
            if (n->kind == N_NEG && v == INT64_MIN) return jx_fail(c, SW_E_RANGE, "integer overflow");
            *out = jv_int(n->kind == N_NEG ? -v : v);
        } else {
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: bad operand type for unary %c: '%s'",
                           n->kind == N_NEG ? '-' : '+', jv_type_name(&a));
        }
        return true;
    }
    case N_CONDEXPR: {
        jv t;
        if (!eval(c, s, n->a, &t)) return false;
        if (jv_truthy(&t)) return eval(c, s, n->b, out);
        if (n->c) return eval(c, s, n->c, out);
        *out = jv_undef_hint(c, "the inline if-expression evaluated to false and no else section "
                                "was defined.");
        return true;
    }
    case N_LIST: return eval_items(c, s, n->list, SQ_LIST, out);
    case N_TUPLE: return eval_items(c, s, n->list, SQ_TUPLE, out);
    case N_DICT: {
        jdict *d = jdict_new(c);
        if (!d) return false;
        for (size_t i = 0; i < (size_t)arrlen(n->list); i++) {
            jv k, v;
            if (!eval(c, s, n->list[i]->a, &k) || !eval(c, s, n->list[i]->b, &v) ||
                !jdict_set(c, d, &k, &v))
                return false;
        }
        jv r = {0};
        r.t = JV_DICT;
        r.d = d;
        *out = r;
        return true;
    }
    default: return jx_fail(c, SW_E_INTERNAL, "line %d: cannot evaluate node kind %d", n->line, n->kind);
    }
}

static bool eval(jctx *c, jscope *s, const jnode *n, jv *out) {
    if (!jx_step(c, 1)) return false;
    if (++c->frames > MAX_FRAMES) {
        c->frames--;
        return jx_fail(c, SW_E_RANGE, "template evaluation nested too deeply");
    }
    bool ok = eval_inner(c, s, n, out);
    c->frames--;
    if (!ok && !c->failed) jx_fail(c, SW_E_INTERNAL, "line %d: evaluation failed", n->line);
    if (!ok && c->msg[0] && !c->raised && !strstr(c->msg, "(line ")) {
        /* the first (innermost) line number that failed */
        size_t l = strlen(c->msg);
        snprintf(c->msg + l, sizeof c->msg - l, " (line %d)", n->line);
    }
    return ok;
}

/* ---- statements -------------------------------------------------------------------------------- */

static bool assign(jctx *c, jscope *s, const jnode *target, const jv *v) {
    if (target->kind == N_NAME) return scope_set(c, s, target->name.s, target->name.n, v);
    if (target->kind == N_NSREF) {
        const jv *ns = lookup(s, target->name.s, target->name.n);
        if (!ns || ns->t != JV_NS)
            return jx_fail(c, SW_E_INVALID_ARG,
                           "TemplateRuntimeError: cannot assign attribute on non-namespace object");
        jv key;
        return jv_str(c, target->attr.s, target->attr.n, &key) && jdict_set(c, ns->d, &key, v);
    }
    /* tuple unpacking */
    const jv *items;
    size_t n, want = (size_t)arrlen(target->list);
    jv *scratch;
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    if (v->t != JV_SEQ && v->t != JV_STR && v->t != JV_DICT)
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: cannot unpack non-iterable %s object",
                       jv_type_name(v));
    if (!jv_iter(c, v, &items, &n, &scratch)) return false;
    if (n < want)
        return jx_fail(c, SW_E_INVALID_ARG, "ValueError: not enough values to unpack (expected %zu, got %zu)",
                       want, n);
    if (n > want)
        return jx_fail(c, SW_E_INVALID_ARG, "ValueError: too many values to unpack (expected %zu)", want);
    for (size_t i = 0; i < want; i++)
        if (!assign(c, s, target->list[i], &items[i])) return false;
    return true;
}

/* Apply the filter chain f (innermost operand NULL) to text. */
static bool apply_filters(jctx *c, jscope *s, const jnode *f, const jv *text, jv *out) {
    jv saved = c->filter_input;
    c->filter_input = *text;
    bool ok = eval(c, s, f, out);
    c->filter_input = saved;
    return ok;
}

static bool write_value(jctx *c, const jv *v) { return jv_str_to(c, c->out, v); }

static exres run_for(jctx *c, jscope *s, const jnode *n, const jv *iterable, int depth0, jv *out) {
    const jv *items;
    size_t cnt;
    jv *scratch;
    if (!jv_iter(c, iterable, &items, &cnt, &scratch)) return EX_ERR;
    /* a filter ("for x in xs if cond") selects items up front */
    if (n->c) {
        jv *kept = ja_alloc(c->a, (cnt ? cnt : 1) * sizeof *kept);
        if (!kept) return jx_fail(c, SW_E_NOMEM, "out of memory"), EX_ERR;
        size_t k = 0;
        jscope *ts = NULL;
        for (size_t i = 0; i < cnt; i++) {
            if (!ts || !(n->flags & JF_NOCLOSURE)) ts = scope_new(c, s);
            else ts->n = 0, ts->vars = NULL;
            jv t;
            if (!ts || !assign(c, ts, n->a, &items[i]) || !eval(c, ts, n->c, &t)) return EX_ERR;
            if (jv_truthy(&t)) kept[k++] = items[i];
        }
        items = kept;
        cnt = k;
    }
    jbuf buf = {0};
    jbuf *saved = c->out;
    if (out) c->out = &buf; /* loop(...) in a recursive loop returns its text */
    jloop *lp = ja_alloc(c->a, sizeof *lp);
    exres r = EX_OK;
    if (!lp) {
        jx_fail(c, SW_E_NOMEM, "out of memory");
        r = EX_ERR;
    } else {
        lp->items = items;
        lp->n = cnt;
        lp->depth0 = depth0;
        lp->node = n;
        lp->scope = s;
        jv lv = {0};
        lv.t = JV_LOOP;
        lv.lp = lp;
        jscope *it = NULL;
        for (size_t i = 0; i < cnt && r == EX_OK; i++) {
            lp->i = i;
            /* a fresh scope per iteration; one reused when nothing can keep it */
            if (!it || !(n->flags & JF_NOCLOSURE)) it = scope_new(c, s);
            else it->n = 0, it->vars = NULL;
            if (!it || !scope_set(c, it, "loop", 4, &lv) || !assign(c, it, n->a, &items[i])) {
                r = EX_ERR;
                break;
            }
            r = exec_body(c, it, n->list);
            if (r == EX_CONTINUE) r = EX_OK;
            else if (r == EX_BREAK) {
                r = EX_OK;
                break;
            }
        }
        if (r == EX_OK && cnt == 0 && n->list2) {
            jscope *es = scope_new(c, s);
            r = es ? exec_body(c, es, n->list2) : EX_ERR;
        }
    }
    c->out = saved;
    if (out) {
        if (r == EX_OK && !jb_take(c, &buf, out)) r = EX_ERR;
        free(buf.p);
    }
    return r;
}

static exres exec_stmt(jctx *c, jscope *s, const jnode *n) {
    if (!jx_step(c, 1)) return EX_ERR;
    switch (n->kind) {
    case N_DATA: return jb_put(c, c->out, n->value.s->s, n->value.s->len) ? EX_OK : EX_ERR;
    case N_PRINT: {
        if (n->flags & 1) {
            for (size_t i = 0; i < (size_t)arrlen(n->list); i++) {
                jv v;
                if (!eval(c, s, n->list[i], &v) || !write_value(c, &v)) return EX_ERR;
            }
            return EX_OK;
        }
        jv v;
        return eval(c, s, n->a, &v) && write_value(c, &v) ? EX_OK : EX_ERR;
    }
    case N_IF: {
        jv t;
        if (!eval(c, s, n->a, &t)) return EX_ERR;
        return exec_body(c, s, jv_truthy(&t) ? n->list : n->list2);
    }
    case N_FOR: {
        jv it;
        if (!eval(c, s, n->b, &it)) return EX_ERR;
        return run_for(c, s, n, &it, 0, NULL);
    }
    case N_SET: {
        jv v;
        return eval(c, s, n->b, &v) && assign(c, s, n->a, &v) ? EX_OK : EX_ERR;
    }
    case N_SETBLOCK: {
        jv text, v;
        jscope *bs = scope_new(c, s);
        if (!bs || !capture(c, bs, n->list, &text)) return EX_ERR;
        if (n->b) {
            if (!apply_filters(c, bs, n->b, &text, &v)) return EX_ERR;
        } else {
            v = text;
        }
        return assign(c, s, n->a, &v) ? EX_OK : EX_ERR;
    }
    case N_MACRO: {
        jmacro *m = ja_alloc(c->a, sizeof *m);
        if (!m) return jx_fail(c, SW_E_NOMEM, "out of memory"), EX_ERR;
        m->def = n;
        m->closure = s;
        m->name = n->name;
        jv v = {0};
        v.t = JV_MACRO;
        v.m = m;
        return scope_set(c, s, n->name.s, n->name.n, &v) ? EX_OK : EX_ERR;
    }
    case N_CALLBLOCK: {
        jmacro *m = ja_alloc(c->a, sizeof *m);
        if (!m) return jx_fail(c, SW_E_NOMEM, "out of memory"), EX_ERR;
        m->def = n;
        m->closure = s;
        m->name.s = "caller";
        m->name.n = 6;
        jv cv = {0};
        cv.t = JV_MACRO;
        cv.m = m;
        const jnode *call = n->a;
        jv fn, r;
        jargs a;
        /* caller goes in as a keyword argument, as jinja2 passes it */
        if (!eval(c, s, call->a, &fn) || !eval_args(c, s, call, &a, &cv, "caller") ||
            !jx_call(c, &fn, &a, &r))
            return EX_ERR;
        return write_value(c, &r) ? EX_OK : EX_ERR;
    }
    case N_FILTERBLOCK: {
        jv text, v;
        jscope *bs = scope_new(c, s);
        if (!bs || !capture(c, bs, n->list, &text) || !apply_filters(c, bs, n->b, &text, &v))
            return EX_ERR;
        return write_value(c, &v) ? EX_OK : EX_ERR;
    }
    case N_WITH: {
        size_t k = (size_t)arrlen(n->list2);
        jv *vals = ja_alloc(c->a, (k ? k : 1) * sizeof *vals);
        if (!vals) return jx_fail(c, SW_E_NOMEM, "out of memory"), EX_ERR;
        for (size_t i = 0; i < k; i++)
            if (!eval(c, s, n->list3[i], &vals[i])) return EX_ERR;
        jscope *ws = scope_new(c, s);
        if (!ws) return EX_ERR;
        for (size_t i = 0; i < k; i++)
            if (!assign(c, ws, n->list2[i], &vals[i])) return EX_ERR;
        return exec_body(c, ws, n->list);
    }
    case N_BREAK: return EX_BREAK;
    case N_CONTINUE: return EX_CONTINUE;
    case N_GENERATION: {
        jv text;
        jscope *gs = scope_new(c, s);
        return gs && capture(c, gs, n->list, &text) && write_value(c, &text) ? EX_OK : EX_ERR;
    }
    case N_RAISE:
        return jx_fail(c, SW_E_INVALID_ARG, "line %d: %.*s", n->line, (int)n->name.n, n->name.s),
               EX_ERR;
    default: return jx_fail(c, SW_E_INTERNAL, "line %d: cannot run node kind %d", n->line, n->kind), EX_ERR;
    }
}

static exres exec_body(jctx *c, jscope *s, jnode **body) {
    if (++c->frames > MAX_FRAMES) {
        c->frames--;
        jx_fail(c, SW_E_RANGE, "template evaluation nested too deeply");
        return EX_ERR;
    }
    exres r = EX_OK;
    for (size_t i = 0; i < (size_t)arrlen(body) && r == EX_OK; i++) r = exec_stmt(c, s, body[i]);
    c->frames--;
    return r;
}

/* Entry point for jinja.c: run the template body with the root scope. */
bool jx_run(jctx *c, jscope *root, jnode **body) {
    exres r = exec_body(c, root, body);
    if (r == EX_BREAK || r == EX_CONTINUE)
        return jx_fail(c, SW_E_INVALID_ARG, "break/continue outside a loop");
    return r == EX_OK;
}
