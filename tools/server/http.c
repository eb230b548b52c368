/* http.c — the libmicrohttpd layer: the daemon (one thread per connection,
 * so a handler may block on its generation), routing, bearer-key auth, body
 * accumulation with the size limit, response helpers and the per-request
 * bookkeeping (metrics, in-flight count, releasing a generation when its
 * connection ends for any reason).
 *
 * Request checks run in this order: route (404), method (405), API key (401),
 * server state (503), body size (413), content type (415); the handler then
 * validates the body itself. Error responses wait until the body has been
 * read (up to a hard cap): answering before it and closing makes the kernel
 * reset the connection, and the client would never see the error. */
#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "oai.h"

/* Bodies past this are refused at once without reading them; below it an
 * oversized body is drained so the 413 arrives intact. */
#define DRAIN_CAP ((uint64_t)64 << 20)

static struct MHD_Daemon *g_daemon;

/* ---- routing ----------------------------------------------------------------- */

typedef struct route {
    const char *path;
    srv_endpoint ep;
    const char *method;
    const char *name; /* metrics label */
    srv_wire wire;    /* the shape of its errors */
} route;

#define OAI SRV_WIRE_OAI_CHAT
#define ANTH SRV_WIRE_ANTHROPIC

static const route k_routes[] = {
    {"/v1/chat/completions", EP_CHAT, "POST", "/v1/chat/completions", OAI},
    {"/chat/completions", EP_CHAT, "POST", "/v1/chat/completions", OAI},
    {"/v1/completions", EP_CMPL, "POST", "/v1/completions", OAI},
    {"/completions", EP_CMPL, "POST", "/v1/completions", OAI},
    {"/v1/messages", EP_MESSAGES, "POST", "/v1/messages", ANTH},
    {"/messages", EP_MESSAGES, "POST", "/v1/messages", ANTH},
    {"/v1/messages/count_tokens", EP_COUNT_TOKENS, "POST", "/v1/messages/count_tokens", ANTH},
    {"/messages/count_tokens", EP_COUNT_TOKENS, "POST", "/v1/messages/count_tokens", ANTH},
    {"/v1/embeddings", EP_EMBEDDINGS, "POST", "/v1/embeddings", OAI},
    {"/embeddings", EP_EMBEDDINGS, "POST", "/v1/embeddings", OAI},
    {"/v1/models", EP_MODELS, "GET", "/v1/models", OAI},
    {"/models", EP_MODELS, "GET", "/v1/models", OAI},
    {"/health", EP_HEALTH, "GET", "/health", OAI},
    {"/v1/health", EP_HEALTH, "GET", "/health", OAI},
    {"/metrics", EP_METRICS, "GET", "/metrics", OAI},
    {"/tokenize", EP_TOKENIZE, "POST", "/tokenize", OAI},
    {"/apply-template", EP_APPLY_TEMPLATE, "POST", "/apply-template", OAI},
    {"/detokenize", EP_DETOKENIZE, "POST", "/detokenize", OAI},
    {"/v1/usage", EP_USAGE, "GET", "/v1/usage", OAI},
    {"/usage", EP_USAGE, "GET", "/v1/usage", OAI},
};

/* Match url (query string already removed by MHD) to a route; a single
 * trailing slash is tolerated. */
static const route *find_route(const char *url, char **arg) {
    *arg = NULL;
    size_t n = strlen(url);
    if (n > 1 && url[n - 1] == '/') n--;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (strlen(k_routes[i].path) == n && !strncmp(url, k_routes[i].path, n))
            return &k_routes[i];
    /* the web page: "/" is its index, "/web/NAME" its files */
    static const route web_route = {"/", EP_WEB, "GET", "/web", OAI};
    if (!strcmp(url, "/")) return &web_route;
    if (n > 5 && !strncmp(url, "/web/", 5) && !memchr(url + 5, '/', n - 5)) {
        *arg = strndup(url + 5, n - 5);
        return &web_route;
    }
    static const route model_route = {"/v1/models/", EP_MODEL, "GET", "/v1/models/{id}", OAI};
    const char *prefixes[] = {"/v1/models/", "/models/"};
    for (int i = 0; i < 2; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n > pl && !strncmp(url, prefixes[i], pl)) {
            *arg = strndup(url + pl, n - pl);
            return &model_route;
        }
    }
    return NULL;
}

