/* test_maint.c -- the maintenance alert policy (model/maint.h): debounce,
 * one alert per episode, cool-down, escalation, lead times (also as eval
 * counts them, rs_alertpol_lead), the table's checkpoint record
 * (rs_alertpol_ckpt_*), the payload and the top drifting sensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "model/maint.h"

#define H_MS 3600000LL
#define T0 1700000000000LL

static rs_alertpol_t *pol(int k, int64_t cooldown, double esc) {
    rs_maint_conf_t c;
    rs_maint_conf_init(&c);
    c.alert_readings = k;
    c.alert_cooldown = cooldown;
    c.alert_escalation = esc;
    c.max_machines = 4;
    char err[256];
    rs_alertpol_t *p = rs_alertpol_new(&c, err, sizeof(err));
    assert_non_null(p);
    return p;
}

/* score sequence -> decisions string: '.' none, 'A' alert, 'E' escalated */
static void run(rs_alertpol_t *p, uint64_t m, int64_t *t, const float *s,
                int n, char *out) {
    for (int i = 0; i < n; i++, *t += H_MS) {
        rs_alertpol_decision_t d = rs_alertpol_step(p, m, *t, s[i]);
        out[i] = d == RS_ALERTPOL_ALERT ? 'A' : d == RS_ALERTPOL_ESCALATED ? 'E' : '.';
    }
    out[n] = '\0';
}

static void test_debounce_episode(void **st) {
    (void)st;
    rs_alertpol_t *p = pol(3, 0, 1.0);
    int64_t t = T0;
    char d[64];
    /* two above, one below: no alert (debounce); then three above: one
     * alert; staying above: no more; 2 below do not close it (k = 3), one
     * above again: still the same episode; 3 below close it; 3 above: a
     * new episode (no cool-down) */
    const float s[] = {.9f, .9f, .1f, .9f, .9f, .9f, .9f, .9f, .1f, .1f, .9f,
                       .1f, .1f, .1f, .9f, .9f, .9f};
    run(p, 7, &t, s, (int)(sizeof(s) / sizeof(*s)), d);
    assert_string_equal(d, ".....A..........A");
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(p, &ps);
    assert_int_equal(ps.alerts, 2);
    assert_int_equal(ps.episodes, 2);
    assert_int_equal(ps.open, 1);
    assert_true(rs_alertpol_is_open(p, 7));
    /* another machine is independent */
    assert_false(rs_alertpol_is_open(p, 8));
    rs_alertpol_destroy(p);
}

static void test_cooldown_escalation(void **st) {
    (void)st;
    rs_alertpol_t *p = pol(1, 10 * H_MS, 0.2);
    int64_t t = T0;
    char d[64];
    /* alert at once (k = 1); +0.1 is no escalation, +0.25 is; the episode
     * closes (1 below) and a new one within 10 h of the last alert is
     * held back by the cool-down; after it, alerts again */
    const float s[] = {.6f, .7f, .85f, .1f, .9f, .1f, .1f, .1f, .1f, .1f,
                       .1f, .1f, .1f, .1f, .9f};
    run(p, 1, &t, s, (int)(sizeof(s) / sizeof(*s)), d);
    assert_string_equal(d, "A.E...........A");
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(p, &ps);
    assert_int_equal(ps.alerts, 2);
    assert_int_equal(ps.escalations, 1);
    assert_int_equal(ps.suppressed, 1);
    rs_alertpol_destroy(p);
}

