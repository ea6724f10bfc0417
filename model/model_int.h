/* model_int.h -- internals of model/ shared with its unit tests only.
 * Not part of the public API; nothing outside model/ and tests/model
 * includes it. */
#ifndef RS_MODEL_INT_H
#define RS_MODEL_INT_H

#include <string.h>

#include "model/learnlog.h"
#include "model/model.h"

_Static_assert(sizeof(rs_lrec_hdr_t) == 48, "learning record header layout");

/* 1 if the event of `in`, scored `score`, is explained (model.h
 * rs_model_input_t.explain_min): the comparison the service's records
 * make (scoring/workers.c), a float score against a double threshold, so
 * both agree on every row; a NaN score is explained only without a
 * threshold, as before it existed. */
static inline int rs_model_explains(const rs_model_input_t *in, float score) {
    return !(in->explain_min > 0) || (double)score >= in->explain_min;
}

/* 1 if the input log of the event of `in`, scored `score`, is written
 * (rs_model_input_t.log_min): the comparison of rs_model_explains. */
static inline int rs_model_logs(const rs_model_input_t *in, float score) {
    return !(in->log_min > 0) || (double)score >= in->log_min;
}

#include <math.h>

/* ------------------------------------------------------ the standardiser
 *
 * Both kinds standardise every feature as z = clip((g(x) - mu) / sd, 8),
 * g = symlog (sign(x) log(1 + |x|), model.transform: symlog, the default:
 * counts and amounts of any scale become comparable and a heavy tail
 * cannot dominate a dot product) or the identity.  mu and sd are running
 * statistics OBSERVED from every scored event's learning record as the
 * learner reads the log (not only from learned ones, which lag by the
 * label horizon), in log order, with an exponential forgetting in EVENT
 * time: an observation at t weighs a = max(1/n, 1 - exp(-(t - t_last) /
 * model.std_window)), so the statistics follow the inputs of the last
 * std_window (a start with empty windows, a drift) instead of all of
 * history.  var is kept as m2 = var * n (what the file holds). */
/* The weight average (model.average): what a version scores with is the
 * running average of the learned weights, not the last step.  Online
 * learning sees its examples in time order (maturity negatives come in
 * event-time order), so plain SGD chases whatever the last hours looked
 * like (hour of day, one merchant's burst); the average over about a
 * week of event time does not (Polyak-Ruppert averaging, then an
 * exponential forgetting): step k weighs a_k = max(1 / k, 1 - exp(-(t_k -
 * t_{k-1}) / average)), t_k the learned record's event time.  The
 * learner keeps learning on the weights themselves. */
static inline double rs_avg_rate(uint64_t k, int64_t t, int64_t *tlast,
                                 int64_t window_ms) {
    double a = 1.0 / (double)k;
    if (k > 1 && window_ms > 0 && t > *tlast) {
        double e = 1.0 - exp(-(double)(t - *tlast) / (double)window_ms);
        if (e > a) a = e;
    }
    if (k == 1 || t > *tlast) *tlast = t;
    return a;
}

static inline float rs_std_g(int symlog, float x) {
    if (!symlog) return x;
    return x >= 0 ? log1pf(x) : -log1pf(-x);
}

static inline void rs_std_observe(double *mean, double *m2, uint64_t *n,
                                  int64_t *tlast, int dim, const float *x,
                                  int64_t t, int64_t window_ms, int symlog) {
    const uint64_t n1 = *n + 1;
    double a = 1.0 / (double)n1;
    if (window_ms > 0 && *n && t > *tlast) {
        double e = 1.0 - exp(-(double)(t - *tlast) / (double)window_ms);
        if (e > a) a = e;
    }
    if (!*n || t > *tlast) *tlast = t;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(x[i])) continue;
        double v = (double)rs_std_g(symlog, x[i]);
        double var = *n ? m2[i] / (double)*n : 0.0;
        double d = v - mean[i];
        mean[i] += a * d;
        var = (1.0 - a) * (var + a * d * d);
        m2[i] = var * (double)n1;
    }
    *n = n1;
}

