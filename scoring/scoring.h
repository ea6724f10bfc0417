/* scoring.h -- the scoring service: the end of the flow
 * ingest -> features -> model -> scoring -> sinks.
 *
 * A rs_service_t owns one consumer (events + labels topics, one consumer
 * group), one feature engine, one model and the two sinks (Kafka scores /
 * alerts topics, Redis).  Its loop, on one thread:
 *
 *   poll a batch  ->  labels: feature label state + model learning
 *                 ->  events: features -> batched model score -> decision
 *                              + explanation -> Kafka (async) + Redis (one
 *                              pipelined round trip)
 *                 ->  offsets of a batch are stored only once every record
 *                     of it is acknowledged by Kafka and written to Redis
 *                     (at-least-once; a replay rewrites the same Redis keys)
 *
 * Feature state is checkpointed (service.checkpoint_path) every
 * checkpoint_interval: taken at a batch boundary (batches may be in
 * flight), written in small steps between batches, and committed (fsync +
 * rename, off the scoring thread) only once every batch it covers is
 * delivered, so the input offsets stored in the checkpoint are both
 * applied to the state and delivered.  At start the checkpoint is
 * restored and the consumer starts each partition at the checkpoint's
 * offset: nothing is applied twice, nothing is forgotten (the messages
 * after it are read, scored and published again: at-least-once).
 *
 * Nothing on the per-event path allocates: message, feature, score and
 * record arrays are sized from `batch_max` at start.
 *
 * Threads: rs_service_run() runs on the calling thread and returns when
 * *stop becomes non-zero (signal handler), when `service.max_events` events
 * were scored, or after `service.exit_idle` without input.  The progress
 * callback runs on that same thread.
 */
#ifndef RS_SCORING_H
#define RS_SCORING_H

#include <signal.h>

#include "common/common.h"
#include "common/config.h"
#include "common/metrics.h"
#include "proto/proto.h"
#include "ingest/ingest.h"
#include "features/features.h"
#include "model/model.h"
#include "model/maint.h"
#include "scoring/sink.h"
#include "scoring/dedup.h"
#include "scoring/http.h"
#include "scoring/state.h"
#include "scoring/modelsync.h"
#include "scoring/cpstage.h"

#include "scoring/build_info.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `service:` section of the YAML config. */
typedef struct rs_service_conf_s {
    double review_threshold;   /* score >= this -> review              */
    double decline_threshold;  /* score >= this -> decline             */
    double alert_threshold;    /* sensor events: score >= this -> alert */
    char alert_types[128];     /* event types decided as alert/approve  */
    int scores_format;         /* rs_format_t of the scores topic       */
    int explain;               /* 0: scores without explanations        */
    int64_t explain_top;       /* feature contributions per score       */
    int64_t explain_attended;  /* attended past events per score        */
    int64_t stats_interval_ms; /* periodic stats log line; 0 = off      */
    int64_t max_events;        /* stop after N scored events; 0 = never */
    int64_t exit_idle_ms;      /* stop after this long idle; 0 = never  */
    char model_path[512];      /* start from this model file; "" = new  */
    char model_save_path[512]; /* save the model here at shutdown       */
    char checkpoint_path[512]; /* feature-state checkpoint; "" = none   */
    int64_t checkpoint_interval_ms; /* period of incremental checkpoints */
    int64_t checkpoint_step;   /* key slots serialized per step         */
    int64_t checkpoint_pause_ms; /* step time allowed between batches   */
    double explain_min_score;  /* explain scores >= this only (0 = all) */
    int log_inputs;            /* rs_log_inputs_t                       */
    int delivery;              /* rs_delivery_t                         */
    char transactional_id[128]; /* exactly-once: "" = riskstream-<group> */
    int64_t transaction_interval_ms; /* exactly-once: commit period     */
    int64_t commit_timeout_ms; /* exactly-once: longest wait for Redis
                                * before a commit; then abort + stop    */
    int64_t stop_timeout_ms;   /* graceful stop: all delivery waits     */
    int64_t stall_timeout_ms;  /* readiness: no progress with work left
                                * for this long = not ready; 0 = off    */
    int64_t dedup_window_ms;   /* duplicate event ids: window; 0 = off  */
    int64_t dedup_max;         /* duplicate detection: entries kept     */
    int64_t workers;           /* threads for decode, records, encode;
                                * 0 = the online cores (workers.h)      */
    int64_t trace_slow_ms;     /* log loop turns at least this long,
                                * split by stage; 0 = off               */
} rs_service_conf_t;

/* service.log_inputs: which events' scoring inputs go to Redis
 * (<prefix>input:<event_id>) for `riskstream audit --rescore`. */
typedef enum rs_log_inputs_e {
    RS_LOG_INPUTS_NONE = 0,
    RS_LOG_INPUTS_FLAGGED = 1,   /* decisions other than approve */
    RS_LOG_INPUTS_ALL = 2
} rs_log_inputs_t;

