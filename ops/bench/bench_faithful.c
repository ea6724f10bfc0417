/* bench_faithful.c -- faithfulness of the explanations (issue #5; not a
 * test, tests/model/test_explain.c asserts the property on a small
 * stream).  Prints a Markdown table: mean |score change| when the
 * top-attributed feature is set to its mean vs a random feature, and when
 * the top-attended past event is left out vs a random one (what-if
 * forwards, faithful.h), their ratios, and the bit-identity checks of the
 * what-if baseline and of rescoring the input logs.
 *
 *   OPENBLAS_NUM_THREADS=1 bench_faithful [--entities N] [--days N]
 *        [--seed N] [--warmup N] [--every N] [--min-hist N] [--pick-seed N]
 *        [--kind seq|lr|both]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "ops/bench/faithful.h"

static void usage(FILE *fp) {
    fprintf(fp,
        "usage: bench_faithful [options]\n\n"
        "Faithfulness of the model explanations on a generated card stream\n"
        "(docs/model.md \"Faithfulness\"): mean |score change| when the\n"
        "top-attributed feature is set to its mean vs a random feature, and\n"
        "when the top-attended past event is left out vs a random one.\n"
        "ratio = top / random (> 1: the explanation beats chance).\n\n"
        "  --entities N    cards (default 2000)\n"
        "  --days N        event-time span (default 30)\n"
        "  --seed N        generator seed (default 42)\n"
        "  --warmup N      events learned before measuring (default 20000)\n"
        "  --every N       measure one event in N after it (default 5)\n"
        "  --min-hist N    measured events have >= N cached past events\n"
        "                  (default 2)\n"
        "  --pick-seed N   seed of the random choices (default 7)\n"
        "  --kind K        seq, lr or both (default both)\n"
        "  -h, --help      this help\n\n"
        "example (the figures in docs/model.md):\n"
        "  OPENBLAS_NUM_THREADS=1 ./ops/bench/bench_faithful\n");
}

static int arg_i64(const char *s, int64_t lo, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s || v < lo) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"entities", required_argument, NULL, 1},
        {"days", required_argument, NULL, 2},
        {"seed", required_argument, NULL, 3},
        {"warmup", required_argument, NULL, 4},
        {"every", required_argument, NULL, 5},
        {"min-hist", required_argument, NULL, 6},
        {"pick-seed", required_argument, NULL, 7},
        {"kind", required_argument, NULL, 8},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    rs_faithful_conf_t c;
    rs_faithful_conf_init(&c);
    int kinds = 3; /* bit 0 seq, bit 1 lr */
    int o;
    int64_t v;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (o) {
        case 1: bad = arg_i64(optarg, 1, &c.entities); break;
        case 2: bad = arg_i64(optarg, 1, &c.days); break;
        case 3: bad = arg_i64(optarg, 0, &c.seed); break;
        case 4: bad = arg_i64(optarg, 0, &c.warmup_events); break;
        case 5: bad = arg_i64(optarg, 1, &c.every); break;
        case 6: bad = arg_i64(optarg, 1, &c.min_hist); break;
        case 7:
            bad = arg_i64(optarg, 0, &v);
            c.pick_seed = (uint64_t)v;
            break;
        case 8:
            kinds = !strcmp(optarg, "seq") ? 1 : !strcmp(optarg, "lr") ? 2
                  : !strcmp(optarg, "both") ? 3 : 0;
            bad = !kinds;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_faithful: bad value '%s'\n", optarg);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (c.model.seq.max_entities < 2 * c.entities)
        c.model.seq.max_entities = 2 * c.entities; /* no evictions */

    printf("generated cards stream: seed %lld, %lld cards, %lld days; "
           "warm-up %lld events, then one event in %lld with >= %lld past "
           "events (seq) measured; random picks seed %llu\n\n",
           (long long)c.seed, (long long)c.entities, (long long)c.days,
           (long long)c.warmup_events, (long long)c.every,
           (long long)c.min_hist, (unsigned long long)c.pick_seed);
    printf("| model | events | updates | AUC | measured | mean past events | "
           "feature: top | random | ratio | top wins | history: top | "
           "random | ratio | top wins |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int rc = 0;
    rs_faithful_res_t r[2];
    int done[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        if (!(kinds & (1 << k))) continue;
        rs_faithful_conf_t ck = c;
        ck.model.kind = k == 0 ? RS_MODEL_SEQ : RS_MODEL_LR;
        char err[512];
        double t0 = (double)rs_clock_mono_ns() * 1e-9;
        if (rs_faithful_run(&ck, &r[k], err, sizeof(err)) != RS_OK) {
            fprintf(stderr, "bench_faithful: %s\n", err);
            return 1;
        }
        double dt = (double)rs_clock_mono_ns() * 1e-9 - t0;
        done[k] = 1;
        const rs_faithful_res_t *x = &r[k];
        if (k == 0)
            printf("| seq | %llu | %llu | %.3f | %llu | %.1f | %.5f | %.5f | "
                   "**%.2f** | %.0f %% | %.5f | %.5f | **%.2f** | %.0f %% |\n",
                   (unsigned long long)x->events,
                   (unsigned long long)x->updates, x->auc,
                   (unsigned long long)x->measured, x->mean_hist, x->feat_top,
                   x->feat_rand, x->feat_ratio, 100 * x->feat_wins,
                   x->hist_top, x->hist_rand, x->hist_ratio,
                   100 * x->hist_wins);
        else
            printf("| lr | %llu | %llu | %.3f | %llu | - | %.5f | %.5f | **%.2f** "
                   "| %.0f %% | - | - | - | - |\n",
                   (unsigned long long)x->events,
                   (unsigned long long)x->updates, x->auc,
                   (unsigned long long)x->measured, x->feat_top, x->feat_rand,
                   x->feat_ratio, 100 * x->feat_wins);
        fflush(stdout);
        fprintf(stderr, "%s: %.1f s\n", k == 0 ? "seq" : "lr", dt);
    }
    printf("\n");
    for (int k = 0; k < 2; k++) {
        if (!done[k]) continue;
        const rs_faithful_res_t *x = &r[k];
        printf("%s: what-if baseline == real score (bit for bit): %llu of "
               "%llu; input logs rescored bit for bit: %llu of %llu\n",
               k == 0 ? "seq" : "lr",
               (unsigned long long)(x->measured - x->dry_mismatch),
               (unsigned long long)x->measured,
               (unsigned long long)(x->rescored - x->rescore_mismatch),
               (unsigned long long)x->rescored);
        if (x->dry_mismatch || x->rescore_mismatch) rc = 1;
    }
    return rc;
}
