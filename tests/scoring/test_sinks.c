/* test_sinks.c -- the Redis sink against a real redis-server (private, on a
 * unix socket) and the Kafka sink against the embedded mock cluster.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    sc->score = (float)((i % 1000) / 1000.0); /* the model gives float32 */
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

/* A sink on r; index_max, buffer_bytes, input_ttl_ms: 0 = default. */
static rs_sink_redis_t *new_redis_sink_ex(rs_test_redis_t *r,
                                          int64_t index_max,
                                          int64_t buffer_bytes,
                                          int64_t input_ttl_ms) {
    rs_redis_conf_t conf;
    char errstr[512];
    rs_redis_conf_init(&conf);
    snprintf(conf.url, sizeof(conf.url), "%s", rs_test_redis_url(r));
    if (index_max) conf.entity_index_max = index_max;
    if (buffer_bytes) conf.buffer_bytes = buffer_bytes;
    if (input_ttl_ms) conf.input_ttl_ms = input_ttl_ms;
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "rs_sink_redis_new: %s\n", errstr);
    assert_non_null(sink);
    return sink;
}

static rs_sink_redis_t *new_redis_sink(rs_test_redis_t *r,
                                       int64_t index_max) {
    return new_redis_sink_ex(r, index_max, 0, 0);
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
        "", "localhost:6379", "http://h", "rediss://", "redis://",
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
    assert_int_equal(conf.buffer_bytes, 64LL << 20);
    assert_int_equal(conf.input_ttl_ms, 0);

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
    const char *buf = "redis:\n  buffer_bytes: 1048576\n  input_ttl: 30d\n";
    assert_int_equal(rs_conf_load_yaml(reg, buf, strlen(buf), "t.yaml", errstr,
                                       sizeof(errstr)), RS_OK);
    assert_int_equal(conf.buffer_bytes, 1048576);
    assert_int_equal(conf.input_ttl_ms, 30LL * 86400 * 1000);
    const char *small = "redis:\n  buffer_bytes: 1000\n";
    assert_int_equal(rs_conf_load_yaml(reg, small, strlen(small), "t.yaml",
                                       errstr, sizeof(errstr)), RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "buffer_bytes"));
    rs_conf_destroy(reg);

    assert_int_equal(rs_redis_conf_check(&conf, errstr, sizeof(errstr)),
                     RS_OK);
    conf.buffer_bytes = 100;
    assert_int_equal(rs_redis_conf_check(&conf, errstr, sizeof(errstr)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "buffer_bytes"));
    conf.buffer_bytes = 1 << 20;
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
    redisContext *c = rs_test_redis_connect(r);

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
    long long ttl = rs_test_redis_int(c, "PTTL rs:score:%s", "s-3");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000);
    ttl = rs_test_redis_int(c, "PTTL rs:entity:%s:scores", "e-1");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000);

    /* Idempotent: a replay rewrites the same keys. */
    redisReply *rep = redisCommand(c, "DBSIZE");
    long long keys = rep->integer;
    freeReplyObject(rep);
    assert_int_equal(keys, 13); /* 10 scores + 2 indexes + rs:alerts */
    assert_int_equal(rs_sink_redis_write(sink, scores, 10, errstr,
                                         sizeof(errstr)), RS_OK);
    rep = redisCommand(c, "DBSIZE");
    assert_int_equal(rep->integer, keys);
    freeReplyObject(rep);
    assert_int_equal(rs_test_redis_int(c, "ZCARD rs:entity:%s:scores", "e-1"), 6);
    /* ... and a replay with a different score does not replace the
     * decision on record: one event, one record. */
    {
        rs_score_t again = scores[3];
        char first[RS_ENCODE_MAX], now[RS_ENCODE_MAX];
        assert_int_equal(rs_sink_redis_get_score(sink, again.event_id, first,
                                                 sizeof(first), errstr,
                                                 sizeof(errstr)), RS_OK);
        again.score = again.score < 0.5 ? 0.99f : 0.01f;
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

typedef struct mget_acc_s {
    int n, present;
    char ids[32][RS_ID_MAX];
} mget_acc_t;

static void mget_cb(void *opaque, int i, const char *val, size_t len) {
    mget_acc_t *a = opaque;
    assert_true(i == a->n);
    a->n++;
    if (!val) {
        a->ids[i][0] = '\0';
        return;
    }
    rs_score_t sc;
    char errstr[256];
    assert_int_equal(rs_score_from_json(val, len, &sc, errstr,
                                        sizeof(errstr)), RS_OK);
    snprintf(a->ids[i], RS_ID_MAX, "%s", sc.event_id);
    a->present++;
}

static long long raw_calls(redisContext *c, const char *cmd);

/* The alert index (review/decline/alert only, newest first, capped), the
 * entity index newest first, MGET, and analysts' outcomes. */
static void test_redis_analyst(void **state) {
    (void)state;
    char errstr[512];
    rs_test_redis_t *r = start_redis(NULL);
    rs_redis_conf_t conf;
    rs_redis_conf_init(&conf);
    assert_int_equal(conf.alert_index_max, 100000);
    snprintf(conf.url, sizeof(conf.url), "%s", rs_test_redis_url(r));
    conf.alert_index_max = 6;
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    assert_non_null(sink);
    redisContext *c = rs_test_redis_connect(r);

    /* 14 scores written by the synchronous path, 14 by the writer thread;
     * decisions cycle through make_score's table (3 of 7 alert). */
    rs_score_t scores[28];
    for (int i = 0; i < 28; i++) make_score(i, i % 2, &scores[i]);
    assert_int_equal(rs_sink_redis_write(sink, scores, 14, errstr,
                                         sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_redis_enqueue(sink, scores + 14, 14, NULL, NULL,
                                           1), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 30000), RS_OK);
    /* Per batch (both paths): one ZADD, PEXPIRE and trim for each of its
     * 2 entities and one of each for the alert index (6 alerts in it). */
    assert_int_equal(raw_calls(c, "zadd"), 2 * 3);
    assert_int_equal(raw_calls(c, "pexpire"), 2 * 3);
    assert_int_equal(raw_calls(c, "zremrangebyrank"), 2 * 3);
    /* A batch without an alert leaves the alert index alone. */
    rs_score_t quiet[2];
    make_score(28, 0, &quiet[0]); /* approve */
    make_score(30, 0, &quiet[1]); /* approve */
    assert_int_equal(rs_sink_redis_write(sink, quiet, 2, errstr,
                                         sizeof(errstr)), RS_OK);
    assert_int_equal(raw_calls(c, "zadd"), 2 * 3 + 1);
    assert_int_equal(raw_calls(c, "pexpire"), 2 * 3 + 1);
    /* newest 6 alerts kept: of 12 alerted events (3 per 7) */
    assert_int_equal(rs_test_redis_int(c, "ZCARD %s", "rs:alerts"), 6);
    long long ttl = rs_test_redis_int(c, "PTTL %s", "rs:alerts");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000);
    rs_redis_hit_t hits[32];
    int n = 0, want[32], nw = 0;
    for (int i = 27; i >= 0 && nw < 6; i--)
        if (is_alert(scores[i].decision)) want[nw++] = i;
    assert_int_equal(rs_sink_redis_index_newest(sink, NULL, 0, INT64_MAX, 0,
                                                hits, 32, &n, errstr,
                                                sizeof(errstr)), RS_OK);
    assert_int_equal(n, 6);
    for (int k = 0; k < 6; k++) {
        assert_string_equal(hits[k].id, scores[want[k]].event_id);
        assert_int_equal(hits[k].t_ms, scores[want[k]].event_time_ms);
    }
    /* offset and a time range (inclusive bounds) */
    assert_int_equal(rs_sink_redis_index_newest(sink, NULL, 0, INT64_MAX, 4,
                                                hits, 32, &n, errstr,
                                                sizeof(errstr)), RS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(hits[0].id, scores[want[4]].event_id);
    assert_int_equal(rs_sink_redis_index_newest(
                         sink, NULL, scores[want[3]].event_time_ms,
                         scores[want[1]].event_time_ms, 0, hits, 32, &n,
                         errstr, sizeof(errstr)), RS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(hits[0].id, scores[want[1]].event_id);
    assert_string_equal(hits[2].id, scores[want[3]].event_id);
    /* an entity's index, newest first; unknown entity: none */
    assert_int_equal(rs_sink_redis_index_newest(sink, "e-1", 0, INT64_MAX, 0,
                                                hits, 3, &n, errstr,
                                                sizeof(errstr)), RS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(hits[0].id, "s-27");
    assert_string_equal(hits[2].id, "s-23");
    assert_int_equal(rs_sink_redis_index_newest(sink, "nobody", 0, INT64_MAX,
                                                0, hits, 3, &n, errstr,
                                                sizeof(errstr)), RS_OK);
    assert_int_equal(n, 0);

    /* MGET: records in order, NULL for the missing */
    const char *ids[] = {"s-3", "nope", "s-20"};
    mget_acc_t acc = {0};
    assert_int_equal(rs_sink_redis_mget(sink, RS_REDIS_SCORE, ids, 3, mget_cb,
                                        &acc, errstr, sizeof(errstr)), RS_OK);
    assert_int_equal(acc.n, 3);
    assert_int_equal(acc.present, 2);
    assert_string_equal(acc.ids[0], "s-3");
    assert_string_equal(acc.ids[1], "");
    assert_string_equal(acc.ids[2], "s-20");

    /* outcomes: first write wins with NX, DEL undoes */
    const char *o1 = "{\"event_id\":\"s-3\",\"outcome\":\"fraud\"}";
    assert_int_equal(rs_sink_redis_set_outcome(sink, "s-3", o1, 1, errstr,
                                               sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_redis_set_outcome(sink, "s-3", "{}", 1, errstr,
                                               sizeof(errstr)), RS_ERR_STATE);
    assert_non_null(strstr(errstr, "already has an outcome"));
    redisReply *rep = redisCommand(c, "GET rs:outcome:s-3");
    assert_string_equal(rep->str, o1);
    freeReplyObject(rep);
    ttl = rs_test_redis_int(c, "PTTL %s", "rs:outcome:s-3");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000);
    assert_int_equal(rs_sink_redis_del_outcome(sink, "s-3", errstr,
                                               sizeof(errstr)), RS_OK);
    assert_int_equal(rs_test_redis_int(c, "EXISTS %s", "rs:outcome:s-3"), 0);
    assert_int_equal(rs_sink_redis_set_outcome(sink, "s-3", "{}", 0, errstr,
                                               sizeof(errstr)), RS_OK);

    redisFree(c);
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
    /* A read on a connection the server dropped meanwhile (restart, no
     * persistence: the data is gone) reconnects and answers. */
    assert_int_equal(rs_test_redis_restart(r, errstr, sizeof(errstr)), 0);
    assert_int_equal(rs_sink_redis_get_score(sink, "s-3", json, sizeof(json),
                                             errstr, sizeof(errstr)),
                     RS_ERR_NOTFOUND);
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
    redisContext *c = rs_test_redis_connect(r);
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

/* ---------------------------------------------------- Redis: async writer */

#define NENT 7 /* entities: event i belongs to e-(i % NENT) */

/* Event i is input-logged unless i % 3 == 0; its log is binary (NULs). */
static int is_logged(int i) { return i % 3 != 0; }

static size_t make_log(int i, int variant, unsigned char *buf) {
    size_t len = 40 + (size_t)(i % 200);
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)((i * 31 + (int)k * 7 + variant * 13) & 0xff);
    buf[0] = 0;
    return len;
}

/* Queue events [first, first + n) as batch seq (n <= 64). */
static rs_err_t enqueue_events(rs_sink_redis_t *sink, uint64_t seq, int first,
                               int n, int variant) {
    static rs_score_t scores[64];
    static unsigned char logs[64][256];
    const void *lp[64];
    size_t ll[64];
    for (int j = 0; j < n; j++) {
        int i = first + j;
        make_score(i, i % NENT, &scores[j]);
        if (variant) scores[j].score = scores[j].score < 0.5 ? 0.99f : 0.01f;
        lp[j] = is_logged(i) ? logs[j] : NULL;
        ll[j] = make_log(i, variant, logs[j]);
    }
    return rs_sink_redis_enqueue(sink, scores, n, lp, ll, seq);
}

static int count_logged(int from, int to) {
    int k = 0;
    for (int i = from; i < to; i++) k += is_logged(i);
    return k;
}

/* Events in [from, to) decided review/decline/alert (alert index ZADDs). */
static int count_alerts(int from, int to) {
    int k = 0;
    for (int i = from; i < to; i++) {
        rs_score_t sc;
        make_score(i, 0, &sc);
        k += is_alert(sc.decision);
    }
    return k;
}

/* Batches of `per` events in [from, to) with an alert among them: one
 * ZADD / PEXPIRE / trim of the alert index each. */
static int count_alert_batches(int from, int to, int per) {
    int k = 0;
    for (int b = from; b < to; b += per)
        k += count_alerts(b, RS_MIN(b + per, to)) > 0;
    return k;
}

/* The record and the input log of event i are what was queued first. */
static void check_event(rs_sink_redis_t *sink, int i) {
    char errstr[512], json[RS_ENCODE_MAX], id[32];
    unsigned char got[512], want[256];
    rs_score_t sc, back;
    size_t len = 0;
    make_score(i, i % NENT, &sc);
    snprintf(id, sizeof(id), "s-%d", i);
    rs_err_t err = rs_sink_redis_get_score(sink, id, json, sizeof(json), errstr,
                                           sizeof(errstr));
    if (err != RS_OK) fail_msg("event %d: %s", i, errstr);
    assert_int_equal(rs_score_from_json(json, strlen(json), &back, errstr,
                                        sizeof(errstr)), RS_OK);
    assert_string_equal(back.event_id, sc.event_id);
    assert_string_equal(back.entity_id, sc.entity_id);
    assert_true(back.score == sc.score);
    assert_int_equal(back.decision, sc.decision);
    err = rs_sink_redis_get_input(sink, id, got, sizeof(got), &len, errstr,
                                  sizeof(errstr));
    if (!is_logged(i)) {
        assert_int_equal(err, RS_ERR_NOTFOUND);
        return;
    }
    if (err != RS_OK) fail_msg("input of event %d: %s", i, errstr);
    size_t wl = make_log(i, 0, want);
    assert_int_equal(len, wl);
    assert_memory_equal(got, want, wl);
}

static long long raw_dbsize(redisContext *c) {
    redisReply *rep = redisCommand(c, "DBSIZE");
    assert_non_null(rep);
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* Calls of a command since the server started (INFO commandstats). */
static long long raw_calls(redisContext *c, const char *cmd) {
    char pat[64];
    long long v = 0;
    redisReply *rep = redisCommand(c, "INFO commandstats");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    snprintf(pat, sizeof(pat), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(rep->str, pat);
    if (p) v = atoll(p + strlen(pat));
    freeReplyObject(rep);
    return v;
}

static long long raw_index_total(redisContext *c) {
    long long n = 0;
    char e[16];
    for (int k = 0; k < NENT; k++) {
        snprintf(e, sizeof(e), "e-%d", k);
        n += rs_test_redis_int(c, "ZCARD rs:entity:%s:scores", e);
    }
    return n;
}

/* Poll (bounded) until the writer's health is `want`. */
static int wait_healthy(rs_sink_redis_t *sink, int want, int timeout_ms) {
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (rs_sink_redis_healthy(sink) != want &&
           rs_clock_mono_us() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return rs_sink_redis_healthy(sink) == want;
}

/* A thread that reads the sink's counters and watermark the whole time
 * and checks what must always hold (thread-safety of stats/done/healthy). */
typedef struct watch_s {
    rs_sink_redis_t *sink;
    atomic_int stop;
    _Atomic uint64_t max_seq; /* set by the owner BEFORE each enqueue     */
    atomic_int bad;
    _Atomic uint64_t rounds;
    char why[256];            /* first violation (watcher thread only)    */
} watch_t;

static void watch_bad(watch_t *w, const char *what, uint64_t a, uint64_t b) {
    if (atomic_fetch_add(&w->bad, 1) == 0)
        snprintf(w->why, sizeof(w->why), "%s (%llu vs %llu)", what,
                 (unsigned long long)a, (unsigned long long)b);
}

static void *watch_main(void *arg) {
    watch_t *w = arg;
    uint64_t last_done = 0, last_written = 0, last_outages = 0;
    while (!atomic_load(&w->stop)) {
        rs_sink_redis_stats_t st;
        rs_sink_redis_stats(w->sink, &st);
        uint64_t d = rs_sink_redis_done(w->sink);
        uint64_t m = atomic_load(&w->max_seq);
        int h = rs_sink_redis_healthy(w->sink);
        if (d < last_done) watch_bad(w, "done went back", d, last_done);
        if (d > m) watch_bad(w, "done beyond the last enqueue", d, m);
        if (st.done_seq > d) watch_bad(w, "stats.done_seq > done", st.done_seq, d);
        if (st.buffer_bytes > st.buffer_max)
            watch_bad(w, "buffer_bytes > buffer_max", st.buffer_bytes,
                      st.buffer_max);
        if (st.buffer_peak > st.buffer_max)
            watch_bad(w, "buffer_peak > buffer_max", st.buffer_peak,
                      st.buffer_max);
        if (st.written < last_written)
            watch_bad(w, "written went back", st.written, last_written);
        if (st.outages < last_outages)
            watch_bad(w, "outages went back", st.outages, last_outages);
        if (h != 0 && h != 1) watch_bad(w, "healthy not 0/1", (uint64_t)h, 1);
        last_done = d;
        last_written = st.written;
        last_outages = st.outages;
        atomic_fetch_add(&w->rounds, 1);
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Queued writes land as rs_sink_redis_write's would, with input logs;
 * done, n == 0 batches, bad calls, idempotent replays, input_ttl,
 * a batch bigger than the buffer, a refused command. */
static void test_redis_async_write(void **state) {
    (void)state;
    char errstr[512];
    unsigned char small[8];
    size_t len = 0;
    rs_sink_redis_stats_t st;
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink(r, 0);
    redisContext *c = rs_test_redis_connect(r);

    assert_int_equal(rs_sink_redis_done(sink), 0);
    assert_int_equal(rs_sink_redis_healthy(sink), 1);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 0), RS_ERR_TIMEOUT);
    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.buffer_max, 64LL << 20);
    assert_int_equal(st.queued_batches, 0);
    assert_int_equal(rs_sink_redis_enqueue(sink, NULL, 0, NULL, NULL, 0),
                     RS_ERR_INVALID);
    assert_int_equal(rs_sink_redis_enqueue(sink, NULL, -1, NULL, NULL, 1),
                     RS_ERR_INVALID);

    assert_int_equal(enqueue_events(sink, 1, 0, 10, 0), RS_OK);
    assert_int_equal(rs_sink_redis_enqueue(sink, NULL, 0, NULL, NULL, 2),
                     RS_OK); /* an empty batch */
    assert_int_equal(enqueue_events(sink, 3, 10, 5, 0), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 3, 30000), RS_OK);
    assert_int_equal(rs_sink_redis_done(sink), 3);
    assert_int_equal(enqueue_events(sink, 2, 15, 1, 0), RS_ERR_STATE);
    assert_int_equal(rs_sink_redis_wait(sink, 4, 50), RS_ERR_TIMEOUT);

    for (int i = 0; i < 15; i++) check_event(sink, i);
    assert_int_equal(raw_dbsize(c), 15 + NENT + 1 + count_logged(0, 15));
    assert_int_equal(raw_index_total(c), 15);
    long long ttl = rs_test_redis_int(c, "PTTL rs:input:%s", "s-1");
    assert_true(ttl > 0 && ttl <= 7LL * 86400 * 1000); /* input_ttl 0: ttl */
    /* get_input: too small a buffer says how much is needed. */
    assert_int_equal(rs_sink_redis_get_input(sink, "s-1", small, sizeof(small),
                                             &len, errstr, sizeof(errstr)),
                     RS_ERR_TOOBIG);
    assert_int_equal(len, 41);
    assert_int_equal(rs_sink_redis_get_input(sink, "nope", small, sizeof(small),
                                             &len, errstr, sizeof(errstr)),
                     RS_ERR_NOTFOUND);

    /* A replay with other scores and other logs changes nothing. */
    long long sets = raw_calls(c, "set");
    assert_int_equal(enqueue_events(sink, 4, 0, 10, 1), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 4, 30000), RS_OK);
    assert_int_equal(raw_calls(c, "set"), sets + 10 + count_logged(0, 10));
    for (int i = 0; i < 15; i++) check_event(sink, i);
    assert_int_equal(raw_dbsize(c), 15 + NENT + 1 + count_logged(0, 15));
    assert_int_equal(raw_index_total(c), 15);

    /* Queue empty: an empty batch is done at once. */
    assert_int_equal(rs_sink_redis_enqueue(sink, NULL, 0, NULL, NULL, 5),
                     RS_OK);
    assert_int_equal(rs_sink_redis_done(sink), 5);

    /* A command refused for good (index key of the wrong type): counted,
     * not retried; the rest of the batch is written. */
    freeReplyObject(redisCommand(c, "DEL rs:entity:e-3:scores"));
    freeReplyObject(redisCommand(c, "SET rs:entity:e-3:scores oops"));
    assert_int_equal(enqueue_events(sink, 6, 100, 7, 0), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 6, 30000), RS_OK);
    for (int i = 100; i < 107; i++) check_event(sink, i);

    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.written, 15 + 10 + 7);
    assert_int_equal(st.inputs, count_logged(0, 15) + count_logged(0, 10) +
                                    count_logged(100, 107));
    assert_true(st.rejected >= 1); /* ZADD, PEXPIRE, ZREMRANGEBYRANK */
    assert_int_equal(st.queued_batches, 0);
    assert_int_equal(st.buffer_bytes, 0);
    assert_true(st.buffer_peak > 0);
    assert_int_equal(st.outages, 0);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(st.done_seq, 6);
    assert_int_equal(st.healthy, 1);
    /* The owner's connection works alongside the writer. */
    assert_int_equal(rs_sink_redis_set_model(sink, "lr-8", "{}", errstr,
                                             sizeof(errstr)), RS_OK);
    rs_sink_redis_destroy(sink);

    /* input_ttl of its own. */
    sink = new_redis_sink_ex(r, 0, 0, 3600 * 1000);
    assert_int_equal(enqueue_events(sink, 1, 200, 2, 0), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 30000), RS_OK);
    ttl = rs_test_redis_int(c, "PTTL rs:input:%s", "s-200");
    assert_true(ttl > 0 && ttl <= 3600 * 1000);
    assert_true(rs_test_redis_int(c, "PTTL rs:score:%s", "s-200") > 3600 * 1000);
    rs_sink_redis_destroy(sink);

    /* A batch larger than the whole buffer: RS_ERR_TOOBIG, nothing queued;
     * the next batch goes through. */
    sink = new_redis_sink_ex(r, 0, 4096, 0);
    assert_int_equal(enqueue_events(sink, 1, 300, 12, 0), RS_ERR_TOOBIG);
    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.queued_batches, 0);
    assert_int_equal(enqueue_events(sink, 1, 300, 2, 0), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 30000), RS_OK);
    check_event(sink, 300);
    check_event(sink, 301);
    rs_sink_redis_destroy(sink);

    redisFree(c);
    rs_test_redis_destroy(r);
}

