/* test_service.c -- the whole scoring service on edge cases found under
 * hostile input (issue 10).  Each test runs the real service
 * (rs_service_new + rs_service_run on its own thread) against an
 * in-process librdkafka mock cluster (one broker; topics events, labels,
 * scores, alerts, events.dlq) and a private redis-server, feeds it input
 * with a plain producer and reads the results back from the scores topic,
 * the dead-letter topic, Redis and the group's committed offsets.
 *
 *  - test_eos_label_between: exactly-once, 200 events, one label, 200
 *    more: all 400 scored (a batch that published no score used to stop
 *    the transaction commits for good), the stop returns RS_OK.
 *  - test_alo_rejects_only: at-least-once, a poll that returned only
 *    rejected messages: their offsets are committed while the service runs
 *    (they used to stay uncommitted until the next scored batch), and a
 *    stop right after finishes with a final checkpoint.
 *  - test_stop_under_load: SIGTERM-like stop while events stream in at the
 *    maximum rate, both delivery modes: RS_OK, the final checkpoint is
 *    written; the stop time is printed (not asserted: shared machine).
 *  - test_future_event: one event dated 2099 among normal ones is
 *    dead-lettered with its reason and changes nothing: every other score
 *    equals, bit for bit, the scores of the same stream without it.
 *  - test_duplicates: an event id seen again (later, and twice in one
 *    batch) gets the decision on record, flagged, and changes nothing:
 *    every other score equals the run without the copies.
 *  - test_stall_readiness: the service stuck (Redis frozen with SIGSTOP,
 *    the writer's buffer full) is not ready after service.stall_timeout,
 *    and ready again once it moves.
 *  - test_ckpt_delivered: periodic checkpoints taken with batches in
 *    flight are committed only once those are delivered, both delivery
 *    modes: Redis frozen with 250 scored events undelivered (exactly-
 *    once: their transaction waiting) for three checkpoint periods, the
 *    file keeps naming offset 50, then 300 once Redis runs (the service
 *    running).
 *  - test_workers_equal: the same stream (1500 events, a malformed one,
 *    duplicates, a label) with service.workers 1, 2 and 3: every record
 *    on the scores topic is the same byte for byte (JSON; protobuf
 *    decoded) but for the time it was scored and its latency, and so is
 *    every learning record in the learning log (its state byte aside:
 *    the trainer's); with 2 and 3 the model forward ran sharded by entity
 *    on the workers (stats.model_sharded > 0; 0 with 1 worker).  In JSON,
 *    every event's Redis record (compact, made by the workers) reads back
 *    as its record on the scores topic, but for the two time fields
 *    (redis_equals_topic; also in test_explain_min and test_trace_slow).
 *  - test_explain_min: service.explain_min_score at the median score of
 *    a run without it (workers 1 and 3): records at or above it are that
 *    run's byte for byte, those below it that run's with an empty
 *    explanation, the learning records the same bytes (the model skips
 *    the explanation of what the record does not carry).
 *  - test_trace_slow: service.trace_slow on changes no record and no
 *    learning record, and logs slow turns (off: none).
 *  - test_log_first_ahead: the learning log of each assigned partition
 *    is opened at the assignment and its first segment made by the
 *    trainer before any event (4 partitions: 4 made ahead, with no input
 *    yet); the events that follow are scored without a segment made on
 *    the scoring thread, and /metrics counts it
 *    (riskstream_learning_log_segments_total{made=...}).
 *  - test_bad_sizes: configuration errors found by rs_service_new
 *    (RS_ERR_CONFIG, exit 2 in serve): a bad `kafka:` property and sizes
 *    the machine cannot hold.
 * Single partition for the comparisons (the order of input, hence every
 * feature, is the same in both runs; no label arrives, so the model does
 * not learn and the weights stay those of the seed).
 *
 * Environment: RS_TEST_LOG=debug|info|warn|error|off (default warn),
 * RS_TEST_FILTER="test_dup*" (cmocka filter).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <hiredis/hiredis.h>

#include "model/learnlog.h"
#include "scoring/scoring.h"
#include "tests/support/rs_test_kafka.h"
#include "tests/support/rs_test_redis.h"
#include "tests/support/rs_test_svc.h"

#define BASE_MS 1700000000000LL

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void) { return (double)rs_clock_mono_us() / 1e6; }

/* Event i: entity card-(i % 13), time BASE + i s (or `t_ms` if > 0). */
static void produce_event_t(rs_test_env_t *e, int i, int64_t t_ms) {
    char buf[1024], key[32];
    snprintf(key, sizeof(key), "card-%d", i % 13);
    snprintf(buf, sizeof(buf),
             "{\"id\":\"ev-%d\",\"type\":\"card_tx\","
             "\"entity_id\":\"%s\",\"counterparty_id\":\"m-%d\","
             "\"event_time_ms\":%lld,\"amount\":%d.%02d,"
             "\"categorical_fields\":{\"mcc\":\"5411\",\"country\":\"%s\"}}",
             i, key, i % 7, t_ms > 0 ? (long long)t_ms
                                     : BASE_MS + (long long)i * 1000,
             1 + (i * 37) % 900, i % 100, i % 11 ? "DE" : "BR");
    rs_test_env_produce(e, RS_TEST_T_EVENTS, key, buf);
}

static void produce_events(rs_test_env_t *e, int from, int to) {
    for (int i = from; i < to; i++) produce_event_t(e, i, 0);
}

static void produce_label(rs_test_env_t *e, int i, int value) {
    char buf[512], key[32];
    snprintf(key, sizeof(key), "card-%d", i % 13);
    snprintf(buf, sizeof(buf),
             "{\"event_id\":\"ev-%d\",\"entity_id\":\"%s\",\"value\":%d,"
             "\"label_time_ms\":%lld}", i, key, value,
             BASE_MS + (long long)i * 1000 + 60000);
    rs_test_env_produce(e, RS_TEST_T_LABELS, key, buf);
}

/* ---------------------------------------------------------------- checks */

/* Sum over the events partitions of (high watermark - committed offset of
 * `group`); -1 on a query error. */
static int64_t group_lag(rs_test_env_t *e, const char *group) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", e->boot, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("group_lag conf: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                                  sizeof(errstr));
    if (!rk) fail_msg("group_lag: %s", errstr);
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(e->nparts);
    for (int p = 0; p < e->nparts; p++)
        rd_kafka_topic_partition_list_add(l, rs_test_topics[RS_TEST_T_EVENTS],
                                          p);
    int64_t lag = 0;
    if (rd_kafka_committed(rk, l, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        lag = -1;
    } else {
        for (int p = 0; p < e->nparts && lag >= 0; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(
                    rk, rs_test_topics[RS_TEST_T_EVENTS], p, &lo, &hi, 10000)) {
                lag = -1;
                break;
            }
            lag += hi - (l->elems[p].offset < 0 ? 0 : l->elems[p].offset);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return lag;
}

/* Score records read back from the scores topic (rs_test_svc.h). */
typedef rs_test_scores_t scores_t;

/* The first record of `id` at or after index `from`, or NULL. */
static const rs_score_t *scores_find(const scores_t *t, const char *id,
                                     int from) {
    for (int i = from; i < t->n; i++)
        if (!strcmp(t->sc[i].event_id, id)) return &t->sc[i];
    return NULL;
}

static int scores_count(const scores_t *t, const char *id) {
    int c = 0;
    for (int i = 0; i < t->n; i++) c += !strcmp(t->sc[i].event_id, id);
    return c;
}

/* The value of metric line `name` (exact name, no labels) in text. */
static double metric(const char *text, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, name, nl) && p[nl] == ' ') return atof(p + nl + 1);
    return -1;
}

