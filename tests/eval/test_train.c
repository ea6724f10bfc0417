/* test_train.c -- the rs_eval pieces `riskstream train` uses: a replay
 * with no_metrics learns exactly as one with metrics (same scores, same
 * model counters and version) and keeps no report; rs_eval_model hands out
 * the trained model; saved with rs_model_save and loaded back with
 * rs_model_load (as `serve --model` does) it keeps its version and, on a
 * fresh feature engine, ranks the stream clearly better than an untrained
 * model (AP).  For both model kinds.  All data is made in the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/eval/eval.h"
#include "eval_stream.h"
#include "common/metrics.h"

static void small_model_conf(rs_model_conf_t *mc, int kind) {
    rs_model_conf_init(mc);
    mc->kind = kind;
    mc->label_horizon = 2 * DAY;
    mc->publish_every = 50;
    mc->seq.max_entities = 1024;
}

/* Replay the stream (label delay 1d) with one model of `kind`; scores[n]
 * (may be NULL).  Returns the replay, not destroyed. */
static rs_eval_t *replay(const stream_t *s, int kind, int no_metrics,
                         float *scores) {
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    rs_model_conf_t mc;
    small_model_conf(&mc, kind);
    rs_eval_conf_t ec;
    rs_eval_conf_init(&ec);
    ec.label_delay_ms = DAY;
    ec.nmodels = 1;
    ec.kinds[0] = kind;
    ec.no_metrics = no_metrics;
    ec.features = &fc;
    ec.model = &mc;
    char err[512];
    rs_eval_t *e = rs_eval_new(&ec, err, sizeof(err));
    if (!e) fail_msg("rs_eval_new: %s", err);
    for (int i = 0; i < s->n; i++) {
        rs_eval_rec_t rec = {.ev = &s->ev[i], .label = s->y[i],
                             .learn = s->y[i]};
        assert_int_equal(rs_eval_push(e, &rec, scores ? scores + i : NULL,
                                      err, sizeof(err)),
                         RS_OK);
    }
    return e;
}

/* ROC AUC and average precision (*ap) of model m scoring the stream from a fresh feature engine and
 * fresh entity caches, without learning (what `serve --model` starts
 * from). */
static double score_auc(const stream_t *s, rs_model_t *m, double *ap) {
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    char err[512];
    rs_features_t *f = rs_features_new(&fc, err, sizeof(err));
    assert_non_null(f);
    int dim = rs_features_dim(f);
    float *x = calloc((size_t)dim + 1, sizeof(*x));
    double *sc = calloc((size_t)s->n, sizeof(*sc));
    for (int i = 0; i < s->n; i++) {
        uint32_t flags = 0;
        assert_int_equal(rs_features_process(f, &s->ev[i], x, &flags), RS_OK);
        rs_model_input_t in;
        rs_model_input_from_event(&in, &s->ev[i], x);
        rs_model_output_t out;
        assert_int_equal(rs_model_forward(m, &in, 1, &out, NULL, 0), RS_OK);
        sc[i] = out.score;
    }
    double auc = rs_auc_exact(sc, s->y, (size_t)s->n);
    *ap = rs_ap_exact(sc, s->y, (size_t)s->n);
    free(sc);
    free(x);
    rs_features_destroy(f);
    return auc;
}

static void train_kind(int kind) {
    stream_t s;
    stream_make(&s);
    float *a = calloc((size_t)s.n, sizeof(*a));
    float *b = calloc((size_t)s.n, sizeof(*b));

    /* no_metrics changes nothing but the report */
    rs_eval_t *with = replay(&s, kind, 0, a);
    rs_eval_t *e = replay(&s, kind, 1, b);
    assert_memory_equal(a, b, (size_t)s.n * sizeof(*a));
    rs_eval_stats_t st1, st2;
    rs_eval_stats(with, &st1);
    rs_eval_stats(e, &st2);
    assert_int_equal(st1.events, st2.events);
    assert_int_equal(st1.labels_applied, st2.labels_applied);
    assert_int_equal(st1.model[0].updates, st2.model[0].updates);
    assert_string_equal(st1.model[0].version, st2.model[0].version);
    rs_eval_report_t *r = rs_eval_report(with);
    assert_non_null(r);
    rs_eval_report_destroy(r);
    assert_null(rs_eval_report(e));
    rs_eval_destroy(with);

    /* the trained model: in range only, learned something, own version */
    assert_null(rs_eval_model(e, -1));
    assert_null(rs_eval_model(e, 1));
    rs_model_t *m = rs_eval_model(e, 0);
    assert_non_null(m);
    assert_string_equal(rs_model_kind(m), kind == RS_MODEL_SEQ ? "seq" : "lr");
    assert_true(st2.model[0].updates >= 100);
    assert_true(st2.model[0].positives > 0);
    const char *v = st2.model[0].version;
    assert_true(strlen(v) > 2 && strcmp(v + strlen(v) - 2, "-0") != 0);

    /* save, load as serve does (its own conf: learning settings only) */
    char path[] = "/tmp/rs-test-train.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char err[512];
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    rs_model_conf_t mc;
    small_model_conf(&mc, kind == RS_MODEL_SEQ ? RS_MODEL_LR : RS_MODEL_SEQ);
    rs_model_t *loaded = NULL;
    rs_err_t rc = rs_model_load(path, &mc, &loaded, err, sizeof(err));
    if (rc != RS_OK) fail_msg("rs_model_load: %s", err);
    unlink(path);
    assert_string_equal(rs_model_kind(loaded), rs_model_kind(m));
    assert_string_equal(rs_model_version(loaded), v);

    /* it ranks the stream (cold features) clearly better than untrained */
    small_model_conf(&mc, kind);
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    rs_features_t *f = rs_features_new(&fc, err, sizeof(err));
    int dim = rs_features_dim(f);
    const char *names[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < dim; i++) names[i] = rs_features_name(f, i);
    assert_int_equal(rs_model_check_names(loaded, dim, names, err,
                                          sizeof(err)), RS_OK);
    rs_model_t *fresh = rs_model_new(&mc, dim, names, err, sizeof(err));
    assert_non_null(fresh);
    double ap1, ap0;
    double auc1 = score_auc(&s, loaded, &ap1), auc0 = score_auc(&s, fresh, &ap0);
    printf("%s: trained %s AUC %.3f AP %.3f, untrained %s AUC %.3f AP %.3f\n",
           rs_model_kind(m), v, auc1, ap1, rs_model_version(fresh), auc0, ap0);
    /* (an untrained "seq" already ranks these obvious bursts well: AP
     * is where training shows) */
    assert_true(auc1 >= 0.9);
    assert_true(auc1 >= auc0);
    assert_true(ap1 > ap0 + 0.05);
    /* scoring did not learn: the version is still the file's */
    assert_string_equal(rs_model_version(loaded), v);

    rs_features_destroy(f);
    rs_model_destroy(fresh);
    rs_model_destroy(loaded);
    rs_eval_destroy(e);
    free(a);
    free(b);
    stream_free(&s);
}

static void test_train_seq(void **state) {
    (void)state;
    train_kind(RS_MODEL_SEQ);
}

static void test_train_lr(void **state) {
    (void)state;
    train_kind(RS_MODEL_LR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_seq),
        cmocka_unit_test(test_train_lr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
