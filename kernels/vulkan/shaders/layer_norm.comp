#version 450
/* layer_norm: out = (x - mean(x)) / sqrt(var(x) + eps) * w + b, per row
 * (LayerNorm with the biased variance, as torch's; BERT). One workgroup per
 * row (rows counted over ne1 x ne2 x ne3); two tree reductions in shared
 * memory: the mean, then the squared deviations from it (no cancellation, as
 * E[x^2] - E[x]^2 would have). Without a bias (HAS_B 0) the host binds w
 * there. out may alias x: every thread reads its own elements before writing
 * them, after the reductions. */
#include "common.glsl"

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint HAS_B = 1u;

layout(binding = 0) readonly buffer X { float xv[]; };
layout(binding = 1) readonly buffer W { float wv[]; };
layout(binding = 2) readonly buffer B { float bv[]; };
layout(binding = 3) buffer Out { float outv[]; };

layout(push_constant) uniform PC {
    uint x_off, x_nb1, x_nb2, x_nb3; /* floats */
    uint o_off, o_nb1, o_nb2, o_nb3;
    uint n, ne1, ne2, n_rows;
    uint w_off, b_off;
    float eps;
} pc;

shared float red[128];

float reduce_sum(uint tid, float v) {
    red[tid] = v;
    barrier();
    for (uint k = 64u; k > 0u; k >>= 1) {
        if (tid < k) red[tid] += red[tid + k];
        barrier();
    }
    float r = red[0];
    barrier(); /* red is reused by the next reduction */
    return r;
}

void main() {
    uint r = group_id();
    if (r >= pc.n_rows) return;
    uint i1 = r % pc.ne1, i23 = r / pc.ne1, i2 = i23 % pc.ne2, i3 = i23 / pc.ne2;
    uint xb = pc.x_off + i1 * pc.x_nb1 + i2 * pc.x_nb2 + i3 * pc.x_nb3;
    uint ob = pc.o_off + i1 * pc.o_nb1 + i2 * pc.o_nb2 + i3 * pc.o_nb3;
    uint tid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = tid; i < pc.n; i += 128u) s += xv[xb + i];
    float mean = reduce_sum(tid, s) / float(pc.n);
    float ss = 0.0;
    for (uint i = tid; i < pc.n; i += 128u) {
        float d = xv[xb + i] - mean;
        ss += d * d;
    }
    float scale = inversesqrt(reduce_sum(tid, ss) / float(pc.n) + pc.eps);
    for (uint i = tid; i < pc.n; i += 128u) {
        float y = (xv[xb + i] - mean) * scale * wv[pc.w_off + i];
        if (HAS_B != 0u) y += bv[pc.b_off + i];
        outv[ob + i] = y;
    }
}
