/* cloud.h — the cloud provider client: one configured provider (Anthropic
 * Messages API or an OpenAI-compatible chat completions endpoint), called with
 * an OpenAI chat request and answering in the OpenAI shape, streaming or not.
 * It owns the resilience around the call: connect/total/idle timeouts,
 * retries with backoff on 408/429/5xx/529 and transient transport errors
 * (honouring Retry-After), and the provider's circuit breaker.
 *
 * The API key is read once from the environment variable named in the params
 * (default ANTHROPIC_API_KEY / OPENAI_API_KEY), sent only in the auth header,
 * never logged, and scrubbed from every error message (also partial echoes of
 * 8 or more characters that a provider may quote back).
 *
 * Threading: sw_cloud_chat may run on many threads at once (one curl handle
 * per call); the breaker is shared. Each call blocks its thread until the
 * answer is complete: run it off the HTTP server's event loop. */
#ifndef SW_CLOUD_H
#define SW_CLOUD_H

#include <cjson/cJSON.h>

#include "cloud_wire.h"
#include "resilience.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_cloud_params {
    sw_provider provider;
    /* Anthropic: POST {base_url}/v1/messages, default https://api.anthropic.com.
     * OpenAI-compatible: POST {base_url}/chat/completions (the openai-python
     * convention: the base includes /v1), default https://api.openai.com/v1. */
    const char *base_url;
    const char *model;              /* required: the provider's model name */
    const char *key_env;            /* NULL: ANTHROPIC_API_KEY / OPENAI_API_KEY */
    const char *anthropic_version;  /* NULL: "2023-06-01" */
    int32_t default_max_tokens;     /* when the request has none (Anthropic needs one); <= 0: 4096 */
    double connect_timeout_s;       /* <= 0: 10 */
    double timeout_s;               /* one attempt, whole transfer; <= 0: 600 */
    double idle_timeout_s;          /* no byte for this long aborts; <= 0: 60 */
    sw_retry_policy retry;          /* zeros: defaults (3 attempts, 0.5 s base, 30 s budget) */
    int32_t breaker_failures;       /* <= 0: 5 */
    double breaker_cooldown_s;      /* <= 0: 30 */
    bool no_stream_usage;           /* do not send stream_options.include_usage (OpenAI-
                                       compatible servers that reject it) */
    size_t max_response_bytes;      /* non-streaming body cap; 0: 16 MiB */
} sw_cloud_params;

void sw_cloud_params_default(sw_cloud_params *p); /* zeros + provider anthropic */

/* Test seams. Any NULL member falls back to the real thing. */
typedef struct sw_cloud_hooks {
    sw_clock_fn clock;                      /* monotonic seconds (breaker, budgets) */
    void (*sleep)(void *user, double s);    /* backoff sleeps */
    double (*jitter)(void *user);           /* uniform [0, 1) */
    void *user;
} sw_cloud_hooks;

typedef struct sw_cloud sw_cloud;

/* Copies params (strings too). A missing key variable is not an error here:
 * the client exists but sw_cloud_available is false and calls fail with
 * SW_E_NOT_FOUND naming the variable. hooks may be NULL. */
sw_status sw_cloud_create(const sw_cloud_params *p, const sw_cloud_hooks *hooks, sw_cloud **out,
                          sw_err *err);
void sw_cloud_free(sw_cloud *c); /* NULL is a no-op; wipes the key */

/* Configured with a key and the breaker would let a call through. Has the
 * signature of sw_cloud_available_fn (router.h): pass it with the sw_cloud as user. */
bool sw_cloud_available(void *cloud);
const char *sw_cloud_model(const sw_cloud *c);
sw_provider sw_cloud_provider(const sw_cloud *c);
sw_breaker *sw_cloud_breaker(sw_cloud *c); /* borrowed */

typedef struct sw_cloud_result {
    cJSON *response;            /* non-streaming: the chat.completion (caller owns;
                                   sw_cloud_result_clear frees it) */
    int32_t prompt_tokens;      /* provider's counts */
    int32_t completion_tokens;
    char finish_reason[32];
    char model[128];            /* as the provider reported it */
    char provider_request_id[128];
    long http_status;           /* last HTTP status; 0 when none was received */
    int attempts;
    double latency_s;           /* whole call, retries and sleeps included */
    double ttft_s;              /* streaming: until the first content chunk; 0 if none */
    double retry_after_s;       /* last Retry-After seen, -1 if none (pass it on) */
    bool streamed;              /* chunks were delivered: the answer cannot be
                                   restarted elsewhere any more */
    /* On failure: what our client should get (see sw_cloud_error_json). */
    int client_status;          /* 400, 502, 503, 504; 0 on success */
    const char *error_type;     /* "upstream_error", "cloud_unavailable", "timeout",
                                   "rate_limited", "invalid_request_error"; "" */
} sw_cloud_result;

void sw_cloud_result_clear(sw_cloud_result *r); /* frees response, zeroes */

/* Run one chat request. req (borrowed) is the client's OpenAI chat body; its
 * "model" is replaced by ours, its "stream" by (on_chunk != NULL).
 * Streaming: on_chunk receives OpenAI chat.completion.chunk objects: a first
 * chunk with the assistant role, content chunks (and tool-call parts: see
 * sw_cloud_chunk), a chunk with finish_reason,
 * and a trailing usage chunk (choices: [], is_usage) that the server forwards
 * only when its client asked for stream_options.include_usage.
 * Statuses: SW_OK; SW_E_NOT_FOUND (no key); SW_E_BUSY (breaker open, or still
 * rate-limited after retries); SW_E_IO (transport: refused, reset, timeout);
 * SW_E_BACKEND (provider answered with an error); SW_E_FORMAT (malformed
 * answer or stream); SW_E_INVALID_ARG / SW_E_UNSUPPORTED (the request cannot
 * be mapped); SW_E_CANCELLED (on_chunk returned non-OK). res (required) is
 * filled in every case; err names the provider and what failed. */
sw_status sw_cloud_chat(sw_cloud *c, const cJSON *req, sw_cloud_chunk_fn on_chunk, void *user,
                        sw_cloud_result *res, sw_err *err);

/* sw_cloud_chat for a request in Anthropic's own format: req (borrowed) is a
 * Messages body, sent to an Anthropic provider as it is (content blocks,
 * tools, tool_choice...) with our model name and the stream flag and without
 * the "spillway" extension (sw_wire_anthropic_native). The answer comes back
 * in the OpenAI shape like sw_chat's, tool_use blocks as tool calls and the
 * stop sequence kept. SW_E_INVALID_ARG for an OpenAI-compatible provider. */
sw_status sw_cloud_messages(sw_cloud *c, const cJSON *req, sw_cloud_chunk_fn on_chunk, void *user,
                            sw_cloud_result *res, sw_err *err);

/* {"error":{"message":..,"type":..,"code":..}} for a failed call, malloc'd
 * (caller frees). The message is err's (already scrubbed of the key). */
char *sw_cloud_error_json(const sw_cloud_result *res, sw_status st, const sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
