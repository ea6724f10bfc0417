/* test_features.c -- unit tests of features/.
 *
 * The core test replays random streams (duplicate timestamps, mild and
 * beyond-lateness out-of-order events, idle gaps beyond the key ttl,
 * labels arriving before and after later events, duplicate and unknown
 * labels, events without counterparty or categorical key) through
 * rs_features_process and through a brute-force reference that keeps every
 * event and label and recomputes every feature of every spec from scratch,
 * obeying only the documented rules:
 *  - a key's state starts when it is created and is forgotten when it is
 *    accessed (event or label) with watermark - last seen > key_ttl;
 *  - a ring of capacity K holds the top-K entries by (time, arrival order)
 *    of everything inserted for the key since it was created;
 *  - windows: items with time <= t, offset <= t - s < offset + window (or
 *    the N newest), plus the event itself if include_current;
 *  - a fraud label counts iff arrival + label_delay < t.
 * The specs come from YAML through the config raw hook (so the grammar is
 * tested too) and from both presets.  Then: checkpoints (round trip,
 * consistency under concurrent updates, corruption), offline replay ==
 * online, grammar errors, targeted semantics. */
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

#include "features/features.h"
#include "features/features_int.h" /* rs_fe_reason_ref */

#define T0 1700000000000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

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

static void add_cat(rs_event_t *ev, const char *name, const char *v) {
    snprintf(ev->categ[ev->n_categ].name, RS_NAME_MAX, "%s", name);
    snprintf(ev->categ[ev->n_categ].value, RS_CATVAL_MAX, "%s", v);
    ev->n_categ++;
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

/* Load YAML into a fresh conf with the features table + spec hook. */
static rs_err_t load_conf(const char *yaml, rs_features_conf_t *fc,
                          char *err, size_t errsz) {
    rs_conf_t *cfg = rs_conf_new();
    rs_conf_section_t sec;
    rs_features_conf_section(&sec, fc);
    rs_err_t e = rs_conf_add_section(cfg, &sec, err, errsz);
    if (!e) e = rs_features_conf_add_specs(cfg, fc, err, errsz);
    if (!e) e = rs_conf_load_yaml(cfg, yaml, strlen(yaml), "test.yaml", err, errsz);
    rs_conf_destroy(cfg);
    return e;
}

/* ============================================================ reference */

#define REF_MAX_EV 6000
#define REF_MAX_LAB 6000

typedef struct ref_ev_s {
    int64_t t;
    int key[RS_FEATURES_MAX_TABLES];   /* per ref table, -1 none */
    float val[8];                      /* per value name */
    int aux[4];                        /* per aux name, 0 none */
    int seq;
    int late;                          /* flagged late: not in baselines */
    double dif[RS_FEATURES_MAX_TABLES][8]; /* |value - the key's newest kept
                                        * value before it| (NaN: none)   */
} ref_ev_t;

typedef struct ref_lab_s {
    int64_t et, arr;
    int seq;
} ref_lab_t;

/* per (table, key) state */
#define REF_MAX_KEYS 512
typedef struct ref_key_s {
    int tab, id;
    int exists;
    int64_t seen;
    int64_t epoch_seq;                 /* events/labels before are forgotten */
} ref_key_t;

typedef struct ref_s {
    rs_features_conf_t conf;
    rs_features_spec_t specs[RS_FEATURES_MAX_SPECS];
    int nspec;
    int ntab;
    char tkey[RS_FEATURES_MAX_TABLES][RS_NAME_MAX];
    int thist[RS_FEATURES_MAX_TABLES], tlab[RS_FEATURES_MAX_TABLES];
    int ent_tab;
    char vnames[8][RS_NAME_MAX];
    int nvn;
    char anames[4][RS_NAME_MAX];
    int nan_;
    ref_ev_t ev[REF_MAX_EV];
    int nev;
    /* per event id: index in ev (events have ids "e<n>") + labelled */
    int labelled[REF_MAX_EV];
    ref_lab_t lab[REF_MAX_LAB];
    int lab_tab[REF_MAX_LAB], lab_key[REF_MAX_LAB];
    int nlab;
    ref_key_t keys[REF_MAX_KEYS];
    int nkeys;
    /* bucketed windows: per table bucket width and count, and the fraud
     * labels counted into a bucket (table, key, bucket, seq) */
    int64_t tbkt[RS_FEATURES_MAX_TABLES];
    int tnbkt[RS_FEATURES_MAX_TABLES], tbvi[RS_FEATURES_MAX_TABLES];
    int bf_tab[REF_MAX_LAB], bf_key[REF_MAX_LAB], bf_seq[REF_MAX_LAB];
    int64_t bf_j[REF_MAX_LAB], bf_arr[REF_MAX_LAB];
    int nbf;
    int64_t wm;
    int64_t t0;   /* the oldest event time seen (velocity coverage) */
    int seq;
    uint64_t events;
} ref_t;

static int name_idx(char (*names)[RS_NAME_MAX], int *n, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], s)) return i;
    snprintf(names[*n], RS_NAME_MAX, "%s", s);
    return (*n)++;
}

static void ref_init(ref_t *r, const rs_features_conf_t *c) {
    memset(r, 0, sizeof(*r));
    r->conf = *c;
    char err[256];
    r->nspec = rs_features_conf_specs(c, r->specs, err, sizeof(err));
    assert_true(r->nspec > 0);
    r->ent_tab = -1;
    for (int i = 0; i < r->nspec; i++) {
        const rs_features_spec_t *s = &r->specs[i];
        int t = name_idx(r->tkey, &r->ntab, s->key);
        if (!strcmp(s->key, "entity")) r->ent_tab = t;
        int h = (int)(s->history ? s->history : c->history);
        if (h < c->history) h = (int)c->history;
        if (s->last_n > h) h = (int)s->last_n;
        if (h > r->thist[t]) r->thist[t] = h;
        if (s->bucket_ms) {
            int64_t nb = (s->offset_ms + s->bucket_ms - 1) / s->bucket_ms +
                         s->window_ms / s->bucket_ms + 1;
            r->tbkt[t] = s->bucket_ms;
            if (nb > r->tnbkt[t]) r->tnbkt[t] = (int)nb;
            r->tbvi[t] = name_idx(r->vnames, &r->nvn, s->value);
        } else if (s->aggs & ((1u << RS_FEATURES_AGG_FRAUD_COUNT) |
                              (1u << RS_FEATURES_AGG_FRAUD_RATE))) {
            r->tlab[t] = (int)c->labels_per_key;
        }
        name_idx(r->vnames, &r->nvn, s->value);
        name_idx(r->anames, &r->nan_, s->field);
    }
    r->wm = INT64_MIN;
    r->t0 = INT64_MAX;
}

/* key/aux id of a field of an event: ids are the numeric suffix + 1 */
static int field_id(const rs_event_t *ev, const char *name) {
    const char *s;
    if (!strcmp(name, "entity")) s = ev->entity_id;
    else if (!strcmp(name, "counterparty")) s = ev->counterparty_id;
    else if (!strcmp(name, "type")) s = ev->type;
    else s = rs_event_categ(ev, name);
    if (!s || !*s) return 0;
    return (int)(rs_hash_str(s) % 1000003) + 1;
}

static double numeric(const rs_event_t *ev, const char *name) {
    if (!strcmp(name, "amount")) return ev->amount;
    for (int i = 0; i < ev->n_numeric; i++)
        if (!strcmp(ev->numeric[i].name, name)) return ev->numeric[i].value;
    return NAN;
}

static ref_key_t *ref_key(ref_t *r, int t, int id) {
    for (int i = 0; i < r->nkeys; i++)
        if (r->keys[i].tab == t && r->keys[i].id == id) return &r->keys[i];
    assert_true(r->nkeys < REF_MAX_KEYS);
    ref_key_t *k = &r->keys[r->nkeys++];
    memset(k, 0, sizeof(*k));
    k->tab = t;
    k->id = id;
    return k;
}

/* Access a key at the current watermark; returns 1 if alive. */
static int ref_access(ref_t *r, int t, int id) {
    ref_key_t *k = ref_key(r, t, id);
    if (!k->exists) return 0;
    if (r->wm - k->seen > r->conf.key_ttl) {
        k->exists = 0;
        return 0;
    }
    return 1;
}

typedef struct ritem_s {
    int64_t t;
    int seq;
    int ev;
} ritem_t;

static int cmp_item_desc(const void *a, const void *b) {
    const ritem_t *x = a, *y = b;
    if (x->t != y->t) return x->t > y->t ? -1 : 1;
    return y->seq - x->seq;
}

/* Kept ring of (table t, key id): top-hist by (t, seq) since the epoch,
 * sorted newest first.  Returns the count. */
static int ref_ring(ref_t *r, int t, int id, ritem_t *out) {
    const ref_key_t *k = ref_key(r, t, id);
    int n = 0;
    for (int i = 0; i < r->nev; i++)
        if (r->ev[i].key[t] == id && r->ev[i].seq >= k->epoch_seq) {
            out[n].t = r->ev[i].t;
            out[n].seq = r->ev[i].seq;
            out[n].ev = i;
            n++;
        }
    qsort(out, (size_t)n, sizeof(*out), cmp_item_desc);
    return n > r->thist[t] ? r->thist[t] : n;
}

static int64_t fdiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return q - (a % b != 0 && a < 0);
}

/* Largest bucket number of the key's current-epoch events (inserted so
 * far) in the class of bucket j (j mod nbkt); -1 if none. */
static int64_t ref_bkt_max(const ref_t *r, int tb, int id, int64_t j) {
    const ref_key_t *k = NULL;
    for (int i = 0; i < r->nkeys; i++)
        if (r->keys[i].tab == tb && r->keys[i].id == id) k = &r->keys[i];
    int64_t best = -1, nb = r->tnbkt[tb];
    for (int i = 0; i < r->nev; i++) {
        if (r->ev[i].key[tb] != id || (k && r->ev[i].seq < k->epoch_seq)) continue;
        int64_t b = fdiv(r->ev[i].t, r->tbkt[tb]);
        if (b % nb == j % nb && b > best) best = b;
    }
    return best;
}

/* Bucketed spec: whole buckets [e - W/B + 1, e], e = floor((t - O)/B) - 1,
 * each counted if it is still the newest of its class. */
/* Velocity: events per hour of the part of the window [end - W, end) the
 * state covers (it began at the oldest event seen), at least W / 30. */
static double ref_per_hour(const ref_t *r, double n, int64_t end, int64_t W) {
    int64_t cov = W;
    if (end - W < r->t0) cov = end - r->t0;
    int64_t lo = W / 30 > 0 ? W / 30 : 1;
    if (cov < lo) cov = lo;
    if (cov > W) cov = W;
    return n * (double)HOUR_MS / (double)cov;
}

static void ref_bucketed(ref_t *r, const rs_features_spec_t *s, int tb, int id,
                         int64_t t, const uint8_t *aggs, int nout, float *out) {
    const ref_key_t *k = ref_key(r, tb, id);
    const int64_t B = r->tbkt[tb];
    int64_t e = fdiv(t - s->offset_ms, B) - 1;
    double n = 0, nv = 0, fr = 0, sum = 0;
    int vi = r->tbvi[tb];
    for (int64_t j = e - s->window_ms / B + 1; j <= e; j++) {
        if (j < 0 || ref_bkt_max(r, tb, id, j) != j) continue;
        for (int i = 0; i < r->nev; i++) {
            const ref_ev_t *ev = &r->ev[i];
            if (ev->key[tb] != id || ev->seq < k->epoch_seq || fdiv(ev->t, B) != j)
                continue;
            n++;
            if (isfinite(ev->val[vi])) { nv++; sum += ev->val[vi]; }
        }
        for (int i = 0; i < r->nbf; i++) {
            if (r->bf_tab[i] != tb || r->bf_key[i] != id || r->bf_j[i] != j ||
                r->bf_seq[i] < k->epoch_seq)
                continue;
            /* not counted: among the key's labels_per_key newest by
             * (arrival, order) and arrived at or after t */
            if (r->bf_arr[i] >= t) {
                int newer = 0;
                for (int q = 0; q < r->nbf; q++)
                    if (r->bf_tab[q] == tb && r->bf_key[q] == id &&
                        r->bf_seq[q] >= k->epoch_seq &&
                        (r->bf_arr[q] > r->bf_arr[i] ||
                         (r->bf_arr[q] == r->bf_arr[i] && r->bf_seq[q] > r->bf_seq[i])))
                        newer++;
                if (newer < (int)r->conf.labels_per_key) continue;
            }
            fr++;
        }
    }
    for (int q = 0; q < nout; q++) {
        double v = 0;
        switch (aggs[q]) {
        case RS_FEATURES_AGG_COUNT: v = n; break;
        case RS_FEATURES_AGG_SUM: v = sum; break;
        case RS_FEATURES_AGG_MEAN: v = nv ? sum / nv : 0; break;
        case RS_FEATURES_AGG_VELOCITY:
            v = ref_per_hour(r, n, t - s->offset_ms, s->window_ms);
            break;
        case RS_FEATURES_AGG_FRAUD_COUNT: v = fr; break;
        case RS_FEATURES_AGG_FRAUD_RATE: v = n ? fmin(1.0, fr / n) : 0; break;
        }
        out[q] = (float)v;
    }
}

/* Calendar transforms in UTC (the zone lookup is tested against glibc in
 * test_calendar_timezones). */
static int ref_calendar(int agg, int64_t t, double *v) {
    int64_t day = fdiv(t, DAY_MS);
    double h = (double)(t - day * DAY_MS) / HOUR_MS;
    int dow = (int)(((day + 3) % 7 + 7) % 7);
    switch (agg) {
    case RS_FEATURES_AGG_HOUR_OF_DAY: *v = floor(h); return 1;
    case RS_FEATURES_AGG_DAY_OF_WEEK: *v = dow; return 1;
    case RS_FEATURES_AGG_NIGHT: *v = h < 6; return 1;
    case RS_FEATURES_AGG_WEEKEND: *v = dow >= 5; return 1;
    case RS_FEATURES_AGG_HOUR_SIN: *v = sin(6.283185307179586 * h / 24); return 1;
    case RS_FEATURES_AGG_HOUR_COS: *v = cos(6.283185307179586 * h / 24); return 1;
    }
    return 0;
}

/* Baseline of value vi of key (tb, id) before the current event, brute
 * force: the key's readings since its epoch but excl[nexcl] (the
 * window's), topped up to baseline_prior readings with pseudo-readings
 * of every reading of the table. */
static int ref_base(ref_t *r, int tb, int id, int vi, const int *excl,
                    int nexcl, double *mean, double *sd) {
    const ref_key_t *k = ref_key(r, tb, id);
    static uint8_t skip[REF_MAX_EV];
    memset(skip, 0, sizeof(skip));
    for (int i = 0; i < nexcl; i++) skip[excl[i]] = 1;
    double n = 0, s1 = 0, fn = 0, f1 = 0;
    for (int i = 0; i < r->nev; i++) {
        const ref_ev_t *e = &r->ev[i];
        if (!e->key[tb] || !isfinite(e->val[vi])) continue;
        fn++; f1 += e->val[vi];
        if (e->key[tb] == id && e->seq >= k->epoch_seq && !skip[i]) { n++; s1 += e->val[vi]; }
    }
    double m = n ? s1 / n : 0, fm = fn ? f1 / fn : 0, m2 = 0, fm2 = 0;
    for (int i = 0; i < r->nev; i++) {
        const ref_ev_t *e = &r->ev[i];
        if (!e->key[tb] || !isfinite(e->val[vi])) continue;
        fm2 += (e->val[vi] - fm) * (e->val[vi] - fm);
        if (e->key[tb] == id && e->seq >= k->epoch_seq && !skip[i])
            m2 += (e->val[vi] - m) * (e->val[vi] - m);
    }
    double kk = fn > 0 ? (double)r->conf.baseline_prior - n : 0;
    if (kk < 0) kk = 0;
    if (kk > fn) kk = fn;
    double N = n + kk;
    if (N <= 0) return 0;
    double fv = fn ? fm2 / fn : 0;
    *mean = (n * m + kk * fm) / N;
    double tot = m2 + kk * fv + (n > 0 && kk > 0 ? n * kk / N * (m - fm) * (m - fm) : 0);
    *sd = tot > 0 ? sqrt(tot / N) : 0;
    return 1;
}

