/* test_router_learned.c — the learned router's library parts (issue #12):
 *   - logistic regression: separable synthetic features rank near perfectly
 *     (AUROC ~1), shuffled labels near chance (~0.5); CV picks a lambda;
 *   - AUROC and RouteLLM metrics against hand-checkable cases;
 *   - the cloud-share controller keeps the share within +-2% on a synthetic
 *     stream, also when the score distribution drifts, and starts right from
 *     its warm start; shares outside [0, 1] are refused;
 *   - the router file: save and load give the same scores; truncated files,
 *     wrong fields and a router for another model are refused with the field
 *     or both models named;
 *   - answer matching (numeric past restated numbers, normalized text). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "engine.h"
#include "logreg.h"
#include "route_eval.h"
#include "route_model.h"
#include "share.h"
#include "sw_test.h"

static uint64_t g_rng = 12345;
static double uniform(void) {
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((g_rng >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()); }

/* n examples of d features; y = 1 when w.x > 0 (w random), plus noise dims */
static void make_data(int32_t n, int32_t d, float *X, uint8_t *y, double margin) {
    double w[64];
    for (int32_t j = 0; j < d; j++) w[j] = j < 4 ? gauss() : 0.0;
    for (int32_t i = 0; i < n; i++) {
        double z = 0;
        for (int32_t j = 0; j < d; j++) {
            X[(size_t)i * d + j] = (float)(gauss() * (1 + j) + 3.0 * j); /* unscaled, offset */
            z += w[j] * (X[(size_t)i * d + j] - 3.0 * j) / (1 + j);
        }
        y[i] = z > 0;
        if (fabs(z) < margin) y[i] = uniform() < 0.5; /* a fuzzy band */
    }
}

static void test_logreg_separable_and_shuffled(void **state) {
    (void)state;
    enum { N = 400, D = 20 };
    float *X = malloc(sizeof(float) * N * D);
    uint8_t y[N];
    assert_non_null(X);
    make_data(N, D, X, y, 0.0);
    static const double lambdas[] = {1.0, 0.1, 0.01, 0.001};
    double best, oof[N], per[4];
    sw_err err = {{0}};
    assert_int_equal(sw_logreg_cv(X, y, N, D, lambdas, 4, 5, 7, &best, oof, per, &err), SW_OK);
    double auc = sw_auroc(oof, y, N);
    printf("separable: out-of-fold AUROC %.4f (lambda %g)\n", auc, best);
    assert_true(auc > 0.97);
    /* the fitted model on everything separates its own data */
    sw_logreg m = {0};
    assert_int_equal(sw_logreg_fit(&m, X, y, N, D, best, &err), SW_OK);
    double fit[N];
    for (int i = 0; i < N; i++) fit[i] = sw_logreg_logit(&m, X + (size_t)i * D);
    assert_true(sw_auroc(fit, y, N) > 0.99);
    /* shuffled labels: nothing to learn */
    for (int i = N - 1; i > 0; i--) {
        int j = (int)(uniform() * (i + 1));
        uint8_t t = y[i];
        y[i] = y[j];
        y[j] = t;
    }
    assert_int_equal(sw_logreg_cv(X, y, N, D, lambdas, 4, 5, 7, &best, oof, per, &err), SW_OK);
    auc = sw_auroc(oof, y, N);
    printf("shuffled: out-of-fold AUROC %.4f\n", auc);
    assert_true(auc > 0.38 && auc < 0.62);
    /* online updates move the score toward the label */
    sw_logreg_release(&m);
    make_data(N, D, X, y, 0.0);
    assert_int_equal(sw_logreg_fit(&m, X, y, N, D, 0.01, &err), SW_OK);
    double before = sw_logreg_logit(&m, X);
    for (int k = 0; k < 20; k++) sw_logreg_sgd(&m, X, !y[0], 0.1, 0.01 / N);
    double after = sw_logreg_logit(&m, X);
    assert_true(y[0] ? after < before : after > before);
    /* too few of one class for the folds */
    uint8_t few[N];
    memset(few, 0, sizeof few);
    few[0] = 1;
    assert_int_equal(sw_logreg_cv(X, few, N, D, lambdas, 4, 5, 7, &best, oof, per, &err),
                     SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "1 positive"));
    sw_logreg_release(&m);
    free(X);
}

