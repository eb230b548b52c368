/* cpu_pack_avx2.h — inline helpers shared by the packed 8-row kernels
 * (cpu_pack_avx2.c, cpu_pack_k_avx2.c): loads, the decode prefetch, and the
 * instantiation of a kernel as the extern sw_cpu_pk_<type> that cpu_pack.c's
 * type table points at. Include only from files compiled with -mavx2 -mfma
 * -mf16c. */
#ifndef SW_CPU_PACK_AVX2_H
#define SW_CPU_PACK_AVX2_H

#include <immintrin.h>

#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m256i bcast32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32((int)v);
}

static ALWAYS_INLINE __m256i ld(const uint8_t *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* 8 x f16 (one per row of the group) -> 8 x f32 */
static ALWAYS_INLINE __m256 ld_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Decode (one or two columns) is bound by the memory stream: requesting each
 * unit PF_AHEAD bytes ahead of its use, on top of the hardware prefetcher,
 * measured 20-30% faster at T = 1 for the K-quants and Q4_0, Q4_1, Q5_0,
 * Q5_1, 5-10% for Q8_0 (all then close to the machine's read bandwidth); with
 * more columns the kernels are compute-bound and the extra instructions only
 * cost. Past the end of the tensor a prefetch is harmless (it never faults).
 * Units of a size that is not a multiple of 64 request some lines twice; the
 * second request is nearly free. */
#define PF_AHEAD 8192
static ALWAYS_INLINE void prefetch_unit(const uint8_t *u, int bytes, const int nc) {
    if (nc > 2) return;
    for (int l = 0; l < bytes; l += 64)
        _mm_prefetch((const char *)u + PF_AHEAD + l, _MM_HINT_T0);
}
/* In two stages, for the 32-element block types and the K-quants: PF_AHEAD
 * bytes ahead into L2 only (PREFETCHT1: a request to L1 holds one of its few fill buffers for
 * the whole DRAM latency, one to L2 does not), then PF_NEAR bytes ahead from
 * L2 into L1. With one thread on this host's Xeon (Emerald Rapids), over
 * 33 MB of flushed weights, Q4_0 decode measured 5-10% faster with the first
 * stage alone (AVX-512; AVX2 10-20%) and another 3-8% with the second: about
 * the speed of a plain read of the same bytes. */
#define PF_NEAR 2048
static ALWAYS_INLINE void prefetch_unit_staged(const uint8_t *u, int bytes, const int nc) {
    if (nc > 2) return;
    for (int l = 0; l < bytes; l += 64) {
        _mm_prefetch((const char *)u + PF_AHEAD + l, _MM_HINT_T1);
        _mm_prefetch((const char *)u + PF_NEAR + l, _MM_HINT_T0);
    }
}

/* An empty asm that claims to change v: GCC's reassociation cannot then merge
 * the integer sums of several groups and columns into one tree, which it
 * schedules maddubs-first and spills (measured: ~20% slower prefill). */
#define KEEP_SUM(v) __asm__("" : "+x"(v))

/* pk_<t>_nc(k, w, x, xs, res, nc), written for a constant nc, becomes the
 * run-time entry point sw_cpu_pk_<t> declared in cpu_internal.h. */
#define SW_CPU_PK_INSTANTIATE(t)                                                                   \
    SW_CPU_INSTANTIATE_NC(pk_##t, const uint8_t *)                                                 \
    SW_CPU_PACK_KERNEL(sw_cpu_pk_##t) {                                                            \
        pk_##t(k, w, x, xs, nc, res);                                                              \
    }

/* Kernel t as a variant of a template kernel base(k, w, x, xs, res, nc, ...)
 * with the trailing constant arguments given. */
#define SW_CPU_PK_VARIANT(t, base, ...)                                                            \
    static ALWAYS_INLINE void pk_##t##_nc(int64_t k, const uint8_t *w, const void *x, size_t xs,   \
                                          float *res, const int nc) {                              \
        base(k, w, x, xs, res, nc, __VA_ARGS__);                                                   \
    }                                                                                              \
    SW_CPU_PK_INSTANTIATE(t)

#endif
