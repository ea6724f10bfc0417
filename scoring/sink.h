/* sink.h -- where scores go: the Kafka scores/alerts topics and Redis.
 * Last stage of the flow ingest -> features -> model -> scoring -> sinks.
 *
 * Kafka sink (rs_sink_kafka_t)
 *   Every score goes to the scores topic keyed by entity_id; scores decided
 *   review, decline or alert also go to the alerts topic.  Delivery is
 *   asynchronous; the caller groups scores in batches with increasing
 *   sequence numbers and asks rs_sink_kafka_acked() which batches are fully
 *   acknowledged, so it can store the input offsets of exactly those
 *   (at-least-once).  A message whose delivery fails is produced again (a
 *   copy taken in the delivery report) with a retry counter: nothing is
 *   dropped silently; a batch with a failed message simply stays unacked
 *   until the retry is delivered.  Retries may reorder a key's messages.
 *
 *   Exactly-once (rs_sink_kafka_new_txn): a transactional producer.  The
 *   owner publishes inside transactions (txn_begin .. txn_commit) and
 *   commits the input positions IN the transaction
 *   (rs_sink_kafka_txn_commit with rs_ingest_group_metadata()): the
 *   scores/alerts of a transaction and the consumer group's offsets
 *   become visible together (read_committed consumers) or not at all.
 *   rs_sink_kafka_acked() then means "committed": batches are
 *   acknowledged when their transaction commits.  The sink keeps a copy
 *   of every message of the open transaction, so after an abort the next
 *   txn_begin produces them again: abort + begin + commit with the same
 *   positions redoes the transaction without re-processing its input.
 *   The consumer must run in exactly-once mode too
 *   (rs_ingest_conf_t.exactly_once: read_committed, no commits of its
 *   own).
 *
 * Redis sink (rs_sink_redis_t) -- key schema (prefix default "rs:"):
 *   <prefix>score:<event_id>           STRING  score record, compact
 *                                              (redis.record_format, format
 *                                              below) or as JSON (the bytes
 *                                              the scores topic got); PX
 *                                              ttl, NX.  Every read returns
 *                                              the JSON either way
 *   <prefix>entity:<entity_id>:scores  ZSET    member event_id, score
 *                                              event_time_ms; one ZADD,
 *                                              PEXPIRE ttl and trim per
 *                                              entity of a batch; only the
 *                                              newest entity_index_max kept
 *   <prefix>input:<event_id>           STRING  scoring inputs of the event
 *                                              (binary model input log,
 *                                              rs_model_rescore), PX
 *                                              input_ttl; only for events
 *                                              the caller logs
 *   <prefix>alerts                     ZSET    member event_id, score
 *                                              event_time_ms, of decisions
 *                                              review/decline/alert only;
 *                                              one ZADD, PEXPIRE ttl and
 *                                              trim per batch with an
 *                                              alert; the newest
 *                                              alert_index_max kept
 *   <prefix>outcome:<event_id>         STRING  an analyst's outcome (JSON,
 *                                              written by the HTTP API's
 *                                              label action), PX ttl
 *   <prefix>model:current              STRING  current model version
 *   <prefix>model:<version>            STRING  model metadata JSON
 *   The compact record (redis.record_format: compact, the default): every
 *   field rs_score_to_json() writes, in its order, without names:
 *     0x01 (magic: a JSON record starts with '{'), then
 *     str event_id, str entity_id, dbl score, int decision,
 *     str model_version, int event_time_ms, int scored_at_ms - event_time,
 *     int latency_us, uint flags, int rul, dbl alert_score,
 *     n + n x (str event_id, int event_time_ms - event_time, dbl amount,
 *              str counterparty_id, dbl weight)        attended events
 *     n + n x (str name, dbl value, dbl contribution, str text)  contribs
 *     n + n x (uint expert, dbl gate_weight)                     experts
 *     n + n x str                                                reasons
 *     present [str type, str counterparty_id, dbl amount,
 *              n + n x (str name, dbl value), n + n x (str name, str value)]
 *   n / present: 1 byte; str: 1 length byte + the bytes (no NUL); uint: a
 *   LEB128 varint, int: zigzag varint; dbl: tag 0 (+0.0), tag 1 + 4 bytes
 *   (a float32 that is the double exactly) or tag 2 + 8 bytes (the
 *   double's bits), little endian.  Readers turn it into the JSON the
 *   scores topic got (rs_redis_rec_json): the same bytes, as the record
 *   keeps every field bit for bit.  A record the form cannot hold (a
 *   string without NUL in its buffer, a count out of range) is stored as
 *   JSON.  ~40 % of the JSON's bytes (measured: ops/bench/redis_cost.py).
 *   Writes are idempotent: score and input records are SET ... NX (the
 *   first record of an event stays the record; a replay cannot replace it
 *   with a different decision) and the indexes are ZADDs of the same
 *   members, so at-least-once input gives exactly one record per event.
 *
 *   Two ways to write:
 *   - rs_sink_redis_enqueue() (the service): batches are encoded (RESP) by
 *     the owner thread into a bounded byte buffer (redis.buffer_bytes) and
 *     written by a writer thread owned by the sink, with its own hiredis
 *     connection, several batches pipelined per round trip.  A batch
 *     leaves the buffer only once Redis answered all of its commands;
 *     after a connection loss the writer reconnects with backoff (50 ms
 *     doubling to 2 s) and writes the batch again (idempotent).  An outage
 *     is logged once when it starts and once when it ends.  A full buffer
 *     is backpressure: RS_ERR_AGAIN, nothing queued.
 *     rs_sink_redis_done() is the watermark of written batches.  The writer
 *     thread and its buffer are created by the first enqueue, so tools
 *     that only read (audit, the HTTP API) never start one.
 *   - rs_sink_redis_write() (tools, tests): one synchronous pipelined round
 *     trip on the owner's connection.  Connection loss is RS_ERR_IO
 *     (retriable): the next call reconnects.
 *   Reads (get_score, get_input, entity_scores, ping) and set_model use
 *   the owner's connection; they work while the writer runs.  A read whose
 *   connection turns out dead (Redis restarted) reconnects and is tried
 *   once more.
 *   Note: hiredis writes with write(2); a lost connection can raise
 *   SIGPIPE.  rs_sink_redis_new() sets SIGPIPE to ignored if it still has
 *   its default disposition (which would kill the process).
 *
 * Nothing here allocates per score: encode buffers and command vectors are
 * allocated at creation, the Redis write buffer at the first enqueue
 * (hiredis keeps its own output buffer).
 *
 * Threads: each sink is owned by one thread (the service loop), including
 * its delivery callbacks, which are served from that thread's calls.  The
 * *_stats() functions may be called from any thread, and so may
 * rs_sink_redis_done(), rs_sink_redis_wait() and rs_sink_redis_healthy().
 * The Redis writer thread is internal: it owns its connection and touches
 * nothing of the owner's but the buffer (under the sink's mutex).
 */
