/* test_model_config.c — hyperparameter loading, tensor checks, llama3 rope
 * factors and the quantization policy of loader/model_config.c.
 *
 * Expected values come from outside the code under test: the stories260K facts
 * from $SW_SHARED_DIR/models/README.md, llama3 factors recomputed here from
 * Meta's published apply_scaling formula, and the Q4_K_M layer list written out
 * by hand. Synthetic GGUFs are written with the gguf writer into $SW_TMP_DIR. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "model_config.h"

/* ---- helpers ---- */

static const char *tmp_dir(void) {
    const char *d = getenv("SW_TMP_DIR");
    return d && *d ? d : "/tmp";
}

static bool shared_path(char *buf, size_t cap, const char *rel) {
    const char *d = getenv("SW_SHARED_DIR");
    if (!d || !*d) return false;
    snprintf(buf, cap, "%s/models/%s", d, rel);
    return access(buf, R_OK) == 0;
}

#define ASSERT_MSG_HAS(err, needle)                                                                \
    do {                                                                                           \
        if (!strstr((err).msg, (needle)))                                                          \
            fail_msg("error message '%s' does not mention '%s'", (err).msg, (needle));             \
    } while (0)

/* A synthetic model description; the defaults form a valid llama model. */
typedef struct spec {
    const char *arch;
    int64_t L, E, H, HK, F, V;
    bool biases, tied, no_tensors, rope_freqs;
    const char *drop_key;    /* remove this metadata key */
    const char *drop_tensor; /* leave this tensor out */
    const char *swap_tensor; /* write this tensor with ne0/ne1 exchanged */
    const char *type_tensor; /* write this tensor as `type` */
    sw_type type;
    void (*extra)(sw_gguf_writer *w); /* more keys */
} spec;

static spec default_spec(void) {
    spec s = {.arch = "llama", .L = 2, .E = 256, .H = 4, .HK = 2, .F = 172, .V = 300};
    return s;
}

static void *g_zeros;
static size_t g_zeros_size;

static void add_t(sw_gguf_writer *w, const spec *s, const char *name, int64_t ne0, int64_t ne1) {
    if (s->drop_tensor && !strcmp(name, s->drop_tensor)) return;
    int64_t ne[2] = {ne0, ne1};
    if (s->swap_tensor && !strcmp(name, s->swap_tensor)) {
        ne[0] = ne1;
        ne[1] = ne0;
    }
    sw_type t = SW_TYPE_F32;
    if (s->type_tensor && !strcmp(name, s->type_tensor)) t = s->type;
    size_t bytes = sw_row_size(t, ne[0]) * (size_t)(ne1 > 0 ? ne[1] : 1);
    assert_true(bytes > 0 && bytes <= g_zeros_size);
    sw_err err = {{0}};
    sw_status st =
        sw_gguf_writer_add_tensor(w, name, t, ne1 > 0 ? 2 : 1, ne, g_zeros, NULL, NULL, &err);
    if (st != SW_OK) fail_msg("add_tensor %s: %s", name, err.msg);
}

