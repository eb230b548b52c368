/* bench_kernels_cuda.c — kernel microbenchmarks of the CUDA backend, through
 * the backend interface only.
 *
 * Method (GPU timing without per-op host overhead): each timed step is one
 * begin/end holding --per-step copies of the op, each reading its own copy of
 * the inputs (together > 4x the L2 cache, so weights stream from DRAM as in a
 * decode step). Steps repeat with identical op lists, so with CUDA graphs on
 * (the default here; --no-graphs turns them off) step 1 is captured and later
 * steps replay one graph: the median step time over --reps replays divided by
 * --per-step is the op's GPU time, launch overhead excluded.
 *
 * Figures: matmul: weight GB/s (the figure of merit at decode, where a matmul
 * is a pass over the weights) and TFLOP/s (prefill); attention (decode, one
 * query per sequence): K/V GB/s. %peak is against a bandwidth probe measured
 * in the same run (an add over 3 x 512 MiB buffers through the backend) and
 * against the nominal DRAM bandwidth from the device attributes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kernels_cuda.h"
#include "spillway.h"

#ifdef SW_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_device.h"

#define MAX_SHAPES 16

typedef struct {
    long long K, N, T;
} mm_shape;

typedef struct {
    sw_backend *be;
    sw_cuda_device_info info;
    int reps, per_step;
    bool json;
    int n_out;
    double probe_gbps;
} bench;

static void usage(FILE *f) {
    fprintf(f,
            "usage: spillway-bench kernels --backend cuda [--op matmul|attention|all]\n"
            "         [--type q4_0,q4_k,...] [--shape K,N,T]... [--reps R] [--per-step P]\n"
            "         [--device D] [--no-graphs] [--json]\n"
            "  defaults: every type; shapes 4096,4096,1 4096,14336,1 14336,4096,1 4096,4096,8\n"
            "  4096,4096,512; R = 20 timed steps of P = 32 ops each\n");
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef sw_status (*step_fn)(bench *b, void *ctx, int i, sw_err *err);

/* Run reps + 2 steps of per_step calls of fn; return the median time of one
 * call over the last reps steps (the first two: eager run, graph capture). */
static sw_status time_steps(bench *b, step_fn fn, void *ctx, double *t_op, sw_err *err) {
    double *times = malloc(sizeof(double) * (size_t)b->reps);
    if (!times) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    sw_status st = SW_OK;
    for (int r = -2; r < b->reps && st == SW_OK; r++) {
        double t0 = sw_time_s();
        if ((st = sw_be_begin(b->be, err)) != SW_OK) break;
        for (int i = 0; i < b->per_step && st == SW_OK; i++) st = fn(b, ctx, i, err);
        sw_status st2 = sw_be_end(b->be, err);
        if (st == SW_OK) st = st2;
        if (r >= 0) times[r] = sw_time_s() - t0;
    }
    if (st == SW_OK) {
        qsort(times, (size_t)b->reps, sizeof *times, cmp_double);
        *t_op = times[b->reps / 2] / b->per_step;
    }
    free(times);
    return st;
}

static void report(bench *b, const char *op, const char *type, const char *shape, double t,
                   double bytes, double flops) {
    const double gbps = bytes / t * 1e-9, tflops = flops / t * 1e-12;
    const double pp = b->probe_gbps > 0 ? 100.0 * gbps / b->probe_gbps : 0.0;
    const double pn = b->info.peak_gbps > 0 ? 100.0 * gbps / b->info.peak_gbps : 0.0;
    if (b->json)
        printf("%s\n  {\"op\": \"%s\", \"backend\": \"cuda\", \"device\": \"%s\", \"type\": \"%s\", "
               "\"shape\": \"%s\", \"time_us\": %.3f, \"gbps\": %.1f, \"tflops\": %.3f, "
               "\"probe_gbps\": %.1f, \"pct_probe\": %.1f, \"nominal_gbps\": %.1f, "
               "\"pct_nominal\": %.1f}",
               b->n_out ? "," : "", op, b->info.name, type, shape, t * 1e6, gbps, tflops,
               b->probe_gbps, pp, b->info.peak_gbps, pn);
    else
        printf("%-9s %-6s %-22s %10.2f %9.1f %8.2f %7.1f%% %7.1f%%\n", op, type, shape, t * 1e6,
               gbps, tflops, pp, pn);
    fflush(stdout);
    b->n_out++;
}

