/* bench_encode.c -- the per-event output path alone (not a test: prints
 * tables).  Old and new side by side in one run:
 *
 *  1. encoding a realistic score record (card model: 5 feature
 *     contributions with their words, 3 attended past events, 2 experts,
 *     2-3 reasons, the event's own fields): the encoder before common/fmt
 *     (legacy_json.c: printf/strtod for every double) vs rs_score_to_json
 *     vs rs_score_encode_batch (the service's path, 512 records a batch)
 *     vs protobuf, and the compact Redis record (rs_redis_rec_encode);
 *  2. decoding: the event and label JSON decoders before (jansson, kept as
 *     rs_event_from_json_jansson) and now (streaming, proto_jsonr.c), the
 *     score record decoder, and strtod vs rs_parse_f64 on typical numbers;
 *  3. Redis, against a private redis-server this program starts on a unix
 *     socket in a temp dir: the old command layout (per event SET NX with
 *     the old JSON, ZADD, PEXPIRE, ZREMRANGEBYRANK, and ZADD, PEXPIRE,
 *     ZREMRANGEBYRANK of the alert index per review/decline/alert;
 *     pipelined per batch as the old rs_sink_redis_write did) vs
 *     rs_sink_redis_write_json (same pipelining, new layout and JSON) vs
 *     rs_sink_redis_enqueue_json (the service's async writer).  Commands
 *     and bytes per event from the server's INFO, server CPU per event
 *     from /proc, writes/s.
 *
 * usage: bench_encode [--records N] [--events N] [--entities N]
 *                     [--batch N] [--no-redis]
 * CPU figures are thread/process CPU time, so they hold on a busy machine;
 * writes/s are wall-clock and do not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/fmt.h"
#include "proto/proto.h"
#include "proto/proto_int.h" /* the jansson decoders, for "before" */
#include "scoring/sink.h"

extern char **environ;
int legacy_score_to_json(const rs_score_t *sc, char *buf, size_t size);

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void) { return (double)rs_clock_mono_ns() / 1e9; }