static int file_exists(const char *path, struct stat *st) {
    return stat(path, st) == 0;
}

/* The offset a checkpoint file names for (topic, partition): the feature
 * file's header (hdr_size at byte 12, blob_len at 32), then the blob, the
 * service record of scoring/svc_ckpt.c (v3/v4: "RSOF", version, n, pad,
 * two topic names of 128 bytes, caches_len, nlogs, pad, dedup_len: 296
 * bytes) and its n positions {int32 topic, int32 partition, int64
 * offset}.  -1: no file or no such position; -2: not that layout. */
static int64_t ckpt_offset(const char *path, int topic, int partition) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t *b = malloc(1 << 20);
    size_t n = fread(b, 1, 1 << 20, f);
    fclose(f);
    int64_t r = -2;
    uint32_t hs, magic, ver, np;
    uint64_t bl;
    if (n >= 40 && !memcmp(b, "RSFCKPT1", 8)) {
        memcpy(&hs, b + 12, 4);
        memcpy(&bl, b + 32, 8);
        if (hs + (uint64_t)bl <= n && bl >= 296) {
            const uint8_t *blob = b + hs;
            memcpy(&magic, blob, 4);
            memcpy(&ver, blob + 4, 4);
            memcpy(&np, blob + 8, 4);
            if (magic == 0x464f5352u && (ver == 3 || ver == 4) &&
                296 + (uint64_t)np * 16 <= bl) {
                r = -1;
                for (uint32_t i = 0; i < np; i++) {
                    int32_t t, p;
                    int64_t o;
                    memcpy(&t, blob + 296 + i * 16, 4);
                    memcpy(&p, blob + 296 + i * 16 + 4, 4);
                    memcpy(&o, blob + 296 + i * 16 + 8, 8);
                    if (t == topic && p == partition) r = o;
                }
            }
        }
    }
    free(b);
    return r;
}

/* Wait until the checkpoint names `want` on events partition 0. */
static int wait_ckpt(const char *path, int64_t want, int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    while (ckpt_offset(path, RS_MSG_TOPIC_EVENTS, 0) != want) {
        if (now_s() > deadline) return 0;
        sleep_ms(50);
    }
    return 1;
}

/* ------------------------------------------------------------------ tests */

/* Exactly-once: a poll that returns only a label closes a transaction on a
 * batch without scores.  Before the fix the batch never reached the Redis
 * writer and every later commit waited for it forever (scoring stopped at
 * 200, /readyz still 200). */
static void test_eos_label_between(void **state) {
    (void)state;
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 2);
    static rs_test_svc_t s;
    const char *kv[] = {"service.delivery", "exactly_once", NULL};
    rs_test_svc_conf(&s, &e, "g-eos-label", kv);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    produce_events(&e, 0, 200);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored, 200, "scored", 30000));
    produce_label(&e, 5, 1);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.labels, 1, "labels", 30000));
    sleep_ms(300); /* a few transaction intervals: the label's batch alone */
    produce_events(&e, 200, 400);
    rs_test_env_flush(&e);
    int ok = rs_test_svc_wait_count(&s, &s.scored, 400, "scored", 30000);
    const char *why = NULL;
    rs_service_t *sv = atomic_load(&s.svc);
    int ready = sv ? rs_service_ready(sv, &why) : 0;
    rs_test_svc_stop(&s);
    printf("eos_label_between: scored %llu, labels %llu, commits %llu, "
           "ready %d (%s), stop %.2f s: %s\n",
           (unsigned long long)s.st.scored, (unsigned long long)s.st.labels,
           (unsigned long long)s.st.txn_commits, ready, why ? why : "-",
           s.stop_s, s.err ? s.errstr : "RS_OK");
    assert_true(ok);
    assert_int_equal(s.st.scored, 400);
    assert_int_equal(s.err, RS_OK);
    scores_t t;
    rs_test_read_scores(&e, 400, &t);
    for (int i = 0; i < 400; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ev-%d", i);
        assert_non_null(scores_find(&t, id, 0));
    }
    free(t.sc);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

/* At-least-once: a poll that returned only rejected messages.  Their
 * offsets must be committed while the service runs (before the fix they
 * waited for a later batch with scores), and a stop right after writes the
 * final checkpoint at once (it used to wait 30 s for Redis and skip it). */
static void test_alo_rejects_only(void **state) {
    (void)state;
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    char ckpt[600];
    snprintf(ckpt, sizeof(ckpt), "%s/state.ckpt", rs_test_redis_dir(e.redis));
    static rs_test_svc_t s;
    const char *kv[] = {"service.checkpoint_path", ckpt, NULL};
    rs_test_svc_conf(&s, &e, "g-alo-rejects", kv);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    produce_events(&e, 0, 100);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored, 100, "scored", 30000));
    sleep_ms(300);
    for (int i = 0; i < 50; i++)
        rs_test_env_produce(&e, RS_TEST_T_EVENTS, "bad", "{not json");
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.rejected, 50, "rejected", 30000));
    /* The auto-commit (1 s) must reach the end of the partition. */
    int64_t lag = -1;
    for (int i = 0; i < 40 && lag != 0; i++) {
        sleep_ms(250);
        lag = group_lag(&e, "g-alo-rejects");
    }
    struct stat st0, st1;
    int had = file_exists(ckpt, &st0);
    rs_test_svc_stop(&s);
    int has = file_exists(ckpt, &st1);
    printf("alo_rejects_only: committed lag while running %lld; stop %.2f s; "
           "checkpoint before %d, after %d (mtime %lld -> %lld): %s\n",
           (long long)lag, s.stop_s, had, has,
           had ? (long long)st0.st_mtime : 0LL,
           has ? (long long)st1.st_mtime : 0LL, s.err ? s.errstr : "RS_OK");
    assert_int_equal(lag, 0);
    assert_int_equal(s.err, RS_OK);
    assert_int_equal(s.st.rejected, 50);
    /* The final checkpoint: counted, and the file is there. */
    assert_true(has);
    assert_true(s.st.checkpoints >= 1);
    assert_int_equal(s.st.checkpoint_errors, 0);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

/* A stop while the input streams in at the maximum rate: the service
 * delivers what is in flight, commits, writes the final checkpoint and
 * returns RS_OK.  The stop time is printed, not asserted. */