/* Redis killed (-9) mid-stream: the writer buffers, the buffer fills ->
 * RS_ERR_AGAIN with nothing queued, done stays put; the server comes back
 * (same data: AOF, fsync always) -> everything is written, each batch not
 * acknowledged before the kill is sent to the new server exactly once,
 * acknowledged ones never again; the outage is logged once (start, end). */
static void test_redis_async_outage(void **state) {
    (void)state;
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync",
                                      "always", NULL};
    char errstr[512];
    char *logbuf = NULL;
    size_t loglen = 0;
    rs_sink_redis_stats_t st, st2;
    rs_test_redis_t *r = start_redis(aof);
    FILE *logf = open_memstream(&logbuf, &loglen);
    assert_non_null(logf);
    rs_log_set_stream(logf); /* before the writer thread exists */
    rs_sink_redis_t *sink = new_redis_sink_ex(r, 0, 128 * 1024, 0);

    watch_t *w = calloc(1, sizeof(*w));
    w->sink = sink;
    pthread_t wt;
    assert_int_equal(pthread_create(&wt, NULL, watch_main, w), 0);

    /* Batch b (1-based) holds events [(b - 1) * 10, b * 10). */
    uint64_t seq = 0;
    for (int b = 0; b < 10; b++) {
        atomic_store(&w->max_seq, seq + 1);
        assert_int_equal(enqueue_events(sink, seq + 1, (int)seq * 10, 10, 0),
                         RS_OK);
        seq++;
        if (seq == 5) assert_int_equal(rs_sink_redis_wait(sink, 2, 30000),
                                       RS_OK);
    }
    /* Kill it while batches are (probably) in flight. */
    assert_int_equal(kill(rs_test_redis_pid(r), SIGKILL), 0);
    assert_int_equal(rs_test_redis_stop(r), 0);
    /* Once the writer saw the failure nothing more can be written. */
    assert_true(wait_healthy(sink, 0, 30000));
    uint64_t d = rs_sink_redis_done(sink);
    printf("killed with %llu of 10 batches acknowledged\n",
           (unsigned long long)d);
    assert_true(d >= 2);

    /* Keep streaming into the buffer until it is full. */
    rs_err_t err = RS_OK;
    for (int k = 0; k < 100000 && err == RS_OK; k++) {
        atomic_store(&w->max_seq, seq + 1);
        err = enqueue_events(sink, seq + 1, (int)seq * 10, 10, 0);
        if (err == RS_OK) seq++;
    }
    assert_int_equal(err, RS_ERR_AGAIN);
    uint64_t last = seq;
    assert_true(last > 10);
    assert_int_equal(rs_sink_redis_done(sink), d);
    assert_int_equal(rs_sink_redis_wait(sink, d + 1, 100), RS_ERR_TIMEOUT);
    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.queued_batches, last - d);
    assert_true(st.buffer_bytes > 0 && st.buffer_bytes <= 128 * 1024);
    assert_true(st.buffer_full >= 1);
    assert_int_equal(st.outages, 1);
    assert_true(st.write_errors >= 1);
    assert_int_equal(st.healthy, 0);
    /* RS_ERR_AGAIN queues nothing. */
    assert_int_equal(enqueue_events(sink, last + 1, (int)last * 10, 10, 0),
                     RS_ERR_AGAIN);
    rs_sink_redis_stats(sink, &st2);
    assert_int_equal(st2.buffer_bytes, st.buffer_bytes);
    assert_int_equal(st2.queued_batches, st.queued_batches);
    assert_int_equal(st2.buffer_full, st.buffer_full + 1);
    printf("outage: %llu batches (%llu bytes) buffered, done %llu\n",
           (unsigned long long)st.queued_batches,
           (unsigned long long)st.buffer_bytes, (unsigned long long)d);

    /* Back: everything queued gets written. */
    assert_int_equal(rs_test_redis_restart(r, errstr, sizeof(errstr)), 0);
    assert_int_equal(rs_sink_redis_wait(sink, last, 60000), RS_OK);
    assert_int_equal(rs_sink_redis_done(sink), last);
    /* The refused batch fits now. */
    atomic_store(&w->max_seq, last + 1);
    assert_int_equal(enqueue_events(sink, last + 1, (int)last * 10, 10, 0),
                     RS_OK);
    seq = last + 1;
    assert_int_equal(rs_sink_redis_wait(sink, seq, 60000), RS_OK);
    assert_int_equal(rs_sink_redis_healthy(sink), 1);

    int nev = (int)seq * 10;
    redisContext *c = rs_test_redis_connect(r);
    for (int i = 0; i < nev; i++) check_event(sink, i);
    assert_int_equal(raw_dbsize(c), nev + NENT + 1 + count_logged(0, nev));
    assert_int_equal(raw_index_total(c), nev);
    /* Exactly once: the new server received the commands of the batches
     * after d, once each, and none of the acknowledged ones. */
    int from = (int)d * 10;
    assert_int_equal(raw_calls(c, "set"),
                     (nev - from) + count_logged(from, nev));
    /* One ZADD and PEXPIRE per entity of a batch: each batch of 10
     * consecutive events holds all NENT entities (the batches built before
     * the restart send their expiry tail on the new connection, the ones
     * after it start from a reset upkeep table); and of the alert index per
     * batch holding an alert.  Entity index trims are amortized (one per
     * entity_index_max / 8 + 16 adds): at most one per entity and batch. */
    long long ab = count_alert_batches(from, nev, 10);
    assert_int_equal(raw_calls(c, "zadd"), (long long)(seq - d) * NENT + ab);
    assert_int_equal(raw_calls(c, "pexpire"),
                     (long long)(seq - d) * NENT + ab);
    assert_true(raw_calls(c, "zremrangebyrank") <=
                (long long)(seq - d) * NENT + ab);
    redisFree(c);

    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.written, nev);
    assert_int_equal(st.inputs, count_logged(0, nev));
    assert_int_equal(st.outages, 1);
    assert_int_equal(st.queued_batches, 0);
    assert_int_equal(st.buffer_bytes, 0);
    assert_int_equal(st.rejected, 0);
    printf("after: written %llu inputs %llu write_errors %llu peak %llu\n",
           (unsigned long long)st.written, (unsigned long long)st.inputs,
           (unsigned long long)st.write_errors,
           (unsigned long long)st.buffer_peak);

    atomic_store(&w->stop, 1);
    pthread_join(wt, NULL);
    if (atomic_load(&w->bad)) fail_msg("stats watcher: %s", w->why);
    assert_true(atomic_load(&w->rounds) > 0);
    free(w);
    rs_sink_redis_destroy(sink);
    rs_log_set_stream(NULL);
    fclose(logf);

    /* Outage start and end logged once each. */
    int starts = 0, ends = 0;
    for (const char *p = logbuf; (p = strstr(p, ": outage: ")); p++) starts++;
    for (const char *p = logbuf; (p = strstr(p, "outage over")); p++) ends++;
    fputs(logbuf, stdout);
    free(logbuf);
    assert_int_equal(starts, 1);
    assert_int_equal(ends, 1);
    rs_test_redis_destroy(r);
}

