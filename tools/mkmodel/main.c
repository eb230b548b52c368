/* spillway-mkmodel — writes a synthetic llama/qwen2/gemma3 GGUF (or a bert
 * encoder, see build_bert_plan) with deterministic random weights, in any
 * supported tensor type, for tests and benchmarks of shapes we have no real weights for.
 *
 * Weight scheme (why: numerically sane activations at any depth, and logits
 * whose top entry stands far clear of the rest, so that greedy decoding gives
 * the same tokens under the small numeric differences between backends and
 * quantization types; scaling logits up would not help, since those errors
 * scale with them):
 *   token_embd            e_v ~ N(0, 1): the residual stream starts at RMS ~1
 *   attn_q/k/v, ffn_gate/up  N(0, 1/fan_in): unit-variance projections of the
 *                         normalized input, so attention scores have std ~1
 *   attn_output, ffn_down N(0, 1/(fan_in * 2 * n_layer)): each of the 2*n_layer
 *                         residual updates adds ~1/(2 n_layer) variance, so the
 *                         stream stays at RMS ~1.4 however deep the model is and
 *                         stays dominated by the current token's embedding e_t
 *   output                N(0, 2.5^2/n_embd) plus a "bigram" part: the row of
 *                         token v = next(t) also gets (24/n_embd) * e_t, where
 *                         next(t) = targets[(a*t + 1) mod m] over the m ordinary
 *                         tokens (see mk_bigram in mkmodel.h). With h the final
 *                         RMSNorm output (|h| = sqrt(n_embd), mostly along e_t)
 *                         the logits are a context-dependent part of std ~3 plus
 *                         a spike of ~+20 at next(t): greedy decoding walks
 *                         next(), never hits EOS, with a margin of ~10 logits.
 *                         Tied models (no output.weight) use token_embd, whose
 *                         top logit is the current token by ~n_embd/2.
 *   norms                 1; gemma3's 1 + N(0, 0.2^2), every norm its own
 *                         (its GGUFs store Gemma's 1 + w); qwen2 Q/K/V biases
 *                         N(0, 0.1^2)
 *   gemma3                tied, as the real ones; its embeddings are scaled by
 *                         sqrt(n_embd) in the forward pass and every sublayer
 *                         output is normed to RMS 1 before it joins, so the
 *                         stream stays dominated by the current token
 *   rope_freqs            llama3 factors (factor 32, low 1, high 4, ctx 8192)
 * N(0, s^2) is an Irwin-Hall approximation (see weights.c); every row has its own
 * PRNG stream from (--seed, tensor name, row), so output is reproducible and any
 * row can be regenerated on its own (output.weight re-derives rows of token_embd). */
#include "mkmodel.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct mk_shape {
    const char *name;
    int64_t n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    double rope_base; /* 0: the architecture's default */
    bool tied, rope_freqs;
    sw_arch arch;     /* the preset's architecture (--arch overrides) */
    int64_t head_dim; /* 0: n_embd / n_head */
    int64_t n_swa, swa_period; /* gemma3 sliding window (0: none) and its period */
} mk_shape;

static const mk_shape k_shapes[] = {
    /* every row length a multiple of 256, so every tensor type fits */
    {"tiny", 2, 256, 4, 2, 512, 512, 512, 0, false, false, SW_ARCH_LLAMA, 0, 0, 0},
    {"100m", 12, 768, 12, 4, 2048, 32000, 2048, 0, false, false, SW_ARCH_LLAMA, 0, 0, 0},
    /* Llama-3.2-1B: tied embeddings and llama3 rope factors, as in its GGUF */
    {"1b", 16, 2048, 32, 8, 8192, 128256, 131072, 500000, true, true, SW_ARCH_LLAMA, 0, 0, 0},
    {"llama3-8b", 32, 4096, 32, 8, 14336, 128256, 8192, 500000, false, false, SW_ARCH_LLAMA, 0,
     0, 0},
    /* bert encoders: a small one for tests, and all-MiniLM-L6-v2's shape */
    {"bert-tiny", 2, 256, 4, 4, 512, 512, 512, 0, false, false, SW_ARCH_BERT, 0, 0, 0},
    {"minilm", 6, 384, 12, 12, 1536, 30522, 512, 0, false, false, SW_ARCH_BERT, 0, 0, 0},
    /* Gemma 3's code path in small: head_dim 128 != n_embd / n_head, one kv
     * head, a 16-position window on layers 0 and 1, layer 2 global */
    {"gemma3-tiny", 3, 256, 4, 1, 512, 512, 512, 0, true, false, SW_ARCH_GEMMA3, 128, 16, 3},
    /* Gemma 3 270M's shape (its vocabulary: --vocab-from the real file) */
    {"gemma3-270m", 18, 640, 4, 1, 2048, 262144, 32768, 0, true, false, SW_ARCH_GEMMA3, 256, 512,
     6},
};

