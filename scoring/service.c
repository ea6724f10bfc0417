/* service.c -- the scoring loop (see scoring.h for the design note).
 *
 * Invariants:
 *  - A batch's input offsets are stored only after every score of the batch
 *    was delivered to Kafka and written to Redis.  Batches complete in
 *    order (rs_sink_kafka_acked() is a watermark), so the offset ring is a
 *    FIFO.
 *  - Features of an event are computed from the state before the event;
 *    labels update feature label-state and the model before the next poll.
 *  - No allocation after rs_service_new(): every array below is sized from
 *    batch_max and the offset ring is fixed.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "scoring.h"
#include "scoring/alerts.h"
#include "scoring/cpstage.h"
#include "scoring/changelog.h"
#include "scoring/parts.h"
#include "scoring/pstate.h"
#include "scoring/trainer.h"
#include "scoring/workers.h"

uint64_t rs_memory_limit_override;

#define RS_SVC_RING 16384 /* batches awaiting Kafka acks and the Redis
                          * write (or the transaction commit)        */
#define RS_SVC_OFFS 65536 /* their (topic, partition, offset) entries */
#define RS_SVC_MAX_PARTS 4096 /* partitions per input topic tracked for
                               * checkpoints; beyond: not checkpointed */

/* The service's blob inside a feature checkpoint: where the restored state
 * ends in each input partition (n positions after the header), then, in a
 * final checkpoint (graceful stop), caches_len bytes of the scorer
 * model's entity caches (rs_model_caches_write), then dedup_len bytes of
 * the duplicate window (rs_dedup_write; every checkpoint).  Host byte
 * order (a local file).  Version 1 had neither caches nor caches_len;
 * version 3 adds the learning logs' ends (nlogs rs_svc_lend_t after the
 * positions, before the caches) and dedup_len. */
#define RS_SVC_CKPT_MAGIC 0x464f5352u /* "RSOF" */
typedef struct rs_svc_ckpt_hdr_s {
    uint32_t magic, version, n, pad;
    char topic[2][128];              /* events, labels topic names       */
    uint64_t caches_len;             /* v2: bytes of caches after pos[n] */
    uint32_t nlogs, pad2;            /* v3: learning-log ends after pos[n] */
    uint64_t dedup_len;              /* v3: bytes of dedup after caches  */
} rs_svc_ckpt_hdr_t;
#define RS_SVC_CKPT_V1_HDR offsetof(rs_svc_ckpt_hdr_t, caches_len)
#define RS_SVC_CKPT_V2_HDR offsetof(rs_svc_ckpt_hdr_t, nlogs)

/* v3: the end of each open learning log when the state was taken (a
 * restore rewinds the log there: the input after it is read and logged
 * again). */
typedef struct rs_svc_lend_s {
    int32_t partition, pad;
    uint64_t end;
} rs_svc_lend_t;

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
} rs_svc_batch_t;

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
    rs_alerts_t *al;      /* maintenance (alerts.h); NULL: off          */
    rs_cpstage_t *cp;     /* counterparty stage (cpstage.h); NULL: the
                           * engine computes every key from this
                           * instance's partitions                     */
    rs_pstate_t *pstate;  /* partition-local state stores (pstate.h)    */
    FILE *feat_out;       /* $RS_TEST_FEATURES_OUT: every published
                           * event's feature vector (tests only)        */
    rs_parts_t *parts;    /* which partitions' state is here (parts.h)  */
    rs_changelog_t *clog; /* state changelog topic (changelog.h); NULL: off */
    int clog_checked;     /* its topic checked (first assignment)        */
    rs_err_t clog_err;    /* state.changelog: true and no usable topic   */
    char clog_errstr[600];

    int dim, batch_max;
    rs_msg_t *msgs;       /* [batch_max]                                */
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
    int *dup_msg;         /* [batch_max] msgs index of each duplicate   */
    uint64_t *dup_dd;     /* [batch_max] dedup entry it duplicates      */
    /* Each record is encoded once per batch: JSON for Redis (and Kafka),
     * protobuf for Kafka too with service.scores_format=protobuf; the
     * events' records by the workers (workers.c), these arenas hold the
     * duplicates'. */
    rs_enc_arena_t enc_json, enc_kafka;
    const void **json;    /* [batch_max] JSON of out[i] in enc_json     */
    size_t *json_lens;    /* [batch_max]                                */
    const void **kbytes;  /* [batch_max] Kafka bytes of out[i]          */
    size_t *klens;        /* [batch_max]                                */

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
    pthread_t ckpt_io;             /* commits (fsync + rename)          */
    int ckpt_io_running;
    rs_features_ckfile_t *ckpt_cf; /* handed to ckpt_io                 */
    void *ckpt_buf;                /* [ckpt_buf_cap] the service record  */
    size_t ckpt_buf_cap;
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
};

/* ------------------------------------------------------------ config */

static const rs_conf_field_t rs_service_fields[] = {
    {"review_threshold", RS_CONF_DOUBLE, "0.5",
     offsetof(rs_service_conf_t, review_threshold), 0,
     "score >= this is decided review", NULL, 0, 1},
    {"decline_threshold", RS_CONF_DOUBLE, "0.9",
     offsetof(rs_service_conf_t, decline_threshold), 0,
     "score >= this is decided decline", NULL, 0, 1},
    {"alert_threshold", RS_CONF_DOUBLE, "0.7",
     offsetof(rs_service_conf_t, alert_threshold), 0,
     "events of an alert type with score >= this are decided alert", NULL, 0,
     1},
    {"alert_types", RS_CONF_STRING, "sensor",
     offsetof(rs_service_conf_t, alert_types),
     sizeof(((rs_service_conf_t *)0)->alert_types),
     "comma list of event types decided alert/approve (sensors) instead of "
     "approve/review/decline", NULL, 0, 0},
    {"scores_format", RS_CONF_ENUM, "json",
     offsetof(rs_service_conf_t, scores_format), 0,
     "encoding of records on the scores and alerts topics", "json|protobuf",
     0, 0},
    {"explain", RS_CONF_BOOL, "true", offsetof(rs_service_conf_t, explain), 0,
     "explain every score (contributions, attended events, experts, "
     "reasons); false = score only (see the bench for the cost)", NULL, 0, 0},
    {"explain_top", RS_CONF_INT, "5", offsetof(rs_service_conf_t, explain_top),
     0, "feature contributions kept in each explanation", NULL, 0,
     RS_MAX_CONTRIB},
    {"explain_attended", RS_CONF_INT, "3",
     offsetof(rs_service_conf_t, explain_attended), 0,
     "attended past events kept in each explanation (sequence model)", NULL,
     0, RS_MAX_ATTEND},
    {"stats_interval", RS_CONF_DURATION, "10s",
     offsetof(rs_service_conf_t, stats_interval_ms), 0,
     "period of the stats log line; 0 = off", NULL, 0, 0},
    {"max_events", RS_CONF_INT, "0", offsetof(rs_service_conf_t, max_events),
     0, "stop after this many scored events; 0 = run until signalled", NULL,
     0, 0},
    {"exit_idle", RS_CONF_DURATION, "0",
     offsetof(rs_service_conf_t, exit_idle_ms), 0,
     "stop after this long without input; 0 = never", NULL, 0, 0},
    {"model_path", RS_CONF_STRING, "", offsetof(rs_service_conf_t, model_path),
     sizeof(((rs_service_conf_t *)0)->model_path),
     "start from this model file; empty = a new model", NULL, 0, 0},
    {"model_save_path", RS_CONF_STRING, "",
     offsetof(rs_service_conf_t, model_save_path),
     sizeof(((rs_service_conf_t *)0)->model_save_path),
     "save the model here at shutdown; empty = do not save", NULL, 0, 0},
    {"checkpoint_path", RS_CONF_STRING, "",
     offsetof(rs_service_conf_t, checkpoint_path),
     sizeof(((rs_service_conf_t *)0)->checkpoint_path),
     "feature-state checkpoint file (with the input offsets it matches); "
     "restored at start, written periodically and at shutdown; empty = off",
     NULL, 0, 0},
    {"checkpoint_interval", RS_CONF_DURATION, "60s",
     offsetof(rs_service_conf_t, checkpoint_interval_ms), 0,
     "period of incremental checkpoints", NULL, 1000, 86400000},
    {"checkpoint_step", RS_CONF_INT, "2048",
     offsetof(rs_service_conf_t, checkpoint_step), 0,
     "key slots serialized per checkpoint step", NULL, 16, 1048576},
    {"checkpoint_pause", RS_CONF_DURATION, "2ms",
     offsetof(rs_service_conf_t, checkpoint_pause_ms), 0,
     "checkpoint steps run between two batches until this much time is used "
     "(bounds the pause checkpointing adds to scoring)", NULL, 1, 1000},
    {"explain_min_score", RS_CONF_DOUBLE, "0",
     offsetof(rs_service_conf_t, explain_min_score), 0,
     "explain only scores >= this (0 = every score); the others carry an "
     "empty explanation (riskstream_explained_total counts the explained)",
     NULL, 0, 1},
    {"log_inputs", RS_CONF_ENUM, "flagged",
     offsetof(rs_service_conf_t, log_inputs), 0,
     "scoring inputs kept in Redis for `audit --rescore`: none, flagged "
     "(decisions other than approve) or all (~9 KB per event with the "
     "default seq sizes)", "none|flagged|all", 0, 0},
    {"delivery", RS_CONF_ENUM, "at_least_once",
     offsetof(rs_service_conf_t, delivery), 0,
     "at_least_once: input offsets committed after Kafka acks and the Redis "
     "write; exactly_once: scores and input offsets in one Kafka "
     "transaction (consumers of the scores topic read_committed)",
     "at_least_once|exactly_once", 0, 0},
    {"transactional_id", RS_CONF_STRING, "",
     offsetof(rs_service_conf_t, transactional_id),
     sizeof(((rs_service_conf_t *)0)->transactional_id),
     "exactly_once: the producer's transactional.id, stable across restarts "
     "and unique per instance; \"\" = riskstream-<topics.group_id>", NULL,
     0, 0},
    {"transaction_interval", RS_CONF_DURATION, "100ms",
     offsetof(rs_service_conf_t, transaction_interval_ms), 0,
     "exactly_once: a transaction is committed this often (scores become "
     "visible to read_committed consumers then)", NULL, 1, 60000},
    {"commit_timeout", RS_CONF_DURATION, "30s",
     offsetof(rs_service_conf_t, commit_timeout_ms), 0,
     "exactly_once: longest wait for Redis to hold a transaction's scores "
     "before the commit; past it the transaction is aborted and the service "
     "stops (exit 1) to resume from the committed offsets after a restart "
     "(keep it below the producer's transaction.timeout.ms, 60 s)", NULL,
     1000, 3600000},
    {"stop_timeout", RS_CONF_DURATION, "20s",
     offsetof(rs_service_conf_t, stop_timeout_ms), 0,
     "graceful stop (SIGTERM): longest time, all waits together, for "
     "in-flight scores to reach Kafka and Redis; what is still undelivered "
     "then is named in the log and read again after the restart (no final "
     "checkpoint)", NULL, 100, 600000},
    {"stall_timeout", RS_CONF_DURATION, "60s",
     offsetof(rs_service_conf_t, stall_timeout_ms), 0,
     "/readyz answers 503 when scoring made no progress for this long while "
     "input is waiting (consumer lag > 0) or results are in flight; 0 = "
     "off", NULL, 0, 86400000},
    {"dedup_window", RS_CONF_DURATION, "24h",
     offsetof(rs_service_conf_t, dedup_window_ms), 0,
     "an event whose (entity_id, id) was scored within this much event time "
     "(and is still among the last dedup_max events) is a duplicate: it "
     "gets the decision on record again (same score and model version, "
     "flags bit 1) and enters neither the features nor the model a second "
     "time; 0 = off", NULL, 0, 31622400000.0},
    {"dedup_max", RS_CONF_INT, "262144",
     offsetof(rs_service_conf_t, dedup_max), 0,
     "events remembered for duplicate detection (about 40 bytes each, kept "
     "in the checkpoint); the oldest is forgotten first when full", NULL,
     1024, 1073741824},
    {"workers", RS_CONF_INT, "0", offsetof(rs_service_conf_t, workers), 0,
     "threads that decode the input, build the explanations and encode the "
     "score records of each batch (the scoring thread is one of them; "
     "features and the model's forward stay on it); 0 = the number of "
     "online cores, 1 = everything on the scoring thread.  The records are "
     "the same byte for byte whatever the number", NULL, 0, RS_POOL_MAX},
};

rs_err_t rs_app_conf_init(rs_app_conf_t *app, char *errstr,
                          size_t errstr_size) {
    memset(app, 0, sizeof(*app));
    rs_kv_init(&app->kafka);
    app->conf = rs_conf_new();
    rs_conf_section_t *secs = app->secs;
    secs[0] = (rs_conf_section_t){"service", "decisions, explanations, limits",
                                  rs_service_fields,
                                  (int)RS_ARRAY_LEN(rs_service_fields),
                                  &app->service};
    rs_ingest_conf_section(&secs[1], &app->ingest);
    rs_redis_conf_section(&secs[2], &app->redis);
    rs_features_conf_section(&secs[3], &app->features);
    rs_model_conf_section(&secs[4], &app->model);
    rs_seq_conf_section(&secs[5], &app->model);
    rs_http_conf_section(&secs[6], &app->http);
    rs_state_conf_section(&secs[7], &app->state);
    rs_msync_conf_section(&secs[8], &app->sync);
    rs_maint_conf_init(&app->maint);
    rs_maint_conf_section(&secs[9], &app->maint);
    rs_cpstage_conf_section(&secs[10], &app->cpstage);
    rs_err_t err = RS_OK;
    for (int i = 0; err == RS_OK && i < 11; i++)
        err = rs_conf_add_section(app->conf, &secs[i], errstr, errstr_size);
    /* features.specs / features.extra_specs: the declarative feature list */
    if (err == RS_OK)
        err = rs_features_conf_add_specs(app->conf, &app->features, errstr,
                                         errstr_size);
    rs_conf_add_passthrough(app->conf, "kafka",
                            "librdkafka properties, passed to "
                            "rd_kafka_conf_set() as they are",
                            &app->kafka);
    return err;
}

void rs_app_conf_resolve(rs_app_conf_t *app) {
    if (!app->features.label_maturity)
        app->features.label_maturity = app->model.label_delay;
}

void rs_app_conf_destroy(rs_app_conf_t *app) {
    rs_conf_destroy(app->conf);
    rs_kv_free(&app->kafka);
    app->conf = NULL;
}

/* ---------------------------------------------------------- decisions */

static int rs_type_in_list(const char *list, const char *type) {
    size_t tl = strlen(type);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *te = e;
        while (te > p && te[-1] == ' ') te--;
        if ((size_t)(te - p) == tl && tl && !strncmp(p, type, tl)) return 1;
        p = e;
    }
    return 0;
}

rs_decision_t rs_decide(const rs_service_conf_t *conf, const char *type,
                        double score) {
    if (type && rs_type_in_list(conf->alert_types, type))
        return score >= conf->alert_threshold ? RS_DECISION_ALERT
                                              : RS_DECISION_APPROVE;
    if (score >= conf->decline_threshold) return RS_DECISION_DECLINE;
    if (score >= conf->review_threshold) return RS_DECISION_REVIEW;
    return RS_DECISION_APPROVE;
}

/* ------------------------------------------------------ memory check */

static void rs_svc_fmt_bytes(uint64_t b, char *buf, size_t size) {
    if (b >= (1ULL << 30))
        snprintf(buf, size, "%.1f GiB", (double)b / (double)(1ULL << 30));
    else if (b >= (1ULL << 20))
        snprintf(buf, size, "%.1f MiB", (double)b / (double)(1ULL << 20));
    else
        snprintf(buf, size, "%.1f KiB", (double)b / 1024.0);
}

