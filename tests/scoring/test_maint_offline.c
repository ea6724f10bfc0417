/* test_maint_offline.c -- the service's maintenance bookkeeping equals the
 * offline tools' (scoring/alerts.c against `riskstream features` and
 * `eval --maintenance`).
 *
 * test_features_as_serve: `riskstream features` applies machine reports as
 * serve does (maintenance mode): the offline replay's feature rows
 * (rs_features_replay with `maintenance`) equal, bit for bit, the rows the
 * service's scoring path computes (scoring/alerts.c: rs_alerts_label,
 * rs_alerts_event, rs_features_process, rs_alerts_score in the order
 * svc_batch.c calls them) on a small sensors stream with a failure
 * reported for every reading of its window (after the failure, as
 * `gen --sensors` does), a repeated report, a repair, and value-0 labels
 * of readings; and a label column's failures (the last positive of each
 * run, eval's rule) equal the same failures given as a labels file.
 * Without maintenance the replay's rows differ (the failure and repair do
 * not start a new life): the defect this guards against.
 *
 * test_serve_lead_as_eval: serve's caught failures and lead times
 * (riskstream_failures_caught_total, riskstream_alert_lead_time_seconds)
 * follow eval's rule, rs_alertpol_lead: from the earlier of the open
 * episode's start and the first alert within the horizon -- a machine in
 * alert since before the horizon is caught (the policy's own count, the
 * latest alert within the horizon only, missed it). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "features/features.h"
#include "model/maint.h"
#include "model/model.h"
#include "proto/proto.h"
#include "scoring/alerts.h"
#include "scoring/http.h"
#include "scoring/trainer.h"
#include "tests/support/rs_test_eng.h"

#define T0 1700000000000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define NMACH 3
#define NREAD 432 /* 3 days every 10 minutes */
#define MAXEV (NMACH * NREAD)
#define MAXLB 512

static const int64_t FAIL_AT = T0 + 44 * HOUR_MS;    /* m0 fails        */
static const int64_t DOWN_MS = 4 * HOUR_MS;          /* m0 under repair */
static const int64_t REPAIR_AT = T0 + 36 * HOUR_MS;  /* m1 repaired     */

static rs_event_t g_ev[MAXEV];
static int g_nev;
static rs_label_t g_lb[MAXLB];
static int g_nlb;
static int g_pos[MAXEV]; /* label column: m0's readings of its window */

static rs_features_t *mkfeat(void) {
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    c.label_maturity = 86400000LL;
    rs_strlcpy(c.sensor_fields, "temp,vib", sizeof(c.sensor_fields));
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    return f;
}

static void add_label(const char *event_id, const char *entity, double v,
                      int64_t at) {
    assert_true(g_nlb < MAXLB);
    rs_label_t *lb = &g_lb[g_nlb++];
    memset(lb, 0, sizeof(*lb));
    rs_strlcpy(lb->event_id, event_id, sizeof(lb->event_id));
    rs_strlcpy(lb->entity_id, entity, sizeof(lb->entity_id));
    lb->value = v;
    lb->label_time_ms = at;
}

/* The stream: machines m0..m2 read every 10 minutes (offset by a minute
 * each).  m0 drifts over the 24 h before its failure, is down 4 h and
 * comes back at a new level; m1 is replaced (repair) and comes back at a
 * new level; m2 runs and gets value-0 labels of readings.  Labels in
 * label-time order (stable). */
