/* backend.c — tensor helpers, backend creation ("auto" = cuda, vulkan, cpu),
 * and the sw_be_* wrappers: each validates the shapes and types of its
 * arguments (SW_E_INVALID_ARG naming the op, the tensor and its shape), then
 * dispatches to the backend, or supplies the default for an optional slot.
 * Data-dependent checks (an id out of range, a slot past the cache) need the
 * data and belong to the backends. */
#include "backend.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"
#include "logits.h"
#if defined(SW_HAVE_CUDA)
#include "cuda_backend.h"
#endif
#if defined(SW_HAVE_VULKAN)
#include "vk_backend.h"
#include "vk_device.h"
#endif

/* ---------------------------------------------------------------- tensors -- */

sw_tensor sw_tensor_make(sw_buffer *buf, size_t offset, sw_type type, int64_t ne0, int64_t ne1,
                         int64_t ne2, int64_t ne3) {
    sw_tensor t;
    memset(&t, 0, sizeof t);
    t.buf = buf;
    t.offset = offset;
    t.type = type;
    t.ne[0] = ne0;
    t.ne[1] = ne1 > 0 ? ne1 : 1;
    t.ne[2] = ne2 > 0 ? ne2 : 1;
    t.ne[3] = ne3 > 0 ? ne3 : 1;
    const sw_type_traits *tr = sw_type_get((uint32_t)type);
    t.nb[0] = tr ? tr->type_size : 0;
    t.nb[1] = sw_row_size(type, ne0);
    t.nb[2] = t.nb[1] * (size_t)t.ne[1];
    t.nb[3] = t.nb[2] * (size_t)t.ne[2];
    return t;
}

size_t sw_tensor_nbytes(const sw_tensor *t) {
    if (!t) return 0;
    for (int i = 0; i < 4; i++)
        if (t->ne[i] <= 0) return 0;
    /* one row plus the strides to the last row: the span of a contiguous tensor
     * and of strided views alike */
    uint64_t n = sw_row_size(t->type, t->ne[0]);
    if (n == 0) return 0;
    for (int i = 1; i < 4; i++) {
        uint64_t s;
        if (!sw_mul_u64((uint64_t)(t->ne[i] - 1), t->nb[i], &s) || !sw_add_u64(n, s, &n)) return 0;
    }
    return (size_t)n;
}

sw_tensor sw_tensor_rows(const sw_tensor *t, int64_t r0, int64_t n) {
    sw_tensor v = *t;
    v.offset += (size_t)r0 * t->nb[1];
    v.ne[1] = n;
    return v;
}

sw_tensor sw_tensor_cols(const sw_tensor *t, int64_t c0, int64_t n) {
    sw_tensor v = *t;
    v.offset += (size_t)c0 * t->nb[0];
    v.ne[0] = n;
    return v;
}

int64_t sw_tensor_nelements(const sw_tensor *t) {
    if (!t) return 0;
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

/* --------------------------------------------------------------- creation -- */

/* The one place that knows which backends exist: CUDA (SW_HAVE_CUDA) and
 * Vulkan (SW_HAVE_VULKAN) when built, the CPU always. */
static sw_status create_cuda(const sw_backend_config *cfg, sw_backend **out, sw_err *err) {
#if defined(SW_HAVE_CUDA)
    return sw_backend_cuda_create(cfg->device, out, err); /* device < 0: device 0 */
#else
    (void)cfg;
    (void)out;
    return sw_err_set(err, SW_E_UNSUPPORTED,
                      "the cuda backend is not available in this build (reconfigure with "
                      "-DSW_CUDA=ON on a machine with the CUDA toolkit)");
#endif
}

static sw_status create_vulkan(const sw_backend_config *cfg, sw_backend **out, sw_err *err) {
#if defined(SW_HAVE_VULKAN)
    return sw_backend_vulkan_create(cfg->device, out, err);
#else
    (void)cfg;
    (void)out;
    return sw_err_set(err, SW_E_UNSUPPORTED,
                      "the vulkan backend is not available in this build (reconfigure with "
                      "-DSW_VULKAN=ON with the Vulkan SDK and glslc installed)");
#endif
}

/* "auto" wants a GPU from Vulkan: a CPU implementation such as lavapipe is
 * slower than our native CPU backend, so auto passes over it (it stays
 * reachable with an explicit --backend vulkan, which is how CI tests it). */
static sw_status create_vulkan_auto(const sw_backend_config *cfg, sw_backend **out,
                                    sw_err *err) {
#if defined(SW_HAVE_VULKAN)
    sw_vk_device_info *devs = NULL;
    int n = 0;
    sw_status st = sw_vk_list_devices(&devs, &n, err);
    if (st != SW_OK) return st;
    int idx = cfg->device >= 0 && cfg->device < n ? cfg->device : sw_vk_preferred_device(devs, n);
    bool is_cpu = idx < 0 || devs[idx].kind == SW_VK_CPU;
    if (is_cpu)
        st = sw_err_set(err, SW_E_NOT_FOUND,
                        "only a CPU Vulkan device (%s); the native cpu backend is faster",
                        idx >= 0 ? devs[idx].name : "none");
    free(devs);
    if (st != SW_OK) return st;
    return sw_backend_vulkan_create(idx, out, err);
#else
    return create_vulkan(cfg, out, err);
#endif
}

static sw_status create_cpu(const sw_backend_config *cfg, sw_backend **out, sw_err *err) {
    return sw_backend_cpu_create(cfg->n_threads, out, err);
}

typedef struct {
    const char *name;
    sw_status (*create)(const sw_backend_config *cfg, sw_backend **out, sw_err *err);
    sw_status (*create_auto)(const sw_backend_config *cfg, sw_backend **out, sw_err *err);
} backend_entry;

/* In the order "auto" tries them. */
static const backend_entry k_backends[] = {
    {"cuda", create_cuda, create_cuda},
    {"vulkan", create_vulkan, create_vulkan_auto},
    {"cpu", create_cpu, create_cpu},
};
#define N_BACKENDS (sizeof k_backends / sizeof k_backends[0])

sw_status sw_backend_create(const sw_backend_config *cfg, sw_backend **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_backend_create: out is NULL");
    *out = NULL;
    sw_backend_config c = {0};
    if (cfg) c = *cfg;
    const char *name = (c.name && c.name[0]) ? c.name : "auto";
    if (strcmp(name, "auto") != 0) {
        for (size_t i = 0; i < N_BACKENDS; i++)
            if (!strcmp(name, k_backends[i].name)) return k_backends[i].create(&c, out, err);
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "unknown backend '%s' (expected auto, cuda, vulkan or cpu)", name);
    }
    sw_status st = SW_E_INTERNAL;
    for (size_t i = 0; i < N_BACKENDS; i++) {
        sw_err e = {{0}};
        st = k_backends[i].create_auto(&c, out, &e);
        if (st == SW_OK) {
            sw_log(SW_LOG_INFO, "backend auto: using %s", k_backends[i].name);
            return SW_OK;
        }
        sw_log(SW_LOG_INFO, "backend auto: skipping %s: %s", k_backends[i].name, e.msg);
        if (err) *err = e;
    }
    return sw_err_wrap(err, st, "backend auto: no backend could be created");
}

