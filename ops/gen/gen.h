/* gen.h -- riskstream's deterministic synthetic stream generator.
 *
 * What it does: simulates a population of entities and their counterparties
 * and produces a time-ordered stream of records -- events and the labels
 * that arrive later -- through a pull API (rs_gen_next).  Two worlds:
 *
 *   cards    cards with spending profiles (lognormal amounts around a
 *            per-card median, a daily rate with a day/night rhythm, a home
 *            country, a set of preferred merchants, occasional genuine
 *            trips abroad) paying at merchants (category, country,
 *            online/pos channel), plus four tagged fraud patterns: card
 *            testing, account takeover, compromised counterparty, velocity
 *            spike.  Labels: value 1 for every fraud event after
 *            label_delay +- jitter; value 0 for genuine events only when
 *            negative_labels is set.
 *   sensors  machines at sites with 1..8 sensors (temperature, vibration,
 *            pressure, rpm, current, voltage, flow, humidity) read at an
 *            interval with noise, load and a daily cycle; some machines
 *            drift in 2-3 sensors for 1-3 days, then fail, are repaired
 *            and reset.  Readings inside the pre-failure window are
 *            positives, labelled at the failure time (+ delay).
 *
 * docs/generator.md describes the patterns, parameters and file formats.
 *
 * Invariants:
 *  - Records come out in non-decreasing emit_time_ms (the event time for an
 *    event, the label time for a label), events and labels interleaved.
 *  - Same configuration (seed included) -> the same stream, record for
 *    record, on the same build and platform (libm is the only float source
 *    outside this module).  The genuine background does not depend on the
 *    fraud rates: fraud draws from its own random streams.
 *  - Every fraud event has exactly one label (value 1), emitted at
 *    event_time + label_delay * (1 + label_jitter * U(-1, 1)) >= event time.
 *  - Memory is O(entities + counterparties + labels in flight); nothing is
 *    pre-generated and rs_gen_next does not allocate except to grow its
 *    internal heap/pools (amortised, geometric).
 *
 * Threads: a rs_gen_t is owned by one thread.  Different generators are
 * independent.  The conf field table is immutable and may be shared.
 */
#ifndef RS_GEN_H
#define RS_GEN_H

#include "common/common.h"
#include "common/config.h"
#include "proto/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ground-truth pattern of an event (0 = genuine).  Cards patterns are
 * fraud episodes; sensor patterns are failure modes. */
typedef enum rs_gen_pattern_e {
    RS_GEN_PAT_NONE = 0,
    RS_GEN_PAT_CARD_TESTING = 1,   /* burst of tiny amounts, then maybe big */
    RS_GEN_PAT_TAKEOVER = 2,       /* large amounts, new merchants, abroad  */
    RS_GEN_PAT_COMPROMISED = 3,    /* customers of a breached merchant      */
    RS_GEN_PAT_VELOCITY = 4,       /* many normal-ish txns in a short time  */
    RS_GEN_PAT_BEARING_WEAR = 5,   /* sensors: vibration, temperature, rpm  */
    RS_GEN_PAT_OVERHEATING = 6,    /* sensors: temperature, current, rpm    */
    RS_GEN_PAT_PRESSURE_LEAK = 7,  /* sensors: pressure, flow, rpm          */
    RS_GEN_PAT__CNT
} rs_gen_pattern_t;

/* "none", "card_testing", "account_takeover", "compromised_counterparty",
 * "velocity_spike", "bearing_wear", "overheating", "pressure_leak";
 * "unknown" outside the range.  Static string, never NULL. */
const char *rs_gen_pattern_name(int pattern);

typedef enum rs_gen_mode_e {
    RS_GEN_MODE_CARDS = 0,
    RS_GEN_MODE_SENSORS = 1
} rs_gen_mode_t;

/* The `gen:` configuration section.  Field types follow rs_conf_type_t
 * (INT/DURATION are int64_t, BOOL/ENUM are int) so rs_gen_conf_fields can
 * fill it directly.  Fill with rs_gen_conf_defaults() first. */
