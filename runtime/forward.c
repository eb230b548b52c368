/* forward.c — one forward step of a transformer over a flattened batch of
 * tokens from many sequences. Batch validation happens first, on the host, so
 * that a bad batch never reaches a kernel. The step's index tensors travel in
 * one small host-visible buffer; activations live in one compute buffer grown
 * to the largest batch.
 *
 * Each architecture is one function that reads like its math (the
 * "architectures" section), written in a few shared building blocks
 * (embedding, norm, self-attention, feed-forward, output head) that are
 * themselves short sequences of backend ops. Fusion and other cleverness
 * belong in the backends, not here. */
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Everything one step works on: index tensors (I32, in rs.idx) and activation
 * tensors (F32, in rs.act), shaped for this batch. */
typedef struct step {
    int32_t T;          /* tokens in the batch */
    int32_t S;          /* sequences */
    int32_t R;          /* rows of logits produced */
    int32_t max_blocks; /* block-table row length */
    int32_t max_ctx;    /* max pos + 1 */
    /* indices */
    sw_tensor tokens;       /* I32 [T] */
    sw_tensor pos;          /* I32 [T] */
    sw_tensor seq_start;    /* I32 [S + 1] */
    sw_tensor block_tables; /* I32 [max_blocks, S] */
    sw_tensor slots;        /* I32 [T]: KV slot of each token */
    sw_tensor out_rows;     /* I32 [R]: which rows of x produce logits */
    sw_tensor types;        /* I32 [T]: token type of each token, all 0 ("sentence A");
                             * only for models with token-type embeddings (bert) */
    /* activations */
    sw_tensor x;      /* [n_embd, T] residual stream */
    sw_tensor h;      /* [n_embd, T] normed input / branch output */
    sw_tensor qkv;    /* [(n_head + 2 n_head_kv) head_dim, T]: q, k, v of each token */
    sw_tensor att;    /* [n_head * head_dim, T] */
    sw_tensor gu;     /* [2 n_ff, T]: gate, up of each token (then silu(gate) * up) */
    sw_tensor xo;     /* [n_embd, R] rows that produce logits */
    sw_tensor ho;     /* [n_embd, R] their branch in the last layer (keep_out_rows) */
    sw_tensor logits; /* [n_vocab, R]; not allocated for an embed-only model */
} step;

/* ---- validation ---------------------------------------------------------- */

static sw_status validate_batch(const sw_model *m, const sw_kv_cache *kv, const sw_batch *b,
                                step *s, sw_err *err) {
    const sw_model_config *c = &m->cfg;
    if (!b->tokens || !b->pos || !b->seq_start || !b->block_tables || !b->n_blocks)
        return sw_err_set(err, SW_E_INVALID_ARG, "batch: NULL tokens/pos/seq_start/block tables");
    if (b->n_tokens < 1 || b->n_seqs < 1 || b->n_seqs > b->n_tokens)
        return sw_err_set(err, SW_E_INVALID_ARG, "batch: %d tokens in %d sequences", b->n_tokens,
                          b->n_seqs);
    if (b->seq_start[0] != 0 || b->seq_start[b->n_seqs] != b->n_tokens)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "batch: seq_start must run from 0 to n_tokens (%d), got %d..%d",
                          b->n_tokens, b->seq_start[0], b->seq_start[b->n_seqs]);
    int32_t bs = sw_kv_block_size(kv), kv_blocks = sw_kv_n_blocks(kv);
    s->max_blocks = 1;
    s->max_ctx = 1;
    for (int32_t q = 0; q < b->n_seqs; q++) {
        int32_t t0 = b->seq_start[q], t1 = b->seq_start[q + 1];
        if (t1 <= t0)
            return sw_err_set(err, SW_E_INVALID_ARG, "batch: sequence %d is empty (seq_start %d..%d)",
                              q, t0, t1);
        for (int32_t t = t0; t < t1; t++) {
            if (b->tokens[t] < 0 || b->tokens[t] >= c->n_vocab)
                return sw_err_set(err, SW_E_RANGE, "batch: token %d has id %d, vocab is %lld", t,
                                  b->tokens[t], (long long)c->n_vocab);
            if (b->pos[t] < 0 || b->pos[t] >= c->n_ctx_train)
                return sw_err_set(err, SW_E_RANGE,
                                  "batch: token %d at position %d is outside the context (%lld)", t,
                                  b->pos[t], (long long)c->n_ctx_train);
            if (t > t0 && b->pos[t] != b->pos[t - 1] + 1)
                return sw_err_set(err, SW_E_INVALID_ARG,
                                  "batch: sequence %d positions not consecutive at token %d (%d after %d)",
                                  q, t, b->pos[t], b->pos[t - 1]);
        }
        if (!c->causal && b->pos[t0] != 0)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "batch: sequence %d starts at position %d; a non-causal model (%s) "
                              "computes each input whole, in one step",
                              q, b->pos[t0], c->arch_name);
        int32_t need = b->pos[t1 - 1] / bs + 1;
        if (!b->block_tables[q] || b->n_blocks[q] < need)
            return sw_err_set(err, SW_E_RANGE,
                              "batch: sequence %d reaches position %d, needs %d blocks of %d, table has %d",
                              q, b->pos[t1 - 1], need, bs, b->block_tables[q] ? b->n_blocks[q] : 0);
        for (int32_t i = 0; i < need; i++)
            if (b->block_tables[q][i] < 0 || b->block_tables[q][i] >= kv_blocks)
                return sw_err_set(err, SW_E_RANGE,
                                  "batch: sequence %d block table entry %d is %d, cache has %d blocks",
                                  q, i, b->block_tables[q][i], kv_blocks);
        s->max_blocks = SW_MAX(s->max_blocks, need);
        s->max_ctx = SW_MAX(s->max_ctx, b->pos[t1 - 1] + 1);
    }
    if (b->block_table_cap > 0) {
        if (b->block_table_cap < s->max_blocks)
            return sw_err_set(err, SW_E_RANGE,
                              "batch: block_table_cap %d is below the %d blocks a sequence needs",
                              b->block_table_cap, s->max_blocks);
        s->max_blocks = b->block_table_cap;
    } else {
        int32_t w = 1; /* a power of two: the width changes rarely as contexts grow */
        while (w < s->max_blocks) w *= 2;
        s->max_blocks = w;
    }
    s->T = b->n_tokens;
    s->S = b->n_seqs;
    s->R = b->all_logits ? b->n_tokens : b->n_seqs;
    return SW_OK;
}

