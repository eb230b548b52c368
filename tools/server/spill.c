/* spill.c — the fallback library wired into the server (spill.h): routing
 * state, the per-request decision, response metadata, ledger lines, the
 * cloud request body, cloud calls on worker threads, and GET /v1/usage. */
#include "spill.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redact.h"

/* ---- startup and shutdown ---------------------------------------------------------- */

sw_status srv_spill_init(srv *s, sw_err *err) {
    srv_config *c = &s->cfg;
    sw_route_config *rc = &s->route;
    sw_route_config_init(rc);
    sw_status st;
    /* An unreadable policy file is a command-line mistake like a bad flag. */
    if (c->route_config && (st = sw_route_config_load(rc, c->route_config, err)) != SW_OK)
        return st == SW_E_NOMEM ? st : SW_E_INVALID_ARG;
    /* Flags override the file. Any cloud flag means "a cloud is configured". */
    if (c->cloud_provider) {
        if ((st = sw_provider_parse(c->cloud_provider, &rc->cloud.provider, err)) != SW_OK)
            return sw_err_wrap(err, SW_E_INVALID_ARG, "--cloud-provider");
        rc->cloud_configured = true;
    }
    struct {
        const char *flag;
        char **field;
    } strs[] = {{c->cloud_url, &rc->cloud_url},
                {c->cloud_model, &rc->cloud_model},
                {c->cloud_key_env, &rc->cloud_key_env}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (!strs[i].flag) continue;
        if ((st = sw_route_config_set_str(rc, strs[i].field, strs[i].flag, err)) != SW_OK) return st;
        rc->cloud_configured = true;
    }
    if (c->ledger && (st = sw_route_config_set_str(rc, &rc->ledger_path, c->ledger, err)) != SW_OK)
        return st;
    sw_route_config_sync(rc);

    if (rc->cloud_configured) {
        if (!rc->cloud_model)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "a cloud provider needs a model name: --cloud-model NAME or "
                              "\"cloud\": {\"model\": ...} in --route-config");
        if ((st = sw_cloud_create(&rc->cloud, NULL, &s->cloud, err)) != SW_OK) return st;
        const char *var = rc->cloud_key_env ? rc->cloud_key_env
                          : rc->cloud.provider == SW_PROVIDER_OPENAI ? "OPENAI_API_KEY"
                                                                     : "ANTHROPIC_API_KEY";
        const char *key = getenv(var);
        fprintf(stderr,
                "spillway-server: cloud spill-over: %s model '%s' at %s (key from $%s: %s)\n",
                sw_provider_str(rc->cloud.provider), rc->cloud_model,
                rc->cloud_url ? rc->cloud_url : "the provider's default URL", var,
                key && key[0] ? "set" : "NOT SET: the cloud is unavailable");
    }
    /* Without a cloud nothing can leave the machine, so the PII scan would
     * only cost time; routing then reduces to the local context check. */
    sw_router_policy pol = rc->policy;
    if (!s->cloud) pol.pii_kinds = 0;
    if ((st = sw_router_create(&pol, s->cloud ? sw_cloud_available : NULL, s->cloud, &s->router,
                               err)) != SW_OK)
        return st;
    sw_ledger_params lp = {.path = rc->ledger_path,
                           .prices = rc->prices,
                           .n_prices = rc->n_prices,
                           .reference_model = s->cloud ? sw_cloud_model(s->cloud) : NULL,
                           .reference_price = rc->have_reference_price ? &rc->reference_price : NULL};
    if ((st = sw_ledger_create(&lp, &s->ledger, err)) != SW_OK)
        return st == SW_E_INVALID_ARG ? st : sw_err_wrap(err, SW_E_IO, "--ledger");
    return SW_OK;
}

void srv_spill_free(srv *s, double wait_s) {
    double end = sw_time_s() + wait_s;
    while (atomic_load(&s->cloud_workers) > 0 && sw_time_s() < end) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->cloud_workers) > 0) {
        fprintf(stderr, "spillway-server: %d cloud call(s) still running at exit\n",
                atomic_load(&s->cloud_workers));
    } else {
        sw_router_free(s->router); /* its availability callback points at the cloud */
        sw_cloud_free(s->cloud);
        s->router = NULL;
        s->cloud = NULL;
    }
    sw_ledger_free(s->ledger);
    s->ledger = NULL;
    sw_route_config_free(&s->route);
}

