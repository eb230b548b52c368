/* ppl.c — see ppl.h. The KL base file, all integers little-endian:
 *
 *   "SWKLBASE"                       8 bytes
 *   u32 version (1), u32 n_vocab, u32 n_ctx, u32 n_chunks
 *   i32 tokens[n_chunks * n_ctx]     the evaluated text, chunk by chunk
 *   then for each chunk, for each scored position (n_ctx - 1 - n_ctx/2 of
 *   them, predicting the next token):
 *     u32 n, f32 rest, f32 target    entries, log of the unlisted mass,
 *                                    logprob of the token that came next
 *     n x (u32 id, f32 logprob)      logprob >= -16, highest first (ties:
 *                                    lower id first)
 *
 * A position costs 12 + 8n bytes, n being the tokens within e^-16 of
 * certainty (typically tens to a few thousand), rather than the whole
 * vocabulary. KL(base || this) is computed over the listed tokens plus the
 * rest as one outcome: the KL of a coarser partition, so never above the
 * full KL, and within the mass below e^-16 of it. */
#include "ppl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ppl_acc_add(ppl_acc *a, double nll) {
    a->nll += nll;
    a->nll2 += nll * nll;
    a->count++;
}

void ppl_acc_result(const ppl_acc *a, double *ppl, double *err) {
    *ppl = *err = 0;
    if (a->count == 0) return;
    double mean = a->nll / (double)a->count;
    *ppl = exp(mean);
    double var = a->nll2 / (double)a->count - mean * mean;
    if (a->count > 1 && var > 0) *err = sqrt(var / (double)(a->count - 1)) * *ppl;
}

double ppl_row_lse(const float *l, int64_t V, int32_t *argmax) {
    int32_t best = 0;
    for (int64_t j = 1; j < V; j++)
        if (l[j] > l[best]) best = (int32_t)j;
    double mx = l[best], s = 0;
    for (int64_t j = 0; j < V; j++) s += exp((double)l[j] - mx);
    if (argmax) *argmax = best;
    return mx + log(s);
}

void ppl_kl_row_free(ppl_kl_row *r) {
    free(r->ids);
    free(r->lps);
    memset(r, 0, sizeof *r);
}

