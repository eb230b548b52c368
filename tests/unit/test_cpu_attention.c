/* test_cpu_attention.c — the CPU backend's paged causal (and non-causal)
 * attention against a naive double-precision softmax attention written here: several sequences of
 * different lengths in one batch (a prefill from 0, a long decode, a chunked
 * prefill continuing a cached prefix), shuffled (non-contiguous) block tables,
 * GQA ratios 1, 2 and 4, F32 and F16 caches, head_dim 40, 64, 80 and 128,
 * q/out as 2-D [head_dim * n_head, T] and 3-D [head_dim, n_head, T] views,
 * every kernel set the host has (scalar, AVX2, AVX-VNNI, AVX-512; head_dim 40
 * runs AVX-512 hosts' AVX2 loop), 1 and 2 threads; sliding windows of 1, 7
 * and 40 positions.
 *
 * Error bound: the kernel's scores differ from exact by at most
 * delta = scale * (hd + 2) u sum_i |q_i k_i| (float dot of hd terms); a
 * perturbation delta of the scores moves a softmax average of v by at most
 * 2 delta max|v| (first order); the f32 online accumulation over n keys adds
 * (n + 16) u max|v| for the sums, rescalings and expf. We allow the sum of the
 * two, times 2. Any indexing error (wrong block, wrong kv head, off-by-one in
 * the causal mask) changes outputs by O(max|v|) and fails. */
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

#define U 0x1p-24

static sw_test_rng rng = {999}; /* shared LCG: tests/unit/support/sw_test.c */
#define urand() sw_test_urand(&rng)
#define nrand() sw_test_nrand(&rng)

typedef sw_test_cpu_grid fixture;

static int setup(void **state) {
    *state = sw_test_cpu_grid_create();
    return 0;
}

static int teardown(void **state) {
    sw_test_cpu_grid_free(*state);
    return 0;
}

enum { N_SEQS = 3, BS = 8, MAX_BLOCKS = 40, N_BLOCKS = 64 };
/* tokens per sequence and the position of each one's first token */
static const int seq_len[N_SEQS] = {5, 1, 3};
static const int seq_pos0[N_SEQS] = {0, 300, 14};

typedef struct {
    int hd, nh, nkv;
    bool f16, q3d;
    bool non_causal; /* each token sees its sequence up to the batch's last position */
    int window;      /* sliding window (0 = none) */
} acase;

