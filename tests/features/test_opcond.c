/* test_opcond.c -- unit tests of features/opcond.h (operating conditions:
 * assignment of readings to conditions from their settings, per-condition
 * normalisation, checkpoint state) and of features.setting_fields in a
 * features handle (the sensors preset's baselines on normalised readings,
 * config errors, checkpoints). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "features/features.h"
#include "features/opcond.h"

/* Six operating conditions as in turbofan run-to-failure data (altitude
 * kft, Mach, throttle angle): well separated, on different scales. */
static const double cond_set[6][3] = {
    {0.0, 0.00, 100.0}, {10.0, 0.25, 100.0}, {20.0, 0.70, 100.0},
    {25.0, 0.62, 60.0}, {35.0, 0.84, 100.0}, {42.0, 0.84, 100.0},
};
static const double cond_sd[3] = {0.003, 0.001, 0.0};

static rs_opcond_conf_t mkconf(int nfield, int maxc, int warmup) {
    rs_opcond_conf_t c;
    memset(&c, 0, sizeof(c));
    c.nset = 3;
    for (int d = 0; d < 3; d++) snprintf(c.set[d], RS_NAME_MAX, "setting%d", d + 1);
    c.nfield = nfield;
    for (int j = 0; j < nfield; j++) snprintf(c.field[j], RS_NAME_MAX, "s%d", j);
    c.max_conditions = maxc;
    c.warmup = warmup;
    c.min_readings = 32;
    return c;
}

static void settings_of(rs_rng_t *r, int k, double *s) {
    for (int d = 0; d < 3; d++) s[d] = cond_set[k][d] + cond_sd[d] * rs_rng_normal(r);
}

/* Readings from 6 conditions in random order, noisy settings: 6 conditions
 * found, one per true condition, the same twice. */
static void test_assign_separated(void **state) {
    (void)state;
    rs_opcond_conf_t c = mkconf(1, 16, 64);
    int seq[2][3000];
    for (int run = 0; run < 2; run++) {
        char err[256];
        rs_opcond_t *o = rs_opcond_create(&c, err, sizeof(err));
        assert_non_null(o);
        rs_rng_t r;
        rs_rng_seed(&r, 11);
        int map[6] = {-1, -1, -1, -1, -1, -1};
        for (int i = 0; i < 3000; i++) {
            int k = (int)rs_rng_below(&r, 6);
            double s[3], v = 5.0 * k + rs_rng_normal(&r), out;
            settings_of(&r, k, s);
            int got = rs_opcond_observe(o, s, &v, &out);
            seq[run][i] = got;
            if (i < 64) {
                assert_int_equal(got, -1);          /* warm-up */
                assert_true(out == v);               /* left raw */
                continue;
            }
            assert_true(got >= 0 && got < 6);
            if (map[k] < 0) map[k] = got;
            assert_int_equal(map[k], got);           /* one condition each */
        }
        assert_int_equal(rs_opcond_count(o), 6);
        for (int a = 0; a < 6; a++)
            for (int b = a + 1; b < 6; b++) assert_int_not_equal(map[a], map[b]);
        /* the centres are the conditions' settings */
        for (int k = 0; k < 6; k++) {
            double cen[3];
            assert_true(rs_opcond_readings(o, map[k], cen) > 300);
            for (int d = 0; d < 3; d++) assert_true(fabs(cen[d] - cond_set[k][d]) < 0.01);
        }
        rs_opcond_destroy(o);
    }
    assert_memory_equal(seq[0], seq[1], sizeof(seq[0]));  /* deterministic */
}

/* Settings that are only noise: one condition, and the normalisation is
 * the identity (the reading's standard score put back on its own scale). */
static void test_noise_one_condition(void **state) {
    (void)state;
    rs_opcond_conf_t c = mkconf(2, 16, 256);
    char err[256];
    rs_opcond_t *o = rs_opcond_create(&c, err, sizeof(err));
    rs_rng_t r;
    rs_rng_seed(&r, 3);
    for (int i = 0; i < 20000; i++) {
        double s[3] = {rs_rng_normal(&r), 0.01 * rs_rng_normal(&r), 100.0};
        double v[2] = {60 + rs_rng_normal(&r), 3 + 0.1 * rs_rng_normal(&r)}, out[2];
        rs_opcond_observe(o, s, v, out);
        for (int j = 0; j < 2; j++) assert_true(fabs(out[j] - v[j]) < 1e-9 * fabs(v[j]));
    }
    assert_int_equal(rs_opcond_count(o), 1);
    rs_opcond_destroy(o);
}

