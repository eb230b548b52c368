/* gen.c — one generation request between the HTTP connection and the engine.
 *
 * The engine calls on_event on its scheduler thread; we copy the event into
 * the request's queue and signal, nothing more, so a slow client never slows
 * the other streams. The connection's thread (libmicrohttpd gives each its
 * own) drains the queue: a non-streaming request blocks in the handler until
 * the final event and answers once; a streaming one feeds an SSE response
 * from MHD's content-reader callback. Both wait in 100 ms slices and between
 * slices look for a client that hung up, a server shutdown and the request
 * deadline, and cancel the engine request for any of them.
 *
 * Lifetime: a gen_req is reference counted. The connection holds one
 * reference (dropped by srv_gen_release when MHD finishes the request), the
 * engine one (dropped in the callback of the final event, after which the
 * engine never touches it again), and a streaming response one (dropped when
 * MHD frees the response). Whoever drops the last frees it. */
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oai.h"

/* How long a connection thread sleeps before re-checking the client, the
 * server state and the deadline. */
#define WAIT_SLICE_S 0.1
/* After cancelling, how long to wait for the engine's final event before
 * giving up on the request (the engine promises one; this only bounds a bug). */
#define CANCEL_GRACE_S 30.0

typedef enum { CANCEL_NONE = 0, CANCEL_CLIENT, CANCEL_SHUTDOWN, CANCEL_TIMEOUT } cancel_reason;

typedef struct ev_item {
    char *text; /* owned, NUL-terminated */
    size_t text_len;
    sw_token_info tok;
} ev_item;

struct gen_req {
    srv *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    /* Under mu: events not yet taken by the connection thread. */
    ev_item *q;
    size_t n_q, cap_q;
    bool done;       /* the final event arrived (fields below are set) */
    bool lost;       /* an event was dropped for lack of memory */
    char *final_text;
    size_t final_len;
    sw_finish_reason finish;
    char final_msg[SW_ERR_LEN];
    sw_usage usage;
    /* Scheduler thread only (the callback): latency bookkeeping. */
    double t_last_token;
    bool seen_token;
    /* Fixed once submitted. */
    uint64_t id;
    bool chat, stream, include_usage, logprobs;
    char id_str[48];
    oai_meta meta;
    char *echo;     /* completions echo: the prompt text; owned */
    size_t echo_len;
    /* Connection thread only. */
    struct MHD_Connection *conn;
    cancel_reason cancelled;
    double t_cancel, deadline;
    double t_checked;  /* last gen_checks */
    bool final_seen; /* the final event has been processed */
    sbuf out;        /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool out_done;   /* everything, including [DONE], is in out */
    sbuf text;       /* non-streaming: the completion so far */
    sw_token_info *lps; /* non-streaming: the tokens, for logprobs */
    size_t n_lps, cap_lps;
    size_t text_offset; /* completions logprobs: bytes before the next token */
};

typedef struct gen_req gen_req;

/* ---- reference counting ----------------------------------------------------------- */

static void gen_free(gen_req *g) {
    for (size_t i = 0; i < g->n_q; i++) free(g->q[i].text);
    free(g->q);
    free(g->final_text);
    free(g->echo);
    sbuf_free(&g->out);
    sbuf_free(&g->text);
    free(g->lps);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void gen_unref(gen_req *g) {
    pthread_mutex_lock(&g->mu);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last) gen_free(g);
}

/* ---- the engine's side ------------------------------------------------------------ */

