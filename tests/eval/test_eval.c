/* test_eval.c -- unit tests of ops/eval: metrics per day against a
 * hand-computed example, the no-leakage invariant of the prequential
 * replay (through the real feature engine and models), CSV with a column
 * mapping and each time format, bad lines counted, determinism, the SVG.
 * All data is made in the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/eval/eval.h"
#include "eval_stream.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

/* ------------------------------------------------ metrics, by hand */

static void test_metrics_by_hand(void **state) {
    (void)state;
    const char *names[] = {"m1", "m2"};
    char err[256];
    rs_eval_acc_t *acc = rs_eval_acc_new(2, names, 2, 0.5, err, sizeof(err));
    assert_non_null(acc);
    /* day 1: entity, label, pattern, score m1, score m2 */
    struct { int64_t t; const char *ent; int y; const char *pat; float s1, s2; }
    ev[] = {
        {T0 + 1000, "A", 1, "card_testing", 0.9f, 0.2f},
        {T0 + 2000, "A", 0, NULL, 0.3f, 0.8f},
        {T0 + 3000, "B", 0, "none", 0.6f, 0.1f},
        {T0 + 4000, "C", 1, "account_takeover", 0.4f, 0.7f},
        /* day 2 */
        {T0 + DAY + 1000, "A", 0, NULL, 0.1f, 0.5f},
        {T0 + DAY + 2000, "B", 1, "card_testing", 0.8f, 0.4f},
        {T0 + DAY + 3000, "C", 0, NULL, 0.2f, 0.6f},
    };
    /* added out of time order on purpose: days are grouped by time */
    int order[] = {4, 0, 1, 5, 2, 3, 6};
    for (int j = 0; j < 7; j++) {
        int i = order[j];
        float s[2] = {ev[i].s1, ev[i].s2};
        rs_eval_acc_add(acc, ev[i].t, ev[i].ent, ev[i].y, ev[i].pat, s);
    }
    rs_eval_report_t *r = rs_eval_acc_report(acc);
    assert_non_null(r);
    assert_int_equal(r->ndays, 2);
    assert_true(r->days[0].day_ms == T0);
    assert_true(r->days[1].day_ms == T0 + DAY);
    /* day 1 */
    const rs_eval_day_t *d = &r->days[0];
    assert_int_equal(d->events, 4);
    assert_int_equal(d->positives, 2);
    assert_int_equal(d->entities, 3);
    NEAR(d->m[0].auc, 0.75);              /* 3 of 4 pairs */
    NEAR(d->m[0].ap, (1.0 + 2.0 / 3) / 2); /* + - + - */
    NEAR(d->m[0].alert_rate, 0.5);
    NEAR(d->m[0].p_at_k, 0.5);            /* top2: A(+) 0.9, B(-) 0.6 */
    NEAR(d->m[1].auc, 0.5);
    NEAR(d->m[1].ap, (0.5 + 2.0 / 3) / 2); /* - + + - */
    NEAR(d->m[1].p_at_k, 1.0);            /* A max 0.8 (+), C 0.7 (+) */
    NEAR(d->m[1].alert_rate, 0.5);
    /* day 2 */
    d = &r->days[1];
    NEAR(d->m[0].auc, 1.0);
    NEAR(d->m[0].ap, 1.0);
    NEAR(d->m[0].alert_rate, 1.0 / 3);
    NEAR(d->m[0].p_at_k, 0.5);
    NEAR(d->m[1].auc, 0.0);
    NEAR(d->m[1].ap, 1.0 / 3);
    NEAR(d->m[1].alert_rate, 2.0 / 3);
    NEAR(d->m[1].p_at_k, 0.0);
    /* overall */
    d = &r->overall;
    assert_int_equal(d->events, 7);
    assert_int_equal(d->positives, 3);
    NEAR(d->m[0].auc, 11.0 / 12);
    NEAR(d->m[0].ap, (1 + 1 + 0.75) / 3);
    NEAR(d->m[0].p_at_k, 2.0 / 4);        /* hits / picks over days */
    NEAR(d->m[0].alert_rate, 3.0 / 7);
    NEAR(d->m[1].auc, 5.0 / 12);
    NEAR(d->m[1].p_at_k, 2.0 / 4);
    NEAR(d->m[1].alert_rate, 4.0 / 7);
    NEAR(d->m[0].auc_day_mean, (0.75 + 1.0) / 2);
    NEAR(d->m[0].ap_day_mean, ((1.0 + 2.0 / 3) / 2 + 1.0) / 2);
    NEAR(d->m[1].auc_day_mean, 0.25);
    /* patterns: first-seen order */
    assert_int_equal(r->npatterns, 2);
    assert_string_equal(r->patterns[0].name, "card_testing");
    assert_int_equal(r->patterns[0].positives, 2);
    NEAR(r->patterns[0].auc[0], 1.0);
    NEAR(r->patterns[0].ap[0], 1.0);
    assert_string_equal(r->patterns[1].name, "account_takeover");
    NEAR(r->patterns[1].auc[0], 0.75);
    NEAR(r->patterns[1].ap[0], 0.5);
    assert_int_equal(r->pattern_unmatched, 0);

    /* the printout names what it shows */
    char *txt = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&txt, &len);
    rs_eval_report_print(r, 1, fp);
    fclose(fp);
    assert_non_null(strstr(txt, "2026-01-02"));
    assert_non_null(strstr(txt, "card_testing"));
    assert_non_null(strstr(txt, "0.9167"));
    free(txt);
    char *svg = rs_eval_plot_svg(r, "t<est>");
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "t&lt;est&gt;"));
    assert_non_null(strstr(svg, "model m2"));
    assert_non_null(strstr(svg, "</svg>"));
    free(svg);
    rs_eval_report_destroy(r);
    rs_eval_acc_destroy(acc);
}

