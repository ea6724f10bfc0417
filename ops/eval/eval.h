/* eval.h -- prequential (test-then-train) evaluation of the risk models.
 *
 * Design note
 * -----------
 * Three pieces, none of which opens a file (the CLI, ops/cli/cmd_eval.c,
 * reads and writes them):
 *
 *  - rs_eval_input_t: an index over an events buffer (JSON lines, foreign
 *    JSON lines or CSV with a column mapping).  It decodes every record
 *    once to learn its event time, label and id, counts and skips bad
 *    lines (keeping the first messages, each naming the line and field),
 *    sorts the good ones by event time (stable: ties keep file order) and
 *    joins an optional labels buffer (JSON lines, with label times) and an
 *    optional truth buffer (the generator's per-event pattern CSV).  The
 *    events are decoded again, in time order, by rs_eval_input_get, so
 *    memory stays ~56 bytes per event plus the buffer.
 *
 *  - rs_eval_t: the replay.  One feature engine and N models (default
 *    "seq" and "lr") on the SAME feature vectors.  For each event, in
 *    event-time order:
 *        1. labels that became available at or before its time are applied
 *           (rs_features_label, then each model's learner joins it to the
 *           event's learning record: rs_learner_label);
 *        2. every model learns the events older than its label horizon as
 *           negatives (rs_learner_advance, as the service's trainer does);
 *        3. the event is featurised (rs_features_process) and scored by
 *           every model, its learning record appended to that model's
 *           learning log (rs_learner_forward);
 *        4. its label, if it is to be learned, is queued until
 *           label_time (default event time + label_delay);
 *        5. unless it falls in the warm-up, it is added to the metrics.
 *    So a score never depends on a label that was not available at the
 *    event's time: the invariant the label hook lets tests check.
 *
 *  - rs_eval_acc_t: the metrics accumulator, fed (time, entity, truth,
 *    pattern, scores) per event; rs_eval_acc_report computes per UTC day
 *    and overall ROC AUC and average precision (exact, rs_auc_exact /
 *    rs_ap_exact), precision at the top-k entities per day and the alert
 *    rate, and per fraud pattern AUC/AP (that pattern's positives against
 *    all negatives).  Usable alone (tests feed it hand-made scores).
 *
 * Ownership: every object has new/destroy (destroy(NULL) is a no-op);
 * reports are freed with rs_eval_report_destroy.  Threads: each object is
 * owned by one thread; no global state.  Everything is deterministic: the
 * same input and configuration give the same report, byte for byte.
 */
#ifndef RS_EVAL_H
#define RS_EVAL_H

#include <stdio.h>

#include "common/common.h"
#include "proto/proto.h"
#include "features/features.h"
#include "model/learner.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RS_EVAL_MODELS_MAX   4    /* models compared side by side        */
#define RS_EVAL_PATTERNS_MAX 16   /* distinct truth patterns (incl. none) */
#define RS_EVAL_PATTERN_LEN  40   /* pattern name incl. NUL               */
#define RS_EVAL_ERRORS_KEPT  5    /* bad-line messages kept               */

/* ----------------------------------------------------------------- input */

typedef enum rs_eval_format_e {
    RS_EVAL_FMT_JSONL = 0,       /* the project's Event JSON, one per line */
    RS_EVAL_FMT_JSON_MAP = 1,    /* foreign flat JSON through the mapping   */
    RS_EVAL_FMT_CSV = 2,         /* CSV with a header, through the mapping  */
    RS_EVAL_FMT_RTF = 3          /* whitespace run-to-failure rows
                                  * (proto.h rs_rtf_decode)                 */
} rs_eval_format_t;

/* The format of `input`: from `format` ("jsonl", "json", "csv",
 * "json-map") if given -- a JSON file with a column mapping is foreign
 * JSON -- else by name: "*.csv" is CSV, otherwise JSON lines (foreign with
 * a mapping).  -1 if `format` is unknown. */
int rs_eval_format_pick(const char *format, const char *input, int has_map);

typedef struct rs_eval_input_s rs_eval_input_t;

