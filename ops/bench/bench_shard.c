/* bench_shard.c -- the model forward sharded by entity (model/shard.h) on
 * 1, 2, ... threads (not a test).
 *
 * A "seq" model at the `seq:` defaults (gemm exact), every entity's cache
 * warmed to a full history, then rs_model_shard_forward on batches of
 * --batch events (entities uniform over --entities), forward + explanation
 * + learning records (REMEMBER), as serve calls it.  For each thread count
 * (a pool of that size; 1 = rs_model_forward on the caller), ROUNDS rounds
 * interleaved (1, 2, 1, 2, ...): events/s over the wall clock and process
 * CPU per event (CLOCK_PROCESS_CPUTIME_ID), medians printed with the load
 * average before and after (a shared machine).  That the results are
 * the same bit for bit is tests/model/test_shard.c's business.
 *
 *   ./ops/bench/bench_shard [--threads "1 2"] [--batch 512]
 *                           [--entities 10000] [--seconds 2] [--rounds 3]
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "common/pool.h"
#include "model/learnlog.h" /* RS_LPOS */
#include "model/model.h"
#include "model/shard.h"

extern void openblas_set_num_threads(int);

#define NB 32 /* distinct batches cycled */

typedef struct bench_s {
    int dim, batch, entities;
    char (*ids)[24], (*ents)[24], (*cps)[24];
    float *x;
    rs_model_input_t *in;  /* [NB * batch] */
    rs_model_output_t *out;
    float *contrib;
    uint8_t *lrec;
    size_t lrec_size;
    int64_t t;
} bench_t;

static double now_s(void) { return (double)rs_clock_mono_ns() * 1e-9; }

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void loadavg(char *buf, size_t cap) {
    FILE *f = fopen("/proc/loadavg", "r");
    snprintf(buf, cap, "?");
    if (!f) return;
    if (fgets(buf, (int)cap, f)) buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

static void make_batches(bench_t *b, rs_rng_t *rng, int id0) {
    for (int i = 0; i < NB * b->batch; i++) {
        b->t += 1 + (int64_t)rs_rng_below(rng, 2000);
        snprintf(b->ids[i], sizeof(b->ids[i]), "tx-%d", id0 + i);
        snprintf(b->ents[i], sizeof(b->ents[i]), "card-%d",
                 (int)rs_rng_below(rng, (uint64_t)b->entities));
        snprintf(b->cps[i], sizeof(b->cps[i]), "m-%d",
                 (int)rs_rng_below(rng, 5000));
        float *x = b->x + (size_t)i * b->dim;
        for (int k = 0; k < b->dim; k++) x[k] = (float)rs_rng_normal(rng);
        rs_model_input_t *in = &b->in[i];
        memset(in, 0, sizeof(*in));
        in->event_id = b->ids[i];
        in->entity_id = b->ents[i];
        in->counterparty_id = b->cps[i];
        in->event_time_ms = b->t;
        in->amount = (float)rs_rng_uniform(rng) * 100.0f;
        in->x = x;
        in->n_cat = 3;
        for (int c = 0; c < 3; c++)
            in->cat_hash[c] = rs_rng_below(rng, 50) + 100u * c;
        in->lrec = b->lrec + (size_t)(i % b->batch) * b->lrec_size;
        in->lpos = RS_LPOS(0, (uint64_t)(id0 + i));
    }
}

/* A model with every entity's cache full (same seed: alike for every
 * thread count). */
static rs_model_t *warm(bench_t *b, const char **names) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = b->batch;
    c.seq.max_entities = RS_MAX(16384, b->entities + b->batch + 1);
    char err[256];
    rs_model_t *m = rs_model_new(&c, b->dim, names, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "%s\n", err);
        exit(RS_EXIT_RUNTIME);
    }
    rs_rng_t rng;
    rs_rng_seed(&rng, 7);
    b->t = 1700000000000LL;
    int id = 0;
    for (int64_t done = 0; done < (int64_t)b->entities * c.seq.history * 2;
         done += (int64_t)NB * b->batch) {
        make_batches(b, &rng, id);
        for (int k = 0; k < NB; k++)
            rs_model_forward(m, b->in + (size_t)k * b->batch, b->batch, b->out,
                             NULL, 0);
        id += NB * b->batch;
    }
    make_batches(b, &rng, id);
    return m;
}

