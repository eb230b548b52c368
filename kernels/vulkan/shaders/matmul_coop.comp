#version 450
/* matmul_coop: out[n, t] = sum_k W[k, n] x[k, t] (+ bias[n]) for T > 8
 * (prefill) on NVIDIA tensor cores through VK_NV_cooperative_matrix:
 * 16x16x16 f16 x f16 -> f32 products at subgroup scope.
 *
 * Only for devices with that extension, a 16x16x16 f16/f16/f32/f32
 * subgroup-scope shape, the cooperativeMatrix and vulkanMemoryModel features
 * and 32-wide subgroups; the backend checks, and compares this shader's result
 * with matmul_fast's once at create, falling back to matmul_fast for good if
 * they disagree (vk_coop.c). Unlike matmul_fast it rounds the dequantized
 * weights and x to f16 (what tensor cores take), so its error is that of f16
 * inputs (~2^-11 relative per product), accumulated in f32: the host only
 * uses it for quantized and F16 weights, whose values f16 holds in range.
 *
 * A workgroup of 4 subgroups computes a 64x64 tile (rows n x tokens t), each
 * subgroup a 32x32 quarter as 2x2 accumulators. Each 32-wide K step stages
 * the dequantized weights and x in shared memory as f16; the next step's
 * global loads are issued before the current one is multiplied.
 *
 * Specialization: 0 TYPE, 1 VEC (as matmul_fast: bit 0 plain rows, bit 1 x
 * rows on 16 bytes). */
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "common.glsl"

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint TYPE = 0u;
layout(constant_id = 1) const uint VEC = 0u;

#define MM_X4
#include "mm_io.glsl"

const bool VEC_OK = (VEC & 1u) != 0u;
const bool XVEC = (VEC & 2u) != 0u;
#include "fastq.glsl"

#define BM 64u
#define BN 64u
#define BK 32u
#define LDS 40u /* f16 per staged row: BK + 8, rows start on 16 bytes */
#define LDC 68u /* floats per staged output column: BM + 4 */

shared float16_t wsh[BM * LDS]; /* [row n][k] */
shared float16_t xsh[BN * LDS]; /* [token t][k] */
shared float csh[BN * LDC];     /* [token t][row n], the accumulators at the end */

/* the loader's registers: row / token lr, k half kh of the tile */
vec4 lw[4], lx[4];

void ldx8(uint xb, uint e, out vec4 a, out vec4 b) {
    if (XVEC && (!PLAIN || e + 8u <= pc.K)) {
        a = xv4[(xb + e) / 4u];
        b = xv4[(xb + e) / 4u + 1u];
        return;
    }
    float v[8];
    for (uint i = 0u; i < 8u; i++) v[i] = e + i < pc.K ? xv[xb + e + i] : 0.0;
    a = vec4(v[0], v[1], v[2], v[3]);
    b = vec4(v[4], v[5], v[6], v[7]);
}

void load_tile(uint n0, uint t0, uint k0, uint lr, uint kh) {
    for (uint h = 0u; h < 2u; h++) {
        uint e = k0 + kh * 16u + h * 8u;
        vec4 q0 = vec4(0.0), q1 = vec4(0.0);
        float S = 0.0, M = 0.0;
        if (n0 + lr < pc.N && e < pc.K) fq8(pc.w_off + (n0 + lr) * pc.w_nb1, e, q0, q1, S, M);
        lw[2u * h] = S * q0 + M;
        lw[2u * h + 1u] = S * q1 + M;
        lx[2u * h] = vec4(0.0);
        lx[2u * h + 1u] = vec4(0.0);
        if (t0 + lr < pc.T && e < pc.K)
            ldx8(pc.x_off + (t0 + lr) * pc.x_nb1, e, lx[2u * h], lx[2u * h + 1u]);
    }
}

void store_tile(uint lr, uint kh) {
    uint o = lr * LDS + kh * 16u;
    for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++) {
            wsh[o + 4u * i + j] = float16_t(lw[i][j]);
            xsh[o + 4u * i + j] = float16_t(lx[i][j]);
        }
}

void main() {
    uint n0 = gl_WorkGroupID.x * BM, t0 = gl_WorkGroupID.y * BN;
    uint tid = gl_LocalInvocationID.x, lr = tid & 63u, kh = tid >> 6;
    uint sg = gl_SubgroupID, wm = (sg & 1u) * 32u, wn = (sg >> 1) * 32u;
    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[2][2];
    for (uint i = 0u; i < 2u; i++)
        for (uint j = 0u; j < 2u; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

    load_tile(n0, t0, 0u, lr, kh);
    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        store_tile(lr, kh);
        barrier();
        if (k0 + BK < pc.K) load_tile(n0, t0, k0 + BK, lr, kh);
        for (uint kk = 0u; kk < BK; kk += 16u) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[2], b[2];
            for (uint i = 0u; i < 2u; i++) /* A = W rows x k, row-major */
                coopMatLoadNV(a[i], wsh, (wm + 16u * i) * LDS + kk, LDS, false);
            for (uint j = 0u; j < 2u; j++) /* B = k x tokens: xsh is its column-major form */
                coopMatLoadNV(b[j], xsh, (wn + 16u * j) * LDS + kk, LDS, true);
            for (uint i = 0u; i < 2u; i++)
                for (uint j = 0u; j < 2u; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
        }
        barrier();
    }

    /* column-major into csh: consecutive threads then write consecutive n */
    for (uint i = 0u; i < 2u; i++)
        for (uint j = 0u; j < 2u; j++)
            coopMatStoreNV(acc[i][j], csh, (wn + 16u * j) * LDC + wm + 16u * i, LDC, true);
    barrier();
    for (uint idx = tid; idx < BM * BN; idx += 128u) {
        uint t = idx / BM, r = idx % BM;
        if (n0 + r >= pc.N || t0 + t >= pc.T) continue;
        float s = csh[t * LDC + r];
        if (pc.has_bias != 0u) s += bv[pc.b_off + n0 + r];
        outv[pc.o_off + (t0 + t) * pc.o_nb1 + n0 + r] = s;
    }
}