/* The warm-up sees one condition only: conditions that appear later are
 * found then; a cap on the count holds (readings then go to the nearest). */
static void test_later_conditions_and_cap(void **state) {
    (void)state;
    for (int maxc = 2; maxc <= 16; maxc += 14) {
        rs_opcond_conf_t c = mkconf(1, maxc, 128);
        char err[256];
        rs_opcond_t *o = rs_opcond_create(&c, err, sizeof(err));
        rs_rng_t r;
        rs_rng_seed(&r, 5);
        for (int i = 0; i < 4000; i++) {
            int k = i < 500 ? 0 : (int)rs_rng_below(&r, 4);
            double s[3], v = rs_rng_normal(&r), out;
            settings_of(&r, k, s);
            rs_opcond_observe(o, s, &v, &out);
        }
        assert_int_equal(rs_opcond_count(o), maxc == 2 ? 2 : 4);
        rs_opcond_destroy(o);
    }
}

/* Condition effects measured within machines: machines at very different
 * levels (offsets of 20 against an effect of 10) run in two conditions,
 * most of the high machines in condition 1 at first.  Taught each reading's
 * machine level (the mean of its normalised readings so far), the effect
 * is removed: per machine, the normalised readings have the same mean in
 * both conditions (to 0.3 when every machine runs in both alike, to 2 when
 * the start is skewed); a probe equals x - e_c + E from the differences taught
 * before it. */
static void normalise_case(int skew) {
    rs_opcond_conf_t c = mkconf(1, 16, 64);
    char err[256];
    rs_opcond_t *o = rs_opcond_create(&c, err, sizeof(err));
    rs_rng_t r;
    rs_rng_seed(&r, 7);
    enum { NM = 10 };
    double lvl[NM][2] = {{0}};              /* machine: n, mean of outputs */
    double os[NM][2][2] = {{{0}}};          /* machine, cond: n, sum (late) */
    double ref[2][2] = {{0}};               /* per true k: n, mean of diffs */
    int map[2] = {-1, -1};
    for (int i = 0; i < 20000; i++) {
        int m = i % NM;
        /* high machines (m >= 5) run mostly in condition 1 early on */
        double p1 = skew && i < 5000 ? (m >= 5 ? 0.9 : 0.1) : 0.5;
        int k = rs_rng_uniform(&r) < p1;
        double s[3], v = 50 + 20 * (m >= 5) + m + 10 * k + rs_rng_normal(&r), out;
        settings_of(&r, k, s);
        int got = rs_opcond_observe(o, s, &v, &out);
        if (got >= 0) {
            if (map[k] < 0) map[k] = got;
            assert_int_equal(map[k], got);
            if (lvl[m][0] >= 1) {   /* as rs_features: from its 2nd reading */
                rs_opcond_learn(o, 0, lvl[m][1]);
                ref[k][0] += 1;
                ref[k][1] += (v - lvl[m][1] - ref[k][1]) / ref[k][0];
            }
        }
        lvl[m][0] += 1;
        lvl[m][1] += (out - lvl[m][1]) / lvl[m][0];
        if (i > 15000) {
            os[m][k][0] += 1;
            os[m][k][1] += out;
        }
    }
    for (int m = 0; m < NM; m++) {
        double d = os[m][1][1] / os[m][1][0] - os[m][0][1] / os[m][0][0];
        /* raw: 10 apart.  The early imbalance is averaged out slowly
         * (life-long means: the first differences were taken against
         * levels of few, raw readings) */
        assert_true(fabs(d) < (skew ? 2.0 : 0.3));
    }
    /* a probe in condition 1 */
    double E = (ref[0][0] * ref[0][1] + ref[1][0] * ref[1][1]) /
               (ref[0][0] + ref[1][0]);
    double x = 80, out, s[3];
    settings_of(&r, 1, s);
    assert_int_equal(rs_opcond_observe(o, s, &x, &out), map[1]);
    assert_true(fabs(out - (x - ref[1][1] + E)) < 1e-9);
    /* the effects: most of the 10 generated */
    assert_true(fabs(ref[1][1] - ref[0][1] - 10) < (skew ? 2.0 : 0.3));
    rs_opcond_destroy(o);
}