rs_err_t rs_app_conf_mem_check(const rs_app_conf_t *app, uint64_t *total,
                               char *errstr, size_t errstr_size) {
    rs_mem_item_t it[20]; /* 16 for features and model, then ours */
    int n = 0, k = 0, dim = 0;
    /* cpstage hook: the scoring engine's other tables get one slot, the
     * stage's store holds them (counted below) */
    int want_cp = rs_cpstage_wanted(&app->cpstage, &app->features);
    rs_features_conf_t fmain = app->features;
    if (want_cp) fmain.max_counterparties = 1;
    rs_err_t err = rs_features_conf_mem(&fmain, it, 16, &k, &dim,
                                        errstr, errstr_size);
    if (err != RS_OK) return err;
    n += k;
    n += rs_model_conf_mem(&app->model, dim, it + n, 16 - n);
    it[n++] = (rs_mem_item_t){"model.train_queue",
                              (uint64_t)(app->model.train_queue > 0
                                             ? app->model.train_queue
                                             : 1) *
                                  sizeof(rs_trainer_msg_t)};
    it[n++] = (rs_mem_item_t){"redis.buffer_bytes",
                              (uint64_t)app->redis.buffer_bytes};
    if (app->service.dedup_window_ms > 0)
        it[n++] = (rs_mem_item_t){
            "service.dedup_max",
            rs_dedup_bytes((uint64_t)app->service.dedup_max)};
    if (app->maint.enabled) { /* alerts.h: two machine tables, payloads */
        uint64_t slots = 1;
        while (slots < (uint64_t)app->maint.max_machines * 2) slots <<= 1;
        it[n++] = (rs_mem_item_t){
            "maintenance.max_machines",
            slots * 72 + (uint64_t)app->maint.max_machines * 168 +
                (uint64_t)app->ingest.batch_max * 2600};
    }
    /* Per-batch arrays (messages, vectors, records, input logs). */
    if (want_cp)
        it[n++] = (rs_mem_item_t){"features.max_counterparties and "
                                  "features.label_index (counterparty "
                                  "stage's store; cpstage.enabled)",
                                  rs_cpstage_conf_mem(&app->features)};
    uint64_t B = (uint64_t)app->ingest.batch_max;
    it[n++] = (rs_mem_item_t){
        "topics.batch_max",
        B * (sizeof(rs_msg_t) + sizeof(rs_score_t) + sizeof(rs_model_input_t) +
             sizeof(rs_model_output_t) + 8 * (uint64_t)dim + 16384)};
    uint64_t sum = 0;
    int big = 0;
    for (int i = 0; i < n; i++) {
        sum += it[i].bytes;
        if (it[i].bytes > it[big].bytes) big = i;
    }
    if (total) *total = sum;
    char what[64];
    uint64_t lim = rs_memory_limit_override ? rs_memory_limit_override
                                            : rs_mem_limit(what, sizeof(what));
    if (rs_memory_limit_override) rs_strlcpy(what, "limit set by the caller",
                                             sizeof(what));
    if (sum <= lim) return RS_OK;
    char need[32], have[32], bb[32], rest[256] = "";
    rs_svc_fmt_bytes(sum, need, sizeof(need));
    rs_svc_fmt_bytes(lim, have, sizeof(have));
    rs_svc_fmt_bytes(it[big].bytes, bb, sizeof(bb));
    size_t rl = 0;
    for (int i = 0; i < n && rl + 1 < sizeof(rest); i++) {
        if (i == big || it[i].bytes * 20 < sum) continue; /* < 5 % */
        char b2[32];
        rs_svc_fmt_bytes(it[i].bytes, b2, sizeof(b2));
        rl += (size_t)snprintf(rest + rl, sizeof(rest) - rl, "; %s %s",
                               it[i].key, b2);
    }
    return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                   "the configuration needs %s (%llu bytes), more than this "
                   "machine can hold (%s: %s): %s needs %s (%llu bytes)%s; "
                   "lower it", need, (unsigned long long)sum, what, have,
                   it[big].key, bb, (unsigned long long)it[big].bytes, rest);
}

/* ------------------------------------------------------------- create */

static rs_err_t rs_svc_ckpt_restore(rs_service_t *svc, char *errstr,
                                    size_t errstr_size);
static void rs_svc_ckpt_join(rs_service_t *svc);
static void rs_svc_parts_new(rs_service_t *svc);
static rs_model_t *rs_svc_newest_stored(rs_model_t *t,
                                        const rs_model_conf_t *tconf,
                                        int dim, const char *const *names);

rs_service_t *rs_service_new(const rs_app_conf_t *app, const char *bootstrap,
                             rs_err_t *err_out, char *errstr,
                             size_t errstr_size) {
    rs_err_t err = RS_OK;
    rs_service_t *svc = rs_calloc(1, sizeof(*svc));
    svc->app = app;
    svc->conf = &app->service;
    svc->batch_max = (int)app->ingest.batch_max;
    if (app->service.decline_threshold < app->service.review_threshold) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "service.decline_threshold (%g) is below "
                      "service.review_threshold (%g)",
                      app->service.decline_threshold,
                      app->service.review_threshold);
        goto fail;
    }

    /* Configuration errors that would only show once clients or buffers
     * exist: a bad `kafka:` property, sizes the machine cannot hold (an
     * allocation failing later aborts: exit 134). */
    if (rs_kafka_conf_check(&app->kafka, errstr, errstr_size) != RS_OK) {
        err = RS_ERR_CONFIG;
        goto fail;
    }
    uint64_t mem_total = 0;
    if ((err = rs_app_conf_mem_check(app, &mem_total, errstr,
                                     errstr_size)) != RS_OK) {
        err = RS_ERR_CONFIG;
        goto fail;
    }
    {
        char need[32];
        rs_svc_fmt_bytes(mem_total, need, sizeof(need));
        rs_info("service", "this configuration preallocates about %s", need);
    }

    /* One scoring thread per service: OpenBLAS must not spawn its own pool
     * per call (micro-batches are small; threads would only add jitter). */
    openblas_set_num_threads(1);
    /* cpstage hook: with the counterparty stage the engine here keeps the
     * entity table only (its other tables get one slot). */
    int want_cp = rs_cpstage_wanted(&app->cpstage, &app->features);
    {
        rs_features_conf_t fc = app->features;
        if (want_cp) fc.max_counterparties = 1;
        svc->feat = rs_features_new(&fc, errstr, errstr_size);
    }
    if (!svc->feat) { err = RS_ERR_CONFIG; goto fail; }
    if (want_cp) rs_features_set_scope(svc->feat, RS_FEATURES_SCOPE_ENTITY);
    svc->dim = rs_features_dim(svc->feat);
    const char *names[512];
    if (svc->dim > (int)RS_ARRAY_LEN(names)) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "too many features (%d)", svc->dim);
        goto fail;
    }
    for (int i = 0; i < svc->dim; i++)
        names[i] = rs_features_name(svc->feat, i);

    /* The trainer T learns: it reads the learning logs and needs no
     * entity caches, so its buffers are minimal.  The scorer S has T's
     * architecture and the configured buffers. */
    rs_model_conf_t tconf = app->model;
    tconf.seq.max_entities = tconf.batch_max + 1; /* the minimum allowed */
    rs_model_t *t = NULL;
    if (app->service.model_path[0]) {
        err = rs_model_load(app->service.model_path, &tconf, &t, errstr,
                            errstr_size);
        if (err != RS_OK) {
            if (err != RS_ERR_IO) err = RS_ERR_CONFIG;
            goto fail;
        }
        /* The model must have been trained on exactly these features. */
        char e2[256];
        if (rs_model_check_names(t, svc->dim, names, e2, sizeof(e2)) !=
            RS_OK) {
            /* label-aware windows end at the declared label delay
             * (features.label_maturity): a model trained with another
             * delay has other feature names */
            int off = strstr(e2, "_off") != NULL;
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "model %s: %s%s", app->service.model_path, e2,
                          off ? " (label-aware features end at the declared "
                                "label delay: serve with the "
                                "model.label_delay the model was trained "
                                "with)"
                              : "");
            rs_model_destroy(t);
            goto fail;
        }
    } else {
        t = rs_model_new(&tconf, svc->dim, names, errstr, errstr_size);
        if (!t) { err = RS_ERR_CONFIG; goto fail; }
    }

    /* The state directory: checkpoint, model store, learning logs. */
    {
        rs_learnlog_meta_t meta;
        rs_model_lrec_meta(t, &meta);
        svc->state = rs_state_new(&app->state, app->ingest.group_id,
                                  app->state_ephemeral, &meta,
                                  app->model.log_segment, errstr,
                                  errstr_size);
        if (!svc->state) {
            rs_model_destroy(t);
            err = RS_ERR_IO;
            goto fail;
        }
        svc->lrec_size = meta.rec_size;
    }
    if (app->service.checkpoint_path[0])
        rs_strlcpy(svc->ckpt_path, app->service.checkpoint_path,
                   sizeof(svc->ckpt_path));
    else
        rs_state_path(svc->state, "checkpoint", svc->ckpt_path,
                      sizeof(svc->ckpt_path));
    if (!tconf.store_dir[0])
        rs_state_path(svc->state, "models", tconf.store_dir,
                      sizeof(tconf.store_dir));
    char delays[700];
    rs_state_path(svc->state, "label-delays", delays, sizeof(delays));
    {
        /* refuse a configuration that would learn every fraud as genuine
         * (what was observed before counts too) */
        rs_hist_t *h = rs_malloc(2 * sizeof(rs_hist_t));
        char e2[600];
        if (rs_learner_delays_load(delays, &h[0], &h[1], e2, sizeof(e2)))
            rs_warn("service", "%s", e2);
        err = rs_learner_check_conf(&app->model, &h[1], errstr, errstr_size);
        free(h);
        if (err) {
            rs_model_destroy(t);
            goto fail;
        }
    }
    /* Restart: learning continues from the newest stored version of this
     * model (same features and architecture), unless --model says. */
    if (!app->service.model_path[0])
        t = rs_svc_newest_stored(t, &tconf, svc->dim, names);
    svc->model = rs_model_new_like(t, &app->model, errstr, errstr_size);
    if (!svc->model) {
        rs_model_destroy(t);
        err = RS_ERR_CONFIG;
        goto fail;
    }
    {
        rs_trainer_opts_t to = {app->service.model_save_path, delays,
                                RS_MIN(app->service.review_threshold,
                                       app->service.alert_threshold),
                                NULL,
                                app->maint.enabled ? app->maint.horizon : 0,
                                app->maint.enabled && app->maint.rul
                                    ? rs_maint_rul_cap(&app->maint)
                                    : 0};
        /* ---- model sync (modelsync.h): one model across the group */
        rs_trainer_hooks_t hooks;
        if (app->sync.enabled && !app->ingest.brokers[0]) {
            rs_info("service", "sync.enabled: the embedded broker serves "
                    "one instance, nothing to combine");
        } else if (app->sync.enabled) {
            svc->msync = rs_msync_new(&app->sync, &app->kafka, bootstrap,
                                      app->ingest.group_id, tconf.store_dir,
                                      &tconf, &err, errstr, errstr_size);
            if (!svc->msync) {
                rs_model_destroy(t);
                goto fail;
            }
            rs_msync_hooks(svc->msync, &hooks);
            to.hooks = &hooks;
        }
        /* ---- */
        svc->tr = rs_trainer_new(t, &tconf, &to, &err, errstr, errstr_size);
    }
    if (!svc->tr) {
        rs_model_destroy(t);
        goto fail;
    }
    {
        rs_model_weights_t *w = rs_trainer_take(svc->tr);
        err = rs_model_weights_use(svc->model, w);
        rs_model_weights_release(w);
        if (err != RS_OK) {
            rs_errf(errstr, errstr_size, err, "scorer cannot use the "
                    "trainer's weights: %s", rs_err_str(err));
            goto fail;
        }
    }

    if (app->maint.enabled) { /* maintenance: failures, alert policy */
        rs_alerts_opts_t ao = {(int)app->ingest.batch_max};
        svc->al = rs_alerts_new(&app->maint, &ao, svc->feat, svc->model,
                                svc->tr, errstr, errstr_size);
        if (!svc->al) { err = RS_ERR_CONFIG; goto fail; }
    }

    svc->rd = rs_sink_redis_new(&app->redis, errstr, errstr_size);
    if (!svc->rd) { err = RS_ERR_REDIS; goto fail; }
    /* i12cpu hook: the writer and its ring now, prefaulted while the
     * consumer joins its group (not on the first batches) */
    if ((err = rs_sink_redis_start(svc->rd)) != RS_OK) {
        rs_errf(errstr, errstr_size, err, "redis: cannot start the writer");
        goto fail;
    }
    svc->eos = app->service.delivery == RS_DELIVERY_EXACTLY_ONCE;
    char txn_id[160] = "";
    if (svc->eos) {
        if (app->service.transactional_id[0])
            rs_strlcpy(txn_id, app->service.transactional_id, sizeof(txn_id));
        else
            snprintf(txn_id, sizeof(txn_id), "riskstream-%s",
                     app->ingest.group_id);
    }
    if (svc->eos)
        svc->ks = rs_sink_kafka_new_txn(&app->kafka, bootstrap,
                                        app->ingest.topic_scores,
                                        app->ingest.topic_alerts,
                                        (rs_format_t)app->service.scores_format,
                                        txn_id, errstr, errstr_size);
    else
        svc->ks = rs_sink_kafka_new(&app->kafka, bootstrap,
                                    app->ingest.topic_scores,
                                    app->ingest.topic_alerts,
                                    (rs_format_t)app->service.scores_format,
                                    errstr, errstr_size);
    if (!svc->ks) { err = RS_ERR_KAFKA; goto fail; }
    rs_ingest_conf_t icon = app->ingest;
    icon.exactly_once = svc->eos;
    svc->ing = rs_ingest_new(&icon, &app->kafka, bootstrap, errstr,
                             errstr_size);
    if (!svc->ing) { err = RS_ERR_KAFKA; goto fail; }
    if (want_cp) { /* cpstage hook */
        rs_cpstage_opts_t co = {&app->cpstage, &app->features, &icon,
                                &app->kafka, bootstrap,
                                app->service.dedup_window_ms,
                                app->service.dedup_max, svc->eos};
        svc->cp = rs_cpstage_new(&co, &err, errstr, errstr_size);
        if (!svc->cp) goto fail;
    }
    int nwk = (int)app->service.workers;
    if (nwk <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nwk = cores < 1 ? 1 : cores > RS_POOL_MAX ? RS_POOL_MAX : (int)cores;
    }
    svc->wk = rs_workers_new(nwk, svc->dim, &err, errstr, errstr_size);
    if (!svc->wk) goto fail;
    rs_ingest_set_pool(svc->ing, rs_workers_pool(svc->wk));

    svc->snap = rs_calloc(1, sizeof(*svc->snap));
    pthread_mutex_init(&svc->snap_lock, NULL);
    svc->applied = rs_calloc(2 * RS_SVC_MAX_PARTS, sizeof(int64_t));
    for (int i = 0; i < 2 * RS_SVC_MAX_PARTS; i++) svc->applied[i] = -1;
    svc->lpend = rs_calloc(RS_STATE_MAX_PARTS, sizeof(uint32_t));
    svc->pwm = rs_calloc(RS_STATE_MAX_PARTS, sizeof(int64_t));
    svc->pwm_sent = rs_calloc(RS_STATE_MAX_PARTS, sizeof(int64_t));
    svc->lend_sent = rs_calloc(RS_STATE_MAX_PARTS, sizeof(uint64_t));
    svc->lrestore = rs_calloc(RS_STATE_MAX_PARTS, sizeof(int64_t));
    svc->ckpt_logs = rs_calloc(RS_STATE_MAX_PARTS, sizeof(*svc->ckpt_logs));
    for (int i = 0; i < RS_STATE_MAX_PARTS; i++) {
        svc->pwm[i] = svc->pwm_sent[i] = INT64_MIN;
        svc->lrestore[i] = -1;
    }
    if (app->service.dedup_window_ms > 0) {
        if (app->service.dedup_max < app->ingest.batch_max) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "service.dedup_max (%lld) must be at least "
                          "topics.batch_max (%lld)",
                          (long long)app->service.dedup_max,
                          (long long)app->ingest.batch_max);
            goto fail;
        }
        svc->dedup = rs_dedup_new((uint64_t)app->service.dedup_max,
                                  app->service.dedup_window_ms, errstr,
                                  errstr_size);
        if (!svc->dedup) { err = RS_ERR_CONFIG; goto fail; }
    }
    /* Partition-local state (issue 13): stores and ownership, before the
     * instance checkpoint names the partitions it holds. */
    svc->pstate = rs_pstate_new(rs_state_dir(svc->state), svc->feat,
                                svc->model, svc->dedup, errstr, errstr_size);
    if (!svc->pstate) { err = RS_ERR_IO; goto fail; }
    rs_svc_parts_new(svc);
    {
        /* The state changelog (state.changelog; changelog.h). */
        int on = app->state.changelog == RS_STATE_CHANGELOG_ON ||
                 (app->state.changelog == RS_STATE_CHANGELOG_AUTO &&
                  (app->ingest.brokers[0] ||
                   rs_kv_get(&app->kafka, "bootstrap.servers")));
        if (on) {
            char topic[300];
            snprintf(topic, sizeof(topic), "%s-state-changelog",
                     app->ingest.group_id);
            svc->clog = rs_changelog_new(&app->kafka, bootstrap, topic,
                                         svc->feat, svc->model, svc->dedup,
                                         svc->pstate, svc->batch_max, errstr,
                                         errstr_size);
            if (!svc->clog) { err = RS_ERR_KAFKA; goto fail; }
            /* the topic is checked at the first assignment (Kafka may be
             * unreachable now: serve waits for it) */
        }
    }
    {
        /* Tests compare every event's features across deployments
         * (tests/e2e/scaleout.sh): one line per published event. */
        const char *fo = getenv("RS_TEST_FEATURES_OUT");
        if (fo && fo[0] && !(svc->feat_out = fopen(fo, "a")))
            rs_warn("service", "RS_TEST_FEATURES_OUT %s: %s", fo,
                    strerror(errno));
    }
    err = rs_svc_ckpt_restore(svc, errstr, errstr_size);
    if (err != RS_OK) goto fail;

    int B = svc->batch_max, D = svc->dim;
    svc->msgs = rs_calloc((size_t)B, sizeof(*svc->msgs));
    svc->x = rs_aligned_calloc((size_t)B * (size_t)D, sizeof(float));
    svc->contrib = rs_aligned_calloc((size_t)B * (size_t)D, sizeof(float));
    svc->scores = rs_aligned_calloc((size_t)B, sizeof(float));
    svc->min = rs_calloc((size_t)B, sizeof(*svc->min));
    svc->mout = rs_calloc((size_t)B, sizeof(*svc->mout));
    svc->flags = rs_calloc((size_t)B, sizeof(uint32_t));
    svc->ev_msg = rs_calloc((size_t)B, sizeof(int));
    svc->out = rs_calloc((size_t)B, sizeof(rs_score_t));
    svc->pub = rs_calloc((size_t)B, sizeof(int));
    svc->lrec = rs_aligned_calloc((size_t)B, svc->lrec_size);
    svc->ev_log = rs_calloc((size_t)B, sizeof(*svc->ev_log));
    svc->touched = rs_calloc((size_t)B, sizeof(int32_t));
    svc->ev_dd = rs_calloc((size_t)B, sizeof(uint64_t));
    svc->dup_msg = rs_calloc((size_t)B, sizeof(int));
    svc->dup_dd = rs_calloc((size_t)B, sizeof(uint64_t));
    svc->json = rs_calloc((size_t)B, sizeof(*svc->json));
    svc->json_lens = rs_calloc((size_t)B, sizeof(size_t));
    svc->kbytes = rs_calloc((size_t)B, sizeof(*svc->kbytes));
    svc->klens = rs_calloc((size_t)B, sizeof(size_t));
    if (app->service.log_inputs != RS_LOG_INPUTS_NONE) {
        svc->log_max = rs_model_log_max(svc->model);
        svc->logbuf = rs_aligned_calloc((size_t)B, svc->log_max);
    }
    svc->logs = rs_calloc((size_t)B, sizeof(*svc->logs));
    svc->log_lens = rs_calloc((size_t)B, sizeof(size_t));
    svc->ring = rs_calloc(RS_SVC_RING, sizeof(*svc->ring));
    svc->offs = rs_calloc(RS_SVC_OFFS, sizeof(*svc->offs));
    svc->txn_dirty = rs_calloc(2 * RS_SVC_MAX_PARTS, 1);
    svc->next_seq = 1;
    rs_hist_init(&svc->st.e2e_us);
    rs_hist_init(&svc->st.proc_us);
    rs_hist_init(&svc->st.batch_msgs);
    rs_auc_init(&svc->st.auc);
    rs_strlcpy(svc->st.model_version, rs_model_version(svc->model),
               sizeof(svc->st.model_version));
    if (err_out) *err_out = RS_OK;
    return svc;

