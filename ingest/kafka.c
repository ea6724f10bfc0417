/* kafka.c -- shared librdkafka plumbing: configuration from the `kafka:`
 * passthrough section, log routing, and a producer helper.
 *
 * Secrets: a property value is never logged or copied into errstr when its
 * key looks secret (password, secret, token, key); librdkafka itself
 * redacts sensitive properties in its own logs.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "ingest/ingest.h"
#include "ingest/ingest_int.h"

static _Atomic uint64_t rs_kafka_prod_failed;

/* librdkafka syslog levels: 0..3 error, 4 warning, 5..6 notice/info,
 * 7 debug.  Called from librdkafka threads: rs_log is thread-safe. */
static void rs_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                            const char *buf) {
    rs_log_level_t lv = level <= 3 ? RS_LOG_ERROR
                      : level == 4 ? RS_LOG_WARN
                      : level <= 6 ? RS_LOG_INFO : RS_LOG_DEBUG;
    rs_log(lv, "kafka", "%s [%s] %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void rs_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque) {
    RS_UNUSED(opaque);
    /* Transport errors come and go with brokers: warn, not error. */
    rs_log(err == RD_KAFKA_RESP_ERR__FATAL ? RS_LOG_ERROR : RS_LOG_WARN,
           "kafka", "%s: %s: %s", rd_kafka_name(rk),
           rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int rs_kafka_key_is_secret(const char *key) {
    static const char *const words[] = {"password", "secret", "token",
                                        ".key", "credential"};
    for (size_t i = 0; i < RS_ARRAY_LEN(words); i++)
        if (strcasestr(key, words[i])) return 1;
    return 0;
}

/* Set key=val; errors name `shown` (the key as the user wrote it). */
static rs_err_t rs_kafka_conf_set_shown(rd_kafka_conf_t *conf,
                                        const char *shown, const char *key,
                                        const char *val, char *errstr,
                                        size_t errstr_size) {
    char kerr[512];
    if (rd_kafka_conf_set(conf, key, val, kerr, sizeof(kerr)) ==
        RD_KAFKA_CONF_OK)
        return RS_OK;
    /* librdkafka's message may quote the value: drop it for secrets. */
    if (rs_kafka_key_is_secret(key))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "kafka property '%s': invalid value", shown);
    return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                   "kafka property '%s': %s", shown, kerr);
}

rs_err_t rs_kafka_conf_set1(rd_kafka_conf_t *conf, const char *key,
                            const char *val, char *errstr,
                            size_t errstr_size) {
    return rs_kafka_conf_set_shown(conf, key, key, val, errstr, errstr_size);
}

/* "consumer.<prop>" / "producer.<prop>": <prop> for that client type only.
 * Returns the scope (RD_KAFKA_CONSUMER/PRODUCER) and the bare key, or -1
 * for a key that applies to every client. */
static int rs_kafka_key_scope(const char *key, const char **bare) {
    *bare = key;
    if (!strncmp(key, "consumer.", 9)) {
        *bare = key + 9;
        return RD_KAFKA_CONSUMER;
    }
    if (!strncmp(key, "producer.", 9)) {
        *bare = key + 9;
        return RD_KAFKA_PRODUCER;
    }
    return -1;
}

/* 1 if `props` sets `key` for a client of `type` (plainly or scoped). */
static int rs_kafka_props_set(const rs_kv_t *props, int type,
                              const char *key) {
    for (int i = 0; props && i < props->cnt; i++) {
        const char *bare;
        int scope = rs_kafka_key_scope(props->keys[i], &bare);
        if ((scope < 0 || scope == type) && !strcmp(bare, key)) return 1;
    }
    return 0;
}

rs_err_t rs_kafka_conf_build_for(int type, const rs_kv_t *props,
                                 const char *bootstrap,
                                 const char *const (*defaults)[2],
                                 int ndefaults, rd_kafka_conf_t **out,
                                 char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    *out = NULL;
    rd_kafka_conf_set_log_cb(conf, rs_kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, rs_kafka_error_cb);
    if (!rs_kafka_props_set(props, type, "client.id"))
        err = rs_kafka_conf_set1(conf, "client.id", "riskstream", errstr,
                                 errstr_size);
    /* Module defaults that the `kafka:` section does not override. */
    for (int i = 0; err == RS_OK && i < ndefaults; i++)
        if (!rs_kafka_props_set(props, type, defaults[i][0]))
            err = rs_kafka_conf_set1(conf, defaults[i][0], defaults[i][1],
                                     errstr, errstr_size);
    /* Plain keys first, then the scoped ones, so a scoped key wins. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; err == RS_OK && props && i < props->cnt; i++) {
            const char *bare;
            int scope = rs_kafka_key_scope(props->keys[i], &bare);
            if (pass == 0 ? scope >= 0 : scope != type || type < 0) continue;
            err = rs_kafka_conf_set_shown(conf, props->keys[i], bare,
                                          props->vals[i], errstr,
                                          errstr_size);
        }
    if (err == RS_OK && bootstrap && *bootstrap)
        err = rs_kafka_conf_set1(conf, "bootstrap.servers", bootstrap, errstr,
                                 errstr_size);
    if (err != RS_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    *out = conf;
    return RS_OK;
}

rs_err_t rs_kafka_conf_build(const rs_kv_t *props, const char *bootstrap,
                             rd_kafka_conf_t **out, char *errstr,
                             size_t errstr_size) {
    return rs_kafka_conf_build_for(-1, props, bootstrap, NULL, 0, out, errstr,
                                   errstr_size);
}

rs_err_t rs_kafka_conf_check(const rs_kv_t *props, char *errstr,
                             size_t errstr_size) {
    static const int types[] = {RD_KAFKA_CONSUMER, RD_KAFKA_PRODUCER};
    for (size_t t = 0; t < RS_ARRAY_LEN(types); t++) {
        rd_kafka_conf_t *conf = NULL;
        rs_err_t err = rs_kafka_conf_build_for(types[t], props, NULL, NULL, 0,
                                               &conf, errstr, errstr_size);
        if (err != RS_OK) return RS_ERR_CONFIG;
        rd_kafka_conf_destroy(conf);
    }
    if (rs_kafka_props_set(props, RD_KAFKA_PRODUCER, "transactional.id"))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "kafka.transactional.id must not be set (it would make "
                       "every producer transactional); exactly-once mode "
                       "(service.delivery) gives the scores producer its own "
                       "(service.transactional_id)");
    return RS_OK;
}

/* Delivery report of the helper producer: count and log failures, at most
 * one line per second. */
static void rs_kafka_prod_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                                void *opaque) {
    static _Atomic int64_t last_us;
    RS_UNUSED(opaque);
    if (!rkm->err) return;
    uint64_t n = atomic_fetch_add(&rs_kafka_prod_failed, 1) + 1;
    int64_t now = rs_clock_mono_us(), prev = atomic_load(&last_us);
    if (now - prev >= 1000000 &&
        atomic_compare_exchange_strong(&last_us, &prev, now))
        rs_error("kafka", "%s: delivery to %s [%d] failed: %s "
                 "(%llu failures so far)", rd_kafka_name(rk),
                 rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                 rd_kafka_err2str(rkm->err), (unsigned long long)n);
}

uint64_t rs_kafka_producer_failed(void) {
    return atomic_load(&rs_kafka_prod_failed);
}

rd_kafka_t *rs_kafka_producer_new(const rs_kv_t *props, const char *bootstrap,
                                  char *errstr, size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
    };
    rd_kafka_conf_t *conf = NULL;
    char kerr[512];
    rd_kafka_t *rk;
    if (rs_kafka_conf_build_for(RD_KAFKA_PRODUCER, props, bootstrap, defaults,
                                (int)RS_ARRAY_LEN(defaults), &conf, errstr,
                                errstr_size) != RS_OK)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, rs_kafka_prod_dr_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!rk) {
        rs_errf(errstr, errstr_size, RS_ERR_KAFKA, "kafka producer: %s", kerr);
        goto fail;
    }
    return rk;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    return NULL;
}
