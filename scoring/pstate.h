/* pstate.h -- partition-local state stores: the state of one input
 * partition as a unit that leaves an instance and arrives on another
 * (scale-out on the consumer group, the Kafka Streams way).
 *
 * Design note
 * -----------
 * A TASK is input partition N of the events topic together with partition
 * N of the labels topic (both keyed by entity: the range assignor keeps
 * them on one instance).  Its state:
 *   - the feature engine's ENTITY slots and event-index entries tagged N
 *     (features.h "partition-local state"),
 *   - the sequence model's entity caches whose newest event came from N
 *     (model.h rs_model_caches_*_sel),
 *   - the duplicate window's entries tagged N (dedup.h),
 *   - with maintenance, the machines whose last reading came from N
 *     (alerts.h rs_alerts_part_*: the alert policy's entry, the cold-start
 *     own policy's entry and CUSUMs, the last reading),
 *   - the positions it covers: next events and labels offsets, the end of
 *     the partition's learning log, the changelog offset.
 * Counterparty (and other non-entity) feature tables, the fleet baselines
 * (and the cold-start counts and spreads) and the model's weights are
 * instance-wide: they never move with a
 * partition (issue 13 items 3 and 4).
 *
 * Stores and restore order (rs_pstate_* below; the service decides):
 *   1. RAM: the state is here (owned, or parked across an eager
 *      rebalance, or restored from the instance checkpoint at start).
 *   2. the local partition checkpoint <state.dir>/<group>/p<N>/checkpoint,
 *      written when the partition leaves gracefully (after every batch in
 *      flight was delivered and its offsets committed) and at shutdown;
 *   3. the changelog (pstate_changelog.c), when configured;
 *   4. else the input itself: replay from the beginning of the partition
 *      with the committed offset as the replay bound (never a silent cold
 *      start).
 * A state is usable when its input offsets are at most the committed ones
 * (what lies between is replayed, not published) or when it was saved
 * after a flush (its offsets were delivered, so ahead of a lagging commit
 * is fine): every save here happens after a flush.
 *
 * Partition checkpoint file (native byte order, a local file):
 *   "RSPSTAT1" | u32 format 2 | u32 partition | i64 events offset |
 *   i64 labels offset | u64 log end | i64 changelog offset |
 *   u64 feature bytes | u64 cache bytes | u64 dedup bytes |
 *   u64 maintenance bytes | u64 rs_hash64 of the body | u64 rs_hash64 of
 *   the header before it |
 *   body: feature stream (rs_features_part_write), entity caches
 *   (rs_model_caches_write_sel), duplicate window (rs_dedup_write_part),
 *   maintenance machines (alerts.h rs_alerts_part_write; 0 bytes without
 *   maintenance).  Format 1 (until 2026-12-07) is format 2 without the
 *   maintenance length (an 88-byte header): still read, its machines
 *   start afresh.  A damaged maintenance section is warned about and
 *   ignored (those machines start afresh), the rest of the file used.
 * rs_pstate_file_parse is the I/O-free parser (fuzzed: fuzz_pstate).
 *
 * Threads: an rs_pstate_t belongs to the service thread (the rebalance
 * callbacks run on it too); rs_pstate_stats may be read from any thread.
 */
#ifndef RS_PSTATE_H
#define RS_PSTATE_H

#include "common/common.h"
#include "features/features.h"
#include "model/model.h"
#include "scoring/alerts.h"
#include "scoring/dedup.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a partition's state covers. */
typedef struct rs_pstate_pos_s {
    int64_t events;     /* next events offset applied; -1: none          */
    int64_t labels;     /* next labels offset applied; -1: none          */
    uint64_t log_end;   /* end of the partition's learning log           */
    int64_t changelog;  /* next changelog offset covered; -1: none       */
} rs_pstate_pos_t;

/* ------------------------------------------------------------ codec */

#define RS_PSTATE_FILE_HDR 96    /* header bytes (format 2)           */
#define RS_PSTATE_FILE_HDR_V1 88 /* format 1's (still read)           */

