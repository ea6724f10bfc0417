/* test_standby.c -- standby replicas (scoring/standby.h) against
 * librdkafka's mock cluster (in process, over TCP):
 *
 *   test_place          the placement: the N x k partitions after the
 *                       owned block, never an owned one, capped
 *   test_standby        engine A writes batches to the changelog; engine
 *                       B keeps a standby copy of partition 1 (cold, from
 *                       the changelog's start): at A's last marker B's
 *                       entity slots, sequence caches and event-index
 *                       entries equal A's byte for byte and its position
 *                       is that marker's; a record written without its
 *                       marker is NOT applied (B unchanged, position
 *                       unchanged) until the marker comes; at takeover
 *                       only the tail after the standby's position is
 *                       read (records counted: tail = what lies after
 *                       it, fewer than a cold restore's) and B equals A
 *                       again
 *   test_foreign_tombstones  entities of a standby copy's partition that
 *                       expire or are evicted HERE get no tombstone from
 *                       this instance (rs_changelog_set_foreign: only the
 *                       owner writes a partition); the owned partition's
 *                       still do
 *   test_serve_takeover the service, two instances on one group with
 *                       state.standby 1 and the changelog: when B joins,
 *                       A keeps its revoked partitions warm and B starts
 *                       cold copies of A's; when B stops, A takes B's
 *                       partitions over from its copies (metrics:
 *                       restores from standby, warm and cold copies,
 *                       records applied) and every event is scored
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/learnlog.h"
#include "tests/support/rs_test_kafka.h"
#include "scoring/changelog.h"
#include "scoring/standby.h"
#include "tests/support/rs_test_eng.h"
#include "tests/support/rs_test_svc.h"

#define NPART RS_TEST_ENG_NPART
#define DIM_MAX RS_FEATURES_MAX_DIM

typedef rs_test_eng_t eng_t; /* tests/support/rs_test_eng.h */

static int64_t g_ttl;              /* features.key_ttl; 0: default  */
static const char *g_ent = "card"; /* entity ids of run_batch         */

static void eng_new(eng_t *e) { rs_test_eng_new(e, "/tmp", g_ttl); }

/* Positions the test pretends each partition is at (rs_test_eng_pos). */
static int64_t g_off[NPART];

/* Process batch b (8 events over both partitions) on e into msgs. */
static void run_batch(eng_t *e, int b, rs_msg_t *msgs) {
    rs_test_eng_batch(e, b, msgs, g_off, g_ent);
}


static void test_place(void **state) {
    (void)state;
    int32_t out[16];
    const int32_t a[] = {0, 1, 2, 3}, b[] = {4, 5, 6, 7}, c[] = {2, 3};
    assert_int_equal(rs_standby_place(a, 4, 8, 1, out), 4);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], 4 + i);
    assert_int_equal(rs_standby_place(b, 4, 8, 1, out), 4);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], i);
    /* three members over 6: the next member's block; N 2: both others' */
    assert_int_equal(rs_standby_place(c, 2, 6, 1, out), 2);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[1], 5);
    assert_int_equal(rs_standby_place(c, 2, 6, 2, out), 4);
    assert_int_equal(out[0], 4);
    assert_int_equal(out[3], 1);
    /* capped by what is not owned; nothing owned, nothing kept */
    assert_int_equal(rs_standby_place(c, 2, 6, 16, out), 4);
    assert_int_equal(rs_standby_place(a, 4, 4, 1, out), 0);
    assert_int_equal(rs_standby_place(a, 0, 8, 1, out), 0);
    assert_int_equal(rs_standby_place(a, 4, 8, 0, out), 0);
}

/* Entities card-1/3/5 and the index entries of partition 1's events
 * tx-0..tx-(8 * nb + 7): the same bytes on a and b. */
