/* jinja_json.c — JSON in and out of template values, as Python's json module
 * does it: json.loads keeps 1 and 1.0 apart (cJSON stores every number as a
 * double, so text inputs are read here), and json.dumps writes what
 * transformers' tojson filter writes (ensure_ascii, indent, separators,
 * sort_keys; floats as Python's repr; NaN/Infinity; non-string keys
 * converted). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

#define JSON_MAX_DEPTH 500

/* ---- reading ---------------------------------------------------------------------- */

typedef struct jr {
    jarena *a;
    const char *s;
    size_t n, i;
    sw_err *err;
} jr;

static sw_status rfail(jr *r, const char *what) {
    /* line/column as Python's json reports them */
    size_t line = 1, col = 1;
    for (size_t k = 0; k < r->i && k < r->n; k++) {
        if (r->s[k] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return sw_err_set(r->err, SW_E_FORMAT, "JSON: %s: line %zu column %zu (char %zu)", what, line,
                      col, r->i);
}

static void ws(jr *r) {
    while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' ||
                           r->s[r->i] == '\r'))
        r->i++;
}

static bool lit(jr *r, const char *w) {
    size_t k = strlen(w);
    if (r->i + k <= r->n && memcmp(r->s + r->i, w, k) == 0) {
        r->i += k;
        return true;
    }
    return false;
}

static int hex4(const char *p) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int d = ju_hexval(p[k]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static sw_status rstring(jr *r, jv *out) {
    r->i++; /* opening quote */
    size_t start = r->i;
    /* worst case the decoded text is as long as the source */
    size_t end = start;
    while (end < r->n && r->s[end] != '"') end += r->s[end] == '\\' ? 2 : 1;
    if (end >= r->n) return rfail(r, "Unterminated string starting at");
    char *buf = ja_alloc(r->a, end - start + 4);
    if (!buf) return sw_err_set(r->err, SW_E_NOMEM, "JSON: out of memory");
    size_t k = 0;
    while (r->i < r->n && r->s[r->i] != '"') {
        unsigned char ch = (unsigned char)r->s[r->i];
        if (ch < 0x20) return rfail(r, "Invalid control character at");
        if (ch != '\\') {
            buf[k++] = (char)ch;
            r->i++;
            continue;
        }
        if (r->i + 1 >= r->n) return rfail(r, "Unterminated string starting at");
        char e = r->s[r->i + 1];
        r->i += 2;
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            int u = r->i + 4 <= r->n ? hex4(r->s + r->i) : -1;
            if (u < 0) return rfail(r, "Invalid \\uXXXX escape");
            r->i += 4;
            uint32_t cp = (uint32_t)u;
            if (cp >= 0xD800 && cp <= 0xDBFF && r->i + 6 <= r->n && r->s[r->i] == '\\' &&
                r->s[r->i + 1] == 'u') {
                int lo = hex4(r->s + r->i + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (uint32_t)(lo - 0xDC00);
                    r->i += 6;
                }
            }
            k += ju_encode(cp, buf + k); /* a lone surrogate stays as its 3-byte form */
            break;
        }
        default: r->i -= 1; return rfail(r, "Invalid \\escape");
        }
    }
    r->i++; /* closing quote */
    jstr *s = jstr_new(r->a, buf, k);
    if (!s) return sw_err_set(r->err, SW_E_NOMEM, "JSON: out of memory");
    *out = jv_from_jstr(s, false);
    return SW_OK;
}

static sw_status rnumber(jr *r, jv *out) {
    size_t st = r->i;
    if (r->s[r->i] == '-') r->i++;
    if (r->i >= r->n || r->s[r->i] < '0' || r->s[r->i] > '9') {
        r->i = st;
        return rfail(r, "Expecting value");
    }
    if (r->s[r->i] == '0') r->i++;
    else
        while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') r->i++;
    bool is_float = false;
    if (r->i + 1 < r->n && r->s[r->i] == '.' && r->s[r->i + 1] >= '0' && r->s[r->i + 1] <= '9') {
        is_float = true;
        r->i++;
        while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') r->i++;
    }
    if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        size_t save = r->i++;
        if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-')) r->i++;
        if (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') {
            is_float = true;
            while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') r->i++;
        } else {
            r->i = save;
        }
    }
    char buf[512];
    size_t len = r->i - st;
    if (len >= sizeof buf) return rfail(r, "number literal too long");
    memcpy(buf, r->s + st, len);
    buf[len] = '\0';
    if (is_float) {
        *out = jv_float(strtod(buf, NULL));
        return SW_OK;
    }
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return rfail(r, "integer outside the 64-bit range");
    *out = jv_int(v);
    return SW_OK;
}

