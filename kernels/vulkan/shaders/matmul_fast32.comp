#version 450
/* matmul_fast with an f32 weight tile, for F32 and BF16 weights (values f16
 * cannot hold exactly). Needs 16/8-bit storage. */
#define WT float
#define WVEC4 vec4
#include "matmul_fast.glsl"
