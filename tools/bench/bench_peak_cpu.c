/* bench_peak_cpu.c — the CPU's peaks for `spillway-bench kernels`, measured in
 * the same run on the backend's own thread pool (the kernels' threads), and
 * the host's identification.
 *
 * Memory: a read-only stream (the widest loads the host has, into four
 * sums) and a copy (normal and streaming stores, alternately) over a buffer
 * of 4 x the LLC, STREAM-style: the figure is the best whole pass over the
 * buffer. A pass is made of segments of 16 MiB per thread, each flushed and
 * timed alone (so neither the flush nor a pause between segments counts),
 * and its time is the sum of its segments'. Segments run before the rows, a
 * few between every two rows and again after them, so passes span the run
 * like the kernels. The best single segment is kept too, as information: it
 * is an outlier no sustained read reaches (below).
 * With --hot, the same probes over buffers that fit each cache level.
 * Compute: short jobs of independent int8 dot-product instructions of the
 * kernel set the backend runs (AVX-512 VNNI: vpdpbusd zmm; AVX-VNNI: vpdpbusd
 * ymm; AVX2: vpmaddubsw + vpmaddwd + vpaddd; scalar: a C dot product), and of
 * f32 FMAs of that set's vectors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_kernels.h"
#include "cpu_backend.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define BK_X86 1
#else
#define BK_X86 0
#endif

#define MIB ((size_t)1 << 20)
#define BK_SEG_PER_THREAD (16 * MIB)
#define BK_READ_PREFETCH 8192 /* bytes ahead, for the prefetching read loop (as PF_AHEAD) */
#define BK_SAMPLES 48         /* timed jobs per compute probe and per private cache level */

static int samples(const bk_ctx *x) {
    return x->quick ? BK_SAMPLES / 4 : BK_SAMPLES;
}

const char *bk_cpu_isa(sw_backend *be) {
    return sw_cpu_isa_name(sw_backend_cpu_isa(be));
}

/* ---- caches ------------------------------------------------------------------- */

typedef struct cache_info {
    size_t l1d, l2, llc; /* bytes per instance (0 = unknown) */
    bool l2_private;     /* one L2 per core */
} cache_info;

static size_t read_size_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[64] = {0};
    size_t v = 0;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        v = (size_t)strtoull(buf, &end, 10);
        if (*end == 'K')
            v <<= 10;
        else if (*end == 'M')
            v <<= 20;
        else if (*end == 'G')
            v <<= 30;
    }
    fclose(f);
    return v;
}

static cache_info caches(void) {
    cache_info c = {0, 0, 0, true};
    for (int i = 0; i < 8; i++) {
        char p[128], type[32] = {0}, shared[64] = {0};
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        FILE *f = fopen(p, "r");
        if (!f) break;
        if (!fgets(type, sizeof type, f)) type[0] = 0;
        fclose(f);
        if (!strncmp(type, "Instruction", 11)) continue;
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        size_t level = read_size_file(p);
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        size_t size = read_size_file(p);
        snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu0/cache/index%d/shared_cpu_list", i);
        if ((f = fopen(p, "r"))) {
            if (!fgets(shared, sizeof shared, f)) shared[0] = 0;
            fclose(f);
        }
        if (level == 1) c.l1d = size;
        if (level == 2) {
            c.l2 = size;
            c.l2_private = !strpbrk(shared, ",-");
        }
        if (level >= 2 && size > c.llc) c.llc = size;
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (c.llc == 0) {
        long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
        if (v > 0) c.llc = (size_t)v;
    }
#endif
    return c;
}

/* Cores the threads can spread over: online CPUs / hardware threads per core. */
static int physical_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int per_core = 1;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "r");
    char buf[64];
    if (f && fgets(buf, sizeof buf, f)) {
        /* "0", "0,64" or "0-1" */
        char *dash = strchr(buf, '-');
        if (dash)
            per_core = atoi(dash + 1) - atoi(buf) + 1;
        else
            for (char *p = buf; (p = strchr(p, ',')); p++)
                per_core++;
    }
    if (f) fclose(f);
    return n > 0 ? (int)SW_MAX(1, n / SW_MAX(per_core, 1)) : 1;
}

size_t bk_cpu_llc_bytes(void) {
    return caches().llc;
}

/* ---- host identification -------------------------------------------------------- */

static bool simd_flag(const char *f) {
    static const char *const pre[] = {"avx",   "amx", "fma", "f16c", "sse",  "ssse3",  "vnni",
                                      "asimd", "sve", "sme", "i8mm", "bf16", "dotprod"};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (!strncmp(f, pre[i], strlen(pre[i]))) return true;
    return false;
}