/* Write the model described by s to a file named after the test; return it opened. */
static sw_gguf *make_model(const spec *s, const char *tag) {
    char path[512], key[128];
    snprintf(path, sizeof path, "%s/model_config_%s_%d.gguf", tmp_dir(), tag, (int)getpid());
    if (!g_zeros) {
        g_zeros_size = 4u << 20;
        g_zeros = calloc(1, g_zeros_size);
        assert_non_null(g_zeros);
    }
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    const char *a = s->arch;
#define KU(suffix, v)                                                                              \
    snprintf(key, sizeof key, "%s.%s", a, suffix);                                                 \
    assert_int_equal(sw_gguf_writer_set_u32(w, key, (uint32_t)(v)), SW_OK)
    assert_int_equal(sw_gguf_writer_set_str(w, "general.architecture", a), SW_OK);
    assert_int_equal(sw_gguf_writer_set_str(w, "general.name", "synthetic"), SW_OK);
    KU("block_count", s->L);
    KU("embedding_length", s->E);
    KU("feed_forward_length", s->F);
    KU("context_length", 1024);
    KU("attention.head_count", s->H);
    KU("attention.head_count_kv", s->HK);
    KU("vocab_size", s->V);
#undef KU
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", a);
    assert_int_equal(sw_gguf_writer_set_f32(w, key, 1e-6f), SW_OK);
    if (s->extra) s->extra(w);
    if (s->drop_key) assert_int_equal(sw_gguf_writer_remove_key(w, s->drop_key), SW_OK);

    if (!s->no_tensors) {
        const int64_t hd = s->E / s->H, kv = s->HK * hd, E = s->E, F = s->F;
        char name[96];
        add_t(w, s, "token_embd.weight", E, s->V);
        add_t(w, s, "output_norm.weight", E, 0);
        if (!s->tied) add_t(w, s, "output.weight", E, s->V);
        if (s->rope_freqs) add_t(w, s, "rope_freqs.weight", hd / 2, 0);
        for (int64_t l = 0; l < s->L; l++) {
#define LT(suffix, n0, n1)                                                                         \
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)l, suffix);                              \
    add_t(w, s, name, n0, n1)
            LT("attn_norm.weight", E, 0);
            LT("attn_q.weight", E, s->H * hd);
            LT("attn_k.weight", E, kv);
            LT("attn_v.weight", E, kv);
            LT("attn_output.weight", s->H * hd, E);
            LT("ffn_norm.weight", E, 0);
            LT("ffn_gate.weight", E, F);
            LT("ffn_up.weight", E, F);
            LT("ffn_down.weight", F, E);
            if (s->biases) {
                LT("attn_q.bias", s->H * hd, 0);
                LT("attn_k.bias", kv, 0);
                LT("attn_v.bias", kv, 0);
            }
#undef LT
        }
    }
    sw_err err = {{0}};
    if (sw_gguf_writer_write(w, path, &err) != SW_OK) fail_msg("write %s: %s", path, err.msg);
    sw_gguf_writer_free(w);
    sw_gguf *g = NULL;
    if (sw_gguf_open(path, &g, &err) != SW_OK) fail_msg("open %s: %s", path, err.msg);
    unlink(path); /* the mapping stays valid */
    return g;
}

/* Load + check; returns the first failing status. */
static sw_status load_check(const sw_gguf *g, sw_model_config *cfg, sw_err *err) {
    sw_status st = sw_model_config_load(g, cfg, err);
    if (st != SW_OK) return st;
    return sw_model_config_check_tensors(g, cfg, err);
}

/* ---- real files ---- */

