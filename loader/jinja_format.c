/* jinja_format.c — Python's string formatting for templates: printf-style
 * "fmt % args" and str.format() through jinja2's sandboxed formatter (field
 * names may read attributes and items, through the sandbox rules), with the
 * format-spec mini-language for str, int and float. A Markup format string
 * escapes what it interpolates, as markupsafe does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

typedef struct spec {
    uint32_t fill;
    char align;  /* 0, '<', '>', '^', '=' */
    char sign;   /* 0, '+', '-', ' ' */
    bool alt, zero;
    int64_t width, prec; /* -1: none */
    char group;  /* 0, ',', '_' */
    char type;   /* 0 or the type letter */
} spec;

static bool bad_spec(jctx *c, const char *what) {
    return jx_fail(c, SW_E_INVALID_ARG, "ValueError: %s", what);
}

static bool parse_spec(jctx *c, const char *s, size_t n, spec *sp) {
    memset(sp, 0, sizeof *sp);
    sp->fill = ' ';
    sp->width = sp->prec = -1;
    size_t i = 0;
    /* [[fill]align] */
    if (n > 0) {
        size_t len;
        uint32_t cp = ju_decode(s, n, 0, &len);
        if (len < n && strchr("<>^=", s[len]) && s[len]) {
            sp->fill = cp;
            sp->align = s[len];
            i = len + 1;
        } else if (strchr("<>^=", s[0]) && s[0]) {
            sp->align = s[0];
            i = 1;
        }
    }
    if (i < n && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) sp->sign = s[i++];
    if (i < n && s[i] == '#') sp->alt = true, i++;
    if (i < n && s[i] == '0') {
        sp->zero = true;
        i++;
    }
    int64_t w = -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        w = (w < 0 ? 0 : w) * 10 + (s[i++] - '0');
        if (w > 1000000) return bad_spec(c, "Too many decimal digits in format string");
    }
    sp->width = w;
    if (i < n && (s[i] == ',' || s[i] == '_')) sp->group = s[i++];
    if (i < n && s[i] == '.') {
        i++;
        int64_t p = -1;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            p = (p < 0 ? 0 : p) * 10 + (s[i++] - '0');
            if (p > 1000000) return bad_spec(c, "Too many decimal digits in format string");
        }
        if (p < 0) return bad_spec(c, "Format specifier missing precision");
        sp->prec = p;
    }
    if (i < n) sp->type = s[i++];
    if (i < n) return bad_spec(c, "Invalid format specifier");
    if (sp->zero && !sp->align) {
        sp->fill = '0';
        sp->align = '=';
    }
    return true;
}

static bool put_cp(jctx *c, jbuf *b, uint32_t cp) {
    char t[4];
    return jb_put(c, b, t, ju_encode(cp, t));
}

/* Pad body (with sign/prefix kept in front for '=') to the width. */
static bool emit_padded(jctx *c, jbuf *b, const spec *sp, const char *pre, size_t pre_n,
                        const char *body, size_t body_n, char default_align) {
    size_t ncp = ju_count(pre, pre_n) + ju_count(body, body_n);
    int64_t padn = sp->width > (int64_t)ncp ? sp->width - (int64_t)ncp : 0;
    if (!jx_room(c, (size_t)padn * 4)) return false;
    char al = sp->align ? sp->align : default_align;
    int64_t left = al == '>' ? padn : al == '^' ? padn / 2 : al == '=' ? 0 : 0;
    int64_t mid = al == '=' ? padn : 0;
    int64_t right = padn - left - mid;
    for (int64_t i = 0; i < left; i++)
        if (!put_cp(c, b, sp->fill)) return false;
    if (!jb_put(c, b, pre, pre_n)) return false;
    for (int64_t i = 0; i < mid; i++)
        if (!put_cp(c, b, sp->fill)) return false;
    if (!jb_put(c, b, body, body_n)) return false;
    for (int64_t i = 0; i < right; i++)
        if (!put_cp(c, b, sp->fill)) return false;
    return true;
}

static void group_digits(const char *d, size_t n, char sep, int every, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % (size_t)every == 0) out[k++] = sep;
        out[k++] = d[i];
    }
    out[k] = '\0';
}