fail:
    if (err_out) *err_out = err;
    rs_service_destroy(svc);
    return NULL;
}

void rs_service_destroy(rs_service_t *svc) {
    if (!svc) return;
    rs_svc_ckpt_join(svc);
    if (svc->ckpt_active) rs_features_checkpoint_abort(svc->feat);
    if (svc->ing) { /* the consumer's close revokes: nothing to move then */
        rs_ingest_set_revoke_cb(svc->ing, NULL, NULL);
        rs_ingest_set_assign_cb(svc->ing, NULL, NULL);
    }
    rs_ingest_destroy(svc->ing);
    rs_cpstage_destroy(svc->cp);
    rs_parts_destroy(svc->parts);
    rs_changelog_destroy(svc->clog);
    if (svc->feat_out) fclose(svc->feat_out);
    rs_pstate_destroy(svc->pstate);
    rs_workers_destroy(svc->wk);
    rs_sink_kafka_destroy(svc->ks);
    rs_sink_redis_destroy(svc->rd);
    rs_alerts_destroy(svc->al);
    rs_trainer_destroy(svc->tr);  /* before the logs it reads */
    rs_msync_destroy(svc->msync); /* after the trainer: its hooks */
    rs_state_destroy(svc->state);
    rs_model_destroy(svc->model);
    rs_features_destroy(svc->feat);
    free(svc->msgs);
    rs_free(svc->x);
    rs_free(svc->contrib);
    rs_free(svc->scores);
    free(svc->min);
    free(svc->mout);
    free(svc->flags);
    free(svc->ev_msg);
    free(svc->out);
    free(svc->pub);
    rs_free(svc->lrec);
    free(svc->ev_log);
    free(svc->touched);
    free(svc->lpend);
    free(svc->pwm);
    free(svc->pwm_sent);
    free(svc->lend_sent);
    free(svc->lrestore);
    free(svc->ckpt_logs);
    free(svc->ev_dd);
    free(svc->dup_msg);
    free(svc->dup_dd);
    rs_dedup_destroy(svc->dedup);
    rs_enc_arena_free(&svc->enc_json);
    rs_enc_arena_free(&svc->enc_kafka);
    free(svc->json);
    free(svc->json_lens);
    free(svc->kbytes);
    free(svc->klens);
    rs_free(svc->logbuf);
    free(svc->logs);
    free(svc->log_lens);
    free(svc->ring);
    free(svc->offs);
    free(svc->txn_dirty);
    free(svc->applied);
    free(svc->ckpt_buf);
    if (svc->snap) {
        pthread_mutex_destroy(&svc->snap_lock);
        free(svc->snap);
    }
    free(svc);
}

void rs_service_set_progress(rs_service_t *svc, rs_service_progress_cb *cb,
                             void *opaque, int64_t interval_ms) {
    svc->progress_cb = cb;
    svc->progress_opaque = opaque;
    svc->progress_interval_us = interval_ms * 1000;
}

void rs_service_stats(const rs_service_t *svc, rs_service_stats_t *st) {
    *st = svc->st;
}

/* ------------------------------------------------------------ metrics */

static void rs_prom_counter(rs_http_buf_t *b, const char *name,
                            const char *help, uint64_t v) {
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name,
                       help, name, name, (unsigned long long)v);
}

static void rs_prom_gauge(rs_http_buf_t *b, const char *name,
                          const char *help, double v) {
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name,
                       help, name, name, v != v ? 0.0 : v);
}

static void rs_prom_hist(rs_http_buf_t *b, const char *name,
                         const char *help, const rs_hist_t *h) {
    static const double le_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    rs_http_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
                       name);
    for (size_t i = 0; i < RS_ARRAY_LEN(le_s); i++)
        rs_http_buf_printf(
            b, "%s_bucket{le=\"%g\"} %llu\n", name, le_s[i],
            (unsigned long long)rs_hist_count_le(h, (int64_t)(le_s[i] * 1e6)));
    rs_http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n"
                       "%s_count %llu\n", name, (unsigned long long)h->total,
                       name, h->sum / 1e6, name,
                       (unsigned long long)h->total);
}

void rs_service_prometheus(rs_service_t *svc, rs_http_buf_t *b) {
    struct rs_svc_snap_s *sn = rs_malloc(sizeof(*sn));
    pthread_mutex_lock(&svc->snap_lock);
    memcpy(sn, svc->snap, sizeof(*sn));
    pthread_mutex_unlock(&svc->snap_lock);
    const rs_service_stats_t *st = &sn->st;
    rs_prom_counter(b, "riskstream_events_total",
                    "events consumed (valid)", st->events);
    rs_prom_counter(b, "riskstream_events_scored_total", "events scored",
                    st->scored);
    rs_prom_counter(b, "riskstream_events_rejected_total",
                    "input rejected to the dead-letter topic", st->rejected);
    rs_prom_counter(b, "riskstream_labels_total", "labels consumed",
                    st->labels);
    rs_prom_counter(b, "riskstream_labels_matched_total",
                    "labels joined to their event's learning record",
                    st->labels_matched);
    rs_prom_counter(b, "riskstream_duplicates_total",
                    "event ids seen again within service.dedup_window: the "
                    "decision on record published again, flagged",
                    st->duplicates);
    rs_prom_gauge(b, "riskstream_dedup_entries", "events remembered for "
                  "duplicate detection (service.dedup_max)",
                  (double)sn->dds.entries);
    rs_prom_counter(b, "riskstream_dedup_evictions_total",
                    "remembered events forgotten before the end of "
                    "service.dedup_window (table full)", sn->dds.evictions);
    rs_prom_counter(b, "riskstream_events_future_total",
                    "events dated beyond topics.future_skew, dead-lettered",
                    sn->is.future);
    rs_prom_counter(b, "riskstream_dlq_delivered_total",
                    "rejected input acknowledged by the dead-letter topic",
                    sn->is.dlq_delivered);
    rs_prom_counter(b, "riskstream_dlq_delivery_failures_total",
                    "dead-letter deliveries that failed (each is retried)",
                    sn->is.dlq_failed);
    rs_prom_counter(b, "riskstream_dlq_lost_total",
                    "dead letters given up (refused for good; logged at "
                    "error)", sn->is.dlq_lost);
    rs_http_buf_printf(b, "# HELP riskstream_decisions_total scored events "
                       "by decision\n# TYPE riskstream_decisions_total "
                       "counter\n");
    rs_http_buf_printf(b, "riskstream_decisions_total{decision=\"review\"} "
                       "%llu\nriskstream_decisions_total{decision=\"decline\"} "
                       "%llu\nriskstream_decisions_total{decision=\"alert\"} "
                       "%llu\n", (unsigned long long)st->reviews,
                       (unsigned long long)st->declines,
                       (unsigned long long)st->alerts);
    rs_prom_hist(b, "riskstream_e2e_latency_seconds",
                 "event produce timestamp to score produced", &st->e2e_us);
    rs_prom_hist(b, "riskstream_processing_latency_seconds",
                 "poll to score produced", &st->proc_us);
    {
        static const int le_n[] = {1, 4, 16, 64, 128, 256, 512, 1024, 4096};
        const char *nm = "riskstream_batch_messages";
        const rs_hist_t *h = &st->batch_msgs;
        rs_http_buf_printf(b, "# HELP %s messages per poll (the batch size "
                           "follows the backlog, up to topics.batch_max)\n"
                           "# TYPE %s histogram\n", nm, nm);
        for (size_t i = 0; i < RS_ARRAY_LEN(le_n); i++)
            rs_http_buf_printf(b, "%s_bucket{le=\"%d\"} %llu\n", nm, le_n[i],
                               (unsigned long long)rs_hist_count_le(h,
                                                                    le_n[i]));
        rs_http_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.0f\n"
                           "%s_count %llu\n", nm,
                           (unsigned long long)h->total, nm, h->sum, nm,
                           (unsigned long long)h->total);
    }
    rs_http_buf_printf(b, "# HELP riskstream_consumer_lag messages behind the "
                       "high watermark per input partition\n# TYPE "
                       "riskstream_consumer_lag gauge\n");
    for (int i = 0; i < sn->nlag; i++)
        if (sn->lag[i].lag >= 0)
            rs_http_buf_printf(
                b, "riskstream_consumer_lag{topic=\"%s\",partition=\"%d\"} "
                   "%lld\n",
                sn->lag[i].topic == RS_MSG_TOPIC_LABELS
                    ? svc->app->ingest.topic_labels
                    : svc->app->ingest.topic_events,
                (int)sn->lag[i].partition, (long long)sn->lag[i].lag);
    rs_prom_gauge(b, "riskstream_partitions_assigned",
                  "input partitions assigned to this instance",
                  (double)sn->is.assigned);
    {
        rs_pstate_stats_t pst;
        rs_pstate_stats(svc->pstate, &pst);
        rs_prom_gauge(b, "riskstream_restore_partitions", "partitions whose "
                      "state is being restored (loaded, or replayed from "
                      "the input); /readyz is 503 meanwhile",
                      (double)(pst.restoring + sn->replaying));
        rs_prom_gauge(b, "riskstream_restore_replay_messages", "input "
                      "messages still to replay to rebuild state (not "
                      "published)", (double)sn->replay_left);
        rs_http_buf_printf(b, "# HELP riskstream_restores_total partition "
                           "states restored, by source\n# TYPE "
                           "riskstream_restores_total counter\n");
        rs_http_buf_printf(b, "riskstream_restores_total{source=\"local\"} "
                           "%llu\nriskstream_restores_total{source="
                           "\"changelog\"} %llu\nriskstream_restores_total"
                           "{source=\"replay\"} %llu\n",
                           (unsigned long long)pst.from_local,
                           (unsigned long long)pst.from_changelog,
                           (unsigned long long)pst.from_replay);
        rs_prom_counter(b, "riskstream_restore_keys_total", "entity keys "
                        "restored with partition states", pst.keys_restored);
        rs_http_buf_printf(b, "# HELP riskstream_restore_seconds_total time "
                           "spent restoring partition states (loads; a "
                           "replay runs with scoring)\n# TYPE "
                           "riskstream_restore_seconds_total counter\n"
                           "riskstream_restore_seconds_total %.6f\n",
                           pst.restore_s_total);
        rs_prom_counter(b, "riskstream_partition_checkpoints_total",
                        "partition checkpoints written (a partition left)",
                        pst.saves);
        rs_prom_counter(b, "riskstream_partition_drops_total", "partition "
                        "states dropped from memory (left or lost)",
                        pst.drops);
        if (svc->clog) {
            rs_changelog_stats_t cst;
            rs_changelog_stats(svc->clog, &cst);
            rs_prom_counter(b, "riskstream_changelog_records_total",
                            "state changelog records produced (markers and "
                            "tombstones included)", cst.records);
            rs_prom_counter(b, "riskstream_changelog_bytes_total",
                            "state changelog key + value bytes produced",
                            cst.bytes);
            rs_prom_counter(b, "riskstream_changelog_failures_total",
                            "state changelog records not written (logged)",
                            cst.failed);
            rs_prom_gauge(b, "riskstream_changelog_staged_bytes",
                          "changelog records waiting for their batch to be "
                          "delivered", (double)cst.staged_bytes);
            rs_prom_counter(b, "riskstream_restore_changelog_records_total",
                            "changelog records applied by restores",
                            cst.restored);
        }
    }
    rs_prom_counter(b, "riskstream_offset_resets_total",
                    "consumer offsets out of range, reset by policy",
                    sn->is.offset_resets);
    rs_http_buf_printf(b, "# HELP riskstream_model_info model serving the "
                       "scores\n# TYPE riskstream_model_info gauge\n"
                       "riskstream_model_info{version=\"%s\"} 1\n",
                       st->model_version); /* the version scoring (the
                                            * snapshot), not S's own */
    rs_prom_counter(b, "riskstream_model_updates_total",
                    "online learning steps (trainer thread)",
                    sn->ts.model.updates);
    rs_prom_counter(b, "riskstream_model_versions_published_total",
                    "model versions published by the trainer",
                    sn->ts.published);
    rs_prom_counter(b, "riskstream_model_rollbacks_total",
                    "rollbacks to a stored version", sn->ts.rollbacks);
    rs_prom_counter(b, "riskstream_model_store_errors_total",
                    "version files that could not be saved",
                    sn->ts.store_errors);
    if (svc->msync) rs_msync_metrics(svc->msync, b); /* model sync */
    rs_prom_gauge(b, "riskstream_model_train_queue", "learning records "
                  "waiting for the trainer", (double)sn->ts.depth);
    rs_prom_counter(b, "riskstream_model_train_waits_total",
                    "scoring-thread waits for room in the trainer queue",
                    st->train_waits);
    const rs_learner_stats_t *ls = &sn->ts.learner;
    rs_prom_gauge(b, "riskstream_learning_log_records", "learning records "
                  "kept in the learning logs", (double)sn->ts.log_records);
    rs_prom_gauge(b, "riskstream_learning_log_bytes", "bytes of the learning "
                  "log files", (double)sn->ts.log_bytes);
    rs_prom_gauge(b, "riskstream_learning_log_unresolved", "learning records "
                  "waiting for a label or maturity",
                  (double)sn->ts.log_pending);
    rs_http_buf_printf(b, "# HELP riskstream_learned_total learning steps by "
                       "cause\n# TYPE riskstream_learned_total counter\n");
    rs_http_buf_printf(b, "riskstream_learned_total{cause=\"positive_label\"} "
                       "%llu\nriskstream_learned_total{cause=\"negative_label\"} "
                       "%llu\nriskstream_learned_total{cause=\"matured\"} %llu\n"
                       "riskstream_learned_total{cause=\"correction\"} %llu\n",
                       (unsigned long long)(ls->positives - ls->corrections),
                       (unsigned long long)ls->negatives,
                       (unsigned long long)ls->matured,
                       (unsigned long long)ls->corrections);
    rs_prom_counter(b, "riskstream_labels_unknown_total", "labels without a "
                    "learning record (never scored here, or older than the "
                    "log keeps)", ls->unknown);
    rs_prom_counter(b, "riskstream_labels_repeated_total", "labels for an "
                    "event labelled before (ignored)", ls->repeats);
    rs_prom_counter(b, "riskstream_labels_beyond_horizon_total", "labels that "
                    "came later than the label horizon", ls->beyond_horizon);
    rs_prom_gauge(b, "riskstream_label_horizon_seconds", "events unlabelled "
                  "this long are learned as negatives",
                  (double)ls->horizon_ms / 1000.0);
    {
        static const double le[] = {3600, 21600, 86400, 259200, 604800,
                                    1209600, 2592000, 5184000, 7776000,
                                    10368000};
        const rs_hist_t *h = &sn->ts.delays;
        rs_http_buf_printf(b, "# HELP riskstream_label_delay_seconds label "
                           "time minus event time of joined labels\n# TYPE "
                           "riskstream_label_delay_seconds histogram\n");
        for (size_t i = 0; i < RS_ARRAY_LEN(le); i++)
            rs_http_buf_printf(b, "riskstream_label_delay_seconds_bucket{le=\"%g\"} "
                               "%llu\n", le[i], (unsigned long long)
                               rs_hist_count_le(h, (int64_t)le[i]));
        rs_http_buf_printf(b, "riskstream_label_delay_seconds_bucket{le=\"+Inf\"} "
                           "%llu\nriskstream_label_delay_seconds_sum %.0f\n"
                           "riskstream_label_delay_seconds_count %llu\n",
                           (unsigned long long)h->total, h->sum,
                           (unsigned long long)h->total);
    }
    rs_prom_gauge(b, "riskstream_model_drift_psi", "score PSI, recent vs "
                  "reference window", sn->ms.drift_psi);
    rs_prom_gauge(b, "riskstream_model_drift_high", "1: all layers learn, "
                  "0: head and gates only", (double)sn->ts.model.drift_high);
    rs_prom_counter(b, "riskstream_explained_total",
                    "scores published with an explanation "
                    "(service.explain_min_score)", st->explained);
    rs_prom_counter(b, "riskstream_inputs_logged_total",
                    "scoring inputs stored for audit --rescore",
                    st->inputs_logged);
    rs_prom_counter(b, "riskstream_events_replayed_total",
                    "events re-read below the committed offset after a "
                    "restart: state rebuilt, not published again",
                    st->replayed);
    rs_prom_counter(b, "riskstream_transactions_committed_total",
                    "exactly-once transactions committed", st->txn_commits);
    rs_prom_counter(b, "riskstream_transactions_aborted_total",
                    "exactly-once transactions aborted", st->txn_aborts);
    rs_prom_gauge(b, "riskstream_running_auc", "ROC AUC of scores vs "
                  "resolved labels", rs_auc_roc(&st->auc));
    rs_prom_gauge(b, "riskstream_feature_keys", "live entity keys",
                  (double)sn->fs.entity_keys);
    rs_prom_counter(b, "riskstream_late_events_total",
                    "events beyond the allowed lateness", sn->fs.late);
    rs_prom_counter(b, "riskstream_feature_evictions_total",
                    "keys evicted from a full pool", sn->fs.evictions);
    rs_prom_counter(b, "riskstream_feature_cap_hits_total",
                    "inserts into a key's full history ring", sn->fs.cap_hits);
    if (svc->cp) rs_cpstage_prometheus(svc->cp, b); /* cpstage hook */
    rs_prom_counter(b, "riskstream_checkpoints_total",
                    "feature checkpoints committed", st->checkpoints);
    rs_prom_gauge(b, "riskstream_checkpoint_pause_max_seconds",
                  "longest scoring pause for checkpoint steps",
                  st->checkpoint_step_max_us / 1e6);
    rs_prom_counter(b, "riskstream_redis_errors_total",
                    "failed Redis writes (retried)",
                    sn->rds.write_errors + st->redis_errors);
    rs_prom_gauge(b, "riskstream_redis_buffer_bytes", "score records "
                  "waiting for the Redis writer", (double)sn->rds.buffer_bytes);
    rs_prom_gauge(b, "riskstream_redis_buffer_max_bytes", "size of the Redis "
                  "buffer (redis.buffer_bytes)", (double)sn->rds.buffer_max);
    rs_prom_gauge(b, "riskstream_redis_up", "1 if the last Redis write "
                  "succeeded", (double)sn->redis_ok);
    rs_prom_counter(b, "riskstream_redis_outages_total", "Redis outages "
                    "seen by the writer", sn->rds.outages);
    rs_prom_counter(b, "riskstream_redis_backpressure_waits_total",
                    "consumption pauses for a full Redis buffer",
                    st->redis_waits);
    rs_prom_counter(b, "riskstream_kafka_delivery_failures_total",
                    "score deliveries refused or failed (retried)",
                    sn->ks.failed);
    rs_prom_gauge(b, "riskstream_kafka_inflight",
                  "score messages queued, not yet acknowledged",
                  (double)sn->ks.inflight);
    rs_prom_gauge(b, "riskstream_scoring_stalled_seconds",
                  "time without a completed batch while input waits or "
                  "results are in flight (readiness: service.stall_timeout)",
                  (double)sn->stalled_us / 1e6);
    if (svc->al) rs_alerts_prometheus(svc->al, b);
    rs_build_info_prometheus(b);
    free(sn);
}

