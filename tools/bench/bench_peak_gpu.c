/* bench_peak_gpu.c — the peaks of a GPU backend (Vulkan, CUDA) for
 * `spillway-bench kernels`, measured in the same run on the same device, and
 * the device's identification.
 *
 * Memory: a device-to-device copy over 2 x half of the cold size (Vulkan:
 * vkCmdCopyBuffer recorded through the backend; CUDA: cudaMemcpyAsync), the
 * same copy over 16 MiB (the "cache" level), and out = a + b over three
 * buffers through the backend's own add kernel. Compute: a large GEMM
 * (CUDA: cuBLAS f16 -> f32 and int8 -> int32; Vulkan: the backend's matmul
 * with f16 weights, i.e. the cooperative-matrix shader where the device has
 * it, the tiled shader elsewhere and on lavapipe), grown until one call takes
 * 50 ms or reaches 8192 x 8192 x 4096. Each figure is the best of its timed
 * steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kernels.h"

#ifdef SW_HAVE_VULKAN
#include "vk_backend.h"
#include "vk_device.h"
#endif
#ifdef SW_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cuda_backend.h"
#include "cuda_device.h"
#endif

#define MIB ((size_t)1 << 20)
#define CACHE_PROBE_BYTES (16 * MIB)

/* ---- timing through the backend: best seconds per call of n calls per step ---- */

typedef sw_status (*call_fn)(bk_ctx *x, void *ctx, int i, sw_err *err);

static sw_status best_step(bk_ctx *x, call_fn fn, void *ctx, int calls, int steps, double *best,
                           sw_err *err) {
    *best = 1e30;
    for (int s = -1; s < steps; s++) { /* one warm-up step */
        double t0 = sw_time_s();
        sw_status st = sw_be_begin(x->be, err);
        for (int i = 0; i < calls && st == SW_OK; i++) st = fn(x, ctx, i, err);
        sw_status st2 = sw_be_end(x->be, err);
        if (st == SW_OK) st = st2;
        if (st != SW_OK) return st;
        double dt = (sw_time_s() - t0) / calls;
        if (s >= 0 && dt < *best) *best = dt;
    }
    return SW_OK;
}

/* out = a + b in slices of 64 MiB (Vulkan binds at most 128 MiB at a time). */
#define ADD_SLICE (64 * MIB)

typedef struct add_ctx {
    sw_buffer *buf[3];
    int64_t rows; /* of 4096 floats per slice */
} add_ctx;

static sw_status add_call(bk_ctx *x, void *ctx, int i, sw_err *err) {
    add_ctx *c = ctx;
    sw_tensor t[3];
    for (int k = 0; k < 3; k++)
        t[k] = sw_tensor_make(c->buf[k], (size_t)i * ADD_SLICE, SW_TYPE_F32, 4096, c->rows, 1, 1);
    return sw_be_add(x->be, &t[0], &t[1], &t[2], err);
}

/* out = a + b over three buffers of bytes / 3 each, through the backend. */
static sw_status probe_add(bk_ctx *x, size_t bytes, double *gbps, sw_err *err) {
    const int slices = (int)SW_MAX((size_t)1, bytes / 3 / ADD_SLICE);
    add_ctx c = {{NULL, NULL, NULL}, (int64_t)(ADD_SLICE / sizeof(float) / 4096)};
    sw_status st = SW_OK;
    for (int i = 0; i < 3 && st == SW_OK; i++)
        st = sw_be_buf_alloc(x->be, (size_t)slices * ADD_SLICE, SW_BUF_COMPUTE, &c.buf[i], err);
    double t = 0;
    if (st == SW_OK) st = best_step(x, add_call, &c, slices, 5, &t, err);
    if (st == SW_OK) *gbps = SW_MAX(*gbps, 3.0 * (double)ADD_SLICE / t * 1e-9);
    for (int i = 0; i < 3; i++)
        sw_be_buf_free(x->be, c.buf[i]);
    return st;
}

typedef struct mm_ctx {
    sw_tensor w, xin, out;
} mm_ctx;

static sw_status mm_call(bk_ctx *x, void *ctx, int i, sw_err *err) {
    (void)i;
    mm_ctx *c = ctx;
    return sw_be_matmul(x->be, &c->w, &c->xin, NULL, &c->out, err);
}

/* The backend's own matmul on f16 weights, K = N, grown until a call takes
 * 50 ms; best Gop/s of 3 steps. */
