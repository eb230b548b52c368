/* model_config.c — reads transformer hyperparameters from GGUF metadata (the
 * "<arch>.*" keys llama.cpp's converter writes), validates them, checks every
 * tensor the forward pass needs against them, and holds the per-tensor
 * quantization policy shared by spillway-mkmodel and spillway-quantize.
 *
 * Gemma 3's RMSNorm multiplies by (1 + w); its GGUF files already store
 * 1 + w (llama.cpp's converter adds the 1), so its norms are plain RMSNorms
 * here, like everyone else's.
 *
 * Error messages name the file, then the key or tensor at fault, so that a user
 * holding a broken GGUF can see which field to look at. */
#include "model_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound on any single dimension. Real models are far below it; the bound
 * keeps products such as n_embd * n_vocab well inside int64 and size_t. */
#define SW_CFG_MAX_DIM ((int64_t)1 << 31)

typedef struct arch_info {
    const char *name;
    sw_arch arch;
    sw_rope_mode rope_mode;
    float default_rms_eps;
    bool encoder; /* LayerNorm, learned positions, non-causal, no LM head */
} arch_info;

static const arch_info k_archs[] = {
    {"llama", SW_ARCH_LLAMA, SW_ROPE_NORM, 1e-5f, false},
    {"qwen2", SW_ARCH_QWEN2, SW_ROPE_NEOX, 1e-6f, false},
    {"bert", SW_ARCH_BERT, SW_ROPE_NORM, 0.0f, true},
    {"gemma3", SW_ARCH_GEMMA3, SW_ROPE_NEOX, 1e-6f, false},
};

const char *sw_pooling_name(sw_pooling p) {
    switch (p) {
    case SW_POOLING_UNSPECIFIED: return "unspecified";
    case SW_POOLING_NONE: return "none";
    case SW_POOLING_MEAN: return "mean";
    case SW_POOLING_CLS: return "cls";
    case SW_POOLING_LAST: return "last";
    case SW_POOLING_RANK: return "rank";
    }
    return "unknown";
}

static const char *file_name(const sw_gguf *g) {
    const char *p = sw_gguf_path(g);
    return p ? p : "<gguf>";
}

/* ---- key helpers: all take the key suffix and prefix "<arch>." ---- */

static void arch_key(char *buf, size_t cap, const char *arch, const char *suffix) {
    snprintf(buf, cap, "%s.%s", arch, suffix);
}

/* Required positive integer key. */
static sw_status get_dim(const sw_gguf *g, const char *arch, const char *suffix, int64_t *out,
                         sw_err *err) {
    char key[128];
    arch_key(key, sizeof key, arch, suffix);
    int64_t idx = sw_gguf_find_key(g, key);
    if (idx < 0)
        return sw_err_set(err, SW_E_FORMAT, "'%s': missing required key '%s'", file_name(g), key);
    int64_t v = 0;
    sw_status st = sw_gguf_kv_int(g, idx, &v, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "'%s': key '%s'", file_name(g), key);
    if (v <= 0 || v > SW_CFG_MAX_DIM)
        return sw_err_set(err, SW_E_FORMAT, "'%s': key '%s' = %lld is out of range (1..%lld)",
                          file_name(g), key, (long long)v, (long long)SW_CFG_MAX_DIM);
    *out = v;
    return SW_OK;
}

/* Optional positive integer key: *found tells whether it was there. */
static sw_status get_dim_opt(const sw_gguf *g, const char *arch, const char *suffix, int64_t *out,
                             bool *found, sw_err *err) {
    char key[128];
    arch_key(key, sizeof key, arch, suffix);
    *found = sw_gguf_find_key(g, key) >= 0;
    if (!*found) return SW_OK;
    return get_dim(g, arch, suffix, out, err);
}

/* Optional finite float key; must be > 0 when positive is set. */
static sw_status get_float_opt(const sw_gguf *g, const char *arch, const char *suffix, float *out,
                               bool positive, bool *found, sw_err *err) {
    char key[128];
    arch_key(key, sizeof key, arch, suffix);
    int64_t idx = sw_gguf_find_key(g, key);
    if (found) *found = idx >= 0;
    if (idx < 0) return SW_OK;
    double v = 0;
    sw_status st = sw_gguf_kv_float(g, idx, &v, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "'%s': key '%s'", file_name(g), key);
    if (!isfinite(v) || (positive && !(v > 0)) || fabs(v) > 3.0e38)
        return sw_err_set(err, SW_E_FORMAT, "'%s': key '%s' = %g is not a valid %svalue",
                          file_name(g), key, v, positive ? "positive " : "");
    *out = (float)v;
    return SW_OK;
}

