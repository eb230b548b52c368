/* model.c — loading a model (llama, qwen2, gemma3; bert): config and tensor checks, tokenizer,
 * backend buffers, and the upload of every weight. The weights end up in
 * per-group buffers (group 0 = embeddings, final norm, output, rope factors;
 * group 1 + i = layer i) so that no single device allocation has to hold the
 * whole model (Vulkan caps one storage buffer binding, often at 4 GiB). */
#define _POSIX_C_SOURCE 200809L
#include "model_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant.h"

/* How a weight is used, which decides the checks it gets. */
typedef enum {
    W_MATMUL,  /* matmul operand: the backend must support its type */
    W_ROWS,    /* get_rows table: any type the reference dequantizer handles */
    W_VECTOR,  /* norm weight / bias / rope factors: always F32 on the device */
} weight_use;

typedef struct weight_spec {
    char name[96];
    sw_tensor *dst;              /* where the descriptor goes (borrowed) */
    int64_t group;               /* buffer index */
    weight_use use;
    const sw_gguf_tensor *src;   /* borrowed from the gguf; NULL for generated ones */
    const float *gen;            /* generated F32 data (rope factors), else NULL */
    int64_t gen_n;
    /* A concatenation (concat_weights): src is parts[0]; the rows of parts
     * 0..n_parts-1 go one after the other into dst. */
    const sw_gguf_tensor *parts[3];
    int n_parts;
    bool absorbed;               /* a part of another spec's concatenation: skip */
} weight_spec;

typedef struct spec_list {
    weight_spec *v;
    int64_t n, cap;
} spec_list;

static sw_status spec_add(spec_list *l, const sw_gguf *g, const char *name, sw_tensor *dst,
                          int64_t group, weight_use use, bool required, sw_err *err) {
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, name);
    if (!t) {
        if (!required) return SW_OK;
        return sw_err_set(err, SW_E_FORMAT, "%s: tensor '%s' is missing", sw_gguf_path(g), name);
    }
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        weight_spec *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return sw_err_set(err, SW_E_NOMEM, "out of memory listing tensors");
        l->v = v;
        l->cap = cap;
    }
    weight_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->dst = dst;
    s->group = group;
    s->use = use;
    s->src = t;
    return SW_OK;
}

/* bert's tensors (checked by sw_model_config_check_tensors already). */
static sw_status list_encoder_weights(sw_model *m, spec_list *l, sw_err *err) {
    const sw_gguf *g = m->gguf;
    sw_weights *w = &m->w;
    bool types = m->cfg.n_token_types > 0;
    sw_status st;
    if ((st = spec_add(l, g, "token_embd.weight", &w->token_embd, 0, W_ROWS, true, err)) ||
        (st = spec_add(l, g, "position_embd.weight", &w->pos_embd, 0, W_ROWS, true, err)) ||
        (st = spec_add(l, g, "token_types.weight", &w->token_types, 0, W_ROWS, types, err)) ||
        (st = spec_add(l, g, "token_embd_norm.weight", &w->embd_norm, 0, W_VECTOR, true, err)) ||
        (st = spec_add(l, g, "token_embd_norm.bias", &w->embd_norm_b, 0, W_VECTOR, true, err)))
        return st;
    for (int64_t i = 0; i < m->cfg.n_layer; i++) {
        sw_layer_weights *lw = &w->layers[i];
        const struct {
            const char *suffix;
            sw_tensor *dst;
            weight_use use;
        } t[] = {
            {"attn_q.weight", &lw->wq, W_MATMUL},
            {"attn_q.bias", &lw->bq, W_VECTOR},
            {"attn_k.weight", &lw->wk, W_MATMUL},
            {"attn_k.bias", &lw->bk, W_VECTOR},
            {"attn_v.weight", &lw->wv, W_MATMUL},
            {"attn_v.bias", &lw->bv, W_VECTOR},
            {"attn_output.weight", &lw->wo, W_MATMUL},
            {"attn_output.bias", &lw->bo, W_VECTOR},
            {"attn_output_norm.weight", &lw->attn_out_norm, W_VECTOR},
            {"attn_output_norm.bias", &lw->attn_out_norm_b, W_VECTOR},
            {"ffn_up.weight", &lw->w_up, W_MATMUL},
            {"ffn_up.bias", &lw->b_up, W_VECTOR},
            {"ffn_down.weight", &lw->w_down, W_MATMUL},
            {"ffn_down.bias", &lw->b_down, W_VECTOR},
            {"layer_output_norm.weight", &lw->out_norm, W_VECTOR},
            {"layer_output_norm.bias", &lw->out_norm_b, W_VECTOR},
        };
        char name[96];
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            snprintf(name, sizeof name, "blk.%lld.%s", (long long)i, t[k].suffix);
            if ((st = spec_add(l, g, name, t[k].dst, 1 + i, t[k].use, true, err)) != SW_OK)
                return st;
        }
    }
    return SW_OK;
}

