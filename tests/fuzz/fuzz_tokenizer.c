/* fuzz_tokenizer.c — libFuzzer target for the tokenizers (SPM, byte-level BPE
 * with each pre-tokenizer regex, WordPiece) on arbitrary bytes, including
 * invalid UTF-8 and special-token text. Vocabularies come from
 * $SW_SHARED_DIR/models/vocab (the llama.cpp test vocabularies); without them
 * the target says so once and does nothing.
 *
 * Byte 0 picks the vocabulary and parse_special; the rest is the text.
 * Properties checked on every input:
 *   - tokenizing never fails on valid UTF-8, and every id is in the vocabulary;
 *   - the streaming detokenizer (what the server streams) produces exactly the
 *     bytes of the whole-sequence detokenizer (what it returns unstreamed)
 *     but for SPM's leading space, which only the latter drops;
 *   - SPM and BPE round-trip valid UTF-8 exactly (without parse_special:
 *     BOS + text -> text), except the vocabularies of no_roundtrip(). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_tokenizer: check failed: %s (vocab %s)\n", #c,          \
                    g_names[v]);                                                           \
            __builtin_trap();                                                              \
        }                                                                                  \
    } while (0)

static const char *k_vocabs[] = {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder",
                                 "falcon", "mpt", "starcoder", "dbrx", "bert-bge"};
#define N_VOCABS (sizeof k_vocabs / sizeof k_vocabs[0])
static sw_tokenizer *g_tok[N_VOCABS];
static const char *g_names[N_VOCABS];
static bool g_roundtrip[N_VOCABS];
static int g_n;

/* Vocabularies that cannot represent every text: WordPiece normalizes, and
 * these byte-level BPE vocabularies lack some of the 256 byte symbols (falcon:
 * 28, control bytes among them; mpt: 13, starcoder: 14), whose bytes are
 * dropped, as no token can carry them. */
static bool no_roundtrip(const char *name) {
    static const char *k[] = {"bert-bge", "falcon", "mpt", "starcoder"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(name, k[i])) return true;
    return false;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *shared = getenv("SW_SHARED_DIR");
    for (size_t i = 0; shared && i < N_VOCABS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/models/vocab/ggml-vocab-%s.gguf", shared, k_vocabs[i]);
        sw_gguf *g = NULL;
        sw_err err;
        if (sw_gguf_open_flags(path, SW_GGUF_ALLOW_REPEATED_KEYS, &g, &err) != SW_OK) continue;
        sw_tokenizer *t = NULL;
        if (sw_tokenizer_create(g, &t, &err) == SW_OK) {
            g_names[g_n] = k_vocabs[i];
            g_roundtrip[g_n] = !no_roundtrip(k_vocabs[i]);
            g_tok[g_n++] = t;
        } else {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err.msg);
        }
        sw_gguf_free(g);
    }
    if (!g_n)
        fprintf(stderr, "fuzz_tokenizer: no vocabulary under $SW_SHARED_DIR/models/vocab "
                        "(SW_SHARED_DIR=%s): nothing to fuzz\n", shared ? shared : "(unset)");
    return 0;
}

static bool utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        if (cp == 0) return false; /* C strings: a NUL ends the text for the detokenizer */
        i += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_n || size < 1) return 0;
    int v = (data[0] >> 1) % g_n;
    bool special = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const sw_tokenizer *t = g_tok[v];
    bool valid = utf8_valid((const unsigned char *)text, len);
    bool bos = sw_tokenizer_bos(t) >= 0 && sw_tokenizer_add_bos(t);
    int32_t *ids = NULL;
    size_t n = 0;
    sw_err err;
    sw_status st = sw_tokenize(t, text, len, bos, special, &ids, &n, &err);
    if (st != SW_OK) {
        CHECK(!valid); /* only invalid UTF-8 may be refused */
        CHECK(err.msg[0]);
        return 0;
    }
    int32_t nv = sw_tokenizer_n_vocab(t);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < nv);

    char *whole = NULL;
    CHECK(sw_detokenize(t, ids, n, special, &whole, &err) == SW_OK);
    if (valid && !special && g_roundtrip[v])
        CHECK(strlen(whole) == len && !memcmp(whole, text, len));
    /* Streaming (what the server sends for generated tokens, which never
     * start with BOS) == whole-sequence detokenization of the same ids, but
     * for one thing: the whole-sequence form drops the space SPM puts in
     * front of the text (as llama.cpp does), while a stream continues a
     * prompt and must keep it. */
    if (memchr(text, 0, len)) { /* both forms are C strings: a NUL byte ends them */
        free(whole);
        free(ids);
        return 0;
    }
    size_t b0 = n > 0 && ids[0] == sw_tokenizer_bos(t) ? 1 : 0;
    char *tail = NULL;
    CHECK(sw_detokenize(t, ids + b0, n - b0, special, &tail, &err) == SW_OK);
    sw_detok *d = sw_detok_create(t, special);
    CHECK(d != NULL);
    size_t cap = 3 * strlen(tail) + 64, used = 0;
    char *streamed = malloc(cap);
    CHECK(streamed != NULL);
    for (size_t i = b0; i <= n; i++) {
        const char *p = i < n ? sw_detok_push(d, ids[i]) : sw_detok_flush(d);
        size_t k = strlen(p);
        CHECK(used + k < cap);
        memcpy(streamed + used, p, k);
        used += k;
    }
    streamed[used] = 0;
    /* the stream is the whole text as valid UTF-8: U+FFFD per bad byte */
    char *clean = NULL;
    size_t n_clean = 0;
    CHECK(sw_utf8_sanitize(tail, strlen(tail), &clean, &n_clean, &err) == SW_OK);
    size_t skip = used == n_clean + 1 && streamed[0] == ' ' ? 1 : 0;
    CHECK(used - skip == n_clean && !memcmp(streamed + skip, clean, used - skip));
    free(clean);
    free(tail);
    sw_detok_free(d);
    free(streamed);
    free(whole);
    free(ids);
    return 0;
}
