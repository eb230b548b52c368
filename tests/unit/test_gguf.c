/* test_gguf.c — GGUF reader and writer: round trip of every value type and of
 * tensors under an odd alignment (checked against the raw bytes, decoded here by
 * hand), accessor semantics, writer failure modes, files written by gguf-py
 * (tests/fuzz/corpus/gguf, an independent writer), and the real files under
 * $SW_SHARED_DIR/models (facts from their README). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "sw_test.h"

/* ---- helpers ---- */

static const char *tmp_dir(void) {
    const char *d = getenv("SW_TMP_DIR");
    return d && d[0] ? d : "/tmp";
}

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/test_gguf_%ld_%s", tmp_dir(), (long)getpid(), name);
}

static uint8_t *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A deterministic byte pattern, independent of any code under test. */
static void pattern(uint8_t *dst, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        dst[i] = (uint8_t)x;
    }
}

typedef struct fill_ctx {
    uint32_t seed;
    int calls;
    bool fail;
} fill_ctx;

static sw_status fill_pattern(void *ctx, void *dst, size_t nbytes, sw_err *err) {
    fill_ctx *f = ctx;
    f->calls++;
    if (f->fail) return sw_err_set(err, SW_E_IO, "source read failed (simulated)");
    pattern(dst, nbytes, f->seed);
    return SW_OK;
}

/* ---- round trip ---- */

#define RT_ALIGN 64

typedef struct rt_tensor {
    const char *name;
    sw_type type;
    uint32_t n_dims;
    int64_t ne[4];
    size_t nbytes; /* computed by hand from the GGUF block sizes */
    uint32_t seed;
    bool use_fill;
} rt_tensor;

static const rt_tensor k_rt_tensors[] = {
    {"tok_embd.weight", SW_TYPE_F32, 2, {5, 3, 1, 1}, 5 * 3 * 4, 11, false},
    {"blk.0.attn_q.weight", SW_TYPE_Q8_0, 2, {64, 3, 1, 1}, 2 * 34 * 3, 12, true},
    {"blk.0.ffn.weight", SW_TYPE_Q4_K, 3, {256, 2, 2, 1}, 144 * 4, 13, false},
    {"half", SW_TYPE_F16, 4, {3, 1, 2, 1}, 3 * 2 * 2, 14, true},
    {"q4", SW_TYPE_Q4_0, 1, {32, 1, 1, 1}, 18, 15, false},
    {"ids", SW_TYPE_I32, 1, {7, 1, 1, 1}, 28, 16, false},
};
#define RT_NT (sizeof k_rt_tensors / sizeof k_rt_tensors[0])

static const char *const k_strs[] = {"", "a", "hello world", "ünïcödé ✓", "tab\there"};

