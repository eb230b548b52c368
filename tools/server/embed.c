/* embed.c — POST /v1/embeddings in OpenAI's shape, and the default embedding
 * source: the served model's mean-pooled final hidden states from the engine
 * (embed.h). */
#include "embed.h"

#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_check.h"
#include "oai.h"
#include "spill.h"

#define WAIT_SLICE_S 0.1
#define CANCEL_GRACE_S 30.0

void srv_l2_normalize(float *v, int32_t n) {
    double ss = 0;
    for (int32_t i = 0; i < n; i++) ss += (double)v[i] * v[i];
    if (ss <= 0) return;
    double inv = 1.0 / sqrt(ss);
    for (int32_t i = 0; i < n; i++) v[i] = (float)(v[i] * inv);
}

void srv_embedder_free(srv_embedder *em) {
    if (em && em->free) em->free(em);
}

/* ---- the engine source ------------------------------------------------------------ */

/* One request's inputs on their way through the engine. Reference counted:
 * the handler holds one reference and every submitted input one (dropped by
 * its final event), so the engine never writes into freed memory even when
 * the handler gives up waiting. */
typedef struct emb_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    size_t n, finished;
    int32_t dim;
    float *out;               /* [n * dim] */
    bool *got;                /* [n]: the hidden state arrived */
    sw_finish_reason failed;  /* SW_FINISH_NONE, or the first bad final */
    char msg[SW_ERR_LEN];
} emb_batch;

typedef struct emb_slot {
    emb_batch *b;
    size_t i;
} emb_slot;

static void batch_unref(emb_batch *b) {
    pthread_mutex_lock(&b->mu);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&b->mu);
    if (!last) return;
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b->out);
    free(b->got);
    free(b);
}

/* On the scheduler thread: copy the pooled state, count the final. */
static void emb_event(void *user, const sw_event *ev) {
    emb_slot *sl = user;
    emb_batch *b = sl->b;
    if (ev->type == SW_EVENT_HIDDEN) {
        const float *v = ev->hidden_mean ? ev->hidden_mean : ev->hidden_last;
        if (v && ev->n_embd == b->dim) {
            pthread_mutex_lock(&b->mu);
            memcpy(b->out + sl->i * (size_t)b->dim, v, (size_t)b->dim * sizeof(float));
            b->got[sl->i] = true;
            pthread_mutex_unlock(&b->mu);
        }
        return;
    }
    if (ev->type != SW_EVENT_FINAL) return;
    pthread_mutex_lock(&b->mu);
    /* no_generate ends with "length" after the prefill */
    if ((ev->finish != SW_FINISH_LENGTH && ev->finish != SW_FINISH_STOP) || !b->got[sl->i]) {
        if (b->failed == SW_FINISH_NONE) {
            b->failed = ev->finish == SW_FINISH_LENGTH ? SW_FINISH_ERROR : ev->finish;
            snprintf(b->msg, sizeof b->msg, "%s",
                     ev->message && ev->message[0] ? ev->message : "no hidden state");
        }
    }
    b->finished++;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    batch_unref(b);
}

static bool engine_tokenize(const srv_embedder *em, const char *text, int32_t **ids, size_t *n,
                            srv_error *e) {
    const srv_embed_engine *src = em->ctx;
    sw_err err = {{0}};
    if (sw_tokenize_input(src->tok, text, strlen(text), ids, n, &err) != SW_OK) {
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", "input",
                      "cannot tokenize the input: %s", err.msg);
        return false;
    }
    return true;
}

/* Why the wait for the engine ends early, or 0. */
static int stop_reason(srv_conn *sc, double deadline) {
    if (srv_conn_hung_up(sc->conn)) return 499;
    if (atomic_load(&sc->s->state) == SRV_STOPPING) return 503;
    if (deadline > 0 && sw_time_s() > deadline) return 504;
    return 0;
}

static void stop_error(int why, double timeout_s, srv_error *e) {
    if (why == 499)
        srv_error_set(e, 499, "invalid_request_error", "client_closed", NULL,
                      "the client closed the connection");
    else if (why == 504)
        srv_error_set(e, 504, "timeout_error", "request_timeout", NULL,
                      "the request exceeded the server's timeout of %.0f s (--timeout)", timeout_s);
    else
        srv_error_set(e, 503, "server_error", "shutting_down", NULL,
                      "the request was cancelled: the server is shutting down");
}

