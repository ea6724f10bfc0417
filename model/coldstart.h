/* coldstart.h -- the maintenance score while the model has learned from
 * few failures: blended with an unsupervised baseline deviation.
 *
 * Design note
 * -----------
 * A model that learns "fails within the horizon" from the stream only
 * knows nothing of failures before the first ones are reported; measured
 * prequentially (docs/maintenance.md), the first ~20 failures of a fleet
 * are caught early 5-55 % of the time, the later ones 96-100 %.  Before
 * any failure there is still something to go by: how far a machine's
 * sensors are from its OWN baseline.  The REFERENCE score u(x) is that:
 * the largest |base_z| of the longest trend span (a sensor's mean over the
 * last N readings in the machine's own standard deviations; a new machine
 * against the fleet's, features.baseline_prior), mapped to z / (z + c)
 * with c such that z = 3 sd scores exactly the alert threshold ("alert
 * when a sensor is 3 sd off its machine's baseline").  It is `eval`'s
 * `ref` column.  Noise counts as a deviation too: with `base_noise`
 * features of the longest span (the sensors preset), a sensor's noise
 * against its machine's own (the log ratio of successive-difference
 * spreads, beyond 3 of its sampling sds) is read as the z 3 +
 * base_noise / s, s = 1.2845 / sqrt(N) the window's part of that sd (N
 * successive differences of a normal noise), only when noisier: noise 3
 * sampling sds above the machine's own (1.75x over 48 readings) scores
 * the threshold like a level 3 sd off (issue 15, the noisy shape).
 *
 * The score the alert policy sees combines the two:
 *
 *     s = 1 - (1 - p)(1 - (1 - w) u),    w = n / (n + n0)
 *
 * p the model's score, n the failures learned so far, n0 the number of
 * sensors the reference reads.  w is the posterior weight of the model
 * against a prior worth n0 failures: a failure shows in a subset of the
 * sensors, and until the model has seen about one failure per sensor it
 * cannot know which matter; at n0 failures the reference counts half,
 * after 4 n0 a fifth, and its share keeps shrinking as 1/n.  The two are
 * combined as independent evidence of a coming failure (noisy-OR), so
 * the reference can only ADD: a linear average w p + (1 - w) u pulled the
 * model's early signal down wherever the reference was silent (measured:
 * docs/maintenance.md).  A machine on its own baseline (u = 0) leaves the
 * model's score as it is.  No threshold is tuned: c comes from the alert
 * threshold and the 3-sd rule, n0 from the feature layout.
 *
 * Threads: an rs_coldstart_t belongs to one thread (no locking).
 */
#ifndef RS_COLDSTART_H
#define RS_COLDSTART_H

#include "common/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_coldstart_s rs_coldstart_t;

/* New blend for feature vectors of layout names[dim] (read now, not kept)
 * and the alert threshold (in (0, 1]; below 0.01 taken as 0.01).  The
 * reference reads the `*_base_z*` features of the longest span `_lastN`
 * (of the reading itself if there is no span) and the `*_base_noise_lastN`
 * of the longest such span; without base_z, there is no reference and the
 * blend returns the model's score.  Any thread. */
rs_coldstart_t *rs_coldstart_new(const char *const *names, int dim,
                                 double alert_threshold);
void rs_coldstart_destroy(rs_coldstart_t *cs);   /* NULL: no-op */

/* Sensors the reference reads (n0; 0: no reference). */
int rs_coldstart_sensors(const rs_coldstart_t *cs);
/* The reference score u(x) in [0, 1) (0 without a reference). */
float rs_coldstart_reference(const rs_coldstart_t *cs, const float *x);
/* One more failure learned (n += 1), and n. */
void rs_coldstart_failure(rs_coldstart_t *cs);
uint64_t rs_coldstart_failures(const rs_coldstart_t *cs);
/* Start from n failures learned (a restored count). */
void rs_coldstart_set_failures(rs_coldstart_t *cs, uint64_t n);
/* The model's weight w = n / (n + n0) (1 without a reference). */
double rs_coldstart_weight(const rs_coldstart_t *cs);
/* The combined score 1 - (1 - p)(1 - (1 - w) u(x)), >= p.  No
 * allocation. */
float rs_coldstart_score(const rs_coldstart_t *cs, const float *x,
                         float model_score);

/* State across restarts: the failure count n (the reference and n0 follow
 * from the configuration).  A service keeps it in its checkpoint (the
 * scoring service's record, scoring/svc_ckpt.c), so a restart does not
 * lean on the reference again as if no failure had been learned.
 * RS_COLDSTART_STATE bytes: u32 magic "RSCS", u32 version 1, u64 n (host
 * byte order: a local file).  rs_coldstart_save writes them to buf (at
 * least RS_COLDSTART_STATE bytes).  rs_coldstart_load restores n from
 * len bytes: RS_ERR_CORRUPT with errstr (n unchanged) for a wrong size,
 * magic or version.  No allocation.  The owning thread. */
#define RS_COLDSTART_STATE 16
void rs_coldstart_save(const rs_coldstart_t *cs, void *buf);
rs_err_t rs_coldstart_load(rs_coldstart_t *cs, const void *buf, size_t len,
                           char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_COLDSTART_H */
