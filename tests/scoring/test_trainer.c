/* test_trainer.c -- the trainer thread (scoring/trainer.h): records queued
 * by a scoring thread are all learned, versions are published by count
 * and by time with store-assigned numbers, the newest are kept, a rollback
 * brings back a stored version bit for bit, errors are named, the final
 * model is saved.  No Kafka, no Redis: also runs under TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scoring/trainer.h"

#define DIM 6
static const char *const names[DIM] = {"a", "b", "c", "d", "e", "f"};
#define T0 1700000000000LL

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs_test_trainer_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void sleep_ms(int ms) {
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

/* Trainer settings (minimal buffers, as the service makes them) and the
 * scorer's. */
static void confs(int kind, rs_model_conf_t *tconf, rs_model_conf_t *sconf,
                  const char *store) {
    rs_model_conf_init(sconf);
    sconf->kind = kind;
    sconf->batch_max = 16;
    sconf->pending_max = 4096;
    sconf->seq.pending_max = 4096;
    sconf->seq.max_entities = 64;
    sconf->seq.d_model = 8;
    sconf->seq.history = 4;
    sconf->seq.experts = 4;
    sconf->seq.expert_hidden = 8;
    sconf->seq.buckets = 64;
    sconf->publish_every = 20;
    sconf->publish_interval_ms = 600000;
    sconf->keep_versions = 3;
    sconf->train_queue = 8;
    rs_strlcpy(sconf->store_dir, store ? store : "", sizeof(sconf->store_dir));
    *tconf = *sconf;
    tconf->pending_max = 1;
    tconf->seq.pending_max = 1;
    tconf->seq.max_entities = tconf->batch_max + 1;
}

/* Score event i with the scorer (remembered) and queue its label. */
static void score_and_label(rs_model_t *s, rs_trainer_t *tr, int i,
                            uint64_t *waits) {
    float x[DIM];
    char id[32], ent[16];
    snprintf(id, sizeof(id), "ev-%d", i);
    snprintf(ent, sizeof(ent), "e-%d", i % 7);
    for (int j = 0; j < DIM; j++) x[j] = (float)sin(i * 0.7 + j);
    rs_model_input_t in;
    memset(&in, 0, sizeof(in));
    in.event_id = id;
    in.entity_id = ent;
    in.event_time_ms = T0 + i * 1000LL;
    in.amount = 10.0f + (float)(i % 13);
    in.x = x;
    rs_model_output_t out;
    assert_int_equal(rs_model_forward(s, &in, 1, &out, NULL,
                                      RS_MODEL_FWD_REMEMBER),
                     RS_OK);
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    rs_strlcpy(lb.event_id, id, sizeof(lb.event_id));
    lb.value = x[0] + x[1] > 0.5f ? 1.0 : 0.0;
    int n;
    void *rec;
    while (!(rec = rs_trainer_reserve(tr, 1, &n))) {
        (*waits)++;
        rs_trainer_wait_space(tr, 10);
    }
    assert_int_equal(n, 1);
    float score;
    assert_int_equal(rs_model_take(s, &lb, rec, &score), RS_OK);
    rs_trainer_commit(tr, 1);
}

static void wait_learned(rs_trainer_t *tr, uint64_t want) {
    rs_trainer_stats_t st;
    for (int i = 0; i < 1000; i++) {
        rs_trainer_stats(tr, &st);
        if (st.learned + st.failed >= want && st.depth == 0) break;
        sleep_ms(10);
    }
    rs_trainer_stats(tr, &st);
    assert_int_equal(st.learned, want);
    assert_int_equal(st.failed, 0);
}

static float score_fixed(rs_model_t *m) {
    float x[DIM] = {0.3f, -0.2f, 0.9f, 0.1f, -0.7f, 0.4f};
    rs_model_input_t in;
    memset(&in, 0, sizeof(in));
    in.event_id = "probe";
    in.entity_id = "probe-entity";
    in.event_time_ms = T0;
    in.x = x;
    rs_model_output_t out;
    assert_int_equal(rs_model_forward(m, &in, 1, &out, NULL, RS_MODEL_FWD_DRY),
                     RS_OK);
    return out.score;
}

