/* test_cpu_ops.c — the CPU backend's small ops and the sw_be_* wrapper layer,
 * each against a straightforward double-precision reference written here:
 * get_rows (every dequantizable type), rms_norm, rope (NORM and NEOX, partial
 * n_dims, freq_factors, strided heads view), kv_write (F32 and F16 caches),
 * swiglu, geglu, add, scale, softcap, the fused add_rms_norm and rope_kv_write
 * (bit for bit against the ops they replace), logits_summary; plus backend
 * creation and the wrappers' shape and type validation (errors must name the
 * op). Ops run with 1 and 2 threads; those with a row per kernel set
 * (rms_norm, kv_write, swiglu, geglu) on every set the host has.
 *
 * Tolerances are in units of u = 2^-24 (float rounding) relative to the
 * magnitude of the terms involved, with the count of float roundings each op
 * performs: rms_norm 3 (scale, x*scale, *w) plus the double->float of the
 * scale; rope 4 (cos/sin rounding, two products, one sum); swiglu 8 (expf is
 * within 1-2 ulp, then add, divide, multiply); geglu 8 plus what the rounding
 * of u does to e^-2u (8|u|); softcap 6 (divide, tanhf, multiply). */
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
#include "cpu_backend.h"
#include "threadpool.h"

#include <stdatomic.h>

#define U 0x1p-24

static sw_test_rng rng = {12345}; /* shared LCG: tests/unit/support/sw_test.c */
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

/* be[0], be[1]: the default kernel set with 1 and 2 threads; then every
 * other set the host has, 1 thread each (the ops with per-set rows, rms_norm,
 * kv_write and swiglu, run them all; n counts them). */