/* base_noise's baseline, brute force: the mean |difference| recorded
 * by the key's readings since its epoch without the window's (excl:
 * their values), topped up to baseline_prior with the table's. */
static int ref_base_dif(ref_t *r, int tb, int id, int vi, const double *excl,
                        int nexcl, double *mean, double *count) {
    const ref_key_t *k = ref_key(r, tb, id);
    double n = 0, s1 = 0, fn = 0, f1 = 0, xn = 0, x1 = 0;
    for (int i = 0; i < r->nev; i++) {
        const ref_ev_t *e = &r->ev[i];
        double d = e->dif[tb][vi];
        if (!e->key[tb] || !isfinite(d)) continue;
        fn++; f1 += d;
        if (e->key[tb] == id && e->seq >= k->epoch_seq) { n++; s1 += d; }
    }
    for (int i = 0; i < nexcl; i++) { xn++; x1 += excl[i]; }
    double m = 0;
    if (n - xn < 0.5) n = 0;
    else { m = (s1 - x1) / (n - xn); n -= xn; }
    double kk = fn > 0 ? (double)r->conf.baseline_prior - n : 0;
    if (kk < 0) kk = 0;
    if (kk > fn) kk = fn;
    if (n + kk <= 0) return 0;
    *mean = (n * m + kk * (fn ? f1 / fn : 0)) / (n + kk);
    *count = n + kk;
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double ref_life(ref_t *r, int tb, int id, int vi) {
    const ref_key_t *k = ref_key(r, tb, id);
    double n = 0;
    for (int i = 0; i < r->nev; i++) {
        const ref_ev_t *e = &r->ev[i];
        if (e->key[tb] == id && e->seq >= k->epoch_seq &&
            isfinite(e->val[vi]))
            n++;
    }
    return log1p(n);
}

static void ref_features(ref_t *r, const rs_event_t *ev, const ref_ev_t *cur,
                         float *out, uint32_t *flags) {
    static ritem_t ring[REF_MAX_EV];
    static ritem_t labs[REF_MAX_LAB];
    const int64_t t = cur->t;
    int o = 0;
    for (int si = 0; si < r->nspec; si++) {
        const rs_features_spec_t *s = &r->specs[si];
        int tb = name_idx(r->tkey, &r->ntab, s->key);
        int vi = name_idx(r->vnames, &r->nvn, s->value);
        int ai = name_idx(r->anames, &r->nan_, s->field);
        int id = cur->key[tb];
        int nout = 0;
        uint8_t aggs[RS_FEATURES_AGG__CNT];
        for (int a = 0; a < RS_FEATURES_AGG__CNT; a++)
            if (s->aggs & (1u << a)) aggs[nout++] = (uint8_t)a;
        {
            double cv;
            int all_cal = 1;
            for (int k = 0; k < nout; k++) all_cal &= ref_calendar(aggs[k], t, &cv);
            if (all_cal) {
                for (int k = 0; k < nout; k++) {
                    ref_calendar(aggs[k], t, &cv);
                    out[o++] = (float)cv;
                }
                continue;
            }
        }
        if (id == 0) {
            for (int k = 0; k < nout; k++) {
                double cv = 0;
                ref_calendar(aggs[k], t, &cv);
                out[o++] = (float)cv;
            }
            continue;
        }
        if (s->bucket_ms) {
            ref_bucketed(r, s, tb, id, t, aggs, nout, out + o);
            o += nout;
            continue;
        }
        int n = ref_ring(r, tb, id, ring);
        /* select */
        int sel[REF_MAX_EV], ns = 0;
        for (int i = 0; i < n; i++) {
            if (ring[i].t > t) continue;
            if (s->last_n) {
                if (ns < s->last_n) sel[ns++] = ring[i].ev;
            } else {
                int64_t d = t - ring[i].t;
                if (d >= s->offset_ms && (!s->window_ms || d <= s->offset_ms + s->window_ms))
                    sel[ns++] = ring[i].ev;
            }
        }
        int incl = s->include_current && s->offset_ms == 0;
        int cnt = ns + incl;
        double xs[REF_MAX_EV + 1];
        int64_t ts[REF_MAX_EV + 1];
        int aux[REF_MAX_EV + 1];
        int nv = 0, below = 0;
        double last = 0;
        int have_last = 0;
        for (int i = 0; i < cnt; i++) {
            const ref_ev_t *e = i < ns ? &r->ev[sel[i]] : cur;
            aux[i] = e->aux[ai];
            double v = e->val[vi];
            if (!isfinite(v)) continue;
            if (!have_last && i < ns) { last = v; have_last = 1; }
            xs[nv] = v;
            ts[nv] = e->t;
            nv++;
            if (v < s->below) below++;
        }
        double sum = 0, mn = 0, mx = 0;
        for (int i = 0; i < nv; i++) {
            sum += xs[i];
            if (!i || xs[i] < mn) mn = xs[i];
            if (!i || xs[i] > mx) mx = xs[i];
        }
        double mean = nv ? sum / nv : 0, ss = 0;
        for (int i = 0; i < nv; i++) ss += (xs[i] - mean) * (xs[i] - mean);
        double sd = nv ? sqrt(ss / nv) : 0;
        double slope = 0;
        if (nv >= 2) {
            double tm = 0, sxx = 0, sxy = 0;
            for (int i = 0; i < nv; i++) tm += (double)(ts[i] - t) / HOUR_MS;
            tm /= nv;
            for (int i = 0; i < nv; i++) {
                double dt = (double)(ts[i] - t) / HOUR_MS - tm;
                sxx += dt * dt;
                sxy += dt * (xs[i] - mean);
            }
            if (sxx > 0) slope = sxy / sxx;
        }
        int distinct = 0, seen = 0;
        int cx = cur->aux[ai];
        for (int i = 0; i < cnt; i++) {
            if (!aux[i]) continue;
            int dup = 0;
            for (int j = 0; j < i; j++) dup |= aux[j] == aux[i];
            distinct += !dup;
            if (i < ns && aux[i] == cx) seen = 1;
        }
        /* labels: kept ring of the key since its epoch */
        int fc = 0;
        if (r->tlab[tb]) {
            const ref_key_t *k = ref_key(r, tb, id);
            int nl = 0;
            for (int j = 0; j < r->nlab; j++)
                if (r->lab_tab[j] == tb && r->lab_key[j] == id &&
                    r->lab[j].seq >= k->epoch_seq) {
                    labs[nl].t = r->lab[j].et;
                    labs[nl].seq = r->lab[j].seq;
                    labs[nl].ev = j;
                    nl++;
                }
            qsort(labs, (size_t)nl, sizeof(*labs), cmp_item_desc);
            if (nl > r->tlab[tb]) nl = r->tlab[tb];
            for (int j = 0; j < nl; j++) {
                const ref_lab_t *l = &r->lab[labs[j].ev];
                if (l->et > t) continue;
                int64_t d = t - l->et;
                if (d < s->offset_ms || d > s->offset_ms + s->window_ms) continue;
                if (l->arr + s->label_delay_ms < t) fc++;
            }
        }
        int64_t newest = ns ? r->ev[sel[0]].t : INT64_MIN;
        int64_t oldest = ns ? r->ev[sel[ns - 1]].t : 0;
        double x = cur->val[vi];
        int xok = isfinite(x);
        for (int k = 0; k < nout; k++) {
            double v = 0;
            switch (aggs[k]) {
            case RS_FEATURES_AGG_COUNT: v = cnt; break;
            case RS_FEATURES_AGG_SUM: v = sum; break;
            case RS_FEATURES_AGG_MEAN: v = mean; break;
            case RS_FEATURES_AGG_STD: v = sd; break;
            case RS_FEATURES_AGG_MIN: v = mn; break;
            case RS_FEATURES_AGG_MAX: v = mx; break;
            case RS_FEATURES_AGG_COUNT_BELOW: v = below; break;
            case RS_FEATURES_AGG_DISTINCT: v = distinct; break;
            case RS_FEATURES_AGG_NEW: v = cx && !seen; break;
            case RS_FEATURES_AGG_SINCE_LAST:
                v = log1p(newest == INT64_MIN ? 1e8 : (t - newest) / 1000.0); break;
            case RS_FEATURES_AGG_RATIO_MEAN:
                v = !xok ? 0 : !nv ? 1 : fabs(mean + 1) > 1e-12 ? (x + 1) / (mean + 1) : 0;
                break;
            case RS_FEATURES_AGG_ZSCORE:
                if (xok && nv >= 2) {
                    v = (x - mean) / (sd + 0.01 * fabs(mean) + 0.01);
                    v = v > 100 ? 100 : v < -100 ? -100 : v;
                }
                break;
            case RS_FEATURES_AGG_VELOCITY:
                if (s->window_ms)
                    v = ref_per_hour(r, cnt, t - s->offset_ms, s->window_ms);
                else if (cnt) {
                    int64_t span = ns ? t - oldest : 0;
                    if (span < MIN_MS) span = MIN_MS;
                    v = cnt * (double)HOUR_MS / span;
                }
                break;
            case RS_FEATURES_AGG_FRAUD_COUNT: v = fc; break;
            case RS_FEATURES_AGG_FRAUD_RATE: v = cnt ? fmin(1.0, (double)fc / cnt) : 0; break;
            case RS_FEATURES_AGG_LAST: v = have_last ? last : 0; break;
            case RS_FEATURES_AGG_SLOPE: v = slope; break;
            case RS_FEATURES_AGG_DEVIATION: v = xok && nv ? x - mean : 0; break;
            case RS_FEATURES_AGG_CURRENT: v = xok ? x : 0; break;
            case RS_FEATURES_AGG_CURRENT_LOG1P: v = xok ? log1p(x > 0 ? x : 0) : 0; break;
            case RS_FEATURES_AGG_BASE_DEV:
            case RS_FEATURES_AGG_BASE_Z: {
                int win = s->last_n || s->window_ms;
                double lv = win ? mean : x, bm, bsd;
                if (!(win ? nv > 0 : xok) ||
                    !ref_base(r, tb, id, vi, sel, win ? ns : 0, &bm, &bsd))
                    break;
                if (aggs[k] == RS_FEATURES_AGG_BASE_DEV) v = lv - bm;
                else if (bsd > 0) {
                    v = (lv - bm) / bsd;
                    v = v > 50 ? 50 : v < -50 ? -50 : v;
                }
                break;
            }
            case RS_FEATURES_AGG_LIFE: v = ref_life(r, tb, id, vi); break;
            case RS_FEATURES_AGG_BASE_SPREAD: {
                double bm, bsd, lim = log(50.0);
                if (nv < 2 || !ref_base(r, tb, id, vi, sel, ns, &bm, &bsd) ||
                    !(bsd > 0))
                    break;
                v = sd > 0 ? log(sd / bsd) : -lim;
                v = v > lim ? lim : v < -lim ? -lim : v;
                break;
            }
            case RS_FEATURES_AGG_BASE_NOISE: {
                /* oldest first, the event last; a difference whose later
                 * reading is kept is in the key's life: taken out */
                double ds[REF_MAX_EV + 1], prev = NAN, bm, lim = log(50.0);
                double ex[REF_MAX_EV + 1];
                int nd = 0, nex = 0;
                for (int j = 0; j < cnt; j++) {
                    const ref_ev_t *e = j < ns ? &r->ev[sel[ns - 1 - j]] : cur;
                    double xv = e->val[vi];
                    if (!isfinite(xv)) continue;
                    if (isfinite(prev)) {
                        ds[nd] = fabs(xv - prev);
                        if (j < ns) ex[nex++] = ds[nd];
                        nd++;
                    }
                    prev = xv;
                }
                double bn = 0;
                if (nd < 2 || !ref_base_dif(r, tb, id, vi, ex, nex, &bm, &bn) || !(bm > 0))
                    break;
                qsort(ds, (size_t)nd, sizeof(double), cmp_double);
                double med = nd % 2 ? ds[nd / 2] : 0.5 * (ds[nd / 2 - 1] + ds[nd / 2]);
                v = med > 0 ? log(med / bm * 1.1283791670955126 /
                                  (0.6744897501960817 * 1.4142135623730951))
                            : -lim;
                v = v > lim ? lim : v < -lim ? -lim : v;
                /* beyond chance: the window's and the baseline's error */
                /* (successive differences are dependent: features_int.h) */
                v -= 3.0 * sqrt(1.2845 * 1.2845 / nd + 0.8264 / bn);
                if (v < 0) v = 0;
                break;
            }
            default: ref_calendar(aggs[k], t, &v); break;
            }
            out[o++] = (float)v;
        }
    }
    (void)ev;
    (void)flags;
}

/* Process an event in the reference; fills out and flags. */
static void ref_process(ref_t *r, const rs_event_t *ev, float *out,
                        uint32_t *flags) {
    assert_true(r->nev < REF_MAX_EV);
    ref_ev_t cur;
    memset(&cur, 0, sizeof(cur));
    cur.t = ev->event_time_ms;
    *flags = 0;
    if (r->events && cur.t < r->wm - r->conf.allowed_lateness) {
        *flags |= RS_FEATURES_FLAG_LATE;
        cur.late = 1;
    }
    if (cur.t > r->wm) r->wm = cur.t;
    if (cur.t < r->t0) r->t0 = cur.t;
    r->events++;
    for (int i = 0; i < r->nvn; i++) cur.val[i] = (float)numeric(ev, r->vnames[i]);
    for (int i = 0; i < r->nan_; i++) cur.aux[i] = field_id(ev, r->anames[i]);
    cur.seq = r->seq++;
    for (int tb = 0; tb < r->ntab; tb++) {
        cur.key[tb] = field_id(ev, r->tkey[tb]);
        if (!cur.key[tb]) continue;
        if (!ref_access(r, tb, cur.key[tb])) {
            ref_key_t *k = ref_key(r, tb, cur.key[tb]);
            k->exists = 1;
            k->seen = cur.t;
            k->epoch_seq = cur.seq;
            if (tb == r->ent_tab) *flags |= RS_FEATURES_FLAG_NEW_ENTITY;
        }
    }
    /* base_noise: |value - the key's newest kept value of the field|
     * (the ring before this event; ties: the latest inserted) */
    for (int tb = 0; tb < r->ntab; tb++)
        for (int vi = 0; vi < 8; vi++) cur.dif[tb][vi] = NAN;
    for (int tb = 0; tb < r->ntab; tb++) {
        static ritem_t pr[REF_MAX_EV];
        if (!cur.key[tb] || ref_ring(r, tb, cur.key[tb], pr) < 1) continue;
        int np = ref_ring(r, tb, cur.key[tb], pr);
        for (int vi = 0; vi < r->nvn; vi++) {
            int j = 0;  /* the newest kept with a value */
            while (j < np && !isfinite(r->ev[pr[j].ev].val[vi])) j++;
            if (j == np) continue;
            double d = (double)cur.val[vi] - (double)r->ev[pr[j].ev].val[vi];
            if (isfinite(d)) cur.dif[tb][vi] = fabs(d);
        }
    }
    ref_features(r, ev, &cur, out, flags);
    /* dropped: older than every kept item of a full entity ring */
    int dt = r->ent_tab >= 0 ? r->ent_tab : 0;
    if (cur.key[dt]) {
        static ritem_t ring[REF_MAX_EV];
        int n = ref_ring(r, dt, cur.key[dt], ring);
        if (n == r->thist[dt] && cur.t < ring[n - 1].t)
            *flags |= RS_FEATURES_FLAG_DROPPED;
    }
    for (int tb = 0; tb < r->ntab; tb++) {
        if (!cur.key[tb]) continue;
        ref_key_t *k = ref_key(r, tb, cur.key[tb]);
        if (cur.t > k->seen) k->seen = cur.t;
    }
    r->ev[r->nev++] = cur;
}

/* Label event number `evn` (index in r->ev). Returns 1 if applied. */
static void ref_label(ref_t *r, int evn, double value, int64_t ltime) {
    if (evn < 0 || evn >= r->nev) return;
    if (r->labelled[evn]) return;
    r->labelled[evn] = 1;
    if (!(value >= 0.5)) return;
    const ref_ev_t *e = &r->ev[evn];
    int64_t arr = ltime > 0 ? ltime : r->wm;
    if (arr < e->t) arr = e->t;
    int seq = r->seq++;
    for (int tb = 0; tb < r->ntab; tb++) {
        if ((!r->tlab[tb] && !r->tbkt[tb]) || !e->key[tb]) continue;
        if (!ref_access(r, tb, e->key[tb])) continue;
        if (r->tbkt[tb]) {
            int64_t j = fdiv(e->t, r->tbkt[tb]);
            if (ref_bkt_max(r, tb, e->key[tb], j) == j) {
                assert_true(r->nbf < REF_MAX_LAB);
                r->bf_tab[r->nbf] = tb;
                r->bf_key[r->nbf] = e->key[tb];
                r->bf_j[r->nbf] = j;
                r->bf_arr[r->nbf] = arr;
                r->bf_seq[r->nbf] = seq;
                r->nbf++;
            }
        }
        if (!r->tlab[tb]) continue;
        assert_true(r->nlab < REF_MAX_LAB);
        r->lab[r->nlab] = (ref_lab_t){e->t, arr, seq};
        r->lab_tab[r->nlab] = tb;
        r->lab_key[r->nlab] = e->key[tb];
        r->nlab++;
    }
}

/* ========================================================= random streams */

typedef struct stream_cfg_s {
    uint64_t seed;
    int nev, nent, ncp, ncat;
    int64_t span;            /* nominal stream length */
    double p_late, p_vlate, p_dup, p_gap, p_label, p_nocp;
} stream_cfg_t;

/* One step of a stream: an event (is_label 0) or a label. */
typedef struct step_s {
    int is_label;
    rs_event_t ev;
    rs_label_t lb;
    int lab_ev;              /* event index labelled, -1 unknown */
} step_t;

static int gen_stream(const stream_cfg_t *sc, step_t *steps, int max) {
    rs_rng_t rng;
    rs_rng_seed(&rng, sc->seed);
    int n = 0, nev = 0;
    int64_t clock = T0;
    double mean_gap = (double)sc->span / sc->nev;
    while (nev < sc->nev && n < max - 2) {
        step_t *s = &steps[n];
        memset(s, 0, sizeof(*s));
        double u = rs_rng_uniform(&rng);
        if (u < sc->p_dup) {
            /* same timestamp */
        } else if (u < sc->p_dup + sc->p_gap) {
            /* whole days, so "idle exactly key_ttl" happens */
            clock += (int64_t)(rs_rng_below(&rng, 9) + 1) * DAY_MS;
        } else {
            clock += (int64_t)rs_rng_exp(&rng, 1.0 / mean_gap);
        }
        int64_t t = clock;
        double v = rs_rng_uniform(&rng);
        if (v < sc->p_vlate)
            t -= (int64_t)(3 * HOUR_MS + rs_rng_uniform(&rng) * 40 * HOUR_MS);
        else if (v < sc->p_vlate + sc->p_late)
            t -= (int64_t)(rs_rng_uniform(&rng) * 30 * MIN_MS);
        if (rs_rng_uniform(&rng) < 0.4) /* on a 10-minute grid: exact window edges */
            t -= t % (10 * MIN_MS);
        if (t <= 0) t = 1;
        char id[32], ent[32], cp[32];
        snprintf(id, sizeof(id), "e%d", nev);
        snprintf(ent, sizeof(ent), "card%d", (int)rs_rng_below(&rng, (uint64_t)sc->nent));
        if (rs_rng_uniform(&rng) < sc->p_nocp) cp[0] = '\0';
        else snprintf(cp, sizeof(cp), "m%d", (int)rs_rng_below(&rng, (uint64_t)sc->ncp));
        double amt = rs_rng_uniform(&rng) < 0.3 ? rs_rng_uniform(&rng) * 6
                                                 : exp(rs_rng_normal(&rng) * 1.2 + 3.5);
        s->ev = mkev(id, ent, cp, t, amt);
        if (rs_rng_uniform(&rng) < 0.8)
            add_num(&s->ev, "temp", 60 + rs_rng_normal(&rng) * 5 + (t - T0) / 1e8);
        if (sc->ncat && rs_rng_uniform(&rng) < 0.85) {
            char c[16];
            snprintf(c, sizeof(c), "mcc%d", (int)rs_rng_below(&rng, (uint64_t)sc->ncat));
            add_cat(&s->ev, "mcc", c);
        }
        n++;
        nev++;
        /* labels */
        while (rs_rng_uniform(&rng) < sc->p_label && n < max - 1) {
            step_t *l = &steps[n++];
            memset(l, 0, sizeof(*l));
            l->is_label = 1;
            int which = (int)rs_rng_below(&rng, (uint64_t)nev + 3) - 1;
            if (which >= nev) which = -1; /* unknown */
            if (which >= 0 && rs_rng_uniform(&rng) < 0.7)
                which = nev - 1 - (int)rs_rng_below(&rng, (uint64_t)RS_MIN(nev, 30));
            char lid[32];
            if (which < 0) snprintf(lid, sizeof(lid), "nope%d", n);
            else snprintf(lid, sizeof(lid), "e%d", which);
            int64_t lt = clock + (int64_t)((rs_rng_uniform(&rng) * 3 - 0.2) * DAY_MS);
            if (rs_rng_uniform(&rng) < 0.1) lt = 0;
            l->lb = mklabel(lid, rs_rng_uniform(&rng) < 0.6 ? 1.0 : 0.0, lt);
            l->lab_ev = which;
        }
    }
    return n;
}

static int close_enough(float a, float b, int sensitive) {
    if (a == b) return 1;
    double tol = (sensitive ? 2e-3 : 2e-4) * (1.0 + fabs((double)b));
    return fabs((double)a - (double)b) <= tol;
}

static void run_reference(const rs_features_conf_t *c, const stream_cfg_t *sc) {
    static step_t steps[REF_MAX_EV * 2];
    static ref_t r;
    char err[256];
    rs_features_t *f = rs_features_new(c, err, sizeof(err));
    if (!f) fail_msg("rs_features_new: %s", err);
    ref_init(&r, c);
    int dim = rs_features_dim(f);
    int n = gen_stream(sc, steps, (int)RS_ARRAY_LEN(steps));
    float *x = calloc((size_t)dim, sizeof(float)), *y = calloc((size_t)dim, sizeof(float));
    uint64_t checked = 0, late = 0, dropped = 0, fraud_seen = 0;
    int has_fraud = 0;
    for (int i = 0; i < n; i++) {
        step_t *s = &steps[i];
        if (s->is_label) {
            rs_err_t e = rs_features_label(f, &s->lb);
            if (s->lab_ev < 0) assert_int_equal(e, RS_ERR_NOTFOUND);
            ref_label(&r, s->lab_ev, s->lb.value, s->lb.label_time_ms);
            continue;
        }
        uint32_t fl, rfl;
        assert_int_equal(rs_features_process(f, &s->ev, x, &fl), RS_OK);
        ref_process(&r, &s->ev, y, &rfl);
        if (fl != rfl)
            fail_msg("seed %llu step %d (%s t=%lld): flags %u, reference %u",
                     (unsigned long long)sc->seed, i, s->ev.id,
                     (long long)s->ev.event_time_ms, fl, rfl);
        late += !!(fl & RS_FEATURES_FLAG_LATE);
        dropped += !!(fl & RS_FEATURES_FLAG_DROPPED);
        for (int k = 0; k < dim; k++) {
            const char *nm = rs_features_name(f, k);
            int sens = strstr(nm, "zscore") || strstr(nm, "slope") ||
                       strstr(nm, "std") || strstr(nm, "deviation") ||
                       strstr(nm, "ratio") || strstr(nm, "base_");
            has_fraud |= strstr(nm, "fraud") != NULL;
            if (strstr(nm, "fraud") && y[k] > 0) fraud_seen++;
            if (!close_enough(x[k], y[k], sens))
                fail_msg("seed %llu step %d (%s t=%lld): feature %d %s = %.9g, "
                         "reference %.9g", (unsigned long long)sc->seed, i,
                         s->ev.id, (long long)s->ev.event_time_ms, k, nm,
                         (double)x[k], (double)y[k]);
            checked++;
        }
    }
    assert_true(checked > 1000);
    assert_true(late > 0);
    if (has_fraud) assert_true(fraud_seen > 0);
    (void)dropped;
    free(x);
    free(y);
    rs_features_destroy(f);
}

/* Every aggregation, window kind, key kind and option. */
static const char *yaml_all =
    "features:\n"
    "  max_keys: 512\n"
    "  max_counterparties: 512\n"
    "  history: 12\n"
    "  labels_per_key: 3\n"
    "  key_ttl: 5d\n"
    "  allowed_lateness: 1h\n"
    "  label_index: 65536\n"
    "  label_maturity: 5h\n"
    "  baseline_prior: 5\n"
    "  baseline_limit: 0\n" /* the brute force learns every reading */
    "  specs:\n"
    "    - {key: entity, value: temp, aggs: [base_dev, base_z, life]}\n"
    "    - {key: counterparty, value: temp, window: 1d, aggs: [base_z, base_dev, base_spread]}\n"
    "    - {key: counterparty, value: temp, last: 6, include_current: true, aggs: [base_noise]}\n"
    "    - {key: entity, value: temp, window: 1d, aggs: [base_noise]}\n"
    "    - key: entity\n"
    "      windows: [10m, 1h, 1d, 7d]\n"
    "      aggs: [count, sum, mean, std, min, max, {count_below: 5}, velocity,\n"
    "             ratio_mean, zscore, since_last, {distinct: counterparty},\n"
    "             {new: counterparty}]\n"
    "    - key: entity\n"
    "      last: 5\n"
    "      aggs: [count, mean, max, velocity, since_last, {distinct: mcc}, last]\n"
    "    - {key: entity, window: all, aggs: [count, sum, velocity, {new: mcc}, current_log1p]}\n"
    "    - key: entity\n"
    "      window: 2d\n"
    "      offset: 12h\n"
    "      aggs: [count, fraud_count, fraud_rate, mean]\n"
    "    - {key: entity, window: 3d, label_delay: 6h, aggs: [fraud_count, fraud_rate]}\n"
    "    - {key: entity, window: 1h, include_current: true, aggs: [count, sum, {distinct: counterparty}, velocity]}\n"
    "    - key: entity\n"
    "      values: [temp]\n"
    "      windows: [1h, 1d]\n"
    "      aggs: [last, mean, slope, deviation, count, min]\n"
    "    - {key: entity, value: temp, aggs: [current]}\n"
    "    - {key: entity, value: temp, last: 4, include_current: true, aggs: [mean, slope]}\n"
    "    - {key: counterparty, windows: [1h, 1d], history: 20, aggs: [count, mean, fraud_count, fraud_rate, {distinct: entity}]}\n"
    "    - {key: counterparty, window: 3d, offset: 1d, aggs: [count, fraud_rate]}\n"
    "    - {key: mcc, window: 1d, aggs: [count, sum, zscore, fraud_count]}\n"
    "    - {key: counterparty, windows: [6h, 2d], offset: maturity, bucket: 2h, name: cpb,\n"
    "       aggs: [count, sum, mean, velocity, fraud_count, fraud_rate]}\n"
    "    - {key: counterparty, window: 1d, bucket: 2h, name: cpb0, aggs: [count, fraud_count]}\n"
    "    - {name: cal, aggs: [hour_of_day, day_of_week, night, weekend, hour_sin, hour_cos]}\n"
    "    - {key: mcc, window: 1h, name: mixcal, aggs: [count, night, hour_sin]}\n";

static void test_reference_all_aggs(void **state) {
    (void)state;
    static rs_features_conf_t c;
    char err[512];
    rs_features_conf_init(&c);
    if (load_conf(yaml_all, &c, err, sizeof(err))) fail_msg("%s", err);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        stream_cfg_t sc = {.seed = seed, .nev = 1500, .nent = 12, .ncp = 6,
                           .ncat = 4, .span = 20 * DAY_MS, .p_late = 0.08,
                           .p_vlate = 0.02, .p_dup = 0.08, .p_gap = 0.004,
                           .p_label = 0.25, .p_nocp = 0.1};
        if (seed % 2 == 0) { sc.nent = 4; sc.span = 3 * DAY_MS; } /* dense */
        run_reference(&c, &sc);
    }
}