typedef struct rs_gen_conf_s {
    int64_t seed;                 /* PRNG seed                              */
    int mode;                     /* rs_gen_mode_t ("cards|sensors")        */
    int64_t entities;             /* cards / machines; 0 = 10000 / 200      */
    int64_t counterparties;       /* merchants / sites; 0 = 2000 / 20       */
    char start_time[40];          /* first event time (rs_time_parse)       */
    int64_t duration_ms;          /* event-time span; 0 = unlimited         */
    int64_t max_events;           /* stop after N events; 0 = unlimited     */
    int drain_labels;             /* after the last event, still emit the
                                   * labels in flight (times past the end)  */
    int64_t label_delay_ms;       /* cards: event -> label                  */
    double label_jitter;          /* delay * (1 + jitter * U(-1,1)), [0,1]  */
    int negative_labels;          /* also label genuine events with 0       */
    int64_t warmup_ms;            /* no fraud episode / drift starts before
                                   * start + warmup (histories build first) */
    /* cards */
    double tx_per_day;            /* median daily transactions of a card    */
    double amount_median;         /* median of the cards' median amounts    */
    double trips_per_year;        /* genuine trips abroad per card per year */
    double card_testing_rate;     /* share of events from each pattern      */
    double takeover_rate;
    double compromised_rate;
    double velocity_rate;
    double fraud_rate;            /* >0: the four rates are scaled so they
                                   * sum to this (0: as given)             */
    int64_t compromise_ms;        /* >0: a breached merchant stays breached
                                   * this long and every visitor's card is
                                   * stolen with p 0.5 (0: one-shot breach
                                   * of the past week's visitors)           */
    /* sensors */
    int64_t sensors;              /* sensors per machine, 1..8              */
    int64_t reading_interval_ms;
    int64_t mtbf_ms;              /* mean healthy time before drift starts  */
    int64_t drift_min_ms;         /* drift phase before a failure           */
    int64_t drift_max_ms;
    int64_t failure_window_ms;    /* readings this long before a failure
                                   * are positives                          */
    int64_t repair_ms;            /* downtime after a failure               */
    int64_t failure_label_delay_ms; /* failure -> its labels                */
    int degradation;              /* 0 drift, 1 step, 2 noisy, 3 mixed      */
    int64_t conditions;           /* operating regimes per machine (0: one) */
} rs_gen_conf_t;

/* The field table of rs_gen_conf_t (section "gen"), for rs_conf_add_section
 * with base = a rs_gen_conf_t.  Immutable. */
extern const rs_conf_field_t rs_gen_conf_fields[];
extern const int rs_gen_conf_nfields;

/* Fill *conf with the table defaults. */
void rs_gen_conf_defaults(rs_gen_conf_t *conf);
/* Set one field by its table name ("entities", "label_delay", ...) from
 * text, with the same parsing and bounds as the YAML path.  RS_ERR_CONFIG
 * names an unknown key or a bad value.  Cold path (allocates). */
rs_err_t rs_gen_conf_set(rs_gen_conf_t *conf, const char *key,
                         const char *value, char *errstr, size_t errstr_size);

/* ---------------------------------------------------------------- stream */

typedef enum rs_gen_kind_e { RS_GEN_EVENT = 0, RS_GEN_LABEL = 1 } rs_gen_kind_t;

/* One output record.  For RS_GEN_EVENT only `ev` is written (strings
 * NUL-terminated, numeric[0..n_numeric) and categ[0..n_categ) set; the
 * unused tails of the arrays are left as they were); for RS_GEN_LABEL only
 * `lb`.  is_fraud/pattern/episode are the ground truth of the event (for a
 * label: of the labelled event): pattern != 0 exactly when is_fraud. */
