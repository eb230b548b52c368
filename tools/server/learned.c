/* learned.c — the learned router, the cloud-share budget and shadow sampling
 * inside the server (learned.h). */
#include "learned.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "monitor.h"
#include "oai.h"
#include "spill.h"

static char *state_path(const char *router) {
    size_t n = strlen(router) + 7;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s.state", router);
    return p;
}

sw_status srv_learned_init(srv *s, sw_err *err) {
    srv_config *c = &s->cfg;
    sw_status st;
    if (c->router) {
        /* learning in place: the state beside the router wins when it loads */
        char *sp = state_path(c->router);
        sw_err serr;
        if (sp && sw_rtr_load(sp, &s->rtr, &serr) == SW_OK) {
            fprintf(stderr, "spillway-server: router state %s (%llu online updates)\n", sp,
                    (unsigned long long)sw_rtr_n_updates(s->rtr));
        } else if ((st = sw_rtr_load(c->router, &s->rtr, err)) != SW_OK) {
            free(sp);
            return sw_err_wrap(err, SW_E_INVALID_ARG, "--router");
        }
        free(sp);
        pthread_mutex_init(&s->shadow_mu, NULL);
        s->shadow_mu_init = true;
    }
    /* The budget: --cloud-share, else the policy's monitor.cloud_share (the
     * default), for the router's score or, without a router, the probe
     * window's. Only fixed thresholds in --route-config (and no router) go
     * without one. Nothing to budget without a cloud. */
    sw_monitor_params *mon = &s->route.monitor;
    double share = c->cloud_share >= 0 ? c->cloud_share
                   : !isnan(mon->cloud_share) ? mon->cloud_share
                   : s->rtr ? SW_MONITOR_DEFAULT_SHARE : -1;
    if (!s->rtr) mon->cloud_share = share >= 0 ? (float)share : NAN;
    if (share >= 0 && s->cloud) {
        int32_t n = 0;
        const double *warm = s->rtr ? sw_rtr_train_scores(s->rtr, &n) : sw_monitor_share_prior(&n);
        if ((st = sw_share_ctl_create(share, 0, warm, n, &s->share, err)) != SW_OK)
            return sw_err_wrap(err, SW_E_INVALID_ARG, "--cloud-share");
        fprintf(stderr,
                "spillway-server: cloud share %.3f of auto-routed requests (%s), by %s (warm start: "
                "%d %s)\n",
                share, c->cloud_share >= 0 ? "--cloud-share" : "monitor.cloud_share",
                s->rtr ? "the learned router's route_score" : "the probe window's score",
                n, s->rtr ? "out-of-fold training scores" : "prior scores");
    }
    if (c->shadow_rate > 0 && !s->rtr)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "--shadow-rate needs --router (shadow labels train the router)");
    return SW_OK;
}

/* The chat rendering the router was trained with must be the server's: the
 * probe conversation goes through the request parser and the prompt builder
 * like any chat request. An older router file without a record: a warning. */