static sw_status rvalue(jr *r, jv *out, int depth);

static sw_status rarray(jr *r, jv *out, int depth) {
    r->i++;
    jv *items = NULL;
    size_t n = 0, cap = 0;
    ws(r);
    if (r->i < r->n && r->s[r->i] == ']') {
        r->i++;
    } else {
        for (;;) {
            jv v;
            sw_status st = rvalue(r, &v, depth + 1);
            if (st != SW_OK) return st;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 8;
                jv *ni = ja_alloc(r->a, nc * sizeof *ni);
                if (!ni) return sw_err_set(r->err, SW_E_NOMEM, "JSON: out of memory");
                if (n) memcpy(ni, items, n * sizeof *ni);
                items = ni;
                cap = nc;
            }
            items[n++] = v;
            ws(r);
            if (r->i < r->n && r->s[r->i] == ',') {
                r->i++;
                continue;
            }
            if (r->i < r->n && r->s[r->i] == ']') {
                r->i++;
                break;
            }
            return rfail(r, "Expecting ',' delimiter");
        }
    }
    jseq *q = ja_alloc(r->a, sizeof *q + n * sizeof(jv));
    if (!q) return sw_err_set(r->err, SW_E_NOMEM, "JSON: out of memory");
    q->kind = SQ_LIST;
    q->n = n;
    q->v = (jv *)(q + 1);
    if (n) memcpy(q->v, items, n * sizeof(jv));
    jv v = {0};
    v.t = JV_SEQ;
    v.q = q;
    *out = v;
    return SW_OK;
}

static sw_status robject(jr *r, jv *out, int depth) {
    r->i++;
    jdict *d = jdict_new_a(r->a);
    if (!d) return sw_err_set(r->err, SW_E_NOMEM, "JSON: out of memory");
    ws(r);
    if (r->i < r->n && r->s[r->i] == '}') {
        r->i++;
    } else {
        for (;;) {
            ws(r);
            if (r->i >= r->n || r->s[r->i] != '"')
                return rfail(r, "Expecting property name enclosed in double quotes");
            jv k, v;
            sw_status st = rstring(r, &k);
            if (st != SW_OK) return st;
            ws(r);
            if (r->i >= r->n || r->s[r->i] != ':') return rfail(r, "Expecting ':' delimiter");
            r->i++;
            st = rvalue(r, &v, depth + 1);
            if (st != SW_OK) return st;
            jdict_set_a(r->a, d, &k, &v);
            ws(r);
            if (r->i < r->n && r->s[r->i] == ',') {
                r->i++;
                continue;
            }
            if (r->i < r->n && r->s[r->i] == '}') {
                r->i++;
                break;
            }
            return rfail(r, "Expecting ',' delimiter");
        }
    }
    jv v = {0};
    v.t = JV_DICT;
    v.d = d;
    *out = v;
    return SW_OK;
}

static sw_status rvalue(jr *r, jv *out, int depth) {
    if (depth > JSON_MAX_DEPTH) return rfail(r, "nested too deeply");
    ws(r);
    if (r->i >= r->n) return rfail(r, "Expecting value");
    char ch = r->s[r->i];
    if (ch == '{') return robject(r, out, depth);
    if (ch == '[') return rarray(r, out, depth);
    if (ch == '"') return rstring(r, out);
    if (lit(r, "null")) *out = jv_none();
    else if (lit(r, "true")) *out = jv_bool(true);
    else if (lit(r, "false")) *out = jv_bool(false);
    else if (lit(r, "NaN")) *out = jv_float(NAN);
    else if (lit(r, "Infinity")) *out = jv_float(INFINITY);
    else if (lit(r, "-Infinity")) *out = jv_float(-INFINITY);
    else return rnumber(r, out);
    return SW_OK;
}

