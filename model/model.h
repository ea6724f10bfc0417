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
 * Learning: rs_model_forward() writes, per scored event, a LEARNING RECORD
 * (its inputs and, for "seq", a reference to the entity's previous record)
 * into the caller's buffer; the caller appends it to the learning log of
 * its input partition (model/learnlog.h) and the learner (model/learner.h)
 * joins labels to records, learns unlabelled events as negatives at
 * maturity and calls rs_model_learn_lrec(): one Adam step on the
 * class-weighted logistic loss with L2 and gradient-norm clipping.
 *
 * Versions: "lr-<8 hex of the config hash>-<n>", n = updates /
 * publish_every until rs_model_set_version() names it (the trainer, on
 * publish; the model store keeps published versions as files).  rs_model_save() writes an atomic, checksummed file;
 * rs_model_load() restores a model that scores bit-identically.
 *
 * Kind "seq" (model/seq.c, docs/model.md) is the sparse-activated
 * sequence model: hashed embeddings of the categorical fields and the
 * counterparty, per-entity caches of the last L events' keys/values,
 * causal attention over them with a time-gap encoding, a top-k mixture of
 * experts and a sigmoid head; it learns from the same labels by replaying
 * the forward pass from the learning record, its history rebuilt from the
 * entity's earlier records at the current weights.  Both kinds are served
 * by one call path: rs_model_forward() (input records with the event's
 * context), then rs_model_learn_lrec().  The `model:` section picks the
 * kind (`kind: lr|seq`), the `seq:` section sizes the sequence model.
 * Its entity caches can be carried across a restart
 * (rs_model_caches_*: a codec, the service keeps the bytes).
 * The forward can also write each event's input log (what it read, for
 * rs_model_rescore to recompute the score bit for bit with the same
 * version: the audit) and run as a what-if (RS_MODEL_FWD_DRY: nothing
 * changes; skip_hist leaves one cached event out).
 *
 * Threads: one thread owns an rs_model_t and makes every call on it.
 * model/shard.h runs the per-entity part of a forward on a pool's threads
 * inside the owner's call (rs_model_shard_forward: the same results bit
 * for bit; each entity's cache read and written by one thread).
 * Scoring/training split: a scoring model writes learning records, a
 * trainer model of the same architecture on another thread learns them
 * (rs_model_learn_lrec, from the log); weight snapshots (rs_model_weights_*) carry the
 * trainer's weights back to the scoring model; their refcount is atomic.  OpenBLAS may use its own
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
#define RS_MODEL_PATH_MAX 512  /* model.store_dir incl. NUL */

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
    int64_t label_delay;    /* ms: the declared label delay (0 = not
                             * declared: observed from the labels)       */
    int64_t label_horizon;  /* ms: unlabelled after this -> negative;
                             * RS_MODEL_HORIZON_AUTO: follows the delay   */
    int64_t label_horizon_max; /* ms: upper bound of the auto horizon     */
    int64_t log_keep;       /* ms: learning log kept beyond the horizon
                             * (history references of later events)      */
    int64_t log_segment;    /* bytes per learning-log segment file        */
    int64_t publish_every;  /* updates per version step                    */
    /* the scoring/training split (docs/model.md; read by the service) */
    int64_t publish_interval_ms; /* ms: a new version at least this often
                                  * when anything was learned            */
    int64_t keep_versions;  /* versions kept in the model store            */
    char store_dir[RS_MODEL_PATH_MAX]; /* model store directory, "" = none */
    int64_t train_queue;    /* learning records queued to the trainer      */
    int64_t batch_max;      /* rows per scoring GEMV                       */
    double base_rate;       /* prior positive rate: the untrained model's
                             * score, so a cold start approves           */
    int transform;          /* 0 none, 1 symlog (model_int.h "the
                             * standardiser"); saved with the model      */
    int64_t std_window;     /* ms of event time the standardiser's
                             * statistics follow; 0 = all history       */
    int64_t replay;         /* replay steps per new learning step      */
    int64_t average;        /* ms of event time the published weights
                             * average the learned ones over; 0 = the
                             * learned weights themselves               */
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

