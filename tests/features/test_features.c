/* test_features.c -- unit tests of features/.
 *
 * The core test replays random streams (duplicate timestamps, mild and
 * beyond-lateness out-of-order events, labels arriving before and after
 * later events, duplicate and unknown labels) through rs_features_process
 * and through a brute-force reference that keeps every event and label and
 * recomputes every feature from scratch, obeying the documented caps:
 *  - a ring of capacity K holds the top-K entries by (time, arrival order)
 *    of everything inserted for the key;
 *  - counterparty counts use aligned buckets: bucket b counts iff no event
 *    of a later bucket congruent to b (mod nbuckets) was seen before.
 * Then targeted tests: current event excluded, label leakage, ttl expiry
 * (lazy and by sweep), pool-full eviction, sensors, reasons, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/features.h"

#define T0 1700000000000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* indices of the base layout (docs/features.md) */
enum {
    F_AMOUNT_LOG, F_CNT_10M, F_CNT_1H, F_CNT_24H, F_CNT_7D, F_SUM_24H,
    F_MEAN_7D, F_STD_7D, F_RATIO_7D, F_Z_7D, F_SINCE_LAST, F_CP_DISTINCT_24H,
    F_CP_NEW, F_SMALL_1H, F_ENT_FRAUD, F_CP_CNT_24H, F_CP_FRAUD_RATE, F_BASE
};

static rs_features_conf_t conf_test(void) {
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = 1024;
    c.max_counterparties = 1024;
    c.label_index = 1 << 16;
    return c;
}

static rs_event_t mkev(const char *id, const char *ent, const char *cp,
                       int64_t t, double amount) {
    rs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "%s", id);
    snprintf(ev.type, sizeof(ev.type), "card_tx");
    snprintf(ev.entity_id, sizeof(ev.entity_id), "%s", ent);
    snprintf(ev.counterparty_id, sizeof(ev.counterparty_id), "%s", cp);
    ev.event_time_ms = t;
    ev.amount = amount;
    return ev;
}

static void add_num(rs_event_t *ev, const char *name, double v) {
    snprintf(ev->numeric[ev->n_numeric].name, RS_NAME_MAX, "%s", name);
    ev->numeric[ev->n_numeric].value = v;
    ev->n_numeric++;
}

static rs_label_t mklabel(const char *event_id, double value, int64_t t) {
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    snprintf(lb.event_id, sizeof(lb.event_id), "%s", event_id);
    snprintf(lb.entity_id, sizeof(lb.entity_id), "x");
    lb.value = value;
    lb.label_time_ms = t;
    return lb;
}

static int find_feature(const rs_features_t *f, const char *name) {
    for (int i = 0; i < rs_features_dim(f); i++)
        if (!strcmp(rs_features_name(f, i), name)) return i;
    return -1;
}

/* ============================================================ reference */

#define REF_MAX_EV 8000
#define REF_MAX_LAB 8000
#define REF_NS 2

typedef struct ref_ev_s {
    int ent, cp;        /* cp -1 = none */
    int64_t t;
    float amount;
    int has[REF_NS];
    float sv[REF_NS];
    int labelled;
} ref_ev_t;

typedef struct ref_lab_s {
    int ev;
    int64_t arr;
} ref_lab_t;             /* fraud labels only */

typedef struct ref_s {
    rs_features_conf_t conf;
    ref_ev_t ev[REF_MAX_EV];
    int nev;
    ref_lab_t lab[REF_MAX_LAB];
    int nlab;
    int64_t wm;
    uint64_t late, dropped, applied, unknown, dup;
} ref_t;

typedef struct key_s {
    int64_t t;
    int seq;
    float v;
    int cp;
} key_t_;

static int cmp_key(const void *a, const void *b) {
    const key_t_ *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->seq - y->seq;
}

/* Sort by (t, seq) and keep the top `cap`: returns the start index. */
static int topk(key_t_ *k, int n, int cap) {
    qsort(k, (size_t)n, sizeof(*k), cmp_key);
    return n > cap ? n - cap : 0;
}

static int64_t bucket_sum(const ref_t *r, int cp, int64_t t, int64_t w,
                          int nb) {
    static int64_t bk[REF_MAX_EV];
    int n = 0;
    for (int i = 0; i < r->nev; i++)
        if (r->ev[i].cp == cp) bk[n++] = r->ev[i].t / w;
    int64_t B = t / w, sum = 0;
    for (int k = 0; k < nb && B - k >= 0; k++) {
        int64_t b = B - k, cnt = 0;
        int killed = 0;
        for (int i = 0; i < n; i++) {
            if (bk[i] == b) cnt++;
            if (bk[i] > b && (bk[i] - b) % nb == 0) killed = 1;
        }
        if (!killed) sum += cnt;
    }
    return sum;
}