/* ---- the decision ---------------------------------------------------------------------- */

bool srv_route_decide(srv *s, const srv_request *r, int32_t n_prompt, sw_route_decision *d,
                      srv_error *e) {
    sw_route_request q;
    memset(&q, 0, sizeof q);
    sw_err err = {{0}};
    q.private_request = r->hints.private_header;
    if (sw_route_parse_extension(r->raw, &q, &err) != SW_OK) {
        /* the message starts with the field: "spillway.route: ..." */
        char param[64];
        snprintf(param, sizeof param, "%.*s", (int)strcspn(err.msg, ":"), err.msg);
        srv_error_set(e, 400, "invalid_request_error", "invalid_value", param, "%s", err.msg);
        return false;
    }
    /* "model": the cloud model's name asks for the cloud route */
    if (srv_model_is_cloud(s, r->model)) {
        if (q.route == SW_PREF_LOCAL) {
            srv_error_set(e, 400, "invalid_request_error", "route_conflict", "model",
                          "'model' names the cloud model '%s' but spillway.route is \"local\"",
                          r->model);
            return false;
        }
        q.route = SW_PREF_CLOUD;
    }
    q.api_key = r->hints.api_key;
    const char **texts = NULL;
    if (!srv_request_texts(r, &texts, &q.n_texts)) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
        return false;
    }
    q.texts = texts;
    q.prompt_tokens = n_prompt;
    q.max_tokens = r->max_tokens;
    q.local_n_ctx = s->n_ctx;
    sw_engine_stats st;
    sw_engine_stats_get(s->engine, &st);
    q.queue_waiting = st.waiting;
    q.kv_used_frac = st.kv_blocks_total > 0 ? (double)st.kv_blocks_used / st.kv_blocks_total : 0;
    sw_status rs = sw_router_decide(s->router, &q, d, &err);
    free(texts);
    if (rs != SW_OK) {
        srv_error_set(e, 500, "server_error", NULL, NULL, "routing failed: %s", err.msg);
        return false;
    }
    return true;
}

void srv_route_reject_error(const srv *s, const sw_route_decision *d, const srv_request *r,
                            int32_t n_prompt, srv_error *e) {
    if (!strcmp(d->error_code, "context_length_exceeded")) {
        srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded",
                      n_prompt < s->n_ctx ? "max_tokens"
                      : r->wire == SRV_WIRE_OAI_COMPLETIONS ? "prompt" : "messages",
                      "this model's maximum context length is %d tokens: %s", s->n_ctx,
                      d->message);
        return;
    }
    bool conflict = !strcmp(d->error_code, "route_conflict");
    srv_error_set(e, d->http_status, d->error_type[0] ? d->error_type : "invalid_request_error",
                  d->error_code[0] ? d->error_code : NULL, conflict ? "spillway.route" : NULL,
                  "%s", d->message);
}

void srv_route_set_header(srv_conn *sc, sw_route route, sw_route_reason reason) {
    sw_route_header_value(route, reason, sc->route_hdr, sizeof sc->route_hdr);
}

/* ---- metadata and ledger ------------------------------------------------------------ */

static void add_threshold(cJSON *o, const char *name, float v) {
    if (isnan(v)) cJSON_AddNullToObject(o, name); /* that check is off */
    else cJSON_AddNumberToObject(o, name, round((double)v * 1e6) / 1e6);
}

