/* cpu_matmul.c — out[N, T] = W[K, N]^T x[K, T] (+ bias) on the CPU.
 *
 * Quantized weights: x is quantized once per call to 8 bits (sw_cpu_q8 blocks
 * of 32, or sw_block_q8_K blocks of 256 for the K-quants) and every output is
 * an integer dot product per block, scaled in float. Float weights (F32, F16,
 * BF16) use float dot products against x directly.
 *
 * Work split: the N output rows are cut into chunks of SW_MM_ROWS, one pool
 * task each, taken dynamically (a thread slowed by another process on a
 * shared machine does not hold the others up). Within a chunk, tokens go
 * in tiles of up to SW_CPU_MAX_COLS columns: each weight row is read once per
 * tile and its unpacked blocks are dotted with all the tile's columns, and the
 * chunk's rows (SW_MM_ROWS x row bytes, a few tens of KB) stay in L1/L2 across
 * the T / 4 tiles, so prefill is compute-bound rather than weight-bound.
 *
 * Packed weights (the types in cpu_pack.c's table, uploaded with upload_weight
 * on a backend whose kernel set packs, see cpu_pack.c) go through the set's
 * R-row kernels instead (R = 8 for AVX2 and AVX-VNNI, 16 for AVX-512), group
 * by group, in column tiles of the set's pack_cols, with the plain row kernel
 * for the N % R tail. */
#include <inttypes.h>
#include <stdlib.h>

#include "cpu_internal.h"

#define SW_MM_ROWS 16

/* K is cut into chunks whose activation slice for a full tile of columns
 * (SW_CPU_MAX_COLS x chunk) fits in this many bytes, so that it stays in L1
 * while the chunk's rows stream past; otherwise every row re-reads its x from
 * L2 and prefill becomes L2-bound (K = 4096 f32: 64 KiB per tile). */
#define SW_MM_X_BYTES (16 * 1024)

typedef struct {
    const sw_tensor *w, *out;
    const float *bias;
    const uint8_t *xq; /* column t at xq + t * xs */
    size_t xs;
    sw_cpu_dot_fn dot;
    int64_t K, N, T;
    int64_t kc;    /* K chunk: K, or a multiple of 256 dividing the work */
    int64_t w_blk; /* weight elements per block, and bytes per block */
    size_t w_tsize;
    double x_bytes_per_k; /* activation bytes per element of K */
    /* packed weights (cpu_pack.c): NULL pk = plain rows */
    const sw_cpu_packed *pk;
    const uint8_t *pbase; /* first byte of the packed tensor */
    int64_t r0;           /* row of the packed tensor that is row 0 of w (multiple of R) */
    sw_cpu_pack_fn pfn;
    int pcols;            /* column tile of pfn */
    int64_t chunk; /* rows per pool task, a multiple of SW_MM_ROWS */
} mm_ctx;

/* A chunk of rows of a packed weight: whole groups of R go through the packed
 * kernel, rows past the last group (the plain tail) through the row kernel
 * (at most SW_CPU_MAX_COLS columns a call). */
static void mm_task_packed(mm_ctx *c, int64_t n0, int64_t n1) {
    float res[SW_CPU_PK_MAX_COLS * 16];
    size_t rb = c->pk->row_bytes;
    int R = c->pk->R;
    for (int64_t t0 = 0; t0 < c->T; t0 += c->pcols) {
        int nc = (int)SW_MIN((int64_t)c->pcols, c->T - t0);
        const uint8_t *xt = c->xq + (size_t)t0 * c->xs;
        for (int64_t n = n0; n < n1;) {
            int64_t a = c->r0 + n, nr;
            if (a < c->pk->Np) { /* a is a multiple of R here */
                c->pfn(c->K, c->pbase + (size_t)a * rb, xt, c->xs, nc, res);
                nr = SW_MIN((int64_t)R, n1 - n);
                for (int j = 0; j < nc; j++) {
                    float *o = (float *)sw_cpu_row(c->out, t0 + j, 0, 0) + n;
                    for (int64_t r = 0; r < nr; r++)
                        o[r] = res[j * R + r] + (c->bias ? c->bias[n + r] : 0.0f);
                }
            } else {
                nr = 1;
                for (int j0 = 0; j0 < nc; j0 += SW_CPU_MAX_COLS) {
                    int nj = SW_MIN(SW_CPU_MAX_COLS, nc - j0);
                    c->dot(c->K, c->pbase + (size_t)a * rb, xt + (size_t)j0 * c->xs, c->xs, nj,
                           res);
                    for (int j = 0; j < nj; j++)
                        ((float *)sw_cpu_row(c->out, t0 + j0 + j, 0, 0))[n] =
                            res[j] + (c->bias ? c->bias[n] : 0.0f);
                }
            }
            n += nr;
        }
    }
}