/* A parsed partition checkpoint (views into the caller's buffer). */
typedef struct rs_pstate_file_s {
    int32_t partition;
    int format;         /* 1 or 2                                        */
    rs_pstate_pos_t pos;
    const uint8_t *feat, *caches, *dedup, *maint;
    size_t feat_len, caches_len, dedup_len, maint_len; /* maint: format 2 */
} rs_pstate_file_t;

/* Write the (format 2) header of a file whose body (feat_len +
 * caches_len + dedup_len + maint_len bytes) is already at buf +
 * RS_PSTATE_FILE_HDR.  Pure. */
void rs_pstate_file_seal(void *buf, int32_t partition,
                         const rs_pstate_pos_t *pos, size_t feat_len,
                         size_t caches_len, size_t dedup_len,
                         size_t maint_len);
/* Parse and check (magic, format, lengths, checksums, offsets) a file
 * image.  RS_ERR_CORRUPT with errstr naming what is wrong.  No I/O, no
 * allocation.  Any thread. */
rs_err_t rs_pstate_file_parse(const void *buf, size_t len,
                              rs_pstate_file_t *out, char *errstr,
                              size_t errstr_size);

/* Changelog records (pstate.c; the topic and its producer/consumer are in
 * changelog.h).  Key, 16 bytes: "RS" | u8 store | u8 format 1 | u32
 * partition | u64 id, little-endian.  Value per store:
 *   'F' entity features   id = rs_hash_str(entity id); a feature stream
 *                         with that entity's slot (rs_features_entity_write)
 *   'S' entity cache      id = the same; the sequence model's cache of the
 *                         entity (rs_model_caches_write_entity)
 *   'I' event index       id = rs_hash_str(event id); a feature stream with
 *                         the event's index entry (rs_features_event_write)
 *   'D' duplicate entry   id = rs_dedup_key; rs_dedup_write_key
 *   'A' maintenance       id = rs_hash_str(machine = entity id); the
 *                         machine's record (alerts.h rs_alerts_machine_write:
 *                         "RSMP" with one machine), staged with its
 *                         entity's 'F'; one that is damaged or of a newer
 *                         version is warned about and skipped (the
 *                         machine starts afresh), the rest applied.  A
 *                         reader from before 2026-12-07 refuses the key
 *                         (the restore falls back to the input)
 *   'M' marker            id 0; "RSMK" | u32 1 | i64 events offset | i64
 *                         labels offset | u64 log end: the state of the
 *                         records before it covers that much input
 * An empty value is a tombstone (compaction drops the key): written for
 * index and duplicate entries that left (they are not applied: the reader
 * ages them out itself), for entities whose feature slot expired or was
 * evicted and caches the LRU evicted ('F', 'S': the entity is forgotten)
 * and for machines the maintenance forgot as idle ('A', since 2026-12-07:
 * alerts.h "Idle machines"; the machine is forgotten; an older reader
 * that knows 'A' skips it). */
#define RS_PSTATE_KEY_LEN 16
#define RS_PSTATE_MARK_LEN 32
typedef struct rs_pstate_key_s {
    char store;         /* 'F', 'S', 'I', 'D', 'A', 'M'                  */
    int32_t partition;
    uint64_t id;
} rs_pstate_key_t;

void rs_pstate_key_encode(void *key, char store, int32_t partition,
                          uint64_t id);
/* RS_ERR_CORRUPT with errstr for anything but a key above.  Pure. */
rs_err_t rs_pstate_key_parse(const void *key, size_t len, rs_pstate_key_t *k,
                             char *errstr, size_t errstr_size);
void rs_pstate_mark_encode(void *val, const rs_pstate_pos_t *pos);
rs_err_t rs_pstate_mark_parse(const void *val, size_t len,
                              rs_pstate_pos_t *pos, char *errstr,
                              size_t errstr_size);

/* ------------------------------------------------------------ stores */

typedef struct rs_pstate_s rs_pstate_t;