#ifndef RS_SINK_H
#define RS_SINK_H

#include "common/common.h"
#include "common/config.h"
#include "ingest/ingest.h" /* rs_ingest_pos_t, group metadata (Kafka sink) */
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- Kafka */

typedef struct rs_sink_kafka_s rs_sink_kafka_t;

/* Create the scores/alerts producer (idempotent, linger.ms 5; `props`, the
 * `kafka:` passthrough section, may override).  Brokers: `bootstrap` if
 * non-NULL and non-empty, else bootstrap.servers in props.  Records are
 * encoded as `fmt`.  topic_alerts may be NULL or "" to disable alerts.
 * Returns NULL with errstr on failure.  @locality the owner thread */
rs_sink_kafka_t *rs_sink_kafka_new(const rs_kv_t *props, const char *bootstrap,
                                   const char *topic_scores,
                                   const char *topic_alerts, rs_format_t fmt,
                                   char *errstr, size_t errstr_size);

/* Queue one score as part of batch `batch_seq` (>= 1; batches are
 * published in non-decreasing order, and never after their
 * rs_sink_kafka_batch_end()).  The record is copied: `sc` may be reused at
 * once.  If the local queue is full, serves delivery reports and retries
 * for up to 1 s (backpressure), then returns RS_ERR_AGAIN with nothing
 * queued.  A message librdkafka refuses synchronously for another reason
 * (e.g. a topic error that briefly clears the topic's metadata) is kept in
 * the retry list and counted as outstanding: RS_OK, delivered later, its
 * batch acknowledged only then (transactional: the transaction becomes
 * abortable instead, see rs_sink_kafka_txn_commit).  RS_ERR_STATE:
 * batch_seq went backwards, or (transactional) no open transaction;
 * RS_ERR_KAFKA: fatal producer error.  @locality the owner thread */
rs_err_t rs_sink_kafka_publish(rs_sink_kafka_t *sink, const rs_score_t *sc,
                               uint64_t batch_seq);

/* The same with the record already encoded: buf[0..len) in the sink's
 * format (rs_sink_kafka_format; e.g. from rs_score_encode_batch, so the
 * bytes encoded once for an event go to Kafka and Redis alike).  `sc`
 * gives the key (entity_id) and the decision (alerts); buf is copied and
 * may be reused at once.  Errors as rs_sink_kafka_publish.
 * @locality the owner thread */
rs_err_t rs_sink_kafka_publish_encoded(rs_sink_kafka_t *sink,
                                       const rs_score_t *sc, const void *buf,
                                       size_t len, uint64_t batch_seq);

/* The same, but the alerts topic (for a decision that goes there) gets
 * abuf[0..alen) instead of the record: the service's maintenance alerts
 * (scoring/alerts.h); alen 0: nothing goes to the alerts topic.  abuf
 * NULL: the record, as rs_sink_kafka_publish_encoded.  Errors as rs_sink_kafka_publish.  @locality the owner thread */
rs_err_t rs_sink_kafka_publish_alert(rs_sink_kafka_t *sink,
                                     const rs_score_t *sc, const void *buf,
                                     size_t len, const void *abuf,
                                     size_t alen, uint64_t batch_seq);

/* The payload the alerts topic gets for record i of a batch (the service's
 * maintenance alerts, scoring/alerts.h): as abuf/alen of
 * rs_sink_kafka_publish_alert -- NULL: the record; non-NULL with *len 0:
 * nothing goes to the alerts topic.  Called on the owner thread, inside
 * rs_sink_kafka_publish_batch. */
typedef const void *rs_sink_alert_fn(void *opaque, int i, size_t *len);

/* Publish records [*next, n) of batch `batch_seq` at once: record i is
 * sc[i] (key, decision) encoded as bufs[i][0..lens[i]) in the sink's
 * format; its alert (a decision that goes there) gets the payload
 * alert_fn(alert_opaque, i, ..) gives (alert_fn NULL: the record).  The
 * same messages in the same order per topic as rs_sink_kafka_publish_alert
 * called for each i in turn -- so the same per partition -- but handed to
 * librdkafka as one run per topic (rd_kafka_produce_batch).  Every payload
 * and key is copied before the call returns: the caller may reuse bufs,
 * sc and the alert payloads at once -- unless the sink holds
 * (rs_sink_kafka_set_hold) and `copy` is 0: then bufs[i][0..lens[i]) are
 * produced without a copy and must stay valid and unchanged until
 * rs_sink_kafka_acked() >= batch_seq (or rs_sink_kafka_destroy returned);
 * sc and the alert_fn payloads may still be reused at once.  `copy` 1:
 * this batch is copied whatever the hold (the service's spare arena set,
 * whose bytes the next such batch overwrites: the service counts these
 * as riskstream_kafka_copied_batches_total).  On return *next is the first record
 * not published; each record before it is published whole (its score and
 * its alert).  A full local queue: serves delivery reports and retries for
 * up to 1 s, then RS_ERR_AGAIN with *next moved past what is queued (call
 * again from there).  Other errors as rs_sink_kafka_publish; a record
 * refused for another reason is kept as there.  @locality the owner
 * thread */
