// cuda_backend.cu — the CUDA backend object: device memory, transfers, the
// step (record ops, launch them at end, optionally as a CUDA graph), and the
// op entry points of the vtable, which validate what the generic wrappers in
// runtime/backend.c cannot (buffer bounds, alignment, head_dim limits) and
// record the op. The kernels live in one .cu per op family (cuda_*.cu).
//
// Status: written without access to a GPU. It compiles for sm_80/86/89/90;
// nothing here has run yet. tests/unit/test_cuda_ops.c checks it on hardware.
//
// Ownership: the backend owns its stream, cuBLAS handle, staging buffers,
// scratch and graph; buffers returned by buf_alloc are owned by the caller and
// must be freed (sw_be_buf_free) before the backend.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "cuda_internal.h"

#define STAGE_BYTES ((size_t)8 << 20)     // per pinned upload chunk (two of them)
#define CUBLAS_WS_BYTES ((size_t)32 << 20) // explicit cuBLAS workspace

static inline sw_cuda_backend *cu(sw_backend *be) { return (sw_cuda_backend *)be; }

// ------------------------------------------------------------------ errors --

static const char *k_op_names[] = {"?",        "get_rows",  "rms_norm", "matmul",
                                   "rope",     "kv_write",  "attention", "swiglu",
                                   "add",      "geglu",     "scale",    "softcap",
                                   "add_rms_norm", "rope_kv_write"};

static const char *op_name(int kind) {
    return (kind > 0 && kind < (int)(sizeof k_op_names / sizeof k_op_names[0])) ? k_op_names[kind]
                                                                                 : "?";
}

const char *swcu_op_desc(const swcu_op *op, char *buf, size_t n) {
    if (!op) {
        snprintf(buf, n, "backend");
        return buf;
    }
    size_t o = (size_t)snprintf(buf, n, "%s (op %d)", op_name(op->kind), op->index);
    for (int i = 0; i < SWCU_MAX_T && o < n; i++) {
        const swcu_tensor *t = &op->t[i];
        if (!t->p) continue;
        o += (size_t)snprintf(buf + o, n - o, " [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] %s",
                              t->ne[0], t->ne[1], t->ne[2], t->ne[3], sw_type_name((uint32_t)t->type));
    }
    return buf;
}

static sw_status status_of(cudaError_t e) {
    switch (e) {
    case cudaErrorMemoryAllocation: return SW_E_NOMEM;
    case cudaErrorNoDevice: return SW_E_NOT_FOUND;
    case cudaErrorInsufficientDriver:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion: return SW_E_UNSUPPORTED;
    default: return SW_E_BACKEND;
    }
}

sw_status swcu_cuda_fail(sw_err *err, cudaError_t e, const char *call, const swcu_op *op) {
    char d[400];
    return sw_err_set(err, status_of(e), "cuda %s: %s: %s (%s)", swcu_op_desc(op, d, sizeof d),
                      call, cudaGetErrorString(e), cudaGetErrorName(e));
}

sw_status swcu_cublas_fail(sw_err *err, cublasStatus_t s, const char *call, const swcu_op *op) {
    char d[400];
    sw_status st = s == CUBLAS_STATUS_ALLOC_FAILED ? SW_E_NOMEM
                   : s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_ARCH_MISMATCH
                       ? SW_E_UNSUPPORTED
                       : SW_E_BACKEND;
    return sw_err_set(err, st, "cuda %s: %s: %s (%d)", swcu_op_desc(op, d, sizeof d), call,
                      cublasGetStatusString(s), (int)s);
}

// Backend-level checks (no op): `err` in scope.
#define BE_TRY(call)                                                               \
    do {                                                                           \
        cudaError_t e_ = (call);                                                   \
        if (e_ != cudaSuccess) return swcu_cuda_fail(err, e_, #call, NULL);        \
    } while (0)

static sw_status enter(sw_cuda_backend *b, sw_err *err) {
    BE_TRY(cudaSetDevice(b->device));
    return SW_OK;
}

// ----------------------------------------------------------- create / free --

static const sw_backend_ops *cuda_ops_table(void); // at the bottom

static long env_long(const char *name, long def, long lo, long hi) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) {
        sw_log(SW_LOG_WARN, "cuda: ignoring %s=%s (expected %ld..%ld)", name, v, lo, hi);
        return def;
    }
    return x;
}

static void cuda_free(sw_backend *be) {
    if (!be) return;
    sw_cuda_backend *b = cu(be);
    cudaSetDevice(b->device);
    if (b->stream) cudaStreamSynchronize(b->stream);
    if (b->gexec) cudaGraphExecDestroy(b->gexec);
    if (b->cublas) cublasDestroy(b->cublas);
    cudaFree(b->cublas_ws);
    cudaFree(b->scratch);
    for (int i = 0; i < 2; i++) {
        if (b->stage_ev[i]) cudaEventDestroy(b->stage_ev[i]);
        cudaFreeHost(b->stage[i]);
    }
    cudaFreeHost(b->errw_host);
    cudaFree(b->errw_dev);
    cudaFreeHost(b->host_small);
    if (b->stream) cudaStreamDestroy(b->stream);
    free(b->ops);
    free(b);
}

