/* maint.h -- predictive maintenance: the `maintenance:` settings and the
 * per-machine alert policy.
 *
 * Design note
 * -----------
 * For machines, a failure label says something about the readings BEFORE
 * it: "this machine fails within maintenance.horizon" was true for each of
 * them.  The learner turns one failure label into those labels through the
 * learning log (learner.h rs_learner_failure); this header holds the
 * settings and what happens to scores afterwards.
 *
 * The ALERT POLICY turns a machine's stream of scores into alerts people
 * can act on (one per problem, not one per reading):
 *   - debounce: an alert needs `alert_readings` consecutive readings with
 *     a score >= `alert_threshold`;
 *   - one alert per EPISODE: the episode then stays open (no new alert)
 *     until as many consecutive readings are below the threshold;
 *   - cool-down: an episode that starts within `alert_cooldown` of event
 *     time after the machine's previous alert opens silently (no alert;
 *     stats.suppressed);
 *   - escalation: inside an episode, a score at least `alert_escalation`
 *     above the one last alerted on alerts again (ESCALATED);
 *   - a failure or repair (rs_alertpol_failure / _reset) closes the episode
 *     and starts the machine afresh; the failure also yields the LEAD TIME
 *     (failure time - first alert of the episode) when the episode's first
 *     alert came within the horizon before it.
 * State: a fixed table of machines (open addressing, `max_machines`),
 * allocated at creation: no allocation per reading.  A full table counts
 * the reading as untracked (never alerts; stats.untracked).
 *
 * Threads: an rs_alertpol_t belongs to one thread (no locking).
 */
#ifndef RS_MAINT_H
#define RS_MAINT_H

#include "common/common.h"
#include "common/config.h"
#include "common/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_maint_conf_s {
    int enabled;              /* 1: labels are failures of their entity   */
    int64_t horizon;          /* ms: readings this long before a failure
                               * are positives ("fails within")          */
    double alert_threshold;   /* score at or above counts toward an alert */
    int64_t alert_readings;   /* k consecutive readings (debounce)        */
    int64_t alert_cooldown;   /* ms of event time between episodes' alerts */
    double alert_escalation;  /* score rise that alerts again in an episode */
    int64_t max_machines;     /* alert policy table size                  */
    int rul;                  /* 1: the remaining-useful-life head (rul.h) */
    double rul_cap;           /* RUL cap, in horizons (cap = rul_cap x
                               * horizon)                                 */
    int cold_start;           /* 1: blend with the baseline deviation while
                               * few failures were learned (coldstart.h)  */
    int rehearsal;            /* 1: replay the first failures' positives
                               * (learner.h rs_learner_set_rehearsal)      */
} rs_maint_conf_t;

/* The RUL cap in ms (rul_cap x horizon). */
int64_t rs_maint_rul_cap(const rs_maint_conf_t *conf);

/* Defaults from the field table. */
void rs_maint_conf_init(rs_maint_conf_t *conf);
/* The `maintenance:` section writing into `conf` (must outlive the
 * rs_conf_t it is added to). */
void rs_maint_conf_section(rs_conf_section_t *sec, rs_maint_conf_t *conf);
const rs_conf_field_t *rs_maint_conf_fields(int *nfields);

/* ------------------------------------------------------- alert policy */

typedef enum rs_alertpol_decision_e {
    RS_ALERTPOL_NONE = 0,     /* no alert for this reading                */
    RS_ALERTPOL_ALERT,        /* a new episode's alert                    */
    RS_ALERTPOL_ESCALATED     /* the open episode got markedly worse      */
} rs_alertpol_decision_t;

typedef struct rs_alertpol_s rs_alertpol_t;

/* New policy (conf copied).  NULL with errstr on a bad conf (threshold not
 * in [0, 1], readings < 1, max_machines < 1).  Any thread. */
rs_alertpol_t *rs_alertpol_new(const rs_maint_conf_t *conf, char *errstr,
                               size_t errstr_size);
void rs_alertpol_destroy(rs_alertpol_t *p);   /* NULL: no-op */