typedef struct mk_opts {
    const char *out, *vocab_from, *type_name;
    mk_shape shape;
    bool set_vocab;
    sw_type type;
    bool q4_k_m;
    sw_arch arch;
    uint64_t seed;
    int n_threads;
    bool verbose;
} mk_opts;

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-mkmodel -o OUT.gguf\n"
               "         [--shape tiny|100m|1b|llama3-8b|bert-tiny|minilm|gemma3-tiny|\n"
               "                  gemma3-270m]\n"
               "         [--layers N] [--dim N] [--heads N] [--kv-heads N] [--head-dim N] [--ff N]\n"
               "         [--vocab N] [--ctx N] [--swa N] [--swa-period N]\n"
               "         [--type f32|f16|bf16|q4_0|q4_1|q5_0|q5_1|q8_0|q2_k|q3_k|q4_k|\n"
               "                       q5_k|q6_k|q4_k_m] [--arch llama|qwen2|gemma3|bert]\n"
               "         [--vocab-from FILE.gguf] [--seed N] [--rope-base F]\n"
               "         [--tied|--untied] [--rope-freqs|--no-rope-freqs] [--threads N] [-v]\n"
               "Writes a synthetic model with deterministic random weights (default: tiny, f32,\n"
               "llama, seed 1, one thread per CPU). Explicit flags override the preset; the\n"
               "output does not depend on --threads. Quiet unless it fails; -v/--verbose\n"
               "prints the model's shape and a line per tensor.\n");
}

static int bad(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "spillway-mkmodel: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(see spillway-mkmodel --help)\n");
    return 2;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static const char *const k_types[] = {"f32",  "f16",  "bf16", "q4_0", "q4_1", "q5_0", "q5_1",
                                      "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_k_m"};

