/* test_sinks_redis_ix.c -- the entity index upkeep of the async Redis path
 * (scoring/sink_redis_cmds.c rs_redis_plan; design in sink_redis.c,
 * "Entity indexes"), against a real redis-server:
 *   - reads are unchanged: an entity scored many more times than
 *     entity_index_max (batches of 1..4, event times out of order and tied)
 *     reads back exactly as from a reference sink on the same server that
 *     does the full upkeep every batch (the synchronous path: ZADD, PEXPIRE,
 *     trim per entity and batch): entity_scores and index_newest for many
 *     (since, range, offset, limit); the index holds at most
 *     entity_index_max + slack members, and the trims were amortized;
 *   - expiry: after every batch the index lives at least as long as the
 *     entity's newest record (PTTL), with ttl 4 s so that refreshes happen
 *     during the test;
 *   - bookkeeping lost: a new sink (restart) trims on its first touch; two
 *     sinks taking turns on one entity (a partition moving back and forth)
 *     still read the newest N; a server that lost its data (restarted
 *     without persistence) gets no index without an expiry.
 * Counted and compared, never timed. */
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

#define BASE_MS 1700000000000LL
#define NMAX 5           /* entity_index_max of the tests          */
#define SLACK (NMAX / 8 + 16) /* sink_redis.c: adds between trims */

static rs_test_redis_t *start_redis(void) {
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    if (!r) fprintf(stderr, "rs_test_redis_start: %s\n", errstr);
    assert_non_null(r);
    return r;
}

/* A sink on r with key prefix `prefix`, entity_index_max NMAX, ttl_ms. */
static rs_sink_redis_t *sink_on(rs_test_redis_t *r, const char *prefix,
                                int64_t ttl_ms) {
    rs_redis_conf_t conf;
    char errstr[512];
    rs_redis_conf_init(&conf);
    snprintf(conf.url, sizeof(conf.url), "%s", rs_test_redis_url(r));
    snprintf(conf.key_prefix, sizeof(conf.key_prefix), "%s", prefix);
    conf.entity_index_max = NMAX;
    if (ttl_ms) conf.ttl_ms = ttl_ms;
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "rs_sink_redis_new: %s\n", errstr);
    assert_non_null(sink);
    return sink;
}

/* Score i of entity "card-<e>": event times out of order (a step of 7
 * modulo 23 within each 23) and tied (pairs share a time). */
static void make_score(int i, int e, rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "tx-%05d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "card-%d", e);
    snprintf(sc->model_version, sizeof(sc->model_version), "lr-1");
    sc->score = 0.25f;
    sc->decision = RS_DECISION_APPROVE;
    sc->event_time_ms = BASE_MS + (int64_t)((i / 23) * 23 + (i * 7) % 23) / 2 *
                                      1000;
    sc->scored_at_ms = sc->event_time_ms + 3;
}

/* Calls of a command since the last CONFIG RESETSTAT. */
static long long raw_calls(redisContext *c, const char *cmd) {
    char pat[64];
    long long v = 0;
    redisReply *rep = redisCommand(c, "INFO commandstats");
    assert_non_null(rep);
    snprintf(pat, sizeof(pat), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(rep->str, pat);
    if (p) v = atoll(p + strlen(pat));
    freeReplyObject(rep);
    return v;
}

static void enqueue(rs_sink_redis_t *sink, const rs_score_t *sc, int n,
                    uint64_t seq) {
    assert_int_equal(rs_sink_redis_enqueue(sink, sc, n, NULL, NULL, seq),
                     RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, seq, 30000), RS_OK);
}

