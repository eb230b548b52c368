/* tokenizer.h — tokenizers built from GGUF metadata: SentencePiece-style
 * (tokenizer.ggml.model = "llama": scores, byte fallback, U+2581 for spaces) and
 * byte-level BPE ("gpt2": merges and a pre-tokenizer regex chosen by
 * tokenizer.ggml.pre, run with PCRE2). Special/added tokens, BOS/EOS/EOT from
 * metadata, and a streaming detokenizer that never emits half a UTF-8 char. */
#ifndef SW_TOKENIZER_H
#define SW_TOKENIZER_H

#include "gguf.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_tokenizer sw_tokenizer;

/* Build from the tokenizer.ggml.* keys of g (borrowed only during the call: the
 * tokenizer copies what it needs). */
sw_status sw_tokenizer_create(const sw_gguf *g, sw_tokenizer **out, sw_err *err);
void sw_tokenizer_free(sw_tokenizer *t);

int32_t sw_tokenizer_n_vocab(const sw_tokenizer *t);
int32_t sw_tokenizer_bos(const sw_tokenizer *t); /* -1 when the model has none */
int32_t sw_tokenizer_eos(const sw_tokenizer *t);
int32_t sw_tokenizer_eot(const sw_tokenizer *t);
/* Whether a prompt should start with BOS (tokenizer.ggml.add_bos_token, else
 * the model type's default: true for SPM, false for BPE). */
bool sw_tokenizer_add_bos(const sw_tokenizer *t);
/* Separator token (BERT's [SEP]), -1 when the vocab has none. */
int32_t sw_tokenizer_sep(const sw_tokenizer *t);
/* End-of-generation: EOS, EOT, or another token the vocab marks as such. */
bool sw_tokenizer_is_eog(const sw_tokenizer *t, int32_t id);
/* Raw vocabulary entry text (NUL-terminated), or NULL for a bad id. */
const char *sw_tokenizer_token_text(const sw_tokenizer *t, int32_t id);
/* Look up the id of an exact vocabulary entry; -1 if absent. */
int32_t sw_tokenizer_find(const sw_tokenizer *t, const char *text, size_t len);

/* Tokenize len bytes of text. add_bos prepends BOS; parse_special makes the text
 * of special/control tokens (e.g. "<|im_start|>") map to those tokens, otherwise
 * it is tokenized as plain text. *ids is returned (free with free()). */
sw_status sw_tokenize(const sw_tokenizer *t, const char *text, size_t len, bool add_bos,
                      bool parse_special, int32_t **ids, size_t *n_ids, sw_err *err);

/* Tokenize len bytes of text as one whole model input (an embedding input),
 * the way llama.cpp's add_special does: BOS first when the vocab adds it, the
 * text (special-token text is plain text), then EOS when
 * tokenizer.ggml.add_eos_token and SEP when tokenizer.ggml.add_sep_token
 * (default: true for WordPiece vocabs, false otherwise), SEP only once when it
 * is also the EOS. BERT: [CLS] text [SEP]. *ids is returned (free with free()). */
sw_status sw_tokenize_input(const sw_tokenizer *t, const char *text, size_t len, int32_t **ids,
                            size_t *n_ids, sw_err *err);

/* Bytes that token id contributes to the output (byte tokens become their byte,
 * U+2581 becomes a space, BPE byte-to-unicode mapping undone; NUL bytes are
 * dropped, so pieces never contain one). Control tokens
 * produce nothing unless render_special. Returns the number of bytes the piece
 * needs; writes at most cap bytes (no NUL). Returns 0 for a bad id. */
size_t sw_token_to_piece(const sw_tokenizer *t, int32_t id, bool render_special, char *buf,
                         size_t cap);
/* The same bytes (render_special false) as a view into the tokenizer, valid as
 * long as it is: *n bytes, not NUL-terminated. NULL (and *n = 0) for a bad id. */
const char *sw_token_piece(const sw_tokenizer *t, int32_t id, size_t *n);

/* Whole-sequence detokenization into a malloc'd NUL-terminated string. Strips
 * the leading space SPM adds after BOS, as llama.cpp does. */
sw_status sw_detokenize(const sw_tokenizer *t, const int32_t *ids, size_t n, bool render_special,
                        char **out, sw_err *err);

/* Streaming detokenizer: push one token, receive the bytes that are now
 * complete UTF-8 (a character split across tokens is held back until it is
 * whole; a byte that starts no valid sequence comes out as U+FFFD, as
 * sw_utf8_sanitize writes it, so the output is always valid UTF-8). Returns a pointer to an internal NUL-terminated buffer valid until
 * the next call (may be ""). */
typedef struct sw_detok sw_detok;
sw_detok *sw_detok_create(const sw_tokenizer *t, bool render_special); /* t borrowed */
void sw_detok_free(sw_detok *d);
const char *sw_detok_push(sw_detok *d, int32_t id);
const char *sw_detok_flush(sw_detok *d); /* held-back bytes, if any, as U+FFFD each */

#ifdef __cplusplus
}
#endif
#endif
