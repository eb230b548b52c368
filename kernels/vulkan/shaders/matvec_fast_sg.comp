#version 450
/* matvec_fast with subgroupAdd: devices with 16/8-bit storage, shaderFloat16
 * and subgroup arithmetic in compute (the host checks both). */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define USE_SUBGROUP 1
#include "matvec_fast.glsl"
