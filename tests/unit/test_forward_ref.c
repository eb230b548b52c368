/* test_forward_ref.c — the forward pass against an independent host reference:
 * a plain-C transformer written from the math (weights dequantized with the
 * reference dequantizer, double accumulators, F32 KV), compared logit by logit
 * at every position of a sequence fed in several steps (all_logits). Covers
 * llama and qwen2 (biases, NeoX rope), tied embeddings and rope factors,
 * gemma3 (embedding scale, q/k norms, post-norms, GeGLU, sliding-window layers
 * with their own rope base, soft-capping), and several weight types on
 * synthetic models. The gemma3 details are read from the GGUF keys here, not
 * from the loader's config. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <spillway.h>

/* ---- reference transformer ----------------------------------------------- */

typedef struct ref_model {
    const sw_gguf *g;
    const sw_model_config *c;
    bool ignore_llama3; /* negative control: rope without the llama3 factors */
} ref_model;

/* Meta's apply_scaling (llama3 rope), written out again from the paper's
 * reference code: ggml divides theta by factor[i] = freq / new_freq. */
static float *llama3_factors(const sw_model_config *c) {
    int64_t n = c->n_rot / 2;
    float *ff = malloc((size_t)n * sizeof *ff);
    assert_non_null(ff);
    double orig = (double)c->rope_llama3_orig_ctx, lo = c->rope_llama3_low_freq_factor,
           hi = c->rope_llama3_high_freq_factor, scale = c->rope_scaling_factor;
    for (int64_t i = 0; i < n; i++) {
        double freq = 1.0 / pow((double)c->rope_freq_base, (double)(2 * i) / (double)c->n_rot);
        double wavelen = 2 * M_PI / freq, new_freq;
        if (wavelen < orig / hi) new_freq = freq;
        else if (wavelen > orig / lo) new_freq = freq / scale;
        else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            new_freq = (1 - smooth) * freq / scale + smooth * freq;
        }
        ff[i] = (float)(freq / new_freq);
    }
    return ff;
}

/* Dequantize a whole tensor to f32 (caller frees). */
static float *deq(const ref_model *r, const char *name, int64_t *ne0, int64_t *ne1) {
    const sw_gguf_tensor *t = sw_gguf_find_tensor(r->g, name);
    if (!t) return NULL;
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    float *out = malloc((size_t)(t->ne[0] * rows) * sizeof *out);
    assert_non_null(out);
    size_t rs = sw_row_size(t->type, t->ne[0]);
    sw_err err = {{0}};
    for (int64_t i = 0; i < rows; i++)
        if (sw_dequantize_row(t->type, (const char *)t->data + (size_t)i * rs, out + i * t->ne[0],
                              t->ne[0], &err) != SW_OK)
            fail_msg("%s: %s", name, err.msg);
    if (ne0) *ne0 = t->ne[0];
    if (ne1) *ne1 = rows;
    return out;
}

static float *deq_layer(const ref_model *r, int64_t l, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, suffix);
    return deq(r, name, NULL, NULL);
}

/* out[n] = sum_k W[n][k] x[k] (+ b[n]) for W with N rows of K. */
static void matvec(const float *W, const float *b, const float *x, int64_t K, int64_t N,
                   float *out) {
    for (int64_t n = 0; n < N; n++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) acc += (double)W[n * K + k] * x[k];
        out[n] = (float)(acc + (b ? b[n] : 0));
    }
}

static void rmsnorm(const float *x, const float *w, int64_t n, float eps, float *out) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float s = (float)(1.0 / sqrt(ss / n + eps));
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * s * w[i];
}