extern "C" sw_status sw_backend_cuda_create(int32_t device, sw_backend **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "cuda: out is NULL");
    *out = NULL;
    if (device < 0) device = 0; // "any": the first device
    sw_cuda_device_info info;
    sw_status st = sw_cuda_device_info_get(device, &info, err);
    if (st != SW_OK) return st;
    if (info.cc_major < 8)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "cuda: device %d (%s) has compute capability %d.%d; this build needs "
                          "8.0 or newer (A100, RTX 30xx and later)",
                          device, info.name, info.cc_major, info.cc_minor);
    sw_cuda_backend *b = (sw_cuda_backend *)calloc(1, sizeof *b);
    if (!b) return sw_err_set(err, SW_E_NOMEM, "cuda: cannot allocate the backend");
    b->base.ops = cuda_ops_table();
    b->base.n_threads = 1;
    b->device = device;
    b->info = info;
    b->graphs = env_long("SW_CUDA_GRAPHS", 0, 0, 1) == 1;
    b->mmvq_max_t = (int)env_long("SW_CUDA_MMVQ_MAX_T", 8, 0, 8);
    b->mmq_max_t = (int)env_long("SW_CUDA_MMQ_MAX_T", 128, 0, 1 << 20);
    b->dequant_tile_bytes = (size_t)env_long("SW_CUDA_DEQUANT_TILE_MB", 64, 1, 4096) << 20;

#define CREATE_TRY(call)                                                           \
    do {                                                                           \
        cudaError_t e_ = (call);                                                   \
        if (e_ != cudaSuccess) {                                                   \
            st = swcu_cuda_fail(err, e_, #call, NULL);                             \
            goto fail;                                                             \
        }                                                                          \
    } while (0)
    {
        CREATE_TRY(cudaSetDevice(device));
        CREATE_TRY(cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking));
        for (int i = 0; i < 2; i++) {
            CREATE_TRY(cudaHostAlloc((void **)&b->stage[i], STAGE_BYTES, cudaHostAllocDefault));
            CREATE_TRY(cudaEventCreateWithFlags(&b->stage_ev[i], cudaEventDisableTiming));
        }
        b->stage_size = STAGE_BYTES;
        CREATE_TRY(cudaHostAlloc((void **)&b->errw_host, 4 * sizeof(int32_t), cudaHostAllocDefault));
        memset(b->errw_host, 0, 4 * sizeof(int32_t));
        CREATE_TRY(cudaMalloc((void **)&b->errw_dev, 4 * sizeof(int32_t)));
        CREATE_TRY(cudaMemsetAsync(b->errw_dev, 0, 4 * sizeof(int32_t), b->stream));
        CREATE_TRY(cudaMalloc(&b->cublas_ws, CUBLAS_WS_BYTES));
        b->cublas_ws_size = CUBLAS_WS_BYTES;
        cublasStatus_t cs = cublasCreate(&b->cublas);
        if (cs != CUBLAS_STATUS_SUCCESS) {
            st = swcu_cublas_fail(err, cs, "cublasCreate", NULL);
            b->cublas = NULL;
            goto fail;
        }
        if ((cs = cublasSetStream(b->cublas, b->stream)) != CUBLAS_STATUS_SUCCESS ||
            (cs = cublasSetWorkspace(b->cublas, b->cublas_ws, b->cublas_ws_size)) !=
                CUBLAS_STATUS_SUCCESS) {
            st = swcu_cublas_fail(err, cs, "cublasSetStream/cublasSetWorkspace", NULL);
            goto fail;
        }
    }
#undef CREATE_TRY
    sw_log(SW_LOG_INFO, "cuda: device %d %s (cc %d.%d, %d SMs, %.1f GiB)%s", device, info.name,
           info.cc_major, info.cc_minor, info.sm_count, (double)info.total_mem / (1 << 30),
           b->graphs ? ", CUDA graphs on" : "");
    *out = &b->base;
    return SW_OK;
fail:
    cuda_free(&b->base);
    return sw_err_wrap(err, st, "cuda: creating a backend on device %d", device);
}

extern "C" void sw_backend_cuda_graph_stats(const sw_backend *be, int64_t *captures,
                                            int64_t *replays) {
    const sw_cuda_backend *b = (const sw_cuda_backend *)be;
    if (captures) *captures = b ? b->stats.captures : 0;
    if (replays) *replays = b ? b->stats.replays : 0;
}

extern "C" void sw_backend_cuda_stats(const sw_backend *be, sw_cuda_stats *out) {
    const sw_cuda_backend *b = (const sw_cuda_backend *)be;
    if (!out) return;
    if (b) *out = b->stats;
    else memset(out, 0, sizeof *out);
}

// ------------------------------------------------------------------ memory --

static sw_status cuda_buf_alloc(sw_backend *be, size_t size, sw_buf_usage usage, sw_buffer **out,
                                sw_err *err) {
    sw_cuda_backend *b = cu(be);
    sw_status st = enter(b, err);
    if (st != SW_OK) return st;
    sw_buffer *buf = (sw_buffer *)calloc(1, sizeof *buf);
    if (!buf) return sw_err_set(err, SW_E_NOMEM, "cuda: cannot allocate a buffer descriptor");
    // 64 bytes of slack: 16-byte loads of a buffer's last bytes may reach past
    // them (swcu_ld_run32), and must stay inside the allocation.
    size_t n = size + 64;
    cudaError_t e = cudaMalloc((void **)&buf->dptr, n);
    if (e != cudaSuccess) {
        free(buf);
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        return sw_err_set(err, status_of(e),
                          "cuda: cudaMalloc of %zu bytes failed: %s (%zu of %zu bytes free)", size,
                          cudaGetErrorString(e), fr, tot);
    }
    // Zeroed so that nothing ever reads garbage (a NaN in an unused KV slot
    // times a zero weight would still be NaN). Stream-ordered, no wait.
    e = cudaMemsetAsync(buf->dptr, 0, n, b->stream);
    if (e != cudaSuccess) {
        cudaFree(buf->dptr);
        free(buf);
        return swcu_cuda_fail(err, e, "cudaMemsetAsync (new buffer)", NULL);
    }
    buf->size = size;
    buf->usage = usage;
    *out = buf;
    return SW_OK;
}

