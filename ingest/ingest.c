/* ingest.c -- the consumer: one group on the events + labels topics,
 * decode into caller arrays, dead-letter bad input, explicit offset store.
 *
 * Invariants
 * - An offset is committable only after rs_ingest_store() (at-least-once).
 *   For a reject that also means "its DLQ copy was acknowledged".
 * - A bad message never stops its partition: it is returned as
 *   RS_MSG_REJECT so its offset moves on with the others.
 * - The poll and store paths allocate nothing of their own; only the
 *   reject path (DLQ headers) does.
 * - A reject is tracked (topic, partition, offset) until the DLQ
 *   acknowledges its copy; storing that offset or a later one of the same
 *   partition first waits for the DLQ.
 * - Exactly-once mode: the consumer never commits (no auto commit, no
 *   offset store, no commit on revoke); offsets go in the sink's
 *   transactions.
 * - Replay bounds: for a partition started by rs_ingest_set_start below
 *   its committed offset C, messages with offset < C are flagged replay.
 *   A bound is dropped once a message at or past C is seen, so the check
 *   costs nothing once every replay is over (nreplay == 0).
 * - Resets: librdkafka runs with auto.offset.reset=error, so a position
 *   that is out of range (or missing) comes to rs_ingest_poll as a
 *   consumer error; the partition is then re-assigned at BEGINNING or END
 *   per topics.offset_reset, after the poll loop, once for all partitions
 *   reset in that poll.  With the eager protocol a re-assign replaces the
 *   whole assignment, so the other partitions are re-assigned at their
 *   current position (or, if nothing was read from them yet, at the offset
 *   they were assigned with: `asg`).
 *
 * Threads: everything runs on the owner thread: rebalance, error and
 * delivery callbacks are served from rs_ingest_poll / rs_ingest_store /
 * rs_ingest_destroy.  Counters are relaxed atomics so that
 * rs_ingest_stats() may read them from a metrics thread.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/imerge.h"
#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

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
    _Atomic int64_t merge_reorder_behind_ms, merge_reorder_idle_ms;
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
    int fatal;             /* a fatal consumer error was seen             */
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
    rs_imerge_t *im;       /* the per-task merge (topics.task_merge) or
                            * NULL                                     */
    int64_t seen_ms;       /* its clock: the consumer's queue was last
                            * found empty then (monotonic ms)           */
    uint64_t rb_seq;       /* rebalance callbacks served               */
    uint64_t reorder_logged; /* merge reorders already logged          */
    int64_t reorder_log_us;
    rs_ingest_counters_t c;
};

/* Messages per worker slice below which decoding stays on one thread
 * (a wake-up costs more than decoding a few). */
#define RS_INGEST_DECODE_CHUNK 32

#define RS_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define RS_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define RS_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

/* ----------------------------------------------------------- configuration */

#define RS_STR_FIELD(key, member, def, desc)                                  \
    {key, RS_CONF_STRING, def, offsetof(rs_ingest_conf_t, member),            \
     sizeof(((rs_ingest_conf_t *)0)->member), desc, NULL, 0, 0}

static const rs_conf_field_t rs_ingest_fields[] = {
    RS_STR_FIELD("brokers", brokers, "",
                 "Kafka bootstrap servers host:port,...; empty = start the "
                 "embedded broker"),
    RS_STR_FIELD("group_id", group_id, "riskstream",
                 "consumer group of the events and labels topics"),
    RS_STR_FIELD("events", topic_events, "events", "events topic (input)"),
    RS_STR_FIELD("labels", topic_labels, "labels", "labels topic (input)"),
    RS_STR_FIELD("scores", topic_scores, "scores", "scores topic (output)"),
    RS_STR_FIELD("alerts", topic_alerts, "alerts",
                 "alerts topic: scores decided review/decline/alert"),
    RS_STR_FIELD("dlq", topic_dlq, "events.dlq",
                 "dead-letter topic for rejected input"),
    {"events_format", RS_CONF_ENUM, "json",
     offsetof(rs_ingest_conf_t, events_format), 0,
     "encoding of the events topic", "json|protobuf", 0, 0},
    {"labels_format", RS_CONF_ENUM, "json",
     offsetof(rs_ingest_conf_t, labels_format), 0,
     "encoding of the labels topic", "json|protobuf", 0, 0},
    {"partitions", RS_CONF_INT, "4", offsetof(rs_ingest_conf_t, partitions),
     0, "partitions per topic of the embedded broker", NULL, 1, 1024},
    {"batch_max", RS_CONF_INT, "512", offsetof(rs_ingest_conf_t, batch_max),
     0, "most messages taken per poll (micro-batch size); a poll takes what "
     "is ready, so the batch size follows the backlog: a few messages when "
     "the consumer is caught up (low latency), batch_max under load "
     "(full GEMMs, all workers busy); riskstream_batch_messages shows it",
     NULL, 1, 65536},
    {"poll_timeout", RS_CONF_DURATION, "100ms",
     offsetof(rs_ingest_conf_t, poll_timeout_ms), 0,
     "longest wait for the first message of a batch", NULL, 0, 60000},
    {"offset_reset", RS_CONF_ENUM, "earliest",
     offsetof(rs_ingest_conf_t, offset_reset), 0,
     "where to start without a committed offset or when it is out of range",
     "earliest|latest", 0, 0},
    {"future_skew", RS_CONF_DURATION, "1h",
     offsetof(rs_ingest_conf_t, future_skew_ms), 0,
     "an event dated more than this ahead of both the wall clock and the "
     "newest event time of its partition goes to the dead-letter topic "
     "(never scored, moves no state); streams dated in the past (replays) "
     "are never affected; 0 = off", NULL, 0, 3153600000000.0},
    {"task_merge", RS_CONF_BOOL, "true", offsetof(rs_ingest_conf_t, task_merge),
     0, "hand the messages of each task (events partition N with labels "
     "partition N) to scoring in time order (event_time_ms, label_time_ms; "
     "an event before a label at equal time), as Kafka Streams orders a "
     "task's records: label-aware entity features (ent_fraud_count_30d) "
     "then do not depend on how the fetches of the two topics interleave; "
     "a message waits while the other topic of its task has data not yet "
     "fetched; false = fetch order", NULL, 0, 0},
    {"max_task_idle", RS_CONF_DURATION, "0ms",
     offsetof(rs_ingest_conf_t, max_task_idle_ms), 0,
     "task_merge: when the other topic of a task is at its end (nothing "
     "more fetched), a message waits this long after it arrived before it "
     "goes without it (Kafka Streams' max.task.idle.ms, per message): a "
     "label produced within this of a newer event is merged in order on a "
     "live stream; 0 = no wait once the other topic is at its end (exact on "
     "a backlog, a replay, a restore; no added latency); every message "
     "waits up to this while the other topic is quiet (README, Scale-out)",
     NULL, 0, 600000},
};

const rs_conf_field_t *rs_ingest_conf_fields(int *n) {
    *n = (int)RS_ARRAY_LEN(rs_ingest_fields);
    return rs_ingest_fields;
}

void rs_ingest_conf_section(rs_conf_section_t *sec, rs_ingest_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = RS_INGEST_CONF_SECTION;
    sec->desc = "Kafka topics, formats and the consumer group";
    sec->fields = rs_ingest_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_ingest_fields);
    sec->base = conf;
}

void rs_ingest_conf_init(rs_ingest_conf_t *conf) {
    /* Defaults come from the table only: register in a throwaway registry,
     * which fills them in. */
    char errstr[256];
    rs_conf_section_t sec;
    memset(conf, 0, sizeof(*conf));
    rs_ingest_conf_section(&sec, conf);
    rs_conf_t *reg = rs_conf_new();
    if (rs_conf_add_section(reg, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("ingest", "topics defaults: %s", errstr); /* table bug */
    rs_conf_destroy(reg);
}

/* --------------------------------------------------------------- callbacks */

static void rs_ingest_parts_fmt(const rd_kafka_topic_partition_list_t *parts,
                                char *buf, size_t size) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && off + 1 < size; i++) {
        int w = snprintf(buf + off, size - off, "%s%s/%d", i ? " " : "",
                         parts->elems[i].topic, (int)parts->elems[i].partition);
        if (w < 0) break;
        off += (size_t)w;
    }
    if (off >= size && size > 4) memcpy(buf + size - 4, "...", 4);
}

/* RS_MSG_TOPIC_* of a topic name, -1 if not an input topic. */
static int rs_ingest_topic_idx(const rs_ingest_t *ing, const char *name) {
    return !strcmp(name, ing->conf.topic_events)   ? RS_MSG_TOPIC_EVENTS
           : !strcmp(name, ing->conf.topic_labels) ? RS_MSG_TOPIC_LABELS
                                                   : -1;
}

#define RS_COMMITTED_WAIT_MS 30000  /* committed-offset fetch, all tries */

/* Remember a replay bound: messages of (topic, partition) below `bound`
 * come back flagged replay. */
static void rs_ingest_replay_add(rs_ingest_t *ing, int topic,
                                 int32_t partition, int64_t bound) {
    int k;
    for (k = 0; k < ing->replay_cap; k++) {
        rs_ingest_pos_t *r = &ing->replay[k];
        if (r->topic == topic && r->partition == partition) {
            r->offset = bound; /* a new assignment: its bound */
            return;
        }
    }
    for (k = 0; k < ing->replay_cap && ing->replay[k].topic >= 0; k++) {}
    if (k == ing->replay_cap) {
        int cap = ing->replay_cap ? 2 * ing->replay_cap : 16;
        ing->replay = rs_realloc(ing->replay, (size_t)cap * sizeof(*ing->replay));
        for (int i = ing->replay_cap; i < cap; i++) ing->replay[i].topic = -1;
        ing->replay_cap = cap;
    }
    ing->replay[k] = (rs_ingest_pos_t){topic, partition, bound};
    ing->nreplay++;
}

/* Forget the replay bound of (topic, partition), if any (the partition
 * left, or starts at or past it). */
static void rs_ingest_replay_del(rs_ingest_t *ing, int topic,
                                 int32_t partition) {
    for (int k = 0; k < ing->replay_cap; k++) {
        rs_ingest_pos_t *r = &ing->replay[k];
        if (r->topic != topic || r->partition != partition) continue;
        r->topic = -1;
        ing->nreplay--;
    }
}

/* Replay bounds for the partitions of `starts` (the ones of this
 * assignment that start at a checkpoint position): fetch their committed
 * offsets and remember those above the start.  Blocks (rebalance, once
 * per partition in the life of the consumer). */
