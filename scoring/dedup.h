/* dedup.h -- duplicate event ids: the decision on record of every event
 * scored within a window, so an event delivered twice gets the same answer
 * and enters the state once.  Part of the scoring stage (ingest ->
 * features -> model -> scoring -> sinks); generic otherwise: it knows
 * event ids, times and decisions, nothing of Kafka, Redis or the model.
 *
 * Design notes
 * - An entry is keyed by a 64-bit hash of (entity id, event id): the same
 *   id on another entity is another event.  Two different events collide
 *   with probability about n^2 / 2^65 for n live entries (1e-8 at the
 *   default 262 144): a collision would answer the second with the first's
 *   decision, flagged duplicate.
 * - A duplicate is an id seen again while its entry is live: not older
 *   than `window_ms` of event time behind the newest event time inserted
 *   (the window), and not yet evicted by a full table (the oldest entry
 *   goes first, counted in stats.evictions).  Entries are kept in arrival
 *   order in a ring; expiry and eviction both take from its tail.
 * - Memory: fixed at creation, rs_dedup_bytes(max) bytes: 40 bytes per
 *   entry (a 32-byte ring slot with the record, two index slots) plus
 *   200 KB for up to 4096 distinct model versions among the live entries
 *   (interned, reference-counted); nothing is allocated per event.
 * - Two steps per event so that a duplicate inside the same micro-batch
 *   finds its original before it is scored: rs_dedup_check() inserts a new
 *   event's entry (no decision yet) and returns its handle;
 *   rs_dedup_set() records the decision once the batch is scored.
 * - Partition-local later: a table holds whatever the caller feeds it;
 *   one table per input partition needs no change here.  Entries can be
 *   enumerated (rs_dedup_foreach) and serialized (rs_dedup_write /
 *   rs_dedup_read: host byte order, a local checkpoint), so a restart keeps
 *   the window.
 *
 * Threads: a table is owned by one thread (the scoring loop); no locks.
 */
#ifndef RS_DEDUP_H
#define RS_DEDUP_H

#include "common/common.h"
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_dedup_s rs_dedup_t;

/* The decision on record of one event. */
typedef struct rs_dedup_rec_s {
    float score;                       /* as published (float exact)   */
    uint8_t decision;                  /* rs_decision_t                */
    uint8_t has;                       /* 0: entry without a decision
                                        * yet (its batch is scoring)   */
    uint16_t pad;
    uint32_t flags;                    /* RS_SCORE_FLAG_* published    */
    char model_version[RS_VERSION_MAX];
} rs_dedup_rec_t;

typedef struct rs_dedup_stats_s {
    uint64_t entries;    /* live now                                    */
    uint64_t capacity;   /* max                                         */
    uint64_t inserts;    /* new events                                  */
    uint64_t hits;       /* duplicates found                            */
    uint64_t expired;    /* entries dropped past the window             */
    uint64_t evictions;  /* live entries dropped from a full table      */
    uint64_t bytes;      /* memory held                                 */
} rs_dedup_stats_t;

/* Bytes a table of `max` entries holds (rs_dedup_new allocates that much;
 * for the start-up memory check).  @locality any thread */
uint64_t rs_dedup_bytes(uint64_t max);

/* A table of `max` entries (>= 1, <= 2^30) remembering `window_ms` (> 0)
 * of event time.  Returns NULL with errstr on bad arguments.  Free with
 * rs_dedup_destroy.  @locality the owner thread */
rs_dedup_t *rs_dedup_new(uint64_t max, int64_t window_ms, char *errstr,
                         size_t errstr_size);
/* NULL is a no-op.  @locality the owner thread */
void rs_dedup_destroy(rs_dedup_t *d);

/* The key of an event (hash of entity id and event id).  @locality any */
uint64_t rs_dedup_key(const char *entity_id, const char *event_id);

/* Look `key` up.  A live entry (see the design notes): returns 1 and its
 * handle in *h (its record may still be without decision: rec.has == 0,
 * if the original is in the batch being scored).  Otherwise inserts a new
 * entry at `event_time_ms` (evicting the oldest if full, expiring what
 * fell out of the window) and returns 0 with the new entry's handle.  No
 * allocation.  @locality the owner thread */
int rs_dedup_check(rs_dedup_t *d, uint64_t key, int64_t event_time_ms,
                   uint64_t *h);