void bk_cpu_host(bk_ctx *x) {
    char model[256] = "unknown CPU", flags[1024] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    bool have_model = false, have_flags = false;
    while (f && fgets(line, sizeof line, f) && !(have_model && have_flags)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1 + (colon[1] == ' ');
        v[strcspn(v, "\n")] = 0;
        if (!have_model && (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5))) {
            snprintf(model, sizeof model, "%s", v);
            have_model = true;
        } else if (!have_flags && (!strncmp(line, "flags", 5) || !strncmp(line, "Features", 8))) {
            size_t used = 0;
            for (char *save = NULL, *tok = strtok_r(v, " ", &save); tok;
                 tok = strtok_r(NULL, " ", &save))
                if (simd_flag(tok) && used + strlen(tok) + 2 < sizeof flags)
                    used += (size_t)snprintf(flags + used, sizeof flags - used, "%s%s",
                                             used ? " " : "", tok);
            have_flags = true;
        }
    }
    if (f) fclose(f);
    cache_info c = caches();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double mem_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1 << 30);
    struct utsname u;
    if (uname(&u) != 0) memset(&u, 0, sizeof u);
    const char *isa = x->kind == BK_CPU ? bk_cpu_isa(x->be) : "-";
    x->host = cJSON_CreateObject();
    cJSON_AddStringToObject(x->host, "cpu", model);
    cJSON_AddNumberToObject(x->host, "cpus_online", (double)ncpu);
    cJSON_AddStringToObject(x->host, "simd_flags", flags);
    if (x->kind == BK_CPU) cJSON_AddStringToObject(x->host, "cpu_kernels", isa);
    cJSON_AddNumberToObject(x->host, "l1d_kib", (double)(c.l1d >> 10));
    cJSON_AddNumberToObject(x->host, "l2_kib", (double)(c.l2 >> 10));
    cJSON_AddNumberToObject(x->host, "llc_kib", (double)(c.llc >> 10));
    cJSON_AddNumberToObject(x->host, "mem_gib", mem_gib);
    char os[3 * sizeof u.release];
    snprintf(os, sizeof os, "%s %s %s", u.sysname, u.release, u.machine);
    cJSON_AddStringToObject(x->host, "os", os);
    snprintf(x->host_line, sizeof x->host_line,
             "host: %s, %ld cpus, cpu kernels %s, L1d %zu KiB, L2 %zu KiB, LLC %zu MiB, "
             "%.0f GiB\n  simd: %s",
             model, ncpu, isa, c.l1d >> 10, c.l2 >> 10, c.llc >> 20, mem_gib, flags);
}

/* ---- scheduler waits ------------------------------------------------------------ */

bool bk_cpu_sched(double *cpu_s, double *wait_s) {
    /* CPU time from the clock (exact); waits from schedstat, which the kernel
     * adds up when a thread gets a CPU back */
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return false;
    *cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    DIR *d = opendir("/proc/self/task");
    if (!d) return false;
    double wait_sum = 0;
    bool any = false;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(p, "r");
        unsigned long long run, wait;
        if (f && fscanf(f, "%llu %llu", &run, &wait) == 2) {
            wait_sum += (double)wait * 1e-9;
            any = true;
        }
        if (f) fclose(f);
    }
    closedir(d);
    *wait_s = wait_sum;
    return any;
}

/* ---- cache flush ---------------------------------------------------------------- */

#if BK_X86
static bool has_clflushopt(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23));
}

__attribute__((target("clflushopt"))) static void flush_opt(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i += 64)
        _mm_clflushopt((void *)(p + i));
    _mm_mfence();
}

static void flush_plain(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i += 64)
        _mm_clflush(p + i);
    _mm_mfence();
}
#endif

const char *bk_cpu_flush_name(void) {
#if BK_X86
    return has_clflushopt() ? "clflushopt" : "clflush";
#else
    return "sweep of 2 x LLC";
#endif
}

void bk_cpu_flush(const void *ptr, size_t n) {
    if (!ptr || n == 0) return;
#if BK_X86
    static int opt = -1;
    if (opt < 0) opt = has_clflushopt();
    const uint8_t *p = (const uint8_t *)((uintptr_t)ptr & ~(uintptr_t)63);
    n += (size_t)((const uint8_t *)ptr - p);
    if (opt)
        flush_opt(p, n);
    else
        flush_plain(p, n);
#else
    /* no user-mode line flush: evict by writing a buffer twice the LLC */
    static uint8_t *sweep;
    static size_t sweep_n;
    if (!sweep) {
        sweep_n = SW_MAX(2 * bk_cpu_llc_bytes(), 64 * MIB);
        sweep = malloc(sweep_n);
        if (!sweep) return;
    }
    for (size_t i = 0; i < sweep_n; i += 64)
        sweep[i]++;
#endif
}

/* ---- memory probes -------------------------------------------------------------- */

typedef enum { MP_READ = 0, MP_COPY, MP_COPY_NT } mp_kind;

typedef struct mem_job {
    mp_kind kind;
    const uint8_t *src; /* shared: the segment; private: slot s reads src + s * n */
    uint8_t *dst;
    size_t n;  /* shared: segment bytes; private: bytes per slot */
    size_t pf; /* reads: software prefetch this many bytes ahead (0 = none) */
    int n_tasks;
    int inner;               /* private: passes over the slot's buffer per task */
    bool private_;           /* each thread its own buffer (L1, L2) */
    uint64_t sink[64];       /* per slot, keeps the sums alive */
    double best_task[64];    /* private: per slot, the fastest task's seconds */
    double t0[256], t1[256]; /* shared: each task's start and end */
} mem_job;

