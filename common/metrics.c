/* metrics.c -- latency histogram, streaming AUC/AP, rate meter.
 *
 * Histogram layout (HdrHistogram-like, log-linear):
 *   row 0      values [0, 128), width 1 (exact);
 *   row k >= 1 values [2^(k+6), 2^(k+7)), 128 sub-buckets of width 2^(k-1).
 * A bucket's width over its lowest value is at most 2^(k-1) / 2^(k+6) =
 * 1/128, so reporting the bucket's upper edge errs by < 0.8%.  Row 34 ends
 * at 2^41; larger values land in the last bucket (min/max stay exact).
 *
 * AUC bins: score s in [0,1] goes to bin floor(s * RS_AUC_BINS) (1.0 into
 * the last bin).  Pairs in one bin count as ties (half a pair), as an
 * exact computation does for equal scores.
 *
 * Nothing here allocates except rs_auc_exact / rs_ap_exact (a sorted copy).
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ histogram */

static void rs_hist_index(int64_t v, int *row, int *sub) {
    if (v < RS_HIST_SUB) {
        *row = 0;
        *sub = (int)v;
        return;
    }
    int msb = 63 - __builtin_clzll((unsigned long long)v); /* >= 7 */
    int k = msb - 6;
    if (k > RS_HIST_EXP) {
        *row = RS_HIST_EXP;
        *sub = RS_HIST_SUB - 1;
        return;
    }
    *row = k;
    *sub = (int)((uint64_t)v >> (k - 1)) - RS_HIST_SUB;
}

/* Largest value that falls in bucket (row, sub). */
static int64_t rs_hist_upper(int row, int sub) {
    if (row == 0) return sub;
    return ((int64_t)(sub + RS_HIST_SUB + 1) << (row - 1)) - 1;
}

void rs_hist_init(rs_hist_t *h) {
    memset(h, 0, sizeof(*h));
    h->min = INT64_MAX;
    h->max = 0;
}

void rs_hist_record(rs_hist_t *h, int64_t value) {
    int row, sub;
    if (value < 0) value = 0;
    rs_hist_index(value, &row, &sub);
    h->counts[row][sub]++;
    h->total++;
    h->sum += (double)value;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
}

int64_t rs_hist_quantile(const rs_hist_t *h, double q) {
    if (h->total == 0) return 0;
    if (!(q > 0)) return h->min; /* also NaN */
    if (q >= 1) return h->max;
    /* Rank of the target value, 1-based: the smallest value with at least
     * q of the mass at or below it. */
    double r = ceil(q * (double)h->total);
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    if (rank > h->total) rank = h->total;
    uint64_t seen = 0;
    for (int row = 0; row <= RS_HIST_EXP; row++)
        for (int sub = 0; sub < RS_HIST_SUB; sub++) {
            seen += h->counts[row][sub];
            if (seen >= rank) {
                int64_t v = rs_hist_upper(row, sub);
                return RS_MAX(h->min, RS_MIN(v, h->max));
            }
        }
    return h->max; /* not reached: counts sum to total */
}

uint64_t rs_hist_count_le(const rs_hist_t *h, int64_t value) {
    uint64_t n = 0;
    for (int row = 0; row <= RS_HIST_EXP; row++)
        for (int sub = 0; sub < RS_HIST_SUB; sub++)
            if (h->counts[row][sub] && rs_hist_upper(row, sub) <= value)
                n += h->counts[row][sub];
    return n;
}

double rs_hist_mean(const rs_hist_t *h) {
    return h->total ? h->sum / (double)h->total : 0.0;
}

