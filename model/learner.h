/* learner.h -- what is learned, and when: labels joined to learning
 * records, negatives at maturity, late positives corrected, the label
 * delay observed and the horizon derived from it.
 *
 * Design note
 * -----------
 * Every scored event has a learning record in the learning log of its
 * input partition (model/learnlog.h).  The learner owns the model that
 * LEARNS (in the service: the trainer's) and resolves records:
 *
 *   label arrives   -> its record (index by event id) is learned at once
 *                      with the label's value; an explicit negative too.
 *   maturity        -> a record still unlabelled when its event time is
 *                      older than watermark - horizon is learned as a
 *                      negative (the label can no longer be expected).
 *   late positive   -> a positive for a record already learned as a
 *                      maturity negative is learned as a CORRECTION: one
 *                      step on the positive's loss minus the negative's.
 *   repeat          -> a second label for a labelled record changes
 *                      nothing (counted).
 *   replay          -> after each of these steps, model.replay (default 1)
 *                      more on records drawn uniformly from what the log
 *                      keeps and has learned, with their labels: the
 *                      repeated passes an offline model gets, without
 *                      keeping anything in RAM (maintenance: some draw
 *                      the first failures' positives, see
 *                      rs_learner_set_rehearsal).
 * Each record's state byte (learnlog.h) says which happened, so nothing is
 * learned twice, also after a restart.
 *
 * The label DELAY (label time - event time) of every joined label is
 * observed (histograms, all labels and positives).  The horizon
 * (model.label_horizon) is fixed, or auto: 1.25 x the larger of the
 * declared delay (model.label_delay) and the 99th percentile of the
 * observed delays of positives (of all labels while fewer than 20
 * positives were seen), at most model.label_horizon_max, which is also the
 * horizon while neither is known.  rs_learner_check_conf refuses a fixed
 * horizon shorter than the declared or the observed (median) delay: it
 * would learn every positive as a negative first.
 *
 * A record's history (sequence model) is rebuilt by following each
 * record's reference to the entity's previous record, across the attached
 * logs, up to the length the scorer attended over; references into
 * deleted segments end it.  Records are kept log_keep beyond the horizon
 * for that.
 *
 * Threads: one owner thread (the log's resolver side, the model's owner).
 * The logs are borrowed: attach/detach on the owner thread; their writer
 * may append from another thread meanwhile.
 */
#ifndef RS_LEARNER_H
#define RS_LEARNER_H

#include "common/common.h"
#include "common/metrics.h"
#include "model/learnlog.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_learner_s rs_learner_t;

/* New learner for model m (borrowed: it learns m; m must outlive it).
 * conf (copied): label_delay, label_horizon, label_horizon_max, log_keep.
 * No logs are attached yet. */
rs_learner_t *rs_learner_new(rs_model_t *m, const rs_model_conf_t *conf);
/* NULL is a no-op.  Attached logs are not closed (they are borrowed). */
void rs_learner_destroy(rs_learner_t *l);
/* Learn m from now on (a rollback replaced the model; same kind and
 * architecture: the attached logs stay valid).  RS_ERR_INVALID if m's
 * records differ from the current model's. */
rs_err_t rs_learner_set_model(rs_learner_t *l, rs_model_t *m);

/* Attach the log of its partition (borrowed until detached); a new log's
 * first segment is made here (rs_learnlog_prepare).  RS_ERR_STATE if that partition already has one, RS_ERR_INVALID if the
 * log's records are not this model's (rs_model_lrec_meta). */
rs_err_t rs_learner_attach(rs_learner_t *l, rs_learnlog_t *lg);
/* Detach the log of `partition` and return it (NULL if none). */
rs_learnlog_t *rs_learner_detach(rs_learner_t *l, int32_t partition);
rs_learnlog_t *rs_learner_log(const rs_learner_t *l, int32_t partition);

typedef enum rs_learner_outcome_e {
    RS_LEARNER_LEARNED = 0,   /* learned with the label's value             */
    RS_LEARNER_CORRECTED,     /* a positive after a maturity negative       */
    RS_LEARNER_CONFIRMED,     /* a negative after a maturity negative:
                               * already learned, nothing to do             */
    RS_LEARNER_REPEAT,        /* the record was labelled before: ignored    */
    RS_LEARNER_UNKNOWN,       /* no record (never scored here, or older
                               * than the log keeps)                        */
    RS_LEARNER_FAILED         /* the record could not be learned (damaged)  */
} rs_learner_outcome_t;