typedef struct rs_eval_input_stats_s {
    uint64_t lines;              /* records seen (excl. header/blank)       */
    uint64_t events;             /* good records                            */
    uint64_t bad;                /* undecodable / invalid, skipped          */
    uint64_t with_label;         /* events with a label (column or file)    */
    uint64_t positives;          /* of which value >= 0.5                   */
    uint64_t out_of_order;       /* events earlier than one before them     */
    uint64_t labels;             /* label lines joined to an event          */
    uint64_t labels_unknown;     /* label lines for no event of the input   */
    uint64_t labels_bad;         /* undecodable label lines                 */
    uint64_t truth_rows;         /* truth rows joined to an event           */
    uint64_t truth_unknown;      /* truth rows for no event                 */
    uint64_t truth_bad;          /* unparsable truth rows                   */
    int nerrors;                 /* messages kept in errors[]               */
    char errors[RS_EVAL_ERRORS_KEPT][400]; /* "line 12: field 'amount': ..." */
} rs_eval_input_stats_t;

/* Index the events in buf[0..len) (not copied: it must outlive the input).
 * `map` (may be NULL: defaults) is used for CSV and foreign JSON.  Bad
 * records are counted and skipped, never fatal.  Returns NULL with errstr
 * only if the input is unusable as a whole (CSV header lacks a mapped
 * column, or nothing to read).  Cold path: allocates the index. */
rs_eval_input_t *rs_eval_input_new(const char *buf, size_t len,
                                   rs_eval_format_t fmt,
                                   const rs_csv_map_t *map, char *errstr,
                                   size_t errstr_size);
/* The same for run-to-failure rows with the reader's settings (copied):
 * with rtf->failures, every unit's latest row gets label 1 (its failure),
 * its other rows label 0. */
rs_eval_input_t *rs_eval_input_new_rtf(const char *buf, size_t len,
                                       const rs_rtf_conf_t *rtf,
                                       char *errstr, size_t errstr_size);
void rs_eval_input_destroy(rs_eval_input_t *in);

/* Join a labels buffer (JSON lines, rs_label_from_json; any order).  From
 * then on the labels file REPLACES the label column: an event's truth is
 * its label's value (0 if it has none), learned at the label's
 * label_time_ms (event time + label_delay if that is 0).  Bad lines are
 * counted (stats.labels_bad) with a message. */
void rs_eval_input_join_labels(rs_eval_input_t *in, const char *buf,
                               size_t len);
/* Join a truth CSV (header with at least event_id and pattern columns;
 * "none" or "" = genuine).  RS_ERR_INVALID with errstr if the header lacks
 * them; bad rows are counted. */
rs_err_t rs_eval_input_join_truth(rs_eval_input_t *in, const char *buf,
                                  size_t len, char *errstr,
                                  size_t errstr_size);

/* Maintenance mode: the labels mark FAILURES.  Per entity, in time order,
 * the last positive of each run of positive labels (the column or the
 * labels file) is a failure at its event time T (a run-to-failure unit's
 * last cycle, or the generator's last labelled reading before a failure);
 * from then on rs_eval_input_get gives label = 1 for the entity's records
 * in [T - horizon, T] of its next failure ("fails within the horizon"),
 * learn = failure = 1 only on the failure's record (learned at its label
 * time, or event time + label_delay).  Returns the number of failures. */
uint64_t rs_eval_input_maintenance(rs_eval_input_t *in, int64_t horizon_ms);
/* After rs_eval_input_maintenance: 1 if the i-th event (time order) is a
 * failure, with its entity hash and time. */
int rs_eval_input_failure(const rs_eval_input_t *in, size_t i, uint64_t *enth,
                          int64_t *t);

size_t rs_eval_input_count(const rs_eval_input_t *in);   /* good events */
void rs_eval_input_stats(const rs_eval_input_t *in, rs_eval_input_stats_t *st);
/* Line number (1-based) of the i-th event in time order. */
uint32_t rs_eval_input_line(const rs_eval_input_t *in, size_t i);

