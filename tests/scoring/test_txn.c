/* test_txn.c -- the Kafka sink's transactional (exactly-once) mode, with
 * the exactly-once consumer, against the librdkafka mock cluster.
 *
 * What the mock cluster of librdkafka 2.0.2 (Debian 12) supports, checked
 * by probe_caps() at the start of each test and printed:
 *  - the transactional protocol: InitProducerId, AddPartitionsToTxn,
 *    AddOffsetsToTxn, TxnOffsetCommit and EndTxn are answered, and errors
 *    and delays can be injected into each (rd_kafka_mock_push_request_*),
 *    so the client-side state machine and our error classes are tested;
 *  - NOT transaction markers: EndTxn writes no control records and Fetch
 *    reports LastStableOffset = high watermark and no aborted
 *    transactions, so a read_committed consumer also sees the messages of
 *    aborted (and open) transactions;
 *  - NOT transactional offsets: TxnOffsetCommit is acknowledged but its
 *    offsets are dropped (the group's committed offset does not move);
 *  - NOT zombie fencing: a second InitProducerId for the same
 *    transactional.id does not bump the epoch (fatal errors are tested by
 *    injecting PRODUCER_FENCED).
 * The assertions that need markers or transactional offsets run only when
 * the cluster has them ("strict"); with the mock the test asserts what the
 * mock shows instead (e.g. that no offset gets committed at all, which
 * proves the consumer never commits outside a transaction).  To run the
 * strict checks against a real cluster (Kafka >= 2.5):
 *   RS_TEST_KAFKA_BROKERS=host:9092 ./test_txn
 * Topic, group and transactional-id names are unique per run there; the
 * fault-injection test needs the mock and is skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest/ingest.h"
#include "scoring/sink.h"
#include "tests/support/rs_test_kafka.h"

#define BASE_MS 1700000000000LL
#define NEV 4096 /* event ids ev-0 .. ev-4095 */

/* ------------------------------------------------------------ the cluster */

typedef struct env_s {
    rs_cluster_t *cl;  /* NULL: external cluster (RS_TEST_KAFKA_BROKERS)  */
    char boot[512];
    char ns[48];       /* unique per test and run                        */
    char events[96], labels[96], scores[96], alerts[96], dlq[96], probe[96];
    int markers;       /* read_committed hides aborted transactions      */
    int txn_offsets;   /* offsets sent in a committed txn are committed  */
} env_t;

