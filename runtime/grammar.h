/* grammar.h — grammar-constrained decoding: a compiled context-free grammar
 * over bytes (from JSON Schema, json_schema.h, or GBNF, gbnf.h), a matcher
 * that follows one output through it, and the vocabulary mask that says which
 * tokens may come next.
 *
 * The grammar is a set of rules whose terminals are regular languages, each a
 * DFA over bytes with no dead states. The matcher state is the set of all
 * parses still alive (a graph-structured stack: heads inside terminals, shared
 * return frames below). It is exact: a byte string is accepted if and only if
 * some continuation completes it to a sentence of the grammar within the depth
 * limit SW_GRAMMAR_MAX_DEPTH (every rule of a compiled grammar can end, and each
 * stack frame records the depth its cheapest completion needs, so a prefix
 * whose completion would need more is refused when it is read, not later).
 *
 * Masks: sw_gmatch_mask walks a token trie (sw_gvocab) with the state. For each
 * head it takes the tokens that stay inside its terminal from a per-(terminal,
 * DFA state) cache of bitmaps, and walks only the trie branches where a token
 * leaves the terminal, with the state the terminal's end leads to. */
#ifndef SW_GRAMMAR_H
#define SW_GRAMMAR_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most stack frames a parse may hold (each rule entered that is not a tail
 * call: about one per level of JSON nesting). */
#define SW_GRAMMAR_MAX_DEPTH 512
/* Most live parses (heads) a state may hold; a grammar so ambiguous that one
 * step needs more refuses the byte (the matcher reports sw_gmatch_error). */
#define SW_GRAMMAR_MAX_HEADS 4096

/* A compiled grammar: immutable but for an internal, locked mask cache, so
 * one may serve many matchers on many threads. Reference counted. */
typedef struct sw_grammar sw_grammar;

sw_grammar *sw_grammar_retain(sw_grammar *g);
/* Drop a reference; the last one frees. NULL is a no-op. */
void sw_grammar_free(sw_grammar *g);

typedef struct sw_grammar_info {
    int32_t n_rules, n_elems, n_terms;
    int32_t n_dfa_states; /* over all terminals */
    size_t cache_bytes;   /* the mask cache, now */
    uint64_t cache_hits, cache_misses;
} sw_grammar_info;
void sw_grammar_get_info(const sw_grammar *g, sw_grammar_info *out);

/* ---- vocabulary ---- */

/* The token trie the masks walk: built once per tokenizer. pieces[i] is the
 * byte string token i contributes to the output (lens[i] bytes; 0 = nothing,
 * such a token is never allowed by a mask). Both are copied. */
typedef struct sw_gvocab sw_gvocab;
sw_status sw_gvocab_create(const char *const *pieces, const uint32_t *lens, int32_t n_vocab,
                           sw_gvocab **out, sw_err *err);
void sw_gvocab_free(sw_gvocab *v);
int32_t sw_gvocab_n(const sw_gvocab *v);

/* ---- matching ---- */

/* One output being read. g is retained until sw_gmatch_free. */
typedef struct sw_gmatch sw_gmatch;
sw_status sw_gmatch_create(sw_grammar *g, sw_gmatch **out, sw_err *err);
void sw_gmatch_free(sw_gmatch *m);
/* Back to the empty output. */
void sw_gmatch_reset(sw_gmatch *m);

/* Feed n bytes. True when the output is still a viable prefix (the state
 * advanced); false when some byte cannot continue it (the state is then
 * unchanged). n == 0 is true. */
bool sw_gmatch_feed(sw_gmatch *m, const char *bytes, size_t n);
/* Whether sw_gmatch_feed would accept; never changes the state. */
bool sw_gmatch_try(sw_gmatch *m, const char *bytes, size_t n);
/* The output so far is a complete sentence (the end-of-generation token may
 * come now). */
bool sw_gmatch_accepting(const sw_gmatch *m);
/* Some byte can still follow (if not, and accepting, the output is finished). */
bool sw_gmatch_can_continue(const sw_gmatch *m);
/* Fewest bytes that complete the output (0 when accepting), ignoring the depth
 * limit; for tests and for finishing outputs greedily. -1 if none (a refused
 * state). */
int64_t sw_gmatch_min_completion(sw_gmatch *m);
/* The same for the state after bytes[0..n) (which must be accepted; -1 if
 * not), without changing the state. */
int64_t sw_gmatch_min_completion_after(sw_gmatch *m, const char *bytes, size_t n);
/* Non-NULL after a step overflowed SW_GRAMMAR_MAX_HEADS or memory ran out:
 * what happened (the step was refused). */
const char *sw_gmatch_error(const sw_gmatch *m);

/* allow[i] = 1 when token i may come next, else 0, for every token of v. A
 * token of empty piece is never allowed, and nothing is allowed once the
 * output cannot continue: the caller allows its end-of-generation tokens when
 * sw_gmatch_accepting. Returns the number allowed, or -1 when out of memory. */
int32_t sw_gmatch_mask(sw_gmatch *m, const sw_gvocab *v, uint8_t *allow);

/* A random sentence of g, for tests and spillway-grammar: bytes are drawn at
 * random among those the matcher accepts (printable ASCII favoured), the
 * output ends at random where it may, and after budget bytes (a random share
 * of max_bytes) it takes the shortest way to an end. *out is malloc'd and
 * NUL-terminated (the sentence may contain NUL only if the grammar allows it;
 * *len is exact). SW_E_RANGE when no end was reached within 4 * max_bytes. */
sw_status sw_grammar_sample(sw_grammar *g, uint64_t seed, size_t max_bytes, char **out, size_t *len,
                            sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