static void stop_under_load(const char *delivery) {
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 2);
    char ckpt[600], group[64];
    snprintf(ckpt, sizeof(ckpt), "%s/state.ckpt", rs_test_redis_dir(e.redis));
    snprintf(group, sizeof(group), "g-stop-%s", delivery);
    static rs_test_svc_t s;
    const char *kv[] = {"service.checkpoint_path", ckpt,
                        "service.delivery", delivery, NULL};
    rs_test_svc_conf(&s, &e, group, kv);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    /* Labels between the events, as a live stream has them. */
    int i = 0;
    for (; i < 20000; i++) {
        produce_event_t(&e, i, 0);
        if (i % 500 == 250) produce_label(&e, i - 200, i % 1000 == 250);
        rd_kafka_poll(e.prod, 0);
        if (i == 5000)
            assert_true(
                rs_test_svc_wait_count(&s, &s.scored, 1000, "scored", 30000));
        if (i > 5000 && atomic_load(&s.scored) > 4000) break;
    }
    uint64_t at = atomic_load(&s.scored);
    rs_test_svc_stop(&s);
    rs_test_env_flush(&e);
    struct stat st;
    int has = file_exists(ckpt, &st);
    printf("stop_under_load[%s]: stopped at %llu scored of %d produced; "
           "rs_service_run returned %.2f s after the stop flag (final "
           "scored %llu, checkpoints %llu, errors %llu): %s\n", delivery,
           (unsigned long long)at, i, s.stop_s,
           (unsigned long long)s.st.scored,
           (unsigned long long)s.st.checkpoints,
           (unsigned long long)s.st.checkpoint_errors,
           s.err ? s.errstr : "RS_OK");
    assert_int_equal(s.err, RS_OK);
    assert_true(has);
    assert_true(s.st.checkpoints >= 1);
    assert_int_equal(s.st.checkpoint_errors, 0);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

static void test_stop_under_load(void **state) {
    (void)state;
    stop_under_load("at_least_once");
    stop_under_load("exactly_once");
}

/* ----------------------------------------------- comparisons of two runs */

typedef struct run_s {
    rs_test_svc_t s;
    scores_t t;
} run_t;

typedef void (feed_fn)(rs_test_env_t *e, int variant);

/* One run on a fresh cluster and Redis (one partition): feed, wait until
 * `events` valid events were consumed, stop, read the scores topic. */
static void run_stream(run_t *r, const char *group, feed_fn *feed,
                       int variant, uint64_t events, int records) {
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    rs_test_svc_conf(&r->s, &e, group, NULL);
    rs_test_svc_run(&r->s);
    rs_test_svc_wait_assigned(&r->s, 30000);
    feed(&e, variant);
    rs_test_env_flush(&e);
    int ok =
        rs_test_svc_wait_count(&r->s, &r->s.events, events, "events", 60000);
    sleep_ms(500); /* labels, rejects after the last event */
    rs_test_svc_stop(&r->s);
    assert_true(ok);
    assert_int_equal(r->s.err, RS_OK);
    rs_test_read_scores(&e, records, &r->t);
    rs_test_env_close(&e);
}

static void run_free(run_t *r) {
    free(r->t.sc);
    rs_test_svc_free(&r->s);
}

/* Every event of `b` has, in `a`, a first record with the same score,
 * decision and flags (bit for bit: the same state before it). */
static int same_scores(const run_t *a, const run_t *b) {
    int diff = 0;
    for (int i = 0; i < b->t.n; i++) {
        const rs_score_t *y = &b->t.sc[i];
        const rs_score_t *x = scores_find(&a->t, y->event_id, 0);
        if (!x || x->score != y->score || x->decision != y->decision ||
            x->flags != y->flags) {
            if (diff++ < 5)
                printf("  %s: %.9g vs %.9g (flags %u vs %u)\n", y->event_id,
                       x ? x->score : -1.0, y->score, x ? x->flags : 0,
                       y->flags);
        }
    }
    return diff;
}

/* 300 events; variant 1 adds one dated 2099-12-31 after ev-150. */
static void feed_future(rs_test_env_t *e, int variant) {
    produce_events(e, 0, 151);
    if (variant) produce_event_t(e, 100000, 4102358400000LL);
    produce_events(e, 151, 300);
}

/* One event dated far in the future (inside the decoders' range) used to
 * move every watermark: feature windows expired, pending events resolved
 * as negatives.  Now it is dead-lettered and nothing else changes. */
static void test_future_event(void **state) {
    (void)state;
    static run_t a, b;
    run_stream(&a, "g-future-a", feed_future, 1, 300, 300);
    run_stream(&b, "g-future-b", feed_future, 0, 300, 300);
    int diff = same_scores(&a, &b);
    printf("future_event: with it: scored %llu, rejected %llu, "
           "events_future_total %g, %d record(s) on the topic; without: "
           "scored %llu; %d score(s) differ\n",
           (unsigned long long)a.s.st.scored,
           (unsigned long long)a.s.st.rejected,
           metric(a.s.metrics, "riskstream_events_future_total"), a.t.n,
           (unsigned long long)b.s.st.scored, diff);
    assert_int_equal(a.s.st.scored, 300);
    assert_int_equal(a.s.st.rejected, 1);
    assert_null(scores_find(&a.t, "ev-100000", 0));
    assert_int_equal(metric(a.s.metrics, "riskstream_events_future_total"), 1);
    assert_int_equal(diff, 0);
    run_free(&a);
    run_free(&b);
}

/* 300 events and a label for an event never seen; variant 1 sends ev-100
 * again after ev-150 and ev-200 twice in a row. */
static void feed_dups(rs_test_env_t *e, int variant) {
    produce_events(e, 0, 151);
    if (variant) produce_event_t(e, 100, 0);
    produce_events(e, 151, 201);
    if (variant) produce_event_t(e, 200, 0);
    produce_events(e, 201, 300);
    char lb[256];
    snprintf(lb, sizeof(lb), "{\"event_id\":\"ev-nope\",\"entity_id\":"
             "\"card-1\",\"value\":1,\"label_time_ms\":%lld}",
             BASE_MS + 400000LL);
    rs_test_env_produce(e, RS_TEST_T_LABELS, "card-1", lb);
}

/* Duplicate event ids: the copy gets the decision on record (same score,
 * decision and model version, flagged duplicate) and enters neither the
 * features nor the model's history: every other score equals the run
 * without the copies. */
static void test_duplicates(void **state) {
    (void)state;
    static run_t a, b;
    run_stream(&a, "g-dup-a", feed_dups, 1, 302, 302);
    run_stream(&b, "g-dup-b", feed_dups, 0, 300, 300);
    int diff = same_scores(&a, &b);
    printf("duplicates: scored %llu, duplicates %llu (metric %g), labels "
           "unknown %llu (metric %g), %d records; %d score(s) differ from "
           "the run without copies\n",
           (unsigned long long)a.s.st.scored,
           (unsigned long long)a.s.st.duplicates,
           metric(a.s.metrics, "riskstream_duplicates_total"),
           (unsigned long long)a.s.st.labels_unknown,
           metric(a.s.metrics, "riskstream_labels_unknown_total"), a.t.n,
           diff);
    assert_int_equal(a.t.n, 302);
    assert_int_equal(a.s.st.scored, 300);
    assert_int_equal(a.s.st.duplicates, 2);
    assert_int_equal(metric(a.s.metrics, "riskstream_duplicates_total"), 2);
    assert_int_equal(a.s.st.labels_unknown, 1);
    assert_int_equal(metric(a.s.metrics, "riskstream_labels_unknown_total"),
                     1);
    /* the task merge on /metrics (topics.task_merge, on by default): every
     * message read went through it once (302 events + 1 label; 300 + 1
     * without the copies), none held at the end, none paused */
    assert_int_equal(metric(a.s.metrics, "riskstream_task_merge_merged_total"),
                     303);
    assert_int_equal(metric(b.s.metrics, "riskstream_task_merge_merged_total"),
                     301);
    assert_int_equal(metric(a.s.metrics, "riskstream_task_merge_held"), 0);
    assert_int_equal(metric(a.s.metrics, "riskstream_task_merge_paused_total"),
                     0);
    assert_true(metric(a.s.metrics, "riskstream_task_merge_held_max") >= 1);
    assert_true(metric(a.s.metrics, "riskstream_task_merge_reordered_total")
                >= 0);
    for (int k = 0; k < 2; k++) {
        const char *id = k ? "ev-200" : "ev-100";
        assert_int_equal(scores_count(&a.t, id), 2);
        const rs_score_t *x = scores_find(&a.t, id, 0);
        const rs_score_t *y = scores_find(&a.t, id, (int)(x - a.t.sc) + 1);
        assert_non_null(y);
        assert_true(x->score == y->score);
        assert_int_equal(x->decision, y->decision);
        assert_string_equal(x->model_version, y->model_version);
        assert_int_equal(x->flags & RS_SCORE_FLAG_DUPLICATE, 0);
        assert_int_equal(y->flags, x->flags | RS_SCORE_FLAG_DUPLICATE);
    }
    assert_int_equal(diff, 0);
    run_free(&a);
    run_free(&b);
}

