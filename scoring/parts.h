/* parts.h -- which input partitions this instance holds state for, and
 * what happens to that state when the consumer group moves partitions:
 * the policy over the stores of pstate.h.
 *
 * Design note
 * -----------
 * Per input partition N (a task: events/N + labels/N) one of
 *   NONE    no state here;
 *   OWNED   assigned, its state in RAM, being scored;
 *   PARKED  its state in RAM but not assigned: revoked gracefully (after
 *           a flush: every batch delivered, offsets stored and, in the
 *           ingest revoke, committed), or restored from the instance
 *           checkpoint at start.  An eager rebalance revokes everything
 *           and usually gives most of it back: a PARKED partition that
 *           comes back is used as it is (no I/O); one that is still not
 *           assigned once the rebalance is over (rs_parts_tick) is saved
 *           to its partition checkpoint and dropped from RAM.
 * Assign (rs_parts_assign, inside the consumer's rebalance): OWNED/PARKED
 * -> start where the state ends; else the partition checkpoint if there
 * is one, with the changelog (changelog.h) applied on top from the offset
 * the checkpoint covers when the changelog holds more (a checkpoint that
 * does not know its changelog offset: the changelog alone when it covers
 * more input); else the changelog alone; else REPLAY: start at the
 * beginning of the partition, the committed offset as the replay bound
 * (state rebuilt, nothing published twice) -- never a silent cold start.
 * A changelog that cannot be used (records deleted, malformed) drops what
 * was loaded: the partition is replayed.
 * Revoke (rs_parts_revoke): flush, then PARKED; lost (session timeout) or
 * a failed flush: the state may be ahead of what was delivered: dropped,
 * never saved.
 *
 * The service provides the operations below (its offsets, learning logs,
 * flush); everything here runs on the service thread.
 */
#ifndef RS_PARTS_H
#define RS_PARTS_H

#include "ingest/ingest.h"
#include "scoring/pstate.h"
#include "scoring/standby.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_PARTS_MAX 4096 /* partitions tracked (as the service's)     */

typedef struct rs_parts_ops_s {
    void *svc;
    /* Deliver every batch in flight and store its offsets (exactly-once:
     * commit the open transaction).  0 ok, -1 if it could not (timeout,
     * fatal): the state is then ahead of what was delivered. */
    int (*flush)(void *svc);
    /* Next offset applied to the state of (topic, partition); -1 none. */
    int64_t (*applied)(void *svc, int topic, int32_t partition);
    void (*set_applied)(void *svc, int topic, int32_t partition,
                        int64_t offset);
    /* The end of the partition's learning log now (0 if none). */
    uint64_t (*log_end)(void *svc, int32_t partition);
    /* The partition's learning log: rewind it to `end` when opened next
     * (a restored state); close it now (detached from the trainer). */
    void (*log_restore)(void *svc, int32_t partition, uint64_t end);
    void (*log_close)(void *svc, int32_t partition);
    /* Abort a feature checkpoint in progress (state is about to move). */
    void (*ckpt_abort)(void *svc);
    /* The consumer: owns events/partition now; between an eager revoke
     * and its assignment. */
    int (*owns)(void *svc, int32_t partition);
    int (*rebalancing)(void *svc);
    /* The changelog (changelog.h; -1 / RS_ERR_NOTFOUND when off): its high
     * watermark, the end of what this instance wrote to it, a restore. */
    int64_t (*cl_hwm)(void *svc, int32_t partition);
    int64_t (*cl_end)(void *svc, int32_t partition);
    rs_err_t (*cl_restore)(void *svc, int32_t partition, int64_t from,
                           rs_pstate_pos_t *pos, uint64_t *nrec,
                           char *errstr, size_t errstr_size);
} rs_parts_ops_t;

typedef struct rs_parts_s rs_parts_t;

/* Over the stores ps (borrowed).  ops is copied. */
rs_parts_t *rs_parts_new(rs_pstate_t *ps, const rs_parts_ops_t *ops);
void rs_parts_destroy(rs_parts_t *pt);

/* At start, after the instance checkpoint was restored: partitions with
 * state from it are PARKED (used if assigned here, saved and dropped if
 * not). */
void rs_parts_held(rs_parts_t *pt, int32_t partition);

/* The ingest callbacks (rs_ingest_set_assign_cb / _revoke_cb). */
void rs_parts_assign(void *opaque, rs_ingest_start_t *parts, int n);
void rs_parts_revoke(void *opaque, const rs_ingest_pos_t *parts, int n,
                     int lost);

/* Between polls: resolve PARKED partitions that are not coming back. */
void rs_parts_tick(rs_parts_t *pt);

/* Labels met before their event: a replay, or a consumer that catches
 * up after a pause (a rebalance, a restore), reads the events and labels
 * topics side by side, so a label can come before the event it labels,
 * which used to lose it for good (even inside one poll: a label before its
 * event in the same batch).  A label whose event the feature engine does
 * not know yet (RS_ERR_NOTFOUND) is held (at most RS_PARTS_HELD, the
 * oldest dropped beyond) and applied right after its event is processed;
 * after each batch, the ones whose events partition has nothing more to
 * bring are dropped (unknown events).  `replaying(svc, partition)`: the
 * events partition replays or its consumer is behind. */
#define RS_PARTS_HELD 8192
void rs_parts_label_hold(rs_parts_t *pt, const rs_label_t *lb,
                         int32_t partition);
int rs_parts_labels_held(const rs_parts_t *pt);
/* After event `event_id` was processed: apply its held labels to f. */
void rs_parts_label_release(rs_parts_t *pt, rs_features_t *f,
                            const char *event_id);
/* Drop held labels of partitions no longer replaying (and of partitions
 * that left); returns how many went. */
int rs_parts_labels_expire(rs_parts_t *pt,
                           int (*replaying)(void *svc, int32_t partition));

/* Standby copies (standby.h; state.standby n > 0, sb borrowed; n 0 or
 * sb NULL: none).  Assign: a partition with a copy here restores from it
 * and the changelog tail after it (before any other source).  Tick: the
 * placement (rs_standby_place) is applied once a rebalance is over --
 * a PARKED partition placed here becomes a warm copy instead of being
 * saved and dropped, copies no longer placed are dropped, placed
 * partitions without one start from the changelog's start. */
void rs_parts_set_standby(rs_parts_t *pt, rs_standby_t *sb, int n);

/* Partitions OWNED now into out[0..max); returns the count. */
int rs_parts_owned(const rs_parts_t *pt, int32_t *out, int max);

#ifdef __cplusplus
}
#endif
#endif /* RS_PARTS_H */
