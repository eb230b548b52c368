/* bench_serve.c — spillway-bench serve: drive an OpenAI-compatible server
 * with streaming /v1/completions requests from C worker threads at each
 * concurrency level, and report output tokens/s, time to first token and
 * inter-token latency (p50/p99).
 *
 * The client is a minimal HTTP/1.1 one over plain sockets (one connection
 * per request, chunked or length-delimited bodies, SSE events), so the
 * timings are of the server and the network stack, not of a client library.
 * Requests are the same for every server: a prompt of exactly P token ids
 * (obtained from the server's /tokenize), max_tokens M, ignore_eos so every
 * request generates M tokens, greedy sampling. With --distinct-prompts every
 * request's prompt starts with a different pair of the prompt's own token ids
 * (same length), so no server can serve one request's prompt from another's
 * cache: time to first token then includes every prompt's prefill. */
#include "bench_serve.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct bopts {
    char host[300];
    char port[16];
    char base[256]; /* path prefix before /v1/... (usually "") */
    int levels[32];
    int n_levels;
    int requests;
    int prompt_tokens;
    int max_tokens;
    const char *model;
    const char *api_key;
    bool json;
    bool distinct;
    double timeout_s;
} bopts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- growable arrays ---------------------------------------------------------------- */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static bool dvec_push(dvec *d, double x) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 256;
        double *p = realloc(d->v, cap * sizeof *p);
        if (!p) return false;
        d->v = p;
        d->cap = cap;
    }
    d->v[d->n++] = x;
    return true;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const dvec *d, double p) {
    if (!d->n) return 0;
    size_t k = (size_t)(p / 100.0 * (double)d->n + 0.999999);
    if (k < 1) k = 1;
    if (k > d->n) k = d->n;
    return d->v[k - 1];
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static int dial(const bopts *o, double timeout_s) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(o->host, o->port, &hints, &ai) != 0 || !ai) return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        struct timeval tv = {.tv_sec = (time_t)timeout_s, .tv_usec = 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

static bool send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool send_post(int fd, const bopts *o, const char *path, const char *body) {
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "POST %s%s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Accept: text/event-stream\r\nConnection: close\r\nContent-Length: %zu\r\n"
                     "%s%s%s\r\n",
                     o->base, path, o->host, o->port, strlen(body),
                     o->api_key ? "Authorization: Bearer " : "", o->api_key ? o->api_key : "",
                     o->api_key ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) return false;
    return send_all(fd, head, (size_t)n) && send_all(fd, body, strlen(body));
}

/* A response being read: raw socket bytes, then the decoded body, handed to
 * a consumer as it arrives (the SSE parser or a buffer). */
typedef struct resp {
    int fd;
    char buf[16384];
    size_t n, off;
    int status;
    bool chunked;
    long long remaining; /* content-length left; -1: until close */
    long long chunk_left;
    bool eof;
} resp;

static bool fill(resp *r) {
    if (r->off > 0 && r->off < r->n) memmove(r->buf, r->buf + r->off, r->n - r->off);
    r->n -= r->off;
    r->off = 0;
    if (r->n == sizeof r->buf) return true;
    ssize_t k;
    do k = recv(r->fd, r->buf + r->n, sizeof r->buf - r->n, 0);
    while (k < 0 && errno == EINTR);
    if (k <= 0) {
        r->eof = true;
        return false;
    }
    r->n += (size_t)k;
    return true;
}

/* Read a CRLF-terminated line from the raw stream into line (without CRLF). */
static bool read_line(resp *r, char *line, size_t cap) {
    for (;;) {
        char *nl = memchr(r->buf + r->off, '\n', r->n - r->off);
        if (nl) {
            size_t len = (size_t)(nl - (r->buf + r->off));
            size_t k = len < cap - 1 ? len : cap - 1;
            memcpy(line, r->buf + r->off, k);
            line[k] = '\0';
            if (k && line[k - 1] == '\r') line[k - 1] = '\0';
            r->off += len + 1;
            return true;
        }
        if (r->n - r->off >= sizeof r->buf - 1) r->off = r->n; /* overlong header: drop */
        if (!fill(r)) return false;
    }
}

static bool read_head(resp *r) {
    char line[4096];
    if (!read_line(r, line, sizeof line)) return false;
    if (sscanf(line, "HTTP/%*s %d", &r->status) != 1) return false;
    r->remaining = -1;
    while (read_line(r, line, sizeof line)) {
        if (!line[0]) return true;
        if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line, "chunked"))
            r->chunked = true;
        else if (!strncasecmp(line, "content-length:", 15))
            r->remaining = strtoll(line + 15, NULL, 10);
    }
    return false;
}

