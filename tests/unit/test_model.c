/* test_model.c — the model runtime end to end on the CPU backend:
 * (a) stories260K greedy decoding reproduces llama.cpp's reference ids;
 * (b) a batch of several sequences (mixed prefill and decode) gives the same
 *     greedy tokens as each sequence alone, on synthetic models of several types;
 * (c) stories260K quantized to q8_0 / q4_0 keeps the reference's first tokens;
 * (d) bad input: vocab-only file, unknown architecture, bad batches;
 * plus the KV cache's free list. Tests needing /work/shared or the tools skip
 * with a printed reason when those are absent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>

#include <spillway.h>

/* ---- environment --------------------------------------------------------- */

static const char *env_dir(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Path of a shared file, or NULL (and a printed reason) when absent. */
static bool shared_path(const char *rel, char *out, size_t cap) {
    const char *d = env_dir("SW_SHARED_DIR");
    if (!d) {
        printf("SKIP: SW_SHARED_DIR is not set\n");
        return false;
    }
    snprintf(out, cap, "%s/%s", d, rel);
    if (!file_exists(out)) {
        printf("SKIP: %s is absent\n", out);
        return false;
    }
    return true;
}

/* Run a spillway tool; returns false (reason printed) when it is not built. */
static bool run_tool(const char *tool, const char *args) {
    const char *bin = env_dir("SW_BIN_DIR");
    char exe[1024], cmd[4096];
    if (!bin) {
        printf("SKIP: SW_BIN_DIR is not set\n");
        return false;
    }
    snprintf(exe, sizeof exe, "%s/spillway-%s", bin, tool);
    if (!file_exists(exe)) {
        printf("SKIP: %s is not built\n", exe);
        return false;
    }
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", exe, args);
    int rc = system(cmd);
    if (rc != 0) fail_msg("command failed (%d): %s", rc, cmd);
    return true;
}

static const char *tmp_dir(void) {
    const char *t = env_dir("SW_TMP_DIR");
    return t ? t : "/tmp";
}

/* Write a synthetic model with spillway-mkmodel (deterministic, so rewriting
 * it per test is harmless) and return its path. */
static bool synthetic_model(const char *name, const char *flags, char *path, size_t cap) {
    snprintf(path, cap, "%s/test_model-%s.gguf", tmp_dir(), name);
    char args[2048];
    snprintf(args, sizeof args, "-o '%s' %s", path, flags);
    return run_tool("mkmodel", args);
}

/* ---- model + sequences --------------------------------------------------- */

typedef struct fixture {
    sw_backend *be;
    sw_model *m;
    sw_kv_cache *kv;
} fixture;

static void fx_open(fixture *f, const char *path, sw_type kv_type, int32_t block_size,
                    int32_t n_blocks) {
    sw_err err = {{0}};
    sw_backend_config bc = {.name = "cpu", .n_threads = 2};
    memset(f, 0, sizeof *f);
    if (sw_backend_create(&bc, &f->be, &err) != SW_OK) fail_msg("backend: %s", err.msg);
    sw_model_params mp = {.progress = false};
    if (sw_model_load(path, f->be, &mp, &f->m, &err) != SW_OK) fail_msg("load: %s", err.msg);
    sw_kv_params kp = {.block_size = block_size, .n_blocks = n_blocks, .type = kv_type};
    if (sw_kv_cache_create(f->m, &kp, &f->kv, &err) != SW_OK) fail_msg("kv: %s", err.msg);
}

static void fx_close(fixture *f) {
    sw_kv_cache_free(f->kv);
    sw_model_free(f->m);
    sw_backend_free(f->be);
}

typedef struct seq {
    int32_t blocks[256];
    int32_t n_blocks;
    int32_t n_past;
} seq;

static void seq_release(sw_kv_cache *kv, seq *s) {
    for (int32_t i = 0; i < s->n_blocks; i++) sw_kv_free_block(kv, s->blocks[i]);
    s->n_blocks = 0;
    s->n_past = 0;
}

/* Grow s's block table to hold n more tokens. */
static void seq_reserve(sw_kv_cache *kv, seq *s, int32_t n) {
    int32_t bs = sw_kv_block_size(kv);
    while (s->n_blocks * bs < s->n_past + n) {
        assert_true(s->n_blocks < 256);
        int32_t b = sw_kv_alloc_block(kv);
        assert_true(b >= 0);
        s->blocks[s->n_blocks++] = b;
    }
}

/* One step over several sequences: seqs[i] gets toks[i][0..n[i]). Fills
 * logits[i * n_vocab ..] with the last token's logits of each. */
static void step(fixture *f, seq **seqs, const int32_t *const *toks, const int32_t *n,
                 int32_t n_seqs, float *logits) {
    int32_t T = 0;
    for (int32_t i = 0; i < n_seqs; i++) T += n[i];
    int32_t *tokens = malloc((size_t)T * sizeof *tokens), *pos = malloc((size_t)T * sizeof *pos);
    int32_t *seq_start = malloc((size_t)(n_seqs + 1) * sizeof *seq_start);
    const int32_t **tables = malloc((size_t)n_seqs * sizeof *tables);
    int32_t *nb = malloc((size_t)n_seqs * sizeof *nb);
    assert_non_null(tokens);
    assert_non_null(pos);
    assert_non_null(seq_start);
    assert_non_null(tables);
    assert_non_null(nb);
    int32_t t = 0;
    for (int32_t i = 0; i < n_seqs; i++) {
        seq_reserve(f->kv, seqs[i], n[i]);
        seq_start[i] = t;
        for (int32_t j = 0; j < n[i]; j++, t++) {
            tokens[t] = toks[i][j];
            pos[t] = seqs[i]->n_past + j;
        }
        tables[i] = seqs[i]->blocks;
        nb[i] = seqs[i]->n_blocks;
    }
    seq_start[n_seqs] = T;
    sw_batch b = {.n_tokens = T, .tokens = tokens, .pos = pos, .n_seqs = n_seqs,
                  .seq_start = seq_start, .block_tables = tables, .n_blocks = nb};
    sw_err err = {{0}};
    if (sw_model_forward(f->m, f->kv, &b, logits, &err) != SW_OK) fail_msg("forward: %s", err.msg);
    for (int32_t i = 0; i < n_seqs; i++) seqs[i]->n_past += n[i];
    free(tokens);
    free(pos);
    free(seq_start);
    free(tables);
    free(nb);
}

static int32_t argmax(const float *v, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = (int32_t)i;
    return best;
}

/* Greedy: feed the prompt in one step, then n_gen - 1 single-token steps.
 * out_logits (optional): the logits behind each token, n_gen rows of n_vocab. */
static void greedy_logits(fixture *f, const int32_t *prompt, int32_t n_prompt, int32_t n_gen,
                          int32_t *out, float *out_logits) {
    int64_t V = sw_model_config_get(f->m)->n_vocab;
    float *logits = malloc((size_t)V * sizeof *logits);
    assert_non_null(logits);
    seq s = {.n_blocks = 0};
    seq *sp = &s;
    const int32_t *tp = prompt;
    step(f, &sp, &tp, &n_prompt, 1, logits);
    for (int32_t i = 0; i < n_gen; i++) {
        out[i] = argmax(logits, V);
        if (out_logits) memcpy(out_logits + (size_t)i * V, logits, (size_t)V * sizeof *logits);
        if (i + 1 == n_gen) break;
        int32_t one = 1;
        tp = &out[i];
        step(f, &sp, &tp, &one, 1, logits);
    }
    seq_release(f->kv, &s);
    free(logits);
}

static void greedy(fixture *f, const int32_t *prompt, int32_t n_prompt, int32_t n_gen,
                   int32_t *out) {
    greedy_logits(f, prompt, n_prompt, n_gen, out, NULL);
}

/* ---- (a) stories260K vs llama.cpp ---------------------------------------- */

typedef struct ref_prompt {
    int32_t prompt[64], gen[64];
    int32_t n_prompt, n_gen;
    char text[64];
} ref_prompt;

static int load_reference(ref_prompt *out, int cap) {
    char path[1024];
    if (!shared_path("reference/stories260K-greedy.json", path, sizeof path)) return -1;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    assert_non_null(root);
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(root, "prompts"), *p;
    int k = 0;
    cJSON_ArrayForEach(p, prompts) {
        assert_true(k < cap);
        ref_prompt *r = &out[k++];
        memset(r, 0, sizeof *r);
        snprintf(r->text, sizeof r->text, "%s",
                 cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "prompt_ids")) {
            assert_true(r->n_prompt < 64);
            r->prompt[r->n_prompt++] = (int32_t)e->valuedouble;
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "gen_ids")) {
            assert_true(r->n_gen < 64);
            r->gen[r->n_gen++] = (int32_t)e->valuedouble;
        }
    }
    cJSON_Delete(root);
    return k;
}

