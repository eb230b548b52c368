/* req.h — the server's one internal request, the outcome of a generation, and
 * the writer interface.
 *
 * Every wire format parses its body into one srv_request: OpenAI chat and
 * completions (oai_parse.c), Anthropic Messages (anthropic_parse.c). The
 * generation core (gen.c) renders the prompt (prompt.c), routes (spill.c),
 * runs the request locally or in the cloud, probes, and writes the ledger on
 * that struct alone; it answers through the srv_writer of the request's wire
 * format (oai_write.c, anthropic_write.c), which turns the core's calls
 * (start, text, tool call, finish, error) into that format's bytes.
 *
 * Extension points (each a small, separate function):
 *   - prompt rendering: srv_prompt_render (prompt.c), the one place that
 *     turns messages (blocks, tools) into the model's prompt text;
 *   - output constraints: srv_request.format and .tools, carried to the engine
 *     in local_submit (gen.c);
 *   - the cloud request: srv_cloud_body (spill.c), the one place a request
 *     becomes the provider's body; its answer reaches the client only through
 *     cloud_text (gen.c) -- the place for redaction and its restore;
 *   - routing: srv_route_decide (spill.c) on the request and its hints, and
 *     srv_spillway_json for the "spillway" object of every answer. */
#ifndef SW_SERVER_REQ_H
#define SW_SERVER_REQ_H

#include <spillway.h>

#include <cjson/cJSON.h>

#include "sbuf.h"

/* ---- errors ------------------------------------------------------------------------ */

/* An error for the client: HTTP status plus OpenAI-style fields. Each wire
 * format writes it in its own shape (an Anthropic writer maps the status to
 * its error types). Strings are static or copied into param/msg. */
typedef struct srv_error {
    int status;
    const char *type;  /* "invalid_request_error", "server_error", ... */
    const char *code;  /* may be NULL -> JSON null */
    char param[128];   /* "" -> JSON null */
    char msg[SW_ERR_LEN + 128];
} srv_error;

