/* forward.c — one forward step of a llama-family transformer over a flattened
 * batch of tokens from many sequences, as a readable sequence of backend ops.
 * Batch validation happens first, on the host, so that a bad batch never
 * reaches a kernel. The step's index tensors travel in one small host-visible
 * buffer; activations live in one compute buffer grown to the largest batch. */
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
    /* activations */
    sw_tensor x;      /* [n_embd, T] residual stream */
    sw_tensor h;      /* [n_embd, T] normed input / branch output */
    sw_tensor q;      /* [n_head * head_dim, T] */
    sw_tensor k;      /* [n_head_kv * head_dim, T] */
    sw_tensor v;      /* [n_head_kv * head_dim, T] */
    sw_tensor att;    /* [n_head * head_dim, T] */
    sw_tensor gate;   /* [n_ff, T] (then silu(gate) * up) */
    sw_tensor up;     /* [n_ff, T] */
    sw_tensor xo;     /* [n_embd, R] rows that produce logits */
    sw_tensor logits; /* [n_vocab, R] */
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
    sw_tensor *idx[] = {&s->tokens, &s->pos, &s->seq_start, &s->block_tables, &s->slots,
                        &s->out_rows};
    set_buf(idx, sizeof idx / sizeof idx[0], rs->idx);
    return sw_be_upload(m->be, rs->idx, 0, rs->host_idx, need, err);
}

static sw_status prepare_activations(sw_model *m, step *s, sw_err *err) {
    const sw_model_config *c = &m->cfg;
    int64_t T = s->T, R = s->R, qd = c->n_head * c->head_dim, kvd = c->n_head_kv * c->head_dim;
    size_t off = 0;
    s->x = carve(&off, SW_TYPE_F32, c->n_embd, T, 1);
    s->h = carve(&off, SW_TYPE_F32, c->n_embd, T, 1);
    s->q = carve(&off, SW_TYPE_F32, qd, T, 1);
    s->k = carve(&off, SW_TYPE_F32, kvd, T, 1);
    s->v = carve(&off, SW_TYPE_F32, kvd, T, 1);
    s->att = carve(&off, SW_TYPE_F32, qd, T, 1);
    s->gate = carve(&off, SW_TYPE_F32, c->n_ff, T, 1);
    s->up = carve(&off, SW_TYPE_F32, c->n_ff, T, 1);
    s->xo = carve(&off, SW_TYPE_F32, c->n_embd, R, 1);
    s->logits = carve(&off, SW_TYPE_F32, c->n_vocab, R, 1);
    sw_status st = ensure_buffer(m->be, &m->rs.act, &m->rs.act_size, off, SW_BUF_COMPUTE,
                                 "activations", err);
    if (st != SW_OK) return st;
    sw_tensor *acts[] = {&s->x, &s->h, &s->q, &s->k, &s->v, &s->att, &s->gate, &s->up, &s->xo,
                         &s->logits};
    set_buf(acts, sizeof acts / sizeof acts[0], m->rs.act);
    return SW_OK;
}

void sw_forward_state_free(sw_model *m) {
    if (m->rs.act) sw_be_buf_free(m->be, m->rs.act);
    if (m->rs.idx) sw_be_buf_free(m->be, m->rs.idx);
    free(m->rs.host_idx);
    memset(&m->rs, 0, sizeof m->rs);
}

/* ---- the transformer ----------------------------------------------------- */

#define TRY(call)                             \
    do {                                      \
        if ((st = (call)) != SW_OK) return st; \
    } while (0)

static const sw_tensor *opt(const sw_tensor *t) { return t->buf ? t : NULL; }

/* View a [n_heads * head_dim, T] activation as [head_dim, n_heads, T] for rope. */
static sw_tensor heads_view(const sw_tensor *t, int64_t head_dim, int64_t n_heads) {
    return sw_tensor_make(t->buf, t->offset, t->type, head_dim, n_heads, t->ne[1], 1);
}

