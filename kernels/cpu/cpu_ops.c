/* cpu_ops.c — the CPU backend's small ops: get_rows, rms_norm, rope, kv_write,
 * and the elementwise ones (add, swiglu, geglu, scale, softcap), and the fused
 * add_rms_norm and rope_kv_write (the same arithmetic as their sequences).
 * Each is cut into tasks (a row, a token, a row segment) that
 * the thread pool hands out. Shapes and types were validated by the sw_be_*
 * wrappers; the checks here are the data-dependent ones (ids, slots). */
#include <inttypes.h>
#include <stdlib.h>

#include "cpu_internal.h"

static inline sw_cpu_backend *cpu(sw_backend *be) {
    return (sw_cpu_backend *)be;
}

static void run(sw_backend *be, sw_tp_fn fn, void *ctx, int64_t n_tasks) {
    sw_threadpool_run(cpu(be)->pool, fn, ctx, n_tasks);
}

/* Row r of a tensor whose rows are counted over ne[1..3]. */
static inline uint8_t *flat_row(const sw_tensor *t, int64_t r) {
    int64_t i1 = r % t->ne[1], i23 = r / t->ne[1];
    return sw_cpu_row(t, i1, i23 % t->ne[2], i23 / t->ne[2]);
}

static inline int64_t n_rows(const sw_tensor *t) {
    return t->ne[1] * t->ne[2] * t->ne[3];
}

/* ------------------------------------------------------------- get_rows -- */

typedef struct {
    const sw_tensor *table, *out;
    const int32_t *ids;
    /* a packed table (cpu_pack.c): its rows are unpacked into tmp first */
    const sw_cpu_packed *pk;
    int64_t r0;   /* row of the packed tensor that is row 0 of table */
    uint8_t *tmp; /* [pool slots][row bytes] */
} get_rows_ctx;

static void get_rows_task(void *p, int64_t t, int slot) {
    get_rows_ctx *c = p;
    int64_t n = c->table->ne[0];
    const uint8_t *src = sw_cpu_row(c->table, c->ids[t], 0, 0);
    float *dst = (float *)sw_cpu_row(c->out, t, 0, 0);
    if (c->pk && c->r0 + c->ids[t] < c->pk->Np) {
        uint8_t *row = c->tmp + (size_t)slot * c->pk->row_bytes;
        sw_cpu_pack_unpack_row(c->pk, (const uint8_t *)c->table->buf->data + c->pk->off,
                               c->r0 + c->ids[t], row);
        src = row;
    }
    if (c->table->type == SW_TYPE_F32)
        memmove(dst, src, (size_t)n * sizeof(float)); /* table may be an activation */
    else
        sw_dequantize_row(c->table->type, src, dst, n, NULL); /* type checked up front */
}

sw_status sw_cpu_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                          sw_tensor *out, sw_err *err) {
    const int32_t *id = (const int32_t *)sw_cpu_ptr(ids);
    int64_t T = out->ne[1];
    for (int64_t t = 0; t < T; t++)
        if (id[t] < 0 || id[t] >= table->ne[1])
            return sw_err_set(err, SW_E_RANGE,
                              "get_rows: ids[%" PRId64 "] = %d outside table of %" PRId64 " rows",
                              t, id[t], table->ne[1]);
    if (table->type != SW_TYPE_F32) {
        /* let sw_dequantize_row name an unsupported type once, not per row */
        const sw_type_traits *tr = sw_type_get((uint32_t)table->type);
        if (!tr || !tr->can_dequantize)
            return sw_err_set(err, SW_E_UNSUPPORTED, "get_rows: cannot dequantize %s",
                              sw_type_name((uint32_t)table->type));
    }
    get_rows_ctx c = {table, out, id, sw_cpu_pack_find(table->buf, table->offset), 0, NULL};
    if (c.pk) {
        c.r0 = (int64_t)((table->offset - c.pk->off) / c.pk->row_bytes);
        size_t need = (size_t)be->n_threads * c.pk->row_bytes;
        c.tmp = sw_cpu_scratch(cpu(be), need);
        if (!c.tmp) return sw_err_set(err, SW_E_NOMEM, "get_rows: cannot allocate %zu bytes", need);
    }
    run(be, get_rows_task, &c, T);
    return SW_OK;
}