static void build_round_trip(const char *path, uint8_t **bufs) {
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    assert_int_equal(sw_gguf_writer_set_str(w, "general.architecture", "testarch"), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u32(w, "general.alignment", RT_ALIGN), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u8(w, "v.u8", 250), SW_OK);
    assert_int_equal(sw_gguf_writer_set_i8(w, "v.i8", -7), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u16(w, "v.u16", 60000), SW_OK);
    assert_int_equal(sw_gguf_writer_set_i16(w, "v.i16", -30000), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u32(w, "v.u32", 4000000000u), SW_OK);
    assert_int_equal(sw_gguf_writer_set_i32(w, "v.i32", -2000000000), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u64(w, "v.u64", UINT64_MAX), SW_OK);
    assert_int_equal(sw_gguf_writer_set_i64(w, "v.i64", INT64_MIN), SW_OK);
    assert_int_equal(sw_gguf_writer_set_f32(w, "v.f32", 0.1f), SW_OK);
    assert_int_equal(sw_gguf_writer_set_f64(w, "v.f64", -1e300), SW_OK);
    assert_int_equal(sw_gguf_writer_set_bool(w, "v.bool", true), SW_OK);
    assert_int_equal(sw_gguf_writer_set_str(w, "v.str", "spillway"), SW_OK);
    /* replaced later: must keep its place and take the new value */
    assert_int_equal(sw_gguf_writer_set_u32(w, "v.replaced", 1), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u32(w, "v.removed", 1), SW_OK);

    uint8_t a_u8[] = {0, 1, 255};
    int8_t a_i8[] = {-128, 0, 127};
    uint16_t a_u16[] = {0, 65535};
    int16_t a_i16[] = {-32768, 32767};
    uint32_t a_u32[] = {0, 4294967295u, 12345};
    int32_t a_i32[] = {INT32_MIN, -1, INT32_MAX};
    uint64_t a_u64[] = {UINT64_MAX, 0};
    int64_t a_i64[] = {INT64_MIN, INT64_MAX};
    float a_f32[] = {1.5f, -0.0f, 3.25f};
    double a_f64[] = {1e-300, -2.5};
    uint8_t a_bool[] = {1, 0, 1, 1};
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.u8", SW_GGUF_UINT8, a_u8, 3), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.i8", SW_GGUF_INT8, a_i8, 3), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.u16", SW_GGUF_UINT16, a_u16, 2), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.i16", SW_GGUF_INT16, a_i16, 2), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.u32", SW_GGUF_UINT32, a_u32, 3), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.i32", SW_GGUF_INT32, a_i32, 3), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.u64", SW_GGUF_UINT64, a_u64, 2), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.i64", SW_GGUF_INT64, a_i64, 2), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.f32", SW_GGUF_FLOAT32, a_f32, 3), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.f64", SW_GGUF_FLOAT64, a_f64, 2), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.bool", SW_GGUF_BOOL, a_bool, 4), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.empty", SW_GGUF_UINT32, NULL, 0), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr_str(w, "a.str", k_strs, 5), SW_OK);
    /* arrays of arrays and bools other than 0/1 cannot be written */
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.bad", SW_GGUF_ARRAY, a_u8, 1), SW_E_INVALID_ARG);
    uint8_t bad_bool = 2;
    assert_int_equal(sw_gguf_writer_set_arr(w, "a.bad", SW_GGUF_BOOL, &bad_bool, 1),
                     SW_E_INVALID_ARG);

    assert_int_equal(sw_gguf_writer_set_i32(w, "v.replaced", -42), SW_OK);
    assert_int_equal(sw_gguf_writer_remove_key(w, "v.removed"), SW_OK);
    assert_int_equal(sw_gguf_writer_remove_key(w, "v.removed"), SW_E_NOT_FOUND);

    static fill_ctx fctx[RT_NT];
    sw_err err;
    for (size_t i = 0; i < RT_NT; i++) {
        const rt_tensor *t = &k_rt_tensors[i];
        bufs[i] = malloc(t->nbytes);
        pattern(bufs[i], t->nbytes, t->seed);
        fctx[i] = (fill_ctx){t->seed, 0, false};
        sw_status s = sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                                                t->use_fill ? NULL : bufs[i],
                                                t->use_fill ? fill_pattern : NULL, &fctx[i], &err);
        assert_int_equal(s, SW_OK);
    }
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_OK);
    for (size_t i = 0; i < RT_NT; i++)
        assert_int_equal(fctx[i].calls, k_rt_tensors[i].use_fill ? 1 : 0);
    sw_gguf_writer_free(w);
}

