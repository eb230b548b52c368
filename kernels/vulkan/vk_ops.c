/* vk_ops.c — the Vulkan backend's ops: each turns its tensors into storage
 * buffer bindings plus push constants (element offsets and strides) and
 * records one dispatch of its shader (kernels/vulkan/shaders/<op>.comp).
 *
 * Shapes and types were validated by the sw_be_* wrappers. What is checked here
 * is what the shaders assume: strides in whole elements, 32-bit indices,
 * head_dim within the attention shader's registers, word-aligned F16 cache
 * rows. Data-dependent checks (an id or slot out of range) would need the
 * device data on the host; the shaders skip such entries instead (get_rows
 * writes zeros, kv_write stores nothing) — documented divergence from the CPU
 * backend, which reports them. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

/* ------------------------------------------------------------ helpers -- */

/* A byte offset or stride as a count of elements of `esize` bytes that fits a
 * 32-bit push constant. */
static sw_status elems(const char *op, const char *what, size_t bytes, size_t esize,
                       uint32_t *out, sw_err *err) {
    if (bytes % esize != 0 || bytes / esize > UINT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: %s: %s of %zu bytes is not a whole number of %zu-byte "
                          "elements below 2^32",
                          op, what, bytes, esize);
    *out = (uint32_t)(bytes / esize);
    return SW_OK;
}

#define TRY(expr)                                                                          \
    do {                                                                                   \
        sw_status st_ = (expr);                                                            \
        if (st_ != SW_OK) return st_;                                                      \
    } while (0)

/* Bind the bytes tensor t spans; *res receives the residual byte offset of
 * element 0 from the binding start. A tensor reaching past its buffer is an
 * error here (the shaders would read or write outside it). */
static sw_status bind_any(const sw_vk_backend *vk, const char *op, const char *what,
                          const sw_tensor *t, sw_vk_bind *b, uint32_t *res, sw_err *err) {
    size_t n = sw_tensor_nbytes(t);
    if (n == 0 || t->offset > t->buf->size || n > t->buf->size - t->offset)
        return sw_err_set(err, SW_E_RANGE,
                          "vulkan: %s: %s spans bytes [%zu, %zu + %zu) of a buffer of %zu bytes",
                          op, what, t->offset, t->offset, n, t->buf->size);
    *res = sw_vk_bind_tensor(vk, t, b);
    return SW_OK;
}

/* Bind an F32 / I32 tensor; *off receives its first element's offset in
 * 4-byte units from the binding start, nb[1..3] its strides in elements. */
static sw_status bind_f32(const sw_vk_backend *vk, const char *op, const char *what,
                          const sw_tensor *t, sw_vk_bind *b, uint32_t *off, uint32_t nb[3],
                          sw_err *err) {
    uint32_t res = 0;
    TRY(bind_any(vk, op, what, t, b, &res, err));
    TRY(elems(op, what, res, 4, off, err));
    if (nb)
        for (int i = 1; i < 4; i++) TRY(elems(op, what, t->nb[i], 4, &nb[i - 1], err));
    return SW_OK;
}

static uint32_t div_up(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

static sw_status dispatch_spec(sw_vk_backend *vk, const char *op, sw_vk_shader_id sh,
                               const uint32_t spec[SW_VK_MAX_SPEC], const sw_vk_bind *binds,
                               uint32_t n_binds, const void *push, uint32_t push_size,
                               const uint32_t groups[3], sw_err *err) {
    sw_vk_dispatch_desc d = {.op = op,
                             .shader = sh,
                             .spec = {spec[0], spec[1], spec[2], spec[3]},
                             .binds = binds,
                             .n_binds = n_binds,
                             .push = push,
                             .push_size = push_size,
                             .groups = {groups[0], groups[1], groups[2]}};
    return sw_vk_dispatch(vk, &d, err);
}

static sw_status dispatch(sw_vk_backend *vk, const char *op, sw_vk_shader_id sh, uint32_t spec0,
                          const sw_vk_bind *binds, uint32_t n_binds, const void *push,
                          uint32_t push_size, const uint32_t groups[3], sw_err *err) {
    const uint32_t spec[SW_VK_MAX_SPEC] = {spec0, 0, 0, 0};
    return dispatch_spec(vk, op, sh, spec, binds, n_binds, push, push_size, groups, err);
}

bool sw_vk_supports_type(sw_backend *be, sw_type type) {
    (void)be;
    switch (type) {
    case SW_TYPE_F32:
    case SW_TYPE_F16:
    case SW_TYPE_BF16:
    case SW_TYPE_Q4_0:
    case SW_TYPE_Q4_1:
    case SW_TYPE_Q5_0:
    case SW_TYPE_Q5_1:
    case SW_TYPE_Q8_0:
    case SW_TYPE_Q2_K:
    case SW_TYPE_Q3_K:
    case SW_TYPE_Q4_K:
    case SW_TYPE_Q5_K:
    case SW_TYPE_Q6_K: return true;
    default: return false;
    }
}

/* Whether a binding of t fits the device's maxStorageBufferRange (the
 * binding starts at t's offset rounded down to the alignment and ends on a
 * whole word). Tensors that do not fit are split into pieces that do: a
 * 262k-token vocabulary (Gemma 3) makes an embedding table and logits larger
 * than lavapipe's 128 MiB. */
static bool fits(const sw_vk_backend *vk, const sw_tensor *t) {
    return (uint64_t)sw_tensor_nbytes(t) + vk->align + 4 <= (uint64_t)vk->max_range;
}

/* The most units of `stride` bytes after a first one of `first` bytes that
 * one binding can span. */
static int64_t fit_count(const sw_vk_backend *vk, size_t first, size_t stride) {
    uint64_t room = (uint64_t)vk->max_range, used = (uint64_t)first + vk->align + 4;
    if (used > room) return 0;
    return 1 + (int64_t)((room - used) / (stride ? stride : 1));
}

static sw_status need_type(sw_backend *be, const char *op, sw_type type, sw_err *err) {
    if (sw_vk_supports_type(be, type)) return SW_OK;
    return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: no shader for %s tensors", op,
                      sw_type_name((uint32_t)type));
}