/* ------------------------------------------------------------- rms_norm -- */

typedef struct {
    const sw_tensor *x, *out;
    const float *w;
    float eps;
    sw_cpu_rms_fn row;
} rms_ctx;

void sw_cpu_rms_row(const float *x, const float *w, float *y, int64_t n, float eps) {
    /* sum of squares in double: no cancellation (all terms >= 0), so double
     * makes it exact to ~1e-16 for any row length, and the adds cost little */
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = sw_cpu_rms_scale(ss, n, eps);
    /* (x * scale) * w in float, as ggml's rms_norm followed by mul */
    for (int64_t i = 0; i < n; i++)
        y[i] = (x[i] * scale) * w[i];
}

static void rms_task(void *p, int64_t r, int slot) {
    (void)slot;
    rms_ctx *c = p;
    c->row((const float *)flat_row(c->x, r), c->w, (float *)flat_row(c->out, r), c->x->ne[0],
           c->eps);
}

sw_status sw_cpu_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                          sw_tensor *out, sw_err *err) {
    (void)err;
    rms_ctx c = {x, out, (const float *)sw_cpu_ptr(w), eps, cpu(be)->k->rms};
    run(be, rms_task, &c, n_rows(x));
    return SW_OK;
}

/* ----------------------------------------- encoder ops: layer_norm, gelu -- */

typedef struct {
    const sw_tensor *x, *out;
    const float *w, *b; /* b may be NULL */
    float eps;
} ln_ctx;

static void ln_task(void *p, int64_t r, int slot) {
    (void)slot;
    ln_ctx *c = p;
    int64_t n = c->x->ne[0];
    const float *x = (const float *)flat_row(c->x, r);
    float *y = (float *)flat_row(c->out, r);
    /* two passes in double: the mean, then the squared deviations from it
     * (no cancellation, unlike E[x^2] - E[x]^2) */
    double sum = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)x[i];
    double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mean;
        ss += d * d;
    }
    double scale = 1.0 / sqrt(ss / (double)n + (double)c->eps);
    /* the deviation in double too: a float mean would round away the spread
     * of a row with a large common offset */
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)(((double)x[i] - mean) * scale) * c->w[i] + (c->b ? c->b[i] : 0.0f);
}

sw_status sw_cpu_layer_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                            const sw_tensor *b, float eps, sw_tensor *out, sw_err *err) {
    (void)err;
    ln_ctx c = {x, out, (const float *)sw_cpu_ptr(w), b ? (const float *)sw_cpu_ptr(b) : NULL,
                eps};
    run(be, ln_task, &c, n_rows(x));
    return SW_OK;
}

typedef struct {
    const sw_tensor *x, *out;
} gelu_ctx;

static void gelu_task(void *p, int64_t r, int slot) {
    (void)slot;
    gelu_ctx *c = p;
    int64_t n = c->x->ne[0];
    const float *x = (const float *)flat_row(c->x, r);
    float *y = (float *)flat_row(c->out, r);
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

sw_status sw_cpu_gelu(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err) {
    (void)err;
    gelu_ctx c = {x, out};
    run(be, gelu_task, &c, n_rows(x));
    return SW_OK;
}

/* add_rms_norm: the add's float sums into x, then the kernel set's rms row on
 * them: the very arithmetic of add followed by rms_norm. */
typedef struct {
    const sw_tensor *x, *h, *out;
    const float *w;
    float eps;
    sw_cpu_rms_fn row;
} add_rms_ctx;

static void add_rms_task(void *p, int64_t r, int slot) {
    (void)slot;
    add_rms_ctx *c = p;
    int64_t n = c->x->ne[0];
    float *x = (float *)flat_row(c->x, r);
    const float *h = (const float *)flat_row(c->h, r);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] + h[i];
    c->row(x, c->w, (float *)flat_row(c->out, r), n, c->eps);
}

