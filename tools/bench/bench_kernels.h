/* bench_kernels.h — what the files of `spillway-bench kernels` share: the peaks
 * measured in the same run as the kernels (bench_peak_cpu.c for the CPU,
 * bench_peak_gpu.c for Vulkan and CUDA), the op cases and their timing
 * (bench_ops.c), and the command line, the model shapes and the report
 * (bench_kernels.c). docs/bench.md explains the method. */
#ifndef SW_BENCH_KERNELS_H
#define SW_BENCH_KERNELS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "spillway.h"

/* ---- peaks -------------------------------------------------------------------
 * Memory: probes over buffers of increasing size (the CPU's L1, L2, LLC and
 * DRAM when --hot asks for cache levels, DRAM only otherwise; a GPU's cache
 * and DRAM). A row is compared with the probe whose buffer is the largest one
 * not larger than the row's working set (bandwidth only falls as a working set
 * grows), and with the best of that probe's read, copy and add figures. */
#define BK_MAX_LEVELS 5

typedef struct bk_mem_probe {
    const char *level;    /* "l1", "l2", "llc", "cache", "dram" (static) */
    size_t bytes;         /* the buffer the probe streams over, all threads together */
    double read_gbps;     /* read-only stream; 0 = not measured */
    double read_seg_gbps; /* CPU: the best single segment of that stream (information only) */
    double copy_gbps;     /* copy: (bytes read + bytes written) / s; 0 = not measured */
    double add_gbps;      /* GPUs: sw_be_add, 2 reads + 1 write through the backend; 0 = none */
} bk_mem_probe;

typedef enum bk_compute {
    BK_C_INT8 = 0, /* CPU: the int8 dot-product instructions of the kernels */
    BK_C_F32,      /* CPU: f32 FMA */
    BK_C_GEMM_F16, /* GPU: a large f16 GEMM (cuBLAS; Vulkan: our matmul with f16 weights) */
    BK_C_GEMM_I8,  /* CUDA: a large int8 GEMM (cuBLAS) */
    BK_C_COUNT
} bk_compute;

typedef struct bk_peaks {
    bk_mem_probe mem[BK_MAX_LEVELS]; /* ascending bytes; the last is DRAM */
    int n_mem;
    char mem_how[192];        /* what the memory probes run */
    double gops[BK_C_COUNT];  /* 1e9 ops/s (a multiply-add is 2); 0 = not measured */
    char how[BK_C_COUNT][64]; /* the loop or call, e.g. "vpdpbusd zmm" */
} bk_peaks;

typedef enum bk_kind { BK_CPU = 0, BK_VULKAN, BK_CUDA } bk_kind;

/* When a probe runs: before the rows (everything), between two rows (a few
 * DRAM segments, CPU only), after the rows (DRAM and compute again). Every
 * figure keeps the best of all its samples. */
typedef enum bk_phase { BK_FIRST = 0, BK_BETWEEN, BK_LAST } bk_phase;

typedef struct bk_stream bk_stream; /* the CPU's DRAM probe buffer (bench_peak_cpu.c) */

/* One run: the backend and how its rows are timed. */
typedef struct bk_ctx {
    sw_backend *be;
    bk_kind kind;
    int threads;
    bool hot;           /* no flush and no cycling: operands stay where the last call left them */
    bool plain;         /* weights in the raw GGUF layout instead of the engine's */
    bool quick;         /* fewer probe samples (tests, smoke runs): noisier peaks */
    int reps;           /* timed calls (CPU) or timed steps (GPUs) per row */
    int min_per_step;   /* GPUs: at least this many calls in one timed step */
    int max_per_step;   /* GPUs: at most this many */
    size_t cold_bytes;  /* GPUs: operand copies cycled per step total at least this */
    double step_budget; /* GPUs: seconds one step may take (caps the copies on slow devices) */
    size_t probe_bytes; /* CPU: the DRAM probe's buffer (default 4 x LLC, >= 256 MiB) */
    bk_peaks peaks;
    bk_stream *dram; /* CPU: the DRAM probe's buffer, kept for the samples between rows */
    cJSON *host;     /* identification of the host and the device (owned) */
    char host_line[2048];
    char device_line[1024]; /* GPUs: the device ("" on the CPU) */
    char cold_how[96];      /* how operands are kept cold, for the report */
} bk_ctx;

