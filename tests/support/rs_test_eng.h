/* rs_test_eng.h -- a small scoring engine for state tests: the stores a
 * partition's state lives in (features, a tiny sequence model, the
 * duplicate window) and the partition-state handle over them
 * (scoring/pstate.h), plus the bytes of one partition's state in a fixed
 * order, for comparing a writer with a restored or standby copy.
 *
 * Shared by test_pstate, test_changelog and test_standby.
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
#include "scoring/pstate.h"

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

#ifdef __cplusplus
}
#endif

#endif /* RS_TEST_ENG_H */
