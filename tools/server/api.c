/* api.c — the small endpoints: GET /v1/models[/{id}], POST /tokenize,
 * POST /detokenize, GET /metrics, and model-name matching. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cloud.h"
#include "cloud_wire.h"
#include "anthropic.h"
#include "embed.h"
#include "oai.h"

/* The local model's names. */
static bool local_name(const srv *s, const char *name) {
    if (!strcmp(name, s->model_id) || !strcmp(name, s->model_file)) return true;
    /* The file name without its extension, as many clients shorten it. */
    size_t n = strlen(s->model_file);
    if (n > 5 && !strcmp(s->model_file + n - 5, ".gguf") && strlen(name) == n - 5 &&
        !strncmp(name, s->model_file, n - 5))
        return true;
    return false;
}

bool srv_model_is_cloud(const srv *s, const char *name) {
    return name && s->cloud && !local_name(s, name) && !strcmp(name, sw_cloud_model(s->cloud));
}

/* The route a model name asks for, and whether the name is one the server
 * knows (its own names, the cloud model, a name of the policy's "models"). */
static sw_route_pref model_pref(const srv *s, const char *name, bool *known) {
    *known = true;
    if (!name || local_name(s, name)) return SW_PREF_AUTO;
    if (srv_model_is_cloud(s, name)) return SW_PREF_CLOUD;
    bool star;
    const sw_model_route *m = sw_route_config_model(&s->route, name, &star);
    *known = m && !star;
    return m ? m->route : SW_PREF_AUTO;
}

sw_route_pref srv_model_route(const srv *s, const char *name) {
    bool known;
    return model_pref(s, name, &known);
}

bool srv_model_name_ok(const srv *s, const char *name) {
    bool known;
    model_pref(s, name, &known);
    return known || !s->cfg.strict_model_names;
}

void srv_model_not_found(const srv *s, const char *name, srv_error *e) {
    srv_error_set(e, 404, "invalid_request_error", "model_not_found", "model",
                  "the model '%.200s' does not exist; this server serves '%s'%s%s%s "
                  "(--strict-model-names)",
                  name, s->model_id, s->cloud ? " and the cloud model '" : "",
                  s->cloud ? sw_cloud_model(s->cloud) : "", s->cloud ? "'" : "");
}

/* The cloud model as a list entry: requests naming it take the cloud route. */
static void cloud_model_obj(sbuf *b, const srv *s) {
    const char *id = sw_cloud_model(s->cloud), *prov = sw_provider_str(sw_cloud_provider(s->cloud));
    sbuf_puts(b, "{\"id\":");
    oai_json_str(b, id, strlen(id));
    sbuf_printf(b, ",\"object\":\"model\",\"created\":%" PRId64 ",\"owned_by\":", s->created);
    oai_json_str(b, prov, strlen(prov));
    sbuf_puts(b, ",\"meta\":{\"route\":\"cloud\",\"provider\":");
    oai_json_str(b, prov, strlen(prov));
    sbuf_puts(b, "}}");
}

static void model_obj(sbuf *b, const srv *s) {
    const sw_model_config *c = sw_model_config_get(s->model);
    sbuf_puts(b, "{\"id\":");
    oai_json_str(b, s->model_id, strlen(s->model_id));
    sbuf_printf(b, ",\"object\":\"model\",\"created\":%" PRId64 ",\"owned_by\":\"spillway\"",
                s->created);
    sbuf_printf(b,
                ",\"meta\":{\"n_ctx\":%d,\"n_ctx_train\":%" PRId64 ",\"n_vocab\":%" PRId64
                ",\"n_params\":%" PRIu64 ",\"size\":%" PRIu64 ",\"architecture\":",
                s->n_ctx, c->n_ctx_train, c->n_vocab, sw_model_n_params(s->model),
                sw_model_weight_bytes(s->model));
    oai_json_str(b, c->arch_name, strlen(c->arch_name));
    sbuf_puts(b, ",\"chat_template\":");
    const char *k = sw_chat_template_label(s->chat);
    oai_json_str(b, k, strlen(k));
    sbuf_puts(b, ",\"backend\":");
    const char *be = sw_backend_name(s->be);
    oai_json_str(b, be, strlen(be));
    sbuf_puts(b, ",\"route\":\"local\"}}");
}

/* The dedicated embedding model (--embedding-model), or NULL. */
static const srv_embedder *embed_model(const srv *s) {
    return s->cfg.embedding_model && s->embedder ? s->embedder : NULL;
}

