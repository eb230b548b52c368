/* jinja_str.c — Python's str for the Jinja interpreter: UTF-8 strings indexed
 * by code point, Python's Unicode whitespace and case rules (full case
 * mappings, final sigma), markupsafe's escaping and the methods templates call
 * (split, strip, startswith, replace, find, join, partition, upper, title, ...).
 * A Markup ("safe") string keeps its flag through the methods markupsafe wraps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"
#include "tokenizer_impl.h"

extern const uint32_t sw_jinja_upper_from[], sw_jinja_upper_to[], sw_jinja_upper_multi[];
extern const size_t sw_jinja_upper_n, sw_jinja_upper_multi_n;
extern const uint32_t sw_jinja_title_from[], sw_jinja_title_to[], sw_jinja_title_multi[];
extern const size_t sw_jinja_title_n, sw_jinja_title_multi_n;
extern const uint32_t sw_jinja_cased[], sw_jinja_lowerprop[], sw_jinja_upperprop[],
    sw_jinja_titlecase[], sw_jinja_ignorable[], sw_jinja_digit[], sw_jinja_numeric[],
    sw_jinja_ident_start[], sw_jinja_ident_cont[];
extern const size_t sw_jinja_cased_n, sw_jinja_lowerprop_n, sw_jinja_upperprop_n,
    sw_jinja_titlecase_n, sw_jinja_ignorable_n, sw_jinja_digit_n, sw_jinja_numeric_n,
    sw_jinja_ident_start_n, sw_jinja_ident_cont_n;

/* ---- UTF-8 ------------------------------------------------------------------------ */

uint32_t ju_decode(const char *s, size_t n, size_t i, size_t *len) {
    const unsigned char *p = (const unsigned char *)s + i;
    size_t left = n - i;
    unsigned char b = p[0];
    *len = 1;
    if (b < 0x80) return b;
    int k = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
    if (k == 0 || (size_t)k > left) return b;
    uint32_t cp = b & (0x7F >> k);
    for (int j = 1; j < k; j++) {
        if ((p[j] & 0xC0) != 0x80) return b;
        cp = (cp << 6) | (p[j] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return b;
    *len = (size_t)k;
    return cp;
}

size_t ju_encode(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ju_count(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
        } else {
            size_t len;
            ju_decode(s, n, i, &len);
            i += len;
        }
        k++;
    }
    return k;
}

int ju_hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

size_t ju_offset(const jstr *s, size_t k) {
    if (s->ncp == s->len) return k; /* ASCII (or all single bytes) */
    size_t i = 0;
    while (k-- > 0 && i < s->len) {
        size_t len;
        ju_decode(s->s, s->len, i, &len);
        i += len;
    }
    return i;
}

/* ---- Unicode properties ------------------------------------------------------------- */

static bool in_ranges(const uint32_t *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[2 * mid]) hi = mid;
        else if (cp > r[2 * mid + 1]) lo = mid + 1;
        else return true;
    }
    return false;
}

bool ju_isspace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool ju_isprintable(uint32_t cp) {
    if (cp == ' ') return true;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    switch (sw_tok_ucat(cp)) {
    case SW_UCAT_CC:
    case SW_UCAT_CF:
    case SW_UCAT_CS:
    case SW_UCAT_CO:
    case SW_UCAT_CN:
    case SW_UCAT_ZL:
    case SW_UCAT_ZP:
    case SW_UCAT_ZS: return false;
    default: return true;
    }
}

bool ju_is_ident_start(uint32_t cp) { return in_ranges(sw_jinja_ident_start, sw_jinja_ident_start_n, cp); }
bool ju_is_ident_cont(uint32_t cp) { return in_ranges(sw_jinja_ident_cont, sw_jinja_ident_cont_n, cp); }

static bool is_lower(uint32_t cp) {
    if (cp < 0x80) return cp >= 'a' && cp <= 'z';
    return in_ranges(sw_jinja_lowerprop, sw_jinja_lowerprop_n, cp);
}
static bool is_upper(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
    return in_ranges(sw_jinja_upperprop, sw_jinja_upperprop_n, cp);
}
static bool is_title(uint32_t cp) { return cp >= 0x80 && in_ranges(sw_jinja_titlecase, sw_jinja_titlecase_n, cp); }
static bool is_cased(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(sw_jinja_cased, sw_jinja_cased_n, cp);
}
static bool is_ignorable(uint32_t cp) { return in_ranges(sw_jinja_ignorable, sw_jinja_ignorable_n, cp); }
static bool is_alpha(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    int k = sw_tok_ucat(cp);
    return k == SW_UCAT_LU || k == SW_UCAT_LL || k == SW_UCAT_LT || k == SW_UCAT_LM || k == SW_UCAT_LO;
}
static bool is_decimal(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return sw_tok_ucat(cp) == SW_UCAT_ND;
}
static bool is_digit(uint32_t cp) { return is_decimal(cp) || in_ranges(sw_jinja_digit, sw_jinja_digit_n, cp); }
static bool is_numeric(uint32_t cp) { return is_digit(cp) || in_ranges(sw_jinja_numeric, sw_jinja_numeric_n, cp); }

static long find_u32(const uint32_t *a, size_t n, uint32_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return (lo < n && a[lo] == x) ? (long)lo : -1;
}

/* Full case mapping through the generated tables: up to 3 code points. */
static size_t map_case(const uint32_t *from, const uint32_t *to, size_t n, const uint32_t *multi,
                       size_t nmulti, uint32_t cp, uint32_t out[3]) {
    for (size_t i = 0; i < nmulti; i++)
        if (multi[i * 5] == cp) {
            size_t k = multi[i * 5 + 1];
            for (size_t j = 0; j < k; j++) out[j] = multi[i * 5 + 2 + j];
            return k;
        }
    long i = find_u32(from, n, cp);
    out[0] = i >= 0 ? to[i] : cp;
    return 1;
}

static size_t to_upper(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
        return 1;
    }
    return map_case(sw_jinja_upper_from, sw_jinja_upper_to, sw_jinja_upper_n, sw_jinja_upper_multi,
                    sw_jinja_upper_multi_n, cp, out);
}

