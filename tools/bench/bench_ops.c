/* bench_ops.c — the op cases of `spillway-bench kernels`: every op of the
 * decode step on the backend, through the backend interface, with the bytes
 * it moves and the operations it does, and how it is timed.
 *
 * Bytes: every operand counted once, read or written (weights, activations,
 * the KV positions attention reads, the rows get_rows gathers); index tensors
 * (positions, slots, block tables) are not counted. Ops: 2 per multiply-add
 * (int8 or float), plus the nominal arithmetic of the elementwise ops
 * (rms_norm 4, rope 3 per rotated element, swiglu 4, geglu 9, add 1; the
 * fused ops the sum of their parts: add_rms_norm 5); exp, tanh, sin and cos
 * are not counted. Both are lower bounds of what the kernel really does,
 * so GB/s and Gop/s never flatter it.
 *
 * Cold operands: on the CPU every counted operand is flushed from every cache
 * level (bk_cpu_flush) before each timed call, and each call is timed alone.
 * On GPUs each step holds many calls, each on its own copy of the operands,
 * cycling through copies that total ctx->cold_bytes (so each call finds its
 * operands evicted by the others), unless that would take longer than
 * ctx->step_budget (slow devices such as lavapipe): the row then records the
 * smaller working set, and is compared with a cache-level probe. --hot: one
 * copy, reused, no flush. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kernels.h"

#define MAX_SLOTS 6
#define MAX_BUFS 12
#define BLOCK 16 /* KV block size, as the engine's default */

static const char *const k_op_names[BK_OP_COUNT] = {
    "matmul", "attention", "rms_norm", "rope",         "kv_write",     "get_rows",
    "add",    "swiglu",    "geglu",    "add_rms_norm", "rope_kv_write"};

const char *bk_op_name(bk_op op) {
    return op < BK_OP_COUNT ? k_op_names[op] : "?";
}

typedef struct bk_case bk_case;
typedef sw_status (*case_call)(sw_backend *be, bk_case *c, int copy, sw_err *err);

struct bk_case {
    const bk_spec *s;
    int n_slots, copies;
    sw_tensor *t; /* [copies][n_slots] operands */
    sw_buffer *bufs[MAX_BUFS];
    int n_bufs;
    sw_tensor seq_start, pos, tables, table; /* shared index tensors; get_rows' whole table */
    sw_tensor slots;                         /* rope_kv_write: the cache slots */
    sw_attn_params ap;
    sw_rope_params rp;
    case_call call;
};

static sw_tensor *slot(bk_case *c, int copy, int s) {
    return &c->t[copy * c->n_slots + s];
}

/* ---- fills ---------------------------------------------------------------------- */

static uint64_t g_rng = 0x2545f4914f6cdd1dULL;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* Upload n bytes at off of buf from a repeating pattern of `pat` bytes. */
static sw_status upload_pattern(sw_backend *be, sw_buffer *buf, size_t off, size_t n,
                                const uint8_t *pat, size_t pat_n, sw_err *err) {
    for (size_t done = 0; done < n;) {
        size_t k = SW_MIN(n - done, pat_n);
        sw_status st = sw_be_upload(be, buf, off + done, pat, k, err);
        if (st != SW_OK) return st;
        done += k;
    }
    return SW_OK;
}

/* Random values in [-1, 1] of type F32 or F16 for tensor t. */
static sw_status fill_random(sw_backend *be, const sw_tensor *t, sw_err *err) {
    enum { PAT = 1 << 18 }; /* floats: 1 MiB of F32 */
    static float *f32;
    static uint16_t *f16;
    if (!f32) {
        f32 = malloc(sizeof(float) * PAT);
        f16 = malloc(sizeof(uint16_t) * PAT);
        if (!f32 || !f16) {
            free(f32);
            free(f16);
            f32 = NULL;
            f16 = NULL;
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        }
        for (int i = 0; i < PAT; i++) {
            f32[i] = frand();
            f16[i] = sw_f32_to_f16(f32[i]);
        }
    }
    size_t n = sw_tensor_nbytes(t);
    if (t->type == SW_TYPE_F16)
        return upload_pattern(be, t->buf, t->offset, n, (const uint8_t *)f16,
                              sizeof(uint16_t) * PAT, err);
    return upload_pattern(be, t->buf, t->offset, n, (const uint8_t *)f32, sizeof(float) * PAT, err);
}

/* A weight matrix [K, rows] of `type`: one random row quantized and
 * replicated (the time does not depend on the values), uploaded the way the
 * engine loads weights (upload_weight: the CPU repacks) unless plain. */