/* ------------------------------------------------------------ get_rows -- */

/* Rows [row0, row0 + piece->ne[1]) of a table of n_rows: ids in that range
 * are looked up; other valid ids are left alone (another piece has them);
 * invalid ids get zeros from the piece at row0 = 0. */
static sw_status get_rows_piece(sw_vk_backend *vk, const sw_tensor *piece, int64_t row0,
                                int64_t n_rows, const sw_tensor *ids, sw_tensor *out,
                                sw_err *err) {
    const char *op = "get_rows";
    struct {
        uint32_t tab_off, tab_nb1, n, n_rows, ids_off, out_off, out_nb1, T, row0, rows_total;
    } pc;
    sw_vk_bind b[3];
    TRY(bind_any(vk, op, "table", piece, &b[0], &pc.tab_off, err));
    TRY(elems(op, "table row stride", piece->nb[1], 1, &pc.tab_nb1, err));
    pc.n = (uint32_t)piece->ne[0];
    pc.n_rows = (uint32_t)piece->ne[1];
    pc.row0 = (uint32_t)row0;
    pc.rows_total = (uint32_t)SW_MIN(n_rows, (int64_t)UINT32_MAX);
    TRY(bind_f32(vk, op, "ids", ids, &b[1], &pc.ids_off, NULL, err));
    uint32_t onb[3];
    TRY(bind_f32(vk, op, "out", out, &b[2], &pc.out_off, onb, err));
    pc.out_nb1 = onb[0];
    pc.T = (uint32_t)out->ne[1];
    uint32_t g[3];
    sw_vk_grid(vk, pc.T, g);
    return dispatch(vk, op, SW_VK_SH_GET_ROWS, (uint32_t)piece->type, b, 3, &pc, sizeof pc, g,
                    err);
}

sw_status sw_vk_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                         sw_tensor *out, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    TRY(need_type(be, "get_rows", table->type, err));
    if (!fits(vk, out))
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: get_rows: out spans %zu bytes, over the device's "
                          "maxStorageBufferRange %zu",
                          sw_tensor_nbytes(out), vk->max_range);
    int64_t rows = table->ne[1], step = fits(vk, table) ? rows : fit_count(vk, table->nb[1], table->nb[1]);
    if (step < 1)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: get_rows: one table row of %zu bytes is over the device's "
                          "maxStorageBufferRange %zu",
                          table->nb[1], vk->max_range);
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        sw_tensor piece = sw_tensor_rows(table, r0, SW_MIN(step, rows - r0));
        TRY(get_rows_piece(vk, &piece, r0, rows, ids, out, err));
    }
    return SW_OK;
}

/* ------------------------------------------------------------ rms_norm -- */

/* What both norms' shaders take first: x and out with their strides, and
 * the row layout (one workgroup per row over ne1 x ne2 x ne3). */
typedef struct norm_rows {
    uint32_t x_off, x_nb[3], o_off, o_nb[3];
    uint32_t n, ne1, ne2, n_rows;
} norm_rows;

static sw_status bind_norm_rows(sw_vk_backend *vk, const char *op, const sw_tensor *x,
                                const sw_tensor *out, sw_vk_bind *bx, sw_vk_bind *bo,
                                norm_rows *r, uint32_t groups[3], sw_err *err) {
    TRY(bind_f32(vk, op, "x", x, bx, &r->x_off, r->x_nb, err));
    TRY(bind_f32(vk, op, "out", out, bo, &r->o_off, r->o_nb, err));
    r->n = (uint32_t)x->ne[0];
    r->ne1 = (uint32_t)x->ne[1];
    r->ne2 = (uint32_t)x->ne[2];
    r->n_rows = (uint32_t)(x->ne[1] * x->ne[2] * x->ne[3]);
    sw_vk_grid(vk, r->n_rows, groups);
    return SW_OK;
}

