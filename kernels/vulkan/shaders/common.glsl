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

/* Four bytes of w as floats: unsigned, signed; bits b..b+3 of w as 0/1. */
vec4 u8x4(uint w) {
    return vec4(float(w & 0xFFu), float((w >> 8) & 0xFFu), float((w >> 16) & 0xFFu),
                float(w >> 24));
}
vec4 i8x4(uint w) {
    int x = int(w);
    return vec4(float(bitfieldExtract(x, 0, 8)), float(bitfieldExtract(x, 8, 8)),
                float(bitfieldExtract(x, 16, 8)), float(bitfieldExtract(x, 24, 8)));
}
vec4 bits4(uint w, uint b) {
    uint h = w >> b;
    return vec4(float(h & 1u), float((h >> 1) & 1u), float((h >> 2) & 1u), float((h >> 3) & 1u));
}

/* Q4_K / Q5_K: 6-bit scale and min j of the 12 packed bytes at s, read with
 * the byte reader RD8 of the includer (dequant.glsl, fastq.glsl). */
#define SW_DEFINE_SCALE_MIN_K4(NAME, RD8)                                                    \
    void NAME(uint s, uint j, out float sc, out float m) {                                   \
        if (j < 4u) {                                                                        \
            sc = float(RD8(s + j) & 63u);                                                    \
            m = float(RD8(s + j + 4u) & 63u);                                                \
        } else {                                                                             \
            sc = float((RD8(s + j + 4u) & 0xFu) | ((RD8(s + j - 4u) >> 6) << 4));           \
            m = float((RD8(s + j + 4u) >> 4) | ((RD8(s + j) >> 6) << 4));                    \
        }                                                                                    \
    }

#endif