static void test_reference_presets(void **state) {
    (void)state;
    static rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 512;
    c.label_index = 65536;
    c.history = 24;
    c.label_window = 5 * DAY_MS;
    c.key_ttl = 6 * DAY_MS;
    stream_cfg_t sc = {.seed = 11, .nev = 2500, .nent = 20, .ncp = 8,
                       .span = 30 * DAY_MS, .p_late = 0.05, .p_vlate = 0.02,
                       .p_dup = 0.05, .p_gap = 0.003, .p_label = 0.2,
                       .p_nocp = 0.05};
    run_reference(&c, &sc);
    c.preset = 1; /* sensors */
    c.sensor_noise = 0;
    /* the brute-force baseline learns every reading (the limit's rule is
     * test_baseline_limit's) */
    c.baseline_limit = 0;
    rs_strlcpy(c.sensor_fields, "temp, pressure", sizeof(c.sensor_fields));
    sc.seed = 12;
    run_reference(&c, &sc);
    c.sensor_noise = 1;    /* + base_noise of the longest span */
    sc.seed = 13;
    run_reference(&c, &sc);
}

/* ================================================================ targeted */

/* features.sensor_fields takes the documented 8 fields (35 features:
 * amount + 8 values on the entity key), and a 9th is refused naming the
 * key (it once failed at 8, naming only "key 'entity'"). */
static void test_sensor_fields_max(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    c.preset = 1; /* sensors */
    c.sensor_noise = 0;  /* (the default is on) */
    char err[256];
    rs_strlcpy(c.sensor_fields, "a,b,c,d,e,f,g,h", sizeof(c.sensor_fields));
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("8 sensor fields refused: %s", err);
    assert_int_equal(rs_features_dim(f), 1 + 5 * RS_FEATURES_MAX_SENSORS);
    assert_true(find_feature(f, "ent_h_base_z_last48_incl") >= 0);
    assert_true(find_feature(f, "ent_h_base_noise_last48_incl") < 0);
    rs_features_destroy(f);
    /* features.sensor_noise: + the longest span's base_noise per field */
    c.sensor_noise = 1;
    f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("sensor_noise: %s", err);
    assert_int_equal(rs_features_dim(f), 1 + 6 * RS_FEATURES_MAX_SENSORS);
    assert_true(find_feature(f, "ent_h_base_noise_last48_incl") >= 0);
    assert_true(find_feature(f, "ent_h_base_noise_last12_incl") < 0);
    rs_features_destroy(f);
    c.sensor_noise = 0;
    rs_strlcpy(c.sensor_fields, "a,b,c,d,e,f,g,h,i", sizeof(c.sensor_fields));
    err[0] = '\0';
    assert_null(rs_features_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "features.sensor_fields"));
}