typedef struct {
    sw_backend *be[2 + SW_CPU_ISA_COUNT];
    int n;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    sw_err err = {{0}};
    for (int i = 0; i < 2; i++)
        if (sw_backend_cpu_create(i + 1, &f->be[i], &err) != SW_OK) fail_msg("%s", err.msg);
    f->n = 2;
    for (int isa = 0; isa < SW_CPU_ISA_COUNT; isa++) {
        char why[96];
        if (isa == (int)sw_backend_cpu_isa(f->be[0])) continue;
        if (!sw_cpu_isa_available((sw_cpu_isa)isa, why, sizeof why)) {
            print_message("note: %s rows not tested: %s\n", sw_cpu_isa_name((sw_cpu_isa)isa), why);
            continue;
        }
        if (sw_backend_cpu_create_isa(1, (sw_cpu_isa)isa, &f->be[f->n++], &err) != SW_OK)
            fail_msg("%s", err.msg);
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    for (int i = 0; i < f->n; i++)
        sw_backend_free(f->be[i]);
    free(f);
    return 0;
}

/* A host-memory tensor on a fresh buffer, filled from src (may be NULL). */
static sw_tensor mk(sw_backend *be, sw_type type, int64_t ne0, int64_t ne1, int64_t ne2,
                    int64_t ne3, const void *src) {
    sw_err err = {{0}};
    sw_tensor t = sw_tensor_make(NULL, 0, type, ne0, ne1, ne2, ne3);
    size_t n = sw_tensor_nbytes(&t);
    sw_buffer *b = NULL;
    if (sw_be_buf_alloc(be, n, SW_BUF_COMPUTE, &b, &err) != SW_OK) fail_msg("%s", err.msg);
    t.buf = b;
    if (src)
        assert_int_equal(sw_be_upload(be, b, 0, src, n, &err), SW_OK);
    else
        memset(sw_be_host_ptr(be, b), 0, n);
    return t;
}

static void *hp(sw_backend *be, const sw_tensor *t) {
    return (uint8_t *)sw_be_host_ptr(be, t->buf) + t->offset;
}

static void rm(sw_backend *be, sw_tensor *t) {
    sw_be_buf_free(be, t->buf);
}

/* ------------------------------------------------------------- get_rows -- */

static void test_get_rows(void **state) {
    fixture *f = *state;
    static const sw_type types[] = {SW_TYPE_F32,  SW_TYPE_F16,  SW_TYPE_BF16, SW_TYPE_Q4_0,
                                    SW_TYPE_Q4_1, SW_TYPE_Q5_0, SW_TYPE_Q5_1, SW_TYPE_Q8_0,
                                    SW_TYPE_Q2_K, SW_TYPE_Q3_K, SW_TYPE_Q4_K, SW_TYPE_Q5_K,
                                    SW_TYPE_Q6_K};
    const int64_t n = 512, rows = 11, T = 6;
    int32_t ids[6] = {3, 0, 10, 3, 7, 1};
    sw_err err = {{0}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int th = 0; th < 2; th++) {
            sw_backend *be = f->be[th];
            sw_type type = types[ti];
            size_t row = sw_row_size(type, n);
            float *src = malloc(sizeof(float) * n * rows), *ref = malloc(sizeof(float) * n);
            uint8_t *q = malloc(row * rows);
            for (int64_t i = 0; i < n * rows; i++)
                src[i] = nrand();
            for (int64_t r = 0; r < rows; r++)
                assert_int_equal(sw_quantize_row(type, src + r * n, q + r * row, n, &err), SW_OK);
            sw_tensor table = mk(be, type, n, rows, 1, 1, q);
            sw_tensor tid = mk(be, SW_TYPE_I32, T, 1, 1, 1, ids);
            sw_tensor out = mk(be, SW_TYPE_F32, n, T, 1, 1, NULL);
            if (sw_be_get_rows(be, &table, &tid, &out, &err) != SW_OK) fail_msg("%s", err.msg);
            const float *o = hp(be, &out);
            for (int64_t t = 0; t < T; t++) {
                assert_int_equal(sw_dequantize_row(type, q + ids[t] * row, ref, n, &err), SW_OK);
                if (memcmp(ref, o + t * n, sizeof(float) * n) != 0)
                    fail_msg("get_rows %s: row %lld (id %d) differs from sw_dequantize_row",
                             sw_type_name(type), (long long)t, ids[t]);
            }
            /* an id past the table is a range error naming the op */
            ((int32_t *)hp(be, &tid))[2] = (int32_t)rows;
            assert_int_equal(sw_be_get_rows(be, &table, &tid, &out, &err), SW_E_RANGE);
            assert_non_null(strstr(err.msg, "get_rows"));
            rm(be, &table);
            rm(be, &tid);
            rm(be, &out);
            free(src);
            free(ref);
            free(q);
        }
}

/* ------------------------------------------------------------- rms_norm -- */

static void test_rms_norm(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t n = 4096 + 8, R = 5;
    const float eps = 1e-5f;
    for (int th = 0; th < f->n; th++)
        for (int inplace = 0; inplace < 2; inplace++) {
            sw_backend *be = f->be[th];
            float *x = malloc(sizeof(float) * n * R), *w = malloc(sizeof(float) * n);
            for (int64_t i = 0; i < n * R; i++)
                x[i] = nrand() * (float)(1 + (i / n) * 100);
            for (int64_t i = 0; i < n; i++)
                w[i] = nrand();
            for (int64_t i = 0; i < n; i++)
                x[3 * n + i] = 0.0f; /* zero row: eps only */
            sw_tensor tx = mk(be, SW_TYPE_F32, n, R, 1, 1, x),
                      tw = mk(be, SW_TYPE_F32, n, 1, 1, 1, w);
            sw_tensor to = inplace ? tx : mk(be, SW_TYPE_F32, n, R, 1, 1, NULL);
            if (sw_be_rms_norm(be, &tx, &tw, eps, &to, &err) != SW_OK) fail_msg("%s", err.msg);
            const float *o = hp(be, &to);
            for (int64_t r = 0; r < R; r++) {
                double ss = 0;
                for (int64_t i = 0; i < n; i++)
                    ss += (double)x[r * n + i] * x[r * n + i];
                double sc = 1.0 / sqrt(ss / n + eps);
                for (int64_t i = 0; i < n; i++) {
                    double ref = x[r * n + i] * sc * w[i];
                    assert_true(fabs(o[r * n + i] - ref) <= 4 * U * fabs(ref) + 1e-30);
                }
            }
            rm(be, &tx);
            rm(be, &tw);
            if (!inplace) rm(be, &to);
            free(x);
            free(w);
        }
}

/* ----------------------------------------------------------------- rope -- */

static void rope_ref(double *v, int64_t pos, int n_dims, int mode, double base, double scale,
                     const float *ff) {
    int half = n_dims / 2;
    for (int i = 0; i < half; i++) {
        double theta = pos * scale * pow(base, -2.0 * i / n_dims) / (ff ? ff[i] : 1.0);
        int i0 = mode == 2 ? i : 2 * i, i1 = mode == 2 ? i + half : 2 * i + 1;
        double a = v[i0], b = v[i1];
        v[i0] = a * cos(theta) - b * sin(theta);
        v[i1] = a * sin(theta) + b * cos(theta);
    }
}

static void test_rope(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t hd = 64, nh = 3, T = 7, row = nh * hd + 32; /* strided: padding per token */
    int32_t pos[7] = {0, 1, 2, 17, 100, 4095, 32000};
    float ff[32];
    for (int i = 0; i < 32; i++)
        ff[i] = 1.0f + (float)i / 8;
    struct {
        int n_dims, mode;
        bool use_ff;
        float base, scale;
    } cases[] = {
        {64, 0, false, 10000.0f, 1.0f},  {64, 2, false, 1000000.0f, 1.0f},
        {32, 0, false, 10000.0f, 0.25f}, {32, 2, true, 500000.0f, 1.0f},
        {64, 2, true, 10000.0f, 0.5f},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int th = 0; th < 2; th++) {
            sw_backend *be = f->be[th];
            float *x = malloc(sizeof(float) * row * T);
            for (int64_t i = 0; i < row * T; i++)
                x[i] = nrand();
            sw_tensor full = mk(be, SW_TYPE_F32, row, T, 1, 1, x);
            /* heads view [hd, nh, T] with token stride `row` */
            sw_tensor v = full;
            v.ne[0] = hd;
            v.ne[1] = nh;
            v.ne[2] = T;
            v.ne[3] = 1;
            v.nb[1] = hd * sizeof(float);
            v.nb[2] = row * sizeof(float);
            v.nb[3] = v.nb[2] * T;
            sw_tensor tpos = mk(be, SW_TYPE_I32, T, 1, 1, 1, pos);
            int nd = cases[ci].n_dims;
            sw_tensor tff = mk(be, SW_TYPE_F32, nd / 2, 1, 1, 1, ff);
            sw_rope_params p = {nd, cases[ci].mode, cases[ci].base, cases[ci].scale,
                                cases[ci].use_ff ? &tff : NULL};
            if (sw_be_rope(be, &v, &tpos, &p, &err) != SW_OK) fail_msg("%s", err.msg);
            const float *o = hp(be, &full);
            for (int64_t t = 0; t < T; t++) {
                for (int64_t h = 0; h < nh; h++) {
                    double ref[64];
                    for (int i = 0; i < hd; i++)
                        ref[i] = x[t * row + h * hd + i];
                    rope_ref(ref, pos[t], nd, cases[ci].mode, cases[ci].base, cases[ci].scale,
                             cases[ci].use_ff ? ff : NULL);
                    for (int i = 0; i < hd; i++) {
                        /* the pair's magnitude bounds both outputs */
                        int half = nd / 2, j = i;
                        double mag = 0;
                        if (i < nd) {
                            int k = cases[ci].mode == 2 ? (i < half ? i : i - half) : i / 2;
                            int a = cases[ci].mode == 2 ? k : 2 * k,
                                b = cases[ci].mode == 2 ? k + half : 2 * k + 1;
                            mag = fabs(x[t * row + h * hd + a]) + fabs(x[t * row + h * hd + b]);
                        }
                        double got = o[t * row + h * hd + j];
                        if (i >= nd) {
                            assert_true(got == x[t * row + h * hd + j]); /* untouched */
                        } else if (fabs(got - ref[j]) > 4 * U * mag + 1e-30) {
                            fail_msg("rope case %zu (n_dims %d mode %d) t=%lld h=%lld i=%d: %.9g "
                                     "vs %.9g",
                                     ci, nd, cases[ci].mode, (long long)t, (long long)h, i, got,
                                     ref[j]);
                        }
                    }
                }
                for (int64_t i = nh * hd; i < row; i++) /* padding untouched */
                    assert_true(o[t * row + i] == x[t * row + i]);
            }
            rm(be, &full);
            rm(be, &tpos);
            rm(be, &tff);
            free(x);
        }
}

/* ------------------------------------------------------------- kv_write -- */

static void test_kv_write(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t hd = 16, nkv = 2, bs = 4, nblk = 5, T = 6, E = hd * nkv;
    int32_t slots[6] = {0, 5, 19, 7, 8, 13};
    for (int ct = 0; ct < 2; ct++)
        for (int th = 0; th < f->n; th++) {
            sw_backend *be = f->be[th];
            sw_type type = ct ? SW_TYPE_F16 : SW_TYPE_F32;
            float *k = malloc(sizeof(float) * E * T), *v = malloc(sizeof(float) * E * T);
            for (int64_t i = 0; i < E * T; i++) {
                k[i] = nrand();
                v[i] = nrand() * 1000.0f;
            }
            /* f16 edge cases: subnormal, overflow to inf, a tie to even */
            k[1] = 3e-6f;
            k[2] = 70000.0f;
            k[3] = 1.0f + 0x1p-11f;
            k[4] = -1e-8f;
            sw_tensor tk = mk(be, SW_TYPE_F32, E, T, 1, 1, k),
                      tv = mk(be, SW_TYPE_F32, E, T, 1, 1, v);
            sw_tensor kc = mk(be, type, hd, nkv, bs, nblk, NULL),
                      vc = mk(be, type, hd, nkv, bs, nblk, NULL);
            sw_tensor ts = mk(be, SW_TYPE_I32, T, 1, 1, 1, slots);
            if (sw_be_kv_write(be, &tk, &tv, &kc, &vc, &ts, &err) != SW_OK) fail_msg("%s", err.msg);
            for (int j = 0; j < 2; j++) {
                const float *src = j ? v : k;
                const uint8_t *cache = hp(be, j ? &vc : &kc);
                size_t es = ct ? 2 : 4;
                for (int64_t t = 0; t < T; t++)
                    for (int64_t i = 0; i < E; i++) {
                        const uint8_t *p = cache + ((size_t)slots[t] * E + i) * es;
                        if (ct) {
                            uint16_t h;
                            memcpy(&h, p, 2);
                            assert_int_equal(h, sw_f32_to_f16(src[t * E + i]));
                        } else {
                            float g;
                            memcpy(&g, p, 4);
                            assert_true(g == src[t * E + i]);
                        }
                    }
            }
            /* untouched slot stays zero */
            assert_true(((const uint8_t *)hp(be, &kc))[1 * E * (ct ? 2 : 4)] == 0);
            ((int32_t *)hp(be, &ts))[4] = (int32_t)(bs * nblk);
            assert_int_equal(sw_be_kv_write(be, &tk, &tv, &kc, &vc, &ts, &err), SW_E_RANGE);
            assert_non_null(strstr(err.msg, "kv_write"));
            rm(be, &tk);
            rm(be, &tv);
            rm(be, &kc);
            rm(be, &vc);
            rm(be, &ts);
            free(k);
            free(v);
        }
}

/* ------------------------------------------------------ swiglu and add -- */

static void test_swiglu_add(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t n = 1000, R = 3;
    for (int th = 0; th < f->n; th++) {
        sw_backend *be = f->be[th];
        float *a = malloc(sizeof(float) * n * R), *b = malloc(sizeof(float) * n * R);
        for (int64_t i = 0; i < n * R; i++) {
            a[i] = nrand() * 8;
            b[i] = nrand();
        }
        a[0] = -200.0f;
        a[1] = 200.0f;
        a[2] = 0.0f;
        sw_tensor ta = mk(be, SW_TYPE_F32, n, R, 1, 1, a), tb = mk(be, SW_TYPE_F32, n, R, 1, 1, b);
        sw_tensor to = mk(be, SW_TYPE_F32, n, R, 1, 1, NULL);
        assert_int_equal(sw_be_swiglu(be, &ta, &tb, &to, &err), SW_OK);
        const float *o = hp(be, &to);
        for (int64_t i = 0; i < n * R; i++) {
            double ref = (double)a[i] / (1.0 + exp(-(double)a[i])) * b[i];
            if (fabs(o[i] - ref) > 8 * U * fabs(ref) + 1e-37)
                fail_msg("swiglu[%lld] (g %g, u %g) = %.9g, ref %.9g", (long long)i, a[i], b[i],
                         o[i], ref);
        }
        /* geglu: gelu(g) = g sigmoid(2u), u = sqrt(2/pi) (g + 0.044715 g^3); the
         * float u carries ~4 roundings, which e^-2u turns into an error of
         * 2|u| * 4u relative, on top of expf, add, divide and multiply */
        assert_int_equal(sw_be_geglu(be, &ta, &tb, &to, &err), SW_OK);
        o = hp(be, &to);
        for (int64_t i = 0; i < n * R; i++) {
            double g = a[i], u = 0.79788456080286535588 * (g + 0.044715 * g * g * g);
            double ref = g / (1.0 + exp(-2.0 * u)) * b[i];
            if (fabs(o[i] - ref) > (8 + 8 * fabs(u)) * U * fabs(ref) + 1e-37)
                fail_msg("geglu[%lld] (g %g, u %g) = %.9g, ref %.9g", (long long)i, a[i], b[i],
                         o[i], ref);
        }
        /* the same function as its tanh form g/2 (1 + tanh(u)) where that has no
         * cancellation (g >= 0) */
        for (int64_t i = 0; i < n * R; i++) {
            double g = a[i];
            if (g < 0) continue;
            double ref = 0.5 * g * (1 + tanh(0.79788456080286535588 * (g + 0.044715 * g * g * g)));
            assert_true(fabs(o[i] - ref * b[i]) <= 1e-5 * fabs(ref * b[i]) + 1e-30);
        }
        /* add, in place into a */
        assert_int_equal(sw_be_add(be, &ta, &tb, &ta, &err), SW_OK);
        o = hp(be, &ta);
        for (int64_t i = 0; i < n * R; i++)
            assert_true(o[i] == a[i] + b[i]);
        rm(be, &ta);
        rm(be, &tb);
        rm(be, &to);
        free(a);
        free(b);
    }
}

/* ------------------------------------------------------ scale, softcap -- */

static void test_scale_softcap(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t n = 700, R = 2;
    const float cap = 30.0f, sc = 25.298221f; /* sqrt(640), Gemma 3 270M's embedding scale */
    for (int th = 0; th < 2; th++) {
        sw_backend *be = f->be[th];
        float *a = malloc(sizeof(float) * n * R);
        for (int64_t i = 0; i < n * R; i++)
            a[i] = nrand() * 40;
        a[0] = 1e4f;
        a[1] = -1e4f;
        a[2] = 0.0f;
        a[3] = 1e-3f;
        sw_tensor ta = mk(be, SW_TYPE_F32, n, R, 1, 1, a), to = mk(be, SW_TYPE_F32, n, R, 1, 1, NULL);
        /* scale: one rounding */
        assert_int_equal(sw_be_scale(be, &ta, sc, &to, &err), SW_OK);
        const float *o = hp(be, &to);
        for (int64_t i = 0; i < n * R; i++)
            assert_true(o[i] == a[i] * sc);
        /* softcap: cap tanh(x / cap), in place; divide, tanhf (<= 2 ulp), multiply */
        assert_int_equal(sw_be_softcap(be, &ta, cap, &ta, &err), SW_OK);
        o = hp(be, &ta);
        for (int64_t i = 0; i < n * R; i++) {
            double ref = cap * tanh((double)a[i] / cap);
            if (fabs(o[i] - ref) > 6 * U * fabs(ref) + 1e-37)
                fail_msg("softcap[%lld] (%g) = %.9g, ref %.9g", (long long)i, a[i], o[i], ref);
            assert_true(fabs(o[i]) <= cap);
        }
        rm(be, &ta);
        rm(be, &to);
        free(a);
    }
}

/* -------------------------------------------------------------- fused ops -- */

/* Each fused op against the sequence of ops it replaces: bit for bit (the
 * CPU backend does the same arithmetic in both). */
static void fused_add_rms_norm(sw_backend *be, int64_t n, int64_t r) {
    sw_err err = {{0}};
    float *x = malloc(sizeof(float) * (size_t)(n * r)), *h = malloc(sizeof(float) * (size_t)(n * r));
    float *w = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n * r; i++) x[i] = nrand() * 3, h[i] = nrand();
    for (int64_t i = 0; i < n; i++) w[i] = 1.0f + nrand() * 0.2f;
    sw_tensor x1 = mk(be, SW_TYPE_F32, n, r, 1, 1, x), x2 = mk(be, SW_TYPE_F32, n, r, 1, 1, x);
    sw_tensor th = mk(be, SW_TYPE_F32, n, r, 1, 1, h), h2 = mk(be, SW_TYPE_F32, n, r, 1, 1, h);
    sw_tensor tw = mk(be, SW_TYPE_F32, n, 1, 1, 1, w);
    sw_tensor o1 = mk(be, SW_TYPE_F32, n, r, 1, 1, NULL), o2 = mk(be, SW_TYPE_F32, n, r, 1, 1, NULL);
    assert_int_equal(sw_be_add(be, &x1, &th, &x1, &err), SW_OK);
    assert_int_equal(sw_be_rms_norm(be, &x1, &tw, 1e-5f, &o1, &err), SW_OK);
    assert_int_equal(sw_be_add_rms_norm(be, &x2, &th, &tw, 1e-5f, &o2, &err), SW_OK);
    assert_memory_equal(hp(be, &x1), hp(be, &x2), sizeof(float) * (size_t)(n * r));
    assert_memory_equal(hp(be, &o1), hp(be, &o2), sizeof(float) * (size_t)(n * r));
    /* out over h, as the forward pass does it */
    memcpy(hp(be, &x2), x, sizeof(float) * (size_t)(n * r));
    assert_int_equal(sw_be_add_rms_norm(be, &x2, &h2, &tw, 1e-5f, &h2, &err), SW_OK);
    assert_memory_equal(hp(be, &o1), hp(be, &h2), sizeof(float) * (size_t)(n * r));
    /* out over x is refused */
    assert_int_equal(sw_be_add_rms_norm(be, &x2, &th, &tw, 1e-5f, &x2, &err), SW_E_INVALID_ARG);
    sw_tensor all[] = {x1, x2, th, h2, tw, o1, o2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) rm(be, &all[i]);
    free(x);
    free(h);
    free(w);
}