char *srv_spillway_json(const srv *s, const srv_route_info *ri) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "route", sw_route_str(ri->route));
    cJSON_AddStringToObject(o, "reason", sw_route_reason_str(ri->reason));
    if (ri->message && ri->message[0]) cJSON_AddStringToObject(o, "message", ri->message);
    if (ri->monitor) {
        char *ms = sw_monitor_stats_json(ri->monitor);
        cJSON *m = ms ? cJSON_Parse(ms) : NULL;
        free(ms);
        if (m) {
            const sw_monitor_params *p = &s->route.monitor;
            cJSON *t = cJSON_AddObjectToObject(m, "thresholds");
            if (t) {
                cJSON_AddNumberToObject(t, "probe_tokens", p->probe_tokens > 0 ? p->probe_tokens : 16);
                cJSON_AddNumberToObject(t, "min_tokens", p->min_tokens);
                add_threshold(t, "low_prob", p->low_prob);
                add_threshold(t, "min_mean_logprob", p->min_mean_logprob);
                add_threshold(t, "max_low_share", p->max_low_share);
                add_threshold(t, "max_mean_entropy", p->max_mean_entropy);
            }
            cJSON_AddItemToObject(o, "monitor", m);
        }
    }
    if (ri->cloud_model) {
        cJSON *c = cJSON_AddObjectToObject(o, "cloud");
        if (c) {
            cJSON_AddStringToObject(c, "provider", sw_provider_str(sw_cloud_provider(s->cloud)));
            cJSON_AddStringToObject(c, "model", ri->cloud_model);
            if (ri->cloud_attempts > 0) cJSON_AddNumberToObject(c, "attempts", ri->cloud_attempts);
        }
    }
    if (ri->redacted_spans) {
        cJSON *r = cJSON_AddObjectToObject(o, "redacted");
        cJSON *k = r ? cJSON_AddArrayToObject(r, "kinds") : NULL;
        if (k) {
            cJSON_AddNumberToObject(r, "spans", (double)ri->redacted_spans);
            for (unsigned bit = 1; bit <= SW_PII_ALL; bit <<= 1)
                if (ri->redacted_kinds & bit)
                    cJSON_AddItemToArray(k, cJSON_CreateString(sw_pii_kind_str((sw_pii_kind)bit)));
        }
    }
    if (ri->cloud_error) {
        cJSON *c = cJSON_AddObjectToObject(o, "cloud_error");
        if (c) {
            cJSON_AddNumberToObject(c, "status", ri->cloud_error_status);
            cJSON_AddStringToObject(c, "type", ri->cloud_error_type ? ri->cloud_error_type : "");
            cJSON_AddStringToObject(c, "message", ri->cloud_error);
            if (!ri->cloud_model && ri->cloud_attempts > 0)
                cJSON_AddNumberToObject(c, "attempts", ri->cloud_attempts);
        }
    }
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

void srv_ledger_add(srv *s, const char *request_id, sw_route route, sw_route_reason reason,
                    const char *model, int64_t tokens_in, int64_t tokens_out, double t_start,
                    bool error, const cloud_call *cc) {
    if (!s->ledger) return;
    unsigned kinds = 0;
    size_t spans = cc ? cloud_call_redacted(cc, &kinds) : 0;
    sw_ledger_entry e = {.unix_time = 0,
                         .request_id = request_id,
                         .route = route,
                         .reason = reason,
                         .model = model,
                         .tokens_in = tokens_in,
                         .tokens_out = tokens_out,
                         .latency_ms = (sw_time_s() - t_start) * 1000.0,
                         .error = error,
                         .redacted_spans = (int32_t)SW_MIN(spans, (size_t)INT32_MAX),
                         .redacted_kinds = kinds};
    sw_err err = {{0}};
    if (sw_ledger_record(s->ledger, &e, NULL, &err) != SW_OK)
        sw_log(SW_LOG_WARN, "ledger: %s", err.msg);
}

/* GET /v1/usage[?bucket=minute|hour|day[&n=N]]: the totals, and with a
 * bucket the time series of the last N buckets (default: an hour of
 * minutes, two days of hours, a month of days). */
int srv_handle_usage(srv_conn *sc) {
    sw_ledger *l = sc->s->ledger;
    const char *bucket = srv_query(sc, "bucket");
    const char *n_arg = srv_query(sc, "n");
    srv_error e;
    if (!bucket) {
        if (n_arg) {
            srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "n",
                          "'n' needs 'bucket' (minute, hour or day)");
            return srv_respond_error(sc, &e);
        }
        return srv_respond(sc, 200, l ? sw_ledger_usage_json(l) : NULL, NULL);
    }
    sw_ledger_bucket b;
    sw_err err = {{0}};
    if (sw_ledger_bucket_parse(bucket, &b, &err) != SW_OK) {
        srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "bucket", "%s", err.msg);
        return srv_respond_error(sc, &e);
    }
    static const int k_default_n[SW_BUCKET_COUNT] = {60, 48, 30};
    long n = k_default_n[b];
    if (n_arg) {
        char *end = NULL;
        n = strtol(n_arg, &end, 10);
        if (!*n_arg || *end || n < 1 || n > sw_ledger_bucket_capacity(b)) {
            srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "n",
                          "'n' must be a whole number of %s buckets from 1 to %d", bucket,
                          sw_ledger_bucket_capacity(b));
            return srv_respond_error(sc, &e);
        }
    }
    return srv_respond(sc, 200, l ? sw_ledger_usage_series_json(l, b, (int)n, 0) : NULL, NULL);
}

