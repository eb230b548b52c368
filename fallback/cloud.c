/* cloud.c — libcurl client for the cloud providers: one attempt per curl
 * easy handle, wrapped in the retry loop and the circuit breaker (cloud.h). */
#include "cloud.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct sw_cloud {
    sw_cloud_params p;
    char *base_url, *model, *key_env, *version; /* owned copies of the params' strings */
    char *endpoint;
    char *key;        /* NULL when the variable is unset; wiped on free */
    sw_breaker *breaker;
    sw_cloud_hooks hooks;
    pthread_mutex_t rng_mu;
    uint64_t rng;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init = CURLE_OK;
static void curl_init_once(void) { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); }

void sw_cloud_params_default(sw_cloud_params *p) {
    memset(p, 0, sizeof *p);
    p->provider = SW_PROVIDER_ANTHROPIC;
}

static char *dup_or(const char *s, const char *def) {
    const char *v = s && s[0] ? s : def;
    return v ? strdup(v) : NULL;
}

sw_status sw_cloud_create(const sw_cloud_params *p, const sw_cloud_hooks *hooks, sw_cloud **out,
                          sw_err *err) {
    if (!out || !p) return sw_err_set(err, SW_E_INVALID_ARG, "sw_cloud_create: NULL argument");
    *out = NULL;
    if (!p->model || !p->model[0])
        return sw_err_set(err, SW_E_INVALID_ARG, "cloud.model: required (the provider's model name)");
    if (p->provider != SW_PROVIDER_ANTHROPIC && p->provider != SW_PROVIDER_OPENAI)
        return sw_err_set(err, SW_E_INVALID_ARG, "cloud.provider: unknown value %d", (int)p->provider);
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init != CURLE_OK)
        return sw_err_set(err, SW_E_INTERNAL, "curl_global_init: %s", curl_easy_strerror(g_curl_init));
    sw_cloud *c = calloc(1, sizeof *c);
    if (!c) return sw_err_set(err, SW_E_NOMEM, "sw_cloud_create: out of memory");
    pthread_mutex_init(&c->rng_mu, NULL);
    c->p = *p;
    bool anth = p->provider == SW_PROVIDER_ANTHROPIC;
    c->base_url = dup_or(p->base_url, anth ? "https://api.anthropic.com" : "https://api.openai.com/v1");
    c->model = strdup(p->model);
    c->key_env = dup_or(p->key_env, anth ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY");
    c->version = dup_or(p->anthropic_version, "2023-06-01");
    if (!c->base_url || !c->model || !c->key_env || !c->version) goto oom;
    if (strncmp(c->base_url, "http://", 7) && strncmp(c->base_url, "https://", 8)) {
        sw_status st = sw_err_set(err, SW_E_INVALID_ARG,
                                  "cloud.url: '%.200s' must start with http:// or https://", c->base_url);
        sw_cloud_free(c);
        return st;
    }
    size_t bl = strlen(c->base_url);
    while (bl > 0 && c->base_url[bl - 1] == '/') c->base_url[--bl] = '\0';
    const char *path = anth ? "/v1/messages" : "/chat/completions";
    c->endpoint = malloc(bl + strlen(path) + 1);
    if (!c->endpoint) goto oom;
    memcpy(c->endpoint, c->base_url, bl);
    strcpy(c->endpoint + bl, path);
    const char *k = getenv(c->key_env);
    if (k && k[0] && !(c->key = strdup(k))) goto oom;
    if (hooks) c->hooks = *hooks;
    c->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9E3779B97F4A7C15ULL;
    sw_status st = sw_breaker_create(p->breaker_failures, p->breaker_cooldown_s, c->hooks.clock,
                                     c->hooks.user, &c->breaker, err);
    if (st != SW_OK) {
        sw_cloud_free(c);
        return st;
    }
    *out = c;
    return SW_OK;
oom:
    sw_cloud_free(c);
    return sw_err_set(err, SW_E_NOMEM, "sw_cloud_create: out of memory");
}

