/* test_tokenizer.c — tokenizer tests.
 *
 * Synthetic (always run): tiny SPM, BPE and WordPiece vocabs written with the
 * GGUF writer, checking merge order, byte fallback, special tokens, empty
 * input, bad ids, detokenization and the streaming detokenizer.
 *
 * Reference (need $SW_SHARED_DIR/models): every vocab/ggml-vocab-*.gguf with
 * .inp/.out vectors (llama.cpp's test-tokenizer-0 data, made with the HF
 * tokenizers, add_special=false, parse_special=false) must reproduce every
 * line; SPM/BPE vocabs must also detokenize back to the input. Plus
 * stories260K, special-token parsing on phi-3 and dbrx, streaming detok on
 * byte-fallback pieces, and the spillway-tokenize tool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf.h"
#include "sw_test.h"
#include "tokenizer.h"

/* ---- helpers ---- */

static const char *tmp_dir(void) {
    const char *d = getenv("SW_TMP_DIR");
    return d && *d ? d : "/tmp";
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* $SW_SHARED_DIR/models/<rel>, or NULL (after printing why) if unavailable. */
static char *shared_path(const char *rel) {
    const char *d = getenv("SW_SHARED_DIR");
    if (!d || !*d) {
        print_message("SKIP: SW_SHARED_DIR is not set, reference files unavailable\n");
        return NULL;
    }
    size_t n = strlen(d) + strlen(rel) + 16;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/models/%s", d, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        print_message("SKIP: %s is absent\n", p);
        free(p);
        return NULL;
    }
    return p;
}

static sw_tokenizer *load_tok(const char *path, sw_gguf **g) {
    sw_err err = {{0}};
    sw_tokenizer *t = NULL;
    *g = sw_test_open_vocab(path);
    sw_status s = sw_tokenizer_create(*g, &t, &err);
    if (s != SW_OK) print_error("%s\n", err.msg);
    assert_int_equal(s, SW_OK);
    return t;
}

static void tok(const sw_tokenizer *t, const char *text, bool bos, bool special, int32_t **ids,
                size_t *n) {
    sw_err err = {{0}};
    sw_status s = sw_tokenize(t, text, strlen(text), bos, special, ids, n, &err);
    if (s != SW_OK) print_error("%s\n", err.msg);
    assert_int_equal(s, SW_OK);
    assert_non_null(*ids);
}

static void expect_ids(const sw_tokenizer *t, const char *text, bool bos, bool special,
                       const int32_t *want, size_t nwant) {
    int32_t *ids;
    size_t n;
    tok(t, text, bos, special, &ids, &n);
    bool same = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    if (!same) {
        print_error("text '%s': expected", text);
        for (size_t i = 0; i < nwant; i++)
            print_error(" %d", (int)want[i]);
        print_error(", got");
        for (size_t i = 0; i < n; i++)
            print_error(" %d", (int)ids[i]);
        print_error("\n");
    }
    free(ids);
    assert_true(same);
}

static char *detok(const sw_tokenizer *t, const int32_t *ids, size_t n, bool special) {
    char *s = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_detokenize(t, ids, n, special, &s, &err), SW_OK);
    assert_non_null(s);
    return s;
}

static bool valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t k = *p < 0x80                  ? 1
                   : *p >= 0xC2 && *p <= 0xDF ? 2
                   : *p >= 0xE0 && *p <= 0xEF ? 3
                   : *p >= 0xF0 && *p <= 0xF4 ? 4
                                              : 0;
        if (!k) return false;
        for (size_t i = 1; i < k; i++)
            if ((p[i] & 0xC0) != 0x80) return false;
        p += k;
    }
    return true;
}

/* Push ids one by one: every chunk must be whole UTF-8, at least one push must
 * hold back (the caller picks text whose chars span several tokens), and the
 * concatenation must equal want. */
static void check_stream(const sw_tokenizer *t, const int32_t *ids, size_t n, const char *want) {
    sw_detok *d = sw_detok_create(t, false);
    assert_non_null(d);
    size_t cap = strlen(want) + 64, len = 0;
    char *acc = calloc(1, cap);
    assert_non_null(acc);
    int held = 0;
    for (size_t i = 0; i < n; i++) {
        char piece[64];
        size_t pn = sw_token_to_piece(t, ids[i], false, piece, sizeof piece);
        const char *chunk = sw_detok_push(d, ids[i]);
        assert_non_null(chunk);
        assert_true(valid_utf8(chunk));
        if (pn > 0 && strlen(chunk) < pn) held++;
        assert_true(len + strlen(chunk) < cap);
        memcpy(acc + len, chunk, strlen(chunk));
        len += strlen(chunk);
    }
    const char *rest = sw_detok_flush(d);
    assert_string_equal(rest, "");
    assert_true(held > 0);
    acc[len] = '\0';
    assert_string_equal(acc, want);
    free(acc);
    sw_detok_free(d);
}

/* ---- synthetic vocabularies ---- */

typedef struct synth_tok {
    const char *text;
    float score;
    int32_t type;
} synth_tok;

