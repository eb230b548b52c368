/* cpu_pack.c — the CPU backend's packed weight layout: repacking at
 * upload_weight, the per-buffer table that says which byte ranges are packed,
 * and unpacking single rows (get_rows on a packed embedding table).
 *
 * Why: a matmul kernel that reads one weight row at a time must reduce every
 * (row, token) dot product horizontally and reloads each activation block once
 * per row. Interleaving R rows lets one register hold the same elements of R
 * rows (R = 8 for a 256-bit register of 32-bit lanes, 16 for 512 bits), so a
 * broadcast activation is multiplied into R rows at once, each lane
 * accumulates its own row, and no horizontal sum is needed (the kernels are in
 * cpu_pack_avx2.c and cpu_pack_k_avx2.c for R = 8, cpu_pack_vnni.h for the
 * VNNI sets; the kernel set decides R, see cpu_kernels.c).
 *
 * Layout (rows [0, Np) with Np = N - N % R, in groups of R; the N % R tail
 * rows stay plain where they were, so a packed tensor has exactly its plain
 * size). Quantized types: group g = K / blck units, unit b = block b of rows
 * Rg..Rg+R-1 in R x (block bytes); a "vector" is 4R bytes whose lane r (4
 * bytes) belongs to row Rg + r; f16 fields are R x f16 (2R bytes), lane r =
 * row r. Offsets below are for R = 8; all of them scale with R.
 *   F32:  group g = R rows as [K][R] floats: element k of row Rg + r at k R + r.
 *   Q4_0: unit (144 bytes) = the 8 d, then 4 vectors: vector j, lane r = qs[4j ..
 *         4j+3] of row r, so its low nibbles are elements 4j..4j+3 and its high
 *         nibbles elements 16+4j..16+4j+3.
 *   Q4_1: unit (160 bytes) = the 8 d, the 8 m, then 4 vectors as Q4_0.
 *   Q5_0, Q5_1: as Q4_0, Q4_1 (176, 192 bytes), then one vector of 5th bits:
 *         lane r, byte k, bit j + 4h = the 5th bit of element 16h + 4j + k of
 *         row r (in GGUF: bit 16h + 4j + k of qh), so the low nibbles of
 *         vector j take bit j and its high nibbles bit 4 + j, each at a
 *         position the kernel knows at compile time.
 *   Q8_0: as Q4_0 with 8 vectors: vector j, lane r = qs[4j .. 4j+3] of row r.
 *   Q4_K: unit (1152 bytes) = the 8 d, the 8 dmin, 96 bytes of scales and mins
 *         (below), then 32 qs vectors: vector 8p + j, lane r = qs[32p + 4j ..
 *         32p + 4j + 3] of row r: low nibbles = elements 4j..4j+3 of group
 *         (32 elements, one scale and min) 2p, high nibbles the same of 2p + 1.
 *   Q5_K: as Q4_K, then 8 vectors of 5th bits: vector 2p + half, lane r, byte
 *         k, bit 2i + o = the 5th bit of element 16half + 4i + k of group 2p + o
 *         of row r (in GGUF: bit 2p + o of qh[16half + 4i + k]).
 *   Q6_K: unit (1680 bytes) = the 8 d; 8 x 16 bytes of scales: chunk g, bytes
 *         2r and 2r+1 = scales[2g] and scales[2g+1] (the two 16-element scales
 *         of group g) of row r; then for half h = 0, 1 and j = 0..7, 96 bytes
 *         = 3 vectors, lane r = ql[64h + 4j ..], ql[64h + 32 + 4j ..], qh[32h
 *         + 4j ..] (4 bytes each) of row r: the codes of elements 4j..4j+3 of
 *         groups 4h..4h+3 (low nibbles of the first vector, of the second,
 *         high nibbles of the first, of the second; bits 2i..2i+1 of qh for
 *         group 4h + i).
 * K-quant scales and mins (6 bits; sc/m[r][i] of row r, group i): three
 * vectors Ls, Lm, H with byte 4r + j (j = 0..3) of each
 *   Ls = low 4 bits of sc[r][j] | low 4 bits of sc[r][4+j] << 4,  Lm: same for m,
 *   H  = high 2 bits of sc[r][j], sc[r][4+j], m[r][j], m[r][4+j] at bits 0, 2, 4, 6,
 * which the kernel turns into byte vectors (lane r = sc[r][0..3], ...) with a
 * few masks and shifts: the same 96 bits per row as GGUF's 12 bytes, so
 * unpacking restores them exactly.
 * Only backends whose kernel set packs (pack_rows > 0) pack, and only 2-D
 * tensors with at least R rows.
 *
 * A buffer keeps its packed ranges sorted by offset; a plain upload over a
 * range drops it from the table. Downloading a packed weight returns packed
 * bytes: weights are not meant to be read back. */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>

