/* cpu_pack.c — the CPU backend's packed weight layout: repacking at
 * upload_weight, the per-buffer table that says which byte ranges are packed,
 * and unpacking single rows (get_rows on a packed embedding table).
 *
 * Why: a matmul kernel that reads one weight row at a time must reduce every
 * (row, token) dot product horizontally and reloads each activation block once
 * per row. Interleaving 8 rows lets one 256-bit register hold the same
 * elements of 8 rows, so a broadcast activation is multiplied into 8 rows at
 * once, each lane accumulates its own row, and no horizontal sum is needed
 * (the kernels are in cpu_pack_avx2.c).
 *
 * Layout (rows [0, N8) with N8 = N - N % 8, in groups of 8; the N % 8 tail rows
 * stay plain where they were, so a packed tensor has exactly its plain size):
 *   F32:  group g = 8 rows as [K][8] floats: element k of row 8g + r at k * 8 + r.
 *   Q4_0: group g = K/32 units of 144 bytes, unit b = the 8 f16 scales of block b
 *         of rows 8g..8g+7, then 4 vectors of 32 bytes: vector j, lane r (4 bytes)
 *         = qs[4j .. 4j+3] of row 8g + r, so its low nibbles are elements
 *         4j..4j+3 and its high nibbles elements 16+4j..16+4j+3.
 *   Q8_0: as Q4_0 with 8 vectors: vector j, lane r = qs[4j .. 4j+3] of row 8g+r.
 * Only backends that run the AVX2 kernels pack (the scalar path reads plain
 * rows), and only 2-D tensors with at least 8 rows.
 *
 * A buffer keeps its packed ranges sorted by offset; a plain upload over a
 * range drops it from the table. Downloading a packed weight returns packed
 * bytes: weights are not meant to be read back. */
#include <inttypes.h>
#include <stdlib.h>

#include "cpu_internal.h"

bool sw_cpu_pack_type(sw_type t) {
    return t == SW_TYPE_F32 || t == SW_TYPE_Q4_0 || t == SW_TYPE_Q8_0;
}

/* Bytes of one packed unit (8 rows x one block) and of one block of a row. */
static size_t unit_bytes(sw_type t) {
    return t == SW_TYPE_Q4_0 ? 8 * sizeof(sw_block_q4_0) : 8 * sizeof(sw_block_q8_0);
}

static void pack_group(sw_type t, int64_t K, const uint8_t *src, size_t row_bytes, uint8_t *dst) {
    if (t == SW_TYPE_F32) {
        float *d = (float *)dst;
        for (int r = 0; r < 8; r++) {
            const float *s = (const float *)(src + (size_t)r * row_bytes);
            for (int64_t k = 0; k < K; k++)
                d[k * 8 + r] = s[k];
        }
        return;
    }
    size_t blk = t == SW_TYPE_Q4_0 ? sizeof(sw_block_q4_0) : sizeof(sw_block_q8_0);
    int nv = t == SW_TYPE_Q4_0 ? 4 : 8; /* 4-byte chunks of qs per row and block */
    for (int64_t b = 0; b < K / 32; b++) {
        uint8_t *u = dst + (size_t)b * unit_bytes(t);
        for (int r = 0; r < 8; r++) {
            const uint8_t *s = src + (size_t)r * row_bytes + (size_t)b * blk;
            memcpy(u + 2 * r, s, 2); /* d */
            for (int j = 0; j < nv; j++)
                memcpy(u + 16 + 32 * j + 4 * r, s + 2 + 4 * j, 4);
        }
    }
}

void sw_cpu_pack_unpack_row(const sw_cpu_packed *e, const uint8_t *base, int64_t r, uint8_t *dst) {
    const uint8_t *grp = base + (size_t)(r / 8) * 8 * e->row_bytes;
    int lane = (int)(r % 8);
    if (e->type == SW_TYPE_F32) {
        const float *g = (const float *)grp;
        float *d = (float *)dst;
        for (int64_t k = 0; k < e->K; k++)
            d[k] = g[k * 8 + lane];
        return;
    }
    size_t blk = e->type == SW_TYPE_Q4_0 ? sizeof(sw_block_q4_0) : sizeof(sw_block_q8_0);
    int nv = e->type == SW_TYPE_Q4_0 ? 4 : 8;
    for (int64_t b = 0; b < e->K / 32; b++) {
        const uint8_t *u = grp + (size_t)b * unit_bytes(e->type);
        uint8_t *d = dst + (size_t)b * blk;
        memcpy(d, u + 2 * lane, 2);
        for (int j = 0; j < nv; j++)
            memcpy(d + 2 + 4 * j, u + 16 + 32 * j + 4 * lane, 4);
    }
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
    bool pack = be->simd && sw_cpu_pack_type(dst->type) && dst->ne[2] == 1 && dst->ne[3] == 1 &&
                dst->ne[1] >= 8 &&
                (dst->type == SW_TYPE_F32 || dst->ne[0] % 32 == 0);
    if (!pack) {
        if (n) memcpy(out, src, n);
        return SW_OK;
    }
    sw_cpu_packed e = {.off = dst->offset,
                       .size = n,
                       .type = dst->type,
                       .K = dst->ne[0],
                       .N8 = rows - rows % 8,
                       .row_bytes = row_bytes};
    sw_status st = table_insert(buf, &e, err);
    if (st != SW_OK) return st;
    const uint8_t *s = src;
    for (int64_t g = 0; g < e.N8 / 8; g++)
        pack_group(e.type, e.K, s + (size_t)g * 8 * row_bytes, row_bytes,
                   out + (size_t)g * 8 * row_bytes);
    size_t tail = (size_t)e.N8 * row_bytes;
    memcpy(out + tail, s + tail, n - tail);
    return SW_OK;
}
