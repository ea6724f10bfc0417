/* bench_combine.c -- the cost of one model-sync step at the `seq:`
 * defaults (not a test): serialising a version (the message), loading one
 * received, and combining two (model/combine.h), which the trainer thread
 * does once per sync.period.  Models: fresh ones of the default
 * architecture (card preset: 36 features), or a FILE (e.g. from
 * `riskstream train`) loaded twice.
 *   OPENBLAS_NUM_THREADS=1 ./ops/bench/bench_combine [MODEL_FILE]
 * Prints the best and the median of 7 runs of each step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/combine.h"

static double rs_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int rs_dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    char e[512];
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    rs_model_t *m[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (argc > 1) {
            if (rs_model_load(argv[1], &c, &m[i], e, sizeof(e))) {
                fprintf(stderr, "%s\n", e);
                return 1;
            }
        } else {
            const char *names[36];
            char nb[36][16];
            for (int k = 0; k < 36; k++) {
                snprintf(nb[k], sizeof(nb[k]), "f%d", k);
                names[k] = nb[k];
            }
            if (!(m[i] = rs_model_new(&c, 36, names, e, sizeof(e)))) {
                fprintf(stderr, "%s\n", e);
                return 1;
            }
        }
        rs_model_set_version(m[i], 3 + (uint64_t)i);
        rs_model_set_version_tag(m[i], i ? "b" : "a");
    }
    rs_know_t ka, kb;
    rs_know_clear(&ka);
    rs_know_clear(&kb);
    rs_know_add(&ka, "a", 100, 50, 1000);
    rs_know_add(&kb, "b", 60, 30, 900);
    rs_combine_input_t in[2] = {{"a", rs_model_version(m[0]), &ka},
                                {"b", rs_model_version(m[1]), &kb}};
    rs_combine_plan_t *p = malloc(sizeof(*p));
    if (rs_combine_plan(in, 2, 0, p, e, sizeof(e))) {
        fprintf(stderr, "%s\n", e);
        return 1;
    }
    enum { R = 7 };
    double ts[3][R];
    size_t len = 0;
    for (int r = 0; r < R; r++) {
        uint8_t *buf;
        double t0 = rs_now();
        rs_model_save_mem(m[0], &buf, &len);
        double t1 = rs_now();
        rs_model_t *x = NULL;
        if (rs_model_load_mem(buf, len, "bench", &c, &x, e, sizeof(e))) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
        double t2 = rs_now();
        rs_model_t *out = NULL;
        if (rs_combine_models(m, p, &c, &out, e, sizeof(e))) {
            fprintf(stderr, "%s\n", e);
            return 1;
        }
        double t3 = rs_now();
        ts[0][r] = t1 - t0;
        ts[1][r] = t2 - t1;
        ts[2][r] = t3 - t2;
        rs_model_destroy(x);
        rs_model_destroy(out);
        rs_free(buf);
    }
    static const char *const what[3] = {
        "serialise a version (the message)", "load a received version",
        "combine two versions (weighted average)"};
    printf("model %s: %zu bytes\n", argc > 1 ? argv[1] : "(new, 36 features)",
           len);
    printf("| step | best ms | median ms |\n|---|---:|---:|\n");
    for (int s = 0; s < 3; s++) {
        qsort(ts[s], R, sizeof(double), rs_dcmp);
        printf("| %s | %.1f | %.1f |\n", what[s], ts[s][0] * 1e3,
               ts[s][R / 2] * 1e3);
    }
    rs_model_destroy(m[0]);
    rs_model_destroy(m[1]);
    free(p);
    return 0;
}
