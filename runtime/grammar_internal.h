/* grammar_internal.h — what the grammar compilers (gbnf.c, json_schema*.c) and
 * the grammar core (grammar*.c) share, and nobody else needs:
 *
 *   - sw_arena: a bump allocator; everything a compilation builds lives in one
 *     and goes at once;
 *   - sw_rx: regular expressions over bytes, whose leaves may be Unicode code
 *     point sets (expanded to UTF-8 when the automaton is built);
 *   - sw_dfa: a deterministic byte automaton with no dead states (every state
 *     can still reach an accepting one), built from an sw_rx, intersected with
 *     another, pruned;
 *   - sw_gb: the grammar builder, a context-free grammar whose terminals are
 *     sw_rx; sw_gb_finish turns it into an immutable sw_grammar (grammar.h).
 *
 * Limits: every construction counts what it makes (NFA states, DFA states,
 * rules, elements) against the caps below and fails with a message naming the
 * cap, so hostile schemas and grammars end in an error, never a hang. */
#ifndef SW_GRAMMAR_INTERNAL_H
#define SW_GRAMMAR_INTERNAL_H

#include "grammar.h"

/* Most states of one terminal's DFA, and of all of a grammar's DFAs together. */
#define SW_GRAMMAR_MAX_DFA_STATES 65536
#define SW_GRAMMAR_MAX_TOTAL_DFA_STATES 262144
/* Most NFA states built for one terminal (counted repetitions copy their body). */
#define SW_GRAMMAR_MAX_NFA_STATES 400000
/* Most rules, and elements over all alternatives, of one grammar. */
#define SW_GRAMMAR_MAX_RULES 100000
#define SW_GRAMMAR_MAX_ELEMS 1000000
/* Most bytes one compilation may allocate in its arena. */
#define SW_GRAMMAR_MAX_ARENA (256u << 20)
/* A terminal rule is inlined (and neighbouring terminals merged) only while the
 * merged expression stays under this weight (about its NFA size). */
#define SW_GRAMMAR_INLINE_WEIGHT 4000

/* ---- arena ---- */

typedef struct sw_arena sw_arena;
sw_arena *sw_arena_create(void);
void sw_arena_free(sw_arena *a);
/* Zeroed memory, or NULL when out of memory or over SW_GRAMMAR_MAX_ARENA
 * (then sw_arena_failed stays true). */
void *sw_arena_alloc(sw_arena *a, size_t n);
bool sw_arena_failed(const sw_arena *a);
char *sw_arena_strndup(sw_arena *a, const char *s, size_t n);

/* ---- code point sets: sorted, disjoint, non-adjacent [lo, hi] ranges ---- */

#define SW_CP_MAX 0x10FFFFu

typedef struct sw_cpset {
    int32_t n;
    uint32_t *r; /* [2n]: lo0, hi0, lo1, hi1, ... */
} sw_cpset;

/* Normalize ranges (any order, overlaps allowed) in place: sort and merge. */
void sw_cpset_normalize(sw_cpset *s);
/* All of Unicode (0..U+10FFFF) minus s, and minus the surrogates D800..DFFF
 * (which UTF-8 cannot carry). Allocated in a. */
sw_cpset sw_cpset_complement(sw_arena *a, const sw_cpset *s);
sw_cpset sw_cpset_intersect(sw_arena *a, const sw_cpset *x, const sw_cpset *y);
bool sw_cpset_has(const sw_cpset *s, uint32_t cp);

/* ---- regular expressions ---- */

typedef enum {
    SW_RX_NONE = 0, /* matches nothing */
    SW_RX_EMPTY,    /* matches only the empty string */
    SW_RX_LIT,      /* a byte string */
    SW_RX_BYTES,    /* one byte from a 256-bit set */
    SW_RX_CPS,      /* one code point from a set, as UTF-8 */
    SW_RX_CAT,
    SW_RX_ALT,
    SW_RX_REP, /* min..max repetitions; max < 0: unbounded */
    SW_RX_DFA, /* the language of a prebuilt DFA (borrowed; must outlive the build) */
} sw_rx_kind;

typedef struct sw_rx sw_rx;
struct sw_rx {
    uint8_t kind;
    int32_t n;        /* LIT: bytes; CAT/ALT: kids; CPS: ranges */
    int32_t min, max; /* REP */
    union {
        sw_rx **kids;      /* CAT, ALT: [n]; REP: [1] */
        const uint8_t *lit; /* LIT */
        uint8_t *set;       /* BYTES: [32] bitmap */
        uint32_t *ranges;   /* CPS: [2n] */
        const struct sw_dfa *dfa; /* DFA */
    } u;
};

