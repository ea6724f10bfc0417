/* test_trainer.c -- the trainer thread (scoring/trainer.h): the scoring
 * thread writes learning records into a log and sends messages (attach,
 * labels, watermarks, detach); every label is learned, versions are
 * published by count and by time with store-assigned numbers, the newest
 * are kept, a rollback brings back a stored version bit for bit, errors
 * are named, the final model is saved.  The trainer learns bit for bit as
 * one learner on one thread given the same records and the same sequence
 * of labels and watermarks.  The maintenance rehearsal state is copied
 * across the threads and restored (test_trainer_rehearsal).  No Kafka, no
 * Redis: also runs under TSan. */
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

#include "rs_test_learn.h"
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
    sconf->replay = 0;  /* exact step counts */
    sconf->average = 0;
    rs_strlcpy(sconf->store_dir, store ? store : "", sizeof(sconf->store_dir));
    *tconf = *sconf;
    tconf->seq.max_entities = tconf->batch_max + 1;
}

/* The scoring side: model S, the learning log of partition 0 it writes
 * (the trainer thread resolves it once attached) and, optionally, a
 * single-thread reference learner whose log gets the same records. */
typedef struct scorer_s {
    rs_model_t *s;
    rs_learnlog_t *log;
    rs_test_learn_t *ref;
    uint8_t *rec;          /* [rs_model_lrec_size] */
    uint64_t waits;        /* backpressure: the queue was full */
} scorer_t;

static void scorer_init(scorer_t *sc, rs_model_t *s, rs_test_learn_t *ref) {
    memset(sc, 0, sizeof(*sc));
    sc->s = s;
    sc->ref = ref;
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(s, &meta);
    char e[256];
    rs_err_t err;
    sc->log = rs_learnlog_open("", 0, &meta, 1 << 20, &err, e, sizeof(e));
    assert_non_null(sc->log);
    sc->rec = malloc(meta.rec_size);
}

static void scorer_free(scorer_t *sc) {
    rs_learnlog_close(sc->log);
    free(sc->rec);
}

/* Queue message m (waits while the queue is full). */
static void send_msg(rs_trainer_t *tr, scorer_t *sc, const rs_trainer_msg_t *m) {
    int n;
    rs_trainer_msg_t *slot;
    while (!(slot = rs_trainer_reserve(tr, 1, &n))) {
        sc->waits++;
        rs_trainer_wait_space(tr, 10);
    }
    assert_int_equal(n, 1);
    *slot = *m;
    rs_trainer_commit(tr, 1);
}

static void send_attach(rs_trainer_t *tr, scorer_t *sc) {
    rs_trainer_msg_t m;
    memset(&m, 0, sizeof(m));
    m.kind = RS_TRAINER_ATTACH;
    m.partition = 0;
    m.log = sc->log;
    m.log_end = rs_learnlog_end(sc->log);
    send_msg(tr, sc, &m);
}

static double scorer_psi(const scorer_t *sc) {
    rs_model_stats_t st;
    rs_model_stats(sc->s, &st);
    return st.drift_psi;
}

/* Event i: ev-i of entity e-(i % 7), a second apart. */
static void event_x(int i, float *x) {
    for (int j = 0; j < DIM; j++) x[j] = (float)sin(i * 0.7 + j);
}

/* Score event i with S, its learning record appended to the log (and to
 * the reference's).  Returns its score. */
static float score_event(scorer_t *sc, int i) {
    float x[DIM];
    char id[32], ent[16];
    snprintf(id, sizeof(id), "ev-%d", i);
    snprintf(ent, sizeof(ent), "e-%d", i % 7);
    event_x(i, x);
    rs_model_input_t in;
    memset(&in, 0, sizeof(in));
    in.event_id = id;
    in.entity_id = ent;
    in.event_time_ms = T0 + i * 1000LL;
    in.amount = 10.0f + (float)(i % 13);
    in.x = x;
    in.lrec = sc->rec;
    in.lpos = RS_LPOS(0, rs_learnlog_end(sc->log));
    rs_model_output_t out;
    assert_int_equal(rs_model_forward(sc->s, &in, 1, &out, NULL,
                                      RS_MODEL_FWD_REMEMBER),
                     RS_OK);
    char e[256];
    assert_int_equal(rs_learnlog_append(sc->log, sc->rec, 1, e, sizeof(e)),
                     RS_OK);
    if (sc->ref) {
        assert_int_equal(rs_test_learn_end(sc->ref),
                         rs_learnlog_end(sc->log) - 1);
        assert_int_equal(rs_learnlog_append(sc->ref->log, sc->rec, 1, e,
                                            sizeof(e)),
                         RS_OK);
    }
    return out.score;
}

