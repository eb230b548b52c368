// cuda_internal.h — shared by the CUDA backend's .cu files only: the buffer
// and backend structs, the recorded-op format, the error helpers and check
// macros, and the launcher entry point of each op family.
//
// An op is recorded as a swcu_op: plain data holding every value its kernels
// receive (resolved device addresses, shapes, strides, scalars, and launch
// choices such as the attention split count). Two steps whose op arrays are
// bytewise equal therefore launch identical kernels with identical arguments,
// which is what makes replaying a captured CUDA graph safe (cuda_backend.cu
// compares hashes of the arrays). Launchers must not read anything else that
// can change between steps, except the backend's scratch (whose reallocation
// invalidates graphs); launch choices must not depend on anything that changes
// every decode step (the attention split count depends on the block tables'
// capacity, not on the current context length).
#ifndef SW_CUDA_INTERNAL_H
#define SW_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "backend.h"
#include "cuda_backend.h"
#include "cuda_device.h"

struct sw_buffer {
    uint8_t *dptr; // cudaMalloc'd, owned
    size_t size;
    sw_buf_usage usage;
};

// A tensor resolved to a device address (p == NULL: absent optional tensor).
typedef struct swcu_tensor {
    uint8_t *p;
    int32_t type;
    int32_t pad_; // keeps the struct free of implicit padding (bytewise compares)
    int64_t ne[4];
    uint64_t nb[4];
} swcu_tensor;

typedef enum swcu_op_kind {
    SWCU_GET_ROWS = 1, // t: table, ids, out
    SWCU_RMS_NORM,     // t: x, w, out; f0 eps
    SWCU_MATMUL,       // t: w, x, bias (optional), out; i0 path (SWCU_MM_*), i1 tile rows,
                       // i2 1: x already quantized in the scratch (by the swiglu before)
    SWCU_ROPE,         // t: x, pos, freq_factors (optional); i0 n_dims, i1 mode; f0 base, f1 scale
    SWCU_KV_WRITE,     // t: k, v, k_cache, v_cache, slots
    SWCU_ATTENTION,    // t: q, k_cache, v_cache, out, seq_start, pos, block_tables; i: SWCU_A_*; f0 scale
    SWCU_SWIGLU,       // t: gate, up, out; i0 1: also quantize out for the next matmul
    SWCU_ADD,          // t: a, b, out
    SWCU_GEGLU,        // t: gate, up, out
    SWCU_SCALE,        // t: x, out; f0 factor
    SWCU_SOFTCAP,      // t: x, out; f0 cap
    SWCU_ADD_RMS_NORM, // t: x, h, w, out; f0 eps
    SWCU_ROPE_KV_WRITE, // t: q, k, v, pos, freq_factors (optional), k_cache, v_cache, slots;
                        // i0 n_dims, i1 mode; f0 base, f1 scale
} swcu_op_kind;

// matmul paths (i[0])
enum { SWCU_MM_MMVQ = 0, SWCU_MM_MMV_FLOAT = 1, SWCU_MM_CUBLAS = 2, SWCU_MM_MMQ = 3 };

// attention integer parameters (i[])
enum {
    SWCU_A_NHEAD = 0,
    SWCU_A_NHEADKV,
    SWCU_A_HEADDIM,
    SWCU_A_BLOCKSIZE,
    SWCU_A_NSEQS,
    SWCU_A_MAXBLOCKS,
    SWCU_A_SPLITS,   // key-range splits per (token, head group); 1 = no combine pass
    SWCU_A_GB,       // query heads per thread block (a divisor-free chunk of the GQA group)
    SWCU_A_WINDOW,   // sliding window in positions; 0 = the whole causal context
    SWCU_A_WARP,     // 1: the warp-per-key decode kernel (cuda_attention.cu)
};

#define SWCU_MAX_T 8
typedef struct swcu_op {
    int32_t kind;
    int32_t index; // position in the step, for error messages
    swcu_tensor t[SWCU_MAX_T];
    float f[4];
    int32_t i[12];
} swcu_op;
// No implicit padding anywhere: ops are compared with memcmp.
static_assert(sizeof(swcu_tensor) == 80, "swcu_tensor has padding");
static_assert(sizeof(swcu_op) == 8 + SWCU_MAX_T * 80 + 16 + 48, "swcu_op has padding");

