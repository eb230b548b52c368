#version 450
/* rope: rotate pairs of x [head_dim, n_heads, T] in place by
 * theta_i = pos[t] * freq_scale * base^(-2i/n_dims) / ff[i]; mode 0 rotates
 * adjacent pairs (2i, 2i+1), mode 2 (NeoX) pairs (i, i + n_dims/2). One thread
 * per pair; the angle is rope.glsl's. */
#include "common.glsl"
#include "rope.glsl"

layout(local_size_x = 256) in;

layout(binding = 0) buffer X { float xv[]; };
layout(binding = 1) readonly buffer Pos { int posv[]; };
layout(binding = 2) readonly buffer FF { float ffv[]; };

layout(push_constant) uniform PC {
    uint x_off, x_nb1, x_nb2; /* floats: head and token strides */
    uint n_heads, T, n_dims, mode;
    uint pos_off, ff_off, has_ff;
    float freq_base, freq_scale;
    uint total;
} pc;

void main() {
    uint idx = group_id() * 256u + gl_LocalInvocationID.x;
    if (idx >= pc.total) return;
    uint half_dims = pc.n_dims / 2u;
    uint i = idx % half_dims, r = idx / half_dims, h = r % pc.n_heads, t = r / pc.n_heads;
    vec2 cs = rope_cs(posv[pc.pos_off + t], i, pc.n_dims, pc.freq_base, pc.freq_scale,
                      pc.has_ff != 0u ? ffv[pc.ff_off + i] : 1.0);
    float c = cs.x, s = cs.y;
    uint b = pc.x_off + h * pc.x_nb1 + t * pc.x_nb2;
    uint i0 = pc.mode == 2u ? b + i : b + 2u * i;
    uint i1 = pc.mode == 2u ? i0 + half_dims : i0 + 1u;
    float a = xv[i0], bb = xv[i1];
    xv[i0] = a * c - bb * s;
    xv[i1] = a * s + bb * c;
}
