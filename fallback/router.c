/* router.c — the per-request routing decision (precedence in router.h). */
#include "router.h"

#include "redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sw_router {
    sw_router_policy p;
    sw_key_policy *keys; /* owned copies */
    sw_pii *pii;
    sw_cloud_available_fn available;
    void *available_user;
};

static const char *const k_reason_names[SW_REASON_COUNT] = {
    "default",      "explicit_local", "explicit_cloud", "policy_local",   "policy_cloud",
    "private",      "pii",            "overflow",       "queue_full",     "kv_pressure",
    "low_confidence", "cloud_unavailable", "cloud_failed", "route_score", "shadow",
};

const char *sw_route_str(sw_route r) {
    switch (r) {
    case SW_ROUTE_LOCAL: return "local";
    case SW_ROUTE_CLOUD: return "cloud";
    case SW_ROUTE_REJECT: return "reject";
    }
    return "?";
}

const char *sw_route_reason_str(sw_route_reason r) {
    return (unsigned)r < SW_REASON_COUNT ? k_reason_names[r] : "?";
}

const char *sw_pii_action_str(sw_pii_action a) {
    switch (a) {
    case SW_PII_ACTION_INHERIT: return "inherit";
    case SW_PII_ACTION_LOCAL: return "local";
    case SW_PII_ACTION_REDACT: return "redact";
    case SW_PII_ACTION_REFUSE: return "refuse";
    }
    return "?";
}

sw_status sw_pii_action_parse(const char *s, sw_pii_action *out, sw_err *err) {
    static const sw_pii_action all[] = {SW_PII_ACTION_LOCAL, SW_PII_ACTION_REDACT,
                                        SW_PII_ACTION_REFUSE};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++) {
        if (!strcmp(s, sw_pii_action_str(all[i]))) {
            *out = all[i];
            return SW_OK;
        }
    }
    return sw_err_set(err, SW_E_INVALID_ARG, "'%.40s' is not \"local\", \"redact\" or \"refuse\"",
                      s ? s : "(null)");
}

void sw_router_policy_default(sw_router_policy *p) {
    memset(p, 0, sizeof *p);
    p->default_route = SW_PREF_AUTO;
    p->queue_threshold = 0;
    p->kv_pressure_threshold = 0.95;
    p->pii_kinds = SW_PII_ALL;
    p->pii_action = SW_PII_ACTION_LOCAL;
    p->escalation = true;
}

sw_status sw_router_create(const sw_router_policy *p, sw_cloud_available_fn available,
                           void *available_user, sw_router **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_router_create: out is NULL");
    *out = NULL;
    sw_router *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(err, SW_E_NOMEM, "sw_router_create: out of memory");
    if (p) r->p = *p;
    else sw_router_policy_default(&r->p);
    r->available = available;
    r->available_user = available_user;
    r->p.keys = NULL;
    r->p.n_keys = 0;
    if (p && p->n_keys) {
        r->keys = calloc(p->n_keys, sizeof *r->keys);
        if (!r->keys) {
            sw_router_free(r);
            return sw_err_set(err, SW_E_NOMEM, "sw_router_create: out of memory");
        }
        r->p.n_keys = p->n_keys;
        for (size_t i = 0; i < p->n_keys; i++) {
            r->keys[i] = p->keys[i];
            r->keys[i].key = p->keys[i].key ? strdup(p->keys[i].key) : NULL;
            if (!r->keys[i].key || !r->keys[i].key[0]) {
                sw_router_free(r);
                /* never print the key itself: only its position */
                return sw_err_set(err, SW_E_INVALID_ARG, "router policy: keys[%zu] is empty", i);
            }
        }
    }
    sw_status st = sw_pii_create(r->p.pii_kinds, &r->pii, err);
    if (st != SW_OK) {
        sw_router_free(r);
        return st;
    }
    *out = r;
    return SW_OK;
}

void sw_router_free(sw_router *r) {
    if (!r) return;
    for (size_t i = 0; r->keys && i < r->p.n_keys; i++) free((char *)r->keys[i].key);
    free(r->keys);
    sw_pii_free(r->pii);
    free(r);
}

const sw_pii *sw_router_pii(const sw_router *r) { return r ? r->pii : NULL; }

/* Compare without an early exit, so that lookup time does not reveal how
 * much of a key matched. */