static void build_stream(void) {
    rs_rng_t r;
    rs_rng_seed(&r, 11);
    g_nev = g_nlb = 0;
    for (int k = 0; k < NREAD; k++)
        for (int m = 0; m < NMACH; m++) {
            int64_t t = T0 + k * 10 * MIN_MS + m * MIN_MS;
            if (m == 0 && t >= FAIL_AT && t < FAIL_AT + DOWN_MS) continue;
            rs_event_t *ev = &g_ev[g_nev];
            memset(ev, 0, sizeof(*ev));
            snprintf(ev->id, sizeof(ev->id), "r-%d-%d", m, k);
            rs_strlcpy(ev->type, "sensor", sizeof(ev->type));
            snprintf(ev->entity_id, sizeof(ev->entity_id), "m%d", m);
            rs_strlcpy(ev->counterparty_id, "site-0",
                       sizeof(ev->counterparty_id));
            ev->event_time_ms = t;
            double temp = 60 + 5 * m + rs_rng_normal(&r);
            double vib = 2 + 0.1 * rs_rng_normal(&r);
            if (m == 0 && t < FAIL_AT && t > FAIL_AT - 24 * HOUR_MS)
                temp += 6.0 * (double)(t - (FAIL_AT - 24 * HOUR_MS)) /
                        (24.0 * HOUR_MS);
            if (m == 0 && t >= FAIL_AT) temp -= 4;  /* the repaired unit */
            if (m == 1 && t >= REPAIR_AT) vib += 1; /* the replacement  */
            ev->n_numeric = 2;
            rs_strlcpy(ev->numeric[0].name, "temp", RS_NAME_MAX);
            /* 3 decimals, as a generator writes them: the same double
             * from JSON and CSV */
            ev->numeric[0].value = round(temp * 1000.0) / 1000.0;
            rs_strlcpy(ev->numeric[1].name, "vib", RS_NAME_MAX);
            ev->numeric[1].value = round(vib * 1000.0) / 1000.0;
            g_pos[g_nev] = m == 0 && t < FAIL_AT && t > FAIL_AT - 24 * HOUR_MS;
            g_nev++;
        }
    /* value-0 labels of m2's readings (ignored), in time */
    for (int i = 0; i < g_nev; i += 97)
        if (!strcmp(g_ev[i].entity_id, "m2"))
            add_label(g_ev[i].id, "m2", 0, g_ev[i].event_time_ms + HOUR_MS);
    /* m1's repair */
    add_label("m1", "m1", 0, REPAIR_AT);
    /* m0's failure: every reading of its window, reported 1 h after the
     * last of them (while it is down), once more 10 minutes later */
    int64_t last = 0;
    for (int i = 0; i < g_nev; i++)
        if (g_pos[i]) last = g_ev[i].event_time_ms;
    for (int i = 0; i < g_nev; i++)
        if (g_pos[i]) add_label(g_ev[i].id, "m0", 1, last + HOUR_MS);
    add_label("r-0-x", "m0", 1, last + HOUR_MS + 10 * MIN_MS);
    /* stable sort by label time */
    for (int i = 1; i < g_nlb; i++)
        for (int j = i; j > 0 && g_lb[j - 1].label_time_ms > g_lb[j].label_time_ms;
             j--) {
            rs_label_t tmp = g_lb[j];
            g_lb[j] = g_lb[j - 1];
            g_lb[j - 1] = tmp;
        }
}

/* ------------------------------------------------------- serve's path */

/* The service's maintenance side: features, a scorer, a trainer and the
 * alerts over them (the test thread is the scoring thread). */
typedef struct srv_s {
    rs_features_t *f;
    rs_model_t *scorer;
    rs_trainer_t *tr;
    rs_alerts_t *al;
} srv_t;

static void srv_new(srv_t *s, const rs_maint_conf_t *mc) {
    s->f = mkfeat();
    int dim = rs_features_dim(s->f);
    const char *names[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < dim; i++) names[i] = rs_features_name(s->f, i);
    s->scorer = rs_test_eng_model(s->f, 0, NULL, 8, 64);
    s->tr = rs_test_eng_trainer(dim, names);
    s->al = rs_test_eng_alerts(mc, 0, s->f, s->scorer, s->tr);
}

/* One reading scored `score`, in svc_batch.c's order of calls (a batch
 * of its own); its features into x. */