static sw_status flush_recorded(sw_cuda_backend *b, sw_err *err);

static void cuda_buf_free(sw_backend *be, sw_buffer *buf) {
    if (!buf) return;
    sw_cuda_backend *b = cu(be);
    cudaSetDevice(b->device);
    if (b->in_step && b->n_ops > b->n_run) {
        sw_err e;
        if (flush_recorded(b, &e) != SW_OK)
            sw_log(SW_LOG_WARN, "cuda: buf_free mid-step: %s", e.msg);
    }
    cudaStreamSynchronize(b->stream); // no launch may still read it
    cudaFree(buf->dptr);
    free(buf);
}

static sw_status check_range(const char *what, sw_buffer *buf, size_t offset, size_t n,
                             sw_err *err) {
    if (offset > buf->size || n > buf->size - offset)
        return sw_err_set(err, SW_E_RANGE,
                          "cuda %s: bytes [%zu, %zu + %zu) are past the end of a %zu-byte buffer",
                          what, offset, offset, n, buf->size);
    return SW_OK;
}

static sw_status cuda_upload(sw_backend *be, sw_buffer *dst, size_t offset, const void *src,
                             size_t n, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    sw_status st = check_range("upload", dst, offset, n, err);
    if (st != SW_OK || n == 0) return st;
    if ((st = enter(b, err)) != SW_OK) return st;
    if (b->in_step && b->n_ops > b->n_run && (st = flush_recorded(b, err)) != SW_OK) return st;
    // Copy through the pinned chunks: wait until the chunk's previous copy has
    // read it, fill it, queue the copy, mark the chunk busy. Returns without
    // waiting for the last copies; stream order puts them before later ops.
    const uint8_t *s = (const uint8_t *)src;
    for (size_t o = 0; o < n;) {
        size_t c = SW_MIN(n - o, b->stage_size);
        int k = b->stage_next;
        b->stage_next ^= 1;
        BE_TRY(cudaEventSynchronize(b->stage_ev[k]));
        memcpy(b->stage[k], s + o, c);
        BE_TRY(cudaMemcpyAsync(dst->dptr + offset + o, b->stage[k], c, cudaMemcpyHostToDevice,
                               b->stream));
        BE_TRY(cudaEventRecord(b->stage_ev[k], b->stream));
        o += c;
    }
    return SW_OK;
}

static sw_status cuda_download(sw_backend *be, sw_buffer *src, size_t offset, void *dst, size_t n,
                               sw_err *err) {
    sw_cuda_backend *b = cu(be);
    sw_status st = check_range("download", src, offset, n, err);
    if (st != SW_OK || n == 0) return st;
    if ((st = enter(b, err)) != SW_OK) return st;
    if (b->in_step && b->n_ops > b->n_run && (st = flush_recorded(b, err)) != SW_OK) return st;
    BE_TRY(cudaMemcpyAsync(dst, src->dptr + offset, n, cudaMemcpyDeviceToHost, b->stream));
    BE_TRY(cudaStreamSynchronize(b->stream));
    return SW_OK;
}

static sw_status cuda_mem_info(sw_backend *be, size_t *free_b, size_t *total_b, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    sw_status st = enter(b, err);
    if (st != SW_OK) return st;
    BE_TRY(cudaMemGetInfo(free_b, total_b));
    return SW_OK;
}