/* A day with a single class gives NaN AUC/AP ("-"), not a crash. */
static void test_metrics_one_class(void **state) {
    (void)state;
    const char *names[] = {"lr"};
    rs_eval_acc_t *acc = rs_eval_acc_new(1, names, 100, 0.5, NULL, 0);
    float s = 0.7f;
    rs_eval_acc_add(acc, T0, "A", 0, NULL, &s);
    rs_eval_acc_add(acc, T0 + 5, "B", 0, NULL, &s);
    rs_eval_report_t *r = rs_eval_acc_report(acc);
    assert_true(isnan(r->overall.m[0].auc));
    assert_true(isnan(r->overall.m[0].ap));
    NEAR(r->overall.m[0].p_at_k, 0.0);
    NEAR(r->overall.m[0].alert_rate, 1.0);
    rs_eval_report_destroy(r);
    rs_eval_acc_destroy(acc);
    assert_null(rs_eval_acc_new(0, names, 1, 0.5, NULL, 0));
}

/* ------------------------------- replays of the stream of eval_stream.h */

typedef struct {
    int64_t delay;
    int nlabels;
    int violations;     /* label applied before event time + delay */
    int64_t last_now;
} hook_t;

static void leak_hook(void *opaque, const rs_label_t *lb, int64_t event_time,
                      int64_t now) {
    hook_t *h = opaque;
    (void)lb;
    h->nlabels++;
    if (now < event_time + h->delay) h->violations++;
    if (now < h->last_now) h->violations++;   /* applied in time order */
    h->last_now = now;
}

static int64_t g_warmup;   /* rs_eval_conf_t.warmup_ms of run() */

static void small_model_conf(rs_model_conf_t *mc) {
    rs_model_conf_init(mc);
    mc->label_horizon = 4 * DAY;
    mc->seq.max_entities = 1024;
}

/* Run the stream; learn_mask(i) decides whether event i's label is fed.
 * Scores land in scores[n][nmodels]; returns the report. */