/* Returns 0 on success, 2 on a bad command line (message printed), 1 for --help. */
static int parse_args(int argc, char **argv, mk_opts *o) {
    memset(o, 0, sizeof *o);
    o->shape = k_shapes[0];
    o->type = SW_TYPE_F32;
    o->type_name = "f32";
    o->seed = 1;
    o->arch = SW_ARCH_LLAMA;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->n_threads = ncpu < 1 ? 1 : ncpu > MK_MAX_THREADS ? MK_MAX_THREADS : (int)ncpu;
    /* the preset comes first so that explicit flags win wherever they appear */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--shape") != 0) continue;
        size_t k = 0;
        for (; k < sizeof k_shapes / sizeof k_shapes[0]; k++)
            if (!strcmp(argv[i + 1], k_shapes[k].name)) break;
        if (k == sizeof k_shapes / sizeof k_shapes[0])
            return bad("--shape '%s': unknown (use tiny, 100m, 1b, llama3-8b, bert-tiny, "
                       "minilm, gemma3-tiny or gemma3-270m)%s",
                       argv[i + 1], "");
        o->shape = k_shapes[k];
        o->arch = o->shape.arch;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = true;
            continue;
        }
        if (!strcmp(a, "--tied")) {
            o->shape.tied = true;
            continue;
        }
        if (!strcmp(a, "--untied")) {
            o->shape.tied = false;
            continue;
        }
        if (!strcmp(a, "--rope-freqs")) {
            o->shape.rope_freqs = true;
            continue;
        }
        if (!strcmp(a, "--no-rope-freqs")) {
            o->shape.rope_freqs = false;
            continue;
        }
        if (a[0] != '-') return bad("unexpected argument '%s'%s", a, "");
        if (i + 1 >= argc) return bad("%s needs a value%s", a, "");
        const char *v = argv[++i];
        int64_t *dim = NULL;
        if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            o->out = v;
        else if (!strcmp(a, "--shape"))
            continue; /* handled above */
        else if (!strcmp(a, "--layers"))
            dim = &o->shape.n_layer;
        else if (!strcmp(a, "--dim"))
            dim = &o->shape.n_embd;
        else if (!strcmp(a, "--heads"))
            dim = &o->shape.n_head;
        else if (!strcmp(a, "--kv-heads"))
            dim = &o->shape.n_head_kv;
        else if (!strcmp(a, "--head-dim"))
            dim = &o->shape.head_dim;
        else if (!strcmp(a, "--swa"))
            dim = &o->shape.n_swa;
        else if (!strcmp(a, "--swa-period"))
            dim = &o->shape.swa_period;
        else if (!strcmp(a, "--ff"))
            dim = &o->shape.n_ff;
        else if (!strcmp(a, "--ctx"))
            dim = &o->shape.n_ctx;
        else if (!strcmp(a, "--vocab")) {
            dim = &o->shape.n_vocab;
            o->set_vocab = true;
        } else if (!strcmp(a, "--vocab-from"))
            o->vocab_from = v;
        else if (!strcmp(a, "--threads")) {
            int64_t n = 0;
            if (!parse_i64(v, 1, MK_MAX_THREADS, &n))
                return bad("--threads '%s': must be an integer in 1..%s", v, "64");
            o->n_threads = (int)n;
        } else if (!strcmp(a, "--type")) {
            size_t k = 0;
            for (; k < sizeof k_types / sizeof k_types[0]; k++)
                if (!strcmp(v, k_types[k])) break;
            if (k == sizeof k_types / sizeof k_types[0])
                return bad(
                    "--type '%s': unknown (use f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, "
                    "q2_k, q3_k, q4_k, q5_k, q6_k or q4_k_m)%s",
                    v, "");
            o->q4_k_m = !strcmp(v, "q4_k_m");
            if (sw_type_from_name(o->q4_k_m ? "q4_k" : v, &o->type, NULL) != SW_OK)
                return bad("--type '%s': not known to this build%s", v, "");
            o->type_name = k_types[k];
        } else if (!strcmp(a, "--arch")) {
            if (!strcmp(v, "llama"))
                o->arch = SW_ARCH_LLAMA;
            else if (!strcmp(v, "qwen2"))
                o->arch = SW_ARCH_QWEN2;
            else if (!strcmp(v, "bert"))
                o->arch = SW_ARCH_BERT;
            else if (!strcmp(v, "gemma3"))
                o->arch = SW_ARCH_GEMMA3;
            else
                return bad("--arch '%s': unknown (use llama, qwen2, gemma3 or bert)%s", v, "");
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 0);
            if (errno || !*v || *end || v[0] == '-')
                return bad("--seed '%s': not an unsigned integer%s", v, "");
            o->seed = s;
        } else if (!strcmp(a, "--rope-base")) {
            char *end = NULL;
            errno = 0;
            double f = strtod(v, &end);
            if (errno || !*v || *end || !(f > 1.0) || !isfinite(f))
                return bad("--rope-base '%s': must be a number greater than 1%s", v, "");
            o->shape.rope_base = f;
        } else {
            return bad("unknown flag '%s'%s", a, "");
        }
        if (dim && !parse_i64(v, 1, (int64_t)1 << 30, dim))
            return bad("%s '%s': must be an integer in 1..2^30", a, v);
    }
    if (!o->out) return bad("missing -o OUT.gguf%s%s", "", "");
    mk_shape *s = &o->shape;
    char buf[64];
    if (o->arch == SW_ARCH_GEMMA3) {
        s->tied = true; /* the forward pass has no untied gemma3; neither do the real ones */
        if (!s->swa_period) s->swa_period = 6;
    }
    if (s->head_dim) {
        if (s->head_dim % 2 != 0) {
            snprintf(buf, sizeof buf, "%lld", (long long)s->head_dim);
            return bad("--head-dim %s must be even%s", buf, "");
        }
    } else if (s->n_embd % s->n_head != 0) {
        snprintf(buf, sizeof buf, "%lld / %lld", (long long)s->n_embd, (long long)s->n_head);
        return bad("--dim must be a multiple of --heads (%s)%s", buf, "");
    }
    if (!s->head_dim && (s->n_embd / s->n_head) % 2 != 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)(s->n_embd / s->n_head));
        return bad("head dimension --dim/--heads = %s must be even%s", buf, "");
    }
    if (s->n_head_kv > s->n_head || s->n_head % s->n_head_kv != 0) {
        snprintf(buf, sizeof buf, "%lld / %lld", (long long)s->n_head, (long long)s->n_head_kv);
        return bad("--heads must be a multiple of --kv-heads (%s)%s", buf, "");
    }
    if (o->vocab_from && o->set_vocab)
        return bad("--vocab and --vocab-from exclude each other%s%s", "", "");
    int min_vocab = o->arch == SW_ARCH_BERT ? MK_MIN_WPM_VOCAB : MK_MIN_VOCAB;
    if (!o->vocab_from && s->n_vocab < min_vocab) {
        snprintf(buf, sizeof buf, "%d", min_vocab);
        return bad("--vocab must be at least %s for a generated vocabulary%s", buf, "");
    }
    if (o->arch == SW_ARCH_BERT && s->n_head_kv != s->n_head) {
        snprintf(buf, sizeof buf, "%lld != %lld", (long long)s->n_head_kv, (long long)s->n_head);
        return bad("bert has no grouped-query attention: --kv-heads must equal --heads (%s)%s",
                   buf, "");
    }
    return 0;
}

