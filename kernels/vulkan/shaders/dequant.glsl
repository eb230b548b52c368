/* dequant.glsl — dequantization of GGUF blocks read as 32-bit words, so no
 * 8/16-bit storage feature is needed. The includer defines QBUF, the name of a
 * `uint[]` storage-buffer array holding the tensor's bytes, and the
 * specialization constant TYPE (a sw_type id). Addresses are byte offsets into
 * QBUF; a row starts at `rb`. Block layouts and formulas follow
 * loader/quant_k.c / ggml's dequantize_row_* exactly:
 *
 *   dq4(rb, e)  elements e..e+3 of the row (e % 4 == 0), any block type
 *   dq1(rb, e)  element e of a plain type (F32, F16, BF16), for ragged tails
 *
 * Blocks are 18..210 bytes, so fields are generally not word aligned: rd8 /
 * rd16 / rd32 assemble them from one or two words. */
#ifndef SW_DEQUANT_GLSL
#define SW_DEQUANT_GLSL

uint rd8(uint a) { return (QBUF[a >> 2] >> ((a & 3u) * 8u)) & 0xFFu; }
uint rd32(uint a) {
    uint s = (a & 3u) * 8u;
    uint w0 = QBUF[a >> 2];
    /* when misaligned the 4 bytes straddle two words, both inside the tensor */
    return s == 0u ? w0 : (w0 >> s) | (QBUF[(a >> 2) + 1u] << (32u - s));
}
uint rd16(uint a) {
    uint s = (a & 3u) * 8u;
    return s <= 16u ? (QBUF[a >> 2] >> s) & 0xFFFFu : (rd8(a) | (rd8(a + 1u) << 8));
}
float rdh(uint a) { return unpackHalf2x16(rd16(a)).x; }

SW_DEFINE_SCALE_MIN_K4(scale_min_k4, rd8)

