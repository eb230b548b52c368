/* server.h — shared state of spillway-server: the configuration from the
 * command line, the loaded model and engine, and the functions the server's
 * files offer each other (HTTP layer, request handlers, generation). The
 * internal request and the writer interface are in req.h.
 *
 * Threading: libmicrohttpd runs one thread per connection; every handler may
 * run on any of them at once. The srv struct is written by main() before the
 * listener starts and by the loader (model, engine, tok...) before `state`
 * becomes SRV_READY; after that handlers only read it. */
#ifndef SW_SERVER_H
#define SW_SERVER_H

#include <spillway.h>

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "engine.h"
#include "metrics.h"
#include "req.h"
#include "route_model.h"
#include "share.h"

typedef struct srv_config {
    const char *model_path;  /* -m (or the --hf download) */
    const char *hf;          /* --hf REPO:FILE */
    const char *cache_dir;   /* --cache-dir */
    bool download_only;      /* --download-only: fetch --hf and exit */
    const char *host;        /* --host */
    int port;                /* --port; 0 = pick a free one */
    const char *backend;     /* --backend */
    int32_t threads;         /* --threads */
    int32_t device;          /* --device: GPU index; -1 = the preferred one */
    int32_t ctx;             /* --ctx; 0 = model's, capped at 4096 */
    int32_t parallel;        /* --parallel: max running sequences */
    int32_t max_queue;       /* --max-queue: waiting requests before 429 */
    int32_t batch_tokens;    /* --batch-tokens: tokens per engine step */
    uint64_t kv_memory;      /* --kv-memory */
    bool no_prefix_cache;    /* --no-prefix-cache */
    char **api_keys;         /* --api-key / --api-key-file; owned */
    int n_api_keys;
    const char *alias;       /* --model-alias */
    const char *chat_template; /* --chat-template: a built-in template by name */
    const char *chat_template_file; /* --chat-template-file: a Jinja file */
    const char *embedding_model; /* --embedding-model FILE: /v1/embeddings' own model */
    const char *system_prompt; /* --system-prompt: the system message of local chats
                                  that bring none; NULL: none */
    size_t max_body;         /* --max-body */
    double timeout_s;        /* --timeout: idle connection + per-request deadline */
    const char **cors_origins; /* --cors-origin (argv strings; the array owned); none:
                                  localhost origins only */
    int n_cors_origins;
    bool strict_model_names; /* --strict-model-names: unknown "model" -> 404 */
    /* Cloud spill-over (spill.c). Flags override --route-config. */
    const char *route_config;  /* --route-config FILE */
    const char *cloud_provider;/* --cloud-provider anthropic|openai */
    const char *cloud_url;     /* --cloud-url */
    const char *cloud_model;   /* --cloud-model */
    const char *cloud_key_env; /* --cloud-key-env: the variable holding the provider key */
    const char *ledger;        /* --ledger FILE */
    /* The learned router (learned.c). */
    const char *router;        /* --router FILE */
    double cloud_share;        /* --cloud-share S in [0, 1]; < 0: not given */
    double shadow_rate;        /* --shadow-rate R in [0, 1]; 0: off */
} srv_config;

typedef enum srv_state {
    SRV_LOADING = 0, /* listener up, model not yet: /health says 503 */
    SRV_READY,
    SRV_STOPPING,    /* signal received: new requests get 503 */
    SRV_FAILED,      /* the model failed to load */
} srv_state;

