/* cpu_attention_avx2.c — the AVX2 inner loop of the CPU attention (one query
 * row against its causal context), used when head_dim is a multiple of 8.
 * Same online softmax as the scalar loop in cpu_attention.c, but scores are
 * computed 8 keys at a time and reduced with one transpose-add (no horizontal
 * sum per key), the exponentials are vectorised, and the V accumulation keeps
 * each 8-wide slice of the output in registers across a chunk of keys: with
 * small heads (head_dim 8..64) the per-key calls, horizontal sums and libm
 * expf of the generic loop cost more than the arithmetic.
 * Compiled with -mavx2 -mfma -mf16c; run only after the run-time CPU check. */
#include <immintrin.h>

#include "cpu_exp_simd.h"
#include "cpu_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define CHUNK 32 /* keys per softmax update */

static ALWAYS_INLINE __m256 ld8(const void *p, int64_t i, bool f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)))
               : _mm256_loadu_ps((const float *)p + i);
}

static ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* [hsum(v[0]), ..., hsum(v[7])] */
static ALWAYS_INLINE __m256 hsum8(const __m256 *v) {
    __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

void sw_cpu_attend_avx2(const float *q, float *out, float *acc, int64_t hd, float scale,
                        int64_t k0, int64_t n_keys, const int32_t *table, const sw_tensor *kc,
                        const sw_tensor *vc, int64_t kvh) {
    const bool kf16 = kc->type == SW_TYPE_F16, vf16 = vc->type == SW_TYPE_F16;
    const int64_t bs = kc->ne[2];
    const uint8_t *kbase = sw_cpu_ptr(kc) + (size_t)kvh * kc->nb[1];
    const uint8_t *vbase = sw_cpu_ptr(vc) + (size_t)kvh * vc->nb[1];
    const void *kp[CHUNK], *vp[CHUNK];
    float sc[CHUNK] __attribute__((aligned(32)));
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
        /* scores */
        __m256 vscale = _mm256_set1_ps(scale), vmax = _mm256_set1_ps(-INFINITY);
        int j = 0;
        for (; j + 8 <= nj; j += 8) {
            __m256 a[8];
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_setzero_ps();
            for (int64_t d = 0; d < hd; d += 8) {
                __m256 qv = _mm256_loadu_ps(q + d);
                for (int i = 0; i < 8; i++)
                    a[i] = _mm256_fmadd_ps(qv, ld8(kp[j + i], d, kf16), a[i]);
            }
            __m256 s = _mm256_mul_ps(hsum8(a), vscale);
            _mm256_store_ps(sc + j, s);
            vmax = _mm256_max_ps(vmax, s);
        }
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float cmax = _mm_cvtss_f32(h);
        for (; j < nj; j++) {
            __m256 a = _mm256_setzero_ps();
            for (int64_t d = 0; d < hd; d += 8)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), ld8(kp[j], d, kf16), a);
            sc[j] = hsum(a) * scale;
            if (sc[j] > cmax) cmax = sc[j];
        }
        float r = 1.0f;
        if (cmax > m) { /* new running max: rescale what was summed so far */
            r = m == -INFINITY ? 0.0f : expf(m - cmax);
            l *= r;
            m = cmax;
        }
        /* weights */
        __m256 vm = _mm256_set1_ps(m), vl = _mm256_setzero_ps();
        for (j = 0; j + 8 <= nj; j += 8) {
            __m256 w = sw_exp_neg8(_mm256_sub_ps(_mm256_load_ps(sc + j), vm));
            _mm256_store_ps(sc + j, w);
            vl = _mm256_add_ps(vl, w);
        }
        l += hsum(vl);
        for (; j < nj; j++) {
            sc[j] = expf(sc[j] - m);
            l += sc[j];
        }
        /* acc = r acc + sum_j w_j v_j, one 8-wide slice at a time */
        __m256 vr = _mm256_set1_ps(r);
        for (int64_t d = 0; d < hd; d += 8) {
            __m256 a0 = _mm256_mul_ps(vr, _mm256_loadu_ps(acc + d)), a1 = _mm256_setzero_ps();
            for (j = 0; j + 2 <= nj; j += 2) {
                a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(sc + j), ld8(vp[j], d, vf16), a0);
                a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(sc + j + 1), ld8(vp[j + 1], d, vf16), a1);
            }
            if (j < nj) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(sc + j), ld8(vp[j], d, vf16), a0);
            _mm256_storeu_ps(acc + d, _mm256_add_ps(a0, a1));
        }
    }
    __m256 inv = _mm256_set1_ps(l > 0.0f ? 1.0f / l : 0.0f);
    for (int64_t d = 0; d < hd; d += 8)
        _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(acc + d), inv));
}
