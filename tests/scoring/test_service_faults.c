/* test_service_faults.c -- the whole scoring service under Kafka faults.
 *
 * Each test runs the real service (rs_service_new + rs_service_run on its
 * own thread, at-least-once) against a 3-broker librdkafka mock cluster
 * (topics events, labels, scores, alerts, events.dlq; 4 partitions each,
 * replication 3, leaders placed explicitly) and a private redis-server.
 * A feeder thread produces N JSON events with unique ids ("ev-<i>") at a
 * paced rate; faults are injected while that stream flows; then the test
 * stops the service (stop flag) and checks that it recovered by itself:
 *   - rs_service_run returned RS_OK;
 *   - stats: scored == N (single instance), rejected == 0;
 *   - Redis holds rs:score:ev-<i> for every i, and no other score key;
 *   - the scores topic, read back from the beginning, has >= 1 score for
 *     every id (duplicates are reported, not failed: at-least-once);
 *   - the group's committed offsets reached the end of every events
 *     partition while the service still ran (the background committer
 *     recovered) and after the stop (nothing would be read again after a
 *     restart);
 *   - the injected errors were consumed (broker error stacks drained), so
 *     the fault really hit the service's clients.
 * A result line per test is printed ("faults: <test> ...").
 *
 * Faults and what the mock of librdkafka 2.0.2 (Debian 12) can model
 *  (1) Produce errors on the scores producer: retriable request errors
 *      (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS,
 *      LEADER_NOT_AVAILABLE, a 500 ms slow response, a disconnect) pushed
 *      repeatedly, then permanent ones (TOPIC_AUTHORIZATION_FAILED: the
 *      delivery fails and the sink must produce the copy again).  Errors
 *      are pushed per broker (rd_kafka_mock_broker_push_request_error_rtts)
 *      on brokers 2 and 3, which lead only the output topics; the events
 *      topic lives on broker 1, so the feeder is never hit and
 *      rd_kafka_mock_broker_error_stack_cnt proves the service consumed
 *      every error.
 *  (2) Fetch errors on the consumer: NOT_LEADER_FOR_PARTITION,
 *      UNKNOWN_TOPIC_OR_PART, KAFKA_STORAGE_ERROR, REQUEST_TIMED_OUT,
 *      disconnects and 2 s slow fetches, on every broker.  Not injected:
 *      OFFSET_OUT_OF_RANGE (not transient: it triggers the
 *      topics.offset_reset policy, i.e. a deliberate re-read, tested in
 *      tests/ingest) and leader-epoch errors.
 *  (3) OffsetCommit errors at the coordinator (COORDINATOR_NOT_AVAILABLE,
 *      NOT_COORDINATOR, REQUEST_TIMED_OUT, COORDINATOR_LOAD_IN_PROGRESS)
 *      during the stream; the background auto-commit must catch up while
 *      the service still runs (checked before the stop, so the final
 *      synchronous commit does not hide a stuck committer).
 *  (4) Brokers down: rd_kafka_mock_broker_set_down closes the broker's
 *      connections and refuses new ones but does NOT move leadership, so
 *      the partitions it leads are unavailable until set_up.  Phase A:
 *      broker 2 down 3 s (no failover), phase B: broker 3 down 3 s with
 *      its partitions' leadership moved to broker 1
 *      (rd_kafka_mock_partition_set_leader: a controller failover).  The
 *      mock has no replication lag: a moved partition keeps every message
 *      (no unclean election / truncation can be modelled).
 *  (5) Coordinator change: rd_kafka_mock_coordinator_set only changes what
 *      FindCoordinator answers; the old coordinator keeps serving the
 *      group (the mock checks that SOME coordinator exists, not that it is
 *      the receiving broker), and librdkafka re-queries the coordinator
 *      only on errors (coordinator.query.interval.ms 10 min).  probe
 *      _coordinator() shows this on its own small cluster at the start of
 *      the test.  So a move is made visible the way a real broker does:
 *      NOT_COORDINATOR from the old one (phase A), or the old one going
 *      down (phase B).
 *  (6) Rebalance: a second service instance joins the group mid-stream,
 *      then stops (graceful: commit, LeaveGroup); every event must be in
 *      Redis exactly once (SET NX), scores may repeat.  The mock delays a
 *      join into a non-empty group by session.timeout.ms - 1 s, so this
 *      test uses a 6 s session timeout (and a 10 s max.poll.interval.ms:
 *      a JoinGroup the mock dropped, below, is sent again after 13 s).
 *      The partitions handed back start at their state (restored from
 *      B's changelog), above the offsets the group holds when B's last
 *      commits were refused (see below); the committed offsets must
 *      still reach the end while A runs, also on a partition with no
 *      event after the hand-back (the start is stored for the
 *      auto-commit: test_ingest test_state_ahead).
 *  Not modellable with this mock: transaction markers (see test_txn.c),
 *  partial replication / ISR shrink (NOT_ENOUGH_REPLICAS can only be
 *  injected), log truncation on leader change.
 *
 * Mock limitations that shape the checks (librdkafka 2.0.2)
 *  - Producer sequence numbers are validated only for TRANSACTIONAL
 *    producers.  An idempotent producer with more than one request in
 *    flight whose request is refused (NOT_LEADER_FOR_PARTITION) while a
 *    later one is accepted treats the refused messages as delivered
 *    (implicit ack: a success report with offset -1001) and they never
 *    reach the log; a real broker refuses the later request with
 *    OUT_OF_ORDER_SEQUENCE_NUMBER.  probe_idempotence() shows it with
 *    librdkafka alone.  So every producer here (service, feeder) runs with
 *    max.in.flight.requests.per.connection=1, idempotence kept;
 *    RS_TEST_MAX_INFLIGHT=5 runs them as in production (then (1) loses
 *    scores on the topic although the service did everything right).
 *  - No duplicate detection either: a request the mock appended but whose
 *    response was lost (injected disconnect) is appended again by the
 *    retry, a duplicate a real broker would drop.
 *  - OffsetCommit while the group is rebalancing is refused
 *    (REBALANCE_IN_PROGRESS; a real broker accepts the current
 *    generation's commits then), so the commit on revoke fails and the
 *    new owner re-reads from the last auto-commit: (6) re-scores a few
 *    hundred events.
 *  - rd_kafka_mock_broker_error_stack_cnt leaves *cnt unset while a
 *    broker has no error stack for the ApiKey (hence the 0 initialisers).
 *  - A JoinGroup can go unanswered.  The coordinator parks each member's
 *    JoinGroup response until its rebalance timer elects a leader
 *    (session.timeout.ms - 1 s after a join into a non-empty group), and
 *    its session timer (every 1 s) destroys a member whose last activity
 *    is older than session.timeout.ms together with the parked response
 *    (rdkafka_mock_cgrp.c: rd_kafka_mock_cgrp_session_tmr_cb ->
 *    rd_kafka_mock_cgrp_member_destroy; a real broker keeps a member
 *    that awaits its join).  A joining member is 1 s from that: if the
 *    process is stalled across the election (seconds under load on a
 *    shared box), the session tick due before it runs first and drops
 *    every parked response; the coordinator connection also stays
 *    blocked (no POLLIN while a JoinGroup is parked).  The client waits
 *    for its JoinGroup request timeout, max.poll.interval.ms + 3 s, then
 *    disconnects and joins again.  So (6) runs with a 10 s poll interval
 *    (a dropped join costs 13 s, not 303 s).
 *
 * Small N (3000-4000 events at 200-400/s): far below the mock's ~5 MB
 * per partition retention; each test takes 20-40 s (the mock's first
 * group join alone waits 3 s).
 * Environment: RS_TEST_LOG=debug|info|warn|error|off (default warn),
 * RS_TEST_KAFKA_DEBUG=cgrp,... (librdkafka debug contexts of the service),
 * RS_TEST_FILTER="test_fetch*" (cmocka filter), RS_TEST_MAX_INFLIGHT.
 */