typedef struct srv {
    srv_config cfg;
    _Atomic int state;              /* srv_state */
    double test_token_delay_s;      /* SW_SERVER_TEST_TOKEN_DELAY (testing aid): the engine's
                                       thread sleeps this long per generated token */
    /* Set by the loader before state becomes SRV_READY. */
    sw_backend *be;
    sw_model *model;
    sw_engine *engine;
    const sw_tokenizer *tok;
    sw_chat_template *chat;         /* the flag's, else the model's, else chatml */
    bool chat_native_tools;         /* chat renders tools and tool calls itself */
    sw_chat_template *chat_tools;   /* the model's tokenizer.chat_template.tool_use, used
                                       for requests with tools (as transformers); may be NULL */
    int32_t n_ctx;
    char model_id[256];             /* the alias: what responses call the model */
    char model_file[256];           /* basename of the file, also accepted as a name */
    char fingerprint[64];           /* system_fingerprint */
    int64_t created;                /* unix time the model was loaded */
    /* Connections with a request in progress, for the shutdown drain. */
    atomic_int active;
    srv_metrics metrics;
    /* Routing (spill.c), created by srv_spill_init before the listener
     * starts and immutable afterwards (the library objects are thread-safe). */
    sw_route_config route;          /* the policy: file + flags */
    sw_cloud *cloud;                /* NULL: no cloud configured */
    sw_router *router;
    sw_ledger *ledger;
    atomic_int cloud_workers;       /* cloud calls still running on worker threads */
    struct srv_embedder *embedder;  /* /v1/embeddings' source (embed.h); set by the loader */
    struct srv_gcache *gcache;      /* compiled output grammars (constrain.c); may be NULL */
    /* The learned router (learned.c): NULL when not configured. */
    sw_rtr *rtr;
    sw_share_ctl *share;
    pthread_mutex_t shadow_mu;      /* shadow_debt and the state file */
    bool shadow_mu_init;
    double shadow_debt;
    atomic_ullong shadow_labels, shadow_agree;
} srv;

/* ---- the HTTP layer (http.c) ---- */

struct MHD_Connection;
/* Start libmicrohttpd on cfg.host:cfg.port. *port_out gets the bound port. */
sw_status srv_http_start(srv *s, int *port_out, sw_err *err);
/* Stop accepting new connections (existing ones continue). */
void srv_http_quiesce(void);
/* Close every connection and join their threads. */
void srv_http_stop(void);

typedef enum srv_endpoint {
    EP_UNKNOWN = 0,
    EP_CHAT,        /* POST /v1/chat/completions */
    EP_CMPL,        /* POST /v1/completions */
    EP_MODELS,      /* GET /v1/models */
    EP_MODEL,       /* GET /v1/models/{id} */
    EP_HEALTH,      /* GET /health */
    EP_METRICS,     /* GET /metrics */
    EP_TOKENIZE,    /* POST /tokenize */
    EP_DETOKENIZE,  /* POST /detokenize */
    EP_USAGE,       /* GET /v1/usage: the cost ledger's totals */
    EP_WEB,         /* GET / and /web/NAME: the built-in page (web.c); no key needed */
    EP_MESSAGES,    /* POST /v1/messages (Anthropic) */
    EP_COUNT_TOKENS,/* POST /v1/messages/count_tokens (Anthropic) */
    EP_EMBEDDINGS,  /* POST /v1/embeddings */
    EP_APPLY_TEMPLATE, /* POST /apply-template: messages -> prompt text (as llama.cpp) */
} srv_endpoint;

/* Per-request context of the HTTP layer, visible to the handlers. */
typedef struct srv_conn {
    srv *s;
    struct MHD_Connection *conn;
    srv_endpoint endpoint;
    const char *name;        /* the route's name for metrics (static) */
    srv_wire wire;           /* the wire format its errors are written in */
    char *url_arg;           /* EP_MODEL: the id from the path; owned */
    char *body;              /* request body, NUL-terminated */
    size_t body_len, body_cap;
    bool too_large;
    bool responded;          /* a response was queued */
    int status;              /* status of the response, for metrics */
    double t_start;
    struct gen_req *gen;     /* the generation, when the handler started one */
    char route_hdr[64];      /* X-Spillway-Route value; "" -> no header */
    double retry_after_s;    /* Retry-After for an error response; < 0: the default */
} srv_conn;

