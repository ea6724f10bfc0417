/* ingest_int.h -- the consumer's struct and the helpers shared by the
 * ingest sources (ingest.c, ingest_consumer.c, ingest_decode.c,
 * ingest_poll.c).  Not a public interface. */
#ifndef RS_INGEST_INT_H
#define RS_INGEST_INT_H

#include <stdatomic.h>

#include "ingest/imerge.h"
#include "ingest/ingest.h"

#define RS_DLQ_STORE_WAIT_MS 5000   /* rs_ingest_store waits this for DLQ */
#define RS_DLQ_CLOSE_WAIT_MS 10000  /* rs_ingest_destroy flushes this long */
#define RS_DLQ_PEND_MAX 1024        /* rejects tracked until DLQ ack      */
#define RS_LEAVE_WAIT_MS 15000      /* rs_ingest_destroy: partitions given
                                     * back before the close at most this */
#define RS_LEAVE_QUIET_MS 200       /* ... and no rebalance for this long */
#define RS_MERGE_HOLD_MIN 4096      /* task merge: an input holding this many
                                     * (or 4 batch_max) has its fetch paused */
#define RS_MERGE_SLICE_MS 5         /* task merge: poll slice while messages
                                     * wait for max_task_idle             */
#define RS_INGEST_REORDER_LOG_US 60000000 /* task merge: reorder summary
                                     * period (info)                      */

/* A dead-letter message whose delivery failed, kept to be produced again
 * (cold path: allocated in the delivery report). */
typedef struct rs_dlq_retry_s {
    struct rs_dlq_retry_s *next;
    rd_kafka_headers_t *hdrs;  /* owned copy                       */
    void *opaque;              /* pending slot + 1 (0: untracked)  */
    size_t klen, len;
    char data[];               /* [klen] key then [len] payload    */
} rs_dlq_retry_t;

/* A reject whose dead-letter copy is not acknowledged yet: its offset (and
 * any later one of its partition) must not be stored. */
typedef struct rs_dlq_pend_s {
    int used;
    int topic;
    int32_t partition;
    int64_t offset;
} rs_dlq_pend_t;

#define RS_INGEST_WM_PARTS 4096 /* events partitions with a watermark  */

typedef struct rs_ingest_counters_s {
    _Atomic uint64_t consumed, events, labels, rejected, errors,
        offset_resets, dlq_delivered, dlq_failed, dlq_lost, future;
    _Atomic int64_t assigned, rebalances;
    _Atomic uint64_t merge_held, merge_reordered;
    _Atomic uint64_t merge_held_max, merge_merged, merge_paused,
        merge_end_checks; /* task merge, continued (/metrics) */
    _Atomic int64_t merge_reorder_behind_ms, merge_reorder_late_ms;
} rs_ingest_counters_t;