static sw_status probe_gemm_backend(bk_ctx *x, double *gops, sw_err *err) {
    int64_t K = 512, T = 128;
    for (;;) {
        sw_buffer *bw = NULL, *bx = NULL, *bo = NULL;
        sw_status st;
        if ((st = sw_be_buf_alloc(x->be, (size_t)(K * K) * 2, SW_BUF_WEIGHTS, &bw, err)) ||
            (st = sw_be_buf_alloc(x->be, (size_t)(K * T) * 4, SW_BUF_COMPUTE, &bx, err)) ||
            (st = sw_be_buf_alloc(x->be, (size_t)(K * T) * 4, SW_BUF_COMPUTE, &bo, err))) {
            sw_be_buf_free(x->be, bw);
            sw_be_buf_free(x->be, bx);
            return st;
        }
        /* zeros: the time does not depend on the values */
        const size_t wn = (size_t)(K * K) * 2, xn = (size_t)(K * T) * 4;
        void *zero = calloc(1, SW_MAX(wn, xn));
        if (!zero) st = sw_err_set(err, SW_E_NOMEM, "gemm probe: out of memory");
        if (st == SW_OK) st = sw_be_upload(x->be, bw, 0, zero, wn, err);
        if (st == SW_OK) st = sw_be_upload(x->be, bx, 0, zero, xn, err);
        free(zero);
        double t = 0;
        mm_ctx c = {sw_tensor_make(bw, 0, SW_TYPE_F16, K, K, 1, 1),
                    sw_tensor_make(bx, 0, SW_TYPE_F32, K, T, 1, 1),
                    sw_tensor_make(bo, 0, SW_TYPE_F32, K, T, 1, 1)};
        if (st == SW_OK) st = best_step(x, mm_call, &c, 1, 3, &t, err);
        sw_be_buf_free(x->be, bw);
        sw_be_buf_free(x->be, bx);
        sw_be_buf_free(x->be, bo);
        if (st != SW_OK) return st;
        *gops = SW_MAX(*gops, 2.0 * (double)K * (double)K * (double)T / t * 1e-9);
        if (t >= 0.05 || (K >= 8192 && T >= 4096)) return SW_OK;
        if (T < K / 2) T *= 2;
        else K *= 2;
    }
}

/* ---- Vulkan --------------------------------------------------------------------- */

#ifdef SW_HAVE_VULKAN
typedef struct vk_copy_ctx {
    sw_buffer *src, *dst;
    size_t n;
} vk_copy_ctx;

static sw_status vk_copy_call(bk_ctx *x, void *ctx, int i, sw_err *err) {
    (void)i;
    vk_copy_ctx *c = ctx;
    return sw_vk_backend_copy(x->be, c->src, 0, c->dst, 0, c->n, err);
}

static sw_status vk_probe_copy(bk_ctx *x, size_t bytes, int calls, double *gbps, sw_err *err) {
    vk_copy_ctx c = {NULL, NULL, bytes / 2 / 256 * 256};
    sw_status st = sw_be_buf_alloc(x->be, c.n, SW_BUF_COMPUTE, &c.src, err);
    if (st == SW_OK) st = sw_be_buf_alloc(x->be, c.n, SW_BUF_COMPUTE, &c.dst, err);
    double t = 0;
    if (st == SW_OK) st = best_step(x, vk_copy_call, &c, calls, 5, &t, err);
    if (st == SW_OK) *gbps = SW_MAX(*gbps, 2.0 * (double)c.n / t * 1e-9);
    sw_be_buf_free(x->be, c.src);
    sw_be_buf_free(x->be, c.dst);
    return st;
}
#endif

/* ---- CUDA ----------------------------------------------------------------------- */

#ifdef SW_HAVE_CUDA
#define CU(call, what)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            st = sw_err_set(err, SW_E_BACKEND, "%s: %s failed: %s", what, #call,                   \
                            cudaGetErrorString(e_));                                               \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* cudaMemcpyAsync device to device of bytes / 2, calls times between two
 * events; best of 5. */
static sw_status cu_probe_copy(size_t bytes, int calls, double *gbps, sw_err *err) {
    sw_status st = SW_OK;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    size_t n = bytes / 2 / 256 * 256;
    CU(cudaMalloc(&a, n), "copy probe");
    CU(cudaMalloc(&b, n), "copy probe");
    CU(cudaMemset(a, 1, n), "copy probe");
    CU(cudaEventCreate(&e0), "copy probe");
    CU(cudaEventCreate(&e1), "copy probe");
    for (int r = -1; r < 5; r++) {
        CU(cudaEventRecord(e0, 0), "copy probe");
        for (int i = 0; i < calls; i++)
            CU(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, 0), "copy probe");
        CU(cudaEventRecord(e1, 0), "copy probe");
        CU(cudaEventSynchronize(e1), "copy probe");
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, e0, e1), "copy probe");
        if (r >= 0 && ms > 0) *gbps = SW_MAX(*gbps, 2.0 * (double)n * calls / (ms * 1e-3) * 1e-9);
    }
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return st;
}

