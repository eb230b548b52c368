/* embed.h — POST /v1/embeddings and where its vectors come from.
 *
 * An embedding source (srv_embedder) turns inputs, as token ids of its own
 * vocabulary, into L2-normalized vectors. The default source is the served
 * model: the mean over the prompt of its final hidden states (after the
 * output norm), computed by the engine (SW_HIDDEN_MEAN, no_generate), every
 * input of a request submitted at once so they share the engine's batches.
 * A dedicated embedding model (a BERT-family GGUF) is another source behind
 * the same endpoint: fill an srv_embedder and set srv.embedder. */
#ifndef SW_SERVER_EMBED_H
#define SW_SERVER_EMBED_H

#include "server.h"

typedef struct srv_embed_input {
    const int32_t *ids; /* [n] token ids of the source's vocabulary; borrowed */
    size_t n;
} srv_embed_input;

typedef struct srv_embedder srv_embedder;
struct srv_embedder {
    const char *model;  /* the name responses give */
    int32_t dim;        /* floats per vector */
    int32_t n_vocab;    /* token-id inputs must be below it */
    int32_t max_tokens; /* the longest input, in tokens */
    void *ctx;          /* the source's own state */
    /* text -> the source's tokens (*ids malloc'd). false with e (400) filled. */
    bool (*tokenize)(const srv_embedder *em, const char *text, int32_t **ids, size_t *n,
                     srv_error *e);
    /* Embed in[0..n) into out[n * dim], each vector L2-normalized; blocks
     * until done. sc is watched while waiting: a client that hangs up, a
     * server shutdown or the request deadline stops the work (false, e
     * filled). */
    bool (*embed)(const srv_embedder *em, const srv_embed_input *in, size_t n, float *out,
                  srv_conn *sc, srv_error *e);
    void (*free)(srv_embedder *em);
};

/* The default source over the served model and its engine (borrowed: they
 * must outlive it). */
sw_status srv_embedder_engine_create(srv *s, srv_embedder **out, sw_err *err);
void srv_embedder_free(srv_embedder *em); /* NULL is a no-op */

/* What an engine-backed source embeds with: the served model's engine
 * (srv_embedder_engine_create) or a dedicated model's (embed_model.c). */
typedef struct srv_embed_engine {
    srv *s;                  /* the server: request deadline, shutdown state (borrowed) */
    sw_engine *engine;       /* borrowed */
    const sw_tokenizer *tok; /* borrowed */
    unsigned hidden;         /* SW_HIDDEN_MEAN or SW_HIDDEN_LAST: the pooling */
} srv_embed_engine;

/* Fill em's tokenize and embed callbacks for an engine source; em->ctx is
 * set to src (borrowed: it must live as long as em). Texts are tokenized as
 * whole inputs (sw_tokenize_input: BOS, and EOS/SEP where the vocab adds
 * them, e.g. BERT's [CLS] ... [SEP]). */
void srv_embedder_engine_init(srv_embedder *em, srv_embed_engine *src);

/* --embedding-model FILE (embed_model.c): load FILE on the server's backend
 * with its own engine (every input computed in one step, so inputs up to the
 * model's context), pooled as the file says (mean, or last); the source owns
 * the model and the engine. */
sw_status srv_embedder_model_create(srv *s, const char *path, srv_embedder **out, sw_err *err);

/* ---- the wire format (embed_parse.c) ---- */

/* A checked /v1/embeddings request. */
typedef struct srv_embed_req {
    srv_embed_input *in; /* [n]; each input's ids owned */
    size_t n;
    bool base64;         /* encoding_format "base64" */
    const char *model;   /* borrowed from the body; NULL: not given */
} srv_embed_req;

/* Check root (the parsed body): input (a string, up to 2048 strings, token
 * ids, or lists of them; texts tokenized by em, ids bounded by em->n_vocab,
 * each at most em->max_tokens), encoding_format, dimensions (only em->dim),
 * user. false with e filled (400 naming the param), r freed. */
bool srv_embed_parse(const cJSON *root, const srv_embedder *em, srv_embed_req *r, srv_error *e);
void srv_embed_req_free(srv_embed_req *r);
/* The response body for out[r->n * em->dim] (malloc'd; NULL when out of memory). */
char *srv_embed_json(const srv_embedder *em, const srv_embed_req *r, const float *out,
                     size_t tokens);

/* L2-normalize v[0..n) in place (a zero vector stays zero). */
void srv_l2_normalize(float *v, int32_t n);

#endif
