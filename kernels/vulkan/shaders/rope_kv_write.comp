#version 450
/* rope_kv_write: rope, rope and kv_write in one dispatch. Per token, threads
 * take (a) a pair of q (n_head heads), rotated in place as rope.comp does it;
 * (b) a 32-bit word of a k head (two elements), whose rotated values (computed
 * from k, which is only read) go to the cache as kv_write.comp writes them;
 * (c) a word of v, copied to the cache. No thread reads what another writes.
 * Dims past n_dims go to the cache unrotated. A slot outside the cache is
 * skipped (as kv_write.comp). */
#include "common.glsl"
#include "rope.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint CACHE_F16 = 1u;

layout(binding = 0) buffer Q { float qv[]; };
layout(binding = 1) readonly buffer K { float kv_[]; };
layout(binding = 2) readonly buffer V { float vv[]; };
layout(binding = 3) readonly buffer Pos { int posv[]; };
layout(binding = 4) readonly buffer FF { float ffv[]; };
layout(binding = 5) buffer KC { uint kc[]; };
layout(binding = 6) buffer VC { uint vc[]; };
layout(binding = 7) readonly buffer Slots { int slots[]; };

layout(push_constant) uniform PC {
    uint q_off, q_nb1, q_nb2, k_off, k_nb1, k_nb2, v_off, v_nb1; /* floats */
    uint kc_off, kc_nb1, kc_nb2, kc_nb3;                         /* cache elements */
    uint vc_off, vc_nb1, vc_nb2, vc_nb3;
    uint pos_off, ff_off, has_ff, slots_off;
    uint n_head, nkv, hd, bs, cap, n_dims, mode, T, total;
    float freq_base, freq_scale;
} pc;

/* Element d of k head h of token t after rotation (rope.comp's arithmetic). */
float k_rotated(uint t, uint h, uint d) {
    uint b = pc.k_off + h * pc.k_nb1 + t * pc.k_nb2;
    if (d >= pc.n_dims) return kv_[b + d];
    uint half_dims = pc.n_dims / 2u;
    bool neox = pc.mode == 2u;
    uint i = neox ? d % half_dims : d / 2u;
    bool first = neox ? d < half_dims : (d & 1u) == 0u;
    uint i0 = neox ? b + i : b + 2u * i;
    uint i1 = neox ? i0 + half_dims : i0 + 1u;
    vec2 cs = rope_cs(posv[pc.pos_off + t], i, pc.n_dims, pc.freq_base, pc.freq_scale,
                      pc.has_ff != 0u ? ffv[pc.ff_off + i] : 1.0);
    float a = kv_[i0], bb = kv_[i1];
    return first ? a * cs.x - bb * cs.y : a * cs.y + bb * cs.x;
}

void main() {
    uint idx = group_id() * 256u + gl_LocalInvocationID.x;
    if (idx >= pc.total) return;
    uint half_dims = pc.n_dims / 2u, np = (pc.hd + 1u) / 2u;
    uint nq = pc.n_head * half_dims, nk = pc.nkv * np;
    uint per = nq + 2u * nk, t = idx / per, r = idx % per;
    if (r < nq) {
        uint i = r % half_dims, h = r / half_dims;
        vec2 cs = rope_cs(posv[pc.pos_off + t], i, pc.n_dims, pc.freq_base, pc.freq_scale,
                          pc.has_ff != 0u ? ffv[pc.ff_off + i] : 1.0);
        uint b = pc.q_off + h * pc.q_nb1 + t * pc.q_nb2;
        uint i0 = pc.mode == 2u ? b + i : b + 2u * i;
        uint i1 = pc.mode == 2u ? i0 + half_dims : i0 + 1u;
        float a = qv[i0], bb = qv[i1];
        qv[i0] = a * cs.x - bb * cs.y;
        qv[i1] = a * cs.y + bb * cs.x;
        return;
    }
    int slot = slots[pc.slots_off + t];
    if (slot < 0 || uint(slot) >= pc.cap) return;
    uint s = uint(slot);
    bool isv = r >= nq + nk;
    uint w = isv ? r - nq - nk : r - nq, h = w / np, d = 2u * (w % np);
    float e0, e1 = 0.0;
    if (isv) {
        uint vb = pc.v_off + t * pc.v_nb1 + h * pc.hd + d;
        e0 = vv[vb];
        if (d + 1u < pc.hd) e1 = vv[vb + 1u];
    } else {
        e0 = k_rotated(t, h, d);
        if (d + 1u < pc.hd) e1 = k_rotated(t, h, d + 1u);
    }
    if (isv) {
        uint vd = pc.vc_off + h * pc.vc_nb1 + (s % pc.bs) * pc.vc_nb2 + (s / pc.bs) * pc.vc_nb3 + d;
        if (CACHE_F16 != 0u) {
            vc[vd >> 1] = packHalf2x16(vec2(e0, e1));
        } else {
            vc[vd] = floatBitsToUint(e0);
            if (d + 1u < pc.hd) vc[vd + 1u] = floatBitsToUint(e1);
        }
    } else {
        uint kd = pc.kc_off + h * pc.kc_nb1 + (s % pc.bs) * pc.kc_nb2 + (s / pc.bs) * pc.kc_nb3 + d;
        if (CACHE_F16 != 0u) {
            kc[kd >> 1] = packHalf2x16(vec2(e0, e1));
        } else {
            kc[kd] = floatBitsToUint(e0);
            if (d + 1u < pc.hd) kc[kd + 1u] = floatBitsToUint(e1);
        }
    }
}
