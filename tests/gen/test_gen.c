/* test_gen.c -- unit tests of the synthetic stream generator (ops/gen).
 *
 * Each pattern is checked by its defining property, measured from the
 * stream itself (as a model would see it), not from generator internals:
 * e.g. a takeover amount is compared with the card's genuine median
 * computed from its genuine events.  The last test prints the counts and
 * the throughput of the default configurations (informational).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/gen/gen.h"

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define MIN_MS 60000LL

/* ------------------------------------------------------------ collecting */

typedef struct tev_s {
    int64_t t;
    double amount;
    uint32_t ent, cp, episode;
    uint8_t fraud, pattern;
    char country[3];
    double val[8];          /* sensors */
} tev_t;

typedef struct tlb_s {
    int64_t t;
    uint64_t no;            /* event number (index + 1) */
    uint32_t ent, episode;
    int value, pattern;
} tlb_t;

typedef struct tstream_s {
    tev_t *ev;
    size_t nev, evcap;
    tlb_t *lb;
    size_t nlb, lbcap;
    rs_gen_stats_t st;
    uint64_t hash;          /* over every record's content */
    int64_t start_ms;
} tstream_t;

static uint64_t hash_str(uint64_t h, const char *s) {
    return rs_hash64_seed(s, strlen(s) + 1, h);
}
static uint64_t hash_val(uint64_t h, const void *p, size_t n) {
    return rs_hash64_seed(p, n, h);
}

static uint64_t rec_hash(uint64_t h, const rs_gen_rec_t *rec) {
    h = hash_val(h, &rec->kind, sizeof(rec->kind));
    h = hash_val(h, &rec->emit_time_ms, sizeof(rec->emit_time_ms));
    h = hash_val(h, &rec->is_fraud, sizeof(rec->is_fraud));
    h = hash_val(h, &rec->pattern, sizeof(rec->pattern));
    if (rec->kind == RS_GEN_LABEL) {
        h = hash_str(h, rec->lb.event_id);
        h = hash_str(h, rec->lb.entity_id);
        h = hash_val(h, &rec->lb.value, sizeof(double));
        return hash_val(h, &rec->lb.label_time_ms, sizeof(int64_t));
    }
    const rs_event_t *ev = &rec->ev;
    h = hash_str(h, ev->id);
    h = hash_str(h, ev->type);
    h = hash_str(h, ev->entity_id);
    h = hash_str(h, ev->counterparty_id);
    h = hash_val(h, &ev->event_time_ms, sizeof(int64_t));
    h = hash_val(h, &ev->amount, sizeof(double));
    for (int i = 0; i < ev->n_numeric; i++) {
        h = hash_str(h, ev->numeric[i].name);
        h = hash_val(h, &ev->numeric[i].value, sizeof(double));
    }
    for (int i = 0; i < ev->n_categ; i++) {
        h = hash_str(h, ev->categ[i].name);
        h = hash_str(h, ev->categ[i].value);
    }
    return h;
}

static uint32_t id_num(const char *s) {
    const char *p = strrchr(s, '-');
    return p ? (uint32_t)strtoul(p + 1, NULL, 10) : 0;
}

static rs_gen_conf_t conf_cards(int64_t entities, int days) {
    rs_gen_conf_t c;
    rs_gen_conf_defaults(&c);
    c.entities = entities;
    c.duration_ms = days * DAY_MS;
    return c;
}

static rs_gen_conf_t conf_sensors(int64_t machines, int days) {
    rs_gen_conf_t c;
    rs_gen_conf_defaults(&c);
    c.mode = RS_GEN_MODE_SENSORS;
    c.entities = machines;
    c.duration_ms = days * DAY_MS;
    return c;
}

/* Run a generator to the end, checking the ordering invariants on the
 * way, and keep a compact copy of every record. */
static void collect(const rs_gen_conf_t *conf, tstream_t *s) {
    char errstr[256];
    memset(s, 0, sizeof(*s));
    rs_gen_t *g = rs_gen_new(conf, errstr, sizeof(errstr));
    assert_non_null(g);
    rs_time_parse(conf->start_time, strlen(conf->start_time), &s->start_ms);
    rs_gen_rec_t *rec = malloc(sizeof(*rec));
    int64_t last = INT64_MIN;
    int sensors = conf->mode == RS_GEN_MODE_SENSORS;
    uint64_t h = 0;
    while (rs_gen_next(g, rec)) {
        h = rec_hash(h, rec);
        assert_true(rec->emit_time_ms >= last);
        last = rec->emit_time_ms;
        assert_int_equal(rec->pattern != 0, rec->is_fraud != 0);
        if (rec->kind == RS_GEN_EVENT) {
            const rs_event_t *ev = &rec->ev;
            assert_int_equal(ev->event_time_ms, rec->emit_time_ms);
            assert_true(ev->event_time_ms >= s->start_ms);
            if (conf->duration_ms)
                assert_true(ev->event_time_ms <
                            s->start_ms + conf->duration_ms);
            if (s->nev == s->evcap) {
                s->evcap = s->evcap ? s->evcap * 2 : 65536;
                s->ev = realloc(s->ev, s->evcap * sizeof(*s->ev));
            }
            tev_t *e = &s->ev[s->nev++];
            memset(e, 0, sizeof(*e));
            /* Ids are consecutive numbers in emission order. */
            assert_int_equal(id_num(ev->id), s->nev);
            assert_string_equal(ev->type, sensors ? "sensor" : "card_tx");
            e->t = ev->event_time_ms;
            e->amount = ev->amount;
            e->ent = id_num(ev->entity_id);
            e->cp = id_num(ev->counterparty_id);
            e->fraud = (uint8_t)rec->is_fraud;
            e->pattern = (uint8_t)rec->pattern;
            e->episode = rec->episode;
            if (sensors) {
                for (int i = 0; i < ev->n_numeric && i < 8; i++)
                    e->val[i] = ev->numeric[i].value;
            } else {
                const char *c = rs_event_categ(ev, "country");
                assert_non_null(c);
                memcpy(e->country, c, 2);
                assert_non_null(rs_event_categ(ev, "mcc"));
                assert_non_null(rs_event_categ(ev, "channel"));
                double hr = rs_event_numeric(ev, "hour_of_day");
                assert_true(hr >= 0 && hr < 24);
                assert_true(ev->amount > 0);
            }
        } else {
            if (s->nlb == s->lbcap) {
                s->lbcap = s->lbcap ? s->lbcap * 2 : 4096;
                s->lb = realloc(s->lb, s->lbcap * sizeof(*s->lb));
            }
            tlb_t *l = &s->lb[s->nlb++];
            l->t = rec->lb.label_time_ms;
            l->no = id_num(rec->lb.event_id);
            l->ent = id_num(rec->lb.entity_id);
            l->value = (int)rec->lb.value;
            l->pattern = rec->pattern;
            l->episode = rec->episode;
        }
    }
    assert_int_equal(rs_gen_next(g, rec), 0);
    rs_gen_stats(g, &s->st);
    assert_int_equal(s->st.events, s->nev);
    assert_int_equal(s->st.labels, s->nlb);
    s->hash = h;
    free(rec);
    rs_gen_destroy(g);
}

