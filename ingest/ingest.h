/* ingest.h -- Kafka in: the embedded broker, the consumer and shared Kafka
 * client plumbing.  First stage of the flow
 * ingest -> features -> model -> scoring -> sinks.
 *
 * Design notes
 * - Embedded broker (rs_cluster_t): librdkafka's mock cluster on a dedicated
 *   rd_kafka_t, listening on 127.0.0.1 ephemeral ports, so external clients
 *   (kcat) can use it.  The mock keeps only ~5 MB per partition: it is for
 *   demos and tests, not for retention.
 * - Consumer (rs_ingest_t): ONE consumer group subscribed to the events and
 *   labels topics.  At-least-once: enable.auto.offset.store=false, so an
 *   offset only becomes committable when the caller hands the message back
 *   through rs_ingest_store() -- after its results were acknowledged by the
 *   sinks.  Auto-commit then commits stored offsets in the background;
 *   rs_ingest_commit_sync() and rs_ingest_destroy() commit synchronously.
 * - Exactly-once mode (rs_ingest_conf_t.exactly_once, set by the service
 *   for `service.delivery: exactly_once`): the input offsets are committed
 *   only inside the Kafka sink's transactions (rs_sink_kafka_txn_commit,
 *   with rs_ingest_group_metadata()), never by the consumer itself:
 *   enable.auto.commit=false, rs_ingest_store* store nothing (they only
 *   wait for dead-letter acknowledgements), rs_ingest_commit_sync is a
 *   no-op.  The consumer reads with isolation.level=read_committed, so
 *   input written by transactional producers is seen only once committed.
 * - Replay: rs_ingest_set_start() may start a partition below its
 *   committed offset (a state checkpoint older than the last commit).  The
 *   messages below the committed offset were already processed (their
 *   results are published): they come back with rs_msg_t.replay = 1, to be
 *   applied to the state but not published again.  A replayed reject is
 *   not dead-lettered again.
 * - Offset out of range (the committed or checkpoint offset is no longer
 *   on the broker, e.g. deleted by retention while the service was down):
 *   the consumer runs with auto.offset.reset=error and applies the
 *   topics.offset_reset policy itself, so every reset is logged at error
 *   level with topic, partition, offset and policy, and counted
 *   (stats.offset_resets).  A partition without any committed offset
 *   starts per the same policy (logged at info, not counted).
 * - Event time bound: an event dated more than topics.future_skew ahead
 *   of max(wall clock, newest event time accepted on its partition) is
 *   bad input (reason "event_time_ms ... ahead ..."): one such event would
 *   otherwise move every watermark downstream (feature windows expire,
 *   pending events resolve as negatives).  The partition term keeps
 *   streams that legitimately run ahead of the clock (simulations) going
 *   once they started; replays of the past are never affected.  The
 *   partition watermarks are not persisted: after a restart the bound is
 *   the wall clock until a partition has accepted an event.
 * - Bad input never stops a partition: a message that fails to decode or
 *   validate (or is empty, or bigger than RS_MSG_MAX) is counted, produced
 *   to the dead-letter topic with its original key and payload plus headers
 *   "rs-error" (reason) and "rs-source" ("topic/partition/offset"), logged
 *   at warn (rate-limited) and returned as RS_MSG_REJECT, so the caller
 *   stores its offset with the rest of the batch.  An offset is never
 *   stored past a reject whose DLQ copy is not yet acknowledged.
 * - No allocation per message: rs_ingest_poll decodes straight into the
 *   caller's preallocated rs_msg_t array.  rs_ingest_poll_ref (the
 *   service's) copies no message at all: it returns pointers to the task
 *   merge's slots, where the message was decoded (by the read-ahead, slots
 *   exchanged), and those slots stay the caller's, unchanged, until its
 *   next poll: only then does the merge take them back (imerge.h,
 *   rs_imerge_reclaim), so a rebalance, an offset reset or a pause served
 *   while the caller works on the batch drops queued messages, never the
 *   batch's.
 * - Dynamic batching: a poll waits (up to poll_timeout) only for its first
 *   message and then takes what librdkafka already holds, up to
 *   batch_max.  The batch size therefore follows the backlog with no
 *   tuning: when the consumer is caught up a batch is the few messages
 *   that arrived while the previous one was scored (latency stays that of
 *   one small batch); under load the fetched backlog fills batch_max
 *   (the model's GEMMs fill up and the service's workers each get a
 *   slice).  The batch grows with the rate until the service keeps up:
 *   scoring n messages takes T(n) = c0 + c1 n, so at r messages/s a batch
 *   settles at n = r c0 / (1 - r c1).  The service's metric
 *   riskstream_batch_messages shows the distribution.
 * - Task merge (topics.task_merge, on by default; ingest/imerge.h): the
 *   messages of each task -- events partition N with labels partition N --
 *   are returned in time order (event_time_ms, label_time_ms; an event
 *   before a label at equal time), as Kafka Streams orders a task's
 *   records.  A message waits (read, not returned: its offset is never
 *   stored ahead of it) while the other topic of its task has nothing read
 *   and is not at its end (PARTITION_EOF -- the consumer forces
 *   enable.partition.eof -- or its next offset at the cached high
 *   watermark), and, with topics.max_task_idle > 0, that long after it was
 *   read.  So a backlog, a replay or a restore hands labels and events to
 *   the state in one order whatever the fetch interleaving; on a live
 *   stream only with max_task_idle above the produce-to-fetch skew.  Tasks
 *   never wait for each other; rejects go as soon as they are the head of
 *   their partition; a partition holding 4 batch_max (at least 4096)
 *   messages has its fetch paused until half went out.  Rebalances and
 *   offset resets drop what waits for the partitions concerned (the next
 *   reader reads it again); rs_ingest_behind and rs_ingest_lag count it.
 * - Latency: with the embedded broker (topics.brokers empty) the consumer
 *   defaults to fetch.wait.max.ms=5, because the mock holds every Fetch
 *   for that long even when data arrives (librdkafka's default 500 ms
 *   would add ~500 ms per event).  Real brokers answer at once.
 *
 * - Mock quirk: once a group had members, a new member's JoinGroup waits
 *   session.timeout.ms - 1 s (44 s by default) even if the group is empty.
 *   Tests that restart a consumer set kafka.consumer.session.timeout.ms.
 *
 * Kafka client properties (the `kafka:` passthrough section of the config,
 * an rs_kv_t) are applied with rd_kafka_conf_set one by one; an invalid one
 * is RS_ERR_CONFIG naming the key.  "consumer.<prop>" / "producer.<prop>"
 * apply <prop> to that client type only (see rs_kafka_conf_build_for).
 * librdkafka's own logs go through rs_log (module "kafka").  Property
 * values are never logged.
 *
 * - Read-ahead (topics.read_ahead, on by default; ingest/ingest_ra.c):
 *   an ingest thread reads the consumer queue with
 *   rd_kafka_consume_batch_queue and decodes the payloads into a double
 *   buffer while the owner scores the previous batch; rs_ingest_poll
 *   takes the buffer.  Everything with state stays on the owner thread
 *   (replay flags, time bound, dead letters, the task merge, rebalances:
 *   the callback is forwarded to the owner and runs inside
 *   rs_ingest_poll as before), so the messages, their order and the
 *   offsets are those without it.  Read-ahead messages of partitions
 *   that leave are dropped (never stored: the next reader reads them).
 *
 * Threads: an rs_ingest_t is owned by one thread (the service loop); the
 * only exception is rs_ingest_stats(), which may be called from any thread.
 * With the read-ahead, librdkafka's error and log callbacks run on the
 * ingest thread.
 * rs_cluster_t functions may be called from any thread.
 */