static void create_topics(const char *boot, const char *const *names, int n,
                          int partitions) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", boot, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_NewTopic_t *nt[8];
    for (int i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(names[i], partitions, -1, errstr,
                                      sizeof(errstr));
        assert_non_null(nt[i]);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    assert_int_equal(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static void probe_caps(env_t *env);

static void env_open(env_t *env, const char *name, int partitions) {
    char errstr[512];
    static int seq;
    memset(env, 0, sizeof(*env));
    const char *ext = getenv("RS_TEST_KAFKA_BROKERS");
    if (ext && *ext)
        snprintf(env->ns, sizeof(env->ns), "rs%d-%d-%s", (int)getpid(), ++seq,
                 name);
    else
        snprintf(env->ns, sizeof(env->ns), "%s", name);
    snprintf(env->events, sizeof(env->events), "%s.events", env->ns);
    snprintf(env->labels, sizeof(env->labels), "%s.labels", env->ns);
    snprintf(env->scores, sizeof(env->scores), "%s.scores", env->ns);
    snprintf(env->alerts, sizeof(env->alerts), "%s.alerts", env->ns);
    snprintf(env->dlq, sizeof(env->dlq), "%s.dlq", env->ns);
    snprintf(env->probe, sizeof(env->probe), "%s.probe", env->ns);
    const char *topics[] = {env->events, env->labels, env->scores,
                            env->alerts, env->dlq,    env->probe};
    if (ext && *ext) {
        snprintf(env->boot, sizeof(env->boot), "%s", ext);
        create_topics(env->boot, topics, 6, partitions);
    } else {
        env->cl = rs_cluster_new(1, topics, 6, partitions, errstr,
                                 sizeof(errstr));
        assert_non_null(env->cl);
        snprintf(env->boot, sizeof(env->boot), "%s",
                 rs_cluster_bootstraps(env->cl));
    }
    probe_caps(env);
}

static void env_close(env_t *env) { rs_cluster_destroy(env->cl); }

/* ------------------------------------------------------------- read back */

/* Read `topic` from the beginning (no group) with the given isolation
 * level until `expect` messages were seen and `settle_ms` passed without
 * another, or timeout_ms.  Returns the count. */
static int read_topic(const char *boot, const char *topic,
                      const char *isolation, int expect, int settle_ms,
                      int timeout_ms, rs_test_kafka_cb *cb, void *opaque) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", boot, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "rs-test-reader",
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false",
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "isolation.level", isolation,
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    assert_non_null(rk);
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
    assert_true(nparts > 0);
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int n = 0;
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    int64_t settle_until = 0;
    for (;;) {
        int64_t now = rs_clock_mono_us();
        if (now > deadline) break;
        if (n >= expect) {
            if (!settle_until) settle_until = now + (int64_t)settle_ms * 1000;
            if (now > settle_until) break;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        if (!rkm) continue;
        if (!rkm->err) {
            n++;
            if (cb) cb(opaque, rkm);
            if (n > expect) settle_until = 0;
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* Committed offsets of `group` for partitions 0..nparts-1 of `topic`. */
static void committed(const char *boot, const char *group, const char *topic,
                      int64_t *offs, int nparts) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", boot, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    assert_int_equal(rd_kafka_committed(rk, l, 10000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int p = 0; p < nparts; p++) offs[p] = l->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void count_cb(void *opaque, const rd_kafka_message_t *rkm) {
    (void)opaque;
    (void)rkm;
}

/* Check the mock's transaction support (see the top comment). */
static void probe_caps(env_t *env) {
    char errstr[512], tid[128], group[128];
    snprintf(tid, sizeof(tid), "%s-probe", env->ns);
    snprintf(group, sizeof(group), "%s-probe-g", env->ns);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", env->boot,
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "transactional.id", tid, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    assert_non_null(rk);
    assert_null(rd_kafka_init_transactions(rk, 30000));
    assert_null(rd_kafka_begin_transaction(rk));
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(env->probe),
                                       RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE("aborted", 7),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_flush(rk, 10000);
    assert_null(rd_kafka_abort_transaction(rk, 30000));
    assert_null(rd_kafka_begin_transaction(rk));
    assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(env->probe),
                                       RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE("committed", 9),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offs, env->probe, 0)->offset = 1;
    rd_kafka_consumer_group_metadata_t *cgmd =
        rd_kafka_consumer_group_metadata_new(group);
    assert_null(rd_kafka_send_offsets_to_transaction(rk, offs, cgmd, 30000));
    assert_null(rd_kafka_commit_transaction(rk, 30000));
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(offs);
    rd_kafka_destroy(rk);

    int n = read_topic(env->boot, env->probe, "read_committed", 1, 1500,
                       20000, count_cb, NULL);
    env->markers = (n == 1);
    int64_t off = -1;
    committed(env->boot, group, env->probe, &off, 1);
    env->txn_offsets = (off == 1);
    printf("cluster %s: transactions ok; read_committed hides aborted "
           "messages: %s (saw %d of 1); transactional offsets committed: %s "
           "(%lld)%s\n",
           env->cl ? "mock" : env->boot, env->markers ? "yes" : "NO", n,
           env->txn_offsets ? "yes" : "NO", (long long)off,
           env->markers && env->txn_offsets ? "" : " -- strict checks skipped");
}

/* --------------------------------------------------------------- scores */

static void make_score(int i, rs_decision_t decision, rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "ev-%d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "card-%d", i % 7);
    sc->score = (double)(i % 100) / 100.0;
    sc->decision = decision;
    snprintf(sc->model_version, sizeof(sc->model_version), "lr-test-1");
    sc->event_time_ms = BASE_MS + i;
    sc->scored_at_ms = BASE_MS + i + 5;
}

/* How many times each event id was seen on a scores/alerts topic, and the
 * first payload of each (to compare a redone transaction's copies). */
typedef struct score_tally_s {
    int n, bad;
    unsigned char cnt[NEV];
    char *first[NEV];
    size_t first_len[NEV];
    int differ; /* a copy whose bytes differ from the first */
} score_tally_t;

static void score_cb(void *opaque, const rd_kafka_message_t *rkm) {
    score_tally_t *t = opaque;
    rs_score_t sc;
    char errstr[256];
    int i;
    t->n++;
    if (rs_score_from_json(rkm->payload, rkm->len, &sc, errstr,
                           sizeof(errstr)) != RS_OK ||
        sscanf(sc.event_id, "ev-%d", &i) != 1 || i < 0 || i >= NEV) {
        t->bad++;
        return;
    }
    if (t->cnt[i]++ == 0) {
        t->first[i] = malloc(rkm->len);
        memcpy(t->first[i], rkm->payload, rkm->len);
        t->first_len[i] = rkm->len;
    } else if (t->first_len[i] != rkm->len ||
               memcmp(t->first[i], rkm->payload, rkm->len)) {
        t->differ++;
    }
}

static score_tally_t *tally_read(const env_t *env, const char *topic,
                                 const char *isolation, int expect) {
    score_tally_t *t = calloc(1, sizeof(*t));
    read_topic(env->boot, topic, isolation, expect, 1500, 30000, score_cb, t);
    return t;
}

static void tally_free(score_tally_t *t) {
    for (int i = 0; i < NEV; i++) free(t->first[i]);
    free(t);
}

static rs_sink_kafka_t *new_txn_sink(const env_t *env, const char *suffix) {
    char errstr[512], tid[128];
    snprintf(tid, sizeof(tid), "%s-%s", env->ns, suffix);
    rs_kv_t kv;
    rs_kv_init(&kv);
    if (getenv("RS_TEST_KAFKA_DEBUG")) /* e.g. eos,msg */
        rs_kv_set(&kv, "debug", getenv("RS_TEST_KAFKA_DEBUG"));
    rs_sink_kafka_t *sink = rs_sink_kafka_new_txn(
        &kv, env->boot, env->scores, env->alerts, RS_FORMAT_JSON, tid,
        errstr, sizeof(errstr));
    rs_kv_free(&kv);
    if (!sink) fprintf(stderr, "rs_sink_kafka_new_txn: %s\n", errstr);
    assert_non_null(sink);
    return sink;
}

static void publish_range(rs_sink_kafka_t *sink, int from, int to,
                          uint64_t seq, int decline_every) {
    for (int i = from; i < to; i++) {
        rs_score_t sc;
        make_score(i,
                   decline_every && i % decline_every == 0
                       ? RS_DECISION_DECLINE : RS_DECISION_APPROVE,
                   &sc);
        assert_int_equal(rs_sink_kafka_publish(sink, &sc, seq), RS_OK);
    }
}

/* After an abortable error: abort (keeping the messages), begin (which
 * produces them again) and commit, until it commits.  Returns the number
 * of redos.  librdkafka 2.0.2: after a produce failed for good, the next
 * transaction fails once more ("skipped sequence numbers": the failed
 * messages left a gap) before the producer epoch is bumped, so one
 * failure may take two redos. */
static int redo_until_committed(rs_sink_kafka_t *sink,
                                const rs_ingest_pos_t *pos, int n,
                                const char *const topics[2],
                                rd_kafka_consumer_group_metadata_t *cgmd) {
    char errstr[512];
    for (int redo = 1; redo <= 3; redo++) {
        assert_int_equal(rs_sink_kafka_txn_abort(sink, RS_SINK_TXN_RETRY,
                                                 30000, errstr,
                                                 sizeof(errstr)), RS_OK);
        assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
        rs_err_t err = rs_sink_kafka_txn_commit(sink, pos, n, topics, cgmd,
                                                30000, errstr, sizeof(errstr));
        if (err == RS_OK) return redo;
        printf("redo %d: %s: %s\n", redo, rs_err_str(err), errstr);
        assert_int_equal(err, RS_ERR_AGAIN);
    }
    fail_msg("transaction not committed after 3 redos");
    return -1;
}

/* ------------------------------------------------------------------ tests */

/* Commit, abort-discard, abort-retry (redo by the next begin): what is
 * acknowledged when, what the topics hold. */
static void test_txn_commit_abort(void **state) {
    (void)state;
    char errstr[512];
    env_t env;
    env_open(&env, "ca", 2);
    rs_sink_kafka_t *sink = new_txn_sink(&env, "tx");
    rs_score_t sc;
    make_score(0, RS_DECISION_APPROVE, &sc);

    /* Outside a transaction. */
    assert_int_equal(rs_sink_kafka_txn_open(sink), 0);
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 1), RS_ERR_STATE);
    assert_int_equal(rs_sink_kafka_txn_commit(sink, NULL, 0, NULL, NULL, 1000,
                                              errstr, sizeof(errstr)),
                     RS_ERR_STATE);
    assert_int_equal(rs_sink_kafka_txn_abort(sink, RS_SINK_TXN_RETRY, 1000,
                                             errstr, sizeof(errstr)), RS_OK);

    /* 1: committed.  ev-0..9, declines 0, 5 also to alerts. */
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_ERR_STATE);
    assert_int_equal(rs_sink_kafka_txn_open(sink), 1);
    publish_range(sink, 0, 10, 1, 5);
    assert_int_equal(rs_sink_kafka_txn_commit(sink, NULL, 0, NULL, NULL,
                                              30000, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 1);

    /* 2: aborted, discarded.  ev-100..104 (decline 100). */
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    publish_range(sink, 100, 105, 2, 5);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 2), RS_OK);
    assert_int_equal(rs_sink_kafka_flush(sink, 30000), RS_OK); /* written */
    assert_int_equal(rs_sink_kafka_acked(sink), 1);
    assert_int_equal(rs_sink_kafka_txn_abort(sink, RS_SINK_TXN_DISCARD, 30000,
                                             errstr, sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 2); /* done with it */

    /* 3: delivered but not committed -> not acknowledged; aborted with
     * RETRY, redone by the next begin, then committed.  ev-200..204. */
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    publish_range(sink, 200, 205, 3, 5);
    assert_int_equal(rs_sink_kafka_batch_end(sink, 3), RS_OK);
    assert_int_equal(rs_sink_kafka_flush(sink, 30000), RS_OK);
    rs_sink_kafka_stats_t st;
    rs_sink_kafka_stats(sink, &st);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(rs_sink_kafka_acked(sink), 2);
    assert_int_equal(rs_sink_kafka_txn_abort(sink, RS_SINK_TXN_RETRY, 30000,
                                             errstr, sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 2);
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK); /* redo */
    assert_int_equal(rs_sink_kafka_txn_commit(sink, NULL, 0, NULL, NULL,
                                              30000, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 3);
    /* A batch that ended with its transaction takes nothing more. */
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 3), RS_ERR_STATE);
    /* An empty batch is acknowledged with its transaction too. */
    assert_int_equal(rs_sink_kafka_batch_end(sink, 4), RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 3);
    assert_int_equal(rs_sink_kafka_txn_commit(sink, NULL, 0, NULL, NULL,
                                              30000, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 4);

    rs_sink_kafka_stats(sink, &st);
    printf("txn sink: published %llu alerts %llu delivered %llu commits %llu "
           "aborts %llu redone %llu\n", (unsigned long long)st.published,
           (unsigned long long)st.alerts, (unsigned long long)st.delivered,
           (unsigned long long)st.txn_commits,
           (unsigned long long)st.txn_aborts, (unsigned long long)st.retries);
    assert_int_equal(st.txn_commits, 3);
    assert_int_equal(st.txn_aborts, 2);
    assert_int_equal(st.retries, 5 + 1); /* ev-200..204 + alert of 200 */
    assert_int_equal(st.published, 20);
    rs_sink_kafka_destroy(sink);

    /* Everything written: 10 + 5 aborted + 5 aborted + 5 redone; the redo
     * is byte for byte the aborted transaction. */
    score_tally_t *t = tally_read(&env, env.scores, "read_uncommitted", 25);
    assert_int_equal(t->n, 25);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->differ, 0);
    for (int i = 0; i < 10; i++) assert_int_equal(t->cnt[i], 1);
    for (int i = 100; i < 105; i++) assert_int_equal(t->cnt[i], 1);
    for (int i = 200; i < 205; i++) assert_int_equal(t->cnt[i], 2);
    tally_free(t);

    /* What a read_committed consumer sees: exactly the committed scores
     * and alerts (strict), or everything (mock without markers). */
    t = tally_read(&env, env.scores, "read_committed", 15);
    score_tally_t *ta = tally_read(&env, env.alerts, "read_committed", 3);
    printf("read_committed: %d scores, %d alerts\n", t->n, ta->n);
    if (env.markers) {
        assert_int_equal(t->n, 15);
        for (int i = 0; i < 10; i++) assert_int_equal(t->cnt[i], 1);
        for (int i = 100; i < 105; i++) assert_int_equal(t->cnt[i], 0);
        for (int i = 200; i < 205; i++) assert_int_equal(t->cnt[i], 1);
        assert_int_equal(ta->n, 3); /* ev-0, ev-5, ev-200 */
        assert_int_equal(ta->cnt[200], 1);
        assert_int_equal(ta->cnt[100], 0);
    } else {
        assert_int_equal(t->n, 25);
        assert_int_equal(ta->n, 5);
    }
    tally_free(t);
    tally_free(ta);
    env_close(&env);
}