static sw_status fill_weight(bk_ctx *x, const sw_tensor *t, sw_err *err) {
    const int64_t K = t->ne[0], rows = t->ne[1];
    const size_t row = sw_row_size(t->type, K), n = row * (size_t)rows;
    float *rf = malloc(sizeof(float) * (size_t)K);
    uint8_t *all = malloc(n);
    sw_status st = SW_OK;
    if (!rf || !all) st = sw_err_set(err, SW_E_NOMEM, "out of memory (%zu bytes of weights)", n);
    for (int64_t i = 0; st == SW_OK && i < K; i++)
        rf[i] = frand();
    if (st == SW_OK) st = sw_quantize_row(t->type, rf, all, K, err);
    for (int64_t r = 1; st == SW_OK && r < rows; r++)
        memcpy(all + (size_t)r * row, all, row);
    if (st == SW_OK)
        st = x->plain ? sw_be_upload(x->be, t->buf, t->offset, all, n, err)
                      : sw_be_upload_weight(x->be, t, all, err);
    free(rf);
    free(all);
    return st;
}

static sw_status upload_i32(sw_backend *be, const sw_tensor *t, const int32_t *v, sw_err *err) {
    return sw_be_upload(be, t->buf, t->offset, v, sizeof(int32_t) * (size_t)sw_tensor_nelements(t),
                        err);
}

/* ---- operands ------------------------------------------------------------------- */

static sw_status new_buf(bk_ctx *x, bk_case *c, size_t n, sw_buf_usage u, sw_buffer **out,
                         sw_err *err) {
    if (c->n_bufs == MAX_BUFS)
        return sw_err_set(err, SW_E_INTERNAL, "bench case: too many buffers");
    sw_status st = sw_be_buf_alloc(x->be, n, u, out, err);
    if (st == SW_OK) c->bufs[c->n_bufs++] = *out;
    return st;
}

typedef enum { FILL_NONE = 0, FILL_RANDOM, FILL_WEIGHT } fill_kind;

/* Operand `s` of every copy: a contiguous tensor, each copy in its own
 * 256-byte aligned span of one buffer, filled as asked. */
static sw_status operand(bk_ctx *x, bk_case *c, int s, sw_buf_usage u, fill_kind fill, sw_type type,
                         int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, sw_err *err) {
    sw_tensor proto = sw_tensor_make(NULL, 0, type, ne0, ne1, ne2, ne3);
    size_t nb = sw_tensor_nbytes(&proto);
    if (nb == 0)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "row length %lld is not a multiple of the %s block", (long long)ne0,
                          sw_type_name(type));
    const size_t stride = (nb + 255) / 256 * 256;
    sw_buffer *b = NULL;
    sw_status st = new_buf(x, c, stride * (size_t)c->copies, u, &b, err);
    for (int i = 0; st == SW_OK && i < c->copies; i++) {
        sw_tensor *t = slot(c, i, s);
        *t = sw_tensor_make(b, stride * (size_t)i, type, ne0, ne1, ne2, ne3);
        if (fill == FILL_RANDOM)
            st = fill_random(x->be, t, err);
        else if (fill == FILL_WEIGHT)
            st = fill_weight(x, t, err);
    }
    return st;
}

/* A shared I32 index tensor with the given values. */
static sw_status index_tensor(bk_ctx *x, bk_case *c, sw_tensor *t, const int32_t *v, int64_t n0,
                              int64_t n1, sw_err *err) {
    sw_buffer *b = NULL;
    sw_status st = new_buf(x, c, sizeof(int32_t) * (size_t)(n0 * n1), SW_BUF_HOST_VISIBLE, &b, err);
    if (st != SW_OK) return st;
    *t = sw_tensor_make(b, 0, SW_TYPE_I32, n0, n1, 1, 1);
    return upload_i32(x->be, t, v, err);
}

/* ---- the ops -------------------------------------------------------------------- */