static int label_of(int i) {
    float x[DIM];
    event_x(i, x);
    return x[0] + x[1] > 0.5f;
}

/* Queue a label (event id, value y) with the scorer's drift; the
 * reference learns it now. */
static void send_label(rs_trainer_t *tr, scorer_t *sc, const char *id, int y) {
    rs_trainer_msg_t m;
    memset(&m, 0, sizeof(m));
    m.kind = RS_TRAINER_LABEL;
    m.partition = 0;
    m.psi = scorer_psi(sc);
    rs_strlcpy(m.lb.event_id, id, sizeof(m.lb.event_id));
    m.lb.value = y;
    send_msg(tr, sc, &m);
    if (sc->ref) rs_learner_label(sc->ref->l, 0, &m.lb, 0, m.psi, NULL);
}

static void score_and_label(rs_trainer_t *tr, scorer_t *sc, int i) {
    score_event(sc, i);
    char id[32];
    snprintf(id, sizeof(id), "ev-%d", i);
    send_label(tr, sc, id, label_of(i));
}

/* Wait until the trainer handled everything queued and its counters
 * (refreshed every 200 ms) show `labels` labels resolved and `matured`
 * maturity negatives; then check them (and that nothing failed). */
static void wait_trained(rs_trainer_t *tr, uint64_t labels, uint64_t matured) {
    rs_trainer_stats_t *st = malloc(sizeof(*st));
    for (int i = 0; i < 2000; i++) {
        rs_trainer_stats(tr, st);
        if (st->depth == 0 && st->learner.labels >= labels &&
            st->learner.matured >= matured)
            break;
        sleep_ms(10);
    }
    rs_trainer_stats(tr, st);
    assert_int_equal(st->learner.labels, labels);
    assert_int_equal(st->learner.matured, matured);
    assert_int_equal(st->learner.failed, 0);
    free(st);
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
    rs_trainer_opts_t opts = {.save_path = save, .caught_threshold = 0.5};
    rs_trainer_t *tr = rs_trainer_new(t, &tconf, &opts, &err, e, sizeof(e));
    assert_non_null(tr);
    scorer_t sc;
    scorer_init(&sc, s, NULL);
    send_attach(tr, &sc);

    /* The starting model is published at once as number 1. */
    rs_model_weights_t *w = rs_trainer_take(tr);
    assert_non_null(w);
    assert_int_equal(rs_model_weights_use(s, w), RS_OK);
    rs_model_weights_release(w);
    assert_int_equal(rs_model_version_number(s), 1);
    assert_null(rs_trainer_take(tr)); /* taken once */

    /* 200 labels through a queue of 8: all joined to their records in
     * the log and learned (the scorer waits when the queue is full). */
    for (int i = 0; i < 200; i++) score_and_label(tr, &sc, i);
    wait_trained(tr, 200, 0);
    rs_trainer_stats_t st;
    rs_trainer_stats(tr, &st);
    assert_int_equal(st.queued, 1 + 200); /* the attach, the labels */
    assert_int_equal(st.capacity, 8);
    assert_int_equal(st.model.updates, 200);
    assert_int_equal(st.learner.joined, 200);
    assert_int_equal(st.learner.unknown, 0);
    assert_int_equal(st.log_records, 200);
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

    /* Learning continues from the rolled-back weights: the next version
     * comes after publish_every (20) more updates, not at once (that would
     * prune the oldest kept version, maybe the one just rolled back to),
     * and gets a new number (names are never reused). */
    rs_trainer_stats(tr, &st);
    const uint64_t pub0 = st.published;
    for (int i = 200; i < 210; i++) score_and_label(tr, &sc, i);
    wait_trained(tr, 210, 0);
    rs_trainer_stats(tr, &st);
    assert_int_equal(st.published, pub0);
    for (int i = 210; i < 240; i++) score_and_label(tr, &sc, i);
    wait_trained(tr, 240, 0);
    rs_trainer_stats(tr, &st);
    assert_int_equal(st.learner.joined, 240);
    assert_int_equal(st.published, pub0 + 40 / 20);
    n = rs_trainer_list(tr, ent, 8);
    assert_true(n == 3);
    assert_int_equal(ent[0].number, 13); /* 12 and 13 after the rollback */
    for (int i = 0; i < n; i++) assert_string_not_equal(ent[i].version, old);

    /* Detach: the trainer lets go of the log (then it may be closed). */
    assert_int_equal(rs_trainer_detach(tr, 0, 10000), RS_OK);
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
    scorer_free(&sc);
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
    scorer_t sc;
    scorer_init(&sc, s, NULL);
    send_attach(tr, &sc);
    for (int i = 0; i < 5; i++) score_and_label(tr, &sc, i);
    wait_trained(tr, 5, 0);
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
    rs_trainer_destroy(tr); /* without a detach: the log outlives it */
    scorer_free(&sc);
    rs_model_destroy(s);
}