/* ---- scratch ------------------------------------------------------------- */

/* Grow *buf to at least need bytes (contents are not kept). */
static sw_status ensure_buffer(sw_backend *be, sw_buffer **buf, size_t *size, size_t need,
                               sw_buf_usage usage, const char *what, sw_err *err) {
    if (*buf && *size >= need) return SW_OK;
    if (*buf) sw_be_buf_free(be, *buf);
    *buf = NULL;
    *size = 0;
    sw_status st = sw_be_buf_alloc(be, need, usage, buf, err);
    if (st != SW_OK) return sw_err_wrap(err, st, "allocating %zu bytes of %s", need, what);
    *size = need;
    return SW_OK;
}

/* Lay out a contiguous tensor at the next aligned offset. */
static sw_tensor carve(size_t *off, sw_type type, int64_t ne0, int64_t ne1, int64_t ne2) {
    sw_tensor t = sw_tensor_make(NULL, *off, type, ne0, ne1, ne2, 1);
    *off = sw_align_up(*off + sw_tensor_nbytes(&t), SW_TENSOR_ALIGN);
    return t;
}

static void set_buf(sw_tensor *const *ts, size_t n, sw_buffer *buf) {
    for (size_t i = 0; i < n; i++) ts[i]->buf = buf;
}

/* Fill the index tensors on the host and upload them in one transfer. */
static sw_status stage_indices(sw_model *m, sw_kv_cache *kv, const sw_batch *b, step *s,
                               sw_err *err) {
    sw_run_state *rs = &m->rs;
    size_t off = 0;
    s->tokens = carve(&off, SW_TYPE_I32, s->T, 1, 1);
    s->pos = carve(&off, SW_TYPE_I32, s->T, 1, 1);
    s->seq_start = carve(&off, SW_TYPE_I32, s->S + 1, 1, 1);
    s->block_tables = carve(&off, SW_TYPE_I32, s->max_blocks, s->S, 1);
    s->slots = carve(&off, SW_TYPE_I32, s->T, 1, 1);
    s->out_rows = carve(&off, SW_TYPE_I32, s->R, 1, 1);
    bool types = m->w.token_types.buf != NULL;
    if (types) s->types = carve(&off, SW_TYPE_I32, s->T, 1, 1);
    size_t need = off;
    sw_status st = ensure_buffer(m->be, &rs->idx, &rs->idx_size, need, SW_BUF_HOST_VISIBLE,
                                 "step indices", err);
    if (st != SW_OK) return st;
    if (rs->host_idx_size < need) {
        free(rs->host_idx);
        rs->host_idx_size = 0;
        if (!(rs->host_idx = malloc(need)))
            return sw_err_set(err, SW_E_NOMEM, "out of memory staging %zu bytes of indices", need);
        rs->host_idx_size = need;
    }
    memset(rs->host_idx, 0, need);
    char *base = (char *)rs->host_idx;
#define AT(t) ((int32_t *)(base + (t).offset))
    memcpy(AT(s->tokens), b->tokens, (size_t)s->T * sizeof(int32_t));
    memcpy(AT(s->pos), b->pos, (size_t)s->T * sizeof(int32_t));
    memcpy(AT(s->seq_start), b->seq_start, (size_t)(s->S + 1) * sizeof(int32_t));
    int32_t bs = sw_kv_block_size(kv);
    int32_t *tables = AT(s->block_tables), *slots = AT(s->slots), *rows = AT(s->out_rows);
    for (int32_t q = 0; q < s->S; q++) {
        const int32_t *bt = b->block_tables[q];
        int32_t t0 = b->seq_start[q], t1 = b->seq_start[q + 1];
        int32_t used = b->pos[t1 - 1] / bs + 1;
        /* Entries past what the sequence uses stay 0: a valid block that the
         * causal mask never lets attention read. */
        memcpy(tables + (size_t)q * s->max_blocks, bt, (size_t)used * sizeof(int32_t));
        for (int32_t t = t0; t < t1; t++) slots[t] = bt[b->pos[t] / bs] * bs + b->pos[t] % bs;
        if (!b->all_logits) rows[q] = t1 - 1;
    }
    if (b->all_logits)
        for (int32_t t = 0; t < s->T; t++) rows[t] = t;
#undef AT
    /* the types stay 0 (memset above): every input is one segment */
    sw_tensor *idx[] = {&s->tokens, &s->pos, &s->seq_start, &s->block_tables, &s->slots,
                        &s->out_rows, &s->types}; /* types last: it exists only with types */
    set_buf(idx, sizeof idx / sizeof idx[0] - (types ? 0 : 1), rs->idx);
    return sw_be_upload(m->be, rs->idx, 0, rs->host_idx, need, err);
}

