/* jinja.c — the public face of the Jinja interpreter: parsing a template,
 * building the variables of a render, and running one render within its
 * limits (see jinja.h). */
#include "jinja_stb.h"
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

struct sw_jinja_vars {
    jarena arena;
    jdict *d;
};

sw_status sw_jinja_parse(const char *src, size_t len, sw_jinja_tmpl **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_jinja_parse: out is NULL");
    *out = NULL;
    if (!src && len) return sw_err_set(err, SW_E_INVALID_ARG, "sw_jinja_parse: NULL source");
    sw_jinja_tmpl *t = calloc(1, sizeof *t);
    if (!t) return sw_err_set(err, SW_E_NOMEM, "template: out of memory");
    size_t n;
    t->source = jlex_normalize(src ? src : "", len, &n);
    if (!t->source) {
        free(t);
        return sw_err_set(err, SW_E_NOMEM, "template: out of memory");
    }
    jtok *toks = NULL;
    sw_status st = jlex(&t->arena, t->source, n, &toks, err);
    if (st == SW_OK) st = jparse(t, toks, (size_t)arrlen(toks), err);
    arrfree(toks);
    if (st != SW_OK) {
        sw_jinja_free(t);
        return st;
    }
    *out = t;
    return SW_OK;
}

void sw_jinja_free(sw_jinja_tmpl *t) {
    if (!t) return;
    ja_free_all(&t->arena);
    free(t->source);
    free(t);
}

sw_status sw_jinja_vars_create(sw_jinja_vars **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_jinja_vars_create: out is NULL");
    sw_jinja_vars *v = calloc(1, sizeof *v);
    if (!v || !(v->d = jdict_new_a(&v->arena))) {
        if (v) ja_free_all(&v->arena);
        free(v);
        return sw_err_set(err, SW_E_NOMEM, "template variables: out of memory");
    }
    *out = v;
    return SW_OK;
}

void sw_jinja_vars_free(sw_jinja_vars *v) {
    if (!v) return;
    ja_free_all(&v->arena);
    free(v);
}

static sw_status set(sw_jinja_vars *v, const char *name, const jv *val, sw_err *err) {
    if (!v || !name) return sw_err_set(err, SW_E_INVALID_ARG, "template variable: NULL argument");
    jstr *k = jstr_new(&v->arena, name, strlen(name));
    if (!k) return sw_err_set(err, SW_E_NOMEM, "template variables: out of memory");
    jv key = jv_from_jstr(k, false);
    jdict_set_a(&v->arena, v->d, &key, val);
    return SW_OK;
}

sw_status sw_jinja_vars_set_json(sw_jinja_vars *v, const char *name, const char *json, size_t len,
                                 sw_err *err) {
    if (!v || !json) return sw_err_set(err, SW_E_INVALID_ARG, "template variable: NULL argument");
    jv val;
    sw_status st = jjson_parse(&v->arena, json, len, &val, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "variable '%s'", name ? name : "?");
    return set(v, name, &val, err);
}

sw_status sw_jinja_vars_set_cjson(sw_jinja_vars *v, const char *name, const struct cJSON *j,
                                  sw_err *err) {
    if (!v || !j) return sw_err_set(err, SW_E_INVALID_ARG, "template variable: NULL argument");
    jv val;
    sw_status st = jjson_from_cjson(&v->arena, j, &val, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "variable '%s'", name ? name : "?");
    return set(v, name, &val, err);
}

sw_status sw_jinja_vars_set_str(sw_jinja_vars *v, const char *name, const char *s, sw_err *err) {
    if (!v || !s) return sw_err_set(err, SW_E_INVALID_ARG, "template variable: NULL argument");
    jstr *t = jstr_new(&v->arena, s, strlen(s));
    if (!t) return sw_err_set(err, SW_E_NOMEM, "template variables: out of memory");
    jv val = jv_from_jstr(t, false);
    return set(v, name, &val, err);
}

sw_status sw_jinja_vars_set_bool(sw_jinja_vars *v, const char *name, bool b, sw_err *err) {
    jv val = jv_bool(b);
    return set(v, name, &val, err);
}

sw_status sw_jinja_vars_set_none(sw_jinja_vars *v, const char *name, sw_err *err) {
    jv val = jv_none();
    return set(v, name, &val, err);
}