int rs_service_ready(rs_service_t *svc, const char **why) {
    /* The reason lives in a thread-local buffer: *why stays valid on this
     * thread until its next call. */
    static _Thread_local char buf[200];
    int64_t stall = svc->conf->stall_timeout_ms * 1000, now = rs_clock_mono_us();
    pthread_mutex_lock(&svc->snap_lock);
    int valid = svc->snap->valid, assigned = svc->snap->is.assigned > 0,
        redis = svc->snap->redis_ok;
    int64_t age = now - svc->snap->taken_us, stalled = svc->snap->stalled_us;
    char what[96];
    rs_strlcpy(what, svc->snap->stall_what, sizeof(what));
    int replaying = svc->snap->replaying;
    pthread_mutex_unlock(&svc->snap_lock);
    rs_pstate_stats_t pst;
    rs_pstate_stats(svc->pstate, &pst);
    const char *w = !valid      ? "starting"
                    : !assigned ? "no partitions assigned"
                    : !redis    ? "redis unavailable"
                                : NULL;
    if (!w && svc->cp) rs_cpstage_ready(svc->cp, &w); /* cpstage hook */
    if (!w && (pst.restoring > 0 || replaying > 0)) {
        /* a partition's state is being restored (parts.h) */
        snprintf(buf, sizeof(buf), "restoring the state of %lld "
                 "partition(s)", (long long)(pst.restoring + replaying));
        w = buf;
    }
    if (!w && stall > 0 && age > stall + 2000000) {
        /* The service thread published nothing for that long. */
        snprintf(buf, sizeof(buf), "scoring stalled: the service thread "
                 "has not reported for %.0f s", (double)age / 1e6);
        w = buf;
    } else if (!w && stall > 0 && stalled >= stall) {
        snprintf(buf, sizeof(buf), "scoring stalled: no progress for %.0f s "
                 "(%s)", (double)stalled / 1e6, what);
        w = buf;
    }
    if (why) *why = w;
    return w == NULL;
}

void rs_service_models_json(rs_service_t *svc, rs_http_buf_t *b) {
    char serving[RS_VERSION_MAX];
    pthread_mutex_lock(&svc->snap_lock);
    rs_strlcpy(serving, svc->snap->st.model_version, sizeof(serving));
    pthread_mutex_unlock(&svc->snap_lock);
    rs_trainer_stats_t ts;
    rs_trainer_stats(svc->tr, &ts);
    rs_http_buf_printf(b, "{\"serving\":\"%s\",\"kind\":\"%s\","
                       "\"trainer\":{\"version\":\"%s\",\"updates\":%llu,"
                       "\"published\":%llu,\"queue\":%llu,\"rollbacks\":%llu},"
                       "\"versions\":[", serving, rs_model_kind(svc->model),
                       ts.published_version,
                       (unsigned long long)ts.model.updates,
                       (unsigned long long)ts.published,
                       (unsigned long long)ts.depth,
                       (unsigned long long)ts.rollbacks);
    rs_model_store_entry_t *e = rs_calloc(256, sizeof(*e));
    int n = rs_trainer_list(svc->tr, e, 256);
    for (int i = 0; i < n; i++)
        rs_http_buf_printf(b, "%s{\"version\":\"%s\",\"number\":%llu,"
                           "\"saved_at_ms\":%lld,\"updates\":%llu,"
                           "\"bytes\":%llu}", i ? "," : "", e[i].version,
                           (unsigned long long)e[i].number,
                           (long long)e[i].saved_at_ms,
                           (unsigned long long)e[i].updates,
                           (unsigned long long)e[i].bytes);
    rs_http_buf_printf(b, "]}\n");
    free(e);
}

rs_err_t rs_service_rollback(rs_service_t *svc, const char *version,
                             int timeout_ms, char *errstr,
                             size_t errstr_size) {
    return rs_trainer_rollback(svc->tr, version, timeout_ms, errstr,
                               errstr_size);
}

void rs_service_reset_latency(rs_service_t *svc) {
    rs_hist_init(&svc->st.e2e_us);
    rs_hist_init(&svc->st.proc_us);
    rs_hist_init(&svc->st.batch_msgs);
}

const char *rs_service_example_id(const rs_service_t *svc) {
    return svc->example_id;
}

rs_err_t rs_service_lookup(rs_service_t *svc, const char *event_id,
                           char *json, size_t size, char *errstr,
                           size_t errstr_size) {
    return rs_sink_redis_get_score(svc->rd, event_id, json, size, errstr,
                                   errstr_size);
}

/* ------------------------------------------------------------- labels */

/* A free message slot of the trainer's queue; while it is full, wait
 * (backpressure: the trainer always makes progress, so learning never
 * loses a label). */
static rs_trainer_msg_t *rs_svc_train_slot(rs_service_t *svc) {
    rs_trainer_msg_t *m;
    int n;
    while (!(m = rs_trainer_reserve(svc->tr, 1, &n))) {
        svc->st.train_waits++;
        rs_trainer_wait_space(svc->tr, 10);
        rs_sink_kafka_poll(svc->ks, 0);
    }
    memset(m, 0, sizeof(*m));
    return m;
}

static double rs_svc_psi(const rs_service_t *svc) {
    rs_model_stats_t ms;
    rs_model_stats(svc->model, &ms);
    return ms.drift_psi;
}

/* The learning log of `partition`, opened (and, after a checkpoint
 * restore, rewound to the checkpoint's end) at its first use and handed
 * to the trainer.  NULL with errstr if it cannot be opened. */
static rs_learnlog_t *rs_svc_log(rs_service_t *svc, int32_t partition,
                                 char *errstr, size_t errstr_size) {
    rs_learnlog_t *lg = rs_state_log_if_open(svc->state, partition);
    if (lg) return lg;
    rs_err_t err;
    lg = rs_state_log(svc->state, partition, &err, errstr, errstr_size);
    if (!lg) return NULL;
    if (svc->lrestore[partition] >= 0) {
        uint64_t want = (uint64_t)svc->lrestore[partition];
        if (want > rs_learnlog_end(lg)) {
            /* the log lost records the checkpoint counted (deleted by
             * hand, a damaged disk): what is there is still good */
            rs_warn("service", "learning log of partition %d ends at %llu, "
                    "before the checkpoint's %llu: the records between are "
                    "lost to learning", (int)partition,
                    (unsigned long long)rs_learnlog_end(lg),
                    (unsigned long long)want);
        } else if (rs_learnlog_rewind(lg, want, errstr, errstr_size) !=
                   RS_OK) {
            rs_state_close_log(svc->state, partition);
            return NULL;
        }
    }
    rs_trainer_msg_t *m = rs_svc_train_slot(svc);
    m->kind = RS_TRAINER_ATTACH;
    m->partition = partition;
    m->log = lg;
    m->log_end = rs_learnlog_end(lg); /* observed before: in the model */
    rs_trainer_commit(svc->tr, 1);
    return lg;
}

/* Watermarks of the partitions of the last batch to the trainer, which
 * learns what matured (negatives) from their logs. */
static void rs_svc_advance(rs_service_t *svc, int ntouched) {
    double psi = rs_svc_psi(svc);
    for (int i = 0; i < ntouched; i++) {
        int32_t p = svc->touched[i];
        const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
        uint64_t end = lg ? rs_learnlog_end(lg) : 0;
        if (svc->pwm[p] <= svc->pwm_sent[p] && end <= svc->lend_sent[p])
            continue;
        rs_trainer_msg_t *m = rs_svc_train_slot(svc);
        m->kind = RS_TRAINER_WATERMARK;
        m->partition = p;
        m->t = svc->pwm[p];
        m->psi = psi;
        m->log_end = end; /* the standardiser observes up to here */
        rs_trainer_commit(svc->tr, 1);
        svc->pwm_sent[p] = svc->pwm[p];
        svc->lend_sent[p] = end;
    }
}

/* Swap in the trainer's newest version (between batches). */
static void rs_svc_swap_weights(rs_service_t *svc) {
    rs_model_weights_t *w = rs_trainer_take(svc->tr);
    if (!w) return;
    if (rs_model_weights_use(svc->model, w) != RS_OK)
        rs_error("service", "cannot score with version %s (architecture "
                 "differs): keeping %s", rs_model_weights_version(w),
                 rs_model_version(svc->model));
    rs_model_weights_release(w);
}

/* A label: the feature engine's label state now, the learning through
 * the trainer (which finds the event's record in the learning logs). */
static void rs_svc_label(rs_service_t *svc, const rs_msg_t *msg) {
    const rs_label_t *lb = &msg->lb;
    svc->st.labels++;
    /* maintenance: a failure or repair, at its place in the batch */
    if (svc->al && rs_alerts_label(svc->al, (int)(msg - svc->msgs), lb))
        return;
    /* A label before its event (later in this batch, or still to come
     * on a partition that is behind or replaying) waits for it; what
     * nothing brings is dropped after the batch (parts.h). */
    if (rs_features_label(svc->feat, lb) == RS_ERR_NOTFOUND)
        rs_parts_label_hold(svc->parts, lb, msg->partition);
    rs_trainer_msg_t *m = rs_svc_train_slot(svc);
    m->kind = RS_TRAINER_LABEL;
    m->partition = msg->partition; /* labels keyed like their events */
    m->psi = rs_svc_psi(svc);
    m->lb = *lb;
    rs_trainer_commit(svc->tr, 1);
}

/* The newest version of the model store whose features and architecture
 * are those of t (restart: learning continues from it); else t. */
static rs_model_t *rs_svc_newest_stored(rs_model_t *t,
                                        const rs_model_conf_t *tconf,
                                        int dim, const char *const *names) {
    char e2[256];
    rs_model_store_t *ms =
        rs_model_store_open(tconf->store_dir, (int)tconf->keep_versions, e2,
                            sizeof(e2));
    if (!ms) return t;
    rs_model_store_entry_t *e = rs_calloc(16, sizeof(*e));
    int n = rs_model_store_list(ms, e, 16);
    rs_learnlog_meta_t want, got;
    rs_model_lrec_meta(t, &want);
    for (int i = 0; i < n; i++) {
        rs_model_t *m = NULL;
        if (rs_model_store_load(ms, e[i].version, tconf, &m, e2,
                                sizeof(e2)) != RS_OK)
            continue;
        rs_model_lrec_meta(m, &got);
        if (!memcmp(&want, &got, sizeof(want)) &&
            rs_model_check_names(m, dim, names, e2, sizeof(e2)) == RS_OK &&
            !strcmp(rs_model_kind(m), rs_model_kind(t))) {
            rs_info("service", "continuing from stored model version %s",
                    rs_model_version(m));
            rs_model_destroy(t);
            t = m;
            break;
        }
        rs_model_destroy(m);
    }
    free(e);
    rs_model_store_close(ms);
    return t;
}

/* ------------------------------------------------------------ offsets */

/* At-least-once: store the offsets of every batch that Kafka has fully
 * acknowledged AND Redis has written.  (Exactly-once: batches retire when
 * their transaction commits, rs_svc_txn_commit.) */
static void rs_svc_store_acked(rs_service_t *svc) {
    if (svc->eos) return;
    uint64_t acked = rs_sink_kafka_acked(svc->ks),
             written = rs_sink_redis_done(svc->rd);
    if (written < acked) acked = written;
    while (svc->ring_tail < svc->ring_head) {
        rs_svc_batch_t *b = &svc->ring[svc->ring_tail % RS_SVC_RING];
        if (b->seq > acked) break;
        for (int i = 0; i < b->n; i++) {
            const rs_svc_off_t *o = &svc->offs[(b->off0 + (uint64_t)i) %
                                               RS_SVC_OFFS];
            rs_ingest_store_offset(svc->ing, o->topic, o->partition,
                                   o->offset);
        }
        svc->offs_tail = b->off0 + (uint64_t)b->n;
        svc->ring_tail++;
        if (svc->clog) rs_changelog_release(svc->clog, b->seq);
    }
}

/* -------------------------------------------------------- checkpoints */

/* Restore the feature state and the input positions it matches.  A missing
 * file is a fresh start; a corrupt one is an error (never loaded
 * silently). */
