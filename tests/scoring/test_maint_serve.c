/* test_maint_serve.c -- predictive maintenance in the running service
 * (issue 15; scoring/alerts.h): the real service (rs_service_new +
 * rs_service_run on its own thread) against an in-process librdkafka mock
 * cluster and a private redis-server, with maintenance.enabled.
 *
 *  - test_failure_alert: three machines read every 5 minutes for 2 hours
 *    (A's temperature drifts in its last hour); then A fails (one failure
 *    label naming its last reading, reported twice, 1 h after it), C is
 *    repaired (a label with value 0 naming the machine itself, 10 min
 *    after), B keeps running.  The reports are consumed before any reading
 *    of that event time: they wait (riskstream_maintenance_reports_waited)
 *    until B's later readings bring the partition's event time there.
 *    Checked:
 *      * learning (learner stats, through /metrics): A's 13 readings in
 *        [T - horizon, T] learned as positives, its 11 older ones and C's
 *        24 as negatives, nothing matured (fixed 30d maturity), the
 *        repeated report is the same failure (not learned again);
 *      * the alert policy (debounce of 13 readings at threshold 0): one
 *        alert per machine, on its 13th reading: the scores topic has
 *        exactly those three records decided alert, every other reading
 *        approve; the alerts topic carries three maintenance payloads
 *        (machine, event, decision, fails_within_ms = the horizon, the top
 *        drifting sensors with their reasons -- A's first is temperature,
 *        drifting up --, the model version), not score records;
 *      * the lead time: A's failure is caught 55 min ahead (its alert at
 *        60 min, failure at 115 min);
 *      * metrics: riskstream_alerts_open 1 (B's; A failed, C repaired),
 *        riskstream_alert_episodes_total 3, the lead-time histogram (one
 *        caught failure, sum 3300 s), failures 1, repairs 1, repeated 1;
 *      * Redis: A's alerting reading's record says alert and is in the
 *        alert index;
 *      * remaining useful life (maintenance.rul, cap 2 h): no record carries
 *        `rul` before the head learned anything; after A's failure taught
 *        it, and the trainer published a version (model.publish_every 10),
 *        B's next readings carry an estimate in (0, 2 h] (read from Redis;
 *        B reads one more at a time until one does: no timing assumed);
 *      * `alert_score` (the cold start is on by default): wherever a record
 *        carries it, it is above the record's `score` (the noisy-OR only
 *        adds) and at most 1.
 *  - test_coldstart_alert_score: maintenance.cold_start with a real
 *    threshold (0.5, one reading) and no failure reported: the untrained
 *    lr scores its prior (model.base_rate 0.01) on every reading, so any
 *    alert is the blend's.  Checked: machine A (drifting) is alerted on;
 *    every record decided alert has `score` < 0.5 (the model's own) and
 *    `alert_score` >= 0.5; every `alert_score` is above its `score`; the
 *    alerts topic payload's `score` of A's alert is the record's
 *    `alert_score` (same float); the Redis record carries it too.
 *  - test_coldstart_restart: the cold-start blend's failure count is in
 *    the service's checkpoint (svc_ckpt.c, the maintenance record).  A
 *    service with service.checkpoint_path reads two machines for 2 h, A
 *    fails (reported at its last reading), the service stops (final
 *    checkpoint): riskstream_coldstart_failures 1, and (threshold 0.005,
 *    under the untrained model's prior 0.01, in that run only) the
 *    model's own policy had alerted on A 1 h 45 min ahead:
 *    riskstream_coldstart_caught 1, also restored.  A second service on
 *    the same checkpoint resumes after it: after two more readings of
 *    each machine it counts 1 failure (its own riskstream_failures_total
 *    is 0: none was reported to it), where it counted 0 before the count
 *    was checkpointed.  A third start, in which B fails, counts 2 (the
 *    restored count goes on).  The trainer's rehearsal state (record
 *    RREH: its failure count and the log positions of the positives it
 *    keeps, /metrics riskstream_rehearsal_failures / _positives) does the
 *    same: 1 failure and A's 13 positives after run 1, the same after run
 *    2 (0 and 0 before it was checkpointed), 2 and 26 after run 3 (A's
 *    restored positions are inside the restored logs).
 *  - test_alertpol_restart: the alert policy's machine table is in the
 *    checkpoint (record RMAP; cold start off: written without it).
 *    Threshold 0, 4 readings to alert, no cool-down.  Run 1: A reads 6
 *    (alerted on its 4th, episode open), B 2; stop.  Run 2 on the
 *    checkpoint: A reads 4 more and is NOT alerted again (its episode is
 *    open: one alert per episode; a fresh table alerts on r-A-09), B 2
 *    more and is alerted on its 4th reading overall (the debounce goes
 *    on; a fresh one is at 2 of 4).  Checked: run 2's
 *    riskstream_maintenance_alerts_total{kind="alert"} 1 and
 *    riskstream_alerts_open 2; over both runs the scores topic has
 *    exactly r-A-03 and r-B-03 decided alert.
 *  - test_part_move: the maintenance state follows its partition to
 *    another instance (see the test).
 *  - test_standby_open: with standby copies (state.standby 1), each
 *    instance's riskstream_alerts_open counts only the partitions it
 *    owns; the copies' open episodes are riskstream_alerts_open_standby.
 *
 * Environment: RS_TEST_LOG=debug|info|warn|error|off (default warn).
 */