static sw_status prepare_activations(sw_model *m, step *s, sw_err *err) {
    const sw_model_config *c = &m->cfg;
    int64_t T = s->T, R = s->R, qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    size_t off = 0;
    s->x = carve(&off, SW_TYPE_F32, c->n_embd, T, 1);
    s->h = carve(&off, SW_TYPE_F32, c->n_embd, T, 1);
    s->qkv = carve(&off, SW_TYPE_F32, qd + 2 * kvd, T, 1);
    s->att = carve(&off, SW_TYPE_F32, qd, T, 1);
    s->gu = carve(&off, SW_TYPE_F32, 2 * c->n_ff, T, 1);
    s->xo = carve(&off, SW_TYPE_F32, c->n_embd, R, 1);
    s->ho = carve(&off, SW_TYPE_F32, c->n_embd, R, 1);
    if (!c->embed_only) s->logits = carve(&off, SW_TYPE_F32, c->n_vocab, R, 1);
    sw_status st = ensure_buffer(m->be, &m->rs.act, &m->rs.act_size, off, SW_BUF_COMPUTE,
                                 "activations", err);
    if (st != SW_OK) return st;
    sw_tensor *acts[] = {&s->x, &s->h, &s->qkv, &s->att, &s->gu, &s->xo, &s->ho,
                         &s->logits}; /* logits last: an embed-only model has none */
    set_buf(acts, sizeof acts / sizeof acts[0] - (c->embed_only ? 1 : 0), m->rs.act);
    return SW_OK;
}

void sw_forward_state_free(sw_model *m) {
    if (m->rs.act) sw_be_buf_free(m->be, m->rs.act);
    if (m->rs.idx) sw_be_buf_free(m->be, m->rs.idx);
    free(m->rs.host_idx);
    memset(&m->rs, 0, sizeof m->rs);
}

/* ---- building blocks ------------------------------------------------------
 * The steps the architectures below are written in. Each is a short sequence
 * of backend ops on the step's tensors; none knows which architecture calls
 * it. */

#define TRY(call)                             \
    do {                                      \
        if ((st = (call)) != SW_OK) return st; \
    } while (0)