/* ---- the file ---- */

static sw_status set_hparams(sw_gguf_writer *w, const mk_opts *o, const char *arch, sw_err *err) {
    const mk_shape *s = &o->shape;
    char key[128], name[160];
    sw_status st = SW_OK;
    snprintf(name, sizeof name, "spillway-mkmodel %s %s %s seed %llu", s->name, arch, o->type_name,
             (unsigned long long)o->seed);
    double rope_base = s->rope_base > 0 ? s->rope_base : o->arch == SW_ARCH_LLAMA ? 1e4 : 1e6;
    const int64_t hd = s->head_dim ? s->head_dim : s->n_embd / s->n_head;
#define U32(suffix, v)                                                                             \
    do {                                                                                           \
        snprintf(key, sizeof key, "%s.%s", arch, suffix);                                          \
        if (st == SW_OK) st = sw_gguf_writer_set_u32(w, key, (uint32_t)(v));                       \
    } while (0)
#define F32(suffix, v)                                                                             \
    do {                                                                                           \
        snprintf(key, sizeof key, "%s.%s", arch, suffix);                                          \
        if (st == SW_OK) st = sw_gguf_writer_set_f32(w, key, (float)(v));                          \
    } while (0)
    st = sw_gguf_writer_set_str(w, "general.architecture", arch);
    if (st == SW_OK) st = sw_gguf_writer_set_str(w, "general.name", name);
    if (st == SW_OK)
        st = sw_gguf_writer_set_u32(w, "general.file_type", sw_model_file_type(o->type, o->q4_k_m));
    if (st == SW_OK) st = sw_gguf_writer_set_u32(w, "general.quantization_version", 2);
    U32("context_length", s->n_ctx);
    U32("embedding_length", s->n_embd);
    U32("block_count", s->n_layer);
    U32("feed_forward_length", s->n_ff);
    U32("attention.head_count", s->n_head);
    U32("attention.head_count_kv", s->n_head_kv);
    U32("rope.dimension_count", hd);
    if (s->head_dim) {
        U32("attention.key_length", hd);
        U32("attention.value_length", hd);
    }
    U32("vocab_size", s->n_vocab);
    F32("rope.freq_base", rope_base);
    F32("attention.layer_norm_rms_epsilon", o->arch == SW_ARCH_LLAMA ? 1e-5 : 1e-6);
    if (o->arch == SW_ARCH_GEMMA3 && s->n_swa > 0) {
        /* as llama.cpp's converter: the window, but no pattern key (the period
         * defaults to 6) and no local rope base (10000) unless they differ */
        U32("attention.sliding_window", s->n_swa);
        if (s->swa_period != 6) U32("attention.sliding_window_pattern", s->swa_period);
    }
#undef U32
#undef F32
    if (st != SW_OK) return sw_err_set(err, st, "setting model metadata: %s", sw_status_str(st));
    return SW_OK;
}

