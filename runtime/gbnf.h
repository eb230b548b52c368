/* gbnf.h — GBNF grammars (llama.cpp's `grammar` request field and grammar
 * files) compiled to an sw_grammar (grammar.h).
 *
 * The syntax is llama.cpp's: `name ::= alternatives` rules, one per line
 * (a line break ends a rule except inside parentheses or after `|`), `root`
 * is the start; "literals" and [character classes] (ranges, ^ negation) with
 * the escapes \x.. \u.... \U........ \t \r \n \\ \" \[ \]; `.` (any code
 * point); ( groups ); postfix * + ? {m} {m,} {m,n}; # comments. Rule names
 * are letters, digits and '-'. Terminals are Unicode code points and match
 * their UTF-8 encoding; we generate valid UTF-8 only (no surrogates).
 *
 * Refused with a message: token references (<...>, <[id]>, !<...>), rules
 * defined twice, references to undefined rules, a missing root, left
 * recursion, repetition counts over 10000, rules that can produce nothing
 * finite, and grammars whose automata pass the caps in grammar_internal.h. */
#ifndef SW_GBNF_H
#define SW_GBNF_H

#include "grammar.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compile len bytes of GBNF text. On failure *out is NULL and err says what
 * and where (line:column). */
sw_status sw_grammar_from_gbnf(const char *text, size_t len, sw_grammar **out, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
