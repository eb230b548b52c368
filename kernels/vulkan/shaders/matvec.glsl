/* matvec.glsl — out[n, t] = sum_k W[k, n] x[k, t] (+ bias[n]) for T <= 8
 * tokens (decode). Memory-bound: each weight row is read once for all T
 * tokens. One workgroup of 64 threads per row. Partial sums are combined with subgroupAdd when
 * USE_SUBGROUP is defined (matvec_sg.comp), else in shared memory. */
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint TYPE = 0u;

layout(binding = 0) readonly buffer W { uint wq[]; };
#include "mm_io.glsl"

#define QBUF wq
#include "dequant.glsl"

#define MAXT 8

/* Block types always have whole blocks per row (K % 32 == 0): their loads
 * need no tail checks, and the specialized pipeline drops that code. */
const bool PLAIN = TYPE == T_F32 || TYPE == T_F16 || TYPE == T_BF16;

/* x[e..e+3] of row xb, zero past K */
vec4 ldx(uint xb, uint e) {
    if (!PLAIN || e + 4u <= pc.K)
        return vec4(xv[xb + e], xv[xb + e + 1u], xv[xb + e + 2u], xv[xb + e + 3u]);
    return vec4(xv[xb + e], e + 1u < pc.K ? xv[xb + e + 1u] : 0.0,
                e + 2u < pc.K ? xv[xb + e + 2u] : 0.0, 0.0);
}

vec4 ldw(uint rb, uint e) {
    if (!PLAIN || e + 4u <= pc.K) return dq4(rb, e);
    return vec4(dq1(rb, e), e + 1u < pc.K ? dq1(rb, e + 1u) : 0.0,
                e + 2u < pc.K ? dq1(rb, e + 2u) : 0.0, 0.0);
}

/* per token: one partial sum per thread (shared-memory tree) or per
 * subgroup (at most 64 subgroups in a 64-thread workgroup) */
shared float red[MAXT][64];

void main() {
    uint n = group_id();
    if (n >= pc.N) return;
    uint tid = gl_LocalInvocationID.x;
    uint rb = pc.w_off + n * pc.w_nb1;
    float acc[MAXT];
    for (uint t = 0u; t < MAXT; t++) acc[t] = 0.0;
    /* thread i walks groups of 4 elements i, i+64, ...: consecutive threads
     * read consecutive bytes of the row; each group is dequantized once and
     * dotted with every token's x */
    uint ng = (pc.K + 3u) / 4u;
    for (uint gi = tid; gi < ng; gi += 64u) {
        uint e = gi * 4u;
        vec4 w = ldw(rb, e);
        for (uint t = 0u; t < MAXT; t++) {
            if (t >= pc.T) break;
            acc[t] += dot(w, ldx(pc.x_off + t * pc.x_nb1, e));
        }
    }
#ifdef USE_SUBGROUP
    for (uint t = 0u; t < MAXT; t++) {
        if (t >= pc.T) break;
        float s = subgroupAdd(acc[t]);
        if (subgroupElect()) red[t][gl_SubgroupID] = s;
    }
    barrier();
    if (tid < pc.T) {
        float s = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++) s += red[tid][i];
        if (pc.has_bias != 0u) s += bv[pc.b_off + n];
        outv[pc.o_off + tid * pc.o_nb1 + n] = s;
    }
#else
    for (uint t = 0u; t < MAXT; t++) red[t][tid] = acc[t];
    barrier();
    for (uint k = 32u; k > 0u; k >>= 1) {
        if (tid < k)
            for (uint t = 0u; t < MAXT; t++) red[t][tid] += red[t][tid + k];
        barrier();
    }
    if (tid < pc.T) {
        float s = red[tid][0];
        if (pc.has_bias != 0u) s += bv[pc.b_off + n];
        outv[pc.o_off + tid * pc.o_nb1 + n] = s;
    }
#endif
}
