/* route_eval.c — AUROC, APGR, CPT and PGR of a routing score (route_eval.h). */
#include "route_eval.h"

#include <math.h>
#include <stdlib.h>

#include "logreg.h"

typedef struct idx_score {
    double s;
    int32_t i;
} idx_score;

static int by_score_desc(const void *a, const void *b) {
    const idx_score *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* perf[k] for k = 0..n (malloc'd [n + 1]) */
static double *perf_curve(const double *score, const uint8_t *local_ok, const uint8_t *cloud_ok,
                          int32_t n) {
    idx_score *o = malloc((size_t)n * sizeof *o);
    double *perf = malloc((size_t)(n + 1) * sizeof *perf);
    if (!o || !perf) {
        free(o), free(perf);
        return NULL;
    }
    double right = 0;
    for (int32_t i = 0; i < n; i++) {
        o[i].s = isnan(score[i]) ? -INFINITY : score[i];
        o[i].i = i;
        right += local_ok[i] != 0;
    }
    qsort(o, (size_t)n, sizeof *o, by_score_desc);
    perf[0] = right / n;
    for (int32_t k = 0; k < n; k++) {
        int32_t i = o[k].i;
        right += (cloud_ok ? cloud_ok[i] != 0 : 1) - (local_ok[i] != 0);
        perf[k + 1] = right / n;
    }
    free(o);
    return perf;
}

static double pgr(const double *perf, int32_t n, int32_t k) {
    double gap = perf[n] - perf[0];
    return gap > 0 ? (perf[k] - perf[0]) / gap : 0.0;
}

double sw_route_pgr_at(const double *score, const uint8_t *local_ok, const uint8_t *cloud_ok,
                       int32_t n, double s) {
    if (n < 1) return 0;
    double *perf = perf_curve(score, local_ok, cloud_ok, n);
    if (!perf) return NAN;
    int32_t k = (int32_t)lround(fmin(1.0, fmax(0.0, s)) * n);
    double v = pgr(perf, n, k);
    free(perf);
    return v;
}

sw_status sw_route_evaluate(const double *score, const uint8_t *local_ok, const uint8_t *cloud_ok,
                            int32_t n, sw_route_eval *out, sw_err *err) {
    if (n < 1) return sw_err_set(err, SW_E_INVALID_ARG, "route evaluation: no items");
    double *perf = perf_curve(score, local_ok, cloud_ok, n);
    uint8_t *wrong = malloc((size_t)n);
    if (!perf || !wrong) {
        free(perf), free(wrong);
        return sw_err_set(err, SW_E_NOMEM, "out of memory evaluating %d items", n);
    }
    out->n = n;
    out->n_wrong = 0;
    for (int32_t i = 0; i < n; i++) out->n_wrong += (wrong[i] = local_ok[i] == 0);
    out->weak = perf[0];
    out->strong = perf[n];
    out->auroc = sw_auroc(score, wrong, n);
    free(wrong);
    if (!(perf[n] > perf[0])) {
        free(perf);
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "route evaluation: the cloud is not better than the local model on "
                          "these items (%.3f vs %.3f): no gap to recover",
                          out->strong, out->weak);
    }
    double area = 0;
    for (int32_t k = 0; k < n; k++) area += 0.5 * (pgr(perf, n, k) + pgr(perf, n, k + 1)) / n;
    out->apgr = area;
    out->cpt50 = out->cpt80 = 1.0;
    for (int32_t k = n; k >= 0; k--) {
        if (pgr(perf, n, k) >= 0.5 - 1e-12) out->cpt50 = (double)k / n;
        if (pgr(perf, n, k) >= 0.8 - 1e-12) out->cpt80 = (double)k / n;
    }
    out->pgr20 = pgr(perf, n, (int32_t)lround(0.2 * n));
    out->pgr40 = pgr(perf, n, (int32_t)lround(0.4 * n));
    out->pgr60 = pgr(perf, n, (int32_t)lround(0.6 * n));
    free(perf);
    return SW_OK;
}
