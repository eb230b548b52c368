// cuda_quant_selftest.cu — runs the host build of cuda_quant.cuh (the same
// source the kernels use) against the reference dequantizers, so the quant
// bit-twiddling of the CUDA backend is checked on machines without a GPU:
// - dequant: every unit of every block, values bit-identical to
//   sw_dequantize_row, every element written exactly once;
// - vdot: the integer dot products of every unit, summed over a row, against
//   sum_k w_ref[k] * x_hat[k] in double, where x_hat is the int8 activation
//   grid (d * q); bound 1e-5 * sum |w_ref x_hat| (float rounding of a few terms
//   per unit; any indexing or bit error is orders of magnitude larger). Every
//   token count the kernels instantiate (NT = 1, 2, 4, 8), with nt < NT, and
//   the accumulators of tokens >= nt left untouched;
// - the activation quantizer's contract that the kernels' error bounds rest
//   on: |q| <= 127 and |x - d q| <= d (1/2 + 2^-17), zero groups give d = 0;
// - unpack32 (the int8 tensor-core matmul's view of a block): every group's
//   int8 values, integer scales and float factors rebuild the reference
//   weights up to the rounding of a product;
// - the f16 / bf16 -> f32 conversions, all 65536 inputs of each, bit-exact.
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
        const int K = 512, rows = 3, T = 6;
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
                    const double e = fabs((double)xg[i] - (double)d * v);
                    if ((v < -127 || v > 127 || e > (double)d * (0.5 + 0x1p-17) ||
                         (amax == 0.0f && d != 0.0f)) && st == SW_OK)
                        st = sw_err_set(err, SW_E_INTERNAL,
                                        "selftest q8: x %.9g quantized to %d * %.9g (|err| %.3g)",
                                        (double)xg[i], v, (double)d, e);
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
            // unpack32 (the int8 tensor-core matmul): every group of every block
            // rebuilt as dA * sc * q + mB equals the reference value up to the
            // rounding of the few products (the reference multiplies in
            // another order): 4 ulp of the larger term
            for (int b = 0; b < nb && st == SW_OK; b++)
                for (int g = 0; g < Q::QK / 32 && st == SW_OK; g++) {
                    int8_t q8[32];
                    int sc[2];
                    float dA, mB[2];
                    Q::unpack32(row + b * Q::BYTES, g, q8, sc, &dA, mB);
                    for (int i = 0; i < 32 && st == SW_OK; i++) {
                        const int e = b * Q::QK + 32 * g + i;
                        const double t1 = (double)dA * sc[i / 16] * q8[i], v = t1 + mB[i / 16];
                        const double ref = wref[r * K + e];
                        const double tol = 4 * 0x1p-24 * (fabs(t1) + fabs(mB[i / 16])) + 1e-30;
                        if (fabs(v - ref) > tol)
                            st = sw_err_set(err, SW_E_INTERNAL,
                                            "selftest %s unpack32: row %d element %d: %.9g * %d * "
                                            "%d + %.9g = %.9g, reference %.9g",
                                            sw_type_name(TYPE), r, e, (double)dA, sc[i / 16],
                                            q8[i], (double)mB[i / 16], v, ref);
                    }
                }
            // vdot with NT = 8 (nt = 6), 4 (nt = 3), 2 (nt = 2) and 1, as the
            // kernels instantiate it; acc[NT] holds the tokens the call owns
            float acc8[8] = {0}, acc4[4] = {0}, acc2[2] = {0}, acc1[1] = {0};
            for (int b = 0; b < nb; b++)
                for (int u = 0; u < Q::UPB; u++) {
                    const uint8_t *blk = row + b * Q::BYTES;
                    const int8_t *xb = xq + b * Q::QK;
                    const float2 *db = xds + b * (Q::QK / 32);
                    Q::template vdot<8>(blk, u, xb, db, K, K / 32, T, acc8);
                    Q::template vdot<4>(blk, u, xb, db, K, K / 32, 3, acc4);
                    Q::template vdot<2>(blk, u, xb, db, K, K / 32, 2, acc2);
                    Q::template vdot<1>(blk, u, xb, db, K, K / 32, 1, acc1);
                }
            if ((acc8[6] != 0.0f || acc8[7] != 0.0f || acc4[3] != 0.0f) && st == SW_OK)
                st = sw_err_set(err, SW_E_INTERNAL, "selftest %s vdot: a token >= nt was written",
                                sw_type_name(TYPE));
            for (int t = 0; t < T && st == SW_OK; t++) {
                double ref = 0.0, mag = 0.0;
                for (int i = 0; i < K; i++) {
                    const double xh = (double)xds[t * (K / 32) + i / 32].x * xq[t * K + i];
                    ref += (double)wref[r * K + i] * xh;
                    mag += fabs((double)wref[r * K + i] * xh);
                }
                const double tol = 1e-5 * mag + 1e-30;
                const float got[4] = {acc8[t], t < 3 ? acc4[t] : acc8[t], t < 2 ? acc2[t] : acc8[t],
                                      t < 1 ? acc1[t] : acc8[t]};
                for (int v = 0; v < 4 && st == SW_OK; v++)
                    if (fabs((double)got[v] - ref) > tol)
                        st = sw_err_set(err, SW_E_INTERNAL,
                                        "selftest %s vdot<%d>: row %d token %d: got %.9g, "
                                        "reference %.9g, |diff| %.3g > %.3g",
                                        sw_type_name(TYPE), 8 >> v, r, t, (double)got[v], ref,
                                        fabs((double)got[v] - ref), tol);
            }
        }
        free(w); free(wref); free(got); free(cnt); free(q); free(x); free(xq); free(xds);
    }
};

} // namespace

// The host paths of swcu_h2f / swcu_bf2f (what the dequantizers above were
// checked with) against the reference conversions, every input, bit for bit.
static sw_status check_half_conversions(sw_err *err) {
    for (uint32_t h = 0; h < 0x10000u; h++) {
        const float a = swcu_h2f((uint16_t)h), b = sw_f16_to_f32((uint16_t)h);
        const float c = swcu_bf2f((uint16_t)h), d = sw_bf16_to_f32((uint16_t)h);
        if (memcmp(&a, &b, 4) != 0)
            return sw_err_set(err, SW_E_INTERNAL, "selftest f16 0x%04x: %.9g, reference %.9g", h,
                              (double)a, (double)b);
        if (memcmp(&c, &d, 4) != 0)
            return sw_err_set(err, SW_E_INTERNAL, "selftest bf16 0x%04x: %.9g, reference %.9g", h,
                              (double)c, (double)d);
    }
    return SW_OK;
}

extern "C" sw_status sw_cuda_quant_selftest(sw_err *err) {
    sw_status st0 = check_half_conversions(err);
    if (st0 != SW_OK) return st0;
    return swcu_check_each_quant<check_type>(err);
}
