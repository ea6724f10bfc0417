/* test_sinks_redis_rec.c -- the compact stored score record
 * (redis.record_format, scoring/sink_redis_rec.c) and what it costs Redis:
 *   - codec: for rich records (every field, float32 and other doubles,
 *     -0.0, NaN, infinities, escapes, invalid UTF-8, full counts) the JSON
 *     of the decoded record is byte for byte rs_score_to_json of the
 *     original; records it cannot hold are refused; every truncation and
 *     byte flip of a record decodes to an error or a record, never a crash;
 *   - against a real redis-server: the same records written compact and as
 *     JSON (two key prefixes) read back identically through get_score,
 *     mget and the `riskstream audit` command (report, --json, --entity),
 *     and equal to the JSON the scores topic gets; records written as JSON
 *     by an older version read back as they are;
 *   - counted, not timed: the commands (INFO commandstats) and the bytes
 *     Redis read (total_net_input_bytes) and holds (STRLEN) per event;
 *   - records made beforehand (rs_sink_redis_enqueue_recs, the service's
 *     path since its workers make them): a batch queued with them (some
 *     missing, one the compact form refuses, input logs) leaves Redis
 *     with the same keys, values, index members and scores as the same
 *     batch through rs_sink_redis_enqueue_json (the sink encoding each
 *     record); the bytes given are what is stored (compact), and
 *     record_format json stores the JSON whatever is given;
 *   - white box (sink_redis_int.h): the SET commands the builder writes
 *     (in one piece up to the value, then the value, then PX/NX) are
 *     byte for byte hiredis's redisFormatCommandArgv of their arguments,
 *     also written across the end of the ring (the writer's index kept
 *     without a division). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "scoring/sink.h"
#include "scoring/sink_redis_int.h" /* white box: rs_redis_build */
#include "tests/support/rs_test_redis.h"

#define BASE_MS 1700000000000LL

/* A record with every field set, varied by i. */
static void rich_score(int i, int entity, rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "tx-%06d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "card-%d", entity);
    sc->score = (float)(0.001 + (i % 997) / 1000.0);
    sc->decision = (rs_decision_t)(1 + i % 4);
    snprintf(sc->model_version, sizeof(sc->model_version), "seq-%d-abc", 3);
    sc->event_time_ms = BASE_MS + (int64_t)i * 61000;
    sc->scored_at_ms = sc->event_time_ms + 4 + i % 3;
    sc->latency_us = 800 + i;
    sc->flags = (uint32_t)(i % 3 == 0 ? RS_SCORE_FLAG_LATE : 0);
    sc->rul = i % 5 == 0 ? 3600000LL * (i % 50) : 0;
    sc->alert_score = i % 7 == 0 ? (double)(float)(sc->score + 0.25) : 0;
    rs_explanation_t *ex = &sc->explanation;
    ex->n_attended = 1 + i % RS_MAX_ATTEND;
    for (int k = 0; k < ex->n_attended; k++) {
        rs_attended_t *at = &ex->attended[k];
        snprintf(at->event_id, sizeof(at->event_id), "tx-%06d", i - k - 1);
        at->event_time_ms = sc->event_time_ms - 3600000LL * (k + 1);
        at->amount = (float)(12.5 * (k + 1) + i % 100 * 0.37);
        if (k % 2) snprintf(at->counterparty_id, sizeof(at->counterparty_id),
                            "merchant-%d", k * 7);
        at->weight = (float)(1.0 / (k + 2));
    }
    ex->n_contrib = RS_MAX_CONTRIB;
    for (int k = 0; k < ex->n_contrib; k++) {
        rs_contrib_t *fc = &ex->contrib[k];
        snprintf(fc->name, sizeof(fc->name), "feature_%d_z", k);
        fc->value = k == 3 ? 0.1 + i : (float)(k * 1.75 - 3);
        fc->contribution = (float)((k - 4) * 0.0123);
        snprintf(fc->text, sizeof(fc->text),
                 "amount %d x this card's mean \"usual\" \\ %s", k + 2,
                 k == 1 ? "caf\xc3\xa9" : "");
    }
    ex->n_experts = 3;
    for (int k = 0; k < 3; k++) {
        ex->experts[k].expert = (uint32_t)(k * 2 + i % 2);
        ex->experts[k].gate_weight = (float)(0.5 / (k + 1));
    }
    ex->n_reasons = 2;
    snprintf(ex->reasons[0], RS_REASON_MAX, "amount %.2f, line\nbreak\t%d",
             12.5, i);
    snprintf(ex->reasons[1], RS_REASON_MAX, "new counterparty");
    rs_event_fields_t *ef = &sc->event;
    ef->present = i % 11 != 0;
    snprintf(ef->type, sizeof(ef->type), "purchase");
    snprintf(ef->counterparty_id, sizeof(ef->counterparty_id), "m-%d", i % 40);
    ef->amount = 19.99 + i; /* a double that is not a float32 */
    ef->n_numeric = 2;
    snprintf(ef->numeric[0].name, RS_NAME_MAX, "temperature");
    ef->numeric[0].value = 71.5;
    snprintf(ef->numeric[1].name, RS_NAME_MAX, "ratio");
    ef->numeric[1].value = 1.0 / 3.0;
    ef->n_categ = 1;
    snprintf(ef->categ[0].name, RS_NAME_MAX, "country");
    snprintf(ef->categ[0].value, RS_CATVAL_MAX, "FR");
}