static rs_eval_report_t *run(const stream_t *s, int nmodels, const int *kinds,
                             int64_t delay, const int *learn, float *scores,
                             hook_t *hook) {
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    rs_model_conf_t mc;
    small_model_conf(&mc);
    rs_eval_conf_t ec;
    rs_eval_conf_init(&ec);
    ec.label_delay_ms = delay;
    ec.top_k = 5;
    ec.warmup_ms = g_warmup;
    ec.nmodels = nmodels;
    for (int k = 0; k < nmodels; k++) ec.kinds[k] = kinds[k];
    ec.features = &fc;
    ec.model = &mc;
    if (hook) {
        ec.label_hook = leak_hook;
        ec.hook_opaque = hook;
    }
    char err[512];
    rs_eval_t *e = rs_eval_new(&ec, err, sizeof(err));
    if (!e) fail_msg("rs_eval_new: %s", err);
    for (int i = 0; i < s->n; i++) {
        rs_eval_rec_t rec = {.ev = &s->ev[i], .label = s->y[i],
                             .learn = learn ? learn[i] : s->y[i]};
        assert_int_equal(rs_eval_push(e, &rec, scores + (size_t)i * nmodels,
                                      err, sizeof(err)), RS_OK);
    }
    rs_eval_stats_t st;
    rs_eval_stats(e, &st);
    assert_int_equal(st.events, (uint64_t)s->n);
    rs_eval_report_t *r = rs_eval_report(e);
    rs_eval_destroy(e);
    return r;
}

/* No leakage: a label is applied only once the replay reaches its event
 * time + delay, and removing the labels of a window of events leaves every
 * score before (window start + delay) bit-identical, while it does change
 * later scores (so the labels are really used). */
static void test_prequential_no_leak(void **state) {
    (void)state;
    stream_t s;
    stream_make(&s);
    assert_true(s.n > 1000);
    const int64_t delay = DAY;
    const int kinds[] = {RS_MODEL_LR, RS_MODEL_SEQ};
    float *a = calloc((size_t)s.n * 2, sizeof(float));
    float *b = calloc((size_t)s.n * 2, sizeof(float));
    int *learn = calloc((size_t)s.n, sizeof(int));
    hook_t h = {.delay = delay};
    rs_eval_report_t *ra = run(&s, 2, kinds, delay, NULL, a, &h);
    assert_int_equal(h.violations, 0);
    /* every positive whose label was due before the last event was fed */
    int due = 0, npos = 0;
    int64_t last = s.ev[s.n - 1].event_time_ms;
    for (int i = 0; i < s.n; i++) {
        npos += s.y[i];
        due += s.y[i] && s.ev[i].event_time_ms + delay <= last;
    }
    assert_true(npos > 20);
    assert_int_equal(h.nlabels, due);

    /* run B: labels of events in [T0 + 2d, T0 + 3d) are withheld */
    int64_t w0 = T0 + 2 * DAY, w1 = T0 + 3 * DAY;
    int withheld = 0;
    for (int i = 0; i < s.n; i++) {
        int64_t t = s.ev[i].event_time_ms;
        learn[i] = s.y[i] && !(t >= w0 && t < w1);
        withheld += s.y[i] && !learn[i];
    }
    assert_true(withheld > 0);
    rs_eval_report_t *rb = run(&s, 2, kinds, delay, learn, b, NULL);
    int before = 0, differ_after = 0;
    for (int i = 0; i < s.n; i++) {
        int64_t t = s.ev[i].event_time_ms;
        if (t < w0 + delay) {
            for (int k = 0; k < 2; k++)
                assert_memory_equal(&a[i * 2 + k], &b[i * 2 + k],
                                    sizeof(float));
            before++;
        } else if (a[i * 2] != b[i * 2] || a[i * 2 + 1] != b[i * 2 + 1]) {
            differ_after++;
        }
    }
    assert_true(before > 100);
    assert_true(differ_after > 0);
    rs_eval_report_destroy(ra);
    rs_eval_report_destroy(rb);
    free(a);
    free(b);
    free(learn);
    stream_free(&s);
}

