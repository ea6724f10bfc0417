/* cpstage_int.h -- the counterparty stage's merge core, without Kafka
 * (private to scoring/cpstage*.c and its tests).
 *
 * The core keeps the shared feature store (an rs_features_t in SHARED
 * scope: every non-entity key) and feeds it the input of EVERY partition
 * of the events and labels topics in one canonical order, a k-way merge
 * of the partitions by (time, topic, partition): an event by its
 * event_time_ms, a label by its label_time_ms; a partition's own order is
 * kept.  The merge takes the smallest head only when every partition has
 * a head or is idle (at its end for idle_wait_ms), so the order depends
 * on the partitions' contents only, never on how the fetches interleave.
 * For each event it merges it keeps the event's shared features (computed
 * from the store just before the event, as rs_features_process does) in
 * a per-partition FIFO of results, by offset, until the caller trims it.
 *
 * Raw messages are held as the caller gives them (payload pointer +
 * handle, released through conf.release once merged or dropped); only the
 * head of each partition is decoded (once).
 *
 * Threads: no thread of its own and no locks: every call on one handle
 * must be serialised by the caller (cpstage.c holds one mutex around every
 * call: the stage thread pushes and merges; the scoring thread looks up
 * results and, while it waits for one, merges too).
 */
#ifndef RS_CPSTAGE_INT_H
#define RS_CPSTAGE_INT_H

#include "common/tmerge.h"
#include "features/features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_cpm_conf_s {
    const rs_features_conf_t *features; /* the service's; the core builds
                                         * its store from it (max_keys 1)  */
    int events_format, labels_format;   /* rs_format_t                      */
    int nparts[2];                      /* partitions of events, labels     */
    int64_t dedup_window_ms;            /* 0: no duplicate detection        */
    int64_t dedup_max;
    int64_t future_skew_ms;             /* topics.future_skew (0: off)      */
    int64_t idle_wait_ms;               /* cpstage.idle_wait                */
    void (*release)(void *handle);      /* a raw message is done (may be
                                         * NULL)                            */
} rs_cpm_conf_t;

typedef struct rs_cpm_s rs_cpm_t;

/* Sources of raw messages (rs_cpm_push_from): the stage's own consumer,
 * which reads every partition from the beginning, and a feed (the scoring
 * consumer's read-ahead: the partitions this instance owns, from wherever
 * the group is). */
#define RS_CPM_SRC_STAGE 0
#define RS_CPM_SRC_FEED 1
#define RS_CPM_SOURCES 2

typedef struct rs_cpm_stats_s {
    uint64_t events;       /* merged into the store                        */
    uint64_t labels;       /* merged (applied or unknown)                  */
    uint64_t rejected;     /* undecodable or invalid, skipped              */
    uint64_t duplicates;   /* events seen again (dedup window), skipped    */
    uint64_t reordered;    /* merged after a message of another partition
                            * that the canonical order puts after it (by
                            * each partition's running max time, topic,
                            * partition: rs_tmerge_take_t): arrived on a
                            * partition the merge had passed as idle;
                            * every one of a late batch                    */
    int reorder_topic;     /* the last message merged out of order: its    */
    int32_t reorder_part;  /* topic and partition, how far behind the     */
    int64_t reorder_behind_ms; /* newest time of another partition merged
                                * ahead of it (event or label time)       */
    int64_t reorder_late_ms;   /* and how late it arrived (idle_wait
                                * clock): after the earliest arrival of
                                * the messages merged ahead of it
                                * (rs_tmerge_take_t.late_ms; an idle_wait
                                * of late_ms + 1 would have held them)   */
    int reorder_late_min;      /* ... a lower bound (rs_tmerge_take_t)    */
    int64_t reorder_late_max_ms; /* the largest late_ms so far            */
    uint64_t reorder_late[RS_TMERGE_LATE_BUCKETS]; /* reordered messages
                                * by the idle_wait that would have merged
                                * them in order (tmerge.h): [0] 1 ms, [k]
                                * 2^k ms, the last: more or not known;
                                * logged with rs_tmerge_late_advice       */
    uint64_t ends_eof;     /* partitions found at their end by the
                            * consumer's PARTITION_EOF (rs_cpm_eof)        */
    uint64_t ends_hwm;     /* ... by its cached high watermark, sooner
                            * (rs_cpm_hwm)                                 */
    uint64_t held;         /* results in the FIFOs                         */
    uint64_t buffered;     /* raw messages waiting                         */
    int64_t frontier_ms;   /* time key of the last merged message          */
    int blocked_topic;     /* a partition the merge waits for (-1: none)   */
    int32_t blocked_part;
    uint64_t src_pushed[RS_CPM_SOURCES]; /* accepted, per source          */
    uint64_t src_dup[RS_CPM_SOURCES];    /* below what was pushed: read by
                                          * the other source first        */
    uint64_t src_gap[RS_CPM_SOURCES];    /* not contiguous with what was
                                          * pushed (the source is ahead)  */
} rs_cpm_stats_t;

/* NULL with errstr on a bad configuration (the features' messages). */
rs_cpm_t *rs_cpm_new(const rs_cpm_conf_t *conf, char *errstr,
                     size_t errstr_size);
/* Releases every raw message still held.  NULL is a no-op. */
void rs_cpm_destroy(rs_cpm_t *m);

/* Shared features per event (rs_features_is_shared of the layout). */
int rs_cpm_nshared(const rs_cpm_t *m);
/* Their indexes in the layout: [nshared]. */
const int *rs_cpm_shared_idx(const rs_cpm_t *m);

/* One raw message of (topic 0 events / 1 labels, partition, offset), in
 * the partition's order.  The core keeps `payload` (len bytes) until it
 * calls conf.release(handle).  A partition out of range is released at
 * once and ignored (returns -1). */