rs_err_t rs_sink_kafka_publish_batch(rs_sink_kafka_t *sink,
                                     const rs_score_t *sc,
                                     const void *const *bufs,
                                     const size_t *lens, int n, int *next,
                                     rs_sink_alert_fn *alert_fn,
                                     void *alert_opaque, uint64_t batch_seq,
                                     int copy);

/* Zero-copy records (on 1): from now on rs_sink_kafka_publish_batch does
 * not copy the records' payloads; librdkafka reads them until each
 * message's delivery report, so the caller keeps a batch's bytes until
 * rs_sink_kafka_acked() >= its batch_seq.  A message whose delivery fails
 * is copied in its report (and produced again from the copy) before its
 * batch can be acknowledged; one refused synchronously is copied at once;
 * destroy serves every report before it returns.  Saves librdkafka's copy
 * of each record (its payload allocation and free).  RS_ERR_STATE for a
 * transactional sink: it copies every message of the open transaction
 * for the redo after an abort, so it never holds the caller's bytes.
 * @locality the owner thread */
rs_err_t rs_sink_kafka_set_hold(rs_sink_kafka_t *sink, int on);
/* 1 if the sink holds the records' bytes (rs_sink_kafka_set_hold).
 * @locality the owner thread */
int rs_sink_kafka_holds(const rs_sink_kafka_t *sink);

/* The format records are published in (rs_sink_kafka_new's `fmt`).
 * @locality any thread (immutable) */
rs_format_t rs_sink_kafka_format(const rs_sink_kafka_t *sink);

/* Declare that every message of the batches <= batch_seq is published
 * (also for a batch with no message at all).  Idempotent.
 * @locality the owner thread */
rs_err_t rs_sink_kafka_batch_end(rs_sink_kafka_t *sink, uint64_t batch_seq);

/* Highest batch_seq such that every batch <= it was ended and all of its
 * messages are delivered (transactional: and committed, or discarded by
 * rs_sink_kafka_txn_abort(RS_SINK_TXN_DISCARD)); 0 if none.  Does not poll: call
 * rs_sink_kafka_poll() to serve delivery reports.  @locality the owner
 * thread */
uint64_t rs_sink_kafka_acked(rs_sink_kafka_t *sink);

/* Serve delivery reports (waiting up to timeout_ms for the first) and
 * re-produce failed messages.  RS_ERR_KAFKA if the producer hit a fatal
 * error (the service must stop; unacked batches stay unacked).
 * @locality the owner thread */
rs_err_t rs_sink_kafka_poll(rs_sink_kafka_t *sink, int timeout_ms);

/* Poll until every queued message is delivered or timeout_ms passed
 * (RS_ERR_TIMEOUT).  @locality the owner thread */
rs_err_t rs_sink_kafka_flush(rs_sink_kafka_t *sink, int timeout_ms);

typedef struct rs_sink_kafka_stats_s {
    uint64_t published;   /* scores queued                                */
    uint64_t alerts;      /* alert copies queued                          */
    uint64_t delivered;   /* messages acknowledged (scores + alerts)      */
    uint64_t failed;      /* delivery reports with an error               */
    uint64_t retries;     /* re-produce attempts after a failure          */
    uint64_t queue_full;  /* publish calls that hit a full local queue    */
    int64_t inflight;     /* messages queued and not yet acknowledged    */
    uint64_t acked_seq;   /* last rs_sink_kafka_acked() value             */
    uint64_t txn_commits; /* transactions committed (transactional mode)  */
    uint64_t txn_aborts;  /* transactions aborted                         */
} rs_sink_kafka_stats_t;

/* Counter snapshot.  @locality any thread (relaxed atomics) */
void rs_sink_kafka_stats(const rs_sink_kafka_t *sink,
                         rs_sink_kafka_stats_t *st);

/* Flush (up to 10 s; undelivered messages are reported at error level)
 * and free.  Transactional: an open transaction is aborted first (its
 * messages discarded).  NULL is a no-op.  @locality the owner thread */
void rs_sink_kafka_destroy(rs_sink_kafka_t *sink);

/* ------------------------------------------- Kafka: exactly-once mode */

/* Like rs_sink_kafka_new, but transactional with transactional.id
 * `transactional_id` (non-empty): stable across restarts of one service
 * instance and unique among instances (e.g. "<group_id>-<instance>").
 * Creation runs init_transactions (up to 30 s): it aborts whatever an
 * earlier instance with the same id left open and fences that instance
 * (its next transactional call fails, fatal).  transactional.id in
 * `props` is RS_ERR_CONFIG here and in rs_sink_kafka_new.  Mind
 * transaction.timeout.ms (librdkafka default 60 s; set it with
 * producer.transaction.timeout.ms): a transaction open longer is aborted
 * by the broker.  Returns NULL with errstr on failure.
 * @locality the owner thread */
rs_sink_kafka_t *rs_sink_kafka_new_txn(const rs_kv_t *props,
                                       const char *bootstrap,
                                       const char *topic_scores,
                                       const char *topic_alerts,
                                       rs_format_t fmt,
                                       const char *transactional_id,
                                       char *errstr, size_t errstr_size);

