/* metrics.h -- generic measurement helpers: latency histogram, streaming
 * ROC AUC / average precision, and rate meters.
 *
 * No service knowledge here.  Each object is plain memory owned by one
 * thread (merge copies across threads); no allocation after init.
 */
#ifndef RS_METRICS_H
#define RS_METRICS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Log-linear histogram of non-negative integer values (e.g. microseconds):
 * 2 significant decimal digits of precision (relative error < 1%) from 0 up
 * to 2^40.  Fixed size, no allocation. */
#define RS_HIST_SUB 128          /* linear sub-buckets per power of two */
#define RS_HIST_EXP 34           /* powers of two covered above 128     */
typedef struct rs_hist_s {
    uint64_t counts[RS_HIST_EXP + 1][RS_HIST_SUB];
    uint64_t total;
    int64_t min, max;               /* exact; min is INT64_MAX when empty */
    double sum;
} rs_hist_t;

void rs_hist_init(rs_hist_t *h);
void rs_hist_record(rs_hist_t *h, int64_t value); /* negatives count as 0 */
/* Value at quantile q in [0,1] (upper edge of the bucket); 0 if empty. */
int64_t rs_hist_quantile(const rs_hist_t *h, double q);
/* Exact mean of the recorded values (after clamping negatives); 0 if
 * empty. */
double rs_hist_mean(const rs_hist_t *h);
/* Values recorded in buckets whose upper edge is <= value (cumulative
 * count for a Prometheus `le` bucket; exact to the bucket width). */
uint64_t rs_hist_count_le(const rs_hist_t *h, int64_t value);
/* dst += src (e.g. per-thread histograms into a report).  The caller
 * makes sure neither is being written at the same time. */
void rs_hist_merge(rs_hist_t *dst, const rs_hist_t *src);

/* Streaming ROC AUC and average precision over scores in [0,1], using
 * RS_AUC_BINS equal-width score bins (exact up to ties within a bin). */
#define RS_AUC_BINS 4096
typedef struct rs_auc_s {
    uint64_t pos[RS_AUC_BINS];
    uint64_t neg[RS_AUC_BINS];
    uint64_t npos, nneg;
} rs_auc_t;

void rs_auc_init(rs_auc_t *a);
/* label != 0 is positive.  Scores outside [0,1] are clamped; NaN counts as
 * the lowest score. */
void rs_auc_add(rs_auc_t *a, double score, int label);
/* NaN if either class is empty. */
double rs_auc_roc(const rs_auc_t *a);
double rs_auc_ap(const rs_auc_t *a);
void rs_auc_merge(rs_auc_t *dst, const rs_auc_t *src);

/* Exact ROC AUC of n (score,label) pairs (sorts a copy; cold path, used by
 * eval and tests to check the binned version).  NaN if a class is empty. */
double rs_auc_exact(const double *scores, const int *labels, size_t n);
/* Exact average precision (same conventions). */
double rs_ap_exact(const double *scores, const int *labels, size_t n);

/* Rate meter: events per second over the last few whole seconds, kept in
 * a ring of one-second slots.  The caller passes the time (normally
 * rs_clock_mono_us() / 1000), so tests can drive it; use a monotonic
 * clock.  Fixed size, no allocation.  One owner thread. */
#define RS_RATE_SLOTS 64
typedef struct rs_rate_s {
    uint64_t count[RS_RATE_SLOTS];  /* events in second sec[i]          */
    int64_t sec[RS_RATE_SLOTS];     /* which second slot i holds        */
    uint64_t total;                 /* all events ever added            */
} rs_rate_t;

void rs_rate_init(rs_rate_t *r);
void rs_rate_add(rs_rate_t *r, int64_t now_ms, uint64_t n);
/* Mean events/s over the `window_sec` whole seconds before the current
 * one (1 <= window_sec < RS_RATE_SLOTS, clamped); 0 when idle. */
double rs_rate_per_sec(const rs_rate_t *r, int64_t now_ms, int window_sec);

#ifdef __cplusplus
}
#endif
#endif /* RS_METRICS_H */
