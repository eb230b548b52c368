/* test_cuda_ops.c — every op of the CUDA backend against a double-precision
 * reference written here (no dependency on another backend): get_rows and
 * matmul against the dequantized weights (sw_dequantize_row), rms_norm, rope,
 * kv_write, attention (also with sliding windows), swiglu, geglu, add, scale,
 * softcap and logits_summary against straightforward f64 math. Also: the three matmul paths (int8 mat-vec, f32 mat-vec, cuBLAS
 * with f16 tiles, several tiles per weight), strided x / out views, ops
 * recorded in a step vs run at once, transfers larger than the staging
 * buffer, data-dependent errors raised by kernels, validation errors, and a
 * repeated step replayed as a CUDA graph giving the same bits as eager runs.
 *
 * Skips (exit 77) only where there is no GPU (built without CUDA, no driver,
 * no device); a GPU that is present but unusable fails (sw_test_cuda_gate).
 *
 * Error bounds (u = 2^-24, per output element; the test reports the worst
 * ratio |err| / bound, which must be <= 1):
 * - get_rows: bit-exact (cuda_quant.cuh mirrors the reference's operations).
 * - kv_write: exact (f16 conversion is round-to-nearest-even on both sides).
 * - add, scale: exact. swiglu: same float formula; CUDA expf is within 2 ulp:
 *   8u |y|; geglu adds what v's rounding does to exp(-2v), 8|v| u; softcap:
 *   divide, tanhf (2 ulp), multiply: 6u. rms_norm: the double sum of squares differs only in order, so the
 *   float scale may differ by 1 ulp: 4u |y|. rope: theta and cos/sin in double
 *   on both sides, products unfused: 4u (|a| + |b|).
 * - matmul, int8 paths (quantized W; T <= 8 the mat-vec, 9..128 the tensor
 *   cores): against the activations quantized on the host exactly as the
 *   kernel does (x_hat = d q per 32), so the bound is rounding only: float
 *   rounding of the per-group partial sums and the reduction,
 *   (K/32 + 64) 4u sum_k |w_k x_hat_k|.
 * - matmul, f32 mat-vec (F32/F16/BF16 W, T <= 8): (K + 64) u sum |w x|.
 * - matmul, cuBLAS: x (and quantized W) rounded to f16 (rel. 2^-11 each,
 *   bf16: 2^-8 for x), products exact, f32 accumulation:
 *   sum |w x| (2 * 2^-11 (+ 2^-8 for bf16) + 4 K u) + 2^-24 sum (|w| + |x|)
 *   (f16 subnormals). F32 W: same bound (covers TF32 if cuBLAS picks it).
 * - attention: scores off by e = (D + 4) u scale sum_d |q_d k_d|; softmax
 *   weights move by <= 2e relative, the output (a convex combination of V
 *   rows) by 4 e max|v|, plus (ctx + 64) 2u max|v| for the online sums.
 * - logits_summary: max, NaN count, top-k ids and raw logits exact; log Z
 *   within 1e-6 |lse| + 1e-6 (float exp of each term, double sums) and equal to
 *   max + log(sum_exp); entropy within 1e-5 (1 + H).
 * An indexing error (wrong row, block, kv head, unit) is O(the values) and
 * fails every bound by orders of magnitude. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sw_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "quant.h"

/* CUDA under ASan: the driver maps memory in ASan's shadow gap. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libcuda.so\nleak:libcudart\n"; }
#endif

#ifdef SW_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_device.h"

#define U 0x1p-24

static sw_test_rng rng = {0xC0DA}; /* shared LCG: tests/unit/support/sw_test.c */
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

typedef struct {
    sw_backend *be;       /* defaults, graphs off */
    sw_backend *cublas;   /* SW_CUDA_MMVQ_MAX_T=0: every matmul through cuBLAS */
    sw_backend *tiles;    /* SW_CUDA_MMVQ_MAX_T=0, 1 MiB f16 tiles: several per weight */
    sw_backend *graphs;   /* SW_CUDA_GRAPHS=1 */
} fixture;
static fixture g;
static sw_err g_err;

#define OK(call)                                                              \
    do {                                                                      \
        memset(&g_err, 0, sizeof g_err);                                      \
        sw_status s_ = (call);                                                \
        if (s_ != SW_OK) fail_msg("%s -> %s: %s", #call, sw_status_str(s_), g_err.msg); \
    } while (0)

/* max_t "0" also turns the tensor-core int8 matmul off: every quantized
 * matmul past the mat-vec goes through cuBLAS. */
static sw_backend *make_cuda(const char *graphs, const char *max_t, const char *tile_mb) {
    setenv("SW_CUDA_GRAPHS", graphs, 1);
    setenv("SW_CUDA_MMVQ_MAX_T", max_t, 1);
    setenv("SW_CUDA_MMQ_MAX_T", strcmp(max_t, "0") ? "128" : "0", 1);
    setenv("SW_CUDA_DEQUANT_TILE_MB", tile_mb, 1);
    sw_backend *be = NULL;
    sw_err err = {{0}};
    sw_status st = sw_backend_cuda_create(0, &be, &err);
    unsetenv("SW_CUDA_GRAPHS");
    unsetenv("SW_CUDA_MMVQ_MAX_T");
    unsetenv("SW_CUDA_MMQ_MAX_T");
    unsetenv("SW_CUDA_DEQUANT_TILE_MB");
    if (st != SW_OK) {
        printf("cuda backend: %s\n", err.msg);
        return NULL;
    }
    return be;
}

/* ---- device tensors ---- */

/* A contiguous tensor on its own buffer of `extra` + nbytes bytes, at offset
 * `extra`; filled from src when non-NULL. */
static sw_tensor dt_make(sw_backend *be, sw_type type, int64_t ne0, int64_t ne1, int64_t ne2,
                         int64_t ne3, size_t extra, const void *src) {
    sw_tensor t = sw_tensor_make(NULL, extra, type, ne0, ne1, ne2, ne3);
    size_t n = sw_tensor_nbytes(&t);
    OK(sw_be_buf_alloc(be, extra + n, SW_BUF_COMPUTE, &t.buf, &g_err));
    if (src) OK(sw_be_upload(be, t.buf, extra, src, n, &g_err));
    return t;
}
static void dt_read(sw_backend *be, const sw_tensor *t, void *dst) {
    OK(sw_be_download(be, t->buf, t->offset, dst, sw_tensor_nbytes(t), &g_err));
}
static void dt_write(sw_backend *be, const sw_tensor *t, const void *src) {
    OK(sw_be_upload(be, t->buf, t->offset, src, sw_tensor_nbytes(t), &g_err));
}
static void dt_free(sw_backend *be, sw_tensor *t) {
    sw_be_buf_free(be, t->buf);
    t->buf = NULL;
}

static const sw_type k_all_types[] = {SW_TYPE_F32,  SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q4_0,
                                      SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1, SW_TYPE_Q8_0,
                                      SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K,
                                      SW_TYPE_Q6_K};
#define N_TYPES (sizeof k_all_types / sizeof k_all_types[0])

static bool is_quant(sw_type t) { return t != SW_TYPE_F32 && t != SW_TYPE_F16 && t != SW_TYPE_BF16; }

/* Quantize rows of random data; returns the raw bytes, the dequantized
 * values in *deq (rows * n floats). */
static uint8_t *make_weights(sw_type type, int64_t n, int64_t rows, float **deq) {
    size_t rb = sw_row_size(type, n);
    uint8_t *q = malloc(rb * (size_t)rows);
    float *src = malloc(sizeof(float) * (size_t)(n * rows));
    *deq = malloc(sizeof(float) * (size_t)(n * rows));
    for (int64_t i = 0; i < n * rows; i++) src[i] = nrand() * 0.1f * (1.0f + (float)((i / 64) % 5));
    for (int64_t r = 0; r < rows; r++) {
        OK(sw_quantize_row(type, src + r * n, q + (size_t)r * rb, n, &g_err));
        OK(sw_dequantize_row(type, q + (size_t)r * rb, *deq + r * n, n, &g_err));
    }
    free(src);
    return q;
}

/* ------------------------------------------------------------ get_rows -- */

static void test_get_rows(void **state) {
    (void)state;
    sw_backend *be = g.be;
    const int64_t n = 512, rows = 11, T = 6;
    int32_t ids[6] = {3, 0, 10, 3, 7, 1};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        sw_type type = k_all_types[ti];
        float *deq;
        uint8_t *q = make_weights(type, n, rows, &deq);
        sw_tensor table = dt_make(be, type, n, rows, 1, 1, 256, q);
        sw_tensor tid = dt_make(be, SW_TYPE_I32, T, 1, 1, 1, 0, ids);
        sw_tensor out = dt_make(be, SW_TYPE_F32, n, T, 1, 1, 0, NULL);
        for (int in_step = 0; in_step < 2; in_step++) {
            if (in_step) OK(sw_be_begin(be, &g_err));
            OK(sw_be_get_rows(be, &table, &tid, &out, &g_err));
            if (in_step) OK(sw_be_end(be, &g_err));
            float *o = malloc(sizeof(float) * n * T);
            dt_read(be, &out, o);
            for (int64_t t = 0; t < T; t++)
                if (memcmp(o + t * n, deq + ids[t] * n, sizeof(float) * n) != 0)
                    fail_msg("get_rows %s: row %lld (id %d) differs from sw_dequantize_row",
                             sw_type_name(type), (long long)t, ids[t]);
            free(o);
        }
        /* an id past the table: SW_E_RANGE naming the op, at once and at end() */
        int32_t bad[6] = {3, 0, (int32_t)rows, 3, 7, 1};
        dt_write(be, &tid, bad);
        assert_int_equal(sw_be_get_rows(be, &table, &tid, &out, &g_err), SW_E_RANGE);
        assert_non_null(strstr(g_err.msg, "get_rows"));
        OK(sw_be_begin(be, &g_err));
        OK(sw_be_get_rows(be, &table, &tid, &out, &g_err));
        assert_int_equal(sw_be_end(be, &g_err), SW_E_RANGE);
        assert_non_null(strstr(g_err.msg, "ids[2]"));
        /* ... and still named after a mid-step download ran it early and
         * another op was recorded behind it */
        OK(sw_be_begin(be, &g_err));
        OK(sw_be_get_rows(be, &table, &tid, &out, &g_err));
        float *tmp = malloc(sizeof(float) * n * T);
        dt_read(be, &out, tmp);
        free(tmp);
        OK(sw_be_add(be, &out, &out, &out, &g_err));
        assert_int_equal(sw_be_end(be, &g_err), SW_E_RANGE);
        assert_non_null(strstr(g_err.msg, "get_rows"));
        assert_non_null(strstr(g_err.msg, "ids[2]"));
        dt_free(be, &table); dt_free(be, &tid); dt_free(be, &out);
        free(q); free(deq);
    }
}

