/* faithful.h -- do the model's explanations point at what drives its
 * score?  (issue #5; bench ops/bench/bench_faithful.c, test
 * tests/model/test_explain.c, docs/model.md "Faithfulness")
 *
 * Design note
 * -----------
 * A generated card stream (ops/gen, fixed seed) runs through the feature
 * engine and a model exactly as in `riskstream eval`: labels are learned
 * when the generator emits them, unlabelled events as negatives after
 * the label horizon (the generator's delay declared), every event is
 * scored with its learning record logged (rs_learner_forward).
 * After a warm-up (learning only), one event in `every` with at least
 * `min_hist` cached past events is measured BEFORE it is scored for real,
 * with what-if forwards (RS_MODEL_FWD_DRY: the model does not change):
 *
 *   baseline   the event as is, with contributions and attention;
 *   feature    the top-attributed feature (largest |contribution|) set to
 *              its mean (x_i = NaN: standardised to 0), vs a feature drawn
 *              uniformly;
 *   history    the top-attended past event left out (skip_hist = its rank
 *              + 1), vs a past event drawn uniformly from the cache.
 *
 * Faithfulness = mean |score change| of the top choice / of the random
 * one (> 1: the explanation ranks what matters above chance).  Also
 * counted: the share of events where the top choice moved the score more
 * than the random one, that the what-if baseline equals the real score bit
 * for bit, and that every measured event's input log rescores to it bit
 * for bit (rs_model_rescore with the same model).
 *
 * Deterministic for a configuration (same build).  Cold path: allocates;
 * one thread.
 */
#ifndef RS_FAITHFUL_H
#define RS_FAITHFUL_H

#include "common/common.h"
#include "model/model.h"

typedef struct rs_faithful_conf_s {
    int64_t seed;            /* generator seed (gen.seed)                 */
    int64_t entities;        /* cards                                     */
    int64_t days;            /* event-time span                           */
    int64_t warmup_events;   /* learned only, not measured                */
    int64_t every;           /* then measure one event in `every`         */
    int64_t min_hist;        /* measured events have >= this many cached
                              * past events ("seq"; "lr": features only) */
    uint64_t pick_seed;      /* the random feature / past event choice    */
    rs_model_conf_t model;   /* kind and sizes (rs_faithful_conf_init:
                              * defaults, kind seq, caches sized for the
                              * entities)                                 */
} rs_faithful_conf_t;

typedef struct rs_faithful_res_s {
    uint64_t events;         /* events scored                             */
    uint64_t labels;         /* labels emitted by the generator           */
    uint64_t updates;        /* model updates (labels + horizon)          */
    uint64_t positives;      /* positive labels learned                   */
    uint64_t measured;       /* events measured                           */
    double auc;              /* ROC AUC of the scores after the warm-up
                              * against the generator's truth (is_fraud) */
    int dim, history;        /* features, seq.history (0 for "lr")        */
    double mean_hist;        /* mean cached past events of those measured */
    double feat_top, feat_rand;    /* mean |score change|                 */
    double hist_top, hist_rand;    /* NaN for "lr"                        */
    double feat_ratio, hist_ratio; /* top / random                        */
    double feat_wins, hist_wins;   /* share: |change top| > |change rand| */
    uint64_t dry_mismatch;   /* what-if baseline != real score (0)        */
    uint64_t rescored, rescore_mismatch; /* logs rescored, != score (0)   */
} rs_faithful_res_t;

/* Defaults: seed 42, 2000 cards, 30 days, warm-up 20000 events, every 5,
 * min_hist 2, pick_seed 7; model defaults with kind seq, max_entities
 * 4096. */
void rs_faithful_conf_init(rs_faithful_conf_t *c);

/* Run the stream and the measurement into *res.  RS_ERR_CONFIG with errstr
 * for a bad generator/feature/model configuration; RS_ERR_STATE if an
 * unexpected model error happened (errstr says which). */
rs_err_t rs_faithful_run(const rs_faithful_conf_t *c, rs_faithful_res_t *res,
                         char *errstr, size_t errstr_size);

#endif /* RS_FAITHFUL_H */
