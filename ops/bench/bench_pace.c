/* bench_pace.c -- the paced phases' rig of ops/bench/e2e.py and e2e_lat.py
 * (not a test: prints a table, or one JSON line with --json).
 *
 * The Python rig it replaces (a pacer writing to a kcat producer in 5 ms
 * steps, a kcat reader of the scores topic parsed in Python, the events
 * read back with kcat for their timestamps) needed ~0.6-1 core at 25 000
 * ev/s on the 2-core box it measures, so its p99 was a saturated box's.
 * This one is one process, three threads, no copies:
 *
 *   pacer   produces the pre-generated events of --in (kcat -K '\t' lines:
 *           key TAB JSON) at --rate: every --step-us it produces the events
 *           whose due time (start + i / rate) has come, each stamped with
 *           CLOCK_REALTIME as it is handed to librdkafka (the event's Kafka
 *           CreateTime is taken there too); linger.ms --linger-ms (0, as
 *           kcat had);
 *   scores  a consumer of the scores topic assigned at its high watermarks
 *           (read before the first event is produced, so no score is
 *           missed and none of an earlier phase is counted), matching each
 *           score to its event by "event_id"; it reads during the phase
 *           (~2 µs of CPU per event at 20 000 ev/s), or with --after only
 *           once the last event is produced (no fetching beside the
 *           service; but librdkafka's mock broker drops a partition's
 *           oldest messages past a few MB, and a phase of ~100 000 scores
 *           or more then loses its first ones: the run fails);
 *   redis   (--redis SOCKET) subscribed to the private redis-server's
 *           keyevent notifications of SET (it enables them: CONFIG SET
 *           notify-keyspace-events E$), matching "<prefix>score:<id>" keys.
 *
 * Per event (the p50/p99/p99.9 of each):
 *   handed   score's Kafka timestamp (ms, taken when serve hands the score
 *            to its producer) - the event's produce time floored to the ms:
 *            the definition e2e.py always had (1 ms resolution);
 *   read     the score read by this rig - produced (µs): adds serve's
 *            producer linger, the broker and this reader's fetch;
 *   visible  the record's SET seen on Redis - produced (µs; --redis);
 *   lag      produced - due: how late the pacer itself was (the box).
 * and the rig's own CPU (getrusage, all its threads) per event over the
 * phase.  Exit 0 when every event's score was read, 1 on a timeout
 * (the figures are then over what arrived), 2 on a usage or setup error.
 *
 * usage: bench_pace --brokers ADDR --in FILE --rate EV_S
 *          [--count N] [--skip K] [--topic events] [--scores scores]
 *          [--step-us 1000] [--linger-ms 0] [--fetch-wait-ms 5]
 *          [--timeout S] [--redis SOCKET] [--key-prefix rs:] [--after]
 *          [--json]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

/* one pre-generated event: key and JSON value point into the file buffer */
typedef struct {
    const char *key, *val, *id;
    size_t klen, vlen, idlen;
    int64_t due_us, prod_us;          /* monotonic due time; realtime produce */
    int64_t lag_us;                   /* produced - due (monotonic) */
    int64_t handed_ms;                /* score's Kafka timestamp, -1: none */
    int64_t read_us, vis_us;          /* realtime; -1: not seen */
} pace_ev_t;

static pace_ev_t *evs;
static size_t n_ev;
static uint32_t *idx; /* open addressing, n_ev's ids -> index + 1 */
static size_t idx_mask;
static atomic_int produced_all, stop_readers;
static atomic_size_t n_read, n_vis;

