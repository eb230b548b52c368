/* gguf.c — GGUF v2/v3 reader: maps the file, validates every field against the
 * remaining bytes and against overflow before it is used, and indexes metadata
 * and tensor infos. Accessors live here too; the writer is in gguf_write.c.
 *
 * Layout of a GGUF file (little-endian):
 *   magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 vtype, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to general.alignment, tensor data.
 * A string is a u64 length followed by that many bytes (no NUL). An array value
 * is a u32 element vtype, a u64 count and the packed elements. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* One metadata pair. Values are not copied (except strings, to give callers a
 * NUL-terminated pointer): off is where the payload starts in the file. */
typedef struct gguf_kv {
    char *key;         /* NUL-terminated copy (cut at an embedded NUL, if any) */
    uint64_t key_len;  /* the key's full length in the file */
    uint64_t key_at;   /* file offset of the key's bytes */
    uint32_t type;     /* sw_gguf_vtype */
    uint32_t arr_type; /* element vtype for arrays, else SW_GGUF_VTYPE_COUNT */
    uint64_t n;        /* array element count (1 for scalars) */
    uint64_t off;      /* scalar: value bytes; string: chars; array: first element */
    uint64_t len;      /* string length (STRING only) */
    char *str;         /* NUL-terminated copy (STRING only) */
    uint64_t *str_off; /* string arrays: file offset of each element's u64 length */
    uint64_t enc_begin, enc_end; /* file range of type + value, to compare repeats */
} gguf_kv;

struct sw_gguf {
    char *path;
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when we own a mapping of map_len bytes */
    size_t map_len;
    unsigned flags; /* SW_GGUF_* open flags */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    gguf_kv *kvs;
    int64_t n_tensors;
    sw_gguf_tensor *tensors;
    /* open-addressing hash tables of indices (-1 = empty), capacity a power of two;
     * they make duplicate detection and lookups O(1) even for hostile counts. */
    int64_t *kv_hash;
    uint64_t kv_cap;
    int64_t *t_hash;
    uint64_t t_cap;
};