static void same_part1(eng_t *a, eng_t *b, int nb) {
    static uint8_t ba[1 << 16], bb[1 << 16];
    size_t la = 0, lb = 0;
    for (int ent = 1; ent < 6; ent += 2) {
        char id[32];
        snprintf(id, sizeof(id), "card-%d", ent);
        assert_int_equal(rs_features_entity_write(a->f, id, ba, sizeof(ba),
                                                  &la), RS_OK);
        assert_int_equal(rs_features_entity_write(b->f, id, bb, sizeof(bb),
                                                  &lb), RS_OK);
        assert_int_equal(la, lb);
        assert_memory_equal(ba, bb, la);
        assert_int_equal(rs_model_caches_write_entity(a->m, id, ba,
                                                      sizeof(ba), &la), RS_OK);
        assert_int_equal(rs_model_caches_write_entity(b->m, id, bb,
                                                      sizeof(bb), &lb), RS_OK);
        assert_int_equal(la, lb);
        assert_memory_equal(ba, bb, la);
    }
    int nev = 0;
    for (int k = 0; k < 8 * (nb + 1); k++) {
        if ((k % 6) % NPART != 1) continue;
        char id[32];
        snprintf(id, sizeof(id), "tx-%d", k);
        rs_err_t ea = rs_features_event_write(a->f, id, ba, sizeof(ba), &la);
        rs_err_t eb = rs_features_event_write(b->f, id, bb, sizeof(bb), &lb);
        assert_int_equal(ea, eb);
        if (ea) continue;
        assert_int_equal(la, lb);
        assert_memory_equal(ba, bb, la);
        nev++;
    }
    assert_true(nev > 0);
    assert_int_equal(rs_dedup_size_part(a->d, 1), rs_dedup_size_part(b->d, 1));
}

/* Poll sb until partition 1's standby position reaches `want` (10 s). */
static void poll_to(rs_standby_t *sb, int64_t want) {
    for (int i = 0; i < 1000; i++) {
        assert_true(rs_standby_poll(sb, 10) >= 0);
        if (rs_standby_position(sb, 1) >= want) break;
        usleep(10000);
    }
    assert_int_equal(rs_standby_position(sb, 1), want);
}

