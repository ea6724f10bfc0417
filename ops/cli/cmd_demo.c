/* cmd_demo.c -- `riskstream demo`: embedded Kafka + generator + service,
 * a live progress line, a summary (with loud warnings if the embedded
 * broker's retention dropped messages) and the audit report of one decision
 * worth showing (a caught fraud if there is one) read back from Redis. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void rs_demo_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream demo [--redis URL] [--rate N] [--events N] [--seed N]\n"
        "                       [--entities N] [--duration DUR] [--sensors]\n"
        "                       [--config FILE] [--set KEY=VALUE]...\n\n"
        "Start the embedded Kafka (librdkafka mock cluster), generate a\n"
        "synthetic stream (cards, or machines with --sensors) with delayed\n"
        "labels, score it live and show events/s, p50/p99 latency, frauds\n"
        "caught and the running AUC; then print a summary and the audit\n"
        "report of one decision (a caught fraud if there is one) read back\n"
        "from Redis.  ops/run.sh starts a private Redis and runs this.\n\n"
        "options:\n" RS_CLI_HELP_CONFIG RS_CLI_HELP_REDIS RS_CLI_HELP_GROUP
        RS_CLI_HELP_REST
        "      --rate N          events/s offered (default 5000; 0 = max)\n"
        "      --events N        stop after N events (default: whole stream)\n"
        "      --seed N          generator seed (default 42)\n"
        "      --entities N      cards or machines (default 2000 / 40)\n"
        "      --duration DUR    simulated time span (default 30d / 10d)\n"
        "      --sensors         machines with drifting sensors and failures, in\n"
        "                        maintenance mode (failure labels, the alert\n"
        "                        policy; horizon = gen.failure_window) unless a\n"
        "                        --config decides; prints the maintenance\n"
        "                        figures measured from the stream\n");
}

/* 1 if -c/--config was given (then the file decides the feature preset). */
static int rs_demo_has_config(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-c") || !strncmp(argv[i], "--config", 8))
            return 1;
    return 0;
}

/* The example decision, read back from Redis, as the audit report. */
static void rs_demo_print_lookup(const char *id, const char *json,
                                 const rs_app_conf_t *app) {
    char errstr[256];
    rs_score_t *sc = rs_malloc(sizeof(*sc));
    printf("\naudit report of %s, read back from Redis (GET %sscore:%s; "
           "the same as `riskstream audit %s --redis URL`):\n\n", id,
           app->redis.key_prefix, id, id);
    if (rs_score_from_json(json, strlen(json), sc, errstr, sizeof(errstr)) ==
        RS_OK)
        rs_cli_audit_report(sc, stdout);
    else
        printf("%s\n", json); /* "(lookup failed: ...)" */
    rs_free(sc);
}

