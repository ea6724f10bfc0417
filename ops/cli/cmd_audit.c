/* cmd_audit.c -- `riskstream audit`: read past decisions back from the
 * Redis score store (README "Redis key schema").
 *
 *   riskstream audit EVENT_ID [--json]       one decision, as a report
 *   riskstream audit EVENT_ID --rescore [--store DIR] [--json]
 *                                            recompute its score from the
 *                                            logged input with the recorded
 *                                            version from the model store
 *   riskstream audit --entity ID [--since T] [--limit N] [--json]
 *                                            an entity's decisions
 *
 * Strings from the store are printed with control characters replaced,
 * so a hostile event id cannot drive the terminal.  --json prints the
 * stored text re-indented, never re-encoded (numbers stay bit-exact).
 *
 * Exit codes: 0 found (--rescore: the score matches bit for bit), 1 not
 * found, Redis unreachable, or (--rescore) a mismatch, input not logged,
 * version not in the store; 2 usage or configuration error. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ops/gen/gen.h"
#include "scoring/http.h"

#define RS_AUDIT_LIMIT_DEF 20
#define RS_AUDIT_LIMIT_MAX 1000

static void rs_audit_help(FILE *fp) {
    fprintf(fp,
        "usage: riskstream audit EVENT_ID [--json] [--redis URL] [--config FILE]\n"
        "       riskstream audit EVENT_ID --rescore [--store DIR] [--json]\n"
        "                        [--redis URL] [--config FILE]\n"
        "       riskstream audit --entity ID [--since T] [--limit N] [--json]\n"
        "                        [--redis URL] [--config FILE]\n\n"
        "Read a past decision back from Redis and print it as a report: score,\n"
        "decision, model version, event/scored times, latency, the event's\n"
        "own fields, reasons, the past events the model attended to (with\n"
        "their attention weights), the feature contributions (with their\n"
        "words) and the experts with their gate weights.\n"
        "With --entity, list that entity's decisions newest first.  Records\n"
        "live for redis.ttl (default 7d).\n\n"
        "With --rescore, recompute the score from the event's logged scoring\n"
        "input (Redis, redis.input_ttl) with the model version recorded in\n"
        "its score, loaded from the model store, and say whether it matches\n"
        "bit for bit: \"rescore: match (bit for bit)\" (exit 0) or\n"
        "\"MISMATCH: recorded X, recomputed Y\" (exit 1).\n\n"
        "options:\n"
        "      --json            print the stored JSON record (pretty); with\n"
        "                        --entity, a JSON array of records; with\n"
        "                        --rescore, the comparison as JSON\n"
        "      --rescore         recompute the score (see above)\n"
        "      --store DIR       with --rescore: the model store (default\n"
        "                        model.store_dir of the configuration)\n"
        "  -e, --entity ID       list the decisions of entity ID\n"
        "      --since T         with --entity: only events at or after T, an ISO\n"
        "                        time (2026-11-22T10:00:00Z), epoch s/ms, or a\n"
        "                        duration such as 7d, 12h, 30m counted back\n"
        "                        from the entity's newest event (not from now:\n"
        "                        event times may be far in the past)\n"
        "  -n, --limit N         with --entity: at most N decisions (default %d,\n"
        "                        max %d)\n"
        "  -c, --config FILE     YAML configuration (the `redis:` section)\n"
        "  -r, --redis URL       redis://host:port[/db] or unix:///path\n"
        "  -s, --set KEY=VALUE   override one config key, e.g. redis.key_prefix=x:\n"
        "  -l, --log-level LVL   debug|info|warn|error (default warn)\n"
        "  -h, --help            this help\n\n"
        "exit codes: 0 found (--rescore: match), 1 not found or Redis\n"
        "unreachable (--rescore: mismatch, input not logged, version not in\n"
        "the store), 2 usage or configuration error\n",
        RS_AUDIT_LIMIT_DEF, RS_AUDIT_LIMIT_MAX);
}

/* Copy for the terminal: control characters become '?'. */
static const char *rs_audit_clean(const char *s, char *buf, size_t size) {
    size_t o = 0;
    for (; *s && o + 1 < size; s++)
        buf[o++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    buf[o] = '\0';
    return buf;
}

static int rs_audit_utf8(void) {
    const char *v[] = {getenv("LC_ALL"), getenv("LC_CTYPE"), getenv("LANG")};
    for (size_t i = 0; i < RS_ARRAY_LEN(v); i++)
        if (v[i] && *v[i])
            return strstr(v[i], "UTF-8") || strstr(v[i], "utf8") ||
                   strstr(v[i], "UTF8") || strstr(v[i], "utf-8");
    return 0;
}

/* A bar of `cells` cells for frac in [0,1] (eighths in UTF-8). */
static void rs_audit_bar(double frac, int cells, int utf8, char *buf,
                         size_t size) {
    static const char *const eighth[] = {"", "\u258f", "\u258e", "\u258d",
                                         "\u258c", "\u258b", "\u258a",
                                         "\u2589"};
    size_t o = 0;
    if (!isfinite(frac) || frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    buf[0] = '\0';
    if (!utf8) {
        int n = (int)lround(frac * cells);
        for (int i = 0; i < n && o + 1 < size; i++) buf[o++] = '#';
        buf[o] = '\0';
        return;
    }
    int units = (int)lround(frac * cells * 8);
    for (int i = 0; i < units / 8; i++)
        o += (size_t)snprintf(buf + o, size - o, "\u2588");
    snprintf(buf + o, size - o, "%s", eighth[units % 8]);
}

/* Display width of a bar built by rs_audit_bar (cells used). */
static int rs_audit_bar_cells(double frac, int cells, int utf8) {
    if (!isfinite(frac) || frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    if (!utf8) return (int)lround(frac * cells);
    int units = (int)lround(frac * cells * 8);
    return units / 8 + (units % 8 ? 1 : 0);
}

/* Re-indent JSON text (2 spaces) without touching its tokens. */
static void rs_audit_pretty(const char *s, FILE *fp) {
    int depth = 0, in_str = 0;
    for (; *s; s++) {
        char c = *s;
        if (in_str) {
            fputc(c, fp);
            if (c == '\\' && s[1]) fputc(*++s, fp);
            else if (c == '"') in_str = 0;
            continue;
        }
        switch (c) {
        case '"': in_str = 1; fputc(c, fp); break;
        case '{': case '[': {
            const char *p = s + 1;
            while (isspace((unsigned char)*p)) p++;
            if (*p == (c == '{' ? '}' : ']')) { /* empty */
                fputc(c, fp);
                fputc(*p, fp);
                s = p;
                break;
            }
            fputc(c, fp);
            fprintf(fp, "\n%*s", 2 * ++depth, "");
            break;
        }
        case '}': case ']':
            fprintf(fp, "\n%*s%c", 2 * (depth > 0 ? --depth : 0), "", c);
            break;
        case ',': fprintf(fp, ",\n%*s", 2 * depth, ""); break;
        case ':': fputs(": ", fp); break;
        case ' ': case '\t': case '\n': case '\r': break;
        default: fputc(c, fp);
        }
    }
    fputc('\n', fp);
}

static void rs_audit_report(const rs_score_t *sc, FILE *fp) {
    const rs_explanation_t *ex = &sc->explanation;
    char a[256], b[256], t1[64], t2[64], bar[128];
    int utf8 = rs_audit_utf8();

    rs_time_fmt(sc->event_time_ms, t1, sizeof(t1));
    rs_time_fmt(sc->scored_at_ms, t2, sizeof(t2));
    fprintf(fp, "event       %s  (entity %s)\n",
            rs_audit_clean(sc->event_id, a, sizeof(a)),
            rs_audit_clean(sc->entity_id, b, sizeof(b)));
    fprintf(fp, "score       %.4f  %s", sc->score, rs_decision_str(sc->decision));
    rs_audit_bar(sc->score, 20, utf8, bar, sizeof(bar));
    fprintf(fp, "  [%s%*s]\n", bar, 20 - rs_audit_bar_cells(sc->score, 20, utf8),
            "");
    if (sc->alert_score != 0) /* maintenance: the policy's score (cold start) */
        fprintf(fp, "alert score %.4f  (the alert policy's: the model's score "
                "blended with the baseline deviation, maintenance.cold_start)\n",
                sc->alert_score);
    fprintf(fp, "model       %s\n",
            rs_audit_clean(sc->model_version, a, sizeof(a)));
    fprintf(fp, "event time  %s\n", t1);
    fprintf(fp, "scored at   %s  (latency %.3f ms)%s\n", t2,
            (double)sc->latency_us / 1000.0,
            (sc->flags & RS_SCORE_FLAG_LATE) ? "  late event" : "");

    const rs_event_fields_t *ef = &sc->event;
    if (ef->present) {
        fprintf(fp, "type        %s  amount %.2f",
                rs_audit_clean(ef->type[0] ? ef->type : "-", a, sizeof(a)),
                ef->amount);
        if (ef->counterparty_id[0])
            fprintf(fp, "  counterparty %s",
                    rs_audit_clean(ef->counterparty_id, a, sizeof(a)));
        fputc('\n', fp);
        if (ef->n_categ > 0 || ef->n_numeric > 0) {
            fprintf(fp, "fields     ");
            for (int i = 0; i < ef->n_categ && i < RS_MAX_CATEG; i++)
                fprintf(fp, " %s=%s",
                        rs_audit_clean(ef->categ[i].name, a, sizeof(a)),
                        rs_audit_clean(ef->categ[i].value, b, sizeof(b)));
            for (int i = 0; i < ef->n_numeric && i < RS_MAX_NUMERIC; i++)
                fprintf(fp, " %s=%.6g",
                        rs_audit_clean(ef->numeric[i].name, a, sizeof(a)),
                        ef->numeric[i].value);
            fputc('\n', fp);
        }
    }

    int nr = RS_MIN(RS_MAX(ex->n_reasons, 0), RS_MAX_REASONS);
    fprintf(fp, "\nreasons\n");
    if (!nr) fprintf(fp, "  (none recorded)\n");
    for (int i = 0; i < nr; i++)
        fprintf(fp, "  - %s\n", rs_audit_clean(ex->reasons[i], a, sizeof(a)));

    int na = RS_MIN(RS_MAX(ex->n_attended, 0), RS_MAX_ATTEND);
    fprintf(fp, "\nattended history (attention weight)\n");
    if (!na) fprintf(fp, "  (none recorded)\n");
    else
        fprintf(fp, "  %-22s %-24s %10s  %-20s %s\n", "event", "time",
                "amount", "counterparty", "weight");
    for (int i = 0; i < na; i++) {
        const rs_attended_t *at = &ex->attended[i];
        rs_time_fmt(at->event_time_ms, t1, sizeof(t1));
        rs_audit_bar(at->weight, 10, utf8, bar, sizeof(bar));
        fprintf(fp, "  %-22s %-24s %10.2f  %-20s %.3f %s\n",
                rs_audit_clean(at->event_id, a, sizeof(a)), t1, at->amount,
                rs_audit_clean(at->counterparty_id[0] ? at->counterparty_id
                                                      : "-",
                               b, sizeof(b)),
                at->weight, bar);
    }

    int nc = RS_MIN(RS_MAX(ex->n_contrib, 0), RS_MAX_CONTRIB);
    double amax = 0;
    for (int i = 0; i < nc; i++)
        if (isfinite(ex->contrib[i].contribution))
            amax = RS_MAX(amax, fabs(ex->contrib[i].contribution));
    fprintf(fp, "\nfeature contributions (- lowers risk | + raises risk)\n");
    if (!nc) fprintf(fp, "  (none recorded)\n");
    else
        fprintf(fp, "  %-28s %10s %10s\n", "feature", "value", "contrib");
    for (int i = 0; i < nc; i++) {
        const rs_contrib_t *c = &ex->contrib[i];
        double f = amax > 0 ? fabs(c->contribution) / amax : 0;
        int cells = rs_audit_bar_cells(f, 12, utf8);
        rs_audit_bar(f, 12, utf8, bar, sizeof(bar));
        fprintf(fp, "  %-28s %10.4g %+10.4f  ",
                rs_audit_clean(c->name, a, sizeof(a)), c->value,
                c->contribution);
        if (c->contribution < 0) {
            /* the bar grows leftwards from the axis; eighth blocks are
             * left-aligned, so draw whole cells only */
            int n = (int)lround(f * 12);
            fprintf(fp, "%*s", 12 - n, "");
            for (int k = 0; k < n; k++) fputs(utf8 ? "\u2588" : "#", fp);
            fputs("|\n", fp);
        } else {
            fprintf(fp, "%12s|%s\n", "", bar);
        }
        if (c->text[0])
            fprintf(fp, "    %s\n", rs_audit_clean(c->text, a, sizeof(a)));
        RS_UNUSED(cells);
    }

    int ne = RS_MIN(RS_MAX(ex->n_experts, 0), RS_MAX_EXPERTS);
    fprintf(fp, "\nexperts (gate weight)\n");
    if (!ne) fprintf(fp, "  (none recorded)\n");
    for (int i = 0; i < ne; i++) {
        rs_audit_bar(ex->experts[i].gate_weight, 20, utf8, bar, sizeof(bar));
        fprintf(fp, "  expert %-3u %.3f %s\n", ex->experts[i].expert,
                ex->experts[i].gate_weight, bar);
    }
}

void rs_cli_audit_report(const rs_score_t *sc, FILE *fp) {
    rs_audit_report(sc, fp);
}

static int rs_audit_one(rs_sink_redis_t *sink, const char *id, int json,
                        const rs_redis_conf_t *rconf) {
    char errstr[512], a[256];
    char *buf = rs_malloc(RS_ENCODE_MAX);
    rs_score_t *sc = rs_malloc(sizeof(*sc));
    int rc = RS_EXIT_OK;
    rs_err_t err = strlen(id) >= RS_ID_MAX
                       ? RS_ERR_NOTFOUND
                       : rs_sink_redis_get_score(sink, id, buf, RS_ENCODE_MAX,
                                                 errstr, sizeof(errstr));
    RS_UNUSED(rconf);
    if (err == RS_ERR_NOTFOUND) {
        fprintf(stderr, "riskstream audit: no score for event '%s' (expired "
                        "after redis.ttl, or never scored)\n",
                rs_audit_clean(id, a, sizeof(a)));
        rc = RS_EXIT_RUNTIME;
    } else if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        rc = RS_EXIT_RUNTIME;
    } else if (json) {
        rs_audit_pretty(buf, stdout);
    } else if (rs_score_from_json(buf, strlen(buf), sc, errstr,
                                  sizeof(errstr)) != RS_OK) {
        fprintf(stderr, "riskstream audit: stored record of '%s' does not "
                        "decode: %s\n", rs_audit_clean(id, a, sizeof(a)),
                errstr);
        rc = RS_EXIT_RUNTIME;
    } else {
        rs_audit_report(sc, stdout);
    }
    rs_free(sc);
    rs_free(buf);
    return rc;
}

/* --rescore: the score record, its logged input and the recorded version
 * from the store; recompute and compare the bits. */
static int rs_audit_rescore(rs_sink_redis_t *sink, const char *id, int json,
                            const rs_app_conf_t *app, const char *store_dir) {
    char errstr[512], a[256], b[256], e[256];
    char *buf = rs_malloc(RS_ENCODE_MAX);
    rs_score_t *sc = rs_malloc(sizeof(*sc));
    size_t cap = 64 * 1024, len = 0;
    uint8_t *log = rs_malloc(cap);
    rs_model_store_t *st = NULL;
    rs_model_t *m = NULL;
    int rc = RS_EXIT_RUNTIME;
    rs_audit_clean(id, a, sizeof(a));

    rs_err_t err = strlen(id) >= RS_ID_MAX
                       ? RS_ERR_NOTFOUND
                       : rs_sink_redis_get_score(sink, id, buf, RS_ENCODE_MAX,
                                                 errstr, sizeof(errstr));
    if (err == RS_ERR_NOTFOUND) {
        fprintf(stderr, "riskstream audit: no score for event '%s' (expired "
                        "after redis.ttl, or never scored)\n", a);
        goto done;
    }
    if (err == RS_OK)
        err = rs_score_from_json(buf, strlen(buf), sc, errstr, sizeof(errstr));
    if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        goto done;
    }
    err = rs_sink_redis_get_input(sink, id, log, cap, &len, errstr,
                                  sizeof(errstr));
    if (err == RS_ERR_TOOBIG && len > cap) { /* larger than any log today */
        cap = len;
        log = rs_realloc(log, cap);
        err = rs_sink_redis_get_input(sink, id, log, cap, &len, errstr,
                                      sizeof(errstr));
    }
    if (err == RS_ERR_NOTFOUND) {
        fprintf(stderr, "riskstream audit: the scoring input of event '%s' "
                        "was not logged (inputs are logged for flagged "
                        "events, or all, as configured; they expire after "
                        "redis.input_ttl): cannot rescore\n", a);
        goto done;
    }
    if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        goto done;
    }

    /* A reader: do not create the store (rs_model_store_open would). */
    struct stat sb;
    int se = stat(store_dir, &sb) ? errno : 0;
    if (se || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "riskstream audit: model store %s: %s\n", store_dir,
                se ? strerror(se) : "not a directory");
        goto done;
    }
    st = rs_model_store_open(store_dir, (int)RS_MAX(app->model.keep_versions, 1),
                             errstr, sizeof(errstr));
    if (!st) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        goto done;
    }
    /* Scoring needs no caches: the smallest the config allows (the
     * architecture comes from the file). */
    rs_model_conf_t mc = app->model;
    mc.seq.max_entities = mc.batch_max + 1;
    rs_audit_clean(sc->model_version, b, sizeof(b));
    err = rs_model_store_load(st, sc->model_version, &mc, &m, errstr,
                              sizeof(errstr));
    if (err == RS_ERR_NOTFOUND) {
        fprintf(stderr, "riskstream audit: model version %s of event '%s' is "
                        "not in the store %s (pruned: the store keeps the "
                        "newest model.keep_versions versions; or never "
                        "published): cannot rescore\n", b, a, store_dir);
        goto done;
    }
    if (err == RS_ERR_INVALID) {
        fprintf(stderr, "riskstream audit: the recorded model version '%s' "
                        "is not a store version: cannot rescore\n", b);
        goto done;
    }
    if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        goto done;
    }
    /* scored with what the version published (model.average: the average
     * of its weights), as the service's scorer did */
    rs_model_weights_t *pw = rs_model_weights_take(m);
    err = rs_model_weights_use(m, pw);
    rs_model_weights_release(pw);
    if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: cannot use the weights of %s: "
                        "%s\n", b, rs_err_str(err));
        goto done;
    }
    float y = 0;
    err = rs_model_rescore(m, log, len, &y, errstr, sizeof(errstr));
    if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: cannot rescore event '%s' with "
                        "%s: %s\n", a, b, errstr);
        goto done;
    }
    /* The record holds the float score as a double (shortest round-trip
     * text): equal as doubles means the same float bits. */
    float r = (float)sc->score;
    int match = (double)r == sc->score && !memcmp(&r, &y, sizeof(r));
    rc = match ? RS_EXIT_OK : RS_EXIT_RUNTIME;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f, s:b, s:I}", "event_id",
                              sc->event_id, "model_version",
                              sc->model_version, "store", store_dir,
                              "recorded", sc->score, "recomputed", (double)y,
                              "match", match, "log_bytes", (json_int_t)len);
        char *txt = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                      : NULL;
        if (txt) puts(txt);
        free(txt);
        json_decref(o);
        goto done;
    }
    printf("event       %s  (entity %s)\n", a,
           rs_audit_clean(sc->entity_id, e, sizeof(e)));
    printf("model       %s  (%s, store %s)\n", b, rs_model_kind(m), store_dir);
    printf("input log   %zu bytes\n", len);
    printf("recorded    %.9g\n", sc->score);
    printf("recomputed  %.9g\n", (double)y);
    if (match)
        printf("rescore: match (bit for bit)\n");
    else
        printf("MISMATCH: recorded %.9g, recomputed %.9g\n", sc->score,
               (double)y);