/* Constructors; each returns NULL only when the arena fails (callers check
 * sw_arena_failed once at the end). Kids are borrowed pointers into a. */
sw_rx *sw_rx_none(sw_arena *a);
sw_rx *sw_rx_empty(sw_arena *a);
sw_rx *sw_rx_lit(sw_arena *a, const void *bytes, size_t n);
sw_rx *sw_rx_str(sw_arena *a, const char *s); /* NUL-terminated literal */
sw_rx *sw_rx_byteset(sw_arena *a, const uint8_t set[32]);
sw_rx *sw_rx_byterange(sw_arena *a, uint8_t lo, uint8_t hi);
sw_rx *sw_rx_cps(sw_arena *a, const sw_cpset *s); /* copies s */
sw_rx *sw_rx_cprange(sw_arena *a, uint32_t lo, uint32_t hi);
sw_rx *sw_rx_cat(sw_arena *a, sw_rx *const *kids, int32_t n);
sw_rx *sw_rx_cat2(sw_arena *a, sw_rx *x, sw_rx *y);
sw_rx *sw_rx_cat3(sw_arena *a, sw_rx *x, sw_rx *y, sw_rx *z);
sw_rx *sw_rx_alt(sw_arena *a, sw_rx *const *kids, int32_t n);
sw_rx *sw_rx_alt2(sw_arena *a, sw_rx *x, sw_rx *y);
sw_rx *sw_rx_rep(sw_arena *a, sw_rx *x, int32_t min, int32_t max);
sw_rx *sw_rx_opt(sw_arena *a, sw_rx *x);
/* Rough size of the NFA the expression becomes (saturates at INT32_MAX). */
int64_t sw_rx_weight(const sw_rx *x);

/* ---- DFAs ---- */

typedef struct sw_dfa {
    int32_t n_states; /* 0 means the empty language; else state 0 is the start */
    int32_t n_classes;
    uint8_t cls[256]; /* byte -> class */
    int32_t *next;    /* [n_states * n_classes]: next state, or -1 (refused) */
    uint8_t *accept;  /* [n_states] */
    uint8_t *has_out; /* [n_states]: some byte continues */
    int32_t *dist;    /* [n_states]: fewest bytes to an accepting state */
} sw_dfa;

static inline int32_t sw_dfa_step(const sw_dfa *d, int32_t q, uint8_t c) {
    return d->next[(size_t)q * (size_t)d->n_classes + d->cls[c]];
}

/* Build the DFA of x (dead states removed; cap: most states). what names the
 * terminal in error messages. */
sw_status sw_dfa_build(const sw_rx *x, int32_t cap, sw_dfa *out, const char *what, sw_err *err);
/* The DFA of L(a) ∩ L(b) (dead states removed). */
sw_status sw_dfa_intersect(const sw_dfa *a, const sw_dfa *b, int32_t cap, sw_dfa *out,
                           const char *what, sw_err *err);
/* The DFA of L(a) \ L(b). */
sw_status sw_dfa_subtract(const sw_dfa *a, const sw_dfa *b, int32_t cap, sw_dfa *out,
                          const char *what, sw_err *err);
void sw_dfa_free(sw_dfa *d);
/* Whether the DFA accepts s[0..n) exactly. */
bool sw_dfa_matches(const sw_dfa *d, const void *s, size_t n);
/* An sw_rx that stands for a DFA: the DFA's own states become the NFA (for
 * intersections computed ahead of time that then join a larger expression). */
sw_rx *sw_rx_from_dfa(sw_arena *a, const sw_dfa *d);

/* ---- regex syntax (grammar_regex.c) ---- */

/* Parse an ECMA-262 pattern (the subset in json_schema.h) into an expression
 * over code points: the string the pattern matches, with search semantics
 * (no ^ means any prefix, no $ any suffix). */
sw_status sw_regex_parse(sw_arena *a, const char *pat, size_t len, sw_rx **out, sw_err *err);
/* x matches decoded string values; return the expression for their bodies as
 * JSON string content (between the quotes), each code point in one canonical
 * encoding: raw UTF-8, or \" \\ \b \f \n \r \t, or \u00XX for other controls
 * and DEL. */
