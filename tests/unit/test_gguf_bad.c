/* test_gguf_bad.c — the bad-file corpus. A small valid file is made with the
 * writer, its fields are located by a walker written here (independent of the
 * reader), and each case corrupts one field: the reader must fail with the right
 * status and a message naming the field and its byte offset. Every truncation and
 * a set of single-byte corruptions must fail cleanly (run under ASan/UBSan). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"

/* ---- the base file and where its fields are ---- */

#define NKV 7
#define NT 3

typedef struct layout {
    size_t n_tensors_at, n_kv_at;
    size_t key_len_at[NKV], key_at[NKV], type_at[NKV], val_at[NKV];
    size_t str_elem_at[3]; /* test.strs element length fields */
    size_t name_len_at[NT], name_at[NT], ndims_at[NT], ne_at[NT][4], ttype_at[NT], off_at[NT];
    size_t info_end, data_offset, data_end;
} layout;

static uint8_t *g_base;
static size_t g_size;
static layout L;

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int k = 0; k < 8; k++) p[k] = (uint8_t)(v >> (8 * k));
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

/* Walk the base file by the GGUF spec; only the value types it uses. */
static void walk(void) {
    size_t p = 8;
    L.n_tensors_at = p;
    p += 8;
    L.n_kv_at = p;
    p += 8;
    assert_int_equal(rd64(g_base + L.n_kv_at), NKV);
    assert_int_equal(rd64(g_base + L.n_tensors_at), NT);
    for (int i = 0; i < NKV; i++) {
        L.key_len_at[i] = p;
        L.key_at[i] = p + 8;
        p += 8 + rd64(g_base + p);
        L.type_at[i] = p;
        uint32_t t = rd32(g_base + p);
        p += 4;
        L.val_at[i] = p;
        if (t == SW_GGUF_STRING) p += 8 + rd64(g_base + p);
        else if (t == SW_GGUF_UINT32 || t == SW_GGUF_FLOAT32) p += 4;
        else if (t == SW_GGUF_BOOL) p += 1;
        else if (t == SW_GGUF_ARRAY) {
            uint32_t et = rd32(g_base + p);
            uint64_t n = rd64(g_base + p + 4);
            p += 12;
            for (uint64_t j = 0; j < n; j++) {
                if (et == SW_GGUF_STRING) {
                    L.str_elem_at[j] = p;
                    p += 8 + rd64(g_base + p);
                } else {
                    p += 4;
                }
            }
        } else fail_msg("walker: unexpected type %u", t);
    }
    for (int i = 0; i < NT; i++) {
        L.name_len_at[i] = p;
        L.name_at[i] = p + 8;
        p += 8 + rd64(g_base + p);
        L.ndims_at[i] = p;
        uint32_t nd = rd32(g_base + p);
        p += 4;
        for (uint32_t d = 0; d < nd; d++) {
            L.ne_at[i][d] = p;
            p += 8;
        }
        L.ttype_at[i] = p;
        p += 4;
        L.off_at[i] = p;
        p += 8;
    }
    L.info_end = p;
    L.data_offset = (p + 31) / 32 * 32;
}

static int setup(void **state) {
    (void)state;
    sw_gguf_writer *w = sw_gguf_writer_create();
    if (!w) return -1;
    const char *strs[] = {"x", "yy", "zzz"};
    float f[] = {1, 2, 3};
    uint8_t data[256];
    for (int i = 0; i < 256; i++) data[i] = (uint8_t)i;
    sw_err err;
    int64_t ne0[4] = {8, 2}, ne1[4] = {32, 2}, ne2[4] = {4};
    if (sw_gguf_writer_set_str(w, "general.architecture", "bad") ||
        sw_gguf_writer_set_u32(w, "general.alignment", 32) ||
        sw_gguf_writer_set_u32(w, "test.aaa", 5) || sw_gguf_writer_set_u32(w, "test.aab", 6) ||
        sw_gguf_writer_set_arr_str(w, "test.strs", strs, 3) ||
        sw_gguf_writer_set_arr(w, "test.f32s", SW_GGUF_FLOAT32, f, 3) ||
        sw_gguf_writer_set_bool(w, "test.flag", true) ||
        sw_gguf_writer_add_tensor(w, "t0", SW_TYPE_F32, 2, ne0, data, NULL, NULL, &err) ||
        sw_gguf_writer_add_tensor(w, "t1", SW_TYPE_Q8_0, 2, ne1, data, NULL, NULL, &err) ||
        sw_gguf_writer_add_tensor(w, "t2", SW_TYPE_F16, 1, ne2, data, NULL, NULL, &err))
        return -1;
    char path[512];
    const char *d = getenv("SW_TMP_DIR");
    snprintf(path, sizeof path, "%s/test_gguf_bad_%ld.gguf", d && d[0] ? d : "/tmp", (long)getpid());
    if (sw_gguf_writer_write(w, path, &err)) return -1;
    sw_gguf_writer_free(w);
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fseek(fp, 0, SEEK_END);
    g_size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    g_base = malloc(g_size);
    if (fread(g_base, 1, g_size, fp) != g_size) return -1;
    fclose(fp);
    remove(path);
    walk();
    /* t0: 64 bytes at 0, t1: 68 bytes at 64, t2: 8 bytes at 160 */
    L.data_end = L.data_offset + 168;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free(g_base);
    return 0;
}