/* Errors of the transactional calls (errstr/logs say which Kafka error):
 *   RS_ERR_TIMEOUT  retriable: the call did not finish in time (e.g. the
 *                   coordinator is slow or moving, messages undelivered
 *                   yet); the transaction is still open: call the same
 *                   function again with the same arguments.
 *   RS_ERR_AGAIN    abortable: the transaction cannot commit -- a message
 *                   of it was not delivered (or refused), the broker
 *                   refused its offsets (e.g. ILLEGAL_GENERATION or
 *                   UNKNOWN_MEMBER_ID after a rebalance), or it timed out
 *                   (transaction.timeout.ms).  Call
 *                   rs_sink_kafka_txn_abort(RS_SINK_TXN_RETRY), then
 *                   rs_sink_kafka_txn_begin() (which produces the aborted
 *                   messages again) and commit again with the same
 *                   positions; after a rebalance use
 *                   RS_SINK_TXN_DISCARD instead (the new owner redoes
 *                   those partitions).
 *   RS_ERR_KAFKA    fatal: the producer is unusable -- PRODUCER_FENCED
 *                   (a newer instance with the same transactional id),
 *                   TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TXN_STATE
 *                   and other fatal errors.  Stop; restart from the state
 *                   checkpoint (replayed input is flagged, rs_msg_t.replay).
 *   RS_ERR_STATE    misuse: not transactional, no open transaction (or
 *                   one already open for begin).
 *   RS_ERR_INVALID  bad arguments.                                      */

/* Begin a transaction.  If the previous one was aborted with
 * RS_SINK_TXN_RETRY, its messages are produced again into this one (into
 * their original batches).  RS_OK, RS_ERR_STATE, RS_ERR_AGAIN (producing
 * the kept messages failed: abort again), RS_ERR_KAFKA (fatal).
 * @locality the owner thread */
rs_err_t rs_sink_kafka_txn_begin(rs_sink_kafka_t *sink);

/* Commit the open transaction with the input positions pos[0..n) (one per
 * partition, offset = next offset to read, i.e. last processed + 1;
 * entries with offset < 0 are skipped; n may be 0), sent to the consumer
 * group of `cgmd` (rs_ingest_group_metadata(); owned by the caller) as
 * part of the transaction.  topics[RS_MSG_TOPIC_EVENTS /
 * RS_MSG_TOPIC_LABELS] are the input topic names.  Ends every batch
 * published so far (rs_sink_kafka_batch_end) and waits for their
 * delivery, then sends the offsets and commits, all within timeout_ms.
 * On RS_OK every batch published so far is acknowledged
 * (rs_sink_kafka_acked) and the kept copies are dropped.  Errors: see
 * above.  @locality the owner thread */
rs_err_t rs_sink_kafka_txn_commit(rs_sink_kafka_t *sink,
                                  const rs_ingest_pos_t *pos, int n,
                                  const char *const topics[2],
                                  rd_kafka_consumer_group_metadata_t *cgmd,
                                  int timeout_ms, char *errstr,
                                  size_t errstr_size);

#define RS_SINK_TXN_RETRY 0   /* keep the messages: the next begin redoes */
#define RS_SINK_TXN_DISCARD 1 /* drop them (partitions revoked or lost,
                               * shutdown): their batches count as done  */

/* Abort the open transaction: its messages are discarded by the brokers
 * (read_committed consumers never see them) and its offsets are not
 * committed.  flags RS_SINK_TXN_RETRY: the messages are kept and produced
 * again by the next rs_sink_kafka_txn_begin(); RS_SINK_TXN_DISCARD: they
 * are dropped and their batches acknowledged as done (nothing more will
 * come of them).  RS_OK also when no transaction is open.  RS_ERR_TIMEOUT
 * (retriable: call again), RS_ERR_KAFKA (fatal), RS_ERR_STATE (not
 * transactional).  @locality the owner thread */
rs_err_t rs_sink_kafka_txn_abort(rs_sink_kafka_t *sink, int flags,
                                 int timeout_ms, char *errstr,
                                 size_t errstr_size);

/* 1 if a transaction is open.  @locality the owner thread */
int rs_sink_kafka_txn_open(const rs_sink_kafka_t *sink);

/* One more topic in the transactions (issue 13: the state changelog,
 * changelog.h, so a committed transaction holds scores + state changes +
 * input offsets and an aborted one none of them).  Its delivery reports go
 * to dr(opaque, partition, offset, failed) on the owner thread (inside
 * poll, flush and commit); a failure also makes the open transaction
 * abortable, like a failed score.  Set once per sink: the topic cannot
 * change, but the same topic with dr NULL stops the reports (before
 * `opaque` goes away; messages kept for a redo can still be produced).
 * RS_ERR_STATE: not transactional, or another topic is set.
 * @locality the owner thread */
typedef void rs_sink_txn_dr_fn(void *opaque, int32_t partition,
                               int64_t offset, int failed);
rs_err_t rs_sink_kafka_txn_topic(rs_sink_kafka_t *sink, const char *topic,
                                 rs_sink_txn_dr_fn *dr, void *opaque);

/* A message to that topic in the open transaction: partition given, key
 * [klen], value [vlen] (NULL or 0 bytes: a tombstone), both copied.  Kept
 * for a redo (RS_SINK_TXN_RETRY) and committed or discarded with the
 * transaction, like the scores, but counted in no batch.  A message
 * refused (or a queue still full after ~10 s) makes the transaction
 * abortable: the commit answers RS_ERR_AGAIN and the redo produces it.
 * RS_OK; RS_ERR_STATE: no open transaction or no topic set (nothing
 * produced); RS_ERR_KAFKA: fatal.  @locality the owner thread */
rs_err_t rs_sink_kafka_txn_produce(rs_sink_kafka_t *sink, int32_t partition,
                                   const void *key, size_t klen,
                                   const void *val, size_t vlen);

