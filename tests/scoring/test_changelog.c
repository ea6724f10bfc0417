/* test_changelog.c -- the state changelog against librdkafka's mock
 * cluster (in process, over TCP):
 *
 *   test_roundtrip     batches staged and released on engine A, a
 *                      partition restored from the changelog into fresh
 *                      engine B: its feature, cache and duplicate bytes
 *                      equal A's at the last released batch, the positions
 *                      are that batch's marker; a batch staged but not
 *                      released (not yet delivered) is not in it, nor are
 *                      records written after the last marker (a batch cut
 *                      by a crash)
 *   test_eos_txn       exactly-once: the records go through the scores'
 *                      transactional producer, only inside a transaction
 *                      (released without one: nothing produced, still
 *                      staged); after a commit the topic holds exactly the
 *                      records produced; an abortable produce failure is
 *                      redone with the changelog records (both partitions'
 *                      markers there after the redo); a transaction
 *                      discarded before its commit (lost partitions, Redis
 *                      too slow) leaves none of its state to a restore.
 *                      A transaction aborted AFTER its records were
 *                      produced needs transaction markers, which the mock
 *                      does not write: on the mock the test asserts that a
 *                      read_committed restore does read them (so the day
 *                      the mock writes markers it fails and says so); on a
 *                      cluster with markers, that it does not.
 *   test_tombstones    entities whose feature slot expired (key_ttl) and
 *                      whose sequence cache the LRU evicted get
 *                      tombstones ('F' and 'S' keys with no value) in the
 *                      changelog; a restore from the uncompacted log does
 *                      not bring them back, while a live entity comes back
 *                      with the writer's bytes
 *   test_maint_tombstones  machines the maintenance forgot as idle
 *                      (key_ttl) get 'A' tombstones; neither a restore
 *                      from the uncompacted log nor a standby copy brings
 *                      them back; one that read again after its tombstone
 *                      and the live ones come back with the writer's bytes
 *   test_eos_service   the service with delivery: exactly_once and
 *                      state.changelog: true: after a graceful stop the
 *                      changelog holds exactly the records the service
 *                      counted as produced, and each partition's last
 *                      marker covers every event of it (the records went
 *                      in the transactions, committed with the input
 *                      offsets)
 *   test_topic_checks  a changelog topic with another partition count
 *                      than the input is refused (RS_ERR_CONFIG), a
 *                      missing input topic named
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/learnlog.h"
#include "scoring/changelog.h"
#include "scoring/standby.h"
#include "scoring/trainer.h"
#include "tests/support/rs_test_kafka.h"
#include "tests/support/rs_test_eng.h"
#include "tests/support/rs_test_svc.h"

#define NPART RS_TEST_ENG_NPART
#define DIM_MAX RS_FEATURES_MAX_DIM

typedef rs_test_eng_t eng_t; /* tests/support/rs_test_eng.h */

static int64_t g_key_ttl; /* features.key_ttl of new engines; 0: default */

static void eng_new(eng_t *e) { rs_test_eng_new(e, "/tmp", g_key_ttl); }

/* Positions the test pretends each partition is at (rs_test_eng_pos). */
static int64_t g_off[NPART];

/* Entity ids of run_batch: <g_ent>-<n>. */
static const char *g_ent = "card";

/* Process batch b (8 events over both partitions) on e into msgs. */
static void run_batch(eng_t *e, int b, rs_msg_t *msgs) {
    rs_test_eng_batch(e, b, msgs, g_off, g_ent);
}

