/* fuzz_redis_rec.c -- libFuzzer target: the compact stored score record
 * (rs_redis_rec_decode, rs_redis_rec_json; scoring/sink_redis_rec.c).
 * Oracle: a record that decodes encodes again, and that encoding decodes
 * to a record with the same JSON, byte for byte; the stored-value -> JSON
 * step agrees with decode + rs_score_to_json.  Seeds: fuzz_redis_rec_seeds
 * DIR (compact records of varied scores; run it again if the format
 * changes). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz_common.h"
#include "scoring/sink.h"

#ifndef FUZZ_REDIS_REC_MAKE_SEEDS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rs_score_t sc, back;
    static uint8_t rec[RS_REDIS_REC_MAX];
    static char j1[RS_ENCODE_MAX], j2[RS_ENCODE_MAX], j3[RS_ENCODE_MAX];
    char es[256];
    size_t jl;
    rs_err_t err = rs_redis_rec_decode(data, size, &sc, es, sizeof(es));
    rs_err_t jerr = rs_redis_rec_json(data, size, &back, j3, sizeof(j3), &jl,
                                      es, sizeof(es));
    if (size && data[0] == RS_REDIS_REC_MAGIC)
        FUZZ_CHECK((err == RS_OK) == (jerr == RS_OK || jerr == RS_ERR_TOOBIG));
    if (err != RS_OK) {
        FUZZ_CHECK(es[0] != '\0');
        return 0;
    }
    int n1 = rs_score_to_json(&sc, j1, sizeof(j1));
    FUZZ_CHECK(n1 > 0);
    if (jerr == RS_OK) FUZZ_CHECK(jl == (size_t)n1 && !memcmp(j1, j3, jl));
    int n = rs_redis_rec_encode(&sc, rec, sizeof(rec));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(rs_redis_rec_decode(rec, (size_t)n, &back, es, sizeof(es)) ==
               RS_OK);
    int n2 = rs_score_to_json(&back, j2, sizeof(j2));
    FUZZ_CHECK(n2 == n1 && !memcmp(j1, j2, (size_t)n1));
    return 0;
}
#else
/* fuzz_redis_rec_seeds DIR: write seed records. */
int main(int argc, char **argv) {
    static rs_score_t sc;
    static uint8_t rec[RS_REDIS_REC_MAX];
    if (argc != 2) return 2;
    for (int i = 0; i < 4; i++) {
        memset(&sc, 0, sizeof(sc));
        snprintf(sc.event_id, sizeof(sc.event_id), "tx-%d", i);
        snprintf(sc.entity_id, sizeof(sc.entity_id), "card-%d", i * 7);
        snprintf(sc.model_version, sizeof(sc.model_version), "seq-%d", i);
        sc.score = (float)(0.1 * (i + 1));
        sc.decision = (rs_decision_t)(1 + i % 4);
        sc.event_time_ms = 1700000000000LL + i;
        sc.scored_at_ms = sc.event_time_ms + 3;
        sc.latency_us = 900;
        sc.rul = i == 2 ? 3600000 : 0;
        sc.alert_score = i == 3 ? 0.75 : 0;
        rs_explanation_t *ex = &sc.explanation;
        ex->n_attended = i;
        for (int k = 0; k < i; k++) {
            snprintf(ex->attended[k].event_id, RS_ID_MAX, "old-%d", k);
            ex->attended[k].event_time_ms = sc.event_time_ms - 1000 * (k + 1);
            ex->attended[k].amount = 12.5 + k;
            ex->attended[k].weight = (float)(0.5 / (k + 1));
        }
        ex->n_contrib = i + 1;
        for (int k = 0; k <= i; k++) {
            snprintf(ex->contrib[k].name, sizeof(ex->contrib[k].name), "f%d", k);
            ex->contrib[k].value = 0.1 + k; /* not a float32 */
            ex->contrib[k].contribution = (float)(k - 1) * 0.25f;
            snprintf(ex->contrib[k].text, RS_REASON_MAX, "f%d is high", k);
        }
        ex->n_experts = 2;
        ex->experts[1].expert = 3;
        ex->experts[1].gate_weight = 0.5;
        ex->n_reasons = 1;
        snprintf(ex->reasons[0], RS_REASON_MAX, "amount \"x\" \xc3\xa9");
        if (i % 2) {
            sc.event.present = 1;
            snprintf(sc.event.type, RS_TYPE_MAX, "purchase");
            sc.event.amount = 19.99;
            sc.event.n_numeric = 1;
            snprintf(sc.event.numeric[0].name, RS_NAME_MAX, "t");
            sc.event.numeric[0].value = -0.0;
            sc.event.n_categ = 1;
            snprintf(sc.event.categ[0].name, RS_NAME_MAX, "c");
            snprintf(sc.event.categ[0].value, RS_CATVAL_MAX, "FR");
        }
        int n = rs_redis_rec_encode(&sc, rec, sizeof(rec));
        if (n <= 0) return 1;
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed-%d", argv[1], i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(rec, 1, (size_t)n, f) != (size_t)n) return 1;
        fclose(f);
    }
    return 0;
}
#endif