static void test_standby(void **state) {
    (void)state;
    char err[512];
    rs_kv_t kv;
    const char *boot;
    rs_cluster_t *cl = rs_test_eng_cluster(&kv, &boot);
    eng_t a, b, c;
    eng_new(&a);
    eng_new(&b);
    eng_new(&c);
    rs_changelog_t *ca = rs_test_eng_changelog(&a, &kv, boot, 1);
    assert_int_equal(rs_changelog_ensure(ca, "events", 10000, err,
                                         sizeof(err)), RS_OK);
    rs_standby_t *sb = rs_standby_new(&kv, boot, "t-state-changelog", b.ps,
                                      err, sizeof(err));
    assert_non_null(sb);
    assert_int_equal(rs_standby_nparts(sb, 10000), NPART);
    rs_standby_add(sb, 1, NULL); /* cold: from the changelog's start */
    assert_true(rs_standby_has(sb, 1));
    assert_int_equal(rs_standby_position(sb, 1), -1);
    rs_msg_t msgs[8];
    memset(g_off, 0, sizeof(g_off));
    for (int bt = 1; bt <= 4; bt++) {
        run_batch(&a, bt, msgs);
        rs_changelog_stage(ca, (uint64_t)bt, msgs, 8, rs_test_eng_pos, g_off);
    }
    rs_changelog_release(ca, 4);
    assert_int_equal(rs_changelog_flush(ca, 10000), 0);
    /* 1. at A's last marker, B's copy is A's state byte for byte */
    int64_t m4 = rs_changelog_end(ca, 1);
    assert_true(m4 > 0);
    poll_to(sb, m4);
    same_part1(&a, &b, 4);
    /* its position: that marker's input positions */
    rs_standby_stats_t st;
    rs_standby_stats(sb, &st);
    assert_int_equal(st.partitions, 1);
    assert_true(st.records > 0);
    /* 2. a record without its marker is never applied: A moves on (batch
     * 5, not released), its new card-1 slot is written by hand, alone */
    static uint8_t before[1 << 16], now[1 << 16], val[1 << 16];
    size_t lbef = 0, lnow = 0, lval = 0;
    assert_int_equal(rs_features_entity_write(b.f, "card-1", before,
                                              sizeof(before), &lbef), RS_OK);
    run_batch(&a, 5, msgs);
    rs_changelog_stage(ca, 5, msgs, 8, rs_test_eng_pos, g_off);
    assert_int_equal(rs_features_entity_write(a.f, "card-1", val, sizeof(val),
                                              &lval), RS_OK);
    assert_true(lval != lbef || memcmp(val, before, lval));
    {
        rd_kafka_t *prod = rs_kafka_producer_new(&kv, boot, err, sizeof(err));
        assert_non_null(prod);
        uint8_t key[RS_PSTATE_KEY_LEN];
        rs_pstate_key_encode(key, 'F', 1, rs_hash_str("card-1"));
        assert_int_equal(rd_kafka_producev(
                             prod, RD_KAFKA_V_TOPIC("t-state-changelog"),
                             RD_KAFKA_V_PARTITION(1),
                             RD_KAFKA_V_KEY(key, sizeof(key)),
                             RD_KAFKA_V_VALUE(val, lval),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END), 0);
        rd_kafka_flush(prod, 10000);
        rd_kafka_destroy(prod);
    }
    int64_t hw = rs_changelog_hwm(ca, 1);
    assert_int_equal(hw, m4 + 1);
    /* long enough for the consumer to have fetched it (fetch.wait.max.ms
     * 50): it is read and held, never applied */
    for (int i = 0; i < 100; i++) {
        assert_true(rs_standby_poll(sb, 10) >= 0);
        usleep(10000);
    }
    rs_standby_stats(sb, &st);
    assert_int_equal(st.lag, 1); /* the record after the marker */
    assert_int_equal(rs_standby_position(sb, 1), m4);
    assert_int_equal(rs_features_entity_write(b.f, "card-1", now, sizeof(now),
                                              &lnow), RS_OK);
    assert_int_equal(lnow, lbef);
    assert_memory_equal(now, before, lnow);
    /* its batch's marker comes (batch 5 released): applied, B = A */
    rs_changelog_release(ca, 5);
    assert_int_equal(rs_changelog_flush(ca, 10000), 0);
    int64_t m5 = rs_changelog_end(ca, 1);
    assert_true(m5 > m4 + 1);
    poll_to(sb, m5);
    same_part1(&a, &b, 5);
    /* 3. takeover after two more batches: only the tail is read */
    for (int bt = 6; bt <= 7; bt++) {
        run_batch(&a, bt, msgs);
        rs_changelog_stage(ca, (uint64_t)bt, msgs, 8, rs_test_eng_pos, g_off);
    }
    rs_changelog_release(ca, 7);
    assert_int_equal(rs_changelog_flush(ca, 10000), 0);
    int64_t m7 = rs_changelog_end(ca, 1), hw7 = rs_changelog_hwm(ca, 1);
    assert_int_equal(hw7, m7);
    rs_pstate_pos_t pos;
    /* not polled since: the copy stands at batch 5's marker */
    assert_int_equal(rs_standby_take(sb, 1, &pos), 1);
    assert_false(rs_standby_has(sb, 1));
    assert_int_equal(pos.changelog, m5);
    int64_t at = pos.changelog;
    rs_changelog_t *cb = rs_test_eng_changelog(&b, &kv, boot, 1);
    uint64_t ntail = 0, ncold = 0;
    rs_pstate_pos_t tpos = pos;
    rs_err_t terr = rs_changelog_restore(cb, 1, at, &tpos, &ntail, err,
                                         sizeof(err));
    assert_int_equal(terr, RS_OK);
    assert_int_equal(tpos.changelog, m7);
    assert_int_equal(tpos.events, g_off[1]);
    same_part1(&a, &b, 7);
    /* a cold restore of the same partition reads everything */
    rs_changelog_t *cc = rs_test_eng_changelog(&c, &kv, boot, 1);
    rs_pstate_pos_t cpos;
    assert_int_equal(rs_changelog_restore(cc, 1, 0, &cpos, &ncold, err,
                                          sizeof(err)), RS_OK);
    assert_int_equal(cpos.changelog, m7);
    same_part1(&a, &c, 7);
    /* the tail: the records after the standby's position, markers apart
     * (one per batch after it) -- fewer than a cold restore's */
    assert_int_equal((int64_t)ntail, m7 - at - 2);
    assert_true(ntail < ncold);
    printf("standby at changelog offset %lld: %llu records of tail; cold "
           "restore: %llu records\n", (long long)at,
           (unsigned long long)ntail, (unsigned long long)ncold);
    rs_changelog_destroy(cc);
    rs_changelog_destroy(cb);
    rs_standby_destroy(sb);
    rs_changelog_destroy(ca);
    rs_test_eng_free(&a);
    rs_test_eng_free(&b);
    rs_test_eng_free(&c);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

/* Tombstones ('F'/'S'/'I'/'D' with an empty value) per partition. */
typedef struct tomb_tally_s {
    int n, tomb[NPART];
} tomb_tally_t;

static void tomb_cb(void *opaque, const rd_kafka_message_t *rkm) {
    tomb_tally_t *t = opaque;
    rs_pstate_key_t k;
    t->n++;
    if (rkm->payload || rs_test_eng_key(rkm, &k)) return;
    if (k.partition >= 0 && k.partition < NPART) t->tomb[k.partition]++;
}

static int foreign_p1(void *o, int32_t p) {
    (void)o;
    return p == 1;
}

static void test_foreign_tombstones(void **state) {
    (void)state;
    rs_kv_t kv;
    const char *boot;
    rs_cluster_t *cl = rs_test_eng_cluster(&kv, &boot);
    g_ttl = 3600000LL; /* 1 h of event time */
    eng_t a;
    eng_new(&a);
    rs_changelog_t *ca = rs_test_eng_changelog(&a, &kv, boot, 1);
    rs_changelog_set_foreign(ca, foreign_p1, NULL); /* p1: a copy here */
    memset(g_off, 0, sizeof(g_off));
    /* batch 1: old-0..5 on both partitions; batches 20..31 (2.6 h later):
     * new entities that expire and evict the old ones (as
     * test_changelog's test_tombstones) */
    rs_test_eng_expiry_run(&a, ca, g_off);
    g_ttl = 0;
    rs_features_stats_t fs;
    rs_features_stats(a.f, &fs);
    assert_true(fs.expirations + fs.evictions >= 6);
    tomb_tally_t t;
    memset(&t, 0, sizeof(t));
    rs_test_eng_read_changelog(ca, boot, tomb_cb, &t);
    printf("foreign: %llu slots expired, %llu evicted; tombstones: "
           "partition 0 (owned) %d, partition 1 (a copy) %d\n",
           (unsigned long long)fs.expirations,
           (unsigned long long)fs.evictions, t.tomb[0], t.tomb[1]);
    assert_true(t.tomb[0] >= 3); /* old-0, old-2, old-4 at least */
    assert_int_equal(t.tomb[1], 0);
    rs_changelog_destroy(ca);
    rs_test_eng_free(&a);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

/* ------------------------------------------------- the service */

#define BASE_MS 1700000000000LL

/* Event i: entity card-(i % 13), time BASE + i s. */
static void produce_events(rs_test_env_t *e, int from, int to) {
    for (int i = from; i < to; i++) {
        char buf[1024], key[32];
        snprintf(key, sizeof(key), "card-%d", i % 13);
        snprintf(buf, sizeof(buf),
                 "{\"id\":\"ev-%d\",\"type\":\"card_tx\","
                 "\"entity_id\":\"%s\",\"counterparty_id\":\"m-%d\","
                 "\"event_time_ms\":%lld,\"amount\":%d.%02d}", i, key, i % 7,
                 BASE_MS + (long long)i * 1000, 1 + (i * 37) % 900, i % 100);
        rs_test_env_produce(e, RS_TEST_T_EVENTS, key, buf);
    }
    rs_test_env_flush(e);
}

static double metric(const char *text, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, name, nl) && p[nl] == ' ') return atof(p + nl + 1);
    return -1;
}

