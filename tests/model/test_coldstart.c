/* test_coldstart.c -- the cold-start blend (model/coldstart.h):
 *  - test_layout: the reference reads the base_z features of the longest
 *    span only, n0 = the distinct sensors among them; a layout without
 *    base_z has no reference and the blend is the model's score;
 *  - test_reference: a sensor 3 sd off its machine's baseline scores
 *    exactly the alert threshold (whatever the threshold), further out
 *    higher, closer lower, a missing feature ignored;
 *  - test_weight: s = 1 - (1 - p)(1 - (1 - w) u), w = c / (n + n0): the
 *    reference alone for a silent model before any failure, at half its
 *    weight at n0 failures the model caught, fading as caught failures
 *    are learned; never below the model's score; a machine on its
 *    baseline adds nothing; a restored count;
 *  - test_record: the hand-over follows the model's own record, not the
 *    count of failures: a model whose own score caught none of 20
 *    failures at least H/3 ahead leaves the reference its full weight
 *    (w = 0; the count-weighted blend had w = 20/22), one that caught
 *    them all hands over as before; a lead under H/3 or none is a miss,
 *    exactly H/3 a catch;
 *  - test_noise: a base_noise of the longest span (the log noise ratio
 *    beyond 3 sampling sds, 1.2845 / sqrt N for N dependent differences) counts as the z 3 + it / sd:
 *    noise just past 3 sampling sds above the machine's own scores the
 *    threshold, 5x the noise more, 0 (as usual) nothing, a shorter span's
 *    noise is not read, n0 unchanged;
 *  - test_state: the counts saved and loaded into a new blend (the
 *    service's checkpoint record) give the same weight and score; a
 *    version-1 state (n only) restores c = n, its old weight; a state of
 *    the wrong size, magic or version, or with c > n, is refused with a
 *    message and leaves the counts as they were; since version 3 the
 *    state carries the model's own policy (a version-2 state, the counts
 *    only, still loads), and a damaged policy part is refused;
 *  - test_own_policy: the own policy kept in the blend (observe, machine
 *    failure, repair): a failure whose model score rose 10 h ahead is
 *    caught, 2 h ahead (< H/3) or an episode before a repair is not; a
 *    blend without the policy counts failures as missed;
 *  - test_own_restart: an episode open when the state was saved counts
 *    for a failure after the load (caught 10 h ahead; without the state,
 *    the restarted policy sees 4 h: a miss); loaded into a blend without
 *    a policy, the counts only; a damaged or repeated machine refused;
 *  - test_spread: the reference reads the longest span's mean in the
 *    fleet's learned spread of that mean (a Huber scale): a mean 3 of its
 *    own sds off scores the threshold once learned (before, 3 reading
 *    sds were needed), 1.5 does not; the spread survives save/load;
 *    5 % of far-off readings pull it up by a third, not to one reading's
 *    sd; means that never move give the spread of 48 independent
 *    readings, not 0;
 *  - test_cusum: the per-machine CUSUM of the span's mean (k = 1.5 of its
 *    sds, h from a false-alarm rate of 1 in 370 spans): on stationary
 *    noise its alarms start at most twice as often as designed; a 1-sd
 *    step of the readings alarms within one span and the alarm holds
 *    while the step fades to 2.8 of the mean's sds (under the 3-sd rule);
 *    the CUSUMs survive save/load; a failure resets them;
 *  - test_machine_span: a machine's record or a state of 12-reading
 *    CUSUMs (features.sensor_spans 12,48) loaded where the CUSUM reads
 *    6-reading means starts the CUSUMs afresh; the same spans go on;
 *  - test_disagree: the weight per machine (issue 15, session 12): where
 *    the reference is in alarm and the model's own policy has no episode
 *    open on that machine, the model's weight counts half (w / 2); where
 *    the own policy is open or the reference is under the threshold, and
 *    without the own policy, w as it is. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/coldstart.h"

static const char *const names[] = {
    "ent_life",
    "ent_a_base_z", "ent_a_base_z_last12_incl", "ent_a_slope_last12_incl",
    "ent_a_base_z_last48_incl", "ent_a_base_spread_last48_incl",
    "ent_b_base_z", "ent_b_base_z_last12_incl", "ent_b_base_z_last48_incl",
};
#define DIM 9
#define H ((int64_t)24 * 3600 * 1000) /* the horizon, ms */
/* a spread block for the 2 sensors of `names` (version 4: the ref
 * features', then the CUSUM features') */
#define SPREAD (16 + 8 * 2)
/* i16diff, version 5: the difference's block (u32 ndf, u32 N_c, f64
 * readings, f64 squares, lag products, lag squares [2]) */
#define DIFFB (16 + 24 * 2)
/* ... and the own policy's block starts at */
#define POL (RS_COLDSTART_STATE + 2 * SPREAD + DIFFB)
/* a CUSUM block entry of version 3 and 4 (u64 machine, f32 S[2 x 2]) */
#define CUE4 (8 + 8 * 2)
/* ... of version 5 (and f32 S+ S- d_t-1 of the 2 differences) */
#define CUE (CUE4 + 12 * 2)

static void test_layout(void **st) {
    (void)st;
    rs_coldstart_t *cs = rs_coldstart_new(names, DIM, 0.3);
    assert_int_equal(rs_coldstart_sensors(cs), 2);
    float x[DIM] = {0};
    x[2] = 40;  x[7] = -40; /* the 12-reading spans are not read */
    assert_float_equal(rs_coldstart_reference(cs, x), 0, 1e-7);
    x[8] = -4;              /* |z| of the longest span */
    assert_true(rs_coldstart_reference(cs, x) > 0.3f);
    rs_coldstart_destroy(cs);
    const char *const other[] = {"ent_count_1h", "ent_mean_1d"};
    cs = rs_coldstart_new(other, 2, 0.3);
    assert_int_equal(rs_coldstart_sensors(cs), 0);
    assert_float_equal(rs_coldstart_weight(cs), 1, 1e-12);
    float y[2] = {5, 5};
    assert_float_equal(rs_coldstart_score(cs, y, 0.42f), 0.42f, 1e-7);
    rs_coldstart_destroy(NULL);
    rs_coldstart_destroy(cs);
}

static void test_reference(void **st) {
    (void)st;
    rs_coldstart_t *cs = rs_coldstart_new(names, DIM, 0.3);
    float x[DIM] = {0};
    /* 3 sd off the machine's own baseline scores the alert threshold */
    x[4] = 3;
    assert_float_equal(rs_coldstart_reference(cs, x), 0.3, 1e-6);
    x[4] = -6;   /* either side; further out higher */
    assert_true(rs_coldstart_reference(cs, x) > 0.4f);
    x[4] = 1.5f;
    assert_true(rs_coldstart_reference(cs, x) < 0.2f);
    x[8] = NAN;  /* a missing feature is not a deviation */
    assert_true(isfinite(rs_coldstart_reference(cs, x)));
    rs_coldstart_destroy(cs);
    /* another threshold: 3 sd still scores it */
    cs = rs_coldstart_new(names, DIM, 0.5);
    x[4] = 3;
    x[8] = 0;
    assert_float_equal(rs_coldstart_reference(cs, x), 0.5, 1e-6);
    rs_coldstart_destroy(cs);
}