/* ------------------------------------------------------------- matmul -- */

typedef struct {
    double worst; /* largest |err| / bound seen */
    char where[160];
} worst_t;

static void note(worst_t *w, double err, double bound, const char *fmt, ...) {
    double r = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0);
    if (!(r <= w->worst) || isnan(r)) {
        w->worst = isnan(r) ? INFINITY : r;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->where, sizeof w->where, fmt, ap);
        va_end(ap);
    }
}

/* PATH_INT8: the activations quantized to int8 groups (the mat-vec for
 * T <= 8, the tensor-core matmul for 9..128 rows); PATH_MMV: the f32 mat-vec
 * of float weights; PATH_CUBLAS: f16 (bf16) operands through cuBLAS. */
enum { PATH_INT8, PATH_MMV, PATH_CUBLAS };

/* The path a matmul of this type and T takes on a backend whose mat-vec goes
 * up to mmvq_max_t rows and whose tensor-core int8 matmul up to mmq_max_t. */
static int path_of(sw_type type, int64_t T, int64_t mmvq_max_t, int64_t mmq_max_t) {
    if (T <= mmvq_max_t) return is_quant(type) ? PATH_INT8 : PATH_MMV;
    return is_quant(type) && T <= mmq_max_t ? PATH_INT8 : PATH_CUBLAS;
}

/* The int8 grid of one token's activations, as the kernels quantize them
 * (swcu_quantize_q8): per 32, d = amax / 127, q = round-to-even(x / d). */
static void host_q8(const float *x, int64_t K, double *xh) {
    for (int64_t g0 = 0; g0 < K; g0 += 32) {
        float amax = 0;
        for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[g0 + k]));
        const float d = amax / 127.0f;
        for (int k = 0; k < 32; k++) {
            const float r = d == 0.0f ? 0.0f : nearbyintf(x[g0 + k] / d);
            xh[g0 + k] = (double)d * fminf(127.0f, fmaxf(-127.0f, r));
        }
    }
}

/* One matmul case on backend be; x optionally a strided view, out too. */
static void matmul_case(sw_backend *be, int path, sw_type type, int64_t N, int64_t K, int64_t T,
                        bool bias_on, bool strided, bool in_step, worst_t *w) {
    float *deq;
    uint8_t *q = make_weights(type, K, N, &deq);
    const int64_t xpad = strided ? 16 : 0, opad = strided ? 8 : 0;
    float *x = malloc(sizeof(float) * (size_t)((K + xpad) * T));
    float *bias = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < (K + xpad) * T; i++) x[i] = nrand() * ((i / 32) % 4 == 0 ? 3.0f : 0.7f);
    for (int64_t i = 0; i < N; i++) bias[i] = nrand();
    sw_tensor tw = dt_make(be, type, K, N, 1, 1, 512, q);
    sw_tensor txf = dt_make(be, SW_TYPE_F32, K + xpad, T, 1, 1, 0, x);
    sw_tensor tx = sw_tensor_cols(&txf, xpad, K); /* columns xpad.. of each row */
    sw_tensor tof = dt_make(be, SW_TYPE_F32, N + opad, T, 1, 1, 0, NULL);
    sw_tensor to = sw_tensor_cols(&tof, 0, N);
    sw_tensor tb = dt_make(be, SW_TYPE_F32, N, 1, 1, 1, 0, bias);
    if (in_step) OK(sw_be_begin(be, &g_err));
    OK(sw_be_matmul(be, &tw, &tx, bias_on ? &tb : NULL, &to, &g_err));
    if (in_step) OK(sw_be_end(be, &g_err));
    float *o = malloc(sizeof(float) * (size_t)((N + opad) * T));
    double *xh = malloc(sizeof(double) * (size_t)K);
    dt_read(be, &tof, o);
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * (K + xpad) + xpad;
        /* the int8 paths are checked against the activations they multiply
         * (quantized here as the kernel does), with a rounding-only bound: an
         * error in the activation quantization is not excused */
        if (path == PATH_INT8) host_q8(xt, K, xh);
        for (int64_t n = 0; n < N; n++) {
            const float *wr = deq + n * K;
            double ref = bias_on ? bias[n] : 0.0, mag = 0, sw = 0, sx = 0;
            for (int64_t k = 0; k < K; k++) {
                const double xv = path == PATH_INT8 ? xh[k] : xt[k];
                ref += (double)wr[k] * xv;
                mag += fabs((double)wr[k] * xv);
                sw += fabs(wr[k]);
                sx += fabs(xt[k]);
            }
            double bound;
            if (path == PATH_INT8)
                bound = ((double)K / 32 + 64) * 4 * U * mag;
            else if (path == PATH_MMV)
                bound = ((double)K + 64) * U * mag;
            else
                bound = mag * (2 * 0x1p-11 + (type == SW_TYPE_BF16 ? 0x1p-8 : 0) + 4 * (double)K * U) +
                        0x1p-24 * (sw + sx);
            bound += 4 * U * fabs(ref) + 1e-30;
            note(w, fabs((double)o[t * (N + opad) + n] - ref), bound,
                 "%s N=%lld K=%lld T=%lld bias=%d strided=%d step=%d: out[%lld, %lld] = %g, ref %g",
                 sw_type_name(type), (long long)N, (long long)K, (long long)T, bias_on, strided,
                 in_step, (long long)n, (long long)t, (double)o[t * (N + opad) + n], ref);
        }
    }
    dt_free(be, &tw); dt_free(be, &txf); dt_free(be, &tof); dt_free(be, &tb);
    free(q); free(deq); free(x); free(bias); free(o); free(xh);
}