static void test_failure_lead_and_table(void **st) {
    (void)st;
    rs_alertpol_t *p = pol(2, 0, 1.0);  /* horizon: default 24h */
    int64_t t = T0, lead = -1;
    char d[16];
    const float s[] = {.1f, .8f, .8f, .8f};
    run(p, 3, &t, s, 4, d);
    assert_string_equal(d, "..A.");
    /* alerted at T0 + 2h, fails at T0 + 12h: 10 h ahead */
    assert_int_equal(rs_alertpol_failure(p, 3, T0 + 12 * H_MS, &lead), 1);
    assert_int_equal(lead, 10 * H_MS);
    assert_false(rs_alertpol_is_open(p, 3));   /* repaired: afresh */
    /* a failure without an alert: missed */
    assert_int_equal(rs_alertpol_failure(p, 4, T0 + 12 * H_MS, &lead), 0);
    /* an alert more than the horizon before the failure is not a catch */
    t = T0;
    run(p, 5, &t, s, 4, d);
    assert_int_equal(rs_alertpol_failure(p, 5, T0 + 40 * H_MS, &lead), 0);
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(p, &ps);
    assert_int_equal(ps.failures, 3);
    assert_int_equal(ps.caught, 1);
    assert_int_equal(rs_alertpol_leads(p)->total, 1);
    /* the table holds 4 machines: a 5th one is untracked, never alerts */
    for (uint64_t m = 10; m < 14; m++) rs_alertpol_step(p, m, T0, .9f);
    rs_alertpol_stats(p, &ps);
    assert_int_equal(ps.machines, 4);
    assert_true(ps.untracked >= 1);
    rs_alertpol_destroy(p);
    /* bad settings are refused naming the section */
    rs_maint_conf_t c;
    rs_maint_conf_init(&c);
    c.alert_readings = 0;
    char err[256];
    assert_null(rs_alertpol_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "maintenance"));
}

/* The table as the service's checkpoint record (rs_alertpol_ckpt_*):
 * round trip byte for byte, the restored policy decides every later
 * reading as the one that never stopped (open episode: no new alert,
 * escalation from the level alerted on, debounce and cool-down go on,
 * lead from the first alert before the save), versions and damaged
 * records refused with the table unchanged. */