static rs_err_t rs_svc_ckpt_restore(rs_service_t *svc, char *errstr,
                                    size_t errstr_size) {
    const char *path = svc->ckpt_path;
    char e2[512];
    void *blob = NULL;
    size_t len = 0;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        rs_info("service", "no checkpoint at %s: starting with empty state",
                path);
        return RS_OK;
    }
    int64_t t0 = rs_clock_mono_us();
    rs_err_t err = rs_features_checkpoint_read(svc->feat, path, &blob, &len,
                                               e2, sizeof(e2));
    if (err != RS_OK)
        return rs_errf(errstr, errstr_size, err,
                       "%s (move it away to start with empty state)", e2);
    const rs_svc_ckpt_hdr_t *h = blob;
    size_t hl = 0, caches_len = 0, nlogs = 0, dedup_len = 0;
    if (blob && len >= RS_SVC_CKPT_V1_HDR && h->magic == RS_SVC_CKPT_MAGIC) {
        if (h->version == 1) hl = RS_SVC_CKPT_V1_HDR;
        if (h->version == 2 && len >= RS_SVC_CKPT_V2_HDR) {
            hl = RS_SVC_CKPT_V2_HDR;
            caches_len = (size_t)h->caches_len;
        }
        if (h->version == 3 && len >= sizeof(*h) && h->caches_len <= len &&
            h->dedup_len <= len) {
            hl = sizeof(*h);
            caches_len = (size_t)h->caches_len;
            dedup_len = (size_t)h->dedup_len;
            nlogs = h->nlogs;
        }
    }
    if (!hl || h->n > (len - hl) / sizeof(rs_ingest_pos_t) ||
        nlogs > RS_STATE_MAX_PARTS ||
        len != hl + (size_t)h->n * sizeof(rs_ingest_pos_t) +
                   nlogs * sizeof(rs_svc_lend_t) + caches_len + dedup_len) {
        free(blob);
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "checkpoint %s: its offsets record is missing or "
                       "malformed", path);
    }
    const char *topics[2] = {svc->app->ingest.topic_events,
                             svc->app->ingest.topic_labels};
    if (strncmp(h->topic[0], topics[0], 127) ||
        strncmp(h->topic[1], topics[1], 127)) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "checkpoint %s was taken on topics '%.127s'/'%.127s', not "
                "'%s'/'%s'", path, h->topic[0], h->topic[1], topics[0],
                topics[1]);
        free(blob);
        return RS_ERR_CONFIG;
    }
    const rs_ingest_pos_t *pos =
        (const rs_ingest_pos_t *)((const char *)blob + hl);
    const rs_svc_lend_t *lends = (const rs_svc_lend_t *)(pos + h->n);
    /* the learning logs as they were: opened, rewound, handed to the
     * trainer (maturity goes on even if no event comes for them) */
    for (size_t i = 0; i < nlogs; i++) {
        int32_t p = lends[i].partition;
        if (p < 0 || p >= RS_STATE_MAX_PARTS) continue;
        svc->lrestore[p] = (int64_t)lends[i].end;
        if (!rs_svc_log(svc, p, e2, sizeof(e2))) {
            free(blob);
            return rs_errf(errstr, errstr_size, RS_ERR_IO,
                           "checkpoint %s: learning log of partition %d: %s",
                           path, (int)p, e2);
        }
    }
    if (caches_len) {
        /* The scorer's entity caches, written with the state at a graceful
         * stop: sequence-model history survives the restart. */
        char e2c[256];
        rs_err_t cerr = rs_model_caches_read(
            svc->model, (const char *)(lends + nlogs), caches_len, e2c,
            sizeof(e2c));
        /* Not usable (e.g. seq: sizes changed since): the feature state
         * still is; the model starts without history. */
        if (cerr != RS_OK)
            rs_warn("service", "checkpoint %s: entity caches not restored "
                    "(%s): the sequence model starts without history",
                    path, e2c);
    }
    if (dedup_len && svc->dedup) {
        /* The duplicate window, consistent with the restored state. */
        char e2d[256];
        if (rs_dedup_read(svc->dedup, (const char *)(lends + nlogs) + caches_len,
                          dedup_len, e2d, sizeof(e2d)) != RS_OK)
            rs_warn("service", "checkpoint %s: duplicate window not "
                    "restored (%s): it starts empty", path, e2d);
    }
    for (uint32_t i = 0; i < h->n; i++)
        if (pos[i].topic >= 0 && pos[i].topic < 2 && pos[i].partition >= 0 &&
            pos[i].partition < RS_SVC_MAX_PARTS)
            svc->applied[pos[i].topic * RS_SVC_MAX_PARTS + pos[i].partition] =
                pos[i].offset;
    /* The partitions it holds start where it ends if they are assigned
     * here (parts.h); the others are saved and dropped. */
    for (uint32_t i = 0; i < h->n; i++)
        rs_parts_held(svc->parts, pos[i].partition);
    if (svc->cp) rs_cpstage_hold(svc->cp, pos, (int)h->n); /* cpstage hook */
    rs_features_stats_t fs;
    rs_features_stats(svc->feat, &fs);
    rs_model_stats_t ms;
    rs_model_stats(svc->model, &ms);
    rs_info("service", "checkpoint %s restored in %.0f ms: %llu entity and "
            "%llu counterparty keys, %llu model entity caches, %u input "
            "positions", path, (rs_clock_mono_us() - t0) / 1000.0,
            (unsigned long long)fs.entity_keys, (unsigned long long)fs.cp_keys,
            (unsigned long long)ms.entities, h->n);
    free(blob);
    return RS_OK;
}

/* The service record of a checkpoint: the input positions, if `caches`
 * the scorer's entity caches, and the duplicate window.  Built in
 * svc->ckpt_buf (owned by the service, valid until the next call): reused
 * so that a checkpoint does not fault in fresh pages for megabytes of
 * duplicate window each time (measured: ~40 ms at 127 000 entries). */
static void *rs_svc_ckpt_blob(rs_service_t *svc, int caches, size_t *len) {
    uint32_t n = 0;
    for (int i = 0; i < 2 * RS_SVC_MAX_PARTS; i++) n += svc->applied[i] >= 0;
    uint32_t nlogs = 0;
    for (int32_t p = 0; p < RS_STATE_MAX_PARTS; p++)
        nlogs += rs_state_log_if_open(svc->state, p) != NULL;
    size_t clen = caches ? rs_model_caches_size(svc->model) : 0;
    size_t dlen = svc->dedup ? rs_dedup_size(svc->dedup) : 0;
    size_t base = sizeof(rs_svc_ckpt_hdr_t) +
                  (size_t)n * sizeof(rs_ingest_pos_t) +
                  (size_t)nlogs * sizeof(rs_svc_lend_t);
    if (base + clen + dlen > svc->ckpt_buf_cap) {
        free(svc->ckpt_buf);
        svc->ckpt_buf_cap = base + clen + dlen;
        svc->ckpt_buf = rs_malloc(svc->ckpt_buf_cap);
    }
    rs_svc_ckpt_hdr_t *h = svc->ckpt_buf;
    memset(h, 0, base);
    *len = base; /* grows by what is written after the log ends */
    h->magic = RS_SVC_CKPT_MAGIC;
    h->version = 3;
    h->n = n;
    h->nlogs = nlogs;
    if (clen) {
        size_t got = 0;
        if (rs_model_caches_write(svc->model, (char *)h + base, clen, &got) !=
            RS_OK) {
            rs_warn("service", "entity caches not written to the checkpoint");
            got = 0;
        }
        h->caches_len = got;
        *len = base + got;
    }
    if (dlen) {
        size_t got = 0;
        if (rs_dedup_write(svc->dedup, (char *)h + *len, dlen, &got) != RS_OK)
            got = 0;
        h->dedup_len = got;
        *len += got;
    }
    rs_strlcpy(h->topic[0], svc->app->ingest.topic_events, sizeof(h->topic[0]));
    rs_strlcpy(h->topic[1], svc->app->ingest.topic_labels, sizeof(h->topic[1]));
    rs_ingest_pos_t *pos = (rs_ingest_pos_t *)(h + 1);
    for (int i = 0, k = 0; i < 2 * RS_SVC_MAX_PARTS; i++)
        if (svc->applied[i] >= 0)
            pos[k++] = (rs_ingest_pos_t){i / RS_SVC_MAX_PARTS,
                                         i % RS_SVC_MAX_PARTS,
                                         svc->applied[i]};
    rs_svc_lend_t *lends = (rs_svc_lend_t *)(pos + n);
    for (int32_t p = 0, k = 0; p < RS_STATE_MAX_PARTS; p++) {
        const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
        if (lg) lends[k++] = (rs_svc_lend_t){p, 0, rs_learnlog_end(lg)};
    }
    return h;
}

/* The logs a checkpoint names, for the I/O thread (service thread). */
static void rs_svc_logs_collect(rs_service_t *svc) {
    svc->ckpt_nlogs = 0;
    for (int32_t p = 0; p < RS_STATE_MAX_PARTS; p++) {
        rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
        if (lg) svc->ckpt_logs[svc->ckpt_nlogs++] = lg;
    }
}

/* The learning logs on disk up to what a checkpoint names, before the
 * checkpoint is committed (msync only: any thread; the logs stay open
 * while a checkpoint is in flight). */
static void rs_svc_logs_sync(rs_service_t *svc) {
    char e2[512];
    for (int i = 0; i < svc->ckpt_nlogs; i++)
        if (rs_learnlog_sync(svc->ckpt_logs[i], e2, sizeof(e2)) != RS_OK)
            rs_error("service", "%s", e2);
}

/* Checkpoint I/O thread: fsync + rename, off the scoring thread. */
static void *rs_svc_ckpt_io_main(void *arg) {
    rs_service_t *svc = arg;
    char e2[512];
    rs_svc_logs_sync(svc);
    if (rs_features_ckfile_commit(svc->ckpt_cf, e2, sizeof(e2)) != RS_OK) {
        rs_error("service", "checkpoint commit: %s", e2);
        atomic_store(&svc->ckpt_io_err, 1);
    }
    svc->ckpt_cf = NULL;
    atomic_store(&svc->ckpt_io_done_us, rs_clock_mono_us());
    return NULL;
}

static void rs_svc_ckpt_join(rs_service_t *svc) {
    if (!svc->ckpt_io_running) return;
    pthread_join(svc->ckpt_io, NULL);
    svc->ckpt_io_running = 0;
    if (atomic_exchange(&svc->ckpt_io_err, 0)) {
        svc->st.checkpoint_errors++;
    } else {
        svc->st.checkpoints++;
        svc->st.checkpoint_last_ms =
            (atomic_load(&svc->ckpt_io_done_us) - svc->ckpt_begin_us) / 1000;
    }
}

/* One checkpoint step between batches: begin when due and nothing is in
 * flight, then serialize `checkpoint_step` keys per call, then detach and
 * hand the file to the I/O thread. */
static void rs_svc_ckpt_tick(rs_service_t *svc, int64_t now_us) {
    char e2[512];
    if (!svc->ckpt_path[0]) return;
    if (!svc->ckpt_active) {
        if (now_us < svc->ckpt_due_us) return;
        /* Offsets in the file must be delivered too: wait for a moment
         * with no batch in flight (common between bursts); past 1 s of
         * waiting, flush (a bounded stall) rather than never checkpoint. */
        if (svc->ring_head != svc->ring_tail) {
            if (now_us - svc->ckpt_due_us < 1000000) return;
            rs_sink_kafka_flush(svc->ks, 5000);
            rs_svc_store_acked(svc);
            if (svc->ring_head != svc->ring_tail) return;
        }
        if (svc->ckpt_io_running) {
            /* previous commit still fsyncing: check again later */
            if (!atomic_load(&svc->ckpt_io_done_us)) return;
            rs_svc_ckpt_join(svc);
        }
        size_t len;
        int64_t tb = rs_clock_mono_us();
        void *blob = rs_svc_ckpt_blob(svc, 0, &len);
        rs_err_t err = rs_features_checkpoint_begin(
            svc->feat, svc->ckpt_path, blob, len, e2, sizeof(e2));
        /* The begin is a pause too (the service record, with the duplicate
         * window, is copied whole): counted with the steps. */
        if (rs_clock_mono_us() - tb > svc->st.checkpoint_step_max_us)
            svc->st.checkpoint_step_max_us = rs_clock_mono_us() - tb;
        svc->ckpt_due_us = now_us + svc->conf->checkpoint_interval_ms * 1000;
        if (err != RS_OK) {
            rs_error("service", "checkpoint begin: %s", e2);
            svc->st.checkpoint_errors++;
            return;
        }
        svc->ckpt_active = 1;
        svc->ckpt_begin_us = now_us;
        return;
    }
    /* Steps until the per-iteration pause budget is used: scoring waits at
     * most checkpoint_pause (plus one step) between two batches. */
    int64_t t0 = rs_clock_mono_us(), t = t0;
    rs_err_t err;
    do {
        err = rs_features_checkpoint_step(svc->feat,
                                          (size_t)svc->conf->checkpoint_step);
        t = rs_clock_mono_us();
    } while (err == RS_ERR_AGAIN &&
             t - t0 < svc->conf->checkpoint_pause_ms * 1000);
    if (t - t0 > svc->st.checkpoint_step_max_us)
        svc->st.checkpoint_step_max_us = t - t0;
    if (err == RS_ERR_AGAIN) return;
    svc->ckpt_active = 0;
    if (err == RS_OK)
        err = rs_features_checkpoint_detach(svc->feat, &svc->ckpt_cf, e2,
                                            sizeof(e2));
    else
        snprintf(e2, sizeof(e2), "%s", rs_err_str(err));
    if (err != RS_OK) {
        rs_error("service", "checkpoint: %s", e2);
        rs_features_checkpoint_abort(svc->feat);
        svc->st.checkpoint_errors++;
        return;
    }
    atomic_store(&svc->ckpt_io_done_us, 0);
    rs_svc_logs_collect(svc);
    if (pthread_create(&svc->ckpt_io, NULL, rs_svc_ckpt_io_main, svc)) {
        rs_svc_ckpt_io_main(svc); /* no thread: commit here */
        svc->ckpt_io_running = 1;
        rs_svc_ckpt_join(svc);
        return;
    }
    svc->ckpt_io_running = 1;
}

/* Shutdown: a complete checkpoint of the final state (after the flush, so
 * every applied offset is delivered too). */
static void rs_svc_ckpt_final(rs_service_t *svc) {
    char e2[512];
    if (!svc->ckpt_path[0]) return;
    if (svc->ckpt_active) {
        rs_features_checkpoint_abort(svc->feat);
        svc->ckpt_active = 0;
    }
    rs_svc_ckpt_join(svc);
    size_t len;
    /* Final: with the scorer's entity caches (consistent with this state:
     * nothing is scored after it). */
    void *blob = rs_svc_ckpt_blob(svc, 1, &len);
    int64_t t0 = rs_clock_mono_us();
    svc->ckpt_begin_us = t0;
    rs_svc_logs_collect(svc);
    rs_svc_logs_sync(svc);
    if (rs_features_checkpoint_write(svc->feat, svc->ckpt_path,
                                     blob, len, e2, sizeof(e2)) != RS_OK) {
        rs_error("service", "final checkpoint: %s", e2);
        svc->st.checkpoint_errors++;
    } else {
        svc->st.checkpoints++;
        svc->st.checkpoint_last_ms = (rs_clock_mono_us() - t0) / 1000;
        rs_info("service", "checkpoint %s written in %lld ms",
                svc->ckpt_path,
                (long long)svc->st.checkpoint_last_ms);
    }
}


/* ---------------------------------------------------------------- run */

/* Stall detection for readiness (service thread, at each snapshot):
 * progress is a completed batch or commit; idle (no lag, nothing in
 * flight) counts as progress too.  Stalled = no progress for
 * stall_timeout while input waits (lag > 0) or results are in flight. */
static void rs_svc_stall_eval(rs_service_t *svc, struct rs_svc_snap_s *sn,
                              int64_t now_us) {
    sn->lag_total = 0;
    for (int i = 0; i < sn->nlag; i++)
        if (sn->lag[i].lag > 0) sn->lag_total += sn->lag[i].lag;
    int inflight = svc->ring_head != svc->ring_tail || svc->txn_open;
    sn->stalled_us = 0;
    sn->stall_what[0] = '\0';
    if (!sn->lag_total && !inflight) {
        svc->progress_us = now_us;
        return;
    }
    if (!svc->progress_us) svc->progress_us = now_us;
    sn->stalled_us = now_us - svc->progress_us;
    snprintf(sn->stall_what, sizeof(sn->stall_what),
             "%lld message(s) of input waiting, %llu batch(es) in flight%s",
             (long long)sn->lag_total,
             (unsigned long long)(svc->ring_head - svc->ring_tail),
             svc->txn_open ? ", a transaction open" : "");
}