static void test_matmul(void **state) {
    (void)state;
    static const int64_t Ns[] = {7, 33, 130}, Ks[] = {256, 512, 4096},
                         Ts[] = {1, 3, 8, 17, 64, 100, 160};
    int c = 0;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const sw_type ty = k_all_types[ti];
        worst_t w = {0, ""};
        sw_cuda_stats s0, s1;
        sw_backend_cuda_stats(g.be, &s0);
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t d = 0; d < 7; d++, c++)
                    matmul_case(g.be, path_of(ty, Ts[d], 8, 128), ty, Ns[a], Ks[b], Ts[d],
                                c % 3 == 0, c % 4 == 1, c % 2 == 0, &w);
        sw_backend_cuda_stats(g.be, &s1);
        if (is_quant(ty)) /* every path ran: mat-vec, tensor cores, cuBLAS */
            assert_true(s1.mm_mmvq > s0.mm_mmvq && s1.mm_mmq > s0.mm_mmq &&
                        s1.mm_cublas > s0.mm_cublas);
        /* small T through cuBLAS too, and several f16 tiles per weight */
        matmul_case(g.cublas, PATH_CUBLAS, ty, 33, 512, 3, true, true, false, &w);
        matmul_case(g.tiles, PATH_CUBLAS, ty, 300, 4096, 5, false, false, true, &w);
        /* long rows: 128 threads per row in the mat-vec */
        matmul_case(g.be, path_of(ty, 2, 8, 128), ty, 129, 16384, 2, true, false, false, &w);
        print_message("matmul %-5s worst err/bound %.3g (%s)\n", sw_type_name(k_all_types[ti]),
                      w.worst, w.where);
        if (!(w.worst <= 1.0)) fail_msg("matmul: %s: error %.3g x the bound", w.where, w.worst);
    }
}

/* ------------------------------------------------- rms_norm, swiglu, add -- */

static void test_rms_norm(void **state) {
    (void)state;
    sw_backend *be = g.be;
    static const int64_t ns[] = {7, 33, 4096}, rs[] = {1, 3, 17};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            const int64_t n = ns[a], R = rs[b];
            float *x = malloc(sizeof(float) * n * R), *wv = malloc(sizeof(float) * n),
                  *o = malloc(sizeof(float) * n * R);
            for (int64_t i = 0; i < n * R; i++) x[i] = nrand() * (float)(1 + i % 7);
            for (int64_t i = 0; i < n; i++) wv[i] = nrand();
            sw_tensor tx = dt_make(be, SW_TYPE_F32, n, R, 1, 1, 0, x);
            sw_tensor tw = dt_make(be, SW_TYPE_F32, n, 1, 1, 1, 0, wv);
            OK(sw_be_rms_norm(be, &tx, &tw, 1e-5f, &tx, &g_err)); /* in place */
            dt_read(be, &tx, o);
            for (int64_t r = 0; r < R; r++) {
                double ss = 0;
                for (int64_t i = 0; i < n; i++) ss += (double)x[r * n + i] * x[r * n + i];
                float scale = (float)(1.0 / sqrt(ss / (double)n + 1e-5));
                for (int64_t i = 0; i < n; i++) {
                    float y = (x[r * n + i] * scale) * wv[i];
                    if (fabsf(o[r * n + i] - y) > 4 * U * fabsf(y) + 1e-30f)
                        fail_msg("rms_norm n=%lld row %lld [%lld]: %.9g vs %.9g", (long long)n,
                                 (long long)r, (long long)i, (double)o[r * n + i], (double)y);
                }
            }
            dt_free(be, &tx); dt_free(be, &tw);
            free(x); free(wv); free(o);
        }
}

static void test_swiglu_add(void **state) {
    (void)state;
    sw_backend *be = g.be;
    static const int64_t ns[] = {7, 1025, 14336}, rs[] = {1, 3};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 2; b++) {
            const int64_t n = ns[a], R = rs[b];
            float *x = malloc(sizeof(float) * n * R), *y = malloc(sizeof(float) * n * R),
                  *o = malloc(sizeof(float) * n * R);
            for (int64_t i = 0; i < n * R; i++) {
                x[i] = nrand() * 6;
                y[i] = nrand();
            }
            x[0] = -100.0f; /* exp overflows: -0 */
            sw_tensor ta = dt_make(be, SW_TYPE_F32, n, R, 1, 1, 0, x);
            sw_tensor tb = dt_make(be, SW_TYPE_F32, n, R, 1, 1, 0, y);
            sw_tensor to = dt_make(be, SW_TYPE_F32, n, R, 1, 1, 0, NULL);
            OK(sw_be_begin(be, &g_err));
            OK(sw_be_swiglu(be, &ta, &tb, &to, &g_err));
            OK(sw_be_add(be, &ta, &tb, &ta, &g_err)); /* aliasing a */
            OK(sw_be_end(be, &g_err));
            dt_read(be, &to, o);
            for (int64_t i = 0; i < n * R; i++) {
                float r = x[i] / (1.0f + expf(-x[i])) * y[i];
                if (fabsf(o[i] - r) > 8 * U * fabsf(r) + 1e-30f)
                    fail_msg("swiglu [%lld]: %.9g vs %.9g", (long long)i, (double)o[i], (double)r);
            }
            dt_read(be, &ta, o);
            for (int64_t i = 0; i < n * R; i++)
                if (o[i] != x[i] + y[i])
                    fail_msg("add [%lld]: %.9g vs %.9g", (long long)i, (double)o[i],
                             (double)(x[i] + y[i]));
            /* geglu, scale, softcap on the original inputs, against double:
             * gelu(g) = g / (1 + exp(-2v)), v = sqrt(2/pi) (g + 0.044715 g^3),
             * whose float v (4 roundings) moves exp(-2v) by 8|v| u; softcap
             * (cap 20): divide, tanhf (2 ulp), multiply */
            dt_write(be, &ta, x);
            OK(sw_be_begin(be, &g_err));
            OK(sw_be_geglu(be, &ta, &tb, &to, &g_err));
            OK(sw_be_softcap(be, &ta, 20.0f, &tb, &g_err)); /* tb no longer needed */
            OK(sw_be_scale(be, &ta, 0.37f, &ta, &g_err));   /* in place */
            OK(sw_be_end(be, &g_err));
            dt_read(be, &to, o);
            for (int64_t i = 0; i < n * R; i++) {
                double gg = x[i], v = 0.79788456080286535588 * (gg + 0.044715 * gg * gg * gg);
                double r = gg / (1.0 + exp(-2.0 * v)) * y[i];
                if (fabs(o[i] - r) > (8 + 8 * fabs(v)) * U * fabs(r) + 1e-37)
                    fail_msg("geglu [%lld]: %.9g vs %.9g", (long long)i, (double)o[i], r);
            }
            dt_read(be, &tb, o);
            for (int64_t i = 0; i < n * R; i++) {
                double r = 20.0 * tanh((double)x[i] / 20.0);
                if (fabs(o[i] - r) > 6 * U * fabs(r) + 1e-37)
                    fail_msg("softcap [%lld]: %.9g vs %.9g", (long long)i, (double)o[i], r);
            }
            dt_read(be, &ta, o);
            for (int64_t i = 0; i < n * R; i++)
                if (o[i] != x[i] * 0.37f)
                    fail_msg("scale [%lld]: %.9g vs %.9g", (long long)i, (double)o[i],
                             (double)(x[i] * 0.37f));
            dt_free(be, &ta); dt_free(be, &tb); dt_free(be, &to);
            free(x); free(y); free(o);
        }
}

/* ----------------------------------------------------------------- rope -- */