static sw_status layer_forward(sw_model *m, sw_kv_cache *kv, int64_t il, step *s,
                               const sw_rope_params *rope, const sw_attn_params *ap, sw_err *err) {
    const sw_model_config *c = &m->cfg;
    const sw_layer_weights *w = &m->w.layers[il];
    sw_backend *be = m->be;
    sw_status st;

    /* attention block: h = rmsnorm(x) * attn_norm */
    TRY(sw_be_rms_norm(be, &s->x, &w->attn_norm, c->rms_eps, &s->h, err));
    /* q, k, v = h Wq, h Wk, h Wv (+ bias on qwen2) */
    TRY(sw_be_matmul(be, &w->wq, &s->h, opt(&w->bq), &s->q, err));
    TRY(sw_be_matmul(be, &w->wk, &s->h, opt(&w->bk), &s->k, err));
    TRY(sw_be_matmul(be, &w->wv, &s->h, opt(&w->bv), &s->v, err));
    /* rotate q and k by each token's position */
    sw_tensor qh = heads_view(&s->q, c->head_dim, c->n_head);
    sw_tensor kh = heads_view(&s->k, c->head_dim, c->n_head_kv);
    TRY(sw_be_rope(be, &qh, &s->pos, rope, err));
    TRY(sw_be_rope(be, &kh, &s->pos, rope, err));
    /* append this step's k, v to the paged cache, then attend over each
     * sequence's cached context (causal, GQA) */
    sw_tensor *kc = sw_kv_layer_k(kv, il), *vc = sw_kv_layer_v(kv, il);
    TRY(sw_be_kv_write(be, &s->k, &s->v, kc, vc, &s->slots, err));
    TRY(sw_be_attention(be, &s->q, kc, vc, ap, &s->att, err));
    /* x = x + att Wo */
    TRY(sw_be_matmul(be, &w->wo, &s->att, NULL, &s->h, err));
    TRY(sw_be_add(be, &s->x, &s->h, &s->x, err));

    /* feed-forward block: h = rmsnorm(x) * ffn_norm */
    TRY(sw_be_rms_norm(be, &s->x, &w->ffn_norm, c->rms_eps, &s->h, err));
    /* x = x + (silu(h Wgate) * (h Wup)) Wdown */
    TRY(sw_be_matmul(be, &w->w_gate, &s->h, NULL, &s->gate, err));
    TRY(sw_be_matmul(be, &w->w_up, &s->h, NULL, &s->up, err));
    /* in place: elementwise, each output reads only its own inputs */
    TRY(sw_be_swiglu(be, &s->gate, &s->up, &s->gate, err));
    TRY(sw_be_matmul(be, &w->w_down, &s->gate, NULL, &s->h, err));
    TRY(sw_be_add(be, &s->x, &s->h, &s->x, err));
    return SW_OK;
}

static sw_status run_step(sw_model *m, sw_kv_cache *kv, step *s, sw_err *err) {
    const sw_model_config *c = &m->cfg;
    const sw_weights *w = &m->w;
    sw_backend *be = m->be;
    sw_status st;
    sw_rope_params rope = {
        .n_dims = (int32_t)c->n_rot,
        .mode = (int32_t)c->rope_mode,
        .freq_base = c->rope_freq_base,
        .freq_scale = c->rope_freq_scale,
        .freq_factors = opt(&w->rope_freqs),
    };
    sw_attn_params ap = {
        .n_head = (int32_t)c->n_head,
        .n_head_kv = (int32_t)c->n_head_kv,
        .head_dim = (int32_t)c->head_dim,
        .scale = 1.0f / sqrtf((float)c->head_dim),
        .block_size = sw_kv_block_size(kv),
        .n_seqs = s->S,
        .max_blocks = s->max_blocks,
        .max_ctx = s->max_ctx,
        .seq_start = &s->seq_start,
        .pos = &s->pos,
        .block_tables = &s->block_tables,
    };

    /* x = token embeddings */
    TRY(sw_be_get_rows(be, &w->token_embd, &s->tokens, &s->x, err));
    for (int64_t il = 0; il < c->n_layer; il++)
        if ((st = layer_forward(m, kv, il, s, &rope, &ap, err)) != SW_OK)
            return sw_err_wrap(err, st, "layer %lld", (long long)il);
    /* keep the rows that produce logits (last token of each sequence), then
     * final norm and classifier */
    TRY(sw_be_get_rows(be, &s->x, &s->out_rows, &s->xo, err));
    TRY(sw_be_rms_norm(be, &s->xo, &w->output_norm, c->rms_eps, &s->xo, err));
    TRY(sw_be_matmul(be, &w->output, &s->xo, NULL, &s->logits, err));
    return SW_OK;
}

sw_status sw_model_forward(sw_model *m, sw_kv_cache *kv, const sw_batch *b, float *logits,
                           sw_err *err) {
    if (!m || !kv || !b || !logits)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_forward: NULL argument");
    if (sw_kv_model(kv) != m)
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_model_forward: KV cache belongs to another model");
    step s;
    memset(&s, 0, sizeof s);
    sw_status st = validate_batch(m, kv, b, &s, err);
    if (st != SW_OK) return st;
    if ((st = stage_indices(m, kv, b, &s, err)) != SW_OK) return st;
    if ((st = prepare_activations(m, &s, err)) != SW_OK) return st;

    if ((st = sw_be_begin(m->be, err)) != SW_OK) return st;
    st = run_step(m, kv, &s, err);
    if (st != SW_OK) {
        sw_err end_err; /* the op's error is the one worth reporting */
        sw_be_end(m->be, &end_err);
        return sw_err_wrap(err, st, "forward");
    }
    if ((st = sw_be_end(m->be, err)) != SW_OK) return st;
    size_t n = (size_t)s.R * (size_t)m->cfg.n_vocab * sizeof(float);
    return sw_be_download(m->be, s.logits.buf, s.logits.offset, logits, n, err);
}