/* The pipeline: exactly-once consumer -> scores in transactions with the
 * input offsets; one transaction fails (injected produce error, mock
 * only) and is redone.  The offsets are committed only by the
 * transactions; a read_committed reader sees every score once (strict). */
static void test_txn_pipeline(void **state) {
    (void)state;
    char errstr[512], group[128];
    static rs_msg_t msgs[64];
    static char buf[RS_ENCODE_MAX];
    const int N = 60, P = 2;
    env_t env;
    env_open(&env, "pl", P);
    snprintf(group, sizeof(group), "%s-g", env.ns);

    rd_kafka_t *prod = rs_kafka_producer_new(NULL, env.boot, errstr,
                                             sizeof(errstr));
    assert_non_null(prod);
    for (int i = 0; i < N; i++) {
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.id, sizeof(ev.id), "ev-%d", i);
        snprintf(ev.type, sizeof(ev.type), "card");
        snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%d", i % 7);
        ev.event_time_ms = BASE_MS + i;
        ev.amount = 1 + i;
        int len = rs_event_encode(RS_FORMAT_JSON, &ev, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(rs_test_kafka_produce_sync(prod, env.events,
                                                    ev.entity_id,
                                                    strlen(ev.entity_id), buf,
                                                    (size_t)len), 0);
    }

    rs_ingest_conf_t conf;
    rs_ingest_conf_init(&conf);
    snprintf(conf.group_id, sizeof(conf.group_id), "%s", group);
    snprintf(conf.topic_events, sizeof(conf.topic_events), "%s", env.events);
    snprintf(conf.topic_labels, sizeof(conf.topic_labels), "%s", env.labels);
    snprintf(conf.topic_dlq, sizeof(conf.topic_dlq), "%s", env.dlq);
    conf.exactly_once = 1;
    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_kv_set(&kv, "consumer.session.timeout.ms", "6000");
    rs_kv_set(&kv, "consumer.heartbeat.interval.ms", "500");
    rs_ingest_t *ing = rs_ingest_new(&conf, &kv, env.boot, errstr,
                                     sizeof(errstr));
    if (!ing) fprintf(stderr, "rs_ingest_new: %s\n", errstr);
    assert_non_null(ing);
    rs_sink_kafka_t *sink = new_txn_sink(&env, "tx");
    const char *const topics[2] = {env.events, env.labels};

    rs_ingest_pos_t pos[2 * 8];  /* [topic * 8 + partition] */
    for (int i = 0; i < 16; i++)
        pos[i] = (rs_ingest_pos_t){i / 8, i % 8, -1};
    int consumed = 0, since_commit = 0, commits = 0, redone = 0;
    uint64_t seq = 0;
    int64_t deadline = rs_clock_mono_us() + 90000000LL;
    while (consumed < N && rs_clock_mono_us() < deadline) {
        int n = rs_ingest_poll(ing, msgs, 16, 100);
        assert_true(n >= 0);
        if (n == 0) continue;
        if (!rs_sink_kafka_txn_open(sink)) {
            if (commits == 1 && env.cl && !redone)
                /* The second transaction's produce fails: abortable. */
                rd_kafka_mock_push_request_errors(
                    rs_cluster_mock(env.cl), 0, 1,
                    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
            assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
        }
        seq++;
        for (int i = 0; i < n; i++) {
            const rs_msg_t *m = &msgs[i];
            assert_int_equal(m->kind, RS_MSG_EVENT);
            assert_int_equal(m->replay, 0);
            int id;
            assert_int_equal(sscanf(m->ev.id, "ev-%d", &id), 1);
            rs_score_t sc;
            make_score(id, RS_DECISION_APPROVE, &sc);
            assert_int_equal(rs_sink_kafka_publish(sink, &sc, seq), RS_OK);
            pos[m->topic * 8 + m->partition].offset = m->offset + 1;
        }
        assert_int_equal(rs_sink_kafka_batch_end(sink, seq), RS_OK);
        assert_int_equal(rs_ingest_store(ing, msgs, n), RS_OK);
        consumed += n;
        since_commit += n;
        if (since_commit < 20 && consumed < N) continue;
        for (int attempt = 0;; attempt++) {
            assert_true(attempt < 5);
            rd_kafka_consumer_group_metadata_t *cgmd =
                rs_ingest_group_metadata(ing);
            rs_err_t err = rs_sink_kafka_txn_commit(sink, pos, 16, topics,
                                                    cgmd, 30000, errstr,
                                                    sizeof(errstr));
            rd_kafka_consumer_group_metadata_destroy(cgmd);
            if (err == RS_OK) break;
            printf("commit %d: %s: %s\n", commits + 1, rs_err_str(err),
                   errstr);
            if (err == RS_ERR_TIMEOUT) continue;
            assert_int_equal(err, RS_ERR_AGAIN);
            assert_int_equal(rs_sink_kafka_txn_abort(sink, RS_SINK_TXN_RETRY,
                                                     30000, errstr,
                                                     sizeof(errstr)), RS_OK);
            assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
            redone++;
        }
        assert_int_equal(rs_sink_kafka_acked(sink), seq);
        commits++;
        since_commit = 0;
    }
    assert_int_equal(consumed, N);
    printf("pipeline: %d events, %d commits, %d redone\n", consumed, commits,
           redone);
    if (env.cl) assert_true(redone >= 1 && redone <= 2); /* see redo_until */
    rs_ingest_destroy(ing);
    rs_sink_kafka_destroy(sink);

    /* Offsets: committed by the transactions only. */
    int64_t offs[2];
    committed(env.boot, group, env.events, offs, P);
    printf("committed offsets: %lld %lld\n", (long long)offs[0],
           (long long)offs[1]);
    if (env.txn_offsets) {
        for (int p = 0; p < P; p++) assert_int_equal(offs[p], pos[p].offset);
        assert_int_equal(offs[0] + offs[1], N);
    } else {
        /* The mock drops transactional offsets: anything committed would
         * have come from the consumer committing on its own. */
        for (int p = 0; p < P; p++)
            assert_int_equal(offs[p], RD_KAFKA_OFFSET_INVALID);
    }

    /* Scores: every event; exactly once for a read_committed reader. */
    score_tally_t *t = tally_read(&env, env.scores, "read_committed", N);
    printf("read_committed: %d scores for %d events\n", t->n, N);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->differ, 0);
    for (int i = 0; i < N; i++) {
        assert_true(t->cnt[i] >= 1);
        if (env.markers) assert_int_equal(t->cnt[i], 1);
        else assert_true(t->cnt[i] <= 1 + redone); /* failed attempts */
    }
    if (env.markers) assert_int_equal(t->n, N);
    tally_free(t);

    /* Restart from a checkpoint at the beginning: what the transactions
     * committed comes back as replay (needs transactional offsets; with
     * the mock the replay path is covered by test_ingest). */
    if (env.txn_offsets) {
        ing = rs_ingest_new(&conf, &kv, env.boot, errstr, sizeof(errstr));
        assert_non_null(ing);
        rs_ingest_pos_t start[2] = {{RS_MSG_TOPIC_EVENTS, 0, 0},
                                    {RS_MSG_TOPIC_EVENTS, 1, 0}};
        assert_int_equal(rs_ingest_set_start(ing, start, 2), RS_OK);
        int seen = 0, replays = 0;
        deadline = rs_clock_mono_us() + 60000000LL;
        while (seen < N && rs_clock_mono_us() < deadline) {
            int n = rs_ingest_poll(ing, msgs, 64, 100);
            assert_true(n >= 0);
            for (int i = 0; i < n; i++) replays += msgs[i].replay;
            seen += n;
        }
        assert_int_equal(seen, N);
        assert_int_equal(replays, N);
        rs_ingest_destroy(ing);
    }
    rs_kv_free(&kv);
    rd_kafka_destroy(prod);
    env_close(&env);
}

