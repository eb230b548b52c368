/* fastq.glsl — weight access for the fast paths (matvec_fast*, matmul_fast*,
 * matmul_coop), on devices with 16-bit and 8-bit storage (the host checks
 * before creating these pipelines). Binding 0 holds the weight tensor's bytes
 * and is declared five times with different element types, so each field is
 * read with a load of its own width: GGUF blocks are 18..210 bytes, always an
 * even number, so with an even row start every 16-bit field is 2-byte aligned
 * and no load straddles two words as in dequant.glsl.
 *
 * The includer defines the specialization constant TYPE (a sw_type id) and
 * the push constant pc.K. Addresses are byte offsets into the binding; a row
 * starts at `rb` (even; F32 rows at a multiple of 4; with the includer's
 * VEC_OK every row starts on 16 bytes, which F32 / F16 / BF16 and the 144- and
 * 176-byte Q4_K / Q5_K blocks turn into 16-byte loads).
 *
 *   fq8(rb, e, q0, q1, S, M)   elements e..e+7 (e % 8 == 0) of the row as
 *       w = S * q + M: q0/q1 hold elements e..e+3 / e+4..e+7 as the block's
 *       small integers (exactly representable in f16), S and M the scale and
 *       offset of the group (16 or 32 elements, FQ_GROUP) that holds them. For
 *       F32 / F16 / BF16, q is the weight itself (S = 1, M = 0), zero past K.
 *
 *   fq32(rb, c, e0, e1, w)   unit c of the row for the decode shader: 32
 *       weights, dequantized (f32), as two runs of 16 consecutive elements,
 *       w[0..3] = elements e0..e0+15 and w[4..7] = e1..e1+15, zero past K.
 *       A unit is 16 bytes of quants whose low and high nibbles (or 2-bit
 *       fields) are both used, so every loaded byte counts and one scale
 *       decode serves 16 weights: few load instructions per byte, which is
 *       what bounds a decode mat-vec on a GPU once the bytes stream.
 *
 * Formulas follow loader/quant.c and loader/quant_k.c (ggml's dequantize_row_*)
 * and compute the same products in the same order as dequant.glsl. */
#ifndef SW_FASTQ_GLSL
#define SW_FASTQ_GLSL

#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(binding = 0) readonly buffer WQ16 { uint16_t w16[]; };
layout(binding = 0) readonly buffer WQ8 { uint8_t w8[]; };
layout(binding = 0) readonly buffer WH16 { float16_t wh[]; };
layout(binding = 0) readonly buffer WF32 { float wf[]; };
layout(binding = 0) readonly buffer WV128 { uvec4 wv[]; };

const bool PLAIN = TYPE == T_F32 || TYPE == T_F16 || TYPE == T_BF16;
/* elements per scale group (matmul_fast.glsl applies S and M per group) */
const uint FQ_GROUP = (TYPE == T_Q2_K || TYPE == T_Q3_K || TYPE == T_Q6_K) ? 16u : 32u;
/* types whose groups have an offset (w = S q + M with M != 0) */
const bool FQ_HAS_MIN = TYPE == T_Q4_1 || TYPE == T_Q5_1 || TYPE == T_Q2_K ||
                        TYPE == T_Q4_K || TYPE == T_Q5_K;

uint ld8(uint a) { return uint(w8[a]); }
uint ld32(uint a) { return uint(w16[a >> 1]) | (uint(w16[(a >> 1) + 1u]) << 16); }
float ldh(uint a) { return float(wh[a >> 1]); }

SW_DEFINE_SCALE_MIN_K4(fq_scale_min_k4, ld8)

/* one element of a plain row, zero past K */
float fq_plain1(uint rb, uint e) {
    if (e >= pc.K) return 0.0;
    if (TYPE == T_F32) return wf[(rb >> 2) + e];
    if (TYPE == T_F16) return float(wh[(rb >> 1) + e]);
    return uintBitsToFloat(uint(w16[(rb >> 1) + e]) << 16); /* BF16 */
}