#define _GNU_SOURCE
#include <math.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "scoring/scoring.h"
#include "ingest/ingest.h"
#include "scoring/sink.h"
#include "tests/support/rs_test_kafka.h"
#include "tests/support/rs_test_redis.h"
#include "tests/support/rs_test_svc.h"

#define BASE_MS 1700000000000LL

/* A stored score record (compact by default, redis.record_format) as the
 * JSON the scores topic got, in a static buffer. */
static const char *rec_json(const redisReply *r) {
    static char buf[RS_ENCODE_MAX];
    char es[256];
    size_t jl;
    assert_int_equal(rs_redis_rec_json(r->str, (size_t)r->len, NULL, buf,
                                       sizeof(buf), &jl, es, sizeof(es)),
                     RS_OK);
    return buf;
}

/* The value of metric line `name` (exact name, no labels) in text. */
static double metric(const char *text, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, name, nl) && p[nl] == ' ') return atof(p + nl + 1);
    return -1;
}

/* Score records read back from the scores topic (rs_test_svc.h). */
typedef rs_test_scores_t scores_t;

/* -------------------------------------------------------------- stream */

#define STEP_MS (5 * 60000LL)  /* a reading every 5 minutes */
#define NREAD 24               /* 2 hours per machine       */
#define HORIZON_MS 3600000LL

static const char *const machines[] = {"machine-A", "machine-B", "machine-C"};

/* Reading j of machine m: A's temperature drifts up in its last hour. */
static void produce_reading(rs_test_env_t *e, int m, int j) {
    char buf[1024], id[32];
    snprintf(id, sizeof(id), "r-%c-%02d", 'A' + m, j);
    double temp = 60.0 + 0.3 * ((j * 7 + m * 3) % 5) - 0.6;
    double vib = 2.0 + 0.02 * ((j * 3 + m) % 4);
    if (m == 0 && j >= 12) temp += 1.5 * (j - 11);
    snprintf(buf, sizeof(buf),
             "{\"id\":\"%s\",\"type\":\"sensor\",\"entity_id\":\"%s\","
             "\"counterparty_id\":\"site-1\",\"event_time_ms\":%lld,"
             "\"numeric_fields\":{\"temperature\":%.3f,\"vibration\":%.3f}}",
             id, machines[m], BASE_MS + (long long)j * STEP_MS, temp, vib);
    rs_test_env_produce(e, RS_TEST_T_EVENTS, machines[m], buf);
}

/* Start s on e (group, kv), produce NREAD readings of machines 0..nmach-1
 * and wait until they are scored. */
static void start_and_read(rs_test_svc_t *s, rs_test_env_t *e,
                           const char *group, const char *const *kv,
                           int nmach) {
    rs_test_svc_start(s, e, group, kv, NULL, 30000);
    for (int j = 0; j < NREAD; j++)
        for (int m = 0; m < nmach; m++) produce_reading(e, m, j);
    rs_test_env_flush(e);
    assert_true(rs_test_svc_wait_count(s, &s->scored,
                                       (uint64_t)(nmach * NREAD), "scored",
                                       60000));
}

static void produce_mlabel(rs_test_env_t *e, int m, const char *event_id,
                           int value, int64_t t_ms) {
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"event_id\":\"%s\",\"entity_id\":\"%s\",\"value\":%d,"
             "\"label_time_ms\":%lld}", event_id, machines[m], value,
             (long long)t_ms);
    rs_test_env_produce(e, RS_TEST_T_LABELS, machines[m], buf);
}

/* Messages of a topic, as text. */
typedef struct msgs_s {
    int n;
    char *m[64];
} msgs_t;

static void msgs_cb(void *opaque, const rd_kafka_message_t *rkm) {
    msgs_t *t = opaque;
    if (t->n < 64) t->m[t->n++] = strndup(rkm->payload, rkm->len);
}

static double metric_l(const char *text, const char *line_prefix) {
    const char *p = strstr(text, line_prefix);
    return p ? atof(p + strlen(line_prefix)) : -1;
}

/* ------------------------------------------------------------------ test */