/* Error classes, with faults injected into the mock: retriable (slow
 * EndTxn), abortable (failed produce; offsets refused), fatal (fenced);
 * misuse.  An abort-redo after each recoverable error commits. */
static void test_txn_errors(void **state) {
    (void)state;
    char errstr[512], group[128];
    if (getenv("RS_TEST_KAFKA_BROKERS") && *getenv("RS_TEST_KAFKA_BROKERS")) {
        fprintf(stderr, "SKIP test_txn_errors: needs the mock cluster\n");
        skip();
    }
    env_t env;
    env_open(&env, "err", 1);
    rd_kafka_mock_cluster_t *mc = rs_cluster_mock(env.cl);
    snprintf(group, sizeof(group), "%s-g", env.ns);
    const char *const topics[2] = {env.events, env.labels};
    rs_ingest_pos_t pos = {RS_MSG_TOPIC_EVENTS, 0, 10};
    rs_sink_kafka_t *sink = new_txn_sink(&env, "tx");
    rd_kafka_consumer_group_metadata_t *cgmd =
        rd_kafka_consumer_group_metadata_new(group);

    /* Retriable: EndTxn answers after 3 s, the commit waits 1 s. */
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    publish_range(sink, 0, 5, 1, 0);
    rd_kafka_mock_broker_push_request_error_rtts(mc, 1, 26 /* EndTxn */, 1,
                                                 RD_KAFKA_RESP_ERR_NO_ERROR,
                                                 3000);
    rs_err_t err = rs_sink_kafka_txn_commit(sink, &pos, 1, topics, cgmd, 1000,
                                            errstr, sizeof(errstr));
    printf("slow EndTxn: %s: %s\n", rs_err_str(err), errstr);
    assert_int_equal(err, RS_ERR_TIMEOUT);
    assert_int_equal(rs_sink_kafka_txn_open(sink), 1);
    assert_int_equal(rs_sink_kafka_acked(sink), 0);
    assert_int_equal(rs_sink_kafka_txn_commit(sink, &pos, 1, topics, cgmd,
                                              30000, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(rs_sink_kafka_acked(sink), 1);

    /* Abortable: a produce of the transaction fails. */
    rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    publish_range(sink, 10, 15, 2, 0);
    err = rs_sink_kafka_txn_commit(sink, &pos, 1, topics, cgmd, 30000, errstr,
                                   sizeof(errstr));
    printf("failed produce: %s: %s\n", rs_err_str(err), errstr);
    assert_int_equal(err, RS_ERR_AGAIN);
    assert_int_equal(rs_sink_kafka_acked(sink), 1);
    int redos = redo_until_committed(sink, &pos, 1, topics, cgmd);
    printf("failed produce: committed after %d redo(s)\n", redos);
    assert_int_equal(rs_sink_kafka_acked(sink), 2);

    /* Abortable: the group coordinator refuses the offsets (a stale
     * generation after a rebalance): the scores are not committed either. */
    rs_sink_kafka_stats_t st0, st;
    rs_sink_kafka_stats(sink, &st0);
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    publish_range(sink, 20, 25, 3, 0);
    rd_kafka_mock_push_request_errors(mc, 28 /* TxnOffsetCommit */, 1,
                                      RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
    err = rs_sink_kafka_txn_commit(sink, &pos, 1, topics, cgmd, 30000, errstr,
                                   sizeof(errstr));
    printf("offsets refused: %s: %s\n", rs_err_str(err), errstr);
    assert_int_equal(err, RS_ERR_AGAIN);
    rs_sink_kafka_stats(sink, &st);
    assert_int_equal(st.txn_commits, st0.txn_commits);
    assert_int_equal(rs_sink_kafka_acked(sink), 2);
    assert_int_equal(redo_until_committed(sink, &pos, 1, topics, cgmd), 1);
    assert_int_equal(rs_sink_kafka_acked(sink), 3);

    /* Misuse: positions without group metadata, bad topic index. */
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    assert_int_equal(rs_sink_kafka_txn_commit(sink, &pos, 1, topics, NULL,
                                              1000, errstr, sizeof(errstr)),
                     RS_ERR_INVALID);
    rs_ingest_pos_t badpos = {7, 0, 1};
    assert_int_equal(rs_sink_kafka_txn_commit(sink, &badpos, 1, topics, cgmd,
                                              1000, errstr, sizeof(errstr)),
                     RS_ERR_INVALID);

    /* Fatal: fenced by a newer instance. */
    publish_range(sink, 30, 35, 4, 0);
    /* Per broker: once broker 1 has an EndTxn error stack (the delay
     * above), the mock ignores the cluster-wide one for EndTxn. */
    rd_kafka_mock_broker_push_request_error_rtts(
        mc, 1, 26 /* EndTxn */, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, 0);
    err = rs_sink_kafka_txn_commit(sink, &pos, 1, topics, cgmd, 30000, errstr,
                                   sizeof(errstr));
    printf("fenced: %s: %s\n", rs_err_str(err), errstr);
    assert_int_equal(err, RS_ERR_KAFKA);
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_ERR_KAFKA);
    rs_score_t sc;
    make_score(40, RS_DECISION_APPROVE, &sc);
    assert_int_equal(rs_sink_kafka_publish(sink, &sc, 5), RS_ERR_KAFKA);
    assert_int_equal(rs_sink_kafka_poll(sink, 0), RS_ERR_KAFKA);
    assert_int_equal(rs_sink_kafka_acked(sink), 3);
    rs_sink_kafka_destroy(sink); /* must not hang */
    rd_kafka_consumer_group_metadata_destroy(cgmd);

    /* Destroy with an open transaction aborts it. */
    sink = new_txn_sink(&env, "tx2");
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_OK);
    publish_range(sink, 50, 52, 1, 0);
    rs_sink_kafka_destroy(sink);

    /* Not transactional: the txn calls are misuse; transactional.id only
     * through rs_sink_kafka_new_txn. */
    sink = rs_sink_kafka_new(NULL, env.boot, env.scores, NULL, RS_FORMAT_JSON,
                             errstr, sizeof(errstr));
    assert_non_null(sink);
    assert_int_equal(rs_sink_kafka_txn_begin(sink), RS_ERR_STATE);
    assert_int_equal(rs_sink_kafka_txn_commit(sink, NULL, 0, NULL, NULL, 1000,
                                              errstr, sizeof(errstr)),
                     RS_ERR_STATE);
    assert_int_equal(rs_sink_kafka_txn_abort(sink, 0, 1000, errstr,
                                             sizeof(errstr)), RS_ERR_STATE);
    rs_sink_kafka_destroy(sink);
    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_kv_set(&kv, "producer.transactional.id", "x");
    assert_null(rs_sink_kafka_new(&kv, env.boot, env.scores, NULL,
                                  RS_FORMAT_JSON, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "transactional.id"));
    assert_null(rs_sink_kafka_new_txn(&kv, env.boot, env.scores, NULL,
                                      RS_FORMAT_JSON, "y", errstr,
                                      sizeof(errstr)));
    rs_kv_free(&kv);
    assert_null(rs_sink_kafka_new_txn(NULL, env.boot, env.scores, NULL,
                                      RS_FORMAT_JSON, "", errstr,
                                      sizeof(errstr)));
    env_close(&env);
}

int main(void) {
    if (getenv("RS_TEST_KAFKA_DEBUG")) rs_log_set_level(RS_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txn_commit_abort),
        cmocka_unit_test(test_txn_pipeline),
        cmocka_unit_test(test_txn_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