static void rs_ingest_replay_bounds(rs_ingest_t *ing, rd_kafka_t *rk,
                                    rd_kafka_topic_partition_list_t *starts) {
    rd_kafka_topic_partition_list_t *cl =
        rd_kafka_topic_partition_list_copy(starts);
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t deadline = rs_clock_mono_us() + RS_COMMITTED_WAIT_MS * 1000LL;
    for (;;) {
        for (int i = 0; i < cl->cnt; i++) {
            cl->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
            cl->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        kerr = rd_kafka_committed(rk, cl, 10000);
        for (int i = 0; !kerr && i < cl->cnt; i++)
            if (cl->elems[i].err) kerr = cl->elems[i].err;
        if (!kerr || rs_clock_mono_us() > deadline) break;
        rs_warn("ingest", "committed offsets: %s (retrying)",
                rd_kafka_err2str(kerr));
    }
    if (kerr) {
        if (ing->conf.exactly_once) {
            rs_error("ingest", "cannot fetch the committed offsets of the "
                     "partitions starting at a checkpoint: %s; without them "
                     "replayed messages cannot be told from new ones "
                     "(exactly-once): stopping", rd_kafka_err2str(kerr));
            ing->fatal = 1;
        } else {
            rs_error("ingest", "cannot fetch the committed offsets of the "
                     "partitions starting at a checkpoint: %s; replayed "
                     "messages are not flagged (their results are published "
                     "again)", rd_kafka_err2str(kerr));
        }
        rd_kafka_topic_partition_list_destroy(cl);
        return;
    }
    for (int i = 0; i < cl->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &cl->elems[i];
        int64_t start = starts->elems[i].offset;
        if (tp->offset < 0 || start < 0 || start >= tp->offset) continue;
        int t = rs_ingest_topic_idx(ing, tp->topic);
        if (t < 0) continue;
        rs_ingest_replay_add(ing, t, tp->partition, tp->offset);
        rs_info("ingest", "%s/%d: offsets %lld..%lld are a replay (below "
                "the committed offset): applied, not published",
                tp->topic, (int)tp->partition, (long long)start,
                (long long)tp->offset - 1);
    }
    rd_kafka_topic_partition_list_destroy(cl);
}

/* Remember the offsets a partition set was assigned with (eager: the whole
 * assignment, coop: added). */
static void rs_ingest_asg_add(rs_ingest_t *ing,
                              const rd_kafka_topic_partition_list_t *parts,
                              int replace) {
    if (replace || !ing->asg) {
        if (ing->asg) rd_kafka_topic_partition_list_destroy(ing->asg);
        ing->asg = rd_kafka_topic_partition_list_copy(parts);
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        rd_kafka_topic_partition_list_del(ing->asg, tp->topic, tp->partition);
        rd_kafka_topic_partition_list_add(ing->asg, tp->topic, tp->partition)
            ->offset = tp->offset;
    }
}

/* Resolve the entries of the remembered assignment that say "committed
 * offset" (INVALID) to the group's committed offsets (one blocking round
 * trip, in the rebalance): a partition that reads nothing after the
 * assignment then still has a known place, for the lag (rs_ingest_lag)
 * and for a later re-assign (rs_ingest_apply_resets).  Entries without a
 * committed offset, or when the fetch fails, stay INVALID. */
static void rs_ingest_asg_resolve(rs_ingest_t *ing, rd_kafka_t *rk) {
    if (!ing->asg) return;
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(4);
    for (int i = 0; i < ing->asg->cnt; i++)
        if (ing->asg->elems[i].offset == RD_KAFKA_OFFSET_INVALID)
            rd_kafka_topic_partition_list_add(q, ing->asg->elems[i].topic,
                                              ing->asg->elems[i].partition);
    if (q->cnt > 0) {
        rd_kafka_resp_err_t kerr = rd_kafka_committed(rk, q, 5000);
        if (kerr)
            rs_debug("ingest", "committed offsets of the assignment: %s",
                     rd_kafka_err2str(kerr));
        for (int i = 0; !kerr && i < q->cnt; i++) {
            const rd_kafka_topic_partition_t *c = &q->elems[i];
            rd_kafka_topic_partition_t *a = rd_kafka_topic_partition_list_find(
                ing->asg, c->topic, c->partition);
            if (a && !c->err && c->offset >= 0) a->offset = c->offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(q);
}

static void rs_ingest_asg_del(rs_ingest_t *ing,
                              const rd_kafka_topic_partition_list_t *parts) {
    if (!ing->asg) return;
    for (int i = 0; i < parts->cnt; i++)
        rd_kafka_topic_partition_list_del(ing->asg, parts->elems[i].topic,
                                          parts->elems[i].partition);
}

/* Tell the owner that `parts` leave this consumer (revoke callback). */
static void rs_ingest_report_revoke(rs_ingest_t *ing, rd_kafka_t *rk,
                                    const rd_kafka_topic_partition_list_t *parts,
                                    int lost) {
    if (!ing->revoke_cb || parts->cnt == 0) return;
    rd_kafka_topic_partition_list_t *pl =
        rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_position(rk, pl);
    rs_ingest_pos_t *pos = rs_calloc((size_t)pl->cnt, sizeof(*pos));
    int n = 0;
    for (int i = 0; i < pl->cnt; i++) {
        int t = rs_ingest_topic_idx(ing, pl->elems[i].topic);
        if (t < 0) continue;
        pos[n++] = (rs_ingest_pos_t){t, pl->elems[i].partition,
                                     pl->elems[i].offset >= 0
                                         ? pl->elems[i].offset : -1};
    }
    rd_kafka_topic_partition_list_destroy(pl);
    if (n > 0) ing->revoke_cb(ing->revoke_opaque, pos, n, lost);
    free(pos);
}

/* Partitions leaving during the poll being served (their messages
 * already taken are dropped by rs_ingest_poll). */
static void rs_ingest_gone_add(rs_ingest_t *ing,
                               const rd_kafka_topic_partition_list_t *parts) {
    for (int i = 0; i < parts->cnt; i++) {
        int t = rs_ingest_topic_idx(ing, parts->elems[i].topic);
        if (t < 0) continue;
        rs_ingest_replay_del(ing, t, parts->elems[i].partition);
        if (ing->ngone == ing->gone_cap) {
            ing->gone_cap = ing->gone_cap ? 2 * ing->gone_cap : 16;
            ing->gone = rs_realloc(ing->gone, (size_t)ing->gone_cap *
                                                  sizeof(*ing->gone));
        }
        ing->gone[ing->ngone++] =
            (rs_ingest_pos_t){t, parts->elems[i].partition, -1};
    }
}

/* The owner decides where each arriving partition starts (its state:
 * rs_ingest_set_assign_cb): the committed offsets are fetched first
 * (blocking, in the rebalance), then parts' offsets are set to the
 * starts, with replay bounds where a start lies below the committed
 * offset. */
static void rs_ingest_assign_starts(rs_ingest_t *ing, rd_kafka_t *rk,
                                    rd_kafka_topic_partition_list_t *parts) {
    int n = 0;
    rs_ingest_start_t *st = rs_calloc((size_t)parts->cnt + 1, sizeof(*st));
    rd_kafka_topic_partition_list_t *cl = rd_kafka_topic_partition_list_new(
        parts->cnt > 0 ? parts->cnt : 1);
    for (int i = 0; i < parts->cnt; i++) {
        int t = rs_ingest_topic_idx(ing, parts->elems[i].topic);
        if (t < 0) continue;
        rd_kafka_topic_partition_list_add(cl, parts->elems[i].topic,
                                          parts->elems[i].partition);
    }
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t deadline = rs_clock_mono_us() + RS_COMMITTED_WAIT_MS * 1000LL;
    for (;;) {
        for (int i = 0; i < cl->cnt; i++) {
            cl->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
            cl->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        kerr = cl->cnt ? rd_kafka_committed(rk, cl, 10000)
                       : RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; !kerr && i < cl->cnt; i++)
            if (cl->elems[i].err) kerr = cl->elems[i].err;
        if (!kerr || rs_clock_mono_us() > deadline) break;
        rs_warn("ingest", "committed offsets of the new assignment: %s "
                "(retrying)", rd_kafka_err2str(kerr));
    }
    for (int i = 0; i < cl->cnt; i++) {
        const rd_kafka_topic_partition_t *c = &cl->elems[i];
        st[n].topic = rs_ingest_topic_idx(ing, c->topic);
        st[n].partition = c->partition;
        st[n].committed = kerr ? RS_INGEST_OFFSET_UNKNOWN
                          : c->offset >= 0 ? c->offset
                                           : RS_INGEST_OFFSET_NONE;
        st[n].start = RS_INGEST_START_COMMITTED;
        n++;
    }
    if (kerr)
        rs_error("ingest", "cannot fetch the committed offsets of the new "
                 "assignment: %s", rd_kafka_err2str(kerr));
    if (n) ing->assign_cb(ing->assign_opaque, st, n);
    for (int i = 0; i < n; i++) {
        rs_ingest_replay_del(ing, st[i].topic, st[i].partition);
        if (st[i].start == RS_INGEST_START_COMMITTED) continue;
        const char *tn = rd_kafka_topic_name(ing->rkt[st[i].topic]);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(parts, tn, st[i].partition);
        if (!tp) continue;
        int64_t from = st[i].start == RS_INGEST_START_BEGINNING ? 0
                                                                : st[i].start;
        tp->offset = st[i].start == RS_INGEST_START_BEGINNING
                         ? RD_KAFKA_OFFSET_BEGINNING : st[i].start;
        if (st[i].committed == RS_INGEST_OFFSET_UNKNOWN) {
            if (ing->conf.exactly_once) {
                rs_error("ingest", "%s/%d: without the committed offset "
                         "replayed messages cannot be told from new ones "
                         "(exactly-once): stopping", tn, (int)st[i].partition);
                ing->fatal = 1;
            } else {
                rs_error("ingest", "%s/%d: committed offset unknown: "
                         "replayed messages are not flagged (their results "
                         "are published again)", tn, (int)st[i].partition);
            }
            continue;
        }
        if (st[i].committed > from) {
            rs_ingest_replay_add(ing, st[i].topic, st[i].partition,
                                 st[i].committed);
            rs_info("ingest", "%s/%d: starts at %s%lld; offsets up to %lld "
                    "are a replay (below the committed offset): applied, "
                    "not published", tn, (int)st[i].partition,
                    st[i].start == RS_INGEST_START_BEGINNING
                        ? "the beginning, " : "", (long long)from,
                    (long long)st[i].committed - 1);
        } else {
            rs_info("ingest", "%s/%d starts at offset %lld (its state's)", tn,
                    (int)st[i].partition, (long long)st[i].start);
        }
    }
    rd_kafka_topic_partition_list_destroy(cl);
    free(st);
}

/* 1 if the group's rebalance protocol is COOPERATIVE.  librdkafka answers
 * NULL when it cannot ask the group handle, e.g. in the revoke that
 * rd_kafka_consumer_close serves while that handle terminates (UBSan:
 * strcmp(NULL) here, serve stopped during start-up, exactly-once); then
 * the last answer stands (eager until one came). */
static int rs_ingest_coop(rs_ingest_t *ing, rd_kafka_t *rk) {
    const char *proto = rd_kafka_rebalance_protocol(rk);
    if (proto) ing->coop = !strcmp(proto, "COOPERATIVE");
    return ing->coop;
}

/* The task merge's side of a rebalance: partitions arriving (on 1) or
 * leaving (0); their queued messages and end flags are dropped either way
 * (the next reader reads them again).  A partition the merge had paused
 * (hold limit) is resumed on arrival unless the consumer is paused. */
static void rs_ingest_merge_assign(rs_ingest_t *ing, rd_kafka_t *rk,
                                   rd_kafka_topic_partition_list_t *parts,
                                   int on) {
    if (!ing->im) return;
    rs_imerge_stats_t ms;
    rs_imerge_stats(ing->im, &ms);
    for (int i = 0; i < parts->cnt; i++) {
        int t = rs_ingest_topic_idx(ing, parts->elems[i].topic);
        if (t >= 0) rs_imerge_assign(ing->im, t, parts->elems[i].partition, on);
    }
    if (on && ms.paused && !ing->paused && !ing->leaving)
        rd_kafka_resume_partitions(rk, parts);
}

static void rs_ingest_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t *parts,
                                   void *opaque) {
    rs_ingest_t *ing = opaque;
    int coop = rs_ingest_coop(ing, rk);
    ing->rebalance_us = rs_clock_mono_us();
    ing->rb_seq++;
    char buf[512];
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    rs_ingest_parts_fmt(parts, buf, sizeof(buf));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rs_info("ingest", "assigned %d partition(s): %s", parts->cnt, buf);
        /* First assignment after a restore: start where the state ends. */
        rd_kafka_topic_partition_list_t *starts = NULL;
        for (int j = 0; j < parts->cnt && ing->nstart; j++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[j];
            int t = rs_ingest_topic_idx(ing, tp->topic);
            for (int k = 0; t >= 0 && k < ing->nstart; k++) {
                rs_ingest_pos_t *p = &ing->start[k];
                if (p->topic != t || p->partition != tp->partition) continue;
                tp->offset = p->offset;
                rs_info("ingest", "%s/%d starts at checkpoint offset %lld",
                        tp->topic, (int)tp->partition, (long long)p->offset);
                p->topic = -1;
                if (!starts) starts = rd_kafka_topic_partition_list_new(4);
                rd_kafka_topic_partition_list_add(starts, tp->topic,
                                                  tp->partition)
                    ->offset = p->offset;
                break;
            }
        }
        if (starts) {
            rs_ingest_replay_bounds(ing, rk, starts);
            rd_kafka_topic_partition_list_destroy(starts);
        }
        if (ing->assign_cb) rs_ingest_assign_starts(ing, rk, parts);
        ing->awaiting_assign = 0;
        rs_ingest_asg_add(ing, parts, !coop);
        if (coop) error = rd_kafka_incremental_assign(rk, parts);
        else kerr = rd_kafka_assign(rk, parts);
        rs_ingest_asg_resolve(ing, rk);
        rs_ingest_merge_assign(ing, rk, parts, 1);
        /* Keep backpressure across a rebalance; leaving: read nothing
         * more (the partitions are revoked again at once). */
        if (ing->paused || ing->leaving) rd_kafka_pause_partitions(rk, parts);
        RS_STORE(ing->c.assigned,
                 (coop ? RS_LOAD(ing->c.assigned) : 0) + parts->cnt);
        RS_INC(ing->c.rebalances);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int lost = rd_kafka_assignment_lost(rk);
        rs_log(lost ? RS_LOG_WARN : RS_LOG_INFO, "ingest",
               "%s %d partition(s): %s", lost ? "lost" : "revoked",
               parts->cnt, buf);
        /* The owner commits its transaction (exactly-once) or stores its
         * last offsets while we still own the partitions. */
        rs_ingest_report_revoke(ing, rk, parts, lost);
        rs_ingest_gone_add(ing, parts);
        rs_ingest_merge_assign(ing, rk, parts, 0);
        if (!coop) ing->awaiting_assign = 1;
        /* Commit what was stored while we still own the partitions. */
        if (!lost && !ing->conf.exactly_once) rd_kafka_commit(rk, NULL, 0);
        if (coop) error = rd_kafka_incremental_unassign(rk, parts);
        else kerr = rd_kafka_assign(rk, NULL);
        if (coop) {
            rs_ingest_asg_del(ing, parts);
        } else if (ing->asg) {
            rd_kafka_topic_partition_list_destroy(ing->asg);
            ing->asg = NULL;
        }
        int64_t left = coop ? RS_LOAD(ing->c.assigned) - parts->cnt : 0;
        RS_STORE(ing->c.assigned, left < 0 ? 0 : left);
    } else {
        rs_error("ingest", "rebalance failed: %s", rd_kafka_err2str(err));
        rs_ingest_gone_add(ing, parts);
        rs_ingest_merge_assign(ing, rk, parts, 0);
        kerr = rd_kafka_assign(rk, NULL);
        if (ing->asg) {
            rd_kafka_topic_partition_list_destroy(ing->asg);
            ing->asg = NULL;
        }
        RS_STORE(ing->c.assigned, 0);
    }
    if (error) {
        rs_error("ingest", "rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (kerr) {
        rs_error("ingest", "rebalance: %s", rd_kafka_err2str(kerr));
    }
}

static void rs_ingest_error_cb(rd_kafka_t *rk, int err, const char *reason,
                               void *opaque) {
    rs_ingest_t *ing = opaque;
    RS_INC(ing->c.errors);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fbuf[512];
        rd_kafka_fatal_error(rk, fbuf, sizeof(fbuf));
        rs_error("ingest", "%s: fatal error: %s", rd_kafka_name(rk), fbuf);
        ing->fatal = 1;
        return;
    }
    rs_warn("ingest", "%s: %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Forget pending reject `slot` (message opaque: slot + 1, 0 = untracked). */
static void rs_ingest_pend_done(rs_ingest_t *ing, void *opaque) {
    intptr_t slot = (intptr_t)opaque - 1;
    ing->dlq_pending--;
    if (slot < 0) {
        ing->pend_untracked--;
        return;
    }
    ing->pend[slot].used = 0;
    ing->npend--;
    while (ing->pend_hi > 0 && !ing->pend[ing->pend_hi - 1].used)
        ing->pend_hi--;
}

/* DLQ delivery report, served by rd_kafka_poll on ing->dlq (owner
 * thread).  A failed delivery is copied (key, payload, headers, opaque)
 * to the retry list, which rs_ingest_dlq_drain() produces again: a reject
 * is never silently dropped. */
static void rs_ingest_dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                                void *opaque) {
    rs_ingest_t *ing = opaque;
    RS_UNUSED(rk);
    if (!rkm->err) {
        RS_INC(ing->c.dlq_delivered);
        rs_ingest_pend_done(ing, rkm->_private);
        return;
    }
    RS_INC(ing->c.dlq_failed);
    rs_dlq_retry_t *re = malloc(sizeof(*re) + rkm->key_len + rkm->len);
    if (!re) {
        RS_INC(ing->c.dlq_lost);
        rs_ingest_pend_done(ing, rkm->_private);
        rs_error("ingest", "dead-letter copy LOST: delivery failed (%s) and "
                 "no memory to retry", rd_kafka_err2str(rkm->err));
        return;
    }
    rd_kafka_headers_t *hdrs = NULL;
    re->next = NULL;
    re->hdrs = rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR
                   ? rd_kafka_headers_copy(hdrs) : NULL;
    re->opaque = rkm->_private;
    re->klen = rkm->key_len;
    re->len = rkm->len;
    if (rkm->key_len) memcpy(re->data, rkm->key, rkm->key_len);
    if (rkm->len) memcpy(re->data + rkm->key_len, rkm->payload, rkm->len);
    if (ing->retry_tail) ing->retry_tail->next = re;
    else ing->retry_head = re;
    ing->retry_tail = re;
    rs_warn("ingest", "dead-letter delivery failed (%s): will retry",
            rd_kafka_err2str(rkm->err));
}

/* Produce failed dead letters again, stopping at the first refusal. */
static void rs_ingest_dlq_drain(rs_ingest_t *ing) {
    while (ing->retry_head) {
        rs_dlq_retry_t *re = ing->retry_head;
        rd_kafka_headers_t *hdrs = re->hdrs ? rd_kafka_headers_copy(re->hdrs)
                                            : NULL;
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            ing->dlq, RD_KAFKA_V_TOPIC(ing->conf.topic_dlq),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(re->data, re->klen),
            RD_KAFKA_V_VALUE(re->data + re->klen, re->len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(re->opaque),
            RD_KAFKA_V_END);
        if (kerr) {
            if (hdrs) rd_kafka_headers_destroy(hdrs);
            int64_t now = rs_clock_mono_us();
            if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL &&
                now - ing->retry_warn_us >= 1000000) {
                ing->retry_warn_us = now;
                rs_error("ingest", "dead-letter retry: %s (will retry)",
                         rd_kafka_err2str(kerr));
            }
            return;
        }
        ing->retry_head = re->next;
        if (!ing->retry_head) ing->retry_tail = NULL;
        if (re->hdrs) rd_kafka_headers_destroy(re->hdrs);
        free(re);
    }
}

/* Serve DLQ delivery reports and retries until `done(ing, arg)` or the
 * timeout.  Returns done's final value. */
static int rs_ingest_dlq_wait(rs_ingest_t *ing, int timeout_ms,
                              int (*done)(const rs_ingest_t *, const void *),
                              const void *arg) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (!done(ing, arg)) {
        if (rs_clock_mono_us() > deadline) return 0;
        rd_kafka_poll(ing->dlq, 10);
        rs_ingest_dlq_drain(ing);
    }
    return 1;
}