static void srv_read(srv_t *s, const rs_event_t *ev, float score, float *x) {
    uint32_t fl = 0;
    int64_t rul;
    double as;
    rs_alerts_event(s->al, 0, ev, 0);
    assert_int_equal(rs_features_process(s->f, ev, x, &fl), RS_OK);
    rs_alerts_score(s->al, 0, -1, ev, 0, score, x, "v1", &rul, &as);
    rs_alerts_batch_end(s->al);
}

static void srv_stats(srv_t *s, rs_alerts_stats_t *st) {
    rs_alerts_snapshot(s->al);
    rs_alerts_stats(s->al, st);
}

static void srv_free(srv_t *s) {
    rs_alerts_destroy(s->al);
    rs_trainer_destroy(s->tr);
    rs_model_destroy(s->scorer);
    rs_features_destroy(s->f);
}

/* The rows of the service's scoring path: one batch per reading (labels
 * read 2 h ahead of the readings, as a lagging events topic lets them be;
 * they wait in rs_alerts until the partition's readings reach their
 * time). */
static void serve_rows(float *rows /* [g_nev][RS_FEATURES_MAX_DIM] */) {
    rs_maint_conf_t mc;
    rs_maint_conf_init(&mc);
    mc.enabled = 1;
    mc.max_machines = 64;
    srv_t s;
    srv_new(&s, &mc);
    int li = 0;
    for (int i = 0; i < g_nev; i++) {
        const rs_event_t *ev = &g_ev[i];
        while (li < g_nlb &&
               g_lb[li].label_time_ms <= ev->event_time_ms + 2 * HOUR_MS)
            assert_int_equal(rs_alerts_label(s.al, 0, &g_lb[li++]), 1);
        srv_read(&s, ev, 0.1f, rows + (size_t)i * RS_FEATURES_MAX_DIM);
    }
    rs_alerts_stats_t st;
    srv_stats(&s, &st);
    assert_int_equal(st.repairs, 1);
    assert_int_equal(st.pol.failures, 1);
    assert_true(st.waited > 0); /* the reports waited for their readings */
    srv_free(&s);
}

/* ------------------------------------------------- the offline replay */

typedef struct rows_s {
    float *cur;
    int dim, n;
} rows_t;

static int rows_cb(void *opaque, const rs_event_t *ev, const float *x,
                   uint32_t flags) {
    (void)ev;
    (void)flags;
    rows_t *r = opaque;
    memcpy(r->cur + (size_t)r->n++ * RS_FEATURES_MAX_DIM, x,
           sizeof(float) * (size_t)r->dim);
    return 0;
}

static void tmp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "/tmp/rs_test_maint_features_%d_%s", (int)getpid(),
             name);
}

/* Replay the stream (events as JSON lines, or CSV with a label column
 * when csv) with the labels file lf (NULL: none). */
static rs_features_replay_stats_t replay_rows(float *rows, int maintenance,
                                              int csv, FILE *lf,
                                              int64_t delay) {
    char path[256], line[RS_ENCODE_MAX];
    tmp_path(path, sizeof(path), csv ? "ev.csv" : "ev.jsonl");
    FILE *ef = fopen(path, "w+");
    assert_non_null(ef);
    if (csv) fprintf(ef, "id,type,entity_id,counterparty_id,event_time_ms,"
                         "amount,temp,vib,label\n");
    for (int i = 0; i < g_nev; i++) {
        const rs_event_t *ev = &g_ev[i];
        if (csv) {
            fprintf(ef, "%s,%s,%s,%s,%lld,0,%.17g,%.17g,%d\n", ev->id,
                    ev->type, ev->entity_id, ev->counterparty_id,
                    (long long)ev->event_time_ms, ev->numeric[0].value,
                    ev->numeric[1].value, g_pos[i]);
        } else {
            rs_event_to_json(ev, line, sizeof(line));
            fprintf(ef, "%s\n", line);
        }
    }
    rewind(ef);
    if (lf) rewind(lf);
    rs_features_t *f = mkfeat();
    rows_t rw = {rows, rs_features_dim(f), 0};
    rs_csv_map_t map;
    char err[256];
    assert_int_equal(rs_csv_map_parse(&map, "", err, sizeof(err)), RS_OK);
    rs_features_replay_t rp;
    memset(&rp, 0, sizeof(rp));
    rp.events = ef;
    rp.format = csv ? 1 : 0;
    rp.map = &map;
    rp.labels = lf;
    rp.column_labels = csv;
    rp.label_delay_ms = delay;
    rp.maintenance = maintenance;
    rp.row = rows_cb;
    rp.opaque = &rw;
    rs_features_replay_stats_t st;
    if (rs_features_replay(f, &rp, &st, err, sizeof(err))) fail_msg("%s", err);
    if (st.bad_lines) fail_msg("bad lines: %s", st.first_error);
    assert_int_equal(st.events, g_nev);
    assert_int_equal(rw.n, g_nev);
    fclose(ef);
    unlink(path);
    rs_features_destroy(f);
    return st;
}