static double cpu_s(void) { /* this thread */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double proc_cpu_s(void) { /* this process, all threads */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void machine(char *buf, size_t size) {
    char model[256] = "unknown CPU";
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (fp) {
        char line[512];
        while (fgets(line, sizeof(line), fp))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof(model), "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        fclose(fp);
    }
    struct utsname u;
    uname(&u);
    double la[3] = {0};
    getloadavg(la, 3);
    snprintf(buf, size, "%s, %ld cores, %s %s, load average %.2f", model,
             sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, la[0]);
}

/* ------------------------------------------------------------ records */

static const char *const feat_names[] = {
    "amount_ratio_30d", "tx_count_1h", "amount_zscore_7d", "distinct_cpty_1d",
    "time_since_last", "cpty_fraud_rate_30d", "amount_mean_1d", "velocity_10m",
    "mcc_fraud_rate_7d", "country_distinct_7d"};
/* The words of each feature, as rs_features_reason writes them. */
static const char *const feat_txt[] = {
    "amount 8.3 times this card's usual amount over 30 days",
    "7 payments by this card in the last 1 hour (usually 0.4)",
    "amount 4.1 standard deviations above this card's 7-day mean",
    "5 different merchants for this card in the last 1 day (usually 1.2)",
    "2 minutes since this card's previous payment (usually 3.5 days)",
    "this merchant's fraud rate over 30 days ending 7 days ago: 4.1% "
    "(usually 0.2%)",
    "average amount 212.40 for this card over the last 1 day (usually 38.10)",
    "4 payments by this card in the last 10 minutes (usually 0.1)",
    "this merchant category's fraud rate over 7 days: 1.3% (usually 0.2%)",
    "3 different countries for this card in the last 7 days (usually 1)"};
static const char *const mcc_txt[] = {"5411", "5812", "5999", "5944", "4829"};

static float frand(rs_rng_t *rng) { return (float)rs_rng_uniform(rng); }

/* A score record as the service writes it with explanations on. */
static void make_score(rs_rng_t *rng, int i, const char *entity, int64_t t,
                       rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "tx-%010d", i);
    snprintf(sc->entity_id, sizeof(sc->entity_id), "%s", entity);
    sc->score = frand(rng) * frand(rng);
    sc->decision = sc->score >= 0.9f   ? RS_DECISION_DECLINE
                   : sc->score >= 0.5f ? RS_DECISION_REVIEW
                                       : RS_DECISION_APPROVE;
    snprintf(sc->model_version, sizeof(sc->model_version), "seq-5006c1d3-41");
    sc->event_time_ms = t;
    sc->scored_at_ms = 1767225600000LL + i;
    sc->latency_us = 150 + (int64_t)rs_rng_below(rng, 5000);
    rs_explanation_t *ex = &sc->explanation;
    ex->n_contrib = 5;
    for (int k = 0; k < 5; k++) {
        rs_contrib_t *c = &ex->contrib[k];
        int f = (int)rs_rng_below(rng, 10);
        snprintf(c->name, sizeof(c->name), "%s", feat_names[f]);
        snprintf(c->text, sizeof(c->text), "%s", feat_txt[f]);
        c->value = (float)(frand(rng) * 100.0f);
        c->contribution = (float)((frand(rng) - 0.3f) * 0.8f);
    }
    ex->n_attended = 3;
    for (int k = 0; k < 3; k++) {
        rs_attended_t *a = &ex->attended[k];
        snprintf(a->event_id, sizeof(a->event_id), "tx-%010d",
                 i - 1 - (int)rs_rng_below(rng, 100000));
        a->event_time_ms = t - (int64_t)rs_rng_below(rng, 30LL * 86400000);
        a->amount = (float)((int)(frand(rng) * 50000) / 100.0);
        snprintf(a->counterparty_id, sizeof(a->counterparty_id),
                 "merchant-%05d", (int)rs_rng_below(rng, 20000));
        a->weight = frand(rng) * 0.5f;
    }
    ex->n_experts = 2;
    ex->experts[0].expert = (uint32_t)rs_rng_below(rng, 8);
    ex->experts[0].gate_weight = 0.5f + frand(rng) * 0.5f;
    ex->experts[1].expert = (uint32_t)rs_rng_below(rng, 8);
    ex->experts[1].gate_weight = 1.0f - (float)ex->experts[0].gate_weight;
    ex->n_reasons = 2 + (int)rs_rng_below(rng, 2);
    for (int k = 0; k < ex->n_reasons; k++) /* the words of contributions */
        snprintf(ex->reasons[k], RS_REASON_MAX, "%s", ex->contrib[k].text);
    /* The event's own fields (Score.event), as the service copies them. */
    rs_event_fields_t *ef = &sc->event;
    ef->present = 1;
    snprintf(ef->type, sizeof(ef->type), "card_tx");
    snprintf(ef->counterparty_id, sizeof(ef->counterparty_id),
             "merchant-%05d", (int)rs_rng_below(rng, 20000));
    ef->amount = (double)(int64_t)(rs_rng_uniform(rng) * 100000) / 100.0;
    ef->n_numeric = 2;
    snprintf(ef->numeric[0].name, RS_NAME_MAX, "hour_of_day");
    ef->numeric[0].value = (double)rs_rng_below(rng, 24);
    snprintf(ef->numeric[1].name, RS_NAME_MAX, "day_of_week");
    ef->numeric[1].value = (double)rs_rng_below(rng, 7);
    ef->n_categ = 3;
    snprintf(ef->categ[0].name, RS_NAME_MAX, "mcc");
    snprintf(ef->categ[0].value, RS_CATVAL_MAX, "%s",
             mcc_txt[rs_rng_below(rng, 5)]);
    snprintf(ef->categ[1].name, RS_NAME_MAX, "country");
    snprintf(ef->categ[1].value, RS_CATVAL_MAX, "%s",
             rs_rng_below(rng, 5) ? "FR" : "DE");
    snprintf(ef->categ[2].name, RS_NAME_MAX, "channel");
    snprintf(ef->categ[2].value, RS_CATVAL_MAX, "%s",
             rs_rng_below(rng, 3) ? "pos" : "online");
}

static int alerted(const rs_score_t *sc) {
    return sc->decision == RS_DECISION_REVIEW ||
           sc->decision == RS_DECISION_DECLINE ||
           sc->decision == RS_DECISION_ALERT;
}

static void make_event(rs_rng_t *rng, int i, rs_event_t *ev) {
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->id, sizeof(ev->id), "tx-%010d", i);
    snprintf(ev->type, sizeof(ev->type), "card_tx");
    snprintf(ev->entity_id, sizeof(ev->entity_id), "card-%05d",
             (int)rs_rng_below(rng, 10000));
    snprintf(ev->counterparty_id, sizeof(ev->counterparty_id),
             "merchant-%05d", (int)rs_rng_below(rng, 20000));
    ev->event_time_ms = 1767225600000LL + (int64_t)i * 37;
    ev->amount = (double)(int64_t)(rs_rng_uniform(rng) * 100000) / 100.0;
    ev->n_categ = 2;
    snprintf(ev->categ[0].name, RS_NAME_MAX, "mcc");
    snprintf(ev->categ[0].value, RS_CATVAL_MAX, "%d",
             5000 + (int)rs_rng_below(rng, 999));
    snprintf(ev->categ[1].name, RS_NAME_MAX, "country");
    snprintf(ev->categ[1].value, RS_CATVAL_MAX, "%s",
             rs_rng_below(rng, 5) ? "FR" : "DE");
}