/* Same input -> same scores and the same report, byte for byte. */
static void test_determinism(void **state) {
    (void)state;
    stream_t s;
    stream_make(&s);
    const int kinds[] = {RS_MODEL_SEQ, RS_MODEL_LR};
    float *a = calloc((size_t)s.n * 2, sizeof(float));
    float *b = calloc((size_t)s.n * 2, sizeof(float));
    rs_eval_report_t *r1 = run(&s, 2, kinds, DAY, NULL, a, NULL);
    rs_eval_report_t *r2 = run(&s, 2, kinds, DAY, NULL, b, NULL);
    assert_memory_equal(a, b, (size_t)s.n * 2 * sizeof(float));
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    FILE *f1 = open_memstream(&t1, &l1), *f2 = open_memstream(&t2, &l2);
    rs_eval_report_print(r1, 1, f1);
    rs_eval_report_print(r2, 1, f2);
    fclose(f1);
    fclose(f2);
    assert_int_equal(l1, l2);
    assert_string_equal(t1, t2);
    assert_true(r1->ndays >= 6);
    assert_false(isnan(r1->overall.m[0].auc));
    char *s1 = rs_eval_plot_svg(r1, "x"), *s2 = rs_eval_plot_svg(r2, "x");
    assert_string_equal(s1, s2);
    free(s1);
    free(s2);
    free(t1);
    free(t2);
    rs_eval_report_destroy(r1);
    rs_eval_report_destroy(r2);
    free(a);
    free(b);
    stream_free(&s);
}

/* Warm-up events are replayed but not measured; the scores are the same
 * as without a warm-up. */
static void test_warmup(void **state) {
    (void)state;
    stream_t s;
    stream_make(&s);
    const int kinds[] = {RS_MODEL_LR};
    float *a = calloc((size_t)s.n, sizeof(float));
    float *b = calloc((size_t)s.n, sizeof(float));
    rs_eval_report_t *r1 = run(&s, 1, kinds, DAY, NULL, a, NULL);
    g_warmup = 2 * DAY;
    rs_eval_report_t *r2 = run(&s, 1, kinds, DAY, NULL, b, NULL);
    g_warmup = 0;
    assert_memory_equal(a, b, (size_t)s.n * sizeof(float));
    uint64_t measured = 0;
    for (int i = 0; i < s.n; i++)
        measured += s.ev[i].event_time_ms >= s.ev[0].event_time_ms + 2 * DAY;
    assert_int_equal(r2->overall.events, measured);
    assert_int_equal(r2->ndays, r1->ndays - 2);
    assert_true(r2->days[0].day_ms == T0 + 2 * DAY);
    rs_eval_report_destroy(r1);
    rs_eval_report_destroy(r2);
    free(a);
    free(b);
    stream_free(&s);
}

/* ------------------------------------------------ input: CSV + mapping */

