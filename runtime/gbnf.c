/* gbnf.c — the GBNF parser (see gbnf.h). A recursive-descent reading of
 * llama.cpp's syntax straight into the grammar builder: a parenthesized group
 * made only of terminals becomes one expression (so `( [^"\\] | "\\" ... )*`
 * is a single regular terminal), any other group a synthesized rule; a
 * repeated rule reference becomes right-recursive helper rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbnf.h"
#include "grammar_internal.h"

#define GBNF_MAX_NEST 128
#define GBNF_MAX_COUNT 10000

typedef struct gp {
    const char *s;
    size_t n, i;
    sw_gb *b;
    sw_arena *a;
    sw_err *err;
    sw_status st;
    int nest;
    /* rule table: name -> builder rule, whether defined */
    char **names;
    int32_t *ids;
    uint8_t *defined;
    int32_t n_names, cap_names;
    int32_t *slots; /* name hash table: index into names, -1 empty */
    uint32_t slot_mask;
    int32_t n_synth;
} gp;

static uint32_t name_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static bool slots_grow(gp *p) {
    uint32_t nm = p->slots ? 2 * (p->slot_mask + 1) - 1 : 255;
    int32_t *ns = malloc(((size_t)nm + 1) * sizeof *ns);
    if (!ns) return false;
    for (uint32_t i = 0; i <= nm; i++) ns[i] = -1;
    for (int32_t k = 0; k < p->n_names; k++) {
        uint32_t j = name_hash(p->names[k], strlen(p->names[k])) & nm;
        while (ns[j] >= 0) j = (j + 1) & nm;
        ns[j] = k;
    }
    free(p->slots);
    p->slots = ns;
    p->slot_mask = nm;
    return true;
}

static bool gfail(gp *p, sw_status st, const char *fmt, const char *arg) {
    if (p->st != SW_OK) return false;
    size_t line = 1, col = 1;
    for (size_t k = 0; k < p->i && k < p->n; k++) {
        if (p->s[k] == '\n') line++, col = 1;
        else col++;
    }
    char what[256];
    snprintf(what, sizeof what, fmt, arg);
    p->st = sw_err_set(p->err, st, "grammar: line %zu, column %zu: %s", line, col, what);
    return false;
}

static bool oom(gp *p) {
    return gfail(p, SW_E_NOMEM, "%s", "out of memory");
}

static int ch(const gp *p, size_t k) {
    return p->i + k < p->n ? (unsigned char)p->s[p->i + k] : -1;
}

static bool is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Spaces, tabs and comments; line breaks too when newline_ok. */
static void space(gp *p, bool newline_ok) {
    for (;;) {
        int c = ch(p, 0);
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\r' || c == '\n'))) {
            p->i++;
        } else if (c == '#') {
            while (p->i < p->n && p->s[p->i] != '\r' && p->s[p->i] != '\n') p->i++;
        } else {
            return;
        }
    }
}

/* The builder rule for name[0..len), made on first sight. */
static int32_t rule_of(gp *p, const char *name, size_t len) {
    if ((!p->slots || (uint32_t)(p->n_names + 1) * 2 > p->slot_mask + 1) && !slots_grow(p)) return -1;
    uint32_t j = name_hash(name, len) & p->slot_mask;
    while (p->slots[j] >= 0) {
        int32_t k = p->slots[j];
        if (strlen(p->names[k]) == len && !memcmp(p->names[k], name, len)) return k;
        j = (j + 1) & p->slot_mask;
    }
    if (p->n_names == p->cap_names) {
        int32_t c = p->cap_names ? 2 * p->cap_names : 32;
        char **nn = realloc(p->names, (size_t)c * sizeof *nn);
        if (!nn) return -1;
        p->names = nn;
        int32_t *ni = realloc(p->ids, (size_t)c * sizeof *ni);
        if (!ni) return -1;
        p->ids = ni;
        uint8_t *nd = realloc(p->defined, (size_t)c);
        if (!nd) return -1;
        p->defined = nd;
        p->cap_names = c;
    }
    char *copy = sw_arena_strndup(p->a, name, len);
    if (!copy) return -1;
    int32_t id = sw_gb_rule(p->b, copy);
    if (id < 0) return -1;
    p->names[p->n_names] = copy;
    p->ids[p->n_names] = id;
    p->defined[p->n_names] = 0;
    p->slots[j] = p->n_names;
    return p->n_names++;
}