/* List every tensor the forward pass reads, with its destination descriptor. */
static sw_status list_weights(sw_model *m, spec_list *l, sw_err *err) {
    if (m->cfg.arch == SW_ARCH_BERT) return list_encoder_weights(m, l, err);
    const sw_gguf *g = m->gguf;
    const sw_model_config *c = &m->cfg;
    sw_weights *w = &m->w;
    sw_status st;
    char name[96];
#define ADD(nm, dst, grp, use, req)                                                  \
    do {                                                                             \
        if ((st = spec_add(l, g, (nm), (dst), (grp), (use), (req), err)) != SW_OK)   \
            return st;                                                               \
    } while (0)
    ADD("token_embd.weight", &w->token_embd, 0, c->tied_embeddings ? W_MATMUL : W_ROWS, true);
    ADD("output_norm.weight", &w->output_norm, 0, W_VECTOR, true);
    if (!c->tied_embeddings) ADD("output.weight", &w->output, 0, W_MATMUL, true);
    if (c->has_rope_freqs) ADD("rope_freqs.weight", &w->rope_freqs, 0, W_VECTOR, true);
    for (int64_t i = 0; i < c->n_layer; i++) {
        sw_layer_weights *lw = &w->layers[i];
        int64_t grp = 1 + i;
#define LADD(suffix, dst, use, req)                                          \
    do {                                                                     \
        snprintf(name, sizeof name, "blk.%lld.%s", (long long)i, (suffix)); \
        ADD(name, (dst), grp, (use), (req));                                 \
    } while (0)
        LADD("attn_norm.weight", &lw->attn_norm, W_VECTOR, true);
        LADD("attn_q.weight", &lw->wq, W_MATMUL, true);
        LADD("attn_k.weight", &lw->wk, W_MATMUL, true);
        LADD("attn_v.weight", &lw->wv, W_MATMUL, true);
        LADD("attn_q.bias", &lw->bq, W_VECTOR, c->has_qkv_bias);
        LADD("attn_k.bias", &lw->bk, W_VECTOR, c->has_qkv_bias);
        LADD("attn_v.bias", &lw->bv, W_VECTOR, c->has_qkv_bias);
        LADD("attn_output.weight", &lw->wo, W_MATMUL, true);
        LADD("ffn_norm.weight", &lw->ffn_norm, W_VECTOR, true);
        LADD("ffn_gate.weight", &lw->w_gate, W_MATMUL, true);
        LADD("ffn_up.weight", &lw->w_up, W_MATMUL, true);
        LADD("ffn_down.weight", &lw->w_down, W_MATMUL, true);
        /* loaded only where the architecture has them (the forward pass
         * applies what is loaded) */
        if (c->has_qk_norm) {
            LADD("attn_q_norm.weight", &lw->q_norm, W_VECTOR, true);
            LADD("attn_k_norm.weight", &lw->k_norm, W_VECTOR, true);
        }
        if (c->has_post_norms) {
            LADD("post_attention_norm.weight", &lw->post_attn_norm, W_VECTOR, true);
            LADD("post_ffw_norm.weight", &lw->post_ffn_norm, W_VECTOR, true);
        }
#undef LADD
    }
#undef ADD
    return SW_OK;
}

/* ---- concatenation at load ---- */