static char *write_vocab(const char *name, const char *model, const char *pre,
                         const synth_tok *toks, size_t n, const char *const *merges, size_t nm,
                         int32_t bos, int32_t eos, int32_t unk) {
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    const char **texts = malloc(n * sizeof *texts);
    float *scores = malloc(n * sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    assert_true(texts && scores && types);
    for (size_t i = 0; i < n; i++) {
        texts[i] = toks[i].text;
        scores[i] = toks[i].score;
        types[i] = toks[i].type;
    }
    assert_int_equal(sw_gguf_writer_set_str(w, "general.architecture", "llama"), SW_OK);
    assert_int_equal(sw_gguf_writer_set_str(w, "tokenizer.ggml.model", model), SW_OK);
    if (pre) assert_int_equal(sw_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, n), SW_OK);
    assert_int_equal(sw_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SW_GGUF_FLOAT32, scores, n),
                     SW_OK);
    assert_int_equal(
        sw_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", SW_GGUF_INT32, types, n), SW_OK);
    if (merges)
        assert_int_equal(sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, nm), SW_OK);
    if (bos >= 0)
        assert_int_equal(sw_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos),
                         SW_OK);
    if (eos >= 0)
        assert_int_equal(sw_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos),
                         SW_OK);
    if (unk >= 0)
        assert_int_equal(
            sw_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk), SW_OK);
    size_t plen = strlen(tmp_dir()) + strlen(name) + 32;
    char *path = malloc(plen);
    assert_non_null(path);
    snprintf(path, plen, "%s/tok_%s_%d.gguf", tmp_dir(), name, (int)getpid());
    sw_err err = {{0}};
    sw_status s = sw_gguf_writer_write(w, path, &err);
    if (s != SW_OK) print_error("%s\n", err.msg);
    assert_int_equal(s, SW_OK);
    sw_gguf_writer_free(w);
    free(texts);
    free(scores);
    free(types);
    return path;
}

/* SPM: <unk> <s> </s>, 256 byte tokens (ids 3..258), then pieces. */
#define SPM_BYTE(b) (3 + (b))
enum { SPM_SP = 259, SPM_A, SPM_B, SPM_C, SPM_SP_A, SPM_AB, SPM_HI, SPM_SP_HI, SPM_USER, SPM_N };

static char *write_spm(float score_sp_a, float score_ab) {
    static char names[256][7];
    synth_tok toks[SPM_N];
    toks[0] = (synth_tok){"<unk>", 0, 2};
    toks[1] = (synth_tok){"<s>", 0, 3};
    toks[2] = (synth_tok){"</s>", 0, 3};
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        toks[SPM_BYTE(b)] = (synth_tok){names[b], 0, 6};
    }
    toks[SPM_SP] = (synth_tok){"\xE2\x96\x81", -5, 1};
    toks[SPM_A] = (synth_tok){"a", -6, 1};
    toks[SPM_B] = (synth_tok){"b", -6, 1};
    toks[SPM_C] = (synth_tok){"c", -6, 1};
    toks[SPM_SP_A] = (synth_tok){"\xE2\x96\x81"
                                 "a",
                                 score_sp_a, 1};
    toks[SPM_AB] = (synth_tok){"ab", score_ab, 1};
    toks[SPM_HI] = (synth_tok){"hi", -3, 1};
    toks[SPM_SP_HI] = (synth_tok){"\xE2\x96\x81hi", -2, 1};
    toks[SPM_USER] = (synth_tok){"<|user|>", 0, 3};
    /* no "h"/"i" pieces: alone they fall back to bytes; together they merge */
    return write_vocab("spm", "llama", NULL, toks, SPM_N, NULL, 0, 1, 2, 0);
}

