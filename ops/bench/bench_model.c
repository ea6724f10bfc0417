/* bench_model.c -- throughput of the risk models on one core (not a test).
 *
 * Prints a Markdown table: forward (+ explanation) events/s, label
 * updates/s, and the achieved GFLOP/s of the forward beside this machine's
 * sgemm peak measured in the same run with one OpenBLAS thread.  Default
 * sizes of the `seq:` section; synthetic events over a pool of entities
 * whose caches are warmed (full history of L events) before timing.
 *
 *   OPENBLAS_NUM_THREADS=1 bench_model [--entities N] [--dim N] [--batch N]
 *                          [--seconds S] [--history L] [--d-model D]
 *
 * --serve B1,B2,..: instead, only what serve does per event (forward +
 * explanation + contributions + remember, exact kernel, default sizes) in
 * ns/event at each batch size Bi (model.batch_max = the largest), one
 * warmed model for all of them, best of slices in thread CPU time.  --dump FILE (with --serve): the scores
 * and contributions of a fixed stream scored at each batch size, as
 * binary float32, to compare two builds (ops/bench/cmp_f32.py).
 * --explain-min T: every input's explain_min (service.explain_min_score):
 * only events scoring >= T are explained (the others' contributions are
 * dumped as the zeros the buffer holds).
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "model/learner.h"
#include "model/model.h"

extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);
extern void openblas_set_num_threads(int);

typedef struct bench_s {
    int dim, n, entities, batch, history, d_model;
    int nbatch;           /* batches cycled by run_forward (0: BENCH_NB)  */
    double seconds;
    double explain_min;   /* --explain-min: every input's explain_min     */
    char (*ids)[24], (*ents)[24], (*cps)[24];
    float *x;
    rs_model_input_t *in;
    rs_model_output_t *out;
    float *contrib;
    int64_t t;
    rs_learnlog_t *lg;    /* the learning log of the model under test   */
    rs_learner_t *lr;     /* (in memory: records of REMEMBER forwards)  */
} bench_t;

/* Give model m a learning log and a learner (REMEMBER forwards append to
 * it, labels are joined through it), replacing the previous one. */
static void bench_learning(bench_t *b, rs_model_t *m) {
    rs_learner_destroy(b->lr);
    rs_learnlog_close(b->lg);
    b->lr = NULL;
    b->lg = NULL;
    if (!m) return;
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(m, &meta);
    char err[256];
    b->lg = rs_learnlog_open("", 0, &meta, 64 << 20, NULL, err, sizeof(err));
    if (!b->lg) {
        fprintf(stderr, "%s\n", err);
        exit(RS_EXIT_RUNTIME);
    }
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.label_horizon = 0x1p62; /* the bench learns labels, not maturity */
    b->lr = rs_learner_new(m, &c);
    rs_learner_attach(b->lr, b->lg);
}

static rs_err_t bench_forward(bench_t *b, rs_model_t *m, rs_model_input_t *in,
                              int n, float *contrib, unsigned flags) {
    char err[256];
    return rs_learner_forward(b->lr, 0, m, in, n, b->out, contrib, flags, err,
                              sizeof(err));
}

static double now_s(void) { return (double)rs_clock_mono_ns() * 1e-9; }

/* --serve times slices in this thread's CPU time: the machine is shared,
 * and being descheduled is not the model's cost. */
static int bench_cpu_clock;

static double slice_s(void) {
    if (!bench_cpu_clock) return now_s();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void cpu_name(char *buf, size_t size) {
    FILE *fp = fopen("/proc/cpuinfo", "r");
    snprintf(buf, size, "unknown");
    if (!fp) return;
    char line[512];
    while (fgets(line, sizeof(line), fp))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, size, "%s", c);
            }
            break;
        }
    fclose(fp);
}