vec4 dq4(uint rb, uint e) {
    if (TYPE == T_F32) {
        uint a = rb + e * 4u;
        return vec4(uintBitsToFloat(rd32(a)), uintBitsToFloat(rd32(a + 4u)),
                    uintBitsToFloat(rd32(a + 8u)), uintBitsToFloat(rd32(a + 12u)));
    } else if (TYPE == T_F16) {
        uint a = rb + e * 2u;
        return vec4(unpackHalf2x16(rd32(a)), unpackHalf2x16(rd32(a + 4u)));
    } else if (TYPE == T_BF16) {
        uint a = rb + e * 2u, w0 = rd32(a), w1 = rd32(a + 4u);
        return vec4(uintBitsToFloat(w0 << 16), uintBitsToFloat(w0 & 0xFFFF0000u),
                    uintBitsToFloat(w1 << 16), uintBitsToFloat(w1 & 0xFFFF0000u));
    } else if (TYPE == T_Q4_0) { /* d, qs[16]: elem i low nibble of qs[i%16] (i < 16) else high */
        uint i = e & 31u, b = rb + (e >> 5) * 18u;
        uint q = rd32(b + 2u + (i & 15u)) >> ((i & 16u) != 0u ? 4u : 0u);
        return rdh(b) * (u8x4(q & 0x0F0F0F0Fu) - 8.0);
    } else if (TYPE == T_Q4_1) { /* d, m, qs[16] */
        uint i = e & 31u, b = rb + (e >> 5) * 20u;
        uint q = rd32(b + 4u + (i & 15u)) >> ((i & 16u) != 0u ? 4u : 0u);
        return rdh(b) * u8x4(q & 0x0F0F0F0Fu) + rdh(b + 2u);
    } else if (TYPE == T_Q5_0) { /* d, qh (bit i = 5th bit of elem i), qs[16] */
        uint i = e & 31u, b = rb + (e >> 5) * 22u;
        uint q = rd32(b + 6u + (i & 15u)) >> ((i & 16u) != 0u ? 4u : 0u);
        vec4 v = u8x4(q & 0x0F0F0F0Fu) + 16.0 * bits4(rd32(b + 2u), i);
        return rdh(b) * (v - 16.0);
    } else if (TYPE == T_Q5_1) { /* d, m, qh, qs[16] */
        uint i = e & 31u, b = rb + (e >> 5) * 24u;
        uint q = rd32(b + 8u + (i & 15u)) >> ((i & 16u) != 0u ? 4u : 0u);
        vec4 v = u8x4(q & 0x0F0F0F0Fu) + 16.0 * bits4(rd32(b + 4u), i);
        return rdh(b) * v + rdh(b + 2u);
    } else if (TYPE == T_Q8_0) { /* d, qs[32] int8 */
        uint i = e & 31u, b = rb + (e >> 5) * 34u;
        return rdh(b) * i8x4(rd32(b + 2u + i));
    } else if (TYPE == T_Q2_K) { /* scales[16], qs[64], d, dmin */
        uint i = e & 255u, b = rb + (e >> 8) * 84u;
        uint n = i >> 7, j = (i >> 5) & 3u, h = (i >> 4) & 1u, l = i & 15u;
        uint sc = rd8(b + (i >> 4));
        uint q = (rd32(b + 16u + n * 32u + h * 16u + l) >> (2u * j)) & 0x03030303u;
        return rdh(b + 80u) * float(sc & 0xFu) * u8x4(q) - rdh(b + 82u) * float(sc >> 4);
    } else if (TYPE == T_Q3_K) { /* hmask[32], qs[64], scales[12], d */
        uint i = e & 255u, b = rb + (e >> 8) * 110u;
        uint n = i >> 7, j = (i >> 5) & 3u, h = (i >> 4) & 1u, l = i & 15u;
        uint q = (rd32(b + 32u + n * 32u + h * 16u + l) >> (2u * j)) & 0x03030303u;
        uint hm = (rd32(b + h * 16u + l) >> (n * 4u + j)) & 0x01010101u;
        uint si = i >> 4;
        uint lo = si < 8u ? rd8(b + 96u + si) & 0xFu : rd8(b + 96u + si - 8u) >> 4;
        uint hi = (rd8(b + 104u + (si & 3u)) >> (2u * (si >> 2))) & 3u;
        float sc = float(int(lo | (hi << 4)) - 32);
        return rdh(b + 108u) * sc * (u8x4(q) - 4.0 * (1.0 - u8x4(hm)));
    } else if (TYPE == T_Q4_K) { /* d, dmin, scales[12], qs[128] */
        uint i = e & 255u, b = rb + (e >> 8) * 144u;
        uint g = i >> 6, l = i & 31u;
        uint q = (rd32(b + 16u + g * 32u + l) >> ((i & 32u) != 0u ? 4u : 0u)) & 0x0F0F0F0Fu;
        float sc, m;
        scale_min_k4(b + 4u, i >> 5, sc, m);
        return rdh(b) * sc * u8x4(q) - rdh(b + 2u) * m;
    } else if (TYPE == T_Q5_K) { /* d, dmin, scales[12], qh[32], qs[128] */
        uint i = e & 255u, b = rb + (e >> 8) * 176u;
        uint g = i >> 6, l = i & 31u;
        uint q = (rd32(b + 48u + g * 32u + l) >> ((i & 32u) != 0u ? 4u : 0u)) & 0x0F0F0F0Fu;
        uint hb = (rd32(b + 16u + l) >> (i >> 5)) & 0x01010101u;
        float sc, m;
        scale_min_k4(b + 4u, i >> 5, sc, m);
        return rdh(b) * sc * (u8x4(q) + 16.0 * u8x4(hb)) - rdh(b + 2u) * m;
    } else if (TYPE == T_Q6_K) { /* ql[128], qh[64], scales[16] int8, d */
        uint i = e & 255u, b = rb + (e >> 8) * 210u;
        uint n = i >> 7, k = (i >> 5) & 3u, l = i & 31u;
        uint ql = (rd32(b + n * 64u + (k & 1u) * 32u + l) >> ((k >> 1) * 4u)) & 0x0F0F0F0Fu;
        uint qh = (rd32(b + 128u + n * 32u + l) >> (2u * k)) & 0x03030303u;
        float sc = float(bitfieldExtract(int(rd8(b + 192u + (i >> 4))), 0, 8));
        return rdh(b + 208u) * sc * (u8x4(ql | (qh << 4)) - 32.0);
    }
    return vec4(0.0);
}

float dq1(uint rb, uint e) {
    if (TYPE == T_F32) return uintBitsToFloat(rd32(rb + e * 4u));
    if (TYPE == T_F16) return rdh(rb + e * 2u);
    if (TYPE == T_BF16) return uintBitsToFloat(rd16(rb + e * 2u) << 16);
    return 0.0; /* block types never have ragged rows */
}

#endif