/* Class-weighted logistic loss of one standardised row and its gradient:
 *   l    = b + sum_i w_i z_i
 *   loss = c * (softplus(l) - y * l) + l2/2 * |w|^2,  c = pos_weight if y
 *   grad[i] = c * (sigmoid(l) - y) * z_i + l2 * w_i,  grad[dim] = bias term
 * w is [dim + 1] with the bias last.  Returns the loss. */
double rs_lr_loss_grad(const double *w /* [dim+1] */, const float *z /* [dim] */,
                       int dim, int y, double pos_weight, double l2,
                       double *grad /* [dim+1], may be NULL */);

/* The update count and version step (bit 63: the number was set) of a
 * model file from its first len bytes (no checksum: for listings).  RS_ERR_AGAIN: more bytes needed;
 * RS_ERR_CORRUPT: not a model file. */
rs_err_t rs_model_peek(const uint8_t *buf, size_t len, uint64_t *updates,
                       uint64_t *vstep);

/* Little-endian writer into a growing buffer (cold path: may allocate)
 * and bounds-checked reader (b->bad set on any overrun), shared by the
 * model kinds' save/load. */
typedef struct rs_wbuf_s {
    uint8_t *p;
    size_t len, cap;
} rs_wbuf_t;

void rs_wb_put(rs_wbuf_t *b, const void *src, size_t n);
void rs_wb_u64(rs_wbuf_t *b, uint64_t v);
void rs_wb_u32(rs_wbuf_t *b, uint32_t v);
void rs_wb_f64(rs_wbuf_t *b, double v);
void rs_wb_str(rs_wbuf_t *b, const char *s);

typedef struct rs_rbuf_s {
    const uint8_t *p;
    size_t len, off;
    int bad;
} rs_rbuf_t;

const uint8_t *rs_rb_take(rs_rbuf_t *b, size_t n);
uint64_t rs_rb_u64(rs_rbuf_t *b);
uint32_t rs_rb_u32(rs_rbuf_t *b);
double rs_rb_f64(rs_rbuf_t *b);
void rs_rb_str(rs_rbuf_t *b, char *dst, size_t max);

/* Range checks of the `model:` table (model.c); the "seq" reader checks
 * the settings a file declares with it before sizing anything. */
rs_err_t rs_model_check_conf(const rs_model_conf_t *c, char *errstr,
                             size_t errstr_size);
/* The largest value the `model:` table allows for field `name`
 * ("grad_clip", "l2"): the readers bound optimiser state by it. */
double rs_model_conf_max(const char *name);

/* Load-time value checks shared by the kinds' readers.  A file that
 * passes its checksum can still hold values no model reaches (a damaged
 * writer, a hand-made file): a reader rejects them instead of scoring NaN
 * later.  RS_OK if every v[i] is in [lo, hi] (so finite; NaN never is),
 * else RS_ERR_CORRUPT with errstr "FIELD[i] = V is outside [LO, HI]". */
rs_err_t rs_model_check_f64s(const char *field, const double *v, size_t n,
                             double lo, double hi, char *errstr,
                             size_t errstr_size);
rs_err_t rs_model_check_f32s(const char *field, const float *v, size_t n,
                             double lo, double hi, char *errstr,
                             size_t errstr_size);

/* Largest standard deviation a loaded standardiser may have: istd = 1/std
 * stays a normal float (> FLT_MIN), so (x - mu) * istd is never
 * inf * 0 = NaN.  No float feature comes near (its values are < FLT_MAX). */
#define RS_MODEL_STD_MAX 1e37

/* The Welford standardiser (mean, m2 [dim] over nobs observations of
 * float features) of a loaded file: mean[i] finite as a float (scoring
 * casts it to mu), m2[i] >= 0 with m2 / max(nobs, 1) <= RS_MODEL_STD_MAX^2.
 * RS_ERR_CORRUPT naming the field and index otherwise. */
rs_err_t rs_model_check_std(const double *mean, const double *m2, int dim,
                            uint64_t nobs, char *errstr, size_t errstr_size);

