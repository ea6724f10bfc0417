/* alerts.h -- predictive maintenance in the service: failure and repair
 * labels, the per-machine alert policy on every score, the alerts topic
 * payload and the maintenance metrics (internal to the scoring module;
 * the service is its only user).
 *
 * Design note
 * -----------
 * With `maintenance.enabled` the labels topic carries machine events, not
 * fraud labels (docs/maintenance.md):
 *   value > 0   a FAILURE of the label's entity.  Its failure time T is the
 *               event time of the machine's last reading before the report
 *               (the reading a run-to-failure file's last cycle names; a
 *               generator that labels every reading of the failure window
 *               reports them after the failure, while the machine is down).
 *               A machine fails at most once between two readings: further
 *               failure labels before its next reading are the same failure
 *               (counted as repeated).  The trainer learns it as failure-
 *               horizon labels (learner.h rs_learner_failure: its readings in
 *               [T - horizon, T] positives); the alert policy closes the
 *               machine's episode and records the lead time; the feature
 *               baselines start a new life (rs_features_reset).
 *   value 0 with event_id = entity_id (a label about the machine, not
 *               a reading): a REPAIR (maintenance without failure): the same
 *               new life, no lead time; the trainer resolves the ended
 *               life's pending readings as negatives (rs_learner_repair).
 *   value 0 of a reading: nothing to learn (maturity makes running
 *               machines' readings negatives): counted, ignored.
 * Events and labels come on two topics whose consumption is not ordered
 * (the labels topic is small and is read ahead of a lagging events
 * topic): a report is applied in EVENT TIME, once the readings of its
 * machine's input partition reached its label time -- after every reading
 * before the report -- not when it is consumed.  Waiting reports are held
 * in a fixed pool (maintenance.max_machines, one per machine and kind);
 * they are not checkpointed (a restart applies those it reads again).
 * A machine without a last reading here (never seen; this side's table
 * is in the checkpoint and follows partitions since i15part:
 * rs_alerts_part_*) has its failure placed at the label's time.
 *
 * Every score goes through ONE rs_alertpol_t (maint.h) owned by the
 * scoring thread, which sees the scores in input order: with maintenance
 * enabled every label is a machine's, so every event is a machine's
 * reading (a generator's "sensor", a run-to-failure file's "cycle", ...).  Labels are read before the batch's events are
 * scored, so they are queued with their position in the batch and applied
 * between the scores of the readings around them.  The reading's record is
 * decided alert when the policy alerts (a new episode or an escalation),
 * approve otherwise (service.alert_threshold no longer applies to
 * readings); an alert's payload (maint.h rs_alertpol_payload: machine,
 * estimated time to failure, top drifting sensors with reasons, a summary
 * in words, model version) goes to the alerts topic instead of the score
 * record; Redis keeps the score record with its decision, as for every
 * alert.  With maintenance.rul every reading's record carries the RUL
 * estimate (`rul`) of the trainer's head (rul.h), copied from the trainer
 * between batches as of its newest version.  With maintenance.cold_start
 * (the default) the policy and the payload's score are the model's score
 * blended with the baseline deviation while few failures were learned
 * (model/coldstart.h: the reference's weight is the model's miss rate,
 * measured by a second policy fed the model's own score; the counts of
 * failures learned and caught are kept in the service's checkpoint:
 * rs_alerts_ckpt_*);
 * the score record keeps the model's own score as `score` (so `audit
 * --rescore` recomputes it bit for bit) and, when the blend differs from
 * it, the score the policy decided on as `alert_score`.
 *
 * Idle machines: a machine without a reading for more than
 * features.key_ttl of its input partition's event time (the features
 * forget its slot by the same rule) is forgotten here too -- its policy
 * entry (an open episode closes with it), cold-start entries and this
 * side's -- by an incremental sweep (a few slots per event) and at its
 * next lookup, so decisions never depend on when the sweep ran; not
 * while a report of it waits for its readings or is queued (it is placed
 * at the machine's last reading).  It reads again as a new
 * machine.  The changelog writes a tombstone for it ('A' without value,
 * rs_alerts_gone_take), which a restore or a standby copy applies
 * (rs_alerts_machine_drop): a log not yet compacted does not bring it
 * back.  Counted in riskstream_maintenance_machines_expired_total.
 *
 * Memory: the policy's machine table and one of the same size here (last
 * reading, partition, failed-since flag), a label queue and payload buffers
 * of batch_max each: all allocated at creation.
 *
 * Threads: everything on the scoring thread, but rs_alerts_prometheus
 * (any thread: reads the snapshot rs_alerts_snapshot publishes).
 */