static void test_failure_alert(void **state) {
    (void)state;
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    static rs_test_svc_t s;
    const char *kv[] = {"maintenance.enabled", "true",
                        "maintenance.horizon", "1h",
                        "maintenance.alert_threshold", "0",
                        "maintenance.alert_readings", "13",
                        "maintenance.alert_escalation", "1",
                        "maintenance.rul", "true",
                        "maintenance.rul_cap", "2",
                        "model.publish_every", "10",
                        "model.kind", "lr",
                        "model.label_horizon", "30d",
                        "features.preset", "sensors",
                        "features.sensor_fields", "temperature,vibration",
                        NULL};
    start_and_read(&s, &e, "g-maint", kv, 3);
    /* A fails after its last reading (reported twice, 1 h later); C is
     * repaired; B runs on */
    int64_t t_last = BASE_MS + (NREAD - 1) * STEP_MS;
    produce_mlabel(&e, 0, "r-A-23", 1, t_last + 3600000);
    produce_mlabel(&e, 0, "r-A-23", 1, t_last + 3700000);
    produce_mlabel(&e, 2, "machine-C", 0, t_last + 600000);
    rs_test_env_flush(&e);
    assert_true(rs_test_svc_wait_count(&s, &s.labels, 3, "labels", 60000));

    /* RUL: A's failure taught the head (24 readings, all within the 2 h
     * cap); once the trainer published a version the scorer estimates:
     * B's next readings (one at a time until one carries an estimate) */
    redisContext *rc = rs_test_redis_connect(e.redis);
    int nextra = 0;
    long long rul = 0;
    while (!rul && nextra < 40) {
        produce_reading(&e, 1, NREAD + nextra);
        rs_test_env_flush(&e);
        nextra++;
        assert_true(rs_test_svc_wait_count(&s, &s.scored, 3 * NREAD + nextra,
                                           "scored", 60000));
        char key[64];
        snprintf(key, sizeof(key), "rs:score:r-B-%02d", NREAD + nextra - 1);
        redisReply *r = rs_test_redis_get_wait(rc, key);
        const char *p = strstr(rec_json(r), "\"rul\":");
        if (p) rul = atoll(p + 6);
        freeReplyObject(r);
    }
    printf("rul: first estimate %.2f h, on B's reading %d after the failure\n",
           (double)rul / 3600000.0, nextra);
    assert_true(rul > 0 && rul <= 2 * HORIZON_MS);
    rs_test_svc_stop(&s);
    assert_int_equal(s.err, RS_OK);
    const char *mt = s.metrics;

    /* learning: [T - H, T] = readings 11..23 of A are positives */
    assert_int_equal((int)metric_l(mt, "riskstream_learned_total{cause=\"positive_label\"} "), 13);
    assert_int_equal((int)metric_l(mt, "riskstream_learned_total{cause=\"negative_label\"} "), 11 + 24);
    assert_int_equal((int)metric_l(mt, "riskstream_learned_total{cause=\"matured\"} "), 0);
    assert_int_equal((int)metric_l(mt, "riskstream_learned_total{cause=\"correction\"} "), 0);

    /* policy and metrics */
    assert_int_equal((int)metric(mt, "riskstream_alerts_open"), 1);
    assert_int_equal((int)metric(mt, "riskstream_alert_episodes_total"), 3);
    assert_int_equal((int)metric(mt, "riskstream_failures_total"), 1);
    assert_int_equal((int)metric(mt, "riskstream_failures_caught_total"), 1);
    assert_int_equal((int)metric(mt, "riskstream_repairs_total"), 1);
    assert_int_equal((int)metric(mt, "riskstream_failure_labels_repeated_total"), 1);
    /* both reports came ahead of the readings' event time: they waited */
    assert_int_equal((int)metric(mt, "riskstream_maintenance_reports_waited_total"), 2);
    assert_int_equal((int)metric(mt, "riskstream_alert_lead_time_seconds_count"), 1);
    assert_int_equal((int)metric(mt, "riskstream_alert_lead_time_seconds_sum"), 55 * 60);
    assert_int_equal((int)metric_l(mt, "riskstream_alert_lead_time_seconds_bucket{le=\"1800\"} "), 0);
    assert_int_equal((int)metric_l(mt, "riskstream_alert_lead_time_seconds_bucket{le=\"3600\"} "), 1);

    /* scores topic: exactly the 13th reading of each machine is an alert */
    scores_t sc;
    rs_test_read_scores(&e, 3 * NREAD + nextra, &sc);
    assert_int_equal(sc.n, 3 * NREAD + nextra);
    int alerts = 0;
    for (int i = 0; i < sc.n; i++) {
        int j = atoi(sc.sc[i].event_id + 4);
        /* no estimate before the head learned anything */
        if (j < NREAD) assert_int_equal(sc.sc[i].rul, 0);
        /* the blend only adds to the model's score (coldstart.h) */
        if (sc.sc[i].alert_score != 0)
            assert_true(sc.sc[i].alert_score > sc.sc[i].score &&
                        sc.sc[i].alert_score <= 1);
        if (j >= NREAD) continue; /* B's readings after, in open episode */
        if (sc.sc[i].decision == RS_DECISION_ALERT) {
            alerts++;
            assert_int_equal(j, 12);
        } else {
            assert_int_equal(sc.sc[i].decision, RS_DECISION_APPROVE);
        }
    }
    assert_int_equal(alerts, 3);
    free(sc.sc);

    /* alerts topic: the maintenance payloads */
    msgs_t al;
    memset(&al, 0, sizeof(al));
    rs_test_kafka_read(e.boot, rs_test_topics[RS_TEST_T_ALERTS], 3, 1500, 60000,
                       msgs_cb, &al);
    assert_int_equal(al.n, 3);
    int seen_a = 0;
    for (int i = 0; i < al.n; i++) {
        json_error_t jerr;
        json_t *o = json_loads(al.m[i], 0, &jerr);
        assert_non_null(o);
        const char *mach = json_string_value(json_object_get(o, "machine"));
        assert_non_null(mach);
        assert_null(json_object_get(o, "explanation")); /* not a score record */
        assert_string_equal(json_string_value(json_object_get(o, "decision")),
                            "alert");
        assert_int_equal(json_integer_value(json_object_get(o, "fails_within_ms")),
                         HORIZON_MS);
        const char *ver = json_string_value(json_object_get(o, "model_version"));
        assert_non_null(ver);
        assert_true(strlen(ver) > 0);
        json_t *dr = json_object_get(o, "drifting");
        assert_true(json_is_array(dr));
        assert_true(json_array_size(dr) >= 1);
        if (!strcmp(mach, "machine-A")) {
            seen_a = 1;
            assert_string_equal(json_string_value(json_object_get(o, "event_id")),
                                "r-A-12");
            json_t *d0 = json_array_get(dr, 0);
            const char *f0 = json_string_value(json_object_get(d0, "feature"));
            assert_non_null(strstr(f0, "temperature"));
            assert_true(json_real_value(json_object_get(d0, "value")) > 0 ||
                        json_integer_value(json_object_get(d0, "value")) > 0);
            const char *why = json_string_value(json_object_get(d0, "reason"));
            assert_non_null(why);
            printf("alert of machine-A: %s\n", al.m[i]);
        }
        json_decref(o);
        free(al.m[i]);
    }
    assert_true(seen_a);

    /* Redis: the alerting reading's record and the alert index */
    redisReply *r = redisCommand(rc, "GET rs:score:r-A-12");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(rec_json(r), "\"decision\":\"alert\""));
    freeReplyObject(r);
    r = redisCommand(rc, "ZSCORE rs:alerts r-A-12");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    redisFree(rc);

    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