/* Next piece of body (p and n point into the buffer); false at the end. */
static bool body_next(resp *r, const char **p, size_t *n) {
    if (r->chunked) {
        while (r->chunk_left == 0) {
            char line[64];
            if (!read_line(r, line, sizeof line)) return false;
            if (!line[0]) continue; /* CRLF after a chunk */
            r->chunk_left = strtoll(line, NULL, 16);
            if (r->chunk_left == 0) return false; /* last chunk */
        }
        if (r->off == r->n && !fill(r)) return false;
        size_t k = r->n - r->off;
        if ((long long)k > r->chunk_left) k = (size_t)r->chunk_left;
        *p = r->buf + r->off;
        *n = k;
        r->off += k;
        r->chunk_left -= (long long)k;
        return true;
    }
    if (r->remaining == 0) return false;
    if (r->off == r->n && !fill(r)) return false;
    size_t k = r->n - r->off;
    if (r->remaining > 0 && (long long)k > r->remaining) k = (size_t)r->remaining;
    *p = r->buf + r->off;
    *n = k;
    r->off += k;
    if (r->remaining > 0) r->remaining -= (long long)k;
    return true;
}

/* POST and collect the whole body (for /tokenize). Returns malloc'd text. */
static char *post_collect(const bopts *o, const char *path, const char *body, int *status) {
    int fd = dial(o, o->timeout_s);
    if (fd < 0) return NULL;
    char *out = NULL;
    size_t len = 0;
    resp *r = calloc(1, sizeof *r);
    if (r && send_post(fd, o, path, body)) {
        r->fd = fd;
        if (read_head(r)) {
            *status = r->status;
            const char *p;
            size_t n;
            while (body_next(r, &p, &n)) {
                char *q = realloc(out, len + n + 1);
                if (!q) break;
                out = q;
                memcpy(out + len, p, n);
                len += n;
                out[len] = '\0';
            }
        }
    }
    free(r);
    close(fd);
    return out;
}

/* ---- one streaming request ------------------------------------------------------------- */

typedef struct result {
    bool ok;
    int tokens;
    double ttft;
    char err[160];
} result;

/* Handle one SSE data payload. Returns false at [DONE]. */
static bool sse_event(const char *payload, double t, double t0, double *t_last, result *res,
                      dvec *itl, int *events) {
    if (!strcmp(payload, "[DONE]")) return false;
    cJSON *j = cJSON_Parse(payload);
    if (!j) return true;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        snprintf(res->err, sizeof res->err, "stream error: %.120s",
                 cJSON_IsString(m) ? m->valuestring : "?");
    }
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *text = ch ? cJSON_GetObjectItemCaseSensitive(ch, "text") : NULL;
    if (!text && ch) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta");
        text = d ? cJSON_GetObjectItemCaseSensitive(d, "content") : NULL;
    }
    if (cJSON_IsString(text) && text->valuestring[0]) {
        if (*events == 0) res->ttft = t - t0;
        else dvec_push(itl, t - *t_last);
        *t_last = t;
        (*events)++;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *ct = u ? cJSON_GetObjectItemCaseSensitive(u, "completion_tokens") : NULL;
    if (cJSON_IsNumber(ct)) res->tokens = ct->valueint;
    cJSON_Delete(j);
    return true;
}