static int rs_ingest_dlq_idle(const rs_ingest_t *ing, const void *arg) {
    RS_UNUSED(arg);
    return ing->dlq_pending == 0;
}

static int rs_ingest_dlq_has_slot(const rs_ingest_t *ing, const void *arg) {
    RS_UNUSED(arg);
    return ing->npend < RS_DLQ_PEND_MAX;
}

/* The task merge's watermark check (imerge.h): nothing to fetch after
 * next_offset - 1 as far as the consumer's cached high watermark says. */
static int rs_ingest_merge_end(void *opaque, int topic, int32_t partition,
                               int64_t next_offset) {
    rs_ingest_t *ing = opaque;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(ing->rk,
                                       rd_kafka_topic_name(ing->rkt[topic]),
                                       partition, &lo, &hi))
        return 0;
    return hi >= 0 && next_offset >= hi;
}

/* A partition the task merge paused (hold limit) may fetch again. */
static void rs_ingest_merge_resume(void *opaque, int topic,
                                   int32_t partition) {
    rs_ingest_t *ing = opaque;
    if (ing->paused || ing->leaving) return; /* resumed with the others */
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, rd_kafka_topic_name(ing->rkt[topic]),
                                      partition);
    rd_kafka_resume_partitions(ing->rk, pl);
    rd_kafka_topic_partition_list_destroy(pl);
}

