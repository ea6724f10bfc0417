/* cmd_gen.c -- `riskstream gen`: write a generated stream to files or
 * produce it to Kafka. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "model/maint.h"
#include "ops/eval/eval.h"

/* Default pace of Kafka mode (events/s): a service on one core keeps up,
 * so its partitions stay read evenly (see the help). */
#define RS_GEN_KAFKA_RATE 2000

static void rs_gen_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream gen [--sensors] [--seed N] [--entities N] [--duration DUR]\n"
        "                      [--events N] [--label-delay DUR] [--negative-labels]\n"
        "                      [--counterparties N] [--fraud-rate X]\n"
        "                      [--compromise-duration DUR]\n"
        "                      [--out FILE|-] [--labels-out FILE] [--truth-out FILE]\n"
        "                      [--format jsonl|csv] [--brokers LIST [--rate N]]\n"
        "                      [--config FILE] [--set gen.KEY=VALUE]...\n"
        "       riskstream gen --input FILE --map rtf:... [--out FILE]\n"
        "                      [--labels-out FILE] [--brokers LIST [--rate N]]\n\n"
        "Generate a deterministic synthetic stream: cards paying merchants with\n"
        "four fraud patterns (card testing, account takeover, compromised\n"
        "counterparty, velocity spike), or with --sensors machines whose sensors\n"
        "drift before failures.  Labels follow after the label delay.  The same\n"
        "seed and options give the same stream.  See docs/generator.md.\n\n"
        "With --out (default: stdout) it writes files; with --brokers it\n"
        "produces events to topics.events and labels to topics.labels.\n\n"
        "With --input FILE --map rtf:... it reads a run-to-failure file\n"
        "(unit cycle settings sensors; docs/maintenance.md) instead: its rows\n"
        "as events in time order and, each unit failing at its last cycle,\n"
        "one failure label per unit (value 1, naming that cycle, known\n"
        "gen.failure_label_delay after it) among them, as JSON lines or to\n"
        "Kafka: what `serve` with maintenance.enabled reads.\n\n"
        "options:\n" RS_CLI_HELP_CONFIG RS_CLI_HELP_BROKERS RS_CLI_HELP_REST
        "      --sensors         machines with sensors instead of cards\n"
        "      --seed N          PRNG seed (default 42)\n"
        "      --entities N      cards or machines (default 10000 / 200)\n"
        "      --duration DUR    simulated time span, e.g. 30d (default 30d)\n"
        "      --events N        stop after N events\n"
        "      --label-delay DUR event -> label delay (default 3d)\n"
        "      --negative-labels also emit value-0 labels for genuine events\n"
        "      --counterparties N merchants or sites (default 2000 / 20)\n"
        "      --fraud-rate X    cards: scale the four patterns to this share\n"
        "                        of events (e.g. 0.001, 0.01)\n"
        "      --compromise-duration DUR  cards: breached merchants stay\n"
        "                        breached this long (e.g. 21d; default: a\n"
        "                        one-shot breach of the past week's visitors)\n"
        "  -o, --out FILE        events file ('-' = stdout)\n"
        "      --labels-out FILE labels as JSON lines\n"
        "      --truth-out FILE  per-event ground truth with pattern (CSV)\n"
        "      --format FMT      jsonl (default) or csv (with a label column)\n"
        "      --rate N          Kafka mode: events/s (default %d; 0 = as fast\n"
        "                        as possible, see below)\n\n"
        "Kafka mode is paced by default: produced all at once, the stream\n"
        "waits in the topic's partitions and a consumer reads them unevenly,\n"
        "so events far apart in event time meet and most are flagged late\n"
        "(measured: 35 256 of 48 965 late at --rate 0, 340 at the default).\n",
        RS_GEN_KAFKA_RATE);
}

/* Generator flags shared by gen and demo.  1 handled, 0 not ours, -1 bad. */
int rs_cli_gen_opt(int c, const char *arg, rs_gen_conf_t *g, const char *cmd) {
    static const char *keys[] = {"seed", "entities", "duration", NULL,
                                 "max_events", "label_delay", NULL,
                                 "counterparties", "fraud_rate",
                                 "compromise_duration"};
    char errstr[256];
    if (c == 2003) { g->mode = RS_GEN_MODE_SENSORS; return 1; }
    if (c == 2006) { g->negative_labels = 1; return 1; }
    if (c < 2000 || c > 2009 || !keys[c - 2000]) return 0;
    if (rs_gen_conf_set(g, keys[c - 2000], arg, errstr, sizeof(errstr)) !=
        RS_OK) {
        rs_cli_usage_error(cmd, "%s", errstr);
        return -1;
    }
    return 1;
}