/* With no traffic the writer still notices an outage and its end (PING
 * after 1 s idle): readiness follows Redis. */
static void test_redis_async_idle_health(void **state) {
    (void)state;
    char errstr[512];
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink(r, 0);
    assert_int_equal(enqueue_events(sink, 1, 0, 3, 0), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 30000), RS_OK);
    assert_int_equal(rs_sink_redis_healthy(sink), 1);
    assert_int_equal(rs_test_redis_stop(r), 0);
    assert_true(wait_healthy(sink, 0, 30000));
    assert_int_equal(rs_test_redis_restart(r, errstr, sizeof(errstr)), 0);
    assert_true(wait_healthy(sink, 1, 30000));
    rs_sink_redis_stats_t st;
    rs_sink_redis_stats(sink, &st);
    assert_int_equal(st.outages, 1);
    assert_int_equal(enqueue_events(sink, 2, 3, 3, 0), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 2, 30000), RS_OK);
    check_event(sink, 4);
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

/* Threads: a waiter blocks in rs_sink_redis_wait for every batch, a
 * watcher reads stats, the owner enqueues (retrying on RS_ERR_AGAIN with
 * a small buffer) and uses its own connection at the same time. */
typedef struct waiter_s {
    rs_sink_redis_t *sink;
    uint64_t upto;
    int failures;
} waiter_t;