void rs_hist_merge(rs_hist_t *dst, const rs_hist_t *src) {
    if (src->total == 0) return;
    for (int row = 0; row <= RS_HIST_EXP; row++)
        for (int sub = 0; sub < RS_HIST_SUB; sub++)
            dst->counts[row][sub] += src->counts[row][sub];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

/* ------------------------------------------------------------ AUC / AP */

void rs_auc_init(rs_auc_t *a) { memset(a, 0, sizeof(*a)); }

void rs_auc_add(rs_auc_t *a, double score, int label) {
    int bin;
    if (!(score > 0)) bin = 0; /* also NaN */
    else if (score >= 1) bin = RS_AUC_BINS - 1;
    else {
        bin = (int)(score * RS_AUC_BINS);
        if (bin >= RS_AUC_BINS) bin = RS_AUC_BINS - 1;
    }
    if (label) {
        a->pos[bin]++;
        a->npos++;
    } else {
        a->neg[bin]++;
        a->nneg++;
    }
}

double rs_auc_roc(const rs_auc_t *a) {
    if (!a->npos || !a->nneg) return NAN;
    /* Sum over positives of (#negatives below + half the ties). */
    double below = 0, acc = 0;
    for (int b = 0; b < RS_AUC_BINS; b++) {
        acc += (double)a->pos[b] * (below + 0.5 * (double)a->neg[b]);
        below += (double)a->neg[b];
    }
    return acc / ((double)a->npos * (double)a->nneg);
}

double rs_auc_ap(const rs_auc_t *a) {
    if (!a->npos || !a->nneg) return NAN;
    /* Thresholds from the highest bin down; each bin is one step of the
     * precision-recall curve: AP = sum (delta recall) * precision. */
    double tp = 0, fp = 0, ap = 0;
    for (int b = RS_AUC_BINS - 1; b >= 0; b--) {
        if (!a->pos[b] && !a->neg[b]) continue;
        tp += (double)a->pos[b];
        fp += (double)a->neg[b];
        if (a->pos[b]) ap += (double)a->pos[b] * (tp / (tp + fp));
    }
    return ap / (double)a->npos;
}

void rs_auc_merge(rs_auc_t *dst, const rs_auc_t *src) {
    for (int b = 0; b < RS_AUC_BINS; b++) {
        dst->pos[b] += src->pos[b];
        dst->neg[b] += src->neg[b];
    }
    dst->npos += src->npos;
    dst->nneg += src->nneg;
}

typedef struct rs_scored_s {
    double score;
    int label;
} rs_scored_t;

/* Ascending score, NaN first (a total order, as qsort requires). */
static int rs_scored_cmp(const void *pa, const void *pb) {
    double a = ((const rs_scored_t *)pa)->score;
    double b = ((const rs_scored_t *)pb)->score;
    int na = a != a, nb = b != b;
    if (na || nb) return nb - na;
    return (a > b) - (a < b);
}

static int rs_same_score(double a, double b) {
    return a == b || (a != a && b != b);
}

/* Sorted copy; counts classes.  NULL if n == 0. */
static rs_scored_t *rs_scored_sort(const double *scores, const int *labels,
                                   size_t n, size_t *npos) {
    *npos = 0;
    if (!n) return NULL;
    rs_scored_t *v = rs_malloc(sizeof(*v) * n);
    for (size_t i = 0; i < n; i++) {
        v[i].score = scores[i];
        v[i].label = labels[i] != 0;
        *npos += (size_t)v[i].label;
    }
    qsort(v, n, sizeof(*v), rs_scored_cmp);
    return v;
}

double rs_auc_exact(const double *scores, const int *labels, size_t n) {
    size_t npos;
    rs_scored_t *v = rs_scored_sort(scores, labels, n, &npos);
    if (!v || npos == 0 || npos == n) {
        free(v);
        return NAN;
    }
    /* Mann-Whitney U from the rank sum of positives; a tie group shares
     * the average of its ranks. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        size_t pos_in_group = 0;
        while (j < n && rs_same_score(v[j].score, v[i].score))
            pos_in_group += (size_t)v[j++].label;
        double avg_rank = ((double)(i + 1) + (double)j) / 2.0;
        rank_sum += avg_rank * (double)pos_in_group;
        i = j;
    }
    double p = (double)npos, q = (double)(n - npos);
    free(v);
    return (rank_sum - p * (p + 1) / 2.0) / (p * q);
}

double rs_ap_exact(const double *scores, const int *labels, size_t n) {
    size_t npos;
    rs_scored_t *v = rs_scored_sort(scores, labels, n, &npos);
    if (!v || npos == 0 || npos == n) {
        free(v);
        return NAN;
    }
    /* From the highest score down; a tie group is one threshold, so each
     * positive in it gets the precision at the end of the group. */
    double tp = 0, seen = 0, ap = 0;
    for (size_t i = n; i > 0;) {
        size_t j = i;
        double pos_in_group = 0;
        while (j > 0 && rs_same_score(v[j - 1].score, v[i - 1].score))
            pos_in_group += v[--j].label;
        tp += pos_in_group;
        seen += (double)(i - j);
        ap += pos_in_group * (tp / seen);
        i = j;
    }
    double p = (double)npos;
    free(v);
    return ap / p;
}

/* ---------------------------------------------------------- rate meter */

static int64_t rs_rate_sec(int64_t now_ms) {
    return now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
}

static int rs_rate_slot(int64_t sec) {
    int64_t m = sec % RS_RATE_SLOTS;
    return (int)(m < 0 ? m + RS_RATE_SLOTS : m);
}

void rs_rate_init(rs_rate_t *r) {
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < RS_RATE_SLOTS; i++) r->sec[i] = INT64_MIN;
}

void rs_rate_add(rs_rate_t *r, int64_t now_ms, uint64_t n) {
    int64_t sec = rs_rate_sec(now_ms);
    int i = rs_rate_slot(sec);
    if (r->sec[i] != sec) {
        r->sec[i] = sec;
        r->count[i] = 0;
    }
    r->count[i] += n;
    r->total += n;
}

double rs_rate_per_sec(const rs_rate_t *r, int64_t now_ms, int window_sec) {
    if (window_sec < 1) window_sec = 1;
    if (window_sec > RS_RATE_SLOTS - 1) window_sec = RS_RATE_SLOTS - 1;
    int64_t now = rs_rate_sec(now_ms);
    uint64_t sum = 0;
    for (int64_t s = now - window_sec; s < now; s++) {
        int i = rs_rate_slot(s);
        if (r->sec[i] == s) sum += r->count[i];
    }
    return (double)sum / window_sec;
}