/* ---- rope scaling ---- */

static sw_status load_rope_scaling(const sw_gguf *g, const char *arch, sw_model_config *cfg,
                                   sw_err *err) {
    char key[128];
    sw_status st;
    bool have_factor = false, found = false;
    float factor = 0;

    cfg->rope_scaling = SW_ROPE_SCALING_NONE;
    cfg->rope_scaling_factor = 1.0f;
    cfg->rope_freq_scale = 1.0f;
    cfg->rope_llama3_low_freq_factor = 1.0f;
    cfg->rope_llama3_high_freq_factor = 4.0f;
    cfg->rope_llama3_orig_ctx = 8192;

    st = get_float_opt(g, arch, "rope.scaling.factor", &factor, true, &have_factor, err);
    if (st != SW_OK) return st;
    if (!have_factor) {
        /* Converters before the rope.scaling.* keys wrote the linear factor here. */
        st = get_float_opt(g, arch, "rope.scale_linear", &factor, true, &have_factor, err);
        if (st != SW_OK) return st;
    }

    arch_key(key, sizeof key, arch, "rope.scaling.type");
    int64_t idx = sw_gguf_find_key(g, key);
    const char *type = NULL;
    if (idx >= 0) {
        size_t len = 0;
        st = sw_gguf_kv_str(g, idx, &type, &len, err);
        if (st != SW_OK) return sw_err_wrap(err, st, "'%s': key '%s'", file_name(g), key);
    } else {
        /* As llama.cpp: without a type, a factor means linear scaling. */
        type = have_factor ? "linear" : "none";
    }

    if (!strcmp(type, "none")) return SW_OK;
    if (!strcmp(type, "linear")) {
        if (have_factor && factor != 1.0f) {
            cfg->rope_scaling = SW_ROPE_SCALING_LINEAR;
            cfg->rope_scaling_factor = factor;
            cfg->rope_freq_scale = 1.0f / factor;
        }
        return SW_OK;
    }
    if (!strcmp(type, "llama3")) {
        cfg->rope_scaling = SW_ROPE_SCALING_LLAMA3;
        if (!have_factor) {
            arch_key(key, sizeof key, arch, "rope.scaling.factor");
            return sw_err_set(err, SW_E_FORMAT,
                              "'%s': rope.scaling.type is llama3 but key '%s' is missing",
                              file_name(g), key);
        }
        cfg->rope_scaling_factor = factor;
        st = get_float_opt(g, arch, "rope.scaling.low_freq_factor",
                           &cfg->rope_llama3_low_freq_factor, true, &found, err);
        if (st != SW_OK) return st;
        st = get_float_opt(g, arch, "rope.scaling.high_freq_factor",
                           &cfg->rope_llama3_high_freq_factor, true, &found, err);
        if (st != SW_OK) return st;
        st = get_dim_opt(g, arch, "rope.scaling.original_context_length",
                         &cfg->rope_llama3_orig_ctx, &found, err);
        if (st != SW_OK) return st;
        if (!(cfg->rope_llama3_high_freq_factor > cfg->rope_llama3_low_freq_factor)) {
            arch_key(key, sizeof key, arch, "rope.scaling.high_freq_factor");
            return sw_err_set(err, SW_E_FORMAT,
                              "'%s': key '%s' = %g must be greater than low_freq_factor %g",
                              file_name(g), key, (double)cfg->rope_llama3_high_freq_factor,
                              (double)cfg->rope_llama3_low_freq_factor);
        }
        return SW_OK;
    }
    return sw_err_set(err, SW_E_UNSUPPORTED,
                      "'%s': key '%s' = '%s' is not supported (supported: none, linear, llama3)",
                      file_name(g), key, type);
}

/* ---- vocabulary size ---- */

