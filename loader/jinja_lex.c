/* jinja_lex.c — the Jinja lexer, byte-compatible with jinja2's Lexer for the
 * environment transformers uses (default delimiters, trim_blocks,
 * lstrip_blocks, no line statements, keep_trailing_newline off).
 *
 * What it reproduces: newline normalisation and the dropped final newline;
 * "-" and "+" whitespace control on both sides of tags; trim_blocks (one
 * newline after %} and #}, never after }}); lstrip_blocks (blanks before a
 * block or comment tag that starts its line); {% raw %}; Python's Unicode
 * notion of whitespace (\s, str.strip); Python's string-literal escapes;
 * brace balancing inside tags. */
#include "jinja_stb.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"

char *jlex_normalize(const char *src, size_t n, size_t *out_n) {
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            o[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            o[k++] = src[i];
        }
    }
    /* lines = split(...); if lines[-1] == "": del lines[-1]  -> one final newline goes */
    if (k > 0 && o[k - 1] == '\n') k--;
    o[k] = '\0';
    *out_n = k;
    return o;
}

typedef struct lexer {
    jarena *a;
    const char *s;
    size_t n, pos;
    int line;
    bool line_starting;
    jtok *toks;
    sw_err *err;
    char bal[256];
    int nbal;
} lexer;