#define RS_MODEL_HORIZON_AUTO (-1) /* model.label_horizon: auto */

/* New untrained model of kind conf->kind for `dim` features named
 * names[dim] (copied).  conf is copied.  NULL + errstr on bad arguments.
 * Destroy with rs_model_destroy().  Allocates everything up front: "lr":
 * weights 0 (score base_rate); "seq": weights from seq.seed and
 * seq.max_entities entity caches (stats.mem_bytes says how much; the
 * pages are touched only when used). */
rs_model_t *rs_model_new(const rs_model_conf_t *conf, int dim,
                         const char *const *names, char *errstr,
                         size_t errstr_size);
void rs_model_destroy(rs_model_t *m);   /* NULL is a no-op */

/* Memory a scorer built by rs_model_new(conf, dim) preallocates that
 * grows with a configuration key, without allocating: items[0..n) name
 * the keys that size it ("seq": seq.max_entities; "lr": none -- the
 * learning log is on disk, the trainer's queue is the caller's to count).
 * Returns n (max >= 1).  A model
 * loaded from a file has the file's architecture: the estimate uses
 * conf's.  @locality any thread */
int rs_model_conf_mem(const rs_model_conf_t *conf, int dim,
                      rs_mem_item_t *items, int max);

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

/* ------------------------------------------------ one call path, any kind
 *
 * The sequence model needs per-event context the plain vector lacks (who,
 * when, with whom).  rs_model_forward() takes it for every kind: "lr" uses
 * only x; "seq" uses all of it. */

#define RS_MODEL_ID_MAX 32   /* ids kept in the entity caches, incl. NUL;
                              * longer ids are truncated in explanations */
#define RS_MODEL_ATTEND_MAX RS_MAX_ATTEND   /* attended events reported    */
#define RS_MODEL_EXPERTS_MAX RS_MAX_EXPERTS /* expert uses reported        */

typedef struct rs_model_input_s {
    const char *event_id;         /* key of the learning record             */
    const char *entity_id;        /* key of the entity cache ("seq")        */
    const char *counterparty_id;  /* "" or NULL if none                     */
    int64_t event_time_ms;
    float amount;
    const float *x;               /* [dim] window features                  */
    int n_cat;                    /* <= RS_MAX_CATEG                        */
    uint64_t cat_hash[RS_MAX_CATEG]; /* hash of (field name, value)         */
    void *log;                    /* NULL, or where rs_model_forward writes
                                   * the exact scoring inputs of this event
                                   * (caller's buffer, log_cap >=
                                   * rs_model_log_max(m); see "input logs") */
    size_t log_cap;
    int skip_hist;                /* "seq", with RS_MODEL_FWD_DRY only: 1 +
                                   * recency rank of the cached history
                                   * event to leave out (0 = none; a rank
                                   * past the history leaves nothing out)  */
    void *lrec;                   /* RS_MODEL_FWD_REMEMBER: where the
                                   * learning record of this event goes
                                   * (caller's, rs_model_lrec_size bytes)  */
    uint64_t lpos;                /* its position in the learning logs,
                                   * RS_LPOS(partition, record): "seq"
                                   * keeps it with the entity's history, so
                                   * the next record can refer to it       */
    double explain_min;           /* explain this event (RS_MODEL_FWD_EXPLAIN
                                   * outputs, its contrib row) only if its
                                   * score >= explain_min; <= 0: always.
                                   * Below it the event is output as without
                                   * EXPLAIN and contrib (contrib NULL,
                                   * n_attended, n_experts, self_weight 0;
                                   * its contrib row is not written) and
                                   * "seq" skips its explanation backward;
                                   * score, log, learning record and caches
                                   * are the same either way                */
    double log_min;               /* write the input log (`log`) only if the
                                   * score >= log_min (the same comparison
                                   * as explain_min); <= 0: always.  Below
                                   * it log_len is 0 and `log` untouched:
                                   * the service keeps only flagged events'
                                   * logs (service.log_inputs: flagged), so
                                   * it passes its lowest flagging
                                   * threshold and skips ~9 KB of copying
                                   * per approved "seq" event               */
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
    int rank;                     /* recency rank in the entity's cache, 0 =
                                   * newest (skip_hist = rank + 1 leaves it
                                   * out)                                   */
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
    int n_hist;                   /* "seq": cached past events attended
                                   * over (after skip_hist); valid ranks
                                   * are 0 .. n_hist - 1                    */
    int n_attended;               /* past events, by weight descending      */
    rs_model_attn_t attended[RS_MODEL_ATTEND_MAX];
    int n_experts;                /* experts that ran, all layers           */
    rs_model_expert_t experts[RS_MODEL_EXPERTS_MAX];
    uint32_t flags;               /* RS_MODEL_OUT_*                         */
    size_t log_len;               /* bytes written to in.log (0 if none)    */
} rs_model_output_t;