static int json_of(const rs_score_t *sc, char *buf) {
    int n = rs_score_to_json(sc, buf, RS_ENCODE_MAX);
    assert_true(n > 0);
    return n;
}

/* encode -> rs_redis_rec_json == rs_score_to_json, byte for byte. */
static void assert_same_json(const rs_score_t *sc) {
    static uint8_t rec[RS_REDIS_REC_MAX];
    static char want[RS_ENCODE_MAX], got[RS_ENCODE_MAX];
    static rs_score_t scratch;
    char errstr[256];
    size_t jl;
    int wl = json_of(sc, want);
    int n = rs_redis_rec_encode(sc, rec, sizeof(rec));
    assert_true(n > 0);
    assert_int_equal(rec[0], RS_REDIS_REC_MAGIC);
    assert_int_equal(rs_redis_rec_json(rec, (size_t)n, &scratch, got,
                                       sizeof(got), &jl, errstr,
                                       sizeof(errstr)), RS_OK);
    assert_int_equal(jl, (size_t)wl);
    assert_memory_equal(got, want, jl);
    assert_int_equal(got[jl], '\0');
}

static void test_rec_codec(void **state) {
    (void)state;
    static rs_score_t sc;
    static uint8_t rec[RS_REDIS_REC_MAX];
    static char json[RS_ENCODE_MAX];
    size_t rec_total = 0, json_total = 0;
    for (int i = 0; i < 200; i++) {
        rich_score(i, i % 13, &sc);
        assert_same_json(&sc);
        rec_total += (size_t)rs_redis_rec_encode(&sc, rec, sizeof(rec));
        json_total += (size_t)json_of(&sc, json);
    }
    /* the point of it: well under half the JSON's bytes */
    printf("compact %.0f B, JSON %.0f B per record (%.0f %%)\n",
           (double)rec_total / 200, (double)json_total / 200,
           100.0 * (double)rec_total / (double)json_total);
    assert_true(rec_total * 2 < json_total);

    /* doubles of every kind, and values at the edges */
    rich_score(5, 1, &sc);
    const double odd[] = {-0.0, NAN, -NAN, INFINITY, -INFINITY, 1e300,
                          -1e-300, 5e-324, 3.4028234663852886e38, 0.1,
                          (double)(float)0.1, 16777217.0, -2.5};
    for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
        sc.score = odd[k];
        sc.alert_score = odd[k];
        sc.explanation.attended[0].amount = odd[k];
        sc.explanation.contrib[2].contribution = odd[k];
        sc.explanation.experts[1].gate_weight = odd[k];
        sc.event.amount = odd[k];
        sc.event.numeric[1].value = odd[k];
        assert_same_json(&sc);
    }
    /* integers at the edges, attended events after the event */
    rich_score(6, 1, &sc);
    sc.event_time_ms = INT64_MIN;
    sc.scored_at_ms = INT64_MAX;
    sc.latency_us = -1;
    sc.rul = INT64_MAX;
    sc.flags = UINT32_MAX;
    sc.explanation.attended[0].event_time_ms = INT64_MAX;
    sc.explanation.experts[0].expert = UINT32_MAX;
    assert_same_json(&sc);
    /* strings: invalid UTF-8, control bytes, longest that fit, empty */
    rich_score(7, 1, &sc);
    memset(sc.event_id, 'x', sizeof(sc.event_id) - 1);
    sc.event_id[sizeof(sc.event_id) - 1] = '\0';
    snprintf(sc.entity_id, sizeof(sc.entity_id), "bad\xff\xfe utf8 \x01\x1f");
    sc.model_version[0] = '\0';
    memset(sc.explanation.reasons[0], 'r', RS_REASON_MAX - 1);
    sc.explanation.reasons[0][RS_REASON_MAX - 1] = '\0';
    sc.event.n_numeric = RS_MAX_NUMERIC;
    sc.event.n_categ = RS_MAX_CATEG;
    for (int k = 0; k < RS_MAX_CATEG; k++) {
        snprintf(sc.event.numeric[k].name, RS_NAME_MAX, "n%d", k);
        snprintf(sc.event.categ[k].name, RS_NAME_MAX, "c%d", k);
        memset(sc.event.categ[k].value, 'v', RS_CATVAL_MAX - 1);
        sc.event.categ[k].value[RS_CATVAL_MAX - 1] = '\0';
    }
    assert_same_json(&sc);
    /* nothing at all */
    memset(&sc, 0, sizeof(sc));
    assert_same_json(&sc);

    /* refused: the writer stores the JSON instead */
    rich_score(8, 1, &sc);
    memset(sc.entity_id, 'e', sizeof(sc.entity_id)); /* no NUL */
    assert_int_equal(rs_redis_rec_encode(&sc, rec, sizeof(rec)), -1);
    rich_score(8, 1, &sc);
    sc.explanation.n_contrib = RS_MAX_CONTRIB + 1;
    assert_int_equal(rs_redis_rec_encode(&sc, rec, sizeof(rec)), -1);
    rich_score(8, 1, &sc);
    sc.decision = (rs_decision_t)9;
    assert_int_equal(rs_redis_rec_encode(&sc, rec, sizeof(rec)), -1);
    rich_score(8, 1, &sc);
    int n = rs_redis_rec_encode(&sc, rec, sizeof(rec));
    assert_true(n > 0);
    assert_int_equal(rs_redis_rec_encode(&sc, rec, (size_t)n - 1), -1);
}