static int label_count(const ref_t *r, int by_cp, int who, int64_t t,
                       int cap) {
    static key_t_ k[REF_MAX_LAB];
    int n = 0;
    for (int j = 0; j < r->nlab; j++) {
        const ref_ev_t *e = &r->ev[r->lab[j].ev];
        if ((by_cp ? e->cp : e->ent) != who) continue;
        k[n].t = r->lab[j].arr;
        k[n].seq = j;
        n++;
    }
    int s = topk(k, n, cap), c = 0;
    for (int i = s; i < n; i++)
        if (k[i].t < t && t - k[i].t < r->conf.label_window) c++;
    return c;
}

/* Features of `cur` (not yet in r->ev) from everything before it. */
static void ref_features(ref_t *r, const ref_ev_t *cur, float *out,
                         uint32_t *flags) {
    static key_t_ k[REF_MAX_EV];
    const int64_t t = cur->t;
    *flags = 0;
    if (r->nev && t < r->wm - r->conf.allowed_lateness) *flags |= RS_FEATURES_FLAG_LATE;

    int n = 0;
    for (int i = 0; i < r->nev; i++) {
        if (r->ev[i].ent != cur->ent) continue;
        k[n].t = r->ev[i].t;
        k[n].seq = i;
        k[n].v = r->ev[i].amount;
        k[n].cp = r->ev[i].cp;
        n++;
    }
    if (!n) *flags |= RS_FEATURES_FLAG_NEW_ENTITY;
    int s = topk(k, n, (int)r->conf.history);
    if (n - s == r->conf.history && t < k[s].t) *flags |= RS_FEATURES_FLAG_DROPPED;

    int c10m = 0, c1h = 0, c24h = 0, c7d = 0, small = 0, seen = 0, distinct = 0;
    double sum24 = 0, sum7 = 0;
    int64_t last = INT64_MIN;
    int dcp[4096], nd = 0;
    for (int i = s; i < n; i++) {
        if (k[i].t > t) break;
        int64_t d = t - k[i].t;
        last = k[i].t;
        if (cur->cp >= 0 && k[i].cp == cur->cp) seen = 1;
        if (d >= 7 * DAY_MS) continue;
        c7d++;
        sum7 += k[i].v;
        if (d >= DAY_MS) continue;
        c24h++;
        sum24 += k[i].v;
        if (k[i].cp >= 0) {
            int found = 0;
            for (int j = 0; j < nd; j++) found |= dcp[j] == k[i].cp;
            if (!found) dcp[nd++] = k[i].cp, distinct++;
        }
        if (d >= HOUR_MS) continue;
        c1h++;
        if (k[i].v < (float)r->conf.small_amount) small++;
        if (d >= 10 * MIN_MS) continue;
        c10m++;
    }
    double mean = c7d ? sum7 / c7d : 0, sd = 0;
    if (c7d) {
        double ss = 0;
        for (int i = s; i < n && k[i].t <= t; i++)
            if (t - k[i].t < 7 * DAY_MS) ss += (k[i].v - mean) * (k[i].v - mean);
        sd = sqrt(ss / c7d);
    }
    double a = cur->amount;
    double z = 0;
    if (c7d >= 2) z = fmax(-100, fmin(100, (a - mean) / (sd + 0.01 * mean + 0.01)));
    out[F_AMOUNT_LOG] = (float)log1p(a);
    out[F_CNT_10M] = (float)c10m;
    out[F_CNT_1H] = (float)c1h;
    out[F_CNT_24H] = (float)c24h;
    out[F_CNT_7D] = (float)c7d;
    out[F_SUM_24H] = (float)sum24;
    out[F_MEAN_7D] = (float)mean;
    out[F_STD_7D] = (float)sd;
    out[F_RATIO_7D] = (float)(c7d ? (a + 1) / (mean + 1) : 1.0);
    out[F_Z_7D] = (float)z;
    out[F_SINCE_LAST] = (float)log1p(last == INT64_MIN ? 1e8 : (double)(t - last) / 1000.0);
    out[F_CP_DISTINCT_24H] = (float)distinct;
    out[F_CP_NEW] = cur->cp >= 0 && !seen ? 1.0f : 0.0f;
    out[F_SMALL_1H] = (float)small;
    out[F_ENT_FRAUD] = (float)label_count(r, 0, cur->ent, t, RS_FEATURES_ENT_LABELS);
    if (cur->cp >= 0) {
        int64_t c24 = bucket_sum(r, cur->cp, t, HOUR_MS, 24);
        int64_t cw = bucket_sum(r, cur->cp, t, r->conf.label_window / 30, 30);
        int fr = label_count(r, 1, cur->cp, t, RS_FEATURES_CP_LABELS);
        out[F_CP_CNT_24H] = (float)c24;
        out[F_CP_FRAUD_RATE] = (float)((double)fr / ((double)cw + 1));
    } else {
        out[F_CP_CNT_24H] = out[F_CP_FRAUD_RATE] = 0;
    }
    /* sensors */
    for (int q = 0; q < REF_NS; q++) {
        float *o = &out[F_BASE + 2 * q];
        o[0] = o[1] = 0;
        if (!cur->has[q]) continue;
        int m = 0;
        for (int i = 0; i < r->nev; i++) {
            if (r->ev[i].ent != cur->ent || !r->ev[i].has[q]) continue;
            k[m].t = r->ev[i].t;
            k[m].seq = i;
            k[m].v = r->ev[i].sv[q];
            m++;
        }
        int s2 = topk(k, m, RS_FEATURES_SENSOR_HIST), e2 = s2;
        while (e2 < m && k[e2].t <= t) e2++;
        int cnt = e2 - s2;
        if (!cnt) continue;
        double sum = 0;
        for (int i = s2; i < e2; i++) sum += k[i].v;
        double mu = sum / cnt;
        o[0] = (float)((double)cur->sv[q] - mu);
        if (cnt < 2) continue;
        int64_t tref = k[e2 - 1].t;
        double tm = 0;
        for (int i = s2; i < e2; i++) tm += (double)(k[i].t - tref) / HOUR_MS;
        tm /= cnt;
        double sxy = 0, sxx = 0;
        for (int i = s2; i < e2; i++) {
            double dt = (double)(k[i].t - tref) / HOUR_MS - tm;
            sxy += dt * (k[i].v - mu);
            sxx += dt * dt;
        }
        if (sxx > 0) o[1] = (float)(sxy / sxx);
    }
}