/* The sensors preset: baselines are the machine's own running statistics
 * (not a ring of raw readings), a new machine's first reading is scored
 * against the fleet (no "never seen" extreme), a drift shows in the
 * smoothed z-score, a repair (rs_features_reset) starts a new life, and no
 * feature is built from failure labels. */
static void test_sensor_baselines(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    rs_strlcpy(c.sensor_fields, "temp", sizeof(c.sensor_fields));
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    int dim = rs_features_dim(f);
    for (int i = 0; i < dim; i++) {
        assert_null(strstr(rs_features_name(f, i), "fraud"));
        assert_null(strstr(rs_features_name(f, i), "since_last"));
    }
    int iz = find_feature(f, "ent_temp_base_z");
    int iz12 = find_feature(f, "ent_temp_base_z_last12_incl");
    int isl = find_feature(f, "ent_temp_slope_last12_incl");
    int ilife = find_feature(f, "ent_life");
    assert_true(iz >= 0 && iz12 >= 0 && isl >= 0 && ilife >= 0);
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    /* a slot holds 48 readings of the trend span plus 2 baselines, not
     * thousands of readings */
    assert_true(st.entity_slot_bytes < 48 * 24 + 256);
    rs_rng_t rng;
    rs_rng_seed(&rng, 5);
    float x[RS_FEATURES_MAX_DIM];
    char id[32], ent[32];
    int64_t t = T0;
    /* 10 machines, each at its own level (60 + 3 m), noise sd 1, 200
     * readings each at a 1-hour cadence */
    for (int k = 0; k < 200; k++, t += HOUR_MS)
        for (int m = 0; m < 10; m++) {
            snprintf(id, sizeof(id), "e%d-%d", k, m);
            snprintf(ent, sizeof(ent), "m%d", m);
            rs_event_t ev = mkev(id, ent, "site", t + m, 0);
            add_num(&ev, "temp", 60 + 3 * m + rs_rng_normal(&rng));
            assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
            if (k > 50) assert_true(fabsf(x[iz]) < 6);
        }
    /* a new machine at the fleet's level: its first reading is ordinary */
    rs_event_t ev = mkev("new-0", "m-new", "site", t, 0);
    add_num(&ev, "temp", 73.0);
    uint32_t fl;
    assert_int_equal(rs_features_process(f, &ev, x, &fl), RS_OK);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(fabsf(x[iz]) < 2);
    assert_true(fabsf(x[iz12]) < 2);
    assert_float_equal(x[ilife], 0, 1e-6);
    assert_float_equal(x[isl], 0, 1e-6);
    /* machine 0 drifts up by 0.3 per reading for 20 readings */
    double lvl = 60;
    for (int k = 0; k < 20; k++) {
        t += HOUR_MS;
        lvl += 0.3;
        snprintf(id, sizeof(id), "d%d", k);
        rs_event_t e2 = mkev(id, "m0", "site", t, 0);
        add_num(&e2, "temp", lvl + 0.2 * rs_rng_normal(&rng));
        assert_int_equal(rs_features_process(f, &e2, x, NULL), RS_OK);
    }
    assert_true(x[iz12] > 3);      /* own baseline: 60, sd ~1 */
    assert_true(x[isl] > 0.2 && x[isl] < 0.4); /* per hour */
    assert_true(x[ilife] > log(200.0));
    /* repaired: a new life, scored against the fleet again */
    assert_int_equal(rs_features_reset(f, "m0"), RS_OK);
    assert_int_equal(rs_features_reset(f, "nobody"), RS_ERR_NOTFOUND);
    t += HOUR_MS;
    rs_event_t e3 = mkev("after", "m0", "site", t, 0);
    add_num(&e3, "temp", 60.5);
    assert_int_equal(rs_features_process(f, &e3, x, NULL), RS_OK);
    assert_float_equal(x[ilife], 0, 1e-6);
    assert_float_equal(x[isl], 0, 1e-6);
    assert_true(fabsf(x[iz12]) < 2);
    rs_features_stats(f, &st);
    assert_int_equal(st.resets, 1);
    rs_features_destroy(f);
    /* spans are validated naming the key */
    rs_strlcpy(c.sensor_spans, "12,x", sizeof(c.sensor_spans));
    err[0] = '\0';
    assert_null(rs_features_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "features.sensor_spans"));
    rs_strlcpy(c.sensor_spans, "1", sizeof(c.sensor_spans));
    assert_null(rs_features_new(&c, err, sizeof(err)));
}

/* features.baseline_limit: a machine that goes out of range (a step of
 * 6 sds lasting three times the 48-reading span) stays out of range in
 * its baseline z-scores for as long as it lasts, because its baseline
 * does not learn the readings it judges out of range; with the limit off
 * (0) the baseline absorbs the step and the z fades under 3.  It comes
 * back to ~0 when the step ends, and a repair (rs_features_reset) starts
 * a life that learns the new level. */
static double limit_run(double limit, double *z_back, double *z_new) {
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    c.baseline_limit = limit;
    rs_strlcpy(c.sensor_fields, "temp", sizeof(c.sensor_fields));
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    int iz = find_feature(f, "ent_temp_base_z_last48_incl");
    assert_true(iz >= 0);
    rs_rng_t rng;
    rs_rng_seed(&rng, 17);
    float x[RS_FEATURES_MAX_DIM];
    char id[32], ent[32];
    int64_t t = T0;
    double zmin = 1e9;
    /* 4 machines at levels 50 + 5 m, noise sd 1: 300 healthy readings
     * each, then machine 0 steps up by 6 for 150 readings, then back */
    for (int k = 0; k < 500; k++, t += HOUR_MS)
        for (int m = 0; m < 4; m++) {
            double lvl = 50 + 5 * m + (m == 0 && k >= 300 && k < 450 ? 6 : 0);
            snprintf(id, sizeof(id), "e%d-%d", k, m);
            snprintf(ent, sizeof(ent), "m%d", m);
            rs_event_t ev = mkev(id, ent, "site", t + m, 0);
            add_num(&ev, "temp", lvl + rs_rng_normal(&rng));
            assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
            if (m == 0 && k >= 300 + 48 && k < 450) {
                /* the full span stepped: its mean against the life */
                if (x[iz] < zmin) zmin = x[iz];
            }
            if (m != 0 && k > 50) assert_true(fabsf(x[iz]) < 3);
        }
    rs_event_t eb = mkev("back", "m0", "site", t, 0);
    add_num(&eb, "temp", 50.0);
    assert_int_equal(rs_features_process(f, &eb, x, NULL), RS_OK);
    *z_back = x[iz];  /* 50 readings back at 50: the last span's mean */
    /* repaired at the stepped level: a new life learns it */
    assert_int_equal(rs_features_reset(f, "m0"), RS_OK);
    for (int k = 0; k < 100; k++) {
        t += HOUR_MS;
        snprintf(id, sizeof(id), "r%d", k);
        rs_event_t er = mkev(id, "m0", "site", t, 0);
        add_num(&er, "temp", 56 + rs_rng_normal(&rng));
        assert_int_equal(rs_features_process(f, &er, x, NULL), RS_OK);
    }
    *z_new = x[iz];
    rs_features_destroy(f);
    return zmin;
}

static void test_baseline_limit(void **state) {
    (void)state;
    double back, fresh;
    /* the default, 3 sds: the step's z stays at ~6 of the life's sds for
     * the 102 readings after the span filled */
    double z = limit_run(3.0, &back, &fresh);
    print_message("limit 3: stepped span's z >= %.2f, back %.2f, after repair %.2f\n",
                  z, back, fresh);
    assert_true(z > 4.5);
    assert_true(fabs(back) < 1.5);
    assert_true(fabs(fresh) < 1.5);
    /* off: every reading learned, the step absorbed */
    double z0 = limit_run(0.0, &back, &fresh);
    print_message("limit 0: stepped span's z >= %.2f, back %.2f, after repair %.2f\n",
                  z0, back, fresh);
    assert_true(z0 < 3);
    assert_true(fabs(fresh) < 1.5);
}

/* features.baseline_learn_first: a machine run at two loads (+3 on the
 * sensor, noise sd 0.3, alternating every 12 readings) whose life starts
 * with 20 readings at the first one -- a young baseline judging by that
 * stretch's sd refuses every reading of the other load for good (its
 * mean |z| stays far above 3), Phase I (the first 100 learned whatever
 * they are) gives it the machine's ordinary range (mean |z| ~1). */
static double learn_first_run(int64_t first) {
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    c.baseline_learn_first = first;
    rs_strlcpy(c.sensor_fields, "temp", sizeof(c.sensor_fields));
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    int iz = find_feature(f, "ent_temp_base_z");
    assert_true(iz >= 0);
    rs_rng_t rng;
    rs_rng_seed(&rng, 23);
    float x[RS_FEATURES_MAX_DIM];
    char id[32];
    int64_t t = T0;
    double sum = 0;
    int n = 0;
    for (int k = 0; k < 500; k++, t += HOUR_MS) {
        snprintf(id, sizeof(id), "q%d", k);
        rs_event_t ev = mkev(id, "m0", "site", t, 0);
        double load = k >= 20 && (k / 12) % 2 ? 3.0 : 0.0;
        add_num(&ev, "temp", 50 + load + 0.3 * rs_rng_normal(&rng));
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
        if (k >= 200) { sum += fabsf(x[iz]); n++; }
    }
    rs_features_destroy(f);
    return sum / n;
}

static void test_baseline_learn_first(void **state) {
    (void)state;
    double z0 = learn_first_run(0), z100 = learn_first_run(100);
    print_message("mean |z| of ordinary readings: learn_first 0 %.2f, 100 %.2f\n", z0, z100);
    assert_true(z0 > 3);
    assert_true(z100 < 1.5);
}

/* base_spread (an extra spec over the sensors preset): noise that grows
 * around a steady level -- which the level features cannot see -- shows as
 * the log of the span's spread over the machine's own; a healthy machine
 * stays near 0 whatever its sensor's scale, and it is computed against the
 * life BEFORE the span (the noisy readings do not widen their own
 * yardstick). */
static void test_sensor_spread(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    rs_strlcpy(c.sensor_fields, "temp", sizeof(c.sensor_fields));
    /* {value: temp, last: 48, include_current: true, name: sp,
     *  aggs: [base_spread]} */
    rs_features_spec_t *sp = &c.extra[c.nextra++];
    memset(sp, 0, sizeof(*sp));
    rs_strlcpy(sp->prefix, "sp", sizeof(sp->prefix));
    rs_strlcpy(sp->key, "entity", sizeof(sp->key));
    rs_strlcpy(sp->value, "temp", sizeof(sp->value));
    rs_strlcpy(sp->field, "counterparty", sizeof(sp->field));
    sp->last_n = 48;
    sp->include_current = 1;
    sp->aggs = 1u << RS_FEATURES_AGG_BASE_SPREAD;
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    int isp = find_feature(f, "sp_temp_base_spread_last48_incl");
    int iz = find_feature(f, "ent_temp_base_z_last48_incl");
    if (isp < 0)
        for (int i = 0; i < rs_features_dim(f); i++)
            print_message("%s\n", rs_features_name(f, i));
    assert_true(isp >= 0 && iz >= 0);
    rs_rng_t rng;
    rs_rng_seed(&rng, 11);
    float x[RS_FEATURES_MAX_DIM];
    char id[32], ent[32];
    int64_t t = T0;
    /* 4 machines at levels 10^m (scales 1..1000), noise 1 % of the level */
    double worst = 0;
    for (int k = 0; k < 300; k++, t += HOUR_MS)
        for (int m = 0; m < 4; m++) {
            snprintf(id, sizeof(id), "e%d-%d", k, m);
            snprintf(ent, sizeof(ent), "m%d", m);
            double lvl = pow(10.0, m);
            rs_event_t ev = mkev(id, ent, "site", t + m, 0);
            add_num(&ev, "temp", lvl + 0.01 * lvl * rs_rng_normal(&rng));
            assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
            if (k > 100 && fabsf(x[isp]) > worst) worst = fabsf(x[isp]);
        }
    assert_true(worst < 0.5);   /* healthy: near 0 at every scale */
    /* machine 3: the same level, noise 5x for 48 readings */
    for (int k = 0; k < 48; k++, t += HOUR_MS) {
        snprintf(id, sizeof(id), "n%d", k);
        rs_event_t ev = mkev(id, "m3", "site", t, 0);
        add_num(&ev, "temp", 1000.0 + 5 * 10.0 * rs_rng_normal(&rng));
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    }
    assert_true(x[isp] > log(3.0) && x[isp] < log(8.0));  /* ~log 5 */
    assert_true(fabsf(x[iz]) < 2);                       /* level steady */
    /* a constant window (48 kept + this one) is as quiet as it gets:
     * clipped, not -inf */
    for (int k = 0; k < 49; k++, t += HOUR_MS) {
        snprintf(id, sizeof(id), "c%d", k);
        rs_event_t ev = mkev(id, "m2", "site", t, 0);
        add_num(&ev, "temp", 100.0);
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    }
    assert_float_equal(x[isp], -log(50.0), 1e-5);
    rs_features_destroy(f);
}

/* base_noise (an extra spec over the sensors preset): noise growth from the
 * successive differences against the machine's own, beyond chance.  A
 * healthy machine's is 0 (all but a few readings) whatever its scale; a
 * STEP inside the span leaves it 0 (one large difference of 48, ignored by
 * the median) where a window standard deviation (base_spread) reads the
 * step as noise; noise growing 5x shows as log 5 - 3 s (s = 1.166 /
 * sqrt 48, the sampling sd); a quieter (constant) window is 0, not a
 * clipped extreme. */
