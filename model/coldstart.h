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
 * Since 2026-12-06 (i15step) the z of a span's mean is read in the
 * fleet's learned SPREAD of that mean, not in one reading's sd: a mean of
 * N readings is spread less than a reading (0.4-0.74 of it on the
 * generator's sensors, daily cycles included), so "3 sd" was a far
 * rarer event for it than the rule meant.  The spread is a Huber scale
 * over every reading observed (squares clipped at (3 s)^2, divided by
 * E[min(Z^2, 9)] = 0.99501; a prior of one span's readings at 1 sd),
 * bounded by 1/sqrt N (independent readings) and 1 (a reading's).  And
 * per machine, a two-sided CUSUM of that z keeps the evidence of a
 * change that the machine's life baseline absorbs (a step fades as its
 * readings enter the baseline, and the rule's episode closed before the
 * failure): S = max(0, S + z - k), k = 1.5 (half the rule's 3-sd shift),
 * decision interval h = N hb, hb Siegmund's for an in-control run length
 * of 740 looks per side (370 together: the 3-sd rule's false-alarm
 * rate), one look per span of N readings; S / h x 3 counts as a z, so
 * S = h scores the threshold.  Reset at a failure or repair.  The CUSUM
 * needs rs_coldstart_track (its machine table); rs_coldstart_reference
 * reads the spread, not the CUSUM.
 *
 * Since i14cusum (session 14) the CUSUM reads the SHORTEST span's means
 * (N_c readings, 12 of the sensors preset's 12 and 48; spans >= 2 only,
 * not the reading's own base_z), each in its own learned spread (as
 * above, the prior N_c readings at 1 sd, bounded by 1/sqrt N_c and 1),
 * while the 3-sd rule still reads the longest span's: a step of d sds
 * moves a mean of N readings by d/N a reading, so the 12-reading mean's
 * CUSUM reaches its interval 3-4x sooner.  Its false alarms per reading
 * are the longest span's design: 740 looks of N readings per side are
 * 740 N / N_c looks of N_c, so h = N_c hb(740 N / N_c) (12 of 48: hb =
 * 2.000, h = 24.0, where the 48-reading CUSUM's h was 48 x 1.538 =
 * 73.8).  With one span N_c = N: the design above.
 *
 * Since i16diff (session 16) a second two-sided CUSUM per sensor reads
 * the reading against its own N_c-reading mean, d = base_z -
 * base_z_lastNc_incl (where the layout has the reading's own base_z):
 * the slow parts (load, daily cycle, drift) cancel and a step shows at
 * once.  k = 1.5 in d's learned spread; the per-reading budget is split
 * in two (2 x 740 N readings each: the mean's h = N_c hb(2 x 740 N /
 * N_c) = 26.8 at 12 of 48), and d's interval counts its dependence:
 * h = sqrt(v) hb(k / sqrt v, 2 x 740 N), v = (1 + rho) / (1 - rho) from
 * d's lag-1 correlation rho learned over the fleet (coldstart.c
 * rs_cs_dint: the derivation).  The reference's CUSUM z is 3 x the
 * larger of the two S / h.
 *
 * The score the alert policy sees combines the two:
 *
 *     s = 1 - (1 - p)(1 - (1 - w) u),    w = c / (n + n0)
 *
 * p the model's score, n the failures learned so far, c those of them the
 * model's OWN score caught (its own alert policy, fed p alone, alerted at
 * least a third of the horizon before the failure: the bar's actionable
 * lead), n0 the number of sensors the reference reads.  w is the
 * posterior mean of the model's early-catch rate, measured prequentially
 * on the failures it was scored on before learning them, with a prior
 * worth n0 failures not caught: a failure shows in a subset of the
 * sensors, and until the model has seen about one failure per sensor it
 * cannot know which matter.  1 - w, the reference's weight, is the
 * model's estimated miss rate: the hand-over follows what the model has
 * shown it learned, not how many failures it was shown (the first
 * version, w = n / (n + n0), handed over at the same pace on every
 * stream; on noisy sensors the models caught 4-8 of their first 20
 * failures early while the reference, whose weight that formula had
 * already cut to a fifth and less, caught all 20: docs/maintenance.md).
 * A model that catches every failure takes over as fast as before
 * (c = n); one that misses keeps the reference's voice in proportion.
 * Per machine (issue 15, session 12): w is the fleet's record; on a
 * machine where the two DISAGREE -- the reference in alarm (u at or
 * above the alert threshold: a span's mean 3 sd off, or its CUSUM past
 * the decision interval) while the model's own policy has no episode
 * open there -- that record does not say which of the two is right on
 * this machine, and the machine's own evidence (the model missing what
 * the reference sees: none caught) is weighed equally with it: w_m =
 * (w + 0) / 2.  Where they agree, or the reference is quiet, w.  (The
 * fleet-wide w gave a reference that held its alarm 21-52 h ahead about
 * a tenth of its voice late in the stream on machines whose model score
 * flickered: docs/maintenance.md.)  Needs rs_coldstart_track (the own
 * policy); no state of its own. 
 * The two are combined as independent evidence of a coming failure
 * (noisy-OR), so the reference can only ADD: a linear average w p +
 * (1 - w) u pulled the model's early signal down wherever the reference
 * was silent (measured: docs/maintenance.md).  A machine on its own
 * baseline (u = 0) leaves the model's score as it is.  No threshold is
 * tuned: c comes from the alert threshold and the 3-sd rule, n0 from the
 * feature layout, H/3 from the bar's definition of an early alert.
 *
 * Threads: an rs_coldstart_t belongs to one thread (no locking).
 */