struct rs_ingest_s {
    rd_kafka_t *rk;        /* the consumer                                */
    rd_kafka_topic_t *rkt[2]; /* [RS_MSG_TOPIC_*] handles for offset store */
    rd_kafka_t *dlq;       /* dead-letter producer                        */
    rs_ingest_conf_t conf;
    int64_t dlq_pending;   /* DLQ messages not yet acknowledged           */
    rs_dlq_pend_t *pend;   /* [RS_DLQ_PEND_MAX] rejects awaiting DLQ ack  */
    int npend, pend_hi;    /* slots used; highest used slot + 1           */
    int64_t pend_untracked;/* pending rejects that found no free slot     */
    rs_dlq_retry_t *retry_head, *retry_tail; /* failed DLQ deliveries   */
    int64_t retry_warn_us;
    int paused;            /* rs_ingest_pause() in effect                 */
    _Atomic int fatal;     /* a fatal consumer error was seen (also set by
                            * the read-ahead thread's error callback)   */
    int64_t warn_last_us;  /* reject warning rate limit                   */
    uint64_t warn_suppressed;
    rs_ingest_pos_t *start;  /* [nstart] checkpoint start positions; an
                              * entry is used once (topic = -1 after)   */
    int nstart;
    rs_ingest_pos_t *replay; /* [replay_cap] replay bounds: offset =
                              * committed offset at the assignment that
                              * started below it; topic = -1: unused or
                              * over                                    */
    int nreplay, replay_cap; /* active replay bounds; slots            */
    rs_ingest_assign_cb_t *assign_cb;
    void *assign_opaque;
    rs_ingest_pos_t *gone;   /* [gone_cap] partitions revoked or lost in
                              * the poll being served: its messages
                              * already taken are dropped (the new owner
                              * reads them)                             */
    int ngone, gone_cap;
    int awaiting_assign;     /* eager protocol: revoked, next assignment
                              * not received yet                        */
    int coop;                /* rebalance protocol COOPERATIVE, as last
                              * answered (rs_ingest_coop)               */
    int leaving;             /* rs_ingest_destroy: unsubscribed, giving
                              * the partitions back before the close    */
    int64_t rebalance_us;    /* last rebalance callback (monotonic)     */
    rs_ingest_pos_t *resets; /* [resets_cap] partitions to reset after the
                              * poll loop; offset = the one out of range */
    int nresets, resets_cap;
    rd_kafka_topic_partition_list_t *asg; /* offsets given at assignment */
    rd_kafka_topic_partition_list_t *ahead; /* partitions of the assignment
                              * being served that start at their state,
                              * above the group's committed offset: that
                              * start is stored once assigned (NULL: none) */
    rs_ingest_revoke_cb_t *revoke_cb;
    void *revoke_opaque;
    int64_t *wm;           /* [RS_INGEST_WM_PARTS] newest event time
                            * accepted per events partition; INT64_MIN:
                            * none yet                                 */
    rs_pool_t *pool;       /* decodes payloads (NULL: on the caller)    */
    rd_kafka_message_t **rkms; /* [rkms_cap] messages of the poll being
                            * decoded                                  */
    rs_err_t *derr;        /* [rkms_cap] their payload decode results   */
    rs_msg_t **pm;         /* [rkms_cap] where each is decoded to       */
    int rkms_cap;
    rs_msg_t *own;         /* [own_cap] rs_ingest_poll_ref's messages
                            * without the task merge (with it: the
                            * merge's slots, lent)                     */
    int own_cap;
    rs_imerge_t *im;       /* the per-task merge (topics.task_merge) or
                            * NULL                                     */
    int64_t seen_ms;       /* its clock: the consumer's queue was last
                            * found empty then (monotonic ms)           */
    uint64_t rb_seq;       /* rebalance callbacks served               */
    rs_tmerge_log_t reorder_log; /* merge reorders logged
                                  * (RS_INGEST_REORDER_LOG_US)   */
    struct rs_ingest_ra_s *ra; /* the read-ahead (topics.read_ahead; started
                            * by the first poll) or NULL               */
    int ra_failed;         /* the read-ahead could not start: read here */
    rs_msg_t *ra_store;    /* the read-ahead's message slots (2 cap +
                            * a chunk): its buffers and the task merge
                            * exchange slots (rs_ingest_ra_swap), so
                            * they are freed after both, by
                            * rs_ingest_destroy                        */
    int in_rb;             /* the owner runs a rebalance forwarded by the
                            * read-ahead thread (parked in it)          */
    pthread_mutex_t tap_mu; /* held around a tap call (rs_ingest_set_tap) */
    rs_ingest_tap_fn *tap;  /* under tap_mu                             */
    void *tap_opaque;
    rs_ingest_counters_t c;
};

/* Messages per worker slice below which decoding stays on one thread
 * (a wake-up costs more than decoding a few). */
#define RS_INGEST_DECODE_CHUNK 32

#define RS_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define RS_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define RS_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

/* Shared between the ingest sources (see each definition). */
/* ingest_consumer.c: the consumer's callbacks and errors */
void rs_ingest_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts,
                            void *opaque);
void rs_ingest_error_cb(rd_kafka_t *rk, int err, const char *reason,
                        void *opaque);
void rs_ingest_consumer_error(rs_ingest_t *ing,
                              const rd_kafka_message_t *rkm);
void rs_ingest_apply_resets(rs_ingest_t *ing);
/* ingest_decode.c: decode steps and the dead-letter producer */
void rs_ingest_dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                         void *opaque);
void rs_ingest_dlq_drain(rs_ingest_t *ing);
int rs_ingest_dlq_wait(rs_ingest_t *ing, int timeout_ms,
                       int (*done)(const rs_ingest_t *, const void *),
                       const void *arg);
int rs_ingest_dlq_idle(const rs_ingest_t *ing, const void *arg);
int rs_ingest_head(rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                   rs_msg_t *m);
/* The head's steps with state for a message whose pure head the
 * read-ahead filled: counted, replay flag. */