static sw_status call_matmul(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_matmul(be, slot(c, i, 0), slot(c, i, 1), NULL, slot(c, i, 2), err);
}
static sw_status call_attention(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_attention(be, slot(c, i, 0), slot(c, i, 2), slot(c, i, 3), &c->ap, slot(c, i, 1),
                           err);
}
static sw_status call_rms_norm(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_rms_norm(be, slot(c, i, 0), slot(c, i, 1), 1e-5f, slot(c, i, 2), err);
}
static sw_status call_rope(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_rope(be, slot(c, i, 0), &c->pos, &c->rp, err);
}
static sw_status call_kv_write(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_kv_write(be, slot(c, i, 0), slot(c, i, 1), slot(c, i, 2), slot(c, i, 3), &c->pos,
                          err);
}
static sw_status call_get_rows(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_get_rows(be, &c->table, slot(c, i, 1), slot(c, i, 2), err);
}
static sw_status call_add(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_add(be, slot(c, i, 0), slot(c, i, 1), slot(c, i, 2), err);
}
static sw_status call_swiglu(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_swiglu(be, slot(c, i, 0), slot(c, i, 1), slot(c, i, 2), err);
}
static sw_status call_geglu(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_geglu(be, slot(c, i, 0), slot(c, i, 1), slot(c, i, 2), err);
}
/* x = x + h in place: x grows by h (values in [-1, 1]) with every call, far
 * from any overflow over a row's calls; the time does not depend on it */
static sw_status call_add_rms_norm(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_add_rms_norm(be, slot(c, i, 0), slot(c, i, 1), slot(c, i, 2), 1e-5f, slot(c, i, 3),
                              err);
}
static sw_status call_rope_kv_write(sw_backend *be, bk_case *c, int i, sw_err *err) {
    return sw_be_rope_kv_write(be, slot(c, i, 0), slot(c, i, 1), slot(c, i, 2), &c->pos, &c->rp,
                               slot(c, i, 3), slot(c, i, 4), &c->slots, err);
}

static bool is_float_type(sw_type t) {
    return t == SW_TYPE_F32 || t == SW_TYPE_F16 || t == SW_TYPE_BF16;
}

/* Bytes, ops, the shape text and the per-copy operand bytes of a spec,
 * without allocating anything; SW_E_INVALID_ARG for a spec that makes no sense. */