static void test_round_trip(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "rt.gguf");
    uint8_t *bufs[RT_NT];
    build_round_trip(path, bufs);

    /* the raw header, decoded by hand */
    size_t fsize;
    uint8_t *raw = slurp(path, &fsize);
    assert_non_null(raw);
    assert_memory_equal(raw, "GGUF", 4);
    assert_int_equal(le32(raw + 4), 3);
    assert_int_equal(le64(raw + 8), RT_NT);
    assert_int_equal(le64(raw + 16), 28); /* arch, alignment, 13 scalars, 13 arrays */
    uint64_t klen = le64(raw + 24);
    assert_int_equal(klen, strlen("general.architecture"));
    assert_memory_equal(raw + 32, "general.architecture", klen);
    assert_int_equal(le32(raw + 32 + klen), SW_GGUF_STRING);

    sw_gguf *g = NULL;
    sw_err err;
    assert_int_equal(sw_gguf_open(path, &g, &err), SW_OK);
    assert_int_equal(sw_gguf_version(g), 3);
    assert_int_equal(sw_gguf_alignment(g), RT_ALIGN);
    assert_int_equal(sw_gguf_data_offset(g) % RT_ALIGN, 0);
    assert_int_equal(sw_gguf_file_size(g), fsize);
    assert_int_equal(sw_gguf_n_kv(g), 28);
    assert_string_equal(sw_gguf_kv_key(g, 0), "general.architecture");

    int64_t iv;
    uint64_t uv;
    double dv;
    bool bv;
    const char *sv;
    size_t slen;
    assert_int_equal(sw_gguf_get_int(g, "v.u8", &iv, &err), SW_OK);
    assert_int_equal(iv, 250);
    assert_int_equal(sw_gguf_get_int(g, "v.i8", &iv, &err), SW_OK);
    assert_int_equal(iv, -7);
    assert_int_equal(sw_gguf_get_int(g, "v.u16", &iv, &err), SW_OK);
    assert_int_equal(iv, 60000);
    assert_int_equal(sw_gguf_get_int(g, "v.i16", &iv, &err), SW_OK);
    assert_int_equal(iv, -30000);
    assert_int_equal(sw_gguf_get_int(g, "v.u32", &iv, &err), SW_OK);
    assert_int_equal(iv, 4000000000LL);
    assert_int_equal(sw_gguf_get_int(g, "v.i32", &iv, &err), SW_OK);
    assert_int_equal(iv, -2000000000LL);
    assert_int_equal(sw_gguf_get_int(g, "v.i64", &iv, &err), SW_OK);
    assert_true(iv == INT64_MIN);
    /* u64 max does not fit int64 but is readable as unsigned */
    assert_int_equal(sw_gguf_get_int(g, "v.u64", &iv, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "v.u64"));
    int64_t k = sw_gguf_find_key(g, "v.u64");
    assert_true(k >= 0);
    assert_int_equal(sw_gguf_kv_type(g, k), SW_GGUF_UINT64);
    assert_int_equal(sw_gguf_kv_uint(g, k, &uv, &err), SW_OK);
    assert_true(uv == UINT64_MAX);
    assert_int_equal(sw_gguf_kv_uint(g, sw_gguf_find_key(g, "v.i8"), &uv, &err), SW_E_RANGE);
    assert_int_equal(sw_gguf_get_float(g, "v.f32", &dv, &err), SW_OK);
    assert_true((float)dv == 0.1f);
    assert_int_equal(sw_gguf_get_float(g, "v.f64", &dv, &err), SW_OK);
    assert_true(dv == -1e300);
    assert_int_equal(sw_gguf_get_float(g, "v.u16", &dv, &err), SW_OK); /* ints convert */
    assert_true(dv == 60000.0);
    assert_int_equal(sw_gguf_get_bool(g, "v.bool", &bv, &err), SW_OK);
    assert_true(bv);
    assert_int_equal(sw_gguf_get_int(g, "v.bool", &iv, &err), SW_OK);
    assert_int_equal(iv, 1);
    assert_int_equal(sw_gguf_get_str(g, "v.str", &sv, &err), SW_OK);
    assert_string_equal(sv, "spillway");
    assert_int_equal(sw_gguf_get_str(g, "general.architecture", &sv, &err), SW_OK);
    assert_string_equal(sv, "testarch");
    assert_int_equal(sw_gguf_get_int(g, "v.replaced", &iv, &err), SW_OK);
    assert_int_equal(iv, -42);
    assert_int_equal(sw_gguf_find_key(g, "v.replaced"), 14); /* kept its position */
    assert_int_equal(sw_gguf_find_key(g, "v.removed"), -1);

    /* wrong types and missing keys */
    assert_int_equal(sw_gguf_get_str(g, "v.u8", &sv, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "v.u8"));
    assert_int_equal(sw_gguf_get_int(g, "v.str", &iv, &err), SW_E_FORMAT);
    assert_int_equal(sw_gguf_get_int(g, "v.f32", &iv, &err), SW_E_FORMAT);
    assert_int_equal(sw_gguf_get_bool(g, "v.u8", &bv, &err), SW_E_FORMAT);
    assert_int_equal(sw_gguf_get_float(g, "a.f32", &dv, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "array"));
    assert_int_equal(sw_gguf_get_int(g, "no.such.key", &iv, &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no.such.key"));
    assert_int_equal(sw_gguf_kv_int(g, 1000, &iv, &err), SW_E_INVALID_ARG);
    assert_null(sw_gguf_kv_key(g, -1));

    /* arrays */
    struct {
        const char *key;
        sw_gguf_vtype et;
        uint64_t n;
        int64_t ints[4];
    } ia[] = {
        {"a.u8", SW_GGUF_UINT8, 3, {0, 1, 255}},
        {"a.i8", SW_GGUF_INT8, 3, {-128, 0, 127}},
        {"a.u16", SW_GGUF_UINT16, 2, {0, 65535}},
        {"a.i16", SW_GGUF_INT16, 2, {-32768, 32767}},
        {"a.u32", SW_GGUF_UINT32, 3, {0, 4294967295LL, 12345}},
        {"a.i32", SW_GGUF_INT32, 3, {INT32_MIN, -1, INT32_MAX}},
        {"a.i64", SW_GGUF_INT64, 2, {INT64_MIN, INT64_MAX}},
        {"a.bool", SW_GGUF_BOOL, 4, {1, 0, 1, 1}},
    };
    for (size_t a = 0; a < sizeof ia / sizeof ia[0]; a++) {
        int64_t i = sw_gguf_find_key(g, ia[a].key);
        assert_true(i >= 0);
        assert_int_equal(sw_gguf_kv_type(g, i), SW_GGUF_ARRAY);
        assert_int_equal(sw_gguf_kv_arr_type(g, i), ia[a].et);
        assert_int_equal(sw_gguf_kv_arr_n(g, i), ia[a].n);
        for (uint64_t j = 0; j < ia[a].n; j++) {
            assert_int_equal(sw_gguf_arr_int(g, i, j, &iv, &err), SW_OK);
            assert_true(iv == ia[a].ints[j]);
        }
        assert_int_equal(sw_gguf_arr_int(g, i, ia[a].n, &iv, &err), SW_E_RANGE);
    }
    int64_t i = sw_gguf_find_key(g, "a.u64");
    assert_int_equal(sw_gguf_arr_int(g, i, 0, &iv, &err), SW_E_RANGE);
    assert_int_equal(sw_gguf_arr_int(g, i, 1, &iv, &err), SW_OK);
    assert_int_equal(iv, 0);
    const void *raw_arr;
    uint64_t n;
    assert_int_equal(sw_gguf_kv_arr_data(g, i, &raw_arr, &n, &err), SW_OK);
    assert_int_equal(n, 2);
    assert_true(le64(raw_arr) == UINT64_MAX);
    i = sw_gguf_find_key(g, "a.f32");
    for (uint64_t j = 0; j < 3; j++) {
        assert_int_equal(sw_gguf_arr_float(g, i, j, &dv, &err), SW_OK);
        float want[] = {1.5f, -0.0f, 3.25f};
        assert_true((float)dv == want[j] && !!signbit(dv) == !!signbit(want[j]));
    }
    assert_int_equal(sw_gguf_arr_int(g, i, 0, &iv, &err), SW_E_FORMAT);
    i = sw_gguf_find_key(g, "a.f64");
    assert_int_equal(sw_gguf_arr_float(g, i, 0, &dv, &err), SW_OK);
    assert_true(dv == 1e-300);
    assert_int_equal(sw_gguf_arr_float(g, i, 1, &dv, &err), SW_OK);
    assert_true(dv == -2.5);
    i = sw_gguf_find_key(g, "a.empty");
    assert_int_equal(sw_gguf_kv_arr_n(g, i), 0);
    assert_int_equal(sw_gguf_arr_int(g, i, 0, &iv, &err), SW_E_RANGE);
    i = sw_gguf_find_key(g, "a.str");
    assert_int_equal(sw_gguf_kv_arr_type(g, i), SW_GGUF_STRING);
    assert_int_equal(sw_gguf_kv_arr_n(g, i), 5);
    for (uint64_t j = 0; j < 5; j++) {
        assert_int_equal(sw_gguf_arr_str(g, i, j, &sv, &slen, &err), SW_OK);
        assert_int_equal(slen, strlen(k_strs[j]));
        assert_memory_equal(sv, k_strs[j], slen);
    }
    assert_int_equal(sw_gguf_arr_str(g, i, 5, &sv, &slen, &err), SW_E_RANGE);
    assert_int_equal(sw_gguf_arr_int(g, i, 0, &iv, &err), SW_E_FORMAT);
    assert_int_equal(sw_gguf_kv_arr_data(g, i, &raw_arr, &n, &err), SW_E_FORMAT);

    /* tensors: shapes, sizes, aligned offsets, bytes; offsets checked against the
     * raw tensor-info bytes too */
    assert_int_equal(sw_gguf_n_tensors(g), RT_NT);
    uint64_t end = 0;
    for (size_t t = 0; t < RT_NT; t++) {
        const rt_tensor *want = &k_rt_tensors[t];
        const sw_gguf_tensor *got = sw_gguf_tensor_at(g, (int64_t)t);
        assert_non_null(got);
        assert_ptr_equal(sw_gguf_find_tensor(g, want->name), got);
        assert_string_equal(got->name, want->name);
        assert_int_equal(got->type, want->type);
        assert_int_equal(got->n_dims, want->n_dims);
        for (int d = 0; d < 4; d++) assert_int_equal(got->ne[d], want->ne[d]);
        assert_int_equal(got->nbytes, want->nbytes);
        assert_int_equal(got->offset % RT_ALIGN, 0);
        assert_true(got->offset >= end);
        end = got->offset + got->nbytes;
        assert_memory_equal(got->data, bufs[t], want->nbytes);
        assert_memory_equal(raw + sw_gguf_data_offset(g) + got->offset, bufs[t], want->nbytes);
    }
    assert_null(sw_gguf_find_tensor(g, "absent"));
    assert_null(sw_gguf_tensor_at(g, (int64_t)RT_NT));
    /* the last tensor is padded to the alignment as well */
    assert_int_equal(fsize, sw_gguf_data_offset(g) + ((end + RT_ALIGN - 1) / RT_ALIGN) * RT_ALIGN);

    /* copy every KV and tensor into a second writer: the file must be identical */
    char path2[512];
    tmp_path(path2, sizeof path2, "rt2.gguf");
    sw_gguf_writer *w = sw_gguf_writer_create();
    for (int64_t q = 0; q < sw_gguf_n_kv(g); q++) assert_int_equal(sw_gguf_writer_copy_kv(w, g, q), SW_OK);
    for (int64_t q = 0; q < sw_gguf_n_tensors(g); q++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, q);
        assert_int_equal(sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                                   NULL, NULL, &err),
                         SW_OK);
    }
    assert_int_equal(sw_gguf_writer_write(w, path2, &err), SW_OK);
    sw_gguf_writer_free(w);
    size_t fsize2;
    uint8_t *raw2 = slurp(path2, &fsize2);
    assert_non_null(raw2);
    assert_int_equal(fsize2, fsize);
    assert_memory_equal(raw2, raw, fsize);

    /* open_memory over the same bytes gives the same view */
    sw_gguf *gm = NULL;
    assert_int_equal(sw_gguf_open_memory(raw2, fsize2, "mem", &gm, &err), SW_OK);
    assert_string_equal(sw_gguf_path(gm), "mem");
    assert_int_equal(sw_gguf_n_kv(gm), 28);
    assert_ptr_equal(sw_gguf_tensor_at(gm, 0)->data, raw2 + sw_gguf_data_offset(gm));
    sw_gguf_free(gm);

    sw_gguf_free(g);
    free(raw);
    free(raw2);
    for (size_t t = 0; t < RT_NT; t++) free(bufs[t]);
    remove(path);
    remove(path2);
}