static void test_rope(void **state) {
    (void)state;
    sw_backend *be = g.be;
    typedef struct { int hd, nh, n_dims, mode; bool ff, strided; } rc;
    static const rc cases[] = {
        {64, 4, 64, 0, false, false}, {64, 4, 64, 2, false, true}, {128, 3, 64, 2, true, false},
        {80, 2, 32, 0, true, true},   {128, 8, 128, 0, true, false},
    };
    const int T = 5;
    int32_t pos[5] = {0, 1, 17, 4095, 100000};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const rc *c = &cases[ci];
        const int64_t hp = c->strided ? c->hd + 16 : c->hd; /* padded head stride */
        const int64_t row = hp * c->nh;
        float *x = malloc(sizeof(float) * row * T), *o = malloc(sizeof(float) * row * T);
        float ff[64];
        for (int64_t i = 0; i < row * T; i++) x[i] = nrand();
        for (int i = 0; i < c->n_dims / 2; i++) ff[i] = 1.0f + (float)i * 0.25f;
        sw_tensor buf = dt_make(be, SW_TYPE_F32, row, T, 1, 1, 0, x);
        sw_tensor tx = buf; /* [hd, nh, T] view with head stride hp */
        tx.ne[0] = c->hd; tx.ne[1] = c->nh; tx.ne[2] = T; tx.ne[3] = 1;
        tx.nb[1] = (size_t)hp * 4; tx.nb[2] = (size_t)row * 4; tx.nb[3] = tx.nb[2] * T;
        sw_tensor tp = dt_make(be, SW_TYPE_I32, T, 1, 1, 1, 0, pos);
        sw_tensor tf = dt_make(be, SW_TYPE_F32, c->n_dims / 2, 1, 1, 1, 0, ff);
        sw_rope_params p = {c->n_dims, c->mode, 500000.0f, 0.5f, c->ff ? &tf : NULL};
        OK(sw_be_rope(be, &tx, &tp, &p, &g_err));
        dt_read(be, &buf, o);
        const int half = c->n_dims / 2;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < c->nh; h++) {
                const float *xv = x + t * row + h * hp;
                const float *ov = o + t * row + h * hp;
                float ref[256];
                memcpy(ref, xv, sizeof(float) * hp);
                for (int i = 0; i < half; i++) {
                    double inv = 0.5 * pow(500000.0, -2.0 * i / c->n_dims);
                    if (c->ff) inv /= ff[i];
                    double th = (double)pos[t] * inv;
                    float co = (float)cos(th), si = (float)sin(th);
                    int i0 = c->mode == 2 ? i : 2 * i, i1 = c->mode == 2 ? i + half : 2 * i + 1;
                    ref[i0] = xv[i0] * co - xv[i1] * si;
                    ref[i1] = xv[i0] * si + xv[i1] * co;
                }
                for (int i = 0; i < hp; i++) {
                    int pi = i < c->n_dims ? (c->mode == 2 ? i % half : i / 2) : 0;
                    int j0 = c->mode == 2 ? pi : 2 * pi, j1 = c->mode == 2 ? pi + half : 2 * pi + 1;
                    double tol = i < c->n_dims ? 4 * U * (fabs(xv[j0]) + fabs(xv[j1])) : 0;
                    if (fabs((double)ov[i] - ref[i]) > tol)
                        fail_msg("rope case %zu t=%d h=%d [%d]: %.9g vs %.9g", ci, t, h, i,
                                 (double)ov[i], (double)ref[i]);
                }
            }
        dt_free(be, &buf); dt_free(be, &tp); dt_free(be, &tf);
        free(x); free(o);
    }
}

/* ------------------------------------------------------------- kv_write -- */

static void test_kv_write(void **state) {
    (void)state;
    sw_backend *be = g.be;
    const int hd = 64, nkv = 3, bs = 4, nb = 6, T = 5;
    int32_t slots[5] = {0, 7, 23, 12, 13};
    for (int f16 = 0; f16 < 2; f16++) {
        sw_type ct = f16 ? SW_TYPE_F16 : SW_TYPE_F32;
        const int64_t kvd = hd * nkv, es = f16 ? 2 : 4, ncache = (int64_t)hd * nkv * bs * nb;
        float *k = malloc(sizeof(float) * (kvd + 8) * T), *v = malloc(sizeof(float) * kvd * T);
        for (int64_t i = 0; i < (kvd + 8) * T; i++) k[i] = nrand();
        for (int64_t i = 0; i < kvd * T; i++) v[i] = nrand();
        sw_tensor tkf = dt_make(be, SW_TYPE_F32, kvd + 8, T, 1, 1, 0, k);
        sw_tensor tk = sw_tensor_cols(&tkf, 8, kvd); /* strided rows */
        sw_tensor tv = dt_make(be, SW_TYPE_F32, kvd, T, 1, 1, 0, v);
        sw_tensor kc = dt_make(be, ct, hd, nkv, bs, nb, 0, NULL);
        sw_tensor vc = dt_make(be, ct, hd, nkv, bs, nb, 0, NULL);
        sw_tensor ts = dt_make(be, SW_TYPE_I32, T, 1, 1, 1, 0, slots);
        OK(sw_be_kv_write(be, &tk, &tv, &kc, &vc, &ts, &g_err));
        uint8_t *hk = malloc((size_t)(ncache * es)), *hv = malloc((size_t)(ncache * es));
        dt_read(be, &kc, hk);
        dt_read(be, &vc, hv);
        for (int t = 0; t < T; t++)
            for (int64_t e = 0; e < kvd; e++) {
                int64_t h = e / hd, d = e % hd, s = slots[t];
                int64_t idx = d + hd * (h + nkv * (s % bs + bs * (s / bs)));
                float kk = k[t * (kvd + 8) + 8 + e], vv = v[t * kvd + e];
                for (int j = 0; j < 2; j++) {
                    const uint8_t *c = j ? hv : hk;
                    float want = j ? vv : kk, got;
                    if (f16) {
                        uint16_t h16;
                        memcpy(&h16, c + idx * 2, 2);
                        if (h16 != sw_f32_to_f16(want))
                            fail_msg("kv_write f16 t=%d e=%lld: %04x vs %04x", t, (long long)e,
                                     h16, sw_f32_to_f16(want));
                    } else {
                        memcpy(&got, c + idx * 4, 4);
                        if (got != want) fail_msg("kv_write f32 t=%d e=%lld", t, (long long)e);
                    }
                }
            }
        int32_t bad[5] = {0, 7, 24, 12, 13};
        dt_write(be, &ts, bad);
        assert_int_equal(sw_be_kv_write(be, &tk, &tv, &kc, &vc, &ts, &g_err), SW_E_RANGE);
        assert_non_null(strstr(g_err.msg, "kv_write"));
        dt_free(be, &tkf); dt_free(be, &tv); dt_free(be, &kc); dt_free(be, &vc); dt_free(be, &ts);
        free(k); free(v); free(hk); free(hv);
    }
}

/* ------------------------------------------------------------ attention -- */

typedef struct {
    int hd, nh, nkv;
    bool f16, q3d;
    int n_seqs;
    const int *len, *pos0; /* tokens per sequence, position of each one's first */
    int window;            /* sliding window (0 = none) */
} acase;

