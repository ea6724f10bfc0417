/* harness.h -- the embedded stack used by `demo` and `bench`: a mock Kafka
 * cluster, a feeder thread that produces a generated stream at a paced or
 * unbounded rate, and the scoring service on the calling thread.
 *
 * Threads: the feeder owns its generator and producer; the service runs on
 * the caller's thread; they share only atomic counters.  At any rate the
 * feeder keeps at most `max_backlog` events ahead of the service so the
 * mock cluster's ~5 MB per partition retention does not drop input; a
 * retention watch (rs_cluster_watch) reports any drop anyway, and a run
 * whose remaining input never arrives stops after 10 s without progress
 * and says how many events were lost. */
#ifndef RS_HARNESS_H
#define RS_HARNESS_H

#include "cli.h"
#include "ops/gen/gen.h"
#include "ops/eval/eval.h"

typedef struct rs_harness_opts_s {
    double rate;            /* events/s offered; 0 = as fast as possible */
    int64_t max_events;     /* stop the feeder after N events; 0 = stream end */
    int64_t max_backlog;    /* produced - scored cap (any rate)          */
    int progress;           /* 1: live one-line display on stdout         */
    int quiet;              /* 1: no summary from the harness itself      */
    const char *label;      /* phase name for the display                 */
    int64_t warmup_events;  /* produced and scored first, then latency is
                             * reset and the measurement starts          */
    int maintenance;        /* sensors with maintenance.enabled: measure
                             * the alerts against the generator's truth
                             * (rs_harness_result_t.maint)               */
    rs_cli_common_t *common; /* non-NULL: rs_cli_run_opts copies the
                             * common flags given into it (their strings
                             * point into argv), e.g. for bench's rerun
                             * command                                   */
} rs_harness_opts_t;

typedef struct rs_harness_result_s {
    rs_service_stats_t st;     /* the service's final stats            */
    uint64_t produced_events;  /* by the feeder                        */
    uint64_t produced_labels;
    uint64_t gen_frauds;       /* ground-truth fraud events generated  */
    double feed_s;             /* feeder wall time                     */
    double offered_rate;       /* produced_events / feed_s             */
    char example_json[8192];   /* audit lookup read back from Redis    */
    char example_id[RS_ID_MAX];
    uint64_t measured_events;  /* scored after the warm-up             */
    double measured_s;         /* first to last score after warm-up    */
    /* The embedded broker's retention (~5 MB per partition): messages
     * dropped from each topic (-1 unknown), and events produced but never
     * consumed (the run stopped waiting for them). */
    int64_t dropped_events, dropped_labels, dropped_scores, dropped_alerts;
    uint64_t unread_events;
    /* opts.maintenance: the service's decisions on every reading, read
     * back from Redis, against the generator's truth ("fails within the
     * failure window"), as `eval --maintenance` reports them (column
     * "serve"); NULL if not measured.  Free with rs_mev_report_destroy. */
    rs_mev_report_t *maint;
    uint64_t maint_missing;    /* readings without a record in Redis     */
    /* The policy replayed over the score the service's policy decided on
     * (the record's `alert_score` if present, else `score`): readings
     * replayed, those whose record carries `alert_score`, and decisions
     * (alert or not) the replay disagrees with the record on (0 when the
     * replay is the service's policy). */
    uint64_t maint_replayed, maint_alert_scores;
    uint64_t maint_mismatch;
    /* ROC AUC / average precision of the model's own `score` over the
     * measured readings (the "serve" row's are of the policy's score);
     * NaN if a class is empty. */
    double maint_model_auc, maint_model_ap;
} rs_harness_result_t;

/* Run one phase: new embedded cluster (topics per app->ingest), service on
 * it, feeder from a generator built from `gconf`.  Returns an exit code. */
int rs_harness_run(rs_app_conf_t *app, const rs_gen_conf_t *gconf,
                   const rs_harness_opts_t *opts, rs_harness_result_t *res);

/* Options shared by demo and bench (see cmd_demo.c). */
int rs_cli_run_opts(const char *cmd, int argc, char **argv,
                    rs_app_conf_t *app, rs_gen_conf_t *gconf,
                    rs_harness_opts_t *ho, int *help);

/* 1234567 -> "1,234,567" */
void rs_cli_fmt_count(uint64_t v, char *buf, size_t size);

/* "Intel(R) Xeon(R) ... , 2 cores, Linux 6.1" */
void rs_harness_machine(char *buf, size_t size);

#endif