/* ---------------------------------------------------- state views
 *
 * The arrays and counters of a model's own state (never a snapshot it
 * uses), for model/combine.c: combining versions learned by several
 * instances is arithmetic on them.  rs_model_view brings a lazily kept
 * weight average up to date first ("seq"), so the arrays are what a save
 * writes.  After changing them, rs_model_view_done recomputes what scoring
 * derives (mu/istd, float copies).  The thread that owns m; cold path. */
#define RS_MODEL_VIEW_ARRAYS 8
typedef struct rs_model_view_s {
    int kind;                      /* rs_model_kind_t                     */
    int narr;
    struct {
        const char *name;          /* "p", "average", "moment1", ...     */
        float *f32;                /* one of f32 / f64 is set             */
        double *f64;
        size_t n;
        int avg_of;                /* >= 0: this array is the weight
                                    * average of arr[avg_of] (meaningless
                                    * while *avn == 0: the weights then) */
    } arr[RS_MODEL_VIEW_ARRAYS];
    int dim;
    double *mean, *m2;             /* [dim] the standardiser              */
    uint64_t *nobs;
    int64_t *std_tlast;
    uint64_t *updates, *positives, *negatives, *horizon_negatives;
    uint64_t *avn, *opt_t;
    int64_t *avt;
} rs_model_view_t;
void rs_model_view(rs_model_t *m, rs_model_view_t *v);
void rs_model_view_done(rs_model_t *m);
/* The "seq" model inside m (NULL for "lr"): model/shard.c runs its
 * lanes.  The thread that owns m. */
struct rs_seq_s *rs_model_seq(rs_model_t *m);

/* Input logs (model.h "input logs and rescoring"): common header, shared
 * by the kinds' writers (model.c "lr", seq_fwd.c "seq") and model.c's reader. */
#define RS_MODEL_LOG_MAGIC   "RSIN"
#define RS_MODEL_LOG_FORMAT  1u
#define RS_MODEL_LOG_HDR     24   /* magic .. body length                 */
#define RS_MODEL_LOG_TRAILER 4    /* checksum                             */
#define RS_MODEL_LOG_BLAS    0x1u /* flags: scored with seq.gemm blas     */

/* Little-endian stores into a byte buffer (no alignment needed). */
static inline uint8_t *rs_le_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}
static inline uint8_t *rs_le_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}
static inline uint32_t rs_le_get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint64_t rs_le_get64(const uint8_t *p) {
    return (uint64_t)rs_le_get32(p) | (uint64_t)rs_le_get32(p + 4) << 32;
}
/* n floats as raw little-endian bits (memcpy on a little-endian host). */
static inline uint8_t *rs_le_putf32s(uint8_t *p, const float *v, size_t n) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, v, 4 * n);
    return p + 4 * n;
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        p = rs_le_put32(p, u);
    }
    return p;
#endif
}
static inline const uint8_t *rs_le_getf32s(const uint8_t *p, float *v,
                                           size_t n) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(v, p, 4 * n);
    return p + 4 * n;
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u = rs_le_get32(p);
        memcpy(&v[i], &u, 4);
        p += 4;
    }
    return p;
#endif
}
/* The trailer: low 32 bits of xxHash3 of everything before it (xxh32,
 * rs_checksum32, is ~2x slower: ~1 us per 8.7 KiB log, measured). */
static inline uint32_t rs_model_log_sum(const void *p, size_t n) {
    return (uint32_t)rs_hash64(p, n);
}
/* Header at p[0..RS_MODEL_LOG_HDR); returns p + RS_MODEL_LOG_HDR. */
static inline uint8_t *rs_model_log_hdr(uint8_t *p, int kind, unsigned flags,
                                        uint32_t arch, uint32_t names_hash,
                                        uint32_t dim, uint32_t body_len) {
    memcpy(p, RS_MODEL_LOG_MAGIC, 4);
    p[4] = (uint8_t)RS_MODEL_LOG_FORMAT;
    p[5] = (uint8_t)kind;
    p[6] = (uint8_t)flags;
    p[7] = (uint8_t)(flags >> 8);
    rs_le_put32(p + 8, arch);
    rs_le_put32(p + 12, names_hash);
    rs_le_put32(p + 16, dim);
    return rs_le_put32(p + 20, body_len);
}

#endif /* RS_MODEL_INT_H */
