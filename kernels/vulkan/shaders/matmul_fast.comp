#version 450
/* matmul_fast with an f16 weight tile (quantized types and F16: their tile
 * values are exact in f16). Needs shaderFloat16 and 16/8-bit storage. */
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define WT float16_t
#define WVEC4 f16vec4
#include "matmul_fast.glsl"