/* q, k, v as the forward pass has them: columns of one [qd + 2 kvd, T]
 * matrix; heads of head_dim hd. */
static void fused_rope_kv_write(sw_backend *be, int mode, int64_t hd, int32_t n_dims, bool ff,
                                sw_type ctype) {
    sw_err err = {{0}};
    const int64_t nh = 4, nkv = 2, T = 5, qd = nh * hd, kvd = nkv * hd, row = qd + 2 * kvd;
    const int64_t bs = 4, nb = 8;
    float *m = malloc(sizeof(float) * (size_t)(row * T)), f[64];
    for (int64_t i = 0; i < row * T; i++) m[i] = nrand();
    for (int i = 0; i < n_dims / 2; i++) f[i] = 1.0f + 0.5f * (float)urand();
    int32_t pos[5] = {0, 1, 7, 40, 1000}, slots[5] = {3, 0, 17, 30, 12};
    sw_tensor ma = mk(be, SW_TYPE_F32, row, T, 1, 1, m), mb = mk(be, SW_TYPE_F32, row, T, 1, 1, m);
    sw_tensor tp = mk(be, SW_TYPE_I32, T, 1, 1, 1, pos), ts = mk(be, SW_TYPE_I32, T, 1, 1, 1, slots);
    sw_tensor tf = mk(be, SW_TYPE_F32, n_dims / 2, 1, 1, 1, f);
    sw_tensor kca = mk(be, ctype, hd, nkv, bs, nb, NULL), vca = mk(be, ctype, hd, nkv, bs, nb, NULL);
    sw_tensor kcb = mk(be, ctype, hd, nkv, bs, nb, NULL), vcb = mk(be, ctype, hd, nkv, bs, nb, NULL);
    sw_rope_params p = {n_dims, mode, 10000.0f, 0.5f, ff ? &tf : NULL};
    sw_tensor *mats[2] = {&ma, &mb};
    sw_tensor qh[2], kh[2], kf[2], v[2];
    for (int i = 0; i < 2; i++) {
        qh[i] = sw_tensor_make(mats[i]->buf, 0, SW_TYPE_F32, hd, nh, T, 1);
        kh[i] = sw_tensor_make(mats[i]->buf, (size_t)qd * 4, SW_TYPE_F32, hd, nkv, T, 1);
        qh[i].nb[2] = kh[i].nb[2] = mats[i]->nb[1];
        kf[i] = sw_tensor_cols(mats[i], qd, kvd);
        v[i] = sw_tensor_cols(mats[i], qd + kvd, kvd);
    }
    assert_int_equal(sw_be_rope(be, &qh[0], &tp, &p, &err), SW_OK);
    assert_int_equal(sw_be_rope(be, &kh[0], &tp, &p, &err), SW_OK);
    assert_int_equal(sw_be_kv_write(be, &kf[0], &v[0], &kca, &vca, &ts, &err), SW_OK);
    assert_int_equal(sw_be_rope_kv_write(be, &qh[1], &kh[1], &v[1], &tp, &p, &kcb, &vcb, &ts, &err),
                     SW_OK);
    for (int64_t t = 0; t < T; t++) /* q rotated alike */
        assert_memory_equal((float *)hp(be, &ma) + t * row, (float *)hp(be, &mb) + t * row,
                            sizeof(float) * (size_t)qd);
    size_t cb = sw_tensor_nbytes(&kca);
    assert_memory_equal(hp(be, &kca), hp(be, &kcb), cb);
    assert_memory_equal(hp(be, &vca), hp(be, &vcb), cb);
    /* a slot past the cache is an error naming the op */
    int32_t bad[5] = {0, 1, 2, 99, 4};
    memcpy(hp(be, &ts), bad, sizeof bad);
    assert_int_equal(sw_be_rope_kv_write(be, &qh[1], &kh[1], &v[1], &tp, &p, &kcb, &vcb, &ts, &err),
                     SW_E_RANGE);
    assert_non_null(strstr(err.msg, "rope_kv_write"));
    sw_tensor all[] = {ma, mb, tp, ts, tf, kca, vca, kcb, vcb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) rm(be, &all[i]);
    free(m);
}

