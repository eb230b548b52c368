/* backend.h — the device interface every backend implements (CPU, CUDA, Vulkan).
 *
 * A backend owns device memory (buffers) and executes the ops of a llama-family
 * forward pass on device tensors. The forward pass calls ops eagerly between
 * sw_be_begin and sw_be_end; a backend may execute them at once (CPU) or record
 * them into one command stream and submit at end (CUDA stream / graph, Vulkan
 * command buffer). Every op works on a flattened batch of T tokens that may come
 * from many sequences; attention reads a paged KV cache through block tables.
 *
 * Conventions
 * - Tensors are ggml-shaped: ne[0] is the innermost (row) length, ne[1] rows,
 *   ne[2], ne[3] outer dims. nb[] are byte strides; nb[0] is the element (or
 *   block) size and rows are contiguous within themselves. Activations are F32.
 * - Weights W used in matmul have ne = [K, N]: N rows of K elements in any
 *   sw_type the backend supports; x is [K, T] F32; out is [N, T] F32.
 * - Index tensors (token ids, positions, slots, block tables) are I32 and live
 *   in device buffers; the runtime uploads them once per step.
 * - No globals: all state hangs off the sw_backend. Functions never abort.
 *
 * Backends fill a sw_backend_ops table; slots marked optional may be NULL and
 * the sw_be_* wrappers provide the default. */
#ifndef SW_BACKEND_H
#define SW_BACKEND_H

#include "quant.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_backend sw_backend;
typedef struct sw_buffer sw_buffer; /* backend-specific device allocation */

typedef enum sw_buf_usage {
    SW_BUF_WEIGHTS = 0, /* uploaded once, read by kernels */
    SW_BUF_COMPUTE,     /* activations, scratch */
    SW_BUF_KV,          /* KV cache blocks */
    SW_BUF_HOST_VISIBLE /* small metadata the host writes every step */
} sw_buf_usage;

typedef struct sw_tensor {
    sw_buffer *buf;  /* borrowed */
    size_t offset;   /* byte offset of element 0 in buf */
    sw_type type;
    int64_t ne[4];
    size_t nb[4];
} sw_tensor;

/* A contiguous tensor at buf+offset (unused trailing dims = 1). */
sw_tensor sw_tensor_make(sw_buffer *buf, size_t offset, sw_type type, int64_t ne0, int64_t ne1,
                         int64_t ne2, int64_t ne3);
/* Bytes spanned by a contiguous tensor of this type and shape (0 if ne0 is not
 * a multiple of the block size). */
size_t sw_tensor_nbytes(const sw_tensor *t);
/* Rows [r0, r0+n) of a 2-D tensor, as a view (same buffer). */
sw_tensor sw_tensor_rows(const sw_tensor *t, int64_t r0, int64_t n);
/* Columns [c0, c0+n) of every row of a 2-D F32 tensor, as a strided view
 * (e.g. the q, k and v parts of a fused QKV output). */
sw_tensor sw_tensor_cols(const sw_tensor *t, int64_t c0, int64_t n);
int64_t sw_tensor_nelements(const sw_tensor *t);

typedef struct sw_rope_params {
    int32_t n_dims;                  /* rotated dims per head (<= head_dim) */
    int32_t mode;                    /* sw_rope_mode: 0 adjacent pairs, 2 NeoX halves */
    float freq_base;                 /* theta_i = pos * freq_scale * base^(-2i/n_dims) / ff[i] */
    float freq_scale;
    const sw_tensor *freq_factors;   /* optional F32 [n_dims/2]; NULL = all 1 */
} sw_rope_params;

/* Everything attention needs to find each token's context in the paged cache.
 * The tokens of sequence s are rows [seq_start[s], seq_start[s+1]) of q; token
 * t sits at position pos[t] and attends to positions lo..pos[t] of its own
 * sequence (causal; lo = 0, or max(0, pos[t] - window + 1) with a sliding
 * window), whose KV slot for position p is
 *   block_tables[s * max_blocks + p / block_size] * block_size + p % block_size.
 * The current tokens' K/V must have been written (sw_be_kv_write) first. */
typedef struct sw_attn_params {
    int32_t n_head, n_head_kv, head_dim;
    float scale;                     /* usually 1/sqrt(head_dim) */
    int32_t block_size;              /* tokens per KV block */
    int32_t n_seqs;
    int32_t max_blocks;              /* row length of block_tables */
    int32_t max_ctx;                 /* upper bound on pos[t]+1 over the batch (for scratch sizing) */
    const sw_tensor *seq_start;      /* I32 [n_seqs + 1] */
    const sw_tensor *pos;            /* I32 [T] */
    const sw_tensor *block_tables;   /* I32 [max_blocks, n_seqs] */
    /* Non-causal (encoders such as BERT): every token of sequence s attends to
     * positions 0..P of s, P the last position of s in this batch, i.e. to the
     * tokens after it as well. Backends without it refuse it (see
     * sw_backend_ops.non_causal_attention). */
    bool non_causal;
    int32_t window;                  /* sliding window in positions (the token's own
                                      * included, as llama.cpp's n_swa); 0 = none */
} sw_attn_params;

