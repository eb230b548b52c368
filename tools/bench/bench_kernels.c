/* bench_kernels.c — `spillway-bench kernels`: microbenchmarks of backend ops.
 *
 * For matmul, for each weight type and shape K,N,T: the median time of --reps
 * runs after warm-up, the weight bytes streamed per second (the figure of
 * merit at T = 1, where a matmul is a pass over the weights), GFLOP/s (2KNT
 * per call; the figure of merit for prefill) and the percentage of a memory
 * bandwidth peak measured in the same run by a multi-threaded read-only sum
 * over a 256 MiB buffer. Weights are replicated into enough copies to exceed
 * 96 MiB, and successive runs cycle through the copies, so a batch-1 matmul
 * reads DRAM as in a real decode step rather than a last-level-cache hit
 * (--hot turns this off, to see the kernels' compute limit). Weights go in
 * through the backend's weight upload, as the engine loads a model, so a
 * backend that repacks them (the CPU's 8-row layout) is measured in the layout
 * it runs; --plain keeps the raw GGUF layout instead. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_kernels_cuda.h"
#include "spillway.h"

#define PROBE_BYTES ((size_t)256 << 20)
#define COLD_BYTES ((size_t)96 << 20)
#define MAX_SHAPES 16

typedef struct {
    long long K, N, T;
} shape;

static void usage(FILE *f) {
    fprintf(f, "usage: spillway-bench kernels [--backend cpu|cuda|vulkan|auto] [--op matmul]\n"
               "                              [--type q4_0,q8_0,...] [--shape K,N,T]... "
               "[--threads N]\n"
               "                              [--reps R] [--hot] [--plain] [--json]\n"
               "  --shape may be repeated (also KxNxT); default 4096,4096,1 and 4096,4096,64\n"
               "  --type defaults to every type the backend supports\n"
               "  --hot: one weight copy, reused (cache-resident when small); default cycles\n"
               "         through copies totalling > 96 MiB so weights come from DRAM\n"
               "  --plain: upload weights in the raw GGUF layout (default: the layout the\n"
               "           engine loads them in, e.g. the CPU's 8-row packing)\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- bandwidth probe -------------------------------------------------------- */

typedef struct {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} probe_arg;

static void *probe_thread(void *a) {
    probe_arg *pa = a;
    /* four independent sums so the loop is bound by loads, not add latency */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= pa->n; i += 4) {
        s0 += pa->p[i];
        s1 += pa->p[i + 1];
        s2 += pa->p[i + 2];
        s3 += pa->p[i + 3];
    }
    for (; i < pa->n; i++)
        s0 += pa->p[i];
    pa->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Best of 5 read-only passes over 256 MiB with n_threads threads, in GB/s (best,
 * not median: other processes only ever slow a pass down). */
static double probe_bandwidth(int n_threads) {
    size_t n = PROBE_BYTES / sizeof(uint64_t);
    uint64_t *buf = malloc(PROBE_BYTES);
    if (!buf) return 0.0;
    for (size_t i = 0; i < n; i++)
        buf[i] = i;
    if (n_threads < 1) n_threads = 1;
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    probe_arg *args = calloc((size_t)n_threads, sizeof *args);
    double best = 0.0;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < 5 && th && args; rep++) {
        double t0 = sw_time_s();
        for (int i = 0; i < n_threads; i++) {
            size_t a = n * (size_t)i / (size_t)n_threads,
                   b = n * (size_t)(i + 1) / (size_t)n_threads;
            args[i] = (probe_arg){buf + a, b - a, 0};
            pthread_create(&th[i], NULL, probe_thread, &args[i]);
        }
        for (int i = 0; i < n_threads; i++) {
            pthread_join(th[i], NULL);
            sink += args[i].sum;
        }
        double dt = sw_time_s() - t0;
        double gbps = (double)PROBE_BYTES / dt * 1e-9;
        if (gbps > best) best = gbps;
    }
    (void)sink;
    free(th);
    free(args);
    free(buf);
    return best;
}

/* ---- matmul ------------------------------------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

typedef struct {
    const char *type;
    shape s;
    int threads;
    double time_us, best_us, cpu_us, gbps, gflops;
} result;

/* CPU time of the calling thread: with --threads 1 the pool runs every task
 * on the caller, so this is the kernel's own time, whatever else the
 * machine runs (a loaded shared host stretches wall time, not this). */
