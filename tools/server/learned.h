/* learned.h — the learned router inside spillway-server (issue #12):
 * --router FILE, --cloud-share S and --shadow-rate R.
 *
 *   - route_score: every auto-routed local request asks the engine for its
 *     prompt's final hidden states (from the prefill that runs anyway); the
 *     router turns them and the query text into P(local answer not good
 *     enough), reported in the "spillway" object, the first stream chunk and
 *     the ledger, whatever the decision.
 *   - budget: with --cloud-share S, a request whose score is in the top S of
 *     recent auto traffic (sw_share_ctl, warm-started from the router's
 *     out-of-fold training scores) goes to the cloud (reason route_score)
 *     before any token is sent; the others stream at once (no hold-back).
 *     Without a router, the probe window's mean logprob is the score, with
 *     the same controller (its window starts empty and fills from traffic).
 *   - shadow sampling: a fraction R of the auto requests answered locally is
 *     also asked of the cloud on a background thread; agreement of the two
 *     answers (numeric or normalized match) labels the local one, the router
 *     takes one online step and is saved to FILE.state beside the router file
 *     (loaded instead of FILE at the next start when it is for the same
 *     model). Never for private or PII requests (they are never auto-routed).
 *     Ledger and /metrics count shadow calls with reason "shadow" and their
 *     cost. */
#ifndef SW_SERVER_LEARNED_H
#define SW_SERVER_LEARNED_H

#include "server.h"

/* Load the router (FILE.state when valid, else FILE) and make the share
 * controller. SW_E_INVALID_ARG: a bad file or share (exit 2). */
sw_status srv_learned_init(srv *s, sw_err *err);
/* After the model is loaded: refuse a router trained for another model. */
sw_status srv_learned_check_model(srv *s, sw_err *err);
void srv_learned_free(srv *s);

/* The hidden-state flags the engine must deliver for an auto request (0: none). */
unsigned srv_learned_hidden(const srv *s);

/* The query text of a request (the last user message, or the completions
 * prompt): malloc'd, caller frees; NULL when out of memory. */
char *srv_query_text(const srv_request *r);

/* P(local answer not good enough) for a request with these hidden states;
 * NaN when there is no router or it cannot score. */
double srv_learned_score(srv *s, const char *query, int32_t n_prompt, const float *hidden_last,
                         const float *hidden_mean, int32_t n_embd);

/* The budget's decision for an auto request's score (true: cloud), which also
 * adds the score to the window. false without --cloud-share. */
bool srv_learned_to_cloud(srv *s, double score);
bool srv_learned_has_budget(const srv *s);

/* Shadow sampling: should this locally answered auto request be shadowed? */
bool srv_shadow_pick(srv *s);
/* Start a shadow call (detached): body is taken (native: an Anthropic
 * Messages body, see srv_cloud_body); the features are copied. */
void srv_shadow_start(srv *s, cJSON *body, bool native, const char *prompt,
                      const char *local_answer,
                      const char *query, int32_t n_prompt, const float *hidden_last,
                      const float *hidden_mean, int32_t n_embd);

#endif