/* GFLOP/s of a large single-threaded sgemm (best of 3). */
static double sgemm_peak(void) {
    const int n = 1536;
    float *a = rs_aligned_calloc((size_t)n * n, sizeof(float));
    float *b = rs_aligned_calloc((size_t)n * n, sizeof(float));
    float *c = rs_aligned_calloc((size_t)n * n, sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a,
                    n, b, n, 0.0f, c, n);
        double g = 2.0 * n * n * (double)n / (now_s() - t0) * 1e-9;
        if (g > best) best = g;
    }
    rs_free(a);
    rs_free(b);
    rs_free(c);
    return best;
}

#define BENCH_NB 32 /* distinct batches cycled by run_forward */

/* Fill n events from row `at` (ids unique; entities uniform over the
 * pool). */
static void make_batch_at(bench_t *b, rs_rng_t *rng, int n, int id0, int at) {
    for (int i = at; i < at + n; i++) {
        b->t += 1 + (int64_t)rs_rng_below(rng, 2000);
        snprintf(b->ids[i], sizeof(b->ids[i]), "tx-%d", id0 + i - at);
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
        for (int c = 0; c < 3; c++) in->cat_hash[c] = rs_rng_below(rng, 50) + 100u * c;
        in->explain_min = b->explain_min;
    }
}

static void make_batch(bench_t *b, rs_rng_t *rng, int n, int id0) {
    make_batch_at(b, rng, n, id0, 0);
}

/* events/s of rs_model_forward with `flags` (+ contributions if contrib),
 * cycling through b->nbatch (0: BENCH_NB) pregenerated batches (entities
 * uniform over the pool, so the entity caches are read from memory, not
 * from L1/L2). */
static double run_forward(bench_t *b, rs_model_t *m, unsigned flags,
                          int contrib, int *id) {
    rs_rng_t rng;
    rs_rng_seed(&rng, 1);
    for (int k = 0; k < BENCH_NB; k++) {
        make_batch_at(b, &rng, b->batch, *id, k * b->batch);
        *id += b->batch;
    }
    /* the event generation stays out of the timing: the same batches come
     * round again, 1 s later in event time.  Best of slices of a round of
     * BENCH_NB batches: the machine may be shared. */
    double best = 0, t_end = now_s() + b->seconds;
    while (now_s() < t_end) {
        double t0 = slice_s();
        for (int k = 0; k < BENCH_NB; k++) {
            rs_model_input_t *in = b->in + (size_t)k * b->batch;
            for (int i = 0; i < b->batch; i++) in[i].event_time_ms += 1000;
            if (bench_forward(b, m, in, b->batch,
                              contrib ? b->contrib : NULL, flags) != RS_OK)
                abort();
        }
        double r = (double)BENCH_NB * b->batch / (slice_s() - t0);
        if (r > best) best = r;
    }
    return best;
}

/* Forward FLOPs per event (multiply-adds x 2) at a full cache. */
static double fwd_flops(const rs_seq_conf_t *c, int dim) {
    double d = (double)c->d_model, L = (double)c->history, E = (double)c->experts,
           k = (double)c->top_k, H = (double)c->expert_hidden;
    double per_layer = 3 * d * d      /* qkv        */
                     + 2 * (L + 1) * d /* scores + values */
                     + d * d          /* Wo         */
                     + E * d          /* gate       */
                     + k * 2 * H * d; /* experts    */
    return 2.0 * ((dim + 2) * d + (double)c->layers * per_layer + d);
}

/* Label updates/s: remember a pool of events, then learn each one (1 in
 * 10 fraud); only the learn calls are timed. */
