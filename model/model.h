/* model.h -- the risk model: scores float feature vectors, learns online
 * from delayed labels, saves and loads immutable versions.
 *
 * Design note
 * -----------
 * The API is model-agnostic: a model sees a fixed-length float vector with
 * feature names, nothing of Kafka, Redis or how the features were made.
 * The first model (kind "lr") is an online logistic regression:
 *
 *   z_i   = clip((x_i - mu_i) * istd_i, -8, 8)      online standardisation
 *   logit = b + sum_i w_i z_i,   score = sigmoid(logit)
 *
 * mu/istd come from Welford mean/variance per feature, updated only when
 * learning, never when scoring, so one model version scores a given input
 * deterministically.  Scoring standardises a micro-batch into a
 * preallocated [batch_max][dim] buffer and runs one cblas_sgemv.
 *
 * Learning: rs_model_remember() keeps the raw vector of a scored event in a
 * bounded pending buffer (open-addressing index on the event id hash + FIFO
 * ring by insertion).  rs_model_learn() takes the label of a pending event
 * and does one Adam step on the class-weighted logistic loss with L2 and
 * gradient-norm clipping; rs_model_advance() learns events older than
 * watermark - label_horizon that never got a label as negatives.  When the
 * buffer is full the oldest entry is dropped (counted), never blocking.
 *
 * Versions: "lr-<8 hex of the config hash>-<n>", n = updates /
 * publish_every.  rs_model_save() writes an atomic, checksummed file;
 * rs_model_load() restores a model that scores bit-identically.  The
 * pending buffer is transient and not saved.
 *
 * Threads: one thread owns an rs_model_t and makes every call on it (the
 * scoring/training split comes with the sequence model).  OpenBLAS may use
 * its own threads inside cblas_sgemv; set OPENBLAS_NUM_THREADS=1 for the
 * small batches of the scoring path.
 */
#ifndef RS_MODEL_H
#define RS_MODEL_H

#include "common/common.h"
#include "common/config.h"
#include "proto/proto.h"   /* rs_label_t (plain struct; no rs_proto link) */

