/* model_internal.h — what model.c (load), kv_cache.c and forward.c share and no
 * one else needs: the weights struct, the per-step scratch state, and access to
 * the KV cache's per-layer tensors. Not part of the public API. */
#ifndef SW_MODEL_INTERNAL_H
#define SW_MODEL_INTERNAL_H

#include "model.h"

/* Alignment of every tensor offset inside a buffer: Vulkan's
 * minStorageBufferOffsetAlignment is at most 256, and CUDA vector loads want 16. */
#define SW_TENSOR_ALIGN 256

static inline size_t sw_align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* One transformer block. Shapes are ggml order [row length, rows]. */
typedef struct sw_layer_weights {
    sw_tensor attn_norm; /* F32 [n_embd] */
    sw_tensor wq;        /* [n_embd, n_head * head_dim] */
    sw_tensor wk;        /* [n_embd, n_head_kv * head_dim] */
    sw_tensor wv;        /* [n_embd, n_head_kv * head_dim] */
    sw_tensor bq;        /* F32 [n_head * head_dim]; qwen2 only (buf NULL otherwise) */
    sw_tensor bk;        /* F32 [n_head_kv * head_dim]; qwen2 only */
    sw_tensor bv;        /* F32 [n_head_kv * head_dim]; qwen2 only */
    sw_tensor q_norm;    /* F32 [head_dim]; gemma3 only (buf NULL otherwise) */
    sw_tensor k_norm;    /* F32 [head_dim]; gemma3 only */
    sw_tensor wo;        /* [n_head * head_dim, n_embd] */
    sw_tensor post_attn_norm; /* F32 [n_embd]; gemma3 only */
    sw_tensor ffn_norm;  /* F32 [n_embd] */
    sw_tensor w_gate;    /* [n_embd, n_ff] */
    sw_tensor w_up;      /* [n_embd, n_ff] */
    sw_tensor w_down;    /* [n_ff, n_embd] */
    /* bert (post-norm encoder) only; buf NULL otherwise */
    sw_tensor bo;              /* F32 [n_embd] attn_output.bias */
    sw_tensor attn_out_norm;   /* F32 [n_embd] LayerNorm after attention ... */
    sw_tensor attn_out_norm_b; /* F32 [n_embd] ... and its bias */
    sw_tensor b_up;            /* F32 [n_ff] */
    sw_tensor b_down;          /* F32 [n_embd] */
    sw_tensor out_norm;        /* F32 [n_embd] LayerNorm after the FFN ... */
    sw_tensor out_norm_b;      /* F32 [n_embd] ... and its bias */
    sw_tensor post_ffn_norm; /* F32 [n_embd]; gemma3 only */
    /* Concatenated at load when the parts share a type (so one matmul, with
     * one quantization of its input, does the work of several); the parts'
     * own descriptors then have no buffer. buf NULL when not concatenated. */
    sw_tensor wqkv;      /* [n_embd, (n_head + 2 n_head_kv) head_dim]: q, k, v rows */
    sw_tensor bqkv;      /* F32 [(n_head + 2 n_head_kv) head_dim]: qwen2's biases */
    sw_tensor w_gate_up; /* [n_embd, 2 n_ff]: gate rows, then up rows */
} sw_layer_weights;

typedef struct sw_weights {
    sw_tensor token_embd;     /* [n_embd, n_vocab], any type (get_rows dequantizes) */
    sw_tensor output_norm;    /* F32 [n_embd]; buf NULL for bert (post-norm layers) */
    sw_tensor output;         /* [n_embd, n_vocab]; a copy of token_embd's descriptor when
                               * tied; buf NULL for an embed-only model (bert) */
    sw_tensor rope_freqs;     /* F32 [n_rot / 2]; buf NULL when every factor is 1 */
    /* bert only (buf NULL otherwise) */
    sw_tensor pos_embd;       /* [n_embd, n_ctx_train] learned positions, any type */
    sw_tensor token_types;    /* [n_embd, n_token_types], any type; buf NULL when absent */
    sw_tensor embd_norm;      /* F32 [n_embd] LayerNorm of the summed embeddings ... */
    sw_tensor embd_norm_b;    /* F32 [n_embd] ... and its bias */
    sw_layer_weights *layers; /* [n_layer] */
} sw_weights;

/* Per-step scratch: device buffers grown to the largest batch seen, plus a host
 * staging area for the step's index tensors. */
typedef struct sw_run_state {
    sw_buffer *act;      /* SW_BUF_COMPUTE: activations */
    size_t act_size;
    sw_buffer *idx;      /* SW_BUF_HOST_VISIBLE: tokens, positions, tables, slots */
    size_t idx_size;
    int32_t *host_idx;   /* staging copy of idx, same layout */
    size_t host_idx_size;
    sw_tensor logits;    /* [n_vocab, R] of the last forward (buf NULL before one) */
} sw_run_state;

struct sw_model {
    sw_model_config cfg;
    sw_gguf *gguf;          /* owned: metadata stays readable (chat template) */
    sw_tokenizer *tok;      /* owned */
    sw_backend *be;         /* borrowed */
    sw_buffer **bufs;       /* owned weight buffers: [0] globals, [1 + i] layer i */
    int64_t n_bufs;
    uint64_t weight_bytes;  /* bytes of weight data uploaded */
    uint64_t n_params;      /* number of weight elements */
    sw_weights w;
    sw_run_state rs;
};

/* The KV cache's tensors for one layer: [head_dim, n_head_kv, block_size, n_blocks]. */
sw_tensor *sw_kv_layer_k(sw_kv_cache *kv, int64_t layer);
sw_tensor *sw_kv_layer_v(sw_kv_cache *kv, int64_t layer);
const sw_model *sw_kv_model(const sw_kv_cache *kv);

/* Release the forward pass's scratch (called by sw_model_free). */
void sw_forward_state_free(sw_model *m);

#endif