static void test_noise(void **st) {
    (void)st;
    const char *const nn[] = {
        "ent_life",
        "ent_a_base_z_last48_incl", "ent_a_base_noise_last48_incl",
        "ent_b_base_z_last48_incl", "ent_b_base_noise_last48_incl",
        "ent_b_base_noise_last12_incl",
    };
    rs_coldstart_t *cs = rs_coldstart_new(nn, 6, 0.3);
    assert_int_equal(rs_coldstart_sensors(cs), 2);   /* n0: the sensors */
    float x[6] = {0};
    /* the window's part of base_noise's sd: 48 dependent |differences| */
    const double sd48 = 1.2845 / sqrt(48.0);
    x[2] = 1e-6f;                                    /* 3 sampling sds */
    assert_float_equal(rs_coldstart_reference(cs, x), 0.3, 1e-5);
    x[2] = (float)(log(5.0) - 3 * sd48);             /* 5x the noise */
    assert_true(rs_coldstart_reference(cs, x) > 0.55f);  /* z 9.6 */
    x[2] = 0;                                        /* as usual: nothing */
    assert_float_equal(rs_coldstart_reference(cs, x), 0, 1e-7);
    x[2] = 0;
    x[5] = 3;                                        /* a 12-reading span */
    assert_float_equal(rs_coldstart_reference(cs, x), 0, 1e-7);
    x[3] = 4;                                        /* levels still read */
    x[4] = (float)(0.5 * sd48);                      /* z 3.5 */
    assert_float_equal(rs_coldstart_reference(cs, x), 4.0 / (4.0 + 7.0), 1e-5);
    x[4] = (float)(2 * sd48);                        /* z 5 */
    assert_float_equal(rs_coldstart_reference(cs, x), 5.0 / (5.0 + 7.0), 1e-5);
    x[4] = NAN;                                      /* missing: ignored */
    assert_true(isfinite(rs_coldstart_reference(cs, x)));
    rs_coldstart_destroy(cs);
}

static void test_weight(void **st) {
    (void)st;
    rs_coldstart_t *cs = rs_coldstart_new(names, DIM, 0.3);
    float x[DIM] = {0};
    x[4] = 3;  /* u = 0.3 */
    assert_float_equal(rs_coldstart_weight(cs), 0, 1e-12);
    /* no failure learned: the reference alone for a silent model, and
     * never below the model's score */
    assert_float_equal(rs_coldstart_score(cs, x, 0.0f), 0.3, 1e-6);
    assert_float_equal(rs_coldstart_score(cs, x, 0.9f), 0.93, 1e-6);
    rs_coldstart_failure(cs, H, H);
    rs_coldstart_failure(cs, H / 3, H); /* n = c = n0 = 2: the reference at half */
    assert_int_equal(rs_coldstart_failures(cs), 2);
    assert_int_equal(rs_coldstart_caught(cs), 2);
    assert_float_equal(rs_coldstart_weight(cs), 0.5, 1e-12);
    assert_float_equal(rs_coldstart_score(cs, x, 0.0f), 0.15, 1e-6);
    assert_float_equal(rs_coldstart_score(cs, x, 0.9f), 0.915, 1e-6);
    rs_coldstart_set_failures(cs, 198, 198);
    assert_float_equal(rs_coldstart_weight(cs), 0.99, 1e-12);
    assert_float_equal(rs_coldstart_score(cs, x, 0.0f), 0.003, 1e-6);
    /* a machine on its baseline adds nothing */
    x[4] = 0;
    assert_float_equal(rs_coldstart_score(cs, x, 0.25f), 0.25, 1e-7);
    rs_coldstart_set_failures(cs, 0, 0);
    assert_float_equal(rs_coldstart_score(cs, x, 0.25f), 0.25, 1e-7);
    rs_coldstart_destroy(cs);
}

static void test_record(void **st) {
    (void)st;
    rs_coldstart_t *cs = rs_coldstart_new(names, DIM, 0.3);
    float x[DIM] = {0};
    x[4] = 3;  /* u = 0.3: exactly the alert threshold */
    /* 20 failures the model's own score missed or caught too late */
    for (int i = 0; i < 20; i++)
        rs_coldstart_failure(cs, i % 2 ? -1 : H / 3 - 1, H);
    assert_int_equal(rs_coldstart_failures(cs), 20);
    assert_int_equal(rs_coldstart_caught(cs), 0);
    /* the reference keeps its full weight: it alone still alerts (the
     * count-weighted blend gave w = 20/22 and 0.027 here) */
    assert_float_equal(rs_coldstart_weight(cs), 0, 1e-12);
    assert_float_equal(rs_coldstart_score(cs, x, 0.0f), 0.3, 1e-6);
    /* 20 more, all caught early: w = 20 / (40 + 2) */
    for (int i = 0; i < 20; i++) rs_coldstart_failure(cs, H / 3 + i, H);
    assert_int_equal(rs_coldstart_caught(cs), 20);
    assert_float_equal(rs_coldstart_weight(cs), 20.0 / 42.0, 1e-12);
    rs_coldstart_destroy(cs);
    /* a model that caught every failure hands over as fast as n / (n + n0) */
    cs = rs_coldstart_new(names, DIM, 0.3);
    for (int i = 0; i < 20; i++) rs_coldstart_failure(cs, 2 * H, H);
    assert_float_equal(rs_coldstart_weight(cs), 20.0 / 22.0, 1e-12);
    assert_float_equal(rs_coldstart_score(cs, x, 0.0f), 0.3 * 2.0 / 22.0, 1e-6);
    /* a restored c is at most n */
    rs_coldstart_set_failures(cs, 5, 9);
    assert_int_equal(rs_coldstart_caught(cs), 5);
    rs_coldstart_destroy(cs);
}

/* A version-2 state (the counts only, as written before the own policy
 * was kept): 24 bytes. */
static void put_v2(unsigned char *v2, uint64_t n, uint64_t c) {
    uint32_t hd[2] = {0x53435352u, 2};
    memcpy(v2, hd, sizeof(hd));
    memcpy(v2 + 8, &n, sizeof(n));
    memcpy(v2 + 16, &c, sizeof(c));
}