static int64_t now_us(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void idx_put(size_t i) {
    size_t b = hash(evs[i].id, evs[i].idlen) & idx_mask;
    while (idx[b]) b = (b + 1) & idx_mask;
    idx[b] = (uint32_t)(i + 1);
}

static pace_ev_t *idx_get(const char *id, size_t n) {
    size_t b = hash(id, n) & idx_mask;
    for (; idx[b]; b = (b + 1) & idx_mask) {
        pace_ev_t *e = &evs[idx[b] - 1];
        if (e->idlen == n && !memcmp(e->id, id, n)) return e;
    }
    return NULL;
}

/* the string value of "name":"..." in buf (no escapes in ids) */
static const char *json_str(const char *buf, size_t len, const char *name,
                            size_t *out_len) {
    size_t nl = strlen(name);
    const char *p = buf, *end = buf + len;
    while ((p = memmem(p, (size_t)(end - p), name, nl)) != NULL) {
        const char *q = p + nl;
        while (q < end && (*q == ' ' || *q == ':')) q++;
        if (q < end && *q == '"') {
            const char *e = memchr(q + 1, '"', (size_t)(end - q - 1));
            if (!e) return NULL;
            *out_len = (size_t)(e - q - 1);
            return q + 1;
        }
        p += nl;
    }
    return NULL;
}

/* ------------------------------------------------------------ options */
static struct {
    const char *brokers, *in, *topic, *scores, *redis, *prefix;
    double rate, timeout;
    long count, skip, step_us, linger_ms, fetch_wait_ms;
    int json, live;
} o = {NULL, NULL, "events", "scores", NULL, "rs:", 0, 120, -1, 0, 1000, 0, 5, 0, 1};

static void usage(void) {
    fprintf(stderr,
            "usage: bench_pace --brokers ADDR --in FILE --rate EV_S [--count N] "
            "[--skip K] [--topic T] [--scores T] [--step-us US] [--linger-ms MS] "
            "[--fetch-wait-ms MS] [--timeout S] [--redis SOCKET] [--key-prefix P] "
            "[--after] [--json]\n");
    exit(2);
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "bench_pace: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    exit(2);
}

static void load(void) {
    FILE *f = fopen(o.in, "rb");
    if (!f) die("cannot open --in", strerror(errno));
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) die("cannot read --in", NULL);
    fclose(f);
    buf[sz] = '\n';
    size_t cap = 1024;
    evs = calloc(cap, sizeof(*evs));
    long line = 0;
    for (char *p = buf, *end = buf + sz; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
        char *tab = memchr(p, '\t', (size_t)(nl - p));
        if (tab && line++ >= o.skip && (o.count < 0 || (long)n_ev < o.count)) {
            if (n_ev == cap) {
                cap *= 2;
                evs = realloc(evs, cap * sizeof(*evs));
                if (!evs) die("out of memory", NULL);
            }
            pace_ev_t *e = &evs[n_ev];
            memset(e, 0, sizeof(*e));
            e->key = p;
            e->klen = (size_t)(tab - p);
            e->val = tab + 1;
            e->vlen = (size_t)(nl + 1 - e->val); /* newline kept, as kcat -K */
            if (e->val + e->vlen > end) e->vlen = (size_t)(end - e->val);
            e->id = json_str(e->val, e->vlen, "\"id\"", &e->idlen);
            if (!e->id) die("a line without an \"id\"", NULL);
            e->handed_ms = e->read_us = e->vis_us = -1;
            n_ev++;
        }
        p = nl + 1;
    }
    if (!n_ev) die("no events in --in (after --skip)", NULL);
    size_t sz2 = 1;
    while (sz2 < 2 * n_ev) sz2 <<= 1;
    idx = calloc(sz2, sizeof(*idx));
    idx_mask = sz2 - 1;
    for (size_t i = 0; i < n_ev; i++) idx_put(i);
}

static rd_kafka_conf_t *kconf(void) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char err[256];
    if (rd_kafka_conf_set(c, "bootstrap.servers", o.brokers, err, sizeof(err)))
        die("bootstrap.servers", err);
    return c;
}

static void kset(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err))) die(k, err);
}

/* ------------------------------------------------------------- scores */
typedef struct {
    rd_kafka_t *rk;
} reader_t;

