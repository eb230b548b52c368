/* gguf_write.c — GGUF v3 writer. KV pairs are kept already encoded (the bytes
 * that follow the value type in the file), so setting, copying from a reader and
 * writing all go through one representation. Tensor bytes are streamed at write
 * time from a borrowed pointer or a fill callback, one tensor at a time, into a
 * temporary file that is renamed over the target only when everything worked. */
#include "gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    uint32_t type;
    uint8_t *payload; /* encoded value, owned */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    sw_type type;
    uint32_t n_dims;
    int64_t ne[SW_GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data; /* borrowed until write returns */
    sw_gguf_fill_fn fill;
    void *fill_ctx;
} wtensor;

struct sw_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_t, cap_t;
};

/* ---- a growable byte buffer for encoding values ---- */

typedef struct bbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - b->n) {
        b->oom = true;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? b->n + n : cap * 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

/* Little-endian encodings independent of the host byte order. */
static void bb_le(bbuf *b, uint64_t v, int bytes) {
    uint8_t t[8];
    for (int k = 0; k < bytes; k++) t[k] = (uint8_t)(v >> (8 * k));
    bb_put(b, t, (size_t)bytes);
}



sw_gguf_writer *sw_gguf_writer_create(void) { return calloc(1, sizeof(sw_gguf_writer)); }

void sw_gguf_writer_free(sw_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].payload);
    }
    free(w->kvs);
    for (size_t i = 0; i < w->n_t; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

/* ---- KV pairs ---- */

static wkv *find_kv(sw_gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key)) return &w->kvs[i];
    return NULL;
}

/* Takes ownership of the buffer's bytes (freed on failure too). Replacing a key
 * keeps its position, so a file copied and edited keeps its key order. */
static sw_status put_kv(sw_gguf_writer *w, const char *key, uint32_t type, bbuf *b) {
    if (b->oom) {
        free(b->p);
        return SW_E_NOMEM;
    }
    if (!w || !key || !key[0]) {
        free(b->p);
        return SW_E_INVALID_ARG;
    }
    wkv *kv = find_kv(w, key);
    if (kv) {
        free(kv->payload);
        kv->type = type;
        kv->payload = b->p;
        kv->len = b->n;
        return SW_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *p = realloc(w->kvs, cap * sizeof *p);
        if (!p) {
            free(b->p);
            return SW_E_NOMEM;
        }
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(b->p);
        return SW_E_NOMEM;
    }
    w->kvs[w->n_kv++] = (wkv){k, type, b->p, b->n};
    return SW_OK;
}

static sw_status set_scalar(sw_gguf_writer *w, const char *key, uint32_t type, uint64_t bits) {
    bbuf b = {0};
    bb_le(&b, bits, (int)sw_gguf_vtype_size(type));
    return put_kv(w, key, type, &b);
}

sw_status sw_gguf_writer_set_u8(sw_gguf_writer *w, const char *key, uint8_t v) {
    return set_scalar(w, key, SW_GGUF_UINT8, v);
}
sw_status sw_gguf_writer_set_i8(sw_gguf_writer *w, const char *key, int8_t v) {
    return set_scalar(w, key, SW_GGUF_INT8, (uint64_t)(uint8_t)v);
}
sw_status sw_gguf_writer_set_u16(sw_gguf_writer *w, const char *key, uint16_t v) {
    return set_scalar(w, key, SW_GGUF_UINT16, v);
}
sw_status sw_gguf_writer_set_i16(sw_gguf_writer *w, const char *key, int16_t v) {
    return set_scalar(w, key, SW_GGUF_INT16, (uint64_t)(uint16_t)v);
}
sw_status sw_gguf_writer_set_u32(sw_gguf_writer *w, const char *key, uint32_t v) {
    return set_scalar(w, key, SW_GGUF_UINT32, v);
}
sw_status sw_gguf_writer_set_i32(sw_gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, SW_GGUF_INT32, (uint64_t)(uint32_t)v);
}
sw_status sw_gguf_writer_set_u64(sw_gguf_writer *w, const char *key, uint64_t v) {
    return set_scalar(w, key, SW_GGUF_UINT64, v);
}
sw_status sw_gguf_writer_set_i64(sw_gguf_writer *w, const char *key, int64_t v) {
    return set_scalar(w, key, SW_GGUF_INT64, (uint64_t)v);
}
sw_status sw_gguf_writer_set_f32(sw_gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, SW_GGUF_FLOAT32, bits);
}
sw_status sw_gguf_writer_set_f64(sw_gguf_writer *w, const char *key, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return set_scalar(w, key, SW_GGUF_FLOAT64, bits);
}
sw_status sw_gguf_writer_set_bool(sw_gguf_writer *w, const char *key, bool v) {
    return set_scalar(w, key, SW_GGUF_BOOL, v ? 1 : 0);
}