uint64_t sw_gguf_vtype_size(uint32_t t) {
    switch (t) {
    case SW_GGUF_UINT8:
    case SW_GGUF_INT8:
    case SW_GGUF_BOOL: return 1;
    case SW_GGUF_UINT16:
    case SW_GGUF_INT16: return 2;
    case SW_GGUF_UINT32:
    case SW_GGUF_INT32:
    case SW_GGUF_FLOAT32: return 4;
    case SW_GGUF_UINT64:
    case SW_GGUF_INT64:
    case SW_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *sw_gguf_vtype_name(sw_gguf_vtype t) {
    static const char *const names[SW_GGUF_VTYPE_COUNT] = {
        "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    if ((unsigned)t >= SW_GGUF_VTYPE_COUNT) return "unknown";
    return names[t];
}

/* Limits llama.cpp's reader enforces (ggml/src/gguf.cpp, GGML_MAX_NAME): the
 * reader accepts and refuses what llama.cpp does, so a file that works here
 * works there and the other way round. */
#define GGUF_MAX_STRING_LEN (1ull << 30)
#define GGUF_MAX_ARRAY_LEN (1ull << 30)
#define GGUF_MAX_NAME 64 /* tensor names: at most 63 bytes */

/* ---- little-endian loads (byte-wise: the mapping gives no alignment) ---- */

static uint16_t ld_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t ld_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t ld_u64(const uint8_t *p) { return (uint64_t)ld_u32(p) | ((uint64_t)ld_u32(p + 4) << 32); }

/* A decoded numeric value. kind: 0 unsigned (and bool), 1 signed, 2 float. */
typedef struct num {
    int kind;
    uint64_t u;
    int64_t i;
    double f;
} num;

static bool load_num(uint32_t type, const uint8_t *p, num *o) {
    memset(o, 0, sizeof *o);
    switch (type) {
    case SW_GGUF_UINT8:
    case SW_GGUF_BOOL: o->u = p[0]; return true;
    case SW_GGUF_UINT16: o->u = ld_u16(p); return true;
    case SW_GGUF_UINT32: o->u = ld_u32(p); return true;
    case SW_GGUF_UINT64: o->u = ld_u64(p); return true;
    case SW_GGUF_INT8: o->kind = 1; o->i = (int8_t)p[0]; return true;
    case SW_GGUF_INT16: o->kind = 1; o->i = (int16_t)ld_u16(p); return true;
    case SW_GGUF_INT32: o->kind = 1; o->i = (int32_t)ld_u32(p); return true;
    case SW_GGUF_INT64: o->kind = 1; o->i = (int64_t)ld_u64(p); return true;
    case SW_GGUF_FLOAT32: {
        uint32_t b = ld_u32(p);
        float f;
        memcpy(&f, &b, 4);
        o->kind = 2;
        o->f = f;
        return true;
    }
    case SW_GGUF_FLOAT64: {
        uint64_t b = ld_u64(p);
        memcpy(&o->f, &b, 8);
        o->kind = 2;
        return true;
    }
    default: return false;
    }
}

/* ---- hash tables ---- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static sw_status hash_init(int64_t **tab, uint64_t *cap, int64_t n) {
    uint64_t c = 8;
    while (c < (uint64_t)n * 2) c <<= 1; /* n is bounded by the file size, cannot overflow */
    *tab = malloc(c * sizeof **tab);
    if (!*tab) return SW_E_NOMEM;
    for (uint64_t i = 0; i < c; i++) (*tab)[i] = -1;
    *cap = c;
    return SW_OK;
}

/* Find name; if absent and insert_idx >= 0, insert it. Returns the index found
 * (or -1 when absent). names(ctx, idx) gives the name of entry idx. */
static int64_t hash_find(int64_t *tab, uint64_t cap, const char *name, int64_t insert_idx,
                         const char *(*names)(const void *, int64_t), const void *ctx) {
    if (!tab) return -1;
    uint64_t h = hash_str(name) & (cap - 1);
    for (;;) {
        int64_t e = tab[h];
        if (e < 0) {
            if (insert_idx >= 0) tab[h] = insert_idx;
            return -1;
        }
        if (!strcmp(names(ctx, e), name)) return e;
        h = (h + 1) & (cap - 1);
    }
}

static const char *kv_name(const void *ctx, int64_t i) { return ((const sw_gguf *)ctx)->kvs[i].key; }
static const char *t_name(const void *ctx, int64_t i) {
    return ((const sw_gguf *)ctx)->tensors[i].name;
}

/* ---- the parser ---- */

typedef struct cur {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    const char *name; /* file name for messages */
    sw_err *err;
    char where[160]; /* the item being parsed, e.g. "tensor info 3 ('x')" */
} cur;

/* "<file>: <where>: <message> at byte offset <off>" */
static sw_status cfail(cur *c, sw_status s, uint64_t off, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static sw_status cfail(cur *c, sw_status s, uint64_t off, const char *fmt, ...) {
    char msg[SW_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sw_err_set(c->err, s, "%s: %s%s%s at byte offset %llu", c->name, c->where,
                      c->where[0] ? ": " : "", msg, (unsigned long long)off);
}

static uint64_t left(const cur *c) { return c->size - c->pos; }

static sw_status need(cur *c, uint64_t n, const char *field) {
    if (n > left(c))
        return cfail(c, SW_E_FORMAT, c->pos,
                     "%s: file truncated (needs %llu bytes, only %llu left of %llu)", field,
                     (unsigned long long)n, (unsigned long long)left(c),
                     (unsigned long long)c->size);
    return SW_OK;
}

static sw_status rd_u32(cur *c, const char *field, uint32_t *v) {
    sw_status s = need(c, 4, field);
    if (s) return s;
    *v = ld_u32(c->p + c->pos);
    c->pos += 4;
    return SW_OK;
}

static sw_status rd_u64(cur *c, const char *field, uint64_t *v) {
    sw_status s = need(c, 8, field);
    if (s) return s;
    *v = ld_u64(c->p + c->pos);
    c->pos += 8;
    return SW_OK;
}

/* Read a string header and skip the chars; *off receives the chars' offset. */
static sw_status rd_str(cur *c, const char *field, uint64_t *off, uint64_t *len) {
    uint64_t at = c->pos;
    sw_status s = rd_u64(c, field, len);
    if (s) return s;
    if (*len > GGUF_MAX_STRING_LEN) {
        c->pos = at;
        return cfail(c, SW_E_FORMAT, at, "%s: string length %llu exceeds the GGUF limit of %llu",
                     field, (unsigned long long)*len, GGUF_MAX_STRING_LEN);
    }
    if (*len > left(c)) {
        c->pos = at;
        return cfail(c, SW_E_FORMAT, at,
                     "%s: string length %llu exceeds the %llu bytes left in the file", field,
                     (unsigned long long)*len, (unsigned long long)left(c) - 8);
    }
    *off = c->pos;
    c->pos += *len;
    return SW_OK;
}

/* A key or tensor name, copied NUL-terminated. As in llama.cpp: a key must not
 * be empty; a tensor name may be, and is cut at an embedded NUL (ggml keeps
 * names as C strings), but its full length must stay under GGUF_MAX_NAME. */
static sw_status rd_name(cur *c, const char *field, bool tensor, char **out, uint64_t *full_len) {
    uint64_t at = c->pos, off = 0, len = 0;
    sw_status s = rd_str(c, field, &off, &len);
    if (s) return s;
    if (!tensor && len == 0) return cfail(c, SW_E_FORMAT, at, "%s is empty", field);
    if (tensor && len >= GGUF_MAX_NAME)
        return cfail(c, SW_E_FORMAT, at, "%s is %llu bytes long; the limit is %d", field,
                     (unsigned long long)len, GGUF_MAX_NAME - 1);
    const uint8_t *nul = memchr(c->p + off, 0, len);
    uint64_t keep = nul ? (uint64_t)(nul - (c->p + off)) : len;
    char *n = malloc(keep + 1); /* keep <= file size, which is mapped: bounded */
    if (!n) return cfail(c, SW_E_NOMEM, at, "%s: cannot allocate %llu bytes", field,
                         (unsigned long long)keep + 1);
    memcpy(n, c->p + off, keep);
    n[keep] = '\0';
    *out = n;
    if (full_len) *full_len = len;
    return SW_OK;
}

/* Print a possibly long name into where[] without overflowing it. */
static void set_where(cur *c, const char *item, int64_t idx, const char *name) {
    if (name)
        snprintf(c->where, sizeof c->where, "%s %lld ('%.100s%s')", item, (long long)idx, name,
                 strlen(name) > 100 ? "..." : "");
    else
        snprintf(c->where, sizeof c->where, "%s %lld", item, (long long)idx);
}

static sw_status parse_array(cur *c, gguf_kv *kv) {
    uint64_t at = c->pos;
    uint32_t et;
    sw_status s = rd_u32(c, "array element type", &et);
    if (s) return s;
    if (et == SW_GGUF_ARRAY)
        return cfail(c, SW_E_UNSUPPORTED, at, "nested arrays (array of arrays) are not supported");
    if (et >= SW_GGUF_VTYPE_COUNT)
        return cfail(c, SW_E_FORMAT, at, "array element type %u is not a GGUF value type (0..%d)",
                     et, SW_GGUF_VTYPE_COUNT - 1);
    kv->arr_type = et;
    at = c->pos;
    s = rd_u64(c, "array length", &kv->n);
    if (s) return s;
    kv->off = c->pos;
    if (kv->n > GGUF_MAX_ARRAY_LEN)
        return cfail(c, SW_E_FORMAT, at, "array length %llu exceeds the GGUF limit of %llu",
                     (unsigned long long)kv->n, GGUF_MAX_ARRAY_LEN);
    if (et == SW_GGUF_STRING) {
        /* each element needs at least its 8-byte length: bound before allocating */
        if (kv->n > left(c) / 8)
            return cfail(c, SW_E_FORMAT, at,
                         "array length %llu: %llu strings cannot fit in the %llu bytes left",
                         (unsigned long long)kv->n, (unsigned long long)kv->n,
                         (unsigned long long)left(c));
        kv->str_off = malloc((kv->n ? kv->n : 1) * sizeof *kv->str_off);
        if (!kv->str_off)
            return cfail(c, SW_E_NOMEM, at, "cannot index %llu strings", (unsigned long long)kv->n);
        for (uint64_t j = 0; j < kv->n; j++) {
            char field[64];
            uint64_t off = 0, len = 0;
            snprintf(field, sizeof field, "array element %llu", (unsigned long long)j);
            kv->str_off[j] = c->pos;
            s = rd_str(c, field, &off, &len);
            if (s) return s;
        }
        return SW_OK;
    }
    uint64_t esz = sw_gguf_vtype_size(et), total;
    if (!sw_mul_u64(kv->n, esz, &total) || total > left(c))
        return cfail(c, SW_E_FORMAT, at,
                     "array length %llu of %s (%llu bytes each) exceeds the %llu bytes left",
                     (unsigned long long)kv->n, sw_gguf_vtype_name((sw_gguf_vtype)et),
                     (unsigned long long)esz, (unsigned long long)left(c));
    c->pos += total;
    return SW_OK;
}

/* The value of KV kv (type field included), recording where it lies. */
static sw_status parse_value(cur *c, gguf_kv *kv) {
    uint64_t at = c->pos;
    kv->enc_begin = at;
    sw_status s = rd_u32(c, "value type", &kv->type);
    if (s) return s;
    if (kv->type >= SW_GGUF_VTYPE_COUNT)
        return cfail(c, SW_E_FORMAT, at, "value type %u is not a GGUF value type (0..%d)", kv->type,
                     SW_GGUF_VTYPE_COUNT - 1);
    at = c->pos;
    if (kv->type == SW_GGUF_STRING) {
        s = rd_str(c, "string value", &kv->off, &kv->len);
        if (s) return s;
        kv->str = malloc(kv->len + 1);
        if (!kv->str) return cfail(c, SW_E_NOMEM, at, "cannot copy string value");
        memcpy(kv->str, c->p + kv->off, kv->len);
        kv->str[kv->len] = '\0';
    } else if (kv->type == SW_GGUF_ARRAY) {
        s = parse_array(c, kv);
        if (s) return s;
    } else {
        uint64_t sz = sw_gguf_vtype_size(kv->type);
        s = need(c, sz, "value");
        if (s) return s;
        kv->off = c->pos; /* a bool is any byte, nonzero = true (as llama.cpp reads it) */
        c->pos += sz;
    }
    kv->enc_end = c->pos;
    return SW_OK;
}

static sw_status parse_kv(sw_gguf *g, cur *c, int64_t i) {
    gguf_kv *kv = &g->kvs[i];
    kv->arr_type = SW_GGUF_VTYPE_COUNT;
    kv->n = 1;
    set_where(c, "KV", i, NULL);
    uint64_t at = c->pos;
    sw_status s = rd_name(c, "key", false, &kv->key, &kv->key_len);
    if (s) return s;
    set_where(c, "KV", i, kv->key);
    /* Two values for one key are ambiguous, and llama.cpp refuses any repeat,
     * even of the same value. Keys that differ only after an embedded NUL are
     * different keys (the later one cannot be looked up by name). */
    int64_t dup = hash_find(g->kv_hash, g->kv_cap, kv->key, i, kv_name, g);
    kv->key_at = at + 8;
    bool same = dup >= 0 && g->kvs[dup].key_len == kv->key_len &&
                !memcmp(c->p + g->kvs[dup].key_at, c->p + kv->key_at, kv->key_len);
    if (same && !(g->flags & SW_GGUF_ALLOW_REPEATED_KEYS))
        return cfail(c, SW_E_FORMAT, at, "duplicate key '%.100s' (first defined by KV %lld)",
                     kv->key, (long long)dup);
    s = parse_value(c, kv);
    if (s || !same) return s;
    const gguf_kv *first = &g->kvs[dup];
    uint64_t n = kv->enc_end - kv->enc_begin;
    if (n == first->enc_end - first->enc_begin &&
        !memcmp(c->p + kv->enc_begin, c->p + first->enc_begin, n))
        return SW_OK; /* the lenient mode's one allowance; lookups find the first */
    return cfail(c, SW_E_FORMAT, at,
                 "duplicate key '%.100s' with a different value (first defined by KV %lld)",
                 kv->key, (long long)dup);
}

/* general.alignment: a uint32 (llama.cpp accepts no other type), a nonzero
 * power of two. */
static sw_status parse_alignment(sw_gguf *g, cur *c) {
    g->alignment = SW_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = hash_find(g->kv_hash, g->kv_cap, "general.alignment", -1, kv_name, g);
    if (i < 0) return SW_OK;
    const gguf_kv *kv = &g->kvs[i];
    c->where[0] = '\0';
    if (kv->type != SW_GGUF_UINT32)
        return cfail(c, SW_E_FORMAT, kv->off, "KV %lld: general.alignment has type %s, expected uint32",
                     (long long)i, kv->type == SW_GGUF_ARRAY ? "array" :
                     sw_gguf_vtype_name((sw_gguf_vtype)kv->type));
    uint32_t a = ld_u32(c->p + kv->off);
    if (a == 0 || (a & (a - 1)) != 0)
        return cfail(c, SW_E_FORMAT, kv->off,
                     "KV %lld: general.alignment = %u is not a nonzero power of two", (long long)i, a);
    g->alignment = a;
    return SW_OK;
}

static sw_status parse_tensor_info(sw_gguf *g, cur *c, int64_t i, uint64_t *off_pos) {
    sw_gguf_tensor *t = &g->tensors[i];
    char *name = NULL;
    set_where(c, "tensor info", i, NULL);
    uint64_t at = c->pos;
    sw_status s = rd_name(c, "name", true, &name, NULL);
    if (s) return s;
    t->name = name;
    set_where(c, "tensor info", i, name);
    int64_t dup = hash_find(g->t_hash, g->t_cap, name, i, t_name, g);
    if (dup >= 0)
        return cfail(c, SW_E_FORMAT, at, "duplicate tensor name (first defined by tensor info %lld)",
                     (long long)dup);
    at = c->pos;
    s = rd_u32(c, "n_dims", &t->n_dims);
    if (s) return s;
    if (t->n_dims > SW_GGUF_MAX_DIMS) /* 0 dims is a scalar, as in ggml */
        return cfail(c, SW_E_FORMAT, at, "n_dims = %u, expected at most %d", t->n_dims,
                     SW_GGUF_MAX_DIMS);
    uint64_t ne0_pos = c->pos;
    for (int d = 0; d < SW_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        char field[16];
        uint64_t v;
        snprintf(field, sizeof field, "ne[%u]", d);
        at = c->pos;
        s = rd_u64(c, field, &v);
        if (s) return s;
        if (v > (uint64_t)INT64_MAX)
            return cfail(c, SW_E_FORMAT, at, "%s = %lld is negative", field, (long long)v);
        t->ne[d] = (int64_t)v; /* 0 is allowed: an empty tensor */
    }
    /* The element count must be representable, with ggml's margin (a product
     * equal to INT64_MAX / ne[k] already counts as too large). */
    const int64_t *ne = t->ne;
    if (ne[0] && ne[1] && ne[2] && ne[3] &&
        (INT64_MAX / ne[1] <= ne[0] || INT64_MAX / ne[2] <= ne[0] * ne[1] ||
         INT64_MAX / ne[3] <= ne[0] * ne[1] * ne[2]))
        return cfail(c, SW_E_FORMAT, ne0_pos,
                     "shape (%lld, %lld, %lld, %lld): the element count overflows 64-bit integers",
                     (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    uint64_t nel = (uint64_t)(ne[0] * ne[1] * ne[2] * ne[3]);
    uint32_t type;
    at = c->pos;
    s = rd_u32(c, "type", &type);
    if (s) return s;
    const sw_type_traits *tr = sw_type_get(type);
    if (!tr) return cfail(c, SW_E_FORMAT, at, "type = %u is not a ggml tensor type", type);
    t->type = (sw_type)type;
    if (t->ne[0] % tr->blck_size != 0)
        return cfail(c, SW_E_FORMAT, ne0_pos,
                     "ne[0] = %lld is not a multiple of the %s block size %lld (rows cannot be "
                     "split into whole blocks)",
                     (long long)t->ne[0], tr->name, (long long)tr->blck_size);
    if (!sw_mul_u64(nel / (uint64_t)tr->blck_size, tr->type_size, &t->nbytes))
        return cfail(c, SW_E_FORMAT, at, "tensor size in bytes overflows 64-bit integers");
    *off_pos = c->pos;
    return rd_u64(c, "offset", &t->offset);
}

/* With the data section located: llama.cpp requires the tensors' data to
 * follow each other in the order of their infos, each padded to the alignment
 * (so an offset is exactly the padded size of everything before it), and all
 * of it inside the file. */
static sw_status check_tensor_data(sw_gguf *g, cur *c, const uint64_t *off_pos) {
    if (g->n_tensors == 0) return SW_OK;
    if (g->data_offset > g->size)
        return cfail(c, SW_E_FORMAT, g->data_offset,
                     "data section starts past the end of the file (file size %llu)",
                     (unsigned long long)g->size);
    uint64_t avail = g->size - g->data_offset, expect = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        sw_gguf_tensor *t = &g->tensors[i];
        set_where(c, "tensor info", i, t->name);
        if (t->offset != expect)
            return cfail(c, SW_E_FORMAT, off_pos[i],
                         "offset = %llu disagrees with the sizes declared before it: expected "
                         "%llu (each tensor's data follows the previous one's, padded to %llu)",
                         (unsigned long long)t->offset, (unsigned long long)expect,
                         (unsigned long long)g->alignment);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return cfail(c, SW_E_FORMAT, off_pos[i],
                         "offset = %llu + %llu bytes of %s data ends past the end of the file "
                         "(data section holds %llu bytes from file offset %llu)",
                         (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                         sw_type_name(t->type), (unsigned long long)avail,
                         (unsigned long long)g->data_offset);
        t->data = g->base + g->data_offset + t->offset;
        uint64_t padded;
        if (!sw_add_u64(t->nbytes, g->alignment - 1, &padded) ||
            !sw_add_u64(expect, padded & ~(g->alignment - 1), &expect))
            return cfail(c, SW_E_FORMAT, off_pos[i], "data section size overflows");
    }
    return SW_OK;
}

static sw_status parse_header(sw_gguf *g, cur *c, uint64_t *n_tensors, uint64_t *n_kv) {
    sw_status s = need(c, 4, "magic");
    if (s) return s;
    if (memcmp(c->p, "GGUF", 4) != 0) {
        char shown[5];
        for (int k = 0; k < 4; k++) shown[k] = (c->p[k] >= 32 && c->p[k] < 127) ? (char)c->p[k] : '?';
        shown[4] = '\0';
        return cfail(c, SW_E_FORMAT, 0, "not a GGUF file: magic is '%s' (0x%08x), expected 'GGUF'",
                     shown, ld_u32(c->p));
    }
    c->pos = 4;
    s = rd_u32(c, "version", &g->version);
    if (s) return s;
    if (g->version == 1)
        return cfail(c, SW_E_UNSUPPORTED, 4,
                     "GGUF version 1 is no longer supported (it uses 32-bit counts and lengths); "
                     "re-convert the model with a current converter (e.g. llama.cpp's "
                     "convert_hf_to_gguf.py)");
    uint32_t sw = __builtin_bswap32(g->version);
    if ((g->version & 0xffffu) == 0 && sw >= 1 && sw <= 3)
        return cfail(c, SW_E_UNSUPPORTED, 4,
                     "big-endian (byte-swapped) GGUF version %u is not supported; use a "
                     "little-endian file",
                     sw);
    if (g->version != 2 && g->version != 3)
        return cfail(c, SW_E_UNSUPPORTED, 4, "GGUF version %u is not supported (expected 2 or 3)",
                     g->version);
    s = rd_u64(c, "n_tensors", n_tensors);
    if (s) return s;
    s = rd_u64(c, "n_kv", n_kv);
    if (s) return s;
    /* Bound the counts before anything is allocated from them: a KV takes at least
     * 13 bytes (8 key length + 4 type + a 1-byte value), a tensor info at least 32
     * (8 name length + 4 n_dims + 8 ne[0] + 4 type + 8 offset). */
    if (*n_kv > left(c) / 13)
        return cfail(c, SW_E_FORMAT, 16, "n_kv = %llu cannot fit in the %llu bytes left",
                     (unsigned long long)*n_kv, (unsigned long long)left(c));
    if (*n_tensors > left(c) / 32)
        return cfail(c, SW_E_FORMAT, 8, "n_tensors = %llu cannot fit in the %llu bytes left",
                     (unsigned long long)*n_tensors, (unsigned long long)left(c));
    uint64_t min_total = *n_kv * 13 + *n_tensors * 32; /* both bounded above: no overflow */
    if (min_total > left(c))
        return cfail(c, SW_E_FORMAT, 8,
                     "n_tensors = %llu and n_kv = %llu cannot fit in the %llu bytes left",
                     (unsigned long long)*n_tensors, (unsigned long long)*n_kv,
                     (unsigned long long)left(c));
    return SW_OK;
}

static sw_status parse(sw_gguf *g, sw_err *err) {
    cur c = {.p = g->base, .size = g->size, .pos = 0, .name = g->path, .err = err};
    c.where[0] = '\0';
    uint64_t n_tensors, n_kv;
    sw_status s = parse_header(g, &c, &n_tensors, &n_kv);
    if (s) return s;

    g->kvs = calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", g->path);
    if (hash_init(&g->kv_hash, &g->kv_cap, (int64_t)n_kv) ||
        hash_init(&g->t_hash, &g->t_cap, (int64_t)n_tensors))
        return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", g->path);

    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = (int64_t)i + 1; /* so that sw_gguf_free releases the partial entry */
        s = parse_kv(g, &c, (int64_t)i);
        if (s) return s;
    }
    s = parse_alignment(g, &c);
    if (s) return s;

    uint64_t *off_pos = malloc((n_tensors ? n_tensors : 1) * sizeof *off_pos);
    if (!off_pos) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < n_tensors && !s; i++) {
        g->n_tensors = (int64_t)i + 1;
        s = parse_tensor_info(g, &c, (int64_t)i, &off_pos[i]);
    }
    if (!s) {
        uint64_t a = g->alignment, end = c.pos;
        c.where[0] = '\0';
        if (!sw_add_u64(end, a - 1, &g->data_offset)) {
            s = cfail(&c, SW_E_FORMAT, end, "data section offset overflows with alignment %llu",
                      (unsigned long long)a);
        } else {
            g->data_offset &= ~(a - 1);
            s = check_tensor_data(g, &c, off_pos);
        }
    }
    free(off_pos);
    return s;
}

void sw_gguf_free(sw_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].str);
        free(g->kvs[i].str_off);
    }
    free(g->kvs);
    for (int64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->tensors);
    free(g->kv_hash);
    free(g->t_hash);
    if (g->map) munmap(g->map, g->map_len);
    free(g->path);
    free(g);
}

static sw_gguf *gguf_new(const char *name) {
    sw_gguf *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->path = strdup(name ? name : "<memory>");
    if (!g->path) {
        free(g);
        return NULL;
    }
    return g;
}

sw_status sw_gguf_open_memory(const void *buf, size_t size, const char *name, sw_gguf **out,
                              sw_err *err) {
    if (!out || (!buf && size))
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_gguf_open_memory: NULL argument");
    *out = NULL;
    sw_gguf *g = gguf_new(name);
    if (!g) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", name ? name : "<memory>");
    g->flags = 0;
    static const uint8_t empty[1] = {0};
    g->base = buf ? buf : empty;
    g->size = size;
    sw_status s = parse(g, err);
    if (s) {
        sw_gguf_free(g);
        return s;
    }
    *out = g;
    return SW_OK;
}

sw_status sw_gguf_open(const char *path, sw_gguf **out, sw_err *err) {
    return sw_gguf_open_flags(path, 0, out, err);
}

sw_status sw_gguf_open_flags(const char *path, unsigned flags, sw_gguf **out, sw_err *err) {
    if (!path || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err_set(err, SW_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sw_status s = sw_err_set(err, SW_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sw_err_set(err, SW_E_IO, "%s: not a regular file", path);
    }
    sw_gguf *g = gguf_new(path);
    if (!g) {
        close(fd);
        return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", path);
    }
    static const uint8_t empty[1] = {0};
    g->base = empty;
    g->size = (uint64_t)st.st_size;
    if (st.st_size > 0) {
        if ((uint64_t)st.st_size > SIZE_MAX) {
            close(fd);
            sw_gguf_free(g);
            return sw_err_set(err, SW_E_IO, "%s: file too large to map", path);
        }
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            sw_status s = sw_err_set(err, SW_E_IO, "%s: mmap of %lld bytes failed: %s", path,
                                     (long long)st.st_size, strerror(errno));
            close(fd);
            sw_gguf_free(g);
            return s;
        }
        g->map = m;
        g->map_len = (size_t)st.st_size;
        g->base = m;
    }
    close(fd); /* the mapping stays valid without the descriptor */
    g->flags = flags;
    sw_status s = parse(g, err);
    if (s) {
        sw_gguf_free(g);
        return s;
    }
    *out = g;
    return SW_OK;
}

/* ---- header accessors ---- */

const char *sw_gguf_path(const sw_gguf *g) { return g ? g->path : NULL; }
uint32_t sw_gguf_version(const sw_gguf *g) { return g ? g->version : 0; }
uint64_t sw_gguf_alignment(const sw_gguf *g) { return g ? g->alignment : 0; }
uint64_t sw_gguf_data_offset(const sw_gguf *g) { return g ? g->data_offset : 0; }
uint64_t sw_gguf_file_size(const sw_gguf *g) { return g ? g->size : 0; }

/* ---- metadata accessors ---- */

int64_t sw_gguf_n_kv(const sw_gguf *g) { return g ? g->n_kv : 0; }

int64_t sw_gguf_find_key(const sw_gguf *g, const char *key) {
    if (!g || !key) return -1;
    return hash_find(g->kv_hash, g->kv_cap, key, -1, kv_name, g);
}

static const gguf_kv *kv_at(const sw_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_kv) ? &g->kvs[i] : NULL;
}

const char *sw_gguf_kv_key(const sw_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : NULL;
}

sw_gguf_vtype sw_gguf_kv_type(const sw_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? (sw_gguf_vtype)kv->type : SW_GGUF_VTYPE_COUNT;
}

sw_gguf_vtype sw_gguf_kv_arr_type(const sw_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == SW_GGUF_ARRAY ? (sw_gguf_vtype)kv->arr_type : SW_GGUF_VTYPE_COUNT;
}

uint64_t sw_gguf_kv_arr_n(const sw_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == SW_GGUF_ARRAY ? kv->n : 0;
}

static sw_status bad_index(const sw_gguf *g, int64_t i, sw_err *err) {
    return sw_err_set(err, SW_E_INVALID_ARG, "%s: KV index %lld out of range (n_kv = %lld)",
                      g ? g->path : "<null>", (long long)i, (long long)(g ? g->n_kv : 0));
}

static sw_status wrong_type(const sw_gguf *g, const gguf_kv *kv, const char *want, sw_err *err) {
    if (kv->type == SW_GGUF_ARRAY)
        return sw_err_set(err, SW_E_FORMAT, "%s: key '%s' is an array of %s, expected %s", g->path,
                          kv->key, sw_gguf_vtype_name((sw_gguf_vtype)kv->arr_type), want);
    return sw_err_set(err, SW_E_FORMAT, "%s: key '%s' has type %s, expected %s", g->path, kv->key,
                      sw_gguf_vtype_name((sw_gguf_vtype)kv->type), want);
}

/* Shared conversions; what names the value in messages ("key 'x'" / "key 'x'[j]"). */
static sw_status num_to_int(const sw_gguf *g, const char *key, const char *sub, const num *v,
                            int64_t *out, sw_err *err) {
    if (v->kind == 1) {
        *out = v->i;
        return SW_OK;
    }
    if (v->u > (uint64_t)INT64_MAX)
        return sw_err_set(err, SW_E_RANGE, "%s: key '%s'%s = %llu does not fit int64", g->path, key,
                          sub, (unsigned long long)v->u);
    *out = (int64_t)v->u;
    return SW_OK;
}

static double num_to_double(const num *v) {
    return v->kind == 2 ? v->f : v->kind == 1 ? (double)v->i : (double)v->u;
}

static bool is_int_type(uint32_t t) {
    return t != SW_GGUF_FLOAT32 && t != SW_GGUF_FLOAT64 && sw_gguf_vtype_size(t) != 0;
}

sw_status sw_gguf_kv_int(const sw_gguf *g, int64_t i, int64_t *out, sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return bad_index(g, i, err);
    num v;
    if (!is_int_type(kv->type) || !load_num(kv->type, g->base + kv->off, &v))
        return wrong_type(g, kv, "an integer", err);
    return num_to_int(g, kv->key, "", &v, out, err);
}

sw_status sw_gguf_kv_uint(const sw_gguf *g, int64_t i, uint64_t *out, sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return bad_index(g, i, err);
    num v;
    if (!is_int_type(kv->type) || !load_num(kv->type, g->base + kv->off, &v))
        return wrong_type(g, kv, "an integer", err);
    if (v.kind == 1 && v.i < 0)
        return sw_err_set(err, SW_E_RANGE, "%s: key '%s' = %lld is negative, expected unsigned",
                          g->path, kv->key, (long long)v.i);
    *out = v.kind == 1 ? (uint64_t)v.i : v.u;
    return SW_OK;
}

sw_status sw_gguf_kv_float(const sw_gguf *g, int64_t i, double *out, sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return bad_index(g, i, err);
    num v;
    if (kv->type == SW_GGUF_BOOL || !load_num(kv->type, g->base + kv->off, &v))
        return wrong_type(g, kv, "a number", err);
    *out = num_to_double(&v);
    return SW_OK;
}

sw_status sw_gguf_kv_bool(const sw_gguf *g, int64_t i, bool *out, sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return bad_index(g, i, err);
    if (kv->type != SW_GGUF_BOOL) return wrong_type(g, kv, "bool", err);
    *out = g->base[kv->off] != 0;
    return SW_OK;
}

sw_status sw_gguf_kv_str(const sw_gguf *g, int64_t i, const char **out, size_t *len, sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return bad_index(g, i, err);
    if (kv->type != SW_GGUF_STRING) return wrong_type(g, kv, "string", err);
    *out = kv->str;
    if (len) *len = (size_t)kv->len;
    return SW_OK;
}

/* Array element checks shared by the three element accessors. */
static sw_status arr_check(const sw_gguf *g, int64_t i, uint64_t j, const gguf_kv **kvp,
                           sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv) return bad_index(g, i, err);
    if (kv->type != SW_GGUF_ARRAY)
        return sw_err_set(err, SW_E_FORMAT, "%s: key '%s' has type %s, expected an array", g->path,
                          kv->key, sw_gguf_vtype_name((sw_gguf_vtype)kv->type));
    if (j >= kv->n)
        return sw_err_set(err, SW_E_RANGE, "%s: key '%s': element %llu out of range (length %llu)",
                          g->path, kv->key, (unsigned long long)j, (unsigned long long)kv->n);
    *kvp = kv;
    return SW_OK;
}