static void test_stories260k(void **state) {
    (void)state;
    char path[1024];
    if (!shared_path(path, sizeof path, "stories260K.gguf")) {
        print_message("SKIP: $SW_SHARED_DIR/models/stories260K.gguf not available\n");
        skip();
    }
    sw_gguf *g = NULL;
    sw_err err = {{0}};
    if (sw_gguf_open(path, &g, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_model_config c;
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    /* facts from models/README.md */
    assert_int_equal(c.arch, SW_ARCH_LLAMA);
    assert_string_equal(c.arch_name, "llama");
    assert_string_equal(c.name, "llama");
    assert_int_equal(c.n_layer, 5);
    assert_int_equal(c.n_embd, 64);
    assert_int_equal(c.n_head, 8);
    assert_int_equal(c.n_head_kv, 4);
    assert_int_equal(c.head_dim, 8);
    assert_int_equal(c.n_rot, 8);
    assert_int_equal(c.n_ff, 172);
    assert_int_equal(c.n_vocab, 512);
    assert_int_equal(c.n_ctx_train, 2048);
    assert_true(c.rope_freq_base == 10000.0f);
    assert_true(c.rope_freq_scale == 1.0f);
    assert_int_equal(c.rope_scaling, SW_ROPE_SCALING_NONE);
    assert_int_equal(c.rope_mode, SW_ROPE_NORM);
    assert_true(fabsf(c.rms_eps - 1e-5f) < 1e-12f);
    assert_false(c.tied_embeddings);
    assert_false(c.has_qkv_bias);
    assert_false(c.has_rope_freqs);
    sw_gguf_free(g);
}

static void test_vocab_only_files(void **state) {
    (void)state;
    char gpt2[1024], spm[1024];
    if (!shared_path(gpt2, sizeof gpt2, "vocab/ggml-vocab-gpt-2.gguf") ||
        !shared_path(spm, sizeof spm, "vocab/ggml-vocab-llama-spm.gguf")) {
        print_message("SKIP: $SW_SHARED_DIR/models/vocab not available\n");
        skip();
    }
    sw_gguf *g = NULL;
    sw_err err = {{0}};
    sw_model_config c;
    if (sw_gguf_open(gpt2, &g, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_UNSUPPORTED);
    ASSERT_MSG_HAS(err, "'gpt2'");
    ASSERT_MSG_HAS(err, "llama, qwen2");
    sw_gguf_free(g);

    if (sw_gguf_open(spm, &g, &err) != SW_OK) fail_msg("%s", err.msg);
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    /* README: ctx 4096, 32 layers, dim 4096, ff 11008, heads 32/32, 32000 tokens */
    assert_int_equal(c.n_layer, 32);
    assert_int_equal(c.n_embd, 4096);
    assert_int_equal(c.n_ff, 11008);
    assert_int_equal(c.n_head_kv, 32);
    assert_int_equal(c.n_vocab, 32000);
    assert_int_equal(sw_model_config_check_tensors(g, &c, &err), SW_E_FORMAT);
    ASSERT_MSG_HAS(err, "has no weights");
    ASSERT_MSG_HAS(err, "ggml-vocab-llama-spm.gguf");
    sw_gguf_free(g);
}

/* ---- synthetic files ---- */

static void test_valid_synthetic(void **state) {
    (void)state;
    spec s = default_spec();
    sw_gguf *g = make_model(&s, "valid");
    sw_model_config c;
    sw_err err = {{0}};
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.n_rot, 64); /* no rope.dimension_count: head_dim */
    assert_int_equal(c.n_vocab, 300);
    assert_true(c.rope_freq_base == 10000.0f);
    assert_false(c.tied_embeddings);
    sw_gguf_free(g);
}

static void test_missing_key(void **state) {
    (void)state;
    const char *keys[] = {"llama.block_count",          "llama.embedding_length",
                          "llama.feed_forward_length",  "llama.context_length",
                          "llama.attention.head_count", "llama.attention.layer_norm_rms_epsilon",
                          "general.architecture"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        spec s = default_spec();
        s.drop_key = keys[i];
        sw_gguf *g = make_model(&s, "missing_key");
        sw_model_config c;
        sw_err err = {{0}};
        assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_FORMAT);
        ASSERT_MSG_HAS(err, keys[i]);
        sw_gguf_free(g);
    }
}

static void test_wrong_shape(void **state) {
    (void)state;
    spec s = default_spec();
    s.swap_tensor = "blk.1.ffn_down.weight";
    sw_gguf *g = make_model(&s, "shape");
    sw_model_config c;
    sw_err err = {{0}};
    assert_int_equal(load_check(g, &c, &err), SW_E_FORMAT);
    ASSERT_MSG_HAS(err, "blk.1.ffn_down.weight: expected shape [172, 256], got [256, 172]");
    sw_gguf_free(g);

    s = default_spec();
    s.drop_tensor = "blk.0.ffn_up.weight";
    g = make_model(&s, "missing_tensor");
    assert_int_equal(load_check(g, &c, &err), SW_E_NOT_FOUND);
    ASSERT_MSG_HAS(err, "blk.0.ffn_up.weight");
    sw_gguf_free(g);
}

static void test_unsupported_type(void **state) {
    (void)state;
    spec s = default_spec();
    s.type_tensor = "blk.0.attn_q.weight";
    s.type = SW_TYPE_IQ2_XXS;
    sw_gguf *g = make_model(&s, "type");
    sw_model_config c;
    sw_err err = {{0}};
    assert_int_equal(load_check(g, &c, &err), SW_E_UNSUPPORTED);
    ASSERT_MSG_HAS(err, "blk.0.attn_q.weight");
    ASSERT_MSG_HAS(err, "iq2_xxs");
    sw_gguf_free(g);

    /* norms must stay f32 even though f16 is computable */
    s = default_spec();
    s.type_tensor = "blk.1.ffn_norm.weight";
    s.type = SW_TYPE_F16;
    g = make_model(&s, "normtype");
    assert_int_equal(load_check(g, &c, &err), SW_E_UNSUPPORTED);
    ASSERT_MSG_HAS(err, "blk.1.ffn_norm.weight");
    ASSERT_MSG_HAS(err, "f16");
    sw_gguf_free(g);

    /* a quantized weight is fine */
    s = default_spec();
    s.type_tensor = "blk.1.attn_k.weight";
    s.type = SW_TYPE_Q4_K;
    g = make_model(&s, "q4k");
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_gguf_free(g);
}

static void key_kv3(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 3);
}
static void key_rot_big(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.rope.dimension_count", 128);
}
static void key_rot_odd(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.rope.dimension_count", 33);
}
static void key_heads0(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.attention.head_count", 0);
}
static void key_heads3(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.attention.head_count", 3);
    sw_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 3);
}

