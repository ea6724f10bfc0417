/* rs_test_svc.c -- the real scoring service inside a test process (see
 * rs_test_svc.h).  Threads: the test thread, and one thread per running
 * instance (svc_main).
 */
#define _GNU_SOURCE
#include "tests/support/rs_test_svc.h"
#include "tests/support/rs_test_kafka.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define RS_TEST_JOIN_MS 60000 /* rs_service_run returns after the stop */

const char *const rs_test_topics[RS_TEST_T_N] = {
    "events", "labels", "scores", "alerts", "events.dlq"};

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void) { return (double)rs_clock_mono_us() / 1e6; }

/* Open environments and running services, so that a failed assertion
 * (which leaves the test function) still stops them. */
static rs_test_env_t *g_envs[8];
static rs_test_svc_t *g_svcs[8];

static void track(void **arr, void *p, int add) {
    for (int i = 0; i < 8; i++)
        if (add ? !arr[i] : arr[i] == p) {
            arr[i] = add ? p : NULL;
            return;
        }
}

/* ------------------------------------------------------------ environment */

void rs_test_env_open(rs_test_env_t *e, int nparts) {
    char errstr[512];
    memset(e, 0, sizeof(*e));
    track((void **)g_envs, e, 1);
    e->nparts = nparts;
    e->cl = rs_cluster_new(1, rs_test_topics, RS_TEST_T_N, nparts, errstr,
                           sizeof(errstr));
    if (!e->cl) fail_msg("mock cluster: %s", errstr);
    snprintf(e->boot, sizeof(e->boot), "%s", rs_cluster_bootstraps(e->cl));
    e->redis = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    if (!e->redis) fail_msg("redis: %s", errstr);
    e->prod = rs_kafka_producer_new(NULL, e->boot, errstr, sizeof(errstr));
    if (!e->prod) fail_msg("producer: %s", errstr);
}

void rs_test_env_close(rs_test_env_t *e) {
    track((void **)g_envs, e, 0);
    if (e->prod) rd_kafka_destroy(e->prod);
    rs_test_redis_destroy(e->redis);
    rs_cluster_destroy(e->cl);
    memset(e, 0, sizeof(*e));
}

void rs_test_env_produce(rs_test_env_t *e, int topic, const char *key,
                         const char *val) {
    rd_kafka_resp_err_t kerr;
    for (;;) {
        kerr = rd_kafka_producev(
            e->prod, RD_KAFKA_V_TOPIC(rs_test_topics[topic]),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)val, strlen(val)), RD_KAFKA_V_END);
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        rd_kafka_poll(e->prod, 10);
    }
    assert_int_equal(kerr, RD_KAFKA_RESP_ERR_NO_ERROR);
}

