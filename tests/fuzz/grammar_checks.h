/* grammar_checks.h — invariants of a compiled grammar that fuzz_json_schema
 * and fuzz_gbnf both check (header-only, static functions). */
#ifndef SW_FUZZ_GRAMMAR_CHECKS_H
#define SW_FUZZ_GRAMMAR_CHECKS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

/* Completions longer than this are not walked (the check would take too long). */
#define CHECK_MAX_COMPLETION 4096

/* A tiny vocabulary for mask checks: every byte of the sentence alone, every
 * 2- and 3-byte window of it, some JSON punctuation, and an empty piece. */
typedef struct fz_vocab {
    char **p;
    uint32_t *l;
    int32_t n;
    sw_gvocab *v;
} fz_vocab;

static void fz_vocab_free(fz_vocab *fv) {
    for (int32_t i = 0; i < fv->n; i++) free(fv->p[i]);
    free(fv->p);
    free(fv->l);
    sw_gvocab_free(fv->v);
}

static bool fz_vocab_make(fz_vocab *fv, const char *s, size_t n) {
    static const char *const extra[] = {"\"", "{", "}", "[", "]", ",", ":", " ", "\":", "\",", "0", "-", "true", ""};
    size_t cap = 3 * n + 16;
    fv->p = calloc(cap, sizeof *fv->p);
    fv->l = calloc(cap, sizeof *fv->l);
    fv->n = 0;
    fv->v = NULL;
    if (!fv->p || !fv->l) return false;
    for (size_t w = 1; w <= 3; w++)
        for (size_t i = 0; i + w <= n; i++) {
            fv->p[fv->n] = malloc(w);
            if (!fv->p[fv->n]) return false;
            memcpy(fv->p[fv->n], s + i, w);
            fv->l[fv->n++] = (uint32_t)w;
        }
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) {
        fv->p[fv->n] = strdup(extra[i]);
        if (!fv->p[fv->n]) return false;
        fv->l[fv->n++] = (uint32_t)strlen(extra[i]);
    }
    return sw_gvocab_create((const char *const *)fv->p, fv->l, fv->n, &fv->v, NULL) == SW_OK;
}

/* s[0..n) is a sentence of g: a fresh matcher accepts it whole, byte by byte
 * and in chunks; at prefix `cut` the mask equals trying every token, and the
 * shortest completion reaches the end in exactly the promised bytes. */
static void fz_check_sentence(sw_grammar *g, const char *s, size_t n, size_t cut, uint32_t chunk_seed) {
    sw_gmatch *m;
    CHECK(sw_gmatch_create(g, &m, NULL) == SW_OK);
    for (size_t i = 0; i < n; i++) {
        CHECK(sw_gmatch_min_completion(m) >= 0);
        CHECK(sw_gmatch_feed(m, s + i, 1));
    }
    CHECK(sw_gmatch_accepting(m));
    /* chunked */
    sw_gmatch_reset(m);
    for (size_t off = 0; off < n;) {
        size_t k = 1 + (chunk_seed = chunk_seed * 1103515245u + 12345u) % 9;
        if (k > n - off) k = n - off;
        CHECK(sw_gmatch_feed(m, s + off, k));
        off += k;
    }
    CHECK(sw_gmatch_accepting(m));
    /* at the cut: masks, then the shortest completion */
    sw_gmatch_reset(m);
    if (cut > n) cut = n;
    CHECK(sw_gmatch_feed(m, s, cut));
    fz_vocab fv;
    if (fz_vocab_make(&fv, s, n)) {
        uint8_t *allow = malloc((size_t)fv.n + 1);
        if (allow && sw_gmatch_mask(m, fv.v, allow) >= 0)
            for (int32_t t = 0; t < fv.n; t++)
                CHECK((allow[t] != 0) == (fv.l[t] > 0 && sw_gmatch_try(m, fv.p[t], fv.l[t])));
        free(allow);
    }
    fz_vocab_free(&fv);
    int64_t need = sw_gmatch_min_completion(m);
    CHECK(need >= 0);
    if (need <= CHECK_MAX_COMPLETION) {
        for (int64_t k = 0; k < need; k++) {
            int best_b = -1;
            int64_t best = -1;
            for (int b = 0; b < 256; b++) {
                char c = (char)b;
                int64_t after = sw_gmatch_min_completion_after(m, &c, 1);
                if (after >= 0 && (best < 0 || after < best)) best = after, best_b = b;
            }
            CHECK(best_b >= 0 && best == need - k - 1);
            char c = (char)best_b;
            CHECK(sw_gmatch_feed(m, &c, 1));
        }
        CHECK(sw_gmatch_accepting(m));
    }
    sw_gmatch_free(m);
}

#endif