sw_status sw_cpu_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h,
                              const sw_tensor *w, float eps, sw_tensor *out, sw_err *err) {
    (void)err;
    add_rms_ctx c = {x, h, out, (const float *)sw_cpu_ptr(w), eps, cpu(be)->k->rms};
    run(be, add_rms_task, &c, n_rows(x));
    return SW_OK;
}

/* ----------------------------------------------------------------- rope -- */

typedef struct {
    const sw_tensor *x, *x2;  /* rotated in place; x2 (rope_kv_write's k) into tmp */
    const int32_t *pos;
    const sw_rope_params *p;
    const float *ff;  /* [n_dims/2] or NULL */
    double *inv_freq; /* [n_dims/2]: freq_scale * base^(-2i/n_dims) / ff[i] */
    float *cs;        /* [n_threads][n_dims]: cos, sin of the current token */
    /* rope_kv_write: v, the caches, the slots, and per thread a row of k */
    const sw_tensor *v, *k_cache, *v_cache;
    const int32_t *slots;
    float *tmp;       /* [n_threads][head_dim * n_heads of x2] */
    sw_cpu_to_f16_fn to_f16;
} rope_ctx;

/* cos, sin of token t's angles into cs. */
static void rope_angles(const rope_ctx *c, int64_t t, float *cs) {
    int64_t half = c->p->n_dims / 2;
    /* theta in double and cos/sin in double, rounded once to float: ggml
     * builds theta by repeated float multiplication, which differs from this
     * by its own rounding (~1e-7 relative per step, growing with i) */
    for (int64_t i = 0; i < half; i++) {
        double theta = (double)c->pos[t] * c->inv_freq[i];
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

/* Rotate the head_dim values at src into dst (may be src). */
static void rope_head(const rope_ctx *c, const float *cs, const float *src, float *dst) {
    int64_t half = c->p->n_dims / 2;
    if (c->p->mode == 2) { /* NeoX: pairs (i, i + n_dims/2) */
        for (int64_t i = 0; i < half; i++) {
            float a = src[i], b = src[i + half], co = cs[2 * i], si = cs[2 * i + 1];
            dst[i] = a * co - b * si;
            dst[i + half] = a * si + b * co;
        }
    } else { /* adjacent pairs (2i, 2i+1) */
        for (int64_t i = 0; i < half; i++) {
            float a = src[2 * i], b = src[2 * i + 1], co = cs[2 * i], si = cs[2 * i + 1];
            dst[2 * i] = a * co - b * si;
            dst[2 * i + 1] = a * si + b * co;
        }
    }
}

/* Token t's angles into this thread's cs; x's heads of t rotated in place. */
static float *rope_token(rope_ctx *c, int64_t t, int slot) {
    float *cs = c->cs + (size_t)slot * (size_t)c->p->n_dims;
    rope_angles(c, t, cs);
    for (int64_t h = 0; h < c->x->ne[1]; h++) {
        float *v = (float *)sw_cpu_row(c->x, h, t, 0);
        rope_head(c, cs, v, v);
    }
    return cs;
}

static void rope_task(void *p, int64_t t, int slot) { rope_token(p, t, slot); }

/* Scratch and angle tables of a rope, with tmp_floats per thread besides. */
static sw_status rope_setup(sw_backend *be, rope_ctx *c, const sw_rope_params *p,
                            int64_t tmp_floats, sw_err *err) {
    int nth = be->n_threads;
    int64_t half = p->n_dims / 2;
    size_t need = (size_t)half * sizeof(double) +
                  (size_t)nth * ((size_t)p->n_dims + (size_t)tmp_floats) * sizeof(float);
    uint8_t *scratch = sw_cpu_scratch(cpu(be), need);
    if (!scratch) return sw_err_set(err, SW_E_NOMEM, "rope: cannot allocate %zu bytes", need);
    c->p = p;
    c->inv_freq = (double *)scratch;
    c->cs = (float *)(scratch + (size_t)half * sizeof(double));
    c->tmp = c->cs + (size_t)nth * (size_t)p->n_dims;
    c->ff = p->freq_factors ? (const float *)sw_cpu_ptr(p->freq_factors) : NULL;
    for (int64_t i = 0; i < half; i++) {
        double f = (double)p->freq_scale * pow((double)p->freq_base, -2.0 * (double)i / p->n_dims);
        c->inv_freq[i] = c->ff ? f / (double)c->ff[i] : f;
    }
    return SW_OK;
}

sw_status sw_cpu_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos, const sw_rope_params *p,
                      sw_err *err) {
    rope_ctx c = {.x = x, .pos = (const int32_t *)sw_cpu_ptr(pos)};
    sw_status st = rope_setup(be, &c, p, 0, err);
    if (st != SW_OK) return st;
    run(be, rope_task, &c, x->ne[2]);
    return SW_OK;
}

/* ------------------------------------------------------------- kv_write -- */

typedef struct {
    const sw_tensor *src[2], *cache[2];
    const int32_t *slots;
    sw_cpu_to_f16_fn to_f16;
} kv_ctx;

void sw_cpu_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = sw_cpu_f32_to_f16(x[i]);
}