/* ----------------------------------------------------------- encoding */

#define POOL 4096

typedef struct row_s {
    const char *what;
    double ns, bytes;
} row_t;

static void print_rows(const char *title, const row_t *r, int n,
                       const char *unit) {
    printf("\n%s\n\n| path | %s/s (one core) | ns/%s | bytes/%s |\n"
           "|---|---:|---:|---:|\n", title, unit, unit, unit);
    for (int i = 0; i < n; i++) {
        if (r[i].bytes > 0)
            printf("| %s | %.0f | %.0f | %.0f |\n", r[i].what, 1e9 / r[i].ns,
                   r[i].ns, r[i].bytes);
        else
            printf("| %s | %.0f | %.0f | - |\n", r[i].what, 1e9 / r[i].ns,
                   r[i].ns);
    }
}

static volatile size_t sink_bytes; /* keeps the loops from being elided */

static void bench_encoding(const rs_score_t *pool, long n) {
    static char buf[RS_ENCODE_MAX];
    row_t rows[5];
    double t0, b;
    size_t total;

    total = 0;
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        total += (size_t)legacy_score_to_json(&pool[i % POOL], buf, sizeof(buf));
    rows[0] = (row_t){"JSON before (printf %.15g..%.17g + strtod check)",
                      (cpu_s() - t0) * 1e9 / (double)n, (double)total / (double)n};
    sink_bytes += total;

    total = 0;
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        total += (size_t)rs_score_to_json(&pool[i % POOL], buf, sizeof(buf));
    rows[1] = (row_t){"JSON now (rs_score_to_json: common/fmt, float32 shortest)",
                      (cpu_s() - t0) * 1e9 / (double)n, (double)total / (double)n};
    sink_bytes += total;

    enum { B = 512 };
    static const void *out[B];
    static size_t lens[B];
    rs_enc_arena_t arena;
    rs_enc_arena_init(&arena, 0);
    total = 0;
    long done = 0;
    t0 = cpu_s();
    while (done < n) {
        int k = (int)((n - done) < B ? (n - done) : B);
        int off = (int)(done % (POOL - B));
        if (rs_score_encode_batch(RS_FORMAT_JSON, pool + off, k, &arena, out,
                                  lens, NULL) != RS_OK)
            abort();
        total += arena.len;
        done += k;
    }
    rows[2] = (row_t){"JSON now, batches of 512 (rs_score_encode_batch: the service)",
                      (cpu_s() - t0) * 1e9 / (double)n, (double)total / (double)n};
    rs_enc_arena_free(&arena);
    sink_bytes += total;

    total = 0;
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        total += (size_t)rs_score_to_pb(&pool[i % POOL], (uint8_t *)buf,
                                        sizeof(buf));
    b = (double)total / (double)n;
    rows[3] = (row_t){"protobuf (rs_score_to_pb, for reference)",
                      (cpu_s() - t0) * 1e9 / (double)n, b};
    sink_bytes += total;
    /* the compact Redis record (redis.record_format: compact, the
     * default), built on the scoring thread for every SET */
    static uint8_t rec[RS_REDIS_REC_MAX];
    total = 0;
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        total += (size_t)rs_redis_rec_encode(&pool[i % POOL], rec, sizeof(rec));
    rows[4] = (row_t){"compact Redis record (rs_redis_rec_encode)",
                      (cpu_s() - t0) * 1e9 / (double)n, (double)total / (double)n};
    sink_bytes += total;
    print_rows("Encoding one score record with its explanation", rows, 5,
               "record");
    printf("\nspeed-up of the JSON encoding: %.1fx; bytes: %.0f -> %.0f "
           "(%.0f%%)\n", rows[0].ns / rows[1].ns, rows[0].bytes,
           rows[1].bytes, 100.0 * (rows[1].bytes - rows[0].bytes) / rows[0].bytes);
}

/* The records stage's memory pattern: a worker's slice (up to half a
 * batch: 256 records of ~6 KB) is filled (here: each record copied whole
 * from the pool, more than the stage writes) and encoded.  Before: every
 * record filled, then all encoded (rs_score_encode_batch: the records had
 * left the cache); now: each encoded right after it is filled
 * (rs_score_encode_append).  The compact Redis record is built later on
 * the scoring thread (rs_redis_build) from the cold records; the last row
 * builds it in the same pass (a proposal: see docs/benchmarks.md). */