/* What every block works on: the model, its cache, this step's tensors. */
typedef struct fwd {
    sw_model *m;
    const sw_model_config *c;
    sw_backend *be;
    sw_kv_cache *kv;
    step *s;
    sw_err *err;
    bool want_hidden; /* every token's final state (sw_batch.hidden) ... */
    const sw_tensor *hidden; /* ... is left here by the architecture's step */
    bool want_logits; /* sw_batch's caller asked for logits */
    sw_tensor *x, *h; /* the residual stream and its branch: s->x and s->h, or
                       * s->xo and s->ho from keep_out_rows on */
} fwd;

static const sw_tensor *opt(const sw_tensor *t) { return t->buf ? t : NULL; }

/* View a [n_heads * head_dim, T] activation (rows possibly strided: columns
 * of a wider one) as [head_dim, n_heads, T]. */
static sw_tensor heads_view(const sw_tensor *t, int64_t head_dim, int64_t n_heads) {
    sw_tensor v = sw_tensor_make(t->buf, t->offset, t->type, head_dim, n_heads, t->ne[1], 1);
    v.nb[2] = t->nb[1];
    v.nb[3] = v.nb[2] * (size_t)v.ne[2];
    return v;
}

/* How one layer attends: its rope and its attention parameters. */
typedef struct attn_desc {
    sw_rope_params rope;
    sw_attn_params attn;
} attn_desc;

/* Attention as the config describes it for every layer: rope from the
 * config, attention over this step's sequences with the config's scale, no
 * window. Architectures with per-layer variants adjust a copy. */
static attn_desc attn_default(const fwd *f) {
    const sw_model_config *c = f->c;
    const step *s = f->s;
    attn_desc d = {
        .rope = {
            .n_dims = (int32_t)c->n_rot,
            .mode = (int32_t)c->rope_mode,
            .freq_base = c->rope_freq_base,
            .freq_scale = c->rope_freq_scale,
            .freq_factors = opt(&f->m->w.rope_freqs),
        },
        .attn = {
            .n_head = (int32_t)c->n_head,
            .n_head_kv = (int32_t)c->n_head_kv,
            .head_dim = (int32_t)c->head_dim,
            .scale = c->attn_scale,
            .block_size = sw_kv_block_size(f->kv),
            .n_seqs = s->S,
            .max_blocks = s->max_blocks,
            .max_ctx = s->max_ctx,
            .seq_start = &s->seq_start,
            .pos = &s->pos,
            .block_tables = &s->block_tables,
            .non_causal = !c->causal,
        },
    };
    return d;
}

/* x = token_embd[tokens] */
static sw_status embed(fwd *f) {
    return sw_be_get_rows(f->be, &f->m->w.token_embd, &f->s->tokens, &f->s->x, f->err);
}

/* out = rmsnorm(x) * w */
static sw_status norm(fwd *f, const sw_tensor *x, const sw_tensor *w, sw_tensor *out) {
    return sw_be_rms_norm(f->be, x, w, f->c->rms_eps, out, f->err);
}

/* x = x + h */
static sw_status residual(fwd *f, sw_tensor *x, const sw_tensor *h) {
    return sw_be_add(f->be, x, h, x, f->err);
}

/* x = x + h, then out = rmsnorm(x) * w: a residual add and the norm after it,
 * one op (out may be h); plain norm when there is nothing to add (h NULL). */
static sw_status add_norm(fwd *f, sw_tensor *x, const sw_tensor *h, const sw_tensor *w,
                          sw_tensor *out) {
    if (!h) return norm(f, x, w, out);
    return sw_be_add_rms_norm(f->be, x, h, w, f->c->rms_eps, out, f->err);
}

/* out = in W (+ b) for weights concatenated at load (cat, cat_b), else one
 * matmul per part (parts[i], biases[i]) into its columns of out. */
static sw_status project(fwd *f, const sw_tensor *in, const sw_tensor *cat, const sw_tensor *cat_b,
                         const sw_tensor *const *parts, const sw_tensor *const *biases, int n,
                         sw_tensor *out) {
    if (cat->buf) return sw_be_matmul(f->be, cat, in, cat_b ? opt(cat_b) : NULL, out, f->err);
    sw_status st;
    int64_t c0 = 0;
    for (int i = 0; i < n; i++) {
        sw_tensor cols = sw_tensor_cols(out, c0, parts[i]->ne[1]);
        TRY(sw_be_matmul(f->be, parts[i], in, biases ? opt(biases[i]) : NULL, &cols, f->err));
        c0 += parts[i]->ne[1];
    }
    return SW_OK;
}

/* out = attention(in) Wo for layer il: the q, k, v projections (+ biases
 * where the model has them; one matmul where the weights were concatenated at
 * load), RMSNorm of each q and k head (where the layer has q/k norms), rope
 * on q and k with this step's k, v appended to the paged cache (one op),
 * attention over each sequence's cached context (causal, GQA, windowed as d
 * says). out may be in. */
