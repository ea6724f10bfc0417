/* cmd_features.c -- `riskstream features`: print the feature layout of a
 * configuration (--explain), or export the feature vector of every event
 * of a file through the offline path (rs_features_replay: the very calls
 * the service makes online), one CSV row per event.
 *
 * Exit codes: 0 done, 1 runtime error (unreadable input, write error, no
 * valid event), 2 usage or configuration error. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ops/gen/gen.h"

static void rs_features_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream features --explain CONFIG [--label-delay DUR]\n"
        "       riskstream features --config CONFIG --input FILE [--map SPEC]\n"
        "                           [--labels FILE | --label-delay DUR]\n"
        "                           [--maintenance]\n"
        "                           --output FILE.csv\n\n"
        "--explain prints the feature vector layout of a configuration: index,\n"
        "name and meaning (the `features:` section; docs/features.md).\n\n"
        "Otherwise every event of --input goes through the same feature code\n"
        "as `serve` and its vector is written as one CSV row: event_id, then\n"
        "one column per feature (header = feature names).  Labels come from\n"
        "--labels (JSON lines, in label-time order), or else from the label\n"
        "column of a CSV / json-map input (`label=` in --map; 'label' by\n"
        "default), each visible --label-delay after its event -- the same\n"
        "rule as `riskstream eval` -- and are interleaved by time, so\n"
        "label-aware features see exactly what they would online.\n"
        "features.label_maturity 0 (the default) is resolved to the label\n"
        "delay.  With --maintenance (or maintenance.enabled) the labels are\n"
        "machine reports, applied as serve and eval apply them: a failure\n"
        "or a repair starts a new life for the machine's baselines, never a\n"
        "label-aware feature (docs/maintenance.md).\n\n"
        "options:\n"
        "      --explain CONFIG  print the layout and exit ('-' = defaults)\n"
        "  -c, --config FILE     YAML configuration\n"
        "  -s, --set KEY=VALUE   override one config key (repeatable)\n"
        "  -i, --input FILE      events: JSON lines (.jsonl/.json), or CSV\n"
        "                        (.csv, or --format csv) with a header\n"
        "      --format F        json | csv | json-map (foreign JSON lines)\n"
        "  -m, --map SPEC        column mapping for csv/json-map, e.g.\n"
        "                        id=tx_id,entity=card,counterparty=merchant,\n"
        "                        time=ts,amount=amt (see docs/schema.md)\n"
        "      --labels FILE     labels as JSON lines, sorted by label_time_ms\n"
        "                        (replaces the label column)\n"
        "      --label-delay DUR label column: visible this long after the\n"
        "                        event (default 3d, as eval); also resolves\n"
        "                        features.label_maturity 0\n"
        "      --no-column-labels ignore the label column\n"
        "      --maintenance     labels are machine failures and repairs\n"
        "                        (sets maintenance.enabled): a labels file's\n"
        "                        value 1 = failure, value 0 with event_id =\n"
        "                        entity_id = repair, other value 0 ignored;\n"
        "                        in a label column the last positive of\n"
        "                        each run is a failure (as eval); the label\n"
        "                        delay defaults to 0\n"
        "  -o, --output FILE     CSV to write ('-' = stdout)\n"
        "  -q, --quiet           no progress bar\n"
        "  -h, --help            this help\n\n"
        "exit codes: 0 ok, 1 runtime error, 2 usage or configuration error\n");
}

typedef struct rs_fx_s {
    FILE *out;
    int dim;
    uint64_t total_bytes;   /* input size, 0 if unknown */
    int bar;                /* draw the progress bar */
    int64_t t0_us, last_us;
    uint64_t rows;
    int werr;
} rs_fx_t;