/* CPU (bench_peak_cpu.c). */
/* The kernel set a CPU backend runs ("scalar", "avx2", "avxvnni", "avx512"). */
const char *bk_cpu_isa(sw_backend *be);
/* Bytes of the last-level cache (0 if unknown). */
size_t bk_cpu_llc_bytes(void);
/* Fill ctx->host and ctx->host_line with the CPU: model, SIMD flags, caches, memory. */
void bk_cpu_host(bk_ctx *x);
/* Measure the memory and compute peaks on the backend's own thread pool. */
sw_status bk_cpu_peaks(bk_ctx *x, bk_phase phase, sw_err *err);
/* Free the DRAM probe's buffer (after an error; BK_LAST frees it too). */
void bk_cpu_peaks_free(bk_ctx *x);
/* The best seconds, over 2 x->reps tries (undisturbed ones first, as a row's
 * best call), of a plain read of `bytes` flushed bytes by the backend's
 * threads (the read probe's loop, one buffer of that size); -1 if it cannot
 * be measured. */
double bk_cpu_read_time(bk_ctx *x, size_t bytes);
/* Evict [p, p + n) from every cache level (CLFLUSHOPT / CLFLUSH on x86; a
 * sweep over a buffer twice the LLC elsewhere). */
void bk_cpu_flush(const void *p, size_t n);
/* Name of the flush bk_cpu_flush does, for the report. */
const char *bk_cpu_flush_name(void);
/* The process's CPU seconds, and the seconds its threads have spent runnable
 * but waiting for a CPU (Linux schedstat, summed over the threads); false
 * where unknown. A timed call is undisturbed when the waiting does not grow. */
bool bk_cpu_sched(double *cpu_s, double *wait_s);

/* Vulkan and CUDA (bench_peak_gpu.c). */
void bk_gpu_host(bk_ctx *x, int device);
sw_status bk_gpu_peaks(bk_ctx *x, bk_phase phase, sw_err *err);

/* ---- ops -------------------------------------------------------------------- */
typedef enum bk_op {
    BK_MATMUL = 0,
    BK_ATTENTION,
    BK_RMS_NORM,
    BK_ROPE,
    BK_KV_WRITE,
    BK_GET_ROWS,
    BK_ADD,
    BK_SWIGLU,
    BK_GEGLU,
    BK_ADD_RMS_NORM,  /* fused: residual add + rms_norm */
    BK_ROPE_KV_WRITE, /* fused: rope on q and k + kv_write */
    BK_OP_COUNT
} bk_op;

const char *bk_op_name(bk_op op);

/* One row to measure. */
typedef struct bk_spec {
    bk_op op;
    sw_type type;    /* matmul weights, get_rows table, attention / kv_write cache */
    int64_t K, N, T; /* matmul [K,N] x [K,T]; get_rows: K = row length, N = table rows;
                      * rms_norm, add, swiglu, geglu, add_rms_norm: K = row length;
                      * T = tokens */
    int32_t n_head, n_head_kv, head_dim, n_rot, rope_mode; /* attention, rope, kv_write,
                                                            * rope_kv_write */
    int32_t ctx, n_seqs; /* attention: context length of each sequence, sequences */
    char what[48];       /* the model tensors or role this row stands for ("" = none) */
} bk_spec;

/* One measured row. */
typedef struct bk_row {
    bk_spec spec;
    char shape[96];
    bool int8;            /* compute-bound against the int8 peak (quantized matmul) */
    double bytes, ops;    /* per call: operands read + written once each; 2 per multiply-add */
    double written;       /* the part of bytes that is written */
    double t_med, t_best; /* seconds per call */
    int clean;            /* CPU: calls no thread waited for a CPU during (< 2 %); -1 unknown */
    double waited;        /* CPU: share of the best call's thread time spent waiting for a CPU */
    double cpu_med;       /* CPU: the threads' CPU seconds per call, median (-1 unknown) */
    size_t working_set;   /* bytes cycled between reuses; SIZE_MAX: flushed to DRAM */
    int copies, per_step;
    /* the verdict (bk_judge) */
    const bk_mem_probe *level;
    double gbps, gops, ai, ridge, peak_gbps, peak_gops, pct;
    double pct_cpu;          /* one CPU thread: %peak of the median CPU time (-1: not given) */
    bool peak_same;          /* peak_gbps is bytes / read_same (above the probe's) */
    double read_same;        /* CPU, cold matmul: seconds of a plain read of the bytes the row
                              * reads, right after it (bk_cpu_read_time); 0: not measured */
    bk_compute peak_compute; /* the compute peak the row is judged against */
    bool compute_bound;
} bk_row;

/* Measure spec: set up its operands on x->be, time it, free them. */
sw_status bk_run(bk_ctx *x, const bk_spec *spec, bk_row *row, sw_err *err);
/* Fill the verdict of row from x->peaks. */
void bk_judge(const bk_ctx *x, bk_row *row);

#endif
