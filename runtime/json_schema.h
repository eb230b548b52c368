/* json_schema.h — JSON Schema (draft 2020-12, draft-07 forms too) compiled to
 * an sw_grammar whose sentences are JSON documents that validate against the
 * schema: OpenAI's response_format json_schema, llama.cpp's json_schema, and
 * tool parameters.
 *
 * Supported (each exact: every document the grammar accepts validates):
 *   type (a name or a list), enum, const, $ref to "#" and "#/..." pointers
 *   ($defs, definitions; recursion allowed), anyOf, oneOf (when the branches
 *   provably exclude each other: different types, disjoint literals, or a
 *   required property whose const/enum values differ), allOf with one schema;
 *   objects: properties, required, additionalProperties (false, true, or a
 *   schema), unevaluatedProperties false; arrays: items, prefixItems (and the
 *   draft-07 items array + additionalItems), minItems, maxItems, uniqueItems
 *   false; strings: minLength, maxLength, pattern (the regex subset of
 *   grammar_regex.c), format date-time, date, time, uuid, email, ipv4,
 *   hostname, uri; numbers and integers: minimum, maximum, exclusiveMinimum,
 *   exclusiveMaximum (numbers or draft-04 booleans).
 * Ignored, because they do not constrain: title, description, default,
 *   examples, example, $comment, deprecated, readOnly, writeOnly, $schema,
 *   $id, $anchor, $defs, definitions, contentMediaType, contentEncoding,
 *   contentSchema, discriminator, nullable (OpenAPI), and "x-" extensions.
 * Anything else is an error naming the keyword and where it is.
 *
 * What we generate is a subset of what validates, on purpose: properties in
 * schema order, and only the declared ones unless additionalProperties is a
 * schema (or nothing is declared); at most 20 whitespace bytes between tokens;
 * numbers without exponent when bounded (see json_schema_num.c for digit
 * limits); one canonical encoding per character where a pattern or format
 * applies; schema keywords without "type" produce only the type they
 * describe. */
#ifndef SW_JSON_SCHEMA_H
#define SW_JSON_SCHEMA_H

#include "grammar.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compile a schema given as len bytes of JSON text. */
sw_status sw_grammar_from_json_schema(const char *json, size_t len, sw_grammar **out, sw_err *err);

/* The same from a parsed cJSON tree (borrowed). */
struct cJSON;
sw_status sw_grammar_from_json_schema_tree(const struct cJSON *schema, sw_grammar **out,
                                           sw_err *err);

/* ---- tool calls ---- */

/* How a model writes tool calls: each call is
 *     open {"<name_key>": "<tool name>", "<args_key>": <arguments>} close
 * (whitespace between JSON tokens), calls are separated by sep, and the list
 * sits between list_open and list_close. NULL strings are "". Examples:
 * Hermes/Qwen: open "<tool_call>\n", close "\n</tool_call>", sep "\n",
 * args_key "arguments"; Llama 3.x: no markers, args_key "parameters";
 * Mistral (v3 tokenizers): list_open "[TOOL_CALLS][", sep ", ", list_close "]".
 * With args_marker set, a call is instead open NAME args_marker <arguments>
 * close, the name bare (Mistral's later "[TOOL_CALLS]name[ARGS]{...}"). */
typedef struct sw_tool_call_syntax {
    const char *open, *close, *sep, *list_open, *list_close;
    const char *name_key, *args_key;
    /* The model may answer in text instead, or before its calls (tool_choice
     * "auto"): free text that never contains the opening marker (list_open,
     * else open; with no marker, text that does not start with '{'). Without
     * a marker a call is then the whole answer. */
    bool text_before;
    int32_t max_calls; /* most calls in one answer; 0: no limit */
    const char *args_marker; /* NULL: calls are JSON objects as above */
} sw_tool_call_syntax;

typedef struct sw_tool_def {
    const char *name;               /* the tool's name (a JSON string's content) */
    const struct cJSON *parameters; /* JSON Schema of its arguments object; NULL:
                                       no parameters (arguments {}) */
} sw_tool_def;

/* The grammar of an answer made of tool calls in syntax syn, each call naming
 * one of tools[0..n_tools) with arguments valid under that tool's schema.
 * Errors name the tool ("schema at #/tools/2/...: keyword ..."). */
sw_status sw_grammar_tool_calls(const sw_tool_call_syntax *syn, const sw_tool_def *tools,
                                int32_t n_tools, sw_grammar **out, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