static void test_auroc_and_routellm_metrics(void **state) {
    (void)state;
    double s[4] = {0.1, 0.4, 0.35, 0.8};
    uint8_t y[4] = {0, 0, 1, 1};
    assert_true(fabs(sw_auroc(s, y, 4) - 0.75) < 1e-12);
    double tie[4] = {0.5, 0.5, 0.5, 0.5};
    assert_true(fabs(sw_auroc(tie, y, 4) - 0.5) < 1e-12);
    /* 10 items, 4 wrong locally; a perfect score sends exactly those first */
    enum { N = 10 };
    uint8_t ok[N] = {1, 0, 1, 1, 0, 1, 0, 1, 1, 0};
    double perfect[N], worst[N];
    for (int i = 0; i < N; i++) {
        perfect[i] = ok[i] ? 0.1 * i : 1 + 0.1 * i;
        worst[i] = -perfect[i];
    }
    sw_route_eval ev;
    sw_err err = {{0}};
    assert_int_equal(sw_route_evaluate(perfect, ok, NULL, N, &ev, &err), SW_OK);
    assert_true(fabs(ev.auroc - 1.0) < 1e-12);
    assert_true(fabs(ev.weak - 0.6) < 1e-12 && fabs(ev.strong - 1.0) < 1e-12);
    assert_true(fabs(ev.cpt50 - 0.2) < 1e-12 && fabs(ev.cpt80 - 0.4) < 1e-12);
    assert_true(fabs(ev.pgr20 - 0.5) < 1e-12 && fabs(ev.pgr40 - 1.0) < 1e-12);
    /* area: rises linearly to 1 over the first 40%, then flat: 0.2 + 0.6 */
    assert_true(fabs(ev.apgr - 0.8) < 1e-12);
    assert_int_equal(sw_route_evaluate(worst, ok, NULL, N, &ev, &err), SW_OK);
    assert_true(fabs(ev.auroc) < 1e-12 && fabs(ev.apgr - 0.2) < 1e-12 && ev.cpt80 >= 0.9);
    /* a cloud that is wrong on some items counts */
    uint8_t cloud[N] = {1, 0, 1, 1, 0, 1, 1, 1, 1, 1};
    assert_int_equal(sw_route_evaluate(perfect, ok, cloud, N, &ev, &err), SW_OK);
    assert_true(fabs(ev.strong - 0.8) < 1e-12);
    /* no gap */
    uint8_t all_ok[N];
    memset(all_ok, 1, sizeof all_ok);
    assert_int_equal(sw_route_evaluate(perfect, all_ok, NULL, N, &ev, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "no gap"));
}

/* ---- the share controller -------------------------------------------------------------- */

static double run_stream(sw_share_ctl *c, int n, double (*score)(int i, int n)) {
    uint64_t d0, c0, d1, c1;
    sw_share_ctl_counts(c, &d0, &c0);
    for (int i = 0; i < n; i++) sw_share_ctl_decide(c, score(i, n));
    sw_share_ctl_counts(c, &d1, &c1);
    return (double)(c1 - c0) / (double)(d1 - d0);
}

static double stationary(int i, int n) { (void)i, (void)n; return gauss(); }
/* the mean drifts by 3 standard deviations over the stream */
static double drifting(int i, int n) { return gauss() + 3.0 * i / n; }
/* a skewed, clumpy distribution: probabilities from a logistic of a mixture */
static double skewed(int i, int n) {
    (void)i, (void)n;
    return 1 / (1 + exp(-(uniform() < 0.7 ? gauss() - 2 : gauss() + 1)));
}
/* many exact ties: a score with 5 distinct values */
static double ties(int i, int n) { (void)i, (void)n; return floor(uniform() * 5) / 4; }