static void test_fused_ops(void **state) {
    fixture *f = *state;
    for (int b = 0; b < f->n; b++) { /* every kernel set: the fused ops use its rows */
        fused_add_rms_norm(f->be[b], 37, 5);
        fused_add_rms_norm(f->be[b], 4096, 3);
        for (int mode = 0; mode <= 2; mode += 2) {
            fused_rope_kv_write(f->be[b], mode, 16, 16, false, SW_TYPE_F16);
            fused_rope_kv_write(f->be[b], mode, 32, 24, true, SW_TYPE_F32);
            fused_rope_kv_write(f->be[b], mode, 64, 64, true, SW_TYPE_F16);
        }
    }
}

/* -------------------------------------------------------- logits_summary -- */

static void test_logits_summary(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    const int64_t V = 5000, R = 3;
    const int32_t k = 5;
    sw_backend *be = f->be[1];
    float *l = malloc(sizeof(float) * V * R);
    for (int64_t i = 0; i < V * R; i++)
        l[i] = nrand() * 4 + (float)(i % V) * 1e-6f;
    l[1 * V + 4321] = 30.0f; /* a confident row */
    sw_tensor tl = mk(be, SW_TYPE_F32, V, R, 1, 1, l);
    sw_logits_stats st[3];
    int32_t ids[15];
    float lps[15];
    assert_int_equal(sw_be_logits_summary(be, &tl, k, st, ids, lps, &err), SW_OK);
    for (int64_t r = 0; r < R; r++) {
        const float *x = l + r * V;
        double mx = -INFINITY, se = 0, sel = 0;
        for (int64_t j = 0; j < V; j++)
            mx = fmax(mx, x[j]);
        for (int64_t j = 0; j < V; j++)
            se += exp(x[j] - mx);
        double lse = mx + log(se);
        for (int64_t j = 0; j < V; j++)
            sel += exp(x[j] - lse) * (x[j] - lse);
        assert_true(st[r].max == (float)mx);
        assert_true(fabs(st[r].logsumexp - lse) <= 1e-6 * fabs(lse) + 1e-6);
        assert_true(fabs(st[r].log_z - lse) <= 1e-6 * fabs(lse) + 1e-6);
        assert_true(fabs(st[r].sum_exp - se) <= 1e-6 * se);
        assert_int_equal(st[r].n_nan, 0);
        assert_true(fabs(st[r].entropy - (-sel)) <= 1e-5 * fabs(sel) + 1e-6);
        /* top k: strictly the k largest, in order */
        int64_t prev = -1;
        for (int32_t i = 0; i < k; i++) {
            int32_t id = ids[r * k + i];
            int64_t above = 0;
            for (int64_t j = 0; j < V; j++)
                above += x[j] > x[id];
            assert_int_equal(above, i);
            assert_true(lps[r * k + i] == x[id]); /* the raw logit */
            assert_true(fabs((lps[r * k + i] - st[r].log_z) - (x[id] - lse)) <= 1e-5);
            assert_true(id != prev);
            prev = id;
        }
    }
    assert_int_equal(ids[k], 4321);
    assert_true(st[1].entropy < 1e-3f);
    /* k = 0: stats only, NULL arrays allowed */
    assert_int_equal(sw_be_logits_summary(be, &tl, 0, st, NULL, NULL, &err), SW_OK);
    assert_int_equal(sw_be_logits_summary(be, &tl, (int32_t)V + 1, st, ids, lps, &err),
                     SW_E_INVALID_ARG);
    rm(be, &tl);
    free(l);
}