#ifndef RS_INGEST_H
#define RS_INGEST_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/common.h"
#include "common/config.h"
#include "common/pool.h"
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------- embedded broker */

typedef struct rs_cluster_s rs_cluster_t;

/* Start an in-process mock Kafka cluster of `brokers` brokers and create
 * `ntopics` topics with `partitions` partitions each (replication factor
 * min(3, brokers)).  Returns NULL with errstr on failure.  Free with
 * rs_cluster_destroy(); clients connected to it should be destroyed first.
 * @locality any thread */
rs_cluster_t *rs_cluster_new(int brokers, const char *const *topics,
                             int ntopics, int partitions, char *errstr,
                             size_t errstr_size);

/* "127.0.0.1:port,..." -- owned by the cluster, valid until destroy.
 * @locality any thread */
const char *rs_cluster_bootstraps(const rs_cluster_t *cluster);

/* The mock cluster, for fault injection (rd_kafka_mock_push_request_errors,
 * rd_kafka_mock_broker_set_down, ...).  Owned by the cluster.
 * @locality any thread */
rd_kafka_mock_cluster_t *rs_cluster_mock(rs_cluster_t *cluster);

/* Retention watch.  The mock keeps about 5 MB per partition and drops the
 * oldest message sets beyond that without a word.  rs_cluster_watch()
 * starts a thread that reads, every interval_ms, the low watermark (log
 * start offset) of every partition of the cluster's topics: a log start
 * above 0 means that many messages are gone.  The first drop of a topic
 * is logged at error level, and the running total again at most every
 * 30 s while it grows.  Calling it twice is a no-op.  RS_ERR_KAFKA if the
 * watcher's client cannot be made.  @locality any thread */
