/* spill.h — cloud spill-over inside spillway-server: the routing state made
 * at startup (policy file + flags -> cloud client, router, ledger), the
 * per-request decision, the "spillway" metadata object, ledger lines, and
 * cloud calls run on worker threads so that a connection thread can keep
 * watching its client while the provider answers.
 *
 * The request lifecycle itself (local probe, escalation, fallback, SSE) is in
 * gen.c; this file knows the fallback library, gen.c knows the engine. */
#ifndef SW_SERVER_SPILL_H
#define SW_SERVER_SPILL_H

#include "oai.h"

/* ---- startup and shutdown (main.c) ---- */

/* Load --route-config, apply the --cloud-* / --ledger flags over it, create
 * the cloud client (when configured), the router and the ledger, and log one
 * line about the cloud (provider, model, URL, and whether the key variable is
 * set; never the key). SW_E_INVALID_ARG / SW_E_FORMAT: bad configuration
 * (exit 2); anything else: cannot start (exit 1). */
sw_status srv_spill_init(srv *s, sw_err *err);
/* Free what srv_spill_init made. Waits up to wait_s for cloud calls still
 * running on worker threads; if some remain, the cloud client is left
 * allocated (the process is exiting; freeing it under a running call would
 * be a use-after-free). */
void srv_spill_free(srv *s, double wait_s);

/* ---- the decision ---- */

/* Fill the router's request from the request's hints (the "spillway"
 * object, the X-Spillway-Private header, the client's key), its model name,
 * its texts, the prompt size and the engine's load, and decide. false with e
 * filled (400 naming the field) when the extension object is malformed, or
 * 500 when a detector fails. */
bool srv_route_decide(srv *s, const srv_request *r, int32_t n_prompt, sw_route_decision *d,
                      srv_error *e);
/* The OpenAI error for a REJECT decision. context_length_exceeded keeps the
 * shape of the engine's own error (param max_tokens or messages/prompt). */
void srv_route_reject_error(const srv *s, const sw_route_decision *d, const srv_request *r,
                            int32_t n_prompt, srv_error *e);
/* sc->route_hdr = "local; reason=default" etc. */
void srv_route_set_header(srv_conn *sc, sw_route route, sw_route_reason reason);

/* ---- response metadata and the ledger ---- */

typedef struct srv_route_info {
    sw_route route;
    sw_route_reason reason;
    const char *message;                  /* why (never request text); may be NULL */
    const sw_monitor_stats *monitor;      /* NULL: the monitor did not run */
    const char *cloud_model;              /* cloud route: the provider's model; NULL otherwise */
    int cloud_attempts;
    /* cloud_failed: what went wrong with the cloud before answering locally */
    int cloud_error_status;
    const char *cloud_error_type;
    const char *cloud_error;              /* message, scrubbed of the key by the library */
    /* personal data replaced by placeholders before the request went out */
    size_t redacted_spans;
    unsigned redacted_kinds;
    bool has_route_score;                 /* the learned router scored the request: */
    double route_score;                   /* P(local answer not good enough) */
    bool probing;                         /* a stream's opening before the probe's verdict:
                                             route and reason are not final yet */
} srv_route_info;

/* {"route":..,"reason":..,"probing":true (only then),"message":..,
 *  "route_score":..,"monitor":{..,"thresholds":{..}},
 *  "cloud":{"provider":..,"model":..,"attempts":..},"cloud_error":{..},
 *  "redacted":{"spans":N,"kinds":["email",..]}}
 * as a malloc'd string (caller frees), NULL when out of memory. */
char *srv_spillway_json(const srv *s, const srv_route_info *ri);

typedef struct cloud_call cloud_call;

/* One ledger line (and totals). cc: the cloud call that answered (its
 * redaction counts go into the line), NULL otherwise. A failed write is
 * logged, not returned: the request itself succeeded. */
void srv_ledger_add(srv *s, const char *request_id, sw_route route, sw_route_reason reason,
                    const char *model, int64_t tokens_in, int64_t tokens_out, double t_start,
                    bool error, const cloud_call *cc,
                    double route_score /* NaN: not scored */);

/* ---- cloud requests ---- */

/* The body to send to the provider, the one place a request becomes one:
 * an OpenAI chat body that sw_cloud_chat maps to the provider (a chat
 * request's own body, copied; a completions prompt as a one-message chat
 * built from prompt_text and the sampling fields; an Anthropic request
 * translated), or, *native set, an Anthropic request's own body for
 * sw_cloud_messages when the provider is Anthropic. NULL when out of memory. */
cJSON *srv_cloud_body(const srv *s, const srv_request *r, const char *prompt_text, bool *native);

/* A cloud call running sw_cloud_chat (or sw_cloud_messages) on its own
 * detached thread. Reference counted: the worker holds one reference, the
 * caller the other. */
typedef struct cloud_call cloud_call;

/* A piece of a streamed answer: text, or a part of tool call number tool
 * (its id and name on its first part; data: pieces of its arguments' JSON). */
typedef struct cloud_piece {
    int tool;    /* -1: text */
    char *id;    /* owned; NULL */
    char *name;  /* owned; NULL */
    sbuf data;
} cloud_piece;
void cloud_pieces_free(cloud_piece *p, size_t n);

/* Start it; body is taken (freed by the call). native: body is an Anthropic
 * Messages body for sw_cloud_messages, else an OpenAI chat body. stream: ask
 * the provider for SSE and collect pieces as they arrive. redact: replace the
 * personal data in the body by placeholders before it leaves
 * (fallback/redact.h; every text of either body shape), and put the values
 * back into the answer as it arrives, so that what is taken from the call is
 * already restored (text and tool-call arguments); the mapping lives in the
 * call and dies with it. A redaction failure fails the start (nothing is
 * sent). */
sw_status cloud_call_start(srv *s, cJSON *body, bool native, bool stream, bool redact,
                           cloud_call **out, sw_err *err);
/* Spans replaced in the request, and their kinds (0 when not redacted). */
size_t cloud_call_redacted(const cloud_call *c, unsigned *kinds);
/* Wait up to slice_s for news; append the pieces that arrived since the last
 * take to *pieces (*n of them; a malloc'd array the caller frees with
 * cloud_pieces_free); copy a finish_reason into finish (when one arrived).
 * Returns true once the call is over (then cloud_call_result is valid). */
bool cloud_call_take(cloud_call *c, double slice_s, cloud_piece **pieces, size_t *n, char *finish,
                     size_t finish_cap);
/* The stop sequence a streamed answer ended on (Anthropic), or NULL; valid
 * once the call is over. */
const char *cloud_call_stop_sequence(const cloud_call *c);
/* Whether the call is over (takes nothing). */
bool cloud_call_done(cloud_call *c);
/* Ask a streaming call to stop at its next chunk (client gone, shutdown). A
 * non-streaming call runs to its own timeout in the background. */
void cloud_call_cancel(cloud_call *c);
/* The outcome, after cloud_call_take returned true. Borrowed until unref. */
sw_status cloud_call_result(const cloud_call *c, const sw_cloud_result **res, const sw_err **err);
void cloud_call_unref(cloud_call *c); /* NULL is a no-op */

#endif
