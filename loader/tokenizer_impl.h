/* tokenizer_impl.h — internals shared by the tokenizer's source files
 * (tokenizer.c: construction from GGUF, special-token splitting, dispatch;
 * tokenizer_detok.c: pieces and detokenization; tokenizer_spm.c, _bpe.c, _wpm.c:
 * the three algorithms; tokenizer_util.c: string table, hash maps, heap, UTF-8;
 * tokenizer_unicode.c + tokenizer_unicode_data.c: Unicode tables for WordPiece).
 * Not a public header: only loader/tokenizer*.c include it. */
#ifndef SW_TOKENIZER_IMPL_H
#define SW_TOKENIZER_IMPL_H

#include "tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef enum sw_tok_type { SW_TOK_SPM = 0, SW_TOK_BPE, SW_TOK_WPM } sw_tok_type;

/* GGUF tokenizer.ggml.token_type values. */
enum {
    SW_TOKTYPE_UNDEFINED = 0,
    SW_TOKTYPE_NORMAL = 1,
    SW_TOKTYPE_UNKNOWN = 2,
    SW_TOKTYPE_CONTROL = 3,
    SW_TOKTYPE_USER_DEFINED = 4,
    SW_TOKTYPE_UNUSED = 5,
    SW_TOKTYPE_BYTE = 6,
};

/* Per-token attribute bits (a token may carry several after the fix-ups that
 * mirror llama.cpp, e.g. a user-defined "<|im_end|>" also becomes CONTROL). */
enum {
    SW_TATTR_NORMAL = 1u << 0,
    SW_TATTR_UNKNOWN = 1u << 1,
    SW_TATTR_CONTROL = 1u << 2,
    SW_TATTR_USER_DEFINED = 1u << 3,
    SW_TATTR_UNUSED = 1u << 4,
    SW_TATTR_BYTE = 1u << 5,
    SW_TATTR_LSTRIP = 1u << 6, /* eat whitespace left of the special token */
    SW_TATTR_RSTRIP = 1u << 7, /* eat whitespace right of the special token */
};

/* ---- growable int32 vector ---- */
typedef struct sw_tok_vec {
    int32_t *v;
    size_t n, cap;
} sw_tok_vec;
sw_status sw_tok_vec_push(sw_tok_vec *a, int32_t x, sw_err *err);

/* ---- string table: every string has an index; text is NUL-terminated ---- */
typedef struct sw_tok_strtab {
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *off; /* n entries */
    uint32_t *len;
    int32_t n, cap;
} sw_tok_strtab;
sw_status sw_tok_strtab_add(sw_tok_strtab *s, const char *text, size_t len, int32_t *idx,
                            sw_err *err);
void sw_tok_strtab_clear(sw_tok_strtab *s);
static inline const char *sw_tok_str(const sw_tok_strtab *s, int32_t i) {
    return s->arena + s->off[i];
}

/* ---- text -> index map over a string table (open addressing) ---- */
typedef struct sw_tok_strmap {
    int32_t *slot; /* -1 = empty, else string index */
    uint32_t *hash;
    size_t cap; /* power of two */
    size_t count;
} sw_tok_strmap;
uint32_t sw_tok_hash(const char *s, size_t n);
sw_status sw_tok_strmap_init(sw_tok_strmap *m, size_t expected, sw_err *err);
void sw_tok_strmap_clear(sw_tok_strmap *m);
/* Insert index i (text from st); if the text is already present, keeps the
 * existing entry and stores it in *existing (else -1). */
sw_status sw_tok_strmap_put(sw_tok_strmap *m, const sw_tok_strtab *st, int32_t i, int32_t *existing,
                            sw_err *err);
int32_t sw_tok_strmap_get(const sw_tok_strmap *m, const sw_tok_strtab *st, const char *s, size_t n);

/* ---- uint64 -> (a, b) map: BPE merge pairs and the special-token trie ---- */
typedef struct sw_tok_u64map {
    uint64_t *key; /* UINT64_MAX = empty */
    int32_t *va, *vb;
    size_t cap, count;
} sw_tok_u64map;
sw_status sw_tok_u64map_init(sw_tok_u64map *m, size_t expected, sw_err *err);
void sw_tok_u64map_clear(sw_tok_u64map *m);
/* Inserts or, if present, leaves the first value (returns true if inserted). */
sw_status sw_tok_u64map_put(sw_tok_u64map *m, uint64_t k, int32_t a, int32_t b, bool *inserted,
                            sw_err *err);
bool sw_tok_u64map_get(const sw_tok_u64map *m, uint64_t k, int32_t *a, int32_t *b);

/* ---- min-heap of merge candidates: ordered by key, then by left index ---- */
typedef struct sw_tok_bigram {
    double key; /* BPE: rank; SPM: -score (so the best score pops first) */
    int32_t left, right;
    uint32_t size; /* byte length of left+right when pushed (staleness check) */
} sw_tok_bigram;
typedef struct sw_tok_heap {
    sw_tok_bigram *v;
    size_t n, cap;
} sw_tok_heap;
sw_status sw_tok_heap_push(sw_tok_heap *h, sw_tok_bigram b, sw_err *err);
bool sw_tok_heap_pop(sw_tok_heap *h, sw_tok_bigram *out);

/* A symbol of a word being merged: a byte span of the work buffer. */
typedef struct sw_tok_sym {
    uint32_t off, n; /* n == 0: merged away */
    int32_t prev, next;
    int32_t id; /* string index of the span, -1 if none (BPE only) */
} sw_tok_sym;

