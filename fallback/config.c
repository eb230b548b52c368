/* config.c — the --route-config JSON loader (config.h; schema in docs/fallback.md).
 *
 * Strict on purpose: an unknown key or a wrong type is an error that names
 * the field, because a misspelt "privte" that is silently ignored would send
 * private requests to the cloud. Keys of the "keys" object are our clients'
 * API keys: errors name them by position only, never by value. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Policy files are small; anything bigger is a mistake (wrong file). */
#define CONFIG_MAX_BYTES (4u << 20)

typedef struct pctx {
    sw_route_config *c;
    const char *what;
    sw_err *err;
} pctx;

static sw_status bad(const pctx *p, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static sw_status bad(const pctx *p, const char *field, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sw_err_set(p->err, SW_E_INVALID_ARG, "%s: %s: %s", p->what, field, msg);
}

void sw_route_config_init(sw_route_config *c) {
    memset(c, 0, sizeof *c);
    sw_router_policy_default(&c->policy);
    sw_monitor_params_default(&c->monitor);
    sw_cloud_params_default(&c->cloud);
}

void sw_route_config_free(sw_route_config *c) {
    if (!c) return;
    free(c->cloud_url);
    free(c->cloud_model);
    free(c->cloud_key_env);
    free(c->cloud_version);
    for (size_t i = 0; i < c->n_keys; i++) free((char *)c->keys[i].key);
    free(c->keys);
    for (size_t i = 0; i < c->n_models; i++) free(c->models[i].name);
    free(c->models);
    for (size_t i = 0; i < c->n_prices; i++) free((char *)c->prices[i].model);
    free(c->prices);
    free(c->ledger_path);
    free(c->reference_model);
    sw_route_config_init(c);
}

void sw_route_config_sync(sw_route_config *c) {
    c->cloud.base_url = c->cloud_url;
    c->cloud.model = c->cloud_model;
    c->cloud.key_env = c->cloud_key_env;
    c->cloud.anthropic_version = c->cloud_version;
    c->policy.keys = c->keys;
    c->policy.n_keys = c->n_keys;
    c->policy.escalation = c->monitor.enabled;
    c->reference_price.model = c->reference_model;
}

sw_status sw_route_config_set_str(sw_route_config *c, char **field, const char *v, sw_err *err) {
    char *copy = NULL;
    if (v && !(copy = strdup(v))) return sw_err_set(err, SW_E_NOMEM, "route config: out of memory");
    free(*field);
    *field = copy;
    sw_route_config_sync(c);
    return SW_OK;
}

/* ---- typed getters: absent -> SW_OK and no change ---------------------------------- */

static sw_status get_bool(const pctx *p, const cJSON *o, const char *key, const char *path,
                          bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return SW_OK;
    if (!cJSON_IsBool(v)) return bad(p, path, "expected true or false");
    *out = cJSON_IsTrue(v);
    return SW_OK;
}

static sw_status get_num(const pctx *p, const cJSON *o, const char *key, const char *path,
                         double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return SW_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return bad(p, path, "expected a number");
    if (v->valuedouble < lo || v->valuedouble > hi)
        return bad(p, path, "%g is not in [%g, %g]", v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return SW_OK;
}

static sw_status get_int(const pctx *p, const cJSON *o, const char *key, const char *path,
                         int32_t lo, int32_t hi, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return SW_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return bad(p, path, "expected an integer");
    if (v->valuedouble < lo || v->valuedouble > hi)
        return bad(p, path, "%g is not in [%d, %d]", v->valuedouble, lo, hi);
    *out = (int32_t)v->valuedouble;
    return SW_OK;
}

/* A monitor threshold: a number, or null to switch that check off (NaN). */
static sw_status get_threshold(const pctx *p, const cJSON *o, const char *key, const char *path,
                               double lo, double hi, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return SW_OK;
    if (cJSON_IsNull(v)) {
        *out = NAN;
        return SW_OK;
    }
    double d = 0;
    sw_status st = get_num(p, o, key, path, lo, hi, &d);
    if (st == SW_OK) *out = (float)d;
    return st;
}

static sw_status get_str(const pctx *p, const cJSON *o, const char *key, const char *path,
                         char **field) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return SW_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0]) return bad(p, path, "expected a non-empty string");
    return sw_route_config_set_str(p->c, field, v->valuestring, p->err);
}