/* ------------------------------------------------------------- workers */

/* The raw bytes of every record on the scores topic, in topic order, with
 * the values of the two fields that tell when it was scored (scored_at_ms,
 * latency_us) cut out: everything else must be equal byte for byte. */
typedef struct raw_s {
    int n, cap;
    char **rec;
    size_t *len;
} raw_t;

/* Cut the number after each `field` out of p[0..*len). */
static void raw_blank(char *p, size_t *len, const char *field) {
    size_t fl = strlen(field);
    for (char *q = p; (size_t)(q - p) + fl <= *len;) {
        q = memmem(q, *len - (size_t)(q - p), field, fl);
        if (!q) break;
        q += fl;
        char *e = q;
        while ((size_t)(e - p) < *len && (*e == '-' || (*e >= '0' && *e <= '9')))
            e++;
        memmove(q, e, *len - (size_t)(e - p));
        *len -= (size_t)(e - q);
    }
}

static void raw_cb(void *opaque, const rd_kafka_message_t *rkm) {
    raw_t *t = opaque;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->rec = realloc(t->rec, (size_t)t->cap * sizeof(*t->rec));
        t->len = realloc(t->len, (size_t)t->cap * sizeof(*t->len));
    }
    char *p = malloc(rkm->len + 1);
    memcpy(p, rkm->payload, rkm->len);
    p[rkm->len] = '\0';
    size_t len = rkm->len;
    if (len && p[0] == '{') { /* JSON; protobuf is compared decoded */
        raw_blank(p, &len, "\"scored_at_ms\":");
        raw_blank(p, &len, "\"latency_us\":");
    }
    t->rec[t->n] = p;
    t->len[t->n++] = len;
}

/* 1 if record i is a duplicate's (the decision on record, flagged). */
static int raw_is_dup(const raw_t *t, int i) {
    rs_score_t sc;
    char e2[256];
    const char *p = t->rec[i];
    if (t->len[i] && p[0] == '{') {
        const char *f = strstr(p, "\"flags\":");
        return f && (atoi(f + 8) & (int)RS_SCORE_FLAG_DUPLICATE);
    }
    return rs_score_from_pb((const uint8_t *)p, t->len[i], &sc, e2,
                            sizeof(e2)) == RS_OK &&
           (sc.flags & RS_SCORE_FLAG_DUPLICATE);
}

/* A duplicate's record is published at the end of the batch it came in,
 * so its place among the others follows where the polls cut the stream
 * (timing), with any number of workers; every other record is in input
 * order.  Move the duplicates' records to the end, in their order. */
static void raw_dups_last(raw_t *t) {
    char **rec = malloc((size_t)t->n * sizeof(*rec));
    size_t *len = malloc((size_t)t->n * sizeof(*len));
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < t->n; i++)
            if (raw_is_dup(t, i) == pass) {
                rec[k] = t->rec[i];
                len[k++] = t->len[i];
            }
    memcpy(t->rec, rec, (size_t)t->n * sizeof(*rec));
    memcpy(t->len, len, (size_t)t->n * sizeof(*len));
    free(rec);
    free(len);
}

static void raw_free(raw_t *t) {
    for (int i = 0; i < t->n; i++) free(t->rec[i]);
    free(t->rec);
    free(t->len);
    memset(t, 0, sizeof(*t));
}

#define WK_EVENTS 1500

/* The learning records of a run: the records area of the first segment of
 * partition 0's learning log (<state.dir>/learn/<lineage>/p0/<first>.log:
 * a 4096-byte header page, then fixed-size records; the segment holds
 * them all at model.log_segment 1 MiB), up to the first all-zero record. */
typedef struct lrecs_s {
    uint8_t *b;
    size_t rec_size;
    int n;
} lrecs_t;