done:
    rs_model_destroy(m);
    rs_model_store_close(st);
    rs_free(log);
    rs_free(sc);
    rs_free(buf);
    return rc;
}

static int rs_audit_entity(rs_sink_redis_t *sink, const char *entity,
                           int64_t since_ms, int limit, int json,
                           const rs_redis_conf_t *rconf) {
    char errstr[512], a[256], b[256], t1[64];
    int max = (int)RS_MAX(RS_MIN(rconf->entity_index_max, 100000),
                          (int64_t)limit);
    char (*ids)[RS_ID_MAX] = rs_malloc((size_t)max * RS_ID_MAX);
    char *buf = rs_malloc(RS_ENCODE_MAX);
    rs_score_t *sc = rs_malloc(sizeof(*sc));
    int n = 0, out = 0, rc = RS_EXIT_OK;
    rs_err_t err = strlen(entity) >= RS_ID_MAX
                       ? RS_OK
                       : rs_sink_redis_entity_scores(sink, entity, since_ms,
                                                     ids, max, &n, errstr,
                                                     sizeof(errstr));
    if (err != RS_OK) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        rc = RS_EXIT_RUNTIME;
        goto done;
    }
    /* The index is oldest first: walk back from the newest. */
    for (int i = n - 1; i >= 0 && out < limit; i--) {
        err = rs_sink_redis_get_score(sink, ids[i], buf, RS_ENCODE_MAX, errstr,
                                      sizeof(errstr));
        if (err == RS_ERR_NOTFOUND) continue; /* record expired first */
        if (err != RS_OK) {
            fprintf(stderr, "riskstream audit: %s\n", errstr);
            rc = RS_EXIT_RUNTIME;
            goto done;
        }
        if (json) {
            fputs(out ? ",\n" : "[\n", stdout);
            rs_audit_pretty(buf, stdout);
            out++;
            continue;
        }
        if (rs_score_from_json(buf, strlen(buf), sc, errstr, sizeof(errstr)) !=
            RS_OK) {
            fprintf(stderr, "riskstream audit: record of '%s' does not "
                            "decode: %s\n", rs_audit_clean(ids[i], a, sizeof(a)),
                    errstr);
            continue;
        }
        if (!out)
            printf("%-24s  %-24s %7s  %-8s %s\n", "event time", "event id",
                   "score", "decision", "model version");
        rs_time_fmt(sc->event_time_ms, t1, sizeof(t1));
        printf("%-24s  %-24s %7.4f  %-8s %s\n", t1,
               rs_audit_clean(sc->event_id, a, sizeof(a)), sc->score,
               rs_decision_str(sc->decision),
               rs_audit_clean(sc->model_version, b, sizeof(b)));
        out++;
    }
    if (json) {
        fputs(out ? "]\n" : "[]\n", stdout);
    } else if (!out) {
        fprintf(stderr, "riskstream audit: no scores for entity '%s'%s "
                        "(expired after redis.ttl, or never scored)\n",
                rs_audit_clean(entity, a, sizeof(a)),
                since_ms > 0 ? " in that time range" : "");
        rc = RS_EXIT_RUNTIME;
    } else {
        printf("%d decision%s of entity %s, newest first%s\n", out,
               out == 1 ? "" : "s", rs_audit_clean(entity, a, sizeof(a)),
               out == limit ? " (--limit reached)" : "");
    }
