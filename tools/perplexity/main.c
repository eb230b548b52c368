/* spillway-perplexity — perplexity of a model on a text, by llama-perplexity's
 * method, and KL divergence against saved base logits.
 *
 * Method (llama.cpp tools/perplexity, perplexity()): the whole text is
 * tokenized once (BOS first when the vocabulary asks for it) and cut into
 * chunks of n_ctx tokens (chunks = tokens / n_ctx; at least 2 * n_ctx tokens
 * needed). Each chunk is evaluated from an empty context, with its first
 * token replaced by BOS when the vocabulary adds BOS; the logits at positions
 * n_ctx/2 .. n_ctx-2 score the token that follows each, so a chunk scores
 * n_ctx - 1 - n_ctx/2 tokens, each with at least n_ctx/2 tokens of context.
 * PPL = exp(mean NLL), +/- PPL * sqrt(var(NLL) / (count - 1)).
 *
 * --kl-divergence-base FILE saves the scored positions' distributions (format
 * in ppl.c); --kl-divergence then reads FILE instead of writing it and
 * reports KL(base || this model) and how often the top tokens agree. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ppl.h"

typedef struct opts {
    const char *model, *text_file, *backend, *kl_file;
    int32_t n_ctx, threads, max_chunks;
    bool json, kl_compare;
} opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-perplexity -m MODEL -f TEXT [-c N] [--chunks N] [--threads N]\n"
            "                           [--backend cpu|cuda|vulkan|auto] [--json]\n"
            "                           [--kl-divergence-base FILE [--kl-divergence]]\n"
            "  -m, --model FILE          GGUF model\n"
            "  -f, --file TEXT           text to score (UTF-8)\n"
            "  -c, --ctx-size N          tokens per chunk (default 512); each chunk scores its\n"
            "                            second half\n"
            "  --chunks N                score at most N chunks (default: all)\n"
            "  --threads N               CPU threads (default: all cores)\n"
            "  --backend NAME            cpu|cuda|vulkan|auto (default auto)\n"
            "  --json                    one JSON object on stdout instead of text\n"
            "  --kl-divergence-base FILE save the scored distributions to FILE\n"
            "  --kl-divergence           compare with FILE instead (mean KL, top-1 agreement);\n"
            "                            the tokens come from FILE, -f is optional and must\n"
            "                            tokenize the same if given\n");
}

static bool to_i32(const char *s, int32_t lo, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

/* 0 ok, 1 help printed, 2 bad command line (message printed) */
static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.backend = "auto", .n_ctx = 512, .max_chunks = -1};
    enum { O_CHUNKS = 256, O_THREADS, O_BACKEND, O_JSON, O_KLBASE, O_KL };
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},
        {"file", required_argument, 0, 'f'},
        {"ctx-size", required_argument, 0, 'c'},
        {"chunks", required_argument, 0, O_CHUNKS},
        {"threads", required_argument, 0, O_THREADS},
        {"backend", required_argument, 0, O_BACKEND},
        {"json", no_argument, 0, O_JSON},
        {"kl-divergence-base", required_argument, 0, O_KLBASE},
        {"kl-divergence", no_argument, 0, O_KL},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:f:c:t:h", longs, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'f': o->text_file = optarg; break;
        case 'c': ok = to_i32(optarg, 4, &o->n_ctx) && o->n_ctx <= (1 << 20); break;
        case O_CHUNKS: ok = to_i32(optarg, 1, &o->max_chunks); break;
        case 't':
        case O_THREADS: ok = to_i32(optarg, 1, &o->threads); break;
        case O_BACKEND: o->backend = optarg; break;
        case O_JSON: o->json = true; break;
        case O_KLBASE: o->kl_file = optarg; break;
        case O_KL: o->kl_compare = true; break;
        case 'h': usage(stdout); return 1;
        case ':':
            fprintf(stderr, "spillway-perplexity: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "spillway-perplexity: unknown flag %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "spillway-perplexity: %s '%s': not a valid number%s\n",
                    argv[optind - 2], optarg, c == 'c' ? " (4..2^20)" : "");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spillway-perplexity: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->model) {
        fprintf(stderr, "spillway-perplexity: -m MODEL is required\n");
        return 2;
    }
    if (o->kl_compare && !o->kl_file) {
        fprintf(stderr, "spillway-perplexity: --kl-divergence needs --kl-divergence-base FILE\n");
        return 2;
    }
    if (!o->text_file && !o->kl_compare) {
        fprintf(stderr, "spillway-perplexity: -f TEXT is required\n");
        return 2;
    }
    return 0;
}