static size_t to_title(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) return to_upper(cp, out);
    return map_case(sw_jinja_title_from, sw_jinja_title_to, sw_jinja_title_n, sw_jinja_title_multi,
                    sw_jinja_title_multi_n, cp, out);
}

/* Python's lower() of the code point at i, with the final-sigma rule. */
static size_t to_lower_at(const char *s, size_t n, size_t i, uint32_t cp, uint32_t out[3]) {
    if (cp == 0x3A3) {
        /* final if preceded by a cased letter and not followed by one (case-ignorables skipped) */
        bool before = false, after = false;
        size_t j = i;
        while (j > 0) {
            size_t st = j - 1;
            while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80 && j - st < 4) st--;
            size_t len;
            uint32_t p = ju_decode(s, n, st, &len);
            j = st;
            if (is_ignorable(p)) continue;
            before = is_cased(p);
            break;
        }
        size_t len;
        ju_decode(s, n, i, &len);
        for (size_t k = i + len; k < n;) {
            uint32_t p = ju_decode(s, n, k, &len);
            k += len;
            if (is_ignorable(p)) continue;
            after = is_cased(p);
            break;
        }
        out[0] = before && !after ? 0x3C2 : 0x3C3;
        return 1;
    }
    return sw_tok_tolower(cp, out);
}

/* ---- building results ----------------------------------------------------------------- */

static bool ret(jctx *c, jbuf *b, bool safe, jv *out) {
    if (!jb_take(c, b, out)) return false;
    out->safe = safe;
    return true;
}

static bool put_cp(jctx *c, jbuf *b, uint32_t cp) {
    char t[4];
    return jb_put(c, b, t, ju_encode(cp, t));
}

static bool put_cps(jctx *c, jbuf *b, const uint32_t *cps, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!put_cp(c, b, cps[i])) return false;
    return true;
}

static bool mk_str(jctx *c, const char *s, size_t n, bool safe, jv *out) {
    if (!jv_str(c, s, n, out)) return false;
    out->safe = safe;
    return true;
}

/* ---- case conversions ------------------------------------------------------------------- */

/* Map each code point of s through f (up to 3 code points out); f sees the
 * whole string for context-dependent rules (final sigma) and keeps a state
 * (title case: was the previous character cased). Invalid bytes pass as they are. */
typedef size_t (*case_fn)(const jstr *t, size_t i, uint32_t cp, bool *state, uint32_t out[3]);

static bool map_cases(jctx *c, const jv *s, case_fn f, bool safe, jv *out) {
    jbuf b = {0};
    const jstr *t = s->s;
    bool state = false;
    for (size_t i = 0; i < t->len;) {
        size_t len;
        uint32_t cp = ju_decode(t->s, t->len, i, &len), m[3];
        bool ok = len == 1 && cp >= 0x80 ? jb_put(c, &b, t->s + i, 1)
                                         : put_cps(c, &b, m, f(t, i, cp, &state, m));
        if (!ok) {
            free(b.p);
            return false;
        }
        i += len;
    }
    return ret(c, &b, safe, out);
}

static size_t upper_fn(const jstr *t, size_t i, uint32_t cp, bool *st, uint32_t out[3]) {
    (void)t, (void)i, (void)st;
    return to_upper(cp, out);
}
static size_t lower_fn(const jstr *t, size_t i, uint32_t cp, bool *st, uint32_t out[3]) {
    (void)st;
    return to_lower_at(t->s, t->len, i, cp, out);
}
/* str.title(): title-case after an uncased character, lower-case after a cased one */
static size_t title_fn(const jstr *t, size_t i, uint32_t cp, bool *prev_cased, uint32_t out[3]) {
    size_t k = *prev_cased ? to_lower_at(t->s, t->len, i, cp, out) : to_title(cp, out);
    *prev_cased = is_cased(cp);
    return k;
}
/* str.capitalize(): the first character title-cased, the rest lower-cased */
static size_t capitalize_fn(const jstr *t, size_t i, uint32_t cp, bool *st, uint32_t out[3]) {
    (void)st;
    return i == 0 ? to_title(cp, out) : to_lower_at(t->s, t->len, i, cp, out);
}
static size_t swapcase_fn(const jstr *t, size_t i, uint32_t cp, bool *st, uint32_t out[3]) {
    (void)st;
    if (is_upper(cp)) return to_lower_at(t->s, t->len, i, cp, out);
    if (is_lower(cp)) return to_upper(cp, out);
    out[0] = cp;
    return 1;
}

bool jstr_upper(jctx *c, const jv *s, jv *out) { return map_cases(c, s, upper_fn, s->safe, out); }
bool jstr_lower(jctx *c, const jv *s, jv *out) { return map_cases(c, s, lower_fn, s->safe, out); }
static bool py_title(jctx *c, const jv *s, jv *out) { return map_cases(c, s, title_fn, s->safe, out); }
bool jstr_capitalize(jctx *c, const jv *s, jv *out) {
    return map_cases(c, s, capitalize_fn, s->safe, out);
}
static bool py_swapcase(jctx *c, const jv *s, jv *out) {
    return map_cases(c, s, swapcase_fn, s->safe, out);
}

/* jinja2's title filter: upper-case the first character of each piece split at
 * runs of [-\s({\[<], lower-case the rest. */
bool jstr_title_filter(jctx *c, const jv *s, jv *out) {
    jbuf b = {0};
    const jstr *t = s->s;
    bool word_start = true;
    for (size_t i = 0; i < t->len;) {
        size_t len;
        uint32_t cp = ju_decode(t->s, t->len, i, &len), m[3];
        bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || ju_isspace(cp);
        size_t k;
        if (sep) {
            m[0] = cp;
            k = 1;
            word_start = true;
        } else if (word_start) {
            k = to_upper(cp, m);
            word_start = false;
        } else {
            k = to_lower_at(t->s, t->len, i, cp, m);
        }
        if (!put_cps(c, &b, m, k)) goto fail;
        i += len;
    }
    return ret(c, &b, false, out);
fail:
    free(b.p);
    return false;
}

bool jstr_islower(const jv *s) {
    bool cased = false;
    for (size_t i = 0; i < s->s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s->s->s, s->s->len, i, &len);
        if (is_upper(cp) || is_title(cp)) return false;
        if (is_lower(cp)) cased = true;
        i += len;
    }
    return cased;
}