rs_err_t rs_cluster_watch(rs_cluster_t *cluster, int interval_ms,
                          char *errstr, size_t errstr_size);

/* Messages of `topic` dropped by retention so far (sum over partitions of
 * the log start offset): queried now when `refresh` (needs the watcher),
 * else the watcher's last reading.  0 for a topic never dropped from, -1
 * if the topic is not one of the cluster's or nothing was read yet.
 * @locality any thread */
int64_t rs_cluster_dropped(rs_cluster_t *cluster, const char *topic,
                           int refresh);

/* Stop the cluster (and its watcher).  NULL is a no-op.
 * @locality any thread */
void rs_cluster_destroy(rs_cluster_t *cluster);

/* ----------------------------------------------------------- configuration */

/* Section name of rs_ingest_conf_t in the YAML config. */
#define RS_INGEST_CONF_SECTION "topics"

typedef enum rs_offset_reset_e {
    RS_OFFSET_EARLIEST = 0,
    RS_OFFSET_LATEST = 1
} rs_offset_reset_t;

/* `topics:` section.  Filled with defaults by rs_conf_add_section() or
 * rs_ingest_conf_init().  Keys (type, default):
 *   brokers          string   ""          "" = start the embedded broker
 *   group_id         string   riskstream  consumer group
 *   events           string   events      events topic
 *   labels           string   labels      labels topic
 *   scores           string   scores      scores topic
 *   alerts           string   alerts      alerts topic (review/decline/alert)
 *   dlq              string   events.dlq  dead-letter topic
 *   events_format    enum     json        json|protobuf
 *   labels_format    enum     json        json|protobuf
 *   partitions       int      4           partitions of embedded topics
 *   batch_max        int      512         messages per poll
 *   poll_timeout     duration 100ms       wait for the first message
 *   offset_reset     enum     earliest    earliest|latest (no committed
 *                                         offset, or out of range)
 *   future_skew      duration 1h          an event dated more than this
 *                                         ahead of both the wall clock and
 *                                         the newest event time of its
 *                                         partition is rejected (DLQ);
 *                                         0 = off
 *   task_merge       bool     true        hand each task's messages
 *                                         (events/N + labels/N) over in
 *                                         time order (ingest/imerge.h)
 *   max_task_idle    duration 0ms         ... a message waits this long
 *                                         for the other topic of its task
 *                                         when that one is at its end
 *   read_ahead       bool     true        read and decode the next batch
 *                                         on an ingest thread while this
 *                                         one is scored (ingest_ra.c)
 */
typedef struct rs_ingest_conf_s {
    char brokers[512];
    char group_id[128];
    char topic_events[128];
    char topic_labels[128];
    char topic_scores[128];
    char topic_alerts[128];
    char topic_dlq[128];
    int events_format;     /* rs_format_t */
    int labels_format;     /* rs_format_t */
    int64_t partitions;
    int64_t batch_max;
    int64_t poll_timeout_ms;
    int offset_reset;      /* rs_offset_reset_t */
    int64_t future_skew_ms; /* 0 = no bound on event times ahead       */
    int task_merge;         /* per-task merge by time (imerge.h)       */
    int64_t max_task_idle_ms; /* its idle wait (max.task.idle.ms)      */
    int read_ahead;         /* read + decode on an ingest thread       */
    /* Not a config key (no row in the table; 0 after rs_ingest_conf_init):
     * the service sets it from `service.delivery: exactly_once`.  See the
     * design notes: read_committed, no consumer commits, replay flags. */
    int exactly_once;
} rs_ingest_conf_t;

/* The field table (static, never freed); *n gets the row count.
 * @locality any thread */
const rs_conf_field_t *rs_ingest_conf_fields(int *n);

/* Fill `sec` (caller-owned, must outlive the rs_conf_t it is added to) to
 * register `conf` as the RS_INGEST_CONF_SECTION section.
 * @locality any thread */
void rs_ingest_conf_section(rs_conf_section_t *sec, rs_ingest_conf_t *conf);

/* Set every field of `conf` to its default (from the table).
 * @locality any thread */