/* Per-row summary of a logits matrix, for the sampler and confidence monitor
 * without moving whole vocabularies off the device (runtime/logits.h has the
 * host implementation, which the sampler shares bit for bit). */
typedef struct sw_logits_stats {
    float max;        /* largest logit (NaN logits are ignored) */
    float logsumexp;  /* (float) log_z */
    float entropy;    /* nats, of softmax(logits) */
    int32_t n_nan;    /* NaN logits in the row (the sampler refuses such a row) */
    double sum_exp;   /* sum_j exp(logit_j - max) */
    double log_z;     /* max + log(sum_exp): logprob(j) = logit_j - log_z */
} sw_logits_stats;

/* Counters the sw_be_* wrappers keep for every backend (sw_be_stats_get):
 * how many ops a step issues, and how many different steps there were. A
 * step's signature hashes what a recorded step depends on: each op's kind,
 * its tensors (buffer, offset, type, shape, strides) and its parameters,
 * except sw_attn_params.max_ctx (only a scratch bound). Two steps with the
 * same signature are the same launches on the same addresses: a CUDA graph
 * captured from one replays the other. */
typedef struct sw_be_stats {
    uint64_t steps;         /* completed sw_be_begin .. sw_be_end pairs */
    uint64_t ops;           /* ops issued (inside steps or not) */
    uint32_t last_step_ops; /* ops of the last completed step */
    uint32_t n_signatures;  /* distinct step signatures since the last reset */
    uint64_t last_step_sig; /* signature of the last completed step */
} sw_be_stats;