/* ------------------------------------------------- Kafka: analysts' labels
 *
 * The label action of the HTTP API: one Label to the labels topic (keyed
 * by entity id, encoded as `fmt`), acknowledged before the action answers,
 * so an analyst's decision reaches the model like any other label. */

typedef struct rs_sink_label_s rs_sink_label_t;

/* An idempotent producer for `topic`; brokers and `props` as for
 * rs_sink_kafka_new.  NULL with errstr on failure (RS_ERR_CONFIG material
 * for a bad property).  @locality any thread */
rs_sink_label_t *rs_sink_label_new(const rs_kv_t *props, const char *bootstrap,
                                   const char *topic, rs_format_t fmt,
                                   char *errstr, size_t errstr_size);

/* Produce `lb` (validated first: RS_ERR_INVALID) and wait up to timeout_ms
 * for its delivery report: RS_OK once Kafka acknowledged it, RS_ERR_KAFKA
 * (refused or failed, errstr says why) or RS_ERR_TIMEOUT (it may still be
 * delivered later).  @locality any thread, concurrently */
rs_err_t rs_sink_label_send(rs_sink_label_t *s, const rs_label_t *lb,
                            int timeout_ms, char *errstr, size_t errstr_size);

/* Flush (up to 5 s) and free.  NULL is a no-op.  No send may be running.
 * @locality any thread */
void rs_sink_label_destroy(rs_sink_label_t *s);

/* ---------------------------------------------------------------- Redis */

/* Section name of rs_redis_conf_t in the YAML config. */
#define RS_REDIS_CONF_SECTION "redis"

/* `redis:` section.  Keys (type, default):
 *   url               string   ""     redis://[[user]:pass@]host[:port][/db]
 *                                     or unix:///path[?db=N]; "" = none
 *                                     configured (ops/run.sh starts one)
 *   ttl               duration 7d     lifetime of score keys and indexes
 *   key_prefix        string   rs:    prefix of every key
 *   entity_index_max  int      1000   scores kept per entity index
 *   timeout           duration 2s     connect and command timeout
 *   password_env      string   ""     env var holding the AUTH password
 *                                     (wins over a password in the URL)
 *   buffer_bytes      int      64 MiB bytes of encoded batches the writer
 *                                     thread may hold (an outage lasts
 *                                     until it is full, then enqueue says
 *                                     RS_ERR_AGAIN); >= 4096
 *   input_ttl         duration 0      lifetime of input logs; 0 = same as
 *                                     ttl (an audit --rescore needs both
 *                                     the score record and its input)
 *   alert_index_max   int      100000 alerts kept in the alert index
 *   record_format     enum     compact  score records as compact (binary,
 *                                     ~40 % of the bytes) or json (the
 *                                     scores topic's bytes, readable with
 *                                     redis-cli); reads take both
 *   tls_verify        bool     true   rediss://: verify the server
 *                                     certificate and name (false: tests)
 *   tls_ca_file       string   ""     CA bundle (PEM); "" = tls_ca_dir or
 *                                     the system store
 *   tls_ca_dir        string   ""     hashed CA directory
 *   tls_cert_file     string   ""     client certificate (mutual TLS)
 *   tls_key_file      string   ""     its key; "" = in tls_cert_file
 *   tls_server_name   string   ""     name checked in the certificate and
 *                                     sent as SNI; "" = the URL's host
 *   flush_delay       duration 1ms    the writer thread holds a batch up
 *                                     to this long after it was queued
 *                                     (or until 16 KiB are queued), so
 *                                     that the batches of a slow stream
 *                                     go to Redis in fewer round trips;
 *                                     0 = each batch at once
 * rediss:// is done by scoring/redis_tls.c (hiredis 0.14 has no TLS).
 */
typedef struct rs_redis_conf_s {
    char url[256];
    int64_t ttl_ms;
    char key_prefix[32];
    int64_t entity_index_max;
    int64_t timeout_ms;
    char password_env[64];
    int64_t buffer_bytes;
    int64_t input_ttl_ms;
    int64_t alert_index_max;
    int tls_verify;
    char tls_ca_file[256];
    char tls_ca_dir[256];
    char tls_cert_file[256];
    char tls_key_file[256];
    char tls_server_name[256];
    int record_format;    /* rs_redis_record_format_t */
    int64_t flush_delay_ms;
} rs_redis_conf_t;

/* redis.record_format: how score records are stored. */
typedef enum rs_redis_record_format_e {
    RS_REDIS_RECORD_COMPACT = 0, /* the compact record (key schema above) */
    RS_REDIS_RECORD_JSON = 1     /* the JSON the scores topic got         */
} rs_redis_record_format_t;

/* First byte of a compact score record. */
#define RS_REDIS_REC_MAGIC 0x01

/* Bytes of a compact record never exceed this. */
#define RS_REDIS_REC_MAX ((size_t)sizeof(rs_score_t) + 1024)

/* Encode `sc` as a compact score record into buf[size] (format in the key
 * schema above): the bytes written, or -1 if buf is too small or the
 * record has a value the form does not take (a string filling its whole
 * buffer without a NUL, a count or decision out of range: store its JSON
 * instead).  RS_REDIS_REC_MAX bytes suffice for any other record.  No
 * allocation, no I/O.  @locality any thread */
int rs_redis_rec_encode(const rs_score_t *sc, uint8_t *buf, size_t size);

/* Decode a compact score record (all of buf[0..len)).  RS_ERR_INVALID with
 * errstr naming the field if it is malformed or truncated (*sc zeroed).
 * No allocation, no I/O.  @locality any thread */
rs_err_t rs_redis_rec_decode(const uint8_t *buf, size_t len, rs_score_t *sc,
                             char *errstr, size_t errstr_size);

