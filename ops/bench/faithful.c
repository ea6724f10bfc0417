/* faithful.c -- faithfulness of the explanations (see faithful.h). */
#include "ops/bench/faithful.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "features/features.h"
#include "model/learner.h"
#include "ops/gen/gen.h"

void rs_faithful_conf_init(rs_faithful_conf_t *c) {
    memset(c, 0, sizeof(*c));
    c->seed = 42;
    c->entities = 2000;
    c->days = 30;
    c->warmup_events = 20000;
    c->every = 5;
    c->min_hist = 2;
    c->pick_seed = 7;
    rs_model_conf_init(&c->model);
    c->model.kind = RS_MODEL_SEQ;
    c->model.seq.max_entities = 4096;
}

/* What one measured event needs (allocated once per run). */
typedef struct rs_fw_s {
    int dim;
    float *contrib;          /* [dim] baseline contributions              */
    float *xw;               /* [2][dim] what-if feature rows             */
    uint8_t *log;            /* [log_max] input log of the real forward   */
    size_t log_max;
    rs_rng_t rng;
    double ft, fr, ht, hr, fw, hw, nh;
    uint64_t n, nhist;
} rs_fw_t;

/* Measure `in` (not yet scored) with what-if forwards.  Returns 1 if
 * measured, 0 if skipped (too little history), -1 on a model error. */
static int rs_fw_measure(rs_fw_t *w, rs_model_t *m, const rs_model_input_t *in,
                         const rs_faithful_conf_t *c, float *base_score) {
    const int seq = !strcmp(rs_model_kind(m), "seq");
    rs_model_output_t b, o[4];
    if (rs_model_forward(m, in, 1, &b, w->contrib,
                         RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN) != RS_OK)
        return -1;
    if (seq && (b.n_hist < c->min_hist || b.n_attended < 1)) return 0;
    *base_score = b.score;

    /* features: top |contribution| vs uniform, set to the mean */
    int top = 0;
    for (int i = 1; i < w->dim; i++)
        if (fabsf(w->contrib[i]) > fabsf(w->contrib[top])) top = i;
    int rnd = (int)rs_rng_below(&w->rng, (uint64_t)w->dim);
    rs_model_input_t wi[4];
    int nw = 2;
    for (int k = 0; k < 2; k++) {
        float *x = w->xw + (size_t)k * w->dim;
        memcpy(x, in->x, sizeof(float) * (size_t)w->dim);
        x[k ? rnd : top] = NAN; /* standardised to 0: the feature's mean */
        wi[k] = *in;
        wi[k].x = x;
        wi[k].log = NULL;
    }
    /* history: the top-attended past event vs one drawn from the cache */
    if (seq) {
        for (int k = 2; k < 4; k++) {
            wi[k] = *in;
            wi[k].log = NULL;
        }
        wi[2].skip_hist = b.attended[0].rank + 1;
        wi[3].skip_hist = 1 + (int)rs_rng_below(&w->rng, (uint64_t)b.n_hist);
        nw = 4;
    }
    if (rs_model_forward(m, wi, nw, o, NULL, RS_MODEL_FWD_DRY) != RS_OK)
        return -1;
    double dft = fabs((double)o[0].score - b.score),
           dfr = fabs((double)o[1].score - b.score);
    w->ft += dft;
    w->fr += dfr;
    w->fw += dft > dfr;
    if (seq) {
        double dht = fabs((double)o[2].score - b.score),
               dhr = fabs((double)o[3].score - b.score);
        w->ht += dht;
        w->hr += dhr;
        w->hw += dht > dhr;
        w->nh += b.n_hist;
        w->nhist++;
    }
    w->n++;
    return 1;
}

