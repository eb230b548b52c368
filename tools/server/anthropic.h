/* anthropic.h — the Anthropic Messages wire format: parsing POST
 * /v1/messages and /v1/messages/count_tokens bodies into the internal
 * request (anthropic_parse.c), and writing messages, SSE events and errors
 * in Anthropic's shape (anthropic_write.c: anthropic_writer of req.h).
 * Nothing here knows HTTP or the engine. */
#ifndef SW_SERVER_ANTHROPIC_H
#define SW_SERVER_ANTHROPIC_H

#include "json_check.h"
#include "req.h"
#include "sbuf.h"

/* Parse body (len bytes) into out (raw keeps the parsed body; hints.spillway
 * points into it). count_tokens: the /v1/messages/count_tokens body, where
 * max_tokens is not required. On failure fills e (400, Anthropic's rules:
 * max_tokens required, roles user/assistant, text / tool_use / tool_result
 * blocks, each tool_result answering a tool_use of the previous message,
 * tools with an object input_schema, a tool_choice naming a given tool) and
 * returns false, out zeroed. */
bool anthropic_parse_request(const char *body, size_t len, bool count_tokens, srv_request *out,
                             srv_error *e);

/* {"type":"error","error":{"type":..,"message":..}} as a malloc'd string:
 * the status picks Anthropic's error type (400 invalid_request_error, 401
 * authentication_error, 403 permission_error, 404 not_found_error, 413
 * request_too_large, 429 rate_limit_error, 503/529 overloaded_error, other
 * 5xx api_error). */
char *anthropic_error_json(const srv_error *e);
const char *anthropic_error_type(int status);

/* The Anthropic stop_reason of a result: end_turn, stop_sequence,
 * max_tokens, tool_use, refusal. */
const char *anthropic_stop_reason(const srv_result *r);

#endif