#if BK_X86
/* The read loops, plain or with the decode kernels' software prefetch
 * (cpu_pack_avx2.h: each line into L2 `pf` bytes ahead, then into L1 a
 * quarter of that ahead). On this host's DRAM a prefetched read streams
 * 5-10 % faster than with the hardware prefetchers alone; elsewhere it may
 * not, so the probe keeps the better of the two. */
#define READ_LOOP(STEP, BODY)                                                                      \
    do {                                                                                           \
        if (pf)                                                                                    \
            for (size_t i = 0; i + (STEP) <= n; i += (STEP)) {                                     \
                for (size_t l = 0; l < (STEP); l += 64) {                                          \
                    _mm_prefetch((const char *)(p + i + pf + l), _MM_HINT_T1);                     \
                    _mm_prefetch((const char *)(p + i + pf / 4 + l), _MM_HINT_T0);                 \
                }                                                                                  \
                BODY;                                                                              \
            }                                                                                      \
        else                                                                                       \
            for (size_t i = 0; i + (STEP) <= n; i += (STEP)) {                                     \
                BODY;                                                                              \
            }                                                                                      \
    } while (0)

__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint8_t *p, size_t n,
                                                               size_t pf) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    READ_LOOP(256, {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(p + i + 192)));
    });
    uint64_t v[8]; /* unsigned: the sums wrap, and the header's reduce adds signed */
    _mm512_storeu_si512((void *)v,
                        _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

__attribute__((target("avx512f"))) static void copy_avx512(const uint8_t *s, uint8_t *d, size_t n,
                                                           bool nt) {
    if (nt) {
        for (size_t i = 0; i + 256 <= n; i += 256)
            for (int j = 0; j < 256; j += 64)
                _mm512_stream_si512((void *)(d + i + j),
                                    _mm512_load_si512((const void *)(s + i + j)));
        _mm_sfence();
    } else {
        for (size_t i = 0; i + 256 <= n; i += 256)
            for (int j = 0; j < 256; j += 64)
                _mm512_store_si512((void *)(d + i + j),
                                   _mm512_load_si512((const void *)(s + i + j)));
    }
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n, size_t pf) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    READ_LOOP(128, {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    });
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)v, s);
    return v[0] + v[1] + v[2] + v[3];
}

__attribute__((target("avx2"))) static void copy_avx2(const uint8_t *s, uint8_t *d, size_t n,
                                                      bool nt) {
    if (nt) {
        for (size_t i = 0; i + 128 <= n; i += 128)
            for (int j = 0; j < 128; j += 32)
                _mm256_stream_si256((__m256i *)(d + i + j),
                                    _mm256_load_si256((const __m256i *)(s + i + j)));
        _mm_sfence();
    } else {
        for (size_t i = 0; i + 128 <= n; i += 128)
            for (int j = 0; j < 128; j += 32)
                _mm256_store_si256((__m256i *)(d + i + j),
                                   _mm256_load_si256((const __m256i *)(s + i + j)));
    }
}
#endif

static uint64_t read_c(const uint8_t *p, size_t n, size_t pf) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) {
        if (pf && i % 8 == 0) __builtin_prefetch(p + i * 8 + pf);
        s0 += q[i];
        s1 += q[i + 1];
        s2 += q[i + 2];
        s3 += q[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

static int g_width = -1; /* widest loads the host has: 512, 256 or 64 bits */

static int host_width(void) {
    if (g_width < 0) {
        g_width = 64;
#if BK_X86
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f"))
            g_width = 512;
        else if (__builtin_cpu_supports("avx2"))
            g_width = 256;
#endif
    }
    return g_width;
}

static uint64_t read_any(const uint8_t *p, size_t n, size_t pf) {
#if BK_X86
    if (g_width == 512) return read_avx512(p, n, pf);
    if (g_width == 256) return read_avx2(p, n, pf);
#endif
    return read_c(p, n, pf);
}

static void copy_any(const uint8_t *s, uint8_t *d, size_t n, bool nt) {
#if BK_X86
    if (g_width == 512) return copy_avx512(s, d, n, nt);
    if (g_width == 256) return copy_avx2(s, d, n, nt);
#endif
    (void)nt;
    memcpy(d, s, n);
}

/* Shared buffers (DRAM, LLC): 4 tasks per thread over consecutive slices of
 * the segment; a sample runs from the first task's start to the last one's
 * end (the pool's dispatch is not the memory's time). On a shared machine a
 * worker may start late or not at all: such samples are slower, and only the
 * best sample counts. Private buffers (L1, L2): each task timed alone. */
#define MAX_TASKS 256

static void mem_task(void *ctx, int64_t task, int slot) {
    mem_job *j = ctx;
    const uint8_t *s;
    uint8_t *d;
    size_t n;
    if (j->private_) {
        s = j->src + (size_t)slot * j->n;
        d = j->dst ? j->dst + (size_t)slot * j->n : NULL;
        n = j->n;
    } else {
        size_t a = j->n * (size_t)task / (size_t)j->n_tasks / 256 * 256,
               b = j->n * (size_t)(task + 1) / (size_t)j->n_tasks / 256 * 256;
        s = j->src + a;
        d = j->dst ? j->dst + a : NULL;
        n = b - a;
    }
    uint64_t sum = 0;
    const double t0 = sw_time_s();
    for (int r = 0; r < (j->private_ ? j->inner : 1); r++) {
        if (j->kind == MP_READ)
            sum += read_any(s, n, j->pf);
        else
            copy_any(s, d, n, j->kind == MP_COPY_NT);
    }
    const double t1 = sw_time_s();
    if (j->private_) {
        double *b = &j->best_task[slot & 63];
        if (*b == 0 || t1 - t0 < *b) *b = t1 - t0;
    } else {
        j->t0[task] = t0;
        j->t1[task] = t1;
    }
    j->sink[slot & 63] += sum;
}

/* Time one job; return its GB/s (bytes = what its tasks read, plus written). */
static double mem_job_run(sw_threadpool *tp, mem_job *j) {
    double t0 = sw_time_s();
    sw_threadpool_run(tp, mem_task, j, j->n_tasks);
    double dt = sw_time_s() - t0;
    if (!j->private_) {
        double a = j->t0[0], b = j->t1[0];
        for (int k = 1; k < j->n_tasks; k++) {
            a = SW_MIN(a, j->t0[k]);
            b = SW_MAX(b, j->t1[k]);
        }
        dt = b - a;
    }
    double per_task = j->private_ ? (double)j->n * j->inner : (double)j->n / j->n_tasks;
    double bytes = per_task * j->n_tasks * (j->kind == MP_READ ? 1.0 : 2.0);
    return dt > 0 ? bytes / dt * 1e-9 : 0.0;
}

static void *alloc_touched(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 4096, n) != 0) return NULL;
    memset(p, 1, n); /* fault every page in before timing */
    return p;
}