/* ---- bandwidth probe: out = a + b over 512 MiB each ---- */

typedef struct {
    sw_tensor a, b, o;
} probe_ctx;

static sw_status probe_step(bench *b, void *ctx, int i, sw_err *err) {
    (void)i;
    probe_ctx *c = ctx;
    return sw_be_add(b->be, &c->a, &c->b, &c->o, err);
}

static sw_status run_probe(bench *b, sw_err *err) {
    const int64_t n = (int64_t)128 << 20; /* floats: 512 MiB */
    sw_buffer *buf[3] = {NULL, NULL, NULL};
    sw_status st = SW_OK;
    probe_ctx c;
    for (int i = 0; i < 3 && st == SW_OK; i++)
        st = sw_be_buf_alloc(b->be, (size_t)n * 4, SW_BUF_COMPUTE, &buf[i], err);
    if (st == SW_OK) {
        c.a = sw_tensor_make(buf[0], 0, SW_TYPE_F32, n / 4096, 4096, 1, 1);
        c.b = sw_tensor_make(buf[1], 0, SW_TYPE_F32, n / 4096, 4096, 1, 1);
        c.o = sw_tensor_make(buf[2], 0, SW_TYPE_F32, n / 4096, 4096, 1, 1);
        int ps = b->per_step, reps = b->reps;
        b->per_step = 4;
        b->reps = 5;
        double t = 0;
        st = time_steps(b, probe_step, &c, &t, err);
        b->per_step = ps;
        b->reps = reps;
        if (st == SW_OK) b->probe_gbps = 3.0 * (double)n * 4 / t * 1e-9;
    }
    for (int i = 0; i < 3; i++) sw_be_buf_free(b->be, buf[i]);
    return st;
}

/* ---- matmul ---- */

typedef struct {
    sw_tensor *w; /* copies */
    int copies;
    sw_tensor x, o;
} mm_ctx;

static sw_status mm_step(bench *b, void *ctx, int i, sw_err *err) {
    mm_ctx *c = ctx;
    return sw_be_matmul(b->be, &c->w[i % c->copies], &c->x, NULL, &c->o, err);
}