static sw_status describe(const bk_spec *s, bk_row *r, size_t *per_copy, sw_err *err) {
    const double K = (double)s->K, T = (double)s->T, hd = s->head_dim, nh = s->n_head,
                 nkv = s->n_head_kv;
    const bool heads = s->op == BK_ATTENTION || s->op == BK_ROPE || s->op == BK_KV_WRITE ||
                       s->op == BK_ROPE_KV_WRITE;
    if (s->T < 1 || (!heads && s->K < 1))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: sizes must be positive", bk_op_name(s->op));
    r->int8 = false;
    switch (s->op) {
    case BK_MATMUL: {
        size_t row = sw_row_size(s->type, s->K);
        if (row == 0 || s->N < 1)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "matmul: K = %lld is not a multiple of the %s block", (long long)s->K,
                              sw_type_name(s->type));
        r->bytes = (double)row * (double)s->N + 4 * K * T + 4 * (double)s->N * T;
        r->written = 4 * (double)s->N * T;
        r->ops = 2 * K * (double)s->N * T;
        r->int8 = !is_float_type(s->type);
        snprintf(r->shape, sizeof r->shape, "K%lld N%lld T%lld", (long long)s->K, (long long)s->N,
                 (long long)s->T);
        break;
    }
    case BK_ATTENTION: {
        if (s->n_seqs < 1 || s->T % s->n_seqs || s->ctx < s->T / s->n_seqs || s->head_dim < 1 ||
            s->n_head < 1 || s->n_head_kv < 1 || s->n_head % s->n_head_kv)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "attention: bad shape (T %lld, %d sequences, ctx %d, heads %d/%d)",
                              (long long)s->T, s->n_seqs, s->ctx, s->n_head, s->n_head_kv);
        const double elem = (double)sw_row_size(s->type, 1), q_per = T / s->n_seqs;
        /* each query at position p reads positions 0..p: 2 * (p + 1) * nh * hd
         * multiply-adds; queries of a sequence sit at ctx - q_per .. ctx - 1 */
        double keys = 0;
        for (int64_t q = 0; q < (int64_t)q_per; q++)
            keys += (double)(s->ctx - (int64_t)q_per + q + 1);
        r->bytes = 2 * 4 * hd * nh * T + 2 * (double)s->n_seqs * s->ctx * nkv * hd * elem;
        r->written = 4 * hd * nh * T;
        r->ops = 4 * keys * (double)s->n_seqs * nh * hd;
        snprintf(r->shape, sizeof r->shape, "S%d ctx%d T%lld h%d/%d d%d", s->n_seqs, s->ctx,
                 (long long)s->T, s->n_head, s->n_head_kv, s->head_dim);
        break;
    }
    case BK_RMS_NORM:
        r->bytes = 8 * K * T + 4 * K;
        r->written = 4 * K * T;
        r->ops = 4 * K * T;
        snprintf(r->shape, sizeof r->shape, "n%lld T%lld", (long long)s->K, (long long)s->T);
        break;
    case BK_ROPE:
        if (s->head_dim < 2 || s->n_head < 1 || s->n_rot < 2 || s->n_rot > s->head_dim)
            return sw_err_set(err, SW_E_INVALID_ARG, "rope: bad shape");
        r->bytes = 8 * hd * nh * T;
        r->written = 4 * hd * nh * T;
        r->ops = 3 * (double)s->n_rot * nh * T;
        snprintf(r->shape, sizeof r->shape, "d%d h%d rot%d T%lld%s", s->head_dim, s->n_head,
                 s->n_rot, (long long)s->T, s->rope_mode == 2 ? " neox" : "");
        break;
    case BK_KV_WRITE:
        if (s->head_dim < 1 || s->n_head_kv < 1)
            return sw_err_set(err, SW_E_INVALID_ARG, "kv_write: bad shape");
        r->written = 2 * (double)sw_row_size(s->type, 1) * hd * nkv * T;
        r->bytes = 2 * 4 * hd * nkv * T + r->written;
        r->ops = 0;
        snprintf(r->shape, sizeof r->shape, "d%d h%d T%lld", s->head_dim, s->n_head_kv,
                 (long long)s->T);
        break;
    case BK_GET_ROWS: {
        size_t row = sw_row_size(s->type, s->K);
        if (row == 0)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "get_rows: n = %lld is not a multiple of the %s block",
                              (long long)s->K, sw_type_name(s->type));
        r->bytes = (double)row * T + 4 * K * T;
        r->written = 4 * K * T;
        r->ops = 0;
        snprintf(r->shape, sizeof r->shape, "n%lld T%lld", (long long)s->K, (long long)s->T);
        break;
    }
    case BK_ADD:
    case BK_SWIGLU:
    case BK_GEGLU:
        r->bytes = 12 * K * T;
        r->written = 4 * K * T;
        r->ops = (s->op == BK_ADD ? 1 : s->op == BK_SWIGLU ? 4 : 9) * K * T;
        snprintf(r->shape, sizeof r->shape, "n%lld T%lld", (long long)s->K, (long long)s->T);
        break;
    case BK_ADD_RMS_NORM: /* x read and written, h read, out written, w read */
        r->bytes = 16 * K * T + 4 * K;
        r->written = 8 * K * T;
        r->ops = 5 * K * T;
        snprintf(r->shape, sizeof r->shape, "n%lld T%lld", (long long)s->K, (long long)s->T);
        break;
    case BK_ROPE_KV_WRITE: {
        /* q read and written in place, k and v read, both caches written (what
         * k holds afterwards is unspecified: its write is not counted) */
        if (s->head_dim < 2 || s->n_head < 1 || s->n_head_kv < 1 || s->n_rot < 2 ||
            s->n_rot > s->head_dim)
            return sw_err_set(err, SW_E_INVALID_ARG, "rope_kv_write: bad shape");
        const double cache = 2 * (double)sw_row_size(s->type, 1) * hd * nkv * T;
        r->bytes = 8 * hd * nh * T + 8 * hd * nkv * T + cache;
        r->written = 4 * hd * nh * T + cache;
        r->ops = 3 * (double)s->n_rot * (nh + nkv) * T;
        snprintf(r->shape, sizeof r->shape, "d%d h%d/%d rot%d T%lld%s", s->head_dim, s->n_head,
                 s->n_head_kv, s->n_rot, (long long)s->T, s->rope_mode == 2 ? " neox" : "");
        break;
    }
    default:
        return sw_err_set(err, SW_E_INVALID_ARG, "unknown op %d", (int)s->op);
    }
    *per_copy = (size_t)r->bytes;
    return SW_OK;
}