#ifndef RS_COLDSTART_H
#define RS_COLDSTART_H

#include "common/common.h"
#include "model/maint.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_coldstart_s rs_coldstart_t;

/* New blend for feature vectors of layout names[dim] (read now, not kept)
 * and the alert threshold (in (0, 1]; below 0.01 taken as 0.01).  The
 * reference reads the `*_base_z*` features of the longest span `_lastN`
 * (of the reading itself if there is no span) and the `*_base_noise_lastN`
 * of the longest such span, its CUSUMs the `*_base_z_lastN` of the
 * shortest span N >= 2 (the longest's without one); without base_z, there
 * is no reference and the blend returns the model's score.  Any thread. */
rs_coldstart_t *rs_coldstart_new(const char *const *names, int dim,
                                 double alert_threshold);
void rs_coldstart_destroy(rs_coldstart_t *cs);   /* NULL: no-op */

/* Sensors the reference reads (n0; 0: no reference). */
int rs_coldstart_sensors(const rs_coldstart_t *cs);
/* The reference score u(x) in [0, 1) (0 without a reference). */
float rs_coldstart_reference(const rs_coldstart_t *cs, const float *x);
/* One more failure learned (n += 1).  lead_ms: how long before the
 * failure the model's OWN score (an alert policy fed the model's score
 * alone, not the blend; rs_alertpol_failure's lead) alerted, < 0 if it
 * did not; it counts as caught (c += 1) when lead_ms >= horizon_ms / 3. */
void rs_coldstart_failure(rs_coldstart_t *cs, int64_t lead_ms,
                          int64_t horizon_ms);
/* The largest CUSUM of `machine` (rs_coldstart_observe) in units of the
 * decision interval h: >= 1 is a change (0: none, or not tracked). */
float rs_coldstart_change(rs_coldstart_t *cs, uint64_t machine);
/* i16diff: the largest CUSUM of the readings against their shortest-span
 * mean (base_z - base_z_lastNc) of `machine`, in units of its interval
 * (learned from the difference's lag-1 correlation): >= 1 is a step.  0:
 * none, not tracked, or a layout without the reading's own base_z.  Part
 * of rs_coldstart_change.  Same thread as rs_coldstart_observe; owns
 * nothing. */
float rs_coldstart_step(rs_coldstart_t *cs, uint64_t machine);
/* n, and c (those the model's own score caught at least H/3 ahead). */
uint64_t rs_coldstart_failures(const rs_coldstart_t *cs);
uint64_t rs_coldstart_caught(const rs_coldstart_t *cs);
/* Start from n failures learned, c <= n of them caught (a restored
 * state; c is clamped to n). */