static void run_case(fixture *f, const acase *ac) {
    sw_err err = {{0}};
    const int hd = ac->hd, nh = ac->nh, nkv = ac->nkv;
    int T = 0;
    for (int s = 0; s < N_SEQS; s++)
        T += seq_len[s];
    int32_t seq_start[N_SEQS + 1], pos[16], tables[N_SEQS * MAX_BLOCKS];
    seq_start[0] = 0;
    for (int s = 0; s < N_SEQS; s++)
        seq_start[s + 1] = seq_start[s] + seq_len[s];
    for (int s = 0; s < N_SEQS; s++)
        for (int i = 0; i < seq_len[s]; i++)
            pos[seq_start[s] + i] = seq_pos0[s] + i;
    /* a shuffled permutation of the blocks, dealt out to the sequences */
    int32_t perm[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++)
        perm[i] = i;
    for (int i = N_BLOCKS - 1; i > 0; i--) {
        int j = (int)(urand() * (i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int next = 0;
    memset(tables, 0, sizeof tables);
    for (int s = 0; s < N_SEQS; s++) {
        int last = seq_pos0[s] + seq_len[s] - 1;
        for (int b = 0; b <= last / BS; b++)
            tables[s * MAX_BLOCKS + b] = perm[next++];
    }
    assert_true(next <= N_BLOCKS);

    /* cache contents: K, V for every position of every sequence (as doubles,
     * rounded through the cache type) */
    size_t cache_elems = (size_t)hd * nkv * BS * N_BLOCKS, es = ac->f16 ? 2 : 4;
    uint8_t *kc = calloc(cache_elems, es), *vc = calloc(cache_elems, es);
    double *kd = calloc(cache_elems, sizeof(double)), *vd = calloc(cache_elems, sizeof(double));
    for (size_t i = 0; i < cache_elems; i++) {
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
    float *q = malloc(sizeof(float) * (size_t)hd * nh * T);
    /* large queries: scores spread over tens of units so the running max
     * changes across chunks and the rescaling path runs */
    for (int i = 0; i < hd * nh * T; i++)
        q[i] = nrand() * 1.5f;
    const float scale = 1.0f / sqrtf((float)hd);

    /* reference */
    double *ref = calloc((size_t)hd * nh * T, sizeof(double)),
           *tol = calloc((size_t)hd * nh * T, sizeof(double));
    for (int s = 0; s < N_SEQS; s++)
        for (int t = seq_start[s]; t < seq_start[s + 1]; t++)
            for (int h = 0; h < nh; h++) {
                int kvh = h / (nh / nkv);
                int n = (ac->non_causal ? pos[seq_start[s + 1] - 1] : pos[t]) + 1;
                int lo = ac->window > 0 && n > ac->window ? n - ac->window : 0;
                const float *qv = q + ((size_t)t * nh + h) * hd;
                double *sc = malloc(sizeof(double) * n), mx = -INFINITY, sum = 0, delta = 0,
                       vmax = 0;
                for (int p = lo; p < n; p++) {
                    size_t slot = (size_t)tables[s * MAX_BLOCKS + p / BS] * BS + p % BS;
                    const double *kr = kd + (slot * nkv + kvh) * hd;
                    double d = 0, a = 0;
                    for (int i = 0; i < hd; i++) {
                        d += qv[i] * kr[i];
                        a += fabs(qv[i] * kr[i]);
                    }
                    sc[p] = d * scale;
                    delta = fmax(delta, scale * (hd + 2) * U * a);
                    mx = fmax(mx, sc[p]);
                }
                for (int p = lo; p < n; p++)
                    sum += exp(sc[p] - mx);
                double *o = ref + ((size_t)t * nh + h) * hd;
                for (int p = lo; p < n; p++) {
                    size_t slot = (size_t)tables[s * MAX_BLOCKS + p / BS] * BS + p % BS;
                    const double *vr = vd + (slot * nkv + kvh) * hd;
                    double w = exp(sc[p] - mx) / sum;
                    for (int i = 0; i < hd; i++) {
                        o[i] += w * vr[i];
                        vmax = fmax(vmax, fabs(vr[i]));
                    }
                }
                for (int i = 0; i < hd; i++)
                    tol[((size_t)t * nh + h) * hd + i] =
                        2 * (2 * delta + (n - lo + 16) * U) * vmax;
                free(sc);
            }

    for (int isa = 0; isa < SW_CPU_ISA_COUNT; isa++) {
        if (!f->be[isa][0]) continue;
        for (int th = 0; th < 2; th++) {
            sw_backend *be = f->be[isa][th];
            sw_type ct = ac->f16 ? SW_TYPE_F16 : SW_TYPE_F32;
            sw_buffer *bk, *bv, *bq, *bo, *bi;
            assert_int_equal(sw_be_buf_alloc(be, cache_elems * es, SW_BUF_KV, &bk, &err), SW_OK);
            assert_int_equal(sw_be_buf_alloc(be, cache_elems * es, SW_BUF_KV, &bv, &err), SW_OK);
            size_t qbytes = sizeof(float) * (size_t)hd * nh * T;
            assert_int_equal(sw_be_buf_alloc(be, qbytes, SW_BUF_COMPUTE, &bq, &err), SW_OK);
            assert_int_equal(sw_be_buf_alloc(be, qbytes, SW_BUF_COMPUTE, &bo, &err), SW_OK);
            assert_int_equal(sw_be_buf_alloc(be, 4096, SW_BUF_HOST_VISIBLE, &bi, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bk, 0, kc, cache_elems * es, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bv, 0, vc, cache_elems * es, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bq, 0, q, qbytes, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bi, 0, seq_start, sizeof seq_start, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bi, 64, pos, sizeof(int32_t) * T, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bi, 256, tables, sizeof tables, &err), SW_OK);
            sw_tensor tk = sw_tensor_make(bk, 0, ct, hd, nkv, BS, N_BLOCKS);
            sw_tensor tv = sw_tensor_make(bv, 0, ct, hd, nkv, BS, N_BLOCKS);
            sw_tensor tq = ac->q3d ? sw_tensor_make(bq, 0, SW_TYPE_F32, hd, nh, T, 1)
                                   : sw_tensor_make(bq, 0, SW_TYPE_F32, hd * nh, T, 1, 1);
            sw_tensor to = ac->q3d ? sw_tensor_make(bo, 0, SW_TYPE_F32, hd * nh, T, 1, 1)
                                   : sw_tensor_make(bo, 0, SW_TYPE_F32, hd, nh, T, 1);
            sw_tensor tss = sw_tensor_make(bi, 0, SW_TYPE_I32, N_SEQS + 1, 1, 1, 1);
            sw_tensor tpos = sw_tensor_make(bi, 64, SW_TYPE_I32, T, 1, 1, 1);
            sw_tensor tbt = sw_tensor_make(bi, 256, SW_TYPE_I32, MAX_BLOCKS, N_SEQS, 1, 1);
            sw_attn_params p = {.n_head = nh,
                                .n_head_kv = nkv,
                                .head_dim = hd,
                                .scale = scale,
                                .block_size = BS,
                                .n_seqs = N_SEQS,
                                .max_blocks = MAX_BLOCKS,
                                .max_ctx = 301,
                                .seq_start = &tss,
                                .pos = &tpos,
                                .block_tables = &tbt,
                                .non_causal = ac->non_causal,
                                .window = ac->window};
            if (sw_be_attention(be, &tq, &tk, &tv, &p, &to, &err) != SW_OK) fail_msg("%s", err.msg);
            const float *o = (const float *)sw_be_host_ptr(be, bo);
            for (int i = 0; i < hd * nh * T; i++)
                if (fabs(o[i] - ref[i]) > tol[i])
                    fail_msg("attention hd=%d nh=%d nkv=%d window=%d %s %s threads=%d: "
                             "out[t=%d h=%d i=%d] = %.9g, ref %.9g (tol %.3g)",
                             hd, nh, nkv, ac->window, ac->f16 ? "f16" : "f32",
                             sw_cpu_isa_name((sw_cpu_isa)isa), th + 1,
                             i / (hd * nh), (i / hd) % nh, i % hd, o[i], ref[i], tol[i]);
            /* data-dependent errors: a block id past the cache, a position past
             * the block table */
            int32_t bad = N_BLOCKS;
            assert_int_equal(
                sw_be_upload(be, bi, 256 + sizeof(int32_t) * (MAX_BLOCKS + 37 / BS), &bad, 4, &err),
                SW_OK);
            assert_int_equal(sw_be_attention(be, &tq, &tk, &tv, &p, &to, &err), SW_E_RANGE);
            assert_non_null(strstr(err.msg, "block_tables"));
            int32_t badpos = MAX_BLOCKS * BS;
            assert_int_equal(sw_be_upload(be, bi, 256, tables, sizeof tables, &err), SW_OK);
            assert_int_equal(sw_be_upload(be, bi, 64, &badpos, 4, &err), SW_OK);
            assert_int_equal(sw_be_attention(be, &tq, &tk, &tv, &p, &to, &err), SW_E_RANGE);
            assert_non_null(strstr(err.msg, "pos"));
            sw_be_buf_free(be, bk);
            sw_be_buf_free(be, bv);
            sw_be_buf_free(be, bq);
            sw_be_buf_free(be, bo);
            sw_be_buf_free(be, bi);
        }
    }
    free(kc);
    free(vc);
    free(kd);
    free(vd);
    free(q);
    free(ref);
    free(tol);
}

static void test_attention(void **state) {
    fixture *f = *state;
    /* windows: 1 (the token alone), 7 (inside one chunked prefill, not a
     * block multiple), 40 (cuts the long decode's context mid-block; the short
     * sequences are inside it) */
    const acase cases[] = {
        {64, 2, 2, false, false, false, 0}, {64, 4, 2, true, false, false, 0},
        {64, 8, 2, true, true, false, 0},   {40, 4, 1, false, true, false, 0},
        {40, 2, 2, true, false, false, 0},  {64, 8, 2, false, false, false, 0},
        {80, 4, 2, true, true, false, 0},   {128, 2, 1, false, false, false, 0},
        /* non-causal (bert): the later tokens of a sequence are visible too */
        {64, 4, 4, false, false, true, 0},  {40, 2, 1, true, true, true, 0},
        /* sliding windows (gemma3): only the last `window` positions */
        {64, 4, 1, true, false, false, 7},  {40, 2, 1, false, true, false, 40},
        {64, 2, 2, true, false, false, 1},  {80, 4, 1, true, true, false, 40},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(f, &cases[i]);
}

/* kv_write then attention, as the forward pass does: the tokens' own K/V must
 * be visible to themselves (causal includes the diagonal). One token at
 * position 0 attends only to itself: out = v exactly (up to f16 rounding). */
static void test_self_attention_after_write(void **state) {
    fixture *f = *state;
    sw_err err = {{0}};
    sw_backend *be = f->be[f->best][1];
    const int hd = 32, nh = 2, nkv = 1;
    sw_buffer *b;
    assert_int_equal(sw_be_buf_alloc(be, 1 << 16, SW_BUF_COMPUTE, &b, &err), SW_OK);
    float *base = sw_be_host_ptr(be, b);
    memset(base, 0, 1 << 16);
    sw_tensor k = sw_tensor_make(b, 0, SW_TYPE_F32, hd * nkv, 1, 1, 1);
    sw_tensor v = sw_tensor_make(b, 256, SW_TYPE_F32, hd * nkv, 1, 1, 1);
    sw_tensor q = sw_tensor_make(b, 512, SW_TYPE_F32, hd * nh, 1, 1, 1);
    sw_tensor o = sw_tensor_make(b, 1024, SW_TYPE_F32, hd * nh, 1, 1, 1);
    sw_tensor kc = sw_tensor_make(b, 4096, SW_TYPE_F16, hd, nkv, 4, 3);
    sw_tensor vc = sw_tensor_make(b, 8192, SW_TYPE_F16, hd, nkv, 4, 3);
    /* indices at byte 12288: slot, seq_start[2], pos, block table[1] */
    int32_t *ix = (int32_t *)((uint8_t *)base + 12288);
    ix[0] = 2 * 4 + 0; /* position 0 lives in block 2 at offset 0: slot 8 */
    ix[1] = 0;
    ix[2] = 1;
    ix[3] = 0;
    ix[4] = 2;
    for (int i = 0; i < hd; i++) {
        base[i] = nrand();      /* k */
        base[64 + i] = nrand(); /* v */
    }
    for (int i = 0; i < hd * nh; i++)
        base[128 + i] = nrand(); /* q */
    sw_tensor slots = sw_tensor_make(b, 12288, SW_TYPE_I32, 1, 1, 1, 1);
    assert_int_equal(sw_be_kv_write(be, &k, &v, &kc, &vc, &slots, &err), SW_OK);
    sw_tensor ss = sw_tensor_make(b, 12288 + 4, SW_TYPE_I32, 2, 1, 1, 1);
    sw_tensor pos = sw_tensor_make(b, 12288 + 12, SW_TYPE_I32, 1, 1, 1, 1);
    sw_tensor bt = sw_tensor_make(b, 12288 + 16, SW_TYPE_I32, 1, 1, 1, 1);
    sw_attn_params p = {.n_head = nh,
                        .n_head_kv = nkv,
                        .head_dim = hd,
                        .scale = 0.1f,
                        .block_size = 4,
                        .n_seqs = 1,
                        .max_blocks = 1,
                        .max_ctx = 1,
                        .seq_start = &ss,
                        .pos = &pos,
                        .block_tables = &bt};
    if (sw_be_attention(be, &q, &kc, &vc, &p, &o, &err) != SW_OK) fail_msg("%s", err.msg);
    const float *out = (const float *)((uint8_t *)base + 1024);
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < hd; i++)
            assert_true(out[h * hd + i] == sw_f16_to_f32(sw_f32_to_f16(base[64 + i])));
    sw_be_buf_free(be, b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_self_attention_after_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
