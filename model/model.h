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
 * Kind "seq" (model/seq.c, docs/model.md) is the sparse-activated
 * sequence model: hashed embeddings of the categorical fields and the
 * counterparty, per-entity caches of the last L events' keys/values,
 * causal attention over them with a time-gap encoding, a top-k mixture of
 * experts and a sigmoid head; it learns from the same labels by replaying
 * the remembered forward pass.  Both kinds are served by one call path:
 * rs_model_forward() (input records with the event's context), then
 * rs_model_learn() / rs_model_advance().  The `model:` section picks the
 * kind (`kind: lr|seq`), the `seq:` section sizes the sequence model.
 *
 * Threads: one thread owns an rs_model_t and makes every call on it.
 * Weight snapshots (rs_model_weights_*) carry a trainer's weights to a
 * scoring model; their refcount is atomic.  OpenBLAS may use its own
 * threads; set OPENBLAS_NUM_THREADS=1 for the small batches of the scoring
 * path.
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

/* Kinds of model behind one rs_model_t. */
typedef enum rs_model_kind_e {
    RS_MODEL_LR = 0,        /* online logistic regression (baseline)        */
    RS_MODEL_SEQ = 1        /* sparse-activated sequence model (model/seq.c) */
} rs_model_kind_t;

/* The `seq:` config section: sizes and learning setup of the sequence
 * model (docs/model.md has the architecture with shapes). */
typedef struct rs_seq_conf_s {
    int64_t d_model;        /* width of the residual stream                */
    int64_t history;        /* L: past events cached per entity            */
    int64_t layers;         /* attention + MoE blocks                      */
    int64_t experts;        /* E: experts per MoE block                    */
    int64_t top_k;          /* k: experts run per event                    */
    int64_t expert_hidden;  /* hidden width of one expert FFN              */
    int64_t buckets;        /* rows of each hashed embedding table         */
    int64_t max_entities;   /* entity caches (LRU-evicted when full)       */
    int64_t pending_max;    /* scored events kept for replay (seq only)    */
    double learning_rate;   /* step size (seq only)                        */
    int optimizer;          /* 0 adam, 1 momentum                          */
    double balance;         /* load-balancing loss coefficient             */
    int64_t drift_window;   /* scores per PSI window                       */
    double drift_threshold; /* PSI above which all layers learn            */
    int drift_mode;         /* 0 auto, 1 all (always), 2 head (always)     */
    int64_t warmup_updates; /* updates with all layers before drift rules  */
    int64_t seed;           /* weight initialisation                       */
    int gemm;               /* 0 exact (batch-invariant kernel), 1 blas    */
} rs_seq_conf_t;

typedef struct rs_model_conf_s {
    int kind;               /* rs_model_kind_t ("lr" | "seq")              */
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
    rs_seq_conf_t seq;      /* kind "seq" only: the `seq:` section         */
} rs_model_conf_t;

/* Fill `conf` with the defaults of the field table. */
void rs_model_conf_init(rs_model_conf_t *conf);
/* The `model:` config section writing into `conf` (see
 * rs_features_conf_section for the ownership rule). */
void rs_model_conf_section(rs_conf_section_t *sec, rs_model_conf_t *conf);
const rs_conf_field_t *rs_model_conf_fields(int *nfields);
/* The `seq:` section writing into conf->seq (register it beside `model:`;
 * used only when model.kind is "seq"). */
void rs_seq_conf_section(rs_conf_section_t *sec, rs_model_conf_t *conf);
const rs_conf_field_t *rs_seq_conf_fields(int *nfields);

typedef struct rs_model_s rs_model_t;

/* New untrained model of kind conf->kind for `dim` features named
 * names[dim] (copied).  conf is copied.  NULL + errstr on bad arguments.
 * Destroy with rs_model_destroy().  Allocates everything up front: "lr":
 * weights 0 (score 0.5), pending_max * dim floats for the pending buffer;
 * "seq": weights from seq.seed, seq.max_entities entity caches and
 * seq.pending_max pending events (stats.mem_bytes says how much). */
rs_model_t *rs_model_new(const rs_model_conf_t *conf, int dim,
                         const char *const *names, char *errstr,
                         size_t errstr_size);
void rs_model_destroy(rs_model_t *m);   /* NULL is a no-op */

int rs_model_dim(const rs_model_t *m);
const char *rs_model_feature_name(const rs_model_t *m, int i); /* NULL if OOB */
const char *rs_model_kind(const rs_model_t *m);         /* "lr" | "seq"      */

/* RS_OK if the model was built for exactly these feature names (in order),
 * else RS_ERR_CONFIG naming the first difference. */
rs_err_t rs_model_check_names(const rs_model_t *m, int dim,
                              const char *const *names, char *errstr,
                              size_t errstr_size);

/* Kind "lr" only (RS_ERR_STATE for "seq": use rs_model_forward).
 * Score n rows: scores[n] in (0,1); contrib (may be NULL) gets
 * contrib[n][dim] = w_i * z_i, each feature's logit contribution.  Works
 * in chunks of batch_max rows with preallocated buffers: no allocation.
 * Non-finite inputs are treated as the feature's mean (z = 0).  Does not
 * change the model.  Returns RS_ERR_INVALID if n < 0. */
rs_err_t rs_model_score(rs_model_t *m, const float *x /* [n][dim] */, int n,
                        float *scores /* [n] */,
                        float *contrib /* [n][dim] or NULL */);

/* Kind "lr" only (RS_ERR_STATE for "seq": rs_model_forward remembers).
 * Keep x[dim] and its score until a label (or the horizon) resolves it,
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

/* ------------------------------------------------ one call path, any kind
 *
 * The sequence model needs per-event context the plain vector lacks (who,
 * when, with whom).  rs_model_forward() takes it for every kind: "lr" uses
 * only x; "seq" uses all of it.  The service calls rs_model_forward() (with
 * RS_MODEL_FWD_REMEMBER), then rs_model_learn() / rs_model_advance() as
 * before, whatever the kind. */

#define RS_MODEL_ID_MAX 32   /* ids kept in the entity caches, incl. NUL;
                              * longer ids are truncated in explanations */
#define RS_MODEL_ATTEND_MAX RS_MAX_ATTEND   /* attended events reported    */
#define RS_MODEL_EXPERTS_MAX RS_MAX_EXPERTS /* expert uses reported        */

typedef struct rs_model_input_s {
    const char *event_id;         /* key of the pending buffer              */
    const char *entity_id;        /* key of the entity cache ("seq")        */
    const char *counterparty_id;  /* "" or NULL if none                     */
    int64_t event_time_ms;
    float amount;
    const float *x;               /* [dim] window features                  */
    int n_cat;                    /* <= RS_MAX_CATEG                        */
    uint64_t cat_hash[RS_MAX_CATEG]; /* hash of (field name, value)         */
} rs_model_input_t;

/* Fill `in` from an event and its feature vector (pointers into ev and x:
 * they must outlive the forward call). */
void rs_model_input_from_event(rs_model_input_t *in, const rs_event_t *ev,
                               const float *x /* [dim] */);

typedef struct rs_model_attn_s {
    char event_id[RS_MODEL_ID_MAX];
    char counterparty_id[RS_MODEL_ID_MAX];
    int64_t event_time_ms;
    float amount;
    float weight;                 /* attention weight, mean over layers     */
} rs_model_attn_t;

typedef struct rs_model_expert_s {
    int expert;                   /* layer * experts + expert index         */
    float gate;                   /* renormalised gate weight               */
} rs_model_expert_t;

#define RS_MODEL_OUT_NEW_ENTITY 0x1u /* no cached history for the entity   */
#define RS_MODEL_OUT_EVICTED    0x2u /* another entity's cache was evicted */

typedef struct rs_model_output_s {
    float score;                  /* in (0,1)                               */
    const float *contrib;         /* [dim] row of the caller's contrib, or
                                   * NULL: d logit / d z_i * z_i ("seq":
                                   * gradient x input; "lr": w_i z_i)     */
    float self_weight;            /* attention on the event itself          */
    int n_attended;               /* past events, by weight descending      */
    rs_model_attn_t attended[RS_MODEL_ATTEND_MAX];
    int n_experts;                /* experts that ran, all layers           */
    rs_model_expert_t experts[RS_MODEL_EXPERTS_MAX];
    uint32_t flags;               /* RS_MODEL_OUT_*                         */
} rs_model_output_t;

#define RS_MODEL_FWD_REMEMBER 0x1u /* keep the replay material for learning */
#define RS_MODEL_FWD_EXPLAIN  0x2u /* attention/experts in out[] ("seq")   */

/* Score n events (micro-batched into GEMMs, chunks of batch_max) and fill
 * out[n].  contrib (may be NULL) gets [n][dim] feature contributions.
 * With RS_MODEL_FWD_REMEMBER each event is also remembered for learning
 * (as rs_model_remember with its score).  "seq": every event is appended to
 * its entity's cache (events of the same entity in one call see each other
 * in input order), so results are the same as n calls of one event.  No
 * allocation; deterministic for a given version, history and input.
 * RS_ERR_INVALID if n < 0 or an input lacks x (or, "seq", event/entity
 * id).  The owner thread only. */
rs_err_t rs_model_forward(rs_model_t *m, const rs_model_input_t *in, int n,
                          rs_model_output_t *out /* [n] */,
                          float *contrib /* [n][dim] or NULL */,
                          unsigned flags);

/* ------------------------------------------- weight snapshots ("seq" only)
 *
 * For the scoring/training split (docs/model.md): a trainer model takes an
 * immutable, refcounted copy of its weights (+ standardiser and version);
 * a scoring model of the same architecture scores with it from its next
 * rs_model_forward on.  The pointer hand-over between threads (e.g. an
 * atomic exchange in the service) is the caller's; the refcount is atomic,
 * so a snapshot may be released from any thread. */
typedef struct rs_model_weights_s rs_model_weights_t;

/* Copy of m's current weights, refcount 1.  NULL for kind "lr".  Cold path
 * (allocates ~4 * params bytes).  The thread that owns m. */
rs_model_weights_t *rs_model_weights_take(const rs_model_t *m);
/* +1 / -1 reference (NULL is a no-op); the last release frees.  Any
 * thread. */
void rs_model_weights_ref(rs_model_weights_t *w);
void rs_model_weights_release(rs_model_weights_t *w);
const char *rs_model_weights_version(const rs_model_weights_t *w);
/* Score m with w (m keeps a reference; NULL: back to m's own weights).
 * Learning still updates m's own weights.  rs_model_version() names w's
 * version while it is used.  RS_ERR_INVALID if w is of another
 * architecture, RS_ERR_STATE for kind "lr".  The thread that owns m. */
rs_err_t rs_model_weights_use(rs_model_t *m, rs_model_weights_t *w);

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
    /* kind "seq" only (0 for "lr") */
    uint64_t entities;           /* live entity caches                      */
    uint64_t evictions;          /* entity caches evicted (LRU)             */
    double drift_psi;            /* PSI of the last score window vs the one
                                  * before                                  */
    int drift_high;              /* 1: all layers learn, 0: head + gate     */
    uint64_t mem_bytes;          /* preallocated state                      */
    uint64_t entity_bytes;       /* per entity cache                        */
    uint64_t pending_bytes;      /* per pending event                       */
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
