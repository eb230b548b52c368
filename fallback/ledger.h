/* ledger.h — the cost ledger: one JSON line per finished request appended to a
 * file (an audit trail that survives restarts and greps well), plus running
 * totals in memory for GET /v1/usage and /metrics.
 *
 * A line (keys always present, in this order):
 *   {"time":"2026-05-09T07:35:25.123Z","request_id":"chatcmpl-..","route":"cloud",
 *    "reason":"overflow","model":"claude-sonnet-4-5","tokens_in":812,"tokens_out":95,
 *    "latency_ms":1534.2,"cost_usd":0.003861,"savings_usd":0,"status":"ok"}
 * cost_usd: cloud requests, from the price table entry of `model` (0 when the
 * model has no price). savings_usd: local requests, what their tokens would
 * have cost on the reference cloud model (the configured cloud model), i.e.
 * the money spilling *less* saved. Rejected requests cost and save nothing.
 *
 * Threading: every function may be called from any thread; lines are written
 * whole with one write(2) on an O_APPEND descriptor under a mutex, so
 * concurrent requests (and concurrent processes) never interleave lines. */
#ifndef SW_LEDGER_H
#define SW_LEDGER_H

#include "router.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* USD per million tokens. model may end in '*' to match a prefix
 * ("claude-sonnet-4*"); exact names win over prefixes, longer prefixes over
 * shorter ones. */
typedef struct sw_price {
    const char *model;
    double input_per_mtok;
    double output_per_mtok;
} sw_price;

typedef struct sw_ledger_params {
    const char *path;            /* JSONL file to append to; NULL: totals only */
    const sw_price *prices;      /* [n_prices], copied */
    size_t n_prices;
    const char *reference_model; /* cloud model that savings are priced at; NULL: no savings */
} sw_ledger_params;

typedef struct sw_ledger sw_ledger;

/* Opens (creates) the file for appending; SW_E_IO names the path. A price with
 * a negative or non-finite number is SW_E_INVALID_ARG naming the model. */
sw_status sw_ledger_create(const sw_ledger_params *p, sw_ledger **out, sw_err *err);
void sw_ledger_free(sw_ledger *l); /* NULL is a no-op */

/* Look up a model's price; false when it has none. */
bool sw_ledger_price(const sw_ledger *l, const char *model, sw_price *out);

typedef struct sw_ledger_entry {
    double unix_time;            /* wall-clock seconds since the epoch; 0: now */
    const char *request_id;      /* borrowed; NULL -> "" */
    sw_route route;
    sw_route_reason reason;
    const char *model;           /* model that served it (cloud model, or local name) */
    int64_t tokens_in;           /* prompt tokens (the serving model's count) */
    int64_t tokens_out;          /* completion tokens */
    double latency_ms;           /* request arrival to last byte */
    bool error;                  /* the request failed (status "error") */
} sw_ledger_entry;

/* Append the line and update the totals. Cost and savings are computed here;
 * *cost_usd (optional) receives the cost. SW_E_IO when the write fails (totals
 * are still updated: the request did happen). */
sw_status sw_ledger_record(sw_ledger *l, const sw_ledger_entry *e, double *cost_usd, sw_err *err);

typedef struct sw_ledger_totals {
    uint64_t requests[SW_ROUTE_COUNT];                 /* by route */
    uint64_t by_reason[SW_ROUTE_COUNT][SW_REASON_COUNT];
    uint64_t errors;
    int64_t tokens_in[SW_ROUTE_COUNT];
    int64_t tokens_out[SW_ROUTE_COUNT];
    double cost_usd;                                   /* spent on the cloud */
    double savings_usd;                                /* not spent thanks to local serving */
    double latency_ms_sum[SW_ROUTE_COUNT];
    uint64_t write_errors;
} sw_ledger_totals;

void sw_ledger_totals_get(sw_ledger *l, sw_ledger_totals *out);

/* The totals as the body of GET /v1/usage:
 *   {"object":"spillway.usage","requests":{"total":N,"local":..,"cloud":..,"reject":..},
 *    "reasons":{"local":{"default":..},"cloud":{"overflow":..}},"errors":N,
 *    "tokens":{"local":{"input":..,"output":..},"cloud":{...}},
 *    "cost_usd":..,"savings_usd":..,"reference_model":".."}
 * Malloc'd (caller frees), NULL on out-of-memory. */
char *sw_ledger_usage_json(sw_ledger *l);

/* The totals as Prometheus text exposition lines (HELP/TYPE included), to be
 * appended to /metrics: spillway_route_requests_total{route,reason},
 * spillway_route_errors_total, spillway_route_tokens_total{route,direction},
 * spillway_cloud_cost_usd_total, spillway_cloud_savings_usd_total,
 * spillway_ledger_write_errors_total. Malloc'd, caller frees. */
char *sw_ledger_prometheus(sw_ledger *l);

#ifdef __cplusplus
}
#endif
#endif
