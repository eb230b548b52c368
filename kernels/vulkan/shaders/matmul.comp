#version 450
/* matmul: out[n, t] = sum_k W[k, n] x[k, t] (+ bias[n]) for any T (prefill).
 * Compute-bound: 32x32 output tiles per workgroup of 256 threads, each
 * thread 2x2 outputs; every 32-wide K step dequantizes a 32x32 weight tile
 * and loads a 32x32 x tile into shared memory once for 32 reuses. */
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint TYPE = 0u;

layout(binding = 0) readonly buffer W { uint wq[]; };
#include "mm_io.glsl"

#define QBUF wq
#include "dequant.glsl"

/* block types have whole blocks per row: no tail checks (folded away) */
const bool PLAIN = TYPE == T_F32 || TYPE == T_F16 || TYPE == T_BF16;

shared float ws[32][33]; /* [row][k], padded against bank conflicts */
shared float xs[32][33]; /* [token][k] */

void main() {
    uint n0 = gl_WorkGroupID.x * 32u, t0 = gl_WorkGroupID.y * 32u;
    uint tid = gl_LocalInvocationID.x, tx = tid & 15u, ty = tid >> 4;
    uint lr = tid >> 3, lg = (tid & 7u) * 4u; /* loader: row/token lr, k offset lg */
    vec4 acc = vec4(0.0); /* (row tx, tok ty), (tx+16, ty), (tx, ty+16), (tx+16, ty+16) */
    for (uint k0 = 0u; k0 < pc.K; k0 += 32u) {
        uint e = k0 + lg;
        vec4 w = vec4(0.0), x = vec4(0.0);
        if (n0 + lr < pc.N && e < pc.K) {
            uint rb = pc.w_off + (n0 + lr) * pc.w_nb1;
            if (!PLAIN || e + 4u <= pc.K) {
                w = dq4(rb, e);
            } else {
                w.x = dq1(rb, e);
                if (e + 1u < pc.K) w.y = dq1(rb, e + 1u);
                if (e + 2u < pc.K) w.z = dq1(rb, e + 2u);
            }
        }
        if (t0 + lr < pc.T && e < pc.K) {
            uint xb = pc.x_off + (t0 + lr) * pc.x_nb1 + e;
            if (!PLAIN || e + 4u <= pc.K) {
                x = vec4(xv[xb], xv[xb + 1u], xv[xb + 2u], xv[xb + 3u]);
            } else {
                x.x = xv[xb];
                if (e + 1u < pc.K) x.y = xv[xb + 1u];
                if (e + 2u < pc.K) x.z = xv[xb + 2u];
            }
        }
        ws[lr][lg] = w.x; ws[lr][lg + 1u] = w.y; ws[lr][lg + 2u] = w.z; ws[lr][lg + 3u] = w.w;
        xs[lr][lg] = x.x; xs[lr][lg + 1u] = x.y; xs[lr][lg + 2u] = x.z; xs[lr][lg + 3u] = x.w;
        barrier();
        for (uint k = 0u; k < 32u; k++) {
            float a0 = ws[tx][k], a1 = ws[tx + 16u][k];
            float b0 = xs[ty][k], b1 = xs[ty + 16u][k];
            acc += vec4(a0 * b0, a1 * b0, a0 * b1, a1 * b1);
        }
        barrier();
    }
    for (uint j = 0u; j < 4u; j++) {
        uint n = n0 + tx + (j & 1u) * 16u, t = t0 + ty + (j >> 1) * 16u;
        if (n < pc.N && t < pc.T) {
            float s = acc[j];
            if (pc.has_bias != 0u) s += bv[pc.b_off + n];
            outv[pc.o_off + t * pc.o_nb1 + n] = s;
        }
    }
}