void rs_ingest_conf_init(rs_ingest_conf_t *conf);

/* ------------------------------------------------------- Kafka client glue */

/* Build a client configuration for a client of `type` (RD_KAFKA_CONSUMER
 * or RD_KAFKA_PRODUCER; -1: no type): librdkafka's log callback routed to
 * rs_log, an error callback that logs, client.id "riskstream", then the
 * module's {key, value} defaults[0..ndefaults) that `props` does not set,
 * then every property of `props` (may be NULL) in order, then
 * bootstrap.servers = `bootstrap` if non-NULL and non-empty.
 *
 * Scoping: a key "consumer.<prop>" or "producer.<prop>" in props applies
 * <prop> only to clients of that type (and wins over a plain <prop>), so
 * consumer settings in the `kafka:` section do not make producers warn.
 *
 * An invalid property is RS_ERR_CONFIG naming the key (never its value).
 * On success *out is a new conf owned by the caller (pass it to
 * rd_kafka_new, which takes it, or rd_kafka_conf_destroy it).
 * @locality any thread */
rs_err_t rs_kafka_conf_build_for(int type, const rs_kv_t *props,
                                 const char *bootstrap,
                                 const char *const (*defaults)[2],
                                 int ndefaults, rd_kafka_conf_t **out,
                                 char *errstr, size_t errstr_size);

/* rs_kafka_conf_build_for(-1, props, bootstrap, NULL, 0, ...): plain keys
 * only (scoped keys are skipped).  Also the way to validate the `kafka:`
 * section up front (config error -> exit 2).  @locality any thread */
rs_err_t rs_kafka_conf_build(const rs_kv_t *props, const char *bootstrap,
                             rd_kafka_conf_t **out, char *errstr,
                             size_t errstr_size);

/* Validate the `kafka:` section up front, as the service's clients will
 * apply it: every property (scoped ones included) is set on a consumer
 * and on a producer configuration, and transactional.id is refused.
 * RS_ERR_CONFIG naming the key (exit 2 material); nothing is started.
 * @locality any thread */
rs_err_t rs_kafka_conf_check(const rs_kv_t *props, char *errstr,
                             size_t errstr_size);

/* A producer for the CLI generator and tests: idempotent, linger.ms 5,
 * batches of up to 10000 messages, `props` applied on top.  Delivery
 * failures are counted and logged (rate-limited); see
 * rs_kafka_producer_failed().  Free with rd_kafka_flush + rd_kafka_destroy.
 * Returns NULL with errstr on failure.  @locality any thread */
rd_kafka_t *rs_kafka_producer_new(const rs_kv_t *props, const char *bootstrap,
                                  char *errstr, size_t errstr_size);

/* Number of messages whose delivery failed, over every producer made by
 * rs_kafka_producer_new() in this process.  @locality any thread */
uint64_t rs_kafka_producer_failed(void);

/* ---------------------------------------------------------------- consumer */

typedef enum rs_msg_kind_e {
    RS_MSG_EVENT = 0,   /* `ev` is valid                                 */
    RS_MSG_LABEL = 1,   /* `lb` is valid                                 */
    RS_MSG_REJECT = 2   /* bad input, sent to the DLQ; `reason` says why */
} rs_msg_kind_t;

#define RS_MSG_TOPIC_EVENTS 0
#define RS_MSG_TOPIC_LABELS 1

/* One consumed message, decoded.  Plain memory: arrays of these are
 * allocated once by the caller.  Only the fields of `kind` are meaningful
 * (ev for an event, lb for a label, reason for a reject; reason is ""
 * otherwise): the task merge copies no more than those (imerge.h). */
typedef struct rs_msg_s {
    rs_msg_kind_t kind;
    int32_t partition;
    int64_t offset;
    int topic;             /* RS_MSG_TOPIC_EVENTS or RS_MSG_TOPIC_LABELS */
    int64_t produced_ms;   /* Kafka message timestamp, -1 if none        */
    int64_t received_us;   /* rs_clock_mono_us() when polled             */
    int replay;            /* 1: read again below the committed offset of
                            * the partition at its first assignment (see
                            * rs_ingest_set_start): apply to the state,
                            * do not publish.  0 otherwise.             */
    rs_event_t ev;
    rs_label_t lb;
    char reason[160];      /* RS_MSG_REJECT only                         */
} rs_msg_t;

typedef struct rs_ingest_s rs_ingest_t;