static sw_status lfail(lexer *L, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static sw_status lfail(lexer *L, const char *fmt, ...) {
    char m[SW_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return sw_err_set(L->err, SW_E_FORMAT, "line %d: %s", L->line, m);
}

static bool push(lexer *L, jtok t) {
    arrput(L->toks, t);
    return true;
}

static int count_nl(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

/* Length of the Python-whitespace code point at s[i], 0 if none. */
static size_t space_at(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    unsigned char ch = (unsigned char)s[i];
    if (ch < 0x80) return ju_isspace(ch) ? 1 : 0;
    size_t len;
    uint32_t cp = ju_decode(s, n, i, &len);
    return ju_isspace(cp) ? len : 0;
}

static size_t skip_space(const char *s, size_t n, size_t i) {
    size_t k;
    while ((k = space_at(s, n, i)) > 0) i += k;
    return i;
}

/* End of the whitespace-only suffix test: is s[from..to) non-empty and all \s? */
static bool all_space(const char *s, size_t from, size_t to) {
    if (from >= to) return false;
    size_t i = from;
    while (i < to) {
        size_t k = space_at(s, to, i);
        if (!k) return false;
        i += k;
    }
    return true;
}

/* Python str.rstrip(): new end of s[from..to). */
static size_t rstrip_end(const char *s, size_t from, size_t to) {
    while (to > from) {
        /* step back over one code point */
        size_t st = to - 1;
        while (st > from && ((unsigned char)s[st] & 0xC0) == 0x80 && to - st < 4) st--;
        size_t len;
        uint32_t cp = ju_decode(s, to, st, &len);
        if (st + len != to) { /* not a clean code point: treat the last byte alone */
            st = to - 1;
            cp = (unsigned char)s[st];
        }
        if (!ju_isspace(cp)) break;
        to = st;
    }
    return to;
}

/* Emit text s[from..to) before a tag, applying the tag's whitespace control
 * (sign '-', '+' or 0) and lstrip_blocks (not for variable tags). */
static void emit_text(lexer *L, size_t from, size_t to, char sign, bool is_var) {
    int nl = count_nl(L->s + from, to - from);
    size_t end = to;
    if (sign == '-') {
        end = rstrip_end(L->s, from, to);
    } else if (sign != '+' && !is_var) {
        size_t lpos = from;
        for (size_t i = to; i > from; i--) {
            if (L->s[i - 1] == '\n') {
                lpos = i;
                break;
            }
        }
        if ((lpos > from || L->line_starting) && all_space(L->s, lpos, to)) end = lpos;
    }
    if (end > from) {
        jtok t = {.type = T_DATA, .line = L->line, .s = L->s + from, .n = end - from};
        push(L, t);
    }
    L->line += nl;
}

static bool starts(const lexer *L, size_t i, const char *lit) {
    size_t k = strlen(lit);
    return i + k <= L->n && memcmp(L->s + i, lit, k) == 0;
}

/* Block-end forms after i: "+%}", "-%}\s*", "%}\n?". Returns the end or 0. */
static size_t block_end_at(const lexer *L, size_t i, const char *close) {
    if (L->s[i] == '+' && starts(L, i + 1, close)) return i + 3;
    if (L->s[i] == '-' && starts(L, i + 1, close)) return skip_space(L->s, L->n, i + 3);
    if (starts(L, i, close)) {
        size_t e = i + 2;
        if (e < L->n && L->s[e] == '\n') e++;
        return e;
    }
    return 0;
}

/* ---- string literals ------------------------------------------------------------ */


/* Decode a string literal body like Python's
 * body.encode("ascii", "backslashreplace").decode("unicode-escape"). */
static sw_status decode_string(lexer *L, const char *s, size_t n, jtok *t) {
    char *o = ja_alloc(L->a, n * 3 + 16);
    if (!o) return sw_err_set(L->err, SW_E_NOMEM, "template: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            o[k++] = s[i++];
            continue;
        }
        i++; /* the regex guarantees a character follows */
        unsigned char e = (unsigned char)s[i];
        if (e >= 0x80) {
            /* backslashreplace turned the character into \xNN / \uNNNN / \UNNNNNNNN,
             * whose own backslash then escapes ours: a literal "\" + "x.." text. */
            size_t len;
            uint32_t cp = ju_decode(s, n, i, &len);
            i += len;
            int w = cp < 0x100 ? 2 : cp < 0x10000 ? 4 : 8;
            k += (size_t)snprintf(o + k, 16, "\\%c%0*x", w == 2 ? 'x' : w == 4 ? 'u' : 'U', w,
                                  (unsigned)cp);
            continue;
        }
        i++;
        switch (e) {
        case '\n': break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'v': o[k++] = '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
            int w = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int d = 0; d < w; d++) {
                int h = i + (size_t)d < n ? ju_hexval(s[i + (size_t)d]) : -1;
                if (h < 0)
                    return lfail(L, "(unicode error) 'unicodeescape' codec can't decode bytes: "
                                    "truncated \\%c escape",
                                 e);
                cp = cp * 16 + (uint32_t)h;
            }
            i += (size_t)w;
            if (cp > 0x10FFFF)
                return lfail(L, "(unicode error) 'unicodeescape' codec can't decode bytes: "
                                "illegal Unicode character");
            k += ju_encode(cp, o + k);
            break;
        }
        case 'N':
            return lfail(L, "\\N{...} escapes in string literals are not supported");
        default:
            if (e >= '0' && e <= '7') {
                uint32_t cp = (uint32_t)(e - '0');
                for (int d = 0; d < 2 && i < n && s[i] >= '0' && s[i] <= '7'; d++)
                    cp = cp * 8 + (uint32_t)(s[i++] - '0');
                k += ju_encode(cp, o + k);
            } else {
                o[k++] = '\\';
                o[k++] = (char)e;
            }
        }
    }
    o[k] = '\0';
    t->s = o;
    t->n = k;
    return SW_OK;
}

/* ---- numbers --------------------------------------------------------------------- */

static bool isdig(char ch) { return ch >= '0' && ch <= '9'; }

/* (\d+_)*\d+ at i: end, or 0 when no digit. */
static size_t digits_us(const lexer *L, size_t i) {
    if (i >= L->n || !isdig(L->s[i])) return 0;
    size_t e = i;
    while (e < L->n && isdig(L->s[e])) e++;
    while (e + 1 < L->n && L->s[e] == '_' && isdig(L->s[e + 1])) {
        e++;
        while (e < L->n && isdig(L->s[e])) e++;
    }
    return e;
}