/* Every member of o must be one of the allowed names. */
static sw_status only_keys(const pctx *p, const cJSON *o, const char *prefix,
                           const char *const *allowed, size_t n) {
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++) ok = !strcmp(it->string, allowed[i]);
        if (!ok) {
            char path[256];
            snprintf(path, sizeof path, "%.120s%.60s", prefix, it->string);
            return bad(p, path, "unknown key");
        }
    }
    return SW_OK;
}

#define ALLOWED(o, prefix, ...)                                                              \
    do {                                                                                    \
        static const char *const k_[] = {__VA_ARGS__};                                      \
        sw_status st_ = only_keys(p, (o), (prefix), k_, sizeof k_ / sizeof k_[0]);          \
        if (st_ != SW_OK) return st_;                                                       \
    } while (0)

#define TRY(x)                                                                               \
    do {                                                                                    \
        sw_status st_ = (x);                                                                \
        if (st_ != SW_OK) return st_;                                                       \
    } while (0)

/* ---- sections ------------------------------------------------------------------------ */

static sw_status parse_detectors(const pctx *p, const cJSON *v, const char *path) {
    if (!cJSON_IsArray(v)) return bad(p, path, "expected an array of detector names");
    unsigned kinds = 0;
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, v) {
        char ip[48];
        snprintf(ip, sizeof ip, "%s[%zu]", path, i++);
        if (!cJSON_IsString(it)) return bad(p, ip, "expected a string");
        sw_pii_kind k;
        sw_err e = {{0}};
        if (sw_pii_kind_parse(it->valuestring, &k, &e) != SW_OK) return bad(p, ip, "%s", e.msg);
        kinds |= (unsigned)k;
    }
    p->c->policy.pii_kinds = kinds;
    return SW_OK;
}

static sw_status get_pii_action(const pctx *p, const cJSON *o, const char *key, const char *path,
                                sw_pii_action *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return SW_OK;
    sw_err e = {{0}};
    if (!cJSON_IsString(v) || sw_pii_action_parse(v->valuestring, out, &e) != SW_OK)
        return bad(p, path, "expected \"local\", \"redact\" or \"refuse\"");
    return SW_OK;
}

/* "pii": ["email", ...] (the detectors), or {"action": ..., "detectors": [...]}. */
static sw_status parse_pii(const pctx *p, const cJSON *v) {
    if (cJSON_IsArray(v)) return parse_detectors(p, v, "pii");
    if (!cJSON_IsObject(v))
        return bad(p, "pii", "expected {\"action\": ..., \"detectors\": [...]} or an array of detector names");
    ALLOWED(v, "pii.", "action", "detectors");
    TRY(get_pii_action(p, v, "action", "pii.action", &p->c->policy.pii_action));
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "detectors");
    return d ? parse_detectors(p, d, "pii.detectors") : SW_OK;
}