static void stream_free(tstream_t *s) {
    free(s->ev);
    free(s->lb);
    memset(s, 0, sizeof(*s));
}

/* The cards stream shared by several tests (built once). */
static tstream_t g_cards;
static int g_cards_ok;
static const tstream_t *cards_stream(void) {
    if (!g_cards_ok) {
        rs_gen_conf_t c = conf_cards(5000, 30);
        collect(&c, &g_cards);
        g_cards_ok = 1;
    }
    return &g_cards;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------ conf / api */

static void test_conf(void **state) {
    (void)state;
    rs_gen_conf_t c;
    char errstr[256];
    rs_gen_conf_defaults(&c);
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.mode, RS_GEN_MODE_CARDS);
    assert_int_equal(c.duration_ms, 30 * DAY_MS);
    assert_int_equal(c.label_delay_ms, 3 * DAY_MS);
    assert_true(c.label_jitter == 0.5);
    assert_int_equal(c.negative_labels, 0);
    assert_int_equal(c.drain_labels, 1);
    assert_string_equal(c.start_time, "2026-01-01T00:00:00Z");
    assert_int_equal(c.sensors, 4);
    assert_int_equal(c.warmup_ms, DAY_MS);

    assert_int_equal(rs_gen_conf_set(&c, "entities", "500", errstr,
                                     sizeof(errstr)), RS_OK);
    assert_int_equal(c.entities, 500);
    assert_int_equal(rs_gen_conf_set(&c, "label_delay", "7d", errstr,
                                     sizeof(errstr)), RS_OK);
    assert_int_equal(c.label_delay_ms, 7 * DAY_MS);
    assert_int_equal(rs_gen_conf_set(&c, "mode", "sensors", errstr,
                                     sizeof(errstr)), RS_OK);
    assert_int_equal(c.mode, RS_GEN_MODE_SENSORS);
    assert_int_equal(rs_gen_conf_set(&c, "no_such_key", "1", errstr,
                                     sizeof(errstr)), RS_ERR_CONFIG);
    assert_non_null(strstr(errstr, "no_such_key"));
    assert_int_equal(rs_gen_conf_set(&c, "label_jitter", "2", errstr,
                                     sizeof(errstr)), RS_ERR_CONFIG);
    assert_true(c.label_jitter == 0.5);     /* unchanged on error */
    assert_int_equal(c.entities, 500);

    /* Every table row has a description and a parseable default (the
     * defaults above came from the table). */
    for (int i = 0; i < rs_gen_conf_nfields; i++) {
        assert_non_null(rs_gen_conf_fields[i].desc);
        assert_non_null(rs_gen_conf_fields[i].def);
    }

    /* Programmatic misuse is caught by rs_gen_new. */
    rs_gen_conf_defaults(&c);
    c.mode = RS_GEN_MODE_SENSORS;
    c.sensors = 9;
    assert_null(rs_gen_new(&c, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "sensors"));
    rs_gen_conf_defaults(&c);
    strcpy(c.start_time, "yesterday");
    assert_null(rs_gen_new(&c, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "start_time"));
    rs_gen_conf_defaults(&c);
    c.label_jitter = 1.5;
    assert_null(rs_gen_new(&c, errstr, sizeof(errstr)));
    rs_gen_destroy(NULL);

    assert_string_equal(rs_gen_pattern_name(0), "none");
    assert_string_equal(rs_gen_pattern_name(RS_GEN_PAT_CARD_TESTING),
                        "card_testing");
    assert_string_equal(rs_gen_pattern_name(RS_GEN_PAT_TAKEOVER),
                        "account_takeover");
    assert_string_equal(rs_gen_pattern_name(99), "unknown");
}

/* ---------------------------------------------------------- determinism */

static void test_determinism(void **state) {
    (void)state;
    tstream_t a, b;
    rs_gen_conf_t c = conf_cards(2000, 10);
    collect(&c, &a);
    collect(&c, &b);
    assert_true(a.nev > 10000);
    assert_int_equal(a.nev, b.nev);
    assert_int_equal(a.nlb, b.nlb);
    assert_true(a.hash == b.hash);
    stream_free(&b);
    c.seed = 43;
    collect(&c, &b);
    assert_true(a.hash != b.hash);
    stream_free(&b);

    /* The genuine background does not depend on the fraud settings. */
    rs_gen_conf_t c0 = conf_cards(2000, 10);
    c0.card_testing_rate = c0.takeover_rate = 0;
    c0.compromised_rate = c0.velocity_rate = 0;
    collect(&c0, &b);
    assert_int_equal(b.st.frauds, 0);
    assert_int_equal(b.nlb, 0);
    size_t j = 0;
    for (size_t i = 0; i < a.nev; i++) {
        if (a.ev[i].fraud) continue;
        assert_true(j < b.nev);
        assert_int_equal(a.ev[i].t, b.ev[j].t);
        assert_int_equal(a.ev[i].ent, b.ev[j].ent);
        assert_int_equal(a.ev[i].cp, b.ev[j].cp);
        assert_true(a.ev[i].amount == b.ev[j].amount);
        j++;
    }
    assert_int_equal(j, b.nev);
    stream_free(&a);
    stream_free(&b);

    rs_gen_conf_t s = conf_sensors(20, 10);
    collect(&s, &a);
    collect(&s, &b);
    assert_true(a.nev > 50000);
    assert_true(a.hash == b.hash);
    stream_free(&a);
    stream_free(&b);
}

