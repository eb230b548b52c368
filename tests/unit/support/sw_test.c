/* sw_test.c — helpers shared by the unit tests. */
#include "sw_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cpu_backend.h"
#include "gguf.h"
#ifdef SW_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_device.h"
#endif

double sw_test_urand(sw_test_rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(r->s >> 11) * 0x1.0p-53;
}

float sw_test_nrand(sw_test_rng *r) {
    double s = 0;
    for (int i = 0; i < 4; i++) s += sw_test_urand(r) - 0.5;
    return (float)(s * 1.7);
}

sw_test_cpu_grid *sw_test_cpu_grid_create(void) {
    sw_test_cpu_grid *g = calloc(1, sizeof *g);
    if (!g) fail_msg("out of memory");
    sw_err err = {{0}};
    for (int isa = 0; isa < SW_CPU_ISA_COUNT; isa++) {
        if (!sw_cpu_isa_available((sw_cpu_isa)isa, g->why[isa], sizeof g->why[isa])) {
            print_message("note: %s kernels not tested: %s\n", sw_cpu_isa_name((sw_cpu_isa)isa),
                          g->why[isa]);
            continue;
        }
        for (int th = 1; th <= 2; th++) {
            if (sw_backend_cpu_create_isa(th, (sw_cpu_isa)isa, &g->be[isa][th - 1], &err) != SW_OK)
                fail_msg("%s", err.msg);
            if (sw_backend_cpu_isa(g->be[isa][th - 1]) != (sw_cpu_isa)isa)
                fail_msg("asked for %s kernels, got %s", sw_cpu_isa_name((sw_cpu_isa)isa),
                         sw_cpu_isa_name(sw_backend_cpu_isa(g->be[isa][th - 1])));
        }
    }
    g->best = sw_cpu_isa_best();
    return g;
}

void sw_test_cpu_grid_free(sw_test_cpu_grid *g) {
    if (!g) return;
    for (int s = 0; s < SW_CPU_ISA_COUNT; s++)
        for (int t = 0; t < 2; t++) sw_backend_free(g->be[s][t]);
    free(g);
}

bool sw_test_real_model(const char *name, char *path, size_t path_len, char *why, size_t why_len) {
    const char *src = getenv("SW_SOURCE_DIR");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/scripts/fetch-model.sh' '%s' 2>&1", src ? src : ".", name);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(why, why_len, "cannot run scripts/fetch-model.sh");
        return false;
    }
    char out[2048] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int rc = pclose(p);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = 0;
    const char *last = strrchr(out, '\n');
    last = last ? last + 1 : out;
    if (rc != 0 || !*last) {
        snprintf(why, why_len, "real model %s unavailable: %s", name, out[0] ? out : "no output");
        return false;
    }
    snprintf(path, path_len, "%s", last);
    return true;
}

sw_gguf *sw_test_open_vocab(const char *path) {
    sw_gguf *g = NULL;
    sw_err err = {{0}};
    if (sw_gguf_open(path, &g, &err) == SW_OK) return g;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "ggml-vocab-dbrx.gguf") != 0) fail_msg("open %s: %s", path, err.msg);
    if (!strstr(err.msg, "duplicate key 'general.file_type'"))
        fail_msg("%s: expected a duplicate-key refusal, got: %s", path, err.msg);
    if (sw_gguf_open_flags(path, SW_GGUF_ALLOW_REPEATED_KEYS, &g, &err) != SW_OK)
        fail_msg("open %s (repeated keys allowed): %s", path, err.msg);
    return g;
}

char *sw_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)n + 1)) &&
        fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = '\0';
    if (len) *len = (size_t)n;
    return b;
}

float *sw_test_dequant(const sw_gguf *g, const char *name, int64_t *ne0, int64_t *rows) {
    const sw_gguf_tensor *t = sw_gguf_find_tensor(g, name);
    if (!t) fail_msg("no tensor %s", name);
    int64_t nr = t->ne[1] * t->ne[2] * t->ne[3];
    float *out = malloc((size_t)(t->ne[0] * nr) * sizeof *out);
    if (!out) fail_msg("out of memory for %s", name);
    size_t rs = sw_row_size(t->type, t->ne[0]);
    sw_err err = {{0}};
    for (int64_t i = 0; i < nr; i++)
        if (sw_dequantize_row(t->type, (const char *)t->data + (size_t)i * rs, out + i * t->ne[0],
                              t->ne[0], &err) != SW_OK)
            fail_msg("%s: %s", name, err.msg);
    if (ne0) *ne0 = t->ne[0];
    if (rows) *rows = nr;
    return out;
}

int sw_test_cuda_gate(void) {
#ifdef SW_HAVE_CUDA
    int n = 0;
    sw_err err = {{0}};
    sw_status st = sw_cuda_device_count(&n, &err);
    if (st == SW_E_NOT_FOUND) { /* no driver, or no device */
        printf("SKIP: no GPU: %s\n", err.msg);
        return 77;
    }
    if (st != SW_OK) {
        printf("FAIL: a GPU may be present but CUDA cannot use it: %s\n", err.msg);
        return 1;
    }
    sw_backend *be = NULL;
    if (sw_backend_cuda_create(0, &be, &err) != SW_OK) {
        printf("FAIL: %d CUDA device(s) present, but the backend cannot be created: %s\n", n,
               err.msg);
        return 1;
    }
    sw_backend_free(be);
    return 0;
#else
    printf("SKIP: built without CUDA (configure with -DSW_CUDA=ON)\n");
    return 77;
#endif
}