static void *reader_run(void *arg) {
    reader_t *r = arg;
    while (!atomic_load(&stop_readers)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (!m) continue;
        if (!m->err && m->payload) {
            int64_t t = now_us(CLOCK_REALTIME);
            size_t n;
            const char *id = json_str(m->payload, m->len, "\"event_id\"", &n);
            pace_ev_t *e = id ? idx_get(id, n) : NULL;
            if (e && e->read_us < 0) {
                rd_kafka_timestamp_type_t tt;
                e->handed_ms = rd_kafka_message_timestamp(m, &tt);
                e->read_us = t;
                atomic_fetch_add(&n_read, 1);
            }
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* The scores topic's high watermarks (every partition), through handle rk. */
static rd_kafka_topic_partition_list_t *scores_end(rd_kafka_t *rk) {
    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.scores, NULL);
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (kerr || md->topic_cnt != 1 || md->topics[0].err)
        die("metadata of the scores topic",
            rd_kafka_err2str(kerr ? kerr : md->topic_cnt ? md->topics[0].err
                                                        : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo, hi;
        kerr = rd_kafka_query_watermark_offsets(rk, o.scores, p, &lo, &hi, 10000);
        if (kerr) die("watermarks of the scores topic", rd_kafka_err2str(kerr));
        rd_kafka_topic_partition_list_add(tl, o.scores, p)->offset = hi;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return tl;
}

/* A consumer of the scores topic from the offsets tl (taken). */
static rd_kafka_t *reader_new(rd_kafka_topic_partition_list_t *tl) {
    char err[256], v[32];
    rd_kafka_conf_t *c = kconf();
    kset(c, "group.id", "bench-pace");
    kset(c, "enable.auto.commit", "false");
    kset(c, "enable.auto.offset.store", "false");
    /* an offset the broker dropped (retention): what is left, and the
     * scores missing say so */
    kset(c, "auto.offset.reset", "earliest");
    snprintf(v, sizeof(v), "%ld", o.fetch_wait_ms);
    kset(c, "fetch.wait.max.ms", v);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) die("consumer", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_resp_err_t kerr;
    if ((kerr = rd_kafka_assign(rk, tl))) die("assign", rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(tl);
    return rk;
}

/* -------------------------------------------------------------- redis */
static void *redis_run(void *arg) {
    redisContext *rc = arg;
    char pre[128];
    size_t pl = (size_t)snprintf(pre, sizeof(pre), "%sscore:", o.prefix);
    while (!atomic_load(&stop_readers)) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
            if (rc->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                rc->err = 0;
                continue; /* the read timeout: look at stop_readers */
            }
            break;
        }
        int64_t t = now_us(CLOCK_REALTIME);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING &&
            r->element[2]->len > pl && !memcmp(r->element[2]->str, pre, pl)) {
            pace_ev_t *e = idx_get(r->element[2]->str + pl, r->element[2]->len - pl);
            if (e && e->vis_us < 0) {
                e->vis_us = t;
                atomic_fetch_add(&n_vis, 1);
            }
        }
        freeReplyObject(r);
    }
    return NULL;
}

static redisContext *redis_new(void) {
    struct timeval tv = {0, 200000};
    redisContext *rc = redisConnectUnixWithTimeout(o.redis, tv);
    if (!rc || rc->err) die("redis", rc ? rc->errstr : "connect");
    redisReply *r = redisCommand(rc, "CONFIG SET notify-keyspace-events E$");
    if (!r || r->type == REDIS_REPLY_ERROR) die("redis CONFIG SET", r ? r->str : rc->errstr);
    freeReplyObject(r);
    r = redisCommand(rc, "SUBSCRIBE __keyevent@0__:set");
    if (!r) die("redis SUBSCRIBE", rc->errstr);
    freeReplyObject(r);
    redisSetTimeout(rc, tv);
    return rc;
}

/* -------------------------------------------------------------- pacer */
static void pace(rd_kafka_t *rk) {
    const int64_t t0 = now_us(CLOCK_MONOTONIC) + 1000;
    for (size_t i = 0; i < n_ev; i++) evs[i].due_us = t0 + (int64_t)((double)i * 1e6 / o.rate);
    size_t sent = 0;
    int64_t tick = t0;
    while (sent < n_ev) {
        struct timespec ts = {(time_t)(tick / 1000000), (long)(tick % 1000000) * 1000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        int64_t mono = now_us(CLOCK_MONOTONIC);
        while (sent < n_ev && evs[sent].due_us <= mono) {
            pace_ev_t *e = &evs[sent];
            e->prod_us = now_us(CLOCK_REALTIME);
            e->lag_us = now_us(CLOCK_MONOTONIC) - e->due_us;
            rd_kafka_resp_err_t kerr;
            while ((kerr = rd_kafka_producev(
                        rk, RD_KAFKA_V_TOPIC(o.topic),
                        RD_KAFKA_V_KEY((void *)e->key, e->klen),
                        RD_KAFKA_V_VALUE((void *)e->val, e->vlen), RD_KAFKA_V_END)) ==
                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 1);
            if (kerr) die("produce", rd_kafka_err2str(kerr));
            sent++;
        }
        rd_kafka_poll(rk, 0);
        /* the next tick, or the next due event if the rate is below one
         * event per tick (no empty wakeups) */
        tick += o.step_us;
        if (sent < n_ev && evs[sent].due_us > tick) tick = evs[sent].due_us;
        if (tick < mono - 10 * o.step_us) tick = mono; /* far behind: no catch-up spin */
    }
    rd_kafka_flush(rk, 30000);
    atomic_store(&produced_all, 1);
}

/* ------------------------------------------------------------- figures */
static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* p50/p99/p99.9/max of v[0..n) in ms (v in µs), sorted in place */
static void pcts(int64_t *v, size_t n, double out[4]) {
    if (!n) {
        for (int i = 0; i < 4; i++) out[i] = -1;
        return;
    }
    qsort(v, n, sizeof(*v), cmp64);
    const double q[3] = {.5, .99, .999};
    for (int i = 0; i < 3; i++) {
        size_t k = (size_t)(q[i] * (double)n);
        out[i] = (double)v[k < n ? k : n - 1] / 1000.0;
    }
    out[3] = (double)v[n - 1] / 1000.0;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (OPT("--brokers")) o.brokers = v;
        else if (OPT("--in")) o.in = v;
        else if (OPT("--rate")) o.rate = atof(v);
        else if (OPT("--count")) o.count = atol(v);
        else if (OPT("--skip")) o.skip = atol(v);
        else if (OPT("--topic")) o.topic = v;
        else if (OPT("--scores")) o.scores = v;
        else if (OPT("--step-us")) o.step_us = atol(v);
        else if (OPT("--linger-ms")) o.linger_ms = atol(v);
        else if (OPT("--fetch-wait-ms")) o.fetch_wait_ms = atol(v);
        else if (OPT("--timeout")) o.timeout = atof(v);
        else if (OPT("--redis")) o.redis = v;
        else if (OPT("--key-prefix")) o.prefix = v;
        else if (!strcmp(a, "--json")) o.json = 1;
        else if (!strcmp(a, "--after")) o.live = 0;
        else usage();
#undef OPT
    }
    if (!o.brokers || !o.in || !(o.rate > 0) || o.step_us <= 0) usage();
    load();

    char err[256], v[32];
    rd_kafka_conf_t *pc = kconf();
    snprintf(v, sizeof(v), "%ld", o.linger_ms);
    kset(pc, "linger.ms", v);
    rd_kafka_t *prk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prk) die("producer", err);
    /* where the phase's scores will start (this also brings the
     * producer's connection up before the clock starts) */
    rd_kafka_topic_partition_list_t *from = scores_end(prk);
    /* and the events topic's leaders known: the first events must not wait
     * for a metadata request */
    rd_kafka_topic_t *ev_rkt = rd_kafka_topic_new(prk, o.topic, NULL);
    const rd_kafka_metadata_t *md;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(prk, 0, ev_rkt, &md, 10000);
    if (kerr) die("metadata of the events topic", rd_kafka_err2str(kerr));
    rd_kafka_metadata_destroy(md);
    reader_t rd = {NULL};
    redisContext *rc = o.redis ? redis_new() : NULL;
    pthread_t rt, vt;
    if (o.live) {
        rd.rk = reader_new(from);
        pthread_create(&rt, NULL, reader_run, &rd);
    }
    if (rc) pthread_create(&vt, NULL, redis_run, rc);

    double c0 = cpu_s();
    int64_t w0 = now_us(CLOCK_MONOTONIC);
    pace(prk);
    int64_t w_prod = now_us(CLOCK_MONOTONIC);
    double c_prod = cpu_s();
    if (!o.live) { /* the scores read after the phase: no fetching beside it */
        rd.rk = reader_new(from);
        pthread_create(&rt, NULL, reader_run, &rd);
    }
    int64_t end = w_prod + (int64_t)(o.timeout * 1e6);
    while ((atomic_load(&n_read) < n_ev || (rc && atomic_load(&n_vis) < n_ev)) &&
           now_us(CLOCK_MONOTONIC) < end) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    int64_t w1 = now_us(CLOCK_MONOTONIC);
    double c1 = cpu_s();
    atomic_store(&stop_readers, 1);
    pthread_join(rt, NULL);
    if (rc) pthread_join(vt, NULL);

    int64_t *handed = malloc(n_ev * sizeof(int64_t)), *readl = malloc(n_ev * sizeof(int64_t)),
            *vis = malloc(n_ev * sizeof(int64_t)), *lag = malloc(n_ev * sizeof(int64_t));
    size_t nh = 0, nv = 0;
    for (size_t i = 0; i < n_ev; i++) {
        pace_ev_t *e = &evs[i];
        lag[i] = e->lag_us;
        if (e->read_us >= 0) {
            /* ms resolution, as the e2e bench had it: both stamps floored */
            handed[nh] = (e->handed_ms - e->prod_us / 1000) * 1000;
            readl[nh++] = o.live ? e->read_us - e->prod_us : -1000;
        }
        if (e->vis_us >= 0) vis[nv++] = e->vis_us - e->prod_us;
    }
    double ph[4], pr[4], pv[4], pg[4];
    pcts(handed, nh, ph);
    pcts(readl, nh, pr);
    pcts(vis, nv, pv);
    pcts(lag, n_ev, pg);
    double secs = (double)(evs[n_ev - 1].prod_us - evs[0].prod_us) / 1e6;
    double achieved = n_ev > 1 && secs > 0 ? (double)(n_ev - 1) / secs : o.rate;
    double cpu_us = (c_prod - c0) / (double)n_ev * 1e6, read_us = (c1 - c_prod) / (double)n_ev * 1e6;
    if (o.json) {
        printf("{\"events\":%zu,\"scores\":%zu,\"visible\":%zu,\"rate\":%.1f,"
               "\"achieved\":%.1f,\"handed\":[%.3f,%.3f,%.3f,%.3f],"
               "\"read\":[%.3f,%.3f,%.3f,%.3f],\"visible_ms\":[%.3f,%.3f,%.3f,%.3f],"
               "\"lag\":[%.3f,%.3f,%.3f,%.3f],\"rig_cpu_us\":%.2f,\"after_cpu_us\":%.2f,"
               "\"live\":%d,\"wall_s\":%.3f}\n",
               n_ev, nh, nv, o.rate, achieved, ph[0], ph[1], ph[2], ph[3],
               pr[0], pr[1], pr[2], pr[3], pv[0], pv[1], pv[2], pv[3], pg[0], pg[1],
               pg[2], pg[3], cpu_us, read_us, o.live, (double)(w1 - w0) / 1e6);
    } else {
        printf("bench_pace: %zu events at %.0f ev/s (achieved %.0f), %zu scores read%s\n",
               n_ev, o.rate, achieved, nh, o.live ? " (live)" : " (after the phase)");
        printf("| ms | p50 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|\n");
        printf("| produced -> score handed (Kafka ts) | %.1f | %.1f | %.1f | %.1f |\n", ph[0],
               ph[1], ph[2], ph[3]);
        if (o.live)
            printf("| produced -> score read | %.2f | %.2f | %.2f | %.2f |\n", pr[0], pr[1],
                   pr[2], pr[3]);
        if (rc)
            printf("| produced -> Redis visible | %.2f | %.2f | %.2f | %.2f |\n", pv[0],
                   pv[1], pv[2], pv[3]);
        printf("| pacer lag (produced - due) | %.2f | %.2f | %.2f | %.2f |\n", pg[0], pg[1],
               pg[2], pg[3]);
        printf("rig CPU: %.2f µs/event over the paced phase (this process, all threads), "
               "%.2f after it (reading the scores)\n", cpu_us, read_us);
    }
    if (rc) redisFree(rc);
    rd_kafka_consumer_close(rd.rk);
    rd_kafka_destroy(rd.rk);
    rd_kafka_topic_destroy(ev_rkt);
    rd_kafka_destroy(prk);
    return nh == n_ev && (!rc || nv == n_ev) ? 0 : 1;
}