static sw_status load_vocab_size(const sw_gguf *g, const char *arch, sw_model_config *cfg,
                                 sw_err *err) {
    bool found = false;
    sw_status st = get_dim_opt(g, arch, "vocab_size", &cfg->n_vocab, &found, err);
    if (st != SW_OK || found) return st;
    const sw_gguf_tensor *emb = sw_gguf_find_tensor(g, "token_embd.weight");
    if (emb && emb->n_dims >= 2 && emb->ne[1] > 0 && emb->ne[1] <= SW_CFG_MAX_DIM) {
        cfg->n_vocab = emb->ne[1];
        return SW_OK;
    }
    int64_t idx = sw_gguf_find_key(g, "tokenizer.ggml.tokens");
    if (idx >= 0 && sw_gguf_kv_type(g, idx) == SW_GGUF_ARRAY) {
        uint64_t n = sw_gguf_kv_arr_n(g, idx);
        if (n > 0 && n <= (uint64_t)SW_CFG_MAX_DIM) {
            cfg->n_vocab = (int64_t)n;
            return SW_OK;
        }
    }
    return sw_err_set(err, SW_E_FORMAT,
                      "'%s': vocabulary size unknown: no key '%s.vocab_size', no "
                      "token_embd.weight and no tokenizer.ggml.tokens",
                      file_name(g), arch);
}

/* ---- hyperparameters ---- */

static sw_status load_dims(const sw_gguf *g, const char *arch, sw_model_config *cfg, sw_err *err) {
    sw_status st;
    bool found = false;
    char key[128];

    if ((st = get_dim(g, arch, "block_count", &cfg->n_layer, err)) != SW_OK) return st;
    if ((st = get_dim(g, arch, "embedding_length", &cfg->n_embd, err)) != SW_OK) return st;
    if ((st = get_dim(g, arch, "feed_forward_length", &cfg->n_ff, err)) != SW_OK) return st;
    if ((st = get_dim(g, arch, "context_length", &cfg->n_ctx_train, err)) != SW_OK) return st;
    if ((st = get_dim(g, arch, "attention.head_count", &cfg->n_head, err)) != SW_OK) return st;
    cfg->n_head_kv = cfg->n_head;
    st = get_dim_opt(g, arch, "attention.head_count_kv", &cfg->n_head_kv, &found, err);
    if (st != SW_OK) return st;
    if (cfg->n_head_kv > cfg->n_head || cfg->n_head % cfg->n_head_kv != 0) {
        arch_key(key, sizeof key, arch, "attention.head_count_kv");
        return sw_err_set(err, SW_E_FORMAT,
                          "'%s': key '%s' = %lld must divide attention.head_count = %lld",
                          file_name(g), key, (long long)cfg->n_head_kv, (long long)cfg->n_head);
    }

    bool have_key_len = false;
    st = get_dim_opt(g, arch, "attention.key_length", &cfg->head_dim, &have_key_len, err);
    if (st != SW_OK) return st;
    if (have_key_len) {
        int64_t vlen = 0;
        bool have_vlen = false;
        st = get_dim_opt(g, arch, "attention.value_length", &vlen, &have_vlen, err);
        if (st != SW_OK) return st;
        if (have_vlen && vlen != cfg->head_dim) {
            arch_key(key, sizeof key, arch, "attention.value_length");
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "'%s': key '%s' = %lld differs from attention.key_length = %lld "
                              "(not supported)",
                              file_name(g), key, (long long)vlen, (long long)cfg->head_dim);
        }
    } else {
        if (cfg->n_embd % cfg->n_head != 0) {
            arch_key(key, sizeof key, arch, "attention.head_count");
            return sw_err_set(err, SW_E_FORMAT,
                              "'%s': key '%s' = %lld does not divide embedding_length = %lld "
                              "(and no attention.key_length is given)",
                              file_name(g), key, (long long)cfg->n_head, (long long)cfg->n_embd);
        }
        cfg->head_dim = cfg->n_embd / cfg->n_head;
    }
    if (cfg->head_dim % 2 != 0) {
        arch_key(key, sizeof key, arch,
                 have_key_len ? "attention.key_length" : "attention.head_count");
        return sw_err_set(err, SW_E_FORMAT, "'%s': head dimension %lld (from '%s') must be even",
                          file_name(g), (long long)cfg->head_dim, key);
    }

    cfg->n_rot = cfg->head_dim;
    st = get_dim_opt(g, arch, "rope.dimension_count", &cfg->n_rot, &found, err);
    if (st != SW_OK) return st;
    if (cfg->n_rot > cfg->head_dim || cfg->n_rot % 2 != 0) {
        arch_key(key, sizeof key, arch, "rope.dimension_count");
        return sw_err_set(err, SW_E_FORMAT,
                          "'%s': key '%s' = %lld must be even and at most the head dimension %lld",
                          file_name(g), key, (long long)cfg->n_rot, (long long)cfg->head_dim);
    }
    return SW_OK;
}