bool jstr_isupper(const jv *s) {
    bool cased = false;
    for (size_t i = 0; i < s->s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s->s->s, s->s->len, i, &len);
        if (is_lower(cp) || is_title(cp)) return false;
        if (is_upper(cp)) cased = true;
        i += len;
    }
    return cased;
}

static bool py_istitle(const jv *s) {
    bool cased = false, prev_cased = false;
    for (size_t i = 0; i < s->s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s->s->s, s->s->len, i, &len);
        if (is_upper(cp) || is_title(cp)) {
            if (prev_cased) return false;
            prev_cased = cased = true;
        } else if (is_lower(cp)) {
            if (!prev_cased) return false;
            prev_cased = cased = true;
        } else {
            prev_cased = false;
        }
        i += len;
    }
    return cased;
}

/* all code points satisfy pred, and there is at least one (empty_ok: "" is true) */
static bool all_cp(const jv *s, bool (*pred)(uint32_t), bool empty_ok) {
    if (s->s->len == 0) return empty_ok;
    for (size_t i = 0; i < s->s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s->s->s, s->s->len, i, &len);
        if (!pred(cp)) return false;
        i += len;
    }
    return true;
}

static bool is_alnum(uint32_t cp) { return is_alpha(cp) || is_numeric(cp); }
static bool is_ascii(uint32_t cp) { return cp < 0x80; }

static bool py_isidentifier(const jv *s) {
    if (s->s->len == 0) return false;
    size_t i = 0, len;
    uint32_t cp = ju_decode(s->s->s, s->s->len, 0, &len);
    if (!(cp == '_' || (cp < 0x80 ? is_alpha(cp) : ju_is_ident_start(cp)))) return false;
    for (i = len; i < s->s->len; i += len) {
        cp = ju_decode(s->s->s, s->s->len, i, &len);
        if (!(cp == '_' || (cp < 0x80 ? (is_alpha(cp) || is_decimal(cp)) : ju_is_ident_cont(cp))))
            return false;
    }
    return true;
}

/* ---- markupsafe ------------------------------------------------------------------------------- */

bool jstr_escape(jctx *c, const jv *v, jv *out) {
    if (v->t == JV_STR && v->safe) {
        *out = *v;
        return true;
    }
    jv s;
    if (!jv_to_str(c, v, &s)) return false;
    jbuf b = {0};
    size_t start = 0;
    const jstr *t = s.s;
    for (size_t i = 0; i < t->len; i++) {
        const char *e = NULL;
        switch (t->s[i]) {
        case '&': e = "&amp;"; break;
        case '>': e = "&gt;"; break;
        case '<': e = "&lt;"; break;
        case '\'': e = "&#39;"; break;
        case '"': e = "&#34;"; break;
        default: continue;
        }
        if (!jb_put(c, &b, t->s + start, i - start) || !jb_puts(c, &b, e)) {
            free(b.p);
            return false;
        }
        start = i + 1;
    }
    if (!jb_put(c, &b, t->s + start, t->len - start)) {
        free(b.p);
        return false;
    }
    return ret(c, &b, true, out);
}

/* Strings past this size that get appended to become buffers with room to grow. */
#define APPEND_BUF_MIN 256

bool jstr_append(jctx *c, const jstr *a, const char *b, size_t bn, bool safe, jv *out) {
    size_t n = a->len + bn;
    if (n < a->len) return jx_fail(c, SW_E_RANGE, "string too long");
    if (!jx_step(c, bn / 256 + 1)) return false;
    jstr *r = ja_alloc(c->a, sizeof *r);
    if (!r) return jx_fail(c, SW_E_NOMEM, "out of memory");
    jsbuf *buf = a->buf;
    if (buf && a->s + a->len == buf->p + buf->used && buf->cap - buf->used > bn) {
        /* a ends where its buffer ends: extend in place */
        memcpy(buf->p + buf->used, b, bn);
        buf->used += bn;
        buf->p[buf->used] = '\0';
        r->s = a->s;
    } else {
        if (!jx_room(c, n)) return false;
        size_t cap = n + 1;
        if (n >= APPEND_BUF_MIN) {
            cap = n < SIZE_MAX / 4 ? 2 * n + 64 : n + 1;
            if (!jx_room(c, cap)) cap = n + 1;
        }
        char *p = ja_alloc(c->a, cap);
        if (!p) return jx_fail(c, SW_E_NOMEM, "out of memory");
        memcpy(p, a->s, a->len);
        memcpy(p + a->len, b, bn);
        p[n] = '\0';
        r->s = p;
        if (n >= APPEND_BUF_MIN) {
            buf = ja_alloc(c->a, sizeof *buf);
            if (!buf) return jx_fail(c, SW_E_NOMEM, "out of memory");
            buf->p = p;
            buf->used = n;
            buf->cap = cap - 1;
        } else {
            buf = NULL;
        }
    }
    r->len = n;
    r->buf = buf;
    /* a sequence cut at the seam is recounted; valid UTF-8 adds up */
    bool seam = (a->len && (unsigned char)a->s[a->len - 1] >= 0x80) || (bn && ((unsigned char)b[0] & 0xC0) == 0x80);
    r->ncp = seam ? ju_count(r->s, n) : a->ncp + ju_count(b, bn);
    *out = jv_from_jstr(r, safe);
    return true;
}

/* a + b for strings; a Markup operand escapes the other (markupsafe) */
bool jstr_concat(jctx *c, const jv *a, const jv *b, jv *out) {
    jv x = *a, y = *b;
    bool safe = a->safe || b->safe;
    if (safe && !a->safe && !jstr_escape(c, a, &x)) return false;
    if (safe && !b->safe && !jstr_escape(c, b, &y)) return false;
    return jstr_append(c, x.s, y.s->s, y.s->len, safe, out);
}

