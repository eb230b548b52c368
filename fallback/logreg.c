/* logreg.c — L2 logistic regression (L-BFGS), k-fold CV and AUROC (logreg.h). */
#include "logreg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double sw_sigmoid(double z) {
    if (z >= 0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* log(1 + exp(z)) without overflow */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }

sw_status sw_logreg_init(sw_logreg *m, int32_t d, sw_err *err) {
    memset(m, 0, sizeof *m);
    if (d < 1) return sw_err_set(err, SW_E_INVALID_ARG, "logistic regression: %d features", d);
    m->d = d;
    m->mean = calloc((size_t)d, sizeof *m->mean);
    m->scale = malloc((size_t)d * sizeof *m->scale);
    m->w = calloc((size_t)d, sizeof *m->w);
    if (!m->mean || !m->scale || !m->w) {
        sw_logreg_release(m);
        return sw_err_set(err, SW_E_NOMEM, "out of memory for a %d-feature classifier", d);
    }
    for (int32_t j = 0; j < d; j++) m->scale[j] = 1.0;
    return SW_OK;
}

void sw_logreg_release(sw_logreg *m) {
    if (!m) return;
    free(m->mean);
    free(m->scale);
    free(m->w);
    memset(m, 0, sizeof *m);
}

sw_status sw_logreg_copy(sw_logreg *dst, const sw_logreg *src, sw_err *err) {
    sw_status st = sw_logreg_init(dst, src->d, err);
    if (st != SW_OK) return st;
    size_t n = (size_t)src->d * sizeof(double);
    memcpy(dst->mean, src->mean, n);
    memcpy(dst->scale, src->scale, n);
    memcpy(dst->w, src->w, n);
    dst->b = src->b;
    dst->lambda = src->lambda;
    return SW_OK;
}

double sw_logreg_logit(const sw_logreg *m, const float *x) {
    double z = m->b;
    for (int32_t j = 0; j < m->d; j++) z += m->w[j] * ((x[j] - m->mean[j]) / m->scale[j]);
    return z;
}

void sw_logreg_sgd(sw_logreg *m, const float *x, int y, double lr, double decay) {
    double g = sw_sigmoid(sw_logreg_logit(m, x)) - (y ? 1.0 : 0.0);
    for (int32_t j = 0; j < m->d; j++)
        m->w[j] -= lr * (g * ((x[j] - m->mean[j]) / m->scale[j]) + decay * m->w[j]);
    m->b -= lr * g;
}

/* ---- fitting ------------------------------------------------------------------------ */

typedef struct problem {
    const double *Z; /* [n][d] standardized */
    const uint8_t *y;
    int32_t n, d;
    double lambda;
    double *z;       /* [n] scratch: logits */
} problem;

/* Loss and gradient at theta = (w[0..d), b). */
static double loss_grad(const problem *p, const double *theta, double *g) {
    int32_t n = p->n, d = p->d;
    double loss = 0;
    memset(g, 0, (size_t)(d + 1) * sizeof *g);
    for (int32_t i = 0; i < n; i++) {
        const double *zi = p->Z + (size_t)i * d;
        double z = theta[d];
        for (int32_t j = 0; j < d; j++) z += theta[j] * zi[j];
        loss += softplus(z) - (p->y[i] ? z : 0.0);
        double r = (sw_sigmoid(z) - (p->y[i] ? 1.0 : 0.0)) / n;
        for (int32_t j = 0; j < d; j++) g[j] += r * zi[j];
        g[d] += r;
    }
    loss /= n;
    for (int32_t j = 0; j < d; j++) {
        loss += 0.5 * p->lambda * theta[j] * theta[j];
        g[j] += p->lambda * theta[j];
    }
    return loss;
}

