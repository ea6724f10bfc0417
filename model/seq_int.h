/* seq_int.h -- internals of the sequence model (model/seq.c) shared with
 * model.c (which wraps it behind rs_model_t) and its unit tests only.
 * Nothing outside model/ and tests/model includes it. */
#ifndef RS_SEQ_INT_H
#define RS_SEQ_INT_H

#include "model/model_int.h"

typedef struct rs_seq_s rs_seq_t;
typedef struct rs_model_weights_s rs_seq_weights_t;

/* An immutable copy of the weights (model.h "weight snapshots"), either
 * kind: "seq" p = the flat parameter vector [np]; "lr" p = [w32[dim],
 * b32] (np = dim + 1).  Made by rs_seq_weights_take / model.c, freed by
 * rs_seq_weights_release. */
struct rs_model_weights_s {
    _Atomic int refs;
    int kind;             /* rs_model_kind_t                              */
    size_t np;
    int dim;
    uint32_t arch;        /* hash of the architecture: who may use it     */
    uint64_t vnum;        /* version number                               */
    char version[RS_VERSION_MAX];
    float *p;             /* [np]                                         */
    float *mu, *istd;     /* [dim]                                        */
};

/* Fill conf->seq with the defaults of the `seq:` field table. */
void rs_seq_conf_init(rs_seq_conf_t *sc);
/* Range checks of the `seq:` table plus cross-field rules (top_k <=
 * experts, max_entities > batch_max). */
rs_err_t rs_seq_check_conf(const rs_model_conf_t *conf, char *errstr,
                           size_t errstr_size);

/* New model with weights drawn from conf->seq.seed.  names_hash is folded
 * into the version string (lineage).  NULL + errstr on a bad config. */
rs_seq_t *rs_seq_new(const rs_model_conf_t *conf, int dim, uint32_t names_hash,
                     char *errstr, size_t errstr_size);
void rs_seq_destroy(rs_seq_t *s);

rs_err_t rs_seq_forward(rs_seq_t *s, const rs_model_input_t *in, int n,
                        rs_model_output_t *out, float *contrib, unsigned flags);
const char *rs_seq_version(const rs_seq_t *s);

rs_seq_weights_t *rs_seq_weights_take(const rs_seq_t *s);
void rs_seq_weights_ref(rs_seq_weights_t *w);
void rs_seq_weights_release(rs_seq_weights_t *w);
const char *rs_seq_weights_version(const rs_seq_weights_t *w);
rs_err_t rs_seq_weights_use(rs_seq_t *s, rs_seq_weights_t *w);
void rs_seq_stats(const rs_seq_t *s, rs_model_stats_t *st);

/* Input logs (model.h "input logs and rescoring"): the largest log and the
 * rescore of a "seq" body (common header checked by model.c; flags from
 * it). */
size_t rs_seq_log_max(const rs_seq_t *s);
rs_err_t rs_seq_rescore(rs_seq_t *s, const uint8_t *body, size_t body_len,
                        unsigned log_flags, uint32_t log_arch, float *score,
                        char *errstr, size_t errstr_size);

/* Save/load of everything after the common envelope, kind and names (see
 * the layout comment in seq.c).  Load: arch from the file; conf (may be
 * NULL: the file's) overrides learning settings and buffer sizes.  The
 * file's settings must be in the config tables' ranges and the rest of rb
 * must be exactly the parameters and state its architecture needs, both
 * checked before anything is allocated; every loaded value must be in
 * range (seq.c).  fmt: the file's format (model_file.c; 1 has no weight
 * average).  RS_OK and *out, or RS_ERR_CORRUPT (the file) /
 * RS_ERR_CONFIG (conf) with errstr. */
void rs_seq_serialize(const rs_seq_t *s, rs_wbuf_t *b);
rs_err_t rs_seq_deserialize(rs_rbuf_t *rb, int fmt, const rs_model_conf_t *conf,
                            int dim, uint32_t names_hash, rs_seq_t **out,
                            char *errstr, size_t errstr_size);

/* Versions, learning records, model store (model.h).  Record layout:
 * learnlog.h (header) and seq_learn.c (body). */