/* ------------------------------------------------- creation and wrappers -- */

static void test_backend_create(void **state) {
    (void)state;
    sw_err err = {{0}};
    sw_backend *be = NULL;
    sw_backend_config cfg = {.name = "auto", .n_threads = 2};
    assert_int_equal(sw_backend_create(&cfg, &be, &err), SW_OK);
#if !defined(SW_HAVE_CUDA) && !defined(SW_HAVE_VULKAN)
    assert_string_equal(sw_backend_name(be), "cpu");
#endif
    assert_int_equal(be->n_threads, 2);
    sw_backend_free(be);
    assert_int_equal(sw_backend_create(NULL, &be, &err), SW_OK); /* NULL config = auto */
    assert_true(be->n_threads >= 1);
    sw_backend_free(be);
#if !defined(SW_HAVE_CUDA)
    cfg.name = "cuda";
    assert_int_equal(sw_backend_create(&cfg, &be, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "the cuda backend is not available in this build"));
    assert_null(be);
#endif
#if !defined(SW_HAVE_VULKAN)
    cfg.name = "vulkan";
    assert_int_equal(sw_backend_create(&cfg, &be, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "the vulkan backend is not available in this build"));
#endif
    cfg.name = "tpu";
    assert_int_equal(sw_backend_create(&cfg, &be, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "tpu"));
    sw_backend_free(NULL); /* no-op */
}

