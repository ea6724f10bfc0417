/* test_model.c -- unit tests of model/ (online logistic regression).
 *
 * Gradient check against finite differences, learning a separable problem
 * through the learning log and the learner (tests/support/rs_test_learn.h),
 * maturity negatives and late corrections, a log that rolls over segments
 * and forgets what retention deleted, save/load bit-identity, corrupt
 * files, determinism, the scoring/training split (bit for bit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/metrics.h"
#include "model/model_int.h"
#include "rs_test_learn.h"

#define DIM 8
static const char *const names8[DIM] = {"f0", "f1", "f2", "f3",
                                        "f4", "f5", "f6", "f7"};
#define T0 1700000000000LL

static rs_model_conf_t conf_small(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_LR; /* this file tests the logistic baseline */
    c.batch_max = 16;
    c.replay = 0;  /* exact step counts: no replay, */
    c.average = 0; /* the learned weights themselves */
    return c;
}

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs_test_model_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A synthetic separable problem: y = [v . (x - off) / scale > 0], with
 * features of very different offsets and scales (so standardisation
 * matters) and a margin. */
typedef struct prob_s {
    double v[DIM], off[DIM], scale[DIM];
} prob_t;

static void prob_init(prob_t *p, rs_rng_t *rng) {
    for (int i = 0; i < DIM; i++) {
        p->v[i] = rs_rng_normal(rng);
        p->off[i] = rs_rng_normal(rng) * 100.0;
        p->scale[i] = exp(rs_rng_normal(rng) * 2.0);
    }
}

static int prob_draw(const prob_t *p, rs_rng_t *rng, float *x) {
    for (;;) {
        double s = 0;
        for (int i = 0; i < DIM; i++) {
            double u = rs_rng_normal(rng);
            x[i] = (float)(p->off[i] + u * p->scale[i]);
            s += p->v[i] * u;
        }
        if (fabs(s) > 0.2) return s > 0; /* margin */
    }
}

/* A model with its learning log and learner (fails the test if not). */
static rs_test_learn_t *new_tl(const rs_model_conf_t *c) {
    char err[256] = "";
    rs_test_learn_t *t = rs_test_learn_new(c, DIM, names8, err, sizeof(err));
    if (!t) fail_msg("rs_test_learn_new: %s", err);
    return t;
}

static rs_test_learn_t *wrap_tl(rs_model_t *m, const rs_model_conf_t *c) {
    char err[256] = "";
    assert_non_null(m);
    rs_test_learn_t *t = rs_test_learn_wrap(m, c, err, sizeof(err));
    if (!t) fail_msg("rs_test_learn_wrap: %s", err);
    return t;
}

/* n labelled updates in batches of 32: scored (records logged), then each
 * label joined to its record and learned. */
static void train(rs_test_learn_t *t, const prob_t *p, rs_rng_t *rng, int n,
                  int *next_id) {
    float x[32][DIM];
    char id[32][32];
    int y[32];
    rs_model_input_t in[32];
    rs_model_output_t out[32];
    for (int done = 0; done < n; done += 32) {
        for (int r = 0; r < 32; r++) {
            y[r] = prob_draw(p, rng, x[r]);
            snprintf(id[r], sizeof(id[r]), "ev%d", *next_id + r);
            memset(&in[r], 0, sizeof(in[r]));
            in[r].event_id = id[r];
            in[r].event_time_ms = T0 + *next_id + r;
            in[r].x = x[r];
        }
        assert_int_equal(rs_test_learn_forward(t, in, 32, out, NULL,
                                               RS_MODEL_FWD_REMEMBER),
                         RS_OK);
        for (int r = 0; r < 32; r++) {
            rs_learner_res_t res;
            assert_int_equal(rs_test_learn_label(t, id[r], y[r], &res), RS_OK);
            assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
            assert_true(res.score == out[r].score);
        }
        *next_id += 32;
    }
}

static double eval_auc(rs_model_t *m, const prob_t *p, rs_rng_t *rng, int n) {
    float *x = malloc(sizeof(float) * DIM * (size_t)n);
    float *sc = malloc(sizeof(float) * (size_t)n);
    double *sd = malloc(sizeof(double) * (size_t)n);
    int *y = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) y[i] = prob_draw(p, rng, x + (size_t)i * DIM);
    assert_int_equal(rs_model_score(m, x, n, sc, NULL), RS_OK);
    for (int i = 0; i < n; i++) sd[i] = sc[i];
    double auc = rs_auc_exact(sd, y, (size_t)n);
    free(x);
    free(sc);
    free(sd);
    free(y);
    return auc;
}

/* ------------------------------------------------------------------ tests */

static void test_conf_defaults(void **state) {
    (void)state;
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    assert_true(c.learning_rate == 0.01);
    assert_true(c.l2 == 1e-5);
    assert_true(c.pos_weight == 10);
    assert_true(c.grad_clip == 5);
    /* the horizon follows the label delay unless fixed */
    assert_true(c.label_horizon == RS_MODEL_HORIZON_AUTO);
    assert_true(c.label_delay == 0);
    assert_true(c.label_horizon_max == 120 * 86400000LL);
    assert_true(c.log_keep == 30 * 86400000LL);
    assert_true(c.log_segment == 256 << 20);
    assert_true(c.publish_every == 10000);
    assert_true(c.publish_interval_ms == 60000);
    assert_true(c.keep_versions == 100);
    assert_true(c.batch_max == 512);
    rs_conf_section_t sec;
    rs_model_conf_section(&sec, &c);
    assert_string_equal(sec.name, "model");
    /* learning 4 + label delay/horizon/max 3 + log 2 + publish_every,
     * batch_max, base_rate, transform, std_window, replay, average, kind +
     * the split's 4 */
    assert_int_equal(sec.nfields, 21);
    assert_true(c.base_rate == 0.01);
    assert_int_equal(c.transform, 0);
    assert_true(c.std_window == 86400000LL);
    assert_int_equal(c.replay, 1);
    assert_true(c.average == 7 * 86400000LL);
    assert_ptr_equal(sec.base, &c);
}

static void test_bad_args(void **state) {
    (void)state;
    char err[256] = "";
    rs_model_conf_t c = conf_small();
    assert_null(rs_model_new(&c, 0, names8, err, sizeof(err)));
    assert_non_null(strstr(err, "dimension"));
    c.learning_rate = -1;
    assert_null(rs_model_new(&c, DIM, names8, err, sizeof(err)));
    assert_non_null(strstr(err, "model.learning_rate"));
    c = conf_small();
    const char *bad[2] = {"ok", ""};
    assert_null(rs_model_new(&c, 2, bad, err, sizeof(err)));
    rs_model_destroy(NULL);

    rs_model_t *m = rs_model_new(&c, DIM, names8, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(rs_model_check_names(m, DIM, names8, err, sizeof(err)),
                     RS_OK);
    const char *other[DIM] = {"f0", "f1", "f2", "X", "f4", "f5", "f6", "f7"};
    assert_int_equal(rs_model_check_names(m, DIM, other, err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "'X'"));
    assert_int_equal(rs_model_check_names(m, 3, names8, err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_string_equal(rs_model_kind(m), "lr");
    assert_string_equal(rs_model_feature_name(m, 7), "f7");
    assert_null(rs_model_feature_name(m, 8));
    assert_int_equal(rs_model_score(m, NULL, -1, NULL, NULL), RS_ERR_INVALID);
    rs_model_destroy(m);
}

static void test_grad_check(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 42);
    const int dim = 7;
    double w[8], g[8], wp[8];
    float z[7];
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i <= dim; i++) w[i] = rs_rng_normal(&rng);
        for (int i = 0; i < dim; i++)
            z[i] = (float)(rs_rng_uniform(&rng) * 6 - 3);
        int y = trial & 1;
        double pw = trial % 3 ? 10.0 : 1.0, l2 = 0.1;
        rs_lr_loss_grad(w, z, dim, y, pw, l2, g);
        for (int i = 0; i <= dim; i++) {
            const double h = 1e-6;
            memcpy(wp, w, sizeof(w));
            wp[i] = w[i] + h;
            double lp = rs_lr_loss_grad(wp, z, dim, y, pw, l2, NULL);
            wp[i] = w[i] - h;
            double lm = rs_lr_loss_grad(wp, z, dim, y, pw, l2, NULL);
            double num = (lp - lm) / (2 * h);
            double rel = fabs(num - g[i]) / fmax(1.0, fabs(num) + fabs(g[i]));
            if (rel > 1e-6)
                fail_msg("trial %d param %d: analytic %.9g numeric %.9g", trial,
                         i, g[i], num);
        }
    }
    /* the loss is the weighted logistic loss: at w = 0, log(2) * c */
    double w0[8] = {0};
    assert_true(fabs(rs_lr_loss_grad(w0, z, dim, 1, 10.0, 0, NULL) -
                     10 * log(2.0)) < 1e-12);
    assert_true(fabs(rs_lr_loss_grad(w0, z, dim, 0, 10.0, 0, NULL) - log(2.0)) <
                1e-12);
}