bool jstr_repeat(jctx *c, const jv *s, int64_t k, jv *out) {
    if (k <= 0 || s->s->len == 0) return mk_str(c, "", 0, s->safe, out);
    uint64_t n;
    if (!sw_mul_u64(s->s->len, (uint64_t)k, &n) || !jx_room(c, n))
        return jx_fail(c, SW_E_RANGE, "string repetition exceeds the render's memory bound");
    if (!jx_step(c, n / 256)) return false;
    jstr *r = ja_alloc(c->a, sizeof *r + n + 1);
    if (!r) return jx_fail(c, SW_E_NOMEM, "out of memory");
    r->s = (char *)(r + 1);
    for (int64_t i = 0; i < k; i++) memcpy(r->s + (size_t)i * s->s->len, s->s->s, s->s->len);
    r->s[n] = '\0';
    r->len = n;
    r->ncp = s->s->ncp * (size_t)k;
    *out = jv_from_jstr(r, s->safe);
    return true;
}

/* ---- indexing and searching ---------------------------------------------------------------------- */

bool jstr_index(jctx *c, const jv *s, int64_t i, jv *out, bool *found) {
    int64_t n = (int64_t)s->s->ncp;
    if (i < 0) i += n;
    *found = i >= 0 && i < n;
    if (!*found) return true;
    size_t off = ju_offset(s->s, (size_t)i), len;
    ju_decode(s->s->s, s->s->len, off, &len);
    return mk_str(c, s->s->s + off, len, s->safe, out);
}

bool jstr_slice(jctx *c, const jv *s, int64_t start, int64_t stop, int64_t step, jv *out) {
    const jstr *t = s->s;
    if (step == 1) {
        if (stop < start) stop = start;
        size_t a = ju_offset(t, (size_t)start), b = ju_offset(t, (size_t)stop);
        return mk_str(c, t->s + a, b - a, s->safe, out);
    }
    /* general step: collect code point offsets */
    size_t n = t->ncp;
    size_t *offs = ja_alloc(c->a, (n + 1) * sizeof *offs);
    if (!offs) return jx_fail(c, SW_E_NOMEM, "out of memory");
    for (size_t i = 0, k = 0; k <= n; k++) {
        offs[k] = i;
        if (i < t->len) {
            size_t len;
            ju_decode(t->s, t->len, i, &len);
            i += len;
        }
    }
    jbuf b = {0};
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (i < 0 || (size_t)i >= n) break;
        if (!jb_put(c, &b, t->s + offs[i], offs[i + 1] - offs[i])) {
            free(b.p);
            return false;
        }
    }
    return ret(c, &b, s->safe, out);
}

static const char *mem_find(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    return memmem(h, hn, nd, nn);
}

static const char *mem_rfind(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

bool jstr_contains(jctx *c, const jv *hay, const jv *needle, bool *in) {
    if (!jx_step(c, hay->s->len / 256 + 1)) return false;
    *in = mem_find(hay->s->s, hay->s->len, needle->s->s, needle->s->len) != NULL;
    return true;
}

/* ---- argument helpers -------------------------------------------------------------------------- */

static bool no_kw(jctx *c, const jargs *a, const char *m) {
    if (a->nkw) return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() takes no keyword arguments", m);
    return true;
}

static bool npos_range(jctx *c, const jargs *a, const char *m, size_t lo, size_t hi) {
    if (!no_kw(c, a, m)) return false;
    if (a->npos < lo || a->npos > hi) {
        if (lo == hi)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() takes exactly %zu argument%s (%zu given)",
                           m, lo, lo == 1 ? "" : "s", a->npos);
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() takes %s %zu argument%s (%zu given)", m,
                       a->npos < lo ? "at least" : "at most", a->npos < lo ? lo : hi,
                       (a->npos < lo ? lo : hi) == 1 ? "" : "s", a->npos);
    }
    return true;
}

static bool want_str(jctx *c, const jv *v, const char *m, int argno) {
    if (v->t == JV_STR) return true;
    if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s() argument %d must be str, not %s", m, argno,
                   jv_type_name(v));
}

static bool want_int(jctx *c, const jv *v, int64_t *out) {
    if (v->t == JV_INT) *out = v->i;
    else if (v->t == JV_BOOL) *out = v->b;
    else if (v->t == JV_UNDEF) return jx_undef_fail(c, v);
    else
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: '%s' object cannot be interpreted as an integer",
                       jv_type_name(v));
    return true;
}

/* Optional start/end arguments (code points, slice semantics) -> byte range. */
static bool sub_range(jctx *c, const jv *s, const jargs *a, size_t first, size_t *b0, size_t *b1,
                      size_t *cp0) {
    int64_t n = (int64_t)s->s->ncp, st = 0, en = n;
    if (a->npos > first && a->pos[first].t != JV_NONE && !want_int(c, &a->pos[first], &st)) return false;
    if (a->npos > first + 1 && a->pos[first + 1].t != JV_NONE && !want_int(c, &a->pos[first + 1], &en))
        return false;
    if (st < 0) st = st + n < 0 ? 0 : st + n;
    if (en < 0) en = en + n < 0 ? 0 : en + n;
    if (st > n) st = n + 1; /* start past the end: nothing matches, not even "" */
    if (en > n) en = n;
    *cp0 = (size_t)st;
    if (st > n) {
        *b0 = *b1 = SIZE_MAX;
        return true;
    }
    *b0 = ju_offset(s->s, (size_t)st);
    *b1 = en < st ? *b0 : ju_offset(s->s, (size_t)en);
    return true;
}

static int64_t cp_index(const jstr *t, size_t byte_off) {
    return (int64_t)(t->ncp == t->len ? byte_off : ju_count(t->s, byte_off));
}

/* startswith / endswith with a str or a tuple of str */
static bool affix(jctx *c, const jv *s, const jargs *a, bool end, jv *out) {
    const char *m = end ? "endswith" : "startswith";
    if (!npos_range(c, a, m, 1, 3)) return false;
    size_t b0, b1, cp0;
    if (!sub_range(c, s, a, 1, &b0, &b1, &cp0)) return false;
    const jv *p = &a->pos[0];
    const jv *cands = p;
    size_t nc = 1;
    if (p->t == JV_SEQ && p->q->kind == SQ_TUPLE) {
        cands = p->q->v;
        nc = p->q->n;
    } else if (p->t != JV_STR) {
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: %s first arg must be str or a tuple of str, not %s",
                       m, jv_type_name(p));
    }
    bool r = false;
    for (size_t i = 0; i < nc && !r; i++) {
        if (cands[i].t != JV_STR)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: tuple for %s must only contain str, not %s",
                           m, jv_type_name(&cands[i]));
        if (b0 == SIZE_MAX) break;
        size_t k = cands[i].s->len, span = b1 - b0;
        if (k > span) continue;
        const char *at = end ? s->s->s + b1 - k : s->s->s + b0;
        r = memcmp(at, cands[i].s->s, k) == 0;
    }
    *out = jv_bool(r);
    return true;
}

