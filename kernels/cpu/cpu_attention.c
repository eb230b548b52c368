/* cpu_attention.c — paged causal attention with GQA for the CPU backend.
 *
 * Each (token, head) pair is one pool task: its query attends to positions
 * 0..pos[t] of its own sequence (non-causal: 0..the sequence's last position
 * in the batch; a sliding window keeps the last `window` of those), read from
 * the paged cache through the block table. Softmax is online (flash-style): keys are visited once in chunks, a
 * running max m and sum l are kept in f32 and the f32 output accumulator is
 * rescaled only when a chunk raises the max, so no [T, ctx] score matrix is
 * ever materialised. Tasks are numbered token-major so the heads sharing a KV
 * head (GQA) are taken close together while that K/V is in cache. */
#include <inttypes.h>
#include <stdlib.h>

#include "cpu_internal.h"

#define ATTN_CHUNK 32 /* keys scored before one softmax update */

typedef struct {
    const sw_tensor *q, *kc, *vc, *out;
    const sw_attn_params *p;
    const int32_t *pos, *bt, *tok_seq, *seq_start;
    float *acc; /* [n_threads][head_dim], indexed by pool slot */
    bool simd;  /* the AVX2 helpers may run */
    sw_cpu_attend_fn attend; /* the kernel set's row loop for this head_dim, or NULL */
    bool q3d, out3d; /* [head_dim, n_head, T] rather than [head_dim * n_head, T] */
} attn_ctx;

static inline const void *kv_row(const sw_tensor *c, int64_t slot, int64_t h) {
    int64_t bs = c->ne[2];
    return sw_cpu_row(c, h, slot % bs, slot / bs);
}

static float dot_q_k(const attn_ctx *c, const float *q, const void *k, int64_t n) {
    if (c->simd)
        return c->kc->type == SW_TYPE_F16 ? sw_cpu_dot_f32_f16_avx2(q, k, n)
                                          : sw_cpu_dot_f32_avx2(q, k, n);
    float s = 0.0f;
    if (c->kc->type == SW_TYPE_F16) {
        const uint16_t *k16 = k;
        for (int64_t i = 0; i < n; i++)
            s += q[i] * sw_cpu_f16_lut(k16[i]);
    } else {
        const float *k32 = k;
        for (int64_t i = 0; i < n; i++)
            s += q[i] * k32[i];
    }
    return s;
}

static void axpy_v(const attn_ctx *c, float *acc, float w, const void *v, int64_t n) {
    if (c->simd) {
        if (c->vc->type == SW_TYPE_F16)
            sw_cpu_axpy_f16_avx2(acc, w, v, n);
        else
            sw_cpu_axpy_f32_avx2(acc, w, v, n);
        return;
    }
    if (c->vc->type == SW_TYPE_F16) {
        const uint16_t *v16 = v;
        for (int64_t i = 0; i < n; i++)
            acc[i] += w * sw_cpu_f16_lut(v16[i]);
    } else {
        const float *v32 = v;
        for (int64_t i = 0; i < n; i++)
            acc[i] += w * v32[i];
    }
}

