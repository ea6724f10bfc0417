/* bench_features.c -- the feature engine alone (not a test: prints numbers).
 *
 *  1. events/s per core with the default card spec (preset cards: 27
 *     features over 10m/1h/1d/7d/30d windows, entity + counterparty keys,
 *     labels), single thread, synthetic cards paying merchants;
 *  2. memory per active key (entity slot + index, seen[], free list);
 *  3. checkpoint of N keys (default 1M): incremental write with the longest
 *     single step, file size, and restore time into a fresh handle.
 *
 * usage: bench_features [--events N] [--cards N] [--keys N] [--history N]
 *                       [--dir DIR] [--step SLOTS]
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "features/features.h"

#define DAY_MS 86400000LL

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_s(void) { return (double)rs_clock_mono_ns() / 1e9; }

/* CPU time of this thread: the rate per core even on a busy machine. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    snprintf(buf, size, "%s, %ld cores, %s %s", model, sysconf(_SC_NPROCESSORS_ONLN),
             u.sysname, u.release);
}

typedef struct gen_s {
    int ncards, nmerch;
    char (*card)[24];
    char (*merch)[24];
} gen_t;

int main(int argc, char **argv) {
    int64_t nev = 4000000, ncards = 50000, nkeys = 1000000, history = 64;
    int step_budget = 2048;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) nev = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cards") && i + 1 < argc) ncards = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--keys") && i + 1 < argc) nkeys = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--history") && i + 1 < argc) history = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--step") && i + 1 < argc) step_budget = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--events N] [--cards N] [--keys N] "
                    "[--history N] [--dir DIR] [--step SLOTS]\n", argv[0]);
            return 2;
        }
    }
    char mach[512], err[512];
    machine(mach, sizeof(mach));

    /* ---------------------------------------------------- throughput */
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = ncards * 2;
    c.max_counterparties = 20000;
    c.history = history;
    c.label_index = 1 << 20;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) { fprintf(stderr, "%s\n", err); return 1; }
    int dim = rs_features_dim(f);
    int nmerch = 5000;
    char (*card)[24] = calloc((size_t)ncards, 24);
    char (*merch)[24] = calloc((size_t)nmerch, 24);
    for (int64_t i = 0; i < ncards; i++) snprintf(card[i], 24, "card-%u", (unsigned)(i % 1000000000));
    for (int i = 0; i < nmerch; i++) snprintf(merch[i], 24, "m-%d", i);
    /* compact pregenerated stream: 30 days, in time order with mild jitter */
    uint32_t *ec = malloc(sizeof(uint32_t) * (size_t)nev);
    uint32_t *em = malloc(sizeof(uint32_t) * (size_t)nev);
    int64_t *et = malloc(sizeof(int64_t) * (size_t)nev);
    float *ea = malloc(sizeof(float) * (size_t)nev);
    rs_rng_t rng;
    rs_rng_seed(&rng, 42);
    const int64_t T0 = 1767225600000LL, span = 30 * DAY_MS;
    for (int64_t i = 0; i < nev; i++) {
        ec[i] = (uint32_t)rs_rng_below(&rng, (uint64_t)ncards);
        /* cards shop at a few favourite merchants */
        em[i] = (uint32_t)((ec[i] * 7 + rs_rng_below(&rng, 4) * 131) % (uint32_t)nmerch);
        et[i] = T0 + span * i / nev - (int64_t)rs_rng_below(&rng, 60000);
        ea[i] = (float)exp(rs_rng_normal(&rng) + 3.5);
    }
    static rs_event_t ev;
    memset(&ev, 0, sizeof(ev));
    strcpy(ev.type, "card_tx");
    float *x = calloc((size_t)dim, sizeof(float));
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    lb.value = 1;

    /* loop overhead alone (filling the event) */
    double t0 = cpu_s();
    uint64_t sink = 0;
    for (int64_t i = 0; i < nev; i++) {
        memcpy(ev.entity_id, card[ec[i]], 24);
        memcpy(ev.counterparty_id, merch[em[i]], 24);
        snprintf(ev.id, sizeof(ev.id), "t%lld", (long long)i);
        ev.event_time_ms = et[i];
        ev.amount = ea[i];
        sink += (uint64_t)ev.id[1];
    }
    double fill_s = cpu_s() - t0;

    double w0 = now_s();
    t0 = cpu_s();
    uint64_t nlab = 0;
    for (int64_t i = 0; i < nev; i++) {
        memcpy(ev.entity_id, card[ec[i]], 24);
        memcpy(ev.counterparty_id, merch[em[i]], 24);
        snprintf(ev.id, sizeof(ev.id), "t%lld", (long long)i);
        ev.event_time_ms = et[i];
        ev.amount = ea[i];
        rs_features_process(f, &ev, x, NULL);
        if ((i & 1023) == 0 && i > 5000) { /* ~0.1% fraud labels, a day later */
            snprintf(lb.event_id, sizeof(lb.event_id), "t%lld", (long long)(i - 5000));
            lb.label_time_ms = et[i];
            rs_features_label(f, &lb);
            nlab++;
        }
    }
    double run_s = cpu_s() - t0, run_wall = now_s() - w0;
    rs_features_stats_t st;
    rs_features_stats(f, &st);
    double eps = (double)nev / run_s, eps_net = (double)nev / (run_s - fill_s);
    double per_day = (double)nev / (double)ncards / 30.0;
    uint64_t slot = st.entity_slot_bytes;
    double key_bytes = (double)slot + 8 /* seen */ + 4 /* free list */ +
                       8 /* index at load <= 0.5 */ + 0.125 /* ckpt bitmap */;
    rs_features_destroy(f);
    free(x);

    /* history 32 geometry, for the memory table */
    c.history = 32;
    c.max_keys = 1000;
    c.max_counterparties = 1000;
    c.label_index = 1000;
    f = rs_features_new(&c, err, sizeof(err));
    rs_features_stats(f, &st);
    uint64_t slot32 = st.entity_slot_bytes;
    rs_features_destroy(f);

    /* ---------------------------------------------------- checkpoint */
    c.history = history;
    c.max_keys = nkeys;
    c.max_counterparties = 20000;
    c.label_index = 1 << 20;
    f = rs_features_new(&c, err, sizeof(err));
    rs_features_t *g = rs_features_new(&c, err, sizeof(err));
    if (!f || !g) { fprintf(stderr, "%s\n", err); return 1; }
    x = calloc((size_t)dim, sizeof(float));
    char kid[32];
    /* every key gets ~4 events over the last week (a few a day) */
    int64_t n_fill = nkeys * 4;
    t0 = now_s();
    for (int64_t i = 0; i < n_fill; i++) {
        int64_t k = i % nkeys;
        snprintf(kid, sizeof(kid), "card-%lld", (long long)k);
        memcpy(ev.entity_id, kid, sizeof(kid));
        memcpy(ev.counterparty_id, merch[(k * 7 + i / nkeys) % nmerch], 24);
        snprintf(ev.id, sizeof(ev.id), "f%lld", (long long)i);
        ev.event_time_ms = T0 + 7 * DAY_MS * i / n_fill;
        ev.amount = 10 + (double)(i % 97);
        rs_features_process(f, &ev, x, NULL);
    }
    double fill2_s = now_s() - t0;
    char path[1024];
    snprintf(path, sizeof(path), "%s/bench_features_%d.ckpt", dir, (int)getpid());
    const char blob[] = "offsets: events/0=123456 events/1=654321";
    t0 = now_s();
    if (rs_features_checkpoint_begin(f, path, blob, sizeof(blob), err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double max_step = 0, begin_s = now_s() - t0;
    int steps = 0, cap_d = 1 << 20;
    double *durs = malloc(sizeof(double) * (size_t)cap_d);
    double *cdurs = malloc(sizeof(double) * (size_t)cap_d);
    rs_err_t e;
    do {
        double s0 = now_s(), c0 = cpu_s();
        e = rs_features_checkpoint_step(f, step_budget);
        double d = now_s() - s0, cd = cpu_s() - c0;
        if (steps < cap_d) cdurs[steps] = cd;
        if (d > max_step) max_step = d;
        if (steps < cap_d) durs[steps] = d;
        steps++;
        /* scoring continues between steps */
        snprintf(kid, sizeof(kid), "card-%d", steps % 1000);
        memcpy(ev.entity_id, kid, sizeof(kid));
        snprintf(ev.id, sizeof(ev.id), "s%d", steps);
        ev.event_time_ms = T0 + 7 * DAY_MS + steps;
        rs_features_process(f, &ev, x, NULL);
    } while (e == RS_ERR_AGAIN);
    double s0 = now_s();
    rs_features_ckfile_t *cf = NULL;
    if (e || rs_features_checkpoint_detach(f, &cf, err, sizeof(err))) {
        fprintf(stderr, "checkpoint: %s\n", err);
        return 1;
    }
    double end_s = now_s() - s0;
    int nd = steps < cap_d ? steps : cap_d;
    qsort(durs, (size_t)nd, sizeof(double), cmp_double);
    double p50 = durs[nd / 2], p99 = durs[(nd * 99) / 100];
    qsort(cdurs, (size_t)nd, sizeof(double), cmp_double);
    double cp50 = cdurs[nd / 2], cp99 = cdurs[(nd * 99) / 100], cmax = cdurs[nd - 1];
    s0 = now_s();
    if (rs_features_ckfile_commit(cf, err, sizeof(err))) { /* any thread */
        fprintf(stderr, "checkpoint: %s\n", err);
        return 1;
    }
    double commit_s = now_s() - s0, write_s = now_s() - t0;
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long fsize = ftell(fp);
    fclose(fp);
    t0 = now_s();
    double rc0 = cpu_s();
    void *bl = NULL;
    size_t bl_len = 0;
    if (rs_features_checkpoint_read(g, path, &bl, &bl_len, err, sizeof(err))) {
        fprintf(stderr, "restore: %s\n", err);
        return 1;
    }
    double read_s = now_s() - t0, read_cpu = cpu_s() - rc0;
    rs_features_stats(g, &st);
    free(bl);
    unlink(path);
    rs_features_destroy(f);
    rs_features_destroy(g);

    printf("bench_features -- feature engine alone, 1 thread\n");
    printf("machine : %s\n", mach);
    printf("command : %s --events %lld --cards %lld --keys %lld --history %lld "
           "--dir %s --step %d\n", argv[0], (long long)nev, (long long)ncards,
           (long long)nkeys, (long long)history, dir, step_budget);
    printf("spec    : preset cards, %d features, history %lld\n\n", dim,
           (long long)history);
    printf("| measure | value | goal |\n|---|---|---|\n");
    printf("| events/s/core (process incl. building the event) | %.2f M | >= 2 M |\n",
           eps / 1e6);
    printf("| events/s/core (process only, loop overhead %.0f ns subtracted) | %.2f M | >= 2 M |\n",
           fill_s / (double)nev * 1e9, eps_net / 1e6);
    printf("| ns/event (thread CPU time; wall %.0f) | %.0f | |\n",
           run_wall / (double)nev * 1e9, run_s / (double)nev * 1e9);
    printf("| stream | %lld events, %lld cards (%.1f/day), 5000 merchants, %llu labels | |\n",
           (long long)nev, (long long)ncards, per_day, (unsigned long long)nlab);
    printf("| memory per entity key (history %lld) | %llu B slot, %.0f B with index | <= 1 KB |\n",
           (long long)history, (unsigned long long)slot, key_bytes);
    printf("| memory per entity key (history 32) | %llu B slot, %.0f B with index | <= 1 KB |\n",
           (unsigned long long)slot32, (double)slot32 + 20);
    printf("| checkpoint keys | %llu entity + %llu other | |\n",
           (unsigned long long)st.entity_keys, (unsigned long long)st.cp_keys);
    printf("| checkpoint file | %.1f MB | |\n", fsize / 1e6);
    printf("| checkpoint write (incremental, begin..end) | %.2f s in %d steps | |\n",
           write_s, steps);
    printf("| scoring-thread pauses: begin / detach | %.2f / %.2f ms | few ms |\n",
           begin_s * 1e3, end_s * 1e3);
    printf("| one step (%d slots): p50 / p99 / max | %.2f / %.2f / %.2f ms | few ms |\n",
           step_budget, p50 * 1e3, p99 * 1e3, max_step * 1e3);
    printf("| one step, thread CPU time: p50 / p99 / max | %.2f / %.2f / %.2f ms | |\n",
           cp50 * 1e3, cp99 * 1e3, cmax * 1e3);
    printf("| fsync + rename (commit, off the scoring thread) | %.1f ms | |\n",
           commit_s * 1e3);
    printf("| restore %lld keys (wall; thread CPU) | %.2f s; %.2f s | <= 2 s |\n",
           (long long)nkeys, read_s, read_cpu);
    printf("| (filling %lld keys took) | %.2f s | |\n", (long long)nkeys, fill2_s);
    (void)sink;
    free(durs);
    free(cdurs);
    free(card); free(merch); free(ec); free(em); free(et); free(ea); free(x);
    return 0;
}