/* ----------------------------------------------------------------- create */

rs_ingest_t *rs_ingest_new(const rs_ingest_conf_t *conf,
                           const rs_kv_t *kafka_props, const char *bootstrap,
                           char *errstr, size_t errstr_size) {
    /* The last row only for the embedded broker: the mock holds every
     * Fetch for fetch.wait.max.ms even when data arrives (a real broker
     * answers as soon as fetch.min.bytes are there), which would add up to
     * 500 ms (the default) to every event's latency. */
    static const char *const consumer_defaults[][2] = {
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"enable.partition.eof", "false"},
        /* Scale-out (README "Scale-out"): range keeps events/N and
         * labels/N on one instance (co-partitioning: a label meets its
         * event's state); a failed instance's partitions move after 10 s
         * instead of librdkafka's 45 s, a graceful leave at once. */
        {"partition.assignment.strategy", "range"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"fetch.wait.max.ms", "5"},
    };
    int embedded = !conf->brokers[0];
    static const char *const dlq_defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
    };
    rs_ingest_t *ing = NULL;
    rd_kafka_conf_t *kconf = NULL;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_resp_err_t kerr;
    char buf[512];

    if (!bootstrap || !*bootstrap) bootstrap = conf->brokers;
    if (!*bootstrap && !(kafka_props &&
                         rs_kv_get(kafka_props, "bootstrap.servers"))) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "ingest: no Kafka brokers (topics.brokers or "
                "kafka.bootstrap.servers)");
        return NULL;
    }
    if (!conf->group_id[0] || !conf->topic_events[0] ||
        !conf->topic_labels[0] || !conf->topic_dlq[0]) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "ingest: group_id and the events, labels and dlq topic names "
                "must not be empty");
        return NULL;
    }
    ing = rs_calloc(1, sizeof(*ing));
    ing->conf = *conf;
    ing->pend = rs_calloc(RS_DLQ_PEND_MAX, sizeof(*ing->pend));
    ing->wm = rs_calloc(RS_INGEST_WM_PARTS, sizeof(*ing->wm));
    for (int i = 0; i < RS_INGEST_WM_PARTS; i++) ing->wm[i] = INT64_MIN;

    /* Consumer: our defaults < `kafka:` section < settings that the
     * delivery guarantee depends on.  auto.offset.reset=error: resets come
     * to us as consumer errors and are applied (and logged) by us. */
    if (rs_kafka_conf_build_for(RD_KAFKA_CONSUMER, kafka_props, bootstrap,
                                consumer_defaults,
                                (int)RS_ARRAY_LEN(consumer_defaults) -
                                    (embedded ? 0 : 1), &kconf,
                                errstr, errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kconf, "group.id", conf->group_id, errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kconf, "enable.auto.offset.store", "false", errstr,
                           errstr_size) != RS_OK ||
        rs_kafka_conf_set1(kconf, "auto.offset.reset", "error", errstr,
                           errstr_size) != RS_OK)
        goto fail;
    /* The task merge needs to know when a partition is at its end. */
    if (conf->task_merge &&
        rs_kafka_conf_set1(kconf, "enable.partition.eof", "true", errstr,
                           errstr_size) != RS_OK)
        goto fail;
    if (conf->exactly_once &&
        (rs_kafka_conf_set1(kconf, "isolation.level", "read_committed",
                            errstr, errstr_size) != RS_OK ||
         rs_kafka_conf_set1(kconf, "enable.auto.commit", "false", errstr,
                            errstr_size) != RS_OK))
        goto fail;
    rd_kafka_conf_set_opaque(kconf, ing);
    rd_kafka_conf_set_rebalance_cb(kconf, rs_ingest_rebalance_cb);
    rd_kafka_conf_set_error_cb(kconf, rs_ingest_error_cb);
    ing->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, buf, sizeof(buf));
    if (!ing->rk) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: consumer: %s", buf);
        goto fail;
    }
    kconf = NULL; /* owned by rk */
    /* Serve errors and logs from rd_kafka_consumer_poll. */
    rd_kafka_poll_set_consumer(ing->rk);
    ing->rkt[RS_MSG_TOPIC_EVENTS] =
        rd_kafka_topic_new(ing->rk, conf->topic_events, NULL);
    ing->rkt[RS_MSG_TOPIC_LABELS] =
        rd_kafka_topic_new(ing->rk, conf->topic_labels, NULL);
    if (!ing->rkt[0] || !ing->rkt[1]) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: topic: %s",
                rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }

    /* Dead-letter producer. */
    if (rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, kafka_props, bootstrap,
                                dlq_defaults, (int)RS_ARRAY_LEN(dlq_defaults),
                                &kconf, errstr, errstr_size) != RS_OK)
        goto fail;
    {
        size_t tlen = 0; /* value size with its NUL: > 1 if set */
        if (rd_kafka_conf_get(kconf, "transactional.id", NULL, &tlen) ==
                RD_KAFKA_CONF_OK && tlen > 1) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "ingest: kafka.transactional.id must not be set (it "
                    "would make every producer transactional); exactly-once "
                    "mode gives the Kafka sink its own");
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(kconf, ing);
    rd_kafka_conf_set_dr_msg_cb(kconf, rs_ingest_dlq_dr_cb);
    ing->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, buf, sizeof(buf));
    if (!ing->dlq) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: DLQ producer: %s",
                buf);
        goto fail;
    }
    kconf = NULL;

    topics = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(topics, conf->topic_events,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(topics, conf->topic_labels,
                                      RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(ing->rk, topics);
    if (kerr) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "ingest: subscribe: %s",
                rd_kafka_err2str(kerr));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(topics);
    if (conf->task_merge) {
        int64_t hold = 4 * conf->batch_max;
        if (hold < RS_MERGE_HOLD_MIN) hold = RS_MERGE_HOLD_MIN;
        ing->im = rs_imerge_new(conf->max_task_idle_ms, (uint32_t)hold,
                                rs_ingest_merge_end, ing);
        ing->seen_ms = rs_clock_mono_us() / 1000;
    }
    rs_info("ingest", "consumer group '%s' subscribed to '%s' (%s) and '%s' "
            "(%s); dead letters to '%s'%s", conf->group_id, conf->topic_events,
            conf->events_format == RS_FORMAT_PROTOBUF ? "protobuf" : "json",
            conf->topic_labels,
            conf->labels_format == RS_FORMAT_PROTOBUF ? "protobuf" : "json",
            conf->topic_dlq,
            conf->exactly_once ? "; exactly-once (read_committed, offsets "
                                 "committed in transactions)" : "");
    return ing;
fail:
    if (topics) rd_kafka_topic_partition_list_destroy(topics);
    if (kconf) rd_kafka_conf_destroy(kconf);
    rs_ingest_destroy(ing);
    return NULL;
}

/* ------------------------------------------------------------------- poll */

static void rs_ingest_warn_reject(rs_ingest_t *ing, const char *src,
                                  const char *reason) {
    int64_t now = rs_clock_mono_us();
    if (ing->warn_last_us && now - ing->warn_last_us < 1000000) {
        ing->warn_suppressed++;
        return;
    }
    if (ing->warn_suppressed)
        rs_warn("ingest", "rejected %s: %s (and %llu more since the last "
                "report)", src, reason,
                (unsigned long long)ing->warn_suppressed);
    else
        rs_warn("ingest", "rejected %s: %s", src, reason);
    ing->warn_last_us = now;
    ing->warn_suppressed = 0;
}

/* Send a rejected message to the dead-letter topic: original key, payload
 * and headers plus rs-error and rs-source.  Retries while the local queue
 * is full; a payload too big for the DLQ goes without its body. */
static void rs_ingest_dead_letter(rs_ingest_t *ing,
                                  const rd_kafka_message_t *rkm, int topic,
                                  const char *src, const char *reason) {
    /* Track the reject until the DLQ acknowledges it. */
    intptr_t slot = -1;
    rs_ingest_dlq_wait(ing, 1000, rs_ingest_dlq_has_slot, NULL);
    for (int i = 0; i < RS_DLQ_PEND_MAX; i++)
        if (!ing->pend[i].used) {
            slot = i;
            break;
        }
    const void *payload = rkm->payload;
    size_t len = rkm->len;
    char nbuf[32];
    for (int attempt = 0; attempt < 100; attempt++) {
        rd_kafka_headers_t *orig = NULL, *hdrs;
        if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = rd_kafka_headers_copy(orig);
        else
            hdrs = rd_kafka_headers_new(2);
        rd_kafka_header_add(hdrs, "rs-error", -1, reason, -1);
        rd_kafka_header_add(hdrs, "rs-source", -1, src, -1);
        if (!payload && len) {
            snprintf(nbuf, sizeof(nbuf), "%zu", len);
            rd_kafka_header_add(hdrs, "rs-payload-dropped", -1, nbuf, -1);
        }
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            ing->dlq, RD_KAFKA_V_TOPIC(ing->conf.topic_dlq),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
            RD_KAFKA_V_VALUE((void *)payload, payload ? len : 0),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(slot + 1)),
            RD_KAFKA_V_END);
        if (!kerr) {
            ing->dlq_pending++;
            if (slot < 0) {
                ing->pend_untracked++;
                return;
            }
            ing->pend[slot] = (rs_dlq_pend_t){1, topic, rkm->partition,
                                              rkm->offset};
            ing->npend++;
            if (slot + 1 > ing->pend_hi) ing->pend_hi = (int)slot + 1;
            return;
        }
        rd_kafka_headers_destroy(hdrs);
        if (kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && payload) {
            payload = NULL; /* keep len for the header */
            continue;
        }
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            RS_INC(ing->c.dlq_lost);
            rs_error("ingest", "dead-letter %s LOST: %s", src,
                     rd_kafka_err2str(kerr));
            return;
        }
        rd_kafka_poll(ing->dlq, 100); /* backpressure */
    }
    RS_INC(ing->c.dlq_lost);
    rs_error("ingest", "dead-letter %s LOST: DLQ queue full for 10 s", src);
}