/* ---- writer failure modes ---- */

static int count_tmp_leftovers(const char *base) {
    DIR *d = opendir(tmp_dir());
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    size_t bl = strlen(base);
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, base, bl)) n++;
    closedir(d);
    return n;
}

static void test_writer_errors(void **state) {
    (void)state;
    sw_err err;
    sw_gguf_writer *w = sw_gguf_writer_create();
    int64_t ne[4] = {32, 2, 1, 1};
    uint8_t data[4096] = {0};
    assert_int_equal(sw_gguf_writer_add_tensor(w, "x", SW_TYPE_Q8_0, 2, ne, data, NULL, NULL, &err),
                     SW_OK);
    assert_int_equal(sw_gguf_writer_add_tensor(w, "x", SW_TYPE_F32, 1, ne, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "duplicate"));
    int64_t ne_bad[4] = {48, 1, 1, 1};
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", SW_TYPE_Q8_0, 1, ne_bad, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "block size"));
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", SW_TYPE_F32, 0, ne, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", SW_TYPE_F32, 5, ne, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", (sw_type)4, 1, ne, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    int64_t ne_zero[4] = {4, 0, 1, 1};
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", SW_TYPE_F32, 2, ne_zero, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    int64_t ne_big[4] = {INT64_MAX / 2, 4, 1, 1};
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", SW_TYPE_F32, 2, ne_big, data, NULL, NULL, &err),
                     SW_E_INVALID_ARG);
    assert_int_equal(sw_gguf_writer_add_tensor(w, "y", SW_TYPE_F32, 1, ne, NULL, NULL, NULL, &err),
                     SW_E_INVALID_ARG);

    char path[512];
    tmp_path(path, sizeof path, "werr.gguf");
    char base[128];
    snprintf(base, sizeof base, "test_gguf_%ld_werr", (long)getpid());
    /* bad alignments are refused at write time, leaving nothing behind */
    assert_int_equal(sw_gguf_writer_set_u32(w, "general.alignment", 3), SW_OK);
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "general.alignment"));
    assert_int_equal(sw_gguf_writer_set_u32(w, "general.alignment", 0), SW_OK);
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_E_INVALID_ARG);
    assert_int_equal(sw_gguf_writer_set_str(w, "general.alignment", "64"), SW_OK);
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_E_INVALID_ARG);
    assert_int_equal(count_tmp_leftovers(base), 0);
    assert_int_equal(sw_gguf_writer_remove_key(w, "general.alignment"), SW_OK);

    /* a failing fill callback: error names the tensor; no file, no temp file */
    fill_ctx f = {1, 0, true};
    int64_t ne2[4] = {8, 1, 1, 1};
    assert_int_equal(sw_gguf_writer_add_tensor(w, "streamed", SW_TYPE_F32, 1, ne2, NULL,
                                               fill_pattern, &f, &err),
                     SW_OK);
    /* an existing file at the target survives a failed write untouched */
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("previous", fp);
    fclose(fp);
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_E_IO);
    assert_non_null(strstr(err.msg, "streamed"));
    assert_non_null(strstr(err.msg, "simulated"));
    size_t sz;
    uint8_t *prev = slurp(path, &sz);
    assert_non_null(prev);
    assert_int_equal(sz, 8);
    assert_memory_equal(prev, "previous", 8);
    free(prev);
    assert_int_equal(count_tmp_leftovers(base), 1); /* only the file itself */

    /* unwritable destination */
    assert_int_equal(sw_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err), SW_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.gguf"));

    /* now succeed: the target is replaced */
    f.fail = false;
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_OK);
    sw_gguf *g = NULL;
    assert_int_equal(sw_gguf_open(path, &g, &err), SW_OK);
    assert_int_equal(sw_gguf_n_tensors(g), 2);
    uint8_t want[32];
    pattern(want, 32, 1);
    assert_memory_equal(sw_gguf_find_tensor(g, "streamed")->data, want, 32);
    sw_gguf_free(g);
    remove(path);
    assert_int_equal(count_tmp_leftovers(base), 0);

    /* API misuse is reported, never crashes */
    assert_int_equal(sw_gguf_writer_set_u32(NULL, "k", 1), SW_E_INVALID_ARG);
    assert_int_equal(sw_gguf_writer_set_u32(w, "", 1), SW_E_INVALID_ARG);
    assert_int_equal(sw_gguf_writer_set_str(w, "k", NULL), SW_E_INVALID_ARG);
    sw_gguf_writer_free(w);
    sw_gguf_writer_free(NULL);
    sw_gguf_free(NULL);
    assert_int_equal(sw_gguf_n_kv(NULL), 0);
    assert_int_equal(sw_gguf_find_key(NULL, "x"), -1);
    assert_null(sw_gguf_find_tensor(NULL, "x"));
    assert_int_equal(sw_gguf_open("/nonexistent-dir/x.gguf", &g, &err), SW_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.gguf"));
    assert_int_equal(sw_gguf_open(tmp_dir(), &g, &err), SW_E_IO); /* a directory */
    assert_string_equal(sw_gguf_vtype_name(SW_GGUF_FLOAT32), "float32");
    assert_string_equal(sw_gguf_vtype_name((sw_gguf_vtype)99), "unknown");
}

