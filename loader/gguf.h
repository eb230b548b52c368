/* gguf.h — GGUF v2/v3 reader (mmap, strict validation) and v3 writer.
 *
 * Reader: sw_gguf_open maps the file read-only, validates every count, length,
 * offset, dimension and type against the file size and against overflow, and
 * indexes metadata and tensor infos. Tensor data is never copied: tensor->data
 * points into the mapping and stays valid until sw_gguf_free. Errors name the
 * field and the byte offset at fault. GGUF v1 and big-endian files are rejected;
 * arrays of arrays are rejected as unsupported. A key repeated with a
 * byte-identical value is tolerated with a warning (llama.cpp's dbrx vocab does
 * this; lookups find the first); a key repeated with another value is an error.
 * A file without tensors may end before the aligned start of its data section.
 *
 * Writer: collect KV pairs and tensors, then sw_gguf_writer_write lays out a v3
 * file (general.alignment honoured, data padded) and streams tensor bytes. */
#ifndef SW_GGUF_H
#define SW_GGUF_H

#include "quant.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_gguf_vtype {
    SW_GGUF_UINT8 = 0,
    SW_GGUF_INT8 = 1,
    SW_GGUF_UINT16 = 2,
    SW_GGUF_INT16 = 3,
    SW_GGUF_UINT32 = 4,
    SW_GGUF_INT32 = 5,
    SW_GGUF_FLOAT32 = 6,
    SW_GGUF_BOOL = 7,
    SW_GGUF_STRING = 8,
    SW_GGUF_ARRAY = 9,
    SW_GGUF_UINT64 = 10,
    SW_GGUF_INT64 = 11,
    SW_GGUF_FLOAT64 = 12,
    SW_GGUF_VTYPE_COUNT
} sw_gguf_vtype;

#define SW_GGUF_MAX_DIMS 4
#define SW_GGUF_DEFAULT_ALIGNMENT 32

typedef struct sw_gguf_tensor {
    const char *name;               /* NUL-terminated copy, owned by the sw_gguf */
    uint32_t n_dims;                /* 1..4 */
    int64_t ne[SW_GGUF_MAX_DIMS];   /* ne[0] is the row length; unused dims are 1 */
    sw_type type;
    uint64_t offset;                /* relative to the data section */
    uint64_t nbytes;                /* computed from type and shape */
    const void *data;               /* borrowed: points into the mapping */
} sw_gguf_tensor;

typedef struct sw_gguf sw_gguf;

/* Open and validate. *out is returned to the caller (free with sw_gguf_free).
 * The reader accepts and refuses what llama.cpp's reader does (ggml's gguf.cpp
 * plus its model loader's check that tensor data lies inside the file): every
 * key at most once, tensor names under 64 bytes, tensor data in the order of
 * the infos with each offset exactly the padded size of the data before it,
 * general.alignment a uint32 power of two, strings and arrays under 2^30. */
sw_status sw_gguf_open(const char *path, sw_gguf **out, sw_err *err);
/* SW_GGUF_ALLOW_REPEATED_KEYS: accept a key repeated with a byte-identical
 * value (lookups see the first). llama.cpp refuses such files; some old ones
 * exist (its dbrx vocabulary repeats general.file_type). For tests and tools
 * that must read them anyway; never the default. */
#define SW_GGUF_ALLOW_REPEATED_KEYS 1u
sw_status sw_gguf_open_flags(const char *path, unsigned flags, sw_gguf **out, sw_err *err);
/* Same, over a caller's buffer (borrowed; must outlive the sw_gguf). Used by the
 * fuzzer and tests. name is used in error messages. */
sw_status sw_gguf_open_memory(const void *buf, size_t size, const char *name, sw_gguf **out,
                              sw_err *err);
void sw_gguf_free(sw_gguf *g);

const char *sw_gguf_path(const sw_gguf *g);
uint32_t sw_gguf_version(const sw_gguf *g);
uint64_t sw_gguf_alignment(const sw_gguf *g);
uint64_t sw_gguf_data_offset(const sw_gguf *g); /* start of the data section in the file */
uint64_t sw_gguf_file_size(const sw_gguf *g);

/* ---- metadata ---- */
int64_t sw_gguf_n_kv(const sw_gguf *g);
int64_t sw_gguf_find_key(const sw_gguf *g, const char *key); /* index or -1 */
const char *sw_gguf_kv_key(const sw_gguf *g, int64_t i);
sw_gguf_vtype sw_gguf_kv_type(const sw_gguf *g, int64_t i);
/* For arrays: element type and count (SW_GGUF_VTYPE_COUNT and 0 for non-arrays
 * and bad indices; sw_gguf_kv_type gives SW_GGUF_VTYPE_COUNT for a bad index). */
sw_gguf_vtype sw_gguf_kv_arr_type(const sw_gguf *g, int64_t i);
uint64_t sw_gguf_kv_arr_n(const sw_gguf *g, int64_t i);

/* Scalar accessors by index. get_int accepts every integer type (and bool)
 * and fails with SW_E_RANGE if the value does not fit int64; get_float accepts
 * f32/f64 and integers. Strings are not NUL-terminated in the file: the
 * returned pointer is into a NUL-terminated copy owned by the sw_gguf. */
sw_status sw_gguf_kv_int(const sw_gguf *g, int64_t i, int64_t *out, sw_err *err);
sw_status sw_gguf_kv_uint(const sw_gguf *g, int64_t i, uint64_t *out, sw_err *err);
sw_status sw_gguf_kv_float(const sw_gguf *g, int64_t i, double *out, sw_err *err);
sw_status sw_gguf_kv_bool(const sw_gguf *g, int64_t i, bool *out, sw_err *err);
sw_status sw_gguf_kv_str(const sw_gguf *g, int64_t i, const char **out, size_t *len, sw_err *err);