/* It as a list entry: it answers /v1/embeddings only. */
static void embed_model_obj(sbuf *b, const srv *s, const srv_embedder *em) {
    sbuf_puts(b, "{\"id\":");
    oai_json_str(b, em->model, strlen(em->model));
    sbuf_printf(b,
                ",\"object\":\"model\",\"created\":%" PRId64
                ",\"owned_by\":\"spillway\",\"meta\":{\"route\":\"local\",\"endpoints\":"
                "[\"/v1/embeddings\"],\"dimensions\":%d,\"n_ctx\":%d}}",
                s->created, em->dim, em->max_tokens);
}

/* A name of the policy's "models" (or any other name the server serves): a
 * list entry saying which route it takes. */
static void mapped_model_obj(sbuf *b, const srv *s, const char *name, sw_route_pref route) {
    sbuf_puts(b, "{\"id\":");
    oai_json_str(b, name, strlen(name));
    sbuf_printf(b,
                ",\"object\":\"model\",\"created\":%" PRId64
                ",\"owned_by\":\"spillway\",\"meta\":{\"route\":\"%s\"}}",
                s->created, route == SW_PREF_LOCAL ? "local" : route == SW_PREF_CLOUD ? "cloud" : "auto");
}

int srv_handle_models(srv_conn *sc) {
    srv *s = sc->s;
    sbuf b = {0};
    if (sc->endpoint == EP_MODEL) {
        const char *id = sc->url_arg;
        const srv_embedder *em = embed_model(s);
        if (!srv_model_name_ok(s, id) && !(em && !strcmp(id, em->model))) {
            srv_error e;
            srv_model_not_found(s, id, &e);
            return srv_respond_error(sc, &e);
        }
        if (local_name(s, id)) model_obj(&b, s);
        else if (em && !strcmp(id, em->model)) embed_model_obj(&b, s, em);
        else if (srv_model_is_cloud(s, id)) cloud_model_obj(&b, s);
        else mapped_model_obj(&b, s, id, srv_model_route(s, id));
    } else {
        sbuf_puts(&b, "{\"object\":\"list\",\"data\":[");
        model_obj(&b, s);
        if (embed_model(s)) {
            sbuf_puts(&b, ",");
            embed_model_obj(&b, s, embed_model(s));
        }
        if (s->cloud) {
            sbuf_puts(&b, ",");
            cloud_model_obj(&b, s);
        }
        for (size_t i = 0; i < s->route.n_models; i++) {
            const sw_model_route *m = &s->route.models[i];
            if (!strcmp(m->name, "*") || local_name(s, m->name) || srv_model_is_cloud(s, m->name))
                continue;
            sbuf_puts(&b, ",");
            mapped_model_obj(&b, s, m->name, m->route);
        }
        sbuf_puts(&b, "]}");
    }
    return srv_respond(sc, 200, sbuf_take(&b), NULL);
}

int srv_handle_tokenize(srv_conn *sc) {
    srv *s = sc->s;
    srv_error e;
    cJSON *root = srv_json_parse_object(sc->body, sc->body_len, &e);
    if (!root) return srv_respond_error(sc, &e);
    int ret;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(root, "add_special");
    const cJSON *parse = cJSON_GetObjectItemCaseSensitive(root, "parse_special");
    if (!cJSON_IsString(content)) {
        srv_error_set(&e, 400, "invalid_request_error", content ? "invalid_type" :
                      "missing_required_parameter", "content", "'content' must be a string");
        ret = srv_respond_error(sc, &e);
    } else if ((add && !cJSON_IsBool(add)) || (parse && !cJSON_IsBool(parse))) {
        srv_error_set(&e, 400, "invalid_request_error", "invalid_type",
                      (add && !cJSON_IsBool(add)) ? "add_special" : "parse_special",
                      "'add_special' and 'parse_special' must be booleans");
        ret = srv_respond_error(sc, &e);
    } else {
        bool add_bos = add && cJSON_IsTrue(add) && sw_tokenizer_bos(s->tok) >= 0 &&
                       sw_tokenizer_add_bos(s->tok);
        bool special = !parse || cJSON_IsTrue(parse);
        int32_t *ids = NULL;
        size_t n = 0;
        sw_err err = {{0}};
        if (sw_tokenize(s->tok, content->valuestring, strlen(content->valuestring), add_bos,
                        special, &ids, &n, &err) != SW_OK) {
            srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "content",
                          "cannot tokenize: %s", err.msg);
            ret = srv_respond_error(sc, &e);
        } else {
            sbuf b = {0};
            sbuf_puts(&b, "{\"tokens\":[");
            for (size_t i = 0; i < n; i++) sbuf_printf(&b, i ? ",%d" : "%d", ids[i]);
            sbuf_puts(&b, "]}");
            free(ids);
            ret = srv_respond(sc, 200, sbuf_take(&b), NULL);
        }
    }
    cJSON_Delete(root);
    return ret;
}

