/* cpu_backend.c — the CPU backend object: host buffers, the thread pool, the
 * run-time choice of kernel set (cpuid + XCR0, or SW_CPU_ISA), and the ops
 * table. The ops themselves live in cpu_ops.c, cpu_matmul.c and
 * cpu_attention.c; the kernel sets are in cpu_kernels.c. */
#include "cpu_backend.h"

#include <pthread.h>
#include <stdio.h>
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
    .geglu = sw_cpu_geglu,
    .add = sw_cpu_add,
    .scale = sw_cpu_scale,
    .softcap = sw_cpu_softcap,
    .logits_summary = NULL, /* the wrapper's host default reads host memory directly */
    .layer_norm = sw_cpu_layer_norm,
    .gelu = sw_cpu_gelu,
    .non_causal_attention = true,
    .add_rms_norm = sw_cpu_add_rms_norm,
    .rope_kv_write = sw_cpu_rope_kv_write,
};

/* ---- the run-time choice of kernels ---------------------------------------- */

typedef struct {
    bool avx2, fma, f16c, os_ymm;         /* AVX2 set */
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, os_zmm;
    bool avxvnni;
} cpu_features;

#if defined(__x86_64__) || defined(__i386__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

/* From cpuid and XCR0 directly: compilers' __builtin_cpu_supports differ in
 * which feature names they know (clang 14 has no "f16c"), and the OS must
 * have enabled the register state (XCR0) for the YMM/ZMM kernels to run. */
static cpu_features detect_features(void) {
    cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    f.fma = c & (1u << 12);
    f.f16c = c & (1u << 29);
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    f.os_ymm = avx && (xcr0 & 0x6) == 0x6;          /* SSE + AVX state */
    f.os_zmm = f.os_ymm && (xcr0 & 0xe0) == 0xe0;   /* opmask + ZMM_Hi256 + Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub = a;
    f.avx2 = b & (1u << 5);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f.avxvnni = a & (1u << 4);
    }
#endif
    return f;
}

static cpu_features g_features;
static void features_init(void) {
    g_features = detect_features();
}
static const cpu_features *features(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, features_init);
    return &g_features;
}

static const char *const k_isa_names[SW_CPU_ISA_COUNT] = {"scalar", "avx2", "avxvnni", "avx512"};

const char *sw_cpu_isa_name(sw_cpu_isa isa) {
    return (unsigned)isa < SW_CPU_ISA_COUNT ? k_isa_names[isa] : "?";
}

/* The first missing feature of isa, or NULL when the host has them all. */
static const char *isa_missing(sw_cpu_isa isa) {
    const cpu_features *f = features();
    if (isa == SW_CPU_ISA_SCALAR) return NULL;
#if !(defined(__x86_64__) || defined(__i386__))
    return "not an x86 CPU";
#endif
    if (!f->os_ymm) return "avx (CPU or OS)";
    if (!f->avx2) return "avx2";
    if (!f->fma) return "fma";
    if (!f->f16c) return "f16c";
    if (isa == SW_CPU_ISA_AVXVNNI) return f->avxvnni ? NULL : "avx_vnni";
    if (isa == SW_CPU_ISA_AVX512) {
        if (!f->avx512f) return "avx512f";
        if (!f->avx512bw) return "avx512bw";
        if (!f->avx512vl) return "avx512vl";
        if (!f->avx512dq) return "avx512dq";
        if (!f->avx512vnni) return "avx512_vnni";
        if (!f->os_zmm) return "OS support for AVX-512 state (XCR0)";
    }
    return NULL;
}

bool sw_cpu_isa_available(sw_cpu_isa isa, char *why, size_t why_len) {
    const char *miss = (unsigned)isa < SW_CPU_ISA_COUNT ? isa_missing(isa) : "a known ISA";
    if (miss && why && why_len) snprintf(why, why_len, "host lacks %s", miss);
    return miss == NULL;
}

sw_cpu_isa sw_cpu_isa_best(void) {
    for (int i = SW_CPU_ISA_COUNT - 1; i > 0; i--)
        if (!isa_missing((sw_cpu_isa)i)) return (sw_cpu_isa)i;
    return SW_CPU_ISA_SCALAR;
}

/* SW_CPU_ISA (or the older SW_CPU_NO_SIMD=1) -> the kernel set to run. */
static sw_status isa_from_env(sw_cpu_isa *isa, sw_err *err) {
    const char *v = getenv("SW_CPU_ISA"), *no_simd = getenv("SW_CPU_NO_SIMD");
    *isa = sw_cpu_isa_best();
    if (no_simd && no_simd[0] && strcmp(no_simd, "0") != 0) *isa = SW_CPU_ISA_SCALAR;
    if (!v || !v[0] || !strcmp(v, "auto")) return SW_OK;
    for (int i = 0; i < SW_CPU_ISA_COUNT; i++)
        if (!strcmp(v, k_isa_names[i])) {
            char why[96];
            if (!sw_cpu_isa_available((sw_cpu_isa)i, why, sizeof why))
                return sw_err_set(err, SW_E_UNSUPPORTED, "SW_CPU_ISA=%s: %s (best here: %s)", v,
                                  why, sw_cpu_isa_name(sw_cpu_isa_best()));
            *isa = (sw_cpu_isa)i;
            return SW_OK;
        }
    return sw_err_set(err, SW_E_INVALID_ARG,
                      "SW_CPU_ISA='%s': expected scalar, avx2, avxvnni, avx512 or auto", v);
}

sw_status sw_backend_cpu_create_isa(int n_threads, sw_cpu_isa isa, sw_backend **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "cpu backend: out is NULL");
    *out = NULL;
    char why[96];
    if (!sw_cpu_isa_available(isa, why, sizeof why))
        return sw_err_set(err, SW_E_UNSUPPORTED, "cpu backend: kernel set %s: %s",
                          sw_cpu_isa_name(isa), why);
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    sw_cpu_backend *be = calloc(1, sizeof *be);
    if (!be) return sw_err_set(err, SW_E_NOMEM, "cpu backend: out of memory");
    sw_cpu_init_tables();
    be->base.ops = &k_cpu_ops;
    be->base.n_threads = n_threads;
    be->k = sw_cpu_kernels_get(isa);
    be->simd = isa != SW_CPU_ISA_SCALAR;
    sw_status st = sw_threadpool_create(n_threads, &be->pool, err);
    if (st != SW_OK) {
        free(be);
        return sw_err_wrap(err, st, "cpu backend");
    }
    sw_log(SW_LOG_DEBUG, "cpu backend: %d threads, %s kernels", n_threads, sw_cpu_isa_name(isa));
    *out = &be->base;
    return SW_OK;
}

sw_status sw_backend_cpu_create(int n_threads, sw_backend **out, sw_err *err) {
    if (!out) return sw_err_set(err, SW_E_INVALID_ARG, "cpu backend: out is NULL");
    *out = NULL;
    sw_cpu_isa isa;
    sw_status st = isa_from_env(&isa, err);
    if (st != SW_OK) return st;
    return sw_backend_cpu_create_isa(n_threads, isa, out, err);
}

sw_cpu_isa sw_backend_cpu_isa(const sw_backend *b) {
    return b && b->ops == &k_cpu_ops ? ((const sw_cpu_backend *)b)->k->isa : SW_CPU_ISA_SCALAR;
}

bool sw_backend_cpu_uses_simd(const sw_backend *b) {
    return sw_backend_cpu_isa(b) != SW_CPU_ISA_SCALAR;
}

struct sw_threadpool *sw_backend_cpu_threadpool(sw_backend *b) {
    return ((sw_cpu_backend *)b)->pool;
}