sw_status sw_gguf_arr_int(const sw_gguf *g, int64_t i, uint64_t j, int64_t *out, sw_err *err) {
    const gguf_kv *kv = NULL;
    sw_status s = arr_check(g, i, j, &kv, err);
    if (s) return s;
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_gguf_arr_int: NULL out");
    num v;
    if (!is_int_type(kv->arr_type)) return wrong_type(g, kv, "integers", err);
    load_num(kv->arr_type, g->base + kv->off + j * sw_gguf_vtype_size(kv->arr_type), &v);
    char sub[32];
    snprintf(sub, sizeof sub, "[%llu]", (unsigned long long)j);
    return num_to_int(g, kv->key, sub, &v, out, err);
}

sw_status sw_gguf_arr_float(const sw_gguf *g, int64_t i, uint64_t j, double *out, sw_err *err) {
    const gguf_kv *kv = NULL;
    sw_status s = arr_check(g, i, j, &kv, err);
    if (s) return s;
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_gguf_arr_float: NULL out");
    num v;
    if (kv->arr_type == SW_GGUF_BOOL || sw_gguf_vtype_size(kv->arr_type) == 0)
        return wrong_type(g, kv, "numbers", err);
    load_num(kv->arr_type, g->base + kv->off + j * sw_gguf_vtype_size(kv->arr_type), &v);
    *out = num_to_double(&v);
    return SW_OK;
}