static void test_spm_synthetic(void **state) {
    (void)state;
    /* "▁a" scores higher than "ab": " ab" -> ▁a + b */
    char *p1 = write_spm(-1.0f, -2.0f);
    sw_gguf *g1;
    sw_tokenizer *t1 = load_tok(p1, &g1);
    const int32_t want1[] = {SPM_SP_A, SPM_B};
    expect_ids(t1, "ab", false, false, want1, 2);
    /* BOS from metadata; add_bos defaults to true for SPM */
    assert_int_equal(sw_tokenizer_bos(t1), 1);
    assert_true(sw_tokenizer_add_bos(t1));
    const int32_t want1b[] = {1, SPM_SP_A, SPM_B};
    expect_ids(t1, "ab", true, false, want1b, 3);
    /* "ab" scores higher: -> ▁ + ab */
    char *p2 = write_spm(-2.0f, -1.0f);
    sw_gguf *g2;
    sw_tokenizer *t2 = load_tok(p2, &g2);
    const int32_t want2[] = {SPM_SP, SPM_AB};
    expect_ids(t2, "ab", false, false, want2, 2);

    /* byte fallback: 'é' (C3 A9) is not a piece */
    const int32_t want3[] = {SPM_SP, SPM_BYTE(0xC3), SPM_BYTE(0xA9), SPM_C};
    expect_ids(t1,
               "\xC3\xA9"
               "c",
               false, false, want3, 4);
    /* spaces become U+2581; a leading space adds to the prefix one */
    const int32_t want4[] = {SPM_SP, SPM_SP_HI, SPM_SP, SPM_C};
    expect_ids(t1, " hi c", false, false, want4, 4);

    /* special tokens: only with parse_special; text after them gets the prefix */
    const int32_t want5[] = {SPM_USER, SPM_SP_HI};
    expect_ids(t1, "<|user|>hi", false, true, want5, 2);
    int32_t *ids;
    size_t n;
    tok(t1, "<|user|>hi", false, false, &ids, &n);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], SPM_USER);
    free(ids);

    /* detokenize: the prefix space goes, bytes are reassembled */
    const char *text = "hi \xC3\xA9 c";
    tok(t1, text, true, false, &ids, &n);
    char *s = detok(t1, ids, n, false);
    assert_string_equal(s, text);
    free(s);
    s = detok(t1, ids, n, true);
    assert_string_equal(s, "<s>hi \xC3\xA9 c");
    free(s);
    /* streaming: the two byte tokens of é come out together */
    check_stream(t1, ids + 1, n - 1, " hi \xC3\xA9 c");
    free(ids);

    /* control tokens render only on request */
    char buf[16];
    assert_int_equal(sw_token_to_piece(t1, 2, false, buf, sizeof buf), 0);
    assert_int_equal(sw_token_to_piece(t1, 2, true, buf, sizeof buf), 4);
    assert_memory_equal(buf, "</s>", 4);
    assert_int_equal(sw_token_to_piece(t1, SPM_SP_HI, false, buf, sizeof buf), 3);
    assert_memory_equal(buf, " hi", 3);
    /* small buffer: returns the needed size, writes what fits */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(sw_token_to_piece(t1, SPM_SP_HI, false, buf, 1), 3);
    assert_int_equal(buf[0], ' ');
    assert_int_equal(buf[1], 'x');
    assert_true(sw_tokenizer_is_eog(t1, 2));
    assert_false(sw_tokenizer_is_eog(t1, SPM_A));
    assert_int_equal(sw_tokenizer_find(t1, "ab", 2), SPM_AB);
    assert_int_equal(sw_tokenizer_find(t1, "zz", 2), -1);
    assert_string_equal(sw_tokenizer_token_text(t1, SPM_SP_HI), "\xE2\x96\x81hi");

    sw_tokenizer_free(t1);
    sw_tokenizer_free(t2);
    sw_gguf_free(g1);
    sw_gguf_free(g2);
    remove(p1);
    remove(p2);
    free(p1);
    free(p2);
}

/* GPT-2 byte-to-unicode mapping (so the test can name byte-level tokens). */
static void byte_char(int b, char out[3]) {
    static int map[256];
    static bool init;
    if (!init) {
        int next = 256;
        for (int i = 0; i < 256; i++) {
            bool keep = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
            map[i] = keep ? i : next++;
        }
        init = true;
    }
    int cp = map[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* BPE: ids 0..255 are the byte-level chars in byte order, then merges' results
 * and two special tokens. */
enum { BPE_HE = 256, BPE_GT, BPE_GTHE, BPE_TH, BPE_EOT, BPE_USERDEF, BPE_N };

static char *write_bpe(void) {
    static char chars[256][3];
    synth_tok toks[BPE_N];
    for (int b = 0; b < 256; b++) {
        byte_char(b, chars[b]);
        toks[b] = (synth_tok){chars[b], 0, 1};
    }
    toks[BPE_HE] = (synth_tok){"he", 0, 1};
    toks[BPE_GT] = (synth_tok){"\xC4\xA0t", 0, 1}; /* "Ġt" */
    toks[BPE_GTHE] = (synth_tok){"\xC4\xA0the", 0, 1};
    toks[BPE_TH] = (synth_tok){"th", 0, 1};
    toks[BPE_EOT] = (synth_tok){"<|endoftext|>", 0, 3};
    toks[BPE_USERDEF] = (synth_tok){"  ", 0, 4}; /* added token: two spaces */
    /* rank order: "h e" before "t h", so "the" -> t + he */
    static const char *const merges[] = {"h e", "\xC4\xA0 t", "\xC4\xA0t he", "t h"};
    return write_vocab("bpe", "gpt2", "gpt-2", toks, BPE_N, merges, 4, BPE_EOT, BPE_EOT, -1);
}

static void test_bpe_synthetic(void **state) {
    (void)state;
    char *p = write_bpe();
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    assert_int_equal(sw_tokenizer_n_vocab(t), BPE_N);
    assert_false(sw_tokenizer_add_bos(t)); /* BPE default */
    /* "the the" -> pre-tokens "the", " the": lower rank merges first */
    const int32_t want1[] = {'t', BPE_HE, BPE_GTHE};
    expect_ids(t, "the the", false, false, want1, 3);
    /* the pre-tokenizer keeps letters, digits and punctuation apart */
    const int32_t want2[] = {'t', '1', '!', BPE_GTHE};
    expect_ids(t, "t1! the", false, false, want2, 4);
    /* special token: parsed only with parse_special; EOS/EOT from metadata */
    const int32_t want3[] = {BPE_HE, BPE_EOT};
    expect_ids(t, "he<|endoftext|>", false, true, want3, 2);
    int32_t *ids;
    size_t n;
    tok(t, "he<|endoftext|>", false, false, &ids, &n);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], BPE_EOT);
    free(ids);
    assert_int_equal(sw_tokenizer_eos(t), BPE_EOT);
    assert_int_equal(sw_tokenizer_eot(t), BPE_EOT);
    assert_true(sw_tokenizer_is_eog(t, BPE_EOT));
    /* user-defined tokens are split out even without parse_special */
    const int32_t want4[] = {BPE_HE, BPE_USERDEF, BPE_HE};
    expect_ids(t, "he  he", false, false, want4, 3);

    /* non-ASCII: é is two byte-level chars, no merges */
    const int32_t want5[] = {0xC3, 0xA9};
    expect_ids(t, "\xC3\xA9", false, false, want5, 2);
    /* invalid UTF-8 is replaced by U+FFFD before splitting */
    const int32_t want6[] = {0xEF, 0xBF, 0xBD};
    expect_ids(t, "\xFF", false, false, want6, 3);

    /* round trip and streaming (é and 你 span several tokens) */
    const char *text = "the caf\xC3\xA9 \xE4\xBD\xA0 the  end";
    tok(t, text, false, false, &ids, &n);
    char *s = detok(t, ids, n, false);
    assert_string_equal(s, text);
    free(s);
    check_stream(t, ids, n, text);
    free(ids);
    /* render_special shows control tokens */
    const int32_t seq[] = {BPE_HE, BPE_EOT};
    s = detok(t, seq, 2, false);
    assert_string_equal(s, "he");
    free(s);
    s = detok(t, seq, 2, true);
    assert_string_equal(s, "he<|endoftext|>");
    free(s);

    sw_tokenizer_free(t);
    sw_gguf_free(g);
    remove(p);
    free(p);
}

