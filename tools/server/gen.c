/* gen.c — the generation core: one internal request (req.h), of any wire
 * format, between the HTTP connection and whoever answers it: the local
 * engine or the cloud provider (routing: spill.c). It knows no wire format:
 * the request was parsed by its format's parser, and every byte of the
 * answer is written by its format's srv_writer (start, text, tool call,
 * finish, error; or one whole response).
 *
 * Local: the engine calls on_event on its scheduler thread; we copy the
 * event into the request's queue and signal, nothing more, so a slow client
 * never slows the other streams. The connection's thread (libmicrohttpd gives
 * each its own) drains the queue: a non-streaming request blocks in the
 * handler until the final event and answers once; a streaming one feeds an
 * SSE response from MHD's content-reader callback. Both wait in 100 ms slices
 * and between slices look for a client that hung up, a server shutdown and
 * the request deadline, and cancel the engine request for any of them.
 *
 * Cloud: sw_cloud_chat runs on a worker thread (cloud_call, spill.c) and the
 * connection thread drains its text the same way.
 *
 * Routing happens in the handler, before anything is sent: the router's
 * decision picks local or cloud; a local answer the confidence monitor
 * distrusts within its probe window (text held back meanwhile) is cancelled
 * and asked of the cloud instead; a cloud call that fails before its first
 * text is answered locally when the decision allows it. Only once a route has
 * produced text (or, non-streaming, the whole answer) is the response queued,
 * so X-Spillway-Route and the status code always tell the truth.
 *
 * Lifetime: a gen_req is reference counted. The connection holds one
 * reference (dropped by srv_gen_release when MHD finishes the request, or
 * when the handler abandons a route), the engine one (dropped in the callback
 * of the final event, after which the engine never touches it again), and a
 * streaming response one (dropped when MHD frees the response). Whoever drops
 * the last frees it and writes the request's ledger line. */
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anthropic.h"
#include "learned.h"
#include "spill.h"

/* How long a connection thread sleeps before re-checking the client, the
 * server state and the deadline. */
#define WAIT_SLICE_S 0.1
/* After cancelling, how long to wait for the engine's final event before
 * giving up on the request (the engine promises one; this only bounds a bug). */
#define CANCEL_GRACE_S 30.0

typedef enum { CANCEL_NONE = 0, CANCEL_CLIENT, CANCEL_SHUTDOWN, CANCEL_TIMEOUT } cancel_reason;

typedef struct spill_facts spill_facts; /* what the "spillway" object says */

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
    uint64_t id;     /* the engine's request id (local) */
    bool stream;
    char id_str[48];
    srv_out o;       /* the writer and what it repeats; id and created are the
                        request's, shared by every route tried */
    cloud_call *cc;  /* cloud route: the call; NULL for local */
    char *spillway;  /* the "spillway" object for the response; owned */
    /* Ledger line written when the request is freed (cleared for a route
     * that was abandoned: escalated or fallen back from). */
    bool record;
    sw_route route;
    sw_route_reason reason;
    double t_start;
    /* Connection thread only. */
    struct MHD_Connection *conn;
    cancel_reason cancelled;
    double t_cancel, deadline;
    double t_checked;  /* last gen_checks */
    bool final_seen;   /* the final event has been taken from the queue */
    bool final_pending;/* ... during the probe, and not yet processed */
    ev_item *held;     /* the probe window's tokens, sent once the monitor passes */
    size_t n_held, cap_held;
    sbuf out;        /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool out_done;   /* everything, including [DONE], is in out */
    sbuf text;       /* non-streaming: the completion so far */
    srv_tool_parser *tp; /* local answers with tools: reads calls out of the text; NULL: none */
    sw_token_info *lps; /* non-streaming: the tokens, for logprobs */
    size_t n_lps, cap_lps;
    char cloud_finish[32];
    /* The learned router (learned.c). Under mu: the prompt's hidden states
     * from the engine's SW_EVENT_HIDDEN. */
    unsigned hidden_want;
    bool hidden_seen;
    float *h_last, *h_mean;
    int32_t n_embd;
    double route_score;  /* NaN: not scored */
    /* shadow sampling: the cloud body, the query text; started when the
     * local answer is complete (gen_free) */
    cJSON *shadow_body;
    bool shadow_native;  /* the body is an Anthropic request (sw_cloud_messages) */
    char *shadow_query;
    bool collect_text;   /* streaming: keep the text too (for the shadow) */
    /* A stream under the probe window (stream_probed): the role chunk went
     * out at once, the window's text is held back until the monitor's
     * verdict, and an escalation continues the same stream from the cloud.
     * The handler has returned by then: what the spillway object and the
     * cloud call need is kept here. */
    sw_monitor *mon;     /* owned; NULL: no probe (or decided, for non-streams) */
    spill_facts *facts;  /* owned copy of the job's */
    cJSON *esc_body;     /* the cloud body for an escalation; owned until started */
    bool esc_native, esc_redact;
    cloud_call *esc;     /* the escalation's call, until it has text (then cc) or failed */
    bool detached;       /* under mu: the engine's request was given up, its tokens dropped */
};

typedef struct gen_req gen_req;

/* ---- reference counting and the ledger ------------------------------------------------ */

static void gen_record(gen_req *g) {
    srv *s = g->s;
    if (g->cc) {
        const sw_cloud_result *res = NULL;
        sw_status st = cloud_call_done(g->cc) ? cloud_call_result(g->cc, &res, NULL) : SW_E_CANCELLED;
        const char *model = res && res->model[0] ? res->model : sw_cloud_model(s->cloud);
        srv_ledger_add(s, g->o.id, g->route, g->reason, model, res ? res->prompt_tokens : 0,
                       res ? res->completion_tokens : 0, g->t_start,
                       st != SW_OK || g->cancelled != CANCEL_NONE, g->cc, g->route_score);
        return;
    }
    bool ok = !g->lost && (g->finish == SW_FINISH_STOP || g->finish == SW_FINISH_LENGTH);
    srv_ledger_add(s, g->o.id, g->route, g->reason, s->model_id, g->usage.prompt_tokens,
                   g->usage.completion_tokens, g->t_start, !ok, NULL, g->route_score);
}

/* A shadowed local answer is complete: ask the cloud in the background. */
static void gen_shadow(gen_req *g) {
    bool ok = !g->lost && !g->cancelled &&
              (g->finish == SW_FINISH_STOP || g->finish == SW_FINISH_LENGTH);
    if (ok) {
        srv_shadow_start(g->s, g->shadow_body, g->shadow_native, g->shadow_query,
                         g->text.p ? g->text.p : "",
                         g->shadow_query, g->usage.prompt_tokens, g->h_last, g->h_mean, g->n_embd);
    } else {
        cJSON_Delete(g->shadow_body);
    }
    g->shadow_body = NULL;
}