static void serve_takeover(const char *delivery) {
    static rs_test_env_t e;
    static rs_test_svc_t a, b;
    rs_test_env_open(&e, 4);
    rs_test_env_changelog(&e, "g-sb"); /* the mock has no CreateTopics */
    const char *kv[] = {"state.changelog", "true", "state.standby", "1",
                        "kafka.consumer.session.timeout.ms", "6000",
                        /* a JoinGroup the mock dropped is sent again
                         * after 13 s, not 303 s (test_service_faults.c,
                         * "Mock limitations") */
                        "kafka.consumer.max.poll.interval.ms", "10000",
                        "service.delivery", delivery, NULL};
    produce_events(&e, 0, 200);
    rs_test_svc_start(&a, &e, "g-sb", kv, "A", 30000);
    assert_true(rs_test_svc_wait_count(&a, &a.scored, 200, "A scored",
                                       30000));
    rs_test_svc_start(&b, &e, "g-sb", kv, "B", 60000);
    produce_events(&e, 200, 400);
    rs_test_svc_wait_total(&a, &b, 400);
    sleep(1); /* the copies read what B wrote (not required: the tail) */
    rs_test_svc_stop(&b);
    produce_events(&e, 400, 500);
    rs_test_svc_wait_total(&a, &b, 500);
    rs_test_svc_stop(&a);
    double from_sb = metric(a.metrics,
                            "riskstream_restores_total{source=\"standby\"}");
    double warm = metric(a.metrics, "riskstream_standby_warm_total");
    double taken = metric(a.metrics, "riskstream_standby_taken_total");
    double cold_b = metric(b.metrics, "riskstream_standby_cold_total");
    double rec_b = metric(b.metrics, "riskstream_standby_records_total");
    printf("serve (%s): A scored %llu, B scored %llu; A: %g restore(s) from "
           "standby copies, %g revoked partition(s) kept warm; B: %g cold "
           "copies, %g changelog records applied to them\n",
           delivery, (unsigned long long)a.st.scored,
           (unsigned long long)b.st.scored, from_sb, warm, cold_b, rec_b);
    for (const char *l = strstr(a.metrics, "riskstream_restores_total{");
         l; l = strstr(l + 1, "riskstream_restores_total{"))
        printf("  A: %.*s\n", (int)strcspn(l, "\n"), l);
    /* B took half of the 4 partitions, A kept them warm, then took them
     * back from those copies when B left (>=: the mock's coordinator may
     * run one rebalance more, which moves the same halves again) */
    assert_true(warm >= 2);
    assert_true(from_sb >= 2);
    assert_true(taken == from_sb);
    assert_true(cold_b >= 2); /* A's half, from the changelog's start */
    assert_true(rec_b > 0);
    assert_true(a.st.scored + b.st.scored >= 500);
    rs_test_svc_free(&a);
    rs_test_svc_free(&b);
    rs_test_env_close(&e);
}

static void test_serve_takeover(void **state) {
    (void)state;
    serve_takeover("at_least_once");
}

/* Exactly-once: the changelog in the scores' transactions (the copies read
 * committed records; the mock writes no transaction markers, see README). */
static void test_serve_takeover_eos(void **state) {
    (void)state;
    serve_takeover("exactly_once");
}

static int teardown(void **state) {
    (void)state;
    rs_test_svc_teardown();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place),
        cmocka_unit_test(test_standby),
        cmocka_unit_test(test_foreign_tombstones),
        cmocka_unit_test_teardown(test_serve_takeover, teardown),
        cmocka_unit_test_teardown(test_serve_takeover_eos, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