static size_t exponent_at(const lexer *L, size_t i) {
    if (i >= L->n || (L->s[i] != 'e' && L->s[i] != 'E')) return 0;
    size_t j = i + 1;
    if (j < L->n && (L->s[j] == '+' || L->s[j] == '-')) j++;
    return digits_us(L, j);
}

static size_t float_at(const lexer *L, size_t i) {
    if (i > 0 && L->s[i - 1] == '.') return 0;
    size_t d = digits_us(L, i);
    if (!d) return 0;
    size_t frac = 0;
    if (d < L->n && L->s[d] == '.') frac = digits_us(L, d + 1);
    if (frac) {
        size_t ex = exponent_at(L, frac);
        return ex ? ex : frac;
    }
    return exponent_at(L, d);
}

static bool is_base_digit(char ch, int base) {
    if (base == 2) return ch == '0' || ch == '1';
    if (base == 8) return ch >= '0' && ch <= '7';
    return ju_hexval(ch) >= 0;
}

static size_t int_at(const lexer *L, size_t i) {
    const char *s = L->s;
    if (s[i] == '0' && i + 1 < L->n) {
        char p = s[i + 1] | 0x20;
        int base = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 0;
        if (base) {
            size_t e = i + 2;
            for (;;) {
                size_t f = e;
                if (f < L->n && s[f] == '_') f++;
                if (f < L->n && is_base_digit(s[f], base))
                    e = f + 1;
                else
                    break;
            }
            if (e > i + 2) return e;
        }
    }
    if (s[i] >= '1' && s[i] <= '9') {
        size_t e = i + 1;
        for (;;) {
            size_t f = e;
            if (f < L->n && s[f] == '_') f++;
            if (f < L->n && isdig(s[f]))
                e = f + 1;
            else
                break;
        }
        return e;
    }
    if (s[i] == '0') {
        size_t e = i + 1;
        for (;;) {
            size_t f = e;
            if (f < L->n && s[f] == '_') f++;
            if (f < L->n && s[f] == '0')
                e = f + 1;
            else
                break;
        }
        return e;
    }
    return 0;
}

static sw_status number_tok(lexer *L, size_t i, size_t e, bool is_float, jtok *t) {
    char buf[128];
    size_t k = 0;
    for (size_t j = i; j < e; j++)
        if (L->s[j] != '_') {
            if (k + 1 >= sizeof buf) return lfail(L, "number literal too long");
            buf[k++] = L->s[j];
        }
    buf[k] = '\0';
    if (is_float) {
        t->type = T_FLOAT;
        t->f = strtod(buf, NULL);
        return SW_OK;
    }
    int base = 10;
    const char *p = buf;
    if (k > 1 && buf[0] == '0' && (buf[1] | 0x20) != '0') {
        char b = buf[1] | 0x20;
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        p = buf + 2;
    }
    uint64_t v = 0;
    for (; *p; p++) {
        int d = ju_hexval(*p);
        if (v > (uint64_t)INT64_MAX / (uint64_t)base ||
            v * (uint64_t)base + (uint64_t)d > (uint64_t)INT64_MAX)
            return lfail(L, "integer literal '%s' is out of the 64-bit range", buf);
        v = v * (uint64_t)base + (uint64_t)d;
    }
    t->type = T_INT;
    t->i = (int64_t)v;
    return SW_OK;
}

/* ---- names and operators ---------------------------------------------------------- */

static bool name_start_cp(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    return ju_is_ident_start(cp);
}

static bool name_cont_cp(uint32_t cp) {
    if (cp < 0x80) return name_start_cp(cp) || (cp >= '0' && cp <= '9');
    return ju_is_ident_cont(cp);
}

static size_t name_at(const lexer *L, size_t i) {
    size_t len;
    uint32_t cp = ju_decode(L->s, L->n, i, &len);
    if (!name_start_cp(cp)) return 0;
    size_t e = i + len;
    while (e < L->n) {
        cp = ju_decode(L->s, L->n, e, &len);
        if (!name_cont_cp(cp)) break;
        e += len;
    }
    return e;
}

