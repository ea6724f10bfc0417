/* standby.h -- standby replicas (issue 13 item 2): warm copies of the
 * state of partitions this instance does not own, kept by reading their
 * changelog partitions continuously (Kafka Streams' standby tasks), so
 * that a failover restores only the changelog tail.
 *
 * Design note
 * -----------
 * Where a standby copy lives: in the same stores as the active state
 * (pstate.h: entity slots, event-index entries, sequence caches and
 * duplicates tagged with the partition), for partitions that are not
 * assigned here.  Nothing else touches a partition's tagged state but its
 * own input, so a partition that is not consumed here changes only by the
 * records applied below; when it is assigned here the state is already in
 * RAM (parts.h takes it, then reads the changelog after the standby's
 * position).  With maintenance the copy's machines (pstate.h 'A') sit in
 * the alert tables beside the owned ones; rs_standby_new tells the alerts
 * which partitions are copies (alerts.h rs_alerts_set_foreign), so that
 * riskstream_alerts_open counts only the owned partitions' episodes.
 *
 * Reading: one consumer of <group>-state-changelog with MANUAL assignment
 * (no group membership, nothing committed), isolation.level
 * read_committed, polled between batches on the service thread
 * (rs_standby_poll).  The records of a partition are held until their
 * batch's marker is read, then applied in order (rs_pstate_apply), exactly
 * as rs_changelog_restore does: a standby never holds records past the
 * last marker it read, and its position (the offset after that marker and
 * the marker's input positions) always names the state it holds.
 * Nothing is applied while a feature checkpoint is in progress (the
 * caller does not poll then: the records wait in the consumer).
 *
 * Placement (rs_standby_place; pure): the consumer group's range assignor
 * gives every member a contiguous block of partitions in member order,
 * and librdkafka's C API has no custom assignor nor a view of the other
 * members' assignments, so an instance keeps standbys of the N x k
 * partitions that FOLLOW its own block (k partitions owned; mod the
 * partition count; never its own): with P partitions and M members where
 * M divides P, every partition owned elsewhere has exactly min(N, M - 1)
 * standbys, each on another instance.  Otherwise (blocks of unequal size)
 * some partitions get one standby more or fewer (limit, README).  An
 * instance that owns nothing keeps none.
 *
 * Cost: a standby copy costs what the active state of that partition
 * costs (same stores: entity slots, sequence caches, event-index entries,
 * duplicates), so features.max_keys, seq.max_entities,
 * features.label_index and service.dedup_max must hold (1 + N) x the
 * owned share; plus the changelog read (the owner's write rate) and the
 * records of one batch per partition held until its marker.
 *
 * Threads: the service thread (rs_standby_stats: any thread).
 */
#ifndef RS_STANDBY_H
#define RS_STANDBY_H

#include "common/common.h"
#include "common/config.h"
#include "scoring/pstate.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_standby_s rs_standby_t;

typedef struct rs_standby_stats_s {
    int64_t partitions;      /* standby copies kept now                   */
    int64_t lag;             /* changelog records after the applied
                              * markers, summed over them (high watermark
                              * as last fetched)                          */
    int64_t lag_max;         /* the largest of one partition              */
    uint64_t records;        /* changelog records applied                 */
    uint64_t taken;          /* copies taken over by an assignment        */
    uint64_t warm_adds;      /* revoked partitions kept warm              */
    uint64_t cold_adds;      /* copies started from the changelog start   */
} rs_standby_stats_t;

/* Standbys over the stores ps (borrowed) from changelog `topic` through
 * bootstrap / kafka props (borrowed: the app's).  NULL + errstr
 * (RS_ERR_KAFKA) if the consumer cannot be made. */
rs_standby_t *rs_standby_new(const rs_kv_t *kafka, const char *bootstrap,
                             const char *topic, rs_pstate_t *ps,
                             char *errstr, size_t errstr_size);
/* Stops reading; the copies' state stays in the stores (the caller's). */
void rs_standby_destroy(rs_standby_t *sb);

/* The partitions to keep standbys of: the n x nowned partitions after
 * the largest owned one (mod nparts) that are not owned, into out
 * (capacity nparts); returns how many.  Pure. */
int rs_standby_place(const int32_t *owned, int nowned, int nparts, int n,
                     int32_t *out);

/* The changelog topic's partition count (metadata; cached once known),
 * -1 if not known within timeout_ms. */
int rs_standby_nparts(rs_standby_t *sb, int timeout_ms);

/* Keep partition p warm.  pos: the state of p in the stores covers it
 * (pos->changelog >= 0: the offset after the last record it holds; a
 * revoked partition's); NULL: cold -- p's state is dropped and read from
 * the changelog's start.  No Kafka call (the next poll assigns). */
void rs_standby_add(rs_standby_t *sb, int32_t p, const rs_pstate_pos_t *pos);
/* Stop keeping p and drop its state from the stores (*nkeys may be NULL:
 * entity slots dropped).  Not a standby: nothing. */
void rs_standby_remove(rs_standby_t *sb, int32_t p, uint64_t *nkeys);
/* 1 if p is kept here. */
int rs_standby_has(const rs_standby_t *sb, int32_t p);
/* p is assigned here: stop keeping it.  1 with *pos (the last marker's
 * input positions, pos->changelog the offset after it) if the stores hold
 * a state of p at a marker; 0 if not (a cold copy that read no marker
 * yet: whatever it applied is dropped), or if p is not a standby. */
int rs_standby_take(rs_standby_t *sb, int32_t p, rs_pstate_pos_t *pos);

/* Read what arrived (at most max_ms) and apply every batch whose marker
 * came.  Returns the records applied, -1 on a Kafka error of the
 * consumer (logged).  A partition whose record cannot be applied is
 * dropped and no longer kept (logged). */
int rs_standby_poll(rs_standby_t *sb, int max_ms);

/* The standby position of p: offset after the last applied marker (-1:
 * none, or not a standby). */
int64_t rs_standby_position(const rs_standby_t *sb, int32_t p);

/* Any thread. */
void rs_standby_stats(const rs_standby_t *sb, rs_standby_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* RS_STANDBY_H */
