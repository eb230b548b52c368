/* router.h — where a request runs, decided once before any compute: local
 * engine, cloud provider, or rejected with a clear error. Inputs are the
 * server's policy (sw_router_policy, from --route-config and flags), the
 * per-API-key policy, the request's "spillway" extension object
 * ({"route": "auto"|"local"|"cloud", "private": true}), the X-Spillway-Private
 * header, the prompt's text (PII detectors), its token counts, and the local
 * engine's load.
 *
 * Precedence, first match wins (reason codes in brackets; see
 * docs/fallback.md for the table):
 *   1. private (request flag, header or key) + route "cloud"  -> reject 400 [private]
 *      cloud forbidden by key/policy + route "cloud"         -> reject 400 [policy_local]
 *   1b. PII found and the PII action is "refuse"              -> reject 400 [pii] (pii_detected)
 *   2. PII found + route "cloud" (action "local")             -> reject 400 [pii]
 *   3. route "cloud", cloud not available                     -> reject 503 [cloud_unavailable]
 *      route "cloud"                                          -> cloud      [explicit_cloud]
 *   4. prompt + max_tokens over the local context:
 *        private / PII / cloud forbidden / cloud unavailable  -> reject 400
 *          context_length_exceeded [private|pii|policy_local|cloud_unavailable]
 *        otherwise                                            -> cloud      [overflow]
 *   5. route "local"                                          -> local      [explicit_local]
 *   6. private / PII / cloud forbidden                        -> local      [private|pii|policy_local]
 *   7. queue >= queue_threshold                               -> cloud      [queue_full]
 *      KV use >= kv_pressure_threshold                        -> cloud      [kv_pressure]
 *      default route "cloud"                                  -> cloud      [policy_cloud]
 *      (any of these with the cloud unavailable)              -> local      [cloud_unavailable]
 *   8. otherwise                                              -> local      [default]
 * With the PII action "redact", personal data does not pin the request:
 * routing goes on as if there were none, and decision.redact tells the
 * server to replace it by placeholders (redact.h) whenever the request is
 * sent to the cloud (also after a low-confidence escalation). Private
 * requests and local-only keys are not scanned at all: they never leave.
 * More reasons are set later by the server: [low_confidence] when the
 * monitor escalates a local answer, [cloud_failed] when a cloud call fails and
 * the request is answered locally, [route_score] when the learned router's
 * score puts an auto request in the --cloud-share budget, and [shadow] for the
 * ledger line of a shadow call (shadow sampling, never a client's answer).
 *
 * Threading: a sw_router is immutable after creation except through its
 * cloud-availability callback; sw_router_decide may be called from any thread. */
#ifndef SW_ROUTER_H
#define SW_ROUTER_H

#include <cjson/cJSON.h>

#include "pii.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_route { SW_ROUTE_LOCAL = 0, SW_ROUTE_CLOUD, SW_ROUTE_REJECT } sw_route;
#define SW_ROUTE_COUNT 3

typedef enum sw_route_reason {
    SW_REASON_DEFAULT = 0,
    SW_REASON_EXPLICIT_LOCAL,
    SW_REASON_EXPLICIT_CLOUD,
    SW_REASON_POLICY_LOCAL,
    SW_REASON_POLICY_CLOUD,
    SW_REASON_PRIVATE,
    SW_REASON_PII,
    SW_REASON_OVERFLOW,
    SW_REASON_QUEUE_FULL,
    SW_REASON_KV_PRESSURE,
    SW_REASON_LOW_CONFIDENCE,
    SW_REASON_CLOUD_UNAVAILABLE,
    SW_REASON_CLOUD_FAILED,
    SW_REASON_ROUTE_SCORE, /* the learned router's score is in the cloud-share budget */
    SW_REASON_SHADOW,      /* a shadow call: the cloud asked too, to label a local answer */
} sw_route_reason;
#define SW_REASON_COUNT 15

const char *sw_route_str(sw_route r);               /* "local", "cloud", "reject" */
const char *sw_route_reason_str(sw_route_reason r); /* "default", "explicit_local", ... */

/* What the request (or a key, or the server default) asks for. */
typedef enum sw_route_pref {
    SW_PREF_AUTO = 0,
    SW_PREF_LOCAL,
    SW_PREF_CLOUD,
} sw_route_pref;

/* What happens to a request in which the PII detectors find personal data
 * (and which could otherwise be sent to the cloud). INHERIT (0) in a key's
 * or a request's setting means "not set here". */
typedef enum sw_pii_action {
    SW_PII_ACTION_INHERIT = 0,
    SW_PII_ACTION_LOCAL,  /* keep it on this machine (the default) */
    SW_PII_ACTION_REDACT, /* it may leave with the data replaced by placeholders */
    SW_PII_ACTION_REFUSE, /* answer 400 pii_detected */
} sw_pii_action;

const char *sw_pii_action_str(sw_pii_action a); /* "local", "redact", "refuse", "inherit" */
/* "local" / "redact" / "refuse" -> *out; SW_E_INVALID_ARG naming the value. */
sw_status sw_pii_action_parse(const char *s, sw_pii_action *out, sw_err *err);