static void check_stories(const char *model, sw_type kv_type, int32_t n_check, int32_t max_prompts) {
    ref_prompt refs[8];
    int n = load_reference(refs, 8);
    if (n < 0) {
        skip();
        return;
    }
    assert_int_equal(n, 4);
    fixture f;
    fx_open(&f, model, kv_type, 16, 16);
    for (int i = 0; i < n && i < max_prompts; i++) {
        int32_t got[64];
        int32_t ng = SW_MIN(n_check, refs[i].n_gen);
        greedy(&f, refs[i].prompt, refs[i].n_prompt, ng, got);
        for (int32_t j = 0; j < ng; j++)
            if (got[j] != refs[i].gen[j])
                fail_msg("%s, prompt '%s': token %d is %d, reference %d", model, refs[i].text, j,
                         got[j], refs[i].gen[j]);
    }
    assert_int_equal(sw_kv_n_free(f.kv), sw_kv_n_blocks(f.kv));
    fx_close(&f);
}

static void test_stories_greedy_f16_kv(void **state) {
    (void)state;
    char path[1024];
    if (!shared_path("models/stories260K.gguf", path, sizeof path)) {
        skip();
        return;
    }
    check_stories(path, SW_TYPE_F16, 48, 4);
}

static void test_stories_greedy_f32_kv(void **state) {
    (void)state;
    char path[1024];
    if (!shared_path("models/stories260K.gguf", path, sizeof path)) {
        skip();
        return;
    }
    check_stories(path, SW_TYPE_F32, 48, 4);
}