static void scale_acc(const attn_ctx *c, float *acc, float a, int64_t n) {
    if (c->simd) {
        sw_cpu_scale_f32_avx2(acc, a, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        acc[i] *= a;
}

static void attend_one(const attn_ctx *c, int64_t t, int64_t h, float *acc) {
    const sw_attn_params *p = c->p;
    int64_t hd = p->head_dim, kvh = h / (p->n_head / p->n_head_kv), bs = p->block_size;
    const float *q = c->q3d ? (const float *)sw_cpu_row(c->q, h, t, 0)
                            : (const float *)sw_cpu_row(c->q, t, 0, 0) + h * hd;
    float *out = c->out3d ? (float *)sw_cpu_row(c->out, h, t, 0)
                          : (float *)sw_cpu_row(c->out, t, 0, 0) + h * hd;
    const int32_t *table = c->bt + (size_t)c->tok_seq[t] * (size_t)p->max_blocks;
    /* causal: up to the token itself; non-causal: the whole sequence so far;
     * keys [k0, n_keys), cut to the window if any */
    int64_t last = p->non_causal ? c->seq_start[c->tok_seq[t] + 1] - 1 : t;
    int64_t n_keys = (int64_t)c->pos[last] + 1;
    int64_t k0 = p->window > 0 ? SW_MAX((int64_t)0, n_keys - p->window) : 0;
    if (c->attend) {
        c->attend(q, out, acc, hd, p->scale, k0, n_keys, table, c->kc, c->vc, kvh);
        return;
    }
    float m = -INFINITY, l = 0.0f, sc[ATTN_CHUNK];
    memset(acc, 0, (size_t)hd * sizeof(float));
    for (int64_t j0 = k0; j0 < n_keys; j0 += ATTN_CHUNK) {
        int64_t nj = SW_MIN(ATTN_CHUNK, n_keys - j0);
        float cmax = -INFINITY;
        for (int64_t j = 0; j < nj; j++) {
            int64_t pj = j0 + j, slot = (int64_t)table[pj / bs] * bs + pj % bs;
            sc[j] = dot_q_k(c, q, kv_row(c->kc, slot, kvh), hd) * p->scale;
            if (sc[j] > cmax) cmax = sc[j];
        }
        if (cmax > m) {               /* new running max: rescale what was summed so far */
            float r = expf(m - cmax); /* 0 on the first chunk (m = -inf) */
            if (l > 0.0f) scale_acc(c, acc, r, hd);
            l *= r;
            m = cmax;
        }
        for (int64_t j = 0; j < nj; j++) {
            int64_t pj = j0 + j, slot = (int64_t)table[pj / bs] * bs + pj % bs;
            float w = expf(sc[j] - m);
            l += w;
            axpy_v(c, acc, w, kv_row(c->vc, slot, kvh), hd);
        }
    }
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t i = 0; i < hd; i++)
        out[i] = acc[i] * inv;
}

static void attn_task(void *arg, int64_t i, int slot) {
    attn_ctx *c = arg;
    int64_t nh = c->p->n_head;
    attend_one(c, i / nh, i % nh, c->acc + (size_t)slot * (size_t)c->p->head_dim);
}

/* The data-dependent checks: sequences partition the batch, positions fit the
 * block tables, and every block a token reads exists in the cache. */
static sw_status check_layout(const sw_attn_params *p, const int32_t *ss, const int32_t *pos,
                              const int32_t *bt, int64_t T, int64_t n_blocks, int32_t *tok_seq,
                              sw_err *err) {
    const char *op = "attention";
    if (ss[0] != 0 || ss[p->n_seqs] != T)
        return sw_err_set(err, SW_E_RANGE,
                          "%s: seq_start must run from 0 to T = %" PRId64 " (got %d .. %d)", op, T,
                          ss[0], ss[p->n_seqs]);
    for (int32_t s = 0; s < p->n_seqs; s++) {
        if (ss[s + 1] < ss[s])
            return sw_err_set(err, SW_E_RANGE, "%s: seq_start[%d] = %d > seq_start[%d] = %d", op, s,
                              ss[s], s + 1, ss[s + 1]);
        int32_t max_pos = -1;
        for (int32_t t = ss[s]; t < ss[s + 1]; t++) {
            tok_seq[t] = s;
            if (pos[t] < 0 || (int64_t)pos[t] >= (int64_t)p->max_blocks * p->block_size)
                return sw_err_set(err, SW_E_RANGE,
                                  "%s: pos[%d] = %d outside [0, max_blocks %d * block_size %d)", op,
                                  t, pos[t], p->max_blocks, p->block_size);
            if (pos[t] > max_pos) max_pos = pos[t];
        }
        for (int32_t b = 0; max_pos >= 0 && b <= max_pos / p->block_size; b++) {
            int32_t id = bt[(size_t)s * (size_t)p->max_blocks + (size_t)b];
            if (id < 0 || id >= n_blocks)
                return sw_err_set(err, SW_E_RANGE,
                                  "%s: block_tables[%d][%d] = %d outside a cache of %" PRId64
                                  " blocks",
                                  op, s, b, id, n_blocks);
        }
    }
    return SW_OK;
}

sw_status sw_cpu_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                           const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                           sw_err *err) {
    sw_cpu_backend *cb = (sw_cpu_backend *)be;
    int64_t T = p->pos->ne[0], hd = p->head_dim;
    int nth = be->n_threads;
    size_t need = (size_t)nth * (size_t)hd * sizeof(float) + (size_t)T * sizeof(int32_t) + 64;
    uint8_t *scratch = sw_cpu_scratch(cb, need);
    if (!scratch) return sw_err_set(err, SW_E_NOMEM, "attention: cannot allocate %zu bytes", need);
    attn_ctx c = {
        .q = q,
        .kc = k_cache,
        .vc = v_cache,
        .out = out,
        .p = p,
        .pos = (const int32_t *)sw_cpu_ptr(p->pos),
        .bt = (const int32_t *)sw_cpu_ptr(p->block_tables),
        .acc = (float *)scratch,
        .simd = cb->simd,
        .attend = NULL,
        .q3d = !(q->ne[0] == hd * p->n_head && q->ne[2] == 1),
        .out3d = !(out->ne[0] == hd * p->n_head && out->ne[2] == 1),
    };
    /* the set's own loop where head_dim suits it, else AVX2's (hd % 8), else
     * the generic loop */
    if (cb->k->attend && hd % cb->k->attend_hd == 0)
        c.attend = cb->k->attend;
    else if (cb->simd && hd % 8 == 0)
        c.attend = sw_cpu_attend_avx2;
    int32_t *tok_seq = (int32_t *)(scratch + (size_t)nth * (size_t)hd * sizeof(float));
    c.seq_start = (const int32_t *)sw_cpu_ptr(p->seq_start);
    sw_status st = check_layout(p, c.seq_start, c.pos, c.bt, T, k_cache->ne[3], tok_seq, err);
    if (st != SW_OK) return st;
    c.tok_seq = tok_seq;
    sw_threadpool_run(cb->pool, attn_task, &c, T * p->n_head);
    return SW_OK;
}