static void test_bad_head_counts(void **state) {
    (void)state;
    struct {
        void (*extra)(sw_gguf_writer *);
        const char *key;
    } cases[] = {
        {key_kv3, "'llama.attention.head_count_kv'"},
        {key_rot_big, "'llama.rope.dimension_count'"},
        {key_rot_odd, "'llama.rope.dimension_count'"},
        {key_heads0, "'llama.attention.head_count'"},
        {key_heads3, "'llama.attention.head_count'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spec s = default_spec();
        s.extra = cases[i].extra;
        s.no_tensors = true;
        sw_gguf *g = make_model(&s, "heads");
        sw_model_config c;
        sw_err err = {{0}};
        assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_FORMAT);
        ASSERT_MSG_HAS(err, cases[i].key);
        sw_gguf_free(g);
    }
}

/* attention.key_length decouples head_dim from n_embd / n_head */
static void key_len(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.attention.key_length", 32);
    sw_gguf_writer_set_u32(w, "llama.attention.value_length", 32);
}
static void test_key_length(void **state) {
    (void)state;
    spec s = default_spec();
    s.extra = key_len;
    s.no_tensors = true;
    sw_gguf *g = make_model(&s, "keylen");
    sw_model_config c;
    sw_err err = {{0}};
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.head_dim, 32);
    assert_int_equal(c.n_rot, 32);
    sw_gguf_free(g);
}

static void test_unknown_arch(void **state) {
    (void)state;
    spec s = default_spec();
    s.arch = "gpt2";
    sw_gguf *g = make_model(&s, "arch");
    sw_model_config c;
    sw_err err = {{0}};
    assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_UNSUPPORTED);
    ASSERT_MSG_HAS(err, "architecture 'gpt2' is not supported (supported: llama, qwen2, bert, gemma3)");
    sw_gguf_free(g);

    s = default_spec();
    s.no_tensors = true;
    g = make_model(&s, "empty");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(sw_model_config_check_tensors(g, &c, &err), SW_E_FORMAT);
    ASSERT_MSG_HAS(err, "has no weights (vocab-only GGUF?)");
    sw_gguf_free(g);
}