/* Create the consumer (and its DLQ producer) and subscribe to
 * conf->topic_events and conf->topic_labels in group conf->group_id.
 * Brokers: `bootstrap` if non-NULL and non-empty, else conf->brokers, else
 * bootstrap.servers from `kafka_props`.  `conf` and `kafka_props` are
 * copied as needed (they need not outlive the consumer).  With
 * conf->exactly_once the consumer gets isolation.level=read_committed and
 * enable.auto.commit=false whatever `kafka_props` say.  transactional.id
 * in `kafka_props` is RS_ERR_CONFIG (it would make the DLQ producer
 * transactional; the Kafka sink sets it in exactly-once mode).  Returns
 * NULL with errstr on failure.  To tell a configuration error (exit 2) from a
 * runtime one, check the properties first with rs_kafka_conf_build().
 * @locality the owner thread */
rs_ingest_t *rs_ingest_new(const rs_ingest_conf_t *conf,
                           const rs_kv_t *kafka_props, const char *bootstrap,
                           char *errstr, size_t errstr_size);

/* Wait up to timeout_ms for the first message, then take whatever else is
 * ready without waiting, up to `max` messages, decoded into msgs[0..n).
 * With the task merge, "ready" means the merge lets it go (design notes):
 * a poll may read messages it does not return yet.
 * Returns n >= 0, or -RS_ERR_KAFKA if the consumer hit a fatal error
 * (the service must stop).  Transient consumer errors are logged and
 * counted, never returned.  Also serves the DLQ producer's callbacks.
 * @locality the owner thread */
int rs_ingest_poll(rs_ingest_t *ing, rs_msg_t *msgs, int max, int timeout_ms);

/* rs_ingest_poll without the copy: the same messages, in the same order,
 * with the same contents (only the fields of their kind are meaningful,
 * as above), out[0..n) pointing at messages owned by ing.  They stay
 * valid and unchanged until the next rs_ingest_poll / rs_ingest_poll_ref
 * or rs_ingest_destroy, whatever is called in between (a rebalance served
 * by rs_ingest_pause, rs_ingest_store_ref, ...); that next poll takes
 * them back, so the caller drops every pointer before it.  With the task
 * merge (the default) these are the merge's slots (no copy); without it,
 * one array of the consumer's (decoded there as rs_ingest_poll does).
 * @locality the owner thread */
int rs_ingest_poll_ref(rs_ingest_t *ing, const rs_msg_t **out, int max,
                       int timeout_ms);

/* Decode the payloads of a poll on `pool`'s workers (the parsers are pure
 * functions; the head of each message, the event-time bound, counters and
 * dead letters stay on the owner thread, in poll order): the messages are
 * exactly those of a decode on one thread.  NULL (the default): on the
 * caller.  The pool is borrowed: it must outlive `ing` or be unset first.
 * @locality the owner thread */
void rs_ingest_set_pool(rs_ingest_t *ing, rs_pool_t *pool);

/* One message the read-ahead read, as handed to a tap (below). */
typedef struct rs_ingest_tap_msg_s {
    int topic;             /* RS_MSG_TOPIC_EVENTS or RS_MSG_TOPIC_LABELS   */
    int32_t partition;
    int64_t offset;
    const void *payload;   /* the Kafka message's bytes: valid during the
                            * call only                                   */
    size_t len;
} rs_ingest_tap_msg_t;

/* Called by the read-ahead thread with every message it read (undecodable
 * ones included, error events and other topics not), a chunk at a time in
 * read order, BEFORE the owner can take them.  `gen` changes whenever
 * what the consumer fetches may have changed (a rebalance, an assign, a
 * seek, a pause: every call between rs_ingest_ctl_begin and _end): within
 * one gen, each partition's messages are the consumer's contiguous read
 * of it (offsets increase; only offsets the consumer never hands out,
 * transaction markers and compacted ones, are missing); across gens
 * nothing is promised.  When gen moved and no message came with it (a
 * revoke, a pause), the tap is called with n = 0 (msgs NULL) and the new
 * gen (once the tap was called with a message); a rebalance is announced
 * so as soon as its callback reaches the read-ahead thread, before that
 * thread waits for the owner to serve it (it reads nothing meanwhile).
 * Must not block for long (the read-ahead waits). */
typedef void rs_ingest_tap_fn(void *opaque, const rs_ingest_tap_msg_t *msgs,
                              int n, uint64_t gen);

/* Install (fn non-NULL) or remove (NULL) the tap.  Removing waits until a
 * tap call in progress has returned: after it, fn is never called again
 * and `opaque` may go.  Without the read-ahead (topics.read_ahead false)
 * the tap is never called.  @locality the owner thread */
