/* maint.c -- the `maintenance:` settings and the per-machine alert policy
 * (see maint.h for the design note). */
#include "model/maint.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ config */

static const rs_conf_field_t rs_maint_fields[] = {
    {"enabled", RS_CONF_BOOL, "false", offsetof(rs_maint_conf_t, enabled), 0,
     "labels are machine failures (serve, eval, demo --sensors): a positive "
     "label of an entity is a failure at its last reading, making its "
     "readings in [T - horizon, T] positives (learned through the learning "
     "log, corrections included) and its older pending readings negatives; "
     "a label with value 0 for the machine itself (event_id = entity_id) "
     "is a repair; either starts a new life for its "
     "feature baselines and alerts; serve decides its readings through the "
     "alert policy (eval --maintenance sets it)", NULL, 0, 0},
    {"horizon", RS_CONF_DURATION, "24h", offsetof(rs_maint_conf_t, horizon), 0,
     "failure horizon: a reading is a positive if its machine fails within "
     "this much event time after it (the target \"fails within the "
     "horizon\"); the maturity horizon of the models is at least this",
     NULL, 1, 0x1p62},
    {"alert_threshold", RS_CONF_DOUBLE, "0.3",
     offsetof(rs_maint_conf_t, alert_threshold), 0,
     "alert policy: a score at or above this counts toward an alert", NULL,
     0, 1},
    {"alert_readings", RS_CONF_INT, "3",
     offsetof(rs_maint_conf_t, alert_readings), 0,
     "alert policy: consecutive readings at or above the threshold before a "
     "machine alerts (debounce); as many below close the episode", NULL, 1,
     100000},
    {"alert_cooldown", RS_CONF_DURATION, "24h",
     offsetof(rs_maint_conf_t, alert_cooldown), 0,
     "alert policy: an episode starting within this much event time of the "
     "machine's previous alert opens silently (no new alert)", NULL, 0,
     0x1p62},
    {"alert_escalation", RS_CONF_DOUBLE, "0.25",
     offsetof(rs_maint_conf_t, alert_escalation), 0,
     "alert policy: inside an open episode, a score this much above the one "
     "last alerted on alerts again (escalated); 1 = never", NULL, 0, 1},
    {"max_machines", RS_CONF_INT, "65536",
     offsetof(rs_maint_conf_t, max_machines), 0,
     "alert policy: machines tracked (preallocated, ~64 bytes each)", NULL,
     1, 268435456},
    {"rul", RS_CONF_BOOL, "false", offsetof(rs_maint_conf_t, rul), 0,
     "remaining useful life: a regression head estimates the event time "
     "left before each reading's machine fails, capped at rul_cap horizons "
     "(published as the score record's `rul`, used in alerts; learned from "
     "failures and, for machines that keep running, once they ran the cap "
     "past a reading)", NULL, 0, 0},
    {"rul_cap", RS_CONF_DOUBLE, "2", offsetof(rs_maint_conf_t, rul_cap), 0,
     "remaining useful life cap, in horizons: a reading further than this "
     "from its failure is learned and estimated as the cap (the "
     "piecewise-linear target of run-to-failure practice)", NULL, 1, 100},
    {"cold_start", RS_CONF_BOOL, "true",
     offsetof(rs_maint_conf_t, cold_start), 0,
     "while the model has learned few failures, the alert policy decides on "
     "1 - (1 - p)(1 - (1 - w) u): p the model's score, u the baseline "
     "deviation of the most drifting sensor (z / (z + c), 3 sd = "
     "alert_threshold, z its longest span's mean in the fleet's spread of "
     "that mean, or the machine's CUSUM of it; eval's ref), w = c / (n + "
     "sensors) after n failures "
     "of which the model's own score alerted on c at least a third of the "
     "horizon ahead, halved on a machine where u >= alert_threshold while "
     "the model's own policy has no episode open there "
     "(docs/maintenance.md)",
     NULL, 0, 0},
    {"rehearsal", RS_CONF_BOOL, "true",
     offsetof(rs_maint_conf_t, rehearsal), 0,
     "while the model has learned few failures, a replay step (model.replay) "
     "draws one of the failures' positives with probability n0 / (n + n0) / "
     "(1 + model.pos_weight): n failures learned, n0 the sensors of the "
     "cold-start reference (docs/maintenance.md)",
     NULL, 0, 0},
};