static bool key_eq(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static const sw_key_policy *find_key(const sw_router *r, const char *key) {
    if (!key || !key[0]) return NULL;
    for (size_t i = 0; i < r->p.n_keys; i++)
        if (key_eq(r->keys[i].key, key)) return &r->keys[i];
    return NULL;
}

typedef struct scan_ctx {
    const sw_router *r;
    unsigned kinds;
} scan_ctx;

static sw_status scan_one(void *user, const cJSON *item, sw_err *err) {
    scan_ctx *c = user;
    unsigned found = 0;
    sw_status st = sw_pii_scan(c->r->pii, item->valuestring, strlen(item->valuestring), true,
                               &found, NULL, err);
    c->kinds |= found;
    /* the first hit is enough: stop the walk (SW_E_CANCELLED is ours) */
    return st != SW_OK ? st : found ? SW_E_CANCELLED : SW_OK;
}

/* Scan every text of the request (the same texts redaction would replace);
 * stop at the first hit. */
static sw_status scan_request(const sw_router *r, const sw_route_request *q, unsigned *kinds,
                              sw_err *err) {
    scan_ctx c = {r, 0};
    sw_status st = SW_OK;
    for (size_t i = 0; i < q->n_texts && !c.kinds; i++) {
        if (!q->texts[i]) continue;
        cJSON item = {.type = cJSON_String, .valuestring = (char *)q->texts[i]};
        st = scan_one(&c, &item, err);
        if (st != SW_OK && st != SW_E_CANCELLED) return st;
    }
    if (!c.kinds) st = sw_chat_texts_each(q->messages, scan_one, &c, err);
    *kinds = c.kinds;
    return st == SW_E_CANCELLED ? SW_OK : st;
}

static void set(sw_route_decision *d, sw_route route, sw_route_reason reason, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void set(sw_route_decision *d, sw_route route, sw_route_reason reason, const char *fmt, ...) {
    d->route = route;
    d->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
}

/* A cloud decision for a redacted request says so (kinds only, no values). */
static void note_redaction(sw_route_decision *d, const char *kinds) {
    if (!d->redact || d->route != SW_ROUTE_CLOUD) return;
    size_t n = strlen(d->message);
    snprintf(d->message + n, sizeof d->message - n, " (personal data redacted: %s)", kinds);
}

static void reject(sw_route_decision *d, sw_route_reason reason, int http, const char *type,
                   const char *code) {
    d->route = SW_ROUTE_REJECT;
    d->reason = reason;
    d->http_status = http;
    d->error_type = type;
    d->error_code = code;
}

sw_status sw_router_decide(const sw_router *r, const sw_route_request *q, sw_route_decision *d,
                           sw_err *err) {
    if (!r || !q || !d) return sw_err_set(err, SW_E_INVALID_ARG, "sw_router_decide: NULL argument");
    memset(d, 0, sizeof *d);
    d->http_status = 200;
    d->error_type = "";
    d->error_code = "";

    const sw_key_policy *kp = find_key(r, q->api_key);
    bool priv = q->private_request || (kp && kp->private_);
    bool forbidden = (kp && kp->local_only); /* this key may never use the cloud */
    /* PII action: the key's own setting, else the request's, else the policy's */
    d->pii_action = kp && kp->pii ? kp->pii
                    : q->pii_action ? q->pii_action
                    : r->p.pii_action ? r->p.pii_action
                                      : SW_PII_ACTION_LOCAL;
    bool cloud_ok = r->available && r->available(r->available_user);
    sw_route_pref pref = q->route;

    int64_t need = (int64_t)q->prompt_tokens + (q->max_tokens > 0 ? q->max_tokens : 1);
    bool overflow = q->local_n_ctx > 0 && need > q->local_n_ctx;
    char sizes[128];
    snprintf(sizes, sizeof sizes, "%d prompt tokens + %d max_tokens > local context %d",
             q->prompt_tokens, q->max_tokens > 0 ? q->max_tokens : 1, q->local_n_ctx);

    /* 1. explicit cloud against privacy or key policy */
    if (pref == SW_PREF_CLOUD && priv) {
        reject(d, SW_REASON_PRIVATE, 400, "invalid_request_error", "route_conflict");
        set(d, SW_ROUTE_REJECT, SW_REASON_PRIVATE,
            "the request asks for route \"cloud\" but is private (spillway.private, "
            "X-Spillway-Private or the API key's policy); private requests never leave this server");
        return SW_OK;
    }
    if (pref == SW_PREF_CLOUD && forbidden) {
        reject(d, SW_REASON_POLICY_LOCAL, 400, "invalid_request_error", "route_conflict");
        set(d, SW_ROUTE_REJECT, SW_REASON_POLICY_LOCAL,
            "the request asks for route \"cloud\" but this API key may only use the local model");
        return SW_OK;
    }

    /* PII matters only when the request could otherwise leave the machine. */
    if (!priv && !forbidden && pref != SW_PREF_LOCAL && r->p.pii_kinds) {
        sw_status st = scan_request(r, q, &d->pii_kinds, err);
        if (st != SW_OK) return st;
        d->pii_scanned = true;
    }
    char kinds[64] = "";
    sw_pii_kinds_str(d->pii_kinds, kinds, sizeof kinds);
    if (d->pii_kinds && d->pii_action == SW_PII_ACTION_REFUSE) {
        reject(d, SW_REASON_PII, 400, "invalid_request_error", "pii_detected");
        set(d, SW_ROUTE_REJECT, SW_REASON_PII,
            "the request contains personal data (%s) and this server's policy refuses such "
            "requests (pii action \"refuse\")", kinds);
        return SW_OK;
    }
    /* redact: personal data no longer pins the request; it is replaced by
     * placeholders if the request goes to the cloud */
    d->redact = d->pii_kinds && d->pii_action == SW_PII_ACTION_REDACT;
    bool pii = d->pii_kinds != 0 && !d->redact;

    /* 2-3. explicit cloud */
    if (pref == SW_PREF_CLOUD) {
        if (pii) {
            reject(d, SW_REASON_PII, 400, "invalid_request_error", "route_conflict");
            set(d, SW_ROUTE_REJECT, SW_REASON_PII,
                "the request asks for route \"cloud\" but contains personal data (%s); "
                "such requests are kept on this server", kinds);
        } else if (!cloud_ok) {
            reject(d, SW_REASON_CLOUD_UNAVAILABLE, 503, "service_unavailable", "cloud_unavailable");
            set(d, SW_ROUTE_REJECT, SW_REASON_CLOUD_UNAVAILABLE,
                "the request asks for route \"cloud\" but no cloud provider is available "
                "(not configured, no API key, or its circuit breaker is open)");
        } else {
            set(d, SW_ROUTE_CLOUD, SW_REASON_EXPLICIT_CLOUD, "the request asked for the cloud");
        }
        note_redaction(d, kinds);
        return SW_OK;
    }

    /* 4. overflow: cannot run locally at all */
    if (overflow) {
        sw_route_reason why = priv ? SW_REASON_PRIVATE
                              : forbidden ? SW_REASON_POLICY_LOCAL
                              : pref == SW_PREF_LOCAL ? SW_REASON_EXPLICIT_LOCAL
                              : pii ? SW_REASON_PII
                              : !cloud_ok ? SW_REASON_CLOUD_UNAVAILABLE
                                          : SW_REASON_OVERFLOW;
        if (why == SW_REASON_OVERFLOW) {
            set(d, SW_ROUTE_CLOUD, SW_REASON_OVERFLOW, "%s: sent to the cloud", sizes);
            note_redaction(d, kinds);
            return SW_OK;
        }
        reject(d, why, 400, "invalid_request_error", "context_length_exceeded");
        static const char *const because[] = {
            [SW_REASON_PRIVATE] = "the request is private",
            [SW_REASON_POLICY_LOCAL] = "this API key may only use the local model",
            [SW_REASON_EXPLICIT_LOCAL] = "the request asked for route \"local\"",
            [SW_REASON_PII] = "the request contains personal data",
            [SW_REASON_CLOUD_UNAVAILABLE] = "no cloud provider is available",
        };
        set(d, SW_ROUTE_REJECT, why, "%s, and it cannot be sent to the cloud: %s", sizes,
            because[why]);
        return SW_OK;
    }

    /* 5-6. pinned local */
    if (pref == SW_PREF_LOCAL) {
        set(d, SW_ROUTE_LOCAL, SW_REASON_EXPLICIT_LOCAL, "the request asked for the local model");
        return SW_OK;
    }
    if (priv) {
        set(d, SW_ROUTE_LOCAL, SW_REASON_PRIVATE, "private request: kept local");
        return SW_OK;
    }
    if (pii) {
        set(d, SW_ROUTE_LOCAL, SW_REASON_PII, "personal data (%s) found: kept local", kinds);
        return SW_OK;
    }
    if (forbidden) {
        set(d, SW_ROUTE_LOCAL, SW_REASON_POLICY_LOCAL, "this API key may only use the local model");
        return SW_OK;
    }

    /* 7. load triggers and the default route */
    sw_route_reason want = SW_REASON_DEFAULT;
    char why[160] = "";
    if (r->p.queue_threshold > 0 && q->queue_waiting >= r->p.queue_threshold) {
        want = SW_REASON_QUEUE_FULL;
        snprintf(why, sizeof why, "local queue %d >= threshold %d", q->queue_waiting,
                 r->p.queue_threshold);
    } else if (r->p.kv_pressure_threshold > 0 && q->kv_used_frac >= r->p.kv_pressure_threshold) {
        want = SW_REASON_KV_PRESSURE;
        snprintf(why, sizeof why, "local KV cache %.0f%% used >= threshold %.0f%%",
                 q->kv_used_frac * 100, r->p.kv_pressure_threshold * 100);
    } else if (r->p.default_route == SW_PREF_CLOUD) {
        want = SW_REASON_POLICY_CLOUD;
        snprintf(why, sizeof why, "the server's default route is cloud");
    } else if (q->tools && r->p.tools_route == SW_PREF_CLOUD) {
        want = SW_REASON_POLICY_CLOUD;
        snprintf(why, sizeof why, "the request offers tools and the policy sends tool use to the cloud");
    }
    /* With no cloud configured at all, load is not a routing question. */
    if (want != SW_REASON_DEFAULT && r->available) {
        if (cloud_ok) {
            set(d, SW_ROUTE_CLOUD, want, "%s: sent to the cloud", why);
            d->local_fallback = true;
            note_redaction(d, kinds);
        } else {
            set(d, SW_ROUTE_LOCAL, SW_REASON_CLOUD_UNAVAILABLE,
                "%s, but no cloud provider is available: kept local", why);
        }
        return SW_OK;
    }

    /* 8. default */
    set(d, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, "served by the local model");
    d->may_escalate = r->p.escalation && cloud_ok && r->p.default_route != SW_PREF_LOCAL;
    return SW_OK;
}

sw_status sw_route_parse_extension(const cJSON *body, sw_route_request *req, sw_err *err) {
    if (!req) return sw_err_set(err, SW_E_INVALID_ARG, "sw_route_parse_extension: req is NULL");
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(body, "spillway");
    if (!ext || cJSON_IsNull(ext)) return SW_OK;
    if (!cJSON_IsObject(ext))
        return sw_err_set(err, SW_E_INVALID_ARG, "spillway: expected an object");
    const cJSON *route = cJSON_GetObjectItemCaseSensitive(ext, "route");
    if (route && !cJSON_IsNull(route)) {
        if (!cJSON_IsString(route))
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "spillway.route: expected a string (\"auto\", \"local\" or \"cloud\")");
        const char *v = route->valuestring;
        if (!strcmp(v, "auto")) req->route = SW_PREF_AUTO;
        else if (!strcmp(v, "local")) req->route = SW_PREF_LOCAL;
        else if (!strcmp(v, "cloud")) req->route = SW_PREF_CLOUD;
        else
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "spillway.route: '%.40s' is not \"auto\", \"local\" or \"cloud\"", v);
    }
    const cJSON *priv = cJSON_GetObjectItemCaseSensitive(ext, "private");
    if (priv && !cJSON_IsNull(priv)) {
        if (!cJSON_IsBool(priv))
            return sw_err_set(err, SW_E_INVALID_ARG, "spillway.private: expected true or false");
        /* A header may already have made it private; the body cannot undo that. */
        req->private_request = req->private_request || cJSON_IsTrue(priv);
    }
    const cJSON *pii = cJSON_GetObjectItemCaseSensitive(ext, "pii");
    if (pii && !cJSON_IsNull(pii)) {
        sw_err e = {{0}};
        if (!cJSON_IsString(pii) || sw_pii_action_parse(pii->valuestring, &req->pii_action, &e) != SW_OK)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "spillway.pii: expected \"local\", \"redact\" or \"refuse\"");
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, ext) {
        if (!item->string || (strcmp(item->string, "route") && strcmp(item->string, "private") &&
                              strcmp(item->string, "pii")))
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "spillway.%.40s: unknown field (expected route, private, pii)",
                              item->string ? item->string : "?");
    }
    return SW_OK;
}

bool sw_route_header_private(const char *v) {
    if (!v) return false;
    while (*v == ' ' || *v == '\t') v++;
    static const char *const yes[] = {"1", "true", "yes", "on"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        size_t n = strlen(yes[i]);
        if (!strncasecmp(v, yes[i], n)) {
            const char *rest = v + n;
            while (*rest == ' ' || *rest == '\t') rest++;
            if (!*rest) return true;
        }
    }
    return false;
}

void sw_route_header_value(sw_route route, sw_route_reason reason, char *buf, size_t cap) {
    if (cap) snprintf(buf, cap, "%s; reason=%s", sw_route_str(route), sw_route_reason_str(reason));
}
