/* test_gguf_verdict.c — our reader accepts and refuses exactly the GGUF files
 * that llama.cpp's reader does. A set of files is built here byte by byte
 * (targeted malformations: repeated keys, long tensor names, offsets that
 * disagree with the sizes, odd shapes and types, limits, truncations) plus
 * seeded random corruptions of a valid file; llama.cpp's verdict on each one
 * is committed as data in tests/data/gguf_llama_verdicts.txt. It was produced
 * by running ggml's gguf_init_from_file (no_alloc = false, so the data must be
 * inside the file, as its model loader also requires) over the files this
 * test writes when SW_GGUF_VERDICT_DUMP=DIR is set; see that file's header.
 * A case missing from the data file fails the test (regenerate the data). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

/* ---- a raw little-endian GGUF builder ---- */

typedef struct bld {
    uint8_t *p;
    size_t n, cap;
} bld;

static void put(bld *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void u8(bld *b, uint8_t v) { put(b, &v, 1); }
static void u32(bld *b, uint32_t v) {
    for (int k = 0; k < 4; k++) u8(b, (uint8_t)(v >> (8 * k)));
}
static void u64(bld *b, uint64_t v) {
    for (int k = 0; k < 8; k++) u8(b, (uint8_t)(v >> (8 * k)));
}
static void str(bld *b, const char *s, size_t n) {
    u64(b, n);
    put(b, s, n);
}
static void cstr(bld *b, const char *s) { str(b, s, strlen(s)); }
static void header(bld *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv_str(bld *b, const char *k, const char *v) {
    cstr(b, k);
    u32(b, SW_GGUF_STRING);
    cstr(b, v);
}
static void kv_u32(bld *b, const char *k, uint32_t v) {
    cstr(b, k);
    u32(b, SW_GGUF_UINT32);
    u32(b, v);
}
static void tinfo(bld *b, const char *name, size_t name_len, uint32_t n_dims, const int64_t *ne,
                  uint32_t type, uint64_t off) {
    str(b, name, name_len);
    u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) u64(b, (uint64_t)ne[d]);
    u32(b, type);
    u64(b, off);
}
static void pad(bld *b, size_t align) {
    while (b->n % align) u8(b, 0);
}
static void data(bld *b, size_t n) {
    for (size_t i = 0; i < n; i++) u8(b, (uint8_t)(i * 7 + 1));
}
/* One tensor's data, padded after it as writers do (the default alignment). */
static void tdata(bld *b, size_t n) {
    data(b, n);
    pad(b, 32);
}

/* The valid base: 2 KVs, 3 tensors (f32 [4,2] = 32 B, q8_0 [32] = 34 B -> 64,
 * f16 [3] = 6 B) at offsets 0, 32, 96; alignment 32. */
static const int64_t NE_A[2] = {4, 2}, NE_B[1] = {32}, NE_C[1] = {3};
static void base_meta(bld *b) {
    kv_str(b, "general.architecture", "llama");
    kv_u32(b, "test.n", 7);
}
static void base_tensors(bld *b, uint64_t off_b, uint64_t off_c) {
    tinfo(b, "a", 1, 2, NE_A, SW_TYPE_F32, 0);
    tinfo(b, "b", 1, 1, NE_B, SW_TYPE_Q8_0, off_b);
    tinfo(b, "c", 1, 1, NE_C, SW_TYPE_F16, off_c);
}
static void base_data(bld *b) {
    pad(b, 32);
    tdata(b, 32);
    tdata(b, 34);
    tdata(b, 6);
}
static void base(bld *b) {
    header(b, 3, 3, 2);
    base_meta(b);
    base_tensors(b, 32, 96);
    base_data(b);
}

/* ---- the cases ---- */

typedef struct gcase {
    char name[64];
    uint8_t *p;
    size_t n;
} gcase;

typedef struct cases {
    gcase *v;
    size_t n, cap;
} cases;

static void add(cases *cs, bld *b, const char *fmt, ...) {
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 64;
        cs->v = realloc(cs->v, cs->cap * sizeof *cs->v);
        assert_non_null(cs->v);
    }
    gcase *c = &cs->v[cs->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    c->p = b->p;
    c->n = b->n;
    memset(b, 0, sizeof *b);
}

static void targeted(cases *cs) {
    bld b = {0};
    base(&b);
    add(cs, &b, "base");

    /* repeated keys: same value, another value, another type */
    header(&b, 3, 3, 3);
    base_meta(&b);
    kv_u32(&b, "test.n", 7);
    base_tensors(&b, 32, 96);
    base_data(&b);
    add(cs, &b, "dup_key_same_value");
    header(&b, 3, 3, 3);
    base_meta(&b);
    kv_u32(&b, "test.n", 8);
    base_tensors(&b, 32, 96);
    base_data(&b);
    add(cs, &b, "dup_key_other_value");
    header(&b, 3, 3, 3);
    base_meta(&b);
    kv_str(&b, "test.n", "x");
    base_tensors(&b, 32, 96);
    base_data(&b);
    add(cs, &b, "dup_key_other_type");
    header(&b, 3, 0, 2);
    kv_str(&b, "general.architecture", "llama");
    kv_str(&b, "general.architecture", "llama");
    add(cs, &b, "dup_key_no_tensors");

    /* keys: empty, with a NUL inside, differing only after a NUL */
    header(&b, 3, 0, 1);
    str(&b, "", 0);
    u32(&b, SW_GGUF_UINT32);
    u32(&b, 1);
    add(cs, &b, "key_empty");
    header(&b, 3, 0, 1);
    str(&b, "a\0b", 3);
    u32(&b, SW_GGUF_UINT32);
    u32(&b, 1);
    add(cs, &b, "key_with_nul");
    header(&b, 3, 0, 2);
    str(&b, "a\0b", 3);
    u32(&b, SW_GGUF_UINT32);
    u32(&b, 1);
    str(&b, "a\0c", 3);
    u32(&b, SW_GGUF_UINT32);
    u32(&b, 1);
    add(cs, &b, "keys_differ_after_nul");

    /* tensor names by length (the limit is 63 bytes), empty, NUL inside */
    const size_t lens[] = {62, 63, 64, 65, 200};
    for (int k = 0; k < 5; k++) {
        char name[256];
        memset(name, 'n', sizeof name);
        header(&b, 3, 1, 0);
        tinfo(&b, name, lens[k], 1, NE_C, SW_TYPE_F16, 0);
        pad(&b, 32);
        tdata(&b, 6);
        add(cs, &b, "tensor_name_len_%zu", lens[k]);
    }
    header(&b, 3, 1, 0);
    tinfo(&b, "", 0, 1, NE_C, SW_TYPE_F16, 0);
    pad(&b, 32);
    tdata(&b, 6);
    add(cs, &b, "tensor_name_empty");
    header(&b, 3, 2, 0);
    tinfo(&b, "x\0y", 3, 1, NE_C, SW_TYPE_F16, 0);
    tinfo(&b, "x", 1, 1, NE_C, SW_TYPE_F16, 32);
    pad(&b, 32);
    tdata(&b, 6);
    tdata(&b, 6);
    add(cs, &b, "tensor_names_equal_before_nul");
    header(&b, 3, 2, 0);
    tinfo(&b, "same", 4, 1, NE_C, SW_TYPE_F16, 0);
    tinfo(&b, "same", 4, 1, NE_C, SW_TYPE_F16, 32);
    pad(&b, 32);
    tdata(&b, 6);
    tdata(&b, 6);
    add(cs, &b, "tensor_name_duplicate");

    /* offsets: a gap, misaligned, overlapping, swapped order, past the end */
    const struct {
        const char *name;
        uint64_t b, c;
    } offs[] = {{"offset_gap", 64, 128},     {"offset_misaligned", 33, 96},
                {"offset_overlap", 16, 96},   {"offset_swapped", 96, 32},
                {"offset_c_early", 32, 64},   {"offset_c_late", 32, 128},
                {"offset_far", 32, 1u << 20}, {"offset_huge", 32, UINT64_MAX - 31}};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        header(&b, 3, 3, 2);
        base_meta(&b);
        base_tensors(&b, offs[k].b, offs[k].c);
        base_data(&b);
        add(cs, &b, "%s", offs[k].name);
    }
    /* data cut short at several points, and data with extra bytes after it */
    const size_t cut[] = {1, 5, 6, 7, 40};
    for (int k = 0; k < 5; k++) {
        base(&b);
        b.n -= cut[k];
        add(cs, &b, "data_truncated_%zu", cut[k]);
    }
    base(&b);
    data(&b, 100);
    add(cs, &b, "data_trailing_bytes");
    base(&b);
    b.n -= 26; /* the last tensor whole, the padding after it missing */
    add(cs, &b, "data_last_padding_missing");
    header(&b, 3, 3, 2); /* no data section at all */
    base_meta(&b);
    base_tensors(&b, 32, 96);
    add(cs, &b, "data_missing");

    /* shapes: scalar, zero and negative dimensions, 4 and 5 dims, overflow */
    header(&b, 3, 1, 0);
    tinfo(&b, "s", 1, 0, NULL, SW_TYPE_F32, 0);
    pad(&b, 32);
    tdata(&b, 4);
    add(cs, &b, "ndims_0_scalar");
    const int64_t z[2] = {4, 0}, neg[2] = {4, -2}, four[4] = {2, 1, 1, 3}, five[5] = {1, 1, 1, 1, 1};
    header(&b, 3, 1, 0);
    tinfo(&b, "z", 1, 2, z, SW_TYPE_F32, 0);
    pad(&b, 32);
    add(cs, &b, "ne_zero");
    header(&b, 3, 2, 0);
    tinfo(&b, "z", 1, 2, z, SW_TYPE_F32, 0);
    tinfo(&b, "c", 1, 1, NE_C, SW_TYPE_F16, 0);
    pad(&b, 32);
    tdata(&b, 6);
    add(cs, &b, "ne_zero_then_tensor");
    header(&b, 3, 1, 0);
    tinfo(&b, "z", 1, 2, z, SW_TYPE_F32, 0);
    add(cs, &b, "ne_zero_no_data_section");
    header(&b, 3, 1, 0);
    tinfo(&b, "z", 1, 2, neg, SW_TYPE_F32, 0);
    pad(&b, 32);
    tdata(&b, 32);
    add(cs, &b, "ne_negative");
    header(&b, 3, 1, 0);
    tinfo(&b, "f", 1, 4, four, SW_TYPE_F32, 0);
    pad(&b, 32);
    tdata(&b, 24);
    add(cs, &b, "ndims_4");
    header(&b, 3, 1, 0);
    tinfo(&b, "f", 1, 5, five, SW_TYPE_F32, 0);
    pad(&b, 32);
    tdata(&b, 4);
    add(cs, &b, "ndims_5");
    const int64_t big[2] = {INT64_C(1) << 32, INT64_C(1) << 31}, edge[2] = {INT64_MAX / 2, 2},
                  bytes[1] = {INT64_C(1) << 62};
    header(&b, 3, 1, 0);
    tinfo(&b, "o", 1, 2, big, SW_TYPE_F32, 0);
    add(cs, &b, "ne_overflow");
    header(&b, 3, 1, 0);
    tinfo(&b, "o", 1, 2, edge, SW_TYPE_I8, 0);
    add(cs, &b, "ne_product_at_limit");
    header(&b, 3, 1, 0);
    tinfo(&b, "o", 1, 1, bytes, SW_TYPE_F64, 0);
    add(cs, &b, "nbytes_overflow");

    /* types: removed ids, ones we cannot compute with but ggml knows, past the end */
    const uint32_t types[] = {4, 5, 9, 16, 24, 28, 31, 34, 36, 39, 40, 41, 42, 43, 1000};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const int64_t ne[1] = {256};
        header(&b, 3, 1, 0);
        tinfo(&b, "t", 1, 1, ne, types[k], 0);
        pad(&b, 32);
        tdata(&b, 4096);
        add(cs, &b, "type_%u", types[k]);
    }
    const int64_t ne16[1] = {16};
    header(&b, 3, 1, 0);
    tinfo(&b, "t", 1, 1, ne16, SW_TYPE_Q4_0, 0);
    pad(&b, 32);
    tdata(&b, 64);
    add(cs, &b, "row_not_whole_blocks");

    /* alignment key: types and values */
    const struct {
        const char *name;
        uint32_t type;
        uint64_t v;
    } al[] = {{"align_u32_64", SW_GGUF_UINT32, 64}, {"align_u32_0", SW_GGUF_UINT32, 0},
              {"align_u32_48", SW_GGUF_UINT32, 48}, {"align_u64_32", SW_GGUF_UINT64, 32},
              {"align_i32_32", SW_GGUF_INT32, 32},  {"align_u16_32", SW_GGUF_UINT16, 32},
              {"align_u8_16", SW_GGUF_UINT8, 16}};
    for (size_t k = 0; k < sizeof al / sizeof al[0]; k++) {
        header(&b, 3, 1, 1);
        cstr(&b, "general.alignment");
        u32(&b, al[k].type);
        uint64_t sz = sw_gguf_vtype_size(al[k].type);
        for (uint64_t i = 0; i < sz; i++) u8(&b, (uint8_t)(al[k].v >> (8 * i)));
        tinfo(&b, "t", 1, 1, NE_C, SW_TYPE_F16, 0);
        size_t a = al[k].v && !(al[k].v & (al[k].v - 1)) ? (size_t)al[k].v : 32;
        pad(&b, a);
        data(&b, 6);
        pad(&b, a);
        add(cs, &b, "%s", al[k].name);
    }

    /* values: bools, nested and huge arrays, huge strings, bad types */
    for (int v = 0; v < 3; v++) {
        header(&b, 3, 0, 1);
        cstr(&b, "flag");
        u32(&b, SW_GGUF_BOOL);
        u8(&b, (uint8_t)(v == 2 ? 7 : v));
        add(cs, &b, "bool_%d", v == 2 ? 7 : v);
    }
    header(&b, 3, 0, 1);
    cstr(&b, "arr");
    u32(&b, SW_GGUF_ARRAY);
    u32(&b, SW_GGUF_BOOL);
    u64(&b, 3);
    u8(&b, 0);
    u8(&b, 2);
    u8(&b, 255);
    add(cs, &b, "bool_array_odd_values");
    header(&b, 3, 0, 1);
    cstr(&b, "arr");
    u32(&b, SW_GGUF_ARRAY);
    u32(&b, SW_GGUF_ARRAY);
    u64(&b, 0);
    add(cs, &b, "array_of_arrays_empty");
    header(&b, 3, 0, 1);
    cstr(&b, "arr");
    u32(&b, SW_GGUF_ARRAY);
    u32(&b, SW_GGUF_UINT8);
    u64(&b, 0);
    add(cs, &b, "array_empty");
    header(&b, 3, 0, 1);
    cstr(&b, "arr");
    u32(&b, SW_GGUF_ARRAY);
    u32(&b, SW_GGUF_UINT8);
    u64(&b, (1ull << 30) + 1);
    add(cs, &b, "array_over_limit");
    header(&b, 3, 0, 1);
    cstr(&b, "s");
    u32(&b, SW_GGUF_STRING);
    u64(&b, (1ull << 30) + 1);
    add(cs, &b, "string_over_limit");
    header(&b, 3, 0, 1);
    cstr(&b, "s");
    u32(&b, SW_GGUF_STRING);
    u64(&b, 100);
    data(&b, 10);
    add(cs, &b, "string_past_end");
    header(&b, 3, 0, 1);
    cstr(&b, "s");
    u32(&b, SW_GGUF_STRING);
    cstr(&b, "\xff\xfe not utf-8");
    add(cs, &b, "string_not_utf8");
    const uint32_t vt[] = {13, 100, 0xffffffffu};
    for (int k = 0; k < 3; k++) {
        header(&b, 3, 0, 1);
        cstr(&b, "v");
        u32(&b, vt[k]);
        u64(&b, 0);
        add(cs, &b, "value_type_%u", vt[k]);
    }

    /* header: versions, counts */
    const uint32_t vers[] = {0, 1, 2, 4, 0x03000000u, 0x00010000u};
    for (int k = 0; k < 6; k++) {
        header(&b, vers[k], 3, 2);
        base_meta(&b);
        base_tensors(&b, 32, 96);
        base_data(&b);
        add(cs, &b, "version_%u", vers[k]);
    }
    header(&b, 3, 0, 0);
    add(cs, &b, "empty_file_header_only");
    header(&b, 3, 4, 2);
    base_meta(&b);
    base_tensors(&b, 32, 96);
    base_data(&b);
    add(cs, &b, "n_tensors_one_more");
    header(&b, 3, 3, 3);
    base_meta(&b);
    base_tensors(&b, 32, 96);
    base_data(&b);
    add(cs, &b, "n_kv_one_more");
    header(&b, 3, 2, 2);
    base_meta(&b);
    base_tensors(&b, 32, 96);
    base_data(&b);
    add(cs, &b, "n_tensors_one_less");
    header(&b, 3, UINT64_MAX, 0);
    add(cs, &b, "n_tensors_max");
    header(&b, 3, 0, 1ull << 63);
    add(cs, &b, "n_kv_negative");
    put(&b, "GGUX", 4);
    u32(&b, 3);
    u64(&b, 0);
    u64(&b, 0);
    add(cs, &b, "bad_magic");
    put(&b, "GGU", 3);
    add(cs, &b, "magic_truncated");
}