void sw_backend_free(sw_backend *be) {
    if (!be || !be->ops || !be->ops->free) return;
    free(be->count.sigs);
    be->count.sigs = NULL;
    be->ops->free(be);
}

const char *sw_backend_name(const sw_backend *be) {
    return (be && be->ops && be->ops->name) ? be->ops->name : "none";
}

/* ------------------------------------------------------------- validation -- */

/* "[4096, 3, 1, 1] q4_0" */
static const char *tdesc(const sw_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    snprintf(buf, n, "[%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] %s", t->ne[0], t->ne[1],
             t->ne[2], t->ne[3], sw_type_name((uint32_t)t->type));
    return buf;
}

/* A usable tensor: buffer, known type, positive dims, whole blocks per row and
 * rows contiguous within themselves. */
static sw_status check_tensor(const char *op, const char *what, const sw_tensor *t, sw_err *err) {
    char d[96];
    if (!t) return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s is NULL", op, what);
    const sw_type_traits *tr = sw_type_get((uint32_t)t->type);
    if (!tr)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s has unknown type id %d", op, what,
                          (int)t->type);
    if (!t->buf)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s %s has no buffer", op, what,
                          tdesc(t, d, sizeof d));
    for (int i = 0; i < 4; i++)
        if (t->ne[i] <= 0)
            return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s %s has an empty dimension %d", op,
                              what, tdesc(t, d, sizeof d), i);
    if (t->ne[0] % tr->blck_size != 0)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: %s %s: row length is not a multiple of the %s block size %" PRId64,
                          op, what, tdesc(t, d, sizeof d), tr->name, tr->blck_size);
    if (t->nb[0] != tr->type_size)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: %s %s: rows must be contiguous (nb[0] = %zu, expected %zu)", op,
                          what, tdesc(t, d, sizeof d), t->nb[0], tr->type_size);
    return SW_OK;
}

static sw_status check_type(const char *op, const char *what, const sw_tensor *t, sw_type want,
                            sw_err *err) {
    sw_status st = check_tensor(op, what, t, err);
    if (st != SW_OK) return st;
    if (t->type != want) {
        char d[96];
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s %s must be %s", op, what,
                          tdesc(t, d, sizeof d), sw_type_name(want));
    }
    return SW_OK;
}

static bool same_shape(const sw_tensor *a, const sw_tensor *b) {
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] &&
           a->ne[3] == b->ne[3];
}

static sw_status check_same_shape(const char *op, const char *wa, const sw_tensor *a,
                                  const char *wb, const sw_tensor *b, sw_err *err) {
    if (same_shape(a, b)) return SW_OK;
    char da[96], db[96];
    return sw_err_set(err, SW_E_INVALID_ARG, "%s: shape mismatch: %s %s vs %s %s", op, wa,
                      tdesc(a, da, sizeof da), wb, tdesc(b, db, sizeof db));
}

/* An I32 vector of exactly n entries. */
static sw_status check_index(const char *op, const char *what, const sw_tensor *t, int64_t n,
                             sw_err *err) {
    sw_status st = check_type(op, what, t, SW_TYPE_I32, err);
    if (st != SW_OK) return st;
    if (sw_tensor_nelements(t) != n || t->ne[0] != n) {
        char d[96];
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s %s must have %" PRId64 " entries", op,
                          what, tdesc(t, d, sizeof d), n);
    }
    return SW_OK;
}

