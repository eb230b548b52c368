/* tokenizer_bpe.c — byte-level BPE ("gpt2" tokenizers): the pre-tokenizer
 * (split regexes chosen by tokenizer.ggml.pre, run with PCRE2), the GPT-2
 * byte-to-unicode mapping, and rank-ordered merging of each pre-token.
 *
 * Pre-tokenizers that Hugging Face expresses as a Sequence of Split steps are
 * a list of regexes here: each regex re-splits every piece produced by the
 * previous one, and both the matches and the unmatched gaps between them
 * become pieces (HF's "Isolated" behaviour, which is what llama.cpp does too).
 * A regex sees one piece at a time, so lookaheads and `$` stop at its end. */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* ---- pre-tokenizer regexes (they are tokenizer specifications) ---- */

/* GPT-2 / RoBERTa (as llama.cpp lists it: without the trailing "|\s+"; the
 * unmatched whitespace it would take becomes a gap piece, which is the same). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
/* Llama 3 / tiktoken cl100k; the (?i:...) contraction group spelled out. */
#define RE_LLAMA3                                                                                  \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"     \
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2: as Llama 3 but single digits. */
#define RE_QWEN2                                                                                   \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"     \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* DeepSeek LLM: cased-letter runs (the L& ranges of its tokenizer.json),
 * ASCII/fullwidth punctuation runs, trailing whitespace, CJK runs, digits. */
#define RE_DS_LLM_LETTERS                                                                          \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"            \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"         \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}" \
    "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"  \
    "\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"                 \
    "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"                 \
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"         \
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"        \
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"                 \
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}"         \
    "\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"                   \
    "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"         \
    "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"                  \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"                 \
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"                 \
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}"           \
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"
#define RE_DS_LLM_PUNCT                                                                            \
    "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"
#define RE_DS_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
/* DeepSeek V3 */
#define RE_DS3_CJK "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"
#define RE_DS3_MAIN                                                                                \
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}"    \
    "\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* BLOOM / Poro / GPT-3 Finnish */
#define RE_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"
/* Tekken and GPT-4o keep their upper/lower-case letter runs apart. */
#define RE_TEKKEN                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"   \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"   \
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GPT4O                                                                                   \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"    \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"    \
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}|"                     \
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct pre_def {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *re[SW_TOK_MAX_REGEX];
    bool ignore_merges; /* a whole pre-token that is in the vocab is kept as is */
    int add_bos;        /* -1: keep the BPE default (false); 1: true */
    bool no_bos;        /* the model has no BOS (ChatGLM) */
} pre_def;

static const pre_def k_pre[] = {
    {"default",
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"},
     false,
     -1,
     false},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2",
     {RE_LLAMA3},
     true,
     1,
     false},
    {"dbrx|smaug-bpe", {RE_LLAMA3}, false, -1, false},
    {"chatglm-bpe|glm4", {RE_LLAMA3}, false, -1, true},
    {"deepseek-llm",
     {"[\\r\\n]", RE_DS_LLM_LETTERS, RE_DS_LLM_PUNCT, "\\s+$", RE_DS_CJK, "\\p{N}+"},
     false,
     -1,
     false},
    {"deepseek-coder",
     {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DS_CJK, "\\p{N}"},
     false,
     -1,
     false},
    {"deepseek-v3", {"\\p{N}{1,3}", RE_DS3_CJK, RE_DS3_MAIN}, false, -1, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, -1, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b",
     {"\\p{N}", RE_GPT2},
     false,
     -1,
     false},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|mpt|olmo|"
     "jais|trillion|exaone4|jina-v1-en|jina-v2-code|roberta-bpe",
     {RE_GPT2},
     false,
     -1,
     false},
    {"qwen2|deepseek-r1-qwen|stablelm2|hunyuan|megrez", {RE_QWEN2}, false, -1, false},
    {"poro-chat|bloom|gpt3-finnish", {RE_PORO}, false, -1, false},
    {"viking", {RE_PORO, "\\p{N}"}, false, -1, false},
    {"tekken", {RE_TEKKEN}, true, 1, false},
    {"gpt-4o|llama4", {RE_GPT4O}, false, -1, false},
};

static bool name_in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* ---- GPT-2 byte <-> unicode mapping ---- */

static void init_byte_maps(sw_tokenizer *t) {
    /* Printable Latin-1 bytes stand for themselves; the other 68 bytes are
     * mapped in order to U+0100 and up, so every byte has a visible char. */
    uint32_t next = 256;
    for (int i = 0; i < 512; i++)
        t->byte_dec[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = keep ? (uint32_t)b : next++;
        size_t n = sw_tok_utf8_encode(cp, t->byte_enc[b]);
        t->byte_enc[b][n] = '\0';
        t->byte_dec[cp] = (int16_t)b;
    }
}

