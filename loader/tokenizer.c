/* tokenizer.c — builds an sw_tokenizer from the tokenizer.ggml.* metadata of a
 * GGUF file (vocab, scores, token types, merges, special ids and flags, with the
 * defaults and fix-ups llama.cpp applies), splits special/added tokens out of
 * the input, and dispatches each remaining piece of text to the SPM, BPE or
 * WordPiece algorithm. Detokenization lives in tokenizer_detok.c. */
#include "tokenizer_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading metadata ---- */

static sw_status find_array(const sw_gguf *g, const char *key, bool required, int64_t *idx,
                            uint64_t *n, sw_err *err) {
    *idx = sw_gguf_find_key(g, key);
    *n = 0;
    if (*idx < 0) {
        if (!required) return SW_OK;
        return sw_err_set(err, SW_E_NOT_FOUND, "%s: missing key %s", sw_gguf_path(g), key);
    }
    if (sw_gguf_kv_type(g, *idx) != SW_GGUF_ARRAY)
        return sw_err_set(err, SW_E_FORMAT, "%s: %s is a %s, expected an array", sw_gguf_path(g),
                          key, sw_gguf_vtype_name(sw_gguf_kv_type(g, *idx)));
    *n = sw_gguf_kv_arr_n(g, *idx);
    return SW_OK;
}

/* Optional integer id key: out-of-range values (e.g. 0xFFFFFFFF for "unset")
 * keep the default, as llama.cpp does. */
static sw_status read_id(const sw_gguf *g, const char *key, int32_t n_vocab, int32_t *id,
                         sw_err *err) {
    int64_t i = sw_gguf_find_key(g, key);
    if (i < 0) return SW_OK;
    int64_t v;
    sw_status s = sw_gguf_kv_int(g, i, &v, err);
    if (s != SW_OK) return sw_err_wrap(err, s, "%s: %s", sw_gguf_path(g), key);
    if (v >= 0 && v < n_vocab)
        *id = (int32_t)v;
    else
        sw_log(SW_LOG_DEBUG, "%s: %s = %lld is outside the vocab (%d), ignored", sw_gguf_path(g),
               key, (long long)v, (int)n_vocab);
    return SW_OK;
}

static sw_status read_flag(const sw_gguf *g, const char *key, bool *flag, sw_err *err) {
    int64_t i = sw_gguf_find_key(g, key);
    if (i < 0) return SW_OK;
    sw_status s = sw_gguf_kv_bool(g, i, flag, err);
    return s == SW_OK ? SW_OK : sw_err_wrap(err, s, "%s: %s", sw_gguf_path(g), key);
}

static sw_status read_tokens(sw_tokenizer *t, const sw_gguf *g, sw_err *err) {
    int64_t ki;
    uint64_t n;
    sw_status s = find_array(g, "tokenizer.ggml.tokens", true, &ki, &n, err);
    if (s != SW_OK) return s;
    if (sw_gguf_kv_arr_type(g, ki) != SW_GGUF_STRING)
        return sw_err_set(err, SW_E_FORMAT, "%s: tokenizer.ggml.tokens holds %s, expected string",
                          sw_gguf_path(g), sw_gguf_vtype_name(sw_gguf_kv_arr_type(g, ki)));
    if (n == 0 || n > (uint64_t)INT32_MAX / 2)
        return sw_err_set(err, SW_E_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries",
                          sw_gguf_path(g), (unsigned long long)n);
    t->n_vocab = (int32_t)n;
    s = sw_tok_strmap_init(&t->map, n, err);
    if (s != SW_OK) return s;
    for (uint64_t j = 0; j < n; j++) {
        const char *txt;
        size_t len;
        char empty[32];
        s = sw_gguf_arr_str(g, ki, j, &txt, &len, err);
        if (s != SW_OK)
            return sw_err_wrap(err, s, "%s: tokenizer.ggml.tokens[%llu]", sw_gguf_path(g),
                               (unsigned long long)j);
        if (len == 0) {
            /* an empty token would match everywhere; give it a name instead */
            len = (size_t)snprintf(empty, sizeof empty, "[EMPTY_%llu]", (unsigned long long)j);
            txt = empty;
        }
        int32_t idx, dup;
        s = sw_tok_strtab_add(&t->str, txt, len, &idx, err);
        if (s == SW_OK) s = sw_tok_strmap_put(&t->map, &t->str, idx, &dup, err);
        if (s != SW_OK) return s;
        if (dup >= 0)
            sw_log(SW_LOG_WARN, "%s: token %llu duplicates the text of token %d; lookups use %d",
                   sw_gguf_path(g), (unsigned long long)j, (int)dup, (int)dup);
        if (len > t->max_token_len) t->max_token_len = (uint32_t)len;
    }
    return SW_OK;
}