static void test_tensor_helpers(void **state) {
    (void)state;
    sw_tensor t = sw_tensor_make(NULL, 64, SW_TYPE_Q4_0, 256, 10, 1, 1);
    assert_int_equal(t.nb[0], 18);
    assert_int_equal(t.nb[1], 8 * 18);
    assert_int_equal(sw_tensor_nbytes(&t), 10 * 8 * 18);
    assert_int_equal(sw_tensor_nelements(&t), 2560);
    sw_tensor r = sw_tensor_rows(&t, 3, 4);
    assert_int_equal(r.offset, 64 + 3 * 8 * 18);
    assert_int_equal(r.ne[1], 4);
    sw_tensor a = sw_tensor_make(NULL, 0, SW_TYPE_F32, 96, 5, 1, 1);
    sw_tensor c = sw_tensor_cols(&a, 32, 16);
    assert_int_equal(c.offset, 128);
    assert_int_equal(c.ne[0], 16);
    assert_int_equal(c.nb[1], 96 * 4);
    /* span of the strided view: 4 rows of stride 384 plus one row of 64 */
    assert_int_equal(sw_tensor_nbytes(&c), 4 * 384 + 64);
    sw_tensor bad = sw_tensor_make(NULL, 0, SW_TYPE_Q4_K, 100, 1, 1, 1);
    assert_int_equal(sw_tensor_nbytes(&bad), 0);
}

