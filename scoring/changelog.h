/* changelog.h -- the state changelog topic: every change of partition-local
 * state also goes to a compacted Kafka topic, so a partition's state can
 * be restored on an instance that never held it (Kafka Streams' changelog
 * topics; the stores and the record format are pstate.h's).
 *
 * Design note
 * -----------
 * One topic, <group>-state-changelog, cleanup.policy=compact, with the
 * input's partition count: changelog partition N holds the state of input
 * partition N (task N).  One topic for the four stores (the key names the
 * store) so that ONE marker per batch and partition says how much input
 * the records before it cover.  Created by riskstream at start when it is
 * missing (CreateTopics; the embedded broker has no CreateTopics: `riskstream
 * broker` creates the topic of its topics.group_id itself); an existing
 * topic with another partition count is a configuration error.
 *
 * Writing (at-least-once): at the end of each batch the records of what it
 * changed are STAGED, in the state after the batch: first tombstones for
 * the entities whose feature slot expired (key_ttl) or was evicted, whose
 * sequence cache the LRU evicted and, with maintenance, for the machines
 * forgotten as idle ('A', alerts.h rs_alerts_gone_take) (first: an entity
 * back in the same batch gets its new record after its tombstone), per
 * entity of its
 * events and labels its feature slot and its sequence cache (and, with
 * maintenance, the machine's maintenance state: pstate.h 'A'), per event its
 * index entry and duplicate entry, tombstones for the index and duplicate
 * entries that left, then a marker per partition it read (the positions
 * after the batch).  They are PRODUCED when the batch is retired (its
 * scores acknowledged by Kafka and written to Redis), in order, by an
 * idempotent producer: so the changelog never
 * runs ahead of delivered input, and what it covers is always below or at
 * the stored offsets.  Records after the last marker (a batch cut by a
 * crash) are ignored by the reader.
 *
 * Writing (exactly-once, rs_changelog_use_txn): the same frames, staged
 * the same way, are produced by the scores' transactional producer INTO
 * the open transaction, just before its commit (rs_changelog_release
 * from the commit, after Redis holds the batches): a committed
 * transaction holds its batches' scores, their changelog records and
 * markers, and the input offsets (send_offsets_to_transaction); an
 * aborted one none of them.  A transaction redone after an abortable
 * error produces them again (the sink keeps them); frames of batches
 * whose transaction is discarded (lost partitions, a commit that waited
 * too long for Redis) are dropped unproduced (rs_changelog_discard).
 * Several batches share one transaction; each keeps its own marker, so
 * a read_committed restore sees whole transactions and applies each
 * batch at its marker, as at-least-once.  On a real cluster the restore
 * reads up to the last stable offset (an open transaction of the
 * partition's previous owner holds it back until it ends); the commit
 * markers take offsets of their own, so the last record is not at the
 * high watermark and the restore ends at the partition's EOF.
 *
 * Restoring (rs_changelog_restore): read changelog partition N from an
 * offset (a local checkpoint's, or the beginning) to its end, apply each
 * batch's records when its marker arrives; the last marker gives the
 * input positions.  Entity tombstones ('F', 'S', 'A') forget the entity
 * (rs_pstate_apply), so an uncompacted log does not resurrect it.  A changelog whose start was deleted (low watermark
 * above the offset asked for: retention on a topic that is not compacted,
 * or the embedded broker's 5 MB per partition) is refused: the caller
 * rebuilds from the input instead.
 *
 * Cost: per batch and entity about 1.2 KB of feature slot (history 64)
 * plus the sequence cache (~9 KB at the seq defaults: 32 events x 64 floats
 * of keys and values + ids), per event ~150 bytes (index + duplicate
 * entries), produced once more as tombstones later; compaction keeps one
 * record per live key.
 *
 * Threads: the service thread (the rebalance callbacks run on it).
 */
#ifndef RS_CHANGELOG_H
#define RS_CHANGELOG_H

#include "common/common.h"
#include "common/config.h"
#include "ingest/ingest.h"
#include "scoring/pstate.h"
#include "scoring/sink.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_changelog_s rs_changelog_t;

typedef struct rs_changelog_stats_s {
    uint64_t records;        /* produced (tombstones and markers too)     */
    uint64_t bytes;          /* key + value bytes produced                */
    uint64_t failed;         /* delivery failures (retried)               */
    uint64_t restored;       /* records applied by restores               */
    int64_t staged_bytes;    /* waiting for their batch to be retired     */
} rs_changelog_stats_t;