static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sw_status bench_matmul(sw_backend *be, sw_type type, shape s, int reps, bool hot,
                              bool plain, result *r, sw_err *err) {
    size_t row = sw_row_size(type, s.K);
    if (row == 0)
        return sw_err_set(err, SW_E_INVALID_ARG, "K = %lld is not a multiple of the %s block size",
                          s.K, sw_type_name(type));
    size_t wbytes = row * (size_t)s.N;
    int copies = hot ? 1 : (int)((COLD_BYTES + wbytes - 1) / wbytes);
    if (!hot && copies < 2) copies = 2;
    sw_status st = SW_OK;
    sw_buffer *bw = NULL, *bx = NULL, *bo = NULL;
    float *xf = NULL, *rowf = NULL;
    uint8_t *rowq = NULL, *wq = NULL;
    double *times = NULL;

    /* one real quantized row, replicated: the timing does not depend on the
     * values, and quantizing 16M weights per type would dominate the run */
    rowf = malloc(sizeof(float) * (size_t)s.K);
    rowq = malloc(row);
    xf = malloc(sizeof(float) * (size_t)(s.K * s.T));
    times = malloc(sizeof(double) * (size_t)reps * 2);
    if (!rowf || !rowq || !xf || !times) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    for (long long i = 0; i < s.K; i++)
        rowf[i] = frand();
    for (long long i = 0; i < s.K * s.T; i++)
        xf[i] = frand();
    if ((st = sw_quantize_row(type, rowf, rowq, s.K, err)) != SW_OK) goto done;
    if ((st = sw_be_buf_alloc(be, wbytes * (size_t)copies, SW_BUF_WEIGHTS, &bw, err)) != SW_OK)
        goto done;
    if (!(wq = malloc(wbytes))) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)s.N; i++)
        memcpy(wq + i * row, rowq, row);
    for (int c = 0; c < copies; c++) {
        sw_tensor tw = sw_tensor_make(bw, wbytes * (size_t)c, type, s.K, s.N, 1, 1);
        st = plain ? sw_be_upload(be, bw, tw.offset, wq, wbytes, err)
                   : sw_be_upload_weight(be, &tw, wq, err);
        if (st != SW_OK) goto done;
    }
    if ((st = sw_be_buf_alloc(be, sizeof(float) * (size_t)(s.K * s.T), SW_BUF_COMPUTE, &bx, err)) ||
        (st = sw_be_buf_alloc(be, sizeof(float) * (size_t)(s.N * s.T), SW_BUF_COMPUTE, &bo, err)))
        goto done;
    if ((st = sw_be_upload(be, bx, 0, xf, sizeof(float) * (size_t)(s.K * s.T), err))) goto done;
    sw_tensor tx = sw_tensor_make(bx, 0, SW_TYPE_F32, s.K, s.T, 1, 1);
    sw_tensor to = sw_tensor_make(bo, 0, SW_TYPE_F32, s.N, s.T, 1, 1);
    for (int i = -2; i < reps; i++) { /* two warm-up runs */
        sw_tensor tw =
            sw_tensor_make(bw, wbytes * (size_t)((i + 2) % copies), type, s.K, s.N, 1, 1);
        double t0 = sw_time_s(), c0 = thread_cpu_s();
        if ((st = sw_be_begin(be, err)) || (st = sw_be_matmul(be, &tw, &tx, NULL, &to, err)) ||
            (st = sw_be_end(be, err)))
            goto done;
        if (i >= 0) {
            times[i] = sw_time_s() - t0;
            times[reps + i] = thread_cpu_s() - c0;
        }
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    qsort(times + reps, (size_t)reps, sizeof *times, cmp_double);
    r->cpu_us = 1e6 * (reps % 2 ? times[reps + reps / 2]
                                : 0.5 * (times[reps + reps / 2 - 1] + times[reps + reps / 2]));
    double t = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    r->type = sw_type_name(type);
    r->s = s;
    r->time_us = t * 1e6;
    r->best_us = times[0] * 1e6; /* other processes only ever slow a run down */
    r->gbps = (double)wbytes / t * 1e-9;
    r->gflops = 2.0 * (double)s.K * (double)s.N * (double)s.T / t * 1e-9;
done:
    sw_be_buf_free(be, bw);
    sw_be_buf_free(be, bx);
    sw_be_buf_free(be, bo);
    free(rowf);
    free(rowq);
    free(wq);
    free(xf);
    free(times);
    return st;
}

static int parse_shape(const char *a, shape *s) {
    char *end;
    long long v[3];
    const char *p = a;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        v[i] = strtoll(p, &end, 10);
        if (errno || end == p || v[i] <= 0) return -1;
        if (i < 2) {
            if (*end != ',' && *end != 'x' && *end != 'X') return -1;
            p = end + 1;
        } else if (*end) {
            return -1;
        }
    }
    s->K = v[0];
    s->N = v[1];
    s->T = v[2];
    return 0;
}

