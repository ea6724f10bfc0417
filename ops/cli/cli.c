/* cli.c -- helpers shared by the subcommands. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "features/features.h"
#include "model/learner.h"

#include "harness.h"

volatile sig_atomic_t rs_cli_stop;

static void rs_cli_on_signal(int sig) {
    RS_UNUSED(sig);
    rs_cli_stop = 1;
}

void rs_cli_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = rs_cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int rs_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "riskstream %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return RS_EXIT_USAGE;
}

int rs_cli_load_conf(const char *cmd, rs_app_conf_t *app,
                     const rs_cli_common_t *co) {
    char errstr[512];
    if (co->config_path &&
        rs_conf_load_file(app->conf, co->config_path, errstr,
                          sizeof(errstr)) != RS_OK)
        return rs_cli_usage_error(cmd, "%s", errstr);
    for (int i = 0; i < co->nsets; i++) {
        const char *eq = strchr(co->sets[i], '=');
        if (!eq)
            return rs_cli_usage_error(cmd, "--set '%s': expected KEY=VALUE",
                                      co->sets[i]);
        char key[256];
        size_t kl = (size_t)(eq - co->sets[i]);
        if (kl >= sizeof(key))
            return rs_cli_usage_error(cmd, "--set: key too long");
        memcpy(key, co->sets[i], kl);
        key[kl] = '\0';
        if (rs_conf_set(app->conf, key, eq + 1, errstr, sizeof(errstr)) !=
            RS_OK)
            return rs_cli_usage_error(cmd, "--set %s", errstr);
    }
    /* Flags win over the file and --set. */
    const struct { const char *flag, *key, *val; } fl[] = {
        {"--brokers", RS_CONF_KEY_BROKERS, co->brokers},
        {"--redis", RS_CONF_KEY_REDIS_URL, co->redis},
        {"--group", RS_CONF_KEY_GROUP, co->group},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(fl); i++)
        if (fl[i].val && rs_conf_set(app->conf, fl[i].key, fl[i].val, errstr,
                                     sizeof(errstr)) != RS_OK)
            return rs_cli_usage_error(cmd, "%s: %s", fl[i].flag, errstr);
    return RS_EXIT_OK;
}