/* Exercise every accessor of an opened file: must not crash or read out of bounds. */
static void exercise(const sw_gguf *g) {
    sw_err err;
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++) {
        int64_t iv;
        uint64_t uv;
        double dv;
        bool bv;
        const char *s;
        size_t len;
        (void)sw_gguf_kv_int(g, i, &iv, &err);
        (void)sw_gguf_kv_uint(g, i, &uv, &err);
        (void)sw_gguf_kv_float(g, i, &dv, &err);
        (void)sw_gguf_kv_bool(g, i, &bv, &err);
        if (sw_gguf_kv_str(g, i, &s, &len, &err) == SW_OK) assert_int_equal(s[len], '\0');
        uint64_t n = sw_gguf_kv_arr_n(g, i);
        for (uint64_t j = 0; j < n && j < 64; j++) {
            (void)sw_gguf_arr_int(g, i, j, &iv, &err);
            (void)sw_gguf_arr_float(g, i, j, &dv, &err);
            if (sw_gguf_arr_str(g, i, j, &s, &len, &err) == SW_OK && len) {
                volatile char c = s[len - 1];
                (void)c;
            }
        }
        assert_int_equal(sw_gguf_find_key(g, sw_gguf_kv_key(g, i)) >= 0, 1);
    }
    for (int64_t i = 0; i < sw_gguf_n_tensors(g); i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        assert_non_null(sw_gguf_find_tensor(g, t->name));
        const volatile uint8_t *p = t->data;
        volatile uint8_t a = p[0], b = p[t->nbytes - 1];
        (void)a;
        (void)b;
    }
}

/* Open an exact-size heap copy (so ASan sees any read past the end). */
static sw_status open_copy(const uint8_t *buf, size_t n, sw_err *err, bool run_accessors) {
    uint8_t *b = malloc(n ? n : 1);
    if (n) memcpy(b, buf, n);
    sw_gguf *g = NULL;
    err->msg[0] = '\0';
    sw_status s = sw_gguf_open_memory(b, n, "bad.gguf", &g, err);
    if (s == SW_OK) {
        if (run_accessors) exercise(g);
        sw_gguf_free(g);
    } else {
        assert_null(g);
    }
    free(b);
    return s;
}

static uint8_t *mutable_copy(void) {
    uint8_t *b = malloc(g_size);
    memcpy(b, g_base, g_size);
    return b;
}

/* Expect status st and every given substring in the message. */
static void expect(const uint8_t *b, size_t n, sw_status st, const char *s1, const char *s2) {
    sw_err err;
    sw_status s = open_copy(b, n, &err, true);
    if (s != st || (s1 && !strstr(err.msg, s1)) || (s2 && !strstr(err.msg, s2)))
        fail_msg("expected status %d with '%s' / '%s', got %d: %s", st, s1 ? s1 : "",
                 s2 ? s2 : "", s, err.msg);
    if (st != SW_OK) assert_non_null(strstr(err.msg, "bad.gguf"));
}

static const char *at(size_t off) {
    static char buf[8][48];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "at byte offset %zu", off);
    return buf[k];
}

/* ---- cases ---- */

static void test_base_is_valid(void **state) {
    (void)state;
    expect(g_base, g_size, SW_OK, NULL, NULL);
    assert_true(g_size >= L.data_end);
}

static void test_every_truncation(void **state) {
    (void)state;
    for (size_t n = 0; n < g_size; n++) {
        sw_err err;
        sw_status s = open_copy(g_base, n, &err, true);
        if (n >= L.data_end) { /* only trailing padding is missing: still valid */
            assert_int_equal(s, SW_OK);
            continue;
        }
        if (s != SW_E_FORMAT || !strstr(err.msg, "byte offset") || !strstr(err.msg, "bad.gguf"))
            fail_msg("prefix of %zu bytes: status %d, message '%s'", n, s, err.msg);
    }
}

