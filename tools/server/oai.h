/* oai.h — the OpenAI wire format: parsing and validating chat/completions
 * requests into the internal request (oai_parse.c) and writing responses,
 * stream chunks, logprobs and errors as JSON (oai_write.c: the
 * oai_chat_writer and oai_cmpl_writer of req.h). Nothing here knows HTTP or
 * the engine's threading; it turns bytes into a validated struct and structs
 * into bytes. */
#ifndef SW_SERVER_OAI_H
#define SW_SERVER_OAI_H

#include "json_check.h"
#include "req.h"
#include "sbuf.h"
#include "server.h"

/* OpenAI allows up to 4 stop sequences. */
#define OAI_MAX_STOP 4

/* Parse body (len bytes, need not be NUL-terminated) as a chat
 * (SRV_WIRE_OAI_CHAT) or completions (SRV_WIRE_OAI_COMPLETIONS) request into
 * out (raw keeps the parsed body; hints.spillway points into it). n_vocab
 * bounds token ids in a token prompt and logit_bias. On failure fills e
 * (status 400, the param at fault) and returns false, out zeroed. */
bool oai_parse_request(const char *body, size_t len, srv_wire wire, int32_t n_vocab,
                       srv_request *out, srv_error *e);

/* Tool calling (oai_tools.c): "tools", "tool_choice" and "parallel_tool_calls"
 * of a chat request; an assistant message's "tool_calls" (into m, message
 * index i); a "tool" message (a TOOL_RESULT block in a user message after the
 * assistant message whose call it answers). false with e filled. */
bool oai_parse_tools(const cJSON *root, srv_request *r, srv_error *e);
bool oai_parse_tool_calls(const cJSON *calls, size_t i, srv_msg *m, srv_error *e);
bool oai_parse_tool_message(const cJSON *msg, size_t i, srv_request *r, srv_error *e);

/* ---- writing ---- */

/* Append s[0..n) as a JSON string literal. Invalid UTF-8 becomes U+FFFD, so the
 * output is always valid JSON even for a token that is half a character. */
void oai_json_str(sbuf *b, const char *s, size_t n);
/* A log-probability as a JSON number (-inf and NaN become -9999.0, as OpenAI). */
void oai_json_logprob(sbuf *b, float lp);
/* {"error": {...}} as a malloc'd string. */
char *oai_error_json(const srv_error *e);

#endif