/* ---- encoders (bert) ---- */

/* The keys an encoder has instead of a decoder's: LayerNorm epsilon,
 * attention.causal (false unless the file says otherwise), pooling type,
 * token-type count (from token_types.weight). */
static sw_status load_encoder(const sw_gguf *g, const char *arch, sw_model_config *cfg,
                              sw_err *err) {
    char key[128];
    bool found = false;
    sw_status st = get_float_opt(g, arch, "attention.layer_norm_epsilon", &cfg->norm_eps, true,
                                 &found, err);
    if (st != SW_OK) return st;
    if (!found) {
        arch_key(key, sizeof key, arch, "attention.layer_norm_epsilon");
        return sw_err_set(err, SW_E_FORMAT, "'%s': missing required key '%s'", file_name(g), key);
    }
    cfg->causal = false;
    arch_key(key, sizeof key, arch, "attention.causal");
    int64_t idx = sw_gguf_find_key(g, key);
    if (idx >= 0 && (st = sw_gguf_kv_bool(g, idx, &cfg->causal, err)) != SW_OK)
        return sw_err_wrap(err, st, "'%s': key '%s'", file_name(g), key);
    if (cfg->causal)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "'%s': key '%s' is true: a causal %s encoder is not supported",
                          file_name(g), key, arch);
    cfg->pooling = SW_POOLING_UNSPECIFIED;
    arch_key(key, sizeof key, arch, "pooling_type");
    idx = sw_gguf_find_key(g, key);
    if (idx >= 0) {
        int64_t v = -1;
        if ((st = sw_gguf_kv_int(g, idx, &v, err)) != SW_OK)
            return sw_err_wrap(err, st, "'%s': key '%s'", file_name(g), key);
        if (v < SW_POOLING_NONE || v > SW_POOLING_RANK)
            return sw_err_set(err, SW_E_FORMAT, "'%s': key '%s' = %lld is not a pooling type (0..4)",
                              file_name(g), key, (long long)v);
        cfg->pooling = (sw_pooling)v;
    }
    const sw_gguf_tensor *tt = sw_gguf_find_tensor(g, "token_types.weight");
    cfg->n_token_types = tt && tt->n_dims == 2 ? tt->ne[1] : 0;
    cfg->embed_only = true;
    cfg->tied_embeddings = false;
    cfg->has_qkv_bias = true;
    return SW_OK;
}

/* ---- attention scale, embedding scale, soft-capping, sliding windows ---- */

static sw_status load_attention_variants(const sw_gguf *g, const char *arch, sw_model_config *cfg,
                                         sw_err *err) {
    sw_status st;
    bool found = false;
    bool gemma3 = cfg->arch == SW_ARCH_GEMMA3;
    /* gemma_pytorch scales queries by query_pre_attn_scalar^-1/2: head_dim,
     * except the 27B (62 layers), where it is n_embd / n_head. */
    double qpas = gemma3 && cfg->n_layer == 62 ? (double)(cfg->n_embd / cfg->n_head)
                                               : (double)cfg->head_dim;
    cfg->attn_scale = (float)(1.0 / sqrt(qpas));
    st = get_float_opt(g, arch, "attention.scale", &cfg->attn_scale, true, &found, err);
    if (st != SW_OK) return st;
    cfg->embd_scale = gemma3 ? sqrtf((float)cfg->n_embd) : 1.0f;
    cfg->final_logit_softcap = 0.0f;
    st = get_float_opt(g, arch, "final_logit_softcapping", &cfg->final_logit_softcap, false,
                       &found, err);
    if (st != SW_OK) return st;
    if (cfg->final_logit_softcap < 0) {
        char key[128];
        arch_key(key, sizeof key, arch, "final_logit_softcapping");
        return sw_err_set(err, SW_E_FORMAT, "'%s': key '%s' = %g must be >= 0 (0 = none)",
                          file_name(g), key, (double)cfg->final_logit_softcap);
    }

    cfg->n_swa = 0;
    cfg->swa_period = 1;
    cfg->rope_freq_base_swa = 10000.0f;
    if (!gemma3) return SW_OK; /* llama and qwen2 files with window keys: not read */
    st = get_dim_opt(g, arch, "attention.sliding_window", &cfg->n_swa, &found, err);
    if (st != SW_OK || !found) return st;
    cfg->swa_period = 6; /* Gemma 3: five window layers, then one global */
    char key[128];
    arch_key(key, sizeof key, arch, "attention.sliding_window_pattern");
    int64_t idx = sw_gguf_find_key(g, key);
    if (idx >= 0 && sw_gguf_kv_type(g, idx) == SW_GGUF_ARRAY)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "'%s': key '%s' is a per-layer array; only a period (one integer) is "
                          "supported",
                          file_name(g), key);
    st = get_dim_opt(g, arch, "attention.sliding_window_pattern", &cfg->swa_period, &found, err);
    if (st != SW_OK) return st;
    return get_float_opt(g, arch, "rope.freq_base_swa", &cfg->rope_freq_base_swa, true, &found,
                         err);
}