static void test_empty_file(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "empty.gguf");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    sw_gguf *g = NULL;
    sw_err err;
    assert_int_equal(sw_gguf_open(path, &g, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    assert_non_null(strstr(err.msg, "byte offset 0"));
    assert_null(g);
    remove(path);
}

/* A vocab-style file (0 tensors) written by us: may end before the aligned data start. */
static void test_vocab_only_unpadded(void **state) {
    (void)state;
    sw_gguf_writer *w = sw_gguf_writer_create();
    const char *toks[] = {"<s>", "x", "yy"};
    assert_int_equal(sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3), SW_OK);
    char path[512];
    tmp_path(path, sizeof path, "vocab.gguf");
    sw_err err;
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_OK);
    sw_gguf_writer_free(w);
    size_t n;
    uint8_t *raw = slurp(path, &n);
    assert_non_null(raw);
    /* the header + KV is 24 + 8+21+4+4+8 + 3*8+6 = 99 bytes; writer pads to 128 */
    assert_int_equal(n, 128);
    for (size_t cut = 99; cut <= n; cut++) {
        sw_gguf *g = NULL;
        uint8_t *b = malloc(cut);
        memcpy(b, raw, cut);
        assert_int_equal(sw_gguf_open_memory(b, cut, "vocab", &g, &err), SW_OK);
        assert_int_equal(sw_gguf_data_offset(g), 128);
        assert_int_equal(sw_gguf_n_tensors(g), 0);
        sw_gguf_free(g);
        free(b);
    }
    free(raw);
    remove(path);
}