static void attention_case(sw_backend *be, const acase *ac, worst_t *w) {
    const int hd = ac->hd, nh = ac->nh, nkv = ac->nkv, S = ac->n_seqs, bs = 16;
    int T = 0, max_pos = 0;
    for (int s = 0; s < S; s++) {
        T += ac->len[s];
        max_pos = SW_MAX(max_pos, ac->pos0[s] + ac->len[s] - 1);
    }
    const int max_blocks = max_pos / bs + 1, n_blocks = max_blocks * S + 5;
    int32_t *seq_start = malloc(sizeof(int32_t) * (size_t)(S + 1));
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)SW_MAX(T, 1));
    int32_t *tables = calloc((size_t)(unsigned)S * (unsigned)max_blocks, sizeof(int32_t));
    seq_start[0] = 0;
    for (int s = 0; s < S; s++) seq_start[s + 1] = seq_start[s] + ac->len[s];
    for (int s = 0; s < S; s++)
        for (int i = 0; i < ac->len[s]; i++) pos[seq_start[s] + i] = ac->pos0[s] + i;
    /* a shuffled permutation of the blocks dealt to the sequences */
    int32_t *perm = malloc(sizeof(int32_t) * n_blocks);
    for (int i = 0; i < n_blocks; i++) perm[i] = i;
    for (int i = n_blocks - 1; i > 0; i--) {
        int j = (int)(urand() * (i + 1));
        int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    int next = 0;
    for (int s = 0; s < S; s++) {
        int last = ac->pos0[s] + ac->len[s] - 1;
        for (int b = 0; b <= last / bs; b++) tables[s * max_blocks + b] = perm[next++];
    }
    const size_t ncache = (size_t)hd * nkv * bs * n_blocks, es = ac->f16 ? 2 : 4;
    uint8_t *kc = malloc(ncache * es), *vc = malloc(ncache * es);
    double *kd = malloc(sizeof(double) * ncache), *vd = malloc(sizeof(double) * ncache);
    for (size_t i = 0; i < ncache; i++) {
        float kv[2] = {nrand(), nrand() * 3};
        for (int j = 0; j < 2; j++) {
            uint8_t *c = j ? vc : kc;
            double *d = j ? vd : kd;
            if (ac->f16) {
                uint16_t h = sw_f32_to_f16(kv[j]);
                memcpy(c + i * 2, &h, 2);
                d[i] = sw_f16_to_f32(h);
            } else {
                memcpy(c + i * 4, &kv[j], 4);
                d[i] = kv[j];
            }
        }
    }
    const size_t nq = (size_t)hd * nh * T;
    float *q = malloc(sizeof(float) * nq), *o = malloc(sizeof(float) * nq);
    for (size_t i = 0; i < nq; i++) q[i] = nrand() * 1.5f;
    const float scale = 1.0f / sqrtf((float)hd);
    sw_type ct = ac->f16 ? SW_TYPE_F16 : SW_TYPE_F32;
    sw_tensor tq = ac->q3d ? dt_make(be, SW_TYPE_F32, hd, nh, T, 1, 0, q)
                           : dt_make(be, SW_TYPE_F32, (int64_t)hd * nh, T, 1, 1, 0, q);
    sw_tensor to = ac->q3d ? dt_make(be, SW_TYPE_F32, hd, nh, T, 1, 0, NULL)
                           : dt_make(be, SW_TYPE_F32, (int64_t)hd * nh, T, 1, 1, 0, NULL);
    sw_tensor tk = dt_make(be, ct, hd, nkv, bs, n_blocks, 0, kc);
    sw_tensor tv = dt_make(be, ct, hd, nkv, bs, n_blocks, 0, vc);
    sw_tensor tss = dt_make(be, SW_TYPE_I32, S + 1, 1, 1, 1, 0, seq_start);
    sw_tensor tp = dt_make(be, SW_TYPE_I32, T, 1, 1, 1, 0, pos);
    sw_tensor tbt = dt_make(be, SW_TYPE_I32, max_blocks, S, 1, 1, 0, tables);
    sw_attn_params p = {nh, nkv, hd, scale, bs, S, max_blocks, max_pos + 1, &tss, &tp, &tbt, false, 0};
    p.window = ac->window;
    OK(sw_be_attention(be, &tq, &tk, &tv, &p, &to, &g_err));
    dt_read(be, &to, o);
    for (int s = 0; s < S; s++)
        for (int t = seq_start[s]; t < seq_start[s + 1]; t++)
            for (int h = 0; h < nh; h++) {
                const int kvh = h / (nh / nkv), n = pos[t] + 1;
                const int lo = ac->window > 0 && n > ac->window ? n - ac->window : 0;
                const float *qv = q + ((size_t)t * nh + h) * hd;
                double *sc = malloc(sizeof(double) * n), mx = -INFINITY, sum = 0, e = 0, vmax = 0;
                for (int j = lo; j < n; j++) {
                    size_t slot = (size_t)tables[s * max_blocks + j / bs] * bs + j % bs;
                    const double *kr = kd + (slot * nkv + kvh) * hd;
                    double dot = 0, mag = 0;
                    for (int d = 0; d < hd; d++) {
                        dot += qv[d] * kr[d];
                        mag += fabs(qv[d] * kr[d]);
                    }
                    sc[j] = dot * scale;
                    e = fmax(e, (hd + 4) * U * scale * mag);
                    mx = fmax(mx, sc[j]);
                }
                for (int j = lo; j < n; j++) sum += exp(sc[j] - mx);
                for (int d = 0; d < hd; d++) {
                    double r = 0;
                    for (int j = lo; j < n; j++) {
                        size_t slot = (size_t)tables[s * max_blocks + j / bs] * bs + j % bs;
                        double vv = vd[(slot * nkv + kvh) * hd + d];
                        r += exp(sc[j] - mx) / sum * vv;
                        vmax = fmax(vmax, fabs(vv));
                    }
                    double bound = 4 * e * vmax + (n - lo + 64) * 2 * U * vmax;
                    note(w, fabs((double)o[((size_t)t * nh + h) * hd + d] - r), bound,
                         "hd=%d nh=%d nkv=%d f16=%d q3d=%d window=%d: token %d head %d [%d] = "
                         "%g, ref %g",
                         hd, nh, nkv, ac->f16, ac->q3d, ac->window, t, h, d,
                         (double)o[((size_t)t * nh + h) * hd + d], r);
                }
                free(sc);
            }
    /* a block id outside the cache is a range error */
    tables[0] = n_blocks;
    dt_write(be, &tbt, tables);
    assert_int_equal(sw_be_attention(be, &tq, &tk, &tv, &p, &to, &g_err), SW_E_RANGE);
    assert_non_null(strstr(g_err.msg, "attention"));
    dt_free(be, &tq); dt_free(be, &to); dt_free(be, &tk); dt_free(be, &tv);
    dt_free(be, &tss); dt_free(be, &tp); dt_free(be, &tbt);
    free(seq_start); free(pos); free(tables); free(perm); free(kc); free(vc); free(kd); free(vd);
    free(q); free(o);
}