static rs_conf_section_t rs_gen_section;

int rs_cli_app_init(const char *cmd, rs_app_conf_t *app,
                    rs_gen_conf_t *gconf) {
    char errstr[512];
    if (rs_app_conf_init(app, errstr, sizeof(errstr)) != RS_OK) {
        rs_app_conf_destroy(app);
        return rs_cli_usage_error(cmd, "%s", errstr);
    }
    rs_gen_conf_defaults(gconf);
    rs_gen_section = (rs_conf_section_t){
        "gen", "synthetic stream generator (gen, demo, bench)",
        rs_gen_conf_fields, rs_gen_conf_nfields, gconf};
    if (rs_conf_add_section(app->conf, &rs_gen_section, errstr,
                            sizeof(errstr)) != RS_OK) {
        rs_app_conf_destroy(app);
        return rs_cli_usage_error(cmd, "%s", errstr);
    }
    return RS_EXIT_OK;
}

/* Where the records come from: the generator, or a run-to-failure file
 * (rs_gen_rtf_next).  1 = a record, 0 = the end. */
typedef int (rs_gen_next_fn)(void *src, rs_gen_rec_t *rec);

static int rs_gen_gen_next(void *src, rs_gen_rec_t *rec) {
    return rs_gen_next(src, rec) == 1;
}

/* Kafka mode: produce the stream, paced at `rate` events/s (0 = max). */
static int rs_gen_to_kafka(rs_app_conf_t *app, rs_gen_next_fn *next,
                           void *src, double rate) {
    char errstr[512];
    static uint8_t buf[RS_MSG_MAX];
    rd_kafka_t *prod = rs_kafka_producer_new(&app->kafka, app->ingest.brokers,
                                             errstr, sizeof(errstr));
    if (!prod) {
        fprintf(stderr, "riskstream gen: %s\n", errstr);
        return RS_EXIT_RUNTIME;
    }
    rs_gen_rec_t rec;
    uint64_t nev = 0, nlb = 0;
    if (rate > 0)
        fprintf(stderr, "gen: producing to %s at %.0f events/s (--rate N; "
                "--rate 0 = as fast as possible)\n", app->ingest.brokers,
                rate);
    else
        fprintf(stderr, "gen: WARNING: --rate 0 produces as fast as possible: "
                "unless the consumer is already running and keeps up, it "
                "reads the partitions unevenly and flags most events late "
                "(35 256 of 48 965 in a test); the default paces at %d "
                "events/s\n", RS_GEN_KAFKA_RATE);
    int64_t start = rs_clock_mono_us(), next_print = start + 1000000;
    int rc = RS_EXIT_OK;
    while (!rs_cli_stop && next(src, &rec)) {
        const char *topic, *key;
        int len;
        if (rec.kind == RS_GEN_EVENT) {
            if (rate > 0) {
                int64_t due = start + (int64_t)((double)nev * 1e6 / rate);
                int64_t now = rs_clock_mono_us();
                if (due > now) usleep((useconds_t)(due - now));
            }
            topic = app->ingest.topic_events;
            key = rec.ev.entity_id;
            len = rs_event_encode((rs_format_t)app->ingest.events_format,
                                  &rec.ev, buf, sizeof(buf));
            nev++;
        } else {
            topic = app->ingest.topic_labels;
            key = rec.lb.entity_id;
            len = rs_label_encode((rs_format_t)app->ingest.labels_format,
                                  &rec.lb, buf, sizeof(buf));
            nlb++;
        }
        if (len < 0) continue;
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(buf, (size_t)len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (!e) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "riskstream gen: produce to %s: %s\n", topic,
                        rd_kafka_err2str(e));
                rc = RS_EXIT_RUNTIME;
                goto out;
            }
            rd_kafka_poll(prod, 10);
        }
        rd_kafka_poll(prod, 0);
        int64_t now = rs_clock_mono_us();
        if (now >= next_print && isatty(STDERR_FILENO)) {
            fprintf(stderr, "\r\033[Kgen: %llu events, %llu labels, %.0f ev/s",
                    (unsigned long long)nev, (unsigned long long)nlb,
                    nev / ((now - start) / 1e6));
            next_print = now + 1000000;
        }
    }