#define RS_MODEL_FWD_REMEMBER 0x1u /* write learning records (in.lrec)    */
#define RS_MODEL_FWD_EXPLAIN  0x2u /* attention/experts in out[] ("seq")   */
#define RS_MODEL_FWD_DRY      0x4u /* score without touching state: no cache
                                    * append, no remember, no drift, no LRU
                                    * move or entity creation: what-if     */

/* Score n events (micro-batched into GEMMs, chunks of batch_max) and fill
 * out[n].  contrib (may be NULL) gets [n][dim] feature contributions
 * (rows of the events explained: in[i].explain_min).
 * With RS_MODEL_FWD_REMEMBER each event's learning record is written to
 * in[i].lrec (sealed; see "learning records").  "seq": every event is appended to
 * its entity's cache (events of the same entity in one call see each other
 * in input order), so results are the same as n calls of one event.  No
 * allocation; deterministic for a given version, history and input.
 * With RS_MODEL_FWD_DRY (what-if) nothing of m changes: REMEMBER is
 * ignored, every event sees the caches as they were before the call, an
 * unknown entity scores with an empty history; in[i].skip_hist may leave
 * one cached event out.  in[i].log (if set) gets the event's input log,
 * out[i].log_len its length.  RS_ERR_INVALID if n < 0, an input lacks x
 * (or, "seq", event/entity id), skip_hist < 0, skip_hist without DRY, or
 * log_cap < rs_model_log_max(m), or REMEMBER without lrec; nothing is
 * scored then.  The owner thread
 * only. */
rs_err_t rs_model_forward(rs_model_t *m, const rs_model_input_t *in, int n,
                          rs_model_output_t *out /* [n] */,
                          float *contrib /* [n][dim] or NULL */,
                          unsigned flags);

/* --------------------------------------------- input logs and rescoring
 *
 * An input log is everything one forward read for one event, so the score
 * can be recomputed later (audit) with the version that made it: raw x
 * (not standardised: the standardiser is the version's), and for "seq" the
 * time, counterparty and categorical hashes and the cached history exactly
 * as used (times and per-layer keys/values, oldest first).  Little-endian,
 * written into the caller's buffer (no allocation):
 *   "RSIN" | u8 format 1 | u8 kind (0 lr, 1 seq) | u16 flags (bit 0: seq
 *   gemm blas) | u32 architecture hash | u32 feature-names hash | u32 dim |
 *   u32 body length | body | u32 low 32 bits of rs_hash64 (xxHash3) of
 *   all before it
 * body "lr": f32 x[dim].  body "seq": u32 d_model, history, layers,
 *   experts, top_k, expert_hidden, buckets | i64 event time | u64
 *   counterparty hash (0 none) | u32 n_cat | u32 n_hist | u64 cat[n_cat] |
 *   f32 x[dim] | n_hist x (i64 time | f32 k, v [layers][2][d_model]).
 * docs/model.md ("Input logs, rescoring and what-if scoring") has sizes. */

/* Bytes an input log of m may need (fixed per architecture: 8 724 B at
 * the `seq:` defaults with dim 17, 4 * dim + 28 for "lr"). */
size_t rs_model_log_max(const rs_model_t *m);

