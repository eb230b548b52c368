#version 450
/* add_rms_norm: x = x + h, then out = x / sqrt(mean(x^2) + eps) * w, per row:
 * the residual add and the norm after it in one dispatch (rms_norm.comp with
 * the add in front). One workgroup per row; each thread adds, stores and
 * squares its own elements, so out may alias h. */
#include "common.glsl"

layout(local_size_x = 128) in;

layout(binding = 0) buffer X { float xv[]; };
layout(binding = 1) readonly buffer H { float hv[]; };
layout(binding = 2) readonly buffer W { float wv[]; };
layout(binding = 3) buffer Out { float outv[]; };

layout(push_constant) uniform PC {
    uint x_off, x_nb1, x_nb2, x_nb3; /* floats */
    uint h_off, h_nb1, h_nb2, h_nb3;
    uint o_off, o_nb1, o_nb2, o_nb3;
    uint w_off;
    uint n, ne1, ne2, n_rows;
    float eps;
} pc;

shared float red[128];

void main() {
    uint r = group_id();
    if (r >= pc.n_rows) return;
    uint i1 = r % pc.ne1, i23 = r / pc.ne1, i2 = i23 % pc.ne2, i3 = i23 / pc.ne2;
    uint xb = pc.x_off + i1 * pc.x_nb1 + i2 * pc.x_nb2 + i3 * pc.x_nb3;
    uint hb = pc.h_off + i1 * pc.h_nb1 + i2 * pc.h_nb2 + i3 * pc.h_nb3;
    uint ob = pc.o_off + i1 * pc.o_nb1 + i2 * pc.o_nb2 + i3 * pc.o_nb3;
    uint tid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = tid; i < pc.n; i += 128u) {
        float v = xv[xb + i] + hv[hb + i];
        xv[xb + i] = v;
        s += v * v;
    }
    red[tid] = s;
    barrier();
    for (uint k = 64u; k > 0u; k >>= 1) {
        if (tid < k) red[tid] += red[tid + k];
        barrier();
    }
    float scale = inversesqrt(red[0] / float(pc.n) + pc.eps);
    for (uint i = tid; i < pc.n; i += 128u) outv[ob + i] = (xv[xb + i] * scale) * wv[pc.w_off + i];
}