static void expect_invalid(sw_status st, const sw_err *err, const char *op) {
    assert_int_equal(st, SW_E_INVALID_ARG);
    if (!strstr(err->msg, op)) fail_msg("error '%s' does not name op '%s'", err->msg, op);
}

static void test_wrapper_validation(void **state) {
    fixture *f = *state;
    sw_backend *be = f->be[0];
    sw_err err = {{0}};
    sw_tensor w = mk(be, SW_TYPE_Q4_0, 256, 8, 1, 1, NULL);
    sw_tensor x = mk(be, SW_TYPE_F32, 128, 2, 1, 1, NULL);
    sw_tensor x2 = mk(be, SW_TYPE_F32, 256, 2, 1, 1, NULL);
    sw_tensor o = mk(be, SW_TYPE_F32, 8, 2, 1, 1, NULL);
    sw_tensor o3 = mk(be, SW_TYPE_F32, 8, 3, 1, 1, NULL);
    sw_tensor ids = mk(be, SW_TYPE_I32, 2, 1, 1, 1, NULL);
    /* matmul: K mismatch, T mismatch, bias length, x not F32 */
    expect_invalid(sw_be_matmul(be, &w, &x, NULL, &o, &err), &err, "matmul");
    assert_non_null(strstr(err.msg, "[256, 8, 1, 1] q4_0"));
    expect_invalid(sw_be_matmul(be, &w, &x2, NULL, &o3, &err), &err, "matmul");
    expect_invalid(sw_be_matmul(be, &w, &x2, &o, &o, &err), &err, "matmul"); /* bias [8,2] */
    expect_invalid(sw_be_matmul(be, &w, &w, NULL, &o, &err), &err, "matmul");
    assert_int_equal(sw_be_matmul(be, &w, &x2, NULL, &o, &err), SW_OK);
    /* out written while x is read: overlap refused */
    sw_tensor xo = sw_tensor_make(x2.buf, 0, SW_TYPE_F32, 8, 2, 1, 1);
    expect_invalid(sw_be_matmul(be, &w, &x2, NULL, &xo, &err), &err, "matmul");
    assert_non_null(strstr(err.msg, "overlap"));
    /* a type the cpu has no matmul kernel for */
    sw_tensor wi = w;
    wi.type = SW_TYPE_IQ4_NL;
    wi.nb[0] = 18;
    assert_int_equal(sw_be_matmul(be, &wi, &x2, NULL, &o, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "iq4_nl"));
    /* elementwise shape mismatch */
    expect_invalid(sw_be_add(be, &o, &o3, &o, &err), &err, "add");
    expect_invalid(sw_be_swiglu(be, &o, &o, &o3, &err), &err, "swiglu");
    /* rms_norm weight length */
    expect_invalid(sw_be_rms_norm(be, &x2, &o, 1e-5f, &x2, &err), &err, "rms_norm");
    /* get_rows: out width != table width; ids count != T */
    expect_invalid(sw_be_get_rows(be, &w, &ids, &o, &err), &err, "get_rows");
    expect_invalid(sw_be_get_rows(be, &w, &ids, &o3, &err), &err, "get_rows");
    /* rope: odd n_dims, bad mode, pos count */
    sw_tensor q = mk(be, SW_TYPE_F32, 16, 2, 2, 1, NULL);
    sw_rope_params rp = {15, 0, 10000.0f, 1.0f, NULL};
    expect_invalid(sw_be_rope(be, &q, &ids, &rp, &err), &err, "rope");
    rp.n_dims = 16;
    rp.mode = 1;
    expect_invalid(sw_be_rope(be, &q, &ids, &rp, &err), &err, "rope");
    rp.mode = 0;
    assert_int_equal(sw_be_rope(be, &q, &ids, &rp, &err), SW_OK);
    expect_invalid(sw_be_rope(be, &q, &o, &rp, &err), &err, "rope");
    /* attention: GQA ratio not integral */
    sw_tensor kc = mk(be, SW_TYPE_F16, 16, 3, 4, 2, NULL);
    sw_tensor ss = mk(be, SW_TYPE_I32, 2, 1, 1, 1, NULL),
              bt = mk(be, SW_TYPE_I32, 2, 1, 1, 1, NULL);
    sw_tensor aq = mk(be, SW_TYPE_F32, 16 * 4, 2, 1, 1, NULL),
              ao = mk(be, SW_TYPE_F32, 16 * 4, 2, 1, 1, NULL);
    sw_attn_params ap = {.n_head = 4,
                         .n_head_kv = 3,
                         .head_dim = 16,
                         .scale = 0.25f,
                         .block_size = 4,
                         .n_seqs = 1,
                         .max_blocks = 2,
                         .max_ctx = 8,
                         .seq_start = &ss,
                         .pos = &ids,
                         .block_tables = &bt};
    expect_invalid(sw_be_attention(be, &aq, &kc, &kc, &ap, &ao, &err), &err, "attention");
    /* kv_write: cache not f16/f32 */
    sw_tensor kq = mk(be, SW_TYPE_Q8_0, 32, 1, 4, 2, NULL);
    sw_tensor kvv = mk(be, SW_TYPE_F32, 32, 2, 1, 1, NULL);
    assert_int_equal(sw_be_kv_write(be, &kvv, &kvv, &kq, &kq, &ids, &err), SW_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "kv_write"));
    /* NULL tensors and buffers */
    expect_invalid(sw_be_add(be, NULL, &o, &o, &err), &err, "add");
    sw_tensor nobuf = o;
    nobuf.buf = NULL;
    expect_invalid(sw_be_add(be, &nobuf, &o, &o, &err), &err, "add");
    /* upload past the end of a buffer */
    float big[64] = {0};
    assert_int_equal(sw_be_upload(be, o.buf, 8, big, sizeof big, &err), SW_E_RANGE);
    assert_int_equal(sw_be_mem_info(be, &(size_t){0}, &(size_t){0}, &err), SW_OK);
    assert_true(sw_be_supports_type(be, SW_TYPE_Q6_K));
    assert_false(sw_be_supports_type(be, SW_TYPE_IQ2_XXS));
    assert_int_equal(sw_be_begin(be, &err), SW_OK);
    assert_int_equal(sw_be_end(be, &err), SW_OK);
    sw_tensor all[] = {w, x, x2, o, o3, ids, q, kc, ss, bt, aq, ao, kq, kvv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        rm(be, &all[i]);
}