static const arch_info *find_arch(const char *name) {
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (!strcmp(k_archs[i].name, name)) return &k_archs[i];
    return NULL;
}

sw_status sw_model_config_load(const sw_gguf *g, sw_model_config *cfg, sw_err *err) {
    if (!g || !cfg) return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_config_load: NULL argument");
    memset(cfg, 0, sizeof *cfg);

    int64_t idx = sw_gguf_find_key(g, "general.architecture");
    if (idx < 0)
        return sw_err_set(err, SW_E_FORMAT, "'%s': missing required key 'general.architecture'",
                          file_name(g));
    const char *arch = NULL;
    size_t len = 0;
    sw_status st = sw_gguf_kv_str(g, idx, &arch, &len, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "'%s': key 'general.architecture'", file_name(g));
    const arch_info *ai = find_arch(arch);
    if (!ai)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "'%s': architecture '%.64s' is not supported (supported: llama, qwen2, "
                          "bert, gemma3)",
                          file_name(g), arch);
    cfg->arch = ai->arch;
    cfg->rope_mode = ai->rope_mode;
    snprintf(cfg->arch_name, sizeof cfg->arch_name, "%s", ai->name);

    idx = sw_gguf_find_key(g, "general.name");
    if (idx >= 0 && sw_gguf_kv_type(g, idx) == SW_GGUF_STRING) {
        const char *name = NULL;
        if (sw_gguf_kv_str(g, idx, &name, &len, NULL) == SW_OK && name)
            snprintf(cfg->name, sizeof cfg->name, "%s", name);
    }

    if ((st = load_dims(g, arch, cfg, err)) != SW_OK) return st;

    bool found = false;
    cfg->rope_freq_base = 10000.0f;
    st = get_float_opt(g, arch, "rope.freq_base", &cfg->rope_freq_base, true, &found, err);
    if (st != SW_OK) return st;
    if ((st = load_rope_scaling(g, arch, cfg, err)) != SW_OK) return st;

    cfg->causal = true;
    cfg->pooling = SW_POOLING_UNSPECIFIED;
    if (ai->encoder) {
        if ((st = load_vocab_size(g, arch, cfg, err)) != SW_OK) return st;
        if ((st = load_attention_variants(g, arch, cfg, err)) != SW_OK) return st;
        return load_encoder(g, arch, cfg, err);
    }

    cfg->rms_eps = ai->default_rms_eps;
    st = get_float_opt(g, arch, "attention.layer_norm_rms_epsilon", &cfg->rms_eps, true, &found,
                       err);
    if (st != SW_OK) return st;
    if (!found) {
        char key[128];
        arch_key(key, sizeof key, arch, "attention.layer_norm_rms_epsilon");
        return sw_err_set(err, SW_E_FORMAT, "'%s': missing required key '%s'", file_name(g), key);
    }

    if ((st = load_vocab_size(g, arch, cfg, err)) != SW_OK) return st;
    if ((st = load_attention_variants(g, arch, cfg, err)) != SW_OK) return st;

    /* Optional tensors decide variants of the forward pass. qwen2 always has
     * Q/K/V biases (check_tensors insists on them); llama may carry them. */
    cfg->tied_embeddings = sw_gguf_find_tensor(g, "output.weight") == NULL;
    cfg->has_qkv_bias =
        cfg->arch == SW_ARCH_QWEN2 || sw_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    cfg->has_rope_freqs = sw_gguf_find_tensor(g, "rope_freqs.weight") != NULL;
    cfg->has_qk_norm = cfg->has_post_norms = cfg->arch == SW_ARCH_GEMMA3;
    return SW_OK;
}