/* Queue a response with body (taken: freed by the HTTP layer; NULL means out
 * of memory and sends a 500) and the given status and content type
 * (NULL: application/json); records the status for metrics. Returns the MHD
 * result (an enum MHD_Result). */
int srv_respond(srv_conn *sc, int status, char *body, const char *content_type);
/* An error response in the connection's wire format. */
int srv_respond_error(srv_conn *sc, const srv_error *e);
/* Add the per-request headers (X-Spillway-Route, CORS) to a response built
 * by a handler itself (the streaming ones); srv_respond adds them itself. */
struct MHD_Response;
void srv_add_response_headers(srv_conn *sc, struct MHD_Response *r);

/* A query-string argument of the request ("?bucket=hour" -> "hour"),
 * decoded; NULL when absent. Borrowed for the request's lifetime. */
const char *srv_query(srv_conn *sc, const char *name);

/* Under mu: wait on cv for a signal, at most s seconds (one slice of a wait
 * that polls for a deadline or a client that left). In gen.c. */
void srv_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double s);

/* Whether the peer of c has closed its end (checked without blocking). */
bool srv_conn_hung_up(struct MHD_Connection *c);
/* The routing hints the connection carries: X-Spillway-Private and the
 * client's key (Authorization: Bearer, or x-api-key). h->api_key is
 * replaced (owned by h). false when out of memory. */
bool srv_conn_hints(srv_conn *sc, srv_route_hints *h);

/* ---- the prompt (prompt.c) ---- */

/* The chat prompt text of r (system text and messages through the chat
 * template); *out malloc'd. false with e filled (400 naming "messages" when
 * the template cannot express them). */
bool srv_prompt_render(const srv *s, const srv_request *r, char **out, srv_error *e);
/* POST /apply-template: {"messages", "tools"?, "add_generation_prompt"?,
 * "chat_template_kwargs"?} -> {"prompt": the text the chat template renders}. */
int srv_handle_apply_template(srv_conn *sc);
/* r's prompt in local tokens (*ids malloc'd) and, for a completions request
 * with echo, the prompt text to echo (*echo malloc'd or NULL). */
bool srv_prompt_tokens(const srv *s, const srv_request *r, int32_t **ids, size_t *n, char **echo,
                       srv_error *e);

/* ---- output constraints (constrain.c) ---- */

/* A cache of compiled grammars, shared by all requests (thread-safe). */
typedef struct srv_gcache srv_gcache;
srv_gcache *srv_gcache_create(void);
void srv_gcache_free(srv_gcache *c);
/* The grammar that constrains r's local answer (its response_format
 * json_schema, json_schema or grammar field), a new reference in *out; NULL
 * when r has none (text, or JSON mode, which the engine does itself). false
 * with a 400 naming the field when it does not compile. */
bool srv_format_grammar(srv *s, const srv_request *r, sw_grammar **out, srv_error *e);

/* The grammar of tool calls in syntax syn over defs (constrain.c; cached like
 * the others). false with a 400 naming "tools" when a tool's parameters
 * schema cannot be enforced. */
bool srv_compile_tool_grammar(srv *s, const sw_tool_call_syntax *syn, const sw_tool_def *defs,
                              int32_t n, sw_grammar **out, srv_error *e);

/* ---- tool calls on the local model (toolcall.c) ---- */

/* r offers tools and may call them (tool_choice other than none). */
bool srv_tools_active(const srv_request *r);
/* The text that tells the model about r's tools, for its system prompt
 * (malloc'd); NULL when r calls no tools. */
char *srv_tools_system_text(const srv *s, const srv_request *r);
/* A TOOL_USE or TOOL_RESULT block of the history, as the model writes and
 * reads them (its family's syntax), appended to b. */
void srv_tools_render_block(const srv *s, const srv_block *k, sbuf *b);
/* The grammar r's answer must follow: only calls ("required", named), or
 * text and then calls ("auto"); parallel_tool_calls false allows one call. */
