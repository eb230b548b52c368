/* config.h — the routing policy file (--route-config FILE): one JSON object
 * that fills the fallback library's structs (sw_router_policy,
 * sw_monitor_params, sw_cloud_params, the ledger's price table and path).
 * The schema is in docs/fallback.md ("Policy file"); every key is optional,
 * unknown keys are errors (a typo must not silently disable a privacy rule),
 * and // and block comments are allowed.
 *
 * Ownership: a sw_route_config owns every string and array it points to
 * (also the ones a caller puts there with sw_route_config_set_str); the
 * structs inside borrow from it, so it must outlive the router, cloud client
 * and ledger created from it only until their create calls return (they copy). */
#ifndef SW_ROUTE_CONFIG_H
#define SW_ROUTE_CONFIG_H

#include "cloud.h"
#include "ledger.h"
#include "monitor.h"
#include "router.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "models": a requested model name and the route it asks for ("*": every
 * name the server does not know otherwise). */
typedef struct sw_model_route {
    char *name;          /* owned */
    sw_route_pref route;
} sw_model_route;

typedef struct sw_route_config {
    sw_router_policy policy;    /* policy.keys points into `keys` below */
    sw_monitor_params monitor;  /* monitor.enabled also sets policy.escalation */
    /* Cloud provider: configured when the file has a "cloud" object or a
     * caller sets cloud_configured (the server does for any --cloud-* flag). */
    bool cloud_configured;
    sw_cloud_params cloud;      /* string members point at the owned copies below */
    char *cloud_url, *cloud_model, *cloud_key_env, *cloud_version;
    sw_key_policy *keys;        /* [n_keys]; key strings owned */
    size_t n_keys;
    sw_price *prices;           /* [n_prices]; model strings owned */
    size_t n_prices;
    char *ledger_path;          /* NULL: totals only */
    /* "reference_price": savings are priced at this when the cloud model has
     * no price or no cloud is configured; .model points at reference_model. */
    bool have_reference_price;
    sw_price reference_price;
    char *reference_model;      /* its label ("reference" when the file names none) */
    sw_model_route *models;     /* [n_models]; names owned */
    size_t n_models;
} sw_route_config;

/* Defaults: sw_router_policy_default, sw_monitor_params_default,
 * sw_cloud_params_default, no keys, no prices, no ledger file, no cloud. */
void sw_route_config_init(sw_route_config *c);
/* Frees everything c owns and leaves it initialised again. */
void sw_route_config_free(sw_route_config *c);

/* Parse json[len] (borrowed) over the current contents of c: keys present in
 * the document replace what c had. `what` names the source in errors
 * ("route.json: cloud.timeout_s: expected a number"). SW_E_FORMAT for bad
 * JSON, SW_E_INVALID_ARG for a bad field. Never prints an API key. */
sw_status sw_route_config_parse(sw_route_config *c, const char *json, size_t len,
                                const char *what, sw_err *err);
/* Read and parse a file (SW_E_IO names it when it cannot be read). */
sw_status sw_route_config_load(sw_route_config *c, const char *path, sw_err *err);

/* Replace an owned string member (e.g. &c->cloud_url) with a copy of v
 * (NULL clears it) and re-point the struct members at the copies. */
sw_status sw_route_config_set_str(sw_route_config *c, char **field, const char *v, sw_err *err);

/* The "models" entry for name: the exact name, else "*" (star is set), else
 * NULL. */
const sw_model_route *sw_route_config_model(const sw_route_config *c, const char *name,
                                            bool *star);

/* Re-point c->cloud's string members and c->policy.keys at c's owned copies
 * (called by the functions above; exposed for callers that edit fields). */
void sw_route_config_sync(sw_route_config *c);

#ifdef __cplusplus
}
#endif
#endif