static void rs_svc_periodic(rs_service_t *svc, int64_t now_us) {
    svc->st.elapsed_s = (double)(now_us - svc->start_us) / 1e6;
    rs_ingest_stats_t ist;
    rs_ingest_stats(svc->ing, &ist);
    svc->st.assigned = ist.assigned;
    const char *v = rs_model_version(svc->model);
    /* Version metadata goes on the service's own Redis connection: only
     * while the writer finds Redis up, at most every 5 s (a blocking
     * connect timeout must not stall scoring during an outage). */
    if (strcmp(v, svc->last_version) && now_us >= svc->model_meta_next_us &&
        rs_sink_redis_healthy(svc->rd)) {
        char meta[512], err[256];
        rs_trainer_stats_t ts;
        rs_trainer_stats(svc->tr, &ts);
        svc->model_meta_next_us = now_us + 5000000;
        snprintf(meta, sizeof(meta),
                 "{\"model_version\":\"%s\",\"kind\":\"%s\","
                 "\"published_at_ms\":%lld,\"updates\":%llu,"
                 "\"serving_since_ms\":%lld}", v, rs_model_kind(svc->model),
                 (long long)(strcmp(ts.published_version, v)
                                 ? rs_clock_wall_ms()
                                 : ts.published_at_ms),
                 (unsigned long long)ts.model.updates,
                 (long long)rs_clock_wall_ms());
        if (rs_sink_redis_set_model(svc->rd, v, meta, err, sizeof(err)) ==
            RS_OK) {
            rs_strlcpy(svc->last_version, v, sizeof(svc->last_version));
            rs_info("service", "model version %s now scoring", v);
        }
    }
    rs_strlcpy(svc->st.model_version, v, sizeof(svc->st.model_version));
    int snap = now_us >= svc->snap_next_us,
        prog = svc->progress_cb && now_us >= svc->progress_next_us;
    rs_trainer_stats_t *ts = snap || prog ? rs_malloc(sizeof(*ts)) : NULL;
    if (ts) { /* what the trainer resolved: joins, AUC, caught */
        rs_trainer_stats(svc->tr, ts);
        svc->st.labels_matched = ts->learner.joined;
        svc->st.labels_unknown = ts->learner.unknown;
        svc->st.positives = ts->learner.positives;
        svc->st.caught = ts->caught;
        svc->st.auc = ts->auc;
        if (ts->caught_id[0] && svc->example_rank < 3) { /* a caught fraud */
            rs_strlcpy(svc->example_id, ts->caught_id,
                       sizeof(svc->example_id));
            svc->example_rank = 3;
        }
    }
    if (snap) { /* for the metrics endpoint */
        svc->snap_next_us = now_us + 1000000;
        struct rs_svc_snap_s *sn = rs_malloc(sizeof(*sn));
        sn->st = svc->st;
        rs_features_stats(svc->feat, &sn->fs);
        rs_model_stats(svc->model, &sn->ms);
        sn->ts = *ts;
        rs_sink_kafka_stats(svc->ks, &sn->ks);
        rs_sink_redis_stats(svc->rd, &sn->rds);
        rs_ingest_stats(svc->ing, &sn->is);
        if (svc->al) rs_alerts_snapshot(svc->al);
        if (svc->dedup) rs_dedup_stats(svc->dedup, &sn->dds);
        else memset(&sn->dds, 0, sizeof(sn->dds));
        sn->nlag = rs_ingest_lag(svc->ing, sn->lag, (int)RS_ARRAY_LEN(sn->lag));
        sn->replaying = rs_ingest_replaying(svc->ing, &sn->replay_left);
        sn->redis_ok = rs_sink_redis_healthy(svc->rd);
        sn->valid = 1;
        sn->taken_us = now_us;
        rs_svc_stall_eval(svc, sn, now_us);
        pthread_mutex_lock(&svc->snap_lock);
        memcpy(svc->snap, sn, sizeof(*sn));
        pthread_mutex_unlock(&svc->snap_lock);
        free(sn);
    }
    free(ts);
    if (prog) {
        svc->progress_next_us = now_us + svc->progress_interval_us;
        svc->progress_cb(svc->progress_opaque, &svc->st);
    }
    if (svc->conf->stats_interval_ms > 0 && now_us >= svc->stats_next_us) {
        if (svc->stats_next_us) {
            rs_features_stats_t fs;
            rs_features_stats(svc->feat, &fs);
            if (svc->cp) { /* cpstage hook: the keys are in its store */
                rs_cpstage_stats_t *cst = rs_malloc(sizeof(*cst));
                rs_cpstage_stats(svc->cp, cst);
                fs.cp_keys = cst->cp_keys;
                free(cst);
            }
            rs_info("service",
                    "scored=%llu labels=%llu rejected=%llu p50_ms=%.2f "
                    "p99_ms=%.2f auc=%.4f model=%s keys=%llu cp_keys=%llu "
                    "late=%llu evictions=%llu expirations=%llu cap_hits=%llu "
                    "checkpoints=%llu ckpt_max_pause_ms=%.2f batch_mean=%.1f",
                    (unsigned long long)svc->st.scored,
                    (unsigned long long)svc->st.labels,
                    (unsigned long long)svc->st.rejected,
                    rs_hist_quantile(&svc->st.e2e_us, 0.5) / 1000.0,
                    rs_hist_quantile(&svc->st.e2e_us, 0.99) / 1000.0,
                    rs_auc_roc(&svc->st.auc), svc->st.model_version,
                    (unsigned long long)fs.entity_keys,
                    (unsigned long long)fs.cp_keys,
                    (unsigned long long)fs.late,
                    (unsigned long long)fs.evictions,
                    (unsigned long long)fs.expirations,
                    (unsigned long long)fs.cap_hits,
                    (unsigned long long)svc->st.checkpoints,
                    svc->st.checkpoint_step_max_us / 1000.0,
                    rs_hist_mean(&svc->st.batch_msgs));
        }
        svc->stats_next_us = now_us + svc->conf->stats_interval_ms * 1000;
        int64_t left = 0;
        int nrep = rs_ingest_replaying(svc->ing, &left);
        if (nrep) /* restore progress (parts.h: state rebuilt from input) */
            rs_info("state", "restoring: %d partition(s) replaying, %lld "
                    "message(s) left to replay (state only, not published)",
                    nrep, (long long)left);
    }
}

/* Milliseconds left before the graceful stop must be done: -1 while not
 * stopping; from the first call that sees *stop, every wait of the service
 * thread shares service.stop_timeout. */
static int rs_svc_stop_left_ms(rs_service_t *svc, volatile sig_atomic_t *stop) {
    if (!svc->stop_deadline_us) {
        if (!stop || !*stop) return -1;
        svc->stop_deadline_us =
            rs_clock_mono_us() + svc->conf->stop_timeout_ms * 1000;
    }
    int64_t left = svc->stop_deadline_us - rs_clock_mono_us();
    return left > 0 ? (int)((left + 999) / 1000) : 0;
}

/* Queue the batch's scores (and logged inputs) for the Redis writer.  A
 * full buffer is backpressure: consumption waits here -- Kafka output of
 * the batches before keeps flowing -- until the writer makes room (Redis
 * is back), or until asked to stop (RS_ERR_AGAIN: the batch is not queued
 * and its offsets are never stored, so it is read again after a
 * restart). */
static rs_err_t rs_svc_redis_enqueue(rs_service_t *svc, int n, uint64_t seq,
                                     volatile sig_atomic_t *stop,
                                     char *errstr, size_t errstr_size) {
    int warned = 0;
    for (;;) {
        rs_err_t err = rs_sink_redis_enqueue_json(
            svc->rd, svc->out, n, (const char *const *)svc->json,
            svc->json_lens, svc->log_max ? svc->logs : NULL, svc->log_lens,
            seq);
        if (err == RS_OK) return RS_OK;
        if (err != RS_ERR_AGAIN)
            return rs_errf(errstr, errstr_size, err,
                           "queueing scores for redis: %s", rs_err_str(err));
        if (!warned++)
            rs_warn("service", "redis buffer full: consumption paused until "
                    "redis catches up");
        svc->st.redis_waits++;
        if (rs_svc_stop_left_ms(svc, stop) == 0) {
            rs_sink_redis_stats_t rst;
            rs_sink_redis_stats(svc->rd, &rst);
            return rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                           "stopped while the redis buffer was full (%llu "
                           "bytes of scores unwritten; redis %s): those "
                           "batches are read again after the restart",
                           (unsigned long long)rst.buffer_bytes,
                           rst.healthy ? "answers but is too slow"
                                       : "unreachable");
        }
        rs_sink_redis_wait(svc->rd, rs_sink_redis_done(svc->rd) + 1, 10);
        rs_sink_kafka_poll(svc->ks, 0);
        rs_svc_store_acked(svc);
        int64_t now = rs_clock_mono_us();
        rs_svc_periodic(svc, now);
    }
}

/* ------------------------------------------------------ exactly-once */

/* Commit the open transaction: the scores of its batches and the input
 * positions they reach.  Redis must hold the batches first (a crash after
 * the commit must not lose the records), so this waits for the writer.
 * An abortable or fatal error aborts and ends the run: the state already
 * contains the aborted events, so only a restart from the checkpoint
 * (which re-reads from the committed offsets) keeps it exact. */
static rs_err_t rs_svc_txn_commit(rs_service_t *svc,
                                  volatile sig_atomic_t *stop, char *errstr,
                                  size_t errstr_size) {
    char e2[256];
    if (!svc->txn_open) return RS_OK;
    /* Every batch up to the last sealed one is queued for Redis (empty
     * ones included), so this wait ends as soon as the writer catches up.
     * It is bounded (service.commit_timeout, or the stop deadline): the
     * transaction and the consumer's poll interval must not outlive it.
     * Kafka delivery reports and the metrics snapshot are served while
     * waiting; the consumer is not polled here (it would hand out messages
     * or run a rebalance whose revoke commits re-entrantly), which the
     * bound keeps far below max.poll.interval.ms. */
    uint64_t last = svc->sealed_seq;
    int64_t t0 = rs_clock_mono_us();
    int warned = 0;
    while (rs_sink_redis_done(svc->rd) < last) {
        if (rs_sink_redis_wait(svc->rd, last, 100) == RS_OK) break;
        int64_t now = rs_clock_mono_us();
        if (!warned && now - t0 >= 1000000) {
            warned = 1;
            rs_warn("service", "transaction commit waits for redis (%s): "
                    "batch %llu of %llu written",
                    rs_sink_redis_healthy(svc->rd) ? "up but slow" : "down",
                    (unsigned long long)rs_sink_redis_done(svc->rd),
                    (unsigned long long)last);
        }
        rs_sink_kafka_poll(svc->ks, 0);
        rs_svc_periodic(svc, now);
        int left = rs_svc_stop_left_ms(svc, stop);
        if (left == 0 ||
            (left < 0 && now - t0 >= svc->conf->commit_timeout_ms * 1000)) {
            /* Nothing is committed: the input is read again after the
             * restart (from the committed offsets). */
            rs_sink_redis_stats_t rst;
            rs_sink_redis_stats(svc->rd, &rst);
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
            svc->txn_open = 0;
            svc->st.txn_aborts++;
            return rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                           "transaction aborted after waiting %.1f s for "
                           "redis to write batches %llu..%llu (%llu bytes "
                           "queued; redis %s)%s",
                           (double)(now - t0) / 1e6,
                           (unsigned long long)rs_sink_redis_done(svc->rd) + 1,
                           (unsigned long long)last,
                           (unsigned long long)rst.buffer_bytes,
                           rst.healthy ? "answers but is too slow"
                                       : "unreachable",
                           left < 0 ? " (service.commit_timeout); restart to "
                                      "resume from the committed offsets"
                                    : "");
        }
    }
    rs_ingest_pos_t pos[256];
    int np = 0;
    for (int i = 0; i < 2 * RS_SVC_MAX_PARTS && np < (int)RS_ARRAY_LEN(pos);
         i++)
        if (svc->txn_dirty[i] && svc->applied[i] >= 0) {
            pos[np++] = (rs_ingest_pos_t){i / RS_SVC_MAX_PARTS,
                                          i % RS_SVC_MAX_PARTS,
                                          svc->applied[i]};
            svc->txn_dirty[i] = 0;
        }
    const char *topics[2] = {svc->app->ingest.topic_events,
                             svc->app->ingest.topic_labels};
    rd_kafka_consumer_group_metadata_t *cgmd =
        rs_ingest_group_metadata(svc->ing);
    rs_err_t err = RS_ERR_TIMEOUT;
    /* Retriable (timeout): the same call again.  Abortable: abort keeping
     * the transaction's messages, begin (which produces them again) and
     * commit the same positions -- the input is not processed twice.  One
     * failure may take two redos (librdkafka 2.0 fails the transaction
     * after a failed one once more). */
    for (int attempt = 0, redo = 0; attempt < 8; attempt++) {
        /* Stopping: within the stop deadline (at least one short try). */
        int left = rs_svc_stop_left_ms(svc, stop);
        int tmo = left < 0 ? 30000 : RS_MAX(RS_MIN(left, 30000), 1000);
        err = rs_sink_kafka_txn_commit(svc->ks, pos, np, topics, cgmd, tmo,
                                       errstr, errstr_size);
        if (err == RS_OK || err == RS_ERR_KAFKA) break;
        if (rs_svc_stop_left_ms(svc, stop) == 0) break;
        if (err == RS_ERR_TIMEOUT) continue;
        if (err != RS_ERR_AGAIN || redo++ >= 3) break;
        rs_warn("service", "transaction not committed (%s): redoing it",
                errstr);
        svc->st.txn_aborts++;
        if (rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_RETRY, 10000, e2,
                                    sizeof(e2)) != RS_OK ||
            rs_sink_kafka_txn_begin(svc->ks) != RS_OK)
            break;
        if (cgmd) rd_kafka_consumer_group_metadata_destroy(cgmd);
        cgmd = rs_ingest_group_metadata(svc->ing);
    }
    if (cgmd) rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (err != RS_OK) {
        /* Abortable or fatal: the state already holds these events, so
         * only a restart from the checkpoint (which re-reads from the
         * committed offsets) keeps state and output consistent. */
        svc->txn_open = 0;
        svc->st.txn_aborts++;
        if (err != RS_ERR_KAFKA)
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
        char e3[300];
        rs_strlcpy(e3, errstr, sizeof(e3));
        return rs_errf(errstr, errstr_size, err,
                       "transaction not committed, aborted (%s); restart to "
                       "resume from the committed offsets", e3);
    }
    svc->txn_open = 0;
    svc->st.txn_commits++;
    if (svc->clog) rs_changelog_release(svc->clog, svc->sealed_seq);
    svc->ring_tail = svc->ring_head;
    svc->offs_tail = svc->offs_head;
    svc->progress_us = rs_clock_mono_us();
    return RS_OK;
}

/* Partitions leave this instance (rebalance, inside rs_ingest_poll):
 * before a revoke, commit what was processed so the new owner starts after
 * it; after a loss, abort (the new owner produces those results). */
static void rs_svc_revoked(void *opaque, const rs_ingest_pos_t *parts, int n,
                           int lost) {
    rs_service_t *svc = opaque;
    char e2[512];
    if (svc->eos && svc->txn_open) {
        if (lost) {
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
            svc->txn_open = 0;
            svc->st.txn_aborts++;
            memset(svc->txn_dirty, 0, 2 * RS_SVC_MAX_PARTS);
            svc->ring_tail = svc->ring_head;
            svc->offs_tail = svc->offs_head;
            rs_warn("service", "%d partition(s) lost: open transaction "
                    "aborted", n);
        } else if (rs_svc_txn_commit(svc, svc->stop, e2, sizeof(e2)) !=
                   RS_OK) {
            rs_error("service", "commit before revoke: %s", e2);
        }
    }
    for (int i = 0; i < n; i++)
        if (parts[i].topic >= 0 && parts[i].topic < 2 &&
            parts[i].partition >= 0 && parts[i].partition < RS_SVC_MAX_PARTS)
            svc->txn_dirty[parts[i].topic * RS_SVC_MAX_PARTS +
                           parts[i].partition] = 0;
}

/* ----------------------------------- partition-local state (issue 13)
 * The operations parts.h needs from the service, and the revoke hook. */

static int rs_svc_p_flush(void *o) {
    rs_service_t *svc = o;
    int ok;
    if (svc->eos) {
        ok = !svc->txn_open; /* rs_svc_revoked committed */
    } else {
        rs_sink_kafka_flush(svc->ks, 10000);
        rs_sink_redis_wait(svc->rd, svc->sealed_seq, 10000);
        rs_svc_store_acked(svc);
        ok = svc->ring_head == svc->ring_tail;
    }
    /* the changelog up to what was delivered, acknowledged (its end is
     * what a partition checkpoint records) */
    if (svc->clog && rs_changelog_flush(svc->clog, 10000)) ok = 0;
    return ok ? 0 : -1;
}

/* A partition's positions now (changelog markers). */
static void rs_svc_p_pos(void *o, int32_t p, rs_pstate_pos_t *pos);

/* The changelog topic, once, at the first assignment (Kafka answers
 * then): `auto` on librdkafka's mock, or a topic that cannot be made,
 * turns it off; with `true` the latter stops the service. */