/* rms_norm.comp: out = rmsnorm(x) * w, after x = x + h when h is given (the
 * fused add_rms_norm; without it binding 3 is x again and never read). */
static sw_status rms_norm_dispatch(sw_backend *be, const char *op, const sw_tensor *x,
                                   const sw_tensor *h, const sw_tensor *w, float eps,
                                   sw_tensor *out, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    struct {
        norm_rows r;
        uint32_t w_off;
        float eps;
        uint32_t h_off, h_nb[3];
    } pc;
    sw_vk_bind b[4];
    uint32_t g[3];
    TRY(bind_norm_rows(vk, op, x, out, &b[0], &b[2], &pc.r, g, err));
    TRY(bind_f32(vk, op, "w", w, &b[1], &pc.w_off, NULL, err));
    TRY(bind_f32(vk, op, "h", h ? h : x, &b[3], &pc.h_off, pc.h_nb, err));
    pc.eps = eps;
    return dispatch(vk, op, SW_VK_SH_RMS_NORM, h != NULL, b, 4, &pc, sizeof pc, g, err);
}

sw_status sw_vk_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                         sw_tensor *out, sw_err *err) {
    return rms_norm_dispatch(be, "rms_norm", x, NULL, w, eps, out, err);
}

sw_status sw_vk_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h, const sw_tensor *w,
                             float eps, sw_tensor *out, sw_err *err) {
    return rms_norm_dispatch(be, "add_rms_norm", x, h, w, eps, out, err);
}

/* ---------------------------------------------------------- layer_norm -- */

sw_status sw_vk_layer_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                           const sw_tensor *bias, float eps, sw_tensor *out, sw_err *err) {
    const char *op = "layer_norm";
    sw_vk_backend *vk = sw_vk(be);
    struct {
        norm_rows r;
        uint32_t w_off, b_off;
        float eps;
    } pc;
    sw_vk_bind b[4];
    uint32_t g[3];
    TRY(bind_norm_rows(vk, op, x, out, &b[0], &b[3], &pc.r, g, err));
    TRY(bind_f32(vk, op, "w", w, &b[1], &pc.w_off, NULL, err));
    /* without a bias the shader (HAS_B 0) never reads binding 2 */
    TRY(bind_f32(vk, op, "b", bias ? bias : w, &b[2], &pc.b_off, NULL, err));
    pc.eps = eps;
    return dispatch(vk, op, SW_VK_SH_LAYER_NORM, bias != NULL, b, 4, &pc, sizeof pc, g, err);
}

/* -------------------------------------------------------------- matmul -- */

/* Whether the fast shaders can read these weights: they load 16-bit fields
 * at even byte addresses (every GGUF block size is even) and F32 values as
 * 32-bit words. w_off is the byte offset of the tensor from its binding,
 * w_nb1 the row stride. Anything else (an odd offset, say) takes the plain
 * shaders, which read any alignment. */
static bool fast_readable(sw_type type, uint32_t w_off, uint32_t w_nb1) {
    uint32_t a = type == SW_TYPE_F32 ? 4 : 2;
    return w_off % a == 0 && w_nb1 % a == 0;
}

/* The fast shaders' VEC specialization: bit 0 when weight rows all start on
 * 16 bytes and the type has 16-byte fields there (F32 / F16 / BF16, Q4_K,
 * Q5_K: fastq.glsl), bit 1 when x rows start on 16 bytes (offsets in floats):
 * those are then read with 16-byte loads. Bits no shader would look at stay
 * 0, so they make no extra pipelines. */
static uint32_t fast_vec(sw_type type, uint32_t w_off, uint32_t w_nb1, uint32_t x_off,
                         uint32_t x_nb1) {
    bool wide = type == SW_TYPE_F32 || type == SW_TYPE_F16 || type == SW_TYPE_BF16 ||
                type == SW_TYPE_Q4_K || type == SW_TYPE_Q5_K;
    uint32_t v = wide && w_off % 16 == 0 && w_nb1 % 16 == 0;
    if (x_off % 4 == 0 && x_nb1 % 4 == 0) v |= 2;
    return v;
}

/* Decode on the fast path: ROWS rows per workgroup of WG threads, a thread
 * taking 32 weights of each row per step; WG fits the row so short rows
 * leave fewer threads idle. Spec: TYPE, WG, ROWS, VEC (matvec_fast.glsl). */
#define SW_VK_FAST_ROWS 2
static void matvec_fast_spec(sw_type type, uint32_t K, uint32_t vec,
                             uint32_t spec[SW_VK_MAX_SPEC]) {
    uint32_t units = (K + 31) / 32;
    spec[0] = (uint32_t)type;
    spec[1] = units > 64 ? 128 : units > 32 ? 64 : 32;
    spec[2] = SW_VK_FAST_ROWS;
    spec[3] = vec;
}