/* Whether two tensors' byte spans in the same buffer intersect. */
static bool overlaps(const sw_tensor *a, const sw_tensor *b) {
    if (a->buf != b->buf) return false;
    size_t na = sw_tensor_nbytes(a), nb = sw_tensor_nbytes(b);
    return a->offset < b->offset + nb && b->offset < a->offset + na;
}

static sw_status check_no_overlap(const char *op, const char *wa, const sw_tensor *a,
                                  const char *wb, const sw_tensor *b, sw_err *err) {
    if (!overlaps(a, b)) return SW_OK;
    char da[96], db[96];
    return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s %s must not overlap %s %s in memory", op, wa,
                      tdesc(a, da, sizeof da), wb, tdesc(b, db, sizeof db));
}

static sw_status check_be(const char *op, sw_backend *be, sw_err *err) {
    if (!be || !be->ops) return sw_err_set(err, SW_E_INVALID_ARG, "%s: backend is NULL", op);
    return SW_OK;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        sw_status st_ = (expr);                                                                    \
        if (st_ != SW_OK) return st_;                                                              \
    } while (0)

/* ---------------------------------------------------------------- counting -- */

/* Signatures are 64-bit hashes: a multiply-xorshift fold of every word that a
 * recorded op depends on (collisions are ~2^-64 per pair of different steps). */
static uint64_t mix(uint64_t h, uint64_t v) {
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t mix_f(uint64_t h, float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return mix(h, u);
}

static uint64_t mix_t(uint64_t h, const sw_tensor *t) {
    if (!t) return mix(h, 0x7E57u);
    h = mix(h, (uint64_t)(uintptr_t)t->buf);
    h = mix(h, t->offset);
    h = mix(h, (uint64_t)t->type);
    for (int i = 0; i < 4; i++) h = mix(mix(h, (uint64_t)t->ne[i]), t->nb[i]);
    return h;
}

/* Op kinds in signatures (and nothing else: the numbers need not be stable). */
enum {
    K_GET_ROWS = 1, K_RMS_NORM, K_MATMUL, K_ROPE, K_KV_WRITE, K_ATTENTION, K_SWIGLU, K_ADD,
    K_ADD_RMS_NORM, K_ROPE_KV_WRITE
};

/* One op goes out: count it, and fold its hash h into the step's signature. */
static void count_op(sw_backend *be, uint64_t h) {
    sw_be_count *c = &be->count;
    c->stats.ops++;
    if (!c->in_step) return;
    c->step_ops++;
    c->step_sig = mix(c->step_sig, h);
}

/* Remember sig in the sorted set of signatures seen (a failed allocation just
 * leaves it out of the count). */
static void note_signature(sw_be_count *c, uint64_t sig) {
    uint32_t lo = 0, hi = c->stats.n_signatures;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->sigs[mid] < sig) lo = mid + 1;
        else hi = mid;
    }
    if (lo < c->stats.n_signatures && c->sigs[lo] == sig) return;
    if (c->stats.n_signatures == c->cap_sigs) {
        uint32_t cap = c->cap_sigs ? 2 * c->cap_sigs : 16;
        uint64_t *p = realloc(c->sigs, (size_t)cap * sizeof *p);
        if (!p) return;
        c->sigs = p;
        c->cap_sigs = cap;
    }
    memmove(c->sigs + lo + 1, c->sigs + lo, (size_t)(c->stats.n_signatures - lo) * sizeof *c->sigs);
    c->sigs[lo] = sig;
    c->stats.n_signatures++;
}

void sw_be_stats_get(const sw_backend *be, sw_be_stats *out) {
    if (!out) return;
    if (!be) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = be->count.stats;
}

void sw_be_stats_reset(sw_backend *be) {
    if (!be) return;
    memset(&be->count.stats, 0, sizeof be->count.stats);
}

/* --------------------------------------------------------- memory wrappers -- */

sw_status sw_be_buf_alloc(sw_backend *be, size_t size, sw_buf_usage usage, sw_buffer **out,
                          sw_err *err) {
    TRY(check_be("buf_alloc", be, err));
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "buf_alloc: out is NULL");
    *out = NULL;
    return be->ops->buf_alloc(be, size, usage, out, err);
}

void sw_be_buf_free(sw_backend *be, sw_buffer *buf) {
    if (!be || !be->ops || !buf) return;
    be->ops->buf_free(be, buf);
}

sw_status sw_be_upload(sw_backend *be, sw_buffer *dst, size_t offset, const void *src, size_t n,
                       sw_err *err) {
    TRY(check_be("upload", be, err));
    if (!dst || (n && !src))
        return sw_err_set(err, SW_E_INVALID_ARG, "upload: %s is NULL", dst ? "src" : "dst");
    return be->ops->upload(be, dst, offset, src, n, err);
}

sw_status sw_be_download(sw_backend *be, sw_buffer *src, size_t offset, void *dst, size_t n,
                         sw_err *err) {
    TRY(check_be("download", be, err));
    if (!src || (n && !dst))
        return sw_err_set(err, SW_E_INVALID_ARG, "download: %s is NULL", src ? "dst" : "src");
    return be->ops->download(be, src, offset, dst, n, err);
}