static void test_header(void **state) {
    (void)state;
    uint8_t *b = mutable_copy();
    memcpy(b, "GGUX", 4);
    expect(b, g_size, SW_E_FORMAT, "magic", at(0));
    memcpy(b, "GGUF", 4);
    wr32(b + 4, 1);
    expect(b, g_size, SW_E_UNSUPPORTED, "GGUF version 1 is no longer supported", "re-convert");
    wr32(b + 4, 4);
    expect(b, g_size, SW_E_UNSUPPORTED, "version 4", at(4));
    wr32(b + 4, 0x03000000u);
    expect(b, g_size, SW_E_UNSUPPORTED, "big-endian", NULL);
    wr32(b + 4, 2); /* v2 has the same layout */
    expect(b, g_size, SW_OK, NULL, NULL);
    wr32(b + 4, 3);

    wr64(b + L.n_kv_at, UINT64_MAX);
    expect(b, g_size, SW_E_FORMAT, "n_kv = 18446744073709551615", at(L.n_kv_at));
    wr64(b + L.n_kv_at, 1ull << 63);
    expect(b, g_size, SW_E_FORMAT, "n_kv", NULL);
    wr64(b + L.n_kv_at, 100);
    expect(b, g_size, SW_E_FORMAT, "n_kv = 100", NULL);
    wr64(b + L.n_kv_at, NKV + 1); /* fits the bound: the extra KV eats a tensor info */
    expect(b, g_size, SW_E_FORMAT, "tensor info 0", NULL);
    wr64(b + L.n_kv_at, NKV);

    wr64(b + L.n_tensors_at, UINT64_MAX);
    expect(b, g_size, SW_E_FORMAT, "n_tensors = 18446744073709551615", at(L.n_tensors_at));
    wr64(b + L.n_tensors_at, 1ull << 62);
    expect(b, g_size, SW_E_FORMAT, "n_tensors", NULL);
    /* one more tensor info than written: it is read out of the padding and data
     * (an empty name is allowed, as in llama.cpp), and the offsets stop adding up */
    wr64(b + L.n_tensors_at, NT + 1);
    expect(b, g_size, SW_E_FORMAT, "tensor info", NULL);
    free(b);
}