void srv_error_set(srv_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* ---- the request ------------------------------------------------------------------- */

typedef enum srv_wire {
    SRV_WIRE_OAI_CHAT = 0,     /* POST /v1/chat/completions */
    SRV_WIRE_OAI_COMPLETIONS,  /* POST /v1/completions */
    SRV_WIRE_ANTHROPIC,        /* POST /v1/messages */
} srv_wire;

typedef enum srv_block_type {
    SRV_BLOCK_TEXT = 0,
    SRV_BLOCK_TOOL_USE,    /* the assistant called a tool */
    SRV_BLOCK_TOOL_RESULT, /* the user hands back a tool's result */
} srv_block_type;

/* One piece of a message's content. Every pointer is owned. */
typedef struct srv_block {
    srv_block_type type;
    char *text;    /* TEXT: the text; TOOL_RESULT: the result as text; TOOL_USE: NULL */
    char *id;      /* TOOL_USE: the call's id; TOOL_RESULT: the id of the call it answers */
    char *name;    /* TOOL_USE: the tool's name */
    char *input;   /* TOOL_USE: the arguments, compact JSON text of an object */
    bool is_error; /* TOOL_RESULT: the tool reported a failure */
} srv_block;

typedef struct srv_msg {
    char *role;        /* "system", "user" or "assistant"; owned */
    srv_block *blocks; /* [n_blocks], owned; none: empty content */
    size_t n_blocks;
} srv_msg;

typedef struct srv_tool {
    char *name;        /* owned */
    char *description; /* owned; NULL: none */
    cJSON *parameters; /* JSON Schema of the arguments object; owned; NULL: any object */
} srv_tool;

typedef enum srv_tool_choice {
    SRV_TOOL_AUTO = 0, /* the model decides */
    SRV_TOOL_NONE,     /* no tool call */
    SRV_TOOL_ANY,      /* some tool must be called (OpenAI "required") */
    SRV_TOOL_NAMED,    /* tool_name must be called */
} srv_tool_choice;

typedef enum srv_format_type {
    SRV_FORMAT_TEXT = 0,
    SRV_FORMAT_JSON_OBJECT, /* one JSON object (JSON mode) */
    SRV_FORMAT_JSON_SCHEMA, /* one JSON value valid under schema */
    SRV_FORMAT_GRAMMAR,     /* text in the language of a GBNF grammar */
} srv_format_type;

typedef struct srv_output_format {
    srv_format_type type;
    cJSON *schema;   /* JSON_SCHEMA: the schema; owned */
    char *name;      /* JSON_SCHEMA: its name; owned; may be NULL */
    bool strict;     /* JSON_SCHEMA: OpenAI's strict flag */
    char *grammar;   /* GRAMMAR: the GBNF source; owned */
} srv_output_format;

/* Where the request may go, as the client asked: the router's inputs that
 * are not the content. Filled by the parser (spillway) and the handler
 * (header, key). */
typedef struct srv_route_hints {
    const cJSON *spillway; /* the body's "spillway" extension object; borrowed from raw */
    bool private_header;   /* X-Spillway-Private */
    char *api_key;         /* the client's key (Bearer or x-api-key); owned; NULL: none */
} srv_route_hints;

/* A validated request of any wire format. Every pointer is owned; free with
 * srv_request_free. */
typedef struct srv_request {
    srv_wire wire;
    cJSON *raw;             /* the body as parsed (the cloud pass-through); owned */
    char *model;            /* the requested model name; NULL: not given */
    /* chat (OpenAI chat, Anthropic) */
    char *system;           /* top-level system text (Anthropic); NULL: none. OpenAI's
                               system messages stay in msgs. */
    srv_msg *msgs;
    size_t n_msgs;
    bool continue_final;    /* the last (assistant) message is a prefix the answer
                               continues (Anthropic); else a new assistant turn opens */
    srv_tool *tools;
    size_t n_tools;
    srv_tool_choice tool_choice;
    char *tool_name;        /* SRV_TOOL_NAMED: the tool; owned */
    bool parallel_tool_calls;
    /* completions: text or token ids (exactly one is set) */
    char *prompt;
    int32_t *prompt_ids;
    size_t n_prompt_ids;
    bool echo;
    /* generation */
    bool stream;
    bool include_usage;     /* OpenAI stream_options.include_usage */
    int32_t max_tokens;     /* 0: not given (chat: until the model stops or the context is full) */
    sw_sampler_params sp;   /* sp.logit_bias points at logit_bias below */
    sw_logit_bias *logit_bias; /* [sp.n_logit_bias], owned */
    bool seed_given;
    bool logprobs;          /* return logprobs */
    int32_t top_logprobs;   /* alternatives per token, 0..SW_MAX_TOP_LOGPROBS */
    char **stop;            /* [n_stop] non-empty strings, owned */
    int n_stop;
    bool ignore_eos;        /* extension */
    srv_output_format format;
    srv_route_hints hints;
} srv_request;

void srv_request_free(srv_request *r); /* NULL is a no-op; leaves *r zeroed */

/* Append a message / block / stop string; false when out of memory (the
 * request stays valid). The returned pointers are zeroed slots to fill. */
srv_msg *srv_request_add_msg(srv_request *r, const char *role);
srv_block *srv_msg_add_block(srv_msg *m, srv_block_type type);
bool srv_request_add_stop(srv_request *r, const char *s);

/* Every text of the request a detector should see (system, message texts,
 * tool inputs and results, the completions prompt), as borrowed pointers in
 * a malloc'd array (caller frees the array only). false when out of memory. */
bool srv_request_texts(const srv_request *r, const char ***out, size_t *n);

/* ---- the outcome ------------------------------------------------------------------- */

typedef enum srv_finish {
    SRV_FINISH_STOP = 0,       /* the model stopped, or a stop string matched */
    SRV_FINISH_LENGTH,         /* max_tokens, or the context filled */
    SRV_FINISH_TOOL_CALLS,     /* the answer ends with tool calls */
    SRV_FINISH_CONTENT_FILTER, /* the provider refused */
} srv_finish;

/* An OpenAI finish_reason ("stop", "length", "tool_calls", "content_filter")
 * as srv_finish; anything else is STOP. */
srv_finish srv_finish_parse(const char *s);

typedef struct srv_tool_call {
    char *id;        /* owned */
    char *name;      /* owned */
    char *arguments; /* JSON text of the arguments object; owned */
} srv_tool_call;

/* How a generation ended, and for whole (non-streaming) responses the whole
 * answer. Everything is borrowed for the duration of the writer call. */
typedef struct srv_result {
    srv_finish finish;
    const char *stop_sequence; /* the stop string that ended the answer; NULL: none */
    sw_usage usage;
    /* whole responses only */
    const char *text;          /* the answer's text (not NUL-safe: use text_len) */
    size_t text_len;
    const sw_token_info *toks; /* [n_toks] for logprobs; NULL when not asked */
    size_t n_toks;
    const srv_tool_call *calls;/* [n_calls] */
    size_t n_calls;
} srv_result;

/* ---- writers ----------------------------------------------------------------------- */

typedef struct srv_writer srv_writer;

/* One response being written: what every event repeats, and the writer's
 * own state between events. The core fills the first block; the writer owns
 * the rest. */
typedef struct srv_out {
    const srv_writer *w;
    const char *id;          /* "chatcmpl-...", "msg_..." */
    int64_t created;
    const char *model;       /* who answers: the local model's or the cloud's name */
    const char *fingerprint;
    /* The "spillway" routing object (prepared JSON) or NULL. Streams attach
     * it to their first event only (the writer clears it). */
    const char *spillway;
    const sw_tokenizer *tok; /* for logprobs */
    bool logprobs;           /* the answer carries logprobs (local only) */
    bool include_usage;
    int32_t prompt_tokens;   /* local prompt size, for a stream's opening event */
    const char *echo;        /* completions echo: borrowed from the handler, valid
                                only while it runs (start, response) */
    size_t echo_len;
    /* the writer's state */
    size_t text_offset;      /* completions logprobs: bytes before the next token */
    int block;               /* Anthropic: index of the open content block; -1: none */
    int n_blocks;            /* Anthropic: content blocks started so far */
    bool block_is_text;
} srv_out;

/* A wire format's answers. Stream functions append SSE events to b; the
 * whole-response function appends one JSON body. tok may be NULL (no logprobs
 * for this text, e.g. a flush of held-back text or a cloud answer). */
struct srv_writer {
    const char *id_prefix;   /* for srv_make_id */
    void (*stream_start)(srv_out *o, sbuf *b);
    void (*stream_text)(srv_out *o, sbuf *b, const char *text, size_t len,
                        const sw_token_info *tok);
    /* Part of tool call number index: id and name on its first part, then
     * pieces of its arguments' JSON text. */
    void (*stream_tool_call)(srv_out *o, sbuf *b, size_t index, const char *id, const char *name,
                             const char *args, size_t args_len);
    /* The end: closing events and the stream's terminator. */
    void (*stream_finish)(srv_out *o, sbuf *b, const srv_result *r);
    /* A failure after the stream began: an error event and the terminator. */
    void (*stream_error)(srv_out *o, sbuf *b, const srv_error *e);
    void (*response)(srv_out *o, sbuf *b, const srv_result *r);
    /* An error response's body, malloc'd (NULL when out of memory). */
    char *(*error_json)(const srv_error *e);
};

extern const srv_writer oai_chat_writer, oai_cmpl_writer; /* oai_write.c */
extern const srv_writer anthropic_writer;                 /* anthropic_write.c */

const srv_writer *srv_writer_for(srv_wire w);

/* A fresh id "<prefix><24 random alphanumerics>" into buf. */
void srv_make_id(char *buf, size_t cap, const char *prefix);
/* A random 64-bit number (for ids and default seeds). */
uint64_t srv_random_u64(void);

#endif
