/* ppl.h — the arithmetic of spillway-perplexity, apart from the model: NLL
 * accumulation and llama-perplexity's +/- estimate, one row's log-softmax, and
 * the KL-divergence base file (its format is documented in ppl.c and
 * docs/perplexity.md). No I/O beyond the FILE it is given. */
#ifndef SW_PPL_H
#define SW_PPL_H

#include <spillway.h>
#include <stdio.h>

/* Running sums of per-token negative log-likelihoods. */
typedef struct ppl_acc {
    double nll, nll2;
    int64_t count;
} ppl_acc;

void ppl_acc_add(ppl_acc *a, double nll);
/* PPL = exp(mean nll); err = PPL * sqrt(var(nll) / (count - 1)), as
 * llama-perplexity prints it (0 when count < 2 or the variance is not
 * positive). */
void ppl_acc_result(const ppl_acc *a, double *ppl, double *err);

/* log(sum_j exp(l_j)) of a row of V logits, in double; *argmax (optional)
 * receives the index of the largest logit (the first of equals). */
double ppl_row_lse(const float *l, int64_t V, int32_t *argmax);

/* ---- KL-divergence base file ---- */

#define PPL_KL_MAGIC "SWKLBASE"
#define PPL_KL_VERSION 1u
/* Base log-probabilities below this are not stored; their mass is kept as
 * one "rest" entry. */
#define PPL_KL_CUTOFF (-16.0f)

typedef struct ppl_kl_header {
    uint32_t n_vocab, n_ctx, n_chunks;
    int32_t *tokens; /* n_chunks * n_ctx, as evaluated (BOS not substituted) */
} ppl_kl_header;

/* One stored position: the base model's log-probabilities >= PPL_KL_CUTOFF,
 * highest first, the log of the probability mass of all the others (-inf
 * when none), and the log-probability of the token that came next. */
typedef struct ppl_kl_row {
    uint32_t n;      /* entries */
    float rest;      /* log of the mass not listed */
    float target;    /* log-probability of the next token */
    uint32_t *ids;   /* [n] */
    float *lps;      /* [n], non-increasing */
    uint32_t cap;
} ppl_kl_row;

void ppl_kl_row_free(ppl_kl_row *r);

sw_status ppl_kl_write_header(FILE *f, const ppl_kl_header *h, sw_err *err);
/* Store the row of V logits whose log-sum-exp is lse, predicting target.
 * scratch: grown as needed (free with ppl_kl_row_free). */
sw_status ppl_kl_write_row(FILE *f, const float *l, int64_t V, double lse, int32_t target,
                           ppl_kl_row *scratch, sw_err *err);
/* Read and check a header (what = the file name, for errors); h->tokens is
 * malloc'd (free it). Every field is bounded: n_vocab <= 2^24, n_ctx <= 2^20,
 * n_chunks * n_ctx <= 2^28. */
sw_status ppl_kl_read_header(FILE *f, const char *what, ppl_kl_header *h, sw_err *err);
/* Read one row for a vocabulary of n_vocab (ids checked, order checked). */
sw_status ppl_kl_read_row(FILE *f, const char *what, uint32_t n_vocab, ppl_kl_row *r, sw_err *err);

/* Sums over compared positions. */
typedef struct ppl_kl_acc {
    double kl, kl2;
    int64_t same_top, count;
    ppl_acc base; /* the base model's NLL of the same targets */
} ppl_kl_acc;

/* Compare a row of logits (log-sum-exp lse, argmax top) with the base row
 * for the same position: KL(base || this) over the listed entries plus the
 * rest as one outcome, whether the top tokens agree, and the base's NLL of
 * the next token. */
void ppl_kl_compare(ppl_kl_acc *a, const ppl_kl_row *base, const float *l, double lse,
                    int32_t top);

#endif