typedef struct sw_backend_ops {
    const char *name; /* "cpu", "cuda", "vulkan" */
    void (*free)(sw_backend *be);

    /* ---- memory ---- */
    sw_status (*buf_alloc)(sw_backend *be, size_t size, sw_buf_usage usage, sw_buffer **out,
                           sw_err *err);
    void (*buf_free)(sw_backend *be, sw_buffer *buf);
    sw_status (*upload)(sw_backend *be, sw_buffer *dst, size_t offset, const void *src,
                        size_t n, sw_err *err);
    sw_status (*download)(sw_backend *be, sw_buffer *src, size_t offset, void *dst, size_t n,
                          sw_err *err);
    /* optional: upload a weight tensor, repacking it into a backend-private
     * layout; default = upload of the raw GGUF bytes. */
    sw_status (*upload_weight)(sw_backend *be, const sw_tensor *dst, const void *src,
                               sw_err *err);
    /* optional: free/total device memory in bytes; default = SW_E_UNSUPPORTED. */
    sw_status (*mem_info)(sw_backend *be, size_t *free_b, size_t *total_b, sw_err *err);
    /* optional: whether matmul supports weights of this type (default: F32 only). */
    bool (*supports_type)(sw_backend *be, sw_type type);
    /* optional: host address of a buffer when it is host memory (CPU); else NULL. */
    void *(*host_ptr)(sw_backend *be, sw_buffer *buf);

    /* ---- step ---- */
    sw_status (*begin)(sw_backend *be, sw_err *err);          /* optional */
    sw_status (*end)(sw_backend *be, sw_err *err);            /* optional: submit + wait */

    /* ---- ops ---- */
    /* out[:, t] = table[:, ids[t]] (dequantized to F32). table: [n, rows] any type. */
    sw_status (*get_rows)(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                          sw_tensor *out, sw_err *err);
    /* out = x / rms(x) * w per row; w: F32 [n]. out may alias x. */
    sw_status (*rms_norm)(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                          sw_tensor *out, sw_err *err);
    /* out[N, T] = W[K, N]^T x[K, T] (+ bias[N] if non-NULL). */
    sw_status (*matmul)(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                        const sw_tensor *bias, sw_tensor *out, sw_err *err);
    /* In place on x: F32 [head_dim, n_heads, T] (strided rows allowed). */
    sw_status (*rope)(sw_backend *be, sw_tensor *x, const sw_tensor *pos,
                      const sw_rope_params *p, sw_err *err);
    /* Store k, v (F32 [head_dim * n_head_kv, T]) into the caches at slots[t].
     * Caches: [head_dim, n_head_kv, block_size, n_blocks] of F16 or F32. */
    sw_status (*kv_write)(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                          sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                          sw_err *err);
    /* out[head_dim * n_head, T] = softmax(q k^T * scale + causal mask) v, per head,
     * with GQA (head h reads kv head h / (n_head / n_head_kv)). */
    sw_status (*attention)(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                           const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                           sw_err *err);
    /* out = silu(gate) * up, elementwise. out may alias gate or up (the forward
     * pass writes it over gate). */
    sw_status (*swiglu)(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                        sw_tensor *out, sw_err *err);
    /* out = gelu(gate) * up, elementwise, with the tanh form of GELU:
     * gelu(g) = g/2 (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) (GeGLU, Gemma).
     * out may alias gate or up. */
    sw_status (*geglu)(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                       sw_tensor *out, sw_err *err);
    /* out = a + b, elementwise (same shape). out may alias a or b. */
    sw_status (*add)(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                     sw_err *err);
    /* out = x * s, elementwise. out may alias x. */
    sw_status (*scale)(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err);
    /* out = cap * tanh(x / cap), elementwise (logit soft-capping; cap > 0).
     * out may alias x. */
    sw_status (*softcap)(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                         sw_err *err);
    /* Fused ops: each is one op doing what a sequence of the ops above does,
     * with the same arithmetic (the CPU reference tests each against its
     * sequence). Optional: the wrapper runs the sequence where NULL. */
    /* x = x + h, then out = rmsnorm(x) * w, per row (the residual add and the
     * norm that follows it). F32 [n, rows]; w: F32 [n]. out may alias h, not x. */
    sw_status (*add_rms_norm)(sw_backend *be, sw_tensor *x, const sw_tensor *h,
                              const sw_tensor *w, float eps, sw_tensor *out, sw_err *err);
    /* rope on q (F32 [head_dim, n_head, T], in place) and on k (F32 [head_dim,
     * n_head_kv, T]), and the rotated k and v (F32 [head_dim * n_head_kv, T])
     * stored into the caches at slots[t] (as kv_write): rope, rope, kv_write.
     * Each token's heads must be contiguous (nb[1] = 4 head_dim). What k holds
     * afterwards is unspecified (the cache has its rotated values). */
    sw_status (*rope_kv_write)(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                               const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                               sw_tensor *v_cache, const sw_tensor *slots, sw_err *err);
    /* optional: per row of logits [V, R], write stats (host array [R]) and the
     * top k ids and their raw logits (host arrays [R * k], best first: logit
     * descending, then id ascending); outside a step. Default: the host math of
     * runtime/logits.h, on the logits in place (host memory) or downloaded. */
    sw_status (*logits_summary)(sw_backend *be, const sw_tensor *logits, int32_t k,
                                sw_logits_stats *stats, int32_t *top_ids, float *top_logits,
                                sw_err *err);

    /* ---- encoder ops (BERT); optional: NULL = SW_E_UNSUPPORTED ---- */
    /* out = (x - mean(x)) / sqrt(var(x) + eps) * w + b per row (LayerNorm,
     * biased variance as torch's); w, b: F32 [n]; b may be NULL. out may alias x. */
    sw_status (*layer_norm)(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                            const sw_tensor *b, float eps, sw_tensor *out, sw_err *err);
    /* out = gelu(x) = x/2 (1 + erf(x / sqrt(2))), elementwise: the exact GELU
     * (BERT's "gelu"), not the tanh approximation. out may alias x. */
    sw_status (*gelu)(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err);
    /* attention honours sw_attn_params.non_causal */
    bool non_causal_attention;
    /* optional: host memory that transfers to and from the device fastest
     * (CUDA: pinned); default malloc / free. */
    void *(*host_alloc)(sw_backend *be, size_t size);
    void (*host_free)(sw_backend *be, void *p);
} sw_backend_ops;

/* What the wrappers count (backend.c); zero-initialised with the backend. */
typedef struct sw_be_count {
    sw_be_stats stats;
    bool in_step;
    uint32_t step_ops;
    uint64_t step_sig;
    uint64_t *sigs; /* distinct signatures seen, sorted; owned */
    uint32_t cap_sigs;
} sw_be_count;

/* Every backend struct starts with this header. */
struct sw_backend {
    const sw_backend_ops *ops;
    int32_t n_threads; /* CPU threads the backend may use */
    sw_be_count count; /* the wrappers' counters; backends leave it alone */
};

/* ---- creation ---- */
typedef struct sw_backend_config {
    const char *name; /* "cpu", "cuda", "vulkan", "auto" (default when NULL) */
    int32_t n_threads; /* <= 0: number of online cores */
    int32_t device;    /* GPU device index; < 0: the preferred device (tools default to -1) */
} sw_backend_config;

/* Create the named backend; "auto" tries cuda, then vulkan, then cpu, logging
 * why each one it skips was skipped. Backends not built in are SW_E_UNSUPPORTED
 * with a message saying how to enable them. */
sw_status sw_backend_create(const sw_backend_config *cfg, sw_backend **out, sw_err *err);
void sw_backend_free(sw_backend *be);
const char *sw_backend_name(const sw_backend *be);