static bool fmt_int(jctx *c, jbuf *b, int64_t v, const spec *sp) {
    char t = sp->type ? sp->type : 'd';
    if (t == 'c') {
        if (v < 0 || v > 0x10FFFF) return bad_spec(c, "%c arg not in range(0x110000)");
        char u[4];
        size_t k = ju_encode((uint32_t)v, u);
        return emit_padded(c, b, sp, "", 0, u, k, '<');
    }
    int base = t == 'b' ? 2 : t == 'o' ? 8 : (t == 'x' || t == 'X') ? 16 : 10;
    if (!strchr("dnbcoxX", t)) return bad_spec(c, "Unknown format code for object of type 'int'");
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char digits[80], grouped[120];
    size_t n = 0;
    do {
        int d = (int)(mag % (uint64_t)base);
        digits[n++] = (char)(d < 10 ? '0' + d : (t == 'X' ? 'A' : 'a') + d - 10);
        mag /= (uint64_t)base;
    } while (mag);
    for (size_t i = 0; i < n / 2; i++) {
        char x = digits[i];
        digits[i] = digits[n - 1 - i];
        digits[n - 1 - i] = x;
    }
    digits[n] = '\0';
    const char *body = digits;
    if (sp->group) {
        group_digits(digits, n, sp->group, base == 10 ? 3 : 4, grouped);
        body = grouped;
    }
    char pre[8];
    size_t pn = 0;
    if (v < 0) pre[pn++] = '-';
    else if (sp->sign == '+') pre[pn++] = '+';
    else if (sp->sign == ' ') pre[pn++] = ' ';
    if (sp->alt && base != 10) {
        pre[pn++] = '0';
        pre[pn++] = t == 'b' ? 'b' : t == 'o' ? 'o' : t;
    }
    return emit_padded(c, b, sp, pre, pn, body, strlen(body), '>');
}

static bool fmt_float(jctx *c, jbuf *b, double v, const spec *sp) {
    char t = sp->type;
    /* room for %.300f of 1e308 (309 digits, the point, 300 decimals) and a suffix */
    char body[1024];
    if (!t && sp->prec < 0) {
        jfloat_repr(fabs(v), body, sizeof body);
    } else {
        int prec = sp->prec < 0 ? 6 : (int)(sp->prec > 300 ? 300 : sp->prec);
        double x = fabs(v);
        char ct = t ? t : 'g';
        if (ct == 'n') ct = 'g';
        if (ct == '%') {
            x *= 100;
            ct = 'f';
        }
        if (!strchr("eEfFgG", ct)) return bad_spec(c, "Unknown format code for object of type 'float'");
        if (!t && prec == 0) prec = 1;
        char f[16];
        snprintf(f, sizeof f, "%%%s.*%c", sp->alt ? "#" : "", ct);
        snprintf(body, sizeof body, f, prec, x);
        if (!t && isfinite(x) && !strchr(body, '.') && !strchr(body, 'e')) strcat(body, ".0");
        if (t == '%') strcat(body, "%");
    }
    if (isinf(v) || isnan(v)) {
        const char *w = isnan(v) ? "nan" : "inf";
        bool up = t == 'E' || t == 'F' || t == 'G';
        snprintf(body, sizeof body, "%s", up ? (isnan(v) ? "NAN" : "INF") : w);
    }
    const char *text = body;
    char grouped[1400]; /* body plus one separator per three digits */
    if (sp->group) {
        /* group the integer part */
        const char *dot = body;
        while (*dot >= '0' && *dot <= '9') dot++;
        group_digits(body, (size_t)(dot - body), sp->group, 3, grouped);
        size_t k = strlen(grouped), rest = strlen(dot);
        memcpy(grouped + k, dot, rest + 1);
        text = grouped;
    }
    char pre[2];
    size_t pn = 0;
    if (signbit(v) && !isnan(v)) pre[pn++] = '-';
    else if (sp->sign == '+') pre[pn++] = '+';
    else if (sp->sign == ' ') pre[pn++] = ' ';
    return emit_padded(c, b, sp, pre, pn, text, strlen(text), '>');
}

