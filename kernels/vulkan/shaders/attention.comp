#version 450
/* attention: paged, causal, GQA. One workgroup of 64 threads per (token,
 * head). Keys are visited in tiles of 64 positions: each thread scores one
 * position (q.k over head_dim), the tile's max and exp-sum update the running
 * softmax state (online softmax: earlier sums and outputs are rescaled by
 * exp(m_old - m_new)), then each thread accumulates its own output dims
 * d = tid, tid + 64, ... over the tile's values. Token t of sequence s attends
 * to positions 0..pos[t] of s (NON_CAUSAL: 0..the last position of s in the
 * batch; a sliding window keeps the last `window` of them), found through s's
 * block table. */
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint CACHE_F16 = 1u;
layout(constant_id = 1) const uint NON_CAUSAL = 0u; /* attend to the whole sequence so far */

#define MAX_HD 256u
#define PER_THREAD 4u /* MAX_HD / 64 */

layout(binding = 0) readonly buffer Q { float qv[]; };
layout(binding = 1) readonly buffer KC { uint kc[]; };
layout(binding = 2) readonly buffer VC { uint vc[]; };
layout(binding = 3) buffer Out { float outv[]; };
layout(binding = 4) readonly buffer SeqStart { int seq_start[]; };
layout(binding = 5) readonly buffer Pos { int posv[]; };
layout(binding = 6) readonly buffer BT { int bt[]; };

layout(push_constant) uniform PC {
    uint q_off, q_sh, q_st; /* floats: head and token strides */
    uint o_off, o_sh, o_st;
    uint kc_off, kc_nb1, kc_nb2, kc_nb3; /* cache elements */
    uint vc_off, vc_nb1, vc_nb2, vc_nb3;
    uint hd, n_head, n_head_kv, bs;
    uint n_seqs, bt_off, bt_nb1, ss_off, pos_off, T;
    float scale;
    uint window; /* sliding window in positions; 0 = the whole causal context */
} pc;

shared float qs[MAX_HD];
shared float ps[64];   /* scores, then probabilities, of the tile */
shared uint vbase[64]; /* cache element offset of each tile position's value row */
shared float red[64];

float kval(uint a) {
    if (CACHE_F16 != 0u) return unpackHalf2x16(kc[a >> 1])[a & 1u];
    return uintBitsToFloat(kc[a]);
}
float vval(uint a) {
    if (CACHE_F16 != 0u) return unpackHalf2x16(vc[a >> 1])[a & 1u];
    return uintBitsToFloat(vc[a]);
}

float reduce_max(uint tid, float v) {
    red[tid] = v;
    barrier();
    for (uint k = 32u; k > 0u; k >>= 1) {
        if (tid < k) red[tid] = max(red[tid], red[tid + k]);
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

float reduce_sum(uint tid, float v) {
    red[tid] = v;
    barrier();
    for (uint k = 32u; k > 0u; k >>= 1) {
        if (tid < k) red[tid] += red[tid + k];
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main() {
    uint g = group_id();
    if (g >= pc.T * pc.n_head) return;
    uint t = g / pc.n_head, h = g % pc.n_head, tid = gl_LocalInvocationID.x;
    uint kvh = h / (pc.n_head / pc.n_head_kv);
    /* the sequence of token t: the last s with seq_start[s] <= t */
    uint s = 0u;
    for (uint i = 1u; i < pc.n_seqs; i++)
        if (uint(seq_start[pc.ss_off + i]) <= t) s = i;
    /* causal: up to the token itself; non-causal: to the sequence's last
     * token in this batch */
    uint last = NON_CAUSAL != 0u ? uint(seq_start[pc.ss_off + s + 1u]) - 1u : t;
    uint ctx = uint(posv[pc.pos_off + last]) + 1u;
    /* keys [lo, ctx), cut to the window if any */
    uint lo = (pc.window > 0u && ctx > pc.window) ? ctx - pc.window : 0u;
    uint qb = pc.q_off + t * pc.q_st + h * pc.q_sh;
    for (uint d = tid; d < pc.hd; d += 64u) qs[d] = qv[qb + d] * pc.scale;
    barrier();

    float m = -1e30, l = 0.0;
    float acc[PER_THREAD];
    for (uint i = 0u; i < PER_THREAD; i++) acc[i] = 0.0;
    for (uint p0 = lo; p0 < ctx; p0 += 64u) {
        uint p = p0 + tid;
        float sc = -1e30;
        if (p < ctx) {
            uint blk = uint(bt[pc.bt_off + s * pc.bt_nb1 + p / pc.bs]), o = p % pc.bs;
            uint ka = pc.kc_off + kvh * pc.kc_nb1 + o * pc.kc_nb2 + blk * pc.kc_nb3;
            vbase[tid] = pc.vc_off + kvh * pc.vc_nb1 + o * pc.vc_nb2 + blk * pc.vc_nb3;
            sc = 0.0;
            for (uint d = 0u; d < pc.hd; d++) sc += qs[d] * kval(ka + d);
        }
        float m_new = max(m, reduce_max(tid, sc));
        float alpha = exp(m - m_new);
        float pj = p < ctx ? exp(sc - m_new) : 0.0;
        ps[tid] = pj;
        l = l * alpha + reduce_sum(tid, pj); /* reduce_sum's barriers publish ps, vbase */
        m = m_new;
        uint n = min(64u, ctx - p0);
        for (uint i = 0u; i < PER_THREAD; i++) {
            uint d = tid + 64u * i;
            if (d >= pc.hd) break;
            float a = acc[i] * alpha;
            for (uint j = 0u; j < n; j++) a += ps[j] * vval(vbase[j] + d);
            acc[i] = a;
        }
        barrier(); /* ps and vbase are rewritten by the next tile */
    }
    uint ob = pc.o_off + t * pc.o_st + h * pc.o_sh;
    for (uint i = 0u; i < PER_THREAD; i++) {
        uint d = tid + 64u * i;
        if (d < pc.hd) outv[ob + d] = acc[i] / l;
    }
}
