/* spill.c — the fallback library wired into the server (spill.h): routing
 * state, the per-request decision, response metadata, ledger lines, the
 * cloud request body, cloud calls on worker threads, and GET /v1/usage. */
#include "spill.h"

#include "learned.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    return srv_learned_init(s, err);
}

void srv_spill_free(srv *s, double wait_s) {
    double end = sw_time_s() + wait_s;
    while (atomic_load(&s->cloud_workers) > 0 && sw_time_s() < end) {
        sw_sleep_s(0.02);
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
    if (atomic_load(&s->cloud_workers) == 0) srv_learned_free(s); /* shadow calls use it */
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
    /* "model": the cloud model's name, or a name the policy maps to a route,
     * asks for that route */
    sw_route_pref mp = srv_model_route(s, r->model);
    if (mp != SW_PREF_AUTO) {
        if (q.route != SW_PREF_AUTO && q.route != mp) {
            srv_error_set(e, 400, "invalid_request_error", "route_conflict", "model",
                          "'model' '%.200s' asks for the %s route but spillway.route is \"%s\"",
                          r->model, mp == SW_PREF_CLOUD ? "cloud" : "local",
                          q.route == SW_PREF_CLOUD ? "cloud" : "local");
            return false;
        }
        q.route = mp;
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
    q.tools = srv_tools_active(r);
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
    if (ri->probing) cJSON_AddTrueToObject(o, "probing");
    if (ri->message && ri->message[0]) cJSON_AddStringToObject(o, "message", ri->message);
    if (ri->has_route_score && isfinite(ri->route_score))
        cJSON_AddNumberToObject(o, "route_score", round(ri->route_score * 1e4) / 1e4);
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
                if (!isnan(p->cloud_share) && s->share) { /* self-calibrating */
                    cJSON_AddNumberToObject(t, "cloud_share", round(p->cloud_share * 1e6) / 1e6);
                    double th = sw_share_ctl_threshold(s->share);
                    if (isfinite(th)) cJSON_AddNumberToObject(t, "score", round(th * 1e4) / 1e4);
                }
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
                    bool error, const cloud_call *cc, double route_score) {
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
                         .redacted_kinds = kinds,
                         .has_route_score = isfinite(route_score),
                         .route_score = route_score};
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

/* An Anthropic-format request as an OpenAI chat body (for an
 * OpenAI-compatible provider): the system text first; a user turn's
 * tool_result blocks become "tool" messages before its text; an assistant's
 * tool_use blocks its tool_calls; tools, tool_choice, the limits and the
 * sampling fields the client gave. */
static bool oai_msgs_from(const srv_request *r, cJSON *msgs) {
    cJSON *m;
    if (r->system && !((m = cJSON_CreateObject()) && cJSON_AddItemToArray(msgs, m) &&
                       cJSON_AddStringToObject(m, "role", "system") &&
                       cJSON_AddStringToObject(m, "content", r->system)))
        return false;
    for (size_t i = 0; i < r->n_msgs; i++) {
        const srv_msg *sm = &r->msgs[i];
        sbuf text = {0};
        cJSON *calls = NULL;
        sbuf_puts(&text, "");
        for (size_t j = 0; j < sm->n_blocks; j++) {
            const srv_block *b = &sm->blocks[j];
            if (b->type == SRV_BLOCK_TEXT) {
                if (text.n) sbuf_puts(&text, "\n");
                sbuf_puts(&text, b->text);
            } else if (b->type == SRV_BLOCK_TOOL_RESULT) {
                if (!((m = cJSON_CreateObject()) && cJSON_AddItemToArray(msgs, m) &&
                      cJSON_AddStringToObject(m, "role", "tool") &&
                      cJSON_AddStringToObject(m, "tool_call_id", b->id) &&
                      cJSON_AddStringToObject(m, "content", b->text)))
                    goto oom;
            } else {
                cJSON *c = cJSON_CreateObject(), *fn;
                if (!calls) calls = cJSON_CreateArray();
                if (!calls || !c || !cJSON_AddItemToArray(calls, c) ||
                    !cJSON_AddStringToObject(c, "id", b->id) ||
                    !cJSON_AddStringToObject(c, "type", "function") ||
                    !(fn = cJSON_AddObjectToObject(c, "function")) ||
                    !cJSON_AddStringToObject(fn, "name", b->name) ||
                    !cJSON_AddStringToObject(fn, "arguments", b->input))
                    goto oom;
            }
        }
        if (text.oom) goto oom;
        /* a user turn of tool results only needs no user message */
        if (text.n || calls || !strcmp(sm->role, "assistant") || sm->n_blocks == 0) {
            if (!((m = cJSON_CreateObject()) && cJSON_AddItemToArray(msgs, m) &&
                  cJSON_AddStringToObject(m, "role", sm->role)))
                goto oom;
            if (calls && !text.n) cJSON_AddNullToObject(m, "content");
            else cJSON_AddStringToObject(m, "content", text.p);
            if (calls) cJSON_AddItemToObject(m, "tool_calls", calls);
            calls = NULL;
        }
        sbuf_free(&text);
        continue;
    oom:
        cJSON_Delete(calls);
        sbuf_free(&text);
        return false;
    }
    return true;
}

static bool oai_tools_from(const srv_request *r, cJSON *o) {
    if (!r->n_tools) return true;
    cJSON *tools = cJSON_AddArrayToObject(o, "tools");
    for (size_t i = 0; tools && i < r->n_tools; i++) {
        cJSON *t = cJSON_CreateObject(), *fn;
        if (!t || !cJSON_AddItemToArray(tools, t) || !cJSON_AddStringToObject(t, "type", "function") ||
            !(fn = cJSON_AddObjectToObject(t, "function")) ||
            !cJSON_AddStringToObject(fn, "name", r->tools[i].name))
            return false;
        if (r->tools[i].description) cJSON_AddStringToObject(fn, "description", r->tools[i].description);
        if (r->tools[i].parameters)
            cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(r->tools[i].parameters, true));
    }
    switch (r->tool_choice) {
    case SRV_TOOL_NONE: cJSON_AddStringToObject(o, "tool_choice", "none"); break;
    case SRV_TOOL_ANY: cJSON_AddStringToObject(o, "tool_choice", "required"); break;
    case SRV_TOOL_NAMED: {
        cJSON *c = cJSON_AddObjectToObject(o, "tool_choice");
        cJSON *fn = c ? cJSON_AddObjectToObject(c, "function") : NULL;
        if (!fn) return false;
        cJSON_AddStringToObject(c, "type", "function");
        cJSON_AddStringToObject(fn, "name", r->tool_name);
        break;
    }
    default: break;
    }
    if (!r->parallel_tool_calls) cJSON_AddFalseToObject(o, "parallel_tool_calls");
    return tools != NULL;
}

static cJSON *oai_chat_from(const srv_request *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON *msgs = o ? cJSON_AddArrayToObject(o, "messages") : NULL;
    if (!msgs || !oai_msgs_from(r, msgs) || !oai_tools_from(r, o)) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "max_tokens", r->max_tokens);
    static const char *const copy[] = {"temperature", "top_p"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->raw, copy[i]);
        if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(o, copy[i], v->valuedouble);
    }
    if (r->n_stop) {
        cJSON *st = cJSON_AddArrayToObject(o, "stop");
        for (int i = 0; st && i < r->n_stop; i++) cJSON_AddItemToArray(st, cJSON_CreateString(r->stop[i]));
    }
    return o;
}

