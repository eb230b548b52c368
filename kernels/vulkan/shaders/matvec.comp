#version 450
/* matvec, shared-memory reduction: works on every device. */
#include "matvec.glsl"