static weight_spec *find_spec(spec_list *l, const sw_tensor *dst) {
    for (int64_t i = 0; i < l->n; i++)
        if (l->v[i].dst == dst && !l->v[i].absorbed) return &l->v[i];
    return NULL;
}

/* Make the specs of parts[0..n) one spec into *into when they are all there,
 * of one type and one row length (weights; vectors are converted to F32
 * anyway); else leave them alone. */
static bool can_concat(spec_list *l, sw_tensor *const *parts, int n, weight_spec **s) {
    for (int i = 0; i < n; i++) {
        s[i] = find_spec(l, parts[i]);
        if (!s[i] || s[i]->gen || s[i]->src->n_dims > 2) return false;
        if (i > 0 && s[i]->use != W_VECTOR &&
            (s[i]->src->type != s[0]->src->type || s[i]->src->ne[0] != s[0]->src->ne[0]))
            return false;
    }
    return true;
}

static void concat_specs(spec_list *l, sw_tensor *const *parts, int n, sw_tensor *into,
                         const char *name) {
    weight_spec *s[3];
    if (!can_concat(l, parts, n, s)) return;
    for (int i = 0; i < n; i++) {
        s[0]->parts[i] = s[i]->src;
        if (i > 0) s[i]->absorbed = true;
    }
    s[0]->n_parts = n;
    s[0]->dst = into;
    snprintf(s[0]->name, sizeof s[0]->name, "%s", name);
}

/* q/k/v (and their biases) and gate/up of every layer, concatenated. */
static void concat_weights(sw_model *m, spec_list *l) {
    char name[96];
    for (int64_t i = 0; i < m->cfg.n_layer; i++) {
        sw_layer_weights *w = &m->w.layers[i];
        sw_tensor *qkv[3] = {&w->wq, &w->wk, &w->wv}, *bqkv[3] = {&w->bq, &w->bk, &w->bv};
        sw_tensor *gu[2] = {&w->w_gate, &w->w_up};
        /* the biases go with the weights: all three or none (qwen2, bert: all) */
        weight_spec *tmp[3];
        const bool biases = can_concat(l, bqkv, 3, tmp);
        if (biases || !(find_spec(l, &w->bq) || find_spec(l, &w->bk) || find_spec(l, &w->bv))) {
            snprintf(name, sizeof name, "blk.%lld.attn_qkv (attn_q, attn_k, attn_v)",
                     (long long)i);
            concat_specs(l, qkv, 3, &w->wqkv, name);
            if (biases && find_spec(l, &w->wqkv)) {
                snprintf(name, sizeof name, "blk.%lld.attn_qkv.bias", (long long)i);
                concat_specs(l, bqkv, 3, &w->bqkv, name);
            }
        }
        snprintf(name, sizeof name, "blk.%lld.ffn_gate_up (ffn_gate, ffn_up)", (long long)i);
        concat_specs(l, gu, 2, &w->w_gate_up, name);
    }
}

/* Device type of a weight: vectors are always F32 (the ops take F32 norm
 * weights and biases); others keep their file type. */
static sw_type spec_type(const weight_spec *s) {
    return (s->use == W_VECTOR || s->gen) ? SW_TYPE_F32 : s->src->type;
}

static sw_status check_spec(sw_model *m, const weight_spec *s, sw_err *err) {
    const char *path = sw_gguf_path(m->gguf);
    if (s->gen) return SW_OK;
    const sw_type_traits *tr = sw_type_get(s->src->type);
    const char *tname = sw_type_name(s->src->type);
    switch (s->use) {
    case W_MATMUL:
        if (s->src->n_dims > 2)
            return sw_err_set(err, SW_E_FORMAT, "%s: tensor '%s' has %u dims, expected 2", path,
                              s->name, s->src->n_dims);
        if (!sw_be_supports_type(m->be, s->src->type))
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "%s: tensor '%s' has type %s, which the %s backend cannot multiply",
                              path, s->name, tname, sw_backend_name(m->be));
        break;
    case W_ROWS:
        if (!tr || !tr->can_dequantize)
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "%s: tensor '%s' has type %s, which cannot be dequantized", path,
                              s->name, tname);
        break;
    case W_VECTOR:
        if (s->src->n_dims != 1)
            return sw_err_set(err, SW_E_FORMAT, "%s: tensor '%s' has %u dims, expected 1", path,
                              s->name, s->src->n_dims);
        if (s->src->type != SW_TYPE_F32 && (!tr || !tr->can_dequantize))
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "%s: tensor '%s' has type %s, which cannot be converted to f32",
                              path, s->name, tname);
        break;
    }
    return SW_OK;
}

