#version 450
/* elementwise, over [ne0, ne1, ne2, ne3] tensors with their own row strides:
 *   OP 0 add      out = a + b
 *   OP 1 swiglu   out = silu(a) * b
 *   OP 2 gelu     out = gelu(a), the exact erf form
 *   OP 3 geglu    out = gelu(a) * b  (tanh form, as a * sigmoid(2u))
 *   OP 4 scale    out = a * f
 *   OP 5 softcap  out = f * tanh(a / f)
 * The unary ops (2, 4, 5) never read b (the host binds a there). One thread per
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
    float f;
} pc;

/* erf, Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7; GLSL has no erf) */
float erf_as(float x) {
    float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    float p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
              t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - p * exp(-x * x));
}

/* x / (1 + e^-y), written so that e^-y = inf (y -> -inf) gives -0 / +0, the
 * right limit, rather than NaN */
float over_one_plus_exp(float x, float y) { return x / (1.0 + exp(-y)); }

void main() {
    uint idx = group_id() * 256u + gl_LocalInvocationID.x;
    if (idx >= pc.total) return;
    uint i0 = idx % pc.ne0, r = idx / pc.ne0;
    uint i1 = r % pc.ne1, i23 = r / pc.ne1, i2 = i23 % pc.ne2, i3 = i23 / pc.ne2;
    float a = av[pc.a_off + i0 + i1 * pc.a_nb1 + i2 * pc.a_nb2 + i3 * pc.a_nb3];
    float b = 0.0;
    if (OP == 0u || OP == 1u || OP == 3u)
        b = bv[pc.b_off + i0 + i1 * pc.b_nb1 + i2 * pc.b_nb2 + i3 * pc.b_nb3];
    float y;
    if (OP == 0u) {
        y = a + b;
    } else if (OP == 1u) {
        y = over_one_plus_exp(a, a) * b;
    } else if (OP == 2u) {
        y = 0.5 * a * (1.0 + erf_as(a * 0.70710678118654752));
    } else if (OP == 3u) {
        /* 2u = 2 sqrt(2/pi) (a + 0.044715 a^3) */
        float u2 = 1.5957691216057308 * (a + 0.044715 * a * a * a);
        y = over_one_plus_exp(a, u2) * b;
    } else if (OP == 4u) {
        y = a * pc.f;
    } else {
        /* tanh(t) = sign(t) (1 - 2 / (e^2|t| + 1)): exact limits for large |t|
         * (GLSL's tanh may be sinh / cosh, inf / inf there) */
        float t = a / pc.f;
        y = pc.f * sign(t) * (1.0 - 2.0 / (exp(2.0 * abs(t)) + 1.0));
    }
    outv[pc.o_off + i0 + i1 * pc.o_nb1 + i2 * pc.o_nb2 + i3 * pc.o_nb3] = y;
}