static int rm_cb(const char *p, const struct stat *sb, int flag,
                 struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* The first "*.log" file under dir (depth-first), into path. */
static int find_log(const char *dir, char *path, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int found = 0;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        size_t l = strlen(de->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) found = find_log(p, path, cap);
        else if (l > 4 && !strcmp(de->d_name + l - 4, ".log")) {
            snprintf(path, cap, "%s", p);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

static void read_lrecs(const char *state_dir, lrecs_t *lr) {
    char path[1024];
    assert_true(find_log(state_dir, path, sizeof(path)));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t hdr[4096];
    assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    uint32_t rs;
    memcpy(&rs, hdr + 12, 4); /* "RSLLOG1\0" | u32 version | u32 rec_size */
    assert_true(rs >= 48 && rs % 8 == 0 && rs < 4096);
    lr->rec_size = rs;
    lr->b = malloc((size_t)(WK_EVENTS + 8) * rs);
    lr->n = 0;
    while (lr->n < WK_EVENTS + 8) {
        uint8_t *r = lr->b + (size_t)lr->n * rs;
        if (fread(r, 1, rs, f) != rs) break;
        int zero = 1;
        for (size_t i = 0; i < rs && zero; i++) zero = !r[i];
        if (zero) break;
        /* the state byte is the trainer's (maturity), not the scorer's */
        r[offsetof(rs_lrec_hdr_t, state)] = 0;
        lr->n++;
    }
    fclose(f);
}

/* 1500 events on 13 entities, a malformed one (dead-lettered by the
 * parallel decode), ev-100 again after ev-700 and ev-1200 twice in a row
 * (duplicates), a label of an unknown event. */
static void feed_workers(rs_test_env_t *e) {
    produce_events(e, 0, 700);
    rs_test_env_produce(e, RS_TEST_T_EVENTS, "card-1",
                        "{\"id\":\"bad\",\"amount\":");
    produce_event_t(e, 100, 0);
    produce_events(e, 700, 1201);
    produce_event_t(e, 1200, 0);
    produce_events(e, 1201, WK_EVENTS);
    char lb[256];
    snprintf(lb, sizeof(lb), "{\"event_id\":\"ev-nope\",\"entity_id\":"
             "\"card-1\",\"value\":1,\"label_time_ms\":%lld}",
             BASE_MS + 4000000LL);
    rs_test_env_produce(e, RS_TEST_T_LABELS, "card-1", lb);
}

/* Every event's record in Redis (stored compact: redis.record_format's
 * default) reads back as the JSON the scores topic got, byte for byte
 * but for the two time fields (cut from both as raw_cb cuts them): the
 * workers make the compact record beside the JSON and the scoring thread
 * only copies it (workers.h); a field that differed between the two
 * would show here.  Duplicates' records are skipped (SET NX keeps the
 * original's). */
static void redis_equals_topic(rs_test_env_t *e, const raw_t *t) {
    static rs_score_t scratch;
    static char json[RS_ENCODE_MAX];
    char errstr[256];
    redisContext *c = redisConnectUnix(rs_test_redis_socket(e->redis));
    assert_non_null(c);
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        if (raw_is_dup(t, i)) continue;
        const char *id = strstr(t->rec[i], "\"event_id\":\"");
        assert_non_null(id);
        id += 12;
        char key[RS_ID_MAX + 16];
        snprintf(key, sizeof(key), "rs:score:%.*s",
                 (int)(strchr(id, '"') - id), id);
        redisReply *v = redisCommand(c, "GET %s", key);
        assert_non_null(v);
        assert_int_equal(v->type, REDIS_REPLY_STRING);
        assert_int_equal((unsigned char)v->str[0], RS_REDIS_REC_MAGIC);
        size_t jl;
        assert_int_equal(rs_redis_rec_json(v->str, v->len, &scratch, json,
                                           sizeof(json), &jl, errstr,
                                           sizeof(errstr)), RS_OK);
        raw_blank(json, &jl, "\"scored_at_ms\":");
        raw_blank(json, &jl, "\"latency_us\":");
        if (jl != t->len[i] || memcmp(json, t->rec[i], jl))
            fail_msg("record %d in redis differs from the topic's:\n"
                     "  redis %.*s\n  topic %s", i, (int)jl, json,
                     t->rec[i]);
        freeReplyObject(v);
        n++;
    }
    assert_int_equal(n, WK_EVENTS);
    redisFree(c);
}

/* The stream pre-produced (so polls return full batches that the workers
 * split), then one service with service.workers = `workers`. */
static void run_workers_kv(int workers, const char *fmt, const char *trace,
                           const char *xkey, const char *xval, raw_t *t,
                           rs_test_svc_t *s, lrecs_t *lr) {
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    feed_workers(&e);
    rs_test_env_flush(&e);
    char wk[16], group[64], sd[128];
    snprintf(wk, sizeof(wk), "%d", workers);
    snprintf(group, sizeof(group), "g-workers-%d-%s", workers, fmt);
    const char *tmp = getenv("TMPDIR");
    snprintf(sd, sizeof(sd), "%s/rs-test-workers-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    assert_non_null(mkdtemp(sd));
    const char *kv[] = {"service.workers", wk, "service.scores_format", fmt,
                        "state.dir", sd, "model.log_segment", "1048576",
                        "service.trace_slow", trace ? trace : "0",
                        xkey, xval, NULL};
    rs_test_svc_conf(s, &e, group, kv);
    rs_test_svc_run(s);
    rs_test_svc_wait_assigned(s, 30000);
    int ok = rs_test_svc_wait_count(s, &s->scored, WK_EVENTS, "scored", 60000);
    sleep_ms(300);
    rs_test_svc_stop(s);
    assert_true(ok);
    assert_int_equal(s->err, RS_OK);
    memset(t, 0, sizeof(*t));
    rs_test_kafka_read(e.boot, rs_test_topics[RS_TEST_T_SCORES], WK_EVENTS + 2,
                       1500, 60000, raw_cb, t);
    raw_dups_last(t);
    if (!strcmp(fmt, "json")) redis_equals_topic(&e, t);
    rs_test_env_close(&e);
    read_lrecs(sd, lr);
    nftw(sd, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static void run_workers_traced(int workers, const char *fmt,
                               const char *trace, raw_t *t, rs_test_svc_t *s,
                               lrecs_t *lr) {
    run_workers_kv(workers, fmt, trace, NULL, NULL, t, s, lr);
}

static void run_workers(int workers, const char *fmt, raw_t *t,
                        rs_test_svc_t *s, lrecs_t *lr) {
    run_workers_traced(workers, fmt, NULL, t, s, lr);
}

/* service.workers = 2 and 3 publish the records of workers = 1 byte for
 * byte (scores, decisions, model version, explanations, event fields, in
 * the same order -- but for the duplicates' records, whose place follows
 * the poll boundaries: raw_dups_last; only the scoring time and latency
 * differ), in JSON and
 * in protobuf (whose time fields are compared decoded). */
static void test_workers_equal(void **state) {
    (void)state;
    const char *fmts[] = {"json", "protobuf"};
    for (int f = 0; f < 2; f++) {
        static raw_t ref, t;
        static rs_test_svc_t s1, s;
        static lrecs_t lref, lr;
        run_workers(1, fmts[f], &ref, &s1, &lref);
        printf("workers_equal[%s]: workers=1: %d records, scored %llu, "
               "duplicates %llu, rejected %llu, explained %llu, batches "
               "%llu\n", fmts[f], ref.n, (unsigned long long)s1.st.scored,
               (unsigned long long)s1.st.duplicates,
               (unsigned long long)s1.st.rejected,
               (unsigned long long)s1.st.explained,
               (unsigned long long)s1.st.batches);
        assert_int_equal(ref.n, WK_EVENTS + 2);
        assert_int_equal(s1.st.duplicates, 2);
        assert_int_equal(s1.st.rejected, 1);
        assert_int_equal(s1.st.model_sharded, 0);
        assert_int_equal(lref.n, WK_EVENTS); /* one per scored event */
        for (int w = 2; w <= 3; w++) {
            run_workers(w, fmts[f], &t, &s, &lr);
            int diff = t.n == ref.n ? 0 : -1;
            for (int i = 0; diff >= 0 && i < t.n; i++) {
                int same = t.len[i] == ref.len[i] &&
                           !memcmp(t.rec[i], ref.rec[i], t.len[i]);
                if (f == 1 && !same) {
                    /* protobuf: equal but for the two time fields */
                    rs_score_t a, b;
                    char e2[256];
                    same = rs_score_from_pb((const uint8_t *)t.rec[i],
                                            t.len[i], &a, e2,
                                            sizeof(e2)) == RS_OK &&
                           rs_score_from_pb((const uint8_t *)ref.rec[i],
                                            ref.len[i], &b, e2,
                                            sizeof(e2)) == RS_OK;
                    if (same) {
                        a.scored_at_ms = b.scored_at_ms;
                        a.latency_us = b.latency_us;
                        uint8_t ea[8192], eb[8192];
                        int la = rs_score_to_pb(&a, ea, sizeof(ea));
                        int lb = rs_score_to_pb(&b, eb, sizeof(eb));
                        same = la > 0 && la == lb && !memcmp(ea, eb,
                                                             (size_t)la);
                    }
                }
                if (!same && diff++ < 3)
                    printf("  record %d differs:\n  1: %.300s\n  %d: "
                           "%.300s\n", i, f ? "(protobuf)" : ref.rec[i], w,
                           f ? "(protobuf)" : t.rec[i]);
            }
            int ldiff = lr.n == lref.n && lr.rec_size == lref.rec_size
                            ? 0 : -1;
            for (int i = 0; ldiff >= 0 && i < lr.n; i++)
                ldiff += memcmp(lr.b + (size_t)i * lr.rec_size,
                                lref.b + (size_t)i * lr.rec_size,
                                lr.rec_size) != 0;
            printf("workers_equal[%s]: workers=%d: %d records, batches "
                   "%llu (forward sharded in %llu), %d differ from "
                   "workers=1; %d learning records, %d differ\n", fmts[f], w,
                   t.n, (unsigned long long)s.st.batches,
                   (unsigned long long)s.st.model_sharded, diff, lr.n,
                   ldiff);
            assert_int_equal(diff, 0);
            assert_int_equal(ldiff, 0);
            assert_true(s.st.model_sharded > 0);
            free(lr.b);
            assert_int_equal(s.st.scored, s1.st.scored);
            assert_int_equal(s.st.explained, s1.st.explained);
            assert_int_equal(s.st.rejected, 1);
            raw_free(&t);
            rs_test_svc_free(&s);
        }
        raw_free(&ref);
        free(lref.b);
        rs_test_svc_free(&s1);
    }
}

/* service.explain_min_score: the model explains only what the records
 * carry (rs_model_input_t.explain_min).  With the threshold at the median
 * score of a run without it, with 1 and 3 workers: every record scoring
 * at or above it is byte for byte that run's (explanation included), every
 * record below it is that run's with an empty explanation (compared
 * decoded, the two time fields aside), and the learning records are the
 * same bytes. */
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Decode a JSON record of raw_cb (its two time fields blanked: read as
 * 0). */
static void raw_decode(const raw_t *t, int i, rs_score_t *sc) {
    char *p = malloc(t->len[i] + 16), e2[256];
    size_t n = 0;
    for (size_t k = 0; k < t->len[i]; k++) {
        p[n++] = t->rec[i][k];
        if (t->rec[i][k] == ':' && k + 1 < t->len[i] &&
            (t->rec[i][k + 1] == ',' || t->rec[i][k + 1] == '}'))
            p[n++] = '0';
    }
    rs_err_t err = rs_score_from_json(p, n, sc, e2, sizeof(e2));
    if (err != RS_OK) printf("record %d: %s\n", i, e2);
    assert_int_equal(err, RS_OK);
    free(p);
}

static void test_explain_min(void **state) {
    (void)state;
    static raw_t ref, t;
    static rs_test_svc_t s0, s;
    static lrecs_t lref, lr;
    static rs_score_t a, b;
    run_workers(1, "json", &ref, &s0, &lref);
    assert_int_equal(ref.n, WK_EVENTS + 2);
    float *sc = calloc((size_t)ref.n, sizeof(float));
    for (int i = 0; i < ref.n; i++) {
        raw_decode(&ref, i, &a);
        sc[i] = (float)a.score;
    }
    qsort(sc, (size_t)ref.n, sizeof(float), cmp_float);
    char thr[64];
    snprintf(thr, sizeof(thr), "%.17g", (double)sc[ref.n / 2]);
    const double T = atof(thr);
    free(sc);
    for (int w = 1; w <= 3; w += 2) {
        run_workers_kv(w, "json", NULL, "service.explain_min_score", thr, &t,
                       &s, &lr);
        assert_int_equal(t.n, ref.n);
        int above = 0, below = 0;
        for (int i = 0; i < t.n; i++) {
            raw_decode(&ref, i, &a);
            raw_decode(&t, i, &b);
            if (a.score >= T) {
                above++;
                /* (a duplicate's record carries no explanation) */
                assert_true(a.explanation.n_contrib > 0 || raw_is_dup(&ref, i));
                assert_int_equal(t.len[i], ref.len[i]);
                assert_memory_equal(t.rec[i], ref.rec[i], t.len[i]);
                continue;
            }
            below++;
            assert_int_equal(b.explanation.n_contrib, 0);
            a.explanation.n_attended = a.explanation.n_contrib = 0;
            a.explanation.n_experts = a.explanation.n_reasons = 0;
            a.scored_at_ms = b.scored_at_ms;
            a.latency_us = b.latency_us;
            uint8_t ea[8192], eb[8192];
            int la = rs_score_to_pb(&a, ea, sizeof(ea));
            int lb = rs_score_to_pb(&b, eb, sizeof(eb));
            assert_true(la > 0);
            assert_int_equal(la, lb);
            assert_memory_equal(ea, eb, (size_t)la);
        }
        printf("explain_min[workers=%d]: threshold %s: %d records "
               "explained, %d below (explained %llu)\n", w, thr, above, below,
               (unsigned long long)s.st.explained);
        assert_true(above > 100 && below > 100);
        assert_int_equal(lr.n, lref.n);
        assert_int_equal(lr.rec_size, lref.rec_size);
        assert_memory_equal(lr.b, lref.b, (size_t)lr.n * lr.rec_size);
        free(lr.b);
        raw_free(&t);
        rs_test_svc_free(&s);
    }
    raw_free(&ref);
    free(lref.b);
    rs_test_svc_free(&s0);
}

/* The duplicate window survives a graceful restart (it is in the final
 * checkpoint): an event id of the first run sent again to the second gets
 * the first run's decision, flagged. */
static void dedup_restart(const char *kind) {
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    char ckpt[600];
    snprintf(ckpt, sizeof(ckpt), "%s/state.ckpt", rs_test_redis_dir(e.redis));
    /* max.poll.interval.ms: s2 joins while the mock still runs the
     * rebalance of s1's leave; a JoinGroup the mock dropped is sent again
     * after 13 s, not 303 s (test_service_faults.c, "Mock limitations") */
    const char *kv[] = {"service.checkpoint_path", ckpt,
                        "kafka.consumer.session.timeout.ms", "6000",
                        "kafka.consumer.max.poll.interval.ms", "10000",
                        "model.kind", kind, NULL};
    static rs_test_svc_t s1, s2;
    rs_test_svc_conf(&s1, &e, "g-dedup-restart", kv);
    rs_test_svc_run(&s1);
    rs_test_svc_wait_assigned(&s1, 30000);
    produce_events(&e, 0, 200);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s1, &s1.scored, 200, "scored", 30000));
    rs_test_svc_stop(&s1);
    assert_int_equal(s1.err, RS_OK);

    rs_test_svc_conf(&s2, &e, "g-dedup-restart", kv);
    rs_test_svc_run(&s2);
    rs_test_svc_wait_assigned(&s2, 30000);
    produce_event_t(&e, 50, 0);
    produce_events(&e, 200, 210);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s2, &s2.events, 11, "events", 30000));
    sleep_ms(300);
    rs_test_svc_stop(&s2);
    scores_t t;
    rs_test_read_scores(&e, 211, &t);
    const rs_score_t *x = scores_find(&t, "ev-50", 0);
    const rs_score_t *y = x ? scores_find(&t, "ev-50", (int)(x - t.sc) + 1)
                            : NULL;
    printf("dedup_restart[%s]: second run: scored %llu, duplicates %llu; "
           "ev-50 %d record(s), %.9g flags %u then %.9g flags %u\n", kind,
           (unsigned long long)s2.st.scored,
           (unsigned long long)s2.st.duplicates, scores_count(&t, "ev-50"),
           x ? x->score : -1.0, x ? x->flags : 0, y ? y->score : -1.0,
           y ? y->flags : 0);
    assert_int_equal(s2.err, RS_OK);
    assert_int_equal(s2.st.scored, 10);
    assert_int_equal(s2.st.duplicates, 1);
    assert_non_null(y);
    assert_true(x->score == y->score);
    assert_string_equal(x->model_version, y->model_version);
    assert_int_equal(y->flags, x->flags | RS_SCORE_FLAG_DUPLICATE);
    free(t.sc);
    rs_test_svc_free(&s1);
    rs_test_svc_free(&s2);
    rs_test_env_close(&e);
}

static void test_dedup_restart(void **state) {
    (void)state;
    dedup_restart("seq"); /* the checkpoint also holds the entity caches */
    dedup_restart("lr");  /* no caches                                    */
}

/* Wait until rs_service_ready() says `want`; its reason into why. */
static int wait_ready(rs_test_svc_t *s, int want, char *why, size_t size,
                      int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    for (;;) {
        rs_service_t *sv = atomic_load(&s->svc);
        const char *w = NULL;
        int r = sv ? rs_service_ready(sv, &w) : 0;
        snprintf(why, size, "%s", w ? w : "-");
        if (r == want) return 1;
        if (now_s() > deadline) return 0;
        sleep_ms(50);
    }
}

/* Periodic checkpoints are taken with batches in flight and committed only
 * once those batches are delivered (scoring/svc_ckpt.c): a restart starts
 * where the file's state ends, so the file must never name an offset
 * whose scores are not out.  Redis frozen (SIGSTOP) leaves 250 scored
 * events undelivered (at-least-once: not written; exactly-once: their
 * transaction, every 3 s, waits for Redis) for 3 s, three checkpoint
 * periods: the file keeps naming offset 50, what was delivered; once
 * Redis runs again a checkpoint naming 300 is committed while the service
 * runs. */
static void ckpt_delivered(const char *delivery) {
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    char ckpt[600], group[64];
    snprintf(ckpt, sizeof(ckpt), "%s/state.ckpt", rs_test_redis_dir(e.redis));
    snprintf(group, sizeof(group), "g-ckpt-%s", delivery);
    const char *kv[] = {"service.checkpoint_path", ckpt,
                        "service.checkpoint_interval", "1s",
                        "service.delivery", delivery,
                        "service.transaction_interval", "3s",
                        "service.commit_timeout", "60s",
                        "redis.timeout", "60s", "topics.batch_max", "16",
                        NULL};
    static rs_test_svc_t s;
    rs_test_svc_conf(&s, &e, group, kv);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    produce_events(&e, 0, 50);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored, 50, "scored", 30000));
    assert_true(wait_ckpt(ckpt, 50, 20000));
    pid_t rp = rs_test_redis_pid(e.redis);
    assert_int_equal(kill(rp, SIGSTOP), 0);
    produce_events(&e, 50, 300);
    rs_test_env_flush(&e);
    int scored = rs_test_svc_wait_count(&s, &s.scored, 300, "scored", 30000);
    int64_t most = 0;
    for (double t0 = now_s(); now_s() - t0 < 3.0; sleep_ms(50)) {
        int64_t o = ckpt_offset(ckpt, RS_MSG_TOPIC_EVENTS, 0);
        if (o > most) most = o;
    }
    assert_int_equal(kill(rp, SIGCONT), 0);
    int moved = wait_ckpt(ckpt, 300, 30000);
    printf("ckpt_delivered: %s: with 250 scored events undelivered the "
           "checkpoint named at most offset %lld; after delivery %s\n",
           delivery, (long long)most, moved ? "300" : "not 300 within 30 s");
    rs_test_svc_stop(&s);
    assert_true(scored);
    assert_int_equal(most, 50);
    assert_true(moved);
    assert_int_equal(s.err, RS_OK);
    assert_int_equal(s.st.checkpoint_errors, 0);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