static void bench_stage(const rs_score_t *pool, long n) {
    enum { S = 256 };
    rs_score_t *out = malloc(sizeof(*out) * S);
    static const void *ptr[S];
    static size_t lens[S];
    static uint8_t rec[RS_REDIS_REC_MAX];
    rs_enc_arena_t arena;
    row_t rows[4];
    if (!out) abort();
    rs_enc_arena_init(&arena, 0);
    for (int r = 0; r < 4; r++) {
        size_t total = 0;
        long done = 0;
        double t0 = cpu_s();
        while (done < n) {
            int k = (int)((n - done) < S ? (n - done) : S);
            int off = (int)(done % (POOL - S));
            arena.len = 0;
            for (int i = 0; i < k; i++) {
                memcpy(&out[i], &pool[off + i], sizeof(out[i]));
                if (r == 0) continue;
                if (rs_score_encode_append(RS_FORMAT_JSON, &out[i], &arena,
                                           &lens[i]) != RS_OK)
                    abort();
                if (r == 3)
                    total += (size_t)rs_redis_rec_encode(&out[i], rec,
                                                         sizeof(rec));
            }
            if (r == 0 && rs_score_encode_batch(RS_FORMAT_JSON, out, k,
                                                &arena, ptr, lens,
                                                NULL) != RS_OK)
                abort();
            if (r == 2)
                for (int i = 0; i < k; i++)
                    total += (size_t)rs_redis_rec_encode(&out[i], rec,
                                                         sizeof(rec));
            total += arena.len;
            done += k;
        }
        static const char *what[4] = {
            "fill 256 records, then encode them (JSON; before)",
            "fill and encode each record at once (JSON; now)",
            "now + the compact Redis records of the 256 after (today)",
            "fill, JSON and compact record of each at once (proposal)"};
        rows[r] = (row_t){what[r], (cpu_s() - t0) * 1e9 / (double)n,
                          (double)total / (double)n};
        sink_bytes += total;
    }
    rs_enc_arena_free(&arena);
    free(out);
    print_rows("The records stage's pattern (a worker's slice of 256; per "
               "record, the fill included)", rows, 4, "record");
}