const rs_model_conf_t *rs_seq_conf(const rs_seq_t *s);
void rs_seq_set_number(rs_seq_t *s, uint64_t n);
rs_err_t rs_seq_set_tag(rs_seq_t *s, const char *tag); /* checked by model.c */
/* rs_model_view / rs_model_view_done of a "seq" model (model_int.h). */
void rs_seq_view(rs_seq_t *s, rs_model_view_t *v);
void rs_seq_view_done(rs_seq_t *s);
uint64_t rs_seq_number(const rs_seq_t *s); /* of the snapshot used, if any */
uint32_t rs_seq_record_arch(const rs_seq_t *s);
size_t rs_seq_lrec_size(const rs_seq_t *s);
/* Bytes per entity cache of a "seq" model of conf's architecture (as
 * rs_seq_new would allocate them; no allocation). */
uint64_t rs_seq_conf_entity_bytes(const rs_model_conf_t *conf);
void rs_seq_observe(rs_seq_t *s, const void *rec);
/* The raw features x[dim] of a record of s's kind (copied out). */
void rs_seq_lrec_x(const rs_seq_t *s, const void *rec, float *x);
rs_err_t rs_seq_learn_lrec(rs_seq_t *s, const void *rec,
                           const void *const *hist, int nh, int y,
                           rs_model_learn_t how, double psi);
/* The update count and version step (bit 63: set by rs_seq_set_number)
 * from the head of a saved body (after kind, dim, names); rb->bad if it
 * is too short. */
void rs_seq_peek(rs_rbuf_t *rb, uint64_t *updates, uint64_t *vstep);

/* Entity caches across restarts (model.h rs_model_caches_*; layout there
 * and in seq_cache.c).  rs_seq_caches_envelope checks magic, format, length
 * and checksum only (model.c uses it for an "lr" model handed caches). */
size_t rs_seq_caches_size(const rs_seq_t *s);
rs_err_t rs_seq_caches_write(const rs_seq_t *s, uint8_t *buf, size_t cap,
                             size_t *len);
rs_err_t rs_seq_caches_envelope(const uint8_t *buf, size_t len, char *errstr,
                                size_t errstr_size);
rs_err_t rs_seq_caches_read(rs_seq_t *s, const uint8_t *buf, size_t len,
                            char *errstr, size_t errstr_size);
/* Selections of entities by key and partition (model.h
 * rs_model_caches_*_sel). */
typedef int rs_seq_sel_cb(void *opaque, uint64_t key, int32_t partition);
size_t rs_seq_caches_size_sel(const rs_seq_t *s, rs_seq_sel_cb *sel,
                              void *opaque);
rs_err_t rs_seq_caches_write_sel(const rs_seq_t *s, rs_seq_sel_cb *sel,
                                 void *opaque, uint8_t *buf, size_t cap,
                                 size_t *len);
rs_err_t rs_seq_caches_merge(rs_seq_t *s, const uint8_t *buf, size_t len,
                             uint64_t *n, char *errstr, size_t errstr_size);
uint64_t rs_seq_caches_drop(rs_seq_t *s, rs_seq_sel_cb *sel, void *opaque);
rs_err_t rs_seq_caches_write_one(const rs_seq_t *s, uint64_t key, uint8_t *buf,
                                 size_t cap, size_t *len);
/* Changelog tombstones (model.h rs_model_caches_track_gone). */
void rs_seq_caches_track_gone(rs_seq_t *s, uint32_t cap);
int rs_seq_caches_gone_take(rs_seq_t *s, const uint64_t **keys,
                            const int32_t **parts, uint64_t *lost);
int rs_seq_caches_drop_key(rs_seq_t *s, int32_t partition, uint64_t key);

/* Sharded forward (issue 12.2; model/shard.h runs it, seq_fwd.c
 * "sharded forward" has the design).  A call of rs_seq_forward becomes:
 * check (rs_seq_lanes_check), then per segment plan (caller's thread: every
 * shared change -- entity index, LRU, creation/eviction, flags), run each
 * lane w in [0, nl) once (any threads, concurrently; a lane touches only
 * its own run state, its rows' outputs and its entities' caches), done
 * (caller's thread: the drift window, in input order), until the plans
 * cover [0, n).  Bit-identical to rs_seq_forward when rs_seq_lanes_ok. */