/* bert: llama.cpp's keys; non-causal, mean pooling, two token types. */
static sw_status set_bert_hparams(sw_gguf_writer *w, const mk_opts *o, sw_err *err) {
    const mk_shape *s = &o->shape;
    char name[160];
    snprintf(name, sizeof name, "spillway-mkmodel %s bert %s seed %llu", s->name, o->type_name,
             (unsigned long long)o->seed);
    sw_status st = sw_gguf_writer_set_str(w, "general.architecture", "bert");
    if (st == SW_OK) st = sw_gguf_writer_set_str(w, "general.name", name);
    if (st == SW_OK)
        st = sw_gguf_writer_set_u32(w, "general.file_type", sw_model_file_type(o->type, o->q4_k_m));
    const struct {
        const char *key;
        int64_t v;
    } u32[] = {{"bert.context_length", s->n_ctx},      {"bert.embedding_length", s->n_embd},
               {"bert.block_count", s->n_layer},       {"bert.feed_forward_length", s->n_ff},
               {"bert.attention.head_count", s->n_head}, {"bert.pooling_type", 1}};
    for (size_t i = 0; st == SW_OK && i < sizeof u32 / sizeof u32[0]; i++)
        st = sw_gguf_writer_set_u32(w, u32[i].key, (uint32_t)u32[i].v);
    if (st == SW_OK) st = sw_gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", 1e-12f);
    if (st == SW_OK) st = sw_gguf_writer_set_bool(w, "bert.attention.causal", false);
    if (st != SW_OK) return sw_err_set(err, st, "setting model metadata: %s", sw_status_str(st));
    return SW_OK;
}

typedef struct mk_plan {
    mk_tensor *t;
    int n, cap;
    mk_scratch scratch[MK_MAX_THREADS];
    float *rope_table;
    mk_bigram bigram;
} mk_plan;

static sw_status plan_add(mk_plan *p, const mk_opts *o, const char *name, mk_kind kind, float scale,
                          int64_t ne0, int64_t ne1, sw_err *err) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        mk_tensor *nt = realloc(p->t, (size_t)cap * sizeof *nt);
        if (!nt) return sw_err_set(err, SW_E_NOMEM, "tensor list");
        p->t = nt;
        p->cap = cap;
    }
    mk_tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->scale = scale;
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 0 ? ne1 : 1;
    t->type = t->n_dims == 1
                  ? SW_TYPE_F32
                  : sw_model_quant_choose(name, ne0, o->type, o->q4_k_m, o->shape.n_layer,
                                          o->shape.tied, NULL);
    t->row_bytes = sw_row_size(t->type, ne0);
    t->stream = mk_stream_id(o->seed, name);
    t->scratch = p->scratch;
    t->n_threads = o->n_threads;
    if (t->row_bytes == 0) return sw_err_set(err, SW_E_INTERNAL, "%s: no row size", name);
    return SW_OK;
}

/* Which tokens the bigram structure may predict: ordinary text pieces only.
 * Generated vocab: everything after the bytes; copied vocab: token_type 1
 * (normal), or, without token types, everything but BOS/EOS/UNK. */
static sw_status pick_targets(const sw_gguf *vsrc, int64_t n_vocab, bool **out, sw_err *err) {
    bool *t = calloc((size_t)n_vocab, sizeof *t);
    if (!t) return sw_err_set(err, SW_E_NOMEM, "target table");
    *out = t;
    if (!vsrc) {
        for (int64_t v = MK_FIRST_NORMAL; v < n_vocab; v++)
            t[v] = true;
        return SW_OK;
    }
    int64_t idx = sw_gguf_find_key(vsrc, "tokenizer.ggml.token_type");
    if (idx >= 0 && sw_gguf_kv_type(vsrc, idx) == SW_GGUF_ARRAY &&
        sw_gguf_kv_arr_n(vsrc, idx) == (uint64_t)n_vocab) {
        for (int64_t v = 0; v < n_vocab; v++) {
            int64_t ty = 0;
            sw_status st = sw_gguf_arr_int(vsrc, idx, (uint64_t)v, &ty, err);
            if (st != SW_OK)
                return sw_err_wrap(err, st, "'%s': tokenizer.ggml.token_type", sw_gguf_path(vsrc));
            t[v] = ty == 1;
        }
        return SW_OK;
    }
    for (int64_t v = 0; v < n_vocab; v++)
        t[v] = true;
    const char *keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.eot_token_id"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int64_t id = -1;
        if (sw_gguf_get_int(vsrc, keys[k], &id, NULL) == SW_OK && id >= 0 && id < n_vocab)
            t[id] = false;
    }
    return SW_OK;
}