typedef struct rs_learner_res_s {
    rs_learner_outcome_t outcome;
    float score;              /* the event's score as scored (joined only)  */
    int y;                    /* the label's class                          */
    int64_t delay_ms;         /* label time - event time (joined only)      */
} rs_learner_res_t;

/* Resolve label lb: find its record in the log of `partition` (< 0: in
 * every attached log) and learn it as described above.  t_hint: the
 * event's time if the label says (0 = unknown; narrows the search).  psi:
 * the scorer's drift (rs_model_learn_lrec).  res (may be NULL) says what
 * happened.  RS_OK, or RS_ERR_NOTFOUND (outcome UNKNOWN). */
rs_err_t rs_learner_label(rs_learner_t *l, int32_t partition,
                          const rs_label_t *lb, int64_t t_hint, double psi,
                          rs_learner_res_t *res);

/* Learn as negatives up to `max` records of `partition` that matured by
 * watermark_ms (event time < watermark - horizon), oldest first;
 * resolved (may be NULL) gets each one's score and label 0.  Also deletes
 * log segments past horizon + log_keep.  Returns how many were learned. */
/* The model's standardiser observes the records of `partition`'s log
 * before position `end` it has not observed yet, in log order (model.h
 * rs_model_observe).  Without a call, rs_learner_advance observes every
 * record the log holds when it runs (and so does a label's lookup); once
 * called, observing happens only
 * here: the trainer thread passes the log end the scorer had reached when
 * it sent the watermark, so what the model learns does not depend on how
 * far the scorer had got by the time the trainer ran (bit for bit the
 * learning of one thread).  The thread that owns l. */
void rs_learner_observe_to(rs_learner_t *l, int32_t partition, uint64_t end);
/* The next record of `partition`'s log the standardiser observes (by
 * default the log's end when it was attached: what was there before is in
 * the model's statistics).  The trainer passes the end the scorer saw when
 * it sent the log.  The thread that owns l. */
void rs_learner_observe_from(rs_learner_t *l, int32_t partition, uint64_t pos);

int rs_learner_advance(rs_learner_t *l, int32_t partition,
                       int64_t watermark_ms, double psi, int max,
                       void (*resolved)(void *opaque, float score, int label),
                       void *opaque);

/* Learn again, `epochs` times, every record of `partition` already
 * learned (labelled, or negative at maturity) whose event time is in
 * [from_ms, to_ms), each epoch in a new pseudo-random order (seed): the
 * offline bootstrap of `riskstream train` (its labels are those a service
 * would know by then).  Returns the learning steps made. */
uint64_t rs_learner_replay(rs_learner_t *l, int32_t partition, int64_t from_ms,
                           int64_t to_ms, int epochs, uint64_t seed);

/* ------------------------------------------- failure-horizon labels
 *
 * Predictive maintenance (model/maint.h): a failure says something about
 * the readings BEFORE it.  rs_learner_set_failure_horizon(l, H) makes the
 * learner expect failures: the auto maturity horizon becomes 1.25 x (H +
 * the failure report delay: model.label_delay or the observed p99), so a
 * reading stays pending until its machine can no longer fail within H of
 * it.  rs_learner_failure() then resolves one failure of machine `entity`
 * (rs_hash_str of its id; records carry it, learnlog.h) at t_fail:
 *   - its records with event time in [t_fail - H, t_fail] are POSITIVES
 *     ("fails within H"): pending ones are learned as positives, maturity
 *     negatives are corrected (the CORRECT step, as a late label);
 *   - its older records still pending are learned as NEGATIVES now (that
 *     life ended: they can no longer become positives);
 *   - records after t_fail belong to the machine's next life (untouched);
 *   - records labelled before are left alone (counted as repeats);
 *   - older maturity negatives in the walk are marked resolved (not
 *     learned again), so a failure of the next life within H of this one
 *     leaves this life's readings alone.
 * Machines that keep running past maturity get their negatives from
 * rs_learner_advance as before.  The walk reads the records of every
 * machine in the time range (the log is in rough event-time order: a
 * binary search on time, then a scan from the maturity cursor or the range
 * start, whichever is older): O(fleet readings in ~1.25 H) per failure. */
