/* service_int.h -- the scoring service's shared state, private to
 * scoring/service.c and scoring/svc_*.c (never include it elsewhere: the
 * public API is scoring.h, whose handle stays opaque).
 *
 * service.c creates and runs the service; svc_batch.c processes a batch;
 * svc_ckpt.c checkpoints; svc_parts.c follows the partitions;
 * svc_metrics.c publishes and reads the metrics snapshot.  The functions
 * below are what one of these files calls in another.
 *
 * Threads: every field belongs to the service thread, except the
 * snapshot (snap, under snap_lock: read by HTTP threads), ckpt_io_err /
 * ckpt_io_done_us (atomics written by the checkpoint I/O thread) and
 * ckpt_cf / ckpt_logs (handed to that thread while ckpt_io_running).
 */
#ifndef RS_SERVICE_INT_H
#define RS_SERVICE_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "scoring.h"
#include "scoring/alerts.h"
#include "scoring/cpstage.h"
#include "scoring/changelog.h"
#include "scoring/parts.h"
#include "scoring/pstate.h"
#include "scoring/trainer.h"
#include "scoring/workers.h"
#include "model/shard.h"

#define RS_SVC_RING 16384 /* batches awaiting Kafka acks and the Redis
                          * write (or the transaction commit)        */
#define RS_SVC_OFFS 65536 /* their (topic, partition, offset) entries */
#define RS_SVC_MAX_PARTS 4096 /* partitions per input topic tracked for
                               * checkpoints; beyond: not checkpointed */

/* The highest input offset of one partition in a batch, stored once the
 * batch is delivered. */
typedef struct rs_svc_off_s {
    int32_t topic, partition;
    int64_t offset;
} rs_svc_off_t;

/* A batch in flight: its entries are offs[off0 .. off0 + n) (mod
 * RS_SVC_OFFS), one per (topic, partition) it read. */
typedef struct rs_svc_batch_s {
    uint64_t seq;
    uint64_t off0;
    int n;
    int64_t handed_us; /* scores handed to the producer (mono)       */
} rs_svc_batch_t;

/* Stages of one turn of the scoring loop (service.trace_slow): the time
 * each ends; rs_svc_trace logs the differences. */
enum {
    RS_SVC_TR_POLL0,  /* the poll called                               */
    RS_SVC_TR_POLL1,  /* ... returned the batch                        */
    RS_SVC_TR_RING,   /* room in the in-flight ring (backpressure)     */
    RS_SVC_TR_FEAT,   /* labels, dedup, cpstage, features              */
    RS_SVC_TR_FWD,    /* model forward (workers)                       */
    RS_SVC_TR_LOG,    /* learning-log appends, decisions               */
    RS_SVC_TR_REC,    /* records encoded (workers)                     */
    RS_SVC_TR_PUB,    /* handed to the producer                        */
    RS_SVC_TR_REDIS,  /* queued for the Redis writer                   */
    RS_SVC_TR_BEND,   /* trainer messages, changelog: the batch done   */
    RS_SVC_TR_ACKS,   /* delivery reports, offsets, partitions         */
    RS_SVC_TR_SWAP,   /* the trainer's newest version swapped in       */
    RS_SVC_TR_CKPT,   /* checkpoint step                               */
    RS_SVC_TR_END,    /* metrics snapshot, stats                       */
    RS_SVC_TR_N
};
#define RS_SVC_MARK(svc, i)                                                   \
    do {                                                                      \
        if ((svc)->trace) (svc)->trm[i] = rs_clock_mono_us();                  \
    } while (0)

struct rs_service_s {
    const rs_app_conf_t *app;
    const rs_service_conf_t *conf;
    rs_ingest_t *ing;
    rs_features_t *feat;
    rs_model_t *model;    /* the scorer S (trainer.h)                   */
    rs_trainer_t *tr;     /* learns on its own thread, publishes to S   */
    rs_msync_t *msync;    /* one model across instances (or NULL)       */
    rs_sink_kafka_t *ks;
    rs_sink_redis_t *rd;
    rs_workers_t *wk;     /* decode, records and encoding on every core */
    rs_model_shard_t *msh; /* the forward by entity on wk's pool (12.2) */
    rs_alerts_t *al;      /* maintenance (alerts.h); NULL: off          */
    rs_cpstage_t *cp;     /* counterparty stage (cpstage.h); NULL: the
                           * engine computes every key from this
                           * instance's partitions                     */
    rs_pstate_t *pstate;  /* partition-local state stores (pstate.h)    */
    FILE *feat_out;       /* $RS_TEST_FEATURES_OUT: every published
                           * event's feature vector (tests only)        */
    rs_parts_t *parts;    /* which partitions' state is here (parts.h)  */
    rs_changelog_t *clog; /* state changelog topic (changelog.h); NULL: off */
    rs_standby_t *sb;     /* standby copies (standby.h); NULL: off       */
    int clog_checked;     /* its topic checked (first assignment)        */
    rs_err_t clog_err;    /* state.changelog: true and no usable topic   */
    char clog_errstr[600];