/* The trainer thread learns what one learner on one thread learns, bit
 * for bit: the same records (the scorer appends each to the trainer's log
 * and to the reference's), the same labels with the scorer's drift, the
 * same watermarks (maturity negatives), late positives (corrections),
 * repeats and an unknown label, in the same order.  The saved model file
 * is the reference's, byte for byte, once both carry the same version
 * number; the learner counters agree. */
static void run_equivalence(int kind) {
    char save[320], e[512];
    snprintf(save, sizeof(save), "%s/eq-%d.rsm", tmpdir, kind);
    rs_model_conf_t tconf, sconf;
    confs(kind, &tconf, &sconf, NULL);
    tconf.label_horizon = sconf.label_horizon = 60000; /* 60 events */
    rs_model_t *t = rs_model_new(&tconf, DIM, names, e, sizeof(e));
    assert_non_null(t);
    rs_model_t *s = rs_model_new_like(t, &sconf, e, sizeof(e));
    assert_non_null(s);
    rs_test_learn_t *ref = rs_test_learn_new(&tconf, DIM, names, e, sizeof(e));
    assert_non_null(ref);
    /* the standardiser observes at watermarks only, as in the trainer */
    rs_learner_observe_to(ref->l, 0, 0);
    rs_err_t err;
    rs_trainer_opts_t opts = {.save_path = save, .caught_threshold = 0.5};
    rs_trainer_t *tr = rs_trainer_new(t, &tconf, &opts, &err, e, sizeof(e));
    assert_non_null(tr);
    scorer_t sc;
    scorer_init(&sc, s, ref);
    send_attach(tr, &sc);
    enum { N = 400, LAG = 30 };
    int corrections = 0;
    for (int i = 0; i < N; i++) {
        /* the scorer swaps to the newest version between events */
        rs_model_weights_t *w = rs_trainer_take(tr);
        if (w) {
            assert_int_equal(rs_model_weights_use(s, w), RS_OK);
            rs_model_weights_release(w);
        }
        score_event(&sc, i);
        char id[32];
        /* most labels LAG events late; every 9th event never labelled
         * (learned at maturity); every 7th of those a positive much later
         * (a correction); every 11th labelled twice (a repeat) */
        int j = i - LAG;
        if (j >= 0 && j % 9 != 4) {
            snprintf(id, sizeof(id), "ev-%d", j);
            send_label(tr, &sc, id, label_of(j));
            if (j % 11 == 0) send_label(tr, &sc, id, label_of(j));
        }
        j = i - 3 * LAG;
        if (j >= 0 && j % 9 == 4 && (j / 9) % 7 == 0) {
            snprintf(id, sizeof(id), "ev-%d", j);
            send_label(tr, &sc, id, 1);
            corrections++;
        }
        if (i == N / 2) send_label(tr, &sc, "never-scored", 1);
        if (i % 25 == 24) {
            /* the watermark: the trainer learns what matured after the
             * messages before it; the test waits until it has, so the
             * next labels come after that maturity on both sides */
            rs_trainer_msg_t m;
            memset(&m, 0, sizeof(m));
            m.kind = RS_TRAINER_WATERMARK;
            m.partition = 0;
            m.t = T0 + i * 1000LL;
            m.psi = scorer_psi(&sc);
            m.log_end = rs_learnlog_end(sc.log);
            send_msg(tr, &sc, &m);
            rs_learner_observe_to(ref->l, 0, m.log_end);
            while (rs_learner_advance(ref->l, 0, m.t, m.psi, 64, NULL, NULL) ==
                   64) {
            }
            rs_learner_stats_t rl;
            rs_learner_stats(ref->l, &rl);
            wait_trained(tr, rl.labels, rl.matured);
        }
    }
    rs_model_stats_t rm;
    rs_learner_stats_t rl;
    rs_model_stats(ref->m, &rm);
    rs_learner_stats(ref->l, &rl);
    wait_trained(tr, rl.labels, rl.matured);
    rs_trainer_stats_t *st = malloc(sizeof(*st));
    rs_trainer_stats(tr, st);
    print_message("%s: %llu updates (%llu maturity negatives, %llu "
                  "corrections, %llu repeats, %llu unknown), %llu scorer "
                  "waits\n", kind == RS_MODEL_SEQ ? "seq" : "lr",
                  (unsigned long long)rm.updates,
                  (unsigned long long)rl.matured,
                  (unsigned long long)rl.corrections,
                  (unsigned long long)rl.repeats,
                  (unsigned long long)rl.unknown,
                  (unsigned long long)sc.waits);
    assert_true(rl.matured > 20);
    assert_true(rl.corrections > 0 && rl.corrections <= (uint64_t)corrections);
    assert_true(rl.repeats > 10);
    assert_int_equal(rl.unknown, 1);
    assert_int_equal(st->learner.labels, rl.labels);
    assert_int_equal(st->learner.joined, rl.joined);
    assert_int_equal(st->learner.unknown, rl.unknown);
    assert_int_equal(st->learner.repeats, rl.repeats);
    assert_int_equal(st->learner.positives, rl.positives);
    assert_int_equal(st->learner.negatives, rl.negatives);
    assert_int_equal(st->learner.matured, rl.matured);
    assert_int_equal(st->learner.corrections, rl.corrections);
    assert_int_equal(st->learner.confirmed, rl.confirmed);
    assert_int_equal(st->learner.hist_cut, 0);
    assert_int_equal(st->model.updates, rm.updates);
    assert_int_equal(st->model.positives, rm.positives);
    assert_int_equal(st->model.negatives, rm.negatives);
    assert_int_equal(st->model.horizon_negatives, rm.horizon_negatives);
    assert_int_equal(st->model.corrections, rm.corrections);
    free(st);
    /* the same model file, once both carry the version number the trainer
     * gave its last version */
    assert_int_equal(rs_trainer_detach(tr, 0, 10000), RS_OK);
    assert_int_equal(rs_trainer_stop(tr, 1, e, sizeof(e)), RS_OK);
    rs_model_t *fin = NULL;
    assert_int_equal(rs_model_load(save, NULL, &fin, e, sizeof(e)), RS_OK);
    rs_model_set_version(ref->m, rs_model_version_number(fin));
    assert_string_equal(rs_model_version(ref->m), rs_model_version(fin));
    char rpath[340];
    snprintf(rpath, sizeof(rpath), "%s/eq-ref-%d.rsm", tmpdir, kind);
    assert_int_equal(rs_model_save(ref->m, rpath, e, sizeof(e)), RS_OK);
    FILE *f1 = fopen(save, "rb"), *f2 = fopen(rpath, "rb");
    assert_non_null(f1);
    assert_non_null(f2);
    static unsigned char b1[1 << 20], b2[1 << 20];
    size_t n1 = fread(b1, 1, sizeof(b1), f1), n2 = fread(b2, 1, sizeof(b2), f2);
    fclose(f1);
    fclose(f2);
    assert_true(n1 > 0 && n1 < sizeof(b1));
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    rs_model_destroy(fin);
    rs_trainer_destroy(tr);
    scorer_free(&sc);
    rs_test_learn_destroy(ref);
    rs_model_destroy(s);
}