void sw_cloud_free(sw_cloud *c) {
    if (!c) return;
    if (c->key) {
        explicit_bzero(c->key, strlen(c->key));
        free(c->key);
    }
    free(c->base_url);
    free(c->model);
    free(c->key_env);
    free(c->version);
    free(c->endpoint);
    sw_breaker_free(c->breaker);
    pthread_mutex_destroy(&c->rng_mu);
    free(c);
}

bool sw_cloud_available(void *cloud) {
    sw_cloud *c = cloud;
    return c && c->key && sw_breaker_would_allow(c->breaker);
}
const char *sw_cloud_model(const sw_cloud *c) { return c ? c->model : ""; }
sw_provider sw_cloud_provider(const sw_cloud *c) { return c ? c->p.provider : SW_PROVIDER_ANTHROPIC; }
sw_breaker *sw_cloud_breaker(sw_cloud *c) { return c ? c->breaker : NULL; }

void sw_cloud_result_clear(sw_cloud_result *r) {
    if (!r) return;
    cJSON_Delete(r->response);
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
    r->error_type = "";
}

static double now_s(sw_cloud *c) { return c->hooks.clock ? c->hooks.clock(c->hooks.user) : sw_time_s(); }

static void sleep_s(sw_cloud *c, double s) {
    if (s <= 0) return;
    if (c->hooks.sleep) {
        c->hooks.sleep(c->hooks.user, s);
        return;
    }
    sw_sleep_s(s);
}

static double jitter(sw_cloud *c) {
    if (c->hooks.jitter) return c->hooks.jitter(c->hooks.user);
    pthread_mutex_lock(&c->rng_mu);
    c->rng ^= c->rng << 13; /* xorshift64: enough to de-synchronize retries */
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    uint64_t v = c->rng;
    pthread_mutex_unlock(&c->rng_mu);
    return (double)(v >> 11) * 0x1.0p-53;
}

/* Mask every run of >= 8 characters of the key that appears in msg, so a
 * provider quoting (part of) the key back never puts it in our logs. */
static void redact(char *msg, const char *key) {
    if (!key || !key[0]) return;
    size_t n = strlen(msg), kl = strlen(key);
    for (size_t i = 0; i < n; i++) {
        size_t best = 0;
        for (size_t j = 0; j < kl; j++) {
            size_t l = 0;
            while (i + l < n && j + l < kl && msg[i + l] == key[j + l]) l++;
            if (l > best) best = l;
        }
        if (best >= 8 || (best == kl && kl > 0)) {
            memset(msg + i, '*', best);
            i += best - 1;
        }
    }
}

/* ---- one attempt -------------------------------------------------------------------- */

typedef struct attempt {
    sw_cloud *c;
    bool stream;
    long http;             /* from the status line, as soon as headers arrive */
    char *body;            /* non-stream body, or an error body (capped) */
    size_t body_len, body_cap, body_max;
    bool body_truncated;
    sw_sse_parser *sse;
    sw_wire_stream *ws;
    sw_status cb_status;   /* failure raised inside a curl callback */
    sw_err cb_err;
    double retry_after;
    char request_id[128];
    double t_start;
    double *ttft;
    uint64_t content_chunks;
} attempt;

static bool is_2xx(long h) { return h >= 200 && h < 300; }

static size_t on_header(char *buf, size_t size, size_t n, void *user) {
    attempt *a = user;
    size_t len = size * n;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A new response (e.g. after 100 Continue): forget the previous headers. */
        a->retry_after = -1;
        a->request_id[0] = '\0';
        const char *sp = memchr(buf, ' ', len);
        a->http = sp ? strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
    char val[160];
    snprintf(val, sizeof val, "%.*s", (int)SW_MIN(vl, sizeof val - 1), v);
    if (nl == 11 && !strncasecmp(buf, "retry-after", 11)) {
        double ra = sw_retry_after_parse(val, time(NULL));
        if (ra >= 0) a->retry_after = ra;
    } else if (nl == 14 && !strncasecmp(buf, "retry-after-ms", 14)) {
        double ms = strtod(val, NULL);
        if (ms > 0) a->retry_after = ms / 1000.0;
    } else if ((nl == 10 && !strncasecmp(buf, "request-id", 10)) ||
               (nl == 12 && !strncasecmp(buf, "x-request-id", 12))) {
        snprintf(a->request_id, sizeof a->request_id, "%.127s", val);
    }
    return len;
}