static bool fmt_str(jctx *c, jbuf *b, const jstr *s, const spec *sp) {
    if (sp->type && sp->type != 's') return bad_spec(c, "Unknown format code for object of type 'str'");
    if (sp->sign) return bad_spec(c, "Sign not allowed in string format specifier");
    if (sp->align == '=') return bad_spec(c, "'=' alignment not allowed in string format specifier");
    size_t n = s->len;
    if (sp->prec >= 0 && (size_t)sp->prec < s->ncp) n = ju_offset(s, (size_t)sp->prec);
    return emit_padded(c, b, sp, "", 0, s->s, n, '<');
}

/* format(value, spec) for one value */
static bool format_value(jctx *c, jbuf *b, const jv *v, const char *fs, size_t fn) {
    spec sp;
    if (!parse_spec(c, fs, fn, &sp)) return false;
    switch (v->t) {
    case JV_INT:
    case JV_BOOL:
        if (v->t == JV_BOOL && fn == 0) return jb_puts(c, b, v->b ? "True" : "False");
        if (sp.type && strchr("eEfFgG%", sp.type)) return fmt_float(c, b, (double)(v->t == JV_INT ? v->i : v->b), &sp);
        return fmt_int(c, b, v->t == JV_INT ? v->i : v->b, &sp);
    case JV_FLOAT: return fmt_float(c, b, v->f, &sp);
    case JV_STR: return fmt_str(c, b, v->s, &sp);
    default: {
        if (fn) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: unsupported format string passed to %s.__format__",
                               jv_type_name(v));
        if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
        return jv_str_to(c, b, v);
    }
    }
}

/* ---- str.format ------------------------------------------------------------------------------ */

/* Resolve a field name: arg_name ("." attr | "[" key "]")* */
static bool field_value(jctx *c, const char *f, size_t n, const jargs *a, const jv *mapping,
                        size_t *auto_idx, int *numbering, jv *out) {
    size_t i = 0;
    while (i < n && f[i] != '.' && f[i] != '[') i++;
    bool numeric = i > 0;
    for (size_t k = 0; k < i; k++)
        if (f[k] < '0' || f[k] > '9') numeric = false;
    if (i == 0 || numeric) {
        int mode = i == 0 ? 1 : 2;
        if (*numbering && *numbering != mode)
            return jx_fail(c, SW_E_INVALID_ARG, i == 0 ? "ValueError: cannot switch from manual field specification to automatic field numbering"
                                                       : "ValueError: cannot switch from automatic field numbering to manual field specification");
        *numbering = mode;
        size_t idx = i == 0 ? (*auto_idx)++ : (size_t)strtoull(f, NULL, 10);
        if (!a || idx >= a->npos)
            return jx_fail(c, SW_E_INVALID_ARG, "IndexError: Replacement index %zu out of range for positional args tuple", idx);
        *out = a->pos[idx];
    } else if (mapping) {
        jv key;
        if (!jv_str(c, f, i, &key)) return false;
        const jv *v = mapping->t == JV_DICT ? jdict_get(mapping->d, &key) : NULL;
        if (!v) return jx_fail(c, SW_E_INVALID_ARG, "KeyError: '%.*s'", (int)i, f);
        *out = *v;
    } else {
        bool found = false;
        for (size_t k = 0; a && k < a->nkw; k++)
            if (a->kwn[k].n == i && !memcmp(a->kwn[k].s, f, i)) {
                *out = a->kwv[k];
                found = true;
            }
        if (!found) return jx_fail(c, SW_E_INVALID_ARG, "KeyError: '%.*s'", (int)i, f);
    }
    while (i < n) {
        if (f[i] == '.') {
            size_t j = ++i;
            while (j < n && f[j] != '.' && f[j] != '[') j++;
            if (j == i) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: Empty attribute in format string");
            jv obj = *out;
            if (!jx_getattr(c, &obj, f + i, j - i, out)) return false;
            i = j;
        } else if (f[i] == '[') {
            size_t j = ++i;
            while (j < n && f[j] != ']') j++;
            if (j >= n) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: Missing ']' in format string");
            jv key, obj = *out;
            bool num = j > i;
            for (size_t k = i; k < j; k++)
                if (f[k] < '0' || f[k] > '9') num = false;
            if (num) key = jv_int((int64_t)strtoll(f + i, NULL, 10));
            else if (!jv_str(c, f + i, j - i, &key)) return false;
            if (!jx_getitem(c, &obj, &key, out)) return false;
            i = j + 1;
        } else {
            return jx_fail(c, SW_E_INVALID_ARG, "ValueError: Only '.' or '[' may follow ']' in format field specifier");
        }
    }
    if (out->t == JV_UNDEF && out->u && out->u->exc == JU_SECURITY) return jx_undef_fail(c, out);
    return true;
}

