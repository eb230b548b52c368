/* cloud_wire.h — translation between our OpenAI-shaped requests/answers and
 * the two provider wire formats, without any networking (so it is unit-tested
 * directly). Used by cloud.c; exposed for tests and tools.
 *
 * Anthropic Messages API (anthropic-version 2023-06-01):
 *   request: system/developer messages -> top-level "system" (joined by blank
 *   lines); user/assistant messages kept in order, consecutive same-role
 *   messages merged; content strings or text parts; an assistant's
 *   tool_calls -> tool_use blocks, "tool" messages -> tool_result blocks of a
 *   user turn; tools -> tools with input_schema, tool_choice auto / none /
 *   required / a function -> auto / none / any / tool; max_tokens (required)
 *   from max_completion_tokens / max_tokens / the configured default;
 *   temperature clamped to Anthropic's [0, 1]; top_p; stop -> stop_sequences.
 *   answer: text blocks concatenated, tool_use blocks -> message.tool_calls;
 *   stop_reason end_turn/stop_sequence -> "stop" (the sequence kept in the
 *   choice's "stop_sequence"), max_tokens -> "length", tool_use ->
 *   "tool_calls", refusal -> "content_filter"; usage input/output_tokens ->
 *   prompt/completion_tokens.
 * OpenAI-compatible: the request is passed through with our model name,
 *   without the "spillway" extension, with stream set (and
 *   stream_options.include_usage when asked); answers are rebuilt in our shape
 *   (first choice only, role/content/finish_reason/usage). */
#ifndef SW_CLOUD_WIRE_H
#define SW_CLOUD_WIRE_H

#include <cjson/cJSON.h>

#include "sse.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_provider { SW_PROVIDER_ANTHROPIC = 0, SW_PROVIDER_OPENAI } sw_provider;

const char *sw_provider_str(sw_provider p); /* "anthropic", "openai" */
sw_status sw_provider_parse(const char *name, sw_provider *out, sw_err *err);

/* One OpenAI-shaped streaming chunk handed to the caller. */
typedef struct sw_cloud_chunk {
    const cJSON *json;         /* a chat.completion.chunk object; borrowed for the call */
    const char *content;       /* the delta's text, NULL when none */
    const char *finish_reason; /* set in the chunk that finishes the choice */
    bool is_usage;             /* the trailing usage-only chunk (choices: []) */
    /* tool: this chunk carries part of tool call number tool_index (0, 1, ...
     * in answer order): tool_id and tool_name on its first part, then pieces
     * of its arguments' JSON text in tool_args (each may be NULL). */
    bool tool;
    int tool_index;
    const char *tool_id, *tool_name, *tool_args;
    /* with finish_reason: the stop sequence that ended the answer (Anthropic's
     * stop_sequence), or NULL */
    const char *stop_sequence;
} sw_cloud_chunk;

/* Return non-SW_OK to stop the stream (e.g. SW_E_CANCELLED: client gone). */
typedef sw_status (*sw_cloud_chunk_fn)(void *user, const sw_cloud_chunk *c, sw_err *err);

/* The body of a request already in Anthropic's own format (a Messages body,
 * borrowed): a copy with our model name and the stream flag, without the
 * "spillway" extension; content blocks, tools and everything else pass
 * through untouched. NULL with err when out of memory. */
cJSON *sw_wire_anthropic_native(const cJSON *req, const char *model, bool stream, sw_err *err);

/* Build the provider request body from an OpenAI chat request (borrowed).
 * Returns a new object (caller frees) or NULL with err naming the field
 * ("messages[2].content[1].type: 'image_url' is not supported ..."). */
cJSON *sw_wire_anthropic_request(const cJSON *req, const char *model, int32_t default_max_tokens,
                                 bool stream, sw_err *err);
cJSON *sw_wire_openai_request(const cJSON *req, const char *model, bool stream,
                              bool include_usage, sw_err *err);

/* Non-streaming answers -> a new chat.completion object (caller frees), or
 * NULL with err on a malformed answer. */
cJSON *sw_wire_anthropic_response(const cJSON *msg, sw_err *err);
cJSON *sw_wire_openai_response(const cJSON *resp, sw_err *err);

/* "end_turn" -> "stop", ... (see above); unknown reasons -> "stop". */
const char *sw_wire_anthropic_finish(const char *stop_reason);

/* Streaming translation: feed every SSE event of one response. */
typedef struct sw_wire_stream {
    sw_provider provider;
    sw_cloud_chunk_fn fn;
    void *user;
    char id[128];
    char model[128];
    double created;
    int32_t prompt_tokens, completion_tokens;
    char finish_reason[32];
    bool role_sent;
    int n_tools;          /* tool calls started so far */
    int cur_tool;         /* Anthropic: tool index of the open content block; -1: text */
    bool done;            /* message_stop / [DONE] seen */
    uint64_t chunks;      /* chunks delivered to fn */
    /* set when the provider sent an error event: its type (e.g.
     * "overloaded_error") and whether a retry may help */
    char error_type[64];
    bool error_retryable;
} sw_wire_stream;

void sw_wire_stream_init(sw_wire_stream *s, sw_provider p, sw_cloud_chunk_fn fn, void *user);
/* An sw_sse_fn: user is the sw_wire_stream. Malformed JSON or a missing field
 * -> SW_E_FORMAT; a provider error event -> SW_E_BACKEND (error_type set);
 * the callback's status is passed through. */
sw_status sw_wire_stream_event(void *stream, const sw_sse_event *ev, sw_err *err);
/* After the body ended: SW_E_FORMAT when the stream stopped before its end
 * marker (message_stop for Anthropic; [DONE] or a finish_reason for OpenAI). */
sw_status sw_wire_stream_end(const sw_wire_stream *s, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
