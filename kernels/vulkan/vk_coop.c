/* vk_coop.c — the one-time check of the cooperative-matrix prefill matmul
 * (shaders/matmul_coop.comp, VK_NV_cooperative_matrix).
 *
 * No device our tests run on has cooperative matrices, so the shader proves
 * itself where it runs: at create, one small random Q4_0 matmul goes through
 * matmul_coop and through matmul_fast (tested against the CPU reference
 * everywhere); only if their outputs agree within a normalized error of
 * SW_VK_COOP_TOL does prefill use matmul_coop. The bound allows for f16
 * inputs (~2^-11 relative per product, ~1e-3 normalized on random data) and
 * is far below what a wrong layout, scale or tile edge gives (~1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "vk_internal.h"

#define SW_VK_COOP_TOL 1e-2

/* the check's shape: tiles of 64 with ragged edges in N and T */
enum { CK = 256, CN = 96, CT = 80 };

/* small LCG, roughly normal values (sum of 4 uniforms) */
static float crand(uint64_t *s) {
    float a = 0.0f;
    for (int i = 0; i < 4; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        a += (float)(*s >> 40) / (float)(1ull << 24);
    }
    return (a - 2.0f) * 1.7320508f;
}

typedef struct {
    sw_buffer *w, *x, *oa, *ob;
} check_bufs;

static void bufs_free(sw_vk_backend *vk, check_bufs *b) {
    sw_buffer *all[4] = {b->w, b->x, b->oa, b->ob};
    for (int i = 0; i < 4; i++)
        if (all[i]) sw_vk_buf_free(&vk->base, all[i]);
}

/* Upload random Q4_0 weights [CK, CN] and x [CK, CT]. */
static sw_status make_inputs(sw_vk_backend *vk, check_bufs *b, sw_err *err) {
    size_t rs = sw_row_size(SW_TYPE_Q4_0, CK);
    size_t wn = rs * CN, xn = sizeof(float) * CK * CT, on = sizeof(float) * CN * CT;
    float *f = malloc(sizeof(float) * CK * (CN > CT ? CN : CT));
    uint8_t *q = malloc(wn);
    sw_status st = SW_OK;
    if (!f || !q) st = sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory for the coop check");
    uint64_t seed = 0x5eedc00full;
    for (int n = 0; st == SW_OK && n < CN; n++) {
        for (int k = 0; k < CK; k++) f[k] = crand(&seed);
        st = sw_quantize_row(SW_TYPE_Q4_0, f, q + (size_t)n * rs, CK, err);
    }
    for (int i = 0; st == SW_OK && i < CK * CT; i++) f[i] = crand(&seed);
    if (st == SW_OK) st = sw_vk_buf_alloc(&vk->base, wn, SW_BUF_COMPUTE, &b->w, err);
    if (st == SW_OK) st = sw_vk_buf_alloc(&vk->base, xn, SW_BUF_COMPUTE, &b->x, err);
    if (st == SW_OK) st = sw_vk_buf_alloc(&vk->base, on, SW_BUF_COMPUTE, &b->oa, err);
    if (st == SW_OK) st = sw_vk_buf_alloc(&vk->base, on, SW_BUF_COMPUTE, &b->ob, err);
    if (st == SW_OK) st = sw_vk_upload(&vk->base, b->w, 0, q, wn, err);
    if (st == SW_OK) st = sw_vk_upload(&vk->base, b->x, 0, f, xn, err);
    free(f);
    free(q);
    return st;
}

sw_status sw_vk_matmul_compare(sw_vk_backend *vk, sw_vk_shader_id a, sw_vk_shader_id b,
                               double *nerr, sw_err *err) {
    check_bufs bu = {0};
    float *ra = malloc(sizeof(float) * CN * CT), *rb = malloc(sizeof(float) * CN * CT);
    sw_status st = ra && rb ? make_inputs(vk, &bu, err)
                            : sw_err_set(err, SW_E_NOMEM, "vulkan: out of memory for the check");
    if (st == SW_OK) {
        sw_tensor w = sw_tensor_make(bu.w, 0, SW_TYPE_Q4_0, CK, CN, 1, 1);
        sw_tensor x = sw_tensor_make(bu.x, 0, SW_TYPE_F32, CK, CT, 1, 1);
        sw_tensor oa = sw_tensor_make(bu.oa, 0, SW_TYPE_F32, CN, CT, 1, 1);
        sw_tensor ob = sw_tensor_make(bu.ob, 0, SW_TYPE_F32, CN, CT, 1, 1);
        /* outside a step each dispatch is submitted and waited for at once */
        st = sw_vk_matmul_with(&vk->base, &w, &x, NULL, &oa, a, err);
        if (st == SW_OK) st = sw_vk_matmul_with(&vk->base, &w, &x, NULL, &ob, b, err);
        if (st == SW_OK) st = sw_vk_download(&vk->base, bu.oa, 0, ra, sizeof(float) * CN * CT, err);
        if (st == SW_OK) st = sw_vk_download(&vk->base, bu.ob, 0, rb, sizeof(float) * CN * CT, err);
    }
    if (st == SW_OK) {
        double num = 0.0, den = 0.0;
        for (int i = 0; i < CN * CT; i++) {
            double d = (double)ra[i] - rb[i];
            num += d * d;
            den += (double)rb[i] * rb[i];
        }
        *nerr = sqrt(num / (den > 0.0 ? den : 1.0));
        if (!isfinite(*nerr)) *nerr = INFINITY;
    }
    bufs_free(vk, &bu);
    free(ra);
    free(rb);
    return st;
}

void sw_vk_coop_check(sw_vk_backend *vk) {
    vk->coop = false;
    if (!vk->coop_enabled || !vk->fast) return;
    sw_err err = {{0}};
    double nerr = 0.0;
    sw_status st = sw_vk_matmul_compare(vk, SW_VK_SH_MATMUL_COOP, SW_VK_SH_MATMUL_FAST, &nerr,
                                        &err);
    if (st != SW_OK) {
        sw_log(SW_LOG_WARN, "vulkan: cooperative-matrix matmul disabled: its check failed: %s",
               err.msg);
        return;
    }
    if (!(nerr <= SW_VK_COOP_TOL)) {
        sw_log(SW_LOG_WARN,
               "vulkan: cooperative-matrix matmul disabled: it disagrees with the tiled shader "
               "(normalized error %.3g > %.3g)",
               nerr, SW_VK_COOP_TOL);
        return;
    }
    sw_log(SW_LOG_DEBUG, "vulkan: cooperative-matrix matmul checked (normalized error %.3g)", nerr);
    vk->coop = true;
}