/* cuBLAS GEMM m = n = k = 8192: f16 x f16 -> f32 (int8: s8 x s8 -> s32, A
 * transposed as the int8 tensor-core path wants); best of 5 after a warm-up. */
static sw_status cu_probe_gemm(bool int8, double *gops, sw_err *err) {
    const int m = 8192;
    const size_t ab = (size_t)m * m * (int8 ? 1 : 2), cb = (size_t)m * m * 4;
    sw_status st = SW_OK;
    void *A = NULL, *B = NULL, *C = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cublasHandle_t h = NULL;
    CU(cudaMalloc(&A, ab), "gemm probe");
    CU(cudaMalloc(&B, ab), "gemm probe");
    CU(cudaMalloc(&C, cb), "gemm probe");
    CU(cudaMemset(A, 0, ab), "gemm probe");
    CU(cudaMemset(B, 0, ab), "gemm probe");
    CU(cudaEventCreate(&e0), "gemm probe");
    CU(cudaEventCreate(&e1), "gemm probe");
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
        st = sw_err_set(err, SW_E_BACKEND, "gemm probe: cublasCreate failed");
        goto done;
    }
    for (int r = -1; r < 5; r++) {
        CU(cudaEventRecord(e0, 0), "gemm probe");
        cublasStatus_t cs;
        if (int8) {
            const int32_t one = 1, zero = 0;
            cs = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, m, m, &one, A, CUDA_R_8I, m, B,
                              CUDA_R_8I, m, &zero, C, CUDA_R_32I, m, CUBLAS_COMPUTE_32I,
                              CUBLAS_GEMM_DEFAULT);
        } else {
            const float one = 1.0f, zero = 0.0f;
            cs = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &one, A, CUDA_R_16F, m, B,
                              CUDA_R_16F, m, &zero, C, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT);
        }
        if (cs != CUBLAS_STATUS_SUCCESS) {
            st = sw_err_set(err, SW_E_BACKEND, "gemm probe: cublasGemmEx (%s) failed: status %d",
                            int8 ? "int8" : "f16", (int)cs);
            goto done;
        }
        CU(cudaEventRecord(e1, 0), "gemm probe");
        CU(cudaEventSynchronize(e1), "gemm probe");
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, e0, e1), "gemm probe");
        if (r >= 0 && ms > 0) *gops = SW_MAX(*gops, 2.0 * (double)m * m * m / (ms * 1e-3) * 1e-9);
    }
done:
    if (h) cublasDestroy(h);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    return st;
}
#endif

/* ---- identification and the peaks ----------------------------------------------- */

void bk_gpu_host(bk_ctx *x, int device) {
    bk_cpu_host(x); /* the host too: lavapipe runs on it, and it drives any GPU */
    cJSON *d = cJSON_AddObjectToObject(x->host, "device");
    char *line = x->device_line;
    const size_t ln = sizeof x->device_line;
    snprintf(line, ln, "device: unknown");
    (void)device;
#ifdef SW_HAVE_VULKAN
    if (x->kind == BK_VULKAN) {
        const sw_vk_device_info *di = sw_vk_backend_device(x->be);
        cJSON_AddStringToObject(d, "api", "vulkan");
        cJSON_AddStringToObject(d, "name", di->name);
        cJSON_AddStringToObject(d, "driver", di->driver);
        cJSON_AddStringToObject(d, "kind", sw_vk_kind_name(di->kind));
        char v[32];
        snprintf(v, sizeof v, "%u.%u.%u", di->api_version >> 22, (di->api_version >> 12) & 0x3ff,
                 di->api_version & 0xfff);
        cJSON_AddStringToObject(d, "vulkan_api", v);
        cJSON_AddNumberToObject(d, "vendor_id", di->vendor_id);
        cJSON_AddNumberToObject(d, "device_id", di->device_id);
        cJSON_AddNumberToObject(d, "device_local_mib", (double)(di->device_local_bytes >> 20));
        cJSON_AddBoolToObject(d, "fast_matmul", sw_vk_backend_fast_path(x->be));
        cJSON_AddBoolToObject(d, "coop_matrix", sw_vk_backend_coop_matrix(x->be));
        snprintf(line, ln, "device: %s (vulkan %s, %s; driver %s), matmul: %s", di->name,
                 v, sw_vk_kind_name(di->kind), di->driver,
                 sw_vk_backend_coop_matrix(x->be) ? "cooperative matrix"
                 : sw_vk_backend_fast_path(x->be) ? "fast tiled"
                                                  : "plain");
    }
#endif
#ifdef SW_HAVE_CUDA
    if (x->kind == BK_CUDA) {
        sw_cuda_device_info ci;
        sw_err e = {{0}};
        if (sw_cuda_device_info_get(device < 0 ? 0 : device, &ci, &e) == SW_OK) {
            cJSON_AddStringToObject(d, "api", "cuda");
            cJSON_AddStringToObject(d, "name", ci.name);
            char v[64];
            snprintf(v, sizeof v, "%d.%d", ci.cc_major, ci.cc_minor);
            cJSON_AddStringToObject(d, "compute_capability", v);
            cJSON_AddNumberToObject(d, "driver_version", ci.driver_version);
            cJSON_AddNumberToObject(d, "runtime_version", ci.runtime_version);
            cJSON_AddNumberToObject(d, "sms", ci.sm_count);
            cJSON_AddNumberToObject(d, "l2_mib", ci.l2_bytes >> 20);
            cJSON_AddNumberToObject(d, "mem_mib", (double)(ci.total_mem >> 20));
            cJSON_AddNumberToObject(d, "nominal_gbps", ci.peak_gbps);
            snprintf(line, ln,
                     "device: %s (cc %d.%d, %d SMs, L2 %d MiB, driver %d, runtime %d), nominal "
                     "DRAM %.0f GB/s",
                     ci.name, ci.cc_major, ci.cc_minor, ci.sm_count, ci.l2_bytes >> 20,
                     ci.driver_version, ci.runtime_version, ci.peak_gbps);
        }
    }
#endif
}

