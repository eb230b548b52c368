/* cpu_vec_dot_avxvnni.c — the AVX-VNNI kernel set's plain-row matmul kernels:
 * cpu_vec_dot_x86.h with the VEX-encoded 256-bit VPDPBUSD / VPDPWSSD.
 * Compiled with -mavxvnni -mavx2 -mfma -mf16c (the CMake rule for
 * *_avxvnni.c); nothing here may run unless the backend found AVX-VNNI. */
#include <immintrin.h>

#define SW_X86_DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))
#define SW_X86_DPWSSD(acc, a, b) _mm256_dpwssd_avx_epi32((acc), (a), (b))
#define SW_X86_DOT_LOOKUP sw_cpu_dot_avxvnni
#include "cpu_vec_dot_x86.h"