static sw_status build_plan(mk_plan *p, const mk_opts *o, const sw_gguf *vsrc, sw_err *err) {
    const mk_shape *s = &o->shape;
    const int64_t E = s->n_embd, F = s->n_ff, V = s->n_vocab;
    const int64_t hd = s->head_dim ? s->head_dim : E / s->n_head;
    const int64_t q = s->n_head * hd, kv = s->n_head_kv * hd;
    const bool gemma3 = o->arch == SW_ARCH_GEMMA3;
    const mk_kind norm = gemma3 ? MK_NORM : MK_CONST;
    const float norm_s = gemma3 ? 0.2f : 1.0f;
    const float proj = 1.0f, resid = 1.0f / sqrtf(2.0f * (float)s->n_layer);
    char name[96];
    sw_status st;
#define ADD(nm, kind, scale, a, b)                                                                 \
    if ((st = plan_add(p, o, nm, kind, scale, a, b, err)) != SW_OK) return st
    ADD("token_embd.weight", MK_GAUSS, 1.0f, E, V);
    if (!s->tied) {
        bool *targets = NULL;
        st = pick_targets(vsrc, V, &targets, err);
        if (st == SW_OK)
            st = mk_bigram_init(&p->bigram, targets, V, 24.0f / (float)E, p->t[0].stream, err);
        free(targets);
        if (st != SW_OK) return st;
    }
    if (s->rope_freqs) {
        sw_model_config c = {0};
        c.n_rot = hd;
        c.rope_freq_base = (float)(s->rope_base > 0           ? s->rope_base
                                   : o->arch == SW_ARCH_LLAMA ? 1e4
                                                              : 1e6);
        c.rope_scaling = SW_ROPE_SCALING_LLAMA3;
        c.rope_scaling_factor = 32.0f;
        c.rope_llama3_low_freq_factor = 1.0f;
        c.rope_llama3_high_freq_factor = 4.0f;
        c.rope_llama3_orig_ctx = 8192;
        p->rope_table = malloc((size_t)(hd / 2) * sizeof(float));
        if (!p->rope_table) return sw_err_set(err, SW_E_NOMEM, "rope table");
        sw_model_config_llama3_freq_factors(&c, p->rope_table);
        ADD("rope_freqs.weight", MK_TABLE, 0.0f, hd / 2, 0);
        p->t[p->n - 1].table = p->rope_table;
    }
    for (int64_t il = 0; il < s->n_layer; il++) {
#define LAYER(suffix, kind, scale, a, b)                                                           \
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, suffix);                             \
    ADD(name, kind, scale, a, b)
        LAYER("attn_norm.weight", norm, norm_s, E, 0);
        LAYER("attn_q.weight", MK_GAUSS, proj / sqrtf((float)E), E, q);
        LAYER("attn_k.weight", MK_GAUSS, proj / sqrtf((float)E), E, kv);
        LAYER("attn_v.weight", MK_GAUSS, proj / sqrtf((float)E), E, kv);
        if (o->arch == SW_ARCH_QWEN2) {
            LAYER("attn_q.bias", MK_GAUSS, 0.1f, q, 0);
            LAYER("attn_k.bias", MK_GAUSS, 0.1f, kv, 0);
            LAYER("attn_v.bias", MK_GAUSS, 0.1f, kv, 0);
        }
        if (gemma3) {
            LAYER("attn_q_norm.weight", norm, norm_s, hd, 0);
            LAYER("attn_k_norm.weight", norm, norm_s, hd, 0);
        }
        LAYER("attn_output.weight", MK_GAUSS, resid / sqrtf((float)q), q, E);
        if (gemma3) {
            LAYER("post_attention_norm.weight", norm, norm_s, E, 0);
        }
        LAYER("ffn_norm.weight", norm, norm_s, E, 0);
        LAYER("ffn_gate.weight", MK_GAUSS, proj / sqrtf((float)E), E, F);
        LAYER("ffn_up.weight", MK_GAUSS, proj / sqrtf((float)E), E, F);
        LAYER("ffn_down.weight", MK_GAUSS, resid / sqrtf((float)F), F, E);
        if (gemma3) {
            LAYER("post_ffw_norm.weight", norm, norm_s, E, 0);
        }
#undef LAYER
    }
    ADD("output_norm.weight", norm, norm_s, E, 0);
    if (!s->tied) {
        ADD("output.weight", MK_GAUSS, 2.5f / sqrtf((float)E), E, V);
        p->t[p->n - 1].bigram = &p->bigram;
    }
