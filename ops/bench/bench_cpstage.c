/* bench_cpstage.c -- the counterparty stage's extra cost per instance (not
 * a test).  Every instance of a group runs the stage over EVERY event and
 * label of the topics (scoring/cpstage.h), so its cost is paid N times in
 * a group of N.  This measures, on one thread (thread CPU time), on a
 * generated card stream (cards preset, JSON as on the topics):
 *   - the scoring stage's feature work per event: decode + the engine in
 *     ALL scope (what one instance did for its own events before), and in
 *     ENTITY scope (what it does now);
 *   - decode alone (rs_event_decode / rs_label_decode, JSON): the part of
 *     the stage's work that repeats the scoring stage's decode;
 *   - the stage's per-message work: push + canonical merge over P
 *     partitions + decode + the store (SHARED scope) + the result kept,
 *     for each P of --parts (default 8,32,64 partitions per topic).
 * The Kafka side (the extra consumer fetching every partition) is not in
 * here: see docs/features.md ("State and partitions") for the measured
 * runs of serve.
 *
 *   ./ops/bench/bench_cpstage [--entities N] [--days N] [--seed N]
 *                             [--parts P,P,...]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "features/features.h"
#include "ops/gen/gen.h"
#include "proto/proto.h"
#include "scoring/cpstage_int.h"

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
    snprintf(buf, size, "%s, %ld cores, %s %s", model,
             sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
}

typedef struct msg_s {
    int topic;
    uint32_t key;        /* entity hash: the partition is key % P */
    char *payload;
    size_t len;
} msg_t;