/* One scored reading of machine `machine` (rs_hash_str of its id) at event
 * time t_ms.  Readings of a machine are expected in time order (an older
 * one is still counted).  No allocation.  The owner thread. */
rs_alertpol_decision_t rs_alertpol_step(rs_alertpol_t *p, uint64_t machine,
                                        int64_t t_ms, float score);

/* 1 if the machine has an open episode. */
int rs_alertpol_is_open(const rs_alertpol_t *p, uint64_t machine);

/* The machine failed at t_fail_ms: its open episode closes; if the
 * episode's (or, if none is open, the latest episode's) first alert came
 * at most horizon before the failure, *lead_ms gets failure - that alert
 * and the lead time is recorded (stats, rs_alertpol_leads); returns 1 then,
 * else 0 (a missed failure, counted).  The machine starts afresh (a
 * repair follows a failure).  The owner thread. */
int rs_alertpol_failure(rs_alertpol_t *p, uint64_t machine, int64_t t_fail_ms,
                        int64_t *lead_ms);
/* How long before a failure at t_fail_ms the machine was alerted on, as
 * `eval --maintenance` counts a caught failure: the larger of t_fail_ms -
 * the opening of its open episode (opened silently in a cool-down too; it
 * may be more than the horizon) and t_fail_ms - the latest episode's
 * first alert if that came at most the horizon before (an episode opened
 * silently after it is the same alerted problem); -1 if neither.  Call it before
 * rs_alertpol_failure (which starts the machine afresh).  No change to
 * the policy.  The owner thread. */
int64_t rs_alertpol_lead(const rs_alertpol_t *p, uint64_t machine,
                         int64_t t_fail_ms);
/* A repair without failure: the machine starts afresh (no lead time). */
void rs_alertpol_reset(rs_alertpol_t *p, uint64_t machine);

typedef struct rs_alertpol_stats_s {
    uint64_t readings;
    uint64_t alerts;          /* ALERT decisions (= episodes alerted)      */
    uint64_t escalations;     /* ESCALATED decisions                       */
    uint64_t open;            /* episodes open now                         */
    uint64_t episodes;        /* episodes started (alerted)                */
    uint64_t suppressed;      /* episodes opened silently (cool-down)      */
    uint64_t failures;        /* failures reported                         */
    uint64_t caught;          /* ... with an alert within the horizon      */
    uint64_t untracked;       /* readings of machines the table had no room for */
    uint64_t machines;        /* machines tracked                          */
} rs_alertpol_stats_t;

void rs_alertpol_stats(const rs_alertpol_t *p, rs_alertpol_stats_t *st);

/* The policy's machine table across restarts (episodes open, latest
 * alerts, debounce counts), for a service's checkpoint.  Bytes: u64 m,
 * then m entries of 48 (u64 machine, i64 latest alert, i64 first alert of
 * the latest episode, i64 opening of the open episode, f32 level, u32
 * readings above, u32 below, u32 open), host byte order (a local file).
 * rs_alertpol_state_size: 8 + 48 x the machines tracked; rs_alertpol_save
 * writes that many to buf.  rs_alertpol_load replaces the table with
 * len bytes of a saved one (stats.machines and stats.open follow it, the
 * other counters are this process's); RS_ERR_CORRUPT with errstr, table
 * unchanged, for a wrong length, more machines than max_machines, a zero
 * machine or a repeated one, an open flag other than 0/1, an alert time
 * other than none (INT64_MIN) or an opening time beyond +-2^62 ms, or a
 * level outside [0, 1].  No
 * allocation.  The owner thread. */
size_t rs_alertpol_state_size(const rs_alertpol_t *p);
void rs_alertpol_save(const rs_alertpol_t *p, void *buf);
rs_err_t rs_alertpol_load(rs_alertpol_t *p, const void *buf, size_t len,
                          char *errstr, size_t errstr_size);