/* A stored score value (compact or JSON) as the record's JSON, into
 * json[size] (NUL-terminated), *json_len its length: a JSON value is
 * copied as it is; a compact one is decoded and encoded with
 * rs_score_to_json, which gives the bytes the scores topic got.
 * RS_ERR_TOOBIG (*json_len: the JSON value's length, or 0), RS_ERR_INVALID
 * (a compact record that does not decode).  `scratch`: a record to decode
 * into, or NULL (then one is allocated for the call).  @locality any */
rs_err_t rs_redis_rec_json(const void *val, size_t len, rs_score_t *scratch,
                           char *json, size_t size, size_t *json_len,
                           char *errstr, size_t errstr_size);

/* The field table (static); *n gets the row count.  @locality any */
const rs_conf_field_t *rs_redis_conf_fields(int *n);
/* Fill `sec` (caller-owned, must outlive the registry) to register `conf`
 * as the RS_REDIS_CONF_SECTION section.  @locality any thread */
void rs_redis_conf_section(rs_conf_section_t *sec, rs_redis_conf_t *conf);
/* Set every field to its default (from the table).  @locality any */
void rs_redis_conf_init(rs_redis_conf_t *conf);

/* A parsed Redis URL.  Holds a secret (password): never log it. */
typedef struct rs_redis_url_s {
    int is_unix;          /* 1: unix socket at `path`; 0: TCP host:port */
    int tls;              /* 1: rediss:// (TLS over TCP)               */
    char host[256];
    int port;             /* default 6379                              */
    char path[108];       /* unix socket path (sun_path limit)         */
    int db;               /* default 0                                 */
    char user[64];        /* "" = default user                         */
    char password[128];   /* "" = no AUTH                              */
} rs_redis_url_t;

/* Parse "redis://[[user]:password@]host[:port][/db]" (host may be
 * "[v6addr]"), the same with "rediss://" (TLS) or "unix:///abs/path[?db=N]".
 * Pure, no I/O.
 * RS_ERR_CONFIG with errstr naming the problem (never the password).
 * @locality any thread */
rs_err_t rs_redis_url_parse(const char *url, rs_redis_url_t *out,
                            char *errstr, size_t errstr_size);

typedef struct rs_sink_redis_s rs_sink_redis_t;

/* Validate a configuration without connecting: the URL parses and the
 * password variable, if named, is set.  RS_ERR_CONFIG with errstr naming
 * the key (exit 2 material).  @locality any thread */
rs_err_t rs_redis_conf_check(const rs_redis_conf_t *conf, char *errstr,
                             size_t errstr_size);

/* Connect (AUTH and SELECT as configured).  `conf` is copied.  Returns NULL
 * with errstr on failure: a bad configuration (see rs_redis_conf_check),
 * Redis unreachable, or AUTH/SELECT refused (the service needs Redis at
 * start; the writer thread then survives later outages).  No writer
 * thread yet: rs_sink_redis_start() or the first rs_sink_redis_enqueue()
 * starts it.
 * @locality the owner thread */
rs_sink_redis_t *rs_sink_redis_new(const rs_redis_conf_t *conf, char *errstr,
                                   size_t errstr_size);
/* Start the writer thread now, with its ring (redis.buffer_bytes)
 * allocated lazily zeroed and populated by the background prefault
 * (common.h rs_zero_lazy): a service calls it at start, so the first
 * batches do not pay a first-touch page fault every few KB of commands
 * (~30 us each on a VM).  Tools that only read never call it.  RS_OK, or
 * RS_ERR_NOMEM.  @locality the owner thread */
rs_err_t rs_sink_redis_start(rs_sink_redis_t *sink);

/* Write scores[0..n) now, in one pipelined round trip on the owner's
 * connection (the commands of rs_sink_redis_enqueue_json, without input
 * logs, alert index included); independent of the writer thread.
 * RS_OK: all applied.  RS_ERR_IO: connection lost or timed out (retriable;
 * some commands may have been applied -- rewriting is harmless); the next
 * call reconnects.  RS_ERR_REDIS: Redis answered an error (text in
 * errstr); every reply was read, the connection stays usable.
 * RS_ERR_TOOBIG: a record does not encode.  @locality the owner thread */
rs_err_t rs_sink_redis_write(rs_sink_redis_t *sink, const rs_score_t *scores,
                             int n, char *errstr, size_t errstr_size);

/* The same with the records already encoded as JSON: json[i][0..
 * json_lens[i]) is the record of scores[i] (e.g. from
 * rs_score_encode_batch); scores[] gives the keys and times, and with
 * redis.record_format compact the stored record (json[i] is stored only
 * for a record the compact form does not take).
 * @locality the owner thread */
rs_err_t rs_sink_redis_write_json(rs_sink_redis_t *sink,
                                  const rs_score_t *scores, int n,
                                  const char *const *json,
                                  const size_t *json_lens, char *errstr,
                                  size_t errstr_size);

/* The score JSON of `event_id` into json[size] (NUL-terminated): the
 * bytes the scores topic got, whether the record is stored compact or as
 * JSON (rs_redis_rec_json).  RS_ERR_NOTFOUND if absent (or expired),
 * RS_ERR_TOOBIG if it does not fit, RS_ERR_INVALID if a compact record
 * does not decode, RS_ERR_IO / RS_ERR_REDIS as for write.
 * @locality the owner thread */
rs_err_t rs_sink_redis_get_score(rs_sink_redis_t *sink, const char *event_id,
                                 char *json, size_t size, char *errstr,
                                 size_t errstr_size);

/* Up to `max` event ids of `entity_id` with event time >= since_ms, oldest
 * first, into ids[0..*n).  *n = 0 if the entity is unknown.
 * @locality the owner thread */
rs_err_t rs_sink_redis_entity_scores(rs_sink_redis_t *sink,
                                     const char *entity_id, int64_t since_ms,
                                     char ids[][RS_ID_MAX], int max, int *n,
                                     char *errstr, size_t errstr_size);