#include "cpu_internal.h"

/* ---- one block of one row <-> lane r of an R-row unit ----
 * Each lane_* function maps the bytes of a plain block (blk) to their places
 * in unit u, copying one way or the other: the same code packs and unpacks,
 * so the two cannot disagree. R is the rows per group; a vector is 4R bytes. */

static void mv(uint8_t *u, uint8_t *blk, size_t n, bool pack) {
    if (pack)
        memcpy(u, blk, n);
    else
        memcpy(blk, u, n);
}

/* n 4-byte chunks of blk, chunk j to lane r of vector j (4R bytes apart) */
static void mv_vectors(uint8_t *u, uint8_t *blk, int n, int r, int R, bool pack) {
    for (int j = 0; j < n; j++)
        mv(u + 4 * R * j + 4 * r, blk + 4 * j, 4, pack);
}

/* GGUF's qh (bit e = the 5th bit of element e) <-> the 4 bytes of one lane
 * of the 5th-bit vector: byte k, bit j + 4h <-> bit 16h + 4j + k. */
static void lane_b32_qh(uint8_t *v, uint8_t *qh, bool pack) {
    if (pack)
        memset(v, 0, 4);
    else
        memset(qh, 0, 4);
    for (int k = 0; k < 4; k++)
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 4; j++) {
                int vb = j + 4 * h, e = 16 * h + 4 * j + k;
                if (pack)
                    v[k] = (uint8_t)(v[k] | ((qh[e / 8] >> (e % 8)) & 1) << vb);
                else
                    qh[e / 8] = (uint8_t)(qh[e / 8] | ((v[k] >> vb) & 1) << (e % 8));
            }
}

/* The 32-element types: d (and m) as R x f16 each, nq qs vectors, and for
 * the 5-bit types (qh not NULL) the 5th-bit vector. */
static void lane_b32(uint8_t *u, uint8_t *d, uint8_t *m, uint8_t *qh, uint8_t *qs, int nq, int r,
                     int R, bool pack) {
    int f = (m ? 4 : 2) * R; /* bytes of f16 fields */
    mv(u + 2 * r, d, 2, pack);
    if (m) mv(u + 2 * R + 2 * r, m, 2, pack);
    mv_vectors(u + f, qs, nq, r, R, pack);
    if (qh) lane_b32_qh(u + f + 4 * R * nq + 4 * r, qh, pack);
}

#define FIELD(BT, blk, f) ((blk) + offsetof(BT, f))

static void lane_q4_0(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_b32(u, FIELD(sw_block_q4_0, blk, d), NULL, NULL, FIELD(sw_block_q4_0, blk, qs), 4, r, R,
             pack);
}

static void lane_q4_1(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_b32(u, FIELD(sw_block_q4_1, blk, d), FIELD(sw_block_q4_1, blk, m), NULL,
             FIELD(sw_block_q4_1, blk, qs), 4, r, R, pack);
}

static void lane_q5_0(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_b32(u, FIELD(sw_block_q5_0, blk, d), NULL, FIELD(sw_block_q5_0, blk, qh),
             FIELD(sw_block_q5_0, blk, qs), 4, r, R, pack);
}

static void lane_q5_1(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_b32(u, FIELD(sw_block_q5_1, blk, d), FIELD(sw_block_q5_1, blk, m),
             FIELD(sw_block_q5_1, blk, qh), FIELD(sw_block_q5_1, blk, qs), 4, r, R, pack);
}

static void lane_q8_0(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_b32(u, FIELD(sw_block_q8_0, blk, d), NULL, NULL, FIELD(sw_block_q8_0, blk, qs), 8, r, R,
             pack);
}