/* Assign each spec its descriptor (buffer filled in later) and return the
 * byte size of each group. */
/* Rows of a tensor (of all its parts when it is a concatenation). */
static int64_t spec_rows(const weight_spec *s) {
    const sw_gguf_tensor *const *p = s->n_parts ? s->parts : &s->src;
    int64_t rows = 0;
    for (int i = 0; i < SW_MAX(s->n_parts, 1); i++) rows += p[i]->ne[1] * p[i]->ne[2] * p[i]->ne[3];
    return rows;
}

static void layout_specs(sw_model *m, spec_list *l, size_t *group_size) {
    for (int64_t i = 0; i < l->n; i++) {
        weight_spec *s = &l->v[i];
        if (s->absorbed) continue;
        int64_t ne0, ne1;
        if (s->gen) {
            ne0 = s->gen_n;
            ne1 = 1;
        } else if (s->use == W_VECTOR && s->n_parts) {
            ne0 = 0; /* vectors: the parts' lengths add up */
            for (int k = 0; k < s->n_parts; k++) ne0 += s->parts[k]->ne[0];
            ne1 = 1;
        } else {
            ne0 = s->src->ne[0];
            ne1 = spec_rows(s);
        }
        size_t off = sw_align_up(group_size[s->group], SW_TENSOR_ALIGN);
        *s->dst = sw_tensor_make(NULL, off, spec_type(s), ne0, ne1, 1, 1);
        group_size[s->group] = off + sw_tensor_nbytes(s->dst);
        m->weight_bytes += sw_tensor_nbytes(s->dst);
        m->n_params += (uint64_t)(ne0 * ne1);
    }
}