static void test_qwen2_biases(void **state) {
    (void)state;
    spec s = default_spec();
    s.arch = "qwen2";
    s.biases = true;
    sw_gguf *g = make_model(&s, "qwen2");
    sw_model_config c;
    sw_err err = {{0}};
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.arch, SW_ARCH_QWEN2);
    assert_int_equal(c.rope_mode, SW_ROPE_NEOX);
    assert_true(c.has_qkv_bias);
    sw_gguf_free(g);

    /* qwen2 without biases: the first missing bias is named */
    s.biases = false;
    g = make_model(&s, "qwen2nb");
    assert_int_equal(load_check(g, &c, &err), SW_E_NOT_FOUND);
    ASSERT_MSG_HAS(err, "blk.0.attn_q.bias");
    sw_gguf_free(g);

    /* llama with biases: detected; a bias of the wrong length is named */
    s = default_spec();
    s.biases = true;
    g = make_model(&s, "llamab");
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_true(c.has_qkv_bias);
    assert_int_equal(c.rope_mode, SW_ROPE_NORM);
    sw_gguf_free(g);
    s.biases = false;
    g = make_model(&s, "llamanb");
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_false(c.has_qkv_bias);
    sw_gguf_free(g);
}

static void test_tied_embeddings(void **state) {
    (void)state;
    spec s = default_spec();
    s.tied = true;
    sw_gguf *g = make_model(&s, "tied");
    sw_model_config c;
    sw_err err = {{0}};
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_true(c.tied_embeddings);
    sw_gguf_free(g);
}

/* vocab size from token_embd when there is no vocab_size key */
static void test_vocab_from_embd(void **state) {
    (void)state;
    spec s = default_spec();
    s.drop_key = "llama.vocab_size";
    s.V = 320;
    sw_gguf *g = make_model(&s, "vocab");
    sw_model_config c;
    sw_err err = {{0}};
    if (load_check(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.n_vocab, 320);
    sw_gguf_free(g);
}

/* ---- gemma3: windows, rope bases, scales, soft-cap ---- */

static void key_g3_window(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "gemma3.attention.sliding_window", 512);
}
static void key_g3_all(sw_gguf_writer *w) {
    key_g3_window(w);
    sw_gguf_writer_set_u32(w, "gemma3.attention.sliding_window_pattern", 2);
    sw_gguf_writer_set_f32(w, "gemma3.rope.freq_base_swa", 1000.0f);
    sw_gguf_writer_set_f32(w, "gemma3.final_logit_softcapping", 30.0f);
    sw_gguf_writer_set_f32(w, "gemma3.attention.scale", 0.125f);
}
static void key_g3_array(sw_gguf_writer *w) {
    key_g3_window(w);
    const uint32_t pat[2] = {1, 0};
    sw_gguf_writer_set_arr(w, "gemma3.attention.sliding_window_pattern", SW_GGUF_UINT32, pat, 2);
}
static void key_g3_negcap(sw_gguf_writer *w) {
    sw_gguf_writer_set_f32(w, "gemma3.final_logit_softcapping", -1.0f);
}
static void key_llama_window(sw_gguf_writer *w) {
    sw_gguf_writer_set_u32(w, "llama.attention.sliding_window", 512);
}

static sw_gguf *g3_model(void (*extra)(sw_gguf_writer *w), const char *arch, int64_t L,
                         const char *tag) {
    spec s = default_spec();
    s.arch = arch;
    s.L = L;
    s.no_tensors = true;
    s.extra = extra;
    return make_model(&s, tag);
}