static bool submit_error(const srv_embedder *em, size_t i, size_t n_ids, sw_status st,
                         const sw_err *err, srv_error *e) {
    char param[32];
    snprintf(param, sizeof param, "input[%zu]", i);
    if (st == SW_E_RANGE)
        srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded", param,
                      "input %zu has %zu tokens; this model embeds at most %d", i, n_ids,
                      em->max_tokens);
    else if (st == SW_E_BUSY)
        srv_error_set(e, 429, "rate_limit_error", "queue_full", NULL,
                      "the server is busy (%s); retry later", err->msg);
    else if (st == SW_E_INVALID_ARG)
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", param, "%s", err->msg);
    else
        srv_error_set(e, 500, "server_error", NULL, NULL, "cannot start the embedding: %s",
                      err->msg);
    return false;
}

/* Submit one input. A request may hold more inputs than the engine queues
 * (--max-queue): when the queue is full while inputs of this request are
 * still in flight, wait for one of them to finish and try again, rather
 * than answer 429 to a request that no retry could get in. *why is set
 * when the wait ends for the client's or the server's sake. */
static sw_status submit_input(const srv_embed_engine *src, emb_batch *b, const sw_request *req,
                              size_t in_flight_from, uint64_t *id, srv_conn *sc, double deadline,
                              int *why, sw_err *err) {
    for (;;) {
        pthread_mutex_lock(&b->mu);
        b->refs++; /* the engine's, before it can call back */
        pthread_mutex_unlock(&b->mu);
        sw_status st = sw_engine_submit(src->engine, req, id, err);
        if (st == SW_OK) return st;
        pthread_mutex_lock(&b->mu);
        b->refs--;
        size_t done = b->finished;
        bool wait = st == SW_E_BUSY && done < in_flight_from && b->failed == SW_FINISH_NONE;
        if (wait) srv_cond_wait_s(&b->cv, &b->mu, WAIT_SLICE_S);
        pthread_mutex_unlock(&b->mu);
        if (!wait || (*why = stop_reason(sc, deadline)) != 0) return st;
    }
}