static bool body_append(attempt *a, const char *p, size_t n) {
    if (a->body_len + n > a->body_max) {
        a->body_truncated = true;
        n = a->body_max > a->body_len ? a->body_max - a->body_len : 0;
    }
    if (a->body_len + n + 1 > a->body_cap) {
        size_t cap = a->body_cap ? a->body_cap : 4096;
        while (cap < a->body_len + n + 1) cap *= 2;
        char *nb = realloc(a->body, cap);
        if (!nb) return false;
        a->body = nb;
        a->body_cap = cap;
    }
    memcpy(a->body + a->body_len, p, n);
    a->body_len += n;
    a->body[a->body_len] = '\0';
    return true;
}

static size_t on_body(char *buf, size_t size, size_t n, void *user) {
    attempt *a = user;
    size_t len = size * n;
    if (a->stream && is_2xx(a->http)) {
        uint64_t before = a->ws->chunks;
        sw_status st = sw_sse_feed(a->sse, buf, len, sw_wire_stream_event, a->ws, &a->cb_err);
        if (a->ws->chunks > before && *a->ttft == 0) *a->ttft = sw_time_s() - a->t_start;
        if (st != SW_OK) {
            a->cb_status = st;
            return 0; /* makes curl stop with CURLE_WRITE_ERROR */
        }
        return len;
    }
    if (a->body_truncated && !is_2xx(a->http)) return len; /* error bodies: keep the start */
    if (!body_append(a, buf, len)) {
        a->cb_status = sw_err_set(&a->cb_err, SW_E_NOMEM, "out of memory buffering the answer");
        return 0;
    }
    if (a->body_truncated && is_2xx(a->http)) {
        a->cb_status = sw_err_set(&a->cb_err, SW_E_FORMAT, "answer larger than %zu bytes", a->body_max);
        return 0;
    }
    return len;
}

/* The provider's error message from an error body, if it has the usual shape. */
static void error_message(const char *body, char *out, size_t cap) {
    out[0] = '\0';
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
    if (cJSON_IsString(m))
        snprintf(out, cap, "%.40s%s%.200s", cJSON_IsString(t) ? t->valuestring : "",
                 cJSON_IsString(t) ? ": " : "", m->valuestring);
    else if (body)
        snprintf(out, cap, "%.120s", body);
    cJSON_Delete(j);
}

typedef struct outcome {
    sw_status st;
    bool retryable;      /* a retry may succeed */
    bool provider_fault; /* counts against the breaker */
} outcome;