/* GGUF's 12 scale bytes q of Q4_K/Q5_K <-> lane r of Ls, Lm, H (at u). In q,
 * sc[j] = q[j] & 63 and m[j] = q[4+j] & 63 for j < 4; sc[4+j] = low nibble
 * of q[8+j] | (q[j] >> 6) << 4, m[4+j] = high nibble of q[8+j] | (q[4+j] >>
 * 6) << 4. */
static void lane_k4_scales(uint8_t *u, uint8_t *q, int r, int R, bool pack) {
    uint8_t *ls = u + 4 * r, *lm = u + 4 * R + 4 * r, *hb = u + 8 * R + 4 * r;
    for (int j = 0; j < 4; j++) {
        unsigned s0, s1, m0, m1; /* sc[j], sc[4+j], m[j], m[4+j] */
        if (pack) {
            s0 = q[j] & 63u;
            m0 = q[4 + j] & 63u;
            s1 = (q[8 + j] & 15u) | (unsigned)(q[j] >> 6) << 4;
            m1 = (unsigned)(q[8 + j] >> 4) | (unsigned)(q[4 + j] >> 6) << 4;
            ls[j] = (uint8_t)((s0 & 15u) | (s1 & 15u) << 4);
            lm[j] = (uint8_t)((m0 & 15u) | (m1 & 15u) << 4);
            hb[j] = (uint8_t)((s0 >> 4) | (s1 >> 4) << 2 | (m0 >> 4) << 4 | (m1 >> 4) << 6);
        } else {
            s0 = (ls[j] & 15u) | (hb[j] & 3u) << 4;
            s1 = (unsigned)(ls[j] >> 4) | ((hb[j] >> 2) & 3u) << 4;
            m0 = (lm[j] & 15u) | ((hb[j] >> 4) & 3u) << 4;
            m1 = (unsigned)(lm[j] >> 4) | ((hb[j] >> 6) & 3u) << 4;
            q[j] = (uint8_t)(s0 | (s1 >> 4) << 6);
            q[4 + j] = (uint8_t)(m0 | (m1 >> 4) << 6);
            q[8 + j] = (uint8_t)((s1 & 15u) | (m1 & 15u) << 4);
        }
    }
}

/* Q4_K and Q5_K share d, dmin, scales and qs at the same unit offsets */
static void lane_k4_common(uint8_t *u, uint8_t *d, uint8_t *dmin, uint8_t *sc, uint8_t *qs, int r,
                           int R, bool pack) {
    mv(u + 2 * r, d, 2, pack);
    mv(u + 2 * R + 2 * r, dmin, 2, pack);
    lane_k4_scales(u + R * SW_PK_K4_SCALES, sc, r, R, pack);
    for (int p = 0; p < 4; p++)
        mv_vectors(u + R * SW_PK_K4_QS + 32 * R * p, qs + 32 * p, 8, r, R, pack);
}

static void lane_q4_K(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_k4_common(u, blk + offsetof(sw_block_q4_K, d), blk + offsetof(sw_block_q4_K, dmin),
                   blk + offsetof(sw_block_q4_K, scales), blk + offsetof(sw_block_q4_K, qs), r, R,
                   pack);
}

/* Q5_K's 5th bits: qh[l] bit g is element l of group g. Packed vector (p,
 * half) at u + 8Rp + 4R half, lane r, byte k, bit 2i + odd <-> bit 2p + odd
 * of qh[16half + 4i + k]: one vector holds the bits of a pair of groups'
 * half, each at a bit position the kernel knows at compile time. */
static void lane_q5_K_qh(uint8_t *u, uint8_t *qh, int r, int R, bool pack) {
    if (!pack) memset(qh, 0, SW_QK_K / 8);
    for (int p = 0; p < 4; p++)
        for (int half = 0; half < 2; half++)
            for (int k = 0; k < 4; k++) {
                uint8_t *v = u + 8 * R * p + 4 * R * half + 4 * r + k;
                if (pack) *v = 0;
                for (int i = 0; i < 4; i++)
                    for (int odd = 0; odd < 2; odd++) {
                        uint8_t *q = qh + 16 * half + 4 * i + k;
                        int vb = 2 * i + odd, qb = 2 * p + odd;
                        if (pack)
                            *v = (uint8_t)(*v | ((*q >> qb) & 1) << vb);
                        else
                            *q = (uint8_t)(*q | ((*v >> vb) & 1) << qb);
                    }
            }
}