static void test_learns_separable(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 7);
    prob_t p;
    prob_init(&p, &rng);
    rs_model_conf_t c = conf_small();
    rs_test_learn_t *t = new_tl(&c);
    rs_model_t *m = t->m;
    double auc0 = eval_auc(m, &p, &rng, 2000);
    int next = 0;
    train(t, &p, &rng, 8000, &next);
    double auc = eval_auc(m, &p, &rng, 4000);
    print_message("separable: AUC before %.3f after 8000 updates %.4f\n", auc0,
                  auc);
    assert_true(auc > 0.95);
    rs_model_stats_t st;
    rs_model_stats(m, &st);
    assert_int_equal(st.updates, 8000);
    assert_int_equal(st.positives + st.negatives, 8000);
    assert_true(st.positives > 2000 && st.negatives > 2000);
    /* every label found its record; none matured (auto horizon, no
     * watermark) */
    rs_learner_stats_t ls;
    rs_learner_stats(t->l, &ls);
    assert_int_equal(ls.labels, 8000);
    assert_int_equal(ls.joined, 8000);
    assert_int_equal(ls.unknown, 0);
    assert_int_equal(ls.failed, 0);
    assert_int_equal(st.horizon_negatives, 0);
    assert_int_equal(rs_test_learn_end(t), 8000);
    /* contributions sum to the logit */
    float x[DIM], s, contrib[DIM];
    prob_draw(&p, &rng, x);
    rs_model_score(m, x, 1, &s, contrib);
    double l = log(s / (1 - s)), sum = 0;
    for (int i = 0; i < DIM; i++) sum += contrib[i];
    /* logit = bias + sum(contrib): the bias is the remainder */
    double bias = l - sum;
    float x2[DIM], s2, c2[DIM];
    prob_draw(&p, &rng, x2);
    rs_model_score(m, x2, 1, &s2, c2);
    double sum2 = 0;
    for (int i = 0; i < DIM; i++) sum2 += c2[i];
    assert_true(fabs(log(s2 / (1 - s2)) - sum2 - bias) < 1e-3);
    rs_test_learn_destroy(t);
}

typedef struct cb_s {
    int n;
    float scores[256];
    int labels[256];
} cb_t;

static void on_resolved(void *opaque, float score, int label) {
    cb_t *cb = opaque;
    cb->scores[cb->n % 256] = score;
    cb->labels[cb->n % 256] = label;
    cb->n++;
}

/* Unlabelled events are learned as negatives once their event time is
 * older than watermark - horizon, oldest first; a label decides first; a
 * positive after the maturity negative corrects it, a negative confirms
 * it, a second label is a repeat, a label of an event never scored is
 * unknown. */