sw_status sw_be_upload_weight(sw_backend *be, const sw_tensor *dst, const void *src, sw_err *err) {
    TRY(check_be("upload_weight", be, err));
    TRY(check_tensor("upload_weight", "dst", dst, err));
    if (!src) return sw_err_set(err, SW_E_INVALID_ARG, "upload_weight: src is NULL");
    if (be->ops->upload_weight) return be->ops->upload_weight(be, dst, src, err);
    size_t n = sw_tensor_nbytes(dst);
    if (sw_row_size(dst->type, dst->ne[0]) * (size_t)(dst->ne[1] * dst->ne[2] * dst->ne[3]) != n) {
        char d[96];
        return sw_err_set(err, SW_E_INVALID_ARG, "upload_weight: dst %s is not contiguous",
                          tdesc(dst, d, sizeof d));
    }
    return be->ops->upload(be, dst->buf, dst->offset, src, n, err);
}

sw_status sw_be_mem_info(sw_backend *be, size_t *free_b, size_t *total_b, sw_err *err) {
    TRY(check_be("mem_info", be, err));
    if (!free_b || !total_b)
        return sw_err_set(err, SW_E_INVALID_ARG, "mem_info: output pointer is NULL");
    if (!be->ops->mem_info)
        return sw_err_set(err, SW_E_UNSUPPORTED, "mem_info: the %s backend cannot report memory",
                          sw_backend_name(be));
    return be->ops->mem_info(be, free_b, total_b, err);
}

bool sw_be_supports_type(sw_backend *be, sw_type type) {
    if (!be || !be->ops) return false;
    if (!be->ops->supports_type) return type == SW_TYPE_F32;
    return be->ops->supports_type(be, type);
}

void *sw_be_host_ptr(sw_backend *be, sw_buffer *buf) {
    if (!be || !be->ops || !buf || !be->ops->host_ptr) return NULL;
    return be->ops->host_ptr(be, buf);
}

sw_status sw_be_begin(sw_backend *be, sw_err *err) {
    TRY(check_be("begin", be, err));
    be->count.in_step = true;
    be->count.step_ops = 0;
    be->count.step_sig = 0x5157u;
    return be->ops->begin ? be->ops->begin(be, err) : SW_OK;
}

sw_status sw_be_end(sw_backend *be, sw_err *err) {
    TRY(check_be("end", be, err));
    sw_be_count *c = &be->count;
    if (c->in_step) {
        c->in_step = false;
        c->stats.steps++;
        c->stats.last_step_ops = c->step_ops;
        c->stats.last_step_sig = mix(c->step_sig, c->step_ops);
        note_signature(c, c->stats.last_step_sig);
    }
    return be->ops->end ? be->ops->end(be, err) : SW_OK;
}

void *sw_be_host_alloc(sw_backend *be, size_t size) {
    if (!be || !be->ops) return NULL;
    if (be->ops->host_alloc) return be->ops->host_alloc(be, size);
    return malloc(size ? size : 1);
}

void sw_be_host_free(sw_backend *be, void *p) {
    if (!p || !be || !be->ops) return;
    if (be->ops->host_free) be->ops->host_free(be, p);
    else free(p);
}

/* ------------------------------------------------------------ op wrappers -- */

sw_status sw_be_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                         sw_tensor *out, sw_err *err) {
    const char *op = "get_rows";
    TRY(check_be(op, be, err));
    TRY(check_tensor(op, "table", table, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    char d1[96], d2[96];
    const sw_type_traits *tr = sw_type_get((uint32_t)table->type);
    if (!tr->can_dequantize)
        return sw_err_set(err, SW_E_UNSUPPORTED, "%s: table %s: type %s cannot be dequantized", op,
                          tdesc(table, d1, sizeof d1), tr->name);
    if (table->ne[2] != 1 || table->ne[3] != 1)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: table %s must be 2-D", op,
                          tdesc(table, d1, sizeof d1));
    if (out->ne[0] != table->ne[0] || out->ne[2] != 1 || out->ne[3] != 1)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: out %s must be [%" PRId64 ", T] for table %s",
                          op, tdesc(out, d1, sizeof d1), table->ne[0], tdesc(table, d2, sizeof d2));
    TRY(check_index(op, "ids", ids, out->ne[1], err));
    count_op(be, mix_t(mix_t(mix_t(K_GET_ROWS, table), ids), out));
    return be->ops->get_rows(be, table, ids, out, err);
}

static sw_status check_rms_norm(const char *op, const sw_tensor *x, const sw_tensor *w, float eps,
                                const sw_tensor *out, sw_err *err) {
    TRY(check_type(op, "x", x, SW_TYPE_F32, err));
    TRY(check_type(op, "w", w, SW_TYPE_F32, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    TRY(check_same_shape(op, "x", x, "out", out, err));
    if (sw_tensor_nelements(w) != x->ne[0]) {
        char d1[96], d2[96];
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: w %s must have %" PRId64 " entries for x %s",
                          op, tdesc(w, d1, sizeof d1), x->ne[0], tdesc(x, d2, sizeof d2));
    }
    if (!(eps >= 0.0f) || !isfinite(eps))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: eps %g must be finite and >= 0", op,
                          (double)eps);
    return SW_OK;
}

sw_status sw_be_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                         sw_tensor *out, sw_err *err) {
    TRY(check_be("rms_norm", be, err));
    TRY(check_rms_norm("rms_norm", x, w, eps, out, err));
    count_op(be, mix_f(mix_t(mix_t(mix_t(K_RMS_NORM, x), w), out), eps));
    return be->ops->rms_norm(be, x, w, eps, out, err);
}