void rs_coldstart_set_failures(rs_coldstart_t *cs, uint64_t n, uint64_t c);
/* The model's weight w = c / (n + n0) (1 without a reference). */
double rs_coldstart_weight(const rs_coldstart_t *cs);
/* The combined score 1 - (1 - p)(1 - (1 - w) u(x)), >= p, with the
 * fleet's w (no machine: rs_coldstart_observe weighs per machine).  No
 * allocation. */
float rs_coldstart_score(const rs_coldstart_t *cs, const float *x,
                         float model_score);

/* The model's record kept here (issue 15): the model's OWN alert policy
 * (a second rs_alertpol_t with the maintenance settings, fed the model's
 * score alone) lives in the blend, so `eval` and `serve` keep the record
 * with one implementation.  rs_coldstart_track creates it (mc copied;
 * RS_ERR_CONFIG with errstr for a conf rs_alertpol_new refuses); without
 * it, rs_coldstart_observe only blends and rs_coldstart_machine_failure
 * counts a failure as missed.  The owning thread. */
rs_err_t rs_coldstart_track(rs_coldstart_t *cs, const rs_maint_conf_t *mc,
                            char *errstr, size_t errstr_size);
/* One reading of `machine` (rs_hash_str of its id) at event time t_ms
 * with feature vector x and the model's score: the own policy steps on
 * the model's score, the machine's CUSUMs step (a machine beyond
 * max_machines has none: the reference without them), and the score the
 * alert policy decides on (the blend, with the CUSUMs in the reference,
 * and w halved where the reference is in alarm while the own policy has
 * no episode open on the machine) is returned; then the spreads learn x.
 * No allocation. */
float rs_coldstart_observe(rs_coldstart_t *cs, uint64_t machine,
                           int64_t t_ms, const float *x, float model_score);
/* `machine` failed at t_fail_ms (before the failure is learned): its lead
 * by the own policy (rs_alertpol_lead, as eval counts a caught failure)
 * is counted (rs_coldstart_failure with the horizon of mc), and its own
 * policy starts afresh. */
void rs_coldstart_machine_failure(rs_coldstart_t *cs, uint64_t machine,
                                  int64_t t_fail_ms);
/* A repair without failure: the machine's own policy starts afresh. */
void rs_coldstart_repair(rs_coldstart_t *cs, uint64_t machine);

/* State across restarts: the counts n and c and the own policy's machine
 * table (its episodes: a failure after a restart is counted from the
 * episode that was open before it; the reference and n0 follow from the
 * configuration; since i15step also the learned spreads and the
 * machines' CUSUMs).  A service keeps it in its checkpoint (the scoring
 * service's record, scoring/svc_ckpt.c), so a restart does not lean on
 * the reference again as if no failure had been learned.
 * Version 5 (host byte order: a local file): u32 magic "RSCS", u32
 * version 5, u64 n, u64 c (the RS_COLDSTART_STATE bytes of version 2),
 * the ref features' spreads (u32 nref, u32 0, f64 readings observed, f64
 * clipped sums [nref]), the CUSUM features' spreads (u32 ncu, u32 N_c,
 * f64 readings observed, f64 clipped sums [ncu]), the differences'
 * block (i16diff: u32 ndf, u32 N_c, f64 readings observed, f64 clipped
 * squares, lag products and lag squares [ndf] each), the own policy's
 * state (maint.h rs_alertpol_save; 8 bytes of 0 machines without
 * rs_coldstart_track), the CUSUMs (u64 m, m x {u64 machine, f32 S+ S-
 * per CUSUM feature, f32 S+ S- d_t-1 per difference}).  Spreads and
 * CUSUMs of another number of features (or CUSUMs of another span)
 * start afresh.  A version-4 state (before i16diff) loads as version 5
 * with the differences' CUSUMs at 0 and their spread and correlation
 * from the prior.  A version-3 state (before
 * i14cusum: no CUSUM spread block, its CUSUMs of the longest span's
 * means) loads the counts, the ref spreads and the own policy; its
 * CUSUMs and the CUSUM spreads start afresh (they are of the longest
 * span: kept only where the CUSUM still reads it, one span).  rs_coldstart_state_size: its
 * bytes now; rs_coldstart_save writes that many to buf.
 * rs_coldstart_load restores them from len bytes; a version-2 state (24
 * bytes: the counts, no policy) restores the counts and leaves the own
 * policy as it is; a version-1 state (16 bytes, n only, written before c
 * existed) restores n with c = n, the weight n / (n + n0) it had then.
 * The policy part of a version-3 state is ignored (only checked) without
 * rs_coldstart_track.  RS_ERR_CORRUPT with errstr (nothing changed) for a
 * wrong size, magic or version, c > n, n > 2^53, or a damaged policy
 * part.  The
 * owning thread; no allocation but in rs_coldstart_load. */