/* Loud lines when the embedded broker's retention dropped messages. */
static void rs_demo_print_retention(const rs_harness_result_t *res,
                                    const rs_app_conf_t *app) {
    char a[32], b[32];
    if (res->unread_events > 0) {
        rs_cli_fmt_count(res->unread_events, a, sizeof(a));
        rs_cli_fmt_count(res->produced_events, b, sizeof(b));
        printf("  WARNING: %s of the %s events produced were never scored:%s\n",
               a, b, res->dropped_events > 0
                         ? " the embedded broker's retention (~5 MB per "
                           "partition) dropped them before the service read "
                           "them (slower than the offered rate: lower --rate)"
                         : " they did not arrive (see the log)");
    }
    const struct { const char *topic; int64_t n; const char *what; } out[] = {
        {app->ingest.topic_scores, res->dropped_scores, "scores"},
        {app->ingest.topic_alerts, res->dropped_alerts, "alerts"},
        {app->ingest.topic_labels, res->dropped_labels, "labels"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(out); i++) {
        if (out[i].n <= 0) continue;
        rs_cli_fmt_count((uint64_t)out[i].n, a, sizeof(a));
        printf("  WARNING: the embedded broker's retention (~5 MB per "
               "partition) dropped the oldest %s messages of the %s topic "
               "'%s'%s: a consumer reading it now misses them.  Use a real "
               "Kafka (serve --brokers) for runs this long.\n", a,
               out[i].what, out[i].topic,
               i < 2 ? " (every score is in Redis)" : "");
    }
}

/* Parse the options shared by demo and bench into app/gconf/ho: common
 * flags, --rate, --events and the generator flags (applied after the
 * config file so flags win).  Returns an exit code; *help set if --help. */
int rs_cli_run_opts(const char *cmd, int argc, char **argv,
                    rs_app_conf_t *app, rs_gen_conf_t *gconf,
                    rs_harness_opts_t *ho, int *help) {
    static const struct option extra[] = {
        {"rate", required_argument, NULL, 1000},
        {"events", required_argument, NULL, 1001},
        {"seed", required_argument, NULL, 2000},
        {"entities", required_argument, NULL, 2001},
        {"duration", required_argument, NULL, 2002},
        {"sensors", no_argument, NULL, 2003},
        {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    int flag_c[32], nflags = 0, c;
    const char *flag_v[32];
    *help = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT, opts, NULL)) !=
           -1) {
        int r = rs_cli_common_opt(cmd, c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        if (c == 'h') { *help = 1; return RS_EXIT_OK; }
        if (c == 1000 || c == 1001) {
            char *end;
            double v = strtod(optarg, &end);
            if (*end || v < 0 || end == optarg)
                return rs_cli_usage_error(cmd, "--%s '%s': expected a "
                                          "non-negative number",
                                          c == 1000 ? "rate" : "events",
                                          optarg);
            if (c == 1000) ho->rate = v;
            else ho->max_events = (int64_t)v;
            continue;
        }
        if (c >= 2000 && c <= 2006 && nflags < 32) {
            flag_c[nflags] = c;
            flag_v[nflags++] = optarg;
            continue;
        }
        return rs_cli_usage_error(cmd, "unknown option (see %s --help)", cmd);
    }
    if (optind < argc)
        return rs_cli_usage_error(cmd, "unexpected argument '%s'",
                                  argv[optind]);
    if (ho->common) *ho->common = co;
    if (co.brokers)
        return rs_cli_usage_error(cmd, "--brokers: not used by `%s`: it "
                                  "always runs on the embedded Kafka; use "
                                  "`serve` and `gen` against a real cluster",
                                  cmd);
    int rc = rs_cli_load_conf(cmd, app, &co);
    if (rc != RS_EXIT_OK) return rc;
    for (int i = 0; i < nflags; i++)
        if (rs_cli_gen_opt(flag_c[i], flag_v[i], gconf, cmd) < 0)
            return RS_EXIT_USAGE;
    if (!co.log_level) rs_log_set_level(RS_LOG_WARN); /* keep output clean */
    app->service.stats_interval_ms = 0;
    return RS_EXIT_OK;
}

int rs_cmd_demo(int argc, char **argv) {
    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_init("demo", &app, &gconf), help = 0;
    if (rc != RS_EXIT_OK) return rc;
    /* Demo defaults: a small world that runs in well under a minute. */
    gconf.entities = 2000;
    /* The first 2000 events also carry the consumer's start-up (group
     * join, offset lookup): latency is measured after them. */
    rs_harness_opts_t ho = {.rate = 5000, .progress = 1, .label = "demo",
                            .warmup_events = 2000};
    rc = rs_cli_run_opts("demo", argc, argv, &app, &gconf, &ho, &help);
    if (help) rs_demo_help(stdout);
    if (rc != RS_EXIT_OK || help) {
        rs_app_conf_destroy(&app);
        return rc;
    }
    if (gconf.mode == RS_GEN_MODE_SENSORS) {
        /* A sensor world that runs in ~30 s and whose readings fit the
         * model's pending buffer until their failure labels can arrive;
         * and the sensor feature preset unless a config file chose one. */
        if (gconf.entities == 2000) gconf.entities = 40;
        if (gconf.duration_ms == 30LL * 86400000) gconf.duration_ms = 10LL * 86400000;
        char e2[256];
        if (!rs_demo_has_config(argc, argv)) {
            rs_conf_set(app.conf, "features.preset", "sensors", e2, sizeof(e2));
            /* predictive maintenance: failure-horizon labels, the alert
             * policy; the horizon is the generator's failure window */
            app.maint.enabled = 1;
            app.maint.horizon = gconf.failure_window_ms;
        }
        ho.maintenance = app.maint.enabled;
    }
    rs_cli_signals();
    rs_harness_result_t *res = rs_calloc(1, sizeof(*res));
    rc = rs_harness_run(&app, &gconf, &ho, res);
    if (rc == RS_EXIT_OK) {
        const rs_service_stats_t *st = &res->st;
        char n1[32];
        rs_cli_fmt_count(st->scored, n1, sizeof(n1));
        printf("\ndemo summary: %s events scored in %.1f s (%.0f ev/s); "
               "%llu rejected; %llu labels produced, %llu consumed\n",
               n1, st->elapsed_s,
               st->active_s > 0 ? st->scored / st->active_s : 0,
               (unsigned long long)st->rejected,
               (unsigned long long)res->produced_labels,
               (unsigned long long)st->labels);
        printf("  latency event produced -> score produced (after %lld "
               "warm-up events): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms "
               "(processing p50 %.0f us)\n",
               (long long)ho.warmup_events,
               rs_hist_quantile(&st->e2e_us, 0.5) / 1000.0,
               rs_hist_quantile(&st->e2e_us, 0.99) / 1000.0,
               rs_hist_quantile(&st->e2e_us, 0.999) / 1000.0,
               (double)rs_hist_quantile(&st->proc_us, 0.5));
        if (res->maint) {
            /* failures: learned as failure-horizon labels, not one label
             * per event (the running AUC of joined labels does not apply) */
            printf("  failure labels: %llu readings learned as positives "
                   "(within the horizon before a failure); %llu alerts "
                   "(alert policy); model %s\n",
                   (unsigned long long)st->positives,
                   (unsigned long long)st->alerts, st->model_version);
        } else {
            printf("  positive labels matched to a scored event: %llu; "
                   "caught (score >= review/alert threshold): %llu "
                   "(%.1f%%)\n", (unsigned long long)st->positives,
                   (unsigned long long)st->caught,
                   st->positives ? 100.0 * st->caught / st->positives : 0.0);
            printf("  running ROC AUC %.3f, average precision %.3f over %llu "
                   "resolved events; decisions: %llu review, %llu decline, "
                   "%llu alert; model %s\n",
                   rs_auc_roc(&st->auc), rs_auc_ap(&st->auc),
                   (unsigned long long)(st->auc.npos + st->auc.nneg),
                   (unsigned long long)st->reviews,
                   (unsigned long long)st->declines,
                   (unsigned long long)st->alerts, st->model_version);
        }
        if (res->maint) {
            const rs_mev_report_t *m = res->maint;
            const rs_mev_col_t *c = &m->col[0];
            char h3[32], p50[32];
            snprintf(h3, sizeof(h3), "%.1f h",
                     (double)m->horizon / 3.0 / 3600000.0);
            if (c->lead_q[2] >= 0)
                snprintf(p50, sizeof(p50), "%.1f h",
                         (double)c->lead_q[2] / 3600000.0);
            else
                snprintf(p50, sizeof(p50), "-");
            printf("  maintenance (alerts from the stream, read back from "
                   "Redis, against the generator's truth): %llu failures, "
                   "%llu caught at least H/3 = %s ahead (%.1f%%), median lead "
                   "time %s, %.2f%% of healthy readings in an open alert "
                   "episode, %.3f false alerts per healthy machine-day\n",
                   (unsigned long long)m->failures,
                   (unsigned long long)c->caught_third, h3,
                   m->failures ? 100.0 * (double)c->caught_third /
                                     (double)m->failures
                               : 0.0,
                   p50, 100.0 * c->healthy_open_share, c->false_per_day);
            if (res->maint_missing)
                printf("  (%llu readings without a record in Redis)\n",
                       (unsigned long long)res->maint_missing);
            /* always printed: 0 says the replay is the service's policy */
            printf("  alert policy replayed over the score the service's "
                   "policy decided on (the record's alert_score where it "
                   "carries one: %llu of %llu readings; else score): %llu "
                   "decisions differ from the records'\n",
                   (unsigned long long)res->maint_alert_scores,
                   (unsigned long long)res->maint_replayed,
                   (unsigned long long)res->maint_mismatch);
            printf("  the model's own score (the records' score): ROC AUC "
                   "%.4f, average precision %.4f; the table's ROC AUC, avg "
                   "prec and above%% are of the policy's score, caught and "
                   "alerts the records' decisions, healthy%% the replay's "
                   "open episodes\n",
                   res->maint_model_auc, res->maint_model_ap);
            rs_mev_report_print(m, stdout);
            if (m->failures < 30)
                printf("  (a short run: %llu failures; `riskstream eval "
                       "--maintenance` on a longer stream measures the "
                       "policy: docs/maintenance.md)\n",
                       (unsigned long long)m->failures);
        }
        rs_demo_print_retention(res, &app);
        if (res->example_id[0])
            rs_demo_print_lookup(res->example_id, res->example_json, &app);
    }
    rs_mev_report_destroy(res->maint);
    free(res);
    rs_app_conf_destroy(&app);
    return rc;
}