static bool find_like(jctx *c, const jv *s, const jargs *a, const char *m, bool rev, bool raise,
                      jv *out) {
    if (!npos_range(c, a, m, 1, 3) || !want_str(c, &a->pos[0], m, 1)) return false;
    size_t b0, b1, cp0;
    if (!sub_range(c, s, a, 1, &b0, &b1, &cp0)) return false;
    if (!jx_step(c, s->s->len / 256 + 1)) return false;
    const char *hit = NULL;
    if (b0 != SIZE_MAX) {
        const jstr *nd = a->pos[0].s;
        hit = rev ? mem_rfind(s->s->s + b0, b1 - b0, nd->s, nd->len)
                  : mem_find(s->s->s + b0, b1 - b0, nd->s, nd->len);
    }
    if (!hit) {
        if (raise) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: substring not found");
        *out = jv_int(-1);
        return true;
    }
    *out = jv_int(cp_index(s->s, (size_t)(hit - s->s->s)));
    return true;
}

static bool count_sub(jctx *c, const jv *s, const jargs *a, jv *out) {
    if (!npos_range(c, a, "count", 1, 3) || !want_str(c, &a->pos[0], "count", 1)) return false;
    size_t b0, b1, cp0;
    if (!sub_range(c, s, a, 1, &b0, &b1, &cp0)) return false;
    if (b0 == SIZE_MAX) {
        *out = jv_int(0);
        return true;
    }
    const jstr *nd = a->pos[0].s;
    if (nd->len == 0) {
        *out = jv_int((int64_t)ju_count(s->s->s + b0, b1 - b0) + 1);
        return true;
    }
    int64_t k = 0;
    const char *p = s->s->s + b0, *e = s->s->s + b1;
    while (p < e && (p = mem_find(p, (size_t)(e - p), nd->s, nd->len))) {
        k++;
        p += nd->len;
    }
    *out = jv_int(k);
    return jx_step(c, s->s->len / 256);
}

/* ---- strip / split / join / replace ------------------------------------------------------------ */

static bool in_chars(const jv *chars, uint32_t cp) {
    const jstr *t = chars->s;
    for (size_t i = 0; i < t->len;) {
        size_t len;
        if (ju_decode(t->s, t->len, i, &len) == cp) return true;
        i += len;
    }
    return false;
}

bool jstr_strip(jctx *c, const jv *s, const jv *chars, int which, jv *out) {
    const jstr *t = s->s;
    bool ws = !chars || chars->t == JV_NONE;
    if (!ws && chars->t != JV_STR) {
        if (chars->t == JV_UNDEF) return jx_undef_fail(c, chars);
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: strip arg must be None or str");
    }
    size_t a = 0, b = t->len;
    if (which & 1) {
        while (a < b) {
            size_t len;
            uint32_t cp = ju_decode(t->s, b, a, &len);
            if (!(ws ? ju_isspace(cp) : in_chars(chars, cp))) break;
            a += len;
        }
    }
    if (which & 2) {
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)t->s[st] & 0xC0) == 0x80 && b - st < 4) st--;
            size_t len;
            uint32_t cp = ju_decode(t->s, b, st, &len);
            if (st + len != b) st = b - 1, cp = (unsigned char)t->s[st];
            if (!(ws ? ju_isspace(cp) : in_chars(chars, cp))) break;
            b = st;
        }
    }
    if (a == 0 && b == t->len) {
        *out = *s;
        return true;
    }
    return mk_str(c, t->s + a, b - a, s->safe, out);
}

static bool push_piece(jctx *c, jv **items, size_t *n, size_t *cap, const char *p, size_t len,
                       bool safe) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        jv *ni = ja_alloc(c->a, nc * sizeof *ni);
        if (!ni) return jx_fail(c, SW_E_NOMEM, "out of memory");
        if (*n) memcpy(ni, *items, *n * sizeof *ni);
        *items = ni;
        *cap = nc;
    }
    return mk_str(c, p, len, safe, &(*items)[(*n)++]);
}

static bool list_of(jctx *c, jv *items, size_t n, jv *out) { return jv_seq(c, SQ_LIST, items, n, out); }

/* Byte length of the code point that ends at byte end (1 for a stray byte). */
static size_t cp_len_before(const jstr *t, size_t end) {
    size_t st = end - 1;
    while (st > 0 && ((unsigned char)t->s[st] & 0xC0) == 0x80 && end - st < 4) st--;
    size_t len;
    ju_decode(t->s, end, st, &len);
    return st + len == end ? len : 1;
}

/* Length of the whitespace code point ending at byte end, 0 when it is not one. */
static size_t space_before(const jstr *t, size_t end) {
    size_t k = cp_len_before(t, end), len;
    uint32_t cp = k == 1 ? (unsigned char)t->s[end - 1] : ju_decode(t->s, end, end - k, &len);
    return ju_isspace(cp) ? k : 0;
}