/* Recompute the score of a logged input with model m (the recorded
 * version: from the model store, or any model of the same architecture
 * for a what-if).  m's weights (or the snapshot it uses) and standardiser,
 * the log's inputs; nothing of m changes.  Bit-identical to the original
 * score when m has the same weights (for "seq" with seq.gemm exact, the
 * default; "blas" only for events scored alone).  RS_ERR_CORRUPT for a
 * malformed log (magic, format, length, checksum, counts), RS_ERR_INVALID
 * for a log of another kind, feature set or architecture (errstr says
 * which).  Cold path, no allocation; the thread that owns m. */
rs_err_t rs_model_rescore(rs_model_t *m, const void *log, size_t len,
                          float *score, char *errstr, size_t errstr_size);

/* ------------------------------------------------------ weight snapshots
 *
 * For the scoring/training split (docs/model.md): a trainer model takes an
 * immutable, refcounted copy of its weights (+ standardiser and version);
 * a scoring model of the same architecture scores with it from its next
 * rs_model_forward on.  The pointer hand-over between threads (e.g. an
 * atomic exchange in the service) is the caller's; the refcount is atomic,
 * so a snapshot may be released from any thread.  Both kinds ("lr": the
 * float weights, bias and standardiser). */
typedef struct rs_model_weights_s rs_model_weights_t;

/* Copy of m's own current weights (not of a snapshot m uses) -- with
 * model.average, their running average (model_int.h) --, refcount 1;
 * the caller owns that reference.  Cold path (allocates ~4 * params
 * bytes).  The thread that owns m. */
rs_model_weights_t *rs_model_weights_take(const rs_model_t *m);
/* +1 / -1 reference (NULL is a no-op); the last release frees.  Any
 * thread. */
void rs_model_weights_ref(rs_model_weights_t *w);
void rs_model_weights_release(rs_model_weights_t *w);
const char *rs_model_weights_version(const rs_model_weights_t *w);
/* Score m with w (m keeps a reference of its own; NULL: back to m's own
 * weights).  Learning still updates m's own weights.  rs_model_version()
 * and rs_model_version_number() name w's version while it is used.
 * RS_ERR_INVALID if w is of another kind or architecture (m unchanged).
 * The thread that owns m. */
rs_err_t rs_model_weights_use(rs_model_t *m, rs_model_weights_t *w);

/* Current version string, owned by m, valid until the next learn/advance. */
const char *rs_model_version(const rs_model_t *m);

/* ---------------------------------------------------------- versions
 *
 * A version is "<kind>-<8 hex of the config hash>-<n>".  Until a number is
 * set, n = updates / publish_every (offline training, `riskstream train`).
 * In the service the trainer names versions on publish: n from the model
 * store (rs_model_store_next), monotonic.  Once set, learning no longer
 * changes n; the number and that it was set are saved with the model. */

/* Name m's own weights version n (n < 2^63).  The thread that owns m. */
void rs_model_set_version(rs_model_t *m, uint64_t n);
/* n of rs_model_version(m) (of the snapshot m scores with, if any): 0 for
 * an untrained model whose number was never set. */
uint64_t rs_model_version_number(const rs_model_t *m);

/* Version tags: with several instances learning one model
 * (scoring/modelsync.h, docs/model.md "One model across instances") a
 * version is "<kind>-<8 hex>-<n>.<tag>": the tag names the instance that
 * learned it, or says that it is a combination ("avg<k>-<8 hex>").  A tag
 * is 1 to RS_MODEL_TAG_MAX characters of [a-z0-9-], not starting with
 * '-'.  It is part of the NAME only (the model store's file name, the
 * snapshots, the scores), not of the saved file: rs_model_store_load sets
 * it from the name it loads.  Set m's own version tag ("" / NULL: none;
 * kept across rs_model_set_version).  RS_ERR_INVALID for a bad tag (m
 * unchanged).  The thread that owns m. */
#define RS_MODEL_TAG_MAX 16
rs_err_t rs_model_set_version_tag(rs_model_t *m, const char *tag);
/* 1 if tag[0..len) is a valid tag.  Pure. */
int rs_model_version_tag_valid(const char *tag, size_t len);
/* 1 if v is a version name "<kind>-<8 hex>-<n>[.<tag>]" shorter than
 * RS_VERSION_MAX; *num (may be NULL) gets n, *base (may be NULL) the
 * length before the tag (strlen(v) without one).  Pure. */