void rs_ingest_set_tap(rs_ingest_t *ing, rs_ingest_tap_fn *fn, void *opaque);

/* 1 while the read-ahead waits for the owner to take a full buffer (it
 * reads nothing meanwhile, so the tap gets nothing either); 0 otherwise
 * or without a read-ahead.  @locality any thread (an atomic) */
int rs_ingest_ra_full(rs_ingest_t *ing);

/* The consumer's cached high watermark of (topic, partition) (from its
 * last fetch response: no broker round trip), -1 if unknown (a partition
 * it does not fetch).  @locality any thread (librdkafka's lock) */
int64_t rs_ingest_watermark(rs_ingest_t *ing, int topic, int32_t partition);

/* Mark one consumed message as processed: offset+1 of (topic, partition)
 * becomes committable.  `topic` is rs_msg_t.topic (RS_MSG_TOPIC_*),
 * `offset` is rs_msg_t.offset (the message's own offset).  Call only once
 * every result derived from it (and from every earlier message of the
 * partition) is acknowledged.  If a reject at or before this offset of the
 * partition still awaits its DLQ acknowledgement, waits up to 5 s for it
 * and returns RS_ERR_AGAIN (nothing stored; retry later) if it is still
 * pending.  A partition no longer assigned (after a rebalance) is skipped
 * silently (RS_OK): the new owner re-reads it.  No allocation.
 * Exactly-once mode: nothing is stored (offsets go in the sink's
 * transaction), but the wait for the DLQ is kept: call it for a batch
 * before committing a transaction that includes the batch's positions, so
 * that no reject is committed before its dead-letter copy is acknowledged.
 * @locality the owner thread */
rs_err_t rs_ingest_store_offset(rs_ingest_t *ing, int topic,
                                int32_t partition, int64_t offset);

/* rs_ingest_store_offset() for msgs[0..n), in order; stops at the first
 * error.  @locality the owner thread */
rs_err_t rs_ingest_store(rs_ingest_t *ing, const rs_msg_t *msgs, int n);
/* The same for msgs[0..n) of rs_ingest_poll_ref.  @locality the owner
 * thread */
rs_err_t rs_ingest_store_ref(rs_ingest_t *ing, const rs_msg_t *const *msgs,
                             int n);

/* A position in an input topic: the next offset to read. */
typedef struct rs_ingest_pos_s {
    int32_t topic;       /* RS_MSG_TOPIC_EVENTS or RS_MSG_TOPIC_LABELS */
    int32_t partition;
    int64_t offset;      /* next message not yet applied to the state  */
} rs_ingest_pos_t;

/* Start positions restored from a state checkpoint: the first time each
 * listed partition is assigned to this consumer it starts at `offset`
 * instead of its committed offset, so the messages the restored state
 * does not contain yet are read again (and nothing it already contains is
 * applied twice).  Later assignments use committed offsets.  Copies the
 * list; call before the first rs_ingest_poll().
 *
 * Replay: at that first assignment the consumer also fetches the
 * partition's committed offset C (blocking, in the rebalance, once); if
 * `offset` < C, the messages with offsets < C are returned with
 * rs_msg_t.replay = 1.  If C cannot be fetched (coordinator unavailable
 * for 30 s): in exactly-once mode the consumer fails (rs_ingest_poll
 * returns -RS_ERR_KAFKA: publishing replayed messages again would break
 * the guarantee), otherwise it logs an error and flags nothing.
 * Note for exactly-once commits: send the offsets of published (replay ==
 * 0) messages only; a replayed message's offset is below C, and sending it
 * would move the group's committed offset backwards.
 * @locality the owner thread */
rs_err_t rs_ingest_set_start(rs_ingest_t *ing, const rs_ingest_pos_t *pos,
                             int n);

/* Where an arriving partition starts (rs_ingest_set_assign_cb). */
#define RS_INGEST_OFFSET_NONE     (-1)    /* committed: none yet          */
#define RS_INGEST_OFFSET_UNKNOWN  (-3)    /* committed: could not fetch   */
#define RS_INGEST_START_COMMITTED (-1001) /* start: the committed offset
                                           * (or topics.offset_reset)     */
#define RS_INGEST_START_BEGINNING (-2)    /* start: the log start         */
typedef struct rs_ingest_start_s {
    int32_t topic;      /* RS_MSG_TOPIC_*                                */
    int32_t partition;
    int64_t committed;  /* the group's committed offset, or
                         * RS_INGEST_OFFSET_NONE / _UNKNOWN             */
    int64_t start;      /* in: RS_INGEST_START_COMMITTED; the callback
                         * may set an offset >= 0 or
                         * RS_INGEST_START_BEGINNING                     */
} rs_ingest_start_t;