/* service.delivery */
typedef enum rs_delivery_e {
    RS_DELIVERY_AT_LEAST_ONCE = 0,
    RS_DELIVERY_EXACTLY_ONCE = 1
} rs_delivery_t;

/* The whole application configuration: one struct per YAML section. */
typedef struct rs_app_conf_s {
    rs_service_conf_t service;
    rs_ingest_conf_t ingest;     /* `topics:` section (see ingest.h)   */
    rs_redis_conf_t redis;       /* `redis:`                            */
    rs_features_conf_t features; /* `features:`                         */
    rs_model_conf_t model;       /* `model:` and `seq:`                 */
    rs_http_conf_t http;         /* `http:` API (serve, api, audit)     */
    rs_state_conf_t state;       /* `state:` directory                  */
    rs_msync_conf_t sync;        /* `sync:` one model across instances  */
    rs_maint_conf_t maint;       /* `maintenance:` (model/maint.h)      */
    rs_cpstage_conf_t cpstage;   /* `cpstage:` counterparty stage       */
    rs_kv_t kafka;               /* `kafka:` passthrough to librdkafka  */
    rs_conf_t *conf;             /* the registry (owns no app memory)  */
    rs_conf_section_t secs[11];  /* section rows registered in conf    */
    /* Not a config key: set by the commands that start the embedded
     * broker, whose topics end with the process -- then an unset
     * state.dir means a temporary state directory (state.h). */
    int state_ephemeral;
} rs_app_conf_t;

/* Register every section of `app` in a new registry (app->conf) and fill
 * the defaults.  Free with rs_app_conf_destroy().  Returns RS_ERR_CONFIG
 * only for a programming error in a table. */
rs_err_t rs_app_conf_init(rs_app_conf_t *app, char *errstr,
                          size_t errstr_size);
void rs_app_conf_destroy(rs_app_conf_t *app);
/* Settings that follow others, after the configuration is loaded (and
 * again after a command sets one of them, e.g. eval's --label-delay):
 * features.label_maturity 0 = the declared model.label_delay (windows that
 * end at label maturity).  Idempotent. */
void rs_app_conf_resolve(rs_app_conf_t *app);

/* The memory `app` implies (feature tables, the model's caches and pending
 * buffer, the trainer queue, the Redis buffer, the duplicate window, the
 * batch arrays) into *total (may be NULL); RS_ERR_CONFIG with errstr
 * naming the largest key and the bytes when it exceeds what the machine
 * can hold (rs_mem_limit, or rs_memory_limit_override when non-zero).
 * rs_service_new runs it first.  @locality any thread */
rs_err_t rs_app_conf_mem_check(const rs_app_conf_t *app, uint64_t *total,
                               char *errstr, size_t errstr_size);
/* Tests: replaces rs_mem_limit() in the check when non-zero. */
extern uint64_t rs_memory_limit_override;

/* Counters and distributions of a running or finished service.  Plain
 * copy; read with rs_service_stats() from the service thread (or from the
 * progress callback). */
typedef struct rs_service_stats_s {
    uint64_t events, labels, rejected, scored;
    uint64_t alerts, reviews, declines;
    uint64_t labels_matched;    /* labels joined to a learning record     */
    uint64_t positives;         /* positive labels matched                */
    uint64_t caught;            /* of those, scored review/decline/alert  */
    uint64_t redis_errors, kafka_errors;
    uint64_t redis_waits;       /* waits for room in the Redis buffer     */
    uint64_t hold_copies;       /* batches published with a copy: every
                                 * arena set still held by Kafka (zero-copy
                                 * produce, rs_svc_hold_pick)           */
    uint64_t train_waits;       /* waits for room in the trainer queue    */
    uint64_t explained;         /* scores published with an explanation   */
    uint64_t inputs_logged;     /* scoring inputs written for --rescore   */
    uint64_t replayed;          /* re-read below the committed offset:
                                 * state only, not published again        */
    uint64_t duplicates;        /* event ids seen again within
                                 * service.dedup_window: the decision on
                                 * record published again, flagged        */
    uint64_t labels_unknown;    /* labels whose event is not pending
                                 * (unknown, already resolved, dropped)   */
    uint64_t txn_commits, txn_aborts; /* exactly-once transactions        */
    uint64_t batches;
    uint64_t model_sharded;     /* batches whose model forward was split
                                 * by entity over the workers (12.2)     */
    uint64_t slow_turns;        /* service.trace_slow: turns logged       */
    int64_t assigned;           /* input partitions currently assigned    */
    uint64_t checkpoints;       /* feature checkpoints committed          */
    uint64_t checkpoint_errors;
    uint64_t checkpoint_reh_behind; /* checkpoints taken while the trainer
                                 * had failures read before them still
                                 * queued: its rehearsal state lacks them */
    int64_t checkpoint_step_max_us; /* longest pause of one checkpoint step */
    int64_t checkpoint_last_ms; /* begin -> committed, last checkpoint     */
    double elapsed_s;           /* since rs_service_run() started         */
    double active_s;            /* first to latest scored event           */
    rs_hist_t e2e_us;           /* event produce time -> score produced   */
    rs_hist_t proc_us;          /* poll return -> score produced          */
    rs_hist_t fetch_us;         /* event produce time -> polled (broker,
                                 * fetch, the consumer's queue)          */
    rs_hist_t deliver_us;       /* per batch: scores handed to the
                                 * producer -> acknowledged by Kafka and
                                 * written to Redis (at-least-once)      */
    rs_hist_t batch_msgs;       /* messages per poll: the batch size,
                                 * which follows the backlog (ingest.h)  */
    rs_auc_t auc;               /* scores vs resolved labels              */
    char model_version[RS_VERSION_MAX];
} rs_service_stats_t;

