// cuda_quant_selftest.cu — runs the host build of cuda_quant.cuh (the same
// source the kernels use) against the reference dequantizers, so the quant
// bit-twiddling of the CUDA backend is checked on machines without a GPU:
// - dequant: every unit of every block, values bit-identical to
//   sw_dequantize_row, every element written exactly once;
// - vdot: the integer dot products of every unit, summed over a row, against
//   sum_k w_ref[k] * x_hat[k] in double, where x_hat is the int8 activation
//   grid (d * q); bound 1e-5 * sum |w_ref x_hat| (float rounding of a few terms
//   per unit; any indexing or bit error is orders of magnitude larger).
// What it cannot check: kernel indexing, reductions and memory access, which
// need the GPU (tests/unit/test_cuda_ops.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda_backend.h"
#include "cuda_quant.cuh"

namespace {

struct host_store {
    float *o;
    int *count;
    SWCU_HD void operator()(int i, float v) const {
        o[i] = v;
        count[i]++;
    }
};

uint64_t g_rng = 0x9e3779b97f4a7c15ull;
double urand() {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) * 0x1.0p-53;
}
float nrand() {
    double s = 0;
    for (int i = 0; i < 4; i++) s += urand() - 0.5;
    return (float)(s * 1.7);
}

struct check_type {
    sw_err *err;
    sw_status st;
    template <int TYPE> void operator()() {
        typedef swcu_q<TYPE> Q;
        const int K = 512, rows = 3, T = 3;
        const int nb = K / Q::QK;
        const size_t rb = sw_row_size((sw_type)TYPE, K);
        if (rb != (size_t)nb * Q::BYTES) {
            st = sw_err_set(err, SW_E_INTERNAL, "selftest %s: block size %d, quant.h says %zu",
                            sw_type_name(TYPE), (int)Q::BYTES, rb / nb);
            return;
        }
        float *w = (float *)malloc(sizeof(float) * K * rows);
        float *wref = (float *)malloc(sizeof(float) * K * rows);
        float *got = (float *)malloc(sizeof(float) * K);
        int *cnt = (int *)malloc(sizeof(int) * K);
        uint8_t *q = (uint8_t *)malloc(rb * rows);
        float *x = (float *)malloc(sizeof(float) * K * T);
        int8_t *xq = (int8_t *)malloc((size_t)K * T);
        float2 *xds = (float2 *)malloc(sizeof(float2) * (K / 32) * T);
        st = SW_OK;
        // rows with different magnitudes, some outliers, one all-zero block
        for (int i = 0; i < K * rows; i++) w[i] = nrand() * (1.0f + (float)(i / K)) * 0.05f;
        for (int i = 0; i < 32; i++) w[K + i] = 0.0f;
        w[7] = 0.9f;
        for (int r = 0; r < rows && st == SW_OK; r++) {
            st = sw_quantize_row((sw_type)TYPE, w + r * K, q + r * rb, K, err);
            if (st == SW_OK) st = sw_dequantize_row((sw_type)TYPE, q + r * rb, wref + r * K, K, err);
        }
        // activations: a zero group, mixed magnitudes
        for (int i = 0; i < K * T; i++) x[i] = nrand() * ((i / 32) % 3 == 0 ? 4.0f : 0.5f);
        for (int i = 32; i < 64; i++) x[i] = 0.0f;
        for (int t = 0; t < T; t++)
            for (int g = 0; g < K / 32; g++) {
                const float *xg = x + t * K + g * 32;
                float amax = 0.0f;
                for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xg[i]));
                const float d = swcu_q8_scale(amax);
                int sum = 0;
                for (int i = 0; i < 32; i++) {
                    const int v = swcu_q8_elem(xg[i], d);
                    xq[t * K + g * 32 + i] = (int8_t)v;
                    sum += v;
                }
                xds[t * (K / 32) + g] = make_float2(d, d * (float)sum);
            }
        for (int r = 0; r < rows && st == SW_OK; r++) {
            const uint8_t *row = q + r * rb;
            // dequant, unit by unit
            for (int i = 0; i < K; i++) cnt[i] = 0;
            for (int b = 0; b < nb; b++)
                for (int u = 0; u < Q::UPB; u++) {
                    host_store hs = {got + b * Q::QK, cnt + b * Q::QK};
                    Q::dequant(row + b * Q::BYTES, u, hs);
                }
            for (int i = 0; i < K && st == SW_OK; i++)
                if (cnt[i] != 1 || memcmp(&got[i], &wref[r * K + i], 4) != 0)
                    st = sw_err_set(err, SW_E_INTERNAL,
                                    "selftest %s dequant: row %d element %d (block %d) written %d "
                                    "times, value %.9g, reference %.9g",
                                    sw_type_name(TYPE), r, i, i / Q::QK, cnt[i], (double)got[i],
                                    (double)wref[r * K + i]);
            // vdot with NT = 4 (nt = 3) and NT = 1
            float acc4[4] = {0, 0, 0, 0}, acc1[1] = {0};
            for (int b = 0; b < nb; b++)
                for (int u = 0; u < Q::UPB; u++) {
                    Q::template vdot<4>(row + b * Q::BYTES, u, xq + b * Q::QK,
                                        xds + b * (Q::QK / 32), K, K / 32, T, acc4);
                    Q::template vdot<1>(row + b * Q::BYTES, u, xq + b * Q::QK,
                                        xds + b * (Q::QK / 32), K, K / 32, 1, acc1);
                }
            if (acc4[3] != 0.0f && st == SW_OK)
                st = sw_err_set(err, SW_E_INTERNAL, "selftest %s vdot: token 3 >= nt was written",
                                sw_type_name(TYPE));
            for (int t = 0; t < T && st == SW_OK; t++) {
                double ref = 0.0, mag = 0.0;
                for (int i = 0; i < K; i++) {
                    const double xh = (double)xds[t * (K / 32) + i / 32].x * xq[t * K + i];
                    ref += (double)wref[r * K + i] * xh;
                    mag += fabs((double)wref[r * K + i] * xh);
                }
                const double tol = 1e-5 * mag + 1e-30;
                const double e4 = fabs((double)acc4[t] - ref), e1 = fabs((double)acc1[0] - ref);
                if (e4 > tol || (t == 0 && e1 > tol))
                    st = sw_err_set(err, SW_E_INTERNAL,
                                    "selftest %s vdot: row %d token %d: got %.9g (NT=1: %.9g), "
                                    "reference %.9g, |diff| %.3g > %.3g",
                                    sw_type_name(TYPE), r, t, (double)acc4[t], (double)acc1[0],
                                    ref, e4, tol);
            }
        }
        free(w); free(wref); free(got); free(cnt); free(q); free(x); free(xq); free(xds);
    }
};

} // namespace

extern "C" sw_status sw_cuda_quant_selftest(sw_err *err) {
    static const int types[] = {SW_TYPE_Q4_0, SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1,
                                SW_TYPE_Q8_0, SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K,
                                SW_TYPE_Q5_K, SW_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_type c = {err, SW_OK};
        if (!swcu_dispatch_quant(types[i], c))
            return sw_err_set(err, SW_E_INTERNAL, "selftest: no swcu_q for %s", sw_type_name(types[i]));
        if (c.st != SW_OK) return c.st;
    }
    return SW_OK;
}