static int32_t synth_rule(gp *p, const char *base) {
    char name[96];
    snprintf(name, sizeof name, "%.60s-%d", base, (int)++p->n_synth);
    return sw_gb_rule(p->b, name);
}

/* One code point of a literal or class, escapes included; -1 on error. */
static int64_t gchar(gp *p) {
    int c = ch(p, 0);
    if (c < 0) return gfail(p, SW_E_FORMAT, "%s", "unexpected end of input"), -1;
    if (c == '\\') {
        int e = ch(p, 1);
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (digits) {
            uint32_t v = 0;
            p->i += 2;
            for (int k = 0; k < digits; k++) {
                int h = ch(p, 0);
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0) return gfail(p, SW_E_FORMAT, "%s", "bad hex escape"), -1;
                v = v * 16 + (uint32_t)d;
                p->i++;
            }
            if (v > SW_CP_MAX || (v >= 0xD800 && v <= 0xDFFF))
                return gfail(p, SW_E_FORMAT, "%s", "escape is not a Unicode scalar value"), -1;
            return v;
        }
        p->i += 2;
        switch (e) {
        case 't': return '\t';
        case 'r': return '\r';
        case 'n': return '\n';
        case '\\':
        case '"':
        case '[':
        case ']': return e;
        default: p->i -= 2; return gfail(p, SW_E_FORMAT, "%s", "unknown escape"), -1;
        }
    }
    /* UTF-8 */
    const uint8_t *s = (const uint8_t *)p->s + p->i;
    size_t left = p->n - p->i;
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || (size_t)len > left) return gfail(p, SW_E_FORMAT, "%s", "invalid UTF-8"), -1;
    uint32_t cp = len == 1 ? (uint32_t)c : (uint32_t)c & (0x7Fu >> len);
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return gfail(p, SW_E_FORMAT, "%s", "invalid UTF-8"), -1;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    static const uint32_t k_min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < k_min[len] || cp > SW_CP_MAX || (cp >= 0xD800 && cp <= 0xDFFF))
        return gfail(p, SW_E_FORMAT, "%s", "invalid UTF-8"), -1;
    p->i += (size_t)len;
    return cp;
}

static int utf8_put(uint32_t cp, uint8_t *b) {
    if (cp < 0x80) return b[0] = (uint8_t)cp, 1;
    if (cp < 0x800) return b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return b[0] = (uint8_t)(0xE0 | cp >> 12), b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)),
               b[2] = (uint8_t)(0x80 | (cp & 0x3F)), 3;
    b[0] = (uint8_t)(0xF0 | cp >> 18);
    b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* "..." after the opening quote. */
static sw_rx *literal(gp *p) {
    size_t cap = 64, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return oom(p), NULL;
    while (ch(p, 0) != '"') {
        if (ch(p, 0) < 0) {
            free(buf);
            gfail(p, SW_E_FORMAT, "%s", "unterminated string literal");
            return NULL;
        }
        int64_t cp = gchar(p);
        if (cp < 0) {
            free(buf);
            return NULL;
        }
        if (n + 4 > cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return oom(p), NULL;
            }
            buf = nb;
        }
        n += (size_t)utf8_put((uint32_t)cp, buf + n);
    }
    p->i++;
    sw_rx *x = sw_rx_lit(p->a, buf, n);
    free(buf);
    return x;
}

/* [...] after the '['. */
static sw_rx *char_class(gp *p) {
    bool neg = false;
    if (ch(p, 0) == '^') {
        neg = true;
        p->i++;
    }
    int32_t cap = 16;
    sw_cpset s = {0, sw_arena_alloc(p->a, (size_t)cap * 2 * sizeof(uint32_t))};
    if (!s.r) return NULL;
    while (ch(p, 0) != ']') {
        if (ch(p, 0) < 0) {
            gfail(p, SW_E_FORMAT, "%s", "unterminated character class");
            return NULL;
        }
        int64_t lo = gchar(p), hi;
        if (lo < 0) return NULL;
        hi = lo;
        if (ch(p, 0) == '-' && ch(p, 1) != ']' && ch(p, 1) >= 0) {
            p->i++;
            hi = gchar(p);
            if (hi < 0) return NULL;
            if (hi < lo) {
                gfail(p, SW_E_FORMAT, "%s", "character range out of order");
                return NULL;
            }
        }
        if (s.n == cap) {
            uint32_t *r = sw_arena_alloc(p->a, (size_t)cap * 4 * sizeof *r);
            if (!r) return NULL;
            memcpy(r, s.r, (size_t)s.n * 2 * sizeof *r);
            s.r = r;
            cap *= 2;
        }
        s.r[2 * s.n] = (uint32_t)lo;
        s.r[2 * s.n + 1] = (uint32_t)hi;
        s.n++;
    }
    p->i++;
    sw_cpset_normalize(&s);
    if (neg) s = sw_cpset_complement(p->a, &s);
    return sw_rx_cps(p->a, &s);
}