/* The score the policy decided on is on record (issue 15): alerts decided
 * by the cold-start blend, with the model's own score below the
 * threshold, carry alert_score at or above it. */
static void test_coldstart_alert_score(void **state) {
    (void)state;
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    static rs_test_svc_t s;
    const char *kv[] = {"maintenance.enabled", "true",
                        "maintenance.horizon", "1h",
                        "maintenance.alert_threshold", "0.5",
                        "maintenance.alert_readings", "1",
                        "maintenance.alert_escalation", "1",
                        "maintenance.cold_start", "true",
                        "model.kind", "lr",
                        "model.label_horizon", "30d",
                        "features.preset", "sensors",
                        "features.sensor_fields", "temperature,vibration",
                        /* a short span: the baseline (the machine's life
                         * before the span) is A's healthy hour */
                        "features.sensor_spans", "4",
                        NULL};
    start_and_read(&s, &e, "g-maint-cs", kv, 2);
    rs_test_svc_stop(&s);
    assert_int_equal(s.err, RS_OK);

    scores_t sc;
    rs_test_read_scores(&e, 2 * NREAD, &sc);
    assert_int_equal(sc.n, 2 * NREAD);
    int alerts = 0, with = 0;
    char a_id[RS_ID_MAX] = "";
    double a_score = 0;
    for (int i = 0; i < sc.n; i++) {
        const rs_score_t *r = &sc.sc[i];
        if (r->alert_score != 0) {
            with++;
            assert_true(r->alert_score > r->score && r->alert_score <= 1);
        }
        if (r->decision != RS_DECISION_ALERT) {
            assert_int_equal(r->decision, RS_DECISION_APPROVE);
            continue;
        }
        alerts++;
        assert_true(r->score < 0.5);        /* the model's own: no alert */
        assert_true(r->alert_score >= 0.5); /* what the policy decided on */
        if (!a_id[0] && !strcmp(r->entity_id, "machine-A")) {
            rs_strlcpy(a_id, r->event_id, sizeof(a_id));
            a_score = r->alert_score;
        }
    }
    printf("cold start: %d alerts, %d of %d records carry alert_score; "
           "machine-A's first alert %s, alert_score %.6f\n", alerts, with,
           sc.n, a_id, a_score);
    assert_true(a_id[0] != '\0');
    free(sc.sc);

    /* the alerts topic: A's payload score is the record's alert_score */
    msgs_t al;
    memset(&al, 0, sizeof(al));
    rs_test_kafka_read(e.boot, rs_test_topics[RS_TEST_T_ALERTS], alerts, 1500,
                       60000, msgs_cb, &al);
    assert_int_equal(al.n, alerts);
    int seen = 0;
    for (int i = 0; i < al.n; i++) {
        json_error_t jerr;
        json_t *o = json_loads(al.m[i], 0, &jerr);
        assert_non_null(o);
        if (!strcmp(json_string_value(json_object_get(o, "event_id")), a_id)) {
            seen = 1;
            double ps = json_number_value(json_object_get(o, "score"));
            assert_true((float)ps == (float)a_score);
        }
        json_decref(o);
        free(al.m[i]);
    }
    assert_true(seen);

    /* Redis keeps the same record */
    redisContext *rc = rs_test_redis_connect(e.redis);
    char key[128];
    snprintf(key, sizeof(key), "rs:score:%s", a_id);
    redisReply *r = rs_test_redis_get_wait(rc, key);
    rs_score_t rec;
    char es[256];
    assert_int_equal(rs_score_from_json(rec_json(r), strlen(rec_json(r)), &rec, es,
                                        sizeof(es)), RS_OK);
    assert_int_equal(rec.decision, RS_DECISION_ALERT);
    assert_true(rec.alert_score == a_score);
    freeReplyObject(r);
    redisFree(rc);

    rs_test_svc_free(&s);
    rs_test_env_close(&e);
}