/* One event of the replay with what the evaluator may know about it. */
typedef struct rs_eval_rec_s {
    const rs_event_t *ev;
    int label;                   /* ground truth for the metrics: 1 or 0    */
    int learn;                   /* 1: feed this label to the models        */
    int64_t label_time_ms;       /* when it becomes known; 0: event time +
                                  * label_delay                             */
    const char *pattern;         /* truth pattern name, NULL = none         */
    int failure;                 /* maintenance: this record is a failure of
                                  * its entity (its label is learned as a
                                  * failure-horizon label)                  */
} rs_eval_rec_t;

/* Decode the i-th event in time order into *ev and fill *rec (rec->ev =
 * ev; pattern points into `in`).  A CSV/JSON label column gives label =
 * value >= 0.5 and learn = label (only positives are fed: negatives come
 * from the horizon, as in the service).  With joined labels every label
 * of the file is fed at its time.  RS_ERR_INVALID if i is out of range. */
rs_err_t rs_eval_input_get(rs_eval_input_t *in, size_t i, rs_event_t *ev,
                           rs_eval_rec_t *rec);

/* --------------------------------------------------------------- metrics */

typedef struct rs_eval_metrics_s {
    double auc;                  /* ROC AUC, NaN if a class is empty        */
    double ap;                   /* average precision, NaN if no positive   */
    double p_at_k;               /* precision at top-k entities (per day;
                                  * overall: hits / picks over all days)    */
    double alert_rate;           /* share of events with score >= threshold */
    uint64_t alerts;             /* events with score >= threshold          */
    uint64_t topk_hits, topk_picks;
    /* overall row only: unweighted mean over the days where it is defined
     * (pooled AUC/AP also rank events of different days against each
     * other, so they mix in how calibration drifts while learning) */
    double auc_day_mean, ap_day_mean;
} rs_eval_metrics_t;

typedef struct rs_eval_day_s {
    int64_t day_ms;              /* UTC midnight; 0 for the overall row     */
    uint64_t events, positives, entities;
    rs_eval_metrics_t m[RS_EVAL_MODELS_MAX];
} rs_eval_day_t;

typedef struct rs_eval_pattern_s {
    char name[RS_EVAL_PATTERN_LEN];
    uint64_t positives;
    double auc[RS_EVAL_MODELS_MAX], ap[RS_EVAL_MODELS_MAX];
} rs_eval_pattern_t;

/* The practitioners' protocol: per test week (7 UTC days from the first
 * measured day), cards whose fraud label was already known before the
 * week started are removed; each day, every remaining card gets its max
 * score of the day, the top_k cards are picked and the share of them with
 * a fraud that day is the day's card precision@k; the week's value is the
 * mean over its days. */
typedef struct rs_eval_week_s {
    int64_t start_ms;            /* UTC midnight of the week's first day   */
    int days;                    /* days with events                       */
    uint64_t cards_removed;      /* known compromised before the week      */
    uint64_t fraud_cards;        /* card-days with a fraud (kept cards)    */
    double card_p_at_k[RS_EVAL_MODELS_MAX]; /* mean over the week's days  */
} rs_eval_week_t;

typedef struct rs_eval_report_s {
    int nmodels;
    char model[RS_EVAL_MODELS_MAX][16];  /* "seq", "lr"                     */
    int64_t top_k;
    double threshold;
    int ndays;
    rs_eval_day_t *days;         /* [ndays], by day ascending               */
    rs_eval_day_t overall;
    int npatterns;               /* 0 without truth                          */
    rs_eval_pattern_t patterns[RS_EVAL_PATTERNS_MAX];
    uint64_t pattern_unmatched;  /* positives with no pattern (truth gap)   */
    char alert_rule[160];        /* how alerts were decided (for the print) */
    int nweeks;
    rs_eval_week_t *weeks;       /* [nweeks]                                */
    double card_p_at_k[RS_EVAL_MODELS_MAX]; /* mean over all days           */
} rs_eval_report_t;

typedef struct rs_eval_acc_s rs_eval_acc_t;

/* nmodels in [1, RS_EVAL_MODELS_MAX] named names[nmodels] (copied);
 * top_k >= 1; alert threshold.  NULL + errstr on bad arguments. */