static sw_status self_attention(fwd *f, int64_t il, const attn_desc *d, const sw_tensor *in,
                                sw_tensor *out) {
    const sw_layer_weights *w = &f->m->w.layers[il];
    const sw_model_config *c = f->c;
    step *s = f->s;
    sw_backend *be = f->be;
    sw_err *err = f->err;
    sw_status st;
    const sw_tensor *parts[3] = {&w->wq, &w->wk, &w->wv}, *biases[3] = {&w->bq, &w->bk, &w->bv};
    TRY(project(f, in, &w->wqkv, &w->bqkv, parts, biases, 3, &s->qkv));
    const int64_t qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    sw_tensor q = sw_tensor_cols(&s->qkv, 0, qd), k = sw_tensor_cols(&s->qkv, qd, kvd);
    sw_tensor v = sw_tensor_cols(&s->qkv, qd + kvd, kvd);
    sw_tensor qh = heads_view(&q, c->head_dim, c->n_head);
    sw_tensor kh = heads_view(&k, c->head_dim, c->n_head_kv);
    if (w->q_norm.buf) {
        TRY(norm(f, &qh, &w->q_norm, &qh));
        TRY(norm(f, &kh, &w->k_norm, &kh));
    }
    sw_tensor *kc = sw_kv_layer_k(f->kv, il), *vc = sw_kv_layer_v(f->kv, il);
    if (d->rope.n_dims > 0)
        TRY(sw_be_rope_kv_write(be, &qh, &kh, &v, &s->pos, &d->rope, kc, vc, &s->slots, err));
    else /* positions come from embeddings (bert) */
        TRY(sw_be_kv_write(be, &k, &v, kc, vc, &s->slots, err));
    TRY(sw_be_attention(be, &q, kc, vc, &d->attn, &s->att, err));
    return sw_be_matmul(be, &w->wo, &s->att, opt(&w->bo), out, err);
}

/* The gate activation of a gated feed-forward block. */
typedef enum { GLU_SILU, GLU_GELU } glu_act;

/* out = (act(in Wgate) * (in Wup)) Wdown: SwiGLU (silu) or GeGLU (gelu,
 * tanh form); gate and up: one matmul where concatenated at load; out may
 * be in. */
static sw_status ffn(fwd *f, int64_t il, glu_act act, const sw_tensor *in, sw_tensor *out) {
    const sw_layer_weights *w = &f->m->w.layers[il];
    step *s = f->s;
    sw_status st;
    const sw_tensor *parts[2] = {&w->w_gate, &w->w_up};
    sw_tensor gu = sw_tensor_rows(&s->gu, 0, in->ne[1]); /* T rows, or R (keep_out_rows) */
    TRY(project(f, in, &w->w_gate_up, NULL, parts, NULL, 2, &gu));
    const int64_t n_ff = f->c->n_ff;
    sw_tensor gate = sw_tensor_cols(&gu, 0, n_ff), up = sw_tensor_cols(&gu, n_ff, n_ff);
    /* in place: elementwise, each output reads only its own inputs */
    if (act == GLU_GELU)
        TRY(sw_be_geglu(f->be, &gate, &up, &gate, f->err));
    else
        TRY(sw_be_swiglu(f->be, &gate, &up, &gate, f->err));
    return sw_be_matmul(f->be, &w->w_down, &gate, NULL, out, f->err);
}

/* logits = rmsnorm(x[out_rows]) * output_norm · Wout: only the rows that
 * produce logits (the last token of each sequence, or all) go through the
 * final norm and the classifier. */
static sw_status output_head(fwd *f) {
    const sw_weights *w = &f->m->w;
    step *s = f->s;
    sw_status st;
    f->hidden = &s->h;
    if (f->want_hidden) TRY(norm(f, &s->x, &w->output_norm, &s->h));
    if (!f->want_logits) return SW_OK;
    if (f->x != &s->xo) TRY(sw_be_get_rows(f->be, &s->x, &s->out_rows, &s->xo, f->err));
    TRY(norm(f, &s->xo, &w->output_norm, &s->xo));
    return sw_be_matmul(f->be, &w->output, &s->xo, NULL, &s->logits, f->err);
}

/* From the last layer's attention on, only the rows that produce logits
 * matter when nobody asked for every token's final state: gather them (the
 * residual x and the attention branch h) so that the last feed-forward block,
 * the final norm and the classifier run on R rows instead of T, as llama.cpp
 * does. Per row the arithmetic is the same; a prefill skips the last layer's
 * FFN for every token but its last. */