void fq_plain8(uint rb, uint e, out vec4 q0, out vec4 q1) {
    if (VEC_OK && e + 8u <= pc.K) { /* 16-byte loads: one or two per 8 elements */
        if (TYPE == T_F32) {
            uint a = (rb >> 4) + (e >> 2);
            q0 = uintBitsToFloat(wv[a]);
            q1 = uintBitsToFloat(wv[a + 1u]);
        } else {
            uvec4 v = wv[(rb >> 4) + (e >> 3)];
            if (TYPE == T_F16) {
                q0 = vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y));
                q1 = vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w));
            } else {
                q0 = uintBitsToFloat(uvec4(v.x << 16, v.x & 0xFFFF0000u, v.y << 16,
                                           v.y & 0xFFFF0000u));
                q1 = uintBitsToFloat(uvec4(v.z << 16, v.z & 0xFFFF0000u, v.w << 16,
                                           v.w & 0xFFFF0000u));
            }
        }
        return;
    }
    q0 = vec4(fq_plain1(rb, e), fq_plain1(rb, e + 1u), fq_plain1(rb, e + 2u),
              fq_plain1(rb, e + 3u));
    q1 = vec4(fq_plain1(rb, e + 4u), fq_plain1(rb, e + 5u), fq_plain1(rb, e + 6u),
              fq_plain1(rb, e + 7u));
}

