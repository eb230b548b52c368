/* test_encoder_ops.c — the encoder (BERT) ops, layer_norm and gelu, on every
 * CPU kernel set the host has (1 and 2 threads) and on Vulkan
 * (when a device exists), against double-precision references written here
 * from the definitions:
 *   layer_norm: (x - mean) / sqrt(var + eps) * w + b, biased variance, with
 *               and without b, in place (out = x) and into another tensor,
 *               rows of 384 (MiniLM) and 100 (a length no kernel divides)
 *               over ne1 x ne2 rows, inputs with a large common offset (where
 *               E[x^2] - E[x]^2 would cancel);
 *   gelu:       x/2 (1 + erf(x / sqrt 2)) over [-8, 8], in place.
 * Tolerances, u = 2^-24: layer_norm 64u (1 + |y|) (the normalized value is
 * O(1); the reductions add ~n u relative to the deviations, n <= 384 in
 * float trees on Vulkan, double on the CPU), plus 4u |mean| |w| / sd for a
 * mean held in float (Vulkan), which rows with a large common offset feel;
 * gelu (16u |y| + 2e-7 |x|)
 * (erff is within a few ulp; the Vulkan shader's erf is Abramowitz-Stegun
 * 7.1.26, |error| <= 1.5e-7, times |x| / 2). The tanh approximation of GELU
 * differs from the exact one by up to ~5e-4 and fails this bound. Also the
 * wrappers' checks: w of the wrong length, negative eps, shape mismatch, and
 * SW_E_UNSUPPORTED from a backend without the ops. */
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

#define U 0x1p-24

static sw_test_rng rng = {0xbe27};

typedef struct {
    sw_test_cpu_grid *grid;
    sw_backend *vk; /* NULL without a Vulkan device */
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->grid = sw_test_cpu_grid_create();
    sw_err err = {{0}};
    sw_backend_config vc = {.name = "vulkan", .device = -1};
    if (sw_backend_create(&vc, &f->vk, &err) != SW_OK) {
        print_message("vulkan: %s (its cases are skipped)\n", err.msg);
        f->vk = NULL;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    sw_backend_free(f->vk);
    sw_test_cpu_grid_free(f->grid);
    free(f);
    return 0;
}

/* Every backend under test: the CPU grid, then Vulkan. */
static int list_backends(const fixture *f, sw_backend **out) {
    int n = 0;
    for (int isa = 0; isa < SW_CPU_ISA_COUNT; isa++)
        for (int th = 0; th < 2; th++)
            if (f->grid->be[isa][th]) out[n++] = f->grid->be[isa][th];
    if (f->vk) out[n++] = f->vk;
    return n;
}

/* A device buffer holding host data, and a download of one. */
static sw_buffer *upload(sw_backend *be, const void *data, size_t n) {
    sw_buffer *b = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_be_buf_alloc(be, n, SW_BUF_COMPUTE, &b, &err), SW_OK);
    assert_int_equal(sw_be_upload(be, b, 0, data, n, &err), SW_OK);
    return b;
}

static void download(sw_backend *be, sw_buffer *b, void *data, size_t n) {
    sw_err err = {{0}};
    assert_int_equal(sw_be_download(be, b, 0, data, n, &err), SW_OK);
}

/* Run one op between begin and end (Vulkan records, then submits). */
#define RUN(be, call)                                                                  \
    do {                                                                               \
        sw_err e_ = {{0}};                                                             \
        assert_int_equal(sw_be_begin((be), &e_), SW_OK);                               \
        sw_status st_ = (call);                                                        \
        if (st_ != SW_OK) fail_msg("%s: %s", sw_backend_name(be), e_.msg);             \
        assert_int_equal(sw_be_end((be), &e_), SW_OK);                                 \
    } while (0)

/* ---- layer_norm ---- */

/* y = the reference; tol = its error bound per element: 64u (1 + |y|), plus
 * for a float mean its rounding, u |mean| / sd |w|, times 4. */