static void test_trainer_equivalence_lr(void **state) {
    (void)state;
    run_equivalence(RS_MODEL_LR);
}

static void test_trainer_equivalence_seq(void **state) {
    (void)state;
    run_equivalence(RS_MODEL_SEQ);
}


/* A store directory that cannot be created fails the start by name, and
 * the model stays the caller's. */
/* Maintenance rehearsal state across the threads (trainer.h
 * rs_trainer_rehearsal*): the scoring side reads 200 events of 7 machines
 * a second apart into the log and reports e-3 failed at the last one (1 h
 * horizon: its 29 readings are positives); rs_trainer_rehearsal_wait
 * returns once the trainer resolved it, and the state then copied names 1
 * failure and 29 positions.  A second trainer (a restart) on the same log
 * restores it: the whole state, then with the log's end cut at 100 (as a
 * log rewound there) only e-3's 14 positions below it, n still 1.  A
 * trainer without rehearsal has no state and nothing to wait for.  Under
 * TSan: the copy is read on this thread while the trainer writes it. */
static int reh_get(rs_trainer_t *tr, uint64_t *n, uint64_t *kept) {
    uint8_t buf[24 + 64 * 8];
    size_t len = rs_trainer_rehearsal(tr, buf, sizeof(buf), NULL);
    if (len < 24 || len > sizeof(buf)) return 0;
    memcpy(n, buf + 8, 8);
    memcpy(kept, buf + 16, 8);
    assert_int_equal(len, 24 + *kept * 8);
    return 1;
}