void rs_test_env_flush(rs_test_env_t *e) {
    assert_int_equal(rd_kafka_flush(e->prod, 30000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* ---------------------------------------------------------------- service */

static void svc_progress(void *opaque, const rs_service_stats_t *st) {
    rs_test_svc_t *s = opaque;
    atomic_store(&s->scored, st->scored);
    atomic_store(&s->rejected, st->rejected);
    atomic_store(&s->labels, st->labels);
    atomic_store(&s->events, st->events);
    atomic_store(&s->assigned, st->assigned);
}

static void *svc_main(void *arg) {
    rs_test_svc_t *s = arg;
    rs_err_t cerr = RS_OK;
    rs_service_t *svc = rs_service_new(&s->app, s->boot, &cerr, s->errstr,
                                       sizeof(s->errstr));
    if (!svc) {
        s->err = cerr ? cerr : RS_ERR_KAFKA;
        atomic_store(&s->state, -1);
        return NULL;
    }
    rs_service_set_progress(svc, svc_progress, s, 50);
    atomic_store(&s->svc, svc);
    atomic_store(&s->state, 1);
    s->err = rs_service_run(svc, &s->stop, s->errstr, sizeof(s->errstr));
    rs_service_stats(svc, &s->st);
    svc_progress(s, &s->st);
    rs_http_buf_t *b = rs_http_buf_new();
    rs_service_prometheus(svc, b);
    rs_strlcpy(s->metrics, rs_http_buf_data(b), sizeof(s->metrics));
    rs_http_buf_destroy(b);
    atomic_store(&s->svc, NULL);
    rs_service_destroy(svc);
    atomic_store(&s->state, 2);
    return NULL;
}

void rs_test_svc_conf_at(rs_test_svc_t *s, const char *boot,
                         const char *redis_url, int nparts,
                         const char *group, const char *const *kv) {
    char errstr[512];
    memset(s, 0, sizeof(*s));
    s->boot = boot;
    assert_int_equal(rs_app_conf_init(&s->app, errstr, sizeof(errstr)), RS_OK);
    s->conf_ok = 1;
    rs_strlcpy(s->app.ingest.group_id, group, sizeof(s->app.ingest.group_id));
    s->app.ingest.partitions = nparts;
    rs_strlcpy(s->app.redis.url, redis_url, sizeof(s->app.redis.url));
    s->app.service.stats_interval_ms = 0;
    /* in-process cluster: a private state dir (not the user's default) */
    s->app.state_ephemeral = 1;
    for (int i = 0; kv && kv[i]; i += 2)
        if (rs_conf_set(s->app.conf, kv[i], kv[i + 1], errstr,
                        sizeof(errstr)) != RS_OK)
            fail_msg("config %s=%s: %s", kv[i], kv[i + 1], errstr);
    /* a test that restarts from a checkpoint keeps the rest of the state
     * (learning logs, model store) beside it */
    if (s->app.service.checkpoint_path[0] && !s->app.state.dir[0]) {
        char d[sizeof(s->app.state.dir)];
        rs_strlcpy(d, s->app.service.checkpoint_path, sizeof(d) - 8);
        char *slash = strrchr(d, '/');
        if (slash) {
            rs_strlcpy(slash, "/state", 7);
            rs_strlcpy(s->app.state.dir, d, sizeof(s->app.state.dir));
        }
    }
}

void rs_test_svc_conf(rs_test_svc_t *s, rs_test_env_t *e, const char *group,
                      const char *const *kv) {
    rs_test_svc_conf_at(s, e->boot, rs_test_redis_url(e->redis), e->nparts,
                        group, kv);
}

void rs_test_svc_run(rs_test_svc_t *s) {
    assert_int_equal(pthread_create(&s->th, NULL, svc_main, s), 0);
    s->started = 1;
    track((void **)g_svcs, s, 1);
}

void rs_test_svc_wait_assigned(rs_test_svc_t *s, int timeout_ms) {
    const char *l = s->label ? s->label : "", *sep = s->label ? ": " : "";
    double deadline = now_s() + timeout_ms / 1000.0;
    while (atomic_load(&s->state) >= 0 && atomic_load(&s->state) < 2 &&
           atomic_load(&s->assigned) <= 0 && now_s() < deadline)
        sleep_ms(20);
    if (atomic_load(&s->state) < 0)
        fail_msg("%s%srs_service_new: %s", l, sep, s->errstr);
    if (atomic_load(&s->assigned) <= 0)
        fail_msg("%s%sno partition assigned after %d ms", l, sep,
                 timeout_ms);
}

void rs_test_svc_stop(rs_test_svc_t *s) {
    if (!s->started) return;
    int join_ms = s->join_ms > 0 ? s->join_ms : RS_TEST_JOIN_MS;
    double t0 = now_s();
    s->stop = 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += join_ms / 1000;
    if (pthread_timedjoin_np(s->th, NULL, &ts) != 0) {
        fprintf(stderr, "%s: HANG: rs_service_run did not return within "
                "%d s of the stop flag (scored %llu)\n",
                s->label ? s->label : "service", join_ms / 1000,
                (unsigned long long)atomic_load(&s->scored));
        fflush(NULL);
        _exit(1);
    }
    s->started = 0;
    s->stop_s = now_s() - t0;
    track((void **)g_svcs, s, 0);
}

void rs_test_svc_free(rs_test_svc_t *s) {
    if (s->conf_ok) rs_app_conf_destroy(&s->app);
    s->conf_ok = 0;
}

int rs_test_svc_wait_count(rs_test_svc_t *s, _Atomic uint64_t *counter,
                           uint64_t target, const char *what,
                           int timeout_ms) {
    double deadline = now_s() + timeout_ms / 1000.0;
    while (atomic_load(counter) < target) {
        if (atomic_load(&s->state) == 2) {
            printf("service: returned early: %s\n",
                   s->err ? s->errstr : "RS_OK");
            return 0;
        }
        if (now_s() > deadline) {
            printf("service: STALL: %s %llu of %llu after %d ms\n", what,
                   (unsigned long long)atomic_load(counter),
                   (unsigned long long)target, timeout_ms);
            return 0;
        }
        sleep_ms(10);
    }
    return 1;
}

void rs_test_svc_teardown(void) {
    for (int i = 0; i < 8; i++)
        if (g_svcs[i]) rs_test_svc_stop(g_svcs[i]);
    for (int i = 0; i < 8; i++)
        if (g_envs[i]) rs_test_env_close(g_envs[i]);
}

void rs_test_env_changelog(rs_test_env_t *e, const char *group) {
    char topic[256];
    snprintf(topic, sizeof(topic), "%s-state-changelog", group);
    assert_int_equal(rd_kafka_mock_topic_create(rs_cluster_mock(e->cl), topic,
                                                e->nparts, 1),
                     0);
}

static void scores_cb(void *opaque, const rd_kafka_message_t *rkm) {
    rs_test_scores_t *t = opaque;
    char errstr[256];
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 512;
        t->sc = realloc(t->sc, (size_t)t->cap * sizeof(*t->sc));
    }
    if (rs_score_from_json(rkm->payload, rkm->len, &t->sc[t->n], errstr,
                           sizeof(errstr)) != RS_OK) {
        t->bad++;
        return;
    }
    t->n++;
}

void rs_test_read_scores(rs_test_env_t *e, int expect, rs_test_scores_t *t) {
    memset(t, 0, sizeof(*t));
    rs_test_kafka_read(e->boot, rs_test_topics[RS_TEST_T_SCORES], expect, 1500,
                       60000, scores_cb, t);
    assert_int_equal(t->bad, 0);
}

void rs_test_svc_start(rs_test_svc_t *s, rs_test_env_t *e, const char *group,
                       const char *const *kv, const char *label,
                       int timeout_ms) {
    rs_test_svc_conf(s, e, group, kv);
    s->label = label;
    rs_test_svc_run(s);
    rs_test_svc_wait_assigned(s, timeout_ms);
}

void rs_test_svc_wait_total(rs_test_svc_t *a, rs_test_svc_t *b, uint64_t n) {
    for (int i = 0; i < 6000; i++) {
        if (atomic_load(&a->scored) + atomic_load(&b->scored) >= n) return;
        sleep_ms(10);
    }
    fail_msg("scored %llu + %llu of %llu",
             (unsigned long long)atomic_load(&a->scored),
             (unsigned long long)atomic_load(&b->scored),
             (unsigned long long)n);
}