const rs_conf_field_t *rs_maint_conf_fields(int *nfields) {
    if (nfields) *nfields = (int)RS_ARRAY_LEN(rs_maint_fields);
    return rs_maint_fields;
}

void rs_maint_conf_init(rs_maint_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_maint_fields); i++) {
        const rs_conf_field_t *fd = &rs_maint_fields[i];
        char *p = (char *)conf + fd->offset;
        switch (fd->type) {
        case RS_CONF_INT: *(int64_t *)p = strtoll(fd->def, NULL, 0); break;
        case RS_CONF_DOUBLE: *(double *)p = strtod(fd->def, NULL); break;
        case RS_CONF_BOOL: *(int *)p = !strcmp(fd->def, "true"); break;
        case RS_CONF_DURATION: rs_duration_parse(fd->def, (int64_t *)p); break;
        default: break;
        }
    }
}

int64_t rs_maint_rul_cap(const rs_maint_conf_t *conf) {
    double c = conf->rul_cap * (double)conf->horizon;
    return c >= 0x1p62 ? (int64_t)0x1p62 : c < 1 ? 1 : (int64_t)c;
}

void rs_maint_conf_section(rs_conf_section_t *sec, rs_maint_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "maintenance";
    sec->desc = "predictive maintenance: failure-horizon labels, alert policy "
                "(docs/maintenance.md)";
    sec->fields = rs_maint_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_maint_fields);
    sec->base = conf;
}

/* ------------------------------------------------------- alert policy */

typedef struct rs_ap_mach_s {
    uint64_t key;            /* machine hash; 0 = free */
    int64_t last_alert;      /* event time of the latest alert (INT64_MIN) */
    int64_t episode_alert;   /* first alert of the latest episode */
    int64_t open_since;      /* event time the open episode opened (also
                              * silently, in a cool-down) */
    float level;             /* score last alerted on */
    uint32_t above, below;   /* consecutive readings above / below */
    uint8_t open;            /* an episode is open */
    uint8_t pad_[7];
} rs_ap_mach_t;              /* 56 bytes */

struct rs_alertpol_s {
    rs_maint_conf_t conf;
    rs_ap_mach_t *tab;       /* [mask + 1] open addressing, no deletion */
    uint32_t mask;
    rs_alertpol_stats_t st;
    rs_hist_t leads;         /* seconds */
};

rs_alertpol_t *rs_alertpol_new(const rs_maint_conf_t *conf, char *errstr,
                               size_t errstr_size) {
    if (!conf || !(conf->alert_threshold >= 0 && conf->alert_threshold <= 1) ||
        conf->alert_readings < 1 || conf->max_machines < 1 ||
        conf->max_machines > 268435456 || conf->alert_cooldown < 0 ||
        !(conf->alert_escalation >= 0)) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "maintenance: alert_threshold must be in [0, 1], "
                "alert_readings >= 1, max_machines >= 1, alert_cooldown and "
                "alert_escalation >= 0");
        return NULL;
    }
    rs_alertpol_t *p = rs_calloc(1, sizeof(*p));
    p->conf = *conf;
    uint64_t n = 1;
    while (n < (uint64_t)conf->max_machines * 2) n <<= 1;
    p->mask = (uint32_t)(n - 1);
    p->tab = rs_calloc(n, sizeof(*p->tab));
    rs_hist_init(&p->leads);
    return p;
}

void rs_alertpol_destroy(rs_alertpol_t *p) {
    if (!p) return;
    free(p->tab);
    free(p);
}

