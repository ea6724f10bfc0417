/* trainer.h -- online learning off the scoring thread (internal to the
 * scoring module; the service is its only user).
 *
 * Design note
 * -----------
 * The service scores with a scorer model S (entity caches) and learns with
 * a trainer model T of the same architecture, owned by the trainer
 * thread.  What T learns comes from the LEARNING LOGS (model/learnlog.h):
 * the scoring thread appends every scored event's learning record to the
 * log of its input partition, and tells the trainer what happened since:
 *
 *   scoring thread                          trainer thread
 *   append records to the partition's log   (reads the logs: resolver)
 *   label      -> message queue ---------->  rs_learner_label: join the
 *   watermark  -> (fixed-size messages)      record, learn (T)
 *                                           maturity: rs_learner_advance
 *                                           in chunks between messages
 *   between batches: rs_trainer_take()  <-- every publish_every updates or
 *                    -> rs_model_weights_use(S, w)     publish_interval:
 *                                           new version number, snapshot,
 *                                           version file in the store
 *
 * The queue is a ring of `model.train_queue` messages allocated at start
 * (one producer, one consumer).  When it is full the scoring thread waits
 * (backpressure, counted): learning never silently loses a label.  Logs
 * are attached and detached through the same queue, so a label is never
 * resolved against a log that is not there yet; rs_trainer_detach waits
 * until the trainer has let go of the log.
 *
 * Versions: numbers come from the model store (1 + the highest number in
 * it) or, without a store, count up from the starting model's.  Every
 * published version is saved in the store (the newest `keep_versions`
 * kept), so `riskstream audit --rescore` can load it and rollback can
 * return to it.  Rollback (any thread, e.g. HTTP) is a request the trainer
 * thread serves: it loads the version from the store as T and publishes it
 * under its own name; learning continues from there and the next version
 * gets a new number.
 *
 * Threads: rs_trainer_reserve/commit/take/wait_space/detach -- the scoring
 * thread; rs_trainer_rollback/list/stats -- any thread; the trainer thread
 * is internal.
 */
#ifndef RS_TRAINER_H
#define RS_TRAINER_H

#include "common/common.h"
#include "common/metrics.h"
#include "model/learner.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_trainer_s rs_trainer_t;

/* One message from the scoring thread. */
typedef enum rs_trainer_msg_kind_e {
    RS_TRAINER_LABEL = 0,     /* resolve lb (partition, t = event time
                               * hint, 0 if unknown)                       */
    RS_TRAINER_WATERMARK,     /* the partition's event time reached t      */
    RS_TRAINER_ATTACH,        /* start resolving against log (borrowed)    */
    RS_TRAINER_DETACH,        /* stop using the partition's log            */
    RS_TRAINER_FAILURE,       /* maintenance: lb.entity_id failed at t
                               * (rs_learner_failure; partition < 0: every
                               * log; t 0: lb.label_time_ms)               */
    RS_TRAINER_REPAIR,        /* maintenance: lb.entity_id repaired at t
                               * (rs_learner_repair)                       */
    RS_TRAINER_REHEARSAL      /* maintenance: load the rehearsal state
                               * rs_trainer_rehearsal_restore left          */
} rs_trainer_msg_kind_t;

typedef struct rs_trainer_msg_s {
    int kind;                 /* rs_trainer_msg_kind_t                      */
    int32_t partition;
    int64_t t;
    double psi;               /* the scorer's drift now                     */
    rs_learnlog_t *log;       /* ATTACH                                     */
    rs_label_t lb;            /* LABEL                                      */
    uint64_t log_end;         /* WATERMARK: records of the partition's log
                               * appended so far; the standardiser observes
                               * up to there (rs_learner_observe_to).
                               * ATTACH: the log's end when sent: the
                               * records before it were observed before   */
} rs_trainer_msg_t;

/* Hooks of the model sync (scoring/modelsync.h: one model across the
 * instances of a consumer group).  All run on the trainer thread. */
