/* embed_model.c — --embedding-model FILE: a dedicated embedding model (a
 * BERT-family GGUF such as all-MiniLM-L6-v2 converted by
 * scripts/convert-bert.py) behind /v1/embeddings, in place of the served
 * model. It has its own engine on the server's backend, and embeds through
 * the same engine source as the served model (embed.c): every input of a
 * request submitted at once, pooled hidden states, L2-normalized. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

typedef struct model_source {
    srv_embedder em;
    srv_embed_engine src;
    sw_model *model;   /* owned */
    sw_engine *engine; /* owned */
    char name[256];    /* the file name without .gguf: what responses call it */
} model_source;

static void model_source_free(srv_embedder *em) {
    model_source *ms = (model_source *)em;
    sw_engine_free(ms->engine);
    sw_model_free(ms->model);
    free(ms);
}

/* The engine's pooling flag for the file's pooling type. */
static sw_status pooling_flag(const char *path, sw_pooling p, unsigned *flag, sw_err *err) {
    switch (p) {
    case SW_POOLING_UNSPECIFIED: /* as the served model: the mean */
    case SW_POOLING_MEAN: *flag = SW_HIDDEN_MEAN; return SW_OK;
    case SW_POOLING_LAST: *flag = SW_HIDDEN_LAST; return SW_OK;
    default:
        return sw_err_set(err, SW_E_UNSUPPORTED,
                          "%s: pooling type '%s' is not supported for embeddings (mean, last)",
                          path, sw_pooling_name(p));
    }
}

/* Engine parameters: an encoder computes each input whole in one step, so a
 * step must hold the longest input, and a request's KV lives for that one
 * step only: a step's worth of blocks (plus one partial block and one block
 * of admission headroom per sequence) is all it needs. */
static void engine_params(const srv_config *c, const sw_model_config *mc, sw_engine_params *ep) {
    sw_engine_params_default(ep);
    ep->n_ctx = (int32_t)SW_MIN(mc->n_ctx_train, (int64_t)(c->ctx > 0 ? c->ctx : INT32_MAX));
    if (c->parallel > 0) ep->max_running = c->parallel;
    if (c->max_queue > 0) ep->max_queued = c->max_queue;
    if (c->batch_tokens > 0) ep->max_batch_tokens = c->batch_tokens;
    if (!mc->causal) {
        ep->max_batch_tokens = SW_MAX(ep->max_batch_tokens, ep->n_ctx);
        int32_t bs = ep->kv_block_size;
        ep->kv_n_blocks = (ep->max_batch_tokens + bs - 1) / bs + 2 * ep->max_running;
    } else {
        ep->kv_memory_bytes = c->kv_memory;
    }
}

sw_status srv_embedder_model_create(srv *s, const char *path, srv_embedder **out, sw_err *err) {
    *out = NULL;
    model_source *ms = calloc(1, sizeof *ms);
    if (!ms) return sw_err_set(err, SW_E_NOMEM, "out of memory creating the embedder");
    sw_status st;
    unsigned hidden = 0;
    sw_model_params mp = {0};
    if ((st = sw_model_load(path, s->be, &mp, &ms->model, err)) != SW_OK) goto fail;
    const sw_model_config *mc = sw_model_config_get(ms->model);
    const sw_tokenizer *tok = sw_model_tokenizer(ms->model);
    if (!tok) {
        st = sw_err_set(err, SW_E_FORMAT, "%s has no tokenizer", path);
        goto fail;
    }
    if ((st = pooling_flag(path, mc->pooling, &hidden, err)) != SW_OK) goto fail;
    sw_engine_params ep;
    engine_params(&s->cfg, mc, &ep);
    if ((st = sw_engine_create(ms->model, &ep, &ms->engine, err)) != SW_OK) goto fail;

    const char *base = strrchr(path, '/');
    snprintf(ms->name, sizeof ms->name, "%s", base ? base + 1 : path);
    size_t n = strlen(ms->name);
    if (n > 5 && !strcmp(ms->name + n - 5, ".gguf")) ms->name[n - 5] = '\0';
    srv_embedder *em = &ms->em;
    em->model = ms->name;
    em->dim = (int32_t)mc->n_embd;
    em->n_vocab = sw_tokenizer_n_vocab(tok);
    em->max_tokens = sw_engine_n_ctx(ms->engine);
    ms->src = (srv_embed_engine){.s = s, .engine = ms->engine, .tok = tok, .hidden = hidden};
    srv_embedder_engine_init(em, &ms->src);
    em->free = model_source_free;
    fprintf(stderr,
            "spillway-server: embedding model %s (%s, %.1fM params, %d dims, %s pooling, up to %d "
            "tokens per input) serves /v1/embeddings as '%s'\n",
            path, mc->arch_name, (double)sw_model_n_params(ms->model) / 1e6, em->dim,
            hidden == SW_HIDDEN_MEAN ? "mean" : "last", em->max_tokens, em->model);
    *out = em;
    return SW_OK;
fail:
    sw_err_wrap(err, st, "--embedding-model");
    sw_engine_free(ms->engine);
    sw_model_free(ms->model);
    free(ms);
    return st;
}