/* Rows [n0, n1) (at most SW_MM_ROWS) of plain weights. */
static void mm_rows(const mm_ctx *c, int64_t n0, int64_t n1) {
    float res[SW_CPU_MAX_COLS], part[SW_MM_ROWS][SW_CPU_MAX_COLS];
    for (int64_t t0 = 0; t0 < c->T; t0 += SW_CPU_MAX_COLS) {
        int nc = (int)SW_MIN((int64_t)SW_CPU_MAX_COLS, c->T - t0);
        const uint8_t *xt = c->xq + (size_t)t0 * c->xs;
        for (int64_t k0 = 0; k0 < c->K; k0 += c->kc) {
            int64_t kl = SW_MIN(c->kc, c->K - k0);
            size_t woff = (size_t)(k0 / c->w_blk) * c->w_tsize;
            size_t xoff = (size_t)((double)k0 * c->x_bytes_per_k); /* whole blocks: exact */
            for (int64_t n = n0; n < n1; n++) {
                c->dot(kl, sw_cpu_row(c->w, n, 0, 0) + woff, xt + xoff, c->xs, nc, res);
                for (int j = 0; j < nc; j++)
                    part[n - n0][j] = k0 == 0 ? res[j] : part[n - n0][j] + res[j];
            }
        }
        for (int64_t n = n0; n < n1; n++) {
            float b = c->bias ? c->bias[n] : 0.0f;
            for (int j = 0; j < nc; j++)
                ((float *)sw_cpu_row(c->out, t0 + j, 0, 0))[n] = part[n - n0][j] + b;
        }
    }
}

static void mm_task(void *p, int64_t ch, int slot) {
    (void)slot;
    mm_ctx *c = p;
    int64_t n0 = ch * c->chunk, n1 = SW_MIN(c->N, n0 + c->chunk);
    if (c->pk) {
        mm_task_packed(c, n0, n1);
        return;
    }
    for (int64_t n = n0; n < n1; n += SW_MM_ROWS)
        mm_rows(c, n, SW_MIN(n1, n + SW_MM_ROWS));
}

typedef struct {
    const sw_tensor *x;
    uint8_t *xq;
    size_t xs;
    sw_cpu_act act;
    const sw_cpu_kernels *k;
    int32_t neg_off; /* -o: the sums the packed kernels want (q8_offset_sum), or 1 */
} quant_ctx;

static void quant_task(void *p, int64_t t, int slot) {
    (void)slot;
    quant_ctx *c = p;
    int64_t K = c->x->ne[0];
    const float *x = (const float *)sw_cpu_row(c->x, t, 0, 0);
    uint8_t *y = c->xq + (size_t)t * c->xs;
    if (c->act == SW_CPU_ACT_Q8) {
        sw_cpu_q8 *b = (sw_cpu_q8 *)y;
        c->k->quantize_q8(x, b, K);
        if (c->neg_off != 1)
            for (int64_t i = 0; i < K / 32; i++)
                b[i].sum *= c->neg_off;
    } else {
        c->k->quantize_q8_K(x, (sw_block_q8_K *)y, K);
    }
}

/* The -o of weight type t's packed VNNI kernels (cpu_pack_vnni.h), 1 for none. */
static int32_t q8_neg_offset(const sw_cpu_kernels *k, sw_type t) {
    if (!k->q8_offset_sum) return 1;
    switch (t) {
    case SW_TYPE_Q4_0: return -8;
    case SW_TYPE_Q5_0: return -16;
    case SW_TYPE_Q8_0: return -128;
    default: return 1;
    }
}