bool srv_tools_grammar(srv *s, const srv_request *r, sw_grammar **out, srv_error *e);
/* The control tokens the model writes its calls with (Mistral's [TOOL_CALLS],
 * [ARGS]), into ids[0..cap): the engine renders them as text for a request
 * with tools (sw_request.text_ids). Returns how many. */
size_t srv_tools_special_ids(const srv *s, int32_t *ids, size_t cap);

/* Reading an answer back into text and tool calls, incrementally. */
typedef struct srv_tool_sink {
    void *user;
    void (*text)(void *user, const char *t, size_t n);
    /* Part of call number index: id and name on its first part (args ""),
     * then pieces of its arguments' JSON text (id, name NULL). */
    void (*call)(void *user, size_t index, const char *id, const char *name, const char *args,
                 size_t n);
} srv_tool_sink;
typedef struct srv_tool_parser srv_tool_parser;
/* Calls get ids "<id_prefix><24 alphanumerics>" (borrowed; a literal), or
 * for Mistral's syntax 9 alphanumerics (its templates check that). calls_only:
 * the answer may hold no text (tool_choice required or named), so what is held
 * back when it ends is the start of a call cut short, never content. */
srv_tool_parser *srv_tool_parser_create(const srv *s, bool calls_only, const char *id_prefix);
void srv_tool_parser_free(srv_tool_parser *p);
/* Feed answer text; the sink hears what is decided (a possible start of a
 * call marker is held back until it is decided). */
void srv_tool_parser_feed(srv_tool_parser *p, const char *text, size_t n, const srv_tool_sink *sink);
/* The answer is over: release held-back text (unless calls_only). */
void srv_tool_parser_finish(srv_tool_parser *p, const srv_tool_sink *sink);
/* The calls read (views valid until the next call or free). */
size_t srv_tool_parser_calls(srv_tool_parser *p, const srv_tool_call **calls);
bool srv_tool_parser_failed(const srv_tool_parser *p);

/* ---- handlers (gen.c: generation; api.c: the small endpoints) ---- */

/* A generation endpoint of any wire format (POST /v1/chat/completions,
 * /v1/completions): parse into the internal request, route, submit, then
 * either block until done and answer (non-streaming) or queue an SSE
 * response fed from the engine's events, all through the format's writer. */
int srv_handle_generate(srv_conn *sc, srv_wire wire);
/* The generation owned by the connection is over from the HTTP side
 * (response sent or the client went away): cancel it if still running and
 * drop the connection's reference. */
void srv_gen_release(struct gen_req *g);

int srv_handle_models(srv_conn *sc); /* the list, or one model for EP_MODEL */
int srv_handle_tokenize(srv_conn *sc);
/* POST /v1/messages/count_tokens: {"input_tokens": N}, the prompt the
 * request would give the local model. */
int srv_handle_count_tokens(srv_conn *sc);
int srv_handle_embeddings(srv_conn *sc); /* embed.c */
int srv_handle_detokenize(srv_conn *sc);
int srv_handle_metrics(srv_conn *sc);
int srv_handle_usage(srv_conn *sc); /* spill.c */
int srv_handle_web(srv_conn *sc);   /* web.c */

/* Model names. Any name is served (unless --strict-model-names): the
 * local model's names (the alias, the file name with or without ".gguf")
 * take the automatic route, the cloud model's name asks for the cloud
 * (srv_model_is_cloud), a name of the policy's "models" its route, and any
 * other name the "*" entry's route, else the automatic one. Responses name
 * who answered. srv_model_name_ok is false only under --strict-model-names
 * for a name that is none of the above. */
bool srv_model_name_ok(const srv *s, const char *name);
bool srv_model_is_cloud(const srv *s, const char *name);
sw_route_pref srv_model_route(const srv *s, const char *name);
/* The 404 for a model name that is none of these (it names what is served). */
void srv_model_not_found(const srv *s, const char *name, srv_error *e);

#endif