static sw_status check_prompt(srv *s, sw_err *err) {
    static const char body[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"" SW_RTR_PROBE_TEXT "\"}]}";
    srv_request r;
    srv_error e;
    int32_t *ids = NULL;
    size_t n = 0;
    char *echo = NULL, *text = NULL, id[17];
    sw_status st = SW_OK;
    memset(&r, 0, sizeof r);
    if (!oai_parse_request(body, sizeof body - 1, SRV_WIRE_OAI_CHAT,
                           (int32_t)sw_tokenizer_n_vocab(s->tok), &r, &e) ||
        !srv_prompt_tokens(s, &r, &ids, &n, &echo, &e)) {
        st = sw_err_set(err, SW_E_INVALID_ARG, "cannot render the rendering probe: %s", e.msg);
    } else {
        sw_err derr = {{0}};
        sw_rtr_prompt_id(ids, n, id);
        if (sw_detokenize(s->tok, ids, n, true, &text, &derr) != SW_OK) text = NULL;
        st = sw_rtr_check_prompt(s->rtr, id, text, err);
        if (st == SW_E_NOT_FOUND) {
            fprintf(stderr, "spillway-server: --router: warning: %s\n", err->msg);
            st = SW_OK;
        }
    }
    srv_request_free(&r);
    free(ids), free(echo), free(text);
    return st;
}

sw_status srv_learned_check_model(srv *s, sw_err *err) {
    if (!s->rtr) return SW_OK;
    char name[128], id[17];
    sw_rtr_model_id(sw_model_gguf(s->model), name, sizeof name, id);
    sw_status st = sw_rtr_check_model(s->rtr, name, id, err);
    if (st == SW_OK && sw_rtr_spec_get(s->rtr)->hidden &&
        sw_rtr_spec_get(s->rtr)->n_embd != (int32_t)sw_model_config_get(s->model)->n_embd)
        st = sw_err_set(err, SW_E_INVALID_ARG, "--router: hidden width %d, the model has %lld",
                        sw_rtr_spec_get(s->rtr)->n_embd,
                        (long long)sw_model_config_get(s->model)->n_embd);
    if (st == SW_OK) st = check_prompt(s, err);
    return st == SW_OK ? SW_OK : sw_err_wrap(err, SW_E_INVALID_ARG, "--router %s", s->cfg.router);
}

void srv_learned_free(srv *s) {
    sw_rtr_free(s->rtr);
    sw_share_ctl_free(s->share);
    if (s->shadow_mu_init) pthread_mutex_destroy(&s->shadow_mu);
    s->rtr = NULL;
    s->share = NULL;
    s->shadow_mu_init = false;
}

unsigned srv_learned_hidden(const srv *s) {
    return s->rtr ? sw_rtr_spec_get(s->rtr)->hidden : 0;
}

char *srv_query_text(const srv_request *r) {
    if (r->prompt) return strdup(r->prompt);
    for (size_t i = r->n_msgs; i-- > 0;) {
        const srv_msg *m = &r->msgs[i];
        if (strcmp(m->role, "user")) continue;
        sbuf b = {0};
        sbuf_puts(&b, "");
        for (size_t k = 0, n = 0; k < m->n_blocks; k++) {
            if (m->blocks[k].type != SRV_BLOCK_TEXT || !m->blocks[k].text) continue;
            if (n++) sbuf_puts(&b, "\n");
            sbuf_puts(&b, m->blocks[k].text);
        }
        return sbuf_take(&b);
    }
    return strdup("");
}

double srv_learned_score(srv *s, const char *query, int32_t n_prompt, const float *hidden_last,
                         const float *hidden_mean, int32_t n_embd) {
    if (!s->rtr) return NAN;
    sw_rtr_input in = {.hidden_last = hidden_last, .hidden_mean = hidden_mean, .n_embd = n_embd,
                       .text = query, .n_prompt_tokens = n_prompt};
    double p;
    sw_err err = {{0}};
    if (sw_rtr_score(s->rtr, &in, &p, NULL, &err) != SW_OK) {
        sw_log(SW_LOG_WARN, "router: %s", err.msg);
        return NAN;
    }
    return p;
}

bool srv_learned_has_budget(const srv *s) { return s->share != NULL; }

bool srv_learned_to_cloud(srv *s, double score) {
    return s->share && isfinite(score) && sw_share_ctl_decide(s->share, score);
}

/* ---- shadow sampling ------------------------------------------------------------------- */

bool srv_shadow_pick(srv *s) {
    if (!s->rtr || !s->cloud || !(s->cfg.shadow_rate > 0)) return false;
    /* error diffusion: exactly the rate over time, no randomness in tests */
    pthread_mutex_lock(&s->shadow_mu);
    s->shadow_debt += s->cfg.shadow_rate;
    bool pick = s->shadow_debt >= 1.0;
    if (pick) s->shadow_debt -= 1.0;
    pthread_mutex_unlock(&s->shadow_mu);
    return pick;
}

typedef struct shadow_job {
    srv *s;
    cJSON *body;
    bool native;
    char *prompt, *local, *query;
    int32_t n_prompt, n_embd;
    float *hl, *hm;
    double t_start;
} shadow_job;

static void shadow_free(shadow_job *j) {
    cJSON_Delete(j->body);
    free(j->prompt), free(j->local), free(j->query), free(j->hl), free(j->hm);
    free(j);
}

/* The cloud answer's text: an OpenAI chat.completion's message, or the first
 * text block of an Anthropic message. */
static const char *answer_text(const cJSON *resp) {
    const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(resp, "content");
    if (cJSON_IsArray(blocks)) {
        for (const cJSON *b = blocks->child; b; b = b->next) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "text");
            if (cJSON_IsString(t)) return t->valuestring;
        }
        return NULL;
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(resp, "choices");
    const cJSON *c0 = cJSON_IsArray(ch) ? cJSON_GetArrayItem(ch, 0) : NULL;
    const cJSON *msg = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
    const cJSON *content = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
    return cJSON_IsString(content) ? content->valuestring : NULL;
}

