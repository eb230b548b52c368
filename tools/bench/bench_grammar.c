/* bench_grammar.c — spillway-bench grammar: what grammar-constrained decoding
 * costs per token, against the decode step of the same model in the same run.
 *
 * Each repetition, on one engine with one request at a time:
 *   1. an unconstrained greedy run of -n tokens gives the decode step (time
 *      between token events);
 *   2. for every grammar, a greedy and a sampled constrained run; the engine's
 *      counters give the grammar work per token as served (the matcher check
 *      of each drawn token, plus the full mask and second draw when the draw was
 *      refused) and how often the full mask was needed;
 *   3. the greedy output is replayed through a fresh matcher, timing the full
 *      vocabulary mask at every token: cold (the grammar's cache empty, as for
 *      a new schema) and warm (the same grammar again).
 * Medians over repetitions. */
#include "bench_grammar.h"

#include <spillway.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_GRAMMARS 16
#define MAX_REPS 16

typedef struct gsrc {
    const char *name;
    char *text;
    bool gbnf;
} gsrc;

/* Built in when no --schema/--gbnf is given: shapes typical of structured
 * output and tool arguments. */
static const char *const k_default_schemas[][2] = {
    {"person", "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},"
               "\"email\":{\"type\":\"string\",\"format\":\"email\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5}},"
               "\"required\":[\"name\",\"age\",\"tags\"],\"additionalProperties\":false}"},
    {"weather_args", "{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\",\"description\":\"City\"},"
                     "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14}},"
                     "\"required\":[\"location\",\"unit\"],\"additionalProperties\":false}"},
    {"story", "{\"type\":\"object\",\"properties\":{\"title\":{\"type\":\"string\",\"maxLength\":60},\"paragraphs\":{\"type\":\"array\","
              "\"items\":{\"type\":\"string\"},\"minItems\":1,\"maxItems\":3}},\"required\":[\"title\",\"paragraphs\"],\"additionalProperties\":false}"},
    {"any_json", "{}"},
};

typedef struct opts {
    const char *model, *prompt;
    int32_t n, threads, reps;
    bool json;
    gsrc g[MAX_GRAMMARS];
    int n_g;
} opts;

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int32_t ids[4096];
    int32_t n;
    double t_first, t_last, t_fin;
    sw_finish_reason reason;
    char message[256];
} waiter;

static void on_event(void *user, const sw_event *ev) {
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    if (ev->type == SW_EVENT_TOKEN) {
        if (w->n < 4096) w->ids[w->n] = ev->token.id;
        w->n++;
        double t = sw_time_s();
        if (w->n == 1) w->t_first = t;
        w->t_last = t;
    } else {
        w->done = true;
        w->reason = ev->finish;
        w->t_fin = sw_time_s();
        snprintf(w->message, sizeof w->message, "%s", ev->message);
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

/* Run one request to its end; false on a submit failure. */
static bool run_one(sw_engine *e, const int32_t *prompt, int32_t np, sw_grammar *g, float temp,
                    int32_t n, waiter *w) {
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    sw_request q;
    memset(&q, 0, sizeof q);
    q.prompt = prompt;
    q.n_prompt = np;
    sw_sampler_params_default(&q.sampling);
    q.sampling.temperature = temp;
    q.sampling.seed = 1234;
    q.max_tokens = n;
    q.ignore_eos = g == NULL;
    q.grammar = g;
    q.on_event = on_event;
    q.user = w;
    sw_err err;
    if (sw_engine_submit(e, &q, NULL, &err) != SW_OK) {
        fprintf(stderr, "spillway-bench grammar: submit: %s\n", err.msg);
        return false;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->done) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    return true;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n == 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static sw_status compile(const gsrc *src, sw_grammar **g, sw_err *err) {
    return src->gbnf ? sw_grammar_from_gbnf(src->text, strlen(src->text), g, err)
                     : sw_grammar_from_json_schema(src->text, strlen(src->text), g, err);
}

/* Mean time of a full mask at each token boundary of ids (fed through a
 * matcher of g), in seconds. */
static double replay_masks(sw_grammar *g, const sw_gvocab *v, const sw_tokenizer *tok, const int32_t *ids,
                           int32_t n, uint8_t *allow) {
    sw_gmatch *m;
    if (sw_gmatch_create(g, &m, NULL) != SW_OK) return -1;
    double total = 0;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        double t0 = sw_time_s();
        sw_gmatch_mask(m, v, allow);
        total += sw_time_s() - t0;
        k++;
        size_t len;
        const char *p = sw_token_piece(tok, ids[i], &len);
        if (!p || len == 0 || !sw_gmatch_feed(m, p, len)) break; /* an end token */
    }
    sw_gmatch_free(m);
    return k ? total / k : 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-bench grammar -m FILE [options]\n"
               "  --schema FILE    a JSON Schema to constrain with (repeatable)\n"
               "  --gbnf FILE      a GBNF grammar (repeatable); default: four built-in schemas\n"
               "  -n N             tokens per run (default 64)\n"
               "  --prompt TEXT    the prompt (default: a request for JSON)\n"
               "  --threads N      CPU threads (default 2)\n"
               "  --reps N         repetitions, medians reported (default 3)\n"
               "  --json           one JSON object\n");
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

static int parse(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->n = 64;
    o->threads = 2;
    o->reps = 3;
    o->prompt = "Return a JSON object with realistic values for the requested fields.\n";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-m") && has) o->model = argv[++i];
        else if ((!strcmp(a, "--schema") || !strcmp(a, "--gbnf")) && has) {
            if (o->n_g == MAX_GRAMMARS) return fprintf(stderr, "at most %d grammars\n", MAX_GRAMMARS), 2;
            gsrc *g = &o->g[o->n_g++];
            g->name = argv[++i];
            g->gbnf = !strcmp(a, "--gbnf");
            if (!(g->text = slurp(g->name))) return fprintf(stderr, "cannot read %s\n", g->name), 2;
        } else if (!strcmp(a, "-n") && has) o->n = atoi(argv[++i]);
        else if (!strcmp(a, "--prompt") && has) o->prompt = argv[++i];
        else if (!strcmp(a, "--threads") && has) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && has) o->reps = atoi(argv[++i]);
        else if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), -1;
        else return usage(stderr), 2;
    }
    if (!o->model || o->n < 2 || o->n > 4096 || o->reps < 1 || o->reps > MAX_REPS || o->threads < 1)
        return usage(stderr), 2;
    if (o->n_g == 0)
        for (size_t k = 0; k < sizeof k_default_schemas / sizeof *k_default_schemas; k++) {
            o->g[o->n_g].name = k_default_schemas[k][0];
            o->g[o->n_g].text = strdup(k_default_schemas[k][1]);
            o->n_g++;
        }
    return 0;
}