#define _GNU_SOURCE
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

#include "scoring/scoring.h"
#include "tests/support/rs_test_kafka.h"
#include "tests/support/rs_test_redis.h"
#include "tests/support/rs_test_svc.h"

#define NPART 4
#define NBROKERS 3
#define BASE_MS 1700000000000LL
#define WAIT_DONE_MS 120000 /* the whole stream scored, else "hang"    */
#define JOIN_MS 120000      /* rs_service_run returns after the stop   */

static const char *const topics[] = {"events", "labels", "scores", "alerts",
                                     "events.dlq"};
enum { T_EVENTS, T_LABELS, T_SCORES, T_ALERTS, T_DLQ, T_N };

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void) { return (double)rs_clock_mono_us() / 1e6; }

/* max.in.flight.requests.per.connection of every producer of the tests:
 * "1" unless RS_TEST_MAX_INFLIGHT says otherwise (see the header). */
static const char *max_inflight(void) {
    const char *v = getenv("RS_TEST_MAX_INFLIGHT");
    return v && *v ? v : "1";
}

/* ------------------------------------------------------------ environment */

typedef enum layout_e {
    LAYOUT_SPREAD, /* partition p of every topic on broker p % 3 + 1       */
    LAYOUT_SPLIT,  /* events, labels on 1; scores, alerts, dlq on 2 and 3  */
    LAYOUT_ONE     /* every partition on broker 1                          */
} layout_t;

typedef struct fenv_s {
    const char *name;
    rs_cluster_t *cl;
    rd_kafka_mock_cluster_t *mc;
    char boot[512];
    rs_test_redis_t *redis;
    char group[64];
    double t0;
} fenv_t;

static int leader_of(layout_t layout, int topic, int p) {
    switch (layout) {
    case LAYOUT_SPLIT: return topic <= T_LABELS ? 1 : 2 + p % 2;
    case LAYOUT_ONE: return 1;
    default: return p % NBROKERS + 1;
    }
}