/* One token's heads x[head_dim * n_head_kv] into the cache at slot. */
static void kv_store_row(const float *x, const sw_tensor *cache, int32_t slot,
                         sw_cpu_to_f16_fn to_f16) {
    int64_t hd = cache->ne[0], nkv = cache->ne[1], bs = cache->ne[2];
    for (int64_t h = 0; h < nkv; h++) {
        uint8_t *dst = sw_cpu_row(cache, h, slot % bs, slot / bs);
        const float *xh = x + h * hd;
        if (cache->type == SW_TYPE_F32)
            memcpy(dst, xh, (size_t)hd * sizeof(float));
        else
            to_f16(xh, (uint16_t *)dst, hd);
    }
}

static void kv_task(void *p, int64_t t, int slot) {
    (void)slot;
    kv_ctx *c = p;
    for (int j = 0; j < 2; j++)
        kv_store_row((const float *)sw_cpu_row(c->src[j], t, 0, 0), c->cache[j], c->slots[t],
                     c->to_f16);
}

/* The slots a kv write uses, checked against the cache (named after op). */
static sw_status check_slots(const char *op, const sw_tensor *slots, int64_t T,
                             const sw_tensor *cache, sw_err *err) {
    const int32_t *sl = (const int32_t *)sw_cpu_ptr(slots);
    int64_t cap = cache->ne[2] * cache->ne[3];
    for (int64_t t = 0; t < T; t++)
        if (sl[t] < 0 || sl[t] >= cap)
            return sw_err_set(err, SW_E_RANGE,
                              "%s: slots[%" PRId64 "] = %d outside a cache of %" PRId64 " slots", op,
                              t, sl[t], cap);
    return SW_OK;
}

sw_status sw_cpu_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                          sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                          sw_err *err) {
    sw_status st = check_slots("kv_write", slots, k->ne[1], k_cache, err);
    if (st != SW_OK) return st;
    kv_ctx c = {{k, v}, {k_cache, v_cache}, (const int32_t *)sw_cpu_ptr(slots), cpu(be)->k->to_f16};
    run(be, kv_task, &c, k->ne[1]);
    return SW_OK;
}

/* rope_kv_write, one token: q rotated in place; k rotated into this thread's
 * row (k itself is left as it was); that row and v stored at the token's slot. */
static void rope_kv_task(void *p, int64_t t, int slot) {
    rope_ctx *c = p;
    const float *cs = rope_token(c, t, slot);
    int64_t hd = c->x2->ne[0], nkv = c->x2->ne[1];
    float *row = c->tmp + (size_t)slot * (size_t)(hd * nkv);
    for (int64_t h = 0; h < nkv; h++) {
        const float *k = (const float *)sw_cpu_row(c->x2, h, t, 0);
        memcpy(row + h * hd, k, (size_t)hd * sizeof(float)); /* dims past n_dims as they are */
        rope_head(c, cs, k, row + h * hd);
    }
    kv_store_row(row, c->k_cache, c->slots[t], c->to_f16);
    kv_store_row((const float *)sw_cpu_row(c->v, t, 0, 0), c->v_cache, c->slots[t], c->to_f16);
}