static void do_request(const bopts *o, const char *body, result *res, dvec *itl) {
    memset(res, 0, sizeof *res);
    res->tokens = -1;
    double t0 = now_s(), t_last = 0;
    int fd = dial(o, o->timeout_s);
    if (fd < 0) {
        snprintf(res->err, sizeof res->err, "connect failed: %s", strerror(errno));
        return;
    }
    resp *r = calloc(1, sizeof *r);
    char *line = malloc(1 << 20);
    size_t line_n = 0;
    int events = 0;
    if (!r || !line) {
        snprintf(res->err, sizeof res->err, "out of memory");
        goto done;
    }
    r->fd = fd;
    if (!send_post(fd, o, "/v1/completions", body)) {
        snprintf(res->err, sizeof res->err, "send failed: %s", strerror(errno));
        goto done;
    }
    if (!read_head(r)) {
        snprintf(res->err, sizeof res->err, "no HTTP response");
        goto done;
    }
    const char *p;
    size_t n;
    bool more = true;
    while (more && body_next(r, &p, &n)) {
        double t = now_s();
        for (size_t i = 0; i < n && more; i++) {
            char c = p[i];
            if (c == '\n') {
                if (line_n && line[line_n - 1] == '\r') line_n--;
                line[line_n] = '\0';
                if (r->status == 200 && !strncmp(line, "data:", 5)) {
                    const char *pl = line + 5;
                    while (*pl == ' ') pl++;
                    more = sse_event(pl, t, t0, &t_last, res, itl, &events);
                } else if (r->status != 200 && !res->err[0] && line_n) {
                    snprintf(res->err, sizeof res->err, "HTTP %d: %.120s", r->status, line);
                }
                line_n = 0;
            } else if (line_n < (1 << 20) - 1) {
                line[line_n++] = c;
            }
        }
    }
    if (r->status != 200 && !res->err[0]) snprintf(res->err, sizeof res->err, "HTTP %d", r->status);
    if (res->tokens < 0) res->tokens = events; /* no usage chunk: one token per event */
    res->ok = !res->err[0] && events > 0;
    if (!res->ok && !res->err[0])
        snprintf(res->err, sizeof res->err, "stream ended without tokens%s",
                 r->eof ? " (connection closed)" : "");
done:
    free(line);
    free(r);
    close(fd);
}

/* ---- a concurrency level ---------------------------------------------------------------- */

typedef struct level {
    const bopts *o;
    const char *body;
    char **bodies; /* [requests] with --distinct-prompts, else NULL */
    atomic_int next;
    pthread_mutex_t mu;
    dvec ttft, itl;
    long long tokens;
    int errors;
    char first_err[160];
} level;

static void *worker(void *arg) {
    level *L = arg;
    dvec itl = {0};
    for (;;) {
        int i = atomic_fetch_add(&L->next, 1);
        if (i >= L->o->requests) break;
        result res;
        itl.n = 0;
        do_request(L->o, L->bodies ? L->bodies[i] : L->body, &res, &itl);
        pthread_mutex_lock(&L->mu);
        if (res.ok) {
            dvec_push(&L->ttft, res.ttft);
            for (size_t k = 0; k < itl.n; k++) dvec_push(&L->itl, itl.v[k]);
            L->tokens += res.tokens;
        } else {
            if (!L->errors) snprintf(L->first_err, sizeof L->first_err, "%s", res.err);
            L->errors++;
        }
        pthread_mutex_unlock(&L->mu);
    }
    free(itl.v);
    return NULL;
}

static void free_bodies(char **b, int n) {
    for (int i = 0; b && i < n; i++) free(b[i]);
    free(b);
}

/* ---- setup -------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-bench serve --url http://HOST:PORT [options]\n"
            "  --concurrency LIST   comma-separated levels (default 1,8,64)\n"
            "  --requests N         requests per level (default: 4 x concurrency, at least 8)\n"
            "  --prompt-tokens P    prompt length in tokens (default 128)\n"
            "  --max-tokens M       tokens generated per request (default 128)\n"
            "  --model NAME         'model' field of the requests (default: none)\n"
            "  --api-key KEY        send 'Authorization: Bearer KEY'\n"
            "  --timeout S          per-request socket timeout (default 300)\n"
            "  --distinct-prompts   no two requests share a prompt prefix (its first two\n"
            "                       tokens vary), so no prompt comes from a server's cache\n"
            "  --json               print a JSON list, one object per level\n");
}

static bool parse_url(const char *url, bopts *o) {
    const char *p = url;
    if (!strncmp(p, "http://", 7)) p += 7;
    else if (strstr(p, "://")) return false; /* https is not supported */
    const char *slash = strchr(p, '/');
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    char hostport[300];
    if (hp == 0 || hp >= sizeof hostport) return false;
    memcpy(hostport, p, hp);
    hostport[hp] = '\0';
    char *colon = strrchr(hostport, ':');
    if (hostport[0] == '[') { /* [v6]:port */
        char *end = strchr(hostport, ']');
        if (!end) return false;
        *end = '\0';
        snprintf(o->host, sizeof o->host, "%s", hostport + 1);
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        if (colon) *colon = '\0';
        snprintf(o->host, sizeof o->host, "%s", hostport);
    }
    snprintf(o->port, sizeof o->port, "%s", colon ? colon + 1 : "80");
    snprintf(o->base, sizeof o->base, "%s", slash ? slash : "");
    size_t bl = strlen(o->base);
    while (bl && o->base[bl - 1] == '/') o->base[--bl] = '\0';
    /* Accept ".../v1" as the base too, as OpenAI clients are configured. */
    if (bl >= 3 && !strcmp(o->base + bl - 3, "/v1")) o->base[bl - 3] = '\0';
    return o->host[0] != '\0';
}

