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
 * Redis sink (rs_sink_redis_t) -- key schema (prefix default "rs:"):
 *   <prefix>score:<event_id>           STRING  score record as JSON, PX ttl
 *   <prefix>entity:<entity_id>:scores  ZSET    member event_id, score
 *                                              event_time_ms; PEXPIRE ttl;
 *                                              only the newest
 *                                              entity_index_max kept
 *   <prefix>model:current              STRING  current model version
 *   <prefix>model:<version>            STRING  model metadata JSON
 *   Writes are idempotent (a replay rewrites the same keys), so
 *   at-least-once input gives exactly one record per event in Redis.
 *   A batch is one pipelined round trip.  Connection loss is RS_ERR_IO
 *   (retriable): the next call reconnects.
 *   Note: hiredis writes with write(2); a lost connection can raise
 *   SIGPIPE.  rs_sink_redis_new() sets SIGPIPE to ignored if it still has
 *   its default disposition (which would kill the process).
 *
 * Nothing here allocates per score: encode buffers and command vectors are
 * allocated at creation (hiredis keeps its own output buffer).
 *
 * Threads: each sink is owned by one thread (the service loop), including
 * its delivery callbacks, which are served from that thread's calls.  The
 * *_stats() functions may be called from any thread.
 */
#ifndef RS_SINK_H
#define RS_SINK_H

#include "common/common.h"
#include "common/config.h"
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
 * batch acknowledged only then.  RS_ERR_STATE: batch_seq went backwards;
 * RS_ERR_KAFKA: fatal producer error.  @locality the owner thread */
rs_err_t rs_sink_kafka_publish(rs_sink_kafka_t *sink, const rs_score_t *sc,
                               uint64_t batch_seq);

/* Declare that every message of the batches <= batch_seq is published
 * (also for a batch with no message at all).  Idempotent.
 * @locality the owner thread */
rs_err_t rs_sink_kafka_batch_end(rs_sink_kafka_t *sink, uint64_t batch_seq);

/* Highest batch_seq such that every batch <= it was ended and all of its
 * messages are delivered; 0 if none.  Does not poll: call
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
} rs_sink_kafka_stats_t;

/* Counter snapshot.  @locality any thread (relaxed atomics) */
void rs_sink_kafka_stats(const rs_sink_kafka_t *sink,
                         rs_sink_kafka_stats_t *st);

/* Flush (up to 10 s; undelivered messages are reported at error level)
 * and free.  NULL is a no-op.  @locality the owner thread */
void rs_sink_kafka_destroy(rs_sink_kafka_t *sink);

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
 */
typedef struct rs_redis_conf_s {
    char url[256];
    int64_t ttl_ms;
    char key_prefix[32];
    int64_t entity_index_max;
    int64_t timeout_ms;
    char password_env[64];
} rs_redis_conf_t;

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
    char host[256];
    int port;             /* default 6379                              */
    char path[108];       /* unix socket path (sun_path limit)         */
    int db;               /* default 0                                 */
    char user[64];        /* "" = default user                         */
    char password[128];   /* "" = no AUTH                              */
} rs_redis_url_t;

/* Parse "redis://[[user]:password@]host[:port][/db]" (host may be
 * "[v6addr]") or "unix:///abs/path[?db=N]".  Pure, no I/O.
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
 * Redis unreachable, or AUTH/SELECT refused.  @locality the owner thread */
rs_sink_redis_t *rs_sink_redis_new(const rs_redis_conf_t *conf, char *errstr,
                                   size_t errstr_size);

/* Write scores[0..n) in one pipelined round trip (4 commands per score:
 * SET score PX, ZADD index, PEXPIRE index, ZREMRANGEBYRANK index).
 * RS_OK: all applied.  RS_ERR_IO: connection lost or timed out (retriable;
 * some commands may have been applied -- rewriting is harmless); the next
 * call reconnects.  RS_ERR_REDIS: Redis answered an error (text in
 * errstr); every reply was read, the connection stays usable.
 * RS_ERR_TOOBIG: a record does not encode.  @locality the owner thread */
rs_err_t rs_sink_redis_write(rs_sink_redis_t *sink, const rs_score_t *scores,
                             int n, char *errstr, size_t errstr_size);

/* The score JSON of `event_id` into json[size].  RS_ERR_NOTFOUND if absent
 * (or expired), RS_ERR_TOOBIG if it does not fit, RS_ERR_IO / RS_ERR_REDIS
 * as for write.  @locality the owner thread */
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

/* SET <prefix>model:<version> json_meta and <prefix>model:current version
 * (no TTL), in one round trip.  @locality the owner thread */
rs_err_t rs_sink_redis_set_model(rs_sink_redis_t *sink, const char *version,
                                 const char *json_meta, char *errstr,
                                 size_t errstr_size);

/* PING (reconnecting if needed): readiness checks.  @locality owner */
rs_err_t rs_sink_redis_ping(rs_sink_redis_t *sink, char *errstr,
                            size_t errstr_size);

typedef struct rs_sink_redis_stats_s {
    uint64_t writes;      /* rs_sink_redis_write calls that succeeded    */
    uint64_t scores;      /* scores written                              */
    uint64_t io_errors;   /* connection losses / timeouts                */
    uint64_t errors;      /* error replies                               */
    uint64_t reconnects;  /* successful connects after the first         */
} rs_sink_redis_stats_t;

/* Counter snapshot.  @locality any thread (relaxed atomics) */
void rs_sink_redis_stats(const rs_sink_redis_t *sink,
                         rs_sink_redis_stats_t *st);

/* Disconnect and free.  NULL is a no-op.  @locality the owner thread */
void rs_sink_redis_destroy(rs_sink_redis_t *sink);

#ifdef __cplusplus
}
#endif
#endif /* RS_SINK_H */