int rs_model_version_parse(const char *v, uint64_t *num, size_t *base);

/* A new untrained model of the same kind, architecture and feature names
 * as m (to be a scorer fed with m's snapshots, or m's trainer).  conf (may
 * be NULL: m's own) gives the learning settings and buffer sizes; its kind
 * and, for "seq", the architecture fields of `seq:` (d_model, history,
 * layers, experts, top_k, expert_hidden, buckets) and seed are m's
 * whatever conf says.  NULL + errstr on a bad conf.  The caller destroys
 * it; m is only read (its owner thread). */
rs_model_t *rs_model_new_like(const rs_model_t *m, const rs_model_conf_t *conf,
                              char *errstr, size_t errstr_size);

/* --------------------------------------------------- learning records
 *
 * A learning record (model/learnlog.h: rs_lrec_hdr_t, then the kind's
 * body) is what rs_model_learn_lrec needs to learn an event later, on any
 * model of the same kind, architecture and feature layout (the trainer):
 *   "lr"  f32 x[dim]
 *   "seq" f32 gap input | u8 n_cat, 3 pad | u64 counterparty hash (0 none)
 *         | u64 cat[RS_MAX_CATEG] (unused 0) | f32 x[dim]
 * plus, in the header, event/entity id hashes, event time, the score and,
 * for "seq", hist (history length as scored) and prev (the record of the
 * entity's newest cached event).  No activations: the history's inputs to
 * attention are recomputed from the earlier records at the learning
 * model's current weights (gradients reach the keys/values through the
 * past events; the past inputs themselves are constants, as in
 * Transformer-XL's memory).  Little-endian, checksummed (rs_lrec_seal).
 * Sizes: "lr" 48 + 4 dim, "seq" 192 + 4 dim, rounded up to 8. */

size_t rs_model_lrec_size(const rs_model_t *m);
/* Observe record `rec` of m's kind (any thread's; only read): the
 * standardiser's running statistics take in its raw inputs (model_int.h
 * "the standardiser").  The learner calls it for every record, in log
 * order, as it reads the log, before learning anything from it.  Ignores a
 * record of another kind.  The thread that owns m. */
void rs_model_observe(rs_model_t *m, const void *rec);

/* The raw features x[dim] of record `rec` of m's kind, copied out (the
 * remaining-useful-life head learns from them, rul.h).  RS_ERR_INVALID for
 * a record of another kind.  Pure. */
rs_err_t rs_model_lrec_x(const rs_model_t *m, const void *rec, float *x);

/* The metadata of m's records, for rs_learnlog_open. */
struct rs_learnlog_meta_s;
void rs_model_lrec_meta(const rs_model_t *m, struct rs_learnlog_meta_s *meta);

/* How rs_model_learn_lrec learns a record. */
typedef enum rs_model_learn_e {
    RS_MODEL_LEARN_LABEL = 0,    /* an explicit label, y as given          */
    RS_MODEL_LEARN_MATURED = 1,  /* no label by maturity: a negative       */
    RS_MODEL_LEARN_CORRECT = 2,  /* a positive for an event learned as a
                                  * maturity negative: one step on the
                                  * positive's loss minus the negative's   */
    RS_MODEL_LEARN_REPLAY = 3    /* an already learned record again (y as
                                  * given; counted as a replay)            */
} rs_model_learn_t;

/* One learning step of m from record `rec` (rs_model_lrec_size(m) bytes)
 * and, "seq", the records of its history hist[0..nh) oldest first (nh <=
 * the record's hist; fewer if older ones were deleted by retention: the
 * history then starts later).  y: 1 positive, 0 negative (CORRECT: 1).
 * psi: the scorer's drift (the trainer learns all layers or head + gates
 * from it, as the scorer would from its own); < 0: m's own.  Updates the standardiser,
 * optimiser, counters (positives / negatives / matured / corrections) and
 * the version number unless set.  RS_ERR_INVALID: NULL, a record of
 * another kind, or a history record of another entity or a later time;
 * RS_ERR_CORRUPT: a bad checksum or content (m unchanged).  No allocation.
 * The thread that owns m (records may come from any thread). */