/* Array element accessors by KV index and element index (bounds-checked). */
sw_status sw_gguf_arr_int(const sw_gguf *g, int64_t i, uint64_t j, int64_t *out, sw_err *err);
sw_status sw_gguf_arr_float(const sw_gguf *g, int64_t i, uint64_t j, double *out, sw_err *err);
/* String elements: pointer into the mapping (NOT NUL-terminated) and length. */
sw_status sw_gguf_arr_str(const sw_gguf *g, int64_t i, uint64_t j, const char **out, size_t *len,
                          sw_err *err);

/* Raw packed little-endian elements of a numeric (non-string) array: *data
 * points into the mapping (borrowed, possibly unaligned), *n is the count. Lets
 * callers (tokenizer scores, writer copy) take a whole array at once. */
sw_status sw_gguf_kv_arr_data(const sw_gguf *g, int64_t i, const void **data, uint64_t *n,
                              sw_err *err);

/* Convenience by key. Missing key -> SW_E_NOT_FOUND (message names the key);
 * wrong type -> SW_E_FORMAT. */
sw_status sw_gguf_get_int(const sw_gguf *g, const char *key, int64_t *out, sw_err *err);
sw_status sw_gguf_get_float(const sw_gguf *g, const char *key, double *out, sw_err *err);
sw_status sw_gguf_get_bool(const sw_gguf *g, const char *key, bool *out, sw_err *err);
sw_status sw_gguf_get_str(const sw_gguf *g, const char *key, const char **out, sw_err *err);

/* ---- tensors ---- */
int64_t sw_gguf_n_tensors(const sw_gguf *g);
const sw_gguf_tensor *sw_gguf_tensor_at(const sw_gguf *g, int64_t i);
const sw_gguf_tensor *sw_gguf_find_tensor(const sw_gguf *g, const char *name); /* NULL if absent */

const char *sw_gguf_vtype_name(sw_gguf_vtype t);
/* Bytes of one scalar value of type t in a file; 0 for STRING, ARRAY, unknown. */
uint64_t sw_gguf_vtype_size(uint32_t t);

/* ---- writer ---- */
typedef struct sw_gguf_writer sw_gguf_writer;

/* Produces nbytes of tensor data into dst when the file is written. Called once
 * per tensor, in order, from sw_gguf_writer_write, with dst a writer-owned buffer
 * of exactly the tensor's size: only one tensor's bytes are in memory at a time.
 * A non-OK return aborts the write (no file is left behind); set err to say why. */
typedef sw_status (*sw_gguf_fill_fn)(void *ctx, void *dst, size_t nbytes, sw_err *err);

sw_gguf_writer *sw_gguf_writer_create(void); /* NULL on OOM */
void sw_gguf_writer_free(sw_gguf_writer *w);

/* Setting a key twice replaces the earlier value. Keys and strings are copied. */
sw_status sw_gguf_writer_set_u8(sw_gguf_writer *w, const char *key, uint8_t v);
sw_status sw_gguf_writer_set_i8(sw_gguf_writer *w, const char *key, int8_t v);
sw_status sw_gguf_writer_set_u16(sw_gguf_writer *w, const char *key, uint16_t v);
sw_status sw_gguf_writer_set_i16(sw_gguf_writer *w, const char *key, int16_t v);
sw_status sw_gguf_writer_set_u32(sw_gguf_writer *w, const char *key, uint32_t v);
sw_status sw_gguf_writer_set_i32(sw_gguf_writer *w, const char *key, int32_t v);
sw_status sw_gguf_writer_set_u64(sw_gguf_writer *w, const char *key, uint64_t v);
sw_status sw_gguf_writer_set_i64(sw_gguf_writer *w, const char *key, int64_t v);
sw_status sw_gguf_writer_set_f32(sw_gguf_writer *w, const char *key, float v);
sw_status sw_gguf_writer_set_f64(sw_gguf_writer *w, const char *key, double v);
sw_status sw_gguf_writer_set_bool(sw_gguf_writer *w, const char *key, bool v);
sw_status sw_gguf_writer_set_str(sw_gguf_writer *w, const char *key, const char *v);
/* Numeric array: elem_type is a scalar vtype; data holds n packed little-endian
 * elements (copied). */
sw_status sw_gguf_writer_set_arr(sw_gguf_writer *w, const char *key, sw_gguf_vtype elem_type,
                                 const void *data, uint64_t n);
sw_status sw_gguf_writer_set_arr_str(sw_gguf_writer *w, const char *key, const char *const *strs,
                                     uint64_t n);
/* Copy KV pair i of src (any type, arrays included). */
sw_status sw_gguf_writer_copy_kv(sw_gguf_writer *w, const sw_gguf *src, int64_t i);
sw_status sw_gguf_writer_remove_key(sw_gguf_writer *w, const char *key);

/* Add a tensor. data is borrowed until write returns (may be NULL if fill is
 * given). ne[0] must be a multiple of the type's block size. Duplicate names
 * are rejected. */
sw_status sw_gguf_writer_add_tensor(sw_gguf_writer *w, const char *name, sw_type type,
                                    uint32_t n_dims, const int64_t *ne, const void *data,
                                    sw_gguf_fill_fn fill, void *fill_ctx, sw_err *err);

/* Write the file (v3). Uses general.alignment if set (an integer, nonzero power
 * of two, else SW_E_INVALID_ARG), else 32; every tensor is padded to it. Writes
 * PATH.tmp.XXXXXX in the same directory, fsyncs and renames it over path, so a
 * failed write leaves any previous file untouched and no partial file. */
sw_status sw_gguf_writer_write(sw_gguf_writer *w, const char *path, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