rs_err_t rs_faithful_run(const rs_faithful_conf_t *c, rs_faithful_res_t *res,
                         char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    rs_gen_t *g = NULL;
    rs_features_t *f = NULL;
    rs_model_t *m = NULL;
    rs_learnlog_t *lg = NULL;
    rs_learner_t *lr = NULL;
    rs_gen_rec_t *rec = rs_calloc(1, sizeof(*rec));
    float *x = NULL;
    double *sc = NULL;       /* [nsc] scores after the warm-up, for the AUC */
    int *truth = NULL;
    size_t nsc = 0, capsc = 0;
    rs_fw_t w;
    memset(&w, 0, sizeof(w));
    memset(res, 0, sizeof(*res));

    rs_gen_conf_t gc;
    rs_gen_conf_defaults(&gc);
    gc.mode = RS_GEN_MODE_CARDS;
    gc.seed = c->seed;
    gc.entities = c->entities;
    gc.duration_ms = c->days * 86400000LL;
    gc.drain_labels = 0;
    g = rs_gen_new(&gc, errstr, errstr_size);
    if (!g) {
        err = RS_ERR_CONFIG;
        goto done;
    }
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    f = rs_features_new(&fc, errstr, errstr_size);
    if (!f) {
        err = RS_ERR_CONFIG;
        goto done;
    }
    const int dim = rs_features_dim(f);
    const char *names[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < dim; i++) names[i] = rs_features_name(f, i);
    rs_model_conf_t mc = c->model;
    if (!mc.label_delay) /* declared, as a user knows it */
        mc.label_delay = (int64_t)((double)gc.label_delay_ms *
                                   (1.0 + gc.label_jitter));
    m = rs_model_new(&mc, dim, names, errstr, errstr_size);
    if (!m) {
        err = RS_ERR_CONFIG;
        goto done;
    }
    {
        rs_learnlog_meta_t meta;
        rs_model_lrec_meta(m, &meta);
        lg = rs_learnlog_open("", 0, &meta, mc.log_segment, &err, errstr,
                              errstr_size);
        if (!lg) goto done;
        lr = rs_learner_new(m, &mc);
        rs_learner_attach(lr, lg);
    }
    const int seq = !strcmp(rs_model_kind(m), "seq");
    x = rs_calloc((size_t)dim, sizeof(float));
    w.dim = dim;
    w.contrib = rs_calloc((size_t)dim, sizeof(float));
    w.xw = rs_calloc(2 * (size_t)dim, sizeof(float));
    w.log_max = rs_model_log_max(m);
    w.log = rs_malloc(w.log_max);
    rs_rng_seed(&w.rng, c->pick_seed);

    int64_t wm = INT64_MIN;
    const int64_t every = c->every > 0 ? c->every : 1;
    while (rs_gen_next(g, rec)) {
        if (rec->kind == RS_GEN_LABEL) {
            res->labels++;
            rs_features_label(f, &rec->lb);
            if (rs_learner_label(lr, 0, &rec->lb, 0, -1, NULL) == RS_OK &&
                rec->lb.value >= 0.5)
                res->positives++;
            continue;
        }
        if (rec->ev.event_time_ms > wm) wm = rec->ev.event_time_ms;
        while (rs_learner_advance(lr, 0, wm, -1, 4096, NULL, NULL) == 4096) {
        }
        uint32_t fl = 0;
        if (rs_features_process(f, &rec->ev, x, &fl) != RS_OK) continue;
        rs_model_input_t in;
        rs_model_input_from_event(&in, &rec->ev, x);
        int measured = 0;
        float base = 0;
        if ((int64_t)res->events >= c->warmup_events &&
            ((int64_t)res->events - c->warmup_events) % every == 0) {
            measured = rs_fw_measure(&w, m, &in, c, &base);
            if (measured < 0) {
                err = rs_errf(errstr, errstr_size, RS_ERR_STATE,
                              "what-if forward failed at event %s",
                              rec->ev.id);
                goto done;
            }
        }
        if (measured) {
            in.log = w.log;
            in.log_cap = w.log_max;
        }
        rs_model_output_t out;
        char e2[256];
        rs_err_t fe = rs_learner_forward(lr, 0, m, &in, 1, &out, NULL,
                                         RS_MODEL_FWD_REMEMBER, e2,
                                         sizeof(e2));
        if (fe != RS_OK) {
            err = rs_errf(errstr, errstr_size, RS_ERR_STATE,
                          "forward failed at event %s: %s", rec->ev.id, e2);
            goto done;
        }
        res->events++;
        if ((int64_t)res->events > c->warmup_events) {
            if (nsc == capsc) {
                capsc = capsc ? 2 * capsc : 4096;
                sc = rs_realloc(sc, capsc * sizeof(*sc));
                truth = rs_realloc(truth, capsc * sizeof(*truth));
            }
            sc[nsc] = out.score;
            truth[nsc++] = rec->is_fraud;
        }
        if (!measured) continue;
        if (memcmp(&out.score, &base, sizeof(float))) res->dry_mismatch++;
        float rs = -1;
        res->rescored++;
        if (rs_model_rescore(m, w.log, out.log_len, &rs, e2, sizeof(e2)) !=
                RS_OK ||
            memcmp(&rs, &out.score, sizeof(float)))
            res->rescore_mismatch++;
    }

    rs_model_stats_t st;
    rs_model_stats(m, &st);
    res->updates = st.updates;
    res->measured = w.n;
    res->auc = nsc ? rs_auc_exact(sc, truth, nsc) : NAN;
    res->dim = dim;
    res->history = seq ? (int)c->model.seq.history : 0;
    double n = w.n ? (double)w.n : NAN, nh = w.nhist ? (double)w.nhist : NAN;
    res->feat_top = w.ft / n;
    res->feat_rand = w.fr / n;
    res->feat_ratio = res->feat_top / res->feat_rand;
    res->feat_wins = w.fw / n;
    res->hist_top = w.ht / nh;
    res->hist_rand = w.hr / nh;
    res->hist_ratio = res->hist_top / res->hist_rand;
    res->hist_wins = w.hw / nh;
    res->mean_hist = w.nh / nh;
done:
    rs_free(sc);
    rs_free(truth);
    rs_free(w.contrib);
    rs_free(w.xw);
    rs_free(w.log);
    rs_free(x);
    rs_free(rec);
    rs_learner_destroy(lr);
    rs_learnlog_close(lg);
    rs_model_destroy(m);
    rs_features_destroy(f);
    rs_gen_destroy(g);
    return err;
}