sw_status sw_be_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                       const sw_tensor *bias, sw_tensor *out, sw_err *err) {
    const char *op = "matmul";
    char d1[96], d2[96], d3[96];
    TRY(check_be(op, be, err));
    TRY(check_tensor(op, "w", w, err));
    TRY(check_type(op, "x", x, SW_TYPE_F32, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    if (w->ne[2] != 1 || w->ne[3] != 1 || x->ne[2] != 1 || x->ne[3] != 1 || out->ne[2] != 1 ||
        out->ne[3] != 1)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: w %s, x %s and out %s must be 2-D", op,
                          tdesc(w, d1, sizeof d1), tdesc(x, d2, sizeof d2),
                          tdesc(out, d3, sizeof d3));
    if (w->ne[0] != x->ne[0] || out->ne[0] != w->ne[1] || out->ne[1] != x->ne[1])
        return sw_err_set(
            err, SW_E_INVALID_ARG, "%s: shape mismatch: w %s (K, N), x %s (K, T), out %s (N, T)",
            op, tdesc(w, d1, sizeof d1), tdesc(x, d2, sizeof d2), tdesc(out, d3, sizeof d3));
    if (bias) {
        TRY(check_type(op, "bias", bias, SW_TYPE_F32, err));
        if (sw_tensor_nelements(bias) != w->ne[1] || bias->ne[0] != w->ne[1])
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "%s: bias %s must have N = %" PRId64 " entries", op,
                              tdesc(bias, d1, sizeof d1), w->ne[1]);
    }
    TRY(check_no_overlap(op, "out", out, "x", x, err));
    if (!sw_be_supports_type(be, w->type))
        return sw_err_set(
            err, SW_E_UNSUPPORTED, "%s: the %s backend has no kernel for %s weights %s", op,
            sw_backend_name(be), sw_type_name((uint32_t)w->type), tdesc(w, d1, sizeof d1));
    count_op(be, mix_t(mix_t(mix_t(mix_t(K_MATMUL, w), x), bias), out));
    return be->ops->matmul(be, w, x, bias, out, err);
}

static sw_status check_rope(const char *op, const char *what, const sw_tensor *x,
                            const sw_tensor *pos, const sw_rope_params *p, sw_err *err) {
    char d1[96];
    TRY(check_type(op, what, x, SW_TYPE_F32, err));
    if (!p) return sw_err_set(err, SW_E_INVALID_ARG, "%s: params are NULL", op);
    if (x->ne[3] != 1)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: %s %s must be [head_dim, n_heads, T]", op,
                          what, tdesc(x, d1, sizeof d1));
    TRY(check_index(op, "pos", pos, x->ne[2], err));
    if (p->n_dims <= 0 || p->n_dims % 2 != 0 || p->n_dims > x->ne[0])
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: n_dims %d must be even and in (0, head_dim = %" PRId64 "]", op,
                          p->n_dims, x->ne[0]);
    if (p->mode != 0 && p->mode != 2)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: mode %d (expected 0 = norm or 2 = neox)", op,
                          p->mode);
    if (!(p->freq_base > 0.0f) || !isfinite(p->freq_base) || !(p->freq_scale > 0.0f) ||
        !isfinite(p->freq_scale))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: freq_base %g and freq_scale %g must be > 0",
                          op, (double)p->freq_base, (double)p->freq_scale);
    if (p->freq_factors) {
        TRY(check_type(op, "freq_factors", p->freq_factors, SW_TYPE_F32, err));
        if (sw_tensor_nelements(p->freq_factors) != p->n_dims / 2)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "%s: freq_factors %s must have n_dims/2 = %d entries", op,
                              tdesc(p->freq_factors, d1, sizeof d1), p->n_dims / 2);
    }
    return SW_OK;
}

static uint64_t mix_rope(uint64_t h, const sw_rope_params *p) {
    h = mix_t(h, p->freq_factors);
    return mix_f(mix_f(mix(mix(h, (uint64_t)p->n_dims), (uint64_t)p->mode), p->freq_base),
                 p->freq_scale);
}

sw_status sw_be_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos, const sw_rope_params *p,
                     sw_err *err) {
    TRY(check_be("rope", be, err));
    TRY(check_rope("rope", "x", x, pos, p, err));
    count_op(be, mix_rope(mix_t(mix_t(K_ROPE, x), pos), p));
    return be->ops->rope(be, x, pos, p, err);
}

static sw_status check_cache(const char *op, const char *what, const sw_tensor *c, sw_err *err) {
    TRY(check_tensor(op, what, c, err));
    if (c->type != SW_TYPE_F16 && c->type != SW_TYPE_F32) {
        char d[96];
        return sw_err_set(err, SW_E_UNSUPPORTED, "%s: %s %s must be f16 or f32", op, what,
                          tdesc(c, d, sizeof d));
    }
    return SW_OK;
}