static rs_trainer_t *reh_trainer(int n0, rs_model_t **s_out) {
    char e[512];
    rs_model_conf_t tconf, sconf;
    confs(RS_MODEL_LR, &tconf, &sconf, NULL);
    tconf.replay = 1;
    rs_model_t *t = rs_model_new(&tconf, DIM, names, e, sizeof(e));
    assert_non_null(t);
    *s_out = rs_model_new_like(t, &sconf, e, sizeof(e));
    assert_non_null(*s_out);
    rs_trainer_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.caught_threshold = 0.5;
    opts.failure_horizon_ms = 3600000;
    opts.rehearse_n0 = n0;
    rs_err_t err;
    rs_trainer_t *tr = rs_trainer_new(t, &tconf, &opts, &err, e, sizeof(e));
    assert_non_null(tr);
    return tr;
}

/* Wait (bounded) until the trainer's state shows n failures. */
static void reh_wait_n(rs_trainer_t *tr, uint64_t want, uint64_t *kept) {
    uint64_t n = 0;
    for (int i = 0; i < 2000; i++) {
        if (reh_get(tr, &n, kept) && n == want) return;
        sleep_ms(5);
    }
    assert_int_equal(n, want);
}

static void test_trainer_rehearsal(void **state) {
    (void)state;
    rs_model_t *s;
    rs_trainer_t *tr = reh_trainer(2, &s);
    scorer_t sc;
    scorer_init(&sc, s, NULL);
    send_attach(tr, &sc);
    for (int i = 0; i < 200; i++) score_event(&sc, i);
    uint64_t n = 9, kept = 9;
    assert_true(reh_get(tr, &n, &kept)); /* empty from the start */
    assert_int_equal(n, 0);
    assert_int_equal(kept, 0);
    rs_trainer_msg_t m;
    memset(&m, 0, sizeof(m));
    m.kind = RS_TRAINER_FAILURE;
    m.partition = 0;
    m.t = T0 + 199 * 1000LL;
    m.psi = -1;
    rs_strlcpy(m.lb.entity_id, "e-3", sizeof(m.lb.entity_id));
    m.lb.label_time_ms = m.t;
    send_msg(tr, &sc, &m);
    assert_int_equal(rs_trainer_rehearsal_wait(tr, 20000), 1);
    int cur = 0;
    size_t len = rs_trainer_rehearsal(tr, NULL, 0, &cur);
    assert_int_equal(cur, 1);
    assert_int_equal(len, 24 + 29 * 8);
    uint8_t *buf = malloc(len);
    assert_int_equal(rs_trainer_rehearsal(tr, buf, len, NULL), len);
    assert_true(reh_get(tr, &n, &kept));
    assert_int_equal(n, 1);
    assert_int_equal(kept, 29);
    rs_trainer_destroy(tr);
    rs_model_destroy(s);

    /* a restart: a second trainer on the same log */
    int64_t end = (int64_t)rs_learnlog_end(sc.log);
    tr = reh_trainer(2, &s);
    sc.s = s;
    send_attach(tr, &sc);
    rs_trainer_rehearsal_restore(tr, buf, len, &end, 1);
    reh_wait_n(tr, 1, &kept);
    assert_int_equal(kept, 29);
    end = 100; /* a log rewound to 100: e-3's readings 3, 10, .., 94 */
    rs_trainer_rehearsal_restore(tr, buf, len, &end, 1);
    for (int i = 0; i < 2000 && kept != 14; i++) {
        sleep_ms(5);
        assert_true(reh_get(tr, &n, &kept));
    }
    assert_int_equal(n, 1);
    assert_int_equal(kept, 14);
    rs_trainer_destroy(tr);
    rs_model_destroy(s);

    /* without rehearsal: no state, nothing to wait for, restore ignored */
    tr = reh_trainer(0, &s);
    sc.s = s;
    send_attach(tr, &sc);
    send_msg(tr, &sc, &m);
    assert_int_equal(rs_trainer_rehearsal(tr, NULL, 0, &cur), 0);
    assert_int_equal(cur, 1);
    assert_int_equal(rs_trainer_rehearsal_wait(tr, 0), 1);
    rs_trainer_rehearsal_restore(tr, buf, len, &end, 1);
    assert_int_equal(rs_trainer_rehearsal(tr, NULL, 0, NULL), 0);
    rs_trainer_destroy(tr);
    rs_model_destroy(s);
    free(buf);
    scorer_free(&sc);
}

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
        cmocka_unit_test_setup_teardown(test_trainer_equivalence_lr, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_trainer_equivalence_seq,
                                        setup_tmp, teardown_tmp),
        cmocka_unit_test(test_trainer_bad_store),
        cmocka_unit_test(test_trainer_rehearsal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