static void test_ckpt_delivered(void **state) {
    (void)state;
    ckpt_delivered("at_least_once");
    ckpt_delivered("exactly_once");
}

/* A stuck service is not ready: Redis frozen (SIGSTOP; its timeout long,
 * so the writer waits instead of seeing an outage), the writer's small
 * buffer full, consumption paused with input waiting.  After
 * service.stall_timeout /readyz says "scoring stalled"; once Redis runs
 * again everything is scored and the service is ready again. */
/* service.trace_slow only looks: with it on (1 ms, its smallest value)
 * the service publishes the records of a run without it, byte for byte
 * (scoring time and latency blanked, as in test_workers_equal), and the
 * same learning records, and it logs slow turns (the first batch's events
 * waited for the group join, seconds on the mock, before they were read:
 * at least one turn is over 1 ms whatever the machine); off, none. */
static void test_trace_slow(void **state) {
    (void)state;
    static raw_t ref, t;
    static rs_test_svc_t s1, s;
    static lrecs_t lref, lr;
    run_workers(2, "json", &ref, &s1, &lref);
    assert_int_equal(s1.st.slow_turns, 0);
    run_workers_traced(2, "json", "1ms", &t, &s, &lr);
    int diff = t.n == ref.n ? 0 : -1;
    for (int i = 0; diff >= 0 && i < t.n; i++)
        diff += t.len[i] != ref.len[i] ||
                memcmp(t.rec[i], ref.rec[i], t.len[i]) != 0;
    int ldiff = lr.n == lref.n && lr.rec_size == lref.rec_size ? 0 : -1;
    for (int i = 0; ldiff >= 0 && i < lr.n; i++)
        ldiff += memcmp(lr.b + (size_t)i * lr.rec_size,
                        lref.b + (size_t)i * lr.rec_size, lr.rec_size) != 0;
    printf("trace_slow: %llu slow turns logged of %llu batches; %d records "
           "(%d differ), %d learning records (%d differ)\n",
           (unsigned long long)s.st.slow_turns,
           (unsigned long long)s.st.batches, t.n, diff, lr.n, ldiff);
    assert_true(s.st.slow_turns > 0);
    assert_int_equal(diff, 0);
    assert_int_equal(ldiff, 0);
    assert_int_equal(s.st.scored, s1.st.scored);
    raw_free(&t);
    raw_free(&ref);
    free(lr.b);
    free(lref.b);
    rs_test_svc_free(&s);
    rs_test_svc_free(&s1);
}