static sw_status keep_out_rows(fwd *f, int64_t il) {
    step *s = f->s;
    if (il != f->c->n_layer - 1 || f->want_hidden || !f->want_logits || s->R == s->T)
        return SW_OK;
    sw_status st;
    TRY(sw_be_get_rows(f->be, &s->x, &s->out_rows, &s->xo, f->err));
    TRY(sw_be_get_rows(f->be, &s->h, &s->out_rows, &s->ho, f->err));
    f->x = &s->xo;
    f->h = &s->ho;
    return SW_OK;
}

/* ---- architectures ----------------------------------------------------------
 * One function per architecture: its whole step, read top to bottom. */

/* Name the layer in the error of an op that failed inside it. */
static sw_status in_layer(fwd *f, int64_t il, sw_status st) {
    return st == SW_OK ? SW_OK : sw_err_wrap(f->err, st, "layer %lld", (long long)il);
}

/* llama, qwen2: pre-norm blocks with SwiGLU; qwen2 adds q/k/v biases, which
 * self_attention applies where the weights have them. */
static sw_status llama_layer(fwd *f, int64_t il, const attn_desc *d) {
    const sw_layer_weights *w = &f->m->w.layers[il];
    step *s = f->s;
    sw_status st;
    /* x = x + attention(rmsnorm(x) * attn_norm), where the previous layer's
     * x = x + ffn(...) (its output in h) is done by the op of this norm */
    TRY(add_norm(f, &s->x, il > 0 ? &s->h : NULL, &w->attn_norm, &s->h));
    TRY(self_attention(f, il, d, &s->h, &s->h));
    TRY(keep_out_rows(f, il));
    /* x = x + h, and x = x + ffn(rmsnorm(x) * ffn_norm) (the add is left in h) */
    TRY(add_norm(f, f->x, f->h, &w->ffn_norm, f->h));
    return ffn(f, il, GLU_SILU, f->h, f->h);
}

static sw_status llama_step(fwd *f) {
    attn_desc d = attn_default(f);
    sw_status st;
    TRY(embed(f));
    for (int64_t il = 0; il < f->c->n_layer; il++)
        TRY(in_layer(f, il, llama_layer(f, il, &d)));
    TRY(residual(f, f->x, f->h)); /* the last layer's x = x + ffn(...) */
    return output_head(f);
}

/* out = LayerNorm(x) * w + b with the model's epsilon */
static sw_status layer_norm(fwd *f, const sw_tensor *x, const sw_tensor *w, const sw_tensor *b,
                            sw_tensor *out) {
    return sw_be_layer_norm(f->be, x, w, b, f->c->norm_eps, out, f->err);
}

/* out = gelu(in Wup + b_up) Wdown + b_down (exact GELU); out may be in. */
static sw_status ffn_gelu(fwd *f, int64_t il, const sw_tensor *in, sw_tensor *out) {
    const sw_layer_weights *w = &f->m->w.layers[il];
    step *s = f->s;
    sw_status st;
    sw_tensor up = sw_tensor_cols(&s->gu, 0, f->c->n_ff);
    TRY(sw_be_matmul(f->be, &w->w_up, in, opt(&w->b_up), &up, f->err));
    TRY(sw_be_gelu(f->be, &up, &up, f->err));
    return sw_be_matmul(f->be, &w->w_down, &up, opt(&w->b_down), out, f->err);
}

/* bert: a post-norm encoder. Each sublayer's output joins the residual and
 * the sum is LayerNorm-ed; attention sees the whole input (non-causal, set
 * from the config by attn_default); no rope (positions are embedded). */
static sw_status bert_layer(fwd *f, int64_t il, const attn_desc *d) {
    const sw_layer_weights *w = &f->m->w.layers[il];
    step *s = f->s;
    sw_status st;
    /* x = LayerNorm(x + attention(x)) */
    TRY(self_attention(f, il, d, &s->x, &s->h));
    TRY(residual(f, &s->x, &s->h));
    TRY(layer_norm(f, &s->x, &w->attn_out_norm, &w->attn_out_norm_b, &s->x));
    /* x = LayerNorm(x + ffn(x)) */
    TRY(ffn_gelu(f, il, &s->x, &s->h));
    TRY(residual(f, &s->x, &s->h));
    return layer_norm(f, &s->x, &w->out_norm, &w->out_norm_b, &s->x);
}

/* The final hidden states are the last layer's output, every token's (the
 * engine pools them into an embedding); there is no LM head. */