sw_status jjson_parse(jarena *a, const char *s, size_t n, jv *out, sw_err *err) {
    jr r = {.a = a, .s = s, .n = n, .err = err};
    sw_status st = rvalue(&r, out, 0);
    if (st != SW_OK) return st;
    ws(&r);
    if (r.i != n) return rfail(&r, "Extra data");
    return SW_OK;
}

static sw_status from_cjson(jarena *a, const cJSON *j, jv *out, sw_err *err, int depth) {
    if (depth > JSON_MAX_DEPTH) return sw_err_set(err, SW_E_FORMAT, "JSON nested too deeply");
    if (cJSON_IsNull(j)) *out = jv_none();
    else if (cJSON_IsTrue(j)) *out = jv_bool(true);
    else if (cJSON_IsFalse(j)) *out = jv_bool(false);
    else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) *out = jv_int((int64_t)d);
        else *out = jv_float(d);
    } else if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        jstr *t = jstr_new(a, s, strlen(s));
        if (!t) return sw_err_set(err, SW_E_NOMEM, "out of memory");
        *out = jv_from_jstr(t, false);
    } else if (cJSON_IsArray(j)) {
        size_t n = (size_t)cJSON_GetArraySize(j);
        jseq *q = ja_alloc(a, sizeof *q + n * sizeof(jv));
        if (!q) return sw_err_set(err, SW_E_NOMEM, "out of memory");
        q->kind = SQ_LIST;
        q->n = n;
        q->v = (jv *)(q + 1);
        size_t k = 0;
        for (const cJSON *it = j->child; it && k < n; it = it->next, k++) {
            sw_status st = from_cjson(a, it, &q->v[k], err, depth + 1);
            if (st != SW_OK) return st;
        }
        jv v = {0};
        v.t = JV_SEQ;
        v.q = q;
        *out = v;
    } else if (cJSON_IsObject(j)) {
        jdict *d = jdict_new_a(a);
        if (!d) return sw_err_set(err, SW_E_NOMEM, "out of memory");
        for (const cJSON *it = j->child; it; it = it->next) {
            jv k, v;
            const char *ks = it->string ? it->string : "";
            jstr *t = jstr_new(a, ks, strlen(ks));
            if (!t) return sw_err_set(err, SW_E_NOMEM, "out of memory");
            k = jv_from_jstr(t, false);
            sw_status st = from_cjson(a, it, &v, err, depth + 1);
            if (st != SW_OK) return st;
            jdict_set_a(a, d, &k, &v);
        }
        jv v = {0};
        v.t = JV_DICT;
        v.d = d;
        *out = v;
    } else {
        return sw_err_set(err, SW_E_FORMAT, "JSON value of unknown type");
    }
    return SW_OK;
}

sw_status jjson_from_cjson(jarena *a, const cJSON *j, jv *out, sw_err *err) {
    return from_cjson(a, j, out, err, 0);
}

/* ---- writing -------------------------------------------------------------------------- */

static bool dump_str(jctx *c, jbuf *b, const char *s, size_t n, bool ascii) {
    if (!jb_putc(c, b, '"')) return false;
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t cp = ju_decode(s, n, i, &len);
        char esc[16];
        const char *e = NULL;
        switch (cp) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (cp < 0x20 || (ascii && cp > 0x7E)) {
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
                }
                e = esc;
            }
        }
        if (e) {
            if (!jb_put(c, b, s + start, i - start) || !jb_puts(c, b, e)) return false;
            start = i + len;
        }
        i += len;
    }
    return jb_put(c, b, s + start, n - start) && jb_putc(c, b, '"');
}

static bool dump_float(jctx *c, jbuf *b, double f) {
    if (isnan(f)) return jb_puts(c, b, "NaN");
    if (isinf(f)) return jb_puts(c, b, f < 0 ? "-Infinity" : "Infinity");
    char t[40];
    jfloat_repr(f, t, sizeof t);
    return jb_puts(c, b, t);
}

static bool newline_indent(jctx *c, jbuf *b, const jdump_opts *o, int level) {
    if (!jb_putc(c, b, '\n')) return false;
    for (int i = 0; i < level; i++)
        if (!jb_put(c, b, o->indent, o->indent_len)) return false;
    return true;
}