/* Copies write 2112 bytes (33 lines) past the source's offset within a page:
 * a store 4 KiB apart from a load in flight stalls it (4K aliasing). */
#define DST_SKEW 2112

/* A streaming probe over one buffer shared by all threads: read segments,
 * and copies from its first half to its second, each segment timed alone;
 * the probe keeps the best segment of each. Segments continue where the
 * last call stopped, cycling over the buffer: the DRAM probe (a buffer well
 * beyond the LLC, so every segment comes from DRAM) runs a few segments
 * between the rows as well, so its samples span the run like the kernels'. */
struct bk_stream {
    uint8_t *buf;
    size_t total, seg, read_off, copy_off;
    size_t step;  /* segments from one timed segment to the next (see stream_open) */
    size_t cycle; /* segments in a pass */
    size_t reads; /* read segments timed so far (pass k = reads / cycle) */
    /* per segment of the buffer, its fastest read and copy so far (seconds;
     * 0 = not yet timed); either moves seg bytes (a copy reads and writes
     * seg / 2) */
    double *read_best, *copy_best;
    bool cold; /* DRAM: flush each segment before it is timed, as the rows' operands are */
};

static size_t gcd_size(size_t a, size_t b) {
    while (b) {
        const size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void stream_close(bk_stream *s) {
    if (s) {
        free(s->buf);
        free(s->read_best);
        free(s->copy_best);
    }
    free(s);
}

static sw_status stream_open(bk_ctx *x, size_t total, size_t seg, bk_stream **out, sw_err *err) {
    const size_t unit = 4096 * (size_t)x->threads;
    seg = SW_MAX(seg / unit * unit, unit);
    total = SW_MAX(total / (2 * seg), (size_t)2) * (2 * seg);
    bk_stream *s = calloc(1, sizeof *s);
    if (s) s->buf = alloc_touched(total + DST_SKEW);
    if (!s || !s->buf) {
        free(s);
        return sw_err_set(err, SW_E_NOMEM, "memory probe: cannot allocate %zu MiB", total >> 20);
    }
    s->total = total;
    s->seg = seg;
    /* Consecutive segments are a third of the buffer apart, not neighbours
     * (the prefetchers run on past a segment's end). The step, in segments,
     * is coprime with the cycle (total / seg segments for reads, as many
     * half-segments over half the buffer for copies), so one cycle of
     * segments covers the buffer exactly once: a pass. */
    const size_t cycle = total / seg;
    size_t step = cycle / 3 | 1;
    while (step > 1 && gcd_size(step, cycle) != 1)
        step += 2;
    s->step = step < cycle ? step : 1;
    s->cycle = cycle;
    s->read_best = calloc(cycle, sizeof *s->read_best);
    s->copy_best = calloc(cycle, sizeof *s->copy_best);
    if (!s->read_best || !s->copy_best) {
        stream_close(s);
        return sw_err_set(err, SW_E_NOMEM, "memory probe: out of memory");
    }
    *out = s;
    return SW_OK;
}

/* bytes per segment over the sum of the fastest times of the segments of
 * one kind (every `every`-th, starting at `first`); 0 until each has been
 * timed */
static double best_pass(const double *best, size_t cycle, size_t first, size_t every,
                        double bytes) {
    double t = 0, b = 0;
    for (size_t i = first; i < cycle; i += every) {
        if (best[i] <= 0) return 0;
        t += best[i];
        b += bytes;
    }
    return t > 0 ? b / t * 1e-9 : 0;
}

/* Keep a segment's time if it is its fastest so far. */
static void keep_fastest(double *best, double bytes, double gbps) {
    const double t = gbps > 0 ? bytes / gbps * 1e-9 : 0;
    if (t > 0 && (*best == 0 || t < *best)) *best = t;
}

/* The figure of a stream is its best whole pass, STREAM-style, built from
 * the buffer's segments: each segment's fastest time over the passes so far
 * (reads: alternately plain and with a software prefetch), summed over the
 * buffer. A segment that a preemption or a neighbour slowed in one pass is
 * taken from another, and one freak sample moves the figure by 1 / cycle of
 * its gain, not all of it (the best single segment, kept as information,
 * was 41-55 GB/s here from run to run, set by one sample -- the second, where
 * traced -- where no other of ~1000 segments passed 36). */
static void stream_run(bk_ctx *x, sw_threadpool *tp, bk_stream *s, size_t n_read, size_t n_copy,
                       bk_mem_probe *m) {
    mem_job j;
    memset(&j, 0, sizeof j);
    j.n_tasks = SW_MIN(4 * x->threads, MAX_TASKS); /* as the decode matmul splits its rows */
    j.n = s->seg;
    j.kind = MP_READ;
    for (size_t i = 0; i < n_read; i++, s->reads++) {
        j.src = s->buf + s->read_off;
        j.pf = (s->reads / s->cycle) % 2 ? BK_READ_PREFETCH : 0;
        if (s->cold) bk_cpu_flush(j.src, j.n);
        const double g = mem_job_run(tp, &j);
        m->read_seg_gbps = SW_MAX(m->read_seg_gbps, g);
        keep_fastest(&s->read_best[s->read_off / s->seg], (double)s->seg, g);
        s->read_off = (s->read_off + s->seg * s->step) % s->total;
    }
    const size_t half = s->total / 2;
    j.n = s->seg / 2;
    j.pf = 0;
    for (size_t i = 0; i < n_copy; i++) {
        const size_t k = s->copy_off / j.n;
        j.src = s->buf + s->copy_off;
        j.dst = s->buf + half + s->copy_off + DST_SKEW;
        j.kind = k % 2 ? MP_COPY_NT : MP_COPY;
        if (s->cold) {
            bk_cpu_flush(j.src, j.n);
            bk_cpu_flush(j.dst, j.n);
        }
        keep_fastest(&s->copy_best[k], (double)s->seg, mem_job_run(tp, &j));
        s->copy_off = (s->copy_off + j.n * s->step) % half;
    }
    m->read_gbps = SW_MAX(m->read_gbps, best_pass(s->read_best, s->cycle, 0, 1, (double)s->seg));
    /* copies: the better of the normal-store and the streaming-store halves */
    for (size_t k = 0; k < 2; k++)
        m->copy_gbps =
            SW_MAX(m->copy_gbps, best_pass(s->copy_best, s->cycle, k, 2, (double)s->seg));
    m->bytes = s->total;
}

/* A private cache level (L1, L2): each thread reads and copies its own
 * buffer of `per` bytes, hot, many times per task. */
static sw_status probe_private(bk_ctx *x, sw_threadpool *tp, const char *level, size_t per,
                               bk_mem_probe *m, sw_err *err) {
    const int nth = x->threads;
    per = SW_MAX(per / 512 * 512, (size_t)4096);
    const size_t n = per * (size_t)nth;
    uint8_t *src = alloc_touched(n), *dst = alloc_touched(n + DST_SKEW);
    if (!src || !dst) {
        free(src);
        free(dst);
        return sw_err_set(err, SW_E_NOMEM, "memory probe (%s): out of memory", level);
    }
    mem_job j;
    memset(&j, 0, sizeof j);
    j.private_ = true;
    j.src = src;
    j.n_tasks = 4 * nth;
    j.inner = (int)SW_MAX((size_t)1, 8 * MIB / per);
    const int cores = SW_MIN(nth, physical_cores());
    for (int k = MP_READ; k <= MP_COPY; k++) { /* streaming stores would leave the cache */
        j.kind = (mp_kind)k;
        j.dst = k == MP_READ ? NULL : dst + DST_SKEW;
        j.n = k == MP_READ ? per : per / 2; /* a copy's source and destination share the level */
        memset(j.best_task, 0, sizeof j.best_task);
        double best = 0;
        for (int s = 0; s < samples(x); s++)
            best = SW_MAX(best, mem_job_run(tp, &j));
        /* a private cache serves its core alone: as for compute, the fastest
         * task times the cores is a bound no job can pass */
        double task = 1e30;
        for (int t = 0; t < 64; t++)
            if (j.best_task[t] > 0) task = SW_MIN(task, j.best_task[t]);
        const double task_bytes = (double)j.n * j.inner * (k == MP_READ ? 1.0 : 2.0);
        best = SW_MAX(best, task_bytes / task * 1e-9 * cores);
        if (k == MP_READ)
            m->read_gbps = best;
        else
            m->copy_gbps = best;
    }
    m->level = level;
    m->bytes = n;
    free(src);
    free(dst);
    return SW_OK;
}

/* ---- compute probes ------------------------------------------------------------- */

typedef struct comp_job {
    int64_t iters;
    int isa; /* 0 scalar, 1 avx2, 2 avxvnni, 3 avx512 */
    bool f32;
    volatile int64_t sink[64];
    double best_task[64]; /* per slot: the fastest task's seconds */
} comp_job;

/* Ops (2 per multiply-add) of one iteration of each loop below. */
static double comp_ops_per_iter(int isa, bool f32) {
    if (f32) return isa == 3 ? 12 * 16 * 2 : isa >= 1 ? 12 * 8 * 2 : 256 * 2;
    return isa == 3 ? 12 * 64 * 2 : isa == 2 ? 12 * 32 * 2 : isa == 1 ? 8 * 32 * 2 : 4096 * 2;
}

/* Hide a register's value from the optimizer (no instruction is emitted), so
 * the loops below cannot be folded: x for xmm/ymm, v for zmm. */
#define OPAQUE(v) __asm__ volatile("" : "+x"(v))
#define OPAQUE_Z(v) __asm__ volatile("" : "+v"(v))

/* Twelve independent accumulators c0..c11, each updated by STEP(c) once per
 * iteration: enough to cover the latency of every instruction below. They
 * start from different values: equal ones would let the compiler see twelve
 * identical chains and keep one. */
#define ACC12(T, INIT)                                                                             \
    T c0 = INIT(0), c1 = INIT(1), c2 = INIT(2), c3 = INIT(3), c4 = INIT(4), c5 = INIT(5),          \
      c6 = INIT(6), c7 = INIT(7), c8 = INIT(8), c9 = INIT(9), c10 = INIT(10), c11 = INIT(11)
#define EACH12(STEP)                                                                               \
    STEP(c0);                                                                                      \
    STEP(c1);                                                                                      \
    STEP(c2);                                                                                      \
    STEP(c3);                                                                                      \
    STEP(c4);                                                                                      \
    STEP(c5);                                                                                      \
    STEP(c6);                                                                                      \
    STEP(c7);                                                                                      \
    STEP(c8);                                                                                      \
    STEP(c9);                                                                                      \
    STEP(c10);                                                                                     \
    STEP(c11)
#define SUM12(add)                                                                                 \
    add(add(add(add(c0, c1), add(c2, c3)), add(add(c4, c5), add(c6, c7))),                         \
        add(add(c8, c9), add(c10, c11)))

/* One peak loop: vectors a and b hidden from the optimizer every iteration,
 * twelve accumulators each updated by STEP(c, a, b), summed at the end. */
#define PEAK_LOOP(name, tgt, T, A, B, INIT, STEP, HIDE, ADD, REDUCE)                               \
    __attribute__((target(tgt))) static int64_t name(int64_t iters) {                              \
        T a = A, b = B;                                                                            \
        ACC12(T, INIT);                                                                            \
        for (int64_t i = 0; i < iters; i++) {                                                      \
            HIDE(a);                                                                               \
            HIDE(b);                                                                               \
            EACH12(STEP);                                                                          \
        }                                                                                          \
        return (int64_t)REDUCE(SUM12(ADD));                                                        \
    }

#if BK_X86
/* Horizontal sums in unsigned arithmetic: the accumulators wrap by design
 * (the value only keeps the loop alive), which signed C addition must not. */
__attribute__((target("avx2"))) static uint32_t hsum_epi32_ymm(__m256i s) {
    uint32_t v[8];
    _mm256_storeu_si256((__m256i *)v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}
__attribute__((target("avx512f"))) static uint32_t hsum_epi32_zmm(__m512i s) {
    uint32_t v[16];
    _mm512_storeu_si512((void *)v, s);
    uint32_t t = 0;
    for (int i = 0; i < 16; i++)
        t += v[i];
    return t;
}
__attribute__((target("avx2"))) static float hsum_ps_ymm(__m256 s) {
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

#define INIT_ZI(k) _mm512_set1_epi32(k)
#define INIT_YI(k) _mm256_set1_epi32(k)
#define INIT_ZF(k) _mm512_set1_ps(1e-3f * (k))
#define INIT_YF(k) _mm256_set1_ps(1e-3f * (k))
#define DPBUSD_Z(c) c = _mm512_dpbusd_epi32(c, a, b)
#define DPBUSD_Y(c) c = _mm256_dpbusd_avx_epi32(c, a, b)
#define FMA_Z(c) c = _mm512_fmadd_ps(c, a, b)
#define FMA_Y(c) c = _mm256_fmadd_ps(c, a, b)
PEAK_LOOP(i8_avx512, "avx512f,avx512bw,avx512vnni", __m512i, _mm512_set1_epi8(3),
          _mm512_set1_epi8(-5), INIT_ZI, DPBUSD_Z, OPAQUE_Z, _mm512_add_epi32, hsum_epi32_zmm)
PEAK_LOOP(i8_avxvnni, "avx2,avxvnni", __m256i, _mm256_set1_epi8(3), _mm256_set1_epi8(-5), INIT_YI,
          DPBUSD_Y, OPAQUE, _mm256_add_epi32, hsum_epi32_ymm)
PEAK_LOOP(f32_avx512, "avx512f", __m512, _mm512_set1_ps(0.999f), _mm512_set1_ps(1e-3f), INIT_ZF,
          FMA_Z, OPAQUE_Z, _mm512_add_ps, _mm512_reduce_add_ps)
PEAK_LOOP(f32_avx2, "avx2,fma", __m256, _mm256_set1_ps(0.999f), _mm256_set1_ps(1e-3f), INIT_YF,
          FMA_Y, OPAQUE, _mm256_add_ps, hsum_ps_ymm)

/* The AVX2 kernels' int8 sequence: u8 x s8 pairs to i16 (vpmaddubsw), pairs
 * of i16 to i32 (vpmaddwd with ones), accumulate (vpaddd); eight chains (the
 * sixteen ymm registers hold no more). a is hidden before every chain, else
 * the compiler would compute the product once. */
__attribute__((target("avx2"))) static int64_t i8_avx2(int64_t iters) {
    __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-5), ones = _mm256_set1_epi16(1);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
            c7 = c0;
#define STEP(c)                                                                                    \
    OPAQUE(a);                                                                                     \
    c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones))
    for (int64_t i = 0; i < iters; i++) {
        OPAQUE(b);
        STEP(c0);
        STEP(c1);
        STEP(c2);
        STEP(c3);
        STEP(c4);
        STEP(c5);
        STEP(c6);
        STEP(c7);
    }
#undef STEP
    return hsum_epi32_ymm(
        _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                         _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7))));
}
#endif

