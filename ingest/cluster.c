/* cluster.c -- the embedded broker: librdkafka's mock cluster.
 *
 * The mock cluster needs an rd_kafka_t to live in; we give it a dedicated,
 * otherwise idle producer handle (no bootstrap servers: it never connects
 * anywhere).  The mock brokers listen on 127.0.0.1 ephemeral ports, so
 * external clients (kcat) reach them at rs_cluster_bootstraps().
 *
 * Quirk: the mock keeps roughly 5 MB per partition and drops older message
 * sets beyond that; it is for demos and tests only.  The retention watch
 * (rs_cluster_watch) makes such drops visible: a thread with its own
 * client reads the partitions' low watermarks (offsets start at 0 on a
 * fresh mock, so the log start offset is the count of messages dropped).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "ingest/ingest.h"

#define RS_CLUSTER_TOPICS_MAX 16
#define RS_CLUSTER_LOG_MS 30000      /* running total logged this often */

struct rs_cluster_s {
    rd_kafka_t *rk;                  /* host handle of the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
    int partitions;
    int ntopics;
    char *topics[RS_CLUSTER_TOPICS_MAX];
    /* retention watch */
    rd_kafka_t *wrk;                 /* watcher's client (thread-safe)   */
    pthread_t wthread;
    int watching;
    int interval_ms;
    pthread_mutex_t wlock;
    pthread_cond_t wcv;
    int wstop;                       /* under wlock                      */
    _Atomic int64_t dropped[RS_CLUSTER_TOPICS_MAX]; /* -1 = not read yet */
    int64_t logged[RS_CLUSTER_TOPICS_MAX];          /* watcher thread    */
    int64_t logged_at_ms[RS_CLUSTER_TOPICS_MAX];
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
    pthread_mutex_init(&cluster->wlock, NULL);
    pthread_cond_init(&cluster->wcv, NULL);
    cluster->partitions = partitions;
    for (int i = 0; i < ntopics && i < RS_CLUSTER_TOPICS_MAX; i++) {
        cluster->topics[cluster->ntopics] = rs_strdup(topics[i]);
        atomic_init(&cluster->dropped[cluster->ntopics], -1);
        cluster->ntopics++;
    }
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

/* Read the low watermarks of every topic (all partitions).  Any thread:
 * the client is thread-safe. */
static void rs_cluster_read(rs_cluster_t *c) {
    for (int t = 0; t < c->ntopics; t++) {
        int64_t sum = 0;
        int ok = 1;
        for (int p = 0; p < c->partitions && ok; p++) {
            int64_t lo = 0, hi = 0;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                c->wrk, c->topics[t], p, &lo, &hi, 2000);
            if (e) ok = 0;
            else sum += lo > 0 ? lo : 0;
        }
        if (ok) atomic_store(&c->dropped[t], sum);
    }
}

static void *rs_cluster_watch_main(void *arg) {
    rs_cluster_t *c = arg;
    for (;;) {
        rs_cluster_read(c);
        int64_t now = rs_clock_mono_us() / 1000;
        for (int t = 0; t < c->ntopics; t++) {
            int64_t d = atomic_load(&c->dropped[t]);
            if (d <= c->logged[t]) continue;
            if (c->logged[t] > 0 && now - c->logged_at_ms[t] < RS_CLUSTER_LOG_MS)
                continue;
            rs_error("ingest", "embedded kafka: retention (~5 MB per "
                     "partition) has dropped the oldest %lld messages of "
                     "topic '%s' so far: a consumer that had not read them "
                     "lost them.  The embedded broker is for demos and tests: "
                     "use a real Kafka (--brokers) for more data",
                     (long long)d, c->topics[t]);
            c->logged[t] = d;
            c->logged_at_ms[t] = now;
        }
        pthread_mutex_lock(&c->wlock);
        if (!c->wstop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += c->interval_ms / 1000;
            ts.tv_nsec += (long)(c->interval_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&c->wcv, &c->wlock, &ts);
        }
        int stop = c->wstop;
        pthread_mutex_unlock(&c->wlock);
        if (stop) return NULL;
    }
}

rs_err_t rs_cluster_watch(rs_cluster_t *cluster, int interval_ms,
                          char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = NULL;
    char kerr[512];
    if (cluster->watching) return RS_OK;
    if (rs_kafka_conf_build(NULL, cluster->bootstraps, &conf, errstr,
                            errstr_size) != RS_OK)
        return RS_ERR_KAFKA;
    rd_kafka_conf_set(conf, "client.id", "riskstream-retention-watch", NULL,
                      0);
    cluster->wrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!cluster->wrk) {
        rd_kafka_conf_destroy(conf);
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "embedded kafka: retention watch: %s", kerr);
    }
    cluster->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    if (pthread_create(&cluster->wthread, NULL, rs_cluster_watch_main,
                       cluster)) {
        rd_kafka_destroy(cluster->wrk);
        cluster->wrk = NULL;
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "embedded kafka: retention watch: no thread");
    }
    cluster->watching = 1;
    return RS_OK;
}

int64_t rs_cluster_dropped(rs_cluster_t *cluster, const char *topic,
                           int refresh) {
    if (refresh && cluster->wrk) rs_cluster_read(cluster);
    for (int t = 0; t < cluster->ntopics; t++)
        if (!strcmp(cluster->topics[t], topic))
            return atomic_load(&cluster->dropped[t]);
    return -1;
}

void rs_cluster_destroy(rs_cluster_t *cluster) {
    if (!cluster) return;
    if (cluster->watching) {
        pthread_mutex_lock(&cluster->wlock);
        cluster->wstop = 1;
        pthread_cond_signal(&cluster->wcv);
        pthread_mutex_unlock(&cluster->wlock);
        pthread_join(cluster->wthread, NULL);
    }
    if (cluster->wrk) rd_kafka_destroy(cluster->wrk);
    for (int t = 0; t < cluster->ntopics; t++) rs_free(cluster->topics[t]);
    pthread_cond_destroy(&cluster->wcv);
    pthread_mutex_destroy(&cluster->wlock);
    if (cluster->mcluster) rd_kafka_mock_cluster_destroy(cluster->mcluster);
    if (cluster->rk) rd_kafka_destroy(cluster->rk);
    rs_free(cluster->bootstraps);
    rs_free(cluster);
}