static void bb_str(bbuf *b, const char *s, size_t n) {
    bb_le(b, n, 8);
    bb_put(b, s, n);
}

sw_status sw_gguf_writer_set_str(sw_gguf_writer *w, const char *key, const char *v) {
    if (!v) return SW_E_INVALID_ARG;
    bbuf b = {0};
    bb_str(&b, v, strlen(v));
    return put_kv(w, key, SW_GGUF_STRING, &b);
}

/* Elements are given in host order; the file wants little-endian. */
static sw_status encode_arr(bbuf *b, sw_gguf_vtype et, const void *data, uint64_t n) {
    uint64_t es = sw_gguf_vtype_size(et), total;
    if (es == 0) return SW_E_INVALID_ARG;
    if (!sw_mul_u64(n, es, &total) || total > SIZE_MAX) return SW_E_INVALID_ARG;
    if (n && !data) return SW_E_INVALID_ARG;
    const uint8_t *p = data;
    if (et == SW_GGUF_BOOL)
        for (uint64_t j = 0; j < n; j++)
            if (p[j] > 1) return SW_E_INVALID_ARG; /* the reader rejects other values */
    bb_le(b, (uint64_t)et, 4);
    bb_le(b, n, 8);
    for (uint64_t j = 0; j < n; j++) {
        uint64_t v = 0;
        switch (es) {
        case 1: v = p[j]; break;
        case 2: { uint16_t x; memcpy(&x, p + j * 2, 2); v = x; break; }
        case 4: { uint32_t x; memcpy(&x, p + j * 4, 4); v = x; break; }
        default: memcpy(&v, p + j * 8, 8); break;
        }
        bb_le(b, v, (int)es);
    }
    return SW_OK;
}

sw_status sw_gguf_writer_set_arr(sw_gguf_writer *w, const char *key, sw_gguf_vtype elem_type,
                                 const void *data, uint64_t n) {
    bbuf b = {0};
    sw_status s = encode_arr(&b, elem_type, data, n);
    if (s) {
        free(b.p);
        return s;
    }
    return put_kv(w, key, SW_GGUF_ARRAY, &b);
}

sw_status sw_gguf_writer_set_arr_str(sw_gguf_writer *w, const char *key, const char *const *strs,
                                     uint64_t n) {
    if (n && !strs) return SW_E_INVALID_ARG;
    bbuf b = {0};
    bb_le(&b, SW_GGUF_STRING, 4);
    bb_le(&b, n, 8);
    for (uint64_t j = 0; j < n; j++) {
        if (!strs[j]) {
            free(b.p);
            return SW_E_INVALID_ARG;
        }
        bb_str(&b, strs[j], strlen(strs[j]));
    }
    return put_kv(w, key, SW_GGUF_ARRAY, &b);
}

/* Re-encode through the reader's accessors, so any valid source value (strings
 * with embedded NULs, u64 beyond INT64_MAX, NaN payloads) comes out unchanged. */