/* A hint: `key` will be checked soon.  Starts loading the index line
 * its probe reads first (a cache miss in a large table), so a caller that
 * knows its keys ahead (the service: a batch) issues this a few checks
 * early.  Changes nothing.  @locality the owner thread */
void rs_dedup_prefetch(const rs_dedup_t *d, uint64_t key);

/* rs_dedup_check, the new entry tagged with input `partition` (-1:
 * none), so a partition's entries can leave with it (rs_dedup_*_part).
 * @locality the owner thread */
int rs_dedup_check_part(rs_dedup_t *d, uint64_t key, int64_t event_time_ms,
                        int32_t partition, uint64_t *h);

/* Record the decision of the entry `h` (from rs_dedup_check).  A handle
 * whose entry has since been dropped is ignored.  @locality owner */
void rs_dedup_set(rs_dedup_t *d, uint64_t h, const rs_dedup_rec_t *rec);

/* The record of entry `h`: RS_OK, or RS_ERR_NOTFOUND if it was dropped.
 * @locality the owner thread */
rs_err_t rs_dedup_get(const rs_dedup_t *d, uint64_t h, rs_dedup_rec_t *out);

/* Visit the live entries oldest first; stops when `cb` returns non-zero
 * (returned).  @locality the owner thread */
typedef int rs_dedup_visit_cb(void *opaque, uint64_t key,
                              int64_t event_time_ms,
                              const rs_dedup_rec_t *rec);
int rs_dedup_foreach(const rs_dedup_t *d, rs_dedup_visit_cb *cb,
                     void *opaque);

/* Serialized size of the live entries (rs_dedup_write).  @locality owner */
size_t rs_dedup_size(const rs_dedup_t *d);
/* Serialize the live entries into buf[cap]: *len gets the bytes written.
 * RS_ERR_TOOBIG if cap < rs_dedup_size().  @locality the owner thread */
rs_err_t rs_dedup_write(const rs_dedup_t *d, void *buf, size_t cap,
                        size_t *len);
/* Replace the contents with a serialization (rs_dedup_write of any table
 * size and window: the newest entries that fit are kept).  No I/O, checks
 * every length: RS_ERR_CORRUPT with errstr on a malformed buffer (the
 * table is then empty).  @locality the owner thread */
rs_err_t rs_dedup_read(rs_dedup_t *d, const void *buf, size_t len,
                       char *errstr, size_t errstr_size);

/* Partition-local: the serialization (rs_dedup_write's format) of the
 * entries of `partition` only; merge of a serialization into the live
 * table (keys already present are kept, the rest appended in order, the
 * oldest evicted when full; checked whole first: on RS_ERR_CORRUPT
 * nothing was added; *added gets the entries added); drop of a
 * partition's entries (the others keep their order; returns how many
 * went).  Handles from rs_dedup_check taken before a drop are invalid.
 * @locality the owner thread */
size_t rs_dedup_size_part(const rs_dedup_t *d, int32_t partition);
rs_err_t rs_dedup_write_part(const rs_dedup_t *d, int32_t partition,
                             void *buf, size_t cap, size_t *len);
rs_err_t rs_dedup_merge(rs_dedup_t *d, const void *buf, size_t len,
                        uint64_t *added, char *errstr, size_t errstr_size);
uint64_t rs_dedup_drop_part(rs_dedup_t *d, int32_t partition);

/* Changelog support: one entry's serialization (rs_dedup_write's format;
 * RS_ERR_NOTFOUND if not live, RS_ERR_TOOBIG with *len the size); the
 * entries that left by expiry or eviction (not by a partition drop) since
 * the last take, at most `cap` (0: not tracked), *keys / *parts owned by
 * d until the next check.  @locality the owner thread */
rs_err_t rs_dedup_write_key(const rs_dedup_t *d, uint64_t key, void *buf,
                            size_t cap, size_t *len);
void rs_dedup_track_gone(rs_dedup_t *d, uint32_t cap);
int rs_dedup_gone_take(rs_dedup_t *d, const uint64_t **keys,
                       const int32_t **parts);

/* Counters.  @locality the owner thread */
void rs_dedup_stats(const rs_dedup_t *d, rs_dedup_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* RS_DEDUP_H */