static outcome run_attempt(sw_cloud *c, const char *body, sw_wire_stream *ws, sw_cloud_result *res,
                           sw_err *err) {
    outcome o = {SW_OK, false, false};
    attempt a;
    memset(&a, 0, sizeof a);
    a.c = c;
    a.stream = ws->fn != NULL;
    a.ws = ws;
    a.retry_after = -1;
    a.body_max = c->p.max_response_bytes ? c->p.max_response_bytes : (size_t)16 << 20;
    a.t_start = sw_time_s();
    a.ttft = &res->ttft_s;
    if (a.stream && (o.st = sw_sse_create(0, &a.sse, err)) != SW_OK) return o;

    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char auth[64 + 4096];
    bool anth = c->p.provider == SW_PROVIDER_ANTHROPIC;
    if (!h) {
        o.st = sw_err_set(err, SW_E_NOMEM, "curl_easy_init failed");
        goto done;
    }
    if (strlen(c->key) > 4000) {
        o.st = sw_err_set(err, SW_E_INVALID_ARG, "%s: the key is implausibly long", c->key_env);
        goto done;
    }
    hdr = curl_slist_append(hdr, "content-type: application/json");
    hdr = curl_slist_append(hdr, a.stream ? "accept: text/event-stream" : "accept: application/json");
    if (anth) {
        char ver[96];
        snprintf(ver, sizeof ver, "anthropic-version: %.60s", c->version);
        hdr = curl_slist_append(hdr, ver);
        snprintf(auth, sizeof auth, "x-api-key: %s", c->key);
    } else {
        snprintf(auth, sizeof auth, "authorization: Bearer %s", c->key);
    }
    hdr = curl_slist_append(hdr, auth);
    explicit_bzero(auth, sizeof auth); /* the slist has its own copy */
    hdr = curl_slist_append(hdr, "expect:"); /* no 100-continue round trip */
    if (!hdr) {
        o.st = sw_err_set(err, SW_E_NOMEM, "out of memory building headers");
        goto done;
    }
    double connect_s = c->p.connect_timeout_s > 0 ? c->p.connect_timeout_s : 10;
    double total_s = c->p.timeout_s > 0 ? c->p.timeout_s : 600;
    double idle_s = c->p.idle_timeout_s > 0 ? c->p.idle_timeout_s : 60;
    curl_easy_setopt(h, CURLOPT_URL, c->endpoint);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM-based DNS timeouts */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_s * 1000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(total_s * 1000));
    /* Idle: abort when under 1 byte/s for idle_s (whole seconds, curl's unit). */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(idle_s < 1 ? 1 : idle_s + 0.5));
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the provider offers it */
    char curl_msg[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);

    double t0 = sw_time_s();
    CURLcode cc = curl_easy_perform(h);
    double took = sw_time_s() - t0;
    long http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    res->http_status = http;
    res->retry_after_s = a.retry_after;
    if (a.request_id[0]) snprintf(res->provider_request_id, sizeof res->provider_request_id, "%s", a.request_id);
    const char *prov = sw_provider_str(c->p.provider);

    if (a.cb_status != SW_OK) {
        /* Failure inside the stream: the callback's (cancel) or the parser's. */
        o.st = a.cb_status;
        *err = a.cb_err;
        if (o.st == SW_E_BACKEND) {          /* provider error event mid-stream */
            o.retryable = ws->error_retryable;
            o.provider_fault = ws->error_retryable;
        } else if (o.st == SW_E_FORMAT) {
            o.provider_fault = true;
            sw_err_wrap(err, o.st, "%s", prov);
        }
        goto done;
    }
    if (cc != CURLE_OK) {
        bool timeout = cc == CURLE_OPERATION_TIMEDOUT;
        o.st = SW_E_IO;
        o.provider_fault = true;
        /* Transient transport failures are retried; a timeout already spent
         * the time a retry would need. */
        o.retryable = cc == CURLE_COULDNT_CONNECT || cc == CURLE_RECV_ERROR ||
                      cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
                      cc == CURLE_PARTIAL_FILE || cc == CURLE_HTTP2_STREAM;
        if (timeout)
            sw_err_set(err, SW_E_IO, "%s %s: timed out after %.1f s (%s)", prov, c->endpoint, took,
                       http ? "answer stalled" : "no answer");
        else
            sw_err_set(err, SW_E_IO, "%s %s: %s%s%s", prov, c->endpoint, curl_easy_strerror(cc),
                       curl_msg[0] ? ": " : "", curl_msg);
        res->error_type = timeout ? "timeout" : "upstream_error";
        res->client_status = timeout ? 504 : 502;
        goto done;
    }
    if (!is_2xx(http)) {
        char msg[300];
        error_message(a.body, msg, sizeof msg);
        o.retryable = sw_retry_status_retryable(http);
        o.provider_fault = o.retryable;
        if (http == 429) {
            o.st = sw_err_set(err, SW_E_BUSY, "%s: rate limited (HTTP 429): %s", prov, msg);
            res->error_type = "rate_limited";
            res->client_status = 503;
        } else if (http == 529 || http == 503) {
            o.st = sw_err_set(err, SW_E_BUSY, "%s: overloaded (HTTP %ld): %s", prov, http, msg);
            res->error_type = "cloud_unavailable";
            res->client_status = 503;
        } else {
            o.st = sw_err_set(err, SW_E_BACKEND, "%s: HTTP %ld: %s", prov, http, msg);
            res->error_type = "upstream_error";
            res->client_status = 502;
        }
        goto done;
    }
    if (a.stream) {
        sw_status st = sw_sse_finish(a.sse, err);
        if (st == SW_OK) st = sw_wire_stream_end(ws, err);
        if (st != SW_OK) {
            o.st = sw_err_wrap(err, st, "%s", prov);
            o.provider_fault = true;
            /* a stream cut short before any content may be retried */
            o.retryable = true;
        }
        goto done;
    }
    cJSON *j = a.body ? cJSON_ParseWithLength(a.body, a.body_len) : NULL;
    if (!j) {
        o.st = sw_err_set(err, SW_E_FORMAT, "%s: answer is not JSON: '%.80s'", prov,
                          a.body ? a.body : "");
        o.provider_fault = true;
        goto done;
    }
    res->response = anth ? sw_wire_anthropic_response(j, err) : sw_wire_openai_response(j, err);
    cJSON_Delete(j);
    if (!res->response) {
        o.st = sw_err_wrap(err, SW_E_FORMAT, "%s", prov);
        o.provider_fault = true;
    }