static bool dump_key(jctx *c, jbuf *b, const jv *k, const jdump_opts *o) {
    switch (k->t) {
    case JV_STR: return dump_str(c, b, k->s->s, k->s->len, o->ensure_ascii);
    case JV_BOOL: return jb_puts(c, b, k->b ? "\"true\"" : "\"false\"");
    case JV_NONE: return jb_puts(c, b, "\"null\"");
    case JV_INT: return jb_printf(c, b, "\"%lld\"", (long long)k->i);
    case JV_FLOAT: {
        jbuf t = {0};
        bool ok = dump_float(c, &t, k->f) && jb_putc(c, b, '"') && jb_put(c, b, t.p, t.len) &&
                  jb_putc(c, b, '"');
        free(t.p);
        return ok;
    }
    default:
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: keys must be str, int, float, bool or None, not %s",
                       jv_type_name(k));
    }
}

/* insertion order, or sorted by key for sort_keys (Python's sorted: keys must compare) */
static bool key_order(jctx *c, const jdict *d, bool sort, size_t **order) {
    size_t n = jdict_len(d);
    size_t *ord = ja_alloc(c->a, (n ? n : 1) * sizeof *ord);
    if (!ord) return jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) ord[i] = i;
    if (sort) {
        /* insertion sort: stable, and dicts in templates are small */
        for (size_t i = 1; i < n; i++) {
            size_t x = ord[i], j = i;
            while (j > 0) {
                int cm;
                if (!jv_cmp(c, &d->e[x].k, &d->e[ord[j - 1]].k, &cm, "<")) return false;
                if (cm >= 0) break;
                ord[j] = ord[j - 1];
                j--;
            }
            ord[j] = x;
        }
    }
    *order = ord;
    return true;
}

bool jjson_dump(jctx *c, jbuf *b, const jv *v, const jdump_opts *o, int depth) {
    if (depth > JSON_MAX_DEPTH)
        return jx_fail(c, SW_E_RANGE, "RecursionError: maximum recursion depth exceeded while encoding a JSON object");
    if (!jx_step(c, 1)) return false;
    switch (v->t) {
    case JV_NONE: return jb_puts(c, b, "null");
    case JV_BOOL: return jb_puts(c, b, v->b ? "true" : "false");
    case JV_INT: return jb_printf(c, b, "%lld", (long long)v->i);
    case JV_FLOAT: return dump_float(c, b, v->f);
    case JV_STR: return dump_str(c, b, v->s->s, v->s->len, o->ensure_ascii);
    case JV_SEQ:
        if (v->q->kind == SQ_LIST || v->q->kind == SQ_TUPLE) {
            const jseq *q = v->q;
            if (q->n == 0) return jb_puts(c, b, "[]");
            if (!jb_putc(c, b, '[')) return false;
            for (size_t i = 0; i < q->n; i++) {
                if (i && !jb_put(c, b, o->item_sep, o->item_sep_len)) return false;
                if (o->indent && !newline_indent(c, b, o, depth + 1)) return false;
                if (!jjson_dump(c, b, &q->v[i], o, depth + 1)) return false;
            }
            if (o->indent && !newline_indent(c, b, o, depth)) return false;
            return jb_putc(c, b, ']');
        }
        break;
    case JV_DICT: {
        const jdict *d = v->d;
        size_t n = jdict_len(d);
        if (n == 0) return jb_puts(c, b, "{}");
        size_t *ord = NULL;
        if (!key_order(c, d, o->sort_keys, &ord)) return false;
        if (!jb_putc(c, b, '{')) return false;
        for (size_t i = 0; i < n; i++) {
            const jdent *e = &d->e[ord[i]];
            if (i && !jb_put(c, b, o->item_sep, o->item_sep_len)) return false;
            if (o->indent && !newline_indent(c, b, o, depth + 1)) return false;
            if (!dump_key(c, b, &e->k, o) || !jb_put(c, b, o->key_sep, o->key_sep_len) ||
                !jjson_dump(c, b, &e->v, o, depth + 1))
                return false;
        }
        if (o->indent && !newline_indent(c, b, o, depth)) return false;
        return jb_putc(c, b, '}');
    }
    case JV_UNDEF:
        if (v->u && v->u->exc == JU_SECURITY) return jx_undef_fail(c, v);
        break;
    default: break;
    }
    return jx_fail(c, SW_E_INVALID_ARG, "TypeError: Object of type %s is not JSON serializable",
                   jv_type_name(v));
}