/* Every supported tokenizer.ggml.pre compiles, splits text without losing a
 * byte, and (for Llama 3) keeps a whole pre-token that is a vocab entry. */
static void test_pre_tokenizers(void **state) {
    (void)state;
    static const char *const pres[] = {
        "default",        "llama3",      "llama-bpe", "dbrx",      "smaug-bpe",  "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "falcon",    "starcoder", "refact",     "command-r",
        "gpt-2",          "mpt",         "olmo",      "qwen2",     "stablelm2",  "poro-chat",
        "bloom",          "viking",      "tekken",    "gpt-4o",    "chatglm-bpe"};
    static char chars[256][3];
    synth_tok toks[258];
    for (int b = 0; b < 256; b++) {
        byte_char(b, chars[b]);
        toks[b] = (synth_tok){chars[b], 0, 1};
    }
    toks[256] = (synth_tok){"abc", 0, 1}; /* reachable only without merges */
    toks[257] = (synth_tok){"<|endoftext|>", 0, 3};
    static const char *const merges[] = {"x y"};
    const char *text = "Hello, y'all! I'VE 12345 abc  \t\n\n caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD"
                       " \xD0\xBD\xD0\xB5 \xF0\x9F\xA6\x99 ...   x";
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        char *p = write_vocab("pre", "gpt2", pres[i], toks, 258, merges, 1, 257, 257, -1);
        sw_gguf *g;
        sw_tokenizer *t = load_tok(p, &g);
        int32_t *ids;
        size_t n;
        tok(t, text, false, false, &ids, &n);
        char *back = detok(t, ids, n, false);
        if (strcmp(back, text) != 0) print_error("pre '%s': got back '%s'\n", pres[i], back);
        assert_string_equal(back, text);
        free(back);
        free(ids);
        tok(t, "abc", false, false, &ids, &n);
        bool whole = !strcmp(pres[i], "llama3") || !strcmp(pres[i], "llama-bpe") ||
                     !strcmp(pres[i], "tekken");
        if (whole) {
            assert_int_equal(n, 1);
            assert_int_equal(ids[0], 256);
            assert_true(sw_tokenizer_add_bos(t));
        } else {
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], 'a');
        }
        free(ids);
        if (!strcmp(pres[i], "chatglm-bpe")) assert_int_equal(sw_tokenizer_bos(t), 257);
        sw_tokenizer_free(t);
        sw_gguf_free(g);
        remove(p);
        free(p);
    }
}

static void test_wpm_synthetic(void **state) {
    (void)state;
    static const synth_tok toks[] = {
        {"[PAD]", 0, 3},
        {"[UNK]", 0, 3},
        {"[CLS]", 0, 3},
        {"[SEP]", 0, 3},
        {"\xE2\x96\x81hello", 0, 1},
        {"\xE2\x96\x81un", 0, 1},
        {"aff", 0, 1},
        {"able", 0, 1},
        {"\xE2\x96\x81!", 0, 1},
        {"\xE2\x96\x81"
         "cafe",
         0, 1},
    };
    char *p = write_vocab("wpm", "bert", "bert-bge", toks, sizeof toks / sizeof toks[0], NULL, 0, 2,
                          -1, 1);
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    /* lowercase, accents stripped, punctuation split, ## pieces, [UNK] word */
    const int32_t want[] = {4, 5, 6, 7, 8, 9, 1};
    expect_ids(t, "HELLO unaffable! Caf\xC3\xA9 unknownword", false, false, want, 7);
    int32_t *ids;
    size_t n;
    tok(t, "", false, false, &ids, &n);
    assert_int_equal(n, 0);
    free(ids);
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    remove(p);
    free(p);
}