out:
    if (rd_kafka_flush(prod, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "riskstream gen: %d messages not delivered\n",
                rd_kafka_outq_len(prod));
        rc = RS_EXIT_RUNTIME;
    }
    if (rs_kafka_producer_failed()) rc = RS_EXIT_RUNTIME;
    rd_kafka_destroy(prod);
    double s = (rs_clock_mono_us() - start) / 1e6;
    fprintf(stderr, "%sgen: produced %llu events and %llu labels to %s in "
            "%.1f s\n", isatty(STDERR_FILENO) ? "\r\033[K" : "",
            (unsigned long long)nev, (unsigned long long)nlb,
            app->ingest.brokers, s);
    return rc;
}

/* ---------------------------------------- run-to-failure files (--input)
 *
 * A run-to-failure file (--map rtf:..., docs/maintenance.md) as a stream:
 * its rows in event-time order (eval's reader: rs_eval_input), and, with
 * failures=last, one failure label per unit -- naming its last cycle,
 * value 1, known gen.failure_label_delay after it -- placed among the
 * events at its label time: what `serve` with maintenance.enabled reads. */
typedef struct rs_gen_rtf_s {
    rs_eval_input_t *in;
    size_t i, n;
    int64_t delay;
    /* failure labels not emitted yet, in label-time order (a FIFO: the
     * delay is the same for all, failures come in time order) */
    rs_label_t *lb;
    size_t nlb, lb_head, lb_tail;
    uint64_t events, labels;
    rs_event_t ev;
} rs_gen_rtf_t;

static int rs_gen_rtf_next(void *src, rs_gen_rec_t *rec) {
    rs_gen_rtf_t *r = src;
    memset(rec, 0, sizeof(*rec));
    int64_t t_next = INT64_MAX;
    rs_eval_rec_t er;
    if (r->i < r->n &&
        rs_eval_input_get(r->in, r->i, &r->ev, &er) == RS_OK)
        t_next = r->ev.event_time_ms;
    if (r->lb_head < r->lb_tail &&
        r->lb[r->lb_head].label_time_ms <= t_next) {
        rec->kind = RS_GEN_LABEL;
        rec->lb = r->lb[r->lb_head++];
        rec->emit_time_ms = rec->lb.label_time_ms;
        r->labels++;
        return 1;
    }
    if (r->i >= r->n) return 0;
    rec->kind = RS_GEN_EVENT;
    rec->ev = r->ev;
    rec->emit_time_ms = r->ev.event_time_ms;
    uint64_t enth;
    int64_t t;
    if (rs_eval_input_failure(r->in, r->i, &enth, &t)) {
        rs_label_t *lb = &r->lb[r->lb_tail++];
        memset(lb, 0, sizeof(*lb));
        rs_strlcpy(lb->event_id, r->ev.id, sizeof(lb->event_id));
        rs_strlcpy(lb->entity_id, r->ev.entity_id, sizeof(lb->entity_id));
        lb->value = 1;
        lb->label_time_ms = r->ev.event_time_ms + r->delay;
        rec->is_fraud = 1;
    }
    r->i++;
    r->events++;
    return 1;
}

/* JSON lines: events to `out`, labels to `labels_out` (NULL: none). */
static int rs_gen_rtf_files(rs_gen_rtf_t *r, const char *out,
                            const char *labels_out) {
    static char buf[RS_ENCODE_MAX];
    FILE *fe = strcmp(out, "-") ? fopen(out, "w") : stdout;
    FILE *fl = labels_out ? fopen(labels_out, "w") : NULL;
    if (!fe || (labels_out && !fl)) {
        fprintf(stderr, "riskstream gen: cannot write %s: %s\n",
                !fe ? out : labels_out, strerror(errno));
        if (fe && fe != stdout) fclose(fe);
        if (fl) fclose(fl);
        return RS_EXIT_RUNTIME;
    }
    rs_gen_rec_t rec;
    int rc = RS_EXIT_OK;
    while (rs_gen_rtf_next(r, &rec)) {
        FILE *fp = rec.kind == RS_GEN_EVENT ? fe : fl;
        if (!fp) continue;
        int len = rec.kind == RS_GEN_EVENT
                      ? rs_event_to_json(&rec.ev, buf, sizeof(buf))
                      : rs_label_to_json(&rec.lb, buf, sizeof(buf));
        if (len < 0 || fwrite(buf, 1, (size_t)len, fp) != (size_t)len ||
            fputc('\n', fp) == EOF) {
            rc = RS_EXIT_RUNTIME;
            break;
        }
    }
    if ((fe != stdout && fclose(fe)) || (fe == stdout && fflush(fe)) ||
        (fl && fclose(fl)))
        rc = RS_EXIT_RUNTIME;
    if (rc != RS_EXIT_OK)
        fprintf(stderr, "riskstream gen: write error: %s\n", strerror(errno));
    return rc;
}