bool sw_model_config_layer_is_swa(const sw_model_config *cfg, int64_t il) {
    return cfg->n_swa > 0 && il % cfg->swa_period < cfg->swa_period - 1;
}

/* ---- tensor check ---- */

static void fmt_shape(char *buf, size_t cap, uint32_t n_dims, const int64_t *ne) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, cap - off, "[");
    for (uint32_t i = 0; i < n_dims && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%lld", i ? ", " : "", (long long)ne[i]);
    if (off < cap) snprintf(buf + off, cap - off, "]");
}

/* One expected tensor: name, 1-2 dims, whether it must be f32 (norms, biases,
 * rope factors), whether it may be absent. */
static sw_status check_one(const sw_gguf *g, const char *name, int64_t ne0, int64_t ne1,
                           bool want_f32, sw_err *err) {
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, name);
    if (!t) return sw_err_set(err, SW_E_NOT_FOUND, "'%s': missing tensor '%s'", file_name(g), name);
    int64_t want[SW_GGUF_MAX_DIMS] = {ne0, ne1 > 0 ? ne1 : 1, 1, 1};
    uint32_t want_dims = ne1 > 0 ? 2 : 1;
    bool ok = true;
    for (int i = 0; i < SW_GGUF_MAX_DIMS; i++) {
        int64_t have = i < (int)t->n_dims ? t->ne[i] : 1;
        if (have != want[i]) ok = false;
    }
    if (!ok) {
        char ws[96], hs[96];
        fmt_shape(ws, sizeof ws, want_dims, want);
        fmt_shape(hs, sizeof hs, t->n_dims, t->ne);
        return sw_err_set(err, SW_E_FORMAT, "'%s': %s: expected shape %s, got %s", file_name(g),
                          name, ws, hs);
    }
    if (want_f32) {
        if (t->type != SW_TYPE_F32)
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "'%s': %s: type %s is not supported (must be f32)", file_name(g),
                              name, sw_type_name(t->type));
    } else {
        const sw_type_traits *tr = sw_type_get((uint32_t)t->type);
        if (!tr || !tr->can_dequantize)
            return sw_err_set(err, SW_E_UNSUPPORTED, "'%s': %s: type %s is not supported",
                              file_name(g), name, sw_type_name(t->type));
    }
    return SW_OK;
}

/* bert: token, position and (optional) token-type embeddings with a
 * LayerNorm; per layer q/k/v/output projections with biases, a LayerNorm
 * after attention, the GELU FFN (up, down, with biases), a LayerNorm after it. */
static sw_status check_encoder_tensors(const sw_gguf *g, const sw_model_config *cfg,
                                       sw_err *err) {
    const int64_t E = cfg->n_embd, F = cfg->n_ff;
    const int64_t q_dim = cfg->n_head * cfg->head_dim, kv_dim = cfg->n_head_kv * cfg->head_dim;
    sw_status st;
    if ((st = check_one(g, "token_embd.weight", E, cfg->n_vocab, false, err)) != SW_OK ||
        (st = check_one(g, "position_embd.weight", E, cfg->n_ctx_train, false, err)) != SW_OK ||
        (st = check_one(g, "token_embd_norm.weight", E, 0, true, err)) != SW_OK ||
        (st = check_one(g, "token_embd_norm.bias", E, 0, true, err)) != SW_OK)
        return st;
    if (cfg->n_token_types > 0 &&
        (st = check_one(g, "token_types.weight", E, cfg->n_token_types, false, err)) != SW_OK)
        return st;
    struct {
        const char *suffix;
        int64_t ne0, ne1;
        bool f32;
    } const layer[] = {
        {"attn_q.weight", E, q_dim, false},      {"attn_q.bias", q_dim, 0, true},
        {"attn_k.weight", E, kv_dim, false},     {"attn_k.bias", kv_dim, 0, true},
        {"attn_v.weight", E, kv_dim, false},     {"attn_v.bias", kv_dim, 0, true},
        {"attn_output.weight", q_dim, E, false}, {"attn_output.bias", E, 0, true},
        {"attn_output_norm.weight", E, 0, true}, {"attn_output_norm.bias", E, 0, true},
        {"ffn_up.weight", E, F, false},          {"ffn_up.bias", F, 0, true},
        {"ffn_down.weight", F, E, false},        {"ffn_down.bias", E, 0, true},
        {"layer_output_norm.weight", E, 0, true}, {"layer_output_norm.bias", E, 0, true},
    };
    char name[96];
    for (int64_t il = 0; il < cfg->n_layer; il++)
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, layer[k].suffix);
            st = check_one(g, name, layer[k].ne0, layer[k].ne1, layer[k].f32, err);
            if (st != SW_OK) return st;
        }
    return SW_OK;
}