/* 1 if (topic, partition, offset) is below an active replay bound; a
 * message at or past its bound ends the replay of its partition. */
static int rs_ingest_replay_check(rs_ingest_t *ing, int topic,
                                  int32_t partition, int64_t offset) {
    for (int k = 0; k < ing->replay_cap; k++) {
        rs_ingest_pos_t *r = &ing->replay[k];
        if (r->topic != topic || r->partition != partition) continue;
        if (offset < r->offset) return 1;
        r->topic = -1;
        ing->nreplay--;
        rs_info("ingest", "%s/%d: replay over at offset %lld",
                rd_kafka_topic_name(ing->rkt[topic]), (int)partition,
                (long long)offset);
        return 0;
    }
    return 0;
}

/* The event time bound (see ingest.h): RS_ERR_INVALID with m->reason if
 * m->ev is dated more than future_skew ahead of max(wall clock, the
 * partition's newest accepted event time); else the partition's watermark
 * moves on.  No allocation. */
static rs_err_t rs_ingest_time_check(rs_ingest_t *ing, rs_msg_t *m) {
    int64_t skew = ing->conf.future_skew_ms, t = m->ev.event_time_ms;
    int64_t *wm = m->partition >= 0 && m->partition < RS_INGEST_WM_PARTS
                      ? &ing->wm[m->partition] : NULL;
    if (skew <= 0) return RS_OK;
    int64_t wall = rs_clock_wall_ms();
    int64_t ref = wm && *wm > wall ? *wm : wall;
    if (t > ref + skew) {
        char ahead[32], lim[32];
        double d = (double)(t - ref);
        if (d >= 2 * 86400000.0)
            snprintf(ahead, sizeof(ahead), "%.1f days", d / 86400000.0);
        else if (d >= 2 * 3600000.0)
            snprintf(ahead, sizeof(ahead), "%.1f h", d / 3600000.0);
        else
            snprintf(ahead, sizeof(ahead), "%.1f s", d / 1000.0);
        rs_duration_fmt(skew, lim, sizeof(lim));
        RS_INC(ing->c.future);
        return rs_errf(m->reason, sizeof(m->reason), RS_ERR_INVALID,
                       "field 'event_time_ms': %lld is %s ahead of the %s "
                       "(topics.future_skew: %s)", (long long)t, ahead,
                       ref > wall ? "partition's newest event time"
                                  : "wall clock", lim);
    }
    if (wm && t > *wm) *wm = t;
    return RS_OK;
}

/* Decoding is three steps so that the middle one, the payload parsers
 * (pure functions, no I/O, no shared state), can run on the service's
 * workers (rs_ingest_set_pool): the head of each message in poll order,
 * the payloads in parallel, then the checks with state (time bound,
 * counters, dead letters) in poll order again.  The result is that of
 * decoding one message after another. */

/* Step 1: the message's head into *m.  Returns 1 if it is for us, 0 if
 * not (another topic). */
static int rs_ingest_head(rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                          rs_msg_t *m) {
    const char *tname = rd_kafka_topic_name(rkm->rkt);
    int topic;
    if (!strcmp(tname, ing->conf.topic_events)) topic = RS_MSG_TOPIC_EVENTS;
    else if (!strcmp(tname, ing->conf.topic_labels)) topic = RS_MSG_TOPIC_LABELS;
    else {
        rs_debug("ingest", "ignoring message from topic '%s'", tname);
        return 0;
    }
    RS_INC(ing->c.consumed);
    m->topic = topic;
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    m->produced_ms = rd_kafka_message_timestamp(rkm, NULL);
    m->received_us = rs_clock_mono_us();
    m->reason[0] = '\0';
    m->replay = ing->nreplay > 0 &&
                rs_ingest_replay_check(ing, topic, rkm->partition, rkm->offset);
    return 1;
}

/* Step 2: the payload of a message whose head is in *m.  Pure: any
 * thread, one message per call. */
static rs_err_t rs_ingest_payload(const rs_ingest_conf_t *conf,
                                  const rd_kafka_message_t *rkm,
                                  rs_msg_t *m) {
    rs_err_t err;
    if (!rkm->payload || rkm->len == 0) {
        err = rs_errf(m->reason, sizeof(m->reason), RS_ERR_INVALID,
                      "empty payload");
    } else if (rkm->len > RS_MSG_MAX) {
        err = rs_errf(m->reason, sizeof(m->reason), RS_ERR_TOOBIG,
                      "message of %zu bytes exceeds the %d byte limit",
                      rkm->len, RS_MSG_MAX);
    } else if (m->topic == RS_MSG_TOPIC_EVENTS) {
        err = rs_event_decode((rs_format_t)conf->events_format,
                              rkm->payload, rkm->len, &m->ev, m->reason,
                              sizeof(m->reason));
        m->kind = RS_MSG_EVENT;
    } else {
        err = rs_label_decode((rs_format_t)conf->labels_format,
                              rkm->payload, rkm->len, &m->lb, m->reason,
                              sizeof(m->reason));
        m->kind = RS_MSG_LABEL;
    }
    return err;
}

/* Step 3: the checks with state, in poll order; a reject is counted,
 * logged and dead-lettered here. */
static void rs_ingest_finish(rs_ingest_t *ing, const rd_kafka_message_t *rkm,
                             rs_msg_t *m, rs_err_t err) {
    if (err == RS_OK && m->kind == RS_MSG_EVENT)
        err = rs_ingest_time_check(ing, m);
    if (err == RS_OK) {
        if (m->kind == RS_MSG_EVENT) RS_INC(ing->c.events);
        else RS_INC(ing->c.labels);
        return;
    }
    if (!m->reason[0]) rs_strlcpy(m->reason, rs_err_str(err), sizeof(m->reason));
    m->kind = RS_MSG_REJECT;
    RS_INC(ing->c.rejected);
    const char *tname = rd_kafka_topic_name(rkm->rkt);
    char src[300];
    snprintf(src, sizeof(src), "%s/%d/%lld", tname, (int)rkm->partition,
             (long long)rkm->offset);
    if (m->replay) {
        /* Dead-lettered when it was first read (its offset was committed
         * after the DLQ acknowledged it): not again. */
        rs_debug("ingest", "replayed reject %s: %s", src, m->reason);
        return;
    }
    rs_ingest_warn_reject(ing, src, m->reason);
    rs_ingest_dead_letter(ing, rkm, m->topic, src, m->reason);
}

/* A consumer error event (not a message). */
static void rs_ingest_consumer_error(rs_ingest_t *ing,
                                     const rd_kafka_message_t *rkm) {
    const char *tname = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-";
    switch (rkm->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF: /* not an error: the task merge */
        if (ing->im && rkm->rkt) {
            int t = rs_ingest_topic_idx(ing, tname);
            if (t >= 0)
                rs_imerge_eof(ing->im, t, rkm->partition,
                              rs_clock_mono_us() / 1000);
        }
        return;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET: {
        /* auto.offset.reset=error: the partition stopped fetching; it is
         * re-assigned per policy after the poll loop. */
        const char *pol = ing->conf.offset_reset == RS_OFFSET_LATEST
                              ? "latest" : "earliest";
        int t = rkm->rkt ? rs_ingest_topic_idx(ing, tname) : -1;
        if (t < 0) {
            rs_warn("ingest", "%s [%d]: offset reset on a topic we do not "
                    "read: %s", tname, (int)rkm->partition,
                    rd_kafka_message_errstr(rkm));
            return;
        }
        if (rkm->offset >= 0) {
            RS_INC(ing->c.offset_resets);
            RS_INC(ing->c.errors);
            rs_error("ingest", "%s [%d]: offset %lld is out of range (deleted "
                     "by retention while the consumer was behind or down, or "
                     "a commit/checkpoint past the end): %s; resetting to the "
                     "%s offset (topics.offset_reset: %s)%s", tname,
                     (int)rkm->partition, (long long)rkm->offset,
                     rd_kafka_message_errstr(rkm),
                     ing->conf.offset_reset == RS_OFFSET_LATEST ? "end"
                                                                : "beginning",
                     pol, ing->conf.offset_reset == RS_OFFSET_LATEST
                              ? ": messages in between are SKIPPED" : "");
        } else {
            rs_info("ingest", "%s [%d]: no committed offset: starting at the "
                    "%s offset (topics.offset_reset: %s)", tname,
                    (int)rkm->partition,
                    ing->conf.offset_reset == RS_OFFSET_LATEST ? "end"
                                                               : "beginning",
                    pol);
        }
        if (ing->nresets == ing->resets_cap) {
            ing->resets_cap = ing->resets_cap ? 2 * ing->resets_cap : 16;
            ing->resets = rs_realloc(ing->resets, (size_t)ing->resets_cap *
                                                      sizeof(*ing->resets));
        }
        ing->resets[ing->nresets++] =
            (rs_ingest_pos_t){t, rkm->partition, rkm->offset};
        return;
    }
    case RD_KAFKA_RESP_ERR__FATAL: {
        char fbuf[512];
        rd_kafka_fatal_error(ing->rk, fbuf, sizeof(fbuf));
        rs_error("ingest", "fatal consumer error: %s", fbuf);
        ing->fatal = 1;
        RS_INC(ing->c.errors);
        return;
    }
    default:
        RS_INC(ing->c.errors);
        rs_warn("ingest", "consumer error on %s [%d]: %s: %s", tname,
                (int)rkm->partition, rd_kafka_err2name(rkm->err),
                rd_kafka_message_errstr(rkm));
    }
}

/* Re-assign the partitions of ing->resets at BEGINNING or END (policy);
 * see the design notes for the eager protocol.  Cold path. */