/* The producer of `topic` over the stores of ps (borrowed; feat, model,
 * dedup are ps's), through bootstrap / kafka props.  Tracks what leaves
 * the feature index and the duplicate window (for tombstones).  NULL +
 * errstr (RS_ERR_KAFKA). */
rs_changelog_t *rs_changelog_new(const rs_kv_t *kafka, const char *bootstrap,
                                 const char *topic, rs_features_t *feat,
                                 rs_model_t *model, rs_dedup_t *dedup,
                                 rs_pstate_t *ps, int batch_max, char *errstr,
                                 size_t errstr_size);
void rs_changelog_destroy(rs_changelog_t *cl);

/* 1 if the brokers are librdkafka's mock cluster (the embedded broker,
 * `riskstream broker`: cluster id "mockCluster..."), 0 if not, -1 if the
 * cluster id is not known within timeout_ms. */
int rs_changelog_on_mock(rs_changelog_t *cl, int timeout_ms);

/* Check (and create when missing) the topic with the partition count of
 * `input_topic`, cleanup.policy=compact.  RS_ERR_CONFIG for a topic with
 * another partition count, RS_ERR_KAFKA if it cannot be created or seen
 * within timeout_ms (the message says how to create it by hand). */
rs_err_t rs_changelog_ensure(rs_changelog_t *cl, const char *input_topic,
                             int timeout_ms, char *errstr,
                             size_t errstr_size);

/* Stage the records of batch `seq` (msgs[0..n): the messages it
 * processed; pos(opaque, partition, &p) gives each partition's positions
 * after it).  No Kafka call. */
void rs_changelog_stage(rs_changelog_t *cl, uint64_t seq, const rs_msg_t *msgs,
                        int n,
                        void (*pos)(void *opaque, int32_t partition,
                                    rs_pstate_pos_t *p),
                        void *opaque);
/* The same for a batch of rs_ingest_poll_ref (pointers). */
void rs_changelog_stage_ref(rs_changelog_t *cl, uint64_t seq,
                            const rs_msg_t *const *msgs, int n,
                            void (*pos)(void *opaque, int32_t partition,
                                        rs_pstate_pos_t *p),
                            void *opaque);
/* Produce the staged records of every batch <= seq (retired; exactly-
 * once: into the sink's open transaction, before its commit -- without
 * one they stay staged). */
void rs_changelog_release(rs_changelog_t *cl, uint64_t seq);
/* Exactly-once: write through `ks`, the scores' transactional sink
 * (borrowed; must outlive cl, which stops its reports at destroy), inside
 * its transactions.  RS_ERR_STATE if ks is not transactional or writes
 * another topic in them. */
rs_err_t rs_changelog_use_txn(rs_changelog_t *cl, rs_sink_kafka_t *ks,
                              char *errstr, size_t errstr_size);
/* Drop, unproduced, the staged records of every batch <= seq (their
 * transaction was discarded: the input is read again). */
void rs_changelog_discard(rs_changelog_t *cl, uint64_t seq);
/* Serve delivery reports; 0 if nothing is pending after timeout_ms. */
int rs_changelog_flush(rs_changelog_t *cl, int timeout_ms);
/* Next changelog offset after the last acknowledged record of partition
 * (-1 if none since start). */
int64_t rs_changelog_end(const rs_changelog_t *cl, int32_t partition);
/* The partition's high watermark now (blocking query; -1 on error). */
int64_t rs_changelog_hwm(rs_changelog_t *cl, int32_t partition);

/* Restore partition `partition` from changelog offset `from` (0: the
 * beginning) onto the stores (the caller dropped or loaded it before):
 * *pos gets the last marker's positions and pos->changelog the offset
 * after it; *nrec the records applied.  RS_ERR_NOTFOUND: no marker after
 * `from` (nothing to restore); RS_ERR_CORRUPT: records deleted under
 * `from`, or a malformed record (the partition's state is then to be
 * dropped); RS_ERR_KAFKA / RS_ERR_TIMEOUT. */
rs_err_t rs_changelog_restore(rs_changelog_t *cl, int32_t partition,
                              int64_t from, rs_pstate_pos_t *pos,
                              uint64_t *nrec, char *errstr,
                              size_t errstr_size);

/* Partitions whose tombstones (entity, cache, index, duplicate) are not
 * written here (foreign(o, p) != 0: a standby copy's entries that left
 * this instance's stores -- only the owner writes that partition). */
void rs_changelog_set_foreign(rs_changelog_t *cl,
                              int (*foreign)(void *o, int32_t partition),
                              void *o);

/* Any thread. */
void rs_changelog_stats(const rs_changelog_t *cl, rs_changelog_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* RS_CHANGELOG_H */