static bool format_into(jctx *c, jbuf *b, const jv *fmt, const jstr *t, const jargs *a,
                        const jv *mapping, size_t *auto_idx, int *numbering, int depth) {
    if (depth > 2) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: Max string recursion exceeded");
    size_t i = 0, n = t->len;
    const char *s = t->s;
    while (i < n) {
        char ch = s[i];
        if (ch == '{' && i + 1 < n && s[i + 1] == '{') {
            if (!jb_putc(c, b, '{')) return false;
            i += 2;
            continue;
        }
        if (ch == '}') {
            if (i + 1 < n && s[i + 1] == '}') {
                if (!jb_putc(c, b, '}')) return false;
                i += 2;
                continue;
            }
            return jx_fail(c, SW_E_INVALID_ARG, "ValueError: Single '}' encountered in format string");
        }
        if (ch != '{') {
            size_t j = i;
            while (j < n && s[j] != '{' && s[j] != '}') j++;
            if (!jb_put(c, b, s + i, j - i)) return false;
            i = j;
            continue;
        }
        /* a replacement field: find its end, allowing nested {} in the spec */
        size_t j = i + 1;
        int level = 1;
        while (j < n && level) {
            if (s[j] == '{') level++;
            else if (s[j] == '}') level--;
            if (level) j++;
        }
        if (j >= n) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: expected '}' before end of string");
        const char *f = s + i + 1;
        size_t fl = j - i - 1, name_end = 0;
        while (name_end < fl && f[name_end] != '!' && f[name_end] != ':') {
            if (f[name_end] == '[') {
                while (name_end < fl && f[name_end] != ']') name_end++;
            }
            if (name_end < fl) name_end++;
        }
        char conv = 0;
        size_t spec_at = name_end;
        if (name_end < fl && f[name_end] == '!') {
            if (name_end + 1 >= fl) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: end of string while looking for conversion specifier");
            conv = f[name_end + 1];
            spec_at = name_end + 2;
            if (spec_at < fl && f[spec_at] != ':')
                return jx_fail(c, SW_E_INVALID_ARG, "ValueError: expected ':' after conversion specifier");
        }
        jv v;
        if (!field_value(c, f, name_end, a, mapping, auto_idx, numbering, &v)) return false;
        if (conv == 'r' || conv == 'a') {
            jbuf rb = {0};
            if (!jv_repr_to(c, &rb, &v, 0) || !jb_take(c, &rb, &v)) {
                free(rb.p);
                return false;
            }
        } else if (conv == 's') {
            if (!jv_to_str(c, &v, &v)) return false;
            v.safe = false;
        } else if (conv) {
            return jx_fail(c, SW_E_INVALID_ARG, "ValueError: Unknown conversion specifier %c", conv);
        }
        if (fmt->safe) {
            /* EscapeFormatter: values are escaped before formatting */
            if (v.t != JV_STR || !v.safe) {
                jv e;
                if (v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL) {
                    /* numbers format first, then escape (no markup in digits) */
                } else {
                    if (!jstr_escape(c, &v, &e)) return false;
                    v = e;
                }
            }
        }
        /* the spec may itself contain replacement fields */
        const char *fs = spec_at < fl ? f + spec_at + 1 : "";
        size_t fsl = spec_at < fl ? fl - spec_at - 1 : 0;
        if (memchr(fs, '{', fsl)) {
            jbuf sb = {0};
            jstr *st = jstr_new(c->a, fs, fsl);
            if (!st) return jx_fail(c, SW_E_NOMEM, "out of memory");
            jv plain = jv_from_jstr(st, false);
            if (!format_into(c, &sb, &plain, st, a, mapping, auto_idx, numbering, depth + 1)) {
                free(sb.p);
                return false;
            }
            bool ok = format_value(c, b, &v, sb.p ? sb.p : "", sb.len);
            free(sb.p);
            if (!ok) return false;
        } else if (!format_value(c, b, &v, fs, fsl)) {
            return false;
        }
        i = j + 1;
    }
    return true;
}