static bool cuda_supports_type(sw_backend *be, sw_type type) {
    (void)be;
    switch (type) {
    case SW_TYPE_F32: case SW_TYPE_F16: case SW_TYPE_BF16:
    case SW_TYPE_Q4_0: case SW_TYPE_Q4_1: case SW_TYPE_Q5_0: case SW_TYPE_Q5_1: case SW_TYPE_Q8_0:
    case SW_TYPE_Q2_K: case SW_TYPE_Q3_K: case SW_TYPE_Q4_K: case SW_TYPE_Q5_K: case SW_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

sw_status swcu_ensure_scratch(sw_cuda_backend *b, size_t n, sw_err *err) {
    if (n <= b->scratch_size) return SW_OK;
    size_t want = SW_MAX(n, b->scratch_size + b->scratch_size / 2);
    want = (want + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    BE_TRY(cudaStreamSynchronize(b->stream));
    cudaFree(b->scratch);
    b->scratch = NULL;
    b->scratch_size = 0;
    b->scratch_gen++;
    cudaError_t e = cudaMalloc((void **)&b->scratch, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        b->scratch = NULL;
        return sw_err_set(err, status_of(e), "cuda: cannot allocate %zu bytes of scratch: %s",
                          want, cudaGetErrorString(e));
    }
    b->scratch_size = want;
    return SW_OK;
}

sw_status swcu_ensure_host_small(sw_cuda_backend *b, size_t n, sw_err *err) {
    if (n <= b->host_small_size) return SW_OK;
    cudaFreeHost(b->host_small);
    b->host_small = NULL;
    b->host_small_size = 0;
    size_t want = SW_MAX(n, (size_t)64 << 10);
    BE_TRY(cudaHostAlloc(&b->host_small, want, cudaHostAllocDefault));
    b->host_small_size = want;
    return SW_OK;
}

// ------------------------------------------------------ executing recorded ops --

static sw_status run_op(sw_cuda_backend *b, const swcu_op *op, sw_err *err) {
    switch (op->kind) {
    case SWCU_GET_ROWS: return swcu_run_get_rows(b, op, err);
    case SWCU_RMS_NORM: return swcu_run_rms_norm(b, op, err);
    case SWCU_MATMUL: return swcu_run_matmul(b, op, err);
    case SWCU_ROPE: return swcu_run_rope(b, op, err);
    case SWCU_KV_WRITE: return swcu_run_kv_write(b, op, err);
    case SWCU_ATTENTION: return swcu_run_attention(b, op, err);
    case SWCU_SWIGLU:
    case SWCU_ADD:
    case SWCU_GEGLU:
    case SWCU_SCALE:
    case SWCU_SOFTCAP: return swcu_run_elementwise(b, op, err);
    case SWCU_ADD_RMS_NORM: return swcu_run_add_rms_norm(b, op, err);
    case SWCU_ROPE_KV_WRITE: return swcu_run_rope_kv_write(b, op, err);
    default: return sw_err_set(err, SW_E_INTERNAL, "cuda: unknown recorded op kind %d", op->kind);
    }
}

static sw_status run_list(sw_cuda_backend *b, const swcu_op *ops, int n, sw_err *err) {
    for (int i = 0; i < n; i++) {
        sw_status st = run_op(b, &ops[i], err);
        if (st != SW_OK) return st;
    }
    return SW_OK;
}

// Wait for the stream, then turn a flag raised by a kernel into an error
// naming the op, and clear it. ops/n: the ops that ran (to name them). The
// word is copied back behind the work in stream order (16 bytes per step).
static sw_status sync_and_check(sw_cuda_backend *b, const swcu_op *ops, int n, sw_err *err) {
    BE_TRY(cudaMemcpyAsync(b->errw_host, b->errw_dev, 4 * sizeof(int32_t), cudaMemcpyDeviceToHost,
                           b->stream));
    BE_TRY(cudaStreamSynchronize(b->stream));
    const int32_t *w = b->errw_host;
    const int code = w[0];
    if (code == 0) return SW_OK;
    const int idx = w[1], a = w[2], v = w[3];
    BE_TRY(cudaMemsetAsync(b->errw_dev, 0, 4 * sizeof(int32_t), b->stream));
    BE_TRY(cudaStreamSynchronize(b->stream));
    const swcu_op *op = NULL;
    for (int i = 0; i < n; i++)
        if (ops[i].index == idx) op = &ops[i];
    char d[400];
    swcu_op_desc(op, d, sizeof d);
    switch (code) {
    case SWCU_EFLAG_ID:
        return sw_err_set(err, SW_E_RANGE, "cuda %s: ids[%d] = %d outside a table of %" PRId64 " rows",
                          d, a, v, op ? op->t[0].ne[1] : (int64_t)-1);
    case SWCU_EFLAG_SLOT: {
        const swcu_tensor *kc = op ? &op->t[op->kind == SWCU_ROPE_KV_WRITE ? 5 : 2] : NULL;
        return sw_err_set(err, SW_E_RANGE, "cuda %s: slots[%d] = %d outside a cache of %" PRId64 " slots",
                          d, a, v, kc ? kc->ne[2] * kc->ne[3] : (int64_t)-1);
    }
    case SWCU_EFLAG_BLOCK:
        return sw_err_set(err, SW_E_RANGE,
                          "cuda %s: token %d reads KV block %d outside a cache of %" PRId64 " blocks",
                          d, a, v, op ? op->t[1].ne[3] : (int64_t)-1);
    case SWCU_EFLAG_POS:
        return sw_err_set(err, SW_E_RANGE,
                          "cuda %s: pos[%d] = %d outside [0, max_blocks * block_size)", d, a, v);
    case SWCU_EFLAG_SEQ:
        return sw_err_set(err, SW_E_RANGE,
                          "cuda %s: token %d is in no sequence: seq_start must rise from 0 to T "
                          "(seq_start[%d] is wrong)", d, a, v);
    default:
        return sw_err_set(err, SW_E_INTERNAL, "cuda %s: unknown error flag %d", d, code);
    }
}

// Run the ops recorded since the last flush eagerly (a transfer or free came
// mid-step: it must see their effects). The step can no longer be a graph.
// The ops stay in b->ops, so that a flag one of them raises is still reported
// under its own index and description at end.
static sw_status flush_recorded(sw_cuda_backend *b, sw_err *err) {
    b->step_graphable = false;
    sw_status st = swcu_ensure_scratch(b, b->step_scratch, err);
    if (st == SW_OK) st = run_list(b, b->ops + b->n_run, b->n_ops - b->n_run, err);
    if (st != SW_OK) b->step_failed = true;
    b->n_run = b->n_ops;
    return st;
}

static sw_status grow_sig(swcu_op **arr, int *cap, int n, sw_err *err) {
    if (n <= *cap) return SW_OK;
    int nc = SW_MAX(n, *cap * 2);
    swcu_op *p = (swcu_op *)realloc(*arr, (size_t)nc * sizeof *p);
    if (!p) return sw_err_set(err, SW_E_NOMEM, "cuda: cannot grow the op list to %d ops", nc);
    *arr = p;
    *cap = nc;
    return SW_OK;
}

// A step's signature: a 64-bit hash folded over every recorded op (what its
// kernels receive: kind, resolved tensors, scalars, launch choices) as it is
// recorded, plus the op count. Equal signatures mean the same launches with
// the same arguments up to a hash collision (~2^-64 per pair of different
// steps), and a hash is all that is kept per step (not a copy of the ops).
static uint64_t sig_mix(uint64_t h, uint64_t v) {
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t sig_words(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = sig_mix(h, w);
    }
    return h;
}

// Only the tensors an op uses (p != NULL) and its scalars: most of the
// SWCU_MAX_T slots are empty. The op's index is its place in the fold.
static uint64_t op_hash(uint64_t h, const swcu_op *op) {
    h = sig_mix(h, (uint64_t)op->kind);
    for (int i = 0; i < SWCU_MAX_T; i++) {
        h = sig_mix(h, (uint64_t)(uintptr_t)op->t[i].p);
        if (op->t[i].p) h = sig_words(h, &op->t[i], sizeof op->t[i]);
    }
    h = sig_words(h, op->f, sizeof op->f);
    return sig_words(h, op->i, sizeof op->i);
}
static_assert(sizeof(swcu_tensor) % 8 == 0 && sizeof(((swcu_op *)0)->f) % 8 == 0 &&
                  sizeof(((swcu_op *)0)->i) % 8 == 0,
              "op_hash folds whole 8-byte words");

// Capture the recorded ops into a graph (updating the existing executable
// when the topology allows), then launch it. On any failure the stream is
// left out of capture and the caller runs the ops eagerly instead.
static sw_status capture_and_launch(sw_cuda_backend *b, sw_err *err) {
    cudaGraph_t g = NULL;
    BE_TRY(cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeThreadLocal));
    sw_status st = run_list(b, b->ops, b->n_ops, err);
    cudaError_t e = cudaStreamEndCapture(b->stream, &g);
    if (st != SW_OK || e != cudaSuccess) {
        if (g) cudaGraphDestroy(g);
        (void)cudaGetLastError();
        return st != SW_OK ? st : swcu_cuda_fail(err, e, "cudaStreamEndCapture", NULL);
    }
    if (b->gexec) {
        cudaGraphExecUpdateResultInfo info;
        if (cudaGraphExecUpdate(b->gexec, g, &info) != cudaSuccess) {
            (void)cudaGetLastError();
            cudaGraphExecDestroy(b->gexec);
            b->gexec = NULL;
        }
    }
    if (!b->gexec) {
        e = cudaGraphInstantiate(&b->gexec, g, 0);
        if (e != cudaSuccess) {
            b->gexec = NULL;
            cudaGraphDestroy(g);
            return swcu_cuda_fail(err, e, "cudaGraphInstantiate", NULL);
        }
    }
    cudaGraphDestroy(g);
    b->gsig = b->step_sig;
    b->n_gsig = b->n_ops;
    b->ggen = b->scratch_gen;
    b->stats.captures++;
    BE_TRY(cudaGraphLaunch(b->gexec, b->stream));
    return SW_OK;
}

static sw_status cuda_begin(sw_backend *be, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    if (b->in_step && b->n_ops > b->n_run)
        sw_log(SW_LOG_WARN, "cuda: begin without end: dropping %d recorded ops",
               b->n_ops - b->n_run);
    b->in_step = true;
    b->step_failed = false;
    b->step_graphable = true;
    b->n_ops = 0;
    b->n_run = 0;
    b->step_scratch = 0;
    b->step_sig = 0x51C0u;
    return SW_OK;
}

// Launch the step: replay the graph when the ops match the one it was captured
// from; capture when they match the previous step's; else launch eagerly.
static sw_status launch_step(sw_cuda_backend *b, sw_err *err) {
    sw_status st = swcu_ensure_scratch(b, b->step_scratch, err);
    if (st != SW_OK) return st;
    if (b->graphs && b->step_graphable && b->n_ops > 0) {
        if (b->gexec && b->ggen == b->scratch_gen && b->n_ops == b->n_gsig &&
            b->step_sig == b->gsig) {
            BE_TRY(cudaGraphLaunch(b->gexec, b->stream));
            b->stats.replays++;
            return SW_OK;
        }
        if (b->n_ops == b->n_prev && b->step_sig == b->prev) {
            sw_err cerr;
            if (capture_and_launch(b, &cerr) == SW_OK) return SW_OK;
            sw_log(SW_LOG_WARN, "cuda: graph capture failed, running eagerly: %s", cerr.msg);
            b->graphs = false; // do not retry every step
        }
    }
    return run_list(b, b->ops + b->n_run, b->n_ops - b->n_run, err);
}

static sw_status cuda_end(sw_backend *be, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    sw_status st = enter(b, err);
    if (st != SW_OK) return st;
    if (!b->in_step) return sync_and_check(b, NULL, 0, err);
    b->in_step = false;
    if (b->step_failed) { // an op already reported the error; run nothing
        b->n_ops = 0;
        b->n_run = 0;
        b->n_prev = 0;
        sw_err ignored;
        sync_and_check(b, NULL, 0, &ignored); // clears a flag a flushed op may have raised
        return SW_OK;
    }
    st = launch_step(b, err);
    if (st == SW_OK) {
        st = sync_and_check(b, b->ops, b->n_ops, err);
    } else {
        sw_err ignored; // the launch error is the one to report; clear any flag too
        sync_and_check(b, NULL, 0, &ignored);
    }
    // remember this step's signature for the next step to compare with
    b->prev = b->step_sig;
    b->n_prev = st == SW_OK && b->graphs && b->step_graphable ? b->n_ops : 0;
    b->n_ops = 0;
    b->n_run = 0;
    return st;
}

// ---------------------------------------------------------------- recording --

// Natural alignment of a type's elements/blocks in bytes: the lowest set bit
// of its size, capped at 4 (the widest load the block kernels assume).
static size_t type_align(int type) {
    const sw_type_traits *tr = sw_type_get((uint32_t)type);
    size_t s = tr ? tr->type_size : 1;
    size_t a = s & (~s + 1);
    return SW_MIN(a, (size_t)4);
}

// Resolve t (NULL allowed: absent) to a device address, checking that it lies
// inside its buffer and is aligned for the kernels that will read it.
static sw_status resolve(const char *op, const char *what, const sw_tensor *t, swcu_tensor *o,
                         sw_err *err) {
    memset(o, 0, sizeof *o);
    if (!t) return SW_OK;
    if (!t->buf) return sw_err_set(err, SW_E_INVALID_ARG, "cuda %s: %s has no buffer", op, what);
    size_t span = sw_tensor_nbytes(t);
    if (span == 0)
        return sw_err_set(err, SW_E_INVALID_ARG, "cuda %s: %s has an empty or invalid shape", op,
                          what);
    if (t->offset > t->buf->size || span > t->buf->size - t->offset)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "cuda %s: %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                          "] at offset %zu spans %zu bytes, past the end of its %zu-byte buffer",
                          op, what, t->ne[0], t->ne[1], t->ne[2], t->ne[3], t->offset, span,
                          t->buf->size);
    size_t a = type_align(t->type), mis = t->offset % a;
    for (int i = 1; i < 4; i++)
        if (t->ne[i] > 1) mis |= t->nb[i] % a;
    if (mis)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "cuda %s: %s (%s) offset %zu / strides %zu, %zu, %zu are not multiples "
                          "of %zu bytes",
                          op, what, sw_type_name((uint32_t)t->type), t->offset, t->nb[1], t->nb[2],
                          t->nb[3], a);
    o->p = t->buf->dptr + t->offset;
    o->type = (int32_t)t->type;
    for (int i = 0; i < 4; i++) {
        o->ne[i] = t->ne[i];
        o->nb[i] = t->nb[i];
    }
    return SW_OK;
}

