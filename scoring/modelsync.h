/* modelsync.h -- one model across the instances of a consumer group:
 * every published version goes to a compacted model topic, and every
 * instance periodically combines what the others learned (model/combine.h
 * has the rule).  Internal to the scoring module (the service is its only
 * user).
 *
 * Design note
 * -----------
 * Each instance learns from the labels of its own partitions (its trainer,
 * scoring/trainer.h).  With `sync.enabled`:
 *
 *   trainer thread                         sync thread
 *   publish a version (tag = instance) --> produce it to <group>-models,
 *     + its knowledge, lineage file         keyed by the instance id
 *   every sync.period:                      consume the topic from the
 *     plan (model/combine.h) over the   <--   beginning: the latest version
 *     latest version of every instance        of every other instance
 *     AVERAGE / ADOPT -> the trainer learns
 *     from the result and publishes it
 *     (stored locally, so audit --rescore
 *     finds it; produced, keyed by us)
 *
 * The topic is compacted (cleanup.policy=compact, one partition,
 * max.message.bytes = sync.max_bytes), created by riskstream when it does
 * not exist; only the latest message per key matters, so compaction,
 * retention and a late joiner reading from the beginning lose nothing.  A
 * message is the version's bytes (rs_model_save), its knowledge vector and,
 * for a combination, its inputs and weights (model/combine.h); a malformed
 * one, or one of another lineage (kind, architecture, features, learning
 * settings: the "<kind>-<8 hex>" of its name), is counted and ignored.
 * Beside each stored version <store>/<version>.rsm the module keeps
 * <version>.sync, the same encoding without the model: what the version
 * knows, so a restart or a rollback continues with the right counts.
 *
 * Versions are named "<kind>-<8 hex>-<n>.<instance>" (learned here) or
 * "<kind>-<8 hex>-<n>.avg<k>-<8 hex>" (a combination of k versions): names
 * are unique across instances, and a score's version is always in the
 * store of the instance that scored it.
 *
 * With the embedded broker (no topics.brokers) there is only one instance:
 * the module is not created.  A single instance on a real broker publishes
 * its versions and never finds anything to combine.
 *
 * Threads: rs_msync_new / hooks / destroy -- the service thread (destroy
 * after the trainer, whose thread calls the hooks); the hooks -- the
 * trainer thread; rs_msync_metrics -- any thread (the HTTP pool); the sync
 * thread is internal.
 */
#ifndef RS_MODELSYNC_H
#define RS_MODELSYNC_H

#include "common/common.h"
#include "common/config.h"
#include "model/model.h"
#include "scoring/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `sync:` section. */
typedef struct rs_msync_conf_s {
    int enabled;              /* bool                                      */
    int64_t period_ms;        /* combine this often                        */
    char instance[RS_MODEL_TAG_MAX + 1]; /* "" = derived (hostname-hash)   */
    char topic[256];          /* "" = "<group>-models"                     */
    int64_t max_bytes;        /* largest message (a model's bytes + ~10 KB)*/
} rs_msync_conf_t;

void rs_msync_conf_section(rs_conf_section_t *sec, rs_msync_conf_t *conf);

typedef struct rs_msync_s rs_msync_t;

/* Start the sync of one instance: the producer and the consumer of the
 * model topic (created if missing), and the sync thread.  kafka: the
 * `kafka:` section (scoped keys as for the service's clients); bootstrap:
 * the brokers; group: the consumer group (topic name "<group>-models");
 * store_dir: the trainer's model store; tconf: the trainer's settings
 * (received versions are loaded with them).  Does not block on the
 * brokers: a topic that cannot be created or read yet is retried by the
 * sync thread (logged).  NULL + errstr: RS_ERR_CONFIG (a bad sync.* value
 * or kafka property), RS_ERR_KAFKA (a client cannot be made). */
rs_msync_t *rs_msync_new(const rs_msync_conf_t *conf, const rs_kv_t *kafka,
                         const char *bootstrap, const char *group,
                         const char *store_dir, const rs_model_conf_t *tconf,
                         rs_err_t *err_out, char *errstr, size_t errstr_size);

/* The trainer's hooks (rs_trainer_opts_t.hooks) of this sync; `ms` must
 * outlive the trainer. */
void rs_msync_hooks(rs_msync_t *ms, rs_trainer_hooks_t *hooks);

/* The instance id in use (sync.instance or derived). */
const char *rs_msync_instance(const rs_msync_t *ms);

typedef struct rs_msync_stats_s {
    uint64_t received;        /* valid versions of other instances        */
    uint64_t malformed;       /* messages refused by the decoder / loader */
    uint64_t lineage;         /* versions of another lineage, ignored     */
    uint64_t published;       /* our versions delivered to the topic      */
    uint64_t publish_errors;  /* ... that could not be                    */
    uint64_t combines;        /* AVERAGE results learned from             */
    uint64_t adoptions;       /* other instances' versions taken as such  */
    uint64_t combine_errors;  /* combinations that failed (logged)        */
    int instances;            /* seen on the topic, this one included     */
    int64_t last_combine_ms;  /* wall clock of the last combine/adoption,
                               * 0 = never                                */
    char version[RS_VERSION_MAX]; /* the trainer's newest version          */
    uint64_t know_updates;    /* ... what it knows: updates, labels, and  */
    uint64_t know_labels;
    int know_origins;         /* ... from how many origins                */
} rs_msync_stats_t;

/* Counter snapshot.  Any thread. */
void rs_msync_stats(rs_msync_t *ms, rs_msync_stats_t *st);

struct rs_http_buf_s;
/* Prometheus lines of the sync (riskstream_model_sync_*).  Any thread. */
void rs_msync_metrics(rs_msync_t *ms, struct rs_http_buf_s *b);

/* Deliver what is in flight (up to 10 s), stop the thread, free.  NULL is
 * a no-op.  After the trainer is destroyed. */
void rs_msync_destroy(rs_msync_t *ms);

#ifdef __cplusplus
}
#endif
#endif /* RS_MODELSYNC_H */