static void test_csv_mapping_time_formats(void **state) {
    (void)state;
    const char *csv =
        "tx,card,shop,ts,amt,fraud,mcc\n"
        "a1,c1,m1,2026-01-01 00:00:05,10.50,0,grocery\n"   /* text time    */
        "a2,c2,m2,1767225602000,3.00,1,digital\n"          /* epoch ms     */
        "\n"                                                /* blank: skip  */
        "a3,c1,m1,1767225601,7,,grocery\r\n"               /* epoch s, no label */
        "a4,c3,m3,1767225602000,1,true,\"a,b\"\n";         /* tie with a2  */
    rs_csv_map_t map;
    char err[512];
    assert_int_equal(rs_csv_map_parse(&map, "id=tx,entity=card,counterparty="
                                      "shop,time=ts,amount=amt,label=fraud",
                                      err, sizeof(err)), RS_OK);
    rs_eval_input_t *in = rs_eval_input_new(csv, strlen(csv), RS_EVAL_FMT_CSV,
                                            &map, err, sizeof(err));
    assert_non_null(in);
    assert_int_equal(rs_eval_input_count(in), 4);
    rs_eval_input_stats_t st;
    rs_eval_input_stats(in, &st);
    assert_int_equal(st.bad, 0);
    assert_int_equal(st.out_of_order, 3);   /* a2, a3, a4 precede a1 */
    assert_int_equal(st.with_label, 3);
    assert_int_equal(st.positives, 2);
    /* time order, ties in file order: a3 (..01 s), a2, a4 (..02 s), a1 */
    const char *want[] = {"a3", "a2", "a4", "a1"};
    const int64_t wt[] = {T0 + 1000, T0 + 2000, T0 + 2000, T0 + 5000};
    const int wl[] = {0, 1, 1, 0};
    const uint32_t wline[] = {5, 3, 6, 2};
    rs_event_t ev;
    rs_eval_rec_t rec;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rs_eval_input_get(in, (size_t)i, &ev, &rec), RS_OK);
        assert_string_equal(ev.id, want[i]);
        assert_true(ev.event_time_ms == wt[i]);
        assert_int_equal(rec.label, wl[i]);
        assert_int_equal(rec.learn, wl[i]);   /* only positives are fed */
        assert_true(rec.label_time_ms == 0);
        assert_null(rec.pattern);
        assert_int_equal(rs_eval_input_line(in, (size_t)i), wline[i]);
    }
    assert_int_equal(rs_eval_input_get(in, 4, &ev, &rec), RS_ERR_INVALID);

    /* labels file replaces the column; truth adds patterns */
    const char *labels =
        "{\"event_id\":\"a1\",\"entity_id\":\"c1\",\"value\":1,"
        "\"label_time_ms\":1767312000000}\n"
        "{\"event_id\":\"zz\",\"entity_id\":\"c9\",\"value\":1,"
        "\"label_time_ms\":1767312000000}\n";
    rs_eval_input_join_labels(in, labels, strlen(labels));
    const char *truth = "event_id,entity_id,event_time_ms,is_fraud,pattern,"
                        "episode\na1,c1,0,1,takeover,3\na2,c2,0,0,none,0\n";
    assert_int_equal(rs_eval_input_join_truth(in, truth, strlen(truth), err,
                                              sizeof(err)), RS_OK);
    rs_eval_input_stats(in, &st);
    assert_int_equal(st.labels, 1);
    assert_int_equal(st.labels_unknown, 1);
    assert_int_equal(st.truth_rows, 2);
    assert_int_equal(st.positives, 1);
    assert_int_equal(rs_eval_input_get(in, 3, &ev, &rec), RS_OK);
    assert_string_equal(ev.id, "a1");
    assert_int_equal(rec.label, 1);
    assert_int_equal(rec.learn, 1);
    assert_true(rec.label_time_ms == 1767312000000LL);
    assert_string_equal(rec.pattern, "takeover");
    assert_int_equal(rs_eval_input_get(in, 1, &ev, &rec), RS_OK);
    assert_string_equal(ev.id, "a2");
    assert_int_equal(rec.label, 0);   /* column said 1; the file did not */
    assert_int_equal(rec.learn, 0);
    assert_null(rec.pattern);
    rs_eval_input_destroy(in);

    /* a header missing a mapped column is fatal, naming it */
    in = rs_eval_input_new("id,x\n1,2\n", 9, RS_EVAL_FMT_CSV, &map, err,
                           sizeof(err));
    assert_null(in);
    assert_non_null(strstr(err, "line 1"));
    assert_int_equal(rs_eval_input_join_truth(NULL, "a,b\n", 4, err,
                                              sizeof(err)), RS_ERR_INVALID);
}

static void test_json_map_and_jsonl(void **state) {
    (void)state;
    const char *js =
        "{\"tx\":\"j1\",\"card\":\"c1\",\"ts\":\"2026-01-01 00:00:09\","
        "\"amt\":5,\"fraud\":1}\n"
        "{\"tx\":\"j2\",\"card\":\"c1\",\"ts\":1767225603,\"amt\":5}\n";
    rs_csv_map_t map;
    assert_int_equal(rs_csv_map_parse(&map, "id=tx,entity=card,time=ts,"
                                      "amount=amt,label=fraud", NULL, 0),
                     RS_OK);
    char err[512];
    rs_eval_input_t *in = rs_eval_input_new(js, strlen(js),
                                            RS_EVAL_FMT_JSON_MAP, &map, err,
                                            sizeof(err));
    assert_non_null(in);
    assert_int_equal(rs_eval_input_count(in), 2);
    rs_event_t ev;
    rs_eval_rec_t rec;
    assert_int_equal(rs_eval_input_get(in, 0, &ev, &rec), RS_OK);
    assert_string_equal(ev.id, "j2");
    assert_int_equal(rs_eval_input_get(in, 1, &ev, &rec), RS_OK);
    assert_true(ev.event_time_ms == T0 + 9000);
    assert_int_equal(rec.label, 1);
    rs_eval_input_destroy(in);

    const char *pj =
        "{\"id\":\"p1\",\"type\":\"card_tx\",\"entity_id\":\"c1\","
        "\"event_time_ms\":1767225600000,\"amount\":1}\n";
    in = rs_eval_input_new(pj, strlen(pj), RS_EVAL_FMT_JSONL, NULL, err,
                           sizeof(err));
    assert_non_null(in);
    assert_int_equal(rs_eval_input_count(in), 1);
    rs_eval_input_stats_t st;
    rs_eval_input_stats(in, &st);
    assert_int_equal(st.with_label, 0);
    rs_eval_input_destroy(in);
}

