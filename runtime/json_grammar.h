/* json_grammar.h — a byte-level incremental recognizer for one JSON object
 * (RFC 8259), for constrained decoding (OpenAI's response_format
 * {"type": "json_object"}). The engine keeps one sw_json_state per sequence;
 * before each sampling step it asks which vocabulary pieces keep the output a
 * viable prefix of  ws* object  (sw_json_mask), and after sampling it feeds the
 * chosen piece (sw_json_feed).
 *
 * The check is exact: a byte sequence is accepted if and only if some
 * continuation completes it to a document of the language below, with the
 * limits below counted as part of the language (e.g. a number already at
 * SW_JSON_MAX_NUM bytes that still needs a digit is refused).
 *
 *   document : ws* object            (nothing after the final '}')
 *   value    : object | array | string | number | true | false | null
 *   object   : '{' ws* ( '}' | member (ws* ',' ws* member)* ws* '}' )
 *   member   : string ws* ':' ws* value
 *   array    : '[' ws* ( ']' | value (ws* ',' ws* value)* ws* ']' )
 *   string   : '"' ( unescaped UTF-8 >= 0x20 except '"' '\' | escape )* '"'
 *              escapes \" \\ \/ \b \f \n \r \t \uXXXX forming valid UTF-16
 *              (a high surrogate must be followed at once by \u + low
 *              surrogate); raw UTF-8 valid per RFC 3629 (no overlongs, no
 *              surrogates, nothing above U+10FFFF)
 *   number   : -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
 *   ws       : space, \t, \n, \r
 *
 * The state is a plain 16-byte value with no pointers: copy it by assignment.
 * Nothing allocates; every function is safe to call from any thread on
 * distinct (or read-only shared) states. */
#ifndef SW_JSON_GRAMMAR_H
#define SW_JSON_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most objects/arrays open at once (the top-level object counts); opening
 * one more is refused. The open containers are a 64-bit stack, 1 bit each. */
#define SW_JSON_MAX_DEPTH 64
/* Most whitespace bytes in a row between tokens (stops endless-newline
 * loops); the (SW_JSON_MAX_WS+1)-th is refused. Spaces inside strings are
 * string content and are not counted. */
#define SW_JSON_MAX_WS 32
/* Longest number, in bytes (sign, digits, '.', exponent); a longer one is
 * refused. 63 so that cJSON 1.7 (the JSON library we link), which reads at
 * most 63 bytes of a number, parses every document we accept. */
#define SW_JSON_MAX_NUM 63

/* Opaque in meaning, plain in form: the fields are private to json_grammar.c. */
typedef struct sw_json_state {
    uint64_t stack; /* bit d: container at depth d+1 is an array (1) or object (0) */
    uint16_t code;  /* \u escape: the code unit read so far */
    uint8_t mode;   /* where in the grammar we are */
    uint8_t depth;  /* open containers, 0..SW_JSON_MAX_DEPTH */
    uint8_t ws;     /* whitespace bytes in a row */
    uint8_t count;  /* number bytes / hex digits / UTF-8 bytes left / literal position */
    uint8_t sub;    /* literal id / UTF-8 first-continuation range */
    uint8_t key;    /* the open string is an object key */
} sw_json_state;

/* Start: optional whitespace, then '{'. */
void sw_json_init(sw_json_state *s);

/* Feed n bytes. True when the output so far is still a viable prefix of
 * ws* object; then *s has advanced. False when some byte cannot continue it;
 * then *s is unspecified (callers feed a copy). Bytes after the object's
 * closing '}' are refused (no trailing whitespace either). n == 0 is true. */
bool sw_json_feed(sw_json_state *s, const char *bytes, size_t n);

/* A complete object has been read. */
bool sw_json_done(const sw_json_state *s);

/* For tokens: allow[i] = 1 when piece i (pieces[i], lens[i] bytes) may come
 * next, else 0, for i in [0, n). A piece of length 0 is never allowed (it would
 * not advance; pieces[i] may then be NULL). When sw_json_done(s) every piece
 * is refused (the caller allows the end-of-generation tokens itself).
 * Returns the number allowed. */
int32_t sw_json_mask(const sw_json_state *s, const char *const *pieces, const uint32_t *lens,
                     int32_t n, uint8_t *allow);

#ifdef __cplusplus
}
#endif
#endif