static bool py_split(jctx *c, const jv *s, const jv *sep, int64_t maxsplit, bool rev, jv *out) {
    const jstr *t = s->s;
    jv *items = NULL;
    size_t n = 0, cap = 0;
    if (!jx_step(c, t->len / 64 + 1)) return false;
    if (!sep || sep->t == JV_NONE) {
        /* runs of whitespace; no empty strings */
        size_t i = 0, e = t->len;
        if (!rev) {
            for (;;) {
                while (i < e) {
                    size_t len;
                    if (!ju_isspace(ju_decode(t->s, e, i, &len))) break;
                    i += len;
                }
                if (i >= e) break;
                if (maxsplit >= 0 && (int64_t)n >= maxsplit) {
                    /* the rest, right-stripped */
                    size_t b = e;
                    while (b > i && ju_isspace((unsigned char)t->s[b - 1])) b--;
                    if (!push_piece(c, &items, &n, &cap, t->s + i, e - i, s->safe)) return false;
                    (void)b;
                    break;
                }
                size_t j = i;
                while (j < e) {
                    size_t len;
                    if (ju_isspace(ju_decode(t->s, e, j, &len))) break;
                    j += len;
                }
                if (!push_piece(c, &items, &n, &cap, t->s + i, j - i, s->safe)) return false;
                i = j;
            }
        } else {
            /* from the right: collect pieces then reverse */
            size_t b = e;
            for (;;) {
                while (b > 0 && space_before(t, b)) b -= space_before(t, b);
                if (b == 0) break;
                if (maxsplit >= 0 && (int64_t)n >= maxsplit) {
                    if (!push_piece(c, &items, &n, &cap, t->s, b, s->safe)) return false;
                    break;
                }
                size_t a = b;
                while (a > 0 && !space_before(t, a)) a -= cp_len_before(t, a);
                if (!push_piece(c, &items, &n, &cap, t->s + a, b - a, s->safe)) return false;
                b = a;
            }
            for (size_t k = 0; k < n / 2; k++) {
                jv tmp = items[k];
                items[k] = items[n - 1 - k];
                items[n - 1 - k] = tmp;
            }
        }
        return list_of(c, items, n, out);
    }
    if (sep->t != JV_STR) {
        if (sep->t == JV_UNDEF) return jx_undef_fail(c, sep);
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: must be str or None, not %s", jv_type_name(sep));
    }
    const jstr *sp = sep->s;
    if (sp->len == 0) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: empty separator");
    if (!rev) {
        const char *p = t->s, *e = t->s + t->len;
        for (;;) {
            const char *h = (maxsplit >= 0 && (int64_t)n >= maxsplit) ? NULL
                                                                     : mem_find(p, (size_t)(e - p), sp->s, sp->len);
            if (!h) {
                if (!push_piece(c, &items, &n, &cap, p, (size_t)(e - p), s->safe)) return false;
                break;
            }
            if (!push_piece(c, &items, &n, &cap, p, (size_t)(h - p), s->safe)) return false;
            p = h + sp->len;
        }
    } else {
        size_t b = t->len;
        for (;;) {
            const char *h = (maxsplit >= 0 && (int64_t)n >= maxsplit) ? NULL
                                                                     : mem_rfind(t->s, b, sp->s, sp->len);
            if (!h) {
                if (!push_piece(c, &items, &n, &cap, t->s, b, s->safe)) return false;
                break;
            }
            size_t at = (size_t)(h - t->s);
            if (!push_piece(c, &items, &n, &cap, h + sp->len, b - at - sp->len, s->safe)) return false;
            b = at;
        }
        for (size_t k = 0; k < n / 2; k++) {
            jv tmp = items[k];
            items[k] = items[n - 1 - k];
            items[n - 1 - k] = tmp;
        }
    }
    return list_of(c, items, n, out);
}

static bool is_linebreak(uint32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
           cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

bool jstr_splitlines(jctx *c, const jv *s, bool keepends, jv *out) {
    const jstr *t = s->s;
    jv *items = NULL;
    size_t n = 0, cap = 0, start = 0;
    for (size_t i = 0; i < t->len;) {
        size_t len;
        uint32_t cp = ju_decode(t->s, t->len, i, &len);
        if (!is_linebreak(cp)) {
            i += len;
            continue;
        }
        size_t eol = i + len;
        if (cp == '\r' && eol < t->len && t->s[eol] == '\n') eol++;
        if (!push_piece(c, &items, &n, &cap, t->s + start, (keepends ? eol : i) - start, s->safe))
            return false;
        start = i = eol;
    }
    if (start < t->len && !push_piece(c, &items, &n, &cap, t->s + start, t->len - start, s->safe))
        return false;
    return list_of(c, items, n, out);
}

bool jstr_replace(jctx *c, const jv *s, const jv *old, const jv *new_, int64_t count, jv *out) {
    jv nw = *new_;
    if (s->safe && !new_->safe && !jstr_escape(c, new_, &nw)) return false;
    const jstr *t = s->s, *o = old->s, *w = nw.s;
    jbuf b = {0};
    if (!jx_step(c, t->len / 128 + 1)) return false;
    if (o->len == 0) {
        /* insert between every code point (and at both ends) */
        int64_t done = 0;
        size_t i = 0;
        for (;;) {
            if (count < 0 || done < count) {
                if (!jb_put(c, &b, w->s, w->len)) goto fail;
                done++;
            }
            if (i >= t->len) break;
            size_t len;
            ju_decode(t->s, t->len, i, &len);
            if (!jb_put(c, &b, t->s + i, len)) goto fail;
            i += len;
        }
        return ret(c, &b, s->safe, out);
    }
    const char *p = t->s, *e = t->s + t->len;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const char *h = mem_find(p, (size_t)(e - p), o->s, o->len);
        if (!h) break;
        if (!jb_put(c, &b, p, (size_t)(h - p)) || !jb_put(c, &b, w->s, w->len)) goto fail;
        p = h + o->len;
        done++;
    }
    if (done == 0) {
        free(b.p);
        *out = *s;
        return true;
    }
    if (!jb_put(c, &b, p, (size_t)(e - p))) goto fail;
    return ret(c, &b, s->safe, out);
fail:
    free(b.p);
    return false;
}

static bool py_join(jctx *c, const jv *sep, const jv *iterable, jv *out) {
    const jv *items;
    size_t n;
    jv *scratch;
    if (iterable->t == JV_UNDEF) return jx_undef_fail(c, iterable);
    if (!jv_iter(c, iterable, &items, &n, &scratch)) return false;
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        jv it = items[i];
        if (it.t != JV_STR) {
            free(b.p);
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: sequence item %zu: expected str instance, %s found",
                           i, jv_type_name(&it));
        }
        if (sep->safe && !it.safe && !jstr_escape(c, &items[i], &it)) goto fail;
        if ((i && !jb_put(c, &b, sep->s->s, sep->s->len)) || !jb_put(c, &b, it.s->s, it.s->len))
            goto fail;
    }
    return ret(c, &b, sep->safe, out);
fail:
    free(b.p);
    return false;
}