/* The machine's entry; create it if `add` (NULL if the table is full). */
static rs_ap_mach_t *rs_ap_get(rs_alertpol_t *p, uint64_t key, int add) {
    if (!key) key = 1;
    uint32_t i = (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 32) & p->mask;
    for (uint32_t probe = 0; probe <= p->mask; probe++, i = (i + 1) & p->mask) {
        rs_ap_mach_t *m = &p->tab[i];
        if (m->key == key) return m;
        if (!m->key) {
            if (!add || p->st.machines >= (uint64_t)p->conf.max_machines)
                return NULL;
            memset(m, 0, sizeof(*m));
            m->key = key;
            m->last_alert = m->episode_alert = INT64_MIN;
            p->st.machines++;
            return m;
        }
    }
    return NULL;
}

rs_alertpol_decision_t rs_alertpol_step(rs_alertpol_t *p, uint64_t machine,
                                        int64_t t_ms, float score) {
    p->st.readings++;
    rs_ap_mach_t *m = rs_ap_get(p, machine, 1);
    if (!m) {
        p->st.untracked++;
        return RS_ALERTPOL_NONE;
    }
    const uint32_t k = (uint32_t)p->conf.alert_readings;
    if (score >= p->conf.alert_threshold) {
        m->above++;
        m->below = 0;
    } else {
        m->below++;
        m->above = 0;
        if (m->open && m->below >= k) { /* the episode is over */
            m->open = 0;
            p->st.open--;
        }
        return RS_ALERTPOL_NONE;
    }
    if (m->above < k) return RS_ALERTPOL_NONE;
    if (m->open) {
        if (p->conf.alert_escalation < 1 &&
            score >= m->level + p->conf.alert_escalation) {
            m->level = score;
            m->last_alert = t_ms;
            p->st.escalations++;
            return RS_ALERTPOL_ESCALATED;
        }
        return RS_ALERTPOL_NONE;
    }
    if (m->last_alert != INT64_MIN &&
        t_ms - m->last_alert < p->conf.alert_cooldown) {
        /* the episode opens, silently: the machine was alerted on lately */
        m->open = 1;
        m->open_since = t_ms;
        m->level = score;
        p->st.open++;
        p->st.suppressed++;
        return RS_ALERTPOL_NONE;
    }
    m->open = 1;
    m->open_since = t_ms;
    m->level = score;
    m->last_alert = m->episode_alert = t_ms;
    p->st.open++;
    p->st.episodes++;
    p->st.alerts++;
    return RS_ALERTPOL_ALERT;
}

static void rs_ap_fresh(rs_alertpol_t *p, rs_ap_mach_t *m) {
    if (m->open) p->st.open--;
    uint64_t key = m->key;
    memset(m, 0, sizeof(*m));
    m->key = key;
    m->last_alert = m->episode_alert = INT64_MIN;
}

int rs_alertpol_failure(rs_alertpol_t *p, uint64_t machine, int64_t t_fail_ms,
                        int64_t *lead_ms) {
    p->st.failures++;
    rs_ap_mach_t *m = rs_ap_get(p, machine, 0);
    int caught = 0;
    if (m) {
        int64_t a = m->episode_alert;
        if (a != INT64_MIN && a <= t_fail_ms &&
            t_fail_ms - a <= p->conf.horizon) {
            caught = 1;
            if (lead_ms) *lead_ms = t_fail_ms - a;
            rs_hist_record(&p->leads, (t_fail_ms - a) / 1000);
            p->st.caught++;
        }
        rs_ap_fresh(p, m);
    }
    return caught;
}

