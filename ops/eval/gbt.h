/* gbt.h -- the boosted-trees reference of `riskstream eval` (private to
 * ops/eval): the model most fraud teams would otherwise deploy, retrained
 * every day of event time on a trailing window of matured labels.
 *
 * Protocol: at the first event of each UTC day D, a model is trained with
 * libxgboost (Debian's libxgboost-dev, C API) on the events of
 * [D - maturity - window, D - maturity): each is a positive if its fraud
 * label had become known before D (known_ms < D), else a negative -- only
 * labels that had arrived by then, as the online models.  That model
 * scores every event of day D.  Before the first model (or while a window
 * has no positive) the score is 0.  Same feature vectors as seq and lr.
 *
 * Built only when libxgboost is found (RS_HAVE_XGBOOST); rs_gbt_available()
 * says so.  Ownership: new/destroy; one thread. */
#ifndef RS_EVAL_GBT_H
#define RS_EVAL_GBT_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_gbt_conf_s {
    int64_t window_ms;      /* trailing training window (default 7d)      */
    int64_t maturity_ms;    /* the window ends this long before the day   */
    int rounds;             /* boosting rounds (200)                      */
    int max_depth;          /* 6                                          */
    double eta;             /* 0.1                                        */
    int nthread;            /* 1                                          */
    int balance;            /* 1: scale_pos_weight = negatives/positives  */
} rs_gbt_conf_t;

typedef struct rs_gbt_stats_s {
    uint64_t trainings;      /* models trained                            */
    uint64_t positives;      /* training rows over all trainings          */
    uint64_t negatives;
    uint64_t last_positives, last_negatives;
    double train_s;          /* wall time spent training                  */
} rs_gbt_stats_t;

typedef struct rs_gbt_s rs_gbt_t;

int rs_gbt_available(void);
void rs_gbt_conf_init(rs_gbt_conf_t *conf);
/* NULL + errstr if xgboost is missing or the conf is bad. */
rs_gbt_t *rs_gbt_new(int dim, const rs_gbt_conf_t *conf, char *errstr,
                     size_t errstr_size);
void rs_gbt_destroy(rs_gbt_t *g);
/* Score x[dim] of an event at t (events in non-decreasing time; a new UTC
 * day retrains first). */
float rs_gbt_score(rs_gbt_t *g, int64_t t, const float *x);
/* Keep the event for later trainings; known_ms: when its positive label
 * becomes known (INT64_MAX: never, a negative). */
void rs_gbt_add(rs_gbt_t *g, int64_t t, const float *x, int64_t known_ms);
void rs_gbt_stats(const rs_gbt_t *g, rs_gbt_stats_t *st);

#endif /* RS_EVAL_GBT_H */