static double dot(const double *a, const double *b, int32_t n) {
    double s = 0;
    for (int32_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

enum { LBFGS_M = 8, LBFGS_ITERS = 400 };

/* Minimize with L-BFGS and a backtracking (Armijo) line search; theta holds
 * the start and receives the minimum. The loss is strictly convex (lambda >
 * 0), so this converges to the one minimum. */
static sw_status lbfgs(const problem *p, double *theta, sw_err *err) {
    int32_t D = p->d + 1;
    size_t sz = (size_t)D * sizeof(double);
    double *g = malloc(sz), *gn = malloc(sz), *dir = malloc(sz), *tn = malloc(sz);
    double *S = malloc(sz * LBFGS_M), *Y = malloc(sz * LBFGS_M);
    double rho[LBFGS_M], alpha[LBFGS_M];
    sw_status st = SW_OK;
    if (!g || !gn || !dir || !tn || !S || !Y) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory fitting the classifier");
        goto done;
    }
    double f = loss_grad(p, theta, g);
    int32_t hist = 0, head = 0;
    for (int it = 0; it < LBFGS_ITERS; it++) {
        double gmax = 0;
        for (int32_t j = 0; j < D; j++) gmax = fmax(gmax, fabs(g[j]));
        if (gmax < 1e-7) break;
        /* two-loop recursion: dir = -H g */
        for (int32_t j = 0; j < D; j++) dir[j] = -g[j];
        for (int32_t k = 0; k < hist; k++) {
            int32_t i = (head - 1 - k + LBFGS_M) % LBFGS_M;
            alpha[i] = rho[i] * dot(S + (size_t)i * D, dir, D);
            for (int32_t j = 0; j < D; j++) dir[j] -= alpha[i] * Y[(size_t)i * D + j];
        }
        if (hist > 0) {
            int32_t i = (head - 1 + LBFGS_M) % LBFGS_M;
            double gamma = dot(S + (size_t)i * D, Y + (size_t)i * D, D) /
                           dot(Y + (size_t)i * D, Y + (size_t)i * D, D);
            for (int32_t j = 0; j < D; j++) dir[j] *= gamma;
        }
        for (int32_t k = hist - 1; k >= 0; k--) {
            int32_t i = (head - 1 - k + LBFGS_M) % LBFGS_M;
            double beta = rho[i] * dot(Y + (size_t)i * D, dir, D);
            for (int32_t j = 0; j < D; j++) dir[j] += S[(size_t)i * D + j] * (alpha[i] - beta);
        }
        double slope = dot(g, dir, D);
        if (slope >= 0) { /* not a descent direction: restart from the gradient */
            for (int32_t j = 0; j < D; j++) dir[j] = -g[j];
            slope = -dot(g, g, D);
            hist = 0;
        }
        double step = 1.0, fn = f;
        int tries = 0;
        for (; tries < 40; tries++, step *= 0.5) {
            for (int32_t j = 0; j < D; j++) tn[j] = theta[j] + step * dir[j];
            fn = loss_grad(p, tn, gn);
            if (fn <= f + 1e-4 * step * slope) break;
        }
        if (tries == 40) break; /* no progress possible at double precision */
        double *s = S + (size_t)head * D, *yv = Y + (size_t)head * D;
        for (int32_t j = 0; j < D; j++) {
            s[j] = tn[j] - theta[j];
            yv[j] = gn[j] - g[j];
        }
        double sy = dot(s, yv, D);
        if (sy > 1e-12) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % LBFGS_M;
            if (hist < LBFGS_M) hist++;
        }
        memcpy(theta, tn, sz);
        memcpy(g, gn, sz);
        if (f - fn < 1e-12 * fmax(1.0, fabs(f))) {
            f = fn;
            break;
        }
        f = fn;
    }
done:
    free(g), free(gn), free(dir), free(tn), free(S), free(Y);
    return st;
}

sw_status sw_logreg_fit(sw_logreg *m, const float *X, const uint8_t *y, int32_t n, int32_t d,
                        double lambda, sw_err *err) {
    if (n < 2 || !X || !y)
        return sw_err_set(err, SW_E_INVALID_ARG, "logistic regression: %d examples (need 2+)", n);
    if (!(lambda > 0))
        return sw_err_set(err, SW_E_INVALID_ARG, "logistic regression: lambda %g must be > 0",
                          lambda);
    sw_logreg_release(m);
    sw_status st = sw_logreg_init(m, d, err);
    if (st != SW_OK) return st;
    m->lambda = lambda;
    for (int32_t j = 0; j < d; j++) {
        double s = 0, s2 = 0;
        for (int32_t i = 0; i < n; i++) s += X[(size_t)i * d + j];
        double mu = s / n;
        for (int32_t i = 0; i < n; i++) {
            double v = X[(size_t)i * d + j] - mu;
            s2 += v * v;
        }
        double sd = sqrt(s2 / n);
        m->mean[j] = mu;
        m->scale[j] = sd > 1e-12 ? sd : 1.0;
    }
    double *Z = malloc((size_t)n * (size_t)d * sizeof *Z);
    double *theta = calloc((size_t)d + 1, sizeof *theta);
    if (!Z || !theta) {
        free(Z), free(theta);
        sw_logreg_release(m);
        return sw_err_set(err, SW_E_NOMEM, "out of memory fitting %d x %d features", n, d);
    }
    int32_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        pos += y[i] != 0;
        for (int32_t j = 0; j < d; j++)
            Z[(size_t)i * d + j] = (X[(size_t)i * d + j] - m->mean[j]) / m->scale[j];
    }
    /* start from the base rate */
    double rate = (pos + 0.5) / (n + 1.0);
    theta[d] = log(rate / (1 - rate));
    problem p = {Z, y, n, d, lambda, NULL};
    st = lbfgs(&p, theta, err);
    if (st == SW_OK) {
        memcpy(m->w, theta, (size_t)d * sizeof *theta);
        m->b = theta[d];
    } else {
        sw_logreg_release(m);
    }
    free(Z);
    free(theta);
    return st;
}

/* ---- evaluation --------------------------------------------------------------------- */

typedef struct ranked {
    double s;
    uint8_t y;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    double x = ((const ranked *)a)->s, y = ((const ranked *)b)->s;
    return x < y ? -1 : x > y;
}