rs_eval_acc_t *rs_eval_acc_new(int nmodels, const char *const *names,
                               int64_t top_k, double threshold,
                               char *errstr, size_t errstr_size);
void rs_eval_acc_destroy(rs_eval_acc_t *acc);
/* One scored event.  pattern: NULL/""/"none" = no pattern.  Amortised
 * O(1) (arrays grow geometrically; cold path: this is offline).  Alerts
 * are score >= threshold; the label is never known (no card removed by
 * the weekly protocol). */
void rs_eval_acc_add(rs_eval_acc_t *acc, int64_t event_time_ms,
                     const char *entity_id, int label, const char *pattern,
                     const float *scores /* [nmodels] */);
/* The same with what the replay knows: known_ms, when the event's fraud
 * label became known (INT64_MAX: never; for the weekly protocol), and
 * alerts, bit k set if model k alerted (as `serve` decides). */
void rs_eval_acc_add_ex(rs_eval_acc_t *acc, int64_t event_time_ms,
                        const char *entity_id, int label, const char *pattern,
                        const float *scores /* [nmodels] */, int64_t known_ms,
                        uint32_t alerts);
/* Describe the alert rule in the report ("score >= 0.5" by default). */
void rs_eval_acc_alert_rule(rs_eval_acc_t *acc, const char *rule);
/* Compute the report (sorts copies; O(n log n)).  Free with
 * rs_eval_report_destroy.  NULL only if nothing was added. */
rs_eval_report_t *rs_eval_acc_report(const rs_eval_acc_t *acc);
void rs_eval_report_destroy(rs_eval_report_t *rep);

/* Print the overall table, the per-pattern table (if any) and, with
 * per_day, the per-day table, as plain aligned text. */
void rs_eval_report_print(const rs_eval_report_t *rep, int per_day, FILE *fp);

/* SVG line chart of the daily AUC, AP (with the base rate: the AP of a
 * random score) and alert volume of every model (three panels, shared day
 * axis, legend, title).  Returns a malloc'd NUL-terminated string (free
 * with free()) or NULL if the report has no day. */
char *rs_eval_plot_svg(const rs_eval_report_t *rep, const char *title);

/* ------------------------------------------------- maintenance metrics
 *
 * Maintenance mode (rs_eval_conf_t.maint): per event the replay records
 * the entity, time, truth ("fails within the horizon"), whether it is a
 * failure, every column's score (the models, then the reference: a
 * per-machine threshold on the most drifting sensor), and per column the
 * alert policy's decision (model/maint.h) and whether the machine is in
 * an open episode. */
typedef struct rs_mev_s rs_mev_t;

typedef struct rs_mev_col_s {
    char name[16];
    double auc, ap;              /* of "fails within the horizon"            */
    uint64_t caught;             /* failures with an alert in [T - H, T]     */
    uint64_t caught_third;       /* ... at least H/3 ahead                   */
    int64_t lead_q[5];           /* lead time p10 p25 p50 p75 p90, ms (-1)   */
    uint64_t alerts;             /* alert decisions (new and escalated)      */
    uint64_t false_alerts;       /* ... on healthy readings                  */
    double false_per_day;        /* per healthy machine-day                  */
    uint64_t healthy_open;       /* healthy readings in an open episode      */
    double healthy_open_share;
    uint64_t healthy_above;      /* healthy readings scored >= threshold     */
    double healthy_above_share;
} rs_mev_col_t;

typedef struct rs_mev_report_s {
    int ncols;
    rs_mev_col_t col[RS_EVAL_MODELS_MAX + 1];
    int64_t horizon;
    double threshold;
    uint64_t readings, machines, failures, positives, healthy_days;
    /* remaining useful life (rs_mev_rul), against the truth min(time to
     * the machine's next failure, cap); readings whose machine is seen
     * running less than the cap after them and not failing are censored
     * (left out).  RMSE in hours, of the head and of the constant mean of
     * the truths (reference); all / within the horizon of a failure. */
    int rul;
    int64_t rul_cap;
    uint64_t rul_n, rul_near_n, rul_censored;
    double rul_rmse_h, rul_base_h, rul_near_rmse_h, rul_near_base_h;
} rs_mev_report_t;