/* The scalar kernel set is portable C: so are its probes, a dot product over
 * L1-resident arrays that the compiler vectorizes as it does the kernels. */
static int64_t i8_c(int64_t iters) {
    static uint8_t a[4096];
    static int8_t b[4096];
    for (int i = 0; i < 4096; i++) {
        a[i] = (uint8_t)(i * 7);
        b[i] = (int8_t)(i * 13);
    }
    int64_t total = 0;
    for (int64_t it = 0; it < iters; it++) {
        const uint8_t *pa = a;
        __asm__ volatile("" : "+r"(pa));
        int32_t s = 0;
        for (int i = 0; i < 4096; i++)
            s += pa[i] * b[i];
        total += s;
    }
    return total;
}

static int64_t f32_c(int64_t iters) {
    float acc[256], a[256];
    for (int i = 0; i < 256; i++) {
        acc[i] = 0.0f;
        a[i] = 1.0f + (float)i * 1e-6f;
    }
    for (int64_t it = 0; it < iters; it++) {
        float *pa = a;
        __asm__ volatile("" : "+r"(pa));
        for (int i = 0; i < 256; i++)
            acc[i] = acc[i] * pa[i] + 1e-3f;
    }
    float s = 0;
    for (int i = 0; i < 256; i++)
        s += acc[i];
    return (int64_t)s;
}