static void layer_norm_ref(const float *x, const float *w, const float *b, int64_t n,
                           int64_t rows, double eps, double *y, double *tol) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++) mean += xr[i];
        mean /= (double)n;
        for (int64_t i = 0; i < n; i++) var += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        var /= (double)n;
        double inv_sd = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < n; i++) {
            y[r * n + i] = ((double)xr[i] - mean) * inv_sd * w[i] + (b ? b[i] : 0.0);
            tol[r * n + i] =
                64 * U * (1 + fabs(y[r * n + i])) + 4 * U * fabs(mean) * inv_sd * fabs(w[i]);
        }
    }
}

static void layer_norm_case(const fixture *f, int64_t n, int64_t ne1, int64_t ne2, float offset,
                            bool bias, bool in_place, float eps) {
    int64_t rows = ne1 * ne2;
    size_t nx = (size_t)(n * rows);
    float *x = malloc(nx * sizeof *x), *w = malloc((size_t)n * sizeof *w),
          *b = malloc((size_t)n * sizeof *b), *y = malloc(nx * sizeof *y);
    double *ref = malloc(nx * sizeof *ref), *tol = malloc(nx * sizeof *tol);
    assert_true(x && w && b && y && ref && tol);
    for (size_t i = 0; i < nx; i++) x[i] = offset + 2.0f * sw_test_nrand(&rng);
    for (int64_t i = 0; i < n; i++) {
        w[i] = 1.0f + 0.3f * sw_test_nrand(&rng);
        b[i] = 0.2f * sw_test_nrand(&rng);
    }
    layer_norm_ref(x, w, bias ? b : NULL, n, rows, eps, ref, tol);
    sw_backend *bes[2 * SW_CPU_ISA_COUNT + 1];
    int nb = list_backends(f, bes);
    for (int k = 0; k < nb; k++) {
        sw_backend *be = bes[k];
        sw_buffer *bx = upload(be, x, nx * sizeof *x), *bw = upload(be, w, (size_t)n * 4),
                  *bb = upload(be, b, (size_t)n * 4), *by = upload(be, y, nx * sizeof *y);
        sw_tensor tx = sw_tensor_make(bx, 0, SW_TYPE_F32, n, ne1, ne2, 1);
        sw_tensor tw = sw_tensor_make(bw, 0, SW_TYPE_F32, n, 1, 1, 1);
        sw_tensor tb = sw_tensor_make(bb, 0, SW_TYPE_F32, n, 1, 1, 1);
        sw_tensor ty = sw_tensor_make(by, 0, SW_TYPE_F32, n, ne1, ne2, 1);
        sw_tensor *out = in_place ? &tx : &ty;
        RUN(be, sw_be_layer_norm(be, &tx, &tw, bias ? &tb : NULL, eps, out, &e_));
        download(be, in_place ? bx : by, y, nx * sizeof *y);
        for (size_t i = 0; i < nx; i++) {
            if (!(fabs(y[i] - ref[i]) <= tol[i]))
                fail_msg("%s: layer_norm n %lld rows %lld offset %g bias %d in place %d: [%zu] "
                         "= %.9g, reference %.9g",
                         sw_backend_name(be), (long long)n, (long long)rows, (double)offset, bias,
                         in_place, i, (double)y[i], ref[i]);
        }
        sw_be_buf_free(be, bx);
        sw_be_buf_free(be, bw);
        sw_be_buf_free(be, bb);
        sw_be_buf_free(be, by);
    }
    free(x);
    free(w);
    free(b);
    free(y);
    free(ref);
    free(tol);
}

static void test_layer_norm(void **state) {
    const fixture *f = *state;
    layer_norm_case(f, 384, 5, 1, 0.0f, true, false, 1e-12f);
    layer_norm_case(f, 384, 3, 2, 0.0f, true, true, 1e-12f);
    layer_norm_case(f, 100, 7, 1, 0.0f, false, false, 1e-5f);
    layer_norm_case(f, 100, 2, 3, 0.0f, false, true, 1e-5f);
    /* a common offset 1000x the spread: the one-pass variance would lose it */
    layer_norm_case(f, 384, 4, 1, 2000.0f, true, false, 1e-12f);
}

/* ---- gelu ---- */