/* Every read of entity `e` through `a` equals the same read through `b`. */
static void same_reads(rs_sink_redis_t *a, rs_sink_redis_t *b, const char *e,
                       int nev) {
    char errstr[512];
    static char ia[64][RS_ID_MAX], ib[64][RS_ID_MAX];
    rs_redis_hit_t ha[64], hb[64];
    const int64_t span = (int64_t)nev / 2 * 1000 + 1000;
    const int64_t times[] = {0, BASE_MS, BASE_MS + span / 2,
                             BASE_MS + span - 3000, BASE_MS + span + 1000};
    const int maxes[] = {1, 2, 3, NMAX, 64};
    for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
        for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
            int na = -1, nb = -2;
            assert_int_equal(rs_sink_redis_entity_scores(a, e, times[t], ia,
                                                         maxes[m], &na,
                                                         errstr,
                                                         sizeof(errstr)),
                             RS_OK);
            assert_int_equal(rs_sink_redis_entity_scores(b, e, times[t], ib,
                                                         maxes[m], &nb,
                                                         errstr,
                                                         sizeof(errstr)),
                             RS_OK);
            assert_int_equal(na, nb);
            for (int i = 0; i < na; i++) assert_string_equal(ia[i], ib[i]);
            for (int off = 0; off < 3; off++) {
                for (size_t u = t; u < sizeof(times) / sizeof(times[0]);
                     u++) {
                    int64_t hi = u + 1 == sizeof(times) / sizeof(times[0])
                                     ? INT64_MAX
                                     : times[u];
                    assert_int_equal(rs_sink_redis_index_newest(
                                         a, e, times[t], hi, off, ha,
                                         maxes[m], &na, errstr,
                                         sizeof(errstr)),
                                     RS_OK);
                    assert_int_equal(rs_sink_redis_index_newest(
                                         b, e, times[t], hi, off, hb,
                                         maxes[m], &nb, errstr,
                                         sizeof(errstr)),
                                     RS_OK);
                    assert_int_equal(na, nb);
                    for (int i = 0; i < na; i++) {
                        assert_string_equal(ha[i].id, hb[i].id);
                        assert_int_equal(ha[i].t_ms, hb[i].t_ms);
                    }
                }
            }
        }
    }
}

/* The newest NMAX of an entity scored 240 times read back as with the
 * full upkeep every batch; the index stays within NMAX + SLACK members
 * and was trimmed far less often than once per batch. */
static void test_ix_newest_n(void **state) {
    (void)state;
    enum { NEV = 240 };
    char errstr[512];
    rs_test_redis_t *r = start_redis();
    rs_sink_redis_t *as = sink_on(r, "a:", 0), *ref = sink_on(r, "r:", 0);
    redisContext *c = rs_test_redis_connect(r);
    static rs_score_t sc[NEV];
    for (int i = 0; i < NEV; i++) make_score(i, i % 5 == 4 ? 1 : 0, &sc[i]);
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    int batches = 0, maxcard = 0;
    long long groups = 0; /* entities per batch, summed */
    uint64_t seq = 0;
    for (int i = 0; i < NEV; batches++) {
        int n = 1 + batches % 4;
        if (i + n > NEV) n = NEV - i;
        int e1 = 0;
        for (int k = i; k < i + n; k++) e1 |= sc[k].entity_id[5] == '1';
        groups += 1 + e1 - (n == 1 && e1);
        enqueue(as, sc + i, n, ++seq);
        assert_int_equal(rs_sink_redis_write(ref, sc + i, n, errstr,
                                             sizeof(errstr)), RS_OK);
        i += n;
        int card = (int)rs_test_redis_int(c, "ZCARD %s", "a:entity:card-0:scores");
        assert_true(card <= NMAX + SLACK);
        if (card > maxcard) maxcard = card;
        if (batches % 7 == 0) same_reads(as, ref, "card-0", i);
    }
    assert_true(maxcard > NMAX); /* the amortization happened... */
    same_reads(as, ref, "card-0", NEV); /* ...and reads cannot tell */
    same_reads(as, ref, "card-1", NEV);
    assert_int_equal(rs_test_redis_int(c, "ZCARD %s", "r:entity:card-0:scores"), NMAX);
    /* The reference trimmed and expired each entity of each batch; the
     * async sink trimmed about once per SLACK adds, and expired each entity
     * at its first touch only (never again within ttl / 16). */
    long long trims = raw_calls(c, "zremrangebyrank") - groups,
              pexp = raw_calls(c, "pexpire") - groups;
    printf("ix: %d batches, %lld entity groups; async: %lld trims, %lld "
           "PEXPIREs, index up to %d members\n", batches, groups, trims,
           pexp, maxcard);
    assert_int_equal(pexp, 2);
    assert_true(trims >= (NEV * 4 / 5 - NMAX) / SLACK &&
                trims <= 4 + NEV / SLACK + 2);
    redisFree(c);
    rs_sink_redis_destroy(as);
    rs_sink_redis_destroy(ref);
    rs_test_redis_destroy(r);
}

/* After every batch, the index outlives the entity's newest record: its
 * expiry is never below ttl after its newest score.  ttl 8 s: the refresh
 * period (ttl / 16 = 500 ms) passes several times during the test. */
