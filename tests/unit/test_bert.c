/* test_bert.c — the bert architecture (an encoder that embeds) end to end.
 *
 * (a) all-MiniLM-L6-v2, converted by scripts/convert-bert.py (fetched with
 *     scripts/fetch-model.sh minilm-gguf; skipped with its reason when it
 *     cannot be had): for the 22 sentences of
 *     tests/data/embed/minilm_reference.json, sw_tokenize_input gives the
 *     Hugging Face tokenizer's ids, and the engine's mean-pooled, L2-normalized
 *     hidden states agree with sentence-transformers' vectors (cosine >=
 *     0.999) and with llama.cpp's llama-embedding on the same file (where
 *     llama.cpp tokenizes alike). All sentences go through the engine at once
 *     (batched into one step) and each alone gives the same vector. On the CPU
 *     backend and, where a Vulkan device exists, on Vulkan.
 * (b) a synthetic bert model (spillway-mkmodel --shape bert-tiny, no network):
 *     the forward pass against a host reference written from the math
 *     (LayerNorm with bias, non-causal attention, exact GELU; double
 *     accumulators), and the engine's batched = alone, on CPU and Vulkan.
 * (c) what an encoder refuses: logits, generation, a sequence split across
 *     steps, a prompt longer than a step. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spillway.h>

#include "sw_test.h"

#define MAX_SENT 64

/* ---- the backends the tests run on ---- */

static sw_backend *g_cpu, *g_vk;

static sw_backend **backends(int *n) {
    static sw_backend *list[2];
    *n = 0;
    list[(*n)++] = g_cpu;
    if (g_vk) list[(*n)++] = g_vk;
    return list;
}

/* ---- embeddings through the engine ---- */

typedef struct emb_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, finished;
    int32_t dim;
    float *out;          /* [n][dim] */
    bool got[MAX_SENT];  /* hidden event seen */
    sw_finish_reason finish[MAX_SENT];
} emb_run;

typedef struct emb_slot {
    emb_run *r;
    int i;
} emb_slot;