    int dim, batch_max;
    const rs_msg_t **msgs; /* [batch_max] the polled batch: the consumer's
                           * messages (rs_ingest_poll_ref), valid until
                           * the next poll                              */
    float *x;             /* [batch_max][dim] raw feature vectors       */
    float *contrib;       /* [batch_max][dim] logit contributions       */
    float *scores;        /* [batch_max]                                */
    rs_model_input_t *min;   /* [batch_max] model inputs of the events  */
    rs_model_output_t *mout; /* [batch_max] scores + explanation parts  */
    uint32_t *flags;      /* [batch_max] feature flags (late, ...)      */
    int *ev_msg;          /* [batch_max] msgs index of each event row   */
    rs_score_t *out;      /* [batch_max] score records                  */
    size_t log_max;       /* bytes of one input log                     */
    uint8_t *logbuf;      /* [batch_max][log_max] scoring inputs        */
    const void **logs;    /* [batch_max] logs to store (NULL: none)     */
    size_t *log_lens;     /* [batch_max]                                */
    int *pub;             /* [batch_max] out index of an event, -1 if a
                           * replay (state only, not published)         */
    rs_dedup_t *dedup;    /* decisions on record; NULL: dedup_window 0  */
    uint64_t *ev_dd;      /* [batch_max] dedup entry of each event row  */
    uint64_t *dd_key;     /* [batch_max] dedup key of each message (an
                           * event's; computed before the batch's loop,
                           * which prefetches RS_SVC_DD_AHEAD ahead)    */
    int *dup_msg;         /* [batch_max] msgs index of each duplicate   */
    uint64_t *dup_dd;     /* [batch_max] dedup entry it duplicates      */
    /* Each record is encoded once per batch: JSON for Redis (and Kafka),
     * protobuf for Kafka too with service.scores_format=protobuf; the
     * events' records by the workers (workers.c), these arenas hold the
     * duplicates'; [RS_WORKERS_GENS + 1] arena sets, the batch's is
     * `gen` (rs_workers_hold: held until the Kafka sink is done with
     * them; RS_WORKERS_GENS: the copy set, published with a copy). */
    rs_enc_arena_t enc_json[RS_WORKERS_GENS + 1],
        enc_kafka[RS_WORKERS_GENS + 1];
    int gen;              /* the arena set of the batch being made      */
    const void **json;    /* [batch_max] JSON of out[i] in enc_json     */
    size_t *json_lens;    /* [batch_max]                                */
    const void **kbytes;  /* [batch_max] Kafka bytes of out[i]          */
    size_t *klens;        /* [batch_max]                                */
    /* redis.record_format compact: the events' compact Redis records,
     * made by the workers beside the JSON (NULL: a duplicate's, or a
     * record the form does not take: the sink encodes it); NULL arrays
     * with record_format json. */
    const void **recs;    /* [batch_max]                                */
    size_t *rec_lens;     /* [batch_max]                                */

    rs_svc_batch_t *ring;          /* [RS_SVC_RING]                      */
    uint64_t ring_head, ring_tail; /* FIFO of unacked batches [tail,head) */
    rs_svc_off_t *offs;            /* [RS_SVC_OFFS]                      */
    uint64_t offs_head, offs_tail;
    uint64_t next_seq;
    uint64_t sealed_seq;           /* last batch fully handed to both sinks
                                    * (every batch <= it is complete)    */

    /* exactly-once */
    int eos;
    volatile sig_atomic_t *stop;   /* rs_service_run's, for callbacks   */
    int txn_open;
    int64_t txn_begin_us;
    uint8_t *txn_dirty;            /* [2][RS_SVC_MAX_PARTS] read in txn  */