static sw_status read_file(const char *path, char **out, size_t *n, sw_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sw_err_set(err, SW_E_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory reading it", path);
    if (bad) {
        free(buf);
        return sw_err_set(err, SW_E_IO, "%s: read error", path);
    }
    *out = buf;
    *n = len;
    return SW_OK;
}

/* Everything one run holds. */
typedef struct run {
    const opts *o;
    sw_backend *be;
    sw_model *m;
    sw_kv_cache *kv;
    int32_t *table; /* block table 0..n-1 */
    int32_t n_table;
    int64_t V;
    int32_t *tokens; /* n_chunks * n_ctx (the evaluated prefix of the text) */
    int32_t n_chunks, batch;
    float *logits;   /* batch rows */
    FILE *kl;
    ppl_kl_header klh;
    ppl_kl_row row;
    ppl_acc acc;
    ppl_kl_acc kla;
} run;

/* Forward tokens [p0, p0 + n) of the current chunk (positions p0..); logits of
 * every row when want_logits, else only the last. */
static sw_status eval(run *r, const int32_t *toks, int32_t p0, int32_t n, bool want_logits,
                      sw_err *err) {
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    if (!pos) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) pos[i] = p0 + i;
    int32_t seq_start[2] = {0, n};
    const int32_t *tables[1] = {r->table};
    sw_batch b = {.n_tokens = n,
                  .tokens = toks,
                  .pos = pos,
                  .n_seqs = 1,
                  .seq_start = seq_start,
                  .block_tables = tables,
                  .n_blocks = &r->n_table,
                  .all_logits = want_logits};
    sw_status st = sw_model_forward(r->m, r->kv, &b, r->logits, err);
    free(pos);
    return st;
}

/* Score one chunk: positions first..n_ctx-2 predict the next token. */
static sw_status score_chunk(run *r, int32_t ci, sw_err *err) {
    const int32_t n_ctx = r->o->n_ctx, first = n_ctx / 2;
    const int32_t *text = r->tokens + (size_t)ci * n_ctx;
    int32_t *toks = malloc((size_t)n_ctx * sizeof *toks);
    if (!toks) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    memcpy(toks, text, (size_t)n_ctx * sizeof *toks);
    const sw_tokenizer *tok = sw_model_tokenizer(r->m);
    if (sw_tokenizer_add_bos(tok) && sw_tokenizer_bos(tok) >= 0) toks[0] = sw_tokenizer_bos(tok);
    sw_status st = SW_OK;
    /* the unscored first half in one go (logits of its last row only), then
     * the scored half in batches whose every row is scored */
    for (int32_t p0 = 0; p0 < first && st == SW_OK; p0 += r->batch)
        st = eval(r, toks + p0, p0, SW_MIN(r->batch, first - p0), false, err);
    for (int32_t p0 = first; p0 < n_ctx - 1 && st == SW_OK; p0 += r->batch) {
        int32_t n = SW_MIN(r->batch, n_ctx - 1 - p0);
        if ((st = eval(r, toks + p0, p0, n, true, err)) != SW_OK) break;
        for (int32_t i = 0; i < n && st == SW_OK; i++) {
            const float *l = r->logits + (size_t)i * (size_t)r->V;
            int32_t top = 0, target = text[p0 + i + 1];
            double lse = ppl_row_lse(l, r->V, &top);
            ppl_acc_add(&r->acc, lse - (double)l[target]);
            if (r->kl && !r->o->kl_compare) {
                st = ppl_kl_write_row(r->kl, l, r->V, lse, target, &r->row, err);
            } else if (r->kl) {
                st = ppl_kl_read_row(r->kl, r->o->kl_file, (uint32_t)r->V, &r->row, err);
                if (st == SW_OK) ppl_kl_compare(&r->kla, &r->row, l, lse, top);
            }
        }
    }
    free(toks);
    return st;
}

/* The tokens to score: the text's, or the KL base file's (then the text, if
 * given, must tokenize the same). */
