/* route_eval.h — how well a routing score ranks, in RouteLLM's terms.
 *
 * Items have a score (higher: more likely the local answer is not good
 * enough), whether the local answer was right, and whether the cloud's was
 * (counted right when unknown). Routing the top k items by score to the cloud
 * gives quality perf(k) = (right cloud answers among the top k + right local
 * answers among the rest) / n. With weak = perf(0) and strong = perf(n):
 *   PGR(k)  = (perf(k) - weak) / (strong - weak)   performance gap recovered
 *   APGR    = the area under PGR over the cloud share k/n in [0, 1]
 *             (trapezoids over every k; a random router has 0.5 in expectation)
 *   CPT(x)  = the smallest cloud share whose PGR reaches x
 *   PGR@s   = PGR at k = round(s * n)
 * and AUROC of the score for "local answer wrong". Ties in the score are
 * broken by item order. */
#ifndef SW_ROUTE_EVAL_H
#define SW_ROUTE_EVAL_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_route_eval {
    double auroc;
    double apgr;
    double cpt50, cpt80;
    double pgr20, pgr40, pgr60;
    double weak, strong;   /* perf(0), perf(n) */
    int32_t n, n_wrong;
} sw_route_eval;

/* cloud_ok may be NULL (every cloud answer right). SW_E_INVALID_ARG when
 * n < 1 or when strong <= weak (no gap to recover; the message says so). */
sw_status sw_route_evaluate(const double *score, const uint8_t *local_ok, const uint8_t *cloud_ok,
                            int32_t n, sw_route_eval *out, sw_err *err);

/* PGR at cloud share s (0..1) of the ranking by score. */
double sw_route_pgr_at(const double *score, const uint8_t *local_ok, const uint8_t *cloud_ok,
                       int32_t n, double s);

#ifdef __cplusplus
}
#endif
#endif