    int64_t watermark_ms;          /* max event time seen                */
    char ckpt_path[600];           /* service.checkpoint_path, or the
                                    * state directory's "checkpoint"     */
    /* learning logs (one per input partition, in the state directory) */
    rs_state_t *state;
    size_t lrec_size;
    uint8_t *lrec;                 /* [batch_max][lrec_size] records     */
    rs_learnlog_t **ev_log;        /* [batch_max] log of each event row   */
    uint32_t *lpend;               /* [RS_STATE_MAX_PARTS] records of the
                                    * batch not yet appended, per log    */
    int64_t *pwm;                  /* [RS_STATE_MAX_PARTS] watermark per
                                    * partition (-inf: none)             */
    int64_t *pwm_sent;             /* ... last sent to the trainer       */
    uint64_t *lend_sent;           /* log ends last sent to the trainer  */
    int64_t *lrestore;             /* [RS_STATE_MAX_PARTS] checkpoint's
                                    * log end (-1: none)                 */
    int32_t *touched;              /* [batch_max] partitions of a batch  */
    rs_learnlog_t **ckpt_logs;     /* [RS_STATE_MAX_PARTS] a checkpoint's */
    int ckpt_nlogs;
    int64_t start_us, last_input_us, first_scored_us;
    rs_service_stats_t st;
    char last_version[RS_VERSION_MAX];
    char example_id[RS_ID_MAX];
    int example_rank;    /* of example_id: 1 scored, 2 flagged decision,
                          * 3 caught fraud (the demo shows the best) */

    /* checkpoints */
    int64_t *applied;              /* [2][RS_SVC_MAX_PARTS] next offset
                                    * applied to the state; -1 = none   */
    int ckpt_active;               /* steps in progress                 */
    int64_t ckpt_due_us, ckpt_begin_us;
    size_t ckpt_step_n;            /* key slots per step: checkpoint_step,
                                    * less while one step takes more than
                                    * half of checkpoint_pause           */
    int64_t ckpt_step_us;          /* the last step's time (the next one's
                                    * estimate)                          */
    pthread_t ckpt_io;             /* commits (fsync + rename)          */
    int ckpt_io_running;
    rs_features_ckfile_t *ckpt_cf; /* detached: held, then handed to
                                    * ckpt_io                          */
    int ckpt_held;                 /* ckpt_cf waits for its batches     */
    uint64_t ckpt_need;            /* ring_head at its begin: committed
                                    * once ring_tail reaches it         */
    void *ckpt_buf;                /* [ckpt_buf_cap] the service record  */
    size_t ckpt_buf_cap;
    void *reh_buf;                 /* [reh_buf_cap] the trainer's rehearsal
                                    * state, copied for a checkpoint (i15) */
    size_t reh_buf_cap;
    _Atomic int ckpt_io_err;
    _Atomic int64_t ckpt_io_done_us;

    /* Snapshot for other threads (metrics), published about every second
     * by the service thread under snap_lock. */
    pthread_mutex_t snap_lock;
    struct rs_svc_snap_s {
        rs_service_stats_t st;
        rs_features_stats_t fs;
        rs_model_stats_t ms;        /* the scorer                    */
        rs_trainer_stats_t ts;      /* the trainer (updates, drift)  */
        rs_sink_kafka_stats_t ks;
        rs_sink_redis_stats_t rds;
        rs_ingest_stats_t is;
        rs_dedup_stats_t dds;
        int nlag;
        rs_ingest_lag_t lag[256];
        int replaying;              /* partitions replaying (restore)  */
        int64_t replay_left;        /* their messages still to replay  */
        int redis_ok;
        int valid;
        int64_t taken_us;           /* rs_clock_mono_us() of the copy  */
        int64_t lag_total;          /* sum of the known lags           */
        int64_t stalled_us;         /* without progress while work was
                                     * waiting (0: progressing/idle)    */
        char stall_what[96];        /* what was waiting                */
    } *snap;
    int64_t snap_next_us;
    int64_t model_meta_next_us;    /* next try to publish version metadata */

    rs_service_progress_cb *progress_cb;
    void *progress_opaque;
    int64_t progress_interval_us, progress_next_us;
    int64_t stats_next_us;

    /* Progress and stop (readiness, bounded waits) */
    int64_t progress_us;           /* last batch completed, transaction
                                    * committed, or idle with nothing in
                                    * flight                            */
    int64_t stop_deadline_us;      /* 0 until the stop is seen; then every
                                    * wait ends by it (stop_timeout)     */

