/* bench_watch.c -- the max-rate burst's measurement of ops/bench/e2e.py
 * (not a test: prints one JSON line).
 *
 * The burst used to be measured by reading every score back with kcat
 * (timestamps only): ~0.3 of the 2-core box it measures, taken from the
 * system under test, the broker and redis-server alike.  This one fetches
 * no score's payload while the burst runs:
 *
 *   completion  the scores topic's high watermarks, every partition in one
 *               ListOffsets request per --poll-us (rd_kafka_offsets_for_times
 *               with OFFSET_END: the broker's end offsets, what a consumer
 *               can read), until they have grown by --count since the
 *               start;
 *   first       each partition's first record of the burst (its offset at
 *               the start): a consumer waits at those offsets, with
 *               queued.min.messages=1 and max.partition.fetch.bytes=1 (one
 *               producer batch per fetch) and --fetch-wait-ms 100 (the
 *               mock broker holds an empty fetch that long: ~10 requests/s
 *               while nothing comes), and pauses each partition once it has
 *               its first record -- early, as the mock broker keeps only
 *               ~5 MB per partition and drops the oldest;
 *   last        each partition's last record (high watermark - 1), fetched
 *               once the count is reached.
 * The burst's span is min(first records' Kafka timestamps) .. max(last
 * records'): the same timestamps as every score read (one per partition
 * suffices: a partition's records are appended in produce order); the
 * watermarks' own times (the poll that saw the first move, the poll that
 * saw the count; each up to --poll-us + one request late) are printed
 * beside them as a check.
 *
 * Output, one JSON line: count, total (scores over the burst), partitions,
 * polls, first_ts_ms / last_ts_ms (Kafka timestamps, ms), first_wm_ms /
 * done_wm_ms (realtime of the poll that saw the first move / the count, ms)
 * with first_wm_prev_ms / done_wm_prev_ms (the poll before it), first_lost
 * (partitions whose first record the broker had dropped before it was
 * fetched: first_ts_ms is then late), end (each partition's high watermark:
 * the offset after the burst), timeline ([realtime ms of a poll, scores
 * seen so far] for each poll that saw the total change), cpu_s (this
 * process, getrusage) at ready / first move / done / exit.  Before the burst it prints "ready" on a line
 * of its own (the start offsets are known and the partitions assigned).
 * Exit 0 when the count was reached, 1 on --timeout, 2 on a setup error.
 *
 * usage: bench_watch --brokers ADDR --count N [--topic scores]
 *          [--poll-us 5000] [--fetch-wait-ms 100] [--timeout S]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static struct {
    const char *brokers, *topic;
    long count, poll_us, fetch_wait_ms;
    double timeout;
} o = {NULL, "scores", -1, 5000, 100, 300};

static void die(const char *what, const char *detail) {
    fprintf(stderr, "bench_watch: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

static int64_t now_us(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void kset(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err))) die(k, err);
}

/* per partition of the topic */
typedef struct {
    int32_t id;
    int64_t base, end;     /* offset at the start; high watermark now */
    int64_t first_ts;      /* Kafka ts of its first record of the burst; -1 */
    int64_t last_ts;       /* of its record end - 1 after the burst; -1 */
    int first_lost;        /* the broker had dropped the first record */
} part_t;

static part_t *parts;
static int np;

/* the watermarks' timeline: (realtime µs of the poll, scores so far), one
 * entry per poll that saw the total change */
typedef struct {
    int64_t t_us, total;
} tl_t;
static tl_t *tl;
static size_t n_tl, cap_tl;

static void tl_add(int64_t t_us, int64_t total) {
    if (n_tl && tl[n_tl - 1].total == total) return;
    if (n_tl == cap_tl) {
        cap_tl = cap_tl ? 2 * cap_tl : 1024;
        tl = realloc(tl, cap_tl * sizeof(*tl));
        if (!tl) die("out of memory", NULL);
    }
    tl[n_tl++] = (tl_t){t_us, total};
}

static part_t *part_of(int32_t id) {
    for (int i = 0; i < np; i++)
        if (parts[i].id == id) return &parts[i];
    return NULL;
}

/* Every partition's high watermark into parts[].end: one ListOffsets
 * request per leader.  q holds the partitions; its offsets are clobbered. */