static sw_status bert_step(fwd *f) {
    const sw_weights *w = &f->m->w;
    step *s = f->s;
    attn_desc d = attn_default(f);
    d.rope.n_dims = 0;
    sw_status st;
    /* x = LayerNorm(token_embd[tokens] + position_embd[pos] + token_types[types]) */
    TRY(embed(f));
    TRY(sw_be_get_rows(f->be, &w->pos_embd, &s->pos, &s->h, f->err));
    TRY(residual(f, &s->x, &s->h));
    if (w->token_types.buf) {
        TRY(sw_be_get_rows(f->be, &w->token_types, &s->types, &s->h, f->err));
        TRY(residual(f, &s->x, &s->h));
    }
    TRY(layer_norm(f, &s->x, &w->embd_norm, &w->embd_norm_b, &s->x));
    for (int64_t il = 0; il < f->c->n_layer; il++)
        TRY(in_layer(f, il, bert_layer(f, il, &d)));
    f->hidden = &s->x;
    return SW_OK;
}

/* gemma3: the embeddings scaled by sqrt(n_embd); every sublayer's output is
 * normed again before it joins the residual (post-attention and post-FFN
 * norms); q and k heads are RMS-normed before rope; GeGLU; five of every six
 * layers attend through a sliding window and rope with the local base, the
 * sixth attends globally with the global base; logits soft-capped where the
 * file sets a cap. The norm weights already hold Gemma's 1 + w. */
static sw_status gemma3_layer(fwd *f, int64_t il, const attn_desc *global) {
    const sw_model_config *c = f->c;
    const sw_layer_weights *w = &f->m->w.layers[il];
    step *s = f->s;
    sw_status st;
    attn_desc d = *global;
    if (sw_model_config_layer_is_swa(c, il)) {
        d.rope.freq_base = c->rope_freq_base_swa;
        d.attn.window = (int32_t)c->n_swa;
    }
    /* x = x + rmsnorm(attention(rmsnorm(x) * attn_norm)) * post_attn_norm,
     * where the previous layer's x = x + h is done by the op of this norm */
    TRY(add_norm(f, &s->x, il > 0 ? &s->h : NULL, &w->attn_norm, &s->h));
    TRY(self_attention(f, il, &d, &s->h, &s->h));
    TRY(norm(f, &s->h, &w->post_attn_norm, &s->h));
    TRY(keep_out_rows(f, il));
    /* x = x + h, and x = x + rmsnorm(geglu_ffn(rmsnorm(x) * ffn_norm)) *
     * post_ffn_norm (the add is left in h) */
    TRY(add_norm(f, f->x, f->h, &w->ffn_norm, f->h));
    TRY(ffn(f, il, GLU_GELU, f->h, f->h));
    return norm(f, f->h, &w->post_ffn_norm, f->h);
}

static sw_status gemma3_step(fwd *f) {
    const sw_model_config *c = f->c;
    attn_desc d = attn_default(f);
    sw_status st;
    TRY(embed(f));
    TRY(sw_be_scale(f->be, &f->s->x, c->embd_scale, &f->s->x, f->err));
    for (int64_t il = 0; il < c->n_layer; il++)
        TRY(in_layer(f, il, gemma3_layer(f, il, &d)));
    TRY(residual(f, f->x, f->h)); /* the last layer's x = x + h */
    TRY(output_head(f));
    if (f->want_logits && c->final_logit_softcap > 0)
        TRY(sw_be_softcap(f->be, &f->s->logits, c->final_logit_softcap, &f->s->logits, f->err));
    return SW_OK;
}

typedef sw_status (*arch_step_fn)(fwd *f);

static arch_step_fn arch_step(sw_arch arch) {
    switch (arch) {
    case SW_ARCH_LLAMA:
    case SW_ARCH_QWEN2: return llama_step;
    case SW_ARCH_BERT: return bert_step;
    case SW_ARCH_GEMMA3: return gemma3_step;
    }
    return NULL;
}

/* Download, or summarize, the rows of logits: one call per run of rows that
 * want the same. */