/* ---- (c) quantized stories260K ------------------------------------------- */

static void check_stories_quant(const char *type) {
    char src[1024], dst[1024], args[2200];
    if (!shared_path("models/stories260K.gguf", src, sizeof src)) {
        skip();
        return;
    }
    snprintf(dst, sizeof dst, "%s/test_model-stories260K-%s.gguf", tmp_dir(), type);
    snprintf(args, sizeof args, "'%s' '%s' %s", src, dst, type);
    if (!run_tool("quantize", args)) {
        skip();
        return;
    }
    check_stories(dst, SW_TYPE_F16, 20, 1); /* "Once upon a time" */
}

static void test_stories_q8_0(void **state) { (void)state; check_stories_quant("q8_0"); }
static void test_stories_q4_0(void **state) { (void)state; check_stories_quant("q4_0"); }

/* ---- (b) batched == unbatched -------------------------------------------- */

#define N_SEQ 4
#define N_DECODE 6
/* A sequence's math does not depend on its batch mates: every kernel computes
 * each token's row with the same operations in the same order whatever the
 * batch (8-bit activation blocks are per token; attention is per token and
 * head). So batched logits may differ from solo ones only by float reordering
 * in the matmul tiling; 1e-5 of the logit scale is far above that and far
 * below what a wrong position, mask or block table does (O(1) changes). */
#define BATCH_LOGIT_TOL 1e-5