static void lane_q5_K(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    lane_k4_common(u, blk + offsetof(sw_block_q5_K, d), blk + offsetof(sw_block_q5_K, dmin),
                   blk + offsetof(sw_block_q5_K, scales), blk + offsetof(sw_block_q5_K, qs), r, R,
                   pack);
    lane_q5_K_qh(u + R * SW_PK_Q5K_QH, blk + offsetof(sw_block_q5_K, qh), r, R, pack);
}

static void lane_q6_K(uint8_t *u, uint8_t *blk, int r, int R, bool pack) {
    uint8_t *ql = blk + offsetof(sw_block_q6_K, ql), *qh = blk + offsetof(sw_block_q6_K, qh);
    mv(u + 2 * r, blk + offsetof(sw_block_q6_K, d), 2, pack);
    for (int g = 0; g < 8; g++)
        mv(u + R * SW_PK_Q6K_SCALES + 2 * R * g + 2 * r,
           blk + offsetof(sw_block_q6_K, scales) + 2 * g, 2, pack);
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 8; j++) {
            uint8_t *v = u + R * SW_PK_Q6K_Q + 12 * R * (8 * h + j) + 4 * r;
            mv(v, ql + 64 * h + 4 * j, 4, pack);
            mv(v + 4 * R, ql + 64 * h + 32 + 4 * j, 4, pack);
            mv(v + 8 * R, qh + 32 * h + 4 * j, 4, pack);
        }
}

typedef void (*lane_fn)(uint8_t *u, uint8_t *blk, int r, int R, bool pack);

/* The packed types: the one list of them, with the layout (lane function) of
 * each; the kernel sets say which kernel runs each (cpu_kernels.c). */
typedef struct {
    sw_type type;
    lane_fn lane; /* NULL for F32: xfer_group moves single floats */
} pack_desc;

static const pack_desc k_packed[] = {
    {SW_TYPE_F32, NULL},           {SW_TYPE_Q4_0, lane_q4_0}, {SW_TYPE_Q4_1, lane_q4_1},
    {SW_TYPE_Q5_0, lane_q5_0},     {SW_TYPE_Q5_1, lane_q5_1}, {SW_TYPE_Q8_0, lane_q8_0},
    {SW_TYPE_Q4_K, lane_q4_K},     {SW_TYPE_Q5_K, lane_q5_K}, {SW_TYPE_Q6_K, lane_q6_K},
};

static const pack_desc *desc_of(sw_type t) {
    for (size_t i = 0; i < sizeof k_packed / sizeof k_packed[0]; i++)
        if (k_packed[i].type == t) return &k_packed[i];
    return NULL;
}

bool sw_cpu_pack_type(sw_type t) {
    return desc_of(t) != NULL;
}

/* Rows Rg..Rg+R-1 (plain, row_bytes apart, at rows) <-> group g (at grp);
 * for unpacking, rows may be one row (lanes = that row's lane only). */
static void xfer_group(sw_type t, int64_t K, int R, uint8_t *grp, uint8_t *rows, size_t row_bytes,
                       int lane0, int nlanes, bool pack) {
    if (t == SW_TYPE_F32) {
        float *g = (float *)grp;
        for (int r = lane0; r < lane0 + nlanes; r++) {
            float *s = (float *)(rows + (size_t)(r - lane0) * row_bytes);
            for (int64_t k = 0; k < K; k++) {
                if (pack)
                    g[k * R + r] = s[k];
                else
                    s[k] = g[k * R + r];
            }
        }
        return;
    }
    const sw_type_traits *tr = sw_type_get((uint32_t)t);
    lane_fn lane = desc_of(t)->lane;
    size_t blk = tr->type_size;
    for (int64_t b = 0; b < K / tr->blck_size; b++)
        for (int r = lane0; r < lane0 + nlanes; r++)
            lane(grp + (size_t)b * (size_t)R * blk,
                 rows + (size_t)(r - lane0) * row_bytes + (size_t)b * blk, r, R, pack);
}