int rs_cpm_push(rs_cpm_t *m, int topic, int32_t part, int64_t offset,
                const void *payload, size_t len, void *handle);
/* The same from source `src` (RS_CPM_SRC_*; rs_cpm_push is the stage's
 * own consumer).  Each source must give each partition's messages in the
 * order it read them, contiguously since the start (the stage) or since
 * its last rs_cpm_src_reset (a feed).  A message is pushed only if it is
 * the partition's next one: at or past the end of what was pushed, and
 * the source has read everything between (its previous message is below
 * that end; for a feed not pushed since its reset, also the message right
 * after its previous one: two adjacent offsets).  Any
 * other is released at once and counted (src_dup: the other source pushed
 * it already; src_gap: the source is ahead, the other must catch up).  So
 * the pushed sequence of a partition is its exact sequence of messages,
 * whichever source is ahead, with transaction markers and compacted gaps.
 * Returns 0 pushed, 1 released, -1 out of range (released). */
int rs_cpm_push_from(rs_cpm_t *m, int src, int topic, int32_t part,
                     int64_t offset, const void *payload, size_t len,
                     void *handle);
/* Feed source `src` (not the stage) starts again from an unknown position
 * on every partition (its consumer was assigned, sought or rebalanced):
 * its next messages are pushed only once it is in step again. */
void rs_cpm_src_reset(rs_cpm_t *m, int src);

/* The partition reached its end (no message after the last pushed), at
 * now_ms (the idle_wait clock) if it was not at its end already. */
void rs_cpm_eof(rs_cpm_t *m, int topic, int32_t part, int64_t now_ms);
/* The consumer's cached high watermark `hwm` of (topic, part) (what its
 * last fetch response said the partition holds; no broker round trip):
 * when every offset below it has been pushed, the partition is at its end
 * now, as rs_cpm_eof says, one fetch sooner (librdkafka reports
 * PARTITION_EOF only from a fetch AT the end: the next round trip after
 * the one that brought the last message, held by the broker up to
 * fetch.wait.max.ms).  Never passes a partition with data the consumer
 * knows of: a message below hwm not pushed yet (fetched but still queued,
 * or not fetched) keeps it unknown; offsets the consumer never hands out
 * (transaction markers, compacted gaps) leave it to PARTITION_EOF.
 * Returns 1 if this marked the partition at its end, 0 if it was already
 * or is not (hwm < 0: unknown). */
int rs_cpm_hwm(rs_cpm_t *m, int topic, int32_t part, int64_t hwm,
               int64_t now_ms);
/* The partition is NOT at its end after all: a reader's cached high
 * watermark `hwm` shows a message past what was pushed (a partition
 * whose reader stopped fetching, so no push clears its end: cpstage.c's
 * partitions paused for the feed).  Returns 1 if this cleared it. */
int rs_cpm_not_end(rs_cpm_t *m, int topic, int32_t part, int64_t hwm);
/* The messages pushed from now on arrived at now_ms (the idle_wait clock;
 * 0 until called). */
void rs_cpm_arrival(rs_cpm_t *m, int64_t now_ms);
/* Merge up to `max` messages; returns how many were merged (0: blocked
 * or nothing to do).  now_ms is the idle_wait clock: with idle_wait > 0 a
 * partition at its end and empty holds the head to merge back until
 * now_ms is idle_wait past that head's arrival (and past the partition's
 * end, if later); the stage passes the last time it found the consumer
 * with nothing more queued. */
int rs_cpm_step(rs_cpm_t *m, int64_t now_ms, int max);

/* One past the last offset pushed on (topic, part), 0 if none: it grows
 * with every push (the epoch of a watermark read without the caller's
 * lock: cpstage.c). */
int64_t rs_cpm_end_off(const rs_cpm_t *m, int topic, int32_t part);

/* Raw messages buffered on (topic, part) (for the fetch pause). */
uint32_t rs_cpm_buffered(const rs_cpm_t *m, int topic, int32_t part);

/* Results of events partition `part` below `floor` are dropped. */
void rs_cpm_trim(rs_cpm_t *m, int32_t part, int64_t floor);

/* The shared features of the event at (part, offset) whose id hashes to
 * `idh` (rs_hash_str of the id): written to out[idx[k]] for k <
 * nshared.  Returns RS_OK, RS_ERR_AGAIN (not merged yet), or
 * RS_ERR_NOTFOUND (merged past it without a result: trimmed, skipped as
 * a duplicate or invalid, or another event at that offset). */
rs_err_t rs_cpm_find(const rs_cpm_t *m, int32_t part, int64_t offset,
                     uint64_t idh, float *out);

/* 1 once every partition has been merged to its end at least once (the
 * store has read what the topics held). */
int rs_cpm_caught_up(const rs_cpm_t *m);

void rs_cpm_stats(const rs_cpm_t *m, rs_cpm_stats_t *st);
/* The store's counters (keys, labels applied, ...). */
void rs_cpm_store_stats(const rs_cpm_t *m, rs_features_stats_t *st);

/* Tests only (cpstage.c): while set, the stage's own thread reads and
 * pushes but never merges, so only a waiting lookup can. */
extern _Atomic int rs_cpstage_test_nomerge;
/* Tests only: while set, the stage's own thread does not read its
 * consumer (it merges what others push: the feed). */
extern _Atomic int rs_cpstage_test_noread;
/* Tests only: feed_late's delay in ms (0: the default, 1 s). */
extern _Atomic int64_t rs_cpstage_test_late_ms;

#ifdef __cplusplus
}
#endif
#endif /* RS_CPSTAGE_INT_H */