static sw_status read_scores_types(sw_tokenizer *t, const sw_gguf *g, sw_err *err) {
    size_t n = (size_t)t->n_vocab;
    t->score = calloc(n, sizeof *t->score);
    t->attr = calloc(n, 1);
    t->eog = calloc(n, 1);
    if (!t->score || !t->attr || !t->eog)
        return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (%zu tokens)", n);
    int64_t ki;
    uint64_t cnt;
    sw_status s = find_array(g, "tokenizer.ggml.scores", false, &ki, &cnt, err);
    if (s != SW_OK) return s;
    if (ki >= 0) {
        if (cnt < n)
            return sw_err_set(err, SW_E_FORMAT, "%s: tokenizer.ggml.scores has %llu entries < %zu",
                              sw_gguf_path(g), (unsigned long long)cnt, n);
        for (size_t j = 0; j < n; j++) {
            double v;
            s = sw_gguf_arr_float(g, ki, j, &v, err);
            if (s != SW_OK)
                return sw_err_wrap(err, s, "%s: tokenizer.ggml.scores[%zu]", sw_gguf_path(g), j);
            t->score[j] = (float)v;
        }
    }
    s = find_array(g, "tokenizer.ggml.token_type", false, &ki, &cnt, err);
    if (s != SW_OK) return s;
    if (ki >= 0 && cnt < n)
        return sw_err_set(err, SW_E_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries < %zu",
                          sw_gguf_path(g), (unsigned long long)cnt, n);
    for (size_t j = 0; j < n; j++) {
        int64_t ty = SW_TOKTYPE_NORMAL;
        if (ki >= 0) {
            s = sw_gguf_arr_int(g, ki, j, &ty, err);
            if (s != SW_OK)
                return sw_err_wrap(err, s, "%s: tokenizer.ggml.token_type[%zu]", sw_gguf_path(g),
                                   j);
        }
        switch (ty) {
        case SW_TOKTYPE_NORMAL:
            t->attr[j] = SW_TATTR_NORMAL;
            break;
        case SW_TOKTYPE_UNKNOWN:
            t->attr[j] = SW_TATTR_UNKNOWN;
            break;
        case SW_TOKTYPE_CONTROL:
            t->attr[j] = SW_TATTR_CONTROL;
            break;
        case SW_TOKTYPE_USER_DEFINED:
            t->attr[j] = SW_TATTR_USER_DEFINED;
            break;
        case SW_TOKTYPE_UNUSED:
            t->attr[j] = SW_TATTR_UNUSED;
            break;
        case SW_TOKTYPE_BYTE:
            t->attr[j] = SW_TATTR_BYTE;
            break;
        default:
            t->attr[j] = 0;
            break; /* undefined: renders as nothing */
        }
    }
    return SW_OK;
}

/* Merges "a b" -> (rank, id of "ab"). A part that is not a vocab entry gets a
 * helper string index (>= n_vocab) so that every pair can be keyed by ids. */
