/* cuda_backend.h — the CUDA implementation of the backend interface
 * (runtime/backend.h). Only compiled when SW_HAVE_CUDA is defined (SW_CUDA=ON).
 *
 * Model: one device, one non-blocking stream, one cuBLAS handle per backend.
 * Buffers are cudaMalloc'd device memory of every usage (SW_BUF_HOST_VISIBLE
 * included: the host writes it with sw_be_upload, an async copy on the stream
 * through a pinned staging buffer). Ops called between begin and end are
 * recorded and launched at end, which then waits for the stream; ops called
 * outside a step run at once and wait. Data-dependent errors (an id, slot or
 * block past its table) are flagged by the kernels and reported as SW_E_RANGE
 * by end (or by the op itself outside a step).
 *
 * CUDA graphs: with SW_CUDA_GRAPHS=1 in the environment when the backend is
 * created, a step whose recorded op sequence (ops, shapes, device addresses,
 * parameters) equals the previous step's is captured into a CUDA graph, and
 * later identical steps replay it. Off by default until verified on hardware.
 *
 * Other environment knobs (read at create): SW_CUDA_MMVQ_MAX_T (default 8):
 * the largest batch that uses the mat-vec kernels; SW_CUDA_MMQ_MAX_T (default
 * 128, 0 = off): the largest that uses the int8 tensor-core matmul on
 * quantized weights (larger: dequantize + cuBLAS); SW_CUDA_DEQUANT_TILE_MB
 * (default 64): the f16 weight tile of the cuBLAS path. */
#ifndef SW_CUDA_BACKEND_H
#define SW_CUDA_BACKEND_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Create a backend on CUDA device `device` (< 0: device 0). *out is returned (free with
 * sw_backend_free). No driver / no device / driver too old / out of memory
 * give SW_E_NOT_FOUND / SW_E_UNSUPPORTED / SW_E_NOMEM with the CUDA error text. */
sw_status sw_backend_cuda_create(int32_t device, sw_backend **out, sw_err *err);

/* Counters of the CUDA-graph machinery (for tests and benchmarks): steps
 * captured into a graph, and steps replayed from one. be must be a CUDA backend. */
void sw_backend_cuda_graph_stats(const sw_backend *be, int64_t *captures, int64_t *replays);

/* What the backend ran, for tests and benchmarks to see which paths their
 * shapes took: graph captures and replays, matmuls by path (counted when
 * recorded), attention ops whose key range was split (split + combine
 * kernels) and those on the warp-per-key decode kernel, swiglus fused with
 * the next matmul's int8 quantization. */
typedef struct sw_cuda_stats {
    int64_t captures, replays;
    int64_t mm_mmvq, mm_mmq, mm_float, mm_cublas;
    int64_t attn_split, attn_warp;
    int64_t swiglu_q8; /* swiglus that also quantized the next matmul's input */
} sw_cuda_stats;
void sw_backend_cuda_stats(const sw_backend *be, sw_cuda_stats *out);

/* Checks the per-type quant math of the CUDA kernels (the dequantize and
 * integer dot-product code in cuda_quant.cuh, compiled for the host) against
 * the reference dequantizers. Needs no GPU. SW_E_INTERNAL with the type, unit
 * and element at fault on a mismatch. */
sw_status sw_cuda_quant_selftest(sw_err *err);

/* Runs on the host what of the kernels' schedules does not need a GPU
 * (cuda_kernels_selftest.cu): the 16-byte run loads' shifts, whole blocks of
 * the int8 tensor-core matmul with the mma instruction emulated, and the
 * decode attention's split / warp / lane-group schedule with its merges.
 * SW_E_INTERNAL naming the case at fault. */
sw_status sw_cuda_kernels_selftest(sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