rs_err_t rs_model_learn_lrec(rs_model_t *m, const void *rec,
                             const void *const *hist, int nh, int y,
                             rs_model_learn_t how, double psi);

typedef struct rs_model_stats_s {
    uint64_t updates;            /* gradient steps                          */
    uint64_t positives;
    uint64_t negatives;          /* incl. horizon negatives                 */
    uint64_t horizon_negatives;  /* learned at maturity (no label)          */
    uint64_t corrections;        /* positives after a maturity negative     */
    uint64_t replays;            /* replay steps (model.replay)             */
    uint64_t observations;       /* records the standardiser observed       */
    char version[RS_VERSION_MAX];
    /* kind "seq" only (0 for "lr") */
    uint64_t entities;           /* live entity caches                      */
    uint64_t evictions;          /* entity caches evicted (LRU)             */
    double drift_psi;            /* PSI of the last score window vs the one
                                  * before (a trainer: the scorer's, from
                                  * the latest learning record)            */
    int drift_high;              /* 1: all layers learn, 0: head + gate     */
    uint64_t mem_bytes;          /* preallocated state                      */
    uint64_t entity_bytes;       /* per entity cache                        */
    uint64_t pending_bytes;      /* per pending event                       */
} rs_model_stats_t;

void rs_model_stats(const rs_model_t *m, rs_model_stats_t *st);

/* ------------------------------------------- entity caches across restarts
 *
 * The "seq" entity caches (per entity its last L events: times, k/v per
 * layer, layer inputs, explanation meta; the LRU order) serialised into a
 * caller's buffer, so the service can put them into its final checkpoint
 * at a graceful shutdown and read them back at start: after write + read
 * into a model of the same architecture using the same weights, every
 * next event scores, explains, remembers (learning records) and evicts bit
 * for bit as it would have on the writer (tested).  Codec only: no I/O, no
 * allocation on write.  Little-endian (docs/model.md, "Entity caches
 * across restarts"):
 *   "RSEC" | u32 format 1 | u32 architecture hash (that of learning
 *   records) | u32 dim | u32 d_model, history, layers, experts, top_k,
 *   expert_hidden, buckets | u32 entity count | per entity, least recently
 *   used first: u64 key (hash of the entity id) | u32 n | i64 t[n] |
 *   f32 kv[n][layers][2][d_model] | f32 xin[n][layers][d_model] |
 *   n x (f32 amount | u8 len, event id | u8 len, counterparty id) (the n
 *   cached events oldest first) | u64 xxHash3 (rs_hash64) of all before it
 * Kind "lr" has no caches: size 0, write/read of 0 bytes are no-ops. */

/* Bytes rs_model_caches_write needs now (live entities only; "lr": 0).
 * "seq": 56 + per entity 12 + n (8 + 12 layers d_model + 6 + id lengths):
 * 12 748 B + ids for an entity with a full history at the `seq:` defaults.
 * Walks the entities (cold path).  The thread that owns m. */
size_t rs_model_caches_size(const rs_model_t *m);

/* Write m's caches into buf[cap]; *len gets the bytes written.
 * RS_ERR_TOOBIG if cap < rs_model_caches_size(m) (*len gets that size,
 * nothing is written); RS_ERR_INVALID for a NULL len, or a NULL buf with a
 * cap.  "lr": RS_OK, *len = 0.  m is only read; no allocation.  The thread
 * that owns m. */
rs_err_t rs_model_caches_write(const rs_model_t *m, void *buf, size_t cap,
                               size_t *len);

/* Replace m's caches with those of buf[len] (written by a model of the
 * same architecture: kind, dim and the `seq:` sizes; the weights are the
 * caller's business, as for snapshots).  The entities are re-inserted in
 * LRU order; if there are more than m's seq.max_entities, the most
 * recently used are kept and the rest counted in stats.evictions.  m's
 * pending buffer, weights and counters are not touched.
 * Errors (errstr says what): RS_ERR_CORRUPT for a malformed buffer
 * (magic, format, truncation, checksum, counts, lengths, a non-finite
 * key/value/layer input, an entity twice); RS_ERR_INVALID for caches of
 * another architecture (naming the first difference, e.g. "seq.history is
 * 16 in the caches, 4 in this model"), of a "seq" model read by an "lr"
 * one, or a NULL buf with a len.  On any error m is unchanged (everything
 * is checked before anything is replaced).  "lr": len 0 is RS_OK (no-op).
 * Cold path: allocates a temporary key array; the thread that owns m. */