/* ---- wrappers: validate shapes/types, then dispatch (or provide defaults) ---- */
sw_status sw_be_buf_alloc(sw_backend *be, size_t size, sw_buf_usage usage, sw_buffer **out,
                          sw_err *err);
void sw_be_buf_free(sw_backend *be, sw_buffer *buf);
sw_status sw_be_upload(sw_backend *be, sw_buffer *dst, size_t offset, const void *src, size_t n,
                       sw_err *err);
sw_status sw_be_download(sw_backend *be, sw_buffer *src, size_t offset, void *dst, size_t n,
                         sw_err *err);
sw_status sw_be_upload_weight(sw_backend *be, const sw_tensor *dst, const void *src, sw_err *err);
sw_status sw_be_mem_info(sw_backend *be, size_t *free_b, size_t *total_b, sw_err *err);
bool sw_be_supports_type(sw_backend *be, sw_type type);
sw_status sw_be_begin(sw_backend *be, sw_err *err);
sw_status sw_be_end(sw_backend *be, sw_err *err);
sw_status sw_be_get_rows(sw_backend *be, const sw_tensor *table, const sw_tensor *ids,
                         sw_tensor *out, sw_err *err);
sw_status sw_be_rms_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w, float eps,
                         sw_tensor *out, sw_err *err);
sw_status sw_be_matmul(sw_backend *be, const sw_tensor *w, const sw_tensor *x,
                       const sw_tensor *bias, sw_tensor *out, sw_err *err);
sw_status sw_be_rope(sw_backend *be, sw_tensor *x, const sw_tensor *pos, const sw_rope_params *p,
                     sw_err *err);
sw_status sw_be_kv_write(sw_backend *be, const sw_tensor *k, const sw_tensor *v,
                         sw_tensor *k_cache, sw_tensor *v_cache, const sw_tensor *slots,
                         sw_err *err);
sw_status sw_be_attention(sw_backend *be, const sw_tensor *q, const sw_tensor *k_cache,
                          const sw_tensor *v_cache, const sw_attn_params *p, sw_tensor *out,
                          sw_err *err);
sw_status sw_be_swiglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                       sw_tensor *out, sw_err *err);
sw_status sw_be_geglu(sw_backend *be, const sw_tensor *gate, const sw_tensor *up,
                      sw_tensor *out, sw_err *err);
sw_status sw_be_add(sw_backend *be, const sw_tensor *a, const sw_tensor *b, sw_tensor *out,
                    sw_err *err);
sw_status sw_be_layer_norm(sw_backend *be, const sw_tensor *x, const sw_tensor *w,
                           const sw_tensor *b, float eps, sw_tensor *out, sw_err *err);
sw_status sw_be_gelu(sw_backend *be, const sw_tensor *x, sw_tensor *out, sw_err *err);
/* SW_OK when be has every op an encoder (bert) needs: layer_norm, gelu and
 * non-causal attention; else SW_E_UNSUPPORTED naming what is missing. */
sw_status sw_be_check_encoder_ops(sw_backend *be, sw_err *err);
sw_status sw_be_scale(sw_backend *be, const sw_tensor *x, float s, sw_tensor *out, sw_err *err);
sw_status sw_be_softcap(sw_backend *be, const sw_tensor *x, float cap, sw_tensor *out,
                        sw_err *err);
sw_status sw_be_add_rms_norm(sw_backend *be, sw_tensor *x, const sw_tensor *h, const sw_tensor *w,
                             float eps, sw_tensor *out, sw_err *err);
sw_status sw_be_rope_kv_write(sw_backend *be, sw_tensor *q, sw_tensor *k, const sw_tensor *v,
                              const sw_tensor *pos, const sw_rope_params *p, sw_tensor *k_cache,
                              sw_tensor *v_cache, const sw_tensor *slots, sw_err *err);
sw_status sw_be_logits_summary(sw_backend *be, const sw_tensor *logits, int32_t k,
                               sw_logits_stats *stats, int32_t *top_ids, float *top_logits,
                               sw_err *err);
/* Host memory for transfers (pinned on CUDA); NULL when out of memory. Free
 * with sw_be_host_free on the same backend (NULL is a no-op). */
void *sw_be_host_alloc(sw_backend *be, size_t size);
void sw_be_host_free(sw_backend *be, void *p);

/* The counters above; reset zeroes them and forgets the signatures seen. */
void sw_be_stats_get(const sw_backend *be, sw_be_stats *out);
void sw_be_stats_reset(sw_backend *be);

/* Host pointer of a CPU buffer (NULL for device buffers); used by tests and by
 * the CPU implementation. */
void *sw_be_host_ptr(sw_backend *be, sw_buffer *buf);

#ifdef __cplusplus
}
#endif
#endif