static sw_status check_kv_write(const char *op, const sw_tensor *k, const sw_tensor *v,
                                const sw_tensor *k_cache, const sw_tensor *v_cache,
                                const sw_tensor *slots, sw_err *err) {
    char d1[96], d2[96];
    TRY(check_type(op, "k", k, SW_TYPE_F32, err));
    TRY(check_type(op, "v", v, SW_TYPE_F32, err));
    TRY(check_same_shape(op, "k", k, "v", v, err));
    TRY(check_cache(op, "k_cache", k_cache, err));
    TRY(check_cache(op, "v_cache", v_cache, err));
    TRY(check_same_shape(op, "k_cache", k_cache, "v_cache", v_cache, err));
    if (k->ne[2] != 1 || k->ne[3] != 1 || k->ne[0] != k_cache->ne[0] * k_cache->ne[1])
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: k %s must be [head_dim * n_head_kv, T] for cache %s", op,
                          tdesc(k, d1, sizeof d1), tdesc(k_cache, d2, sizeof d2));
    return check_index(op, "slots", slots, k->ne[1], err);
}

sw_status sw_be_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v, sw_tensor *k_cache,
                         sw_tensor *v_cache, const sw_tensor *slots, sw_err *err) {
    TRY(check_be("kv_write", be, err));
    TRY(check_kv_write("kv_write", k, v, k_cache, v_cache, slots, err));
    count_op(be, mix_t(mix_t(mix_t(mix_t(mix_t(K_KV_WRITE, k), v), k_cache), v_cache), slots));
    return be->ops->kv_write(be, k, v, k_cache, v_cache, slots, err);
}

sw_status sw_be_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                          const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                          sw_err *err) {
    const char *op = "attention";
    char d1[96], d2[96];
    TRY(check_be(op, be, err));
    if (!p) return sw_err_set(err, SW_E_INVALID_ARG, "%s: params are NULL", op);
    TRY(check_type(op, "q", q, SW_TYPE_F32, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    TRY(check_cache(op, "k_cache", k_cache, err));
    TRY(check_cache(op, "v_cache", v_cache, err));
    TRY(check_same_shape(op, "k_cache", k_cache, "v_cache", v_cache, err));
    if (p->n_head <= 0 || p->n_head_kv <= 0 || p->head_dim <= 0 || p->n_head % p->n_head_kv)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: n_head %d must be a positive multiple of n_head_kv %d (head_dim %d)",
                          op, p->n_head, p->n_head_kv, p->head_dim);
    if (k_cache->ne[0] != p->head_dim || k_cache->ne[1] != p->n_head_kv ||
        k_cache->ne[2] != p->block_size)
        return sw_err_set(
            err, SW_E_INVALID_ARG,
            "%s: k_cache %s must be [head_dim %d, n_head_kv %d, block_size %d, n_blocks]", op,
            tdesc(k_cache, d1, sizeof d1), p->head_dim, p->n_head_kv, p->block_size);
    /* q and out: [head_dim * n_head, T] or [head_dim, n_head, T] */
    int64_t hd = p->head_dim, nh = p->n_head, T;
    if (q->ne[0] == hd * nh && q->ne[2] == 1 && q->ne[3] == 1)
        T = q->ne[1];
    else if (q->ne[0] == hd && q->ne[1] == nh && q->ne[3] == 1)
        T = q->ne[2];
    else
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: q %s must be [head_dim * n_head, T] or [head_dim, n_head, T] "
                          "(head_dim %d, n_head %d)",
                          op, tdesc(q, d1, sizeof d1), p->head_dim, p->n_head);
    bool out2d = out->ne[0] == hd * nh && out->ne[1] == T && out->ne[2] == 1;
    bool out3d = out->ne[0] == hd && out->ne[1] == nh && out->ne[2] == T;
    if (out->ne[3] != 1 || !(out2d || out3d))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: out %s does not match q %s", op,
                          tdesc(out, d1, sizeof d1), tdesc(q, d2, sizeof d2));
    if (p->n_seqs <= 0 || p->max_blocks <= 0 || p->block_size <= 0)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: n_seqs %d, max_blocks %d and block_size %d must be > 0", op,
                          p->n_seqs, p->max_blocks, p->block_size);
    if (!isfinite(p->scale))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: scale %g is not finite", op,
                          (double)p->scale);
    if (p->non_causal && !be->ops->non_causal_attention)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "%s: the %s backend has no non-causal attention", op,
                          sw_backend_name(be));
    if (p->window < 0)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: window %d must be >= 0 (0 = none)", op,
                          p->window);
    TRY(check_no_overlap(op, "out", out, "q", q, err));
    TRY(check_index(op, "seq_start", p->seq_start, (int64_t)p->n_seqs + 1, err));
    TRY(check_index(op, "pos", p->pos, T, err));
    TRY(check_type(op, "block_tables", p->block_tables, SW_TYPE_I32, err));
    if (p->block_tables->ne[0] != p->max_blocks || p->block_tables->ne[1] != p->n_seqs ||
        p->block_tables->ne[2] != 1 || p->block_tables->ne[3] != 1)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: block_tables %s must be [max_blocks %d, n_seqs %d]", op,
                          tdesc(p->block_tables, d1, sizeof d1), p->max_blocks, p->n_seqs);
    /* max_ctx is left out: it changes every decode step and only bounds scratch */
    uint64_t h = mix_t(mix_t(mix_t(mix_t(K_ATTENTION, q), k_cache), v_cache), out);
    h = mix_t(mix_t(mix_t(h, p->seq_start), p->pos), p->block_tables);
    const int32_t iv[] = {p->n_head, p->n_head_kv, p->head_dim, p->block_size, p->n_seqs,
                          p->max_blocks};
    for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++) h = mix(h, (uint64_t)iv[i]);
    count_op(be, mix_f(h, p->scale));
    return be->ops->attention(be, q, k_cache, v_cache, p, out, err);
}