static void test_ix_expiry(void **state) {
    (void)state;
    rs_test_redis_t *r = start_redis();
    rs_sink_redis_t *as = sink_on(r, "a:", 8000);
    redisContext *c = rs_test_redis_connect(r);
    rs_score_t sc[2];
    char key[96];
    for (int i = 0; i < 100; i++) {
        make_score(1000 + i, 0, &sc[0]);
        make_score(2000 + i, 1, &sc[1]);
        enqueue(as, sc, 2, (uint64_t)i + 1);
        long long tix = rs_test_redis_int(c, "PTTL %s", "a:entity:card-0:scores");
        snprintf(key, sizeof(key), "a:score:%s", sc[0].event_id);
        long long trec = rs_test_redis_int(c, "PTTL %s", key);
        assert_true(trec > 0);
        assert_true(tix >= trec);
        assert_true(tix <= 8000 + 2 * 500); /* ttl + 2 period */
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    redisFree(c);
    rs_sink_redis_destroy(as);
    rs_test_redis_destroy(r);
}

/* The bookkeeping lost: a new sink (a restart) trims at its first touch;
 * two sinks taking turns on one entity read the newest NMAX; a server
 * that lost its data gets no index without an expiry. */
static void test_ix_lost(void **state) {
    (void)state;
    char errstr[512];
    rs_test_redis_t *r = start_redis();
    rs_sink_redis_t *as = sink_on(r, "a:", 0), *ref = sink_on(r, "r:", 0);
    redisContext *c = rs_test_redis_connect(r);
    static rs_score_t sc[200];
    for (int i = 0; i < 200; i++) make_score(i, 0, &sc[i]);
    enqueue(as, sc, 1, 1);
    enqueue(as, sc + 1, 3, 2); /* table hit: no trim */
    assert_int_equal(rs_test_redis_int(c, "ZCARD %s", "a:entity:card-0:scores"), 4);
    assert_int_equal(rs_sink_redis_write(ref, sc, 4, errstr, sizeof(errstr)),
                     RS_OK);
    /* restart: the new sink's first touch trims */
    rs_sink_redis_destroy(as);
    as = sink_on(r, "a:", 0);
    enqueue(as, sc + 4, 3, 1);
    assert_int_equal(rs_test_redis_int(c, "ZCARD %s", "a:entity:card-0:scores"), NMAX);
    assert_int_equal(rs_sink_redis_write(ref, sc + 4, 3, errstr,
                                         sizeof(errstr)), RS_OK);
    same_reads(as, ref, "card-0", 7);

    /* a partition moving back and forth between two instances */
    rs_sink_redis_t *bs = sink_on(r, "a:", 0);
    uint64_t sa = 1, sb = 0;
    for (int i = 7; i < 200;) {
        int n = 1 + i % 3;
        if (i + n > 200) n = 200 - i;
        if ((i / 10) % 2) enqueue(bs, sc + i, n, ++sb);
        else enqueue(as, sc + i, n, ++sa);
        assert_int_equal(rs_sink_redis_write(ref, sc + i, n, errstr,
                                             sizeof(errstr)), RS_OK);
        i += n;
        if (i % 9 == 0) same_reads(as, ref, "card-0", i);
    }
    same_reads(as, ref, "card-0", 200);
    same_reads(bs, ref, "card-0", 200);
    assert_true(rs_test_redis_int(c, "PTTL %s", "a:entity:card-0:scores") > 0);
    redisFree(c);

    /* the server loses its data (no persistence) and comes back: the
     * batches after it, built from the old bookkeeping or not, leave the
     * index with an expiry */
    enqueue(as, sc + 10, 1, ++sa);
    assert_int_equal(rs_test_redis_stop(r), 0);
    assert_int_equal(rs_test_redis_restart(r, errstr, sizeof(errstr)), 0);
    enqueue(as, sc + 11, 2, ++sa); /* built before the reconnect */
    c = rs_test_redis_connect(r);
    assert_true(rs_test_redis_int(c, "PTTL %s", "a:entity:card-0:scores") > 0);
    enqueue(as, sc + 13, 1, ++sa);
    assert_int_equal(rs_test_redis_int(c, "ZCARD %s", "a:entity:card-0:scores"), 3);
    assert_true(rs_test_redis_int(c, "PTTL %s", "a:entity:card-0:scores") > 0);
    redisFree(c);
    rs_sink_redis_destroy(as);
    rs_sink_redis_destroy(bs);
    rs_sink_redis_destroy(ref);
    rs_test_redis_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ix_newest_n),
        cmocka_unit_test(test_ix_expiry),
        cmocka_unit_test(test_ix_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