/* The cold-start failure count survives a restart (svc_ckpt.c record). */
static void coldstart_run(rs_test_env_t *e, const char *ckpt, int first,
                          int last, int fail_m, const char *thr,
                          double *counted, double *caught, double *failures,
                          double reh[2]) {
    static rs_test_svc_t s;
    const char *kv[] = {"maintenance.enabled", "true",
                        "maintenance.horizon", "1h",
                        "maintenance.cold_start", "true",
                        "maintenance.alert_threshold", thr,
                        "model.kind", "lr",
                        "model.label_horizon", "30d",
                        "features.preset", "sensors",
                        "features.sensor_fields", "temperature,vibration",
                        "service.checkpoint_path", ckpt,
                        NULL};
    rs_test_svc_start(&s, e, "g-maint-ckpt", kv, NULL, 30000);
    for (int j = first; j < last; j++)
        for (int m = 0; m < 2; m++) produce_reading(e, m, j);
    rs_test_env_flush(e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored,
                                       2 * (uint64_t)(last - first), "scored",
                                       60000));
    if (fail_m >= 0) {
        /* reported at the machine's last reading: due at once */
        char id[32];
        snprintf(id, sizeof(id), "r-%c-%02d", 'A' + fail_m, last - 1);
        produce_mlabel(e, fail_m, id, 1, BASE_MS + (last - 1) * STEP_MS);
        rs_test_env_flush(e);
        assert_true(rs_test_svc_wait_count(&s, &s.labels, 1, "labels", 60000));
    }
    rs_test_svc_stop(&s);
    assert_int_equal(s.err, RS_OK);
    assert_true(s.st.checkpoints >= 1);
    assert_int_equal(s.st.checkpoint_errors, 0);
    *counted = metric(s.metrics, "riskstream_coldstart_failures");
    *caught = metric(s.metrics, "riskstream_coldstart_caught");
    *failures = metric(s.metrics, "riskstream_failures_total");
    reh[0] = metric(s.metrics, "riskstream_rehearsal_failures");
    reh[1] = metric(s.metrics, "riskstream_rehearsal_positives");
    rs_test_svc_free(&s);
}

static void test_coldstart_restart(void **state) {
    (void)state;
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    char ckpt[600];
    snprintf(ckpt, sizeof(ckpt), "%s/state.ckpt", rs_test_redis_dir(e.redis));
    double counted, caught, failures, reh[2];
    /* 1: A fails after 2 h.  Threshold 0.005: the untrained lr's own
     * score (its prior, model.base_rate 0.01) is above it from the first
     * reading, so the model's own policy alerts on A at its 3rd reading,
     * 1 h 45 min before the failure (>= H/3 = 20 min): the model's record
     * (coldstart.h) counts it caught */
    coldstart_run(&e, ckpt, 0, NREAD, 0, "0.005", &counted, &caught,
                  &failures, reh);
    printf("coldstart_restart: run 1 counted %.0f failures (%.0f reported); "
           "rehearsal: %.0f failures, %.0f positives kept\n", counted,
           failures, reh[0], reh[1]);
    assert_int_equal((int)failures, 1);
    assert_int_equal((int)counted, 1);
    assert_int_equal((int)caught, 1);
    /* the trainer's rehearsal: A's 13 readings in [T - 1 h, T] */
    assert_int_equal((int)reh[0], 1);
    assert_int_equal((int)reh[1], 13);
    /* 2: restarted on the checkpoint; B and A's next life read 2 more
     * readings each, no failure */
    coldstart_run(&e, ckpt, NREAD, NREAD + 2, -1, "0.3", &counted, &caught,
                  &failures, reh);
    printf("coldstart_restart: run 2 counted %.0f failures (%.0f reported); "
           "rehearsal: %.0f failures, %.0f positives kept\n", counted,
           failures, reh[0], reh[1]);
    assert_int_equal((int)failures, 0);
    assert_int_equal((int)counted, 1);
    assert_int_equal((int)caught, 1);  /* restored with it (state v2) */
    /* the rehearsal state came back with the checkpoint (0 and 0 before
     * it was checkpointed) */
    assert_int_equal((int)reh[0], 1);
    assert_int_equal((int)reh[1], 13);
    /* 3: B fails in run 3: the count goes on from the restored one */
    coldstart_run(&e, ckpt, NREAD + 2, NREAD + 4, 1, "0.3", &counted,
                  &caught, &failures, reh);
    printf("coldstart_restart: run 3 counted %.0f failures (%.0f reported); "
           "rehearsal: %.0f failures, %.0f positives kept\n", counted,
           failures, reh[0], reh[1]);
    assert_int_equal((int)failures, 1);
    assert_int_equal((int)counted, 2);
    /* B's own-score record depends on what the trainer learned from A
     * by then (its thread): caught or not, never more than counted */
    assert_true(caught >= 1 && caught <= 2);
    /* A's restored positions (their log records are before the restored
     * ends) and B's 13 */
    assert_int_equal((int)reh[0], 2);
    assert_int_equal((int)reh[1], 26);
    rs_test_env_close(&e);
}

