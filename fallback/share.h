/* share.h — the cloud-share budget: send to the cloud the requests whose
 * score is in the top `share` fraction of recent traffic.
 *
 * An online quantile over a sliding window of the last `window` scores: a
 * request goes to the cloud when its score ranks in the top `share` of the
 * window as it was before the request (its rank among the window's n scores
 * and itself: cloud when fewer than share x (n + 1) - 1/2 scores lie above
 * it, ties counted at their middle), then its score joins the window.
 *
 * Warm start: the window starts filled from a warm-start distribution (the
 * router's out-of-fold training scores, or a weak prior), so the first
 * requests are routed right. Warm scores are the oldest: each live score
 * replaces one of them until none is left, then the window grows to its
 * size; so after as many requests as there were warm scores the threshold
 * is recent traffic's own.
 *
 * Feedback: a warm start that does not match live traffic (another score
 * scale, a small training set) or a drifting stream would make the realized
 * share miss the target. The controller keeps the running shortfall
 * (share x decisions - cloud decisions, bounded) and aims at share +
 * shortfall / SW_SHARE_FEEDBACK for the next decision, so the realized share
 * tracks the target within a few decisions' worth, whatever the warm start.
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
/* Decisions over which a shortfall (or excess) of cloud decisions is made up. */
#define SW_SHARE_FEEDBACK 8.0

/* share in [0, 1] (anything else, NaN included, is SW_E_INVALID_ARG naming
 * the value); window <= 0: SW_SHARE_DEFAULT_WINDOW. warm[n_warm] (borrowed)
 * may be NULL/0; when longer than the window, an evenly spaced subset of its
 * sorted values is used. */
sw_status sw_share_ctl_create(double share, int32_t window, const double *warm, int32_t n_warm,
                              sw_share_ctl **out, sw_err *err);
void sw_share_ctl_free(sw_share_ctl *c); /* NULL is a no-op */

/* Decide for one score (true: cloud) and add it to the window. A request that
 * will not follow the decision anyway (e.g. private) should not be fed. A NaN
 * score is not decided (false, not counted). */
bool sw_share_ctl_decide(sw_share_ctl *c, double score);

/* The current threshold: a score above it goes to the cloud now (the
 * window's quantile at the aimed share); NaN when empty. */
double sw_share_ctl_threshold(sw_share_ctl *c);
double sw_share_ctl_share(const sw_share_ctl *c);
/* Decisions so far and how many went to the cloud. */
void sw_share_ctl_counts(sw_share_ctl *c, uint64_t *decided, uint64_t *cloud);

#ifdef __cplusplus
}
#endif
#endif