/* --------------------------------------------------------------- labels */

static void check_labels(const tstream_t *s, const rs_gen_conf_t *c,
                         int negatives) {
    char *seen = calloc(s->nev + 1, 1);
    double d = (double)c->label_delay_ms, j = c->label_jitter;
    size_t npos = 0;
    for (size_t i = 0; i < s->nlb; i++) {
        const tlb_t *l = &s->lb[i];
        assert_true(l->no >= 1 && l->no <= s->nev);
        const tev_t *e = &s->ev[l->no - 1];
        assert_int_equal(seen[l->no], 0);   /* one label per event */
        seen[l->no] = 1;
        assert_int_equal(l->value, e->fraud);
        assert_int_equal(l->pattern, e->pattern);
        assert_int_equal(l->episode, e->episode);
        assert_int_equal(l->ent, e->ent);
        double lag = (double)(l->t - e->t);
        assert_true(lag >= d * (1 - j) - 1 && lag <= d * (1 + j) + 1);
        npos += l->value == 1;
        if (!negatives) assert_int_equal(l->value, 1);
    }
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].fraud || negatives) assert_int_equal(seen[i + 1], 1);
    assert_int_equal(npos, s->st.frauds);
    free(seen);
}

static void test_labels(void **state) {
    (void)state;
    const tstream_t *s = cards_stream();
    rs_gen_conf_t c = conf_cards(5000, 30);
    check_labels(s, &c, 0);
    assert_int_equal(s->nlb, s->st.frauds);

    tstream_t n;
    c = conf_cards(1000, 10);
    c.negative_labels = 1;
    c.label_delay_ms = 2 * DAY_MS;
    c.label_jitter = 0.25;
    collect(&c, &n);
    assert_int_equal(n.nlb, n.nev);
    check_labels(&n, &c, 1);
    stream_free(&n);

    /* Without draining, nothing is emitted after the last event time. */
    c = conf_cards(1000, 10);
    c.drain_labels = 0;
    collect(&c, &n);
    for (size_t i = 0; i < n.nlb; i++)
        assert_true(n.lb[i].t < n.start_ms + 10 * DAY_MS);
    assert_true(n.nlb < n.st.frauds);
    stream_free(&n);

    /* max_events stops the events exactly there. */
    c = conf_cards(1000, 0);
    c.max_events = 12345;
    collect(&c, &n);
    assert_int_equal(n.nev, 12345);
    assert_int_equal(n.nlb, n.st.frauds);
    stream_free(&n);
}

/* ------------------------------------------------------------- patterns */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Per-card index of its events (in time order) and genuine medians. */
typedef struct tcards_s {
    size_t *off, *idx;      /* events of card c: idx[off[c]..off[c+1]) */
    double *median;         /* median genuine amount, NAN if < 5 */
    char (*home)[3];        /* most frequent genuine country */
    uint32_t n;
} tcards_t;

static void cards_index(const tstream_t *s, tcards_t *tc) {
    uint32_t n = 0;
    for (size_t i = 0; i < s->nev; i++) n = RS_MAX(n, s->ev[i].ent + 1);
    tc->n = n;
    tc->off = calloc(n + 1, sizeof(size_t));
    tc->idx = malloc(s->nev * sizeof(size_t));
    tc->median = malloc(n * sizeof(double));
    tc->home = calloc(n, 3);
    for (size_t i = 0; i < s->nev; i++) tc->off[s->ev[i].ent + 1]++;
    for (uint32_t c = 0; c < n; c++) tc->off[c + 1] += tc->off[c];
    size_t *pos = malloc((n + 1) * sizeof(size_t));
    memcpy(pos, tc->off, (n + 1) * sizeof(size_t));
    for (size_t i = 0; i < s->nev; i++) tc->idx[pos[s->ev[i].ent]++] = i;
    free(pos);
    double *tmp = malloc(s->nev * sizeof(double));
    for (uint32_t c = 0; c < n; c++) {
        size_t k = 0;
        char best[3] = "";
        int bestn = 0;
        for (size_t a = tc->off[c]; a < tc->off[c + 1]; a++) {
            const tev_t *e = &s->ev[tc->idx[a]];
            if (e->fraud) continue;
            tmp[k++] = e->amount;
            int cnt = 0;
            for (size_t b = tc->off[c]; b < tc->off[c + 1]; b++) {
                const tev_t *f = &s->ev[tc->idx[b]];
                cnt += !f->fraud && !memcmp(f->country, e->country, 2);
            }
            if (cnt > bestn) {
                bestn = cnt;
                memcpy(best, e->country, 3);
            }
        }
        memcpy(tc->home[c], best, 3);
        if (k < 5) {
            tc->median[c] = NAN;
            continue;
        }
        qsort(tmp, k, sizeof(double), cmp_double);
        tc->median[c] = tmp[k / 2];
    }
    free(tmp);
}

static void cards_index_free(tcards_t *tc) {
    free(tc->off);
    free(tc->idx);
    free(tc->median);
    free(tc->home);
}

static void test_fraud_rate(void **state) {
    (void)state;
    const tstream_t *s = cards_stream();
    double rate = (double)s->st.frauds / (double)s->st.events;
    printf("# cards 5000 x 30d: %zu events, fraud rate %.4f\n", s->nev, rate);
    assert_true(rate >= 0.005 && rate <= 0.02);
    /* Warm-up: card histories build for a day before any fraud. */
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].fraud) assert_true(s->ev[i].t >= s->start_ms + DAY_MS);
    for (int p = RS_GEN_PAT_CARD_TESTING; p <= RS_GEN_PAT_VELOCITY; p++) {
        printf("#   %-26s %6llu events %5llu episodes\n",
               rs_gen_pattern_name(p),
               (unsigned long long)s->st.fraud_events[p],
               (unsigned long long)s->st.episodes[p]);
        assert_true(s->st.fraud_events[p] > 100);
        assert_true(s->st.episodes[p] > 5);
        /* Each pattern within 2x of its configured share (0.2-0.3 %). */
        double share = (double)s->st.fraud_events[p] / (double)s->nev;
        assert_true(share > 0.001 && share < 0.006);
    }
}