sw_status sw_cpu_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                               const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                               sw_tensor *v_cache, const sw_tensor *slots, sw_err *err) {
    sw_status st = check_slots("rope_kv_write", slots, q->ne[2], k_cache, err);
    if (st != SW_OK) return st;
    rope_ctx c = {.x = q, .x2 = k, .pos = (const int32_t *)sw_cpu_ptr(pos), .v = v,
                  .k_cache = k_cache, .v_cache = v_cache,
                  .slots = (const int32_t *)sw_cpu_ptr(slots), .to_f16 = cpu(be)->k->to_f16};
    if ((st = rope_setup(be, &c, p, k->ne[0] * k->ne[1], err)) != SW_OK) return st;
    run(be, rope_kv_task, &c, q->ne[2]);
    return SW_OK;
}

/* ---------------------------------------------------------- elementwise -- */

typedef enum { EW_ADD, EW_GLU, EW_SCALE, EW_SOFTCAP } ew_kind;

typedef struct {
    const sw_tensor *a, *b, *out; /* b: NULL for the unary kinds */
    ew_kind kind;
    sw_cpu_swiglu_fn glu; /* EW_GLU: the kernel set's swiglu or geglu row */
    float f;              /* EW_SCALE: the factor; EW_SOFTCAP: the cap */
} ew_ctx;

void sw_cpu_swiglu_row(const float *g, const float *u, float *y, int64_t n) {
    /* silu(g) = g * sigmoid(g); for g -> -inf expf overflows to inf and the
     * quotient is -0, the right limit */
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void sw_cpu_geglu_row(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = sw_cpu_gelu_tanh(g[i]) * u[i];
}

/* Rows are cut into segments so that one long row (decode: T = 1, n_ff
 * elements) still spreads over the threads. */
#define EW_SEG 4096

static void ew_task(void *p, int64_t task, int slot) {
    (void)slot;
    ew_ctx *c = p;
    int64_t n = c->a->ne[0], nseg = (n + EW_SEG - 1) / EW_SEG;
    int64_t r = task / nseg, i0 = (task % nseg) * EW_SEG, i1 = SW_MIN(n, i0 + EW_SEG);
    const float *a = (const float *)flat_row(c->a, r);
    const float *b = c->b ? (const float *)flat_row(c->b, r) : NULL;
    float *y = (float *)flat_row(c->out, r);
    const float f = c->f;
    switch (c->kind) {
    case EW_ADD:
        for (int64_t i = i0; i < i1; i++)
            y[i] = a[i] + b[i];
        break;
    case EW_GLU:
        c->glu(a + i0, b + i0, y + i0, i1 - i0);
        break;
    case EW_SCALE:
        for (int64_t i = i0; i < i1; i++)
            y[i] = a[i] * f;
        break;
    case EW_SOFTCAP:
        for (int64_t i = i0; i < i1; i++)
            y[i] = f * tanhf(a[i] / f);
        break;
    }
}

static sw_status ew_run(sw_backend *be, ew_kind kind, sw_cpu_swiglu_fn glu, const sw_tensor *a,
                        const sw_tensor *b, float f, sw_tensor *out) {
    ew_ctx c = {a, b, out, kind, glu, f};
    run(be, ew_task, &c, n_rows(a) * ((a->ne[0] + EW_SEG - 1) / EW_SEG));
    return SW_OK;
}

sw_status sw_cpu_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                        sw_err *err) {
    (void)err;
    return ew_run(be, EW_GLU, cpu(be)->k->swiglu, gate, up, 0.0f, out);
}

sw_status sw_cpu_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                       sw_err *err) {
    (void)err;
    return ew_run(be, EW_GLU, cpu(be)->k->geglu, gate, up, 0.0f, out);
}

sw_status sw_cpu_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                     sw_err *err) {
    (void)err;
    return ew_run(be, EW_ADD, NULL, a, b, 0.0f, out);
}

sw_status sw_cpu_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err) {
    (void)err;
    return ew_run(be, EW_SCALE, NULL, x, NULL, s, out);
}

sw_status sw_cpu_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                         sw_err *err) {
    (void)err;
    return ew_run(be, EW_SOFTCAP, NULL, x, NULL, cap, out);
}
