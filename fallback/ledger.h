/* ledger.h — the cost ledger: one JSON line per finished request appended to a
 * file (an audit trail that survives restarts and greps well), plus running
 * totals in memory for GET /v1/usage and /metrics.
 *
 * A line (keys always present, in this order):
 *   {"time":"2026-05-09T07:35:25.123Z","request_id":"chatcmpl-..","route":"cloud",
 *    "reason":"overflow","model":"claude-sonnet-4-5","tokens_in":812,"tokens_out":95,
 *    "latency_ms":1534.2,"cost_usd":0.003861,"savings_usd":0,"status":"ok",
 *    "redacted":2,"redacted_kinds":"email,phone"}
 * cost_usd: cloud requests, from the price table entry of `model` (0 when the
 * model has no price). savings_usd: local requests, what their tokens would
 * have cost at the reference price: the reference model's entry in the price
 * table (the configured cloud model), else the policy's reference_price; i.e.
 * the money spilling *less* saved. Rejected requests cost and save nothing.
 * redacted: spans of personal data replaced by placeholders before the
 * request went to the cloud, and their kinds; never the values.
 *
 * Besides the totals, every line is counted into three in-memory rings of
 * time buckets (UTC minutes: the last 24 h, hours: 31 days, days: 400
 * days) for charts: sw_ledger_usage_series_json. They cover the time since
 * the server started.
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
    const char *reference_model; /* cloud model that savings are priced at; NULL: none */
    const sw_price *reference_price; /* used when reference_model is NULL or has no price;
                                        its .model is a label (copied); NULL: no savings */
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
    int32_t redacted_spans;      /* PII spans replaced before it went to the cloud */
    unsigned redacted_kinds;     /* their kinds (SW_PII_* bits) */
    bool has_route_score;        /* the learned router scored it: */
    double route_score;          /* P(local answer not good enough), in [0, 1] */
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
    uint64_t redacted_requests;                        /* requests with >= 1 redacted span */
    uint64_t redacted_spans;
    uint64_t write_errors;
} sw_ledger_totals;

void sw_ledger_totals_get(sw_ledger *l, sw_ledger_totals *out);

/* The totals as the body of GET /v1/usage:
 *   {"object":"spillway.usage","requests":{"total":N,"local":..,"cloud":..,"reject":..},
 *    "reasons":{"local":{"default":..},"cloud":{"overflow":..}},"errors":N,
 *    "tokens":{"local":{"input":..,"output":..},"cloud":{...},"reject":{...}},
 *    (reject: the prompt tokens that were refused)
 *    "cost_usd":..,"savings_usd":..,"redacted":{"requests":..,"spans":..},
 *    "reference_model":".."|null,
 *    "reference_price":{"input":..,"output":..}|null}
 * Malloc'd (caller frees), NULL on out-of-memory. */
char *sw_ledger_usage_json(sw_ledger *l);

typedef enum sw_ledger_bucket {
    SW_BUCKET_MINUTE = 0,
    SW_BUCKET_HOUR,
    SW_BUCKET_DAY,
} sw_ledger_bucket;
#define SW_BUCKET_COUNT 3

const char *sw_ledger_bucket_str(sw_ledger_bucket b); /* "minute", "hour", "day" */
/* "minute" / "hour" / "day"; SW_E_INVALID_ARG names the value. */
sw_status sw_ledger_bucket_parse(const char *s, sw_ledger_bucket *out, sw_err *err);
double sw_ledger_bucket_seconds(sw_ledger_bucket b); /* 60, 3600, 86400 */
int sw_ledger_bucket_capacity(sw_ledger_bucket b);   /* buckets kept: 1440, 744, 400 */

/* The usage object above plus the time series of the last n buckets ending
 * with the one that holds `now` (unix seconds; <= 0: the clock):
 *   "series":{"bucket":"minute","bucket_s":60,"start":T0,"end":T1,
 *             "points":[{"t":T,"requests":{..},"reasons":{..},"errors":..,
 *                        "tokens":{..},"cost_usd":..,"savings_usd":..,
 *                        "redacted":{..}}, ...]}
 * start is the first bucket's start, end the last one's end; points are the
 * buckets in [start, end) that counted any request, oldest first (a bucket
 * that is absent counted nothing). n is clamped to [1, capacity]. */
char *sw_ledger_usage_series_json(sw_ledger *l, sw_ledger_bucket b, int n, double now);

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