static bool partition(jctx *c, const jv *s, const jv *sep, bool rev, jv *out) {
    if (!want_str(c, sep, rev ? "rpartition" : "partition", 1)) return false;
    if (sep->s->len == 0) return jx_fail(c, SW_E_INVALID_ARG, "ValueError: empty separator");
    const jstr *t = s->s;
    const char *h = rev ? mem_rfind(t->s, t->len, sep->s->s, sep->s->len)
                        : mem_find(t->s, t->len, sep->s->s, sep->s->len);
    jv parts[3];
    if (!h) {
        jv empty;
        if (!mk_str(c, "", 0, s->safe, &empty)) return false;
        parts[0] = rev ? empty : *s;
        parts[1] = empty;
        parts[2] = rev ? *s : empty;
    } else {
        size_t at = (size_t)(h - t->s);
        if (!mk_str(c, t->s, at, s->safe, &parts[0]) ||
            !mk_str(c, sep->s->s, sep->s->len, s->safe, &parts[1]) ||
            !mk_str(c, h + sep->s->len, t->len - at - sep->s->len, s->safe, &parts[2]))
            return false;
    }
    return jv_seq(c, SQ_TUPLE, parts, 3, out);
}

static bool pad(jctx *c, const jv *s, const jargs *a, const char *m, int align, jv *out) {
    if (!npos_range(c, a, m, 1, 2)) return false;
    int64_t width = 0;
    if (!want_int(c, &a->pos[0], &width)) return false;
    uint32_t fill = ' ';
    if (a->npos > 1) {
        const jv *f = &a->pos[1];
        if (f->t != JV_STR || f->s->ncp != 1)
            return jx_fail(c, SW_E_INVALID_ARG, "TypeError: The fill character must be exactly one character long");
        size_t len;
        fill = ju_decode(f->s->s, f->s->len, 0, &len);
    }
    int64_t n = (int64_t)s->s->ncp;
    if (width <= n) {
        *out = *s;
        return true;
    }
    if (!jx_room(c, (size_t)(width - n) * 4)) return false;
    int64_t total = width - n, left = align < 0 ? 0 : align > 0 ? total : total / 2 + (total & width & 1);
    jbuf b = {0};
    for (int64_t i = 0; i < left; i++)
        if (!put_cp(c, &b, fill)) goto fail;
    if (!jb_put(c, &b, s->s->s, s->s->len)) goto fail;
    for (int64_t i = left; i < total; i++)
        if (!put_cp(c, &b, fill)) goto fail;
    return ret(c, &b, s->safe, out);
fail:
    free(b.p);
    return false;
}

static bool zfill(jctx *c, const jv *s, const jargs *a, jv *out) {
    if (!npos_range(c, a, "zfill", 1, 1)) return false;
    int64_t width = 0;
    if (!want_int(c, &a->pos[0], &width)) return false;
    int64_t n = (int64_t)s->s->ncp;
    if (width <= n) {
        *out = *s;
        return true;
    }
    if (!jx_room(c, (size_t)(width - n))) return false;
    jbuf b = {0};
    size_t skip = 0;
    if (s->s->len && (s->s->s[0] == '+' || s->s->s[0] == '-')) {
        if (!jb_put(c, &b, s->s->s, 1)) goto fail;
        skip = 1;
    }
    for (int64_t i = 0; i < width - n; i++)
        if (!jb_putc(c, &b, '0')) goto fail;
    if (!jb_put(c, &b, s->s->s + skip, s->s->len - skip)) goto fail;
    return ret(c, &b, s->safe, out);
fail:
    free(b.p);
    return false;
}

static bool expandtabs(jctx *c, const jv *s, const jargs *a, jv *out) {
    int64_t ts = 8;
    if (a->npos > 1 || (a->nkw && !(a->nkw == 1 && a->kwn[0].n == 7 && !memcmp(a->kwn[0].s, "tabsize", 7))))
        return jx_fail(c, SW_E_INVALID_ARG, "TypeError: expandtabs() takes at most 1 argument");
    if (a->npos == 1 && !want_int(c, &a->pos[0], &ts)) return false;
    if (a->nkw && !want_int(c, &a->kwv[0], &ts)) return false;
    jbuf b = {0};
    int64_t col = 0;
    for (size_t i = 0; i < s->s->len;) {
        size_t len;
        uint32_t cp = ju_decode(s->s->s, s->s->len, i, &len);
        if (cp == '\t') {
            int64_t k = ts > 0 ? ts - col % ts : 0;
            if (!jx_room(c, (size_t)k)) goto fail;
            for (int64_t j = 0; j < k; j++)
                if (!jb_putc(c, &b, ' ')) goto fail;
            col += k;
        } else {
            if (!jb_put(c, &b, s->s->s + i, len)) goto fail;
            col = (cp == '\n' || cp == '\r') ? 0 : col + 1;
        }
        i += len;
    }
    return ret(c, &b, s->safe, out);
fail:
    free(b.p);
    return false;
}

/* ---- the method table ---------------------------------------------------------------------------- */

static const char *const k_methods[] = {
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
    "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
    "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix",
    "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper",
    "zfill", NULL};

bool jstr_has_method(const char *name, size_t n) {
    for (size_t i = 0; k_methods[i]; i++)
        if (strlen(k_methods[i]) == n && !memcmp(k_methods[i], name, n)) return true;
    return false;
}

static bool is(const char *name, size_t n, const char *lit) {
    return strlen(lit) == n && !memcmp(name, lit, n);
}

/* sep / maxsplit for split and rsplit (keywords allowed) */
static bool split_args(jctx *c, const jargs *a, const char *m, const jv **sep, int64_t *maxsplit) {
    static const char *const names[] = {"sep", "maxsplit"};
    jv defs[2] = {jv_none(), jv_int(-1)}, vals[2];
    if (!jf_bind(c, m, names, 2, defs, a, vals)) return false;
    jv *sv = ja_alloc(c->a, sizeof *sv);
    if (!sv) return jx_fail(c, SW_E_NOMEM, "out of memory");
    *sv = vals[0];
    *sep = sv;
    return want_int(c, &vals[1], maxsplit);
}

static bool pred(jctx *c, const jargs *a, const char *m, bool v, jv *out) {
    if (!npos_range(c, a, m, 0, 0)) return false;
    *out = jv_bool(v);
    return true;
}