static bool parse_levels(const char *s, bopts *o) {
    o->n_levels = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 4096 || o->n_levels == 32) return false;
        o->levels[o->n_levels++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return o->n_levels > 0;
}

/* A prompt of exactly P token ids: tokenize a long text with the server's
 * own tokenizer and cut it, so every server sees the same prompt length.
 * Returns the ids (P of them) or NULL. */
static int *prompt_ids(const bopts *o) {
    static const char story[] =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in "
        "the park with her friends. One day, she saw a big red ball under a tree. ";
    size_t reps = (size_t)o->prompt_tokens / 8 + 2;
    char *text = malloc(reps * sizeof story + 64);
    if (!text) return NULL;
    text[0] = '\0';
    for (size_t i = 0; i < reps; i++) strcat(text, story);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "content", text);
    free(text);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    int status = 0;
    char *out = body ? post_collect(o, "/tokenize", body, &status) : NULL;
    free(body);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    free(out);
    const cJSON *toks = j ? cJSON_GetObjectItemCaseSensitive(j, "tokens") : NULL;
    if (!cJSON_IsArray(toks) || cJSON_GetArraySize(toks) < o->prompt_tokens) {
        fprintf(stderr, "bench serve: POST %s/tokenize failed (HTTP %d); the server must offer "
                        "/tokenize\n", o->base, status);
        cJSON_Delete(j);
        return NULL;
    }
    int *ids = malloc((size_t)o->prompt_tokens * sizeof *ids);
    for (int i = 0; ids && i < o->prompt_tokens; i++) {
        const cJSON *t = cJSON_GetArrayItem(toks, i);
        /* llama.cpp can return [id, piece] pairs with with_pieces; take the id. */
        ids[i] = cJSON_IsNumber(t) ? t->valueint : 0;
    }
    cJSON_Delete(j);
    return ids;
}

/* The request body for a prompt of P ids. variant >= 0 replaces the first
 * two ids with pair number variant of the prompt's distinct ids (u of them:
 * u * u different prompts); returns NULL when there are not that many. */
static char *request_body(const bopts *o, const int *ids, long variant) {
    int P = o->prompt_tokens, u = 0;
    int *uniq = malloc((size_t)P * sizeof *uniq);
    if (!uniq) return NULL;
    for (int i = 0; i < P; i++) {
        int k = 0;
        while (k < u && uniq[k] != ids[i]) k++;
        if (k == u) uniq[u++] = ids[i];
    }
    if (variant >= 0 && (P < 2 || variant >= (long)u * u)) {
        fprintf(stderr, "bench serve: --distinct-prompts: the %d-token prompt has %d distinct "
                        "ids, too few for request %ld\n", P, u, variant + 1);
        free(uniq);
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < P; i++) {
        int id = ids[i];
        if (variant >= 0 && i < 2) id = uniq[i == 0 ? variant % u : variant / u];
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(id));
    }
    free(uniq);
    cJSON *r = cJSON_CreateObject();
    if (o->model) cJSON_AddStringToObject(r, "model", o->model);
    cJSON_AddItemToObject(r, "prompt", arr);
    cJSON_AddNumberToObject(r, "max_tokens", o->max_tokens);
    cJSON_AddNumberToObject(r, "n_predict", o->max_tokens); /* llama.cpp's name */
    cJSON_AddBoolToObject(r, "stream", true);
    cJSON_AddBoolToObject(r, "ignore_eos", true);
    cJSON_AddNumberToObject(r, "temperature", 0);
    cJSON *so = cJSON_AddObjectToObject(r, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", true);
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return s;
}