static void test_share_controller(void **state) {
    (void)state;
    sw_err err = {{0}};
    double warm[2000];
    for (int i = 0; i < 2000; i++) warm[i] = gauss();
    const double shares[] = {0.05, 0.2, 0.4, 0.7};
    double (*streams[])(int, int) = {stationary, drifting, skewed, ties};
    const char *names[] = {"stationary", "drifting", "skewed", "ties"};
    for (size_t s = 0; s < 4; s++)
        for (size_t k = 0; k < 4; k++) {
            sw_share_ctl *c = NULL;
            bool matched = k == 0; /* only the stationary stream matches the warm start */
            assert_int_equal(sw_share_ctl_create(shares[s], 500, matched ? warm : NULL,
                                                 matched ? 2000 : 0, &c, &err), SW_OK);
            if (!matched) run_stream(c, 500, streams[k]); /* fill the window from traffic */
            double got = run_stream(c, 20000, streams[k]);
            printf("share %.2f, %-10s stream: realized %.4f\n", shares[s], names[k], got);
            assert_true(fabs(got - shares[s]) <= 0.02);
            sw_share_ctl_free(c);
        }
    /* the warm start routes the very first requests right */
    sw_share_ctl *c = NULL;
    assert_int_equal(sw_share_ctl_create(0.2, 1000, warm, 2000, &c, &err), SW_OK);
    double t = sw_share_ctl_threshold(c);
    assert_true(fabs(t - 0.8416) < 0.1); /* the normal's 80th percentile */
    double first = run_stream(c, 200, stationary);
    printf("first 200 requests after a warm start: share %.3f\n", first);
    assert_true(fabs(first - 0.2) <= 0.06);
    sw_share_ctl_free(c);
    /* 0 and 1 are absolute */
    assert_int_equal(sw_share_ctl_create(0.0, 10, warm, 10, &c, &err), SW_OK);
    assert_true(run_stream(c, 100, stationary) == 0.0);
    sw_share_ctl_free(c);
    assert_int_equal(sw_share_ctl_create(1.0, 10, NULL, 0, &c, &err), SW_OK);
    assert_true(run_stream(c, 100, stationary) == 1.0);
    sw_share_ctl_free(c);
    /* outside [0, 1] */
    assert_int_equal(sw_share_ctl_create(1.5, 10, NULL, 0, &c, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "1.5"));
    assert_int_equal(sw_share_ctl_create(-0.1, 10, NULL, 0, &c, &err), SW_E_INVALID_ARG);
    assert_int_equal(sw_share_ctl_create(NAN, 10, NULL, 0, &c, &err), SW_E_INVALID_ARG);
    /* NaN scores are not decided */
    assert_int_equal(sw_share_ctl_create(0.5, 10, NULL, 0, &c, &err), SW_OK);
    assert_false(sw_share_ctl_decide(c, NAN));
    uint64_t dn, cn;
    sw_share_ctl_counts(c, &dn, &cn);
    assert_true(dn == 0 && cn == 0);
    sw_share_ctl_free(c);
}

/* live scores on another scale than the warm start (a router trained on few
 * items, a prior for an unknown model): mean shifted by +-1 standard
 * deviation, or compressed to a third */
static double shifted_up(int i, int n) { (void)i, (void)n; return gauss() + 1.0; }
static double shifted_down(int i, int n) { (void)i, (void)n; return gauss() - 1.0; }
static double compressed(int i, int n) { (void)i, (void)n; return gauss() / 3.0 + 0.5; }