/* An item of a sequence under construction. */
typedef struct seq {
    sw_gelem *e;
    int32_t n, cap;
} seq;

static bool seq_push(gp *p, seq *q, sw_gelem e) {
    if (q->n == q->cap) {
        int32_t c = q->cap ? 2 * q->cap : 8;
        sw_gelem *ne = sw_arena_alloc(p->a, (size_t)c * sizeof *ne);
        if (!ne) return oom(p);
        if (q->n) memcpy(ne, q->e, (size_t)q->n * sizeof *ne);
        q->e = ne;
        q->cap = c;
    }
    q->e[q->n++] = e;
    return true;
}

/* x{min,max} (max < 0: unbounded) of a rule reference: min copies, then a
 * chain of optional copies or a right-recursive star. Appends to q. */
static bool repeat_ref(gp *p, seq *q, int32_t rule, int64_t min, int64_t max, const char *base) {
    for (int64_t k = 0; k < min; k++)
        if (!seq_push(p, q, sw_ge_ref(rule))) return false;
    if (max == min) return true;
    int32_t tail;
    if (max < 0) {
        tail = synth_rule(p, base); /* tail ::= x tail | ε */
        if (tail < 0) return oom(p);
        sw_gelem e[2] = {sw_ge_ref(rule), sw_ge_ref(tail)};
        if (!sw_gb_alt(p->b, tail, e, 2) || !sw_gb_alt(p->b, tail, NULL, 0)) return oom(p);
    } else {
        /* opt_1 ::= x | ε ; opt_k ::= x opt_{k-1} | ε */
        tail = -1;
        for (int64_t k = min; k < max; k++) {
            int32_t r = synth_rule(p, base);
            if (r < 0) return oom(p);
            sw_gelem e[2] = {sw_ge_ref(rule), sw_ge_ref(tail)};
            if (!sw_gb_alt(p->b, r, e, tail < 0 ? 1 : 2) || !sw_gb_alt(p->b, r, NULL, 0)) return oom(p);
            tail = r;
        }
    }
    return seq_push(p, q, sw_ge_ref(tail));
}

static bool alternatives(gp *p, int32_t rule, const char *base, bool nested, seq **alts_out,
                         int32_t *n_alts_out);

/* Reads a postfix operator if there is one into min and max; false if none (or on
 * error, with p->st set). */
static bool postfix(gp *p, bool nested, int64_t *min, int64_t *max) {
    int c = ch(p, 0);
    if (c == '*' || c == '+' || c == '?') {
        p->i++;
        space(p, nested);
        *min = c == '+';
        *max = c == '?' ? 1 : -1;
        return true;
    }
    if (c != '{') return false;
    p->i++;
    space(p, nested);
    int64_t a = 0, b;
    if (ch(p, 0) < '0' || ch(p, 0) > '9') return gfail(p, SW_E_FORMAT, "%s", "expecting a number after '{'");
    while (ch(p, 0) >= '0' && ch(p, 0) <= '9') {
        a = a * 10 + (ch(p, 0) - '0');
        if (a > GBNF_MAX_COUNT) a = GBNF_MAX_COUNT + 1;
        p->i++;
    }
    space(p, nested);
    if (ch(p, 0) == '}') {
        b = a;
    } else if (ch(p, 0) == ',') {
        p->i++;
        space(p, nested);
        b = -1;
        if (ch(p, 0) >= '0' && ch(p, 0) <= '9') {
            b = 0;
            while (ch(p, 0) >= '0' && ch(p, 0) <= '9') {
                b = b * 10 + (ch(p, 0) - '0');
                if (b > GBNF_MAX_COUNT) b = GBNF_MAX_COUNT + 1;
                p->i++;
            }
            space(p, nested);
        }
        if (ch(p, 0) != '}') return gfail(p, SW_E_FORMAT, "%s", "expecting '}'");
    } else {
        return gfail(p, SW_E_FORMAT, "%s", "expecting ',' or '}'");
    }
    p->i++;
    space(p, nested);
    if (a > GBNF_MAX_COUNT || b > GBNF_MAX_COUNT)
        return gfail(p, SW_E_RANGE, "%s", "repetition count over 10000");
    if (b >= 0 && b < a) return gfail(p, SW_E_FORMAT, "%s", "repetition {m,n} with n < m");
    *min = a;
    *max = b;
    return true;
}