static void rs_svc_clog_check(rs_service_t *svc) {
    if (!svc->clog || svc->clog_checked) return;
    svc->clog_checked = 1;
    char topic[300], e2[600];
    snprintf(topic, sizeof(topic), "%s-state-changelog",
             svc->app->ingest.group_id);
    int autom = svc->app->state.changelog == RS_STATE_CHANGELOG_AUTO;
    rs_err_t err = RS_OK;
    if (autom && rs_changelog_on_mock(svc->clog, 10000) == 1) {
        /* `riskstream broker`: ~5 MB per partition, no compaction */
        rs_info("service", "state changelog off: the brokers are the "
                "embedded mock (state.changelog: true to use %s anyway)",
                topic);
    } else if ((err = rs_changelog_ensure(svc->clog,
                                          svc->app->ingest.topic_events,
                                          30000, e2, sizeof(e2))) == RS_OK) {
        rs_info("service", "state changelog: %s", topic);
        return;
    } else if (autom) {
        rs_warn("service", "state changelog off: %s", e2);
    } else {
        rs_error("service", "%s", e2);
        svc->clog_err = err;
        rs_strlcpy(svc->clog_errstr, e2, sizeof(svc->clog_errstr));
    }
    rs_changelog_destroy(svc->clog);
    svc->clog = NULL;
}

static int64_t rs_svc_p_cl_hwm(void *o, int32_t p) {
    rs_service_t *svc = o;
    rs_svc_clog_check(svc);
    return svc->clog ? rs_changelog_hwm(svc->clog, p) : -1;
}

static int64_t rs_svc_p_cl_end(void *o, int32_t p) {
    rs_service_t *svc = o;
    return svc->clog ? rs_changelog_end(svc->clog, p) : -1;
}

static rs_err_t rs_svc_p_cl_restore(void *o, int32_t p, int64_t from,
                                    rs_pstate_pos_t *pos, uint64_t *nrec,
                                    char *errstr, size_t errstr_size) {
    rs_service_t *svc = o;
    if (!svc->clog) return RS_ERR_NOTFOUND;
    return rs_changelog_restore(svc->clog, p, from, pos, nrec, errstr,
                                errstr_size);
}

static int64_t rs_svc_p_applied(void *o, int topic, int32_t p) {
    rs_service_t *svc = o;
    if (topic < 0 || topic > 1 || p < 0 || p >= RS_SVC_MAX_PARTS) return -1;
    return svc->applied[topic * RS_SVC_MAX_PARTS + p];
}

static void rs_svc_p_set_applied(void *o, int topic, int32_t p, int64_t off) {
    rs_service_t *svc = o;
    if (topic < 0 || topic > 1 || p < 0 || p >= RS_SVC_MAX_PARTS) return;
    svc->applied[topic * RS_SVC_MAX_PARTS + p] = off;
    if (off < 0) svc->txn_dirty[topic * RS_SVC_MAX_PARTS + p] = 0;
}

static uint64_t rs_svc_p_log_end(void *o, int32_t p) {
    rs_service_t *svc = o;
    const rs_learnlog_t *lg = rs_state_log_if_open(svc->state, p);
    if (lg) return rs_learnlog_end(lg);
    return p >= 0 && p < RS_STATE_MAX_PARTS && svc->lrestore[p] >= 0
               ? (uint64_t)svc->lrestore[p] : UINT64_MAX; /* unknown */
}

static void rs_svc_p_log_close(void *o, int32_t p) {
    rs_service_t *svc = o;
    if (p < 0 || p >= RS_STATE_MAX_PARTS) return;
    if (rs_state_log_if_open(svc->state, p)) {
        rs_svc_ckpt_join(svc); /* the I/O thread may sync it */
        if (rs_trainer_detach(svc->tr, p, 30000) != RS_OK) {
            rs_warn("service", "learning log of partition %d stays open: "
                    "the trainer did not let it go", (int)p);
            return;
        }
        rs_state_close_log(svc->state, p);
    }
    svc->lrestore[p] = -1;
    svc->pwm[p] = svc->pwm_sent[p] = INT64_MIN;
    svc->lend_sent[p] = 0;
}

static void rs_svc_p_log_restore(void *o, int32_t p, uint64_t end) {
    rs_service_t *svc = o;
    if (p < 0 || p >= RS_STATE_MAX_PARTS) return;
    rs_svc_p_log_close(o, p); /* rewound when opened next (rs_svc_log) */
    svc->lrestore[p] = end == UINT64_MAX ? -1 : (int64_t)end;
}

static void rs_svc_p_ckpt_abort(void *o) {
    rs_service_t *svc = o;
    if (!svc->ckpt_active) return;
    rs_features_checkpoint_abort(svc->feat);
    svc->ckpt_active = 0;
    svc->ckpt_due_us = rs_clock_mono_us(); /* again, without the moved one */
}

static int rs_svc_p_owns(void *o, int32_t p) {
    rs_service_t *svc = o;
    return rs_ingest_owns(svc->ing, RS_MSG_TOPIC_EVENTS, p) ||
           rs_ingest_owns(svc->ing, RS_MSG_TOPIC_LABELS, p);
}

/* The events partition may still bring an event a label names: it is
 * replaying, or its consumer is behind (a label read ahead of its event
 * after a pause used to be lost for good). */
static int rs_svc_p_replaying(void *o, int32_t p) {
    rs_service_t *svc = o;
    return rs_ingest_replaying_part(svc->ing, RS_MSG_TOPIC_EVENTS, p) ||
           rs_ingest_behind(svc->ing, RS_MSG_TOPIC_EVENTS, p);
}

static int rs_svc_p_rebalancing(void *o) {
    return rs_ingest_rebalancing(((rs_service_t *)o)->ing);
}

static void rs_svc_p_pos(void *o, int32_t p, rs_pstate_pos_t *pos) {
    pos->events = rs_svc_p_applied(o, RS_MSG_TOPIC_EVENTS, p);
    pos->labels = rs_svc_p_applied(o, RS_MSG_TOPIC_LABELS, p);
    uint64_t e = rs_svc_p_log_end(o, p);
    pos->log_end = e == UINT64_MAX ? 0 : e;
    pos->changelog = -1;
}

static void rs_svc_parts_new(rs_service_t *svc) {
    rs_parts_ops_t ops = {
        svc, rs_svc_p_flush, rs_svc_p_applied, rs_svc_p_set_applied,
        rs_svc_p_log_end, rs_svc_p_log_restore, rs_svc_p_log_close,
        rs_svc_p_ckpt_abort, rs_svc_p_owns, rs_svc_p_rebalancing,
        rs_svc_p_cl_hwm, rs_svc_p_cl_end, rs_svc_p_cl_restore};
    svc->parts = rs_parts_new(svc->pstate, &ops);
}

/* Partitions leave (inside rs_ingest_poll): exactly-once commits or
 * aborts its transaction (rs_svc_revoked), then their state is flushed
 * and parked, or dropped if lost (parts.h). */
static void rs_svc_revoke_hook(void *opaque, const rs_ingest_pos_t *parts,
                               int n, int lost) {
    rs_service_t *svc = opaque;
    if (svc->eos) rs_svc_revoked(opaque, parts, n, lost);
    rs_parts_revoke(svc->parts, parts, n, lost);
}

/* ------------------------------------------------------------- batch */

/* Room in the in-flight ring for one more batch of up to n messages;
 * waits (backpressure) for acks / the Redis writer.  Exactly-once: the
 * ring empties only at a commit, so a full ring commits the transaction
 * (a long service.transaction_interval at a high rate). */
static rs_err_t rs_svc_ring_wait(rs_service_t *svc, int n,
                                 volatile sig_atomic_t *stop, char *errstr,
                                 size_t errstr_size) {
    while (svc->ring_head - svc->ring_tail >= RS_SVC_RING ||
           RS_SVC_OFFS - (svc->offs_head - svc->offs_tail) < (uint64_t)n) {
        if (svc->eos && svc->txn_open) {
            rs_err_t err = rs_svc_txn_commit(svc, stop, errstr, errstr_size);
            if (err != RS_OK) return err;
            continue;
        }
        if (rs_svc_stop_left_ms(svc, stop) == 0)
            return rs_errf(errstr, errstr_size, RS_ERR_AGAIN,
                           "stopped while %llu batches awaited Kafka "
                           "acknowledgements or the Redis writer",
                           (unsigned long long)(svc->ring_head -
                                                svc->ring_tail));
        rs_sink_kafka_poll(svc->ks, 1);
        rs_sink_redis_wait(svc->rd, rs_sink_redis_done(svc->rd) + 1, 10);
        rs_svc_store_acked(svc);
        rs_svc_periodic(svc, rs_clock_mono_us());
    }
    return RS_OK;
}

/* Encode out[from..n) once: JSON for Redis, and the same bytes for
 * Kafka unless the scores topic is protobuf (then a second, protobuf
 * copy).  The events' records are encoded by the workers: this is for
 * the duplicates. */
static rs_err_t rs_svc_encode(rs_service_t *svc, int from, int n,
                              char *errstr, size_t errstr_size) {
    int bad = -1, cnt = n - from;
    rs_err_t err = rs_score_encode_batch(RS_FORMAT_JSON, svc->out + from, cnt,
                                         &svc->enc_json, svc->json + from,
                                         svc->json_lens + from, &bad);
    if (err == RS_OK && rs_sink_kafka_format(svc->ks) != RS_FORMAT_JSON)
        err = rs_score_encode_batch(rs_sink_kafka_format(svc->ks),
                                    svc->out + from, cnt, &svc->enc_kafka,
                                    svc->kbytes + from, svc->klens + from,
                                    &bad);
    else if (err == RS_OK)
        for (int i = from; i < n; i++) {
            svc->kbytes[i] = svc->json[i];
            svc->klens[i] = svc->json_lens[i];
        }
    if (err != RS_OK) /* a corrupt record: a bug, never input */
        return rs_errf(errstr, errstr_size, err,
                       "score of %s does not encode",
                       bad >= 0 ? svc->out[from + bad].event_id : "?");
    return RS_OK;
}

/* Record that the batch read (topic, partition) up to `offset`. */
static void rs_svc_batch_off(rs_service_t *svc, rs_svc_batch_t *b,
                             int32_t topic, int32_t partition,
                             int64_t offset) {
    for (int i = b->n - 1; i >= 0; i--) {
        rs_svc_off_t *o = &svc->offs[(b->off0 + (uint64_t)i) % RS_SVC_OFFS];
        if (o->topic == topic && o->partition == partition) {
            if (offset > o->offset) o->offset = offset;
            return;
        }
    }
    svc->offs[(b->off0 + (uint64_t)b->n) % RS_SVC_OFFS] =
        (rs_svc_off_t){topic, partition, offset};
    b->n++;
    svc->offs_head++;
}

/* The decision on record of event row k (dedup entry from the batch). */
static void rs_svc_dedup_set(rs_service_t *svc, int k, float score,
                             rs_decision_t decision, uint32_t flags,
                             const char *version) {
    if (!svc->dedup) return;
    rs_dedup_rec_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.score = score;
    rec.decision = (uint8_t)decision;
    rec.flags = flags;
    rec.has = 1;
    rs_strlcpy(rec.model_version, version, sizeof(rec.model_version));
    rs_dedup_set(svc->dedup, svc->ev_dd[k], &rec);
}

/* The batch's duplicates (after its events are scored: an original may
 * be in the same batch) as svc->out[*npub ..], published with the rest:
 * the decision on record -- score, decision, model version, flags -- plus
 * RS_SCORE_FLAG_DUPLICATE, no explanation, no input log.  A replayed
 * duplicate rebuilds nothing and publishes nothing. */
static void rs_svc_duplicates(rs_service_t *svc, int ndup, int *npub) {
    int64_t now_wall_us = rs_clock_wall_us(), now_mono = rs_clock_mono_us();
    for (int j = 0; j < ndup; j++) {
        const rs_msg_t *m = &svc->msgs[svc->dup_msg[j]];
        rs_dedup_rec_t rec;
        if (m->replay) continue;
        if (rs_dedup_get(svc->dedup, svc->dup_dd[j], &rec) != RS_OK ||
            !rec.has) {
            /* Its original was never scored (it failed in its batch):
             * nothing on record to repeat. */
            rs_warn("service", "duplicate %s: no decision on record",
                    m->ev.id);
            continue;
        }
        rs_score_t *sc = &svc->out[*npub];
        memset(sc, 0, sizeof(*sc));
        rs_strlcpy(sc->event_id, m->ev.id, sizeof(sc->event_id));
        rs_strlcpy(sc->entity_id, m->ev.entity_id, sizeof(sc->entity_id));
        sc->score = rec.score;
        sc->decision = (rs_decision_t)rec.decision;
        rs_strlcpy(sc->model_version, rec.model_version,
                   sizeof(sc->model_version));
        sc->event_time_ms = m->ev.event_time_ms;
        sc->flags = rec.flags | RS_SCORE_FLAG_DUPLICATE;
        rs_event_fields_from_event(&sc->event, &m->ev); /* as received */
        sc->scored_at_ms = now_wall_us / 1000;
        sc->latency_us = now_mono - m->received_us;
        svc->logs[*npub] = NULL;
        svc->log_lens[*npub] = 0;
        svc->st.duplicates++;
        (*npub)++;
    }
}