/* The alert policy's machine table survives a restart (svc_ckpt.c
 * record RMAP, alerts.h rs_alerts_table_*). */
static void alertpol_run(rs_test_env_t *e, const char *ckpt, int a0, int a1,
                         int b0, int b1, double *alerts, double *open) {
    static rs_test_svc_t s;
    const char *kv[] = {"maintenance.enabled", "true",
                        "maintenance.horizon", "1h",
                        "maintenance.cold_start", "false",
                        "maintenance.alert_threshold", "0",
                        "maintenance.alert_readings", "4",
                        "maintenance.alert_cooldown", "0s",
                        "maintenance.alert_escalation", "1",
                        "model.kind", "lr",
                        "model.label_horizon", "30d",
                        "features.preset", "sensors",
                        "features.sensor_fields", "temperature,vibration",
                        "service.checkpoint_path", ckpt,
                        NULL};
    rs_test_svc_start(&s, e, "g-maint-pol", kv, NULL, 30000);
    for (int j = a0; j < a1; j++) produce_reading(e, 0, j);
    for (int j = b0; j < b1; j++) produce_reading(e, 1, j);
    rs_test_env_flush(e);
    assert_true(rs_test_svc_wait_count(&s, &s.scored,
                                       (uint64_t)(a1 - a0 + b1 - b0),
                                       "scored", 60000));
    rs_test_svc_stop(&s);
    assert_int_equal(s.err, RS_OK);
    assert_true(s.st.checkpoints >= 1);
    assert_int_equal(s.st.checkpoint_errors, 0);
    *alerts = metric_l(s.metrics,
                       "riskstream_maintenance_alerts_total{kind=\"alert\"} ");
    *open = metric(s.metrics, "riskstream_alerts_open");
    rs_test_svc_free(&s);
}

static void test_alertpol_restart(void **state) {
    (void)state;
    static rs_test_env_t e;
    rs_test_env_open(&e, 1);
    char ckpt[600];
    snprintf(ckpt, sizeof(ckpt), "%s/state.ckpt", rs_test_redis_dir(e.redis));
    double alerts, open;
    /* 1: every score counts (threshold 0), 4 readings to alert: A reads 6
     * (alerted on r-A-03, episode open), B reads 2 (2 of 4) */
    alertpol_run(&e, ckpt, 0, 6, 0, 2, &alerts, &open);
    printf("alertpol_restart: run 1: %.0f alerts, %.0f open\n", alerts, open);
    assert_int_equal((int)alerts, 1);
    assert_int_equal((int)open, 1);
    /* 2: restarted on the checkpoint, A reads 4 more: its episode is
     * still open, no second alert (without the table: a new episode,
     * alerted on r-A-09); B reads 2 more: its debounce goes on and it is
     * alerted on r-B-03, its 4th reading (without the table: none) */
    alertpol_run(&e, ckpt, 6, 10, 2, 4, &alerts, &open);
    printf("alertpol_restart: run 2: %.0f alerts, %.0f open\n", alerts, open);
    assert_int_equal((int)open, 2);
    assert_int_equal((int)alerts, 1);
    /* the scores topic over both runs: one alert per episode */
    scores_t sc;
    rs_test_read_scores(&e, 14, &sc);
    assert_int_equal(sc.n, 14);
    int na = 0;
    for (int i = 0; i < sc.n; i++) {
        if (sc.sc[i].decision != RS_DECISION_ALERT) {
            assert_int_equal(sc.sc[i].decision, RS_DECISION_APPROVE);
            continue;
        }
        na++;
        assert_true(!strcmp(sc.sc[i].event_id, "r-A-03") ||
                    !strcmp(sc.sc[i].event_id, "r-B-03"));
    }
    assert_int_equal(na, 2);
    free(sc.sc);
    rs_test_env_close(&e);
}

/* ------------------------------------------- scale-out (i15part) */

/* Reading j of machine `mach`, on input partition `part` (its labels
 * would go to the same partition number: keyed by machine). */