static sw_status row_reserve(ppl_kl_row *r, uint32_t n, sw_err *err) {
    if (n <= r->cap) return SW_OK;
    uint32_t *ids = realloc(r->ids, (size_t)n * sizeof *ids);
    if (ids) r->ids = ids;
    float *lps = realloc(r->lps, (size_t)n * sizeof *lps);
    if (lps) r->lps = lps;
    if (!ids || !lps) return sw_err_set(err, SW_E_NOMEM, "kl: out of memory for %u entries", n);
    r->cap = n;
    return SW_OK;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_f32(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}
static float get_f32(const uint8_t *p) {
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static sw_status write_all(FILE *f, const void *p, size_t n, sw_err *err) {
    if (fwrite(p, 1, n, f) != n) return sw_err_set(err, SW_E_IO, "kl: write failed");
    return SW_OK;
}

static sw_status read_all(FILE *f, const char *what, void *p, size_t n, const char *field,
                          sw_err *err) {
    if (fread(p, 1, n, f) != n)
        return sw_err_set(err, SW_E_FORMAT, "%s: truncated KL base file (reading %s)", what, field);
    return SW_OK;
}

sw_status ppl_kl_write_header(FILE *f, const ppl_kl_header *h, sw_err *err) {
    uint8_t b[24];
    memcpy(b, PPL_KL_MAGIC, 8);
    put_u32(b + 8, PPL_KL_VERSION);
    put_u32(b + 12, h->n_vocab);
    put_u32(b + 16, h->n_ctx);
    put_u32(b + 20, h->n_chunks);
    sw_status st = write_all(f, b, sizeof b, err);
    size_t n = (size_t)h->n_chunks * h->n_ctx;
    for (size_t i = 0; i < n && st == SW_OK; i++) {
        put_u32(b, (uint32_t)h->tokens[i]);
        st = write_all(f, b, 4, err);
    }
    return st;
}

/* highest first; ties by id, so files are reproducible */
static int by_lp_desc(const void *a, const void *b, void *ctx) {
    const float *lps = ctx;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (lps[i] != lps[j]) return lps[i] > lps[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

sw_status ppl_kl_write_row(FILE *f, const float *l, int64_t V, double lse, int32_t target,
                           ppl_kl_row *r, sw_err *err) {
    /* collect, sort the kept ids by their logits, then write */
    uint32_t n = 0;
    double rest = 0;
    for (int64_t j = 0; j < V; j++) {
        double lp = (double)l[j] - lse;
        if (lp >= PPL_KL_CUTOFF) n++;
        else rest += exp(lp);
    }
    sw_status st = row_reserve(r, n, err);
    if (st != SW_OK) return st;
    uint32_t k = 0;
    for (int64_t j = 0; j < V; j++)
        if ((double)l[j] - lse >= PPL_KL_CUTOFF) r->ids[k++] = (uint32_t)j;
    qsort_r(r->ids, n, sizeof *r->ids, by_lp_desc, (void *)l);
    uint8_t b[12];
    put_u32(b, n);
    put_f32(b + 4, rest > 0 ? (float)log(rest) : -INFINITY);
    put_f32(b + 8, (float)((double)l[target] - lse));
    if ((st = write_all(f, b, 12, err)) != SW_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        put_u32(b, r->ids[i]);
        put_f32(b + 4, (float)((double)l[r->ids[i]] - lse));
        if ((st = write_all(f, b, 8, err)) != SW_OK) return st;
    }
    return SW_OK;
}

sw_status ppl_kl_read_header(FILE *f, const char *what, ppl_kl_header *h, sw_err *err) {
    memset(h, 0, sizeof *h);
    uint8_t b[24];
    sw_status st = read_all(f, what, b, sizeof b, "the header", err);
    if (st != SW_OK) return st;
    if (memcmp(b, PPL_KL_MAGIC, 8) != 0)
        return sw_err_set(err, SW_E_FORMAT, "%s: not a spillway KL base file (no %s magic)", what,
                          PPL_KL_MAGIC);
    uint32_t ver = get_u32(b + 8);
    if (ver != PPL_KL_VERSION)
        return sw_err_set(err, SW_E_FORMAT, "%s: version %u (this build reads %u)", what, ver,
                          PPL_KL_VERSION);
    h->n_vocab = get_u32(b + 12);
    h->n_ctx = get_u32(b + 16);
    h->n_chunks = get_u32(b + 20);
    if (h->n_vocab < 2 || h->n_vocab > (1u << 24))
        return sw_err_set(err, SW_E_FORMAT, "%s: n_vocab %u out of range (2..2^24)", what,
                          h->n_vocab);
    if (h->n_ctx < 4 || h->n_ctx > (1u << 20))
        return sw_err_set(err, SW_E_FORMAT, "%s: n_ctx %u out of range (4..2^20)", what, h->n_ctx);
    if (h->n_chunks < 1 || (uint64_t)h->n_chunks * h->n_ctx > (1u << 28))
        return sw_err_set(err, SW_E_FORMAT, "%s: %u chunks of %u tokens is out of range", what,
                          h->n_chunks, h->n_ctx);
    size_t n = (size_t)h->n_chunks * h->n_ctx;
    h->tokens = malloc(n * sizeof *h->tokens);
    if (!h->tokens) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory for %zu tokens", what, n);
    for (size_t i = 0; i < n; i++) {
        if ((st = read_all(f, what, b, 4, "the tokens", err)) != SW_OK) break;
        uint32_t t = get_u32(b);
        if (t >= h->n_vocab) {
            st = sw_err_set(err, SW_E_FORMAT, "%s: token %zu has id %u, vocabulary is %u", what, i,
                            t, h->n_vocab);
            break;
        }
        h->tokens[i] = (int32_t)t;
    }
    if (st != SW_OK) {
        free(h->tokens);
        h->tokens = NULL;
    }
    return st;
}

sw_status ppl_kl_read_row(FILE *f, const char *what, uint32_t n_vocab, ppl_kl_row *r, sw_err *err) {
    uint8_t b[12];
    sw_status st = read_all(f, what, b, 12, "a row header", err);
    if (st != SW_OK) return st;
    uint32_t n = get_u32(b);
    float rest = get_f32(b + 4), target = get_f32(b + 8);
    if (n > n_vocab)
        return sw_err_set(err, SW_E_FORMAT, "%s: a row lists %u entries, vocabulary is %u", what,
                          n, n_vocab);
    if (isnan(rest) || rest > 0 || isnan(target) || target > 0)
        return sw_err_set(err, SW_E_FORMAT,
                          "%s: a row's rest log-mass %g or next-token logprob %g is not <= 0", what,
                          (double)rest, (double)target);
    if ((st = row_reserve(r, n, err)) != SW_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        if ((st = read_all(f, what, b, 8, "a row entry", err)) != SW_OK) return st;
        r->ids[i] = get_u32(b);
        r->lps[i] = get_f32(b + 4);
        if (r->ids[i] >= n_vocab || !(r->lps[i] <= 0) || r->lps[i] < PPL_KL_CUTOFF ||
            (i > 0 && r->lps[i] > r->lps[i - 1]))
            return sw_err_set(err, SW_E_FORMAT,
                              "%s: row entry %u (id %u, logprob %g) is out of range or order",
                              what, i, r->ids[i], (double)r->lps[i]);
    }
    /* a distribution: each id once, the listed and the unlisted mass sum to 1 (the
     * writer's rounding of the stored floats is ~1e-6); else KL could go negative */
    uint8_t *seen = calloc((size_t)n_vocab / 8 + 1, 1);
    if (!seen) return sw_err_set(err, SW_E_NOMEM, "%s: out of memory", what);
    double mass = isfinite(rest) ? exp((double)rest) : 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = r->ids[i];
        if (seen[id >> 3] & (1u << (id & 7))) {
            free(seen);
            return sw_err_set(err, SW_E_FORMAT, "%s: a row lists id %u twice", what, id);
        }
        seen[id >> 3] |= (uint8_t)(1u << (id & 7));
        mass += exp((double)r->lps[i]);
    }
    free(seen);
    if (!(fabs(mass - 1.0) <= 1e-4))
        return sw_err_set(err, SW_E_FORMAT,
                          "%s: a row's probabilities sum to %.9g, not 1", what, mass);
    r->n = n;
    r->rest = rest;
    r->target = target;
    return SW_OK;
}

void ppl_kl_compare(ppl_kl_acc *a, const ppl_kl_row *base, const float *l, double lse,
                    int32_t top) {
    double kl = 0, listed = 0;
    for (uint32_t i = 0; i < base->n; i++) {
        double lb = base->lps[i], lp = (double)l[base->ids[i]] - lse;
        kl += exp(lb) * (lb - lp);
        listed += exp(lp);
    }
    if (isfinite(base->rest)) {
        double rest = 1.0 - listed;
        if (rest < 1e-300) rest = 1e-300; /* the listed tokens took all the mass here */
        kl += exp((double)base->rest) * ((double)base->rest - log(rest));
    }
    a->kl += kl;
    a->kl2 += kl * kl;
    a->count++;
    if (base->n > 0 && (int32_t)base->ids[0] == top) a->same_top++;
    ppl_acc_add(&a->base, -(double)base->target);
}