static void comp_task(void *ctx, int64_t task, int slot) {
    (void)task;
    comp_job *j = ctx;
    int64_t r = 0;
    const double t0 = sw_time_s();
#if BK_X86
    if (j->f32) {
        if (j->isa == 3)
            r = f32_avx512(j->iters);
        else if (j->isa >= 1)
            r = f32_avx2(j->iters);
        else
            r = f32_c(j->iters);
    } else {
        if (j->isa == 3)
            r = i8_avx512(j->iters);
        else if (j->isa == 2)
            r = i8_avxvnni(j->iters);
        else if (j->isa == 1)
            r = i8_avx2(j->iters);
        else
            r = i8_c(j->iters);
    }
#else
    r = j->f32 ? f32_c(j->iters) : i8_c(j->iters);
#endif
    const double dt = sw_time_s() - t0;
    j->sink[slot & 63] = r;
    if (j->best_task[slot & 63] == 0 || dt < j->best_task[slot & 63]) j->best_task[slot & 63] = dt;
}

/* Best Gop/s of samples(x) jobs of 8 tasks of about 0.4 ms per thread, or of
 * its fastest single task times the cores the threads have, whichever is
 * more: on a shared machine a job rarely has every thread running at once,
 * but no thread can do more than its fastest task (so the second figure can
 * only be too high, never too low). */
