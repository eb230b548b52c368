/* spillway-gguf — inspect a GGUF file: header, every metadata key, every tensor,
 * totals; optionally dump one tensor dequantized to raw f32, or rewrite the file
 * through our writer (a round-trip check against other GGUF readers). */
#include <spillway.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-gguf FILE [--all] [--dequant TENSOR --out PATH.f32] [--rewrite OUT]\n"
            "  --all              print long strings and arrays in full\n"
            "  --dequant TENSOR   write TENSOR dequantized as raw little-endian float32 to --out\n"
            "  --rewrite OUT      copy every key and tensor into OUT with the GGUF writer\n");
}

/* Print a string with control and non-ASCII-control bytes escaped; bytes >= 0x80
 * pass through so UTF-8 text stays readable. */
static void print_escaped(const char *s, size_t len, size_t limit) {
    size_t n = len < limit ? len : limit;
    putchar('"');
    for (size_t k = 0; k < n; k++) {
        unsigned char ch = (unsigned char)s[k];
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '\t') fputs("\\t", stdout);
        else if (ch == '\r') fputs("\\r", stdout);
        else if (ch < 32 || ch == 127) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('"');
    if (n < len) printf("... (%zu bytes)", len);
}

static int print_scalar(const sw_gguf *g, int64_t i, sw_gguf_vtype t, bool all) {
    sw_err err;
    switch (t) {
    case SW_GGUF_FLOAT32:
    case SW_GGUF_FLOAT64: {
        double d;
        if (sw_gguf_kv_float(g, i, &d, &err)) goto fail;
        printf("%.9g", d);
        return 0;
    }
    case SW_GGUF_BOOL: {
        bool b;
        if (sw_gguf_kv_bool(g, i, &b, &err)) goto fail;
        printf("%s", b ? "true" : "false");
        return 0;
    }
    case SW_GGUF_STRING: {
        const char *s;
        size_t len;
        if (sw_gguf_kv_str(g, i, &s, &len, &err)) goto fail;
        print_escaped(s, len, all ? len : 120);
        return 0;
    }
    case SW_GGUF_UINT8:
    case SW_GGUF_UINT16:
    case SW_GGUF_UINT32:
    case SW_GGUF_UINT64: {
        uint64_t u;
        if (sw_gguf_kv_uint(g, i, &u, &err)) goto fail;
        printf("%llu", (unsigned long long)u);
        return 0;
    }
    default: {
        int64_t v;
        if (sw_gguf_kv_int(g, i, &v, &err)) goto fail;
        printf("%lld", (long long)v);
        return 0;
    }
    }
fail:
    fprintf(stderr, "spillway-gguf: %s\n", err.msg);
    return 1;
}

static int print_array(const sw_gguf *g, int64_t i, bool all) {
    sw_gguf_vtype et = sw_gguf_kv_arr_type(g, i);
    uint64_t n = sw_gguf_kv_arr_n(g, i);
    uint64_t shown = all ? n : (n < 8 ? n : 8);
    sw_err err;
    printf("[");
    for (uint64_t j = 0; j < shown; j++) {
        if (j) printf(", ");
        if (et == SW_GGUF_STRING) {
            const char *s;
            size_t len;
            if (sw_gguf_arr_str(g, i, j, &s, &len, &err)) goto fail;
            print_escaped(s, len, all ? len : 40);
        } else if (et == SW_GGUF_FLOAT32 || et == SW_GGUF_FLOAT64) {
            double d;
            if (sw_gguf_arr_float(g, i, j, &d, &err)) goto fail;
            printf("%.9g", d);
        } else if (et == SW_GGUF_UINT64) {
            /* arr_int cannot hold u64 above INT64_MAX: read the raw bytes */
            const void *data;
            if (sw_gguf_kv_arr_data(g, i, &data, NULL, &err)) goto fail;
            const unsigned char *p = (const unsigned char *)data + j * 8;
            uint64_t v = 0;
            for (int k = 0; k < 8; k++) v |= (uint64_t)p[k] << (8 * k);
            printf("%llu", (unsigned long long)v);
        } else {
            int64_t v;
            if (sw_gguf_arr_int(g, i, j, &v, &err)) goto fail;
            if (et == SW_GGUF_BOOL) printf("%s", v ? "true" : "false");
            else printf("%lld", (long long)v);
        }
    }
    if (shown < n) printf(", ... %llu more", (unsigned long long)(n - shown));
    printf("]");
    return 0;
fail:
    fprintf(stderr, "spillway-gguf: %s\n", err.msg);
    return 1;
}