/* A completions prompt becomes one user message: the providers only speak
 * chat. The answer continues the prompt less literally than a base model
 * would (documented in docs/server.md). */
static cJSON *completion_chat(const srv_request *r, const char *prompt_text) {
    const cJSON *body = r->raw;
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

cJSON *srv_cloud_body(const srv *s, const srv_request *r, const char *prompt_text, bool *native) {
    *native = false;
    switch (r->wire) {
    case SRV_WIRE_OAI_CHAT: return cJSON_Duplicate(r->raw, true);
    case SRV_WIRE_OAI_COMPLETIONS: return completion_chat(r, prompt_text);
    case SRV_WIRE_ANTHROPIC:
        /* to an Anthropic provider the client's body passes as it is */
        if (sw_cloud_provider(s->cloud) == SW_PROVIDER_ANTHROPIC) {
            *native = true;
            return cJSON_Duplicate(r->raw, true);
        }
        return oai_chat_from(r);
    }
    return NULL;
}

/* ---- cloud calls on worker threads -------------------------------------------------------- */

struct cloud_call {
    srv *s;
    cJSON *body;        /* owned */
    bool native;        /* body is an Anthropic Messages body (sw_cloud_messages) */
    bool stream;
    /* Redaction (NULL when off): the request's placeholder mapping, and the
     * restorer of the streamed answer, one per run of text or tool call
     * (worker thread only until done). */
    sw_redactor *red;
    sw_restore_stream *restore;
    int kind;           /* what the last piece was: -2 none, -1 text, else a tool call */
    atomic_bool cancel;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int refs;
    cloud_piece *q;     /* what arrived and was not yet taken, in order */
    size_t n_q, cap_q;
    bool oom;
    char finish[32];
    char *stop_sequence;
    bool done;
    sw_status st;
    sw_cloud_result res;
    sw_err err;
};

void cloud_pieces_free(cloud_piece *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(p[i].id);
        free(p[i].name);
        sbuf_free(&p[i].data);
    }
    free(p);
}