/* Process one polled batch of n messages. */
static rs_err_t rs_svc_batch(rs_service_t *svc, int n,
                             volatile sig_atomic_t *stop, char *errstr,
                             size_t errstr_size) {
    int D = svc->dim, nev = 0, npub = 0, ndup = 0, ntouched = 0;
    rs_err_t werr = rs_svc_ring_wait(svc, n, stop, errstr, errstr_size);
    if (werr != RS_OK) return werr;
    if (svc->eos && !svc->txn_open) {
        rs_err_t err = rs_sink_kafka_txn_begin(svc->ks);
        if (err != RS_OK)
            return rs_errf(errstr, errstr_size, err,
                           "cannot begin a transaction: %s",
                           rs_err_str(err));
        svc->txn_open = 1;
        svc->txn_begin_us = rs_clock_mono_us();
    }
    rs_svc_batch_t *b = &svc->ring[svc->ring_head % RS_SVC_RING];
    b->seq = svc->next_seq++;
    b->off0 = svc->offs_head;
    b->n = 0;

    for (int i = 0; i < n; i++) {
        rs_msg_t *m = &svc->msgs[i];
        rs_svc_batch_off(svc, b, m->topic, m->partition, m->offset);
        if (m->partition >= 0 && m->partition < RS_SVC_MAX_PARTS &&
            (m->topic == 0 || m->topic == 1)) {
            svc->applied[m->topic * RS_SVC_MAX_PARTS + m->partition] =
                m->offset + 1;
            /* A replayed message lies below the committed offset: never
             * send its position (it would move the group's offset back). */
            if (!m->replay)
                svc->txn_dirty[m->topic * RS_SVC_MAX_PARTS + m->partition] =
                    1;
        }
        switch (m->kind) {
        case RS_MSG_LABEL: rs_svc_label(svc, m); break;
        case RS_MSG_REJECT: svc->st.rejected++; break;
        case RS_MSG_EVENT: {
            svc->st.events++;
            uint64_t dd = 0;
            if (svc->dedup &&
                rs_dedup_check_part(svc->dedup,
                                    rs_dedup_key(m->ev.entity_id, m->ev.id),
                                    m->ev.event_time_ms, m->partition, &dd)) {
                /* Seen before (maybe earlier in this batch): it gets the
                 * decision on record once the batch is scored, and enters
                 * neither the features nor the model again. */
                svc->dup_msg[ndup] = i;
                svc->dup_dd[ndup++] = dd;
                break;
            }
            float *x = svc->x + (size_t)nev * (size_t)D;
            svc->flags[nev] = 0;
            rs_features_set_partition(svc->feat, m->partition); /* its state's */
            /* maintenance: reports due at this event time (alerts.h) */
            if (svc->al) rs_alerts_event(svc->al, i, &m->ev, m->partition);
            /* cpstage hook: the shared features first (the engine, in
             * ENTITY scope, leaves them as they are) */
            if (svc->cp && m->replay) /* rebuilds state, never published */
                rs_cpstage_fill_replay(svc->cp, m->partition, m->offset,
                                       &m->ev, x, svc->stop);
            else if (svc->cp)
                rs_cpstage_fill(svc->cp, m->partition, m->offset, &m->ev, x,
                                svc->stop);
            if (rs_features_process(svc->feat, &m->ev, x, &svc->flags[nev]) !=
                RS_OK) {
                /* Decoders validate first, so this is a programming error
                 * rather than bad input: count it, never crash. */
                svc->st.rejected++;
                break;
            }
            if (rs_parts_labels_held(svc->parts)) /* a replay's labels */
                rs_parts_label_release(svc->parts, svc->feat, m->ev.id);
            if (m->ev.event_time_ms > svc->watermark_ms)
                svc->watermark_ms = m->ev.event_time_ms;
            if (m->partition < 0 || m->partition >= RS_STATE_MAX_PARTS)
                return rs_errf(errstr, errstr_size, RS_ERR_STATE,
                               "input partition %d: at most %d partitions "
                               "are supported", (int)m->partition,
                               RS_STATE_MAX_PARTS);
            /* partitions of the batch (lpend marks them until the
             * forward, then counts their records) */
            if (!svc->lpend[m->partition]++)
                svc->touched[ntouched++] = m->partition;
            if (m->ev.event_time_ms > svc->pwm[m->partition])
                svc->pwm[m->partition] = m->ev.event_time_ms;
            svc->ev_dd[nev] = dd;
            svc->ev_msg[nev++] = i;
            break;
        }
        }
    }

    if (nev > 0) {
        /* One call for the micro-batch, any model kind: scores, feature
         * contributions, attended history and experts; each event is also
         * remembered for learning when its label arrives. */
        /* learning records: positions in their partitions' logs */
        for (int i = 0; i < ntouched; i++) svc->lpend[svc->touched[i]] = 0;
        for (int k = 0; k < nev; k++) {
            const rs_msg_t *m = &svc->msgs[svc->ev_msg[k]];
            rs_learnlog_t *lg = rs_svc_log(svc, m->partition, errstr,
                                           errstr_size);
            if (!lg) return RS_ERR_IO; /* never score what cannot learn */
            svc->ev_log[k] = lg;
            rs_model_input_from_event(&svc->min[k], &m->ev,
                                      svc->x + (size_t)k * (size_t)D);
            svc->min[k].lrec = svc->lrec + (size_t)k * svc->lrec_size;
            svc->min[k].lpos = RS_LPOS(m->partition,
                                       rs_learnlog_end(lg) +
                                           svc->lpend[m->partition]++);
            if (svc->log_max) {
                svc->min[k].log = svc->logbuf + (size_t)k * svc->log_max;
                svc->min[k].log_cap = svc->log_max;
            }
        }
        int explain = svc->conf->explain;
        rs_err_t ferr = rs_model_forward(
            svc->model, svc->min, nev, svc->mout,
            explain ? svc->contrib : NULL,
            RS_MODEL_FWD_REMEMBER | (explain ? RS_MODEL_FWD_EXPLAIN : 0));
        if (ferr != RS_OK)
            return rs_errf(errstr, errstr_size, ferr, "model forward: %s",
                           rs_err_str(ferr));
        /* in input order: each lands at the position its record names */
        for (int k = 0; k < nev; k++) {
            rs_err_t lerr = rs_learnlog_append(svc->ev_log[k], svc->min[k].lrec,
                                               1, errstr, errstr_size);
            if (lerr != RS_OK) return lerr;
        }
        for (int i = 0; i < ntouched; i++) svc->lpend[svc->touched[i]] = 0;
        for (int k = 0; k < nev; k++) svc->scores[k] = svc->mout[k].score;
        const char *version = rs_model_version(svc->model);
        /* Decisions, the duplicate window and counters here; the rest of
         * each record (fields, explanation, stamps, encoding) on the
         * workers (workers.h). */
        for (int k = 0; k < nev; k++) {
            const rs_msg_t *m = &svc->msgs[svc->ev_msg[k]];
            /* maintenance: every score through the alert policy, in input
             * order (alerts.h) */
            int64_t rul = 0;
            rs_decision_t mdec =
                svc->al ? rs_alerts_score(svc->al, svc->ev_msg[k],
                                          m->replay ? -1 : npub, &m->ev,
                                          m->partition, svc->scores[k],
                                          svc->x + (size_t)k * (size_t)D,
                                          version, &rul)
                        : RS_DECISION_UNSPECIFIED;
            if (m->replay) {
                /* Read again below the committed offset (restart from a
                 * checkpoint): its score is already delivered; it only
                 * rebuilds the state (the duplicate window included). */
                svc->pub[k] = -1;
                svc->st.replayed++;
                rs_svc_dedup_set(svc, k, svc->scores[k],
                                 rs_decide(svc->conf, m->ev.type,
                                           svc->scores[k]),
                                 svc->flags[k] & RS_SCORE_FLAG_LATE, version);
                continue;
            }
            svc->pub[k] = npub;
            rs_score_t *sc = &svc->out[npub];
            sc->score = svc->scores[k];
            sc->decision = rs_decide(svc->conf, m->ev.type, sc->score);
            if (mdec != RS_DECISION_UNSPECIFIED) sc->decision = mdec;
            sc->rul = rul;
            sc->flags = svc->flags[k] & RS_SCORE_FLAG_LATE;
            rs_svc_dedup_set(svc, k, svc->scores[k], sc->decision, sc->flags,
                             version);
            if (explain && sc->score >= svc->conf->explain_min_score)
                svc->st.explained++;
            int log = svc->log_max && svc->mout[k].log_len > 0 &&
                      (svc->conf->log_inputs == RS_LOG_INPUTS_ALL ||
                       sc->decision != RS_DECISION_APPROVE);
            svc->logs[npub] = log ? svc->min[k].log : NULL;
            svc->log_lens[npub] = log ? svc->mout[k].log_len : 0;
            svc->st.inputs_logged += (uint64_t)log;
            switch (sc->decision) {
            case RS_DECISION_REVIEW: svc->st.reviews++; break;
            case RS_DECISION_DECLINE: svc->st.declines++; break;
            case RS_DECISION_ALERT: svc->st.alerts++; break;
            default: break;
            }
            if (sc->decision != RS_DECISION_APPROVE && svc->example_rank < 2) {
                rs_strlcpy(svc->example_id, m->ev.id,
                           sizeof(svc->example_id));
                svc->example_rank = 2;
            }
            npub++;
        }
        /* Stamp, fill, encode once: latency ends when the scores are
         * handed to the producer. */
        int64_t now_wall_us = rs_clock_wall_us(), now_mono = rs_clock_mono_us();
        rs_workers_batch_t wb = {
            .conf = svc->conf, .feat = svc->feat, .dim = D, .nev = nev,
            .msgs = svc->msgs, .ev_msg = svc->ev_msg, .pub = svc->pub,
            .x = svc->x, .contrib = explain ? svc->contrib : NULL,
            .mout = svc->mout, .version = version,
            .now_wall_us = now_wall_us, .now_mono_us = now_mono,
            .out = svc->out, .kafka_format = rs_sink_kafka_format(svc->ks),
            .json = svc->json, .json_lens = svc->json_lens,
            .kbytes = svc->kbytes, .klens = svc->klens};
        rs_err_t rerr = rs_workers_records(svc->wk, &wb);
        if (rerr != RS_OK) /* a corrupt record: a bug, never input */
            return rs_errf(errstr, errstr_size, rerr,
                           "score of %s does not encode",
                           wb.bad >= 0 ? svc->out[wb.bad].event_id : "?");
        for (int k = 0; svc->feat_out && k < nev; k++) {
            if (svc->pub[k] < 0) continue; /* tests: id partition offset x */
            const rs_msg_t *m = &svc->msgs[svc->ev_msg[k]];
            fprintf(svc->feat_out, "%s\t%d\t%lld\t", m->ev.id,
                    (int)m->partition, (long long)m->offset);
            for (int j = 0; j < D; j++) {
                uint32_t u;
                memcpy(&u, svc->x + (size_t)k * (size_t)D + (size_t)j, 4);
                fprintf(svc->feat_out, "%s%08x", j ? "," : "", u);
            }
            fputc('\n', svc->feat_out);
        }
        if (svc->feat_out) fflush(svc->feat_out);
        for (int k = 0; k < nev; k++) {
            if (svc->pub[k] < 0) continue;
            const rs_msg_t *m = &svc->msgs[svc->ev_msg[k]];
            rs_hist_record(&svc->st.proc_us, svc->out[svc->pub[k]].latency_us);
            if (m->produced_ms > 0)
                rs_hist_record(&svc->st.e2e_us,
                               now_wall_us - m->produced_ms * 1000);
        }
        svc->st.scored += (uint64_t)npub;
        if (npub && !svc->first_scored_us) svc->first_scored_us = now_mono;
        if (svc->first_scored_us)
            svc->st.active_s = (double)(now_mono - svc->first_scored_us) / 1e6;
        if (npub && !svc->example_rank) {
            rs_strlcpy(svc->example_id, svc->out[0].event_id,
                       sizeof(svc->example_id));
            svc->example_rank = 1;
        }
    }
    /* The duplicates after the events (their originals may be in this
     * batch), encoded here: few. */
    int nev_pub = npub;
    if (ndup > 0) rs_svc_duplicates(svc, ndup, &npub);
    if (npub > nev_pub) {
        rs_err_t eerr = rs_svc_encode(svc, nev_pub, npub, errstr,
                                      errstr_size);
        if (eerr != RS_OK) return eerr;
    }

    /* Publish (the same bytes go to Kafka and Redis). */
    for (int p = 0; p < npub; p++) {
        rs_score_t *sc = &svc->out[p];
        rs_err_t err;
        size_t alen = 0; /* maintenance: the alert's own payload */
        const char *abuf = svc->al ? rs_alerts_payload(svc->al, p, &alen)
                                   : NULL;
        /* A full local queue is backpressure: serve delivery reports
         * until there is room (never drop, never skip). */
        while ((err = rs_sink_kafka_publish_alert(
                    svc->ks, sc, svc->kbytes[p], svc->klens[p], abuf, alen,
                    b->seq)) ==
                   RS_ERR_AGAIN &&
               rs_svc_stop_left_ms(svc, stop) != 0)
            rs_sink_kafka_poll(svc->ks, 10);
        if (err != RS_OK) {
            svc->st.kafka_errors++;
            return rs_errf(errstr, errstr_size, err,
                           "publishing score of %s%s: %s", sc->event_id,
                           (sc->flags & RS_SCORE_FLAG_DUPLICATE)
                               ? " (a duplicate)" : "",
                           rs_err_str(err));
        }
    }
    if (svc->al) rs_alerts_batch_end(svc->al); /* labels after the events */
    /* Every batch goes to the Redis writer, also one that published no
     * score (labels, rejects or replayed events only): with n == 0 it only
     * moves the written-batch watermark on (sink.h), which the offset store
     * (at-least-once) and the transaction commit (exactly-once) wait for.
     * Skipping it left every later batch undelivered for good. */
    rs_err_t qerr = rs_svc_redis_enqueue(svc, npub, b->seq, stop, errstr,
                                         errstr_size);
    if (qerr != RS_OK) return qerr;
    /* Exactly-once: a reject's dead-letter copy must be acknowledged before
     * a commit includes its position (stores nothing in that mode). */
    if (svc->eos) rs_ingest_store(svc->ing, svc->msgs, n);
    rs_sink_kafka_batch_end(svc->ks, b->seq);
    svc->ring_head++;
    svc->sealed_seq = b->seq;
    svc->progress_us = rs_clock_mono_us();
    svc->st.batches++;
    rs_svc_advance(svc, ntouched);
    rs_svc_clog_check(svc);
    if (svc->clog) /* what the batch changed, produced once it retires */
        rs_changelog_stage(svc->clog, b->seq, svc->msgs, n, rs_svc_p_pos, svc);
    return RS_OK;
}

rs_err_t rs_service_run(rs_service_t *svc, volatile sig_atomic_t *stop,
                        char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    svc->stop = stop;
    rs_ingest_set_revoke_cb(svc->ing, rs_svc_revoke_hook, svc);
    rs_ingest_set_assign_cb(svc->ing, rs_parts_assign, svc->parts);
    svc->start_us = svc->last_input_us = rs_clock_mono_us();
    svc->ckpt_due_us = svc->start_us + svc->conf->checkpoint_interval_ms * 1000;
    rs_info("service", "scoring %s -> %s + redis, model %s, %d features, %s",
            svc->app->ingest.topic_events, svc->app->ingest.topic_scores,
            rs_model_version(svc->model), svc->dim,
            svc->eos ? "exactly-once" : "at-least-once");
    while (!*stop) {
        int n = rs_ingest_poll(svc->ing, svc->msgs, svc->batch_max,
                               (int)svc->app->ingest.poll_timeout_ms);
        int64_t now = rs_clock_mono_us();
        if (n < 0) {
            err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                          "consumer failed (fatal Kafka error)");
            break;
        }
        if (svc->clog_err) { /* state.changelog: true, no usable topic */
            err = rs_errf(errstr, errstr_size, svc->clog_err, "%s",
                          svc->clog_errstr);
            break;
        }
        if (n > 0) {
            rs_hist_record(&svc->st.batch_msgs, n);
            svc->last_input_us = now;
            err = rs_svc_batch(svc, n, stop, errstr, errstr_size);
            if (err != RS_OK) break;
        }
        if (svc->eos && svc->txn_open &&
            now - svc->txn_begin_us >=
                svc->conf->transaction_interval_ms * 1000) {
            err = rs_svc_txn_commit(svc, stop, errstr, errstr_size);
            if (err != RS_OK) break;
        }
        if (rs_sink_kafka_poll(svc->ks, 0) == RS_ERR_KAFKA) {
            err = rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                          "scores producer failed (fatal Kafka error)");
            break;
        }
        rs_svc_store_acked(svc);
        rs_parts_tick(svc->parts); /* partitions that left: saved, dropped */
        if (rs_parts_labels_held(svc->parts))
            rs_parts_labels_expire(svc->parts, rs_svc_p_replaying);
        rs_svc_swap_weights(svc);
        rs_svc_ckpt_tick(svc, now);
        rs_svc_periodic(svc, now);
        if (svc->conf->max_events > 0 &&
            svc->st.scored >= (uint64_t)svc->conf->max_events)
            break;
        if (svc->conf->exit_idle_ms > 0 && n == 0 &&
            now - svc->last_input_us > svc->conf->exit_idle_ms * 1000)
            break;
    }
    /* Graceful stop: deliver what is in flight (Kafka and Redis), then
     * store and commit the offsets, checkpoint, and let the trainer learn
     * what is queued and save the model.  Every wait ends by one deadline
     * (service.stop_timeout from the moment the stop was seen); what is
     * still undelivered then is named, and read again after a restart. */
    if (rs_svc_stop_left_ms(svc, stop) < 0) /* a limit, not a signal */
        svc->stop_deadline_us =
            rs_clock_mono_us() + svc->conf->stop_timeout_ms * 1000;
    int64_t stop_t0 = svc->stop_deadline_us - svc->conf->stop_timeout_ms * 1000;
    char why[600] = "";
    if (svc->eos) {
        char e2[512];
        if (err == RS_OK) {
            if (rs_svc_txn_commit(svc, stop, e2, sizeof(e2)) != RS_OK) {
                rs_error("service", "final transaction: %s", e2);
                snprintf(why, sizeof(why), "final transaction: %s", e2);
            }
        } else if (svc->txn_open) {
            rs_sink_kafka_txn_abort(svc->ks, RS_SINK_TXN_DISCARD, 10000, e2,
                                    sizeof(e2));
            svc->txn_open = 0;
            svc->st.txn_aborts++;
        }
    }
    rs_err_t kf = rs_sink_kafka_flush(svc->ks,
                                      RS_MAX(rs_svc_stop_left_ms(svc, stop), 0));
    rs_err_t rw = rs_sink_redis_wait(svc->rd, svc->sealed_seq,
                                     RS_MAX(rs_svc_stop_left_ms(svc, stop), 0));
    rs_svc_store_acked(svc);
    if (svc->ring_head == svc->ring_tail) {
        rs_svc_ckpt_final(svc);
    } else {
        /* Say which side holds the batches back: Kafka acknowledgements or
         * the Redis writer (or, exactly-once, the aborted transaction). */
        size_t wl = strlen(why);
        if (kf != RS_OK) {
            rs_sink_kafka_stats_t kst;
            rs_sink_kafka_stats(svc->ks, &kst);
            wl += (size_t)snprintf(why + wl, sizeof(why) - wl,
                                   "%skafka: %lld score message(s) not "
                                   "acknowledged by the brokers",
                                   wl ? "; " : "", (long long)kst.inflight);
        }
        if (rw != RS_OK && wl < sizeof(why)) {
            rs_sink_redis_stats_t rst;
            rs_sink_redis_stats(svc->rd, &rst);
            wl += (size_t)snprintf(why + wl, sizeof(why) - wl,
                                   "%sredis: batches %llu..%llu not written "
                                   "(%llu bytes queued; redis %s)",
                                   wl ? "; " : "",
                                   (unsigned long long)rst.done_seq + 1,
                                   (unsigned long long)svc->sealed_seq,
                                   (unsigned long long)rst.buffer_bytes,
                                   rst.healthy ? "answers but is too slow"
                                               : "unreachable");
        }
        if (!why[0])
            snprintf(why, sizeof(why), "offsets not stored");
        rs_error("service", "stopping after %.1f s with %llu batch(es) "
                 "undelivered: %s; no final checkpoint (the last one stays "
                 "valid); their input is read again after the restart",
                 (double)(rs_clock_mono_us() - stop_t0) / 1e6,
                 (unsigned long long)(svc->ring_head - svc->ring_tail), why);
        if (err == RS_OK)
            err = rs_errf(errstr, errstr_size,
                          kf != RS_OK ? RS_ERR_KAFKA : RS_ERR_REDIS,
                          "stopped with %llu batch(es) undelivered: %s",
                          (unsigned long long)(svc->ring_head -
                                               svc->ring_tail), why);
    }
    char e3[256];
    if (!svc->eos && rs_ingest_commit_sync(svc->ing, e3, sizeof(e3)) != RS_OK)
        rs_warn("service", "final offset commit: %s", e3);
    rs_svc_periodic(svc, rs_clock_mono_us());
    char e2[256];
    if (rs_trainer_stop(svc->tr, 1, e2, sizeof(e2)) != RS_OK)
        rs_error("service", "saving model: %s", e2);
    rs_svc_swap_weights(svc);
    svc->snap_next_us = 0; /* the metrics snapshot of the final state */
    rs_svc_periodic(svc, rs_clock_mono_us());
    return err;
}