static void run_lineage(int kind) {
    char store[300], save[320], e[512];
    snprintf(store, sizeof(store), "%s/store-%d", tmpdir, kind);
    snprintf(save, sizeof(save), "%s/final-%d.rsm", tmpdir, kind);
    rs_model_conf_t tconf, sconf;
    confs(kind, &tconf, &sconf, store);
    rs_model_t *t = rs_model_new(&tconf, DIM, names, e, sizeof(e));
    assert_non_null(t);
    rs_model_t *s = rs_model_new_like(t, &sconf, e, sizeof(e));
    assert_non_null(s);
    rs_err_t err;
    rs_trainer_t *tr = rs_trainer_new(t, &tconf, save, &err, e, sizeof(e));
    assert_non_null(tr);
    assert_true(rs_trainer_record_size(tr) > 0);

    /* The starting model is published at once as number 1. */
    rs_model_weights_t *w = rs_trainer_take(tr);
    assert_non_null(w);
    assert_int_equal(rs_model_weights_use(s, w), RS_OK);
    rs_model_weights_release(w);
    assert_int_equal(rs_model_version_number(s), 1);
    assert_null(rs_trainer_take(tr)); /* taken once */

    /* 200 labels through a queue of 8: all learned, some waits. */
    uint64_t waits = 0;
    for (int i = 0; i < 200; i++) score_and_label(s, tr, i, &waits);
    wait_learned(tr, 200);
    rs_trainer_stats_t st;
    rs_trainer_stats(tr, &st);
    assert_int_equal(st.queued, 200);
    assert_int_equal(st.capacity, 8);
    assert_int_equal(st.model.updates, 200);
    /* publish_every 20: the start + one per 20 updates. */
    assert_int_equal(st.published, 1 + 200 / 20);
    rs_model_store_entry_t ent[8];
    int n = rs_trainer_list(tr, ent, 8);
    assert_int_equal(n, 3); /* keep_versions */
    assert_int_equal(ent[0].number, 11);
    assert_int_equal(ent[2].number, 9);
    assert_string_equal(ent[0].version, st.published_version);

    /* The scorer swaps to the newest. */
    w = rs_trainer_take(tr);
    assert_non_null(w);
    assert_string_equal(rs_model_weights_version(w), ent[0].version);
    assert_int_equal(rs_model_weights_use(s, w), RS_OK);
    rs_model_weights_release(w);

    /* Rollback to the oldest kept version: the scorer then scores exactly
     * as a model loaded from that file. */
    char old[RS_VERSION_MAX];
    rs_strlcpy(old, ent[2].version, sizeof(old));
    assert_int_equal(rs_trainer_rollback(tr, old, 10000, e, sizeof(e)),
                     RS_OK);
    w = rs_trainer_take(tr);
    assert_non_null(w);
    assert_string_equal(rs_model_weights_version(w), old);
    assert_int_equal(rs_model_weights_use(s, w), RS_OK);
    rs_model_weights_release(w);
    assert_string_equal(rs_model_version(s), old);
    rs_model_store_t *ro = rs_model_store_open(store, 100, e, sizeof(e));
    assert_non_null(ro);
    rs_model_t *ref = NULL;
    assert_int_equal(rs_model_store_load(ro, old, &sconf, &ref, e, sizeof(e)),
                     RS_OK);
    float a = score_fixed(s), b = score_fixed(ref);
    assert_memory_equal(&a, &b, sizeof(a));
    rs_model_destroy(ref);
    rs_trainer_stats(tr, &st);
    assert_int_equal(st.rollbacks, 1);

    /* Unknown and malformed versions are refused by name. */
    char bad[64];
    snprintf(bad, sizeof(bad), "%s-00000000-999", rs_model_kind(s));
    assert_int_equal(rs_trainer_rollback(tr, bad, 10000, e, sizeof(e)),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_trainer_rollback(tr, "../etc/passwd", 10000, e,
                                         sizeof(e)),
                     RS_ERR_INVALID);
    assert_int_equal(rs_trainer_rollback(tr, "", 1000, e, sizeof(e)),
                     RS_ERR_INVALID);

    /* Learning continues from the rolled-back weights; the next version
     * gets a new number (names are never reused). */
    for (int i = 200; i < 240; i++) score_and_label(s, tr, i, &waits);
    wait_learned(tr, 240);
    rs_trainer_stats(tr, &st);
    n = rs_trainer_list(tr, ent, 8);
    assert_true(n == 3);
    assert_true(ent[0].number >= 12);
    for (int i = 0; i < n; i++) assert_string_not_equal(ent[i].version, old);

    /* Stop: saves the final model; its version is the last published. */
    char last[RS_VERSION_MAX];
    assert_int_equal(rs_trainer_stop(tr, 1, e, sizeof(e)), RS_OK);
    rs_trainer_stats(tr, &st);
    rs_strlcpy(last, st.published_version, sizeof(last));
    rs_model_t *fin = NULL;
    assert_int_equal(rs_model_load(save, NULL, &fin, e, sizeof(e)), RS_OK);
    assert_string_equal(rs_model_version(fin), last);
    rs_model_destroy(fin);
    /* A rollback after the stop is refused, not hung. */
    assert_int_not_equal(rs_trainer_rollback(tr, old, 500, e, sizeof(e)),
                         RS_OK);
    rs_model_store_close(ro);
    rs_trainer_destroy(tr);
    rs_model_destroy(s);
}