/* Rewrite the vocab file at path with extra keys (set_* calls done by fn). */
static void rewrite_vocab(const char *path, void (*fn)(sw_gguf_writer *w, void *arg), void *arg) {
    sw_err err = {{0}};
    sw_gguf *g;
    assert_int_equal(sw_gguf_open(path, &g, &err), SW_OK);
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    for (int64_t i = 0; i < sw_gguf_n_kv(g); i++)
        assert_int_equal(sw_gguf_writer_copy_kv(w, g, i), SW_OK);
    sw_gguf_free(g);
    fn(w, arg);
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_OK);
    sw_gguf_writer_free(w);
}

typedef struct input_keys {
    int32_t sep, eos; /* -1: key not written */
    int add_eos, add_sep; /* -1: key not written */
} input_keys;

static void set_input_keys(sw_gguf_writer *w, void *arg) {
    const input_keys *k = arg;
    if (k->sep >= 0)
        assert_int_equal(
            sw_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", (uint32_t)k->sep), SW_OK);
    if (k->eos >= 0)
        assert_int_equal(
            sw_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)k->eos), SW_OK);
    if (k->add_eos >= 0)
        assert_int_equal(sw_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", k->add_eos),
                         SW_OK);
    if (k->add_sep >= 0)
        assert_int_equal(sw_gguf_writer_set_bool(w, "tokenizer.ggml.add_sep_token", k->add_sep),
                         SW_OK);
}

/* A whole model input: [CLS] text [SEP] for WordPiece by default; EOS and SEP
 * as the vocab's add_eos/add_sep keys say, SEP once when it is also the EOS
 * (what gguf's SpecialVocab writes for BERT: eos = [SEP], add_eos). */