sw_status sw_gguf_arr_str(const sw_gguf *g, int64_t i, uint64_t j, const char **out, size_t *len,
                          sw_err *err) {
    const gguf_kv *kv = NULL;
    sw_status s = arr_check(g, i, j, &kv, err);
    if (s) return s;
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_gguf_arr_str: NULL out");
    if (kv->arr_type != SW_GGUF_STRING) return wrong_type(g, kv, "strings", err);
    uint64_t at = kv->str_off[j];
    *out = (const char *)g->base + at + 8;
    if (len) *len = (size_t)ld_u64(g->base + at);
    return SW_OK;
}

sw_status sw_gguf_kv_arr_data(const sw_gguf *g, int64_t i, const void **data, uint64_t *n,
                              sw_err *err) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !data) return bad_index(g, i, err);
    if (kv->type != SW_GGUF_ARRAY || kv->arr_type == SW_GGUF_STRING)
        return wrong_type(g, kv, "a numeric array", err);
    *data = g->base + kv->off;
    if (n) *n = kv->n;
    return SW_OK;
}

/* ---- by key ---- */

static sw_status key_index(const sw_gguf *g, const char *key, int64_t *i, sw_err *err) {
    *i = sw_gguf_find_key(g, key);
    if (*i < 0)
        return sw_err_set(err, SW_E_NOT_FOUND, "%s: key '%s' not found", g ? g->path : "<null>",
                          key ? key : "<null>");
    return SW_OK;
}

