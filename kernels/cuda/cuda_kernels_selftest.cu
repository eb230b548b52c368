// cuda_kernels_selftest.cu — host runs of the CUDA kernels' schedules, from
// the same SWCU_HD source the kernels use, so that what does not need a GPU
// is checked on machines without one:
// - swcu_ld_run32's shift of a 32-byte run out of 16-byte chunks, for every
//   even offset, against memcpy;
// - the int8 tensor-core matmul (cuda_mmq.cuh): whole thread blocks of
//   k_mmq, every warp and lane, with mma.m16n8k16 emulated from the PTX ISA's
//   fragment layouts, for every quant type and both tile widths, against
//   sum_k w_ref[k] x_hat[k] in double over the int8 activation grid (bound
//   1e-5 sum |w x_hat|: float rounding of a few terms per group);
// - the decode attention's schedule (cuda_attention.cuh): which split, warp
//   and lane group takes which key (each exactly once), the per-key online
//   softmax, the shuffle-tree merges of the lane groups, the merge of the
//   warps and the combine of the splits, against a softmax in double, for
//   head_dim 64, 128 and 256 (8, 16 and 32 lanes per key), contexts of 1 to
//   300 keys and 1 to 8 splits (some of them empty).
// What it cannot check: that the hardware's fragment layout, shuffles and
// memory accesses are what the emulation assumes (test_cuda_ops on a GPU).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_attention.cuh"
#include "cuda_backend.h"
#include "cuda_mmq.cuh"

namespace {

uint64_t g_rng = 0x243F6A8885A308D3ull;
double urand() {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) * 0x1.0p-53;
}
float nrand() {
    double s = 0;
    for (int i = 0; i < 4; i++) s += urand() - 0.5;
    return (float)(s * 1.7);
}

sw_status check_run32(sw_err *err) {
    uint8_t bytes[48];
    for (int i = 0; i < 48; i++) bytes[i] = (uint8_t)(urand() * 256);
    uint32_t u[12];
    memcpy(u, bytes, sizeof u);
    for (int off = 0; off < 16; off += 2) {
        uint32_t v[8], ref[8];
        swcu_run32_shift(u, off, v);
        memcpy(ref, bytes + off, 32);
        if (memcmp(v, ref, 32) != 0)
            return sw_err_set(err, SW_E_INTERNAL, "selftest ld_run32: offset %d differs", off);
    }
    return SW_OK;
}

// ---- mma.m16n8k16 s8, emulated on the 32 lanes' registers ----
void emu_mma(int c[32][4], const int a[32][2], const int b[32]) {
    int A[16][16], B[16][8];
    for (int lane = 0; lane < 32; lane++) {
        const int kw = swcu_mma_k_word(lane);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < 4; i++)
                A[swcu_mma_a_row(lane, r)][4 * kw + i] = (int8_t)(a[lane][r] >> (8 * i));
        for (int i = 0; i < 4; i++) B[4 * kw + i][swcu_mma_b_col(lane)] = (int8_t)(b[lane] >> (8 * i));
    }
    for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++) {
            const int row = swcu_mma_c_row(lane, i), col = swcu_mma_c_col(lane, i);
            int s = 0;
            for (int k = 0; k < 16; k++) s += A[row][k] * B[k][col];
            c[lane][i] += s;
        }
}