static void env_open(fenv_t *e, const char *name, layout_t layout,
                     int coordinator) {
    char errstr[512];
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->t0 = now_s();
    e->cl = rs_cluster_new(NBROKERS, topics, T_N, NPART, errstr,
                           sizeof(errstr));
    if (!e->cl) fail_msg("mock cluster: %s", errstr);
    e->mc = rs_cluster_mock(e->cl);
    snprintf(e->boot, sizeof(e->boot), "%s", rs_cluster_bootstraps(e->cl));
    for (int t = 0; t < T_N; t++)
        for (int p = 0; p < NPART; p++)
            assert_int_equal(rd_kafka_mock_partition_set_leader(
                                 e->mc, topics[t], p, leader_of(layout, t, p)),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
    snprintf(e->group, sizeof(e->group), "rs-faults-%s", name);
    assert_int_equal(rd_kafka_mock_coordinator_set(e->mc, "group", e->group,
                                                   coordinator),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    e->redis = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    if (!e->redis) fail_msg("redis: %s", errstr);
}

static void env_close(fenv_t *e) {
    rs_test_redis_destroy(e->redis);
    rs_cluster_destroy(e->cl);
    e->redis = NULL;
    e->cl = NULL;
}

static size_t stack_cnt(fenv_t *e, int broker, int16_t api) {
    size_t n = 0;
    assert_int_equal(rd_kafka_mock_broker_error_stack_cnt(e->mc, broker, api,
                                                          &n),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    return n;
}

/* Wait until the error stacks of `api` on brokers[0..nb) are empty. */
static int wait_drained(fenv_t *e, const int *brokers, int nb, int16_t api,
                        int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    for (;;) {
        size_t left = 0;
        for (int i = 0; i < nb; i++) left += stack_cnt(e, brokers[i], api);
        if (!left) return 1;
        if (now_s() > deadline) {
            printf("faults: %s: %zu injected error(s) of ApiKey %d not "
                   "consumed within %d ms\n", e->name, left, (int)api,
                   timeout_ms);
            return 0;
        }
        sleep_ms(20);
    }
}

/* ---------------------------------------------------------------- service */

/* Configure (defaults + the test's Kafka properties) and start one
 * instance (tests/support/rs_test_svc.h). */
static void svc_start(rs_test_svc_t *s, fenv_t *e, const char *label,
                      const char *const *kafka_kv) {
    rs_test_svc_conf_at(s, e->boot, rs_test_redis_url(e->redis), NPART,
                        e->group, NULL);
    s->label = label;
    s->join_ms = JOIN_MS;
    s->app.service.exit_idle_ms = 0; /* the test stops it */
    /* See "Mock limitation" in the header: one request in flight per
     * connection, idempotence kept. */
    rs_kv_set(&s->app.kafka, "producer.max.in.flight.requests.per.connection",
              max_inflight());
    for (int i = 0; kafka_kv && kafka_kv[i]; i += 2)
        rs_kv_set(&s->app.kafka, kafka_kv[i], kafka_kv[i + 1]);
    const char *dbg = getenv("RS_TEST_KAFKA_DEBUG");
    if (dbg && *dbg) rs_kv_set(&s->app.kafka, "debug", dbg);
    rs_test_svc_run(s);
}

/* Set the stop flag and join (a hang exits the process), with a line. */
static void svc_stop(rs_test_svc_t *s) {
    if (!s->started) return;
    rs_test_svc_stop(s);
    printf("faults: %s returned %.1f s after the stop flag\n", s->label,
           s->stop_s);
}

/* ----------------------------------------------------------------- feeder */

typedef struct feeder_s {
    const char *boot;
    int n;
    double rate;           /* events/s                                */
    pthread_t th;
    int started;           /* thread not joined yet                   */
    _Atomic int produced;
    _Atomic int limit;     /* events [limit, n) wait (feeder_hold)     */
    _Atomic int done;
    int flush_err;         /* 1: not every event delivered in 60 s    */
    uint64_t failed0;
} feeder_t;

static int event_json(int i, char *buf, size_t size, char *key,
                      size_t ksize) {
    snprintf(key, ksize, "card-%d", i % 97);
    return snprintf(buf, size,
                    "{\"id\":\"ev-%d\",\"type\":\"card_tx\","
                    "\"entity_id\":\"card-%d\",\"counterparty_id\":\"m-%d\","
                    "\"event_time_ms\":%lld,\"amount\":%d.%02d,"
                    "\"numeric_fields\":{\"hour_of_day\":%d},"
                    "\"categorical_fields\":{\"mcc\":\"5411\","
                    "\"country\":\"%s\",\"channel\":\"pos\"}}",
                    i, i % 97, i % 31, BASE_MS + (long long)i * 1000,
                    1 + (i * 37) % 900, i % 100, (i / 60) % 24,
                    i % 11 ? "DE" : "BR");
}

static void *feeder_main(void *arg) {
    feeder_t *f = arg;
    char errstr[512], buf[1024], key[32];
    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_kv_set(&kv, "max.in.flight.requests.per.connection", max_inflight());
    rd_kafka_t *rk = rs_kafka_producer_new(&kv, f->boot, errstr,
                                           sizeof(errstr));
    rs_kv_free(&kv);
    if (!rk) {
        fprintf(stderr, "feeder: %s\n", errstr);
        f->flush_err = 1;
        atomic_store(&f->done, 1);
        return NULL;
    }
    int64_t start = rs_clock_mono_us();
    for (int i = 0; i < f->n; i++) {
        if (i >= atomic_load(&f->limit)) {
            /* Held: the test needs new input to arrive only after it has
             * armed a fault; the pace starts afresh when released. */
            while (i >= atomic_load(&f->limit)) {
                rd_kafka_poll(rk, 0);
                sleep_ms(10);
            }
            start = rs_clock_mono_us() - (int64_t)((double)i * 1e6 / f->rate);
        }
        int64_t due = start + (int64_t)((double)i * 1e6 / f->rate);
        int64_t now = rs_clock_mono_us();
        if (due > now) {
            rd_kafka_poll(rk, 0);
            sleep_ms((int)((due - now) / 1000));
        }
        int len = event_json(i, buf, sizeof(buf), key, sizeof(key));
        for (;;) {
            rd_kafka_resp_err_t kerr = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topics[T_EVENTS]),
                RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(buf, (size_t)len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!kerr) break;
            if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "feeder: produce: %s\n",
                        rd_kafka_err2str(kerr));
                f->flush_err = 1;
                break;
            }
            rd_kafka_poll(rk, 10);
        }
        atomic_store(&f->produced, i + 1);
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        f->flush_err = 1;
    rd_kafka_destroy(rk);
    atomic_store(&f->done, 1);
    return NULL;
}

static void feeder_start(feeder_t *f, fenv_t *e, int n, double rate) {
    memset(f, 0, sizeof(*f));
    f->boot = e->boot;
    f->n = n;
    f->rate = rate;
    atomic_store(&f->limit, n);
    f->failed0 = rs_kafka_producer_failed();
    assert_int_equal(pthread_create(&f->th, NULL, feeder_main, f), 0);
    f->started = 1;
}

/* Events from index k on wait until the next feeder_hold (k = n: all
 * flow). Called by the test thread while the feeder runs. */
static void feeder_hold(feeder_t *f, int k) { atomic_store(&f->limit, k); }

static void feeder_join(feeder_t *f) {
    pthread_join(f->th, NULL);
    f->started = 0;
    /* The input itself must be complete, or the test proves nothing. */
    assert_int_equal(f->flush_err, 0);
    assert_int_equal(rs_kafka_producer_failed() - f->failed0, 0);
}

/* --------------------------------------------------------------- waiting */

static uint64_t scored_sum(rs_test_svc_t *const *s, int ns) {
    uint64_t n = 0;
    for (int i = 0; i < ns; i++) n += atomic_load(&s[i]->scored);
    return n;
}

/* Wait until the instances together scored >= target; 0 on timeout (a
 * stalled service), with a diagnostic line. */
static int wait_scored(fenv_t *e, rs_test_svc_t *const *s, int ns,
                       uint64_t target, int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    while (scored_sum(s, ns) < target) {
        for (int i = 0; i < ns; i++)
            /* one stopped on purpose (svc_stop: rebalance) is not early */
            if (atomic_load(&s[i]->state) == 2 && !s[i]->stop) {
                printf("faults: %s: %s returned early: %s\n", e->name,
                       s[i]->label, s[i]->err ? s[i]->errstr : "RS_OK");
                return 0;
            }
        if (now_s() > deadline) {
            printf("faults: %s: STALL: %llu of %llu scored after %.1f s\n",
                   e->name, (unsigned long long)scored_sum(s, ns),
                   (unsigned long long)target, now_s() - e->t0);
            return 0;
        }
        sleep_ms(10);
    }
    return 1;
}

/* ---------------------------------------------------------------- checks */

/* Sum over the events partitions of (high watermark - committed offset of
 * the group); -1 on a query error. */
static int64_t group_lag(fenv_t *e, int verbose) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", e->boot, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", e->group, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("group_lag conf: %s", errstr);
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    if (!rk) fail_msg("group_lag: %s", errstr);
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(NPART);
    for (int p = 0; p < NPART; p++)
        rd_kafka_topic_partition_list_add(l, topics[T_EVENTS], p);
    int64_t lag = 0;
    if (rd_kafka_committed(rk, l, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        lag = -1;
    } else {
        for (int p = 0; p < NPART && lag >= 0; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, topics[T_EVENTS], p, &lo,
                                                 &hi, 10000)) {
                lag = -1;
                break;
            }
            int64_t c = l->elems[p].offset < 0 ? 0 : l->elems[p].offset;
            if (verbose && c != hi)
                printf("faults: %s: events [%d] committed %lld, end %lld\n",
                       e->name, p, (long long)l->elems[p].offset,
                       (long long)hi);
            lag += hi - c;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return lag;
}

/* The running service's auto-commit catches up with the end of input. */
static int64_t wait_committed(fenv_t *e, int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    int64_t lag;
    while ((lag = group_lag(e, 0)) != 0 && now_s() < deadline) sleep_ms(250);
    return lag;
}

/* Messages a topic holds (sum of high - low watermarks); -1 on error. */
static int64_t topic_size(fenv_t *e, const char *topic) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", e->boot, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("topic_size: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    if (!rk) fail_msg("topic_size: %s", errstr);
    int64_t total = 0;
    for (int p = 0; p < NPART && total >= 0; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
            total = -1;
        else
            total += hi - lo;
    }
    rd_kafka_destroy(rk);
    return total;
}

