#version 450
/* matvec_fast, shared-memory reduction: devices with 16/8-bit storage and
 * shaderFloat16 but no subgroup arithmetic (or SW_VK_NO_SUBGROUP=1). */
#include "matvec_fast.glsl"