bool jstr_method(jctx *c, const jv *self, const char *name, size_t n, const jargs *a, jv *out) {
    if (!jx_step(c, 1)) return false;
    if (is(name, n, "startswith")) return affix(c, self, a, false, out);
    if (is(name, n, "endswith")) return affix(c, self, a, true, out);
    if (is(name, n, "strip") || is(name, n, "lstrip") || is(name, n, "rstrip")) {
        char m[8];
        snprintf(m, sizeof m, "%.*s", (int)n, name);
        if (!npos_range(c, a, m, 0, 1)) return false;
        int which = name[0] == 'l' ? 1 : name[0] == 'r' ? 2 : 3;
        return jstr_strip(c, self, a->npos ? &a->pos[0] : NULL, which, out);
    }
    if (is(name, n, "split") || is(name, n, "rsplit")) {
        const jv *sep = NULL;
        int64_t ms = -1;
        if (!split_args(c, a, name[0] == 'r' ? "rsplit" : "split", &sep, &ms)) return false;
        return py_split(c, self, sep, ms, name[0] == 'r', out);
    }
    if (is(name, n, "splitlines")) {
        static const char *const names[] = {"keepends"};
        jv defs[1] = {jv_bool(false)}, v[1];
        if (!jf_bind(c, "splitlines", names, 1, defs, a, v)) return false;
        return jstr_splitlines(c, self, jv_truthy(&v[0]), out);
    }
    if (is(name, n, "upper")) return npos_range(c, a, "upper", 0, 0) && jstr_upper(c, self, out);
    if (is(name, n, "lower") || is(name, n, "casefold"))
        return npos_range(c, a, "lower", 0, 0) && jstr_lower(c, self, out);
    if (is(name, n, "title")) return npos_range(c, a, "title", 0, 0) && py_title(c, self, out);
    if (is(name, n, "capitalize"))
        return npos_range(c, a, "capitalize", 0, 0) && jstr_capitalize(c, self, out);
    if (is(name, n, "swapcase")) return npos_range(c, a, "swapcase", 0, 0) && py_swapcase(c, self, out);
    if (is(name, n, "replace")) {
        if (!npos_range(c, a, "replace", 2, 3) || !want_str(c, &a->pos[0], "replace", 1) ||
            !want_str(c, &a->pos[1], "replace", 2))
            return false;
        int64_t cnt = -1;
        if (a->npos == 3 && !want_int(c, &a->pos[2], &cnt)) return false;
        return jstr_replace(c, self, &a->pos[0], &a->pos[1], cnt, out);
    }
    if (is(name, n, "find")) return find_like(c, self, a, "find", false, false, out);
    if (is(name, n, "rfind")) return find_like(c, self, a, "rfind", true, false, out);
    if (is(name, n, "index")) return find_like(c, self, a, "index", false, true, out);
    if (is(name, n, "rindex")) return find_like(c, self, a, "rindex", true, true, out);
    if (is(name, n, "count")) return count_sub(c, self, a, out);
    if (is(name, n, "join")) return npos_range(c, a, "join", 1, 1) && py_join(c, self, &a->pos[0], out);
    if (is(name, n, "partition"))
        return npos_range(c, a, "partition", 1, 1) && partition(c, self, &a->pos[0], false, out);
    if (is(name, n, "rpartition"))
        return npos_range(c, a, "rpartition", 1, 1) && partition(c, self, &a->pos[0], true, out);
    if (is(name, n, "removeprefix") || is(name, n, "removesuffix")) {
        bool pre = name[6] == 'p';
        if (!npos_range(c, a, pre ? "removeprefix" : "removesuffix", 1, 1) ||
            !want_str(c, &a->pos[0], pre ? "removeprefix" : "removesuffix", 1))
            return false;
        const jstr *t = self->s, *x = a->pos[0].s;
        if (x->len <= t->len && !memcmp(pre ? t->s : t->s + t->len - x->len, x->s, x->len) && x->len)
            return mk_str(c, pre ? t->s + x->len : t->s, t->len - x->len, self->safe, out);
        *out = *self;
        return true;
    }
    if (is(name, n, "center")) return pad(c, self, a, "center", 0, out);
    if (is(name, n, "ljust")) return pad(c, self, a, "ljust", -1, out);
    if (is(name, n, "rjust")) return pad(c, self, a, "rjust", 1, out);
    if (is(name, n, "zfill")) return zfill(c, self, a, out);
    if (is(name, n, "expandtabs")) return expandtabs(c, self, a, out);
    if (is(name, n, "format")) return jstr_format(c, self, a, NULL, out);
    if (is(name, n, "format_map")) {
        if (!npos_range(c, a, "format_map", 1, 1)) return false;
        return jstr_format(c, self, NULL, &a->pos[0], out);
    }
    if (is(name, n, "isalnum")) return pred(c, a, "isalnum", all_cp(self, is_alnum, false), out);
    if (is(name, n, "isalpha")) return pred(c, a, "isalpha", all_cp(self, is_alpha, false), out);
    if (is(name, n, "isascii")) return pred(c, a, "isascii", all_cp(self, is_ascii, true), out);
    if (is(name, n, "isdecimal")) return pred(c, a, "isdecimal", all_cp(self, is_decimal, false), out);
    if (is(name, n, "isdigit")) return pred(c, a, "isdigit", all_cp(self, is_digit, false), out);
    if (is(name, n, "isnumeric")) return pred(c, a, "isnumeric", all_cp(self, is_numeric, false), out);
    if (is(name, n, "isspace")) return pred(c, a, "isspace", all_cp(self, ju_isspace, false), out);
    if (is(name, n, "isprintable"))
        return pred(c, a, "isprintable", all_cp(self, ju_isprintable, true), out);
    if (is(name, n, "islower")) return pred(c, a, "islower", jstr_islower(self), out);
    if (is(name, n, "isupper")) return pred(c, a, "isupper", jstr_isupper(self), out);
    if (is(name, n, "istitle")) return pred(c, a, "istitle", py_istitle(self), out);
    if (is(name, n, "isidentifier")) return pred(c, a, "isidentifier", py_isidentifier(self), out);
    return jx_fail(c, SW_E_UNSUPPORTED, "str.%.*s() is not supported", (int)n, name);
}