/* Allocate and fill the operands of `copies` copies of spec s. */
static sw_status build(bk_ctx *x, bk_case *c, sw_err *err) {
    const bk_spec *s = c->s;
    const int64_t hd = s->head_dim, T = s->T;
    sw_status st = SW_OK;
    int32_t *v = NULL;
    switch (s->op) {
    case BK_MATMUL:
        c->n_slots = 3;
        c->call = call_matmul;
        break;
    case BK_ATTENTION:
    case BK_KV_WRITE:
        c->n_slots = 4;
        c->call = s->op == BK_ATTENTION ? call_attention : call_kv_write;
        break;
    case BK_ROPE:
        c->n_slots = 1;
        c->call = call_rope;
        break;
    case BK_ADD_RMS_NORM:
        c->n_slots = 4;
        c->call = call_add_rms_norm;
        break;
    case BK_ROPE_KV_WRITE:
        c->n_slots = 5;
        c->call = call_rope_kv_write;
        break;
    case BK_GEGLU:
        c->n_slots = 3;
        c->call = call_geglu;
        break;
    default:
        c->n_slots = 3;
        c->call = s->op == BK_RMS_NORM   ? call_rms_norm
                  : s->op == BK_GET_ROWS ? call_get_rows
                  : s->op == BK_ADD      ? call_add
                                         : call_swiglu;
    }
    c->t = calloc((size_t)c->copies * (size_t)c->n_slots, sizeof(sw_tensor));
    if (!c->t) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    const sw_buf_usage A = SW_BUF_COMPUTE;
    switch (s->op) {
    case BK_MATMUL:
        if ((st = operand(x, c, 0, SW_BUF_WEIGHTS, FILL_WEIGHT, s->type, s->K, s->N, 1, 1, err)) ||
            (st = operand(x, c, 1, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)) ||
            (st = operand(x, c, 2, A, FILL_RANDOM, SW_TYPE_F32, s->N, T, 1, 1, err)))
            return st;
        break;
    case BK_ATTENTION: {
        const int32_t S = s->n_seqs, q_per = (int32_t)(T / S), nbs = (s->ctx + BLOCK - 1) / BLOCK;
        const int64_t q = hd * s->n_head;
        if ((st = operand(x, c, 0, A, FILL_RANDOM, SW_TYPE_F32, q, T, 1, 1, err)) ||
            (st = operand(x, c, 1, A, FILL_RANDOM, SW_TYPE_F32, q, T, 1, 1, err)) ||
            (st = operand(x, c, 2, SW_BUF_KV, FILL_RANDOM, s->type, hd, s->n_head_kv, BLOCK,
                          (int64_t)S * nbs, err)) ||
            (st = operand(x, c, 3, SW_BUF_KV, FILL_RANDOM, s->type, hd, s->n_head_kv, BLOCK,
                          (int64_t)S * nbs, err)))
            return st;
        if (!(v = malloc(sizeof(int32_t) * (size_t)(S + 1 + T + (int64_t)S * nbs))))
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        int32_t *ss = v, *pos = v + S + 1, *bt = pos + T;
        for (int32_t i = 0; i <= S; i++)
            ss[i] = i * q_per;
        for (int64_t t = 0; t < T; t++)
            pos[t] = s->ctx - q_per + (int32_t)(t % q_per);
        for (int32_t i = 0; i < S * nbs; i++)
            bt[i] = i;
        if ((st = index_tensor(x, c, &c->seq_start, ss, S + 1, 1, err)) ||
            (st = index_tensor(x, c, &c->pos, pos, T, 1, err)) ||
            (st = index_tensor(x, c, &c->tables, bt, nbs, S, err)))
            break;
        c->ap = (sw_attn_params){.n_head = s->n_head,
                                 .n_head_kv = s->n_head_kv,
                                 .head_dim = s->head_dim,
                                 .scale = 1.0f / sqrtf((float)hd),
                                 .block_size = BLOCK,
                                 .n_seqs = S,
                                 .max_blocks = nbs,
                                 .max_ctx = s->ctx,
                                 .seq_start = &c->seq_start,
                                 .pos = &c->pos,
                                 .block_tables = &c->tables};
        break;
    }
    case BK_RMS_NORM:
        if ((st = operand(x, c, 0, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)) ||
            (st = operand(x, c, 1, A, FILL_RANDOM, SW_TYPE_F32, s->K, 1, 1, 1, err)) ||
            (st = operand(x, c, 2, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)))
            return st;
        break;
    case BK_ROPE:
        if ((st = operand(x, c, 0, A, FILL_RANDOM, SW_TYPE_F32, hd, s->n_head, T, 1, err)))
            return st;
        if (!(v = malloc(sizeof(int32_t) * (size_t)T)))
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        for (int64_t t = 0; t < T; t++)
            v[t] = 100 + (int32_t)t;
        st = index_tensor(x, c, &c->pos, v, T, 1, err);
        c->rp = (sw_rope_params){s->n_rot, s->rope_mode, 10000.0f, 1.0f, NULL};
        break;
    case BK_KV_WRITE: {
        const int64_t kv = hd * s->n_head_kv, nb = (T + BLOCK - 1) / BLOCK;
        if ((st = operand(x, c, 0, A, FILL_RANDOM, SW_TYPE_F32, kv, T, 1, 1, err)) ||
            (st = operand(x, c, 1, A, FILL_RANDOM, SW_TYPE_F32, kv, T, 1, 1, err)) ||
            (st = operand(x, c, 2, SW_BUF_KV, FILL_RANDOM, s->type, hd, s->n_head_kv, BLOCK, nb,
                          err)) ||
            (st = operand(x, c, 3, SW_BUF_KV, FILL_RANDOM, s->type, hd, s->n_head_kv, BLOCK, nb,
                          err)))
            return st;
        if (!(v = malloc(sizeof(int32_t) * (size_t)T)))
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        for (int64_t t = 0; t < T; t++)
            v[t] = (int32_t)t;
        st = index_tensor(x, c, &c->pos, v, T, 1, err); /* the slots */
        break;
    }
    case BK_GET_ROWS: {
        /* one table; copy i gathers its own T rows [i T, (i + 1) T) in a shuffled order */
        const int64_t rows = T * c->copies;
        const size_t row = sw_row_size(s->type, s->K);
        sw_buffer *b = NULL;
        if ((st = new_buf(x, c, row * (size_t)rows, SW_BUF_WEIGHTS, &b, err))) return st;
        c->table = sw_tensor_make(b, 0, s->type, s->K, rows, 1, 1);
        if ((st = fill_weight(x, &c->table, err))) return st;
        if ((st = operand(x, c, 1, SW_BUF_HOST_VISIBLE, FILL_NONE, SW_TYPE_I32, T, 1, 1, 1, err)) ||
            (st = operand(x, c, 2, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)))
            return st;
        if (!(v = malloc(sizeof(int32_t) * (size_t)T)))
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        for (int i = 0; i < c->copies && st == SW_OK; i++) {
            *slot(c, i, 0) = sw_tensor_rows(&c->table, i * T, T); /* what the call reads */
            for (int64_t t = 0; t < T; t++)
                v[t] = (int32_t)(i * T + t);
            for (int64_t t = T - 1; t > 0; t--) {
                int64_t j = (int64_t)((frand() + 1.0f) * 0.5f * (float)(t + 1)) % (t + 1);
                int32_t tmp = v[t];
                v[t] = v[j];
                v[j] = tmp;
            }
            st = upload_i32(x->be, slot(c, i, 1), v, err);
        }
        break;
    }
    case BK_ADD:
    case BK_SWIGLU:
    case BK_GEGLU:
        for (int k = 0; k < 3 && st == SW_OK; k++)
            st = operand(x, c, k, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err);
        break;
    case BK_ADD_RMS_NORM:
        if ((st = operand(x, c, 0, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)) ||
            (st = operand(x, c, 1, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)) ||
            (st = operand(x, c, 2, A, FILL_RANDOM, SW_TYPE_F32, s->K, 1, 1, 1, err)) ||
            (st = operand(x, c, 3, A, FILL_RANDOM, SW_TYPE_F32, s->K, T, 1, 1, err)))
            return st;
        break;
    case BK_ROPE_KV_WRITE: {
        const int64_t nb = (T + BLOCK - 1) / BLOCK;
        if ((st = operand(x, c, 0, A, FILL_RANDOM, SW_TYPE_F32, hd, s->n_head, T, 1, err)) ||
            (st = operand(x, c, 1, A, FILL_RANDOM, SW_TYPE_F32, hd, s->n_head_kv, T, 1, err)) ||
            (st = operand(x, c, 2, A, FILL_RANDOM, SW_TYPE_F32, hd * s->n_head_kv, T, 1, 1, err)) ||
            (st = operand(x, c, 3, SW_BUF_KV, FILL_RANDOM, s->type, hd, s->n_head_kv, BLOCK, nb,
                          err)) ||
            (st = operand(x, c, 4, SW_BUF_KV, FILL_RANDOM, s->type, hd, s->n_head_kv, BLOCK, nb,
                          err)))
            return st;
        if (!(v = malloc(2 * sizeof(int32_t) * (size_t)T)))
            return sw_err_set(err, SW_E_NOMEM, "out of memory");
        for (int64_t t = 0; t < T; t++) {
            v[t] = 100 + (int32_t)t; /* positions, as the rope row's */
            v[T + t] = (int32_t)t;   /* slots, as the kv_write row's */
        }
        if ((st = index_tensor(x, c, &c->pos, v, T, 1, err)) == SW_OK)
            st = index_tensor(x, c, &c->slots, v + T, T, 1, err);
        c->rp = (sw_rope_params){s->n_rot, s->rope_mode, 10000.0f, 1.0f, NULL};
        break;
    }
    default:
        break;
    }
    free(v);
    return st;
}