done:
    rs_free(sc);
    rs_free(buf);
    rs_free(ids);
    return rc;
}

/* Event time of the entity's newest decision still in Redis: RS_OK,
 * RS_ERR_NOTFOUND (none), or a Redis error (message printed). */
static rs_err_t rs_audit_newest(rs_sink_redis_t *sink, const char *entity,
                                const rs_redis_conf_t *rconf, int64_t *t_ms) {
    char errstr[512];
    int max = (int)RS_MAX(RS_MIN(rconf->entity_index_max, 100000), 1);
    char (*ids)[RS_ID_MAX] = rs_malloc((size_t)max * RS_ID_MAX);
    char *buf = rs_malloc(RS_ENCODE_MAX);
    rs_score_t *sc = rs_malloc(sizeof(*sc));
    int n = 0;
    rs_err_t err = strlen(entity) >= RS_ID_MAX
                       ? RS_OK
                       : rs_sink_redis_entity_scores(sink, entity, 0, ids, max,
                                                     &n, errstr,
                                                     sizeof(errstr));
    if (err != RS_OK) fprintf(stderr, "riskstream audit: %s\n", errstr);
    else err = RS_ERR_NOTFOUND;
    /* The index is oldest first; its newest record may have expired. */
    for (int i = n - 1; i >= 0 && err == RS_ERR_NOTFOUND; i--) {
        rs_err_t e2 = rs_sink_redis_get_score(sink, ids[i], buf, RS_ENCODE_MAX,
                                              errstr, sizeof(errstr));
        if (e2 == RS_ERR_NOTFOUND) continue;
        if (e2 != RS_OK) {
            fprintf(stderr, "riskstream audit: %s\n", errstr);
            err = e2;
        } else if (rs_score_from_json(buf, strlen(buf), sc, errstr,
                                      sizeof(errstr)) == RS_OK) {
            *t_ms = sc->event_time_ms;
            err = RS_OK;
        }
    }
    rs_free(sc);
    rs_free(buf);
    rs_free(ids);
    return err;
}