static void test_horizon_negatives(void **state) {
    (void)state;
    rs_model_conf_t c = conf_small();
    c.label_horizon = 3600000; /* 1h */
    rs_test_learn_t *t = new_tl(&c);
    float x[DIM] = {1, 2, 3, 4, 5, 6, 7, 8}, sc[10];
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i);
        x[0] = (float)i; /* scores differ */
        assert_int_equal(rs_test_learn_score(t, id, T0 + i * 60000LL, x,
                                             &sc[i]),
                         RS_OK);
    }
    assert_int_equal(rs_learner_horizon(t->l), 3600000);
    cb_t cb = {0};
    assert_int_equal(rs_test_learn_advance(t, T0 + 1800000, 0, on_resolved,
                                           &cb),
                     0);
    rs_learner_res_t res;
    assert_int_equal(rs_test_learn_label(t, "e3", 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
    assert_true(res.score == sc[3]);
    /* events before T0 + 5 min: e0, e1, e2, e4 (e3 already labelled) */
    assert_int_equal(rs_test_learn_advance(t, T0 + 3600000 + 300000, 0,
                                           on_resolved, &cb),
                     4);
    assert_int_equal(cb.n, 4);
    assert_true(cb.scores[0] == sc[0] && cb.scores[1] == sc[1] &&
                cb.scores[2] == sc[2] && cb.scores[3] == sc[4]);
    for (int i = 0; i < 4; i++) assert_int_equal(cb.labels[i], 0);
    rs_model_stats_t st;
    rs_model_stats(t->m, &st);
    assert_int_equal(st.horizon_negatives, 4);
    assert_int_equal(st.negatives, 4);
    assert_int_equal(st.positives, 1);
    assert_int_equal(st.updates, 5);
    /* the maturity cursor waits at e5 (event time = the cutoff): 5 events
     * still wait for a label or maturity */
    rs_learnlog_stats_t ls;
    rs_learnlog_stats(t->log, &ls);
    assert_int_equal(ls.end, 10);
    assert_int_equal(ls.end - ls.cursor, 5);
    /* a fraud reported after its maturity negative: corrected */
    assert_int_equal(rs_test_learn_label(t, "e0", 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_CORRECTED);
    assert_true(res.score == sc[0]);
    /* a genuine one: the negative stands, nothing learned */
    assert_int_equal(rs_test_learn_label(t, "e1", 0, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_CONFIRMED);
    /* a second label: ignored */
    assert_int_equal(rs_test_learn_label(t, "e3", 0, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_REPEAT);
    assert_int_equal(rs_test_learn_label(t, "e0", 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_REPEAT);
    /* never scored: unknown, counted by the learner, the model untouched */
    assert_int_equal(rs_test_learn_label(t, "zz", 1, &res), RS_ERR_NOTFOUND);
    assert_int_equal(res.outcome, RS_LEARNER_UNKNOWN);
    rs_model_stats(t->m, &st);
    assert_int_equal(st.updates, 6);
    assert_int_equal(st.corrections, 1);
    assert_int_equal(st.positives, 2);
    assert_int_equal(st.negatives, 4);
    rs_learner_stats_t lst;
    rs_learner_stats(t->l, &lst);
    assert_int_equal(lst.labels, 6);
    assert_int_equal(lst.joined, 5);
    assert_int_equal(lst.unknown, 1);
    assert_int_equal(lst.corrections, 1);
    assert_int_equal(lst.confirmed, 1);
    assert_int_equal(lst.repeats, 2);
    assert_int_equal(lst.matured, 4);
    /* the rest matures; nothing is learned twice */
    assert_int_equal(rs_test_learn_advance(t, T0 + 2 * 3600000LL, 0, NULL,
                                           NULL),
                     5);
    assert_int_equal(rs_test_learn_advance(t, T0 + 3 * 3600000LL, 0, NULL,
                                           NULL),
                     0);
    rs_model_stats(t->m, &st);
    assert_int_equal(st.updates, 11);
    assert_int_equal(st.horizon_negatives, 9);
    rs_learnlog_stats(t->log, &ls);
    assert_int_equal(ls.cursor, ls.end);
    rs_test_learn_destroy(t);
}

/* There is no buffer to overflow: the log rolls to a new segment when one
 * is full (never blocks, drops nothing: the first and the last event of
 * three segments are found), an id scored twice joins its first record,
 * and once retention deleted the resolved segments past horizon +
 * log_keep, a label for one of their events is unknown -- the log's
 * counterpart of the old "oldest dropped when full". */
static void test_log_rolls_and_forgets(void **state) {
    (void)state;
    rs_model_conf_t c = conf_small();
    c.label_horizon = 3600000;
    c.log_keep = 0;
    c.log_segment = 1 << 20; /* 13 056 records of 80 bytes */
    rs_test_learn_t *t = new_tl(&c);
    enum { N = 30000, B = 100 };
    static float x[B][DIM];
    static char id[B][16];
    rs_model_input_t in[B];
    rs_model_output_t out[B];
    float first = 0;
    for (int i0 = 0; i0 < N; i0 += B) {
        for (int r = 0; r < B; r++) {
            int i = i0 + r;
            snprintf(id[r], sizeof(id[r]), "n%d", i);
            for (int k = 0; k < DIM; k++) x[r][k] = (float)((i * 7 + k) % 13);
            memset(&in[r], 0, sizeof(in[r]));
            in[r].event_id = id[r];
            in[r].event_time_ms = T0 + (int64_t)i * 1000;
            in[r].x = x[r];
        }
        assert_int_equal(rs_test_learn_forward(t, in, B, out, NULL,
                                               RS_MODEL_FWD_REMEMBER),
                         RS_OK);
        if (i0 == 0) {
            first = out[5].score;
            float xo[DIM] = {9, 9, 9, 9, 9, 9, 9, 9};
            assert_int_equal(rs_test_learn_score(t, "n5", T0 + 100000, xo,
                                                 NULL),
                             RS_OK);
        }
    }
    rs_learnlog_stats_t ls;
    rs_learnlog_stats(t->log, &ls);
    print_message("log: %llu records of %llu bytes in %llu segments\n",
                  (unsigned long long)ls.end, (unsigned long long)ls.rec_size,
                  (unsigned long long)ls.segments);
    assert_int_equal(ls.rec_size, 48 + 4 * DIM);
    assert_int_equal(ls.end, N + 1);
    assert_int_equal(ls.first, 0);
    assert_int_equal(ls.segments, 3);
    /* n5 was scored twice (at position 100, in its first segment): its
     * label joins the first record */
    const void *rec, *hist[1];
    int nh;
    assert_int_equal(rs_test_learn_record(t, "n5", &rec, hist, 1, &nh), RS_OK);
    assert_true(((const rs_lrec_hdr_t *)rec)->t == T0 + 5000);
    rs_learner_res_t res;
    assert_int_equal(rs_test_learn_label(t, "n5", 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
    assert_true(res.score == first);
    assert_true(res.delay_ms == -(T0 + 5000)); /* label time 0 */
    char last[16];
    snprintf(last, sizeof(last), "n%d", N - 1);
    assert_int_equal(rs_test_learn_label(t, "n0", 0, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
    assert_int_equal(rs_test_learn_label(t, last, 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
    /* everything matures; the two resolved segments behind the cursor are
     * deleted, not the one being written */
    int k = rs_test_learn_advance(t, T0 + (int64_t)N * 1000 + 2 * 3600000LL,
                                  0, NULL, NULL);
    assert_int_equal(k, N + 1 - 3);
    rs_learnlog_stats(t->log, &ls);
    assert_int_equal(ls.deleted, 2);
    assert_int_equal(ls.segments, 1);
    assert_true(ls.first > 2 && ls.first <= N - 2); /* n1 gone, n<N-2> kept */
    assert_int_equal(rs_test_learn_label(t, "n1", 1, &res), RS_ERR_NOTFOUND);
    assert_int_equal(res.outcome, RS_LEARNER_UNKNOWN);
    /* the kept segment still joins */
    char kept[16];
    snprintf(kept, sizeof(kept), "n%d", N - 2);
    assert_int_equal(rs_test_learn_label(t, kept, 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_CORRECTED);
    rs_learner_stats_t lst;
    rs_learner_stats(t->l, &lst);
    assert_int_equal(lst.unknown, 1);
    assert_int_equal(lst.matured, (uint64_t)k);
    rs_model_stats_t st;
    rs_model_stats(t->m, &st);
    assert_int_equal(st.updates, 3 + (uint64_t)k + 1);
    rs_test_learn_destroy(t);
}

/* A model trained on 640 labels, with its log and learner. */
static rs_test_learn_t *trained_model(int publish_every) {
    rs_rng_t rng;
    rs_rng_seed(&rng, 99);
    prob_t p;
    prob_init(&p, &rng);
    rs_model_conf_t c = conf_small();
    c.publish_every = publish_every;
    rs_test_learn_t *t = new_tl(&c);
    int next = 0;
    train(t, &p, &rng, 640, &next);
    return t;
}

static void random_rows(float *x, int n, uint64_t seed) {
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    for (int i = 0; i < n * DIM; i++) x[i] = (float)(rs_rng_normal(&rng) * 50);
    x[3] = NAN; /* non-finite input: treated as the mean */
}

static void test_version(void **state) {
    (void)state;
    rs_test_learn_t *tm = trained_model(100), *tm2 = trained_model(1000);
    rs_model_t *m = tm->m, *m2 = tm2->m;
    char hex[16];
    unsigned long long n;
    assert_int_equal(sscanf(rs_model_version(m), "lr-%8[0-9a-f]-%llu", hex, &n), 2);
    assert_int_equal(strlen(hex), 8);
    assert_int_equal(n, 6); /* 640 updates / 100 */
    assert_string_not_equal(rs_model_version(m), rs_model_version(m2));
    assert_non_null(strstr(rs_model_version(m2), "-0"));
    rs_test_learn_destroy(tm);
    rs_test_learn_destroy(tm2);
}

static void test_save_load(void **state) {
    (void)state;
    rs_test_learn_t *tm = trained_model(100);
    rs_model_t *m = tm->m;
    char path[512], err[256] = "";
    snprintf(path, sizeof(path), "%s/m.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    assert_int_equal(access(path, F_OK), 0);
    char tmp[520];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);

    rs_model_t *l = NULL;
    assert_int_equal(rs_model_load(path, NULL, &l, err, sizeof(err)), RS_OK);
    assert_non_null(l);
    assert_string_equal(rs_model_version(m), rs_model_version(l));
    assert_int_equal(rs_model_check_names(l, DIM, names8, err, sizeof(err)), RS_OK);
    rs_model_conf_t cs = conf_small();
    rs_test_learn_t *tl = wrap_tl(l, &cs);

    enum { N = 300 };
    static float x[N * DIM], s1[N], s2[N], c1[N * DIM], c2[N * DIM];
    random_rows(x, N, 5);
    rs_model_score(m, x, N, s1, c1);
    rs_model_score(l, x, N, s2, c2);
    assert_memory_equal(s1, s2, sizeof(s1));
    assert_memory_equal(c1, c2, sizeof(c1));
    rs_model_stats_t a, b;
    rs_model_stats(m, &a);
    rs_model_stats(l, &b);
    assert_int_equal(a.updates, b.updates);
    assert_int_equal(a.positives, b.positives);

    /* the optimiser state is restored too: the same next steps give the
     * same model */
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "k%d", i);
        float sm, sl;
        const float *xi = x + (size_t)i * DIM;
        assert_int_equal(rs_test_learn_score(tm, id, T0, xi, &sm), RS_OK);
        assert_int_equal(rs_test_learn_score(tl, id, T0, xi, &sl), RS_OK);
        assert_memory_equal(&sm, &sl, sizeof(float));
        assert_int_equal(rs_test_learn_label(tm, id, i % 3 == 0, NULL), RS_OK);
        assert_int_equal(rs_test_learn_label(tl, id, i % 3 == 0, NULL), RS_OK);
    }
    rs_model_score(m, x, N, s1, NULL);
    rs_model_score(l, x, N, s2, NULL);
    assert_memory_equal(s1, s2, sizeof(s1));

    /* a conf override keeps the version, changes the sizes */
    rs_model_conf_t c = conf_small();
    c.batch_max = 7;
    rs_model_t *l2 = NULL;
    assert_int_equal(rs_model_load(path, &c, &l2, err, sizeof(err)), RS_OK);
    rs_model_t *l1 = NULL;
    assert_int_equal(rs_model_load(path, NULL, &l1, err, sizeof(err)), RS_OK);
    assert_string_equal(rs_model_version(l2), rs_model_version(l1));
    rs_model_destroy(l1);
    rs_model_destroy(l2);
    rs_test_learn_destroy(tm);
    rs_test_learn_destroy(tl);
}

static long file_read(const char *path, unsigned char **buf) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *buf = malloc((size_t)n);
    assert_int_equal(fread(*buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    return n;
}

static void file_write(const char *path, const unsigned char *buf, long n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
}

static void expect_corrupt(const char *path, const char *what) {
    rs_model_t *l = (rs_model_t *)0x1;
    char err[256] = "";
    rs_err_t e = rs_model_load(path, NULL, &l, err, sizeof(err));
    if (e != RS_ERR_CORRUPT)
        fail_msg("%s: expected RS_ERR_CORRUPT, got %s (%s)", what, rs_err_str(e),
                 err);
    assert_null(l);
    assert_non_null(strstr(err, path));
}

static void test_corrupt(void **state) {
    (void)state;
    rs_test_learn_t *tm = trained_model(100);
    rs_model_t *m = tm->m;
    char path[512], bad[512], err[256];
    snprintf(path, sizeof(path), "%s/c.rsm", tmpdir);
    snprintf(bad, sizeof(bad), "%s/bad.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    unsigned char *buf;
    long n = file_read(path, &buf);
    /* flip one byte anywhere: magic, format, length, payload, checksum */
    long pos[] = {0, 7, 8, 12, 19, 20, 40, 100, n / 2, n - 5, n - 1};
    for (size_t i = 0; i < RS_ARRAY_LEN(pos); i++) {
        buf[pos[i]] ^= 0x40;
        file_write(bad, buf, n);
        char what[64];
        snprintf(what, sizeof(what), "flip at %ld", pos[i]);
        expect_corrupt(bad, what);
        buf[pos[i]] ^= 0x40;
    }
    /* truncations */
    long cut[] = {0, 5, 19, 20, n / 2, n - 4, n - 1};
    for (size_t i = 0; i < RS_ARRAY_LEN(cut); i++) {
        file_write(bad, buf, cut[i]);
        char what[64];
        snprintf(what, sizeof(what), "truncated to %ld", cut[i]);
        expect_corrupt(bad, what);
    }
    /* trailing garbage */
    unsigned char *big = malloc((size_t)n + 3);
    memcpy(big, buf, (size_t)n);
    memcpy(big + n, "xyz", 3);
    file_write(bad, big, n + 3);
    expect_corrupt(bad, "trailing bytes");
    /* specific messages */
    buf[0] = 'X';
    file_write(bad, buf, n);
    rs_model_t *l;
    assert_int_equal(rs_model_load(bad, NULL, &l, err, sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "bad magic"));
    buf[0] = 'R';
    file_write(bad, buf, n - 10);
    assert_int_equal(rs_model_load(bad, NULL, &l, err, sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "truncated"));
    buf[n / 2] ^= 1;
    file_write(bad, buf, n);
    assert_int_equal(rs_model_load(bad, NULL, &l, err, sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "checksum"));
    /* missing file is I/O, not corrupt */
    snprintf(bad, sizeof(bad), "%s/none.rsm", tmpdir);
    assert_int_equal(rs_model_load(bad, NULL, &l, err, sizeof(err)), RS_ERR_IO);
    /* unwritable destination */
    snprintf(bad, sizeof(bad), "%s/no/such/dir.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, bad, err, sizeof(err)), RS_ERR_IO);
    free(big);
    free(buf);
    rs_test_learn_destroy(tm);
}

/* Values and sizes of a damaged "lr" file that still passes its checksum
 * (fuzz_model_file: a standardiser mean of 3.7e180, finite as a double,
 * became inf as a float and the model scored NaN:
 * tests/fuzz/corpus/fuzz_model_file/nan-score.rsm.repair).  Every loaded
 * array is checked and the error names the file and the field; a
 * dimension the file cannot hold is refused before its names are
 * allocated.  Layout (model_file.c): ... | f64 mean[dim], m2[dim], w[dim+1],
 * am[dim+1], av[dim+1] | u32 checksum of everything before it. */
static void put_sealed(const char *path, const unsigned char *buf, long n,
                       long off, const void *v, size_t vlen) {
    unsigned char *c = malloc((size_t)n);
    memcpy(c, buf, (size_t)n);
    memcpy(c + off, v, vlen); /* little-endian host, as the format */
    uint32_t crc = rs_checksum32(c, (size_t)n - 4, 0);
    memcpy(c + n - 4, &crc, 4);
    file_write(path, c, n);
    free(c);
}

static void test_load_values(void **state) {
    (void)state;
    rs_test_learn_t *tm = trained_model(100);
    rs_model_t *m = tm->m;
    char path[512], bad[512], err[512];
    snprintf(path, sizeof(path), "%s/v.rsm", tmpdir);
    snprintf(bad, sizeof(bad), "%s/v-bad.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    unsigned char *buf;
    long n = file_read(path, &buf);
    /* ... av [DIM + 1] | avn, avt | wa [DIM + 1] (format 2) | crc */
    const long wa = n - 4 - 8 * (DIM + 1), av = wa - 16 - 8 * (DIM + 1),
               am = av - 8 * (DIM + 1),
               w = am - 8 * (DIM + 1), m2 = w - 8 * DIM, mean = m2 - 8 * DIM;
    rs_model_conf_t c = conf_small();
    struct {
        long off;
        double v;
        const char *what;
    } cases[] = {
        {mean + 8 * 2, 3.7605000672129692e180, "standardiser mean[2]"},
        {mean + 8 * 0, NAN, "standardiser mean[0]"},
        {m2 + 8 * 1, 1e214, "standardiser m2[1]"},
        {m2 + 8 * 1, -1, "standardiser m2[1]"},
        {w + 8 * 3, 1e31, "weight w[3]"},
        {w + 8 * DIM, INFINITY, "weight w[8]"}, /* the bias */
        {am + 8 * 0, 1e12, "adam moment m[0]"},
        {am + 8 * 5, NAN, "adam moment m[5]"},
        {av + 8 * 0, -1, "adam moment v[0]"},
        {av + 8 * DIM, 1e300, "adam moment v[8]"},
        {wa + 8 * 2, 1e31, "average weight[2]"},
        {wa + 8 * DIM, NAN, "average weight[8]"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(cases); i++) {
        put_sealed(bad, buf, n, cases[i].off, &cases[i].v, 8);
        for (int k = 0; k < 2; k++) {
            rs_model_t *l = (rs_model_t *)0x1;
            rs_err_t e = rs_model_load(bad, k ? &c : NULL, &l, err, sizeof(err));
            if (e != RS_ERR_CORRUPT || !strstr(err, cases[i].what) ||
                !strstr(err, bad))
                fail_msg("%s: %s: %s", cases[i].what, rs_err_str(e), err);
            assert_null(l);
        }
    }
    /* in range: a mean far off but finite as a float still loads */
    double far = 1e30;
    put_sealed(bad, buf, n, mean, &far, 8);
    rs_model_t *l = NULL;
    assert_int_equal(rs_model_load(bad, &c, &l, err, sizeof(err)), RS_OK);
    float x[4 * DIM], sc[4];
    random_rows(x, 4, 5);
    assert_int_equal(rs_model_score(l, x, 4, sc, NULL), RS_OK);
    for (int i = 0; i < 4; i++) assert_true(sc[i] >= 0 && sc[i] <= 1);
    rs_model_destroy(l);
    /* a dimension of 2^20 in a file of a few hundred bytes: refused before
     * 64 MB of names are allocated (u32 dim after the envelope and "lr") */
    uint32_t dim = 1u << 20;
    put_sealed(bad, buf, n, 20 + 4 + 2, &dim, 4);
    l = (rs_model_t *)0x1;
    assert_int_equal(rs_model_load(bad, &c, &l, err, sizeof(err)), RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "cannot hold the names"));
    assert_null(l);
    free(buf);
    rs_test_learn_destroy(tm);
}

/* A new model of either kind scores about model.base_rate before any
 * label, so a cold start approves instead of sending everything to review
 * (0.5 >= the default review threshold). */
static void test_cold_start_prior(void **state) {
    (void)state;
    char err[256] = "";
    float x[DIM] = {1, -2, 3, 0.5f, 7, 0, 1, 2};
    for (int kind = 0; kind < 2; kind++) {
        rs_model_conf_t c;
        rs_model_conf_init(&c);
        c.kind = kind ? RS_MODEL_SEQ : RS_MODEL_LR;
        c.seq.max_entities = 1024;
        rs_model_t *m = rs_model_new(&c, DIM, names8, err, sizeof(err));
        if (!m) fprintf(stderr, "cold start kind %d: %s\n", kind, err);
        assert_non_null(m);
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        strcpy(ev.id, "e1");
        strcpy(ev.type, "card_tx");
        strcpy(ev.entity_id, "card-1");
        ev.event_time_ms = 1767225600000;
        ev.amount = 12;
        rs_model_input_t in;
        rs_model_output_t out;
        rs_model_input_from_event(&in, &ev, x);
        assert_int_equal(rs_model_forward(m, &in, 1, &out, NULL, 0), RS_OK);
        if (kind == 0) assert_true(fabsf(out.score - 0.01f) < 1e-6f);
        else assert_true(out.score > 0.001f && out.score < 0.05f);
        rs_model_destroy(m);
    }
}

static void test_determinism(void **state) {
    (void)state;
    rs_test_learn_t *ta = trained_model(100), *tb = trained_model(100);
    rs_model_t *a = ta->m, *b = tb->m;
    enum { N = 200 };
    static float x[N * DIM], s1[N], s2[N], s3[N], s4[N];
    random_rows(x, N, 11);
    rs_model_score(a, x, N, s1, NULL);
    rs_model_score(b, x, N, s2, NULL);
    rs_model_score(a, x, N, s3, NULL);
    assert_memory_equal(s1, s2, sizeof(s1));
    assert_memory_equal(s1, s3, sizeof(s1));
    /* chunking (batch_max 16) and batch position: row by row gives the
     * same bits */
    for (int i = 0; i < N; i++) rs_model_score(a, x + (size_t)i * DIM, 1, &s4[i], NULL);
    int diff = 0;
    for (int i = 0; i < N; i++) diff += s4[i] != s1[i];
    if (diff) print_message("row-by-row differs from batch in %d of %d rows\n", diff, N);
    for (int i = 0; i < N; i++) assert_true(fabsf(s4[i] - s1[i]) <= 1e-6f);
    /* scoring does not change the model */
    rs_model_stats_t st;
    rs_model_stats(a, &st);
    assert_int_equal(st.updates, 640);
    rs_test_learn_destroy(ta);
    rs_test_learn_destroy(tb);
}

/* ------------------------------------------- scoring/training split */

/* The `model:` fields of the split: defaults, YAML, ranges. */
static void test_conf_split(void **state) {
    (void)state;
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    assert_true(c.publish_interval_ms == 60000);
    assert_true(c.keep_versions == 100);
    assert_string_equal(c.store_dir, "");
    assert_true(c.train_queue == 4096);
    rs_conf_t *cf = rs_conf_new();
    rs_conf_section_t sec;
    char err[256] = "";
    rs_model_conf_section(&sec, &c);
    assert_int_equal(rs_conf_add_section(cf, &sec, err, sizeof(err)), RS_OK);
    const char *y = "model:\n  publish_interval: 5s\n  keep_versions: 3\n"
                    "  store_dir: /var/lib/riskstream/models\n"
                    "  train_queue: 100\n";
    assert_int_equal(rs_conf_load_yaml(cf, y, strlen(y), "t", err, sizeof(err)),
                     RS_OK);
    assert_true(c.publish_interval_ms == 5000);
    assert_true(c.keep_versions == 3);
    assert_string_equal(c.store_dir, "/var/lib/riskstream/models");
    assert_true(c.train_queue == 100);
    /* the label horizon: a duration, or auto (follows the delay) */
    const char *hz = "model:\n  label_horizon: 2d\n  label_delay: 36h\n"
                     "  log_keep: 1d\n";
    assert_int_equal(rs_conf_load_yaml(cf, hz, strlen(hz), "t", err, sizeof(err)),
                     RS_OK);
    assert_true(c.label_horizon == 2 * 86400000LL);
    assert_true(c.label_delay == 36 * 3600000LL);
    assert_true(c.log_keep == 86400000LL);
    hz = "model:\n  label_horizon: auto\n";
    assert_int_equal(rs_conf_load_yaml(cf, hz, strlen(hz), "t", err, sizeof(err)),
                     RS_OK);
    assert_true(c.label_horizon == RS_MODEL_HORIZON_AUTO);
    const char *bad = "model:\n  keep_versions: 0\n";
    assert_int_not_equal(
        rs_conf_load_yaml(cf, bad, strlen(bad), "t", err, sizeof(err)), RS_OK);
    rs_conf_destroy(cf);
    /* rs_model_new checks them too */
    rs_model_conf_t d = conf_small();
    d.train_queue = 0;
    assert_null(rs_model_new(&d, DIM, names8, err, sizeof(err)));
    assert_non_null(strstr(err, "model.train_queue"));
}

/* One labelled batch for the split tests: rows, ids, labels. */
typedef struct batch_s {
    float x[16][DIM];
    char id[16][32];
    int y[16];
    rs_model_input_t in[16];
} batch_t;

static void batch_make(batch_t *b, const prob_t *p, rs_rng_t *rng, int round,
                       int64_t t) {
    for (int i = 0; i < 16; i++) {
        b->y[i] = prob_draw(p, rng, b->x[i]);
        if (i == 5) b->x[i][2] = NAN; /* non-finite inputs travel too */
        snprintf(b->id[i], sizeof(b->id[i]), "r%d-e%d", round, i);
        memset(&b->in[i], 0, sizeof(b->in[i]));
        b->in[i].event_id = b->id[i];
        b->in[i].entity_id = "card";
        b->in[i].event_time_ms = t + i * 1000;
        b->in[i].x = b->x[i];
    }
}

/* The trainer's snapshot into the scorer (what the service does after
 * each publish; here after every step). */
static void hand_over(rs_model_t *tr, rs_model_t *sc) {
    rs_model_weights_t *w = rs_model_weights_take(tr);
    assert_non_null(w);
    assert_int_equal(rs_model_weights_use(sc, w), RS_OK);
    rs_model_weights_release(w);
}

static void file_bytes(const char *path, unsigned char **buf, long *n) {
    *n = file_read(path, buf);
}

/* A scorer S (new_like of the trainer T, fed T's snapshot after each
 * step) writes its learning records into the log of T's learner; T's
 * learner joins the labels and learns the matured records from it.  That
 * gives, bit for bit, the scores, the records and the model file of one
 * model M scoring and learning through its own learner (the service's
 * split against the single-thread path of eval/train). */
static void test_records_equivalence(void **state) {
    (void)state;
    rs_model_conf_t c = conf_small();
    c.label_horizon = 3600000;
    c.publish_every = 7;
    char err[256] = "";
    rs_test_learn_t *M = new_tl(&c), *T = new_tl(&c);
    rs_model_t *S = rs_model_new_like(T->m, NULL, err, sizeof(err));
    assert_non_null(S);
    const size_t rsz = rs_model_lrec_size(S);
    assert_int_equal(rsz, rs_model_lrec_size(T->m));
    assert_int_equal(rsz % 8, 0);
    assert_int_equal(rsz, 48 + 4 * DIM);
    enum { MAXR = 3 };
    hand_over(T->m, S);

    rs_rng_t rng, lab;
    rs_rng_seed(&rng, 17);
    rs_rng_seed(&lab, 18);
    prob_t p;
    prob_init(&p, &rng);
    static batch_t b[60];
    cb_t cm, cs;
    int taken = 0, horizon = 0, corrected = 0, repeats = 0;
    for (int r = 0; r < 60; r++) {
        int64_t t = T0 + (int64_t)r * 600000;
        batch_make(&b[r], &p, &rng, r, t);
        rs_model_input_t in2[16];
        memcpy(in2, b[r].in, sizeof(in2));
        rs_model_output_t om[16], os[16];
        float cbm[16 * DIM], cbs[16 * DIM];
        const uint64_t pos0 = rs_test_learn_end(M);
        assert_int_equal(pos0, rs_test_learn_end(T));
        assert_int_equal(rs_test_learn_forward(M, b[r].in, 16, om, cbm,
                                               RS_MODEL_FWD_REMEMBER),
                         RS_OK);
        assert_int_equal(rs_learner_forward(T->l, 0, S, in2, 16, os, cbs,
                                            RS_MODEL_FWD_REMEMBER, err,
                                            sizeof(err)),
                         RS_OK);
        for (int i = 0; i < 16; i++) {
            assert_memory_equal(&om[i].score, &os[i].score, sizeof(float));
            /* the same record, byte for byte (its state byte aside: M's
             * learner has not resolved it either) */
            assert_memory_equal(rs_test_learn_at(M, pos0 + (uint64_t)i),
                                rs_test_learn_at(T, pos0 + (uint64_t)i), rsz);
        }
        assert_memory_equal(cbm, cbs, sizeof(cbm));
        /* labels of a random 60 % of this and the previous batch (some
         * twice) */
        for (int q = r > 0 ? r - 1 : 0; q <= r; q++) {
            for (int i = 0; i < 16; i++) {
                if (rs_rng_uniform(&lab) > 0.6) continue;
                rs_label_t lb = {.value = b[q].y[i]};
                rs_strlcpy(lb.event_id, b[q].id[i], sizeof(lb.event_id));
                lb.label_time_ms = t + 1000;
                rs_learner_res_t rm, rt;
                rs_err_t em = rs_learner_label(M->l, 0, &lb, 0, -1, &rm);
                rs_err_t et = rs_learner_label(T->l, 0, &lb, 0, -1, &rt);
                assert_int_equal(em, RS_OK);
                assert_int_equal(et, RS_OK);
                assert_int_equal(rm.outcome, rt.outcome);
                assert_true(rm.score == rt.score);
                assert_true(rm.delay_ms == rt.delay_ms);
                hand_over(T->m, S);
                if (rm.outcome == RS_LEARNER_REPEAT) repeats++;
                else taken++;
            }
        }
        /* maturity negatives: T MAXR at a time, as the trainer does in
         * chunks */
        if (r % 7 == 6) {
            memset(&cm, 0, sizeof(cm));
            memset(&cs, 0, sizeof(cs));
            int nm = rs_test_learn_advance(M, t, 0, on_resolved, &cm);
            int ns = rs_test_learn_advance(T, t, MAXR, on_resolved, &cs);
            hand_over(T->m, S);
            assert_int_equal(nm, ns);
            assert_int_equal(cm.n, cs.n);
            assert_memory_equal(cm.scores, cs.scores,
                                sizeof(float) * (size_t)RS_MIN(cm.n, 256));
            horizon += ns;
            /* late frauds of a batch that matured: corrections (or
             * repeats of those labelled in time) */
            for (int i = 0; i < 16 && r >= 7; i++) {
                const batch_t *old = &b[r - 7];
                if (!old->y[i]) continue;
                rs_label_t lb = {.value = 1};
                rs_strlcpy(lb.event_id, old->id[i], sizeof(lb.event_id));
                rs_learner_res_t rm, rt;
                assert_int_equal(rs_learner_label(M->l, 0, &lb, 0, -1, &rm),
                                 RS_OK);
                assert_int_equal(rs_learner_label(T->l, 0, &lb, 0, -1, &rt),
                                 RS_OK);
                assert_int_equal(rm.outcome, rt.outcome);
                hand_over(T->m, S);
                corrected += rm.outcome == RS_LEARNER_CORRECTED;
            }
        }
    }
    rs_learner_res_t res;
    assert_int_equal(rs_test_learn_label(M, "never-scored", 1, &res),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_test_learn_label(T, "never-scored", 1, &res),
                     RS_ERR_NOTFOUND);
    print_message("split lr: %d labels (%d repeats), %d maturity negatives, "
                  "%d corrections through the log\n",
                  taken, repeats, horizon, corrected);
    assert_true(taken > 200 && horizon > 20 && corrected > 5 && repeats > 0);

    rs_model_stats_t sm, ss, st;
    rs_model_stats(M->m, &sm);
    rs_model_stats(S, &ss);
    rs_model_stats(T->m, &st);
    assert_int_equal(st.updates, sm.updates);
    assert_int_equal(st.positives, sm.positives);
    assert_int_equal(st.negatives, sm.negatives);
    assert_int_equal(st.horizon_negatives, sm.horizon_negatives);
    assert_int_equal(st.corrections, sm.corrections);
    assert_int_equal(st.corrections, (uint64_t)corrected);
    assert_string_equal(st.version, sm.version);
    assert_int_equal(ss.updates, 0);
    rs_learner_stats_t lm, lt;
    rs_learner_stats(M->l, &lm);
    rs_learner_stats(T->l, &lt);
    assert_int_equal(lm.labels, lt.labels);
    assert_int_equal(lm.joined, lt.joined);
    assert_int_equal(lm.unknown, 1);
    assert_int_equal(lt.unknown, 1);
    assert_int_equal(lm.repeats, lt.repeats);
    assert_int_equal(lm.matured, lt.matured);
    rs_learnlog_stats_t gm, gt;
    rs_learnlog_stats(M->log, &gm);
    rs_learnlog_stats(T->log, &gt);
    assert_int_equal(gm.end, gt.end);
    assert_int_equal(gm.cursor, gt.cursor);
    assert_string_equal(rs_model_version(S), rs_model_version(M->m));
    assert_int_equal(rs_model_version_number(S), rs_model_version_number(M->m));
    /* the same file: weights, optimiser, standardiser, counters */
    char pm[512], pt[512];
    snprintf(pm, sizeof(pm), "%s/eq_m.rsm", tmpdir);
    snprintf(pt, sizeof(pt), "%s/eq_t.rsm", tmpdir);
    assert_int_equal(rs_model_save(M->m, pm, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_model_save(T->m, pt, err, sizeof(err)), RS_OK);
    unsigned char *bm, *bt;
    long nm, nt;
    file_bytes(pm, &bm, &nm);
    file_bytes(pt, &bt, &nt);
    assert_int_equal(nm, nt);
    assert_memory_equal(bm, bt, (size_t)nm);
    free(bm);
    free(bt);
    rs_test_learn_destroy(M);
    rs_test_learn_destroy(T);
    rs_model_destroy(S);
}

/* rs_model_learn_lrec refuses what it cannot learn and stays unchanged:
 * NULL or inconsistent arguments, a damaged record (checksum), a record of
 * another kind; a learner refuses a log of another model's records. */
static void test_records_bad_input(void **state) {
    (void)state;
    rs_model_conf_t c = conf_small();
    char err[256];
    rs_test_learn_t *S = new_tl(&c);
    rs_model_t *T = rs_model_new_like(S->m, NULL, err, sizeof(err));
    const size_t rsz = rs_model_lrec_size(S->m);
    unsigned char *rec = malloc(rsz), *bad = malloc(rsz);
    float x[DIM] = {1, 2, 3, 4, 5, 6, 7, 8}, sa;
    assert_int_equal(rs_test_learn_score(S, "a", T0, x, &sa), RS_OK);
    assert_int_equal(rs_test_learn_score(S, "b", T0, x, NULL), RS_OK);
    /* NULL arguments */
    assert_int_equal(rs_model_learn_lrec(T, NULL, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    const void *r0 = rs_test_learn_at(S, 0);
    assert_non_null(r0);
    assert_int_equal(rs_model_learn_lrec(T, r0, NULL, -1, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    assert_int_equal(rs_model_learn_lrec(T, r0, NULL, 1, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    /* an unknown label: counted by the learner, the log untouched */
    rs_learner_res_t res;
    assert_int_equal(rs_test_learn_label(S, "zz", 1, &res), RS_ERR_NOTFOUND);
    assert_int_equal(res.outcome, RS_LEARNER_UNKNOWN);
    rs_learner_stats_t ls;
    rs_learner_stats(S->l, &ls);
    assert_int_equal(ls.unknown, 1);
    rs_learnlog_stats_t gs;
    rs_learnlog_stats(S->log, &gs);
    assert_int_equal(gs.end, 2);
    assert_int_equal(gs.cursor, 0);
    /* a good record: the header says what was scored */
    const void *hist[1];
    int nh = -1;
    const void *rp;
    assert_int_equal(rs_test_learn_record(S, "a", &rp, hist, 1, &nh), RS_OK);
    assert_int_equal(nh, 0);
    memcpy(rec, rp, rsz);
    rs_lrec_hdr_t h;
    memcpy(&h, rec, sizeof(h));
    assert_true(h.id == rs_hash_str("a"));
    assert_true(h.t == T0);
    assert_true(h.score == sa);
    assert_int_equal(h.kind, RS_MODEL_LR);
    assert_int_equal(h.state, 0);
    assert_int_equal(h.hist, 0);
    assert_true(h.prev == 0);
    assert_true(h.sum == rs_lrec_sum(rec, rsz));
    /* damage anywhere but the state byte (the resolver's): rejected as
     * corrupt; the kind byte: another kind; T unchanged */
    const size_t st_off = offsetof(rs_lrec_hdr_t, state),
                 kind_off = offsetof(rs_lrec_hdr_t, kind);
    const size_t flips[] = {0, 3, 8, 20, 21, 24, 30, 36, 39, 42, 45, 47, 48,
                            60, rsz - 1};
    for (size_t i = 0; i < RS_ARRAY_LEN(flips); i++) {
        memcpy(bad, rec, rsz);
        bad[flips[i]] ^= 0x10;
        rs_err_t e = rs_model_learn_lrec(T, bad, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1);
        if (e != RS_ERR_CORRUPT)
            fail_msg("flip at %zu: expected RS_ERR_CORRUPT, got %s", flips[i],
                     rs_err_str(e));
    }
    memcpy(bad, rec, rsz);
    bad[kind_off] = RS_MODEL_SEQ;
    assert_int_equal(rs_model_learn_lrec(T, bad, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    rs_lrec_seal(bad, rsz); /* well sealed, still another kind */
    assert_int_equal(rs_model_learn_lrec(T, bad, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    rs_model_stats_t st;
    rs_model_stats(T, &st);
    assert_int_equal(st.updates, 0);
    /* another feature count: the checksum over its record size fails */
    rs_model_t *o = rs_model_new(&c, 3, names8, err, sizeof(err));
    unsigned char *big = calloc(1, rsz + rs_model_lrec_size(o));
    memcpy(big, rec, rsz);
    assert_int_equal(rs_model_learn_lrec(o, big, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_CORRUPT);
    /* ... and a learner refuses its log: of another feature count (dim 7:
     * records of the same size as dim 8), of another kind */
    rs_model_t *o7 = rs_model_new(&c, 7, names8, err, sizeof(err));
    assert_int_equal(rs_model_lrec_size(o7), rsz);
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(o7, &meta);
    rs_err_t e2;
    rs_learnlog_t *lg7 = rs_learnlog_open("", 1, &meta, 1 << 20, &e2, err,
                                          sizeof(err));
    assert_non_null(lg7);
    assert_int_equal(rs_learner_attach(S->l, lg7), RS_ERR_INVALID);
    rs_model_conf_t cs;
    rs_model_conf_init(&cs);
    cs.seq.max_entities = 1024;
    rs_model_t *sq = rs_model_new(&cs, DIM, names8, err, sizeof(err));
    assert_non_null(sq);
    rs_model_lrec_meta(sq, &meta);
    rs_learnlog_t *lgs = rs_learnlog_open("", 1, &meta, 1 << 20, &e2, err,
                                          sizeof(err));
    assert_non_null(lgs);
    assert_int_equal(rs_learner_attach(S->l, lgs), RS_ERR_INVALID);
    assert_null(rs_learner_log(S->l, 1));
    /* a seq model refuses an lr record */
    unsigned char *srec = calloc(1, rs_model_lrec_size(sq) + rsz);
    memcpy(srec, rec, rsz);
    assert_int_equal(rs_model_learn_lrec(sq, srec, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_ERR_INVALID);
    /* the state byte is not damage (the resolver writes it after the
     * seal), and the good record still learns */
    memcpy(bad, rec, rsz);
    bad[st_off] = RS_LREC_LEARNED;
    assert_int_equal(rs_model_learn_lrec(T, bad, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_OK);
    assert_int_equal(rs_model_learn_lrec(T, rec, NULL, 0, 1,
                                         RS_MODEL_LEARN_LABEL, -1),
                     RS_OK);
    rs_model_stats(T, &st);
    assert_int_equal(st.updates, 2);
    assert_int_equal(st.positives, 2);
    /* through the learner: learned once, then a repeat */
    assert_int_equal(rs_test_learn_label(S, "a", 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
    assert_true(res.score == sa);
    assert_int_equal(rs_test_learn_label(S, "a", 1, &res), RS_OK);
    assert_int_equal(res.outcome, RS_LEARNER_REPEAT);
    rs_model_stats(S->m, &st);
    assert_int_equal(st.updates, 1);
    rs_learnlog_close(lgs);
    rs_learnlog_close(lg7);
    rs_model_destroy(sq);
    rs_model_destroy(o7);
    rs_model_destroy(o);
    rs_model_destroy(T);
    rs_test_learn_destroy(S);
    free(srec);
    free(big);
    free(rec);
    free(bad);
}

/* Snapshots of kind "lr": a scorer scores with the trainer's weights,
 * keeps its own for learning, and can go back to them. */
static void test_weights_lr(void **state) {
    (void)state;
    rs_test_learn_t *tt = trained_model(100);
    rs_model_t *T = tt->m;
    char err[256];
    rs_model_conf_t c = conf_small();
    rs_test_learn_t *ts = wrap_tl(rs_model_new_like(T, NULL, err, sizeof(err)),
                                  &c),
                    *ts2 = wrap_tl(rs_model_new_like(T, NULL, err, sizeof(err)),
                                   &c);
    rs_model_t *S = ts->m, *S2 = ts2->m;
    enum { N = 100 };
    static float x[N * DIM], st_[N], ss[N], s2[N];
    random_rows(x, N, 23);
    rs_model_weights_t *w = rs_model_weights_take(T);
    assert_non_null(w);
    assert_string_equal(rs_model_weights_version(w), rs_model_version(T));
    char wv[RS_VERSION_MAX];
    rs_strlcpy(wv, rs_model_weights_version(w), sizeof(wv));
    assert_int_equal(rs_model_weights_use(S, w), RS_OK);
    rs_model_weights_release(w);
    assert_string_equal(rs_model_version(S), rs_model_version(T));
    assert_int_equal(rs_model_version_number(S), 6);
    rs_model_score(T, x, N, st_, NULL);
    rs_model_score(S, x, N, ss, NULL);
    assert_memory_equal(st_, ss, sizeof(ss));
    /* the trainer moves on; the snapshot does not */
    float xr[DIM] = {3, 1, 4, 1, 5, 9, 2, 6};
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        assert_int_equal(rs_test_learn_score(tt, id, T0, xr, NULL), RS_OK);
        assert_int_equal(rs_test_learn_label(tt, id, 1, NULL), RS_OK);
    }
    rs_model_score(S, x, N, s2, NULL);
    assert_memory_equal(st_, s2, sizeof(s2));
    /* S learns with its own weights while it scores with the snapshot */
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "o%d", i);
        assert_int_equal(rs_test_learn_score(ts, id, T0, xr, NULL), RS_OK);
        assert_int_equal(rs_test_learn_score(ts2, id, T0, xr, NULL), RS_OK);
        assert_int_equal(rs_test_learn_label(ts, id, i & 1, NULL), RS_OK);
        assert_int_equal(rs_test_learn_label(ts2, id, i & 1, NULL), RS_OK);
    }
    rs_model_score(S, x, N, s2, NULL);
    assert_memory_equal(st_, s2, sizeof(s2));
    assert_string_equal(rs_model_version(S), wv);
    /* back to its own: as a model that never used a snapshot */
    assert_int_equal(rs_model_weights_use(S, NULL), RS_OK);
    rs_model_score(S, x, N, ss, NULL);
    rs_model_score(S2, x, N, s2, NULL);
    assert_memory_equal(ss, s2, sizeof(s2));
    assert_string_equal(rs_model_version(S), rs_model_version(S2));
    /* the snapshot of a scorer that uses one is of its own weights */
    assert_int_equal(rs_model_weights_use(S, (w = rs_model_weights_take(T))), RS_OK);
    rs_model_weights_release(w);
    w = rs_model_weights_take(S);
    rs_model_t *S3 = rs_model_new_like(T, NULL, err, sizeof(err));
    assert_int_equal(rs_model_weights_use(S3, w), RS_OK);
    rs_model_weights_release(w);
    rs_model_score(S3, x, N, ss, NULL);
    assert_memory_equal(ss, s2, sizeof(s2));
    /* refused: another dimension, another kind; S keeps its snapshot */
    const char *vbefore = rs_model_version(S);
    rs_model_t *o = rs_model_new(&c, 3, names8, err, sizeof(err));
    w = rs_model_weights_take(o);
    assert_int_equal(rs_model_weights_use(S, w), RS_ERR_INVALID);
    rs_model_weights_release(w);
    rs_model_conf_t cs;
    rs_model_conf_init(&cs);
    cs.seq.max_entities = 1024;
    rs_model_t *sq = rs_model_new(&cs, DIM, names8, err, sizeof(err));
    w = rs_model_weights_take(sq);
    assert_int_equal(rs_model_weights_use(S, w), RS_ERR_INVALID);
    rs_model_weights_release(w);
    w = rs_model_weights_take(S);
    assert_int_equal(rs_model_weights_use(sq, w), RS_ERR_INVALID);
    rs_model_weights_release(w);
    assert_string_equal(rs_model_version(S), vbefore);
    rs_model_score(S, x, N, s2, NULL);
    rs_model_score(T, x, N, ss, NULL);
    assert_memory_equal(ss, s2, sizeof(s2));
    rs_model_destroy(sq);
    rs_model_destroy(o);
    rs_model_destroy(S3);
    rs_test_learn_destroy(ts2);
    rs_test_learn_destroy(ts);
    rs_test_learn_destroy(tt); /* S's reference keeps nothing of T alive */
}

static void test_new_like(void **state) {
    (void)state;
    rs_test_learn_t *tm = trained_model(100);
    rs_model_t *m = tm->m;
    char err[256] = "", path[512];
    snprintf(path, sizeof(path), "%s/like.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    rs_model_t *ld = NULL;
    assert_int_equal(rs_model_load(path, NULL, &ld, err, sizeof(err)), RS_OK);
    rs_model_t *l = rs_model_new_like(ld, NULL, err, sizeof(err));
    assert_non_null(l);
    assert_string_equal(rs_model_kind(l), "lr");
    assert_int_equal(rs_model_dim(l), DIM);
    assert_int_equal(rs_model_check_names(l, DIM, names8, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_model_version_number(l), 0);
    /* the same records: its learner may learn m's log */
    rs_learnlog_meta_t ma, mb;
    rs_model_lrec_meta(l, &ma);
    rs_model_lrec_meta(m, &mb);
    assert_memory_equal(&ma, &mb, sizeof(ma));
    rs_model_stats_t st;
    rs_model_stats(l, &st);
    assert_int_equal(st.updates, 0);
    float x[DIM] = {1, 2, 3, 4, 5, 6, 7, 8}, s;
    rs_model_score(l, x, 1, &s, NULL);
    assert_true(fabsf(s - 0.01f) < 1e-6f); /* the untrained prior */
    /* a conf: its learning settings, the kind stays m's.  One step of a
     * new_like with learning_rate 0.5 = one step of a new model with that
     * conf, not of a new_like keeping m's 0.01 */
    rs_model_conf_t c = conf_small();
    c.kind = RS_MODEL_SEQ;
    c.learning_rate = 0.5;
    rs_model_t *l2 = rs_model_new_like(m, &c, err, sizeof(err));
    assert_non_null(l2);
    assert_string_equal(rs_model_kind(l2), "lr");
    c.kind = RS_MODEL_LR;
    rs_model_t *fresh = rs_model_new(&c, DIM, names8, err, sizeof(err));
    rs_model_t *l3 = rs_model_new_like(m, NULL, err, sizeof(err));
    assert_int_equal(rs_test_learn_score(tm, "p0", T0, x, NULL), RS_OK);
    const void *rec, *hist[1];
    int nh;
    assert_int_equal(rs_test_learn_record(tm, "p0", &rec, hist, 1, &nh), RS_OK);
    float s2, sf, s3;
    for (int k = 0; k < 3; k++) {
        rs_model_t *u = k == 0 ? l2 : k == 1 ? fresh : l3;
        assert_int_equal(rs_model_learn_lrec(u, rec, hist, nh, 1,
                                             RS_MODEL_LEARN_LABEL, -1),
                         RS_OK);
    }
    rs_model_score(l2, x, 1, &s2, NULL);
    rs_model_score(fresh, x, 1, &sf, NULL);
    rs_model_score(l3, x, 1, &s3, NULL);
    assert_memory_equal(&s2, &sf, sizeof(float));
    assert_true(s2 != s3);
    c.learning_rate = -1;
    assert_null(rs_model_new_like(m, &c, err, sizeof(err)));
    assert_non_null(strstr(err, "learning_rate"));
    rs_model_destroy(l3);
    rs_model_destroy(fresh);
    rs_model_destroy(l2);
    rs_model_destroy(l);
    rs_model_destroy(ld);
    rs_test_learn_destroy(tm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_defaults),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_grad_check),
        cmocka_unit_test(test_learns_separable),
        cmocka_unit_test(test_horizon_negatives),
        cmocka_unit_test(test_log_rolls_and_forgets),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_load_values),
        cmocka_unit_test(test_cold_start_prior),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_conf_split),
        cmocka_unit_test(test_records_equivalence),
        cmocka_unit_test(test_records_bad_input),
        cmocka_unit_test(test_weights_lr),
        cmocka_unit_test(test_new_like),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
