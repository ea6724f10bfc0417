/* rul.c -- remaining useful life head (see rul.h). */
#include "model/rul.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RS_RUL_LR 0.05    /* AdaGrad step                               */
#define RS_RUL_CLIP 8.0f  /* standardised inputs are clipped to +-this */

/* Inputs: the reading's features x[dim], then the failure classifier's
 * logit (its score for "fails within the horizon", the strongest single
 * summary of how close the machine is to failing). */
struct rs_rul_s {
    int dim;              /* features; the head has dim + 1 inputs      */
    int64_t cap;
    uint64_t n;           /* readings learned                           */
    double *mean;         /* [dim] running mean of what was learned     */
    double *m2;           /* [dim] running sum of squared deviations    */
    double *w;            /* [dim + 1] weights, then the bias           */
    double *g2;           /* [dim + 1] AdaGrad accumulators             */
    float *z;             /* [dim] scratch (learn only)                 */
};

rs_rul_t *rs_rul_new(int dim, int64_t cap_ms) {
    if (dim < 1 || cap_ms < 1) return NULL;
    rs_rul_t *r = rs_calloc(1, sizeof(*r));
    r->dim = dim;
    r->cap = cap_ms;
    r->mean = rs_calloc((size_t)dim + 1, sizeof(double));
    r->m2 = rs_calloc((size_t)dim + 1, sizeof(double));
    r->w = rs_calloc((size_t)dim + 2, sizeof(double));
    r->g2 = rs_calloc((size_t)dim + 2, sizeof(double));
    r->z = rs_calloc((size_t)dim + 1, sizeof(float));
    return r;
}

void rs_rul_destroy(rs_rul_t *r) {
    if (!r) return;
    free(r->mean);
    free(r->m2);
    free(r->w);
    free(r->g2);
    free(r->z);
    free(r);
}

int64_t rs_rul_cap(const rs_rul_t *r) { return r->cap; }
int rs_rul_dim(const rs_rul_t *r) { return r->dim; }
uint64_t rs_rul_updates(const rs_rul_t *r) { return r->n; }

/* z_i of x_i under the running statistics (0 while unknown). */
static inline float rs_rul_z(const rs_rul_t *r, int i, float x) {
    if (!isfinite(x) || r->n < 2) return 0.0f;
    double var = r->m2[i] / (double)(r->n - 1);
    if (!(var > 1e-12)) return 0.0f;
    double z = ((double)x - r->mean[i]) / sqrt(var);
    if (z > RS_RUL_CLIP) z = RS_RUL_CLIP;
    if (z < -RS_RUL_CLIP) z = -RS_RUL_CLIP;
    return (float)z;
}

/* The classifier's score as an input: its logit. */
static float rs_rul_score_in(float score) {
    double p = isfinite(score) ? (double)score : 0.5;
    if (p < 1e-4) p = 1e-4;
    if (p > 1 - 1e-4) p = 1 - 1e-4;
    return (float)log(p / (1 - p));
}

/* Input i of (x, score). */
static inline float rs_rul_in(const rs_rul_t *r, const float *x, float sin,
                              int i) {
    return i < r->dim ? x[i] : sin;
}

/* w . z + b, z from (x, score). */
static double rs_rul_logit(const rs_rul_t *r, const float *x, float score,
                           float *z) {
    const int n = r->dim + 1;
    const float sin = rs_rul_score_in(score);
    double s = r->w[n];
    for (int i = 0; i < n; i++) {
        float zi = rs_rul_z(r, i, rs_rul_in(r, x, sin, i));
        if (z) z[i] = zi;
        s += r->w[i] * (double)zi;
    }
    return s;
}

static double rs_rul_sigmoid(double s) {
    if (s > 40) s = 40;
    if (s < -40) s = -40;
    return 1.0 / (1.0 + exp(-s));
}

void rs_rul_learn(rs_rul_t *r, const float *x, float score, int64_t rul_ms) {
    if (rul_ms < 0) rul_ms = 0;
    if (rul_ms > r->cap) rul_ms = r->cap;
    /* the statistics first: the step is on the inputs as standardised
     * from now on */
    r->n++;
    const float sin = rs_rul_score_in(score);
    for (int i = 0; i <= r->dim; i++) {
        float xi = rs_rul_in(r, x, sin, i);
        double v = isfinite(xi) ? (double)xi : r->mean[i];
        double d = v - r->mean[i];
        r->mean[i] += d / (double)r->n;
        r->m2[i] += d * (v - r->mean[i]);
    }
    double y = (double)rul_ms / (double)r->cap;
    double p = rs_rul_sigmoid(rs_rul_logit(r, x, score, r->z));
    double g = p - y; /* d cross-entropy / d logit */
    for (int i = 0; i <= r->dim + 1; i++) {
        double gi = i <= r->dim ? g * (double)r->z[i] : g;
        if (gi == 0) continue;
        r->g2[i] += gi * gi;
        r->w[i] -= RS_RUL_LR * gi / sqrt(r->g2[i] + 1e-8);
    }
}

int64_t rs_rul_predict(const rs_rul_t *r, const float *x, float score) {
    double p = rs_rul_sigmoid(rs_rul_logit(r, x, score, NULL));
    int64_t ms = (int64_t)llround(p * (double)r->cap);
    return ms < 1 ? 1 : ms > r->cap ? r->cap : ms;
}

rs_err_t rs_rul_copy(rs_rul_t *dst, const rs_rul_t *src) {
    if (!dst || !src || dst->dim != src->dim || dst->cap != src->cap)
        return RS_ERR_INVALID;
    size_t d = (size_t)src->dim;
    dst->n = src->n;
    memcpy(dst->mean, src->mean, (d + 1) * sizeof(double));
    memcpy(dst->m2, src->m2, (d + 1) * sizeof(double));
    memcpy(dst->w, src->w, (d + 2) * sizeof(double));
    memcpy(dst->g2, src->g2, (d + 2) * sizeof(double));
    return RS_OK;
}