static sw_status update(sw_jinja_vars *v, const jv *obj, const char *const *refuse, sw_err *err) {
    if (obj->t != JV_DICT) return sw_err_set(err, SW_E_FORMAT, "template keyword arguments: not a JSON object");
    const jdict *d = obj->d;
    for (size_t i = 0; i < jdict_len(d); i++) {
        const jv *k = &d->e[i].k;
        for (size_t r = 0; refuse && refuse[r]; r++)
            if (strlen(refuse[r]) == k->s->len && !memcmp(refuse[r], k->s->s, k->s->len))
                return sw_err_set(err, SW_E_INVALID_ARG,
                                  "template keyword arguments: got multiple values for keyword "
                                  "argument '%s'",
                                  refuse[r]);
    }
    for (size_t i = 0; i < jdict_len(d); i++) jdict_set_a(&v->arena, v->d, &d->e[i].k, &d->e[i].v);
    return SW_OK;
}

sw_status sw_jinja_vars_update_json(sw_jinja_vars *v, const char *json, size_t len,
                                    const char *const *refuse, sw_err *err) {
    if (!v || !json) return sw_err_set(err, SW_E_INVALID_ARG, "template variables: NULL argument");
    jv obj;
    sw_status st = jjson_parse(&v->arena, json, len, &obj, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "template keyword arguments");
    return update(v, &obj, refuse, err);
}

sw_status sw_jinja_vars_update_cjson(sw_jinja_vars *v, const struct cJSON *j,
                                     const char *const *refuse, sw_err *err) {
    if (!v || !j) return sw_err_set(err, SW_E_INVALID_ARG, "template variables: NULL argument");
    jv obj;
    sw_status st = jjson_from_cjson(&v->arena, j, &obj, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "template keyword arguments");
    return update(v, &obj, refuse, err);
}

bool sw_jinja_vars_has(const sw_jinja_vars *v, const char *name) {
    return v && name && jdict_get_str(v->d, name, strlen(name)) != NULL;
}

/* ---- render ------------------------------------------------------------------------------ */

static bool add_builtin(jctx *c, jdict *d, const char *name, int kind) {
    jfunc *f = ja_alloc(c->a, sizeof *f);
    if (!f) return jx_fail(c, SW_E_NOMEM, "out of memory");
    f->kind = (uint8_t)kind;
    f->name.s = name;
    f->name.n = strlen(name);
    jv key, v = {0};
    v.t = JV_FUNC;
    v.fn = f;
    return jv_strz(c, name, &key) && jdict_set(c, d, &key, &v);
}

sw_status sw_jinja_render(const sw_jinja_tmpl *t, const sw_jinja_vars *vars,
                          const sw_jinja_limits *lim, char **out, size_t *out_len, sw_err *err) {
    if (!t || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_jinja_render: NULL argument");
    *out = NULL;
    if (out_len) *out_len = 0;
    sw_jinja_limits L = {0};
    if (lim) L = *lim;
    if (!L.max_steps) L.max_steps = 50000000;
    if (!L.max_output) L.max_output = (size_t)32 << 20;
    if (!L.max_memory) L.max_memory = (size_t)256 << 20;
    if (!L.max_depth) L.max_depth = 128;

    jarena arena = {.limit = L.max_memory};
    jbuf buf = {0};
    jctx c = {.a = &arena, .lim = &L, .out = &buf};
    jdict *builtins = jdict_new(&c);
    bool ok = builtins != NULL;
    static const struct {
        const char *name;
        int kind;
    } k_globals[] = {{"range", JB_RANGE},       {"dict", JB_DICT},
                     {"namespace", JB_NAMESPACE}, {"raise_exception", JB_RAISE},
                     {"strftime_now", JB_STRFTIME}, {"joiner", JB_JOINER},
                     {"cycler", JB_CYCLER},     {"lipsum", JB_LIPSUM}};
    for (size_t i = 0; ok && i < sizeof k_globals / sizeof k_globals[0]; i++)
        ok = add_builtin(&c, builtins, k_globals[i].name, k_globals[i].kind);
    jscope env = {.parent = NULL, .vars = builtins};
    jscope globals = {.parent = &env, .vars = vars ? vars->d : NULL};
    jscope root = {.parent = &globals};
    c.globals = &globals;
    if (ok) ok = jx_run(&c, &root, t->body);
    sw_status st = SW_OK;
    if (!ok) {
        st = c.failed ? c.st : SW_E_INTERNAL;
        sw_err_set(err, st, "%s", c.failed ? c.msg : "template render failed");
        free(buf.p);
    } else {
        if (!buf.p && !(buf.p = calloc(1, 1))) {
            st = sw_err_set(err, SW_E_NOMEM, "template render: out of memory");
        } else {
            *out = buf.p;
            if (out_len) *out_len = buf.len;
        }
    }
    ja_free_all(&arena);
    return st;
}