sw_status sw_model_config_check_tensors(const sw_gguf *g, const sw_model_config *cfg, sw_err *err) {
    if (!g || !cfg)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_config_check_tensors: NULL argument");
    if (sw_gguf_n_tensors(g) == 0)
        return sw_err_set(err, SW_E_FORMAT, "'%s' has no weights (vocab-only GGUF?)", file_name(g));
    if (cfg->arch == SW_ARCH_BERT) return check_encoder_tensors(g, cfg, err);

    const int64_t E = cfg->n_embd, V = cfg->n_vocab, F = cfg->n_ff;
    const int64_t q_dim = cfg->n_head * cfg->head_dim, kv_dim = cfg->n_head_kv * cfg->head_dim;
    sw_status st;

    if ((st = check_one(g, "token_embd.weight", E, V, false, err)) != SW_OK) return st;
    if ((st = check_one(g, "output_norm.weight", E, 0, true, err)) != SW_OK) return st;
    if (!cfg->tied_embeddings && (st = check_one(g, "output.weight", E, V, false, err)) != SW_OK)
        return st;
    if (cfg->has_rope_freqs &&
        (st = check_one(g, "rope_freqs.weight", cfg->n_rot / 2, 0, true, err)) != SW_OK)
        return st;

    /* Per-layer tensors: name suffix, shape, f32-only, and whether the config
     * asks for the group (every layer has the first nine). */
    const int64_t D = cfg->head_dim;
    struct {
        const char *suffix;
        int64_t ne0, ne1;
        bool f32, wanted;
    } const layer[] = {
        {"attn_norm.weight", E, 0, true, true},
        {"attn_q.weight", E, q_dim, false, true},
        {"attn_k.weight", E, kv_dim, false, true},
        {"attn_v.weight", E, kv_dim, false, true},
        {"attn_output.weight", q_dim, E, false, true},
        {"ffn_norm.weight", E, 0, true, true},
        {"ffn_gate.weight", E, F, false, true},
        {"ffn_up.weight", E, F, false, true},
        {"ffn_down.weight", F, E, false, true},
        {"attn_q.bias", q_dim, 0, true, cfg->has_qkv_bias},
        {"attn_k.bias", kv_dim, 0, true, cfg->has_qkv_bias},
        {"attn_v.bias", kv_dim, 0, true, cfg->has_qkv_bias},
        {"attn_q_norm.weight", D, 0, true, cfg->has_qk_norm},
        {"attn_k_norm.weight", D, 0, true, cfg->has_qk_norm},
        {"post_attention_norm.weight", E, 0, true, cfg->has_post_norms},
        {"post_ffw_norm.weight", E, 0, true, cfg->has_post_norms},
    };
    char name[96];
    for (int64_t il = 0; il < cfg->n_layer; il++) {
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            if (!layer[k].wanted) continue;
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)il, layer[k].suffix);
            st = check_one(g, name, layer[k].ne0, layer[k].ne1, layer[k].f32, err);
            if (st != SW_OK) return st;
        }
    }
    return SW_OK;
}

/* Meta's llama3 rope scaling (the reference implementation's
 * apply_scaling): with wavelen = 2*pi / freq_i and
 *   lo = orig_ctx / low_freq_factor, hi = orig_ctx / high_freq_factor,
 * frequencies with wavelen < hi are kept, those with wavelen > lo are divided by
 * the scaling factor, and those in between are blended:
 *   smooth = (orig_ctx / wavelen - low) / (high - low)
 *   new = (1 - smooth) * freq / factor + smooth * freq.
 * ggml divides theta by a per-dimension factor, so we return freq / new. */