static void test_normalise(void **state) {
    (void)state;
    normalise_case(0);   /* every machine in both conditions alike */
    normalise_case(1);   /* high machines mostly in condition 1 at first */
}

/* Cold: warm-up readings, a condition with fewer than min_readings of a
 * field, a reading without finite settings and a missing value stay raw. */
static void test_cold_fallback(void **state) {
    (void)state;
    rs_opcond_conf_t c = mkconf(1, 16, 64);
    char err[256];
    rs_opcond_t *o = rs_opcond_create(&c, err, sizeof(err));
    rs_rng_t r;
    rs_rng_seed(&r, 9);
    double s[3], v, out;
    for (int i = 0; i < 300; i++) {   /* condition 0 and 1 only */
        int k = i % 2;
        settings_of(&r, k, s);
        v = 10 * k + rs_rng_normal(&r);
        int got = rs_opcond_observe(o, s, &v, &out);
        /* warm-up, then until a condition has 32 differences: raw */
        if (i < 64 + 64) assert_true(out == v);
        else assert_true(out != v);
        if (got >= 0) rs_opcond_learn(o, 0, 5.0);   /* one machine at 5 */
    }
    assert_int_equal(rs_opcond_count(o), 2);
    /* condition 4 appears: raw until it has 32 differences */
    for (int i = 0; i < 40; i++) {
        settings_of(&r, 4, s);
        v = 100 + rs_rng_normal(&r);
        int got = rs_opcond_observe(o, s, &v, &out);
        assert_int_equal(got, 2);
        if (i < 32) assert_true(out == v);
        else assert_true(fabs(out - v) > 50);  /* moved to the fleet's */
        rs_opcond_learn(o, 0, 5.0);
    }
    /* no finite setting: -1, raw, nothing learned */
    s[1] = NAN;
    v = 3;
    assert_int_equal(rs_opcond_observe(o, s, &v, &out), -1);
    assert_true(out == 3);
    rs_opcond_learn(o, 0, 1e6);             /* ignored: no condition */
    settings_of(&r, 4, s);
    v = 100;
    rs_opcond_observe(o, s, &v, &out);
    assert_true(fabs(out - v) > 50 && fabs(out - v) < 150);
    /* a missing value stays missing */
    settings_of(&r, 0, s);
    v = NAN;
    assert_int_equal(rs_opcond_observe(o, s, &v, &out), 0);
    assert_true(isnan(out));
    rs_opcond_destroy(o);
}

/* The state saved and loaded into a fresh handle continues identically;
 * a damaged state is refused and leaves a fresh one. */
