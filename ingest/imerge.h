/* imerge.h -- the scoring consumer's per-task merge (issue 13): the
 * messages of one task (input partition N: events/N with labels/N) are
 * handed to scoring in time order, as Kafka Streams orders a task's
 * records (max.task.idle.ms), so label-aware entity features do not
 * depend on how the fetches of the two topics interleave.
 *
 * The consumer (ingest.c) decodes each message into a slot of this module
 * (rs_imerge_slot), queues it on its (topic, partition) (rs_imerge_push)
 * and takes merged messages out: copied into the caller's array
 * (rs_imerge_pop), or lent (rs_imerge_pop_ref: the slots themselves, no
 * copy; see Memory).  The ordering decisions are the shared core's (common/tmerge.h,
 * also the counterparty stage's), with input 0 = events/N, 1 = labels/N:
 *  - key: an event's event_time_ms, a label's label_time_ms (its arrival,
 *    features.h); ties go to the event (input 0): a label arriving at t
 *    counts only for events after t (features.h), so at equal time the
 *    event is scored first, as if the label came just after it;
 *  - a message goes only when the other topic of its task has a head, or
 *    is at its end (librdkafka's PARTITION_EOF, or the next offset caught
 *    up to its high watermark as librdkafka reports it: the callback) and,
 *    with idle_wait > 0, that long after the message arrived;
 *  - a partition's own order is kept; a reject (bad input) goes as soon as
 *    it is the head of its partition (it touches no state);
 *  - a task with one topic assigned (a labels topic with fewer
 *    partitions) is passed through in fetch order.
 * Different tasks never wait for each other.  A held message is not
 * returned, so its offset is never stored or committed ahead of it.
 *
 * Memory: slots are rs_msg_t in chunks of 256 that never move, reused
 * through a free list; queues grow by doubling; nothing per message once
 * warm.  rs_imerge_push also takes an rs_msg_t that is not one of its
 * slots if the caller took one (rs_imerge_slot) in exchange: the
 * read-ahead hands its decoded slot over and keeps the free one, so no
 * message is copied on the way in.  The merge frees only its chunks;
 * the caller keeps the storage it exchanged alive until the merge is
 * destroyed (ingest.c frees both together).  A slot handed out by
 * rs_imerge_pop_ref is lent: it is neither free nor queued, so nothing
 * -- rs_imerge_slot, a push, rs_imerge_assign dropping its input (a
 * rebalance), another pop -- reuses or changes it until the caller gives
 * every lent slot back at once with rs_imerge_reclaim (the consumer does
 * so at its next poll).  While slots are lent the pool holds that many
 * more (at most one batch: a new chunk once, cold).
 * An input with more than hold_max messages queued is reported by
 * rs_imerge_push (the consumer pauses its fetch) and by rs_imerge_resume
 * once below half.
 *
 * Threads: one owner thread (the consumer's).
 */
#ifndef RS_IMERGE_H
#define RS_IMERGE_H

#include "common/tmerge.h"
#include "ingest/ingest.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_imerge_s rs_imerge_t;

/* 1 if (topic, partition) has nothing after next_offset - 1 to fetch (the
 * consumer's cached high watermark <= next_offset).  Owner thread. */
typedef int rs_imerge_end_cb_t(void *opaque, int topic, int32_t partition,
                               int64_t next_offset);
/* (topic, partition) is below half its hold limit again (resume it). */
typedef void rs_imerge_resume_cb_t(void *opaque, int topic,
                                   int32_t partition);

typedef struct rs_imerge_stats_s {
    uint64_t held;         /* messages queued now                          */
    uint64_t held_max;     /* most ever queued at once                     */
    uint64_t merged;       /* messages handed out                          */
    uint64_t reordered;    /* handed out after a message of the other
                            * topic of their task that the merge, had
                            * everything been there, hands out after
                            * them (by time, each topic's running max,
                            * then topic: rs_tmerge_take_t): their topic
                            * was passed as idle before they arrived
                            * (live stream, idle wait too short); every
                            * one of a late batch                          */
    int reorder_topic;         /* the last one: RS_MSG_TOPIC_*,           */
    int32_t reorder_part;      /* its partition (task),                   */
    int64_t reorder_behind_ms; /* how far behind the newest time of the
                                * other topic handed out ahead of it,     */
    int64_t reorder_late_ms;   /* how late it arrived: after the earliest
                                * arrival of the newer messages of its
                                * task handed out ahead of it
                                * (rs_tmerge_take_t.late_ms: an idle wait
                                * of late_ms + 1 would have held them)    */
    int reorder_late_min;      /* ... a lower bound (rs_tmerge_take_t)    */
    int64_t reorder_late_max_ms; /* the largest late_ms so far            */
    uint64_t reorder_late[RS_TMERGE_LATE_BUCKETS]; /* reordered messages
                                * by the idle wait that would have handed
                                * them out in order (tmerge.h buckets;
                                * rs_tmerge_late_advice)                  */
    uint64_t end_checks;   /* inputs found at their end by the watermark  */
    uint64_t paused;       /* inputs paused for hold_max (total)           */
} rs_imerge_stats_t;

