/* cmd_train.c -- `riskstream train`: bootstrap a model offline from a
 * history file, then `serve --model FILE` starts from it (docs/eval.md).
 *
 * The replay is rs_eval's (ops/eval): events in event-time order, each
 * featurised and scored BEFORE its label is known, labels learned only
 * once their available time (event time + --label-delay, or label_time
 * with --labels) has passed in the replay, unlabelled events learned as
 * negatives after model.label_horizon -- exactly what `eval` measures and
 * what `serve` does live.  Here there is one model (the configured kind,
 * or --kind) and no metrics (rs_eval_conf_t.no_metrics); at the end the
 * model is written atomically with rs_model_save.  Labels still in flight
 * at the end (available after the last event time) are NOT learned: the
 * model knows what a service running until the last event would know.
 *
 * This file does the I/O (input, labels, model file); rs_eval_input and
 * rs_eval do none.
 *
 * Exit codes: 0 model written (bad lines are counted and skipped), 1
 * runtime error (unreadable input, no valid event, cannot write the model,
 * interrupted: nothing is written), 2 usage or configuration error. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "replay.h"
#include "ops/eval/eval.h"
#include "ops/gen/gen.h"

int rs_cmd_train(int argc, char **argv);

static const char *const rs_train_cmd = "train";

static void rs_train_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream train --input FILE --out MODEL_FILE [--kind seq|lr]\n"
        "                        [--format jsonl|csv|json-map]\n"
        "                        [--map id=...,entity=...,counterparty=...,time=...,\n"
        "                               amount=...,label=...]\n"
        "                        [--labels FILE.jsonl] [--label-delay DUR]\n"
        "                        [--epochs N] [--window DUR]\n"
        "                        [--config FILE] [--set KEY=VALUE]... [--quiet]\n\n"
        "Bootstrap a model offline from history: replay FILE in event-time\n"
        "order exactly as `riskstream eval` does (each event featurised with\n"
        "the configured feature spec and scored before its label is known;\n"
        "a label learned only once --label-delay after its event has passed\n"
        "in the replay, or at its label_time with --labels; events without a\n"
        "positive label learned as negatives at maturity), then\n"
        "learn what the replay resolved --epochs more times over the last\n"
        "--window (the bootstrap), and save the model atomically to\n"
        "MODEL_FILE.  `riskstream serve --model\n"
        "MODEL_FILE` starts from it: use the same --config/--set for both\n"
        "(serve refuses a model built for other features).  Labels still in\n"
        "flight after the last event are not learned.  See docs/eval.md.\n\n"
        "options:\n"
        "  -i, --input FILE      events: JSON lines, or CSV with a header (.csv)\n"
        "                        ('-' = stdin); need not be time-ordered\n"
        "  -o, --out FILE        model file to write (replaced atomically)\n"
        "      --kind K          seq or lr (default: model.kind, seq)\n"
        "      --format F        jsonl (project Event JSON), csv, or json-map\n"
        "                        (flat foreign JSON through --map); default from\n"
        "                        the extension (.csv), json-map if --map is given\n"
        "  -m, --map SPEC        column mapping for csv/json-map (docs/schema.md);\n"
        "                        the label column gives the positives\n"
        "      --labels FILE     labels as JSON lines (event_id, value,\n"
        "                        label_time_ms); replaces the label column\n"
        "      --label-delay DUR label column: known this long after the event\n"
        "                        (default 3d, the generator's delay)\n"
        "      --epochs N        after the replay, learn what it resolved N more\n"
        "                        times (shuffled) over the trailing --window\n"
        "                        (default 3; 0 = the replay only)\n"
        "      --window DUR      the bootstrap window (default 30d)\n"
        "  -q, --quiet           no progress bar\n"
        "  -c, --config FILE     YAML configuration (features:, model:, seq:)\n"
        "  -s, --set KEY=VALUE   override one config key (repeatable), e.g.\n"
        "                        model.label_horizon=8d, seq.d_model=64\n"
        "  -l, --log-level LVL   debug|info|warn|error\n"
        "  -h, --help            this help\n\n"
        "exit codes: 0 model written (bad lines are counted and skipped),\n"
        "1 runtime error (unreadable input, no valid event, cannot write the\n"
        "model, interrupted: nothing written), 2 usage or configuration error\n");
}

/* Fail before a long replay, not after it: rs_model_save writes
 * out.tmp in out's directory and renames it. */
