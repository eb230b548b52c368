#version 450
/* get_rows: out[:, t] = dequantize(table[:, ids[t]]). One workgroup per token;
 * an id outside the table gives a row of zeros (the host cannot check ids that
 * live on the device without a round trip; the CPU backend reports them).
 * A table too large for one binding comes in pieces of rows: the bound piece
 * holds rows row0 .. row0 + n_rows - 1 of rows_total; ids of other pieces
 * are left to them, and invalid ids are zeroed by the piece at row0 = 0. */
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const uint TYPE = 0u;

layout(binding = 0) readonly buffer Table { uint tab[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) buffer Out { float outv[]; };

layout(push_constant) uniform PC {
    uint tab_off;  /* bytes */
    uint tab_nb1;  /* bytes per table row */
    uint n;        /* elements per row */
    uint n_rows;   /* rows in the table */
    uint ids_off;  /* elements */
    uint out_off;  /* floats */
    uint out_nb1;  /* floats per output row */
    uint T;
    uint row0;       /* first table row in this binding */
    uint rows_total; /* rows of the whole table */
} pc;

#define QBUF tab
#include "dequant.glsl"

void main() {
    uint t = group_id();
    if (t >= pc.T) return;
    int id = ids[pc.ids_off + t];
    uint ob = pc.out_off + t * pc.out_nb1;
    uint tid = gl_LocalInvocationID.x;
    if (id < 0 || uint(id) >= pc.rows_total) {
        if (pc.row0 == 0u)
            for (uint e = tid; e < pc.n; e += 64u) outv[ob + e] = 0.0;
        return;
    }
    if (uint(id) < pc.row0 || uint(id) - pc.row0 >= pc.n_rows) return;
    uint rb = pc.tab_off + (uint(id) - pc.row0) * pc.tab_nb1;
    if (TYPE == T_F32 || TYPE == T_F16 || TYPE == T_BF16) {
        for (uint e = tid; e < pc.n; e += 64u) outv[ob + e] = dq1(rb, e);
    } else {
        for (uint e = tid * 4u; e < pc.n; e += 256u) {
            vec4 v = dq4(rb, e);
            outv[ob + e] = v.x;
            outv[ob + e + 1u] = v.y;
            outv[ob + e + 2u] = v.z;
            outv[ob + e + 3u] = v.w;
        }
    }
}