void rs_ingest_head_state(rs_ingest_t *ing, rs_msg_t *m);
rs_err_t rs_ingest_payload(const rs_ingest_conf_t *conf,
                           const rd_kafka_message_t *rkm, rs_msg_t *m);
void rs_ingest_finish(rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                      rs_msg_t *m, rs_err_t err);
/* ingest_ra.c: the read-ahead (see its design notes).  All on the owner
 * thread except rs_ingest_ra_forward (the read-ahead thread, inside its
 * consume call). */
typedef struct rs_ingest_ra_s rs_ingest_ra_t;
rs_err_t rs_ingest_ra_start(rs_ingest_t *ing, int cap);
void rs_ingest_ra_stop(rs_ingest_t *ing);
/* The next item read ahead (a message, head and payload decoded, or an
 * error event): 1; 0: none within wait_ms (or a forwarded rebalance was
 * served: ing->rb_seq moved); -1: rs_ingest_ra_done() first.  The Kafka
 * message stays valid until rs_ingest_ra_done(); never destroy it. */
int rs_ingest_ra_next(rs_ingest_t *ing, int wait_ms, rd_kafka_message_t **rkm,
                      rs_msg_t **m, rs_err_t *derr);
/* The message the last rs_ingest_ra_next returned (its *m), handed over
 * without a copy: the read-ahead keeps `fresh` (a free slot of the
 * caller's, e.g. rs_imerge_slot) in its place and returns the decoded
 * one, which is the caller's from then on.  Call before the next
 * rs_ingest_ra_next, only after one that returned a message. */
rs_msg_t *rs_ingest_ra_swap(rs_ingest_t *ing, rs_msg_t *fresh);
void rs_ingest_ra_done(rs_ingest_t *ing);
int rs_ingest_ra_forward(rs_ingest_t *ing, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts);
/* Messages of (topic, partition) read ahead, not handed over yet; *first
 * (may be NULL): the lowest offset among them, -1 if none.  *inflight
 * (may be NULL): 1 if the read-ahead thread is inside a batch consume
 * call, whose messages are in none of the buffers yet although the
 * consumer's position has passed them.  A caller that compares the
 * position with a bound reads the position FIRST, then calls this: with
 * *inflight 0 every message below that position is held (counted here)
 * or handed over. */
int rs_ingest_ra_held(rs_ingest_t *ing, int topic, int32_t partition,
                      int64_t *first, int *inflight);
/* Around every call that changes what the consumer fetches (assign,
 * pause, resume) outside a rebalance callback: the read-ahead thread is
 * kept out of its consume call meanwhile.  No-ops without read-ahead. */
/* Tests only: set to 1, the read-ahead thread, after its next consume
 * call that returned messages, sets it to 2 and holds that chunk until
 * the owner begins a ctl pair (rs_ingest_ctl_begin): the chunk read
 * before the owner's change is handed on after the change began. */
extern _Atomic int rs_ingest_test_ctl_race;
/* 1 while the read-ahead thread is parked in a rebalance callback that
 * the owner has not served yet (tests).  @locality any thread */
int rs_ingest_ra_parked(rs_ingest_t *ing);
void rs_ingest_ctl_begin(rs_ingest_t *ing);
void rs_ingest_ctl_end(rs_ingest_t *ing);
/* ingest_poll.c: the task merge's end-of-input check */
int rs_ingest_merge_end(void *opaque, int topic, int32_t partition,
                        int64_t next_offset);
/* ingest_poll.c: the task merge's reorders (ms: its stats now) in the
 * log: one warning at the first, an info summary at most every
 * RS_INGEST_REORDER_LOG_US, and (final 1, at close) one warning with the
 * totals if any.  Owner thread. */
void rs_ingest_merge_reorder_log(rs_ingest_t *ing,
                                 const rs_imerge_stats_t *ms, int final);

/* 1 if a property key names a secret (its value must never be logged). */
int rs_kafka_key_is_secret(const char *key);

/* rd_kafka_conf_set with an errstr naming the key (never a secret value). */
rs_err_t rs_kafka_conf_set1(rd_kafka_conf_t *conf, const char *key,
                            const char *val, char *errstr,
                            size_t errstr_size);

#endif /* RS_INGEST_INT_H */