static void on_event(void *user, const sw_event *ev) {
    gen_req *g = user;
    srv_metrics *m = &g->s->metrics;
    double now = sw_time_s();
    if (ev->type == SW_EVENT_TOKEN) {
        if (!g->seen_token) {
            double t1 = ev->t_first_token > 0 ? ev->t_first_token : now;
            srv_metrics_ttft(m, t1 - ev->t_queued);
        } else {
            srv_metrics_itl(m, now - g->t_last_token);
        }
        g->seen_token = true;
        g->t_last_token = now;
        char *text = malloc(ev->text_len + 1);
        if (text) {
            memcpy(text, ev->text, ev->text_len);
            text[ev->text_len] = '\0';
        }
        pthread_mutex_lock(&g->mu);
        if (text && g->n_q == g->cap_q) {
            size_t cap = g->cap_q ? 2 * g->cap_q : 16;
            ev_item *q = realloc(g->q, cap * sizeof *q);
            if (q) {
                g->q = q;
                g->cap_q = cap;
            }
        }
        if (text && g->n_q < g->cap_q) {
            g->q[g->n_q++] = (ev_item){.text = text, .text_len = ev->text_len, .tok = ev->token};
        } else {
            free(text);
            g->lost = true;
        }
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    double e2e = ev->t_finished > 0 ? ev->t_finished - ev->t_queued : now - ev->t_queued;
    double queue = ev->t_first_token > 0 ? ev->t_first_token - ev->t_queued : -1;
    srv_metrics_finished(m, &ev->usage, e2e, queue, ev->finish);
    char *text = malloc(ev->text_len + 1);
    if (text) {
        memcpy(text, ev->text, ev->text_len);
        text[ev->text_len] = '\0';
    }
    pthread_mutex_lock(&g->mu);
    g->final_text = text;
    g->final_len = text ? ev->text_len : 0;
    if (!text && ev->text_len) g->lost = true;
    g->finish = ev->finish;
    snprintf(g->final_msg, sizeof g->final_msg, "%s", ev->message ? ev->message : "");
    g->usage = ev->usage;
    g->done = true;
    bool last = --g->refs == 0;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (last) gen_free(g);
}

/* ---- the connection's side ---------------------------------------------------------- */

static void gen_cancel(gen_req *g, cancel_reason why) {
    if (g->cancelled) return;
    g->cancelled = why;
    g->t_cancel = sw_time_s();
    sw_engine_cancel(g->s->engine, g->id);
}

/* Wait up to one slice for events and take them. *final is set when the
 * final event is among what was taken (it is processed after the tokens). */
static void gen_take(gen_req *g, ev_item **items, size_t *n, size_t *cap, bool *final) {
    *n = 0;
    *final = false;
    pthread_mutex_lock(&g->mu);
    if (g->n_q == 0 && !g->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(WAIT_SLICE_S * 1e9);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    /* Swap buffers: the callback gets our empty array back, so neither side
     * allocates in the steady state. */
    ev_item *q = g->q;
    size_t nq = g->n_q, cq = g->cap_q;
    g->q = *items;
    g->cap_q = *cap;
    g->n_q = 0;
    *items = q;
    *n = nq;
    *cap = cq;
    *final = g->done && !g->final_seen;
    pthread_mutex_unlock(&g->mu);
}

/* Between slices: the client, the server and the clock. Rate-limited to one
 * check per slice, since a busy stream comes here after every batch of
 * tokens. */
static void gen_checks(gen_req *g) {
    if (g->cancelled) return;
    double now = sw_time_s();
    if (now - g->t_checked < WAIT_SLICE_S) return;
    g->t_checked = now;
    if (srv_conn_hung_up(g->conn)) gen_cancel(g, CANCEL_CLIENT);
    else if (atomic_load(&g->s->state) == SRV_STOPPING) gen_cancel(g, CANCEL_SHUTDOWN);
    else if (g->deadline > 0 && now > g->deadline) gen_cancel(g, CANCEL_TIMEOUT);
}

/* The error to report for a request that did not end with stop/length. */
static bool gen_error(const gen_req *g, oai_error *e) {
    if (g->lost) {
        oai_error_set(e, 500, "server_error", NULL, NULL,
                      "out of memory while streaming the completion");
        return true;
    }
    switch (g->finish) {
    case SW_FINISH_STOP:
    case SW_FINISH_LENGTH: return false;
    case SW_FINISH_CANCELLED:
        if (g->cancelled == CANCEL_TIMEOUT)
            oai_error_set(e, 504, "timeout_error", "request_timeout", NULL,
                          "the request exceeded the server's timeout of %.0f s (--timeout)",
                          g->s->cfg.timeout_s);
        else
            oai_error_set(e, 503, "server_error", "shutting_down",
                          NULL, "the request was cancelled: the server is shutting down");
        return true;
    default:
        oai_error_set(e, 500, "server_error", NULL, NULL, "generation failed: %s",
                      g->final_msg[0] ? g->final_msg : "unknown error");
        return true;
    }
}

static const char *finish_str(sw_finish_reason r) {
    return r == SW_FINISH_LENGTH ? "length" : "stop";
}

/* ---- streaming ---------------------------------------------------------------------- */

static void stream_token(gen_req *g, const ev_item *it) {
    if (it->text_len == 0 && !g->logprobs) return; /* held back: nothing to say yet */
    sbuf lp = {0};
    if (g->logprobs) {
        if (g->chat) oai_chat_logprobs(&lp, g->s->tok, &it->tok, 1);
        else oai_cmpl_logprobs(&lp, g->s->tok, &it->tok, 1, &g->text_offset);
    }
    if (g->chat)
        oai_sse_chat_chunk(&g->out, &g->meta, false, it->text, it->text_len, lp.p, NULL,
                           g->include_usage);
    else
        oai_sse_cmpl_chunk(&g->out, &g->meta, it->text, it->text_len, lp.p, NULL,
                           g->include_usage);
    sbuf_free(&lp);
}

static void stream_final(gen_req *g) {
    oai_error e;
    if (g->final_len > 0) {
        ev_item it = {.text = g->final_text, .text_len = g->final_len};
        bool lp = g->logprobs;
        g->logprobs = false; /* the flushed text belongs to tokens already reported */
        stream_token(g, &it);
        g->logprobs = lp;
    }
    if (gen_error(g, &e)) {
        oai_sse_error(&g->out, &e);
    } else {
        const char *f = finish_str(g->finish);
        if (g->chat)
            oai_sse_chat_chunk(&g->out, &g->meta, false, NULL, 0, NULL, f, g->include_usage);
        else
            oai_sse_cmpl_chunk(&g->out, &g->meta, "", 0, NULL, f, g->include_usage);
        if (g->include_usage) oai_sse_usage_chunk(&g->out, &g->meta, g->chat, &g->usage);
    }
    oai_sse_done(&g->out);
    g->out_done = true;
}

/* MHD's content reader: hand out pending SSE bytes, waiting for more. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    gen_req *g = cls;
    ev_item *items = NULL;
    size_t n = 0, cap = 0;
    ssize_t ret;
    for (;;) {
        if (g->out.n > g->out_off) {
            size_t k = SW_MIN(max, g->out.n - g->out_off);
            memcpy(buf, g->out.p + g->out_off, k);
            g->out_off += k;
            if (g->out_off == g->out.n) {
                g->out.n = 0;
                g->out_off = 0;
            }
            ret = (ssize_t)k;
            break;
        }
        if (g->out.oom) {
            ret = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (g->out_done) {
            ret = MHD_CONTENT_READER_END_OF_STREAM;
            break;
        }
        if (g->cancelled == CANCEL_CLIENT ||
            (g->cancelled && sw_time_s() - g->t_cancel > CANCEL_GRACE_S)) {
            ret = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        bool final;
        gen_take(g, &items, &n, &cap, &final);
        for (size_t i = 0; i < n; i++) {
            stream_token(g, &items[i]);
            free(items[i].text);
        }
        if (final) {
            g->final_seen = true;
            stream_final(g);
        } else {
            gen_checks(g);
        }
    }
    free(items);
    return ret;
}

static void stream_free(void *cls) { gen_unref(cls); }

/* ---- non-streaming ---------------------------------------------------------------------- */

static bool lps_push(gen_req *g, const sw_token_info *t) {
    if (g->n_lps == g->cap_lps) {
        size_t cap = g->cap_lps ? 2 * g->cap_lps : 64;
        sw_token_info *p = realloc(g->lps, cap * sizeof *p);
        if (!p) return false;
        g->lps = p;
        g->cap_lps = cap;
    }
    g->lps[g->n_lps++] = *t;
    return true;
}

/* Block until the generation ends; false when the client went away. */
static bool collect(gen_req *g) {
    ev_item *items = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    for (;;) {
        bool final;
        gen_take(g, &items, &n, &cap, &final);
        for (size_t i = 0; i < n; i++) {
            sbuf_add(&g->text, items[i].text, items[i].text_len);
            if (g->logprobs && !lps_push(g, &items[i].tok)) g->lost = true;
            free(items[i].text);
        }
        if (final) {
            g->final_seen = true;
            sbuf_add(&g->text, g->final_text ? g->final_text : "", g->final_len);
            if (g->text.oom) g->lost = true;
            break;
        }
        gen_checks(g);
        if (g->cancelled && sw_time_s() - g->t_cancel > CANCEL_GRACE_S) {
            ok = false;
            break;
        }
    }
    free(items);
    return ok && g->cancelled != CANCEL_CLIENT;
}

static int respond_whole(srv_conn *sc, gen_req *g) {
    oai_error e;
    if (!collect(g)) {
        oai_error_set(&e, 499, "invalid_request_error", "client_closed", NULL,
                      "the client closed the connection");
        return srv_respond_error(sc, &e);
    }
    if (gen_error(g, &e)) return srv_respond_error(sc, &e);
    sbuf lp = {0};
    if (g->logprobs) {
        size_t off = g->echo_len;
        if (g->chat) oai_chat_logprobs(&lp, g->s->tok, g->lps, g->n_lps);
        else oai_cmpl_logprobs(&lp, g->s->tok, g->lps, g->n_lps, &off);
    }
    sbuf b = {0};
    const char *text = g->text.p ? g->text.p : "";
    if (g->chat) {
        oai_chat_response(&b, &g->meta, text, g->text.n, lp.p, finish_str(g->finish), &g->usage);
    } else {
        sbuf full = {0};
        if (g->echo) sbuf_add(&full, g->echo, g->echo_len);
        sbuf_add(&full, text, g->text.n);
        oai_cmpl_response(&b, &g->meta, full.p ? full.p : "", full.n, lp.p,
                          finish_str(g->finish), &g->usage);
        if (full.oom) b.oom = true;
        sbuf_free(&full);
    }
    if (lp.oom) b.oom = true;
    sbuf_free(&lp);
    return srv_respond(sc, 200, sbuf_take(&b), NULL);
}

/* ---- the prompt ---------------------------------------------------------------------------- */

static bool tokenize(srv *s, const char *text, bool add_bos, int32_t **ids, size_t *n,
                     oai_error *e) {
    sw_err err = {{0}};
    if (sw_tokenize(s->tok, text, strlen(text), add_bos, true, ids, n, &err) != SW_OK) {
        oai_error_set(e, 400, "invalid_request_error", "invalid_value", NULL,
                      "cannot tokenize the prompt: %s", err.msg);
        return false;
    }
    return true;
}

static bool chat_prompt(srv *s, const oai_request *r, int32_t **ids, size_t *n, oai_error *e) {
    sw_chat_msg *msgs = calloc(r->n_msgs, sizeof *msgs);
    if (!msgs) {
        oai_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < r->n_msgs; i++) {
        msgs[i].role = r->msgs[i].role;
        msgs[i].content = r->msgs[i].content;
    }
    int32_t bos = sw_tokenizer_bos(s->tok), eos = sw_tokenizer_eos(s->tok);
    const char *bos_s = bos >= 0 ? sw_tokenizer_token_text(s->tok, bos) : "";
    const char *eos_s = eos >= 0 ? sw_tokenizer_token_text(s->tok, eos) : "";
    char *text = NULL;
    sw_err err = {{0}};
    sw_status st = sw_chat_render(s->chat, msgs, r->n_msgs, true, bos_s ? bos_s : "",
                                  eos_s ? eos_s : "", &text, &err);
    free(msgs);
    if (st != SW_OK) {
        oai_error_set(e, 400, "invalid_request_error", "invalid_value", "messages",
                      "the %s chat template cannot render these messages: %s",
                      sw_chat_kind_name(s->chat), err.msg);
        return false;
    }
    /* A template that spells BOS out already put it in the text. */
    bool add_bos = sw_tokenizer_add_bos(s->tok) && bos >= 0 && !sw_chat_spells_bos(s->chat);
    if (add_bos && bos_s && *bos_s && !strncmp(text, bos_s, strlen(bos_s))) add_bos = false;
    bool ok = tokenize(s, text, add_bos, ids, n, e);
    free(text);
    return ok;
}

static bool completion_prompt(srv *s, const oai_request *r, int32_t **ids, size_t *n,
                              gen_req *g, oai_error *e) {
    if (r->prompt_ids) {
        *ids = malloc(r->n_prompt_ids * sizeof **ids);
        if (!*ids) {
            oai_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
            return false;
        }
        memcpy(*ids, r->prompt_ids, r->n_prompt_ids * sizeof **ids);
        *n = r->n_prompt_ids;
        if (r->echo) {
            sw_err err = {{0}};
            if (sw_detokenize(s->tok, *ids, *n, false, &g->echo, &err) == SW_OK)
                g->echo_len = strlen(g->echo);
        }
        return true;
    }
    if (r->echo) {
        g->echo = strdup(r->prompt);
        g->echo_len = g->echo ? strlen(g->echo) : 0;
    }
    bool add_bos = sw_tokenizer_add_bos(s->tok) && sw_tokenizer_bos(s->tok) >= 0;
    if (!tokenize(s, r->prompt, add_bos, ids, n, e)) return false;
    if (*n == 0) {
        free(*ids);
        *ids = NULL;
        oai_error_set(e, 400, "invalid_request_error", "invalid_value", "prompt",
                      "the prompt is empty after tokenization (and this model adds no BOS)");
        return false;
    }
    return true;
}

/* ---- the handler ------------------------------------------------------------------------------ */

static void submit_error(srv *s, const oai_request *r, int32_t n_prompt, sw_status st,
                         const sw_err *err, oai_error *e) {
    const char *what = r->chat ? "messages" : "prompt";
    switch (st) {
    case SW_E_RANGE:
        oai_error_set(e, 400, "invalid_request_error", "context_length_exceeded",
                      n_prompt < s->n_ctx ? "max_tokens" : what,
                      "this model's maximum context length is %d tokens: %s", s->n_ctx,
                      err->msg);
        break;
    case SW_E_BUSY:
        oai_error_set(e, 429, "rate_limit_error", "queue_full", NULL,
                      "the server is busy (%s); retry later", err->msg);
        break;
    case SW_E_INVALID_ARG:
        oai_error_set(e, 400, "invalid_request_error", "invalid_value", NULL, "%s", err->msg);
        break;
    case SW_E_CANCELLED:
        oai_error_set(e, 503, "server_error", "shutting_down", NULL, "%s", err->msg);
        break;
    default:
        oai_error_set(e, 500, "server_error", NULL, NULL, "cannot start the generation: %s",
                      err->msg);
    }
}

int srv_handle_generate(srv_conn *sc, bool chat) {
    srv *s = sc->s;
    oai_request r;
    oai_error e;
    if (!oai_parse_request(sc->body, sc->body_len, chat, (int32_t)sw_tokenizer_n_vocab(s->tok),
                           &r, &e))
        return srv_respond_error(sc, &e);
    if (!srv_model_name_ok(s, r.model)) {
        oai_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                      "the model '%.200s' does not exist; this server serves '%s'", r.model,
                      s->model_id);
        oai_request_free(&r);
        return srv_respond_error(sc, &e);
    }
    gen_req *g = calloc(1, sizeof *g);
    if (!g) {
        oai_request_free(&r);
        oai_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
        return srv_respond_error(sc, &e);
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->s = s;
    g->refs = 1;
    g->conn = sc->conn;
    g->chat = chat;
    g->stream = r.stream;
    g->include_usage = r.include_usage;
    g->logprobs = r.logprobs;
    oai_make_id(g->id_str, sizeof g->id_str, chat ? "chatcmpl-" : "cmpl-");
    g->meta = (oai_meta){.id = g->id_str,
                         .created = (int64_t)time(NULL),
                         .model = s->model_id,
                         .fingerprint = s->fingerprint};
    if (s->cfg.timeout_s > 0) g->deadline = sw_time_s() + s->cfg.timeout_s;

    int32_t *ids = NULL;
    size_t n_ids = 0;
    bool ok = chat ? chat_prompt(s, &r, &ids, &n_ids, &e)
                   : completion_prompt(s, &r, &ids, &n_ids, g, &e);
    if (ok && n_ids > (size_t)INT32_MAX) {
        oai_error_set(&e, 400, "invalid_request_error", "context_length_exceeded", NULL,
                      "the prompt is too long");
        ok = false;
    }
    g->text_offset = g->echo_len;
    if (!ok) {
        free(ids);
        oai_request_free(&r);
        gen_free(g);
        return srv_respond_error(sc, &e);
    }
    sw_request req = {0};
    req.prompt = ids;
    req.n_prompt = (int32_t)n_ids;
    req.sampling = r.sp;
    req.n_top_logprobs = r.logprobs ? r.top_logprobs : 0;
    req.max_tokens = r.max_tokens;
    req.stop_strings = (const char *const *)r.stop;
    req.n_stop_strings = r.n_stop;
    req.ignore_eos = r.ignore_eos;
    req.on_event = on_event;
    req.user = g;
    g->refs = 2; /* the engine's reference, taken before it can call back */
    sw_err err = {{0}};
    sw_status st = sw_engine_submit(s->engine, &req, &g->id, &err);
    free(ids);
    if (st != SW_OK) {
        submit_error(s, &r, req.n_prompt, st, &err, &e);
        oai_request_free(&r);
        gen_free(g);
        return srv_respond_error(sc, &e);
    }
    oai_request_free(&r);
    sc->gen = g;
    if (!g->stream) return respond_whole(sc, g);

    /* Streaming: the first chunk (the assistant role, or the echoed prompt)
     * goes out at once so clients and proxies see the stream open. */
    if (chat) oai_sse_chat_chunk(&g->out, &g->meta, true, "", 0, NULL, NULL, g->include_usage);
    else if (g->echo_len)
        oai_sse_cmpl_chunk(&g->out, &g->meta, g->echo, g->echo_len, NULL, NULL,
                           g->include_usage);
    pthread_mutex_lock(&g->mu);
    g->refs++; /* the response's reference */
    pthread_mutex_unlock(&g->mu);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, g,
                                          stream_free);
    if (!resp) {
        gen_unref(g);
        oai_error_set(&e, 500, "server_error", NULL, NULL, "cannot create the response");
        return srv_respond_error(sc, &e);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(sc->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    sc->status = 200;
    sc->responded = true;
    return ret;
}

void srv_gen_release(gen_req *g) {
    pthread_mutex_lock(&g->mu);
    bool done = g->done;
    pthread_mutex_unlock(&g->mu);
    /* The client is gone or the response is out; either way the engine need
     * not keep working on it. */
    if (!done) sw_engine_cancel(g->s->engine, g->id);
    gen_unref(g);
}
