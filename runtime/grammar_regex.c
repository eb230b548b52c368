/* grammar_regex.c — JSON Schema `pattern` regexes to expressions, and the
 * JSON string pieces (one character in any encoding, canonical encoding of a
 * decoded string, whitespace) the schema compiler builds strings from.
 *
 * Patterns are ECMA-262 regexes, and validators differ: Python's jsonschema
 * runs them with `re.search`. We generate only strings both readings accept:
 * \d \w \s (and their negations, and negated classes that hold them) stay in
 * ASCII, where both agree; `.` excludes \n \r U+2028 U+2029 (ECMA's line
 * terminators; Python excludes only \n). Syntax whose meaning differs or that
 * is not regular is refused with a message naming it: backreferences,
 * lookaround, \b \B, \p{..}, anchors not at the ends of a top-level
 * alternative, `{,n}`, `[]`, `[^]`, an unescaped `[` inside a class,
 * surrogate escapes. */
#include <stdio.h>
#include <string.h>

#include "grammar_internal.h"

#define RX_MAX_NEST 64
#define RX_MAX_COUNT 10000

typedef struct rxp {
    sw_arena *a;
    const char *s;
    size_t n, i;
    int depth;
    sw_err *err;
    sw_status st;
} rxp;

static bool rx_fail(rxp *p, const char *what) {
    if (p->st == SW_OK)
        p->st = sw_err_set(p->err, SW_E_UNSUPPORTED, "pattern /%.*s/: %s (at byte %zu)",
                           (int)SW_MIN(p->n, 80), p->s, what, p->i);
    return false;
}

/* Decode one UTF-8 code point at p->s[p->i]; -1 on bad UTF-8. */
static int64_t next_cp(rxp *p) {
    const uint8_t *s = (const uint8_t *)p->s + p->i;
    size_t left = p->n - p->i;
    uint32_t c = s[0];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || (size_t)len > left) return -1;
    if (len == 1) {
        p->i++;
        return c;
    }
    uint32_t cp = c & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return -1;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    static const uint32_t k_min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < k_min[len] || cp > SW_CP_MAX || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    p->i += (size_t)len;
    return cp;
}

static bool peek(const rxp *p, char c) {
    return p->i < p->n && p->s[p->i] == c;
}

/* ---- character sets ---- */

static bool cp_add(rxp *p, sw_cpset *s, int32_t *cap, uint32_t lo, uint32_t hi) {
    if (s->n == *cap) {
        int32_t c = *cap * 2;
        uint32_t *r = sw_arena_alloc(p->a, (size_t)c * 2 * sizeof *r);
        if (!r) return false;
        memcpy(r, s->r, (size_t)s->n * 2 * sizeof *r);
        s->r = r;
        *cap = c;
    }
    s->r[2 * s->n] = lo;
    s->r[2 * s->n + 1] = hi;
    s->n++;
    return true;
}