typedef struct tally_s {
    int n;
    int total, bad;
    unsigned short *cnt; /* [n] */
} tally_t;

static void tally_cb(void *opaque, const rd_kafka_message_t *rkm) {
    tally_t *t = opaque;
    rs_score_t sc;
    char errstr[256];
    int i;
    t->total++;
    if (rs_score_from_json(rkm->payload, rkm->len, &sc, errstr,
                           sizeof(errstr)) != RS_OK ||
        sscanf(sc.event_id, "ev-%d", &i) != 1 || i < 0 || i >= t->n) {
        t->bad++;
        return;
    }
    if (t->cnt[i] < 65535) t->cnt[i]++;
}

typedef struct result_s {
    int n;
    int redis_missing, redis_extra;
    int scores_missing, scores_dups, scores_bad;
    int64_t lag_final;
} result_t;

/* Redis: one score record per input id, nothing else. */
static void check_redis(fenv_t *e, const char *prefix, result_t *r) {
    redisContext *c = redisConnectUnix(rs_test_redis_socket(e->redis));
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    for (int i = 0; i < r->n; i++)
        redisAppendCommand(c, "EXISTS %sscore:ev-%d", prefix, i);
    int shown = 0;
    for (int i = 0; i < r->n; i++) {
        redisReply *rep = NULL;
        assert_int_equal(redisGetReply(c, (void **)&rep), REDIS_OK);
        assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
        if (rep->integer != 1) {
            r->redis_missing++;
            if (shown++ < 10)
                printf("faults: %s: no Redis record for ev-%d\n", e->name, i);
        }
        freeReplyObject(rep);
    }
    /* Every score key, to catch records of ids never produced. */
    long long keys = 0;
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(c, "SCAN %s MATCH %sscore:* COUNT 1000",
                                       cursor, prefix);
        assert_non_null(rep);
        assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
        rs_strlcpy(cursor, rep->element[0]->str, sizeof(cursor));
        keys += (long long)rep->element[1]->elements;
        freeReplyObject(rep);
    } while (strcmp(cursor, "0"));
    r->redis_extra = (int)(keys - (r->n - r->redis_missing));
    redisFree(c);
}

static void check_scores_topic(fenv_t *e, result_t *r) {
    tally_t t = {.n = r->n};
    t.cnt = calloc((size_t)r->n, sizeof(*t.cnt));
    rs_test_kafka_read(e->boot, topics[T_SCORES], r->n, 1500, 60000, tally_cb,
                       &t);
    int shown = 0;
    for (int i = 0; i < r->n; i++) {
        if (!t.cnt[i]) {
            r->scores_missing++;
            if (shown++ < 10)
                printf("faults: %s: no score on the topic for ev-%d\n",
                       e->name, i);
        } else {
            r->scores_dups += t.cnt[i] - 1;
        }
    }
    r->scores_bad = t.bad;
    /* Missing: was it never in the log, or not read?  Compare with what
     * the partitions hold. */
    if (r->scores_missing) {
        int64_t held = topic_size(e, topics[T_SCORES]);
        printf("faults: %s: the scores topic holds %lld messages, %d read "
               "(%d distinct ids, %d duplicates)\n", e->name,
               (long long)held, t.total, r->n - r->scores_missing,
               r->scores_dups);
    }
    free(t.cnt);
}

/* Every check of the file header; `exact` = scored must equal N (one
 * instance, no fault that legitimately re-reads input). */