static void progress_draw(uint64_t done, uint64_t total) {
    int pct = total ? (int)(done * 100 / total) : 100;
    int bars = pct / 4;
    char bar[26];
    for (int i = 0; i < 25; i++) bar[i] = i < bars ? '#' : '.';
    bar[25] = '\0';
    fprintf(stderr, "\rloading weights [%s] %3d%% (%.1f / %.1f MiB)", bar, pct,
            (double)done / (1 << 20), (double)total / (1 << 20));
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

/* A concatenation: the parts' bytes (vectors: converted to F32) one after the
 * other on the host, then one upload (the backend may repack the whole). */
static sw_status upload_concat(sw_model *m, const weight_spec *s, sw_err *err) {
    size_t n = sw_tensor_nbytes(s->dst), off = 0;
    uint8_t *tmp = malloc(n);
    if (!tmp) return sw_err_set(err, SW_E_NOMEM, "out of memory concatenating '%s'", s->name);
    sw_status st = SW_OK;
    for (int i = 0; i < s->n_parts && st == SW_OK; i++) {
        const sw_gguf_tensor *p = s->parts[i];
        if (s->use != W_VECTOR) {
            size_t pn = sw_row_size(p->type, p->ne[0]) * (size_t)(p->ne[1] * p->ne[2] * p->ne[3]);
            memcpy(tmp + off, p->data, pn);
            off += pn;
        } else {
            st = p->type == SW_TYPE_F32
                     ? (memcpy(tmp + off, p->data, (size_t)p->ne[0] * sizeof(float)), SW_OK)
                     : sw_dequantize_row(p->type, p->data, (float *)(tmp + off), p->ne[0], err);
            off += (size_t)p->ne[0] * sizeof(float);
        }
    }
    if (st == SW_OK) st = sw_be_upload_weight(m->be, s->dst, tmp, err);
    free(tmp);
    return st;
}

static sw_status upload_spec(sw_model *m, const weight_spec *s, sw_err *err) {
    sw_status st;
    if (s->gen) return sw_be_upload_weight(m->be, s->dst, s->gen, err);
    if (s->n_parts) {
        if ((st = upload_concat(m, s, err)) != SW_OK)
            return sw_err_wrap(err, st, "uploading tensor '%s'", s->name);
        return SW_OK;
    }
    if (spec_type(s) == s->src->type) {
        st = sw_be_upload_weight(m->be, s->dst, s->src->data, err);
    } else {
        /* A vector stored as f16/bf16/...: convert once on the host. */
        float *tmp = malloc((size_t)s->src->ne[0] * sizeof *tmp);
        if (!tmp) return sw_err_set(err, SW_E_NOMEM, "out of memory converting '%s'", s->name);
        st = sw_dequantize_row(s->src->type, s->src->data, tmp, s->src->ne[0], err);
        if (st == SW_OK) st = sw_be_upload_weight(m->be, s->dst, tmp, err);
        free(tmp);
    }
    if (st != SW_OK) return sw_err_wrap(err, st, "uploading tensor '%s'", s->name);
    return SW_OK;
}

static sw_status upload_weights(sw_model *m, spec_list *l, bool progress, sw_err *err) {
    size_t *group_size = calloc((size_t)m->n_bufs, sizeof *group_size);
    if (!group_size) return sw_err_set(err, SW_E_NOMEM, "out of memory sizing weights");
    layout_specs(m, l, group_size);
    sw_status st = SW_OK;
    for (int64_t gi = 0; gi < m->n_bufs && st == SW_OK; gi++) {
        st = sw_be_buf_alloc(m->be, SW_MAX(group_size[gi], (size_t)SW_TENSOR_ALIGN),
                             SW_BUF_WEIGHTS, &m->bufs[gi], err);
        if (st != SW_OK)
            sw_err_wrap(err, st, "allocating %zu bytes of weights (group %lld)", group_size[gi],
                        (long long)gi);
    }
    free(group_size);
    if (st != SW_OK) return st;

    bool bar = progress && isatty(STDERR_FILENO);
    uint64_t done = 0;
    double last = 0;
    for (int64_t i = 0; i < l->n; i++) {
        weight_spec *s = &l->v[i];
        if (s->absorbed) continue;
        s->dst->buf = m->bufs[s->group];
        if ((st = upload_spec(m, s, err)) != SW_OK) return st;
        done += sw_tensor_nbytes(s->dst);
        double now = sw_time_s();
        if (bar && (now - last > 0.1 || i + 1 == l->n)) {
            progress_draw(done, m->weight_bytes);
            last = now;
        }
    }
    return SW_OK;
}

/* Llama3-style rope scaling without a rope_freqs tensor: compute the factors
 * the way ggml does and upload them like a weight. */
static sw_status add_llama3_factors(sw_model *m, spec_list *l, float **factors, sw_err *err) {
    int64_t n = m->cfg.n_rot / 2;
    *factors = malloc((size_t)SW_MAX(n, 1) * sizeof **factors);
    if (!*factors) return sw_err_set(err, SW_E_NOMEM, "out of memory for rope factors");
    sw_model_config_llama3_freq_factors(&m->cfg, *factors);
    if (l->n == l->cap) {
        weight_spec *v = realloc(l->v, (size_t)(l->cap + 1) * sizeof *v);
        if (!v) return sw_err_set(err, SW_E_NOMEM, "out of memory listing tensors");
        l->v = v;
        l->cap++;
    }
    weight_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "rope_freqs (llama3, computed)");
    s->dst = &m->w.rope_freqs;
    s->group = 0;
    s->use = W_VECTOR;
    s->gen = *factors;
    s->gen_n = n;
    return SW_OK;
}