static sw_status parse_keys(const pctx *p, const cJSON *v) {
    if (!cJSON_IsObject(v)) return bad(p, "keys", "expected an object {\"KEY\": {...}}");
    size_t n = (size_t)cJSON_GetArraySize(v);
    sw_key_policy *keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) return sw_err_set(p->err, SW_E_NOMEM, "%s: out of memory", p->what);
    sw_status st = SW_OK;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        char path[48];
        snprintf(path, sizeof path, "keys[%zu]", i); /* never the key itself */
        if (!it->string[0]) {
            st = bad(p, path, "empty key");
            break;
        }
        if (!cJSON_IsObject(it)) {
            st = bad(p, path, "expected an object with \"private\", \"local_only\" and/or \"pii\"");
            break;
        }
        static const char *const allowed[] = {"private", "local_only", "pii"};
        char prefix[56];
        snprintf(prefix, sizeof prefix, "%s.", path);
        if ((st = only_keys(p, it, prefix, allowed, 3)) != SW_OK) break;
        char pp[64];
        snprintf(pp, sizeof pp, "%s.private", path);
        if ((st = get_bool(p, it, "private", pp, &keys[i].private_)) != SW_OK) break;
        snprintf(pp, sizeof pp, "%s.local_only", path);
        if ((st = get_bool(p, it, "local_only", pp, &keys[i].local_only)) != SW_OK) break;
        snprintf(pp, sizeof pp, "%s.pii", path);
        if ((st = get_pii_action(p, it, "pii", pp, &keys[i].pii)) != SW_OK) break;
        if (!(keys[i].key = strdup(it->string))) {
            st = sw_err_set(p->err, SW_E_NOMEM, "%s: out of memory", p->what);
            break;
        }
        i++;
    }
    if (st != SW_OK) {
        for (size_t j = 0; j < n; j++) free((char *)keys[j].key);
        free(keys);
        return st;
    }
    for (size_t j = 0; j < p->c->n_keys; j++) free((char *)p->c->keys[j].key);
    free(p->c->keys);
    p->c->keys = keys;
    p->c->n_keys = i;
    return SW_OK;
}

static sw_status parse_monitor(const pctx *p, const cJSON *v) {
    if (!cJSON_IsObject(v)) return bad(p, "monitor", "expected an object");
    ALLOWED(v, "monitor.", "enabled", "probe_tokens", "min_tokens", "low_prob", "cloud_share",
            "min_mean_logprob", "max_low_share", "max_mean_entropy");
    sw_monitor_params *m = &p->c->monitor;
    TRY(get_bool(p, v, "enabled", "monitor.enabled", &m->enabled));
    TRY(get_int(p, v, "probe_tokens", "monitor.probe_tokens", 1, 4096, &m->probe_tokens));
    TRY(get_int(p, v, "min_tokens", "monitor.min_tokens", 0, 4096, &m->min_tokens));
    double lp = m->low_prob;
    TRY(get_num(p, v, "low_prob", "monitor.low_prob", 1e-9, 1, &lp));
    m->low_prob = (float)lp;
    /* Thresholds may be "impossible" on purpose (e.g. min_mean_logprob 0 to
     * escalate everything in a test); only the type and sign are checked. */
    TRY(get_threshold(p, v, "min_mean_logprob", "monitor.min_mean_logprob", -1e6, 0,
                      &m->min_mean_logprob));
    TRY(get_threshold(p, v, "max_low_share", "monitor.max_low_share", 0, 1, &m->max_low_share));
    TRY(get_threshold(p, v, "max_mean_entropy", "monitor.max_mean_entropy", 0, 1e6,
                      &m->max_mean_entropy));
    /* A fixed threshold given as a number means fixed thresholds: the
     * self-calibrating share (the default) steps aside, unless the file asks
     * for both, which is contradictory. */
    static const char *const fixed[] = {"min_mean_logprob", "max_low_share", "max_mean_entropy"};
    const char *named = NULL;
    for (size_t i = 0; i < 3 && !named; i++)
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(v, fixed[i]))) named = fixed[i];
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(v, "cloud_share");
    if (cs && cJSON_IsNumber(cs) && named)
        return bad(p, "monitor.cloud_share",
                   "a share and a fixed threshold (monitor.%s) exclude each other: give one", named);
    if (named) m->cloud_share = NAN;
    TRY(get_threshold(p, v, "cloud_share", "monitor.cloud_share", 0, 1, &m->cloud_share));
    return SW_OK;
}