/* Events of each episode of pattern p, in time order: calls fn per
 * episode with the event indices. */
typedef void (*episode_fn)(const tstream_t *s, const tcards_t *tc,
                           const size_t *ix, size_t n, void *arg);

static void for_episodes(const tstream_t *s, const tcards_t *tc, int p,
                         episode_fn fn, void *arg) {
    uint32_t maxep = 0;
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].pattern == p) maxep = RS_MAX(maxep, s->ev[i].episode);
    size_t *cnt = calloc(maxep + 2, sizeof(size_t));
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].pattern == p) cnt[s->ev[i].episode + 1]++;
    for (uint32_t e = 0; e <= maxep; e++) cnt[e + 1] += cnt[e];
    size_t *ix = malloc((cnt[maxep + 1] + 1) * sizeof(size_t));
    size_t *pos = malloc((maxep + 2) * sizeof(size_t));
    memcpy(pos, cnt, (maxep + 2) * sizeof(size_t));
    for (size_t i = 0; i < s->nev; i++)
        if (s->ev[i].pattern == p) ix[pos[s->ev[i].episode]++] = i;
    for (uint32_t e = 1; e <= maxep; e++)
        if (cnt[e + 1] > cnt[e]) fn(s, tc, ix + cnt[e], cnt[e + 1] - cnt[e], arg);
    free(cnt);
    free(ix);
    free(pos);
}

typedef struct tcount_s {
    size_t episodes, events, good, good2, good3;
} tcount_t;

static void check_testing(const tstream_t *s, const tcards_t *tc,
                          const size_t *ix, size_t n, void *arg) {
    (void)tc;
    tcount_t *k = arg;
    k->episodes++;
    size_t small = 0;
    uint32_t merch[32];
    size_t nm = 0;
    int64_t t0 = s->ev[ix[0]].t, t1 = t0;
    for (size_t a = 0; a < n; a++) {
        const tev_t *e = &s->ev[ix[a]];
        assert_int_equal(e->ent, s->ev[ix[0]].ent);
        if (e->amount <= 3.0) {
            assert_true(e->amount >= 0.5);
            small++;
            t1 = e->t;
            int dup = 0;
            for (size_t j = 0; j < nm; j++) dup |= merch[j] == e->cp;
            if (!dup && nm < 32) merch[nm++] = e->cp;
        } else {
            /* The large purchase comes last. */
            assert_int_equal(a, n - 1);
            k->good2++;
        }
    }
    assert_true(small >= 5 && small <= 20);
    assert_true(nm >= 1 && nm <= 3);
    /* A burst: the tiny amounts within minutes (mean gap 20 s). */
    assert_true(t1 - t0 <= 60 * MIN_MS);
    k->good += t1 - t0 <= 15 * MIN_MS;
}

static void check_takeover(const tstream_t *s, const tcards_t *tc,
                           const size_t *ix, size_t n, void *arg) {
    tcount_t *k = arg;
    uint32_t c = s->ev[ix[0]].ent;
    k->episodes++;
    assert_true(s->ev[ix[n - 1]].t - s->ev[ix[0]].t <= 24 * HOUR_MS);
    for (size_t a = 0; a < n; a++) {
        const tev_t *e = &s->ev[ix[a]];
        assert_int_equal(e->ent, c);
        k->events++;
        /* New counterparty: never in the card's earlier history. */
        int seen = 0;
        for (size_t b = tc->off[c]; b < tc->off[c + 1]; b++) {
            const tev_t *f = &s->ev[tc->idx[b]];
            if (f->t >= e->t && tc->idx[b] >= ix[a]) break;
            seen |= f->cp == e->cp;
        }
        k->good += !seen;
        k->good2 += memcmp(e->country, tc->home[c], 2) != 0;
        if (!isnan(tc->median[c])) {
            k->good3 += e->amount >= 4.0 * tc->median[c];
        } else {
            k->good3++;
        }
    }
}

static void check_compromised(const tstream_t *s, const tcards_t *tc,
                              const size_t *ix, size_t n, void *arg) {
    tcount_t *k = arg;
    k->episodes++;
    /* Victims and their first fraud time. */
    uint32_t vic[64];
    int64_t first[64];
    size_t nv = 0;
    for (size_t a = 0; a < n; a++) {
        const tev_t *e = &s->ev[ix[a]];
        size_t j = 0;
        while (j < nv && vic[j] != e->ent) j++;
        if (j == nv) {
            assert_true(nv < 64);
            vic[nv] = e->ent;
            first[nv++] = e->t;
        }
    }
    k->good2 += nv >= 3;  /* fewer only when the stream ended first */
    /* Merchants each victim visited genuinely >= 12 h before its first
     * fraud; the breached merchant must be common to all victims. */
    uint32_t *common = NULL;
    size_t ncommon = 0;
    for (size_t j = 0; j < nv; j++) {
        uint32_t *m = malloc((tc->off[vic[j] + 1] - tc->off[vic[j]] + 1) *
                             sizeof(uint32_t));
        size_t nm = 0;
        for (size_t b = tc->off[vic[j]]; b < tc->off[vic[j] + 1]; b++) {
            const tev_t *f = &s->ev[tc->idx[b]];
            if (!f->fraud && f->t <= first[j] - 12 * HOUR_MS) m[nm++] = f->cp;
        }
        qsort(m, nm, sizeof(uint32_t), cmp_u32);
        if (j == 0) {
            common = m;
            ncommon = nm;
            continue;
        }
        size_t w = 0;
        for (size_t a = 0; a < ncommon; a++)
            if (bsearch(&common[a], m, nm, sizeof(uint32_t), cmp_u32))
                common[w++] = common[a];
        ncommon = w;
        free(m);
    }
    assert_true(ncommon >= 1);
    /* ...and is never where the stolen data is used. */
    int at_breach = 0;
    for (size_t a = 0; a < n; a++) {
        int all = 1;
        for (size_t j = 0; j < ncommon; j++)
            if (s->ev[ix[a]].cp != common[j]) all = 0;
        at_breach |= all && ncommon == 1;
    }
    assert_false(at_breach);
    k->events += n;
    k->good += nv;
    free(common);
}