static sw_status read_merges(sw_tokenizer *t, const sw_gguf *g, sw_err *err) {
    int64_t ki;
    uint64_t n;
    sw_status s = find_array(g, "tokenizer.ggml.merges", true, &ki, &n, err);
    if (s != SW_OK) return s;
    if (sw_gguf_kv_arr_type(g, ki) != SW_GGUF_STRING)
        return sw_err_set(err, SW_E_FORMAT, "%s: tokenizer.ggml.merges holds %s, expected string",
                          sw_gguf_path(g), sw_gguf_vtype_name(sw_gguf_kv_arr_type(g, ki)));
    if (n > (uint64_t)INT32_MAX)
        return sw_err_set(err, SW_E_FORMAT, "%s: tokenizer.ggml.merges has %llu entries",
                          sw_gguf_path(g), (unsigned long long)n);
    s = sw_tok_u64map_init(&t->merges, n, err);
    if (s != SW_OK) return s;
    for (uint64_t r = 0; r < n && s == SW_OK; r++) {
        const char *m;
        size_t len;
        s = sw_gguf_arr_str(g, ki, r, &m, &len, err);
        if (s != SW_OK) {
            sw_err_wrap(err, s, "%s: tokenizer.ggml.merges[%llu]", sw_gguf_path(g),
                        (unsigned long long)r);
            break;
        }
        /* split at the first space after the first byte (a part may be " ") */
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
        if (!sp) continue; /* malformed: llama.cpp records an unusable pair */
        size_t la = (size_t)(sp - m), lb = len - la - 1;
        int32_t ids[2];
        const char *part[2] = {m, sp + 1};
        size_t plen[2] = {la, lb};
        for (int k = 0; k < 2 && s == SW_OK; k++) {
            ids[k] = sw_tok_strmap_get(&t->map, &t->str, part[k], plen[k]);
            if (ids[k] < 0) {
                s = sw_tok_strtab_add(&t->str, part[k], plen[k], &ids[k], err);
                if (s == SW_OK) s = sw_tok_strmap_put(&t->map, &t->str, ids[k], NULL, err);
            }
        }
        if (s != SW_OK) break;
        /* the result id is looked up once all parts exist (second pass) */
        uint64_t key = ((uint64_t)(uint32_t)ids[0] << 32) | (uint32_t)ids[1];
        s = sw_tok_u64map_put(&t->merges, key, (int32_t)r, -1, NULL, err);
    }
    /* second pass: result ids (a result can be a later merge's helper part) */
    char *cat = NULL;
    size_t catcap = 0;
    for (size_t i = 0; s == SW_OK && i < t->merges.cap; i++) {
        uint64_t key = t->merges.key[i];
        if (key == UINT64_MAX) continue;
        int32_t a = (int32_t)(key >> 32), b = (int32_t)(key & 0xFFFFFFFFu);
        size_t la = t->str.len[a], lb = t->str.len[b];
        if (la + lb > catcap) {
            catcap = 2 * (la + lb);
            char *c = realloc(cat, catcap);
            if (!c) {
                s = sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (merges)");
                break;
            }
            cat = c;
        }
        memcpy(cat, sw_tok_str(&t->str, a), la);
        memcpy(cat + la, sw_tok_str(&t->str, b), lb);
        t->merges.vb[i] = sw_tok_strmap_get(&t->map, &t->str, cat, la + lb);
    }
    free(cat);
    return s;
}

/* ---- fix-ups that mirror llama.cpp's loader ---- */

static int32_t vocab_find(const sw_tokenizer *t, const char *s) {
    int32_t id = sw_tok_strmap_get(&t->map, &t->str, s, strlen(s));
    return id < t->n_vocab ? id : -1;
}

