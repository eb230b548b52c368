/* common.glsl — helpers every shader shares. Dispatches larger than the
 * per-dimension workgroup limit are split into a 2-D grid by the host
 * (sw_vk_grid); group_id() linearizes it again. */
#ifndef SW_COMMON_GLSL
#define SW_COMMON_GLSL

uint group_id() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

/* Type ids: ggml's numbering, as in loader/quant.h. */
#define T_F32 0u
#define T_F16 1u
#define T_Q4_0 2u
#define T_Q4_1 3u
#define T_Q5_0 6u
#define T_Q5_1 7u
#define T_Q8_0 8u
#define T_Q2_K 10u
#define T_Q3_K 11u
#define T_Q4_K 12u
#define T_Q5_K 13u
#define T_Q6_K 14u
#define T_BF16 30u

#endif