/* ---- seed files written by gguf-py ---- */

static bool seed_path(char *buf, size_t cap, const char *name) {
    const char *src = getenv("SW_SOURCE_DIR");
    if (!src || !src[0]) return false;
    snprintf(buf, cap, "%s/tests/fuzz/corpus/gguf/%s", src, name);
    struct stat st;
    return stat(buf, &st) == 0;
}

static void test_gguf_py_files(void **state) {
    (void)state;
    char p[1024];
    if (!seed_path(p, sizeof p, "seed_model.gguf")) {
        print_message("SKIP: SW_SOURCE_DIR/tests/fuzz/corpus/gguf not found\n");
        skip();
    }
    sw_gguf *g = NULL;
    sw_err err;
    int64_t iv;
    double dv;
    const char *sv;
    for (int v = 0; v < 2; v++) {
        seed_path(p, sizeof p, v ? "seed_v2.gguf" : "seed_model.gguf");
        assert_int_equal(sw_gguf_open(p, &g, &err), SW_OK);
        assert_int_equal(sw_gguf_version(g), v ? 2 : 3);
        assert_int_equal(sw_gguf_get_str(g, "general.architecture", &sv, &err), SW_OK);
        assert_string_equal(sv, "seedarch");
        assert_int_equal(sw_gguf_get_int(g, "seed.n", &iv, &err), SW_OK);
        assert_int_equal(iv, 7);
        assert_int_equal(sw_gguf_get_float(g, "seed.eps", &dv, &err), SW_OK);
        assert_true(dv == 0.5);
        const sw_gguf_tensor *a = sw_gguf_find_tensor(g, "a");
        assert_non_null(a);
        assert_int_equal(a->type, SW_TYPE_F32);
        assert_int_equal(a->ne[0], 8);
        assert_int_equal(a->ne[1], 2);
        for (int k = 0; k < 16; k++) {
            float f;
            memcpy(&f, (const uint8_t *)a->data + 4 * k, 4);
            assert_true(f == (float)k);
        }
        const sw_gguf_tensor *b = sw_gguf_find_tensor(g, "b");
        assert_non_null(b);
        assert_int_equal(b->type, SW_TYPE_Q8_0);
        assert_int_equal(b->ne[0], 32);
        assert_int_equal(b->nbytes, 34);
        const uint8_t *q = b->data;
        assert_int_equal(q[1], 0x3c);
        assert_int_equal((int8_t)q[2 + 31], 31);
        sw_gguf_free(g);
    }
    seed_path(p, sizeof p, "seed_vocab.gguf");
    assert_int_equal(sw_gguf_open(p, &g, &err), SW_OK);
    int64_t i = sw_gguf_find_key(g, "tokenizer.ggml.tokens");
    const char *want[] = {"<unk>", "a", "bb", ""};
    for (uint64_t j = 0; j < 4; j++) {
        size_t len;
        assert_int_equal(sw_gguf_arr_str(g, i, j, &sv, &len, &err), SW_OK);
        assert_int_equal(len, strlen(want[j]));
        assert_memory_equal(sv, want[j], len);
    }
    i = sw_gguf_find_key(g, "tokenizer.ggml.scores");
    assert_int_equal(sw_gguf_arr_float(g, i, 2, &dv, &err), SW_OK);
    assert_true(dv == -2.5);
    sw_gguf_free(g);

    seed_path(p, sizeof p, "seed_types.gguf");
    assert_int_equal(sw_gguf_open(p, &g, &err), SW_OK);
    assert_int_equal(sw_gguf_alignment(g), 64);
    assert_int_equal(sw_gguf_data_offset(g) % 64, 0);
    assert_int_equal(sw_gguf_get_int(g, "t.i8", &iv, &err), SW_OK);
    assert_int_equal(iv, -128);
    assert_int_equal(sw_gguf_get_int(g, "t.i16", &iv, &err), SW_OK);
    assert_int_equal(iv, -32768);
    assert_int_equal(sw_gguf_get_int(g, "t.u32", &iv, &err), SW_OK);
    assert_int_equal(iv, 4294967295LL);
    assert_int_equal(sw_gguf_get_int(g, "t.i64", &iv, &err), SW_OK);
    assert_true(iv == INT64_MIN);
    assert_int_equal(sw_gguf_get_float(g, "t.f64", &dv, &err), SW_OK);
    assert_true(dv == 0.1);
    i = sw_gguf_find_key(g, "t.arr_i16");
    assert_int_equal(sw_gguf_arr_int(g, i, 2, &iv, &err), SW_OK);
    assert_int_equal(iv, -3);
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, "i");
    assert_non_null(t);
    assert_int_equal(t->type, SW_TYPE_I32);
    int32_t x;
    memcpy(&x, (const uint8_t *)t->data + 12, 4);
    assert_int_equal(x, -4);
    sw_gguf_free(g);

    seed_path(p, sizeof p, "seed_bigendian.gguf");
    assert_int_equal(sw_gguf_open(p, &g, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "big-endian"));
}