int sw_bench_kernels_main(int argc, char **argv) {
    /* The CUDA kernels bench has its own options (--op attention, --no-graphs,
     * ...): hand the whole command line over before parsing it here. */
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--backend") && !strcmp(argv[i + 1], "cuda"))
            return sw_bench_kernels_cuda(argc, argv);
    const char *backend = "cpu", *op = "matmul", *types = NULL;
    shape shapes[MAX_SHAPES];
    int n_shapes = 0, threads = 0, reps = 10;
    bool json = false, hot = false, plain = false;
    /* argv[0] is the subcommand name when main.c passes it; tolerate both */
    int i0 = (argc > 0 && argv[0] && argv[0][0] != '-') ? 1 : 0;
    for (int i = i0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--hot")) {
            hot = true;
        } else if (!strcmp(a, "--plain")) {
            plain = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (v && !strcmp(a, "--backend")) {
            backend = v, i++;
        } else if (v && !strcmp(a, "--op")) {
            op = v, i++;
        } else if (v && !strcmp(a, "--type")) {
            types = v, i++;
        } else if (v && !strcmp(a, "--threads")) {
            threads = atoi(v), i++;
        } else if (v && !strcmp(a, "--reps")) {
            reps = atoi(v), i++;
        } else if (v && !strcmp(a, "--shape")) {
            if (n_shapes == MAX_SHAPES || parse_shape(v, &shapes[n_shapes]) != 0) {
                fprintf(stderr,
                        "kernels: bad --shape '%s' (expected K,N,T with positive "
                        "integers; at most %d shapes)\n",
                        v, MAX_SHAPES);
                return 2;
            }
            n_shapes++, i++;
        } else {
            fprintf(stderr, "kernels: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(op, "matmul") != 0) {
        fprintf(stderr, "kernels: op '%s' has no benchmark yet (available: matmul)\n", op);
        return 2;
    }
    if (reps < 1) reps = 1;
    if (n_shapes == 0) {
        shapes[0] = (shape){4096, 4096, 1};
        shapes[1] = (shape){4096, 4096, 64};
        n_shapes = 2;
    }
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_backend_config cfg = {.name = backend, .n_threads = threads, .device = -1};
    if (sw_backend_create(&cfg, &be, &err) != SW_OK) {
        fprintf(stderr, "kernels: %s\n", err.msg);
        return 1;
    }
    static const sw_type all[] = {SW_TYPE_F32,  SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q8_0,
                                  SW_TYPE_Q4_0, SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1,
                                  SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K,
                                  SW_TYPE_Q6_K};
    sw_type list[64];
    int n_types = 0;
    if (types) {
        char *dup = strdup(types), *save = NULL;
        for (char *tok = strtok_r(dup, ",", &save); tok && n_types < 64;
             tok = strtok_r(NULL, ",", &save)) {
            if (sw_type_from_name(tok, &list[n_types], &err) != SW_OK) {
                fprintf(stderr, "kernels: %s\n", err.msg);
                free(dup);
                sw_backend_free(be);
                return 2;
            }
            n_types++;
        }
        free(dup);
    } else {
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            if (sw_be_supports_type(be, all[i])) list[n_types++] = all[i];
    }

    int nth = be->n_threads;
    double peak = probe_bandwidth(nth);
    if (!json)
        printf("backend %s, %d threads, weights in the %s layout; memory read bandwidth probe "
               "(256 MiB sum): %.2f GB/s\n",
               sw_backend_name(be), nth, plain ? "plain GGUF" : "engine's", peak);

    int rc = 0, n_out = 0;
    if (json)
        printf("[");
    else
        printf("%-6s %6s %6s %4s %10s %10s %10s %8s %8s %6s\n", "type", "K", "N", "T", "time_us",
               "best_us", "cpu_us", "GB/s", "GFLOP/s", "%peak");
    for (int si = 0; si < n_shapes; si++)
        for (int ti = 0; ti < n_types; ti++) {
            result r;
            memset(&r, 0, sizeof r);
            if (bench_matmul(be, list[ti], shapes[si], reps, hot, plain, &r, &err) != SW_OK) {
                fprintf(stderr, "kernels: matmul %s %lld,%lld,%lld: %s\n", sw_type_name(list[ti]),
                        shapes[si].K, shapes[si].N, shapes[si].T, err.msg);
                rc = 1;
                continue;
            }
            double pct = peak > 0 ? 100.0 * r.gbps / peak : 0.0;
            if (json)
                printf("%s\n  {\"op\": \"matmul\", \"backend\": \"%s\", \"type\": \"%s\", "
                       "\"layout\": \"%s\", \"K\": %lld, \"N\": %lld, \"T\": %lld, \"threads\": %d, "
                       "\"time_us\": %.2f, \"best_us\": %.2f, \"cpu_us\": %.2f, "
                       "\"gbps\": %.3f, \"gflops\": %.3f, \"peak_gbps\": %.3f, \"pct_peak\": %.1f}",
                       n_out ? "," : "", sw_backend_name(be), r.type, plain ? "plain" : "engine",
                       r.s.K, r.s.N, r.s.T, nth,
                       r.time_us, r.best_us, r.cpu_us, r.gbps, r.gflops, peak, pct);
            else
                printf("%-6s %6lld %6lld %4lld %10.1f %10.1f %10.1f %8.2f %8.2f %5.1f%%\n", r.type,
                       r.s.K, r.s.N, r.s.T, r.time_us, r.best_us, r.cpu_us, r.gbps, r.gflops, pct);
            fflush(stdout);
            n_out++;
        }
    if (json) printf("\n]\n");
    sw_backend_free(be);
    return rc;
}