static double probe_compute(bk_ctx *x, sw_threadpool *tp, int isa, bool f32) {
    comp_job j;
    memset(&j, 0, sizeof j);
    j.isa = isa;
    j.f32 = f32;
    const double per_iter = comp_ops_per_iter(isa, f32);
    const int n_tasks = 8 * x->threads;
    j.iters = 64;
    for (;;) { /* calibrate on this thread */
        comp_task(&j, 0, 0);
        if (j.best_task[0] > 1e-4) break;
        j.iters *= 2;
        j.best_task[0] = 0;
    }
    j.iters = (int64_t)((double)j.iters * 4e-4 / j.best_task[0]) + 1;
    memset(j.best_task, 0, sizeof j.best_task);
    double best = 0;
    for (int s = 0; s < samples(x); s++) {
        double t0 = sw_time_s();
        sw_threadpool_run(tp, comp_task, &j, n_tasks);
        double dt = sw_time_s() - t0;
        best = SW_MAX(best, per_iter * (double)j.iters * n_tasks / dt * 1e-9);
    }
    double task = 1e30;
    for (int k = 0; k < 64; k++)
        if (j.best_task[k] > 0) task = SW_MIN(task, j.best_task[k]);
    const int cores = SW_MIN(x->threads, physical_cores());
    return SW_MAX(best, per_iter * (double)j.iters / task * 1e-9 * cores);
}