void rs_learner_set_failure_horizon(rs_learner_t *l, int64_t horizon_ms);

/* Rehearsal of the first failures (n0 > 0; 0, the default: off): the
 * failure walk keeps the positions of the positives it learns (up to
 * 16384, the first ones), and each replay step (model.replay) draws one
 * of them instead of a uniform draw with probability
 * q = n0 / (n + n0) / (1 + pos_weight), n the failures joined so far: the
 * loss-balanced share of positives while few failures are known, fading
 * as they are (n0: the prior worth of the cold-start blend, coldstart.h).
 * Deterministic (the learner's generator).  The owner thread. */
void rs_learner_set_rehearsal(rs_learner_t *l, int n0);

/* The rehearsal state as bytes, for the service's checkpoint (the trainer
 * copies it, scoring/svc_ckpt.c keeps it): the failures counted (n) and
 * the kept positives' log positions.  rs_learner_rehearsal_size: its
 * length (0 with rehearsal off); rs_learner_rehearsal_save writes that
 * many bytes to buf.  rs_learner_rehearsal_load replaces the state with
 * buf[len]; a kept position of partition p at or past end[p] (end: nend
 * partitions, -1 = no log) is dropped -- a restored log is rewound to the
 * checkpoint's end and the records after it are written again, other
 * events' -- while n is kept.  RS_ERR_CORRUPT (the state unchanged) for
 * bytes that are not a state of this version; RS_ERR_STATE with rehearsal
 * off.  The owner thread. */
size_t rs_learner_rehearsal_size(const rs_learner_t *l);
void rs_learner_rehearsal_save(const rs_learner_t *l, void *buf);
rs_err_t rs_learner_rehearsal_load(rs_learner_t *l, const void *buf,
                                   size_t len, const int64_t *end,
                                   int32_t nend, char *errstr,
                                   size_t errstr_size);

typedef struct rs_learner_failure_s {
    uint64_t positives;       /* pending records learned as positives      */
    uint64_t corrected;       /* maturity negatives corrected to positives */
    uint64_t negatives;       /* older pending records learned as negatives */
    uint64_t repeats;         /* records labelled before: left alone       */
} rs_learner_failure_t;

/* Resolve the failure of `entity` at t_fail_ms (label_time_ms: when it
 * became known, for the delay statistics; 0 = t_fail) in `partition`'s log
 * (< 0: every attached log).  res (may be NULL) gets the counts.
 * RS_ERR_NOTFOUND if no record of the entity was in range.  The owner
 * thread. */
rs_err_t rs_learner_failure(rs_learner_t *l, int32_t partition,
                            uint64_t entity, int64_t t_fail_ms,
                            int64_t label_time_ms, double psi,
                            rs_learner_failure_t *res);

/* A repair (maintenance without a failure) of `entity` at t_ms: its
 * life ended without failing, so its records up to t_ms still pending are
 * learned as negatives now (res->negatives) and every one the walk reaches
 * is marked resolved, so a failure of the next life never reaches back
 * before the repair.  RS_ERR_NOTFOUND if no record of the entity was in
 * range.  The owner thread. */
rs_err_t rs_learner_repair(rs_learner_t *l, int32_t partition,
                           uint64_t entity, int64_t t_ms, double psi,
                           rs_learner_failure_t *res);

/* Remaining useful life (rul.h): the learner also trains `rul` (borrowed;
 * NULL: off) from the same resolution: a failure at T gives each of the
 * machine's readings up to the cap before it min(T - t, cap) (the walk then
 * reaches back the larger of the horizon and the cap); a repair gives the
 * cap to readings older than the cap and censors the others for good;
 * rs_learner_advance gives the cap to readings whose machine ran the cap
 * plus the report delay past them without a failure.  Readings still
 * within that of the watermark wait (censored, never guessed).  Each
 * record is learned once (RS_LREC_RUL).  rul's dim must be the model's. */
struct rs_rul_s;
void rs_learner_set_rul(rs_learner_t *l, struct rs_rul_s *rul);

/* The horizon now (ms): fixed, or auto as in the design note. */
int64_t rs_learner_horizon(const rs_learner_t *l);