static void test_gelu(void **state) {
    const fixture *f = *state;
    const int64_t n = 1000, rows = 3;
    size_t nx = (size_t)(n * rows);
    float *x = malloc(nx * sizeof *x), *y = malloc(nx * sizeof *y);
    assert_true(x && y);
    for (size_t i = 0; i < nx; i++)
        x[i] = i < (size_t)n ? -8.0f + 16.0f * (float)i / (float)(n - 1) /* a sweep */
                             : 3.0f * sw_test_nrand(&rng);
    sw_backend *bes[2 * SW_CPU_ISA_COUNT + 1];
    int nb = list_backends(f, bes);
    for (int k = 0; k < nb; k++) {
        for (int in_place = 0; in_place < 2; in_place++) {
            sw_backend *be = bes[k];
            sw_buffer *bx = upload(be, x, nx * sizeof *x), *by = upload(be, x, nx * sizeof *x);
            sw_tensor tx = sw_tensor_make(bx, 0, SW_TYPE_F32, n, rows, 1, 1);
            sw_tensor ty = sw_tensor_make(by, 0, SW_TYPE_F32, n, rows, 1, 1);
            RUN(be, sw_be_gelu(be, &tx, in_place ? &tx : &ty, &e_));
            download(be, in_place ? bx : by, y, nx * sizeof *y);
            for (size_t i = 0; i < nx; i++) {
                double xi = x[i], ref = 0.5 * xi * (1.0 + erf(xi / sqrt(2.0)));
                double tol = 16 * U * fabs(ref) + 2e-7 * fabs(xi);
                if (!(fabs(y[i] - ref) <= tol))
                    fail_msg("%s: gelu(%.9g) = %.9g, reference %.9g", sw_backend_name(be), xi,
                             (double)y[i], ref);
            }
            sw_be_buf_free(be, bx);
            sw_be_buf_free(be, by);
        }
    }
    free(x);
    free(y);
}

/* ---- the wrappers' checks ---- */

static void test_errors(void **state) {
    const fixture *f = *state;
    sw_backend *be = f->grid->be[0][0];
    sw_err err = {{0}};
    float buf[64] = {0};
    sw_buffer *bx = upload(be, buf, sizeof buf);
    sw_tensor x = sw_tensor_make(bx, 0, SW_TYPE_F32, 8, 2, 1, 1);
    sw_tensor w7 = sw_tensor_make(bx, 0, SW_TYPE_F32, 7, 1, 1, 1);
    sw_tensor w8 = sw_tensor_make(bx, 0, SW_TYPE_F32, 8, 1, 1, 1);
    sw_tensor y3 = sw_tensor_make(bx, 0, SW_TYPE_F32, 8, 3, 1, 1);
    assert_int_equal(sw_be_layer_norm(be, &x, &w7, NULL, 1e-5f, &x, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "w"));
    assert_int_equal(sw_be_layer_norm(be, &x, &w8, &w7, 1e-5f, &x, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "b"));
    assert_int_equal(sw_be_layer_norm(be, &x, &w8, NULL, -1.0f, &x, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "eps"));
    assert_int_equal(sw_be_layer_norm(be, &x, &w8, NULL, 1e-5f, &y3, &err), SW_E_INVALID_ARG);
    assert_int_equal(sw_be_gelu(be, &x, &y3, &err), SW_E_INVALID_ARG);
    assert_int_equal(sw_be_check_encoder_ops(be, &err), SW_OK);
    if (f->vk) assert_int_equal(sw_be_check_encoder_ops(f->vk, &err), SW_OK);
    /* a backend without the ops refuses them by name */
    sw_backend_ops ops = *be->ops;
    ops.layer_norm = NULL;
    ops.gelu = NULL;
    ops.non_causal_attention = false;
    sw_backend fake = *be;
    fake.ops = &ops;
    assert_int_equal(sw_be_layer_norm(&fake, &x, &w8, NULL, 1e-5f, &x, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "layer_norm"));
    assert_int_equal(sw_be_gelu(&fake, &x, &x, &err), SW_E_UNSUPPORTED);
    assert_int_equal(sw_be_check_encoder_ops(&fake, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "layer_norm"));
    ops.layer_norm = be->ops->layer_norm;
    ops.gelu = be->ops->gelu;
    assert_int_equal(sw_be_check_encoder_ops(&fake, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "non-causal"));
    sw_be_buf_free(be, bx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
