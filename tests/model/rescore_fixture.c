/* rescore_fixture.c -- material for tests/model/audit_rescore.sh (not a
 * test by itself): a model store with two versions and, per event, the
 * score record (Score JSON) and the input log a service would have
 * written to Redis.
 *
 *   rescore_fixture OUT_DIR KIND
 *
 * KIND seq|lr.  Writes OUT_DIR/store/ (versions 1 and 2 of a small
 * model; events ev-0..ev-19 scored with version 1, ev-20..ev-39 with
 * version 2, learning in between), OUT_DIR/ev-N.json and OUT_DIR/ev-N.log,
 * and prints the version strings "v1 v2".  As in the service, a version's
 * weights do not change while it scores: the labels of ev-0..ev-19 are
 * learned before version 2 is published.  Exit 0 or 1 (message). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "proto/proto.h"
#include "rs_test_learn.h"

#define DIM 5
#define N 40

static int write_file(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n) {
        fprintf(stderr, "rescore_fixture: cannot write %s\n", path);
        if (fp) fclose(fp);
        return -1;
    }
    return fclose(fp) ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "seq") && strcmp(argv[2], "lr"))) {
        fprintf(stderr, "usage: rescore_fixture OUT_DIR seq|lr\n");
        return 1;
    }
    const char *out = argv[1];
    static const char *const names[DIM] = {"amount_z", "ent_count_1h",
                                           "cp_new", "hour", "gap_s"};
    char err[512], path[1024], ver[2][RS_VERSION_MAX];
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = strcmp(argv[2], "seq") ? RS_MODEL_LR : RS_MODEL_SEQ;
    c.batch_max = 8;
    c.seq.d_model = 8;
    c.seq.history = 4;
    c.seq.experts = 4;
    c.seq.expert_hidden = 8;
    c.seq.buckets = 64;
    c.seq.max_entities = 64;
    rs_test_learn_t *tl = rs_test_learn_new(&c, DIM, names, err, sizeof(err));
    rs_model_t *m = tl ? tl->m : NULL;
    snprintf(path, sizeof(path), "%s/store", out);
    rs_model_store_t *st = m ? rs_model_store_open(path, 5, err, sizeof(err))
                             : NULL;
    if (!m || !st) {
        fprintf(stderr, "rescore_fixture: %s\n", err);
        return 1;
    }
    const size_t lmax = rs_model_log_max(m);
    uint8_t *log = malloc(lmax);
    char *json = malloc(RS_ENCODE_MAX);
    rs_rng_t rng;
    rs_rng_seed(&rng, 11);
    int64_t t = 1767225600000LL;
    for (int i = 0; i < N; i++) {
        if (i % 20 == 0) { /* learn the labels so far, publish i/20 + 1 */
            for (int j = i - 20; j >= 0 && j < i; j++) {
                rs_label_t lb;
                memset(&lb, 0, sizeof(lb));
                snprintf(lb.event_id, sizeof(lb.event_id), "ev-%d", j);
                lb.value = j % 4 == 0;
                rs_learner_label(tl->l, 0, &lb, 0, -1, NULL);
            }
            rs_model_weights_use(m, NULL); /* its own, to be published */
            rs_model_set_version(m, (uint64_t)(i / 20 + 1));
            if (rs_model_store_put(st, m, err, sizeof(err)) != RS_OK) {
                fprintf(stderr, "rescore_fixture: %s\n", err);
                return 1;
            }
            rs_strlcpy(ver[i / 20], rs_model_version(m), sizeof(ver[0]));
            /* as the service's scorer: score with what the version
             * publishes (model.average: its weight average), keep
             * learning on the weights themselves */
            rs_model_weights_t *w = rs_model_weights_take(m);
            if (rs_model_weights_use(m, w) != RS_OK) {
                fprintf(stderr, "rescore_fixture: weights_use failed\n");
                return 1;
            }
            rs_model_weights_release(w);
        }
        char id[32], ent[32], cp[32];
        float x[DIM];
        snprintf(id, sizeof(id), "ev-%d", i);
        snprintf(ent, sizeof(ent), "card-%d", i % 3);
        snprintf(cp, sizeof(cp), "m-%d", i % 5);
        for (int k = 0; k < DIM; k++) x[k] = (float)rs_rng_normal(&rng);
        t += 60000;
        rs_model_input_t in;
        memset(&in, 0, sizeof(in));
        in.event_id = id;
        in.entity_id = ent;
        in.counterparty_id = cp;
        in.event_time_ms = t;
        in.amount = 12.5f;
        in.x = x;
        in.n_cat = 1;
        in.cat_hash[0] = 77;
        in.log = log;
        in.log_cap = lmax;
        rs_model_output_t o;
        if (rs_test_learn_forward(tl, &in, 1, &o, NULL, RS_MODEL_FWD_REMEMBER)) {
            fprintf(stderr, "rescore_fixture: forward failed\n");
            return 1;
        }
        rs_score_t sc;
        memset(&sc, 0, sizeof(sc));
        rs_strlcpy(sc.event_id, id, sizeof(sc.event_id));
        rs_strlcpy(sc.entity_id, ent, sizeof(sc.entity_id));
        sc.score = o.score;
        sc.decision = RS_DECISION_APPROVE;
        rs_strlcpy(sc.model_version, rs_model_version(m),
                   sizeof(sc.model_version));
        sc.event_time_ms = t;
        sc.scored_at_ms = t + 3;
        int jl = rs_score_to_json(&sc, json, RS_ENCODE_MAX);
        snprintf(path, sizeof(path), "%s/%s.json", out, id);
        if (jl < 0 || write_file(path, json, (size_t)jl)) return 1;
        snprintf(path, sizeof(path), "%s/%s.log", out, id);
        if (write_file(path, log, o.log_len)) return 1;
    }
    printf("%s %s\n", ver[0], ver[1]);
    free(log);
    free(json);
    rs_model_store_close(st);
    rs_test_learn_destroy(tl);
    return 0;
}