typedef struct rs_learner_stats_s {
    uint64_t labels;          /* labels resolved                            */
    uint64_t joined;          /* ... whose record was found                 */
    uint64_t unknown;         /* ... without a record                       */
    uint64_t repeats;         /* ... for a record labelled before           */
    uint64_t positives;       /* positives learned from labels (incl. corr.) */
    uint64_t negatives;       /* explicit negatives learned                 */
    uint64_t matured;         /* negatives learned at maturity              */
    uint64_t corrections;     /* positives after a maturity negative        */
    uint64_t confirmed;       /* negatives after a maturity negative        */
    uint64_t failed;          /* records that could not be learned          */
    uint64_t hist_cut;        /* histories cut short (deleted segments)     */
    uint64_t beyond_horizon;  /* labels later than the horizon              */
    uint64_t replays;         /* replay steps (model.replay)                */
    uint64_t rehearsals;      /* ... of them on failure positives
                               * (rs_learner_set_rehearsal)                 */
    uint64_t reh_failures;    /* rehearsal's n: failures that taught
                               * positives (restored with its state)       */
    uint64_t reh_kept;        /* failure positives kept to rehearse        */
    uint64_t failures;        /* failure labels resolved (rs_learner_failure) */
    uint64_t repairs;         /* repairs resolved (rs_learner_repair)       */
    uint64_t rul_learned;     /* readings the RUL head learned              */
    uint64_t rul_censored;    /* readings whose RUL stays unknown (a repair
                               * before the cap was run)                    */
    int64_t horizon_ms;
    int horizon_auto;         /* 1: the horizon follows the delay           */
    int64_t delay_p50_ms, delay_p99_ms; /* observed (0 if none)             */
    uint64_t delays;          /* observed delays                            */
} rs_learner_stats_t;

void rs_learner_stats(const rs_learner_t *l, rs_learner_stats_t *st);
/* Observed label delays, seconds: all labels / positives.  Owned by l. */
const rs_hist_t *rs_learner_delays(const rs_learner_t *l, int positives);
/* Merge earlier observations (e.g. loaded from the state directory). */
void rs_learner_add_delays(rs_learner_t *l, const rs_hist_t *all,
                           const rs_hist_t *pos);

/* The horizon conf implies given the observed delays (all / positives,
 * seconds; may be NULL).  Pure. */
int64_t rs_learner_horizon_for(const rs_model_conf_t *conf,
                               const rs_hist_t *all, const rs_hist_t *pos);
/* Refuse a configuration that cannot learn: a fixed model.label_horizon
 * below the declared model.label_delay, or below the median observed
 * delay of positives (given, >= 20 of them): RS_ERR_CONFIG with a
 * one-line reason naming the keys and the durations.  Pure. */
rs_err_t rs_learner_check_conf(const rs_model_conf_t *conf,
                               const rs_hist_t *pos, char *errstr,
                               size_t errstr_size);

/* Save / load the observed delays (a small binary file, atomic write).
 * Load of a missing file is RS_OK (nothing observed); a damaged one is
 * RS_ERR_CORRUPT. */
rs_err_t rs_learner_delays_save(const rs_learner_t *l, const char *path,
                                char *errstr, size_t errstr_size);
rs_err_t rs_learner_delays_load(const char *path, rs_hist_t *all,
                                rs_hist_t *pos, char *errstr,
                                size_t errstr_size);

/* ------------------------------------------------ single-thread use
 *
 * Tools and tests that score and learn on one thread with one model: a
 * forward whose learning records go straight to the attached log of
 * `partition` (positions assigned here).  m must be the learner's model
 * or one of the same architecture.  Allocates its record scratch at the
 * first call (and when n grows). */
rs_err_t rs_learner_forward(rs_learner_t *l, int32_t partition,
                            rs_model_t *m, rs_model_input_t *in, int n,
                            rs_model_output_t *out, float *contrib,
                            unsigned flags, char *errstr, size_t errstr_size);

/* The record of event id hash `id` in `partition` and its rebuilt history
 * (oldest first, into hist[cap]); *nh gets its length.  For tests and the
 * gradient checks.  RS_ERR_NOTFOUND if not logged. */
rs_err_t rs_learner_record(rs_learner_t *l, int32_t partition, uint64_t id,
                           const void **rec, const void **hist, int cap,
                           int *nh);

#ifdef __cplusplus
}
#endif
#endif /* RS_LEARNER_H */
