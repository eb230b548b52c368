/* mkmodel.h — internals of spillway-mkmodel: the synthetic vocabulary and the
 * deterministic weight streams. main.c parses flags and assembles the file. */
#ifndef SW_MKMODEL_H
#define SW_MKMODEL_H

#include <spillway.h>

/* ---- vocab.c ---- */

/* Write a small SentencePiece-style tokenizer with n_vocab entries into w:
 * <unk>, <s>, </s>, the 256 byte tokens <0x00>..<0xFF>, "▁", then printable
 * ASCII pieces with and without a leading "▁", then ever longer lowercase
 * strings until n_vocab is reached. n_vocab must be >= MK_MIN_VOCAB. */
#define MK_MIN_VOCAB 260
#define MK_FIRST_NORMAL 259 /* first ordinary piece ("▁") of a generated vocab */
sw_status mk_write_vocab(sw_gguf_writer *w, int64_t n_vocab, sw_err *err);
/* Write a small WordPiece ("bert") tokenizer with n_vocab entries: [PAD],
 * [UNK], [CLS], [SEP], [MASK] (ids 0..4), printable ASCII but capitals as
 * word starts (U+2581 prefix) and as continuations, then longer lowercase
 * pieces. Inputs become [CLS] ... [SEP]. n_vocab >= MK_MIN_WPM_VOCAB. */
#define MK_MIN_WPM_VOCAB 141
sw_status mk_write_wpm_vocab(sw_gguf_writer *w, int64_t n_vocab, sw_err *err);
/* Copy every tokenizer.* key of src into w; *n_vocab receives the length of
 * tokenizer.ggml.tokens. */
sw_status mk_copy_vocab(sw_gguf_writer *w, const sw_gguf *src, int64_t *n_vocab, sw_err *err);

/* ---- weights.c ---- */

typedef enum mk_kind {
    MK_GAUSS, /* approximately normal, mean 0, standard deviation `scale` */
    MK_CONST, /* every element equals `scale` (norm weights) */
    MK_TABLE, /* values copied from `table` (rope frequency factors) */
    MK_NORM,  /* 1 + approximately normal with standard deviation `scale` (norm
               * weights that differ, so that swapping two norms shows) */
} mk_kind;

#define MK_MAX_THREADS 64

/* Scratch shared by all tensors of one run (one row of f32 and one row of the
 * output type); grown on demand. */
typedef struct mk_scratch {
    float *row, *row2;
    uint8_t *qrow;
    size_t row_cap, qrow_cap;
} mk_scratch;

/* The "bigram" part of output.weight (see main.c): after token t the model
 * predicts next(t) = targets[(a * t + 1) mod m], where targets are the m
 * ordinary tokens (no control, byte or unknown tokens, so greedy decoding never
 * stops at EOS). Output row v = targets[j] gets scale * sum of e_t over every t
 * with (a * t + 1) mod m == j, e_t being row t of token_embd (scale 1). */
typedef struct mk_bigram {
    float scale;
    uint64_t embd_stream;         /* token_embd.weight's stream */
    int64_t n_vocab, m, a, a_inv; /* a * a_inv == 1 (mod m) */
    int32_t *targets;             /* m ids */
    int32_t *pos_of;              /* n_vocab entries: j with targets[j] == v, or -1 */
} mk_bigram;

/* Fill b for a vocabulary whose ordinary tokens are the ids with is_target set.
 * Frees with mk_bigram_free. */
sw_status mk_bigram_init(mk_bigram *b, const bool *is_target, int64_t n_vocab, float scale,
                         uint64_t embd_stream, sw_err *err);
void mk_bigram_free(mk_bigram *b);
int64_t mk_bigram_next(const mk_bigram *b, int64_t t);

/* One tensor to generate. The writer's fill callback may ask for its bytes in
 * one piece or in several consecutive pieces; `pos` tracks how far we are. */
typedef struct mk_tensor {
    char name[96];
    mk_kind kind;
    float scale;
    const float *table; /* MK_TABLE: ne[0] values, borrowed */
    uint32_t n_dims;
    int64_t ne[2];
    sw_type type;
    uint64_t stream;                /* per-tensor PRNG stream id, from the seed and the name */
    const struct mk_bigram *bigram; /* output.weight only, else NULL; borrowed */
    size_t row_bytes;
    uint64_t pos;
    mk_scratch *scratch; /* borrowed: n_threads scratches, one per worker */
    int n_threads;
    int index, count; /* for progress lines */
    bool verbose;     /* print a progress line per tensor (-v) */
    double t_start;
} mk_tensor;

/* Derive the tensor's stream id from the global seed and its name. */
uint64_t mk_stream_id(uint64_t seed, const char *name);
/* Generate row r of tensor t as f32 into out (t->ne[0] values); tmp is a
 * second row of scratch. */
void mk_gen_row(const mk_tensor *t, int64_t r, float *out, float *tmp);
/* sw_gguf_fill_fn: ctx is a mk_tensor. Generates and converts rows on the fly;
 * whole rows are shared out among t->n_threads workers. */
sw_status mk_fill(void *ctx, void *dst, size_t nbytes, sw_err *err);
/* Convert n f32 values into type (float types or a quantized type). */
sw_status mk_convert_row(sw_type type, const float *src, void *dst, int64_t n, sw_err *err);
void mk_scratch_free(mk_scratch *s);
sw_status mk_scratch_reserve(mk_scratch *s, int64_t n, size_t qbytes, sw_err *err);

#endif