static int rs_train_out_ok(const char *out) {
    struct stat sb;
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "riskstream %s: --out %s is a directory\n",
                rs_train_cmd, out);
        return 0;
    }
    char dir[4096];
    rs_strlcpy(dir, out, sizeof(dir));
    const char *d = dirname(dir);
    if (access(d, W_OK | X_OK) != 0) {
        fprintf(stderr, "riskstream %s: cannot write the model in %s: %s\n",
                rs_train_cmd, d, strerror(errno));
        return 0;
    }
    return 1;
}

int rs_cmd_train(int argc, char **argv) {
    const char *cmd = rs_train_cmd;
    static const struct option opts[] = {
        {"input", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {"kind", required_argument, NULL, 1003},
        {"format", required_argument, NULL, 1000},
        {"map", required_argument, NULL, 'm'},
        {"labels", required_argument, NULL, 1001},
        {"label-delay", required_argument, NULL, 1002},
        {"epochs", required_argument, NULL, 1004},
        {"window", required_argument, NULL, 1005},
        {"quiet", no_argument, NULL, 'q'},
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *input = NULL, *out = NULL, *kind = NULL, *format = NULL,
               *map_spec = NULL, *labels = NULL;
    int64_t delay_ms = 3 * 86400000LL, window_ms = 30 * 86400000LL;
    int quiet = 0, c, epochs = 3;
    char errstr[512];
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:o:m:qc:s:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': input = optarg; break;
        case 'o': out = optarg; break;
        case 1003:
            if (strcmp(optarg, "seq") && strcmp(optarg, "lr"))
                return rs_cli_usage_error(cmd, "--kind '%s': expected seq or "
                                          "lr", optarg);
            kind = optarg;
            break;
        case 1000: format = optarg; break;
        case 'm': map_spec = optarg; break;
        case 1001: labels = optarg; break;
        case 1002:
            if (rs_duration_parse(optarg, &delay_ms) != 0 || delay_ms < 0)
                return rs_cli_usage_error(cmd, "--label-delay '%s': expected "
                                          "a duration such as 7d, 36h, 90m",
                                          optarg);
            break;
        case 1004: {
            char *e;
            long v = strtol(optarg, &e, 10);
            if (*e || v < 0 || v > 100)
                return rs_cli_usage_error(cmd, "--epochs '%s': expected 0 "
                                          "to 100", optarg);
            epochs = (int)v;
            break;
        }
        case 1005:
            if (rs_duration_parse(optarg, &window_ms) != 0 || window_ms <= 0)
                return rs_cli_usage_error(cmd, "--window '%s': expected a "
                                          "duration such as 30d", optarg);
            break;
        case 'q': quiet = 1; break;
        case 'c': case 's': case 'l':
            if (rs_cli_common_opt(cmd, c, optarg, &co) < 0)
                return RS_EXIT_USAGE;
            break;
        case 'h': rs_train_help(stdout); return RS_EXIT_OK;
        default:
            fprintf(stderr, "(see riskstream train --help)\n");
            return RS_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return rs_cli_usage_error(cmd, "unexpected argument '%s' (see --help)",
                                  argv[optind]);
    if (!input)
        return rs_cli_usage_error(cmd, "--input FILE is required (see "
                                  "--help)");
    if (!out)
        return rs_cli_usage_error(cmd, "--out MODEL_FILE is required (see "
                                  "--help)");
    int fmt_pick = rs_eval_format_pick(format, input, map_spec != NULL);
    if (fmt_pick < 0)
        return rs_cli_usage_error(cmd, "--format '%s': expected jsonl, csv "
                                  "or json-map", format);
    rs_eval_format_t fmt = (rs_eval_format_t)fmt_pick;
    rs_csv_map_t map;
    if (rs_csv_map_parse(&map, map_spec ? map_spec : "", errstr,
                         sizeof(errstr)) != RS_OK)
        return rs_cli_usage_error(cmd, "--map: %s", errstr);

    /* Configuration: the same registry as serve (features:, model:, seq:,
     * and gen: so one YAML file serves every subcommand). */
    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_load(cmd, &app, &gconf, &co);
    if (rc != RS_EXIT_OK) return rc;
    if (kind) app.model.kind = strcmp(kind, "lr") ? RS_MODEL_SEQ : RS_MODEL_LR;
    rs_eval_conf_t ec;
    rs_eval_conf_init(&ec);
    ec.label_delay_ms = delay_ms;
    /* --label-delay declares the delay (unless the config does): the
     * model's horizon and the windows that end at label maturity follow */
    if (!app.model.label_delay) app.model.label_delay = delay_ms;
    rs_app_conf_resolve(&app);
    ec.nmodels = 1;
    ec.kinds[0] = app.model.kind;
    ec.no_metrics = 1;
    ec.features = &app.features;
    ec.model = &app.model;

    rs_replay_t rp;
    rs_replay_init(&rp, cmd, input, labels, NULL);
    rs_eval_t *ev = NULL;
    rc = RS_EXIT_RUNTIME;

    int64_t t_start = rs_clock_mono_us();
    if (!rs_train_out_ok(out)) goto done;
    int rrc = rs_replay_load(&rp, fmt, &map, map_spec != NULL, NULL);
    if (rrc != RS_EXIT_OK) {
        rc = rrc;
        goto done;
    }
    if (rs_replay_check(&rp, 0) != RS_EXIT_OK) goto done;
    const rs_eval_input_stats_t ist = rp.ist;
    const uint64_t nbad = rp.nbad;
    const size_t n = rp.n;
    if (!ist.positives)
        fprintf(stderr, "riskstream %s: warning: no positive label (check "
                "--map label=... or --labels): the model learns negatives "
                "only\n", cmd);
    /* Only events older than the horizon (before the last event) are
     * learned as negatives: on a short history they all come from its
     * beginning, and the model learns "early = genuine". */
    rs_model_conf_t hconf = app.model;
    if (!hconf.label_delay) hconf.label_delay = ec.label_delay_ms;
    const int64_t horizon = rs_learner_horizon_for(&hconf, NULL, NULL);
    {
        rs_event_t e0, e1;
        rs_eval_rec_t r0, r1;
        if (n > 1 && rs_eval_input_get(rp.in, 0, &e0, &r0) == RS_OK &&
            rs_eval_input_get(rp.in, n - 1, &e1, &r1) == RS_OK &&
            e1.event_time_ms > e0.event_time_ms) {
            int64_t span = e1.event_time_ms - e0.event_time_ms;
            if (span - horizon < span / 2) {
                int64_t neg = span > horizon ? span - horizon : 0;
                fprintf(stderr, "riskstream %s: warning: the history spans "
                        "%.1f d and the label horizon is %.1f d: only the "
                        "events of its first %.1f d are learned as negatives "
                        "(train on a longer history)\n",
                        cmd, (double)span / 86400000.0,
                        (double)horizon / 86400000.0,
                        (double)neg / 86400000.0);
            }
        }
    }
    double load_s = (double)(rs_clock_mono_us() - t_start) / 1e6;
    int64_t t_new = rs_clock_mono_us();
    rrc = rs_replay_eval_new(&rp, &ec, "learning log");
    double new_s = (double)(rs_clock_mono_us() - t_new) / 1e6;
    if (rrc != RS_EXIT_OK) {
        rc = rrc;
        goto done;
    }
    ev = rp.ev;
    {
        char d1[32], d2[32];
        rs_duration_fmt(ec.label_delay_ms, d1, sizeof(d1));
        rs_duration_fmt(horizon, d2, sizeof(d2));
        fprintf(stderr, "train: %zu events from %s (%llu bad, %llu out of "
                "order), %llu positives, %d features, model %s, label delay "
                "%s, label horizon %s\n", n, input,
                (unsigned long long)ist.bad,
                (unsigned long long)ist.out_of_order,
                (unsigned long long)ist.positives, rs_eval_dim(ev),
                rs_eval_model_name(ev, 0), labels ? "from --labels" : d1, d2);
    }

    size_t i = rs_replay_run(&rp, quiet, NULL, NULL);
    const uint64_t rejected = rp.rejected;
    double replay_s = rp.replay_s;
    if (rs_cli_stop) {
        fprintf(stderr, "riskstream %s: interrupted after %zu of %zu events: "
                "no model written\n", cmd, i, n);
        goto done;
    }
    /* the bootstrap: what the replay resolved, learned again over the
     * trailing window, before online learning takes over in serve */
    uint64_t replayed = 0;
    if (epochs > 0) {
        int64_t t_ep = rs_clock_mono_us();
        replayed = rs_eval_epochs(ev, epochs, window_ms);
        char w[32];
        rs_duration_fmt(window_ms, w, sizeof(w));
        fprintf(stderr, "train: %d more epochs over the last %s: %llu "
                "learning steps in %.1f s\n", epochs, w,
                (unsigned long long)replayed,
                (double)(rs_clock_mono_us() - t_ep) / 1e6);
    }
    rs_eval_stats_t st;
    rs_eval_stats(ev, &st);
    if (st.events == 0) {
        fprintf(stderr, "riskstream %s: no event could be replayed: no model "
                "written\n", cmd);
        goto done;
    }
    const rs_model_stats_t *ms = &st.model[0];
    if (!ms->updates)
        fprintf(stderr, "riskstream %s: warning: the model made no update "
                "(no label became available and no event reached "
                "model.label_horizon): it is the untrained model\n", cmd);
    rs_model_t *m = rs_eval_model(ev, 0);
    /* The replay scores with published snapshots (as serve does); the file
     * and the version printed are of the model's own, latest state. */
    rs_model_weights_use(m, NULL);
    /* Fewer updates than model.publish_every leave version number 0, the
     * name of an untrained model of this configuration: a trained model
     * gets a number of its own (serve's trainer numbers on from it). */
    if (ms->updates && rs_model_version_number(m) == 0)
        rs_model_set_version(m, 1);
    int64_t t_save = rs_clock_mono_us();
    if (rs_model_save(m, out, errstr, sizeof(errstr)) != RS_OK) {
        fprintf(stderr, "riskstream %s: %s\n", cmd, errstr);
        goto done;
    }
    double save_s = (double)(rs_clock_mono_us() - t_save) / 1e6;
    struct stat sb;
    long long size = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
    double total_s = (double)(rs_clock_mono_us() - t_start) / 1e6;
    printf("train: %llu events (%llu refused, %llu bad lines), %llu labels "
           "applied (%llu in flight at the end, not learned); %s: %llu "
           "updates (%llu positives, %llu negatives of which %llu at "
           "maturity); version %s; %.1f s (read+index "
           "%.1f s, model setup %.1f s, replay %.1f s = %.0f events/s, save "
           "%.1f s); wrote %s (%lld bytes)\n",
           (unsigned long long)st.events, (unsigned long long)rejected,
           (unsigned long long)nbad,
           (unsigned long long)st.labels_applied,
           (unsigned long long)st.labels_pending, rs_eval_model_name(ev, 0),
           (unsigned long long)ms->updates, (unsigned long long)ms->positives,
           (unsigned long long)ms->negatives,
           (unsigned long long)ms->horizon_negatives,
           rs_model_version(m), total_s,
           load_s, new_s,
           replay_s,
           replay_s > 0 ? (double)st.events / replay_s : 0.0, save_s, out,
           size);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "riskstream %s: write error on stdout\n", cmd);
        goto done;
    }
    rs_cli_learning_summary(stdout, rs_eval_model_name(ev, 0), ms,
                            &st.learner[0], ist.positives, st.labels_pending);
    rc = RS_EXIT_OK;
done:
    rs_replay_fini(&rp);
    rs_app_conf_destroy(&app);
    return rc;
}