rs_mev_t *rs_mev_new(int ncols, const char *const *names, int64_t horizon_ms,
                     double threshold);
void rs_mev_destroy(rs_mev_t *m);
/* One scored reading: decisions/open bit k for column k. */
void rs_mev_add(rs_mev_t *m, int64_t t, uint64_t ent, int truth, int failure,
                const float *scores /* [ncols] */, uint32_t decisions,
                uint32_t open);
/* The remaining-useful-life estimate (ms, capped at cap_ms; 0 = none) of
 * the reading added last: the report then has RUL RMSE. */
void rs_mev_rul(rs_mev_t *m, int64_t rul_ms, int64_t cap_ms);
/* NULL if nothing was added.  Free with rs_mev_report_destroy. */
rs_mev_report_t *rs_mev_report(const rs_mev_t *m);
void rs_mev_report_destroy(rs_mev_report_t *r);
void rs_mev_report_print(const rs_mev_report_t *r, FILE *fp);
/* SVG: per column, the score against time to failure (the last 3
 * horizons) of the first `machines` failures.  malloc'd, or NULL. */
char *rs_mev_plot_svg(const rs_mev_t *m, int machines, const char *title);

/* ---------------------------------------------------------------- replay */

/* Model kind of the boosted-trees reference in rs_eval_conf_t.kinds (not
 * an rs_model_t: ops/eval/gbt.h; needs libxgboost). */
#define RS_EVAL_KIND_GBT 100

typedef struct rs_eval_conf_s {
    int64_t label_delay_ms;      /* label column: known at event time + this;
                                  * also the gbt training window's maturity */
    int64_t top_k;               /* entities per day for precision@k        */
    double threshold;            /* alert rate: score >= this               */
    int64_t warmup_ms;           /* events before first event time + this
                                  * are replayed (learned) but not measured */
    int nmodels;                 /* 1..RS_EVAL_MODELS_MAX                    */
    int kinds[RS_EVAL_MODELS_MAX];        /* rs_model_kind_t of each model   */
    const rs_features_conf_t *features;   /* copied by rs_eval_new           */
    const rs_model_conf_t *model;         /* copied; kind replaced per model */
    /* Optional: called for each label applied, with the event time of the
     * event about to be scored (now_ms; the last event time at the end).
     * For tests of the no-leakage invariant. */
    void (*label_hook)(void *opaque, const rs_label_t *lb,
                       int64_t event_time_ms, int64_t now_ms);
    void *hook_opaque;
    /* Optional: 1 if `score` of `ev` is an alert (the CLI passes serve's
     * rs_decide).  NULL: score >= threshold. */
    int (*alert)(void *opaque, const rs_event_t *ev, float score);
    void *alert_opaque;
    /* gbt: trailing training window (default 7d), rounds (200),
     * scale_pos_weight = negatives/positives (0: off, the default) */
    int64_t gbt_window_ms;
    int gbt_rounds;
    int gbt_balance;
    /* 1: replay and learn only, keep no per-event metrics (`riskstream
     * train`): saves ~(22 + 4 x models) bytes per event; rs_eval_report
     * then returns NULL.  Default 0. */
    int no_metrics;
    /* Where the models' learning logs go (a subdirectory per model);
     * NULL or "" = in memory (~300 bytes per event and model). */
    const char *log_dir;
    /* Maintenance mode (NULL or !enabled: off; copied): the input's labels
     * are failures (rs_eval_input_maintenance); a failure is learned as
     * failure-horizon labels through each model's learning log
     * (rs_learner_failure), restarts its machine's baselines
     * (rs_features_reset) and never feeds a label-aware feature; each
     * model and the reference column ("ref": the largest |base_z| of the
     * longest span z, as z / (z + c): 3 sd at the alert threshold) get the
     * alert policy; the metrics go
     * to rs_eval_maint_report.  gbt is refused. */
    const struct rs_maint_conf_s *maint;
} rs_eval_conf_t;

/* Defaults: label_delay 3d, top_k 100, threshold 0.5, warmup 0, models
 * seq + lr. */