static void test_gemma3_config(void **state) {
    (void)state;
    sw_model_config c;
    sw_err err = {{0}};
    /* the window alone: Gemma 3's defaults (period 6, local base 10000) */
    sw_gguf *g = g3_model(key_g3_window, "gemma3", 12, "g3win");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.arch, SW_ARCH_GEMMA3);
    assert_int_equal(c.rope_mode, SW_ROPE_NEOX);
    assert_int_equal(c.n_swa, 512);
    assert_int_equal(c.swa_period, 6);
    assert_float_equal(c.rope_freq_base_swa, 10000.0f, 0.0f);
    assert_float_equal(c.attn_scale, 1.0f / sqrtf(64.0f), 1e-7f); /* 1/sqrt(head_dim) */
    assert_float_equal(c.embd_scale, 16.0f, 1e-6f);               /* sqrt(256) */
    assert_float_equal(c.final_logit_softcap, 0.0f, 0.0f);
    for (int64_t il = 0; il < 12; il++)
        assert_int_equal(sw_model_config_layer_is_swa(&c, il), il % 6 != 5);
    sw_gguf_free(g);

    /* every key given */
    g = g3_model(key_g3_all, "gemma3", 4, "g3all");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.swa_period, 2);
    assert_float_equal(c.rope_freq_base_swa, 1000.0f, 0.0f);
    assert_float_equal(c.final_logit_softcap, 30.0f, 0.0f);
    assert_float_equal(c.attn_scale, 0.125f, 0.0f);
    assert_true(sw_model_config_layer_is_swa(&c, 0));
    assert_false(sw_model_config_layer_is_swa(&c, 1));
    assert_true(sw_model_config_layer_is_swa(&c, 2));
    sw_gguf_free(g);

    /* no window key: every layer global */
    g = g3_model(NULL, "gemma3", 6, "g3none");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.n_swa, 0);
    for (int64_t il = 0; il < 6; il++) assert_false(sw_model_config_layer_is_swa(&c, il));
    sw_gguf_free(g);

    /* a per-layer pattern array and a negative soft-cap are named */
    g = g3_model(key_g3_array, "gemma3", 2, "g3arr");
    assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_UNSUPPORTED);
    ASSERT_MSG_HAS(err, "gemma3.attention.sliding_window_pattern' is a per-layer array");
    sw_gguf_free(g);
    g = g3_model(key_g3_negcap, "gemma3", 2, "g3cap");
    assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_FORMAT);
    ASSERT_MSG_HAS(err, "gemma3.final_logit_softcapping' = -1 must be >= 0");
    sw_gguf_free(g);

    /* a llama file's window key is not read; no embedding scale */
    g = g3_model(key_llama_window, "llama", 2, "llamawin");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.n_swa, 0);
    assert_float_equal(c.embd_scale, 1.0f, 0.0f);
    sw_gguf_free(g);
}

/* ---- rope scaling ---- */

static void key_llama3(sw_gguf_writer *w) {
    sw_gguf_writer_set_f32(w, "llama.rope.freq_base", 500000.0f);
    sw_gguf_writer_set_str(w, "llama.rope.scaling.type", "llama3");
    sw_gguf_writer_set_f32(w, "llama.rope.scaling.factor", 8.0f);
    sw_gguf_writer_set_f32(w, "llama.rope.scaling.low_freq_factor", 1.0f);
    sw_gguf_writer_set_f32(w, "llama.rope.scaling.high_freq_factor", 4.0f);
    sw_gguf_writer_set_u32(w, "llama.rope.scaling.original_context_length", 8192);
}

/* Meta's llama3 apply_scaling, written out independently: returns the scaled
 * frequency; ggml's factor is freq / scaled. */
static double meta_scaled_freq(double freq, double scale, double low, double high, double old_ctx) {
    const double pi = 3.14159265358979323846;
    double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
    double wavelen = 2 * pi / freq;
    if (wavelen < high_wavelen) return freq;
    if (wavelen > low_wavelen) return freq / scale;
    double smooth = (old_ctx / wavelen - low) / (high - low);
    return (1 - smooth) * freq / scale + smooth * freq;
}