static void test_trainer_lr(void **state) {
    (void)state;
    run_lineage(RS_MODEL_LR);
}

static void test_trainer_seq(void **state) {
    (void)state;
    run_lineage(RS_MODEL_SEQ);
}

/* Without a store: numbers count up from the model's, rollback says why
 * it cannot, publishing by time works without any count reached. */
static void test_trainer_no_store_interval(void **state) {
    (void)state;
    char e[512];
    rs_model_conf_t tconf, sconf;
    confs(RS_MODEL_LR, &tconf, &sconf, NULL);
    tconf.publish_every = 1000000;
    tconf.publish_interval_ms = 50;
    rs_model_t *t = rs_model_new(&tconf, DIM, names, e, sizeof(e));
    rs_model_t *s = rs_model_new_like(t, &sconf, e, sizeof(e));
    rs_err_t err;
    rs_trainer_t *tr = rs_trainer_new(t, &tconf, NULL, &err, e, sizeof(e));
    assert_non_null(tr);
    rs_model_weights_t *w = rs_trainer_take(tr);
    assert_int_equal(rs_model_weights_use(s, w), RS_OK);
    rs_model_weights_release(w);
    uint64_t waits = 0;
    for (int i = 0; i < 5; i++) score_and_label(s, tr, i, &waits);
    wait_learned(tr, 5);
    w = NULL;
    for (int i = 0; i < 200 && !w; i++) {
        w = rs_trainer_take(tr);
        if (!w) sleep_ms(10);
    }
    assert_non_null(w); /* published by time */
    assert_int_equal(rs_model_weights_use(s, w), RS_OK);
    rs_model_weights_release(w);
    assert_int_equal(rs_model_version_number(s), 2);
    assert_int_equal(rs_trainer_list(tr, NULL, 0), 0);
    assert_int_equal(rs_trainer_rollback(tr, rs_model_version(s), 1000, e,
                                         sizeof(e)),
                     RS_ERR_STATE);
    assert_non_null(strstr(e, "store_dir"));
    rs_trainer_destroy(tr);
    rs_model_destroy(s);
}

/* A store directory that cannot be created fails the start by name, and
 * the model stays the caller's. */
static void test_trainer_bad_store(void **state) {
    (void)state;
    char e[512];
    rs_model_conf_t tconf, sconf;
    confs(RS_MODEL_LR, &tconf, &sconf, "/proc/riskstream-no-such/store");
    rs_model_t *t = rs_model_new(&tconf, DIM, names, e, sizeof(e));
    rs_err_t err;
    rs_trainer_t *tr = rs_trainer_new(t, &tconf, NULL, &err, e, sizeof(e));
    assert_null(tr);
    assert_int_not_equal(err, RS_OK);
    assert_non_null(strstr(e, "/proc/riskstream-no-such/store"));
    rs_model_destroy(t);
}

int main(void) {
    rs_log_set_level(RS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trainer_lr, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_trainer_seq, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test(test_trainer_no_store_interval),
        cmocka_unit_test(test_trainer_bad_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