static void gen_free(gen_req *g) {
    if (g->record) gen_record(g);
    if (g->shadow_body) gen_shadow(g);
    free(g->shadow_query);
    free(g->h_last);
    free(g->h_mean);
    for (size_t i = 0; i < g->n_q; i++) free(g->q[i].text);
    free(g->q);
    for (size_t i = 0; i < g->n_held; i++) free(g->held[i].text);
    free(g->held);
    free(g->final_text);
    cloud_call_unref(g->cc);
    cloud_call_unref(g->esc);
    cJSON_Delete(g->esc_body);
    sw_monitor_free(g->mon);
    free(g->facts);
    free(g->spillway);
    sbuf_free(&g->out);
    sbuf_free(&g->text);
    srv_tool_parser_free(g->tp);
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
    if (ev->type == SW_EVENT_TOKEN) sw_sleep_s(g->s->test_token_delay_s);
    double now = sw_time_s();
    if (ev->type == SW_EVENT_HIDDEN) {
        float *hl = NULL, *hm = NULL;
        size_t nb = (size_t)ev->n_embd * sizeof(float);
        if (ev->hidden_last && (hl = malloc(nb))) memcpy(hl, ev->hidden_last, nb);
        if (ev->hidden_mean && (hm = malloc(nb))) memcpy(hm, ev->hidden_mean, nb);
        pthread_mutex_lock(&g->mu);
        g->h_last = hl;
        g->h_mean = hm;
        g->n_embd = ev->n_embd;
        g->hidden_seen = true;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        return;
    }
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
        if (g->detached) { /* the stream went to the cloud: nobody will read this */
            free(text);
            pthread_mutex_unlock(&g->mu);
            return;
        }
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
    if (ev->type != SW_EVENT_FINAL) return; /* hidden states: not asked for here */
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
    if (g->cc) {
        cloud_call_cancel(g->cc);
        return;
    }
    if (g->esc) cloud_call_cancel(g->esc); /* an escalation still racing the local answer */
    sw_engine_cancel(g->s->engine, g->id);
}

/* Wait up to one slice for events and take them. *final is set when the
 * final event is among what was taken (it is processed after the tokens). */
void srv_cond_wait_s(pthread_cond_t *cv, pthread_mutex_t *mu, double s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(s * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(cv, mu, &ts);
}

/* Under g->mu: wait one slice for a signal from the callback. */
static void wait_slice(gen_req *g) { srv_cond_wait_s(&g->cv, &g->mu, WAIT_SLICE_S); }

static void gen_take(gen_req *g, ev_item **items, size_t *n, size_t *cap, bool *final) {
    *n = 0;
    *final = false;
    pthread_mutex_lock(&g->mu);
    if (g->n_q == 0 && !g->done) wait_slice(g);
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

/* The error for a request cancelled by the server (shutdown or deadline). */
static void cancel_error(const gen_req *g, srv_error *e) {
    if (g->cancelled == CANCEL_TIMEOUT)
        srv_error_set(e, 504, "timeout_error", "request_timeout", NULL,
                      "the request exceeded the server's timeout of %.0f s (--timeout)",
                      g->s->cfg.timeout_s);
    else if (g->cancelled == CANCEL_CLIENT)
        srv_error_set(e, 499, "invalid_request_error", "client_closed", NULL,
                      "the client closed the connection");
    else
        srv_error_set(e, 503, "server_error", "shutting_down", NULL,
                      "the request was cancelled: the server is shutting down");
}

/* The error to report for a request that did not end with stop/length. */
static bool gen_error(const gen_req *g, srv_error *e) {
    if (g->lost) {
        srv_error_set(e, 500, "server_error", NULL, NULL,
                      "out of memory while streaming the completion");
        return true;
    }
    switch (g->finish) {
    case SW_FINISH_STOP:
    case SW_FINISH_LENGTH: return false;
    case SW_FINISH_CANCELLED:
        if (g->cancelled == CANCEL_TIMEOUT) cancel_error(g, e);
        else /* shutdown, or the engine itself going away */
            srv_error_set(e, 503, "server_error", "shutting_down", NULL,
                          "the request was cancelled: the server is shutting down");
        return true;
    default:
        srv_error_set(e, 500, "server_error", NULL, NULL, "generation failed: %s",
                      g->final_msg[0] ? g->final_msg : "unknown error");
        return true;
    }
}

/* The outcome of a local generation that ended with stop or length: an
 * answer that stopped with tool calls ends with tool_calls. */
static srv_result local_result(gen_req *g) {
    srv_result r = {.finish = g->finish == SW_FINISH_LENGTH ? SRV_FINISH_LENGTH : SRV_FINISH_STOP,
                    .usage = g->usage};
    /* the engine names the stop string that matched (empty for an end token) */
    if (g->finish == SW_FINISH_STOP && g->final_msg[0]) r.stop_sequence = g->final_msg;
    if (g->tp) {
        r.n_calls = srv_tool_parser_calls(g->tp, &r.calls);
        if (r.n_calls && r.finish == SRV_FINISH_STOP) r.finish = SRV_FINISH_TOOL_CALLS;
        if (srv_tool_parser_failed(g->tp)) g->lost = true;
    }
    return r;
}

/* What the tool-call parser decides goes to the stream as text and as
 * tool_calls deltas, or (whole responses) into the text. */
static void sink_text(void *user, const char *t, size_t n) {
    gen_req *g = user;
    if (g->stream) g->o.w->stream_text(&g->o, &g->out, t, n, NULL);
    else sbuf_add(&g->text, t, n);
}

static void sink_call(void *user, size_t index, const char *id, const char *name, const char *args, size_t n) {
    gen_req *g = user;
    if (g->stream) g->o.w->stream_tool_call(&g->o, &g->out, index, id, name, args, n);
}

static void tools_feed(gen_req *g, const char *t, size_t n, bool last) {
    srv_tool_sink sink = {g, sink_text, sink_call};
    srv_tool_parser_feed(g->tp, t, n, &sink);
    if (last) srv_tool_parser_finish(g->tp, &sink);
}

/* ---- writing the stream ---------------------------------------------------------------- */

static void stream_token(gen_req *g, const ev_item *it) {
    if (g->tp) {
        tools_feed(g, it->text, it->text_len, false);
        return;
    }
    if (it->text_len == 0 && !g->o.logprobs) return; /* held back: nothing to say yet */
    g->o.w->stream_text(&g->o, &g->out, it->text, it->text_len, &it->tok);
}

/* The opening of a stream: the assistant role (chat), the echoed prompt
 * (completions), the message (Anthropic). */
static void stream_open(gen_req *g) { g->o.w->stream_start(&g->o, &g->out); }

/* A probed stream repeats its final "spillway" object on its closing event
 * (the OpenAI chunk with finish_reason, Anthropic's message_delta). */
static void final_spillway(gen_req *g) {
    if (g->facts) g->o.spillway = g->spillway;
}

static void stream_final(gen_req *g) {
    srv_error e;
    /* the flushed text belongs to tokens already reported: no logprobs */
    if (g->tp) tools_feed(g, g->final_text ? g->final_text : "", g->final_len, true);
    else if (g->final_len > 0) g->o.w->stream_text(&g->o, &g->out, g->final_text, g->final_len, NULL);
    final_spillway(g);
    if (gen_error(g, &e)) {
        g->o.w->stream_error(&g->o, &g->out, &e);
    } else {
        srv_result r = local_result(g);
        g->o.w->stream_finish(&g->o, &g->out, &r);
    }
    g->out_done = true;
}

/* Text from the cloud on its way to the client, appended to dst: the one
 * place a cloud answer's text and its tool calls' arguments pass, streamed
 * or whole. */
static void cloud_text(gen_req *g, sbuf *dst, const char *text, size_t len) {
    (void)g;
    sbuf_add(dst, text, len);
}

/* Pieces of a streamed cloud answer into the stream, in order; frees them. */
static void cloud_emit(gen_req *g, cloud_piece *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        sbuf t = {0};
        cloud_text(g, &t, p[i].data.p ? p[i].data.p : "", p[i].data.n);
        if (p[i].tool < 0)
            g->o.w->stream_text(&g->o, &g->out, t.p ? t.p : "", t.n, NULL);
        else
            g->o.w->stream_tool_call(&g->o, &g->out, (size_t)p[i].tool, p[i].id, p[i].name,
                                     t.p ? t.p : "", t.n);
        if (t.oom) g->out.oom = true;
        sbuf_free(&t);
    }
    cloud_pieces_free(p, n);
}

/* A cloud stream is over: its finish, usage, or the error. */
static void cloud_stream_final(gen_req *g) {
    const sw_cloud_result *res;
    const sw_err *err;
    sw_status st = cloud_call_result(g->cc, &res, &err);
    final_spillway(g);
    if (st == SW_OK) {
        srv_result r = {
            .finish = srv_finish_parse(res->finish_reason[0] ? res->finish_reason : g->cloud_finish),
            .stop_sequence = cloud_call_stop_sequence(g->cc),
            .usage = {res->prompt_tokens, res->completion_tokens, 0}};
        g->o.w->stream_finish(&g->o, &g->out, &r);
    } else {
        srv_error e;
        if (g->cancelled) cancel_error(g, &e);
        else
            srv_error_set(&e, res->client_status ? res->client_status : 502,
                          res->error_type[0] ? res->error_type : "upstream_error",
                          res->error_type[0] ? res->error_type : "upstream_error", NULL,
                          "the cloud stream failed: %s", err->msg);
        g->o.w->stream_error(&g->o, &g->out, &e);
    }
    g->out_done = true;
}

/* Take whatever the cloud has produced into the stream. */
static void cloud_stream_step(gen_req *g) {
    cloud_piece *p = NULL;
    size_t n = 0;
    bool done = cloud_call_take(g->cc, WAIT_SLICE_S, &p, &n, g->cloud_finish, sizeof g->cloud_finish);
    cloud_emit(g, p, n);
    if (done) cloud_stream_final(g);
    else gen_checks(g);
}

static void stream_probe_step(gen_req *g, ev_item *items, size_t n, bool final);
static void stream_switch_step(gen_req *g);

/* MHD's content reader: hand out pending SSE bytes, waiting for more. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
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
        if (g->cc) {
            cloud_stream_step(g);
            continue;
        }
        if (g->esc) { /* escalated: the cloud's first text or failure decides */
            stream_switch_step(g);
            continue;
        }
        bool final;
        gen_take(g, &items, &n, &cap, &final);
        if (g->mon) { /* the probe window is open: its tokens are held */
            stream_probe_step(g, items, n, final);
            continue;
        }
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