/* One sequence (up to '|', ')', the end, or at top level a line break). */
static bool sequence(gp *p, const char *base, bool nested, seq *q) {
    for (;;) {
        int c = ch(p, 0);
        sw_gelem item;
        bool have = true;
        if (c == '"') {
            p->i++;
            sw_rx *x = literal(p);
            if (!x) return p->st == SW_OK ? oom(p) : false;
            item = sw_ge_term(x);
        } else if (c == '[') {
            p->i++;
            sw_rx *x = char_class(p);
            if (!x) return p->st == SW_OK ? oom(p) : false;
            item = sw_ge_term(x);
        } else if (c == '.') {
            p->i++;
            item = sw_ge_term(sw_rx_cprange(p->a, 0, SW_CP_MAX));
        } else if (c == '<' || c == '!') {
            return gfail(p, SW_E_UNSUPPORTED, "%s",
                         "token references (<...>, <[id]>, !<...>) are not supported");
        } else if (is_word(c)) {
            size_t start = p->i;
            while (is_word(ch(p, 0))) p->i++;
            int32_t k = rule_of(p, p->s + start, p->i - start);
            if (k < 0) return oom(p);
            item = sw_ge_ref(p->ids[k]);
        } else if (c == '(') {
            p->i++;
            if (++p->nest > GBNF_MAX_NEST) return gfail(p, SW_E_RANGE, "%s", "groups nested too deeply");
            space(p, true);
            seq *alts;
            int32_t n_alts;
            if (!alternatives(p, -1, base, true, &alts, &n_alts)) return false;
            if (ch(p, 0) != ')') return gfail(p, SW_E_FORMAT, "%s", "expecting ')'");
            p->i++;
            p->nest--;
            /* only terminals: one expression; else a rule */
            bool regular = true;
            for (int32_t k = 0; k < n_alts && regular; k++)
                for (int32_t j = 0; j < alts[k].n && regular; j++)
                    regular = alts[k].e[j].kind == SW_GE_TERM;
            if (regular) {
                sw_rx **ax = sw_arena_alloc(p->a, (size_t)n_alts * sizeof *ax);
                if (!ax) return oom(p);
                for (int32_t k = 0; k < n_alts; k++) {
                    sw_rx **parts = sw_arena_alloc(p->a, (size_t)(alts[k].n ? alts[k].n : 1) * sizeof *parts);
                    if (!parts) return oom(p);
                    for (int32_t j = 0; j < alts[k].n; j++) parts[j] = alts[k].e[j].rx;
                    ax[k] = sw_rx_cat(p->a, parts, alts[k].n);
                }
                item = sw_ge_term(sw_rx_alt(p->a, ax, n_alts));
            } else {
                int32_t r = synth_rule(p, base);
                if (r < 0) return oom(p);
                for (int32_t k = 0; k < n_alts; k++)
                    if (!sw_gb_alt(p->b, r, alts[k].e, alts[k].n)) return oom(p);
                item = sw_ge_ref(r);
            }
        } else {
            have = false;
        }
        if (!have) return true;
        if (item.kind == SW_GE_TERM && !item.rx) return oom(p);
        space(p, nested);
        /* postfix operators, possibly several */
        int64_t min, max;
        while (postfix(p, nested, &min, &max)) {
            if (item.kind == SW_GE_TERM) {
                item.rx = sw_rx_rep(p->a, item.rx, (int32_t)min, (int32_t)max);
                if (!item.rx) return oom(p);
            } else {
                seq tmp = {0};
                if (!repeat_ref(p, &tmp, item.rule, min, max, base)) return false;
                /* wrap as one rule so a further postfix repeats the whole */
                int32_t r = synth_rule(p, base);
                if (r < 0 || !sw_gb_alt(p->b, r, tmp.e, tmp.n)) return oom(p);
                item = sw_ge_ref(r);
            }
        }
        if (p->st != SW_OK) return false;
        if (!seq_push(p, q, item)) return false;
    }
}