/* Damaged records: an error (or some record), never a crash or a read
 * past the end (ASan/UBSan builds run this too). */
static void test_rec_damaged(void **state) {
    (void)state;
    static rs_score_t sc, back;
    static uint8_t rec[RS_REDIS_REC_MAX], bad[RS_REDIS_REC_MAX];
    static char json[RS_ENCODE_MAX];
    char errstr[256];
    size_t jl;
    rich_score(42, 3, &sc);
    int n = rs_redis_rec_encode(&sc, rec, sizeof(rec));
    assert_true(n > 0);
    for (int len = 0; len < n; len++) { /* every truncation */
        memcpy(bad, rec, (size_t)len);
        assert_int_equal(rs_redis_rec_decode(bad, (size_t)len, &back, errstr,
                                             sizeof(errstr)),
                         RS_ERR_INVALID);
    }
    bad[n] = 0;
    memcpy(bad, rec, (size_t)n);
    assert_int_equal(rs_redis_rec_decode(bad, (size_t)n + 1, &back, errstr,
                                         sizeof(errstr)), RS_ERR_INVALID);
    assert_non_null(strstr(errstr, "trailing"));
    unsigned seed = 7;
    for (int t = 0; t < 20000; t++) { /* flipped bytes */
        memcpy(bad, rec, (size_t)n);
        for (int k = 0; k < 1 + t % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            bad[1 + (seed >> 8) % (unsigned)(n - 1)] ^=
                (uint8_t)(1u << ((seed >> 4) % 8));
        }
        rs_err_t err = rs_redis_rec_json(bad, (size_t)n, &back, json,
                                         sizeof(json), &jl, errstr,
                                         sizeof(errstr));
        assert_true(err == RS_OK || err == RS_ERR_INVALID ||
                    err == RS_ERR_TOOBIG);
    }
    /* JSON values pass as they are; too small a buffer is TOOBIG */
    assert_int_equal(rs_redis_rec_json("{\"a\":1}", 7, NULL, json, 8, &jl,
                                       errstr, sizeof(errstr)), RS_OK);
    assert_string_equal(json, "{\"a\":1}");
    assert_int_equal(rs_redis_rec_json("{\"a\":1}", 7, NULL, json, 7, &jl,
                                       errstr, sizeof(errstr)),
                     RS_ERR_TOOBIG);
    assert_int_equal(rs_redis_rec_json(rec, (size_t)n, NULL, json, 100, &jl,
                                       errstr, sizeof(errstr)),
                     RS_ERR_TOOBIG);
}

/* ------------------------------------------------------- against Redis */

static rs_sink_redis_t *sink_on(rs_test_redis_t *r, const char *prefix,
                                int format) {
    rs_redis_conf_t conf;
    char errstr[512];
    rs_redis_conf_init(&conf);
    assert_int_equal(conf.record_format, RS_REDIS_RECORD_COMPACT); /* default */
    snprintf(conf.url, sizeof(conf.url), "%s", rs_test_redis_url(r));
    snprintf(conf.key_prefix, sizeof(conf.key_prefix), "%s", prefix);
    conf.record_format = format;
    rs_sink_redis_t *sink = rs_sink_redis_new(&conf, errstr, sizeof(errstr));
    if (!sink) fprintf(stderr, "rs_sink_redis_new: %s\n", errstr);
    assert_non_null(sink);
    return sink;
}