int64_t rs_alertpol_lead(const rs_alertpol_t *p, uint64_t machine,
                         int64_t t_fail_ms) {
    rs_ap_mach_t *m = rs_ap_get((rs_alertpol_t *)p, machine, 0);
    if (!m) return -1;
    /* the earlier of the two warnings: the open episode's opening, and
     * the latest alert if it came within the horizon.  An episode that
     * opened silently in a cool-down is the alerted problem again: people
     * were told at that alert, not when the score dipped and came back
     * (the open episode alone had counted a failure alerted 17 h ahead,
     * below the threshold for half an hour at 11 h and silently open again
     * from 6.5 h, as 6.5 h ahead; rs_alertpol_failure's lead is the alert) */
    int64_t lead = -1, a = m->episode_alert;
    if (m->open && m->open_since <= t_fail_ms) lead = t_fail_ms - m->open_since;
    if (a != INT64_MIN && a <= t_fail_ms && t_fail_ms - a <= p->conf.horizon &&
        t_fail_ms - a > lead)
        lead = t_fail_ms - a;
    return lead;
}

int rs_alertpol_is_open(const rs_alertpol_t *p, uint64_t machine) {
    rs_ap_mach_t *m = rs_ap_get((rs_alertpol_t *)p, machine, 0);
    return m && m->open;
}

void rs_alertpol_reset(rs_alertpol_t *p, uint64_t machine) {
    rs_ap_mach_t *m = rs_ap_get(p, machine, 0);
    if (m) rs_ap_fresh(p, m);
}

void rs_alertpol_stats(const rs_alertpol_t *p, rs_alertpol_stats_t *st) {
    *st = p->st;
}

const rs_hist_t *rs_alertpol_leads(const rs_alertpol_t *p) { return &p->leads; }

/* ------------------------------------------------------ saved state */

#define RS_AP_ENTRY 48 /* bytes of one saved machine (maint.h) */

size_t rs_alertpol_state_size(const rs_alertpol_t *p) {
    return 8 + RS_AP_ENTRY * (size_t)p->st.machines;
}

/* One machine's 48-byte entry (the RSAP layout). */
static void rs_ap_entry_put(const rs_ap_mach_t *e, char *o) {
    uint32_t open = e->open;
    memcpy(o, &e->key, 8);
    memcpy(o + 8, &e->last_alert, 8);
    memcpy(o + 16, &e->episode_alert, 8);
    memcpy(o + 24, &e->open_since, 8);
    memcpy(o + 32, &e->level, 4);
    memcpy(o + 36, &e->above, 4);
    memcpy(o + 40, &e->below, 4);
    memcpy(o + 44, &open, 4);
}

void rs_alertpol_save(const rs_alertpol_t *p, void *buf) {
    char *o = buf;
    uint64_t m = 0;
    o += 8;
    for (uint32_t i = 0; i <= p->mask; i++) {
        const rs_ap_mach_t *e = &p->tab[i];
        if (!e->key) continue;
        rs_ap_entry_put(e, o);
        o += RS_AP_ENTRY;
        m++;
    }
    memcpy(buf, &m, 8);
}

/* One saved entry's values: key not 0, open flag 0/1, event times the
 * alerts' none (INT64_MIN) or within +-2^62 ms, the opening's always
 * within (0 when never opened), so that the differences the policy takes
 * cannot overflow; the level a score.  0 if fine, else 1 (key or open
 * flag) or 2 (a time or the level). */
static int rs_ap_entry_bad(const char *e) {
    uint64_t key;
    uint32_t open;
    memcpy(&key, e, 8);
    memcpy(&open, e + 44, 4);
    if (!key || open > 1) return 1;
    int64_t tm[3];
    float level;
    memcpy(tm, e + 8, sizeof(tm));
    memcpy(&level, e + 32, 4);
    int ok = level >= 0 && level <= 1;
    for (int j = 0; j < 3; j++)
        ok = ok && ((tm[j] == INT64_MIN && j < 2) ||
                    (tm[j] >= -(INT64_C(1) << 62) &&
                     tm[j] <= INT64_C(1) << 62));
    return ok ? 0 : 2;
}

static void rs_ap_entry_get(rs_ap_mach_t *d, const char *e) {
    uint32_t open;
    memcpy(&d->last_alert, e + 8, 8);
    memcpy(&d->episode_alert, e + 16, 8);
    memcpy(&d->open_since, e + 24, 8);
    memcpy(&d->level, e + 32, 4);
    memcpy(&d->above, e + 36, 4);
    memcpy(&d->below, e + 40, 4);
    memcpy(&open, e + 44, 4);
    d->open = (uint8_t)open;
}