static void *waiter_main(void *arg) {
    waiter_t *wt = arg;
    for (uint64_t s = 1; s <= wt->upto; s++)
        if (rs_sink_redis_wait(wt->sink, s, 60000) != RS_OK ||
            rs_sink_redis_done(wt->sink) < s)
            wt->failures++;
    return NULL;
}

static void test_redis_async_threads(void **state) {
    (void)state;
    enum { BATCHES = 300, PER = 5 };
    char errstr[512], json[RS_ENCODE_MAX];
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink_ex(r, 0, 16 * 1024, 0);
    watch_t *w = calloc(1, sizeof(*w));
    w->sink = sink;
    waiter_t wa = {.sink = sink, .upto = BATCHES};
    pthread_t wt, at;
    assert_int_equal(pthread_create(&wt, NULL, watch_main, w), 0);
    assert_int_equal(pthread_create(&at, NULL, waiter_main, &wa), 0);
    int again = 0;
    for (int b = 1; b <= BATCHES; b++) {
        atomic_store(&w->max_seq, (uint64_t)b);
        rs_err_t err;
        while ((err = enqueue_events(sink, (uint64_t)b, (b - 1) * PER, PER,
                                     0)) == RS_ERR_AGAIN) {
            again++;
            rs_sink_redis_wait(sink, rs_sink_redis_done(sink) + 1, 1000);
        }
        assert_int_equal(err, RS_OK);
        if (b % 10 == 0) {
            uint64_t d = rs_sink_redis_done(sink);
            if (d > 0) {
                char id[32];
                snprintf(id, sizeof(id), "s-%d", (int)(d - 1) * PER);
                assert_int_equal(rs_sink_redis_get_score(sink, id, json,
                                                         sizeof(json), errstr,
                                                         sizeof(errstr)),
                                 RS_OK);
            }
            rs_score_t sc;
            make_score(100000 + b, 0, &sc);
            assert_int_equal(rs_sink_redis_write(sink, &sc, 1, errstr,
                                                 sizeof(errstr)), RS_OK);
        }
    }
    pthread_join(at, NULL);
    assert_int_equal(wa.failures, 0);
    assert_int_equal(rs_sink_redis_done(sink), BATCHES);
    atomic_store(&w->stop, 1);
    pthread_join(wt, NULL);
    if (atomic_load(&w->bad)) fail_msg("stats watcher: %s", w->why);
    printf("threads: %d RS_ERR_AGAIN retries, %llu watcher rounds\n", again,
           (unsigned long long)atomic_load(&w->rounds));
    free(w);
    for (int i = 0; i < BATCHES * PER; i += 37) check_event(sink, i);
    redisContext *c = rs_test_redis_connect(r);
    assert_int_equal(raw_dbsize(c), BATCHES * PER + NENT + 1 + BATCHES / 10 +
                                        count_logged(0, BATCHES * PER));
    redisFree(c);
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

/* destroy writes what is still queued. */
static void test_redis_async_destroy_drains(void **state) {
    (void)state;
    rs_test_redis_t *r = start_redis(NULL);
    rs_sink_redis_t *sink = new_redis_sink(r, 0);
    for (int b = 1; b <= 50; b++)
        assert_int_equal(enqueue_events(sink, (uint64_t)b, (b - 1) * 10, 10,
                                        0), RS_OK);
    rs_sink_redis_destroy(sink);
    redisContext *c = rs_test_redis_connect(r);
    assert_int_equal(raw_dbsize(c), 500 + NENT + 1 + count_logged(0, 500));
    redisFree(c);
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

/* Batch publication (rs_sink_kafka_publish_batch, as the service uses it):
 * the topics hold, per partition and byte for byte, exactly the messages
 * of one-at-a-time publication in the records' order -- each score, each
 * alert with its own payload, the record, or nothing -- on the partition
 * librdkafka's default partitioner gives its key. */
#define ORD_N 360
#define ORD_PART 4

typedef struct ord_msg_s {
    int32_t partition;
    int64_t offset;
    char key[RS_ID_MAX];
    size_t len;
    unsigned char val[RS_ENCODE_MAX];
} ord_msg_t;

typedef struct ord_read_s {
    int n, cap;
    ord_msg_t *m;
} ord_read_t;

static void ord_read_cb(void *opaque, const rd_kafka_message_t *rkm) {
    ord_read_t *r = opaque;
    if (r->n >= r->cap || rkm->key_len >= RS_ID_MAX ||
        rkm->len > RS_ENCODE_MAX) {
        r->n++; /* counted: the length check fails */
        return;
    }
    ord_msg_t *m = &r->m[r->n++];
    m->partition = rkm->partition;
    m->offset = rkm->offset;
    memcpy(m->key, rkm->key, rkm->key_len);
    m->key[rkm->key_len] = '\0';
    m->len = rkm->len;
    memcpy(m->val, rkm->payload, rkm->len);
}

static int ord_cmp(const void *a, const void *b) {
    const ord_msg_t *x = a, *y = b;
    if (x->partition != y->partition) return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

typedef struct ord_rec_s {
    rs_score_t sc[ORD_N];
    unsigned char buf[ORD_N][RS_ENCODE_MAX];
    const void *bufs[ORD_N];
    size_t lens[ORD_N];
    char apay[ORD_N][32];
    int calls;
} ord_rec_t;

/* i % 3: 0 its own payload, 1 the record (NULL), 2 nothing. */
static const void *ord_alert(void *opaque, int i, size_t *len) {
    ord_rec_t *r = opaque;
    r->calls++;
    if (i % 3 == 1) {
        *len = 0;
        return NULL;
    }
    *len = i % 3 == 0 ? strlen(r->apay[i]) : 0;
    return r->apay[i];
}

/* Check topic `which` (0 scores, 1 alerts) against the records. */
static void ord_check(const char *boot, ord_rec_t *r, int which) {
    const void *want[ORD_N];
    size_t wlen[ORD_N];
    int wi[ORD_N], nw = 0;
    for (int i = 0; i < ORD_N; i++) {
        if (which == 1) {
            if (!is_alert(r->sc[i].decision) || i % 3 == 2) continue;
            want[nw] = i % 3 == 0 ? (const void *)r->apay[i] : r->bufs[i];
            wlen[nw] = i % 3 == 0 ? strlen(r->apay[i]) : r->lens[i];
        } else {
            want[nw] = r->bufs[i];
            wlen[nw] = r->lens[i];
        }
        wi[nw++] = i;
    }
    ord_read_t rd = {.cap = ORD_N + 8};
    rd.m = calloc((size_t)rd.cap, sizeof(*rd.m));
    assert_int_equal(rs_test_kafka_read(boot, rs_topics[which], nw, 1000,
                                        30000, ord_read_cb, &rd), nw);
    qsort(rd.m, (size_t)rd.n, sizeof(*rd.m), ord_cmp);
    /* Walk each partition in offset order against the expected messages
     * of that partition in record order. */
    int got = 0;
    for (int32_t p = 0; p < ORD_PART; p++) {
        int k = 0; /* next message of partition p in rd.m */
        while (k < rd.n && rd.m[k].partition < p) k++;
        for (int j = 0; j < nw; j++) {
            const char *key = r->sc[wi[j]].entity_id;
            int32_t part = rd_kafka_msg_partitioner_consistent_random(
                NULL, key, strlen(key), ORD_PART, NULL, NULL);
            if (part != p) continue;
            assert_true(k < rd.n);
            assert_int_equal(rd.m[k].partition, p);
            assert_string_equal(rd.m[k].key, key);
            assert_int_equal(rd.m[k].len, wlen[j]);
            assert_memory_equal(rd.m[k].val, want[j], wlen[j]);
            k++;
            got++;
        }
        assert_true(k == rd.n || rd.m[k].partition != p);
    }
    assert_int_equal(got, nw);
    free(rd.m);
}

static void test_kafka_sink_batch_order(void **state) {
    (void)state;
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(1, rs_topics, 2, ORD_PART, errstr,
                                      sizeof(errstr));
    assert_non_null(cl);
    const char *boot = rs_cluster_bootstraps(cl);
    rs_sink_kafka_t *sink = rs_sink_kafka_new(NULL, boot, "scores", "alerts",
                                              RS_FORMAT_JSON, errstr,
                                              sizeof(errstr));
    assert_non_null(sink);
    ord_rec_t *r = calloc(1, sizeof(*r));
    int nalerts = 0;
    for (int i = 0; i < ORD_N; i++) {
        make_score(i, (i * 7) % 23, &r->sc[i]);
        int len = rs_score_encode(RS_FORMAT_JSON, &r->sc[i], r->buf[i],
                                  RS_ENCODE_MAX);
        assert_true(len > 0);
        r->bufs[i] = r->buf[i];
        r->lens[i] = (size_t)len;
        snprintf(r->apay[i], sizeof(r->apay[i]), "{\"alert\":%d}", i);
        nalerts += is_alert(r->sc[i].decision) && i % 3 != 2;
    }
    /* batch 1: one call; batch 2: two calls (the second from *next);
     * batch 3: one record at a time (rs_sink_kafka_publish_alert) */
    int next = 0;
    assert_int_equal(rs_sink_kafka_publish_batch(sink, r->sc, r->bufs,
                                                 r->lens, 120, &next,
                                                 ord_alert, r, 1, 0), RS_OK);
    assert_int_equal(next, 120);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 1), RS_OK);
    assert_int_equal(rs_sink_kafka_publish_batch(sink, r->sc, r->bufs,
                                                 r->lens, 170, &next,
                                                 ord_alert, r, 2, 0), RS_OK);
    assert_int_equal(next, 170);
    assert_int_equal(rs_sink_kafka_publish_batch(sink, r->sc, r->bufs,
                                                 r->lens, 240, &next,
                                                 ord_alert, r, 2, 0), RS_OK);
    assert_int_equal(next, 240);
    assert_int_equal(rs_sink_kafka_publish_batch(sink, r->sc, r->bufs,
                                                 r->lens, 240, &next,
                                                 ord_alert, r, 2, 0), RS_OK);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 2), RS_OK);
    for (int i = 240; i < ORD_N; i++) {
        size_t alen = 0;
        const void *abuf = ord_alert(r, i, &alen);
        assert_int_equal(rs_sink_kafka_publish_alert(sink, &r->sc[i],
                                                     r->bufs[i], r->lens[i],
                                                     abuf, alen, 3), RS_OK);
    }
    assert_int_equal(rs_sink_kafka_batch_end(sink, 3), RS_OK);
    wait_acked(sink, 3, 30000);
    rs_sink_kafka_stats_t st;
    rs_sink_kafka_stats(sink, &st);
    assert_int_equal(st.published, ORD_N);
    assert_int_equal(st.alerts, nalerts);
    assert_int_equal(st.delivered, ORD_N + nalerts);
    assert_int_equal(st.inflight, 0);
    rs_sink_kafka_destroy(sink);
    ord_check(boot, r, 0);
    ord_check(boot, r, 1);
    free(r);
    rs_cluster_destroy(cl);
}

