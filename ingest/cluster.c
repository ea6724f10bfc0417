/* cluster.c -- the embedded broker: librdkafka's mock cluster.
 *
 * The mock cluster needs an rd_kafka_t to live in; we give it a dedicated,
 * otherwise idle producer handle (no bootstrap servers: it never connects
 * anywhere).  The mock brokers listen on 127.0.0.1 ephemeral ports, so
 * external clients (kcat) reach them at rs_cluster_bootstraps().
 *
 * Quirk: the mock keeps roughly 5 MB per partition and drops older message
 * sets beyond that; it is for demos and tests only.
 */
#include <string.h>

#include "ingest/ingest.h"

struct rs_cluster_s {
    rd_kafka_t *rk;                  /* host handle of the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
};

rs_cluster_t *rs_cluster_new(int brokers, const char *const *topics,
                             int ntopics, int partitions, char *errstr,
                             size_t errstr_size) {
    rs_cluster_t *cluster = NULL;
    rd_kafka_conf_t *conf = NULL;
    char kerr[512];

    if (brokers < 1 || partitions < 1 || ntopics < 0 ||
        (ntopics > 0 && !topics)) {
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "embedded kafka: need brokers >= 1 and partitions >= 1");
        return NULL;
    }
    cluster = rs_calloc(1, sizeof(*cluster));
    if (rs_kafka_conf_build(NULL, NULL, &conf, errstr, errstr_size) != RS_OK)
        goto fail;
    /* The host handle is idle: keep it quiet about having no brokers. */
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_conf_set(conf, "client.id", "riskstream-mock", NULL, 0);
    cluster->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!cluster->rk) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "embedded kafka: %s", kerr);
        goto fail;
    }
    conf = NULL; /* owned by rk */
    cluster->mcluster = rd_kafka_mock_cluster_new(cluster->rk, brokers);
    if (!cluster->mcluster) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                "embedded kafka: cannot start the mock cluster");
        goto fail;
    }
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t kr = rd_kafka_mock_topic_create(
            cluster->mcluster, topics[i], partitions, RS_MIN(3, brokers));
        if (kr) {
            rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                    "embedded kafka: create topic '%s': %s", topics[i],
                    rd_kafka_err2str(kr));
            goto fail;
        }
    }
    cluster->bootstraps =
        rs_strdup(rd_kafka_mock_cluster_bootstraps(cluster->mcluster));
    rs_info("ingest", "embedded kafka: %d broker(s) at %s, %d topic(s) x %d "
            "partition(s)", brokers, cluster->bootstraps, ntopics, partitions);
    return cluster;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    rs_cluster_destroy(cluster);
    return NULL;
}

const char *rs_cluster_bootstraps(const rs_cluster_t *cluster) {
    return cluster->bootstraps;
}

rd_kafka_mock_cluster_t *rs_cluster_mock(rs_cluster_t *cluster) {
    return cluster->mcluster;
}

void rs_cluster_destroy(rs_cluster_t *cluster) {
    if (!cluster) return;
    if (cluster->mcluster) rd_kafka_mock_cluster_destroy(cluster->mcluster);
    if (cluster->rk) rd_kafka_destroy(cluster->rk);
    rs_free(cluster->bootstraps);
    rs_free(cluster);
}