/* ------------------------------------------------ Redis: for analysts */

/* One index entry: an event id and its event time. */
typedef struct rs_redis_hit_s {
    char id[RS_ID_MAX];
    int64_t t_ms;
} rs_redis_hit_t;

/* Entries of the alert index (entity_id NULL) or of `entity_id`'s index
 * with min_ms <= event time <= max_ms, NEWEST first (equal times in
 * reverse id order), skipping the first `offset`, up to `max`, into
 * hits[0..*n).  *n = 0 for an unknown entity.  @locality the owner */
rs_err_t rs_sink_redis_index_newest(rs_sink_redis_t *sink,
                                    const char *entity_id, int64_t min_ms,
                                    int64_t max_ms, int offset,
                                    rs_redis_hit_t *hits, int max, int *n,
                                    char *errstr, size_t errstr_size);

/* Which record rs_sink_redis_mget reads. */
typedef enum rs_redis_rec_e {
    RS_REDIS_SCORE = 0,   /* <prefix>score:<id>   */
    RS_REDIS_OUTCOME = 1  /* <prefix>outcome:<id> */
} rs_redis_rec_t;

/* Called for each id, in order: the value (not NUL-terminated; valid only
 * during the call) or NULL when absent.  Score records come as their JSON
 * whichever way they are stored (rs_redis_rec_json; a compact record that
 * does not decode comes as NULL, logged). */
typedef void (*rs_redis_value_fn)(void *opaque, int i, const char *val,
                                  size_t len);

/* The records of ids[0..n) in one MGET; fn(opaque, i, ...) for each.
 * Allocates its argument vector (a read path, not the scoring one).
 * RS_ERR_IO / RS_ERR_REDIS as for the other reads.  @locality the owner */
rs_err_t rs_sink_redis_mget(rs_sink_redis_t *sink, rs_redis_rec_t kind,
                            const char *const *ids, int n,
                            rs_redis_value_fn fn, void *opaque, char *errstr,
                            size_t errstr_size);

/* SET <prefix>outcome:<event_id> json PX ttl, NX if `nx`: RS_ERR_STATE if
 * the event already has an outcome then.  @locality the owner */
rs_err_t rs_sink_redis_set_outcome(rs_sink_redis_t *sink,
                                   const char *event_id, const char *json,
                                   int nx, char *errstr, size_t errstr_size);
/* DEL <prefix>outcome:<event_id> (undo a claim whose label could not be
 * delivered).  @locality the owner */
rs_err_t rs_sink_redis_del_outcome(rs_sink_redis_t *sink,
                                   const char *event_id, char *errstr,
                                   size_t errstr_size);

/* SET <prefix>model:<version> json_meta and <prefix>model:current version
 * (no TTL), in one round trip.  @locality the owner thread */
rs_err_t rs_sink_redis_set_model(rs_sink_redis_t *sink, const char *version,
                                 const char *json_meta, char *errstr,
                                 size_t errstr_size);

/* PING (reconnecting if needed): readiness checks.  @locality owner */
rs_err_t rs_sink_redis_ping(rs_sink_redis_t *sink, char *errstr,
                            size_t errstr_size);

/* ---------------------------------------------- Redis: async writer
 *
 * Batches carry a sequence number `seq` (>= 1, non-decreasing; the same
 * numbers as the Kafka sink's batches).  A batch should be queued by one
 * call: done counts what was queued, so if a batch is queued in several
 * calls, done may pass it while a later part is still to come. */

/* Queue scores[0..n) of batch `seq` for the writer thread, encoding each
 * as JSON (rs_sink_redis_enqueue_json does the rest; the service encodes
 * once for Kafka and Redis and calls that directly).
 * @locality the owner thread */
rs_err_t rs_sink_redis_enqueue(rs_sink_redis_t *sink, const rs_score_t *scores,
                               int n, const void *const *logs,
                               const size_t *log_lens, uint64_t seq);

/* Queue the records json[i][0..json_lens[i]) of scores[0..n) (the JSON of
 * scores[i], e.g. from rs_score_encode_batch) of batch `seq` for the
 * writer thread.  With redis.record_format compact (the default) the
 * stored record is the compact encoding of scores[i] instead (json[i]
 * only for a record the compact form does not take).  The commands of a
 * batch, in this order:
 *   per score      SET <prefix>score:<event_id> record PX ttl NX, and if
 *                  `logs` and logs[i] are non-NULL SET
 *                  <prefix>input:<event_id> logs[i][0..log_lens[i]) PX
 *                  input_ttl NX;
 *   per entity     ZADD <prefix>entity:<entity_id>:scores with every
 *   of the batch   (event_time_ms, event_id) of the batch, then PEXPIRE
 *                  ttl and ZREMRANGEBYRANK 0 -(entity_index_max + 1) once
 *                  (the same index and expiry as after one ZADD + PEXPIRE
 *                  + trim per score: an entity seen k times in a batch
 *                  costs 3 commands instead of 3k);
 *   per batch      if any score of the batch is decided review, decline
 *                  or alert: ZADD <prefix>alerts with the (event_time_ms,
 *                  event_id) of each of them, PEXPIRE ttl and
 *                  ZREMRANGEBYRANK 0 -(alert_index_max + 1), once.
 * So 1 + 3 d commands per score, d = distinct entities / scores of the
 * batch, plus 3 for a batch with an alert.  Everything is encoded into the
 * bounded buffer (redis.buffer_bytes) at once: scores, json and logs may
 * be reused when this returns.  No allocation once the scratch fits the
 * largest batch (but the first call allocates the buffer and starts the
 * writer thread).
 * n == 0 queues nothing and only moves the batch number on (an empty
 * batch is done as soon as the batches before it are).
 * RS_OK: queued (written later, never dropped: it leaves the buffer only
 * when Redis answered all of its commands).
 * RS_ERR_AGAIN: not enough room (Redis slow or down), nothing queued: the
 * caller pauses consumption and retries the same call later.
 * RS_ERR_TOOBIG: the batch alone is larger than the buffer or a record
 * does not encode (nothing queued; split the batch).
 * RS_ERR_STATE: seq went backwards; RS_ERR_INVALID: seq 0, n < 0, no
 * json for n > 0, logs without log_lens.
 * RS_ERR_NOMEM: the writer thread could not be started.
 * @locality the owner thread */