void fq8(uint rb, uint e, out vec4 q0, out vec4 q1, out float S, out float M) {
    S = 1.0;
    M = 0.0;
    if (PLAIN) {
        fq_plain8(rb, e, q0, q1);
    } else if (TYPE == T_Q4_0) { /* d, qs[16]: elem i low nibble of qs[i%16] (i < 16) else high */
        uint i = e & 31u, b = rb + (e >> 5) * 18u, a = b + 2u + (i & 15u);
        uint sh = (i & 16u) != 0u ? 4u : 0u;
        q0 = u8x4((ld32(a) >> sh) & 0x0F0F0F0Fu) - 8.0;
        q1 = u8x4((ld32(a + 4u) >> sh) & 0x0F0F0F0Fu) - 8.0;
        S = ldh(b);
    } else if (TYPE == T_Q4_1) { /* d, m, qs[16] */
        uint i = e & 31u, b = rb + (e >> 5) * 20u, a = b + 4u + (i & 15u);
        uint sh = (i & 16u) != 0u ? 4u : 0u;
        q0 = u8x4((ld32(a) >> sh) & 0x0F0F0F0Fu);
        q1 = u8x4((ld32(a + 4u) >> sh) & 0x0F0F0F0Fu);
        S = ldh(b);
        M = ldh(b + 2u);
    } else if (TYPE == T_Q5_0) { /* d, qh (bit i = 5th bit of elem i), qs[16] */
        uint i = e & 31u, b = rb + (e >> 5) * 22u, a = b + 6u + (i & 15u);
        uint sh = (i & 16u) != 0u ? 4u : 0u, qh = ld32(b + 2u);
        q0 = u8x4((ld32(a) >> sh) & 0x0F0F0F0Fu) + 16.0 * bits4(qh, i) - 16.0;
        q1 = u8x4((ld32(a + 4u) >> sh) & 0x0F0F0F0Fu) + 16.0 * bits4(qh, i + 4u) - 16.0;
        S = ldh(b);
    } else if (TYPE == T_Q5_1) { /* d, m, qh, qs[16] */
        uint i = e & 31u, b = rb + (e >> 5) * 24u, a = b + 8u + (i & 15u);
        uint sh = (i & 16u) != 0u ? 4u : 0u, qh = ld32(b + 4u);
        q0 = u8x4((ld32(a) >> sh) & 0x0F0F0F0Fu) + 16.0 * bits4(qh, i);
        q1 = u8x4((ld32(a + 4u) >> sh) & 0x0F0F0F0Fu) + 16.0 * bits4(qh, i + 4u);
        S = ldh(b);
        M = ldh(b + 2u);
    } else if (TYPE == T_Q8_0) { /* d, qs[32] int8 */
        uint i = e & 31u, b = rb + (e >> 5) * 34u, a = b + 2u + i;
        q0 = i8x4(ld32(a));
        q1 = i8x4(ld32(a + 4u));
        S = ldh(b);
    } else if (TYPE == T_Q2_K) { /* scales[16], qs[64], d, dmin */
        uint i = e & 255u, b = rb + (e >> 8) * 84u;
        uint n = i >> 7, j = (i >> 5) & 3u, h = (i >> 4) & 1u, l = i & 15u;
        uint a = b + 16u + n * 32u + h * 16u + l, sc = ld8(b + (i >> 4));
        q0 = u8x4((ld32(a) >> (2u * j)) & 0x03030303u);
        q1 = u8x4((ld32(a + 4u) >> (2u * j)) & 0x03030303u);
        S = ldh(b + 80u) * float(sc & 0xFu);
        M = -(ldh(b + 82u) * float(sc >> 4));
    } else if (TYPE == T_Q3_K) { /* hmask[32], qs[64], scales[12], d */
        uint i = e & 255u, b = rb + (e >> 8) * 110u;
        uint n = i >> 7, j = (i >> 5) & 3u, h = (i >> 4) & 1u, l = i & 15u;
        uint a = b + 32u + n * 32u + h * 16u + l, m = b + h * 16u + l, hs = n * 4u + j;
        q0 = u8x4((ld32(a) >> (2u * j)) & 0x03030303u) +
             4.0 * u8x4((ld32(m) >> hs) & 0x01010101u) - 4.0;
        q1 = u8x4((ld32(a + 4u) >> (2u * j)) & 0x03030303u) +
             4.0 * u8x4((ld32(m + 4u) >> hs) & 0x01010101u) - 4.0;
        uint si = i >> 4;
        uint lo = si < 8u ? ld8(b + 96u + si) & 0xFu : ld8(b + 96u + si - 8u) >> 4;
        uint hi = (ld8(b + 104u + (si & 3u)) >> (2u * (si >> 2))) & 3u;
        S = ldh(b + 108u) * float(int(lo | (hi << 4)) - 32);
    } else if (TYPE == T_Q4_K) { /* d, dmin, scales[12], qs[128] */
        uint i = e & 255u, b = rb + (e >> 8) * 144u;
        uint a = b + 16u + (i >> 6) * 32u + (i & 31u), sh = (i & 32u) != 0u ? 4u : 0u;
        q0 = u8x4((ld32(a) >> sh) & 0x0F0F0F0Fu);
        q1 = u8x4((ld32(a + 4u) >> sh) & 0x0F0F0F0Fu);
        float sc, m;
        fq_scale_min_k4(b + 4u, i >> 5, sc, m);
        S = ldh(b) * sc;
        M = -(ldh(b + 2u) * m);
    } else if (TYPE == T_Q5_K) { /* d, dmin, scales[12], qh[32], qs[128] */
        uint i = e & 255u, b = rb + (e >> 8) * 176u, l = i & 31u;
        uint a = b + 48u + (i >> 6) * 32u + l, sh = (i & 32u) != 0u ? 4u : 0u;
        uint hb = i >> 5;
        q0 = u8x4((ld32(a) >> sh) & 0x0F0F0F0Fu) +
             16.0 * u8x4((ld32(b + 16u + l) >> hb) & 0x01010101u);
        q1 = u8x4((ld32(a + 4u) >> sh) & 0x0F0F0F0Fu) +
             16.0 * u8x4((ld32(b + 20u + l) >> hb) & 0x01010101u);
        float sc, m;
        fq_scale_min_k4(b + 4u, i >> 5, sc, m);
        S = ldh(b) * sc;
        M = -(ldh(b + 2u) * m);
    } else if (TYPE == T_Q6_K) { /* ql[128], qh[64], scales[16] int8, d */
        uint i = e & 255u, b = rb + (e >> 8) * 210u;
        uint n = i >> 7, k = (i >> 5) & 3u, l = i & 31u;
        uint a = b + n * 64u + (k & 1u) * 32u + l, h = b + 128u + n * 32u + l;
        uint sl = (k >> 1) * 4u, shh = 2u * k;
        uint w0 = ((ld32(a) >> sl) & 0x0F0F0F0Fu) | (((ld32(h) >> shh) & 0x03030303u) << 4);
        uint w1 = ((ld32(a + 4u) >> sl) & 0x0F0F0F0Fu) |
                  (((ld32(h + 4u) >> shh) & 0x03030303u) << 4);
        q0 = u8x4(w0) - 32.0;
        q1 = u8x4(w1) - 32.0;
        S = ldh(b + 208u) * float(bitfieldExtract(int(ld8(b + 192u + (i >> 4))), 0, 8));
    } else {
        q0 = vec4(0.0);
        q1 = vec4(0.0);
    }
}