static long long info_field(redisContext *c, const char *section,
                            const char *field) {
    redisReply *rep = redisCommand(c, "INFO %s", section);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    const char *p = strstr(rep->str, field);
    long long v = -1;
    if (p) {
        p += strlen(field);
        if (*p == ':') v = atoll(p + 1);
        else if (*p == '=') v = atoll(p + 1);
    }
    freeReplyObject(rep);
    return v;
}

/* calls of one command since the last CONFIG RESETSTAT */
static long long cmd_calls(redisContext *c, const char *cmd) {
    char f[64];
    snprintf(f, sizeof(f), "cmdstat_%s:calls", cmd);
    long long v = info_field(c, "commandstats", f);
    return v < 0 ? 0 : v;
}

#define NREC 120
#define NENT 30

typedef struct acc_s {
    int n;
    char *v[NREC];
    size_t len[NREC];
} acc_t;

static void acc_cb(void *opaque, int i, const char *val, size_t len) {
    acc_t *a = opaque;
    assert_int_equal(i, a->n);
    a->v[i] = val ? strndup(val, len) : NULL;
    a->len[i] = len;
    a->n++;
}

/* `riskstream audit ARGS --redis URL --set redis.key_prefix=P` stdout, or
 * NULL when the binary is not there (built without the CLI). */
static char *audit_out(rs_test_redis_t *r, const char *prefix,
                       const char *args) {
    const char *bd = getenv("RS_BINARY_DIR");
    char cmd[1024], path[512];
    if (!bd) return NULL;
    snprintf(path, sizeof(path), "%s/riskstream", bd);
    FILE *t = fopen(path, "r");
    if (!t) return NULL;
    fclose(t);
    snprintf(cmd, sizeof(cmd),
             "LC_ALL=C.UTF-8 '%s' audit %s --redis '%s' --set "
             "redis.key_prefix=%s 2>&1", path, args, rs_test_redis_url(r),
             prefix);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t k; (k = fread(buf + n, 1, cap - 1 - n, p)) > 0;) n += k;
    buf[n] = '\0';
    int rc = pclose(p);
    assert_int_equal(rc, 0);
    return buf;
}

/* The same records written compact (prefix c:) and as JSON (prefix j:, what
 * the previous version stored): every read returns the same bytes, the
 * JSON the scores topic gets; the audit command prints the same. */