rs_err_t rs_model_caches_read(rs_model_t *m, const void *buf, size_t len,
                              char *errstr, size_t errstr_size);

/* Partition-local entity caches (scale-out: state follows its input
 * partition).  An entity's partition is that of the learning record of
 * its newest cached event (RS_LPOS_PART); its key is rs_hash_str of the
 * entity id.  `sel` picks entities by key and partition (NULL: all).
 * size/write: the rs_model_caches_write format with only the picked
 * entities.  merge: each entity of a buffer replaces the cache of its key
 * (or takes a free or the least recently used slot), LRU front in buffer
 * order; checked whole first (errors as rs_model_caches_read, m unchanged
 * on error); *n gets the entities merged.  drop: forget the picked ones,
 * returns how many.  "lr": no caches (size 0, merge of 0 bytes, drop 0).
 * The thread that owns m. */
typedef int rs_model_cache_sel_cb(void *opaque, uint64_t key,
                                  int32_t partition);
size_t rs_model_caches_size_sel(const rs_model_t *m,
                                rs_model_cache_sel_cb *sel, void *opaque);
rs_err_t rs_model_caches_write_sel(const rs_model_t *m,
                                   rs_model_cache_sel_cb *sel, void *opaque,
                                   void *buf, size_t cap, size_t *len);
rs_err_t rs_model_caches_merge(rs_model_t *m, const void *buf, size_t len,
                               uint64_t *n, char *errstr, size_t errstr_size);
uint64_t rs_model_caches_drop(rs_model_t *m, rs_model_cache_sel_cb *sel,
                              void *opaque);
/* Changelog support (issue 13): remember the entity caches the LRU evicts
 * while scoring, at most `cap` between two takes (0: stop); take returns
 * how many, *keys (rs_hash_str of the entity id) and *parts (owned by m,
 * valid until the next forward) and *lost (may be NULL) those beyond cap.
 * drop_key forgets the cache of `key` if its newest event is of
 * `partition` (a changelog tombstone); 1 if there was one.  "lr": nothing
 * to track (take returns 0).  The thread that owns m. */
void rs_model_caches_track_gone(rs_model_t *m, uint32_t cap);
int rs_model_caches_gone_take(rs_model_t *m, const uint64_t **keys,
                              const int32_t **parts, uint64_t *lost);
int rs_model_caches_drop_key(rs_model_t *m, int32_t partition, uint64_t key);
/* The cache of entity `entity_id` alone in the same format (a changelog
 * record): RS_ERR_NOTFOUND if it has none ("lr": always), RS_ERR_TOOBIG
 * with *len the size. */
rs_err_t rs_model_caches_write_entity(const rs_model_t *m,
                                      const char *entity_id, void *buf,
                                      size_t cap, size_t *len);

/* Write the model (config, names, standardiser, weights, optimiser state,
 * counters) to `path` atomically: path.tmp, fsync, rename, fsync of the
 * directory.  RS_ERR_IO with errstr on failure (retriable). */
rs_err_t rs_model_save(const rs_model_t *m, const char *path, char *errstr,
                       size_t errstr_size);

/* The bytes rs_model_save writes, into a new buffer (*buf, *len; the
 * caller frees *buf with rs_free()).  Cold path.  The thread that owns m. */
rs_err_t rs_model_save_mem(const rs_model_t *m, uint8_t **buf, size_t *len);
/* rs_model_load from bytes in memory (e.g. a message): the same checks
 * and errors; `what` names the source in messages (NULL: "(buffer)").
 * buf is only read.  Any thread (the new model is the caller's). */
rs_err_t rs_model_load_mem(const void *buf, size_t len, const char *what,
                           const rs_model_conf_t *conf, rs_model_t **mp,
                           char *errstr, size_t errstr_size);