/* Queue the SSE response over what g->out holds so far. */
static int stream_queue(srv_conn *sc, gen_req *g) {
    pthread_mutex_lock(&g->mu);
    g->refs++; /* the response's reference */
    pthread_mutex_unlock(&g->mu);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, g,
                                          stream_free);
    if (!resp) {
        gen_unref(g);
        srv_error e;
        srv_error_set(&e, 500, "server_error", NULL, NULL, "cannot create the response");
        return srv_respond_error(sc, &e);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    srv_add_response_headers(sc, resp);
    enum MHD_Result ret = MHD_queue_response(sc->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    sc->status = 200;
    sc->responded = true;
    return ret;
}

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

/* A token for the answer: streamed, or kept for the whole response. */
static void consume(gen_req *g, const ev_item *it) {
    if (g->stream) {
        stream_token(g, it);
        if (g->collect_text) sbuf_add(&g->text, it->text, it->text_len);
        return;
    }
    if (g->tp) tools_feed(g, it->text, it->text_len, false);
    else sbuf_add(&g->text, it->text, it->text_len);
    if (g->o.logprobs && !lps_push(g, &it->tok)) g->lost = true;
}

/* The final event's text and outcome. */
static void consume_final(gen_req *g) {
    if (g->stream) {
        if (g->collect_text) sbuf_add(&g->text, g->final_text ? g->final_text : "", g->final_len);
        stream_final(g);
        return;
    }
    if (g->tp) tools_feed(g, g->final_text ? g->final_text : "", g->final_len, true);
    else sbuf_add(&g->text, g->final_text ? g->final_text : "", g->final_len);
    if (g->text.oom) g->lost = true;
}

/* Block until the generation ends; false when the client went away. */
static bool collect(gen_req *g) {
    ev_item *items = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    while (!g->final_seen) {
        bool final;
        gen_take(g, &items, &n, &cap, &final);
        for (size_t i = 0; i < n; i++) {
            consume(g, &items[i]);
            free(items[i].text);
        }
        if (final) {
            g->final_seen = true;
            consume_final(g);
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
    srv_error e;
    if (!collect(g)) {
        srv_error_set(&e, 499, "invalid_request_error", "client_closed", NULL,
                      "the client closed the connection");
        return srv_respond_error(sc, &e);
    }
    if (gen_error(g, &e)) return srv_respond_error(sc, &e);
    srv_result r = local_result(g);
    r.text = g->text.p ? g->text.p : "";
    r.text_len = g->text.n;
    r.toks = g->lps;
    r.n_toks = g->n_lps;
    sbuf b = {0};
    g->o.w->response(&g->o, &b, &r);
    return srv_respond(sc, 200, sbuf_take(&b), NULL);
}

/* A non-streaming cloud answer (a chat.completion), rewritten in our shape. */
static int respond_cloud_whole(srv_conn *sc, gen_req *g) {
    const sw_cloud_result *res;
    cloud_call_result(g->cc, &res, NULL);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res->response, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(c0, "stop_sequence");
    const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    const char *text = cJSON_IsString(content) ? content->valuestring : "";
    sbuf t = {0};
    cloud_text(g, &t, text, strlen(text));
    size_t n_calls = (size_t)cJSON_GetArraySize(tcs), k = 0;
    srv_tool_call *calls = n_calls ? calloc(n_calls, sizeof *calls) : NULL;
    sbuf *args = n_calls ? calloc(n_calls, sizeof *args) : NULL;
    bool oom = t.oom || (n_calls && (!calls || !args));
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs) {
        if (oom) break;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const char *as = cJSON_IsString(a) ? a->valuestring : "{}";
        cloud_text(g, &args[k], as, strlen(as));
        calls[k] = (srv_tool_call){.id = cJSON_IsString(id) ? id->valuestring : "",
                                   .name = cJSON_IsString(name) ? name->valuestring : "",
                                   .arguments = args[k].p ? args[k].p : ""};
        oom |= args[k].oom;
        k++;
    }
    srv_result r = {.finish = srv_finish_parse(res->finish_reason),
                    .stop_sequence = cJSON_IsString(stop) ? stop->valuestring : NULL,
                    .usage = {res->prompt_tokens, res->completion_tokens, 0},
                    .text = t.p ? t.p : "",
                    .text_len = t.n,
                    .calls = calls,
                    .n_calls = k};
    sbuf b = {0};
    if (!oom) g->o.w->response(&g->o, &b, &r);
    if (oom) b.oom = true;
    for (size_t i = 0; i < k; i++) sbuf_free(&args[i]);
    free(args);
    free(calls);
    sbuf_free(&t);
    return srv_respond(sc, 200, sbuf_take(&b), NULL);
}

/* ---- the routes -------------------------------------------------------------------------- */

/* What the "spillway" object says besides the route and the reason, gathered
 * along the routes a request tries. */
struct spill_facts {
    char message[sizeof ((sw_route_decision *)0)->message]; /* the decision's */
    bool have_mon;          /* the monitor ran: its numbers go into the metadata */
    sw_monitor_stats mon;
    double route_score;     /* NaN: not scored */
    /* a cloud call that failed before an answer fell back to local */
    bool cloud_failed;
    int cloud_status;
    char cloud_type[32];
    char cloud_msg[SW_ERR_LEN];
    int cloud_attempts;
    bool probing;           /* a stream's opening, before the probe's verdict */
};

static void facts_cloud_failed(spill_facts *f, int status, const char *type, const char *msg,
                               int attempts) {
    f->cloud_failed = true;
    f->cloud_status = status;
    snprintf(f->cloud_type, sizeof f->cloud_type, "%s", type);
    snprintf(f->cloud_msg, sizeof f->cloud_msg, "%s", msg);
    f->cloud_attempts = attempts;
}

/* The handler's state for one request, across the routes it tries. */
typedef struct job {
    srv_request r;
    int32_t *ids;           /* the prompt in local tokens; owned */
    size_t n_ids;
    char *echo;             /* completions echo: the prompt text; owned */
    size_t echo_len;
    char id_str[48];
    int64_t created;
    double deadline;
    sw_route_decision d;
    sw_grammar *grammar;    /* the local answer's output constraint; owned; NULL: none */
    spill_facts f;
    sw_route_reason escalate_reason; /* why a local try was given up */
} job;

static void submit_error(srv *s, const srv_request *r, int32_t n_prompt, sw_status st,
                         const sw_err *err, srv_error *e) {
    const char *what = r->wire == SRV_WIRE_OAI_COMPLETIONS ? "prompt" : "messages";
    switch (st) {
    case SW_E_RANGE:
        srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded",
                      n_prompt < s->n_ctx ? "max_tokens" : what,
                      "this model's maximum context length is %d tokens: %s", s->n_ctx,
                      err->msg);
        break;
    case SW_E_BUSY:
        srv_error_set(e, 429, "rate_limit_error", "queue_full", NULL,
                      "the server is busy (%s); retry later", err->msg);
        break;
    case SW_E_INVALID_ARG:
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", NULL, "%s", err->msg);
        break;
    case SW_E_CANCELLED:
        srv_error_set(e, 503, "server_error", "shutting_down", NULL, "%s", err->msg);
        break;
    default:
        srv_error_set(e, 500, "server_error", NULL, NULL, "cannot start the generation: %s",
                      err->msg);
    }
}

static int respond_oom(srv_conn *sc) {
    srv_error e;
    srv_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
    return srv_respond_error(sc, &e);
}

static gen_req *gen_new(srv_conn *sc, const job *j, sw_route route, sw_route_reason reason) {
    srv *s = sc->s;
    gen_req *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->s = s;
    g->refs = 1;
    g->conn = sc->conn;
    g->stream = j->r.stream;
    snprintf(g->id_str, sizeof g->id_str, "%s", j->id_str);
    g->o = (srv_out){
        .w = srv_writer_for(j->r.wire),
        .id = g->id_str,
        .created = j->created,
        .model = route == SW_ROUTE_CLOUD ? sw_cloud_model(s->cloud) : s->model_id,
        .fingerprint = s->fingerprint,
        .tok = s->tok,
        /* The providers' answers carry no logprobs: a cloud answer has null. */
        .logprobs = route == SW_ROUTE_LOCAL && j->r.logprobs,
        .include_usage = j->r.include_usage,
        .prompt_tokens = (int32_t)j->n_ids,
        .echo = j->echo,
        .echo_len = j->echo_len,
        .text_offset = j->echo_len,
        .block = -1,
    };
    g->deadline = j->deadline;
    g->route = route;
    g->reason = reason;
    g->record = true;
    g->t_start = sc->t_start;
    g->route_score = j->f.route_score;
    return g;
}

/* Build the "spillway" object for the route that answers (or, probing, the
 * route that answers so far); a stream attaches it to its next event. */
static void set_spillway(gen_req *g, const spill_facts *f) {
    srv *s = g->s;
    char msg[320];
    const char *m = f->message;
    if (g->reason == SW_REASON_LOW_CONFIDENCE && f->mon.failed_check &&
        !strcmp(f->mon.failed_check, "cloud_share")) {
        snprintf(msg, sizeof msg,
                 "the probe window's score %.3f is in the top %.0f%% of recent answers "
                 "(monitor.cloud_share): asked the cloud",
                 f->mon.score, 100 * sw_share_ctl_share(s->share));
        m = msg;
    } else if (g->reason == SW_REASON_LOW_CONFIDENCE) {
        snprintf(msg, sizeof msg,
                 "the local model's confidence was low in the probe window (%s): asked the cloud",
                 f->mon.failed_check && f->mon.failed_check[0] ? f->mon.failed_check : "?");
        m = msg;
    } else if (g->reason == SW_REASON_CLOUD_FAILED) {
        snprintf(msg, sizeof msg, "the cloud call failed (%s, HTTP %d): answered locally",
                 f->cloud_type[0] ? f->cloud_type : "error", f->cloud_status);
        m = msg;
    } else if (f->probing) {
        m = "answering locally; the probe window is judging the first tokens (a later "
            "\"spillway\" object has the final route)";
    }
    if (g->reason == SW_REASON_ROUTE_SCORE) {
        snprintf(msg, sizeof msg,
                 "route_score %.3f is in the top %.0f%% of recent auto-routed requests "
                 "(--cloud-share): asked the cloud",
                 f->route_score, 100 * sw_share_ctl_share(s->share));
        m = msg;
    }
    srv_route_info ri = {.route = g->route, .reason = g->reason, .message = m,
                         .monitor = f->have_mon ? &f->mon : NULL,
                         .has_route_score = isfinite(f->route_score),
                         .route_score = f->route_score,
                         .probing = f->probing};
    if (g->cc) {
        ri.cloud_model = sw_cloud_model(s->cloud);
        ri.redacted_spans = cloud_call_redacted(g->cc, &ri.redacted_kinds);
        const sw_cloud_result *res = NULL;
        if (cloud_call_done(g->cc)) {
            cloud_call_result(g->cc, &res, NULL);
            ri.cloud_attempts = res->attempts;
        }
    }
    if (f->cloud_failed) {
        ri.cloud_error_status = f->cloud_status;
        ri.cloud_error_type = f->cloud_type;
        ri.cloud_error = f->cloud_msg;
        if (!g->cc) ri.cloud_attempts = f->cloud_attempts;
    }
    free(g->spillway);
    g->spillway = srv_spillway_json(s, &ri);
    g->o.spillway = g->spillway;
}

static bool held_push(gen_req *g, ev_item *it) {
    if (g->n_held == g->cap_held) {
        size_t cap = g->cap_held ? 2 * g->cap_held : 32;
        ev_item *h = realloc(g->held, cap * sizeof *h);
        if (!h) return false;
        g->held = h;
        g->cap_held = cap;
    }
    g->held[g->n_held++] = *it;
    return true;
}

/* The probe window: take tokens, feed the monitor and hold them back until
 * it has a verdict (or the answer ended, or the request was cancelled, which
 * the regular path then reports). */
/* Feed taken tokens to the monitor (while it is undecided) and hold them
 * back; takes their texts. Returns the verdict after them. */
static sw_monitor_verdict hold_items(gen_req *g, sw_monitor *m, ev_item *items, size_t n) {
    sw_monitor_verdict v = sw_monitor_verdict_get(m);
    for (size_t i = 0; i < n; i++) {
        if (v == SW_MONITOR_PROBING)
            v = sw_monitor_feed(m, items[i].tok.logprob, items[i].tok.entropy, NULL, 0);
        if (!held_push(g, &items[i])) {
            free(items[i].text);
            g->lost = true;
        }
    }
    return v;
}

static sw_monitor_verdict probe(gen_req *g, sw_monitor *m) {
    ev_item *items = NULL;
    size_t n = 0, cap = 0;
    sw_monitor_verdict v = SW_MONITOR_PROBING;
    while (v == SW_MONITOR_PROBING) {
        bool final;
        gen_take(g, &items, &n, &cap, &final);
        v = hold_items(g, m, items, n);
        if (final) {
            g->final_seen = true;
            g->final_pending = true;
            if (v == SW_MONITOR_PROBING) v = sw_monitor_finish(m);
            break;
        }
        gen_checks(g);
        if (g->cancelled) break;
    }
    free(items);
    return v;
}

/* The monitor passed: the held tokens go out first. */
static void release_held(gen_req *g) {
    for (size_t i = 0; i < g->n_held; i++) {
        consume(g, &g->held[i]);
        free(g->held[i].text);
    }
    g->n_held = 0;
    if (g->final_pending) {
        g->final_pending = false;
        consume_final(g);
    }
}

/* Hand the request to the engine: everything the local model needs from the
 * internal request (sampling, limits, stops, output constraints). */
static sw_status local_submit(srv *s, const job *j, gen_req *g, sw_err *err) {
    const srv_request *r = &j->r;
    sw_request req = {0};
    req.prompt = j->ids;
    req.n_prompt = (int32_t)j->n_ids;
    req.sampling = r->sp;
    req.n_top_logprobs = r->logprobs ? r->top_logprobs : 0;
    req.max_tokens = r->max_tokens;
    req.stop_strings = (const char *const *)r->stop;
    req.n_stop_strings = r->n_stop;
    req.ignore_eos = r->ignore_eos;
    req.json_object = r->format.type == SRV_FORMAT_JSON_OBJECT;
    req.grammar = j->grammar;
    if (j->grammar && srv_tools_active(r)) /* its call markers, when they are control tokens */
        req.n_text_ids = (int32_t)srv_tools_special_ids(s, req.text_ids, SW_MAX_TEXT_IDS);
    req.hidden = sw_rtr_engine_hidden(g->hidden_want);
    if (g->hidden_want & SW_RTR_HIDDEN_QUERY) { /* the mean over the query's tokens */
        char *query = srv_query_text(r);
        int32_t span[2];
        sw_rtr_query_span(s->tok, j->ids, (int32_t)j->n_ids, query, span);
        free(query);
        req.hidden_begin = span[0];
        req.hidden_end = span[1];
    }
    req.on_event = on_event;
    req.user = g;
    return sw_engine_submit(s->engine, &req, &g->id, err);
}

/* The local answer's constraint, compiled once per request (a fall-back
 * keeps it): tool calls (toolcall.c) when the request may call tools, else
 * its output format (constrain.c). A tool or schema we cannot enforce is the
 * client's 400. */
static bool local_supported(srv *s, job *j, srv_error *e) {
    const srv_request *r = &j->r;
    if (j->grammar) return true;
    if (srv_tools_active(r)) {
        if (r->format.type != SRV_FORMAT_TEXT) {
            srv_error_set(e, 400, "invalid_request_error", "unsupported_value", "response_format",
                          "an output format together with tools is not supported on the local "
                          "model: ask for one or the other");
            return false;
        }
        return srv_tools_grammar(s, r, &j->grammar, e);
    }
    return srv_format_grammar(s, r, &j->grammar, e);
}

/* Wait for the prompt's hidden states, which come at the end of the prefill,
 * just before the first token. false when the request ended or was
 * cancelled first. */
static bool wait_hidden(gen_req *g) {
    for (;;) {
        pthread_mutex_lock(&g->mu);
        if (!g->hidden_seen && !g->done) wait_slice(g);
        bool seen = g->hidden_seen, done = g->done;
        pthread_mutex_unlock(&g->mu);
        if (seen) return true;
        if (done) return false;
        gen_checks(g);
        if (g->cancelled) return false;
    }
}

static char *prompt_text(srv *s, const job *j);

/* The learned router on a local auto request: score it from its hidden
 * states, and true when the budget sends it to the cloud instead. Otherwise
 * it may be picked for shadow sampling. */
static bool learned_route(srv *s, job *j, gen_req *g) {
    char *query = srv_query_text(&j->r);
    if (!query) return false;
    bool cloud = false;
    if (!g->hidden_want || wait_hidden(g)) {
        pthread_mutex_lock(&g->mu); /* the vectors are set once, before hidden_seen */
        const float *hl = g->h_last, *hm = g->h_mean;
        int32_t ne = g->n_embd;
        pthread_mutex_unlock(&g->mu);
        j->f.route_score = srv_learned_score(s, query, (int32_t)j->n_ids, hl, hm, ne);
        g->route_score = j->f.route_score;
        if (j->d.may_escalate && srv_learned_to_cloud(s, j->f.route_score)) cloud = true;
        else if (j->d.may_escalate && isfinite(j->f.route_score) && j->d.pii_kinds == 0 &&
                 srv_shadow_pick(s)) { /* never personal data, even redacted */
            bool cmpl = j->r.wire == SRV_WIRE_OAI_COMPLETIONS;
            char *ptext = cmpl ? prompt_text(s, j) : NULL;
            bool native = false;
            g->shadow_body = !cmpl || ptext ? srv_cloud_body(s, &j->r, ptext, &native) : NULL;
            g->shadow_native = native;
            free(ptext);
            g->shadow_query = query;
            query = NULL;
            g->collect_text = g->stream;
        }
    }
    free(query);
    return cloud;
}

/* A probe window's verdict is in: its numbers go into the metadata (and its
 * score, when self-calibrating, is the request's route_score). */
static void probe_facts(gen_req *g, spill_facts *f, const sw_monitor *m) {
    sw_monitor_stats_get(m, &f->mon);
    f->have_mon = true;
    if (isfinite(f->mon.score)) f->route_score = g->route_score = f->mon.score;
}

/* ---- a stream under the probe window ---- */

/* The window's verdict on a probed stream: pass releases the held text; an
 * escalation starts the cloud call, and the local answer keeps going (held)
 * until the cloud has text or has failed (stream_switch_step). */
static void stream_probe_decided(gen_req *g, sw_monitor_verdict v) {
    probe_facts(g, g->facts, g->mon);
    sw_monitor_free(g->mon);
    g->mon = NULL;
    g->facts->probing = false;
    if (v == SW_MONITOR_ESCALATE && !g->cancelled && !g->lost) {
        sw_err err = {{0}};
        cJSON *body = g->esc_body;
        g->esc_body = NULL;
        if (cloud_call_start(g->s, body, g->esc_native, true, g->esc_redact, &g->esc, &err) ==
            SW_OK)
            return;
        facts_cloud_failed(g->facts, 500, "internal_error", err.msg, 0);
        g->reason = SW_REASON_CLOUD_FAILED;
    }
    set_spillway(g, g->facts);
    release_held(g);
}

/* Tokens of a probed stream while its window is open: into the monitor, held. */
static void stream_probe_step(gen_req *g, ev_item *items, size_t n, bool final) {
    sw_monitor_verdict v = hold_items(g, g->mon, items, n);
    if (final) {
        g->final_seen = true;
        g->final_pending = true;
        if (v == SW_MONITOR_PROBING) v = sw_monitor_finish(g->mon);
    }
    if (v != SW_MONITOR_PROBING) stream_probe_decided(g, v);
    else gen_checks(g);
}

/* An escalated stream waits for the cloud: its first text commits the stream
 * to it (the local request is cancelled, its held text dropped unseen); a
 * failure before any text keeps the local answer (reason cloud_failed). */
static void stream_switch_step(gen_req *g) {
    srv *s = g->s;
    cloud_piece *p = NULL;
    size_t n = 0;
    bool done = cloud_call_take(g->esc, WAIT_SLICE_S, &p, &n, g->cloud_finish,
                                sizeof g->cloud_finish);
    const sw_cloud_result *res = NULL;
    const sw_err *cerr = NULL;
    sw_status st = done ? cloud_call_result(g->esc, &res, &cerr) : SW_OK;
    if (st == SW_OK && (n || g->cloud_finish[0] || done)) {
        pthread_mutex_lock(&g->mu);
        g->detached = true;
        bool local_done = g->done;
        pthread_mutex_unlock(&g->mu);
        if (!local_done) sw_engine_cancel(s->engine, g->id);
        for (size_t i = 0; i < g->n_held; i++) free(g->held[i].text);
        g->n_held = 0;
        g->final_pending = false;
        g->cc = g->esc;
        g->esc = NULL;
        g->route = SW_ROUTE_CLOUD;
        g->reason = SW_REASON_LOW_CONFIDENCE;
        g->o.model = sw_cloud_model(s->cloud);
        g->o.logprobs = false; /* the provider's answer carries none */
        set_spillway(g, g->facts);
        cloud_emit(g, p, n);
        if (done) cloud_stream_final(g);
        return;
    }
    cloud_pieces_free(p, n);
    if (!done) {
        gen_checks(g);
        return;
    }
    facts_cloud_failed(g->facts, res->client_status ? res->client_status : 502,
                       res->error_type[0] ? res->error_type : "upstream_error", cerr->msg,
                       res->attempts);
    cloud_call_unref(g->esc);
    g->esc = NULL;
    g->reason = SW_REASON_CLOUD_FAILED;
    set_spillway(g, g->facts);
    release_held(g);
}

/* A streaming request under the probe window: the opening event (the role
 * chunk, message_start) goes out at once with route local and "probing":
 * true (the header says "; probing" too); only the window's text waits for
 * the verdict, in the stream reader. What an escalation needs is prepared
 * now, since the handler is gone when it comes. */
static int stream_probed(srv_conn *sc, job *j, gen_req *g) {
    srv *s = sc->s;
    sw_err err = {{0}};
    if (sw_monitor_create(&s->route.monitor, SW_MONITOR_WINDOW, &g->mon, &err) != SW_OK) {
        sw_log(SW_LOG_WARN, "monitor: %s; answering without it", err.msg);
    } else if (!(g->facts = malloc(sizeof *g->facts))) {
        sw_monitor_free(g->mon);
        g->mon = NULL;
    } else {
        sw_monitor_set_budget(g->mon, s->share);
        *g->facts = j->f;
        g->facts->probing = true;
        bool cmpl = j->r.wire == SRV_WIRE_OAI_COMPLETIONS;
        char *ptext = cmpl ? prompt_text(s, j) : NULL;
        g->esc_body = !cmpl || ptext ? srv_cloud_body(s, &j->r, ptext, &g->esc_native) : NULL;
        free(ptext);
        g->esc_redact = j->d.redact;
        size_t hl = strlen(sc->route_hdr);
        snprintf(sc->route_hdr + hl, sizeof sc->route_hdr - hl, "; probing");
    }
    set_spillway(g, g->facts ? g->facts : &j->f);
    stream_open(g);
    return stream_queue(sc, g);
}

/* Answer locally. *escalate: the monitor distrusted the answer, or the
 * learned router's score is in the cloud budget (j->escalate_reason says
 * which); nothing was sent and the local request is cancelled; the caller
 * asks the cloud. learn: score this auto request with the learned router. */
static int run_local(srv_conn *sc, job *j, sw_route_reason reason, bool monitor, bool learn,
                     bool *escalate) {
    srv *s = sc->s;
    *escalate = false;
    srv_route_set_header(sc, SW_ROUTE_LOCAL, reason);
    srv_error e;
    if (!local_supported(s, j, &e)) {
        srv_ledger_add(s, j->id_str, SW_ROUTE_LOCAL, reason, s->model_id, (int64_t)j->n_ids, 0,
                       sc->t_start, true, NULL, NAN);
        return srv_respond_error(sc, &e);
    }
    gen_req *g = gen_new(sc, j, SW_ROUTE_LOCAL, reason);
    if (!g) return respond_oom(sc);
    if (srv_tools_active(&j->r) &&
        !(g->tp = srv_tool_parser_create(s, j->r.tool_choice == SRV_TOOL_ANY || j->r.tool_choice == SRV_TOOL_NAMED,
                                         j->r.wire == SRV_WIRE_ANTHROPIC ? "toolu_" : "call_"))) {
        gen_free(g);
        return respond_oom(sc);
    }
    g->refs = 2; /* the engine's reference, taken before it can call back */
    if (learn) g->hidden_want = srv_learned_hidden(s);
    sw_err err = {{0}};
    sw_status st = local_submit(s, j, g, &err);
    if (st != SW_OK) {
        submit_error(s, &j->r, (int32_t)j->n_ids, st, &err, &e);
        gen_free(g); /* the ledger line says error */
        return srv_respond_error(sc, &e);
    }
    sc->gen = g;
    if (learn && learned_route(s, j, g)) {
        g->record = false; /* the cloud's answer is the request's line */
        sc->gen = NULL;
        srv_gen_release(g);
        j->escalate_reason = SW_REASON_ROUTE_SCORE;
        *escalate = true;
        return MHD_YES;
    }
    if (monitor && g->stream) return stream_probed(sc, j, g);
    if (monitor) {
        sw_monitor *m = NULL;
        if (sw_monitor_create(&s->route.monitor, SW_MONITOR_WINDOW, &m, &err) == SW_OK) {
            sw_monitor_set_budget(m, s->share);
            sw_monitor_verdict v = probe(g, m);
            probe_facts(g, &j->f, m);
            sw_monitor_free(m);
            if (v == SW_MONITOR_ESCALATE && !g->cancelled && !g->lost) {
                g->record = false; /* the cloud's answer is the request's line */
                sc->gen = NULL;
                srv_gen_release(g);
                *escalate = true;
                return MHD_YES;
            }
        } else {
            sw_log(SW_LOG_WARN, "monitor: %s; answering without it", err.msg);
        }
    }
    set_spillway(g, &j->f);
    if (!g->stream) {
        release_held(g);
        return respond_whole(sc, g);
    }
    /* Streaming: the first chunk (the assistant role, or the echoed prompt)
     * goes out at once so clients and proxies see the stream open. */
    stream_open(g);
    release_held(g);
    return stream_queue(sc, g);
}

/* The prompt of a completions request as text, for the cloud. */
static char *prompt_text(srv *s, const job *j) {
    if (j->r.prompt) return strdup(j->r.prompt);
    char *text = NULL;
    sw_err err = {{0}};
    if (sw_detokenize(s->tok, j->ids, j->n_ids, false, &text, &err) != SW_OK) return NULL;
    return text;
}

/* Answer from the cloud. *fell_back: the call failed before any text, the
 * decision allows a local answer, and nothing was sent; the caller answers
 * locally (reason cloud_failed). */
static int run_cloud(srv_conn *sc, job *j, sw_route_reason reason, bool fallback,
                     bool *fell_back) {
    srv *s = sc->s;
    *fell_back = false;
    srv_route_set_header(sc, SW_ROUTE_CLOUD, reason);
    gen_req *g = gen_new(sc, j, SW_ROUTE_CLOUD, reason);
    if (!g) return respond_oom(sc);
    bool cmpl = j->r.wire == SRV_WIRE_OAI_COMPLETIONS, native = false;
    char *ptext = cmpl ? prompt_text(s, j) : NULL;
    cJSON *body = !cmpl || ptext ? srv_cloud_body(s, &j->r, ptext, &native) : NULL;
    free(ptext);
    sw_err err = {{0}};
    if (cloud_call_start(s, body, native, g->stream, j->d.redact, &g->cc, &err) != SW_OK) {
        g->record = false;
        gen_free(g);
        if (fallback) {
            facts_cloud_failed(&j->f, 500, "internal_error", err.msg, 0);
            *fell_back = true;
            return MHD_YES;
        }
        srv_ledger_add(s, j->id_str, SW_ROUTE_CLOUD, reason, sw_cloud_model(s->cloud), 0, 0,
                       sc->t_start, true, NULL, j->f.route_score);
        srv_error e;
        srv_error_set(&e, 500, "server_error", NULL, NULL, "%s", err.msg);
        return srv_respond_error(sc, &e);
    }
    sc->gen = g;
    /* Nothing is sent before the first text (streaming) or the whole answer,
     * so a failure until then can still become a local answer or a clean
     * error status. */
    cloud_piece *pend = NULL;
    size_t n_pend = 0;
    bool done;
    for (;;) {
        done = cloud_call_take(g->cc, WAIT_SLICE_S, &pend, &n_pend, g->cloud_finish,
                               sizeof g->cloud_finish);
        if (done || (g->stream && (n_pend || g->cloud_finish[0]))) break;
        gen_checks(g);
        if (g->cancelled) break;
    }
    srv_error e;
    if (g->cancelled) {
        cloud_pieces_free(pend, n_pend);
        cancel_error(g, &e);
        return srv_respond_error(sc, &e);
    }
    const sw_cloud_result *res = NULL;
    const sw_err *cerr = NULL;
    sw_status cst = done ? cloud_call_result(g->cc, &res, &cerr) : SW_OK;
    if (cst != SW_OK) {
        cloud_pieces_free(pend, n_pend);
        const char *type = res->error_type[0] ? res->error_type : "upstream_error";
        if (fallback) {
            facts_cloud_failed(&j->f, res->client_status ? res->client_status : 502, type,
                               cerr->msg, res->attempts);
            g->record = false;
            sc->gen = NULL;
            srv_gen_release(g);
            *fell_back = true;
            return MHD_YES;
        }
        /* explicit cloud, or an overflow that cannot run here: the
         * provider's failure is the answer (the ledger line says error) */
        srv_error_set(&e, res->client_status ? res->client_status : 502, type, type, NULL, "%s",
                      cerr->msg);
        sc->retry_after_s = res->retry_after_s;
        return srv_respond_error(sc, &e);
    }
    set_spillway(g, &j->f);
    if (!g->stream) {
        cloud_pieces_free(pend, n_pend);
        return respond_cloud_whole(sc, g);
    }
    stream_open(g);
    cloud_emit(g, pend, n_pend);
    if (done) cloud_stream_final(g);
    return stream_queue(sc, g);
}

/* ---- the handler ------------------------------------------------------------------------------ */

/* Parse body of the wire format into the internal request. */
static bool parse_request(srv_conn *sc, srv_wire wire, srv_request *r, srv_error *e) {
    int32_t n_vocab = (int32_t)sw_tokenizer_n_vocab(sc->s->tok);
    switch (wire) {
    case SRV_WIRE_OAI_CHAT:
    case SRV_WIRE_OAI_COMPLETIONS:
        return oai_parse_request(sc->body, sc->body_len, wire, n_vocab, r, e);
    case SRV_WIRE_ANTHROPIC:
        return anthropic_parse_request(sc->body, sc->body_len, false, r, e);
    default:
        srv_error_set(e, 500, "server_error", NULL, NULL, "no parser for this endpoint");
        return false;
    }
}

/* Parse, tokenize and decide; false with e filled when the request ends here. */
static bool prepare(srv_conn *sc, srv_wire wire, job *j, srv_error *e) {
    srv *s = sc->s;
    if (!parse_request(sc, wire, &j->r, e)) return false;
    if (!srv_conn_hints(sc, &j->r.hints)) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    if (!srv_model_name_ok(s, j->r.model)) {
        srv_model_not_found(s, j->r.model, e);
        return false;
    }
    srv_make_id(j->id_str, sizeof j->id_str, srv_writer_for(wire)->id_prefix);
    j->created = (int64_t)time(NULL);
    if (s->cfg.timeout_s > 0) j->deadline = sw_time_s() + s->cfg.timeout_s;
    if (!srv_prompt_tokens(s, &j->r, &j->ids, &j->n_ids, &j->echo, e)) return false;
    j->echo_len = j->echo ? strlen(j->echo) : 0;
    return srv_route_decide(s, &j->r, (int32_t)j->n_ids, &j->d, e);
}

int srv_handle_generate(srv_conn *sc, srv_wire wire) {
    srv *s = sc->s;
    job j;
    memset(&j, 0, sizeof j);
    j.f.route_score = NAN;
    j.escalate_reason = SW_REASON_LOW_CONFIDENCE;
    srv_error e;
    int ret;
    if (!prepare(sc, wire, &j, &e)) {
        ret = srv_respond_error(sc, &e);
        goto done;
    }
    snprintf(j.f.message, sizeof j.f.message, "%s", j.d.message);
    srv_route_set_header(sc, j.d.route, j.d.reason);
    if (j.d.route == SW_ROUTE_REJECT) {
        srv_route_reject_error(s, &j.d, &j.r, (int32_t)j.n_ids, &e);
        srv_ledger_add(s, j.id_str, SW_ROUTE_REJECT, j.d.reason, s->model_id, (int64_t)j.n_ids, 0,
                       sc->t_start, true, NULL, NAN);
        ret = srv_respond_error(sc, &e);
        goto done;
    }
    /* At most local (probe) -> cloud (low confidence) -> local (cloud failed). */
    sw_route route = j.d.route;
    sw_route_reason reason = j.d.reason;
    bool fallback = j.d.local_fallback;
    /* The learned router scores auto requests from the prefill and needs no
     * probe: with it, nothing is held back. */
    bool learn = s->rtr && j.d.route == SW_ROUTE_LOCAL && j.d.reason == SW_REASON_DEFAULT;
    bool monitor = j.d.may_escalate && s->route.monitor.enabled && !s->rtr;
    for (int hop = 0;; hop++) {
        bool again = false;
        if (route == SW_ROUTE_CLOUD) {
            ret = run_cloud(sc, &j, reason, fallback, &again);
            route = SW_ROUTE_LOCAL;
            reason = SW_REASON_CLOUD_FAILED;
        } else {
            ret = run_local(sc, &j, reason, monitor, learn, &again);
            route = SW_ROUTE_CLOUD;
            reason = j.escalate_reason;
            fallback = true;
        }
        monitor = learn = false;
        if (!again) break;
        if (hop >= 2) { /* cannot happen: only the first local try probes */
            srv_error_set(&e, 500, "server_error", NULL, NULL, "routing did not converge");
            ret = srv_respond_error(sc, &e);
            break;
        }
    }
done:
    srv_request_free(&j.r);
    sw_grammar_free(j.grammar);
    free(j.ids);
    free(j.echo);
    return ret;
}

void srv_gen_release(gen_req *g) {
    /* The client is gone or the response is out; either way the engine (or
     * the provider) need not keep working on it. */
    if (g->cc) {
        cloud_call_cancel(g->cc);
    } else {
        pthread_mutex_lock(&g->mu);
        bool done = g->done;
        pthread_mutex_unlock(&g->mu);
        if (!done) sw_engine_cancel(g->s->engine, g->id);
        if (g->esc) cloud_call_cancel(g->esc);
    }
    gen_unref(g);
}