static sw_status encode_scalar_from(bbuf *b, const sw_gguf *src, int64_t i, uint32_t type) {
    sw_err e;
    switch (type) {
    case SW_GGUF_FLOAT32: {
        double d;
        if (sw_gguf_kv_float(src, i, &d, &e)) return SW_E_INVALID_ARG;
        float f = (float)d; /* exact: it was a float */
        uint32_t bits;
        memcpy(&bits, &f, 4);
        bb_le(b, bits, 4);
        return SW_OK;
    }
    case SW_GGUF_FLOAT64: {
        double d;
        uint64_t bits;
        if (sw_gguf_kv_float(src, i, &d, &e)) return SW_E_INVALID_ARG;
        memcpy(&bits, &d, 8);
        bb_le(b, bits, 8);
        return SW_OK;
    }
    case SW_GGUF_INT8:
    case SW_GGUF_INT16:
    case SW_GGUF_INT32:
    case SW_GGUF_INT64: {
        int64_t v;
        if (sw_gguf_kv_int(src, i, &v, &e)) return SW_E_INVALID_ARG;
        bb_le(b, (uint64_t)v, (int)sw_gguf_vtype_size(type));
        return SW_OK;
    }
    default: {
        uint64_t v;
        if (sw_gguf_kv_uint(src, i, &v, &e)) return SW_E_INVALID_ARG;
        bb_le(b, v, (int)sw_gguf_vtype_size(type));
        return SW_OK;
    }
    }
}

sw_status sw_gguf_writer_copy_kv(sw_gguf_writer *w, const sw_gguf *src, int64_t i) {
    const char *key = sw_gguf_kv_key(src, i);
    if (!w || !key) return SW_E_INVALID_ARG;
    uint32_t type = sw_gguf_kv_type(src, i);
    bbuf b = {0};
    sw_status s = SW_OK;
    sw_err e;
    if (type == SW_GGUF_STRING) {
        const char *str;
        size_t len;
        s = sw_gguf_kv_str(src, i, &str, &len, &e);
        if (!s) bb_str(&b, str, len);
    } else if (type == SW_GGUF_ARRAY) {
        sw_gguf_vtype et = sw_gguf_kv_arr_type(src, i);
        uint64_t n = sw_gguf_kv_arr_n(src, i);
        if (et == SW_GGUF_STRING) {
            bb_le(&b, SW_GGUF_STRING, 4);
            bb_le(&b, n, 8);
            for (uint64_t j = 0; j < n && !s && !b.oom; j++) {
                const char *str;
                size_t len;
                s = sw_gguf_arr_str(src, i, j, &str, &len, &e);
                if (!s) bb_str(&b, str, len);
            }
        } else {
            /* the raw bytes are already little-endian: copy them as they are */
            const void *data;
            s = sw_gguf_kv_arr_data(src, i, &data, &n, &e);
            if (!s) {
                bb_le(&b, (uint64_t)et, 4);
                bb_le(&b, n, 8);
                bb_put(&b, data, (size_t)(n * sw_gguf_vtype_size(et)));
            }
        }
    } else {
        s = encode_scalar_from(&b, src, i, type);
    }
    if (s) {
        free(b.p);
        return s == SW_E_NOMEM ? s : SW_E_INVALID_ARG;
    }
    return put_kv(w, key, type, &b);
}

sw_status sw_gguf_writer_remove_key(sw_gguf_writer *w, const char *key) {
    if (!w || !key) return SW_E_INVALID_ARG;
    wkv *kv = find_kv(w, key);
    if (!kv) return SW_E_NOT_FOUND;
    size_t i = (size_t)(kv - w->kvs);
    free(kv->key);
    free(kv->payload);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
    w->n_kv--;
    return SW_OK;
}

/* ---- tensors ---- */