typedef struct rs_seq_lanes_s rs_seq_lanes_t;
/* nlanes (1..255) lanes for segments of at most max_n inputs: nlanes - 1
 * run states of model.batch_max rows (lane 0 uses s's own); NULL on bad
 * arguments.  s must outlive it.  Cold path. */
rs_seq_lanes_t *rs_seq_lanes_new(rs_seq_t *s, int nlanes, int max_n);
void rs_seq_lanes_destroy(rs_seq_lanes_t *pl); /* NULL is a no-op */
/* 1 if lanes give rs_seq_forward's bits for these flags: seq.gemm exact
 * (OpenBLAS rows depend on the batch) and not DRY. */
int rs_seq_lanes_ok(const rs_seq_t *s, unsigned flags);
/* rs_seq_forward's argument checks: RS_ERR_INVALID or RS_OK. */
rs_err_t rs_seq_lanes_check(const rs_seq_t *s, const rs_model_input_t *in,
                            int n, unsigned flags);
/* Plan inputs from .. of in[0..n) over nl lanes; returns how many (>= 1
 * when from < n): fewer than n - from when max_n is reached or a new
 * entity would evict one used in the segment. */
int rs_seq_lanes_plan(rs_seq_lanes_t *pl, const rs_model_input_t *in,
                      int from, int n, rs_model_output_t *out,
                      float *contrib, unsigned flags, int nl);
void rs_seq_lanes_run(rs_seq_lanes_t *pl, int w);
void rs_seq_lanes_done(rs_seq_lanes_t *pl);

/* ------------------------------------------------------- for the tests */

/* Parameter regions of the flat parameter vector. */
typedef enum rs_seq_region_e {
    RS_SEQ_R_WIN = 0, /* input projection W_in [d][din]       */
    RS_SEQ_R_BIN,     /* b_in [d]                              */
    RS_SEQ_R_HEAD,    /* head w [d], b [1]                     */
    RS_SEQ_R_QKV,     /* layer 0: Wqkv [3d][d]                 */
    RS_SEQ_R_WO,      /* layer 0: Wo [d][d]                    */
    RS_SEQ_R_TB,      /* layer 0: logit bias: time gap [NB], then
                       * recency rank [L] (0 = newest)         */
    RS_SEQ_R_TV,      /* layer 0: time-gap value vectors [NB][d] */
    RS_SEQ_R_GATE,    /* layer 0: Wg [E][d]                    */
    RS_SEQ_R_EXPERTS, /* layer 0: experts [E][PE]              */
    RS_SEQ_R_ECP,     /* counterparty embeddings [B][d]        */
    RS_SEQ_R_ECAT,    /* categorical embeddings [B][d]         */
    RS_SEQ_R__CNT
} rs_seq_region_t;

/* Parameters: *np gets the count; the pointer is live (tests perturb it:
 * nothing is derived from it, the next forward reads the new values). */
float *rs_seq_params(rs_seq_t *s, size_t *np);
/* Offset and length of a region in the parameter vector (layer l for the
 * per-layer ones). */
void rs_seq_region(const rs_seq_t *s, rs_seq_region_t r, int l, size_t *off,
                   size_t *len);

/* Loss of learning record `rec` (history hist[0..nh) oldest first, as for
 * rs_seq_learn_lrec) with label y at the current weights, without
 * learning anything:
 *   loss = c_y * (softplus(l) - y l) + balance * E * sum_l sum_e f_e p_e
 * If grad is non-NULL it gets d loss / d params [nparams] (dense); the
 * history's inputs are constants (as in learning).  Errors as
 * rs_seq_learn_lrec. */
rs_err_t rs_seq_loss_grad(rs_seq_t *s, const void *rec,
                          const void *const *hist, int nh, int y,
                          double *loss, float *grad);
/* The loss that gradient is of, for a finite-difference check: the
 * record loaded by the last rs_seq_loss_grad (its nh history events) at
 * the current weights, the history's layer inputs kept as that call
 * rebuilt them (constants: the gradient does not flow into them) and
 * their keys/values recomputed from them at the current weights.  (The
 * loss of rs_seq_loss_grad itself rebuilds the layer inputs at the
 * current weights too, so its finite differences include the history
 * path the gradient leaves out.) */
rs_err_t rs_seq_loss_frozen(rs_seq_t *s, int nh, int y, double *loss);

#endif /* RS_SEQ_INT_H */