static sw_status hand_back(sw_model *m, const step *s, const sw_logits_out *o, sw_err *err) {
    const size_t V = (size_t)m->cfg.n_vocab;
    for (int32_t r0 = 0; r0 < s->R;) {
        const bool full = !o->full_rows || o->full_rows[r0];
        int32_t r1 = r0 + 1;
        while (r1 < s->R && (!o->full_rows || o->full_rows[r1]) == full) r1++;
        sw_status st;
        if (full) {
            st = sw_model_last_logits(m, r0, r1 - r0, o->full + (size_t)r0 * V, err);
        } else {
            sw_tensor rows = sw_tensor_rows(&s->logits, r0, r1 - r0);
            st = sw_be_logits_summary(m->be, &rows, o->k, o->stats + r0,
                                      o->top_ids + (size_t)r0 * (size_t)o->k,
                                      o->top_logits + (size_t)r0 * (size_t)o->k, err);
        }
        if (st != SW_OK) return st;
        r0 = r1;
    }
    return SW_OK;
}

/* The logits output makes sense: arrays for what it asks for. */
static sw_status check_out(const sw_model *m, const step *s, const sw_logits_out *o, sw_err *err) {
    bool any_summary = false, any_full = !o->full_rows;
    for (int32_t r = 0; o->full_rows && r < s->R; r++) {
        any_summary |= !o->full_rows[r];
        any_full |= o->full_rows[r] != 0;
    }
    if ((any_summary && (o->k < 1 || o->k > m->cfg.n_vocab || !o->stats || !o->top_ids ||
                         !o->top_logits)) ||
        (any_full && !o->full))
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "sw_model_forward: logits output: k %d (1..%lld) with stats and top "
                          "arrays for summarized rows, a host array for whole rows",
                          o->k, (long long)m->cfg.n_vocab);
    return SW_OK;
}

sw_status sw_model_forward_out(sw_model *m, sw_kv_cache *kv, const sw_batch *b,
                               const sw_logits_out *out, sw_err *err) {
    if (!m || !kv || !b)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_forward: NULL argument");
    if (out && m->cfg.embed_only)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "sw_model_forward: %s is an embedding model (%s): it has no LM head "
                          "to give logits",
                          sw_gguf_path(m->gguf), m->cfg.arch_name);
    if (sw_kv_model(kv) != m)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_forward: KV cache belongs to another model");
    step s;
    memset(&s, 0, sizeof s);
    sw_status st = validate_batch(m, kv, b, &s, err);
    if (st != SW_OK) return st;
    if (out && (st = check_out(m, &s, out, err)) != SW_OK) return st;
    m->rs.logits.buf = NULL;
    if ((st = stage_indices(m, kv, b, &s, err)) != SW_OK) return st;
    if ((st = prepare_activations(m, &s, err)) != SW_OK) return st;

    arch_step_fn run = arch_step(m->cfg.arch);
    if (!run)
        return sw_err_set(err, SW_E_UNSUPPORTED, "forward: no forward pass for architecture %s",
                          m->cfg.arch_name);
    fwd f = {m, &m->cfg, m->be, kv, &s, err, b->hidden != NULL, NULL, out != NULL, &s.x, &s.h};
    if ((st = sw_be_begin(m->be, err)) != SW_OK) return st;
    st = run(&f);
    if (st != SW_OK) {
        sw_err end_err; /* the op's error is the one worth reporting */
        sw_be_end(m->be, &end_err);
        return sw_err_wrap(err, st, "forward");
    }
    if ((st = sw_be_end(m->be, err)) != SW_OK) return st;
    if (out) m->rs.logits = s.logits;
    if (out && (st = hand_back(m, &s, out, err)) != SW_OK) return st;
    if (!b->hidden) return SW_OK;
    size_t n = (size_t)s.T * (size_t)m->cfg.n_embd * sizeof(float);
    return sw_be_download(m->be, f.hidden->buf, f.hidden->offset, b->hidden, n, err);
}

sw_status sw_model_forward(sw_model *m, sw_kv_cache *kv, const sw_batch *b, float *logits,
                           sw_err *err) {
    sw_logits_out o = {.full = logits};
    return sw_model_forward_out(m, kv, b, logits ? &o : NULL, err);
}

sw_status sw_model_last_logits(sw_model *m, int32_t r0, int32_t n, float *dst, sw_err *err) {
    if (!m || !dst) return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_last_logits: NULL argument");
    const sw_tensor *l = &m->rs.logits;
    if (!l->buf) return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_last_logits: no forward ran");
    if (r0 < 0 || n < 0 || r0 + (int64_t)n > l->ne[1])
        return sw_err_set(err, SW_E_RANGE, "sw_model_last_logits: rows [%d, %d + %d) of %lld", r0,
                          r0, n, (long long)l->ne[1]);
    size_t V = (size_t)l->ne[0];
    return sw_be_download(m->be, l->buf, l->offset + (size_t)r0 * l->nb[1], dst,
                          (size_t)n * V * sizeof(float), err);
}
