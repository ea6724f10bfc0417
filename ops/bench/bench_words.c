/* bench_words.c -- what issue 14 adds to the per-event path (not a test:
 * prints numbers).
 *
 *  1. rs_features_reason: ns per call over every feature of the cards
 *     preset (the service words the explain_top = 5 contributions of each
 *     explained event);
 *  2. rs_score_to_json and rs_score_to_pb of a typical explained card score
 *     (5 contributions, 3 attended events, 2 experts, 2 reasons): bytes and
 *     ns, without the new fields (no words, no event), and with them.
 *
 * CPU time of this thread, so the rates hold on a busy machine.
 *   ./ops/bench/bench_words [--iters N]
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "features/features.h"
#include "proto/proto.h"

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Feature `name`, or feature k of the layout if the preset has no such
 * name (the words are made generically from any spec). */
static int feature(const rs_features_t *f, const char *name, int k) {
    for (int i = 0; i < rs_features_dim(f); i++)
        if (!strcmp(rs_features_name(f, i), name)) return i;
    return k % rs_features_dim(f);
}

static void typical(rs_score_t *sc, const rs_features_t *f, const float *x,
                    int words) {
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->event_id, sizeof(sc->event_id), "tx-1767225600-000123");
    snprintf(sc->entity_id, sizeof(sc->entity_id), "card-004242");
    sc->score = 0.9312345678;
    sc->decision = RS_DECISION_DECLINE;
    snprintf(sc->model_version, sizeof(sc->model_version), "seq-5a74c0d2-41");
    sc->event_time_ms = 1767225600123;
    sc->scored_at_ms = 1767225600140;
    sc->latency_us = 1834;
    rs_explanation_t *ex = &sc->explanation;
    ex->n_attended = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(ex->attended[i].event_id, RS_ID_MAX, "tx-1767225%d-00010%d",
                 500 + i, i);
        ex->attended[i].event_time_ms = sc->event_time_ms - 3600000LL * (i + 1);
        ex->attended[i].amount = 12.5 * (i + 1);
        snprintf(ex->attended[i].counterparty_id, RS_ID_MAX, "m-%d", 500 + i);
        ex->attended[i].weight = 0.5 / (i + 1);
    }
    const int feat[] = {feature(f, "ent_ratio_mean_7d", 12),
                        feature(f, "ent_count_1h", 2),
                        feature(f, "ent_since_last", 19),
                        feature(f, "cp_count_1d", 21),
                        feature(f, "ent_new_counterparty", 18)};
    ex->n_contrib = 5;
    for (int i = 0; i < 5; i++) {
        rs_contrib_t *c = &ex->contrib[i];
        rs_strlcpy(c->name, rs_features_name(f, feat[i]), sizeof(c->name));
        c->value = x[feat[i]];
        c->contribution = 0.4 - 0.17 * i;
        if (words) rs_features_reason(f, feat[i], x, c->text, sizeof(c->text));
    }
    ex->n_experts = 2;
    ex->experts[0] = (rs_expert_use_t){2, 0.71};
    ex->experts[1] = (rs_expert_use_t){5, 0.29};
    ex->n_reasons = 2;
    rs_strlcpy(ex->reasons[0], words ? ex->contrib[0].text
                                     : "amount 8.3x this card's 7-day mean",
               RS_REASON_MAX);
    rs_strlcpy(ex->reasons[1], words ? ex->contrib[1].text
                                     : "7 events of this entity in the last 1h",
               RS_REASON_MAX);
    if (words) {
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        rs_strlcpy(ev.type, "card_tx", sizeof(ev.type));
        rs_strlcpy(ev.counterparty_id, "m-1473", sizeof(ev.counterparty_id));
        ev.amount = 1322.13;
        ev.n_numeric = 2;
        rs_strlcpy(ev.numeric[0].name, "hour_of_day", RS_NAME_MAX);
        ev.numeric[0].value = 17;
        rs_strlcpy(ev.numeric[1].name, "day_of_week", RS_NAME_MAX);
        ev.numeric[1].value = 5;
        ev.n_categ = 3;
        static const char *const cn[] = {"mcc", "country", "channel"},
                                 *const cv[] = {"jewelry", "GB", "online"};
        for (int i = 0; i < 3; i++) {
            rs_strlcpy(ev.categ[i].name, cn[i], RS_NAME_MAX);
            rs_strlcpy(ev.categ[i].value, cv[i], RS_CATVAL_MAX);
        }
        rs_event_fields_from_event(&sc->event, &ev);
    }
}

int main(int argc, char **argv) {
    long iters = 200000;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--iters")) iters = atol(argv[++i]);
    rs_features_conf_t c;
    char err[256];
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) {
        fprintf(stderr, "bench_words: %s\n", err);
        return 1;
    }
    int dim = rs_features_dim(f);
    float x[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < dim; i++) x[i] = (float)(1 + (i * 7) % 13);
    char buf[RS_REASON_MAX];
    volatile int sink = 0;

    double t0 = cpu_s();
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < dim; i++)
            sink += rs_features_reason(f, i, x, buf, sizeof(buf));
    double t = cpu_s() - t0;
    printf("bench_words: %ld x %d features (cards preset), CPU time of one "
           "thread\n\n", iters, dim);
    printf("| what | ns per call | per explained event |\n|---|---:|---:|\n");
    double per = t / ((double)iters * dim) * 1e9;
    printf("| rs_features_reason | %.0f | %.2f us (5 contributions) |\n",
           per, per * 5 / 1000);

    static char js[RS_ENCODE_MAX];
    static uint8_t pb[RS_ENCODE_MAX];
    rs_score_t *sc = malloc(sizeof(*sc));
    printf("\n| record | JSON bytes | JSON ns | protobuf bytes | protobuf ns |\n"
           "|---|---:|---:|---:|---:|\n");
    for (int words = 0; words < 2; words++) {
        typical(sc, f, x, words);
        int nj = rs_score_to_json(sc, js, sizeof(js));
        int np = rs_score_to_pb(sc, pb, sizeof(pb));
        t0 = cpu_s();
        for (long k = 0; k < iters; k++) sink += rs_score_to_json(sc, js, sizeof(js));
        double tj = (cpu_s() - t0) / (double)iters * 1e9;
        t0 = cpu_s();
        for (long k = 0; k < iters; k++) sink += rs_score_to_pb(sc, pb, sizeof(pb));
        double tp = (cpu_s() - t0) / (double)iters * 1e9;
        printf("| %s | %d | %.0f | %d | %.0f |\n",
               words ? "with event fields and words (issue 14)"
                     : "without (before)", nj, tj, np, tp);
    }
    free(sc);
    rs_features_destroy(f);
    return sink == 42 ? 1 : 0;
}