static void test_state_roundtrip(void **state) {
    (void)state;
    rs_opcond_conf_t c = mkconf(2, 16, 64);
    char err[256];
    for (int stop = 30; stop <= 1500; stop += 1470) { /* in / after warm-up */
        rs_opcond_t *a = rs_opcond_create(&c, err, sizeof(err));
        rs_opcond_t *b = rs_opcond_create(&c, err, sizeof(err));
        rs_rng_t r;
        rs_rng_seed(&r, 13);
        double s[3], v[2], oa[2], ob[2];
        for (int i = 0; i < stop; i++) {
            int k = (int)rs_rng_below(&r, 3);
            settings_of(&r, k, s);
            v[0] = k + rs_rng_normal(&r);
            v[1] = -k + rs_rng_normal(&r);
            if (rs_opcond_observe(a, s, v, oa) >= 0) {
                rs_opcond_learn(a, 0, 0.5);
                rs_opcond_learn(a, 1, -0.5);
            }
        }
        size_t len = rs_opcond_state_size(a);
        unsigned char *buf = malloc(len);
        rs_opcond_save(a, buf);
        assert_null(rs_opcond_load(b, buf, len));
        assert_int_equal(rs_opcond_count(b), rs_opcond_count(a));
        for (int i = 0; i < 1000; i++) {
            int k = (int)rs_rng_below(&r, 3);
            settings_of(&r, k, s);
            v[0] = k + rs_rng_normal(&r);
            v[1] = -k + rs_rng_normal(&r);
            int ga = rs_opcond_observe(a, s, v, oa);
            int gb = rs_opcond_observe(b, s, v, ob);
            assert_int_equal(ga, gb);
            assert_memory_equal(oa, ob, sizeof(oa));
            rs_opcond_learn(a, 0, 0.5);
            rs_opcond_learn(b, 0, 0.5);
            rs_opcond_learn(a, 1, -0.5);
            rs_opcond_learn(b, 1, -0.5);
        }
        /* damaged: wrong size, a NaN reading count */
        assert_non_null(rs_opcond_load(b, buf, len - 1));
        assert_int_equal(rs_opcond_count(b), 0);
        double nan = NAN;
        memcpy(buf, &nan, sizeof(nan));
        assert_non_null(rs_opcond_load(b, buf, len));
        assert_int_equal(rs_opcond_count(b), 0);
        free(buf);
        rs_opcond_destroy(a);
        rs_opcond_destroy(b);
    }
    /* bad conf */
    rs_opcond_conf_t bad = mkconf(1, 0, 64);
    assert_null(rs_opcond_create(&bad, err, sizeof(err)));
    bad = mkconf(1, 4, 1);
    assert_null(rs_opcond_create(&bad, err, sizeof(err)));
}

/* ------------------------------------------------ features.setting_fields */

#define T0 1700000000000LL
#define MIN10 600000LL

static rs_features_t *mkfeat(const char *settings) {
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 4096;
    c.preset = 1;
    rs_strlcpy(c.sensor_fields, "temp,vib", sizeof(c.sensor_fields));
    rs_strlcpy(c.setting_fields, settings, sizeof(c.setting_fields));
    char err[256];
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    return f;
}

static int find_feature(const rs_features_t *f, const char *name) {
    for (int i = 0; i < rs_features_dim(f); i++)
        if (!strcmp(rs_features_name(f, i), name)) return i;
    return -1;
}

/* Reading i of machine m: the regime moves both sensors by 3 spreads
 * (up, down) and shows in the settings. */
static rs_event_t reading(rs_rng_t *r, int i, int m, int regime,
                          double drift) {
    rs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.id, sizeof(ev.id), "r%d-%d", i, m);
    snprintf(ev.type, sizeof(ev.type), "sensor");
    snprintf(ev.entity_id, sizeof(ev.entity_id), "m%d", m);
    snprintf(ev.counterparty_id, sizeof(ev.counterparty_id), "site");
    ev.event_time_ms = T0 + (int64_t)i * MIN10 + m;
    double s[3];
    settings_of(r, regime * 3, s);
    const char *nm[5] = {"temp", "vib", "setting1", "setting2", "setting3"};
    double v[5] = {60 + m + 3.0 * regime + drift + rs_rng_normal(r),
                   2 + 0.1 * m - 0.3 * regime + 0.1 * rs_rng_normal(r),
                   s[0], s[1], s[2]};
    for (int k = 0; k < 5; k++) {
        snprintf(ev.numeric[k].name, RS_NAME_MAX, "%s", nm[k]);
        ev.numeric[k].value = v[k];
    }
    ev.n_numeric = 5;
    return ev;
}

/* Healthy machines switching between two regimes: with the settings the
 * 48-reading level stays within a few sd of the baseline through a switch;
 * without them the switch looks like a drift. */