sw_status sw_gguf_writer_add_tensor(sw_gguf_writer *w, const char *name, sw_type type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    sw_gguf_fill_fn fill, void *fill_ctx, sw_err *err) {
    if (!w || !name || !ne)
        return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: add_tensor: NULL argument");
    if (!name[0]) return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: empty tensor name");
    if (strlen(name) >= 64) /* GGML_MAX_NAME: readers refuse longer names */
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "gguf writer: tensor name '%.80s' is %zu bytes long; the limit is 63",
                          name, strlen(name));
    if (!data && !fill)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "gguf writer: tensor '%s': neither data nor a fill callback", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->tensors[i].name, name))
            return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: duplicate tensor name '%s'",
                              name);
    const sw_type_traits *tr = sw_type_get((uint32_t)type);
    if (!tr)
        return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: tensor '%s': unknown type %d", name,
                          (int)type);
    if (n_dims < 1 || n_dims > SW_GGUF_MAX_DIMS)
        return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: tensor '%s': n_dims = %u, expected 1..%d",
                          name, n_dims, SW_GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .fill = fill, .fill_ctx = fill_ctx};
    uint64_t nel = 1;
    for (int d = 0; d < SW_GGUF_MAX_DIMS; d++) t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0)
            return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: tensor '%s': ne[%u] = %lld",
                              name, d, (long long)ne[d]);
        if (!sw_mul_u64(nel, (uint64_t)ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return sw_err_set(err, SW_E_INVALID_ARG,
                              "gguf writer: tensor '%s': element count overflows", name);
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % tr->blck_size != 0)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "gguf writer: tensor '%s': ne[0] = %lld is not a multiple of the %s "
                          "block size %lld",
                          name, (long long)t.ne[0], tr->name, (long long)tr->blck_size);
    uint64_t row;
    if (!sw_mul_u64((uint64_t)(t.ne[0] / tr->blck_size), tr->type_size, &row) ||
        !sw_mul_u64(row, nel / (uint64_t)t.ne[0], &t.nbytes) || t.nbytes > SIZE_MAX)
        return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: tensor '%s': size overflows", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return sw_err_set(err, SW_E_NOMEM, "gguf writer: out of memory");
        w->tensors = p;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) return sw_err_set(err, SW_E_NOMEM, "gguf writer: out of memory");
    w->tensors[w->n_t++] = t;
    return SW_OK;
}

/* ---- write ---- */

static sw_status writer_alignment(sw_gguf_writer *w, uint64_t *a, sw_err *err) {
    *a = SW_GGUF_DEFAULT_ALIGNMENT;
    wkv *kv = find_kv(w, "general.alignment");
    if (!kv) return SW_OK;
    uint64_t es = sw_gguf_vtype_size(kv->type), v = 0;
    if (es == 0 || kv->type == SW_GGUF_BOOL || kv->type == SW_GGUF_FLOAT32 ||
        kv->type == SW_GGUF_FLOAT64)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "gguf writer: general.alignment must be an unsigned integer (uint32)");
    for (uint64_t k = 0; k < es; k++) v |= (uint64_t)kv->payload[k] << (8 * k);
    bool neg = (kv->type == SW_GGUF_INT8 || kv->type == SW_GGUF_INT16 ||
                kv->type == SW_GGUF_INT32 || kv->type == SW_GGUF_INT64) &&
               (kv->payload[es - 1] & 0x80);
    if (neg || v == 0 || (v & (v - 1)) != 0)
        return sw_err_set(err, SW_E_INVALID_ARG,
                          "gguf writer: general.alignment = %llu is not a nonzero power of two",
                          (unsigned long long)v);
    *a = v;
    return SW_OK;
}

typedef struct wout {
    FILE *f;
    uint64_t pos;
    bool failed;
} wout;

static void out_put(wout *o, const void *p, size_t n) {
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->failed = true;
    o->pos += n;
}

static void out_le(wout *o, uint64_t v, int bytes) {
    uint8_t t[8];
    for (int k = 0; k < bytes; k++) t[k] = (uint8_t)(v >> (8 * k));
    out_put(o, t, (size_t)bytes);
}

static void out_pad(wout *o, uint64_t a) {
    static const uint8_t zeros[256];
    while (o->pos % a) {
        uint64_t k = a - o->pos % a;
        out_put(o, zeros, (size_t)(k < sizeof zeros ? k : sizeof zeros));
        if (o->failed) return;
    }
}