/* Seeded corruptions of the base file: each case sets 1 to 3 bytes. */
static void random_cases(cases *cs, int n) {
    bld b0 = {0};
    base(&b0);
    uint64_t s = 0x5eedf00dull;
    const uint8_t vals[] = {0x00, 0xff, 0x80, 0x01, 0x7f, 0x40, 0x20, 0x3f};
    for (int i = 0; i < n; i++) {
        bld b = {0};
        put(&b, b0.p, b0.n);
        int k = 1 + (int)((s >> 33) % 3);
        for (int j = 0; j < k; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)((s >> 33) % b.n);
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            b.p[at] = vals[(s >> 33) % 8];
        }
        add(cs, &b, "random_%03d", i);
    }
    free(b0.p);
}

/* ---- the check ---- */

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    if (t && fread(t, 1, (size_t)n, f) != (size_t)n) {
        free(t);
        t = NULL;
    }
    if (t) t[n] = 0;
    fclose(f);
    return t;
}

/* "accept"/"reject" for a case name in the committed data, or NULL. */
static const char *expected(const char *table, const char *name) {
    size_t n = strlen(name);
    for (const char *l = table; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len > n + 1 && !strncmp(l, name, n) && l[n] == ' ') {
            if (!strncmp(l + n + 1, "accept", 6)) return "accept";
            if (!strncmp(l + n + 1, "reject", 6)) return "reject";
        }
        l = e ? e + 1 : NULL;
    }
    return NULL;
}

