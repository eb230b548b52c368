/* matvec_fast.glsl — out[n, t] = sum_k W[k, n] x[k, t] (+ bias[n]) for
 * T <= 8 tokens (decode), on devices with 16/8-bit storage (fastq.glsl).
 *
 * Memory-bound: every weight byte is read once for all T tokens, and on a GPU
 * the count of load instructions per byte decides whether the bytes stream at
 * full bandwidth. So a thread's unit of work is 32 weights of one row whose
 * quants are 16 contiguous bytes (fq32 in fastq.glsl: both nibbles of every
 * byte used, one scale decode per 16 weights), read with 16-bit loads, and x
 * is read with 16-byte loads where aligned. A workgroup of WG threads owns
 * ROWS consecutive rows; thread i takes units i, i + WG, ... of every one of
 * them, so a wave reads contiguous bytes of a row and each x run, once
 * loaded, serves ROWS rows. Partial sums (f32) are combined with subgroupAdd
 * when USE_SUBGROUP is defined (matvec_fast_sg.comp), else by a shared-memory
 * tree; neither assumes which invocations form a subgroup. Weights are
 * dequantized in f32 with the plain shader's formulas: no f16 arithmetic
 * touches a product.
 *
 * Specialization: 0 TYPE, 1 WG (local size, a power of two), 2 ROWS,
 * 3 VEC: bit 0, weight rows start on 16 bytes (16-byte loads of F32/F16/BF16
 * and of Q4_K/Q5_K quants); bit 1, x rows start on 16 bytes (16-byte x loads). */
#include "common.glsl"

layout(local_size_x_id = 1) in;
layout(constant_id = 0) const uint TYPE = 0u;
layout(constant_id = 1) const uint WG = 128u;
layout(constant_id = 2) const uint ROWS = 2u;
layout(constant_id = 3) const uint VEC = 0u;

#define MM_X4
#include "mm_io.glsl"

const bool VEC_OK = (VEC & 1u) != 0u;
const bool XVEC = (VEC & 2u) != 0u;
#include "fastq.glsl"

#define MAXT 8

/* x[e..e+15] of token row xb (e % 16 == 0) into x[o..o+3]; plain types may
 * end inside the run */
void ldx16(uint xb, uint e, inout vec4 x[8], uint o) {
    if (!PLAIN || e + 16u <= pc.K) {
        if (XVEC) {
            for (uint k = 0u; k < 4u; k++) x[o + k] = xv4[(xb + e) / 4u + k];
        } else {
            for (uint k = 0u; k < 4u; k++) {
                uint a = xb + e + 4u * k;
                x[o + k] = vec4(xv[a], xv[a + 1u], xv[a + 2u], xv[a + 3u]);
            }
        }
        return;
    }
    for (uint k = 0u; k < 4u; k++)
        for (uint i = 0u; i < 4u; i++) {
            uint a = e + 4u * k + i;
            x[o + k][i] = a < pc.K ? xv[xb + a] : 0.0;
        }
}

/* one partial sum per (row, token) per thread or per subgroup */
shared float red[ROWS * MAXT][WG];

void main() {
    uint n0 = group_id() * ROWS;
    if (n0 >= pc.N) return; /* whole workgroup: no barrier is skipped by half of it */
    uint tid = gl_LocalInvocationID.x;
    float acc[ROWS * MAXT];
    for (uint v = 0u; v < ROWS * MAXT; v++) acc[v] = 0.0;

    uint units = (pc.K + 31u) / 32u;
    for (uint c = tid; c < units; c += WG) {
        /* dequantize this unit of every row first (all loads in flight), then
         * stream x once per token; the element runs depend on c only */
        uint e0 = 0u, e1 = 0u;
        vec4 w[ROWS][8];
        for (uint r = 0u; r < ROWS; r++) {
            if (n0 + r < pc.N) {
                fq32(pc.w_off + (n0 + r) * pc.w_nb1, c, e0, e1, w[r]);
            } else {
                for (uint k = 0u; k < 8u; k++) w[r][k] = vec4(0.0);
            }
        }
        for (uint t = 0u; t < MAXT; t++) {
            if (t >= pc.T) break;
            vec4 x[8];
            ldx16(pc.x_off + t * pc.x_nb1, e0, x, 0u);
            ldx16(pc.x_off + t * pc.x_nb1, e1, x, 4u);
            for (uint r = 0u; r < ROWS; r++) {
                float s = 0.0;
                for (uint k = 0u; k < 8u; k++) s += dot(w[r][k], x[k]);
                acc[r * MAXT + t] += s;
            }
        }
    }

#ifdef USE_SUBGROUP
    for (uint v = 0u; v < ROWS * MAXT; v++) {
        if (v % MAXT >= pc.T) continue; /* pc.T is uniform: subgroupAdd stays uniform */
        float s = subgroupAdd(acc[v]);
        if (subgroupElect()) red[v][gl_SubgroupID] = s;
    }
    barrier();
    uint parts = gl_NumSubgroups;
#else
    for (uint v = 0u; v < ROWS * MAXT; v++) red[v][tid] = acc[v];
    barrier();
    for (uint k = WG / 2u; k > 0u; k >>= 1) {
        if (tid < k)
            for (uint v = 0u; v < ROWS * MAXT; v++)
                if (v % MAXT < pc.T) red[v][tid] += red[v][tid + k];
        barrier();
    }
    uint parts = 1u;
#endif
    /* thread v writes (row v / T, token v % T) */
    for (uint v = tid; v < ROWS * pc.T; v += WG) {
        uint r = v / pc.T, t = v % pc.T, n = n0 + r;
        if (n >= pc.N) continue;
        float s = 0.0;
        for (uint i = 0u; i < parts; i++) s += red[r * MAXT + t][i];
        if (pc.has_bias != 0u) s += bv[pc.b_off + n];
        outv[pc.o_off + t * pc.o_nb1 + n] = s;
    }
}