static void test_table_ckpt(void **st) {
    (void)st;
    rs_alertpol_t *p1 = pol(3, 10 * H_MS, 0.2), *p2 = pol(3, 10 * H_MS, 0.2);
    int64_t t = T0;
    char d[32];
    /* 1: an open episode alerted on at 0.5; 2: two readings above (of
     * 3); 3: alerted, then closed (3 below): in its cool-down */
    const float s1[] = {.5f, .5f, .5f, .5f};
    run(p1, 1, &t, s1, 4, d);
    assert_string_equal(d, "..A.");
    t = T0;
    const float s2[] = {.1f, .9f, .9f};
    run(p1, 2, &t, s2, 3, d);
    assert_string_equal(d, "...");
    t = T0;
    const float s3[] = {.9f, .9f, .9f, .1f, .1f, .1f};
    run(p1, 3, &t, s3, 6, d);
    assert_string_equal(d, "..A...");
    size_t n = rs_alertpol_ckpt_size(p1);
    assert_int_equal(n, 8 + 8 + 3 * 48);
    unsigned char *b1 = test_malloc(n), *b2 = test_malloc(n);
    rs_alertpol_ckpt_write(p1, b1);
    assert_memory_equal(b1, "RSAP", 4);
    uint32_t ver;
    memcpy(&ver, b1 + 4, 4);
    assert_int_equal(ver, RS_ALERTPOL_CKPT_VERSION);
    char err[512];
    assert_int_equal(rs_alertpol_ckpt_read(p2, b1, n, err, sizeof(err)),
                     RS_OK);
    /* byte for byte */
    assert_int_equal(rs_alertpol_ckpt_size(p2), n);
    rs_alertpol_ckpt_write(p2, b2);
    assert_memory_equal(b1, b2, n);
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(p2, &ps);
    assert_int_equal(ps.machines, 3);
    assert_int_equal(ps.open, 1);
    assert_int_equal(ps.alerts, 0); /* counters are the process's */
    /* both go on alike: 1 stays in its episode (0.6: no escalation, 0.75
     * is 0.25 above 0.5), 2 alerts on its third reading above, 3's new
     * episode opens silently (cool-down from its alert) */
    const float a1[] = {.6f, .75f}, a2[] = {.9f}, a3[] = {.9f, .9f, .9f};
    rs_alertpol_t *both[2] = {p1, p2};
    for (int k = 0; k < 2; k++) {
        int64_t tt = T0 + 6 * H_MS;
        run(both[k], 1, &tt, a1, 2, d);
        assert_string_equal(d, ".E");
        tt = T0 + 6 * H_MS;
        run(both[k], 2, &tt, a2, 1, d);
        assert_string_equal(d, "A");
        tt = T0 + 6 * H_MS;
        run(both[k], 3, &tt, a3, 3, d);
        assert_string_equal(d, "...");
        /* 1's failure: lead from the episode's first alert (T0 + 2 h) */
        int64_t lead = -1;
        assert_int_equal(rs_alertpol_failure(both[k], 1, T0 + 12 * H_MS,
                                             &lead), 1);
        assert_int_equal(lead, 10 * H_MS);
        rs_alertpol_stats(both[k], &ps);
        assert_int_equal(ps.suppressed, 1);
    }
    /* without the record (an older checkpoint): a fresh table alerts on
     * machine 1 again -- what the record prevents */
    rs_alertpol_t *p3 = pol(3, 10 * H_MS, 0.2);
    int64_t tt = T0 + 6 * H_MS;
    run(p3, 1, &tt, s1, 3, d);
    assert_string_equal(d, "..A");
    rs_alertpol_destroy(p3);

    /* refused, table unchanged: short, another magic, another version, a
     * truncated table, a damaged open flag, more machines than the table */
    rs_alertpol_t *p4 = pol(3, 10 * H_MS, 0.2);
    assert_int_equal(rs_alertpol_ckpt_read(p4, b1, n, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(rs_alertpol_ckpt_read(p4, b1, 7, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "RSAP"));
    memcpy(b2, b1, n);
    b2[0] = 'X';
    assert_int_equal(rs_alertpol_ckpt_read(p4, b2, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "alert policy table"));
    memcpy(b2, b1, n);
    ver = RS_ALERTPOL_CKPT_VERSION + 1;
    memcpy(b2 + 4, &ver, 4);
    assert_int_equal(rs_alertpol_ckpt_read(p4, b2, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "version 2"));
    assert_int_equal(rs_alertpol_ckpt_read(p4, b1, n - 1, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "bytes"));
    memcpy(b2, b1, n);
    b2[8 + 8 + 44] = 2; /* the first machine's open flag */
    assert_int_equal(rs_alertpol_ckpt_read(p4, b2, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "open flag"));
    /* a time near INT64_MIN (not "none"): the cool-down's difference
     * would overflow (found by fuzz_alertpol); a level that is no score */
    memcpy(b2, b1, n);
    int64_t tbad = INT64_MIN + 1024;
    memcpy(b2 + 8 + 8 + 8, &tbad, 8);
    assert_int_equal(rs_alertpol_ckpt_read(p4, b2, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "event time"));
    memcpy(b2, b1, n);
    float lbad = 2.0f;
    memcpy(b2 + 8 + 8 + 32, &lbad, 4);
    assert_int_equal(rs_alertpol_ckpt_read(p4, b2, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "level"));
    memcpy(b2, b1, n);
    memcpy(b2 + 8 + 8 + 48, b2 + 8 + 8, 8); /* machine twice */
    assert_int_equal(rs_alertpol_ckpt_read(p4, b2, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "twice"));
    rs_alertpol_stats(p4, &ps);
    assert_int_equal(ps.machines, 3);
    assert_int_equal(ps.open, 1);
    assert_true(rs_alertpol_is_open(p4, 1));
    rs_alertpol_ckpt_write(p4, b2);
    assert_memory_equal(b1, b2, n);
    rs_alertpol_destroy(p4);
    rs_maint_conf_t c;
    rs_maint_conf_init(&c);
    c.max_machines = 2;
    rs_alertpol_t *p5 = rs_alertpol_new(&c, err, sizeof(err));
    assert_int_equal(rs_alertpol_ckpt_read(p5, b1, n, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "max_machines"));
    /* an empty table: 16 bytes, round trip */
    assert_int_equal(rs_alertpol_ckpt_size(p5), 16);
    rs_alertpol_ckpt_write(p5, b2);
    assert_int_equal(rs_alertpol_ckpt_read(p5, b2, 16, err, sizeof(err)),
                     RS_OK);
    rs_alertpol_destroy(p5);
    test_free(b1);
    test_free(b2);
    rs_alertpol_destroy(p1);
    rs_alertpol_destroy(p2);
}

/* rs_alertpol_lead: the lead as eval counts a caught failure (the cold
 * start's record of the model's own score, model/coldstart.h). */
static void test_lead(void **st) {
    (void)st;
    rs_alertpol_t *p = pol(2, 20 * H_MS, 1.0);  /* horizon: default 24h */
    int64_t t = T0;
    char d[16];
    const float s[] = {.1f, .8f, .8f, .8f};
    /* an episode open since T0 + 2h (alerted there, the 2nd reading
     * above): at a failure at T0 + 40h it is still open -- a catch from
     * its opening, more than the horizon ahead, where the policy's own
     * rs_alertpol_failure counts no lead (latest alert > horizon ago) */
    run(p, 5, &t, s, 4, d);
    assert_string_equal(d, "..A.");
    assert_int_equal(rs_alertpol_lead(p, 5, T0 + 40 * H_MS), 38 * H_MS);
    assert_int_equal(rs_alertpol_failure(p, 5, T0 + 40 * H_MS, NULL), 0);
    assert_int_equal(rs_alertpol_lead(p, 5, T0 + 41 * H_MS), -1); /* afresh */
    /* closed episode: its alert counts within the horizon only */
    t = T0;
    const float c[] = {.8f, .8f, .1f, .1f};
    run(p, 6, &t, c, 4, d);
    assert_false(rs_alertpol_is_open(p, 6));
    assert_int_equal(rs_alertpol_lead(p, 6, T0 + 10 * H_MS), 9 * H_MS);
    assert_int_equal(rs_alertpol_lead(p, 6, T0 + 30 * H_MS), -1);
    /* an episode opened silently in the cool-down is the problem alerted
     * at T0 + 1h: the lead is from that alert (10 h), not from the silent
     * opening (6 h; the lead before 2026-12-07) */
    const float again[] = {.8f, .8f, .8f};
    run(p, 6, &t, again, 3, d);   /* T0 + 4h .. 6h: opens at 5h, silently */
    assert_string_equal(d, "...");
    assert_true(rs_alertpol_is_open(p, 6));
    assert_int_equal(rs_alertpol_lead(p, 6, T0 + 11 * H_MS), 10 * H_MS);
    /* ... and from the opening once that alert is more than the horizon
     * ago (T0 + 30h: the episode open since T0 + 5h, 25 h) */
    assert_int_equal(rs_alertpol_lead(p, 6, T0 + 30 * H_MS), 25 * H_MS);
    /* a machine never seen, or never above: -1 */
    assert_int_equal(rs_alertpol_lead(p, 99, T0), -1);
    rs_alertpol_destroy(p);
}

static void test_payload_and_drifting(void **st) {
    (void)st;
    const char *names[6] = {"ent_life", "ent_temp_base_z", "ent_temp_base_z_last12_incl",
                            "ent_vib_base_z_last12_incl", "ent_rpm_base_z", "ent_rpm_slope_last12_incl"};
    const float x[6] = {5.0f, 1.0f, 3.5f, -0.5f, -4.0f, 9.0f};
    int idx[3];
    int n = rs_maint_top_drifting(names, x, 6, idx, 3);
    assert_int_equal(n, 3);
    assert_int_equal(idx[0], 4);   /* rpm -4.0 */
    assert_int_equal(idx[1], 2);   /* temp 3.5 (its largest) */
    assert_int_equal(idx[2], 3);   /* vib -0.5 */
    const char *nn[2] = {names[4], names[2]};
    const float vv[2] = {x[4], x[2]};
    const char *rr[2] = {"rpm \"low\"", NULL};
    char buf[1024];
    int len = rs_alertpol_payload(buf, sizeof(buf), "m-7", "r-9", T0, 0.93f,
                                  RS_ALERTPOL_ALERT, 24 * H_MS, -1, nn, vv, rr,
                                  2, NULL, "seq-abc-3");
    assert_true(len > 0);
    assert_int_equal((size_t)len, strlen(buf));
    assert_non_null(strstr(buf, "\"machine\":\"m-7\""));
    assert_non_null(strstr(buf, "\"decision\":\"alert\""));
    assert_non_null(strstr(buf, "\"fails_within_ms\":86400000"));
    assert_null(strstr(buf, "time_to_failure_ms"));
    assert_non_null(strstr(buf, "\"feature\":\"ent_rpm_base_z\",\"value\":-4,\"reason\":\"rpm \\\"low\\\"\""));
    assert_non_null(strstr(buf, "\"model_version\":\"seq-abc-3\"}"));
    assert_null(strstr(buf, "summary"));
    /* with an estimated time to failure and a summary */
    len = rs_alertpol_payload(buf, sizeof(buf), "m-7", "r-9", T0, 0.93f,
                              RS_ALERTPOL_ESCALATED, 24 * H_MS, 5 * H_MS, nn,
                              vv, rr, 2, "fails in about 5 h", "v");
    assert_true(len > 0);
    assert_non_null(strstr(buf, "\"decision\":\"escalated\""));
    assert_non_null(strstr(buf, "\"time_to_failure_ms\":18000000"));
    assert_non_null(strstr(buf, "],\"summary\":\"fails in about 5 h\",\"model_version\":\"v\"}"));
    /* too small a buffer: -1, never a cut object */
    assert_int_equal(rs_alertpol_payload(buf, 40, "m-7", "r-9", T0, 0.93f,
                                         RS_ALERTPOL_ALERT, 1, 5, nn, vv, rr,
                                         2, NULL, "v"), -1);
}

/* One machine's entry moves to another policy (a partition moving to
 * another instance, scoring/alerts.h rs_alerts_part_*): the moved
 * machines decide on the new policy as on one that never moved (open
 * episode not alerted again, escalation from its level, debounce goes on,
 * cool-down holds, lead from the alert before the move); forgotten on the
 * old one; a damaged entry refused by name, nothing changed. */
static void test_entry_move(void **st) {
    (void)st;
    rs_alertpol_t *src = pol(3, 10 * H_MS, 0.2), *ref = pol(3, 10 * H_MS, 0.2);
    rs_alertpol_t *dst = pol(3, 10 * H_MS, 0.2);
    char d[32], err[256];
    const float s1[] = {.5f, .5f, .5f, .5f}, s2[] = {.1f, .9f, .9f};
    const float s3[] = {.9f, .9f, .9f, .1f, .1f, .1f}, s4[] = {.9f};
    rs_alertpol_t *both[2] = {src, ref};
    for (int k = 0; k < 2; k++) {
        int64_t t = T0;
        run(both[k], 1, &t, s1, 4, d);
        t = T0;
        run(both[k], 2, &t, s2, 3, d);
        t = T0;
        run(both[k], 3, &t, s3, 6, d);
        t = T0;
        run(both[k], 4, &t, s4, 1, d); /* stays on src */
    }
    /* move 1, 2, 3 */
    unsigned char e[RS_ALERTPOL_ENTRY];
    for (uint64_t m = 1; m <= 3; m++) {
        assert_int_equal(rs_alertpol_entry_save(src, m, e), 1);
        assert_int_equal(rs_alertpol_entry_load(dst, e, err, sizeof(err)),
                         RS_OK);
        rs_alertpol_forget(src, m);
        assert_int_equal(rs_alertpol_entry_save(src, m, e), 0);
    }
    assert_int_equal(rs_alertpol_entry_save(src, 9, e), 0); /* never seen */
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(src, &ps);
    assert_int_equal(ps.machines, 1);
    assert_int_equal(ps.open, 0);
    rs_alertpol_stats(dst, &ps);
    assert_int_equal(ps.machines, 3);
    assert_int_equal(ps.open, 1);
    /* loading the same entry again replaces it (open counted once) */
    assert_int_equal(rs_alertpol_entry_save(dst, 1, e), 1);
    assert_int_equal(rs_alertpol_entry_load(dst, e, err, sizeof(err)), RS_OK);
    rs_alertpol_stats(dst, &ps);
    assert_int_equal(ps.open, 1);
    /* dst (moved) and ref (never moved) decide alike */
    const float a1[] = {.6f, .75f}, a2[] = {.9f}, a3[] = {.9f, .9f, .9f};
    const char *want[3] = {".E", "A", "..."};
    rs_alertpol_t *two[2] = {dst, ref};
    for (int k = 0; k < 2; k++) {
        int64_t tt = T0 + 6 * H_MS;
        run(two[k], 1, &tt, a1, 2, d);
        assert_string_equal(d, want[0]);
        tt = T0 + 6 * H_MS;
        run(two[k], 2, &tt, a2, 1, d);
        assert_string_equal(d, want[1]);
        tt = T0 + 6 * H_MS;
        run(two[k], 3, &tt, a3, 3, d); /* in its cool-down: silent */
        assert_string_equal(d, want[2]);
        int64_t lead = -1;
        assert_int_equal(rs_alertpol_failure(two[k], 1, T0 + 12 * H_MS,
                                             &lead), 1);
        assert_int_equal(lead, 10 * H_MS);
    }
    /* src still has machine 4 (found after the deletions) */
    assert_int_equal(rs_alertpol_entry_save(src, 4, e), 1);
    /* refused by name, nothing changed */
    assert_int_equal(rs_alertpol_entry_save(ref, 2, e), 1);
    e[44] = 2; /* open flag */
    assert_int_equal(rs_alertpol_entry_load(src, e, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "open flag"));
    e[44] = 0;
    int64_t bad = INT64_MIN + 1024;
    memcpy(e + 8, &bad, 8);
    assert_int_equal(rs_alertpol_entry_load(src, e, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "2^62"));
    rs_alertpol_stats(src, &ps);
    assert_int_equal(ps.machines, 1);
    /* a full table: RS_ERR_NOMEM (max_machines 4) */
    assert_int_equal(rs_alertpol_entry_save(ref, 2, e), 1);
    for (uint64_t m = 100; m < 103; m++) {
        memcpy(e, &m, 8);
        assert_int_equal(rs_alertpol_entry_load(src, e, err, sizeof(err)),
                         RS_OK);
    }
    uint64_t m5 = 200;
    memcpy(e, &m5, 8);
    assert_int_equal(rs_alertpol_entry_load(src, e, err, sizeof(err)),
                     RS_ERR_NOMEM);
    rs_alertpol_destroy(src);
    rs_alertpol_destroy(ref);
    rs_alertpol_destroy(dst);
}

/* Deletion keeps every other machine findable (linear probing, backward
 * shift): 60 machines in 128 slots, every other one forgotten. */
static void test_forget_many(void **st) {
    (void)st;
    rs_maint_conf_t c;
    rs_maint_conf_init(&c);
    c.alert_readings = 1;
    c.max_machines = 64;
    char err[256], d[4];
    rs_alertpol_t *p = rs_alertpol_new(&c, err, sizeof(err));
    assert_non_null(p);
    const float hi[] = {.9f};
    for (uint64_t m = 1; m <= 60; m++) {
        int64_t t = T0;
        run(p, m * 0x10001, &t, hi, 1, d);
        assert_string_equal(d, "A");
    }
    for (uint64_t m = 1; m <= 60; m += 2) rs_alertpol_forget(p, m * 0x10001);
    rs_alertpol_stats_t ps;
    rs_alertpol_stats(p, &ps);
    assert_int_equal(ps.machines, 30);
    assert_int_equal(ps.open, 30);
    unsigned char e[RS_ALERTPOL_ENTRY];
    for (uint64_t m = 1; m <= 60; m++) {
        assert_int_equal(rs_alertpol_entry_save(p, m * 0x10001, e), m % 2 == 0);
        assert_int_equal(rs_alertpol_is_open(p, m * 0x10001), m % 2 == 0);
    }
    rs_alertpol_destroy(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debounce_episode),
        cmocka_unit_test(test_cooldown_escalation),
        cmocka_unit_test(test_failure_lead_and_table),
        cmocka_unit_test(test_lead),
        cmocka_unit_test(test_table_ckpt),
        cmocka_unit_test(test_payload_and_drifting),
        cmocka_unit_test(test_entry_move),
        cmocka_unit_test(test_forget_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