static void check_all(fenv_t *e, rs_test_svc_t *const *s, int ns, int n,
                      int exact) {
    result_t r = {.n = n};
    uint64_t scored = 0, rejected = 0;
    check_redis(e, s[0]->app.redis.key_prefix, &r);
    check_scores_topic(e, &r);
    r.lag_final = group_lag(e, 1);
    for (int i = 0; i < ns; i++) {
        scored += s[i]->st.scored;
        rejected += s[i]->st.rejected;
        printf("faults: %s: %s: %s, scored %llu, rejected %llu, events %llu, "
               "kafka_errors %llu, redis_errors %llu, batches %llu%s%s\n",
               e->name, s[i]->label, rs_err_str(s[i]->err),
               (unsigned long long)s[i]->st.scored,
               (unsigned long long)s[i]->st.rejected,
               (unsigned long long)s[i]->st.events,
               (unsigned long long)s[i]->st.kafka_errors,
               (unsigned long long)s[i]->st.redis_errors,
               (unsigned long long)s[i]->st.batches, s[i]->err ? ": " : "",
               s[i]->err ? s[i]->errstr : "");
    }
    printf("faults: %s: N=%d scored=%llu (re-scored %lld) rejected=%llu "
           "redis_missing=%d redis_extra=%d scores_missing=%d "
           "scores_dups=%d scores_bad=%d committed_lag=%lld time=%.1fs\n",
           e->name, n, (unsigned long long)scored,
           (long long)scored - (long long)n, (unsigned long long)rejected,
           r.redis_missing, r.redis_extra, r.scores_missing, r.scores_dups,
           r.scores_bad, (long long)r.lag_final, now_s() - e->t0);
    fflush(stdout);
    for (int i = 0; i < ns; i++) assert_int_equal(s[i]->err, RS_OK);
    assert_int_equal(r.redis_missing, 0);
    assert_int_equal(r.redis_extra, 0);
    assert_int_equal(r.scores_missing, 0);
    assert_int_equal(r.scores_bad, 0);
    assert_int_equal(rejected, 0);
    if (exact) assert_int_equal(scored, (uint64_t)n);
    else assert_true(scored >= (uint64_t)n);
    assert_int_equal(r.lag_final, 0);
}

/* Start one instance and the feeder; wait for the group join first so the
 * faults hit a flowing stream. */
static void start_stream(fenv_t *e, rs_test_svc_t *s, feeder_t *f, int n,
                         double rate, const char *label,
                         const char *const *kafka_kv) {
    svc_start(s, e, label, kafka_kv);
    rs_test_svc_wait_assigned(s, 30000);
    printf("faults: %s: group joined after %.1f s; feeding %d events at "
           "%.0f/s\n", e->name, now_s() - e->t0, n, rate);
    feeder_start(f, e, n, rate);
}

/* The stream's end: the feeder done, N scores counted, and the group's
 * commits at the end of input while the instances still run (with several
 * instances the count includes re-scored events, so only the commits say
 * that every event was processed and delivered; and a stuck background
 * committer must not be hidden by the final commit at the stop).  Returns
 * the remaining commit lag (0 = caught up); the caller then stops the
 * instances. */
static int64_t finish_stream(fenv_t *e, rs_test_svc_t *const *s, int ns,
                             feeder_t *f, int n) {
    feeder_join(f);
    if (!wait_scored(e, s, ns, (uint64_t)n, WAIT_DONE_MS)) return -1;
    double t = now_s();
    int64_t lag = wait_committed(e, 20000);
    if (lag)
        printf("faults: %s: STALL: committed offsets %lld behind the end of "
               "input 20 s after the last score\n", e->name, (long long)lag);
    printf("faults: %s: %d scored at %.1f s, committed at %.1f s\n", e->name,
           n, t - e->t0, now_s() - e->t0);
    return lag;
}

/* ------------------------------------------------------------------ tests */

static _Atomic int probe_ok, probe_implicit;

static void probe_dr(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                     void *opaque) {
    (void)rk;
    (void)opaque;
    if (rkm->err) return;
    atomic_fetch_add(&probe_ok, 1);
    /* Success without an offset: librdkafka acknowledged it implicitly,
     * because the broker accepted a later sequence number. */
    if (rkm->offset < 0) atomic_fetch_add(&probe_implicit, 1);
}

/* The mock limitation of the header, shown with librdkafka alone: an
 * idempotent producer with `inflight` requests per connection writing to
 * two partitions led by brokers 2 and 3, whose Produce requests are
 * refused now and then with NOT_LEADER_FOR_PARTITION.  Prints delivery
 * reports vs what the partitions hold; returns the messages lost. */