static void format_shape(const sw_gguf_tensor *t, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

static int print_info(const sw_gguf *g, bool all) {
    printf("file:        %s\n", sw_gguf_path(g));
    printf("version:     %u\n", sw_gguf_version(g));
    printf("alignment:   %llu\n", (unsigned long long)sw_gguf_alignment(g));
    printf("data offset: %llu\n", (unsigned long long)sw_gguf_data_offset(g));
    printf("file size:   %llu\n", (unsigned long long)sw_gguf_file_size(g));
    printf("\nmetadata: %lld keys\n", (long long)sw_gguf_n_kv(g));
    int rc = 0;
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++) {
        sw_gguf_vtype t = sw_gguf_kv_type(g, i);
        if (t == SW_GGUF_ARRAY) {
            printf("  [%3lld] %-40s array[%s] n=%llu ", (long long)i, sw_gguf_kv_key(g, i),
                   sw_gguf_vtype_name(sw_gguf_kv_arr_type(g, i)),
                   (unsigned long long)sw_gguf_kv_arr_n(g, i));
            rc |= print_array(g, i, all);
        } else {
            printf("  [%3lld] %-40s %-7s = ", (long long)i, sw_gguf_kv_key(g, i),
                   sw_gguf_vtype_name(t));
            rc |= print_scalar(g, i, t, all);
        }
        printf("\n");
    }

    int64_t n = sw_gguf_n_tensors(g);
    printf("\ntensors: %lld\n", (long long)n);
    uint64_t params = 0, bytes = 0;
    int64_t by_type[SW_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < n; i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        char shape[128];
        format_shape(t, shape, sizeof shape);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) nel *= (uint64_t)t->ne[d];
        printf("  [%4lld] %-40s %-7s %-24s %12llu bytes  offset %llu\n", (long long)i, t->name,
               sw_type_name(t->type), shape, (unsigned long long)t->nbytes,
               (unsigned long long)t->offset);
        params += nel;
        bytes += t->nbytes;
        if ((unsigned)t->type < SW_TYPE_COUNT) by_type[t->type]++;
    }
    printf("\ntotals: %lld tensors, %llu parameters, %llu bytes (%.2f MiB)\n", (long long)n,
           (unsigned long long)params, (unsigned long long)bytes, (double)bytes / (1024.0 * 1024.0));
    printf("by type:");
    for (int k = 0; k < SW_TYPE_COUNT; k++)
        if (by_type[k]) printf(" %s=%lld", sw_type_name((uint32_t)k), (long long)by_type[k]);
    printf("\n");
    return rc;
}

static int dequant(const sw_gguf *g, const char *name, const char *out) {
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, name);
    if (!t) {
        fprintf(stderr, "spillway-gguf: %s: no tensor named '%s'\n", sw_gguf_path(g), name);
        return 1;
    }
    const sw_type_traits *tr = sw_type_get(t->type);
    if (!tr || !tr->can_dequantize) {
        fprintf(stderr, "spillway-gguf: tensor '%s': cannot dequantize type %s\n", name,
                sw_type_name(t->type));
        return 1;
    }
    int64_t row = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t row_bytes = sw_row_size(t->type, row);
    float *buf = malloc((size_t)row * sizeof *buf);
    FILE *f = fopen(out, "wb");
    int rc = 0;
    if (!buf || !f) {
        fprintf(stderr, "spillway-gguf: %s: %s\n", out, !buf ? "out of memory" : "cannot open");
        rc = 1;
    }
    for (int64_t r = 0; r < rows && !rc; r++) {
        sw_err err;
        const unsigned char *src = (const unsigned char *)t->data + (size_t)r * row_bytes;
        if (sw_dequantize_row(t->type, src, buf, row, &err) != SW_OK) {
            fprintf(stderr, "spillway-gguf: tensor '%s' row %lld: %s\n", name, (long long)r, err.msg);
            rc = 1;
        } else if (fwrite(buf, sizeof *buf, (size_t)row, f) != (size_t)row) {
            fprintf(stderr, "spillway-gguf: %s: write failed\n", out);
            rc = 1;
        }
    }
    if (f && fclose(f) != 0 && !rc) {
        fprintf(stderr, "spillway-gguf: %s: close failed\n", out);
        rc = 1;
    }
    free(buf);
    if (!rc) printf("wrote %lld floats of '%s' to %s\n", (long long)(row * rows), name, out);
    return rc;
}

static int rewrite(const sw_gguf *g, const char *out) {
    sw_gguf_writer *w = sw_gguf_writer_create();
    sw_err err = {{0}};
    sw_status s = w ? SW_OK : SW_E_NOMEM;
    for (int64_t i = 0; i < sw_gguf_n_kv(g) && !s; i++) {
        s = sw_gguf_writer_copy_kv(w, g, i);
        if (s) sw_err_set(&err, s, "copy of key '%s' failed", sw_gguf_kv_key(g, i));
    }
    for (int64_t i = 0; i < sw_gguf_n_tensors(g) && !s; i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        s = sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL, NULL,
                                      &err);
    }
    if (!s) s = sw_gguf_writer_write(w, out, &err);
    sw_gguf_writer_free(w);
    if (s) {
        fprintf(stderr, "spillway-gguf: rewrite: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s\n", out);
    return 0;
}

int main(int argc, char **argv) {
    const char *file = NULL, *tensor = NULL, *out = NULL, *rw = NULL;
    bool all = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) all = true;
        else if (!strcmp(argv[i], "--dequant") && i + 1 < argc) tensor = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--rewrite") && i + 1 < argc) rw = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "spillway-gguf: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else file = argv[i];
    }
    if (!file || (tensor && !out) || (!tensor && out)) {
        usage(stderr);
        return 2;
    }
    sw_gguf *g = NULL;
    sw_err err;
    sw_status s = sw_gguf_open(file, &g, &err);
    if (s) {
        fprintf(stderr, "spillway-gguf: %s (%s)\n", err.msg, sw_status_str(s));
        return 1;
    }
    int rc;
    if (tensor) rc = dequant(g, tensor, out);
    else if (rw) rc = rewrite(g, rw);
    else rc = print_info(g, all);
    sw_gguf_free(g);
    return rc;
}