    /* service.trace_slow: the stages of the current loop turn (mono us,
     * 0 = not reached), logged by rs_svc_trace when slow */
    int trace;                     /* service.trace_slow > 0             */
    int64_t trm[RS_SVC_TR_N];
    int64_t tr_cp_us, tr_cp_max_us; /* in rs_cpstage_fill: sum, longest */
};

/* ------------------------------------------- service.c (service thread) */

/* Milliseconds left before the graceful stop must be done; -1 while not
 * stopping (service.stop_timeout shared by every wait). */
int rs_svc_stop_left_ms(rs_service_t *svc, volatile sig_atomic_t *stop);

/* ----------------------------------------- svc_batch.c (service thread) */

/* Process one polled batch of n messages (svc->msgs[0..n)). */
rs_err_t rs_svc_batch(rs_service_t *svc, int n, volatile sig_atomic_t *stop,
                      char *errstr, size_t errstr_size);
/* The learning log of `partition`, opened (and rewound after a restore)
 * at its first use and handed to the trainer; NULL with errstr. */
rs_learnlog_t *rs_svc_log(rs_service_t *svc, int32_t partition,
                          char *errstr, size_t errstr_size);
/* Swap in the trainer's newest version (between batches). */
void rs_svc_swap_weights(rs_service_t *svc);
/* service.trace_slow: log the turn just ended (n messages) if it was
 * slow; then clear the marks. */
void rs_svc_trace(rs_service_t *svc, int n);
/* At-least-once: store the offsets of the delivered batches. */
void rs_svc_store_acked(rs_service_t *svc);
/* Exactly-once: commit the open transaction (waits for Redis). */
rs_err_t rs_svc_txn_commit(rs_service_t *svc, volatile sig_atomic_t *stop,
                           char *errstr, size_t errstr_size);

/* ------------------------------------------ svc_ckpt.c (service thread) */

/* Restore the checkpoint at start (a missing file: empty state). */
rs_err_t rs_svc_ckpt_restore(rs_service_t *svc, char *errstr,
                             size_t errstr_size);
/* Wait for the checkpoint I/O thread, if one runs, and count its result. */
void rs_svc_ckpt_join(rs_service_t *svc);
/* One incremental checkpoint step between batches; a detached one goes
 * to the I/O thread once its batches are delivered. */
void rs_svc_ckpt_tick(rs_service_t *svc, int64_t now_us);
/* A detached checkpoint now: committed (I/O thread) if its batches are
 * delivered, else dropped; with `wait`, the I/O thread joined (a learning
 * log it syncs is about to close). */
void rs_svc_ckpt_settle(rs_service_t *svc, int wait);
/* The batches in flight will never be delivered (exactly-once: their
 * transaction aborted): a checkpoint in progress or detached that covers
 * them is dropped (call before ring_tail jumps to ring_head). */
void rs_svc_ckpt_drop(rs_service_t *svc);
/* Shutdown: a complete checkpoint of the final state. */
void rs_svc_ckpt_final(rs_service_t *svc);

/* ----------------------------------------- svc_parts.c (service thread) */

/* svc->parts with the operations parts.h needs from the service. */
void rs_svc_parts_new(rs_service_t *svc);
/* The consumer's revoke callback (inside rs_ingest_poll). */
void rs_svc_assign_hook(void *opaque, rs_ingest_start_t *parts, int n);
void rs_svc_revoke_hook(void *opaque, const rs_ingest_pos_t *parts, int n,
                        int lost);
/* The events partition may still bring an event a held label names. */
int rs_svc_p_replaying(void *o, int32_t p);
/* The changelog topic, checked once at the first assignment. */
void rs_svc_clog_check(rs_service_t *svc);
/* state.standby (standby.h): svc->sb over the changelog, or a config
 * error (RS_ERR_CONFIG: standby without state.changelog); between polls,
 * the copies read (not while a feature checkpoint is in progress). */
rs_err_t rs_svc_standby_new(rs_service_t *svc, const char *bootstrap,
                            char *errstr, size_t errstr_size);
void rs_svc_standby_tick(rs_service_t *svc);
/* A partition's positions now (changelog markers). */
void rs_svc_p_pos(void *o, int32_t p, rs_pstate_pos_t *pos);

/* --------------------------------------- svc_metrics.c (service thread) */

/* Between batches and while waiting: stats, the metrics snapshot (about
 * every second), the progress callback, the stats log line. */
void rs_svc_periodic(rs_service_t *svc, int64_t now_us);

#endif