static int close_enough(float got, float want) {
    if (got == want) return 1;
    return fabs((double)got - (double)want) <= 1e-4 * fmax(1.0, fabs((double)want));
}

typedef struct stream_cfg_s {
    uint64_t seed;
    int nev, nent, ncp;
    int history;
    int64_t label_window;
    int64_t span;            /* stream length */
} stream_cfg_t;

static void run_reference(const stream_cfg_t *sc) {
    static ref_t r;
    memset(&r, 0, sizeof(r));
    rs_features_conf_t c = conf_test();
    c.history = sc->history;
    c.label_window = sc->label_window;
    c.key_ttl = 365 * DAY_MS;
    c.allowed_lateness = 2 * HOUR_MS;
    snprintf(c.sensor_fields, sizeof(c.sensor_fields), " temperature , rpm");
    r.conf = c;
    r.wm = INT64_MIN;
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("rs_features_new: %s", err);
    const int dim = rs_features_dim(f);
    assert_int_equal(dim, F_BASE + 2 * REF_NS);

    rs_rng_t rng;
    rs_rng_seed(&rng, sc->seed);
    int64_t clock = T0;
    double mean_gap = (double)sc->span / sc->nev;
    double temp[64] = {0}, rpm[64] = {0};
    float got[64], want[64];
    uint64_t checked = 0;
    int nonzero[64] = {0};

    for (int i = 0; i < sc->nev; i++) {
        /* clock: exponential gaps, often exactly 0 (duplicate timestamps),
         * quantised to seconds */
        double u = rs_rng_uniform(&rng);
        if (u > 0.15) clock += (int64_t)(rs_rng_exp(&rng, 1.0 / mean_gap) / 1000) * 1000;
        int64_t t = clock;
        double o = rs_rng_uniform(&rng);
        if (o < 0.10)
            t -= (int64_t)(rs_rng_uniform(&rng) * 30) * MIN_MS;     /* mild */
        else if (o < 0.12)
            t -= (int64_t)(3 + rs_rng_uniform(&rng) * 40) * HOUR_MS; /* late */
        ref_ev_t e = {0};
        /* skewed entity choice so some entities overflow `history` */
        e.ent = (int)(sc->nent * pow(rs_rng_uniform(&rng), 2.0));
        e.cp = rs_rng_uniform(&rng) < 0.1
                   ? -1
                   : (int)((e.ent * 7 + (int)rs_rng_below(&rng, 4) *
                                            (rs_rng_uniform(&rng) < 0.3 ? 3 : 0)) %
                           sc->ncp);
        e.t = t;
        double am = rs_rng_uniform(&rng) < 0.25 ? rs_rng_uniform(&rng) * 6
                                                : exp(3 + rs_rng_normal(&rng));
        e.amount = (float)am;
        char id[32], ent[16], cp[16];
        snprintf(id, sizeof(id), "tx%d", i);
        snprintf(ent, sizeof(ent), "card%d", e.ent);
        if (e.cp >= 0) snprintf(cp, sizeof(cp), "m%d", e.cp);
        else cp[0] = '\0';
        rs_event_t ev = mkev(id, ent, cp, t, am);
        if (rs_rng_uniform(&rng) < 0.5) {
            temp[e.ent] += rs_rng_normal(&rng);
            e.has[0] = 1;
            e.sv[0] = (float)(60 + temp[e.ent]);
            add_num(&ev, "temperature", 60 + temp[e.ent]);
        }
        add_num(&ev, "other", 1.0);
        if (rs_rng_uniform(&rng) < 0.4) {
            rpm[e.ent] += rs_rng_normal(&rng) * 10;
            e.has[1] = 1;
            e.sv[1] = (float)(1500 + rpm[e.ent]);
            add_num(&ev, "rpm", 1500 + rpm[e.ent]);
        }

        uint32_t fl = 0, rfl = 0;
        ref_features(&r, &e, want, &rfl);
        assert_int_equal(rs_features_process(f, &ev, got, &fl), RS_OK);
        for (int j = 0; j < dim; j++) {
            if (!close_enough(got[j], want[j]))
                fail_msg("seed %llu event %d (%s t=%lld) feature %s: got %.9g "
                         "want %.9g",
                         (unsigned long long)sc->seed, i, ent,
                         (long long)(t - T0), rs_features_name(f, j),
                         (double)got[j], (double)want[j]);
            checked++;
            nonzero[j] += got[j] != 0;
        }
        if (fl != rfl) fail_msg("event %d: flags %x want %x", i, fl, rfl);
        if (rfl & RS_FEATURES_FLAG_LATE) r.late++;
        if (rfl & RS_FEATURES_FLAG_DROPPED) r.dropped++;
        if (t > r.wm) r.wm = t;
        r.ev[r.nev++] = e;

        /* labels: for a random recent event, arriving between 2h before
         * and 3 days after the stream clock; some duplicates, some
         * unknown ids */
        if (rs_rng_uniform(&rng) < 0.3) {
            int back = (int)rs_rng_below(&rng, (uint64_t)RS_MIN(r.nev, 400));
            int target = r.nev - 1 - back;
            int fraud = rs_rng_uniform(&rng) < 0.35;
            int64_t lt = clock + (int64_t)((rs_rng_uniform(&rng) * 74 - 2) * HOUR_MS);
            char lid[32];
            snprintf(lid, sizeof(lid), "tx%d", target);
            rs_label_t lb = mklabel(lid, fraud ? 1.0 : 0.0, lt);
            assert_int_equal(rs_features_label(f, &lb), RS_OK);
            if (r.ev[target].labelled) {
                r.dup++;
            } else {
                r.ev[target].labelled = 1;
                r.applied++;
                if (fraud) {
                    int64_t arr = lt > r.ev[target].t ? lt : r.ev[target].t;
                    r.lab[r.nlab].ev = target;
                    r.lab[r.nlab].arr = arr;
                    r.nlab++;
                }
            }
        }
        if (rs_rng_uniform(&rng) < 0.01) {
            rs_label_t lb = mklabel("nope", 1.0, clock);
            assert_int_equal(rs_features_label(f, &lb), RS_ERR_NOTFOUND);
            r.unknown++;
        }
    }
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.events, (uint64_t)sc->nev);
    assert_int_equal(st.late, r.late);
    assert_int_equal(st.dropped, r.dropped);
    assert_int_equal(st.labels_applied, r.applied);
    assert_int_equal(st.labels_unknown, r.unknown);
    assert_int_equal(st.labels_duplicate, r.dup);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.expirations, 0);
    assert_int_equal(st.watermark_ms, r.wm);
    /* every feature was exercised (non-zero somewhere) */
    for (int j = 0; j < dim; j++)
        if (nonzero[j] < 5)
            fail_msg("feature %s non-zero in only %d events", rs_features_name(f, j),
                     nonzero[j]);
    print_message("reference seed %llu: %d events, %llu values checked, %d fraud "
                  "labels, %llu late, %llu dropped by the ring, %llu dup labels\n",
                  (unsigned long long)sc->seed, sc->nev, (unsigned long long)checked,
                  r.nlab, (unsigned long long)r.late, (unsigned long long)r.dropped,
                  (unsigned long long)r.dup);
    rs_features_destroy(f);
}