static void mark_eog(sw_tokenizer *t) {
    /* Tokens that end a turn in common chat formats. When the model names no
     * EOT, the first of these present becomes EOT. They are made CONTROL so
     * that they never print and plain text cannot produce them. */
    static const char *const eot_names[] = {"<|eot_id|>",
                                            "<|im_end|>",
                                            "<|end|>",
                                            "<end_of_turn>",
                                            "<|endoftext|>",
                                            "<|end_of_text|>",
                                            "<EOT>",
                                            "_<EOT>",
                                            "<\xEF\xBD\x9C"
                                            "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                            "<end_of_utterance>",
                                            NULL};
    static const char *const eog_names[] = {"<|eot_id|>",
                                            "<|im_end|>",
                                            "<|end|>",
                                            "<end_of_turn>",
                                            "<|endoftext|>",
                                            "</s>",
                                            "<|eom_id|>",
                                            "<EOT>",
                                            "_<EOT>",
                                            "<|end_of_text|>",
                                            "<end_of_utterance>",
                                            "<\xEF\xBD\x9C"
                                            "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                            NULL};
    if (t->eot < 0) {
        for (int i = 0; eot_names[i]; i++) {
            int32_t id = vocab_find(t, eot_names[i]);
            if (id >= 0) {
                t->eot = id;
                break;
            }
        }
    }
    if (t->eom < 0) t->eom = vocab_find(t, "<|eom_id|>");
    for (int i = 0; eog_names[i]; i++) {
        int32_t id = vocab_find(t, eog_names[i]);
        if (id < 0) continue;
        t->eog[id] = 1;
        t->attr[id] |= SW_TATTR_CONTROL;
    }
    const int32_t named[3] = {t->eos, t->eot, t->eom};
    for (int i = 0; i < 3; i++) {
        if (named[i] < 0) continue;
        t->eog[named[i]] = 1;
        if (named[i] == t->eot || named[i] == t->eom) t->attr[named[i]] |= SW_TATTR_CONTROL;
    }
}

static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == needle[i])
            i++;
        if (i == n) return true;
    }
    return false;
}

static void strip_attrs(sw_tokenizer *t, const sw_gguf *g) {
    /* Phi-3's added tokens swallow the whitespace that follows them (its HF
     * tokenizer marks them rstrip); llama.cpp keys this on general.name. */
    const char *name = NULL;
    if (sw_gguf_find_key(g, "general.name") < 0 ||
        sw_gguf_get_str(g, "general.name", &name, NULL) != SW_OK || !name)
        return;
    if (!contains_ci(name, "phi-3") && !contains_ci(name, "phi3")) return;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (SW_TATTR_CONTROL | SW_TATTR_USER_DEFINED | SW_TATTR_UNKNOWN))
            t->attr[i] |= SW_TATTR_RSTRIP;
    int32_t id = vocab_find(t, "</s>");
    if (id >= 0) t->attr[id] |= SW_TATTR_RSTRIP;
    const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (int k = 0; k < 3; k++) {
        id = vocab_find(t, keep[k]);
        if (id >= 0) t->attr[id] &= (uint8_t)~SW_TATTR_RSTRIP;
    }
}

static void find_byte_tokens(sw_tokenizer *t) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        int32_t id = vocab_find(t, name);
        if (id < 0) {
            char one = (char)b;
            id = sw_tok_strmap_get(&t->map, &t->str, &one, 1);
            if (id >= t->n_vocab) id = -1;
        }
        t->byte_tok[b] = id;
    }
}

/* Trie over the text of every control, user-defined and unknown token. */
static sw_status build_special_trie(sw_tokenizer *t, sw_err *err) {
    size_t total = 1;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (SW_TATTR_CONTROL | SW_TATTR_USER_DEFINED | SW_TATTR_UNKNOWN))
            total += t->str.len[i];
    if (total > INT32_MAX) return sw_err_set(err, SW_E_RANGE, "tokenizer: special tokens too long");
    t->trie_tok = malloc(total * sizeof *t->trie_tok);
    if (!t->trie_tok) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory (trie)");
    sw_status s = sw_tok_u64map_init(&t->trie, total, err);
    if (s != SW_OK) return s;
    t->trie_nodes = 1;
    t->trie_tok[0] = -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!(t->attr[i] & (SW_TATTR_CONTROL | SW_TATTR_USER_DEFINED | SW_TATTR_UNKNOWN))) continue;
        const unsigned char *p = (const unsigned char *)sw_tok_str(&t->str, i);
        int32_t node = 0;
        for (uint32_t k = 0; k < t->str.len[i]; k++) {
            uint64_t key = ((uint64_t)node << 8) | p[k];
            int32_t child;
            if (!sw_tok_u64map_get(&t->trie, key, &child, NULL)) {
                child = t->trie_nodes++;
                t->trie_tok[child] = -1;
                s = sw_tok_u64map_put(&t->trie, key, child, 0, NULL, err);
                if (s != SW_OK) return s;
            }
            node = child;
        }
        if (t->trie_tok[node] < 0) t->trie_tok[node] = i; /* first id wins */
    }
    return SW_OK;
}