typedef struct lab_read_s {
    int n;
    rs_label_t lb[16];
    char key[16][RS_ID_MAX];
    rs_format_t fmt;
} lab_read_t;

static void lab_read_cb(void *opaque, const rd_kafka_message_t *rkm) {
    lab_read_t *r = opaque;
    char errstr[256];
    if (r->n >= 16) return;
    assert_int_equal(rs_label_decode(r->fmt, rkm->payload, rkm->len,
                                     &r->lb[r->n], errstr, sizeof(errstr)),
                     RS_OK);
    snprintf(r->key[r->n], RS_ID_MAX, "%.*s", (int)rkm->key_len,
             (const char *)rkm->key);
    r->n++;
}

/* The analysts' label producer: concurrent senders, each acknowledged;
 * the labels read back from the topic (JSON and protobuf); an invalid
 * label refused before producing. */
static _Atomic int label_next;

static void *label_sender(void *arg) {
    rs_sink_label_t *s = arg;
    char errstr[256];
    for (int k = 0; k < 3; k++) {
        int i = atomic_fetch_add(&label_next, 1);
        rs_label_t lb = {{0}};
        snprintf(lb.event_id, sizeof(lb.event_id), "ev-%d", i);
        snprintf(lb.entity_id, sizeof(lb.entity_id), "card-%d", i % 3);
        lb.value = i % 2;
        lb.label_time_ms = BASE_MS + i;
        if (rs_sink_label_send(s, &lb, 10000, errstr, sizeof(errstr)) != RS_OK)
            fail_msg("send: %s", errstr);
    }
    return NULL;
}