static void test_reference_big_history(void **state) {
    (void)state;
    /* history large enough that no ring caps (except labels/sensors) */
    stream_cfg_t sc = {.seed = 1, .nev = 3000, .nent = 40, .ncp = 12,
                       .history = 512, .label_window = 30 * DAY_MS,
                       .span = 25 * DAY_MS};
    run_reference(&sc);
}

static void test_reference_small_history(void **state) {
    (void)state;
    stream_cfg_t sc = {.seed = 2, .nev = 3000, .nent = 25, .ncp = 8,
                       .history = 16, .label_window = 2 * DAY_MS,
                       .span = 12 * DAY_MS};
    run_reference(&sc);
}

static void test_reference_dense(void **state) {
    (void)state;
    /* dense bursts: many events per 10 minutes, short label window */
    for (uint64_t seed = 3; seed < 6; seed++) {
        stream_cfg_t sc = {.seed = seed, .nev = 2000, .nent = 6, .ncp = 5,
                           .history = 64, .label_window = 6 * HOUR_MS,
                           .span = 2 * DAY_MS};
        run_reference(&sc);
    }
}

/* ================================================================ targeted */

static void test_conf_and_layout(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    assert_int_equal(c.history, 64);
    assert_int_equal(c.key_ttl, 30 * DAY_MS);
    assert_int_equal(c.label_window, 30 * DAY_MS);
    assert_true(c.small_amount == 5.0);
    assert_string_equal(c.sensor_fields, "temperature,vibration,pressure,rpm");
    rs_conf_section_t sec;
    rs_features_conf_section(&sec, &c);
    assert_string_equal(sec.name, "features");
    assert_ptr_equal(sec.base, &c);
    int nf;
    assert_ptr_equal(rs_features_conf_fields(&nf), sec.fields);
    assert_int_equal(nf, sec.nfields);

    c.max_keys = 64;
    c.max_counterparties = 64;
    c.label_index = 64;
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    int dim = rs_features_dim(f);
    assert_int_equal(dim, 17 + 2 * 4);
    for (int i = 0; i < dim; i++) {
        const char *n = rs_features_name(f, i);
        assert_non_null(n);
        assert_non_null(rs_features_desc(f, i));
        assert_true(strlen(rs_features_desc(f, i)) > 10);
        for (const char *p = n; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
        for (int j = 0; j < i; j++) assert_string_not_equal(n, rs_features_name(f, j));
    }
    assert_string_equal(rs_features_name(f, 2), "ent_cnt_1h");
    assert_string_equal(rs_features_name(f, 17), "sensor_temperature_delta");
    assert_string_equal(rs_features_name(f, 24), "sensor_rpm_slope");
    assert_null(rs_features_name(f, dim));
    assert_null(rs_features_name(f, -1));
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    print_message("entity slot %llu bytes (history 64, 4 sensors), %llu bytes "
                  "for 64+64 keys\n",
                  (unsigned long long)st.entity_slot_bytes,
                  (unsigned long long)st.mem_bytes);
    rs_features_destroy(f);
    rs_features_destroy(NULL);

    /* bad configurations name the key */
    rs_features_conf_t b = c;
    b.history = 0;
    assert_null(rs_features_new(&b, err, sizeof(err)));
    assert_non_null(strstr(err, "features.history"));
    b = c;
    b.label_window = 1000;
    assert_null(rs_features_new(&b, err, sizeof(err)));
    assert_non_null(strstr(err, "features.label_window"));
    b = c;
    snprintf(b.sensor_fields, sizeof(b.sensor_fields), "a,b,c,d,e,f,g,h,i");
    assert_null(rs_features_new(&b, err, sizeof(err)));
    assert_non_null(strstr(err, "more than 8"));
    snprintf(b.sensor_fields, sizeof(b.sensor_fields), "temp,te mp");
    assert_null(rs_features_new(&b, err, sizeof(err)));
    assert_non_null(strstr(err, "te mp"));
    snprintf(b.sensor_fields, sizeof(b.sensor_fields), "a,a");
    assert_null(rs_features_new(&b, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    b.sensor_fields[0] = '\0';
    f = rs_features_new(&b, err, sizeof(err));
    assert_non_null(f);
    assert_int_equal(rs_features_dim(f), 17);
    rs_features_destroy(f);
}

static void test_current_excluded(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    c.sensor_fields[0] = '\0';
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[32];
    uint32_t fl;
    rs_event_t ev = mkev("a1", "card", "shop", T0, 20.0);
    assert_int_equal(rs_features_process(f, &ev, x, &fl), RS_OK);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    for (int i = F_CNT_10M; i <= F_STD_7D; i++) assert_true(x[i] == 0);
    assert_true(x[F_AMOUNT_LOG] == (float)log1p(20.0));
    assert_true(x[F_RATIO_7D] == 1.0f);
    assert_true(x[F_Z_7D] == 0);
    assert_true(x[F_SINCE_LAST] == (float)log1p(1e8));
    assert_true(x[F_CP_NEW] == 1);
    assert_true(x[F_CP_CNT_24H] == 0);
    assert_true(x[F_CP_DISTINCT_24H] == 0);

    /* same timestamp, same shop: the first event counts, this one not */
    ev = mkev("a2", "card", "shop", T0, 2.0);
    rs_features_process(f, &ev, x, &fl);
    assert_false(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(x[F_CNT_10M] == 1 && x[F_CNT_7D] == 1);
    assert_true(x[F_SUM_24H] == 20);
    assert_true(x[F_MEAN_7D] == 20);
    assert_true(x[F_SINCE_LAST] == 0);
    assert_true(x[F_CP_NEW] == 0);
    assert_true(x[F_CP_CNT_24H] == 1);
    assert_true(x[F_SMALL_1H] == 0);
    assert_true(fabsf(x[F_RATIO_7D] - 3.0f / 21.0f) < 1e-6f);

    ev = mkev("a3", "card", "other", T0 + 30 * MIN_MS, 100.0);
    rs_features_process(f, &ev, x, &fl);
    assert_true(x[F_CNT_10M] == 0 && x[F_CNT_1H] == 2);
    assert_true(x[F_SMALL_1H] == 1);
    assert_true(x[F_CP_NEW] == 1);
    assert_true(x[F_CP_DISTINCT_24H] == 1);
    assert_true(x[F_MEAN_7D] == 11 && x[F_STD_7D] == 9);
    assert_true(fabsf(x[F_Z_7D] - (float)(89.0 / (9 + 0.11 + 0.01))) < 1e-4f);
    assert_true(fabsf(x[F_SINCE_LAST] - (float)log1p(1800)) < 1e-6f);
    rs_features_destroy(f);
}

static void test_label_leakage(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    c.sensor_fields[0] = '\0';
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[32];
    rs_event_t ev = mkev("e1", "card", "shop", T0, 50.0);
    rs_features_process(f, &ev, x, NULL);
    /* the chargeback for e1 is known at T0 + 10h -- applied right away,
     * before the stream reaches T0 + 10h */
    rs_label_t lb = mklabel("e1", 1.0, T0 + 10 * HOUR_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_OK);

    ev = mkev("e2", "card", "shop", T0 + 5 * HOUR_MS, 50.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[F_ENT_FRAUD] == 0);       /* label not arrived yet */
    assert_true(x[F_CP_FRAUD_RATE] == 0);
    ev = mkev("e3", "card2", "shop", T0 + 10 * HOUR_MS, 50.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[F_CP_FRAUD_RATE] == 0);   /* arrival == event time: not before */
    ev = mkev("e4", "card", "shop", T0 + 11 * HOUR_MS, 50.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[F_ENT_FRAUD] == 1);
    assert_true(fabsf(x[F_CP_FRAUD_RATE] - 1.0f / 4.0f) < 1e-7f);   /* 1/(3+1) */
    /* a label claiming to arrive before its event counts from the event on */
    lb = mklabel("e4", 1.0, T0);
    rs_features_label(f, &lb);
    ev = mkev("e5", "card", "shop", T0 + 11 * HOUR_MS + 1, 50.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[F_ENT_FRAUD] == 2);
    /* duplicate and genuine labels */
    lb = mklabel("e4", 1.0, T0 + 12 * HOUR_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_OK);
    lb = mklabel("e2", 0.0, T0 + 12 * HOUR_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_OK);
    lb = mklabel("zzz", 1.0, T0 + 12 * HOUR_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_ERR_NOTFOUND);
    ev = mkev("e6", "card", "shop", T0 + 13 * HOUR_MS, 50.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[F_ENT_FRAUD] == 2);
    /* the label window (30d) ends: frauds no longer count */
    ev = mkev("e7", "card", "shop", T0 + 10 * HOUR_MS + 30 * DAY_MS, 50.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[F_ENT_FRAUD] == 1);   /* e4's label (arrived at T0+11h) still in */
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.labels_applied, 3);
    assert_int_equal(st.labels_duplicate, 1);
    assert_int_equal(st.labels_unknown, 1);
    rs_features_destroy(f);
}

static void test_ttl_expiry(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    c.max_keys = 64;
    c.key_ttl = HOUR_MS;
    c.sensor_fields[0] = '\0';
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[32];
    uint32_t fl;
    char id[32], ent[32];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        snprintf(ent, sizeof(ent), "card%d", i);
        rs_event_t ev = mkev(id, ent, "", T0 + i, 10);
        rs_features_process(f, &ev, x, NULL);
    }
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.entity_keys, 50);
    /* a key idle for exactly the ttl is kept */
    rs_event_t ev = mkev("b0", "card0", "", T0 + HOUR_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    assert_true(x[F_CNT_24H] == 1);
    /* the idle ones expire: lazily on lookup ... */
    ev = mkev("b1", "card1", "", T0 + 3 * HOUR_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(x[F_CNT_24H] == 0);
    assert_true(x[F_SINCE_LAST] == (float)log1p(1e8));
    /* ... and by the incremental sweep, 4 slots per event, with no lookup */
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        ev = mkev(id, "card1", "", T0 + 3 * HOUR_MS + i, 10);
        rs_features_process(f, &ev, x, NULL);
    }
    rs_features_stats(f, &st);
    assert_int_equal(st.entity_keys, 1);
    assert_int_equal(st.expirations, 50);
    assert_int_equal(st.evictions, 0);
    rs_features_destroy(f);
}

static void test_eviction(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    c.max_keys = 4;
    c.max_counterparties = 2;
    c.sensor_fields[0] = '\0';
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[32];
    uint32_t fl;
    const char *ents[] = {"B", "A", "C", "D"};
    int64_t seen[] = {2, 1, 3, 4};
    char id[16];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        rs_event_t ev = mkev(id, ents[i], "m1", T0 + seen[i] * MIN_MS, 10);
        rs_features_process(f, &ev, x, NULL);
    }
    /* pool full: E evicts A, the least recently seen (probe covers all 4) */
    rs_event_t ev = mkev("x4", "E", "m2", T0 + 5 * MIN_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.evictions, 0 + 1);
    assert_int_equal(st.entity_keys, 4);
    ev = mkev("x5", "B", "m1", T0 + 6 * MIN_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    assert_false(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(x[F_CNT_1H] == 1);
    ev = mkev("x6", "A", "m1", T0 + 7 * MIN_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(x[F_CNT_1H] == 0);
    /* the counterparty pool (2) evicts too: m3 pushes out m2 (older) */
    ev = mkev("x7", "A", "m3", T0 + 8 * MIN_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    rs_features_stats(f, &st);
    assert_int_equal(st.evictions, 2 + 1);
    assert_int_equal(st.cp_keys, 2);
    ev = mkev("x8", "A", "m1", T0 + 9 * MIN_MS, 10);
    rs_features_process(f, &ev, x, &fl);
    assert_true(x[F_CP_CNT_24H] == 6);   /* m1 kept: x0..x3, x5, x6 */
    rs_features_destroy(f);
}

static void test_sensors(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    snprintf(c.sensor_fields, sizeof(c.sensor_fields), "temperature");
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    int d = find_feature(f, "sensor_temperature_delta");
    int s = find_feature(f, "sensor_temperature_slope");
    assert_int_equal(d, F_BASE);
    assert_int_equal(s, F_BASE + 1);
    float x[32];
    double temps[] = {10, 20, 30};
    char id[16];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        rs_event_t ev = mkev(id, "pump", "", T0 + i * HOUR_MS, 0);
        add_num(&ev, "temperature", temps[i]);
        rs_features_process(f, &ev, x, NULL);
    }
    assert_true(x[d] == 15);   /* 30 - mean(10, 20) */
    assert_true(x[s] == 10);   /* 10 per hour */
    rs_event_t ev = mkev("s3", "pump", "", T0 + 3 * HOUR_MS, 0);
    add_num(&ev, "temperature", 40);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[d] == 20 && x[s] == 10);
    /* missing field: 0 and 0, and nothing added */
    ev = mkev("s4", "pump", "", T0 + 4 * HOUR_MS, 0);
    add_num(&ev, "rpm", 5);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[d] == 0 && x[s] == 0);
    char buf[128];
    rs_features_reason(f, d, 20, buf, sizeof(buf));
    assert_string_equal(buf, "temperature 20 above its recent mean");
    rs_features_reason(f, s, -1.5f, buf, sizeof(buf));
    assert_string_equal(buf, "temperature falling 1.5 per hour");
    rs_features_destroy(f);
}

static void test_late_and_dropped(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    c.history = 3;
    c.allowed_lateness = HOUR_MS;
    c.sensor_fields[0] = '\0';
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[32];
    uint32_t fl;
    char id[16];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "l%d", i);
        rs_event_t ev = mkev(id, "card", "", T0 + (i + 1) * 10 * MIN_MS, 1);
        rs_features_process(f, &ev, x, &fl);
        assert_int_equal(fl & RS_FEATURES_FLAG_LATE, 0);
    }
    /* in-order placement of a mildly late event: between l0 and l1 */
    rs_event_t ev = mkev("l3", "card", "", T0 + 15 * MIN_MS, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_int_equal(fl, 0);
    assert_true(x[F_CNT_1H] == 1);   /* only l0 (T0+10m) is before it */
    assert_true(fabsf(x[F_SINCE_LAST] - (float)log1p(300)) < 1e-6f);
    /* the ring (3) now holds l3, l1, l2; an event older than all is
     * scored, flagged dropped and late, and not kept */
    ev = mkev("l4", "card", "", T0 - 2 * HOUR_MS, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_int_equal(fl, RS_FEATURES_FLAG_LATE | RS_FEATURES_FLAG_DROPPED);
    assert_true(x[F_CNT_7D] == 0);
    ev = mkev("l5", "card", "", T0 + 40 * MIN_MS, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_true(x[F_CNT_1H] == 3);
    /* ring: l1(20m) l2(30m) l5(40m).  An event at exactly the oldest time
     * is kept and pushes out the older-arrived l1 */
    ev = mkev("l6", "card", "", T0 + 20 * MIN_MS, 7);
    rs_features_process(f, &ev, x, &fl);
    assert_int_equal(fl, 0);
    ev = mkev("l7", "card", "", T0 + 50 * MIN_MS, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_true(x[F_SUM_24H] == 9);   /* l6 7 + l2 1 + l5 1 */
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.dropped, 1);
    rs_features_destroy(f);
}

static void test_invalid(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[32];
    uint32_t fl = 7;
    rs_event_t ev = mkev("i", "card", "", 0, 1);
    assert_int_equal(rs_features_process(f, &ev, x, &fl), RS_ERR_INVALID);
    assert_int_equal(fl, 0);
    ev = mkev("i", "card", "", T0, NAN);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_ERR_INVALID);
    ev = mkev("i", "card", "", T0, -1);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_ERR_INVALID);
    ev = mkev("i", "", "", T0, 1);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_ERR_INVALID);
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.entity_keys, 0);
    /* a NaN sensor value is "missing" */
    ev = mkev("i", "card", "", T0, 1);
    add_num(&ev, "temperature", NAN);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    for (int i = 0; i < rs_features_dim(f); i++) assert_true(isfinite(x[i]));
    rs_features_destroy(f);
}