static void destroy(bk_ctx *x, bk_case *c) {
    for (int i = 0; i < c->n_bufs; i++)
        sw_be_buf_free(x->be, c->bufs[i]);
    free(c->t);
    c->t = NULL;
    c->n_bufs = 0;
}

/* ---- timing --------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double p = *(const double *)a, q = *(const double *)b;
    return (p > q) - (p < q);
}

/* Flush what copy i's call reads and writes: the operands counted in bytes. */
static void flush_copy(bk_ctx *x, bk_case *c, int i) {
    for (int k = 0; k < c->n_slots; k++) {
        const sw_tensor *t = slot(c, i, k);
        if (t->type == SW_TYPE_I32) continue; /* indices: not counted, left hot */
        const uint8_t *p = sw_be_host_ptr(x->be, t->buf);
        if (p) bk_cpu_flush(p + t->offset, sw_tensor_nbytes(t));
    }
}

/* CPU: each call timed alone, after a flush (unless hot). waits[r]: of the
 * time the process's threads were runnable during the call (on a CPU or
 * waiting for one), the share spent waiting, wait / (wait + CPU time), in
 * [0, 1] (on a shared machine a call longer than a time slice is often
 * preempted for tens of milliseconds); cpus[r]: their CPU seconds; -1 where
 * the scheduler does not say. */