static void test_llama_verdicts(void **state) {
    (void)state;
    cases cs = {0};
    targeted(&cs);
    random_cases(&cs, 400);

    const char *dump = getenv("SW_GGUF_VERDICT_DUMP");
    if (dump && *dump) {
        for (size_t i = 0; i < cs.n; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s.gguf", dump, cs.v[i].name);
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(cs.v[i].p, 1, cs.v[i].n, f), cs.v[i].n);
            fclose(f);
        }
        print_message("wrote %zu cases to %s\n", cs.n, dump);
    }

    const char *src = getenv("SW_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/gguf_llama_verdicts.txt", src ? src : ".");
    char *table = read_file(path);
    if (!table) fail_msg("cannot read %s (SW_SOURCE_DIR unset?)", path);

    int mismatches = 0, accepted = 0;
    for (size_t i = 0; i < cs.n; i++) {
        const char *want = expected(table, cs.v[i].name);
        if (!want) fail_msg("case %s has no llama.cpp verdict in %s: regenerate it", cs.v[i].name, path);
        sw_gguf *g = NULL;
        sw_err err = {{0}};
        sw_status st = sw_gguf_open_memory(cs.v[i].p, cs.v[i].n, cs.v[i].name, &g, &err);
        const char *got = st == SW_OK ? "accept" : "reject";
        if (st == SW_OK) {
            accepted++;
            /* an accepted file must survive every accessor */
            for (int64_t t = 0; t < sw_gguf_n_tensors(g); t++) {
                const sw_gguf_tensor *ti = sw_gguf_tensor_at(g, t);
                assert_non_null(ti);
                if (ti->nbytes) assert_non_null(ti->data);
            }
        } else if (!strstr(err.msg, cs.v[i].name)) {
            fail_msg("case %s: the error does not name the file: %s", cs.v[i].name, err.msg);
        }
        if (strcmp(got, want)) {
            print_error("case %s: llama.cpp says %s, we %s (%s)\n", cs.v[i].name, want, got,
                        st == SW_OK ? "no error" : err.msg);
            mismatches++;
        }
        sw_gguf_free(g);
    }
    print_message("%zu cases, %d accepted, %d disagree with llama.cpp\n", cs.n, accepted,
                  mismatches);
    assert_int_equal(mismatches, 0);
    for (size_t i = 0; i < cs.n; i++) free(cs.v[i].p);
    free(cs.v);
    free(table);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_llama_verdicts)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
