/* rul.h -- remaining useful life: a small regression head beside the
 * failure classifier (predictive maintenance, maint.h).
 *
 * Design note
 * -----------
 * The target is the event time from a reading to its machine's next
 * failure, CAPPED at `cap` (maintenance.rul_cap horizons): run-to-failure
 * practice (a piecewise-linear target, e.g. 125 cycles on turbofan data)
 * -- far from a failure, readings carry no information about when it will
 * come, and an uncapped target would be dominated by the long healthy
 * stretches.  The head estimates y = min(RUL, cap) / cap in (0, 1) as
 * sigmoid(w . z + b) over the reading's features and the failure
 * classifier's logit (its score as scored), standardised with running
 * means and variances of what it learned (clipped to +-8), trained by one
 * AdaGrad step on the cross-entropy of the soft target y per learned
 * reading.  (Weighting readings by the inverse share of their target's
 * decile -- most readings learn the cap -- was measured and dropped: it
 * lowered the error within the horizon of a failure but made the error
 * over all readings worse than a constant's on the generator streams;
 * docs/maintenance.md.)  Estimates are reported in ms, at least 1 (0 means "no
 * estimate" in the score record).
 *
 * WHAT IS LEARNED, AND WHEN (the learner, learner.h, decides; censoring):
 *   - a failure at T: each of the machine's readings at t <= T not learned
 *     yet gets min(T - t, cap) -- its remaining life is known;
 *   - a machine that keeps running: a reading gets `cap` once the machine
 *     ran cap (plus the failure report delay) past it without a failure:
 *     its remaining life is then known to be at least the cap, which is
 *     exactly the capped target (right-censoring above the cap loses
 *     nothing);
 *   - a reading of a machine still running less than cap after it is
 *     CENSORED (its life is only known to exceed now - t < cap): it waits,
 *     never learned as a guess;
 *   - a repair at R ends a life without a failure: readings with
 *     R - t >= cap get cap, the others stay censored for good (dropped,
 *     counted).
 *
 * Threads: an rs_rul_t belongs to one thread; rs_rul_copy reads src on
 * the caller's thread (the owner of dst must hold whatever lock guards
 * src).
 */
#ifndef RS_RUL_H
#define RS_RUL_H

#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_rul_s rs_rul_t;

/* New head over dim features, target capped at cap_ms (> 0).  NULL if
 * dim < 1 or cap_ms < 1. */
rs_rul_t *rs_rul_new(int dim, int64_t cap_ms);
void rs_rul_destroy(rs_rul_t *r);   /* NULL: no-op */

int64_t rs_rul_cap(const rs_rul_t *r);
int rs_rul_dim(const rs_rul_t *r);

/* One learning step: reading x[dim] (raw features), scored `score` by the
 * failure classifier, had rul_ms of life left (clipped to [0, cap]).  No
 * allocation.  The owner thread. */
void rs_rul_learn(rs_rul_t *r, const float *x, float score, int64_t rul_ms);

/* The estimate for x[dim] scored `score`: ms in [1, cap].  Pure (reads
 * r). */
int64_t rs_rul_predict(const rs_rul_t *r, const float *x, float score);

/* dst becomes a copy of src (same dim and cap; else RS_ERR_INVALID). */
rs_err_t rs_rul_copy(rs_rul_t *dst, const rs_rul_t *src);

/* Readings learned so far. */
uint64_t rs_rul_updates(const rs_rul_t *r);

#ifdef __cplusplus
}
#endif
#endif /* RS_RUL_H */