/* Policy for one API key of our server (the client's bearer token). */
typedef struct sw_key_policy {
    const char *key;    /* borrowed at create, copied by the router */
    bool private_;      /* every request with this key is private */
    bool local_only;    /* this key may never use the cloud */
    sw_pii_action pii;  /* INHERIT: the request's, else the policy's */
} sw_key_policy;

typedef struct sw_router_policy {
    sw_route_pref default_route; /* AUTO: spill on triggers; LOCAL: cloud only when a
                                    request asks; CLOUD: everything not private goes out */
    int32_t queue_threshold;     /* waiting requests >= this -> cloud; <= 0: off */
    double kv_pressure_threshold;/* KV fraction in use >= this -> cloud; <= 0: off */
    unsigned pii_kinds;          /* detectors to run (SW_PII_*); 0: none */
    sw_pii_action pii_action;    /* INHERIT is taken as LOCAL */
    bool escalation;             /* the monitor may escalate local answers */
    sw_route_pref tools_route;   /* requests that may call tools: CLOUD sends them out (reason
                                    policy_cloud: local models fumble tools); AUTO, LOCAL: no effect */
    const sw_key_policy *keys;   /* [n_keys] borrowed at create, copied */
    size_t n_keys;
} sw_router_policy;

/* default_route AUTO, queue_threshold 0 (off), kv_pressure_threshold 0.95,
 * every PII detector, escalation on, no keys. */
void sw_router_policy_default(sw_router_policy *p);

/* Is the cloud usable right now (configured, key present, breaker closed)?
 * Called on every decision; must be cheap and thread-safe. */
typedef bool (*sw_cloud_available_fn)(void *user);

typedef struct sw_router sw_router;

/* p is copied. available may be NULL (no cloud configured: never spill). */
sw_status sw_router_create(const sw_router_policy *p, sw_cloud_available_fn available,
                           void *available_user, sw_router **out, sw_err *err);
void sw_router_free(sw_router *r); /* NULL is a no-op */
/* The router's detectors (the policy's pii_kinds), borrowed: what the server
 * redacts with, so that redaction finds what the decision found. */
const sw_pii *sw_router_pii(const sw_router *r);

typedef struct sw_route_request {
    sw_route_pref route;        /* "spillway": {"route": ...}; AUTO when absent */
    bool private_request;       /* "spillway": {"private": true} or X-Spillway-Private */
    sw_pii_action pii_action;   /* "spillway": {"pii": ...}; INHERIT when absent. A key's
                                   own setting wins over it, it wins over the policy's. */
    const char *api_key;        /* the client's bearer token; NULL when none. Borrowed. */
    /* Text to scan for PII: the messages array of an OpenAI chat request (each
     * content: a string, or an array of {"type":"text","text":...} parts),
     * and/or explicit strings (e.g. a /v1/completions prompt). Borrowed. */
    const cJSON *messages;
    const char *const *texts;
    size_t n_texts;
    /* Sizes, in local-model tokens. max_tokens <= 0: none requested (then the
     * prompt alone must leave room for one token). */
    int32_t prompt_tokens;
    int32_t max_tokens;
    int32_t local_n_ctx;        /* sw_engine_n_ctx() */
    /* Local load, from sw_engine_stats_get (waiting, (used+0)/total). */
    int32_t queue_waiting;
    double kv_used_frac;
    bool tools;                 /* the request offers tools it may call (for tools_route) */
} sw_route_request;

typedef struct sw_route_decision {
    sw_route route;
    sw_route_reason reason;
    /* REJECT: the HTTP status and OpenAI error fields the server returns. */
    int http_status;             /* 400 or 503; 200 otherwise */
    const char *error_type;      /* "invalid_request_error" / "service_unavailable"; "" */
    const char *error_code;      /* "context_length_exceeded", "route_conflict",
                                    "cloud_unavailable"; "" */
    /* LOCAL: may the monitor escalate this answer to the cloud? */
    bool may_escalate;
    /* CLOUD: when the provider fails, may we answer locally instead? (false
     * for explicit cloud and for overflow, which cannot run locally) */
    bool local_fallback;
    unsigned pii_kinds;          /* detectors that matched (when scanned) */
    bool pii_scanned;
    sw_pii_action pii_action;    /* the action in force for this request */
    /* PII was found and the action is REDACT: if this request goes to the
     * cloud (now or after escalation), redact it first (redact.h). */
    bool redact;
    char message[256];           /* human-readable explanation, never contains request text */
} sw_route_decision;

/* Decide. Never fails on request content (bad content is a REJECT decision);
 * SW_E_INVALID_ARG for NULL arguments, SW_E_INTERNAL if a detector fails. */
sw_status sw_router_decide(const sw_router *r, const sw_route_request *req,
                           sw_route_decision *out, sw_err *err);

/* Parse the request body's "spillway" extension object into req->route,
 * req->private_request and req->pii_action (other fields untouched). Absent: no change. A wrong
 * type or value is SW_E_INVALID_ARG naming the field ("spillway.route: ..."),
 * which the server returns as a 400. */
sw_status sw_route_parse_extension(const cJSON *body, sw_route_request *req, sw_err *err);

/* X-Spillway-Private header value: "1", "true", "yes", "on" (any case) -> true. */
bool sw_route_header_private(const char *value);

/* Format "local; reason=pii" for the X-Spillway-Route response header. */
void sw_route_header_value(sw_route route, sw_route_reason reason, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