sw_status sw_tok_bpe_init(sw_tokenizer *t, sw_err *err) {
    init_byte_maps(t);
    const pre_def *def = NULL;
    for (size_t i = 0; i < sizeof k_pre / sizeof k_pre[0]; i++) {
        if (name_in_list(k_pre[i].names, t->pre)) {
            def = &k_pre[i];
            break;
        }
    }
    if (!def)
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "tokenizer.ggml.pre: unknown pre-tokenizer '%s' for a BPE vocab", t->pre);
    t->ignore_merges = def->ignore_merges;
    if (def->add_bos == 1) t->add_bos = true;
    if (def->no_bos) t->bos = -1;
    for (int i = 0; i < SW_TOK_MAX_REGEX && def->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        /* DOLLAR_ENDONLY: "$" means the end of the piece, as in std::regex
         * and the HF tokenizers, not "before a final newline". */
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)def->re[i], PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return sw_err_set(err, SW_E_INTERNAL,
                              "tokenizer: pre-tokenizer '%s' regex %d does not compile at "
                              "offset %zu: %s",
                              t->pre, i, (size_t)eo, (const char *)msg);
        }
        /* JIT is an optimization only: if unavailable, the interpreter runs. */
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        t->re[t->n_re++] = re;
    }
    return SW_OK;
}

void sw_tok_bpe_free(sw_tokenizer *t) {
    for (int i = 0; i < t->n_re; i++)
        pcre2_code_free(t->re[i]);
    t->n_re = 0;
}

/* ---- splitting ---- */

typedef struct span {
    size_t off, len;
} span;

typedef struct span_vec {
    span *v;
    size_t n, cap;
} span_vec;

static sw_status span_push(span_vec *a, size_t off, size_t len, sw_err *err) {
    if (len == 0) return SW_OK;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        span *v = realloc(a->v, cap * sizeof *v);
        if (!v) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (pre-tokens)");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (span){off, len};
    return SW_OK;
}

static int run_match(const pcre2_code *re, const char *s, size_t n, size_t pos,
                     pcre2_match_data *md) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    return rc;
}

/* Re-split every piece of in by re; matches and gaps both become pieces. */
static sw_status split_once(const sw_tokenizer *t, int ri, const char *text, const span_vec *in,
                            span_vec *out, sw_err *err) {
    const pcre2_code *re = t->re[ri];
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (regex match data)");
    sw_status st = SW_OK;
    out->n = 0;
    for (size_t k = 0; k < in->n && st == SW_OK; k++) {
        const char *s = text + in->v[k].off;
        size_t n = in->v[k].len, pos = 0, last = 0;
        while (pos < n) {
            int rc = run_match(re, s, n, pos, md);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                st = sw_err_set(err, SW_E_INTERNAL, "tokenizer: pre-tokenizer '%s' regex %d: %s",
                                t->pre, ri, (const char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) {
                /* an empty match splits nothing; step over one character */
                pos = ms + sw_tok_utf8_len((unsigned char)s[ms]);
                continue;
            }
            if (ms > last) st = span_push(out, in->v[k].off + last, ms - last, err);
            if (st == SW_OK) st = span_push(out, in->v[k].off + ms, me - ms, err);
            last = pos = me;
            if (st != SW_OK) break;
        }
        if (st == SW_OK && last < n) st = span_push(out, in->v[k].off + last, n - last, err);
    }
    pcre2_match_data_free(md);
    return st;
}

/* ---- merging ---- */

typedef struct bpe_work {
    char *w; /* byte-level encoded pre-token */
    size_t wn, wcap;
    sw_tok_sym *sym;
    size_t nsym, symcap;
    sw_tok_heap heap;
} bpe_work;

static sw_status add_bigram(const sw_tokenizer *t, bpe_work *b, int32_t l, int32_t r, sw_err *err) {
    if (l < 0 || r < 0) return SW_OK;
    int32_t li = b->sym[l].id, ri = b->sym[r].id, rank;
    if (li < 0 || ri < 0) return SW_OK;
    uint64_t key = ((uint64_t)(uint32_t)li << 32) | (uint32_t)ri;
    if (!sw_tok_u64map_get(&t->merges, key, &rank, NULL)) return SW_OK;
    sw_tok_bigram bg = {(double)rank, l, r, b->sym[l].n + b->sym[r].n};
    return sw_tok_heap_push(&b->heap, bg, err);
}

static sw_status emit_symbol(const sw_tokenizer *t, const bpe_work *b, const sw_tok_sym *s,
                             sw_tok_vec *out, sw_err *err) {
    if (s->id >= 0 && s->id < t->n_vocab) return sw_tok_vec_push(out, s->id, err);
    /* Not a token (a merge result missing from the vocab, or a char the vocab
     * lacks): fall back to the one-byte strings, as llama.cpp does. */
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t id = sw_tok_strmap_get(&t->map, &t->str, b->w + s->off + i, 1);
        if (id >= 0 && id < t->n_vocab) {
            sw_status st = sw_tok_vec_push(out, id, err);
            if (st != SW_OK) return st;
        }
    }
    return SW_OK;
}