int rs_alertpol_entry_save(const rs_alertpol_t *p, uint64_t machine,
                           void *buf) {
    rs_ap_mach_t *m = rs_ap_get((rs_alertpol_t *)p, machine, 0);
    if (!m) return 0;
    rs_ap_entry_put(m, buf);
    return 1;
}

rs_err_t rs_alertpol_entry_check(const void *buf, char *errstr,
                                 size_t errstr_size) {
    int bad = rs_ap_entry_bad(buf);
    if (bad == 1)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "alert policy entry: key 0 or an open flag not 0/1");
    if (bad)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "alert policy entry: an event time beyond +-2^62 ms "
                       "or a level outside [0, 1]");
    return RS_OK;
}

rs_err_t rs_alertpol_entry_load(rs_alertpol_t *p, const void *buf,
                                char *errstr, size_t errstr_size) {
    rs_err_t err = rs_alertpol_entry_check(buf, errstr, errstr_size);
    if (err) return err;
    uint64_t key;
    memcpy(&key, buf, 8);
    rs_ap_mach_t *d = rs_ap_get(p, key, 1);
    if (!d)
        return rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                       "alert policy: no room for machine %llx "
                       "(maintenance.max_machines %lld)",
                       (unsigned long long)key,
                       (long long)p->conf.max_machines);
    if (d->open) p->st.open--;
    rs_ap_entry_get(d, buf);
    p->st.open += d->open;
    return RS_OK;
}

static uint32_t rs_ap_home(const rs_alertpol_t *p, uint64_t key) {
    return (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 32) & p->mask;
}

void rs_alertpol_forget(rs_alertpol_t *p, uint64_t machine) {
    rs_ap_mach_t *m = rs_ap_get(p, machine, 0);
    if (!m) return;
    if (m->open) p->st.open--;
    p->st.machines--;
    /* linear probing: shift the entries after it back (no tombstones) */
    uint32_t i = (uint32_t)(m - p->tab), j = i;
    memset(m, 0, sizeof(*m));
    for (;;) {
        j = (j + 1) & p->mask;
        if (!p->tab[j].key) break;
        uint32_t h = rs_ap_home(p, p->tab[j].key);
        /* stays if its home lies cyclically in (i, j] */
        int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays) continue;
        p->tab[i] = p->tab[j];
        memset(&p->tab[j], 0, sizeof(p->tab[j]));
        i = j;
    }
}