static void check_velocity(const tstream_t *s, const tcards_t *tc,
                           const size_t *ix, size_t n, void *arg) {
    tcount_t *k = arg;
    uint32_t c = s->ev[ix[0]].ent;
    k->episodes++;
    assert_true(n >= 8 && n <= 25);
    assert_true(s->ev[ix[n - 1]].t - s->ev[ix[0]].t <= 8 * HOUR_MS);
    size_t distinct = 0;
    double amounts[32];
    for (size_t a = 0; a < n; a++) {
        int dup = 0;
        for (size_t b = 0; b < a; b++) dup |= s->ev[ix[b]].cp == s->ev[ix[a]].cp;
        distinct += !dup;
        amounts[a] = s->ev[ix[a]].amount;
    }
    assert_true(distinct * 2 >= n);
    qsort(amounts, n, sizeof(double), cmp_double);
    if (!isnan(tc->median[c])) {
        double r = amounts[n / 2] / tc->median[c];
        k->good += r > 0.2 && r < 5.0;    /* normal-ish amounts */
    } else {
        k->good++;
    }
}

static void test_patterns(void **state) {
    (void)state;
    const tstream_t *s = cards_stream();
    tcards_t tc;
    cards_index(s, &tc);
    tcount_t k;

    memset(&k, 0, sizeof(k));
    for_episodes(s, &tc, RS_GEN_PAT_CARD_TESTING, check_testing, &k);
    printf("# card testing: %zu episodes, %zu bursts within 15 min, %zu "
           "followed by a large purchase\n", k.episodes, k.good, k.good2);
    assert_int_equal(k.episodes, s->st.episodes[RS_GEN_PAT_CARD_TESTING]);
    assert_true(k.good * 10 >= k.episodes * 9);
    assert_true(k.good2 > 0 && k.good2 < k.episodes);

    memset(&k, 0, sizeof(k));
    for_episodes(s, &tc, RS_GEN_PAT_TAKEOVER, check_takeover, &k);
    printf("# takeover: %zu episodes, %zu events: %zu new merchants, %zu "
           "abroad, %zu >= 4x card median\n", k.episodes, k.events, k.good,
           k.good2, k.good3);
    assert_true(k.good * 100 >= k.events * 97);
    assert_true(k.good2 * 100 >= k.events * 95);
    assert_true(k.good3 * 100 >= k.events * 85);

    memset(&k, 0, sizeof(k));
    for_episodes(s, &tc, RS_GEN_PAT_COMPROMISED, check_compromised, &k);
    printf("# compromised: %zu breaches, %zu victims, %zu fraud events\n",
           k.episodes, k.good, k.events);
    assert_true(k.episodes > 5);
    assert_true(k.good2 * 10 >= k.episodes * 8);

    memset(&k, 0, sizeof(k));
    for_episodes(s, &tc, RS_GEN_PAT_VELOCITY, check_velocity, &k);
    printf("# velocity: %zu episodes, %zu with normal-ish amounts\n",
           k.episodes, k.good);
    assert_true(k.good * 10 >= k.episodes * 9);

    /* Genuine trips exist, so "abroad" alone is not fraud. */
    size_t abroad = 0, genuine = 0;
    for (size_t i = 0; i < s->nev; i++) {
        const tev_t *e = &s->ev[i];
        if (e->fraud) continue;
        genuine++;
        abroad += memcmp(e->country, tc.home[e->ent], 2) != 0;
    }
    printf("# genuine abroad: %.2f %%\n", 100.0 * abroad / genuine);
    assert_true(abroad > s->st.fraud_events[RS_GEN_PAT_TAKEOVER]);
    cards_index_free(&tc);
}

/* -------------------------------------------------------------- sensors */