sw_status sw_cpu_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                        const sw_tensor *bias, sw_tensor *out, sw_err *err) {
    sw_cpu_backend *cb = (sw_cpu_backend *)be;
    int64_t K = w->ne[0], N = w->ne[1], T = x->ne[1];
    sw_cpu_act act;
    if (!sw_cpu_matmul_type(w->type, &act))
        return sw_err_set(err, SW_E_UNSUPPORTED, "matmul: no cpu kernel for %s weights",
                          sw_type_name((uint32_t)w->type));
    sw_cpu_dot_fn dot = cb->k->dot(w->type);
    if (!dot) dot = sw_cpu_dot_scalar(w->type);
    mm_ctx c = {.w = w, .out = out, .dot = dot, .K = K, .N = N, .T = T};
    c.bias = bias ? (const float *)sw_cpu_ptr(bias) : NULL;

    const sw_type_traits *tr = sw_type_get((uint32_t)w->type);
    c.w_blk = tr->blck_size;
    c.w_tsize = tr->type_size;
    c.x_bytes_per_k = act == SW_CPU_ACT_F32  ? 4.0
                      : act == SW_CPU_ACT_Q8 ? (double)sizeof(sw_cpu_q8) / 32.0
                                             : (double)sizeof(sw_block_q8_K) / SW_QK_K;
    c.kc = K;
    c.pk = sw_cpu_pack_find(w->buf, w->offset);
    if (c.pk) {
        /* packed by this backend's kernel set, as contiguous 2-D weights */
        c.pfn = cb->k->pack_rows == c.pk->R ? cb->k->pack(w->type) : NULL;
        c.pcols = cb->k->pack_cols;
        c.pbase = (const uint8_t *)w->buf->data + c.pk->off;
        size_t rel = w->offset - c.pk->off;
        c.r0 = (int64_t)(rel / c.pk->row_bytes);
        if (!c.pfn || w->type != c.pk->type || rel % c.pk->row_bytes != 0 ||
            c.r0 % c.pk->R != 0 || w->nb[1] != c.pk->row_bytes ||
            c.r0 + N > (int64_t)(c.pk->size / c.pk->row_bytes))
            return sw_err_set(err, SW_E_UNSUPPORTED,
                              "matmul: weight view at row %" PRId64
                              " of a packed tensor must start at a multiple of %d rows",
                              c.r0, c.pk->R);
    }
    if (T > 1 && K % SW_QK_K == 0 && !c.pk) {
        int64_t kc = (int64_t)(SW_MM_X_BYTES / (SW_CPU_MAX_COLS * c.x_bytes_per_k));
        kc -= kc % SW_QK_K;
        if (kc >= SW_QK_K && kc < K) c.kc = kc;
    }
    if (act == SW_CPU_ACT_F32) {
        c.xq = sw_cpu_ptr(x);
        c.xs = x->nb[1];
    } else {
        int64_t blk = act == SW_CPU_ACT_Q8 ? 32 : SW_QK_K;
        if (K % blk != 0)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "matmul: K = %" PRId64 " is not a multiple of %" PRId64 " for %s", K,
                              blk, sw_type_name((uint32_t)w->type));
        c.xs =
            (size_t)(K / blk) * (act == SW_CPU_ACT_Q8 ? sizeof(sw_cpu_q8) : sizeof(sw_block_q8_K));
        size_t need = c.xs * (size_t)T;
        uint8_t *xq = sw_cpu_scratch(cb, need);
        if (!xq)
            return sw_err_set(err, SW_E_NOMEM,
                              "matmul: cannot allocate %zu bytes for x [%" PRId64 ", %" PRId64 "]",
                              need, K, T);
        c.xq = xq;
        quant_ctx qc = {x, xq, c.xs, act, cb->k, c.pk ? q8_neg_offset(cb->k, w->type) : 1};
        /* one task per column; T = 1 (decode) runs on the caller, a few
         * microseconds, not worth a wake-up */
        sw_threadpool_run(cb->pool, quant_task, &qc, T);
    }
    /* Decode (one column tile) streams the weights once: give each task a
     * long contiguous run of rows (4 tasks per thread, still enough to even
     * out a thread that gets descheduled), so that every thread reads one
     * sequential stream the hardware prefetcher can follow rather than
     * 16-row pieces interleaved with the other threads'. */
    c.chunk = SW_MM_ROWS;
    if (T <= (c.pk ? c.pcols : SW_CPU_MAX_COLS)) {
        int64_t per = (N + 4 * (int64_t)be->n_threads - 1) / (4 * (int64_t)be->n_threads);
        c.chunk = SW_MAX((int64_t)SW_MM_ROWS, (per + SW_MM_ROWS - 1) / SW_MM_ROWS * SW_MM_ROWS);
    }
    sw_threadpool_run(cb->pool, mm_task, &c, (N + c.chunk - 1) / c.chunk);
    return SW_OK;
}