#ifndef RS_ALERTS_H
#define RS_ALERTS_H

#include "common/common.h"
#include "features/features.h"
#include "ingest/ingest.h"
#include "model/maint.h"
#include "model/model.h"
#include "scoring/http.h"
#include "scoring/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_alerts_s rs_alerts_t;

/* Service-side settings of the alerts. */
typedef struct rs_alerts_opts_s {
    int batch_max;            /* topics.batch_max                         */
    int64_t key_ttl;          /* features.key_ttl (ms): a machine without
                               * a reading for longer (event time of its
                               * input partition) is forgotten; 0: never  */
} rs_alerts_opts_t;

/* New maintenance state for a service whose maintenance conf is `mc`
 * (copied; must be enabled).  feat, scorer and tr are borrowed and must
 * outlive it; the scoring thread owns them all.  NULL + errstr on a bad
 * conf (RS_ERR_CONFIG). */
rs_alerts_t *rs_alerts_new(const rs_maint_conf_t *mc,
                           const rs_alerts_opts_t *opts, rs_features_t *feat,
                           const rs_model_t *scorer, rs_trainer_t *tr,
                           char *errstr, size_t errstr_size);
void rs_alerts_destroy(rs_alerts_t *al);   /* NULL: no-op */

/* A label at message index `i` of the current batch.  A failure or repair
 * whose label time the event time of its machine's input partition has
 * reached (or of a machine never seen) is due now: the machine's baselines
 * start a new life, and it is queued for the policy and the trainer at its
 * place among the batch's scores.  One that is ahead of the machine's
 * readings (the labels topic is read ahead of the events topic) waits
 * until they catch up (rs_alerts_event).  Always takes the label (returns
 * 1): it is never a fraud label.  The scoring thread. */
int rs_alerts_label(rs_alerts_t *al, int i, const rs_label_t *lb);

/* The event at message index i of the batch (input partition
 * `partition`), before its features: the partition's event time moves
 * on, and the reports waiting for it (rs_alerts_label) are due: their
 * machine's new life starts now and they are queued before this event.
 * No allocation.  The scoring thread. */
void rs_alerts_event(rs_alerts_t *al, int i, const rs_event_t *ev,
                     int32_t partition);

/* The score of the event at message index i (events in increasing i):
 * first the queued labels before i, then, for a reading, the policy step.
 * pub: its index among the batch's published records, or -1 (a replay:
 * state only).  x[dim]: its feature vector; version: the model's.
 * *rul_ms: the reading's estimated remaining useful life (maintenance.rul:
 * the trainer's head as of its newest version, once it learned anything),
 * else 0.  *alert_score: the score the policy decided on (the cold-start
 * blend, coldstart.h) when it differs from `score`, else 0 (the policy
 * decided on `score`, or not a reading).  Returns the reading's decision
 * (alert or approve), or RS_DECISION_UNSPECIFIED for an event that is not
 * a reading (the service decides it).  No allocation.  The scoring
 * thread. */
rs_decision_t rs_alerts_score(rs_alerts_t *al, int i, int pub,
                              const rs_event_t *ev, int32_t partition,
                              float score, const float *x,
                              const char *version, int64_t *rul_ms,
                              double *alert_score);

/* End of the batch's events: the labels after the last one are applied
 * and the queue is emptied.  Also for a batch without events. */
void rs_alerts_batch_end(rs_alerts_t *al);

/* The alerts topic payload of published record `pub` of the batch: the
 * JSON (*len bytes; owned by al until the next batch) of an alert, or ""
 * with *len 0 for a record that must not go to the alerts topic (a
 * duplicate's repeated decision, whose payload is not on record).  The
 * scoring thread. */
const char *rs_alerts_payload(const rs_alerts_t *al, int pub, size_t *len);

/* The maintenance state the service's checkpoint keeps (a record of its
 * own in the service's blob, scoring/svc_ckpt.c): the cold-start blend's
 * failure counts and the model's own policy (coldstart.h state version 3,
 * 48 bytes per machine), so that a restarted service does not enter the
 * cold start again and counts a failure from the own episode open before
 * the restart.  rs_alerts_ckpt_size: its bytes (0: nothing to
 * keep, maintenance.cold_start off); rs_alerts_ckpt_write writes that many
 * to buf; rs_alerts_ckpt_read restores it (RS_ERR_CORRUPT with errstr for
 * a damaged record: nothing changed).  A checkpoint without the record
 * (older, or cold start off when it was taken) leaves the count at 0.
 * The scoring thread (between batches). */