static void test_stall_readiness(void **state) {
    (void)state;
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    const char *kv[] = {"service.stall_timeout", "2s", "redis.timeout", "60s",
                        "redis.buffer_bytes", "65536", "topics.batch_max",
                        "8", NULL};
    static rs_test_svc_t s;
    char why[256];
    rs_test_svc_conf(&s, &e, "g-stall", kv);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    produce_events(&e, 0, 50);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored, 50, "scored", 30000));
    assert_true(wait_ready(&s, 1, why, sizeof(why), 10000));
    pid_t rp = rs_test_redis_pid(e.redis);
    assert_int_equal(kill(rp, SIGSTOP), 0);
    produce_events(&e, 50, 1000);
    rs_test_env_flush(&e);
    double t0 = now_s();
    int unready = wait_ready(&s, 0, why, sizeof(why), 20000);
    double t_unready = now_s() - t0;
    uint64_t at = atomic_load(&s.scored);
    assert_int_equal(kill(rp, SIGCONT), 0);
    printf("stall_readiness: not ready %.1f s after Redis froze (scored "
           "%llu of 1000): %s\n", t_unready, (unsigned long long)at, why);
    int scored = rs_test_svc_wait_count(&s, &s.scored, 1000, "scored", 60000);
    char why2[256];
    int ready = wait_ready(&s, 1, why2, sizeof(why2), 10000);
    rs_test_svc_stop(&s);
    assert_true(unready);
    assert_non_null(strstr(why, "scoring stalled"));
    assert_true(at < 1000);
    assert_true(scored);
    assert_true(ready);
    assert_int_equal(s.err, RS_OK);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