static sw_status bench_matmul(bench *b, sw_type type, mm_shape s, sw_err *err) {
    const size_t row = sw_row_size(type, s.K);
    if (row == 0)
        return sw_err_set(err, SW_E_INVALID_ARG, "K = %lld is not a multiple of the %s block size",
                          s.K, sw_type_name(type));
    const size_t wbytes = row * (size_t)s.N;
    const size_t cold = 4 * (size_t)SW_MAX(b->info.l2_bytes, 32 << 20);
    int copies = (int)((cold + wbytes - 1) / wbytes);
    copies = SW_MAX(2, SW_MIN(copies, b->per_step));
    sw_status st = SW_OK;
    sw_buffer *bw = NULL, *bx = NULL, *bo = NULL;
    float *rowf = malloc(sizeof(float) * (size_t)s.K), *xf = malloc(sizeof(float) * (size_t)(s.K * s.T));
    uint8_t *rowq = malloc(row), *chunk = NULL;
    mm_ctx c = {calloc((size_t)copies, sizeof(sw_tensor)), copies, {0}, {0}};
    if (!rowf || !xf || !rowq || !c.w) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    for (long long i = 0; i < s.K; i++) rowf[i] = frand();
    for (long long i = 0; i < s.K * s.T; i++) xf[i] = frand();
    if ((st = sw_quantize_row(type, rowf, rowq, s.K, err)) != SW_OK) goto done;
    /* one real row replicated (timing does not depend on the values), uploaded
     * in chunks of rows */
    const size_t rows_per_chunk = SW_MAX((size_t)1, ((size_t)16 << 20) / row);
    chunk = malloc(rows_per_chunk * row);
    if (!chunk) {
        st = sw_err_set(err, SW_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t r = 0; r < rows_per_chunk; r++) memcpy(chunk + r * row, rowq, row);
    if ((st = sw_be_buf_alloc(b->be, wbytes * (size_t)copies, SW_BUF_WEIGHTS, &bw, err)) != SW_OK)
        goto done;
    const size_t total_rows = (size_t)s.N * (size_t)copies;
    for (size_t r = 0; r < total_rows && st == SW_OK; r += rows_per_chunk) {
        size_t n = SW_MIN(rows_per_chunk, total_rows - r);
        st = sw_be_upload(b->be, bw, r * row, chunk, n * row, err);
    }
    if (st != SW_OK) goto done;
    if ((st = sw_be_buf_alloc(b->be, sizeof(float) * (size_t)(s.K * s.T), SW_BUF_COMPUTE, &bx, err)) ||
        (st = sw_be_buf_alloc(b->be, sizeof(float) * (size_t)(s.N * s.T), SW_BUF_COMPUTE, &bo, err)) ||
        (st = sw_be_upload(b->be, bx, 0, xf, sizeof(float) * (size_t)(s.K * s.T), err)))
        goto done;
    for (int i = 0; i < copies; i++) c.w[i] = sw_tensor_make(bw, wbytes * (size_t)i, type, s.K, s.N, 1, 1);
    c.x = sw_tensor_make(bx, 0, SW_TYPE_F32, s.K, s.T, 1, 1);
    c.o = sw_tensor_make(bo, 0, SW_TYPE_F32, s.N, s.T, 1, 1);
    double t = 0;
    if ((st = time_steps(b, mm_step, &c, &t, err)) != SW_OK) goto done;
    char sh[64];
    snprintf(sh, sizeof sh, "K%lld N%lld T%lld", s.K, s.N, s.T);
    report(b, "matmul", sw_type_name(type), sh, t, (double)wbytes,
           2.0 * (double)s.K * (double)s.N * (double)s.T);
done:
    sw_be_buf_free(b->be, bw);
    sw_be_buf_free(b->be, bx);
    sw_be_buf_free(b->be, bo);
    free(rowf); free(xf); free(rowq); free(chunk); free(c.w);
    return st;
}

/* ---- attention (decode: one query per sequence) ---- */

typedef struct {
    sw_tensor q, kc, vc, o, ss, pos, bt;
    sw_attn_params p;
} at_ctx;

static sw_status at_step(bench *b, void *ctx, int i, sw_err *err) {
    (void)i;
    at_ctx *c = ctx;
    return sw_be_attention(b->be, &c->q, &c->kc, &c->vc, &c->p, &c->o, err);
}

static sw_status bench_attention(bench *b, int seqs, int ctx, int hd, int nh, int nkv,
                                 sw_err *err) {
    const int bs = 16, nbs = (ctx + bs - 1) / bs, n_blocks = nbs * seqs;
    sw_status st = SW_OK;
    sw_buffer *bq = NULL, *bk = NULL, *bv = NULL, *bo = NULL, *bi = NULL;
    int32_t *idx = calloc((size_t)(2 * seqs + 1 + seqs * nbs), sizeof(int32_t));
    if (!idx) return sw_err_set(err, SW_E_NOMEM, "out of memory");
    int32_t *ss = idx, *pos = idx + seqs + 1, *bt = pos + seqs;
    for (int s = 0; s <= seqs; s++) ss[s] = s;
    for (int s = 0; s < seqs; s++) {
        pos[s] = ctx - 1;
        for (int j = 0; j < nbs; j++) bt[s * nbs + j] = s * nbs + j;
    }
    const size_t cache = (size_t)hd * nkv * bs * n_blocks * 2;
    at_ctx c;
    memset(&c, 0, sizeof c);
    if ((st = sw_be_buf_alloc(b->be, (size_t)hd * nh * seqs * 4, SW_BUF_COMPUTE, &bq, err)) ||
        (st = sw_be_buf_alloc(b->be, (size_t)hd * nh * seqs * 4, SW_BUF_COMPUTE, &bo, err)) ||
        (st = sw_be_buf_alloc(b->be, cache, SW_BUF_KV, &bk, err)) ||
        (st = sw_be_buf_alloc(b->be, cache, SW_BUF_KV, &bv, err)) ||
        (st = sw_be_buf_alloc(b->be, sizeof(int32_t) * (size_t)(2 * seqs + 1 + seqs * nbs),
                              SW_BUF_HOST_VISIBLE, &bi, err)) ||
        (st = sw_be_upload(b->be, bi, 0, idx, sizeof(int32_t) * (size_t)(2 * seqs + 1 + seqs * nbs), err)))
        goto done;
    c.q = sw_tensor_make(bq, 0, SW_TYPE_F32, (int64_t)hd * nh, seqs, 1, 1);
    c.o = sw_tensor_make(bo, 0, SW_TYPE_F32, (int64_t)hd * nh, seqs, 1, 1);
    c.kc = sw_tensor_make(bk, 0, SW_TYPE_F16, hd, nkv, bs, n_blocks);
    c.vc = sw_tensor_make(bv, 0, SW_TYPE_F16, hd, nkv, bs, n_blocks);
    c.ss = sw_tensor_make(bi, 0, SW_TYPE_I32, seqs + 1, 1, 1, 1);
    c.pos = sw_tensor_make(bi, sizeof(int32_t) * (size_t)(seqs + 1), SW_TYPE_I32, seqs, 1, 1, 1);
    c.bt = sw_tensor_make(bi, sizeof(int32_t) * (size_t)(2 * seqs + 1), SW_TYPE_I32, nbs, seqs, 1, 1);
    c.p = (sw_attn_params){nh, nkv, hd, 0.088f, bs, seqs, nbs, ctx, &c.ss, &c.pos, &c.bt};
    double t = 0;
    if ((st = time_steps(b, at_step, &c, &t, err)) != SW_OK) goto done;
    char sh[64];
    snprintf(sh, sizeof sh, "S%d ctx%d h%d/%d d%d", seqs, ctx, nh, nkv, hd);
    report(b, "attention", "f16", sh, t, (double)seqs * ctx * nkv * hd * 2 * 2,
           4.0 * seqs * ctx * (double)nh * hd);
done:
    sw_be_buf_free(b->be, bq); sw_be_buf_free(b->be, bo); sw_be_buf_free(b->be, bk);
    sw_be_buf_free(b->be, bv); sw_be_buf_free(b->be, bi);
    free(idx);
    return st;
}

static int parse_shape(const char *a, mm_shape *s) {
    long long v[3];
    const char *p = a;
    char *end;
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
    s->K = v[0], s->N = v[1], s->T = v[2];
    return 0;
}

int sw_bench_kernels_cuda(int argc, char **argv) {
    const char *op = "all", *types = NULL;
    mm_shape shapes[MAX_SHAPES];
    int n_shapes = 0, device = 0;
    bool graphs = true;
    bench b;
    memset(&b, 0, sizeof b);
    b.reps = 20;
    b.per_step = 32;
    int i0 = (argc > 0 && argv[0] && argv[0][0] != '-') ? 1 : 0;
    for (int i = i0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) b.json = true;
        else if (!strcmp(a, "--no-graphs")) graphs = false;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (v && !strcmp(a, "--backend")) i++; /* cuda, by construction */
        else if (v && !strcmp(a, "--op")) op = v, i++;
        else if (v && !strcmp(a, "--type")) types = v, i++;
        else if (v && !strcmp(a, "--reps")) b.reps = SW_MAX(1, atoi(v)), i++;
        else if (v && !strcmp(a, "--per-step")) b.per_step = SW_MAX(1, atoi(v)), i++;
        else if (v && !strcmp(a, "--device")) device = atoi(v), i++;
        else if (v && !strcmp(a, "--threads")) i++; /* CPU option: ignored */
        else if (v && !strcmp(a, "--shape")) {
            if (n_shapes == MAX_SHAPES || parse_shape(v, &shapes[n_shapes]) != 0) {
                fprintf(stderr, "kernels: bad --shape '%s' (K,N,T; at most %d)\n", v, MAX_SHAPES);
                return 2;
            }
            n_shapes++, i++;
        } else {
            fprintf(stderr, "kernels: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (n_shapes == 0) {
        static const mm_shape def[] = {{4096, 4096, 1}, {4096, 14336, 1}, {14336, 4096, 1},
                                       {4096, 4096, 8}, {4096, 4096, 512}};
        n_shapes = (int)(sizeof def / sizeof def[0]);
        memcpy(shapes, def, sizeof def);
    }
    sw_err err = {{0}};
    if (sw_cuda_device_info_get(device, &b.info, &err) != SW_OK) {
        fprintf(stderr, "kernels: %s\n", err.msg);
        return 1;
    }
    if (!getenv("SW_CUDA_GRAPHS")) setenv("SW_CUDA_GRAPHS", graphs ? "1" : "0", 1);
    if (sw_backend_cuda_create(device, &b.be, &err) != SW_OK) {
        fprintf(stderr, "kernels: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (run_probe(&b, &err) != SW_OK) {
        fprintf(stderr, "kernels: bandwidth probe: %s\n", err.msg);
        rc = 1;
    }
    if (b.json) {
        printf("[");
    } else {
        printf("device %s (cc %d.%d, %d SMs, L2 %d MiB): nominal %.0f GB/s, probe (add) %.0f GB/s\n",
               b.info.name, b.info.cc_major, b.info.cc_minor, b.info.sm_count,
               b.info.l2_bytes >> 20, b.info.peak_gbps, b.probe_gbps);
        printf("%-9s %-6s %-22s %10s %9s %8s %8s %8s\n", "op", "type", "shape", "time_us", "GB/s",
               "TFLOP/s", "%probe", "%nominal");
    }
    if (!strcmp(op, "matmul") || !strcmp(op, "all")) {
        static const sw_type all[] = {SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q8_0, SW_TYPE_Q4_0,
                                      SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1, SW_TYPE_Q2_K,
                                      SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K, SW_TYPE_Q6_K,
                                      SW_TYPE_F32};
        sw_type list[64];
        int n_types = 0;
        if (types) {
            char *dup = strdup(types), *save = NULL;
            for (char *tok = strtok_r(dup, ",", &save); tok && n_types < 64;
                 tok = strtok_r(NULL, ",", &save))
                if (sw_type_from_name(tok, &list[n_types], &err) == SW_OK) n_types++;
                else fprintf(stderr, "kernels: %s\n", err.msg), rc = 2;
            free(dup);
        } else {
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) list[n_types++] = all[i];
        }
        for (int si = 0; si < n_shapes; si++)
            for (int ti = 0; ti < n_types; ti++)
                if (bench_matmul(&b, list[ti], shapes[si], &err) != SW_OK) {
                    fprintf(stderr, "kernels: matmul %s %lld,%lld,%lld: %s\n",
                            sw_type_name(list[ti]), shapes[si].K, shapes[si].N, shapes[si].T,
                            err.msg);
                    rc = 1;
                }
    }
    if (!strcmp(op, "attention") || !strcmp(op, "all")) {
        static const int cases[][2] = {{1, 512}, {1, 4096}, {1, 32768}, {16, 4096}, {64, 2048}};
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            if (bench_attention(&b, cases[i][0], cases[i][1], 128, 32, 8, &err) != SW_OK) {
                fprintf(stderr, "kernels: attention: %s\n", err.msg);
                rc = 1;
            }
    }
    int64_t captures = 0, replays = 0;
    sw_backend_cuda_graph_stats(b.be, &captures, &replays);
    if (b.json) printf("\n]\n");
    else printf("graphs: %lld captures, %lld replays%s\n", (long long)captures, (long long)replays,
                replays ? "" : " (times include launch overhead)");
    sw_backend_free(b.be);
    return rc;
}

#else /* !SW_HAVE_CUDA */

int sw_bench_kernels_cuda(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "kernels: this build has no CUDA backend (configure with -DSW_CUDA=ON)\n");
    return 2;
}

#endif
