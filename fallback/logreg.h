/* logreg.h — L2-regularized logistic regression on standardized features,
 * the learned router's classifier, plus the ranking metric it is judged by.
 *
 * Features are standardized with the training set's mean and standard
 * deviation (kept in the model, applied at prediction); the intercept is not
 * penalized. Fitting minimizes mean log-loss + lambda/2 * |w|^2 with L-BFGS.
 * sw_logreg_cv picks lambda by k-fold cross-validation (best mean AUROC,
 * ties to the stronger penalty) and returns out-of-fold logits, which look
 * like unseen traffic (fitted scores are overconfident).
 *
 * A sw_logreg is plain data: copy it with sw_logreg_copy; not thread-safe
 * while being updated (sw_logreg_sgd). */
#ifndef SW_LOGREG_H
#define SW_LOGREG_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_logreg {
    int32_t d;      /* features */
    double *mean;   /* [d] standardization: z = (x - mean) / scale */
    double *scale;  /* [d] (1 where a feature is constant) */
    double *w;      /* [d] weights on z */
    double b;       /* intercept */
    double lambda;  /* the L2 strength it was fitted with */
} sw_logreg;

/* Allocate an all-zero model of d features (scale 1). */
sw_status sw_logreg_init(sw_logreg *m, int32_t d, sw_err *err);
void sw_logreg_release(sw_logreg *m); /* frees the arrays; the struct may be reused */
sw_status sw_logreg_copy(sw_logreg *dst, const sw_logreg *src, sw_err *err);

/* Fit on X [n][d] (row-major) with labels y[i] in {0, 1}. m is (re)initialized. */
sw_status sw_logreg_fit(sw_logreg *m, const float *X, const uint8_t *y, int32_t n, int32_t d,
                        double lambda, sw_err *err);

/* The logit (log-odds of y = 1) of one row x [d]. */
double sw_logreg_logit(const sw_logreg *m, const float *x);
double sw_sigmoid(double z);

/* One online step on a new example, the standardization kept fixed:
 * w -= lr * (grad of its log-loss + decay * w). decay is the per-example
 * share of the L2 penalty (lambda / the number of training examples), so that
 * a few online steps do not shrink away what the fit learned. */
void sw_logreg_sgd(sw_logreg *m, const float *x, int y, double lr, double decay);

/* k-fold cross-validation over lambdas[n_lambdas] (folds stratified by label,
 * shuffled with seed). Outputs (each optional): the chosen lambda, the
 * out-of-fold logits [n] at that lambda, and the mean fold AUROC per lambda
 * [n_lambdas]. Needs at least k examples of each label. */
sw_status sw_logreg_cv(const float *X, const uint8_t *y, int32_t n, int32_t d,
                       const double *lambdas, int32_t n_lambdas, int32_t k, uint64_t seed,
                       double *best_lambda, double *oof_logits, double *auroc_per_lambda,
                       sw_err *err);

/* Area under the ROC curve of score for y = 1 (ties count half); 0.5 when
 * one class is absent. */
double sw_auroc(const double *score, const uint8_t *y, int32_t n);

#ifdef __cplusplus
}
#endif
#endif