/* The shader for this matmul: the fast ones when the backend has them and
 * can read the weights, the cooperative-matrix one for prefill of
 * quantized / F16 weights once it passed its check (vk_coop.c). */
static sw_vk_shader_id matmul_shader(const sw_vk_backend *vk, sw_type type, uint32_t T,
                                     bool fast) {
    bool sg = vk->info.subgroup_arithmetic;
    if (T <= SW_VK_MATVEC_MAX_T) {
        if (fast) return sg ? SW_VK_SH_MATVEC_FAST_SG : SW_VK_SH_MATVEC_FAST;
        return sg ? SW_VK_SH_MATVEC_SG : SW_VK_SH_MATVEC;
    }
    if (!fast) return SW_VK_SH_MATMUL;
    if (type == SW_TYPE_F32 || type == SW_TYPE_BF16) return SW_VK_SH_MATMUL_FAST32;
    return vk->coop ? SW_VK_SH_MATMUL_COOP : SW_VK_SH_MATMUL_FAST;
}

sw_status sw_vk_matmul_with(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                            const sw_tensor *bias, sw_tensor *out, sw_vk_shader_id sh,
                            sw_err *err) {
    const char *op = "matmul";
    sw_vk_backend *vk = sw_vk(be);
    TRY(need_type(be, op, w->type, err));
    struct {
        uint32_t w_off, w_nb1, K, N, x_off, x_nb1, T, o_off, o_nb1, b_off, has_bias;
    } pc;
    sw_vk_bind b[4];
    uint32_t nb[3];
    TRY(bind_any(vk, op, "w", w, &b[0], &pc.w_off, err));
    TRY(elems(op, "weight row stride", w->nb[1], 1, &pc.w_nb1, err));
    pc.K = (uint32_t)w->ne[0];
    pc.N = (uint32_t)w->ne[1];
    TRY(bind_f32(vk, op, "x", x, &b[1], &pc.x_off, nb, err));
    pc.x_nb1 = nb[0];
    pc.T = (uint32_t)x->ne[1];
    TRY(bind_f32(vk, op, "out", out, &b[3], &pc.o_off, nb, err));
    pc.o_nb1 = nb[0];
    pc.has_bias = bias != NULL;
    pc.b_off = 0;
    if (bias)
        TRY(bind_f32(vk, op, "bias", bias, &b[2], &pc.b_off, NULL, err));
    else
        b[2] = b[1]; /* never read; the binding must still be valid */

    bool fast = vk->fast && fast_readable(w->type, pc.w_off, pc.w_nb1);
    if (sh == SW_VK_SH_COUNT) sh = matmul_shader(vk, w->type, pc.T, fast);
    if (sh != SW_VK_SH_MATVEC && sh != SW_VK_SH_MATVEC_SG && sh != SW_VK_SH_MATMUL &&
        sh != SW_VK_SH_MATVEC_FAST && sh != SW_VK_SH_MATVEC_FAST_SG &&
        sh != SW_VK_SH_MATMUL_FAST && sh != SW_VK_SH_MATMUL_FAST32 && sh != SW_VK_SH_MATMUL_COOP)
        return sw_err_set(err, SW_E_INVALID_ARG, "vulkan: %s: shader %d is not a matmul", op,
                          (int)sh);
    if ((sh == SW_VK_SH_MATVEC_SG || sh == SW_VK_SH_MATVEC_FAST_SG) &&
        !vk->info.subgroup_arithmetic)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: %s: subgroup arithmetic is not in use on this device", op);
    if (sh == SW_VK_SH_MATMUL_COOP && !vk->coop_enabled)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: %s: cooperative matrices are not enabled on this device", op);
    bool is_fast = sh != SW_VK_SH_MATVEC && sh != SW_VK_SH_MATVEC_SG && sh != SW_VK_SH_MATMUL;
    if (is_fast && !fast)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: %s: the fast shaders cannot read these weights here", op);
    uint32_t spec[SW_VK_MAX_SPEC] = {(uint32_t)w->type, 0, 0, 0};
    uint32_t vec = fast_vec(w->type, pc.w_off, pc.w_nb1, pc.x_off, pc.x_nb1);
    uint32_t g[3] = {1, 1, 1};
    if (sh == SW_VK_SH_MATVEC_FAST || sh == SW_VK_SH_MATVEC_FAST_SG) {
        matvec_fast_spec(w->type, pc.K, vec, spec);
        sw_vk_grid(vk, div_up(pc.N, SW_VK_FAST_ROWS), g);
    } else if (sh == SW_VK_SH_MATVEC || sh == SW_VK_SH_MATVEC_SG) {
        sw_vk_grid(vk, pc.N, g);
    } else {
        /* tiles: 32x32 plain, 64x64 fast and cooperative */
        uint32_t tile = sh == SW_VK_SH_MATMUL ? 32 : 64;
        if (is_fast) spec[1] = vec;
        g[0] = div_up(pc.N, tile);
        g[1] = div_up(pc.T, tile);
        if (g[0] > vk->props.limits.maxComputeWorkGroupCount[0] ||
            g[1] > vk->props.limits.maxComputeWorkGroupCount[1])
            return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: %u x %u tiles exceed the "
                              "device's workgroup count limit", op, g[0], g[1]);
    }
    return dispatch_spec(vk, op, sh, spec, b, 4, &pc, sizeof pc, g, err);
}