static sw_status parse_cloud(const pctx *p, const cJSON *v) {
    if (!cJSON_IsObject(v)) return bad(p, "cloud", "expected an object");
    ALLOWED(v, "cloud.", "provider", "url", "model", "key_env", "anthropic_version",
            "connect_timeout_s", "timeout_s", "idle_timeout_s", "max_attempts", "retry_base_s",
            "retry_max_s", "retry_budget_s", "breaker_failures", "breaker_cooldown_s",
            "default_max_tokens", "no_stream_usage");
    sw_route_config *c = p->c;
    sw_cloud_params *cp = &c->cloud;
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(v, "provider");
    if (prov) {
        sw_err e = {{0}};
        if (!cJSON_IsString(prov)) return bad(p, "cloud.provider", "expected \"anthropic\" or \"openai\"");
        if (sw_provider_parse(prov->valuestring, &cp->provider, &e) != SW_OK)
            return bad(p, "cloud.provider", "%s", e.msg);
    }
    TRY(get_str(p, v, "url", "cloud.url", &c->cloud_url));
    TRY(get_str(p, v, "model", "cloud.model", &c->cloud_model));
    TRY(get_str(p, v, "key_env", "cloud.key_env", &c->cloud_key_env));
    TRY(get_str(p, v, "anthropic_version", "cloud.anthropic_version", &c->cloud_version));
    TRY(get_num(p, v, "connect_timeout_s", "cloud.connect_timeout_s", 0, 86400, &cp->connect_timeout_s));
    TRY(get_num(p, v, "timeout_s", "cloud.timeout_s", 0, 86400, &cp->timeout_s));
    TRY(get_num(p, v, "idle_timeout_s", "cloud.idle_timeout_s", 0, 86400, &cp->idle_timeout_s));
    int32_t attempts = cp->retry.max_attempts;
    TRY(get_int(p, v, "max_attempts", "cloud.max_attempts", 1, 100, &attempts));
    cp->retry.max_attempts = attempts;
    TRY(get_num(p, v, "retry_base_s", "cloud.retry_base_s", 0, 3600, &cp->retry.base_delay_s));
    TRY(get_num(p, v, "retry_max_s", "cloud.retry_max_s", 0, 3600, &cp->retry.max_delay_s));
    TRY(get_num(p, v, "retry_budget_s", "cloud.retry_budget_s", 0, 86400, &cp->retry.budget_s));
    TRY(get_int(p, v, "breaker_failures", "cloud.breaker_failures", 1, 1000000, &cp->breaker_failures));
    TRY(get_num(p, v, "breaker_cooldown_s", "cloud.breaker_cooldown_s", 0, 86400,
                &cp->breaker_cooldown_s));
    TRY(get_int(p, v, "default_max_tokens", "cloud.default_max_tokens", 1, INT32_MAX,
                &cp->default_max_tokens));
    TRY(get_bool(p, v, "no_stream_usage", "cloud.no_stream_usage", &cp->no_stream_usage));
    c->cloud_configured = true;
    return SW_OK;
}

/* {"input": USD per Mtok, "output": USD per Mtok} (and "model" when label_ok). */
static sw_status get_price(const pctx *p, const cJSON *o, const char *path, bool label_ok,
                           sw_price *out) {
    if (!cJSON_IsObject(o))
        return bad(p, path, "expected {\"input\": USD per Mtok, \"output\": USD per Mtok}");
    static const char *const allowed[] = {"input", "output", "model"};
    char prefix[124];
    snprintf(prefix, sizeof prefix, "%s.", path);
    TRY(only_keys(p, o, prefix, allowed, label_ok ? 3 : 2));
    char pp[132];
    snprintf(pp, sizeof pp, "%s.input", path);
    TRY(get_num(p, o, "input", pp, 0, 1e9, &out->input_per_mtok));
    snprintf(pp, sizeof pp, "%s.output", path);
    return get_num(p, o, "output", pp, 0, 1e9, &out->output_per_mtok);
}

