/* rs_test_kafka.c -- see rs_test_kafka.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tests/support/rs_test_kafka.h"

static long long rs_tk_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rs_test_kafka_read(const char *bootstrap, const char *topic, int expect,
                       int settle_ms, int timeout_ms, rs_test_kafka_cb *cb,
                       void *opaque) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "rs-test-reader", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "rs_test_kafka_read: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "rs_test_kafka_read: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    /* Partition count from metadata. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int nparts = 0;
    for (int attempt = 0; attempt < 50 && nparts == 0; attempt++) {
        if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            md->topic_cnt == 1 && !md->topics[0].err)
            nparts = md->topics[0].partition_cnt;
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
    }
    rd_kafka_topic_destroy(rkt);
    if (nparts == 0) {
        fprintf(stderr, "rs_test_kafka_read: no metadata for %s\n", topic);
        rd_kafka_destroy(rk);
        return -1;
    }
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    int n = 0;
    long long deadline = rs_tk_now_ms() + timeout_ms, settle_until = 0;
    for (;;) {
        long long now = rs_tk_now_ms();
        if (now > deadline) break;
        if (n >= expect) {
            if (!settle_until) settle_until = now + settle_ms;
            if (now > settle_until) break;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        if (!rkm) continue;
        if (!rkm->err) {
            n++;
            if (cb) cb(opaque, rkm);
            if (n > expect) settle_until = 0; /* extra: keep counting */
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

int rs_test_kafka_header(const rd_kafka_message_t *rkm, const char *name,
                         char *buf, size_t size) {
    rd_kafka_headers_t *hdrs;
    const void *val;
    size_t len;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    if (len >= size) len = size - 1;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return 0;
}

int rs_test_kafka_produce(rd_kafka_t *rk, const char *topic, const char *key,
                          const void *value, size_t len) {
    rd_kafka_resp_err_t kerr;
    for (;;) {
        kerr = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_END);
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(rk, 10);
    }
    return kerr == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int rs_test_kafka_produce_sync(rd_kafka_t *rk, const char *topic,
                               const void *key, size_t klen,
                               const void *value, size_t len) {
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY((void *)key, klen), RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_END);
    if (kerr) return -1;
    return rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

rs_cluster_t *rs_test_kafka_cluster(int brokers, const char *const *topics,
                                    int ntopics, int partitions,
                                    rd_kafka_t **prod) {
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(brokers, topics, ntopics, partitions,
                                      errstr, sizeof(errstr));
    if (!cl) fprintf(stderr, "rs_test_kafka_cluster: %s\n", errstr);
    assert_non_null(cl);
    if (prod) {
        *prod = rs_kafka_producer_new(NULL, rs_cluster_bootstraps(cl), errstr,
                                      sizeof(errstr));
        if (!*prod) fprintf(stderr, "rs_test_kafka_cluster: %s\n", errstr);
        assert_non_null(*prod);
    }
    return cl;
}