/* A matmul whose weights, input or output do not fit one binding: pieces of
 * N rows of w (and out's matching columns) times T tokens of x (and out's
 * rows), each of which fits. Rows go in multiples of 64 (the tiles). */
static sw_status matmul_split(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                              const sw_tensor *bias, sw_tensor *out, sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    const int64_t N = w->ne[1], T = x->ne[1];
    int64_t nr = fit_count(vk, w->nb[1], w->nb[1]);
    if (nr < N) nr = nr / 64 * 64;
    int64_t nt = SW_MIN(fit_count(vk, x->nb[0] * (size_t)x->ne[0], x->nb[1]),
                        fit_count(vk, sizeof(float) * (size_t)SW_MIN(nr, N), out->nb[1]));
    if (nr < 1 || nt < 1)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: matmul: rows of %zu (w), %zu (x) or %zu (out) bytes do not "
                          "fit the device's maxStorageBufferRange %zu",
                          w->nb[1], x->nb[1], out->nb[1], vk->max_range);
    for (int64_t t0 = 0; t0 < T; t0 += nt) {
        int64_t tn = SW_MIN(nt, T - t0);
        sw_tensor xp = sw_tensor_rows(x, t0, tn), orows = sw_tensor_rows(out, t0, tn);
        for (int64_t r0 = 0; r0 < N; r0 += nr) {
            int64_t rn = SW_MIN(nr, N - r0);
            sw_tensor wp = sw_tensor_rows(w, r0, rn), op = sw_tensor_cols(&orows, r0, rn);
            sw_tensor bp;
            if (bias) bp = sw_tensor_cols(bias, r0, rn);
            TRY(sw_vk_matmul_with(be, &wp, &xp, bias ? &bp : NULL, &op, SW_VK_SH_COUNT, err));
        }
    }
    return SW_OK;
}

sw_status sw_vk_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                       const sw_tensor *bias, sw_tensor *out, sw_err *err) {
    const sw_vk_backend *vk = sw_vk(be);
    if (!fits(vk, w) || !fits(vk, x) || !fits(vk, out))
        return matmul_split(be, w, x, bias, out, err);
    return sw_vk_matmul_with(be, w, x, bias, out, SW_VK_SH_COUNT, err);
}

/* ---------------------------------------------------------------- rope -- */

sw_status sw_vk_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos,
                     const sw_rope_params *p, sw_err *err) {
    const char *op = "rope";
    sw_vk_backend *vk = sw_vk(be);
    struct {
        uint32_t x_off, x_nb1, x_nb2, n_heads, T, n_dims, mode, pos_off, ff_off, has_ff;
        float freq_base, freq_scale;
        uint32_t total;
    } pc;
    sw_vk_bind b[3];
    uint32_t nb[3];
    TRY(bind_f32(vk, op, "x", x, &b[0], &pc.x_off, nb, err));
    pc.x_nb1 = nb[0];
    pc.x_nb2 = nb[1];
    pc.n_heads = (uint32_t)x->ne[1];
    pc.T = (uint32_t)x->ne[2];
    pc.n_dims = (uint32_t)p->n_dims;
    pc.mode = (uint32_t)p->mode;
    TRY(bind_f32(vk, op, "pos", pos, &b[1], &pc.pos_off, NULL, err));
    pc.has_ff = p->freq_factors != NULL;
    pc.ff_off = 0;
    if (p->freq_factors)
        TRY(bind_f32(vk, op, "freq_factors", p->freq_factors, &b[2], &pc.ff_off, NULL, err));
    else
        b[2] = b[1];
    pc.freq_base = p->freq_base;
    pc.freq_scale = p->freq_scale;
    uint64_t total = (uint64_t)(p->n_dims / 2) * pc.n_heads * pc.T;
    if (total > UINT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: %" PRIu64 " pairs is too many", op,
                          total);
    pc.total = (uint32_t)total;
    uint32_t g[3];
    sw_vk_grid(vk, div_up(total, 256), g);
    return dispatch(vk, op, SW_VK_SH_ROPE, 0, b, 3, &pc, sizeof pc, g, err);
}

/* ------------------------------------------------------------ kv_write -- */

/* A cache tensor's offset and strides in cache elements; F16 rows must start
 * on 32-bit words (the shader writes two halves at a time). */