/* Load a model saved by rs_model_save into *mp.  conf (may be NULL: use
 * the saved one) replaces the saved learning settings and buffer sizes;
 * the version string is kept from the file either way.  What the file
 * declares (dimension, architecture, settings) is checked against the
 * config tables' ranges and against the bytes it holds before anything is
 * sized by it, and every loaded value (standardiser, weights, optimiser
 * state) must be finite and in range (a damaged file is refused, not
 * scored as NaN).  With conf NULL the file's buffer sizes are used (within
 * the tables' ranges, up to what the configuration allows): pass a conf
 * for files from elsewhere.  Errors: RS_ERR_IO (cannot read),
 * RS_ERR_CORRUPT (bad magic, unsupported format version, truncated,
 * checksum mismatch, inconsistent content, out-of-range settings or
 * values) with a message naming the file and the problem, RS_ERR_CONFIG
 * (conf itself is invalid). */
rs_err_t rs_model_load(const char *path, const rs_model_conf_t *conf,
                       rs_model_t **mp, char *errstr, size_t errstr_size);

/* -------------------------------------------------------- model store
 *
 * A directory of published versions, <dir>/<version>.rsm (rs_model_save
 * files), so a score's recorded version can be loaded again (audit
 * --rescore, rollback).  The newest `keep` version numbers are kept; a
 * put prunes the oldest numbers beyond that.  Files whose names are not
 * versions are ignored; leftover "<version>.rsm.tmp" of a crashed save are
 * removed by the next put.  One writing process per directory; any number
 * of readers (only put writes; a save is atomic: a reader sees no file or
 * a whole one).  The
 * calls on one rs_model_store_t are serialised by a mutex: any thread. */
typedef struct rs_model_store_s rs_model_store_t;

typedef struct rs_model_store_entry_s {
    char version[RS_VERSION_MAX];
    uint64_t number;          /* version number                          */
    int64_t saved_at_ms;      /* wall clock of the save (file mtime)     */
    uint64_t updates;         /* training updates of the saved model     */
    uint64_t bytes;           /* file size                               */
} rs_model_store_entry_t;

/* Open (create if missing, parents too) directory `dir` keeping the newest
 * `keep` (>= 1) versions.  NULL + errstr if dir is empty, keep < 1, or the
 * directory cannot be created or written.  Close with
 * rs_model_store_close (NULL is a no-op). */
rs_model_store_t *rs_model_store_open(const char *dir, int keep,
                                      char *errstr, size_t errstr_size);
void rs_model_store_close(rs_model_store_t *st);

/* Next version number: 1 + the highest number in the directory (or 1),
 * never below one this store has seen or saved (a file deleted by hand
 * does not give its number again). */
uint64_t rs_model_store_next(rs_model_store_t *st);

/* Save m's own weights as <dir>/<version>.rsm (version as in rs_model_stats:
 * not that of a snapshot m uses; atomic, via rs_model_save; an existing
 * file of that version is replaced) and prune to `keep` (oldest numbers
 * first; never the version just saved).  RS_ERR_IO + errstr if the save
 * fails (a failed prune is only logged).  Thread: any, one caller at a
 * time (the owner thread of m). */
rs_err_t rs_model_store_put(rs_model_store_t *st, const rs_model_t *m,
                            char *errstr, size_t errstr_size);

/* The stored versions, newest (highest number) first, into out[0..max);
 * returns how many were written.  Reads the head of each file for its
 * update count (a file too damaged for that is listed with 0). */
int rs_model_store_list(rs_model_store_t *st, rs_model_store_entry_t *out,
                        int max);

/* Load one version into *mp (conf as rs_model_load: may be NULL).
 * RS_ERR_INVALID for a malformed version string (not
 * "<kind>-<8 hex>-<n>": no '/', no '..'); RS_ERR_NOTFOUND if it is not in
 * the store (never saved or pruned); else the errors of rs_model_load, and
 * RS_ERR_CORRUPT if the file holds another version than its name.  The
 * caller destroys *mp. */
rs_err_t rs_model_store_load(rs_model_store_t *st, const char *version,
                             const rs_model_conf_t *conf, rs_model_t **mp,
                             char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* RS_MODEL_H */