/* CSV cell: quoted when it holds a comma, quote or line break. */
static void rs_fx_cell(FILE *fp, const char *s) {
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

/* ",value": integers (most counts) without printf; others as %.9g, which
 * reads back as the same float. */
static void rs_fx_num(FILE *fp, float v) {
    char buf[40];
    int n;
    if (v == (float)(int32_t)v && v > -1e7f && v < 1e7f && !(v == 0 && signbit(v))) {
        int32_t k = (int32_t)v;
        char tmp[16];
        int m = 0, neg = k < 0;
        uint32_t u = neg ? (uint32_t)-k : (uint32_t)k;
        do { tmp[m++] = (char)('0' + u % 10); u /= 10; } while (u);
        n = 0;
        buf[n++] = ',';
        if (neg) buf[n++] = '-';
        while (m) buf[n++] = tmp[--m];
    } else {
        n = snprintf(buf, sizeof(buf), ",%.9g", (double)v);
    }
    fwrite(buf, 1, (size_t)n, fp);
}

static int rs_fx_row(void *opaque, const rs_event_t *ev, const float *x,
                     uint32_t flags) {
    rs_fx_t *fx = opaque;
    RS_UNUSED(flags);
    rs_fx_cell(fx->out, ev->id);
    for (int i = 0; i < fx->dim; i++) rs_fx_num(fx->out, x[i]);
    if (fputc('\n', fx->out) == EOF) {
        fx->werr = 1;
        return 1;
    }
    fx->rows++;
    return rs_cli_stop ? 1 : 0;
}

static void rs_fx_progress(void *opaque, uint64_t bytes) {
    rs_fx_t *fx = opaque;
    if (!fx->bar) return;
    int64_t now = rs_clock_mono_us();
    if (now - fx->last_us < 200000 && bytes < fx->total_bytes) return;
    fx->last_us = now;
    double frac = fx->total_bytes ? (double)bytes / (double)fx->total_bytes : 0;
    if (frac > 1) frac = 1;
    int w = 30, fill = (int)(frac * w);
    double s = (double)(now - fx->t0_us) / 1e6;
    fprintf(stderr, "\r[%.*s%.*s] %3.0f%%  %llu events  %.0f events/s ", fill,
            "##############################", w - fill,
            "..............................", frac * 100,
            (unsigned long long)fx->rows, s > 0 ? (double)fx->rows / s : 0.0);
    fflush(stderr);
}

static int rs_fx_explain(rs_features_t *f, FILE *fp) {
    fprintf(fp, "%-5s %-36s %s\n", "index", "name", "meaning");
    for (int i = 0; i < rs_features_dim(f); i++)
        fprintf(fp, "%-5d %-36s %s\n", i, rs_features_name(f, i),
                rs_features_desc(f, i));
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    fprintf(fp, "\n%d features; %llu bytes per entity key; %.1f MB "
            "preallocated\n", rs_features_dim(f),
            (unsigned long long)st.entity_slot_bytes, st.mem_bytes / 1e6);
    return ferror(fp) ? RS_EXIT_RUNTIME : RS_EXIT_OK;
}

/* Registered in main.c as {"features", rs_cmd_features, ...}. */
int rs_cmd_features(int argc, char **argv) {
    static const char *cmd = "features";
    static const struct option opts[] = {
        {"explain", required_argument, NULL, 1000},
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"input", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 1001},
        {"map", required_argument, NULL, 'm'},
        {"labels", required_argument, NULL, 1002},
        {"output", required_argument, NULL, 'o'},
        {"label-delay", required_argument, NULL, 1003},
        {"no-column-labels", no_argument, NULL, 1004},
        {"maintenance", no_argument, NULL, 1005},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *explain = NULL, *input = NULL, *format = NULL, *map_spec = NULL;
    const char *labels = NULL, *output = NULL;
    int quiet = 0, c, col_labels = 1, maint = 0, delay_given = 0;
    int64_t delay_ms = 3 * 86400000LL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:i:m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 1000: explain = optarg; break;
        case 'c': co.config_path = optarg; break;
        case 's':
            if (co.nsets == (int)RS_ARRAY_LEN(co.sets))
                return rs_cli_usage_error(cmd, "too many --set");
            co.sets[co.nsets++] = optarg;
            break;
        case 'i': input = optarg; break;
        case 1001: format = optarg; break;
        case 'm': map_spec = optarg; break;
        case 1002: labels = optarg; break;
        case 'o': output = optarg; break;
        case 1003:
            if (rs_duration_parse(optarg, &delay_ms) != 0 || delay_ms < 0)
                return rs_cli_usage_error(cmd, "--label-delay '%s': expected "
                                          "a duration such as 7d, 36h, 90m",
                                          optarg);
            delay_given = 1;
            break;
        case 1004: col_labels = 0; break;
        case 1005: maint = 1; break;
        case 'q': quiet = 1; break;
        case 'h': rs_features_help(stdout); return RS_EXIT_OK;
        default: rs_features_help(stderr); return RS_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return rs_cli_usage_error(cmd, "unexpected argument '%s' (see --help)",
                                  argv[optind]);
    if (explain) {
        if (input || output || labels)
            return rs_cli_usage_error(cmd, "--explain takes no --input, "
                                      "--output or --labels");
        if (co.config_path && strcmp(co.config_path, explain))
            return rs_cli_usage_error(cmd, "--explain CONFIG and --config "
                                      "name different files");
        co.config_path = strcmp(explain, "-") ? explain : NULL;
    } else if (!input || !output) {
        return rs_cli_usage_error(cmd, "need --explain CONFIG, or --input and "
                                  "--output (see --help)");
    }

    int fmt = 0;
    if (rs_rtf_spec(map_spec)) {
        fmt = 3;
    } else if (format) {
        if (!strcmp(format, "json")) fmt = 0;
        else if (!strcmp(format, "csv")) fmt = 1;
        else if (!strcmp(format, "json-map")) fmt = 2;
        else if (!strcmp(format, "rtf")) fmt = 3;
        else return rs_cli_usage_error(cmd, "--format '%s': expected json, csv, "
                                       "json-map or rtf", format);
    } else if (input) {
        size_t n = strlen(input);
        fmt = n >= 4 && !strcmp(input + n - 4, ".csv") ? 1 : map_spec ? 2 : 0;
    }
    char errstr[512];
    rs_csv_map_t map;
    rs_rtf_conf_t rtf;
    if (fmt == 3) {
        if (rs_rtf_conf_parse(&rtf, map_spec, errstr, sizeof(errstr)) != RS_OK)
            return rs_cli_usage_error(cmd, "%s", errstr);
        rs_csv_map_parse(&map, "", NULL, 0);
    } else if (rs_csv_map_parse(&map, map_spec ? map_spec : "", errstr,
                                sizeof(errstr)) != RS_OK) {
        return rs_cli_usage_error(cmd, "--map: %s", errstr);
    }

    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_load(cmd, &app, &gconf, &co);
    if (rc != RS_EXIT_OK) return rc;
    if (maint) app.maint.enabled = 1;
    /* maintenance: a failure is known when it happens unless --label-delay
     * says otherwise (as eval) */
    if (app.maint.enabled && !delay_given) delay_ms = 0;
    /* --label-delay declares the delay (unless the config does): the
     * models' horizon and the windows that end at label maturity follow */
    if (!app.model.label_delay) app.model.label_delay = delay_ms;
    rs_app_conf_resolve(&app);
    rs_features_t *f = rs_features_new(&app.features, errstr, sizeof(errstr));
    if (!f) {
        rs_app_conf_destroy(&app);
        return rs_cli_usage_error(cmd, "%s", errstr);
    }
    if (explain) {
        rc = rs_fx_explain(f, stdout);
        rs_features_destroy(f);
        rs_app_conf_destroy(&app);
        return rc;
    }

    FILE *in = NULL, *lf = NULL, *out = NULL;
    rc = RS_EXIT_RUNTIME;
    in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    if (!in) {
        fprintf(stderr, "riskstream %s: cannot open %s: %s\n", cmd, input,
                strerror(errno));
        goto done;
    }
    if (labels && !(lf = fopen(labels, "r"))) {
        fprintf(stderr, "riskstream %s: cannot open %s: %s\n", cmd, labels,
                strerror(errno));
        goto done;
    }
    /* Unique event ids: a bounded check on a prefix of a regular file
     * (stdin cannot be read twice), then back to its start. */
    struct stat isb;
    if (fmt != 3 && in != stdin && !fstat(fileno(in), &isb) &&
        S_ISREG(isb.st_mode)) {
        size_t cap = (size_t)RS_MIN((int64_t)isb.st_size, 64ll << 20), n;
        char *pre = rs_malloc(cap + 1);
        n = fread(pre, 1, cap, in);
        int crc = rs_cli_check_ids(cmd, input, pre, n,
                                   fmt == 1   ? RS_CLI_IN_CSV
                                   : fmt == 2 ? RS_CLI_IN_JSON_MAP
                                              : RS_CLI_IN_JSONL,
                                   &map, map_spec != NULL);
        rs_free(pre);
        if (crc != RS_EXIT_OK) {
            rc = crc;
            goto done;
        }
        if (fseek(in, 0, SEEK_SET) != 0) {
            fprintf(stderr, "riskstream %s: %s: %s\n", cmd, input,
                    strerror(errno));
            goto done;
        }
    }
    out = strcmp(output, "-") ? fopen(output, "w") : stdout;
    if (!out) {
        fprintf(stderr, "riskstream %s: cannot create %s: %s\n", cmd, output,
                strerror(errno));
        goto done;
    }
    static char outbuf[1 << 20];
    setvbuf(out, outbuf, _IOFBF, sizeof(outbuf));
    rs_fx_t fx;
    memset(&fx, 0, sizeof(fx));
    fx.out = out;
    fx.dim = rs_features_dim(f);
    struct stat sb;
    if (in != stdin && !fstat(fileno(in), &sb) && S_ISREG(sb.st_mode))
        fx.total_bytes = (uint64_t)sb.st_size;
    fx.bar = !quiet && isatty(fileno(stderr)) && fx.total_bytes > (8u << 20);
    fx.t0_us = fx.last_us = rs_clock_mono_us();
    fputs("event_id", out);
    for (int i = 0; i < fx.dim; i++) {
        fputc(',', out);
        rs_fx_cell(out, rs_features_name(f, i));
    }
    fputc('\n', out);

    rs_cli_signals();
    rs_features_replay_t rp = {.events = in, .format = fmt, .map = &map,
                               .rtf = fmt == 3 ? &rtf : NULL,
                               .labels = lf, .column_labels = col_labels,
                               .label_delay_ms = delay_ms,
                               .maintenance = app.maint.enabled,
                               .row = rs_fx_row,
                               .progress = rs_fx_progress, .opaque = &fx};
    rs_features_replay_stats_t st;
    rs_err_t err = rs_features_replay(f, &rp, &st, errstr, sizeof(errstr));
    if (fx.bar) fputc('\n', stderr);
    if (fflush(out) || ferror(out)) fx.werr = 1;
    double secs = (double)(rs_clock_mono_us() - fx.t0_us) / 1e6;
    if (err == RS_ERR_INVALID || err == RS_ERR_IO) {
        fprintf(stderr, "riskstream %s: %s\n", cmd, errstr);
    } else if (fx.werr) {
        fprintf(stderr, "riskstream %s: write error on %s: %s\n", cmd, output,
                strerror(errno));
    } else if (err == RS_ERR_AGAIN && rs_cli_stop) {
        fprintf(stderr, "riskstream %s: interrupted\n", cmd);
    } else {
        rc = st.events ? RS_EXIT_OK : RS_EXIT_RUNTIME;
    }
    char dd[32], lsrc[256] = "no labels";
    rs_duration_fmt(delay_ms, dd, sizeof(dd));
    if (lf && app.maint.enabled)
        snprintf(lsrc, sizeof(lsrc), "machine reports from %s: %llu "
                 "failure reports, %llu repairs, %llu ignored", labels,
                 (unsigned long long)st.failures,
                 (unsigned long long)st.repairs,
                 (unsigned long long)st.ignored);
    else if (lf)
        snprintf(lsrc, sizeof(lsrc), "from %s", labels);
    else if (col_labels && fmt != 0 && fmt != 3 && app.maint.enabled)
        snprintf(lsrc, sizeof(lsrc), "label column '%s': %llu positives, "
                 "%llu failures (the last of each run), each visible %s "
                 "after its event", map.label,
                 (unsigned long long)st.column_positives,
                 (unsigned long long)st.column_failures, dd);
    else if (col_labels && fmt != 0)
        snprintf(lsrc, sizeof(lsrc), "label column '%s': %llu positives, "
                 "each visible %s after its event", map.label,
                 (unsigned long long)st.column_positives, dd);
    fprintf(stderr, "features: %llu events (%llu late), %llu labels applied "
            "(%s), %llu bad event lines, %llu bad label lines -> %s, %d "
            "features, %.2f s (%.0f events/s)\n", (unsigned long long)st.events,
            (unsigned long long)st.late, (unsigned long long)st.labels,
            lsrc,
            (unsigned long long)st.bad_lines,
            (unsigned long long)st.bad_labels, output, fx.dim, secs,
            secs > 0 ? (double)st.events / secs : 0.0);
    if (st.bad_lines)
        fprintf(stderr, "features: first bad line: %s\n", st.first_error);
    if (st.events) rs_cli_warn_constant(cmd, f);
    if (!st.events && rc == RS_EXIT_RUNTIME && err == RS_OK)
        fprintf(stderr, "riskstream %s: no valid event in %s\n", cmd, input);
done:
    if (in && in != stdin) fclose(in);
    if (lf) fclose(lf);
    if (out && out != stdout && fclose(out) && rc == RS_EXIT_OK) {
        fprintf(stderr, "riskstream %s: write error on %s\n", cmd, output);
        rc = RS_EXIT_RUNTIME;
    }
    rs_features_destroy(f);
    rs_app_conf_destroy(&app);
    return rc;
}