sw_rx *sw_rx_json_encode(sw_arena *a, const sw_rx *x);
/* One JSON string body character, in any encoding JSON allows (raw UTF-8 but
 * controls and DEL, any escape, \u pairs for astral code points; no lone
 * surrogates): the unit minLength/maxLength count. */
sw_rx *sw_rx_json_char(sw_arena *a);
/* Whitespace between JSON tokens: 0..SW_GRAMMAR_MAX_WS bytes of space, \t, \n, \r. */
#define SW_GRAMMAR_MAX_WS 20
sw_rx *sw_rx_json_ws(sw_arena *a);

/* ---- JSON Schema numbers (json_schema_num.c) ---- */

typedef struct sw_num_bound {
    bool set, strict; /* strict: exclusive */
    double v;
} sw_num_bound;
/* The DFA of the JSON numbers (integers when integer) within the bounds,
 * written without exponent (see json_schema_num.c for the exact shape). An
 * empty range gives an empty DFA (n_states 0), not an error. */
sw_status sw_schema_number_dfa(bool integer, sw_num_bound lo, sw_num_bound hi, sw_dfa *out,
                               const char *what, sw_err *err);
/* Any JSON number (integer when integer), at most 16 integer digits. */
sw_rx *sw_schema_number_any(sw_arena *a, bool integer);

/* ---- grammar builder ---- */

typedef enum { SW_GE_TERM = 0, SW_GE_REF } sw_ge_kind;

typedef struct sw_gelem {
    uint8_t kind;
    int32_t rule; /* REF */
    sw_rx *rx;    /* TERM */
} sw_gelem;

typedef struct sw_gb sw_gb;
/* a is borrowed (the builder allocates in it). */
sw_gb *sw_gb_create(sw_arena *a);
void sw_gb_free(sw_gb *b);
sw_arena *sw_gb_arena(sw_gb *b);
/* A new rule with no alternatives yet (a rule left without any matches
 * nothing); name is copied, for messages. -1 when over SW_GRAMMAR_MAX_RULES or
 * out of memory (see sw_gb_failed). */
int32_t sw_gb_rule(sw_gb *b, const char *name);
const char *sw_gb_rule_name(const sw_gb *b, int32_t rule);
int32_t sw_gb_n_rules(const sw_gb *b);
/* Add an alternative (elems copied). false when out of memory or over the caps. */
bool sw_gb_alt(sw_gb *b, int32_t rule, const sw_gelem *elems, int32_t n);
bool sw_gb_alt1(sw_gb *b, int32_t rule, sw_gelem e);
static inline sw_gelem sw_ge_term(sw_rx *x) {
    sw_gelem e = {SW_GE_TERM, -1, x};
    return e;
}
static inline sw_gelem sw_ge_ref(int32_t r) {
    sw_gelem e = {SW_GE_REF, r, NULL};
    return e;
}
/* Whether an allocation or a cap failed; the message says which. */
bool sw_gb_failed(const sw_gb *b, sw_err *err);

/* Compile: inline small regular rules into their users, merge neighbouring
 * terminals, build each terminal's DFA, drop what cannot match anything,
 * refuse left recursion, and compute the depth each position needs. kind
 * names the source in messages ("grammar", "schema"). */
sw_status sw_gb_finish(sw_gb *b, int32_t root, const char *kind, sw_grammar **out, sw_err *err);

/* ---- the compiled grammar (grammar_build.c makes it, grammar.c reads it) ---- */

enum { SW_GK_TERM = 0, SW_GK_REF = 1, SW_GK_END = 2 };

typedef struct sw_gmask_cache sw_gmask_cache; /* grammar.c */
sw_gmask_cache *sw_gmask_cache_create(void);
void sw_gmask_cache_free(sw_gmask_cache *c);

struct sw_grammar {
    int refs; /* atomic */
    int32_t n_rules, root;
    int32_t *rule_alt; /* [n_rules + 1]: alternatives of rule r are alt_start[rule_alt[r] .. rule_alt[r+1]) */
    int32_t *alt_start;
    int32_t n_elems;
    uint8_t *ekind;   /* [n_elems] SW_GK_* */
    int32_t *earg;    /* TERM: terminal id; REF: rule; END: rule */
    int32_t *need;    /* [n_elems]: frames above this one needed to finish from here */
    int64_t *minlen;  /* [n_elems]: fewest bytes that finish the alternative from here */
    int32_t n_terms;
    sw_dfa *terms;    /* [n_terms] */
    int32_t n_dfa_states;
    char **rule_names; /* [n_rules] */
    sw_gmask_cache *cache;
};

#endif