static sw_status check_elementwise(const char *op, const char *na, const sw_tensor *a,
                                   const char *nb, const sw_tensor *b, const sw_tensor *out,
                                   sw_err *err) {
    TRY(check_type(op, na, a, SW_TYPE_F32, err));
    TRY(check_type(op, nb, b, SW_TYPE_F32, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    TRY(check_same_shape(op, na, a, nb, b, err));
    return check_same_shape(op, na, a, "out", out, err);
}

sw_status sw_be_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                       sw_err *err) {
    TRY(check_be("swiglu", be, err));
    TRY(check_elementwise("swiglu", "gate", gate, "up", up, out, err));
    count_op(be, mix_t(mix_t(mix_t(K_SWIGLU, gate), up), out));
    return be->ops->swiglu(be, gate, up, out, err);
}

sw_status sw_be_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up, sw_tensor *out,
                      sw_err *err) {
    TRY(check_be("geglu", be, err));
    TRY(check_elementwise("geglu", "gate", gate, "up", up, out, err));
    return be->ops->geglu(be, gate, up, out, err);
}

sw_status sw_be_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                    sw_err *err) {
    TRY(check_be("add", be, err));
    TRY(check_elementwise("add", "a", a, "b", b, out, err));
    count_op(be, mix_t(mix_t(mix_t(K_ADD, a), b), out));
    return be->ops->add(be, a, b, out, err);
}

static sw_status check_unary(const char *op, const sw_tensor *x, const sw_tensor *out,
                             sw_err *err) {
    TRY(check_type(op, "x", x, SW_TYPE_F32, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    return check_same_shape(op, "x", x, "out", out, err);
}

sw_status sw_be_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err) {
    TRY(check_be("scale", be, err));
    TRY(check_unary("scale", x, out, err));
    if (!isfinite(s))
        return sw_err_set(err, SW_E_INVALID_ARG, "scale: factor %g is not finite", (double)s);
    return be->ops->scale(be, x, s, out, err);
}

sw_status sw_be_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                        sw_err *err) {
    TRY(check_be("softcap", be, err));
    TRY(check_unary("softcap", x, out, err));
    if (!(cap > 0.0f) || !isfinite(cap))
        return sw_err_set(err, SW_E_INVALID_ARG, "softcap: cap %g must be finite and > 0",
                          (double)cap);
    return be->ops->softcap(be, x, cap, out, err);
}

/* ----------------------------------------------------------- encoder ops -- */

sw_status sw_be_layer_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                           const sw_tensor *b, float eps, sw_tensor *out, sw_err *err) {
    const char *op = "layer_norm";
    char d1[96], d2[96];
    TRY(check_be(op, be, err));
    TRY(check_type(op, "x", x, SW_TYPE_F32, err));
    TRY(check_type(op, "w", w, SW_TYPE_F32, err));
    TRY(check_type(op, "out", out, SW_TYPE_F32, err));
    TRY(check_same_shape(op, "x", x, "out", out, err));
    const sw_tensor *vecs[2] = {w, b};
    for (int i = 0; i < 2; i++) {
        if (!vecs[i]) continue;
        TRY(check_type(op, i ? "b" : "w", vecs[i], SW_TYPE_F32, err));
        if (sw_tensor_nelements(vecs[i]) != x->ne[0] || vecs[i]->ne[0] != x->ne[0])
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "%s: %s %s must have %" PRId64 " entries for x %s", op,
                              i ? "b" : "w", tdesc(vecs[i], d1, sizeof d1), x->ne[0],
                              tdesc(x, d2, sizeof d2));
    }
    if (!(eps >= 0.0f) || !isfinite(eps))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: eps %g must be finite and >= 0", op,
                          (double)eps);
    if (!be->ops->layer_norm)
        return sw_err_set(err, SW_E_UNSUPPORTED, "%s: the %s backend has no kernel for it", op,
                          sw_backend_name(be));
    return be->ops->layer_norm(be, x, w, b, eps, out, err);
}

sw_status sw_be_gelu(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err) {
    const char *op = "gelu";
    TRY(check_be(op, be, err));
    TRY(check_unary(op, x, out, err));
    if (!be->ops->gelu)
        return sw_err_set(err, SW_E_UNSUPPORTED, "%s: the %s backend has no kernel for it", op,
                          sw_backend_name(be));
    return be->ops->gelu(be, x, out, err);
}

sw_status sw_be_check_encoder_ops(sw_backend *be, sw_err *err) {
    TRY(check_be("encoder ops", be, err));
    const char *missing = !be->ops->layer_norm             ? "layer_norm"
                          : !be->ops->gelu                 ? "gelu"
                          : !be->ops->non_causal_attention ? "non-causal attention"
                                                           : NULL;
    if (!missing) return SW_OK;
    return sw_err_set(err, SW_E_UNSUPPORTED,
                      "the %s backend has no %s, which an encoder model (bert) needs "
                      "(the cpu and vulkan backends have it)",
                      sw_backend_name(be), missing);
}

/* ---------------------------------------------------------- fused ops -- */