void sw_cpu_pack_unpack_row(const sw_cpu_packed *e, const uint8_t *base, int64_t r, uint8_t *dst) {
    /* the group is only read: pack = false never writes through it */
    uint8_t *grp = (uint8_t *)(uintptr_t)(base + (size_t)(r / e->R) * (size_t)e->R * e->row_bytes);
    xfer_group(e->type, e->K, e->R, grp, dst, e->row_bytes, (int)(r % e->R), 1, false);
}

const sw_cpu_packed *sw_cpu_pack_find(const sw_buffer *buf, size_t off) {
    int lo = 0, hi = buf->n_packed; /* first entry with e.off > off, minus one */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (buf->packed[mid].off <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return NULL;
    const sw_cpu_packed *e = &buf->packed[lo - 1];
    return off < e->off + e->size ? e : NULL;
}

void sw_cpu_pack_forget(sw_buffer *buf, size_t off, size_t n) {
    int w = 0;
    for (int i = 0; i < buf->n_packed; i++) {
        const sw_cpu_packed *e = &buf->packed[i];
        bool overlap = n && e->off < off + n && off < e->off + e->size;
        if (!overlap) buf->packed[w++] = *e;
    }
    buf->n_packed = w;
}

static sw_status table_insert(sw_buffer *buf, const sw_cpu_packed *e, sw_err *err) {
    if (buf->n_packed == buf->cap_packed) {
        int cap = buf->cap_packed ? 2 * buf->cap_packed : 16;
        sw_cpu_packed *p = realloc(buf->packed, (size_t)cap * sizeof *p);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "cpu upload_weight: out of memory");
        buf->packed = p;
        buf->cap_packed = cap;
    }
    int i = buf->n_packed;
    while (i > 0 && buf->packed[i - 1].off > e->off) {
        buf->packed[i] = buf->packed[i - 1];
        i--;
    }
    buf->packed[i] = *e;
    buf->n_packed++;
    return SW_OK;
}

sw_status sw_cpu_upload_weight(sw_backend *b, const sw_tensor *dst, const void *src, sw_err *err) {
    sw_cpu_backend *be = (sw_cpu_backend *)b;
    sw_buffer *buf = dst->buf;
    size_t n = sw_tensor_nbytes(dst), row_bytes = sw_row_size(dst->type, dst->ne[0]);
    int64_t rows = dst->ne[1] * dst->ne[2] * dst->ne[3];
    if (row_bytes * (size_t)rows != n || dst->nb[1] != row_bytes)
        return sw_err_set(err, SW_E_INVALID_ARG, "upload_weight: dst is not contiguous");
    if (dst->offset > buf->size || n > buf->size - dst->offset)
        return sw_err_set(err, SW_E_RANGE,
                          "cpu upload_weight: bytes [%zu, %zu + %zu) outside a buffer of %zu",
                          dst->offset, dst->offset, n, buf->size);
    sw_cpu_pack_forget(buf, dst->offset, n);
    uint8_t *out = (uint8_t *)buf->data + dst->offset;
    /* K-quants: K % 256 == 0 already holds (row_bytes would be 0 otherwise) */
    int R = be->k->pack_rows;
    bool pack = R > 0 && be->k->pack(dst->type) && sw_cpu_pack_type(dst->type) &&
                dst->ne[2] == 1 && dst->ne[3] == 1 && dst->ne[1] >= R &&
                dst->ne[0] % sw_type_get((uint32_t)dst->type)->blck_size == 0;
    if (!pack) {
        if (n) memcpy(out, src, n);
        return SW_OK;
    }
    sw_cpu_packed e = {.off = dst->offset,
                       .size = n,
                       .type = dst->type,
                       .K = dst->ne[0],
                       .Np = rows - rows % R,
                       .R = R,
                       .row_bytes = row_bytes};
    sw_status st = table_insert(buf, &e, err);
    if (st != SW_OK) return st;
    /* the source rows are only read: pack = true never writes through them */
    uint8_t *s = (uint8_t *)(uintptr_t)src;
    for (int64_t g = 0; g < e.Np / R; g++) {
        size_t o = (size_t)g * (size_t)R * row_bytes;
        xfer_group(e.type, e.K, R, out + o, s + o, row_bytes, 0, R, true);
    }
    size_t tail = (size_t)e.Np * row_bytes;
    memcpy(out + tail, s + tail, n - tail);
    return SW_OK;
}