static void end_offsets(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *q) {
    for (int i = 0; i < q->cnt; i++) q->elems[i].offset = RD_KAFKA_OFFSET_END;
    rd_kafka_resp_err_t kerr = rd_kafka_offsets_for_times(rk, q, 10000);
    if (kerr) die("ListOffsets", rd_kafka_err2str(kerr));
    for (int i = 0; i < q->cnt; i++) {
        if (q->elems[i].err) die("ListOffsets", rd_kafka_err2str(q->elems[i].err));
        parts[i].end = q->elems[i].offset;
    }
}

/* One consumed record (or none): its partition's first or last record.
 * want_last: the records at end - 1 are wanted, else the first ones. */
static void take(rd_kafka_t *rk, rd_kafka_message_t *m, int want_last) {
    if (!m) return;
    part_t *p = m->err ? NULL : part_of(m->partition);
    if (p) {
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        if (!want_last && p->first_ts < 0) {
            p->first_ts = ts;
            p->first_lost = m->offset != p->base;
            /* one record is all it takes from this partition */
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, o.topic, p->id);
            rd_kafka_pause_partitions(rk, l);
            rd_kafka_topic_partition_list_destroy(l);
        } else if (want_last && p->last_ts < 0 && m->offset == p->end - 1) {
            p->last_ts = ts;
        }
    }
    rd_kafka_message_destroy(m);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (OPT("--brokers")) o.brokers = v;
        else if (OPT("--topic")) o.topic = v;
        else if (OPT("--count")) o.count = atol(v);
        else if (OPT("--poll-us")) o.poll_us = atol(v);
        else if (OPT("--fetch-wait-ms")) o.fetch_wait_ms = atol(v);
        else if (OPT("--timeout")) o.timeout = atof(v);
        else {
            fprintf(stderr, "usage: bench_watch --brokers ADDR --count N [--topic scores] "
                            "[--poll-us 5000] [--fetch-wait-ms 100] [--timeout S]\n");
            return 2;
        }