/* ------------------------------------------------------------ threadpool -- */

typedef struct {
    atomic_int runs[64];
    atomic_int busy[4]; /* per slot: 1 while a task runs on it */
    atomic_int slot_clash;
} tp_ctx;

static void tp_task(void *p, int64_t t, int slot) {
    tp_ctx *c = p;
    int zero = 0;
    if (slot < 0 || slot >= 4 || !atomic_compare_exchange_strong(&c->busy[slot], &zero, 1)) {
        atomic_fetch_add(&c->slot_clash, 1);
        return;
    }
    atomic_fetch_add(&c->runs[t], 1);
    for (volatile int i = 0; i < (int)(t % 7) * 50; i++) {
    }
    atomic_store(&c->busy[slot], 0);
}

/* Every task runs exactly once per job, slots are never shared by two running
 * tasks, over many back-to-back jobs of every size (0, 1, fewer and more tasks
 * than threads), and pools of 1 to 4 threads. */
static void test_threadpool(void **state) {
    (void)state;
    sw_err err = {{0}};
    for (int nth = 1; nth <= 4; nth++) {
        sw_threadpool *tp = NULL;
        assert_int_equal(sw_threadpool_create(nth, &tp, &err), SW_OK);
        assert_int_equal(sw_threadpool_n_threads(tp), nth);
        for (int job = 0; job < 2000; job++) {
            tp_ctx c;
            memset(&c, 0, sizeof c);
            int64_t n = job % 65;
            sw_threadpool_run(tp, tp_task, &c, n);
            assert_int_equal(atomic_load(&c.slot_clash), 0);
            for (int64_t t = 0; t < 64; t++)
                assert_int_equal(atomic_load(&c.runs[t]), t < n ? 1 : 0);
        }
        sw_threadpool_free(tp);
    }
    sw_threadpool_free(NULL);
    sw_threadpool *tp = NULL;
    assert_int_equal(sw_threadpool_create(0, &tp, &err), SW_E_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_rows),
        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_kv_write),
        cmocka_unit_test(test_swiglu_add),
        cmocka_unit_test(test_scale_softcap),
        cmocka_unit_test(test_fused_ops),
        cmocka_unit_test(test_logits_summary),
        cmocka_unit_test(test_backend_create),
        cmocka_unit_test(test_tensor_helpers),
        cmocka_unit_test(test_wrapper_validation),
        cmocka_unit_test(test_threadpool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
