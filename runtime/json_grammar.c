/* json_grammar.c — incremental recognizer for one JSON object (see json_grammar.h).
 *
 * A pushdown automaton over bytes: `mode` is the control state, the stack of
 * open containers is one bit per level in a uint64_t. Every byte either moves
 * the state or is refused; a refusal means no continuation can complete the
 * document, so each check is made as early as the grammar allows:
 *   - \uDC.. (a low surrogate without a high one) is refused at its second hex
 *     digit, and after a high surrogate anything but \u[Dd][C-Fc-f] is refused
 *     at the first byte that departs from it;
 *   - a number that would reach SW_JSON_MAX_NUM bytes in a state that still
 *     needs a digit ("-", "1.", "1e", "1e+") is refused at that byte.
 * A number has no end marker: it ends at the first byte that cannot continue
 * it, and that byte is then run again in the enclosing context (',' '}' ']' or
 * whitespace). The top-level value is an object, so a number never ends at the
 * end of the document and the state never needs to look ahead.
 *
 * Speed: sw_json_mask answers for every piece of the vocabulary (~150k) at
 * every step. For a large vocabulary it first tabulates, once per call, what
 * each of the 256 possible first bytes does, so most pieces are refused (or
 * their first byte consumed) by a lookup; the rest of a piece runs through the
 * feeding loop inlined into the mask loop, where the common case, plain ASCII
 * inside a string, is a table-driven scan without per-byte mode dispatch.
 * About 2 ms per 150k-piece call on one core in the states measured. */
#include "json_grammar.h"

#include <string.h>

enum {
    /* between tokens: whitespace is allowed (and counted) in these */
    M_START,     /* before the top-level '{' */
    M_OBJ_FIRST, /* after '{': '}' or a key */
    M_OBJ_KEY,   /* after ',' in an object: a key */
    M_COLON,     /* after a key: ':' */
    M_VALUE,     /* after ':' or ',' in an array: a value */
    M_ARR_FIRST, /* after '[': ']' or a value */
    M_AFTER,     /* after a value inside a container: ',' or the closer */
    /* strings */
    M_STR,     /* inside, between characters */
    M_ESC,     /* after '\' */
    M_HEX,     /* in \uXXXX; count = hex digits read */
    M_HEX_LOW, /* in the \uXXXX that must be a low surrogate */
    M_UTF8,    /* in a multi-byte UTF-8 sequence; count = bytes left */
    M_LOW_BS,  /* after a high surrogate: '\' must follow */
    M_LOW_U,   /* after a high surrogate and '\': 'u' must follow */
    /* numbers; count = bytes so far */
    M_NUM_MINUS, /* "-": a digit must follow */
    M_NUM_ZERO,  /* "0" or "-0": no more integer digits */
    M_NUM_INT,   /* [1-9][0-9]* */
    M_NUM_DOT,   /* ".": a digit must follow */
    M_NUM_FRAC,  /* ".[0-9]+" */
    M_NUM_E,     /* "e": sign or digit */
    M_NUM_ESIGN, /* "e+" / "e-": a digit must follow */
    M_NUM_EXP,   /* "e[+-]?[0-9]+" */
    /* literals; sub = which, count = bytes matched */
    M_LIT,
    M_DONE, /* the object is closed: nothing more */
};

/* Byte classes inside a string (outside escapes and multi-byte sequences). */
enum {
    C_PLAIN, /* 0x20..0x7F but '"' and '\' */
    C_QUOTE,
    C_BSLASH,
    C_BAD, /* control bytes, lone continuation bytes, C0, C1, F5..FF */
    C_U2,  /* C2..DF: one continuation byte */
    C_E0,  /* E0: two, the first A0..BF (no overlongs) */
    C_U3,  /* E1..EC, EE, EF: two */
    C_ED,  /* ED: two, the first 80..9F (no surrogates) */
    C_F0,  /* F0: three, the first 90..BF (no overlongs) */
    C_U4,  /* F1..F3: three */
    C_F4,  /* F4: three, the first 80..8F (nothing above U+10FFFF) */
};