static void test_sensor_noise(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    rs_strlcpy(c.sensor_fields, "temp", sizeof(c.sensor_fields));
    /* {value: temp, last: 48, include_current: true, name: nz,
     *  aggs: [base_noise]} and, for the contrast, the same with
     *  base_spread (name: sp) */
    for (int e = 0; e < 2; e++) {
        rs_features_spec_t *sp = &c.extra[c.nextra++];
        memset(sp, 0, sizeof(*sp));
        rs_strlcpy(sp->prefix, e ? "sp" : "nz", sizeof(sp->prefix));
        rs_strlcpy(sp->key, "entity", sizeof(sp->key));
        rs_strlcpy(sp->value, "temp", sizeof(sp->value));
        rs_strlcpy(sp->field, "counterparty", sizeof(sp->field));
        sp->last_n = 48;
        sp->include_current = 1;
        sp->aggs = 1u << (e ? RS_FEATURES_AGG_BASE_SPREAD : RS_FEATURES_AGG_BASE_NOISE);
    }
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    int inz = find_feature(f, "nz_temp_base_noise_last48_incl");
    int isp = find_feature(f, "sp_temp_base_spread_last48_incl");
    int iz = find_feature(f, "ent_temp_base_z_last48_incl");
    if (inz < 0)
        for (int i = 0; i < rs_features_dim(f); i++)
            print_message("%s\n", rs_features_name(f, i));
    assert_true(inz >= 0 && isp >= 0 && iz >= 0);
    assert_true(strstr(rs_features_desc(f, inz), "successive") != NULL);
    rs_rng_t rng;
    rs_rng_seed(&rng, 12);
    float x[RS_FEATURES_MAX_DIM];
    char id[32], ent[32];
    int64_t t = T0;
    /* 4 machines at levels 10^m (scales 1..1000), noise 1 % of the level */
    double worst = 0;
    int nonzero = 0, nh = 0;
    for (int k = 0; k < 300; k++, t += HOUR_MS)
        for (int m = 0; m < 4; m++) {
            snprintf(id, sizeof(id), "e%d-%d", k, m);
            snprintf(ent, sizeof(ent), "m%d", m);
            double lvl = pow(10.0, m);
            rs_event_t ev = mkev(id, ent, "site", t + m, 0);
            add_num(&ev, "temp", lvl + 0.01 * lvl * rs_rng_normal(&rng));
            assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
            if (k > 100) {
                assert_true(x[inz] >= 0);
                if (x[inz] > worst) worst = x[inz];
                nonzero += x[inz] > 0;
                nh++;
            }
        }
    assert_true(nonzero * 50 < nh);   /* healthy: 0 (> 98 % of readings) */
    assert_true(worst < 0.3);         /* ... at every scale */
    /* machine 1: a step of 8 noise sds; the 48 readings after it */
    double nz_max = 0, sp_max = 0, z_max = 0;
    for (int k = 0; k < 48; k++, t += HOUR_MS) {
        snprintf(id, sizeof(id), "s%d", k);
        rs_event_t ev = mkev(id, "m1", "site", t, 0);
        add_num(&ev, "temp", 10.0 + 0.8 + 0.1 * rs_rng_normal(&rng));
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
        if (fabsf(x[inz]) > nz_max) nz_max = fabsf(x[inz]);
        if (x[isp] > sp_max) sp_max = x[isp];
        if (x[iz] > z_max) z_max = x[iz];
    }
    assert_true(z_max > 3);          /* the level features see the step */
    assert_true(sp_max > log(2.5));  /* a window std reads it as noise */
    assert_true(nz_max < 0.1);       /* the differences do not */
    /* machine 3: the same level, noise 5x for 48 readings */
    for (int k = 0; k < 48; k++, t += HOUR_MS) {
        snprintf(id, sizeof(id), "n%d", k);
        rs_event_t ev = mkev(id, "m3", "site", t, 0);
        add_num(&ev, "temp", 1000.0 + 5 * 10.0 * rs_rng_normal(&rng));
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    }
    const double s48 = 3.0 * 1.2845 / sqrt(48.0);  /* 3 sampling sds (+ a
                                                    * long baseline's) */
    assert_true(x[inz] > log(3.0) - s48 && x[inz] < log(8.0) - s48); /* ~log 5 */
    assert_true(fabsf(x[iz]) < 2);                                  /* level steady */
    char w[160];
    assert_true(rs_features_reason(f, inz, x, w, sizeof(w)) > 0);
    assert_non_null(strstr(w, "as noisy as"));   /* "temp 4.9x as noisy ..." */
    /* a constant window: as quiet as it gets, clipped, not -inf */
    for (int k = 0; k < 49; k++, t += HOUR_MS) {
        snprintf(id, sizeof(id), "c%d", k);
        rs_event_t ev = mkev(id, "m2", "site", t, 0);
        add_num(&ev, "temp", 100.0);
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    }
    assert_float_equal(x[inz], 0, 1e-7);
    rs_features_destroy(f);
}

/* base_noise's band is 3 of the log noise ratio's real sampling sds
 * (features_int.h, rs_fe_noise_se; the reference above uses the same
 * constants).  The differences of successive readings share a reading
 * (correlation -1/2), so the log median of n |d| varies by 1.2845 /
 * sqrt n, not the 1.1664 / sqrt n of independent ones, and the log mean of
 * the baseline's m by sqrt(0.8264 / m), not sqrt((pi/2 - 1) / m).  With
 * the independent formulas the band was 10 % too narrow in the window and
 * 17 % in a 200-difference baseline: 3.5x as many healthy windows passed
 * it by chance (docs/maintenance.md).  Simulated white noise: the sds are
 * those constants' within 3 % (window) and 5 % (baseline). */
static double log_med_abs_diff(rs_rng_t *rng, int nd, double *d) {
    double prev = rs_rng_normal(rng);
    for (int i = 0; i < nd; i++) {
        double v = rs_rng_normal(rng);
        d[i] = fabs(v - prev);
        prev = v;
    }
    qsort(d, (size_t)nd, sizeof(double), cmp_double);
    double med = nd % 2 ? d[nd / 2] : 0.5 * (d[nd / 2 - 1] + d[nd / 2]);
    return log(med / (0.6744897501960817 * 1.4142135623730951));
}

static void test_sensor_noise_band(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 15);
    double d[256];
    /* the window: 20000 windows of 48 readings (47 differences) */
    double s1 = 0, s2 = 0;
    const int W = 20000, nd = 47;
    for (int w = 0; w < W; w++) {
        double r = log_med_abs_diff(&rng, nd, d);
        s1 += r;
        s2 += r * r;
    }
    double sd = sqrt((s2 - s1 * s1 / W) / (W - 1));
    print_message("window: sd %.4f, 1.2845/sqrt(47) %.4f, independent %.4f\n", sd,
                  1.2845 / sqrt(nd), 1.1664 / sqrt(nd));
    assert_true(fabs(sd / (1.2845 / sqrt(nd)) - 1) < 0.03);
    /* the baseline: 4000 lives of 200 differences, their mean |d| */
    const int L = 4000, m = 200;
    s1 = s2 = 0;
    for (int l = 0; l < L; l++) {
        double prev = rs_rng_normal(&rng), sum = 0;
        for (int i = 0; i < m; i++) {
            double v = rs_rng_normal(&rng);
            sum += fabs(v - prev);
            prev = v;
        }
        double r = log(sum / m);   /* (its sd: no scaling needed) */
        s1 += r;
        s2 += r * r;
    }
    sd = sqrt((s2 - s1 * s1 / L) / (L - 1));
    print_message("baseline: sd %.4f, sqrt(0.8264/200) %.4f, independent %.4f\n", sd,
                  sqrt(0.8264 / m), sqrt((M_PI / 2 - 1) / m));
    assert_true(fabs(sd / sqrt(0.8264 / m) - 1) < 0.05);
}

/* Constant features are reported: at a 1-hour cadence a count over the
 * last 10 minutes is always 0. */
static void test_constant_features(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    char err[512];
    if (load_conf("features:\n"
                  "  max_keys: 64\n"
                  "  max_counterparties: 64\n"
                  "  label_index: 1024\n"
                  "  specs:\n"
                  "    - {key: entity, windows: [10m, 1h], aggs: [count]}\n"
                  "    - {key: entity, value: temp, aggs: [current]}\n",
                  &c, err, sizeof(err)))
        fail_msg("%s", err);
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    int idx[8];
    float x[RS_FEATURES_MAX_DIM];
    assert_int_equal(rs_features_constant(f, idx, 8), 0);
    for (int k = 0; k < 30; k++) {
        char id[16];
        snprintf(id, sizeof(id), "c%d", k);
        rs_event_t ev = mkev(id, "m1", "s", T0 + k * HOUR_MS, 0);
        add_num(&ev, "temp", 50 + k);
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    }
    /* ent_count_10m is always 0; ent_count_1h is 0 once, then 1 (the item
     * exactly one window old is in the window); temp varies */
    int n = rs_features_constant(f, idx, 8);
    assert_int_equal(n, 1);
    assert_string_equal(rs_features_name(f, idx[0]), "ent_count_10m");
    rs_features_destroy(f);
}

static void test_card_preset_layout(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    char err[256];
    c.label_maturity = 7 * DAY_MS;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    /* what a fraud team computes first (docs/features.md) */
    assert_int_equal(rs_features_dim(f), 36);
    const char *need[] = {
        "ent_current_log1p", "ent_count_10m", "ent_count_1h",
        "ent_count_below_1h", "ent_max_1h",
        "ent_count_1d_incl", "ent_sum_1d_incl", "ent_mean_1d_incl",
        "ent_count_7d_incl", "ent_sum_7d_incl", "ent_mean_7d_incl",
        "ent_count_30d_incl", "ent_sum_30d_incl", "ent_mean_30d_incl",
        "ent_ratio_mean_30d", "ent_zscore_30d", "ent_max_30d",
        "ent_since_last", "ent_distinct_counterparty_1d_incl",
        "ent_new_counterparty", "ent_fraud_count_30d", "cp_count_1h",
        "cp_count_1d_off7d", "cp_count_7d_off7d", "cp_count_30d_off7d",
        "cp_fraud_rate_1d_off7d", "cp_fraud_rate_7d_off7d",
        "cp_fraud_rate_30d_off7d", "cp_fraud_count_30d", "cal_hour_of_day",
        "cal_day_of_week", "cal_night", "cal_weekend", "cal_hour_sin",
        "cal_hour_cos"};
    for (size_t i = 0; i < RS_ARRAY_LEN(need); i++)
        if (find_feature(f, need[i]) < 0) fail_msg("missing %s", need[i]);
    for (int i = 0; i < rs_features_dim(f); i++) {
        assert_non_null(rs_features_desc(f, i));
        char buf[128];
        float x[RS_FEATURES_MAX_DIM];
        for (int k = 0; k < rs_features_dim(f); k++) x[k] = 1.5f;
        assert_true(rs_features_reason(f, i, x, buf, sizeof(buf)) > 0);
        assert_true(rs_features_words(f, i, buf, sizeof(buf)) > 0);
    }
    assert_null(rs_features_name(f, rs_features_dim(f)));
    assert_int_equal(rs_features_reason(f, -1, NULL, NULL, 0), -1);
    assert_int_equal(rs_features_words(f, rs_features_dim(f), NULL, 0), -1);
    rs_features_destroy(f);
}

/* x with every feature at `v`, then feature `name` at `fv`. */
static void words_set(const rs_features_t *f, float *x, const char *name,
                      float fv) {
    int i = find_feature(f, name);
    if (i < 0) fail_msg("no feature %s", name);
    x[i] = fv;
}

static void words_expect(const rs_features_t *f, const float *x,
                         const char *name, const char *want) {
    char buf[RS_REASON_MAX];
    int i = find_feature(f, name);
    if (i < 0) fail_msg("no feature %s", name);
    int n = rs_features_reason(f, i, x, buf, sizeof(buf));
    if (n <= 0 || strcmp(buf, want))
        fail_msg("%s: got '%s', want '%s'", name, buf, want);
}

static void label_expect(const rs_features_t *f, const char *name,
                         const char *want) {
    char buf[RS_REASON_MAX];
    int i = find_feature(f, name);
    if (i < 0) fail_msg("no feature %s", name);
    rs_features_words(f, i, buf, sizeof(buf));
    if (strcmp(buf, want)) fail_msg("%s: got '%s', want '%s'", name, buf, want);
}

/* Features in words: from the spec (key, window, offset, aggregation,
 * value) and the nouns, with the usual level from another feature of the
 * same key; no machine name ever shows. */
static void test_words(void **state) {
    (void)state;
    static rs_features_conf_t c;
    char err[512];
    float x[RS_FEATURES_MAX_DIM];
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    c.label_maturity = 7 * DAY_MS;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    int dim = rs_features_dim(f);
    for (int k = 0; k < dim; k++) x[k] = 0;
    /* 72 payments in 30 days before this one = 0.1 an hour, 2.4 a day
     * (the 30-day count includes this payment) */
    words_set(f, x, "ent_count_30d_incl", 73);
    words_set(f, x, "ent_count_7d_incl", 16);
    words_set(f, x, "ent_count_1h", 7);
    words_expect(f, x, "ent_count_1h", "7 payments in the last hour, usually 0.1");
    words_set(f, x, "ent_count_10m", 1);
    words_expect(f, x, "ent_count_10m",
                 "1 payment in the last 10 minutes, usually 0.017");
    label_expect(f, "ent_count_1h", "payments in the last hour");
    words_set(f, x, "ent_since_last", (float)log1p(120.0));
    words_expect(f, x, "ent_since_last",
                 "2 minutes since this card's previous payment, usually 10.0 "
                 "hours");
    words_set(f, x, "ent_since_last", (float)log1p(1e8));
    words_expect(f, x, "ent_since_last", "first payment of this card");
    words_set(f, x, "ent_mean_30d_incl", 42.1f);
    words_set(f, x, "ent_current_log1p", (float)log1p(980.0));
    words_expect(f, x, "ent_current_log1p", "amount 980.00, usually 42.10");
    words_set(f, x, "ent_ratio_mean_30d", 8.3f);
    words_expect(f, x, "ent_ratio_mean_30d",
                 "amount 8.3x this card's average over the last 30 days");
    words_set(f, x, "ent_zscore_30d", -2.5f);
    words_expect(f, x, "ent_zscore_30d",
                 "amount 2.5 standard deviations below this card's average "
                 "over the last 30 days");
    words_set(f, x, "ent_new_counterparty", 1);
    words_expect(f, x, "ent_new_counterparty", "new merchant for this card");
    words_set(f, x, "ent_distinct_counterparty_1d_incl", 4);
    words_expect(f, x, "ent_distinct_counterparty_1d_incl",
                 "4 different merchants in the last day");
    words_set(f, x, "cp_fraud_rate_30d_off7d", 0.13f);
    words_expect(f, x, "cp_fraud_rate_30d_off7d",
                 "13% of payments at this merchant confirmed as fraud in the "
                 "30 days before the last 7 days");
    label_expect(f, "cp_count_1h", "payments at this merchant in the last hour");
    /* an aggregate over an empty window says so */
    words_set(f, x, "cp_count_1h", 0);
    words_set(f, x, "cp_mean_1h", 0);
    words_expect(f, x, "cp_mean_1h", "no payments at this merchant in the last hour");
    words_expect(f, x, "cp_count_1h", "no payments at this merchant in the last hour");
    words_set(f, x, "cp_count_1h", 3);
    words_set(f, x, "cp_mean_1h", 25.5f);
    words_expect(f, x, "cp_mean_1h",
                 "average amount 25.50 at this merchant in the last hour");
    /* the calendar of the event itself */
    words_set(f, x, "cal_hour_of_day", 3);
    words_expect(f, x, "cal_hour_of_day", "at 03:00-03:59 (UTC)");
    words_set(f, x, "cal_day_of_week", 6);
    words_expect(f, x, "cal_day_of_week", "on a Sunday (UTC)");
    words_set(f, x, "cal_night", 1);
    words_expect(f, x, "cal_night", "at night, 00:00-06:00 (UTC)");
    words_set(f, x, "cal_weekend", 0);
    words_expect(f, x, "cal_weekend", "on a weekday (UTC)");
    words_set(f, x, "cal_hour_sin", (float)sin(6.283185307179586 * 3.5 / 24));
    words_set(f, x, "cal_hour_cos", (float)cos(6.283185307179586 * 3.5 / 24));
    words_expect(f, x, "cal_hour_sin", "at 03:30 (UTC)");
    label_expect(f, "cal_night", "at night, 00:00-06:00 (UTC)");
    /* no machine name in any of them */
    for (int i = 0; i < dim; i++) {
        char buf[RS_REASON_MAX];
        for (int k = 0; k < dim; k++) x[k] = 3;
        rs_features_reason(f, i, x, buf, sizeof(buf));
        if (strchr(buf, '_') || strstr(buf, rs_features_name(f, i)))
            fail_msg("%s reads '%s'", rs_features_name(f, i), buf);
        rs_features_words(f, i, buf, sizeof(buf));
        if (strchr(buf, '_')) fail_msg("%s label '%s'", rs_features_name(f, i), buf);
    }
    rs_features_destroy(f);

    /* generic over specs: any key, window, offset, last-N, and nouns */
    static const char *yaml =
        "features:\n"
        "  max_keys: 64\n"
        "  max_counterparties: 64\n"
        "  label_index: 64\n"
        "  nouns: event=login, entity=account, country=country/countries, "
        "device_id=device\n"
        "  specs:\n"
        "    - {key: country, windows: [2h, 7d], aggs: [count, velocity]}\n"
        "    - {key: entity, last: 20, aggs: [{distinct: device_id}]}\n"
        "    - {key: entity, window: 1d, offset: 1d, aggs: [count]}\n"
        "    - {key: entity, value: temp, window: 1h, aggs: [slope, last]}\n";
    rs_features_conf_init(&c);
    if (load_conf(yaml, &c, err, sizeof(err))) fail_msg("%s", err);
    f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    dim = rs_features_dim(f);
    for (int k = 0; k < dim; k++) x[k] = 0;
    words_set(f, x, "country_count_2h", 3);
    words_set(f, x, "country_count_7d", 168);
    words_expect(f, x, "country_count_2h",
                 "3 logins with the same country in the last 2 hours, "
                 "usually 2");
    words_set(f, x, "ent_distinct_device_id_last20", 5);
    words_expect(f, x, "ent_distinct_device_id_last20",
                 "5 different devices in the last 20 logins");
    words_set(f, x, "ent_count_1d_off1d", 1);
    words_expect(f, x, "ent_count_1d_off1d",
                 "1 login in the 1 day before the last day");
    words_set(f, x, "ent_temp_slope_1h", 0.5f);
    words_expect(f, x, "ent_temp_slope_1h",
                 "temp rising 0.5 per hour over the last hour");
    label_expect(f, "country_velocity_7d",
                 "logins per hour with the same country in the last 7 days");
    rs_features_destroy(f);

    /* a bad noun list is a configuration error naming the key */
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    snprintf(c.nouns, sizeof(c.nouns), "event=payment,entity");
    assert_null(rs_features_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "features.nouns"));
}