typedef struct rs_gen_rec_s {
    rs_gen_kind_t kind;
    int64_t emit_time_ms;   /* ev.event_time_ms or lb.label_time_ms       */
    rs_event_t ev;
    rs_label_t lb;
    int is_fraud;           /* 1 fraud event / pre-failure reading        */
    int pattern;            /* rs_gen_pattern_t, 0 = none                 */
    uint32_t episode;       /* fraud episode / failure id (1..), 0 = none */
} rs_gen_rec_t;

typedef struct rs_gen_s rs_gen_t;

/* Build a generator (the world: entities, counterparties, profiles).
 * `conf` is copied.  NULL on a bad configuration, with the reason in
 * errstr.  Free with rs_gen_destroy(); rs_gen_destroy(NULL) is a no-op. */
rs_gen_t *rs_gen_new(const rs_gen_conf_t *conf, char *errstr,
                     size_t errstr_size);
void rs_gen_destroy(rs_gen_t *g);

/* Produce the next record into *rec.  Returns 1 with a record, 0 at the
 * end of the stream (then always 0).  No allocation in steady state. */
int rs_gen_next(rs_gen_t *g, rs_gen_rec_t *rec);

/* The effective configuration (mode defaults resolved). */
const rs_gen_conf_t *rs_gen_conf(const rs_gen_t *g);

typedef struct rs_gen_stats_s {
    uint64_t events;                            /* events emitted          */
    uint64_t frauds;                            /* of which is_fraud       */
    uint64_t labels;                            /* labels emitted          */
    uint64_t labels_pos;                        /* of which value 1        */
    uint64_t fraud_events[RS_GEN_PAT__CNT];     /* fraud events by pattern */
    uint64_t episodes[RS_GEN_PAT__CNT];         /* cards: episodes started;
                                                 * sensors: failures, by
                                                 * pattern                 */
    uint64_t failures;                          /* sensors: failures so far */
    int64_t first_event_ms, last_event_ms;      /* 0 before the first      */
} rs_gen_stats_t;

/* Counters so far. */
void rs_gen_stats(const rs_gen_t *g, rs_gen_stats_t *st);

/* ------------------------------------------------------------ file output */

typedef enum rs_gen_file_fmt_e {
    RS_GEN_FILE_JSONL = 0,  /* one Event JSON per line                     */
    RS_GEN_FILE_CSV = 1     /* header + one row per event, with `label`    */
} rs_gen_file_fmt_t;

/* The CSV header line of this generator's mode (no newline):
 * cards:   id,type,entity_id,counterparty_id,event_time_ms,amount,
 *          hour_of_day,day_of_week,mcc,country,channel,label
 * sensors: id,type,entity_id,counterparty_id,event_time_ms,amount,
 *          <sensor names...>,machine_type,label
 * label is the ground truth (is_fraud) of the event. */
const char *rs_gen_csv_header(const rs_gen_t *g);
/* Encode an event record as one CSV row (no newline) matching the header.
 * Returns the length, or -1 if `size` is too small / rec is not an event. */
int rs_gen_csv_row(const rs_gen_t *g, const rs_gen_rec_t *rec, char *buf,
                   size_t size);

/* Drain the rest of the stream into files (cold path, blocking I/O).
 *   events_path  required; "-" = stdout.  JSONL: one Event JSON per line
 *                (rs_event_to_json); CSV: header + rs_gen_csv_row lines.
 *   labels_path  optional (NULL = labels not written): one Label JSON per
 *                line, in label-time order, whatever `fmt` is.
 *   truth_path   optional (NULL = not written): CSV
 *                "event_id,entity_id,event_time_ms,is_fraud,pattern,episode"
 *                for every event (pattern by name) -- the per-pattern ground
 *                truth, kept out of the event files so no pattern column can
 *                leak into features.
 * Returns RS_OK, or RS_ERR_IO (retriable) with the path and errno text. */
rs_err_t rs_gen_write_file(rs_gen_t *g, rs_gen_file_fmt_t fmt,
                           const char *events_path, const char *labels_path,
                           const char *truth_path, char *errstr,
                           size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_GEN_H */