static void test_kv_fields(void **state) {
    (void)state;
    uint8_t *b = mutable_copy();
    /* key length near 2^64 / 2^63 */
    wr64(b + L.key_len_at[2], UINT64_MAX);
    expect(b, g_size, SW_E_FORMAT, "KV 2: key: string length 18446744073709551615",
           at(L.key_len_at[2]));
    wr64(b + L.key_len_at[2], 1ull << 63);
    expect(b, g_size, SW_E_FORMAT, "string length 9223372036854775808", NULL);
    wr64(b + L.key_len_at[2], 8);

    /* a key with a NUL inside is a key (llama.cpp keeps it); an empty key is not */
    b[L.key_at[2] + 1] = 0;
    expect(b, g_size, SW_OK, NULL, NULL);
    b[L.key_at[2] + 1] = 'e';
    uint8_t *e = malloc(g_size); /* key length 0: the key's bytes are read as its type */
    memcpy(e, b, g_size);
    wr64(e + L.key_len_at[2], 0);
    expect(e, g_size, SW_E_FORMAT, "KV 2: key is empty", at(L.key_len_at[2]));
    free(e);
    /* string lengths over 2^30 are refused before anything is read */
    wr64(b + L.val_at[0], (1ull << 30) + 1);
    expect(b, g_size, SW_E_FORMAT, "string length 1073741825 exceeds the GGUF limit", NULL);
    wr64(b + L.val_at[0], 3);

    /* string value length */
    wr64(b + L.val_at[0], UINT64_MAX);
    expect(b, g_size, SW_E_FORMAT, "KV 0 ('general.architecture'): string value", at(L.val_at[0]));
    wr64(b + L.val_at[0], 3);

    /* unknown value types */
    wr32(b + L.type_at[2], 13);
    expect(b, g_size, SW_E_FORMAT, "value type 13", at(L.type_at[2]));
    wr32(b + L.type_at[2], UINT32_MAX);
    expect(b, g_size, SW_E_FORMAT, "value type 4294967295", NULL);
    wr32(b + L.type_at[2], SW_GGUF_UINT32);

    /* a bool is any byte, nonzero = true (llama.cpp reads it so) */
    b[L.val_at[6]] = 2;
    expect(b, g_size, SW_OK, NULL, NULL);
    b[L.val_at[6]] = 1;

    /* arrays: nested, unknown element type, lengths near 2^64 */
    wr32(b + L.val_at[5], SW_GGUF_ARRAY);
    expect(b, g_size, SW_E_UNSUPPORTED, "nested arrays", at(L.val_at[5]));
    wr32(b + L.val_at[5], 13);
    expect(b, g_size, SW_E_FORMAT, "array element type 13", at(L.val_at[5]));
    wr32(b + L.val_at[5], SW_GGUF_FLOAT32);
    const uint64_t lens[] = {UINT64_MAX, 1ull << 62 /* x4 wraps to 0 */, 1ull << 61, 1000};
    for (int k = 0; k < 4; k++) {
        wr64(b + L.val_at[5] + 4, lens[k]);
        expect(b, g_size, SW_E_FORMAT, "('test.f32s'): array length", at(L.val_at[5] + 4));
    }
    wr64(b + L.val_at[5] + 4, 3);

    wr64(b + L.val_at[4] + 4, 1ull << 63);
    expect(b, g_size, SW_E_FORMAT, "('test.strs'): array length 9223372036854775808",
           at(L.val_at[4] + 4));
    wr64(b + L.val_at[4] + 4, 3);
    wr64(b + L.str_elem_at[1], UINT64_MAX);
    expect(b, g_size, SW_E_FORMAT, "array element 1: string length", at(L.str_elem_at[1]));
    wr64(b + L.str_elem_at[1], 2);

    /* a duplicate key is refused by name, whether or not the value repeats too
     * (llama.cpp refuses both) */
    b[L.key_at[3] + 7] = 'a'; /* test.aab -> test.aaa */
    expect(b, g_size, SW_E_FORMAT, "KV 3 ('test.aaa'): duplicate key 'test.aaa'",
           at(L.key_len_at[3]));
    wr32(b + L.val_at[3], 5);
    expect(b, g_size, SW_E_FORMAT, "duplicate key 'test.aaa' (first defined by KV 2)", NULL);
    free(b);
}

static void test_alignment(void **state) {
    (void)state;
    uint8_t *b = mutable_copy();
    wr32(b + L.val_at[1], 0);
    expect(b, g_size, SW_E_FORMAT, "general.alignment = 0 is not a nonzero power of two",
           at(L.val_at[1]));
    wr32(b + L.val_at[1], 3);
    expect(b, g_size, SW_E_FORMAT, "general.alignment = 3", NULL);
    /* a valid alignment the tensor offsets do not follow (t2 sits at 160, after
     * t1's 68 bytes padded to 64 it would be at 192) */
    wr32(b + L.val_at[1], 64);
    expect(b, g_size, SW_E_FORMAT, "('t2'): offset = 160 disagrees with the sizes declared",
           at(L.off_at[2]));
    /* only a uint32 will do, as in llama.cpp */
    wr32(b + L.val_at[1], 32);
    wr32(b + L.type_at[1], SW_GGUF_FLOAT32);
    expect(b, g_size, SW_E_FORMAT, "general.alignment has type float32, expected uint32", NULL);
    wr32(b + L.type_at[1], SW_GGUF_INT32);
    expect(b, g_size, SW_E_FORMAT, "general.alignment has type int32, expected uint32", NULL);
    free(b);
}