sw_status bk_gpu_peaks(bk_ctx *x, bk_phase phase, sw_err *err) {
    bk_peaks *pk = &x->peaks;
    sw_status st = SW_OK;
    const bool again = phase != BK_FIRST;
    if (phase == BK_BETWEEN) return SW_OK; /* a GPU is not shared with the rest of a host */
    if (!again) {
        pk->n_mem = 2;
        pk->mem[0].level = "cache";
        pk->mem[0].bytes = CACHE_PROBE_BYTES;
        pk->mem[1].level = "dram";
        pk->mem[1].bytes = x->cold_bytes;
    }
    bk_mem_probe *cache = &pk->mem[0], *dram = &pk->mem[1];
    bool add = true;
#ifdef SW_HAVE_VULKAN
    /* lavapipe's add shader runs at a fraction of its copy: a probe of
     * minutes that could only lower nothing */
    add = x->kind != BK_VULKAN || sw_vk_backend_device(x->be)->kind != SW_VK_CPU;
#endif
    /* a backend add over the cold size; the copies below */
    if (add && (st = probe_add(x, x->cold_bytes, &dram->add_gbps, err)) != SW_OK) return st;
#ifdef SW_HAVE_VULKAN
    if (x->kind == BK_VULKAN) {
        snprintf(pk->mem_how, sizeof pk->mem_how, "vkCmdCopyBuffer%s", add ? "; sw_be_add" : "");
        if ((st = vk_probe_copy(x, x->cold_bytes, 1, &dram->copy_gbps, err)) != SW_OK) return st;
        if (!again && (st = vk_probe_copy(x, CACHE_PROBE_BYTES, 16, &cache->copy_gbps, err)))
            return st;
        snprintf(pk->how[BK_C_GEMM_F16], sizeof pk->how[0], "sw_be_matmul f16 weights");
        if ((st = probe_gemm_backend(x, &pk->gops[BK_C_GEMM_F16], err)) != SW_OK) return st;
    }
#endif
#ifdef SW_HAVE_CUDA
    if (x->kind == BK_CUDA) {
        snprintf(pk->mem_how, sizeof pk->mem_how, "cudaMemcpyAsync device to device; sw_be_add");
        if ((st = cu_probe_copy(x->cold_bytes, 1, &dram->copy_gbps, err)) != SW_OK) return st;
        if (!again && (st = cu_probe_copy(CACHE_PROBE_BYTES, 32, &cache->copy_gbps, err)))
            return st;
        snprintf(pk->how[BK_C_GEMM_F16], sizeof pk->how[0], "cublasGemmEx f16->f32 8192^3");
        snprintf(pk->how[BK_C_GEMM_I8], sizeof pk->how[0], "cublasGemmEx s8->s32 8192^3");
        if ((st = cu_probe_gemm(false, &pk->gops[BK_C_GEMM_F16], err)) != SW_OK) return st;
        if ((st = cu_probe_gemm(true, &pk->gops[BK_C_GEMM_I8], err)) != SW_OK) {
            sw_log(SW_LOG_WARN, "kernels: %s (int8 rows use the f16 GEMM peak)", err->msg);
            pk->gops[BK_C_GEMM_I8] = 0;
            st = SW_OK;
        }
    }
#endif
    (void)cache;
    (void)again;
    return st;
}
