/* cpu_attention_avx512.c — the AVX-512 inner loop of the CPU attention (one
 * query row against its causal context), used when head_dim is a multiple of
 * 16. The same online softmax as cpu_attention_avx2.c, with the head
 * dimension in 16-wide slices: half the FMAs per key for the scores and the
 * V accumulation, and 16 exponentials per instruction sequence. Scores of 8
 * keys are folded to 256 bits and reduced with one transpose-add.
 * Compiled with the AVX-512 flags of the CMake rule for *_avx512.c; run only
 * after the run-time CPU check. */
#include <immintrin.h>

#include "cpu_exp_simd.h"
#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define CHUNK 32 /* keys per softmax update */

static ALWAYS_INLINE __m512 ld16(const void *p, int64_t i, bool f16) {
    return f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)))
               : _mm512_loadu_ps((const float *)p + i);
}

/* [sum(v[0]), ..., sum(v[7])] */
static ALWAYS_INLINE __m256 hsum8x16(const __m512 *v) {
    __m256 f[8];
    for (int i = 0; i < 8; i++)
        f[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[i]), 1)));
    __m256 t0 = _mm256_hadd_ps(f[0], f[1]), t1 = _mm256_hadd_ps(f[2], f[3]);
    __m256 t2 = _mm256_hadd_ps(f[4], f[5]), t3 = _mm256_hadd_ps(f[6], f[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

void sw_cpu_attend_avx512(const float *q, float *out, float *acc, int64_t hd, float scale,
                          int64_t k0, int64_t n_keys, const int32_t *table, const sw_tensor *kc,
                          const sw_tensor *vc, int64_t kvh) {
    const bool kf16 = kc->type == SW_TYPE_F16, vf16 = vc->type == SW_TYPE_F16;
    const int64_t bs = kc->ne[2];
    const uint8_t *kbase = sw_cpu_ptr(kc) + (size_t)kvh * kc->nb[1];
    const uint8_t *vbase = sw_cpu_ptr(vc) + (size_t)kvh * vc->nb[1];
    const void *kp[CHUNK], *vp[CHUNK];
    float sc[CHUNK] __attribute__((aligned(64)));
    float m = -INFINITY, l = 0.0f;
    for (int64_t d = 0; d < hd; d++)
        acc[d] = 0.0f;
    for (int64_t j0 = k0; j0 < n_keys; j0 += CHUNK) {
        int nj = (int)SW_MIN((int64_t)CHUNK, n_keys - j0);
        /* row addresses of the chunk's keys: one division per chunk */
        int64_t bi = j0 / bs, wi = j0 % bs;
        for (int j = 0; j < nj; j++) {
            int64_t blk = table[bi];
            kp[j] = kbase + (size_t)wi * kc->nb[2] + (size_t)blk * kc->nb[3];
            vp[j] = vbase + (size_t)wi * vc->nb[2] + (size_t)blk * vc->nb[3];
            if (++wi == bs) {
                wi = 0;
                bi++;
            }
        }
        /* scores, 8 keys at a time, then one by one */
        __m256 vscale = _mm256_set1_ps(scale), vmax = _mm256_set1_ps(-INFINITY);
        int j = 0;
        for (; j + 8 <= nj; j += 8) {
            __m512 a[8];
            for (int i = 0; i < 8; i++)
                a[i] = _mm512_setzero_ps();
            for (int64_t d = 0; d < hd; d += 16) {
                __m512 qv = _mm512_loadu_ps(q + d);
                for (int i = 0; i < 8; i++)
                    a[i] = _mm512_fmadd_ps(qv, ld16(kp[j + i], d, kf16), a[i]);
            }
            __m256 s = _mm256_mul_ps(hsum8x16(a), vscale);
            _mm256_store_ps(sc + j, s);
            vmax = _mm256_max_ps(vmax, s);
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float cmax = _mm_cvtss_f32(h);
        for (; j < nj; j++) {
            __m512 a = _mm512_setzero_ps();
            for (int64_t d = 0; d < hd; d += 16)
                a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), ld16(kp[j], d, kf16), a);
            sc[j] = _mm512_reduce_add_ps(a) * scale;
            if (sc[j] > cmax) cmax = sc[j];
        }
        float r = 1.0f;
        if (cmax > m) { /* new running max: rescale what was summed so far */
            r = m == -INFINITY ? 0.0f : expf(m - cmax);
            l *= r;
            m = cmax;
        }
        /* weights: 16 at a time, the tail masked (its lanes are not stored) */
        __m512 vm = _mm512_set1_ps(m), vl = _mm512_setzero_ps();
        for (j = 0; j < nj; j += 16) {
            __mmask16 k = nj - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (nj - j)) - 1);
            __m512 w = sw_exp_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sc + j), vm));
            w = _mm512_maskz_mov_ps(k, w);
            _mm512_mask_storeu_ps(sc + j, k, w);
            vl = _mm512_add_ps(vl, w);
        }
        l += _mm512_reduce_add_ps(vl);
        /* acc = r acc + sum_j w_j v_j, one 16-wide slice at a time */
        __m512 vr = _mm512_set1_ps(r);
        for (int64_t d = 0; d < hd; d += 16) {
            __m512 a0 = _mm512_mul_ps(vr, _mm512_loadu_ps(acc + d)), a1 = _mm512_setzero_ps();
            for (j = 0; j + 2 <= nj; j += 2) {
                a0 = _mm512_fmadd_ps(_mm512_set1_ps(sc[j]), ld16(vp[j], d, vf16), a0);
                a1 = _mm512_fmadd_ps(_mm512_set1_ps(sc[j + 1]), ld16(vp[j + 1], d, vf16), a1);
            }
            if (j < nj) a0 = _mm512_fmadd_ps(_mm512_set1_ps(sc[j]), ld16(vp[j], d, vf16), a0);
            _mm512_storeu_ps(acc + d, _mm512_add_ps(a0, a1));
        }
    }
    __m512 inv = _mm512_set1_ps(l > 0.0f ? 1.0f / l : 0.0f);
    for (int64_t d = 0; d < hd; d += 16)
        _mm512_storeu_ps(out + d, _mm512_mul_ps(_mm512_loadu_ps(acc + d), inv));
}