static int isa_index(const char *isa) {
    if (!strcmp(isa, "avx512")) return 3;
    if (!strcmp(isa, "avxvnni")) return 2;
    if (!strcmp(isa, "avx2")) return 1;
    return 0;
}

sw_status bk_cpu_peaks(bk_ctx *x, bk_phase phase, sw_err *err) {
    sw_threadpool *tp = sw_backend_cpu_threadpool(x->be);
    bk_peaks *pk = &x->peaks;
    host_width();
    sw_status st;
    const size_t seg = BK_SEG_PER_THREAD * (size_t)x->threads;
    if (phase == BK_FIRST) {
        cache_info c = caches();
        pk->n_mem = 0;
        if (x->hot) {
            if (c.l1d && (st = probe_private(x, tp, "l1", c.l1d / 2, &pk->mem[pk->n_mem++], err)))
                return st;
            if (c.l2 && c.l2_private &&
                (st = probe_private(x, tp, "l2", c.l2 / 2, &pk->mem[pk->n_mem++], err)))
                return st;
            if (c.llc > 2 * c.l2 * (size_t)x->threads) {
                bk_stream *llc = NULL;
                bk_mem_probe *m = &pk->mem[pk->n_mem++];
                m->level = "llc";
                if ((st = stream_open(x, c.llc / 2, SW_MIN(seg, c.llc / 16), &llc, err))) return st;
                size_t n = llc->total / llc->seg;
                stream_run(x, tp, llc, 4 * n, 4 * n, m);
                stream_close(llc);
            }
        }
        pk->mem[pk->n_mem].level = "dram";
        pk->n_mem++;
        snprintf(pk->mem_how, sizeof pk->mem_how,
                 "%d-bit loads into 4 sums; copy: normal or streaming stores; best whole pass, "
                 "in segments of %zu MiB per thread timed alone, also between the rows",
                 host_width(), BK_SEG_PER_THREAD >> 20);
        if ((st = stream_open(x, x->probe_bytes, seg, &x->dram, err))) return st;
        x->dram->cold = true;
    }
    if (!x->dram) return SW_OK;
    bk_mem_probe *dram = &pk->mem[pk->n_mem - 1];
    const size_t pass = x->dram->total / x->dram->seg;
    if (phase == BK_BETWEEN) {
        stream_run(x, tp, x->dram, x->quick ? 4 : 16, x->quick ? 4 : 16, dram);
        return SW_OK;
    }
    stream_run(x, tp, x->dram, (x->quick ? 2 : 12) * pass, (x->quick ? 1 : 2) * pass, dram);
    if (phase == BK_LAST) {
        stream_close(x->dram);
        x->dram = NULL;
    }

    const int isa = isa_index(bk_cpu_isa(x->be));
    static const char *const i8_how[] = {"C int8 dot product", "vpmaddubsw+vpmaddwd+vpaddd ymm",
                                         "vpdpbusd ymm (AVX-VNNI)", "vpdpbusd zmm"};
    static const char *const f32_how[] = {"C f32 multiply-add", "vfmadd ymm", "vfmadd ymm",
                                          "vfmadd zmm"};
    pk->gops[BK_C_INT8] = SW_MAX(pk->gops[BK_C_INT8], probe_compute(x, tp, isa, false));
    pk->gops[BK_C_F32] = SW_MAX(pk->gops[BK_C_F32], probe_compute(x, tp, isa, true));
    snprintf(pk->how[BK_C_INT8], sizeof pk->how[0], "%s", i8_how[isa]);
    snprintf(pk->how[BK_C_F32], sizeof pk->how[0], "%s", f32_how[isa]);
    return SW_OK;
}

double bk_cpu_read_time(bk_ctx *x, size_t bytes) {
    host_width();
    uint8_t *buf = bytes >= 256 ? alloc_touched(bytes) : NULL;
    if (!buf) return -1;
    mem_job j;
    memset(&j, 0, sizeof j);
    j.n_tasks = SW_MIN(4 * x->threads, MAX_TASKS);
    j.n = bytes;
    j.kind = MP_READ;
    j.src = buf;
    /* the best undisturbed try (no thread waited for a CPU more than 2 % of
     * its runnable time, as the rows' best call), else the best try */
    double best = 0, best_clean = 0;
    for (int r = 0; r < SW_MAX(2 * x->reps, 24); r++) {
        j.pf = r % 2 ? BK_READ_PREFETCH : 0; /* plain and prefetched, as the probe */
        bk_cpu_flush(buf, bytes);
        double c0, w0, c1, w1;
        const bool known0 = bk_cpu_sched(&c0, &w0);
        const double g = mem_job_run(sw_backend_cpu_threadpool(x->be), &j);
        const bool known = bk_cpu_sched(&c1, &w1) && known0;
        const double dw = SW_MAX(0.0, w1 - w0), dc = SW_MAX(0.0, c1 - c0);
        best = SW_MAX(best, g);
        if (known && dw < 0.02 * (dw + dc)) best_clean = SW_MAX(best_clean, g);
    }
    free(buf);
    if (best_clean > 0) best = best_clean;
    return best > 0 ? (double)bytes / (best * 1e9) : -1;
}

void bk_cpu_peaks_free(bk_ctx *x) {
    stream_close(x->dram);
    x->dram = NULL;
}
