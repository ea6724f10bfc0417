/* rs_test_eng.h -- a small scoring engine for state tests: the stores a
 * partition's state lives in (features, a tiny sequence model, the
 * duplicate window) and the partition-state handle over them
 * (scoring/pstate.h), plus the bytes of one partition's state in a fixed
 * order, for comparing a writer with a restored or standby copy.
 *
 * Shared by test_pstate, test_changelog and test_standby; the batch and
 * position helpers by test_changelog and test_standby, the maintenance
 * side (an lr trainer and the alerts over the stores) by test_pstate,
 * test_changelog and test_maint_offline.
 *
 * Failures: every call fails the current cmocka test (fail_msg /
 * assert_*) when a store cannot be built or written.
 *
 * Ownership: rs_test_eng_new fills *e with handles owned by it;
 * rs_test_eng_free destroys them.  rs_test_eng_bytes returns a malloc'd
 * buffer the caller frees.  Threads: the calling (test) thread only.
 */
#ifndef RS_TEST_ENG_H
#define RS_TEST_ENG_H

#include <stddef.h>
#include <stdint.h>

#include "features/features.h"
#include "model/model.h"
#include "scoring/dedup.h"
#include "ingest/ingest.h"
#include "model/maint.h"
#include "scoring/alerts.h"
#include "scoring/changelog.h"
#include "scoring/pstate.h"
#include "scoring/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_test_eng_s {
    rs_features_t *f;
    rs_model_t *m;
    rs_dedup_t *d;
    rs_pstate_t *ps;
} rs_test_eng_t;

/* Features with 256 keys and counterparties, a 4096-entry label index,
 * the given label maturity (ms) and features.key_ttl (0: the default). */
rs_features_t *rs_test_eng_features(int64_t key_ttl, int64_t label_maturity);

/* A tiny seq model (d_model 4, history 4, one layer, 2 experts, top 1,
 * hidden 4, 8 buckets) over dim inputs named names (NULL: the feature
 * names of f, which must then be given), batches of batch_max, at most
 * max_entities cached entities. */
rs_model_t *rs_test_eng_model(const rs_features_t *f, int dim,
                              const char *const *names, int batch_max,
                              int max_entities);

/* The stores above (label maturity 1 day, batches of 8, 64 entities, a
 * 1024-event duplicate window of 1 day) and their partition state with
 * files under dir. */
void rs_test_eng_new(rs_test_eng_t *e, const char *dir, int64_t key_ttl);

void rs_test_eng_free(rs_test_eng_t *e);

/* Partition p's bytes of every store, concatenated (features, sequence
 * caches, duplicate window); *len set to their length. */
uint8_t *rs_test_eng_bytes(rs_test_eng_t *e, int32_t p, size_t *len);

/* Partitions of rs_test_eng_batch. */
#define RS_TEST_ENG_NPART 2

/* The position a test pretends partition p is at: events = log_end =
 * off[p] (o is the int64_t off[RS_TEST_ENG_NPART] of rs_test_eng_batch),
 * labels and changelog -1.  An rs_changelog_stage position callback. */
void rs_test_eng_pos(void *o, int32_t p, rs_pstate_pos_t *pos);

/* Batch b on e into msgs[8]: events tx-<b*8+i> of entities <ent>-<k % 6>
 * (partition = entity % RS_TEST_ENG_NPART, offset off[partition]++),
 * one minute apart, each featurised, scored by e->m (remembered) and set
 * in the duplicate window. */
void rs_test_eng_batch(rs_test_eng_t *e, int b, rs_msg_t *msgs, int64_t *off,
                       const char *ent);

/* The changelog topic of rs_test_eng_cluster. */
#define RS_TEST_ENG_CLOG "t-state-changelog"

/* The mock cluster of the changelog tests: topics "events" and
 * RS_TEST_ENG_CLOG, RS_TEST_ENG_NPART partitions each, on one broker;
 * *boot its bootstrap list (owned by the cluster), *kv an empty Kafka
 * configuration (the caller rs_kv_free's it).  Destroy with
 * rs_cluster_destroy. */
rs_cluster_t *rs_test_eng_cluster(rs_kv_t *kv, const char **boot);

/* A state changelog on RS_TEST_ENG_CLOG of boot over e's stores (with its
 * duplicate window if dedup), batches of 8.  Free with
 * rs_changelog_destroy. */
rs_changelog_t *rs_test_eng_changelog(rs_test_eng_t *e, const rs_kv_t *kv,
                                      const char *boot, int dedup);

/* The expiry run of the tombstone tests on e and its changelog c: batch
 * 1 of entities old-0..5, then batches 20..31 (2.6 h of event time later)
 * of 6 new entities each (n<b>-0..5), each staged and released on c (the
 * positions off), then flushed. */
void rs_test_eng_expiry_run(rs_test_eng_t *e, rs_changelog_t *c,
                            int64_t *off);

/* Read the records c produced (as many as its stats count) back from
 * RS_TEST_ENG_CLOG of boot into cb(opaque, message); fails the test if
 * fewer come within 20 s. */
void rs_test_eng_read_changelog(rs_changelog_t *c, const char *boot,
                                void (*cb)(void *, const rd_kafka_message_t *),
                                void *opaque);

/* The key of changelog record rkm into *k: 0, or -1 if it does not parse
 * (a tombstone is a parsed key without a value: rkm->payload NULL). */
int rs_test_eng_key(const rd_kafka_message_t *rkm, rs_pstate_key_t *k);

/* An lr trainer (batches of 16, queue 8, a version every 10 minutes) over
 * dim inputs named names.  Free with rs_trainer_destroy. */
rs_trainer_t *rs_test_eng_trainer(int dim, const char *const *names);

/* Maintenance on: threshold 0.5, 2 readings to alert, 64 machines, cold
 * start on; the rest rs_maint_conf_init's. */
void rs_test_eng_maint_conf(rs_maint_conf_t *mc);

/* The service's maintenance side over f, scorer and tr (alerts.h; batches
 * of 8, idle machines after key_ttl, 0: never).  Free with
 * rs_alerts_destroy before them. */
rs_alerts_t *rs_test_eng_alerts(const rs_maint_conf_t *mc, int64_t key_ttl,
                                rs_features_t *f, const rs_model_t *scorer,
                                rs_trainer_t *tr);

#ifdef __cplusplus
}
#endif

#endif /* RS_TEST_ENG_H */
