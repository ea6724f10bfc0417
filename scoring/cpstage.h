/* cpstage.h -- the counterparty stage: features of every non-entity key
 * (counterparty, categorical fields), exact across the instances of one
 * consumer group.  Part of the scoring stage (ingest -> features -> model
 * -> scoring -> sinks), between the consumer and the feature engine.
 *
 * Design note
 * -----------
 * Events are keyed (and partitioned) by entity, so each instance of a
 * consumer group sees only its partitions; a merchant's events are spread
 * over all of them.  The stage is a global store (Kafka Streams'
 * GlobalKTable): every instance runs one, a thread with its own consumer
 * that reads ALL partitions of the events and labels topics from the
 * beginning (assign(), no group membership, never commits) into a
 * feature store of the non-entity keys (rs_features_t in SHARED scope),
 * in one canonical order -- a k-way merge of the partitions by (time,
 * topic, partition) that waits until every partition has a next message
 * or is at its end (idle for cpstage.idle_wait; "at its end": every offset
 * below the consumer's cached high watermark read, or its PARTITION_EOF,
 * which comes one fetch later) -- so the store's
 * sequence, and every feature it computes, is a function of the topics'
 * contents, not of the fetch interleaving.  For each event it merges, the
 * stage keeps the event's shared features (from the store just before the
 * event) in a per-partition FIFO by offset; the scoring thread takes them
 * by (partition, offset, event id) through rs_cpstage_fill() (bounded
 * wait, cpstage.wait) and computes the entity features itself (its engine
 * in ENTITY scope).  One instance or several: the same path, the same
 * values, bit for bit.
 *
 * One read of the owned partitions (cpstage.feed, rs_cpstage_attach): the
 * scoring consumer's read-ahead hands the stage what it reads before the
 * scoring thread can take it, so a lookup does not wait for the stage's
 * consumer to fetch the event a second time; the core keeps each message
 * once, from whichever reader has it first (rs_cpm_push_from).
 *
 * Labels go through the same merge (by label_time_ms), so label-aware
 * counterparty features (fraud counts and rates) see every label, whatever
 * partition it came in on.
 *
 * A result is kept until the group's committed offset of its partition
 * passes it (queried every second): any instance that gets the partition
 * in a rebalance starts there; positions held for a checkpoint replay
 * (rs_cpstage_hold) are kept too, and so is, on a partition the scoring
 * consumer is assigned, what the feed handed its scoring thread and it
 * has not looked up yet (each partition's events are looked up in offset
 * order): the group may have committed past it, an instance whose session
 * was lost still scoring its read-ahead while another member took the
 * partition over.  More than cpstage.max_pending results
 * pause the merge unless the scoring thread waits for one.
 *
 * Not exact, and counted: a message that arrives on a partition after the
 * merge went past it as idle, older than the merge (live producers lag;
 * riskstream_cpstage_reordered_total; logged once, summed up per minute
 * and at the end with how late they came: the idle_wait that would have
 * merged them in order), a result already dropped or never
 * made (riskstream_cpstage_misses_total{reason="gone"}), a wait beyond
 * cpstage.wait ({reason="timeout"}): those events are scored with their
 * shared features at 0.
 *
 * Cost: every instance decodes every event and label of the topics and
 * keeps the whole non-entity state (docs/features.md, "State and
 * partitions", has the measured figures).
 *
 * Threads: rs_cpstage_new/destroy and rs_cpstage_fill/hold on the service
 * thread; the stage's own thread owns its consumer and feeds the store; it
 * merges, and so does a scoring thread whose result is not there yet
 * (under the stage's mutex, instead of sleeping until the stage thread
 * gets to it);
 * rs_cpstage_stats, rs_cpstage_ready and rs_cpstage_prometheus from any
 * thread (one mutex).
 */
#ifndef RS_CPSTAGE_H
#define RS_CPSTAGE_H

#include <signal.h>

#include "common/common.h"
#include "common/config.h"
#include "common/metrics.h"
#include "features/features.h"
#include "ingest/ingest.h"
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `cpstage:` section (table in cpstage.c; docs/config.md). */
typedef struct rs_cpstage_conf_s {
    int enabled;             /* global store for the non-entity keys      */
    int64_t wait_ms;         /* longest wait for an event's results       */
    int64_t idle_wait_ms;    /* a partition at its end holds the merge    */
    int64_t max_pending;     /* results held before the merge pauses      */
    int64_t buffer;          /* raw messages per partition before its
                              * fetching pauses                           */
    int feed;                /* the read-ahead hands it its messages
                              * (rs_cpstage_attach)                      */
    int64_t fetch_wait_ms;   /* the stage consumer's fetch.wait.max.ms;
                              * RS_CONF_AUTO: 1 ms on librdkafka's mock,
                              * else the consumer's setting               */
} rs_cpstage_conf_t;