static sw_status time_calls(bk_ctx *x, bk_case *c, double *times, double *waits, double *cpus,
                            sw_err *err) {
    sw_status st;
    for (int r = -2; r < x->reps; r++) {
        if (!x->hot) flush_copy(x, c, 0);
        double run0, wait0, run1, wait1;
        const bool known0 = bk_cpu_sched(&run0, &wait0);
        const double t0 = sw_time_s();
        if ((st = c->call(x->be, c, 0, err)) != SW_OK) return st;
        const double t = sw_time_s() - t0;
        const bool known = bk_cpu_sched(&run1, &wait1) && known0;
        if (r < 0) continue;
        times[r] = t;
        const double dw = SW_MAX(0.0, wait1 - wait0), dc = SW_MAX(0.0, run1 - run0);
        waits[r] = !known ? -1 : dw > 0 ? dw / (dw + dc) : 0;
        cpus[r] = known ? dc : -1;
    }
    return SW_OK;
}

/* GPUs: steps of per_step calls cycling over the copies; time per call. */
static sw_status time_steps(bk_ctx *x, bk_case *c, int per_step, int reps, double *times,
                            sw_err *err) {
    for (int r = -2; r < reps; r++) { /* two warm-up steps (CUDA: the eager run, the capture) */
        double t0 = sw_time_s();
        sw_status st = sw_be_begin(x->be, err);
        for (int i = 0; i < per_step && st == SW_OK; i++)
            st = c->call(x->be, c, i % c->copies, err);
        sw_status st2 = sw_be_end(x->be, err);
        if (st == SW_OK) st = st2;
        if (st != SW_OK) return st;
        if (r >= 0) times[r] = (sw_time_s() - t0) / per_step;
    }
    return SW_OK;
}

static bool clean_call(double waited) {
    return waited >= 0 && waited < 0.02;
}

