/* bench_learnlog.c -- the learning log at scale (not a test).
 *
 * Appends N learning records of the default sequence model (the cards
 * preset's feature count, or --dim) to an on-disk log of one partition,
 * then measures what the issue asks: bytes on disk per event, the
 * process's memory (anonymous vs file-backed resident pages) after 1 M and
 * after N records, label joins per second (random event ids of the whole
 * log: find + read), maturity throughput (cursor scan) and the append
 * rate.  Prints a Markdown table with the command.
 *
 *   bench_learnlog [--records N] [--dim D] [--dir DIR] [--labels K]
 *
 * The directory (default: a new one under $TMPDIR) is removed at the end.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "model/learner.h"
#include "model/learnlog.h"
#include "model/model.h"

static double now_s(void) { return (double)rs_clock_mono_ns() * 1e-9; }

/* VmRSS, RssAnon, RssFile of this process, kB. */
static void rss(long *tot, long *anon, long *file) {
    *tot = *anon = *file = -1;
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    while (fp && fgets(line, sizeof(line), fp)) {
        if (!strncmp(line, "VmRSS:", 6)) *tot = atol(line + 6);
        if (!strncmp(line, "RssAnon:", 8)) *anon = atol(line + 8);
        if (!strncmp(line, "RssFile:", 8)) *file = atol(line + 8);
    }
    if (fp) fclose(fp);
}

static int rm1(const char *p, const struct stat *sb, int f, struct FTW *w) {
    (void)sb; (void)f; (void)w;
    return remove(p);
}