rs_err_t rs_sink_redis_enqueue_json(rs_sink_redis_t *sink,
                                    const rs_score_t *scores, int n,
                                    const char *const *json,
                                    const size_t *json_lens,
                                    const void *const *logs,
                                    const size_t *log_lens, uint64_t seq);

/* The same with compact records made beforehand: recs[i][0..
 * rec_lens[i]) is rs_redis_rec_encode(&scores[i]) -- e.g. made by the
 * service's records stage on a worker thread while the record was still
 * in that core's cache, so the owner thread only copies the bytes --, and
 * is stored as it is with redis.record_format compact (ignored with
 * json).  recs NULL, or recs[i] NULL (a record the compact form does not
 * take, a duplicate's record made later): encoded here as by
 * rs_sink_redis_enqueue_json.  The bytes are not checked: they must be
 * the record of scores[i] (what reads return is decoded from them).
 * Errors as rs_sink_redis_enqueue_json (RS_ERR_INVALID also for recs
 * without rec_lens).  @locality the owner thread */
rs_err_t rs_sink_redis_enqueue_recs(rs_sink_redis_t *sink,
                                    const rs_score_t *scores, int n,
                                    const char *const *json,
                                    const size_t *json_lens,
                                    const void *const *recs,
                                    const size_t *rec_lens,
                                    const void *const *logs,
                                    const size_t *log_lens, uint64_t seq);

/* redis.record_format of the sink (rs_redis_record_format_t): whether
 * compact records made beforehand are of use.  @locality any thread
 * (immutable) */
int rs_sink_redis_record_format(const rs_sink_redis_t *sink);

/* Highest seq such that every batch <= seq that was queued is written (0
 * if none).  Never decreases.  @locality any thread */
uint64_t rs_sink_redis_done(const rs_sink_redis_t *sink);

/* Wait until rs_sink_redis_done() >= seq: RS_OK, or RS_ERR_TIMEOUT after
 * timeout_ms (0: do not wait; < 0: no limit).  @locality any thread */
rs_err_t rs_sink_redis_wait(rs_sink_redis_t *sink, uint64_t seq,
                            int timeout_ms);

/* 1 if the writer's last attempt (a write, or the PING it sends after 1 s
 * without work) succeeded, 0 during an outage (readiness).  1 before the
 * writer starts (rs_sink_redis_new() connected).  @locality any thread */
int rs_sink_redis_healthy(const rs_sink_redis_t *sink);

/* The input log of `event_id` into buf[cap], *len = its size (also when
 * it does not fit: RS_ERR_TOOBIG, nothing copied).  RS_ERR_NOTFOUND if not
 * logged (or expired); RS_ERR_IO / RS_ERR_REDIS as for write.
 * @locality the owner thread */
rs_err_t rs_sink_redis_get_input(rs_sink_redis_t *sink, const char *event_id,
                                 void *buf, size_t cap, size_t *len,
                                 char *errstr, size_t errstr_size);

typedef struct rs_sink_redis_stats_s {
    /* owner connection (rs_sink_redis_write and the reads) */
    uint64_t writes;      /* rs_sink_redis_write calls that succeeded    */
    uint64_t scores;      /* scores written by rs_sink_redis_write       */
    uint64_t io_errors;   /* connection losses / timeouts                */
    uint64_t errors;      /* error replies                               */
    uint64_t reconnects;  /* successful connects after the first         */
    /* writer thread (rs_sink_redis_enqueue) */
    uint64_t buffer_bytes;   /* bytes queued now (incl. being written)   */
    uint64_t buffer_max;     /* capacity: redis.buffer_bytes             */
    uint64_t buffer_peak;    /* highest buffer_bytes so far              */
    uint64_t queued_batches; /* enqueue calls not yet written            */
    uint64_t buffer_full;    /* enqueue calls refused with RS_ERR_AGAIN  */
    uint64_t written;        /* scores written by the writer             */
    uint64_t inputs;         /* input logs written by the writer         */
    uint64_t write_errors;   /* failed attempts (connect, I/O, retriable
                              * error reply), each retried               */
    uint64_t rejected;       /* commands refused for good (WRONGTYPE,
                              * ERR): logged, their batch counts written */
    uint64_t outages;        /* outages started (healthy 1 -> 0)         */
    uint64_t flushes;        /* the writer's round trips (each sends the
                              * entries queued, up to a pipeline's worth;
                              * redis.flush_delay makes them fewer)      */
    uint64_t done_seq;       /* rs_sink_redis_done()                     */
    int healthy;             /* rs_sink_redis_healthy()                  */
} rs_sink_redis_stats_t;

/* Counter snapshot.  @locality any thread (relaxed atomics) */
void rs_sink_redis_stats(const rs_sink_redis_t *sink,
                         rs_sink_redis_stats_t *st);

/* Stop the writer (it gets up to 10 s to write what is queued; batches
 * left are reported at error level: their offsets were never stored, so
 * they are consumed again after a restart), disconnect and free.  NULL is
 * a no-op.  No other thread may still be in rs_sink_redis_wait/_done/
 * _stats.  @locality the owner thread */
void rs_sink_redis_destroy(rs_sink_redis_t *sink);

#ifdef __cplusplus
}
#endif
#endif /* RS_SINK_H */