static void label_row(bench_t *b, rs_model_t *m, const rs_model_conf_t *c,
                      const char *gn, rs_rng_t *rng, int *id, int mem) {
    int pool = 16384;
    double best = 0, el = 0;
    while (el < b->seconds) {
        int id0 = *id;
        for (int done = 0; done < pool; done += b->batch) {
            make_batch(b, rng, b->batch, *id);
            bench_forward(b, m, b->in, b->batch, NULL, RS_MODEL_FWD_REMEMBER);
            *id += b->batch;
        }
        rs_label_t lb;
        memset(&lb, 0, sizeof(lb));
        /* best of slices of 2048 labels */
        for (int i0 = id0; i0 < *id; i0 += 2048) {
            int learned = 0;
            double t0 = now_s();
            for (int i = i0; i < RS_MIN(i0 + 2048, *id); i++) {
                snprintf(lb.event_id, sizeof(lb.event_id), "tx-%d", i);
                lb.value = i % 10 == 0;
                if (rs_learner_label(b->lr, 0, &lb, 0, -1, NULL) == RS_OK)
                    learned++;
            }
            double dt = now_s() - t0;
            el += dt;
            if (learned / dt > best) best = learned / dt;
        }
    }
    rs_model_stats_t st;
    rs_model_stats(m, &st);
    printf("| seq | %s | label update: replay + backprop + %s, %s | %.0f | "
           "%.2f | | |\n",
           gn, c->seq.optimizer ? "momentum" : "adam",
           st.drift_high ? "all layers (high drift)" : "head + gates (low drift)",
           best, 1e6 / best);
    if (mem)
        printf("| | | memory: %llu B/entity cache, %zu B/learning record (on "
               "disk), %.0f MiB total | | | | |\n",
               (unsigned long long)st.entity_bytes, rs_model_lrec_size(m),
               (double)st.mem_bytes / (1 << 20));
}

/* A seq model with every entity's cache full. */
static rs_model_t *warm_model(bench_t *b, rs_model_conf_t *c, const char **names,
                              rs_rng_t *rng, int *id) {
    char err[256];
    rs_model_t *m = rs_model_new(c, b->dim, names, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "%s\n", err);
        exit(RS_EXIT_RUNTIME);
    }
    for (int64_t done = 0; done < (int64_t)b->entities * c->seq.history * 2;
         done += b->batch) {
        make_batch(b, rng, b->batch, *id);
        rs_model_forward(m, b->in, b->batch, b->out, NULL, 0);
        *id += b->batch;
    }
    bench_learning(b, m);
    return m;
}

/* --serve: ns/event of serve's per-event model work at each batch size
 * of `list` (b->batch = the largest; b's arrays sized for it). */
static void serve_rows(bench_t *b, const char **names, const char *list,
                       const char *dump) {
    int bs[16], nbs = 0, bmax = b->batch;
    for (const char *p = list; *p && nbs < 16;) {
        bs[nbs++] = atoi(p);
        p += strcspn(p, ",");
        if (*p == ',') p++;
    }
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = bmax;
    c.seq.max_entities = RS_MAX(16384, b->entities + bmax + 1);
    if (b->history) c.seq.history = b->history;
    if (b->d_model) c.seq.d_model = b->d_model;
    rs_rng_t rng;
    rs_rng_seed(&rng, 7);
    int id = 0;
    rs_model_t *m = warm_model(b, &c, names, &rng, &id);
    const unsigned fl = RS_MODEL_FWD_EXPLAIN | RS_MODEL_FWD_REMEMBER;
    if (dump) { /* deterministic: a fixed stream at each batch size */
        FILE *fp = fopen(dump, "wb");
        if (!fp) {
            perror(dump);
            exit(RS_EXIT_RUNTIME);
        }
        for (int q = 0; q < nbs; q++) {
            b->batch = bs[q];
            for (int rep = 0; rep < RS_MAX(1, 1024 / bs[q]); rep++) {
                make_batch(b, &rng, bs[q], id);
                id += bs[q];
                if (bench_forward(b, m, b->in, bs[q], b->contrib, fl) != RS_OK)
                    abort();
                for (int i = 0; i < bs[q]; i++) {
                    fwrite(&b->out[i].score, sizeof(float), 1, fp);
                    if (!b->out[i].contrib) /* not explained: zeros */
                        memset(b->contrib + (size_t)i * b->dim, 0,
                               sizeof(float) * (size_t)b->dim);
                    fwrite(b->contrib + (size_t)i * b->dim, sizeof(float),
                           (size_t)b->dim, fp);
                }
            }
        }
        fclose(fp);
    }
    if (b->explain_min > 0) { /* how many a threshold explains */
        int expl = 0, tot = 0;
        b->batch = bmax;
        for (int rep = 0; rep < 8; rep++) {
            make_batch(b, &rng, bmax, id);
            id += bmax;
            if (bench_forward(b, m, b->in, bmax, b->contrib, fl) != RS_OK)
                abort();
            for (int i = 0; i < bmax; i++, tot++) expl += !!b->out[i].contrib;
        }
        printf("explain_min %g: %d of %d events explained (%.1f %%)\n\n",
               b->explain_min, expl, tot, 100.0 * expl / tot);
    }
    printf("| batch | forward + explanation + contributions + remember: "
           "ns/event | events/s |\n|---:|---:|---:|\n");
    for (int q = 0; q < nbs; q++) {
        b->batch = bs[q];
        /* the same events in flight whatever the batch size: the caches of
         * BENCH_NB * bmax events' entities, as in serve at a busy hour */
        b->nbatch = BENCH_NB * bmax / bs[q];
        double eps = run_forward(b, m, fl, 1, &id);
        printf("| %d | %.0f | %.0f |\n", bs[q], 1e9 / eps, eps);
    }
    b->batch = bmax;
    b->nbatch = 0;
    bench_learning(b, NULL);
    rs_model_destroy(m);
}