void sw_model_config_llama3_freq_factors(const sw_model_config *cfg, float *out) {
    const int64_t n = cfg->n_rot / 2;
    if (cfg->rope_scaling != SW_ROPE_SCALING_LLAMA3) {
        for (int64_t i = 0; i < n; i++)
            out[i] = 1.0f;
        return;
    }
    const double factor = cfg->rope_scaling_factor;
    const double low = cfg->rope_llama3_low_freq_factor, high = cfg->rope_llama3_high_freq_factor;
    const double orig = (double)cfg->rope_llama3_orig_ctx;
    const double lo_wavelen = orig / low, hi_wavelen = orig / high;
    const double two_pi = 6.283185307179586476925286766559;
    for (int64_t i = 0; i < n; i++) {
        double freq = pow((double)cfg->rope_freq_base, -(double)(2 * i) / (double)cfg->n_rot);
        double wavelen = two_pi / freq;
        double r;
        if (wavelen < hi_wavelen) {
            r = 1.0;
        } else if (wavelen > lo_wavelen) {
            r = factor;
        } else {
            double smooth = (orig / wavelen - low) / (high - low);
            r = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        out[i] = (float)r;
    }
}

/* ---- quantization policy ---- */

sw_type sw_model_quant_fallback(sw_type want, int64_t ne0) {
    const sw_type_traits *tr = sw_type_get((uint32_t)want);
    if (!tr || tr->blck_size <= 1 || (ne0 > 0 && ne0 % tr->blck_size == 0)) return want;
    if (tr->blck_size == SW_QK_K && ne0 > 0 && ne0 % SW_QK8_0 == 0) {
        switch (want) {
        case SW_TYPE_Q2_K:
        case SW_TYPE_Q3_K: return SW_TYPE_Q4_0;
        case SW_TYPE_Q4_K: return SW_TYPE_Q5_0;
        case SW_TYPE_Q5_K: return SW_TYPE_Q5_1;
        default: return SW_TYPE_Q8_0;
        }
    }
    return SW_TYPE_F16;
}

/* Layer index of "blk.N.<...>", or -1. */
static int64_t layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end = NULL;
    long long v = strtoll(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || v < 0) return -1;
    return (int64_t)v;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* llama.cpp's rule for which layers get more bits in the *_M mixtures: the
 * first and last eighth of the stack, and every third layer in between. */
static bool use_more_bits(int64_t il, int64_t n_layer) {
    return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

sw_type sw_model_quant_choose(const char *name, int64_t ne0, sw_type base, bool q4_k_m,
                              int64_t n_layer, bool tied, sw_type *wanted) {
    sw_type t = base;
    if (q4_k_m) {
        t = SW_TYPE_Q4_K;
        int64_t il = layer_of(name);
        if (!strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"))) {
            t = SW_TYPE_Q6_K;
        } else if (il >= 0 && n_layer > 0 &&
                   (ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")) &&
                   use_more_bits(il, n_layer)) {
            t = SW_TYPE_Q6_K;
        }
    }
    if (wanted) *wanted = t;
    return sw_model_quant_fallback(t, ne0);
}

uint32_t sw_model_file_type(sw_type base, bool q4_k_m) {
    if (q4_k_m) return 15; /* LLAMA_FTYPE_MOSTLY_Q4_K_M */
    switch (base) {
    case SW_TYPE_F32:
        return 0;
    case SW_TYPE_F16:
        return 1;
    case SW_TYPE_Q4_0:
        return 2;
    case SW_TYPE_Q4_1:
        return 3;
    case SW_TYPE_Q8_0:
        return 7;
    case SW_TYPE_Q5_0:
        return 8;
    case SW_TYPE_Q5_1:
        return 9;
    case SW_TYPE_Q2_K:
        return 10;
    case SW_TYPE_Q3_K:
        return 11; /* MOSTLY_Q3_K_S: q3_K throughout */
    case SW_TYPE_Q4_K:
        return 14; /* MOSTLY_Q4_K_S */
    case SW_TYPE_Q5_K:
        return 16; /* MOSTLY_Q5_K_S */
    case SW_TYPE_Q6_K:
        return 18;
    case SW_TYPE_BF16:
        return 32;
    default:
        return 0;
    }
}