static void test_tokenize_input(void **state) {
    (void)state;
    static const synth_tok toks[] = {
        {"[PAD]", 0, 3}, {"[UNK]", 0, 3}, {"[CLS]", 0, 3}, {"[SEP]", 0, 3},
        {"\xE2\x96\x81hello", 0, 1}, {"\xE2\x96\x81!", 0, 1},
    };
    static const struct {
        input_keys k;
        int32_t want[5];
        size_t n;
    } cases[] = {
        {{3, -1, -1, -1}, {2, 4, 5, 3}, 4},  /* WordPiece default: add SEP */
        {{3, 3, 1, 0}, {2, 4, 5, 3}, 4},     /* SpecialVocab's BERT keys */
        {{3, 3, 1, 1}, {2, 4, 5, 3}, 4},     /* SEP is the EOS: once */
        {{3, 0, 1, 1}, {2, 4, 5, 0, 3}, 5},  /* EOS, then SEP */
        {{3, -1, -1, 0}, {2, 4, 5}, 3},      /* asked not to */
        {{-1, -1, -1, -1}, {2, 4, 5}, 3},    /* no SEP in this vocab (102 >= n_vocab) */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *p = write_vocab("wpmin", "bert", NULL, toks, sizeof toks / sizeof toks[0], NULL, 0,
                              2, -1, 1);
        input_keys k = cases[c].k;
        rewrite_vocab(p, set_input_keys, &k);
        sw_gguf *g;
        sw_tokenizer *t = load_tok(p, &g);
        int32_t *ids = NULL;
        size_t n = 0;
        sw_err err = {{0}};
        assert_int_equal(sw_tokenize_input(t, "Hello!", 6, &ids, &n, &err), SW_OK);
        if (n != cases[c].n || memcmp(ids, cases[c].want, n * sizeof *ids) != 0) {
            print_error("case %zu: got", c);
            for (size_t i = 0; i < n; i++) print_error(" %d", (int)ids[i]);
            print_error("\n");
            fail();
        }
        assert_int_equal(sw_tokenizer_sep(t), k.sep >= 0 ? 3 : -1);
        free(ids);
        sw_tokenizer_free(t);
        sw_gguf_free(g);
        remove(p);
        free(p);
    }
    /* SPM: BOS only (add_bos default), no tail */
    char *p = write_spm(-1.0f, -2.0f);
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    int32_t *ids = NULL;
    size_t n = 0;
    sw_err err = {{0}};
    assert_int_equal(sw_tokenize_input(t, "", 0, &ids, &n, &err), SW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    free(ids);
    assert_int_equal(sw_tokenize_input(NULL, "", 0, &ids, &n, &err), SW_E_INVALID_ARG);
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    remove(p);
    free(p);
}

static void test_edge_cases(void **state) {
    (void)state;
    char *p = write_spm(-1.0f, -2.0f);
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    int32_t *ids = NULL;
    size_t n = 99;
    sw_err err = {{0}};
    /* empty input: no tokens (SPM adds no lone prefix), but BOS if asked */
    assert_int_equal(sw_tokenize(t, "", 0, false, false, &ids, &n, &err), SW_OK);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(sw_tokenize(t, NULL, 0, true, false, &ids, &n, &err), SW_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 1);
    free(ids);
    char *s = detok(t, NULL, 0, false);
    assert_string_equal(s, "");
    free(s);
    /* bad ids */
    char buf[8];
    assert_int_equal(sw_token_to_piece(t, -1, true, buf, sizeof buf), 0);
    assert_int_equal(sw_token_to_piece(t, SPM_N, true, buf, sizeof buf), 0);
    assert_null(sw_tokenizer_token_text(t, -1));
    assert_null(sw_tokenizer_token_text(t, SPM_N));
    assert_false(sw_tokenizer_is_eog(t, -1));
    assert_false(sw_tokenizer_is_eog(t, 1 << 30));
    const int32_t bad[] = {SPM_A, SPM_N + 5};
    s = NULL;
    assert_int_equal(sw_detokenize(t, bad, 2, false, &s, &err), SW_E_RANGE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "id"));
    sw_detok *d = sw_detok_create(t, false);
    assert_non_null(d);
    assert_string_equal(sw_detok_push(d, -7), "");
    assert_string_equal(sw_detok_push(d, SPM_N), "");
    /* the piece view: the same bytes, no copy; NULL for a bad id */
    size_t pn = 99;
    const char *pv = sw_token_piece(t, SPM_SP_A, &pn);
    assert_true(pv && pn == 2 && !memcmp(pv, " a", 2));
    assert_null(sw_token_piece(t, SPM_N, &pn));
    assert_int_equal(pn, 0);
    /* <0x00> is no text: it renders as nothing, and the bytes after it are kept */
    assert_int_equal(sw_token_to_piece(t, SPM_BYTE(0x00), false, buf, sizeof buf), 0);
    const int32_t nul[] = {SPM_A, SPM_BYTE(0x00), SPM_A};
    s = NULL;
    assert_int_equal(sw_detokenize(t, nul, 3, false, &s, &err), SW_OK);
    assert_string_equal(s, "aa");
    free(s);
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0x00)), "");
    assert_string_equal(sw_detok_push(d, SPM_A), "a");
    /* a lone lead byte is held; at the end (max tokens, a stop, a cancel) it
     * never completes and comes out as U+FFFD, never as a bare byte */
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0xE4)), "");
    assert_string_equal(sw_detok_flush(d), "\xEF\xBF\xBD");
    assert_string_equal(sw_detok_flush(d), "");
    /* two of a 4-byte emoji's bytes, then the end: U+FFFD per byte */
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0xF0)), "");
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0x9F)), "");
    assert_string_equal(sw_detok_flush(d), "\xEF\xBF\xBD\xEF\xBF\xBD");
    /* a lead byte followed by ASCII is invalid: U+FFFD, not held forever */
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0xC3)), "");
    assert_string_equal(sw_detok_push(d, SPM_A), "\xEF\xBF\xBD"
                                                 "a");
    /* a stray continuation byte and a byte no UTF-8 uses: U+FFFD each */
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0x80)), "\xEF\xBF\xBD");
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0xFF)), "\xEF\xBF\xBD");
    /* a character split over byte tokens still comes out whole */
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0xD5)), "");
    assert_string_equal(sw_detok_push(d, SPM_BYTE(0xA1)), "\xD5\xA1");
    assert_string_equal(sw_detok_flush(d), "");
    sw_detok_free(d);
    sw_detok_free(NULL);
    sw_tokenizer_free(NULL);
    /* NULL arguments */
    assert_int_equal(sw_tokenize(t, NULL, 3, false, false, &ids, &n, &err), SW_E_INVALID_ARG);
    assert_int_equal(sw_tokenizer_create(NULL, &t, &err), SW_E_INVALID_ARG);
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    remove(p);
    free(p);
}

static void expect_create_error(sw_gguf_writer *w, sw_status want, const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/tok_bad_%d.gguf", tmp_dir(), (int)getpid());
    sw_err err = {{0}};
    assert_int_equal(sw_gguf_writer_write(w, path, &err), SW_OK);
    sw_gguf *g = NULL;
    assert_int_equal(sw_gguf_open(path, &g, &err), SW_OK);
    sw_tokenizer *t = (sw_tokenizer *)&err; /* must be reset to NULL */
    sw_status s = sw_tokenizer_create(g, &t, &err);
    if (s != want || !strstr(err.msg, needle))
        print_error("status %d, message '%s' (wanted %d, '%s')\n", s, err.msg, want, needle);
    assert_int_equal(s, want);
    assert_null(t);
    assert_non_null(strstr(err.msg, needle));
    sw_gguf_free(g);
    remove(path);
}