int srv_handle_detokenize(srv_conn *sc) {
    srv *s = sc->s;
    srv_error e;
    cJSON *root = srv_json_parse_object(sc->body, sc->body_len, &e);
    if (!root) return srv_respond_error(sc, &e);
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    int ret;
    int32_t *ids = NULL;
    if (!cJSON_IsArray(toks)) {
        srv_error_set(&e, 400, "invalid_request_error",
                      toks ? "invalid_type" : "missing_required_parameter", "tokens",
                      "'tokens' must be an array of token ids");
        ret = srv_respond_error(sc, &e);
        goto done;
    }
    size_t n = (size_t)cJSON_GetArraySize(toks), i = 0;
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        ret = srv_respond(sc, 500, NULL, NULL);
        goto done;
    }
    int32_t n_vocab = sw_tokenizer_n_vocab(s->tok);
    const cJSON *t;
    cJSON_ArrayForEach(t, toks) {
        double d = cJSON_IsNumber(t) ? t->valuedouble : NAN;
        if (!cJSON_IsNumber(t) || d != floor(d) || d < 0 || d >= n_vocab) {
            srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "tokens",
                          "tokens[%zu] is not a token id of this model (0..%d)", i, n_vocab - 1);
            ret = srv_respond_error(sc, &e);
            goto done;
        }
        ids[i++] = (int32_t)d;
    }
    char *text = NULL;
    sw_err err = {{0}};
    if (sw_detokenize(s->tok, ids, n, false, &text, &err) != SW_OK) {
        srv_error_set(&e, 400, "invalid_request_error", "invalid_value", "tokens",
                      "cannot detokenize: %s", err.msg);
        ret = srv_respond_error(sc, &e);
        goto done;
    }
    sbuf b = {0};
    sbuf_puts(&b, "{\"content\":");
    oai_json_str(&b, text, strlen(text));
    sbuf_puts(&b, "}");
    free(text);
    ret = srv_respond(sc, 200, sbuf_take(&b), NULL);
done:
    free(ids);
    cJSON_Delete(root);
    return ret;
}

int srv_handle_metrics(srv_conn *sc) {
    srv *s = sc->s;
    sw_engine_stats st;
    bool ready = atomic_load(&s->state) == SRV_READY;
    if (ready) sw_engine_stats_get(s->engine, &st);
    char *text = srv_metrics_render(&s->metrics, ready ? &st : NULL, atomic_load(&s->active),
                                    atomic_load(&s->state));
    /* The ledger's routing totals (requests by route and reason, tokens,
     * cost and savings) follow the server's own metrics. */
    char *ledger = text && s->ledger ? sw_ledger_prometheus(s->ledger) : NULL;
    if (ledger) {
        size_t a = strlen(text), b = strlen(ledger);
        char *both = realloc(text, a + b + 1);
        if (both) {
            memcpy(both + a, ledger, b + 1);
            text = both;
        }
        free(ledger);
    }
    return srv_respond(sc, 200, text, "text/plain; version=0.0.4; charset=utf-8");
}

int srv_handle_count_tokens(srv_conn *sc) {
    srv *s = sc->s;
    srv_request r;
    srv_error e;
    if (!anthropic_parse_request(sc->body, sc->body_len, true, &r, &e))
        return srv_respond_error(sc, &e);
    int32_t *ids = NULL;
    size_t n = 0;
    char *echo = NULL;
    int ret;
    if (!srv_model_name_ok(s, r.model)) {
        srv_model_not_found(s, r.model, &e);
        ret = srv_respond_error(sc, &e);
    } else if (!srv_prompt_tokens(s, &r, &ids, &n, &echo, &e)) {
        ret = srv_respond_error(sc, &e);
    } else {
        sbuf b = {0};
        sbuf_printf(&b, "{\"input_tokens\":%zu}", n);
        ret = srv_respond(sc, 200, sbuf_take(&b), NULL);
    }
    free(ids);
    free(echo);
    srv_request_free(&r);
    return ret;
}
