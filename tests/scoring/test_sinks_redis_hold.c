/* test_sinks_redis_hold.c -- redis.flush_delay, the writer thread holding
 * queued batches so that a slow stream's batches share a round trip
 * (scoring/sink_redis_writer.c rs_redis_w_hold), against a real
 * redis-server:
 *   - batches queued within the hold go to Redis in one round trip
 *     (stats.flushes), once rs_sink_redis_wait asks for them: a waiter
 *     ends the hold, and every record is then readable;
 *   - destroying the sink writes what it holds (nothing is lost);
 *   - batches whose bytes reach the hold's limit are written without a
 *     waiter, all of them.
 * The hold is 10 s (the key's maximum), far longer than the test takes, so
 * nothing depends on timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "scoring/sink.h"
#include "tests/support/rs_test_redis.h"

#define HOLD_MS 10000

static rs_test_redis_t *start_redis(void) {
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    if (!r) fprintf(stderr, "rs_test_redis_start: %s\n", errstr);
    assert_non_null(r);
    return r;
}

static rs_sink_redis_t *sink_on(rs_test_redis_t *r, int64_t hold_ms) {
    rs_redis_conf_t conf;
    char errstr[512];
    rs_redis_conf_init(&conf);
    snprintf(conf.url, sizeof(conf.url), "%s", rs_test_redis_url(r));
    snprintf(conf.key_prefix, sizeof(conf.key_prefix), "th:");
    conf.flush_delay_ms = hold_ms;
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "rs_sink_redis_new: %s\n", errstr);
    assert_non_null(sink);
    return sink;
}

static void make_score(int i, rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "tx-%05d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "card-%d", i % 7);
    snprintf(sc->model_version, sizeof(sc->model_version), "lr-1");
    sc->score = 0.25f;
    sc->decision = RS_DECISION_APPROVE;
    sc->event_time_ms = 1700000000000LL + i;
    sc->scored_at_ms = sc->event_time_ms + 3;
}

/* 1 if the record of score i is on the server. */
static int stored(rs_test_redis_t *r, int i) {
    redisContext *c = redisConnectUnix(rs_test_redis_socket(r));
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *rep = redisCommand(c, "EXISTS th:score:tx-%05d", i);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    int v = (int)rep->integer;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

static uint64_t flushes(rs_sink_redis_t *sink) {
    rs_sink_redis_stats_t st;
    rs_sink_redis_stats(sink, &st);
    return st.flushes;
}

/* Three batches queued during the hold: one round trip, when waited for. */
static void test_hold_one_round_trip(void **state) {
    (void)state;
    rs_test_redis_t *r = start_redis();
    rs_sink_redis_t *sink = sink_on(r, HOLD_MS);
    rs_score_t sc[3];
    for (int i = 0; i < 3; i++) {
        make_score(i, &sc[i]);
        assert_int_equal(rs_sink_redis_enqueue(sink, &sc[i], 1, NULL, NULL,
                                               (uint64_t)i + 1),
                         RS_OK);
    }
    /* held: nothing written yet (the hold lasts 10 s) */
    assert_int_equal(rs_sink_redis_wait(sink, 1, 0), RS_ERR_TIMEOUT);
    assert_int_equal(flushes(sink), 0);
    assert_int_equal(rs_sink_redis_wait(sink, 3, 60000), RS_OK);
    assert_int_equal(flushes(sink), 1);
    for (int i = 0; i < 3; i++) assert_true(stored(r, i));
    char json[4096], errstr[256];
    assert_int_equal(rs_sink_redis_get_score(sink, "tx-00001", json,
                                             sizeof(json), errstr,
                                             sizeof(errstr)),
                     RS_OK);
    assert_non_null(strstr(json, "\"event_id\":\"tx-00001\""));
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

/* Held batches are written when the sink is destroyed. */
static void test_hold_destroy_writes(void **state) {
    (void)state;
    rs_test_redis_t *r = start_redis();
    rs_sink_redis_t *sink = sink_on(r, HOLD_MS);
    rs_score_t sc[2];
    for (int i = 0; i < 2; i++) {
        make_score(10 + i, &sc[i]);
        assert_int_equal(rs_sink_redis_enqueue(sink, &sc[i], 1, NULL, NULL,
                                               (uint64_t)i + 1),
                         RS_OK);
    }
    assert_int_equal(flushes(sink), 0);
    rs_sink_redis_destroy(sink);
    assert_true(stored(r, 10));
    assert_true(stored(r, 11));
    rs_test_redis_destroy(r);
}

/* Batches whose bytes reach the hold's limit (16 KiB) are written without
 * anyone waiting: the owner wakes the holding writer.  Polled without
 * rs_sink_redis_wait's timeout (which would end the hold itself). */
static void test_hold_bytes_limit(void **state) {
    (void)state;
    rs_test_redis_t *r = start_redis();
    rs_sink_redis_t *sink = sink_on(r, HOLD_MS);
    enum { N = 2048, BATCHES = 8 };
    static rs_score_t sc[N];
    for (int i = 0; i < N; i++) make_score(100 + i, &sc[i]);
    for (int b = 0; b < BATCHES; b++)
        assert_int_equal(rs_sink_redis_enqueue(sink, &sc[b * (N / BATCHES)],
                                               N / BATCHES, NULL, NULL,
                                               (uint64_t)b + 1),
                         RS_OK);
    /* the queued bytes reached the limit (16 KiB, RS_REDIS_HOLD_BYTES):
     * each batch alone, 256 records and their index commands, is over
     * 30 KiB, and a batch is queued at once ... */
    rs_sink_redis_stats_t st;
    rs_sink_redis_stats(sink, &st);
    assert_true(st.buffer_peak >= 16u << 10);
    /* ... so the writer is woken and writes them with no waiter ending
     * the hold.  (Not timed: without the wake-up this loop would wait out
     * the 10 s hold and pass; what it asserts is that a queue over the
     * limit is written without rs_sink_redis_wait, and complete.) */
    while (rs_sink_redis_done(sink) == 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(flushes(sink) >= 1);
    assert_int_equal(rs_sink_redis_wait(sink, BATCHES, 60000), RS_OK);
    for (int i = 0; i < N; i++) assert_true(stored(r, 100 + i));
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_one_round_trip),
        cmocka_unit_test(test_hold_destroy_writes),
        cmocka_unit_test(test_hold_bytes_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