/* ---- responses ------------------------------------------------------------------- */

/* "POST, OPTIONS": the methods of the connection's route. */
static const char *allowed_methods(const srv_conn *sc) {
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (k_routes[i].ep == sc->endpoint)
            return !strcmp(k_routes[i].method, "POST") ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
    return "GET, HEAD, OPTIONS"; /* /v1/models/{id} */
}

int srv_respond(srv_conn *sc, int status, char *body, const char *content_type) {
    if (!body) {
        status = 500;
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";
        body = strdup(oom);
        content_type = NULL;
    }
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!r) {
        free(body);
        return MHD_NO; /* MHD closes the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            content_type ? content_type : "application/json");
    if (status == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    srv_add_response_headers(sc, r);
    if (sc->retry_after_s >= 0) {
        /* The cloud provider's Retry-After, passed on (whole seconds, rounded up). */
        char ra[32];
        snprintf(ra, sizeof ra, "%ld", (long)ceil(SW_MIN(sc->retry_after_s, 86400.0)));
        MHD_add_response_header(r, "Retry-After", ra);
    } else if (status == 429 || status == 503) {
        MHD_add_response_header(r, "Retry-After", "1");
    }
    if (status == 405) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allowed_methods(sc));
    /* After an error mid-body or during shutdown the connection is not worth
     * keeping alive. */
    if (sc->too_large || atomic_load(&sc->s->state) == SRV_STOPPING)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(sc->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    sc->status = status;
    sc->responded = true;
    return ret;
}

/* CORS: may a page from origin o read our answers? The --cors-origin list
 * ("*": any), else the local machine's origins: http(s)://localhost,
 * 127.0.0.1 and [::1] on any port, as Ollama allows by default. */
static bool origin_allowed(const srv *s, const char *o, bool *any) {
    *any = false;
    if (s->cfg.n_cors_origins) {
        for (int i = 0; i < s->cfg.n_cors_origins; i++) {
            if (!strcmp(s->cfg.cors_origins[i], "*")) {
                *any = true;
                return true;
            }
            if (!strcasecmp(s->cfg.cors_origins[i], o)) return true;
        }
        return false;
    }
    const char *h = !strncasecmp(o, "http://", 7) ? o + 7 : !strncasecmp(o, "https://", 8) ? o + 8 : NULL;
    if (!h) return false;
    static const char *const local[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        size_t n = strlen(local[i]);
        if (strncasecmp(h, local[i], n) != 0) continue;
        const char *p = h + n;
        if (!*p) return true;
        if (*p != ':' || !p[1]) return false;
        for (p++; *p; p++)
            if (*p < '0' || *p > '9') return false;
        return true;
    }
    return false;
}

/* The allowed origin of this request to put in Access-Control-Allow-Origin,
 * or NULL (no Origin header, or one not allowed). */
static const char *cors_origin(srv_conn *sc) {
    const char *o = MHD_lookup_connection_value(sc->conn, MHD_HEADER_KIND, "Origin");
    bool any;
    if (!o || !origin_allowed(sc->s, o, &any)) return NULL;
    return any ? "*" : o;
}

void srv_add_response_headers(srv_conn *sc, struct MHD_Response *r) {
    if (sc->route_hdr[0]) MHD_add_response_header(r, "X-Spillway-Route", sc->route_hdr);
    const char *origin = cors_origin(sc);
    if (origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Access-Control-Expose-Headers",
                                "X-Spillway-Route, Retry-After, WWW-Authenticate");
    }
    MHD_add_response_header(r, "Vary", "Origin");
}

int srv_respond_error(srv_conn *sc, const srv_error *e) {
    return srv_respond(sc, e->status, srv_writer_for(sc->wire)->error_json(e), NULL);
}