/* rs_features_reason (pieces of known length, no format strings) writes
 * what its reference rs_fe_reason_ref (one rs_fmt_snprintf per case)
 * writes, byte for byte, and returns the same length (= strlen), for
 * every feature of the cards and sensors presets and of a custom layout
 * with nouns, on random vectors with edge values (0, 0.5, 1, negatives,
 * huge, tiny, NaN, infinities) and buffers of every size from 1 to
 * RS_REASON_MAX. */
static float reason_val(uint64_t *st) {
    static const float edge[] = {0.0f, -0.0f, 0.5f, 0.49999997f, 1.0f,
                                 1.5f, -1.0f, 2.0f, 0.005f, 1e-30f,
                                 9.999999f, 10.0f, 119.5f, 1e8f, 3.4e38f,
                                 -3.4e38f, 1e19f, 2.5f, 0.125f, 23.0f,
                                 6.0f, 7.0f, -0.4f};
    *st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t r = *st >> 33;
    switch (r % 8) {
    case 0: return edge[(r >> 3) % (sizeof(edge) / sizeof(edge[0]))];
    case 1: return (float)((r >> 3) % 200);
    case 2: return (float)((double)((r >> 3) % 100000) / 1000.0);
    case 3: return -(float)((double)((r >> 3) % 100000) / 100.0);
    case 4: return (float)log1p((double)((r >> 3) % 10000000));
    case 5: return (r & 8) ? NAN : ((r & 16) ? INFINITY : -INFINITY);
    case 6: { uint32_t b = (uint32_t)(r ^ (r << 17)); float f; memcpy(&f, &b, 4); return f; }
    default: return (float)((double)((r >> 3) % 1000) / 997.0);
    }
}

static void reason_ref_check(const rs_features_t *f, uint64_t *st,
                             int rounds) {
    int dim = rs_features_dim(f);
    float x[RS_FEATURES_MAX_DIM];
    char a[RS_REASON_MAX + 8], b[RS_REASON_MAX + 8];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < dim; k++) x[k] = reason_val(st);
        for (int i = 0; i < dim; i++) {
            size_t sizes[3] = {RS_REASON_MAX, 1 + (size_t)(r % RS_REASON_MAX),
                               1 + (size_t)((r * 7 + i) % 40)};
            for (int z = 0; z < 3; z++) {
                memset(a, 'A', sizeof(a));
                memset(b, 'A', sizeof(b));
                int na = rs_features_reason(f, i, x, a, sizes[z]);
                int nb = rs_fe_reason_ref(f, i, x, b, sizes[z]);
                if (na != nb || memcmp(a, b, sizeof(a)) ||
                    (size_t)na != strlen(a))
                    fail_msg("%s size %zu x=%g: new %d '%s', ref %d '%s'",
                             rs_features_name(f, i), sizes[z], (double)x[i],
                             na, a, nb, b);
            }
        }
    }
}

static void test_reason_ref(void **state) {
    (void)state;
    static rs_features_conf_t c;
    char err[512];
    uint64_t st = 42;
    for (int preset = 0; preset < 2; preset++) { /* cards, sensors */
        rs_features_conf_init(&c);
        c.preset = preset;
        c.max_keys = c.max_counterparties = 64;
        c.label_index = 64;
        rs_features_t *f = rs_features_new(&c, err, sizeof(err));
        if (!f) fail_msg("preset %d: %s", preset, err);
        reason_ref_check(f, &st, 3000);
        rs_features_destroy(f);
    }
    static const char *yaml =
        "features:\n"
        "  max_keys: 64\n"
        "  max_counterparties: 64\n"
        "  label_index: 64\n"
        "  timezone: Europe/Paris\n"
        "  nouns: event=login, entity=account, country=country/countries, "
        "device_id=device\n"
        "  specs:\n"
        "    - {key: country, windows: [2h, 7d], aggs: [count, velocity]}\n"
        "    - {key: entity, last: 20, aggs: [{distinct: device_id}]}\n"
        "    - {key: entity, window: 1d, offset: 1d, aggs: [count]}\n"
        "    - {key: entity, value: temp, window: 1h, aggs: [slope, last]}\n"
        "    - {key: entity, value: temp, windows: [1h, 1d], aggs: [mean, sum, "
        "std, min, max]}\n"
        "    - {key: entity, window: 1d, aggs: [{new: device_id}, "
        "{distinct: merchant_category_code}]}\n";
    rs_features_conf_init(&c);
    if (load_conf(yaml, &c, err, sizeof(err))) fail_msg("%s", err);
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    reason_ref_check(f, &st, 3000);
    rs_features_destroy(f);
}

static void test_current_excluded_and_leakage(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    int cnt = find_feature(f, "ent_count_1h"), fr = find_feature(f, "ent_fraud_count_30d");
    int since = find_feature(f, "ent_since_last"), nw = find_feature(f, "ent_new_counterparty");
    float x[RS_FEATURES_MAX_DIM];
    uint32_t fl;
    rs_event_t ev = mkev("a1", "card", "shop", T0, 20.0);
    assert_int_equal(rs_features_process(f, &ev, x, &fl), RS_OK);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(x[cnt] == 0);
    assert_true(x[since] == (float)log1p(1e8));
    assert_true(x[nw] == 1);
    ev = mkev("a2", "card", "shop", T0, 2.0); /* same ms: the first counts */
    rs_features_process(f, &ev, x, &fl);
    assert_true(x[cnt] == 1 && x[since] == 0 && x[nw] == 0);
    /* label of a1 arrives at T0 + 10h, applied now: not visible before */
    rs_label_t lb = mklabel("a1", 1.0, T0 + 10 * HOUR_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_OK);
    ev = mkev("a3", "card", "shop", T0 + 10 * HOUR_MS, 5.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[fr] == 0); /* arrival == t: not strictly before */
    ev = mkev("a4", "card", "shop", T0 + 10 * HOUR_MS + 1, 5.0);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[fr] == 1);
    lb = mklabel("zzz", 1.0, T0);
    assert_int_equal(rs_features_label(f, &lb), RS_ERR_NOTFOUND);
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_int_equal(st.labels_unknown, 1);
    assert_int_equal(st.labels_applied, 1);
    /* bad input */
    ev = mkev("b", "", "shop", T0, 1);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_ERR_INVALID);
    ev = mkev("b", "c", "shop", T0, NAN);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_ERR_INVALID);
    ev = mkev("b", "c", "shop", 0, 1);
    assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_ERR_INVALID);
    rs_features_destroy(f);
}

static void test_ttl_eviction_cap(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = 4;
    c.max_counterparties = 4;
    c.label_index = 64;
    c.history = 4;
    c.key_ttl = DAY_MS;
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    float x[RS_FEATURES_MAX_DIM];
    uint32_t fl;
    char id[16], ent[16];
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        snprintf(ent, sizeof(ent), "k%d", i);
        rs_event_t ev = mkev(id, ent, "m", T0 + i, 1);
        rs_features_process(f, &ev, x, &fl);
    }
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    assert_true(st.evictions >= 4);
    assert_true(st.entity_keys <= 4);
    /* cap: 6 events of one key with history 4 */
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof(id), "y%d", i);
        rs_event_t ev = mkev(id, "k7", "m", T0 + 100 + i, 1);
        rs_features_process(f, &ev, x, &fl);
    }
    rs_features_stats(f, &st);
    assert_true(st.cap_hits >= 2);
    /* an event older than the full ring: scored, flagged, not kept */
    rs_event_t ev = mkev("old", "k7", "m", T0 + 50, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_true(fl & RS_FEATURES_FLAG_DROPPED);
    /* ttl: jump 2 days; k7 is new again */
    ev = mkev("late", "k7", "m", T0 + 2 * DAY_MS + 200, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    assert_true(x[find_feature(f, "ent_max_30d")] == 0);
    assert_true(x[find_feature(f, "ent_count_30d_incl")] == 1);
    /* the sweep removes the other idle keys without them being touched */
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof(id), "z%d", i);
        ev = mkev(id, "k7", "m", T0 + 2 * DAY_MS + 300 + i, 1);
        rs_features_process(f, &ev, x, &fl);
    }
    rs_features_stats(f, &st);
    assert_int_equal(st.entity_keys, 1);
    assert_true(st.expirations >= 3);
    rs_features_destroy(f);
    /* the ttl edge: idle exactly key_ttl is kept, one ms more is not */
    f = rs_features_new(&c, err, sizeof(err));
    ev = mkev("q1", "q", "m", T0, 1);
    rs_features_process(f, &ev, x, &fl);
    ev = mkev("q2", "q", "m", T0 + DAY_MS, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_false(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    ev = mkev("r1", "r", "m", T0 + 2 * DAY_MS + 1, 1);
    rs_features_process(f, &ev, x, &fl);
    ev = mkev("q3", "q", "m", T0 + 2 * DAY_MS + 1, 1);
    rs_features_process(f, &ev, x, &fl);
    assert_true(fl & RS_FEATURES_FLAG_NEW_ENTITY);
    rs_features_destroy(f);
}

/* Window boundaries are SQL's RANGE frame: an item exactly one window old
 * counts (issue 15: at a 1-hour cadence every 1-hour window was empty),
 * one ms older does not; offsets are closed on both ends too. */
static void test_window_boundaries(void **state) {
    (void)state;
    static rs_features_conf_t c;
    char err[512];
    rs_features_conf_init(&c);
    const char *yaml =
        "features:\n  max_keys: 16\n  max_counterparties: 16\n  label_index: 64\n"
        "  specs:\n"
        "    - {key: entity, window: 1h, aggs: [count, mean]}\n"
        "    - {key: entity, window: 1h, offset: 1h, aggs: [count]}\n";
    if (load_conf(yaml, &c, err, sizeof(err))) fail_msg("%s", err);
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    float x[8];
    char id[16];
    for (int i = 0; i < 4; i++) { /* hourly readings */
        snprintf(id, sizeof(id), "h%d", i);
        rs_event_t ev = mkev(id, "m", "", T0 + i * HOUR_MS, 10.0 + i);
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
        assert_true(x[0] == (i ? 1 : 0));      /* [t - 1h, t]: the previous */
        assert_true(x[1] == (i ? 9.0f + i : 0));
        assert_true(x[2] == (i >= 2 ? 2 : i)); /* [t - 2h, t - 1h]: two */
    }
    rs_event_t ev = mkev("late1", "m", "", T0 + 4 * HOUR_MS + 1, 1);
    rs_features_process(f, &ev, x, NULL);   /* t-1h-1ms .. : h3 is 1h+1ms old */
    assert_true(x[0] == 0);
    assert_true(x[2] == 1);                  /* [t-2h, t-1h]: h3 only */
    rs_features_destroy(f);
}

/* Calendar transforms against glibc's localtime_r (the test may set TZ;
 * the engine never does): DST changes of Europe/Paris and America/New_York,
 * a half-hour zone, far dates handled by the TZif footer rule. */
static void test_calendar_timezones(void **state) {
    (void)state;
    const char *zones[] = {"UTC", "Europe/Paris", "America/New_York",
                           "Asia/Kolkata", "Australia/Lord_Howe"};
    const int64_t when[] = {
        1711846800000LL - 1, 1711846800000LL,  /* 2024-03-31 01:00 UTC */
        1729990800000LL - 1, 1729990800000LL,  /* 2024-10-27 01:00 UTC */
        1710054000000LL, 1730613600000LL,      /* US changes 2024 */
        1700000000000LL, 2524608000000LL,      /* 2023, 2050 */
        4102444800000LL + 1234567, 86400000LL};
    for (size_t z = 0; z < RS_ARRAY_LEN(zones); z++) {
        char path[256];
        snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zones[z]);
        if (z && access(path, R_OK) != 0) {
            print_message("skip %s: no tzdata\n", zones[z]);
            continue;
        }
        static rs_features_conf_t c;
        char err[512];
        rs_features_conf_init(&c);
        c.max_keys = c.max_counterparties = 16;
        c.label_index = 64;
        const char *yaml =
            "features:\n  specs:\n"
            "    - {name: cal, aggs: [hour_of_day, day_of_week, night, weekend, hour_sin]}\n";
        if (load_conf(yaml, &c, err, sizeof(err))) fail_msg("%s", err);
        rs_strlcpy(c.timezone, zones[z], sizeof(c.timezone));
        rs_features_t *f = rs_features_new(&c, err, sizeof(err));
        if (!f) fail_msg("%s: %s", zones[z], err);
        setenv("TZ", zones[z], 1);
        tzset();
        for (size_t i = 0; i < RS_ARRAY_LEN(when); i++) {
            float x[8];
            char id[16];
            snprintf(id, sizeof(id), "c%zu", i);
            rs_event_t ev = mkev(id, "e", "", when[i], 1);
            assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
            time_t tt = (time_t)(when[i] / 1000);
            struct tm tm;
            localtime_r(&tt, &tm);
            int dow = (tm.tm_wday + 6) % 7;
            double h = tm.tm_hour + tm.tm_min / 60.0 + tm.tm_sec / 3600.0 +
                       (double)(when[i] % 1000) / 3.6e6;
            if (x[0] != tm.tm_hour || x[1] != dow || x[2] != (tm.tm_hour < 6) ||
                x[3] != (dow >= 5) || fabs(x[4] - sin(6.283185307179586 * h / 24)) > 1e-5)
                fail_msg("%s at %lld: hour %g dow %g night %g weekend %g sin %g; "
                         "libc %d %d", zones[z], (long long)when[i], x[0], x[1],
                         x[2], x[3], x[4], tm.tm_hour, dow);
        }
        rs_features_destroy(f);
    }
    unsetenv("TZ");
    tzset();
    /* a bad zone is a config error naming the key */
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 16;
    c.label_index = 64;
    rs_strlcpy(c.timezone, "Mars/Olympus", sizeof(c.timezone));
    char err[512];
    assert_null(rs_features_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "features.timezone"));
    rs_strlcpy(c.timezone, "../etc/passwd", sizeof(c.timezone));
    assert_null(rs_features_new(&c, err, sizeof(err)));
}

