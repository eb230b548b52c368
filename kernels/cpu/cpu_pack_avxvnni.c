/* cpu_pack_avxvnni.c — the AVX-VNNI kernel set's packed matmul kernels:
 * cpu_pack_vnni.h over ymm registers, 8 rows per group (the AVX2 layout), up
 * to 4 activation columns per call (16 registers).
 * Compiled with -mavxvnni -mavx2 -mfma -mf16c (the CMake rule for
 * *_avxvnni.c); nothing here may run unless the backend found AVX-VNNI. */
#include <immintrin.h>

typedef __m256i vi;
typedef __m256 vf;
#define PK_R 8
#define PK_COLS 4
#define PK_LOOKUP sw_cpu_pack_kernel_avxvnni

#define VI_LD(p) _mm256_loadu_si256((const __m256i *)(p))
#define VI_SET1_32(v) _mm256_set1_epi32(v)
#define VI_SET1_8(v) _mm256_set1_epi8(v)
#define VI_SET4_32(a, b, c, d) _mm256_setr_epi32((a), (b), (c), (d), (a), (b), (c), (d))
#define VI_ZERO _mm256_setzero_si256()
#define VI_AND(a, b) _mm256_and_si256((a), (b))
#define VI_OR(a, b) _mm256_or_si256((a), (b))
#define VI_XOR(a, b) _mm256_xor_si256((a), (b))
#define VI_SRLI16(v, n) _mm256_srli_epi16((v), (n))
#define VI_SLLI16(v, n) _mm256_slli_epi16((v), (n))
#define VI_SLLI32(v, n) _mm256_slli_epi32((v), (n))
#define VI_SRAI32(v, n) _mm256_srai_epi32((v), (n))
#define VI_SHUF8(v, c) _mm256_shuffle_epi8((v), (c))
#define VI_DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))
#define VI_DPWSSD(acc, a, b) _mm256_dpwssd_avx_epi32((acc), (a), (b))
/* 16 signed bytes -> 16 int16 */
#define VI_LD_S8_S16(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define VF_ZERO _mm256_setzero_ps()
#define VF_LD(p) _mm256_loadu_ps(p)
#define VF_ST(p, v) _mm256_storeu_ps((p), (v))
#define VF_SET1(v) _mm256_set1_ps(v)
#define VF_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VF_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define VF_MUL(a, b) _mm256_mul_ps((a), (b))
#define VF_ADD(a, b) _mm256_add_ps((a), (b))
#define VF_CVT(v) _mm256_cvtepi32_ps(v)
#define VF_LDF16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

#include "cpu_pack_vnni.h"