static void test_bad_models(void **state) {
    (void)state;
    static const char *const toks[] = {"a", "b", "ab"};
    sw_gguf_writer *w = sw_gguf_writer_create();
    assert_non_null(w);
    assert_int_equal(sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3), SW_OK);
    expect_create_error(w, SW_E_NOT_FOUND, "tokenizer.ggml.model");
    assert_int_equal(sw_gguf_writer_set_str(w, "tokenizer.ggml.model", "klingon"), SW_OK);
    expect_create_error(w, SW_E_UNSUPPORTED, "klingon");
    assert_int_equal(sw_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"), SW_OK);
    expect_create_error(w, SW_E_NOT_FOUND, "tokenizer.ggml.merges");
    static const char *const merges[] = {"a b"};
    assert_int_equal(sw_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1), SW_OK);
    assert_int_equal(sw_gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre"), SW_OK);
    expect_create_error(w, SW_E_UNSUPPORTED, "no-such-pre");
    assert_int_equal(sw_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2"), SW_OK);
    const float few[] = {0.0f};
    assert_int_equal(sw_gguf_writer_set_arr(w, "tokenizer.ggml.scores", SW_GGUF_FLOAT32, few, 1),
                     SW_OK);
    expect_create_error(w, SW_E_FORMAT, "tokenizer.ggml.scores");
    assert_int_equal(sw_gguf_writer_remove_key(w, "tokenizer.ggml.scores"), SW_OK);
    assert_int_equal(sw_gguf_writer_set_u32(w, "tokenizer.ggml.tokens", 5), SW_OK);
    expect_create_error(w, SW_E_FORMAT, "tokenizer.ggml.tokens");
    sw_gguf_writer_free(w);
}

/* ---- reference vectors ---- */

typedef struct vec_result {
    int pass, total, rt_pass, rt_total;
} vec_result;

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    print_message("      %s:", what);
    for (size_t i = 0; i < n; i++)
        print_message(" %d", (int)ids[i]);
    print_message("\n");
}

/* Run one vocab's vectors; returns false if any line mismatched. */
static bool run_vectors(const char *gguf_path, const char *name, vec_result *r) {
    size_t plen = strlen(gguf_path) + 8, inlen, outlen;
    char *pin = malloc(plen), *pout = malloc(plen);
    assert_true(pin && pout);
    snprintf(pin, plen, "%s.inp", gguf_path);
    snprintf(pout, plen, "%s.out", gguf_path);
    char *in = sw_test_read_file(pin, &inlen), *out = sw_test_read_file(pout, &outlen);
    assert_non_null(in);
    assert_non_null(out);
    sw_gguf *g;
    sw_tokenizer *t = load_tok(gguf_path, &g);
    /* SPM and byte-level BPE are lossless; WordPiece lowercases and drops */
    const char *wpm = strstr(name, "bert");
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *cur = in, *line = out;
    int shown = 0;
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = strstr(cur, sep);
        if (!end) break;
        *end = '\0';
        char *nl = strchr(line, '\n');
        if (!nl) {
            print_error("%s: .out has fewer lines than .inp has tests\n", name);
            r->total++;
            break;
        }
        *nl = '\0';
        /* expected ids */
        int32_t want[512];
        size_t nwant = 0;
        for (char *q = line; *q;) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q) break;
            assert_true(nwant < 512);
            want[nwant++] = (int32_t)v;
            q = e;
        }
        int32_t *ids;
        size_t n;
        tok(t, cur, false, false, &ids, &n);
        r->total++;
        if (n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0)) {
            r->pass++;
        } else if (shown++ < 3) {
            print_message("    %s mismatch on test %d, input '%s'\n", name, r->total - 1, cur);
            print_ids("expected", want, nwant);
            print_ids("got     ", ids, n);
        }
        if (!wpm) {
            char *s = detok(t, ids, n, false);
            r->rt_total++;
            if (strcmp(s, cur) == 0)
                r->rt_pass++;
            else if (shown++ < 3)
                print_message("    %s: detokenize gave '%s' for '%s'\n", name, s, cur);
            free(s);
        }
        free(ids);
        cur = end + strlen(sep);
        line = nl + 1;
    }
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    free(in);
    free(out);
    free(pin);
    free(pout);
    return r->pass == r->total && r->rt_pass == r->rt_total && r->total > 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_reference_vectors(void **state) {
    (void)state;
    char *dir = shared_path("vocab");
    if (!dir) {
        skip();
        return;
    }
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[128];
    size_t nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 128) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "ggml-vocab-", 11) == 0 && l > 9 &&
            strcmp(e->d_name + l - 9, ".gguf.inp") == 0)
            names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < nn; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(strlen(names[i]) - 4), names[i]);
        char outp[1100];
        snprintf(outp, sizeof outp, "%s.out", path);
        const char *vname = names[i] + 11;
        int vlen = (int)(strlen(vname) - 9);
        if (!file_exists(path) || !file_exists(outp)) {
            print_message("  %-16.*s skipped: vectors without a vocab GGUF (too large to ship)\n",
                          vlen, vname);
            free(names[i]);
            continue;
        }
        vec_result r;
        char vn[64];
        snprintf(vn, sizeof vn, "%.*s", vlen, vname);
        bool ok = run_vectors(path, vn, &r);
        ran++;
        print_message("  %-16s %d/%d passed", vn, r.pass, r.total);
        if (r.rt_total) print_message(", round trip %d/%d", r.rt_pass, r.rt_total);
        print_message("%s\n", ok ? "" : "  <-- FAIL");
        if (!ok) failed++;
        free(names[i]);
    }
    free(dir);
    print_message("  %d vocabs checked, %d failed\n", ran, failed);
    assert_true(ran > 0);
    assert_int_equal(failed, 0);
}