static size_t op_scratch(const sw_cuda_backend *b, const swcu_op *op) {
    switch (op->kind) {
    case SWCU_MATMUL: return swcu_matmul_scratch(b, op);
    case SWCU_ATTENTION: return swcu_attention_scratch(op);
    default: return 0;
    }
}

// Inside a step: append. Outside: run now, wait, and report flagged errors.
static sw_status submit(sw_cuda_backend *b, swcu_op *op, sw_err *err) {
    sw_status st;
    if (b->in_step) {
        if (b->step_failed)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "cuda %s: an earlier op of this step failed; call end first",
                              op_name(op->kind));
        if ((st = grow_sig(&b->ops, &b->cap_ops, b->n_ops + 1, err)) != SW_OK) return st;
        op->index = b->n_ops;
        memcpy(&b->ops[b->n_ops++], op, sizeof *op);
        b->step_sig = op_hash(b->step_sig, op);
        b->step_scratch = SW_MAX(b->step_scratch, op_scratch(b, op));
        return SW_OK;
    }
    if ((st = enter(b, err)) != SW_OK) return st;
    op->index = 0;
    if ((st = swcu_ensure_scratch(b, op_scratch(b, op), err)) != SW_OK) return st;
    if ((st = run_op(b, op, err)) != SW_OK) return st;
    return sync_and_check(b, op, 1, err);
}