// One thread block of k_mmq on the host: rows n0.., tokens t0...
template <int TYPE, int NF>
void emu_mmq_block(const uint8_t *w, size_t ws, int K, int N, const int8_t *xq, const float2 *xds,
                   int T, int n0, int t0, float *out) {
    constexpr int BT = 8 * NF;
    static swcu_mmq_w tw;
    static swcu_mmq_x<BT> tx;
    static float acc[4][32][NF][4];
    memset(acc, 0, sizeof acc);
    const int G = K / 32;
    for (int g = 0; g < G; g++) {
        for (int row = 0; row < MMQ_ROWS; row++)
            swcu_mmq_load_w<TYPE>(tw, row, n0 + row < N ? w + (size_t)(n0 + row) * ws : nullptr, g);
        for (int j = 0; j < BT; j++) {
            const int t = t0 + j;
            swcu_mmq_load_x<BT>(tx, j, t < T ? xq + (size_t)t * K : nullptr,
                                t < T ? xds + (size_t)t * G : nullptr, g);
        }
        for (int wp = 0; wp < 4; wp++)
            for (int h = 0; h < 2; h++)
                for (int f = 0; f < NF; f++) {
                    int a[32][2], b[32], c[32][4];
                    for (int lane = 0; lane < 32; lane++) {
                        swcu_mmq_frag_a(tw, wp, lane, h, a[lane]);
                        b[lane] = swcu_mmq_frag_b(tx, f, lane, h);
                        for (int i = 0; i < 4; i++) c[lane][i] = 0;
                    }
                    emu_mma(c, a, b);
                    for (int lane = 0; lane < 32; lane++)
                        swcu_mmq_fold(tw, tx, wp, lane, h, f, c[lane], acc[wp][lane][f]);
                }
    }
    for (int wp = 0; wp < 4; wp++)
        for (int lane = 0; lane < 32; lane++)
            for (int f = 0; f < NF; f++)
                for (int i = 0; i < 4; i++) {
                    const int row = n0 + 16 * wp + swcu_mma_c_row(lane, i);
                    const int tok = t0 + 8 * f + swcu_mma_c_col(lane, i);
                    if (row < N && tok < T) out[(size_t)tok * N + row] = acc[wp][lane][f][i];
                }
}

struct check_mmq {
    sw_err *err;
    sw_status st;
    template <int NF, int TYPE> void run(int T) {
        const int K = 512, N = 70, G = K / 32;
        const size_t rb = sw_row_size((sw_type)TYPE, K);
        float *wf = (float *)malloc(sizeof(float) * K * N), *wref = (float *)malloc(sizeof(float) * K * N);
        uint8_t *wq = (uint8_t *)malloc(rb * N);
        int8_t *xq = (int8_t *)malloc((size_t)K * T);
        float2 *xds = (float2 *)malloc(sizeof(float2) * G * T);
        float *out = (float *)calloc((size_t)N * T, sizeof(float));
        for (int i = 0; i < K * N; i++) wf[i] = nrand() * 0.05f * (1.0f + (float)((i / 96) % 4));
        for (int r = 0; r < N && st == SW_OK; r++) {
            st = sw_quantize_row((sw_type)TYPE, wf + r * K, wq + r * rb, K, err);
            if (st == SW_OK) st = sw_dequantize_row((sw_type)TYPE, wq + r * rb, wref + r * K, K, err);
        }
        for (int t = 0; t < T; t++) // the kernel's input: swcu_quantize_q8's grid
            for (int g = 0; g < G; g++) {
                float x[32], amax = 0.0f;
                for (int i = 0; i < 32; i++) {
                    x[i] = nrand() * ((g + t) % 3 == 0 ? 2.0f : 0.3f);
                    amax = fmaxf(amax, fabsf(x[i]));
                }
                const float d = swcu_q8_scale(amax);
                int sum = 0;
                for (int i = 0; i < 32; i++) {
                    const int v = swcu_q8_elem(x[i], d);
                    xq[(size_t)t * K + 32 * g + i] = (int8_t)v;
                    sum += v;
                }
                xds[(size_t)t * G + g] = make_float2(d, d * (float)sum);
            }
        for (int n0 = 0; n0 < N && st == SW_OK; n0 += MMQ_ROWS)
            for (int t0 = 0; t0 < T; t0 += 8 * NF)
                emu_mmq_block<TYPE, NF>(wq, rb, K, N, xq, xds, T, n0, t0, out);
        for (int t = 0; t < T && st == SW_OK; t++)
            for (int n = 0; n < N && st == SW_OK; n++) {
                double ref = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    const double xh = (double)xds[(size_t)t * G + k / 32].x * xq[(size_t)t * K + k];
                    ref += (double)wref[n * K + k] * xh;
                    mag += fabs((double)wref[n * K + k] * xh);
                }
                const double got = out[(size_t)t * N + n];
                if (fabs(got - ref) > 1e-5 * mag + 1e-30)
                    st = sw_err_set(err, SW_E_INTERNAL,
                                    "selftest mmq %s (tile of %d tokens), T %d: out[%d, %d] = %.9g, "
                                    "reference %.9g (|diff| %.3g > %.3g)",
                                    sw_type_name(TYPE), 8 * NF, T, n, t, got, ref, fabs(got - ref),
                                    1e-5 * mag);
            }
        free(wf); free(wref); free(wq); free(xq); free(xds); free(out);
    }
    template <int TYPE> void operator()() {
        run<4, TYPE>(20);
        if (st == SW_OK) run<16, TYPE>(100);
    }
};