static sw_status parse_prices(const pctx *p, const cJSON *v) {
    if (!cJSON_IsObject(v)) return bad(p, "prices", "expected an object {\"MODEL\": {\"input\": .., \"output\": ..}}");
    size_t n = (size_t)cJSON_GetArraySize(v);
    sw_price *prices = calloc(n ? n : 1, sizeof *prices);
    if (!prices) return sw_err_set(p->err, SW_E_NOMEM, "%s: out of memory", p->what);
    sw_status st = SW_OK;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        char path[120];
        snprintf(path, sizeof path, "prices.%.80s", it->string);
        if (!it->string[0]) {
            st = bad(p, "prices", "empty model name");
            break;
        }
        if ((st = get_price(p, it, path, false, &prices[i])) != SW_OK) break;
        if (!(prices[i].model = strdup(it->string))) {
            st = sw_err_set(p->err, SW_E_NOMEM, "%s: out of memory", p->what);
            break;
        }
        i++;
    }
    if (st != SW_OK) {
        for (size_t j = 0; j < n; j++) free((char *)prices[j].model);
        free(prices);
        return st;
    }
    for (size_t j = 0; j < p->c->n_prices; j++) free((char *)p->c->prices[j].model);
    free(p->c->prices);
    p->c->prices = prices;
    p->c->n_prices = i;
    return SW_OK;
}

/* "reference_price": what a locally served token would have cost, for the
 * savings when the cloud model has no price (or there is no cloud). */
static sw_status parse_reference(const pctx *p, const cJSON *v) {
    sw_price pr = {0};
    TRY(get_price(p, v, "reference_price", true, &pr));
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "model");
    if (m && (!cJSON_IsString(m) || !m->valuestring[0]))
        return bad(p, "reference_price.model", "expected a non-empty string");
    if (!cJSON_GetObjectItemCaseSensitive(v, "input") || !cJSON_GetObjectItemCaseSensitive(v, "output"))
        return bad(p, "reference_price", "needs both \"input\" and \"output\" (USD per Mtok)");
    TRY(sw_route_config_set_str(p->c, &p->c->reference_model, m ? m->valuestring : "reference",
                                p->err));
    p->c->reference_price = pr;
    p->c->have_reference_price = true;
    return SW_OK;
}

static bool route_pref(const cJSON *v, sw_route_pref *out) {
    const char *s = cJSON_IsString(v) ? v->valuestring : "";
    if (!strcmp(s, "auto")) *out = SW_PREF_AUTO;
    else if (!strcmp(s, "local")) *out = SW_PREF_LOCAL;
    else if (!strcmp(s, "cloud")) *out = SW_PREF_CLOUD;
    else return false;
    return true;
}

/* "models": {"NAME": "auto"|"local"|"cloud", "*": ...} */
static sw_status parse_models(const pctx *p, const cJSON *v) {
    if (!cJSON_IsObject(v)) return bad(p, "models", "expected an object {\"NAME\": \"cloud\", ...}");
    size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
    sw_model_route *m = calloc(n ? n : 1, sizeof *m);
    if (!m) return sw_err_set(p->err, SW_E_NOMEM, "%s: out of memory", p->what);
    sw_status st = SW_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        char path[300];
        snprintf(path, sizeof path, "models.%.256s", it->string);
        if (!it->string[0]) st = bad(p, "models", "a model name is empty");
        else if (!route_pref(it, &m[i].route)) st = bad(p, path, "expected \"auto\", \"local\" or \"cloud\"");
        else if (!(m[i].name = strdup(it->string)))
            st = sw_err_set(p->err, SW_E_NOMEM, "%s: out of memory", p->what);
        if (st != SW_OK) break;
        i++;
    }
    if (st != SW_OK) {
        for (size_t j = 0; j < i; j++) free(m[j].name);
        free(m);
        return st;
    }
    for (size_t j = 0; j < p->c->n_models; j++) free(p->c->models[j].name);
    free(p->c->models);
    p->c->models = m;
    p->c->n_models = i;
    return SW_OK;
}

const sw_model_route *sw_route_config_model(const sw_route_config *c, const char *name,
                                            bool *star) {
    const sw_model_route *any = NULL;
    *star = false;
    for (size_t i = 0; name && i < c->n_models; i++) {
        if (!strcmp(c->models[i].name, name)) return &c->models[i];
        if (!strcmp(c->models[i].name, "*")) any = &c->models[i];
    }
    *star = any != NULL;
    return any;
}