/* Bad lines are counted and skipped with messages naming line and field. */
static void test_bad_lines(void **state) {
    (void)state;
    const char *csv =
        "id,entity_id,event_time_ms,amount,label\n"
        "b1,c1,1767225600000,1,0\n"
        "b2,c1,1767225601000,-5,0\n"          /* negative amount   line 3 */
        "b3,c1,yesterday,1,0\n"               /* bad time          line 4 */
        "b4,c1,1767225602000\n"               /* short row         line 5 */
        ",c1,1767225603000,1,0\n"             /* no id             line 6 */
        "b5,c1,1767225604000,2,1\n"
        "b6,c1,1767225605000,2,1\n"           /* 7 -> 8 good */
        "b7,c1,1767225606000,x,0\n";          /* bad amount        line 9 */
    char err[512];
    rs_eval_input_t *in = rs_eval_input_new(csv, strlen(csv), RS_EVAL_FMT_CSV,
                                            NULL, err, sizeof(err));
    assert_non_null(in);
    rs_eval_input_stats_t st;
    rs_eval_input_stats(in, &st);
    assert_int_equal(st.lines, 8);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.bad, 5);
    assert_int_equal(rs_eval_input_count(in), 3);
    assert_int_equal(st.nerrors, RS_EVAL_ERRORS_KEPT);
    assert_non_null(strstr(st.errors[0], "line 3"));
    assert_non_null(strstr(st.errors[0], "amount"));
    assert_non_null(strstr(st.errors[1], "line 4"));
    assert_non_null(strstr(st.errors[2], "line 5"));
    assert_non_null(strstr(st.errors[3], "line 6"));
    assert_non_null(strstr(st.errors[4], "line 9"));
    /* a bad labels line and a bad truth row are counted too */
    const char *labels = "{\"event_id\":\"b5\",\"entity_id\":\"c1\","
                         "\"value\":1,\"label_time_ms\":1767225609000}\n"
                         "not json\n";
    rs_eval_input_join_labels(in, labels, strlen(labels));
    assert_int_equal(rs_eval_input_join_truth(in, "event_id,pattern\nb5\n",
                                              20, err, sizeof(err)), RS_OK);
    rs_eval_input_stats(in, &st);
    assert_int_equal(st.labels, 1);
    assert_int_equal(st.labels_bad, 1);
    assert_int_equal(st.truth_bad, 1);
    rs_eval_input_destroy(in);

    /* an input with only bad lines yields zero events, not an error */
    const char *allbad = "id,entity_id,event_time_ms,amount\nq,,1,1\n";
    in = rs_eval_input_new(allbad, strlen(allbad), RS_EVAL_FMT_CSV, NULL, err,
                           sizeof(err));
    assert_non_null(in);
    assert_int_equal(rs_eval_input_count(in), 0);
    rs_eval_input_destroy(in);
}

/* The weekly card-precision protocol by hand: top_k 2; card A's fraud label
 * is known before week 2, so A is removed from week 2 (and its fraud there
 * does not count); alerts come from the caller's bits. */