static void bench_decoding(rs_rng_t *rng, const rs_score_t *pool, long n) {
    static char (*ev_js)[512];
    static size_t ev_len[POOL];
    static char sc_js[64][RS_ENCODE_MAX];
    static size_t sc_len[64];
    char es[256];
    rs_event_t ev;
    rs_score_t sc;
    row_t rows[6];
    double t0, bytes = 0;

    ev_js = malloc(sizeof(*ev_js) * POOL);
    for (int i = 0; i < POOL; i++) {
        make_event(rng, i, &ev);
        ev_len[i] = (size_t)rs_event_to_json(&ev, ev_js[i], sizeof(ev_js[i]));
        bytes += (double)ev_len[i];
    }
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        if (rs_event_from_json_jansson(ev_js[i % POOL], ev_len[i % POOL], &ev,
                                       es, sizeof(es)) != RS_OK)
            abort();
    rows[0] = (row_t){"event JSON -> rs_event_t before (jansson tree + strtod)",
                      (cpu_s() - t0) * 1e9 / (double)n, bytes / POOL};
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        if (rs_event_from_json(ev_js[i % POOL], ev_len[i % POOL], &ev, es,
                               sizeof(es)) != RS_OK)
            abort();
    rows[4] = (row_t){"event JSON -> rs_event_t now (rs_event_from_json: streaming)",
                      (cpu_s() - t0) * 1e9 / (double)n, bytes / POOL};
    static char lb_js[POOL][160];
    static size_t lb_len[POOL];
    rs_label_t lb;
    bytes = 0;
    for (int i = 0; i < POOL; i++) {
        lb = (rs_label_t){.value = (double)(i & 1),
                          .label_time_ms = 1767225600000LL + i};
        snprintf(lb.event_id, sizeof(lb.event_id), "tx-%010d", i);
        snprintf(lb.entity_id, sizeof(lb.entity_id), "card-%05d", i % 10000);
        lb_len[i] = (size_t)rs_label_to_json(&lb, lb_js[i], sizeof(lb_js[i]));
        bytes += (double)lb_len[i];
    }
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        if (rs_label_from_json_jansson(lb_js[i % POOL], lb_len[i % POOL], &lb,
                                       es, sizeof(es)) != RS_OK)
            abort();
    double lb_old = (cpu_s() - t0) * 1e9 / (double)n;
    t0 = cpu_s();
    for (long i = 0; i < n; i++)
        if (rs_label_from_json(lb_js[i % POOL], lb_len[i % POOL], &lb, es,
                               sizeof(es)) != RS_OK)
            abort();
    rows[5] = (row_t){"label JSON -> rs_label_t now (streaming)",
                      (cpu_s() - t0) * 1e9 / (double)n, bytes / POOL};
    row_t lrow_old = {"label JSON -> rs_label_t before (jansson)", lb_old,
                      bytes / POOL};

    bytes = 0;
    for (int i = 0; i < 64; i++) {
        sc_len[i] = (size_t)rs_score_to_json(&pool[i], sc_js[i], RS_ENCODE_MAX);
        bytes += (double)sc_len[i];
    }
    long m = n / 4;
    t0 = cpu_s();
    for (long i = 0; i < m; i++)
        if (rs_score_from_json(sc_js[i % 64], sc_len[i % 64], &sc, es,
                               sizeof(es)) != RS_OK)
            abort();
    rows[1] = (row_t){"score JSON -> rs_score_t (audit, HTTP view; jansson)",
                      (cpu_s() - t0) * 1e9 / (double)m, bytes / 64};

    /* numbers as they appear in events and records */
    static char num[POOL][32];
    static size_t num_len[POOL];
    for (int i = 0; i < POOL; i++) {
        double v = (i & 1) ? (double)(int64_t)(rs_rng_uniform(rng) * 100000) / 100
                           : (double)(float)rs_rng_uniform(rng);
        num_len[i] = (size_t)((i & 1) ? rs_fmt_f64(v, num[i])
                                      : rs_fmt_f32((float)v, num[i]));
        num[i][num_len[i]] = '\0';
    }
    double acc = 0;
    long k = n * 8;
    t0 = cpu_s();
    for (long i = 0; i < k; i++) acc += strtod(num[i % POOL], NULL);
    rows[2] = (row_t){"a number: strtod (glibc)", (cpu_s() - t0) * 1e9 / (double)k, 0};
    t0 = cpu_s();
    for (long i = 0; i < k; i++) {
        double v;
        rs_parse_f64(num[i % POOL], num_len[i % POOL], &v);
        acc -= v;
    }
    rows[3] = (row_t){"a number: rs_parse_f64 (Clinger / Eisel-Lemire)",
                      (cpu_s() - t0) * 1e9 / (double)k, 0};
    sink_bytes += acc != 0; /* keep the sums alive */
    row_t out[7] = {rows[0], rows[4], lrow_old, rows[5], rows[1], rows[2],
                    rows[3]};
    print_rows("Decoding (input path and readers)", out, 7, "item");
    free(ev_js);
}

/* -------------------------------------------------------------- redis */

typedef struct redis_srv_s {
    char dir[64], sock[128];
    pid_t pid;
} redis_srv_t;

static int redis_start(redis_srv_t *r) {
    snprintf(r->dir, sizeof(r->dir), "/tmp/rs-bench-encode-XXXXXX");
    if (!mkdtemp(r->dir)) return -1;
    snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
    char *argv[] = {"redis-server", "--port", "0", "--unixsocket", r->sock,
                    "--save", "", "--appendonly", "no", "--dir", r->dir,
                    "--loglevel", "warning", "--logfile", "/dev/null", NULL};
    if (posix_spawnp(&r->pid, "redis-server", NULL, NULL, argv, environ))
        return -1;
    for (int i = 0; i < 100; i++) {
        redisContext *c = redisConnectUnix(r->sock);
        if (c && !c->err) {
            redisFree(c);
            return 0;
        }
        if (c) redisFree(c);
        usleep(50000);
    }
    return -1;
}

static void redis_stop(redis_srv_t *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
    }
    unlink(r->sock);
    rmdir(r->dir);
}

/* utime + stime of the server, seconds */
static double redis_cpu_s(const redis_srv_t *r) {
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)r->pid);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    size_t n = fread(line, 1, sizeof(line) - 1, fp);
    fclose(fp);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* fields after ")": state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                    &ut, &st) == 2)
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static long long info_field(redisContext *c, const char *section,
                            const char *field) {
    redisReply *rep = redisCommand(c, "INFO %s", section);
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        char pat[80];
        snprintf(pat, sizeof(pat), "%s:", field);
        const char *p = strstr(rep->str, pat);
        if (p) v = atoll(p + strlen(pat));
    }
    if (rep) freeReplyObject(rep);
    return v;
}

typedef struct redis_row_s {
    const char *what;
    double cmds, bytes, mem, srv_us, cli_us, wps;
} redis_row_t;

/* The old per-event layout (4 commands, 3 more per alerted event, old
 * JSON), pipelined per batch on one connection: what rs_sink_redis_write
 * sent before (main at 1fbc8c5). */