#undef ADD
    for (int i = 0; i < p->n; i++) {
        p->t[i].index = i + 1;
        p->t[i].count = p->n;
    }
    return SW_OK;
}

/* bert: token, position and token-type embeddings (the last two f32, as
 * scripts/convert-bert.py writes them) and a LayerNorm; per layer q/k/v/output
 * projections, the LayerNorm after attention, the GELU FFN, the LayerNorm
 * after it. Every matrix N(0, 1/fan_in) (post-norm layers keep the stream at
 * unit scale whatever they add), biases N(0, 0.1^2), norm weights 1 and
 * biases N(0, 0.1^2). */
static sw_status build_bert_plan(mk_plan *p, const mk_opts *o, sw_err *err) {
    const mk_shape *s = &o->shape;
    const int64_t E = s->n_embd, F = s->n_ff;
    const float inv_e = 1.0f / sqrtf((float)E), inv_f = 1.0f / sqrtf((float)F);
    char name[96];
    sw_status st;
    if ((st = plan_add(p, o, "token_embd.weight", MK_GAUSS, 1.0f, E, s->n_vocab, err)) != SW_OK)
        return st;
    const char *f32_tables[] = {"position_embd.weight", "token_types.weight"};
    const int64_t rows[] = {s->n_ctx, 2};
    for (int i = 0; i < 2; i++) {
        if ((st = plan_add(p, o, f32_tables[i], MK_GAUSS, 0.5f, E, rows[i], err)) != SW_OK)
            return st;
        mk_tensor *t = &p->t[p->n - 1];
        t->type = SW_TYPE_F32;
        t->row_bytes = sw_row_size(SW_TYPE_F32, E);
    }
    if ((st = plan_add(p, o, "token_embd_norm.weight", MK_CONST, 1.0f, E, 0, err)) != SW_OK ||
        (st = plan_add(p, o, "token_embd_norm.bias", MK_GAUSS, 0.1f, E, 0, err)) != SW_OK)
        return st;
    const struct {
        const char *suffix;
        mk_kind kind;
        float scale;
        int64_t ne0, ne1;
    } layer[] = {
        {"attn_q.weight", MK_GAUSS, inv_e, E, E},   {"attn_q.bias", MK_GAUSS, 0.1f, E, 0},
        {"attn_k.weight", MK_GAUSS, inv_e, E, E},   {"attn_k.bias", MK_GAUSS, 0.1f, E, 0},
        {"attn_v.weight", MK_GAUSS, inv_e, E, E},   {"attn_v.bias", MK_GAUSS, 0.1f, E, 0},
        {"attn_output.weight", MK_GAUSS, inv_e, E, E},
        {"attn_output.bias", MK_GAUSS, 0.1f, E, 0},
        {"attn_output_norm.weight", MK_CONST, 1.0f, E, 0},
        {"attn_output_norm.bias", MK_GAUSS, 0.1f, E, 0},
        {"ffn_up.weight", MK_GAUSS, inv_e, E, F},   {"ffn_up.bias", MK_GAUSS, 0.1f, F, 0},
        {"ffn_down.weight", MK_GAUSS, inv_f, F, E}, {"ffn_down.bias", MK_GAUSS, 0.1f, E, 0},
        {"layer_output_norm.weight", MK_CONST, 1.0f, E, 0},
        {"layer_output_norm.bias", MK_GAUSS, 0.1f, E, 0},
    };
    for (int64_t il = 0; il < s->n_layer; il++)
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, layer[k].suffix);
            st = plan_add(p, o, name, layer[k].kind, layer[k].scale, layer[k].ne0, layer[k].ne1,
                          err);
            if (st != SW_OK) return st;
        }
    for (int i = 0; i < p->n; i++) {
        p->t[i].index = i + 1;
        p->t[i].count = p->n;
    }
    return SW_OK;
}