typedef struct sw_cuda_backend {
    sw_backend base; // must be first
    int device;
    sw_cuda_device_info info;
    cudaStream_t stream;      // owned; every launch and copy goes here
    cublasHandle_t cublas;    // owned, bound to stream
    void *cublas_ws;          // owned cuBLAS workspace (set explicitly: graph capture safe)
    size_t cublas_ws_size;

    // upload staging: two pinned chunks used alternately, each guarded by an
    // event recorded after the copy that reads it
    uint8_t *stage[2];
    cudaEvent_t stage_ev[2];
    size_t stage_size;
    int stage_next;

    // data-dependent error word (4 x int32): device copy the kernels write,
    // pinned host copy read back at the end of each step
    int32_t *errw_host;
    int32_t *errw_dev;

    // scratch shared by all ops (they run in stream order): quantized
    // activations, f16 tiles, attention partials, logits summaries
    uint8_t *scratch;
    size_t scratch_size;
    uint64_t scratch_gen; // bumped on reallocation (invalidates graphs)
    void *host_small;     // pinned host buffer for small results (logits summary)
    size_t host_small_size;

    // the step being recorded
    bool in_step;
    bool step_failed;     // an op of this step failed to record: end discards it
    bool step_graphable;  // false once a transfer forced a flush mid-step
    swcu_op *ops;        // every op of the step, flushed ones included (error messages)
    int n_ops, cap_ops;
    int n_run;           // ops[0, n_run) already ran (a transfer or free flushed them)
    size_t step_scratch; // max scratch any op of the step needs

    // graphs (SW_CUDA_GRAPHS=1); a signature is a hash of the recorded ops
    // and their count (cuda_backend.cu, op_hash)
    bool graphs;
    uint64_t step_sig;  // of the step being recorded
    uint64_t prev;      // of the previous step
    int n_prev;         // its op count (0: it cannot be captured)
    uint64_t gsig;      // of the step the instantiated graph was captured from
    int n_gsig;
    cudaGraphExec_t gexec;
    uint64_t ggen; // scratch_gen at capture
    int64_t n_captures, n_replays;

    // what ran (sw_backend_cuda_stats); counted when recorded
    sw_cuda_stats stats;

    // tuning (environment, read at create)
    int mmvq_max_t;
    int mmq_max_t;
    size_t dequant_tile_bytes;
} sw_cuda_backend;

// ---- errors ----
// "cuda <op description>: <call>: <CUDA error text> (<name>)", with the status
// that fits (out of memory -> SW_E_NOMEM, ...). op may be NULL.
sw_status swcu_cuda_fail(sw_err *err, cudaError_t e, const char *call, const swcu_op *op);
sw_status swcu_cublas_fail(sw_err *err, cublasStatus_t s, const char *call, const swcu_op *op);
// "matmul w [4096, 4096, 1, 1] q4_0 x [4096, 1, 1, 1] f32 ..." into buf.
const char *swcu_op_desc(const swcu_op *op, char *buf, size_t n);