double sw_auroc(const double *score, const uint8_t *y, int32_t n) {
    ranked *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!r) return 0.5;
    int64_t P = 0, N = 0;
    for (int32_t i = 0; i < n; i++) {
        r[i].s = score[i];
        r[i].y = y[i] != 0;
        P += r[i].y;
    }
    N = n - P;
    if (P == 0 || N == 0) {
        free(r);
        return 0.5;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    double rank_sum = 0;
    for (int32_t i = 0; i < n;) {
        int32_t j = i;
        while (j < n && r[j].s == r[i].s) j++;
        double avg = (i + 1 + j) / 2.0; /* ranks i+1 .. j */
        for (int32_t k = i; k < j; k++)
            if (r[k].y) rank_sum += avg;
        i = j;
    }
    free(r);
    return (rank_sum - (double)P * (P + 1) / 2.0) / ((double)P * (double)N);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* fold[i] in [0, k): each label's examples shuffled, then dealt round-robin. */
static void stratified_folds(const uint8_t *y, int32_t n, int32_t k, uint64_t seed, int32_t *fold,
                             int32_t *idx) {
    uint64_t rng = seed ? seed : 1;
    int32_t offset = 0; /* the deal continues where the other label stopped */
    for (int label = 0; label < 2; label++) {
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++)
            if ((y[i] != 0) == label) idx[m++] = i;
        for (int32_t i = m - 1; i > 0; i--) {
            int32_t j = (int32_t)(splitmix(&rng) % (uint64_t)(i + 1));
            int32_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        for (int32_t i = 0; i < m; i++) fold[idx[i]] = (offset + i) % k;
        offset = (offset + m) % k;
    }
}

sw_status sw_logreg_cv(const float *X, const uint8_t *y, int32_t n, int32_t d,
                       const double *lambdas, int32_t n_lambdas, int32_t k, uint64_t seed,
                       double *best_lambda, double *oof_logits, double *auroc_per_lambda,
                       sw_err *err) {
    if (k < 2 || n_lambdas < 1)
        return sw_err_set(err, SW_E_INVALID_ARG, "cross-validation: %d folds, %d lambdas", k,
                          n_lambdas);
    int32_t pos = 0;
    for (int32_t i = 0; i < n; i++) pos += y[i] != 0;
    if (pos < k || n - pos < k)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "cross-validation: %d positive and %d negative examples; %d-fold needs "
                          "at least %d of each",
                          pos, n - pos, k, k);
    sw_status st = SW_OK;
    int32_t *fold = malloc((size_t)n * sizeof *fold), *idx = malloc((size_t)n * sizeof *idx);
    float *Xt = malloc((size_t)n * (size_t)d * sizeof *Xt);
    uint8_t *yt = malloc((size_t)n);
    double *oof = malloc((size_t)n * (size_t)n_lambdas * sizeof *oof);
    double *fs = malloc((size_t)n * sizeof *fs);
    uint8_t *fy = malloc((size_t)n);
    double *mean_auc = calloc((size_t)n_lambdas, sizeof *mean_auc);
    sw_logreg m = {0};
    if (!fold || !idx || !Xt || !yt || !oof || !fs || !fy || !mean_auc) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory for cross-validation");
        goto done;
    }
    stratified_folds(y, n, k, seed, fold, idx);
    for (int32_t li = 0; li < n_lambdas; li++) {
        for (int32_t f = 0; f < k; f++) {
            int32_t nt = 0, nh = 0;
            for (int32_t i = 0; i < n; i++)
                if (fold[i] != f) {
                    memcpy(Xt + (size_t)nt * d, X + (size_t)i * d, (size_t)d * sizeof *Xt);
                    yt[nt++] = y[i];
                }
            if ((st = sw_logreg_fit(&m, Xt, yt, nt, d, lambdas[li], err)) != SW_OK) goto done;
            for (int32_t i = 0; i < n; i++)
                if (fold[i] == f) {
                    double z = sw_logreg_logit(&m, X + (size_t)i * d);
                    oof[(size_t)li * n + i] = z;
                    fs[nh] = z;
                    fy[nh++] = y[i];
                }
            mean_auc[li] += sw_auroc(fs, fy, nh) / k;
        }
    }
    /* best mean AUROC; lambdas are tried in the caller's order and a later
     * one must beat by a hair, so ties go to the first (list strong first) */
    int32_t best = 0;
    for (int32_t li = 1; li < n_lambdas; li++)
        if (mean_auc[li] > mean_auc[best] + 1e-9) best = li;
    if (best_lambda) *best_lambda = lambdas[best];
    if (oof_logits) memcpy(oof_logits, oof + (size_t)best * n, (size_t)n * sizeof *oof);
    if (auroc_per_lambda) memcpy(auroc_per_lambda, mean_auc, (size_t)n_lambdas * sizeof *mean_auc);
done:
    sw_logreg_release(&m);
    free(fold), free(idx), free(Xt), free(yt), free(oof), free(fs), free(fy), free(mean_auc);
    return st;
}