sw_status sw_model_load(const char *path, sw_backend *be, const sw_model_params *params,
                        sw_model **out, sw_err *err) {
    *out = NULL;
    if (!path || !be) return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_load: NULL path or backend");
    double t0 = sw_time_s();
    sw_model *m = calloc(1, sizeof *m);
    if (!m) return sw_err_set(err, SW_E_NOMEM, "out of memory loading %s", path);
    m->be = be;
    spec_list l = {0};
    float *factors = NULL;
    sw_status st = sw_gguf_open(path, &m->gguf, err);
    if (st != SW_OK) goto fail;
    if (sw_gguf_n_tensors(m->gguf) == 0) {
        st = sw_err_set(err, SW_E_FORMAT,
                        "%s: file has no weights (0 tensors; a vocab-only GGUF?)", path);
        goto fail;
    }
    if ((st = sw_model_config_load(m->gguf, &m->cfg, err)) != SW_OK) goto fail;
    if ((st = sw_model_config_check_tensors(m->gguf, &m->cfg, err)) != SW_OK) goto fail;
    if (m->cfg.arch == SW_ARCH_BERT && (st = sw_be_check_encoder_ops(be, err)) != SW_OK) {
        sw_err_wrap(err, st, "%s", path);
        goto fail;
    }
    if ((st = sw_tokenizer_create(m->gguf, &m->tok, err)) != SW_OK) {
        sw_err_wrap(err, st, "%s: tokenizer", path);
        goto fail;
    }
    if (sw_tokenizer_n_vocab(m->tok) > m->cfg.n_vocab) {
        st = sw_err_set(err, SW_E_FORMAT, "%s: tokenizer has %d tokens but token_embd only %lld rows",
                        path, sw_tokenizer_n_vocab(m->tok), (long long)m->cfg.n_vocab);
        goto fail;
    }

    m->w.layers = calloc((size_t)m->cfg.n_layer, sizeof *m->w.layers);
    m->n_bufs = 1 + m->cfg.n_layer;
    m->bufs = calloc((size_t)m->n_bufs, sizeof *m->bufs);
    if (!m->w.layers || !m->bufs) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    if ((st = list_weights(m, &l, err)) != SW_OK) goto fail;
    if (m->cfg.rope_scaling == SW_ROPE_SCALING_LLAMA3 && !m->cfg.has_rope_freqs &&
        (st = add_llama3_factors(m, &l, &factors, err)) != SW_OK)
        goto fail;
    for (int64_t i = 0; i < l.n; i++)
        if ((st = check_spec(m, &l.v[i], err)) != SW_OK) goto fail;
    if (!(params && params->no_concat)) concat_weights(m, &l);
    if ((st = upload_weights(m, &l, params && params->progress, err)) != SW_OK) goto fail;
    if (m->cfg.tied_embeddings) m->w.output = m->w.token_embd;

    sw_log(SW_LOG_INFO, "model %s: %s, %lld layers, n_embd %lld, %lld heads (%lld kv), vocab %lld, "
           "%.1fM params, %.1f MiB of weights on %s, loaded in %.2f s",
           path, m->cfg.arch_name, (long long)m->cfg.n_layer, (long long)m->cfg.n_embd,
           (long long)m->cfg.n_head, (long long)m->cfg.n_head_kv, (long long)m->cfg.n_vocab,
           (double)m->n_params / 1e6, (double)m->weight_bytes / (1 << 20), sw_backend_name(be),
           sw_time_s() - t0);
    free(l.v);
    free(factors);
    *out = m;
    return SW_OK;
fail:
    free(l.v);
    free(factors);
    sw_model_free(m);
    return st;
}

void sw_model_free(sw_model *m) {
    if (!m) return;
    sw_forward_state_free(m);
    for (int64_t i = 0; m->bufs && i < m->n_bufs; i++)
        if (m->bufs[i]) sw_be_buf_free(m->be, m->bufs[i]);
    free(m->bufs);
    free(m->w.layers);
    sw_tokenizer_free(m->tok);
    sw_gguf_free(m->gguf);
    free(m);
}

const sw_model_config *sw_model_config_get(const sw_model *m) { return &m->cfg; }
const sw_tokenizer *sw_model_tokenizer(const sw_model *m) { return m->tok; }
const sw_gguf *sw_model_gguf(const sw_model *m) { return m->gguf; }
sw_backend *sw_model_backend(const sw_model *m) { return m->be; }
uint64_t sw_model_weight_bytes(const sw_model *m) { return m->weight_bytes; }
uint64_t sw_model_n_params(const sw_model *m) { return m->n_params; }