int sw_bench_serve_main(int argc, char **argv) {
    bopts o = {0};
    o.prompt_tokens = 128;
    o.max_tokens = 128;
    o.timeout_s = 300;
    o.requests = 0;
    parse_levels("1,8,64", &o);
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool has = v != NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o.json = true;
            continue;
        } else if (!strcmp(a, "--distinct-prompts")) {
            o.distinct = true;
            continue;
        }
        if (!has) {
            fprintf(stderr, "bench serve: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        char *end = NULL;
        long n = strtol(v, &end, 10);
        bool num = end != v && !*end;
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--concurrency") || !strcmp(a, "-c")) {
            if (!parse_levels(v, &o)) goto bad;
        } else if (!strcmp(a, "--requests") || !strcmp(a, "-n")) {
            if (!num || n < 1 || n > 1000000) goto bad;
            o.requests = (int)n;
        } else if (!strcmp(a, "--prompt-tokens") || !strcmp(a, "-p")) {
            if (!num || n < 1 || n > 1000000) goto bad;
            o.prompt_tokens = (int)n;
        } else if (!strcmp(a, "--max-tokens") || !strcmp(a, "-m")) {
            if (!num || n < 1 || n > 1000000) goto bad;
            o.max_tokens = (int)n;
        } else if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--api-key")) o.api_key = v;
        else if (!strcmp(a, "--timeout")) {
            if (!num || n < 1) goto bad;
            o.timeout_s = (double)n;
        } else {
            fprintf(stderr, "bench serve: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "bench serve: bad value for %s: '%s'\n", a, v);
        return 2;
    }
    if (!url || !parse_url(url, &o)) {
        fprintf(stderr, "bench serve: --url http://HOST:PORT is required (plain http)\n");
        return 2;
    }
    int *ids = prompt_ids(&o);
    char *body = ids ? request_body(&o, ids, -1) : NULL;
    if (!body) {
        free(ids);
        return 1;
    }
    long variant = 0; /* the next distinct prompt, across levels */
    int rc = 0;
    if (o.json) printf("[");
    else
        printf("%-6s %8s %7s %10s %10s %10s %10s %10s\n", "conc", "requests", "errors",
               "gen tok/s", "ttft p50", "ttft p99", "itl p50", "itl p99");
    for (int li = 0; li < o.n_levels; li++) {
        int c = o.levels[li];
        bopts lo = o;
        if (lo.requests <= 0) lo.requests = c * 4 < 8 ? 8 : c * 4;
        level L = {.o = &lo, .body = body};
        if (o.distinct) {
            L.bodies = calloc((size_t)lo.requests, sizeof *L.bodies);
            for (int i = 0; L.bodies && i < lo.requests; i++)
                if (!(L.bodies[i] = request_body(&o, ids, variant++))) {
                    rc = 1;
                    break;
                }
            if (!L.bodies || rc) {
                free_bodies(L.bodies, lo.requests);
                break;
            }
        }
        pthread_mutex_init(&L.mu, NULL);
        pthread_t *th = calloc((size_t)c, sizeof *th);
        if (!th) return 1;
        double t0 = now_s();
        int started = 0;
        for (int i = 0; i < c; i++)
            if (pthread_create(&th[i], NULL, worker, &L) == 0) started++;
            else break;
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        double wall = now_s() - t0;
        free(th);
        qsort(L.ttft.v, L.ttft.n, sizeof(double), cmp_d);
        qsort(L.itl.v, L.itl.n, sizeof(double), cmp_d);
        double tok_s = wall > 0 ? (double)L.tokens / wall : 0;
        if (L.errors) {
            rc = 1;
            fprintf(stderr, "bench serve: concurrency %d: %d of %d requests failed; first: %s\n",
                    c, L.errors, lo.requests, L.first_err);
        }
        if (o.json) {
            printf("%s\n  {\"concurrency\": %d, \"requests\": %d, \"failed\": %d, "
                   "\"prompt\": %d, \"gen\": %d, \"gen_tokens\": %lld, "
                   "\"wall_s\": %.3f, \"gen_tok_s\": %.2f, \"ttft_p50_ms\": %.2f, "
                   "\"ttft_p99_ms\": %.2f, \"itl_p50_ms\": %.3f, \"itl_p99_ms\": %.3f}",
                   li ? "," : "", c, lo.requests, L.errors, o.prompt_tokens, o.max_tokens,
                   L.tokens, wall, tok_s, pct(&L.ttft, 50) * 1e3, pct(&L.ttft, 99) * 1e3,
                   pct(&L.itl, 50) * 1e3, pct(&L.itl, 99) * 1e3);
        } else {
            printf("%-6d %8d %7d %10.1f %8.1fms %8.1fms %8.2fms %8.2fms\n", c, lo.requests,
                   L.errors, tok_s, pct(&L.ttft, 50) * 1e3, pct(&L.ttft, 99) * 1e3,
                   pct(&L.itl, 50) * 1e3, pct(&L.itl, 99) * 1e3);
        }
        fflush(stdout);
        free(L.ttft.v);
        free(L.itl.v);
        free_bodies(L.bodies, lo.requests);
        pthread_mutex_destroy(&L.mu);
    }
    if (o.json) printf("\n]\n");
    free(body);
    free(ids);
    return rc;
}