/* Alternatives separated by '|'. When rule >= 0 they are added to it;
 * otherwise returned (arena memory) in *alts_out. */
static bool alternatives(gp *p, int32_t rule, const char *base, bool nested, seq **alts_out,
                         int32_t *n_alts_out) {
    seq *alts = NULL;
    int32_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            int32_t c = cap ? 2 * cap : 4;
            seq *na = sw_arena_alloc(p->a, (size_t)c * sizeof *na);
            if (!na) return oom(p);
            if (n) memcpy(na, alts, (size_t)n * sizeof *na);
            alts = na;
            cap = c;
        }
        memset(&alts[n], 0, sizeof alts[n]);
        if (!sequence(p, base, nested, &alts[n])) return false;
        n++;
        if (ch(p, 0) != '|') break;
        p->i++;
        space(p, true);
    }
    if (rule >= 0) {
        for (int32_t k = 0; k < n; k++)
            if (!sw_gb_alt(p->b, rule, alts[k].e, alts[k].n)) return oom(p);
    } else {
        *alts_out = alts;
        *n_alts_out = n;
    }
    return true;
}

static bool rule_def(gp *p) {
    size_t start = p->i;
    while (is_word(ch(p, 0))) p->i++;
    if (p->i == start) return gfail(p, SW_E_FORMAT, "%s", "expecting a rule name");
    int32_t k = rule_of(p, p->s + start, p->i - start);
    if (k < 0) return oom(p);
    if (p->defined[k]) {
        p->i = start;
        return gfail(p, SW_E_FORMAT, "rule '%s' is defined twice", p->names[k]);
    }
    p->defined[k] = 1;
    space(p, false);
    if (!(ch(p, 0) == ':' && ch(p, 1) == ':' && ch(p, 2) == '=')) return gfail(p, SW_E_FORMAT, "%s", "expecting '::='");
    p->i += 3;
    space(p, true);
    if (!alternatives(p, p->ids[k], p->names[k], false, NULL, NULL)) return false;
    if (ch(p, 0) == '\r') p->i += ch(p, 1) == '\n' ? 2 : 1;
    else if (ch(p, 0) == '\n') p->i++;
    else if (ch(p, 0) >= 0) return gfail(p, SW_E_FORMAT, "%s", "expecting a line break or the end");
    space(p, true);
    return true;
}

sw_status sw_grammar_from_gbnf(const char *text, size_t len, sw_grammar **out, sw_err *err) {
    *out = NULL;
    gp p = {0};
    p.s = text;
    p.n = len;
    p.err = err;
    p.a = sw_arena_create();
    p.b = p.a ? sw_gb_create(p.a) : NULL;
    sw_status st = SW_OK;
    if (!p.a || !p.b) {
        st = sw_err_set(err, SW_E_NOMEM, "grammar: out of memory");
        goto done;
    }
    if (memchr(text, '\0', len)) {
        st = sw_err_set(err, SW_E_FORMAT, "grammar: contains a NUL byte");
        goto done;
    }
    space(&p, true);
    while (p.i < p.n && p.st == SW_OK) rule_def(&p);
    if (p.st != SW_OK) {
        st = p.st;
        goto done;
    }
    if (sw_gb_failed(p.b, err)) {
        st = SW_E_RANGE;
        goto done;
    }
    int32_t root = -1;
    for (int32_t k = 0; k < p.n_names; k++) {
        if (!p.defined[k]) {
            st = sw_err_set(err, SW_E_FORMAT, "grammar: rule '%s' is used but not defined", p.names[k]);
            goto done;
        }
        if (!strcmp(p.names[k], "root")) root = p.ids[k];
    }
    if (root < 0) {
        st = sw_err_set(err, SW_E_FORMAT, "grammar: no 'root' rule");
        goto done;
    }
    st = sw_gb_finish(p.b, root, "grammar", out, err);
done:
    free(p.names);
    free(p.slots);
    free(p.ids);
    free(p.defined);
    sw_gb_free(p.b);
    sw_arena_free(p.a);
    return st;
}