/* The ASCII sets \d \w \s (upper case: their ASCII complements). */
static bool class_escape(rxp *p, char e, sw_cpset *s, int32_t *cap) {
    bool neg = e >= 'A' && e <= 'Z';
    char lo = (char)(neg ? e + 32 : e);
    uint8_t in[128] = {0};
    for (int c = 0; c < 128; c++) {
        if (lo == 'd') in[c] = c >= '0' && c <= '9';
        else if (lo == 'w')
            in[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        else in[c] = c == ' ' || (c >= '\t' && c <= '\r');
        if (neg) in[c] = !in[c];
    }
    for (int c = 0; c < 128;) {
        if (!in[c]) {
            c++;
            continue;
        }
        int start = c;
        while (c < 128 && in[c]) c++;
        if (!cp_add(p, s, cap, (uint32_t)start, (uint32_t)(c - 1))) return false;
    }
    return true;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int64_t read_hex(rxp *p, int digits) {
    if (p->n - p->i < (size_t)digits) return -1;
    int64_t v = 0;
    for (int k = 0; k < digits; k++) {
        int h = hexv(p->s[p->i + (size_t)k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    p->i += (size_t)digits;
    return v;
}

/* After a '\': a single code point (returned), or a class escape (-2, with
 * *cls set to its letter), or -1 after an error. in_class: inside [...]. */
static int64_t escape(rxp *p, bool in_class, char *cls) {
    if (p->i >= p->n) return rx_fail(p, "a trailing backslash"), -1;
    char c = p->s[p->i++];
    switch (c) {
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S': *cls = c; return -2;
    case 't': return '\t';
    case 'n': return '\n';
    case 'r': return '\r';
    case 'v': return '\v';
    case 'f': return '\f';
    case '0':
        if (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            return rx_fail(p, "octal escapes"), -1;
        return 0;
    case 'x': {
        int64_t v = read_hex(p, 2);
        if (v < 0) return rx_fail(p, "a bad \\x escape"), -1;
        return v;
    }
    case 'u': {
        if (peek(p, '{')) return rx_fail(p, "\\u{...} escapes"), -1;
        int64_t v = read_hex(p, 4);
        if (v < 0) return rx_fail(p, "a bad \\u escape"), -1;
        if (v >= 0xD800 && v <= 0xDFFF)
            return rx_fail(p, "surrogate \\u escapes"), -1;
        return v;
    }
    case 'c': {
        if (p->i >= p->n) return rx_fail(p, "a bad \\c escape"), -1;
        char l = p->s[p->i++];
        if (!((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z')))
            return rx_fail(p, "a bad \\c escape"), -1;
        return l % 32;
    }
    case 'b':
        if (in_class) return '\b';
        return rx_fail(p, "word boundaries (\\b)"), -1;
    case 'B': return rx_fail(p, "word boundaries (\\B)"), -1;
    case 'p':
    case 'P': return rx_fail(p, "Unicode property escapes (\\p)"), -1;
    case 'k': return rx_fail(p, "named backreferences (\\k)"), -1;
    default:
        if (c >= '1' && c <= '9') return rx_fail(p, "backreferences"), -1;
        /* identity escapes: ASCII punctuation only (letters mean different
         * things to different engines) */
        if (strchr("^$\\.*+?()[]{}|/-,:;=!<>'\"#%&@~` _", c) && c != '\0') return (uint8_t)c;
        return rx_fail(p, "an unknown escape"), -1;
    }
}

/* [...] after the '['. */
static sw_rx *parse_class(rxp *p) {
    bool neg = false;
    if (peek(p, '^')) {
        neg = true;
        p->i++;
    }
    if (peek(p, ']')) {
        rx_fail(p, neg ? "[^] (any character in ECMA, an error in Python)"
                                      : "[] (empty in ECMA, a literal ] in Python)");
        return NULL;
    }
    int32_t cap = 16;
    sw_cpset s = {0, sw_arena_alloc(p->a, (size_t)cap * 2 * sizeof(uint32_t))};
    if (!s.r) return NULL;
    bool had_class_escape = false;
    for (;;) {
        if (p->i >= p->n) {
            rx_fail(p, "an unterminated [...] class");
            return NULL;
        }
        if (p->s[p->i] == ']') {
            p->i++;
            break;
        }
        if (p->s[p->i] == '[') {
            /* [[:alpha:]] is a POSIX class to PCRE, a nested set to ECMA's v
             * flag, and a literal '[' to Python and plain ECMA */
            rx_fail(p, "an unescaped '[' inside a class");
            return NULL;
        }
        int64_t lo;
        char cls = 0;
        if (p->s[p->i] == '\\') {
            p->i++;
            lo = escape(p, true, &cls);
        } else {
            lo = next_cp(p);
            if (lo == -1) rx_fail(p, "invalid UTF-8");
        }
        if (lo == -1) return NULL;
        if (lo == -2) {
            had_class_escape = true;
            if (!class_escape(p, cls, &s, &cap)) return NULL;
            if (peek(p, '-') && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
                rx_fail(p, "a range from a class escape");
                return NULL;
            }
            continue;
        }
        int64_t hi = lo;
        if (peek(p, '-') && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
            p->i++;
            if (p->s[p->i] == '\\') {
                p->i++;
                hi = escape(p, true, &cls);
                if (hi == -2) {
                    rx_fail(p, "a range to a class escape");
                    return NULL;
                }
            } else {
                hi = next_cp(p);
                if (hi == -1) rx_fail(p, "invalid UTF-8");
            }
            if (hi == -1) return NULL;
            if (hi < lo) {
                rx_fail(p, "a range out of order");
                return NULL;
            }
        }
        if (!cp_add(p, &s, &cap, (uint32_t)lo, (uint32_t)hi)) return NULL;
    }
    sw_cpset_normalize(&s);
    if (neg) {
        s = sw_cpset_complement(p->a, &s);
        if (had_class_escape) {
            /* \d etc. mean more outside ASCII to Python than to ECMA: stay in
             * ASCII, where the complement means the same to both */
            uint32_t ascii_r[2] = {0, 0x7F};
            sw_cpset ascii = {1, ascii_r};
            s = sw_cpset_intersect(p->a, &s, &ascii);
        }
    }
    return sw_rx_cps(p->a, &s);
}

static sw_rx *parse_alt(rxp *p, bool top);

/* A count in {n,m}; -1 when there is no digit. */
static int64_t read_count(rxp *p) {
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return -1;
    int64_t v = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        v = v * 10 + (p->s[p->i++] - '0');
        if (v > RX_MAX_COUNT) v = RX_MAX_COUNT + 1;
    }
    return v;
}

/* Try a {n}, {n,}, {n,m} quantifier at p->i ('{'); false (position kept) when
 * the brace is a literal. */
static bool brace_quant(rxp *p, int64_t *min, int64_t *max) {
    size_t save = p->i;
    p->i++;
    if (peek(p, ',')) {
        p->i = save;
        return false; /* {,n}: see the file comment; checked by the caller */
    }
    int64_t a = read_count(p), b;
    if (a < 0) {
        p->i = save;
        return false;
    }
    if (peek(p, '}')) {
        b = a;
    } else if (peek(p, ',')) {
        p->i++;
        b = peek(p, '}') ? -1 : read_count(p);
        if (b == -1 && !peek(p, '}')) {
            p->i = save;
            return false;
        }
    } else {
        p->i = save;
        return false;
    }
    if (!peek(p, '}')) {
        p->i = save;
        return false;
    }
    p->i++;
    *min = a;
    *max = b;
    return true;
}

static sw_rx *parse_atom(rxp *p, bool top, bool *anchor_end) {
    char c = p->s[p->i];
    switch (c) {
    case '(': {
        p->i++;
        if (++p->depth > RX_MAX_NEST) {
            rx_fail(p, "groups nested too deeply");
            return NULL;
        }
        if (peek(p, '?')) {
            p->i++;
            if (peek(p, ':')) {
                p->i++;
            } else if (peek(p, '<') && p->i + 1 < p->n && p->s[p->i + 1] != '=' &&
                       p->s[p->i + 1] != '!') {
                /* (?<name>...): a capture group, the name does not matter */
                while (p->i < p->n && p->s[p->i] != '>') p->i++;
                if (p->i >= p->n) {
                    rx_fail(p, "an unterminated group name");
                    return NULL;
                }
                p->i++;
            } else {
                rx_fail(p, "lookaround and inline flags");
                return NULL;
            }
        }
        sw_rx *x = parse_alt(p, false);
        if (!x) return NULL;
        if (!peek(p, ')')) {
            rx_fail(p, "an unclosed group");
            return NULL;
        }
        p->i++;
        p->depth--;
        return x;
    }
    case '[': p->i++; return parse_class(p);
    case '.': {
        p->i++;
        uint32_t r[8] = {0, 0x09, 0x0B, 0x0C, 0x0E, 0x2027, 0x202A, SW_CP_MAX};
        sw_cpset s = {4, r};
        return sw_rx_cps(p->a, &s);
    }
    case '$':
        if (top) {
            p->i++;
            if (p->i < p->n && p->s[p->i] != '|') {
                rx_fail(p, "'$' before the end of an alternative");
                return NULL;
            }
            *anchor_end = true;
            return sw_rx_empty(p->a);
        }
        rx_fail(p, "'$' inside a group");
        return NULL;
    case '^': rx_fail(p, "'^' not at the start of an alternative"); return NULL;
    case '*':
    case '+':
    case '?': rx_fail(p, "a quantifier with nothing to repeat"); return NULL;
    case ')': rx_fail(p, "an unmatched ')'"); return NULL;
    case '\\': {
        p->i++;
        char cls = 0;
        int64_t cp = escape(p, false, &cls);
        if (cp == -1) return NULL;
        if (cp == -2) {
            int32_t cap = 8;
            sw_cpset s = {0, sw_arena_alloc(p->a, (size_t)cap * 2 * sizeof(uint32_t))};
            if (!s.r || !class_escape(p, cls, &s, &cap)) return NULL;
            return sw_rx_cps(p->a, &s);
        }
        return sw_rx_cprange(p->a, (uint32_t)cp, (uint32_t)cp);
    }
    default: {
        int64_t cp = next_cp(p);
        if (cp < 0) {
            rx_fail(p, "invalid UTF-8");
            return NULL;
        }
        return sw_rx_cprange(p->a, (uint32_t)cp, (uint32_t)cp);
    }
    }
}

/* A sequence, up to '|' or ')' or the end. */
static sw_rx *parse_seq(rxp *p, bool top, bool *anchor_end) {
    sw_rx **items = NULL;
    int32_t n = 0, cap = 0;
    while (p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
        sw_rx *x = parse_atom(p, top, anchor_end);
        if (!x) return NULL;
        if (*anchor_end) break;
        /* quantifiers */
        for (int q = 0; p->i < p->n; q++) {
            int64_t min, max;
            char c = p->s[p->i];
            if (c == '*') min = 0, max = -1, p->i++;
            else if (c == '+') min = 1, max = -1, p->i++;
            else if (c == '?') min = 0, max = 1, p->i++;
            else if (c == '{') {
                if (p->i + 1 < p->n && p->s[p->i + 1] == ',') {
                    rx_fail(p, "{,n} (a count to Python, a literal to ECMA)");
                    return NULL;
                }
                if (!brace_quant(p, &min, &max)) break;
            } else break;
            if (q > 0) {
                rx_fail(p, "a quantifier after a quantifier");
                return NULL;
            }
            if (min > RX_MAX_COUNT || max > RX_MAX_COUNT) {
                rx_fail(p, "a repetition count over 10000");
                return NULL;
            }
            if (max >= 0 && max < min) {
                rx_fail(p, "a repetition {n,m} with m < n");
                return NULL;
            }
            if (peek(p, '?')) p->i++; /* lazy: the same language */
            else if (peek(p, '+')) {
                rx_fail(p, "possessive quantifiers");
                return NULL;
            }
            x = sw_rx_rep(p->a, x, (int32_t)min, (int32_t)max);
            if (!x) return NULL;
        }
        if (n == cap) {
            int32_t c2 = cap ? 2 * cap : 8;
            sw_rx **ni = sw_arena_alloc(p->a, (size_t)c2 * sizeof *ni);
            if (!ni) return NULL;
            if (n) memcpy(ni, items, (size_t)n * sizeof *ni);
            items = ni;
            cap = c2;
        }
        items[n++] = x;
    }
    return n ? sw_rx_cat(p->a, items, n) : sw_rx_empty(p->a);
}

static sw_rx *any_string(sw_arena *a) {
    return sw_rx_rep(a, sw_rx_cprange(a, 0, SW_CP_MAX), 0, -1);
}

static sw_rx *parse_alt(rxp *p, bool top) {
    sw_rx **alts = NULL;
    int32_t n = 0, cap = 0;
    for (;;) {
        bool anchor_start = false, anchor_end = false;
        if (top && peek(p, '^')) {
            anchor_start = true;
            p->i++;
        }
        sw_rx *x = parse_seq(p, top, &anchor_end);
        if (!x) return NULL;
        if (top) {
            /* search semantics: an unanchored end may have anything there */
            if (!anchor_start) x = sw_rx_cat2(p->a, any_string(p->a), x);
            if (!anchor_end) x = sw_rx_cat2(p->a, x, any_string(p->a));
        }
        if (n == cap) {
            int32_t c2 = cap ? 2 * cap : 4;
            sw_rx **na = sw_arena_alloc(p->a, (size_t)c2 * sizeof *na);
            if (!na) return NULL;
            if (n) memcpy(na, alts, (size_t)n * sizeof *na);
            alts = na;
            cap = c2;
        }
        alts[n++] = x;
        if (!peek(p, '|')) break;
        p->i++;
    }
    return sw_rx_alt(p->a, alts, n);
}

sw_status sw_regex_parse(sw_arena *a, const char *pat, size_t len, sw_rx **out, sw_err *err) {
    rxp p = {a, pat, len, 0, 0, err, SW_OK};
    *out = NULL;
    sw_rx *x = parse_alt(&p, true);
    if (p.st != SW_OK) return p.st;
    if (!x) return sw_err_set(err, SW_E_NOMEM, "pattern: out of memory");
    if (p.i < p.n) {
        rx_fail(&p, "an unmatched ')'");
        return p.st;
    }
    *out = x;
    return SW_OK;
}

/* ---- JSON string pieces ---- */

/* The canonical JSON encoding of one code point that needs escaping, or NULL. */
static const char *json_escape_of(uint32_t cp, char buf[8]) {
    switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:
        if (cp < 0x20 || cp == 0x7F) {
            snprintf(buf, 8, "\\u%04x", (unsigned)cp);
            return buf;
        }
        return NULL;
    }
}

static sw_rx *encode_cps(sw_arena *a, const uint32_t *ranges, int32_t n) {
    sw_cpset s = {n, (uint32_t *)ranges};
    uint32_t raw_r[6] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E};
    uint32_t hi_r[2] = {0x80, SW_CP_MAX};
    uint32_t all_r[8];
    memcpy(all_r, raw_r, sizeof raw_r);
    memcpy(all_r + 6, hi_r, sizeof hi_r);
    sw_cpset raw = {4, all_r};
    sw_cpset plain = sw_cpset_intersect(a, &s, &raw);
    sw_rx *alts[40];
    int32_t k = 0;
    alts[k++] = sw_rx_cps(a, &plain);
    char buf[8];
    for (uint32_t cp = 0; cp < 0x80; cp++) {
        const char *e = json_escape_of(cp, buf);
        if (e && sw_cpset_has(&s, cp)) alts[k++] = sw_rx_str(a, e);
    }
    return sw_rx_alt(a, alts, k);
}

sw_rx *sw_rx_json_encode(sw_arena *a, const sw_rx *x) {
    switch (x->kind) {
    case SW_RX_NONE:
    case SW_RX_EMPTY: return (sw_rx *)x;
    case SW_RX_CPS: return encode_cps(a, x->u.ranges, x->n);
    case SW_RX_LIT: {
        /* decoded UTF-8: re-encode code point by code point */
        sw_rx **parts = sw_arena_alloc(a, (size_t)x->n * sizeof *parts);
        if (!parts) return NULL;
        rxp p = {a, (const char *)x->u.lit, (size_t)x->n, 0, 0, NULL, SW_OK};
        int32_t k = 0;
        while (p.i < p.n) {
            int64_t cp = next_cp(&p);
            if (cp < 0) return sw_rx_none(a);
            uint32_t r[2] = {(uint32_t)cp, (uint32_t)cp};
            parts[k++] = encode_cps(a, r, 1);
        }
        return sw_rx_cat(a, parts, k);
    }
    case SW_RX_CAT:
    case SW_RX_ALT: {
        sw_rx **kids = sw_arena_alloc(a, (size_t)x->n * sizeof *kids);
        if (!kids) return NULL;
        for (int32_t i = 0; i < x->n; i++)
            if (!(kids[i] = sw_rx_json_encode(a, x->u.kids[i]))) return NULL;
        return x->kind == SW_RX_CAT ? sw_rx_cat(a, kids, x->n) : sw_rx_alt(a, kids, x->n);
    }
    case SW_RX_REP: return sw_rx_rep(a, sw_rx_json_encode(a, x->u.kids[0]), x->min, x->max);
    default: return sw_rx_none(a); /* BYTES / DFA: not produced by the regex parser */
    }
}

sw_rx *sw_rx_json_char(sw_arena *a) {
    uint32_t raw_r[8] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E, 0x80, SW_CP_MAX};
    sw_cpset raw = {4, raw_r};
    sw_rx *hex = sw_rx_cps(a, &(sw_cpset){3, (uint32_t[]){'0', '9', 'A', 'F', 'a', 'f'}});
    sw_rx *d = sw_rx_cps(a, &(sw_cpset){2, (uint32_t[]){'D', 'D', 'd', 'd'}});
    /* \uXXXX that is not a surrogate: first digit not D, or D then 0-7 */
    sw_rx *first =
        sw_rx_cps(a, &(sw_cpset){5, (uint32_t[]){'0', '9', 'A', 'C', 'E', 'F', 'a', 'c', 'e', 'f'}});
    sw_rx *bmp = sw_rx_alt2(a, sw_rx_cat2(a, first, sw_rx_rep(a, hex, 3, 3)),
                            sw_rx_cat3(a, d, sw_rx_cprange(a, '0', '7'), sw_rx_rep(a, hex, 2, 2)));
    sw_rx *high = sw_rx_cat3(a, d, sw_rx_cps(a, &(sw_cpset){3, (uint32_t[]){'8', '9', 'A', 'B', 'a', 'b'}}),
                             sw_rx_rep(a, hex, 2, 2));
    sw_rx *low = sw_rx_cat3(a, d, sw_rx_cps(a, &(sw_cpset){2, (uint32_t[]){'C', 'F', 'c', 'f'}}),
                            sw_rx_rep(a, hex, 2, 2));
    sw_rx *pair = sw_rx_cat3(a, high, sw_rx_str(a, "\\u"), low);
    sw_rx *u = sw_rx_cat2(a, sw_rx_str(a, "u"), sw_rx_alt2(a, bmp, pair));
    sw_rx *simple = sw_rx_cps(a, &(sw_cpset){5, (uint32_t[]){'"', '"', '/', '/', '\\', '\\', 'b', 'b', 'f', 'f'}});
    sw_rx *simple2 = sw_rx_cps(a, &(sw_cpset){3, (uint32_t[]){'n', 'n', 'r', 'r', 't', 't'}});
    sw_rx *esc = sw_rx_cat2(a, sw_rx_str(a, "\\"), sw_rx_alt(a, (sw_rx *[]){simple, simple2, u}, 3));
    return sw_rx_alt2(a, sw_rx_cps(a, &raw), esc);
}

sw_rx *sw_rx_json_ws(sw_arena *a) {
    sw_rx *c = sw_rx_cps(a, &(sw_cpset){3, (uint32_t[]){'\t', '\n', '\r', '\r', ' ', ' '}});
    return sw_rx_rep(a, c, 0, SW_GRAMMAR_MAX_WS);
}