static void test_sensors(void **state) {
    (void)state;
    tstream_t s;
    rs_gen_conf_t c = conf_sensors(40, 90);
    c.label_jitter = 0;
    collect(&c, &s);
    const int64_t window = c.failure_window_ms;
    const int64_t delay = c.failure_label_delay_ms;
    size_t nfail = 0, drifted = 0, control_hi = 0, control_n = 0;
    assert_true(s.st.failures > 20);

    /* Failures from the labels: failure time = label time - delay. */
    for (size_t i = 0; i < s.nlb; i++) {
        assert_int_equal(s.lb[i].value, 1);
        const tev_t *e = &s.ev[s.lb[i].no - 1];
        int64_t fail = s.lb[i].t - delay;
        assert_true(e->fraud);
        assert_true(e->t > fail - window && e->t <= fail);
        assert_true(s.lb[i].pattern >= RS_GEN_PAT_BEARING_WEAR &&
                    s.lb[i].pattern <= RS_GEN_PAT_PRESSURE_LEAK);
    }
    assert_int_equal(s.nlb, s.st.frauds);

    /* Per failure (episode): every reading of the machine in the window
     * is positive, none right before; no reading during the repair; the
     * last 6 h differ from the healthy baseline of the machine. */
    uint32_t maxep = 0;
    for (size_t i = 0; i < s.nlb; i++) maxep = RS_MAX(maxep, s.lb[i].episode);
    int64_t *fail = calloc(maxep + 1, sizeof(int64_t));
    uint32_t *mach = calloc(maxep + 1, sizeof(uint32_t));
    for (size_t i = 0; i < s.nlb; i++) {
        fail[s.lb[i].episode] = s.lb[i].t - delay;
        mach[s.lb[i].episode] = s.lb[i].ent;
    }
    for (uint32_t ep = 1; ep <= maxep; ep++) {
        if (!fail[ep]) continue;
        int64_t f = fail[ep];
        uint32_t m = mach[ep];
        if (f >= s.start_ms + c.duration_ms) continue;  /* after the end */
        /* Drift: the last 6 h against the same clock hours 3 days earlier
         * (before any drift: drift_max = 3d), so the daily cycle cancels;
         * control: 4 days earlier against 3 days earlier, both healthy. */
        const int64_t w6 = 6 * HOUR_MS, d3 = c.drift_max_ms, d4 = d3 + DAY_MS;
        double base_sum[8] = {0}, base_sq[8] = {0};
        double w1[8] = {0}, w0[8] = {0}, wc[8] = {0};
        size_t nb = 0, n1 = 0, n0 = 0, nc = 0;
        int64_t prev_end = INT64_MIN;
        for (uint32_t e2 = 1; e2 <= maxep; e2++)
            if (fail[e2] && mach[e2] == m && fail[e2] < f)
                prev_end = RS_MAX(prev_end, fail[e2] + c.repair_ms);
        for (size_t i = 0; i < s.nev; i++) {
            const tev_t *e = &s.ev[i];
            if (e->ent != m) continue;
            if (e->t > f && e->t < f + c.repair_ms)
                fail_msg("reading during the repair");
            if (e->t > f - window && e->t <= f) {
                assert_true(e->fraud);
                assert_int_equal(e->episode, ep);
            }
            if (e->t <= f - window && e->t > f - window - DAY_MS &&
                e->t >= prev_end)
                assert_false(e->fraud);
            if (e->t < prev_end) continue;
            if (e->t < f - d3) {            /* healthy baseline */
                for (int k = 0; k < 4; k++) {
                    base_sum[k] += e->val[k];
                    base_sq[k] += e->val[k] * e->val[k];
                }
                nb++;
            }
            double *w = NULL;
            if (e->t > f - w6 && e->t <= f) w = w1, n1++;
            else if (e->t > f - d3 - w6 && e->t <= f - d3) w = w0, n0++;
            else if (e->t > f - d4 - w6 && e->t <= f - d4) w = wc, nc++;
            if (w)
                for (int k = 0; k < 4; k++) w[k] += e->val[k];
        }
        if (nb < 200 || n1 < 10 || n0 < 10 || prev_end > f - d3 - w6)
            continue;
        nfail++;
        double zmax = 0, zctl = 0;
        for (int k = 0; k < 4; k++) {
            double mu = base_sum[k] / nb;
            double sd = sqrt(base_sq[k] / nb - mu * mu);
            zmax = fmax(zmax, fabs(w1[k] / n1 - w0[k] / n0) / sd);
            if (nc >= 10) zctl = fmax(zctl, fabs(wc[k] / nc - w0[k] / n0) / sd);
        }
        drifted += zmax > 1.5;
        if (nc >= 10 && prev_end <= f - d4 - w6) {
            control_n++;
            control_hi += zctl > 1.5;
        }
    }
    printf("# sensors 40 x 90d: %zu events, %llu failures, positives %.2f %%"
           "; drift visible before %zu of %zu failures; control windows "
           "above threshold %zu of %zu\n",
           s.nev, (unsigned long long)s.st.failures,
           100.0 * s.st.frauds / s.nev, drifted, nfail, control_hi,
           control_n);
    assert_true(nfail > 20);
    assert_true(drifted * 20 >= nfail * 19);
    assert_true(control_hi * 10 <= control_n);
    free(fail);
    free(mach);
    stream_free(&s);
}

/* Degenerate worlds must still work: one card and one merchant (every
 * pick list but `all` is empty), one machine with one sensor and no drift
 * phase, an unlimited stream cut by max_events without draining. */
static void test_tiny(void **state) {
    (void)state;
    tstream_t s;
    rs_gen_conf_t c = conf_cards(1, 60);
    c.counterparties = 1;
    c.tx_per_day = 50;
    c.card_testing_rate = c.takeover_rate = 0.2;
    c.compromised_rate = c.velocity_rate = 0.05;
    collect(&c, &s);
    assert_true(s.nev > 1000);
    assert_true(s.st.frauds > 0);
    stream_free(&s);

    c = conf_sensors(1, 30);
    c.counterparties = 1;
    c.sensors = 1;
    c.drift_min_ms = c.drift_max_ms = 0;
    c.mtbf_ms = DAY_MS;
    c.negative_labels = 1;
    collect(&c, &s);
    assert_true(s.st.failures > 5);
    assert_int_equal(s.nlb, s.nev);
    stream_free(&s);

    c = conf_cards(100, 0);
    c.max_events = 5000;
    c.drain_labels = 0;
    collect(&c, &s);
    assert_int_equal(s.nev, 5000);
    for (size_t i = 0; i < s.nlb; i++)
        assert_true(s.lb[i].t <= s.ev[s.nev - 1].t);
    stream_free(&s);
}

/* gen.conditions: every reading carries its regime's operating settings
 * setting1..3 after the sensors (CSV header too): 3 regimes give 3
 * well-separated setting1 values (0, 10, 20 kft, noise sd 0.003) and a
 * machine keeps its regime for about a day. */
static void test_settings(void **state) {
    (void)state;
    rs_gen_conf_t c = conf_sensors(10, 20);
    c.conditions = 3;
    char errstr[256];
    rs_gen_t *g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_non_null(g);
    assert_non_null(strstr(rs_gen_csv_header(g), ",rpm,setting1,setting2,setting3,"));
    rs_gen_rec_t *rec = malloc(sizeof(*rec));
    long seen[3] = {0, 0, 0}, same = 0, pairs = 0;
    int last[10];
    for (int i = 0; i < 10; i++) last[i] = -1;
    while (rs_gen_next(g, rec)) {
        if (rec->kind != RS_GEN_EVENT) continue;
        const rs_event_t *ev = &rec->ev;
        assert_int_equal(ev->n_numeric, c.sensors + 3);
        assert_string_equal(ev->numeric[c.sensors].name, "setting1");
        assert_string_equal(ev->numeric[c.sensors + 2].name, "setting3");
        double s1 = ev->numeric[c.sensors].value;
        int k = (int)lround(s1 / 10.0);
        assert_true(k >= 0 && k < 3 && fabs(s1 - 10.0 * k) < 0.02);
        assert_float_equal(ev->numeric[c.sensors + 2].value, 100.0, 1e-9);
        seen[k]++;
        int m = atoi(ev->entity_id + 8);
        if (last[m] >= 0) {
            pairs++;
            same += last[m] == k;
        }
        last[m] = k;
    }
    for (int k = 0; k < 3; k++) assert_true(seen[k] > 0);
    /* a switch about once a day among 144 readings a day (1 in 3 to itself) */
    assert_true(same > pairs * 0.97);
    free(rec);
    rs_gen_destroy(g);
}