static void test_rec_reads_unchanged(void **state) {
    (void)state;
    static rs_score_t sc[NREC];
    static char want[RS_ENCODE_MAX], got[RS_ENCODE_MAX], got2[RS_ENCODE_MAX];
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    assert_non_null(r);
    rs_sink_redis_t *cs = sink_on(r, "c:", RS_REDIS_RECORD_COMPACT),
                    *js = sink_on(r, "j:", RS_REDIS_RECORD_JSON);
    redisContext *c = redisConnectUnix(rs_test_redis_socket(r));
    assert_non_null(c);
    for (int i = 0; i < NREC; i++) rich_score(i, i % NENT, &sc[i]);
    assert_int_equal(rs_sink_redis_write(cs, sc, NREC, errstr,
                                         sizeof(errstr)), RS_OK);
    assert_int_equal(rs_sink_redis_write(js, sc, NREC, errstr,
                                         sizeof(errstr)), RS_OK);
    /* an older version's record (JSON stored by hand) under c: too */
    int wl = json_of(&sc[0], want);
    freeReplyObject(redisCommand(c, "DEL c:score:old-1"));
    freeReplyObject(redisCommand(c, "SET c:score:old-1 %b", want,
                                 (size_t)wl));

    const char *ids[NREC];
    for (int i = 0; i < NREC; i++) {
        ids[i] = sc[i].event_id;
        wl = json_of(&sc[i], want);
        assert_int_equal(rs_sink_redis_get_score(cs, ids[i], got, sizeof(got),
                                                 errstr, sizeof(errstr)),
                         RS_OK);
        assert_int_equal(rs_sink_redis_get_score(js, ids[i], got2,
                                                 sizeof(got2), errstr,
                                                 sizeof(errstr)), RS_OK);
        assert_string_equal(got, want);
        assert_string_equal(got2, want);
        assert_int_equal(strlen(got), (size_t)wl);
        /* stored compact under c:, as the JSON under j: */
        redisReply *rep = redisCommand(c, "GET c:score:%s", ids[i]);
        assert_int_equal(rep->type, REDIS_REPLY_STRING);
        assert_int_equal((unsigned char)rep->str[0], RS_REDIS_REC_MAGIC);
        freeReplyObject(rep);
        rep = redisCommand(c, "GET j:score:%s", ids[i]);
        assert_int_equal(rep->type, REDIS_REPLY_STRING);
        assert_int_equal((size_t)rep->len, (size_t)wl);
        assert_memory_equal(rep->str, want, (size_t)wl);
        freeReplyObject(rep);
    }
    assert_int_equal(rs_sink_redis_get_score(cs, "old-1", got, sizeof(got),
                                             errstr, sizeof(errstr)), RS_OK);
    wl = json_of(&sc[0], want);
    assert_string_equal(got, want);

    /* MGET (the HTTP API's pages): the same values, absent ones NULL */
    acc_t a = {0}, b = {0};
    ids[7] = "never-scored";
    assert_int_equal(rs_sink_redis_mget(cs, RS_REDIS_SCORE, ids, NREC,
                                        acc_cb, &a, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(rs_sink_redis_mget(js, RS_REDIS_SCORE, ids, NREC,
                                        acc_cb, &b, errstr, sizeof(errstr)),
                     RS_OK);
    assert_int_equal(a.n, NREC);
    assert_int_equal(b.n, NREC);
    for (int i = 0; i < NREC; i++) {
        if (i == 7) {
            assert_null(a.v[i]);
            assert_null(b.v[i]);
            continue;
        }
        wl = json_of(&sc[i], want);
        assert_int_equal(a.len[i], (size_t)wl);
        assert_int_equal(b.len[i], (size_t)wl);
        assert_memory_equal(a.v[i], want, (size_t)wl);
        assert_memory_equal(b.v[i], want, (size_t)wl);
        free(a.v[i]);
        free(b.v[i]);
    }

    /* the audit command: report, --json, --entity, byte for byte */
    const char *runs[] = {"tx-000005", "tx-000006 --json", "tx-000077",
                          "--entity card-5 --since 36500d",
                          "--entity card-5 --since 36500d --json"};
    for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
        char *oc = audit_out(r, "c:", runs[k]), *oj = audit_out(r, "j:",
                                                                runs[k]);
        if (!oc) {
            printf("audit command not built: skipped\n");
            break;
        }
        assert_true(strlen(oc) > 200);
        assert_string_equal(oc, oj);
        free(oc);
        free(oj);
    }

    redisFree(c);
    rs_sink_redis_destroy(cs);
    rs_sink_redis_destroy(js);
    rs_test_redis_destroy(r);
}

/* Counted: commands and bytes per event of one batch through the writer
 * thread (the service's path), compact against JSON records. */
static void run_batch(rs_test_redis_t *r, int format, const char *prefix,
                      const rs_score_t *sc, long long *cmds, long long *in,
                      long long *stored) {
    static char jbuf[NREC][RS_ENCODE_MAX];
    static const char *json[NREC];
    static size_t lens[NREC];
    char errstr[512];
    rs_sink_redis_t *sink = sink_on(r, prefix, format);
    redisContext *c = redisConnectUnix(rs_test_redis_socket(r));
    assert_non_null(c);
    for (int i = 0; i < NREC; i++) {
        lens[i] = (size_t)json_of(&sc[i], jbuf[i]);
        json[i] = jbuf[i];
    }
    rs_sink_redis_start(sink);
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    long long in0 = info_field(c, "stats", "total_net_input_bytes");
    assert_int_equal(rs_sink_redis_enqueue_json(sink, sc, NREC, json, lens,
                                                NULL, NULL, 1), RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 30000), RS_OK);
    /* the bytes of this batch: the INFO / CONFIG commands' own are on
     * this connection, read before and after */
    *in = info_field(c, "stats", "total_net_input_bytes") - in0;
    *cmds = cmd_calls(c, "set") + cmd_calls(c, "zadd") +
            cmd_calls(c, "pexpire") + cmd_calls(c, "zremrangebyrank");
    assert_int_equal(cmd_calls(c, "set"), NREC);
    *stored = 0;
    for (int i = 0; i < NREC; i++) {
        redisReply *rep = redisCommand(c, "STRLEN %sscore:%s", prefix,
                                       sc[i].event_id);
        *stored += rep->integer;
        freeReplyObject(rep);
    }
    redisFree(c);
    rs_sink_redis_destroy(sink);
    (void)errstr;
}