static void test_state(void **st) {
    (void)st;
    rs_coldstart_t *a = rs_coldstart_new(names, DIM, 0.3);
    for (int i = 0; i < 7; i++) rs_coldstart_failure(a, i < 5 ? H : -1, H);
    /* untracked: the counts and an empty policy */
    assert_int_equal(rs_coldstart_state_size(a), POL + 8 + 8);
    unsigned char buf[POL + 8 + 8 + 1];
    rs_coldstart_save(a, buf);
    rs_coldstart_t *b = rs_coldstart_new(names, DIM, 0.3);
    char es[256];
    size_t len = rs_coldstart_state_size(a);
    assert_int_equal(rs_coldstart_load(b, buf, len, es, sizeof(es)), RS_OK);
    assert_int_equal(rs_coldstart_failures(b), 7);
    assert_int_equal(rs_coldstart_caught(b), 5);
    assert_float_equal(rs_coldstart_weight(b), 5.0 / 9.0, 1e-12);
    float x[DIM] = {0};
    x[4] = 4;
    assert_true(rs_coldstart_score(a, x, 0.1f) == rs_coldstart_score(b, x, 0.1f));
    /* damaged: refused, the count unchanged */
    rs_coldstart_set_failures(b, 3, 1);
    es[0] = '\0';
    assert_int_equal(rs_coldstart_load(b, buf, len - 1, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(es, "cold-start state"));
    assert_int_equal(rs_coldstart_load(b, buf, len + 1, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_int_equal(rs_coldstart_load(b, buf, RS_COLDSTART_STATE, es,
                                       sizeof(es)), RS_ERR_CORRUPT);
    unsigned char bad[POL + 8 + 8];
    memcpy(bad, buf, sizeof(bad));
    bad[0] ^= 1; /* magic */
    assert_int_equal(rs_coldstart_load(b, bad, sizeof(bad), es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, sizeof(bad));
    bad[4] = 6; /* version (5 since i16diff) */
    assert_int_equal(rs_coldstart_load(b, bad, sizeof(bad), es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, sizeof(bad));
    bad[4] = 2; /* version 2 is 24 bytes */
    assert_int_equal(rs_coldstart_load(b, bad, sizeof(bad), es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, sizeof(bad));
    bad[4] = 1; /* version 1 is 16 bytes */
    assert_int_equal(rs_coldstart_load(b, bad, sizeof(bad), es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, sizeof(bad));
    uint64_t big = 8; /* c > n */
    memcpy(bad + 16, &big, sizeof(big));
    assert_int_equal(rs_coldstart_load(b, bad, sizeof(bad), es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, sizeof(bad));
    uint64_t one = 1; /* one machine announced, none there */
    memcpy(bad + POL, &one, sizeof(one));
    assert_int_equal(rs_coldstart_load(b, bad, sizeof(bad), es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(es, "own policy"));
    assert_int_equal(rs_coldstart_load(b, NULL, 0, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_int_equal(rs_coldstart_failures(b), 3);
    assert_int_equal(rs_coldstart_caught(b), 1);
    /* a version-2 state (the counts, before the own policy was kept) */
    unsigned char v2[RS_COLDSTART_STATE];
    put_v2(v2, 9, 4);
    assert_int_equal(rs_coldstart_load(b, v2, sizeof(v2), es, sizeof(es)), RS_OK);
    assert_int_equal(rs_coldstart_failures(b), 9);
    assert_int_equal(rs_coldstart_caught(b), 4);
    /* a version-1 state (n only, before the record): c = n, its weight */
    unsigned char v1[16];
    uint32_t hd[2] = {0x53435352u, 1};
    uint64_t n1 = 6;
    memcpy(v1, hd, sizeof(hd));
    memcpy(v1 + 8, &n1, sizeof(n1));
    assert_int_equal(rs_coldstart_load(b, v1, sizeof(v1), es, sizeof(es)), RS_OK);
    assert_int_equal(rs_coldstart_failures(b), 6);
    assert_int_equal(rs_coldstart_caught(b), 6);
    assert_float_equal(rs_coldstart_weight(b), 6.0 / 8.0, 1e-12);
    rs_coldstart_destroy(a);
    rs_coldstart_destroy(b);
}

/* The model's own policy inside the blend (rs_coldstart_track/observe/
 * machine_failure/repair) and its episodes across a restart. */
static rs_coldstart_t *tracked(void) {
    rs_maint_conf_t mc;
    rs_maint_conf_init(&mc);
    mc.horizon = H;
    mc.max_machines = 16;
    rs_coldstart_t *cs = rs_coldstart_new(names, DIM, mc.alert_threshold);
    char es[256];
    assert_int_equal(rs_coldstart_track(cs, &mc, es, sizeof(es)), RS_OK);
    return cs;
}

static void test_own_policy(void **st) {
    (void)st;
    const int64_t iv = 600000; /* a reading every 10 minutes */
    float x[DIM] = {0};
    rs_coldstart_t *cs = tracked();
    /* machine 7's model score is high from 10 h before its failure at T,
     * machine 8's only from 2 h before (< H/3), machine 9 is repaired
     * after an episode and fails later without one */
    const int64_t T = 100 * H;
    for (int64_t t = T - 2 * H; t < T; t += iv) {
        float p7 = t >= T - 10 * 3600000LL ? 0.9f : 0.01f;
        float p8 = t >= T - 2 * 3600000LL ? 0.9f : 0.01f;
        float p9 = t < T - H ? 0.9f : 0.01f;
        /* the blend's score: x on the baseline adds nothing */
        assert_true(rs_coldstart_observe(cs, 7, t, x, p7) == p7);
        rs_coldstart_observe(cs, 8, t, x, p8);
        rs_coldstart_observe(cs, 9, t, x, p9);
        if (t == T - H - 3 * iv) rs_coldstart_repair(cs, 9);
    }
    rs_coldstart_machine_failure(cs, 7, T);
    rs_coldstart_machine_failure(cs, 8, T);
    rs_coldstart_machine_failure(cs, 9, T);
    assert_int_equal(rs_coldstart_failures(cs), 3);
    assert_int_equal(rs_coldstart_caught(cs), 1); /* machine 7 only */
    /* untracked: a failure is counted, never caught */
    rs_coldstart_t *u = rs_coldstart_new(names, DIM, 0.3);
    rs_coldstart_observe(u, 7, T - H, x, 0.9f);
    rs_coldstart_machine_failure(u, 7, T);
    assert_int_equal(rs_coldstart_failures(u), 1);
    assert_int_equal(rs_coldstart_caught(u), 0);
    rs_coldstart_destroy(u);
    rs_coldstart_destroy(cs);
}

static void test_own_restart(void **st) {
    (void)st;
    const int64_t iv = 600000;
    float x[DIM] = {0};
    const int64_t T = 100 * H;
    /* machine 5's episode opens 10 h before its failure; the service
     * restarts 4 h before it (< H/3): the episode that was open before
     * the restart is the catch, 10 h ahead */
    rs_coldstart_t *a = tracked();
    for (int64_t t = T - H; t < T - 4 * 3600000LL; t += iv) {
        rs_coldstart_observe(a, 5, t, x, t >= T - 10 * 3600000LL ? 0.9f : 0.01f);
        rs_coldstart_observe(a, 6, t, x, 0.01f);
    }
    rs_coldstart_failure(a, H, H); /* an earlier failure, caught */
    size_t len = rs_coldstart_state_size(a);
    /* 2 machines in the own policy, 2 with CUSUMs */
    assert_int_equal(len, POL + 8 + 2 * 48 + 8 + 2 * CUE);
    unsigned char *buf = malloc(len);
    rs_coldstart_save(a, buf);
    rs_coldstart_t *b = tracked(), *c = tracked();
    char es[256];
    assert_int_equal(rs_coldstart_load(b, buf, len, es, sizeof(es)), RS_OK);
    for (int64_t t = T - 4 * 3600000LL; t < T; t += iv) {
        rs_coldstart_observe(b, 5, t, x, 0.9f);
        rs_coldstart_observe(c, 5, t, x, 0.9f); /* restarted without it */
    }
    rs_coldstart_machine_failure(b, 5, T);
    rs_coldstart_machine_failure(c, 5, T);
    assert_int_equal(rs_coldstart_failures(b), 2);
    assert_int_equal(rs_coldstart_caught(b), 2);  /* 10 h ahead */
    assert_int_equal(rs_coldstart_caught(c), 0);  /* 4 h: under H/3 */
    /* the same state loaded without a policy: counts, policy checked */
    rs_coldstart_t *d = rs_coldstart_new(names, DIM, 0.3);
    assert_int_equal(rs_coldstart_load(d, buf, len, es, sizeof(es)), RS_OK);
    assert_int_equal(rs_coldstart_caught(d), 1);
    /* damaged policy part: refused, the policy and counts as they were */
    buf[POL + 8 + 48 + 44] = 7; /* open flag */
    assert_int_equal(rs_coldstart_load(c, buf, len, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_int_equal(rs_coldstart_failures(c), 1);
    /* the same machine twice */
    buf[POL + 8 + 48 + 44] = 0;
    memcpy(buf + POL + 8 + 48, buf + POL + 8, 8);
    assert_int_equal(rs_coldstart_load(c, buf, len, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_int_equal(rs_coldstart_state_size(c), POL + 8 + 48 + 8 + CUE);
    free(buf);
    rs_coldstart_destroy(a);
    rs_coldstart_destroy(b);
    rs_coldstart_destroy(c);
    rs_coldstart_destroy(d);
}

/* A deterministic standard normal (xorshift64*, Box-Muller). */
static double normal(uint64_t *st) {
    double u[2];
    for (int k = 0; k < 2; k++) {
        *st ^= *st >> 12; *st ^= *st << 25; *st ^= *st >> 27;
        u[k] = ((*st * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
    }
    return sqrt(-2.0 * log(u[0] + 0x1.0p-60)) * cos(6.283185307179586 * u[1]);
}

static void test_spread(void **st) {
    (void)st;
    float x[DIM] = {0};
    uint64_t rng = 42;
    /* healthy machines whose 48-reading means spread 0.4 of a reading's
     * sd (x[4], x[8]: the longest span's base_z): a mean 3 of ITS sds
     * off (1.2) scores the threshold once the spread is learned; the
     * 3-sd rule of one reading's sd said 0.29 */
    rs_coldstart_t *cs = rs_coldstart_new(names, DIM, 0.3);
    x[4] = 1.2f;
    float before = rs_coldstart_reference(cs, x);
    assert_true(before < 0.3f);
    x[4] = 0;
    for (int i = 0; i < 20000; i++) {
        x[4] = (float)(0.4 * normal(&rng));
        x[8] = (float)(0.4 * normal(&rng));
        rs_coldstart_observe(cs, (uint64_t)(i % 50) + 1, i, x, 0.01f);
    }
    x[8] = 0;
    x[4] = 1.2f;
    assert_float_equal(rs_coldstart_reference(cs, x), 0.3, 0.015);
    x[4] = 0.6f; /* 1.5 of its sds: no alert */
    assert_true(rs_coldstart_reference(cs, x) < 0.2f);
    /* the learned spread survives a restart */
    rs_coldstart_t *b = rs_coldstart_new(names, DIM, 0.3);
    unsigned char buf[256];
    assert_true(rs_coldstart_state_size(cs) <= sizeof(buf));
    rs_coldstart_save(cs, buf);
    char es[256];
    assert_int_equal(rs_coldstart_load(b, buf, rs_coldstart_state_size(cs),
                                       es, sizeof(es)), RS_OK);
    x[4] = 1.2f;
    assert_true(rs_coldstart_reference(b, x) == rs_coldstart_reference(cs, x));
    rs_coldstart_destroy(b);
    rs_coldstart_destroy(cs);
    /* 5 % of readings from failing machines 25 spreads off: the clip at 3
     * learned sds bounds their pull (0.4 -> about 0.53; unclipped the
     * spread would be 2.3, then held at one reading's, 1) */
    cs = rs_coldstart_new(names, DIM, 0.3);
    for (int i = 0; i < 20000; i++) {
        x[4] = i % 20 == 0 ? 10.0f : (float)(0.4 * normal(&rng));
        rs_coldstart_observe(cs, 1, i, x, 0.01f);
    }
    x[4] = 1.2f;
    float r = rs_coldstart_reference(cs, x);
    assert_true(r > 0.22f && r < 0.3f);  /* 1.2 / 0.53 = 2.3 sds */
    rs_coldstart_destroy(cs);
    /* a fleet whose means never move: no tighter than 48 independent
     * readings (1/sqrt 48): a mean 3/sqrt 48 off scores the threshold */
    cs = rs_coldstart_new(names, DIM, 0.3);
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 20000; i++) rs_coldstart_observe(cs, 1, i, x, 0.01f);
    x[4] = (float)(3.0 / sqrt(48.0));
    assert_float_equal(rs_coldstart_reference(cs, x), 0.3, 1e-4);
    rs_coldstart_destroy(cs);
}

/* The change-point statistic: a two-sided CUSUM per machine of the
 * longest span's mean in its learned spread.  Readings iid N(0, 1) in a
 * machine's sds; x[4] the mean of the last 48 (the span's base_z). */
typedef struct { float r[48]; int n, head; double sum; } win48_t;
static float win_push(win48_t *w, float v) {
    if (w->n == 48) w->sum -= w->r[w->head]; else w->n++;
    w->r[w->head] = v;
    w->sum += v;
    w->head = (w->head + 1) % 48;
    return (float)(w->sum / w->n);
}
/* the mean of the last 12 readings of w (the shorter span's base_z,
 * x[2]) */
static float win_mean12(const win48_t *w) {
    double sum = 0;
    int k = w->n < 12 ? w->n : 12;
    for (int j = 1; j <= k; j++) sum += w->r[(w->head - j + 48) % 48];
    return k ? (float)(sum / k) : 0;
}
/* one reading v into machine m's window: both spans' means of sensor a */
static void push2(win48_t *w, float *x, float v) {
    x[4] = win_push(w, v);
    x[2] = win_mean12(w);
}

static void test_cusum(void **st) {
    (void)st;
    uint64_t rng = 7;
    float x[DIM] = {0};
    rs_coldstart_t *cs = tracked(); /* w = 0: observe returns u itself */
    static win48_t w[16];
    /* stationary: 16 machines x 12 000 readings; the alarm (u >= the
     * threshold 0.3, from the CUSUM: 1.2 sds is never 3 of them) starts
     * (rs_coldstart_change >= 1) as rarely as designed, once per 370 spans (17 760 readings) per
     * sensor and machine, so about 16 x 12 000 / 17 760 = 11 here */
    int starts = 0, on[16] = {0};
    for (int i = 0; i < 12000; i++)
        for (int m = 0; m < 16; m++) {
            push2(&w[m], x, (float)normal(&rng));
            rs_coldstart_observe(cs, (uint64_t)m + 1, i, x, 0);
            float c = rs_coldstart_change(cs, (uint64_t)m + 1);
            if (c >= 1 && !on[m]) starts++;
            on[m] = c >= 1;
        }
    assert_true(starts <= 22); /* at most twice the design rate */
    /* a step of 1 sd on machine 1 (its 48-mean then 1 / (1/sqrt 48) =
     * 7 of its sds off): alarmed within one span; the 3-sd rule of one
     * reading's sd (today's without the learned spread) never would */
    for (int m = 0; m < 16; m++) rs_coldstart_repair(cs, (uint64_t)m + 1);
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 48; i++) {
        push2(&w[0], x, (float)normal(&rng));
        rs_coldstart_observe(cs, 1, i, x, 0);
    }
    int fired = -1;
    for (int i = 0; i < 48 && fired < 0; i++) {
        push2(&w[0], x, (float)(1.0 + normal(&rng)));
        if (rs_coldstart_observe(cs, 1, 48 + i, x, 0) >= 0.3f) fired = i;
    }
    assert_true(fired >= 0 && fired < 48);
    /* memory: the step fades to 0.4 sd (its mean 2.8 of its sds: under
     * the rule's 3) and the alarm holds for 5 spans (the CUSUM grows by
     * 2.8 - 1.5 a reading) */
    for (int i = 0; i < 240; i++) {
        push2(&w[0], x, (float)(0.4 + normal(&rng)));
        assert_true(rs_coldstart_observe(cs, 1, 200 + i, x, 0) >= 0.3f);
    }
    /* the CUSUMs survive a restart (the checkpoint's state) */
    size_t len = rs_coldstart_state_size(cs);
    unsigned char *buf = malloc(len);
    rs_coldstart_save(cs, buf);
    rs_coldstart_t *b = tracked();
    char es[256];
    assert_int_equal(rs_coldstart_load(b, buf, len, es, sizeof(es)), RS_OK);
    assert_true(rs_coldstart_change(cs, 1) > 1);
    assert_true(rs_coldstart_change(b, 1) == rs_coldstart_change(cs, 1));
    assert_true(rs_coldstart_change(b, 2) == rs_coldstart_change(cs, 2));
    free(buf);
    rs_coldstart_destroy(b);
    /* a failure starts a new life: the CUSUM is 0 again */
    rs_coldstart_machine_failure(cs, 1, 1000);
    x[4] = 0;
    x[2] = 0;
    assert_float_equal(rs_coldstart_observe(cs, 1, 1001, x, 0), 0, 1e-7);
    rs_coldstart_destroy(cs);
}

/* Siegmund's in-control run length (looks) of a one-sided CUSUM with
 * reference k and interval hb (in sds of a look), as coldstart.c. */
static double siegmund(double k, double hb) {
    double b = 2 * k * (hb + 1.166);
    return (exp(b) - b - 1) / (2 * k * k);
}

/* i14cusum: the CUSUM reads the SHORTEST span's means (x[2], x[7]: the
 * 12-reading base_z), at the longest span's false-alarm rate per reading
 * (740 looks of 48 readings per side = 2960 looks of 12: h = 12 x 2.000
 * = 24.0, where the 48-reading CUSUM's is 48 x 1.538 = 73.8); a step on
 * the 12-reading mean alone alarms, one on the 48-reading mean alone
 * (the 3-sd rule's features) does not move it; a version-3 state (its
 * CUSUMs of the 48-reading means) loads with the counts and the ref
 * spreads, its CUSUMs start afresh. */
static void test_cusum_span(void **st) {
    (void)st;
    rs_coldstart_t *cs = tracked();
    float x[DIM] = {0};
    /* a mean 3.5 of its sds off (at the prior spread 1: z = 3.5 in
     * every reading, past the clip) grows S+ by 3.5 - k = 2 a reading:
     * after 12 readings S = 24; the reading with it (x[1] = x[2]: no
     * step against the mean, the difference's CUSUM i16diff stays 0).
     * i16diff: the budget is split with the difference's CUSUM, so h =
     * 12 hb(2 x 2960) = 26.8 */
    x[2] = 3.5f;
    x[1] = 3.5f;
    for (int i = 0; i < 12; i++) rs_coldstart_observe(cs, 1, i, x, 0);
    assert_true(rs_coldstart_step(cs, 1) == 0);
    double c = rs_coldstart_change(cs, 1); /* S / h */
    assert_true(c > 0);
    double h = 24.0 / c, hb = h / 12;
    assert_float_equal(h, 26.8, 0.05);
    /* ... which is h from the formula, not a constant: 5920 looks */
    assert_float_equal(siegmund(1.5, hb) / (2 * 740.0 * 48 / 12), 1, 0.01);
    /* the 48-reading mean alone (the 3-sd rule's) moves no CUSUM */
    x[2] = 0;
    x[1] = 0;
    x[4] = 3.5f;
    for (int i = 0; i < 12; i++) rs_coldstart_observe(cs, 2, i, x, 0);
    assert_true(rs_coldstart_change(cs, 2) == 0);
    /* a step of 2 reading-sds (independent readings: the 12-mean's
     * spread 1/sqrt 12 learned first) alarms within a span and a half;
     * the 48-reading mean's CUSUM needs about 43 readings, and the 3-sd
     * rule on that mean (3 / sqrt 48 = 0.43 of a reading's sd) about 10
     * ... so x[4] is held at 0 here: the alarm is the CUSUM's */
    rs_coldstart_destroy(cs);
    cs = tracked();
    uint64_t rng = 11;
    static win48_t w[8];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 4000; i++)
        for (int m = 0; m < 8; m++) {
            push2(&w[m], x, (float)normal(&rng));
            x[4] = 0;
            x[1] = x[2]; /* the difference's CUSUM (i16diff) held at 0 */
            rs_coldstart_observe(cs, (uint64_t)m + 1, i, x, 0);
        }
    for (int m = 0; m < 8; m++) rs_coldstart_repair(cs, (uint64_t)m + 1);
    int fired = -1;
    for (int i = 0; i < 48 && fired < 0; i++) {
        push2(&w[0], x, (float)(2.0 + normal(&rng)));
        x[4] = 0;
        x[1] = x[2];
        if (rs_coldstart_observe(cs, 1, 5000 + i, x, 0) >= 0.3f) fired = i;
    }
    assert_true(fired >= 0 && fired < 18);
    /* a version-3 state (before i14cusum): counts, one spread block (the
     * ref features'), no policy, one machine's CUSUMs of the 48-reading
     * means (20 = 0.27 h there, 0.83 h here: not these) */
    unsigned char v3[RS_COLDSTART_STATE + SPREAD + 8 + 8 + CUE4];
    uint32_t hd[2] = {0x53435352u, 3}, sh[2] = {2, 0};
    uint64_t n = 9, cc = 4, zero = 0, m1 = 1, key = 1;
    double nobs = 10048, ss[2] = {0.16 * 10048, 0.16 * 10048};
    float S[4] = {20, 0, 0, 0};
    unsigned char *o = v3;
    memcpy(o, hd, 8);
    memcpy(o + 8, &n, 8);
    memcpy(o + 16, &cc, 8);
    o += RS_COLDSTART_STATE;
    memcpy(o, sh, 8);
    memcpy(o + 8, &nobs, 8);
    memcpy(o + 16, ss, 16);
    o += SPREAD;
    memcpy(o, &zero, 8); /* the own policy: 0 machines */
    memcpy(o + 8, &m1, 8);
    memcpy(o + 16, &key, 8);
    memcpy(o + 24, S, 16);
    rs_coldstart_t *b = tracked();
    char es[256];
    assert_int_equal(rs_coldstart_load(b, v3, sizeof(v3), es, sizeof(es)),
                     RS_OK);
    assert_int_equal(rs_coldstart_failures(b), 9);
    assert_int_equal(rs_coldstart_caught(b), 4);
    assert_true(rs_coldstart_change(b, 1) == 0);
    memset(x, 0, sizeof(x));
    x[4] = 1.2f; /* 3 of the restored spread 0.4 (prior 48 of 10 048) */
    assert_float_equal(rs_coldstart_reference(b, x), 0.3, 0.01);
    /* it saves as version 5 (i16diff) */
    unsigned char out[512];
    assert_true(rs_coldstart_state_size(b) <= sizeof(out));
    rs_coldstart_save(b, out);
    assert_int_equal(out[4], 5);
    rs_coldstart_destroy(b);
    rs_coldstart_destroy(cs);
}

/* One machine's cold-start state (own policy entry, CUSUMs) moves to
 * another blend (its partition moved, scoring/alerts.h): the moved
 * machine's own episode counts for its failure there and its CUSUMs go
 * on; forgotten on the old one; damaged records refused by name. */
static void test_machine_move(void **st) {
    (void)st;
    const int64_t iv = 600000;
    const int64_t T = 100 * H;
    float x[DIM] = {0}, xs[DIM] = {0};
    xs[4] = 2.0f; /* ent_a_base_z_last48_incl: a step */
    xs[8] = -1.0f;
    xs[2] = 2.0f; /* ... and the 12-reading means the CUSUMs read */
    xs[7] = -1.0f;
    xs[1] = 5.0f; /* i16diff: the reading 3 above its 12-reading mean */
    xs[6] = -1.0f;
    rs_coldstart_t *a = tracked(), *b = tracked();
    for (int64_t t = T - H; t < T - 4 * 3600000LL; t += iv) {
        rs_coldstart_observe(a, 5, t, xs, t >= T - 10 * 3600000LL ? 0.9f : 0.01f);
        for (uint64_t m = 10; m < 14; m++) rs_coldstart_observe(a, m, t, x, 0.01f);
    }
    float ch = rs_coldstart_change(a, 5), sd = rs_coldstart_step(a, 5);
    assert_true(ch > 0 && sd > 0);
    unsigned char buf[RS_COLDSTART_MACHINE_MAX];
    size_t n = rs_coldstart_machine_save(a, 5, NULL, 0);
    assert_int_equal(n, 8 + 48 + 8 * 2 + 8 + 12 * 2);
    assert_int_equal(rs_coldstart_machine_save(a, 5, buf, sizeof(buf)), n);
    /* own entry, CUSUMs of the short span, the differences' (i16diff) */
    assert_int_equal(buf[4], 1 | 4 | 8);
    assert_int_equal(rs_coldstart_machine_save(a, 99, buf + 200, 100), 0);
    char es[256];
    assert_int_equal(rs_coldstart_machine_load(b, 5, buf, n, es, sizeof(es)),
                     RS_OK);
    rs_coldstart_machine_forget(a, 5);
    assert_int_equal(rs_coldstart_machine_save(a, 5, NULL, 0), 0);
    assert_true(rs_coldstart_change(a, 5) == 0);
    /* the same CUSUMs there (S / h: the differences' h is the fleet's
     * learned one, another on b; the record's bytes are the same) */
    unsigned char rb[RS_COLDSTART_MACHINE_MAX];
    assert_int_equal(rs_coldstart_machine_save(b, 5, rb, sizeof(rb)), n);
    assert_memory_equal(rb, buf, n);
    assert_true(rs_coldstart_step(b, 5) > 0);
    for (uint64_t m = 10; m < 14; m++) /* the others still there */
        assert_int_equal(rs_coldstart_machine_save(a, m, NULL, 0), n);
    /* b goes on: the own episode opened before the move catches the
     * failure 10 h ahead (a fresh blend: 4 h, under H/3) */
    for (int64_t t = T - 4 * 3600000LL; t < T; t += iv)
        rs_coldstart_observe(b, 5, t, xs, 0.9f);
    rs_coldstart_machine_failure(b, 5, T);
    assert_int_equal(rs_coldstart_caught(b), 1);
    /* refused by name: another machine's entry, a negative CUSUM, a
     * wrong length, unknown flags */
    assert_int_equal(rs_coldstart_machine_load(b, 6, buf, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(es, "not"));
    unsigned char bad[RS_COLDSTART_MACHINE_MAX];
    memcpy(bad, buf, n);
    float neg = -1;
    memcpy(bad + 8 + 48, &neg, 4);
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(es, "CUSUM"));
    assert_int_equal(rs_coldstart_machine_check(5, buf, n - 1, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, n);
    bad[4] = 16;
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    bad[4] = 1 | 8; /* the differences without the CUSUMs */
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, n);
    float nan = NAN, four = 4; /* a difference's S+; its last reading */
    memcpy(bad + 8 + 48 + 16 + 8, &nan, 4);
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    memcpy(bad, buf, n);
    memcpy(bad + 8 + 48 + 16 + 8 + 8, &four, 4);
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    /* a record of an instance before i16diff (flags 1 | 4, no
     * differences) loads: its CUSUMs go on, the differences' at 0 */
    memcpy(bad, buf, n);
    bad[4] = 1 | 4;
    rs_coldstart_t *e = tracked();
    assert_int_equal(rs_coldstart_machine_load(e, 5, bad, 8 + 48 + 16, es,
                                               sizeof(es)), RS_OK);
    assert_true(rs_coldstart_step(e, 5) == 0);
    assert_true(rs_coldstart_change(e, 5) > 0);
    rs_coldstart_destroy(e);
    bad[4] = 1 | 2 | 4; /* the CUSUMs of both spans: one layout only */
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    /* a record of an instance before i14cusum (flag 2: CUSUMs of the
     * longest span) loads; its CUSUMs, of another span, start afresh */
    memcpy(bad, buf, n);
    bad[4] = 1 | 2 | 8;
    rs_coldstart_t *d = tracked();
    assert_int_equal(rs_coldstart_machine_load(d, 5, bad, n, es, sizeof(es)),
                     RS_OK);
    assert_true(rs_coldstart_change(d, 5) == 0);
    assert_int_equal(rs_coldstart_machine_save(d, 5, NULL, 0), 8 + 48);
    rs_coldstart_destroy(d);
    /* another layout's CUSUMs start afresh; the own entry still loads */
    memcpy(bad, buf, n);
    rs_coldstart_t *c = tracked();
    uint32_t one = 1;
    memcpy(bad, &one, 4); /* nref 1: 8 + 48 + 8 bytes */
    bad[4] = 1 | 4;
    assert_int_equal(rs_coldstart_machine_load(c, 5, bad, 8 + 48 + 8, es,
                                               sizeof(es)), RS_OK);
    assert_true(rs_coldstart_change(c, 5) == 0);
    assert_int_equal(rs_coldstart_machine_save(c, 5, NULL, 0), 8 + 48);
    rs_coldstart_destroy(a);
    rs_coldstart_destroy(b);
    rs_coldstart_destroy(c);
}

/* A machine's record follows its partition between instances (i16span):
 * features.sensor_spans 12,48 (the default before) and 6,12,48 give the
 * same number of CUSUM features under the same flag (4: the shortest
 * span), so only the span tells a record of 12-reading CUSUMs from one of
 * 6-reading ones.  Loaded where the CUSUM reads 6-reading means, the
 * 12-reading CUSUMs start afresh (read as 6-reading ones they would sit
 * on another scale against another interval: h 24.0 vs 13.4); between
 * two blends of one layout they go on; a record without the span (an
 * instance before i16span) starts afresh; a span over 4096 is no record.
 * The state file (version 4, tagged with N_c since i14cusum) the same. */
static const char *const names6[] = {
    "ent_life",
    "ent_a_base_z", "ent_a_base_z_last6_incl", "ent_a_base_z_last12_incl",
    "ent_a_base_z_last48_incl",
    "ent_b_base_z", "ent_b_base_z_last6_incl", "ent_b_base_z_last12_incl",
    "ent_b_base_z_last48_incl",
};

static rs_coldstart_t *tracked6(void) {
    rs_maint_conf_t mc;
    rs_maint_conf_init(&mc);
    mc.horizon = H;
    mc.max_machines = 16;
    rs_coldstart_t *cs = rs_coldstart_new(names6, DIM, mc.alert_threshold);
    char es[256];
    assert_int_equal(rs_coldstart_track(cs, &mc, es, sizeof(es)), RS_OK);
    return cs;
}

static void test_machine_span(void **st) {
    (void)st;
    const int64_t iv = 600000;
    float x12[DIM] = {0}, x6[DIM] = {0};
    x12[2] = 2.0f; /* ent_a_base_z_last12_incl of `names`: a step */
    x12[7] = -1.0f;
    x6[2] = 2.0f; /* ent_a_base_z_last6_incl of `names6` */
    x6[6] = -1.0f;
    rs_coldstart_t *a = tracked(), *a6 = tracked6(), *b6 = tracked6();
    for (int i = 0; i < 20; i++) {
        rs_coldstart_observe(a, 5, i * iv, x12, 0.01f);
        rs_coldstart_observe(a6, 5, i * iv, x6, 0.01f);
    }
    assert_true(rs_coldstart_change(a, 5) > 0);
    float ch6 = rs_coldstart_change(a6, 5);
    assert_true(ch6 > 0);
    char es[256];
    unsigned char buf[RS_COLDSTART_MACHINE_MAX], bad[RS_COLDSTART_MACHINE_MAX];
    size_t n = rs_coldstart_machine_save(a, 5, buf, sizeof(buf));
    assert_true(n > 8 && n <= sizeof(buf));
    assert_int_equal(buf[4] & 4, 4); /* flag 4 in both layouts */
    assert_int_equal(rs_coldstart_machine_load(b6, 5, buf, n, es, sizeof(es)),
                     RS_OK);
    assert_true(rs_coldstart_change(b6, 5) == 0);
    /* the same spans: they go on */
    n = rs_coldstart_machine_save(a6, 5, buf, sizeof(buf));
    assert_true(n > 8 && n <= sizeof(buf));
    assert_int_equal(rs_coldstart_machine_load(b6, 5, buf, n, es, sizeof(es)),
                     RS_OK);
    assert_true(rs_coldstart_change(b6, 5) == ch6);
    /* untagged (ncu alone in the first word): the span is not known */
    memcpy(bad, buf, n);
    uint32_t w = 2;
    memcpy(bad, &w, 4);
    rs_coldstart_t *c6 = tracked6();
    assert_int_equal(rs_coldstart_machine_load(c6, 5, bad, n, es, sizeof(es)),
                     RS_OK);
    assert_true(rs_coldstart_change(c6, 5) == 0);
    w = 2 | 5000u << 16;
    memcpy(bad, &w, 4);
    assert_int_equal(rs_coldstart_machine_check(5, bad, n, es, sizeof(es)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(es, "span 5000"));
    /* the state file: 12-reading CUSUMs into the 6-span blend start at 0,
     * a 6-span state's go on */
    size_t sz = rs_coldstart_state_size(a), sz6 = rs_coldstart_state_size(a6);
    unsigned char *sb = malloc(sz), *sb6 = malloc(sz6);
    rs_coldstart_save(a, sb);
    rs_coldstart_save(a6, sb6);
    rs_coldstart_t *d6 = tracked6();
    assert_int_equal(rs_coldstart_load(d6, sb, sz, es, sizeof(es)), RS_OK);
    assert_true(rs_coldstart_change(d6, 5) == 0);
    assert_int_equal(rs_coldstart_load(d6, sb6, sz6, es, sizeof(es)), RS_OK);
    assert_true(rs_coldstart_change(d6, 5) == ch6);
    free(sb);
    free(sb6);
    rs_coldstart_destroy(a);
    rs_coldstart_destroy(a6);
    rs_coldstart_destroy(b6);
    rs_coldstart_destroy(c6);
    rs_coldstart_destroy(d6);
}

/* The blend's weight per machine: where the reference is in alarm while
 * the model's own policy has no episode open on that machine, the
 * model's fleet-wide weight w counts half (w / 2); where the own policy
 * is open, or the reference is below the threshold, w as it is. */
static void test_disagree(void **st) {
    (void)st;
    const int64_t iv = 600000;
    rs_coldstart_t *cs = tracked();
    rs_coldstart_set_failures(cs, 98, 98); /* w = 98 / (98 + 2) */
    const double w = 0.98;
    assert_float_equal(rs_coldstart_weight(cs), w, 1e-12);
    float x0[DIM] = {0}, x[DIM] = {0};
    x[4] = 6; /* a sensor 6 sd off: the reference in alarm */
    /* machine 1: the model's own policy opens (3 readings >= 0.3) */
    for (int i = 0; i < 3; i++)
        rs_coldstart_observe(cs, 1, i * iv, x0, 0.9f);
    float u = rs_coldstart_reference(cs, x);
    assert_true(u >= 0.3f);
    float s1 = rs_coldstart_observe(cs, 1, 3 * iv, x, 0.9f);
    assert_float_equal(s1, 1 - 0.1 * (1 - (1 - w) * u), 1e-6);
    /* machine 2: the model silent where the reference alarms */
    u = rs_coldstart_reference(cs, x);
    float s2 = rs_coldstart_observe(cs, 2, 3 * iv, x, 0.01f);
    assert_float_equal(s2, 1 - 0.99 * (1 - (1 - w / 2) * u), 1e-6);
    assert_true(s2 > 0.5f * u); /* the model's full weight: 0.03 u */
    /* machine 3: the reference under its threshold: w as it is */
    float xl[DIM] = {0};
    xl[4] = 1.5f;
    u = rs_coldstart_reference(cs, xl);
    assert_true(u < 0.3f && u > 0);
    float s3 = rs_coldstart_observe(cs, 3, 3 * iv, xl, 0.01f);
    assert_float_equal(s3, 1 - 0.99 * (1 - (1 - w) * u), 1e-6);
    /* the weight itself (the fleet's record) is unchanged */
    assert_float_equal(rs_coldstart_weight(cs), w, 1e-12);
    /* without the own policy (untracked) there is nothing to disagree
     * with: the fleet's weight */
    rs_coldstart_t *un = rs_coldstart_new(names, DIM, 0.3);
    rs_coldstart_set_failures(un, 98, 98);
    u = rs_coldstart_reference(un, x);
    assert_float_equal(rs_coldstart_observe(un, 2, 0, x, 0.01f),
                       1 - 0.99 * (1 - (1 - w) * u), 1e-6);
    rs_coldstart_destroy(un);
    rs_coldstart_destroy(cs);
}

/* i16diff: the CUSUM of the reading against its 12-reading mean (x[1] -
 * x[2]) keeps its false-alarm budget on dependent readings.  Readings
 * like the generator's: 30 % of their variance an AR(1) of 0.95 a
 * reading (the load), 70 % independent; the difference then has a
 * lag-1 correlation of about 0.1, enough to make the independent
 * design (h = hb(1.5, 71040) = 3.06) alarm 3.7x as often as designed
 * (a simulation of 2 x 10^7 readings).  The interval learned from the
 * difference's lag-1 correlation keeps the starts within half to twice
 * the design (and above a quarter of it: the factor is conservative
 * where d is mostly independent noise); a step of 3 reading sds alarms on its reading or within
 * the 2 after (the 12-reading mean's CUSUM moves by 1/12 of it a
 * reading). */
static void test_diff_cusum(void **st) {
    (void)st;
    rs_coldstart_t *cs = tracked(); /* w = 0: observe returns u itself */
    static win48_t w[16];
    double ar[16] = {0};
    uint64_t rng = 5;
    float x[DIM] = {0};
    const double phi = 0.95, a = 0.3;
    int starts = 0, on[16] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++)
        for (int m = 0; m < 16; m++) {
            ar[m] = phi * ar[m] + sqrt(1 - phi * phi) * normal(&rng);
            float v = (float)(sqrt(a) * ar[m] + sqrt(1 - a) * normal(&rng));
            push2(&w[m], x, v);
            x[1] = v; /* the reading's own base_z */
            rs_coldstart_observe(cs, (uint64_t)m + 1, i, x, 0);
            float c = rs_coldstart_step(cs, (uint64_t)m + 1);
            if (c >= 1 && !on[m]) starts++;
            on[m] = c >= 1;
        }
    /* designed: one alarm per 2 x 740 x 48 = 71 040 readings a side */
    double designed = 2.0 * 16 * n / 71040.0; /* 18.0 */
    print_message("diff CUSUM: %d alarm starts, %.1f designed\n", starts,
                  designed);
    /* at most twice the design (the independent interval: 3.7x); the
     * AR(1) factor is conservative where d is mostly independent noise
     * (0.85x in the simulation), so at least a quarter of it: the step
     * below checks it is not deaf */
    assert_true(starts >= designed / 4 && starts <= designed * 2);
    /* a step of 3 reading sds on each machine (a fresh life: CUSUMs at
     * 0): in expectation d is 3 x 11/12 / 0.85 = 3.2 of its sds on the
     * step's reading, 2.9 and 2.6 on the next (the mean catches up 1/12
     * a reading), S = 1.7, 3.1, 4.3 against h ~ 3.7.  Simulated (10^5
     * steps, these readings, h 3.75): 62 % alarm on the step's reading
     * or within the 2 after, 89 % within 12; the 12-reading mean's
     * CUSUM (h 26.8 in its sds ~0.57) needs about 12 */
    int early = 0, late = 0;
    for (int m = 0; m < 16; m++) {
        rs_coldstart_repair(cs, (uint64_t)m + 1);
        int fired = -1;
        for (int i = 0; i < 12 && fired < 0; i++) {
            ar[m] = phi * ar[m] + sqrt(1 - phi * phi) * normal(&rng);
            float v = (float)(3.0 + sqrt(a) * ar[m] + sqrt(1 - a) * normal(&rng));
            push2(&w[m], x, v);
            x[1] = v;
            float u = rs_coldstart_observe(cs, (uint64_t)m + 1, n + i, x, 0);
            if (rs_coldstart_step(cs, (uint64_t)m + 1) >= 1) {
                fired = i;
                assert_true(u >= 0.3f); /* the blend alarms with it */
            }
        }
        early += fired >= 0 && fired <= 2;
        late += fired >= 0;
    }
    print_message("diff CUSUM: 3-sd steps: %d of 16 alarm within 2 readings "
                  "after, %d within 12\n", early, late);
    assert_true(early >= 6 && late >= 11); /* 10 and 14 expected */
    /* the state (version 5) keeps the differences' spread, correlation
     * and CUSUMs: the same S / h after a load (to 0.1 %: the running
     * blend updates h every 256 readings, the loaded one from the sums
     * as saved) */
    size_t len = rs_coldstart_state_size(cs);
    unsigned char *buf = malloc(len), *v4 = malloc(len);
    rs_coldstart_save(cs, buf);
    assert_int_equal(buf[4], 5);
    rs_coldstart_t *b = tracked();
    char es[256];
    assert_int_equal(rs_coldstart_load(b, buf, len, es, sizeof(es)), RS_OK);
    int moving = 0;
    for (int m = 0; m < 16; m++) {
        double s0 = rs_coldstart_step(cs, (uint64_t)m + 1);
        assert_float_equal(rs_coldstart_step(b, (uint64_t)m + 1), s0,
                           1e-3 * s0 + 1e-9);
        moving += rs_coldstart_step(cs, (uint64_t)m + 1) > 0;
    }
    assert_true(moving > 0);
    rs_coldstart_destroy(b);
    /* a version-4 state (main before i16diff: no difference block, CUSUM
     * entries of the 12-reading means only) loads: its CUSUMs go on, the
     * differences' start at 0 */
    size_t o = RS_COLDSTART_STATE + 2 * SPREAD, pol = len - o - DIFFB;
    uint64_t mp, mc;
    memcpy(&mp, buf + o + DIFFB, 8);
    memcpy(&mc, buf + o + DIFFB + 8 + 48 * mp, 8);
    assert_int_equal(mc, 16);
    memcpy(v4, buf, o);
    v4[4] = 4;
    memcpy(v4 + o, buf + o + DIFFB, 8 + 48 * mp + 8);
    size_t w4 = o + 8 + 48 * mp + 8;
    for (uint64_t j = 0; j < mc; j++, w4 += CUE4)
        memcpy(v4 + w4, buf + o + DIFFB + 8 + 48 * mp + 8 + j * CUE, CUE4);
    assert_true(w4 < len && pol > 0);
    b = tracked();
    assert_int_equal(rs_coldstart_load(b, v4, w4, es, sizeof(es)), RS_OK);
    int kept = 0;
    for (int m = 0; m < 16; m++) {
        assert_true(rs_coldstart_step(b, (uint64_t)m + 1) == 0);
        kept += rs_coldstart_change(b, (uint64_t)m + 1) > 0;
    }
    assert_true(kept > 0); /* the 12-reading means' CUSUMs after the steps */
    rs_coldstart_destroy(b);
    free(buf);
    free(v4);
    rs_coldstart_destroy(cs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_weight),
        cmocka_unit_test(test_noise),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_own_policy),
        cmocka_unit_test(test_own_restart),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_cusum),
        cmocka_unit_test(test_cusum_span),
        cmocka_unit_test(test_machine_move),
        cmocka_unit_test(test_machine_span),
        cmocka_unit_test(test_disagree),
        cmocka_unit_test(test_diff_cusum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