typedef struct gres {
    double ms_per_tok[MAX_REPS * 2], masks_frac[MAX_REPS * 2], cold[MAX_REPS], warm[MAX_REPS];
    int n_runs, n_replays;
    int64_t tokens, stops;
} gres;

int sw_bench_grammar_main(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_model *m = NULL;
    sw_engine *e = NULL;
    sw_gvocab *v = NULL;
    int32_t *prompt = NULL;
    uint8_t *allow = NULL;
    rc = 1;
    sw_backend_config bc = {.name = "cpu", .n_threads = o.threads, .device = -1};
    sw_model_params mp = {0};
    if (sw_backend_create(&bc, &be, &err) != SW_OK || sw_model_load(o.model, be, &mp, &m, &err) != SW_OK) {
        fprintf(stderr, "spillway-bench grammar: %s\n", err.msg);
        goto out;
    }
    const sw_tokenizer *tok = sw_model_tokenizer(m);
    if (!tok) {
        fprintf(stderr, "spillway-bench grammar: %s has no tokenizer\n", o.model);
        goto out;
    }
    sw_engine_params ep;
    sw_engine_params_default(&ep);
    ep.n_ctx = 1024 + o.n;
    ep.max_running = 1;
    if (sw_engine_create(m, &ep, &e, &err) != SW_OK) {
        fprintf(stderr, "spillway-bench grammar: %s\n", err.msg);
        goto out;
    }
    size_t np;
    if (sw_tokenize(tok, o.prompt, strlen(o.prompt), sw_tokenizer_add_bos(tok), false, &prompt, &np, &err) != SW_OK)
        goto out;
    int32_t nv = sw_tokenizer_n_vocab(tok);
    {
        const char **pieces = malloc((size_t)nv * sizeof *pieces);
        uint32_t *lens = malloc((size_t)nv * sizeof *lens);
        allow = malloc((size_t)nv);
        if (!pieces || !lens || !allow) goto out;
        for (int32_t i = 0; i < nv; i++) {
            size_t len;
            const char *p = sw_token_piece(tok, i, &len);
            pieces[i] = p ? p : "";
            lens[i] = (uint32_t)len;
        }
        sw_status st = sw_gvocab_create(pieces, lens, nv, &v, &err);
        free(pieces);
        free(lens);
        if (st != SW_OK) goto out;
    }
    double step[MAX_REPS];
    gres *res = calloc((size_t)o.n_g, sizeof *res);
    waiter *w = malloc(sizeof *w);
    if (!res || !w) goto out;
    for (int r = 0; r < o.reps; r++) {
        if (!run_one(e, prompt, (int32_t)np, NULL, 0.0f, o.n, w)) goto out;
        step[r] = w->n > 1 ? (w->t_last - w->t_first) / (w->n - 1) : 0;
        for (int gi = 0; gi < o.n_g; gi++) {
            sw_grammar *g;
            if (compile(&o.g[gi], &g, &err) != SW_OK) {
                fprintf(stderr, "spillway-bench grammar: %s: %s\n", o.g[gi].name, err.msg);
                goto out;
            }
            gres *gr = &res[gi];
            int32_t greedy_ids[4096], n_greedy = 0;
            for (int sampled = 0; sampled < 2; sampled++) {
                sw_engine_stats a, b;
                sw_engine_stats_get(e, &a);
                if (!run_one(e, prompt, (int32_t)np, g, sampled ? 0.8f : 0.0f, o.n, w)) goto out;
                sw_engine_stats_get(e, &b);
                uint64_t t = b.grammar_tokens - a.grammar_tokens;
                if (w->reason == SW_FINISH_ERROR) fprintf(stderr, "%s: %s\n", o.g[gi].name, w->message);
                gr->ms_per_tok[gr->n_runs] = t ? (b.grammar_seconds - a.grammar_seconds) / (double)t * 1e3 : 0;
                gr->masks_frac[gr->n_runs] = t ? (double)(b.grammar_masks - a.grammar_masks) / (double)t : 0;
                gr->n_runs++;
                gr->tokens += (int64_t)t;
                gr->stops += w->reason == SW_FINISH_STOP;
                if (!sampled) {
                    n_greedy = SW_MIN(w->n, 4096);
                    memcpy(greedy_ids, w->ids, (size_t)n_greedy * sizeof *greedy_ids);
                }
            }
            sw_grammar_free(g);
            /* full masks along the greedy output: a fresh grammar, then again */
            if (compile(&o.g[gi], &g, &err) != SW_OK) goto out;
            gr->cold[gr->n_replays] = replay_masks(g, v, tok, greedy_ids, n_greedy, allow) * 1e3;
            gr->warm[gr->n_replays] = replay_masks(g, v, tok, greedy_ids, n_greedy, allow) * 1e3;
            gr->n_replays++;
            sw_grammar_free(g);
        }
    }
    double step_ms = median(step, o.reps) * 1e3;
    if (o.json) {
        printf("{\n  \"model\": \"%s\",\n  \"threads\": %d,\n  \"tokens_per_run\": %d,\n  \"reps\": %d,\n"
               "  \"vocab\": %d,\n  \"decode_step_ms\": %.3f,\n  \"grammars\": [\n",
               o.model, o.threads, o.n, o.reps, nv, step_ms);
    } else {
        printf("decode step (unconstrained, greedy): %.3f ms   vocabulary %d tokens\n", step_ms, nv);
        printf("%-14s %7s %6s %14s %10s %12s %12s %8s %10s\n", "grammar", "tokens", "stops", "grammar ms/tok",
               "% of step", "full masks", "cold mask ms", "% step", "warm ms");
    }
    for (int gi = 0; gi < o.n_g; gi++) {
        gres *gr = &res[gi];
        double per = median(gr->ms_per_tok, gr->n_runs), frac = median(gr->masks_frac, gr->n_runs);
        double cold = median(gr->cold, gr->n_replays), warm = median(gr->warm, gr->n_replays);
        if (o.json)
            printf("    {\"name\": \"%s\", \"tokens\": %lld, \"runs\": %d, \"stopped_on_their_own\": %lld, "
                   "\"grammar_ms_per_token\": %.4f, \"grammar_pct_of_step\": %.2f, \"full_mask_fraction\": %.3f, "
                   "\"full_mask_cold_ms\": %.4f, \"full_mask_cold_pct_of_step\": %.2f, \"full_mask_warm_ms\": %.4f}%s\n",
                   o.g[gi].name, (long long)gr->tokens, gr->n_runs, (long long)gr->stops, per, 100 * per / step_ms, frac,
                   cold, 100 * cold / step_ms, warm, gi + 1 < o.n_g ? "," : "");
        else
            printf("%-14s %7lld %6lld %14.4f %9.2f%% %11.1f%% %12.4f %7.2f%% %10.4f\n", o.g[gi].name, (long long)gr->tokens,
                   (long long)gr->stops, per, 100 * per / step_ms, 100 * frac, cold, 100 * cold / step_ms, warm);
    }
    if (o.json) printf("  ]\n}\n");
    free(res);
    free(w);
    rc = 0;
out:
    for (int gi = 0; gi < o.n_g; gi++) free(o.g[gi].text);
    free(prompt);
    free(allow);
    sw_gvocab_free(v);
    sw_engine_free(e);
    sw_model_free(m);
    sw_backend_free(be);
    return rc;
}
