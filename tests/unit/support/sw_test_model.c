/* sw_test_model.c — whole-model checks shared by the GPU model tests. */
#include "sw_test_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"

const int32_t sw_test_stories_prompt[5] = {1, 403, 407, 261, 378};
const int32_t sw_test_stories_ref[48] = {
    432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
    295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352,
    266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432,
};

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *env_dir(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

bool sw_test_stories_path(char *out, size_t cap) {
    const char *d = env_dir("SW_SHARED_DIR");
    if (!d) {
        printf("SKIP: SW_SHARED_DIR is not set\n");
        return false;
    }
    snprintf(out, cap, "%s/models/stories260K.gguf", d);
    if (!file_exists(out)) {
        printf("SKIP: %s is absent\n", out);
        return false;
    }
    return true;
}

bool sw_test_synthetic_model(const char *tag, const char *shape, const char *type, char *path,
                             size_t cap) {
    const char *bin = env_dir("SW_BIN_DIR"), *tmp = env_dir("SW_TMP_DIR");
    if (!bin) {
        printf("SKIP: SW_BIN_DIR is not set\n");
        return false;
    }
    char exe[1024], cmd[3072];
    snprintf(exe, sizeof exe, "%s/spillway-mkmodel", bin);
    if (!file_exists(exe)) {
        printf("SKIP: %s is not built\n", exe);
        return false;
    }
    snprintf(path, cap, "%s/%s-%s-%s.gguf", tmp ? tmp : "/tmp", tag, shape, type);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' --shape %s --type %s >/dev/null 2>&1", exe, path,
             shape, type);
    int rc = system(cmd);
    if (rc != 0) fail_msg("command failed (%d): %s", rc, cmd);
    return true;
}

/* ---- a model and its sequences on one backend ---- */

typedef struct {
    sw_model *m;
    sw_kv_cache *kv;
} fixture;

static void fx_open(fixture *f, sw_backend *be, const char *path, sw_type kv_type) {
    sw_err err = {{0}};
    sw_model_params mp = {.progress = false};
    if (sw_model_load(path, be, &mp, &f->m, &err) != SW_OK)
        fail_msg("load %s on %s: %s", path, sw_backend_name(be), err.msg);
    sw_kv_params kp = {.block_size = 8, .n_blocks = 64, .type = kv_type};
    if (sw_kv_cache_create(f->m, &kp, &f->kv, &err) != SW_OK) fail_msg("kv: %s", err.msg);
}

static void fx_close(fixture *f) {
    sw_kv_cache_free(f->kv);
    sw_model_free(f->m);
}

int64_t sw_test_model_vocab(sw_backend *be, const char *path) {
    fixture f;
    fx_open(&f, be, path, SW_TYPE_F16);
    int64_t V = sw_model_config_get(f.m)->n_vocab;
    fx_close(&f);
    return V;
}

typedef struct {
    int32_t blocks[64];
    int32_t n_blocks, n_past;
} seq;

static int32_t argmax(const float *v, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = (int32_t)i;
    return best;
}

/* One step: sequence i gets toks[i][0..n[i]); logits[i * V ..] = its last
 * token's logits. */
static void step(fixture *f, seq *s, const int32_t *const *toks, const int32_t *n, int32_t S,
                 float *logits) {
    int32_t T = 0, tokens[128], pos[128], seq_start[9], nb[8];
    const int32_t *tables[8];
    assert_true(S <= 8);
    int32_t bs = sw_kv_block_size(f->kv);
    for (int32_t i = 0; i < S; i++) {
        while (s[i].n_blocks * bs < s[i].n_past + n[i]) {
            int32_t b = sw_kv_alloc_block(f->kv);
            assert_true(b >= 0 && s[i].n_blocks < 64);
            s[i].blocks[s[i].n_blocks++] = b;
        }
        seq_start[i] = T;
        for (int32_t j = 0; j < n[i]; j++, T++) {
            assert_true(T < 128);
            tokens[T] = toks[i][j];
            pos[T] = s[i].n_past + j;
        }
        tables[i] = s[i].blocks;
        nb[i] = s[i].n_blocks;
    }
    seq_start[S] = T;
    sw_batch b = {.n_tokens = T, .tokens = tokens, .pos = pos, .n_seqs = S,
                  .seq_start = seq_start, .block_tables = tables, .n_blocks = nb,
                  .block_table_cap = 64};
    sw_err err = {{0}};
    if (sw_model_forward(f->m, f->kv, &b, logits, &err) != SW_OK)
        fail_msg("forward on %s: %s", sw_backend_name(sw_model_backend(f->m)), err.msg);
    for (int32_t i = 0; i < S; i++) s[i].n_past += n[i];
}

static void release(fixture *f, seq *s) {
    for (int32_t i = 0; i < s->n_blocks; i++) sw_kv_free_block(f->kv, s->blocks[i]);
    s->n_blocks = s->n_past = 0;
}

void sw_test_greedy_batch(sw_backend *be, const char *path, sw_type kv_type,
                          const int32_t *const *prompts, const int32_t *lens, int32_t S,
                          int32_t n_gen, int32_t *out, float *first_logits) {
    fixture f;
    fx_open(&f, be, path, kv_type);
    int64_t V = sw_model_config_get(f.m)->n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)(V * S));
    seq s[8];
    memset(s, 0, sizeof s);
    step(&f, s, prompts, lens, S, logits);
    if (first_logits) memcpy(first_logits, logits, sizeof(float) * (size_t)(V * S));
    int32_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, next[8];
    const int32_t *tp[8];
    for (int32_t j = 0; j < n_gen; j++) {
        for (int32_t i = 0; i < S; i++) {
            next[i] = out[i * n_gen + j] = argmax(logits + i * V, V);
            tp[i] = &next[i];
        }
        if (j + 1 < n_gen) step(&f, s, tp, ones, S, logits);
    }
    for (int32_t i = 0; i < S; i++) release(&f, &s[i]);
    free(logits);
    fx_close(&f);
}

void sw_test_prompts_make(sw_test_prompts *tp) {
    static const int32_t lens[3] = {1, 9, 17};
    uint32_t r = 11;
    for (int i = 0; i < 3; i++) {
        tp->lens[i] = lens[i];
        tp->p[i] = tp->ids[i];
        for (int j = 0; j < lens[i]; j++) {
            r = r * 1103515245u + 12345u;
            tp->ids[i][j] = 3 + (int32_t)((r >> 16) % 200u);
        }
    }
}

double sw_test_nerr(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)a[i] * a[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}