/* shape: a spillway-mkmodel --shape; the file is named after shape and type */
static void batched_vs_alone_shape(const char *shape, const char *type) {
    char path[1024], flags[128], name[64];
    snprintf(flags, sizeof flags, "--shape %s --type %s", shape, type);
    snprintf(name, sizeof name, "%s-%s", shape, type);
    if (!synthetic_model(name, flags, path, sizeof path)) {
        skip();
        return;
    }
    /* Prompt lengths straddle block boundaries (block size 8). */
    static const int32_t lens[N_SEQ] = {1, 7, 19, 33};
    int32_t prompts[N_SEQ][40];
    uint32_t r = 7;
    for (int i = 0; i < N_SEQ; i++)
        for (int j = 0; j < lens[i]; j++) {
            r = r * 1103515245u + 12345u;
            prompts[i][j] = 3 + (int32_t)((r >> 16) % 500u);
        }

    fixture f;
    fx_open(&f, path, SW_TYPE_F16, 8, 64);
    int64_t V = sw_model_config_get(f.m)->n_vocab;
    float *logits = malloc((size_t)(N_SEQ * V) * sizeof *logits);
    assert_non_null(logits);

    /* Each sequence alone, keeping the logits behind every token: greedy tokens
     * alone would miss bugs that do not move the argmax (synthetic models are
     * built so that it is stable). */
    const size_t per_seq = (size_t)(N_DECODE + 1) * (size_t)V;
    float *alone_l = malloc(N_SEQ * per_seq * sizeof *alone_l);
    float *batch_l = malloc(N_SEQ * per_seq * sizeof *batch_l);
    assert_non_null(alone_l);
    assert_non_null(batch_l);
    int32_t alone[N_SEQ][N_DECODE + 1];
    for (int i = 0; i < N_SEQ; i++)
        greedy_logits(&f, prompts[i], lens[i], N_DECODE + 1, alone[i], alone_l + i * per_seq);
#define KEEP(i, row)                                                                               \
    memcpy(batch_l + (i) * per_seq + (size_t)n_got[i] * V, logits + (size_t)(row) * V,           \
           (size_t)V * sizeof *logits)

    /* Together: step 1 prefills sequences 0-2; step 2 decodes them while
     * sequence 3 prefills; then all four decode together. */
    seq s[N_SEQ];
    memset(s, 0, sizeof s);
    seq *sp[N_SEQ] = {&s[0], &s[1], &s[2], &s[3]};
    int32_t got[N_SEQ][N_DECODE + 1], n_got[N_SEQ] = {0};
    const int32_t *tp[N_SEQ];
    int32_t n[N_SEQ];
    for (int i = 0; i < 3; i++) {
        tp[i] = prompts[i];
        n[i] = lens[i];
    }
    step(&f, sp, tp, n, 3, logits);
    for (int i = 0; i < 3; i++) {
        KEEP(i, i);
        got[i][n_got[i]++] = argmax(logits + i * V, V);
    }
    for (int i = 0; i < 3; i++) {
        tp[i] = &got[i][n_got[i] - 1];
        n[i] = 1;
    }
    tp[3] = prompts[3];
    n[3] = lens[3];
    step(&f, sp, tp, n, 4, logits);
    for (int i = 0; i < 4; i++) {
        KEEP(i, i);
        got[i][n_got[i]++] = argmax(logits + i * V, V);
    }
    while (n_got[3] < N_DECODE + 1) {
        int k = 0;
        seq *act[N_SEQ];
        int idx[N_SEQ];
        for (int i = 0; i < N_SEQ; i++) {
            if (n_got[i] >= N_DECODE + 1) continue;
            act[k] = sp[i];
            tp[k] = &got[i][n_got[i] - 1];
            n[k] = 1;
            idx[k++] = i;
        }
        step(&f, act, tp, n, k, logits);
        for (int j = 0; j < k; j++) {
            KEEP(idx[j], j);
            got[idx[j]][n_got[idx[j]]++] = argmax(logits + j * V, V);
        }
    }
#undef KEEP
    for (int i = 0; i < N_SEQ; i++)
        for (int j = 0; j < N_DECODE + 1; j++)
            if (got[i][j] != alone[i][j])
                fail_msg("%s: sequence %d (prompt %d tokens) token %d: batched %d, alone %d", name,
                         i, lens[i], j, got[i][j], alone[i][j]);
    double max_diff = 0, max_abs = 0;
    for (size_t q = 0; q < N_SEQ * per_seq; q++) {
        max_diff = fmax(max_diff, fabs((double)batch_l[q] - (double)alone_l[q]));
        max_abs = fmax(max_abs, fabs((double)alone_l[q]));
    }
    print_message("%s: batched vs alone, max logit difference %.3g (max |logit| %.3g)\n", name,
                  max_diff, max_abs);
    if (max_diff > BATCH_LOGIT_TOL * max_abs)
        fail_msg("%s: batched logits differ from alone by %g (> %g x max |logit| %g)", name,
                 max_diff, BATCH_LOGIT_TOL, max_abs);
    free(alone_l);
    free(batch_l);
    free(logits);
    fx_close(&f);
}

static void batched_vs_alone(const char *type) { batched_vs_alone_shape("tiny", type); }

static void test_batched_f32(void **state) { (void)state; batched_vs_alone("f32"); }
/* gemma3: the 33-token prompt and its decodes run past the 16-position
 * window of layers 0 and 1 */
static void test_batched_gemma3(void **state) {
    (void)state;
    batched_vs_alone_shape("gemma3-tiny", "q8_0");
}
static void test_batched_q8_0(void **state) { (void)state; batched_vs_alone("q8_0"); }
static void test_batched_q4_0(void **state) { (void)state; batched_vs_alone("q4_0"); }
static void test_batched_q4_k(void **state) { (void)state; batched_vs_alone("q4_k"); }
static void test_batched_q6_k(void **state) { (void)state; batched_vs_alone("q6_k"); }