done:
    if (o.st != SW_OK && !res->client_status) {
        res->client_status = o.st == SW_E_INVALID_ARG || o.st == SW_E_UNSUPPORTED ? 400 : 502;
        res->error_type = res->client_status == 400 ? "invalid_request_error" : "upstream_error";
    }
    curl_slist_free_all(hdr); /* curl does not wipe it; it lives only for this call */
    if (h) curl_easy_cleanup(h);
    sw_sse_free(a.sse);
    free(a.body);
    return o;
}

/* Fill usage/finish/model from a non-streaming answer. */
static void result_from_response(sw_cloud_result *res) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(res->response, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    res->prompt_tokens = cJSON_IsNumber(pt) ? (int32_t)pt->valuedouble : 0;
    res->completion_tokens = cJSON_IsNumber(ct) ? (int32_t)ct->valuedouble : 0;
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res->response, "choices"), 0);
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(fr)) snprintf(res->finish_reason, sizeof res->finish_reason, "%s", fr->valuestring);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(res->response, "model");
    if (cJSON_IsString(m)) snprintf(res->model, sizeof res->model, "%s", m->valuestring);
}

/* One call with retries. native: req is a Messages body for an Anthropic
 * provider (passed through); else an OpenAI chat body mapped to the provider. */
static sw_status cloud_run(sw_cloud *c, const cJSON *req, bool native, sw_cloud_chunk_fn on_chunk,
                           void *user, sw_cloud_result *res, sw_err *err) {
    if (!res) return sw_err_set(err, SW_E_INVALID_ARG, "sw_cloud_chat: res is NULL");
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    res->error_type = "";
    if (!c || !req) {
        res->client_status = 500;
        res->error_type = "internal_error";
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_cloud_chat: NULL argument");
    }
    sw_err local_err = {{0}};
    if (!err) err = &local_err;
    const char *prov = sw_provider_str(c->p.provider);
    double t0 = now_s(c);
    double wall0 = sw_time_s();
    if (!c->key) {
        res->client_status = 503;
        res->error_type = "cloud_unavailable";
        return sw_err_set(err, SW_E_NOT_FOUND, "%s: environment variable %s is not set", prov, c->key_env);
    }
    bool stream = on_chunk != NULL;
    if (native && c->p.provider != SW_PROVIDER_ANTHROPIC) {
        res->client_status = 500;
        res->error_type = "internal_error";
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: a Messages body needs an anthropic provider", prov);
    }
    cJSON *body = native ? sw_wire_anthropic_native(req, c->model, stream, err)
                  : c->p.provider == SW_PROVIDER_ANTHROPIC
                      ? sw_wire_anthropic_request(req, c->model, c->p.default_max_tokens, stream, err)
                      : sw_wire_openai_request(req, c->model, stream, !c->p.no_stream_usage, err);
    if (!body) {
        res->client_status = 400;
        res->error_type = "invalid_request_error";
        return sw_err_wrap(err, SW_E_INVALID_ARG, "%s request", prov);
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        res->client_status = 500;
        res->error_type = "internal_error";
        return sw_err_set(err, SW_E_NOMEM, "%s request: out of memory", prov);
    }

    sw_status st = SW_OK;
    sw_wire_stream ws;
    for (int attempt_no = 1;; attempt_no++) {
        if (!sw_breaker_allow(c->breaker)) {
            if (attempt_no == 1) {
                res->client_status = 503;
                res->error_type = "cloud_unavailable";
                st = sw_err_set(err, SW_E_BUSY, "%s: circuit breaker open after repeated failures", prov);
            }
            break; /* later attempts keep the previous failure's message */
        }
        sw_wire_stream_init(&ws, c->p.provider, on_chunk, user);
        res->attempts = attempt_no;
        res->client_status = 0;
        res->error_type = "";
        outcome o = run_attempt(c, text, &ws, res, err);
        st = o.st;
        if (o.provider_fault) sw_breaker_failure(c->breaker);
        else sw_breaker_success(c->breaker); /* answered, even if with a 4xx or cancelled */
        res->streamed = res->streamed || ws.chunks > 0;
        if (st == SW_OK || !o.retryable || res->streamed) break;
        double delay;
        if (!sw_retry_next(&c->p.retry, attempt_no, now_s(c) - t0, res->retry_after_s, jitter(c), &delay))
            break;
        sw_log(SW_LOG_INFO, "%s: attempt %d failed (%s, HTTP %ld), retrying in %.2f s", prov,
               attempt_no, sw_status_str(st), res->http_status, delay);
        sleep_s(c, delay);
    }
    free(text);
    if (st == SW_OK) {
        if (stream) {
            res->prompt_tokens = ws.prompt_tokens;
            res->completion_tokens = ws.completion_tokens;
            snprintf(res->finish_reason, sizeof res->finish_reason, "%s", ws.finish_reason);
            snprintf(res->model, sizeof res->model, "%s", ws.model);
        } else {
            result_from_response(res);
        }
    } else if (st == SW_E_CANCELLED) {
        res->error_type = "cancelled";
    }
    res->latency_s = sw_time_s() - wall0;
    redact(err->msg, c->key);
    return st;
}

sw_status sw_cloud_chat(sw_cloud *c, const cJSON *req, sw_cloud_chunk_fn on_chunk, void *user,
                        sw_cloud_result *res, sw_err *err) {
    return cloud_run(c, req, false, on_chunk, user, res, err);
}

sw_status sw_cloud_messages(sw_cloud *c, const cJSON *req, sw_cloud_chunk_fn on_chunk, void *user,
                            sw_cloud_result *res, sw_err *err) {
    return cloud_run(c, req, true, on_chunk, user, res, err);
}

char *sw_cloud_error_json(const sw_cloud_result *res, sw_status st, const sw_err *err) {
    cJSON *o = cJSON_CreateObject();
    cJSON *e = o ? cJSON_AddObjectToObject(o, "error") : NULL;
    if (!e) {
        cJSON_Delete(o);
        return NULL;
    }
    const char *type = res && res->error_type && res->error_type[0] ? res->error_type : "upstream_error";
    cJSON_AddStringToObject(e, "message", err && err->msg[0] ? err->msg : sw_status_str(st));
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "code", type);
    if (res && res->retry_after_s >= 0) cJSON_AddNumberToObject(e, "retry_after", res->retry_after_s);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
