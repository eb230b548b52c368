// cuda_common.cuh — small helpers shared by the CUDA kernel files: host/device
// decoration, exact scalar conversions that also run on the host (so that the
// quant math in cuda_quant.cuh can be checked on a machine without a GPU),
// unaligned little-endian loads, dp4a, and warp/block reductions.
//
// Every helper marked SWCU_HD compiles for both sides; the device side uses
// the intrinsic, the host side a portable equivalent with identical results.
#ifndef SW_CUDA_COMMON_CUH
#define SW_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <vector_types.h>

#define SWCU_HD __host__ __device__ __forceinline__
#define SWCU_D __device__ __forceinline__

#define SWCU_WARP 32

// #pragma unroll inside host+device functions: only for the device pass (the
// host compiler would warn about an unknown pragma).
#ifdef __CUDA_ARCH__
#define SWCU_UNROLL _Pragma("unroll")
#else
#define SWCU_UNROLL
#endif

// ---- exact float arithmetic that the compiler may not contract into FMA ----
// The reference dequantizers (loader/quant*.c) are compiled with
// -ffp-contract=off; nvcc fuses a*b+c by default. The _rn intrinsics are never
// fused, so a kernel using these gives bit-identical results to the reference.
SWCU_HD float swcu_fmul(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    volatile float r = a * b; // volatile: no contraction with a following add on the host
    return r;
#endif
}
SWCU_HD float swcu_fadd(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
SWCU_HD float swcu_fsub(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

// ---- f16 / bf16 <-> f32 ----
SWCU_HD float swcu_h2f(uint16_t h) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(h));
#else
    // exact: same as loader/quant.c sw_f16_to_f32
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t ex = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (ex == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (ex == 0) {
        float f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    } else {
        bits = sign | ((ex + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

SWCU_HD float swcu_bf2f(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
#ifdef __CUDA_ARCH__
    return __uint_as_float(bits);
#else
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

// ---- unaligned little-endian loads from GGUF blocks ----
// GGUF blocks are packed (Q4_0 is 18 bytes, Q6_K 210), so a 32-bit field may
// only be 2-byte aligned. a2 = the address is known 2-byte aligned, a4 = 4.
SWCU_HD uint16_t swcu_ld_u16(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return *(const uint16_t *)p;
#else
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#endif
}
SWCU_HD uint32_t swcu_ld_u32_a2(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    const uint16_t *q = (const uint16_t *)p;
    return (uint32_t)q[0] | ((uint32_t)q[1] << 16);
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
}
SWCU_HD uint32_t swcu_ld_u32_a4(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return *(const uint32_t *)p;
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
}
SWCU_HD int swcu_ld_i32_a4(const int8_t *p) { return (int)swcu_ld_u32_a4((const uint8_t *)p); }

// ---- 32-byte runs with 16-byte loads ----
// The K-quant blocks are 84, 110, 144, 176 and 210 bytes: a 32-byte run of
// weights inside one starts on a 2-byte boundary only. The device reads the
// 16-byte-aligned chunks that cover it (two, or three when it straddles) and
// shifts the run out of them; the CUDA backend allocates 64 bytes of slack
// after every buffer, so the third chunk of a buffer's last run stays inside
// the allocation.
//
// v[0..8) = the 8 words starting `off` bytes (even, < 16) into u[0..12).
SWCU_HD void swcu_run32_shift(const uint32_t u[12], int off, uint32_t v[8]) {
    const int ws = off >> 2, sh = (off & 3) * 8; // sh is 0 or 16
SWCU_UNROLL
    for (int i = 0; i < 8; i++) {
        // static indices only (a dynamic one would put u in local memory)
        const uint32_t lo = ws == 0 ? u[i] : ws == 1 ? u[i + 1] : ws == 2 ? u[i + 2] : u[i + 3];
        const uint32_t hi = ws == 0 ? u[i + 1] : ws == 1 ? u[i + 2] : ws == 2 ? u[i + 3] : u[i + 4];
        v[i] = sh ? (lo >> 16) | (hi << 16) : lo;
    }
}

// The 32 bytes at p (2-byte aligned) as 8 little-endian words.
SWCU_HD void swcu_ld_run32(const uint8_t *p, uint32_t v[8]) {
#ifdef __CUDA_ARCH__
    const uintptr_t a = (uintptr_t)p;
    const uint4 *b = (const uint4 *)(a & ~(uintptr_t)15);
    const int off = (int)(a & 15);
    const uint4 x0 = b[0], x1 = b[1];
    uint32_t u[12] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w, 0u, 0u, 0u, 0u};
    if (off) {
        const uint4 x2 = b[2];
        u[8] = x2.x;
        u[9] = x2.y;
        u[10] = x2.z;
        u[11] = x2.w;
    }
    swcu_run32_shift(u, off, v);
#else
    memcpy(v, p, 32);
#endif
}

// ---- integer SIMD ----
// Sum of the four signed byte products of a and b, plus c.
SWCU_HD int swcu_dp4a(int a, int b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
    return c;
#endif
}
// Per-byte a - b, wrapping (no carries between bytes).
SWCU_HD int swcu_vsub4(int a, int b) {
#ifdef __CUDA_ARCH__
    return (int)__vsub4((unsigned)a, (unsigned)b);
#else
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t x = ((uint32_t)a >> (8 * i)) & 0xffu, y = ((uint32_t)b >> (8 * i)) & 0xffu;
        r |= ((x - y) & 0xffu) << (8 * i);
    }
    return (int)r;
#endif
}

// ---- reductions (device only) ----
#ifdef __CUDACC__
SWCU_D float swcu_warp_sum(float v) {
#pragma unroll
    for (int o = SWCU_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
SWCU_D float swcu_warp_max(float v) {
#pragma unroll
    for (int o = SWCU_WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
SWCU_D int swcu_warp_sum_i(int v) {
#pragma unroll
    for (int o = SWCU_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
SWCU_D double swcu_warp_sum_d(double v) {
#pragma unroll
    for (int o = SWCU_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Epilogue of the row-parallel mat-vec kernels (float and dp4a): the tpr
// threads along threadIdx.x share one output row and each holds partial sums
// for NT tokens. Reduce them (warp shuffles, then across the row's warps
// through sh[block warps][NT]) and store acc + bias for the nt live tokens.
// tpr is uniform across the block, so the __syncthreads is reached by all.
template <int NT>
SWCU_D void swcu_mmv_store(float (&acc)[NT], float (*sh)[NT], int tpr, int64_t row, int64_t N,
                           int nt, float *out, int64_t os, const float *bias) {
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = swcu_warp_sum(acc[t]);
    if (tpr > 32) { // several warps per row: combine their sums
        const int wid = (threadIdx.y * tpr + threadIdx.x) / 32;
        if (threadIdx.x % 32 == 0) {
#pragma unroll
            for (int t = 0; t < NT; t++) sh[wid][t] = acc[t];
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            const int w0 = threadIdx.y * tpr / 32;
#pragma unroll
            for (int t = 0; t < NT; t++) {
                float s = 0.0f;
                for (int k = 0; k < tpr / 32; k++) s += sh[w0 + k][t];
                acc[t] = s;
            }
        }
    }
    if (threadIdx.x == 0 && row < N) {
        const float bv = bias ? bias[row] : 0.0f;
#pragma unroll
        for (int t = 0; t < NT; t++)
            if (t < nt) out[(int64_t)t * os + row] = acc[t] + bv;
    }
}

// Sum over a whole block (blockDim.x a multiple of 32, <= 1024). Every thread
// gets the result. `sh` is 32 floats of shared memory; the call syncs twice.
SWCU_D float swcu_block_sum(float v, float *sh) {
    const int lane = threadIdx.x % SWCU_WARP, warp = threadIdx.x / SWCU_WARP;
    const int nw = blockDim.x / SWCU_WARP;
    v = swcu_warp_sum(v);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float r = lane < nw ? sh[lane] : 0.0f;
    r = swcu_warp_sum(r);
    __syncthreads(); // sh may be reused by the caller right away
    return r;
}

// Record a data-dependent error (a bad id, slot or block) in the backend's
// error word (device memory); the first one wins. w[0] = code, w[1] = op index
// in the step, w[2], w[3] = details (the index and the offending value). The
// host copies the word back after the step and turns it into SW_E_RANGE.
SWCU_D void swcu_flag(int32_t *w, int code, int op, int a, int b) {
    if (atomicCAS(w, 0, code) == 0) {
        w[1] = op;
        w[2] = a;
        w[3] = b;
    }
}
#endif

#endif