static void test_label_sink(void **state) {
    (void)state;
    char errstr[512];
    for (int f = 0; f < 2; f++) {
        rs_format_t fmt = f ? RS_FORMAT_PROTOBUF : RS_FORMAT_JSON;
        static const char *const lt[] = {"labels"};
        atomic_store(&label_next, 0);
        rs_cluster_t *cl = rs_cluster_new(1, lt, 1, 2, errstr,
                                          sizeof(errstr));
        assert_non_null(cl);
        assert_null(rs_sink_label_new(NULL, rs_cluster_bootstraps(cl), "", fmt,
                                      errstr, sizeof(errstr)));
        rs_sink_label_t *s = rs_sink_label_new(NULL, rs_cluster_bootstraps(cl),
                                               "labels", fmt, errstr,
                                               sizeof(errstr));
        assert_non_null(s);
        pthread_t th[3];
        for (int i = 0; i < 3; i++)
            assert_int_equal(pthread_create(&th[i], NULL, label_sender, s), 0);
        for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
        rs_label_t bad = {{0}};
        assert_int_equal(rs_sink_label_send(s, &bad, 1000, errstr,
                                            sizeof(errstr)), RS_ERR_INVALID);
        lab_read_t r = {.fmt = fmt};
        assert_int_equal(rs_test_kafka_read(rs_cluster_bootstraps(cl),
                                            "labels", 9, 300, 20000,
                                            lab_read_cb, &r), 9);
        int seen[9] = {0};
        for (int i = 0; i < r.n; i++) {
            int k = atoi(r.lb[i].event_id + 3);
            assert_true(k >= 0 && k < 9 && !seen[k]);
            seen[k] = 1;
            assert_string_equal(r.key[i], r.lb[i].entity_id);
            assert_true(r.lb[i].value == (double)(k % 2));
            assert_int_equal(r.lb[i].label_time_ms, BASE_MS + k);
        }
        rs_sink_label_destroy(s);
        rs_cluster_destroy(cl);
    }
    rs_sink_label_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_redis_conf),
        cmocka_unit_test(test_redis_write_read),
        cmocka_unit_test(test_redis_index_cap),
        cmocka_unit_test(test_redis_analyst),
        cmocka_unit_test(test_redis_outage),
        cmocka_unit_test(test_redis_auth_db),
        cmocka_unit_test(test_redis_async_write),
        cmocka_unit_test(test_redis_async_outage),
        cmocka_unit_test(test_redis_async_idle_health),
        cmocka_unit_test(test_redis_async_threads),
        cmocka_unit_test(test_redis_async_destroy_drains),
        cmocka_unit_test(test_kafka_sink_batches),
        cmocka_unit_test(test_kafka_sink_batch_order),
        cmocka_unit_test(test_label_sink),
        cmocka_unit_test(test_kafka_sink_json),
        cmocka_unit_test(test_kafka_sink_pb_retry),
    };
    /* RS_TEST_FILTER="test_redis*" runs a subset (e.g. the Redis tests
     * under TSan, which the uninstrumented librdkafka cannot run). */
    if (getenv("RS_TEST_FILTER")) cmocka_set_test_filter(getenv("RS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