static void legacy_write(redisContext *c, const rs_score_t *sc, int n,
                         const char *ttl, const char *cap,
                         const char *alert_cap) {
    static char json[RS_ENCODE_MAX];
    char skey[RS_ID_MAX + 48], zkey[RS_ID_MAX + 56], tbuf[24];
    int ncmds = 0;
    for (int i = 0; i < n; i++) {
        int jl = legacy_score_to_json(&sc[i], json, sizeof(json));
        size_t skl = (size_t)snprintf(skey, sizeof(skey), "rs:score:%s",
                                      sc[i].event_id);
        size_t zkl = (size_t)snprintf(zkey, sizeof(zkey), "rs:entity:%s:scores",
                                      sc[i].entity_id);
        size_t tl = (size_t)snprintf(tbuf, sizeof(tbuf), "%" PRId64,
                                     sc[i].event_time_ms);
        const char *set[] = {"SET", skey, json, "PX", ttl, "NX"};
        const size_t setl[] = {3, skl, (size_t)jl, 2, strlen(ttl), 2};
        const char *zadd[] = {"ZADD", zkey, tbuf, sc[i].event_id};
        const size_t zaddl[] = {4, zkl, tl, strlen(sc[i].event_id)};
        const char *pexp[] = {"PEXPIRE", zkey, ttl};
        const size_t pexpl[] = {7, zkl, strlen(ttl)};
        const char *trim[] = {"ZREMRANGEBYRANK", zkey, "0", cap};
        const size_t triml[] = {15, zkl, 1, strlen(cap)};
        redisAppendCommandArgv(c, 6, set, setl);
        redisAppendCommandArgv(c, 4, zadd, zaddl);
        redisAppendCommandArgv(c, 3, pexp, pexpl);
        redisAppendCommandArgv(c, 4, trim, triml);
        ncmds += 4;
        if (alerted(&sc[i])) { /* rs_redis_alert_cmds of main */
            const char *az[] = {"ZADD", "rs:alerts", tbuf, sc[i].event_id};
            const size_t azl[] = {4, 9, tl, strlen(sc[i].event_id)};
            const char *ap[] = {"PEXPIRE", "rs:alerts", ttl};
            const size_t apl[] = {7, 9, strlen(ttl)};
            const char *at[] = {"ZREMRANGEBYRANK", "rs:alerts", "0", alert_cap};
            const size_t atl[] = {15, 9, 1, strlen(alert_cap)};
            redisAppendCommandArgv(c, 4, az, azl);
            redisAppendCommandArgv(c, 3, ap, apl);
            redisAppendCommandArgv(c, 4, at, atl);
            ncmds += 3;
        }
    }
    for (int i = 0; i < ncmds; i++) {
        void *r;
        if (redisGetReply(c, &r) != REDIS_OK) abort();
        freeReplyObject(r);
    }
}

/* Reference only (not a layout riskstream uses): SET NX per event and one
 * ZADD per event (and one to the alert index per alerted event), no expiry
 * or trim of the indexes -- what the index upkeep (PEXPIRE + trim) costs
 * on top. */
static void floor_write(redisContext *c, const rs_score_t *sc, int n,
                        const char *const *js, const size_t *jl,
                        const char *ttl) {
    char skey[RS_ID_MAX + 48], zkey[RS_ID_MAX + 56], tbuf[24];
    int ncmds = 0;
    for (int i = 0; i < n; i++) {
        size_t skl = (size_t)snprintf(skey, sizeof(skey), "rs:score:%s",
                                      sc[i].event_id);
        size_t zkl = (size_t)snprintf(zkey, sizeof(zkey), "rs:entity:%s:scores",
                                      sc[i].entity_id);
        size_t tl = (size_t)snprintf(tbuf, sizeof(tbuf), "%" PRId64,
                                     sc[i].event_time_ms);
        const char *set[] = {"SET", skey, js[i], "PX", ttl, "NX"};
        const size_t setl[] = {3, skl, jl[i], 2, strlen(ttl), 2};
        const char *zadd[] = {"ZADD", zkey, tbuf, sc[i].event_id};
        const size_t zaddl[] = {4, zkl, tl, strlen(sc[i].event_id)};
        redisAppendCommandArgv(c, 6, set, setl);
        redisAppendCommandArgv(c, 4, zadd, zaddl);
        ncmds += 2;
        if (alerted(&sc[i])) {
            const char *az[] = {"ZADD", "rs:alerts", tbuf, sc[i].event_id};
            const size_t azl[] = {4, 9, tl, strlen(sc[i].event_id)};
            redisAppendCommandArgv(c, 4, az, azl);
            ncmds++;
        }
    }
    for (int i = 0; i < ncmds; i++) {
        void *r;
        if (redisGetReply(c, &r) != REDIS_OK) abort();
        freeReplyObject(r);
    }
}