typedef struct rs_trainer_hooks_s {
    void *opaque;
    /* tag of every version the trainer numbers ("": none; model.h
     * rs_model_set_version_tag) */
    char tag[RS_MODEL_TAG_MAX + 1];
    /* after each publish: t is T, saved in the store if stored */
    void (*published)(void *opaque, const rs_model_t *t, int stored);
    /* between passes: 1 if a combination is due now */
    int (*due)(void *opaque);
    /* when due, after T was published if it had learned anything since
     * (so T is its newest version): a model to continue from, or NULL.
     * Ownership of the result passes to the trainer, which learns from it
     * and publishes it under its own name (as a rollback does). */
    rs_model_t *(*combine)(void *opaque, const rs_model_t *t);
} rs_trainer_hooks_t;

typedef struct rs_trainer_opts_s {
    const char *save_path;    /* rs_trainer_stop saves T here ("" / NULL:
                               * no)                                        */
    const char *delays_path;  /* observed label delays, loaded at start and
                               * saved with every version ("" / NULL: no)  */
    double caught_threshold;  /* a positive scored >= this was caught      */
    const rs_trainer_hooks_t *hooks; /* NULL: none (copied)                 */
    int64_t failure_horizon_ms; /* > 0: labels are failures (maint.h):
                               * rs_learner_set_failure_horizon            */
    int64_t rul_cap_ms;       /* > 0: train a remaining-useful-life head
                               * (rul.h) with this cap, published with the
                               * versions (rs_trainer_rul)                 */
    int rehearse_n0;          /* > 0: rs_learner_set_rehearsal(n0)
                               * (maintenance.rehearsal)                   */
} rs_trainer_opts_t;

/* Start the trainer thread on model `t` (ownership moves to the trainer on
 * success; on failure t stays the caller's).  conf (copied): T's settings,
 * also used to load versions for a rollback; publish_every,
 * publish_interval, train_queue, store_dir, keep_versions and the label
 * delay / horizon keys are read.  NULL + errstr on failure (store
 * directory not usable: RS_ERR_IO / RS_ERR_CONFIG in *err_out). */
rs_trainer_t *rs_trainer_new(rs_model_t *t, const rs_model_conf_t *conf,
                             const rs_trainer_opts_t *opts, rs_err_t *err_out,
                             char *errstr, size_t errstr_size);

/* Contiguous free message slots at the queue's head: *n (<= max) at the
 * returned pointer; NULL and *n = 0 if full.  The slots are the caller's
 * until rs_trainer_commit. */
rs_trainer_msg_t *rs_trainer_reserve(rs_trainer_t *tr, int max, int *n);
/* Hand the first n reserved slots to the trainer (n may be 0). */
void rs_trainer_commit(rs_trainer_t *tr, int n);
/* Wait up to timeout_ms for a free slot (after reserve returned NULL). */
void rs_trainer_wait_space(rs_trainer_t *tr, int timeout_ms);
/* Queue a DETACH of `partition` and wait until the trainer no longer uses
 * its log (then the caller may close it).  RS_ERR_TIMEOUT after
 * timeout_ms (the log must then stay open). */
rs_err_t rs_trainer_detach(rs_trainer_t *tr, int32_t partition,
                           int timeout_ms);

/* The remaining-useful-life head as of the newest published version into
 * dst (same dim and cap), if it changed since `*seen` (updated); returns 1
 * then, 0 if unchanged or the trainer has no head.  Any thread (the
 * scorer's, between batches). */
struct rs_rul_s;
int rs_trainer_rul(rs_trainer_t *tr, struct rs_rul_s *dst, uint64_t *seen);

/* Maintenance rehearsal state (learner.h rs_learner_rehearsal_*), for
 * the service's checkpoint.  The trainer keeps a copy of it as of the last
 * failure it resolved (and of a restore).  rs_trainer_rehearsal copies
 * that into buf[cap] if it fits and returns its length (0: rehearsal off;
 * more than cap: nothing copied, call again with a larger buf; buf may be
 * NULL with cap 0 to ask).  *current (may be NULL) is 1 when every failure
 * committed to the queue so far is in it, 0 when some still wait in the
 * queue (a checkpoint taken now would lack them; always 1 with rehearsal
 * off).  Any thread. */