static void test_stories260k(void **state) {
    (void)state;
    char *p = shared_path("stories260K.gguf");
    if (!p) {
        skip();
        return;
    }
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    assert_int_equal(sw_tokenizer_n_vocab(t), 512);
    assert_true(sw_tokenizer_add_bos(t));
    const int32_t want[] = {1, 403, 407, 261, 378};
    expect_ids(t, "Once upon a time", true, false, want, 5);
    char *s = detok(t, want, 5, false);
    assert_string_equal(s, "Once upon a time");
    free(s);
    /* 512 pieces cannot hold CJK: every char is byte tokens, streamed whole */
    const char *text = "a \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\xA6\x99!";
    int32_t *ids;
    size_t n;
    tok(t, text, false, false, &ids, &n);
    assert_true(n >= 10);
    char *back = detok(t, ids, n, false);
    assert_string_equal(back, text);
    free(back);
    check_stream(t, ids, n, " a \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\xA6\x99!");
    free(ids);
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    free(p);
}

static void test_special_phi3(void **state) {
    (void)state;
    char *p = shared_path("vocab/ggml-vocab-phi-3.gguf");
    if (!p) {
        skip();
        return;
    }
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    const int32_t user[] = {32010};
    expect_ids(t, "<|user|>", false, true, user, 1);
    /* Phi-3's added tokens eat the whitespace after them (rstrip) */
    const int32_t chat[] = {1, 32010, 15043, 32007, 32001};
    expect_ids(t, "<|user|>\nHello<|end|>\n<|assistant|>", true, true, chat, 5);
    /* without parse_special the text is plain text */
    int32_t *ids;
    size_t n;
    tok(t, "<|user|>", false, false, &ids, &n);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] < 32000);
    char *s = detok(t, ids, n, false);
    assert_string_equal(s, "<|user|>");
    free(s);
    free(ids);
    assert_int_equal(sw_tokenizer_eos(t), 32000);
    assert_int_equal(sw_tokenizer_eot(t), 32007);
    assert_true(sw_tokenizer_is_eog(t, 32007));
    assert_true(sw_tokenizer_is_eog(t, 32000));
    assert_false(sw_tokenizer_is_eog(t, 32010));
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    free(p);
}

static void test_special_dbrx(void **state) {
    (void)state;
    char *p = shared_path("vocab/ggml-vocab-dbrx.gguf");
    if (!p) {
        skip();
        return;
    }
    sw_gguf *g;
    sw_tokenizer *t = load_tok(p, &g);
    const int32_t want[] = {100278, 882, 198, 13347, 100279};
    expect_ids(t, "<|im_start|>user\nHi<|im_end|>", false, true, want, 5);
    int32_t *ids;
    size_t n;
    tok(t, "<|im_start|>", false, false, &ids, &n);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 100278);
    free(ids);
    assert_true(sw_tokenizer_is_eog(t, 100279)); /* <|im_end|> */
    char *s = detok(t, want, 5, true);
    assert_string_equal(s, "<|im_start|>user\nHi<|im_end|>");
    free(s);
    s = detok(t, want, 5, false);
    assert_string_equal(s, "user\nHi");
    free(s);
    /* the BPE byte tokens of an emoji stream out as one character */
    const char *text = "ok \xF0\x9F\xA6\x99\xF0\x9F\xA6\x99 \xE4\xBD\xA0";
    tok(t, text, false, false, &ids, &n);
    check_stream(t, ids, n, text);
    free(ids);
    sw_tokenizer_free(t);
    sw_gguf_free(g);
    free(p);
}

/* ---- the command-line tool ---- */

static int run_cmd(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_tool(void **state) {
    (void)state;
    const char *bin = getenv("SW_BIN_DIR");
    char exe[1024];
    snprintf(exe, sizeof exe, "%s/spillway-tokenize", bin ? bin : "");
    if (!bin || !file_exists(exe)) {
        print_message("SKIP: spillway-tokenize not found (SW_BIN_DIR unset or not built)\n");
        skip();
        return;
    }
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' 2>/dev/null", exe);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' -m /nonexistent.gguf -p hi 2>/dev/null", exe);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 1);
    snprintf(cmd, sizeof cmd, "'%s' -m x -p hi --bogus 2>/dev/null", exe);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 2);

    char *p = write_spm(-1.0f, -2.0f);
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -p 'ab' --add-bos", exe, p);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    char want[64];
    snprintf(want, sizeof want, "1 %d %d\n", SPM_SP_A, SPM_B);
    assert_string_equal(out, want);
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -p '<|user|>hi' --parse-special --show-pieces", exe, p);
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    snprintf(want, sizeof want, "%d '<|user|>'\n%d ' hi'\n", SPM_USER, SPM_SP_HI);
    assert_string_equal(out, want);
    remove(p);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_synthetic),
        cmocka_unit_test(test_bpe_synthetic),
        cmocka_unit_test(test_wpm_synthetic),
        cmocka_unit_test(test_tokenize_input),
        cmocka_unit_test(test_pre_tokenizers),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_special_phi3),
        cmocka_unit_test(test_special_dbrx),
        cmocka_unit_test(test_tool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