static swcu_op new_op(int kind) {
    swcu_op op;
    memset(&op, 0, sizeof op); // bytewise-compared: no stray padding bytes
    op.kind = kind;
    return op;
}

static sw_status failed(sw_cuda_backend *b, sw_status st) {
    if (b->in_step) b->step_failed = true;
    return st;
}

#define REC_TRY(expr)                                                              \
    do {                                                                           \
        sw_status st_ = (expr);                                                    \
        if (st_ != SW_OK) return failed(b, st_);                                   \
    } while (0)

static sw_status cuda_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                               sw_tensor *out, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_GET_ROWS);
    REC_TRY(resolve("get_rows", "table", table, &op.t[0], err));
    REC_TRY(resolve("get_rows", "ids", ids, &op.t[1], err));
    REC_TRY(resolve("get_rows", "out", out, &op.t[2], err));
    if (!cuda_supports_type(be, table->type))
        return failed(b, sw_err_set(err, SW_E_UNSUPPORTED, "cuda get_rows: cannot dequantize %s",
                                    sw_type_name((uint32_t)table->type)));
    if (out->ne[0] != table->ne[0] || sw_tensor_nelements(out) != out->ne[0] * ids->ne[0] ||
        table->ne[2] * table->ne[3] != 1)
        return failed(b, sw_err_set(err, SW_E_INVALID_ARG,
                                    "cuda get_rows: out [%" PRId64 ", %" PRId64 "] must be [%" PRId64
                                    ", %" PRId64 "] and the table 2-D",
                                    out->ne[0], out->ne[1], table->ne[0], ids->ne[0]));
    return submit(b, &op, err);
}

static sw_status cuda_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                               sw_tensor *out, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_RMS_NORM);
    REC_TRY(resolve("rms_norm", "x", x, &op.t[0], err));
    REC_TRY(resolve("rms_norm", "w", w, &op.t[1], err));
    REC_TRY(resolve("rms_norm", "out", out, &op.t[2], err));
    if (sw_tensor_nelements(w) < x->ne[0] || sw_tensor_nelements(out) != sw_tensor_nelements(x) ||
        out->ne[0] != x->ne[0])
        return failed(b, sw_err_set(err, SW_E_INVALID_ARG,
                                    "cuda rms_norm: w must have %" PRId64 " entries and out the shape of x",
                                    x->ne[0]));
    op.f[0] = eps;
    return submit(b, &op, err);
}

// SwiGLU fused with the next matmul's activation quantization: when the op
// just recorded (not run yet) is a swiglu whose output is this int8-path
// matmul's input, the swiglu kernel also quantizes what it writes into the
// scratch the matmul reads (swcu_run_elementwise), and the matmul skips its
// own quantize launch. Deterministic in the recorded ops, so graph signatures
// stay valid.
static void fuse_swiglu_quantize(sw_cuda_backend *b, swcu_op *op) {
    const swcu_tensor *x = &op->t[1];
    if (!b->in_step || b->n_ops == 0 || b->n_ops - 1 < b->n_run) return;
    swcu_op *prev = &b->ops[b->n_ops - 1];
    if (prev->kind != SWCU_SWIGLU || (op->i[0] != SWCU_MM_MMVQ && op->i[0] != SWCU_MM_MMQ)) return;
    if (memcmp(&prev->t[2], x, sizeof *x) != 0 || x->ne[2] != 1 || x->ne[3] != 1 ||
        x->ne[0] % 32 != 0 || prev->t[0].ne[2] != 1 || prev->t[0].ne[3] != 1)
        return;
    prev->i[0] = 1; // swiglu: quantize its output into the scratch
    op->i[2] = 1;   // matmul: x is quantized already
    b->stats.swiglu_q8++;
}