static sw_status bpe_word(const sw_tokenizer *t, bpe_work *b, sw_tok_vec *out, sw_err *err) {
    if (t->ignore_merges) {
        int32_t id = sw_tok_strmap_get(&t->map, &t->str, b->w, b->wn);
        if (id >= 0 && id < t->n_vocab) return sw_tok_vec_push(out, id, err);
    }
    if (b->wn > b->symcap) {
        sw_tok_sym *s = realloc(b->sym, b->wn * sizeof *s);
        if (!s) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (symbols)");
        b->sym = s;
        b->symcap = b->wn;
    }
    b->nsym = 0;
    for (size_t off = 0; off < b->wn;) {
        size_t n = sw_tok_utf8_len((unsigned char)b->w[off]);
        if (n > b->wn - off) n = b->wn - off;
        sw_tok_sym *s = &b->sym[b->nsym];
        s->off = (uint32_t)off;
        s->n = (uint32_t)n;
        s->prev = (int32_t)b->nsym - 1;
        s->next = off + n == b->wn ? -1 : (int32_t)b->nsym + 1;
        s->id = sw_tok_strmap_get(&t->map, &t->str, b->w + off, n);
        b->nsym++;
        off += n;
    }
    b->heap.n = 0;
    sw_status st = SW_OK;
    for (size_t i = 1; i < b->nsym && st == SW_OK; i++)
        st = add_bigram(t, b, (int32_t)i - 1, (int32_t)i, err);
    sw_tok_bigram bg;
    while (st == SW_OK && sw_tok_heap_pop(&b->heap, &bg)) {
        sw_tok_sym *l = &b->sym[bg.left], *r = &b->sym[bg.right];
        /* stale: one side was merged away or grew since the pair was queued */
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size || l->next != bg.right) continue;
        int32_t result = -1;
        uint64_t key = ((uint64_t)(uint32_t)l->id << 32) | (uint32_t)r->id;
        sw_tok_u64map_get(&t->merges, key, NULL, &result);
        l->n += r->n;
        l->id = result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) b->sym[r->next].prev = bg.left;
        st = add_bigram(t, b, l->prev, bg.left, err);
        if (st == SW_OK) st = add_bigram(t, b, bg.left, l->next, err);
    }
    for (int32_t i = 0; st == SW_OK && b->nsym && i != -1; i = b->sym[i].next)
        st = emit_symbol(t, b, &b->sym[i], out, err);
    return st;
}

static sw_status encode_word(const sw_tokenizer *t, bpe_work *b, const char *s, size_t n,
                             sw_err *err) {
    if (n > (SIZE_MAX - 1) / 2) return sw_err_set(err, SW_E_RANGE, "tokenizer: piece too large");
    if (2 * n + 1 > b->wcap) {
        char *w = realloc(b->w, 2 * n + 1);
        if (!w) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (%zu bytes)", n);
        b->w = w;
        b->wcap = 2 * n + 1;
    }
    b->wn = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = t->byte_enc[(unsigned char)s[i]];
        size_t k = e[1] ? 2 : 1;
        memcpy(b->w + b->wn, e, k);
        b->wn += k;
    }
    return SW_OK;
}

sw_status sw_tok_bpe_fragment(const sw_tokenizer *t, const char *raw, size_t raw_len,
                              sw_tok_vec *out, sw_err *err) {
    char *text = NULL;
    size_t len = 0;
    span_vec a = {0}, bvec = {0};
    bpe_work work = {0};
    /* PCRE2 in UTF mode needs valid UTF-8; bad bytes become U+FFFD first. */
    sw_status st = sw_utf8_sanitize(raw, raw_len, &text, &len, err);
    if (st != SW_OK) return st;
    st = span_push(&a, 0, len, err);
    for (int i = 0; st == SW_OK && i < t->n_re; i++) {
        st = split_once(t, i, text, &a, &bvec, err);
        span_vec tmp = a;
        a = bvec;
        bvec = tmp;
    }
    for (size_t k = 0; st == SW_OK && k < a.n; k++) {
        st = encode_word(t, &work, text + a.v[k].off, a.v[k].len, err);
        if (st == SW_OK) st = bpe_word(t, &work, out, err);
    }
    free(work.w);
    free(work.sym);
    free(work.heap.v);
    free(a.v);
    free(bvec.v);
    free(text);
    return st;
}