static sw_status load_tokens(run *r, sw_err *err) {
    const opts *o = r->o;
    const sw_tokenizer *tok = sw_model_tokenizer(r->m);
    int32_t *ids = NULL;
    size_t n = 0;
    if (o->text_file) {
        size_t len = 0;
        char *text = NULL;
        sw_status st = read_file(o->text_file, &text, &len, err);
        if (st != SW_OK) return st;
        st = sw_tokenize(tok, text, len, sw_tokenizer_add_bos(tok), false, &ids, &n, err);
        free(text);
        if (st != SW_OK) return sw_err_wrap(err, st, "%s: tokenizing", o->text_file);
    }
    if (o->kl_compare) {
        size_t nb = (size_t)r->klh.n_chunks * r->klh.n_ctx;
        bool same = !ids || (n >= nb && !memcmp(ids, r->klh.tokens, nb * sizeof *ids));
        free(ids);
        if (!same)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "%s tokenizes differently from the tokens in %s", o->text_file,
                              o->kl_file);
        r->tokens = r->klh.tokens;
        r->klh.tokens = NULL;
        r->n_chunks = (int32_t)r->klh.n_chunks;
        return SW_OK;
    }
    if (n < (size_t)2 * (size_t)o->n_ctx) {
        free(ids);
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s tokenizes to %zu tokens; a context of %d needs at least %d",
                          o->text_file, n, o->n_ctx, 2 * o->n_ctx);
    }
    r->tokens = ids;
    r->n_chunks = (int32_t)(n / (size_t)o->n_ctx);
    if (o->max_chunks > 0 && r->n_chunks > o->max_chunks) r->n_chunks = o->max_chunks;
    return SW_OK;
}

static sw_status setup(run *r, sw_err *err) {
    const opts *o = r->o;
    sw_backend_config bc = {.name = o->backend, .n_threads = o->threads, .device = -1};
    sw_status st = sw_backend_create(&bc, &r->be, err);
    if (st != SW_OK) return st;
    sw_model_params mp = {.progress = !o->json};
    if ((st = sw_model_load(o->model, r->be, &mp, &r->m, err)) != SW_OK) return st;
    r->V = sw_model_config_get(r->m)->n_vocab;
    if (o->kl_file) {
        r->kl = fopen(o->kl_file, o->kl_compare ? "rb" : "wb");
        if (!r->kl) return sw_err_set(err, SW_E_IO, "%s: %s", o->kl_file, strerror(errno));
        if (o->kl_compare) {
            if ((st = ppl_kl_read_header(r->kl, o->kl_file, &r->klh, err)) != SW_OK) return st;
            if ((int64_t)r->klh.n_vocab != r->V)
                return sw_err_set(err, SW_E_INVALID_ARG,
                                  "%s has a vocabulary of %u, the model %lld", o->kl_file,
                                  r->klh.n_vocab, (long long)r->V);
            if ((int32_t)r->klh.n_ctx != o->n_ctx)
                fprintf(stderr, "spillway-perplexity: using %s's context of %u\n", o->kl_file,
                        r->klh.n_ctx);
            ((opts *)o)->n_ctx = (int32_t)r->klh.n_ctx;
        }
    }
    if ((st = load_tokens(r, err)) != SW_OK) return st;
    if (o->kl_file && !o->kl_compare) {
        ppl_kl_header h = {(uint32_t)r->V, (uint32_t)o->n_ctx, (uint32_t)r->n_chunks, r->tokens};
        if ((st = ppl_kl_write_header(r->kl, &h, err)) != SW_OK) return st;
    }
    const int32_t bs = 16;
    r->n_table = (o->n_ctx + bs - 1) / bs;
    sw_kv_params kp = {.block_size = bs, .n_blocks = r->n_table, .type = SW_TYPE_F16};
    if ((st = sw_kv_cache_create(r->m, &kp, &r->kv, err)) != SW_OK) return st;
    if (!(r->table = malloc((size_t)r->n_table * sizeof *r->table)))
        return sw_err_set(err, SW_E_NOMEM, "out of memory");
    for (int32_t i = 0; i < r->n_table; i++) r->table[i] = sw_kv_alloc_block(r->kv);
    /* scored rows per forward: up to 512, fewer for big vocabularies so the
     * logits stay near 128 MiB */
    r->batch = (int32_t)SW_MAX(1, SW_MIN(512, ((int64_t)32 << 20) / r->V));
    r->logits = malloc((size_t)r->batch * (size_t)r->V * sizeof *r->logits);
    if (!r->logits) return sw_err_set(err, SW_E_NOMEM, "out of memory for %d rows of logits",
                                      r->batch);
    return SW_OK;
}