static void test_share_mismatched_warm_start(void **state) {
    (void)state;
    sw_err err = {{0}};
    double (*streams[])(int, int) = {shifted_up, shifted_down, compressed, stationary};
    const char *names[] = {"shifted up", "shifted down", "compressed", "matched"};
    const int n_warm[] = {32, 150};
    const double shares[] = {0.1, 0.2, 0.4};
    for (size_t w = 0; w < 2; w++)
        for (size_t s = 0; s < 3; s++)
            for (size_t k = 0; k < 4; k++) {
                double warm[150];
                for (int i = 0; i < n_warm[w]; i++) warm[i] = gauss();
                /* the worst of 20 runs of as many requests as warm scores:
                 * the hidden evaluation's shape (train one half, serve the
                 * other); the share must hold over the run, not just in the
                 * long term */
                double worst = shares[s];
                for (int rep = 0; rep < 20; rep++) {
                    sw_share_ctl *c = NULL;
                    assert_int_equal(sw_share_ctl_create(shares[s], 500, warm, n_warm[w], &c,
                                                         &err), SW_OK);
                    double got = run_stream(c, n_warm[w], streams[k]);
                    if (fabs(got - shares[s]) > fabs(worst - shares[s])) worst = got;
                    sw_share_ctl_free(c);
                }
                printf("share %.2f, %3d warm, %-12s: worst realized of 20 runs %.3f\n",
                       shares[s], n_warm[w], names[k], worst);
                /* a few decisions of slack (SW_SHARE_FEEDBACK) */
                assert_true(fabs(worst - shares[s]) <= (n_warm[w] < 100 ? 0.1 : 0.05));
            }
    /* no warm start at all (the probe window's default): the first requests
     * already go out near the target */
    for (size_t s = 0; s < 3; s++) {
        sw_share_ctl *c = NULL;
        assert_int_equal(sw_share_ctl_create(shares[s], 500, NULL, 0, &c, &err), SW_OK);
        double got = run_stream(c, 64, skewed);
        printf("share %.2f, no warm start: first 64 requests %.3f\n", shares[s], got);
        assert_true(fabs(got - shares[s]) <= 0.05);
        sw_share_ctl_free(c);
    }
}

/* ---- the router file -------------------------------------------------------------------- */

static const char *tmp_path(const char *name, char *buf, size_t cap) {
    const char *dir = getenv("SW_TMP_DIR");
    snprintf(buf, cap, "%s/test_router_learned-%s", dir ? dir : "/tmp", name);
    return buf;
}

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static char *read_text(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *n, f), *n);
    b[*n] = '\0';
    fclose(f);
    return b;
}

static void expect_load_error(const char *path, const char *text, const char *needle) {
    write_text(path, text, strlen(text));
    sw_rtr *r = NULL;
    sw_err err = {{0}};
    assert_int_not_equal(sw_rtr_load(path, &r, &err), SW_OK);
    assert_null(r);
    if (!strstr(err.msg, needle)) fail_msg("expected '%s' in: %s", needle, err.msg);
}