/* Partitions arriving at this consumer (rebalance, inside rs_ingest_poll,
 * before any of their messages is returned): the owner restores their
 * state and says where each starts.  Messages below the committed offset
 * (a start below it, or the beginning) come back with rs_msg_t.replay =
 * 1: applied to the state, not published.  A committed offset that
 * cannot be fetched for 30 s is fatal in exactly-once mode for a
 * partition the callback starts elsewhere (rs_ingest_poll returns
 * -RS_ERR_KAFKA), else logged (nothing flagged).  The callback may block
 * (a restore); it may call rs_ingest_lag, not rs_ingest_poll.  It runs
 * after the rs_ingest_set_start list (which it overrides). */
typedef void rs_ingest_assign_cb_t(void *opaque, rs_ingest_start_t *parts,
                                   int n);
void rs_ingest_set_assign_cb(rs_ingest_t *ing, rs_ingest_assign_cb_t *cb,
                             void *opaque);

/* 1 while an eager rebalance is between its revocation and the next
 * assignment (every partition left; some may come back).  @locality
 * the owner thread */
int rs_ingest_rebalancing(const rs_ingest_t *ing);

/* Partitions still replaying (below their replay bound) and, *left
 * (may be NULL), the messages they still have to replay.  @locality the
 * owner thread */
int rs_ingest_replaying(rs_ingest_t *ing, int64_t *left);

/* 1 if (topic, partition) has an active replay bound (messages below it
 * still to come).  No I/O.  @locality the owner thread */
int rs_ingest_replaying_part(const rs_ingest_t *ing, int topic,
                             int32_t partition);

/* 1 if the consumer's position in (topic, partition) is below the high
 * watermark its fetcher last saw (messages are waiting; no round trip),
 * or the watermark is not known yet, or the task merge holds messages of
 * it not returned yet.  @locality the owner thread */
int rs_ingest_behind(rs_ingest_t *ing, int topic, int32_t partition);

/* 1 if (topic, partition) is assigned to this consumer now.  @locality
 * the owner thread */
int rs_ingest_owns(rs_ingest_t *ing, int topic, int32_t partition);

/* Consumer lag of one assigned partition: high watermark (as last seen by
 * the fetcher, no network round trip) minus the consumer's position; for
 * a partition that read nothing since its (re-)assignment, minus the
 * offset it was assigned at (the group's committed offset, fetched once
 * per assignment; a reset's BEGINNING / END), not the whole partition;
 * plus the messages the task merge read and holds (not processed yet). */
typedef struct rs_ingest_lag_s {
    int32_t topic;       /* RS_MSG_TOPIC_EVENTS or RS_MSG_TOPIC_LABELS */
    int32_t partition;
    int64_t lag;         /* -1 if not known yet                        */
} rs_ingest_lag_t;

/* Fill out[0..n) for the assigned partitions (at most max); returns n.
 * @locality the owner thread */
int rs_ingest_lag(rs_ingest_t *ing, rs_ingest_lag_t *out, int max);

/* Commit the stored offsets now and wait for the result (shutdown).
 * RS_OK also when there was nothing to commit, and always in exactly-once
 * mode (no-op).  @locality the owner thread */
rs_err_t rs_ingest_commit_sync(rs_ingest_t *ing, char *errstr,
                               size_t errstr_size);

/* Pause / resume fetching on every assigned partition (backpressure).
 * While paused, partitions assigned by a rebalance are paused too.  With
 * the read-ahead, a rebalance the ingest thread is parked in is served
 * first (its callbacks run here, as in rs_ingest_poll).  @locality the
 * owner thread */
rs_err_t rs_ingest_pause(rs_ingest_t *ing);
rs_err_t rs_ingest_resume(rs_ingest_t *ing);

