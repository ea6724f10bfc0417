/* bench_decode.c -- the event and label JSON decoders alone (not a test:
 * prints a table): ns of thread CPU per message, the frozen decoder of
 * main 6a42981 (tests/proto/jsonr_ref.c) against today's
 * (proto/proto_jsonr.c), interleaved in rounds in one run, so the ratio
 * holds on a busy machine.
 *
 * Messages: by default a pool of 4096 card events as `riskstream gen`
 * writes them (2 numeric and 3 categorical fields, ~357 bytes) and
 * labels; with --file, the lines of a JSONL file (e.g. `riskstream gen
 * --events 4096 --out ev.jsonl`).  Each pass decodes the whole pool
 * (it stays in cache: the decoder's own cost, not memory's).
 *
 * usage: bench_decode [--iters N] [--rounds N] [--file FILE]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/proto.h"

rs_err_t rs_event_from_json_ref(const char *buf, size_t len, rs_event_t *ev,
                                char *errstr, size_t errstr_size);
rs_err_t rs_label_from_json_ref(const char *buf, size_t len, rs_label_t *lb,
                                char *errstr, size_t errstr_size);

#define POOL 4096

static char *msg[POOL];
static size_t msg_len[POOL];
static int n_msg;
static char *lab[POOL];
static size_t lab_len[POOL];

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng = 42;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void make_pool(void) {
    static const char *const mcc[] = {"transport", "fuel", "grocery",
                                      "restaurant", "online_retail", "travel"};
    static const char *const cc[] = {"CA", "US", "GB", "DE", "FR"};
    static const char *const ch[] = {"online", "pos", "atm"};
    char b[1024];
    for (int i = 0; i < POOL; i++) {
        int n = snprintf(
            b, sizeof(b),
            "{\"id\":\"tx-%d\",\"type\":\"card_tx\",\"entity_id\":\"card-%u\","
            "\"counterparty_id\":\"m-%u\",\"event_time_ms\":%lld,\"amount\":%u.%u,"
            "\"numeric_fields\":[{\"name\":\"hour_of_day\",\"value\":%u},"
            "{\"name\":\"day_of_week\",\"value\":%u}],\"categorical_fields\":"
            "[{\"name\":\"mcc\",\"value\":\"%s\"},{\"name\":\"country\","
            "\"value\":\"%s\"},{\"name\":\"channel\",\"value\":\"%s\"}],"
            "\"schema_version\":1}",
            i + 1, rnd(5000), rnd(2000), 1767225608347LL + i * 131LL,
            rnd(500), rnd(100), rnd(24), rnd(7), mcc[rnd(6)], cc[rnd(5)],
            ch[rnd(3)]);
        msg[i] = strdup(b);
        msg_len[i] = (size_t)n;
    }
    n_msg = POOL;
}

static int load_file(const char *path) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (!f) return -1;
    while (n_msg < POOL && (n = getline(&line, &cap, f)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        msg[n_msg] = malloc((size_t)n + 1);
        memcpy(msg[n_msg], line, (size_t)n);
        msg_len[n_msg++] = (size_t)n;
    }
    free(line);
    fclose(f);
    return n_msg ? 0 : -1;
}

static void make_labels(void) {
    char b[256];
    for (int i = 0; i < POOL; i++) {
        int n = snprintf(b, sizeof(b),
                         "{\"event_id\":\"tx-%d\",\"entity_id\":\"card-%u\","
                         "\"value\":%d,\"label_time_ms\":%lld,"
                         "\"schema_version\":1}",
                         i + 1, rnd(5000), (int)rnd(2),
                         1767225608347LL + i * 997LL);
        lab[i] = strdup(b);
        lab_len[i] = (size_t)n;
    }
}

typedef rs_err_t ev_fn(const char *, size_t, rs_event_t *, char *, size_t);
typedef rs_err_t lb_fn(const char *, size_t, rs_label_t *, char *, size_t);

static double run_ev(ev_fn *fn, long iters, long *okc) {
    static rs_event_t ev;
    char es[256];
    double t0 = cpu_ns();
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < n_msg; i++)
            *okc += fn(msg[i], msg_len[i], &ev, es, sizeof(es)) == RS_OK;
    return (cpu_ns() - t0) / ((double)iters * n_msg);
}

static double run_lb(lb_fn *fn, long iters) {
    rs_label_t lb;
    char es[256];
    long ok = 0;
    double t0 = cpu_ns();
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < POOL; i++)
            ok += fn(lab[i], lab_len[i], &lb, es, sizeof(es)) == RS_OK;
    if (ok != iters * POOL) abort();
    return (cpu_ns() - t0) / ((double)iters * POOL);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long iters = 20, rounds = 7;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atol(argv[++i]);
        else if (!strcmp(argv[i], "--file") && i + 1 < argc) file = argv[++i];
        else {
            fprintf(stderr, "usage: bench_decode [--iters N] [--rounds N] "
                            "[--file FILE]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 99 || iters < 1) return 2;
    if (file ? load_file(file) : (make_pool(), 0)) {
        fprintf(stderr, "bench_decode: cannot read %s\n", file);
        return 1;
    }
    make_labels();
    double bytes = 0;
    for (int i = 0; i < n_msg; i++) bytes += (double)msg_len[i];
    double ev_ref[99], ev_now[99], lb_ref[99], lb_now[99];
    long ok_ref = 0, ok_now = 0, warm = 0;
    run_ev(rs_event_from_json, 1, &warm);
    for (long r = 0; r < rounds; r++) { /* interleaved, order alternating */
        if (r & 1) {
            ev_now[r] = run_ev(rs_event_from_json, iters, &ok_now);
            ev_ref[r] = run_ev(rs_event_from_json_ref, iters, &ok_ref);
            lb_now[r] = run_lb(rs_label_from_json, iters);
            lb_ref[r] = run_lb(rs_label_from_json_ref, iters);
        } else {
            ev_ref[r] = run_ev(rs_event_from_json_ref, iters, &ok_ref);
            ev_now[r] = run_ev(rs_event_from_json, iters, &ok_now);
            lb_ref[r] = run_lb(rs_label_from_json_ref, iters);
            lb_now[r] = run_lb(rs_label_from_json, iters);
        }
    }
    qsort(ev_ref, (size_t)rounds, sizeof(double), cmp_d);
    qsort(ev_now, (size_t)rounds, sizeof(double), cmp_d);
    qsort(lb_ref, (size_t)rounds, sizeof(double), cmp_d);
    qsort(lb_now, (size_t)rounds, sizeof(double), cmp_d);
    long m = rounds / 2;
    printf("bench_decode: %d events (%s, %.0f bytes mean; accepted per "
           "pass: ref %ld, now %ld), %ld rounds x %ld passes, thread CPU\n",
           n_msg, file ? file : "built-in card events", bytes / n_msg,
           ok_ref / (rounds * iters), ok_now / (rounds * iters), rounds, iters);
    printf("%-34s %10s %10s %10s\n", "ns per message (median [min-max])",
           "ref 6a42981", "now", "now/ref");
    printf("%-34s %6.0f [%.0f-%.0f] %6.0f [%.0f-%.0f] %6.3f\n",
           "event JSON -> rs_event_t", ev_ref[m], ev_ref[0], ev_ref[rounds - 1],
           ev_now[m], ev_now[0], ev_now[rounds - 1], ev_now[m] / ev_ref[m]);
    printf("%-34s %6.0f [%.0f-%.0f] %6.0f [%.0f-%.0f] %6.3f\n",
           "label JSON -> rs_label_t", lb_ref[m], lb_ref[0], lb_ref[rounds - 1],
           lb_now[m], lb_now[0], lb_now[rounds - 1], lb_now[m] / lb_ref[m]);
    printf("command: bench_decode --iters %ld --rounds %ld%s%s\n", iters,
           rounds, file ? " --file " : "", file ? file : "");
    return 0;
}