/* ---- UTF-8 ---- */
/* Length of the sequence a lead byte announces (1 for stray continuation
 * bytes), as llama.cpp's unicode_len_utf8. */
static inline size_t sw_tok_utf8_len(unsigned char c) {
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}
/* Decode one codepoint at s (n bytes available). Returns bytes consumed, or 0
 * for an invalid/truncated sequence (then *cp is left unspecified). */

/* Encode cp into out (4 bytes room). Returns the byte count. */
size_t sw_tok_utf8_encode(uint32_t cp, char *out);
/* Copy text replacing every invalid byte with U+FFFD; *out is malloc'd. */


/* ---- Unicode properties for WordPiece (tokenizer_unicode.c) ---- */
enum {
    SW_UCAT_CC,
    SW_UCAT_CF,
    SW_UCAT_CN,
    SW_UCAT_CO,
    SW_UCAT_CS,
    SW_UCAT_LL,
    SW_UCAT_LM,
    SW_UCAT_LO,
    SW_UCAT_LT,
    SW_UCAT_LU,
    SW_UCAT_MC,
    SW_UCAT_ME,
    SW_UCAT_MN,
    SW_UCAT_ND,
    SW_UCAT_NL,
    SW_UCAT_NO,
    SW_UCAT_PC,
    SW_UCAT_PD,
    SW_UCAT_PE,
    SW_UCAT_PF,
    SW_UCAT_PI,
    SW_UCAT_PO,
    SW_UCAT_PS,
    SW_UCAT_SC,
    SW_UCAT_SK,
    SW_UCAT_SM,
    SW_UCAT_SO,
    SW_UCAT_ZL,
    SW_UCAT_ZP,
    SW_UCAT_ZS,
};
int sw_tok_ucat(uint32_t cp);
bool sw_tok_is_white_space(uint32_t cp); /* Unicode White_Space property */
/* Lowercase cp into out (up to 3 codepoints). Returns the count (>= 1). */
size_t sw_tok_tolower(uint32_t cp, uint32_t out[3]);
/* Canonical decomposition into out (room for 4). Returns the count (>= 1). */
size_t sw_tok_nfd(uint32_t cp, uint32_t out[4]);

extern const char sw_tok_unicode_version[];
extern const uint32_t sw_tok_ucat_runs[];
extern const size_t sw_tok_ucat_n_runs;
extern const uint32_t sw_tok_lower_from[], sw_tok_lower_to[];
extern const size_t sw_tok_lower_n;
extern const uint32_t sw_tok_lower_multi[];
extern const size_t sw_tok_lower_multi_n;
extern const uint32_t sw_tok_nfd_cp[];
extern const uint16_t sw_tok_nfd_off[];
extern const uint32_t sw_tok_nfd_seq[];
extern const size_t sw_tok_nfd_n;

/* ---- the tokenizer ---- */
#define SW_TOK_MAX_REGEX 8

struct sw_tokenizer {
    sw_tok_type type;
    int32_t n_vocab;
    sw_tok_strtab str; /* token texts (0..n_vocab-1), then BPE helper strings */
    sw_tok_strmap map; /* text -> string index */
    float *score;      /* n_vocab */
    uint8_t *attr;     /* n_vocab, SW_TATTR_* */
    uint8_t *eog;      /* n_vocab, 1 = ends generation */
    uint32_t max_token_len;

    /* rendered pieces (render_special = false) */
    char *piece;
    uint32_t *piece_off; /* n_vocab + 1 */

    int32_t bos, eos, eot, eom, unk, sep, pad;
    bool add_bos, add_eos, add_sep, add_space_prefix;

    /* special / added tokens: byte trie, node 0 = root */
    sw_tok_u64map trie; /* (node << 8 | byte) -> child node */
    int32_t *trie_tok;  /* per node: token ending here, or -1 */
    int32_t trie_nodes;

    /* SPM: id of <0xXX> (or of the 1-byte token), -1 if none */
    int32_t byte_tok[256];

    /* BPE */
    char pre[64];         /* tokenizer.ggml.pre (or "default") */
    sw_tok_u64map merges; /* (left << 32 | right) -> (rank, result) */
    bool ignore_merges;
    pcre2_code *re[SW_TOK_MAX_REGEX]; /* pre-tokenizer split regexes, in order */
    int n_re;
    char byte_enc[256][3]; /* GPT-2 byte -> UTF-8 char (NUL-terminated) */
    int16_t byte_dec[512]; /* codepoint (< 512) -> byte, -1 if none */

    /* WPM */
    bool wpm_lowercase, wpm_strip_accents;
};

/* Algorithm entry points: tokenize one fragment of raw text (no special
 * tokens inside) and append ids to out. */
sw_status sw_tok_spm_fragment(const sw_tokenizer *t, const char *text, size_t len,
                              bool space_prefix, sw_tok_vec *out, sw_err *err);
sw_status sw_tok_bpe_init(sw_tokenizer *t, sw_err *err); /* regexes + byte maps */
sw_status sw_tok_bpe_fragment(const sw_tokenizer *t, const char *text, size_t len, sw_tok_vec *out,
                              sw_err *err);
sw_status sw_tok_wpm_fragment(const sw_tokenizer *t, const char *text, size_t len, sw_tok_vec *out,
                              sw_err *err);
/* Fill t->piece / t->piece_off (tokenizer_detok.c). */
sw_status sw_tok_build_pieces(sw_tokenizer *t, sw_err *err);
void sw_tok_bpe_free(sw_tokenizer *t);

#endif