/* clang-format off */
static const uint8_t k_str_class[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0_ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 1_ */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 2_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 3_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 4_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, /* 5_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 6_ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 7_ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 8_ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 9_ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* A_ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* B_ */
    3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* C_ */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* D_ */
    5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 6, 6, /* E_ */
    8, 9, 9, 9, 10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* F_ */
};
/* clang-format on */

/* Range of the first continuation byte, by sw_json_state.sub in M_UTF8;
 * later continuation bytes use range 0. */
enum { R_ANY, R_A0_BF, R_80_9F, R_90_BF, R_80_8F };
static const uint8_t k_cont_lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
static const uint8_t k_cont_hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};

static const char *const k_lit[3] = {"true", "false", "null"};
static const uint8_t k_lit_len[3] = {4, 5, 4};

static inline bool is_ws(uint8_t c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static inline int hex_val(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20; /* ASCII lower case */
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static inline bool top_is_array(const sw_json_state *t) {
    return (t->stack >> (t->depth - 1)) & 1u;
}

/* Open an object (arr = 0) or array (arr = 1). */
static inline bool push(sw_json_state *t, unsigned arr) {
    if (t->depth >= SW_JSON_MAX_DEPTH) return false;
    uint64_t bit = (uint64_t)1 << t->depth;
    t->stack = arr ? (t->stack | bit) : (t->stack & ~bit);
    t->depth++;
    t->mode = arr ? M_ARR_FIRST : M_OBJ_FIRST;
    return true;
}

/* c closes the innermost container if it is its closer. */
static inline bool pop(sw_json_state *t, uint8_t c) {
    if (c != (top_is_array(t) ? ']' : '}')) return false;
    t->depth--;
    t->mode = t->depth ? M_AFTER : M_DONE;
    return true;
}

/* States in which a number may end (all digits it needs are there). */
static inline bool num_complete(uint8_t m) {
    return m == M_NUM_ZERO || m == M_NUM_INT || m == M_NUM_FRAC || m == M_NUM_EXP;
}

/* One more number byte, entering mode m: refused past SW_JSON_MAX_NUM bytes,
 * and at exactly SW_JSON_MAX_NUM when m still needs a digit. */
static inline bool num_step(sw_json_state *t, uint8_t m) {
    if (t->count >= SW_JSON_MAX_NUM) return false;
    t->count++;
    if (t->count == SW_JSON_MAX_NUM && !num_complete(m)) return false;
    t->mode = m;
    return true;
}

/* The first byte of a value. */
static inline bool start_value(sw_json_state *t, uint8_t c) {
    switch (c) {
    case '{':
        return push(t, 0);
    case '[':
        return push(t, 1);
    case '"':
        t->mode = M_STR;
        t->key = 0;
        return true;
    case '-':
        t->count = 0;
        return num_step(t, M_NUM_MINUS);
    case '0':
        t->count = 0;
        return num_step(t, M_NUM_ZERO);
    case 't':
    case 'f':
    case 'n':
        t->mode = M_LIT;
        t->sub = c == 't' ? 0 : c == 'f' ? 1 : 2;
        t->count = 1;
        return true;
    default:
        if (c >= '1' && c <= '9') {
            t->count = 0;
            return num_step(t, M_NUM_INT);
        }
        return false;
    }
}

void sw_json_init(sw_json_state *s) {
    memset(s, 0, sizeof *s);
    s->mode = M_START;
}

bool sw_json_done(const sw_json_state *s) {
    return s->mode == M_DONE;
}

/* sw_json_feed's body, inlined into sw_json_mask's loop. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline bool
feed(sw_json_state *s, const uint8_t *b, size_t n) {
    sw_json_state t = *s; /* a local copy stays in registers */
    size_t i = 0;
    while (i < n) {
        uint8_t c = b[i];
        if (t.mode <= M_AFTER) {
            if (is_ws(c)) {
                if (++t.ws > SW_JSON_MAX_WS) return false;
                i++;
                continue;
            }
            t.ws = 0;
        }
        switch (t.mode) {
        case M_START:
            if (c != '{' || !push(&t, 0)) return false;
            break;
        case M_OBJ_FIRST:
            if (c == '"') {
                t.mode = M_STR;
                t.key = 1;
            } else if (!pop(&t, c)) {
                return false;
            }
            break;
        case M_OBJ_KEY:
            if (c != '"') return false;
            t.mode = M_STR;
            t.key = 1;
            break;
        case M_COLON:
            if (c != ':') return false;
            t.mode = M_VALUE;
            break;
        case M_ARR_FIRST:
            if (c == ']') {
                if (!pop(&t, c)) return false;
                break;
            }
            if (!start_value(&t, c)) return false;
            break;
        case M_VALUE:
            if (!start_value(&t, c)) return false;
            break;
        case M_AFTER:
            if (c == ',') {
                t.mode = top_is_array(&t) ? M_VALUE : M_OBJ_KEY;
            } else if (!pop(&t, c)) {
                return false;
            }
            break;

        case M_STR: {
            /* fast path: a run of plain bytes */
            uint8_t k;
            while ((k = k_str_class[c]) == C_PLAIN) {
                if (++i == n) goto out;
                c = b[i];
            }
            switch (k) {
            case C_QUOTE:
                t.mode = t.key ? M_COLON : M_AFTER;
                break;
            case C_BSLASH:
                t.mode = M_ESC;
                break;
            case C_U2:
                t.mode = M_UTF8;
                t.count = 1;
                t.sub = R_ANY;
                break;
            case C_E0:
                t.mode = M_UTF8;
                t.count = 2;
                t.sub = R_A0_BF;
                break;
            case C_U3:
                t.mode = M_UTF8;
                t.count = 2;
                t.sub = R_ANY;
                break;
            case C_ED:
                t.mode = M_UTF8;
                t.count = 2;
                t.sub = R_80_9F;
                break;
            case C_F0:
                t.mode = M_UTF8;
                t.count = 3;
                t.sub = R_90_BF;
                break;
            case C_U4:
                t.mode = M_UTF8;
                t.count = 3;
                t.sub = R_ANY;
                break;
            case C_F4:
                t.mode = M_UTF8;
                t.count = 3;
                t.sub = R_80_8F;
                break;
            default:
                return false; /* C_BAD */
            }
            break;
        }
        case M_UTF8:
            if (c < k_cont_lo[t.sub] || c > k_cont_hi[t.sub]) return false;
            t.sub = R_ANY;
            if (--t.count == 0) t.mode = M_STR;
            break;
        case M_ESC:
            switch (c) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                t.mode = M_STR;
                break;
            case 'u':
                t.mode = M_HEX;
                t.count = 0;
                t.code = 0;
                break;
            default:
                return false;
            }
            break;
        case M_HEX: {
            int h = hex_val(c);
            if (h < 0) return false;
            t.code = (uint16_t)(t.code << 4 | (unsigned)h);
            t.count++;
            /* \uDC.. - \uDF..: a low surrogate with no high one before it */
            if (t.count == 2 && t.code >= 0xDC && t.code <= 0xDF) return false;
            if (t.count == 4) t.mode = (t.code >= 0xD800 && t.code <= 0xDBFF) ? M_LOW_BS : M_STR;
            break;
        }
        case M_LOW_BS:
            if (c != '\\') return false;
            t.mode = M_LOW_U;
            break;
        case M_LOW_U:
            if (c != 'u') return false;
            t.mode = M_HEX_LOW;
            t.count = 0;
            break;
        case M_HEX_LOW: {
            /* DC00..DFFF: first digit D, second C..F, then any two */
            int h = hex_val(c);
            if (h < 0) return false;
            t.count++;
            if (t.count == 1 && h != 0xD) return false;
            if (t.count == 2 && h < 0xC) return false;
            if (t.count == 4) t.mode = M_STR;
            break;
        }

        case M_NUM_MINUS:
            if (c == '0') {
                if (!num_step(&t, M_NUM_ZERO)) return false;
            } else if (c >= '1' && c <= '9') {
                if (!num_step(&t, M_NUM_INT)) return false;
            } else {
                return false;
            }
            break;
        case M_NUM_ZERO:
        case M_NUM_INT:
        case M_NUM_FRAC:
        case M_NUM_EXP: {
            uint8_t next;
            if (c >= '0' && c <= '9' && t.mode != M_NUM_ZERO)
                next = t.mode;
            else if (c == '.' && (t.mode == M_NUM_ZERO || t.mode == M_NUM_INT))
                next = M_NUM_DOT;
            else if ((c == 'e' || c == 'E') && t.mode != M_NUM_EXP)
                next = M_NUM_E;
            else {
                /* the number ends; c belongs to the enclosing container */
                t.mode = M_AFTER;
                continue;
            }
            if (!num_step(&t, next)) return false;
            break;
        }
        case M_NUM_DOT:
            if (c < '0' || c > '9' || !num_step(&t, M_NUM_FRAC)) return false;
            break;
        case M_NUM_E:
            if (c == '+' || c == '-') {
                if (!num_step(&t, M_NUM_ESIGN)) return false;
            } else if (c >= '0' && c <= '9') {
                if (!num_step(&t, M_NUM_EXP)) return false;
            } else {
                return false;
            }
            break;
        case M_NUM_ESIGN:
            if (c < '0' || c > '9' || !num_step(&t, M_NUM_EXP)) return false;
            break;

        case M_LIT:
            if (c != (uint8_t)k_lit[t.sub][t.count]) return false;
            if (++t.count == k_lit_len[t.sub]) t.mode = M_AFTER;
            break;

        default: /* M_DONE: nothing may follow the object */
            return false;
        }
        i++;
    }
out:
    *s = t;
    return true;
}

