#version 450
/* matvec with subgroupAdd: only for devices with subgroup arithmetic in
 * compute (the host checks before creating this pipeline). */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define USE_SUBGROUP 1
#include "matvec.glsl"