#undef OPT
    }
    if (!o.brokers || o.count <= 0 || o.poll_us <= 0) die("--brokers and --count N > 0 are required", NULL);

    char err[256], v[32];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    kset(c, "bootstrap.servers", o.brokers);
    kset(c, "group.id", "bench-watch"); /* assign() only: no group join */
    kset(c, "enable.auto.commit", "false");
    kset(c, "enable.auto.offset.store", "false");
    /* a first record the broker dropped (retention): the earliest left,
     * flagged first_lost */
    kset(c, "auto.offset.reset", "earliest");
    /* one producer batch per partition, no read-ahead */
    kset(c, "queued.min.messages", "1");
    kset(c, "max.partition.fetch.bytes", "1");
    snprintf(v, sizeof(v), "%ld", o.fetch_wait_ms);
    kset(c, "fetch.wait.max.ms", v);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) die("consumer", err);
    rd_kafka_poll_set_consumer(rk);

    const rd_kafka_metadata_t *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (kerr || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1)
        die("metadata of the topic",
            rd_kafka_err2str(kerr ? kerr : md->topic_cnt ? md->topics[0].err
                                                        : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    np = md->topics[0].partition_cnt;
    parts = calloc((size_t)np, sizeof(*parts));
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++) {
        parts[i].id = md->topics[0].partitions[i].id;
        parts[i].first_ts = parts[i].last_ts = -1;
        rd_kafka_topic_partition_list_add(q, o.topic, parts[i].id);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    /* the start: every partition's end now; the consumer waits there */
    end_offsets(rk, q);
    rd_kafka_topic_partition_list_t *from = rd_kafka_topic_partition_list_copy(q);
    for (int i = 0; i < np; i++) from->elems[i].offset = parts[i].base = parts[i].end;
    if ((kerr = rd_kafka_assign(rk, from))) die("assign", rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(from);
    double cpu_ready = cpu_s(), cpu_first = -1, cpu_done = -1;
    printf("ready\n");
    fflush(stdout);

    int64_t deadline = now_us(CLOCK_MONOTONIC) + (int64_t)(o.timeout * 1e6);
    int64_t tick = now_us(CLOCK_MONOTONIC), prev = now_us(CLOCK_REALTIME);
    int64_t first_wm = -1, first_prev = -1, done_wm = -1, done_prev = -1, total = 0;
    long polls = 0;
    for (;;) {
        end_offsets(rk, q);
        int64_t t = now_us(CLOCK_REALTIME);
        polls++;
        total = 0;
        for (int i = 0; i < np; i++) total += parts[i].end - parts[i].base;
        tl_add(t, total);
        if (first_wm < 0 && total > 0) {
            first_wm = t;
            first_prev = prev;
            cpu_first = cpu_s();
        }
        if (total >= o.count) {
            done_wm = t;
            done_prev = prev;
            cpu_done = cpu_s();
            break;
        }
        prev = t;
        /* the first records fetched meanwhile (non-blocking) */
        rd_kafka_message_t *m;
        while ((m = rd_kafka_consumer_poll(rk, 0))) take(rk, m, 0);
        tick += o.poll_us;
        int64_t mono = now_us(CLOCK_MONOTONIC);
        if (mono > deadline) break;
        if (tick < mono) tick = mono; /* late (a full box): no catch-up burst */
        struct timespec ts = {(time_t)(tick / 1000000), (long)(tick % 1000000) * 1000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
    }

    /* after the burst: the first records not in yet, then the last ones */
    int64_t until = now_us(CLOCK_MONOTONIC) + 10000000;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < np; i++) missing += parts[i].end > parts[i].base && parts[i].first_ts < 0;
        if (!missing || now_us(CLOCK_MONOTONIC) > until) break;
        take(rk, rd_kafka_consumer_poll(rk, 100), 0);
    }
    /* a paused partition would stay paused in the new assignment */
    rd_kafka_assign(rk, NULL);
    rd_kafka_resume_partitions(rk, q);
    rd_kafka_topic_partition_list_t *last = rd_kafka_topic_partition_list_new(np);
    for (int i = 0; i < np; i++)
        if (parts[i].end > parts[i].base)
            rd_kafka_topic_partition_list_add(last, o.topic, parts[i].id)->offset = parts[i].end - 1;
    if ((kerr = rd_kafka_assign(rk, last))) die("assign", rd_kafka_err2str(kerr));
    rd_kafka_topic_partition_list_destroy(last);
    until = now_us(CLOCK_MONOTONIC) + 10000000;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < np; i++) missing += parts[i].end > parts[i].base && parts[i].last_ts < 0;
        if (!missing || now_us(CLOCK_MONOTONIC) > until) break;
        take(rk, rd_kafka_consumer_poll(rk, 100), 1);
    }

    int64_t first_ts = -1, last_ts = -1;
    int lost = 0, nfirst = 0, nlast = 0;
    for (int i = 0; i < np; i++) {
        if (parts[i].first_ts >= 0) {
            nfirst++;
            if (first_ts < 0 || parts[i].first_ts < first_ts) first_ts = parts[i].first_ts;
        }
        if (parts[i].last_ts > last_ts) last_ts = parts[i].last_ts;
        nlast += parts[i].last_ts >= 0;
        lost += parts[i].first_lost;
    }
    printf("{\"count\":%ld,\"total\":%" PRId64 ",\"partitions\":%d,\"polls\":%ld,\"poll_us\":%ld,"
           "\"first_ts_ms\":%" PRId64 ",\"last_ts_ms\":%" PRId64 ",\"first_records\":%d,"
           "\"last_records\":%d,\"first_lost\":%d,"
           "\"first_wm_ms\":%.3f,\"first_wm_prev_ms\":%.3f,\"done_wm_ms\":%.3f,"
           "\"done_wm_prev_ms\":%.3f,\"cpu_s\":[%.4f,%.4f,%.4f,%.4f],\"end\":{",
           o.count, total, np, polls, o.poll_us, first_ts, last_ts, nfirst, nlast, lost,
           (double)first_wm / 1e3, (double)first_prev / 1e3, (double)done_wm / 1e3,
           (double)done_prev / 1e3, cpu_ready, cpu_first, cpu_done, cpu_s());
    for (int i = 0; i < np; i++)
        printf("%s\"%d\":%" PRId64, i ? "," : "", parts[i].id, parts[i].end);
    printf("},\"timeline\":[");
    for (size_t i = 0; i < n_tl; i++)
        printf("%s[%.3f,%" PRId64 "]", i ? "," : "", (double)tl[i].t_us / 1e3, tl[i].total);
    printf("]}\n");
    fflush(stdout);
    rd_kafka_topic_partition_list_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(parts);
    free(tl);
    return done_wm >= 0 ? 0 : 1;
}