rs_err_t rs_alertpol_load(rs_alertpol_t *p, const void *buf, size_t len,
                          char *errstr, size_t errstr_size) {
    const char *in = buf;
    uint64_t m = 0;
    if (buf && len >= 8) memcpy(&m, in, 8);
    if (!buf || len < 8 || m > (uint64_t)p->conf.max_machines ||
        len != 8 + RS_AP_ENTRY * m)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "alert policy state: %zu bytes, not 8 + %d x machines "
                       "(at most maintenance.max_machines %lld)", len,
                       RS_AP_ENTRY, (long long)p->conf.max_machines);
    /* check everything before the table changes */
    for (uint64_t k = 0; k < m; k++) {
        uint64_t key;
        uint32_t open;
        memcpy(&key, in + 8 + k * RS_AP_ENTRY, 8);
        memcpy(&open, in + 8 + k * RS_AP_ENTRY + 44, 4);
        if (!key || open > 1)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "alert policy state: machine %llu of %llu has "
                           "key 0 or open flag %u", (unsigned long long)k,
                           (unsigned long long)m, open);
        /* event times: the alerts' none (INT64_MIN) or within +-2^62 ms,
         * the opening's always within (0 when never opened), so that the
         * differences the policy takes cannot overflow; the level is a
         * score */
        int64_t tm[3];
        float level;
        memcpy(tm, in + 8 + k * RS_AP_ENTRY + 8, sizeof(tm));
        memcpy(&level, in + 8 + k * RS_AP_ENTRY + 32, 4);
        int ok = level >= 0 && level <= 1;
        for (int j = 0; j < 3; j++)
            ok = ok && ((tm[j] == INT64_MIN && j < 2) ||
                        (tm[j] >= -(INT64_C(1) << 62) &&
                         tm[j] <= INT64_C(1) << 62));
        if (!ok)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "alert policy state: machine %llu of %llu has an "
                           "event time beyond +-2^62 ms or a level outside "
                           "[0, 1]", (unsigned long long)k,
                           (unsigned long long)m);
    }
    uint64_t n = (uint64_t)p->mask + 1;
    rs_ap_mach_t *old = rs_malloc(n * sizeof(*old)); /* at restore only */
    memcpy(old, p->tab, n * sizeof(*old));
    uint64_t machines = p->st.machines, open0 = p->st.open;
    memset(p->tab, 0, n * sizeof(*p->tab));
    p->st.machines = p->st.open = 0;
    for (uint64_t k = 0; k < m; k++) {
        const char *e = in + 8 + k * RS_AP_ENTRY;
        uint64_t key;
        uint32_t open;
        memcpy(&key, e, 8);
        rs_ap_mach_t *d = rs_ap_get(p, key, 0);
        if (d) { /* the same machine twice: refuse, table as it was */
            memcpy(p->tab, old, n * sizeof(*old));
            p->st.machines = machines;
            p->st.open = open0;
            free(old);
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "alert policy state: machine %llx twice",
                           (unsigned long long)key);
        }
        d = rs_ap_get(p, key, 1);
        memcpy(&d->last_alert, e + 8, 8);
        memcpy(&d->episode_alert, e + 16, 8);
        memcpy(&d->open_since, e + 24, 8);
        memcpy(&d->level, e + 32, 4);
        memcpy(&d->above, e + 36, 4);
        memcpy(&d->below, e + 40, 4);
        memcpy(&open, e + 44, 4);
        d->open = (uint8_t)open;
        p->st.open += open;
    }
    free(old);
    return RS_OK;
}

#define RS_AP_CKPT_MAGIC 0x50415352u /* "RSAP" */

size_t rs_alertpol_ckpt_size(const rs_alertpol_t *p) {
    return 8 + rs_alertpol_state_size(p);
}

void rs_alertpol_ckpt_write(const rs_alertpol_t *p, void *buf) {
    uint32_t hd[2] = {RS_AP_CKPT_MAGIC, RS_ALERTPOL_CKPT_VERSION};
    memcpy(buf, hd, sizeof(hd));
    rs_alertpol_save(p, (char *)buf + 8);
}

rs_err_t rs_alertpol_ckpt_read(rs_alertpol_t *p, const void *buf, size_t len,
                               char *errstr, size_t errstr_size) {
    uint32_t hd[2] = {0, 0};
    if (buf && len >= 8) memcpy(hd, buf, sizeof(hd));
    if (!buf || len < 8 || hd[0] != RS_AP_CKPT_MAGIC)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "alert policy table: %zu bytes without its header "
                       "(magic \"RSAP\", version)", len);
    if (hd[1] != RS_ALERTPOL_CKPT_VERSION)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "alert policy table: version %u, this build reads "
                       "version %d", hd[1], RS_ALERTPOL_CKPT_VERSION);
    char e2[256];
    if (rs_alertpol_load(p, (const char *)buf + 8, len - 8, e2, sizeof(e2)) !=
        RS_OK)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "alert policy table (version %d): %s",
                       RS_ALERTPOL_CKPT_VERSION, e2);
    return RS_OK;
}

/* --------------------------------------------------------- payload */

typedef struct rs_ap_buf_s {
    char *b;
    size_t size, n;
    int bad;
} rs_ap_buf_t;

static void rs_ap_put(rs_ap_buf_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rs_ap_put(rs_ap_buf_t *o, const char *fmt, ...) {
    if (o->bad) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->b + o->n, o->size - o->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= o->size - o->n) o->bad = 1;
    else o->n += (size_t)k;
}