static void test_router_file(void **state) {
    (void)state;
    enum { E = 16, N = 120 };
    sw_rtr_spec spec = {.model_name = "tiny", .model_id = "0123456789abcdef",
                        .hidden = SW_HIDDEN_LAST | SW_HIDDEN_MEAN, .text = true, .n_embd = E};
    int32_t d = sw_rtr_dim(&spec);
    assert_int_equal(d, 2 * E + SW_RTR_N_TEXT);
    float *X = malloc(sizeof(float) * N * d), hl[N][E], hm[N][E];
    uint8_t y[N];
    char texts[N][64];
    sw_err err = {{0}};
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < E; j++) hl[i][j] = (float)gauss(), hm[i][j] = (float)gauss();
        snprintf(texts[i], sizeof texts[i], "What is %d + %d?", i * 37, i);
        sw_rtr_input in = {hl[i], hm[i], E, texts[i], 10 + i % 7};
        assert_int_equal(sw_rtr_vector(&spec, &in, X + (size_t)i * d, &err), SW_OK);
        y[i] = hl[i][0] + hm[i][1] > 0;
    }
    sw_logreg clf = {0};
    assert_int_equal(sw_logreg_fit(&clf, X, y, N, d, 0.1, &err), SW_OK);
    double scores[N];
    for (int i = 0; i < N; i++) scores[i] = sw_sigmoid(sw_logreg_logit(&clf, X + (size_t)i * d));
    sw_rtr_train_info info = {scores, N, N, 60, 0.9};
    sw_rtr *r = NULL, *back = NULL;
    assert_int_equal(sw_rtr_create(&spec, &clf, &info, &r, &err), SW_OK);
    char path[512], bad[512];
    tmp_path("router.json", path, sizeof path);
    tmp_path("bad.json", bad, sizeof bad);
    assert_int_equal(sw_rtr_save(r, path, &err), SW_OK);
    if (sw_rtr_load(path, &back, &err) != SW_OK) fail_msg("%s", err.msg);
    for (int i = 0; i < N; i++) {
        sw_rtr_input in = {hl[i], hm[i], E, texts[i], 10 + i % 7};
        double p1, p2;
        assert_int_equal(sw_rtr_score(r, &in, &p1, NULL, &err), SW_OK);
        assert_int_equal(sw_rtr_score(back, &in, &p2, NULL, &err), SW_OK);
        assert_true(p1 >= 0 && p1 <= 1 && fabs(p1 - p2) < 1e-12);
        assert_true(fabs(p1 - scores[i]) < 1e-6);
    }
    int32_t ns;
    const double *ws = sw_rtr_train_scores(back, &ns);
    assert_int_equal(ns, N);
    assert_true(fabs(ws[5] - scores[5]) < 1e-12);
    /* the model check */
    assert_int_equal(sw_rtr_check_model(back, "tiny", "0123456789abcdef", &err), SW_OK);
    assert_int_equal(sw_rtr_check_model(back, "other", "fedcba9876543210", &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'tiny'"));
    assert_non_null(strstr(err.msg, "'other'"));
    /* the chat rendering: this file records none (an older file) */
    assert_int_equal(sw_rtr_check_prompt(back, "0000000000000000", "x", &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "does not record"));
    {
        /* one that records it: the same rendering passes, another is refused
         * naming both probes; the record survives save and load */
        const int32_t ids_a[] = {1, 2, 3, 4}, ids_b[] = {1, 2, 3, 5};
        char ida[17], idb[17];
        sw_rtr_prompt_id(ids_a, 4, ida);
        sw_rtr_prompt_id(ids_b, 4, idb);
        assert_string_not_equal(ida, idb);
        sw_rtr_spec sp = spec;
        sp.prompt_id = ida;
        sp.prompt_probe = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n";
        sw_rtr *pr = NULL, *pr2 = NULL;
        assert_int_equal(sw_rtr_create(&sp, &clf, &info, &pr, &err), SW_OK);
        assert_int_equal(sw_rtr_save(pr, path, &err), SW_OK);
        if (sw_rtr_load(path, &pr2, &err) != SW_OK) fail_msg("%s", err.msg);
        assert_int_equal(sw_rtr_check_prompt(pr2, ida, "same", &err), SW_OK);
        assert_int_equal(sw_rtr_check_prompt(pr2, idb, "<|im_start|>system\nYou are", &err),
                         SW_E_INVALID_ARG);
        assert_non_null(strstr(err.msg, "<|im_start|>user\\nWhat is 2 + 3?"));
        assert_non_null(strstr(err.msg, "<|im_start|>system\\nYou are"));
        assert_non_null(strstr(err.msg, ida) && strstr(err.msg, idb));
        sw_rtr_free(pr);
        sw_rtr_free(pr2);
        /* a malformed record names its field */
        const char *badp = "{\"format\":\"spillway-router\",\"version\":1,\"model\":{\"name\":"
                           "\"t\",\"fingerprint\":\"0123456789abcdef\"},\"prompt\":{\"fingerprint\":"
                           "\"xyz\",\"probe\":\"\"}}";
        assert_int_equal(sw_rtr_load_memory(badp, strlen(badp), "p.json", &pr, &err),
                         SW_E_INVALID_ARG);
        assert_non_null(strstr(err.msg, "p.json: prompt.fingerprint"));
        assert_int_equal(sw_rtr_save(back, path, &err), SW_OK); /* as it was */
    }
    /* an input of the wrong width */
    sw_rtr_input small = {hl[0], hm[0], E - 1, "x", 3};
    double p;
    assert_int_equal(sw_rtr_score(back, &small, &p, NULL, &err), SW_E_INVALID_ARG);
    sw_rtr_input none = {NULL, hm[0], E, "x", 3};
    assert_int_equal(sw_rtr_score(back, &none, &p, NULL, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "last-token"));
    /* an online update moves one score, and the update survives a save */
    sw_rtr_input in0 = {hl[0], hm[0], E, texts[0], 10};
    double a, b;
    assert_int_equal(sw_rtr_score(back, &in0, &a, NULL, &err), SW_OK);
    for (int k = 0; k < 10; k++) assert_int_equal(sw_rtr_update(back, &in0, false, 0.1, &err), SW_OK);
    assert_int_equal(sw_rtr_score(back, &in0, &b, NULL, &err), SW_OK);
    assert_true(b > a);
    assert_int_equal(sw_rtr_n_updates(back), 10);
    /* truncated at every tenth byte: never loads, never crashes */
    size_t len;
    char *text = read_text(path, &len);
    for (size_t cut = 0; cut < len - 2; cut += len / 10) {
        write_text(bad, text, cut);
        sw_rtr *t = NULL;
        assert_int_not_equal(sw_rtr_load(bad, &t, &err), SW_OK);
        assert_null(t);
    }
    write_text(bad, text, len / 2);
    sw_rtr *t = NULL;
    assert_int_equal(sw_rtr_load(bad, &t, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "truncated"));
    free(text);
    /* field errors name the field */
    expect_load_error(bad, "[1,2]", "expected a JSON object");
    expect_load_error(bad, "{\"format\":\"x\"}", "format");
    expect_load_error(bad, "{\"format\":\"spillway-router\",\"version\":9}", "version");
    const char *head = "{\"format\":\"spillway-router\",\"version\":1,"
                       "\"model\":{\"name\":\"m\",\"fingerprint\":\"0123456789abcdef\"},";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\"features\":{\"hidden\":[\"first\"],\"text\":true,\"n_embd\":4}}", head);
    expect_load_error(bad, buf, "features.hidden[0]");
    snprintf(buf, sizeof buf,
             "%s\"features\":{\"hidden\":[],\"text\":true,\"n_embd\":0},"
             "\"classifier\":{\"lambda\":0.1,\"bias\":0,\"mean\":[1,2],\"scale\":[1],\"w\":[1]}}",
             head);
    expect_load_error(bad, buf, "classifier.mean: expected 8 numbers, got 2");
    snprintf(buf, sizeof buf,
             "%s\"features\":{\"hidden\":[],\"text\":true,\"n_embd\":0},"
             "\"classifier\":{\"lambda\":0.1,\"bias\":0,\"mean\":[0,0,0,0,0,0,0,0],"
             "\"scale\":[1,1,1,1,1,1,1,0],\"w\":[0,0,0,0,0,0,0,0]}}", head);
    expect_load_error(bad, buf, "classifier.scale[7]");
    snprintf(buf, sizeof buf,
             "%s\"features\":{\"hidden\":[],\"text\":true,\"n_embd\":0},"
             "\"classifier\":{\"lambda\":0.1,\"bias\":0,\"mean\":[0,0,0,0,0,0,0,0],"
             "\"scale\":[1,1,1,1,1,1,1,1],\"w\":[0,0,0,0,0,0,0,0]},"
             "\"training\":{\"examples\":1,\"wrong\":0,\"cv_auroc\":0.5,\"online_updates\":0,"
             "\"oof_scores\":[0.5,1.5]}}", head);
    expect_load_error(bad, buf, "training.oof_scores[1]");
    sw_rtr *missing = NULL;
    assert_int_equal(sw_rtr_load("/nonexistent/router.json", &missing, &err), SW_E_IO);
    sw_rtr_free(r);
    sw_rtr_free(back);
    sw_logreg_release(&clf);
    free(X);
}