/* 16 bytes at even address a */
uvec4 ld128(uint a) { return uvec4(ld32(a), ld32(a + 4u), ld32(a + 8u), ld32(a + 12u)); }
/* the same at an address that is a multiple of 16 when rows are (VEC_OK):
 * one 16-byte load instead of eight 16-bit ones */
uvec4 ld128a(uint a) { return VEC_OK ? wv[a >> 4] : ld128(a); }

/* w[o..o+3] = S * (q - Z) + M, q = the field (v >> sh) & mask of each byte of v,
 * plus 16 * hb where hb holds the fifth bits of the 16 elements (0/1 per byte) */
void fq_run(uvec4 v, uint sh, uint mask, uvec4 hb, float Z, float S, float M, inout vec4 w[8],
            uint o) {
    for (uint k = 0u; k < 4u; k++)
        w[o + k] = S * (u8x4((v[k] >> sh) & mask) + 16.0 * u8x4(hb[k]) - Z) + M;
}

/* bit b of each of the 32 bits of qh, for elements e..e+15 of a Q5_0/Q5_1
 * block (e = 0 or 16), one per byte */
uvec4 fq_qh16(uint qh, uint e) {
    uvec4 r;
    for (uint k = 0u; k < 4u; k++) {
        uint h = qh >> (e + 4u * k);
        r[k] = (h & 1u) | ((h & 2u) << 7) | ((h & 4u) << 14) | ((h & 8u) << 21);
    }
    return r;
}

/* 16 plain elements from e (zero past K) */
void fq_plain16(uint rb, uint e, inout vec4 w[8], uint o) {
    if (VEC_OK && e + 16u <= pc.K) {
        if (TYPE == T_F32) {
            for (uint k = 0u; k < 4u; k++) w[o + k] = uintBitsToFloat(wv[(rb >> 4) + (e >> 2) + k]);
        } else {
            for (uint h = 0u; h < 2u; h++) {
                uvec4 v = wv[(rb >> 4) + (e >> 3) + h];
                if (TYPE == T_F16) {
                    w[o + 2u * h] = vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y));
                    w[o + 2u * h + 1u] = vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w));
                } else {
                    w[o + 2u * h] = uintBitsToFloat(uvec4(v.x << 16, v.x & 0xFFFF0000u,
                                                          v.y << 16, v.y & 0xFFFF0000u));
                    w[o + 2u * h + 1u] = uintBitsToFloat(uvec4(v.z << 16, v.z & 0xFFFF0000u,
                                                               v.w << 16, v.w & 0xFFFF0000u));
                }
            }
        }
        return;
    }
    for (uint k = 0u; k < 4u; k++)
        w[o + k] = vec4(fq_plain1(rb, e + 4u * k), fq_plain1(rb, e + 4u * k + 1u),
                        fq_plain1(rb, e + 4u * k + 2u), fq_plain1(rb, e + 4u * k + 3u));
}