#ifdef __cplusplus
extern "C" {
#endif

#define RS_MODEL_NAME_MAX 64   /* feature name incl. NUL */
#define RS_MODEL_Z_CLIP   8.0f

typedef struct rs_model_conf_s {
    double learning_rate;   /* Adam step size                              */
    double l2;              /* L2 penalty on the weights (not the bias)    */
    double pos_weight;      /* loss weight of positive labels              */
    double grad_clip;       /* max L2 norm of one gradient                 */
    int64_t label_horizon;  /* ms: unlabelled after this -> negative       */
    int64_t pending_max;    /* events awaiting a label                     */
    int64_t publish_every;  /* updates per version step                    */
    int64_t batch_max;      /* rows per scoring GEMV                       */
    double base_rate;       /* prior positive rate: the untrained model's
                             * score, so a cold start approves           */
} rs_model_conf_t;

/* Fill `conf` with the defaults of the field table. */
void rs_model_conf_init(rs_model_conf_t *conf);
/* The `model:` config section writing into `conf` (see
 * rs_features_conf_section for the ownership rule). */
void rs_model_conf_section(rs_conf_section_t *sec, rs_model_conf_t *conf);
const rs_conf_field_t *rs_model_conf_fields(int *nfields);

typedef struct rs_model_s rs_model_t;

/* New untrained model (weights 0, score 0.5) for `dim` features named
 * names[dim] (copied).  conf is copied.  NULL + errstr on bad arguments.
 * Destroy with rs_model_destroy().  Allocates everything up front:
 * pending_max * dim floats for the pending buffer. */
rs_model_t *rs_model_new(const rs_model_conf_t *conf, int dim,
                         const char *const *names, char *errstr,
                         size_t errstr_size);
void rs_model_destroy(rs_model_t *m);   /* NULL is a no-op */

int rs_model_dim(const rs_model_t *m);
const char *rs_model_feature_name(const rs_model_t *m, int i); /* NULL if OOB */
const char *rs_model_kind(const rs_model_t *m);                /* "lr"       */

/* RS_OK if the model was built for exactly these feature names (in order),
 * else RS_ERR_CONFIG naming the first difference. */
rs_err_t rs_model_check_names(const rs_model_t *m, int dim,
                              const char *const *names, char *errstr,
                              size_t errstr_size);

/* Score n rows: scores[n] in (0,1); contrib (may be NULL) gets
 * contrib[n][dim] = w_i * z_i, each feature's logit contribution.  Works
 * in chunks of batch_max rows with preallocated buffers: no allocation.
 * Non-finite inputs are treated as the feature's mean (z = 0).  Does not
 * change the model.  Returns RS_ERR_INVALID if n < 0. */
rs_err_t rs_model_score(rs_model_t *m, const float *x /* [n][dim] */, int n,
                        float *scores /* [n] */,
                        float *contrib /* [n][dim] or NULL */);

/* Keep x[dim] and its score until a label (or the horizon) resolves it,
 * keyed by rs_hash_str(event_id).  A second remember of the same id
 * replaces the first.  If the buffer is full the oldest entry is dropped
 * (counted in stats.dropped).  No allocation. */
rs_err_t rs_model_remember(rs_model_t *m, const char *event_id,
                           int64_t event_time_ms, const float *x /* [dim] */,
                           float score);

/* Learn the label of a pending event (one Adam step; label = value >= 0.5)
 * and forget it.  *score_out (may be NULL) gets the score it was
 * remembered with.  RS_ERR_NOTFOUND if it is not pending (never
 * remembered, already resolved, dropped). */
rs_err_t rs_model_learn(rs_model_t *m, const rs_label_t *lb, float *score_out);

/* Learn as negatives the pending events with event time < watermark_ms -
 * label_horizon, oldest first (by insertion; an entry waits behind a newer
 * one inserted before it).  resolved (may be NULL) is called with each
 * one's remembered score and label 0.  Returns how many were resolved. */
int rs_model_advance(rs_model_t *m, int64_t watermark_ms,
                     void (*resolved)(void *opaque, float score, int label),
                     void *opaque);

/* Current version string, owned by m, valid until the next learn/advance. */
const char *rs_model_version(const rs_model_t *m);

typedef struct rs_model_stats_s {
    uint64_t updates;            /* gradient steps                          */
    uint64_t positives;
    uint64_t negatives;          /* incl. horizon negatives                 */
    uint64_t horizon_negatives;  /* learned by rs_model_advance             */
    uint64_t pending;            /* live entries in the pending buffer      */
    uint64_t dropped;            /* pushed out of a full pending buffer     */
    uint64_t unknown_labels;     /* rs_model_learn misses                   */
    char version[RS_VERSION_MAX];
} rs_model_stats_t;

void rs_model_stats(const rs_model_t *m, rs_model_stats_t *st);

/* Write the model (config, names, standardiser, weights, optimiser state,
 * counters) to `path` atomically: path.tmp, fsync, rename, fsync of the
 * directory.  RS_ERR_IO with errstr on failure (retriable). */
rs_err_t rs_model_save(const rs_model_t *m, const char *path, char *errstr,
                       size_t errstr_size);

/* Load a model saved by rs_model_save into *mp.  conf (may be NULL: use
 * the saved one) replaces the saved learning settings and buffer sizes;
 * the version string is kept from the file either way.  Errors:
 * RS_ERR_IO (cannot read), RS_ERR_CORRUPT (bad magic, unsupported format
 * version, truncated, checksum mismatch, inconsistent content) with a
 * message naming the file and the problem. */
rs_err_t rs_model_load(const char *path, const rs_model_conf_t *conf,
                       rs_model_t **mp, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_MODEL_H */