size_t rs_trainer_rehearsal(rs_trainer_t *tr, void *buf, size_t cap,
                            int *current);
/* Wait up to timeout_ms until every failure committed so far is resolved
 * (rs_trainer_rehearsal's *current).  1 if it is.  Any thread. */
int rs_trainer_rehearsal_wait(rs_trainer_t *tr, int timeout_ms);
/* Queue a restore of the rehearsal state buf[len] (copied), with the
 * restored learning logs' ends end[nend] (copied; -1: no log): the
 * trainer loads it (rs_learner_rehearsal_load) in queue order, so before
 * any failure committed after it; a state it cannot load is warned about
 * and ignored.  Nothing with rehearsal off.  The scoring thread (it
 * commits a message; waits for room). */
void rs_trainer_rehearsal_restore(rs_trainer_t *tr, const void *buf,
                                  size_t len, const int64_t *end,
                                  int32_t nend);

/* The newest published snapshot not yet taken, or NULL.  The caller owns
 * the reference (rs_model_weights_release). */
rs_model_weights_t *rs_trainer_take(rs_trainer_t *tr);

/* Ask the trainer to go back to `version` (from the store) and wait up to
 * timeout_ms for the answer.  RS_ERR_NOTFOUND (not in the store),
 * RS_ERR_STATE (no store configured), RS_ERR_INVALID (malformed name),
 * RS_ERR_TIMEOUT, RS_ERR_CORRUPT / RS_ERR_IO (file unreadable). */
rs_err_t rs_trainer_rollback(rs_trainer_t *tr, const char *version,
                             int timeout_ms, char *errstr,
                             size_t errstr_size);

/* The stored versions, newest first, into out[0..max); returns the count
 * (0 without a store). */
int rs_trainer_list(rs_trainer_t *tr, rs_model_store_entry_t *out, int max);

typedef struct rs_trainer_stats_s {
    rs_model_stats_t model;    /* T: updates, positives, drift, version  */
    rs_learner_stats_t learner;/* joins, maturity, corrections, delays   */
    uint64_t queued;           /* messages committed by the scoring side */
    uint64_t depth;            /* messages waiting                       */
    uint64_t capacity;
    uint64_t published;        /* versions published                     */
    uint64_t store_errors;     /* version files that could not be saved  */
    uint64_t rollbacks;
    uint64_t combined;         /* models taken from the sync hook        */
    uint64_t caught;           /* positives scored >= caught_threshold   */
    uint64_t log_records;      /* records in the attached logs           */
    uint64_t log_bytes;        /* their files                            */
    uint64_t log_pending;      /* records not yet resolved (cursor lag)  */
    rs_auc_t auc;              /* scores vs resolved outcomes            */
    rs_hist_t delays;          /* observed label delays, seconds         */
    char published_version[RS_VERSION_MAX];
    int64_t published_at_ms;   /* wall clock of the last publish         */
    char caught_id[RS_ID_MAX]; /* event id of the first caught positive  */
} rs_trainer_stats_t;

/* Counter snapshot (rs_trainer_stats_t is large: ~70 KB with the AUC
 * bins and the delay histogram).  Any thread. */
void rs_trainer_stats(rs_trainer_t *tr, rs_trainer_stats_t *st);

/* Learn everything queued, publish once more if anything was learned since
 * the last version, join the thread and, if `save`, save the model to
 * save_path (if set).  Only the first call does anything.  Returns the
 * save error, if any. */
rs_err_t rs_trainer_stop(rs_trainer_t *tr, int save, char *errstr,
                         size_t errstr_size);

/* rs_trainer_stop without saving (a failed start must not overwrite the
 * save path) and free everything, T included.  NULL is a no-op. */
void rs_trainer_destroy(rs_trainer_t *tr);

#ifdef __cplusplus
}
#endif
#endif /* RS_TRAINER_H */
