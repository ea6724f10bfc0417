/* test_sinks.c -- the Redis sink against a real redis-server (private, on a
 * unix socket) and the Kafka sink against the embedded mock cluster.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "common/config.h"
#include "ingest/ingest.h"
#include "scoring/sink.h"
#include "tests/support/rs_test_kafka.h"
#include "tests/support/rs_test_redis.h"

#define BASE_MS 1700000000000LL

static void make_score(int i, int entity, rs_score_t *sc) {
    static const rs_decision_t dec[] = {
        RS_DECISION_APPROVE, RS_DECISION_REVIEW, RS_DECISION_APPROVE,
        RS_DECISION_DECLINE, RS_DECISION_APPROVE, RS_DECISION_ALERT,
        RS_DECISION_APPROVE};
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "s-%d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "e-%d", entity);
    sc->score = (i % 1000) / 1000.0;
    sc->decision = dec[i % 7];
    snprintf(sc->model_version, sizeof(sc->model_version), "test-1");
    sc->event_time_ms = BASE_MS + (int64_t)i * 1000;
    sc->scored_at_ms = BASE_MS + (int64_t)i * 1000 + 5;
    sc->latency_us = 1234;
    sc->explanation.n_reasons = 1;
    snprintf(sc->explanation.reasons[0], RS_REASON_MAX, "amount %d", i);
}

static int is_alert(rs_decision_t d) {
    return d == RS_DECISION_REVIEW || d == RS_DECISION_DECLINE ||
           d == RS_DECISION_ALERT;
}

/* Raw hiredis client for checks. */
static redisContext *raw_connect(rs_test_redis_t *r) {
    redisContext *c = redisConnectUnix(rs_test_redis_socket(r));
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

static long long raw_int(redisContext *c, const char *fmt, const char *arg) {
    redisReply *rep = redisCommand(c, fmt, arg);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

static rs_sink_redis_t *new_redis_sink(rs_test_redis_t *r,
                                       int64_t index_max) {
    rs_redis_conf_t conf;
    char errstr[512];
    rs_redis_conf_init(&conf);
    snprintf(conf.url, sizeof(conf.url), "%s", rs_test_redis_url(r));
    if (index_max) conf.entity_index_max = index_max;
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "rs_sink_redis_new: %s\n", errstr);
    assert_non_null(sink);
    return sink;
}

static rs_test_redis_t *start_redis(const char *const *extra) {
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(extra, errstr, sizeof(errstr));
    if (!r) fprintf(stderr, "rs_test_redis_start: %s\n", errstr);
    assert_non_null(r);
    return r;
}

/* ------------------------------------------------------------- URL parser */

static void test_url_parse(void **state) {
    (void)state;
    rs_redis_url_t u;
    char errstr[256];

    assert_int_equal(rs_redis_url_parse("redis://localhost", &u, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_false(u.is_unix);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");

    assert_int_equal(rs_redis_url_parse("redis://10.0.0.5:6380/3", &u, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);

    assert_int_equal(rs_redis_url_parse("redis://:p@ss@host:7000/", &u,
                                        errstr, sizeof(errstr)), RS_OK);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "p@ss");
    assert_string_equal(u.host, "host");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 0);

    assert_int_equal(rs_redis_url_parse("redis://alice:pw@h", &u, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "pw");

    assert_int_equal(rs_redis_url_parse("redis://[::1]:6390/1", &u, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 1);

    assert_int_equal(rs_redis_url_parse("unix:///tmp/x/redis.sock", &u,
                                        errstr, sizeof(errstr)), RS_OK);
    assert_true(u.is_unix);
    assert_string_equal(u.path, "/tmp/x/redis.sock");
    assert_int_equal(u.db, 0);

    assert_int_equal(rs_redis_url_parse("unix:///run/r.sock?db=5", &u, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_string_equal(u.path, "/run/r.sock");
    assert_int_equal(u.db, 5);

    static const char *const bad[] = {
        "", "localhost:6379", "http://h", "rediss://h", "redis://",
        "redis://h:0", "redis://h:65536", "redis://h:12a", "redis://h/x",
        "redis://[::1", "redis://user@h", "unix://relative.sock", "unix://",
        "unix:///s?db=x", "unix:///s?foo=1", "redis://h:-1"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        errstr[0] = '\0';
        if (rs_redis_url_parse(bad[i], &u, errstr, sizeof(errstr)) !=
            RS_ERR_CONFIG)
            fail_msg("url '%s' accepted", bad[i]);
        assert_true(errstr[0] != '\0');
    }
    /* The password never appears in an error. */
    assert_int_equal(rs_redis_url_parse("redis://:topsecret@h:99999", &u,
                                        errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_null(strstr(errstr, "topsecret"));
    char longpath[300];
    memset(longpath, 'a', sizeof(longpath));
    memcpy(longpath, "unix:///", 8);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(rs_redis_url_parse(longpath, &u, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
}

static void test_redis_conf(void **state) {
    (void)state;
    rs_redis_conf_t conf;
    char errstr[256];
    rs_redis_conf_init(&conf);
    assert_string_equal(conf.url, "");
    assert_int_equal(conf.ttl_ms, 7LL * 86400 * 1000);
    assert_string_equal(conf.key_prefix, "rs:");
    assert_int_equal(conf.entity_index_max, 1000);
    assert_int_equal(conf.timeout_ms, 2000);
    assert_string_equal(conf.password_env, "");

    rs_conf_section_t sec;
    rs_conf_t *reg = rs_conf_new();
    rs_redis_conf_section(&sec, &conf);
    assert_int_equal(rs_conf_add_section(reg, &sec, errstr, sizeof(errstr)),
                     RS_OK);
    const char *yaml = "redis:\n  url: unix:///tmp/r.sock\n  ttl: 1h\n"
                       "  key_prefix: 'x:'\n  entity_index_max: 10\n";
    assert_int_equal(rs_conf_load_yaml(reg, yaml, strlen(yaml), "t.yaml",
                                       errstr, sizeof(errstr)), RS_OK);
    assert_string_equal(conf.url, "unix:///tmp/r.sock");
    assert_int_equal(conf.ttl_ms, 3600000);
    assert_string_equal(conf.key_prefix, "x:");
    assert_int_equal(conf.entity_index_max, 10);
    const char *bad = "redis:\n  ttl: 0s\n";
    assert_int_equal(rs_conf_load_yaml(reg, bad, strlen(bad), "t.yaml", errstr,
                                       sizeof(errstr)), RS_ERR_CONFIG);
    rs_conf_destroy(reg);

    assert_int_equal(rs_redis_conf_check(&conf, errstr, sizeof(errstr)),
                     RS_OK);
    conf.url[0] = '\0';
    assert_int_equal(rs_redis_conf_check(&conf, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    snprintf(conf.url, sizeof(conf.url), "unix:///tmp/r.sock");
    snprintf(conf.password_env, sizeof(conf.password_env),
             "RS_TEST_NO_SUCH_VAR_42");
    unsetenv("RS_TEST_NO_SUCH_VAR_42");
    assert_int_equal(rs_redis_conf_check(&conf, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "RS_TEST_NO_SUCH_VAR_42"));
    assert_null(rs_sink_redis_new(&conf, errstr, sizeof(errstr)));
}

/* ------------------------------------------------------------------ Redis */

static void test_redis_write_read(void **state) {
    (void)state;
    char errstr[512], json[RS_ENCODE_MAX];
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink(r, 0);
    redisContext *c = raw_connect(r);

    rs_score_t scores[10];
    for (int i = 0; i < 10; i++) make_score(i, i < 6 ? 1 : 2, &scores[i]);
    assert_int_equal(rs_sink_redis_write(sink, scores, 10, errstr,
                                         sizeof(errstr)), RS_OK);

    /* By id. */
    for (int i = 0; i < 10; i++) {
        rs_score_t back;
        assert_int_equal(rs_sink_redis_get_score(sink, scores[i].event_id,
                                                 json, sizeof(json), errstr,
                                                 sizeof(errstr)), RS_OK);
        assert_int_equal(rs_score_from_json(json, strlen(json), &back, errstr,
                                            sizeof(errstr)), RS_OK);
        assert_string_equal(back.event_id, scores[i].event_id);
        assert_string_equal(back.entity_id, scores[i].entity_id);
        assert_true(back.score == scores[i].score);
        assert_int_equal(back.decision, scores[i].decision);
    }
    assert_int_equal(rs_sink_redis_get_score(sink, "nope", json, sizeof(json),
                                             errstr, sizeof(errstr)),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_sink_redis_get_score(sink, "s-1", json, 8, errstr,
                                             sizeof(errstr)), RS_ERR_TOOBIG);

    /* By entity, oldest first, with a time filter. */
    char ids[16][RS_ID_MAX];
    int n = 0;
    assert_int_equal(rs_sink_redis_entity_scores(sink, "e-1", 0, ids, 16, &n,
                                                 errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(n, 6);
    for (int i = 0; i < 6; i++) assert_string_equal(ids[i], scores[i].event_id);
    assert_int_equal(rs_sink_redis_entity_scores(sink, "e-1", BASE_MS + 4000,
                                                 ids, 16, &n, errstr,
                                                 sizeof(errstr)), RS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "s-4");
    assert_int_equal(rs_sink_redis_entity_scores(sink, "e-2", 0, ids, 3, &n,
                                                 errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(rs_sink_redis_entity_scores(sink, "unknown", 0, ids, 3,
                                                 &n, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(n, 0);

    /* TTLs on both kinds of keys. */
    long long ttl = raw_int(c, "PTTL rs:score:%s", "s-3");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000);
    ttl = raw_int(c, "PTTL rs:entity:%s:scores", "e-1");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000);

    /* Idempotent: a replay rewrites the same keys. */
    redisReply *rep = redisCommand(c, "DBSIZE");
    long long keys = rep->integer;
    freeReplyObject(rep);
    assert_int_equal(keys, 12); /* 10 scores + 2 indexes */
    assert_int_equal(rs_sink_redis_write(sink, scores, 10, errstr,
                                         sizeof(errstr)), RS_OK);
    rep = redisCommand(c, "DBSIZE");
    assert_int_equal(rep->integer, keys);
    freeReplyObject(rep);
    assert_int_equal(raw_int(c, "ZCARD rs:entity:%s:scores", "e-1"), 6);
    /* ... and a replay with a different score does not replace the
     * decision on record: one event, one record. */
    {
        rs_score_t again = scores[3];
        char first[RS_ENCODE_MAX], now[RS_ENCODE_MAX];
        assert_int_equal(rs_sink_redis_get_score(sink, again.event_id, first,
                                                 sizeof(first), errstr,
                                                 sizeof(errstr)), RS_OK);
        again.score = again.score < 0.5 ? 0.99 : 0.01;
        again.decision = RS_DECISION_DECLINE;
        assert_int_equal(rs_sink_redis_write(sink, &again, 1, errstr,
                                             sizeof(errstr)), RS_OK);
        assert_int_equal(rs_sink_redis_get_score(sink, again.event_id, now,
                                                 sizeof(now), errstr,
                                                 sizeof(errstr)), RS_OK);
        assert_string_equal(first, now);
    }

    /* Model keys. */
    assert_int_equal(rs_sink_redis_set_model(sink, "lr-7", "{\"auc\":0.9}",
                                             errstr, sizeof(errstr)), RS_OK);
    rep = redisCommand(c, "GET rs:model:current");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "lr-7");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET rs:model:lr-7");
    assert_string_equal(rep->str, "{\"auc\":0.9}");
    freeReplyObject(rep);

    /* An error reply (wrong type) is RS_ERR_REDIS, the connection stays. */
    freeReplyObject(redisCommand(c, "DEL rs:entity:e-2:scores"));
    freeReplyObject(redisCommand(c, "SET rs:entity:e-2:scores oops"));
    assert_int_equal(rs_sink_redis_write(sink, &scores[7], 1, errstr,
                                         sizeof(errstr)), RS_ERR_REDIS);
    assert_non_null(strstr(errstr, "WRONGTYPE"));
    assert_int_equal(rs_sink_redis_write(sink, scores, 2, errstr,
                                         sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_redis_ping(sink, errstr, sizeof(errstr)), RS_OK);

    rs_sink_redis_stats_t st;
    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.writes, 4);  /* + the replay with another score */
    assert_int_equal(st.scores, 23);
    assert_true(st.errors >= 1);

    redisFree(c);
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

/* Entity index cap keeps the newest entity_index_max scores. */
static void test_redis_index_cap(void **state) {
    (void)state;
    char errstr[512];
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink(r, 5);
    rs_score_t scores[12];
    /* Written out of time order: the cap is by event time, not arrival. */
    for (int i = 0; i < 12; i++) make_score((i * 5) % 12, 3, &scores[i]);
    assert_int_equal(rs_sink_redis_write(sink, scores, 12, errstr,
                                         sizeof(errstr)), RS_OK);
    char ids[16][RS_ID_MAX];
    int n = 0;
    assert_int_equal(rs_sink_redis_entity_scores(sink, "e-3", 0, ids, 16, &n,
                                                 errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof(want), "s-%d", 7 + i);
        assert_string_equal(ids[i], want);
    }
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

/* Redis goes away: RS_ERR_IO (retriable), then recovery on the same
 * socket path. */
static void test_redis_outage(void **state) {
    (void)state;
    char errstr[512], json[RS_ENCODE_MAX];
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink(r, 0);
    rs_score_t scores[4];
    for (int i = 0; i < 4; i++) make_score(i, 1, &scores[i]);
    assert_int_equal(rs_sink_redis_write(sink, scores, 2, errstr,
                                         sizeof(errstr)), RS_OK);

    assert_int_equal(rs_test_redis_stop(r), 0);
    rs_err_t err = rs_sink_redis_write(sink, scores, 4, errstr,
                                       sizeof(errstr));
    printf("while down: %s (%s)\n", rs_err_str(err), errstr);
    assert_int_equal(err, RS_ERR_IO);
    assert_true(rs_err_retriable(err));
    /* Still down: the reconnect fails fast with RS_ERR_IO too. */
    assert_int_equal(rs_sink_redis_write(sink, scores, 4, errstr,
                                         sizeof(errstr)), RS_ERR_IO);
    assert_int_equal(rs_sink_redis_get_score(sink, "s-0", json, sizeof(json),
                                             errstr, sizeof(errstr)),
                     RS_ERR_IO);

    assert_int_equal(rs_test_redis_restart(r, errstr, sizeof(errstr)), 0);
    assert_int_equal(rs_sink_redis_write(sink, scores, 4, errstr,
                                         sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_redis_get_score(sink, "s-3", json, sizeof(json),
                                             errstr, sizeof(errstr)), RS_OK);
    rs_sink_redis_stats_t st;
    rs_sink_redis_stats(sink, &st);
    assert_true(st.io_errors >= 2);
    assert_int_equal(st.reconnects, 1);
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

/* AUTH with the password from an environment variable; SELECT db. */
static void test_redis_auth_db(void **state) {
    (void)state;
    char errstr[512], json[RS_ENCODE_MAX];
    static const char *const args[] = {"--requirepass", "s3cret-pw", NULL};
    rs_test_redis_t *r = start_redis(args);
    rs_redis_conf_t conf;
    rs_redis_conf_init(&conf);
    snprintf(conf.url, sizeof(conf.url), "%s?db=2", rs_test_redis_url(r));
    snprintf(conf.password_env, sizeof(conf.password_env), "RS_TEST_REDIS_PW");

    setenv("RS_TEST_REDIS_PW", "wrong-pw", 1);
    assert_null(rs_sink_redis_new(&conf, errstr, sizeof(errstr)));
    printf("wrong password: %s\n", errstr);
    assert_null(strstr(errstr, "wrong-pw"));

    setenv("RS_TEST_REDIS_PW", "s3cret-pw", 1);
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "%s\n", errstr);
    assert_non_null(sink);
    rs_score_t sc;
    make_score(1, 1, &sc);
    assert_int_equal(rs_sink_redis_write(sink, &sc, 1, errstr,
                                         sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_redis_get_score(sink, "s-1", json, sizeof(json),
                                             errstr, sizeof(errstr)), RS_OK);
    /* It landed in db 2. */
    redisContext *c = raw_connect(r);
    freeReplyObject(redisCommand(c, "AUTH s3cret-pw"));
    redisReply *rep = redisCommand(c, "EXISTS rs:score:s-1");
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    freeReplyObject(redisCommand(c, "SELECT 2"));
    rep = redisCommand(c, "EXISTS rs:score:s-1");
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    redisFree(c);
    rs_sink_redis_destroy(sink);
    unsetenv("RS_TEST_REDIS_PW");
    rs_test_redis_destroy(r);
}

/* ------------------------------------------------------------------ Kafka */

static const char *const rs_topics[] = {"scores", "alerts"};

typedef struct score_check_s {
    rs_format_t fmt;
    int n, bad_key, bad_decode, dup, non_alert;
    unsigned char seen[2048];
} score_check_t;

static void score_cb(void *opaque, const rd_kafka_message_t *rkm) {
    score_check_t *c = opaque;
    rs_score_t sc;
    char errstr[256];
    int i;
    c->n++;
    rs_err_t err = c->fmt == RS_FORMAT_JSON
        ? rs_score_from_json(rkm->payload, rkm->len, &sc, errstr, sizeof(errstr))
        : rs_score_from_pb(rkm->payload, rkm->len, &sc, errstr, sizeof(errstr));
    if (err != RS_OK || sscanf(sc.event_id, "s-%d", &i) != 1 || i < 0 ||
        i >= 2048) {
        c->bad_decode++;
        return;
    }
    if (c->seen[i]++) c->dup++;
    if (rkm->key_len != strlen(sc.entity_id) ||
        memcmp(rkm->key, sc.entity_id, rkm->key_len))
        c->bad_key++;
    if (!is_alert(sc.decision)) c->non_alert++;
}

static void wait_acked(rs_sink_kafka_t *sink, uint64_t seq, int timeout_ms) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (rs_sink_kafka_acked(sink) < seq && rs_clock_mono_us() < deadline)
        assert_int_equal(rs_sink_kafka_poll(sink, 50), RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), seq);
}

/* 1000 scores in 10 batches; every one on the scores topic with its key,
 * exactly the review/decline/alert ones on the alerts topic. */
static void run_kafka_sink(rs_format_t fmt, int inject_errors) {
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(1, rs_topics, 2, 4, errstr,
                                      sizeof(errstr));
    assert_non_null(cl);
    const char *boot = rs_cluster_bootstraps(cl);
    rs_sink_kafka_t *sink = rs_sink_kafka_new(NULL, boot, "scores", "alerts",
                                              fmt, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "%s\n", errstr);
    assert_non_null(sink);
    if (inject_errors)
        /* ApiKey 0 = Produce: permanent errors fail the first requests'
         * messages; the sink must produce them again. */
        rd_kafka_mock_push_request_errors(
            rs_cluster_mock(cl), 0, 3,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);

    int nalerts = 0;
    rs_score_t sc;
    for (int b = 1; b <= 10; b++) {
        for (int i = (b - 1) * 100; i < b * 100; i++) {
            make_score(i, i % 13, &sc);
            nalerts += is_alert(sc.decision);
            assert_int_equal(rs_sink_kafka_publish(sink, &sc, (uint64_t)b),
                             RS_OK);
        }
        assert_int_equal(rs_sink_kafka_batch_end(sink, (uint64_t)b), RS_OK);
        assert_int_equal(rs_sink_kafka_poll(sink, 0), RS_OK);
    }
    wait_acked(sink, 10, 60000);
    rs_sink_kafka_stats_t st;
    rs_sink_kafka_stats(sink, &st);
    printf("kafka sink: published %llu alerts %llu delivered %llu failed %llu "
           "retries %llu\n", (unsigned long long)st.published,
           (unsigned long long)st.alerts, (unsigned long long)st.delivered,
           (unsigned long long)st.failed, (unsigned long long)st.retries);
    assert_int_equal(st.published, 1000);
    assert_int_equal(st.alerts, nalerts);
    assert_int_equal(st.delivered, 1000 + nalerts);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.acked_seq, 10);
    if (inject_errors) {
        assert_true(st.failed > 0);
        assert_true(st.retries > 0);
    }
    rs_sink_kafka_destroy(sink);

    score_check_t *c = calloc(1, sizeof(*c));
    c->fmt = fmt;
    assert_int_equal(rs_test_kafka_read(boot, "scores", 1000, 1000, 30000,
                                        score_cb, c), 1000);
    assert_int_equal(c->bad_decode, 0);
    assert_int_equal(c->bad_key, 0);
    assert_int_equal(c->dup, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(c->seen[i], 1);
    memset(c, 0, sizeof(*c));
    c->fmt = fmt;
    assert_int_equal(rs_test_kafka_read(boot, "alerts", nalerts, 1000, 30000,
                                        score_cb, c), nalerts);
    assert_int_equal(c->non_alert, 0);
    assert_int_equal(c->dup, 0);
    assert_int_equal(c->bad_key, 0);
    free(c);
    rs_cluster_destroy(cl);
}

static void test_kafka_sink_json(void **state) {
    (void)state;
    run_kafka_sink(RS_FORMAT_JSON, 0);
}

static void test_kafka_sink_pb_retry(void **state) {
    (void)state;
    run_kafka_sink(RS_FORMAT_PROTOBUF, 1);
}

/* Batch bookkeeping: empty batches, order, unended batches. */
static void test_kafka_sink_batches(void **state) {
    (void)state;
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(1, rs_topics, 2, 2, errstr,
                                      sizeof(errstr));
    assert_non_null(cl);
    rs_sink_kafka_t *sink = rs_sink_kafka_new(
        NULL, rs_cluster_bootstraps(cl), "scores", NULL, RS_FORMAT_JSON,
        errstr, sizeof(errstr));
    assert_non_null(sink);
    assert_int_equal(rs_sink_kafka_acked(sink), 0);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 1), RS_OK); /* empty */
    assert_int_equal(rs_sink_kafka_acked(sink), 1);

    rs_score_t sc;
    make_score(1, 1, &sc);
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 2), RS_OK);
    assert_int_equal(rs_sink_kafka_flush(sink, 10000), RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 1); /* 2 not ended yet */
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 1), RS_ERR_STATE);
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 3), RS_OK);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 4), RS_OK); /* ends 2..4 */
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 4), RS_ERR_STATE);
    wait_acked(sink, 4, 10000);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 4), RS_OK); /* idempotent */
    assert_int_equal(rs_sink_kafka_batch_end(sink, 6), RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 6);
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 7), RS_OK);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 7), RS_OK);
    wait_acked(sink, 7, 10000);
    rs_sink_kafka_destroy(sink);
    rs_sink_kafka_destroy(NULL);
    rs_sink_redis_destroy(NULL);
    rs_cluster_destroy(cl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_redis_conf),
        cmocka_unit_test(test_redis_write_read),
        cmocka_unit_test(test_redis_index_cap),
        cmocka_unit_test(test_redis_outage),
        cmocka_unit_test(test_redis_auth_db),
        cmocka_unit_test(test_kafka_sink_batches),
        cmocka_unit_test(test_kafka_sink_json),
        cmocka_unit_test(test_kafka_sink_pb_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