typedef struct rs_ingest_stats_s {
    uint64_t consumed;      /* messages received (all kinds)             */
    uint64_t events;        /* RS_MSG_EVENT returned                     */
    uint64_t labels;        /* RS_MSG_LABEL returned                     */
    uint64_t rejected;      /* RS_MSG_REJECT returned                    */
    uint64_t errors;        /* consumer errors (transient)               */
    uint64_t offset_resets; /* offset out of range -> reset per policy   */
    uint64_t dlq_delivered; /* rejects acknowledged by the DLQ topic     */
    uint64_t dlq_failed;    /* DLQ delivery failures (each retried)      */
    uint64_t dlq_lost;      /* dead letters given up: refused for good or
                             * no room for 10 s (logged at error)        */
    uint64_t future;        /* events rejected: dated beyond
                             * topics.future_skew (also in `rejected`)   */
    int64_t assigned;       /* partitions currently assigned             */
    int64_t rebalances;     /* assignments received                      */
    uint64_t merge_held;    /* task merge: messages read, not returned yet
                             * (waiting for the other topic of their task) */
    uint64_t merge_reordered; /* task merge: returned below their task's
                             * time frontier (arrived after the other topic
                             * was passed as idle: topics.max_task_idle)   */
    /* task merge, continued (rs_imerge_stats_t; /metrics riskstream_task_merge_*) */
    uint64_t merge_held_max;  /* most messages held at once               */
    uint64_t merge_merged;    /* messages handed out by the merge         */
    uint64_t merge_paused;    /* fetch pauses: an input at its hold limit */
    uint64_t merge_end_checks; /* inputs found at their end by the high
                             * watermark (not PARTITION_EOF)              */
    int64_t merge_reorder_behind_ms; /* the last reordered message: how far
                             * behind its task's frontier,                */
    int64_t merge_reorder_late_ms;   /* how late it was read: after the
                             * first of the newer messages of its task
                             * handed over ahead of it (topics.max_task_idle
                             * above this would have merged it in order);
                             * both 0 before any reorder                  */
} rs_ingest_stats_t;

/* Counter snapshot.  @locality any thread (relaxed atomics) */
void rs_ingest_stats(const rs_ingest_t *ing, rs_ingest_stats_t *st);

/* The consumer handle, for advanced use (lag queries).  Owned by ing; do
 * not poll it.  @locality the owner thread */
rd_kafka_t *rs_ingest_handle(rs_ingest_t *ing);

/* The consumer group metadata (group, generation, member id) to send with
 * a transaction's offsets (rs_sink_kafka_txn_commit).  Take it right
 * before each commit: after a rebalance the old generation's metadata
 * makes the commit fail (abortable), which is what fences a member that
 * lost its partitions.  New object owned by the caller: free with
 * rd_kafka_consumer_group_metadata_destroy().  NULL only if out of
 * memory.  @locality the owner thread */
rd_kafka_consumer_group_metadata_t *rs_ingest_group_metadata(rs_ingest_t *ing);

/* 1 if the brokers are librdkafka's mock cluster (embedded or `riskstream
 * broker`: its cluster id), 0 if not, -1 if unknown (no metadata within
 * timeout_ms; waits for the first metadata up to that long).
 * @locality the owner thread */
int rs_ingest_on_mock(rs_ingest_t *ing, int timeout_ms);

/* Partitions leaving this consumer, reported from rs_ingest_poll (the
 * rebalance runs there, on the owner thread).  parts[0..n): topic
 * (RS_MSG_TOPIC_*), partition, offset = the consumer position (next
 * offset to read; -1 if nothing was read).  Valid during the call only.
 * lost == 0: before the partitions are revoked -- what was processed can
 *            still be committed; in exactly-once mode commit the open
 *            transaction here (the new owner starts at the committed
 *            offsets).
 * lost == 1: they were lost (session timeout): another member may own
 *            them already and a commit would be refused; abort the open
 *            transaction (rs_sink_kafka_txn_abort with
 *            RS_SINK_TXN_DISCARD): the new owner produces those results.
 * The callback may call rs_ingest_group_metadata(), rs_ingest_store*(),
 * rs_ingest_lag() but not rs_ingest_poll().  */
typedef void rs_ingest_revoke_cb_t(void *opaque, const rs_ingest_pos_t *parts,
                                   int n, int lost);

/* Install (or with cb NULL remove) the revoke callback.  @locality the
 * owner thread */
void rs_ingest_set_revoke_cb(rs_ingest_t *ing, rs_ingest_revoke_cb_t *cb,
                             void *opaque);

/* Flush the DLQ producer, give the partitions back (pause, unsubscribe,
 * serve the revoke: revoke callback, then the commit of stored offsets;
 * bounded wait, see rs_ingest_leave in ingest.c), close the consumer (it
 * has nothing left to revoke) and free everything.  NULL is a no-op.
 * @locality the owner thread */
void rs_ingest_destroy(rs_ingest_t *ing);

#ifdef __cplusplus
}
#endif
#endif /* RS_INGEST_H */