static bool engine_embed(const srv_embedder *em, const srv_embed_input *in, size_t n, float *out,
                         srv_conn *sc, srv_error *e) {
    const srv_embed_engine *src = em->ctx;
    const srv *s = src->s;
    emb_batch *b = calloc(1, sizeof *b);
    emb_slot *slots = calloc(n, sizeof *slots);
    uint64_t *ids = calloc(n, sizeof *ids);
    if (b) {
        b->out = calloc(n * (size_t)em->dim, sizeof *b->out);
        b->got = calloc(n, sizeof *b->got);
    }
    if (!b || !slots || !ids || !b->out || !b->got) {
        if (b) {
            free(b->out);
            free(b->got);
        }
        free(b);
        free(slots);
        free(ids);
        return srv_json_nomem(e);
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->refs = 1;
    b->n = n;
    b->dim = em->dim;
    /* every input at once: the engine batches their prefills together */
    double deadline = s->cfg.timeout_s > 0 ? sw_time_s() + s->cfg.timeout_s : 0;
    int why = 0;
    bool ok = true;
    size_t submitted = 0;
    for (size_t i = 0; i < n && ok && !why; i++) {
        slots[i] = (emb_slot){b, i};
        sw_request req = {0};
        req.prompt = in[i].ids;
        req.n_prompt = (int32_t)in[i].n;
        sw_sampler_params_default(&req.sampling);
        req.hidden = src->hidden;
        req.no_generate = true;
        req.on_event = emb_event;
        req.user = &slots[i];
        sw_err err = {{0}};
        sw_status st = submit_input(src, b, &req, submitted, &ids[i], sc, deadline, &why, &err);
        if (st == SW_OK) submitted++;
        else if (!why) ok = submit_error(em, i, in[i].n, st, &err, e);
    }
    double t_cancel = 0;
    pthread_mutex_lock(&b->mu);
    while (b->finished < submitted) {
        if (!ok || why || b->failed != SW_FINISH_NONE) {
            if (t_cancel == 0) {
                /* give up on the rest: cancel what is still running */
                pthread_mutex_unlock(&b->mu);
                for (size_t i = 0; i < submitted; i++) sw_engine_cancel(src->engine, ids[i]);
                pthread_mutex_lock(&b->mu);
                t_cancel = sw_time_s();
            } else if (sw_time_s() - t_cancel > CANCEL_GRACE_S) {
                break; /* the batch outlives us through its references */
            }
        }
        srv_cond_wait_s(&b->cv, &b->mu, WAIT_SLICE_S);
        if (!why && t_cancel == 0) {
            pthread_mutex_unlock(&b->mu);
            why = stop_reason(sc, deadline);
            pthread_mutex_lock(&b->mu);
        }
    }
    sw_finish_reason failed = b->failed;
    if (ok && !why && failed == SW_FINISH_NONE && b->finished == submitted)
        memcpy(out, b->out, n * (size_t)em->dim * sizeof *out);
    char msg[SW_ERR_LEN];
    snprintf(msg, sizeof msg, "%s", b->msg);
    pthread_mutex_unlock(&b->mu);
    free(ids);
    if (ok && why) {
        stop_error(why, s->cfg.timeout_s, e);
        ok = false;
    } else if (ok && failed != SW_FINISH_NONE) {
        if (failed == SW_FINISH_CANCELLED)
            srv_error_set(e, 503, "server_error", "shutting_down", NULL,
                          "the request was cancelled: the server is shutting down");
        else
            srv_error_set(e, 500, "server_error", NULL, NULL, "embedding failed: %s", msg);
        ok = false;
    }
    /* slots are borrowed by the engine until each final event: free them
     * only when every submitted input has finished */
    pthread_mutex_lock(&b->mu);
    bool all_done = b->finished == submitted;
    pthread_mutex_unlock(&b->mu);
    if (all_done) free(slots);
    else sw_log(SW_LOG_WARN, "embeddings: the engine did not finish cancelled inputs in time");
    batch_unref(b);
    if (ok)
        for (size_t i = 0; i < n; i++) srv_l2_normalize(out + i * (size_t)em->dim, em->dim);
    return ok;
}

void srv_embedder_engine_init(srv_embedder *em, srv_embed_engine *src) {
    em->ctx = src;
    em->tokenize = engine_tokenize;
    em->embed = engine_embed;
}

/* The served model's source: the embedder and what it embeds with, in one
 * allocation. */
typedef struct served_source {
    srv_embedder em;
    srv_embed_engine src;
} served_source;

static void served_free(srv_embedder *em) { free((served_source *)em); }

sw_status srv_embedder_engine_create(srv *s, srv_embedder **out, sw_err *err) {
    served_source *ss = calloc(1, sizeof *ss);
    if (!ss) return sw_err_set(err, SW_E_NOMEM, "out of memory creating the embedder");
    srv_embedder *em = &ss->em;
    const sw_model_config *c = sw_model_config_get(s->model);
    em->model = s->model_id;
    em->dim = (int32_t)c->n_embd;
    em->n_vocab = (int32_t)sw_tokenizer_n_vocab(s->tok);
    em->max_tokens = s->n_ctx - 1;
    ss->src = (srv_embed_engine){.s = s, .engine = s->engine, .tok = s->tok,
                                 .hidden = SW_HIDDEN_MEAN};
    srv_embedder_engine_init(em, &ss->src);
    em->free = served_free;
    *out = em;
    return SW_OK;
}

int srv_handle_embeddings(srv_conn *sc) {
    srv *s = sc->s;
    const srv_embedder *em = s->embedder;
    srv_error e;
    cJSON *root = srv_json_parse_object(sc->body, sc->body_len, &e);
    if (!root) return srv_respond_error(sc, &e);
    srv_embed_req r = {0};
    float *out = NULL;
    int ret;
    char id[48];
    srv_make_id(id, sizeof id, "embd-");
    size_t tokens = 0;
    bool ok = srv_embed_parse(root, em, &r, &e);
    if (ok && r.model && !srv_model_name_ok(s, r.model) && strcmp(r.model, em->model)) {
        srv_model_not_found(s, r.model, &e);
        ok = false;
    }
    for (size_t i = 0; ok && i < r.n; i++) tokens += r.in[i].n;
    if (ok && !(out = malloc(r.n * (size_t)em->dim * sizeof *out))) ok = srv_json_nomem(&e);
    if (ok) ok = em->embed(em, r.in, r.n, out, sc, &e);
    if (ok) {
        ret = srv_respond(sc, 200, srv_embed_json(em, &r, out, tokens), NULL);
    } else {
        ret = srv_respond_error(sc, &e);
    }
    /* embeddings are always local; the ledger sees them like any request */
    srv_ledger_add(s, id, SW_ROUTE_LOCAL, SW_REASON_DEFAULT, em->model, (int64_t)tokens, 0,
                   sc->t_start, !ok, NULL, NAN);
    free(out);
    srv_embed_req_free(&r);
    cJSON_Delete(root);
    return ret;
}
