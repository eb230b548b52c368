/* cpu_backend.c — the CPU backend object: host buffers, the thread pool, the
 * run-time choice between AVX2 and scalar kernels, and the ops table. The ops
 * themselves live in cpu_ops.c, cpu_matmul.c and cpu_attention.c. */
#include "cpu_backend.h"

#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <unistd.h>

#include "cpu_internal.h"

#define SW_CPU_ALIGN 64

static void *aligned_alloc64(size_t n) {
    void *p = NULL;
    /* posix_memalign rather than C11 aligned_alloc: no multiple-of-alignment rule */
    if (posix_memalign(&p, SW_CPU_ALIGN, n ? n : SW_CPU_ALIGN) != 0) return NULL;
    return p;
}

void *sw_cpu_scratch(sw_cpu_backend *be, size_t n) {
    if (n <= be->scratch_size) return be->scratch;
    void *p = aligned_alloc64(n);
    if (!p) return NULL;
    free(be->scratch);
    be->scratch = p;
    be->scratch_size = n;
    return p;
}

static void cpu_free(sw_backend *b) {
    sw_cpu_backend *be = (sw_cpu_backend *)b;
    sw_threadpool_free(be->pool);
    free(be->scratch);
    free(be);
}

static sw_status cpu_buf_alloc(sw_backend *b, size_t size, sw_buf_usage usage, sw_buffer **out,
                               sw_err *err) {
    (void)b;
    sw_buffer *buf = calloc(1, sizeof *buf);
    if (!buf) return sw_err_set(err, SW_E_NOMEM, "cpu buf_alloc: out of memory");
    buf->data = aligned_alloc64(size);
    if (!buf->data) {
        free(buf);
        return sw_err_set(err, SW_E_NOMEM, "cpu buf_alloc: cannot allocate %zu bytes", size);
    }
    buf->size = size;
    buf->usage = usage;
    *out = buf;
    return SW_OK;
}

static void cpu_buf_free(sw_backend *b, sw_buffer *buf) {
    (void)b;
    if (!buf) return;
    free(buf->packed);
    free(buf->data);
    free(buf);
}

static sw_status check_span(const char *op, const sw_buffer *buf, size_t offset, size_t n,
                            sw_err *err) {
    if (offset > buf->size || n > buf->size - offset)
        return sw_err_set(err, SW_E_RANGE, "cpu %s: bytes [%zu, %zu + %zu) outside a buffer of %zu",
                          op, offset, offset, n, buf->size);
    return SW_OK;
}

static sw_status cpu_upload(sw_backend *b, sw_buffer *dst, size_t offset, const void *src, size_t n,
                            sw_err *err) {
    (void)b;
    sw_status st = check_span("upload", dst, offset, n, err);
    if (st != SW_OK) return st;
    sw_cpu_pack_forget(dst, offset, n);
    if (n) memcpy((uint8_t *)dst->data + offset, src, n);
    return SW_OK;
}

static sw_status cpu_download(sw_backend *b, sw_buffer *src, size_t offset, void *dst, size_t n,
                              sw_err *err) {
    (void)b;
    sw_status st = check_span("download", src, offset, n, err);
    if (st != SW_OK) return st;
    if (n) memcpy(dst, (const uint8_t *)src->data + offset, n);
    return SW_OK;
}

static bool cpu_supports_type(sw_backend *b, sw_type type) {
    (void)b;
    sw_cpu_act act;
    return sw_cpu_matmul_type(type, &act);
}

static void *cpu_host_ptr(sw_backend *b, sw_buffer *buf) {
    (void)b;
    return buf ? buf->data : NULL;
}

static sw_status cpu_mem_info(sw_backend *b, size_t *free_b, size_t *total_b, sw_err *err) {
    (void)b;
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
    long psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || avail < 0 || psz <= 0)
        return sw_err_set(err, SW_E_UNSUPPORTED, "cpu mem_info: sysconf cannot report memory");
    *free_b = (size_t)avail * (size_t)psz;
    *total_b = (size_t)pages * (size_t)psz;
    return SW_OK;
}

static const sw_backend_ops k_cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
    .buf_alloc = cpu_buf_alloc,
    .buf_free = cpu_buf_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .upload_weight = sw_cpu_upload_weight, /* packs matrices of the types in cpu_pack.c */
    .mem_info = cpu_mem_info,
    .supports_type = cpu_supports_type,
    .host_ptr = cpu_host_ptr,
    .begin = NULL,
    .end = NULL,
    .get_rows = sw_cpu_get_rows,
    .rms_norm = sw_cpu_rms_norm,
    .matmul = sw_cpu_matmul,
    .rope = sw_cpu_rope,
    .kv_write = sw_cpu_kv_write,
    .attention = sw_cpu_attention,
    .swiglu = sw_cpu_swiglu,
    .add = sw_cpu_add,
    .logits_summary = NULL, /* the wrapper's host default reads host memory directly */
};

static bool cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* F16C via cpuid (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports
     * does not know the "f16c" feature string. */
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
    return false;
#endif
}

sw_status sw_backend_cpu_create(int n_threads, sw_backend **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "cpu backend: out is NULL");
    *out = NULL;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    sw_cpu_backend *be = calloc(1, sizeof *be);
    if (!be) return sw_err_set(err, SW_E_NOMEM, "cpu backend: out of memory");
    sw_cpu_init_tables();
    be->base.ops = &k_cpu_ops;
    be->base.n_threads = n_threads;
    const char *no_simd = getenv("SW_CPU_NO_SIMD");
    bool forced_off = no_simd && no_simd[0] && strcmp(no_simd, "0") != 0;
    be->simd = !forced_off && cpu_has_avx2();
    sw_status st = sw_threadpool_create(n_threads, &be->pool, err);
    if (st != SW_OK) {
        free(be);
        return sw_err_wrap(err, st, "cpu backend");
    }
    sw_log(SW_LOG_DEBUG, "cpu backend: %d threads, %s kernels%s", n_threads,
           be->simd ? "avx2" : "scalar", forced_off ? " (SW_CPU_NO_SIMD)" : "");
    *out = &be->base;
    return SW_OK;
}

bool sw_backend_cpu_uses_simd(const sw_backend *b) {
    return b && b->ops == &k_cpu_ops && ((const sw_cpu_backend *)b)->simd;
}