/* ----------------------------------------------------------------- files */

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void test_files(void **state) {
    (void)state;
    char dir[] = "/tmp/rs_test_gen_XXXXXX";
    char p_ev[128], p_lb[128], p_tr[128], p_csv[128], p_ev2[128], p_scsv[128];
    char errstr[256];
    assert_non_null(mkdtemp(dir));
    snprintf(p_ev, sizeof(p_ev), "%s/events.jsonl", dir);
    snprintf(p_ev2, sizeof(p_ev2), "%s/events2.jsonl", dir);
    snprintf(p_lb, sizeof(p_lb), "%s/labels.jsonl", dir);
    snprintf(p_tr, sizeof(p_tr), "%s/truth.csv", dir);
    snprintf(p_csv, sizeof(p_csv), "%s/events.csv", dir);
    snprintf(p_scsv, sizeof(p_scsv), "%s/sensors.csv", dir);

    rs_gen_conf_t c = conf_cards(500, 5);
    rs_gen_t *g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_int_equal(rs_gen_write_file(g, RS_GEN_FILE_JSONL, p_ev, p_lb, p_tr,
                                       errstr, sizeof(errstr)), RS_OK);
    rs_gen_destroy(g);
    g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_int_equal(rs_gen_write_file(g, RS_GEN_FILE_JSONL, p_ev2, NULL,
                                       NULL, errstr, sizeof(errstr)), RS_OK);
    rs_gen_destroy(g);
    g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_int_equal(rs_gen_write_file(g, RS_GEN_FILE_CSV, p_csv, NULL, NULL,
                                       errstr, sizeof(errstr)), RS_OK);
    rs_gen_destroy(g);

    /* Byte-identical across runs. */
    size_t n1, n2, nl, nt, nc;
    char *ev = slurp(p_ev, &n1), *ev2 = slurp(p_ev2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(ev, ev2, n1);
    free(ev2);
    char *lb = slurp(p_lb, &nl), *tr = slurp(p_tr, &nt);
    char *csv = slurp(p_csv, &nc);

    /* Read everything back and compare with a fresh generator. */
    g = rs_gen_new(&c, errstr, sizeof(errstr));
    rs_gen_rec_t *rec = malloc(sizeof(*rec));
    rs_event_t *back = malloc(sizeof(*back));
    rs_label_t lback;
    rs_csv_map_t map;
    assert_int_equal(rs_csv_map_parse(&map, "", errstr, sizeof(errstr)),
                     RS_OK);
    char *evp = ev, *lbp = lb, *trp = strchr(tr, '\n') + 1;
    char *csvp = strchr(csv, '\n');
    assert_non_null(csvp);
    *csvp++ = '\0';
    assert_string_equal(csv, rs_gen_csv_header(g));
    rs_csv_t *cr = rs_csv_new(&map, csv, strlen(csv), errstr, sizeof(errstr));
    assert_non_null(cr);
    size_t nev = 0, nlb = 0;
    while (rs_gen_next(g, rec)) {
        if (rec->kind == RS_GEN_LABEL) {
            char *e = strchr(lbp, '\n');
            assert_non_null(e);
            assert_int_equal(rs_label_from_json(lbp, (size_t)(e - lbp),
                                                &lback, errstr,
                                                sizeof(errstr)), RS_OK);
            assert_string_equal(lback.event_id, rec->lb.event_id);
            assert_string_equal(lback.entity_id, rec->lb.entity_id);
            assert_true(lback.value == rec->lb.value);
            assert_int_equal(lback.label_time_ms, rec->lb.label_time_ms);
            lbp = e + 1;
            nlb++;
            continue;
        }
        nev++;
        /* JSON lines */
        char *e = strchr(evp, '\n');
        assert_non_null(e);
        rs_err_t err = rs_event_from_json(evp, (size_t)(e - evp), back,
                                          errstr, sizeof(errstr));
        if (err != RS_OK) fail_msg("line %zu: %s", nev, errstr);
        assert_string_equal(back->id, rec->ev.id);
        assert_string_equal(back->type, rec->ev.type);
        assert_string_equal(back->entity_id, rec->ev.entity_id);
        assert_string_equal(back->counterparty_id, rec->ev.counterparty_id);
        assert_int_equal(back->event_time_ms, rec->ev.event_time_ms);
        assert_true(back->amount == rec->ev.amount);
        assert_int_equal(back->n_numeric, rec->ev.n_numeric);
        for (int i = 0; i < back->n_numeric; i++) {
            assert_string_equal(back->numeric[i].name, rec->ev.numeric[i].name);
            assert_true(back->numeric[i].value == rec->ev.numeric[i].value);
        }
        assert_int_equal(back->n_categ, rec->ev.n_categ);
        for (int i = 0; i < back->n_categ; i++) {
            assert_string_equal(back->categ[i].name, rec->ev.categ[i].name);
            assert_string_equal(back->categ[i].value, rec->ev.categ[i].value);
        }
        evp = e + 1;
        /* CSV: same event, label column = ground truth, categoricals stay
         * categorical (mcc values are names, not codes). */
        e = strchr(csvp, '\n');
        assert_non_null(e);
        double label = -1;
        int has_label = 0;
        err = rs_csv_decode(cr, csvp, (size_t)(e - csvp), back, &label,
                            &has_label, errstr, sizeof(errstr));
        if (err != RS_OK) fail_msg("csv row %zu: %s", nev, errstr);
        assert_true(has_label);
        assert_true(label == rec->is_fraud);
        assert_string_equal(back->id, rec->ev.id);
        assert_int_equal(back->event_time_ms, rec->ev.event_time_ms);
        assert_true(back->amount == rec->ev.amount);
        assert_string_equal(rs_event_categ(back, "mcc"),
                            rs_event_categ(&rec->ev, "mcc"));
        assert_string_equal(rs_event_categ(back, "channel"),
                            rs_event_categ(&rec->ev, "channel"));
        assert_true(rs_event_numeric(back, "hour_of_day") ==
                    rs_event_numeric(&rec->ev, "hour_of_day"));
        csvp = e + 1;
        /* truth */
        e = strchr(trp, '\n');
        assert_non_null(e);
        char want[256];
        snprintf(want, sizeof(want), "%s,%s,%lld,%d,%s,%u", rec->ev.id,
                 rec->ev.entity_id, (long long)rec->ev.event_time_ms,
                 rec->is_fraud, rs_gen_pattern_name(rec->pattern),
                 (unsigned)rec->episode);
        assert_int_equal((size_t)(e - trp), strlen(want));
        assert_memory_equal(trp, want, strlen(want));
        trp = e + 1;
    }
    assert_true(nev > 1000 && nlb > 0);
    assert_int_equal(evp - ev, (ptrdiff_t)n1);
    assert_int_equal(lbp - lb, (ptrdiff_t)nl);
    assert_int_equal(trp - tr, (ptrdiff_t)nt);
    assert_int_equal(csvp - csv, (ptrdiff_t)nc);
    rs_csv_destroy(cr);
    rs_gen_destroy(g);
    free(ev);
    free(lb);
    free(tr);
    free(csv);

    /* Sensors CSV: header names the sensors; rows decode with the sensor
     * values as numeric fields. */
    c = conf_sensors(5, 2);
    g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_string_equal(rs_gen_csv_header(g),
                        "id,type,entity_id,counterparty_id,event_time_ms,"
                        "amount,temperature,vibration,pressure,rpm,"
                        "machine_type,label");
    assert_int_equal(rs_gen_write_file(g, RS_GEN_FILE_CSV, p_scsv, NULL, NULL,
                                       errstr, sizeof(errstr)), RS_OK);
    rs_gen_destroy(g);
    csv = slurp(p_scsv, &nc);
    csvp = strchr(csv, '\n');
    *csvp++ = '\0';
    cr = rs_csv_new(&map, csv, strlen(csv), errstr, sizeof(errstr));
    assert_non_null(cr);
    g = rs_gen_new(&c, errstr, sizeof(errstr));
    nev = 0;
    while (rs_gen_next(g, rec)) {
        if (rec->kind != RS_GEN_EVENT) continue;
        char *e = strchr(csvp, '\n');
        assert_non_null(e);
        double label;
        int has_label;
        assert_int_equal(rs_csv_decode(cr, csvp, (size_t)(e - csvp), back,
                                       &label, &has_label, errstr,
                                       sizeof(errstr)), RS_OK);
        for (int i = 0; i < rec->ev.n_numeric; i++)
            assert_true(rs_event_numeric(back, rec->ev.numeric[i].name) ==
                        rec->ev.numeric[i].value);
        assert_string_equal(rs_event_categ(back, "machine_type"),
                            rs_event_categ(&rec->ev, "machine_type"));
        csvp = e + 1;
        nev++;
    }
    assert_int_equal(csvp - csv, (ptrdiff_t)nc);
    assert_true(nev > 2000);
    rs_csv_destroy(cr);
    rs_gen_destroy(g);
    free(csv);

    /* Unwritable path: RS_ERR_IO naming the path. */
    g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_int_equal(rs_gen_write_file(g, RS_GEN_FILE_JSONL,
                                       "/nonexistent/dir/x.jsonl", NULL, NULL,
                                       errstr, sizeof(errstr)), RS_ERR_IO);
    assert_non_null(strstr(errstr, "/nonexistent/dir/x.jsonl"));
    rs_gen_destroy(g);

    free(rec);
    free(back);
    unlink(p_ev);
    unlink(p_ev2);
    unlink(p_lb);
    unlink(p_tr);
    unlink(p_csv);
    unlink(p_scsv);
    rmdir(dir);
}

/* ------------------------------------------------------ default numbers */

/* Generate the default configurations to the end, timing rs_gen_next,
 * and print the counts (the figures quoted in docs/generator.md). */
static void run_default(int sensors) {
    rs_gen_conf_t c;
    char errstr[256];
    rs_gen_conf_defaults(&c);
    if (sensors) c.mode = RS_GEN_MODE_SENSORS;
    rs_gen_t *g = rs_gen_new(&c, errstr, sizeof(errstr));
    assert_non_null(g);
    rs_gen_rec_t *rec = malloc(sizeof(*rec));
    int64_t t0 = rs_clock_mono_ns();
    uint64_t n = 0;
    while (rs_gen_next(g, rec)) n++;
    double secs = (double)(rs_clock_mono_ns() - t0) / 1e9;
    rs_gen_stats_t st;
    rs_gen_stats(g, &st);
    printf("# default %s: %llu events, %llu labels, %llu fraud/positive "
           "(%.3f %%) in %.3f s = %.2f M events/s (%.2f M records/s)\n",
           sensors ? "sensors" : "cards", (unsigned long long)st.events,
           (unsigned long long)st.labels, (unsigned long long)st.frauds,
           100.0 * st.frauds / st.events, secs, st.events / secs / 1e6,
           n / secs / 1e6);
    for (int p = 1; p < RS_GEN_PAT__CNT; p++)
        if (st.fraud_events[p] || st.episodes[p])
            printf("#   %-26s %7llu events %6llu episodes\n",
                   rs_gen_pattern_name(p),
                   (unsigned long long)st.fraud_events[p],
                   (unsigned long long)st.episodes[p]);
    assert_true(st.events > 100000);
    if (!sensors) {
        double rate = (double)st.frauds / st.events;
        assert_true(rate >= 0.005 && rate <= 0.02);
    }
    free(rec);
    rs_gen_destroy(g);
}

static void test_defaults_throughput(void **state) {
    (void)state;
    run_default(0);
    run_default(1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_fraud_rate),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_sensors),
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_defaults_throughput),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stream_free(&g_cards);
    return rc;
}