static void test_reasons(void **state) {
    (void)state;
    rs_features_conf_t c = conf_test();
    char err[256], buf[128];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    struct { int i; float v; const char *want; } cases[] = {
        {F_RATIO_7D, 8.3f, "amount 8.3x the 7-day mean"},
        {F_SMALL_1H, 5, "5 small amounts in the last hour"},
        {F_SMALL_1H, 1, "1 small amount in the last hour"},
        {F_CP_NEW, 1, "first payment at this counterparty"},
        {F_CP_FRAUD_RATE, 0.12f, "counterparty fraud rate 12% over 30 days"},
        {F_CNT_10M, 7, "7 events in the last 10 minutes"},
        {F_CP_DISTINCT_24H, 3, "3 distinct counterparties in the last 24 hours"},
        {F_CP_DISTINCT_24H, 1, "1 distinct counterparty in the last 24 hours"},
        {F_ENT_FRAUD, 2, "2 confirmed frauds on this entity in the last 30 days"},
        {F_Z_7D, 4.25f, "amount 4.2 standard deviations above the 7-day mean"},
        {F_SINCE_LAST, (float)log1p(1e8), "first event of this entity"},
        {F_SINCE_LAST, (float)log1p(30), "30 seconds since the previous event"},
        {F_SINCE_LAST, (float)log1p(3 * 86400), "3.0 days since the previous event"},
        {F_AMOUNT_LOG, (float)log1p(123.45), "amount 123.45"},
        {F_CP_CNT_24H, 40, "40 events at this counterparty in the last 24 hours"},
    };
    for (size_t k = 0; k < RS_ARRAY_LEN(cases); k++) {
        int n = rs_features_reason(f, cases[k].i, cases[k].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[k].want);
        assert_int_equal(n, (int)strlen(cases[k].want));
    }
    for (int i = 0; i < rs_features_dim(f); i++)
        assert_true(rs_features_reason(f, i, 1.0f, buf, sizeof(buf)) > 0);
    assert_int_equal(rs_features_reason(f, rs_features_dim(f), 1, buf, sizeof(buf)), -1);
    /* truncation keeps a terminated prefix */
    char small[8];
    int n = rs_features_reason(f, F_CP_NEW, 1, small, sizeof(small));
    assert_int_equal(n, 7);
    assert_string_equal(small, "first p");
    rs_features_destroy(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_and_layout),
        cmocka_unit_test(test_current_excluded),
        cmocka_unit_test(test_label_leakage),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_sensors),
        cmocka_unit_test(test_late_and_dropped),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_reference_big_history),
        cmocka_unit_test(test_reference_small_history),
        cmocka_unit_test(test_reference_dense),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