/* The field table (static); *n gets the row count.  @locality any */
const rs_conf_field_t *rs_cpstage_conf_fields(int *n);
/* Register `conf` (caller-owned, must outlive the registry) as section
 * "cpstage".  @locality any */
void rs_cpstage_conf_section(rs_conf_section_t *sec, rs_cpstage_conf_t *conf);
/* Defaults from the table.  @locality any */
void rs_cpstage_conf_init(rs_cpstage_conf_t *conf);

/* 1 if `conf` is enabled and the feature layout of `fconf` has a spec of
 * a key other than the entity (else the stage has nothing to do).
 * @locality any thread (compiles nothing: reads the spec list) */
int rs_cpstage_wanted(const rs_cpstage_conf_t *conf,
                      const rs_features_conf_t *fconf);

/* Bytes the stage preallocates for `fconf` (its store: the non-entity
 * tables and an event index), for the start-up memory check.
 * @locality any thread */
uint64_t rs_cpstage_conf_mem(const rs_features_conf_t *fconf);

typedef struct rs_cpstage_s rs_cpstage_t;

/* Everything the stage needs from the service's configuration. */
typedef struct rs_cpstage_opts_s {
    const rs_cpstage_conf_t *conf;
    const rs_features_conf_t *features; /* the full layout (copied)        */
    const rs_ingest_conf_t *ingest;     /* topics, formats, group, skew    */
    const rs_kv_t *kafka;               /* `kafka:` properties              */
    const char *bootstrap;              /* NULL/"": ingest->brokers         */
    int64_t dedup_window_ms, dedup_max; /* the service's duplicate window   */
    int exactly_once;                   /* read_committed                   */
    int on_mock;                        /* the brokers are librdkafka's mock
                                         * (fetch_wait auto)                */
} rs_cpstage_opts_t;

/* Create the stage and start its thread (its consumer connects, finds the
 * partitions and reads from the beginning; Kafka unreachable is retried
 * there, never an error here).  NULL with errstr on a bad configuration
 * (RS_ERR_CONFIG) or a client that cannot be made (RS_ERR_KAFKA).
 * Destroy with rs_cpstage_destroy.  @locality the service thread */
rs_cpstage_t *rs_cpstage_new(const rs_cpstage_opts_t *o, rs_err_t *err_out,
                             char *errstr, size_t errstr_size);
/* Stop the thread, close the consumer, free; first removes the feed's
 * tap from the attached consumer (which must still exist: destroy the
 * stage before it).  NULL is a no-op.  @locality the service thread */
void rs_cpstage_destroy(rs_cpstage_t *cs);

/* One read path for the partitions this instance owns (cpstage.feed; a
 * no-op when false): `ing`'s read-ahead hands the stage every message it
 * reads (rs_ingest_set_tap), before the scoring thread can take it, so
 * the event is in the merge by the time its lookup comes; the stage's own
 * consumer still reads every partition (those of the other instances, and
 * these again: whichever read comes first is merged, the other is
 * dropped by offset), and a partition counts as at its end only if
 * neither consumer's cached high watermark shows data not pushed yet.
 * The features are those of the stage's consumer alone, bit for bit.
 * `ing` is borrowed: it must outlive the stage (rs_cpstage_destroy
 * removes the tap).  Call before the first rs_ingest_poll.
 * @locality the service thread */
void rs_cpstage_attach(rs_cpstage_t *cs, rs_ingest_t *ing);

/* The shared features of event `ev` read at (partition, offset) of the
 * events topic into x[i] for every shared feature i (the other entries
 * are not touched): waits for the stage to merge it -- as long as it
 * takes while the store reads the topics for the first time (start-up:
 * scoring before that would use an incomplete store; Kafka Streams waits
 * for its global stores too), then up to cpstage.wait -- or until *stop
 * (may be NULL) is set.  RS_OK; RS_ERR_TIMEOUT or RS_ERR_NOTFOUND (see
 * the design note: the shared entries are then 0; counted, logged
 * rate-limited).  @locality the service thread */
rs_err_t rs_cpstage_fill(rs_cpstage_t *cs, int32_t partition, int64_t offset,
                         const rs_event_t *ev, float *x,
                         const volatile sig_atomic_t *stop);