static void cc_free(cloud_call *c) {
    cJSON_Delete(c->body);
    sw_restore_stream_free(c->restore);
    sw_redactor_free(c->red); /* wipes the values */
    cloud_pieces_free(c->q, c->n_q);
    free(c->stop_sequence);
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

/* Append data[len] to the queue as a piece of kind tool (-1: text), merging
 * with the last piece when it continues it. Under mu. */
static void queue_piece(cloud_call *c, int tool, const char *id, const char *name,
                        const char *data, size_t len) {
    cloud_piece *last = c->n_q ? &c->q[c->n_q - 1] : NULL;
    if (!(last && last->tool == tool && !id && !name)) {
        if (c->n_q == c->cap_q) {
            size_t cap = c->cap_q ? 2 * c->cap_q : 8;
            cloud_piece *q = realloc(c->q, cap * sizeof *q);
            if (!q) {
                c->oom = true;
                return;
            }
            c->q = q;
            c->cap_q = cap;
        }
        last = &c->q[c->n_q++];
        *last = (cloud_piece){.tool = tool};
        if ((id && !(last->id = strdup(id))) || (name && !(last->name = strdup(name))))
            c->oom = true;
    }
    if (data) sbuf_add(&last->data, data, len);
    if (last->data.oom) c->oom = true;
}

/* The run of the last kind is over: what its restorer held goes out, and a
 * fresh restorer serves the next run. Under mu. */
static sw_status end_run(cloud_call *c, sw_err *err) {
    if (!c->restore || c->kind == -2) return SW_OK;
    char *out = NULL;
    size_t n = 0;
    sw_status st = sw_restore_finish(c->restore, &out, &n, err);
    if (st == SW_OK && n) queue_piece(c, c->kind, NULL, NULL, out, n);
    free(out);
    sw_restore_stream_free(c->restore);
    c->restore = NULL;
    if (st == SW_OK) st = sw_restore_stream_create(c->red, &c->restore, err);
    return st;
}

/* Put a piece of the answer into the queue (under mu): text (tool -1) or a
 * part of a tool call, its placeholders restored when the request was
 * redacted. A new kind (text after a tool call, or the next call) first ends
 * the last run, so the pieces keep their order. */
static sw_status add_piece(cloud_call *c, int tool, const char *id, const char *name,
                           const char *data, sw_err *err) {
    sw_status st = SW_OK;
    if (c->kind != -2 && (tool != c->kind || id || name)) st = end_run(c, err);
    c->kind = tool;
    if (st != SW_OK) return st;
    if (!c->restore || !data) {
        queue_piece(c, tool, id, name, data, data ? strlen(data) : 0);
        return SW_OK;
    }
    char *out = NULL;
    size_t n = 0;
    st = sw_restore_feed(c->restore, data, strlen(data), &out, &n, err);
    if (st == SW_OK) queue_piece(c, tool, id, name, out, n);
    free(out);
    return st;
}

/* sw_cloud_chunk_fn: runs on the worker thread inside curl's write callback. */
static sw_status on_chunk(void *user, const sw_cloud_chunk *ch, sw_err *err) {
    cloud_call *c = user;
    if (atomic_load(&c->cancel)) return sw_err_set(err, SW_E_CANCELLED, "the client went away");
    pthread_mutex_lock(&c->mu);
    sw_status st = SW_OK;
    if (ch->content && ch->content[0]) st = add_piece(c, -1, NULL, NULL, ch->content, err);
    if (st == SW_OK && ch->tool)
        st = add_piece(c, ch->tool_index, ch->tool_id, ch->tool_name, ch->tool_args, err);
    if (ch->finish_reason) snprintf(c->finish, sizeof c->finish, "%s", ch->finish_reason);
    if (ch->stop_sequence && !c->stop_sequence && !(c->stop_sequence = strdup(ch->stop_sequence)))
        c->oom = true;
    bool oom = c->oom;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (st != SW_OK) return st;
    return oom ? sw_err_set(err, SW_E_NOMEM, "out of memory buffering the cloud's answer") : SW_OK;
}

static void *cc_worker(void *arg) {
    cloud_call *c = arg;
    sw_cloud_result res;
    sw_err err = {{0}};
    sw_status st = c->native
                       ? sw_cloud_messages(c->s->cloud, c->body, c->stream ? on_chunk : NULL, c, &res, &err)
                       : sw_cloud_chat(c->s->cloud, c->body, c->stream ? on_chunk : NULL, c, &res, &err);
    if (st != SW_OK)
        sw_log(SW_LOG_INFO, "cloud call failed (%s): %s", sw_status_str(st), err.msg);
    /* The answer gets its values back before anyone can take it. */
    if (st == SW_OK && c->red && res.response)
        st = sw_restore_chat_response(c->red, res.response, &err);
    pthread_mutex_lock(&c->mu);
    if (st == SW_OK) st = end_run(c, &err); /* the held tail */
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

/* The texts of an Anthropic Messages body a person may have written into:
 * the system text, message content strings, text blocks, tool results and
 * the string values inside tool inputs. */
typedef sw_status (*text_fn)(sw_redactor *r, cJSON *item, sw_err *err);

static sw_status each_string(sw_redactor *r, cJSON *v, text_fn fn, sw_err *err) {
    if (cJSON_IsString(v)) return fn(r, v, err);
    cJSON *it;
    sw_status st = SW_OK;
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        cJSON_ArrayForEach(it, v) if (st == SW_OK) st = each_string(r, it, fn, err);
    return st;
}

static sw_status each_block_text(sw_redactor *r, cJSON *content, text_fn fn, sw_err *err) {
    if (cJSON_IsString(content)) return fn(r, content, err);
    cJSON *b;
    sw_status st = SW_OK;
    cJSON_ArrayForEach(b, content) {
        if (st != SW_OK) break;
        cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
        if (cJSON_IsString(t)) st = fn(r, t, err);
        cJSON *in = cJSON_GetObjectItemCaseSensitive(b, "input");
        if (st == SW_OK && in) st = each_string(r, in, fn, err);
        cJSON *rc = cJSON_GetObjectItemCaseSensitive(b, "content");
        if (st == SW_OK && rc) st = each_block_text(r, rc, fn, err);
    }
    return st;
}

static sw_status each_messages_text(sw_redactor *r, cJSON *body, text_fn fn, sw_err *err) {
    cJSON *sys = cJSON_GetObjectItemCaseSensitive(body, "system");
    sw_status st = sys ? each_block_text(r, sys, fn, err) : SW_OK;
    cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(body, "messages")) {
        if (st != SW_OK) break;
        cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (content) st = each_block_text(r, content, fn, err);
    }
    cJSON *stops = cJSON_GetObjectItemCaseSensitive(body, "stop_sequences");
    if (st == SW_OK && stops) st = each_string(r, stops, fn, err);
    return st;
}

static sw_status reserve_text(sw_redactor *r, cJSON *item, sw_err *err) {
    return sw_redactor_reserve(r, item->valuestring, strlen(item->valuestring), err);
}

static sw_status redact_text(sw_redactor *r, cJSON *item, sw_err *err) {
    char *out = NULL;
    size_t n = 0;
    sw_status st = sw_redact_text(r, item->valuestring, strlen(item->valuestring), &out, &n, err);
    if (st == SW_OK && !cJSON_SetValuestring(item, out))
        st = sw_err_set(err, SW_E_NOMEM, "out of memory redacting");
    free(out);
    return st;
}

/* Redact c->body before it leaves; the mapping stays in c. Every text is
 * reserved before any is replaced (see sw_redactor_reserve). */
static sw_status cc_redact(cloud_call *c, sw_err *err) {
    sw_status st = sw_redactor_create(sw_router_pii(c->s->router), &c->red, err);
    if (st == SW_OK && c->native) st = each_messages_text(c->red, c->body, reserve_text, err);
    if (st == SW_OK)
        st = c->native ? each_messages_text(c->red, c->body, redact_text, err)
                       : sw_redact_chat_body(c->red, c->body, err);
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

sw_status cloud_call_start(srv *s, cJSON *body, bool native, bool stream, bool redact,
                           cloud_call **out, sw_err *err) {
    *out = NULL;
    if (!body) return sw_err_set(err, SW_E_NOMEM, "out of memory building the cloud request");
    cloud_call *c = calloc(1, sizeof *c);
    if (!c) {
        cJSON_Delete(body);
        return sw_err_set(err, SW_E_NOMEM, "out of memory starting the cloud call");
    }
    c->s = s;
    c->body = body;
    c->native = native;
    c->stream = stream;
    c->kind = -2;
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

bool cloud_call_take(cloud_call *c, double slice_s, cloud_piece **pieces, size_t *n, char *finish,
                     size_t finish_cap) {
    pthread_mutex_lock(&c->mu);
    if (!c->done && c->n_q == 0 && !c->finish[0] && slice_s > 0)
        srv_cond_wait_s(&c->cv, &c->mu, slice_s);
    /* hand the queue over whole (appended to what the caller holds) */
    if (c->n_q) {
        cloud_piece *p = realloc(*pieces, (*n + c->n_q) * sizeof *p);
        if (p) {
            memcpy(p + *n, c->q, c->n_q * sizeof *p);
            *pieces = p;
            *n += c->n_q;
            c->n_q = 0;
        } else {
            c->oom = true;
        }
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

const char *cloud_call_stop_sequence(const cloud_call *c) { return c->stop_sequence; }

sw_status cloud_call_result(const cloud_call *c, const sw_cloud_result **res, const sw_err **err) {
    /* done is final and set under the mutex before this may be called; the
     * fields below are no longer written */
    if (res) *res = &c->res;
    if (err) *err = &c->err;
    return c->st;
}
