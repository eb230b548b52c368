/* cpu_pack_avx512.c — the AVX-512 kernel set's packed matmul kernels:
 * cpu_pack_vnni.h over zmm registers, 16 rows per group (one row per 32-bit
 * lane), up to 8 activation columns per call (32 registers).
 * Compiled with the AVX-512 flags of the CMake rule for *_avx512.c; nothing
 * here may run unless the backend found AVX-512 F/BW/VL/DQ + VNNI. */
#include <immintrin.h>

typedef __m512i vi;
typedef __m512 vf;
#define PK_R 16
#define PK_COLS 8
#define PK_LOOKUP sw_cpu_pack_kernel_avx512

#define VI_LD(p) _mm512_loadu_si512((const void *)(p))
#define VI_SET1_32(v) _mm512_set1_epi32(v)
#define VI_SET1_8(v) _mm512_set1_epi8(v)
#define VI_SET4_32(a, b, c, d) _mm512_set4_epi32((d), (c), (b), (a)) /* a in lane 0 */
#define VI_ZERO _mm512_setzero_si512()
#define VI_AND(a, b) _mm512_and_si512((a), (b))
#define VI_OR(a, b) _mm512_or_si512((a), (b))
#define VI_XOR(a, b) _mm512_xor_si512((a), (b))
#define VI_SRLI16(v, n) _mm512_srli_epi16((v), (n))
#define VI_SLLI16(v, n) _mm512_slli_epi16((v), (n))
#define VI_SLLI32(v, n) _mm512_slli_epi32((v), (n))
#define VI_SRAI32(v, n) _mm512_srai_epi32((v), (n))
#define VI_SHUF8(v, c) _mm512_shuffle_epi8((v), (c))
#define VI_DPBUSD(acc, u, s) _mm512_dpbusd_epi32((acc), (u), (s))
#define VI_DPWSSD(acc, a, b) _mm512_dpwssd_epi32((acc), (a), (b))
/* GCC emits a separate VPBROADCASTD for _mm512_set1_epi32(load) rather than
 * the embedded {1to16} broadcast: one VPDPBUSD with a memory operand halves
 * the instructions the front end must deliver in the inner loops. */
static inline __attribute__((always_inline)) __m512i pk_dpbusd_bc(__m512i acc, __m512i u,
                                                                  const void *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const int *)p));
    return acc;
}
#define VI_DPBUSD_BC(acc, u, p) pk_dpbusd_bc((acc), (u), (p))
/* 32 signed bytes -> 32 int16 */
#define VI_LD_S8_S16(p) _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p)))
#define VF_ZERO _mm512_setzero_ps()
#define VF_LD(p) _mm512_loadu_ps(p)
#define VF_ST(p, v) _mm512_storeu_ps((p), (v))
#define VF_SET1(v) _mm512_set1_ps(v)
#define VF_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VF_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define VF_MUL(a, b) _mm512_mul_ps((a), (b))
#define VF_ADD(a, b) _mm512_add_ps((a), (b))
#define VF_CVT(v) _mm512_cvtepi32_ps(v)
#define VF_LDF16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))

#include "cpu_pack_vnni.h"