/* Re-open the written file and run the loader's own checks on it. */
static sw_status self_check(const char *path, sw_err *err) {
    sw_gguf *g = NULL;
    sw_model_config cfg;
    sw_status st = sw_gguf_open(path, &g, err);
    if (st == SW_OK) st = sw_model_config_load(g, &cfg, err);
    if (st == SW_OK) st = sw_model_config_check_tensors(g, &cfg, err);
    sw_gguf_free(g);
    return st;
}

static int run(const mk_opts *o) {
    sw_err err = {{0}};
    sw_status st = SW_OK;
    sw_gguf *vsrc = NULL;
    mk_plan plan = {0};
    mk_opts opt = *o;
    bool bert = opt.arch == SW_ARCH_BERT;
    const char *arch = bert                         ? "bert"
                       : opt.arch == SW_ARCH_QWEN2  ? "qwen2"
                       : opt.arch == SW_ARCH_GEMMA3 ? "gemma3"
                                                    : "llama";
    double t0 = sw_time_s();
    uint64_t bytes = 0;

    sw_gguf_writer *w = sw_gguf_writer_create();
    if (!w) {
        st = sw_err_set(&err, SW_E_NOMEM, "writer");
        goto done;
    }
    if (opt.vocab_from) {
        if ((st = sw_gguf_open(opt.vocab_from, &vsrc, &err)) != SW_OK) goto done;
        if ((st = mk_copy_vocab(w, vsrc, &opt.shape.n_vocab, &err)) != SW_OK) goto done;
    } else if ((st = bert ? mk_write_wpm_vocab(w, opt.shape.n_vocab, &err)
                          : mk_write_vocab(w, opt.shape.n_vocab, &err)) != SW_OK) {
        goto done;
    }
    st = bert ? set_bert_hparams(w, &opt, &err) : set_hparams(w, &opt, arch, &err);
    if (st != SW_OK) goto done;
    st = bert ? build_bert_plan(&plan, &opt, &err) : build_plan(&plan, &opt, vsrc, &err);
    if (st != SW_OK) goto done;
    for (int i = 0; i < plan.n; i++) {
        mk_tensor *t = &plan.t[i];
        st = sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, mk_fill, t,
                                       &err);
        if (st != SW_OK) goto done;
        bytes += (uint64_t)t->row_bytes * (uint64_t)t->ne[1];
    }
    for (int i = 0; i < plan.n; i++) plan.t[i].verbose = opt.verbose;
    if (opt.verbose)
        fprintf(stderr,
            "spillway-mkmodel: %s %s %s: %d layers, dim %lld, %lld/%lld heads, ff %lld, "
            "vocab %lld, %d tensors, %.1f MiB of weights -> %s\n",
            opt.shape.name, arch, opt.type_name, (int)opt.shape.n_layer,
            (long long)opt.shape.n_embd, (long long)opt.shape.n_head,
            (long long)opt.shape.n_head_kv, (long long)opt.shape.n_ff, (long long)opt.shape.n_vocab,
            plan.n, (double)bytes / (1024.0 * 1024.0), opt.out);
    if ((st = sw_gguf_writer_write(w, opt.out, &err)) != SW_OK) goto done;
    if ((st = self_check(opt.out, &err)) != SW_OK) {
        sw_err_wrap(&err, st, "written file fails the loader's checks");
        goto done;
    }
    if (opt.verbose)
        fprintf(stderr, "spillway-mkmodel: wrote %s in %.1f s\n", opt.out, sw_time_s() - t0);
done:
    if (st != SW_OK) fprintf(stderr, "spillway-mkmodel: %s: %s\n", sw_status_str(st), err.msg);
    sw_gguf_writer_free(w);
    sw_gguf_free(vsrc);
    for (int i = 0; i < MK_MAX_THREADS; i++)
        mk_scratch_free(&plan.scratch[i]);
    free(plan.t);
    free(plan.rope_table);
    mk_bigram_free(&plan.bigram);
    return st == SW_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    mk_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc == 1) return 0;
    if (rc != 0) return rc;
    return run(&o);
}