const char *srv_query(srv_conn *sc, const char *name) {
    return MHD_lookup_connection_value(sc->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool srv_conn_hung_up(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* ---- checks ------------------------------------------------------------------------ */

/* The client's key: 'Authorization: Bearer KEY', or Anthropic's
 * 'x-api-key: KEY' (either on every endpoint). NULL when none. */
static const char *client_key(struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ') h++;
        if (*h) return h;
    }
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    return h && *h ? h : NULL;
}

/* Constant-time comparison, so response timing does not leak a key prefix. */
static bool key_eq(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++) d |= (unsigned char)(a[i] ^ b[nb ? i % nb : 0]);
    return d == 0;
}

static bool authorized(srv *s, struct MHD_Connection *c) {
    if (s->cfg.n_api_keys == 0) return true;
    const char *h = client_key(c);
    if (!h) return false;
    bool ok = false;
    for (int i = 0; i < s->cfg.n_api_keys; i++) ok |= key_eq(h, s->cfg.api_keys[i]);
    return ok;
}

bool srv_conn_hints(srv_conn *sc, srv_route_hints *h) {
    h->private_header = sw_route_header_private(
        MHD_lookup_connection_value(sc->conn, MHD_HEADER_KIND, "X-Spillway-Private"));
    free(h->api_key);
    h->api_key = NULL;
    const char *k = client_key(sc->conn);
    return !k || (h->api_key = strdup(k)) != NULL;
}

/* JSON endpoints take application/json; also text/plain and curl's default
 * form type, since clients that send JSON under those are common and the
 * body is parsed as JSON either way. Anything else is a client mistake
 * worth naming. */
static bool content_type_ok(struct MHD_Connection *c, char *bad, size_t cap) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || !*ct) return true;
    static const char *const ok[] = {"application/json", "text/plain",
                                     "application/x-www-form-urlencoded"};
    while (*ct == ' ') ct++;
    size_t n = strcspn(ct, "; ");
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && !strncasecmp(ct, ok[i], n)) return true;
    if (n > 5 && !strncasecmp(ct + n - 5, "+json", 5)) return true;
    snprintf(bad, cap, "%.*s", (int)SW_MIN(n, (size_t)80), ct);
    return false;
}

/* The first problem with this request that makes it an error before its
 * body is looked at; false when there is none. */
static bool early_error(srv_conn *sc, const char *url, const char *method, srv_error *e) {
    srv *s = sc->s;
    if (sc->endpoint == EP_UNKNOWN) {
        srv_error_set(e, 404, "invalid_request_error", "not_found", NULL,
                      "unknown endpoint: %s %.200s", method, url);
        return true;
    }
    const route *rt = NULL;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (k_routes[i].ep == sc->endpoint) rt = &k_routes[i];
    const char *want = rt ? rt->method : "GET";
    bool head_ok = !strcmp(want, "GET") && !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (strcmp(method, want) != 0 && !head_ok) {
        srv_error_set(e, 405, "invalid_request_error", "method_not_allowed", NULL,
                      "method %.20s is not allowed on %.200s; use %s", method, url, want);
        return true;
    }
    /* the page itself holds nothing secret: it asks for the key */
    if (sc->endpoint != EP_HEALTH && sc->endpoint != EP_WEB && !authorized(s, sc->conn)) {
        srv_error_set(e, 401, "invalid_request_error", "invalid_api_key", NULL,
                      "missing or incorrect API key: send 'Authorization: Bearer <key>' or "
                      "'x-api-key: <key>'");
        return true;
    }
    int st = atomic_load(&s->state);
    if (sc->endpoint != EP_HEALTH && sc->endpoint != EP_METRICS && sc->endpoint != EP_USAGE &&
        sc->endpoint != EP_WEB && st != SRV_READY) {
        if (st == SRV_LOADING)
            srv_error_set(e, 503, "server_error", "model_loading", NULL,
                          "the model is still loading; retry shortly");
        else if (st == SRV_STOPPING)
            srv_error_set(e, 503, "server_error", "shutting_down", NULL,
                          "the server is shutting down");
        else
            srv_error_set(e, 503, "server_error", "model_load_failed", NULL,
                          "the model failed to load; see the server log");
        return true;
    }
    if (!strcmp(method, "POST")) {
        char bad[96];
        if (!content_type_ok(sc->conn, bad, sizeof bad)) {
            srv_error_set(e, 415, "invalid_request_error", "unsupported_media_type", NULL,
                          "Content-Type '%s' is not supported; send application/json", bad);
            return true;
        }
    }
    return false;
}

