/* matmul_fast.glsl — out[n, t] = sum_k W[k, n] x[k, t] (+ bias[n]) for any T
 * (prefill), on devices with 16/8-bit storage and shaderFloat16.
 *
 * Compute-bound: 64x64 output tiles per workgroup of 256 threads, each thread
 * 4 rows x 4 tokens in registers; every 32-wide K step stages a 64x32 weight
 * tile and a 32x64 x tile in shared memory, so each k costs a thread one
 * 4-row weight load and one 4-token x load for 16 FMAs. The next K step's
 * global loads are issued before the current step is computed.
 *
 * The weight tile holds the blocks' small integers q, not the dequantized
 * weights: q (|q| <= 128) and F16 weights are exact in f16 (WT = float16_t,
 * matmul_fast.comp), so the half-size tile loses nothing. Each group of 16 or
 * 32 k shares a scale S and offset M (fastq.glsl), applied once per group in
 * f32:  sum_k w_k x_k = S sum_k q_k x_k + M sum_k x_k.  F32 and BF16 weights,
 * which f16 cannot hold, use matmul_fast32.comp (WT = float). x and every sum
 * stay f32. Rounding: each group's partial sum adds G products (G <= 32), then
 * one product with S, then the K / G group sums: well within the tests'
 * (K + 64) u sum |w x| bound.
 *
 * Specialization: 0 TYPE, 1 VEC: bit 0, weight rows start on 16 bytes (16-byte
 * loads of F32/F16/BF16); bit 1, x rows start on 16 bytes (16-byte x loads). */
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint TYPE = 0u;
layout(constant_id = 1) const uint VEC = 0u;

#define MM_X4
#include "mm_io.glsl"

const bool VEC_OK = (VEC & 1u) != 0u;
const bool XVEC = (VEC & 2u) != 0u;
#include "fastq.glsl"

#define BM 64u /* rows (n) per tile */
#define BN 64u /* tokens per tile */
#define BK 32u
const uint G = PLAIN ? BK : FQ_GROUP; /* k per scale group */
const uint NG = BK / G;

shared WVEC4 wsh[BK][BM / 4u]; /* [k][rows 4j..4j+3] */
shared vec4 xsh[BK][BN / 4u];  /* [k][tokens 4j..4j+3] */
shared vec4 ssh[2][BM / 4u];   /* [group][rows]: scale S */
shared vec4 msh[2][BM / 4u];   /* offset M */

/* the loader's registers: row / token lr, k chunk kc * 8 of the tile */
vec4 lq0, lq1, lx0, lx1;
float lS, lM;

void ldx8(uint xb, uint e, out vec4 a, out vec4 b) {
    if (XVEC && (!PLAIN || e + 8u <= pc.K)) {
        a = xv4[(xb + e) / 4u];
        b = xv4[(xb + e) / 4u + 1u];
        return;
    }
    if (!PLAIN || e + 8u <= pc.K) {
        a = vec4(xv[xb + e], xv[xb + e + 1u], xv[xb + e + 2u], xv[xb + e + 3u]);
        b = vec4(xv[xb + e + 4u], xv[xb + e + 5u], xv[xb + e + 6u], xv[xb + e + 7u]);
        return;
    }
    float v[8];
    for (uint i = 0u; i < 8u; i++) v[i] = e + i < pc.K ? xv[xb + e + i] : 0.0;
    a = vec4(v[0], v[1], v[2], v[3]);
    b = vec4(v[4], v[5], v[6], v[7]);
}

void load_tile(uint n0, uint t0, uint k0, uint lr, uint kc) {
    uint e = k0 + kc * 8u;
    lq0 = vec4(0.0);
    lq1 = vec4(0.0);
    lS = 0.0;
    lM = 0.0;
    if (n0 + lr < pc.N && e < pc.K)
        fq8(pc.w_off + (n0 + lr) * pc.w_nb1, e, lq0, lq1, lS, lM);
    lx0 = vec4(0.0);
    lx1 = vec4(0.0);
    if (t0 + lr < pc.T && e < pc.K) ldx8(pc.x_off + (t0 + lr) * pc.x_nb1, e, lx0, lx1);
}

void store_tile(uint lr, uint kc) {
    uint c = lr >> 2, j = lr & 3u, k = kc * 8u;
    for (uint i = 0u; i < 4u; i++) {
        wsh[k + i][c][j] = WT(lq0[i]);
        wsh[k + 4u + i][c][j] = WT(lq1[i]);
        xsh[k + i][c][j] = lx0[i];
        xsh[k + 4u + i][c][j] = lx1[i];
    }
    if (!PLAIN && k % G == 0u) {
        ssh[k / G][c][j] = lS;
        msh[k / G][c][j] = lM;
    }
}

void main() {
    uint n0 = gl_WorkGroupID.x * BM, t0 = gl_WorkGroupID.y * BN;
    uint tid = gl_LocalInvocationID.x, tx = tid & 15u, ty = tid >> 4;
    uint lr = tid & 63u, kc = tid >> 6;
    vec4 acc[4]; /* acc[i][j]: row n0 + 4 tx + i, token t0 + 4 ty + j */
    for (uint i = 0u; i < 4u; i++) acc[i] = vec4(0.0);

    load_tile(n0, t0, 0u, lr, kc);
    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        store_tile(lr, kc);
        barrier();
        if (k0 + BK < pc.K) load_tile(n0, t0, k0 + BK, lr, kc);
        for (uint g = 0u; g < NG; g++) {
            vec4 p[4], xs = vec4(0.0);
            for (uint i = 0u; i < 4u; i++) p[i] = vec4(0.0);
            for (uint kk = 0u; kk < G; kk++) {
                uint k = g * G + kk;
                vec4 a = vec4(wsh[k][tx]), b = xsh[k][ty];
                p[0] += a.x * b;
                p[1] += a.y * b;
                p[2] += a.z * b;
                p[3] += a.w * b;
                if (FQ_HAS_MIN) xs += b;
            }
            if (PLAIN) {
                for (uint i = 0u; i < 4u; i++) acc[i] += p[i];
            } else {
                vec4 S = ssh[g][tx], M = msh[g][tx];
                for (uint i = 0u; i < 4u; i++) {
                    acc[i] += S[i] * p[i];
                    if (FQ_HAS_MIN) acc[i] += M[i] * xs;
                }
            }
        }
        barrier();
    }

    for (uint i = 0u; i < 4u; i++) {
        uint n = n0 + tx * 4u + i;
        if (n >= pc.N) break;
        float bias = pc.has_bias != 0u ? bv[pc.b_off + n] : 0.0;
        for (uint j = 0u; j < 4u; j++) {
            uint t = t0 + ty * 4u + j;
            if (t < pc.T) outv[pc.o_off + t * pc.o_nb1 + n] = acc[i][j] + bias;
        }
    }
}
