/* rs_test_svc.h -- the real scoring service inside a test process: one
 * instance per rs_test_svc_t, created, run, read and destroyed on its own
 * thread (rs_service_new + rs_service_run; it owns its Kafka and Redis
 * handles), and an environment to run it against: an in-process librdkafka
 * mock cluster with the topics events, labels, scores, alerts, events.dlq,
 * a private redis-server and a plain producer.
 *
 * Shared by test_service, test_maint_serve, test_standby, test_changelog
 * and test_service_faults (which brings its own multi-broker environment
 * and uses rs_test_svc_conf_at).
 *
 * Failures: the configuration calls and the waits fail the current cmocka
 * test (fail_msg / assert_*); a service that does not return within
 * join_ms of its stop flag is a hang: there is no safe way to go on (its
 * threads use the cluster), so the process exits 1 with a message.
 * Running services and open environments are remembered, so that a test's
 * teardown can stop and close what a failed assertion left behind
 * (rs_test_svc_teardown).
 *
 * Threads: every call on the test thread; the service runs on the
 * instance's thread, which the test sees through the atomics below and,
 * once state == 2, through st, err, errstr and metrics.
 */
#ifndef RS_TEST_SVC_H
#define RS_TEST_SVC_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "scoring/scoring.h"
#include "tests/support/rs_test_redis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The topics of the environment, in rs_test_topics[] order. */
enum {
    RS_TEST_T_EVENTS, RS_TEST_T_LABELS, RS_TEST_T_SCORES, RS_TEST_T_ALERTS,
    RS_TEST_T_DLQ, RS_TEST_T_N
};
extern const char *const rs_test_topics[RS_TEST_T_N];

typedef struct rs_test_env_s {
    rs_cluster_t *cl;        /* one broker, nparts partitions per topic  */
    char boot[512];
    rs_test_redis_t *redis;
    rd_kafka_t *prod;
    int nparts;
} rs_test_env_t;

/* Open the environment (fails the test if a part cannot start). */
void rs_test_env_open(rs_test_env_t *e, int nparts);
/* Close it (a closed or zeroed one is a no-op). */
void rs_test_env_close(rs_test_env_t *e);
/* Produce one message (copied; waits while the local queue is full). */
void rs_test_env_produce(rs_test_env_t *e, int topic, const char *key,
                         const char *val);
/* Every message produced so far delivered (30 s, else the test fails). */
void rs_test_env_flush(rs_test_env_t *e);
/* Create group's state changelog topic "<group>-state-changelog" with
 * the environment's partitions (the mock has no CreateTopics). */
void rs_test_env_changelog(rs_test_env_t *e, const char *group);

/* Score records read back from the scores topic, in topic order (sc
 * malloc'd: the caller frees it). */
typedef struct rs_test_scores_s {
    int n, cap, bad;
    rs_score_t *sc;
} rs_test_scores_t;
/* Read at least `expect` records of the scores topic (1.5 s without a new
 * one ends the read, 60 s at most) into *t; fails the test on a record
 * that does not parse. */
void rs_test_read_scores(rs_test_env_t *e, int expect, rs_test_scores_t *t);

typedef struct rs_test_svc_s {
    const char *label;         /* message prefix (NULL: none)           */
    const char *boot;
    int join_ms;               /* rs_test_svc_stop's wait (0: 60000)    */
    rs_app_conf_t app;
    int conf_ok;               /* app initialised (rs_test_svc_free)     */
    pthread_t th;
    int started;               /* thread running, not joined yet        */
    volatile sig_atomic_t stop;
    _Atomic int state;         /* 0 starting, 1 running, 2 returned,
                                * -1 rs_service_new failed              */
    _Atomic uint64_t scored, rejected, labels, events;
    _Atomic int64_t assigned;
    rs_service_t *_Atomic svc; /* for rs_service_ready (any thread)     */
    rs_err_t err;
    char errstr[512];
    rs_service_stats_t st;     /* final, valid once state == 2          */
    char metrics[1 << 16];     /* /metrics text at the end              */
    double stop_s;             /* stop flag -> rs_service_run returned  */
} rs_test_svc_t;

/* Configure *s (zeroed first): defaults, the group, `nparts` input
 * partitions, Redis at redis_url, a private state dir, no stats line;
 * then KEY=VALUE pairs (NULL-terminated, may be NULL) through the config
 * table: a key this build does not know fails the test.  A test that
 * sets service.checkpoint_path keeps the rest of the state (learning
 * logs, model store) beside it (<dir of the checkpoint>/state). */
void rs_test_svc_conf_at(rs_test_svc_t *s, const char *boot,
                         const char *redis_url, int nparts,
                         const char *group, const char *const *kv);
/* The same against the environment e. */
void rs_test_svc_conf(rs_test_svc_t *s, rs_test_env_t *e, const char *group,
                      const char *const *kv);
/* Start the service thread (after a conf call). */
void rs_test_svc_run(rs_test_svc_t *s);
/* rs_test_svc_conf, then run with message prefix `label` (may be NULL)
 * and wait up to timeout_ms for its partitions. */
void rs_test_svc_start(rs_test_svc_t *s, rs_test_env_t *e, const char *group,
                       const char *const *kv, const char *label,
                       int timeout_ms);
/* Wait until the instance owns partitions (group joined); fails the test
 * if rs_service_new failed or after timeout_ms. */
void rs_test_svc_wait_assigned(rs_test_svc_t *s, int timeout_ms);
/* Set the stop flag and join (stop_s: how long it took).  A no-op if not
 * started; a hang past join_ms exits the process. */
void rs_test_svc_stop(rs_test_svc_t *s);
/* Free the configuration (after the stop). */
void rs_test_svc_free(rs_test_svc_t *s);
/* Wait until `counter` (one of s's atomics) >= target; 0 with a line on
 * stdout when the service returned first or after timeout_ms. */
int rs_test_svc_wait_count(rs_test_svc_t *s, _Atomic uint64_t *counter,
                           uint64_t target, const char *what,
                           int timeout_ms);

/* Wait until a's and b's scored events add up to n (60 s, else the test
 * fails). */
void rs_test_svc_wait_total(rs_test_svc_t *a, rs_test_svc_t *b, uint64_t n);

/* Stop every service still running and close every environment still
 * open (a cmocka teardown, after a failed test too). */
void rs_test_svc_teardown(void);

#ifdef __cplusplus
}
#endif
#endif /* RS_TEST_SVC_H */