static void rs_ingest_apply_resets(rs_ingest_t *ing) {
    int64_t target = ing->conf.offset_reset == RS_OFFSET_LATEST
                         ? RD_KAFKA_OFFSET_END
                         : RD_KAFKA_OFFSET_BEGINNING;
    int coop = rs_ingest_coop(ing, ing->rk);
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t kerr;
    int n = ing->nresets;
    ing->nresets = 0;
    if (rd_kafka_assignment(ing->rk, &parts) || !parts) {
        rs_error("ingest", "offset reset: no assignment");
        if (parts) rd_kafka_topic_partition_list_destroy(parts);
        return;
    }
    /* Only partitions still assigned (a rebalance may have intervened). */
    rd_kafka_topic_partition_list_t *rl = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) {
        const char *tn = rd_kafka_topic_name(ing->rkt[ing->resets[i].topic]);
        int32_t p = ing->resets[i].partition;
        if (!rd_kafka_topic_partition_list_find(parts, tn, p) ||
            rd_kafka_topic_partition_list_find(rl, tn, p))
            continue;
        rd_kafka_topic_partition_list_add(rl, tn, p)->offset = target;
        if (ing->im) { /* read again from the target: drop what waits */
            rs_imerge_assign(ing->im, ing->resets[i].topic, p, 0);
            rs_imerge_assign(ing->im, ing->resets[i].topic, p, 1);
        }
        if (ing->asg) {
            rd_kafka_topic_partition_t *a =
                rd_kafka_topic_partition_list_find(ing->asg, tn, p);
            if (a) a->offset = target; /* a later re-assign keeps it */
        }
    }
    if (rl->cnt == 0) goto done;
    if (coop) {
        error = rd_kafka_incremental_unassign(ing->rk, rl);
        if (!error) error = rd_kafka_incremental_assign(ing->rk, rl);
        if (!error && ing->paused) rd_kafka_pause_partitions(ing->rk, rl);
    } else {
        /* Others keep their position, or their assigned offset if nothing
         * was read from them yet. */
        rd_kafka_position(ing->rk, parts);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            const rd_kafka_topic_partition_t *r =
                rd_kafka_topic_partition_list_find(rl, tp->topic,
                                                   tp->partition);
            const rd_kafka_topic_partition_t *a =
                ing->asg ? rd_kafka_topic_partition_list_find(
                               ing->asg, tp->topic, tp->partition)
                         : NULL;
            if (r) tp->offset = r->offset;
            else if (tp->offset < 0) tp->offset = a ? a->offset
                                                    : RD_KAFKA_OFFSET_INVALID;
        }
        /* Remember what every partition is re-assigned at: a partition
         * that reads nothing until the next re-assign has no position
         * then, and must get this offset again -- not the one of an
         * older assignment (e.g. BEGINNING from the first reset, which
         * re-read the whole partition). */
        rs_ingest_asg_add(ing, parts, 1);
        kerr = rd_kafka_assign(ing->rk, parts);
        if (kerr) error = rd_kafka_error_new(kerr, "assign: %s",
                                             rd_kafka_err2str(kerr));
        else if (ing->paused) rd_kafka_pause_partitions(ing->rk, parts);
    }
    if (error) {
        rs_error("ingest", "offset reset: re-assign failed: %s",
                 rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
done:
    rd_kafka_topic_partition_list_destroy(rl);
    rd_kafka_topic_partition_list_destroy(parts);
}

void rs_ingest_set_pool(rs_ingest_t *ing, rs_pool_t *pool) {
    ing->pool = pool;
}

/* The payload step over the poll's messages [lo, hi) (a pool stage). */
typedef struct rs_ingest_job_s {
    rs_ingest_t *ing;
    rs_msg_t *msgs;        /* decoded into msgs[i], or (NULL) into pm[i] */
} rs_ingest_job_t;

static void rs_ingest_payloads(void *opaque, int lo, int hi, int slice) {
    rs_ingest_job_t *job = opaque;
    (void)slice;
    for (int i = lo; i < hi; i++)
        job->ing->derr[i] = rs_ingest_payload(
            &job->ing->conf, job->ing->rkms[i],
            job->msgs ? &job->msgs[i] : job->ing->pm[i]);
}

/* ------------------------------------------------ the task merge's poll */

/* Drop the messages of rkms/pm[0..n) whose partition left (ing->gone):
 * returns how many are kept. */
static int rs_ingest_merge_drop_gone(rs_ingest_t *ing, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int gone = 0;
        for (int g = 0; g < ing->ngone && !gone; g++)
            gone = ing->gone[g].topic == ing->pm[i]->topic &&
                   ing->gone[g].partition == ing->pm[i]->partition;
        if (gone) {
            rd_kafka_message_destroy(ing->rkms[i]);
            rs_imerge_unslot(ing->im, ing->pm[i]);
            continue;
        }
        ing->rkms[k] = ing->rkms[i];
        ing->pm[k++] = ing->pm[i];
    }
    if (k < n)
        rs_debug("ingest", "%d message(s) of partitions that left during the "
                 "poll dropped", n - k);
    return k;
}

/* Read what the consumer holds (waiting up to wait_ms for the first
 * message or end of partition), up to cap messages, decode them (as
 * rs_ingest_poll does) and queue them in the task merge.  *drained: the
 * consumer's queue was found empty.  Returns the messages queued plus
 * the ends of partition seen. */
static int rs_ingest_merge_read(rs_ingest_t *ing, int wait_ms, int cap,
                                int *drained) {
    int n = 0, ends = 0;
    uint64_t seq = ing->rb_seq;
    int64_t deadline = rs_clock_mono_us() + (int64_t)RS_MAX(wait_ms, 0) * 1000;
    *drained = 0;
    ing->ngone = 0;
    while (n < cap) {
        int wait = 0;
        if (n == 0 && ends == 0) {
            int64_t left = deadline - rs_clock_mono_us();
            wait = left > 0 ? (int)((left + 999) / 1000) : 0;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(ing->rk, wait);
        if (ing->rb_seq != seq) {
            /* a rebalance was served in that call: what was read before it
             * of partitions that left is not ours; what comes after is */
            seq = ing->rb_seq;
            if (ing->ngone) n = rs_ingest_merge_drop_gone(ing, n);
            ing->ngone = 0;
        }
        if (!rkm) {
            if (n > 0 || ends > 0 || wait == 0) {
                *drained = 1;
                break;
            }
            continue;
        }
        rs_msg_t *m = rs_imerge_slot(ing->im);
        if (!rkm->err && rs_ingest_head(ing, rkm, m)) {
            ing->pm[n] = m;
            ing->rkms[n++] = rkm;
            continue;
        }
        rs_imerge_unslot(ing->im, m);
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) ends++;
        if (rkm->err) rs_ingest_consumer_error(ing, rkm);
        rd_kafka_message_destroy(rkm);
        if (ing->fatal) break;
    }
    rs_ingest_job_t job = {ing, NULL};
    rs_pool_run(ing->pool, n, RS_INGEST_DECODE_CHUNK, rs_ingest_payloads,
                &job);
    int64_t at = rs_clock_mono_us() / 1000;
    for (int i = 0; i < n; i++) {
        rs_msg_t *m = ing->pm[i];
        rs_ingest_finish(ing, ing->rkms[i], m, ing->derr[i]);
        rd_kafka_message_destroy(ing->rkms[i]);
        ing->rkms[i] = NULL;
        if (rs_imerge_push(ing->im, m, at)) {
            /* too much waits for the other topic of its task: stop
             * fetching this partition until half of it went out */
            rd_kafka_topic_partition_list_t *pl =
                rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(
                pl, rd_kafka_topic_name(ing->rkt[m->topic]), m->partition);
            rd_kafka_pause_partitions(ing->rk, pl);
            rd_kafka_topic_partition_list_destroy(pl);
            rs_debug("ingest", "%s/%d: fetch paused, %u messages wait for "
                     "the other topic of the task",
                     rd_kafka_topic_name(ing->rkt[m->topic]),
                     (int)m->partition,
                     rs_imerge_held(ing->im, m->topic, m->partition));
        }
    }
    return n + ends;
}

/* rs_ingest_poll with the task merge: read, merge, until something can
 * go, the poll times out or max went. */
static int rs_ingest_poll_merged(rs_ingest_t *ing, rs_msg_t *msgs, int max,
                                 int timeout_ms) {
    int n = 0, wait = 0;
    int64_t deadline = rs_clock_mono_us() + (int64_t)RS_MAX(timeout_ms, 0) * 1000;
    for (;;) {
        int drained = 0;
        rs_ingest_merge_read(ing, wait, max, &drained);
        int64_t now = rs_clock_mono_us();
        /* the idle clock: a partition at its end has been seen without
         * messages only up to the last time the queue was found empty */
        if (drained) ing->seen_ms = now / 1000;
        n += rs_imerge_pop(ing->im, msgs + n, max - n, ing->seen_ms);
        rs_imerge_resume(ing->im, 0, rs_ingest_merge_resume, ing);
        if (ing->nresets > 0) rs_ingest_apply_resets(ing);
        if (n >= max || ing->fatal) break;
        if (!drained) {
            wait = 0;
            continue;
        }
        if (n > 0) break;
        int64_t left = deadline - now;
        if (left <= 0) break;
        wait = (int)((left + 999) / 1000);
        rs_imerge_stats_t ms;
        rs_imerge_stats(ing->im, &ms);
        if (ing->conf.max_task_idle_ms > 0 && ms.held > 0 &&
            wait > RS_MERGE_SLICE_MS)
            wait = RS_MERGE_SLICE_MS; /* a held message's wait may end */
    }
    rs_imerge_stats_t ms;
    rs_imerge_stats(ing->im, &ms);
    RS_STORE(ing->c.merge_held, ms.held);
    RS_STORE(ing->c.merge_reordered, ms.reordered);
    /* task merge, continued (/metrics riskstream_task_merge_*) */
    RS_STORE(ing->c.merge_held_max, ms.held_max);
    RS_STORE(ing->c.merge_merged, ms.merged);
    RS_STORE(ing->c.merge_paused, ms.paused);
    RS_STORE(ing->c.merge_end_checks, ms.end_checks);
    RS_STORE(ing->c.merge_reorder_behind_ms, ms.reorder_behind_ms);
    RS_STORE(ing->c.merge_reorder_idle_ms, ms.reorder_idle_ms);
    if (ms.reordered > ing->reorder_logged &&
        rs_clock_mono_us() >= ing->reorder_log_us) {
        rs_warn("ingest", "%llu message(s) handed to scoring out of time "
                "order within their task (%llu in all): the last %lld ms "
                "behind its task, %lld ms after the merge passed the other "
                "topic as idle (topics.max_task_idle %lld ms)",
                (unsigned long long)(ms.reordered - ing->reorder_logged),
                (unsigned long long)ms.reordered,
                (long long)ms.reorder_behind_ms, (long long)ms.reorder_idle_ms,
                (long long)ing->conf.max_task_idle_ms);
        ing->reorder_logged = ms.reordered;
        ing->reorder_log_us = rs_clock_mono_us() + 10000000;
    }
    if (ing->fatal && n == 0) return -RS_ERR_KAFKA;
    return n;
}