/* ---- create / free ---- */

void sw_tokenizer_free(sw_tokenizer *t) {
    if (!t) return;
    sw_tok_bpe_free(t);
    sw_tok_strtab_clear(&t->str);
    sw_tok_strmap_clear(&t->map);
    sw_tok_u64map_clear(&t->merges);
    sw_tok_u64map_clear(&t->trie);
    free(t->trie_tok);
    free(t->score);
    free(t->attr);
    free(t->eog);
    free(t->piece);
    free(t->piece_off);
    free(t);
}

static sw_status set_type_defaults(sw_tokenizer *t, const sw_gguf *g, sw_err *err) {
    const char *model = NULL;
    sw_status s = sw_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (s != SW_OK) return sw_err_wrap(err, s, "%s", sw_gguf_path(g));
    t->eot = t->eom = t->sep = t->pad = -1;
    if (strcmp(model, "llama") == 0) {
        t->type = SW_TOK_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_bos = true;
        t->add_space_prefix = true;
    } else if (strcmp(model, "gpt2") == 0) {
        t->type = SW_TOK_BPE;
        t->bos = 11, t->eos = 11, t->unk = -1;
    } else if (strcmp(model, "bert") == 0) {
        t->type = SW_TOK_WPM;
        t->bos = 101, t->eos = -1, t->unk = 100, t->sep = 102, t->pad = 0;
        t->add_bos = true;
        t->add_sep = true; /* [CLS] text [SEP], as llama.cpp and BERT do */
        t->wpm_lowercase = true;
    } else {
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "%s: tokenizer.ggml.model '%s' is not supported (llama, gpt2, bert)",
                          sw_gguf_path(g), model);
    }
    const char *pre = "default";
    if (sw_gguf_find_key(g, "tokenizer.ggml.pre") >= 0) {
        s = sw_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
        if (s != SW_OK) return sw_err_wrap(err, s, "%s", sw_gguf_path(g));
    }
    if (strlen(pre) >= sizeof t->pre)
        return sw_err_set(err, SW_E_UNSUPPORTED, "%s: tokenizer.ggml.pre '%.40s...' unknown",
                          sw_gguf_path(g), pre);
    strcpy(t->pre, pre);
    return SW_OK;
}

static sw_status read_specials(sw_tokenizer *t, const sw_gguf *g, sw_err *err) {
    int32_t *const dflt[] = {&t->bos, &t->eos, &t->unk, &t->sep, &t->pad};
    for (int i = 0; i < 5; i++)
        if (*dflt[i] >= t->n_vocab) *dflt[i] = -1; /* default beyond a small vocab */
    static const char *const keys[] = {
        "tokenizer.ggml.bos_token_id",     "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",     "tokenizer.ggml.eom_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
        "tokenizer.ggml.padding_token_id"};
    int32_t *const dst[] = {&t->bos, &t->eos, &t->eot, &t->eom, &t->unk, &t->sep, &t->pad};
    for (int i = 0; i < 7; i++) {
        sw_status s = read_id(g, keys[i], t->n_vocab, dst[i], err);
        if (s != SW_OK) return s;
    }
    sw_status s = read_flag(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err);
    if (s == SW_OK) s = read_flag(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err);
    if (s == SW_OK) s = read_flag(g, "tokenizer.ggml.add_sep_token", &t->add_sep, err);
    if (s == SW_OK) s = read_flag(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err);
    if (s == SW_OK && t->type == SW_TOK_WPM) {
        s = read_flag(g, "tokenizer.ggml.normalizer.lowercase", &t->wpm_lowercase, err);
        t->wpm_strip_accents = t->wpm_lowercase;
        if (s == SW_OK)
            s = read_flag(g, "tokenizer.ggml.normalizer.strip_accents", &t->wpm_strip_accents, err);
    }
    if (s == SW_OK && t->add_bos && t->bos < 0)
        s = sw_err_set(err, SW_E_FORMAT,
                       "%s: tokenizer.ggml.add_bos_token is true but there is "
                       "no BOS token",
                       sw_gguf_path(g));
    /* EOS and SEP are appended only to whole inputs (sw_tokenize_input); a
     * vocab that asks for one it lacks simply does not get it. */
    if (t->eos < 0) t->add_eos = false;
    if (t->sep < 0) t->add_sep = false;
    return s;
}