static void bench_redis(rs_rng_t *rng, long nev, int nent, int batch) {
    redis_srv_t srv = {0};
    if (redis_start(&srv)) {
        printf("\nRedis: cannot start redis-server (skipped)\n");
        return;
    }
    rs_score_t *sc = malloc(sizeof(*sc) * (size_t)nev);
    for (long i = 0; i < nev; i++) {
        char ent[32];
        snprintf(ent, sizeof(ent), "card-%05d", (int)rs_rng_below(rng, (uint64_t)nent));
        make_score(rng, (int)i, ent, 1767225600000LL + i * 37, &sc[i]);
    }
    rs_redis_conf_t conf;
    rs_redis_conf_init(&conf);
    snprintf(conf.url, sizeof(conf.url), "unix://%s", srv.sock);
    char errstr[512], ttl[24], cap[24], alert_cap[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, conf.ttl_ms);
    snprintf(cap, sizeof(cap), "%" PRId64, -(conf.entity_index_max + 1));
    snprintf(alert_cap, sizeof(alert_cap), "%" PRId64,
             -(conf.alert_index_max + 1));
    long nalert = 0;
    for (long i = 0; i < nev; i++) nalert += alerted(&sc[i]);
    redisContext *c = redisConnectUnix(srv.sock);
    enum { ROUNDS = 3 };
    redis_row_t rows[4], runs[ROUNDS][4];
    const void **js = malloc(sizeof(void *) * (size_t)batch);
    size_t *jl = malloc(sizeof(size_t) * (size_t)batch);
    rs_enc_arena_t arena;
    rs_enc_arena_init(&arena, 0);

    /* The layouts take turns, ROUNDS times; the table shows each one's
     * median (the machine is shared: interleaving spreads the noise). */
    for (int round = 0; round < ROUNDS; round++)
    for (int v = 0; v < 4; v++) {
        redisReply *rep = redisCommand(c, "FLUSHALL");
        freeReplyObject(rep);
        rep = redisCommand(c, "CONFIG RESETSTAT");
        freeReplyObject(rep);
        long long mem0 = info_field(c, "memory", "used_memory");
        int raw = v == 0 || v == 3; /* hiredis directly, not the sink */
        rs_sink_redis_t *sink = raw ? NULL
                                    : rs_sink_redis_new(&conf, errstr,
                                                        sizeof(errstr));
        redisContext *lc = raw ? redisConnectUnix(srv.sock) : NULL;
        if ((!raw && !sink) || (raw && (!lc || lc->err))) {
            printf("redis: %s\n", v ? errstr : "connect failed");
            exit(1);
        }
        double s0 = redis_cpu_s(&srv), c0 = proc_cpu_s(), w0 = now_s();
        uint64_t seq = 0;
        for (long i = 0; i < nev; i += batch) {
            int n = (int)((nev - i) < batch ? (nev - i) : batch);
            if (v == 0) {
                legacy_write(lc, sc + i, n, ttl, cap, alert_cap);
                continue;
            }
            if (rs_score_encode_batch(RS_FORMAT_JSON, sc + i, n, &arena, js, jl,
                                      NULL) != RS_OK)
                abort();
            if (v == 3) {
                floor_write(lc, sc + i, n, (const char *const *)js, jl, ttl);
            } else if (v == 1) {
                if (rs_sink_redis_write_json(sink, sc + i, n,
                                             (const char *const *)js, jl,
                                             errstr, sizeof(errstr)) != RS_OK) {
                    printf("redis write: %s\n", errstr);
                    exit(1);
                }
            } else {
                rs_err_t err;
                while ((err = rs_sink_redis_enqueue_json(
                            sink, sc + i, n, (const char *const *)js, jl, NULL,
                            NULL, ++seq)) == RS_ERR_AGAIN) {
                    seq--;
                    rs_sink_redis_wait(sink, rs_sink_redis_done(sink) + 1, 100);
                }
                if (err != RS_OK) abort();
            }
        }
        if (v == 2 && rs_sink_redis_wait(sink, seq, 120000) != RS_OK) abort();
        double wall = now_s() - w0, cli = proc_cpu_s() - c0,
               srv_cpu = redis_cpu_s(&srv) - s0;
        long long cmds = info_field(c, "stats", "total_commands_processed");
        long long in = info_field(c, "stats", "total_net_input_bytes");
        long long mem = info_field(c, "memory", "used_memory");
        static const char *const what[] = {
            "before: per event SET NX (old JSON) + ZADD + PEXPIRE + ZREMRANGEBYRANK, + 3 per alert",
            "now: SET NX per event, ZADD + PEXPIRE + trim per entity of a batch and of the alert index (write_json)",
            "now, async writer thread (enqueue_json: the service)",
            "reference, not used: SET NX + ZADD per event, no PEXPIRE, no trim"};
        runs[round][v] = (redis_row_t){what[v], (double)(cmds - 1) / (double)nev,
                                (double)in / (double)nev,
                                (double)(mem - mem0) / (double)nev,
                                srv_cpu * 1e6 / (double)nev,
                                cli * 1e6 / (double)nev, (double)nev / wall};
        if (lc) redisFree(lc);
        rs_sink_redis_destroy(sink);
        /* check: a record and an index are there */
        rep = redisCommand(c, "EXISTS rs:score:%s", sc[nev - 1].event_id);
        if (!rep || rep->integer != 1) abort();
        freeReplyObject(rep);
    }
    for (int v = 0; v < 4; v++) {
        double *f[6];
        rows[v] = runs[0][v];
        for (int m = 0; m < 6; m++) {
            double x[ROUNDS];
            for (int r = 0; r < ROUNDS; r++) {
                redis_row_t *q = &runs[r][v];
                double *qs[6] = {&q->cmds, &q->bytes, &q->mem, &q->srv_us,
                                 &q->cli_us, &q->wps};
                x[r] = *qs[m];
            }
            qsort(x, ROUNDS, sizeof(double), cmp_double);
            double *rs[6] = {&rows[v].cmds, &rows[v].bytes, &rows[v].mem,
                             &rows[v].srv_us, &rows[v].cli_us, &rows[v].wps};
            f[m] = rs[m];
            *f[m] = x[ROUNDS / 2];
        }
    }
    printf("\nRedis writes (median of %d interleaved rounds): %ld events, %d entities (uniform), batches of %d, "
           "%.1f%% of the events review/decline (alert index), "
           "private redis-server %s\n\n"
           "| layout | commands/event | bytes sent/event | Redis memory/event | "
           "redis-server CPU us/event | client CPU us/event | events/s |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n",
           ROUNDS, nev, nent, batch, 100.0 * (double)nalert / (double)nev,
           srv.sock);
    for (int v = 0; v < 4; v++)
        printf("| %s | %.2f | %.0f | %.0f | %.2f | %.2f | %.0f |\n", rows[v].what,
               rows[v].cmds, rows[v].bytes, rows[v].mem, rows[v].srv_us,
               rows[v].cli_us, rows[v].wps);
    redisFree(c);
    rs_enc_arena_free(&arena);
    free(js);
    free(jl);
    free(sc);
    redis_stop(&srv);
}