int rs_cmd_audit(int argc, char **argv) {
    static const struct option extra[] = {
        {"json", no_argument, NULL, 1000},
        {"entity", required_argument, NULL, 'e'},
        {"since", required_argument, NULL, 1001},
        {"limit", required_argument, NULL, 'n'},
        {"rescore", no_argument, NULL, 1002},
        {"store", required_argument, NULL, 1003},
        {NULL, 0, NULL, 0}};
    struct option opts[64];
    rs_cli_opts_merge(opts, extra);
    rs_cli_common_t co;
    memset(&co, 0, sizeof(co));
    const char *entity = NULL, *since = NULL, *limit_s = NULL, *store = NULL;
    int json = 0, rescore = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, RS_CLI_COMMON_SHORT "e:n:", opts,
                            NULL)) != -1) {
        int r = rs_cli_common_opt("audit", c, optarg, &co);
        if (r < 0) return RS_EXIT_USAGE;
        if (r > 0) continue;
        switch (c) {
        case 'h': rs_audit_help(stdout); return RS_EXIT_OK;
        case 1000: json = 1; break;
        case 'e': entity = optarg; break;
        case 1001: since = optarg; break;
        case 'n': limit_s = optarg; break;
        case 1002: rescore = 1; break;
        case 1003: store = optarg; break;
        default: rs_audit_help(stderr); return RS_EXIT_USAGE;
        }
    }
    if (rs_cli_common_unused("audit", &co, RS_CLI_NO_BROKERS |
                                               RS_CLI_NO_GROUP))
        return RS_EXIT_USAGE;
    const char *event_id = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return rs_cli_usage_error("audit", "unexpected argument '%s'",
                                  argv[optind]);
    if (!event_id == !entity)
        return rs_cli_usage_error("audit", "give either EVENT_ID or --entity "
                                  "ID (see riskstream audit --help)");
    if (!entity && (since || limit_s))
        return rs_cli_usage_error("audit", "--since and --limit go with "
                                  "--entity");
    if (entity && rescore)
        return rs_cli_usage_error("audit", "--rescore takes one EVENT_ID, "
                                  "not --entity");
    if (store && !rescore)
        return rs_cli_usage_error("audit", "--store goes with --rescore");
    if (!co.log_level) rs_log_set_level(RS_LOG_WARN);
    int64_t since_ms = 0, since_dur = -1;
    if (since && rs_http_since_parse(since, rs_clock_wall_ms(), &since_ms))
        return rs_cli_usage_error("audit", "--since '%s': expected an ISO "
                                  "time, epoch s/ms or a duration like 7d",
                                  since);
    /* A duration counts back from the entity's newest event (event times
     * of a replay or a generated stream may be far from now). */
    if (since && strspn(since, "0123456789") != strlen(since) &&
        rs_duration_parse(since, &since_dur) != 0)
        since_dur = -1;
    long limit = RS_AUDIT_LIMIT_DEF;
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || end == limit_s || limit < 1 || limit > RS_AUDIT_LIMIT_MAX)
            return rs_cli_usage_error("audit", "--limit '%s': expected 1..%d",
                                      limit_s, RS_AUDIT_LIMIT_MAX);
    }

    rs_app_conf_t app;
    rs_gen_conf_t gconf; /* accepted in the file so one YAML serves all */
    char errstr[512];
    int rc = rs_cli_app_init("audit", &app, &gconf);
    if (rc != RS_EXIT_OK) return rc;
    rc = rs_cli_load_conf("audit", &app, &co);
    if (rc == RS_EXIT_OK && !app.redis.url[0])
        rc = rs_cli_usage_error("audit", "no Redis configured: pass --redis "
                                "redis://HOST:PORT or unix:///PATH, or set "
                                "redis.url");
    if (rc == RS_EXIT_OK &&
        rs_redis_conf_check(&app.redis, errstr, sizeof(errstr)) != RS_OK)
        rc = rs_cli_usage_error("audit", "%s", errstr);
    if (rc == RS_EXIT_OK && rescore && !store && !app.model.store_dir[0])
        rc = rs_cli_usage_error("audit", "--rescore needs the model store: "
                                "pass --store DIR or set model.store_dir");
    if (rc != RS_EXIT_OK) {
        rs_app_conf_destroy(&app);
        return rc;
    }
    rs_sink_redis_t *sink = rs_sink_redis_new(&app.redis, errstr,
                                              sizeof(errstr));
    if (!sink) {
        fprintf(stderr, "riskstream audit: %s\n", errstr);
        rs_app_conf_destroy(&app);
        return RS_EXIT_RUNTIME;
    }
    if (entity && since_dur >= 0) {
        int64_t newest = 0;
        rs_err_t e2 = rs_audit_newest(sink, entity, &app.redis, &newest);
        if (e2 == RS_OK) {
            char t1[64], a[256];
            since_ms = newest - since_dur;
            rs_time_fmt(newest, t1, sizeof(t1));
            fprintf(json ? stderr : stdout,
                    "--since %s: counted back from the newest event of "
                    "entity %s (%s), not from now; give an absolute time "
                    "(2026-11-22T10:00:00Z) for a wall-clock bound\n",
                    since, rs_audit_clean(entity, a, sizeof(a)), t1);
        } else if (e2 != RS_ERR_NOTFOUND) {
            rc = RS_EXIT_RUNTIME;
        } else {
            since_ms = 0; /* nothing there: the listing says so */
        }
    }
    if (rc == RS_EXIT_OK && entity)
        rc = rs_audit_entity(sink, entity, since_ms, (int)limit, json,
                             &app.redis);
    else if (rc == RS_EXIT_OK && rescore)
        rc = rs_audit_rescore(sink, event_id, json, &app,
                              store ? store : app.model.store_dir);
    else if (rc == RS_EXIT_OK)
        rc = rs_audit_one(sink, event_id, json, &app.redis);
    rs_sink_redis_destroy(sink);
    rs_app_conf_destroy(&app);
    return rc;
}