static void test_llama3_rope(void **state) {
    (void)state;
    spec s = default_spec();
    s.H = 2; /* head_dim 128, as Llama 3 */
    s.HK = 1;
    s.extra = key_llama3;
    s.no_tensors = true;
    sw_gguf *g = make_model(&s, "llama3");
    sw_model_config c;
    sw_err err = {{0}};
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.rope_scaling, SW_ROPE_SCALING_LLAMA3);
    assert_true(c.rope_scaling_factor == 8.0f);
    assert_true(c.rope_freq_scale == 1.0f); /* llama3 works through the factors */
    assert_int_equal(c.rope_llama3_orig_ctx, 8192);
    assert_int_equal(c.n_rot, 128);
    float f[64];
    sw_model_config_llama3_freq_factors(&c, f);
    int n_one = 0, n_full = 0, n_mid = 0;
    for (int i = 0; i < 64; i++) {
        double freq = 1.0 / pow(500000.0, (double)(2 * i) / 128.0);
        double want = freq / meta_scaled_freq(freq, 8.0, 1.0, 4.0, 8192.0);
        if (fabs(f[i] - want) > 1e-5 * want)
            fail_msg("factor[%d] = %.7g, want %.7g", i, f[i], want);
        n_one += want == 1.0;
        n_full += want == 8.0;
        n_mid += want > 1.0 && want < 8.0;
        if (i > 0) assert_true(f[i] >= f[i - 1]);
    }
    /* all three regimes are exercised */
    assert_true(n_one > 0 && n_full > 0 && n_mid > 0);
    sw_gguf_free(g);

    /* without llama3 scaling the factors are all 1 */
    s.extra = NULL;
    g = make_model(&s, "nollama3");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    sw_model_config_llama3_freq_factors(&c, f);
    for (int i = 0; i < 64; i++)
        assert_true(f[i] == 1.0f);
    sw_gguf_free(g);
}

static void key_linear(sw_gguf_writer *w) {
    sw_gguf_writer_set_str(w, "llama.rope.scaling.type", "linear");
    sw_gguf_writer_set_f32(w, "llama.rope.scaling.factor", 4.0f);
}
static void key_scale_linear(sw_gguf_writer *w) {
    sw_gguf_writer_set_f32(w, "llama.rope.scale_linear", 2.0f);
}
static void key_yarn(sw_gguf_writer *w) {
    sw_gguf_writer_set_str(w, "llama.rope.scaling.type", "yarn");
    sw_gguf_writer_set_f32(w, "llama.rope.scaling.factor", 4.0f);
}
static void key_llama3_nofactor(sw_gguf_writer *w) {
    sw_gguf_writer_set_str(w, "llama.rope.scaling.type", "llama3");
}

static void test_rope_scaling_kinds(void **state) {
    (void)state;
    spec s = default_spec();
    s.no_tensors = true;
    sw_model_config c;
    sw_err err = {{0}};

    s.extra = key_linear;
    sw_gguf *g = make_model(&s, "linear");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.rope_scaling, SW_ROPE_SCALING_LINEAR);
    assert_true(c.rope_freq_scale == 0.25f);
    sw_gguf_free(g);

    s.extra = key_scale_linear; /* older converters */
    g = make_model(&s, "scalelinear");
    if (sw_model_config_load(g, &c, &err) != SW_OK) fail_msg("%s", err.msg);
    assert_int_equal(c.rope_scaling, SW_ROPE_SCALING_LINEAR);
    assert_true(c.rope_freq_scale == 0.5f);
    sw_gguf_free(g);

    s.extra = key_yarn;
    g = make_model(&s, "yarn");
    assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_UNSUPPORTED);
    ASSERT_MSG_HAS(err, "yarn");
    ASSERT_MSG_HAS(err, "llama.rope.scaling.type");
    sw_gguf_free(g);

    s.extra = key_llama3_nofactor;
    g = make_model(&s, "llama3nf");
    assert_int_equal(sw_model_config_load(g, &c, &err), SW_E_FORMAT);
    ASSERT_MSG_HAS(err, "llama.rope.scaling.factor");
    sw_gguf_free(g);
}

/* ---- quantization policy ---- */