/* The same for an event read again below the committed offset to rebuild
 * a partition's state (a restore by replay, parts.h): nothing is published
 * from it, and the stage may have dropped its result already (results are
 * kept down to the group's committed offset only): a result not merged
 * yet is waited for as above; one already dropped sets the shared entries
 * to 0 and is counted in stats.replay_missing, not as a miss (no score is
 * made with it; what it feeds is the sequence model's cached history of
 * the replayed events: docs/features.md, "State and partitions").
 * @locality the service thread */
rs_err_t rs_cpstage_fill_replay(rs_cpstage_t *cs, int32_t partition,
                                int64_t offset, const rs_event_t *ev,
                                float *x, const volatile sig_atomic_t *stop);

/* Start positions of a state checkpoint (rs_ingest_set_start): the
 * results of events partitions from these offsets are kept until the
 * scoring thread has taken one at or past the group's committed offset,
 * so the replay finds them.  Copies.  @locality the service thread */
void rs_cpstage_hold(rs_cpstage_t *cs, const rs_ingest_pos_t *pos, int n);

/* 1 when the store has read every partition to its end once (what the
 * topics held at start); else 0 with *why (static text).  @locality any */
int rs_cpstage_ready(rs_cpstage_t *cs, const char **why);

typedef struct rs_cpstage_stats_s {
    uint64_t events;        /* merged into the store                      */
    uint64_t labels;        /* labels merged                              */
    uint64_t rejected;      /* undecodable / invalid input skipped        */
    uint64_t duplicates;    /* duplicate events skipped (dedup window)    */
    uint64_t reordered;     /* merged out of the canonical order: after a
                             * message of another partition the order puts
                             * after it (rs_cpm_stats_t)                  */
    uint64_t ends_eof;      /* partitions found at their end by the
                             * consumer's PARTITION_EOF                   */
    uint64_t ends_hwm;      /* ... by its cached high watermark, one
                             * fetch sooner (no round trip)               */
    uint64_t held;          /* results kept (pending)                     */
    uint64_t buffered;      /* raw messages waiting for the merge         */
    uint64_t filled;        /* events served to the scoring thread        */
    uint64_t miss_timeout;  /* ... not in time (cpstage.wait)             */
    uint64_t miss_gone;     /* ... dropped or never made                  */
    uint64_t replay_missing;/* replayed events whose result was dropped   */
    uint64_t pauses;        /* merges held back by max_pending            */
    uint64_t merged_waiting;/* messages merged by the scoring thread while
                             * it waited for a result (not the stage's)   */
    uint64_t trims;         /* the group's committed offsets read (every
                             * second; results below them dropped)        */
    int feed;               /* attached to the read-ahead                 */
    uint64_t feed_paused;   /* partitions its consumer does not fetch now:
                             * the feed supplies them                     */
    uint64_t feed_pauses;   /* ... times one was paused so                */
    uint64_t feed_moved;    /* ... all fetched again: the feed's gen moved
                             * (a rebalance, seek or pause of the scoring
                             * consumer)                                  */
    uint64_t feed_late;     /* ... one fetched again: the feed had not
                             * moved there for 1 s with data to read      */
    uint64_t feed_starved;  /* ... one fetched again: a lookup waited for
                             * it with the read-ahead full                */
    uint64_t in_pushed[2];  /* input pushed, [0] its consumer, [1] feed   */
    uint64_t in_dup[2];     /* ... dropped: the other read it first       */
    uint64_t in_ahead[2];   /* ... dropped: ahead of what was pushed      */
    uint64_t cp_keys;       /* live keys in the store                     */
    int64_t frontier_ms;    /* time of the newest merged message          */
    double cpu_s;           /* the stage thread's CPU time                */
    int64_t fetch_wait_ms;  /* its consumer's fetch.wait.max.ms in effect
                             * (cpstage.fetch_wait), -1 if unknown        */
    int nparts[2];          /* partitions read (events, labels)           */
    int caught_up;
    rs_hist_t wait_us;      /* fill: time waited per event                */
} rs_cpstage_stats_t;

/* Snapshot (rs_hist_t inside: ~36 KB).  @locality any thread */
void rs_cpstage_stats(rs_cpstage_t *cs, rs_cpstage_stats_t *st);

/* The stage's metrics in Prometheus text (riskstream_cpstage_*).
 * `b` is an rs_http_buf_t (scoring/http.h).  @locality any thread */
struct rs_http_buf_s;
void rs_cpstage_prometheus(rs_cpstage_t *cs, struct rs_http_buf_s *b);

#ifdef __cplusplus
}
#endif
#endif /* RS_CPSTAGE_H */
