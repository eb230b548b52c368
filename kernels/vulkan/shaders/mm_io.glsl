/* mm_io.glsl — what every matmul shader (matvec*, matmul*) binds besides its
 * weights (binding 0, declared by the includer): activations x, bias, output,
 * and the push constants vk_ops.c's sw_vk_matmul fills. Define MM_X4 for a
 * vec4 view of x as well (16-byte loads when rows are aligned). */
#ifndef SW_MM_IO_GLSL
#define SW_MM_IO_GLSL

layout(binding = 1) readonly buffer X { float xv[]; };
#ifdef MM_X4
layout(binding = 1) readonly buffer X4 { vec4 xv4[]; };
#endif
layout(binding = 2) readonly buffer Bias { float bv[]; };
layout(binding = 3) buffer Out { float outv[]; };

layout(push_constant) uniform PC {
    uint w_off, w_nb1; /* bytes */
    uint K, N;
    uint x_off, x_nb1; /* floats */
    uint T;
    uint o_off, o_nb1; /* floats */
    uint b_off, has_bias;
} pc;

#endif