static void teardown(run *r) {
    if (r->kl) fclose(r->kl);
    ppl_kl_row_free(&r->row);
    free(r->klh.tokens);
    free(r->tokens);
    free(r->logits);
    free(r->table);
    sw_kv_cache_free(r->kv);
    sw_model_free(r->m);
    sw_backend_free(r->be);
}

static void report_json(const run *r, double secs) {
    double ppl, err;
    ppl_acc_result(&r->acc, &ppl, &err);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", r->o->model);
    cJSON_AddStringToObject(j, "backend", sw_backend_name(r->be));
    cJSON_AddNumberToObject(j, "n_ctx", r->o->n_ctx);
    cJSON_AddNumberToObject(j, "n_chunks", r->n_chunks);
    cJSON_AddNumberToObject(j, "n_scored", (double)r->acc.count);
    cJSON_AddNumberToObject(j, "mean_nll", r->acc.count ? r->acc.nll / (double)r->acc.count : 0);
    cJSON_AddNumberToObject(j, "ppl", ppl);
    cJSON_AddNumberToObject(j, "ppl_err", err);
    if (r->o->kl_compare && r->kla.count > 0) {
        const ppl_kl_acc *k = &r->kla;
        double n = (double)k->count, mean = k->kl / n, var = k->kl2 / n - mean * mean;
        double top = (double)k->same_top / n, bppl, berr;
        ppl_acc_result(&k->base, &bppl, &berr);
        cJSON *kl = cJSON_AddObjectToObject(j, "kl_divergence");
        cJSON_AddNumberToObject(kl, "mean", mean);
        cJSON_AddNumberToObject(kl, "mean_err", n > 1 && var > 0 ? sqrt(var / (n - 1)) : 0);
        cJSON_AddNumberToObject(kl, "same_top", top);
        cJSON_AddNumberToObject(kl, "same_top_err", n > 1 ? sqrt(top * (1 - top) / (n - 1)) : 0);
        cJSON_AddNumberToObject(kl, "ppl_base", bppl);
        cJSON_AddNumberToObject(kl, "ppl_base_err", berr);
    }
    cJSON_AddNumberToObject(j, "seconds", secs);
    char *s = cJSON_PrintUnformatted(j);
    if (s) puts(s);
    free(s);
    cJSON_Delete(j);
}

static void report_text(const run *r) {
    double ppl, err;
    ppl_acc_result(&r->acc, &ppl, &err);
    printf("\n%lld tokens scored in %d chunks of %d\n", (long long)r->acc.count, r->n_chunks,
           r->o->n_ctx);
    printf("PPL = %.4f +/- %.5f\n", ppl, err);
    if (r->o->kl_compare && r->kla.count > 0) {
        const ppl_kl_acc *k = &r->kla;
        double n = (double)k->count, mean = k->kl / n, var = k->kl2 / n - mean * mean;
        double top = (double)k->same_top / n, bppl, berr;
        ppl_acc_result(&k->base, &bppl, &berr);
        printf("PPL(base) = %.4f +/- %.5f\n", bppl, berr);
        printf("Mean KLD = %.6f +/- %.6f\n", mean, n > 1 && var > 0 ? sqrt(var / (n - 1)) : 0.0);
        printf("Same top = %.3f%% +/- %.3f%%\n", 100 * top,
               n > 1 ? 100 * sqrt(top * (1 - top) / (n - 1)) : 0.0);
    }
}

int main(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    run r = {.o = &o};
    sw_err err = {{0}};
    double t0 = sw_time_s();
    sw_status st = setup(&r, &err);
    for (int32_t ci = 0; ci < r.n_chunks && st == SW_OK; ci++) {
        st = score_chunk(&r, ci, &err);
        if (st == SW_OK && !o.json) {
            double ppl, e;
            ppl_acc_result(&r.acc, &ppl, &e);
            fprintf(stderr, "[%d]%.4f,", ci + 1, ppl);
            fflush(stderr);
        }
    }
    if (st == SW_OK && r.kl && !o.kl_compare && fflush(r.kl) != 0)
        st = sw_err_set(&err, SW_E_IO, "%s: write failed", o.kl_file);
    if (st == SW_OK) {
        if (o.json)
            report_json(&r, sw_time_s() - t0);
        else
            report_text(&r);
    } else {
        fprintf(stderr, "spillway-perplexity: %s\n", err.msg);
    }
    teardown(&r);
    return st == SW_OK ? 0 : 1;
}