static int64_t probe_idempotence(const char *inflight) {
    char errstr[512];
    const char *t1[] = {"probe"};
    const int n = 1500;
    rs_cluster_t *cl = rs_cluster_new(NBROKERS, t1, 1, 2, errstr,
                                      sizeof(errstr));
    assert_non_null(cl);
    rd_kafka_mock_cluster_t *mc = rs_cluster_mock(cl);
    rd_kafka_mock_partition_set_leader(mc, "probe", 0, 2);
    rd_kafka_mock_partition_set_leader(mc, "probe", 1, 3);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rs_cluster_bootstraps(cl), errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true",
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(
                         conf, "max.in.flight.requests.per.connection",
                         inflight, errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, probe_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    assert_non_null(rk);
    atomic_store(&probe_ok, 0);
    atomic_store(&probe_implicit, 0);
    for (int i = 0; i < n; i++) {
        char v[32];
        int len = snprintf(v, sizeof(v), "m-%d", i);
        assert_int_equal(rd_kafka_producev(
                             rk, RD_KAFKA_V_TOPIC("probe"),
                             RD_KAFKA_V_PARTITION(i % 2),
                             RD_KAFKA_V_VALUE(v, (size_t)len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END), RD_KAFKA_RESP_ERR_NO_ERROR);
        size_t l2 = 0, l3 = 0; /* not set while the broker has no stack */
        rd_kafka_mock_broker_error_stack_cnt(mc, 2, 0, &l2);
        rd_kafka_mock_broker_error_stack_cnt(mc, 3, 0, &l3);
        /* An error now and then, so that later requests succeed while a
         * refused one waits for its retry. */
        if (i > 100 && i < n - 300 && !l2 && !l3) {
            rd_kafka_mock_broker_push_request_error_rtts(
                mc, 2, 0, 1, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0);
            rd_kafka_mock_broker_push_request_error_rtts(
                mc, 3, 0, 1, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0);
        }
        rd_kafka_poll(rk, 0);
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t held = 0;
    for (int p = 0; p < 2; p++) {
        int64_t lo = 0, hi = 0;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, "probe", p, &lo,
                                                          &hi, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        held += hi - lo;
    }
    int ok = atomic_load(&probe_ok);
    printf("faults: mock probe: idempotent producer, max.in.flight %s, "
           "NOT_LEADER_FOR_PARTITION injected: %d of %d delivery reports "
           "succeeded (%d of them without an offset), the partitions hold "
           "%lld%s\n", inflight, ok, n, atomic_load(&probe_implicit),
           (long long)held,
           ok > held ? " -- acknowledged messages LOST (mock limitation)" : "");
    rd_kafka_destroy(rk);
    rs_cluster_destroy(cl);
    return ok - held;
}

/* One test's objects, on the heap: a failed assertion longjmps out of the
 * test, and the teardown must still find them to stop and free them. */
typedef struct ctx_s {
    fenv_t e;
    rs_test_svc_t s[2];
    feeder_t f;
} ctx_t;

static int ctx_setup(void **state) {
    *state = calloc(1, sizeof(ctx_t));
    return *state ? 0 : -1;
}

/* Whatever the test left running (after a failure): stop the instances,
 * wait for the feeder, then free. */
static int ctx_teardown(void **state) {
    ctx_t *c = *state;
    for (int i = 0; i < 2; i++) svc_stop(&c->s[i]);
    if (c->f.started) {
        feeder_hold(&c->f, c->f.n); /* a failed test may have held it */
        pthread_join(c->f.th, NULL);
    }
    for (int i = 0; i < 2; i++) rs_test_svc_free(&c->s[i]);
    env_close(&c->e);
    free(c);
    return 0;
}

/* (1) Produce errors on the scores producer. */
static void test_produce_errors(void **state) {
    const int n = 3000, out[] = {2, 3};
    ctx_t *c = *state;
    fenv_t *e = &c->e;
    rs_test_svc_t *s = &c->s[0];
    feeder_t *f = &c->f;
    probe_idempotence("5");
    assert_int_equal(probe_idempotence(max_inflight()), 0);
    env_open(e, "produce_errors", LAYOUT_SPLIT, 1);
    rs_test_svc_t *sv[] = {s};
    start_stream(e, s, f, n, 400, "service", NULL);

    /* Retriable errors, pushed repeatedly while ~60% of the stream flows. */
    int rounds = 0;
    wait_scored(e, sv, 1, 200, 30000);
    while (atomic_load(&f->produced) < n * 6 / 10) {
        /* A new round once the last one was consumed: steady pressure. */
        if (stack_cnt(e, 2, 0) + stack_cnt(e, 3, 0)) {
            sleep_ms(20);
            continue;
        }
        for (int b = 0; b < 2; b++)
            rd_kafka_mock_broker_push_request_error_rtts(
                e->mc, out[b], 0 /* Produce */, 6,
                RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0,
                RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0,
                RD_KAFKA_RESP_ERR_NO_ERROR, 500, /* slow broker */
                RD_KAFKA_RESP_ERR__TRANSPORT, 0); /* disconnect */
        rounds++;
    }
    assert_true(wait_drained(e, out, 2, 0, 60000)); /* a bound, not a timing claim */
    printf("faults: produce_errors: %d rounds of 6 retriable errors on "
           "brokers 2 and 3, all consumed by the scores producer\n", rounds);

    /* Permanent errors: the deliveries fail, the sink produces them again. */
    for (int k = 0; k < 3; k++) {
        for (int b = 0; b < 2; b++)
            rd_kafka_mock_broker_push_request_error_rtts(
                e->mc, out[b], 0, 2,
                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0,
                RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 0);
        sleep_ms(500);
    }
    assert_true(wait_drained(e, out, 2, 0, 60000)); /* a bound, not a timing claim */
    int64_t lag = finish_stream(e, sv, 1, f, n);
    svc_stop(s);
    check_all(e, sv, 1, n, 1);
    assert_int_equal(lag, 0);
    rs_test_svc_free(s);
    env_close(e);
}

/* (2) Fetch errors on the consumer. */
static void test_fetch_errors(void **state) {
    const int n = 3000, all[] = {1, 2, 3};
    ctx_t *c = *state;
    fenv_t *e = &c->e;
    rs_test_svc_t *s = &c->s[0];
    feeder_t *f = &c->f;
    env_open(e, "fetch_errors", LAYOUT_SPREAD, 1);
    rs_test_svc_t *sv[] = {s};
    start_stream(e, s, f, n, 300, "service", NULL);
    wait_scored(e, sv, 1, 200, 30000);
    int rounds = 0;
    while (atomic_load(&f->produced) < n * 7 / 10) {
        if (stack_cnt(e, 1, 1) + stack_cnt(e, 2, 1) + stack_cnt(e, 3, 1)) {
            sleep_ms(20);
            continue;
        }
        for (int b = 1; b <= NBROKERS; b++) {
            rd_kafka_mock_broker_push_request_error_rtts(
                e->mc, b, 1 /* Fetch */, 6,
                RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0,
                RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 0,
                RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
                RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR, 0,
                RD_KAFKA_RESP_ERR__TRANSPORT, 0,
                RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0);
            if (rounds % 2) /* and now and then a 2 s slow fetch */
                rd_kafka_mock_broker_push_request_error_rtts(
                    e->mc, b, 1, 1, RD_KAFKA_RESP_ERR_NO_ERROR, 2000);
        }
        rounds++;
    }
    assert_true(wait_drained(e, all, 3, 1, 60000)); /* a bound, not a timing claim */
    printf("faults: fetch_errors: %d rounds of 6-7 Fetch errors on each "
           "broker, all consumed by the service's consumer\n", rounds);
    int64_t lag = finish_stream(e, sv, 1, f, n);
    svc_stop(s);
    check_all(e, sv, 1, n, 1);
    assert_int_equal(lag, 0);
    rs_test_svc_free(s);
    env_close(e);
}

/* (3) OffsetCommit errors at the group coordinator. */
static void test_commit_errors(void **state) {
    const int n = 3000, coord[] = {1};
    ctx_t *c = *state;
    fenv_t *e = &c->e;
    rs_test_svc_t *s = &c->s[0];
    feeder_t *f = &c->f;
    env_open(e, "commit_errors", LAYOUT_SPREAD, 1);
    rs_test_svc_t *sv[] = {s};
    start_stream(e, s, f, n, 400, "service", NULL);
    wait_scored(e, sv, 1, 200, 30000);
    int rounds = 0;
    while (atomic_load(&f->produced) < n * 7 / 10) {
        /* auto.commit.interval.ms is 1 s: every commit fails until the
         * stream is 70% in. */
        if (stack_cnt(e, 1, 8)) {
            sleep_ms(20);
            continue;
        }
        rd_kafka_mock_broker_push_request_error_rtts(
            e->mc, 1, 8 /* OffsetCommit */, 1,
            rounds % 4 == 0   ? RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE
            : rounds % 4 == 1 ? RD_KAFKA_RESP_ERR_NOT_COORDINATOR
            : rounds % 4 == 2 ? RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT
                              : RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            0);
        rounds++;
    }
    assert_true(wait_drained(e, coord, 1, 8, 60000)); /* a bound, not a timing claim */
    printf("faults: commit_errors: %d OffsetCommit errors, all consumed\n",
           rounds);
    /* The background committer itself recovered: the group reaches the end
     * of input while the service runs (not only by the final commit). */
    int64_t lag = finish_stream(e, sv, 1, f, n);
    svc_stop(s);
    check_all(e, sv, 1, n, 1);
    assert_int_equal(lag, 0);
    rs_test_svc_free(s);
    env_close(e);
}

/* (4) A broker down (no failover), then another down with failover. */
static void test_broker_down(void **state) {
    const int n = 3000;
    ctx_t *c = *state;
    fenv_t *e = &c->e;
    rs_test_svc_t *s = &c->s[0];
    feeder_t *f = &c->f;
    env_open(e, "broker_down", LAYOUT_SPREAD, 1);
    rs_test_svc_t *sv[] = {s};
    start_stream(e, s, f, n, 300, "service", NULL);

    assert_true(wait_scored(e, sv, 1, (uint64_t)n / 5, 60000));
    printf("faults: broker_down: broker 2 down at %llu scored\n",
           (unsigned long long)atomic_load(&s->scored));
    rd_kafka_mock_broker_set_down(e->mc, 2);
    sleep_ms(3000);
    rd_kafka_mock_broker_set_up(e->mc, 2);
    printf("faults: broker_down: broker 2 up at %llu scored\n",
           (unsigned long long)atomic_load(&s->scored));

    assert_true(wait_scored(e, sv, 1, (uint64_t)n * 55 / 100, 60000));
    printf("faults: broker_down: broker 3 down + leaders moved to broker 1 "
           "at %llu scored\n", (unsigned long long)atomic_load(&s->scored));
    rd_kafka_mock_broker_set_down(e->mc, 3);
    for (int t = 0; t < T_N; t++)
        for (int p = 0; p < NPART; p++)
            if (leader_of(LAYOUT_SPREAD, t, p) == 3)
                rd_kafka_mock_partition_set_leader(e->mc, topics[t], p, 1);
    sleep_ms(3000);
    rd_kafka_mock_broker_set_up(e->mc, 3);
    printf("faults: broker_down: broker 3 up at %llu scored\n",
           (unsigned long long)atomic_load(&s->scored));
    int64_t lag = finish_stream(e, sv, 1, f, n);
    svc_stop(s);
    check_all(e, sv, 1, n, 1);
    assert_int_equal(lag, 0);
    rs_test_svc_free(s);
    env_close(e);
}

/* What the mock does on rd_kafka_mock_coordinator_set (see the header):
 * does the old coordinator keep answering a client that was not told?
 * Own small cluster, own group.  Prints the answer; returns 1 if yes. */
static int probe_coordinator(void) {
    char errstr[512];
    const char *t1[] = {"probe"};
    rs_cluster_t *cl = rs_cluster_new(NBROKERS, t1, 1, 1, errstr,
                                      sizeof(errstr));
    assert_non_null(cl);
    rd_kafka_mock_cluster_t *mc = rs_cluster_mock(cl);
    rd_kafka_mock_coordinator_set(mc, "group", "probe-g", 2);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       rs_cluster_bootstraps(cl), errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "probe-g", errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "probe", 0)->offset = 0;
    assert_int_equal(rd_kafka_commit(rk, l, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    /* Move the coordinator; mark the old one's next OffsetCommit. */
    rd_kafka_mock_coordinator_set(mc, "group", "probe-g", 3);
    rd_kafka_mock_broker_push_request_error_rtts(
        mc, 2, 8, 1, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 0);
    rd_kafka_resp_err_t kerr = rd_kafka_commit(rk, l, 0);
    int old_answers = kerr == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED;
    /* And once the old one is down, the client finds the new one. */
    rd_kafka_mock_broker_set_down(mc, 2);
    rd_kafka_resp_err_t kerr2 = rd_kafka_commit(rk, l, 0);
    printf("faults: mock probe: after coordinator_set the old coordinator "
           "%s (commit: %s); with it down the commit %s (%s)\n",
           old_answers ? "still serves the group" : "is not used",
           rd_kafka_err2name(kerr), kerr2 ? "fails" : "succeeds",
           rd_kafka_err2name(kerr2));
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    rs_cluster_destroy(cl);
    return old_answers;
}

/* (5) The group coordinator moves mid-stream. */
static void test_coordinator_change(void **state) {
    const int n = 3000, b2[] = {2}, b3[] = {3};
    ctx_t *c = *state;
    fenv_t *e = &c->e;
    rs_test_svc_t *s = &c->s[0];
    feeder_t *f = &c->f;
    probe_coordinator();
    env_open(e, "coordinator_change", LAYOUT_ONE, 2);
    rs_test_svc_t *sv[] = {s};
    start_stream(e, s, f, n, 300, "service", NULL);

    /* The feeder is held at each phase's start, so the commit that must
     * meet the armed fault always has new input to carry: without the
     * hold, on a loaded box the service could score and commit all the
     * input there was before the fault was armed, and no commit would
     * ever reach the broker the test waits on (it failed that way about
     * one run in a few at load 10-15). */
    feeder_hold(f, n / 4);

    /* A: 2 -> 3; the old coordinator says so (as a real broker would) on
     * the next auto-commit (every second) -- or the client finds the new
     * one first: the mock answers the old coordinator's Heartbeat with
     * NOT_COORDINATOR too, and which request comes first depends on
     * scheduling. What must happen either way is that the group commits
     * through broker 3: a retriable marker error there is consumed. A
     * NOT_COORDINATOR left on broker 2 is consumed in B (wait_drained
     * counts every error stacked there). */
    assert_true(wait_scored(e, sv, 1, (uint64_t)n / 4, 60000));
    rd_kafka_mock_coordinator_set(e->mc, "group", e->group, 3);
    rd_kafka_mock_broker_push_request_error_rtts(
        e->mc, 2, 8 /* OffsetCommit */, 1, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        0);
    rd_kafka_mock_broker_push_request_error_rtts(
        e->mc, 3, 8, 1, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, 0);
    feeder_hold(f, n * 55 / 100);
    assert_true(wait_drained(e, b3, 1, 8, 60000)); /* a bound, not a timing claim */
    printf("faults: coordinator_change: moved 2 -> 3 at %d produced (the "
           "old coordinator's error %s)\n", n / 4,
           stack_cnt(e, 2, 8) ? "not used: the client found 3 itself"
                              : "used");

    /* B: 3 -> 2 and broker 3 (the current coordinator) dies for 3 s. */
    assert_true(wait_scored(e, sv, 1, (uint64_t)n * 55 / 100, 60000));
    rd_kafka_mock_coordinator_set(e->mc, "group", e->group, 2);
    rd_kafka_mock_broker_set_down(e->mc, 3);
    printf("faults: coordinator_change: moved 3 -> 2, broker 3 down at %llu "
           "scored\n", (unsigned long long)atomic_load(&s->scored));
    sleep_ms(3000);
    rd_kafka_mock_broker_set_up(e->mc, 3);
    rd_kafka_mock_broker_push_request_error_rtts(
        e->mc, 2, 8, 1, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, 0);
    feeder_hold(f, n);
    assert_true(wait_drained(e, b2, 1, 8, 60000)); /* a bound, not a timing claim */
    printf("faults: coordinator_change: commits go to broker 2 again at %llu "
           "scored\n", (unsigned long long)atomic_load(&s->scored));

    int64_t lag = finish_stream(e, sv, 1, f, n);
    svc_stop(s);
    check_all(e, sv, 1, n, 1);
    assert_int_equal(lag, 0);
    rs_test_svc_free(s);
    env_close(e);
}

/* (6) A second instance joins the group mid-stream, then stops. */
static void test_rebalance(void **state) {
    const int n = 4000;
    /* max.poll.interval.ms 10 s: a JoinGroup the mock dropped (header,
     * "Mock limitations") is sent again after 13 s, within the 30 s B has
     * to be assigned, instead of 303 s (librdkafka's default).  The
     * service polls far more often here: the longest time between two
     * consume calls of either instance was 2.95 s in 36 runs at load
     * 16-57 on 2 cores (the read-ahead reads on while the scoring thread
     * works, until 2 x batch_max messages are read).  A longer gap would
     * make the client leave the group and join again: a rebalance more,
     * not a hang. */
    static const char *const kv[] = {"consumer.session.timeout.ms", "6000",
                                     "consumer.heartbeat.interval.ms", "500",
                                     "consumer.max.poll.interval.ms", "10000",
                                     NULL};
    ctx_t *c = *state;
    fenv_t *e = &c->e;
    rs_test_svc_t *a = &c->s[0], *b = &c->s[1];
    feeder_t *f = &c->f;
    env_open(e, "rebalance", LAYOUT_SPREAD, 1);
    rs_test_svc_t *sv[] = {a, b};
    start_stream(e, a, f, n, 200, "instance A", kv);
    assert_true(wait_scored(e, sv, 1, (uint64_t)n / 5, 60000));
    /* The stream must still flow once B owns its partitions (else the
     * wait below for n/5 more scores can only be met by re-scored events:
     * on a loaded box B's join, 5 s at the mock, outlasted the stream):
     * events from n/2 on wait until B is assigned. */
    feeder_hold(f, n / 2);
    printf("faults: rebalance: instance B joins at %llu scored (%d "
           "produced)\n", (unsigned long long)atomic_load(&a->scored),
           atomic_load(&f->produced));
    svc_start(b, e, "instance B", kv);
    rs_test_svc_wait_assigned(b, 30000);
    feeder_hold(f, n);
    uint64_t at = scored_sum(sv, 2);
    printf("faults: rebalance: B owns %lld partition(s), A %lld, at %llu "
           "scored\n", (long long)atomic_load(&b->assigned),
           (long long)atomic_load(&a->assigned), (unsigned long long)at);
    /* Let B score its share for a while, then stop it mid-stream. */
    assert_true(wait_scored(e, sv, 2, at + (uint64_t)n / 5, 60000));
    uint64_t b_before = atomic_load(&b->scored);
    svc_stop(b);
    printf("faults: rebalance: B stopped after scoring %llu (%llu in total "
           "then)\n", (unsigned long long)b->st.scored,
           (unsigned long long)scored_sum(sv, 2));
    assert_true(b_before > 0);
    int64_t lag = finish_stream(e, sv, 2, f, n);
    svc_stop(a);
    check_all(e, sv, 2, n, 0);
    assert_int_equal(lag, 0);
    rs_test_svc_free(a);
    rs_test_svc_free(b);
    env_close(e);
}

int main(void) {
    const char *lv = getenv("RS_TEST_LOG");
    int level = lv ? rs_log_level_parse(lv) : -1;
    rs_log_set_level(level >= 0 ? (rs_log_level_t)level : RS_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_produce_errors, ctx_setup,
                                        ctx_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_errors, ctx_setup,
                                        ctx_teardown),
        cmocka_unit_test_setup_teardown(test_commit_errors, ctx_setup,
                                        ctx_teardown),
        cmocka_unit_test_setup_teardown(test_broker_down, ctx_setup,
                                        ctx_teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_change, ctx_setup,
                                        ctx_teardown),
        cmocka_unit_test_setup_teardown(test_rebalance, ctx_setup,
                                        ctx_teardown),
    };
    if (getenv("RS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
