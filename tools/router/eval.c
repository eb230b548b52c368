/* eval.c — spillway-router eval: every routing signal, and their
 * combination, in RouteLLM's metrics. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logreg.h"
#include "route_eval.h"
#include "rtool.h"

const char *const k_sig_names[SIG_COUNT] = {"probe_window", "whole_answer", "novel_tokens",
                                            "novel_min"};

sw_status train_router(const dataset *d, const sw_rtr_spec *spec, int32_t folds, uint64_t seed,
                       double lambda_fixed, sw_rtr **out, double *oof_logit_rows, sw_err *err);

void posthoc_signals(const item *it, int32_t probe_tokens, double out[SIG_COUNT]) {
    double win = 0, all = 0, nov = 0, nov_min = 0;
    int32_t n_win = 0, n_nov = 0;
    for (int32_t k = 0; k < it->n_gen; k++) {
        double lp = it->gen_lp[k];
        all += lp;
        if (k < probe_tokens) {
            win += lp;
            n_win++;
        }
        bool copied = false;
        for (int32_t j = 0; j < it->n_ids && !copied; j++) copied = it->ids[j] == it->gen_ids[k];
        if (!copied) {
            nov += lp;
            nov_min = n_nov++ ? fmin(nov_min, lp) : lp;
        }
    }
    double whole = it->n_gen ? all / it->n_gen : 0;
    out[SIG_WINDOW] = -(n_win ? win / n_win : 0);
    out[SIG_WHOLE] = -whole;
    out[SIG_NOVEL] = -(n_nov ? nov / n_nov : whole);
    out[SIG_NOVEL_MIN] = -(n_nov ? nov_min : whole);
}

static void eval_usage(FILE *f) {
    fprintf(f, "usage: spillway-router eval -m MODEL --data labelled.jsonl [--router ROUTER] [--json]\n"
               "  -m, --model PATH        the local model (GGUF)\n"
               "      --data FILE         JSON lines with \"messages\"/\"prompt\" and \"local_ok\"\n"
               "      --router FILE       score with this router (else: cross-validated on the data)\n"
               "      --features F        without --router: " RTR_FEATURES_HELP "\n"
               "                          (default " RTR_DEFAULT_FEATURES ")\n"
               "      --no-text           without --router: no text features\n"
               "      --max-tokens N      local answer length for the post-hoc signals (default 128)\n"
               "      --probe-tokens N    probe window (default 16)\n"
               "      --folds K, --seed N cross-validation (default 5, 1)\n"
               "      --json              one JSON object on stdout\n"
               "      --scores FILE       also write every item's scores (JSON lines)\n"
               "  -t, --threads N         CPU threads (default 2)\n"
               "  -q, --quiet             no progress\n");
}

typedef struct signal {
    const char *name;
    double *score; /* [n] over the items that ran */
    sw_route_eval ev;
    bool ok;
} signal;

/* Out-of-fold second stage: logistic regression over columns cols[] of F. */
static sw_status stack(const double *F, int32_t n, int32_t nf, const int32_t *cols, int32_t nc,
                       const uint8_t *y, int32_t folds, uint64_t seed, double *out, sw_err *err) {
    static const double lambdas[] = {1.0, 0.1, 0.01, 0.001};
    float *X = malloc((size_t)n * (size_t)nc * sizeof *X);
    if (!X) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < nc; j++) X[(size_t)i * nc + j] = (float)F[(size_t)i * nf + cols[j]];
    sw_status st = sw_logreg_cv(X, y, n, nc, lambdas, 4, folds, seed, NULL, out, NULL, err);
    free(X);
    return st;
}

