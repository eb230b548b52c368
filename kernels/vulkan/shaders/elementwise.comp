#version 450
/* elementwise: out = a + b (OP 0), silu(a) * b (OP 1, SwiGLU) or gelu(a)
 * (OP 2, the exact erf form; unary: b is not read, the host binds a there),
 * over [ne0, ne1, ne2, ne3] tensors with their own row strides. One thread per
 * element; out may alias a or b (each element is read before it is written
 * by the same thread). */
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0u;

layout(binding = 0) readonly buffer A { float av[]; };
layout(binding = 1) readonly buffer B { float bv[]; };
layout(binding = 2) buffer Out { float outv[]; };

layout(push_constant) uniform PC {
    uint a_off, a_nb1, a_nb2, a_nb3; /* floats */
    uint b_off, b_nb1, b_nb2, b_nb3;
    uint o_off, o_nb1, o_nb2, o_nb3;
    uint ne0, ne1, ne2, total;
} pc;

/* erf, Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7; GLSL has no erf) */
float erf_as(float x) {
    float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    float p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
              t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - p * exp(-x * x));
}

void main() {
    uint idx = group_id() * 256u + gl_LocalInvocationID.x;
    if (idx >= pc.total) return;
    uint i0 = idx % pc.ne0, r = idx / pc.ne0;
    uint i1 = r % pc.ne1, i23 = r / pc.ne1, i2 = i23 % pc.ne2, i3 = i23 / pc.ne2;
    float a = av[pc.a_off + i0 + i1 * pc.a_nb1 + i2 * pc.a_nb2 + i3 * pc.a_nb3];
    float y;
    if (OP == 2u) {
        y = 0.5 * a * (1.0 + erf_as(a * 0.70710678118654752));
    } else {
        float b = bv[pc.b_off + i0 + i1 * pc.b_nb1 + i2 * pc.b_nb2 + i3 * pc.b_nb3];
        /* silu(a) = a / (1 + e^-a); for a -> -inf the quotient goes to -0 */
        y = OP == 0u ? a + b : a / (1.0 + exp(-a)) * b;
    }
    outv[pc.o_off + i0 + i1 * pc.o_nb1 + i2 * pc.o_nb2 + i3 * pc.o_nb3] = y;
}
