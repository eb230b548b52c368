/* train.c — spillway-router train: the pre-call router from labelled data. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logreg.h"
#include "rtool.h"

static const double k_lambdas[] = {3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001};
#define N_LAMBDAS ((int32_t)(sizeof k_lambdas / sizeof k_lambdas[0]))

static void train_usage(FILE *f) {
    fprintf(f, "usage: spillway-router train -m MODEL --data labelled.jsonl --out ROUTER\n"
               "  -m, --model PATH        the local model (GGUF) the router is for\n"
               "      --data FILE         JSON lines with \"messages\"/\"prompt\" and \"local_ok\"\n"
               "      --out FILE          the router file to write\n"
               "      --features F        hidden states: " RTR_FEATURES_HELP " (default " RTR_DEFAULT_FEATURES ")\n"
               "      --no-text           leave out the cheap text features\n"
               "      --folds K           cross-validation folds (default 5)\n"
               "      --seed N            fold shuffle seed (default 1)\n"
               "      --lambda L          L2 strength (default 1), or cv: cross-validation's pick\n"
               "                          from 0.001..3\n"
               "  -t, --threads N         CPU threads (default 2)\n"
               "  -q, --quiet             no progress\n");
}

/* Feature matrix of the items that ran; y = 1 where the local answer was
 * wrong. Returns the number of rows (0 on failure, with err set). */
int32_t build_matrix(const dataset *d, const sw_rtr_spec *spec, float **X, uint8_t **y,
                     int32_t **rows, sw_err *err) {
    int32_t dim = sw_rtr_dim(spec), n = 0;
    *X = malloc((size_t)d->n * (size_t)dim * sizeof **X);
    *y = malloc((size_t)d->n);
    *rows = malloc((size_t)d->n * sizeof **rows);
    if (!*X || !*y || !*rows) {
        sw_err_set(err, SW_E_NOMEM, "out of memory for %d x %d features", d->n, dim);
        return 0;
    }
    for (int32_t i = 0; i < d->n; i++) {
        const item *it = &d->items[i];
        if (!it->ran) continue;
        sw_rtr_input in = item_input(it);
        if (sw_rtr_vector(spec, &in, *X + (size_t)n * dim, err) != SW_OK) return 0;
        (*y)[n] = !it->local_ok;
        (*rows)[n++] = i;
    }
    if (n == 0) sw_err_set(err, SW_E_INVALID_ARG, "no item could be run");
    return n;
}

/* Cross-validate, fit on everything, and return the router. */
sw_status train_router(const dataset *d, const sw_rtr_spec *spec, int32_t folds, uint64_t seed,
                       double lambda_fixed, sw_rtr **out, double *oof_logit_rows, sw_err *err) {
    float *X = NULL;
    uint8_t *y = NULL;
    int32_t *rows = NULL;
    double *oof = NULL, *prob = NULL;
    sw_logreg clf = {0};
    sw_status st = SW_OK;
    int32_t n = build_matrix(d, spec, &X, &y, &rows, err), dim = sw_rtr_dim(spec), wrong = 0;
    if (n == 0) {
        st = SW_E_INVALID_ARG;
        goto done;
    }
    for (int32_t i = 0; i < n; i++) wrong += y[i];
    oof = malloc((size_t)n * sizeof *oof);
    prob = malloc((size_t)n * sizeof *prob);
    double lambda, per[N_LAMBDAS];
    if (!oof || !prob) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    const double *grid = lambda_fixed > 0 ? &lambda_fixed : k_lambdas;
    if ((st = sw_logreg_cv(X, y, n, dim, grid, lambda_fixed > 0 ? 1 : N_LAMBDAS, folds, seed,
                           &lambda, oof, per, err)) != SW_OK)
        goto done;
    if ((st = sw_logreg_fit(&clf, X, y, n, dim, lambda, err)) != SW_OK) goto done;
    for (int32_t i = 0; i < n; i++) prob[i] = sw_sigmoid(oof[i]);
    double auc = sw_auroc(oof, y, n);
    sw_rtr_train_info info = {.scores = prob, .n_scores = n, .n_train = n, .n_wrong = wrong,
                              .cv_auroc = auc};
    if ((st = sw_rtr_create(spec, &clf, &info, out, err)) != SW_OK) goto done;
    if (oof_logit_rows) {
        for (int32_t i = 0; i < d->n; i++) oof_logit_rows[i] = NAN;
        for (int32_t i = 0; i < n; i++) oof_logit_rows[rows[i]] = oof[i];
    }
done:
    sw_logreg_release(&clf);
    free(X), free(y), free(rows), free(oof), free(prob);
    return st;
}

int cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"data", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},     {"features", required_argument, NULL, 'f'},
        {"no-text", no_argument, NULL, 'x'},       {"folds", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},    {"threads", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
        {"lambda", required_argument, NULL, 'l'},  {NULL, 0, NULL, 0}};
    const char *model = NULL, *data = NULL, *out = NULL;
    double lambda = RTR_DEFAULT_LAMBDA; /* 0: pick by cross-validation */
    int32_t threads = 2, folds = 5, seed = 1;
    unsigned hidden = RTR_DEFAULT_HIDDEN;
    bool text = true, quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'f':
            if (!parse_hidden(optarg, &hidden)) {
                fprintf(stderr, "spillway-router train: --features: '%s' is not " RTR_FEATURES_HELP
                                "\n", optarg);
                return 2;
            }
            break;
        case 'x': text = false; break;
        case 'k':
            if (!parse_int(optarg, 2, 100, &folds)) {
                fprintf(stderr, "spillway-router train: --folds: '%s' is not 2..100\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (!parse_int(optarg, 0, 1 << 30, &seed)) {
                fprintf(stderr, "spillway-router train: --seed: '%s' is not a number\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (!parse_int(optarg, 1, 1024, &threads)) {
                fprintf(stderr, "spillway-router train: --threads: '%s' is not 1..1024\n", optarg);
                return 2;
            }
            break;
        case 'l': {
            char *end;
            lambda = strcmp(optarg, "cv") ? strtod(optarg, &end) : 0;
            if (strcmp(optarg, "cv") && (end == optarg || *end || !(lambda > 0 && lambda < 1e6))) {
                fprintf(stderr, "spillway-router train: --lambda: '%s' is not cv or a number in "
                                "(0, 1e6)\n", optarg);
                return 2;
            }
            break;
        }
        case 'q': quiet = true; break;
        case 'h': train_usage(stdout); return 0;
        default: train_usage(stderr); return 2;
        }
    }
    if (!model || !data || !out || optind < argc) {
        fprintf(stderr, "spillway-router train: %s\n",
                optind < argc ? "unexpected argument" : "needs -m MODEL, --data FILE and --out FILE");
        train_usage(stderr);
        return 2;
    }
    if (!hidden && !text) {
        fprintf(stderr, "spillway-router train: --features none with --no-text leaves no features\n");
        return 2;
    }
    sw_err err = {{0}};
    dataset d;
    if (data_load(data, NEED_LABEL, &d, &err) != SW_OK) {
        fprintf(stderr, "spillway-router train: %s\n", err.msg);
        return 1;
    }
    runner r;
    if (runner_open(&r, model, threads, &err) != SW_OK) {
        fprintf(stderr, "spillway-router train: %s\n", err.msg);
        data_free(&d);
        return 1;
    }
    int rc = 0;
    sw_rtr *rt = NULL;
    run_params rp = {.hidden = hidden, .max_tokens = 0, .quiet = quiet};
    char prompt_id[17];
    char *probe = NULL;
    sw_rtr_spec spec = {.model_name = r.model_name, .model_id = r.model_id, .hidden = hidden,
                        .text = text,
                        .n_embd = (int32_t)sw_model_config_get(r.model)->n_embd,
                        .prompt_id = prompt_id};
    if (runner_prompt_id(&r, prompt_id, &probe, &err) != SW_OK ||
        (spec.prompt_probe = probe, runner_run(&r, &d, &rp, &err)) != SW_OK ||
        train_router(&d, &spec, folds, (uint64_t)seed, lambda, &rt, NULL, &err) != SW_OK ||
        sw_rtr_save(rt, out, &err) != SW_OK) {
        fprintf(stderr, "spillway-router train: %s\n", err.msg);
        rc = 1;
    } else {
        int32_t n;
        sw_rtr_train_scores(rt, &n);
        printf("cross-validated AUROC %.4f (%d-fold, %d items); router for '%s' (%s) written to %s\n",
               sw_rtr_cv_auroc(rt), folds, n, r.model_name, r.model_id, out);
    }
    sw_rtr_free(rt);
    free(probe);
    runner_close(&r);
    data_free(&d);
    return rc;
}