static void *shadow_main(void *arg) {
    shadow_job *j = arg;
    srv *s = j->s;
    sw_cloud_result res;
    sw_err err = {{0}};
    sw_status st = j->native ? sw_cloud_messages(s->cloud, j->body, NULL, NULL, &res, &err)
                             : sw_cloud_chat(s->cloud, j->body, NULL, NULL, &res, &err);
    const char *cloud = st == SW_OK ? answer_text(res.response) : NULL;
    if (cloud) {
        /* the cloud's answer is the reference; either may restate the question */
        bool agree = sw_answer_match(j->prompt, j->local, cloud) ||
                     sw_answer_match(j->prompt, cloud, j->local);
        sw_rtr_input in = {.hidden_last = j->hl, .hidden_mean = j->hm, .n_embd = j->n_embd,
                           .text = j->query, .n_prompt_tokens = j->n_prompt};
        if (sw_rtr_update(s->rtr, &in, agree, 0, &err) == SW_OK) {
            char *sp = state_path(s->cfg.router);
            pthread_mutex_lock(&s->shadow_mu); /* one writer of the state file at a time */
            if (sp && sw_rtr_save(s->rtr, sp, &err) != SW_OK)
                sw_log(SW_LOG_WARN, "shadow: %s", err.msg);
            pthread_mutex_unlock(&s->shadow_mu);
            free(sp);
        } else {
            sw_log(SW_LOG_WARN, "shadow: %s", err.msg);
        }
        atomic_fetch_add(&s->shadow_labels, 1);
        if (agree) atomic_fetch_add(&s->shadow_agree, 1);
    } else {
        sw_log(SW_LOG_INFO, "shadow call failed (%s): %s", sw_status_str(st), err.msg);
    }
    srv_ledger_add(s, "shadow", SW_ROUTE_CLOUD, SW_REASON_SHADOW,
                   res.model[0] ? res.model : sw_cloud_model(s->cloud), res.prompt_tokens,
                   res.completion_tokens, j->t_start, st != SW_OK, NULL, NAN);
    sw_cloud_result_clear(&res);
    shadow_free(j);
    atomic_fetch_sub(&s->cloud_workers, 1); /* last: the server may free the cloud now */
    return NULL;
}

static float *dup_vec(const float *v, int32_t n) {
    if (!v) return NULL;
    float *c = malloc((size_t)n * sizeof *c);
    if (c) memcpy(c, v, (size_t)n * sizeof *c);
    return c;
}

void srv_shadow_start(srv *s, cJSON *body, bool native, const char *prompt,
                      const char *local_answer,
                      const char *query, int32_t n_prompt, const float *hidden_last,
                      const float *hidden_mean, int32_t n_embd) {
    shadow_job *j = calloc(1, sizeof *j);
    if (!j || !body) {
        cJSON_Delete(body);
        free(j);
        return;
    }
    j->s = s;
    j->body = body;
    j->native = native;
    j->prompt = strdup(prompt ? prompt : "");
    j->local = strdup(local_answer ? local_answer : "");
    j->query = strdup(query ? query : "");
    j->n_prompt = n_prompt;
    j->n_embd = n_embd;
    j->hl = dup_vec(hidden_last, n_embd);
    j->hm = dup_vec(hidden_mean, n_embd);
    j->t_start = sw_time_s();
    if (!j->prompt || !j->local || !j->query || (hidden_last && !j->hl) || (hidden_mean && !j->hm)) {
        shadow_free(j);
        return;
    }
    atomic_fetch_add(&s->cloud_workers, 1);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    if (pthread_create(&t, &attr, shadow_main, j) != 0) {
        atomic_fetch_sub(&s->cloud_workers, 1);
        shadow_free(j);
    }
    pthread_attr_destroy(&attr);
}
