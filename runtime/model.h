/* model.h — a loaded llama-family model (config, tokenizer, weights on a
 * backend), the paged KV cache, and the forward pass over a flattened batch of
 * tokens from many sequences. The scheduler and the tools build on this. */
#ifndef SW_MODEL_H
#define SW_MODEL_H

#include "backend.h"
#include "gguf.h"
#include "model_config.h"
#include "sw_base.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_model sw_model;

typedef struct sw_model_params {
    bool progress;            /* print a progress bar on stderr while uploading */
    /* Keep q/k/v and gate/up as separate weights (by default each group is
     * concatenated at load when its parts share a type: fewer, larger
     * matmuls with the same results). For comparisons and tests. */
    bool no_concat;
} sw_model_params;

/* Load path onto be (borrowed; must outlive the model). Validates config and
 * every tensor first; a vocab-only file is an error saying it has no weights;
 * an unsupported architecture or quant type names the arch / tensor and type. */
sw_status sw_model_load(const char *path, sw_backend *be, const sw_model_params *params,
                        sw_model **out, sw_err *err);
void sw_model_free(sw_model *m);

const sw_model_config *sw_model_config_get(const sw_model *m);
const sw_tokenizer *sw_model_tokenizer(const sw_model *m);
const sw_gguf *sw_model_gguf(const sw_model *m); /* metadata (chat template etc.) */
sw_backend *sw_model_backend(const sw_model *m);
uint64_t sw_model_weight_bytes(const sw_model *m); /* bytes of all weights */
uint64_t sw_model_n_params(const sw_model *m);     /* number of weight elements */

/* ---- paged KV cache ---- */
typedef struct sw_kv_cache sw_kv_cache;

typedef struct sw_kv_params {
    int32_t block_size; /* tokens per block (default 16 when <= 0) */
    int32_t n_blocks;   /* number of blocks; if <= 0, derived from max_bytes */
    uint64_t max_bytes; /* budget when n_blocks <= 0 */
    sw_type type;       /* SW_TYPE_F16 (default) or SW_TYPE_F32 */
} sw_kv_params;

sw_status sw_kv_cache_create(sw_model *m, const sw_kv_params *p, sw_kv_cache **out, sw_err *err);
void sw_kv_cache_free(sw_kv_cache *kv);
int32_t sw_kv_block_size(const sw_kv_cache *kv);
int32_t sw_kv_n_blocks(const sw_kv_cache *kv);
int32_t sw_kv_n_free(const sw_kv_cache *kv);
uint64_t sw_kv_bytes(const sw_kv_cache *kv);
/* Free list. alloc returns -1 when no block is free. */
int32_t sw_kv_alloc_block(sw_kv_cache *kv);
void sw_kv_free_block(sw_kv_cache *kv, int32_t block);
/* Copy the K and V of every layer of block src (allocated) into block dst
 * (allocated, not src): a sequence takes a private copy of a shared block it
 * must write into. */
sw_status sw_kv_copy_block(sw_kv_cache *kv, int32_t src, int32_t dst, sw_err *err);

/* ---- forward ---- */
/* One step over T tokens from n_seqs sequences. The tokens of sequence s are
 * tokens[seq_start[s] .. seq_start[s+1]) at consecutive positions pos[...];
 * block_tables[s] lists that sequence's blocks (n_blocks[s] of them, enough
 * for its last position). Logits are produced for the last token of each
 * sequence (or for every token when all_logits). */
typedef struct sw_batch {
    int32_t n_tokens;
    const int32_t *tokens;              /* [n_tokens] */
    const int32_t *pos;                 /* [n_tokens] */
    int32_t n_seqs;
    const int32_t *seq_start;           /* [n_seqs + 1] */
    const int32_t *const *block_tables; /* [n_seqs][n_blocks[s]] */
    const int32_t *n_blocks;            /* [n_seqs] */
    bool all_logits;
    /* Optional host array [n_tokens][n_embd]: receives the final hidden state
     * of every token of the batch, after the output norm (the vector the
     * output matrix turns into logits; bert: the last layer's output). NULL:
     * not computed. */
    float *hidden;
    /* Row length of the block tables the step hands the backend: every
     * sequence's blocks, padded. 0: the longest sequence's need rounded up to a
     * power of two. A caller that knows the longest context (the engine: n_ctx)
     * passes its block count, so that the step's shapes, hence its signature
     * (sw_be_stats), stay the same as sequences grow. */
    int32_t block_table_cap;
} sw_batch;

/* logits: host array of n_seqs (or n_tokens when all_logits) rows of n_vocab;
 * NULL when no logits are wanted (a step that only fills the KV cache or
 * takes hidden states; the LM head is then skipped). An embedding model
 * (sw_model_config.embed_only, bert) has no LM head: logits must be NULL.
 * A non-causal model (bert) computes each sequence whole: every sequence of
 * the batch starts at position 0. */
sw_status sw_model_forward(sw_model *m, sw_kv_cache *kv, const sw_batch *b, float *logits,
                           sw_err *err);

/* What a forward hands back per row of logits: the whole row, or a summary made
 * on the device (sw_be_logits_summary: statistics and the k best tokens) for a
 * sampler that can draw from it (sw_sampler_sample_summary). sw_model_forward_out
 * with out NULL wants no logits (as sw_model_forward with logits NULL). */
typedef struct sw_logits_out {
    const uint8_t *full_rows;  /* [R]: nonzero = download the row; NULL = every row */
    float *full;               /* [R * n_vocab] host: row r at r * n_vocab (rows asked for) */
    int32_t k;                 /* candidates per summarized row (1..n_vocab) */
    sw_logits_stats *stats;    /* [R]: summarized rows */
    int32_t *top_ids;          /* [R * k] */
    float *top_logits;         /* [R * k] */
} sw_logits_out;

sw_status sw_model_forward_out(sw_model *m, sw_kv_cache *kv, const sw_batch *b,
                               const sw_logits_out *out, sw_err *err);
/* Rows [r0, r0 + n) of the last forward's logits into dst (host, n * n_vocab
 * floats), e.g. for a row whose summary did not decide its draw. Valid until
 * the next forward of this model. */
sw_status sw_model_last_logits(sw_model *m, int32_t r0, int32_t n, float *dst, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