static void test_attention(void **state) {
    (void)state;
    static const int len_mix[] = {5, 1, 3, 1}, pos_mix[] = {0, 300, 14, 1200};
    static const int len_dec[] = {1, 1}, pos_dec[] = {700, 1999};
    static const int len_pre[] = {40}, pos_pre[] = {0};
    const acase cases[] = {
        {128, 8, 2, true, false, 4, len_mix, pos_mix, 0},  /* GQA 4, mixed prefill/decode */
        {64, 4, 4, false, true, 4, len_mix, pos_mix, 0},   /* MHA, f32 cache, 3-D q */
        {128, 32, 8, true, false, 2, len_dec, pos_dec, 0}, /* decode, long ctx: split-K */
        {256, 16, 1, true, false, 2, len_dec, pos_dec, 0}, /* hd 256, 16 heads per kv head */
        {80, 6, 2, false, true, 1, len_pre, pos_pre, 0},   /* odd head_dim, prefill */
        {64, 64, 2, true, false, 1, len_pre, pos_pre, 0},  /* 32 heads per kv head: 1 group */
        /* Gemma 3's sliding-window layers: hd 256, 4 heads on 1 kv head */
        {256, 4, 1, true, false, 4, len_mix, pos_mix, 512}, /* window inside split-K decode */
        {256, 4, 1, true, false, 2, len_dec, pos_dec, 300},
        {64, 4, 2, false, true, 1, len_pre, pos_pre, 7},    /* prefill, window < chunk */
    };
    worst_t w = {0, ""};
    sw_cuda_stats s0, s1;
    sw_backend_cuda_stats(g.be, &s0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) attention_case(g.be, &cases[i], &w);
    sw_backend_cuda_stats(g.be, &s1);
    print_message("attention worst err/bound %.3g (%s); warp kernel %lld, split %lld\n", w.worst,
                  w.where, (long long)(s1.attn_warp - s0.attn_warp),
                  (long long)(s1.attn_split - s0.attn_split));
    /* both kernels ran (head_dim 80 takes the tiled one), and split-K did */
    assert_true(s1.attn_warp - s0.attn_warp >= 5);
    assert_true(s1.attn_warp - s0.attn_warp < 2 * (int64_t)(sizeof cases / sizeof cases[0]));
    assert_true(s1.attn_split > s0.attn_split);
    if (!(w.worst <= 1.0)) fail_msg("attention: %s: error %.3g x the bound", w.where, w.worst);
    /* head_dim over the kernel's limit is unsupported, with a message (out is
     * its own tensor: the wrapper rejects an out that overlaps q first) */
    sw_tensor tq = dt_make(g.be, SW_TYPE_F32, 512, 1, 1, 1, 0, NULL);
    sw_tensor tout = dt_make(g.be, SW_TYPE_F32, 512, 1, 1, 1, 0, NULL);
    sw_tensor tk = dt_make(g.be, SW_TYPE_F16, 512, 1, 16, 1, 0, NULL);
    sw_tensor ti = dt_make(g.be, SW_TYPE_I32, 2, 1, 1, 1, 0, NULL);
    sw_tensor t1 = sw_tensor_make(ti.buf, 0, SW_TYPE_I32, 1, 1, 1, 1);
    sw_attn_params p = {1, 1, 512, 0.1f, 16, 1, 1, 1, &ti, &t1, &t1, false, 0};
    assert_int_equal(sw_be_attention(g.be, &tq, &tk, &tk, &p, &tout, &g_err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(g_err.msg, "head_dim"));
    dt_free(g.be, &tq); dt_free(g.be, &tout); dt_free(g.be, &tk); dt_free(g.be, &ti);
}

/* ----------------------------------------------------------- fused ops -- */

/* The fused ops against the CUDA ops they replace, run in the same step:
 * bit for bit (the kernels share the arithmetic: k_rms_norm<add>, rope_elem /
 * rope_heads, __float2half_rn). */
static void test_fused_ops(void **state) {
    (void)state;
    sw_backend *be = g.be;
    const int64_t n = 300, r = 3, hd = 64, nh = 8, nkv = 2, T = 5, qd = nh * hd, kvd = nkv * hd;
    const int64_t row = qd + 2 * kvd, bs = 16, nb = 8;
    float *x = malloc(sizeof(float) * n * r), *h = malloc(sizeof(float) * n * r);
    float *w = malloc(sizeof(float) * n), *m = malloc(sizeof(float) * row * T);
    for (int64_t i = 0; i < n * r; i++) x[i] = nrand() * 3, h[i] = nrand();
    for (int64_t i = 0; i < n; i++) w[i] = 1.0f + nrand() * 0.1f;
    for (int64_t i = 0; i < row * T; i++) m[i] = nrand();
    int32_t idx[16] = {0, 1, 17, 40, 100, /* pos */ 3, 0, 17, 30, 70 /* slots */};
    sw_tensor x1 = dt_make(be, SW_TYPE_F32, n, r, 1, 1, 0, x), x2 = dt_make(be, SW_TYPE_F32, n, r, 1, 1, 0, x);
    sw_tensor th = dt_make(be, SW_TYPE_F32, n, r, 1, 1, 0, h), tw = dt_make(be, SW_TYPE_F32, n, 1, 1, 1, 0, w);
    sw_tensor o1 = dt_make(be, SW_TYPE_F32, n, r, 1, 1, 0, NULL), o2 = dt_make(be, SW_TYPE_F32, n, r, 1, 1, 0, NULL);
    sw_tensor ma = dt_make(be, SW_TYPE_F32, row, T, 1, 1, 0, m), mb = dt_make(be, SW_TYPE_F32, row, T, 1, 1, 0, m);
    sw_tensor ti = dt_make(be, SW_TYPE_I32, 16, 1, 1, 1, 0, idx);
    sw_tensor pos = sw_tensor_make(ti.buf, 0, SW_TYPE_I32, T, 1, 1, 1);
    sw_tensor sl = sw_tensor_make(ti.buf, 20, SW_TYPE_I32, T, 1, 1, 1);
    sw_tensor kc[2], vc[2];
    for (int i = 0; i < 2; i++) {
        kc[i] = dt_make(be, SW_TYPE_F16, hd, nkv, bs, nb, 0, NULL);
        vc[i] = dt_make(be, SW_TYPE_F16, hd, nkv, bs, nb, 0, NULL);
    }
    sw_tensor *mats[2] = {&ma, &mb}, qh[2], kh[2], kf[2], v[2];
    for (int i = 0; i < 2; i++) {
        qh[i] = sw_tensor_make(mats[i]->buf, 0, SW_TYPE_F32, hd, nh, T, 1);
        kh[i] = sw_tensor_make(mats[i]->buf, (size_t)qd * 4, SW_TYPE_F32, hd, nkv, T, 1);
        qh[i].nb[2] = kh[i].nb[2] = mats[i]->nb[1];
        kf[i] = sw_tensor_cols(mats[i], qd, kvd);
        v[i] = sw_tensor_cols(mats[i], qd + kvd, kvd);
    }
    sw_rope_params p = {48, 2, 10000.0f, 1.0f, NULL}; /* partial rotation, NeoX */
    OK(sw_be_begin(be, &g_err));
    OK(sw_be_add(be, &x1, &th, &x1, &g_err));
    OK(sw_be_rms_norm(be, &x1, &tw, 1e-5f, &o1, &g_err));
    OK(sw_be_add_rms_norm(be, &x2, &th, &tw, 1e-5f, &o2, &g_err));
    OK(sw_be_rope(be, &qh[0], &pos, &p, &g_err));
    OK(sw_be_rope(be, &kh[0], &pos, &p, &g_err));
    OK(sw_be_kv_write(be, &kf[0], &v[0], &kc[0], &vc[0], &sl, &g_err));
    OK(sw_be_rope_kv_write(be, &qh[1], &kh[1], &v[1], &pos, &p, &kc[1], &vc[1], &sl, &g_err));
    OK(sw_be_end(be, &g_err));
    const sw_tensor *pairs[][2] = {{&x1, &x2}, {&o1, &o2}, {&kc[0], &kc[1]}, {&vc[0], &vc[1]}};
    for (size_t i = 0; i < 4; i++) {
        size_t nbytes = sw_tensor_nbytes(pairs[i][0]);
        uint8_t *a = malloc(nbytes), *b = malloc(nbytes);
        dt_read(be, pairs[i][0], a);
        dt_read(be, pairs[i][1], b);
        if (memcmp(a, b, nbytes) != 0) fail_msg("fused op differs from its sequence (pair %zu)", i);
        free(a);
        free(b);
    }
    float *qa = malloc(sizeof(float) * row * T), *qb = malloc(sizeof(float) * row * T);
    dt_read(be, &ma, qa);
    dt_read(be, &mb, qb);
    for (int64_t t = 0; t < T; t++)
        if (memcmp(qa + t * row, qb + t * row, sizeof(float) * qd) != 0)
            fail_msg("rope_kv_write: q of token %lld differs from rope's", (long long)t);
    free(qa);
    free(qb);
    sw_tensor all[] = {x1, x2, th, tw, o1, o2, ma, mb, ti, kc[0], kc[1], vc[0], vc[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dt_free(be, &all[i]);
    free(x); free(h); free(w); free(m);

    /* swiglu then an int8-path matmul of its output, in a step (the swiglu
     * also quantizes for the matmul) and op by op outside one (no fusion) */
    for (int64_t T = 1; T <= 17; T += 16) {
        const int64_t K = 512, N = 40;
        float *deq, *g = malloc(sizeof(float) * 2 * K * T), *res[2];
        for (int64_t i = 0; i < 2 * K * T; i++) g[i] = nrand() * 2;
        uint8_t *wq = make_weights(SW_TYPE_Q4_K, K, N, &deq);
        sw_tensor tgu = dt_make(be, SW_TYPE_F32, 2 * K, T, 1, 1, 0, NULL);
        sw_tensor tww = dt_make(be, SW_TYPE_Q4_K, K, N, 1, 1, 0, wq);
        sw_tensor to = dt_make(be, SW_TYPE_F32, N, T, 1, 1, 0, NULL);
        sw_tensor gate = sw_tensor_cols(&tgu, 0, K), up = sw_tensor_cols(&tgu, K, K);
        sw_cuda_stats s0, s1;
        for (int fused = 0; fused < 2; fused++) {
            dt_write(be, &tgu, g);
            sw_backend_cuda_stats(be, &s0);
            if (fused) OK(sw_be_begin(be, &g_err));
            OK(sw_be_swiglu(be, &gate, &up, &gate, &g_err));
            OK(sw_be_matmul(be, &tww, &gate, NULL, &to, &g_err));
            if (fused) OK(sw_be_end(be, &g_err));
            sw_backend_cuda_stats(be, &s1);
            assert_int_equal(s1.swiglu_q8 - s0.swiglu_q8, fused);
            res[fused] = malloc(sizeof(float) * N * T);
            dt_read(be, &to, res[fused]);
        }
        if (memcmp(res[0], res[1], sizeof(float) * N * T) != 0)
            fail_msg("swiglu fused with the quantize (T %lld) differs from the ops apart", (long long)T);
        dt_free(be, &tgu); dt_free(be, &tww); dt_free(be, &to);
        free(g); free(deq); free(wq); free(res[0]); free(res[1]);
    }
}

/* -------------------------------------------------------------- logits -- */

static void ref_summary(const float *l, int64_t V, int k, sw_logits_stats *st, int32_t *ids,
                        float *lps) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < V; j++)
        if (l[j] > mx) mx = l[j];
    double se = 0, sel = 0;
    for (int64_t j = 0; j < V; j++) {
        if (isnan(l[j])) continue;
        double e = exp((double)l[j] - mx);
        se += e;
        if (e > 0) sel += e * ((double)l[j] - mx); /* -inf adds 0 */
    }
    double lse = mx + log(se);
    st->max = mx;
    st->logsumexp = (float)lse;
    st->entropy = (float)(log(se) - sel / se);
    for (int i = 0; i < k; i++) { /* selection: best not yet taken, lower id on ties */
        int best = -1;
        for (int64_t j = 0; j < V; j++) {
            if (isnan(l[j])) continue;
            bool taken = false;
            for (int m = 0; m < i; m++) taken |= ids[m] == j;
            if (taken) continue;
            if (best < 0 || l[j] > l[best]) best = (int)j;
        }
        ids[i] = best;
        lps[i] = best >= 0 ? l[best] : -INFINITY;
    }
}

static void test_logits(void **state) {
    (void)state;
    sw_backend *be = g.be;
    static const int64_t Vs[] = {1000, 50000};
    static const int ks[] = {0, 1, 5, 40};
    for (size_t a = 0; a < 2; a++) {
        const int64_t V = Vs[a], R = 3;
        float *l = malloc(sizeof(float) * V * R);
        for (int64_t i = 0; i < V * R; i++) l[i] = nrand() * 4;
        l[5] = l[6] = 9.5f; /* a tie at the top of row 0 */
        l[7] = NAN;
        l[V + 3] = -INFINITY;
        sw_tensor tl = dt_make(be, SW_TYPE_F32, V, R, 1, 1, 0, l);
        for (size_t b = 0; b < 4; b++) {
            const int k = ks[b];
            sw_logits_stats st[3], rs;
            int32_t ids[3 * 40], rid[40];
            float lps[3 * 40], rlp[40];
            OK(sw_be_logits_summary(be, &tl, k, st, ids, lps, &g_err));
            for (int64_t r = 0; r < R; r++) {
                ref_summary(l + r * V, V, k, &rs, rid, rlp);
                int nan_ref = 0;
                for (int64_t j = 0; j < V; j++) nan_ref += isnan(l[r * V + j]);
                if (!isfinite(st[r].entropy) || st[r].max != rs.max ||
                    fabs(st[r].logsumexp - rs.logsumexp) > 1e-6 * fabs(rs.logsumexp) + 1e-6 ||
                    fabs(st[r].log_z - rs.logsumexp) > 1e-6 * fabs(rs.logsumexp) + 1e-6 ||
                    fabs(st[r].log_z - (st[r].max + log(st[r].sum_exp))) > 1e-12 * (1 + fabs(st[r].log_z)) ||
                    st[r].n_nan != nan_ref ||
                    fabs(st[r].entropy - rs.entropy) > 1e-5 * (1 + rs.entropy))
                    fail_msg("logits V=%lld row %lld: max %g/%g lse %.9g/%.9g H %.9g/%.9g",
                             (long long)V, (long long)r, st[r].max, rs.max, st[r].logsumexp,
                             rs.logsumexp, st[r].entropy, rs.entropy);
                for (int i = 0; i < k; i++) /* the raw logits: exact */
                    if (ids[r * k + i] != rid[i] || memcmp(&lps[r * k + i], &rlp[i], 4) != 0)
                        fail_msg("logits V=%lld row %lld top %d: id %d/%d lp %.9g/%.9g",
                                 (long long)V, (long long)r, i, ids[r * k + i], rid[i],
                                 lps[r * k + i], rlp[i]);
            }
        }
        dt_free(be, &tl);
        free(l);
    }
}

/* ---------------------------------------------------------- CUDA graphs -- */

/* A small transformer-like step: embed, norm, q4_K QKV projection, rope,
 * kv_write, attention, f16 output projection, residual add, swiglu. Two
 * sequences; a step is either a decode ('d': one token each: the int8
 * mat-vec path) or a chunk ('c': GS_C tokens each: past the mat-vec's 8 rows,
 * so the quantized projection takes the int8 tensor-core path and the f16 one
 * cuBLAS). The block tables have a capacity of GS_CAP blocks (768 keys), so
 * decode attention splits its key range (split + combine kernels) on any
 * GPU with fewer than 192 SMs. Runs the steps of `plan` in order (uploading
 * new ids and positions before each begin, as the runtime does) and returns
 * every step's output rows concatenated. */
enum { GS_EMB = 256, GS_HD = 64, GS_NH = 4, GS_NKV = 2, GS_BS = 16, GS_CAP = 48, GS_C = 6 };

static float *graph_run(sw_backend *be, const char *plan) {
    const int64_t qd = GS_HD * GS_NH, kvd = GS_HD * GS_NKV, qkv = qd + 2 * kvd, Tmax = 2 * GS_C;
    const int steps = (int)strlen(plan);
    uint64_t saved = rng.s;
    rng.s = 4242; /* same weights on every backend */
    float *deq;
    uint8_t *emb = make_weights(SW_TYPE_Q8_0, GS_EMB, 100, &deq);
    free(deq);
    uint8_t *wqkv = make_weights(SW_TYPE_Q4_K, GS_EMB, qkv, &deq);
    free(deq);
    uint8_t *wo = make_weights(SW_TYPE_F16, qd, GS_EMB, &deq);
    free(deq);
    float normw[GS_EMB];
    for (int i = 0; i < GS_EMB; i++) normw[i] = 1.0f + nrand() * 0.1f;
    rng.s = saved;
    sw_tensor t_emb = dt_make(be, SW_TYPE_Q8_0, GS_EMB, 100, 1, 1, 0, emb);
    sw_tensor t_qkv = dt_make(be, SW_TYPE_Q4_K, GS_EMB, qkv, 1, 1, 0, wqkv);
    sw_tensor t_wo = dt_make(be, SW_TYPE_F16, qd, GS_EMB, 1, 1, 0, wo);
    sw_tensor t_nw = dt_make(be, SW_TYPE_F32, GS_EMB, 1, 1, 1, 0, normw);
    /* activations sized for the largest step; each step views its first T rows */
    sw_tensor X = dt_make(be, SW_TYPE_F32, GS_EMB, Tmax, 1, 1, 0, NULL);
    sw_tensor H = dt_make(be, SW_TYPE_F32, GS_EMB, Tmax, 1, 1, 0, NULL);
    sw_tensor Y = dt_make(be, SW_TYPE_F32, qkv, Tmax, 1, 1, 0, NULL);
    sw_tensor ATT = dt_make(be, SW_TYPE_F32, qd, Tmax, 1, 1, 0, NULL);
    sw_tensor kc = dt_make(be, SW_TYPE_F16, GS_HD, GS_NKV, GS_BS, 2 * GS_CAP, 0, NULL);
    sw_tensor vc = dt_make(be, SW_TYPE_F16, GS_HD, GS_NKV, GS_BS, 2 * GS_CAP, 0, NULL);
    /* indices: tokens[T], pos[T], seq_start[3], tables[GS_CAP x 2], slots[T] */
    sw_tensor idx = dt_make(be, SW_TYPE_I32, 256, 1, 1, 1, 0, NULL);
    float *res = malloc(sizeof(float) * GS_EMB * Tmax * steps);
    int32_t past[2] = {0, 3};
    for (int st = 0; st < steps; st++) {
        const int per = plan[st] == 'c' ? GS_C : 1, T = 2 * per;
        int32_t host[256] = {0};
        int32_t *tok = host, *pos = host + 16, *ss = host + 32, *bt = host + 48, *sl = host + 160;
        for (int q = 0; q < 2; q++)
            for (int j = 0; j < per; j++) {
                const int t = q * per + j, p = past[q] + j;
                tok[t] = (7 * st + 13 * t + 1) % 100;
                pos[t] = p;
                sl[t] = (q * GS_CAP + p / GS_BS) * GS_BS + p % GS_BS;
            }
        ss[0] = 0, ss[1] = per, ss[2] = T;
        for (int b = 0; b < GS_CAP; b++) bt[b] = b, bt[GS_CAP + b] = GS_CAP + b;
        past[0] += per, past[1] += per;
        sw_tensor tk = sw_tensor_make(idx.buf, 0, SW_TYPE_I32, T, 1, 1, 1);
        sw_tensor ps = sw_tensor_make(idx.buf, 64, SW_TYPE_I32, T, 1, 1, 1);
        sw_tensor sst = sw_tensor_make(idx.buf, 128, SW_TYPE_I32, 3, 1, 1, 1);
        sw_tensor btt = sw_tensor_make(idx.buf, 192, SW_TYPE_I32, GS_CAP, 2, 1, 1);
        sw_tensor slt = sw_tensor_make(idx.buf, 640, SW_TYPE_I32, T, 1, 1, 1);
        sw_tensor x = sw_tensor_rows(&X, 0, T), h = sw_tensor_rows(&H, 0, T);
        sw_tensor y = sw_tensor_rows(&Y, 0, T), att = sw_tensor_rows(&ATT, 0, T);
        sw_tensor q = sw_tensor_cols(&y, 0, qd), k = sw_tensor_cols(&y, qd, kvd),
                  v = sw_tensor_cols(&y, qd + kvd, kvd);
        sw_tensor qh = sw_tensor_make(y.buf, y.offset, SW_TYPE_F32, GS_HD, GS_NH, T, 1);
        qh.nb[2] = y.nb[1];
        sw_tensor kh = sw_tensor_make(y.buf, y.offset + (size_t)qd * 4, SW_TYPE_F32, GS_HD, GS_NKV, T, 1);
        kh.nb[2] = y.nb[1];
        sw_rope_params rp = {GS_HD, 2, 10000.0f, 1.0f, NULL};
        sw_attn_params ap = {GS_NH, GS_NKV, GS_HD, 0.125f, GS_BS, 2, GS_CAP, past[1], &sst, &ps, &btt, false, 0};
        OK(sw_be_upload(be, idx.buf, 0, host, sizeof host, &g_err));
        OK(sw_be_begin(be, &g_err));
        OK(sw_be_get_rows(be, &t_emb, &tk, &x, &g_err));
        OK(sw_be_rms_norm(be, &x, &t_nw, 1e-5f, &h, &g_err));
        OK(sw_be_matmul(be, &t_qkv, &h, NULL, &y, &g_err));
        OK(sw_be_rope(be, &qh, &ps, &rp, &g_err));
        OK(sw_be_rope(be, &kh, &ps, &rp, &g_err));
        OK(sw_be_kv_write(be, &k, &v, &kc, &vc, &slt, &g_err));
        OK(sw_be_attention(be, &q, &kc, &vc, &ap, &att, &g_err));
        OK(sw_be_matmul(be, &t_wo, &att, NULL, &h, &g_err));
        OK(sw_be_add(be, &x, &h, &x, &g_err));
        OK(sw_be_swiglu(be, &x, &h, &x, &g_err));
        OK(sw_be_end(be, &g_err));
        memset(res + (size_t)st * GS_EMB * Tmax, 0, sizeof(float) * GS_EMB * Tmax);
        dt_read(be, &x, res + (size_t)st * GS_EMB * Tmax);
    }
    sw_tensor all[] = {t_emb, t_qkv, t_wo, t_nw, X, H, Y, ATT, kc, vc, idx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dt_free(be, &all[i]);
    free(emb); free(wqkv); free(wo);
    return res;
}

/* Graphs change nothing: every step of a plan whose shapes change (decode,
 * chunk, decode...) gives the eager backend's bits, with captures at each new
 * shape and replays while it holds; the split attention, the int8 tensor-core
 * matmul and cuBLAS all ran inside graphs. */
static void test_graph_replay(void **state) {
    (void)state;
    const char *plan = "dddccdddcdddd";
    const int steps = (int)strlen(plan);
    float *eager = graph_run(g.be, plan);
    sw_cuda_stats s0, s1;
    sw_backend_cuda_stats(g.graphs, &s0);
    float *graph = graph_run(g.graphs, plan);
    sw_backend_cuda_stats(g.graphs, &s1);
    print_message("graphs: %lld captures, %lld replays; split attention %lld, mmq %lld, cublas %lld\n",
                  (long long)(s1.captures - s0.captures), (long long)(s1.replays - s0.replays),
                  (long long)(s1.attn_split - s0.attn_split), (long long)(s1.mm_mmq - s0.mm_mmq),
                  (long long)(s1.mm_cublas - s0.mm_cublas));
    for (int i = 0; i < GS_EMB * 2 * GS_C * steps; i++)
        if (memcmp(&eager[i], &graph[i], 4) != 0)
            fail_msg("graph replay differs from eager at step %d (%c) element %d: %.9g vs %.9g",
                     i / (GS_EMB * 2 * GS_C), plan[i / (GS_EMB * 2 * GS_C)],
                     i % (GS_EMB * 2 * GS_C), (double)graph[i], (double)eager[i]);
    /* d d(capture) d(replay) c c(capture) d d(capture) d(replay) c d d(capture) d(replay) d(replay) */
    assert_true(s1.captures - s0.captures >= 4);
    assert_true(s1.replays - s0.replays >= 4);
    assert_true(s1.attn_split > s0.attn_split);
    assert_true(s1.mm_mmq > s0.mm_mmq);
    assert_true(s1.mm_cublas > s0.mm_cublas);
    free(eager);
    free(graph);
}

/* ------------------------------------------- memory, transfers, errors -- */

static void test_memory(void **state) {
    (void)state;
    sw_backend *be = g.be;
    size_t fr = 0, tot = 0;
    OK(sw_be_mem_info(be, &fr, &tot, &g_err));
    assert_true(fr > 0 && tot >= fr);
    for (size_t i = 0; i < N_TYPES; i++) assert_true(sw_be_supports_type(be, k_all_types[i]));
    assert_false(sw_be_supports_type(be, SW_TYPE_IQ2_XS));
    /* 20 MiB + change at an odd offset: several staging chunks */
    const size_t n = ((size_t)20 << 20) + 77;
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)(i * 2654435761u >> 13);
    sw_buffer *b = NULL;
    OK(sw_be_buf_alloc(be, n + 3, SW_BUF_WEIGHTS, &b, &g_err));
    OK(sw_be_upload(be, b, 3, src, n, &g_err));
    OK(sw_be_download(be, b, 3, dst, n, &g_err));
    assert_memory_equal(src, dst, n);
    assert_int_equal(sw_be_upload(be, b, 4, src, n, &g_err), SW_E_RANGE);
    sw_be_buf_free(be, b);
    free(src);
    free(dst);
    /* a mid-step download sees the ops recorded before it */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
    sw_tensor ta = dt_make(be, SW_TYPE_F32, 8, 1, 1, 1, 0, a);
    OK(sw_be_begin(be, &g_err));
    OK(sw_be_add(be, &ta, &ta, &ta, &g_err));
    dt_read(be, &ta, got);
    OK(sw_be_add(be, &ta, &ta, &ta, &g_err));
    OK(sw_be_end(be, &g_err));
    for (int i = 0; i < 8; i++) assert_true(got[i] == 2 * a[i]);
    dt_read(be, &ta, got);
    for (int i = 0; i < 8; i++) assert_true(got[i] == 4 * a[i]);
    /* misaligned and out-of-buffer tensors are rejected, naming the op */
    sw_tensor mis = ta;
    mis.offset = 2;
    mis.ne[0] = 4;
    assert_int_equal(sw_be_add(be, &mis, &mis, &mis, &g_err), SW_E_INVALID_ARG);
    assert_non_null(strstr(g_err.msg, "add"));
    sw_tensor past = ta;
    past.ne[1] = 2;
    assert_int_equal(sw_be_add(be, &past, &past, &past, &g_err), SW_E_INVALID_ARG);
    assert_non_null(strstr(g_err.msg, "past the end"));
    dt_free(be, &ta);
}

int main(void) {
    int gate = sw_test_cuda_gate(); /* skips only without a GPU */
    if (gate != 0) return gate;
    g.be = make_cuda("0", "8", "64");
    if (!g.be) return 1;
    g.cublas = make_cuda("0", "0", "64"); /* SW_CUDA_MMVQ_MAX_T = SW_CUDA_MMQ_MAX_T = 0 */
    g.tiles = make_cuda("0", "0", "1");
    g.graphs = make_cuda("1", "8", "64");
    if (!g.cublas || !g.tiles || !g.graphs) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_get_rows),
        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_swiglu_add),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_kv_write),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_fused_ops),
        cmocka_unit_test(test_graph_replay),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sw_backend_free(g.be);
    sw_backend_free(g.cublas);
    sw_backend_free(g.tiles);
    sw_backend_free(g.graphs);
    return rc;
}

#else /* !SW_HAVE_CUDA */

int main(void) { return sw_test_cuda_gate(); }

#endif