void rs_eval_conf_init(rs_eval_conf_t *conf);
/* Parse "seq,lr,gbt" into conf->kinds/nmodels; RS_ERR_CONFIG names a bad
 * one (gbt when built without libxgboost too). */
rs_err_t rs_eval_conf_models(rs_eval_conf_t *conf, const char *list,
                             char *errstr, size_t errstr_size);

typedef struct rs_eval_s rs_eval_t;

typedef struct rs_eval_stats_s {
    uint64_t events;             /* scored                                  */
    uint64_t warmup;             /* of which not measured (warm-up)         */
    uint64_t rejected;           /* refused by rs_features_process          */
    uint64_t labels_applied;     /* labels fed (features + models)          */
    uint64_t labels_pending;     /* still in flight at the end              */
    rs_model_stats_t model[RS_EVAL_MODELS_MAX]; /* gbt: positives and
                                  * negatives of all its training sets,
                                  * updates = trainings                     */
    rs_learner_stats_t learner[RS_EVAL_MODELS_MAX]; /* joins, maturity,
                                  * corrections, delays (not gbt)           */
    uint64_t gbt_last_positives, gbt_last_negatives; /* newest training set */
    double gbt_train_s;          /* wall time training gbt                  */
} rs_eval_stats_t;

/* Build the feature engine and the models (allocates their state up
 * front).  NULL + errstr on a bad configuration. */
rs_eval_t *rs_eval_new(const rs_eval_conf_t *conf, char *errstr,
                       size_t errstr_size);
void rs_eval_destroy(rs_eval_t *e);

/* Replay one event (steps 1-4 of the design note) and add it to the
 * metrics.  scores (may be NULL) gets [nmodels] scores.  RS_ERR_INVALID
 * with errstr if the feature engine refuses the event (counted in
 * stats.rejected, nothing else changes). */
rs_err_t rs_eval_push(rs_eval_t *e, const rs_eval_rec_t *rec,
                      float *scores /* [nmodels] or NULL */, char *errstr,
                      size_t errstr_size);

int rs_eval_nmodels(const rs_eval_t *e);
const char *rs_eval_model_name(const rs_eval_t *e, int i); /* "seq", "lr" */
int rs_eval_dim(const rs_eval_t *e);                        /* features     */
/* The i-th model (NULL if out of range or gbt), owned by e and valid until
 * rs_eval_destroy: for rs_model_save / rs_model_stats / rs_model_version
 * after (or between) rs_eval_push calls, from e's thread.  `riskstream
 * train` saves the model it trained this way. */
rs_model_t *rs_eval_model(rs_eval_t *e, int i);
void rs_eval_stats(const rs_eval_t *e, rs_eval_stats_t *st);
/* The feature engine (owned by e; for rs_features_constant and names). */
const rs_features_t *rs_eval_features(const rs_eval_t *e);
/* `riskstream train`'s bootstrap: learn every record already resolved
 * (labelled, or negative at maturity) with an event time in the last
 * window_ms of the replay again, `epochs` more times in a shuffled order
 * (rs_learner_replay).  Returns the learning steps made. */
uint64_t rs_eval_epochs(rs_eval_t *e, int epochs, int64_t window_ms);

/* Maintenance mode: the metrics so far (NULL if off or empty), and the
 * per-event records for the plot (owned by e; NULL if off). */
rs_mev_report_t *rs_eval_maint_report(const rs_eval_t *e);
const rs_mev_t *rs_eval_maint(const rs_eval_t *e);
/* Maintenance mode: of the last event pushed, each model's own score
 * (before the cold-start blend; own[nmodels]) and the reference's score
 * (*ref).  Returns 0 (nothing written) if maintenance is off.  For
 * --scores-out's score_own_<model> and score_ref columns: the blend does
 * not feed learning, so other hand-overs can be replayed offline. */
int rs_eval_maint_scores(const rs_eval_t *e, float *own, float *ref);

/* The report so far (see rs_eval_acc_report). */
rs_eval_report_t *rs_eval_report(const rs_eval_t *e);

#ifdef __cplusplus
}
#endif
#endif /* RS_EVAL_H */