/* Restore counters (metrics: riskstream_restore_*). */
typedef struct rs_pstate_stats_s {
    int64_t restoring;          /* partitions being restored now (0/1..) */
    uint64_t restores;          /* partitions restored, by source below  */
    uint64_t from_local, from_changelog, from_replay;
    uint64_t from_standby;      /* a standby copy + the changelog tail   */
    uint64_t keys_restored;     /* entity slots restored                 */
    uint64_t saves;             /* partition checkpoints written         */
    uint64_t drops;             /* partitions dropped from RAM           */
    double last_restore_s;      /* duration of the last restore          */
    double restore_s_total;     /* all restores                          */
} rs_pstate_stats_t;

/* Stores under `dir` (<state.dir>/<group>), over the borrowed handles
 * (dedup may be NULL; they must outlive ps).  NULL + errstr if dir cannot
 * be used.  Free with rs_pstate_destroy. */
rs_pstate_t *rs_pstate_new(const char *dir, rs_features_t *feat,
                           rs_model_t *model, rs_dedup_t *dedup,
                           char *errstr, size_t errstr_size);
void rs_pstate_destroy(rs_pstate_t *ps);

/* Write the partition checkpoint of `partition` from RAM (pos: what it
 * covers; the caller has flushed).  tmp + fsync + rename + fsync dir.
 * RS_ERR_IO with errstr. */
rs_err_t rs_pstate_save(rs_pstate_t *ps, int32_t partition,
                        const rs_pstate_pos_t *pos, char *errstr,
                        size_t errstr_size);
/* Positions of the partition checkpoint (header only, checked):
 * RS_ERR_NOTFOUND if there is none, RS_ERR_CORRUPT / RS_ERR_IO. */
rs_err_t rs_pstate_peek(rs_pstate_t *ps, int32_t partition,
                        rs_pstate_pos_t *pos, char *errstr,
                        size_t errstr_size);
/* Replace the partition's state in RAM by its checkpoint (the partition
 * is dropped first); *pos gets what it covers, *nkeys the entity slots.
 * On any error the partition has no state in RAM (never half-loaded). */
rs_err_t rs_pstate_load(rs_pstate_t *ps, int32_t partition,
                        rs_pstate_pos_t *pos, uint64_t *nkeys, char *errstr,
                        size_t errstr_size);
/* Maintenance machines (alerts.h; borrowed, must outlive ps; NULL:
 * none) are part of each partition's state from now on: saved, loaded,
 * dropped and applied with the other stores.  The service thread. */
void rs_pstate_set_alerts(rs_pstate_t *ps, rs_alerts_t *al);
rs_alerts_t *rs_pstate_alerts(const rs_pstate_t *ps);

/* Forget the partition's state in RAM (features, caches, duplicates,
 * maintenance machines);
 * *nkeys (may be NULL) gets the entity slots dropped. */
void rs_pstate_drop(rs_pstate_t *ps, int32_t partition, uint64_t *nkeys);

/* Apply one changelog record of `partition` to the stores (an upsert;
 * a tombstone 'F', 'S' or 'A' forgets its entity or machine if it is of
 * that partition, 'I' and 'D' ones are skipped).  A marker sets *mark
 * and *is_mark.  Errors: RS_ERR_CORRUPT (key or value malformed, another
 * partition's key; a bad feature stream drops the partition's feature
 * state: the caller falls back to another source). */
rs_err_t rs_pstate_apply(rs_pstate_t *ps, int32_t partition, const void *key,
                         size_t klen, const void *val, size_t vlen,
                         rs_pstate_pos_t *mark, int *is_mark, char *errstr,
                         size_t errstr_size);

/* Restore bookkeeping for the metrics and /readyz: begin (restoring++),
 * end with the source ('l' local, 'c' changelog, 'r' replay, 'm' RAM,
 * 's' a standby copy, standby.h) and
 * the keys restored (restoring--). */
void rs_pstate_restore_begin(rs_pstate_t *ps);
void rs_pstate_restore_end(rs_pstate_t *ps, char source, uint64_t keys,
                           double seconds);
/* Any thread. */
void rs_pstate_stats(const rs_pstate_t *ps, rs_pstate_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* RS_PSTATE_H */