/* ---- (d) bad input ------------------------------------------------------- */

static void test_vocab_only(void **state) {
    (void)state;
    char path[1024];
    if (!shared_path("models/vocab/ggml-vocab-llama-spm.gguf", path, sizeof path)) {
        skip();
        return;
    }
    sw_backend *be = NULL;
    sw_backend_config bc = {.name = "cpu", .n_threads = 1};
    sw_err err = {{0}};
    assert_int_equal(sw_backend_create(&bc, &be, &err), SW_OK);
    sw_model *m = (sw_model *)1;
    sw_status st = sw_model_load(path, be, NULL, &m, &err);
    assert_int_not_equal(st, SW_OK);
    assert_null(m);
    if (!strstr(err.msg, "no weights")) fail_msg("message does not say 'no weights': %s", err.msg);
    sw_backend_free(be);
}

/* Copy of a model with general.architecture replaced. */
static void write_with_arch(const char *src, const char *dst, const char *arch) {
    sw_err err = {{0}};
    sw_gguf *g = NULL;
    if (sw_gguf_open(src, &g, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++)
        assert_int_equal(sw_gguf_writer_copy_kv(w, g, i), SW_OK);
    assert_int_equal(sw_gguf_writer_set_str(w, "general.architecture", arch), SW_OK);
    for (int64_t i = 0; i < sw_gguf_n_tensors(g); i++) {
        const sw_gguf_tensor *t = sw_gguf_tensor_at(g, i);
        if (sw_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, NULL, NULL,
                                      &err) != SW_OK)
            fail_msg("%s", err.msg);
    }
    if (sw_gguf_writer_write(w, dst, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_writer_free(w);
    sw_gguf_free(g);
}

static void test_unknown_arch(void **state) {
    (void)state;
    char path[1024], bad[1100];
    if (!synthetic_model("f32", "--shape tiny --type f32", path, sizeof path)) {
        skip();
        return;
    }
    snprintf(bad, sizeof bad, "%s/test_model-mamba.gguf", tmp_dir());
    write_with_arch(path, bad, "mamba");
    sw_backend *be = NULL;
    sw_backend_config bc = {.name = "cpu", .n_threads = 1};
    sw_err err = {{0}};
    assert_int_equal(sw_backend_create(&bc, &be, &err), SW_OK);
    sw_model *m = NULL;
    assert_int_equal(sw_model_load(bad, be, NULL, &m, &err), SW_E_UNSUPPORTED);
    assert_null(m);
    if (!strstr(err.msg, "mamba")) fail_msg("message does not name the arch: %s", err.msg);
    sw_backend_free(be);
}

static void test_bad_batches(void **state) {
    (void)state;
    char path[1024];
    if (!synthetic_model("f32", "--shape tiny --type f32", path, sizeof path)) {
        skip();
        return;
    }
    fixture f;
    fx_open(&f, path, SW_TYPE_F16, 16, 8);
    const sw_model_config *c = sw_model_config_get(f.m);
    float *logits = malloc((size_t)(2 * c->n_vocab) * sizeof *logits);
    assert_non_null(logits);
    int32_t b0 = sw_kv_alloc_block(f.kv), b1 = sw_kv_alloc_block(f.kv);
    int32_t table[2] = {b0, b1};
    const int32_t *tables[2] = {table, table};
    int32_t nb[2] = {2, 2};
    int32_t tokens[3] = {5, 6, 7}, pos[3] = {0, 1, 2}, ss[3] = {0, 3, 3};
    sw_batch b = {.n_tokens = 3, .tokens = tokens, .pos = pos, .n_seqs = 1, .seq_start = ss,
                  .block_tables = tables, .n_blocks = nb};
    sw_err err = {{0}};
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_OK);

    /* position at the context length */
    pos[0] = (int32_t)c->n_ctx_train;
    pos[1] = pos[0] + 1;
    pos[2] = pos[0] + 2;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "context"));
    /* block table too short for position 40 (blocks of 16) */
    pos[0] = 38, pos[1] = 39, pos[2] = 40;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_RANGE);
    assert_non_null(strstr(err.msg, "blocks"));
    pos[0] = 0, pos[1] = 1, pos[2] = 2;
    /* token id outside the vocabulary */
    tokens[1] = (int32_t)c->n_vocab;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_RANGE);
    tokens[1] = -1;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_RANGE);
    tokens[1] = 6;
    /* block id outside the cache */
    table[0] = 99;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_RANGE);
    table[0] = b0;
    /* gaps in positions, empty sequence, seq_start not covering the batch */
    pos[2] = 5;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_INVALID_ARG);
    pos[2] = 2;
    b.n_seqs = 2; /* sequence 1 = [3, 3): empty */
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_INVALID_ARG);
    b.n_seqs = 1;
    ss[1] = 2;
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_E_INVALID_ARG);
    ss[1] = 3;
    /* still fine afterwards */
    assert_int_equal(sw_model_forward(f.m, f.kv, &b, logits, &err), SW_OK);
    free(logits);
    fx_close(&f);
}