static FILE *labels_file(int failures_only) {
    char path[256], line[RS_ENCODE_MAX];
    tmp_path(path, sizeof(path), "labels.jsonl");
    FILE *lf = fopen(path, "w+");
    assert_non_null(lf);
    unlink(path);
    for (int i = 0; i < g_nlb; i++) {
        if (failures_only && g_lb[i].value <= 0) continue;
        rs_label_to_json(&g_lb[i], line, sizeof(line));
        fprintf(lf, "%s\n", line);
    }
    fflush(lf);
    return lf;
}

static int first_diff(const float *a, const float *b, int dim) {
    for (int i = 0; i < g_nev; i++)
        if (memcmp(a + (size_t)i * RS_FEATURES_MAX_DIM,
                   b + (size_t)i * RS_FEATURES_MAX_DIM,
                   sizeof(float) * (size_t)dim))
            return i;
    return -1;
}

static void test_features_as_serve(void **state) {
    (void)state;
    build_stream();
    rs_features_t *f0 = mkfeat();
    int dim = rs_features_dim(f0);
    rs_features_destroy(f0);
    size_t sz = (size_t)g_nev * RS_FEATURES_MAX_DIM * sizeof(float);
    float *want = calloc(1, sz), *got = calloc(1, sz);
    serve_rows(want);

    FILE *lf = labels_file(0);
    rs_features_replay_stats_t st = replay_rows(got, 1, 0, lf, 0);
    int d = first_diff(want, got, dim);
    if (d >= 0)
        fail_msg("maintenance replay: reading %d (%s) differs from serve's",
                 d, g_ev[d].id);
    int nfail = 0, nzero = 0;
    for (int i = 0; i < g_nlb; i++) {
        if (g_lb[i].value > 0) nfail++;
        else if (strcmp(g_lb[i].event_id, g_lb[i].entity_id)) nzero++;
    }
    assert_int_equal(st.failures, nfail);
    assert_int_equal(st.repairs, 1);
    assert_int_equal(st.ignored, nzero);
    assert_true(nfail > 100 && nzero > 0);

    /* the labels as fraud labels (no maintenance): no new life, so the
     * rows after the failure and the repair differ from serve's */
    replay_rows(got, 0, 0, lf, 0);
    d = first_diff(want, got, dim);
    assert_true(d >= 0);
    assert_true(g_ev[d].event_time_ms >= REPAIR_AT);
    fclose(lf);

    /* the label column (eval's rule: the last positive of m0's run is its
     * failure, visible 1 h after its event) equals the failure given as a
     * labels file; both differ from the rows without reports */
    float *col = calloc(1, sz);
    st = replay_rows(col, 1, 1, NULL, HOUR_MS);
    assert_int_equal(st.column_failures, 1);
    lf = labels_file(1);
    replay_rows(got, 1, 0, lf, 0);
    fclose(lf);
    d = first_diff(got, col, dim);
    if (d >= 0)
        fail_msg("label column: reading %d (%s) differs from the labels "
                 "file's", d, g_ev[d].id);
    replay_rows(got, 1, 0, NULL, 0);
    assert_true(first_diff(got, col, dim) >= 0);
    free(col);
    free(want);
    free(got);
}