static sw_status write_body(sw_gguf_writer *w, wout *o, const char *path, uint64_t a,
                            sw_err *err) {
    out_put(o, "GGUF", 4);
    out_le(o, 3, 4);
    out_le(o, w->n_t, 8);
    out_le(o, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        out_le(o, strlen(w->kvs[i].key), 8);
        out_put(o, w->kvs[i].key, strlen(w->kvs[i].key));
        out_le(o, w->kvs[i].type, 4);
        out_put(o, w->kvs[i].payload, w->kvs[i].len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->tensors[i];
        out_le(o, strlen(t->name), 8);
        out_put(o, t->name, strlen(t->name));
        out_le(o, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) out_le(o, (uint64_t)t->ne[d], 8);
        out_le(o, (uint32_t)t->type, 4);
        out_le(o, off, 8);
        uint64_t padded;
        if (!sw_add_u64(t->nbytes, a - 1, &padded) || !sw_add_u64(off, padded & ~(a - 1), &off))
            return sw_err_set(err, SW_E_INVALID_ARG, "%s: total tensor data size overflows", path);
    }
    out_pad(o, a);
    /* Tensors are produced one at a time: the fill buffer holds the largest one. */
    void *buf = NULL;
    size_t buf_cap = 0;
    sw_status s = SW_OK;
    for (size_t i = 0; i < w->n_t && !o->failed; i++) {
        const wtensor *t = &w->tensors[i];
        const void *src = t->data;
        if (t->fill) {
            if (t->nbytes > buf_cap) {
                void *nb = realloc(buf, (size_t)t->nbytes);
                if (!nb) {
                    s = sw_err_set(err, SW_E_NOMEM, "%s: cannot allocate %llu bytes for tensor '%s'",
                                   path, (unsigned long long)t->nbytes, t->name);
                    break;
                }
                buf = nb;
                buf_cap = (size_t)t->nbytes;
            }
            if (err) err->msg[0] = '\0'; /* in case the callback sets no message */
            s = t->fill(t->fill_ctx, buf, (size_t)t->nbytes, err);
            if (s) {
                sw_err_wrap(err, s, "%s: tensor '%s'", path, t->name);
                break;
            }
            src = buf;
        }
        out_put(o, src, (size_t)t->nbytes);
        out_pad(o, a);
    }
    free(buf);
    return s;
}

sw_status sw_gguf_writer_write(sw_gguf_writer *w, const char *path, sw_err *err) {
    if (!w || !path) return sw_err_set(err, SW_E_INVALID_ARG, "gguf writer: NULL argument");
    uint64_t a;
    sw_status s = writer_alignment(w, &a, err);
    if (s) return s;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp); /* same directory, so the final rename stays atomic */
    if (fd < 0) {
        s = sw_err_set(err, SW_E_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(tmp);
        return s;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a model file is meant to be shared */
    wout o = {.f = fdopen(fd, "wb")};
    if (!o.f) {
        s = sw_err_set(err, SW_E_IO, "%s: fdopen: %s", tmp, strerror(errno));
        close(fd);
        goto fail;
    }
    setvbuf(o.f, NULL, _IOFBF, 1 << 20);
    s = write_body(w, &o, path, a, err);
    if (s) {
        fclose(o.f);
        goto fail;
    }
    if (o.failed || fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
        s = sw_err_set(err, SW_E_IO, "%s: write failed: %s", tmp, strerror(errno));
        fclose(o.f);
        goto fail;
    }
    if (fclose(o.f) != 0) {
        s = sw_err_set(err, SW_E_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        s = sw_err_set(err, SW_E_IO, "%s: cannot rename %s into place: %s", path, tmp,
                       strerror(errno));
        goto fail;
    }
    free(tmp);
    return SW_OK;
fail:
    unlink(tmp);
    free(tmp);
    return s;
}