static sw_status parse_root(const pctx *p, const cJSON *root) {
    if (!cJSON_IsObject(root)) return bad(p, "(top level)", "expected a JSON object");
    ALLOWED(root, "", "default_route", "queue_threshold", "kv_pressure_threshold", "pii", "keys",
            "monitor", "cloud", "prices", "reference_price", "ledger", "models", "tools");
    sw_route_config *c = p->c;
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(root, "default_route");
    if (dr && !route_pref(dr, &c->policy.default_route))
        return bad(p, "default_route", "expected \"auto\", \"local\" or \"cloud\"");
    /* "tools": "cloud" sends requests that may call tools to the cloud */
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "tools");
    if (tr && !route_pref(tr, &c->policy.tools_route))
        return bad(p, "tools", "expected \"auto\", \"local\" or \"cloud\"");
    TRY(get_int(p, root, "queue_threshold", "queue_threshold", 0, INT32_MAX, &c->policy.queue_threshold));
    TRY(get_num(p, root, "kv_pressure_threshold", "kv_pressure_threshold", 0, 1,
                &c->policy.kv_pressure_threshold));
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "pii"))) TRY(parse_pii(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "keys"))) TRY(parse_keys(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "monitor"))) TRY(parse_monitor(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "cloud"))) TRY(parse_cloud(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "prices"))) TRY(parse_prices(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "reference_price"))) TRY(parse_reference(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "models"))) TRY(parse_models(p, v));
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "ledger"))) {
        if (cJSON_IsNull(v)) TRY(sw_route_config_set_str(c, &c->ledger_path, NULL, p->err));
        else TRY(get_str(p, root, "ledger", "ledger", &c->ledger_path));
    }
    return SW_OK;
}

sw_status sw_route_config_parse(sw_route_config *c, const char *json, size_t len,
                                const char *what, sw_err *err) {
    if (!c || !json) return sw_err_set(err, SW_E_INVALID_ARG, "sw_route_config_parse: NULL argument");
    if (!what) what = "route config";
    /* cJSON_Minify strips comments in place (strings stay intact), so the
     * documented example with its // notes is a valid file. */
    char *copy = malloc(len + 1);
    if (!copy) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
    memcpy(copy, json, len);
    copy[len] = '\0';
    if (strlen(copy) != len) {
        free(copy);
        return sw_err_set(err, SW_E_FORMAT, "%s: contains a NUL byte", what);
    }
    cJSON_Minify(copy);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, true);
    if (!root) {
        size_t at = end && end >= copy ? (size_t)(end - copy) : 0;
        sw_status st = sw_err_set(err, SW_E_FORMAT,
                                  "%s: not valid JSON (near byte %zu of the file without "
                                  "comments and whitespace)",
                                  what, at);
        free(copy);
        return st;
    }
    pctx p = {c, what, err};
    sw_status st = parse_root(&p, root);
    cJSON_Delete(root);
    free(copy);
    sw_route_config_sync(c);
    return st;
}

sw_status sw_route_config_load(sw_route_config *c, const char *path, sw_err *err) {
    if (!c || !path) return sw_err_set(err, SW_E_INVALID_ARG, "sw_route_config_load: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return sw_err_set(err, SW_E_IO, "route config '%s': %s", path, strerror(errno));
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    bool read_err = ferror(f) != 0;
    fclose(f);
    if (!buf) return sw_err_set(err, SW_E_NOMEM, "route config '%s': out of memory", path);
    sw_status st;
    if (read_err) st = sw_err_set(err, SW_E_IO, "route config '%s': read error", path);
    else if (n > CONFIG_MAX_BYTES)
        st = sw_err_set(err, SW_E_FORMAT, "route config '%s': larger than %u bytes", path,
                        CONFIG_MAX_BYTES);
    else st = sw_route_config_parse(c, buf, n, path, err);
    free(buf);
    return st;
}