int rs_ingest_poll(rs_ingest_t *ing, rs_msg_t *msgs, int max, int timeout_ms) {
    int n = 0;
    if (ing->fatal) return -RS_ERR_KAFKA;
    rd_kafka_poll(ing->dlq, 0); /* DLQ delivery reports */
    rs_ingest_dlq_drain(ing);
    if (max > ing->rkms_cap) { /* the first poll (cold) */
        free(ing->rkms);
        free(ing->derr);
        ing->rkms = rs_calloc((size_t)max, sizeof(*ing->rkms));
        ing->derr = rs_calloc((size_t)max, sizeof(*ing->derr));
        free(ing->pm);
        ing->pm = rs_calloc((size_t)max, sizeof(*ing->pm));
        ing->rkms_cap = max;
    }
    if (ing->im) return rs_ingest_poll_merged(ing, msgs, max, timeout_ms);
    int64_t deadline = rs_clock_mono_us() + (int64_t)RS_MAX(timeout_ms, 0) * 1000;
    ing->ngone = 0;
    while (n < max) {
        int wait = 0;
        if (n == 0) {
            int64_t left = deadline - rs_clock_mono_us();
            wait = left > 0 ? (int)((left + 999) / 1000) : 0;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(ing->rk, wait);
        if (!rkm) {
            if (n > 0 || wait == 0) break;
            continue;
        }
        if (!rkm->err && rs_ingest_head(ing, rkm, &msgs[n])) {
            ing->rkms[n++] = rkm; /* held until its payload is decoded */
            continue;
        }
        if (rkm->err) rs_ingest_consumer_error(ing, rkm);
        rd_kafka_message_destroy(rkm);
        if (ing->fatal) break;
    }
    /* Messages of partitions revoked or lost while this poll ran: the new
     * owner reads them (their offsets are not ours to store). */
    if (ing->ngone > 0) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            int gone = 0;
            for (int g = 0; g < ing->ngone && !gone; g++)
                gone = ing->gone[g].topic == msgs[i].topic &&
                       ing->gone[g].partition == msgs[i].partition;
            if (gone) {
                rd_kafka_message_destroy(ing->rkms[i]);
                continue;
            }
            if (k != i) {
                msgs[k] = msgs[i];
                ing->rkms[k] = ing->rkms[i];
            }
            k++;
        }
        if (k < n)
            rs_debug("ingest", "%d message(s) of partitions that left "
                     "during the poll dropped", n - k);
        n = k;
    }
    /* Payloads on the workers (in parallel), then the checks in order. */
    rs_ingest_job_t job = {ing, msgs};
    rs_pool_run(ing->pool, n, RS_INGEST_DECODE_CHUNK, rs_ingest_payloads,
                &job);
    for (int i = 0; i < n; i++) {
        rs_ingest_finish(ing, ing->rkms[i], &msgs[i], ing->derr[i]);
        rd_kafka_message_destroy(ing->rkms[i]);
        ing->rkms[i] = NULL;
    }
    if (ing->nresets > 0) rs_ingest_apply_resets(ing);
    if (ing->fatal && n == 0) return -RS_ERR_KAFKA;
    return n;
}

/* ------------------------------------------------------------ offsets */

/* 1 if storing `offset` would pass a reject whose DLQ copy is pending. */
static int rs_ingest_dlq_blocks(const rs_ingest_t *ing, int topic,
                                int32_t partition, int64_t offset) {
    if (ing->pend_untracked > 0) return 1;
    for (int i = 0; i < ing->pend_hi; i++) {
        const rs_dlq_pend_t *p = &ing->pend[i];
        if (p->used && p->topic == topic && p->partition == partition &&
            p->offset <= offset)
            return 1;
    }
    return 0;
}

static int rs_ingest_dlq_unblocked(const rs_ingest_t *ing, const void *arg) {
    const rs_dlq_pend_t *at = arg;
    return !rs_ingest_dlq_blocks(ing, at->topic, at->partition, at->offset);
}

rs_err_t rs_ingest_store_offset(rs_ingest_t *ing, int topic,
                                int32_t partition, int64_t offset) {
    if (topic != RS_MSG_TOPIC_EVENTS && topic != RS_MSG_TOPIC_LABELS)
        return RS_ERR_INVALID;
    if (ing->dlq_pending > 0 &&
        rs_ingest_dlq_blocks(ing, topic, partition, offset)) {
        rs_dlq_pend_t at = {1, topic, partition, offset};
        if (!rs_ingest_dlq_wait(ing, RS_DLQ_STORE_WAIT_MS,
                                rs_ingest_dlq_unblocked, &at)) {
            rs_warn("ingest", "%lld dead-letter message(s) not acknowledged "
                    "yet: offset not stored", (long long)ing->dlq_pending);
            return RS_ERR_AGAIN;
        }
    }
    if (ing->conf.exactly_once) return RS_OK; /* offsets go in the txn */
    rd_kafka_resp_err_t kerr =
        rd_kafka_offset_store(ing->rkt[topic], partition, offset);
    if (kerr == RD_KAFKA_RESP_ERR__STATE) {
        rs_debug("ingest", "offset of %s/%d not stored: partition no longer "
                 "assigned", rd_kafka_topic_name(ing->rkt[topic]),
                 (int)partition);
        return RS_OK;
    }
    if (kerr) {
        rs_error("ingest", "offset store %s/%d: %s",
                 rd_kafka_topic_name(ing->rkt[topic]), (int)partition,
                 rd_kafka_err2str(kerr));
        return RS_ERR_KAFKA;
    }
    return RS_OK;
}

int rs_ingest_lag(rs_ingest_t *ing, rs_ingest_lag_t *out, int max) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(ing->rk, &parts) || !parts) return 0;
    rd_kafka_position(ing->rk, parts);
    int n = 0;
    for (int i = 0; i < parts->cnt && n < max; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t lo = -1, hi = -1;
        rd_kafka_get_watermark_offsets(ing->rk, tp->topic, tp->partition,
                                       &lo, &hi);
        out[n].topic = !strcmp(tp->topic, ing->conf.topic_labels)
                           ? RS_MSG_TOPIC_LABELS
                           : RS_MSG_TOPIC_EVENTS;
        out[n].partition = tp->partition;
        /* No position yet (nothing read since the last (re-)assign): the
         * offset it was assigned at, which is where it stands -- not the
         * whole partition, which is what it read as before. */
        int64_t pos = tp->offset;
        if (pos < 0 && ing->asg) {
            const rd_kafka_topic_partition_t *a =
                rd_kafka_topic_partition_list_find(ing->asg, tp->topic,
                                                   tp->partition);
            if (a && a->offset >= 0) pos = a->offset;
            else if (a && a->offset == RD_KAFKA_OFFSET_BEGINNING) pos = lo;
            else if (a && a->offset == RD_KAFKA_OFFSET_END) pos = hi;
        }
        out[n].lag = hi >= 0 && pos >= 0 ? RS_MAX(hi - pos, 0) : -1;
        if (out[n].lag >= 0 && ing->im) /* read but held by the merge */
            out[n].lag += rs_imerge_held(ing->im, out[n].topic, tp->partition);
        n++;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

rs_err_t rs_ingest_set_start(rs_ingest_t *ing, const rs_ingest_pos_t *pos,
                             int n) {
    if (n < 0 || (n > 0 && !pos)) return RS_ERR_INVALID;
    free(ing->start);
    ing->start = NULL;
    ing->nstart = 0;
    if (n == 0) return RS_OK;
    ing->start = rs_calloc((size_t)n, sizeof(*pos));
    memcpy(ing->start, pos, (size_t)n * sizeof(*pos));
    ing->nstart = n;
    return RS_OK;
}

void rs_ingest_set_assign_cb(rs_ingest_t *ing, rs_ingest_assign_cb_t *cb,
                             void *opaque) {
    ing->assign_cb = cb;
    ing->assign_opaque = opaque;
}

int rs_ingest_replaying(rs_ingest_t *ing, int64_t *left) {
    int n = 0;
    int64_t sum = 0;
    for (int k = 0; k < ing->replay_cap && ing->nreplay; k++) {
        rs_ingest_pos_t *r = &ing->replay[k];
        if (r->topic < 0) continue;
        n++;
        rd_kafka_topic_partition_list_t *pl =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(
            pl, rd_kafka_topic_name(ing->rkt[r->topic]), r->partition);
        rd_kafka_position(ing->rk, pl);
        int64_t pos = pl->elems[0].offset;
        if (pos < 0) { /* nothing read yet: from the log start */
            int64_t lo = 0, hi = 0;
            rd_kafka_get_watermark_offsets(
                ing->rk, rd_kafka_topic_name(ing->rkt[r->topic]), r->partition,
                &lo, &hi);
            pos = lo > 0 ? lo : 0;
        }
        rd_kafka_topic_partition_list_destroy(pl);
        if (pos >= r->offset) { /* read up to its bound: over */
            rs_info("ingest", "%s/%d: replay over at offset %lld",
                    rd_kafka_topic_name(ing->rkt[r->topic]),
                    (int)r->partition, (long long)pos);
            ing->replay[k].topic = -1;
            ing->nreplay--;
            n--;
            continue;
        }
        sum += r->offset - pos;
    }
    if (left) *left = sum;
    return n;
}

int rs_ingest_replaying_part(const rs_ingest_t *ing, int topic,
                             int32_t partition) {
    for (int k = 0; k < ing->replay_cap && ing->nreplay; k++)
        if (ing->replay[k].topic == topic &&
            ing->replay[k].partition == partition)
            return 1;
    return 0;
}

int rs_ingest_behind(rs_ingest_t *ing, int topic, int32_t partition) {
    if (topic != RS_MSG_TOPIC_EVENTS && topic != RS_MSG_TOPIC_LABELS)
        return 0;
    if (ing->im && rs_imerge_held(ing->im, topic, partition))
        return 1; /* read, held by the task merge, not returned yet */
    const char *tn = rd_kafka_topic_name(ing->rkt[topic]);
    rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(pl, tn, partition);
    rd_kafka_position(ing->rk, pl);
    int64_t pos = pl->elems[0].offset, lo = -1, hi = -1;
    rd_kafka_topic_partition_list_destroy(pl);
    rd_kafka_get_watermark_offsets(ing->rk, tn, partition, &lo, &hi);
    if (hi < 0) return 1; /* not known yet: assume more is coming */
    if (pos < 0) { /* nothing read since the assignment */
        const rd_kafka_topic_partition_t *a =
            ing->asg ? rd_kafka_topic_partition_list_find(ing->asg, tn,
                                                          partition)
                     : NULL;
        pos = a && a->offset >= 0 ? a->offset : lo;
    }
    return pos < hi;
}

int rs_ingest_rebalancing(const rs_ingest_t *ing) {
    return ing->awaiting_assign;
}

int rs_ingest_owns(rs_ingest_t *ing, int topic, int32_t partition) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (topic != RS_MSG_TOPIC_EVENTS && topic != RS_MSG_TOPIC_LABELS)
        return 0;
    if (rd_kafka_assignment(ing->rk, &parts) || !parts) return 0;
    int own = rd_kafka_topic_partition_list_find(
                  parts, rd_kafka_topic_name(ing->rkt[topic]), partition) !=
              NULL;
    rd_kafka_topic_partition_list_destroy(parts);
    return own;
}