bool sw_json_feed(sw_json_state *s, const char *bytes, size_t n) {
    return feed(s, (const uint8_t *)bytes, n);
}

/* Below this many pieces, sw_json_mask feeds each piece from the start; above,
 * it first tabulates what every possible first byte does (256 one-byte feeds),
 * so that a piece is refused, or its first byte consumed, by one lookup. */
#define MASK_TABLE_MIN 512

int32_t sw_json_mask(const sw_json_state *s, const char *const *pieces, const uint32_t *lens,
                     int32_t n, uint8_t *allow) {
    if (n <= 0) return 0;
    if (s->mode == M_DONE) {
        memset(allow, 0, (size_t)n);
        return 0;
    }
    int32_t count = 0;
    if (n < MASK_TABLE_MIN) {
        for (int32_t i = 0; i < n; i++) {
            uint8_t ok = 0;
            if (lens[i] > 0) {
                sw_json_state t = *s;
                ok = sw_json_feed(&t, pieces[i], lens[i]);
            }
            allow[i] = ok;
            count += ok;
        }
        return count;
    }
    uint8_t first_ok[256];
    sw_json_state after[256];
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        after[c] = *s;
        first_ok[c] = sw_json_feed(&after[c], &b, 1);
    }
    for (int32_t i = 0; i < n; i++) {
        uint32_t len = lens[i];
        uint8_t ok = 0;
        if (len > 0) {
            const uint8_t *p = (const uint8_t *)pieces[i];
            ok = first_ok[p[0]];
            if (ok && len > 1) {
                sw_json_state t = after[p[0]];
                ok = feed(&t, p + 1, len - 1);
            }
        }
        allow[i] = ok;
        count += ok;
    }
    return count;
}
