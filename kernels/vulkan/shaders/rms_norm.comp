#version 450
/* rms_norm: out = x / sqrt(mean(x^2) + eps) * w, per row; with ADD (spec
 * constant 0, the fused add_rms_norm) x = x + h first. One workgroup per row
 * (rows counted over ne1 x ne2 x ne3); the sum of squares is a tree
 * reduction in shared memory. Each thread reads (adds, stores) and squares
 * its own elements before the reduction and writes them after it, so out may
 * alias x (rms_norm) or h (add_rms_norm). Without ADD, binding 3 is x again
 * and never read. */
#include "common.glsl"

layout(local_size_x = 128) in;
layout(constant_id = 0) const uint ADD = 0u;

layout(binding = 0) buffer X { float xv[]; };
layout(binding = 1) readonly buffer W { float wv[]; };
layout(binding = 2) buffer Out { float outv[]; };
layout(binding = 3) readonly buffer H { float hv[]; };

layout(push_constant) uniform PC {
    uint x_off, x_nb1, x_nb2, x_nb3; /* floats */
    uint o_off, o_nb1, o_nb2, o_nb3;
    uint n, ne1, ne2, n_rows; /* the layout vk_ops.c's norm_rows shares with layer_norm */
    uint w_off;
    float eps;
    uint h_off, h_nb1, h_nb2, h_nb3; /* ADD only */
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
        float v = xv[xb + i];
        if (ADD != 0u) {
            v += hv[hb + i];
            xv[xb + i] = v;
        }
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