rs_err_t rs_ingest_store(rs_ingest_t *ing, const rs_msg_t *msgs, int n) {
    for (int i = 0; i < n; i++) {
        rs_err_t err = rs_ingest_store_offset(ing, msgs[i].topic,
                                              msgs[i].partition,
                                              msgs[i].offset);
        if (err != RS_OK) return err;
    }
    return RS_OK;
}

rs_err_t rs_ingest_commit_sync(rs_ingest_t *ing, char *errstr,
                               size_t errstr_size) {
    if (ing->conf.exactly_once) return RS_OK; /* nothing is ever stored */
    rd_kafka_resp_err_t kerr = rd_kafka_commit(ing->rk, NULL, 0);
    if (kerr && kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "commit: %s",
                       rd_kafka_err2str(kerr));
    return RS_OK;
}

static rs_err_t rs_ingest_pause_resume(rs_ingest_t *ing, int pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_assignment(ing->rk, &parts);
    if (!kerr)
        kerr = pause ? rd_kafka_pause_partitions(ing->rk, parts)
                     : rd_kafka_resume_partitions(ing->rk, parts);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    if (kerr) {
        rs_error("ingest", "%s: %s", pause ? "pause" : "resume",
                 rd_kafka_err2str(kerr));
        return RS_ERR_KAFKA;
    }
    ing->paused = pause;
    if (!pause && ing->im) /* every partition fetches again */
        rs_imerge_resume(ing->im, 1, NULL, NULL);
    return RS_OK;
}

rs_err_t rs_ingest_pause(rs_ingest_t *ing) {
    return rs_ingest_pause_resume(ing, 1);
}

rs_err_t rs_ingest_resume(rs_ingest_t *ing) {
    return rs_ingest_pause_resume(ing, 0);
}

void rs_ingest_stats(const rs_ingest_t *ing, rs_ingest_stats_t *st) {
    rs_ingest_counters_t *c = (rs_ingest_counters_t *)&ing->c;
    st->consumed = RS_LOAD(c->consumed);
    st->events = RS_LOAD(c->events);
    st->labels = RS_LOAD(c->labels);
    st->rejected = RS_LOAD(c->rejected);
    st->errors = RS_LOAD(c->errors);
    st->offset_resets = RS_LOAD(c->offset_resets);
    st->dlq_delivered = RS_LOAD(c->dlq_delivered);
    st->dlq_failed = RS_LOAD(c->dlq_failed);
    st->future = RS_LOAD(c->future);
    st->dlq_lost = RS_LOAD(c->dlq_lost);
    st->assigned = RS_LOAD(c->assigned);
    st->rebalances = RS_LOAD(c->rebalances);
    st->merge_held = RS_LOAD(c->merge_held);
    st->merge_reordered = RS_LOAD(c->merge_reordered);
    st->merge_held_max = RS_LOAD(c->merge_held_max);
    st->merge_merged = RS_LOAD(c->merge_merged);
    st->merge_paused = RS_LOAD(c->merge_paused);
    st->merge_end_checks = RS_LOAD(c->merge_end_checks);
    st->merge_reorder_behind_ms = RS_LOAD(c->merge_reorder_behind_ms);
    st->merge_reorder_idle_ms = RS_LOAD(c->merge_reorder_idle_ms);
}

rd_kafka_t *rs_ingest_handle(rs_ingest_t *ing) { return ing->rk; }

int rs_ingest_on_mock(rs_ingest_t *ing, int timeout_ms) {
    char *id = rd_kafka_clusterid(ing->rk, timeout_ms);
    if (!id) return -1;
    int mock = !strncmp(id, "mockCluster", 11); /* rdkafka_mock.c's id */
    rd_kafka_mem_free(ing->rk, id);
    return mock;
}

rd_kafka_consumer_group_metadata_t *rs_ingest_group_metadata(rs_ingest_t *ing) {
    return rd_kafka_consumer_group_metadata(ing->rk);
}

void rs_ingest_set_revoke_cb(rs_ingest_t *ing, rs_ingest_revoke_cb_t *cb,
                             void *opaque) {
    ing->revoke_cb = cb;
    ing->revoke_opaque = opaque;
}

/* Number of partitions assigned (librdkafka's view); -1 on error. */
static int rs_ingest_assigned_cnt(rd_kafka_t *rk) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_assignment(rk, &parts);
    int n = kerr || !parts ? -1 : parts->cnt;
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

/* Give the partitions back before rd_kafka_consumer_close (issue 13):
 * pause them (nothing more is read, positions stay where the owner left
 * them), unsubscribe, and serve the rebalance callbacks that follow here,
 * while the group handle is not terminating, until nothing is assigned
 * and no rebalance came for RS_LEAVE_QUIET_MS, at most RS_LEAVE_WAIT_MS.
 * The revoke is served as in any rebalance: the owner's revoke callback
 * (exactly-once: the transaction is committed) and the commit of the
 * stored offsets (at-least-once) run here instead of inside the close.
 * Why: librdkafka 2.0.2 can block forever in rd_kafka_assign() called
 * from a rebalance callback that rd_kafka_consumer_close serves (seen
 * after an "Unknown member" commit failure: the error rebalance's
 * rd_kafka_assign(NULL) never returned; upstream librdkafka #4884,
 * #4527).  With nothing assigned and no subscription left, the close has
 * no rebalance to serve.  Past the bound it logs and closes anyway. */
static void rs_ingest_leave(rs_ingest_t *ing) {
    rd_kafka_t *rk = ing->rk;
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!rd_kafka_assignment(rk, &parts) && parts && parts->cnt)
        rd_kafka_pause_partitions(rk, parts);
    if (parts) rd_kafka_topic_partition_list_destroy(parts);
    ing->leaving = 1;
    rd_kafka_resp_err_t kerr = rd_kafka_unsubscribe(rk);
    if (kerr) {
        rs_warn("ingest", "unsubscribe: %s", rd_kafka_err2str(kerr));
        return;
    }
    int64_t t0 = rs_clock_mono_us();
    int64_t deadline = t0 + RS_LEAVE_WAIT_MS * 1000LL;
    int n = -1, dropped = 0;
    for (;;) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 50);
        if (rkm) {
            if (!rkm->err) dropped++;
            rd_kafka_message_destroy(rkm);
        }
        int64_t now = rs_clock_mono_us();
        n = rs_ingest_assigned_cnt(rk);
        if (n == 0 && now - RS_MAX(ing->rebalance_us, t0) >=
                          RS_LEAVE_QUIET_MS * 1000LL)
            break;
        if (now > deadline) {
            rs_error("ingest", "%d partition(s) still assigned %d ms after "
                     "unsubscribe: closing anyway", n, RS_LEAVE_WAIT_MS);
            break;
        }
    }
    ing->ngone = 0; /* no rs_ingest_poll after this */
    if (dropped)
        rs_warn("ingest", "%d message(s) read while leaving dropped (not "
                "stored: the next owner reads them)", dropped);
}

void rs_ingest_destroy(rs_ingest_t *ing) {
    if (!ing) return;
    if (ing->dlq) {
        rs_ingest_dlq_wait(ing, RS_DLQ_CLOSE_WAIT_MS, rs_ingest_dlq_idle,
                           NULL);
        if (ing->dlq_pending > 0)
            rs_error("ingest", "%lld dead-letter message(s) undelivered at "
                     "close", (long long)ing->dlq_pending);
    }
    if (ing->im) {
        rs_imerge_stats_t ms;
        rs_imerge_stats(ing->im, &ms);
        rs_info("ingest", "task merge: %llu message(s) handed over in time "
                "order (%llu reordered), at most %llu waiting at once, "
                "%llu fetch pause(s), %llu end(s) seen by the high "
                "watermark, %llu left waiting (read again by the next "
                "owner)", (unsigned long long)ms.merged,
                (unsigned long long)ms.reordered,
                (unsigned long long)ms.held_max,
                (unsigned long long)ms.paused,
                (unsigned long long)ms.end_checks,
                (unsigned long long)ms.held);
    }
    if (ing->rk) {
        /* Revoke (commits stored offsets, or the owner its transaction)
         * and leave the group, then close with nothing left to revoke. */
        rs_ingest_leave(ing);
        rd_kafka_resp_err_t kerr = rd_kafka_consumer_close(ing->rk);
        if (kerr)
            rs_warn("ingest", "consumer close: %s", rd_kafka_err2str(kerr));
        for (int i = 0; i < 2; i++)
            if (ing->rkt[i]) rd_kafka_topic_destroy(ing->rkt[i]);
        rd_kafka_destroy(ing->rk);
    }
    if (ing->dlq) rd_kafka_destroy(ing->dlq);
    while (ing->retry_head) {
        rs_dlq_retry_t *re = ing->retry_head;
        ing->retry_head = re->next;
        if (re->hdrs) rd_kafka_headers_destroy(re->hdrs);
        free(re);
    }
    rs_free(ing->pend);
    free(ing->wm);
    free(ing->rkms);
    free(ing->derr);
    free(ing->pm);
    rs_imerge_destroy(ing->im);
    free(ing->start);
    free(ing->replay);
    free(ing->gone);
    free(ing->resets);
    if (ing->asg) rd_kafka_topic_partition_list_destroy(ing->asg);
    rs_free(ing);
}