static void test_features_settings(void **state) {
    (void)state;
    char err[256];
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    rs_strlcpy(c.setting_fields, "a,b,c,d,e", sizeof(c.setting_fields));
    assert_null(rs_features_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "features.setting_fields"));
    rs_strlcpy(c.setting_fields, "amount", sizeof(c.setting_fields));
    assert_null(rs_features_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "features.setting_fields"));

    rs_features_t *on = mkfeat("setting1,setting2,setting3");
    rs_features_t *off = mkfeat("");
    assert_int_not_equal(rs_features_fingerprint(on), rs_features_fingerprint(off));
    int iz = find_feature(on, "ent_temp_base_z_last48_incl");
    assert_true(iz >= 0);
    rs_rng_t r;
    rs_rng_seed(&r, 21);
    float xon[RS_FEATURES_MAX_DIM], xoff[RS_FEATURES_MAX_DIM];
    double sson = 0, ssoff = 0, n = 0;
    int regime[8] = {0};
    for (int i = 0; i < 1500; i++)
        for (int m = 0; m < 8; m++) {
            /* each machine switches regime every 100 readings, staggered */
            regime[m] = ((i + 37 * m) / 100) % 2;
            rs_rng_t r2 = r;
            rs_event_t ev = reading(&r, i, m, regime[m], 0);
            rs_event_t ev2 = reading(&r2, i, m, regime[m], 0);
            assert_int_equal(rs_features_process(on, &ev, xon, NULL), RS_OK);
            assert_int_equal(rs_features_process(off, &ev2, xoff, NULL), RS_OK);
            if (i > 400) {
                sson += (double)xon[iz] * xon[iz];
                ssoff += (double)xoff[iz] * xoff[iz];
                n += 1;
            }
        }
    /* without the settings the machine's baseline spans both regimes: its
     * standard deviation is sqrt(1 + 1.5^2) = 1.8 noise sd, and the level
     * of 48 readings moves with the regime */
    printf("healthy rms of the 48-reading base_z: %.3f with settings, %.3f without\n",
           sqrt(sson / n), sqrt(ssoff / n));
    assert_true(sqrt(ssoff / n) > 0.6);
    assert_true(sqrt(sson / n) < 0.4);
    /* machine 0 drifts by 2 noise sd over its next 48 readings (a mean of
     * 1 sd over the 48) */
    float don = 0, doff = 0;
    for (int i = 1500; i < 1548; i++)
        for (int m = 0; m < 8; m++) {
            regime[m] = ((i + 37 * m) / 100) % 2;
            double drift = m == 0 ? 2.0 * (i - 1499) / 48.0 : 0;
            rs_rng_t r2 = r;
            rs_event_t ev = reading(&r, i, m, regime[m], drift);
            rs_event_t ev2 = reading(&r2, i, m, regime[m], drift);
            assert_int_equal(rs_features_process(on, &ev, xon, NULL), RS_OK);
            assert_int_equal(rs_features_process(off, &ev2, xoff, NULL), RS_OK);
            if (m == 0) { don = xon[iz]; doff = xoff[iz]; }
        }
    printf("drifting machine's 48-reading base_z: %.2f with settings, %.2f without\n",
           don, doff);
    /* against the healthy machines' spread of the same feature: the drift
     * stands out several times more clearly with the settings */
    assert_true(don / sqrt(sson / n) > 2.0 * (doff / sqrt(ssoff / n)));
    assert_true(don / sqrt(sson / n) > 5.0);

    /* checkpoint round trip: the restored handle continues identically */
    char path[] = "/tmp/test_opcond_ckXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(rs_features_checkpoint_write(on, path, NULL, 0, err, sizeof(err)), RS_OK);
    rs_features_t *back = mkfeat("setting1,setting2,setting3");
    if (rs_features_checkpoint_read(back, path, NULL, NULL, err, sizeof(err)))
        fail_msg("%s", err);
    /* another normalisation is another layout */
    assert_int_equal(rs_features_checkpoint_read(off, path, NULL, NULL, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    float xb[RS_FEATURES_MAX_DIM];
    for (int i = 1548; i < 1700; i++)
        for (int m = 0; m < 8; m++) {
            regime[m] = ((i + 37 * m) / 100) % 2;
            rs_rng_t r2 = r;
            rs_event_t ev = reading(&r, i, m, regime[m], 0);
            rs_event_t ev2 = reading(&r2, i, m, regime[m], 0);
            assert_int_equal(rs_features_process(on, &ev, xon, NULL), RS_OK);
            assert_int_equal(rs_features_process(back, &ev2, xb, NULL), RS_OK);
            assert_memory_equal(xon, xb, sizeof(float) * (size_t)rs_features_dim(on));
        }
    unlink(path);
    rs_features_destroy(back);
    rs_features_destroy(on);
    rs_features_destroy(off);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_separated),
        cmocka_unit_test(test_noise_one_condition),
        cmocka_unit_test(test_later_conditions_and_cap),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_cold_fallback),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_features_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