int main(int argc, char **argv) {
    bench_t b = {.dim = 17, .n = 0, .entities = 10000, .batch = 512,
                 .seconds = 2.0};
    const char *serve = NULL, *dump = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--entities")) b.entities = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) b.dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) b.batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) b.seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--history")) b.history = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--d-model")) b.d_model = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--serve")) serve = argv[i + 1];
        else if (!strcmp(argv[i], "--dump")) dump = argv[i + 1];
        else if (!strcmp(argv[i], "--explain-min"))
            b.explain_min = atof(argv[i + 1]);
        else {
            fprintf(stderr,
                    "usage: %s [--entities N] [--dim N] [--batch N] "
                    "[--seconds S] [--history L] [--d-model D] "
                    "[--serve B1,B2,.. [--dump FILE] [--explain-min T]]\n",
                    argv[0]);
            return RS_EXIT_USAGE;
        }
    }
    openblas_set_num_threads(1);
    rs_log_set_level(RS_LOG_WARN);

    char cpu[256];
    cpu_name(cpu, sizeof(cpu));
    struct utsname un;
    uname(&un);
    printf("# bench_model\n\n");
    printf("command: `OPENBLAS_NUM_THREADS=1");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("`  \nmachine: %s, %ld logical CPUs, %s %s  \n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release);
    printf("OpenBLAS: %s (core %s), 1 thread  \n", openblas_get_config(),
           openblas_get_corename());
    if (serve) { /* the largest batch sizes the arrays */
        int mx = 1;
        for (const char *p = serve; *p;) {
            mx = RS_MAX(mx, atoi(p));
            p += strcspn(p, ",");
            if (*p == ',') p++;
        }
        b.batch = mx;
    }
    double peak = serve ? 0 : sgemm_peak();
    if (!serve)
        printf("sgemm peak (1536^3, 1 thread): **%.1f GFLOP/s**\n\n", peak);

    const size_t rows = (size_t)b.batch * BENCH_NB;
    b.x = rs_aligned_calloc(rows * b.dim, sizeof(float));
    b.ids = calloc(rows, sizeof(*b.ids));
    b.ents = calloc(rows, sizeof(*b.ents));
    b.cps = calloc(rows, sizeof(*b.cps));
    b.in = calloc(rows, sizeof(*b.in));
    b.out = calloc((size_t)b.batch, sizeof(*b.out));
    b.contrib = rs_aligned_calloc((size_t)b.batch * b.dim, sizeof(float));
    b.t = 1700000000000LL;
    const char **names = calloc((size_t)b.dim, sizeof(*names));
    char (*nb)[16] = calloc((size_t)b.dim, sizeof(*nb));
    for (int i = 0; i < b.dim; i++) {
        snprintf(nb[i], sizeof(nb[i]), "f%d", i);
        names[i] = nb[i];
    }

    if (serve) {
        bench_cpu_clock = 1;
        serve_rows(&b, names, serve, dump);
        goto done;
    }
    printf("events/s: best of repeated slices (~16k events or 2048 labels) "
           "over --seconds per row; the machine may be shared.\n\n");
    printf("| model | gemm | what | events/s (1 core) | us/event | GFLOP/s "
           "(fwd) | %% of sgemm peak |\n|---|---|---|---:|---:|---:|---:|\n");
    char err[256];
    for (int g = 0; g < 2; g++) {
        rs_model_conf_t c;
        rs_model_conf_init(&c);
        c.kind = RS_MODEL_SEQ;
        c.batch_max = b.batch;
        c.seq.gemm = g;
        c.seq.max_entities = RS_MAX(16384, b.entities + b.batch + 1);
        c.seq.drift_mode = 1; /* all layers learn */
        if (b.history) c.seq.history = b.history;
        if (b.d_model) c.seq.d_model = b.d_model;
        rs_rng_t rng;
        rs_rng_seed(&rng, 7);
        int id = 0;
        rs_model_t *m = warm_model(&b, &c, names, &rng, &id);
        const double fl = fwd_flops(&c.seq, b.dim);
        static const struct {
            const char *what;
            unsigned flags;
            int contrib;
        } rows[] = {
            {"forward (score only)", 0, 0},
            {"forward + attention/experts", RS_MODEL_FWD_EXPLAIN, 0},
            {"forward + explanation (+ grad x input)", RS_MODEL_FWD_EXPLAIN, 1},
            {"forward + explanation + remember", RS_MODEL_FWD_EXPLAIN | RS_MODEL_FWD_REMEMBER, 1},
        };
        const char *gn = g ? "blas" : "exact";
        for (size_t r = 0; r < RS_ARRAY_LEN(rows); r++) {
            double eps = run_forward(&b, m, rows[r].flags, rows[r].contrib, &id);
            double gf = eps * fl * 1e-9;
            printf("| seq | %s | %s | %.0f | %.2f | %.2f | %.1f |\n", gn,
                   rows[r].what, eps, 1e6 / eps, gf, 100 * gf / peak);
        }
        label_row(&b, m, &c, gn, &rng, &id, g == 0);
        bench_learning(&b, NULL);
        rs_model_destroy(m);
        if (g == 0) { /* the low-drift mode: head and gates learn */
            c.seq.drift_mode = 2;
            m = warm_model(&b, &c, names, &rng, &id);
            label_row(&b, m, &c, gn, &rng, &id, 0);
            bench_learning(&b, NULL);
            rs_model_destroy(m);
        }
    }
    /* the baseline on the same vectors */
    {
        rs_model_conf_t c;
        rs_model_conf_init(&c);
        c.kind = RS_MODEL_LR; /* the default kind is seq */
        c.batch_max = b.batch;
        rs_model_t *m = rs_model_new(&c, b.dim, names, err, sizeof(err));
        bench_learning(&b, m);
        int id = 0;
        double eps = run_forward(&b, m, RS_MODEL_FWD_REMEMBER, 1, &id);
        printf("| lr | dot8 | forward + contributions + remember | %.0f | "
               "%.2f | | |\n",
               eps, 1e6 / eps);
        bench_learning(&b, NULL);
        rs_model_destroy(m);
    }
    {
        rs_model_conf_t c;
        rs_model_conf_init(&c);
        if (b.history) c.seq.history = b.history;
        if (b.d_model) c.seq.d_model = b.d_model;
        printf("\nFLOPs per seq forward at a full cache (d=%lld, L=%lld, "
               "E=%lld, k=%lld, H=%lld, layers=%lld, dim=%d): %.0f\n",
               (long long)c.seq.d_model, (long long)c.seq.history,
               (long long)c.seq.experts, (long long)c.seq.top_k,
               (long long)c.seq.expert_hidden, (long long)c.seq.layers, b.dim,
               fwd_flops(&c.seq, b.dim));
    }
done:
    free(names);
    free(nb);
    free(b.ids);
    free(b.ents);
    free(b.cps);
    free(b.in);
    free(b.out);
    rs_free(b.x);
    rs_free(b.contrib);
    return 0;
}