/* ---- the handler -------------------------------------------------------------------- */

/* OPTIONS, a browser's CORS preflight: from an allowed origin, the methods
 * and the headers it asked for; from another one, 403. No key needed (a
 * browser sends none with a preflight). */
static int handle_preflight(srv_conn *sc) {
    const char *o = MHD_lookup_connection_value(sc->conn, MHD_HEADER_KIND, "Origin");
    if (o && !cors_origin(sc)) {
        srv_error e;
        srv_error_set(&e, 403, "invalid_request_error", "origin_not_allowed", NULL,
                      "origin '%.200s' may not call this server; start it with --cors-origin "
                      "ORIGIN (or '*')",
                      o);
        return srv_respond_error(sc, &e);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    srv_add_response_headers(sc, r);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allowed_methods(sc));
    if (o) {
        const char *want = MHD_lookup_connection_value(sc->conn, MHD_HEADER_KIND,
                                                       "Access-Control-Request-Headers");
        MHD_add_response_header(r, "Access-Control-Allow-Methods", allowed_methods(sc));
        MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                want && *want ? want
                                              : "Authorization, Content-Type, x-api-key, "
                                                "anthropic-version, anthropic-beta, "
                                                "X-Spillway-Private");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(sc->conn, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    sc->status = 204;
    sc->responded = true;
    return ret;
}

static int handle_health(srv_conn *sc) {
    int st = atomic_load(&sc->s->state);
    if (st == SRV_READY) return srv_respond(sc, 200, strdup("{\"status\":\"ok\"}"), NULL);
    srv_error e;
    const char *what = st == SRV_LOADING   ? "loading model"
                       : st == SRV_FAILED ? "model failed to load"
                                          : "shutting down";
    srv_error_set(&e, 503, "server_error", st == SRV_LOADING ? "model_loading" : "unavailable",
                  NULL, "%s", what);
    char *err = oai_error_json(&e);
    /* {"status": "loading model", "error": {...}}: a status field like the
     * 200 answer, plus the usual error object. */
    sbuf b = {0};
    sbuf_puts(&b, "{\"status\":");
    oai_json_str(&b, what, strlen(what));
    if (err) {
        sbuf_puts(&b, ",");
        sbuf_add(&b, err + 1, strlen(err) - 1);
    } else {
        sbuf_puts(&b, "}");
    }
    free(err);
    return srv_respond(sc, 503, sbuf_take(&b), NULL);
}

static int dispatch(srv_conn *sc) {
    switch (sc->endpoint) {
    case EP_CHAT: return srv_handle_generate(sc, SRV_WIRE_OAI_CHAT);
    case EP_CMPL: return srv_handle_generate(sc, SRV_WIRE_OAI_COMPLETIONS);
    case EP_MESSAGES: return srv_handle_generate(sc, SRV_WIRE_ANTHROPIC);
    case EP_COUNT_TOKENS: return srv_handle_count_tokens(sc);
    case EP_EMBEDDINGS: return srv_handle_embeddings(sc);
    case EP_MODELS:
    case EP_MODEL: return srv_handle_models(sc);
    case EP_HEALTH: return handle_health(sc);
    case EP_METRICS: return srv_handle_metrics(sc);
    case EP_TOKENIZE: return srv_handle_tokenize(sc);
    case EP_APPLY_TEMPLATE: return srv_handle_apply_template(sc);
    case EP_DETOKENIZE: return srv_handle_detokenize(sc);
    case EP_USAGE: return srv_handle_usage(sc);
    case EP_WEB: return srv_handle_web(sc);
    default: break;
    }
    srv_error e;
    srv_error_set(&e, 500, "server_error", NULL, NULL, "no handler for this route");
    return srv_respond_error(sc, &e);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    srv *s = cls;
    srv_conn *sc = *con_cls;
    if (!sc) {
        sc = calloc(1, sizeof *sc);
        if (!sc) return MHD_NO;
        sc->s = s;
        sc->conn = conn;
        sc->t_start = sw_time_s();
        sc->retry_after_s = -1;
        const route *rt = find_route(url, &sc->url_arg);
        sc->endpoint = rt ? rt->ep : EP_UNKNOWN;
        sc->name = rt ? rt->name : "other";
        sc->wire = rt ? rt->wire : SRV_WIRE_OAI_CHAT;
        *con_cls = sc;
        atomic_fetch_add(&s->active, 1);
        /* A declared length past the drain cap is refused without reading. */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            unsigned long long v = strtoull(cl, NULL, 10);
            if (v > s->cfg.max_body) sc->too_large = true;
            if (v > DRAIN_CAP) {
                srv_error e;
                srv_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                              "request body of %llu bytes exceeds the limit of %zu bytes", v,
                              s->cfg.max_body);
                return (enum MHD_Result)srv_respond_error(sc, &e);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (sc->responded || sc->too_large) return MHD_YES; /* drain */
        if (sc->body_len + n > s->cfg.max_body) {
            sc->too_large = true;
            free(sc->body);
            sc->body = NULL;
            sc->body_len = sc->body_cap = 0;
            return MHD_YES;
        }
        if (sc->body_len + n + 1 > sc->body_cap) {
            size_t cap = sc->body_cap ? sc->body_cap : 4096;
            while (cap < sc->body_len + n + 1) cap *= 2;
            char *p = realloc(sc->body, cap);
            if (!p) return MHD_NO;
            sc->body = p;
            sc->body_cap = cap;
        }
        memcpy(sc->body + sc->body_len, upload_data, n);
        sc->body_len += n;
        sc->body[sc->body_len] = '\0';
        return MHD_YES;
    }
    if (sc->responded) return MHD_YES;
    if (!strcmp(method, MHD_HTTP_METHOD_OPTIONS) && sc->endpoint != EP_UNKNOWN)
        return (enum MHD_Result)handle_preflight(sc);
    srv_error e;
    if (early_error(sc, url, method, &e)) return (enum MHD_Result)srv_respond_error(sc, &e);
    if (sc->too_large) {
        srv_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                      "request body exceeds the limit of %zu bytes (--max-body)",
                      s->cfg.max_body);
        return (enum MHD_Result)srv_respond_error(sc, &e);
    }
    return (enum MHD_Result)dispatch(sc);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    srv *s = cls;
    srv_conn *sc = *con_cls;
    if (!sc) return;
    *con_cls = NULL;
    if (sc->gen) srv_gen_release(sc->gen);
    /* 499 (nginx's "client closed request") when the client left before the
     * response was complete. */
    int status = sc->status ? sc->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK &&
        toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN && status < 400)
        status = 499;
    srv_metrics_request(&s->metrics, sc->name, status);
    free(sc->body);
    free(sc->url_arg);
    free(sc);
    atomic_fetch_sub(&s->active, 1);
}

/* Token chunks are small and latency matters more than packet count. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return;
    int one = 1;
    setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    sw_log(SW_LOG_DEBUG, "http: %s", msg);
}

/* ---- daemon ---------------------------------------------------------------------------- */

sw_status srv_http_start(srv *s, int *port_out, sw_err *err) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int rc = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (rc != 0 || !ai)
        return sw_err_set(err, SW_E_INVALID_ARG, "--host %s: %s", s->cfg.host, gai_strerror(rc));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned timeout = s->cfg.timeout_s > 0 ? (unsigned)(s->cfg.timeout_s + 0.5) : 0;
    g_daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, &on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, &on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        &on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!g_daemon)
        return sw_err_set(err, SW_E_IO,
                          "cannot listen on %s:%d (address in use, or not an address of this "
                          "machine?)",
                          s->cfg.host, s->cfg.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_daemon, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = di ? (int)di->port : s->cfg.port;
    return SW_OK;
}

void srv_http_quiesce(void) {
    if (!g_daemon) return;
    MHD_socket fd = MHD_quiesce_daemon(g_daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(void) {
    if (!g_daemon) return;
    MHD_stop_daemon(g_daemon);
    g_daemon = NULL;
}