static void test_weekly_card_precision(void **state) {
    (void)state;
    const char *names[] = {"m"};
    rs_eval_acc_t *acc = rs_eval_acc_new(1, names, 2, 0.5, NULL, 0);
    float s;
    /* week 1, day 0: A fraud 0.9, B 0.8, C 0.1 -> top2 {A, B}: 1/2 */
    s = 0.9f; rs_eval_acc_add_ex(acc, T0 + 1000, "A", 1, NULL, &s, T0 + DAY, 1);
    s = 0.8f; rs_eval_acc_add_ex(acc, T0 + 2000, "B", 0, NULL, &s, INT64_MAX, 0);
    s = 0.1f; rs_eval_acc_add_ex(acc, T0 + 3000, "C", 1, NULL, &s, INT64_MAX, 0);
    /* week 2, day 7: A again fraud 0.95 (removed: known at T0 + 1d),
     * B 0.2, C fraud 0.7 -> top2 of {B, C} = {C, B}: 1/2 */
    s = 0.95f; rs_eval_acc_add_ex(acc, T0 + 7 * DAY + 1, "A", 1, NULL, &s, T0 + 8 * DAY, 1);
    s = 0.2f; rs_eval_acc_add_ex(acc, T0 + 7 * DAY + 2, "B", 0, NULL, &s, INT64_MAX, 0);
    s = 0.7f; rs_eval_acc_add_ex(acc, T0 + 7 * DAY + 3, "C", 1, NULL, &s, T0 + 9 * DAY, 0);
    rs_eval_report_t *r = rs_eval_acc_report(acc);
    assert_int_equal(r->nweeks, 2);
    assert_int_equal(r->weeks[0].cards_removed, 0);
    assert_int_equal(r->weeks[1].cards_removed, 1);
    NEAR(r->weeks[0].card_p_at_k[0], 0.5);
    NEAR(r->weeks[1].card_p_at_k[0], 0.5);
    assert_int_equal(r->weeks[1].fraud_cards, 1);     /* C only */
    NEAR(r->card_p_at_k[0], 0.5);
    /* the alert bits, not the threshold: 2 of 6 events */
    assert_int_equal(r->overall.m[0].alerts, 2);
    char buf[4096];
    FILE *fp = fmemopen(buf, sizeof(buf), "w");
    rs_eval_report_print(r, 0, fp);
    fclose(fp);
    assert_non_null(strstr(buf, "card precision@2 per test week"));
    rs_eval_report_destroy(r);
    rs_eval_acc_destroy(acc);
}

/* Alerts as the caller decides (serve's per-type thresholds). */
static int alert_by_type(void *opaque, const rs_event_t *ev, float score) {
    (void)opaque;
    return !strcmp(ev->type, "sensor") ? score >= 0.99f : score >= 0.0f;
}

/* gbt: trained each day on the matured window only.  With a 1-day delay
 * and a 2-day window, its first model comes at day 2 (no positive is
 * known earlier); it separates the bursts afterwards; stats count the
 * training rows. */
static void test_gbt_reference(void **state) {
    (void)state;
    rs_eval_conf_t c;
    rs_eval_conf_init(&c);
    char err[256];
    if (rs_eval_conf_models(&c, "gbt", err, sizeof(err)) != RS_OK) {
        print_message("skip: %s\n", err);   /* built without libxgboost */
        return;
    }
    stream_t s;
    stream_make(&s);
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    fc.max_keys = fc.max_counterparties = 1024;
    fc.label_index = 65536;
    rs_model_conf_t mc;
    small_model_conf(&mc);
    c.label_delay_ms = DAY;
    c.gbt_window_ms = 2 * DAY;
    c.gbt_rounds = 20;
    c.top_k = 5;
    c.features = &fc;
    c.model = &mc;
    c.alert = alert_by_type;
    rs_eval_t *e = rs_eval_new(&c, err, sizeof(err));
    if (!e) fail_msg("%s", err);
    assert_string_equal(rs_eval_model_name(e, 0), "gbt");
    assert_null(rs_eval_model(e, 0));
    int64_t first_nonzero = 0;
    for (int i = 0; i < s.n; i++) {
        rs_eval_rec_t rec = {.ev = &s.ev[i], .label = s.y[i], .learn = s.y[i]};
        float sc;
        assert_int_equal(rs_eval_push(e, &rec, &sc, err, sizeof(err)), RS_OK);
        if (sc != 0 && !first_nonzero) first_nonzero = s.ev[i].event_time_ms;
    }
    /* day 1's window [-2d, 0) is empty, day 2's holds day 0, whose
     * positives' labels (known at +1d) arrived before day 2 */
    assert_true(first_nonzero >= T0 + 2 * DAY);
    assert_true(first_nonzero < T0 + 3 * DAY);
    rs_eval_stats_t st;
    rs_eval_stats(e, &st);
    assert_true(st.model[0].updates >= 3);        /* daily trainings */
    assert_true(st.model[0].positives > 0 && st.model[0].negatives > 0);
    rs_eval_report_t *r = rs_eval_report(e);
    /* days 3..5 */
    double ap = 0;
    int nd = 0;
    for (int d = 3; d < r->ndays; d++)
        if (!isnan(r->days[d].m[0].ap)) { ap += r->days[d].m[0].ap; nd++; }
    assert_true(nd > 0 && ap / nd > 0.8);
    /* card_tx events: every score >= 0 is an alert by alert_by_type */
    assert_int_equal(r->overall.m[0].alerts, r->overall.events);
    rs_eval_report_destroy(r);
    rs_eval_destroy(e);
    stream_free(&s);
}

