/* share.h — the cloud-share budget: send to the cloud the requests whose
 * score is in the top `share` fraction of recent traffic.
 *
 * An online quantile over a sliding window of the last `window` scores: a
 * request goes to the cloud when its score is above the (1 - share) quantile
 * of the window as it was before the request, then its score joins the
 * window. The window starts filled from a warm-start distribution (the
 * router's out-of-fold training scores, which look like unseen traffic), so
 * the first requests are routed right; live scores push the warm ones out.
 * Ties at the threshold go to the cloud in the proportion that keeps the
 * share (a deterministic error-diffusion counter, not a coin).
 *
 * Thread-safe: one mutex; decide is O(window) (a sorted copy is kept). */
#ifndef SW_SHARE_H
#define SW_SHARE_H

#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_share_ctl sw_share_ctl;

#define SW_SHARE_DEFAULT_WINDOW 500

/* share in [0, 1] (anything else, NaN included, is SW_E_INVALID_ARG naming
 * the value); window <= 0: SW_SHARE_DEFAULT_WINDOW. warm[n_warm] (borrowed)
 * may be NULL/0; when longer than the window, an evenly spaced subset of its
 * sorted values is used. */
sw_status sw_share_ctl_create(double share, int32_t window, const double *warm, int32_t n_warm,
                              sw_share_ctl **out, sw_err *err);
void sw_share_ctl_free(sw_share_ctl *c); /* NULL is a no-op */

/* Decide for one score (true: cloud) and add it to the window. A request that
 * will not follow the decision anyway (e.g. private) should not be fed. */
bool sw_share_ctl_decide(sw_share_ctl *c, double score);

/* The current threshold (the window's (1 - share) quantile); NaN when empty. */
double sw_share_ctl_threshold(sw_share_ctl *c);
double sw_share_ctl_share(const sw_share_ctl *c);
/* Decisions so far and how many went to the cloud. */
void sw_share_ctl_counts(sw_share_ctl *c, uint64_t *decided, uint64_t *cloud);

#ifdef __cplusplus
}
#endif
#endif