/* Configuration errors rs_service_new finds before it starts anything
 * (RS_ERR_CONFIG: exit 2 in serve): a bad `kafka:` property, and sizes
 * inside their documented ranges that the machine cannot hold (here a
 * 1 GiB machine: rs_memory_limit_override) -- they used to abort in an
 * allocation (exit 134) or exit 1. */
static void test_bad_sizes(void **state) {
    (void)state;
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    const struct {
        const char *k, *v, *want;
    } cases[] = {
        {"seq.max_entities", "1048576", "seq.max_entities needs"},
        {"features.max_keys", "4194304", "features.max_keys needs"},
        {"redis.buffer_bytes", "2000000000", "redis.buffer_bytes needs 1.9 GiB"},
        {"kafka.consumer.fetch.wait.max.ms", "soon",
         "kafka property 'consumer.fetch.wait.max.ms'"},
        {"kafka.no.such.property", "1", "kafka property 'no.such.property'"},
    };
    rs_memory_limit_override = 1ULL << 30;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static rs_test_svc_t s;
        const char *kv[] = {cases[i].k, cases[i].v, NULL};
        rs_test_svc_conf(&s, &e, "g-bad", kv);
        rs_err_t err = RS_OK;
        uint64_t total = 0;
        char errstr[512];
        rs_app_conf_mem_check(&s.app, &total, errstr, sizeof(errstr));
        rs_service_t *svc = rs_service_new(&s.app, e.boot, &err, errstr,
                                           sizeof(errstr));
        printf("bad_sizes: %s=%s (%.2f GiB) -> %s: %s\n", cases[i].k,
               cases[i].v, (double)total / (1 << 30), rs_err_str(err),
               errstr);
        assert_null(svc);
        assert_int_equal(err, RS_ERR_CONFIG);
        assert_non_null(strstr(errstr, cases[i].want));
        rs_test_svc_free(&s);
    }
    /* The defaults fit in 1 GiB. */
    static rs_test_svc_t s;
    rs_test_svc_conf(&s, &e, "g-bad", NULL);
    uint64_t total = 0;
    char errstr[512];
    assert_int_equal(rs_app_conf_mem_check(&s.app, &total, errstr,
                                           sizeof(errstr)), RS_OK);
    printf("bad_sizes: the defaults need %.0f MiB\n",
           (double)total / (1 << 20));
    rs_test_svc_free(&s);
    rs_memory_limit_override = 0;
    rs_test_env_close(&e);
}

/* After every test, also a failed one: stop what it left running. */
/* Issue 12: the first learning-log segment of a partition off the
 * scoring thread.  Process-wide counters (rs_learnlog_totals): nothing
 * else runs in this process meanwhile. */
static void test_log_first_ahead(void **state) {
    (void)state;
    /* static: teardown() may close it after a failure */
    static rs_test_env_t e;
    rs_test_env_open(&e, 4);
    static rs_test_svc_t s;
    rs_learnlog_totals_t t0, t1;
    rs_learnlog_totals(&t0);
    rs_test_svc_conf(&s, &e, "g-log-first", NULL);
    rs_test_svc_run(&s);
    rs_test_svc_wait_assigned(&s, 30000);
    /* no input yet: the trainer makes each partition's first segment */
    double deadline = now_s() + 30;
    do {
        sleep_ms(20);
        rs_learnlog_totals(&t1);
    } while (t1.prepared - t0.prepared < 4 && now_s() < deadline);
    assert_int_equal(t1.prepared - t0.prepared, 4);
    assert_int_equal(t1.begun_made + t1.begun_ready,
                     t0.begun_made + t0.begun_ready); /* none begun */
    produce_events(&e, 0, 300);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored, 300, "scored", 30000));
    rs_test_svc_stop(&s);
    rs_learnlog_totals(&t1);
    printf("log_first_ahead: segments made ahead %llu, begun ready-made "
           "%llu, made on the scoring thread %llu, dropped %llu\n",
           (unsigned long long)(t1.prepared - t0.prepared),
           (unsigned long long)(t1.begun_ready - t0.begun_ready),
           (unsigned long long)(t1.begun_made - t0.begun_made),
           (unsigned long long)(t1.dropped - t0.dropped));
    assert_int_equal(s.err, RS_OK);
    assert_int_equal(t1.begun_made - t0.begun_made, 0);
    assert_true(t1.begun_ready - t0.begun_ready >= 1);
    /* the ones of partitions without events: dropped at close */
    assert_int_equal((t1.begun_ready - t0.begun_ready) +
                         (t1.dropped - t0.dropped), 4);
    assert_int_equal(metric(s.metrics, "riskstream_learning_log_segments_"
                                       "total{made=\"scoring\"}"),
                     (double)t1.begun_made);
    assert_int_equal(metric(s.metrics, "riskstream_learning_log_segments_"
                                       "total{made=\"ahead\"}"),
                     (double)t1.begun_ready);
    assert_int_equal(metric(s.metrics, "riskstream_learning_log_spares_"
                                       "total"),
                     (double)t1.prepared);
    assert_true(metric(s.metrics, "riskstream_learning_log_segments") >= 1);
    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

static int teardown(void **state) {
    (void)state;
    rs_test_svc_teardown();
    rs_memory_limit_override = 0;
    return 0;
}

int main(void) {
    const char *lv = getenv("RS_TEST_LOG");
    int level = lv ? rs_log_level_parse(lv) : -1;
    rs_log_set_level(level >= 0 ? (rs_log_level_t)level : RS_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_eos_label_between, teardown),
        cmocka_unit_test_teardown(test_alo_rejects_only, teardown),
        cmocka_unit_test_teardown(test_stop_under_load, teardown),
        cmocka_unit_test_teardown(test_future_event, teardown),
        cmocka_unit_test_teardown(test_duplicates, teardown),
        cmocka_unit_test_teardown(test_dedup_restart, teardown),
        cmocka_unit_test_teardown(test_workers_equal, teardown),
        cmocka_unit_test_teardown(test_explain_min, teardown),
        cmocka_unit_test_teardown(test_trace_slow, teardown),
        cmocka_unit_test_teardown(test_stall_readiness, teardown),
        cmocka_unit_test_teardown(test_ckpt_delivered, teardown),
        cmocka_unit_test_teardown(test_log_first_ahead, teardown),
        cmocka_unit_test_teardown(test_bad_sizes, teardown),
    };
    const char *f = getenv("RS_TEST_FILTER");
    if (f && *f) cmocka_set_test_filter(f);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