// ---- the decode attention's schedule on the host ----
// A lane group's state covers the whole head (the kernel spreads it over the
// group's lanes, E values each); scores are summed per lane slice, then over
// the group with the shuffle tree, as the kernel does.
struct gstate {
    float m, l, acc[256];
};

float group_score(const float *q, const float *k, int D, int E) {
    const int L = D / E;
    float part[32];
    for (int s = 0; s < L; s++) {
        part[s] = 0.0f;
        for (int e = 0; e < E; e++) part[s] += q[s * E + e] * k[s * E + e];
    }
    for (int o = L / 2; o > 0; o >>= 1) {
        float nx[32];
        for (int s = 0; s < L; s++) nx[s] = part[s] + part[s ^ o];
        memcpy(part, nx, sizeof(float) * L);
    }
    return part[0];
}

sw_status check_attention_case(int D, int n_keys, int n_splits, sw_err *err) {
    const int E = 8, L = D / E, kpw = 32 / L; // the f16 kernel's geometry
    const float scale = 1.0f / sqrtf((float)D);
    float *q = (float *)malloc(sizeof(float) * D), *k = (float *)malloc(sizeof(float) * D * n_keys);
    float *v = (float *)malloc(sizeof(float) * D * n_keys);
    int *seen = (int *)calloc((size_t)n_keys, sizeof(int));
    float vmax = 0.0f;
    for (int i = 0; i < D; i++) q[i] = nrand();
    for (int i = 0; i < D * n_keys; i++) {
        k[i] = nrand();
        v[i] = nrand() * 2.0f;
        vmax = fmaxf(vmax, fabsf(v[i]));
    }
    static gstate warp_state[ATTW_WARPS][32], split_state[ATT_MAX_SPLITS];
    for (int sp = 0; sp < n_splits; sp++) {
        int k0, k1;
        swcu_attn_split_range(0, n_keys, n_splits, sp, ATTW_WARPS * kpw, &k0, &k1);
        const int step = ATTW_WARPS * kpw, n_it = (k1 - k0 + step - 1) / step;
        for (int w = 0; w < ATTW_WARPS; w++)
            for (int grp = 0; grp < kpw; grp++) {
                gstate &s = warp_state[w][grp];
                s.m = -INFINITY;
                s.l = 0.0f;
                memset(s.acc, 0, sizeof s.acc);
                for (int it = 0; it < n_it; it++) {
                    const int j = swcu_attnw_key(k0, it, w, grp, kpw);
                    if (j >= k1) continue;
                    seen[j]++;
                    const float sc = group_score(q, k + (size_t)j * D, D, E) * scale;
                    swcu_online_update(s.m, s.l, s.acc, D, sc, v + (size_t)j * D);
                }
            }
        for (int w = 0; w < ATTW_WARPS; w++) // the shuffle tree over the lane groups
            for (int o = 1; o < kpw; o <<= 1) {
                static gstate nx[32];
                for (int grp = 0; grp < kpw; grp++) {
                    nx[grp] = warp_state[w][grp];
                    const gstate &p = warp_state[w][grp ^ o];
                    swcu_online_merge(nx[grp].m, nx[grp].l, nx[grp].acc, D, p.m, p.l, p.acc);
                }
                for (int grp = 0; grp < kpw; grp++) warp_state[w][grp] = nx[grp];
            }
        gstate &out = split_state[sp]; // the warps, one element at a time as the kernel
        for (int d = 0; d < D; d++) {
            float M = -INFINITY, Lt = 0.0f, O = 0.0f;
            for (int w = 0; w < ATTW_WARPS; w++)
                swcu_online_merge(M, Lt, &O, 1, warp_state[w][0].m, warp_state[w][0].l,
                                  &warp_state[w][0].acc[d]);
            out.acc[d] = O;
            out.m = M;
            out.l = Lt;
        }
    }
    sw_status st = SW_OK;
    for (int j = 0; j < n_keys && st == SW_OK; j++)
        if (seen[j] != 1)
            st = sw_err_set(err, SW_E_INTERNAL,
                            "selftest attention D %d, %d keys, %d splits: key %d taken %d times",
                            D, n_keys, n_splits, j, seen[j]);
    // k_attention_combine's merge of the splits, and the reference
    double ms = -INFINITY, zs = 0;
    double *sc = (double *)malloc(sizeof(double) * n_keys);
    for (int j = 0; j < n_keys; j++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)q[d] * k[(size_t)j * D + d];
        sc[j] = s * scale;
        ms = fmax(ms, sc[j]);
    }
    for (int j = 0; j < n_keys; j++) zs += exp(sc[j] - ms);
    float M = -INFINITY;
    for (int sp = 0; sp < n_splits; sp++) M = fmaxf(M, split_state[sp].m);
    float Lc = 0.0f;
    for (int sp = 0; sp < n_splits; sp++)
        if (split_state[sp].m != -INFINITY) Lc += split_state[sp].l * expf(split_state[sp].m - M);
    for (int d = 0; d < D && st == SW_OK; d++) {
        float o = 0.0f;
        for (int sp = 0; sp < n_splits; sp++)
            if (split_state[sp].m != -INFINITY) o += split_state[sp].acc[d] * expf(split_state[sp].m - M);
        o = n_splits == 1 ? (Lc > 0 ? split_state[0].acc[d] / Lc : 0.0f) : (Lc > 0 ? o / Lc : 0.0f);
        double ref = 0;
        for (int j = 0; j < n_keys; j++) ref += exp(sc[j] - ms) / zs * v[(size_t)j * D + d];
        if (fabs(o - ref) > 2e-5 * vmax)
            st = sw_err_set(err, SW_E_INTERNAL,
                            "selftest attention D %d, %d keys, %d splits: out[%d] = %.9g, "
                            "reference %.9g",
                            D, n_keys, n_splits, d, (double)o, ref);
    }
    free(q); free(k); free(v); free(seen); free(sc);
    return st;
}

sw_status check_attention(sw_err *err) {
    static const int Ds[] = {64, 128, 256}, keys[] = {1, 5, 37, 300}, splits[] = {1, 3, 8};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 3; c++) {
                sw_status st = check_attention_case(Ds[a], keys[b], splits[c], err);
                if (st != SW_OK) return st;
            }
    return SW_OK;
}

} // namespace

extern "C" sw_status sw_cuda_kernels_selftest(sw_err *err) {
    sw_status st = check_run32(err);
    if (st != SW_OK) return st;
    if ((st = swcu_check_each_quant<check_mmq>(err)) != SW_OK) return st;
    return check_attention(err);
}