void fq32(uint rb, uint c, out uint e0, out uint e1, out vec4 w[8]) {
    const uvec4 z4 = uvec4(0u);
    e0 = c * 32u;
    e1 = e0 + 16u;
    if (PLAIN) {
        fq_plain16(rb, e0, w, 0u);
        fq_plain16(rb, e1, w, 4u);
    } else if (TYPE == T_Q4_0) { /* elements 0..15: low nibbles of qs[16], 16..31: high */
        uint b = rb + c * 18u;
        float d = ldh(b);
        uvec4 v = ld128(b + 2u);
        fq_run(v, 0u, 0x0F0F0F0Fu, z4, 8.0, d, 0.0, w, 0u);
        fq_run(v, 4u, 0x0F0F0F0Fu, z4, 8.0, d, 0.0, w, 4u);
    } else if (TYPE == T_Q4_1) { /* d, m, qs[16] */
        uint b = rb + c * 20u;
        float d = ldh(b), m = ldh(b + 2u);
        uvec4 v = ld128(b + 4u);
        fq_run(v, 0u, 0x0F0F0F0Fu, z4, 0.0, d, m, w, 0u);
        fq_run(v, 4u, 0x0F0F0F0Fu, z4, 0.0, d, m, w, 4u);
    } else if (TYPE == T_Q5_0) { /* d, qh, qs[16] */
        uint b = rb + c * 22u, qh = ld32(b + 2u);
        float d = ldh(b);
        uvec4 v = ld128(b + 6u);
        fq_run(v, 0u, 0x0F0F0F0Fu, fq_qh16(qh, 0u), 16.0, d, 0.0, w, 0u);
        fq_run(v, 4u, 0x0F0F0F0Fu, fq_qh16(qh, 16u), 16.0, d, 0.0, w, 4u);
    } else if (TYPE == T_Q5_1) { /* d, m, qh, qs[16] */
        uint b = rb + c * 24u, qh = ld32(b + 4u);
        float d = ldh(b), m = ldh(b + 2u);
        uvec4 v = ld128(b + 8u);
        fq_run(v, 0u, 0x0F0F0F0Fu, fq_qh16(qh, 0u), 0.0, d, m, w, 0u);
        fq_run(v, 4u, 0x0F0F0F0Fu, fq_qh16(qh, 16u), 0.0, d, m, w, 4u);
    } else if (TYPE == T_Q8_0) { /* d, qs[32] int8 */
        uint b = rb + c * 34u;
        float d = ldh(b);
        for (uint k = 0u; k < 8u; k++) w[k] = d * i8x4(ld32(b + 2u + 4u * k));
    } else if (TYPE == T_Q2_K) { /* scales[16], qs[64], d, dmin */
        /* unit r of the block: 16 bytes qs[n*32 + h*16 ..], fields j = 2p, 2p+1 */
        uint r = c & 7u, n = r >> 2, p = (r >> 1) & 1u, h = r & 1u;
        uint b = rb + (c >> 3) * 84u, j = 2u * p;
        e0 = (c >> 3) * 256u + n * 128u + j * 32u + h * 16u;
        e1 = e0 + 32u;
        float d = ldh(b + 80u), dm = ldh(b + 82u);
        uvec4 v = ld128(b + 16u + n * 32u + h * 16u);
        uint s0 = ld8(b + n * 8u + j * 2u + h), s1 = ld8(b + n * 8u + j * 2u + 2u + h);
        fq_run(v, 2u * j, 0x03030303u, z4, 0.0, d * float(s0 & 0xFu), -(dm * float(s0 >> 4)),
               w, 0u);
        fq_run(v, 2u * j + 2u, 0x03030303u, z4, 0.0, d * float(s1 & 0xFu),
               -(dm * float(s1 >> 4)), w, 4u);
    } else if (TYPE == T_Q3_K) { /* hmask[32], qs[64], scales[12], d */
        uint r = c & 7u, n = r >> 2, p = (r >> 1) & 1u, h = r & 1u;
        uint b = rb + (c >> 3) * 110u, j = 2u * p;
        e0 = (c >> 3) * 256u + n * 128u + j * 32u + h * 16u;
        e1 = e0 + 32u;
        float d = ldh(b + 108u);
        uvec4 v = ld128(b + 32u + n * 32u + h * 16u), hm = ld128(b + h * 16u);
        for (uint u = 0u; u < 2u; u++) {
            uint jj = j + u, si = n * 8u + jj * 2u + h;
            uint lo = si < 8u ? ld8(b + 96u + si) & 0xFu : ld8(b + 96u + si - 8u) >> 4;
            uint hi = (ld8(b + 104u + (si & 3u)) >> (2u * (si >> 2))) & 3u;
            float S = d * float(int(lo | (hi << 4)) - 32);
            /* q - 4 (1 - hm): (q + 4 hm) - 4, hm at bit n*4 + jj of each byte */
            for (uint k = 0u; k < 4u; k++)
                w[4u * u + k] = S * (u8x4((v[k] >> (2u * jj)) & 0x03030303u) +
                                     4.0 * u8x4((hm[k] >> (n * 4u + jj)) & 0x01010101u) -
                                     4.0);
        }
    } else if (TYPE == T_Q4_K || TYPE == T_Q5_K) { /* d, dmin, scales[12], [qh[32],] qs[128] */
        /* unit r: 16 bytes qs[g*32 + hh*16 ..]: low nibbles sub-block 2g, high 2g+1 */
        uint r = c & 7u, g = r >> 1, hh = r & 1u;
        uint b = rb + (c >> 3) * (TYPE == T_Q4_K ? 144u : 176u);
        e0 = (c >> 3) * 256u + g * 64u + hh * 16u;
        e1 = e0 + 32u;
        float d = ldh(b), dm = ldh(b + 2u);
        /* 144- and 176-byte blocks: 16-byte fields when rows start on 16 bytes */
        uvec4 v = ld128a(b + (TYPE == T_Q4_K ? 16u : 48u) + g * 32u + hh * 16u);
        uvec4 qh = TYPE == T_Q5_K ? ld128a(b + 16u + hh * 16u) : z4;
        for (uint u = 0u; u < 2u; u++) {
            float sc, m;
            fq_scale_min_k4(b + 4u, 2u * g + u, sc, m);
            uvec4 hb = TYPE == T_Q5_K ? (qh >> (2u * g + u)) & 0x01010101u : z4;
            fq_run(v, 4u * u, 0x0F0F0F0Fu, hb, 0.0, d * sc, -(dm * m), w, 4u * u);
        }
    } else if (TYPE == T_Q6_K) { /* ql[128], qh[64], scales[16] int8, d */
        /* unit r: 16 bytes ql[n*64 + kk*32 + hh*16 ..]: low nibbles k = kk, high
         * k = kk + 2; 2-bit fields 2k of qh[n*32 + hh*16 ..] */
        uint r = c & 7u, n = r >> 2, kk = (r >> 1) & 1u, hh = r & 1u;
        uint b = rb + (c >> 3) * 210u;
        e0 = (c >> 3) * 256u + n * 128u + kk * 32u + hh * 16u;
        e1 = e0 + 64u;
        float d = ldh(b + 208u);
        uvec4 v = ld128(b + n * 64u + kk * 32u + hh * 16u);
        uvec4 qh = ld128(b + 128u + n * 32u + hh * 16u);
        for (uint u = 0u; u < 2u; u++) {
            uint k = kk + 2u * u;
            float S = d * float(bitfieldExtract(int(ld8(b + 192u + n * 8u + k * 2u + hh)), 0, 8));
            for (uint i = 0u; i < 4u; i++)
                w[4u * u + i] = S * (u8x4(((v[i] >> (4u * u)) & 0x0F0F0F0Fu) |
                                             (((qh[i] >> (2u * k)) & 0x03030303u) << 4)) -
                                     32.0);
        }
    } else {
        for (uint k = 0u; k < 8u; k++) w[k] = vec4(0.0);
    }
}

#endif
