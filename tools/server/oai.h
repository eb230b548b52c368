/* oai.h — the OpenAI wire format: parsing and validating chat/completions
 * requests (oai_parse.c) and writing responses, stream chunks, logprobs and
 * errors as JSON (oai_write.c). Nothing here knows HTTP or the engine's
 * threading; it turns bytes into a validated struct and structs into bytes. */
#ifndef SW_SERVER_OAI_H
#define SW_SERVER_OAI_H

#include "sbuf.h"
#include "server.h"

/* OpenAI allows up to 4 stop sequences. */
#define OAI_MAX_STOP 4

typedef struct oai_msg {
    char *role;    /* "system", "user", "assistant" (developer is mapped to system); owned */
    char *content; /* owned */
} oai_msg;

/* A validated /v1/chat/completions or /v1/completions request. Every pointer
 * is owned by the struct; free with oai_request_free. */
typedef struct oai_request {
    bool chat;
    char *model;                 /* NULL: not given */
    /* chat */
    oai_msg *msgs;
    size_t n_msgs;
    /* completions: text or token ids (exactly one is set) */
    char *prompt;
    int32_t *prompt_ids;
    size_t n_prompt_ids;
    bool echo;
    /* common */
    bool stream, include_usage;
    int32_t max_tokens;          /* 0: not given */
    sw_sampler_params sp;        /* sp.logit_bias points at logit_bias below */
    sw_logit_bias *logit_bias;   /* [sp.n_logit_bias], owned */
    bool seed_given;
    bool logprobs;               /* return logprobs */
    int32_t top_logprobs;        /* alternatives per token, 0..SW_MAX_TOP_LOGPROBS */
    char *stop[OAI_MAX_STOP];
    int n_stop;
    bool ignore_eos;             /* extension */
    bool json_object;            /* response_format {"type": "json_object"} */
} oai_request;

/* Parse body (len bytes, need not be NUL-terminated) as a chat (chat = true) or
 * completions request. n_vocab bounds token ids in a token prompt. On failure
 * fills e (status 400, the param at fault) and returns false. */
bool oai_parse_request(const char *body, size_t len, bool chat, int32_t n_vocab,
                       oai_request *out, oai_error *e);
void oai_request_free(oai_request *r);

/* Parse a small JSON object body for /tokenize and /detokenize; NULL and e
 * filled on failure. The result is a cJSON tree (caller deletes). */
struct cJSON;
struct cJSON *oai_parse_object(const char *body, size_t len, oai_error *e);

/* ---- writing ---- */

/* Append s[0..n) as a JSON string literal. Invalid UTF-8 becomes U+FFFD, so the
 * output is always valid JSON even for a token that is half a character. */
void oai_json_str(sbuf *b, const char *s, size_t n);
/* A log-probability as a JSON number (-inf and NaN become -9999.0, as OpenAI). */
void oai_json_logprob(sbuf *b, float lp);

/* Fields every response object repeats. */
typedef struct oai_meta {
    const char *id;          /* "chatcmpl-..." / "cmpl-..." */
    int64_t created;
    const char *model;
    const char *fingerprint;
    /* The "spillway" routing object (prepared JSON) to add to this object, or
     * NULL. Streams attach it to their first chunk only. */
    const char *spillway;
} oai_meta;

/* choices[].logprobs of a chat response: {"content": [...], "refusal": null}. */
void oai_chat_logprobs(sbuf *b, const sw_tokenizer *tok, const sw_token_info *toks, size_t n);
/* choices[].logprobs of a completions response: tokens, token_logprobs,
 * top_logprobs, text_offset (starting at *offset, which is advanced). */
void oai_cmpl_logprobs(sbuf *b, const sw_tokenizer *tok, const sw_token_info *toks, size_t n,
                       size_t *offset);
/* "usage": {...} (with the leading key). */
void oai_usage(sbuf *b, const sw_usage *u);

/* A chat.completion.chunk or text_completion chunk as one SSE event
 * ("data: {...}\n\n"). delta_role: include "role": "assistant"; text may be
 * NULL (no content key); finish NULL -> null; logprobs_json: a prepared JSON
 * value or NULL (-> null). */
void oai_sse_chat_chunk(sbuf *b, const oai_meta *m, bool delta_role, const char *text,
                        size_t text_len, const char *logprobs_json, const char *finish,
                        bool usage_null);
void oai_sse_cmpl_chunk(sbuf *b, const oai_meta *m, const char *text, size_t text_len,
                        const char *logprobs_json, const char *finish, bool usage_null);
/* The final usage chunk of stream_options.include_usage: empty choices. */
void oai_sse_usage_chunk(sbuf *b, const oai_meta *m, bool chat, const sw_usage *u);
/* An error event in a stream: data: {"error": {...}}. */
void oai_sse_error(sbuf *b, const oai_error *e);
void oai_sse_done(sbuf *b);

/* Whole non-streaming responses. */
void oai_chat_response(sbuf *b, const oai_meta *m, const char *text, size_t text_len,
                       const char *logprobs_json, const char *finish, const sw_usage *u);
void oai_cmpl_response(sbuf *b, const oai_meta *m, const char *text, size_t text_len,
                       const char *logprobs_json, const char *finish, const sw_usage *u);

/* A fresh id "<prefix><24 random alphanumerics>" into buf. */
void oai_make_id(char *buf, size_t cap, const char *prefix);
/* A random 64-bit number (for ids and default seeds). */
uint64_t oai_random_u64(void);

#endif
