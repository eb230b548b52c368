/* route_model.h — the learned router: a pre-call score for "the local answer
 * will not be good enough", from the local model's own prefill.
 *
 * Inputs: the final hidden state(s) of the prompt (the engine's
 * SW_EVENT_HIDDEN: last token and/or mean over positions) and a few cheap
 * features of the query text (sw_rtr_text_features). Classifier: L2 logistic
 * regression on standardized features (logreg.h), y = 1 when the local answer
 * was wrong. The score is its probability, in [0, 1].
 *
 * The router file (JSON) records the model it was trained for (name and a
 * fingerprint of the GGUF's tensor metadata), how chat prompts were rendered
 * (the tokens of a fixed probe conversation: the hidden states depend on the
 * chat template, e.g. a default system prompt), the feature set, the classifier,
 * the out-of-fold training scores (the cloud-share controller's warm start)
 * and the cross-validated AUROC. Loading checks every field and names the one
 * at fault; sw_rtr_check_model refuses a router made for another model.
 *
 * Threading: score, update and save take the router's lock; a router may be
 * shared by every connection thread. */
#ifndef SW_ROUTE_MODEL_H
#define SW_ROUTE_MODEL_H

#include "gguf.h"
#include "logreg.h"
#include "tokenizer.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cheap features of the query text (the last user message, or the
 * completions prompt): log prompt tokens, log characters, log words, count of
 * numbers, digits of the longest number, share of digits, arithmetic words and
 * operators, quoted spans. */
#define SW_RTR_N_TEXT 8
void sw_rtr_text_features(const char *text, int32_t n_prompt_tokens, float out[SW_RTR_N_TEXT]);

/* The model's identity: name (general.name, else "unnamed") and a 16-hex-digit
 * FNV-1a fingerprint of the architecture and every tensor's name, type and
 * shape. name is truncated to name_cap. */
void sw_rtr_model_id(const sw_gguf *g, char *name, size_t name_cap, char id[17]);

/* Feature-set flag beside SW_HIDDEN_LAST / SW_HIDDEN_MEAN (engine.h): the
 * mean final hidden state over the query's tokens only (the last user
 * message inside the rendered chat prompt, sw_rtr_query_span), not over a
 * system prompt or the template's text. The engine computes it as
 * SW_HIDDEN_MEAN over that span, so a feature set has "mean" or "query",
 * never both. */
#define SW_RTR_HIDDEN_QUERY 4u

/* The SW_HIDDEN_* flags to ask the engine for, for a feature set's flags. */
unsigned sw_rtr_engine_hidden(unsigned spec_hidden);

/* The query's span [span[0], span[1]) in the prompt's tokens: the tokens
 * whose text overlaps the last occurrence of the query (surrounding
 * whitespace trimmed, as templates often do) in the prompt's text (the
 * tokens' pieces, control tokens as their text), so a tokenizer that merges
 * across the query's edges or adds a leading space still gives its span.
 * Where the query does not occur (an empty query, a template that rewrites
 * it) the span is the whole prompt, so the feature degrades to the plain
 * mean. Returns true when found. */
bool sw_rtr_query_span(const sw_tokenizer *tok, const int32_t *ids, int32_t n,
                       const char *query, int32_t span[2]);

/* What one request gives the router. Borrowed. */
typedef struct sw_rtr_input {
    const float *hidden_last;  /* [n_embd] or NULL */
    const float *hidden_mean;  /* [n_embd] or NULL; with SW_RTR_HIDDEN_QUERY: the query-span mean */
    int32_t n_embd;
    const char *text;          /* the query text; NULL counts as "" */
    int32_t n_prompt_tokens;
} sw_rtr_input;

/* The chat rendering's identity: the user message of a fixed one-message
 * conversation; whoever renders chat prompts (spillway-router, the server)
 * renders it with add_generation_prompt, tokenizes it like a request, and
 * hashes the ids (sw_rtr_prompt_id). Same id: the same prompt text for the
 * same messages, so the same hidden states. */