size_t rs_alerts_ckpt_size(const rs_alerts_t *al);
void rs_alerts_ckpt_write(const rs_alerts_t *al, void *buf);
rs_err_t rs_alerts_ckpt_read(rs_alerts_t *al, const void *buf, size_t len,
                             char *errstr, size_t errstr_size);

/* The alert policy's machine table (maint.h rs_alertpol_ckpt_*: open
 * episodes, their start and first alert, latest alerts for the
 * cool-down, escalation levels, debounce counts), another record of the
 * service's checkpoint (svc_ckpt.c RS_SVC_REC_ALERTPOL), written with
 * maintenance enabled, cold start on or off: a restarted service does
 * not alert again on a machine whose episode was open (one alert per
 * episode), its debounce and cool-down go on, and a failure's lead time
 * is measured from the episode's first alert before the restart.  This
 * record is the whole table, restored by the instance that wrote it;
 * the per-machine entries also follow their partitions to other
 * instances (rs_alerts_part_* below; docs/maintenance.md "Scale-out").  rs_alerts_table_size: its bytes;
 * rs_alerts_table_write writes that many to buf; rs_alerts_table_read
 * restores it (RS_ERR_CORRUPT with errstr for a damaged record: the
 * table unchanged).  A checkpoint without the record (older) leaves the
 * table empty.  The scoring thread (between batches). */
size_t rs_alerts_table_size(const rs_alerts_t *al);
void rs_alerts_table_write(const rs_alerts_t *al, void *buf);
rs_err_t rs_alerts_table_read(rs_alerts_t *al, const void *buf, size_t len,
                              char *errstr, size_t errstr_size);

/* Partition-local maintenance state (issue 15, scale-out): per machine,
 * this side's entry (its last reading's event time, its input partition,
 * the failed-since flag), the alert policy's entry (maint.h
 * rs_alertpol_entry_*: open episode, first and latest alerts, level,
 * debounce counts) and the cold-start per-machine state (coldstart.h
 * rs_coldstart_machine_*: the model's own policy's entry, the CUSUMs).
 * It follows the machine's input partition like the entity feature state
 * (pstate.h: the partition checkpoint's maintenance section, changelog
 * records 'A'); the fleet-level parts (cold-start counts and spreads, the
 * counters, the lead-time histogram) stay the instance's.
 * Record (host byte order): u32 magic "RSMP", u32 version
 * RS_ALERTS_PART_VERSION, u64 machines, then per machine 32 bytes (u64
 * machine, i64 last reading's event time or INT64_MIN, i32 partition,
 * u8 failed 0/1, u8 policy entry 0/1, u16 0, u32 cold-start bytes, u32
 * 0), the policy's 48-byte entry if any, the cold-start bytes.
 *  rs_alerts_part_write: the record of the machines of `partition` (-1:
 *    all) into buf; returns its bytes, written only when cap is at least
 *    that.
 *  rs_alerts_machine_write: the same record with one machine (the
 *    changelog's value for it); 0 if the machine has no entry.
 *  rs_alerts_part_merge: check the whole record (magic, version -- a
 *    newer writer's is refused, not guessed --, lengths, a machine of
 *    another partition unless partition is -1, every entry's values),
 *    RS_ERR_CORRUPT with errstr and nothing changed; then set each
 *    machine's entries (replaced: upsert) and move the partition's event
 *    time to its machines' last readings.  *n (may be NULL): machines.
 *  rs_alerts_part_drop: forget the machines of `partition` here (all
 *    three tables), its waiting reports and event time.  *n: machines.
 * No allocation.  The scoring thread (= the service thread: pstate.c and
 * changelog.c call these between batches and in rebalance callbacks). */
#define RS_ALERTS_PART_VERSION 1
size_t rs_alerts_part_write(const rs_alerts_t *al, int32_t partition,
                            void *buf, size_t cap);
size_t rs_alerts_machine_write(const rs_alerts_t *al, const char *machine,
                               void *buf, size_t cap);
rs_err_t rs_alerts_part_merge(rs_alerts_t *al, int32_t partition,
                              const void *buf, size_t len, uint64_t *n,
                              char *errstr, size_t errstr_size);
void rs_alerts_part_drop(rs_alerts_t *al, int32_t partition, uint64_t *n);
/* The machines whose state a failure or repair report changed since the
 * last call (a report applied when its machine's partition reached its
 * label time, maybe in a batch without a message of the machine: the
 * changelog writes their records with that batch); *d valid until the
 * next batch.  Returns how many; *lost (may be NULL): those beyond the
 * list's 4 batch_max (not expected).  The scoring thread. */
typedef struct rs_alerts_dirty_s {
    char machine[RS_ID_MAX];
    int32_t partition;
} rs_alerts_dirty_t;
int rs_alerts_dirty_take(rs_alerts_t *al, const rs_alerts_dirty_t **d,
                         uint64_t *lost);