static sw_status bind_cache(const sw_vk_backend *vk, const char *op, const char *what,
                            const sw_tensor *c, sw_vk_bind *b, uint32_t v[4], sw_err *err) {
    size_t es = c->type == SW_TYPE_F16 ? 2 : 4;
    uint32_t res = 0;
    TRY(bind_any(vk, op, what, c, b, &res, err));
    TRY(elems(op, what, res, es, &v[0], err));
    for (int i = 1; i < 4; i++) TRY(elems(op, what, c->nb[i], es, &v[i], err));
    return SW_OK;
}

static bool f16_words_ok(const uint32_t v[4], int64_t hd) {
    return hd % 2 == 0 && v[0] % 2 == 0 && v[1] % 2 == 0 && v[2] % 2 == 0 && v[3] % 2 == 0;
}

/* Bind both caches (kc, vc: their offsets and strides in elements) and check
 * what the shaders that write them assume: one type, F16 rows on words. */
static sw_status bind_caches(const sw_vk_backend *vk, const char *op, const sw_tensor *k_cache,
                             const sw_tensor *v_cache, sw_vk_bind b[2], uint32_t kc[4],
                             uint32_t vc[4], sw_err *err) {
    if (k_cache->type != v_cache->type)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: k cache %s and v cache %s differ",
                          op, sw_type_name(k_cache->type), sw_type_name(v_cache->type));
    TRY(bind_cache(vk, op, "k_cache", k_cache, &b[0], kc, err));
    TRY(bind_cache(vk, op, "v_cache", v_cache, &b[1], vc, err));
    if (k_cache->type == SW_TYPE_F16 &&
        (!f16_words_ok(kc, k_cache->ne[0]) || !f16_words_ok(vc, v_cache->ne[0])))
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: %s: f16 cache rows must start on 4-byte boundaries "
                          "(head_dim %" PRId64 " must be even)",
                          op, k_cache->ne[0]);
    return SW_OK;
}

sw_status sw_vk_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                         sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                         sw_err *err) {
    const char *op = "kv_write";
    sw_vk_backend *vk = sw_vk(be);
    struct {
        uint32_t k_off, k_nb1, v_off, v_nb1, kc[4], vc[4], hd, nkv, bs, cap, slots_off, T, total;
    } pc;
    sw_vk_bind b[5];
    uint32_t nb[3];
    TRY(bind_f32(vk, op, "k", k, &b[0], &pc.k_off, nb, err));
    pc.k_nb1 = nb[0];
    TRY(bind_f32(vk, op, "v", v, &b[1], &pc.v_off, nb, err));
    pc.v_nb1 = nb[0];
    TRY(bind_caches(vk, op, k_cache, v_cache, &b[2], pc.kc, pc.vc, err));
    TRY(bind_f32(vk, op, "slots", slots, &b[4], &pc.slots_off, NULL, err));
    bool f16 = k_cache->type == SW_TYPE_F16;
    pc.hd = (uint32_t)k_cache->ne[0];
    pc.nkv = (uint32_t)k_cache->ne[1];
    pc.bs = (uint32_t)k_cache->ne[2];
    pc.cap = (uint32_t)SW_MIN(k_cache->ne[2] * k_cache->ne[3], (int64_t)UINT32_MAX);
    pc.T = (uint32_t)k->ne[1];
    uint64_t total = (uint64_t)((pc.hd + 1) / 2) * pc.nkv * pc.T;
    if (total > UINT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: batch too large", op);
    pc.total = (uint32_t)total;
    uint32_t g[3];
    sw_vk_grid(vk, div_up(total, 256), g);
    return dispatch(vk, op, SW_VK_SH_KV_WRITE, f16, b, 5, &pc, sizeof pc, g, err);
}

/* ----------------------------------------------------------- attention -- */

/* q / out as [head_dim * n_head, T] (the wrapper's first form) or
 * [head_dim, n_head, T]: head stride and token stride in floats. */
static void head_strides(const sw_tensor *t, int64_t hd, int64_t nh, const uint32_t nb[3],
                         uint32_t *sh, uint32_t *st) {
    if (t->ne[0] == hd * nh && t->ne[2] == 1) {
        *sh = (uint32_t)hd;
        *st = nb[0];
    } else {
        *sh = nb[0];
        *st = nb[1];
    }
}

sw_status sw_vk_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                          const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                          sw_err *err) {
    const char *op = "attention";
    sw_vk_backend *vk = sw_vk(be);
    if (p->head_dim > SW_VK_ATTN_MAX_HEAD_DIM)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: head_dim %d > %d", op, p->head_dim,
                          SW_VK_ATTN_MAX_HEAD_DIM);
    if (k_cache->type != v_cache->type)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: k cache %s and v cache %s differ",
                          op, sw_type_name(k_cache->type), sw_type_name(v_cache->type));
    struct {
        uint32_t q_off, q_sh, q_st, o_off, o_sh, o_st, kc[4], vc[4];
        uint32_t hd, n_head, n_head_kv, bs, n_seqs, bt_off, bt_nb1, ss_off, pos_off, T;
        float scale;
        uint32_t window;
    } pc;
    sw_vk_bind b[7];
    uint32_t nb[3];
    int64_t hd = p->head_dim;
    int64_t T = (q->ne[0] == hd * p->n_head && q->ne[2] == 1) ? q->ne[1] : q->ne[2];
    TRY(bind_f32(vk, op, "q", q, &b[0], &pc.q_off, nb, err));
    head_strides(q, hd, p->n_head, nb, &pc.q_sh, &pc.q_st);
    TRY(bind_cache(vk, op, "k_cache", k_cache, &b[1], pc.kc, err));
    TRY(bind_cache(vk, op, "v_cache", v_cache, &b[2], pc.vc, err));
    TRY(bind_f32(vk, op, "out", out, &b[3], &pc.o_off, nb, err));
    head_strides(out, hd, p->n_head, nb, &pc.o_sh, &pc.o_st);
    TRY(bind_f32(vk, op, "seq_start", p->seq_start, &b[4], &pc.ss_off, NULL, err));
    TRY(bind_f32(vk, op, "pos", p->pos, &b[5], &pc.pos_off, NULL, err));
    TRY(bind_f32(vk, op, "block_tables", p->block_tables, &b[6], &pc.bt_off, nb, err));
    pc.bt_nb1 = nb[0];
    pc.hd = (uint32_t)hd;
    pc.n_head = (uint32_t)p->n_head;
    pc.n_head_kv = (uint32_t)p->n_head_kv;
    pc.bs = (uint32_t)p->block_size;
    pc.n_seqs = (uint32_t)p->n_seqs;
    pc.T = (uint32_t)T;
    pc.scale = p->scale;
    pc.window = (uint32_t)p->window;
    uint32_t g[3];
    sw_vk_grid(vk, (uint64_t)T * (uint64_t)p->n_head, g);
    const uint32_t spec[SW_VK_MAX_SPEC] = {k_cache->type == SW_TYPE_F16, p->non_causal, 0, 0};
    return dispatch_spec(vk, op, SW_VK_SH_ATTENTION, spec, b, 7, &pc, sizeof pc, g, err);
}