/* Machine m<k> reads `score` at hour h (readings of machines m0..m2
 * every hour; failures reported in time). */
static void lead_read(srv_t *s, int k, int h, float score) {
    rs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "r-%d-%d", k, h);
    rs_strlcpy(ev.type, "sensor", sizeof(ev.type));
    snprintf(ev.entity_id, sizeof(ev.entity_id), "m%d", k);
    rs_strlcpy(ev.counterparty_id, "site-0", sizeof(ev.counterparty_id));
    ev.event_time_ms = T0 + (int64_t)h * HOUR_MS + k;
    ev.n_numeric = 1;
    rs_strlcpy(ev.numeric[0].name, "temp", RS_NAME_MAX);
    ev.numeric[0].value = 60;
    float x[RS_FEATURES_MAX_DIM];
    srv_read(s, &ev, score, x);
}

static void lead_fail(srv_t *s, int k, int h) {
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    snprintf(lb.event_id, sizeof(lb.event_id), "r-%d-%d", k, h);
    snprintf(lb.entity_id, sizeof(lb.entity_id), "m%d", k);
    lb.value = 1;
    lb.label_time_ms = T0 + (int64_t)h * HOUR_MS + k;
    assert_int_equal(rs_alerts_label(s->al, 0, &lb), 1);
    rs_alerts_batch_end(s->al);
}

static void test_serve_lead_as_eval(void **state) {
    (void)state;
    rs_maint_conf_t mc;
    rs_maint_conf_init(&mc);
    mc.enabled = 1;
    mc.max_machines = 64;
    mc.horizon = 24 * HOUR_MS;
    mc.alert_threshold = 0.5;
    mc.alert_readings = 1;
    mc.alert_cooldown = 24 * HOUR_MS;
    mc.alert_escalation = 1;   /* no escalations */
    mc.cold_start = 0;         /* the policy decides on these scores */
    srv_t s;
    srv_new(&s, &mc);
    /* m0: alerted at hour 10, in alert until it fails at hour 40: 30 h
     * ahead, more than the horizon.  m1: alerted at 20, below at 26-27
     * (the episode closes), open again silently (cool-down) from 34,
     * fails at 40: 20 h ahead (the alert).  m2: never alerted. */
    for (int h = 0; h <= 40; h++) {
        lead_read(&s, 0, h, h >= 10 ? 0.9f : 0.1f);
        lead_read(&s, 1, h, (h >= 20 && h < 26) || h >= 34 ? 0.9f : 0.1f);
        lead_read(&s, 2, h, 0.1f);
    }
    for (int k = 0; k < 3; k++) lead_fail(&s, k, 40);
    rs_alerts_stats_t st;
    srv_stats(&s, &st);
    assert_int_equal(st.pol.failures, 3);
    assert_int_equal(st.caught, 2);
    assert_int_equal(st.pol.caught, 2);
    assert_int_equal(st.leads.total, 2);
    assert_int_equal(st.leads.sum, (30 + 20) * 3600);
    /* the metrics say the same */
    rs_http_buf_t *b = rs_http_buf_new();
    rs_alerts_prometheus(s.al, b);
    const char *txt = rs_http_buf_data(b);
    assert_non_null(strstr(txt, "riskstream_failures_caught_total 2\n"));
    assert_non_null(
        strstr(txt, "riskstream_alert_lead_time_seconds_sum 180000\n"));
    rs_http_buf_destroy(b);
    srv_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_as_serve),
        cmocka_unit_test(test_serve_lead_as_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