bool jstr_format(jctx *c, const jv *fmt, const jargs *a, const jv *mapping, jv *out) {
    jbuf b = {0};
    size_t auto_idx = 0;
    int numbering = 0;
    if (!format_into(c, &b, fmt, fmt->s, a, mapping, &auto_idx, &numbering, 0)) {
        free(b.p);
        return false;
    }
    if (!jb_take(c, &b, out)) return false;
    out->safe = fmt->safe;
    return true;
}

/* ---- printf-style % ------------------------------------------------------------------------------ */

static bool num_arg(jctx *c, const jv *v, char conv, bool want_int, jv *out) {
    if (v->t == JV_INT || v->t == JV_BOOL) {
        *out = jv_int(v->t == JV_INT ? v->i : v->b);
        return true;
    }
    if (v->t == JV_FLOAT) {
        if (want_int && strchr("oxXc", conv))
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %%%c format: an integer is required, not float", conv);
        *out = *v;
        return true;
    }
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %%%c format: a %s is required, not %s", conv,
                   strchr("oxXc", conv) ? "integer" : "real number", jv_type_name(v));
}

bool jstr_percent(jctx *c, const jv *fmt, const jv *args, jv *out) {
    const jv *items = args;
    size_t nitems = 1, used = 0;
    const jv *mapping = NULL;
    if (args->t == JV_SEQ && args->q->kind == SQ_TUPLE) {
        items = args->q->v;
        nitems = args->q->n;
    } else if (args->t == JV_DICT) {
        mapping = args;
    }
    const jstr *t = fmt->s;
    jbuf b = {0};
    size_t i = 0;
    while (i < t->len) {
        if (t->s[i] != '%') {
            size_t j = i;
            while (j < t->len && t->s[j] != '%') j++;
            if (!jb_put(c, &b, t->s + i, j - i)) goto fail;
            i = j;
            continue;
        }
        i++;
        if (i >= t->len) {
            jx_fail(c, SW_E_INVALID_ARG, "ValueError: incomplete format");
            goto fail;
        }
        const jv *val = NULL;
        if (t->s[i] == '(') {
            size_t j = ++i;
            int depth = 1;
            while (j < t->len && depth) {
                if (t->s[j] == '(') depth++;
                else if (t->s[j] == ')') depth--;
                if (depth) j++;
            }
            if (j >= t->len) {
                jx_fail(c, SW_E_INVALID_ARG, "ValueError: incomplete format key");
                goto fail;
            }
            if (!mapping) {
                jx_fail(c, SW_E_INVALID_ARG, "TypeError: format requires a mapping");
                goto fail;
            }
            val = jdict_get_str(mapping->d, t->s + i, j - i);
            if (!val) {
                jx_fail(c, SW_E_INVALID_ARG, "KeyError: '%.*s'", (int)(j - i), t->s + i);
                goto fail;
            }
            i = j + 1;
        }
        spec sp;
        memset(&sp, 0, sizeof sp);
        sp.fill = ' ';
        sp.width = sp.prec = -1;
        bool left = false;
        while (i < t->len && strchr("-+ #0", t->s[i]) && t->s[i]) {
            char f = t->s[i++];
            if (f == '-') left = true;
            else if (f == '+') sp.sign = '+';
            else if (f == ' ' && sp.sign != '+') sp.sign = ' ';
            else if (f == '#') sp.alt = true;
            else if (f == '0') sp.zero = true;
        }
        for (int part = 0; part < 2; part++) {
            if (part == 1) {
                if (i < t->len && t->s[i] == '.') {
                    i++;
                    sp.prec = 0;
                } else {
                    break;
                }
            }
            int64_t *dst = part ? &sp.prec : &sp.width;
            if (i < t->len && t->s[i] == '*') {
                i++;
                if (mapping || used >= nitems || (items[used].t != JV_INT && items[used].t != JV_BOOL)) {
                    jx_fail(c, SW_E_INVALID_ARG, "TypeError: * wants int");
                    goto fail;
                }
                *dst = items[used].t == JV_INT ? items[used].i : items[used].b;
                used++;
                if (!part && *dst < 0) {
                    left = true;
                    *dst = -*dst;
                }
            } else {
                while (i < t->len && t->s[i] >= '0' && t->s[i] <= '9') {
                    *dst = (*dst < 0 ? 0 : *dst) * 10 + (t->s[i++] - '0');
                    if (*dst > 1000000) {
                        jx_fail(c, SW_E_INVALID_ARG, "ValueError: width too big");
                        goto fail;
                    }
                }
            }
        }
        while (i < t->len && strchr("hlL", t->s[i]) && t->s[i]) i++;
        if (i >= t->len) {
            jx_fail(c, SW_E_INVALID_ARG, "ValueError: incomplete format");
            goto fail;
        }
        char conv = t->s[i++];
        if (conv == '%') {
            if (!jb_putc(c, &b, '%')) goto fail;
            continue;
        }
        if (!val) {
            if (mapping) val = args;
            else if (used < nitems) val = &items[used++];
            else {
                jx_fail(c, SW_E_INVALID_ARG, "TypeError: not enough arguments for format string");
                goto fail;
            }
        }
        sp.align = left ? '<' : (sp.zero && conv != 's' && conv != 'r' && conv != 'a') ? '=' : '>';
        if (sp.align == '=') sp.fill = '0';
        jv v;
        switch (conv) {
        case 's':
        case 'r':
        case 'a': {
            jbuf sb = {0};
            bool ok = conv == 's' ? jv_str_to(c, &sb, val) : jv_repr_to(c, &sb, val, 0);
            if (!ok || !jb_take(c, &sb, &v)) {
                free(sb.p);
                goto fail;
            }
            if (fmt->safe && !(conv == 's' && val->t == JV_STR && val->safe) && !jstr_escape(c, &v, &v))
                goto fail;
            spec ss = sp;
            ss.type = 0;
            ss.sign = 0;
            if (!fmt_str(c, &b, v.s, &ss)) goto fail;
            break;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'o':
        case 'x':
        case 'X': {
            if (!num_arg(c, val, conv, true, &v)) goto fail;
            int64_t iv = v.t == JV_FLOAT ? (int64_t)v.f : v.i;
            spec is = sp;
            is.type = conv == 'i' || conv == 'u' ? 'd' : conv;
            if (!fmt_int(c, &b, iv, &is)) goto fail;
            break;
        }
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G': {
            if (!num_arg(c, val, conv, false, &v)) goto fail;
            spec fs = sp;
            fs.type = conv;
            if (fs.prec < 0) fs.prec = 6;
            if (!fmt_float(c, &b, v.t == JV_FLOAT ? v.f : (double)v.i, &fs)) goto fail;
            break;
        }
        case 'c': {
            if (val->t == JV_STR && val->s->ncp == 1) {
                if (!fmt_str(c, &b, val->s, &sp)) goto fail;
            } else {
                if (!num_arg(c, val, conv, true, &v)) goto fail;
                spec cs = sp;
                cs.type = 'c';
                if (!fmt_int(c, &b, v.i, &cs)) goto fail;
            }
            break;
        }
        default:
            jx_fail(c, SW_E_INVALID_ARG, "ValueError: unsupported format character '%c'", conv);
            goto fail;
        }
    }
    if (!mapping && used < nitems) {
        jx_fail(c, SW_E_INVALID_ARG, "TypeError: not all arguments converted during string formatting");
        goto fail;
    }
    if (!jb_take(c, &b, out)) return false;
    out->safe = fmt->safe;
    return true;
fail:
    free(b.p);
    return false;
}