/* ---- the cloud request body ------------------------------------------------------------ */

cJSON *srv_cloud_body(const srv_request *r, const char *prompt_text) {
    const cJSON *body = r->raw;
    if (r->wire == SRV_WIRE_OAI_CHAT) return cJSON_Duplicate(body, true);
    /* A completions prompt becomes one user message: the providers only
     * speak chat. The answer continues the prompt less literally than a base
     * model would (documented in docs/server.md). */
    cJSON *o = cJSON_CreateObject();
    cJSON *msgs = o ? cJSON_AddArrayToObject(o, "messages") : NULL;
    cJSON *m = cJSON_CreateObject();
    if (!msgs || !m) {
        cJSON_Delete(m);
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", prompt_text ? prompt_text : "");
    /* The completions default of 16 tokens applies in the cloud too. */
    cJSON_AddNumberToObject(o, "max_tokens", r->max_tokens > 0 ? r->max_tokens : 16);
    static const char *const copy[] = {"temperature",      "top_p",             "stop", "seed",
                                       "presence_penalty", "frequency_penalty", "response_format"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, copy[i]);
        if (v && !cJSON_IsNull(v)) cJSON_AddItemToObject(o, copy[i], cJSON_Duplicate(v, true));
    }
    if (!cJSON_GetObjectItemCaseSensitive(o, "max_tokens")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- cloud calls on worker threads -------------------------------------------------------- */

struct cloud_call {
    srv *s;
    cJSON *body;        /* owned */
    bool stream;
    /* Redaction (NULL when off): the request's placeholder mapping, and the
     * restorer of the streamed answer (worker thread only until done). */
    sw_redactor *red;
    sw_restore_stream *restore;
    atomic_bool cancel;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int refs;
    sbuf text;          /* content not yet taken */
    char finish[32];
    bool done;
    sw_status st;
    sw_cloud_result res;
    sw_err err;
};

static void cc_free(cloud_call *c) {
    cJSON_Delete(c->body);
    sw_restore_stream_free(c->restore);
    sw_redactor_free(c->red); /* wipes the values */
    sbuf_free(&c->text);
    sw_cloud_result_clear(&c->res);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void cloud_call_unref(cloud_call *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (last) cc_free(c);
}

/* sw_cloud_chunk_fn: runs on the worker thread inside curl's write callback. */
/* Put a piece of the answer into c->text (under c->mu), its placeholders
 * restored when the request was redacted. */
static sw_status add_text(cloud_call *c, const char *text, size_t len, bool last, sw_err *err) {
    if (!c->restore) {
        sbuf_add(&c->text, text, len);
        return SW_OK;
    }
    char *out = NULL;
    size_t n = 0;
    sw_status st = last ? sw_restore_finish(c->restore, &out, &n, err)
                        : sw_restore_feed(c->restore, text, len, &out, &n, err);
    if (st == SW_OK) sbuf_add(&c->text, out, n);
    free(out);
    return st;
}

/* sw_cloud_chunk_fn: runs on the worker thread inside curl's write callback. */
static sw_status on_chunk(void *user, const sw_cloud_chunk *ch, sw_err *err) {
    cloud_call *c = user;
    if (atomic_load(&c->cancel)) return sw_err_set(err, SW_E_CANCELLED, "the client went away");
    pthread_mutex_lock(&c->mu);
    sw_status st = SW_OK;
    if (ch->content && ch->content[0]) st = add_text(c, ch->content, strlen(ch->content), false, err);
    if (ch->finish_reason) snprintf(c->finish, sizeof c->finish, "%s", ch->finish_reason);
    bool oom = c->text.oom;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (st != SW_OK) return st;
    return oom ? sw_err_set(err, SW_E_NOMEM, "out of memory buffering the cloud's answer") : SW_OK;
}

static void *cc_worker(void *arg) {
    cloud_call *c = arg;
    sw_cloud_result res;
    sw_err err = {{0}};
    sw_status st = sw_cloud_chat(c->s->cloud, c->body, c->stream ? on_chunk : NULL, c, &res, &err);
    if (st != SW_OK)
        sw_log(SW_LOG_INFO, "cloud call failed (%s): %s", sw_status_str(st), err.msg);
    /* The answer gets its values back before anyone can take it. */
    if (st == SW_OK && c->red && res.response)
        st = sw_restore_chat_response(c->red, res.response, &err);
    pthread_mutex_lock(&c->mu);
    if (st == SW_OK && c->restore) st = add_text(c, NULL, 0, true, &err); /* the held tail */
    c->res = res; /* takes res.response */
    c->err = err;
    c->st = st;
    c->done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    srv *s = c->s;
    cloud_call_unref(c);
    atomic_fetch_sub(&s->cloud_workers, 1); /* last: after this the server may free the cloud */
    return NULL;
}

/* Redact c->body before it leaves; the mapping stays in c. */
static sw_status cc_redact(cloud_call *c, sw_err *err) {
    sw_status st = sw_redactor_create(sw_router_pii(c->s->router), &c->red, err);
    if (st == SW_OK) st = sw_redact_chat_body(c->red, c->body, err);
    if (st == SW_OK && c->stream) st = sw_restore_stream_create(c->red, &c->restore, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "redacting the request for the cloud");
    /* counts and kinds only: never the values */
    char kinds[64] = "";
    sw_pii_kinds_str(sw_redactor_kinds(c->red), kinds, sizeof kinds);
    sw_log(SW_LOG_DEBUG, "cloud call: %zu span(s) of personal data redacted (%s)",
           sw_redactor_spans(c->red), kinds[0] ? kinds : "none");
    return SW_OK;
}

size_t cloud_call_redacted(const cloud_call *c, unsigned *kinds) {
    if (kinds) *kinds = c && c->red ? sw_redactor_kinds(c->red) : 0;
    return c && c->red ? sw_redactor_spans(c->red) : 0;
}

sw_status cloud_call_start(srv *s, cJSON *body, bool stream, bool redact, cloud_call **out,
                           sw_err *err) {
    *out = NULL;
    if (!body) return sw_err_set(err, SW_E_NOMEM, "out of memory building the cloud request");
    cloud_call *c = calloc(1, sizeof *c);
    if (!c) {
        cJSON_Delete(body);
        return sw_err_set(err, SW_E_NOMEM, "out of memory starting the cloud call");
    }
    c->s = s;
    c->body = body;
    c->stream = stream;
    c->refs = 2; /* the caller's and the worker's */
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    sw_status st = redact ? cc_redact(c, err) : SW_OK;
    if (st != SW_OK) {
        cc_free(c);
        return st;
    }
    atomic_fetch_add(&s->cloud_workers, 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &attr, cc_worker, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&s->cloud_workers, 1);
        cc_free(c);
        return sw_err_set(err, SW_E_INTERNAL, "cannot start a thread for the cloud call");
    }
    *out = c;
    return SW_OK;
}

bool cloud_call_take(cloud_call *c, double slice_s, sbuf *text, char *finish, size_t finish_cap) {
    pthread_mutex_lock(&c->mu);
    if (!c->done && c->text.n == 0 && !c->finish[0] && slice_s > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(slice_s * 1e9);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    if (c->text.n) {
        sbuf_add(text, c->text.p, c->text.n);
        c->text.n = 0;
        c->text.p[0] = '\0';
    }
    if (c->finish[0] && finish_cap) snprintf(finish, finish_cap, "%s", c->finish);
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

bool cloud_call_done(cloud_call *c) {
    pthread_mutex_lock(&c->mu);
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

void cloud_call_cancel(cloud_call *c) { atomic_store(&c->cancel, true); }

sw_status cloud_call_result(const cloud_call *c, const sw_cloud_result **res, const sw_err **err) {
    /* done is final and set under the mutex before this may be called; the
     * fields below are no longer written */
    if (res) *res = &c->res;
    if (err) *err = &c->err;
    return c->st;
}
