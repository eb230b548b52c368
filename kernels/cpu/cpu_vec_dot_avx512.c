/* cpu_vec_dot_avx512.c — the AVX-512 kernel set's plain-row matmul kernels:
 * cpu_vec_dot_x86.h with the EVEX 256-bit VPDPBUSD / VPDPWSSD of AVX-512
 * VNNI + VL (the rows of a plain weight are walked 32 elements at a time, so
 * 256 bits is their natural width; the packed kernels use 512).
 * Compiled with the AVX-512 flags of the CMake rule for *_avx512.c; nothing
 * here may run unless the backend found AVX-512 VNNI. */
#include <immintrin.h>

#define SW_X86_DPBUSD(acc, u, s) _mm256_dpbusd_epi32((acc), (u), (s))
#define SW_X86_DPWSSD(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))
#define SW_X86_DOT_LOOKUP sw_cpu_dot_avx512
#include "cpu_vec_dot_x86.h"