/* ---- KV cache ------------------------------------------------------------ */

static void test_kv_free_list(void **state) {
    (void)state;
    char path[1024];
    if (!synthetic_model("f32", "--shape tiny --type f32", path, sizeof path)) {
        skip();
        return;
    }
    fixture f;
    fx_open(&f, path, SW_TYPE_F16, 16, 5);
    assert_int_equal(sw_kv_n_blocks(f.kv), 5);
    assert_int_equal(sw_kv_block_size(f.kv), 16);
    int32_t got[5];
    bool seen[5] = {0};
    for (int i = 0; i < 5; i++) {
        got[i] = sw_kv_alloc_block(f.kv);
        assert_in_range(got[i], 0, 4);
        assert_false(seen[got[i]]);
        seen[got[i]] = true;
    }
    assert_int_equal(sw_kv_n_free(f.kv), 0);
    assert_int_equal(sw_kv_alloc_block(f.kv), -1);
    sw_kv_free_block(f.kv, got[2]);
    sw_kv_free_block(f.kv, got[2]); /* double free: ignored */
    sw_kv_free_block(f.kv, 77);     /* out of range: ignored */
    assert_int_equal(sw_kv_n_free(f.kv), 1);
    assert_int_equal(sw_kv_alloc_block(f.kv), got[2]);
    /* bytes: 2 (K,V) * layers * head_dim * kv_heads * tokens * 2 bytes (f16) */
    const sw_model_config *c = sw_model_config_get(f.m);
    uint64_t expect = 2ull * (uint64_t)(c->n_layer * c->head_dim * c->n_head_kv) * 5 * 16 * 2;
    assert_int_equal(sw_kv_bytes(f.kv), expect);
    sw_kv_cache_free(f.kv);

    /* derived from a byte budget: just under 3 f32 blocks (each twice an f16
     * block) -> 2 blocks */
    sw_err err = {{0}};
    sw_kv_params kp = {.block_size = 16, .max_bytes = expect / 5 * 2 * 3 - 1, .type = SW_TYPE_F32};
    assert_int_equal(sw_kv_cache_create(f.m, &kp, &f.kv, &err), SW_OK);
    assert_int_equal(sw_kv_n_blocks(f.kv), 2);
    assert_int_equal(sw_kv_bytes(f.kv), expect / 5 * 2 * 2);
    sw_kv_cache_free(f.kv);
    kp.max_bytes = 10;
    f.kv = NULL;
    assert_int_equal(sw_kv_cache_create(f.m, &kp, &f.kv, &err), SW_E_RANGE);
    kp.type = SW_TYPE_Q4_0;
    kp.n_blocks = 4;
    assert_int_equal(sw_kv_cache_create(f.m, &kp, &f.kv, &err), SW_E_UNSUPPORTED);
    assert_null(f.kv);
    sw_kv_cache_free(NULL);
    sw_model_free(NULL);
    fx_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_greedy_f16_kv),
        cmocka_unit_test(test_stories_greedy_f32_kv),
        cmocka_unit_test(test_stories_q8_0),
        cmocka_unit_test(test_stories_q4_0),
        cmocka_unit_test(test_batched_f32),
        cmocka_unit_test(test_batched_q8_0),
        cmocka_unit_test(test_batched_q4_0),
        cmocka_unit_test(test_batched_q4_k),
        cmocka_unit_test(test_batched_q6_k),
        cmocka_unit_test(test_batched_gemma3),
        cmocka_unit_test(test_vocab_only),
        cmocka_unit_test(test_unknown_arch),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_kv_free_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
