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

#ifdef __cplusplus
}
#endif
#endif