static sw_status cuda_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                             const sw_tensor *bias, sw_tensor *out, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_MATMUL);
    REC_TRY(resolve("matmul", "w", w, &op.t[0], err));
    REC_TRY(resolve("matmul", "x", x, &op.t[1], err));
    REC_TRY(resolve("matmul", "bias", bias, &op.t[2], err));
    REC_TRY(resolve("matmul", "out", out, &op.t[3], err));
    if (x->ne[1] > INT32_MAX || w->ne[1] > INT32_MAX || w->ne[0] > INT32_MAX)
        return failed(b, sw_err_set(err, SW_E_UNSUPPORTED, "cuda matmul: dimensions over 2^31"));
    swcu_matmul_plan(b, &op);
    fuse_swiglu_quantize(b, &op);
    int64_t *path_count[] = {&b->stats.mm_mmvq, &b->stats.mm_float, &b->stats.mm_cublas,
                             &b->stats.mm_mmq};
    (*path_count[op.i[0]])++;
    return submit(b, &op, err);
}

static sw_status cuda_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos,
                           const sw_rope_params *p, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_ROPE);
    REC_TRY(resolve("rope", "x", x, &op.t[0], err));
    REC_TRY(resolve("rope", "pos", pos, &op.t[1], err));
    REC_TRY(resolve("rope", "freq_factors", p->freq_factors, &op.t[2], err));
    op.i[0] = p->n_dims;
    op.i[1] = p->mode;
    op.f[0] = p->freq_base;
    op.f[1] = p->freq_scale;
    return submit(b, &op, err);
}

static sw_status cuda_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                               sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                               sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_KV_WRITE);
    REC_TRY(resolve("kv_write", "k", k, &op.t[0], err));
    REC_TRY(resolve("kv_write", "v", v, &op.t[1], err));
    REC_TRY(resolve("kv_write", "k_cache", k_cache, &op.t[2], err));
    REC_TRY(resolve("kv_write", "v_cache", v_cache, &op.t[3], err));
    REC_TRY(resolve("kv_write", "slots", slots, &op.t[4], err));
    if (k_cache->nb[1] != v_cache->nb[1] || k_cache->nb[2] != v_cache->nb[2] ||
        k_cache->nb[3] != v_cache->nb[3] || k_cache->type != v_cache->type)
        return failed(b, sw_err_set(err, SW_E_INVALID_ARG,
                                    "cuda kv_write: k_cache and v_cache must have the same type and strides"));
    return submit(b, &op, err);
}

static sw_status cuda_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                                const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                                sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_ATTENTION);
    REC_TRY(resolve("attention", "q", q, &op.t[0], err));
    REC_TRY(resolve("attention", "k_cache", k_cache, &op.t[1], err));
    REC_TRY(resolve("attention", "v_cache", v_cache, &op.t[2], err));
    REC_TRY(resolve("attention", "out", out, &op.t[3], err));
    REC_TRY(resolve("attention", "seq_start", p->seq_start, &op.t[4], err));
    REC_TRY(resolve("attention", "pos", p->pos, &op.t[5], err));
    REC_TRY(resolve("attention", "block_tables", p->block_tables, &op.t[6], err));
    if (k_cache->nb[1] != v_cache->nb[1] || k_cache->nb[2] != v_cache->nb[2] ||
        k_cache->nb[3] != v_cache->nb[3] || k_cache->type != v_cache->type)
        return failed(b, sw_err_set(err, SW_E_INVALID_ARG,
                                    "cuda attention: k_cache and v_cache must have the same type and strides"));
    op.i[SWCU_A_NHEAD] = p->n_head;
    op.i[SWCU_A_NHEADKV] = p->n_head_kv;
    op.i[SWCU_A_HEADDIM] = p->head_dim;
    op.i[SWCU_A_BLOCKSIZE] = p->block_size;
    op.i[SWCU_A_NSEQS] = p->n_seqs;
    op.i[SWCU_A_MAXBLOCKS] = p->max_blocks;
    op.i[SWCU_A_WINDOW] = p->window;
    op.f[0] = p->scale;
    // max_ctx (which changes every decode step) stays out of the op: the
    // split count comes from the tables' capacity, so graphs stay replayable.
    REC_TRY(swcu_attention_plan(b, &op, err));
    if (op.i[SWCU_A_SPLITS] > 1) b->stats.attn_split++;
    if (op.i[SWCU_A_WARP]) b->stats.attn_warp++;
    return submit(b, &op, err);
}

static sw_status elementwise(sw_cuda_backend *b, int kind, const sw_tensor *a, const sw_tensor *c,
                             sw_tensor *out, sw_err *err) {
    const char *name = op_name(kind);
    swcu_op op = new_op(kind);
    REC_TRY(resolve(name, "a", a, &op.t[0], err));
    REC_TRY(resolve(name, "b", c, &op.t[1], err));
    REC_TRY(resolve(name, "out", out, &op.t[2], err));
    return submit(b, &op, err);
}

static sw_status cuda_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                             sw_tensor *out, sw_err *err) {
    return elementwise(cu(be), SWCU_SWIGLU, gate, up, out, err);
}

static sw_status cuda_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                            sw_tensor *out, sw_err *err) {
    return elementwise(cu(be), SWCU_GEGLU, gate, up, out, err);
}