/* gen --input FILE --map rtf:...: to files or Kafka. */
static int rs_gen_from_rtf(rs_app_conf_t *app, const rs_gen_conf_t *gconf,
                           const char *input, const char *map,
                           const char *out, const char *labels_out,
                           const char *brokers, double rate) {
    char errstr[512];
    rs_rtf_conf_t rc_map;
    rs_rtf_conf_init(&rc_map);
    if (rs_rtf_conf_parse(&rc_map, map, errstr, sizeof(errstr)) != RS_OK)
        return rs_cli_usage_error("gen", "--map: %s", errstr);
    size_t len = 0;
    char *buf = rs_cli_slurp(input, &len);
    if (!buf) {
        fprintf(stderr, "riskstream gen: cannot read %s: %s\n", input,
                strerror(errno));
        return RS_EXIT_RUNTIME;
    }
    int rc = RS_EXIT_RUNTIME;
    rs_gen_rtf_t r;
    memset(&r, 0, sizeof(r));
    r.in = rs_eval_input_new_rtf(buf, len, &rc_map, errstr, sizeof(errstr));
    if (!r.in) {
        fprintf(stderr, "riskstream gen: %s:%s\n", input, errstr);
        goto done;
    }
    rs_eval_input_stats_t ist;
    rs_eval_input_stats(r.in, &ist);
    for (int i = 0; i < ist.nerrors; i++)
        fprintf(stderr, "riskstream gen: %s:%s (skipped)\n", input,
                ist.errors[i]);
    r.n = rs_eval_input_count(r.in);
    if (!r.n) {
        fprintf(stderr, "riskstream gen: no valid row in %s\n", input);
        goto done;
    }
    /* failures: each unit's last cycle (failures=last; none: no label) */
    uint64_t nf = rs_eval_input_maintenance(r.in, 1);
    r.lb = rs_calloc((size_t)nf + 1, sizeof(*r.lb));
    r.delay = gconf->failure_label_delay_ms;
    rs_cli_signals();
    rc = brokers ? rs_gen_to_kafka(app, rs_gen_rtf_next, &r, rate)
                 : rs_gen_rtf_files(&r, out ? out : "-", labels_out);
    if (rc == RS_EXIT_OK)
        fprintf(stderr, "gen: %s: %llu events, %llu failure labels (each "
                "unit's last cycle, known %.1f h after it)%s\n",
                input, (unsigned long long)r.events,
                (unsigned long long)r.labels, (double)r.delay / 3600000.0,
                !brokers && !labels_out && nf
                    ? "; not written: no --labels-out" : "");
done:
    rs_eval_input_destroy(r.in);
    free(r.lb);
    free(buf);
    return rc;
}