typedef struct rs_service_s rs_service_t;

/* Build the service: connects the consumer (to `bootstrap`, or to
 * app->ingest.brokers), the sinks and Redis, creates features and model
 * (loading service.model_path if set).  `app` must outlive the service.
 * Returns NULL with errstr on failure; *err_out (may be NULL) tells
 * configuration errors (RS_ERR_CONFIG -> exit 2) from runtime ones. */
rs_service_t *rs_service_new(const rs_app_conf_t *app, const char *bootstrap,
                             rs_err_t *err_out, char *errstr,
                             size_t errstr_size);

/* Progress callback, called about every `interval_ms` from the service
 * thread with the current stats. */
typedef void (rs_service_progress_cb)(void *opaque,
                                      const rs_service_stats_t *st);
void rs_service_set_progress(rs_service_t *svc, rs_service_progress_cb *cb,
                             void *opaque, int64_t interval_ms);

/* Run the loop until *stop != 0 or a configured limit; then stops
 * consuming, flushes Kafka, stores and commits offsets and (if set) saves
 * the model.  Returns RS_OK or the error that ended the loop. */
rs_err_t rs_service_run(rs_service_t *svc, volatile sig_atomic_t *stop,
                        char *errstr, size_t errstr_size);

/* Stats snapshot (copy).  Service thread only. */
void rs_service_stats(const rs_service_t *svc, rs_service_stats_t *st);

/* Read a score record back from Redis as JSON (for the demo's audit
 * lookup).  Service thread only. */
rs_err_t rs_service_lookup(rs_service_t *svc, const char *event_id,
                           char *json, size_t size, char *errstr,
                           size_t errstr_size);

/* A past scored event of the run worth showing (the demo's example): a
 * caught fraud (positive label, scored at or above the review / alert
 * threshold), else the first decision other than approve, else the first
 * scored event; "" if none. */
const char *rs_service_example_id(const rs_service_t *svc);

/* Prometheus text exposition of the service's metrics (the snapshot the
 * service thread publishes every second): events, labels, rejects,
 * latency histograms, consumer lag per partition, model version, updates,
 * drift, feature state, checkpoints, Kafka/Redis errors and in-flight
 * messages; then riskstream_build_info and the process_* metrics
 * (rs_build_info_prometheus).  @locality any thread (e.g. an HTTP thread) */
void rs_service_prometheus(rs_service_t *svc, rs_http_buf_t *out);
/* 1 when the consumer has partitions and the last Redis write succeeded;
 * *why (may be NULL) says what is missing.  @locality any thread */
int rs_service_ready(rs_service_t *svc, const char **why);

/* The model versions as JSON into `out`:
 *   {"serving": V, "kind": K, "trainer": {"version": V, "updates": N,
 *    "published": N, "queue": N, "rollbacks": N},
 *    "versions": [{"version": V, "number": N, "saved_at_ms": T,
 *                  "updates": N, "bytes": N}, ...]}   (newest first)
 * "serving" is the version in the last metrics snapshot (<= 1 s old).
 * @locality any thread */
void rs_service_models_json(rs_service_t *svc, rs_http_buf_t *out);
/* Go back to a stored model version: the trainer loads it from the model
 * store (model.store_dir) and publishes it under its own name; the scorer
 * uses it from its next batch; learning continues from it.  Waits up to
 * timeout_ms.  Errors as rs_trainer_rollback: RS_ERR_NOTFOUND (not in the
 * store: pruned or never saved), RS_ERR_STATE (no store configured),
 * RS_ERR_INVALID, RS_ERR_TIMEOUT, RS_ERR_CORRUPT.  @locality any thread */
rs_err_t rs_service_rollback(rs_service_t *svc, const char *version,
                             int timeout_ms, char *errstr,
                             size_t errstr_size);
/* Clear the latency histograms (e.g. after a benchmark's warm-up).
 * Service thread only (the progress callback runs there). */
void rs_service_reset_latency(rs_service_t *svc);

void rs_service_destroy(rs_service_t *svc);

/* Decision for a score under the service thresholds (pure). */
rs_decision_t rs_decide(const rs_service_conf_t *conf, const char *type,
                        double score);

#ifdef __cplusplus
}
#endif
#endif /* RS_SCORING_H */
