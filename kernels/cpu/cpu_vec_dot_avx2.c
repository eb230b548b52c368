/* cpu_vec_dot_avx2.c — the AVX2 + FMA + F16C kernel set's plain-row matmul
 * kernels (cpu_vec_dot_x86.h, with maddubs / madd for the integer sums), the
 * activation quantizers, and attention helpers.
 * Compiled with -mavx2 -mfma -mf16c (the CMake rule for *_avx2.c); nothing here
 * may run unless the backend checked the CPU at run time. */
#include <immintrin.h>

#include "cpu_internal.h"

/* maddubs pairs into int16 (no saturation: see cpu_vec_dot_x86.h), madd into int32 */
#define SW_X86_DPBUSD(acc, u, s)                                                                   \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define SW_X86_DPWSSD(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#define SW_X86_DOT_LOOKUP sw_cpu_dot_avx2
#include "cpu_vec_dot_x86.h"

/* ------------------------------------------------ activation quantizers -- */

/* Same arithmetic as sw_cpu_quantize_q8 / _q8_K (cpu_vec_dot.c) step for step
 * -- d = amax / 127 and id = 1 / d in float, q = round-to-nearest-even(x * id)
 * clamped to [-127, 127] -- so both paths give identical bytes. */
static ALWAYS_INLINE __m256i quant8x32(const float *x, float *d_out, __m256i *sums) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        m = _mm256_max_ps(_mm256_andnot_ps(sign, v[i]), m); /* NaN ignored, as scalar */
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h);
    float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    *d_out = d;
    __m256 vid = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i q[4];
    for (int i = 0; i < 4; i++) {
        __m256 r = _mm256_round_ps(_mm256_mul_ps(v[i], vid),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm256_min_ps(_mm256_max_ps(r, lo), hi); /* max first: a NaN becomes -127 */
        q[i] = _mm256_cvtps_epi32(r);
    }
    sums[0] = _mm256_add_epi32(q[0], q[1]); /* elements 0-15 */
    sums[1] = _mm256_add_epi32(q[2], q[3]); /* elements 16-31 */
    /* int32 -> int8 with saturation; the packs work per 128-bit lane, so the
     * dwords come out permuted: put them back in order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static ALWAYS_INLINE int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

void sw_cpu_quantize_q8_avx2(const float *x, sw_cpu_q8 *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32) {
        __m256i sums[2];
        float d;
        _mm256_storeu_si256((__m256i *)y[b].qs, quant8x32(x, &d, sums));
        int32_t sum = hsum_epi32(_mm256_add_epi32(sums[0], sums[1]));
        y[b].d = d;
        y[b].s = d * (float)sum;
        y[b].sum = sum;
    }
}

void sw_cpu_quantize_q8_K_avx2(const float *x, sw_block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / SW_QK_K; b++, x += SW_QK_K) {
        /* one scale for 256: the block max first, then 8 groups of 32 with it */
        const __m256 sign = _mm256_set1_ps(-0.0f);
        __m256 m4[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                        _mm256_setzero_ps()}; /* four chains: max's latency */
        for (int i = 0; i < SW_QK_K; i += 32)
            for (int k = 0; k < 4; k++)
                m4[k] = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i + 8 * k)), m4[k]);
        __m256 m = _mm256_max_ps(_mm256_max_ps(m4[0], m4[1]), _mm256_max_ps(m4[2], m4[3]));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
        for (int g = 0; g < SW_QK_K / 32; g++) {
            __m256i q[4];
            for (int i = 0; i < 4; i++) {
                __m256 r = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * i), vid),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[i] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
            }
            __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * g), p);
            y[b].bsums[2 * g] = (int16_t)hsum_epi32(_mm256_add_epi32(q[0], q[1]));
            y[b].bsums[2 * g + 1] = (int16_t)hsum_epi32(_mm256_add_epi32(q[2], q[3]));
        }
        y[b].d = d;
    }
}

/* ----------------------------------------------------- attention helpers -- */

float sw_cpu_dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum_ps(acc);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float sw_cpu_dot_f32_f16_avx2(const float *a, const uint16_t *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), ld_f16(b + i), acc);
    float s = hsum_ps(acc);
    for (; i < n; i++)
        s += a[i] * f16(b[i]);
    return s;
}

void sw_cpu_axpy_f32_avx2(float *y, float a, const float *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

void sw_cpu_axpy_f16_avx2(float *y, float a, const uint16_t *x, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ld_f16(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * f16(x[i]);
}

void sw_cpu_scale_f32_avx2(float *y, float a, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] *= a;
}