int main(int argc, char **argv) {
    bench_t b = {.dim = 17, .batch = 512, .entities = 10000};
    double seconds = 2.0;
    int rounds = 3, nthr = 0, thr[16];
    const char *tl = "1 2";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) tl = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) b.batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--entities")) b.entities = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: %s [--threads \"1 2\"] [--batch N] "
                    "[--entities N] [--seconds S] [--rounds N]\n", argv[0]);
            return RS_EXIT_USAGE;
        }
    }
    for (const char *p = tl; *p && nthr < 16;) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) break;
        thr[nthr++] = (int)RS_MAX(1, RS_MIN(v, RS_POOL_MAX));
        p = e;
    }
    if (nthr < 1 || b.batch < 1 || b.entities < 1 || rounds < 1) {
        fprintf(stderr, "bad arguments\n");
        return RS_EXIT_USAGE;
    }
    openblas_set_num_threads(1);
    rs_log_set_level(RS_LOG_WARN);

    const size_t rows = (size_t)NB * b.batch;
    b.x = rs_aligned_calloc(rows * b.dim, sizeof(float));
    b.ids = calloc(rows, sizeof(*b.ids));
    b.ents = calloc(rows, sizeof(*b.ents));
    b.cps = calloc(rows, sizeof(*b.cps));
    b.in = calloc(rows, sizeof(*b.in));
    b.out = calloc((size_t)b.batch, sizeof(*b.out));
    b.contrib = rs_aligned_calloc((size_t)b.batch * b.dim, sizeof(float));
    const char **names = calloc((size_t)b.dim, sizeof(*names));
    char (*nb)[16] = calloc((size_t)b.dim, sizeof(*nb));
    for (int i = 0; i < b.dim; i++) {
        snprintf(nb[i], sizeof(nb[i]), "f%d", i);
        names[i] = nb[i];
    }

    /* one model per thread count, warmed alike */
    rs_model_t **m = calloc((size_t)nthr, sizeof(*m));
    rs_pool_t **pool = calloc((size_t)nthr, sizeof(*pool));
    rs_model_shard_t **sh = calloc((size_t)nthr, sizeof(*sh));
    double *eps = calloc((size_t)nthr * rounds, sizeof(double));
    double *cpe = calloc((size_t)nthr * rounds, sizeof(double));
    char err[256];
    {
        /* the learning records' buffer (one batch's) */
        rs_model_conf_t c;
        rs_model_conf_init(&c);
        c.kind = RS_MODEL_SEQ;
        c.batch_max = b.batch;
        rs_model_t *tmp = rs_model_new(&c, b.dim, names, err, sizeof(err));
        if (!tmp) {
            fprintf(stderr, "%s\n", err);
            return RS_EXIT_RUNTIME;
        }
        b.lrec_size = rs_model_lrec_size(tmp);
        rs_model_destroy(tmp);
        b.lrec = rs_aligned_calloc((size_t)b.batch, b.lrec_size);
    }
    for (int t = 0; t < nthr; t++) {
        m[t] = warm(&b, names);
        rs_err_t e;
        pool[t] = thr[t] > 1 ? rs_pool_new(thr[t], "rs-bench", &e, err,
                                           sizeof(err))
                             : NULL;
        if (thr[t] > 1 && !pool[t]) {
            fprintf(stderr, "%s\n", err);
            return RS_EXIT_RUNTIME;
        }
        sh[t] = rs_model_shard_new(m[t], pool[t], b.batch, err, sizeof(err));
        if (!sh[t]) {
            fprintf(stderr, "%s\n", err);
            return RS_EXIT_RUNTIME;
        }
    }
    char la0[128], la1[128];
    loadavg(la0, sizeof(la0));
    const unsigned flags = RS_MODEL_FWD_EXPLAIN | RS_MODEL_FWD_REMEMBER;
    for (int r = 0; r < rounds; r++)
        for (int t = 0; t < nthr; t++) {
            double w0 = now_s(), c0 = cpu_s(), t_end = w0 + seconds;
            long ev = 0;
            int k = 0;
            while (now_s() < t_end || k % NB) {
                rs_model_input_t *in = b.in + (size_t)(k % NB) * b.batch;
                for (int i = 0; i < b.batch; i++) in[i].event_time_ms += 1000;
                if (rs_model_shard_forward(sh[t], in, b.batch, b.out,
                                           b.contrib, flags) != RS_OK)
                    abort();
                ev += b.batch;
                k++;
            }
            double w = now_s() - w0, c = cpu_s() - c0;
            eps[t * rounds + r] = (double)ev / w;
            cpe[t * rounds + r] = c / (double)ev * 1e6;
        }
    loadavg(la1, sizeof(la1));
    printf("# bench_shard\n\ncommand: `");
    for (int i = 0; i < argc; i++) printf("%s%s", i ? " " : "", argv[i]);
    printf("`  \n%ld online CPUs; load average before: %s; after: %s  \n"
           "seq at the `seq:` defaults (gemm exact), %d entities with full "
           "caches, batches of %d, forward + explanation + remember; %d "
           "interleaved rounds of %.1f s, medians\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), la0, la1, b.entities, b.batch,
           rounds, seconds);
    printf("| threads | events/s | CPU us/event | cores used | vs 1 thread "
           "|\n|---:|---:|---:|---:|---:|\n");
    double base = 0;
    for (int t = 0; t < nthr; t++) {
        /* median of the rounds */
        double *e = eps + t * rounds, *c = cpe + t * rounds;
        for (int i = 0; i < rounds; i++)
            for (int j = i + 1; j < rounds; j++) {
                if (e[j] < e[i]) { double x = e[i]; e[i] = e[j]; e[j] = x; }
                if (c[j] < c[i]) { double x = c[i]; c[i] = c[j]; c[j] = x; }
            }
        double me = e[rounds / 2], mc = c[rounds / 2];
        if (!t) base = me;
        printf("| %d | %.0f | %.2f | %.2f | %.2fx |\n", thr[t], me, mc,
               me * mc * 1e-6, me / base);
    }
    for (int t = 0; t < nthr; t++) {
        rs_model_shard_destroy(sh[t]);
        rs_pool_destroy(pool[t]);
        rs_model_destroy(m[t]);
    }
    return 0;
}