/* --------------------------------------------------------- elementwise -- */

/* Kinds of elementwise.comp (its OP specialization). */
enum { EW_ADD = 0, EW_SWIGLU = 1, EW_GELU = 2, EW_GEGLU = 3, EW_SCALE = 4, EW_SOFTCAP = 5 };

static sw_status elementwise_one(sw_backend *be, const char *op, uint32_t kind,
                                 const sw_tensor *a, const sw_tensor *bt, float f, sw_tensor *out,
                                 sw_err *err);

/* bt: the second input (NULL for the unary kinds, which take f instead).
 * 2-D tensors too large for one binding (a batch of logits) go in pieces of
 * rows. */
static sw_status elementwise(sw_backend *be, const char *op, uint32_t kind, const sw_tensor *a,
                             const sw_tensor *bt, float f, sw_tensor *out, sw_err *err) {
    const sw_vk_backend *vk = sw_vk(be);
    if ((fits(vk, a) && (!bt || fits(vk, bt)) && fits(vk, out)) || a->ne[2] * a->ne[3] != 1)
        return elementwise_one(be, op, kind, a, bt, f, out, err);
    size_t row = sizeof(float) * (size_t)a->ne[0];
    int64_t step = SW_MIN(fit_count(vk, row, a->nb[1]), fit_count(vk, row, out->nb[1]));
    if (bt) step = SW_MIN(step, fit_count(vk, row, bt->nb[1]));
    if (step < 1)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "vulkan: %s: a row of %zu bytes is over the device's "
                          "maxStorageBufferRange %zu",
                          op, row, vk->max_range);
    for (int64_t r0 = 0; r0 < a->ne[1]; r0 += step) {
        int64_t n = SW_MIN(step, a->ne[1] - r0);
        sw_tensor ap = sw_tensor_rows(a, r0, n), op_ = sw_tensor_rows(out, r0, n), bp;
        if (bt) bp = sw_tensor_rows(bt, r0, n);
        TRY(elementwise_one(be, op, kind, &ap, bt ? &bp : NULL, f, &op_, err));
    }
    return SW_OK;
}

static sw_status elementwise_one(sw_backend *be, const char *op, uint32_t kind,
                                 const sw_tensor *a, const sw_tensor *bt, float f, sw_tensor *out,
                                 sw_err *err) {
    sw_vk_backend *vk = sw_vk(be);
    struct {
        uint32_t a_off, a_nb[3], b_off, b_nb[3], o_off, o_nb[3], ne0, ne1, ne2, total;
        float f;
    } pc;
    sw_vk_bind b[3];
    TRY(bind_f32(vk, op, "a", a, &b[0], &pc.a_off, pc.a_nb, err));
    /* a unary kind never reads b: bind a there */
    TRY(bind_f32(vk, op, "b", bt ? bt : a, &b[1], &pc.b_off, pc.b_nb, err));
    TRY(bind_f32(vk, op, "out", out, &b[2], &pc.o_off, pc.o_nb, err));
    uint64_t total = (uint64_t)sw_tensor_nelements(a);
    if (total > UINT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: %" PRIu64 " elements is too many",
                          op, total);
    pc.ne0 = (uint32_t)a->ne[0];
    pc.ne1 = (uint32_t)a->ne[1];
    pc.ne2 = (uint32_t)a->ne[2];
    pc.total = (uint32_t)total;
    pc.f = f;
    uint32_t g[3];
    sw_vk_grid(vk, div_up(total, 256), g);
    return dispatch(vk, op, SW_VK_SH_ELEMENTWISE, kind, b, 3, &pc, sizeof pc, g, err);
}