static void test_roundtrip(void **state) {
    (void)state;
    char err[512];
    rs_kv_t kv;
    const char *boot;
    rs_cluster_t *cl = rs_test_eng_cluster(&kv, &boot);
    eng_t a, b;
    eng_new(&a);
    eng_new(&b);
    rs_changelog_t *ca = rs_test_eng_changelog(&a, &kv, boot, 1);
    assert_int_equal(rs_changelog_on_mock(ca, 5000), 1);
    assert_int_equal(rs_changelog_ensure(ca, "events", 10000, err,
                                         sizeof(err)), RS_OK);
    rs_msg_t msgs[8];
    memset(g_off, 0, sizeof(g_off));
    for (int bt = 1; bt <= 5; bt++) {
        run_batch(&a, bt, msgs);
        rs_changelog_stage(ca, (uint64_t)bt, msgs, 8, rs_test_eng_pos, g_off);
    }
    rs_changelog_release(ca, 4); /* batch 5: not delivered yet */
    assert_int_equal(rs_changelog_flush(ca, 10000), 0);
    /* A's state of partition 1 after batch 4: rebuild it by replaying
     * batches 1..4 on a third engine (A has moved on to batch 5) */
    eng_t ref;
    eng_new(&ref);
    int64_t save[NPART];
    memcpy(save, g_off, sizeof(save));
    memset(g_off, 0, sizeof(g_off));
    for (int bt = 1; bt <= 4; bt++) run_batch(&ref, bt, msgs);
    int64_t off4 = g_off[1];
    memcpy(g_off, save, sizeof(save));
    /* a cut batch: a record after the last marker */
    {
        rd_kafka_t *prod = rs_kafka_producer_new(&kv, boot, err, sizeof(err));
        uint8_t key[RS_PSTATE_KEY_LEN], val[4096];
        size_t len = 0;
        assert_int_equal(rs_features_entity_write(a.f, "card-1", val,
                                                  sizeof(val), &len), RS_OK);
        rs_pstate_key_encode(key, 'F', 1, rs_hash_str("card-1"));
        assert_int_equal(rd_kafka_producev(
                             prod, RD_KAFKA_V_TOPIC("t-state-changelog"),
                             RD_KAFKA_V_PARTITION(1),
                             RD_KAFKA_V_KEY(key, sizeof(key)),
                             RD_KAFKA_V_VALUE(val, len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END), 0);
        rd_kafka_flush(prod, 10000);
        rd_kafka_destroy(prod);
    }
    rs_changelog_t *cb = rs_test_eng_changelog(&b, &kv, boot, 1);
    rs_pstate_pos_t pos;
    uint64_t nrec = 0;
    assert_int_equal(rs_changelog_restore(cb, 1, 0, &pos, &nrec, err,
                                          sizeof(err)), RS_OK);
    assert_true(nrec > 0);
    assert_int_equal(pos.events, off4);
    assert_true(pos.changelog > 0);
    /* the same state: the same stream sizes (slot and LRU order may
     * differ), and the same features and scores for what comes next */
    size_t lr, lb;
    uint8_t *br = rs_test_eng_bytes(&ref, 1, &lr), *bb = rs_test_eng_bytes(&b, 1, &lb);
    assert_int_equal(lr, lb);
    free(br);
    free(bb);
    int dim = rs_features_dim(ref.f), checked = 0;
    uint8_t rec[8192];
    for (int k = 400; k < 460; k++) {
        int ent = k % 6;
        if (ent % NPART != 1) continue;
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.id, sizeof(ev.id), "tx-%d", k);
        snprintf(ev.type, sizeof(ev.type), "card_tx");
        snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%d", ent);
        ev.event_time_ms = 1767225600000LL + (int64_t)k * 60000;
        ev.amount = 3.0 + k % 11;
        float x[2][DIM_MAX], sc[2];
        eng_t *es[2] = {&ref, &b};
        for (int w = 0; w < 2; w++) {
            rs_features_set_partition(es[w]->f, 1);
            assert_int_equal(rs_features_process(es[w]->f, &ev, x[w], NULL),
                             RS_OK);
            rs_model_input_t in;
            rs_model_output_t out;
            memset(&in, 0, sizeof(in));
            in.event_id = ev.id;
            in.entity_id = ev.entity_id;
            in.event_time_ms = ev.event_time_ms;
            in.amount = (float)ev.amount;
            in.x = x[w];
            in.lrec = rec;
            in.lpos = RS_LPOS(1, 1000 + k);
            assert_int_equal(rs_model_forward(es[w]->m, &in, 1, &out, NULL,
                                              RS_MODEL_FWD_REMEMBER), RS_OK);
            sc[w] = out.score;
        }
        for (int i = 0; i < dim; i++) {
            const char *n = rs_features_name(ref.f, i);
            if (strncmp(n, "ent_", 4)) continue;
            if (memcmp(&x[0][i], &x[1][i], sizeof(float)))
                fail_msg("event %d %s: %g vs %g", k, n, (double)x[0][i],
                         (double)x[1][i]);
        }
        /* the history attended is the same (scores differ only by the
         * counterparty and calendar inputs, equal here: no counterparty) */
        assert_memory_equal(&sc[0], &sc[1], sizeof(float));
        checked++;
    }
    assert_true(checked >= 10);
    /* the duplicate window came along: an event of batch 2 again */
    uint64_t h;
    assert_int_equal(rs_dedup_check_part(b.d, rs_dedup_key("card-1", "tx-19"),
                                         1767225600000LL + 19 * 60000, 1, &h),
                     1);
    /* nothing after the marker: NOTFOUND from there */
    assert_int_equal(rs_changelog_restore(cb, 1, pos.changelog + 1, &pos,
                                          &nrec, err, sizeof(err)),
                     RS_ERR_NOTFOUND);
    rs_changelog_destroy(cb);
    rs_changelog_destroy(ca);
    rs_test_eng_free(&a);
    rs_test_eng_free(&b);
    rs_test_eng_free(&ref);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

/* 1 if engine e holds a feature slot for entity id. */
static int has_entity(eng_t *e, const char *id) {
    uint8_t buf[8192];
    size_t len = 0;
    rs_err_t err = rs_features_entity_write(e->f, id, buf, sizeof(buf), &len);
    assert_true(err == RS_OK || err == RS_ERR_NOTFOUND);
    return err == RS_OK;
}

static int64_t hwm_sum(rs_changelog_t *c) {
    int64_t n = 0;
    for (int p = 0; p < NPART; p++) {
        int64_t h = rs_changelog_hwm(c, p);
        assert_true(h >= 0);
        n += h;
    }
    return n;
}

/* Restore both partitions from the beginning into a fresh engine r;
 * pos[p] the last markers. */
static void restore_all(rs_kv_t *kv, const char *boot, eng_t *r,
                        rs_pstate_pos_t pos[NPART]) {
    char err[512];
    eng_new(r);
    rs_changelog_t *c = rs_test_eng_changelog(r, kv, boot, 1);
    for (int p = 0; p < NPART; p++) {
        uint64_t nrec = 0;
        rs_err_t e = rs_changelog_restore(c, p, 0, &pos[p], &nrec, err,
                                          sizeof(err));
        if (e != RS_OK) fail_msg("restore of partition %d: %s", p, err);
        assert_true(nrec > 0);
    }
    rs_changelog_destroy(c);
}

static void test_eos_txn(void **state) {
    (void)state;
    char err[512];
    const char *topics[] = {"events", "scores", "t-state-changelog"};
    rs_cluster_t *cl = rs_cluster_new(1, topics, 3, NPART, err, sizeof(err));
    assert_non_null(cl);
    const char *boot = rs_cluster_bootstraps(cl);
    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_sink_kafka_t *ks = rs_sink_kafka_new_txn(&kv, boot, "scores", NULL,
                                                RS_FORMAT_JSON, "t-eos", err,
                                                sizeof(err));
    if (!ks) fail_msg("%s", err);
    eng_t a;
    eng_new(&a);
    rs_changelog_t *ca = rs_test_eng_changelog(&a, &kv, boot, 1);
    assert_int_equal(rs_changelog_ensure(ca, "events", 10000, err,
                                         sizeof(err)), RS_OK);
    assert_int_equal(rs_changelog_use_txn(ca, ks, err, sizeof(err)), RS_OK);
    rd_kafka_consumer_group_metadata_t *cgmd =
        rd_kafka_consumer_group_metadata_new("t-group");
    const char *const in[2] = {"events", "labels"};
    rs_ingest_pos_t ipos[NPART];
    rs_changelog_stats_t st;
    rs_msg_t msgs[8];
    int64_t want[8][NPART]; /* positions after batch b */
    memset(g_off, 0, sizeof(g_off));
    g_ent = "card";
#define STAGE(bt)                                                          \
    do {                                                                   \
        run_batch(&a, (bt), msgs);                                         \
        rs_changelog_stage(ca, (uint64_t)(bt), msgs, 8, rs_test_eng_pos, g_off);     \
        memcpy(want[(bt)], g_off, sizeof(g_off));                          \
        for (int p_ = 0; p_ < NPART; p_++)                                 \
            ipos[p_] = (rs_ingest_pos_t){RS_MSG_TOPIC_EVENTS, p_,          \
                                         g_off[p_]};                       \
    } while (0)
#define COMMIT()                                                           \
    assert_int_equal(rs_sink_kafka_txn_commit(ks, ipos, NPART, in, cgmd,   \
                                              30000, err, sizeof(err)),    \
                     RS_OK)

    /* Released outside a transaction: nothing produced, still staged. */
    STAGE(1);
    rs_changelog_release(ca, 1);
    rs_changelog_stats(ca, &st);
    assert_int_equal(st.records, 0);
    assert_true(st.staged_bytes > 0);
    assert_int_equal(hwm_sum(ca), 0);

    /* One transaction: a score, batches 1 and 2's records, the offsets. */
    assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
    rs_score_t sc;
    memset(&sc, 0, sizeof(sc));
    snprintf(sc.event_id, sizeof(sc.event_id), "tx-8");
    snprintf(sc.entity_id, sizeof(sc.entity_id), "card-0");
    snprintf(sc.model_version, sizeof(sc.model_version), "v1");
    assert_int_equal(rs_sink_kafka_publish(ks, &sc, 1), RS_OK);
    STAGE(2);
    rs_changelog_release(ca, 2);
    COMMIT();
    rs_changelog_stats(ca, &st);
    assert_true(st.records > 0);
    assert_int_equal(st.staged_bytes, 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(hwm_sum(ca), (int64_t)st.records);
    for (int p = 0; p < NPART; p++) /* delivery reports reached it */
        assert_int_equal(rs_changelog_end(ca, p), rs_changelog_hwm(ca, p));
    printf("committed: %llu changelog records in the transaction, %lld in "
           "the topic\n", (unsigned long long)st.records,
           (long long)hwm_sum(ca));

    /* Abortable: a produce of the changelog fails (only changelog
     * records in this transaction); the redo produces them again. */
    rd_kafka_mock_push_request_errors(
        rs_cluster_mock(cl), 0 /* Produce */, 1,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
    STAGE(3);
    rs_changelog_release(ca, 3);
    rs_err_t e = rs_sink_kafka_txn_commit(ks, ipos, NPART, in, cgmd, 30000,
                                          err, sizeof(err));
    printf("failed changelog produce: %s: %s\n", rs_err_str(e), err);
    assert_int_equal(e, RS_ERR_AGAIN);
    int redo;
    for (redo = 1; redo <= 3; redo++) {
        assert_int_equal(rs_sink_kafka_txn_abort(ks, RS_SINK_TXN_RETRY, 30000,
                                                 err, sizeof(err)), RS_OK);
        assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
        e = rs_sink_kafka_txn_commit(ks, ipos, NPART, in, cgmd, 30000, err,
                                     sizeof(err));
        if (e == RS_OK) break;
        assert_int_equal(e, RS_ERR_AGAIN);
    }
    assert_true(redo <= 3);
    {
        eng_t r;
        rs_pstate_pos_t pos[NPART];
        restore_all(&kv, boot, &r, pos);
        for (int p = 0; p < NPART; p++)
            assert_int_equal(pos[p].events, want[3][p]);
        rs_test_eng_free(&r);
    }

    /* Discarded before its commit (the service: lost partitions, or
     * Redis too slow): batch 4's entities exist nowhere else. */
    assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
    g_ent = "gone";
    STAGE(4);
    g_ent = "card";
    assert_int_equal(rs_sink_kafka_txn_abort(ks, RS_SINK_TXN_DISCARD, 30000,
                                             err, sizeof(err)), RS_OK);
    rs_changelog_discard(ca, 4);
    assert_true(has_entity(&a, "gone-1")); /* A's state ran ahead */
    assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
    STAGE(5);
    rs_changelog_release(ca, 5);
    COMMIT();
    {
        eng_t r;
        rs_pstate_pos_t pos[NPART];
        restore_all(&kv, boot, &r, pos);
        for (int p = 0; p < NPART; p++)
            assert_int_equal(pos[p].events, want[5][p]);
        for (int i = 0; i < 6; i++) {
            char id[32];
            snprintf(id, sizeof(id), "gone-%d", i);
            assert_false(has_entity(&r, id));
            snprintf(id, sizeof(id), "card-%d", i);
            assert_true(has_entity(&r, id));
        }
        rs_test_eng_free(&r);
    }

    /* Aborted after its records were produced (e.g. EndTxn failed). */
    rs_changelog_stats(ca, &st);
    uint64_t rec0 = st.records;
    int64_t h0 = hwm_sum(ca);
    assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
    g_ent = "abrt";
    STAGE(6);
    g_ent = "card";
    rs_changelog_release(ca, 6);
    assert_int_equal(rs_sink_kafka_flush(ks, 10000), RS_OK);
    assert_int_equal(rs_sink_kafka_txn_abort(ks, RS_SINK_TXN_DISCARD, 30000,
                                             err, sizeof(err)), RS_OK);
    assert_int_equal(rs_sink_kafka_txn_begin(ks), RS_OK);
    STAGE(7);
    rs_changelog_release(ca, 7);
    COMMIT();
    rs_changelog_stats(ca, &st);
    /* control records (commit/abort markers) take offsets of their own */
    int markers = hwm_sum(ca) - h0 > (int64_t)(st.records - rec0);
    {
        eng_t r;
        rs_pstate_pos_t pos[NPART];
        restore_all(&kv, boot, &r, pos);
        for (int p = 0; p < NPART; p++)
            assert_int_equal(pos[p].events, want[7][p]);
        int seen = has_entity(&r, "abrt-1");
        printf("a transaction aborted after its changelog records were "
               "produced: the restore %s them (%s)\n",
               seen ? "APPLIED" : "did not apply",
               markers ? "the cluster writes transaction markers"
                       : "librdkafka's mock writes no transaction markers: "
                         "read_committed cannot hide aborted records here");
        assert_int_equal(seen, !markers);
        assert_true(has_entity(&r, "card-1"));
        rs_test_eng_free(&r);
    }
#undef STAGE
#undef COMMIT
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    rs_changelog_destroy(ca);
    rs_sink_kafka_destroy(ks);
    rs_test_eng_free(&a);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

/* What the changelog topic holds: records per store, last marker per
 * partition. */
typedef struct cl_tally_s {
    int n, bad;
    int per_store[256];
    rs_pstate_pos_t last[NPART];
} cl_tally_t;

static void cl_tally_cb(void *opaque, const rd_kafka_message_t *rkm) {
    cl_tally_t *t = opaque;
    rs_pstate_key_t k;
    char e[256];
    t->n++;
    if (rs_test_eng_key(rkm, &k) || rkm->partition < 0 ||
        rkm->partition >= NPART) {
        t->bad++;
        return;
    }
    t->per_store[(uint8_t)k.store]++;
    if (k.store == 'M' &&
        rs_pstate_mark_parse(rkm->payload, rkm->len, &t->last[rkm->partition],
                             e, sizeof(e)))
        t->bad++;
}

/* Tombstones ('F' and 'S' keys without a value) in the changelog. */
typedef struct tomb_tally_s {
    int f, s, a, n;
} tomb_tally_t;

static void tomb_cb(void *opaque, const rd_kafka_message_t *rkm) {
    tomb_tally_t *t = opaque;
    rs_pstate_key_t k;
    t->n++;
    if (rkm->payload || rs_test_eng_key(rkm, &k)) return;
    t->f += k.store == 'F';
    t->s += k.store == 'S';
    t->a += k.store == 'A';
}

static int has_cache(eng_t *e, const char *id) {
    uint8_t buf[1 << 16];
    size_t len = 0;
    rs_err_t err = rs_model_caches_write_entity(e->m, id, buf, sizeof(buf),
                                                &len);
    assert_true(err == RS_OK || err == RS_ERR_NOTFOUND);
    return err == RS_OK;
}

static void test_tombstones(void **state) {
    (void)state;
    rs_kv_t kv;
    const char *boot;
    rs_cluster_t *cl = rs_test_eng_cluster(&kv, &boot);
    g_key_ttl = 3600000LL; /* 1 h of event time */
    eng_t a;
    eng_new(&a);
    rs_changelog_t *ca = rs_test_eng_changelog(&a, &kv, boot, 1);
    memset(g_off, 0, sizeof(g_off));
    /* batch 1: old-0..5; batches 20..31 (2.6 h later): 6 new entities
     * each, 72 in all -- more than the 64 sequence caches (the LRU evicts
     * old-*) and enough events for the sweep to pass every slot */
    rs_test_eng_expiry_run(&a, ca, g_off);
    rs_features_stats_t fs;
    rs_features_stats(a.f, &fs);
    rs_model_stats_t ms;
    rs_model_stats(a.m, &ms);
    printf("writer: %llu feature slots expired, %llu evicted, %llu sequence "
           "caches evicted\n", (unsigned long long)fs.expirations,
           (unsigned long long)fs.evictions,
           (unsigned long long)ms.evictions);
    assert_true(fs.expirations >= 6);
    assert_true(ms.evictions >= 6);
    tomb_tally_t t = {0, 0, 0, 0};
    rs_test_eng_read_changelog(ca, boot, tomb_cb, &t);
    printf("changelog: %d records, %d feature and %d cache tombstones\n",
           t.n, t.f, t.s);
    assert_true(t.f >= 6 && t.s >= 6);
    eng_t b;
    rs_pstate_pos_t pos[NPART];
    restore_all(&kv, boot, &b, pos);
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "old-%d", i);
        assert_false(has_entity(&a, id));
        assert_false(has_cache(&a, id));
        assert_false(has_entity(&b, id)); /* not resurrected */
        assert_false(has_cache(&b, id));
        snprintf(id, sizeof(id), "n31-%d", i); /* live: back, same bytes */
        assert_true(has_entity(&b, id));
        assert_true(has_cache(&b, id));
        uint8_t x[2][8192];
        size_t lx[2];
        assert_int_equal(rs_features_entity_write(a.f, id, x[0], 8192,
                                                  &lx[0]), RS_OK);
        assert_int_equal(rs_features_entity_write(b.f, id, x[1], 8192,
                                                  &lx[1]), RS_OK);
        assert_int_equal(lx[0], lx[1]);
        assert_memory_equal(x[0], x[1], lx[0]);
    }
    g_key_ttl = 0;
    rs_changelog_destroy(ca);
    rs_test_eng_free(&a);
    rs_test_eng_free(&b);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

/* ------------------------------------------ maintenance tombstones */

/* An engine with maintenance: the stores of eng_t plus the alerts
 * (alerts.h: idle machines after g_key_ttl) over an lr trainer. */
typedef struct meng_s {
    eng_t e;
    rs_trainer_t *tr;
    rs_alerts_t *al;
} meng_t;

static void meng_new(meng_t *t) {
    eng_new(&t->e);
    int dim = rs_features_dim(t->e.f);
    const char *names[DIM_MAX];
    for (int i = 0; i < dim; i++) names[i] = rs_features_name(t->e.f, i);
    t->tr = rs_test_eng_trainer(dim, names);
    rs_maint_conf_t mc;
    rs_test_eng_maint_conf(&mc);
    t->al = rs_test_eng_alerts(&mc, g_key_ttl, t->e.f, t->e.m, t->tr);
    rs_pstate_set_alerts(t->e.ps, t->al);
}

static void meng_free(meng_t *t) {
    rs_test_eng_free(&t->e);
    rs_alerts_destroy(t->al);
    rs_trainer_destroy(t->tr);
}

/* Batch b: mach[i] (on partition: its last digit % NPART) reads event
 * b * 8 + i (minutes), score 0.9. */
static void mbatch(meng_t *t, int b, const char *const *mach, rs_msg_t *msgs) {
    for (int i = 0; i < 8; i++) {
        int k = b * 8 + i;
        rs_msg_t *m = &msgs[i];
        memset(m, 0, sizeof(*m));
        m->kind = RS_MSG_EVENT;
        m->partition = (mach[i][strlen(mach[i]) - 1] - '0') % NPART;
        m->offset = g_off[m->partition]++;
        rs_event_t *ev = &m->ev;
        snprintf(ev->id, sizeof(ev->id), "r-%d", k);
        snprintf(ev->type, sizeof(ev->type), "sensor");
        snprintf(ev->entity_id, sizeof(ev->entity_id), "%s", mach[i]);
        snprintf(ev->counterparty_id, sizeof(ev->counterparty_id), "site");
        ev->event_time_ms = 1767225600000LL + (int64_t)k * 60000;
        ev->amount = 5.0 + k % 17;
        float x[DIM_MAX];
        int64_t rul;
        double as;
        rs_features_set_partition(t->e.f, m->partition);
        rs_alerts_event(t->al, i, ev, m->partition);
        assert_int_equal(rs_features_process(t->e.f, ev, x, NULL), RS_OK);
        rs_alerts_score(t->al, i, -1, ev, m->partition, .9f, x, "v1", &rul,
                        &as);
    }
    rs_alerts_batch_end(t->al);
}

/* 1 if e holds maintenance state of machine id; its record in buf. */
static int has_machine(meng_t *e, const char *id, uint8_t *buf, size_t cap,
                       size_t *len) {
    *len = rs_alerts_machine_write(e->al, id, buf, cap);
    assert_true(*len <= cap);
    return *len > 0;
}

/* Machines forgotten as idle (alerts.h "Idle machines", key_ttl 1 h) get
 * 'A' tombstones in the changelog; a restore from the uncompacted log and
 * a standby copy of it do not bring them back; a machine that read again
 * after its tombstone comes back with the writer's bytes, as do the live
 * ones. */
static void test_maint_tombstones(void **state) {
    (void)state;
    char err[512];
    rs_kv_t kv;
    const char *boot;
    rs_cluster_t *cl = rs_test_eng_cluster(&kv, &boot);
    g_key_ttl = 3600000LL; /* 1 h of event time */
    static meng_t a, b, c;
    meng_new(&a);
    rs_changelog_t *ca = rs_test_eng_changelog(&a.e, &kv, boot, 0);
    memset(g_off, 0, sizeof(g_off));
    /* batch 1: old-0..5 (minutes 8..15); batches 20..25 (2.5 h later):
     * n<b>-0..5, 48 events -- more than a pass of the idleness sweep over
     * the 128 slots (4 per event); batch 26: old-0 reads again (after its
     * tombstone), and n25-* */
    char nm[8][32];
    const char *mach[8];
    for (int i = 0; i < 8; i++) mach[i] = nm[i];
    rs_msg_t msgs[8];
    int bts[8] = {1, 20, 21, 22, 23, 24, 25, 26};
    for (int s = 0; s < 8; s++) {
        for (int i = 0; i < 8; i++) {
            if (s == 0 || (s == 7 && i == 0))
                snprintf(nm[i], sizeof(nm[i]), "old-%d", s ? 0 : i % 6);
            else
                snprintf(nm[i], sizeof(nm[i]), "n%d-%d",
                         s == 7 ? 25 : bts[s], i % 6);
        }
        mbatch(&a, bts[s], mach, msgs);
        rs_changelog_stage(ca, (uint64_t)(s + 1), msgs, 8, rs_test_eng_pos, g_off);
        rs_changelog_release(ca, (uint64_t)(s + 1));
    }
    assert_int_equal(rs_changelog_flush(ca, 10000), 0);
    rs_alerts_stats_t ast;
    rs_alerts_snapshot(a.al);
    rs_alerts_stats(a.al, &ast);
    printf("writer: %llu machines forgotten as idle\n",
           (unsigned long long)ast.expired);
    assert_int_equal(ast.expired, 6); /* old-0..5 */
    tomb_tally_t t = {0, 0, 0, 0};
    rs_changelog_stats_t st;
    rs_changelog_stats(ca, &st);
    assert_int_equal(rs_test_kafka_read(boot, "t-state-changelog",
                                        (int)st.records, 500, 20000, tomb_cb,
                                        &t),
                     (int)st.records);
    printf("changelog: %d records, %d maintenance tombstones\n", t.n, t.a);
    assert_int_equal(t.a, 6);
    /* B restored from the beginning of the uncompacted log */
    meng_new(&b);
    rs_changelog_t *cb = rs_test_eng_changelog(&b.e, &kv, boot, 0);
    for (int p = 0; p < NPART; p++) {
        uint64_t nrec = 0;
        rs_pstate_pos_t pos;
        if (rs_changelog_restore(cb, p, 0, &pos, &nrec, err, sizeof(err)) !=
            RS_OK)
            fail_msg("restore of partition %d: %s", p, err);
    }
    rs_changelog_destroy(cb);
    /* C: standby copies of both partitions, read to their ends */
    meng_new(&c);
    rs_standby_t *sb = rs_standby_new(&kv, boot, "t-state-changelog", c.e.ps,
                                      err, sizeof(err));
    assert_non_null(sb);
    assert_int_equal(rs_standby_nparts(sb, 10000), NPART);
    for (int p = 0; p < NPART; p++) rs_standby_add(sb, p, NULL);
    for (int i = 0; i < 3000; i++) { /* (the poll does not block) */
        assert_true(rs_standby_poll(sb, 10) >= 0);
        if (rs_standby_position(sb, 0) == rs_changelog_end(ca, 0) &&
            rs_standby_position(sb, 1) == rs_changelog_end(ca, 1))
            break;
        usleep(10000);
    }
    for (int p = 0; p < NPART; p++)
        assert_int_equal(rs_standby_position(sb, p), rs_changelog_end(ca, p));
    static uint8_t x[3][4096];
    size_t lx[3];
    meng_t *r[2] = {&b, &c};
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof(id), "old-%d", i);
        int back = i == 0; /* read again after its tombstone */
        assert_int_equal(has_machine(&a, id, x[0], sizeof(x[0]), &lx[0]),
                         back);
        for (int k = 0; k < 2; k++) {
            /* not resurrected by the restore nor the standby copy */
            assert_int_equal(has_machine(r[k], id, x[1 + k], sizeof(x[1]),
                                         &lx[1 + k]), back);
            if (!back) continue;
            assert_int_equal(lx[0], lx[1 + k]);
            assert_memory_equal(x[0], x[1 + k], lx[0]);
        }
        snprintf(id, sizeof(id), "n20-%d", i); /* live: same bytes */
        assert_true(has_machine(&a, id, x[0], sizeof(x[0]), &lx[0]));
        for (int k = 0; k < 2; k++) {
            assert_true(has_machine(r[k], id, x[1 + k], sizeof(x[1]),
                                    &lx[1 + k]));
            assert_int_equal(lx[0], lx[1 + k]);
            assert_memory_equal(x[0], x[1 + k], lx[0]);
        }
    }
    g_key_ttl = 0;
    rs_standby_destroy(sb);
    rs_changelog_destroy(ca);
    meng_free(&a);
    meng_free(&b);
    meng_free(&c);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

/* A counter's value in a /metrics text (-1 if absent). */
static double metric(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name))
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static void test_eos_service(void **state) {
    (void)state;
    static rs_test_env_t e; /* static: the teardown may close them */
    static rs_test_svc_t s;
    rs_test_env_open(&e, NPART);
    const char *topic = "g-eos-cl-state-changelog";
    assert_int_equal(rd_kafka_mock_topic_create(rs_cluster_mock(e.cl), topic,
                                                NPART, 1), 0);
    const char *kv[] = {"service.delivery", "exactly_once",
                        "state.changelog", "true", NULL};
    rs_test_svc_conf(&s, &e, "g-eos-cl", kv);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    const int N = 300;
    for (int i = 0; i < N; i++) {
        if (i == N / 2) { /* most often a second transaction (printed) */
            rs_test_env_flush(&e);
            assert_true(rs_test_svc_wait_count(&s, &s.scored, (uint64_t)i,
                                               "scored", 60000));
            struct timespec ts = {0, 300000000L};
            nanosleep(&ts, NULL);
        }
        char buf[512], key[32];
        snprintf(key, sizeof(key), "card-%d", i % 13);
        snprintf(buf, sizeof(buf),
                 "{\"id\":\"ev-%d\",\"type\":\"card_tx\","
                 "\"entity_id\":\"%s\",\"counterparty_id\":\"m-%d\","
                 "\"event_time_ms\":%lld,\"amount\":%d.5}",
                 i, key, i % 7, 1700000000000LL + (long long)i * 1000,
                 1 + i % 90);
        rs_test_env_produce(&e, RS_TEST_T_EVENTS, key, buf);
    }
    rs_test_env_flush(&e);
    int ok = rs_test_svc_wait_count(&s, &s.scored, (uint64_t)N, "scored",
                                    60000);
    rs_test_svc_stop(&s);
    assert_true(ok);
    assert_int_equal(s.err, RS_OK);
    assert_true(s.st.txn_commits >= 1);
    double produced = metric(s.metrics, "riskstream_changelog_records_total");
    double failed = metric(s.metrics, "riskstream_changelog_failures_total");
    cl_tally_t t;
    memset(&t, 0, sizeof(t));
    int n = rs_test_kafka_read(e.boot, topic, (int)produced, 1000, 30000,
                               cl_tally_cb, &t);
    printf("eos service: %llu transactions, %.0f changelog records "
           "produced, %d in the topic (F %d, S %d, I %d, D %d, M %d)\n",
           (unsigned long long)s.st.txn_commits, produced, n,
           t.per_store['F'], t.per_store['S'], t.per_store['I'],
           t.per_store['D'], t.per_store['M']);
    assert_true(produced > 0);
    assert_true(failed == 0);
    assert_int_equal(n, (int)produced); /* no aborts: every one, once */
    assert_int_equal(t.bad, 0);
    assert_int_equal(t.per_store['I'], N); /* one index entry per event */
    assert_true(t.per_store['F'] > 0 && t.per_store['M'] > 0);
    int64_t covered = 0;
    for (int p = 0; p < NPART; p++) {
        int64_t lo = -1, hi = -1;
        assert_int_equal(rd_kafka_query_watermark_offsets(
                             e.prod, rs_test_topics[RS_TEST_T_EVENTS], p, &lo,
                             &hi, 10000), 0);
        if (hi > 0) assert_int_equal(t.last[p].events, hi);
        covered += hi;
    }
    assert_int_equal(covered, N);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

static int svc_teardown(void **state) {
    (void)state;
    rs_test_svc_teardown();
    return 0;
}

static void test_topic_checks(void **state) {
    (void)state;
    char err[512];
    const char *t1[] = {"events"};
    const char *t3[] = {"bad-state-changelog"};
    rs_cluster_t *cl = rs_cluster_new(1, t1, 1, 2, err, sizeof(err));
    assert_non_null(cl);
    /* a second topic with 3 partitions on the same cluster */
    assert_int_equal(rd_kafka_mock_topic_create(rs_cluster_mock(cl), t3[0], 3,
                                                1), 0);
    rs_kv_t kv;
    rs_kv_init(&kv);
    eng_t a;
    eng_new(&a);
    rs_changelog_t *c = rs_changelog_new(&kv, rs_cluster_bootstraps(cl), t3[0],
                                         a.f, a.m, a.d, a.ps, 8, err,
                                         sizeof(err));
    assert_non_null(c);
    assert_int_equal(rs_changelog_ensure(c, "events", 10000, err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "3 partitions"));
    assert_int_equal(rs_changelog_ensure(c, "no-such-input", 1000, err,
                                         sizeof(err)), RS_ERR_KAFKA);
    assert_non_null(strstr(err, "no-such-input"));
    rs_changelog_destroy(c);
    rs_test_eng_free(&a);
    rs_kv_free(&kv);
    rs_cluster_destroy(cl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_eos_txn),
        cmocka_unit_test(test_tombstones),
        cmocka_unit_test(test_maint_tombstones),
        cmocka_unit_test_teardown(test_eos_service, svc_teardown),
        cmocka_unit_test(test_topic_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
