/* model_config.h — transformer hyperparameters read from GGUF metadata
 * ("<arch>.block_count" etc.), and the check of every tensor's shape and type
 * against them. Supported architectures: llama, qwen2, gemma3 (decoders), bert
 * (an encoder that embeds: post-LayerNorm, non-causal attention, no LM head). */
#ifndef SW_MODEL_CONFIG_H
#define SW_MODEL_CONFIG_H

#include "gguf.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sw_arch { SW_ARCH_LLAMA = 0, SW_ARCH_QWEN2, SW_ARCH_BERT, SW_ARCH_GEMMA3 } sw_arch;

typedef enum sw_rope_mode {
    SW_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]): llama */
    SW_ROPE_NEOX = 2  /* rotate halves (x[i], x[i+d/2]): qwen2, gpt-neox */
} sw_rope_mode;

typedef enum sw_rope_scaling {
    SW_ROPE_SCALING_NONE = 0,
    SW_ROPE_SCALING_LINEAR,
    SW_ROPE_SCALING_LLAMA3,
} sw_rope_scaling;

/* llama.cpp's pooling types (<arch>.pooling_type). */
typedef enum sw_pooling {
    SW_POOLING_UNSPECIFIED = -1, /* no key: the model does not say */
    SW_POOLING_NONE = 0,
    SW_POOLING_MEAN = 1,
    SW_POOLING_CLS = 2,
    SW_POOLING_LAST = 3,
    SW_POOLING_RANK = 4,
} sw_pooling;

const char *sw_pooling_name(sw_pooling p); /* "mean", ... */

typedef struct sw_model_config {
    sw_arch arch;
    char arch_name[32];
    char name[128];          /* general.name, or "" */
    int64_t n_layer;         /* <arch>.block_count */
    int64_t n_embd;          /* <arch>.embedding_length */
    int64_t n_head;          /* <arch>.attention.head_count */
    int64_t n_head_kv;       /* <arch>.attention.head_count_kv (default n_head) */
    int64_t head_dim;        /* <arch>.attention.key_length or n_embd / n_head */
    int64_t n_ff;            /* <arch>.feed_forward_length */
    int64_t n_ctx_train;     /* <arch>.context_length */
    int64_t n_vocab;         /* token_embd rows (= tokenizer size when present) */
    int64_t n_rot;           /* <arch>.rope.dimension_count (default head_dim) */
    float rope_freq_base;    /* <arch>.rope.freq_base (default 10000) */
    float rope_freq_scale;   /* 1 / rope.scaling.factor for linear scaling, else 1 */
    sw_rope_mode rope_mode;  /* from the architecture */
    sw_rope_scaling rope_scaling;
    float rope_scaling_factor;          /* rope.scaling.factor */
    float rope_llama3_low_freq_factor;  /* rope.scaling.low_freq_factor (default 1) */
    float rope_llama3_high_freq_factor; /* rope.scaling.high_freq_factor (default 4) */
    int64_t rope_llama3_orig_ctx;       /* rope.scaling.original_context_length (8192) */
    float rms_eps;           /* <arch>.attention.layer_norm_rms_epsilon */
    float attn_scale;        /* q.k scale: <arch>.attention.scale, else 1/sqrt(head_dim)
                              * (gemma3 27B: 1/sqrt(n_embd / n_head), its
                              * query_pre_attn_scalar, which GGUF does not carry) */
    float embd_scale;        /* token embeddings are multiplied by it: gemma3
                              * sqrt(n_embd), else 1 */
    float final_logit_softcap; /* <arch>.final_logit_softcapping; 0 = none */
    /* sliding-window attention (gemma3): layer il is a window layer when
     * n_swa > 0 and il % swa_period < swa_period - 1 (so every swa_period-th
     * layer attends globally); window layers rope with rope_freq_base_swa */
    int64_t n_swa;           /* <arch>.attention.sliding_window; 0 = no window layers */
    int64_t swa_period;      /* <arch>.attention.sliding_window_pattern (gemma3: 6) */
    float rope_freq_base_swa; /* <arch>.rope.freq_base_swa (default 10000) */
    bool tied_embeddings;    /* no output.weight: logits use token_embd */
    bool has_qkv_bias;       /* qwen2: attn_{q,k,v}.bias present */
    bool has_rope_freqs;     /* rope_freqs.weight present (llama3.1 style) */
    /* Encoders (bert). */
    bool causal;             /* <arch>.attention.causal (default: true; bert: false) */
    bool embed_only;         /* no LM head: the model embeds, it cannot generate (bert) */
    float norm_eps;          /* <arch>.attention.layer_norm_epsilon (LayerNorm) */
    int64_t n_token_types;   /* token_types.weight rows (bert; 0 = none) */
    sw_pooling pooling;      /* <arch>.pooling_type: how an input's embedding is made */
    bool has_qk_norm;        /* gemma3: attn_{q,k}_norm, RMSNorm of each head */
    bool has_post_norms;     /* gemma3: post_attention_norm, post_ffw_norm */
} sw_model_config;