const struct option rs_cli_common_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"brokers", required_argument, NULL, 'b'},
    {"redis", required_argument, NULL, 'r'},
    {"group", required_argument, NULL, 'g'},
    {"set", required_argument, NULL, 's'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int rs_cli_common_unused(const char *cmd, const rs_cli_common_t *co,
                         int unused) {
    const struct { int bit; const char *flag, *val; } fl[] = {
        {RS_CLI_NO_BROKERS, "--brokers", co->brokers},
        {RS_CLI_NO_REDIS, "--redis", co->redis},
        {RS_CLI_NO_GROUP, "--group", co->group},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(fl); i++)
        if ((unused & fl[i].bit) && fl[i].val)
            return rs_cli_usage_error(cmd, "%s: not used by `%s` (see "
                                      "riskstream %s --help)",
                                      fl[i].flag, cmd, cmd);
    return RS_EXIT_OK;
}

void rs_cli_opts_merge(struct option *out, const struct option *extra) {
    int n = 0;
    for (int i = 0; rs_cli_common_opts[i].name; i++)
        out[n++] = rs_cli_common_opts[i];
    for (int i = 0; extra && extra[i].name && n < 63; i++) out[n++] = extra[i];
    memset(&out[n], 0, sizeof(out[n]));
}

int rs_cli_common_opt(const char *cmd, int c, const char *arg,
                      rs_cli_common_t *co) {
    switch (c) {
    case 'c': co->config_path = arg; return 1;
    case 'b': co->brokers = arg; return 1;
    case 'r': co->redis = arg; return 1;
    case 'g': co->group = arg; return 1;
    case 'l':
        if (rs_log_level_parse(arg) < 0) {
            rs_cli_usage_error(cmd, "--log-level '%s': expected debug, info, "
                               "warn or error", arg);
            return -1;
        }
        co->log_level = arg;
        rs_log_set_level((rs_log_level_t)rs_log_level_parse(arg));
        return 1;
    case 's':
        if (co->nsets >= (int)RS_ARRAY_LEN(co->sets)) {
            rs_cli_usage_error(cmd, "too many --set options");
            return -1;
        }
        co->sets[co->nsets++] = arg;
        return 1;
    default: return 0;
    }
}

char *rs_cli_slurp(const char *path, size_t *len) {
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = rs_malloc(cap);
    for (;;) {
        if (n == cap) buf = rs_realloc(buf, cap *= 2);
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(fp);
    int saved = errno;
    if (fp != stdin) fclose(fp);
    if (err) {
        free(buf);
        errno = saved ? saved : EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

void rs_cli_bar_draw(rs_cli_bar_t *b, size_t done, int final) {
    if (!b->on) return;
    int64_t now = rs_clock_mono_us();
    if (!final && now - b->last_us < 200000) return;
    b->last_us = now;
    double frac = b->total ? (double)done / (double)b->total : 1;
    double s = (double)(now - b->t0_us) / 1e6;
    double rate = s > 0 ? (double)done / s : 0;
    double eta = rate > 0 ? (double)(b->total - done) / rate : 0;
    int w = 30, fill = (int)(frac * w);
    fprintf(stderr, "\r[%.*s%.*s] %3.0f%%  %zu/%zu events  %.0f events/s  "
            "ETA %dm%02ds ", fill, "##############################", w - fill,
            "..............................", frac * 100, done, b->total, rate,
            (int)eta / 60, (int)eta % 60);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

int rs_cli_app_load(const char *cmd, rs_app_conf_t *app,
                    struct rs_gen_conf_s *gconf, const rs_cli_common_t *co) {
    int rc = rs_cli_app_init(cmd, app, gconf);
    if (rc != RS_EXIT_OK) return rc;
    rc = rs_cli_load_conf(cmd, app, co);
    if (rc != RS_EXIT_OK) rs_app_conf_destroy(app);
    else rs_app_conf_resolve(app);
    return rc;
}

char *rs_cli_tmpdir(const char *what) {
    const char *base = getenv("TMPDIR");
    char *p = NULL;
    if (asprintf(&p, "%s/riskstream-%s-XXXXXX",
                 base && base[0] ? base : "/tmp", what) < 0)
        return NULL;
    if (!mkdtemp(p)) {
        int e = errno;
        free(p);
        errno = e;
        return NULL;
    }
    return p;
}

static int rs_cli_rm1(const char *path, const struct stat *sb, int flag,
                      struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void rs_cli_rmtree(const char *dir) {
    if (dir && dir[0]) nftw(dir, rs_cli_rm1, 16, FTW_DEPTH | FTW_PHYS);
}

void rs_cli_warn_constant(const char *cmd, const struct rs_features_s *f) {
    int idx[RS_FEATURES_MAX_DIM];
    int n = rs_features_constant(f, idx, RS_FEATURES_MAX_DIM);
    if (n <= 0) return;
    fprintf(stderr, "riskstream %s: warning: %d of %d features were constant "
            "over the whole run (no information for the models; a window "
            "shorter than the event cadence?):", cmd, n, rs_features_dim(f));
    for (int i = 0; i < n && i < RS_FEATURES_MAX_DIM; i++)
        fprintf(stderr, "%s %s=%g", i ? "," : "", rs_features_name(f, idx[i]),
                0.0 + (double)rs_features_constant_value(f, idx[i]));
    fputc('\n', stderr);
}

void rs_cli_learning_summary(FILE *fp, const char *name,
                             const rs_model_stats_t *ms,
                             const rs_learner_stats_t *ls,
                             uint64_t positives_in, uint64_t in_flight) {
    char hz[32], d50[32], d99[32];
    rs_duration_fmt(ls->horizon_ms, hz, sizeof(hz));
    rs_duration_fmt(ls->delay_p50_ms, d50, sizeof(d50));
    rs_duration_fmt(ls->delay_p99_ms, d99, sizeof(d99));
    fprintf(fp, "  %-4s learned %llu positives (%llu corrected after "
            "maturity) and %llu negatives (%llu at maturity, horizon %s%s); "
            "labels: %llu joined, %llu without a scored event, %llu "
            "repeated; delay p50 %s p99 %s; version %s\n",
            name, (unsigned long long)ms->positives,
            (unsigned long long)ms->corrections,
            (unsigned long long)ms->negatives,
            (unsigned long long)ms->horizon_negatives, hz,
            ls->horizon_auto ? " auto" : "", (unsigned long long)ls->joined,
            (unsigned long long)ls->unknown, (unsigned long long)ls->repeats,
            ls->delays ? d50 : "-", ls->delays ? d99 : "-", ms->version);
    if (ms->positives) return;
    /* no positive learned: say why */
    if (!positives_in)
        fprintf(fp, "       no positive learned: the input has no positive "
                "label (check --map label=... or --labels)\n");
    else if (ls->unknown && !ls->joined)
        fprintf(fp, "       no positive learned: none of the %llu labels "
                "matched a scored event (do the label ids match the event "
                "ids?)\n", (unsigned long long)ls->unknown);
    else if (in_flight)
        fprintf(fp, "       no positive learned: the %llu positive labels "
                "were still in flight at the end (the label delay is longer "
                "than the data after its first positive)\n",
                (unsigned long long)positives_in);
    else if (ls->failed)
        fprintf(fp, "       no positive learned: %llu learning records "
                "could not be learned (damaged)\n",
                (unsigned long long)ls->failed);
}

rs_err_t rs_cli_send_label(void *opaque, const rs_label_t *lb, char *errstr,
                           size_t errstr_size) {
    return rs_sink_label_send(opaque, lb, 10000, errstr, errstr_size);
}

/* ------------------------------------------------------ unique event ids */

int rs_cli_check_ids(const char *cmd, const char *what, const char *buf,
                     size_t len, rs_cli_in_t kind, const rs_csv_map_t *map,
                     int map_given) {
    char errstr[320], col[160];
    size_t cap = 1;
    while (cap < 2 * (size_t)RS_CLI_IDS_CHECK) cap <<= 1;
    uint64_t *set = rs_calloc(cap, sizeof(uint64_t)); /* 0 = empty */
    rs_event_t *ev = rs_malloc(sizeof(*ev));
    rs_csv_t *csv = NULL;
    size_t pos = 0, checked = 0, dups = 0;
    int rc = RS_EXIT_OK;
    while (pos < len && checked < RS_CLI_IDS_CHECK) {
        const char *rec = buf + pos;
        size_t n;
        if (kind == RS_CLI_IN_CSV) {
            int complete;
            n = rs_csv_record_len(rec, len - pos, &complete);
            if (!complete || n == 0) break;
        } else {
            const char *nl = memchr(rec, '\n', len - pos);
            n = nl ? (size_t)(nl - rec) + 1 : len - pos;
        }
        pos += n;
        size_t rl = n;
        while (rl && (rec[rl - 1] == '\n' || rec[rl - 1] == '\r')) rl--;
        size_t k = 0;
        while (k < rl && (rec[k] == ' ' || rec[k] == '\t')) k++;
        if (k == rl) continue; /* blank */
        double label;
        int has_label;
        rs_err_t err;
        if (kind == RS_CLI_IN_CSV && !csv) { /* the header */
            csv = rs_csv_new(map, rec, rl, errstr, sizeof(errstr));
            if (!csv) break; /* the reader says why */
            continue;
        }
        if (kind == RS_CLI_IN_CSV)
            err = rs_csv_decode(csv, rec, rl, ev, &label, &has_label, errstr,
                                sizeof(errstr));
        else if (kind == RS_CLI_IN_JSON_MAP)
            err = rs_event_from_json_map(map, rec, rl, ev, &label, &has_label,
                                         errstr, sizeof(errstr));
        else
            err = rs_event_from_json(rec, rl, ev, errstr, sizeof(errstr));
        if (err != RS_OK) continue;
        checked++;
        uint64_t h = rs_hash_str(ev->id);
        if (!h) h = 1;
        size_t i = (size_t)h & (cap - 1);
        while (set[i] && set[i] != h) i = (i + 1) & (cap - 1);
        if (set[i] == h) dups++;
        else set[i] = h;
    }
    if (kind == RS_CLI_IN_JSONL)
        snprintf(col, sizeof(col), "the field 'id'");
    else if (map_given)
        snprintf(col, sizeof(col), "--map id=%s", map->id);
    else
        snprintf(col, sizeof(col), "the id column '%s' (--map id=COLUMN)",
                 map->id);
    char a[32], b[32], c[32];
    rs_cli_fmt_count(dups, a, sizeof(a));
    rs_cli_fmt_count(checked, b, sizeof(b));
    rs_cli_fmt_count(checked - dups, c, sizeof(c));
    if (dups * 100 > checked) {
        fprintf(stderr, "riskstream %s: %s: %s is not unique: %s of the "
                "first %s events repeat an earlier event's id (%s distinct "
                "ids). Each event needs its own id: labels, the score store "
                "and audit --rescore find events by it; map id= to the "
                "column that identifies the event (a transaction id), not "
                "the entity\n", cmd, what, col, a, b, c);
        rc = RS_EXIT_USAGE;
    } else if (dups) {
        fprintf(stderr, "riskstream %s: warning: %s: %s of the first %s "
                "events repeat an earlier event's id (%s); a label joins to "
                "one of them\n", cmd, what, a, b, col);
    }
    rs_csv_destroy(csv);
    rs_free(ev);
    rs_free(set);
    return rc;
}