sw_status sw_vk_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                       sw_tensor *out, sw_err *err) {
    return elementwise(be, "swiglu", EW_SWIGLU, gate, up, 0.0f, out, err);
}

sw_status sw_vk_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                      sw_err *err) {
    return elementwise(be, "geglu", EW_GEGLU, gate, up, 0.0f, out, err);
}

sw_status sw_vk_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                    sw_err *err) {
    return elementwise(be, "add", EW_ADD, a, b, 0.0f, out, err);
}

sw_status sw_vk_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err) {
    return elementwise(be, "scale", EW_SCALE, x, NULL, s, out, err);
}

sw_status sw_vk_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                        sw_err *err) {
    return elementwise(be, "softcap", EW_SOFTCAP, x, NULL, cap, out, err);
}

sw_status sw_vk_gelu(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err) {
    return elementwise(be, "gelu", EW_GELU, x, NULL, 0.0f, out, err);
}

/* ------------------------------------------------------------ fused ops -- */

sw_status sw_vk_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                              const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                              sw_tensor *v_cache, const sw_tensor *slots, sw_err *err) {
    const char *op = "rope_kv_write";
    sw_vk_backend *vk = sw_vk(be);
    struct {
        uint32_t q_off, q_nb1, q_nb2, k_off, k_nb1, k_nb2, v_off, v_nb1;
        uint32_t kc[4], vc[4];
        uint32_t pos_off, ff_off, has_ff, slots_off;
        uint32_t n_head, nkv, hd, bs, cap, n_dims, mode, T, total;
        float freq_base, freq_scale;
    } pc;
    _Static_assert(sizeof pc <= SW_VK_PUSH_MAX, "rope_kv_write push constants");
    sw_vk_bind b[8];
    uint32_t nb[3];
    TRY(bind_f32(vk, op, "q", q, &b[0], &pc.q_off, nb, err));
    pc.q_nb1 = nb[0];
    pc.q_nb2 = nb[1];
    TRY(bind_f32(vk, op, "k", k, &b[1], &pc.k_off, nb, err));
    pc.k_nb1 = nb[0];
    pc.k_nb2 = nb[1];
    TRY(bind_f32(vk, op, "v", v, &b[2], &pc.v_off, nb, err));
    pc.v_nb1 = nb[0];
    TRY(bind_f32(vk, op, "pos", pos, &b[3], &pc.pos_off, NULL, err));
    pc.has_ff = p->freq_factors != NULL;
    pc.ff_off = 0;
    if (p->freq_factors)
        TRY(bind_f32(vk, op, "freq_factors", p->freq_factors, &b[4], &pc.ff_off, NULL, err));
    else
        b[4] = b[3];
    TRY(bind_caches(vk, op, k_cache, v_cache, &b[5], pc.kc, pc.vc, err));
    TRY(bind_f32(vk, op, "slots", slots, &b[7], &pc.slots_off, NULL, err));
    bool f16 = k_cache->type == SW_TYPE_F16;
    pc.n_head = (uint32_t)q->ne[1];
    pc.nkv = (uint32_t)k_cache->ne[1];
    pc.hd = (uint32_t)k_cache->ne[0];
    pc.bs = (uint32_t)k_cache->ne[2];
    pc.cap = (uint32_t)SW_MIN(k_cache->ne[2] * k_cache->ne[3], (int64_t)UINT32_MAX);
    pc.n_dims = (uint32_t)p->n_dims;
    pc.mode = (uint32_t)p->mode;
    pc.T = (uint32_t)q->ne[2];
    pc.freq_base = p->freq_base;
    pc.freq_scale = p->freq_scale;
    uint64_t per = (uint64_t)pc.n_head * (pc.n_dims / 2) + 2ull * pc.nkv * ((pc.hd + 1) / 2);
    uint64_t total = per * pc.T;
    if (total > UINT32_MAX)
        return sw_err_set(err, SW_E_UNSUPPORTED, "vulkan: %s: batch too large", op);
    pc.total = (uint32_t)total;
    uint32_t g[3];
    sw_vk_grid(vk, div_up(total, 256), g);
    return dispatch(vk, op, SW_VK_SH_ROPE_KV_WRITE, f16, b, 8, &pc, sizeof pc, g, err);
}