/* Whether layer il attends through a sliding window of cfg->n_swa positions. */
bool sw_model_config_layer_is_swa(const sw_model_config *cfg, int64_t il);

/* Read the hyperparameters. Unknown architecture -> SW_E_UNSUPPORTED naming it;
 * a missing required key -> SW_E_FORMAT naming the key. */
sw_status sw_model_config_load(const sw_gguf *g, sw_model_config *cfg, sw_err *err);
/* Check that every tensor the forward pass needs exists with the shape the
 * config implies and a type we can compute with; errors name the tensor.
 * A file with zero tensors (vocab-only) -> SW_E_FORMAT "has no weights". */
sw_status sw_model_config_check_tensors(const sw_gguf *g, const sw_model_config *cfg,
                                        sw_err *err);
/* Rope frequency factors for llama3 scaling (n_rot/2 values; ggml semantics:
 * theta_i is divided by factor[i]). */
void sw_model_config_llama3_freq_factors(const sw_model_config *cfg, float *out);

/* ---- quantization policy, shared by spillway-mkmodel and spillway-quantize ----
 * Only weight matrices (2+ dims) go through it; 1-D tensors (norms, biases)
 * stay f32. */

/* Type for a tensor whose rows have ne0 elements when `want` does not divide
 * them. K-quants (256-blocks) take llama.cpp's substitutes, a 32-block type
 * of about the same bits: q2_K/q3_K -> q4_0, q4_K -> q5_0, q5_K -> q5_1,
 * q6_K -> q8_0;
 * if the substitute does not fit either, and for 32-block types, f16.
 * Returns want itself when it fits. */
sw_type sw_model_quant_fallback(sw_type want, int64_t ne0);
/* Type of weight tensor `name` (ggml naming) in a file converted to `base`.
 * With q4_k_m (base must be q4_K) this is llama.cpp's Q4_K_M mixture:
 * output.weight q6_K, and token_embd.weight too when the model ties them (has
 * no output.weight: the one matrix is also the output); blk.N.attn_v.weight
 * and blk.N.ffn_down.weight q6_K in the layers N where N < n_layer/8,
 * N >= 7*n_layer/8 or (N - n_layer/8) % 3 == 2; everything else q4_K.
 * *wanted (optional) receives the type before the row-size fallback, so
 * callers can report tensors that fell back. */
sw_type sw_model_quant_choose(const char *name, int64_t ne0, sw_type base, bool q4_k_m,
                              int64_t n_layer, bool tied, sw_type *wanted);
/* general.file_type value (llama.cpp's llama_ftype) for a file converted to
 * base (q4_k_m: MOSTLY_Q4_K_M = 15). */
uint32_t sw_model_file_type(sw_type base, bool q4_k_m);

#ifdef __cplusplus
}
#endif
#endif