static void test_tensor_fields(void **state) {
    (void)state;
    uint8_t *b = mutable_copy();
    /* n_dims 5 (0 is a scalar in ggml: the following bytes are then read as the
     * type, so that file fails there) */
    wr32(b + L.ndims_at[1], 0);
    expect(b, g_size, SW_E_FORMAT, "tensor info 1 ('t1'): type = 32", at(L.ndims_at[1] + 4));
    wr32(b + L.ndims_at[1], 5);
    expect(b, g_size, SW_E_FORMAT, "n_dims = 5", at(L.ndims_at[1]));
    wr32(b + L.ndims_at[1], 2);

    /* a zero dimension is an empty tensor (valid in ggml): its data shrinks to 0
     * bytes, so the next offset no longer follows; negative and overflowing
     * dimensions are refused */
    wr64(b + L.ne_at[0][1], 0);
    expect(b, g_size, SW_E_FORMAT, "('t1'): offset = 64 disagrees with the sizes declared",
           at(L.off_at[1]));
    wr64(b + L.ne_at[0][1], 2);
    wr64(b + L.ne_at[0][0], 1ull << 63);
    expect(b, g_size, SW_E_FORMAT, "ne[0] = -9223372036854775808 is negative", at(L.ne_at[0][0]));
    wr64(b + L.ne_at[0][0], 1ull << 32);
    wr64(b + L.ne_at[0][1], 1ull << 32);
    expect(b, g_size, SW_E_FORMAT, "shape (4294967296, 4294967296, 1, 1): the element count",
           at(L.ne_at[0][0]));
    wr64(b + L.ne_at[0][0], 1ull << 62); /* elements fit int64, bytes (x4) do not */
    wr64(b + L.ne_at[0][1], 1);
    expect(b, g_size, SW_E_FORMAT, "size in bytes overflows", NULL);
    wr64(b + L.ne_at[0][0], 8);
    wr64(b + L.ne_at[0][1], 2);

    /* unknown / removed tensor types */
    wr32(b + L.ttype_at[2], 4);
    expect(b, g_size, SW_E_FORMAT, "('t2'): type = 4 is not a ggml tensor type",
           at(L.ttype_at[2]));
    wr32(b + L.ttype_at[2], 1000);
    expect(b, g_size, SW_E_FORMAT, "type = 1000", NULL);
    wr32(b + L.ttype_at[2], SW_TYPE_F16);

    /* row length not a multiple of the block size */
    wr64(b + L.ne_at[1][0], 16);
    expect(b, g_size, SW_E_FORMAT, "ne[0] = 16 is not a multiple of the q8_0 block size 32",
           at(L.ne_at[1][0]));
    wr64(b + L.ne_at[1][0], 32);

    /* offsets must be exactly the padded sizes before them: misaligned,
     * overlapping, a gap, far away, near 2^64 all disagree */
    const uint64_t bad_off[] = {65, 32, 96, 4096, UINT64_MAX - 31};
    for (int k = 0; k < 5; k++) {
        wr64(b + L.off_at[1], bad_off[k]);
        expect(b, g_size, SW_E_FORMAT, "('t1'): offset", "disagrees with the sizes declared");
    }
    wr64(b + L.off_at[1], 64);
    /* the last tensor's data cut off by the end of the file */
    expect(b, L.data_end - 1, SW_E_FORMAT, "('t2'): offset = 160 + 8 bytes",
           "past the end of the file");

    /* duplicate tensor names */
    b[L.name_at[2] + 1] = '0';
    expect(b, g_size, SW_E_FORMAT, "tensor info 2 ('t0'): duplicate tensor name",
           at(L.name_len_at[2]));
    b[L.name_at[2] + 1] = '2';
    expect(b, g_size, SW_OK, NULL, NULL);
    /* a name cut at an embedded NUL, as ggml stores names: 't\0' duplicates 't'? no:
     * 't0' with its '0' made NUL is 't', a new name, and the file stays valid */
    b[L.name_at[0] + 1] = 0;
    expect(b, g_size, SW_OK, NULL, NULL);
    b[L.name_at[0] + 1] = '0';
    free(b);
}

/* Every byte set to a few interesting values: must never crash; failures must
 * carry a message, successes must survive every accessor. */
static void test_byte_corruptions(void **state) {
    (void)state;
    const uint8_t vals[] = {0x00, 0xff, 0x80, 0x01, 0x7f, 0x40};
    uint8_t *b = mutable_copy();
    int failures = 0;
    for (size_t i = 0; i < L.info_end; i++) {
        uint8_t orig = b[i];
        for (size_t v = 0; v < sizeof vals; v++) {
            if (vals[v] == orig) continue;
            b[i] = vals[v];
            sw_err err;
            sw_status s = open_copy(b, g_size, &err, true);
            if (s != SW_OK) {
                failures++;
                if (s != SW_E_FORMAT && s != SW_E_UNSUPPORTED)
                    fail_msg("byte %zu = 0x%02x: unexpected status %d: %s", i, vals[v], s, err.msg);
                assert_true(strlen(err.msg) > 10);
                assert_non_null(strstr(err.msg, "bad.gguf"));
            }
        }
        b[i] = orig;
    }
    assert_true(failures > 0);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_is_valid),   cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_header),          cmocka_unit_test(test_kv_fields),
        cmocka_unit_test(test_alignment),       cmocka_unit_test(test_tensor_fields),
        cmocka_unit_test(test_byte_corruptions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