static void rope(float *v, int64_t n_heads, int64_t hd, int32_t pos, const sw_model_config *c,
                 double base, const float *ff) {
    int64_t nr = c->n_rot;
    for (int64_t h = 0; h < n_heads; h++) {
        float *x = v + h * hd;
        for (int64_t i = 0; i < nr / 2; i++) {
            double theta = pos * (double)c->rope_freq_scale *
                           pow(base, -2.0 * (double)i / (double)nr) /
                           (ff ? ff[i] : 1.0);
            double cs = cos(theta), sn = sin(theta);
            int64_t a = c->rope_mode == SW_ROPE_NEOX ? i : 2 * i;
            int64_t b = c->rope_mode == SW_ROPE_NEOX ? i + nr / 2 : 2 * i + 1;
            double x0 = x[a], x1 = x[b];
            x[a] = (float)(x0 * cs - x1 * sn);
            x[b] = (float)(x0 * sn + x1 * cs);
        }
    }
}

static double key_or(const sw_gguf *g, const char *key, double dflt) {
    double v = 0;
    return sw_gguf_find_key(g, key) >= 0 && sw_gguf_get_float(g, key, &v, NULL) == SW_OK ? v : dflt;
}

/* gelu, tanh form, in double */
static double gelu(double x) {
    return 0.5 * x * (1 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
}

/* Logits [n_vocab] for every one of the T tokens (positions 0..T-1); hidden
 * (optional, [T][n_embd]) receives each token's final hidden state after the
 * output norm. */
static float *ref_forward(const ref_model *r, const int32_t *tokens, int32_t T, float *hidden) {
    const sw_model_config *c = r->c;
    /* gemma3: sqrt(n_embd) embedding scale; window layers (l % period <
     * period - 1) with the local rope base; optional final soft-cap */
    const bool gemma = c->arch == SW_ARCH_GEMMA3;
    const double escale = gemma ? sqrt((double)c->n_embd) : 1.0;
    const int64_t window = gemma ? (int64_t)key_or(r->g, "gemma3.attention.sliding_window", 0) : 0;
    const int64_t period = (int64_t)key_or(r->g, "gemma3.attention.sliding_window_pattern", 6);
    const double base_swa = key_or(r->g, "gemma3.rope.freq_base_swa", 10000.0);
    const double cap = gemma ? key_or(r->g, "gemma3.final_logit_softcapping", 0) : 0;
    int64_t E = c->n_embd, hd = c->head_dim, H = c->n_head, HK = c->n_head_kv, F = c->n_ff,
            V = c->n_vocab;
    int64_t QD = H * hd, KD = HK * hd;
    float *x = calloc((size_t)(T * E), sizeof *x), *h = malloc((size_t)E * sizeof *h);
    float *q = malloc((size_t)QD * sizeof *q), *att = malloc((size_t)QD * sizeof *att);
    float *kc = malloc((size_t)(T * KD) * sizeof *kc), *vc = malloc((size_t)(T * KD) * sizeof *vc);
    float *g = malloc((size_t)F * sizeof *g), *u = malloc((size_t)F * sizeof *u);
    float *o = malloc((size_t)E * sizeof *o), *sc = malloc((size_t)T * sizeof *sc);
    float *logits = malloc((size_t)(T * V) * sizeof *logits);
    assert_true(x && h && q && att && kc && vc && g && u && o && sc && logits);

    float *emb = deq(r, "token_embd.weight", NULL, NULL);
    float *ff = deq(r, "rope_freqs.weight", NULL, NULL);
    if (!ff && c->rope_scaling == SW_ROPE_SCALING_LLAMA3 && !r->ignore_llama3)
        ff = llama3_factors(c);
    for (int32_t t = 0; t < T; t++)
        for (int64_t i = 0; i < E; i++) x[t * E + i] = (float)(emb[(int64_t)tokens[t] * E + i] * escale);

    for (int64_t l = 0; l < c->n_layer; l++) {
        float *an = deq_layer(r, l, "attn_norm.weight"), *fn = deq_layer(r, l, "ffn_norm.weight");
        float *wq = deq_layer(r, l, "attn_q.weight"), *wk = deq_layer(r, l, "attn_k.weight");
        float *wv = deq_layer(r, l, "attn_v.weight"), *wo = deq_layer(r, l, "attn_output.weight");
        float *bq = deq_layer(r, l, "attn_q.bias"), *bk = deq_layer(r, l, "attn_k.bias");
        float *bv = deq_layer(r, l, "attn_v.bias");
        float *wg = deq_layer(r, l, "ffn_gate.weight"), *wu = deq_layer(r, l, "ffn_up.weight");
        float *wd = deq_layer(r, l, "ffn_down.weight");
        float *qn = deq_layer(r, l, "attn_q_norm.weight"), *kn = deq_layer(r, l, "attn_k_norm.weight");
        float *pan = deq_layer(r, l, "post_attention_norm.weight");
        float *pfn = deq_layer(r, l, "post_ffw_norm.weight");
        const bool swa = window > 0 && l % period < period - 1;
        const double base = swa ? base_swa : (double)c->rope_freq_base;
        for (int32_t t = 0; t < T; t++) {
            float *xt = x + t * E;
            /* attention */
            rmsnorm(xt, an, E, c->rms_eps, h);
            matvec(wq, bq, h, E, QD, q);
            matvec(wk, bk, h, E, KD, kc + t * KD);
            matvec(wv, bv, h, E, KD, vc + t * KD);
            for (int64_t hh = 0; qn && hh < H; hh++) rmsnorm(q + hh * hd, qn, hd, c->rms_eps, q + hh * hd);
            for (int64_t hh = 0; kn && hh < HK; hh++) {
                float *kv = kc + t * KD + hh * hd;
                rmsnorm(kv, kn, hd, c->rms_eps, kv);
            }
            rope(q, H, hd, t, c, base, ff);
            rope(kc + t * KD, HK, hd, t, c, base, ff);
            const int32_t lo = swa && t >= window ? (int32_t)(t - window + 1) : 0;
            for (int64_t hh = 0; hh < H; hh++) {
                int64_t kh = hh / (H / HK);
                double mx = -INFINITY, sum = 0;
                for (int32_t p = lo; p <= t; p++) {
                    double d = 0;
                    for (int64_t i = 0; i < hd; i++)
                        d += (double)q[hh * hd + i] * kc[p * KD + kh * hd + i];
                    sc[p] = (float)(d / sqrt((double)hd));
                    mx = fmax(mx, sc[p]);
                }
                for (int32_t p = lo; p <= t; p++) sum += exp(sc[p] - mx);
                for (int64_t i = 0; i < hd; i++) {
                    double acc = 0;
                    for (int32_t p = lo; p <= t; p++)
                        acc += exp(sc[p] - mx) / sum * vc[p * KD + kh * hd + i];
                    att[hh * hd + i] = (float)acc;
                }
            }
            matvec(wo, NULL, att, QD, E, o);
            if (pan) rmsnorm(o, pan, E, c->rms_eps, o);
            for (int64_t i = 0; i < E; i++) xt[i] += o[i];
            /* feed-forward */
            rmsnorm(xt, fn, E, c->rms_eps, h);
            matvec(wg, NULL, h, E, F, g);
            matvec(wu, NULL, h, E, F, u);
            for (int64_t i = 0; i < F; i++)
                g[i] = gemma ? (float)(gelu(g[i]) * u[i]) : g[i] / (1.0f + expf(-g[i])) * u[i];
            matvec(wd, NULL, g, F, E, o);
            if (pfn) rmsnorm(o, pfn, E, c->rms_eps, o);
            for (int64_t i = 0; i < E; i++) xt[i] += o[i];
        }
        free(an), free(fn), free(wq), free(wk), free(wv), free(wo), free(bq), free(bk), free(bv);
        free(wg), free(wu), free(wd), free(qn), free(kn), free(pan), free(pfn);
    }
    float *onorm = deq(r, "output_norm.weight", NULL, NULL);
    float *out = deq(r, "output.weight", NULL, NULL);
    for (int32_t t = 0; t < T; t++) {
        rmsnorm(x + t * E, onorm, E, c->rms_eps, h);
        matvec(out ? out : emb, NULL, h, E, V, logits + t * V);
        if (hidden) memcpy(hidden + t * E, h, (size_t)E * sizeof *h);
        for (int64_t i = 0; cap > 0 && i < V; i++)
            logits[t * V + i] = (float)(cap * tanh(logits[t * V + i] / cap));
    }
    free(onorm), free(out), free(emb), free(ff);
    free(x), free(h), free(q), free(att), free(kc), free(vc), free(g), free(u), free(o), free(sc);
    return logits;
}

/* ---- engine side ---------------------------------------------------------- */

/* Feed tokens in chunks (first a prefill of `first`, then one at a time),
 * asking for all logits, and collect them; hidden (optional, [T][n_embd])
 * receives the final hidden states. */
static float *engine_forward(sw_model *m, sw_kv_cache *kv, const int32_t *tokens, int32_t T,
                             int32_t first, float *hidden) {
    int64_t E = sw_model_config_get(m)->n_embd;
    int64_t V = sw_model_config_get(m)->n_vocab;
    float *logits = malloc((size_t)(T * V) * sizeof *logits);
    assert_non_null(logits);
    int32_t blocks[64], n_blocks = 0, bs = sw_kv_block_size(kv);
    int32_t pos[64];
    for (int32_t t0 = 0; t0 < T;) {
        int32_t n = t0 == 0 ? first : 1;
        while (n_blocks * bs < t0 + n) blocks[n_blocks++] = sw_kv_alloc_block(kv);
        for (int32_t i = 0; i < n; i++) pos[i] = t0 + i;
        int32_t ss[2] = {0, n};
        const int32_t *tables[1] = {blocks};
        sw_batch b = {.n_tokens = n, .tokens = tokens + t0, .pos = pos, .n_seqs = 1,
                      .seq_start = ss, .block_tables = tables, .n_blocks = &n_blocks,
                      .all_logits = true, .hidden = hidden ? hidden + t0 * E : NULL};
        sw_err err = {{0}};
        if (sw_model_forward(m, kv, &b, logits + t0 * V, &err) != SW_OK)
            fail_msg("forward: %s", err.msg);
        t0 += n;
    }
    for (int32_t i = 0; i < n_blocks; i++) sw_kv_free_block(kv, blocks[i]);
    return logits;
}

static bool make_model(const char *name, const char *flags, char *path, size_t cap) {
    const char *bin = getenv("SW_BIN_DIR"), *tmp = getenv("SW_TMP_DIR");
    char exe[1024], cmd[4096];
    struct stat st;
    if (!bin) {
        printf("SKIP: SW_BIN_DIR is not set\n");
        return false;
    }
    snprintf(exe, sizeof exe, "%s/spillway-mkmodel", bin);
    if (stat(exe, &st) != 0) {
        printf("SKIP: %s is not built\n", exe);
        return false;
    }
    snprintf(path, cap, "%s/test_forward_ref-%s.gguf", tmp ? tmp : "/tmp", name);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s >/dev/null 2>&1", exe, path, flags);
    if (system(cmd) != 0) fail_msg("failed: %s", cmd);
    return true;
}

/* max |engine - ref| / max |ref| over all logits of all positions. */
static void compare_path(const char *name, const char *path, sw_type kv_type, double tol,
                         int32_t T) {
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_backend_config bc = {.name = "cpu", .n_threads = 2};
    assert_int_equal(sw_backend_create(&bc, &be, &err), SW_OK);
    sw_model *m = NULL;
    if (sw_model_load(path, be, NULL, &m, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_kv_cache *kv = NULL;
    sw_kv_params kp = {.block_size = 4, .n_blocks = 16, .type = kv_type};
    assert_int_equal(sw_kv_cache_create(m, &kp, &kv, &err), SW_OK);
    const sw_model_config *c = sw_model_config_get(m);

    int32_t tokens[64];
    assert_true(T <= 64);
    for (int32_t i = 0; i < T; i++) tokens[i] = (int32_t)((i * 97 + 11) % c->n_vocab);
    ref_model r = {.g = sw_model_gguf(m), .c = c};
    int64_t E = c->n_embd, V = c->n_vocab;
    float *want_h = malloc((size_t)(T * E) * sizeof *want_h);
    float *got_h = malloc((size_t)(T * E) * sizeof *got_h);
    assert_true(want_h && got_h);
    float *want = ref_forward(&r, tokens, T, want_h);
    float *got = engine_forward(m, kv, tokens, T, 9, got_h);
    double max_ref = 0, max_diff = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < T * V; i++) {
        max_ref = fmax(max_ref, fabs(want[i]));
        double d = fabs((double)got[i] - want[i]);
        if (d > max_diff) max_diff = d, at = i;
    }
    double rel = max_diff / max_ref;
    printf("%-22s normalized max error %.3g (at position %lld, logit %lld: %g vs %g)\n", name, rel,
           (long long)(at / V), (long long)(at % V), got[at], want[at]);
    if (!(rel <= tol)) fail_msg("%s: normalized error %g > %g", name, rel, tol);
    /* The hidden states: against the reference's, and the engine's own logits
     * are the output matrix times them. */
    double max_h = 0, d_h = 0, d_lh = 0;
    for (int64_t i = 0; i < T * E; i++) {
        max_h = fmax(max_h, fabs(want_h[i]));
        d_h = fmax(d_h, fabs((double)got_h[i] - want_h[i]));
    }
    float *outw = deq(&r, "output.weight", NULL, NULL);
    const float *ow = outw ? outw : deq(&r, "token_embd.weight", NULL, NULL);
    for (int64_t t = 0; t < T; t++)
        for (int64_t v = 0; v < V; v++) {
            double acc = 0;
            for (int64_t i = 0; i < E; i++) acc += (double)ow[v * E + i] * got_h[t * E + i];
            double cap = c->final_logit_softcap;
            if (cap > 0) acc = cap * tanh(acc / cap);
            d_lh = fmax(d_lh, fabs(acc - got[t * V + v]));
        }
    printf("%-22s hidden: normalized max error %.3g vs reference; logits vs output x hidden %.3g\n",
           name, d_h / max_h, d_lh / max_ref);
    if (!(d_h / max_h <= tol)) fail_msg("%s: hidden error %g > %g", name, d_h / max_h, tol);
    if (!(d_lh / max_ref <= tol)) fail_msg("%s: logits vs output x hidden %g > %g", name, d_lh / max_ref, tol);
    free((void *)ow);
    free(want_h);
    free(got_h);
    free(want);
    free(got);
    sw_kv_cache_free(kv);
    sw_model_free(m);
    sw_backend_free(be);
}

static void compare_n(const char *name, const char *flags, sw_type kv_type, double tol, int32_t T) {
    char path[1024];
    if (!make_model(name, flags, path, sizeof path)) {
        skip();
        return;
    }
    compare_path(name, path, kv_type, tol, T);
}

static void compare(const char *name, const char *flags, sw_type kv_type, double tol) {
    compare_n(name, flags, kv_type, tol, 13);
}

/* Add g's tensors to w (all but `skip`, if given), write w to dst, free both. */
static void finish_copy(sw_gguf *g, sw_gguf_writer *w, const char *skip, const char *dst) {
    sw_err err = {{0}};
    for (int64_t i = 0; i < sw_gguf_n_tensors(g); i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        if (skip && !strcmp(t->name, skip)) continue;
        if (sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL, NULL,
                                      &err) != SW_OK)
            fail_msg("%s", err.msg);
    }
    if (sw_gguf_writer_write(w, dst, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_writer_free(w);
    sw_gguf_free(g);
}

/* Copy of src with llama3 rope-scaling metadata (and no rope_freqs tensor), so
 * that the loader has to compute the factors. A short original context makes
 * most dimensions scaled, so using or forgetting the factors shows. */
static void write_llama3(const char *src, const char *dst) {
    sw_err err = {{0}};
    sw_gguf *g = NULL;
    if (sw_gguf_open(src, &g, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++)
        assert_int_equal(sw_gguf_writer_copy_kv(w, g, i), SW_OK);
    assert_int_equal(sw_gguf_writer_set_str(w, "llama.rope.scaling.type", "llama3"), SW_OK);
    assert_int_equal(sw_gguf_writer_set_f32(w, "llama.rope.scaling.factor", 8.0f), SW_OK);
    assert_int_equal(sw_gguf_writer_set_f32(w, "llama.rope.scaling.low_freq_factor", 1.0f), SW_OK);
    assert_int_equal(sw_gguf_writer_set_f32(w, "llama.rope.scaling.high_freq_factor", 4.0f), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", 16),
                     SW_OK);
    finish_copy(g, w, "rope_freqs.weight", dst);
}

static void test_ref_llama3_computed_factors(void **state) {
    (void)state;
    char base[1024], path[1100];
    if (!make_model("llama3-base", "--shape tiny --type f32", base, sizeof base)) {
        skip();
        return;
    }
    snprintf(path, sizeof path, "%s-scaled.gguf", base);
    write_llama3(base, path);
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_backend_config bc = {.name = "cpu", .n_threads = 2};
    assert_int_equal(sw_backend_create(&bc, &be, &err), SW_OK);
    sw_model *m = NULL;
    if (sw_model_load(path, be, NULL, &m, &err) != SW_OK) fail_msg("%s", err.msg);
    const sw_model_config *c = sw_model_config_get(m);
    assert_int_equal(c->rope_scaling, SW_ROPE_SCALING_LLAMA3);
    assert_false(c->has_rope_freqs);
    sw_kv_cache *kv = NULL;
    sw_kv_params kp = {.block_size = 4, .n_blocks = 16, .type = SW_TYPE_F32};
    assert_int_equal(sw_kv_cache_create(m, &kp, &kv, &err), SW_OK);
    enum { T = 13 };
    int32_t tokens[T];
    for (int32_t i = 0; i < T; i++) tokens[i] = (int32_t)((i * 97 + 11) % c->n_vocab);
    ref_model r = {.g = sw_model_gguf(m), .c = c};
    float *want = ref_forward(&r, tokens, T, NULL);
    r.ignore_llama3 = true;
    float *unscaled = ref_forward(&r, tokens, T, NULL);
    float *got = engine_forward(m, kv, tokens, T, 9, NULL);
    double max_ref = 0, d_want = 0, d_unscaled = 0;
    for (int64_t i = 0; i < T * c->n_vocab; i++) {
        max_ref = fmax(max_ref, fabs(want[i]));
        d_want = fmax(d_want, fabs((double)got[i] - want[i]));
        d_unscaled = fmax(d_unscaled, fabs((double)got[i] - unscaled[i]));
    }
    printf("llama3 computed factors: error %.3g vs scaled reference, %.3g vs unscaled\n",
           d_want / max_ref, d_unscaled / max_ref);
    assert_true(d_want / max_ref <= 1e-4);
    assert_true(d_unscaled / max_ref > 1e-2); /* the factors matter in this setup */
    free(want);
    free(unscaled);
    free(got);
    sw_kv_cache_free(kv);
    sw_model_free(m);
    sw_backend_free(be);
}

/* F32 weights and KV: only summation order differs from the reference. */
static void test_ref_f32(void **s) { (void)s; compare("f32", "--shape tiny --type f32", SW_TYPE_F32, 1e-4); }
/* An f16 cache rounds K and V to 11 significant bits. */
static void test_ref_f32_f16kv(void **s) { (void)s; compare("f32-f16kv", "--shape tiny --type f32", SW_TYPE_F16, 1e-2); }
static void test_ref_qwen2(void **s) { (void)s; compare("qwen2", "--shape tiny --type f32 --arch qwen2", SW_TYPE_F32, 1e-4); }
static void test_ref_tied_rope(void **s) {
    (void)s;
    compare("tied-rope", "--shape tiny --type f32 --tied --rope-freqs", SW_TYPE_F32, 1e-4);
}
/* Quantized weights: the reference uses the same dequantized weights, so the
 * remaining error is the backend's (e.g. activations quantized to 8 bits for
 * integer dot products: about 0.5% per matmul). */
static void test_ref_f16(void **s) { (void)s; compare("f16", "--shape tiny --type f16", SW_TYPE_F32, 1e-2); }
static void test_ref_q8_0(void **s) { (void)s; compare("q8_0", "--shape tiny --type q8_0", SW_TYPE_F32, 3e-2); }
static void test_ref_q4_0(void **s) { (void)s; compare("q4_0", "--shape tiny --type q4_0", SW_TYPE_F32, 3e-2); }
static void test_ref_q4_k(void **s) { (void)s; compare("q4_k", "--shape tiny --type q4_k", SW_TYPE_F32, 3e-2); }
static void test_ref_q6_k(void **s) { (void)s; compare("q6_k", "--shape tiny --type q6_k", SW_TYPE_F32, 3e-2); }
/* gemma3: 40 positions cross the 16-position window of layers 0 and 1
 * (layer 2 attends globally); a second file sets a local rope base, a
 * pattern of 2 (layers 0 and 2 windowed) and a soft-cap */
static void test_ref_gemma3(void **s) {
    (void)s;
    compare_n("gemma3", "--shape gemma3-tiny --type f32", SW_TYPE_F32, 1e-4, 40);
}
/* Copy of src with the gemma3 keys llama.cpp's converter may also write:
 * a local rope base, a window period of 2 (layers 0 and 2 windowed, 1
 * global) and a final soft-cap. */
static void write_gemma3_variant(const char *src, const char *dst) {
    sw_err err = {{0}};
    sw_gguf *g = NULL;
    if (sw_gguf_open(src, &g, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++) {
        const char *k = sw_gguf_kv_key(g, i);
        if (!strcmp(k, "gemma3.attention.sliding_window_pattern")) continue;
        assert_int_equal(sw_gguf_writer_copy_kv(w, g, i), SW_OK);
    }
    assert_int_equal(sw_gguf_writer_set_f32(w, "gemma3.rope.freq_base_swa", 5000.0f), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u32(w, "gemma3.attention.sliding_window_pattern", 2), SW_OK);
    assert_int_equal(sw_gguf_writer_set_f32(w, "gemma3.final_logit_softcapping", 15.0f), SW_OK);
    finish_copy(g, w, NULL, dst);
}

static void test_ref_gemma3_variant(void **state) {
    (void)state;
    char base[1024], path[1100];
    if (!make_model("gemma3", "--shape gemma3-tiny --type f32", base, sizeof base)) {
        skip();
        return;
    }
    snprintf(path, sizeof path, "%s-variant.gguf", base);
    write_gemma3_variant(base, path);
    compare_path("gemma3-variant", path, SW_TYPE_F32, 1e-4, 40);
}

static void test_ref_gemma3_q8_0(void **s) {
    (void)s;
    compare_n("gemma3-q8_0", "--shape gemma3-tiny --type q8_0", SW_TYPE_F16, 3e-2, 40);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_f32),  cmocka_unit_test(test_ref_f32_f16kv),
        cmocka_unit_test(test_ref_qwen2), cmocka_unit_test(test_ref_tied_rope),
        cmocka_unit_test(test_ref_f16),  cmocka_unit_test(test_ref_q8_0),
        cmocka_unit_test(test_ref_q4_0), cmocka_unit_test(test_ref_q4_k),
        cmocka_unit_test(test_ref_q6_k), cmocka_unit_test(test_ref_llama3_computed_factors),
        cmocka_unit_test(test_ref_gemma3), cmocka_unit_test(test_ref_gemma3_q8_0),
        cmocka_unit_test(test_ref_gemma3_variant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