int rs_cmd_gen(int argc, char **argv) {
    static const struct option extra[] = {
        {"seed", required_argument, NULL, 2000},
        {"entities", required_argument, NULL, 2001},
        {"duration", required_argument, NULL, 2002},
        {"sensors", no_argument, NULL, 2003},
        {"events", required_argument, NULL, 2004},
        {"label-delay", required_argument, NULL, 2005},
        {"negative-labels", no_argument, NULL, 2006},
        {"counterparties", required_argument, NULL, 2007},
        {"fraud-rate", required_argument, NULL, 2008},
        {"compromise-duration", required_argument, NULL, 2009},
        {"out", required_argument, NULL, 'o'},
        {"labels-out", required_argument, NULL, 3000},
        {"truth-out", required_argument, NULL, 3001},
        {"format", required_argument, NULL, 3002},
        {"rate", required_argument, NULL, 3003},
        {"input", required_argument, NULL, 3004},
        {"map", required_argument, NULL, 3005},
        {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    rs_app_conf_t app;
    rs_gen_conf_t gconf;
    int rc = rs_cli_app_init("gen", &app, &gconf);
    if (rc != RS_EXIT_OK) return rc;
    /* Flags are applied after the config file: collect them first. */
    int flag_c[32];
    const char *flag_v[32];
    int nflags = 0;
    const char *out = NULL, *labels_out = NULL, *truth_out = NULL;
    const char *input = NULL, *map = NULL;
    rs_gen_file_fmt_t fmt = RS_GEN_FILE_JSONL;
    double rate = RS_GEN_KAFKA_RATE;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT "o:", opts,
                            NULL)) != -1) {
        int r = rs_cli_common_opt("gen", c, optarg, &co);
        if (r < 0) { rc = RS_EXIT_USAGE; goto done; }
        if (r > 0) continue;
        switch (c) {
        case 'h': rs_gen_help(stdout); goto done;
        case 'o': out = optarg; break;
        case 3000: labels_out = optarg; break;
        case 3001: truth_out = optarg; break;
        case 3004: input = optarg; break;
        case 3005: map = optarg; break;
        case 3002:
            if (!strcmp(optarg, "jsonl") || !strcmp(optarg, "json"))
                fmt = RS_GEN_FILE_JSONL;
            else if (!strcmp(optarg, "csv")) fmt = RS_GEN_FILE_CSV;
            else {
                rc = rs_cli_usage_error("gen", "--format '%s': expected jsonl "
                                        "or csv", optarg);
                goto done;
            }
            break;
        case 3003: {
            char *end;
            rate = strtod(optarg, &end);
            if (*end || rate < 0) {
                rc = rs_cli_usage_error("gen", "--rate '%s': expected a "
                                        "non-negative number", optarg);
                goto done;
            }
            break;
        }
        default:
            if (c >= 2000 && c <= 2009 && nflags < 32) {
                flag_c[nflags] = c;
                flag_v[nflags++] = optarg;
                break;
            }
            rs_gen_help(stderr);
            rc = RS_EXIT_USAGE;
            goto done;
        }
    }
    if (optind < argc) {
        rc = rs_cli_usage_error("gen", "unexpected argument '%s'",
                                argv[optind]);
        goto done;
    }
    /* gen produces (topics.brokers) or writes files: no Redis, no
     * consumer group -- refused, not taken and ignored */
    if ((rc = rs_cli_common_unused("gen", &co, RS_CLI_NO_REDIS |
                                                   RS_CLI_NO_GROUP)) !=
        RS_EXIT_OK)
        goto done;
    if ((rc = rs_cli_load_conf("gen", &app, &co)) != RS_EXIT_OK) goto done;
    for (int i = 0; i < nflags; i++)
        if (rs_cli_gen_opt(flag_c[i], flag_v[i], &gconf, "gen") < 0) {
            rc = RS_EXIT_USAGE;
            goto done;
        }
    if (co.brokers && out) {
        rc = rs_cli_usage_error("gen", "--out and --brokers are exclusive");
        goto done;
    }
    if (input || map) { /* a run-to-failure file instead of the generator */
        if (!input || !rs_rtf_spec(map)) {
            rc = rs_cli_usage_error("gen", "--input needs --map rtf:... (a "
                                    "run-to-failure file; the generator "
                                    "reads no other file)");
            goto done;
        }
        if (truth_out || fmt != RS_GEN_FILE_JSONL) {
            rc = rs_cli_usage_error("gen", "--input: JSON lines only "
                                    "(--out, --labels-out), no --truth-out "
                                    "or --format csv");
            goto done;
        }
        rc = rs_gen_from_rtf(&app, &gconf, input, map, out, labels_out,
                             co.brokers, rate);
        goto done;
    }
    char errstr[512];
    rs_gen_t *g = rs_gen_new(&gconf, errstr, sizeof(errstr));
    if (!g) {
        rc = rs_cli_usage_error("gen", "%s", errstr);
        goto done;
    }
    rs_cli_signals();
    if (co.brokers) {
        rc = rs_gen_to_kafka(&app, rs_gen_gen_next, g, rate);
    } else {
        rs_err_t err = rs_gen_write_file(g, fmt, out ? out : "-", labels_out,
                                         truth_out, errstr, sizeof(errstr));
        if (err != RS_OK) {
            fprintf(stderr, "riskstream gen: %s\n", errstr);
            rc = RS_EXIT_RUNTIME;
        } else {
            rs_gen_stats_t st;
            rs_gen_stats(g, &st);
            fprintf(stderr, "gen: %llu events (%llu fraud), %llu labels\n",
                    (unsigned long long)st.events,
                    (unsigned long long)st.frauds,
                    (unsigned long long)st.labels);
        }
    }
    rs_gen_destroy(g);
done:
    rs_app_conf_destroy(&app);
    return rc;
}