int main(int argc, char **argv) {
    int64_t entities = 20000, days = 10, seed = 42;
    enum { MAXP = 16 };
    int P[MAXP] = {8, 32, 64}, np = 3;
    const char *parts_arg = "8,32,64";
    static const struct option opts[] = {{"entities", 1, NULL, 'e'},
                                         {"days", 1, NULL, 'd'},
                                         {"seed", 1, NULL, 's'},
                                         {"parts", 1, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "e:d:s:p:", opts, NULL)) != -1) {
        if (c == 'e') entities = atoll(optarg);
        else if (c == 'd') days = atoll(optarg);
        else if (c == 's') seed = atoll(optarg);
        else if (c == 'p') {
            parts_arg = optarg;
            np = 0;
            for (const char *s = optarg; *s;) {
                char *end;
                long v = strtol(s, &end, 10);
                if (end == s || v < 1 || v > 4096 || np == MAXP ||
                    (*end && *end != ',')) {
                    fprintf(stderr, "bench_cpstage: --parts: expected up to "
                                    "%d comma-separated counts in 1..4096, "
                                    "got '%s'\n", MAXP, optarg);
                    return 2;
                }
                P[np++] = (int)v;
                s = *end ? end + 1 : end;
            }
            if (!np) {
                fprintf(stderr, "bench_cpstage: --parts: empty\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_cpstage [--entities N] [--days N] "
                            "[--seed N] [--parts P,P,...]\n");
            return 2;
        }
    }
    rs_log_set_level(RS_LOG_WARN);
    char errstr[512];
    rs_gen_conf_t gc;
    rs_gen_conf_defaults(&gc);
    gc.seed = seed;
    gc.entities = entities;
    gc.duration_ms = days * 86400000LL;
    rs_gen_t *g = rs_gen_new(&gc, errstr, sizeof(errstr));
    if (!g) { fprintf(stderr, "gen: %s\n", errstr); return 1; }
    size_t cap = 1 << 20, n = 0;
    msg_t *ms = malloc(cap * sizeof(*ms));
    rs_gen_rec_t *rec = malloc(sizeof(*rec));
    char buf[RS_MSG_MAX];
    uint64_t nev = 0, nlb = 0;
    while (rs_gen_next(g, rec) == 1) {
        if (n == cap) ms = realloc(ms, (cap *= 2) * sizeof(*ms));
        int len = rec->kind == RS_GEN_EVENT
                      ? rs_event_encode(RS_FORMAT_JSON, &rec->ev, buf, sizeof(buf))
                      : rs_label_encode(RS_FORMAT_JSON, &rec->lb, buf, sizeof(buf));
        if (len <= 0) continue;
        msg_t *m = &ms[n++];
        m->topic = rec->kind == RS_GEN_EVENT ? 0 : 1;
        const char *ent = m->topic ? rec->lb.entity_id : rec->ev.entity_id;
        m->key = (uint32_t)rs_hash_str(ent);
        m->payload = malloc((size_t)len);
        memcpy(m->payload, buf, (size_t)len);
        m->len = (size_t)len;
        if (m->topic) nlb++; else nev++;
    }
    rs_gen_destroy(g);

    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    fc.label_maturity = 3 * 86400000LL; /* the default label delay */
    fc.max_keys = entities * 2;
    rs_features_t *probe = rs_features_new(&fc, errstr, sizeof(errstr));
    if (!probe) { fprintf(stderr, "features: %s\n", errstr); return 1; }
    int dim = rs_features_dim(probe), nsh = 0;
    for (int i = 0; i < dim; i++) nsh += rs_features_is_shared(probe, i);
    rs_features_destroy(probe);
    float *x = calloc((size_t)dim, sizeof(float));
    rs_event_t *ev = malloc(sizeof(*ev));
    rs_label_t lb;

    /* 1. the scoring stage's feature work, ALL and ENTITY scope */
    double us_scope[2];
    for (int sc = 0; sc < 2; sc++) {
        rs_features_t *f = rs_features_new(&fc, errstr, sizeof(errstr));
        if (sc) rs_features_set_scope(f, RS_FEATURES_SCOPE_ENTITY);
        double t0 = cpu_s();
        for (size_t i = 0; i < n; i++) {
            const msg_t *m = &ms[i];
            if (m->topic == 0) {
                if (rs_event_decode(RS_FORMAT_JSON, m->payload, m->len, ev,
                                    errstr, sizeof(errstr)) == RS_OK)
                    rs_features_process(f, ev, x, NULL);
            } else if (rs_label_decode(RS_FORMAT_JSON, m->payload, m->len, &lb,
                                       errstr, sizeof(errstr)) == RS_OK) {
                rs_features_label(f, &lb);
            }
        }
        us_scope[sc] = (cpu_s() - t0) * 1e6 / (double)n;
        rs_features_destroy(f);
    }

    /* 2. decode alone, what the stage repeats of the scoring stage */
    double us_decode;
    {
        uint64_t ok = 0;
        double t0 = cpu_s();
        for (size_t i = 0; i < n; i++) {
            const msg_t *m = &ms[i];
            if (m->topic == 0)
                ok += rs_event_decode(RS_FORMAT_JSON, m->payload, m->len, ev,
                                      errstr, sizeof(errstr)) == RS_OK;
            else
                ok += rs_label_decode(RS_FORMAT_JSON, m->payload, m->len, &lb,
                                      errstr, sizeof(errstr)) == RS_OK;
        }
        us_decode = (cpu_s() - t0) * 1e6 / (double)n;
        if (ok != n) fprintf(stderr, "decode: %llu of %zu rejected\n",
                             (unsigned long long)(n - ok), n);
    }

    /* 3. the stage: push in the topics' order, merge every 256 */
    double us_stage[MAXP];
    uint64_t merged[MAXP];
    for (int k = 0; k < np; k++) {
        rs_cpm_conf_t mc = {.features = &fc,
                            .nparts = {P[k], P[k]},
                            .dedup_window_ms = 86400000LL,
                            .dedup_max = 262144};
        rs_cpm_t *cm = rs_cpm_new(&mc, errstr, sizeof(errstr));
        if (!cm) { fprintf(stderr, "stage: %s\n", errstr); return 1; }
        int64_t *off = calloc((size_t)P[k] * 2, sizeof(int64_t));
        double t0 = cpu_s();
        for (size_t i = 0; i < n; i++) {
            const msg_t *m = &ms[i];
            int p = (int)(m->key % (uint32_t)P[k]);
            rs_cpm_push(cm, m->topic, p, off[m->topic * P[k] + p]++, m->payload,
                        m->len, NULL);
            if ((i & 255) == 255) rs_cpm_step(cm, 0, 1 << 30);
        }
        for (int t = 0; t < 2; t++)
            for (int p = 0; p < P[k]; p++) rs_cpm_eof(cm, t, p, 0);
        while (rs_cpm_step(cm, 0, 1 << 30) > 0) {}
        us_stage[k] = (cpu_s() - t0) * 1e6 / (double)n;
        rs_cpm_stats_t st;
        rs_cpm_stats(cm, &st);
        merged[k] = st.events + st.labels;
        free(off);
        rs_cpm_destroy(cm);
    }

    char mach[512];
    machine(mach, sizeof(mach));
    printf("bench_cpstage -- the counterparty stage's cost per message, 1 thread "
           "(thread CPU time)\n");
    printf("machine : %s\n", mach);
    printf("command : %s --entities %lld --days %lld --seed %lld --parts %s\n",
           argv[0], (long long)entities, (long long)days, (long long)seed,
           parts_arg);
    printf("stream  : %llu events, %llu labels (generated cards, JSON); "
           "cards preset, %d features of which %d shared\n\n",
           (unsigned long long)nev, (unsigned long long)nlb, dim, nsh);
    printf("| work per input message | us |\n|---|---:|\n");
    printf("| scoring stage: decode + features, ALL scope (one instance, before) | %.2f |\n",
           us_scope[0]);
    printf("| scoring stage: decode + features, ENTITY scope (with the stage) | %.2f |\n",
           us_scope[1]);
    printf("| decode only (JSON event or label), repeated by the stage | %.2f |\n",
           us_decode);
    for (int k = 0; k < np; k++)
        printf("| stage, %d partitions per topic: push + merge + decode + store + result (%llu merged) | %.2f |\n",
               P[k], (unsigned long long)merged[k], us_stage[k]);
    for (size_t i = 0; i < n; i++) free(ms[i].payload);
    free(ms);
    free(rec);
    free(ev);
    free(x);
    return 0;
}