static void test_rec_cost_counted(void **state) {
    (void)state;
    static rs_score_t sc[NREC];
    static char jb[RS_ENCODE_MAX];
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    assert_non_null(r);
    long long json_bytes = 0;
    int alerts = 0;
    for (int i = 0; i < NREC; i++) {
        rich_score(i, i % NENT, &sc[i]);
        json_bytes += json_of(&sc[i], jb);
        alerts += sc[i].decision != RS_DECISION_APPROVE;
    }
    assert_true(alerts > 0);
    long long cc, ci, cst, jc, ji, jst;
    run_batch(r, RS_REDIS_RECORD_COMPACT, "c:", sc, &cc, &ci, &cst);
    run_batch(r, RS_REDIS_RECORD_JSON, "j:", sc, &jc, &ji, &jst);
    printf("per event: compact %.2f commands, %.0f B read by Redis, %.0f B "
           "stored; JSON %.2f commands, %.0f B read, %.0f B stored\n",
           (double)cc / NREC, (double)ci / NREC, (double)cst / NREC,
           (double)jc / NREC, (double)ji / NREC, (double)jst / NREC);
    /* one SET per score, three commands per entity and per alert batch */
    assert_int_equal(cc, NREC + 3 * NENT + 3);
    assert_int_equal(jc, cc);
    /* the JSON as stored before; the compact record under half of it, and
     * Redis reads at least the difference less */
    assert_int_equal(jst, json_bytes);
    assert_true(cst * 2 < json_bytes);
    assert_true(ci + (jst - cst) <= ji + NREC);
    assert_true(ci * 10 < ji * 6);
    rs_test_redis_destroy(r);
}

/* Every key under `pa` and its twin under `pb`: same type, and the same
 * value (strings) or members with scores (sorted sets), both with an
 * expiry.  Returns the number of keys compared. */
static int same_keys(redisContext *c, const char *pa, const char *pb) {
    redisReply *keys = redisCommand(c, "KEYS %s*", pa);
    assert_non_null(keys);
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    redisReply *kb = redisCommand(c, "KEYS %s*", pb);
    assert_int_equal(kb->elements, keys->elements);
    freeReplyObject(kb);
    size_t pl = strlen(pa);
    for (size_t k = 0; k < keys->elements; k++) {
        const char *ka = keys->element[k]->str;
        char kbn[512];
        snprintf(kbn, sizeof(kbn), "%s%s", pb, ka + pl);
        redisReply *ta = redisCommand(c, "TYPE %s", ka),
                   *tb = redisCommand(c, "TYPE %s", kbn);
        assert_string_equal(ta->str, tb->str);
        redisReply *va, *vb;
        if (!strcmp(ta->str, "string")) {
            va = redisCommand(c, "GET %s", ka);
            vb = redisCommand(c, "GET %s", kbn);
            assert_int_equal(va->len, vb->len);
            assert_memory_equal(va->str, vb->str, va->len);
        } else {
            assert_string_equal(ta->str, "zset");
            va = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", ka);
            vb = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", kbn);
            assert_int_equal(va->elements, vb->elements);
            assert_true(va->elements > 0);
            for (size_t j = 0; j < va->elements; j++)
                assert_string_equal(va->element[j]->str,
                                    vb->element[j]->str);
        }
        freeReplyObject(va);
        freeReplyObject(vb);
        redisReply *xa = redisCommand(c, "PTTL %s", ka),
                   *xb = redisCommand(c, "PTTL %s", kbn);
        assert_true(xa->integer > 0 && xb->integer > 0);
        freeReplyObject(xa);
        freeReplyObject(xb);
        freeReplyObject(ta);
        freeReplyObject(tb);
    }
    int n = (int)keys->elements;
    freeReplyObject(keys);
    return n;
}

/* One batch through the writer: enqueue_recs when recs, else
 * enqueue_json. */
static void queue_one(rs_sink_redis_t *sink, const rs_score_t *sc,
                      const char *const *json, const size_t *lens,
                      const void *const *recs, const size_t *rec_lens,
                      const void *const *logs, const size_t *log_lens) {
    rs_err_t err =
        recs ? rs_sink_redis_enqueue_recs(sink, sc, NREC, json, lens, recs,
                                          rec_lens, logs, log_lens, 1)
             : rs_sink_redis_enqueue_json(sink, sc, NREC, json, lens, logs,
                                          log_lens, 1);
    assert_int_equal(err, RS_OK);
    assert_int_equal(rs_sink_redis_wait(sink, 1, 30000), RS_OK);
}