/* Changelog tombstones of idle machines (design note, "Idle machines").
 * rs_alerts_track_gone(al, 1) starts remembering the machines forgotten
 * as idle (not those of rs_alerts_part_drop / rs_alerts_machine_drop),
 * at most (4 + 2) x batch_max between two takes; 0 stops (and empties
 * the list).  rs_alerts_gone_take returns how many there are, *keys (the
 * machine's key: rs_hash_str of its id, 1 for 0) and *parts (its input
 * partition, -1 if none), owned by al and valid until the next batch;
 * *lost (may be NULL) those beyond the list since the last take.
 * rs_alerts_machine_drop forgets machine `key` (all three tables) if it
 * belongs to `partition` (an 'A' tombstone); 1 if there was one.  No
 * allocation.  The scoring thread. */
void rs_alerts_track_gone(rs_alerts_t *al, int on);
int rs_alerts_gone_take(rs_alerts_t *al, const uint64_t **keys,
                        const int32_t **parts, uint64_t *lost);
int rs_alerts_machine_drop(rs_alerts_t *al, int32_t partition, uint64_t key);

/* Standby copies (standby.h): partitions whose machines are held here
 * as a copy of another instance's state (foreign(o, p) != 0; o
 * borrowed), applied from their changelog ('A' records) and never read
 * here.  Their open episodes are their owner's: rs_alerts_snapshot
 * counts them apart (stats.open_standby), not in stats.pol.open
 * (riskstream_alerts_open), so that the sum over the group's instances
 * is the group's open episodes.  NULL: none (every machine counts).
 * foreign is called on the scoring thread, from rs_alerts_snapshot.
 * rs_standby_new sets it, rs_standby_destroy clears it.  The scoring
 * thread. */
void rs_alerts_set_foreign(rs_alerts_t *al,
                           int (*foreign)(void *o, int32_t partition),
                           void *o);

typedef struct rs_alerts_stats_s {
    rs_alertpol_stats_t pol;  /* readings, alerts, escalations, open,
                               * episodes, suppressed, failures, caught;
                               * open: of the partitions owned here (not
                               * the standby copies')                     */
    uint64_t open_standby;    /* open episodes of standby copies' machines
                               * (counted by their owner)                 */
    uint64_t repairs;         /* repair labels applied                      */
    uint64_t repeated;        /* failure labels of a failure already applied
                               * (no reading of the machine since)          */
    uint64_t ignored;         /* value-0 labels                             */
    uint64_t unplaced;        /* failures of machines without a reading:
                               * placed at the label's time                 */
    uint64_t waited;          /* reports that waited for their machine's
                               * readings to reach their label time         */
    uint64_t unordered;       /* ... that found the pool full: applied when
                               * consumed                                   */
    uint64_t payload_errors;  /* alerts whose payload did not fit: the score
                               * record went to the alerts topic instead    */
    uint64_t expired;         /* machines forgotten as idle (key_ttl)      */
    uint64_t coldstart_failures; /* failures the cold-start blend counts
                               * (n of coldstart.h; restored from the
                               * checkpoint), 0 with it off               */
    uint64_t coldstart_caught; /* ... that the model's own score caught at
                               * least H/3 ahead (c of coldstart.h)       */
    uint64_t caught;          /* failures caught, as eval counts them
                               * (rs_alertpol_lead >= 0; also in pol.caught) */
    rs_hist_t leads;          /* lead times of caught failures, seconds
                               * (rs_alertpol_lead: from the earlier of the
                               * open episode's start and the first alert
                               * within the horizon)                      */
} rs_alerts_stats_t;

/* Publish a copy of the counters for other threads (the service's
 * metrics snapshot, about every second).  With standby copies
 * (rs_alerts_set_foreign) a pass over the machine table (2 x
 * maintenance.max_machines slots) splits the open episodes between
 * owned partitions and copies.  The scoring thread. */
void rs_alerts_snapshot(rs_alerts_t *al);
/* The last snapshot.  Any thread. */
void rs_alerts_stats(rs_alerts_t *al, rs_alerts_stats_t *st);
/* The maintenance metrics of the last snapshot (Prometheus text):
 * riskstream_alerts_open (owned partitions' machines),
 * riskstream_alerts_open_standby, riskstream_alert_episodes_total,
 * riskstream_alert_lead_time_seconds (histogram), ...  Any thread. */
void rs_alerts_prometheus(rs_alerts_t *al, rs_http_buf_t *out);

#ifdef __cplusplus
}
#endif
#endif /* RS_ALERTS_H */