static void test_conf_models(void **state) {
    (void)state;
    rs_eval_conf_t c;
    rs_eval_conf_init(&c);
    assert_int_equal(c.nmodels, 2);
    assert_int_equal(c.kinds[0], RS_MODEL_SEQ);
    char err[256];
    assert_int_equal(rs_eval_conf_models(&c, "lr", err, sizeof(err)), RS_OK);
    assert_int_equal(c.nmodels, 1);
    assert_int_equal(c.kinds[0], RS_MODEL_LR);
    assert_int_equal(rs_eval_conf_models(&c, "lr,gbm", err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "gbm"));
    assert_int_equal(rs_eval_conf_models(&c, "lr,lr", err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_int_equal(rs_eval_conf_models(&c, "", err, sizeof(err)),
                     RS_ERR_CONFIG);
}

/* eval's maintenance count (rs_mev_report): a failure's lead is from the
 * earlier of the episode open at the failure and the first alert within
 * the horizon.  Machine 1 is alerted 17 h ahead, its score dips for half
 * an hour at 11 h (the episode closes) and its policy opens the next
 * episode silently at 6.5 h (cool-down): people were told 17 h ahead, a
 * catch >= H/3 (before 2026-12-07 eval took the silent episode's 6.5 h, a
 * miss).  Machine 2: an episode open since 30 h (more than the horizon)
 * counts from its opening.  Machine 3: alerted 30 h ahead (outside the
 * horizon), closed, silently open from 5 h: 5 h, not >= H/3. */
static void test_maint_lead(void **state) {
    (void)state;
    const int64_t H = 3600000LL, HZ = 24 * H;
    const char *names[] = {"m", "ref"};
    rs_mev_t *m = rs_mev_new(2, names, HZ, 0.3);
    assert_non_null(m);
    const int64_t T = T0 + 3 * DAY;
    for (uint64_t e = 1; e <= 3; e++) {
        for (int64_t t = T - 40 * H; t <= T; t += H / 2) {
            int64_t ago = T - t; /* hours before the failure x H */
            uint32_t dec = 0, open = 0;
            if (e == 1) {
                dec = ago == 17 * H;
                open = (ago <= 17 * H && ago > 11 * H) || ago <= 13 * H / 2;
            } else if (e == 2) {
                dec = ago == 30 * H;
                open = ago <= 30 * H;
            } else {
                dec = ago == 30 * H;
                open = (ago <= 30 * H && ago > 20 * H) || ago <= 5 * H;
            }
            float sc[2] = {open ? 0.9f : 0.1f, 0.1f};
            rs_mev_add(m, t, e, ago <= HZ, t == T, sc, dec, open);
        }
    }
    rs_mev_report_t *r = rs_mev_report(m);
    assert_non_null(r);
    assert_int_equal(r->failures, 3);
    assert_int_equal(r->col[0].caught, 3);
    assert_int_equal(r->col[0].caught_third, 2);  /* 1 and 2, not 3 */
    assert_int_equal(r->col[1].caught, 0);
    rs_mev_report_destroy(r);
    rs_mev_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_by_hand),
        cmocka_unit_test(test_metrics_one_class),
        cmocka_unit_test(test_prequential_no_leak),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_csv_mapping_time_formats),
        cmocka_unit_test(test_json_map_and_jsonl),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_conf_models),
        cmocka_unit_test(test_weekly_card_precision),
        cmocka_unit_test(test_gbt_reference),
        cmocka_unit_test(test_maint_lead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