#define SW_RTR_PROBE_TEXT "What is 2 + 3?"
void sw_rtr_prompt_id(const int32_t *ids, size_t n, char id[17]);

/* Feature set: SW_HIDDEN_LAST / SW_HIDDEN_MEAN flags (engine.h) or
 * SW_RTR_HIDDEN_QUERY, and text. */
typedef struct sw_rtr_spec {
    const char *model_name;
    const char *model_id;
    /* The chat rendering it was trained with: sw_rtr_prompt_id of the probe
     * and the probe's rendered text (for messages); NULL when unknown (a file
     * from before this was recorded). */
    const char *prompt_id;
    const char *prompt_probe;
    unsigned hidden;
    bool text;
    int32_t n_embd;
} sw_rtr_spec;

/* Length of the feature vector of a spec, and the vector itself (out has
 * sw_rtr_dim entries; SW_E_INVALID_ARG when a needed input is missing or has
 * another n_embd). */
int32_t sw_rtr_dim(const sw_rtr_spec *spec);
sw_status sw_rtr_vector(const sw_rtr_spec *spec, const sw_rtr_input *in, float *out, sw_err *err);

typedef struct sw_rtr sw_rtr;

/* A router from a fitted classifier (copied; its d must be sw_rtr_dim(spec)),
 * the out-of-fold training probabilities (copied) and training facts. */
typedef struct sw_rtr_train_info {
    const double *scores;  /* [n_scores] out-of-fold P(wrong) of the training set */
    int32_t n_scores;
    int32_t n_train, n_wrong;
    double cv_auroc;
} sw_rtr_train_info;

sw_status sw_rtr_create(const sw_rtr_spec *spec, const sw_logreg *clf,
                        const sw_rtr_train_info *info, sw_rtr **out, sw_err *err);
void sw_rtr_free(sw_rtr *r); /* NULL is a no-op */

/* Write the router file (to path.tmp, then renamed over path). */
sw_status sw_rtr_save(sw_rtr *r, const char *path, sw_err *err);
/* Read one. Errors name the file and the field ("r.json: classifier.w: expected
 * 584 numbers, got 12"); a truncated file is "not valid JSON". */
sw_status sw_rtr_load(const char *path, sw_rtr **out, sw_err *err);
/* The same over a buffer (borrowed); name is used in error messages. */
sw_status sw_rtr_load_memory(const char *buf, size_t len, const char *name, sw_rtr **out,
                             sw_err *err);
/* SW_E_INVALID_ARG unless the router was trained for this model (same
 * fingerprint); the message names both models. */
sw_status sw_rtr_check_model(const sw_rtr *r, const char *model_name, const char *model_id,
                             sw_err *err);

/* The chat rendering: SW_OK when it is the one the router was trained with
 * (same prompt id); SW_E_INVALID_ARG naming both renderings when not;
 * SW_E_NOT_FOUND when the router does not record one (an older file: the
 * caller can only warn). probe is this rendering's probe text (borrowed). */
sw_status sw_rtr_check_prompt(const sw_rtr *r, const char *prompt_id, const char *probe,
                              sw_err *err);

const sw_rtr_spec *sw_rtr_spec_get(const sw_rtr *r); /* strings owned by r */
/* The training scores (borrowed) and facts. */
const double *sw_rtr_train_scores(const sw_rtr *r, int32_t *n);
double sw_rtr_cv_auroc(const sw_rtr *r);
uint64_t sw_rtr_n_updates(sw_rtr *r);

/* P(local answer wrong) in [0, 1]; logit optional. */
sw_status sw_rtr_score(sw_rtr *r, const sw_rtr_input *in, double *p, double *logit, sw_err *err);
/* One online update from a label (shadow sampling): local_ok false = wrong.
 * lr <= 0: the default 0.01. */
sw_status sw_rtr_update(sw_rtr *r, const sw_rtr_input *in, bool local_ok, double lr, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
