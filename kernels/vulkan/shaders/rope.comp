#version 450
/* rope: rotate pairs of x [head_dim, n_heads, T] in place by
 * theta_i = pos[t] * freq_scale * base^(-2i/n_dims) / ff[i]; mode 0 rotates
 * adjacent pairs (2i, 2i+1), mode 2 (NeoX) pairs (i, i + n_dims/2). One thread
 * per pair. theta is reduced mod 2*pi with a two-constant Cody-Waite step
 * before cos/sin, whose accuracy on GPUs is only specified near zero. */
#include "common.glsl"

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
    float inv_freq = pc.freq_scale * pow(pc.freq_base, -2.0 * float(i) / float(pc.n_dims));
    if (pc.has_ff != 0u) inv_freq /= ffv[pc.ff_off + i];
    float theta = float(posv[pc.pos_off + t]) * inv_freq;
    float k = round(theta * 0.15915494309189535);
    theta = fma(-k, 6.28318548202514648, theta);
    theta = fma(-k, -1.7484555314695172e-7, theta);
    float c = cos(theta), s = sin(theta);
    uint b = pc.x_off + h * pc.x_nb1 + t * pc.x_nb2;
    uint i0 = pc.mode == 2u ? b + i : b + 2u * i;
    uint i1 = pc.mode == 2u ? i0 + half_dims : i0 + 1u;
    float a = xv[i0], bb = xv[i1];
    xv[i0] = a * c - bb * s;
    xv[i1] = a * s + bb * c;
}