sw_status sw_tokenizer_create(const sw_gguf *g, sw_tokenizer **out, sw_err *err) {
    if (!g || !out) return sw_err_set(err, SW_E_INVALID_ARG, "sw_tokenizer_create: NULL argument");
    *out = NULL;
    sw_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sw_err_set(err, SW_E_NOMEM, "tokenizer: out of memory");
    double t0 = sw_time_s();
    sw_status s = set_type_defaults(t, g, err);
    if (s == SW_OK) s = read_tokens(t, g, err);
    if (s == SW_OK) s = read_scores_types(t, g, err);
    if (s == SW_OK && t->type == SW_TOK_BPE) s = read_merges(t, g, err);
    if (s == SW_OK && t->type == SW_TOK_BPE) {
        s = sw_tok_bpe_init(t, err);
        if (s != SW_OK) sw_err_wrap(err, s, "%s", sw_gguf_path(g));
    }
    if (s == SW_OK) s = read_specials(t, g, err);
    if (s == SW_OK) {
        mark_eog(t);
        strip_attrs(t, g);
        find_byte_tokens(t);
        s = build_special_trie(t, err);
    }
    if (s == SW_OK) s = sw_tok_build_pieces(t, err);
    if (s != SW_OK) {
        sw_tokenizer_free(t);
        return s;
    }
    sw_log(SW_LOG_DEBUG, "%s: tokenizer %s/%s, %d tokens, built in %.3f s", sw_gguf_path(g),
           t->type == SW_TOK_SPM   ? "spm"
           : t->type == SW_TOK_BPE ? "bpe"
                                   : "wpm",
           t->pre, (int)t->n_vocab, sw_time_s() - t0);
    *out = t;
    return SW_OK;
}

/* ---- accessors ---- */

int32_t sw_tokenizer_n_vocab(const sw_tokenizer *t) {
    return t ? t->n_vocab : 0;
}
int32_t sw_tokenizer_bos(const sw_tokenizer *t) {
    return t ? t->bos : -1;
}
int32_t sw_tokenizer_eos(const sw_tokenizer *t) {
    return t ? t->eos : -1;
}
int32_t sw_tokenizer_eot(const sw_tokenizer *t) {
    return t ? t->eot : -1;
}
bool sw_tokenizer_add_bos(const sw_tokenizer *t) {
    return t && t->add_bos && t->bos >= 0;
}

int32_t sw_tokenizer_sep(const sw_tokenizer *t) {
    return t ? t->sep : -1;
}

bool sw_tokenizer_is_eog(const sw_tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_vocab && t->eog[id];
}

const char *sw_tokenizer_token_text(const sw_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return sw_tok_str(&t->str, id);
}

int32_t sw_tokenizer_find(const sw_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return -1;
    int32_t id = sw_tok_strmap_get(&t->map, &t->str, text ? text : "", len);
    return id < t->n_vocab ? id : -1;
}

/* ---- tokenize ---- */

/* Longest special token at text[pos..len) that may be matched: control and
 * unknown ones only with parse_special; user-defined ones always (llama.cpp
 * and HF match added tokens before anything else). Returns -1 if none. */
static int32_t match_special(const sw_tokenizer *t, const char *text, size_t len, size_t pos,
                             bool parse_special, size_t *mlen) {
    int32_t node = 0, best = -1;
    for (size_t i = pos; i < len; i++) {
        int32_t child;
        uint64_t key = ((uint64_t)node << 8) | (unsigned char)text[i];
        if (!sw_tok_u64map_get(&t->trie, key, &child, NULL)) break;
        node = child;
        int32_t id = t->trie_tok[node];
        if (id < 0) continue;
        bool ok = parse_special || !(t->attr[id] & (SW_TATTR_CONTROL | SW_TATTR_UNKNOWN));
        if (ok) {
            best = id;
            *mlen = i + 1 - pos;
        }
    }
    return best;
}