int main(int argc, char **argv) {
    long records = 400000, events = 200000;
    int entities = 10000, batch = 512, redis = 1;
    char mach[512];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--records") && i + 1 < argc)
            records = atol(argv[++i]);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = atol(argv[++i]);
        else if (!strcmp(argv[i], "--entities") && i + 1 < argc)
            entities = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-redis"))
            redis = 0;
        else {
            fprintf(stderr, "usage: bench_encode [--records N] [--events N] "
                            "[--entities N] [--batch N] [--no-redis]\n");
            return 2;
        }
    }
    if (records < 1 || events < 1 || entities < 1 || batch < 1) {
        fprintf(stderr, "bench_encode: counts must be >= 1\n");
        return 2;
    }
    rs_log_set_level(RS_LOG_WARN);
    machine(mach, sizeof(mach));
    printf("bench_encode --records %ld --events %ld --entities %d --batch %d%s\n"
           "machine: %s\n", records, events, entities, batch,
           redis ? "" : " --no-redis", mach);
    rs_rng_t rng;
    rs_rng_seed(&rng, 2026);
    rs_score_t *pool = malloc(sizeof(*pool) * POOL);
    for (int i = 0; i < POOL; i++) {
        char ent[32];
        snprintf(ent, sizeof(ent), "card-%05d", (int)rs_rng_below(&rng, 10000));
        make_score(&rng, i, ent, 1767225600000LL + i * 37, &pool[i]);
    }
    char one[RS_ENCODE_MAX];
    int n = rs_score_to_json(&pool[0], one, sizeof(one));
    printf("\nexample record (%d bytes):\n%s\n", n, one);
    bench_encoding(pool, records);
    bench_stage(pool, records);
    bench_decoding(&rng, pool, records);
    if (redis) bench_redis(&rng, events, entities, batch);
    free(pool);
    return 0;
}
