/* sink_label.c -- analysts' labels to the labels topic (see sink.h).
 *
 * A small idempotent producer shared by the HTTP server threads: each
 * send produces one Label keyed by entity id and waits for ITS delivery
 * report, so the label action answers only once Kafka holds the label.
 *
 * Waiting: the message opaque is a heap waiter {done, err, abandoned}.
 * The sender polls the producer (rd_kafka_poll is thread-safe; any
 * thread's poll may serve any report) until its waiter is done or the
 * timeout passes.  A sender that times out marks its waiter abandoned and
 * returns; the report, when it comes, frees it.  All waiter fields are
 * under `lock`.  Labels are rare (an analyst's click): no batching, no
 * preallocation.
 *
 * Threads: any thread may call rs_sink_label_send, concurrently.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "ingest/ingest.h"
#include "scoring/sink.h"

typedef struct rs_label_wait_s {
    int done, abandoned;
    rd_kafka_resp_err_t err;
} rs_label_wait_t;

struct rs_sink_label_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rs_format_t fmt;
    pthread_mutex_t lock;      /* waiters                               */
    char topic[128];
};

static void rs_label_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                           void *opaque) {
    rs_sink_label_t *s = opaque;
    rs_label_wait_t *w = m->_private;
    RS_UNUSED(rk);
    if (!w) return;
    pthread_mutex_lock(&s->lock);
    if (w->abandoned) {
        if (m->err)
            rs_warn("sink", "label for topic '%s' not delivered after its "
                    "sender gave up: %s", s->topic, rd_kafka_err2str(m->err));
        rs_free(w);
    } else {
        w->err = m->err;
        w->done = 1;
    }
    pthread_mutex_unlock(&s->lock);
}

rs_sink_label_t *rs_sink_label_new(const rs_kv_t *props, const char *bootstrap,
                                   const char *topic, rs_format_t fmt,
                                   char *errstr, size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "0"},
    };
    rd_kafka_conf_t *kconf = NULL;
    char kerr[512];
    if (!topic || !*topic) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "label producer: no labels topic");
        return NULL;
    }
    rs_sink_label_t *s = rs_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->fmt = fmt;
    rs_strlcpy(s->topic, topic, sizeof(s->topic));
    if (rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, props, bootstrap, defaults,
                                (int)RS_ARRAY_LEN(defaults), &kconf, errstr,
                                errstr_size) != RS_OK)
        goto fail;
    rd_kafka_conf_set_opaque(kconf, s);
    rd_kafka_conf_set_dr_msg_cb(kconf, rs_label_dr_cb);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, kerr, sizeof(kerr));
    if (!s->rk) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "label producer: %s", kerr);
        goto fail;
    }
    kconf = NULL;
    s->rkt = rd_kafka_topic_new(s->rk, topic, NULL);
    if (!s->rkt) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "label producer: topic: %s",
                rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    rs_info("sink", "analysts' labels to '%s' (%s)", topic,
            fmt == RS_FORMAT_PROTOBUF ? "protobuf" : "json");
    return s;
fail:
    if (kconf) rd_kafka_conf_destroy(kconf);
    rs_sink_label_destroy(s);
    return NULL;
}

rs_err_t rs_sink_label_send(rs_sink_label_t *s, const rs_label_t *lb,
                            int timeout_ms, char *errstr,
                            size_t errstr_size) {
    uint8_t buf[1024];
    char vs[256];
    if (rs_label_validate(lb, vs, sizeof(vs)) != RS_OK)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID, "label: %s", vs);
    int n = rs_label_encode(s->fmt, lb, buf, sizeof(buf));
    if (n < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                       "label: does not encode");
    rs_label_wait_t *w = rs_calloc(1, sizeof(*w));
    if (rd_kafka_produce(s->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                         buf, (size_t)n, lb->entity_id,
                         strlen(lb->entity_id), w) != 0) {
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        rs_free(w);
        return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                       "label producer: %s", rd_kafka_err2str(e));
    }
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int done = w->done;
        rd_kafka_resp_err_t e = w->err;
        int late = !done && rs_clock_mono_us() >= deadline;
        if (late) w->abandoned = 1; /* the report frees it */
        pthread_mutex_unlock(&s->lock);
        if (done) {
            rs_free(w);
            if (e)
                return rs_errf(errstr, errstr_size, RS_ERR_KAFKA,
                               "label not delivered: %s", rd_kafka_err2str(e));
            return RS_OK;
        }
        if (late)
            return rs_errf(errstr, errstr_size, RS_ERR_TIMEOUT,
                           "label not acknowledged by Kafka within %d ms",
                           timeout_ms);
        rd_kafka_poll(s->rk, 20);
    }
}

void rs_sink_label_destroy(rs_sink_label_t *s) {
    if (!s) return;
    if (s->rk) {
        /* what is still queued gets 5 s; then its reports free the
         * abandoned waiters */
        if (rd_kafka_flush(s->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE |
                                      RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(s->rk, 1000);
        }
    }
    if (s->rkt) rd_kafka_topic_destroy(s->rkt);
    if (s->rk) rd_kafka_destroy(s->rk);
    pthread_mutex_destroy(&s->lock);
    rs_free(s);
}
