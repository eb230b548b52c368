#version 450
/* kv_write: store k, v (F32 [head_dim * n_head_kv, T]) into the paged caches
 * [head_dim, n_head_kv, block_size, n_blocks] at slots[t]. One thread per pair
 * of elements, so an F16 cache is written a whole 32-bit word at a time
 * (packHalf2x16) and threads never share a word; the host checks that F16
 * rows are word aligned. A slot outside the cache is skipped (the host cannot
 * see device-side slots; the CPU backend reports them). */
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint CACHE_F16 = 1u;

layout(binding = 0) readonly buffer K { float kv_[]; };
layout(binding = 1) readonly buffer V { float vv[]; };
layout(binding = 2) buffer KC { uint kc[]; };
layout(binding = 3) buffer VC { uint vc[]; };
layout(binding = 4) readonly buffer Slots { int slots[]; };

layout(push_constant) uniform PC {
    uint k_off, k_nb1, v_off, v_nb1; /* floats */
    uint kc_off, kc_nb1, kc_nb2, kc_nb3; /* cache elements (halves or floats) */
    uint vc_off, vc_nb1, vc_nb2, vc_nb3;
    uint hd, nkv, bs, cap;
    uint slots_off, T, total;
} pc;

void main() {
    uint idx = group_id() * 256u + gl_LocalInvocationID.x;
    if (idx >= pc.total) return;
    uint np = (pc.hd + 1u) / 2u;
    uint j = idx % np, r = idx / np, h = r % pc.nkv, t = r / pc.nkv;
    int slot = slots[pc.slots_off + t];
    if (slot < 0 || uint(slot) >= pc.cap) return;
    uint s = uint(slot), d = 2u * j;
    uint kb = pc.k_off + t * pc.k_nb1 + h * pc.hd + d;
    uint vb = pc.v_off + t * pc.v_nb1 + h * pc.hd + d;
    uint kd = pc.kc_off + h * pc.kc_nb1 + (s % pc.bs) * pc.kc_nb2 + (s / pc.bs) * pc.kc_nb3 + d;
    uint vd = pc.vc_off + h * pc.vc_nb1 + (s % pc.bs) * pc.vc_nb2 + (s / pc.bs) * pc.vc_nb3 + d;
    if (CACHE_F16 != 0u) {
        kc[kd >> 1] = packHalf2x16(vec2(kv_[kb], kv_[kb + 1u]));
        vc[vd >> 1] = packHalf2x16(vec2(vv[vb], vv[vb + 1u]));
    } else {
        kc[kd] = floatBitsToUint(kv_[kb]);
        vc[vd] = floatBitsToUint(vv[vb]);
        if (d + 1u < pc.hd) {
            kc[kd + 1u] = floatBitsToUint(kv_[kb + 1u]);
            vc[vd + 1u] = floatBitsToUint(vv[vb + 1u]);
        }
    }
}