/* The cards preset's counterparty windows end at label maturity, in
 * whole-day buckets: a merchant with far more events than the ring holds
 * still has its full 30 days, and its fraud rate counts only labels that
 * were applied (arrived) before the event. */
static void test_maturity_buckets(void **state) {
    (void)state;
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = 4096;
    c.max_counterparties = 16;
    c.label_index = 1 << 16;
    c.label_maturity = 7 * DAY_MS;
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    int n7 = find_feature(f, "cp_count_7d_off7d"), r7 = find_feature(f, "cp_fraud_rate_7d_off7d");
    int n30 = find_feature(f, "cp_count_30d_off7d"), fc = find_feature(f, "cp_fraud_count_30d");
    assert_true(n7 >= 0 && r7 >= 0 && n30 >= 0 && fc >= 0);
    float x[RS_FEATURES_MAX_DIM];
    const int64_t day0 = (T0 / DAY_MS) * DAY_MS;
    /* 100 payments a day for 20 days at one merchant, every 10th fraud,
     * its label arriving 2 days later */
    char id[32], card[32];
    int k = 0;
    for (int d = 0; d < 20; d++) {
        for (int i = 0; i < 100; i++, k++) {
            int64_t t = day0 + d * DAY_MS + i * 10 * MIN_MS;
            /* labels of day d - 2 arrive at the start of day d */
            if (i == 0 && d >= 2)
                for (int j = 0; j < 10; j++) {
                    snprintf(id, sizeof(id), "p%d", (d - 2) * 100 + j * 10);
                    rs_label_t lb = mklabel(id, 1.0, t);
                    assert_int_equal(rs_features_label(f, &lb), RS_OK);
                }
            snprintf(id, sizeof(id), "p%d", k);
            snprintf(card, sizeof(card), "c%d", k % 1000);
            rs_event_t ev = mkev(id, card, "shop", t, 10);
            assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
        }
    }
    /* at day 20 + 1h: 7-day window ending >= 7 days ago = days 6..12 */
    rs_event_t ev = mkev("q", "c0", "shop", day0 + 20 * DAY_MS + HOUR_MS, 10);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[n7] == 700);          /* not capped by history 64 */
    assert_true(x[r7] == 0.1f);
    assert_true(x[n30] == 1300);        /* days 0..12 (the stream began) */
    assert_true(x[fc] == 180);          /* days 0..17 labelled, in 19 buckets */
    /* a label applied before its arrival time (the labels topic read ahead
     * of the events) counts only for events after its arrival */
    rs_label_t early = mklabel("p1901", 1.0, day0 + 22 * DAY_MS);
    assert_int_equal(rs_features_label(f, &early), RS_OK);
    ev = mkev("q2", "c1", "shop", day0 + 20 * DAY_MS + 2 * HOUR_MS, 10);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[fc] == 180);
    ev = mkev("q3", "c2", "shop", day0 + 22 * DAY_MS + 1, 10);
    rs_features_process(f, &ev, x, NULL);
    assert_true(x[fc] == 181);
    rs_features_destroy(f);
}

static void test_grammar_errors(void **state) {
    (void)state;
    static rs_features_conf_t c;
    char err[512];
    struct { const char *yaml, *want; } cases[] = {
        {"features:\n  specs:\n    - key: entity\n      windo: 1h\n      aggs: [count]\n",
         "test.yaml:4: unknown key 'features.specs[0].windo'"},
        {"features:\n  specs:\n    - {key: entity, window: 1x, aggs: [count]}\n",
         "test.yaml:3: features.specs[0].window: '1x' is not a duration"},
        {"features:\n  specs:\n    - {key: entity, window: 1h, aggs: [cnt]}\n",
         "unknown aggregation 'cnt'"},
        {"features:\n  specs:\n    - {key: entity, last: 3, aggs: [fraud_rate]}\n",
         "need a duration window"},
        {"features:\n  specs:\n    - {key: entity, window: all, aggs: [fraud_count]}\n",
         "need a duration window"},
        {"features:\n  specs: {a: 1}\n", "expected a list of specs"},
        {"features:\n  spex: []\n", "unknown key 'features.spex'"},
        {"features:\n  max_keys: x\n", "features.max_keys"},
        {"features:\n  specs:\n    - {key: entity, window: 1h, aggs: [count]}\n"
         "    - {key: entity, window: 60m, aggs: [count]}\n",
         NULL /* duplicate name found at rs_features_new */},
        {"features:\n  specs:\n    - {key: counterparty, window: 7d, bucket: 1d, aggs: [std]}\n",
         "a bucketed window takes only count, sum"},
        {"features:\n  specs:\n    - {key: counterparty, window: 36h, bucket: 1d, aggs: [count]}\n",
         "whole number of buckets"},
        {"features:\n  specs:\n    - {key: counterparty, window: 1d, bucket: 30s, aggs: [count]}\n",
         "a bucket is at least 1m"},
        {"features:\n  specs:\n    - {key: entity, last: 3, offset: maturity, aggs: [count]}\n",
         "'offset' needs a duration window"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(cases); i++) {
        rs_features_conf_init(&c);
        err[0] = '\0';
        rs_err_t e = load_conf(cases[i].yaml, &c, err, sizeof(err));
        if (!cases[i].want) {
            assert_int_equal(e, RS_OK);
            rs_features_t *f = rs_features_new(&c, err, sizeof(err));
            assert_null(f);
            assert_non_null(strstr(err, "declared twice"));
            continue;
        }
        assert_int_equal(e, RS_ERR_CONFIG);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].want);
    }
    /* preset none without specs */
    rs_features_conf_init(&c);
    assert_int_equal(load_conf("features:\n  preset: none\n", &c, err, sizeof(err)), RS_OK);
    assert_null(rs_features_new(&c, err, sizeof(err)));
    /* extra_specs add to the preset; the dump loads back */
    rs_features_conf_init(&c);
    assert_int_equal(load_conf("features:\n  label_maturity: 2d\n  extra_specs:\n"
                               "    - {key: mcc, window: 1d, aggs: [count]}\n"
                               "    - {key: mcc, windows: [2d], offset: maturity, bucket: 1d, name: mccm,\n"
                               "       aggs: [count, fraud_rate]}\n",
                               &c, err, sizeof(err)), RS_OK);
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    assert_true(find_feature(f, "mcc_count_1d") >= 0);
    assert_true(find_feature(f, "mccm_fraud_rate_2d_off2d") >= 0);
    assert_true(find_feature(f, "cp_count_7d_off2d") >= 0);
    assert_true(find_feature(f, "ent_count_1h") >= 0);
    uint64_t fp = rs_features_fingerprint(f);
    rs_features_destroy(f);
    {
        rs_conf_t *cfg = rs_conf_new();
        rs_conf_section_t sec;
        rs_features_conf_section(&sec, &c);
        assert_int_equal(rs_conf_add_section(cfg, &sec, err, sizeof(err)), RS_OK);
        c.label_maturity = 2 * DAY_MS;  /* adding the section set the defaults */
        assert_int_equal(rs_features_conf_add_specs(cfg, &c, err, sizeof(err)), RS_OK);
        char *dump = NULL;
        size_t dlen = 0;
        FILE *fp2 = open_memstream(&dump, &dlen);
        rs_conf_dump(cfg, fp2);
        fclose(fp2);
        static rs_features_conf_t c2;
        rs_features_conf_init(&c2);
        if (load_conf(dump, &c2, err, sizeof(err))) fail_msg("reload: %s\n%s", err, dump);
        rs_features_t *f2 = rs_features_new(&c2, err, sizeof(err));
        assert_non_null(f2);
        if (rs_features_fingerprint(f2) != fp) fail_msg("dump does not load back:\n%s", dump);
        rs_features_destroy(f2);
        free(dump);
        rs_conf_destroy(cfg);
    }
}

/* ============================================================ checkpoints */

static void ckpt_path(char *buf, size_t size, const char *tag) {
    snprintf(buf, size, "/tmp/rs_test_features_%d_%s.ckpt", (int)getpid(), tag);
}

static void test_checkpoint_roundtrip(void **state) {
    (void)state;
    static rs_features_conf_t c;
    static step_t steps[8000];
    char err[512];
    rs_features_conf_init(&c);
    if (load_conf(yaml_all, &c, err, sizeof(err))) fail_msg("%s", err);
    stream_cfg_t sc = {.seed = 77, .nev = 3000, .nent = 30, .ncp = 10, .ncat = 4,
                       .span = 10 * DAY_MS, .p_late = 0.05, .p_vlate = 0.01,
                       .p_dup = 0.05, .p_label = 0.2, .p_nocp = 0.1};
    int n = gen_stream(&sc, steps, 8000);
    rs_features_t *a = rs_features_new(&c, err, sizeof(err));
    rs_features_t *b = rs_features_new(&c, err, sizeof(err));
    rs_features_t *snap = rs_features_new(&c, err, sizeof(err));
    int dim = rs_features_dim(a);
    float x[RS_FEATURES_MAX_DIM], y[RS_FEATURES_MAX_DIM];
    char path[256];
    ckpt_path(path, sizeof(path), "rt");
    const char blob[] = "topic=tx partition=3 offset=12345";
    int half = n / 2, began = 0;
    /* a: run the whole stream; take an incremental checkpoint at `half`
     * and keep processing between small steps.  snap: replays only the
     * first half (the state the checkpoint must hold). */
    for (int i = 0; i < n; i++) {
        step_t *s = &steps[i];
        if (i < half) {
            if (s->is_label) rs_features_label(snap, &s->lb);
            else rs_features_process(snap, &s->ev, y, NULL);
        }
        if (i == half) {
            assert_int_equal(rs_features_checkpoint_begin(a, path, blob, sizeof(blob), err, sizeof(err)), RS_OK);
            began = 1;
        }
        if (s->is_label) rs_features_label(a, &s->lb);
        else rs_features_process(a, &s->ev, x, NULL);
        if (began && i > half) {
            rs_err_t e = rs_features_checkpoint_step(a, 7);
            if (e == RS_OK) {
                assert_int_equal(rs_features_checkpoint_end(a, err, sizeof(err)), RS_OK);
                began = 0;
            } else {
                assert_int_equal(e, RS_ERR_AGAIN);
            }
        }
    }
    if (began) assert_int_equal(rs_features_checkpoint_end(a, err, sizeof(err)), RS_OK);
    /* restore into b: must behave exactly like snap from the second half */
    void *bl = NULL;
    size_t bl_len = 0;
    if (rs_features_checkpoint_read(b, path, &bl, &bl_len, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(bl_len, sizeof(blob));
    assert_memory_equal(bl, blob, sizeof(blob));
    free(bl);
    rs_features_stats_t s1, s2;
    rs_features_stats(b, &s1);
    rs_features_stats(snap, &s2);
    assert_int_equal(s1.events, s2.events);
    assert_int_equal(s1.entity_keys, s2.entity_keys);
    assert_int_equal(s1.cp_keys, s2.cp_keys);
    assert_int_equal(s1.watermark_ms, s2.watermark_ms);
    for (int i = half; i < n; i++) {
        step_t *s = &steps[i];
        if (s->is_label) {
            assert_int_equal(rs_features_label(b, &s->lb), rs_features_label(snap, &s->lb));
            continue;
        }
        uint32_t f1, f2;
        rs_features_process(b, &s->ev, x, &f1);
        rs_features_process(snap, &s->ev, y, &f2);
        assert_int_equal(f1, f2);
        assert_memory_equal(x, y, sizeof(float) * (size_t)dim);
    }
    /* corruption: every truncation class and a flipped byte are rejected */
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    char bad[256];
    ckpt_path(bad, sizeof(bad), "bad");
    long cuts[] = {0, 10, 183, 184, size / 2, size - 1};
    for (size_t k = 0; k < RS_ARRAY_LEN(cuts) + 3; k++) {
        fp = fopen(bad, "wb");
        if (k < RS_ARRAY_LEN(cuts)) {
            fwrite(buf, 1, (size_t)cuts[k], fp);
        } else {
            long at = k == RS_ARRAY_LEN(cuts) ? 3 : k == RS_ARRAY_LEN(cuts) + 1 ? 40 : size - 5;
            buf[at] ^= 0x20;
            fwrite(buf, 1, (size_t)size, fp);
            buf[at] ^= 0x20;
        }
        fclose(fp);
        rs_err_t e = rs_features_checkpoint_read(b, bad, NULL, NULL, err, sizeof(err));
        if (e != RS_ERR_CORRUPT) fail_msg("case %zu: %s (%s)", k, rs_err_str(e), err);
        assert_non_null(strstr(err, "not loaded"));
        rs_features_stats(b, &s1);
        assert_int_equal(s1.events, 0); /* reset, never half-loaded */
    }
    /* a different layout refuses the file */
    rs_features_conf_t c3;
    rs_features_conf_init(&c3);
    c3.max_keys = c3.max_counterparties = 64;
    c3.label_index = 64;
    rs_features_t *other = rs_features_new(&c3, err, sizeof(err));
    assert_int_equal(rs_features_checkpoint_read(other, path, NULL, NULL, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "different feature layout"));
    assert_int_equal(rs_features_checkpoint_read(other, "/nonexistent/x", NULL, NULL, err, sizeof(err)),
                     RS_ERR_IO);
    /* state errors */
    assert_int_equal(rs_features_checkpoint_step(other, 1), RS_ERR_STATE);
    assert_int_equal(rs_features_checkpoint_begin(other, "/nonexistent/dir/x", NULL, 0, err, sizeof(err)),
                     RS_ERR_IO);
    rs_features_destroy(other);
    free(buf);
    unlink(path);
    unlink(bad);
    rs_features_destroy(a);
    rs_features_destroy(b);
    rs_features_destroy(snap);
}

/* Times in a checkpoint.  The reader rejects, naming the field, times a
 * running engine never holds (it stores only event times > 0; the
 * watermark is INT64_MIN only before the first event) and any beyond
 * 2^62 ms, where the engine's differences would overflow: found by
 * fuzz_ckpt_file (tests/fuzz/corpus/fuzz_ckpt_file/ub-*.ckpt.repair hit
 * signed overflow in features.c).  Times at the bound load and run clean
 * (this test runs under UBSan in the sanitizer build).  And each index
 * position is read once.
 *
 * The file is patched by offsets from the layout comment of
 * features/features_ckpt.c: header (wm at 24, blob_len 32, body_len 40,
 * nevid 56, body_crc 72, st[0] = events at 80, hdr_crc at 176 over [0,
 * 176)), then key records (24-byte head: u8 1, u8 table, u16 n, u16 nl,
 * u16 0, u64 key, i64 seen at +16; n items starting with their i64 time;
 * nl labels {i64 event time, i64 arrival}) and 64-byte index records
 * (event time at +16).  One entity key, so one key record. */
#define CK_HDR 184
#define CK_TMAX (INT64_C(1) << 62)

typedef struct ck_file_s {
    unsigned char *b;
    long size;
    long key;       /* offset of the key record          */
    long item0;     /* its first item                    */
    long isz;       /* bytes per item                    */
    long lab0;      /* its first label                   */
    long idx0;      /* first index record                */
    int n, nl;
} ck_file_t;

static uint64_t ck_get64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void ck_put64(unsigned char *p, int64_t v) { memcpy(p, &v, 8); }

/* Recompute the body and header checksums after a patch. */
static void ck_reseal(ck_file_t *cf) {
    uint32_t crc = rs_checksum32(cf->b + CK_HDR, (size_t)(cf->size - CK_HDR), 0);
    memcpy(cf->b + 72, &crc, 4);
    crc = rs_checksum32(cf->b, 176, 0);
    memcpy(cf->b + 176, &crc, 4);
}

static void ck_write(const ck_file_t *cf, const char *path) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(cf->b, 1, (size_t)cf->size, fp), (size_t)cf->size);
    fclose(fp);
}