static void test_recs_stored(void **state) {
    (void)state;
    static rs_score_t sc[NREC];
    static char jbuf[NREC][RS_ENCODE_MAX], lbuf[NREC][32];
    static uint8_t rbuf[NREC][RS_REDIS_REC_MAX];
    static const char *json[NREC];
    static const void *recs[NREC], *logs[NREC];
    static size_t lens[NREC], rec_lens[NREC], log_lens[NREC];
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    assert_non_null(r);
    int refused = 0, given = 0;
    for (int i = 0; i < NREC; i++) {
        rich_score(i, i % NENT, &sc[i]);
        if (i == 17) /* a string without NUL: the compact form refuses */
            memset(sc[i].explanation.reasons[1], 'r', RS_REASON_MAX);
        lens[i] = (size_t)json_of(&sc[i], jbuf[i]);
        json[i] = jbuf[i];
        int cl = rs_redis_rec_encode(&sc[i], rbuf[i], RS_REDIS_REC_MAX);
        refused += cl < 0;
        /* every fourth not given: the sink encodes it (a duplicate's) */
        recs[i] = cl >= 0 && i % 4 ? rbuf[i] : NULL;
        rec_lens[i] = cl >= 0 ? (size_t)cl : 0;
        given += recs[i] != NULL;
        logs[i] = i % 3 ? NULL : lbuf[i];
        log_lens[i] = (size_t)snprintf(lbuf[i], sizeof(lbuf[i]),
                                       "input-%d", i);
    }
    assert_int_equal(refused, 1);
    assert_true(given > NREC / 2);
    redisContext *c = redisConnectUnix(rs_test_redis_socket(r));
    assert_non_null(c);

    /* compact: the sink's own encoding against the records given */
    rs_sink_redis_t *a = sink_on(r, "a:", RS_REDIS_RECORD_COMPACT),
                    *b = sink_on(r, "b:", RS_REDIS_RECORD_COMPACT);
    queue_one(a, sc, json, lens, NULL, NULL, logs, log_lens);
    queue_one(b, sc, json, lens, recs, rec_lens, logs, log_lens);
    int nk = same_keys(c, "a:", "b:");
    /* records, inputs, entity indexes, the alert index */
    assert_int_equal(nk, NREC + (NREC + 2) / 3 + NENT + 1);
    redisReply *v = redisCommand(c, "GET a:score:%s", sc[17].event_id);
    assert_int_equal(v->len, lens[17]); /* refused: stored as JSON */
    assert_memory_equal(v->str, jbuf[17], lens[17]);
    freeReplyObject(v);
    v = redisCommand(c, "GET b:score:%s", sc[5].event_id);
    assert_int_equal(v->str[0], RS_REDIS_REC_MAGIC);
    freeReplyObject(v);

    /* record_format json: the JSON, whatever records are given */
    rs_sink_redis_t *ja = sink_on(r, "ja:", RS_REDIS_RECORD_JSON),
                    *jb = sink_on(r, "jb:", RS_REDIS_RECORD_JSON);
    queue_one(ja, sc, json, lens, NULL, NULL, logs, log_lens);
    queue_one(jb, sc, json, lens, recs, rec_lens, logs, log_lens);
    assert_int_equal(same_keys(c, "ja:", "jb:"), nk);
    v = redisCommand(c, "GET jb:score:%s", sc[5].event_id);
    assert_int_equal(v->len, lens[5]);
    assert_memory_equal(v->str, jbuf[5], lens[5]);
    freeReplyObject(v);

    /* the bytes given are the bytes stored (not encoded again): record 5
     * given as record 6's */
    rs_sink_redis_t *x = sink_on(r, "x:", RS_REDIS_RECORD_COMPACT);
    recs[5] = rbuf[6];
    rec_lens[5] = rec_lens[6];
    queue_one(x, sc, json, lens, recs, rec_lens, NULL, NULL);
    v = redisCommand(c, "GET x:score:%s", sc[5].event_id);
    assert_int_equal(v->len, rec_lens[6]);
    assert_memory_equal(v->str, rbuf[6], rec_lens[6]);
    freeReplyObject(v);
    assert_int_equal(rs_sink_redis_enqueue_recs(x, sc, NREC, json, lens,
                                                recs, NULL, NULL, NULL, 2),
                     RS_ERR_INVALID);

    redisFree(c);
    rs_sink_redis_destroy(a);
    rs_sink_redis_destroy(b);
    rs_sink_redis_destroy(ja);
    rs_sink_redis_destroy(jb);
    rs_sink_redis_destroy(x);
    rs_test_redis_destroy(r);
}

/* Append hiredis's RESP of argv[0..argc) to *out (grown). */
static void resp_ref(char **out, size_t *len, int argc, const char **argv,
                     const size_t *argl) {
    char *cmd;
    int n = redisFormatCommandArgv(&cmd, argc, argv, argl);
    assert_true(n > 0);
    *out = realloc(*out, *len + (size_t)n);
    memcpy(*out + *len, cmd, (size_t)n);
    *len += (size_t)n;
    redisFreeCommand(cmd);
}