static void test_quant_policy(void **state) {
    (void)state;
    /* fallback: K-quants need rows of 256, else llama.cpp's 32-block
     * substitute (q2_K/q3_K -> q4_0, q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0)
     * or f16 */
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q4_K, 4096), SW_TYPE_Q4_K);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q4_K, 96), SW_TYPE_Q5_0);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q4_K, 896), SW_TYPE_Q5_0);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q5_K, 896), SW_TYPE_Q5_1);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q6_K, 896), SW_TYPE_Q8_0);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q3_K, 896), SW_TYPE_Q4_0);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q2_K, 96), SW_TYPE_Q4_0);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q6_K, 172), SW_TYPE_F16);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q4_0, 172), SW_TYPE_F16);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_Q8_0, 64), SW_TYPE_Q8_0);
    assert_int_equal(sw_model_quant_fallback(SW_TYPE_BF16, 172), SW_TYPE_BF16);

    /* Q4_K_M for 32 layers: layers 0-3 and 28-31 and every third from 6 */
    const int more[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    for (int il = 0; il < 32; il++) {
        bool want6 = false;
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
            want6 |= more[k] == il;
        char name[64];
        sw_type wanted;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", il);
        assert_int_equal(sw_model_quant_choose(name, 4096, SW_TYPE_Q4_K, true, 32, false, &wanted),
                         want6 ? SW_TYPE_Q6_K : SW_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", il);
        assert_int_equal(sw_model_quant_choose(name, 14336, SW_TYPE_Q4_K, true, 32, false, NULL),
                         want6 ? SW_TYPE_Q6_K : SW_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", il);
        assert_int_equal(sw_model_quant_choose(name, 4096, SW_TYPE_Q4_K, true, 32, false, NULL),
                         SW_TYPE_Q4_K);
    }
    assert_int_equal(sw_model_quant_choose("output.weight", 4096, SW_TYPE_Q4_K, true, 32, false, NULL),
                     SW_TYPE_Q6_K);
    assert_int_equal(sw_model_quant_choose("token_embd.weight", 4096, SW_TYPE_Q4_K, true, 32, false, NULL),
                     SW_TYPE_Q4_K);
    /* tied embeddings: token_embd is also the output, so q6_K (llama.cpp's rule);
     * with rows that do not fit 256-blocks it falls back to q8_0 */
    assert_int_equal(sw_model_quant_choose("token_embd.weight", 4096, SW_TYPE_Q4_K, true, 32, true,
                                           NULL),
                     SW_TYPE_Q6_K);
    assert_int_equal(sw_model_quant_choose("token_embd.weight", 896, SW_TYPE_Q4_K, true, 24, true,
                                           NULL),
                     SW_TYPE_Q8_0);
    assert_int_equal(sw_model_quant_choose("token_embd.weight", 4096, SW_TYPE_Q4_0, false, 32, true,
                                           NULL),
                     SW_TYPE_Q4_0);
    /* plain types apply everywhere; the mixture's q6_K falls back like any other */
    assert_int_equal(sw_model_quant_choose("output.weight", 4096, SW_TYPE_Q4_0, false, 32, false, NULL),
                     SW_TYPE_Q4_0);
    sw_type wanted;
    assert_int_equal(
        sw_model_quant_choose("blk.4.ffn_down.weight", 172, SW_TYPE_Q4_K, true, 5, false, &wanted),
        SW_TYPE_F16);
    assert_int_equal(wanted, SW_TYPE_Q6_K);
    /* llama.cpp file types */
    assert_int_equal(sw_model_file_type(SW_TYPE_Q4_K, true), 15);
    assert_int_equal(sw_model_file_type(SW_TYPE_Q4_0, false), 2);
    assert_int_equal(sw_model_file_type(SW_TYPE_Q8_0, false), 7);
    assert_int_equal(sw_model_file_type(SW_TYPE_F16, false), 1);
    assert_int_equal(sw_model_file_type(SW_TYPE_BF16, false), 32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),     cmocka_unit_test(test_vocab_only_files),
        cmocka_unit_test(test_valid_synthetic), cmocka_unit_test(test_missing_key),
        cmocka_unit_test(test_wrong_shape),     cmocka_unit_test(test_unsupported_type),
        cmocka_unit_test(test_bad_head_counts), cmocka_unit_test(test_key_length),
        cmocka_unit_test(test_unknown_arch),    cmocka_unit_test(test_qwen2_biases),
        cmocka_unit_test(test_tied_embeddings), cmocka_unit_test(test_vocab_from_embd),
        cmocka_unit_test(test_llama3_rope),     cmocka_unit_test(test_rope_scaling_kinds),
        cmocka_unit_test(test_quant_policy),    cmocka_unit_test(test_gemma3_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(g_zeros);
    return rc;
}