/* Read path and parse it as above (asserting the layout). */
static void ck_parse(ck_file_t *cf, const char *path) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    cf->size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    cf->b = malloc((size_t)cf->size);
    assert_int_equal(fread(cf->b, 1, (size_t)cf->size, fp), (size_t)cf->size);
    fclose(fp);
    uint64_t blob = ck_get64(cf->b + 32), body = ck_get64(cf->b + 40),
             nevid = ck_get64(cf->b + 56);
    assert_int_equal(body, (uint64_t)(cf->size - CK_HDR));
    cf->key = CK_HDR + (long)blob;
    assert_int_equal(cf->b[cf->key], 1);
    cf->n = cf->b[cf->key + 2] | cf->b[cf->key + 3] << 8;
    cf->nl = cf->b[cf->key + 4] | cf->b[cf->key + 5] << 8;
    assert_true(cf->n > 0 && cf->nl > 0);
    /* format 2: the 24-byte head, then u32 partition + 1, u32 0 */
    long kh = cf->b[8] >= 2 ? 32 : 24;
    long items = cf->size - cf->key - kh - 16L * cf->nl - 64L * (long)nevid;
    assert_true(items > 0 && items % cf->n == 0);
    cf->isz = items / cf->n;
    cf->item0 = cf->key + kh;
    cf->lab0 = cf->item0 + cf->n * cf->isz;
    cf->idx0 = cf->lab0 + 16L * cf->nl;
    assert_int_equal(cf->b[cf->idx0], 2);
}

static void test_checkpoint_times(void **state) {
    (void)state;
    static const char *yaml =
        "features:\n"
        "  max_keys: 8\n"
        "  max_counterparties: 8\n"
        "  history: 8\n"
        "  labels_per_key: 4\n"
        "  label_index: 64\n"
        "  specs:\n"
        "    - {key: entity, window: 1d, label_delay: 1h,\n"
        "       aggs: [count, sum, fraud_count, since_last, velocity]}\n";
    rs_features_conf_t c;
    char err[512];
    rs_features_conf_init(&c);
    if (load_conf(yaml, &c, err, sizeof(err))) fail_msg("%s", err);
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    assert_non_null(f);
    float x[RS_FEATURES_MAX_DIM];
    char path[256], bad[256];
    ckpt_path(path, sizeof(path), "times");
    ckpt_path(bad, sizeof(bad), "times-bad");

    /* an empty engine's checkpoint (watermark INT64_MIN, no events) loads */
    assert_int_equal(rs_features_checkpoint_write(f, path, NULL, 0, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_features_checkpoint_read(f, path, NULL, NULL, err, sizeof(err)), RS_OK);

    /* one card, four events, two fraud labels */
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i);
        rs_event_t ev = mkev(id, "card-1", "m-1", T0 + i * MIN_MS, 10.0 + i);
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
    }
    rs_label_t lb = mklabel("e0", 1.0, T0 + 5 * MIN_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_OK);
    lb = mklabel("e2", 1.0, T0 + 6 * MIN_MS);
    assert_int_equal(rs_features_label(f, &lb), RS_OK);
    assert_int_equal(rs_features_checkpoint_write(f, path, NULL, 0, err, sizeof(err)), RS_OK);
    ck_file_t cf;
    ck_parse(&cf, path);
    assert_int_equal(cf.n, 4);
    assert_int_equal(cf.nl, 2);

    struct {
        long off;
        int64_t v;
        const char *what;
    } cases[] = {
        {24, INT64_MIN, "watermark"},             /* ub-615: after events */
        {24, CK_TMAX + 1, "watermark"},
        {24, -5, "watermark"},
        {cf.key + 16, -8646913483607638172LL, "last-seen time"}, /* ub-209 */
        {cf.key + 16, 0, "last-seen time"},
        {cf.item0 + 2 * cf.isz, INT64_MIN + 1, "item 2 event time"}, /* ub-476 */
        {cf.item0, CK_TMAX + 1, "item 0 event time"},
        {cf.lab0 + 16, INT64_MIN, "label 1 event time"},             /* ub-550 */
        {cf.lab0 + 8, INT64_MAX, "label 0 arrival time"},
        {cf.idx0 + 16, -T0, "index record"},
    };
    for (size_t k = 0; k < RS_ARRAY_LEN(cases); k++) {
        ck_file_t p = cf;
        p.b = malloc((size_t)cf.size);
        memcpy(p.b, cf.b, (size_t)cf.size);
        ck_put64(p.b + cases[k].off, cases[k].v);
        ck_reseal(&p);
        ck_write(&p, bad);
        free(p.b);
        rs_err_t e = rs_features_checkpoint_read(f, bad, NULL, NULL, err, sizeof(err));
        if (e != RS_ERR_CORRUPT || !strstr(err, cases[k].what) || !strstr(err, bad))
            fail_msg("case %zu (%s): %s: %s", k, cases[k].what, rs_err_str(e), err);
        rs_features_stats_t st;
        rs_features_stats(f, &st);
        assert_int_equal(st.events, 0);          /* reset, not half-loaded */
        assert_int_equal(st.entity_keys, 0);
    }

    /* an index record for a ring position twice leaves another live
     * position zeroed (event time 0): refused (fuzz_ckpt_file,
     * dup-index.ckpt.repair, failed the round trip) */
    {
        ck_file_t p = cf;
        p.b = malloc((size_t)cf.size);
        memcpy(p.b, cf.b, (size_t)cf.size);
        memcpy(p.b + cf.idx0 + 64 + 4, p.b + cf.idx0 + 4, 4); /* u32 pos */
        ck_reseal(&p);
        ck_write(&p, bad);
        free(p.b);
        rs_err_t e = rs_features_checkpoint_read(f, bad, NULL, NULL, err, sizeof(err));
        if (e != RS_ERR_CORRUPT || !strstr(err, "twice"))
            fail_msg("duplicate index record: %s: %s", rs_err_str(e), err);
    }

    /* every time at the bound: loads, and events and labels run clean */
    ck_put64(cf.b + 24, CK_TMAX);
    ck_put64(cf.b + cf.key + 16, CK_TMAX);
    for (int i = 0; i < cf.n; i++) ck_put64(cf.b + cf.item0 + i * cf.isz, CK_TMAX);
    for (int i = 0; i < 2 * cf.nl; i++) ck_put64(cf.b + cf.lab0 + 8 * i, CK_TMAX);
    ck_put64(cf.b + cf.idx0 + 16, CK_TMAX);
    ck_reseal(&cf);
    ck_write(&cf, bad);
    if (rs_features_checkpoint_read(f, bad, NULL, NULL, err, sizeof(err)))
        fail_msg("%s", err);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        rs_event_t ev = mkev(id, "card-1", "m-1", i ? T0 : CK_TMAX, 1.0);
        assert_int_equal(rs_features_process(f, &ev, x, NULL), RS_OK);
        for (int j = 0; j < rs_features_dim(f); j++) assert_true(isfinite(x[j]));
    }
    lb = mklabel("e1", 1.0, 0); /* arrives at the watermark */
    assert_int_equal(rs_features_label(f, &lb), RS_OK);
    /* and what it holds now is written and read back */
    assert_int_equal(rs_features_checkpoint_write(f, path, NULL, 0, err, sizeof(err)), RS_OK);
    if (rs_features_checkpoint_read(f, path, NULL, NULL, err, sizeof(err)))
        fail_msg("%s", err);
    free(cf.b);
    unlink(path);
    unlink(bad);
    rs_features_destroy(f);
}

/* ================================================== offline == online */

typedef struct rows_s {
    float *cur;
    int dim;
} rows_t;

static int rows_cb(void *opaque, const rs_event_t *ev, const float *x,
                   uint32_t flags) {
    rows_t *rw = opaque;
    (void)ev;
    (void)flags;
    memcpy(rw->cur, x, sizeof(float) * (size_t)rw->dim);
    rw->cur += RS_FEATURES_MAX_DIM;
    return 0;
}

static void test_offline_equals_online(void **state) {
    (void)state;
    static rs_features_conf_t c;
    static step_t steps[4000];
    char err[512];
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 1024;
    c.label_index = 65536;
    stream_cfg_t sc = {.seed = 99, .nev = 1500, .nent = 20, .ncp = 8,
                       .span = 15 * DAY_MS, .p_late = 0.05, .p_dup = 0.05,
                       .p_label = 0.2, .p_nocp = 0.1};
    int n = gen_stream(&sc, steps, 4000);
    /* labels go to their own file in label-time order; online applies
     * them at the same place the offline merge does: before the first
     * event whose time is later than the label time. */
    char epath[256], lpath[256];
    ckpt_path(epath, sizeof(epath), "ev.jsonl");
    ckpt_path(lpath, sizeof(lpath), "lab.jsonl");
    FILE *ef = fopen(epath, "w"), *lf = fopen(lpath, "w");
    static rs_label_t labs[4000];
    static rs_event_t evs[4000];
    int nl = 0, ne = 0;
    char line[RS_ENCODE_MAX];
    for (int i = 0; i < n; i++) {
        if (steps[i].is_label) {
            if (steps[i].lb.label_time_ms <= 0) continue;
            labs[nl++] = steps[i].lb;
        } else {
            evs[ne++] = steps[i].ev;
            rs_event_to_json(&steps[i].ev, line, sizeof(line));
            fprintf(ef, "%s\n", line);
        }
    }
    /* stable sort labels by time */
    for (int i = 1; i < nl; i++)
        for (int j = i; j > 0 && labs[j - 1].label_time_ms > labs[j].label_time_ms; j--) {
            rs_label_t tmp = labs[j];
            labs[j] = labs[j - 1];
            labs[j - 1] = tmp;
        }
    for (int i = 0; i < nl; i++) {
        rs_label_to_json(&labs[i], line, sizeof(line));
        fprintf(lf, "%s\n", line);
    }
    fclose(ef);
    fclose(lf);
    /* online */
    rs_features_t *on = rs_features_new(&c, err, sizeof(err));
    float *want = calloc((size_t)ne * RS_FEATURES_MAX_DIM, sizeof(float));
    int li = 0;
    for (int i = 0; i < ne; i++) {
        while (li < nl && labs[li].label_time_ms <= evs[i].event_time_ms)
            rs_features_label(on, &labs[li++]);
        rs_features_process(on, &evs[i], want + (size_t)i * RS_FEATURES_MAX_DIM, NULL);
    }
    /* offline, through the file reader */
    rs_features_t *off = rs_features_new(&c, err, sizeof(err));
    float *got = calloc((size_t)ne * RS_FEATURES_MAX_DIM, sizeof(float));
    rows_t rw = {got, rs_features_dim(off)};
    ef = fopen(epath, "r");
    lf = fopen(lpath, "r");
    rs_features_replay_t rp;
    memset(&rp, 0, sizeof(rp));
    rp.events = ef;
    rp.labels = lf;
    rp.row = rows_cb;
    rp.opaque = &rw;
    rs_features_replay_stats_t rst;
    if (rs_features_replay(off, &rp, &rst, err, sizeof(err))) fail_msg("%s", err);
    if (rst.bad_lines) fail_msg("bad lines: %s", rst.first_error);
    fclose(ef);
    fclose(lf);
    assert_int_equal(rst.events, ne);
    assert_int_equal(rst.labels, li); /* later labels: after the last event */
    assert_int_equal(rst.bad_lines, 0);
    int dim = rs_features_dim(on);
    for (int i = 0; i < ne; i++)
        assert_memory_equal(got + (size_t)i * RS_FEATURES_MAX_DIM,
                            want + (size_t)i * RS_FEATURES_MAX_DIM,
                            sizeof(float) * (size_t)dim);
    unlink(epath);
    unlink(lpath);
    rs_features_destroy(on);
    rs_features_destroy(off);

    /* A CSV label column: each positive visible at event time + delay (as
     * eval replays it), applied before the first event at or after that
     * time, ties in file order. */
    const int64_t delay = 2 * DAY_MS;
    c.label_maturity = delay;
    ckpt_path(epath, sizeof(epath), "ev.csv");
    ef = fopen(epath, "w");
    fprintf(ef, "id,type,entity_id,counterparty_id,event_time_ms,amount,label\n");
    static int pos[4000];
    for (int i = 0; i < ne; i++) {
        pos[i] = i % 7 == 3;
        evs[i] = mkev(evs[i].id, evs[i].entity_id, evs[i].counterparty_id,
                      evs[i].event_time_ms, (double)(float)evs[i].amount);
        fprintf(ef, "%s,card_tx,%s,%s,%lld,%.9g,%d\n", evs[i].id,
                evs[i].entity_id, evs[i].counterparty_id,
                (long long)evs[i].event_time_ms, evs[i].amount, pos[i]);
    }
    fclose(ef);
    on = rs_features_new(&c, err, sizeof(err));
    static int done[4000];
    memset(done, 0, sizeof(done));
    int applied = 0;
    for (int i = 0; i < ne; i++) {
        for (;;) { /* earliest pending visible label, first in on ties */
            int best = -1;
            for (int j = 0; j < i; j++)
                if (pos[j] && !done[j] &&
                    evs[j].event_time_ms + delay <= evs[i].event_time_ms &&
                    (best < 0 || evs[j].event_time_ms < evs[best].event_time_ms))
                    best = j;
            if (best < 0) break;
            done[best] = 1;
            rs_label_t lb = mklabel(evs[best].id, 1.0, evs[best].event_time_ms + delay);
            rs_features_label(on, &lb);
            applied++;
        }
        rs_features_process(on, &evs[i], want + (size_t)i * RS_FEATURES_MAX_DIM, NULL);
    }
    off = rs_features_new(&c, err, sizeof(err));
    rw.cur = got;
    rw.dim = rs_features_dim(off);
    ef = fopen(epath, "r");
    memset(&rp, 0, sizeof(rp));
    rp.events = ef;
    rp.format = 1;
    rp.column_labels = 1;
    rp.label_delay_ms = delay;
    rp.row = rows_cb;
    rp.opaque = &rw;
    if (rs_features_replay(off, &rp, &rst, err, sizeof(err))) fail_msg("%s", err);
    fclose(ef);
    assert_int_equal(rst.bad_lines, 0);
    assert_int_equal(rst.labels, applied);
    assert_true(applied > 50);
    for (int i = 0; i < ne; i++)
        if (memcmp(got + (size_t)i * RS_FEATURES_MAX_DIM,
                   want + (size_t)i * RS_FEATURES_MAX_DIM,
                   sizeof(float) * (size_t)dim))
            fail_msg("column labels: event %d differs", i);
    free(want);
    free(got);
    unlink(epath);
    rs_features_destroy(on);
    rs_features_destroy(off);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_card_preset_layout),
        cmocka_unit_test(test_sensor_fields_max),
        cmocka_unit_test(test_sensor_baselines),
        cmocka_unit_test(test_sensor_noise),
        cmocka_unit_test(test_sensor_noise_band),
        cmocka_unit_test(test_baseline_limit),
        cmocka_unit_test(test_baseline_learn_first),
        cmocka_unit_test(test_sensor_spread),
        cmocka_unit_test(test_constant_features),
        cmocka_unit_test(test_current_excluded_and_leakage),
        cmocka_unit_test(test_ttl_eviction_cap),
        cmocka_unit_test(test_grammar_errors),
        cmocka_unit_test(test_window_boundaries),
        cmocka_unit_test(test_calendar_timezones),
        cmocka_unit_test(test_maturity_buckets),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_reason_ref),
        cmocka_unit_test(test_reference_all_aggs),
        cmocka_unit_test(test_reference_presets),
        cmocka_unit_test(test_checkpoint_roundtrip),
        cmocka_unit_test(test_checkpoint_times),
        cmocka_unit_test(test_offline_equals_online),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