static sw_status run_fragment(const sw_tokenizer *t, const char *text, size_t len,
                              bool prev_special, sw_tok_vec *out, sw_err *err) {
    if (len == 0) return SW_OK;
    switch (t->type) {
    case SW_TOK_SPM:
        return sw_tok_spm_fragment(t, text, len, t->add_space_prefix && prev_special, out, err);
    case SW_TOK_BPE:
        return sw_tok_bpe_fragment(t, text, len, out, err);
    case SW_TOK_WPM:
        return sw_tok_wpm_fragment(t, text, len, out, err);
    }
    return sw_err_set(err, SW_E_INTERNAL, "tokenizer: bad type %d", (int)t->type);
}

sw_status sw_tokenize(const sw_tokenizer *t, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t **ids, size_t *n_ids, sw_err *err) {
    if (!t || !ids || !n_ids || (!text && len))
        return sw_err_set(err, SW_E_INVALID_ARG, "sw_tokenize: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    sw_tok_vec out = {0};
    sw_status s = SW_OK;
    if (add_bos) {
        if (t->bos < 0) return sw_err_set(err, SW_E_INVALID_ARG, "sw_tokenize: vocab has no BOS");
        s = sw_tok_vec_push(&out, t->bos, err);
    }
    /* SPM puts a space before text at the start and after a special token. */
    bool prev_special = true;
    size_t frag = 0, pos = 0;
    while (s == SW_OK && pos < len) {
        size_t mlen = 0;
        int32_t id = t->trie_nodes ? match_special(t, text, len, pos, parse_special, &mlen) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        size_t end = pos;
        if (t->attr[id] & SW_TATTR_LSTRIP)
            while (end > frag && isspace((unsigned char)text[end - 1]))
                end--;
        s = run_fragment(t, text + frag, end - frag, prev_special, &out, err);
        if (s == SW_OK) s = sw_tok_vec_push(&out, id, err);
        prev_special = true;
        pos += mlen;
        if (t->attr[id] & SW_TATTR_RSTRIP)
            while (pos < len && isspace((unsigned char)text[pos]))
                pos++;
        frag = pos;
    }
    if (s == SW_OK) s = run_fragment(t, text + frag, len - frag, prev_special, &out, err);
    if (s != SW_OK) {
        free(out.v);
        return s;
    }
    *ids = out.v ? out.v : malloc(sizeof(int32_t)); /* never NULL on success */
    if (!*ids) return sw_err_set(err, SW_E_NOMEM, "sw_tokenize: out of memory");
    *n_ids = out.n;
    return SW_OK;
}

sw_status sw_tokenize_input(const sw_tokenizer *t, const char *text, size_t len, int32_t **ids,
                            size_t *n_ids, sw_err *err) {
    if (!t) return sw_err_set(err, SW_E_INVALID_ARG, "sw_tokenize_input: NULL tokenizer");
    sw_status s = sw_tokenize(t, text, len, sw_tokenizer_add_bos(t), false, ids, n_ids, err);
    if (s != SW_OK) return s;
    int32_t tail[2];
    size_t nt = 0;
    if (t->add_eos) tail[nt++] = t->eos;
    if (t->add_sep && !(nt && tail[0] == t->sep)) tail[nt++] = t->sep;
    if (nt == 0) return SW_OK;
    int32_t *p = realloc(*ids, (*n_ids + nt) * sizeof *p);
    if (!p) {
        free(*ids);
        *ids = NULL;
        *n_ids = 0;
        return sw_err_set(err, SW_E_NOMEM, "sw_tokenize_input: out of memory");
    }
    memcpy(p + *n_ids, tail, nt * sizeof *tail);
    *ids = p;
    *n_ids += nt;
    return SW_OK;
}