sw_status bk_run(bk_ctx *x, const bk_spec *s, bk_row *row, sw_err *err) {
    memset(row, 0, sizeof *row);
    row->spec = *s;
    size_t per_copy = 0;
    sw_status st = describe(s, row, &per_copy, err);
    if (st != SW_OK) return st;
    double *times = calloc(3 * (size_t)x->reps, sizeof(double));
    if (!times) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    double *waits = times + x->reps, *cpus = waits + x->reps;
    for (int r = 0; r < x->reps; r++)
        waits[r] = cpus[r] = -1; /* GPUs: not measured */
    bk_case c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.copies = 1;
    int per_step = 1;
    if (x->kind == BK_CPU) {
        if ((st = build(x, &c, err)) == SW_OK) st = time_calls(x, &c, times, waits, cpus, err);
        row->working_set = x->hot ? per_copy : SIZE_MAX;
    } else {
        /* one copy first: how long one call takes decides how many copies fit a step */
        int want = x->hot ? 1
                          : (int)SW_MIN((size_t)x->max_per_step, (x->cold_bytes + per_copy - 1) /
                                                                     SW_MAX(per_copy, (size_t)1));
        want = SW_MAX(want, 1);
        if ((st = build(x, &c, err)) == SW_OK && want > 1) {
            double t1 = 0;
            st = time_steps(x, &c, 1, 1, &t1, err);
            if (st == SW_OK && t1 * want > x->step_budget)
                want = (int)SW_MAX(1.0, x->step_budget / SW_MAX(t1, 1e-9));
            if (st == SW_OK && want > 1) {
                destroy(x, &c);
                c.copies = want;
                st = build(x, &c, err);
            }
        }
        per_step = c.copies * SW_MAX(1, (x->min_per_step + c.copies - 1) / c.copies);
        if (st == SW_OK) st = time_steps(x, &c, per_step, x->reps, times, err);
        row->working_set = per_copy * (size_t)c.copies;
    }
    if (st == SW_OK) {
        /* best: the fastest undisturbed call (no thread waited for a CPU more
         * than 2 % of the time), else the fastest call; median: all calls */
        const int n = x->reps;
        int best = 0;
        row->clean = x->kind == BK_CPU ? 0 : -1;
        for (int r = 0; r < n; r++) {
            const bool cr = clean_call(waits[r]), cb = clean_call(waits[best]);
            if (row->clean >= 0) row->clean = waits[r] < 0 ? -1 : row->clean + cr;
            if ((cr && !cb) || (cr == cb && times[r] < times[best])) best = r;
        }
        row->t_best = times[best];
        row->waited = waits[best];
        qsort(cpus, (size_t)n, sizeof *cpus, cmp_double);
        row->cpu_med = cpus[0] < 0 ? -1
                       : n % 2     ? cpus[n / 2]
                                   : 0.5 * (cpus[n / 2 - 1] + cpus[n / 2]);
        qsort(times, (size_t)n, sizeof *times, cmp_double);
        row->t_med = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
        row->copies = c.copies;
        row->per_step = per_step;
    }
    destroy(x, &c);
    free(times);
    return st;
}

/* ---- the verdict ---------------------------------------------------------------- */

void bk_judge(const bk_ctx *x, bk_row *r) {
    const bk_peaks *pk = &x->peaks;
    /* the probe with the largest buffer not larger than the working set (the
     * smallest one if none is) */
    const bk_mem_probe *m = &pk->mem[0];
    for (int i = 0; i < pk->n_mem; i++)
        if (pk->mem[i].bytes <= r->working_set) m = &pk->mem[i];
    r->level = m;
    /* A row reading R and writing W bytes cannot read faster than the read-only
     * stream, nor move bytes faster than the best probe of any mix */
    const double best = SW_MAX(m->read_gbps, SW_MAX(m->copy_gbps, m->add_gbps)),
                 rd = r->bytes - r->written;
    r->peak_gbps = m->read_gbps > 0 && rd > 0 ? SW_MIN(best, m->read_gbps * r->bytes / rd) : best;
    /* A CPU matmul row is also judged against a read of its own bytes right
     * after it (read_same): the probe's figure is a whole pass of a big
     * buffer, and one call of the row's length, at its best, can stream a
     * little faster (seen here: Q4_0 decode at 100-105 % of the pass). The
     * peak is the better of the two, so neither flatters the row. */
    r->peak_same = r->read_same > 0 && r->bytes / r->read_same * 1e-9 > r->peak_gbps;
    if (r->peak_same) r->peak_gbps = r->bytes / r->read_same * 1e-9;
    bk_compute k;
    if (x->kind == BK_CPU)
        k = r->int8 ? BK_C_INT8 : BK_C_F32;
    else if (x->kind == BK_CUDA && r->int8 && pk->gops[BK_C_GEMM_I8] > 0)
        k = BK_C_GEMM_I8;
    else
        k = BK_C_GEMM_F16;
    r->peak_compute = k;
    r->peak_gops = pk->gops[k];
    r->gbps = r->bytes / r->t_best * 1e-9;
    r->gops = r->ops / r->t_best * 1e-9;
    r->ai = r->bytes > 0 ? r->ops / r->bytes : 0;
    r->ridge = r->peak_gbps > 0 ? r->peak_gops / r->peak_gbps : 0;
    r->compute_bound = r->ops > 0 && r->peak_gops > 0 && r->ai >= r->ridge;
    if (r->compute_bound)
        r->pct = 100.0 * r->gops / r->peak_gops;
    else
        r->pct = r->peak_gbps > 0 ? 100.0 * r->gbps / r->peak_gbps : 0;
    /* one thread: its CPU time is the kernel's own time, whatever the machine
     * ran meanwhile (with more threads it would count the pool's spinning) */
    r->pct_cpu = x->kind == BK_CPU && x->threads == 1 && r->cpu_med > 0
                     ? r->pct * r->t_best / r->cpu_med
                     : -1;
}