static sw_status cuda_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                          sw_err *err) {
    return elementwise(cu(be), SWCU_ADD, a, b, out, err);
}

static sw_status unary(sw_cuda_backend *b, int kind, const sw_tensor *x, float f, sw_tensor *out,
                       sw_err *err) {
    const char *name = op_name(kind);
    swcu_op op = new_op(kind);
    REC_TRY(resolve(name, "x", x, &op.t[0], err));
    REC_TRY(resolve(name, "out", out, &op.t[1], err));
    op.f[0] = f;
    return submit(b, &op, err);
}

static sw_status cuda_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out,
                            sw_err *err) {
    return unary(cu(be), SWCU_SCALE, x, s, out, err);
}

static sw_status cuda_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                              sw_err *err) {
    return unary(cu(be), SWCU_SOFTCAP, x, cap, out, err);
}

static sw_status cuda_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h,
                                   const sw_tensor *w, float eps, sw_tensor *out, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_op op = new_op(SWCU_ADD_RMS_NORM);
    REC_TRY(resolve("add_rms_norm", "x", x, &op.t[0], err));
    REC_TRY(resolve("add_rms_norm", "h", h, &op.t[1], err));
    REC_TRY(resolve("add_rms_norm", "w", w, &op.t[2], err));
    REC_TRY(resolve("add_rms_norm", "out", out, &op.t[3], err));
    op.f[0] = eps;
    return submit(b, &op, err);
}

static sw_status cuda_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                                    const sw_tensor *pos, const sw_rope_params *p,
                                    sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                                    sw_err *err) {
    sw_cuda_backend *b = cu(be);
    const char *name = "rope_kv_write";
    swcu_op op = new_op(SWCU_ROPE_KV_WRITE);
    REC_TRY(resolve(name, "q", q, &op.t[0], err));
    REC_TRY(resolve(name, "k", k, &op.t[1], err));
    REC_TRY(resolve(name, "v", v, &op.t[2], err));
    REC_TRY(resolve(name, "pos", pos, &op.t[3], err));
    REC_TRY(resolve(name, "freq_factors", p->freq_factors, &op.t[4], err));
    REC_TRY(resolve(name, "k_cache", k_cache, &op.t[5], err));
    REC_TRY(resolve(name, "v_cache", v_cache, &op.t[6], err));
    REC_TRY(resolve(name, "slots", slots, &op.t[7], err));
    if (k_cache->nb[1] != v_cache->nb[1] || k_cache->nb[2] != v_cache->nb[2] ||
        k_cache->nb[3] != v_cache->nb[3] || k_cache->type != v_cache->type)
        return failed(b, sw_err_set(err, SW_E_INVALID_ARG,
                                    "cuda rope_kv_write: k_cache and v_cache must have the same type and strides"));
    op.i[0] = p->n_dims;
    op.i[1] = p->mode;
    op.f[0] = p->freq_base;
    op.f[1] = p->freq_scale;
    return submit(b, &op, err);
}

static sw_status cuda_logits_summary(sw_backend *be, const sw_tensor *logits, int32_t k,
                                     sw_logits_stats *stats, int32_t *top_ids,
                                     float *top_logits, sw_err *err) {
    sw_cuda_backend *b = cu(be);
    swcu_tensor lt;
    sw_status st = resolve("logits_summary", "logits", logits, &lt, err);
    if (st != SW_OK) return st;
    if ((st = enter(b, err)) != SW_OK) return st;
    if (b->in_step && b->n_ops > b->n_run && (st = flush_recorded(b, err)) != SW_OK) return st;
    return swcu_logits_summary(b, &lt, k, stats, top_ids, top_logits, err);
}

// Pinned host memory: transfers from it need no staging copy (the engine's
// logits rows).
static void *cuda_host_alloc(sw_backend *be, size_t size) {
    sw_cuda_backend *b = cu(be);
    if (cudaSetDevice(b->device) != cudaSuccess) return NULL;
    void *p = NULL;
    if (cudaHostAlloc(&p, size ? size : 1, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_host_free(sw_backend *be, void *p) {
    (void)be;
    cudaFreeHost(p);
}

static const sw_backend_ops k_cuda_ops = {
    /* name */ "cuda",
    /* free */ cuda_free,
    /* buf_alloc */ cuda_buf_alloc,
    /* buf_free */ cuda_buf_free,
    /* upload */ cuda_upload,
    /* download */ cuda_download,
    /* upload_weight */ NULL, // GGUF layout as is (see cuda_quant.cuh)
    /* mem_info */ cuda_mem_info,
    /* supports_type */ cuda_supports_type,
    /* host_ptr */ NULL,
    /* begin */ cuda_begin,
    /* end */ cuda_end,
    /* get_rows */ cuda_get_rows,
    /* rms_norm */ cuda_rms_norm,
    /* matmul */ cuda_matmul,
    /* rope */ cuda_rope,
    /* kv_write */ cuda_kv_write,
    /* attention */ cuda_attention,
    /* swiglu */ cuda_swiglu,
    /* geglu */ cuda_geglu,
    /* add */ cuda_add,
    /* scale */ cuda_scale,
    /* softcap */ cuda_softcap,
    /* add_rms_norm */ cuda_add_rms_norm,
    /* rope_kv_write */ cuda_rope_kv_write,
    /* logits_summary */ cuda_logits_summary,
    /* layer_norm */ NULL, // encoder (bert) ops not written for CUDA yet:
    /* gelu */ NULL,       // loading a bert model here says so
    /* non_causal_attention */ false,
    /* host_alloc */ cuda_host_alloc,
    /* host_free */ cuda_host_free,
};

static const sw_backend_ops *cuda_ops_table(void) { return &k_cuda_ops; }