int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},    {"data", required_argument, NULL, 'd'},
        {"router", required_argument, NULL, 'r'},   {"features", required_argument, NULL, 'f'},
        {"no-text", no_argument, NULL, 'x'},        {"max-tokens", required_argument, NULL, 'n'},
        {"probe-tokens", required_argument, NULL, 'p'}, {"folds", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},     {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'},  {"quiet", no_argument, NULL, 'q'},
        {"scores", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    const char *model = NULL, *data = NULL, *router = NULL, *scores_out = NULL;
    int32_t threads = 2, folds = 5, seed = 1, max_tokens = 128, probe = 16;
    unsigned hidden = RTR_DEFAULT_HIDDEN;
    bool text = true, json = false, quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:qh", opts, NULL)) != -1) {
        int32_t *iv = NULL, lo = 1, hi = 1 << 20;
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'r': router = optarg; break;
        case 'o': scores_out = optarg; break;
        case 'f':
            if (!parse_hidden(optarg, &hidden)) {
                fprintf(stderr, "spillway-router eval: --features: '%s' is not " RTR_FEATURES_HELP
                                "\n", optarg);
                return 2;
            }
            break;
        case 'x': text = false; break;
        case 'n': iv = &max_tokens; break;
        case 'p': iv = &probe; break;
        case 'k': iv = &folds, lo = 2, hi = 100; break;
        case 's': iv = &seed, lo = 0; break;
        case 't': iv = &threads, hi = 1024; break;
        case 'j': json = true; break;
        case 'q': quiet = true; break;
        case 'h': eval_usage(stdout); return 0;
        default: eval_usage(stderr); return 2;
        }
        if (iv && !parse_int(optarg, lo, hi, iv)) {
            fprintf(stderr, "spillway-router eval: '%s' is not %d..%d\n", optarg, lo, hi);
            return 2;
        }
    }
    if (!model || !data || optind < argc) {
        fprintf(stderr, "spillway-router eval: %s\n",
                optind < argc ? "unexpected argument" : "needs -m MODEL and --data FILE");
        eval_usage(stderr);
        return 2;
    }
    if (!router && !hidden && !text) {
        fprintf(stderr, "spillway-router eval: --features none with --no-text leaves no features\n");
        return 2;
    }
    sw_err err = {{0}};
    dataset d;
    if (data_load(data, NEED_LABEL, &d, &err) != SW_OK) {
        fprintf(stderr, "spillway-router eval: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    runner r;
    sw_rtr *rt = NULL;
    bool runner_ok = false;
    double *F = NULL, *pre_rows = NULL, *col = NULL;
    uint8_t *y = NULL, *lok = NULL, *cok = NULL;
    int32_t *rows = NULL;
    signal sig[16];
    int32_t n_sig = 0;
    memset(sig, 0, sizeof sig);
    if (router && sw_rtr_load(router, &rt, &err) != SW_OK) goto fail;
    if (runner_open(&r, model, threads, &err) != SW_OK) goto fail;
    runner_ok = true;
    sw_rtr_spec spec = {.model_name = r.model_name, .model_id = r.model_id, .hidden = hidden,
                        .text = text,
                        .n_embd = (int32_t)sw_model_config_get(r.model)->n_embd};
    if (rt) {
        if (sw_rtr_check_model(rt, r.model_name, r.model_id, &err) != SW_OK) goto fail;
        char pid[17];
        char *probe = NULL;
        sw_err perr = {{0}};
        if (runner_prompt_id(&r, pid, &probe, &perr) != SW_OK ||
            sw_rtr_check_prompt(rt, pid, probe, &perr) != SW_OK)
            fprintf(stderr, "spillway-router eval: warning: %s\n", perr.msg);
        free(probe);
        spec = *sw_rtr_spec_get(rt);
    }
    run_params rp = {.hidden = spec.hidden, .max_tokens = max_tokens, .quiet = quiet};
    if (runner_run(&r, &d, &rp, &err) != SW_OK) goto fail;
    pre_rows = malloc((size_t)d.n * sizeof *pre_rows);
    if (!pre_rows) goto oom;
    if (rt) {
        for (int32_t i = 0; i < d.n; i++) {
            pre_rows[i] = NAN;
            if (!d.items[i].ran) continue;
            sw_rtr_input in = item_input(&d.items[i]);
            if (sw_rtr_score(rt, &in, NULL, &pre_rows[i], &err) != SW_OK) goto fail;
        }
    } else {
        sw_rtr *tmp = NULL;
        if (train_router(&d, &spec, folds, (uint64_t)seed, 0, &tmp, pre_rows, &err) != SW_OK) goto fail;
        sw_rtr_free(tmp);
    }
    /* the feature table of the items that ran: [precall logit, post-hoc..., category prior] */
    enum { F_PRE = 0, F_SIG0 = 1, F_CAT = 1 + SIG_COUNT, NF = 2 + SIG_COUNT };
    int32_t n = 0;
    F = malloc((size_t)d.n * NF * sizeof *F);
    y = malloc((size_t)d.n), lok = malloc((size_t)d.n), cok = malloc((size_t)d.n);
    rows = malloc((size_t)d.n * sizeof *rows);
    if (!F || !y || !lok || !cok || !rows) goto oom;
    bool have_cat = true;
    for (int32_t i = 0; i < d.n; i++) {
        const item *it = &d.items[i];
        if (!it->ran) {
            fprintf(stderr, "spillway-router eval: %s:%d: skipped: %s\n", data, it->line, it->run_error);
            continue;
        }
        double *f = F + (size_t)n * NF;
        f[F_PRE] = pre_rows[i];
        posthoc_signals(it, probe, f + F_SIG0);
        y[n] = !it->local_ok;
        lok[n] = it->local_ok;
        cok[n] = it->has_cloud_ok ? it->cloud_ok : 1;
        have_cat = have_cat && it->category;
        rows[n++] = i;
    }
    /* a per-category prior, leave-one-out: the wrong rate of the other items
     * of the same category (a baseline the issue measured at 0.79) */
    for (int32_t a = 0; a < n && have_cat; a++) {
        double w = 0, m = 0;
        for (int32_t b = 0; b < n; b++)
            if (b != a && !strcmp(d.items[rows[a]].category, d.items[rows[b]].category)) {
                w += y[b];
                m++;
            }
        F[(size_t)a * NF + F_CAT] = m ? w / m : 0.5;
    }
    col = malloc((size_t)n * 4 * sizeof *col);
    if (!col) goto oom;
    /* single signals */
    const char *names[NF] = {"precall"};
    for (int k = 0; k < SIG_COUNT; k++) names[F_SIG0 + k] = k_sig_names[k];
    names[F_CAT] = "category_prior";
    for (int32_t k = 0; k < NF; k++) {
        if (k == F_CAT && !have_cat) continue;
        signal *s = &sig[n_sig++];
        s->name = names[k];
        if (!(s->score = malloc((size_t)n * sizeof *s->score))) goto oom;
        for (int32_t i = 0; i < n; i++) s->score[i] = F[(size_t)i * NF + k];
    }
    /* combinations (second-stage logistic regression, out of fold) */
    static const struct {
        const char *name;
        int32_t cols[SIG_COUNT + 1];
        int32_t n;
    } combos[] = {
        {"precall+probe_window", {F_PRE, F_SIG0 + SIG_WINDOW}, 2},
        {"precall+novel_tokens", {F_PRE, F_SIG0 + SIG_NOVEL}, 2},
        {"precall+whole_answer", {F_PRE, F_SIG0 + SIG_WHOLE}, 2},
        {"precall+all_posthoc", {F_PRE, F_SIG0, F_SIG0 + 1, F_SIG0 + 2, F_SIG0 + 3}, 5},
    };
    for (size_t k = 0; k < sizeof combos / sizeof combos[0]; k++) {
        signal *s = &sig[n_sig++];
        s->name = combos[k].name;
        if (!(s->score = malloc((size_t)n * sizeof *s->score))) goto oom;
        if (stack(F, n, NF, combos[k].cols, combos[k].n, y, folds, (uint64_t)seed + 7, s->score,
                  &err) != SW_OK)
            goto fail;
    }
    int32_t wrong = 0;
    for (int32_t i = 0; i < n; i++) wrong += y[i];
    for (int32_t k = 0; k < n_sig; k++)
        sig[k].ok = sw_route_evaluate(sig[k].score, lok, cok, n, &sig[k].ev, &err) == SW_OK;
    if (!sig[0].ok) goto fail;
    if (scores_out) {
        FILE *f = fopen(scores_out, "w");
        if (!f) {
            sw_err_set(&err, SW_E_IO, "%s: cannot write", scores_out);
            goto fail;
        }
        for (int32_t i = 0; i < n; i++) {
            const item *it = &d.items[rows[i]];
            fprintf(f, "{\"line\":%d,\"local_ok\":%s", it->line, it->local_ok ? "true" : "false");
            for (int32_t k = 0; k < n_sig; k++)
                fprintf(f, ",\"%s\":%.6g", sig[k].name,
                        k == 0 && rt ? sw_sigmoid(sig[k].score[i]) : sig[k].score[i]);
            fprintf(f, "}\n");
        }
        if (fclose(f) != 0) {
            sw_err_set(&err, SW_E_IO, "%s: write failed", scores_out);
            goto fail;
        }
    }
    if (json) {
        cJSON *o = cJSON_CreateObject(), *arr;
        cJSON_AddStringToObject(o, "model", r.model_name);
        cJSON_AddStringToObject(o, "model_fingerprint", r.model_id);
        cJSON_AddStringToObject(o, "data", data);
        cJSON_AddStringToObject(o, "precall", rt ? "router" : "cross-validated");
        cJSON_AddNumberToObject(o, "items", n);
        cJSON_AddNumberToObject(o, "local_wrong", wrong);
        cJSON_AddNumberToObject(o, "local_accuracy", sig[0].ev.weak);
        cJSON_AddNumberToObject(o, "probe_tokens", probe);
        cJSON_AddNumberToObject(o, "max_tokens", max_tokens);
        arr = cJSON_AddArrayToObject(o, "signals");
        for (int32_t k = 0; k < n_sig; k++) {
            cJSON *e = cJSON_CreateObject();
            const sw_route_eval *v = &sig[k].ev;
            cJSON_AddStringToObject(e, "signal", sig[k].name);
            cJSON_AddNumberToObject(e, "auroc", v->auroc);
            cJSON_AddNumberToObject(e, "apgr", v->apgr);
            cJSON_AddNumberToObject(e, "cpt50", v->cpt50);
            cJSON_AddNumberToObject(e, "cpt80", v->cpt80);
            cJSON_AddNumberToObject(e, "pgr20", v->pgr20);
            cJSON_AddNumberToObject(e, "pgr40", v->pgr40);
            cJSON_AddNumberToObject(e, "pgr60", v->pgr60);
            cJSON_AddItemToArray(arr, e);
        }
        char *s = cJSON_Print(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        printf("%d items, local model right on %d (%.1f%%); cloud counted right%s\n", n, n - wrong,
               100.0 * (n - wrong) / n, "unless cloud_ok says otherwise");
        printf("precall: %s\n", rt ? router : "cross-validated on this data (out-of-fold)");
        printf("%-24s %6s %6s %7s %7s %6s %6s %6s\n", "signal", "AUROC", "APGR", "CPT50",
               "CPT80", "PGR20", "PGR40", "PGR60");
        for (int32_t k = 0; k < n_sig; k++) {
            const sw_route_eval *v = &sig[k].ev;
            printf("%-24s %6.3f %6.3f %6.1f%% %6.1f%% %6.3f %6.3f %6.3f\n", sig[k].name, v->auroc,
                   v->apgr, 100 * v->cpt50, 100 * v->cpt80, v->pgr20, v->pgr40, v->pgr60);
        }
        printf("(random router: AUROC 0.5, APGR 0.5, PGR@s = s)\n");
    }
    rc = 0;
    goto done;
oom:
    sw_err_set(&err, SW_E_NOMEM, "out of memory");
fail:
    fprintf(stderr, "spillway-router eval: %s\n", err.msg);
done:
    for (int32_t k = 0; k < n_sig; k++) free(sig[k].score);
    free(F), free(pre_rows), free(col), free(y), free(lok), free(cok), free(rows);
    sw_rtr_free(rt);
    if (runner_ok) runner_close(&r);
    data_free(&d);
    return rc;
}