static const char *const k_ops2[] = {"**", "//", "==", "!=", ">=", "<="};
static const char k_ops1[] = "+-/*%~[](){}><=.:|,;";

static size_t op_at(const lexer *L, size_t i) {
    for (size_t k = 0; k < sizeof k_ops2 / sizeof k_ops2[0]; k++)
        if (starts(L, i, k_ops2[k])) return i + 2;
    if (strchr(k_ops1, L->s[i]) && L->s[i]) return i + 1;
    return 0;
}

static size_t string_at(const lexer *L, size_t i) {
    char q = L->s[i];
    if (q != '\'' && q != '"') return 0;
    for (size_t j = i + 1; j < L->n; j++) {
        if (L->s[j] == '\\') {
            j++;
            continue;
        }
        if (L->s[j] == q) return j + 1;
    }
    return 0;
}

/* ---- states ------------------------------------------------------------------------- */

/* Inside {% %} or {{ }}: tokens until the matching end; pos is past the begin tag. */
static sw_status lex_tag(lexer *L, bool is_var) {
    L->nbal = 0;
    while (L->pos < L->n) {
        size_t i = L->pos;
        if (L->nbal == 0) {
            size_t e = 0;
            if (!is_var) e = block_end_at(L, i, "%}");
            else if (L->s[i] == '-' && starts(L, i + 1, "}}")) e = skip_space(L->s, L->n, i + 3);
            else if (starts(L, i, "}}")) e = i + 2;
            if (e) {
                jtok t = {.type = is_var ? T_VAR_END : T_BLOCK_END, .line = L->line};
                push(L, t);
                L->line += count_nl(L->s + i, e - i);
                L->line_starting = L->s[e - 1] == '\n';
                L->pos = e;
                return SW_OK;
            }
        }
        size_t e;
        jtok t = {.line = L->line};
        if ((e = skip_space(L->s, L->n, i)) > i) {
            L->line += count_nl(L->s + i, e - i);
            L->pos = e;
            continue;
        }
        if ((e = float_at(L, i)) > 0) {
            sw_status st = number_tok(L, i, e, true, &t);
            if (st != SW_OK) return st;
        } else if ((e = int_at(L, i)) > 0) {
            sw_status st = number_tok(L, i, e, false, &t);
            if (st != SW_OK) return st;
        } else if ((e = name_at(L, i)) > 0) {
            t.type = T_NAME;
            t.s = L->s + i;
            t.n = e - i;
        } else if ((e = string_at(L, i)) > 0) {
            t.type = T_STRING;
            sw_status st = decode_string(L, L->s + i + 1, e - i - 2, &t);
            if (st != SW_OK) return st;
        } else if ((e = op_at(L, i)) > 0) {
            t.type = T_OP;
            t.s = L->s + i;
            t.n = e - i;
            char ch = L->s[i];
            if (t.n == 1 && (ch == '{' || ch == '(' || ch == '[')) {
                if (L->nbal >= (int)sizeof L->bal) return lfail(L, "brackets nested too deeply");
                L->bal[L->nbal++] = ch == '{' ? '}' : ch == '(' ? ')' : ']';
            } else if (t.n == 1 && (ch == '}' || ch == ')' || ch == ']')) {
                if (L->nbal == 0) return lfail(L, "unexpected '%c'", ch);
                char want = L->bal[--L->nbal];
                if (want != ch) return lfail(L, "unexpected '%c', expected '%c'", ch, want);
            }
        } else {
            size_t len;
            uint32_t cp = ju_decode(L->s, L->n, i, &len);
            return lfail(L, "unexpected char U+%04X at %zu", (unsigned)cp, i);
        }
        L->line += count_nl(L->s + i, e - i);
        L->pos = e;
        push(L, t);
    }
    return SW_OK; /* end of input inside a tag: the parser reports it */
}