/* A merge with idle_wait_ms >= 0 and hold_max >= 1 messages per input;
 * end_cb may be NULL (only PARTITION_EOF then).  Never NULL.  Free with
 * rs_imerge_destroy (NULL is a no-op).  @locality the owner thread */
rs_imerge_t *rs_imerge_new(int64_t idle_wait_ms, uint32_t hold_max,
                           rs_imerge_end_cb_t *end_cb, void *opaque);
void rs_imerge_destroy(rs_imerge_t *im);

/* A free slot to decode a message into; owned by im, valid until given
 * to rs_imerge_push or rs_imerge_unslot.  @locality the owner thread */
rs_msg_t *rs_imerge_slot(rs_imerge_t *im);
/* Copy message m to out as the merge copies its slots: the fields of
 * m's kind only (unused event fields zeroed).  @locality any thread */
void rs_imerge_copy(rs_msg_t *out, const rs_msg_t *m);

/* Give back a slot that was not pushed.  @locality the owner thread */
void rs_imerge_unslot(rs_imerge_t *im, rs_msg_t *m);

/* Queue slot m (decoded: topic, partition, offset, kind set; a slot of
 * im's, or storage given in exchange for one: see Memory above) on its
 * (topic, partition), arrived at at_ms (the idle clock); that input is no
 * longer at its end and counts as assigned.  Returns 1 the first time the
 * input holds hold_max messages (pause its fetch), else 0.
 * @locality the owner thread */
int rs_imerge_push(rs_imerge_t *im, rs_msg_t *m, int64_t at_ms);

/* (topic, partition) reached its end (PARTITION_EOF) at now_ms.
 * @locality the owner thread */
void rs_imerge_eof(rs_imerge_t *im, int topic, int32_t partition,
                   int64_t now_ms);

/* (topic, partition) is assigned here (on 1) or left (0).  Leaving or a
 * new assignment drops its queued messages (not returned: the next reader
 * reads them again) and its end flag.  @locality the owner thread */
void rs_imerge_assign(rs_imerge_t *im, int topic, int32_t partition, int on);

/* Up to max merged messages copied into out[0..n) at clock now_ms (the
 * idle clock: the last time the consumer's queue was found empty);
 * returns n.  Copied: the head fields and the part of the kind -- an
 * event's ev (its unused numeric / categorical entries zeroed, as the
 * decoders leave them), a label's lb, a reject's everything; the other
 * kind's fields and an event's or label's reason past [0] = '\0' are left
 * as out had them (rs_msg_t: not meaningful).  @locality the owner thread */
int rs_imerge_pop(rs_imerge_t *im, rs_msg_t *out, int max, int64_t now_ms);

/* rs_imerge_pop without the copy: the same messages in the same order,
 * out[0..n) pointing at the slots themselves (every field as decoded).
 * The slots are lent (Memory above): unchanged and never reused until
 * rs_imerge_reclaim.  @locality the owner thread */
int rs_imerge_pop_ref(rs_imerge_t *im, const rs_msg_t **out, int max,
                      int64_t now_ms);

/* Every slot lent by rs_imerge_pop_ref is free again: the pointers it
 * returned are invalid from here.  @locality the owner thread */
void rs_imerge_reclaim(rs_imerge_t *im);

/* Slots lent now (tests).  @locality the owner thread */
int rs_imerge_lent(const rs_imerge_t *im);

/* Inputs paused for hold_max that are below half of it again: the flag is
 * cleared and resume_cb called for each (all = 1: every paused input,
 * e.g. after the consumer resumed all its partitions).
 * @locality the owner thread */
void rs_imerge_resume(rs_imerge_t *im, int all, rs_imerge_resume_cb_t *cb,
                      void *opaque);

/* Messages queued on (topic, partition).  @locality the owner thread */
uint32_t rs_imerge_held(const rs_imerge_t *im, int topic, int32_t partition);

void rs_imerge_stats(const rs_imerge_t *im, rs_imerge_stats_t *st);

#ifdef __cplusplus
}
#endif

#endif /* RS_IMERGE_H */