static void test_set_resp(void **state) {
    (void)state;
    static rs_score_t sc[NREC];
    static char jbuf[NREC][RS_ENCODE_MAX], lbuf[NREC][32];
    static uint8_t rbuf[NREC][RS_REDIS_REC_MAX];
    static const char *json[NREC];
    static const void *recs[NREC], *logs[NREC];
    static size_t lens[NREC], rec_lens[NREC], log_lens[NREC];
    char errstr[512];
    rs_test_redis_t *r = rs_test_redis_start(NULL, errstr, sizeof(errstr));
    assert_non_null(r);
    rs_sink_redis_t *sink = sink_on(r, "pre:", RS_REDIS_RECORD_COMPACT);
    char *want = NULL;
    size_t wlen = 0;
    for (int i = 0; i < NREC; i++) {
        rich_score(i, i % NENT, &sc[i]);
        if (i == 17) memset(sc[i].explanation.reasons[1], 'r', RS_REASON_MAX);
        lens[i] = (size_t)json_of(&sc[i], jbuf[i]);
        json[i] = jbuf[i];
        int cl = rs_redis_rec_encode(&sc[i], rbuf[i], RS_REDIS_REC_MAX);
        recs[i] = cl >= 0 && i % 4 ? rbuf[i] : NULL;
        rec_lens[i] = cl >= 0 ? (size_t)cl : 0;
        logs[i] = i % 3 ? NULL : lbuf[i];
        log_lens[i] = (size_t)snprintf(lbuf[i], sizeof(lbuf[i]), "in\r\n%d",
                                       i);
        char key[RS_ID_MAX + 16], ikey[RS_ID_MAX + 16];
        size_t idl = strlen(sc[i].event_id);
        memcpy(key, "pre:score:", 10);
        memcpy(key + 10, sc[i].event_id, idl + 1);
        memcpy(ikey, "pre:input:", 10);
        memcpy(ikey + 10, sc[i].event_id, idl + 1);
        const char *a[] = {"SET", key, cl >= 0 ? (const char *)rbuf[i]
                                               : jbuf[i],
                           "PX", "604800000", "NX"};
        size_t al[] = {3, strlen(key), cl >= 0 ? (size_t)cl : lens[i], 2, 9,
                       2};
        resp_ref(&want, &wlen, 6, a, al);
        if (logs[i]) {
            a[1] = ikey;
            al[1] = strlen(ikey);
            a[2] = lbuf[i];
            al[2] = log_lens[i];
            resp_ref(&want, &wlen, 6, a, al);
        }
    }
    /* linear, then across the ring's end at every few bytes' offset */
    uint32_t nc = 0, ni = 0, tc = 0;
    uint64_t tb = 0;
    rs_ring_w_t w;
    rs_redis_plan(sink, sc, NREC, 0, 0);
    rs_ring_w_linear(&w, NULL, 0);
    rs_redis_build(sink, &w, sc, NREC, json, lens, recs, rec_lens, logs,
                   log_lens, &nc, &ni, &tc, &tb);
    size_t need = (size_t)rs_ring_w_pos(&w);
    assert_true(need > wlen);
    unsigned char *lin = malloc(need), *ring = malloc(need + 1000);
    rs_ring_w_linear(&w, lin, need);
    nc = ni = tc = 0;
    rs_redis_build(sink, &w, sc, NREC, json, lens, recs, rec_lens, logs,
                   log_lens, &nc, &ni, &tc, &tb);
    assert_int_equal(rs_ring_w_pos(&w), need);
    assert_memory_equal(lin, want, wlen); /* the SETs come first */
    assert_int_equal(ni, (NREC + 2) / 3);
    const uint64_t cap = need + 1000;
    for (uint64_t start = 3 * cap - 37 * 1000; start < 3 * cap;
         start += 997) {
        memset(ring, 0, cap);
        w = (rs_ring_w_t){.ring = ring, .cap = cap, .pos = start,
                          .limit = start + cap, .off = start % cap};
        rs_redis_build(sink, &w, sc, NREC, json, lens, recs, rec_lens, logs,
                       log_lens, &nc, &ni, &tc, &tb);
        assert_int_equal(w.pos - start, need);
        size_t off = (size_t)(start % cap), first = (size_t)(cap - off);
        if (first > need) first = need;
        assert_memory_equal(ring + off, lin, first);
        assert_memory_equal(ring, lin + first, need - first);
    }
    free(lin);
    free(ring);
    free(want);
    rs_sink_redis_destroy(sink);
    rs_test_redis_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rec_codec),
        cmocka_unit_test(test_rec_damaged),
        cmocka_unit_test(test_rec_reads_unchanged),
        cmocka_unit_test(test_rec_cost_counted),
        cmocka_unit_test(test_recs_stored),
        cmocka_unit_test(test_set_resp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