/* {% raw %} ... {% endraw %}: pos is past the raw tag. */
static sw_status lex_raw(lexer *L) {
    for (size_t k = L->pos; k + 1 < L->n; k++) {
        if (L->s[k] != '{' || L->s[k + 1] != '%') continue;
        size_t j = k + 2;
        char sign = 0;
        if (j < L->n && (L->s[j] == '-' || L->s[j] == '+')) sign = L->s[j++];
        j = skip_space(L->s, L->n, j);
        if (!starts(L, j, "endraw")) continue;
        j = skip_space(L->s, L->n, j + 6);
        size_t e = j < L->n ? block_end_at(L, j, "%}") : 0;
        if (!e) continue;
        emit_text(L, L->pos, k, sign, false);
        L->line += count_nl(L->s + k, e - k);
        L->line_starting = L->s[e - 1] == '\n';
        L->pos = e;
        return SW_OK;
    }
    return lfail(L, "Missing end of raw directive");
}

static sw_status lex_comment(lexer *L, size_t tag_start) {
    for (size_t k = L->pos; k < L->n; k++) {
        size_t e = 0;
        if ((L->s[k] == '+' || L->s[k] == '-') && starts(L, k + 1, "#}"))
            e = L->s[k] == '+' ? k + 3 : skip_space(L->s, L->n, k + 3);
        else if (starts(L, k, "#}")) {
            e = k + 2;
            if (e < L->n && L->s[e] == '\n') e++;
        }
        if (!e) continue;
        L->line += count_nl(L->s + tag_start, e - tag_start);
        L->line_starting = L->s[e - 1] == '\n';
        L->pos = e;
        return SW_OK;
    }
    return lfail(L, "Missing end of comment tag");
}

/* {% [-+] raw [-]%}: end of the raw tag, or 0 when the tag is not raw. */
static size_t raw_tag_end(const lexer *L, size_t j) {
    j = skip_space(L->s, L->n, j);
    if (!starts(L, j, "raw")) return 0;
    j = skip_space(L->s, L->n, j + 3);
    if (L->s[j] == '-' && starts(L, j + 1, "%}")) return skip_space(L->s, L->n, j + 3);
    if (starts(L, j, "%}")) return j + 2;
    return 0;
}

sw_status jlex(jarena *a, const char *src, size_t n, jtok **toks, sw_err *err) {
    lexer L = {.a = a, .s = src, .n = n, .line = 1, .line_starting = true, .err = err};
    sw_status st = SW_OK;
    while (L.pos < L.n && st == SW_OK) {
        size_t i = L.pos;
        while (i + 1 < L.n && !(src[i] == '{' && (src[i + 1] == '%' || src[i + 1] == '{' ||
                                                  src[i + 1] == '#')))
            i++;
        if (i + 1 >= L.n) { /* plain data to the end */
            jtok t = {.type = T_DATA, .line = L.line, .s = src + L.pos, .n = L.n - L.pos};
            push(&L, t);
            L.line += count_nl(src + L.pos, L.n - L.pos);
            L.pos = L.n;
            break;
        }
        char kind = src[i + 1];
        size_t j = i + 2;
        char sign = 0;
        if (j < L.n && (src[j] == '-' || src[j] == '+')) sign = src[j++];
        size_t raw_end = kind == '%' ? raw_tag_end(&L, j) : 0;
        emit_text(&L, L.pos, i, sign, kind == '{');
        if (raw_end) {
            L.line += count_nl(src + i, raw_end - i);
            L.line_starting = src[raw_end - 1] == '\n';
            L.pos = raw_end;
            st = lex_raw(&L);
        } else if (kind == '#') {
            L.pos = j;
            st = lex_comment(&L, i);
        } else {
            jtok t = {.type = kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, .line = L.line};
            push(&L, t);
            L.pos = j;
            L.line_starting = false;
            st = lex_tag(&L, kind == '{');
        }
    }
    if (st != SW_OK) {
        arrfree(L.toks);
        return st;
    }
    jtok eof = {.type = T_EOF, .line = L.line};
    push(&L, eof);
    *toks = L.toks;
    return SW_OK;
}