static void produce_part_reading(rs_test_env_t *e, const char *mach,
                                 int part, int j) {
    char buf[1024], id[48];
    snprintf(id, sizeof(id), "r-%s-%02d", mach, j);
    snprintf(buf, sizeof(buf),
             "{\"id\":\"%s\",\"type\":\"sensor\",\"entity_id\":\"%s\","
             "\"counterparty_id\":\"site-1\",\"event_time_ms\":%lld,"
             "\"numeric_fields\":{\"temperature\":%.3f,\"vibration\":2.0}}",
             id, mach, BASE_MS + (long long)j * STEP_MS, 60.0 + 0.1 * j);
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        e->prod, RD_KAFKA_V_TOPIC(rs_test_topics[RS_TEST_T_EVENTS]),
        RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(mach, strlen(mach)),
        RD_KAFKA_V_VALUE(buf, strlen(buf)), RD_KAFKA_V_END);
    assert_int_equal(kerr, RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Machines O<p> (an open episode when their partition moves) and D<p>
 * (half way through the debounce) on input partition p = 0, 1. */
static const char *const pm_open[2] = {"pm-O0", "pm-O1"};
static const char *const pm_deb[2] = {"pm-D0", "pm-D1"};

/* The configuration of the two-instance tests: threshold 0 (every reading
 * counts), 4 readings to alert, no cool-down, lr on the sensors preset, the
 * state changelog, and with standby one standby copy per partition. */
static const char *const *pm_conf(int standby) {
    static const char *kv[] = {"maintenance.enabled", "true",
                               "maintenance.horizon", "1h",
                               "maintenance.cold_start", "true",
                               "maintenance.alert_threshold", "0",
                               "maintenance.alert_readings", "4",
                               "maintenance.alert_cooldown", "0s",
                               "maintenance.alert_escalation", "1",
                               "model.kind", "lr",
                               "model.label_horizon", "30d",
                               "features.preset", "sensors",
                               "features.sensor_fields",
                               "temperature,vibration",
                               "state.changelog", "true",
                               "kafka.consumer.session.timeout.ms", "6000",
                               /* a JoinGroup the mock dropped is sent
                                * again after 13 s, not 303 s
                                * (test_service_faults.c, "Mock
                                * limitations") */
                               "kafka.consumer.max.poll.interval.ms",
                               "10000",
                               NULL, NULL, NULL};
    const size_t n = sizeof(kv) / sizeof(kv[0]);
    kv[n - 3] = standby ? "state.standby" : NULL;
    kv[n - 2] = standby ? "1" : NULL;
    return kv;
}

/* O0, O1 read [o0, o1), D0, D1 read [d0, d1) (their partitions 0, 1),
 * all delivered. */
static void pm_produce(rs_test_env_t *e, int o0, int o1, int d0, int d1) {
    for (int p = 0; p < 2; p++) {
        for (int j = o0; j < o1; j++) produce_part_reading(e, pm_open[p], p, j);
        for (int j = d0; j < d1; j++) produce_part_reading(e, pm_deb[p], p, j);
    }
    rs_test_env_flush(e);
}

/* The maintenance state follows its partition (pstate.h 'A' records,
 * alerts.h rs_alerts_part_*): two instances in one group on the mock
 * cluster with the state changelog.  Threshold 0 (every reading counts),
 * 4 readings to alert, no cool-down.  A alone: O0, O1 read 6 (alerted on
 * their 4th, episodes open), D0, D1 read 2 (2 of 4).  B joins: one of the
 * two partitions moves to B, restored from the changelog.  Then O0, O1
 * read 4 more and D0, D1 2 more.  Checked: over the whole run the scores
 * topic has exactly r-pm-O0-03, r-pm-O1-03, r-pm-D0-03, r-pm-D1-03
 * decided alert -- the moved machines decide as if they never moved: the
 * open one is not alerted again (without the move of its state: alerted
 * on r-pm-Ox-09 by its new owner) and the debouncing one is alerted on
 * its 4th reading overall (without: not at all); the machines of the
 * partition that left A were dropped there: riskstream_alerts_open of A
 * and B add up to the 4 open episodes (without the drop: the moved open
 * machine is counted by both). */
static void test_part_move(void **state) {
    (void)state;
    static rs_test_env_t e;
    static rs_test_svc_t a, b;
    rs_test_env_open(&e, 2);
    rs_test_env_changelog(&e, "g-maint-part");
    const char *const *kv = pm_conf(0);
    rs_test_svc_start(&a, &e, "g-maint-part", kv, "A", 30000);
    pm_produce(&e, 0, 6, 0, 2);
    assert_true(rs_test_svc_wait_count(&a, &a.scored, 16, "A scored", 60000));
    rs_test_svc_start(&b, &e, "g-maint-part", kv, "B", 60000);
    pm_produce(&e, 6, 10, 2, 4);
    rs_test_svc_wait_total(&a, &b, 28);
    rs_test_svc_stop(&b);
    rs_test_svc_stop(&a);
    assert_int_equal(a.err, RS_OK);
    assert_int_equal(b.err, RS_OK);
    double open_a = metric(a.metrics, "riskstream_alerts_open");
    double open_b = metric(b.metrics, "riskstream_alerts_open");
    double rest_b = metric(b.metrics,
                           "riskstream_restores_total{source=\"changelog\"}");
    printf("part_move: A scored %llu, B scored %llu; open episodes A %.0f, "
           "B %.0f; B restored %.0f partition(s) from the changelog\n",
           (unsigned long long)a.st.scored, (unsigned long long)b.st.scored,
           open_a, open_b, rest_b);
    assert_true(b.st.scored > 0); /* a partition did move */
    /* the scores topic (a record may come twice: at-least-once across
     * the move): exactly one alert per episode, each at its 4th reading */
    scores_t sc;
    rs_test_read_scores(&e, 28, &sc);
    assert_true(sc.n >= 28);
    int seen[4] = {0, 0, 0, 0};
    for (int i = 0; i < sc.n; i++) {
        if (sc.sc[i].decision != RS_DECISION_ALERT) {
            assert_int_equal(sc.sc[i].decision, RS_DECISION_APPROVE);
            continue;
        }
        printf("part_move: alert on %s\n", sc.sc[i].event_id);
        int k = !strcmp(sc.sc[i].event_id, "r-pm-O0-03")   ? 0
                : !strcmp(sc.sc[i].event_id, "r-pm-O1-03") ? 1
                : !strcmp(sc.sc[i].event_id, "r-pm-D0-03") ? 2
                : !strcmp(sc.sc[i].event_id, "r-pm-D1-03") ? 3
                                                           : -1;
        assert_true(k >= 0);
        seen[k] = 1;
    }
    for (int k = 0; k < 4; k++) assert_int_equal(seen[k], 1);
    assert_int_equal((int)(open_a + open_b), 4);
    free(sc.sc);
    rs_test_svc_free(&a);
    rs_test_svc_free(&b);
    rs_test_env_close(&e);
}

/* The value of `name` in the service's /metrics now (the last snapshot;
 * rs_service_prometheus may be called from any thread), -1 if absent or
 * the service is not running. */
static double live_metric(rs_test_svc_t *s, const char *name) {
    rs_service_t *svc = atomic_load(&s->svc);
    if (!svc) return -1;
    rs_http_buf_t *b = rs_http_buf_new();
    rs_service_prometheus(svc, b);
    double v = metric(rs_http_buf_data(b), name);
    rs_http_buf_destroy(b);
    return v;
}

/* Standby copies hold their partition's machines (changelog 'A' records)
 * but do not count their open episodes (alerts.h rs_alerts_set_foreign):
 * two instances in one group with state.standby 1 and 2 partitions own
 * one each and keep a copy of the other's.  Threshold 0, 4 readings to
 * alert: O0, O1 read 6 (episodes open), D0, D1 read 2.  Once the copies
 * hold the other instance's open machine (riskstream_alerts_open_standby
 * of A and B add up to 2; waited for, no timing assumed), the live
 * riskstream_alerts_open of A and B add up to the 2 open episodes
 * (without the split: 4, each open machine counted by its owner and by
 * the copy). */
static void test_standby_open(void **state) {
    (void)state;
    static rs_test_env_t e;
    static rs_test_svc_t a, b;
    rs_test_env_open(&e, 2);
    rs_test_env_changelog(&e, "g-maint-sb");
    const char *const *kv = pm_conf(1);
    rs_test_svc_start(&a, &e, "g-maint-sb", kv, "A", 30000);
    rs_test_svc_start(&b, &e, "g-maint-sb", kv, "B", 60000);
    /* the rebalance done: one partition each, of both input topics
     * (each instance keeps a copy of the other's) */
    for (int i = 0; i < 6000 && atomic_load(&a.assigned) !=
                                    atomic_load(&b.assigned); i++)
        usleep(10000);
    assert_int_equal(atomic_load(&a.assigned), atomic_load(&b.assigned));
    pm_produce(&e, 0, 6, 0, 2);
    rs_test_svc_wait_total(&a, &b, 16);
    double sb_a = -1, sb_b = -1;
    for (int i = 0; i < 600; i++) {
        sb_a = live_metric(&a, "riskstream_alerts_open_standby");
        sb_b = live_metric(&b, "riskstream_alerts_open_standby");
        if (sb_a + sb_b == 2) break;
        usleep(100000);
    }
    double open_a = live_metric(&a, "riskstream_alerts_open");
    double open_b = live_metric(&b, "riskstream_alerts_open");
    printf("standby_open: A scored %llu, B scored %llu; open episodes A %.0f "
           "(+%.0f in its standby copy), B %.0f (+%.0f)\n",
           (unsigned long long)atomic_load(&a.scored),
           (unsigned long long)atomic_load(&b.scored), open_a, sb_a, open_b,
           sb_b);
    /* each copy holds the other instance's open machine */
    assert_int_equal((int)sb_a, 1);
    assert_int_equal((int)sb_b, 1);
    /* the group-wide sum is the group's open episodes */
    assert_int_equal((int)open_a, 1);
    assert_int_equal((int)open_b, 1);
    rs_test_svc_stop(&b);
    rs_test_svc_stop(&a);
    assert_int_equal(a.err, RS_OK);
    assert_int_equal(b.err, RS_OK);
    rs_test_svc_free(&a);
    rs_test_svc_free(&b);
    rs_test_env_close(&e);
}

/* After every test, also a failed one: stop what it left running. */
static int teardown(void **state) {
    (void)state;
    rs_test_svc_teardown();
    return 0;
}

int main(void) {
    const char *lv = getenv("RS_TEST_LOG");
    int level = lv ? rs_log_level_parse(lv) : -1;
    rs_log_set_level(level >= 0 ? (rs_log_level_t)level : RS_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_failure_alert, teardown),
        cmocka_unit_test_teardown(test_coldstart_alert_score, teardown),
        cmocka_unit_test_teardown(test_coldstart_restart, teardown),
        cmocka_unit_test_teardown(test_alertpol_restart, teardown),
        cmocka_unit_test_teardown(test_part_move, teardown),
        cmocka_unit_test_teardown(test_standby_open, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
