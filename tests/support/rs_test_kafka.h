/* rs_test_kafka.h -- Kafka helpers for tests: read a whole topic back.
 *
 * rs_test_kafka_read() reads `topic` from the beginning of every partition
 * with a group-less consumer (manual assign, so no group join delay) and
 * calls `cb` for each message, until `expect` messages were seen and then
 * `settle_ms` passed without a new one (to catch extra messages), or until
 * `timeout_ms` passed.  Returns the number of messages seen, -1 on error.
 * Threads: the calling thread.
 *
 * rs_test_kafka_cluster() starts a mock cluster and a producer on it.
 */
#ifndef RS_TEST_KAFKA_H
#define RS_TEST_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "ingest/ingest.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (rs_test_kafka_cb)(void *opaque, const rd_kafka_message_t *rkm);

int rs_test_kafka_read(const char *bootstrap, const char *topic, int expect,
                       int settle_ms, int timeout_ms, rs_test_kafka_cb *cb,
                       void *opaque);

/* Value of header `name` of rkm into buf (NUL-terminated); 0 if found. */
int rs_test_kafka_header(const rd_kafka_message_t *rkm, const char *name,
                         char *buf, size_t size);

/* Produce one message (copied, key may be NULL) without waiting for its
 * delivery, polling while the producer's queue is full; 0 on success. */
int rs_test_kafka_produce(rd_kafka_t *rk, const char *topic, const char *key,
                          const void *value, size_t len);

/* Produce one message (copied) and wait for its delivery; 0 on success. */
int rs_test_kafka_produce_sync(rd_kafka_t *rk, const char *topic,
                               const void *key, size_t klen,
                               const void *value, size_t len);

/* A mock cluster (rs_cluster_new: `brokers` brokers, the `ntopics`
 * topics with `partitions` partitions each) and, when prod is not NULL, a
 * producer on it into *prod.  Fails the calling test (cmocka) on error.
 * The caller destroys both (rd_kafka_destroy, then rs_cluster_destroy).
 * Threads: the calling thread. */
rs_cluster_t *rs_test_kafka_cluster(int brokers, const char *const *topics,
                                    int ntopics, int partitions,
                                    rd_kafka_t **prod);

#ifdef __cplusplus
}
#endif
#endif /* RS_TEST_KAFKA_H */