// In a launcher: `op` and `err` in scope.
#define SWCU_TRY(call)                                                          \
    do {                                                                        \
        cudaError_t e_ = (call);                                                \
        if (e_ != cudaSuccess) return swcu_cuda_fail(err, e_, #call, op);       \
    } while (0)
#define SWCU_LAUNCHED(kname)                                                    \
    do {                                                                        \
        cudaError_t e_ = cudaGetLastError();                                    \
        if (e_ != cudaSuccess) return swcu_cuda_fail(err, e_, "launch " kname, op); \
    } while (0)
#define SWCU_CUBLAS(call)                                                       \
    do {                                                                        \
        cublasStatus_t s_ = (call);                                             \
        if (s_ != CUBLAS_STATUS_SUCCESS) return swcu_cublas_fail(err, s_, #call, op); \
    } while (0)

// Error codes the kernels put in errw[0].
enum { SWCU_EFLAG_ID = 1, SWCU_EFLAG_SLOT, SWCU_EFLAG_BLOCK, SWCU_EFLAG_POS, SWCU_EFLAG_SEQ };

// ---- launchers (one per op family; each file documents its kernels) ----
// Scratch (bytes) an op needs from be->scratch while it runs.
size_t swcu_matmul_scratch(const sw_cuda_backend *be, const swcu_op *op);
size_t swcu_attention_scratch(const swcu_op *op);
// Decisions made at record time (kept in the op so the signature covers them).
void swcu_matmul_plan(const sw_cuda_backend *be, swcu_op *op);
sw_status swcu_attention_plan(const sw_cuda_backend *be, swcu_op *op, sw_err *err);

sw_status swcu_run_get_rows(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_rms_norm(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_matmul(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_rope(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_kv_write(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_attention(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_elementwise(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_add_rms_norm(sw_cuda_backend *be, const swcu_op *op, sw_err *err);
sw_status swcu_run_rope_kv_write(sw_cuda_backend *be, const swcu_op *op, sw_err *err);

// Per-row logits statistics and top-k on the device (cuda_logits.cu). Runs at
// once and waits; results land in the host arrays.
sw_status swcu_logits_summary(sw_cuda_backend *be, const swcu_tensor *logits, int32_t k,
                              sw_logits_stats *stats, int32_t *top_ids, float *top_logits,
                              sw_err *err);
// Grow be->scratch / be->host_small to at least n bytes (outside capture).
sw_status swcu_ensure_scratch(sw_cuda_backend *be, size_t n, sw_err *err);
sw_status swcu_ensure_host_small(sw_cuda_backend *be, size_t n, sw_err *err);

// ---- matmul pieces shared between cuda_matmul.cu and the mat-vec files ----
// Where the int8 paths keep x quantized in the scratch: xq [T][K] at 0, then
// xds [T][K/32] (256-byte aligned).
static inline size_t swcu_xds_offset(int64_t T, int64_t K) {
    return ((size_t)T * (size_t)K + 255) & ~(size_t)255;
}
// out = silu(a) * b for a [K, T] (K % 32 == 0), and out quantized as
// swcu_quantize_q8 would (into xq, xds): the swiglu fused with the next
// matmul's quantization.
sw_status swcu_swiglu_q8(const swcu_op *op, int8_t *xq, float2 *xds, cudaStream_t st,
                         sw_err *err);
// Quantize x [K, T] (row stride xs floats) to int8 groups + {d, d*sum}.
sw_status swcu_quantize_q8(const float *x, int64_t xs, int64_t K, int64_t T, int8_t *xq,
                           float2 *xds, cudaStream_t st, const swcu_op *op, sw_err *err);
// out[n, t] (row stride os) = sum_k W[n][k] * x_hat[t][k] (+ bias[n]) for t < T <= 8.
sw_status swcu_mmvq_legacy(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                           const int8_t *xq, const float2 *xds, int64_t T, float *out,
                           int64_t os, const float *bias, cudaStream_t st, const swcu_op *op,
                           sw_err *err);
// 9..128 rows on the int8 tensor cores (cuda_mmq.cu); x quantized as above.
sw_status swcu_mmq(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                   const int8_t *xq, const float2 *xds, int64_t T, float *out, int64_t os,
                   const float *bias, cudaStream_t st, const swcu_op *op, sw_err *err);
sw_status swcu_mmvq_k(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                      const int8_t *xq, const float2 *xds, int64_t T, float *out, int64_t os,
                      const float *bias, cudaStream_t st, const swcu_op *op, sw_err *err);
// F32/F16/BF16 weights, x f32 (row stride xs floats), T <= 8.
sw_status swcu_mmv_float(int type, const uint8_t *w, int64_t ws, int64_t K, int64_t N,
                         const float *x, int64_t xs, int64_t T, float *out, int64_t os,
                         const float *bias, cudaStream_t st, const swcu_op *op, sw_err *err);

// Threads per row for the mat-vec kernels given the work units of one row:
// a power of two in [32, 128], about two units per thread.
static inline int swcu_mmv_tpr(int64_t units) {
    int tpr = 32;
    while (tpr < 128 && (int64_t)tpr * 4 <= units) tpr *= 2;
    return tpr;
}

#endif
