/* cmd_eval.c -- `riskstream eval`: prequential (test-then-train) replay of
 * an events file through the feature engine and the models, with a
 * per-day / overall / per-pattern report (ops/eval, docs/eval.md).
 *
 * This file does the I/O: it reads the input, labels and truth files into
 * memory, hands them to rs_eval_input (no I/O), drives rs_eval_push in
 * time order, draws the progress bar, and writes --scores-out and --plot.
 *
 * Exit codes: 0 done (bad lines are counted and skipped), 1 runtime error
 * (unreadable input, write error, no valid event, interrupted), 2 usage or
 * configuration error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "replay.h"
#include "ops/eval/eval.h"
#include "ops/eval/gbt.h"
#include "model/maint.h"
#include "ops/gen/gen.h"
#include "scoring/scoring.h"

int rs_cmd_eval(int argc, char **argv);

static const char *const rs_eval_cmd = "eval";

static void rs_eval_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream eval --input FILE [--format jsonl|csv|json-map]\n"
        "                       [--map id=...,entity=...,counterparty=...,time=...,\n"
        "                              amount=...,label=...]\n"
        "                       [--labels FILE.jsonl] [--label-delay DUR]\n"
        "                       [--models seq,lr,gbt] [--top-k N] [--truth FILE.csv]\n"
        "                       [--gbt-window DUR] [--gbt-rounds N] [--gbt-balance]\n"
        "                       [--scores-out FILE.csv] [--plot FILE.svg] [--warmup DUR|auto]\n"
        "                       [--config FILE] [--set KEY=VALUE]... [--quiet]\n\n"
        "Replay a stream in event-time order, test-then-train (prequential):\n"
        "each event is featurised and scored by every model BEFORE its label\n"
        "is known; the label becomes available --label-delay after the event\n"
        "time (or at its label_time with --labels) and is then learned; events\n"
        "without a positive label are learned as negatives after\n"
        "model.label_horizon, as in `serve`.  All models see the SAME features.\n"
        "Beside seq and lr, gbt is a boosted-trees reference (libxgboost)\n"
        "retrained every day of event time on the --gbt-window (7d) of events\n"
        "that ended --label-delay before the day, labelled with the labels\n"
        "known by then.  Reports per UTC day and overall, side by side per\n"
        "model: ROC AUC, average precision, precision at the top-k entities\n"
        "per day (ranked by their max score that day) and the alert rate (as\n"
        "serve decides: service.alert_threshold for service.alert_types,\n"
        "service.review_threshold otherwise); then card precision@k per test\n"
        "week with the cards already known compromised removed; with --truth\n"
        "also AP/AUC per fraud pattern.  features.label_maturity 0 is resolved\n"
        "to --label-delay.  See docs/eval.md.\n\n"
        "options:\n"
        "  -i, --input FILE      events: JSON lines, or CSV with a header (.csv)\n"
        "                        ('-' = stdin); need not be time-ordered\n"
        "      --format F        jsonl (project Event JSON), csv, or json-map\n"
        "                        (flat foreign JSON through --map); default from\n"
        "                        the extension (.csv), json-map if --map is given\n"
        "  -m, --map SPEC        column mapping for csv/json-map (docs/schema.md),\n"
        "                        or rtf:period=DUR,sensors=2;3;7-9,... for\n"
        "                        whitespace run-to-failure rows \"unit cycle\n"
        "                        settings sensors\" (a failure at each unit's\n"
        "                        last cycle; docs/maintenance.md);\n"
        "                        time as epoch s, epoch ms or YYYY-MM-DD HH:MM:SS;\n"
        "                        the label column is the ground truth\n"
        "      --labels FILE     labels as JSON lines (event_id, value,\n"
        "                        label_time_ms); replaces the label column\n"
        "      --label-delay DUR label column: known this long after the event\n"
        "                        (default 3d, the generator's delay)\n"
        "      --models LIST     models to compare (default seq,lr,gbt; gbt\n"
        "                        only when built with libxgboost)\n"
        "      --gbt-window DUR  gbt's trailing training window (default 7d)\n"
        "      --gbt-rounds N    gbt's boosting rounds (default 200)\n"
        "      --gbt-balance     gbt: scale_pos_weight = negatives/positives\n"
        "  -k, --top-k N         entities per day for precision@k (default 100)\n"
        "      --truth FILE      generator truth CSV (event_id,...,pattern):\n"
        "                        per-pattern AP/AUC\n"
        "      --scores-out FILE every event's scores as CSV: event_id,entity_id,\n"
        "                        event_time_ms,score_<model>...,label (%%.9g);\n"
        "                        --maintenance adds score_own_<model>... (the\n"
        "                        models' own, before the cold-start blend) and\n"
        "                        score_ref before label\n"
        "      --plot FILE.svg   SVG chart of daily AUC, AP (with the base\n"
        "                        rate) and alerts per model\n"
        "      --warmup DUR|auto replay (and learn from) the first DUR of event\n"
        "                        time but leave it out of the metrics; auto (the\n"
        "                        default) = the label horizon: until then no\n"
        "                        model can have learned both classes\n"
        "      --no-daily        print the overall tables only\n"
        "      --maintenance     the labels are machine failures (the last\n"
        "                        positive of each run of a machine's positives;\n"
        "                        maintenance.enabled): failure-horizon labels\n"
        "                        (maintenance.horizon) through the learning log,\n"
        "                        the alert policy per machine, and the\n"
        "                        maintenance table (lead time, false alerts per\n"
        "                        healthy machine-day, a drifting-sensor\n"
        "                        reference); --plot draws score against time\n"
        "                        to failure; with --set maintenance.rul=true\n"
        "                        also the remaining-useful-life RMSE.\n"
        "                        docs/maintenance.md\n"
        "  -q, --quiet           no progress bar\n"
        "  -c, --config FILE     YAML configuration (features:, model:, seq:,\n"
        "                        service.review_threshold)\n"
        "  -s, --set KEY=VALUE   override one config key (repeatable)\n"
        "  -l, --log-level LVL   debug|info|warn|error\n"
        "  -h, --help            this help\n\n"
        "exit codes: 0 ok (bad lines are counted and skipped), 1 runtime error\n"
        "(unreadable input, write error, no valid event, interrupted),\n"
        "2 usage or configuration error\n");
}

/* CSV cell: quoted when it holds a comma, quote or line break. */
static void rs_eval_cell(FILE *fp, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"') fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

/* --scores-out: one row per replayed event (rs_replay_row_fn). */
typedef struct rs_eval_rows_s {
    FILE *so;
    int nm;
    const rs_eval_t *ev;   /* maintenance: own scores and the reference */
} rs_eval_rows_t;

static void rs_eval_row(void *opaque, const rs_event_t *e,
                        const rs_eval_rec_t *rec, const float *sc) {
    const rs_eval_rows_t *rw = opaque;
    FILE *so = rw->so;
    rs_eval_cell(so, e->id);
    fputc(',', so);
    rs_eval_cell(so, e->entity_id);
    fprintf(so, ",%lld", (long long)e->event_time_ms);
    for (int k = 0; k < rw->nm; k++) fprintf(so, ",%.9g", (double)sc[k]);
    float own[RS_EVAL_MODELS_MAX], ref;
    if (rs_eval_maint_scores(rw->ev, own, &ref)) {
        for (int k = 0; k < rw->nm; k++) fprintf(so, ",%.9g", (double)own[k]);
        fprintf(so, ",%.9g", (double)ref);
    }
    fprintf(so, ",%d\n", rec->label);
}

/* An alert as `serve` decides it (rs_decide): alert_threshold for the
 * types in service.alert_types (sensors), review_threshold otherwise. */
static int rs_eval_alert(void *opaque, const rs_event_t *ev, float score) {
    return rs_decide(opaque, ev->type, score) != RS_DECISION_APPROVE;
}

int rs_cmd_eval(int argc, char **argv) {
    const char *cmd = rs_eval_cmd;
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 1000},
        {"map", required_argument, NULL, 'm'},
        {"labels", required_argument, NULL, 1001},
        {"label-delay", required_argument, NULL, 1002},
        {"models", required_argument, NULL, 1003},
        {"top-k", required_argument, NULL, 'k'},
        {"truth", required_argument, NULL, 1004},
        {"scores-out", required_argument, NULL, 1005},
        {"plot", required_argument, NULL, 1006},
        {"maintenance", no_argument, NULL, 1012},
        {"no-daily", no_argument, NULL, 1007},
        {"warmup", required_argument, NULL, 1008},
        {"gbt-window", required_argument, NULL, 1009},
        {"gbt-rounds", required_argument, NULL, 1010},
        {"gbt-balance", no_argument, NULL, 1011},
        {"quiet", no_argument, NULL, 'q'},
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *input = NULL, *format = NULL, *map_spec = NULL,
               *labels = NULL, *truth = NULL, *scores_out = NULL,
               *plot = NULL,
               *models = rs_gbt_available() ? "seq,lr,gbt" : "seq,lr";
    int64_t delay_ms = 3 * 86400000LL, top_k = 100, warmup_ms = -1,
            gbt_window = 7 * 86400000LL, gbt_rounds = 200;
    int quiet = 0, daily = 1, c, gbt_balance = 0, delay_given = 0, maint = 0;
    char errstr[512];
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:m:k:qc:s:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 1000: format = optarg; break;
        case 'm': map_spec = optarg; break;
        case 1001: labels = optarg; break;
        case 1002:
            if (rs_duration_parse(optarg, &delay_ms) != 0 || delay_ms < 0)
                return rs_cli_usage_error(cmd, "--label-delay '%s': expected "
                                          "a duration such as 7d, 36h, 90m",
                                          optarg);
            delay_given = 1;
            break;
        case 1003: models = optarg; break;
        case 'k': {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v < 1)
                return rs_cli_usage_error(cmd, "--top-k '%s': expected an "
                                          "integer >= 1", optarg);
            top_k = v;
            break;
        }
        case 1004: truth = optarg; break;
        case 1005: scores_out = optarg; break;
        case 1006: plot = optarg; break;
        case 1007: daily = 0; break;
        case 1008:
            if (!strcmp(optarg, "auto"))
                warmup_ms = -1;
            else if (rs_duration_parse(optarg, &warmup_ms) != 0 ||
                     warmup_ms < 0)
                return rs_cli_usage_error(cmd, "--warmup '%s': expected a "
                                          "duration such as 7d", optarg);
            break;
        case 1009:
            if (rs_duration_parse(optarg, &gbt_window) != 0 ||
                gbt_window < 86400000LL)
                return rs_cli_usage_error(cmd, "--gbt-window '%s': expected a "
                                          "duration of at least 1d", optarg);
            break;
        case 1010: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 100000)
                return rs_cli_usage_error(cmd, "--gbt-rounds '%s': expected an "
                                          "integer in [1, 100000]", optarg);
            gbt_rounds = v;
            break;
        }
        case 1011: gbt_balance = 1; break;
        case 1012: maint = 1; break;
        case 'q': quiet = 1; break;
        case 'c': case 's': case 'l':
            if (rs_cli_common_opt(cmd, c, optarg, &co) < 0)
                return RS_EXIT_USAGE;
            break;
        case 'h': rs_eval_help(stdout); return RS_EXIT_OK;
        default:
            fprintf(stderr, "(see riskstream eval --help)\n");
            return RS_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return rs_cli_usage_error(cmd, "unexpected argument '%s' (see --help)",
                                  argv[optind]);
    if (!input)
        return rs_cli_usage_error(cmd, "--input FILE is required (see "
                                  "--help)");
    int fmt_pick = rs_rtf_spec(map_spec) ? RS_EVAL_FMT_RTF
                   : rs_eval_format_pick(format, input, map_spec != NULL);
    if (fmt_pick < 0)
        return rs_cli_usage_error(cmd, "--format '%s': expected jsonl, csv, "
                                  "json-map or rtf", format);
    rs_eval_format_t fmt = (rs_eval_format_t)fmt_pick;
    rs_csv_map_t map;
    rs_rtf_conf_t rtf;
    if (fmt == RS_EVAL_FMT_RTF) {
        if (rs_rtf_conf_parse(&rtf, map_spec, errstr, sizeof(errstr)) != RS_OK)
            return rs_cli_usage_error(cmd, "%s", errstr);
        rs_csv_map_parse(&map, "", NULL, 0);
    } else if (rs_csv_map_parse(&map, map_spec ? map_spec : "", errstr,
                                sizeof(errstr)) != RS_OK) {
        return rs_cli_usage_error(cmd, "--map: %s", errstr);
    }
    rs_eval_conf_t ec;
    rs_eval_conf_init(&ec);
    if (rs_eval_conf_models(&ec, models, errstr, sizeof(errstr)) != RS_OK)
        return rs_cli_usage_error(cmd, "--%s", errstr);
    ec.label_delay_ms = delay_ms;
    ec.top_k = top_k;
    ec.warmup_ms = warmup_ms;
    ec.gbt_window_ms = gbt_window;
    ec.gbt_rounds = (int)gbt_rounds;
    ec.gbt_balance = gbt_balance;

    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_load(cmd, &app, &gconf, &co);
    if (rc != RS_EXIT_OK) return rc;
    ec.threshold = app.service.review_threshold;
    ec.alert = rs_eval_alert;
    ec.alert_opaque = &app.service;
    /* --label-delay declares the delay (unless the config does): the
     * models' horizon and the windows that end at label maturity follow */
    if (maint) app.maint.enabled = 1;
    /* maintenance: a failure is known when it happens unless --label-delay
     * says otherwise (the generator's 3d delay is the cards') */
    if (app.maint.enabled && !delay_given) {
        delay_ms = 0;
        ec.label_delay_ms = 0;
    }
    if (!app.model.label_delay) app.model.label_delay = delay_ms;
    rs_app_conf_resolve(&app);
    if (warmup_ms < 0) /* auto: the horizon the models start with */
        ec.warmup_ms = rs_learner_horizon_for(&app.model, NULL, NULL);
    if (warmup_ms < 0 && app.maint.enabled &&
        app.model.label_horizon == RS_MODEL_HORIZON_AUTO)
        /* failures: the maturity horizon of rs_learner_set_failure_horizon */
        ec.warmup_ms = (int64_t)(1.25 * (double)(app.maint.horizon +
                                                  app.model.label_delay));
    ec.features = &app.features;
    ec.model = &app.model;
    if (app.maint.enabled) ec.maint = &app.maint;

    rs_replay_t rp;
    rs_replay_init(&rp, cmd, input, labels, truth);
    rs_eval_t *ev = NULL;
    rs_eval_report_t *rep = NULL;
    rs_mev_report_t *mrep = NULL;
    FILE *so = NULL;
    rc = RS_EXIT_RUNTIME;

    int64_t t_start = rs_clock_mono_us();
    int rrc = rs_replay_load(&rp, fmt, &map, map_spec != NULL,
                             fmt == RS_EVAL_FMT_RTF ? &rtf : NULL);
    if (rrc != RS_EXIT_OK) {
        rc = rrc;
        goto done;
    }
    uint64_t nfail = 0;
    if (ec.maint) nfail = rs_eval_input_maintenance(rp.in, ec.maint->horizon);
    if (rp.tbuf && rs_eval_input_join_truth(rp.in, rp.tbuf, rp.tlen, errstr,
                                            sizeof(errstr)) != RS_OK) {
        fprintf(stderr, "riskstream %s: %s:%s\n", cmd, truth, errstr);
        goto done;
    }
    if (rs_replay_check(&rp, 1) != RS_EXIT_OK) goto done;
    const rs_eval_input_stats_t ist = rp.ist;
    const uint64_t nbad = rp.nbad;
    const size_t n = rp.n;
    if (!ist.positives)
        fprintf(stderr, "riskstream %s: warning: no positive label (check "
                "--map label=... or --labels); AUC/AP will be '-'\n", cmd);
    if (ec.maint && !nfail)
        fprintf(stderr, "riskstream %s: warning: maintenance mode, but no "
                "failure in the labels (a failure is the last positive of "
                "each run of positives of a machine)\n", cmd);
    double load_s = (double)(rs_clock_mono_us() - t_start) / 1e6;
    int64_t t_new = rs_clock_mono_us();
    rrc = rs_replay_eval_new(&rp, &ec, "learning logs");
    if (rrc != RS_EXIT_OK) {
        rc = rrc;
        goto done;
    }
    ev = rp.ev;
    int nm = rs_eval_nmodels(ev);
    double new_s = (double)(rs_clock_mono_us() - t_new) / 1e6;
    if (scores_out) {
        so = strcmp(scores_out, "-") ? fopen(scores_out, "w") : stdout;
        if (!so) {
            fprintf(stderr, "riskstream %s: cannot create %s: %s\n", cmd,
                    scores_out, strerror(errno));
            goto done;
        }
        static char sobuf[1 << 20];
        setvbuf(so, sobuf, _IOFBF, sizeof(sobuf));
        fputs("event_id,entity_id,event_time_ms", so);
        for (int k = 0; k < nm; k++)
            fprintf(so, ",score_%s", rs_eval_model_name(ev, k));
        if (rs_eval_maint(ev)) { /* maintenance: before the blend, ref */
            for (int k = 0; k < nm; k++)
                fprintf(so, ",score_own_%s", rs_eval_model_name(ev, k));
            fputs(",score_ref", so);
        }
        fputs(",label\n", so);
    }
    fprintf(stderr, "eval: %zu events from %s (%llu bad, %llu out of "
            "order), %llu positives, %d features, models",
            n, input, (unsigned long long)ist.bad,
            (unsigned long long)ist.out_of_order,
            (unsigned long long)ist.positives, rs_eval_dim(ev));
    for (int k = 0; k < nm; k++)
        fprintf(stderr, "%s%s", k ? "," : " ", rs_eval_model_name(ev, k));
    fputc('\n', stderr);

    rs_eval_rows_t rows = {so, nm, ev};
    size_t i = rs_replay_run(&rp, quiet, so ? rs_eval_row : NULL, &rows);
    const uint64_t rejected = rp.rejected;
    double replay_s = rp.replay_s;
    if (so && (fflush(so) || ferror(so))) {
        fprintf(stderr, "riskstream %s: write error on %s: %s\n", cmd,
                scores_out, strerror(errno));
        goto done;
    }
    int64_t t_rep = rs_clock_mono_us();
    rep = rs_eval_report(ev);
    if (rep) {
        char rule[400];
        snprintf(rule, sizeof(rule), "as serve decides (score >= %g, or >= %g "
                 "for types %s)", app.service.review_threshold,
                 app.service.alert_threshold, app.service.alert_types);
        rs_strlcpy(rep->alert_rule, rule, sizeof(rep->alert_rule));
    }
    double rep_s = (double)(rs_clock_mono_us() - t_rep) / 1e6;
    if (!rep) {
        fprintf(stderr, "riskstream %s: no event could be scored\n", cmd);
        goto done;
    }
    rs_eval_report_print(rep, daily, stdout);
    mrep = rs_eval_maint_report(ev);
    if (mrep) rs_mev_report_print(mrep, stdout);
    rs_cli_warn_constant(cmd, rs_eval_features(ev));
    rs_eval_stats_t st;
    rs_eval_stats(ev, &st);
    printf("\nlearning: %llu labels applied, %llu still in flight at the end",
           (unsigned long long)st.labels_applied,
           (unsigned long long)st.labels_pending);
    if (st.warmup)
        printf(", %llu warm-up events learned but not measured",
               (unsigned long long)st.warmup);
    if (rejected) printf(", %llu events refused", (unsigned long long)rejected);
    printf("\n");
    for (int k = 0; k < nm; k++) {
        const rs_model_stats_t *ms = &st.model[k];
        if (!strcmp(rs_eval_model_name(ev, k), "gbt")) {
            printf("  %-4s learned %llu positives, %llu negatives in %llu daily "
                   "trainings (last: %llu positives, %llu negatives; %.1f s "
                   "training)\n", "gbt", (unsigned long long)ms->positives,
                   (unsigned long long)ms->negatives,
                   (unsigned long long)ms->updates,
                   (unsigned long long)st.gbt_last_positives,
                   (unsigned long long)st.gbt_last_negatives, st.gbt_train_s);
            continue;
        }
        rs_cli_learning_summary(stdout, rs_eval_model_name(ev, k), ms,
                                &st.learner[k], ist.positives,
                                st.labels_pending);
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "riskstream %s: write error on stdout\n", cmd);
        goto done;
    }
    if (plot) {
        char title[320], dd[32];
        rs_duration_fmt(delay_ms, dd, sizeof(dd));
        if (labels)
            snprintf(title, sizeof(title), "riskstream eval: %s (labels at "
                     "their times from %s, prequential)", input, labels);
        else
            snprintf(title, sizeof(title), "riskstream eval: %s (label delay "
                     "%s%s, prequential)", input, dd,
                     delay_given ? "" : " by default");
        char *svg = rs_eval_maint(ev)
                        ? rs_mev_plot_svg(rs_eval_maint(ev), 6, title)
                        : rs_eval_plot_svg(rep, title);
        FILE *pf = svg ? fopen(plot, "w") : NULL;
        if (!pf || fputs(svg, pf) == EOF || fclose(pf)) {
            fprintf(stderr, "riskstream %s: cannot write %s: %s\n", cmd, plot,
                    strerror(errno));
            free(svg);
            goto done;
        }
        free(svg);
    }
    double total_s = (double)(rs_clock_mono_us() - t_start) / 1e6;
    fprintf(stderr, "eval: %zu events in %.1f s (read+index %.1f s, model "
            "setup %.1f s, replay %.1f s = %.0f events/s, metrics %.1f s); "
            "%llu bad lines skipped;", i, total_s, load_s, new_s, replay_s,
            replay_s > 0 ? (double)i / replay_s : 0.0, rep_s,
            (unsigned long long)(nbad + rejected));
    for (int k = 0; k < nm; k++) {
        char a[16] = "-", p[16] = "-";
        if (!isnan(rep->overall.m[k].auc))
            snprintf(a, sizeof(a), "%.4f", rep->overall.m[k].auc);
        if (!isnan(rep->overall.m[k].ap))
            snprintf(p, sizeof(p), "%.4f", rep->overall.m[k].ap);
        fprintf(stderr, " %s AUC %s AP %s;", rep->model[k], a, p);
    }
    for (int k = 0; mrep && k < mrep->ncols; k++)
        fprintf(stderr, " %s caught %llu/%llu (>=H/3 %llu), false/m-d %.3f, "
                "healthy in alert %.2f%%;", mrep->col[k].name,
                (unsigned long long)mrep->col[k].caught,
                (unsigned long long)mrep->failures,
                (unsigned long long)mrep->col[k].caught_third,
                mrep->col[k].false_per_day,
                100 * mrep->col[k].healthy_open_share);
    rs_mev_report_destroy(mrep);
    mrep = NULL;
    fputc('\n', stderr);
    if (rs_cli_stop) {
        fprintf(stderr, "riskstream %s: interrupted after %zu of %zu events "
                "(report covers those)\n", cmd, i, n);
        goto done;
    }
    rc = RS_EXIT_OK;
done:
    if (so && so != stdout && fclose(so) && rc == RS_EXIT_OK) {
        fprintf(stderr, "riskstream %s: write error on %s\n", cmd, scores_out);
        rc = RS_EXIT_RUNTIME;
    }
    rs_eval_report_destroy(rep);
    rs_mev_report_destroy(mrep);
    rs_replay_fini(&rp);
    rs_app_conf_destroy(&app);
    return rc;
}
