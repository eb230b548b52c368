/* bench_route.h — spillway-bench route: latency of the per-request routing
 * decision (extension parsing, key policy, PII scan, load rules). */
#ifndef SW_BENCH_ROUTE_H
#define SW_BENCH_ROUTE_H

/* spillway-bench route [--iters N] [--kb K] [--json]
 * Prints p50/p99/max in microseconds per request kind; returns 0 on success. */
int sw_bench_route_main(int argc, char **argv);

#endif