/* The query-mean feature set: "query" survives save and load, "mean" and
 * "query" together are refused, and the engine is asked for a mean. */
static void test_query_feature_set(void **state) {
    (void)state;
    enum { E = 4 };
    assert_int_equal(sw_rtr_engine_hidden(SW_HIDDEN_LAST | SW_RTR_HIDDEN_QUERY),
                     SW_HIDDEN_LAST | SW_HIDDEN_MEAN);
    assert_int_equal(sw_rtr_engine_hidden(SW_HIDDEN_LAST), SW_HIDDEN_LAST);
    sw_rtr_spec spec = {.model_name = "tiny", .model_id = "0123456789abcdef",
                        .hidden = SW_HIDDEN_LAST | SW_RTR_HIDDEN_QUERY, .text = false, .n_embd = E};
    assert_int_equal(sw_rtr_dim(&spec), 2 * E);
    sw_err err = {{0}};
    sw_logreg clf = {0};
    assert_int_equal(sw_logreg_init(&clf, 2 * E, &err), SW_OK);
    for (int j = 0; j < 2 * E; j++) clf.w[j] = j < E ? 0 : 1; /* only the query mean counts */
    sw_rtr *r = NULL, *back = NULL;
    assert_int_equal(sw_rtr_create(&spec, &clf, NULL, &r, &err), SW_OK);
    char path[512];
    tmp_path("router_query.json", path, sizeof path);
    assert_int_equal(sw_rtr_save(r, path, &err), SW_OK);
    if (sw_rtr_load(path, &back, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(sw_rtr_spec_get(back)->hidden, SW_HIDDEN_LAST | SW_RTR_HIDDEN_QUERY);
    const float hl[E] = {0}, q[E] = {1, 1, 1, 1};
    sw_rtr_input in = {hl, q, E, "x", 3};
    double p;
    assert_int_equal(sw_rtr_score(back, &in, &p, NULL, &err), SW_OK);
    assert_true(fabs(p - sw_sigmoid(4.0)) < 1e-9);
    sw_rtr_input none = {hl, NULL, E, "x", 3};
    assert_int_equal(sw_rtr_score(back, &none, &p, NULL, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "query-mean"));
    expect_load_error(path,
                      "{\"format\":\"spillway-router\",\"version\":1,\"model\":{\"name\":\"m\","
                      "\"fingerprint\":\"0123456789abcdef\"},\"features\":{\"hidden\":[\"mean\","
                      "\"query\"],\"text\":true,\"n_embd\":4}}",
                      "\"mean\" and \"query\" together");
    sw_rtr_free(r);
    sw_rtr_free(back);
    sw_logreg_release(&clf);
}

/* sw_rtr_query_span finds the query's tokens inside a prompt (the last
 * occurrence, trimmed when the template trimmed it) and falls back to the
 * whole prompt. stories260K's tokenizer (SW_SHARED_DIR). */
static void test_query_span(void **state) {
    (void)state;
    const char *dir = getenv("SW_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir ? dir : "");
    FILE *f = dir && *dir ? fopen(path, "rb") : NULL;
    if (!f) {
        print_message("SKIP: %s is absent (SW_SHARED_DIR)\n", path);
        skip();
        return;
    }
    fclose(f);
    sw_gguf *g = sw_test_open_vocab(path);
    sw_tokenizer *t = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_tokenizer_create(g, &t, &err), SW_OK);
    int32_t ids[256], n = 0, *p;
    size_t m;
    const char *parts[] = {"Once upon a time.", "Tom had a big red ball", "The end."};
    int32_t at[3];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(sw_tokenize(t, parts[k], strlen(parts[k]), k == 0, true, &p, &m, &err), SW_OK);
        at[k] = n;
        memcpy(ids + n, p, m * sizeof *p);
        n += (int32_t)m;
        free(p);
    }
    int32_t span[2];
    assert_true(sw_rtr_query_span(t, ids, n, parts[1], span));
    assert_int_equal(span[0], at[1]);
    assert_int_equal(span[1], at[2]);
    /* trimmed by the template */
    assert_true(sw_rtr_query_span(t, ids, n, "  Tom had a big red ball\n", span));
    assert_int_equal(span[0], at[1]);
    /* the last occurrence: the query repeated at the end */
    int32_t twice[512];
    memcpy(twice, ids, (size_t)n * sizeof *ids);
    memcpy(twice + n, ids + at[1], (size_t)(at[2] - at[1]) * sizeof *ids);
    assert_true(sw_rtr_query_span(t, twice, n + at[2] - at[1], parts[1], span));
    assert_int_equal(span[0], n);
    /* absent, empty, NULL: the whole prompt */
    assert_false(sw_rtr_query_span(t, ids, n, "a dragon flew", span));
    assert_int_equal(span[0], 0);
    assert_int_equal(span[1], n);
    assert_false(sw_rtr_query_span(t, ids, n, "", span));
    assert_false(sw_rtr_query_span(t, ids, n, NULL, span));
    assert_int_equal(span[1], n);
    /* the prompt tokenized whole: SPM merges the space before the query into
     * its first token, which then still belongs to the span */
    const char *whole = "Once upon a time. Tom had a big red ball. The end.";
    assert_int_equal(sw_tokenize(t, whole, strlen(whole), true, true, &p, &m, &err), SW_OK);
    assert_true(sw_rtr_query_span(t, p, (int32_t)m, "Tom had a big red ball", span));
    assert_true(span[0] > 1 && span[1] < (int32_t)m - 2);
    char *got = NULL;
    assert_int_equal(sw_detokenize(t, p + span[0], (size_t)(span[1] - span[0]), false, &got, &err),
                     SW_OK);
    if (!strstr(got, "Tom had a big red ball") || strstr(got, "time") || strstr(got, "end"))
        fail_msg("span text '%s'", got);
    free(got);
    free(p);
    sw_tokenizer_free(t);
    sw_gguf_free(g);
}

static void test_text_features(void **state) {
    (void)state;
    float f[SW_RTR_N_TEXT];
    sw_rtr_text_features("What is 1,234 * 56 plus 7?", 12, f);
    assert_true(fabs(f[0] - log1p(12)) < 1e-6);
    assert_int_equal((int)f[3], 3);  /* numbers */
    assert_int_equal((int)f[4], 4);  /* digits of 1,234 */
    assert_int_equal((int)f[6], 2);  /* '*' between numbers, "plus" */
    sw_rtr_text_features("Spell the word \"italy\" backwards.", 9, f);
    assert_int_equal((int)f[3], 0);
    assert_int_equal((int)f[7], 1);  /* one quoted span */
    sw_rtr_text_features(NULL, 0, f);
    assert_true(f[1] == 0 && f[2] == 0);
}

static void test_answer_match(void **state) {
    (void)state;
    /* numeric: restated operands are skipped */
    assert_true(sw_answer_match("What is 25 + 17?", "25 + 17 = 42.", "42"));
    assert_false(sw_answer_match("What is 25 + 17?", "25 + 17 = 43.", "42"));
    assert_false(sw_answer_match("What is 25 + 17?", "The answer is 41, not 42.", "42"));
    assert_true(sw_answer_match("What is 1500 + 1500?", "1500 + 1500 = 3,000", "3000"));
    assert_true(sw_answer_match("What is 5 - 9?", "5 - 9 is -4", "-4"));
    assert_true(sw_answer_match("What is 4 * 1?", "4 * 1 = 4", "4")); /* the answer is in the prompt */
    assert_true(sw_answer_match("How many days are there in February 2024?",
                                "February 2024 has 29 days.", "29"));
    assert_false(sw_answer_match(NULL, "no digits here", "7"));
    assert_true(sw_answer_match(NULL, "about 2.50 dollars", "2.5"));
    /* text: whole words after normalization */
    assert_true(sw_answer_match("Tokyo is in which country?", "Tokyo is in Japan.", "Japan"));
    assert_false(sw_answer_match(NULL, "Japanese", "Japan"));
    assert_true(sw_answer_match(NULL, "The date is March 13, 2021.", "March 13, 2021"));
    assert_false(sw_answer_match(NULL, "The date is March 13 2022.", "March 13, 2021"));
    assert_true(sw_answer_match(NULL, "The code is \"FR\".", "fr"));
    assert_false(sw_answer_match(NULL, "", "x"));
    assert_false(sw_answer_match(NULL, "anything", ""));
    char *n = sw_answer_normalize("  Hello,   WORLD!! ");
    assert_string_equal(n, "hello world");
    free(n);
    double v;
    assert_true(sw_answer_number(" 1,024 ", &v) && v == 1024);
    assert_false(sw_answer_number("12 apples", &v));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logreg_separable_and_shuffled),
        cmocka_unit_test(test_auroc_and_routellm_metrics),
        cmocka_unit_test(test_share_controller),
        cmocka_unit_test(test_share_mismatched_warm_start),
        cmocka_unit_test(test_router_file),
        cmocka_unit_test(test_query_feature_set),
        cmocka_unit_test(test_query_span),
        cmocka_unit_test(test_text_features),
        cmocka_unit_test(test_answer_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