#define RS_COLDSTART_STATE 24
#define RS_COLDSTART_STATE_V1 16
size_t rs_coldstart_state_size(const rs_coldstart_t *cs);
void rs_coldstart_save(const rs_coldstart_t *cs, void *buf);
rs_err_t rs_coldstart_load(rs_coldstart_t *cs, const void *buf, size_t len,
                           char *errstr, size_t errstr_size);

/* One machine's state, for state that follows the machine's input
 * partition (scoring/alerts.h rs_alerts_part_*): its own-policy entry and
 * its CUSUMs (the counts and spreads are fleet-wide: they stay in the
 * instance's state above).  Bytes (host order): u32 ncu | N_c << 16 (the
 * CUSUM features and the span N_c their means are of; N_c 0 in a record
 * of an instance before i16span), u32 flags (1: the own policy's 48-byte
 * entry follows, maint.h RS_ALERTPOL_ENTRY; 2: the CUSUMs of the longest
 * span's means follow -- one span, or a record written before i14cusum;
 * 4: the CUSUMs of the shortest span's means follow; f32 S+ S- per CUSUM
 * feature; 8, with 2 or 4: the differences' CUSUMs follow, u32 ndf, u32
 * 0, f32 S+ S- d_t-1 per difference -- a record without it, of an
 * instance before i16diff, loads with them at 0, and an instance before
 * i16diff refuses a record with it), at most RS_COLDSTART_MACHINE_MAX.
 * rs_coldstart_machine_save: the bytes of machine's state (0: nothing
 * kept for it), written to buf only when cap is at least that.
 * rs_coldstart_machine_check: RS_ERR_CORRUPT with errstr for a record
 * that is not one of `machine` (length, flags: unknown, or 2 and 4
 * together, or 8 without either, ncu or ndf > 64, N_c > 4096, a damaged
 * or another machine's policy entry, a CUSUM negative or not finite, a
 * difference's last reading beyond 3 sds); pure.  An instance before
 * i16span refuses a tagged record (ncu > 64): an upgrade goes forward.
 * rs_coldstart_machine_load: checks, then replaces the machine's state
 * (CUSUMs of another number of features, of the other flag -- a record
 * of flag 2 where the CUSUM reads a shorter span -- or of another span
 * N_c or an untagged one -- another features.sensor_spans -- start
 * afresh; the own entry
 * is ignored without rs_coldstart_track); RS_ERR_NOMEM when a table is
 * full.  rs_coldstart_machine_forget: the machine's entries removed (its
 * partition left).  No allocation.  The owning thread. */
#define RS_COLDSTART_MACHINE_MAX (8 + 48 + 8 * 64 + 8 + 12 * 64)
size_t rs_coldstart_machine_save(const rs_coldstart_t *cs, uint64_t machine,
                                 void *buf, size_t cap);
rs_err_t rs_coldstart_machine_check(uint64_t machine, const void *buf,
                                    size_t len, char *errstr,
                                    size_t errstr_size);
rs_err_t rs_coldstart_machine_load(rs_coldstart_t *cs, uint64_t machine,
                                   const void *buf, size_t len, char *errstr,
                                   size_t errstr_size);
void rs_coldstart_machine_forget(rs_coldstart_t *cs, uint64_t machine);

#ifdef __cplusplus
}
#endif
#endif /* RS_COLDSTART_H */