int main(int argc, char **argv) {
    long long nrec = 10000000, nlab = 200000;
    int dim = 45;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--records")) nrec = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--labels")) nlab = atoll(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_learnlog [--records N] [--dim D] "
                            "[--dir DIR] [--labels K]\n");
            return 2;
        }
    }
    char tmp[512];
    if (!dir) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof(tmp), "%s/rs-bench-learnlog-XXXXXX",
                 t && t[0] ? t : "/tmp");
        if (!mkdtemp(tmp)) return 1;
        dir = tmp;
    }
    /* the default sequence model's records for `dim` features */
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    const char **names = rs_calloc((size_t)dim, sizeof(*names));
    char (*nb)[16] = rs_calloc((size_t)dim, sizeof(*nb));
    for (int i = 0; i < dim; i++) {
        snprintf(nb[i], sizeof(nb[i]), "f%d", i);
        names[i] = nb[i];
    }
    char err[512];
    rs_model_t *m = rs_model_new(&c, dim, names, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(m, &meta);
    rs_model_destroy(m); /* only its record layout was needed */
    rs_err_t e;
    rs_learnlog_t *lg = rs_learnlog_open(dir, 0, &meta, c.log_segment, &e, err,
                                         sizeof(err));
    if (!lg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const size_t R = meta.rec_size;
    const int B = 512;
    uint8_t *buf = rs_calloc((size_t)B, R);
    rs_rng_t rng;
    rs_rng_seed(&rng, 1);
    const int64_t t0 = 1767225600000LL;
    long r1[3] = {0, 0, 0}, rn[3];
    double ta = now_s();
    for (long long i = 0; i < nrec; i += B) {
        int n = (int)RS_MIN((long long)B, nrec - i);
        for (int k = 0; k < n; k++) {
            uint8_t *r = buf + (size_t)k * R;
            memset(r, 0, R);
            rs_lrec_hdr_t *h = (rs_lrec_hdr_t *)r;
            char id[32];
            snprintf(id, sizeof(id), "tx-%lld", i + k);
            h->id = rs_hash_str(id);
            h->entity = rs_rng_below(&rng, 1000000) + 1;
            h->t = t0 + (i + k) * 100; /* 10 000 events/s */
            h->score = (float)rs_rng_uniform(&rng);
            float *x = (float *)(void *)(r + R - 4 * (size_t)dim);
            for (int j = 0; j < dim; j++) x[j] = (float)rs_rng_normal(&rng);
            rs_lrec_seal(r, R);
        }
        if (rs_learnlog_append(lg, buf, n, err, sizeof(err)) != RS_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (i < 1000000 && i + n >= 1000000) {
            rs_learnlog_index(lg); /* as the resolver would by then */
            rss(&r1[0], &r1[1], &r1[2]);
        }
    }
    double append_s = now_s() - ta;
    double ti = now_s();
    rs_learnlog_index(lg);
    double index_s = now_s() - ti;
    rss(&rn[0], &rn[1], &rn[2]);
    rs_learnlog_stats_t st;
    rs_learnlog_stats(lg, &st);

    /* label joins: random events of the whole log, no time hint */
    double tj = now_s();
    long long found = 0;
    for (long long k = 0; k < nlab; k++) {
        long long i = (long long)rs_rng_below(&rng, (uint64_t)nrec);
        char id[32];
        snprintf(id, sizeof(id), "tx-%lld", i);
        uint64_t pos;
        if (rs_learnlog_find(lg, rs_hash_str(id), 0, &pos) == RS_OK) {
            const rs_lrec_hdr_t *h = rs_learnlog_rec(lg, pos);
            found += h && h->t == t0 + i * 100;
        }
    }
    double join_s = now_s() - tj;
    rs_learnlog_stats_t st2;
    rs_learnlog_stats(lg, &st2);
    /* maturity: resolve the older half by the cursor */
    double tm = now_s();
    uint64_t pos;
    long long matured = 0;
    while (rs_learnlog_next_mature(lg, t0 + nrec / 2 * 100, &pos) == RS_OK) {
        rs_learnlog_set_state(lg, pos, RS_LREC_LEARNED | RS_LREC_MATURED);
        matured++;
    }
    double mature_s = now_s() - tm;

    char host[64] = "";
    gethostname(host, sizeof(host));
    printf("\nbench_learnlog --records %lld --dim %d  (host %s, %ld cores, "
           "dir %s)\n\n", nrec, dim, host, sysconf(_SC_NPROCESSORS_ONLN), dir);
    printf("| measure | value |\n|---|---:|\n");
    printf("| record size (seq defaults, %d features) | %zu B |\n", dim, R);
    printf("| bytes on disk per event (log + index, allocated) | %.0f B |\n",
           (double)st.bytes / (double)nrec);
    printf("| segments | %llu |\n", (unsigned long long)st.segments);
    printf("| append | %.2f M records/s (%.1f s) |\n",
           (double)nrec / append_s / 1e6, append_s);
    printf("| index (resolver) | %.2f M records/s |\n",
           index_s > 0 ? (double)nrec / index_s / 1e6 : 0.0);
    printf("| RSS after 1 M records: total / anonymous / file pages | %.0f / "
           "%.0f / %.0f MiB |\n", r1[0] / 1024.0, r1[1] / 1024.0,
           r1[2] / 1024.0);
    printf("| RSS after %lld records: total / anonymous / file pages | %.0f / "
           "%.0f / %.0f MiB |\n", nrec, rn[0] / 1024.0, rn[1] / 1024.0,
           rn[2] / 1024.0);
    printf("| label joins (random events, no time hint) | %.0f /s (%lld of "
           "%lld found, %.1f segment probes per join) |\n",
           (double)nlab / join_s, found, nlab,
           (double)(st2.probes - st.probes) / (double)(st2.finds - st.finds));
    printf("| maturity scan | %.2f M records/s (%lld) |\n",
           mature_s > 0 ? (double)matured / mature_s / 1e6 : 0.0, matured);
    printf("| 120 days at 10 000 events/s | %.1f TB on disk (%.0f B x "
           "1.04e11) |\n",
           (double)st.bytes / (double)nrec * 1.0368e11 / 1e12,
           (double)st.bytes / (double)nrec);
    rs_learnlog_close(lg);
    free(buf);
    free(names);
    free(nb);
    if (dir == tmp) nftw(tmp, rm1, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