/* ---- real files in $SW_SHARED_DIR/models ---- */

static bool shared_path(char *buf, size_t cap, const char *rel) {
    const char *d = getenv("SW_SHARED_DIR");
    if (!d || !d[0]) return false;
    snprintf(buf, cap, "%s/models/%s", d, rel);
    struct stat st;
    return stat(buf, &st) == 0;
}

static void test_stories260k(void **state) {
    (void)state;
    char p[1024];
    if (!shared_path(p, sizeof p, "stories260K.gguf")) {
        print_message("SKIP: $SW_SHARED_DIR/models/stories260K.gguf not available\n");
        skip();
    }
    sw_gguf *g = NULL;
    sw_err err;
    assert_int_equal(sw_gguf_open(p, &g, &err), SW_OK);
    assert_int_equal(sw_gguf_version(g), 3);
    assert_int_equal(sw_gguf_n_tensors(g), 48);
    assert_int_equal(sw_gguf_n_kv(g), 19);
    assert_int_equal(sw_gguf_alignment(g), 32);
    assert_int_equal(sw_gguf_data_offset(g), 14176);
    assert_int_equal(sw_gguf_file_size(g), 1185376);
    const char *arch;
    assert_int_equal(sw_gguf_get_str(g, "general.architecture", &arch, &err), SW_OK);
    assert_string_equal(arch, "llama");
    int64_t v;
    assert_int_equal(sw_gguf_get_int(g, "llama.block_count", &v, &err), SW_OK);
    assert_int_equal(v, 5);
    assert_int_equal(sw_gguf_get_int(g, "llama.feed_forward_length", &v, &err), SW_OK);
    assert_int_equal(v, 172);
    assert_int_equal(sw_gguf_get_int(g, "llama.attention.head_count_kv", &v, &err), SW_OK);
    assert_int_equal(v, 4);
    int64_t k = sw_gguf_find_key(g, "tokenizer.ggml.tokens");
    assert_int_equal(sw_gguf_kv_arr_n(g, k), 512);
    const char *s;
    size_t len;
    assert_int_equal(sw_gguf_arr_str(g, k, 1, &s, &len, &err), SW_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "<s>", 3);
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    /* the README says the tensor data ends exactly at the end of the file */
    uint64_t end = 0, total = 0;
    for (int64_t i = 0; i < 48; i++) {
        const sw_gguf_tensor *x = sw_gguf_tensor_at(g, i);
        assert_int_equal(x->type, SW_TYPE_F32);
        if (x->offset + x->nbytes > end) end = x->offset + x->nbytes;
        total += x->nbytes;
    }
    assert_int_equal(sw_gguf_data_offset(g) + end, 1185376);
    assert_int_equal(total, 292800 * 4);
    /* data pointers really point at the file bytes: compare with a plain read */
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    const sw_gguf_tensor *e = sw_gguf_find_tensor(g, "output_norm.weight");
    uint8_t buf[256];
    fseek(f, (long)(sw_gguf_data_offset(g) + e->offset), SEEK_SET);
    assert_int_equal(fread(buf, 1, 256, f), 256);
    fclose(f);
    assert_memory_equal(buf, e->data, 256);
    sw_gguf_free(g);
}