sw_status sw_be_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h, const sw_tensor *w,
                             float eps, sw_tensor *out, sw_err *err) {
    const char *op = "add_rms_norm";
    TRY(check_be(op, be, err));
    TRY(check_elementwise(op, "x", x, "h", h, x, err));
    TRY(check_rms_norm(op, x, w, eps, out, err));
    TRY(check_no_overlap(op, "out", out, "x", x, err));
    count_op(be, mix_f(mix_t(mix_t(mix_t(mix_t(K_ADD_RMS_NORM, x), h), w), out), eps));
    if (be->ops->add_rms_norm) return be->ops->add_rms_norm(be, x, h, w, eps, out, err);
    TRY(be->ops->add(be, x, h, x, err));
    return be->ops->rms_norm(be, x, w, eps, out, err);
}

/* A [head_dim, n_heads, T] tensor whose heads are contiguous per token, as
 * the [head_dim * n_heads, T] matrix kv_write takes. */
static sw_tensor heads_flat(const sw_tensor *t) {
    sw_tensor f = *t;
    f.ne[0] = t->ne[0] * t->ne[1];
    f.ne[1] = t->ne[2];
    f.ne[2] = 1;
    f.nb[1] = t->nb[2];
    f.nb[2] = f.nb[1] * (size_t)f.ne[1];
    f.nb[3] = f.nb[2];
    return f;
}

sw_status sw_be_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                              const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                              sw_tensor *v_cache, const sw_tensor *slots, sw_err *err) {
    const char *op = "rope_kv_write";
    char d1[96], d2[96];
    TRY(check_be(op, be, err));
    TRY(check_rope(op, "q", q, pos, p, err));
    TRY(check_rope(op, "k", k, pos, p, err));
    if (q->ne[0] != k->ne[0] || q->nb[1] != q->nb[0] * (size_t)q->ne[0] ||
        k->nb[1] != k->nb[0] * (size_t)k->ne[0])
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "%s: q %s and k %s must share head_dim, with each token's heads "
                          "contiguous",
                          op, tdesc(q, d1, sizeof d1), tdesc(k, d2, sizeof d2));
    sw_tensor kf = heads_flat(k);
    /* (q, k and v are usually interleaved columns of one matrix: their byte
     * spans overlap while their elements do not, so no overlap check) */
    TRY(check_kv_write(op, &kf, v, k_cache, v_cache, slots, err));
    uint64_t hh = mix_t(mix_t(mix_t(mix_t(K_ROPE_KV_WRITE, q), k), v), pos);
    hh = mix_t(mix_t(mix_t(mix_rope(hh, p), k_cache), v_cache), slots);
    count_op(be, hh);
    if (be->ops->rope_kv_write)
        return be->ops->rope_kv_write(be, q, k, v, pos, p, k_cache, v_cache, slots, err);
    TRY(be->ops->rope(be, q, pos, p, err));
    TRY(be->ops->rope(be, k, pos, p, err));
    return be->ops->kv_write(be, &kf, v, k_cache, v_cache, slots, err);
}

/* ---------------------------------------------------- logits (host default) -- */

sw_status sw_be_logits_summary(sw_backend *be, const sw_tensor *logits, int32_t k,
                               sw_logits_stats *stats, int32_t *top_ids, float *top_logits,
                               sw_err *err) {
    const char *op = "logits_summary";
    char d1[96];
    TRY(check_be(op, be, err));
    TRY(check_type(op, "logits", logits, SW_TYPE_F32, err));
    if (logits->ne[2] != 1 || logits->ne[3] != 1)
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: logits %s must be [V, R]", op,
                          tdesc(logits, d1, sizeof d1));
    if (!stats) return sw_err_set(err, SW_E_INVALID_ARG, "%s: stats is NULL", op);
    if (k < 0 || k > logits->ne[0])
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: k %d out of [0, V = %" PRId64 "]", op, k,
                          logits->ne[0]);
    if (k > 0 && (!top_ids || !top_logits))
        return sw_err_set(err, SW_E_INVALID_ARG, "%s: k = %d needs top_ids and top_logits", op, k);
    be->count.stats.ops++;
    if (be->ops->logits_summary)
        return be->ops->logits_summary(be, logits, k, stats, top_ids, top_logits, err);

    int64_t V = logits->ne[0], R = logits->ne[1];
    uint8_t *host = sw_be_host_ptr(be, logits->buf);
    float *row = NULL;
    if (!host) {
        row = malloc((size_t)V * sizeof *row);
        if (!row)
            return sw_err_set(err, SW_E_NOMEM, "%s: cannot allocate a row of %" PRId64 " logits",
                              op, V);
    }
    for (int64_t r = 0; r < R; r++) {
        size_t off = logits->offset + (size_t)r * logits->nb[1];
        const float *l;
        if (host) {
            l = (const float *)(host + off);
        } else {
            sw_status st =
                be->ops->download(be, logits->buf, off, row, (size_t)V * sizeof *row, err);
            if (st != SW_OK) {
                free(row);
                return sw_err_wrap(err, st, "%s: row %" PRId64, op, r);
            }
            l = row;
        }
        sw_logits_row_stats(l, V, k, &stats[r], k > 0 ? top_ids + r * k : NULL,
                            k > 0 ? top_logits + r * k : NULL);
    }
    free(row);
    return SW_OK;
}