/* The same table as a self-describing record, the service's checkpoint
 * record of the alert policy (scoring/alerts.h rs_alerts_table_*): u32
 * magic "RSAP", u32 version 1, then rs_alertpol_save's bytes.
 * rs_alertpol_ckpt_size: 8 + rs_alertpol_state_size; rs_alertpol_ckpt_write
 * writes that many to buf; rs_alertpol_ckpt_read restores len bytes of
 * one (rs_alertpol_load); RS_ERR_CORRUPT with errstr, table unchanged,
 * for a short record, another magic, a version other than 1 (a newer
 * writer's: refused, not guessed) or a damaged table.  A checkpoint
 * written before the record existed has none: the table stays empty.
 * The owner thread. */
#define RS_ALERTPOL_CKPT_VERSION 1
size_t rs_alertpol_ckpt_size(const rs_alertpol_t *p);
void rs_alertpol_ckpt_write(const rs_alertpol_t *p, void *buf);
rs_err_t rs_alertpol_ckpt_read(rs_alertpol_t *p, const void *buf, size_t len,
                               char *errstr, size_t errstr_size);
/* One machine's entry, for state that follows the machine's input
 * partition (scoring/alerts.h rs_alerts_part_*): the 48 bytes of one
 * rs_alertpol_save entry (RS_ALERTPOL_ENTRY).  rs_alertpol_entry_save
 * writes the machine's into buf and returns 1, or 0 if it has none.
 * rs_alertpol_entry_check: RS_ERR_CORRUPT with errstr for the values
 * rs_alertpol_load refuses (key 0, open flag, times, level); pure.
 * rs_alertpol_entry_load checks, then sets the machine's entry (created,
 * or replaced: stats.open follows); RS_ERR_NOMEM when the table is full.
 * rs_alertpol_forget removes the machine (its partition left this
 * instance; stats.machines and stats.open follow, the counters stay).
 * No allocation.  The owner thread. */
#define RS_ALERTPOL_ENTRY 48
int rs_alertpol_entry_save(const rs_alertpol_t *p, uint64_t machine,
                           void *buf);
rs_err_t rs_alertpol_entry_check(const void *buf, char *errstr,
                                 size_t errstr_size);
rs_err_t rs_alertpol_entry_load(rs_alertpol_t *p, const void *buf,
                                char *errstr, size_t errstr_size);
void rs_alertpol_forget(rs_alertpol_t *p, uint64_t machine);
/* Lead times of caught failures, seconds (owned by p). */
const rs_hist_t *rs_alertpol_leads(const rs_alertpol_t *p);

/* The alerts topic payload (JSON object, no newline), I/O free:
 *   {"machine":"m-7","event_id":"r-9","event_time_ms":...,"score":0.93,
 *    "decision":"alert"|"escalated","fails_within_ms":86400000,
 *    "time_to_failure_ms":..., (only if ttf_ms >= 0: a RUL estimate)
 *    "drifting":[{"feature":"ent_temperature_base_z_last48_incl",
 *                 "value":3.2,"reason":"..."}...],
 *    "summary":"...", (only if summary is not NULL)
 *    "model_version":"seq-..."}
 * drifting[n] (names, values, optional reasons may be NULL): the top
 * drifting sensors, most first.  summary: the alert in words (the
 * estimated time to failure and the most drifting sensor's reason).
 * Strings are JSON-escaped.  Returns the length written (excl. NUL), or
 * -1 if `size` is too small. */
int rs_alertpol_payload(char *buf, size_t size, const char *machine,
                        const char *event_id, int64_t t_ms, float score,
                        rs_alertpol_decision_t d, int64_t fails_within_ms,
                        int64_t ttf_ms, const char *const *names,
                        const float *values, const char *const *reasons,
                        int n, const char *summary,
                        const char *model_version);

/* The n sensors drifting most: indexes of the features of x[dim] named
 * "*_base_z*" with the largest |value|, one per sensor (the feature name
 * between "ent_" and "_base_z"), most first, into idx[n]; returns how many
 * (<= n).  names[dim] are the feature names.  Pure. */
int rs_maint_top_drifting(const char *const *names, const float *x, int dim,
                          int *idx, int n);

#ifdef __cplusplus
}
#endif
#endif /* RS_MAINT_H */