static void test_vocab_files(void **state) {
    (void)state;
    char dir[1024];
    if (!shared_path(dir, sizeof dir, "vocab")) {
        print_message("SKIP: $SW_SHARED_DIR/models/vocab not available\n");
        skip();
    }
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf")) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        sw_gguf *g = NULL;
        sw_err err = {{0}};
        g = sw_test_open_vocab(p); /* refuses dbrx by default, as llama.cpp does */
        assert_int_equal(sw_gguf_version(g), 3);
        assert_int_equal(sw_gguf_n_tensors(g), 0);
        const char *arch;
        assert_int_equal(sw_gguf_get_str(g, "general.architecture", &arch, &err), SW_OK);
        int64_t k = sw_gguf_find_key(g, "tokenizer.ggml.tokens");
        assert_true(k >= 0);
        uint64_t nt = sw_gguf_kv_arr_n(g, k);
        assert_true(nt > 1000);
        /* touch every token string (O(1) each) */
        uint64_t bytes = 0;
        for (uint64_t j = 0; j < nt; j++) {
            const char *str;
            size_t len;
            assert_int_equal(sw_gguf_arr_str(g, k, j, &str, &len, &err), SW_OK);
            bytes += len;
        }
        assert_true(bytes >= nt / 2);
        if (!strcmp(e->d_name, "ggml-vocab-dbrx.gguf")) {
            /* repeats general.file_type with the same value: with the lenient flag,
             * accepted and the first kept */
            assert_int_equal(nt, 100352);
            assert_int_equal(sw_gguf_find_key(g, "general.file_type"), 10);
            const char *tmpl;
            assert_int_equal(sw_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &err), SW_OK);
        }
        if (!strcmp(e->d_name, "ggml-vocab-llama-spm.gguf")) assert_string_equal(arch, "llama");
        sw_gguf_free(g);
        n++;
    }
    closedir(d);
    assert_true(n >= 13);
}

static void test_legacy_files(void **state) {
    (void)state;
    char p[1024];
    if (!shared_path(p, sizeof p, "legacy/tinyllamas-stories-260k-f32.gguf")) {
        print_message("SKIP: $SW_SHARED_DIR/models/legacy not available\n");
        skip();
    }
    sw_gguf *g = NULL;
    sw_err err;
    assert_int_equal(sw_gguf_open(p, &g, &err), SW_E_UNSUPPORTED);
    assert_null(g);
    assert_non_null(strstr(err.msg, "tinyllamas-stories-260k-f32.gguf"));
    assert_non_null(strstr(err.msg, "GGUF version 1 is no longer supported"));
    assert_non_null(strstr(err.msg, "re-convert"));

    assert_true(shared_path(p, sizeof p, "legacy/tinyllamas-stories-260k-q8_0.gguf"));
    assert_int_equal(sw_gguf_open(p, &g, &err), SW_E_FORMAT);
    assert_null(g);
    assert_non_null(strstr(err.msg, "tinyllamas-stories-260k-q8_0.gguf"));
    assert_non_null(strstr(err.msg, "blk.0.ffn_down.weight"));
    assert_non_null(strstr(err.msg, "ne[0] = 172"));
    assert_non_null(strstr(err.msg, "block size 32"));
    assert_non_null(strstr(err.msg, "byte offset"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_empty_file),      cmocka_unit_test(test_vocab_only_unpadded),
        cmocka_unit_test(test_gguf_py_files),   cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_vocab_files),     cmocka_unit_test(test_legacy_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