static void on_event(void *user, const sw_event *ev) {
    emb_slot *sl = user;
    emb_run *r = sl->r;
    pthread_mutex_lock(&r->mu);
    if (ev->type == SW_EVENT_HIDDEN && ev->hidden_mean && ev->n_embd == r->dim) {
        memcpy(r->out + (size_t)sl->i * (size_t)r->dim, ev->hidden_mean,
               (size_t)r->dim * sizeof(float));
        r->got[sl->i] = true;
    } else if (ev->type == SW_EVENT_FINAL) {
        r->finish[sl->i] = ev->finish;
        r->finished++;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void l2_normalize(float *v, int32_t n) {
    double ss = 0;
    for (int32_t i = 0; i < n; i++) ss += (double)v[i] * v[i];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (int32_t i = 0; i < n; i++) v[i] = (float)(v[i] * inv);
}

static double cosine(const float *a, const float *b, int32_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int32_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Submit every input at once, wait for all, L2-normalize: out[n][dim]. */
static void embed_all(sw_engine *e, int32_t dim, int32_t *const *ids, const size_t *n_ids, int n,
                      float *out) {
    assert_true(n <= MAX_SENT);
    emb_run r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.n = n;
    r.dim = dim;
    r.out = out;
    emb_slot slots[MAX_SENT];
    for (int i = 0; i < n; i++) {
        slots[i] = (emb_slot){&r, i};
        sw_request req = {0};
        req.prompt = ids[i];
        req.n_prompt = (int32_t)n_ids[i];
        sw_sampler_params_default(&req.sampling);
        req.hidden = SW_HIDDEN_MEAN;
        req.no_generate = true;
        req.on_event = on_event;
        req.user = &slots[i];
        sw_err err = {{0}};
        sw_status st = sw_engine_submit(e, &req, NULL, &err);
        if (st != SW_OK) fail_msg("submit %d: %s", i, err.msg);
    }
    pthread_mutex_lock(&r.mu);
    while (r.finished < n) pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    for (int i = 0; i < n; i++) {
        if (!r.got[i] || r.finish[i] != SW_FINISH_LENGTH)
            fail_msg("input %d: hidden %d, finish %s", i, r.got[i],
                     sw_finish_reason_str(r.finish[i]));
        l2_normalize(out + (size_t)i * (size_t)dim, dim);
    }
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
}

static sw_engine *make_engine(sw_model *m, int32_t batch_tokens) {
    sw_engine_params ep;
    sw_engine_params_default(&ep);
    ep.max_batch_tokens = batch_tokens;
    ep.max_running = 64;
    ep.kv_n_blocks = 128; /* 2048 tokens: more than a step's worth */
    sw_engine *e = NULL;
    sw_err err = {{0}};
    if (sw_engine_create(m, &ep, &e, &err) != SW_OK) fail_msg("engine: %s", err.msg);
    return e;
}

static sw_model *load(const char *path, sw_backend *be) {
    sw_model *m = NULL;
    sw_err err = {{0}};
    if (sw_model_load(path, be, NULL, &m, &err) != SW_OK) fail_msg("load %s: %s", path, err.msg);
    return m;
}

/* Each input alone through a fresh engine equals its vector from the batch. */
static void check_alone(sw_model *m, int32_t dim, int32_t *const *ids, const size_t *n_ids,
                        const float *batched, int n, int stride) {
    float *one = malloc((size_t)dim * sizeof *one);
    assert_non_null(one);
    for (int i = 0; i < n; i += stride) {
        sw_engine *e = make_engine(m, 512);
        embed_all(e, dim, &ids[i], &n_ids[i], 1, one);
        sw_engine_free(e);
        double c = cosine(one, batched + (size_t)i * (size_t)dim, dim);
        if (c < 0.99999) fail_msg("input %d: alone vs batched cosine %.7f", i, c);
    }
    free(one);
}

/* ---- (a) all-MiniLM-L6-v2 against the reference vectors ---- */

typedef struct ref_sentence {
    const char *text;
    int32_t *ids, *lc_ids;
    size_t n_ids, n_lc_ids;
    float *st, *lc; /* [dim] sentence-transformers, llama.cpp */
} ref_sentence;

static int32_t *json_ints(const cJSON *a, size_t *n) {
    assert_true(cJSON_IsArray(a));
    *n = (size_t)cJSON_GetArraySize(a);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    assert_non_null(v);
    size_t i = 0;
    for (const cJSON *x = a->child; x; x = x->next) v[i++] = (int32_t)x->valuedouble;
    return v;
}

static float *json_floats(const cJSON *a, int32_t dim) {
    assert_true(cJSON_IsArray(a));
    assert_int_equal(cJSON_GetArraySize(a), dim);
    float *v = malloc((size_t)dim * sizeof *v);
    assert_non_null(v);
    int32_t i = 0;
    for (const cJSON *x = a->child; x; x = x->next) v[i++] = (float)x->valuedouble;
    return v;
}

static void test_minilm(void **state) {
    (void)state;
    char path[1024], why[2048];
    if (!sw_test_real_model("minilm-gguf", path, sizeof path, why, sizeof why)) {
        print_message("skipped: %s\n", why);
        skip();
        return;
    }
    const char *src = getenv("SW_SOURCE_DIR");
    char ref_path[1024];
    snprintf(ref_path, sizeof ref_path, "%s/tests/data/embed/minilm_reference.json",
             src ? src : ".");
    char *text = sw_test_read_file(ref_path, NULL);
    if (!text) fail_msg("cannot read %s", ref_path);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    const cJSON *sents = cJSON_GetObjectItemCaseSensitive(root, "sentences");
    int n = cJSON_GetArraySize(sents);
    assert_true(n >= 20 && n <= MAX_SENT);

    int nb;
    sw_backend **bes = backends(&nb);
    for (int b = 0; b < nb; b++) {
        sw_model *m = load(path, bes[b]);
        const sw_model_config *c = sw_model_config_get(m);
        assert_true(c->embed_only);
        assert_false(c->causal);
        assert_int_equal(c->pooling, SW_POOLING_MEAN);
        int32_t dim = (int32_t)c->n_embd;
        ref_sentence rs[MAX_SENT];
        int32_t *ids[MAX_SENT];
        size_t n_ids[MAX_SENT];
        int k = 0;
        for (const cJSON *s = sents->child; s; s = s->next, k++) {
            ref_sentence *r = &rs[k];
            r->text = cJSON_GetObjectItemCaseSensitive(s, "text")->valuestring;
            r->ids = json_ints(cJSON_GetObjectItemCaseSensitive(s, "ids"), &r->n_ids);
            r->lc_ids = json_ints(cJSON_GetObjectItemCaseSensitive(s, "llama_cpp_ids"),
                                  &r->n_lc_ids);
            r->st = json_floats(cJSON_GetObjectItemCaseSensitive(s, "st"), dim);
            r->lc = json_floats(cJSON_GetObjectItemCaseSensitive(s, "llama_cpp"), dim);
            /* the tokenizer: [CLS] ... [SEP] exactly as Hugging Face's */
            sw_err err = {{0}};
            assert_int_equal(sw_tokenize_input(sw_model_tokenizer(m), r->text, strlen(r->text),
                                               &ids[k], &n_ids[k], &err),
                             SW_OK);
            if (n_ids[k] != r->n_ids || memcmp(ids[k], r->ids, n_ids[k] * sizeof(int32_t)))
                fail_msg("sentence %d '%s': %zu ids, the reference has %zu (first difference "
                         "at a position where they differ)",
                         k, r->text, n_ids[k], r->n_ids);
        }
        sw_engine *e = make_engine(m, 512);
        float *out = malloc((size_t)n * (size_t)dim * sizeof *out);
        assert_non_null(out);
        embed_all(e, dim, ids, n_ids, n, out);
        sw_engine_stats es;
        sw_engine_stats_get(e, &es);
        sw_engine_free(e);
        double worst_st = 1, worst_lc = 1;
        int n_lc = 0;
        for (int i = 0; i < n; i++) {
            const float *v = out + (size_t)i * (size_t)dim;
            double cs = cosine(v, rs[i].st, dim);
            if (cs < worst_st) worst_st = cs;
            if (cs < 0.999) fail_msg("%s: sentence %d '%s': cosine %.6f vs sentence-transformers",
                                     sw_backend_name(bes[b]), i, rs[i].text, cs);
            bool same_tok = rs[i].n_lc_ids == rs[i].n_ids &&
                            !memcmp(rs[i].lc_ids, rs[i].ids, rs[i].n_ids * sizeof(int32_t));
            if (!same_tok) continue; /* llama.cpp tokenized it differently */
            n_lc++;
            double cl = cosine(v, rs[i].lc, dim);
            if (cl < worst_lc) worst_lc = cl;
            if (cl < 0.999) fail_msg("%s: sentence %d '%s': cosine %.6f vs llama.cpp",
                                     sw_backend_name(bes[b]), i, rs[i].text, cl);
        }
        print_message("%s: %d sentences in %llu steps; worst cosine %.7f vs sentence-transformers, "
                      "%.7f vs llama.cpp (%d sentences)\n",
                      sw_backend_name(bes[b]), n, (unsigned long long)es.steps, worst_st, worst_lc,
                      n_lc);
        /* several inputs per step: fewer steps than inputs */
        assert_true(es.steps < (uint64_t)n);
        /* lavapipe is slow: fewer alone runs there */
        check_alone(m, dim, ids, n_ids, out, n, bes[b] == g_cpu ? 5 : 11);
        for (int i = 0; i < n; i++) {
            free(ids[i]);
            free(rs[i].ids);
            free(rs[i].lc_ids);
            free(rs[i].st);
            free(rs[i].lc);
        }
        free(out);
        sw_model_free(m);
    }
    cJSON_Delete(root);
    free(text);
}

/* ---- (b) a synthetic bert against a host reference ---- */

/* A synthetic model made by spillway-mkmodel (SW_BIN_DIR) into SW_TMP_DIR. */
static void mkmodel(const char *args, const char *name, char *path, size_t cap) {
    const char *bin = getenv("SW_BIN_DIR"), *tmp = getenv("SW_TMP_DIR");
    snprintf(path, cap, "%s/test_bert_%s.gguf", tmp ? tmp : "/tmp", name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s/spillway-mkmodel' -o '%s' %s 2>/dev/null", bin ? bin : "bin",
             path, args);
    if (system(cmd) != 0) fail_msg("spillway-mkmodel failed: %s", cmd);
}

static float *deq(const sw_gguf *g, const char *name) {
    return sw_test_dequant(g, name, NULL, NULL);
}

static float *deq_layer(const sw_gguf *g, int64_t l, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, suffix);
    return deq(g, name);
}

/* y[N] = W[N][K] x[K] + b[N], in double */
static void ref_linear(const float *W, const float *b, const double *x, int64_t K, int64_t N,
                       double *y) {
    for (int64_t n = 0; n < N; n++) {
        double acc = b ? b[n] : 0.0;
        for (int64_t k = 0; k < K; k++) acc += (double)W[n * K + k] * x[k];
        y[n] = acc;
    }
}

static void ref_layer_norm(double *x, const float *w, const float *b, int64_t n, double eps) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (double)n;
    for (int64_t i = 0; i < n; i++) x[i] = (x[i] - mean) / sqrt(var / 1.0 + eps) * w[i] + b[i];
}

/* BERT written from the math: x = LN(tok + pos + type0); per layer
 * x = LN(x + attn(x)), x = LN(x + W2 gelu(W1 x + b1) + b2); attention over
 * every position of the input (non-causal). out[n][E] in double. */
static void ref_bert(const sw_gguf *g, const sw_model_config *c, const int32_t *tok, int n,
                     double *out) {
    const int64_t E = c->n_embd, F = c->n_ff, H = c->n_head, D = c->head_dim;
    double eps = c->norm_eps;
    float *te = deq(g, "token_embd.weight"), *pe = deq(g, "position_embd.weight"),
          *ty = deq(g, "token_types.weight"), *nw = deq(g, "token_embd_norm.weight"),
          *nb = deq(g, "token_embd_norm.bias");
    double *x = out;
    for (int t = 0; t < n; t++) {
        for (int64_t i = 0; i < E; i++)
            x[t * E + i] = (double)te[tok[t] * E + i] + pe[t * E + i] + ty[i];
        ref_layer_norm(x + t * E, nw, nb, E, eps);
    }
    double *q = malloc(sizeof(double) * (size_t)(n * E)), *k = malloc(sizeof(double) * (size_t)(n * E)),
           *v = malloc(sizeof(double) * (size_t)(n * E)), *att = malloc(sizeof(double) * (size_t)(n * E)),
           *h = malloc(sizeof(double) * (size_t)(n * F)), *o = malloc(sizeof(double) * (size_t)E),
           *sc = malloc(sizeof(double) * (size_t)n);
    assert_true(q && k && v && att && h && o && sc);
    for (int64_t l = 0; l < c->n_layer; l++) {
        float *wq = deq_layer(g, l, "attn_q.weight"), *bq = deq_layer(g, l, "attn_q.bias"),
              *wk = deq_layer(g, l, "attn_k.weight"), *bk = deq_layer(g, l, "attn_k.bias"),
              *wv = deq_layer(g, l, "attn_v.weight"), *bv = deq_layer(g, l, "attn_v.bias"),
              *wo = deq_layer(g, l, "attn_output.weight"), *bo = deq_layer(g, l, "attn_output.bias"),
              *n1 = deq_layer(g, l, "attn_output_norm.weight"),
              *n1b = deq_layer(g, l, "attn_output_norm.bias"),
              *w1 = deq_layer(g, l, "ffn_up.weight"), *b1 = deq_layer(g, l, "ffn_up.bias"),
              *w2 = deq_layer(g, l, "ffn_down.weight"), *b2 = deq_layer(g, l, "ffn_down.bias"),
              *n2 = deq_layer(g, l, "layer_output_norm.weight"),
              *n2b = deq_layer(g, l, "layer_output_norm.bias");
        for (int t = 0; t < n; t++) {
            ref_linear(wq, bq, x + t * E, E, E, q + t * E);
            ref_linear(wk, bk, x + t * E, E, E, k + t * E);
            ref_linear(wv, bv, x + t * E, E, E, v + t * E);
        }
        for (int t = 0; t < n; t++)
            for (int64_t hh = 0; hh < H; hh++) {
                double mx = -INFINITY, sum = 0;
                for (int p = 0; p < n; p++) { /* every position: non-causal */
                    double d = 0;
                    for (int64_t i = 0; i < D; i++) d += q[t * E + hh * D + i] * k[p * E + hh * D + i];
                    sc[p] = d / sqrt((double)D);
                    mx = fmax(mx, sc[p]);
                }
                for (int p = 0; p < n; p++) sum += exp(sc[p] - mx);
                for (int64_t i = 0; i < D; i++) {
                    double a = 0;
                    for (int p = 0; p < n; p++) a += exp(sc[p] - mx) / sum * v[p * E + hh * D + i];
                    att[t * E + hh * D + i] = a;
                }
            }
        for (int t = 0; t < n; t++) {
            ref_linear(wo, bo, att + t * E, E, E, o);
            for (int64_t i = 0; i < E; i++) x[t * E + i] += o[i];
            ref_layer_norm(x + t * E, n1, n1b, E, eps);
            ref_linear(w1, b1, x + t * E, E, F, h + t * F);
            for (int64_t i = 0; i < F; i++) h[t * F + i] = 0.5 * h[t * F + i] * (1 + erf(h[t * F + i] / sqrt(2.0)));
            ref_linear(w2, b2, h + t * F, F, E, o);
            for (int64_t i = 0; i < E; i++) x[t * E + i] += o[i];
            ref_layer_norm(x + t * E, n2, n2b, E, eps);
        }
        float *all[] = {wq, bq, wk, bk, wv, bv, wo, bo, n1, n1b, w1, b1, w2, b2, n2, n2b};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    }
    free(q), free(k), free(v), free(att), free(h), free(o), free(sc);
    free(te), free(pe), free(ty), free(nw), free(nb);
}

enum { N_SEQ = 3 };
static const int k_len[N_SEQ] = {7, 1, 20};

/* Three inputs in one sw_model_forward (hidden states only) against the
 * reference: the relative L2 error |h - ref| / |ref| of the worst input. */
static double forward_vs_ref(sw_backend *be, const char *path, int32_t *const *tok) {
    sw_model *m = load(path, be);
    const sw_model_config *c = sw_model_config_get(m);
    const int64_t E = c->n_embd;
    sw_kv_params kp = {.block_size = 16, .n_blocks = 8, .type = SW_TYPE_F32};
    sw_kv_cache *kv = NULL;
    sw_err err = {{0}};
    if (sw_kv_cache_create(m, &kp, &kv, &err) != SW_OK) fail_msg("kv: %s", err.msg);
    int32_t tokens[64], pos[64], seq_start[N_SEQ + 1] = {0}, blocks[N_SEQ][2], n_blocks[N_SEQ];
    const int32_t *tables[N_SEQ];
    int T = 0;
    for (int q = 0; q < N_SEQ; q++) {
        for (int i = 0; i < k_len[q]; i++, T++) {
            tokens[T] = tok[q][i];
            pos[T] = i;
        }
        seq_start[q + 1] = T;
        /* blocks in reverse order, so tables are not the identity */
        n_blocks[q] = 2;
        blocks[q][0] = 7 - 2 * q;
        blocks[q][1] = 6 - 2 * q;
        tables[q] = blocks[q];
    }
    float *hidden = malloc(sizeof(float) * (size_t)(T * E));
    assert_non_null(hidden);
    sw_batch b = {.n_tokens = T, .tokens = tokens, .pos = pos, .n_seqs = N_SEQ,
                  .seq_start = seq_start, .block_tables = tables, .n_blocks = n_blocks,
                  .hidden = hidden};
    if (sw_model_forward(m, kv, &b, NULL, &err) != SW_OK) fail_msg("forward: %s", err.msg);
    double worst = 0;
    sw_gguf *g = NULL;
    assert_int_equal(sw_gguf_open(path, &g, &err), SW_OK);
    for (int q = 0; q < N_SEQ; q++) {
        double *ref = malloc(sizeof(double) * (size_t)(k_len[q] * E));
        assert_non_null(ref);
        ref_bert(g, c, tok[q], k_len[q], ref);
        double ss = 0, se = 0;
        for (int64_t i = 0; i < k_len[q] * E; i++) {
            double d = hidden[(size_t)seq_start[q] * (size_t)E + (size_t)i] - ref[i];
            ss += ref[i] * ref[i];
            se += d * d;
        }
        worst = fmax(worst, sqrt(se / ss));
        free(ref);
    }
    sw_gguf_free(g);
    free(hidden);
    sw_kv_cache_free(kv);
    sw_model_free(m);
    return worst;
}

static void test_synthetic_forward(void **state) {
    (void)state;
    char f32[1024], q8[1024];
    mkmodel("--shape bert-tiny --type f32", "f32", f32, sizeof f32);
    mkmodel("--shape bert-tiny --type q8_0", "q8_0", q8, sizeof q8);
    sw_test_rng r = {42};
    int32_t *tok[N_SEQ];
    for (int q = 0; q < N_SEQ; q++) {
        tok[q] = malloc(sizeof(int32_t) * (size_t)k_len[q]);
        for (int i = 0; i < k_len[q]; i++) tok[q][i] = 5 + (int32_t)(sw_test_urand(&r) * 500);
    }
    /* CPU, f32 weights and KV: rounding only (1e-6 seen). q8_0: the CPU
     * quantizes activations to 8 bits for q8_0 weights, ~0.5% per matmul in
     * each of a layer's 6 (1-2% seen). Vulkan keeps f32 weights and
     * activations f32 too (2e-7 seen). Any indexing error (a wrong row, head,
     * position or a causal mask) is O(1). */
    double e_cpu = forward_vs_ref(g_cpu, f32, tok), e_q8 = forward_vs_ref(g_cpu, q8, tok);
    print_message("cpu: relative L2 error f32 %.2e, q8_0 %.2e\n", e_cpu, e_q8);
    assert_true(e_cpu < 1e-5);
    assert_true(e_q8 < 5e-2);
    if (g_vk) {
        double e_vk = forward_vs_ref(g_vk, f32, tok);
        print_message("vulkan: relative L2 error f32 %.2e\n", e_vk);
        assert_true(e_vk < 1e-5);
    }
    for (int q = 0; q < N_SEQ; q++) free(tok[q]);
}

/* The engine on the synthetic model: texts through the WordPiece tokenizer,
 * many per step, each alone the same; the pooled vector is the mean of the
 * forward pass's states (checked against the reference for one input). */
static void test_synthetic_engine(void **state) {
    (void)state;
    char path[1024];
    mkmodel("--shape bert-tiny --type f32", "f32", path, sizeof path);
    static const char *const texts[] = {"hello world", "the quick brown fox!", "a",
                                        "embeddings, batched: 1 2 3", "zzz yyy xxx www"};
    const int n = sizeof texts / sizeof texts[0];
    int nb;
    sw_backend **bes = backends(&nb);
    for (int b = 0; b < nb; b++) {
        sw_model *m = load(path, bes[b]);
        const sw_model_config *c = sw_model_config_get(m);
        int32_t dim = (int32_t)c->n_embd, *ids[8];
        size_t n_ids[8];
        for (int i = 0; i < n; i++) {
            sw_err err = {{0}};
            assert_int_equal(sw_tokenize_input(sw_model_tokenizer(m), texts[i], strlen(texts[i]),
                                               &ids[i], &n_ids[i], &err),
                             SW_OK);
            assert_int_equal(ids[i][0], 2);             /* [CLS] */
            assert_int_equal(ids[i][n_ids[i] - 1], 3); /* [SEP] */
        }
        sw_engine *e = make_engine(m, 512);
        float *out = malloc(sizeof(float) * (size_t)(n * dim));
        assert_non_null(out);
        embed_all(e, dim, ids, n_ids, n, out);
        sw_engine_stats es;
        sw_engine_stats_get(e, &es);
        sw_engine_free(e);
        assert_true(es.steps < (uint64_t)n);
        check_alone(m, dim, ids, n_ids, out, n, 1);
        /* the mean pooling: input 1 against the reference's mean */
        sw_gguf *g = NULL;
        sw_err err = {{0}};
        assert_int_equal(sw_gguf_open(path, &g, &err), SW_OK);
        double *ref = malloc(sizeof(double) * n_ids[1] * (size_t)dim);
        float *mean = calloc((size_t)dim, sizeof *mean);
        assert_true(ref && mean);
        ref_bert(g, c, ids[1], (int)n_ids[1], ref);
        for (size_t t = 0; t < n_ids[1]; t++)
            for (int32_t i = 0; i < dim; i++) mean[i] += (float)(ref[t * (size_t)dim + i] / (double)n_ids[1]);
        double cs = cosine(mean, out + dim, dim);
        print_message("%s: pooled vs reference mean: cosine %.7f\n", sw_backend_name(bes[b]), cs);
        assert_true(cs > 0.9999);
        free(ref);
        free(mean);
        sw_gguf_free(g);
        for (int i = 0; i < n; i++) free(ids[i]);
        free(out);
        sw_model_free(m);
    }
}

/* ---- (c) what an encoder refuses ---- */

static void nop_event(void *user, const sw_event *ev) {
    (void)user;
    (void)ev;
}

static void test_refusals(void **state) {
    (void)state;
    char path[1024];
    mkmodel("--shape bert-tiny --type f32", "f32", path, sizeof path);
    sw_model *m = load(path, g_cpu);
    sw_err err = {{0}};
    sw_kv_params kp = {.block_size = 16, .n_blocks = 8};
    sw_kv_cache *kv = NULL;
    assert_int_equal(sw_kv_cache_create(m, &kp, &kv, &err), SW_OK);
    int32_t tokens[4] = {2, 10, 11, 3}, pos[4] = {0, 1, 2, 3}, ss[2] = {0, 4}, blk[1] = {0}, nblk = 1;
    const int32_t *tables[1] = {blk};
    float logits[4096], hidden[4 * 256];
    sw_batch b = {.n_tokens = 4, .tokens = tokens, .pos = pos, .n_seqs = 1, .seq_start = ss,
                  .block_tables = tables, .n_blocks = &nblk, .hidden = hidden};
    /* no LM head */
    assert_int_equal(sw_model_forward(m, kv, &b, logits, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "embedding model"));
    /* a sequence that does not start at 0 (split across steps) */
    int32_t late[4] = {5, 6, 7, 8};
    b.pos = late;
    assert_int_equal(sw_model_forward(m, kv, &b, NULL, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "whole"));
    b.pos = pos;
    assert_int_equal(sw_model_forward(m, kv, &b, NULL, &err), SW_OK);
    sw_kv_cache_free(kv);

    sw_engine *e = make_engine(m, 64);
    sw_request req = {0};
    int32_t prompt[600];
    for (int i = 0; i < 600; i++) prompt[i] = 10 + i % 400;
    req.prompt = prompt;
    req.n_prompt = 10;
    sw_sampler_params_default(&req.sampling);
    req.on_event = nop_event;
    req.hidden = SW_HIDDEN_MEAN;
    /* generation */
    assert_int_equal(sw_engine_submit(e, &req, NULL, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "embedding model"));
    req.no_generate = true;
    /* longer than one step (64 tokens here) */
    req.n_prompt = 65;
    assert_int_equal(sw_engine_submit(e, &req, NULL, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "one step"));
    sw_engine_free(e);
    /* a step as long as the context: an input may fill it, not exceed it */
    e = make_engine(m, 512);
    req.n_prompt = 513;
    assert_int_equal(sw_engine_submit(e, &req, NULL, &err), SW_E_RANGE);
    int32_t *ids[1] = {prompt};
    size_t n512[1] = {512};
    float *out = malloc(sizeof(float) * 256);
    embed_all(e, 256, ids, n512, 1, out);
    free(out);
    sw_engine_free(e);
    sw_model_free(m);
}

/* A copy of the GGUF at src with one change: key `drop` removed, or set
 * (fn), or tensor `drop_tensor` left out. */
typedef void (*mutate_fn)(sw_gguf_writer *w);

static void rewrite(const char *src, const char *dst, const char *drop, mutate_fn fn,
                    const char *drop_tensor) {
    sw_err err = {{0}};
    sw_gguf *g = NULL;
    assert_int_equal(sw_gguf_open(src, &g, &err), SW_OK);
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++)
        if (!drop || strcmp(sw_gguf_kv_key(g, i), drop))
            assert_int_equal(sw_gguf_writer_copy_kv(w, g, i), SW_OK);
    if (fn) fn(w);
    for (int64_t i = 0; i < sw_gguf_n_tensors(g); i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        if (drop_tensor && !strcmp(t->name, drop_tensor)) continue;
        assert_int_equal(sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                                   NULL, NULL, &err),
                         SW_OK);
    }
    if (sw_gguf_writer_write(w, dst, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_writer_free(w);
    sw_gguf_free(g);
}

static void set_causal(sw_gguf_writer *w) {
    assert_int_equal(sw_gguf_writer_set_bool(w, "bert.attention.causal", true), SW_OK);
}
static void set_bad_pooling(sw_gguf_writer *w) {
    assert_int_equal(sw_gguf_writer_set_u32(w, "bert.pooling_type", 9), SW_OK);
}

static void expect_load_error(const char *path, sw_status want, const char *needle) {
    sw_model *m = NULL;
    sw_err err = {{0}};
    sw_status st = sw_model_load(path, g_cpu, NULL, &m, &err);
    if (st != want || !strstr(err.msg, needle))
        fail_msg("load %s: status %d, message '%s' (wanted %d naming '%s')", path, st, err.msg,
                 want, needle);
}

static void test_bad_files(void **state) {
    (void)state;
    char path[1024], bad[1100];
    mkmodel("--shape bert-tiny --type f16", "f16", path, sizeof path);
    snprintf(bad, sizeof bad, "%s.bad.gguf", path);
    rewrite(path, bad, "bert.attention.layer_norm_epsilon", NULL, NULL);
    expect_load_error(bad, SW_E_FORMAT, "bert.attention.layer_norm_epsilon");
    rewrite(path, bad, NULL, set_causal, NULL);
    expect_load_error(bad, SW_E_UNSUPPORTED, "bert.attention.causal");
    rewrite(path, bad, NULL, set_bad_pooling, NULL);
    expect_load_error(bad, SW_E_FORMAT, "bert.pooling_type");
    rewrite(path, bad, NULL, NULL, "blk.1.ffn_down.bias");
    expect_load_error(bad, SW_E_NOT_FOUND, "blk.1.ffn_down.bias");
    rewrite(path, bad, "bert.context_length", NULL, NULL);
    expect_load_error(bad, SW_E_FORMAT, "bert.context_length");
    /* without token types the model still loads (they are optional) */
    rewrite(path, bad, NULL, NULL, "token_types.weight");
    sw_model *m = load(bad, g_cpu);
    assert_int_equal(sw_model_config_get(m)->n_token_types, 0);
    sw_engine *e = make_engine(m, 512);
    int32_t in[4] = {2, 10, 11, 3}, *ids[1] = {in};
    size_t n[1] = {4};
    float out[256];
    embed_all(e, 256, ids, n, 1, out);
    sw_engine_free(e);
    sw_model_free(m);
    remove(bad);
}

/* ---- main ---- */

int main(void) {
    sw_err err = {{0}};
    sw_backend_config bc = {.name = "cpu", .n_threads = 2};
    if (sw_backend_create(&bc, &g_cpu, &err) != SW_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        return 1;
    }
    sw_backend_config vc = {.name = "vulkan", .device = -1};
    if (sw_backend_create(&vc, &g_vk, &err) != SW_OK) {
        printf("vulkan: %s (its cases are skipped)\n", err.msg);
        g_vk = NULL;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_forward),
        cmocka_unit_test(test_synthetic_engine),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_minilm),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    sw_backend_free(g_vk);
    sw_backend_free(g_cpu);
    return failed;
}