sw_status sw_gguf_get_int(const sw_gguf *g, const char *key, int64_t *out, sw_err *err) {
    int64_t i;
    sw_status s = key_index(g, key, &i, err);
    return s ? s : sw_gguf_kv_int(g, i, out, err);
}

sw_status sw_gguf_get_float(const sw_gguf *g, const char *key, double *out, sw_err *err) {
    int64_t i;
    sw_status s = key_index(g, key, &i, err);
    return s ? s : sw_gguf_kv_float(g, i, out, err);
}

sw_status sw_gguf_get_bool(const sw_gguf *g, const char *key, bool *out, sw_err *err) {
    int64_t i;
    sw_status s = key_index(g, key, &i, err);
    return s ? s : sw_gguf_kv_bool(g, i, out, err);
}

sw_status sw_gguf_get_str(const sw_gguf *g, const char *key, const char **out, sw_err *err) {
    int64_t i;
    sw_status s = key_index(g, key, &i, err);
    return s ? s : sw_gguf_kv_str(g, i, out, NULL, err);
}

/* ---- tensors ---- */

int64_t sw_gguf_n_tensors(const sw_gguf *g) { return g ? g->n_tensors : 0; }

const sw_gguf_tensor *sw_gguf_tensor_at(const sw_gguf *g, int64_t i) {
    return (g && i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const sw_gguf_tensor *sw_gguf_find_tensor(const sw_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    int64_t i = hash_find(g->t_hash, g->t_cap, name, -1, t_name, g);
    return i >= 0 ? &g->tensors[i] : NULL;
}