static void rs_ap_str(rs_ap_buf_t *o, const char *s) {
    rs_ap_put(o, "\"");
    for (; s && *s && !o->bad; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') rs_ap_put(o, "\\%c", c);
        else if (c < 0x20) rs_ap_put(o, "\\u%04x", c);
        else rs_ap_put(o, "%c", c);
    }
    rs_ap_put(o, "\"");
}

int rs_alertpol_payload(char *buf, size_t size, const char *machine,
                        const char *event_id, int64_t t_ms, float score,
                        rs_alertpol_decision_t d, int64_t fails_within_ms,
                        int64_t ttf_ms, const char *const *names,
                        const float *values, const char *const *reasons,
                        int n, const char *summary,
                        const char *model_version) {
    if (!buf || !size) return -1;
    rs_ap_buf_t o = {buf, size, 0, 0};
    rs_ap_put(&o, "{\"machine\":");
    rs_ap_str(&o, machine);
    rs_ap_put(&o, ",\"event_id\":");
    rs_ap_str(&o, event_id);
    rs_ap_put(&o, ",\"event_time_ms\":%lld,\"score\":%.9g,\"decision\":\"%s\","
              "\"fails_within_ms\":%lld", (long long)t_ms, (double)score,
              d == RS_ALERTPOL_ESCALATED ? "escalated" : "alert",
              (long long)fails_within_ms);
    if (ttf_ms >= 0)
        rs_ap_put(&o, ",\"time_to_failure_ms\":%lld", (long long)ttf_ms);
    rs_ap_put(&o, ",\"drifting\":[");
    for (int i = 0; i < n; i++) {
        rs_ap_put(&o, "%s{\"feature\":", i ? "," : "");
        rs_ap_str(&o, names[i]);
        rs_ap_put(&o, ",\"value\":%.6g", isfinite(values[i]) ? (double)values[i] : 0.0);
        if (reasons && reasons[i]) {
            rs_ap_put(&o, ",\"reason\":");
            rs_ap_str(&o, reasons[i]);
        }
        rs_ap_put(&o, "}");
    }
    rs_ap_put(&o, "]");
    if (summary) {
        rs_ap_put(&o, ",\"summary\":");
        rs_ap_str(&o, summary);
    }
    rs_ap_put(&o, ",\"model_version\":");
    rs_ap_str(&o, model_version ? model_version : "");
    rs_ap_put(&o, "}");
    return o.bad ? -1 : (int)o.n;
}

int rs_maint_top_drifting(const char *const *names, const float *x, int dim,
                          int *idx, int n) {
    int got = 0;
    for (int i = 0; i < dim; i++) {
        const char *z = strstr(names[i], "_base_z");
        if (!z || !isfinite(x[i])) continue;
        const char *s0 = strncmp(names[i], "ent_", 4) ? names[i] : names[i] + 4;
        size_t sl = (size_t)(z - s0);
        /* one entry per sensor: keep its largest |z| */
        int j;
        for (j = 0; j < got; j++) {
            const char *o = names[idx[j]];
            const char *o0 = strncmp(o, "ent_", 4) ? o : o + 4;
            const char *oz = strstr(o, "_base_z");
            if ((size_t)(oz - o0) == sl && !strncmp(o0, s0, sl)) break;
        }
        if (j < got) {
            if (fabsf(x[i]) > fabsf(x[idx[j]])) idx[j] = i;
            else continue;
        } else if (got < n) {
            idx[got++] = i;
            j = got - 1;
        } else if (fabsf(x[i]) > fabsf(x[idx[got - 1]])) {
            idx[got - 1] = i;
            j = got - 1;
        } else {
            continue;
        }
        /* keep sorted by |value| descending */
        while (j > 0 && fabsf(x[idx[j]]) > fabsf(x[idx[j - 1]])) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
            j--;
        }
    }
    return got;
}
