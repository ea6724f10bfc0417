/* seq.c -- the sparse-activated sequence model (kind "seq").
 *
 * Design note
 * -----------
 * One event = one token.  Per entity the K/V vectors of its last L events
 * (every layer) are cached, so scoring a new event is one attention step
 * over at most L cached keys plus itself.  Shapes (d = d_model, din = dim +
 * 2, H = expert_hidden, NB = 8 time-gap buckets), for one event:
 *
 *   u   [din]  = clip((x - mu) * istd) ++ [gap to previous event, history
 *                length]                         (standardised like "lr")
 *   x0  [d]    = softsign(W_in u + b_in + Ecp[h(cp)] + sum_c Ecat[h(cat_c)])
 *                softsign(e) = e / (1 + |e|): bounded like tanh, no exp
 *   layer l:   q,k,v [d] = Wqkv x                     Wqkv [3d][d]
 *              s_j = q.k_j / sqrt(d) + tb . phi(t - t_j) + pb[rank_j]
 *                                      j in cache+self, rank 0 = newest
 *              a = softmax(s);  c = sum_j a_j (v_j + TV^T phi(t - t_j))
 *              x1 = x + Wo c                          Wo [d][d]
 *              p = softmax(Wg x1)                     Wg [E][d]
 *              top-k experts S by p; w_e = p_e / sum_S p
 *              x  = x1 + sum_{e in S} w_e (W2_e relu(W1_e x1 + b1_e) + b2_e)
 *   score = sigmoid(wh . x + bh)
 *
 * phi(dt) is a triangular soft one-hot of log1p(dt seconds) over NB
 * buckets 2.0 apart (seconds .. months); pb is a bias by recency rank.
 *
 * Entity caches: per entity a ring of its last L events holding, per layer,
 * k and v (what scoring reads), plus time, the event's position in the
 * learning logs and explanation meta (ids, amount).  Open-addressing index + LRU list; the least recently used
 * entity is evicted when the pool is full.  rs_seq_caches_* (end of file)
 * serialise them, LRU order included, for a restart.
 *
 * Inference (rs_seq_forward): a micro-batch is cut into sub-batches in
 * which no entity repeats; each sub-batch runs the projections as GEMMs
 * over its rows (input projection, QKV, Wo, gate, and the expert FFNs
 * grouped by expert), the attention step per row, then appends each row's
 * k, v, xin to its entity's ring.  A later event of the same entity in the
 * same call goes into the next sub-batch, so results equal one-by-one
 * calls -- bit for bit, because the default GEMM kernel (rs_gemm_nt)
 * computes every element the same way whatever the batch.  That is also
 * what makes input logs exact: a row's log holds its x, hashes, time and
 * the history view's times and k, v as read, and rs_seq_rescore runs the
 * same rs_seq_run on one row with that view.  A what-if (DRY) sub-batch
 * appends, remembers and counts nothing; a skip_hist row runs alone over
 * a copy of its view without that event (xkv, xt).
 *
 * Learning: at scoring time each event's learning record (raw x,
 * categorical and counterparty hashes, time, the u extras, and a reference
 * to the record of the entity's newest cached event) goes to the caller's
 * learning log.  A label replays the forward at the current weights (same
 * code, a one-row run state) over a history REBUILT from the records the
 * references lead to: their layer inputs xin recomputed at the current
 * weights (layer 0 directly from each record; deeper layers causally over
 * the rebuilt history), then k, v from xin, so gradients reach Wk, Wv
 * through past events too (xin itself is a constant, as in
 * Transformer-XL's memory), and backprops into the
 * head, the chosen experts, the gate (+ load-balancing term), attention,
 * time encodings, embeddings and input projection.  SGD with momentum (or
 * lazy Adam) on the touched regions only: the dense ones, k experts per
 * layer and the embedding rows used.  Drift: PSI of the score
 * distribution, last window vs the one before; low -> only head and gates
 * learn (the backward stops early), high -> all.
 *
 * Threads: one owner thread per rs_seq_t; a sharded forward (the
 * "sharded forward" section, model/shard.h) runs per-entity lanes on other
 * threads inside the owner's call.  Parameters are one flat float
 * vector; rs_seq_weights_take() copies them into an immutable, refcounted
 * snapshot another model can score with (docs/model.md).
 */
#define _GNU_SOURCE
#include "common/idx.h"
#include "model/seq_int.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RS_SEQ_NB        8     /* time-gap buckets                       */
#define RS_SEQ_GAP_STEP  2.0f  /* bucket spacing in log1p(seconds)       */
#define RS_SEQ_XTRA      2     /* extra inputs: gap, history length      */
#define RS_SEQ_MAX_LAYERS 8
#define RS_SEQ_MAX_K     8
#define RS_SEQ_MAX_E     64
#define RS_SEQ_PSI_BINS  10
#define RS_SEQ_STD_MIN   1e-3
#define RS_SEQ_BAL_EMA   0.01f /* rate of the routing-fraction average   */
#define RS_SEQ_NO_ENT    UINT32_MAX /* a row without an entity slot      */

#define RS_ADAM_B1  0.9f
#define RS_ADAM_B2  0.999f
#define RS_ADAM_EPS 1e-8f
#define RS_MOMENTUM 0.9f

/* ------------------------------------------------------------ config */

#define SO(f) offsetof(rs_seq_conf_t, f)
static const rs_conf_field_t rs_seq_fields[] = {
    {"d_model", RS_CONF_INT, "32", SO(d_model), 0,
     "width of the residual stream", NULL, 2, 256},
    {"history", RS_CONF_INT, "32", SO(history), 0,
     "L: past events cached per entity (K/V per layer)", NULL, 1, 256},
    {"layers", RS_CONF_INT, "1", SO(layers), 0,
     "attention + mixture-of-experts blocks", NULL, 1, RS_SEQ_MAX_LAYERS},
    {"experts", RS_CONF_INT, "8", SO(experts), 0, "E: experts per block",
     NULL, 1, RS_SEQ_MAX_E},
    {"top_k", RS_CONF_INT, "2", SO(top_k), 0, "k: experts run per event",
     NULL, 1, RS_SEQ_MAX_K},
    {"expert_hidden", RS_CONF_INT, "64", SO(expert_hidden), 0,
     "hidden width of one expert FFN", NULL, 1, 4096},
    {"buckets", RS_CONF_INT, "4096", SO(buckets), 0,
     "rows of each hashed embedding table (counterparty, categoricals)",
     NULL, 1, 1 << 22},
    {"max_entities", RS_CONF_INT, "16384", SO(max_entities), 0,
     "entity caches; the least recently used is evicted when full", NULL, 2,
     1 << 24},
    {"learning_rate", RS_CONF_DOUBLE, "0.005", SO(learning_rate), 0,
     "step size", NULL, 1e-9, 10},
    {"optimizer", RS_CONF_ENUM, "momentum", SO(optimizer), 0,
     "momentum (SGD, 0.9) or adam (lazy on sparse rows; its normalised "
     "steps random-walk the weights in long online runs, see docs/model.md)",
     "adam|momentum", 0, 0},
    {"balance", RS_CONF_DOUBLE, "0.01", SO(balance), 0,
     "load-balancing loss coefficient", NULL, 0, 100},
    {"drift_window", RS_CONF_INT, "2000", SO(drift_window), 0,
     "scores per PSI window", NULL, 10, 0x1p40},
    {"drift_threshold", RS_CONF_DOUBLE, "0.2", SO(drift_threshold), 0,
     "score PSI above which all layers learn (below: head and gates)", NULL,
     0, 1e9},
    {"drift_mode", RS_CONF_ENUM, "auto", SO(drift_mode), 0,
     "auto (by PSI), all (always all layers), head (always head + gates)",
     "auto|all|head", 0, 0},
    {"warmup_updates", RS_CONF_INT, "20000", SO(warmup_updates), 0,
     "first updates train all layers whatever the drift", NULL, 0, 0x1p62},
    {"seed", RS_CONF_INT, "42", SO(seed), 0, "weight initialisation seed",
     NULL, 0, 0x1p53},
    {"gemm", RS_CONF_ENUM, "exact", SO(gemm), 0,
     "exact (own kernel: a score does not depend on its batch) or blas "
     "(cblas_sgemm)",
     "exact|blas", 0, 0},
};
#undef SO

const rs_conf_field_t *rs_seq_conf_fields(int *nfields) {
    if (nfields) *nfields = (int)RS_ARRAY_LEN(rs_seq_fields);
    return rs_seq_fields;
}

static int rs_seq_enum_index(const char *choices, const char *v) {
    size_t n = strlen(v);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, v, n)) return i;
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

static int rs_seq_enum_count(const char *choices) {
    int n = 1;
    for (const char *p = choices; *p; p++) n += *p == '|';
    return n;
}

void rs_seq_conf_init(rs_seq_conf_t *sc) {
    memset(sc, 0, sizeof(*sc));
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_seq_fields); i++) {
        const rs_conf_field_t *fd = &rs_seq_fields[i];
        char *p = (char *)sc + fd->offset;
        if (fd->type == RS_CONF_DOUBLE)
            *(double *)p = strtod(fd->def, NULL);
        else if (fd->type == RS_CONF_INT)
            *(int64_t *)p = strtoll(fd->def, NULL, 0);
        else if (fd->type == RS_CONF_ENUM)
            *(int *)p = rs_seq_enum_index(fd->choices, fd->def);
    }
}

void rs_seq_conf_section(rs_conf_section_t *sec, rs_model_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "seq";
    sec->desc = "sequence model (model.kind: seq): sizes, learning, drift";
    sec->fields = rs_seq_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_seq_fields);
    sec->base = &conf->seq;
}

rs_err_t rs_seq_check_conf(const rs_model_conf_t *conf, char *errstr,
                           size_t errstr_size) {
    const rs_seq_conf_t *c = &conf->seq;
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_seq_fields); i++) {
        const rs_conf_field_t *fd = &rs_seq_fields[i];
        const char *p = (const char *)c + fd->offset;
        if (fd->type == RS_CONF_ENUM) {
            int v = *(const int *)p;
            if (v < 0 || v >= rs_seq_enum_count(fd->choices))
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "seq.%s: %d is not one of %s", fd->name, v,
                               fd->choices);
            continue;
        }
        double v = fd->type == RS_CONF_DOUBLE ? *(const double *)p
                                              : (double)*(const int64_t *)p;
        if (!isfinite(v) || v < fd->min || v > fd->max)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "seq.%s: %g is out of range [%g, %g]", fd->name, v,
                           fd->min, fd->max);
    }
    if (c->top_k > c->experts)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "seq.top_k: %lld is more than seq.experts %lld",
                       (long long)c->top_k, (long long)c->experts);
    if (c->max_entities <= conf->batch_max)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "seq.max_entities: %lld must exceed model.batch_max "
                       "%lld",
                       (long long)c->max_entities, (long long)conf->batch_max);
    return RS_OK;
}

/* ------------------------------------------------------------- state */

typedef struct rs_seq_ent_s {
    uint64_t key;         /* rs_hash_str(entity id)                      */
    int32_t prev, next;   /* LRU list (prev: more recent), -1 = none     */
    uint32_t head, n;     /* ring: next write slot, cached events        */
    uint64_t stamp;       /* sub-batch using it                          */
} rs_seq_ent_t;

typedef struct rs_seq_meta_s { /* per cached event, for explanations */
    float amount;
    char id[RS_MODEL_ID_MAX];
    char cp[RS_MODEL_ID_MAX];
} rs_seq_meta_t;

/* A read-only view of one event's history: slot j (0 oldest) is slot
 * sl = (start + j) % cap: keys/values at kv + sl * stride (per layer k [d],
 * v [d]: all that scoring reads), time t[sl]; for a training replay also
 * the layers' inputs at xin + sl * layers * d (what k, v were recomputed
 * from; NULL when scoring). */
typedef struct rs_seq_view_s {
    const float *kv;      /* [cap][layers][2][d]                          */
    const float *xin;     /* [cap][layers][d]                             */
    const int64_t *t;     /* [cap]                                        */
    int n, start, cap;
} rs_seq_view_t;

typedef struct rs_seq_row_s {
    const float *x;       /* [dim] raw features                          */
    int64_t t;
    uint64_t cp;
    int n_cat;
    const uint64_t *cat;  /* [n_cat]                                     */
    rs_seq_view_t h;
    int xset;             /* 1: u's extras are xgap, xn (a rebuilt history
                           * event: as it was scored), not from h        */
    float xgap, xn;
} rs_seq_row_t;

/* Run state for up to `cap` rows: every activation the backward needs. */
typedef struct rs_seq_run_s {
    int cap;
    const float *P;       /* [np] weights this run reads                  */
    const float *mu, *istd; /* [dim] standardiser this run reads          */
    rs_seq_row_t *row;    /* [B]                                          */
    float *u;             /* [B][din]                                     */
    float *xin;           /* [layers][B][d]  input of layer l (l=0: x0)   */
    float *qkv;           /* [layers][B][3d]                              */
    float *att;           /* [layers][B][L+1] weights, self last          */
    float *ctx;           /* [layers][B][d]                               */
    float *x1;            /* [layers][B][d]  after the attention residual */
    float *gp;            /* [layers][B][E]  full gate softmax            */
    int *sel;             /* [layers][B][k]  chosen experts               */
    float *gw;            /* [layers][B][k]  renormalised gate weights    */
    float *hid;           /* [layers][B][k][H] relu(W1 x1 + b1)           */
    float *yex;           /* [layers][B][k][d] expert outputs             */
    float *xout;          /* [B][d]                                       */
    float *logit;         /* [B]                                          */
    int *gidx;            /* [E][B*k] row*k + slot routed to expert e     */
    int *gn;              /* [E]                                          */
    float *G, *Hg, *Yg;   /* [B*k][d], [B*k][H], [B*k][d] grouped rows    */
    /* one-row backward scratch */
    float *dx, *dx1, *dc, *dqkv, *dh, *dy, *da, *dr, *du, *tvd;
    int *gib;             /* [B][L] time-gap bucket of history slot j     */
    float *gf;            /* [B][L] its interpolation weight              */
    float *wexp;          /* [L+1] explanation scratch                    */
    /* training replay: history recomputed at the current weights */
    float *hist;          /* [L][stride] keys/values                      */
    float *dK, *dV;       /* [L][d] gradients of the history keys/values  */
} rs_seq_run_t;

typedef struct rs_seq_reg_s { size_t off, len; } rs_seq_reg_t;

struct rs_seq_s {
    rs_model_conf_t conf;
    int dim, din, d, L, nl, E, k, H, B, NB;
    int stride;           /* floats of k,v per cached event: layers * 2 * d */
    int pstride;          /* floats of xin per replayed history event:
                           * layers * d                                  */
    int batch_max;
    uint32_t conf_hash;

    /* flat parameters and layout */
    size_t np, o_win, o_bin, o_wh, o_bh, o_ecp, o_ecat, dense_end;
    size_t o_qkv[RS_SEQ_MAX_LAYERS], o_wo[RS_SEQ_MAX_LAYERS],
        o_tb[RS_SEQ_MAX_LAYERS], o_tv[RS_SEQ_MAX_LAYERS],
        o_wg[RS_SEQ_MAX_LAYERS], o_ex[RS_SEQ_MAX_LAYERS];
    size_t pe;            /* floats per expert: W1[H][d] b1[H] W2[d][H] b2[d] */
    float *p;             /* [np] parameters                              */
    float *pa;            /* [np] their average (model.average), lazily
                           * up to date per region (av_sync)              */
    double *av_sync;      /* [1 + layers E + 2 buckets] cumulative log of
                           * (1 - a) when each region was last brought up
                           * to date: dense, experts, cp rows, cat rows   */
    double avl;           /* cumulative log (1 - a) of every step          */
    uint64_t avn;         /* steps averaged                                */
    int64_t avt;          /* event time of the newest                      */
    int64_t tcur;         /* event time of the record being learned        */
    float *om, *ov;       /* [np] optimiser moments                       */
    float *g;             /* [np] gradient (touched regions only valid)   */
    float *fbal;          /* [layers][E] routing-fraction average          */
    uint64_t opt_t;

    /* standardiser (model_int.h "the standardiser", as "lr") */
    uint64_t nobs;
    int64_t std_tlast;
    double *mean, *m2;    /* [dim]                                        */
    float *mu, *istd;     /* [dim]                                        */

    rs_seq_run_t rs;      /* scoring, batch_max rows                      */
    rs_seq_run_t tr;      /* training replay, one row                     */
    rs_seq_reg_t *regs;   /* touched regions of one step                  */
    int nregs, maxregs;

    /* entity caches */
    uint32_t ecap, eused;
    rs_seq_ent_t *ent;    /* [ecap]                                       */
    float *ekv;           /* [ecap][L][layers][2][d] keys and values      */
    uint64_t *elpos;      /* [ecap][L] learning-log positions (RS_LPOS)   */
    int64_t *et;          /* [ecap][L]                                    */
    rs_seq_meta_t *emeta; /* [ecap][L]                                    */
    uint32_t *eindex;     /* [emask+1] slot + 1                           */
    uint32_t emask;
    int32_t lru_head, lru_tail;
    uint64_t stamp;
    uint32_t *rowent;     /* [B] entity slot of each sub-batch row        */
    int *rowin;           /* [B] input index of each sub-batch row        */

    /* training replay of one learning record: the event and its
     * rebuilt history (oldest first) */
    float *tx;            /* [dim] the event's x                          */
    uint64_t tcat[RS_MAX_CATEG];
    int64_t tt;           /* its time, counterparty, categoricals          */
    uint64_t tcp;
    int tncat;
    float *hx;            /* [L][dim] history x                           */
    float *hu;            /* [L][din] their u, as they were scored         */
    uint64_t *hcat;       /* [L][RS_MAX_CATEG]                            */
    uint64_t *hcp;        /* [L]                                          */
    int *hncat;           /* [L]                                          */
    float *hgap, *hn;     /* [L] u extras as scored                       */
    int64_t *ht;          /* [L] times                                    */
    float *hxin;          /* [L][layers][d] their layer inputs, rebuilt   */

    /* drift */
    uint64_t dref[RS_SEQ_PSI_BINS], dcur[RS_SEQ_PSI_BINS], dcur_n;
    int dref_ok;
    double psi;

    uint64_t updates, positives, negatives, horizon_negatives, corrections,
        replays, evictions, vstep;
    int vnamed;           /* vstep set by rs_seq_set_number               */
    char version[RS_VERSION_MAX];
    char vtag[RS_MODEL_TAG_MAX + 1]; /* rs_seq_set_tag                    */

    rs_seq_weights_t *wuse; /* scoring reads this snapshot if set          */

    /* input logs, what-if and rescore (model.h "input logs") */
    uint32_t names_hash;  /* feature names, for the log header            */
    float *xkv;           /* [L][stride] keys/values of a what-if view
                           * without one event, or of a logged history    */
    int64_t *xt;          /* [L] their times                              */
    float *xx;            /* [dim] a logged raw x                         */
    int xskip;            /* >= 0: the sub-batch is one what-if row whose
                           * view leaves out slot xskip (oldest first) of
                           * xview; -1 otherwise                          */
    rs_seq_view_t xview;  /* that row's full view                         */

    /* changelog tombstones (issue 13): caches evicted by the LRU while
     * scoring since the last take; 0 cap: not tracked */
    uint64_t *gone_key;   /* [gone_cap] entity keys                       */
    int32_t *gone_part;   /* [gone_cap] their partitions                  */
    uint32_t ngone, gone_cap;
    uint64_t gone_lost;   /* beyond gone_cap                              */
};

static int32_t rs_seq_ent_part(const rs_seq_t *s, uint32_t i);

/* The snapshot struct (rs_seq_weights_t) is in seq_int.h: model.c makes
 * the "lr" ones. */

/* ------------------------------------------------------------ helpers */

/* Start loading n bytes at p (a few rows ahead of their use: with many
 * entities the caches come from DRAM). */
static inline void rs_prefetch(const void *p, size_t n) {
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch((const char *)p + o);
}

static uint32_t rs_seq_arch_hash(const rs_seq_t *s) {
    const rs_seq_conf_t *c = &s->conf.seq;
    const int64_t a[8] = {s->dim, c->d_model, c->history, c->layers,
                          c->experts, c->top_k, c->expert_hidden, c->buckets};
    uint32_t h = rs_checksum32(a, sizeof(a), 0);
    /* the transform is what mu/istd are of (none: the hash of before) */
    return s->conf.transform ? rs_checksum32("symlog", 6, h) : h;
}

/* 8 lanes then a fixed tree: vectorises without -ffast-math and gives the
 * same bits wherever it is inlined (per target clone). */
typedef float rs_v8 __attribute__((vector_size(32)));
typedef float rs_v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define rs_hsum8(v) \
    ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))
#define rs_ld8(p) (*(const rs_v8u *)(const void *)(p))

/* hot functions get an AVX2+FMA clone picked at load time (ifunc) */
/* The ifunc resolver of target_clones runs before the TSan runtime is up
 * and is instrumented: it crashes at load.  TSan builds use one version. */
#if defined(__SANITIZE_THREAD__)
#define RS_HOT
#else
#define RS_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif

static inline float rs_dot(const float *a, const float *b, int n) {
    rs_v8 acc = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) acc += rs_ld8(a + i) * rs_ld8(b + i);
    float s = rs_hsum8(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef float rs_v8w __attribute__((vector_size(32), aligned(4), may_alias));

/* y += a x, 8 lanes at a time (GCC -O2 will not vectorise the plain loop:
 * x and y may alias). Element-wise, so the bits do not depend on n. */
static inline void rs_axpy(float a, const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        *(rs_v8w *)(void *)(y + i) = *(rs_v8w *)(void *)(y + i) + a * rs_ld8(x + i);
    for (; i < n; i++) y[i] += a * x[i];
}

static inline double rs_sigm(double l) {
    return l >= 0 ? 1.0 / (1.0 + exp(-l)) : exp(l) / (1.0 + exp(l));
}

static inline double rs_splus(double l) {
    return l > 0 ? l + log1p(exp(-l)) : log1p(exp(l));
}

/* Time-gap bucket: phi has weight 1-f at ib and f at ib+1. */
static inline void rs_seq_gap(int64_t dt_ms, int *ib, float *f) {
    float g = dt_ms > 0 ? log1pf((float)dt_ms * 1e-3f) / RS_SEQ_GAP_STEP : 0.0f;
    int i = (int)g;
    if (i >= RS_SEQ_NB - 1) {
        *ib = RS_SEQ_NB - 1;
        *f = 0.0f;
    } else {
        *ib = i;
        *f = g - (float)i;
    }
}

static inline size_t rs_seq_ecat_row(const rs_seq_t *s, uint64_t h) {
    return s->o_ecat + (size_t)(h % (uint64_t)s->conf.seq.buckets) * s->d;
}

static inline size_t rs_seq_ecp_row(const rs_seq_t *s, uint64_t h) {
    return s->o_ecp + (size_t)(h % (uint64_t)s->conf.seq.buckets) * s->d;
}

static void rs_seq_refresh_std(rs_seq_t *s) {
    for (int i = 0; i < s->dim; i++) {
        if (s->nobs < 2) {
            s->mu[i] = s->nobs ? (float)s->mean[i] : 0.0f;
            s->istd[i] = 1.0f;
        } else {
            double sd = sqrt(s->m2[i] / (double)s->nobs);
            s->mu[i] = (float)s->mean[i];
            s->istd[i] = (float)(1.0 / (sd > RS_SEQ_STD_MIN ? sd : RS_SEQ_STD_MIN));
        }
    }
}

static void rs_seq_set_version(rs_seq_t *s) {
    char v[96]; /* a tag fits beside any number below 10^17 */
    snprintf(v, sizeof(v), "seq-%08x-%llu%s%s", s->conf_hash,
             (unsigned long long)s->vstep, s->vtag[0] ? "." : "", s->vtag);
    rs_strlcpy(s->version, v, sizeof(s->version));
}

static uint32_t rs_seq_hash_conf(const rs_seq_t *s, uint32_t names_hash) {
    uint32_t h = rs_checksum32("seq", 3, 0);
    h = rs_checksum32(&s->dim, sizeof(s->dim), h);
    h = rs_checksum32(&names_hash, sizeof(names_hash), h);
    const rs_seq_conf_t *c = &s->conf.seq;
    const int64_t a[8] = {c->d_model, c->history, c->layers, c->experts,
                          c->top_k, c->expert_hidden, c->buckets, c->seed};
    const double d[5] = {c->learning_rate, c->balance, s->conf.l2,
                         s->conf.pos_weight, s->conf.grad_clip};
    const int64_t k[2] = {s->conf.label_horizon, s->conf.publish_every};
    h = rs_checksum32(a, sizeof(a), h);
    h = rs_checksum32(d, sizeof(d), h);
    h = rs_checksum32(k, sizeof(k), h);
    return s->conf.transform ? rs_checksum32("symlog", 6, h) : h;
}

/* ----------------------------------------------------------- new/destroy */

static void rs_seq_run_init(rs_seq_t *s, rs_seq_run_t *rs, int cap) {
    size_t B = (size_t)cap, d = (size_t)s->d, nl = (size_t)s->nl,
           E = (size_t)s->E, k = (size_t)s->k, H = (size_t)s->H,
           L1 = (size_t)s->L + 1;
    rs->cap = cap;
    rs->row = rs_calloc(B, sizeof(*rs->row));
    rs->u = rs_aligned_calloc(B * (size_t)s->din, sizeof(float));
    rs->xin = rs_aligned_calloc(nl * B * d, sizeof(float));
    rs->qkv = rs_aligned_calloc(nl * B * 3 * d, sizeof(float));
    rs->att = rs_aligned_calloc(nl * B * L1, sizeof(float));
    rs->ctx = rs_aligned_calloc(nl * B * d, sizeof(float));
    rs->x1 = rs_aligned_calloc(nl * B * d, sizeof(float));
    rs->gp = rs_aligned_calloc(nl * B * E, sizeof(float));
    rs->sel = rs_aligned_calloc(nl * B * k, sizeof(int));
    rs->gw = rs_aligned_calloc(nl * B * k, sizeof(float));
    rs->hid = rs_aligned_calloc(nl * B * k * H, sizeof(float));
    rs->yex = rs_aligned_calloc(nl * B * k * d, sizeof(float));
    rs->xout = rs_aligned_calloc(B * d, sizeof(float));
    rs->logit = rs_aligned_calloc(B, sizeof(float));
    rs->gidx = rs_aligned_calloc(E * B * k, sizeof(int));
    rs->gn = rs_aligned_calloc(E, sizeof(int));
    rs->G = rs_aligned_calloc(B * k * d, sizeof(float));
    rs->Hg = rs_aligned_calloc(B * k * H, sizeof(float));
    rs->Yg = rs_aligned_calloc(B * k * d, sizeof(float));
    rs->dx = rs_aligned_calloc(d, sizeof(float));
    rs->dx1 = rs_aligned_calloc(d, sizeof(float));
    rs->dc = rs_aligned_calloc(d, sizeof(float));
    rs->dqkv = rs_aligned_calloc(3 * d, sizeof(float));
    rs->dh = rs_aligned_calloc(H, sizeof(float));
    rs->dy = rs_aligned_calloc(d, sizeof(float));
    rs->da = rs_aligned_calloc(L1, sizeof(float));
    rs->dr = rs_aligned_calloc(E, sizeof(float));
    rs->du = rs_aligned_calloc((size_t)s->din, sizeof(float));
    rs->tvd = rs_aligned_calloc(RS_SEQ_NB, sizeof(float));
    rs->gib = rs_aligned_calloc(B * (size_t)s->L, sizeof(int));
    rs->gf = rs_aligned_calloc(B * (size_t)s->L, sizeof(float));
    rs->wexp = rs_aligned_calloc(L1, sizeof(float));
    rs->hist = rs_aligned_calloc((size_t)s->L * s->stride, sizeof(float));
    rs->dK = rs_aligned_calloc((size_t)s->L * d, sizeof(float));
    rs->dV = rs_aligned_calloc((size_t)s->L * d, sizeof(float));
}

static void rs_seq_run_free(rs_seq_run_t *rs) {
    void *ps[] = {rs->row, rs->u, rs->xin, rs->qkv, rs->att, rs->ctx, rs->x1,
                  rs->gp, rs->sel, rs->gw, rs->hid, rs->yex, rs->xout,
                  rs->logit, rs->gidx, rs->gn, rs->G, rs->Hg, rs->Yg, rs->dx,
                  rs->dx1, rs->dc, rs->dqkv, rs->dh, rs->dy, rs->da, rs->dr,
                  rs->du, rs->tvd, rs->gib, rs->gf, rs->wexp, rs->hist, rs->dK, rs->dV};
    for (size_t i = 0; i < RS_ARRAY_LEN(ps); i++) rs_free(ps[i]);
}

static void rs_seq_init_params(rs_seq_t *s) {
    rs_rng_t rng;
    rs_rng_seed(&rng, (uint64_t)s->conf.seq.seed);
    const int d = s->d, H = s->H;
#define FILL(off, n, sd)                                                   \
    for (size_t i_ = 0; i_ < (size_t)(n); i_++)                            \
    s->p[(off) + i_] = (float)(rs_rng_normal(&rng) * (sd))
    FILL(s->o_win, (size_t)d * s->din, 1.0 / sqrt((double)s->din));
    FILL(s->o_wh, d, 0.1 / sqrt((double)d));
    for (int l = 0; l < s->nl; l++) {
        FILL(s->o_qkv[l], 3 * d * d, 1.0 / sqrt((double)d));
        FILL(s->o_wo[l], d * d, 0.5 / sqrt((double)d));
        FILL(s->o_tv[l], RS_SEQ_NB * d, 0.1);
        FILL(s->o_wg[l], s->E * d, 0.3 / sqrt((double)d));
        for (int e = 0; e < s->E; e++) {
            size_t o = s->o_ex[l] + (size_t)e * s->pe;
            FILL(o, H * d, sqrt(2.0 / d));
            FILL(o + (size_t)H * d + H, d * H, 0.5 / sqrt((double)H));
        }
        for (int e = 0; e < s->E; e++) s->fbal[l * s->E + e] = 1.0f / s->E;
    }
    FILL(s->o_ecp, (size_t)s->conf.seq.buckets * d, 0.5);
    FILL(s->o_ecat, (size_t)s->conf.seq.buckets * d, 0.5);
#undef FILL
    /* Cold start at the prior rate (model.base_rate), not 0.5. */
    if (s->conf.base_rate > 0 && s->conf.base_rate < 1)
        s->p[s->o_bh] = (float)log(s->conf.base_rate / (1.0 - s->conf.base_rate));
}

/* The parameter layout of architecture c over dim features: [W_in b_in
 * wh bh | per layer Wqkv Wo tb TV Wg] = dense, then experts
 * [layers][E][pe], then Ecp, Ecat.  Returns the parameter count; with s,
 * also sets its offsets.  One function for rs_seq_new and the file reader
 * (which checks the count against the file before allocating anything).
 * c must be in the ranges of the `seq:` table (no size_t overflow). */
static size_t rs_seq_layout(const rs_seq_conf_t *c, int dim, rs_seq_t *s) {
    const size_t d = (size_t)c->d_model, L = (size_t)c->history,
                 E = (size_t)c->experts, H = (size_t)c->expert_hidden,
                 din = (size_t)dim + RS_SEQ_XTRA;
    const int nl = (int)c->layers;
    size_t o = 0, o_qkv[RS_SEQ_MAX_LAYERS], o_wo[RS_SEQ_MAX_LAYERS],
           o_tb[RS_SEQ_MAX_LAYERS], o_tv[RS_SEQ_MAX_LAYERS],
           o_wg[RS_SEQ_MAX_LAYERS], o_ex[RS_SEQ_MAX_LAYERS];
    const size_t o_win = o; o += d * din;
    const size_t o_bin = o; o += d;
    const size_t o_wh = o; o += d;
    const size_t o_bh = o; o += 1;
    for (int l = 0; l < nl; l++) {
        o_qkv[l] = o; o += 3 * d * d;
        o_wo[l] = o; o += d * d;
        o_tb[l] = o; o += RS_SEQ_NB + L;
        o_tv[l] = o; o += RS_SEQ_NB * d;
        o_wg[l] = o; o += E * d;
    }
    const size_t dense_end = o;
    const size_t pe = 2 * H * d + H + d;
    for (int l = 0; l < nl; l++) {
        o_ex[l] = o; o += E * pe;
    }
    const size_t o_ecp = o; o += (size_t)c->buckets * d;
    const size_t o_ecat = o; o += (size_t)c->buckets * d;
    if (s) {
        s->o_win = o_win;
        s->o_bin = o_bin;
        s->o_wh = o_wh;
        s->o_bh = o_bh;
        for (int l = 0; l < nl; l++) {
            s->o_qkv[l] = o_qkv[l];
            s->o_wo[l] = o_wo[l];
            s->o_tb[l] = o_tb[l];
            s->o_tv[l] = o_tv[l];
            s->o_wg[l] = o_wg[l];
            s->o_ex[l] = o_ex[l];
        }
        s->dense_end = dense_end;
        s->pe = pe;
        s->o_ecp = o_ecp;
        s->o_ecat = o_ecat;
        s->np = o;
    }
    return o;
}

rs_seq_t *rs_seq_new(const rs_model_conf_t *conf, int dim, uint32_t names_hash,
                     char *errstr, size_t errstr_size) {
    if (rs_seq_check_conf(conf, errstr, errstr_size)) return NULL;
    rs_seq_t *s = rs_calloc(1, sizeof(*s));
    const rs_seq_conf_t *c = &conf->seq;
    s->conf = *conf;
    s->dim = dim;
    s->din = dim + RS_SEQ_XTRA;
    s->d = (int)c->d_model;
    s->L = (int)c->history;
    s->nl = (int)c->layers;
    s->E = (int)c->experts;
    s->k = (int)c->top_k;
    s->H = (int)c->expert_hidden;
    s->NB = RS_SEQ_NB;
    s->stride = s->nl * 2 * s->d;
    s->pstride = s->nl * s->d;
    s->batch_max = (int)conf->batch_max;
    rs_seq_layout(c, dim, s);
    s->p = rs_aligned_calloc(s->np, sizeof(float));
    s->pa = rs_aligned_calloc(s->np, sizeof(float));
    s->av_sync = rs_aligned_calloc(1 + (size_t)s->nl * s->E +
                                       2 * (size_t)c->buckets, sizeof(double));
    s->om = rs_aligned_calloc(s->np, sizeof(float));
    s->ov = rs_aligned_calloc(s->np, sizeof(float));
    s->g = rs_aligned_calloc(s->np, sizeof(float));
    s->fbal = rs_aligned_calloc((size_t)s->nl * s->E, sizeof(float));

    s->mean = rs_aligned_calloc((size_t)dim, sizeof(double));
    s->m2 = rs_aligned_calloc((size_t)dim, sizeof(double));
    s->mu = rs_aligned_calloc((size_t)dim, sizeof(float));
    s->istd = rs_aligned_calloc((size_t)dim, sizeof(float));

    rs_seq_run_init(s, &s->rs, s->batch_max);
    rs_seq_run_init(s, &s->tr, 1);
    s->maxregs = 4 + s->nl * (5 + s->k) + 1 + RS_MAX_CATEG;
    s->regs = rs_calloc((size_t)s->maxregs, sizeof(*s->regs));

    s->ecap = (uint32_t)c->max_entities;
    s->ent = rs_aligned_calloc(s->ecap, sizeof(*s->ent));
    s->ekv = rs_aligned_calloc((size_t)s->ecap * s->L * s->stride, sizeof(float));
    s->elpos = rs_aligned_calloc((size_t)s->ecap * s->L, sizeof(uint64_t));
    s->et = rs_aligned_calloc((size_t)s->ecap * s->L, sizeof(int64_t));
    s->emeta = rs_aligned_calloc((size_t)s->ecap * s->L, sizeof(rs_seq_meta_t));
    uint64_t p2 = 1;
    while (p2 < (uint64_t)s->ecap * 2) p2 <<= 1;
    s->emask = (uint32_t)(p2 - 1);
    s->eindex = rs_aligned_calloc((size_t)p2, sizeof(uint32_t));
    s->lru_head = s->lru_tail = -1;
    s->rowent = rs_calloc((size_t)s->batch_max, sizeof(uint32_t));
    s->rowin = rs_calloc((size_t)s->batch_max, sizeof(int));
    s->names_hash = names_hash;
    s->xkv = rs_aligned_calloc((size_t)s->L * s->stride, sizeof(float));
    s->xt = rs_aligned_calloc((size_t)s->L, sizeof(int64_t));
    s->xx = rs_aligned_calloc((size_t)dim, sizeof(float));
    s->xskip = -1;

    const size_t L = (size_t)s->L;
    s->tx = rs_aligned_calloc((size_t)dim, sizeof(float));
    s->hx = rs_aligned_calloc(L * (size_t)dim, sizeof(float));
    s->hu = rs_aligned_calloc(L * (size_t)s->din, sizeof(float));
    s->hcat = rs_aligned_calloc(L * RS_MAX_CATEG, sizeof(uint64_t));
    s->hcp = rs_aligned_calloc(L, sizeof(uint64_t));
    s->hncat = rs_aligned_calloc(L, sizeof(int));
    s->hgap = rs_aligned_calloc(L, sizeof(float));
    s->hn = rs_aligned_calloc(L, sizeof(float));
    s->ht = rs_aligned_calloc(L, sizeof(int64_t));
    s->hxin = rs_aligned_calloc(L * (size_t)s->pstride, sizeof(float));

    rs_seq_init_params(s);
    rs_seq_refresh_std(s);
    s->conf_hash = rs_seq_hash_conf(s, names_hash);
    rs_seq_set_version(s);
    return s;
}

void rs_seq_destroy(rs_seq_t *s) {
    if (!s) return;
    rs_seq_weights_release(s->wuse);
    rs_seq_run_free(&s->rs);
    rs_seq_run_free(&s->tr);
    void *ps[] = {s->p, s->pa, s->av_sync, s->om, s->ov, s->g, s->fbal, s->mean, s->m2, s->mu,
                  s->istd, s->regs, s->ent, s->ekv, s->elpos, s->et, s->emeta,
                  s->eindex, s->rowent, s->rowin, s->tx, s->hx, s->hu,
                  s->hcat, s->hcp, s->hncat, s->hgap, s->hn, s->ht, s->hxin};
    for (size_t i = 0; i < RS_ARRAY_LEN(ps); i++) rs_free(ps[i]);
    rs_free(s->xkv);
    rs_free(s->xt);
    rs_free(s->xx);
    free(s->gone_key);
    free(s->gone_part);
    rs_free(s);
}

const char *rs_seq_version(const rs_seq_t *s) {
    return s->wuse ? s->wuse->version : s->version;
}

/* ------------------------------------------------------ weight snapshots */

static void rs_seq_av_all(const rs_seq_t *s, float *dst);

rs_seq_weights_t *rs_seq_weights_take(const rs_seq_t *s) {
    rs_seq_weights_t *w = rs_calloc(1, sizeof(*w));
    atomic_init(&w->refs, 1);
    w->kind = RS_MODEL_SEQ;
    w->vnum = s->vstep;
    w->np = s->np;
    w->dim = s->dim;
    w->arch = rs_seq_arch_hash(s);
    rs_strlcpy(w->version, s->version, sizeof(w->version));
    w->p = rs_aligned_calloc(s->np, sizeof(float));
    if (s->conf.average > 0 && s->avn)
        rs_seq_av_all(s, w->p); /* what a version scores with */
    else
        memcpy(w->p, s->p, sizeof(float) * s->np);
    w->mu = rs_aligned_calloc((size_t)s->dim, sizeof(float));
    w->istd = rs_aligned_calloc((size_t)s->dim, sizeof(float));
    memcpy(w->mu, s->mu, sizeof(float) * (size_t)s->dim);
    memcpy(w->istd, s->istd, sizeof(float) * (size_t)s->dim);
    return w;
}

void rs_seq_weights_ref(rs_seq_weights_t *w) {
    if (w) atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

void rs_seq_weights_release(rs_seq_weights_t *w) {
    if (!w || atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
        return;
    rs_free(w->p);
    rs_free(w->mu);
    rs_free(w->istd);
    rs_free(w);
}

const char *rs_seq_weights_version(const rs_seq_weights_t *w) {
    return w->version;
}

rs_err_t rs_seq_weights_use(rs_seq_t *s, rs_seq_weights_t *w) {
    if (w && (w->np != s->np || w->arch != rs_seq_arch_hash(s)))
        return RS_ERR_INVALID;
    rs_seq_weights_ref(w);
    rs_seq_weights_release(s->wuse);
    s->wuse = w;
    return RS_OK;
}

/* --------------------------------------------------------------- GEMM */

/* C[M][N] = A[M][K] . B[N][K]^T (+ C if beta != 0).
 *
 * "exact" (default): our own kernel in which every C element is computed
 * by the same instruction sequence whatever M, N and its position (8 lane
 * partial sums over k, a fixed reduction tree, then the k tail), so an
 * event's score does not depend on which other events share its batch.
 * OpenBLAS does not promise that: its Haswell sgemm sends rows through
 * different micro-kernels by position and M, which changes the last bits
 * (measured: a row scored alone vs inside a batch of 8 differs).
 * "blas": cblas_sgemm, bit-deterministic only for identical batches. */

RS_HOT
static void rs_gemm_nt(int M, int N, int K, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    const int K8 = K & ~7;
    int i = 0;
    for (; i + 2 <= M; i += 2) {
        const float *a0 = A + (size_t)i * lda, *a1 = a0 + lda;
        float *c0 = C + (size_t)i * ldc, *c1 = c0 + ldc;
        int j = 0;
        for (; j + 4 <= N; j += 4) {
            const float *b0 = B + (size_t)j * ldb, *b1 = b0 + ldb,
                        *b2 = b1 + ldb, *b3 = b2 + ldb;
            rs_v8 s00 = {0}, s01 = {0}, s02 = {0}, s03 = {0};
            rs_v8 s10 = {0}, s11 = {0}, s12 = {0}, s13 = {0};
            for (int k = 0; k < K8; k += 8) {
                rs_v8 x0 = rs_ld8(a0 + k), x1 = rs_ld8(a1 + k);
                rs_v8 w0 = rs_ld8(b0 + k), w1 = rs_ld8(b1 + k),
                      w2 = rs_ld8(b2 + k), w3 = rs_ld8(b3 + k);
                s00 += x0 * w0; s01 += x0 * w1; s02 += x0 * w2; s03 += x0 * w3;
                s10 += x1 * w0; s11 += x1 * w1; s12 += x1 * w2; s13 += x1 * w3;
            }
            float r[2][4] = {{rs_hsum8(s00), rs_hsum8(s01), rs_hsum8(s02), rs_hsum8(s03)},
                             {rs_hsum8(s10), rs_hsum8(s11), rs_hsum8(s12), rs_hsum8(s13)}};
            for (int k = K8; k < K; k++) {
                r[0][0] += a0[k] * b0[k]; r[0][1] += a0[k] * b1[k];
                r[0][2] += a0[k] * b2[k]; r[0][3] += a0[k] * b3[k];
                r[1][0] += a1[k] * b0[k]; r[1][1] += a1[k] * b1[k];
                r[1][2] += a1[k] * b2[k]; r[1][3] += a1[k] * b3[k];
            }
            for (int t = 0; t < 4; t++) {
                c0[j + t] = beta != 0.0f ? c0[j + t] + r[0][t] : r[0][t];
                c1[j + t] = beta != 0.0f ? c1[j + t] + r[1][t] : r[1][t];
            }
        }
        for (; j < N; j++) {
            const float *b0 = B + (size_t)j * ldb;
            rs_v8 s00 = {0}, s10 = {0};
            for (int k = 0; k < K8; k += 8) {
                rs_v8 w0 = rs_ld8(b0 + k);
                s00 += rs_ld8(a0 + k) * w0;
                s10 += rs_ld8(a1 + k) * w0;
            }
            float r0 = rs_hsum8(s00), r1 = rs_hsum8(s10);
            for (int k = K8; k < K; k++) {
                r0 += a0[k] * b0[k];
                r1 += a1[k] * b0[k];
            }
            c0[j] = beta != 0.0f ? c0[j] + r0 : r0;
            c1[j] = beta != 0.0f ? c1[j] + r1 : r1;
        }
    }
    for (; i < M; i++) {
        const float *a0 = A + (size_t)i * lda;
        float *c0 = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) {
            const float *b0 = B + (size_t)j * ldb;
            rs_v8 s00 = {0};
            for (int k = 0; k < K8; k += 8) s00 += rs_ld8(a0 + k) * rs_ld8(b0 + k);
            float r0 = rs_hsum8(s00);
            for (int k = K8; k < K; k++) r0 += a0[k] * b0[k];
            c0[j] = beta != 0.0f ? c0[j] + r0 : r0;
        }
    }
}

static void rs_seq_gemm(const rs_seq_t *s, int M, int N, int K, const float *A,
                        int lda, const float *B, int ldb, float beta, float *C,
                        int ldc) {
    if (M <= 0) return;
    if (s->conf.seq.gemm == 1)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A,
                    lda, B, ldb, beta, C, ldc);
    else
        rs_gemm_nt(M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* ------------------------------------------------------------ forward */

/* u's extras: the gap to the previous cached event, the history length. */
static inline float rs_seq_gap_in(const rs_seq_t *s, const rs_seq_row_t *rw) {
    (void)s;
    if (rw->h.n <= 0) return 0.0f;
    int last = (rw->h.start + rw->h.n - 1) % rw->h.cap;
    int64_t dt = rw->t - rw->h.t[last];
    return dt > 0 ? log1pf((float)dt * 1e-3f) * 0.1f : 0.0f;
}

static inline float rs_seq_n_in(const rs_seq_t *s, int n) {
    return log1pf((float)n) / log1pf((float)s->L);
}

/* Forward nb rows of rs (rows filled by the caller): every activation is
 * kept for the backward.  No allocation; reads the views, writes nothing
 * but rs. */
RS_HOT
static void rs_seq_run(const rs_seq_t *s, rs_seq_run_t *rs, int nb) {
    const int d = s->d, din = s->din, dim = s->dim, E = s->E, k = s->k,
              H = s->H, L1 = s->L + 1, B = rs->cap;
    const float *P = rs->P;
    const float isq = 1.0f / sqrtf((float)d);

    /* u [nb][din]: standardised x and the history extras */
    for (int r = 0; r < nb; r++) {
        const rs_seq_row_t *rw = &rs->row[r];
        float *u = rs->u + (size_t)r * din;
        for (int i = 0; i < dim; i++) {
            float v = isfinite(rw->x[i])
                          ? (rs_std_g(s->conf.transform, rw->x[i]) - rs->mu[i]) *
                                rs->istd[i]
                                         : 0.0f;
            u[i] = v > RS_MODEL_Z_CLIP ? RS_MODEL_Z_CLIP
                 : v < -RS_MODEL_Z_CLIP ? -RS_MODEL_Z_CLIP : v;
        }
        if (rw->xset) {
            u[dim] = rw->xgap;
            u[dim + 1] = rw->xn;
        } else {
            u[dim] = rs_seq_gap_in(s, rw);
            u[dim + 1] = rs_seq_n_in(s, rw->h.n);
        }
        /* time-gap buckets of the history (every layer uses them) */
        int *gib = rs->gib + (size_t)r * s->L;
        float *gf = rs->gf + (size_t)r * s->L;
        for (int j = 0; j < rw->h.n; j++)
            rs_seq_gap(rw->t - rw->h.t[(rw->h.start + j) % rw->h.cap], &gib[j],
                       &gf[j]);
    }
    /* x0 [nb][d] = softsign(u W_in^T + b_in + embeddings) */
    float *x0 = rs->xin;
    rs_seq_gemm(s, nb, d, din, rs->u, din, P + s->o_win, din, 0.0f, x0, d);
    for (int r = 0; r < nb; r++) {
        const rs_seq_row_t *rw = &rs->row[r];
        float *e = x0 + (size_t)r * d;
        rs_axpy(1.0f, P + s->o_bin, e, d);
        if (rw->cp) rs_axpy(1.0f, P + rs_seq_ecp_row(s, rw->cp), e, d);
        for (int c = 0; c < rw->n_cat; c++)
            rs_axpy(1.0f, P + rs_seq_ecat_row(s, rw->cat[c]), e, d);
        for (int i = 0; i < d; i++) e[i] = e[i] / (1.0f + fabsf(e[i]));
    }

    for (int l = 0; l < s->nl; l++) {
        float *xin = rs->xin + (size_t)l * B * d;
        float *qkv = rs->qkv + (size_t)l * B * 3 * d;
        float *att = rs->att + (size_t)l * B * L1;
        float *ctx = rs->ctx + (size_t)l * B * d;
        float *x1 = rs->x1 + (size_t)l * B * d;
        float *gp = rs->gp + (size_t)l * B * E;
        int *sel = rs->sel + (size_t)l * B * k;
        float *gw = rs->gw + (size_t)l * B * k;
        float *hid = rs->hid + (size_t)l * B * k * H;
        float *yex = rs->yex + (size_t)l * B * k * d;
        float *xnext = l + 1 < s->nl ? rs->xin + (size_t)(l + 1) * B * d
                                     : rs->xout;
        const float *tb = P + s->o_tb[l], *TV = P + s->o_tv[l];

        /* qkv [nb][3d] = xin Wqkv^T */
        rs_seq_gemm(s, nb, 3 * d, d, xin, d, P + s->o_qkv[l], d, 0.0f, qkv, 3 * d);
        /* attention, one row at a time over its cache + itself */
        for (int r = 0; r < nb; r++) {
            const rs_seq_row_t *rw = &rs->row[r];
            if (r + 4 < nb) { /* the keys/values of 4 rows ahead */
                const rs_seq_view_t *h = &rs->row[r + 4].h;
                int s0 = h->start, s1 = h->start + h->n;
                int e0 = RS_MIN(s1, h->cap);
                rs_prefetch(h->kv + (size_t)s0 * s->stride,
                            sizeof(float) * (size_t)(e0 - s0) * s->stride);
                if (s1 > h->cap)
                    rs_prefetch(h->kv, sizeof(float) * (size_t)(s1 - h->cap) * s->stride);
                rs_prefetch(h->t, sizeof(int64_t) * (size_t)h->cap);
            }
            const float *q = qkv + (size_t)r * 3 * d;
            float *a = att + (size_t)r * L1;
            float *c = ctx + (size_t)r * d;
            const int n = rw->h.n;
            float mx = -INFINITY;
            for (int j = 0; j < n; j++) {
                int sl = (rw->h.start + j) % rw->h.cap;
                const float *kj = rw->h.kv + (size_t)sl * s->stride + (size_t)l * 2 * d;
                int ib;
                float f;
                ib = rs->gib[(size_t)r * s->L + j];
                f = rs->gf[(size_t)r * s->L + j];
                float sc = rs_dot(q, kj, d) * isq + tb[ib] * (1.0f - f) +
                           (f > 0 ? tb[ib + 1] * f : 0.0f) +
                           tb[RS_SEQ_NB + n - 1 - j];
                a[j] = sc;
                if (sc > mx) mx = sc;
            }
            a[n] = rs_dot(q, q + d, d) * isq + tb[0];
            if (a[n] > mx) mx = a[n];
            float sum = 0;
            for (int j = 0; j <= n; j++) {
                a[j] = expf(a[j] - mx);
                sum += a[j];
            }
            float is = 1.0f / sum;
            float wb[RS_SEQ_NB] = {0};
            memset(c, 0, sizeof(float) * (size_t)d);
            for (int j = 0; j < n; j++) {
                a[j] *= is;
                int sl = (rw->h.start + j) % rw->h.cap;
                const float *vj = rw->h.kv + (size_t)sl * s->stride + (size_t)l * 2 * d + d;
                int ib;
                float f;
                ib = rs->gib[(size_t)r * s->L + j];
                f = rs->gf[(size_t)r * s->L + j];
                wb[ib] += a[j] * (1.0f - f);
                if (f > 0) wb[ib + 1] += a[j] * f;
                rs_axpy(a[j], vj, c, d);
            }
            a[n] *= is;
            wb[0] += a[n];
            rs_axpy(a[n], q + 2 * d, c, d);
            for (int b = 0; b < RS_SEQ_NB; b++)
                if (wb[b] != 0) rs_axpy(wb[b], TV + (size_t)b * d, c, d);
        }
        /* x1 = xin + ctx Wo^T */
        memcpy(x1, xin, sizeof(float) * (size_t)nb * d);
        rs_seq_gemm(s, nb, d, d, ctx, d, P + s->o_wo[l], d, 1.0f, x1, d);
        /* gate: gp [nb][E] = softmax(x1 Wg^T), top-k */
        rs_seq_gemm(s, nb, E, d, x1, d, P + s->o_wg[l], d, 0.0f, gp, E);
        memset(rs->gn, 0, sizeof(int) * (size_t)E);
        for (int r = 0; r < nb; r++) {
            float *pr = gp + (size_t)r * E;
            float mx = pr[0];
            for (int e = 1; e < E; e++) mx = pr[e] > mx ? pr[e] : mx;
            float sum = 0;
            for (int e = 0; e < E; e++) {
                pr[e] = expf(pr[e] - mx);
                sum += pr[e];
            }
            for (int e = 0; e < E; e++) pr[e] /= sum;
            int *sr = sel + (size_t)r * k;
            float *wr = gw + (size_t)r * k;
            float ws = 0;
            for (int t = 0; t < k; t++) { /* ties: the lower index wins */
                int best = -1;
                for (int e = 0; e < E; e++) {
                    int used = 0;
                    for (int u = 0; u < t; u++) used |= sr[u] == e;
                    if (!used && (best < 0 || pr[e] > pr[best])) best = e;
                }
                sr[t] = best;
                wr[t] = pr[best];
                ws += pr[best];
                rs->gidx[(size_t)best * B * k + rs->gn[best]++] = r * k + t;
            }
            for (int t = 0; t < k; t++) wr[t] /= ws;
        }
        /* experts, grouped: Hg = relu(G W1^T + b1), Yg = Hg W2^T + b2 */
        for (int e = 0; e < E; e++) {
            int ne = rs->gn[e];
            if (!ne) continue;
            const int *gi = rs->gidx + (size_t)e * B * k;
            const float *W1 = P + s->o_ex[l] + (size_t)e * s->pe;
            const float *b1 = W1 + (size_t)H * d, *W2 = b1 + H,
                        *b2 = W2 + (size_t)d * H;
            for (int i = 0; i < ne; i++)
                memcpy(rs->G + (size_t)i * d, x1 + (size_t)(gi[i] / k) * d,
                       sizeof(float) * (size_t)d);
            rs_seq_gemm(s, ne, H, d, rs->G, d, W1, d, 0.0f, rs->Hg, H);
            for (int i = 0; i < ne; i++) {
                float *h = rs->Hg + (size_t)i * H;
                for (int j = 0; j < H; j++) {
                    float v = h[j] + b1[j];
                    h[j] = v > 0 ? v : 0.0f;
                }
                memcpy(hid + (size_t)gi[i] * H, h, sizeof(float) * (size_t)H);
            }
            rs_seq_gemm(s, ne, d, H, rs->Hg, H, W2, H, 0.0f, rs->Yg, d);
            for (int i = 0; i < ne; i++) {
                float *y = yex + (size_t)gi[i] * d;
                const float *yg = rs->Yg + (size_t)i * d;
                for (int j = 0; j < d; j++) y[j] = yg[j] + b2[j];
            }
        }
        /* x = x1 + sum_t w_t y_t (slot order: independent of grouping) */
        for (int r = 0; r < nb; r++) {
            float *xo = xnext + (size_t)r * d;
            memcpy(xo, x1 + (size_t)r * d, sizeof(float) * (size_t)d);
            for (int t = 0; t < k; t++)
                rs_axpy(gw[(size_t)r * k + t], yex + ((size_t)r * k + t) * d, xo, d);
        }
    }
    for (int r = 0; r < nb; r++)
        rs->logit[r] = rs_dot(rs->xout + (size_t)r * d, P + s->o_wh, d) + P[s->o_bh];
}

/* ----------------------------------------------------------- backward */

/* Backward of row r from d loss / d logit = dlogit.  train 0: only
 * d / d u into rs->du (explanations).  train 2: also every parameter
 * gradient into s->g (whose touched regions the caller zeroed) with the
 * load-balancing term.  train 1 (low drift): only head and gate gradients,
 * stopping below the lowest gate (rs->du is then not computed). */
RS_HOT
static void rs_seq_backward(rs_seq_t *s, rs_seq_run_t *rs, int r, float dlogit,
                            int train) {
    const int d = s->d, din = s->din, E = s->E, k = s->k, H = s->H,
              L1 = s->L + 1, B = rs->cap;
    const float *P = rs->P;
    float *G = s->g;
    const float isq = 1.0f / sqrtf((float)d);
    const rs_seq_row_t *rw = &rs->row[r];
    float *dx = rs->dx, *dx1 = rs->dx1, *dc = rs->dc, *dqkv = rs->dqkv;
    const int full = train >= 2;

    for (int i = 0; i < d; i++) dx[i] = dlogit * P[s->o_wh + i];
    if (train) {
        rs_axpy(dlogit, rs->xout + (size_t)r * d, G + s->o_wh, d);
        G[s->o_bh] += dlogit;
    }
    for (int l = s->nl - 1; l >= 0; l--) {
        const float *xin = rs->xin + ((size_t)l * B + r) * d;
        const float *qkv = rs->qkv + ((size_t)l * B + r) * 3 * d;
        const float *a = rs->att + ((size_t)l * B + r) * L1;
        const float *ctx = rs->ctx + ((size_t)l * B + r) * d;
        const float *x1 = rs->x1 + ((size_t)l * B + r) * d;
        const float *gp = rs->gp + ((size_t)l * B + r) * E;
        const int *sel = rs->sel + ((size_t)l * B + r) * k;
        const float *gw = rs->gw + ((size_t)l * B + r) * k;
        const float *hid = rs->hid + ((size_t)l * B + r) * k * H;
        const float *yex = rs->yex + ((size_t)l * B + r) * k * d;

        /* MoE: x = x1 + sum_t w_t y_t */
        memcpy(dx1, dx, sizeof(float) * (size_t)d);
        float dgw[RS_SEQ_MAX_K], sdw = 0;
        for (int t = 0; t < k; t++) {
            const int e = sel[t];
            const float *y = yex + (size_t)t * d, *h = hid + (size_t)t * H;
            const size_t eo = s->o_ex[l] + (size_t)e * s->pe;
            const float *W1 = P + eo, *W2 = W1 + (size_t)H * d + H;
            dgw[t] = rs_dot(dx, y, d);
            sdw += gw[t] * dgw[t];
            float *dy = rs->dy, *dh = rs->dh;
            for (int i = 0; i < d; i++) dy[i] = gw[t] * dx[i];
            /* dh = W2^T dy masked by relu; W2 [d][H] */
            memset(dh, 0, sizeof(float) * (size_t)H);
            for (int i = 0; i < d; i++) rs_axpy(dy[i], W2 + (size_t)i * H, dh, H);
            for (int j = 0; j < H; j++) dh[j] = h[j] > 0 ? dh[j] : 0.0f;
            if (full) {
                float *gW1 = G + eo, *gb1 = gW1 + (size_t)H * d, *gW2 = gb1 + H,
                      *gb2 = gW2 + (size_t)d * H;
                for (int i = 0; i < d; i++) {
                    rs_axpy(dy[i], h, gW2 + (size_t)i * H, H);
                    gb2[i] += dy[i];
                }
                for (int j = 0; j < H; j++) {
                    if (dh[j] == 0.0f) continue; /* relu off: adds nothing */
                    rs_axpy(dh[j], x1, gW1 + (size_t)j * d, d);
                    gb1[j] += dh[j];
                }
            }
            /* about half the hidden units are off (relu): skip them */
            for (int j = 0; j < H; j++)
                if (dh[j] != 0.0f) rs_axpy(dh[j], W1 + (size_t)j * d, dx1, d);
        }
        /* gate: w = softmax over the selected logits; + balance term */
        float *dr = rs->dr;
        memset(dr, 0, sizeof(float) * (size_t)E);
        for (int t = 0; t < k; t++) dr[sel[t]] = gw[t] * (dgw[t] - sdw);
        if (train && s->conf.seq.balance > 0) {
            const float *f = s->fbal + (size_t)l * E;
            float fp = 0;
            for (int e = 0; e < E; e++) fp += f[e] * gp[e];
            float cb = (float)s->conf.seq.balance * (float)E;
            for (int e = 0; e < E; e++) dr[e] += cb * gp[e] * (f[e] - fp);
        }
        for (int e = 0; e < E; e++) {
            if (dr[e] == 0) continue;
            rs_axpy(dr[e], P + s->o_wg[l] + (size_t)e * d, dx1, d);
            if (train) rs_axpy(dr[e], x1, G + s->o_wg[l] + (size_t)e * d, d);
        }
        if (train == 1 && l == 0) return; /* head + gates only */
        /* x1 = xin + Wo ctx: dc = Wo^T dx1, dx = dx1 */
        const float *Wo = P + s->o_wo[l];
        memset(dc, 0, sizeof(float) * (size_t)d);
        for (int i = 0; i < d; i++) rs_axpy(dx1[i], Wo + (size_t)i * d, dc, d);
        if (full)
            for (int i = 0; i < d; i++)
                rs_axpy(dx1[i], ctx, G + s->o_wo[l] + (size_t)i * d, d);
        memcpy(dx, dx1, sizeof(float) * (size_t)d);

        /* attention over the (constant) cache and the event itself */
        const int n = rw->h.n;
        const float *q = qkv, *ks = qkv + d, *vs = qkv + 2 * d;
        const float *tb = P + s->o_tb[l], *TV = P + s->o_tv[l];
        RS_UNUSED(tb);
        for (int b = 0; b < RS_SEQ_NB; b++) rs->tvd[b] = rs_dot(dc, TV + (size_t)b * d, d);
        float *da = rs->da, sa = 0;
        for (int j = 0; j < n; j++) {
            int sl = (rw->h.start + j) % rw->h.cap;
            const float *vj = rw->h.kv + (size_t)sl * s->stride + (size_t)l * 2 * d + d;
            int ib;
            float f;
            ib = rs->gib[(size_t)r * s->L + j];
            f = rs->gf[(size_t)r * s->L + j];
            da[j] = rs_dot(dc, vj, d) + rs->tvd[ib] * (1.0f - f) +
                    (f > 0 ? rs->tvd[ib + 1] * f : 0.0f);
            sa += a[j] * da[j];
        }
        da[n] = rs_dot(dc, vs, d) + rs->tvd[0];
        sa += a[n] * da[n];
        float *dq = dqkv, *dk = dqkv + d, *dv = dqkv + 2 * d;
        memset(dqkv, 0, sizeof(float) * 3 * (size_t)d);
        float wb[RS_SEQ_NB] = {0};
        for (int j = 0; j < n; j++) {
            int sl = (rw->h.start + j) % rw->h.cap;
            const float *kj = rw->h.kv + (size_t)sl * s->stride + (size_t)l * 2 * d;
            float ds = a[j] * (da[j] - sa);
            rs_axpy(ds * isq, kj, dq, d);
            if (full) { /* replay view: start 0, k/v recomputed from xin */
                for (int i = 0; i < d; i++) {
                    rs->dK[(size_t)j * d + i] = ds * isq * q[i];
                    rs->dV[(size_t)j * d + i] = a[j] * dc[i];
                }
                int ib;
                float f;
                ib = rs->gib[(size_t)r * s->L + j];
                f = rs->gf[(size_t)r * s->L + j];
                G[s->o_tb[l] + ib] += ds * (1.0f - f);
                G[s->o_tb[l] + RS_SEQ_NB + n - 1 - j] += ds;
                wb[ib] += a[j] * (1.0f - f);
                if (f > 0) {
                    G[s->o_tb[l] + ib + 1] += ds * f;
                    wb[ib + 1] += a[j] * f;
                }
            }
        }
        float dss = a[n] * (da[n] - sa);
        rs_axpy(dss * isq, ks, dq, d);
        for (int i = 0; i < d; i++) {
            dk[i] = dss * isq * q[i];
            dv[i] = a[n] * dc[i];
        }
        if (full && n > 0) {
            /* Wk, Wv through the history: g += dK^T Xin, dV^T Xin */
            const float *X = rw->h.xin + (size_t)l * d;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0f,
                        rs->dK, d, X, s->pstride, 1.0f,
                        G + s->o_qkv[l] + (size_t)d * d, d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0f,
                        rs->dV, d, X, s->pstride, 1.0f,
                        G + s->o_qkv[l] + 2 * (size_t)d * d, d);
        }
        if (full) {
            G[s->o_tb[l]] += dss;
            wb[0] += a[n];
            for (int b = 0; b < RS_SEQ_NB; b++)
                if (wb[b] != 0) rs_axpy(wb[b], dc, G + s->o_tv[l] + (size_t)b * d, d);
        }
        const float *Wqkv = P + s->o_qkv[l];
        for (int i = 0; i < 3 * d; i++) {
            rs_axpy(dqkv[i], Wqkv + (size_t)i * d, dx, d);
            if (full) rs_axpy(dqkv[i], xin, G + s->o_qkv[l] + (size_t)i * d, d);
        }
    }
    /* x0 = softsign(e): dx0/de = (1 - |x0|)^2 */
    const float *x0 = rs->xin + (size_t)r * d;
    for (int i = 0; i < d; i++) {
        float g = 1.0f - fabsf(x0[i]);
        dx[i] *= g * g;
    }
    const float *u = rs->u + (size_t)r * din;
    memset(rs->du, 0, sizeof(float) * (size_t)din);
    for (int i = 0; i < d; i++) {
        rs_axpy(dx[i], P + s->o_win + (size_t)i * din, rs->du, din);
        if (full) rs_axpy(dx[i], u, G + s->o_win + (size_t)i * din, din);
    }
    if (full) {
        rs_axpy(1.0f, dx, G + s->o_bin, d);
        if (rw->cp) rs_axpy(1.0f, dx, G + rs_seq_ecp_row(s, rw->cp), d);
        for (int c = 0; c < rw->n_cat; c++)
            rs_axpy(1.0f, dx, G + rs_seq_ecat_row(s, rw->cat[c]), d);
    }
}

/* ------------------------------------------------------ entity caches */

static void rs_seq_lru_unlink(rs_seq_t *s, uint32_t i) {
    rs_seq_ent_t *e = &s->ent[i];
    if (e->prev >= 0) s->ent[e->prev].next = e->next; else s->lru_head = e->next;
    if (e->next >= 0) s->ent[e->next].prev = e->prev; else s->lru_tail = e->prev;
    e->prev = e->next = -1;
}

static void rs_seq_lru_front(rs_seq_t *s, uint32_t i) {
    rs_seq_ent_t *e = &s->ent[i];
    e->prev = -1;
    e->next = s->lru_head;
    if (s->lru_head >= 0) s->ent[s->lru_head].prev = (int32_t)i;
    s->lru_head = (int32_t)i;
    if (s->lru_tail < 0) s->lru_tail = (int32_t)i;
}

static uint64_t rs_seq_ent_key(const void *s, uint32_t i) {
    return ((const rs_seq_t *)s)->ent[i].key;
}

static int64_t rs_seq_ent_pos(const rs_seq_t *s, uint64_t key) {
    return rs_idx_pos(s->eindex, s->emask, key, rs_seq_ent_key, s);
}

static void rs_seq_ent_unindex(rs_seq_t *s, uint32_t i) {
    rs_idx_unindex(s->eindex, s->emask, i, rs_seq_ent_key, s);
}

/* Slot of `key`, created (evicting the LRU entity if full) when absent. */
static uint32_t rs_seq_ent_get(rs_seq_t *s, uint64_t key, uint32_t *flags) {
    int64_t pos = rs_seq_ent_pos(s, key);
    if (pos >= 0) {
        uint32_t i = s->eindex[pos] - 1;
        rs_seq_lru_unlink(s, i);
        rs_seq_lru_front(s, i);
        if (!s->ent[i].n) *flags |= RS_MODEL_OUT_NEW_ENTITY;
        return i;
    }
    uint32_t i;
    if (s->eused < s->ecap) {
        i = s->eused++;
    } else {
        i = (uint32_t)s->lru_tail;
        if (s->gone_cap) { /* changelog hook: a tombstone for it */
            int32_t gp = rs_seq_ent_part(s, i);
            if (gp >= 0 && s->ngone < s->gone_cap) {
                s->gone_key[s->ngone] = s->ent[i].key;
                s->gone_part[s->ngone++] = gp;
            } else if (gp >= 0) {
                s->gone_lost++;
            }
        }
        rs_seq_ent_unindex(s, (uint32_t)rs_seq_ent_pos(s, s->ent[i].key));
        rs_seq_lru_unlink(s, i);
        s->evictions++;
        *flags |= RS_MODEL_OUT_EVICTED;
    }
    rs_seq_ent_t *e = &s->ent[i];
    memset(e, 0, sizeof(*e));
    e->key = key;
    rs_idx_insert(s->eindex, s->emask, key, i);
    rs_seq_lru_front(s, i);
    *flags |= RS_MODEL_OUT_NEW_ENTITY;
    return i;
}

static rs_seq_view_t rs_seq_ent_view(const rs_seq_t *s, uint32_t i) {
    const rs_seq_ent_t *e = &s->ent[i];
    rs_seq_view_t v;
    v.kv = s->ekv + (size_t)i * s->L * s->stride;
    v.xin = NULL;
    v.t = s->et + (size_t)i * s->L;
    v.n = (int)e->n;
    v.cap = s->L;
    v.start = (int)((e->head + (uint32_t)s->L - e->n) % (uint32_t)s->L);
    return v;
}

/* Append row r's K/V (every layer) and meta to entity i's ring. */
static void rs_seq_ent_append(rs_seq_t *s, uint32_t i, const rs_seq_run_t *rs,
                              int r, const rs_model_input_t *in,
                              uint64_t lpos1) {
    rs_seq_ent_t *e = &s->ent[i];
    const int d = s->d;
    size_t slot = (size_t)i * s->L + e->head;
    float *kv = s->ekv + slot * s->stride;
    for (int l = 0; l < s->nl; l++)
        memcpy(kv + (size_t)l * 2 * d,
               rs->qkv + ((size_t)l * rs->cap + r) * 3 * d + d,
               sizeof(float) * 2 * (size_t)d);
    s->et[slot] = in->event_time_ms;
    s->elpos[slot] = lpos1; /* learning-log position + 1, 0 = none */
    rs_seq_meta_t *m = &s->emeta[slot];
    m->amount = in->amount;
    rs_strlcpy(m->id, in->event_id, sizeof(m->id));
    rs_strlcpy(m->cp, in->counterparty_id ? in->counterparty_id : "",
               sizeof(m->cp));
    e->head = (e->head + 1) % (uint32_t)s->L;
    if (e->n < (uint32_t)s->L) e->n++;
}

/* ---------------------------------------------------- learning records */

/* Body after the 48-byte header (model.h "learning records"):
 *   48 f32 gap input | 52 u8 n_cat, 3 pad | 56 u64 counterparty hash |
 *   64 u64 cat[RS_MAX_CATEG] | 192 f32 x[dim] */
#define RS_SEQ_LR_GAP  48
#define RS_SEQ_LR_NCAT 52
#define RS_SEQ_LR_CP   56
#define RS_SEQ_LR_CAT  64
#define RS_SEQ_LR_X    (RS_SEQ_LR_CAT + 8 * RS_MAX_CATEG)

uint64_t rs_seq_conf_entity_bytes(const rs_model_conf_t *conf) {
    const uint64_t L = (uint64_t)conf->seq.history,
                   stride = (uint64_t)conf->seq.layers * 2 *
                            (uint64_t)conf->seq.d_model;
    /* as rs_seq_stats: cache, its index slots, times and metadata */
    return sizeof(rs_seq_ent_t) + 2 * sizeof(uint32_t) +
           L * (sizeof(float) * stride + 2 * sizeof(int64_t) +
                sizeof(rs_seq_meta_t));
}

size_t rs_seq_lrec_size(const rs_seq_t *s) {
    return (RS_SEQ_LR_X + 4 * (size_t)s->dim + 7) & ~(size_t)7;
}

/* Write the learning record of row rw (entity slot ent, scored `score`,
 * u's gap input `gap`) into in->lrec. */
static void rs_seq_lrec_write(const rs_seq_t *s, const rs_seq_row_t *rw,
                              uint32_t ent, const rs_model_input_t *in,
                              float score, float gap) {
    const size_t size = rs_seq_lrec_size(s);
    uint8_t *r = in->lrec;
    memset(r, 0, size);
    rs_lrec_hdr_t *h = (rs_lrec_hdr_t *)(void *)r;
    h->id = rs_hash_str(in->event_id);
    h->entity = rs_hash_str(in->entity_id);
    h->t = in->event_time_ms;
    if (rw->h.n > 0 && ent != RS_SEQ_NO_ENT)
        h->prev = s->elpos[(size_t)ent * s->L +
                           (size_t)((rw->h.start + rw->h.n - 1) % rw->h.cap)];
    h->score = score;
    h->kind = RS_MODEL_SEQ;
    h->hist = (uint16_t)rw->h.n;
    rs_le_putf32s(r + RS_SEQ_LR_GAP, &gap, 1);
    r[RS_SEQ_LR_NCAT] = (uint8_t)rw->n_cat;
    rs_le_put64(r + RS_SEQ_LR_CP, rw->cp);
    for (int c = 0; c < rw->n_cat; c++)
        rs_le_put64(r + RS_SEQ_LR_CAT + 8 * c, rw->cat[c]);
    rs_le_putf32s(r + RS_SEQ_LR_X, rw->x, (size_t)s->dim);
    rs_lrec_seal(r, size);
}

/* A record of this model: kind, checksum, counts. */
static rs_err_t rs_seq_lrec_check(const rs_seq_t *s, const uint8_t *r) {
    const rs_lrec_hdr_t *h = (const rs_lrec_hdr_t *)(const void *)r;
    if (h->kind != RS_MODEL_SEQ) return RS_ERR_INVALID;
    if (h->sum != rs_lrec_sum(r, rs_seq_lrec_size(s))) return RS_ERR_CORRUPT;
    if (r[RS_SEQ_LR_NCAT] > RS_MAX_CATEG || h->hist > (uint16_t)s->L)
        return RS_ERR_CORRUPT;
    return RS_OK;
}

/* Record r into the replay scratch: the event itself (j < 0) or history
 * event j. */
static void rs_seq_lrec_load(rs_seq_t *s, const uint8_t *r, int j) {
    const rs_lrec_hdr_t *h = (const rs_lrec_hdr_t *)(const void *)r;
    const int nc = r[RS_SEQ_LR_NCAT];
    uint64_t *cat = j < 0 ? s->tcat : s->hcat + (size_t)j * RS_MAX_CATEG;
    for (int c = 0; c < nc; c++) cat[c] = rs_le_get64(r + RS_SEQ_LR_CAT + 8 * c);
    float *x = j < 0 ? s->tx : s->hx + (size_t)j * s->dim;
    rs_le_getf32s(r + RS_SEQ_LR_X, x, (size_t)s->dim);
    if (j < 0) {
        s->tt = h->t;
        s->tcp = rs_le_get64(r + RS_SEQ_LR_CP);
        s->tncat = nc;
        return;
    }
    s->ht[j] = h->t;
    s->hcp[j] = rs_le_get64(r + RS_SEQ_LR_CP);
    s->hncat[j] = nc;
    rs_le_getf32s(r + RS_SEQ_LR_GAP, &s->hgap[j], 1);
    s->hn[j] = rs_seq_n_in(s, h->hist);
}

void rs_seq_lrec_x(const rs_seq_t *s, const void *rec, float *x) {
    rs_le_getf32s((const uint8_t *)rec + RS_SEQ_LR_X, x, (size_t)s->dim);
}

void rs_seq_observe(rs_seq_t *s, const void *rec) {
    const uint8_t *r = rec;
    const rs_lrec_hdr_t *h = rec;
    if (h->kind != RS_MODEL_SEQ) return;
    rs_le_getf32s(r + RS_SEQ_LR_X, s->xx, (size_t)s->dim);
    rs_std_observe(s->mean, s->m2, &s->nobs, &s->std_tlast, s->dim, s->xx,
                   h->t, s->conf.std_window, s->conf.transform);
    rs_seq_refresh_std(s);
}

/* The rebuilt history's layer inputs (s->hxin) and keys/values (tr->hist)
 * at the current weights and standardiser.  One layer: every event's x0
 * from its own record (one GEMM), then k, v.  Deeper: causally, event j
 * attending over events 0..j-1 of the rebuilt history (its own older
 * history is not rebuilt: the price of storing references, not
 * activations). */
static void rs_seq_hist_rebuild(rs_seq_t *s, int nh) {
    const int d = s->d, din = s->din, dim = s->dim;
    rs_seq_run_t *tr = &s->tr;
    if (nh <= 0) return;
    if (s->nl > 1) {
        rs_seq_row_t *rw = &tr->row[0];
        tr->P = s->p;
        tr->mu = s->mu;
        tr->istd = s->istd;
        for (int j = 0; j < nh; j++) {
            rw->x = s->hx + (size_t)j * dim;
            rw->t = s->ht[j];
            rw->cp = s->hcp[j];
            rw->n_cat = s->hncat[j];
            rw->cat = s->hcat + (size_t)j * RS_MAX_CATEG;
            rw->h = (rs_seq_view_t){.kv = tr->hist, .xin = NULL, .t = s->ht,
                                    .n = j, .start = 0, .cap = s->L};
            rw->xset = 1;
            rw->xgap = s->hgap[j];
            rw->xn = s->hn[j];
            rs_seq_run(s, tr, 1);
            for (int l = 0; l < s->nl; l++) {
                memcpy(s->hxin + (size_t)j * s->pstride + (size_t)l * d,
                       tr->xin + (size_t)l * d, sizeof(float) * (size_t)d);
                memcpy(tr->hist + (size_t)j * s->stride + (size_t)l * 2 * d,
                       tr->qkv + (size_t)l * 3 * d + d,
                       sizeof(float) * 2 * (size_t)d);
            }
        }
        return;
    }
    for (int j = 0; j < nh; j++) {
        const float *x = s->hx + (size_t)j * dim;
        float *u = s->hu + (size_t)j * din;
        for (int i = 0; i < dim; i++) {
            float v = isfinite(x[i])
                          ? (rs_std_g(s->conf.transform, x[i]) - s->mu[i]) *
                                s->istd[i]
                          : 0.0f;
            u[i] = v > RS_MODEL_Z_CLIP ? RS_MODEL_Z_CLIP
                 : v < -RS_MODEL_Z_CLIP ? -RS_MODEL_Z_CLIP : v;
        }
        u[dim] = s->hgap[j];
        u[dim + 1] = s->hn[j];
    }
    rs_seq_gemm(s, nh, d, din, s->hu, din, s->p + s->o_win, din, 0.0f,
                s->hxin, s->pstride);
    for (int j = 0; j < nh; j++) {
        float *e = s->hxin + (size_t)j * s->pstride;
        rs_axpy(1.0f, s->p + s->o_bin, e, d);
        if (s->hcp[j]) rs_axpy(1.0f, s->p + rs_seq_ecp_row(s, s->hcp[j]), e, d);
        for (int c = 0; c < s->hncat[j]; c++)
            rs_axpy(1.0f,
                    s->p + rs_seq_ecat_row(s, s->hcat[(size_t)j * RS_MAX_CATEG + c]),
                    e, d);
        for (int i = 0; i < d; i++) e[i] = e[i] / (1.0f + fabsf(e[i]));
    }
    /* hist[j] = [xin_j Wk^T, xin_j Wv^T] (training only: OpenBLAS) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nh, 2 * d, d, 1.0f,
                s->hxin, s->pstride, s->p + s->o_qkv[0] + (size_t)d * d, d,
                0.0f, tr->hist, s->stride);
}

/* The replay row of the loaded event over its rebuilt history. */
static void rs_seq_replay_row(rs_seq_t *s, int nh) {
    rs_seq_run_t *tr = &s->tr;
    rs_seq_row_t *rw = &tr->row[0];
    rw->x = s->tx;
    rw->t = s->tt;
    rw->cp = s->tcp;
    rw->n_cat = s->tncat;
    rw->cat = s->tcat;
    rw->h = (rs_seq_view_t){.kv = tr->hist, .xin = s->hxin, .t = s->ht,
                            .n = nh, .start = 0, .cap = s->L};
    rw->xset = 0;
}

/* -------------------------------------------------------------- drift */

static int rs_seq_psi_bin(float logit) {
    static const float edges[RS_SEQ_PSI_BINS - 1] = {-6.0f, -4.5f, -3.5f,
                                                     -2.5f, -1.5f, -0.5f,
                                                     0.5f,  1.5f,  3.0f};
    int b = 0;
    while (b < RS_SEQ_PSI_BINS - 1 && logit >= edges[b]) b++;
    return b;
}

/* One score (its PSI bin b) into the drift window. */
static void rs_seq_drift_bin(rs_seq_t *s, int b) {
    s->dcur[b]++;
    if (++s->dcur_n < (uint64_t)s->conf.seq.drift_window) return;
    if (s->dref_ok) {
        double nr = 0, nc = 0, psi = 0;
        for (int b = 0; b < RS_SEQ_PSI_BINS; b++) {
            nr += (double)s->dref[b] + 0.5;
            nc += (double)s->dcur[b] + 0.5;
        }
        for (int b = 0; b < RS_SEQ_PSI_BINS; b++) {
            double pr = ((double)s->dref[b] + 0.5) / nr;
            double pc = ((double)s->dcur[b] + 0.5) / nc;
            psi += (pc - pr) * log(pc / pr);
        }
        s->psi = psi;
    }
    memcpy(s->dref, s->dcur, sizeof(s->dref));
    memset(s->dcur, 0, sizeof(s->dcur));
    s->dcur_n = 0;
    s->dref_ok = 1;
}

static void rs_seq_drift_add(rs_seq_t *s, float logit) {
    rs_seq_drift_bin(s, rs_seq_psi_bin(logit));
}

static int rs_seq_all_layers(const rs_seq_t *s) {
    switch (s->conf.seq.drift_mode) {
    case 1: return 1;
    case 2: return 0;
    default:
        return s->updates < (uint64_t)s->conf.seq.warmup_updates ||
               s->psi > s->conf.seq.drift_threshold;
    }
}

/* Entity slot of a what-if row whose entity has no cache (nothing of the
 * model is created for it). */

/* ---------------------------------------------------------- input logs */

static size_t rs_seq_log_body_max(const rs_seq_t *s) {
    return 7 * 4 + 8 + 8 + 4 + 4 + 8 * (size_t)RS_MAX_CATEG +
           4 * (size_t)s->dim + (size_t)s->L * (8 + 4 * (size_t)s->stride);
}

size_t rs_seq_log_max(const rs_seq_t *s) {
    return RS_MODEL_LOG_HDR + rs_seq_log_body_max(s) + RS_MODEL_LOG_TRAILER;
}

/* Write what rs_seq_run read for row rw into log (room checked by the
 * caller); returns its length.  Layout in model.h. */
static size_t rs_seq_log_write(const rs_seq_t *s, const rs_seq_row_t *rw,
                               uint8_t *log) {
    const rs_seq_conf_t *c = &s->conf.seq;
    const int64_t a[7] = {c->d_model, c->history, c->layers, c->experts,
                          c->top_k, c->expert_hidden, c->buckets};
    uint8_t *p = log + RS_MODEL_LOG_HDR;
    for (int i = 0; i < 7; i++) p = rs_le_put32(p, (uint32_t)a[i]);
    p = rs_le_put64(p, (uint64_t)rw->t);
    p = rs_le_put64(p, rw->cp);
    p = rs_le_put32(p, (uint32_t)rw->n_cat);
    p = rs_le_put32(p, (uint32_t)rw->h.n);
    for (int i = 0; i < rw->n_cat; i++) p = rs_le_put64(p, rw->cat[i]);
    p = rs_le_putf32s(p, rw->x, (size_t)s->dim);
    for (int j = 0; j < rw->h.n; j++) { /* oldest first */
        int sl = (rw->h.start + j) % rw->h.cap;
        p = rs_le_put64(p, (uint64_t)rw->h.t[sl]);
        p = rs_le_putf32s(p, rw->h.kv + (size_t)sl * s->stride,
                          (size_t)s->stride);
    }
    size_t body = (size_t)(p - log) - RS_MODEL_LOG_HDR;
    rs_model_log_hdr(log, RS_MODEL_SEQ, c->gemm == 1 ? RS_MODEL_LOG_BLAS : 0,
                     rs_seq_arch_hash(s), s->names_hash, (uint32_t)s->dim,
                     (uint32_t)body);
    rs_le_put32(p, rs_model_log_sum(log, (size_t)(p - log)));
    return (size_t)(p - log) + RS_MODEL_LOG_TRAILER;
}

/* ------------------------------------------------------------ scoring */

/* Outputs, contributions, logs, memory and cache appends of a sub-batch
 * (with RS_MODEL_FWD_DRY: outputs and logs only) in run state rs, row r
 * being input rowin[r] of entity slot rowent[r].  bins NULL: each score
 * enters the drift window here; else its PSI bin goes to bins[ii - bin0]
 * (a shard lane: the window takes them in input order afterwards). */
static void rs_seq_flush_rows(rs_seq_t *s, rs_seq_run_t *rs,
                              const uint32_t *rowent, const int *rowin,
                              uint8_t *bins, int bin0,
                              const rs_model_input_t *in, int nb,
                              rs_model_output_t *out, float *contrib,
                              unsigned flags) {
    if (!nb) return;
    const int L1 = s->L + 1, B = rs->cap, k = s->k, dim = s->dim;
    const int dry = (flags & RS_MODEL_FWD_DRY) != 0;
    if (s->wuse) {
        rs->P = s->wuse->p;
        rs->mu = s->wuse->mu;
        rs->istd = s->wuse->istd;
    } else {
        rs->P = s->p;
        rs->mu = s->mu;
        rs->istd = s->istd;
    }
    rs_seq_run(s, rs, nb);
    for (int r = 0; r < nb; r++) {
        const int ii = rowin[r];
        const rs_seq_row_t *rw = &rs->row[r];
        rs_model_output_t *o = &out[ii];
        if ((flags & RS_MODEL_FWD_EXPLAIN) && r + 4 < nb &&
            rowent[r + 4] != RS_SEQ_NO_ENT)
            rs_prefetch(s->emeta + (size_t)rowent[r + 4] * s->L,
                        sizeof(rs_seq_meta_t) * (size_t)s->L);
        o->score = (float)rs_sigm((double)rs->logit[r]);
        o->contrib = NULL;
        o->n_attended = 0;
        o->n_experts = 0;
        o->self_weight = 0;
        o->n_hist = rw->h.n;
        o->log_len = 0;
        if (flags & RS_MODEL_FWD_EXPLAIN) {
            /* mean attention over layers, top RS_MODEL_ATTEND_MAX */
            float *w = rs->wexp;
            const int n = rw->h.n;
            for (int j = 0; j <= n; j++) {
                float a = 0;
                for (int l = 0; l < s->nl; l++)
                    a += rs->att[((size_t)l * B + r) * L1 + j];
                w[j] = a / (float)s->nl;
            }
            o->self_weight = w[n];
            /* a what-if row without one cached event: ids, times and
             * ranks are those of the entity's full cache */
            const int skip = s->xskip >= 0 ? s->xskip : n;
            const rs_seq_view_t *hv = s->xskip >= 0 ? &s->xview : &rw->h;
            const int nfull = s->xskip >= 0 ? n + 1 : n;
            int na = RS_MIN(n, RS_MODEL_ATTEND_MAX), named = 0;
            for (int t = 0; t < na; t++, named++) {
                int best = -1; /* newest first on ties */
                for (int j = n - 1; j >= 0; j--)
                    if (w[j] >= 0 && (best < 0 || w[j] > w[best])) best = j;
                if (best < 0) break; /* NaN weights (huge cached k/v or
                                      * diverged weights): none to name */
                int jo = best < skip ? best : best + 1;
                int sl = (hv->start + jo) % hv->cap;
                const rs_seq_meta_t *m =
                    &s->emeta[(size_t)rowent[r] * s->L + sl];
                rs_model_attn_t *at = &o->attended[t];
                memcpy(at->event_id, m->id, sizeof(at->event_id));
                memcpy(at->counterparty_id, m->cp, sizeof(at->counterparty_id));
                at->event_time_ms = hv->t[sl];
                at->amount = m->amount;
                at->weight = w[best];
                at->rank = nfull - 1 - jo;
                w[best] = -1.0f;
            }
            o->n_attended = named;
            for (int l = 0; l < s->nl; l++)
                for (int t = 0; t < k && o->n_experts < RS_MODEL_EXPERTS_MAX; t++) {
                    rs_model_expert_t *ex = &o->experts[o->n_experts++];
                    ex->expert = l * s->E + rs->sel[((size_t)l * B + r) * k + t];
                    ex->gate = rs->gw[((size_t)l * B + r) * k + t];
                }
        }
        if (contrib) {
            rs_seq_backward(s, rs, r, 1.0f, 0);
            float *c = contrib + (size_t)ii * dim;
            const float *u = rs->u + (size_t)r * s->din;
            for (int i = 0; i < dim; i++) c[i] = rs->du[i] * u[i];
            o->contrib = c;
        }
        if (in[ii].log) o->log_len = rs_seq_log_write(s, rw, in[ii].log);
        if (flags & RS_MODEL_FWD_REMEMBER)
            rs_seq_lrec_write(s, rw, rowent[r], &in[ii], o->score,
                              rs->u[(size_t)r * s->din + dim]);
        if (dry) continue;
        if (bins)
            bins[ii - bin0] = (uint8_t)rs_seq_psi_bin(rs->logit[r]);
        else
            rs_seq_drift_add(s, rs->logit[r]);
    }
    if (dry) return;
    const int rem = (flags & RS_MODEL_FWD_REMEMBER) != 0;
    for (int r = 0; r < nb; r++) {
        const rs_model_input_t *ir = &in[rowin[r]];
        rs_seq_ent_append(s, rowent[r], rs, r, ir, rem ? ir->lpos + 1 : 0);
    }
}

static void rs_seq_flush(rs_seq_t *s, const rs_model_input_t *in, int nb,
                         rs_model_output_t *out, float *contrib,
                         unsigned flags) {
    rs_seq_flush_rows(s, &s->rs, s->rowent, s->rowin, NULL, 0, in, nb, out,
                      contrib, flags);
}

/* rs_seq_forward's argument checks (flags: REMEMBER already dropped for
 * a DRY call). */
static rs_err_t rs_seq_check_inputs(const rs_seq_t *s,
                                    const rs_model_input_t *in, int n,
                                    unsigned flags) {
    if (n < 0) return RS_ERR_INVALID;
    const int dry = (flags & RS_MODEL_FWD_DRY) != 0;
    const size_t lmax = rs_seq_log_max(s);
    for (int i = 0; i < n; i++)
        if (!in[i].x || !in[i].event_id || !in[i].entity_id ||
            in[i].n_cat < 0 || in[i].n_cat > RS_MAX_CATEG ||
            in[i].skip_hist < 0 || (in[i].skip_hist && !dry) ||
            (in[i].log && in[i].log_cap < lmax) ||
            ((flags & RS_MODEL_FWD_REMEMBER) && !in[i].lrec))
            return RS_ERR_INVALID;
    return RS_OK;
}

/* Row rw of a sub-batch: input `in` over history view h. */
static void rs_seq_row_set(rs_seq_row_t *rw, const rs_model_input_t *in,
                           rs_seq_view_t h) {
    rw->x = in->x;
    rw->t = in->event_time_ms;
    rw->cp = in->counterparty_id && in->counterparty_id[0]
                 ? rs_hash_str(in->counterparty_id) | 1u
                 : 0;
    rw->n_cat = in->n_cat;
    rw->cat = in->cat_hash;
    rw->h = h;
    rw->xset = 0;
}

rs_err_t rs_seq_forward(rs_seq_t *s, const rs_model_input_t *in, int n,
                        rs_model_output_t *out, float *contrib,
                        unsigned flags) {
    const int dry = (flags & RS_MODEL_FWD_DRY) != 0;
    if (dry) flags &= ~RS_MODEL_FWD_REMEMBER;
    if (rs_seq_check_inputs(s, in, n, flags) != RS_OK) return RS_ERR_INVALID;
    int nb = 0;
    s->stamp++;
    for (int i = 0; i < n; i++) {
        uint64_t key = rs_hash_str(in[i].entity_id);
        int64_t pos = rs_seq_ent_pos(s, key);
        /* a what-if appends nothing: rows of one entity may share a
         * sub-batch */
        if ((!dry && pos >= 0 && s->ent[s->eindex[pos] - 1].stamp == s->stamp) ||
            nb == s->batch_max) {
            rs_seq_flush(s, in, nb, out, contrib, flags);
            nb = 0;
            s->stamp++;
        }
        uint32_t fl = 0, ei;
        rs_seq_view_t h;
        if (!dry) {
            ei = rs_seq_ent_get(s, key, &fl);
            s->ent[ei].stamp = s->stamp;
            h = rs_seq_ent_view(s, ei);
        } else if (pos >= 0) { /* no LRU move */
            ei = s->eindex[pos] - 1;
            h = rs_seq_ent_view(s, ei);
            if (!h.n) fl |= RS_MODEL_OUT_NEW_ENTITY;
        } else {
            ei = RS_SEQ_NO_ENT;
            h = (rs_seq_view_t){.kv = s->ekv, .xin = NULL, .t = s->et,
                                .n = 0, .start = 0, .cap = s->L};
            fl |= RS_MODEL_OUT_NEW_ENTITY;
        }
        out[i].flags = fl;
        /* skip_hist: a sub-batch of its own with a copy of the view
         * without that event (the recency ranks of the older ones and the
         * history length change as if it had never been cached) */
        const int jx = h.n - in[i].skip_hist; /* oldest-first index */
        const int skip = dry && in[i].skip_hist > 0 && jx >= 0;
        if (skip && nb) {
            rs_seq_flush(s, in, nb, out, contrib, flags);
            nb = 0;
            s->stamp++;
        }
        rs_seq_row_t *rw = &s->rs.row[nb];
        rs_seq_row_set(rw, &in[i], h);
        if (skip) {
            int m = 0;
            for (int j = 0; j < h.n; j++) {
                if (j == jx) continue;
                int sl = (h.start + j) % h.cap;
                memcpy(s->xkv + (size_t)m * s->stride,
                       h.kv + (size_t)sl * s->stride,
                       sizeof(float) * (size_t)s->stride);
                s->xt[m++] = h.t[sl];
            }
            s->xview = h;
            s->xskip = jx;
            rw->h = (rs_seq_view_t){.kv = s->xkv, .xin = NULL, .t = s->xt,
                                    .n = m, .start = 0, .cap = s->L};
        }
        s->rowent[nb] = ei;
        s->rowin[nb] = i;
        nb++;
        if (skip) {
            rs_seq_flush(s, in, nb, out, contrib, flags);
            nb = 0;
            s->xskip = -1;
            s->stamp++;
        }
    }
    rs_seq_flush(s, in, nb, out, contrib, flags);
    return RS_OK;
}

/* ---------------------------------------- sharded forward (issue 12.2)
 *
 * rs_seq_forward's work split by entity over lanes (model/shard.h runs
 * them on a pool).  What is per entity -- its cache ring (k/v, times,
 * learning-log positions, explanation meta) and its n/head -- is read and
 * written during a segment by the one lane its key hashes to, in input
 * order; everything shared -- the entity index, the LRU list, slot
 * creation and eviction, stamps, the eviction counter, the drift window --
 * is touched only by the planner (before the lanes run) and by
 * rs_seq_lanes_done (after), both on the caller's thread.  The lanes
 * write only their run state, their rows' outputs, contributions, logs
 * and learning records, and their entities' caches.  So no lock sits on
 * the per-event path.
 *
 * Same results as rs_seq_forward, bit for bit: the LRU moves, creations,
 * evictions and NEW/EVICTED flags are made by the planner in input order
 * exactly as rs_seq_forward makes them; each lane cuts its rows into
 * sub-batches in which no entity repeats (the planner marks the cuts), so
 * a row sees its entity's history as one-by-one calls would; the exact
 * GEMM kernel gives every row the same bits whatever its sub-batch (the
 * "blas" kernel does not: callers keep that one serial, rs_seq_lanes_ok);
 * the drift window takes the scores' bins in input order at the end.  A
 * new entity that would evict one already used in the segment (its rows
 * not yet scored) ends the segment first: the caller runs the lanes and
 * plans the rest (rare: the LRU tail is the entity used longest ago). */

typedef struct rs_seq_lane_s {
    rs_seq_run_t run;     /* lanes >= 1 (lane 0 scores in s->rs)          */
    uint32_t *rowent;     /* [batch_max] entity slot of each row          */
    int *rowin;           /* [batch_max] input index of each row          */
} rs_seq_lane_t;

struct rs_seq_lanes_s {
    rs_seq_t *s;
    int nlanes, max_n;
    rs_seq_lane_t *lane;  /* [nlanes]                                     */
    /* the planned segment: inputs from .. from + n of in */
    const rs_model_input_t *in;
    rs_model_output_t *out;
    float *contrib;
    unsigned flags;
    int from, n, nl;      /* nl: lanes used                               */
    uint32_t *ent;        /* [max_n] entity slot of input from + j        */
    uint8_t *lof;         /* [max_n] its lane                             */
    uint8_t *brk;         /* [max_n] 1: starts a sub-batch of its lane    */
    uint8_t *bin;         /* [max_n] PSI bin of its score (lanes write)   */
    int *order;           /* [max_n] j grouped by lane, input order within */
    int *lo;              /* [nlanes + 1] lane w: order[lo[w] .. lo[w+1]) */
    uint64_t *lst;        /* [nlanes] stamp of the lane's sub-batch       */
    int *lcnt;            /* [nlanes] its rows                            */
};

rs_seq_lanes_t *rs_seq_lanes_new(rs_seq_t *s, int nlanes, int max_n) {
    if (!s || nlanes < 1 || nlanes > 255 || max_n < 1) return NULL;
    rs_seq_lanes_t *pl = rs_calloc(1, sizeof(*pl));
    pl->s = s;
    pl->nlanes = nlanes;
    pl->max_n = max_n;
    pl->lane = rs_calloc((size_t)nlanes, sizeof(*pl->lane));
    for (int w = 1; w < nlanes; w++) {
        rs_seq_run_init(s, &pl->lane[w].run, s->batch_max);
        pl->lane[w].rowent = rs_calloc((size_t)s->batch_max, sizeof(uint32_t));
        pl->lane[w].rowin = rs_calloc((size_t)s->batch_max, sizeof(int));
    }
    pl->ent = rs_calloc((size_t)max_n, sizeof(uint32_t));
    pl->lof = rs_calloc((size_t)max_n, 1);
    pl->brk = rs_calloc((size_t)max_n, 1);
    pl->bin = rs_calloc((size_t)max_n, 1);
    pl->order = rs_calloc((size_t)max_n, sizeof(int));
    pl->lo = rs_calloc((size_t)nlanes + 1, sizeof(int));
    pl->lst = rs_calloc((size_t)nlanes, sizeof(uint64_t));
    pl->lcnt = rs_calloc((size_t)nlanes, sizeof(int));
    return pl;
}

void rs_seq_lanes_destroy(rs_seq_lanes_t *pl) {
    if (!pl) return;
    for (int w = 1; w < pl->nlanes; w++) {
        rs_seq_run_free(&pl->lane[w].run);
        free(pl->lane[w].rowent);
        free(pl->lane[w].rowin);
    }
    free(pl->lane);
    void *ps[] = {pl->ent, pl->lof, pl->brk, pl->bin, pl->order, pl->lo,
                  pl->lst, pl->lcnt};
    for (size_t i = 0; i < RS_ARRAY_LEN(ps); i++) free(ps[i]);
    free(pl);
}

int rs_seq_lanes_ok(const rs_seq_t *s, unsigned flags) {
    return s->conf.seq.gemm == 0 && !(flags & RS_MODEL_FWD_DRY);
}

rs_err_t rs_seq_lanes_check(const rs_seq_t *s, const rs_model_input_t *in,
                            int n, unsigned flags) {
    return rs_seq_check_inputs(s, in, n, flags);
}

int rs_seq_lanes_plan(rs_seq_lanes_t *pl, const rs_model_input_t *in,
                      int from, int n, rs_model_output_t *out,
                      float *contrib, unsigned flags, int nl) {
    rs_seq_t *s = pl->s;
    if (nl < 1) nl = 1;
    if (nl > pl->nlanes) nl = pl->nlanes;
    pl->in = in;
    pl->out = out;
    pl->contrib = contrib;
    pl->flags = flags;
    pl->from = from;
    pl->nl = nl;
    /* every stamp given from here on is >= seg0: "used in this segment" */
    const uint64_t seg0 = s->stamp + 1;
    for (int w = 0; w < nl; w++) {
        pl->lst[w] = ++s->stamp;
        pl->lcnt[w] = 0;
    }
    memset(pl->lo, 0, sizeof(int) * ((size_t)nl + 1));
    int j = 0;
    for (int i = from; i < n && j < pl->max_n; i++, j++) {
        uint64_t key = rs_hash_str(in[i].entity_id);
        int64_t pos = rs_seq_ent_pos(s, key);
        if (pos < 0 && s->eused == s->ecap && s->lru_tail >= 0 &&
            s->ent[s->lru_tail].stamp >= seg0)
            break; /* would evict an entity whose rows are not scored yet */
        const int w = (int)((key >> 32) % (uint64_t)nl);
        const rs_seq_ent_t *e = pos >= 0 ? &s->ent[s->eindex[pos] - 1] : NULL;
        const int seen = e && e->stamp >= seg0;
        pl->brk[j] = 0;
        if ((e && e->stamp == pl->lst[w]) || pl->lcnt[w] == s->batch_max) {
            pl->lst[w] = ++s->stamp; /* a new sub-batch of lane w */
            pl->lcnt[w] = 0;
            pl->brk[j] = 1;
        }
        uint32_t fl = 0;
        uint32_t ei = rs_seq_ent_get(s, key, &fl);
        /* used earlier in the segment: it has history by the time this
         * row is scored (rs_seq_forward would have appended it) */
        if (seen) fl &= ~RS_MODEL_OUT_NEW_ENTITY;
        s->ent[ei].stamp = pl->lst[w];
        out[i].flags = fl;
        pl->ent[j] = ei;
        pl->lof[j] = (uint8_t)w;
        pl->lcnt[w]++;
        pl->lo[w + 1]++;
    }
    pl->n = j;
    for (int w = 0; w < nl; w++) {
        pl->lo[w + 1] += pl->lo[w];
        pl->lcnt[w] = pl->lo[w]; /* now: the fill cursor */
    }
    for (int q = 0; q < j; q++) pl->order[pl->lcnt[pl->lof[q]]++] = q;
    return j;
}

void rs_seq_lanes_run(rs_seq_lanes_t *pl, int w) {
    rs_seq_t *s = pl->s;
    if (w < 0 || w >= pl->nl) return;
    rs_seq_run_t *rs = w ? &pl->lane[w].run : &s->rs;
    uint32_t *rowent = w ? pl->lane[w].rowent : s->rowent;
    int *rowin = w ? pl->lane[w].rowin : s->rowin;
    int nb = 0;
    for (int q = pl->lo[w]; q < pl->lo[w + 1]; q++) {
        const int j = pl->order[q], i = pl->from + j;
        if (pl->brk[j] && nb) {
            rs_seq_flush_rows(s, rs, rowent, rowin, pl->bin, pl->from, pl->in,
                              nb, pl->out, pl->contrib, pl->flags);
            nb = 0;
        }
        rs_seq_row_set(&rs->row[nb], &pl->in[i], rs_seq_ent_view(s, pl->ent[j]));
        rowent[nb] = pl->ent[j];
        rowin[nb] = i;
        nb++;
    }
    rs_seq_flush_rows(s, rs, rowent, rowin, pl->bin, pl->from, pl->in, nb,
                      pl->out, pl->contrib, pl->flags);
}

void rs_seq_lanes_done(rs_seq_lanes_t *pl) {
    for (int j = 0; j < pl->n; j++) rs_seq_drift_bin(pl->s, pl->bin[j]);
}

/* Recompute the score of a logged "seq" body (header checked by
 * rs_model_rescore): the same rs_seq_run as scoring, one row, with the
 * logged history as its view. */
rs_err_t rs_seq_rescore(rs_seq_t *s, const uint8_t *b, size_t len,
                        unsigned log_flags, uint32_t log_arch, float *score,
                        char *errstr, size_t errstr_size) {
    static const char *const an[7] = {"d_model", "history", "layers",
                                      "experts", "top_k", "expert_hidden",
                                      "buckets"};
    const rs_seq_conf_t *c = &s->conf.seq;
    const int64_t a[7] = {c->d_model, c->history, c->layers, c->experts,
                          c->top_k, c->expert_hidden, c->buckets};
    const size_t fixed = 7 * 4 + 8 + 8 + 4 + 4;
    if (len < fixed)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: a seq body of %zu bytes is shorter than "
                       "its fixed part (%zu)", len, fixed);
    for (int i = 0; i < 7; i++) {
        uint32_t v = rs_le_get32(b + 4 * i);
        if ((int64_t)v != a[i])
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "input log from another architecture: seq.%s is "
                           "%u in the log, %lld in this model",
                           an[i], v, (long long)a[i]);
    }
    if (log_arch != rs_seq_arch_hash(s))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "input log from another architecture (hash %08x, "
                       "this model's %08x)",
                       log_arch, rs_seq_arch_hash(s));
    const uint8_t *p = b + 28;
    const int64_t t = (int64_t)rs_le_get64(p);
    const uint64_t cp = rs_le_get64(p + 8);
    const uint32_t ncat = rs_le_get32(p + 16), nh = rs_le_get32(p + 20);
    p += 24;
    if (ncat > RS_MAX_CATEG || nh > (uint32_t)s->L)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: %u categoricals (max %d) or %u history "
                       "events (max %d)", ncat, RS_MAX_CATEG, nh, s->L);
    const size_t want = fixed + 8 * (size_t)ncat + 4 * (size_t)s->dim +
                        (size_t)nh * (8 + 4 * (size_t)s->stride);
    if (len != want)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: a seq body of %zu bytes, its counts need "
                       "%zu", len, want);
    uint64_t cat[RS_MAX_CATEG];
    for (uint32_t i = 0; i < ncat; i++, p += 8) cat[i] = rs_le_get64(p);
    p = rs_le_getf32s(p, s->xx, (size_t)s->dim);
    for (uint32_t j = 0; j < nh; j++) {
        s->xt[j] = (int64_t)rs_le_get64(p);
        p = rs_le_getf32s(p + 8, s->xkv + (size_t)j * s->stride,
                          (size_t)s->stride);
    }
    rs_seq_run_t *tr = &s->tr;
    rs_seq_row_t *rw = &tr->row[0];
    rw->x = s->xx;
    rw->t = t;
    rw->cp = cp;
    rw->n_cat = (int)ncat;
    rw->cat = cat;
    rw->h = (rs_seq_view_t){.kv = s->xkv, .xin = NULL, .t = s->xt,
                            .n = (int)nh, .start = 0, .cap = s->L};
    rw->xset = 0;
    if (s->wuse) {
        tr->P = s->wuse->p;
        tr->mu = s->wuse->mu;
        tr->istd = s->wuse->istd;
    } else {
        tr->P = s->p;
        tr->mu = s->mu;
        tr->istd = s->istd;
    }
    /* the kernel the event was scored with */
    const int gemm = s->conf.seq.gemm;
    s->conf.seq.gemm = (log_flags & RS_MODEL_LOG_BLAS) ? 1 : 0;
    rs_seq_run(s, tr, 1);
    s->conf.seq.gemm = gemm;
    *score = (float)rs_sigm((double)tr->logit[0]);
    return RS_OK;
}

/* ----------------------------------------------------------- learning */

static void rs_seq_reg_add(rs_seq_t *s, size_t off, size_t len) {
    for (int i = 0; i < s->nregs; i++)
        if (s->regs[i].off == off) return;
    s->regs[s->nregs].off = off;
    s->regs[s->nregs].len = len;
    s->nregs++;
}

/* Regions the backward of tr row 0 writes: dense, chosen experts,
 * embedding rows. */
static void rs_seq_regions(rs_seq_t *s) {
    const rs_seq_run_t *tr = &s->tr;
    const rs_seq_row_t *rw = &tr->row[0];
    s->nregs = 0;
    rs_seq_reg_add(s, 0, s->dense_end);
    for (int l = 0; l < s->nl; l++)
        for (int t = 0; t < s->k; t++)
            rs_seq_reg_add(s, s->o_ex[l] + (size_t)tr->sel[(size_t)l * s->k + t] * s->pe,
                           s->pe);
    if (rw->cp) rs_seq_reg_add(s, rs_seq_ecp_row(s, rw->cp), (size_t)s->d);
    for (int c = 0; c < rw->n_cat; c++)
        rs_seq_reg_add(s, rs_seq_ecat_row(s, rw->cat[c]), (size_t)s->d);
}

/* Forward + backward of the replay row (rs_seq_replay_row) at the current
 * weights; returns the loss; gradient in s->g over s->regs.  A correction
 * (RS_MODEL_LEARN_CORRECT) is the positive's loss minus the negative's. */
static double rs_seq_fwd_bwd(rs_seq_t *s, int y, int level,
                             rs_model_learn_t how) {
    rs_seq_run_t *tr = &s->tr;
    tr->P = s->p;
    tr->mu = s->mu;
    tr->istd = s->istd;
    rs_seq_run(s, tr, 1);
    rs_seq_regions(s);
    for (int i = 0; i < s->nregs; i++)
        memset(s->g + s->regs[i].off, 0, sizeof(float) * s->regs[i].len);
    double l = (double)tr->logit[0], loss, dl;
    const double cp = s->conf.pos_weight;
    if (how == RS_MODEL_LEARN_CORRECT) {
        loss = cp * (rs_splus(l) - l) - rs_splus(l);
        dl = cp * (rs_sigm(l) - 1.0) - rs_sigm(l);
    } else {
        double c = y ? cp : 1.0;
        loss = c * (rs_splus(l) - (y ? l : 0.0));
        dl = c * (rs_sigm(l) - (y ? 1.0 : 0.0));
    }
    for (int ly = 0; ly < s->nl; ly++) {
        const float *f = s->fbal + (size_t)ly * s->E;
        const float *gp = tr->gp + (size_t)ly * s->E;
        double fp = 0;
        for (int e = 0; e < s->E; e++) fp += (double)f[e] * gp[e];
        loss += s->conf.seq.balance * s->E * fp;
    }
    if (level) rs_seq_backward(s, tr, 0, (float)dl, level);
    return loss;
}

/* sum of squares, 8 float lanes per region then double */
RS_HOT
static double rs_seq_sumsq(const float *g, size_t len) {
    rs_v8 acc = {0};
    size_t j = 0;
    for (; j + 8 <= len; j += 8) {
        rs_v8 x = rs_ld8(g + j);
        acc += x * x;
    }
    double t = (double)rs_hsum8(acc);
    for (; j < len; j++) t += (double)g[j] * g[j];
    return t;
}

RS_HOT
static void rs_seq_update(rs_seq_t *s, size_t off, size_t len, float scale,
                          float c1, float c2) {
    const float lr = (float)s->conf.seq.learning_rate, l2 = (float)s->conf.l2;
    float *p = s->p + off, *g = s->g + off, *m = s->om + off, *v = s->ov + off;
    if (s->conf.seq.optimizer == 1) {
        size_t i = 0;
        for (; i + 8 <= len; i += 8) { /* element-wise: same bits as scalar */
            rs_v8w *pv = (rs_v8w *)(void *)(p + i), *mv = (rs_v8w *)(void *)(m + i);
            rs_v8 gi = rs_ld8(g + i) * scale + l2 * *pv;
            *mv = RS_MOMENTUM * *mv + gi;
            *pv = *pv - lr * *mv;
        }
        for (; i < len; i++) {
            float gi = g[i] * scale + l2 * p[i];
            m[i] = RS_MOMENTUM * m[i] + gi;
            p[i] -= lr * m[i];
        }
        return;
    }
    const float a = lr / c1, ic2 = 1.0f / c2;
    for (size_t i = 0; i < len; i++) {
        float gi = g[i] * scale + l2 * p[i];
        m[i] = RS_ADAM_B1 * m[i] + (1.0f - RS_ADAM_B1) * gi;
        v[i] = RS_ADAM_B2 * v[i] + (1.0f - RS_ADAM_B2) * gi * gi;
        p[i] -= a * m[i] / (sqrtf(v[i] * ic2) + RS_ADAM_EPS);
    }
}

/* ------------------------------------------------ the weight average */

/* Index into av_sync of the region starting at `off` (a region of
 * rs_seq_regions: the dense block, one expert, one embedding row). */
static size_t rs_seq_av_idx(const rs_seq_t *s, size_t off) {
    if (off < s->dense_end) return 0;
    if (off >= s->o_ecp) {
        size_t row = (off - s->o_ecp) / (size_t)s->d; /* cp rows, then cat */
        return 1 + (size_t)s->nl * s->E + row;
    }
    for (int l = s->nl - 1; l >= 0; l--)
        if (off >= s->o_ex[l])
            return 1 + (size_t)l * s->E + (off - s->o_ex[l]) / s->pe;
    return 0;
}

/* The region's average as of now, into dst (may be s->pa itself):
 * pa + (p - pa) (1 - prod(1 - a)) over the steps since its last sync. */
static void rs_seq_av_region(const rs_seq_t *s, size_t idx, size_t off,
                             size_t len, float *dst) {
    const float f = (float)exp(s->avl - s->av_sync[idx]);
    const float *p = s->p + off, *pa = s->pa + off;
    float *o = dst + off;
    if (f == 1.0f) { /* in sync: pa itself (p + (pa - p) can round away) */
        if (o != pa) memcpy(o, pa, sizeof(float) * len);
        return;
    }
    for (size_t i = 0; i < len; i++) o[i] = p[i] + (pa[i] - p[i]) * f;
}

/* Every region's average as of now into dst[np] (a snapshot). */
static void rs_seq_av_all(const rs_seq_t *s, float *dst) {
    const size_t d = (size_t)s->d, B = (size_t)s->conf.seq.buckets;
    rs_seq_av_region(s, 0, 0, s->dense_end, dst);
    for (int l = 0; l < s->nl; l++)
        for (int e = 0; e < s->E; e++)
            rs_seq_av_region(s, 1 + (size_t)l * s->E + (size_t)e,
                             s->o_ex[l] + (size_t)e * s->pe, s->pe, dst);
    for (size_t r = 0; r < 2 * B; r++)
        rs_seq_av_region(s, 1 + (size_t)s->nl * s->E + r, s->o_ecp + r * d,
                         d, dst);
}

/* Before a step changes the touched regions: bring their averages up to
 * date (their p has not moved since their last sync). */
static void rs_seq_av_before(rs_seq_t *s) {
    if (!s->avn) return;
    for (int i = 0; i < s->nregs; i++) {
        size_t idx = rs_seq_av_idx(s, s->regs[i].off);
        rs_seq_av_region(s, idx, s->regs[i].off, s->regs[i].len, s->pa);
        s->av_sync[idx] = s->avl;
    }
}

/* After the step: fold it into the average (touched regions now, the rest
 * lazily through avl). */
static void rs_seq_av_after(rs_seq_t *s) {
    if (!s->avn) { /* the first step: the average starts at the weights */
        s->avn = 1;
        s->avt = s->tcur;
        memcpy(s->pa, s->p, sizeof(float) * s->np);
        return;
    }
    double a = rs_avg_rate(++s->avn, s->tcur, &s->avt, s->conf.average);
    const double l1a = a < 1 ? log1p(-a) : -745.0; /* exp() of it: 0 */
    for (int i = 0; i < s->nregs; i++) {
        size_t off = s->regs[i].off, len = s->regs[i].len;
        float *pa = s->pa + off;
        const float *p = s->p + off;
        for (size_t j = 0; j < len; j++) pa[j] += (float)a * (p[j] - pa[j]);
        s->av_sync[rs_seq_av_idx(s, off)] = s->avl + l1a;
    }
    s->avl += l1a;
}

/* One learning step on the loaded record (rs_seq_lrec_load) with nh
 * loaded history events. */
static void rs_seq_step(rs_seq_t *s, int nh, int y, rs_model_learn_t how) {
    /* 1. the standardiser is rs_seq_observe's (learning does not move it);
     * 2. the history at the current weights, then the gradient of the
     * replayed forward, clipped by norm */
    rs_seq_hist_rebuild(s, nh);
    rs_seq_replay_row(s, nh);
    const int all = rs_seq_all_layers(s);
    rs_seq_fwd_bwd(s, y, all ? 2 : 1, how);
    double norm = 0;
    for (int i = 0; i < s->nregs; i++)
        norm += rs_seq_sumsq(s->g + s->regs[i].off, s->regs[i].len);
    norm = sqrt(norm);
    float scale = norm > s->conf.grad_clip ? (float)(s->conf.grad_clip / norm) : 1.0f;

    /* 3. routing fractions for the balance term */
    for (int l = 0; l < s->nl; l++) {
        float *f = s->fbal + (size_t)l * s->E;
        for (int e = 0; e < s->E; e++) f[e] *= 1.0f - RS_SEQ_BAL_EMA;
        for (int t = 0; t < s->k; t++)
            f[s->tr.sel[(size_t)l * s->k + t]] += RS_SEQ_BAL_EMA / (float)s->k;
    }

    /* 4. optimiser on the trainable touched regions */
    rs_seq_av_before(s);
    s->opt_t++;
    float c1 = 1.0f - powf(RS_ADAM_B1, (float)RS_MIN(s->opt_t, 100000));
    float c2 = 1.0f - powf(RS_ADAM_B2, (float)RS_MIN(s->opt_t, 100000));
    for (int i = 0; i < s->nregs; i++) {
        size_t off = s->regs[i].off, len = s->regs[i].len;
        if (off == 0) { /* dense block */
            if (all) {
                rs_seq_update(s, 0, len, scale, c1, c2);
            } else {
                rs_seq_update(s, s->o_wh, (size_t)s->d + 1, scale, c1, c2);
                for (int l = 0; l < s->nl; l++)
                    rs_seq_update(s, s->o_wg[l], (size_t)s->E * s->d, scale, c1, c2);
            }
        } else if (all) { /* experts and embedding rows */
            rs_seq_update(s, off, len, scale, c1, c2);
        }
    }

    rs_seq_av_after(s);

    /* 5. counters and version */
    s->updates++;
    if (how == RS_MODEL_LEARN_REPLAY) {
        s->replays++;
    } else if (how == RS_MODEL_LEARN_CORRECT) {
        s->positives++;
        s->corrections++;
    } else if (y) {
        s->positives++;
    } else {
        s->negatives++;
        if (how == RS_MODEL_LEARN_MATURED) s->horizon_negatives++;
    }
    uint64_t vs = s->updates / (uint64_t)s->conf.publish_every;
    if (!s->vnamed && vs != s->vstep) {
        s->vstep = vs;
        rs_seq_set_version(s);
    }
}

/* Check and load a record and its history (oldest first). */
static rs_err_t rs_seq_load_all(rs_seq_t *s, const void *rec,
                                const void *const *hist, int nh) {
    const uint8_t *r = rec;
    rs_err_t err = rs_seq_lrec_check(s, r);
    if (err) return err;
    const rs_lrec_hdr_t *h = (const rs_lrec_hdr_t *)rec;
    if (nh > (int)h->hist) return RS_ERR_INVALID;
    for (int j = 0; j < nh; j++) {
        const rs_lrec_hdr_t *hj = hist[j];
        if (!hj) return RS_ERR_INVALID;
        if ((err = rs_seq_lrec_check(s, hist[j]))) return err;
        if (hj->entity != h->entity || hj->t > h->t) return RS_ERR_INVALID;
    }
    rs_seq_lrec_load(s, r, -1);
    for (int j = 0; j < nh; j++) rs_seq_lrec_load(s, hist[j], j);
    return RS_OK;
}

rs_err_t rs_seq_learn_lrec(rs_seq_t *s, const void *rec,
                           const void *const *hist, int nh, int y,
                           rs_model_learn_t how, double psi) {
    rs_err_t err = rs_seq_load_all(s, rec, hist, nh);
    if (err) return err;
    /* the scorer's drift decides which layers learn (rs_seq_all_layers) */
    if (isfinite(psi) && psi >= 0) s->psi = psi;
    s->tcur = ((const rs_lrec_hdr_t *)rec)->t;
    rs_seq_step(s, nh, how == RS_MODEL_LEARN_CORRECT ? 1 : y != 0, how);
    return RS_OK;
}

void rs_seq_stats(const rs_seq_t *s, rs_model_stats_t *st) {
    memset(st, 0, sizeof(*st));
    st->updates = s->updates;
    st->positives = s->positives;
    st->negatives = s->negatives;
    st->horizon_negatives = s->horizon_negatives;
    st->corrections = s->corrections;
    st->replays = s->replays;
    st->observations = s->nobs;
    rs_strlcpy(st->version, s->version, sizeof(st->version));
    st->entities = s->eused;
    st->evictions = s->evictions;
    st->drift_psi = s->psi;
    st->drift_high = rs_seq_all_layers(s);
    st->entity_bytes = sizeof(rs_seq_ent_t) + 2 * sizeof(uint32_t) +
                       (size_t)s->L * (sizeof(float) * s->stride +
                                       2 * sizeof(int64_t) +
                                       sizeof(rs_seq_meta_t));
    st->mem_bytes = st->entity_bytes * s->ecap + 4 * sizeof(float) * s->np;
}

/* ------------------------------------- versions and learning records */

const rs_model_conf_t *rs_seq_conf(const rs_seq_t *s) { return &s->conf; }

void rs_seq_set_number(rs_seq_t *s, uint64_t n) {
    s->vstep = n;
    s->vnamed = 1;
    rs_seq_set_version(s);
}

rs_err_t rs_seq_set_tag(rs_seq_t *s, const char *tag) {
    rs_strlcpy(s->vtag, tag, sizeof(s->vtag));
    rs_seq_set_version(s);
    return RS_OK;
}

void rs_seq_view(rs_seq_t *s, rs_model_view_t *v) {
    /* every region's average up to date, as a save writes it (after the
     * first step; before it the average is the weights themselves) */
    if (s->avn) rs_seq_av_all(s, s->pa);
    else memcpy(s->pa, s->p, sizeof(float) * s->np);
    memset(s->av_sync, 0, sizeof(double) * (1 + (size_t)s->nl * s->E +
                                            2 * (size_t)s->conf.seq.buckets));
    s->avl = 0;
    v->kind = RS_MODEL_SEQ;
    v->narr = 5;
    float *a[5] = {s->p, s->pa, s->om, s->ov, s->fbal};
    const char *nm[5] = {"p", "average", "moment m", "moment v",
                         "routing fractions"};
    for (int i = 0; i < 5; i++) {
        v->arr[i].name = nm[i];
        v->arr[i].f32 = a[i];
        v->arr[i].n = i < 4 ? s->np : (size_t)s->nl * s->E;
        v->arr[i].avg_of = i == 1 ? 0 : -1;
    }
    v->dim = s->dim;
    v->mean = s->mean;
    v->m2 = s->m2;
    v->nobs = &s->nobs;
    v->std_tlast = &s->std_tlast;
    v->updates = &s->updates;
    v->positives = &s->positives;
    v->negatives = &s->negatives;
    v->horizon_negatives = &s->horizon_negatives;
    v->avn = &s->avn;
    v->opt_t = &s->opt_t;
    v->avt = &s->avt;
}

void rs_seq_view_done(rs_seq_t *s) { rs_seq_refresh_std(s); }

uint64_t rs_seq_number(const rs_seq_t *s) {
    return s->wuse ? s->wuse->vnum : s->vstep;
}

uint32_t rs_seq_record_arch(const rs_seq_t *s) {
    return rs_checksum32("seq", 3, rs_seq_arch_hash(s));
}

void rs_seq_peek(rs_rbuf_t *rb, uint64_t *updates, uint64_t *vstep) {
    int nf = 0;
    rs_seq_conf_fields(&nf);
    /* conf hash, 4 f64 + 4 i64 of `model:`, the `seq:` fields */
    rs_rb_take(rb, 4 + 8 * 8 + 8 * ((size_t)nf + 1));
    *updates = rs_rb_u64(rb);
    for (int i = 0; i < 3; i++) rs_rb_u64(rb);
    *vstep = rs_rb_u64(rb);
}

/* ------------------------------------------------------------ for tests */

float *rs_seq_params(rs_seq_t *s, size_t *np) {
    *np = s->np;
    return s->p;
}

void rs_seq_region(const rs_seq_t *s, rs_seq_region_t r, int l, size_t *off,
                   size_t *len) {
    const size_t d = (size_t)s->d;
    switch (r) {
    case RS_SEQ_R_WIN: *off = s->o_win; *len = d * s->din; break;
    case RS_SEQ_R_BIN: *off = s->o_bin; *len = d; break;
    case RS_SEQ_R_HEAD: *off = s->o_wh; *len = d + 1; break;
    case RS_SEQ_R_QKV: *off = s->o_qkv[l]; *len = 3 * d * d; break;
    case RS_SEQ_R_WO: *off = s->o_wo[l]; *len = d * d; break;
    case RS_SEQ_R_TB: *off = s->o_tb[l]; *len = RS_SEQ_NB + (size_t)s->L; break;
    case RS_SEQ_R_TV: *off = s->o_tv[l]; *len = RS_SEQ_NB * d; break;
    case RS_SEQ_R_GATE: *off = s->o_wg[l]; *len = (size_t)s->E * d; break;
    case RS_SEQ_R_EXPERTS: *off = s->o_ex[l]; *len = (size_t)s->E * s->pe; break;
    case RS_SEQ_R_ECP: *off = s->o_ecp; *len = (size_t)s->conf.seq.buckets * d; break;
    case RS_SEQ_R_ECAT: *off = s->o_ecat; *len = (size_t)s->conf.seq.buckets * d; break;
    default: *off = *len = 0;
    }
}

rs_err_t rs_seq_loss_grad(rs_seq_t *s, const void *rec,
                          const void *const *hist, int nh, int y,
                          double *loss, float *grad) {
    rs_err_t err = rs_seq_load_all(s, rec, hist, nh);
    if (err) return err;
    rs_seq_hist_rebuild(s, nh);
    rs_seq_replay_row(s, nh);
    if (grad) {
        memset(s->g, 0, sizeof(float) * s->np);
        *loss = rs_seq_fwd_bwd(s, y, 2, RS_MODEL_LEARN_LABEL);
        memcpy(grad, s->g, sizeof(float) * s->np);
        return RS_OK;
    }
    *loss = rs_seq_fwd_bwd(s, y, 0, RS_MODEL_LEARN_LABEL);
    return RS_OK;
}

rs_err_t rs_seq_loss_frozen(rs_seq_t *s, int nh, int y, double *loss) {
    const int d = s->d;
    rs_seq_run_t *tr = &s->tr;
    if (nh < 0 || nh > s->L) return RS_ERR_INVALID;
    /* keys/values of every layer from the kept layer inputs at the
     * current weights (qkv = xin Wqkv^T, no bias) */
    for (int l = 0; l < s->nl && nh > 0; l++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nh, 2 * d, d,
                    1.0f, s->hxin + (size_t)l * d, s->pstride,
                    s->p + s->o_qkv[l] + (size_t)d * d, d, 0.0f,
                    tr->hist + (size_t)l * 2 * d, s->stride);
    rs_seq_replay_row(s, nh);
    *loss = rs_seq_fwd_bwd(s, y, 0, RS_MODEL_LEARN_LABEL);
    return RS_OK;
}

/* ------------------------------------------------------------ save/load */

static void rs_wb_f32s(rs_wbuf_t *b, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        rs_wb_u32(b, u);
    }
}

static void rs_rb_f32s(rs_rbuf_t *b, float *v, size_t n) {
    for (size_t i = 0; i < n && !b->bad; i++) {
        uint32_t u = rs_rb_u32(b);
        memcpy(&v[i], &u, 4);
    }
}

static void rs_seq_wb_conf(rs_wbuf_t *b, const rs_model_conf_t *c,
                           int64_t tlast) {
    rs_wb_f64(b, c->learning_rate);
    rs_wb_f64(b, c->l2);
    rs_wb_f64(b, c->pos_weight);
    rs_wb_f64(b, c->grad_clip);
    rs_wb_u64(b, (uint64_t)c->label_horizon);
    /* was pending_max: the standardiser's newest observation time and the
     * transform, (t << 1) | symlog (0 in older files: none) */
    rs_wb_u64(b, ((uint64_t)tlast << 1) | (uint64_t)(c->transform & 1));
    rs_wb_u64(b, (uint64_t)c->publish_every);
    rs_wb_u64(b, (uint64_t)c->batch_max);
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_seq_fields); i++) {
        const rs_conf_field_t *fd = &rs_seq_fields[i];
        const char *p = (const char *)&c->seq + fd->offset;
        if (fd->type == RS_CONF_DOUBLE)
            rs_wb_f64(b, *(const double *)p);
        else if (fd->type == RS_CONF_ENUM)
            rs_wb_u64(b, (uint64_t)(int64_t)*(const int *)p);
        else
            rs_wb_u64(b, (uint64_t)*(const int64_t *)p);
        if (!strcmp(fd->name, "max_entities"))
            rs_wb_u64(b, 0); /* was seq.pending_max: files keep the slot */
    }
}

static void rs_seq_rb_conf(rs_rbuf_t *b, rs_model_conf_t *c, int64_t *tlast) {
    c->kind = RS_MODEL_SEQ;
    c->learning_rate = rs_rb_f64(b);
    c->l2 = rs_rb_f64(b);
    c->pos_weight = rs_rb_f64(b);
    c->grad_clip = rs_rb_f64(b);
    c->label_horizon = (int64_t)rs_rb_u64(b);
    uint64_t stdw = rs_rb_u64(b); /* (t_last << 1) | symlog */
    c->transform = (int)(stdw & 1);
    *tlast = (int64_t)(stdw >> 1);
    c->publish_every = (int64_t)rs_rb_u64(b);
    c->batch_max = (int64_t)rs_rb_u64(b);
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_seq_fields); i++) {
        const rs_conf_field_t *fd = &rs_seq_fields[i];
        char *p = (char *)&c->seq + fd->offset;
        if (fd->type == RS_CONF_DOUBLE)
            *(double *)p = rs_rb_f64(b);
        else if (fd->type == RS_CONF_ENUM)
            *(int *)p = (int)(int64_t)rs_rb_u64(b);
        else
            *(int64_t *)p = (int64_t)rs_rb_u64(b);
        if (!strcmp(fd->name, "max_entities")) rs_rb_u64(b); /* pending_max */
    }
}

/* Body layout (little-endian; after kind "seq", dim and names):
 *   u32 conf hash | conf: f64 lr, l2, pos_weight, grad_clip, i64
 *   label_horizon (-1 auto), 0 (was pending_max), publish_every, batch_max,
 *   then every `seq:` field in table order (f64 or i64; a 0 after
 *   max_entities, where seq.pending_max was) | u64 updates, positives, negatives,
 *   horizon_negatives, vstep (bit 63: set by rs_seq_set_number), opt_t,
 *   nobs, evictions | f64 mean[dim],
 *   m2[dim] | u64 np | f32 p[np], m[np], v[np] | f32 fbal[layers][E] |
 *   u32 dref_ok | f64 psi | u64 dref[10], dcur[10], dcur_n */
void rs_seq_serialize(const rs_seq_t *s, rs_wbuf_t *b) {
    rs_wb_u32(b, s->conf_hash);
    rs_seq_wb_conf(b, &s->conf, s->std_tlast);
    const uint64_t cnt[8] = {s->updates, s->positives, s->negatives,
                             s->horizon_negatives,
                             s->vstep | (s->vnamed ? 1ull << 63 : 0), s->opt_t,
                             s->nobs, s->evictions};
    for (int i = 0; i < 8; i++) rs_wb_u64(b, cnt[i]);
    for (int i = 0; i < s->dim; i++) rs_wb_f64(b, s->mean[i]);
    for (int i = 0; i < s->dim; i++) rs_wb_f64(b, s->m2[i]);
    rs_wb_u64(b, s->np);
    rs_wb_f32s(b, s->p, s->np);
    rs_wb_f32s(b, s->om, s->np);
    rs_wb_f32s(b, s->ov, s->np);
    rs_wb_f32s(b, s->fbal, (size_t)s->nl * s->E);
    rs_wb_u32(b, (uint32_t)s->dref_ok);
    rs_wb_f64(b, s->psi);
    for (int i = 0; i < RS_SEQ_PSI_BINS; i++) rs_wb_u64(b, s->dref[i]);
    for (int i = 0; i < RS_SEQ_PSI_BINS; i++) rs_wb_u64(b, s->dcur[i]);
    rs_wb_u64(b, s->dcur_n);
    /* format 2: the weight average (model.average) as of now */
    rs_wb_u64(b, s->avn);
    rs_wb_u64(b, (uint64_t)s->avt);
    if (s->avn) {
        float *a = rs_aligned_calloc(s->np, sizeof(float));
        rs_seq_av_all(s, a);
        rs_wb_f32s(b, a, s->np);
        rs_free(a);
    } else {
        rs_wb_f32s(b, s->p, s->np);
    }
}

/* Bytes of a saved body after the counters for architecture c over dim
 * features with np parameters: mean, m2 | np | p, m, v | fbal | dref_ok,
 * psi, dref, dcur, dcur_n | (format 2) avn, avt, average[np]. */
static uint64_t rs_seq_body_tail(const rs_seq_conf_t *c, int dim, size_t np,
                                 int fmt) {
    return 16 * (uint64_t)dim + 8 + 12 * (uint64_t)np +
           4 * (uint64_t)c->layers * (uint64_t)c->experts + 4 + 8 +
           8 * (2 * RS_SEQ_PSI_BINS + 1) +
           (fmt >= 2 ? 16 + 4 * (uint64_t)np : 0); /* avn, avt, average */
}

/* Largest |parameter| a loaded file may hold.  Weights start at O(1)
 * (rs_seq_init_params) and stay there: max |p| after 20 000 online labels
 * of a synthetic stream was 3.5 with the default `seq:` settings and 48
 * with learning_rate 1 (200x the default).  1e6 is a damaged file; it also
 * keeps every activation of a small architecture finite in float (at 1e15
 * the gate logits of d_model 4 can reach 8e46: inf, then inf - inf = NaN).
 * For deep, wide architectures finite weights below it can still
 * overflow: the bound rejects damage, it does not prove the forward
 * finite. */
#define RS_SEQ_PARAM_MAX 1e6

/* The loaded arrays of s (rs_seq_deserialize): values no model reaches. */
static rs_err_t rs_seq_check_values(const rs_seq_t *s, char *errstr,
                                    size_t errstr_size) {
    /* An optimiser input is a gradient clipped to grad_clip plus l2 * p:
     * the momentum velocity is at most 1 / (1 - 0.9) of it, Adam's m at
     * most it and v its square (table maxima; x 2 for rounding). */
    const double gi = rs_model_conf_max("grad_clip") +
                      rs_model_conf_max("l2") * RS_SEQ_PARAM_MAX;
    const double mmax = 2 * gi / (1.0 - RS_MOMENTUM), vmax = 4 * gi * gi;
    rs_err_t err;
    if ((err = rs_model_check_std(s->mean, s->m2, s->dim, s->nobs, errstr,
                                  errstr_size)) ||
        (err = rs_model_check_f32s("parameter p", s->p, s->np,
                                   -RS_SEQ_PARAM_MAX, RS_SEQ_PARAM_MAX, errstr,
                                   errstr_size)) ||
        (err = rs_model_check_f32s("average parameter", s->pa, s->np,
                                   -RS_SEQ_PARAM_MAX, RS_SEQ_PARAM_MAX, errstr,
                                   errstr_size)) ||
        (err = rs_model_check_f32s("optimiser moment m", s->om, s->np, -mmax,
                                   mmax, errstr, errstr_size)) ||
        (err = rs_model_check_f32s("optimiser moment v", s->ov, s->np, 0, vmax,
                                   errstr, errstr_size)) ||
        /* averages of routing fractions (1/E at start) */
        (err = rs_model_check_f32s("routing fraction fbal", s->fbal,
                                   (size_t)s->nl * s->E, 0, 1.001, errstr,
                                   errstr_size)) ||
        (err = rs_model_check_f64s("drift psi", &s->psi, 1, 0, DBL_MAX,
                                   errstr, errstr_size)))
        return err;
    return RS_OK;
}

rs_err_t rs_seq_deserialize(rs_rbuf_t *rb, int fmt, const rs_model_conf_t *conf,
                            int dim, uint32_t names_hash, rs_seq_t **out,
                            char *errstr, size_t errstr_size) {
    *out = NULL;
    uint32_t chash = rs_rb_u32(rb);
    rs_model_conf_t saved;
    rs_model_conf_init(&saved); /* defaults for what files do not hold */
    int64_t tlast = 0;
    rs_seq_rb_conf(rb, &saved, &tlast);
    uint64_t cnt[8];
    for (int i = 0; i < 8; i++) cnt[i] = rs_rb_u64(rb);
    if (rb->bad)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT, "truncated header");
    rs_model_conf_t use = saved;
    char e2[200];
    if (conf) { /* learning settings and buffers from conf, arch from file */
        if (rs_model_check_conf(conf, e2, sizeof(e2)) ||
            rs_seq_check_conf(conf, e2, sizeof(e2)))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "configuration: %s", e2);
        use = *conf;
        use.kind = RS_MODEL_SEQ;
        use.seq.d_model = saved.seq.d_model;
        use.seq.history = saved.seq.history;
        use.seq.layers = saved.seq.layers;
        use.seq.experts = saved.seq.experts;
        use.seq.top_k = saved.seq.top_k;
        use.seq.expert_hidden = saved.seq.expert_hidden;
        use.seq.buckets = saved.seq.buckets;
        use.seq.seed = saved.seq.seed;
        use.transform = saved.transform; /* what its statistics are of */
    }
    /* What the file declares sizes the model: its settings must be in the
     * tables' ranges and its parameters must be in the file, both before
     * anything is allocated (a damaged header must not make a few
     * kilobytes allocate gigabytes).  Buffer sizes from conf are the
     * caller's. */
    if (rs_model_check_conf(&use, e2, sizeof(e2)) ||
        rs_seq_check_conf(&use, e2, sizeof(e2)))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "saved settings: %s", e2);
    const size_t np = rs_seq_layout(&use.seq, dim, NULL);
    const uint64_t need = rs_seq_body_tail(&use.seq, dim, np, fmt);
    if (rb->len - rb->off != need)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "truncated or padded: the architecture (d_model "
                       "%lld, history %lld, layers %lld, experts %lld, "
                       "expert_hidden %lld, buckets %lld: %zu parameters) "
                       "needs %llu bytes after its settings, the file holds "
                       "%zu",
                       (long long)use.seq.d_model, (long long)use.seq.history,
                       (long long)use.seq.layers, (long long)use.seq.experts,
                       (long long)use.seq.expert_hidden,
                       (long long)use.seq.buckets, np,
                       (unsigned long long)need, rb->len - rb->off);
    rs_seq_t *s = rs_seq_new(&use, dim, names_hash, errstr, errstr_size);
    if (!s) return RS_ERR_CONFIG; /* not reached: use was checked */
    for (int i = 0; i < dim; i++) s->mean[i] = rs_rb_f64(rb);
    for (int i = 0; i < dim; i++) s->m2[i] = rs_rb_f64(rb);
    uint64_t npf = rs_rb_u64(rb);
    if (rb->bad || npf != s->np) {
        rs_seq_destroy(s);
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "%llu parameters, the configuration needs %zu",
                       (unsigned long long)npf, np);
    }
    rs_rb_f32s(rb, s->p, s->np);
    rs_rb_f32s(rb, s->om, s->np);
    rs_rb_f32s(rb, s->ov, s->np);
    rs_rb_f32s(rb, s->fbal, (size_t)s->nl * s->E);
    s->dref_ok = (int)rs_rb_u32(rb);
    s->psi = rs_rb_f64(rb);
    for (int i = 0; i < RS_SEQ_PSI_BINS; i++) s->dref[i] = rs_rb_u64(rb);
    for (int i = 0; i < RS_SEQ_PSI_BINS; i++) s->dcur[i] = rs_rb_u64(rb);
    s->dcur_n = rs_rb_u64(rb);
    if (fmt >= 2) { /* the average, all regions in sync (avl = 0) */
        s->avn = rs_rb_u64(rb);
        s->avt = (int64_t)rs_rb_u64(rb);
        rs_rb_f32s(rb, s->pa, s->np);
    }
    s->nobs = cnt[6];
    s->std_tlast = tlast;
    rs_err_t err = RS_OK;
    if (rb->bad || rb->off != rb->len) /* not reached: the size was checked */
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "payload size does not match the configuration");
    else
        err = rs_seq_check_values(s, errstr, errstr_size);
    if (err) {
        rs_seq_destroy(s);
        return err;
    }
    s->updates = cnt[0];
    s->positives = cnt[1];
    s->negatives = cnt[2];
    s->horizon_negatives = cnt[3];
    s->vstep = cnt[4] & ~(1ull << 63);
    s->vnamed = (cnt[4] >> 63) != 0;
    s->opt_t = cnt[5];
    s->evictions = cnt[7];
    s->conf_hash = chash;
    rs_seq_refresh_std(s);
    rs_seq_set_version(s);
    *out = s;
    return RS_OK;
}

/* ------------------------------------------ entity caches across restarts */

/* Layout (model.h "entity caches across restarts"), little-endian:
 *   header (48 B): "RSEC" | u32 format | u32 arch (rs_seq_record_arch, as
 *   learning records) | u32 dim | u32 d_model, history, layers, experts,
 *   top_k, expert_hidden, buckets | u32 entity count
 *   entities, least recently used first (re-inserting them in order at
 *   the LRU front rebuilds the list): u64 key | u32 n | i64 t[n] |
 *   f32 kv[n][stride] | u64 lpos[n] (learning-log position + 1, 0 none) |
 *   n x (f32 amount | u8 len, event id | u8 len, counterparty id)
 *   trailer (8 B): rs_hash64 (xxHash3) of everything before it
 * The ring position is not kept: the n events are written oldest first and
 * read back into slots 0..n-1 (head = n % L).  Scoring, explanations and
 * remember only see them through the view, oldest first, so nothing they
 * compute changes.  The dims and sizes are in the header (not only their
 * hash) so a mismatch can be named. */
#define RS_SEQ_CACHES_MAGIC   "RSEC"
#define RS_SEQ_CACHES_FORMAT  2u /* 1 had xin[n][pstride], not lpos */
#define RS_SEQ_CACHES_HDR     48
#define RS_SEQ_CACHES_TRAILER 8
#define RS_SEQ_CACHES_ENT     12 /* u64 key, u32 n */

static const char *const rs_seq_arch_names[7] = {
    "d_model", "history", "layers", "experts", "top_k", "expert_hidden",
    "buckets"};

static void rs_seq_arch_fields(const rs_seq_t *s, int64_t a[7]) {
    const rs_seq_conf_t *c = &s->conf.seq;
    a[0] = c->d_model;
    a[1] = c->history;
    a[2] = c->layers;
    a[3] = c->experts;
    a[4] = c->top_k;
    a[5] = c->expert_hidden;
    a[6] = c->buckets;
}

/* Fixed bytes of one cached event: time, k/v, lpos, amount, 2 lengths. */
static size_t rs_seq_caches_event(const rs_seq_t *s) {
    return 8 + 4 * (size_t)s->stride + 8 + 4 + 2;
}

static size_t rs_seq_id_len(const char *id) {
    return strnlen(id, RS_MODEL_ID_MAX - 1);
}

/* The partition of entity slot i: that of the learning record of its
 * newest cached event; -1 if it has none. */
static int32_t rs_seq_ent_part(const rs_seq_t *s, uint32_t i) {
    const rs_seq_ent_t *e = &s->ent[i];
    if (!e->n) return -1;
    uint32_t newest = (e->head + (uint32_t)s->L - 1) % (uint32_t)s->L;
    uint64_t lp1 = s->elpos[(size_t)i * s->L + newest];
    return lp1 ? RS_LPOS_PART(lp1 - 1) : -1;
}

static int rs_seq_sel(const rs_seq_t *s, uint32_t i, rs_seq_sel_cb *sel,
                      void *opaque) {
    return !sel || sel(opaque, s->ent[i].key, rs_seq_ent_part(s, i));
}

/* Bytes of entity slot i in the caches format. */
static size_t rs_seq_caches_ent_size(const rs_seq_t *s, uint32_t i) {
    const rs_seq_view_t v = rs_seq_ent_view(s, i);
    const rs_seq_meta_t *mt = s->emeta + (size_t)i * s->L;
    size_t n = RS_SEQ_CACHES_ENT + (size_t)v.n * rs_seq_caches_event(s);
    for (int j = 0; j < v.n; j++) {
        int sl = (v.start + j) % v.cap;
        n += rs_seq_id_len(mt[sl].id) + rs_seq_id_len(mt[sl].cp);
    }
    return n;
}

size_t rs_seq_caches_size_sel(const rs_seq_t *s, rs_seq_sel_cb *sel,
                              void *opaque) {
    size_t n = RS_SEQ_CACHES_HDR + RS_SEQ_CACHES_TRAILER;
    for (int32_t i = s->lru_tail; i >= 0; i = s->ent[i].prev)
        if (rs_seq_sel(s, (uint32_t)i, sel, opaque))
            n += rs_seq_caches_ent_size(s, (uint32_t)i);
    return n;
}

size_t rs_seq_caches_size(const rs_seq_t *s) {
    return rs_seq_caches_size_sel(s, NULL, NULL);
}

/* The caches format's header (magic, format, architecture), at buf. */
static uint8_t *rs_seq_caches_put_hdr(const rs_seq_t *s, uint8_t *buf) {
    int64_t a[7];
    rs_seq_arch_fields(s, a);
    uint8_t *p = buf;
    memcpy(p, RS_SEQ_CACHES_MAGIC, 4);
    p = rs_le_put32(p + 4, RS_SEQ_CACHES_FORMAT);
    p = rs_le_put32(p, rs_seq_record_arch(s));
    p = rs_le_put32(p, (uint32_t)s->dim);
    for (int k = 0; k < 7; k++) p = rs_le_put32(p, (uint32_t)a[k]);
    return p;
}

/* Entity slot i in the caches format (key, times, keys/values, log
 * positions, metadata), at p. */
static uint8_t *rs_seq_caches_put_ent(const rs_seq_t *s, uint32_t i,
                                      uint8_t *p) {
    const rs_seq_view_t v = rs_seq_ent_view(s, i);
    const rs_seq_meta_t *mt = s->emeta + (size_t)i * s->L;
    p = rs_le_put64(p, s->ent[i].key);
    p = rs_le_put32(p, (uint32_t)v.n);
    for (int j = 0; j < v.n; j++)
        p = rs_le_put64(p, (uint64_t)v.t[(v.start + j) % v.cap]);
    for (int j = 0; j < v.n; j++)
        p = rs_le_putf32s(p, v.kv + (size_t)((v.start + j) % v.cap) * s->stride,
                          (size_t)s->stride);
    const uint64_t *lp = s->elpos + (size_t)i * s->L;
    for (int j = 0; j < v.n; j++)
        p = rs_le_put64(p, lp[(v.start + j) % v.cap]);
    for (int j = 0; j < v.n; j++) {
        const rs_seq_meta_t *m = &mt[(v.start + j) % v.cap];
        p = rs_le_putf32s(p, &m->amount, 1);
        const char *str[2] = {m->id, m->cp};
        for (int k = 0; k < 2; k++) {
            size_t l = rs_seq_id_len(str[k]);
            *p++ = (uint8_t)l;
            memcpy(p, str[k], l);
            p += l;
        }
    }
    return p;
}

rs_err_t rs_seq_caches_write(const rs_seq_t *s, uint8_t *buf, size_t cap,
                             size_t *len) {
    return rs_seq_caches_write_sel(s, NULL, NULL, buf, cap, len);
}

rs_err_t rs_seq_caches_write_sel(const rs_seq_t *s, rs_seq_sel_cb *sel,
                                 void *opaque, uint8_t *buf, size_t cap,
                                 size_t *len) {
    const size_t need = rs_seq_caches_size_sel(s, sel, opaque);
    *len = need;
    if (cap < need) return RS_ERR_TOOBIG;
    uint8_t *p = rs_seq_caches_put_hdr(s, buf);
    uint32_t count = 0;
    for (int32_t i = s->lru_tail; i >= 0; i = s->ent[i].prev)
        count += (uint32_t)rs_seq_sel(s, (uint32_t)i, sel, opaque);
    p = rs_le_put32(p, count);
    for (int32_t i = s->lru_tail; i >= 0; i = s->ent[i].prev) {
        if (!rs_seq_sel(s, (uint32_t)i, sel, opaque)) continue;
        p = rs_seq_caches_put_ent(s, (uint32_t)i, p);
    }
    rs_le_put64(p, rs_hash64(buf, (size_t)(p - buf)));
    return RS_OK;
}

rs_err_t rs_seq_caches_envelope(const uint8_t *b, size_t len, char *errstr,
                                size_t errstr_size) {
    const size_t env = RS_SEQ_CACHES_HDR + RS_SEQ_CACHES_TRAILER;
    if (len >= 4 && memcmp(b, RS_SEQ_CACHES_MAGIC, 4))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: bad magic (not a cache buffer)");
    if (len < env)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: %zu bytes, shorter than their "
                       "envelope (%zu)", len, env);
    const uint32_t fmt = rs_le_get32(b + 4);
    if (fmt != RS_SEQ_CACHES_FORMAT)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: format version %u is not supported "
                       "(this build reads %u)", fmt, RS_SEQ_CACHES_FORMAT);
    const uint64_t want = rs_le_get64(b + len - RS_SEQ_CACHES_TRAILER);
    const uint64_t got = rs_hash64(b, len - RS_SEQ_CACHES_TRAILER);
    if (want != got)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: checksum mismatch (stored %016llx, "
                       "computed %016llx): truncated or damaged",
                       (unsigned long long)want, (unsigned long long)got);
    return RS_OK;
}

/* One entity of a cache buffer at b[*off .. end): checked (counts, lengths,
 * finite k/v/xin) and, if slot >= 0, copied into entity slot `slot` (not
 * indexed or linked: the caller's).  *off moves past it; *key gets its
 * key. */
static rs_err_t rs_seq_caches_ent(rs_seq_t *s, const uint8_t *b, size_t *off,
                                  size_t end, uint32_t e, int64_t slot,
                                  uint64_t *key, char *errstr,
                                  size_t errstr_size) {
    size_t o = *off;
    if (end - o < RS_SEQ_CACHES_ENT)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: entity %u is truncated", e);
    *key = rs_le_get64(b + o);
    const uint32_t n = rs_le_get32(b + o + 8);
    o += RS_SEQ_CACHES_ENT;
    if (n > (uint32_t)s->L)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: entity %u has %u cached events, the "
                       "history holds %d", e, n, s->L);
    const size_t nf = (size_t)n * (size_t)s->stride;
    const size_t fixed = 8 * (size_t)n + 4 * nf + 8 * (size_t)n;
    if (end - o < fixed)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: entity %u is truncated", e);
    const uint8_t *t = b + o, *kv = t + 8 * (size_t)n,
                  *lp = kv + 4 * nf;
    /* |t| <= 2^62: the gap to any event time in that range (the service's
     * are years 2000-2100) is an int64 without overflow */
    for (uint32_t j = 0; j < n; j++) {
        const uint64_t u = rs_le_get64(t + 8 * (size_t)j) + (1ull << 62);
        if (u > (1ull << 63))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "entity caches: entity %u has an event time out "
                           "of range", e);
    }
    for (size_t i = 0; i < nf; i++) /* exponent all ones: inf or NaN */
        if ((rs_le_get32(kv + 4 * i) & 0x7f800000u) == 0x7f800000u)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "entity caches: entity %u has a non-finite "
                           "key/value", e);
    o += fixed;
    const size_t base = slot >= 0 ? (size_t)slot * s->L : 0;
    for (uint32_t j = 0; j < n; j++) {
        rs_seq_meta_t *m = slot >= 0 ? &s->emeta[base + j] : NULL;
        if (end - o < 5)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "entity caches: entity %u is truncated", e);
        if (m) {
            memset(m, 0, sizeof(*m));
            rs_le_getf32s(b + o, &m->amount, 1);
        }
        o += 4;
        for (int k = 0; k < 2; k++) {
            if (end - o < 1)
                return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                               "entity caches: entity %u is truncated", e);
            const size_t l = b[o++];
            if (l >= RS_MODEL_ID_MAX || end - o < l)
                return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                               "entity caches: entity %u: an id of %zu "
                               "bytes (max %d) or truncated",
                               e, l, RS_MODEL_ID_MAX - 1);
            if (m) memcpy(k ? m->cp : m->id, b + o, l);
            o += l;
        }
    }
    if (slot >= 0) {
        rs_seq_ent_t *en = &s->ent[slot];
        memset(en, 0, sizeof(*en));
        en->key = *key;
        en->prev = en->next = -1;
        en->n = n;
        en->head = n % (uint32_t)s->L;
        for (uint32_t j = 0; j < n; j++)
            s->et[base + j] = (int64_t)rs_le_get64(t + 8 * (size_t)j);
        rs_le_getf32s(kv, s->ekv + base * s->stride, (size_t)n * s->stride);
        for (uint32_t j = 0; j < n; j++)
            s->elpos[base + j] = rs_le_get64(lp + 8 * (size_t)j);
    }
    *off = o;
    return RS_OK;
}

static int rs_u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two passes: everything is checked (and the keys collected to find a
 * repeat) before the caches are cleared and refilled, so an error leaves
 * them as they were. */
/* Everything of a cache buffer checked (envelope, architecture, every
 * entity, no key twice); *count gets the entities. */
static rs_err_t rs_seq_caches_check(rs_seq_t *s, const uint8_t *b, size_t len,
                                    uint32_t *count_out, char *errstr,
                                    size_t errstr_size) {
    rs_err_t err = rs_seq_caches_envelope(b, len, errstr, errstr_size);
    if (err) return err;
    const uint32_t dim = rs_le_get32(b + 12);
    if (dim != (uint32_t)s->dim)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "entity caches of %u features, this model has %d",
                       dim, s->dim);
    int64_t a[7];
    rs_seq_arch_fields(s, a);
    for (int i = 0; i < 7; i++) {
        uint32_t v = rs_le_get32(b + 16 + 4 * i);
        if ((int64_t)v != a[i])
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "entity caches from another architecture: "
                           "seq.%s is %u in the caches, %lld in this model",
                           rs_seq_arch_names[i], v, (long long)a[i]);
    }
    const uint32_t arch = rs_le_get32(b + 8);
    if (arch != rs_seq_record_arch(s))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "entity caches from another architecture (hash %08x, "
                       "this model's %08x)", arch, rs_seq_record_arch(s));
    const uint32_t count = rs_le_get32(b + 44);
    const size_t end = len - RS_SEQ_CACHES_TRAILER;
    if ((uint64_t)count * RS_SEQ_CACHES_ENT > end - RS_SEQ_CACHES_HDR)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "entity caches: %u entities cannot fit in %zu bytes",
                       count, len);

    uint64_t *keys = rs_malloc(sizeof(uint64_t) * (count ? count : 1));
    size_t off = RS_SEQ_CACHES_HDR;
    for (uint32_t e = 0; e < count && !err; e++)
        err = rs_seq_caches_ent(s, b, &off, end, e, -1, &keys[e], errstr,
                                errstr_size);
    if (!err && off != end)
        err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                      "entity caches: %zu bytes after the last of %u "
                      "entities", end - off, count);
    if (!err) {
        qsort(keys, count, sizeof(uint64_t), rs_u64_cmp);
        for (uint32_t e = 1; e < count && !err; e++)
            if (keys[e] == keys[e - 1])
                err = rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                              "entity caches: entity %016llx appears twice",
                              (unsigned long long)keys[e]);
    }
    rs_free(keys);
    *count_out = count;
    return err;
}

rs_err_t rs_seq_caches_read(rs_seq_t *s, const uint8_t *b, size_t len,
                            char *errstr, size_t errstr_size) {
    uint32_t count = 0;
    rs_err_t err = rs_seq_caches_check(s, b, len, &count, errstr, errstr_size);
    if (err) return err;
    const size_t end = len - RS_SEQ_CACHES_TRAILER;
    size_t off;

    /* replace: the least recently used first, each to the LRU front; more
     * than the pool holds: the oldest ones are skipped (evictions) */
    const uint32_t skip = count > s->ecap ? count - s->ecap : 0;
    memset(s->eindex, 0, sizeof(uint32_t) * ((size_t)s->emask + 1));
    s->lru_head = s->lru_tail = -1;
    s->eused = 0;
    s->evictions += skip;
    off = RS_SEQ_CACHES_HDR;
    for (uint32_t e = 0; e < count; e++) {
        uint64_t key;
        int64_t slot = e < skip ? -1 : (int64_t)s->eused;
        err = rs_seq_caches_ent(s, b, &off, end, e, slot, &key, errstr,
                                errstr_size);
        if (err) return err; /* cannot: checked above */
        if (slot < 0) continue;
        s->eused++;
        rs_idx_insert(s->eindex, s->emask, key, (uint32_t)slot);
        rs_seq_lru_front(s, (uint32_t)slot);
    }
    return RS_OK;
}

/* Merge: each entity of the buffer replaces the cache of its key (or
 * takes a free slot, or the least recently used one), at the LRU front in
 * the buffer's order.  Checked whole first: on an error nothing changed. */
rs_err_t rs_seq_caches_merge(rs_seq_t *s, const uint8_t *b, size_t len,
                             uint64_t *n_out, char *errstr,
                             size_t errstr_size) {
    uint32_t count = 0;
    if (n_out) *n_out = 0;
    rs_err_t err = rs_seq_caches_check(s, b, len, &count, errstr, errstr_size);
    if (err) return err;
    const size_t end = len - RS_SEQ_CACHES_TRAILER;
    size_t off = RS_SEQ_CACHES_HDR;
    for (uint32_t e = 0; e < count; e++) {
        uint64_t key = rs_le_get64(b + off);
        int64_t pos = rs_seq_ent_pos(s, key);
        uint32_t slot;
        int fresh = pos < 0;
        if (!fresh) {
            slot = s->eindex[pos] - 1;
            rs_seq_lru_unlink(s, slot);
        } else if (s->eused < s->ecap) {
            slot = s->eused++;
        } else {
            slot = (uint32_t)s->lru_tail;
            rs_seq_ent_unindex(s, (uint32_t)rs_seq_ent_pos(s, s->ent[slot].key));
            rs_seq_lru_unlink(s, slot);
            s->evictions++;
        }
        err = rs_seq_caches_ent(s, b, &off, end, e, slot, &key, errstr,
                                errstr_size);
        if (err) return err; /* cannot: checked above */
        if (fresh) rs_idx_insert(s->eindex, s->emask, key, slot);
        rs_seq_lru_front(s, slot);
    }
    if (n_out) *n_out = count;
    return RS_OK;
}

/* Move entity slot `from` to the free slot `to` (index, LRU links and
 * rows). */
static void rs_seq_ent_move(rs_seq_t *s, uint32_t from, uint32_t to) {
    int64_t pos = rs_seq_ent_pos(s, s->ent[from].key);
    s->ent[to] = s->ent[from];
    rs_seq_ent_t *e = &s->ent[to];
    if (e->prev >= 0) s->ent[e->prev].next = (int32_t)to;
    else s->lru_head = (int32_t)to;
    if (e->next >= 0) s->ent[e->next].prev = (int32_t)to;
    else s->lru_tail = (int32_t)to;
    if (pos >= 0) s->eindex[pos] = to + 1;
    const size_t L = (size_t)s->L, a = (size_t)to * L, f = (size_t)from * L;
    memcpy(s->ekv + a * s->stride, s->ekv + f * s->stride,
           L * s->stride * sizeof(float));
    memcpy(s->elpos + a, s->elpos + f, L * sizeof(*s->elpos));
    memcpy(s->et + a, s->et + f, L * sizeof(*s->et));
    memcpy(s->emeta + a, s->emeta + f, L * sizeof(*s->emeta));
}

uint64_t rs_seq_caches_drop(rs_seq_t *s, rs_seq_sel_cb *sel, void *opaque) {
    uint64_t n = 0;
    uint32_t i = 0;
    while (i < s->eused) {
        if (!rs_seq_sel(s, i, sel, opaque)) {
            i++;
            continue;
        }
        int64_t pos = rs_seq_ent_pos(s, s->ent[i].key);
        if (pos >= 0) rs_seq_ent_unindex(s, (uint32_t)pos);
        rs_seq_lru_unlink(s, i);
        uint32_t last = --s->eused;
        if (last != i) rs_seq_ent_move(s, last, i); /* i is seen again */
        memset(&s->ent[last], 0, sizeof(s->ent[last]));
        n++;
    }
    return n;
}

void rs_seq_caches_track_gone(rs_seq_t *s, uint32_t cap) {
    free(s->gone_key);
    free(s->gone_part);
    s->gone_key = cap ? rs_calloc(cap, sizeof(*s->gone_key)) : NULL;
    s->gone_part = cap ? rs_calloc(cap, sizeof(*s->gone_part)) : NULL;
    s->gone_cap = cap;
    s->ngone = 0;
}

int rs_seq_caches_gone_take(rs_seq_t *s, const uint64_t **keys,
                            const int32_t **parts, uint64_t *lost) {
    int n = (int)s->ngone;
    *keys = s->gone_key;
    *parts = s->gone_part;
    if (lost) {
        *lost = s->gone_lost;
        s->gone_lost = 0;
    }
    s->ngone = 0;
    return n;
}

static int rs_seq_sel_key(void *opaque, uint64_t key, int32_t partition) {
    const uint64_t *want = opaque; /* {key, partition} */
    return key == want[0] && (int64_t)partition == (int64_t)want[1];
}

int rs_seq_caches_drop_key(rs_seq_t *s, int32_t partition, uint64_t key) {
    int64_t pos = rs_seq_ent_pos(s, key);
    if (pos < 0) return 0;
    uint64_t want[2] = {key, (uint64_t)(int64_t)partition};
    uint32_t i = s->eindex[pos] - 1;
    if (!rs_seq_sel(s, i, rs_seq_sel_key, want)) return 0;
    rs_seq_ent_unindex(s, (uint32_t)pos);
    rs_seq_lru_unlink(s, i);
    uint32_t last = --s->eused;
    if (last != i) rs_seq_ent_move(s, last, i);
    memset(&s->ent[last], 0, sizeof(s->ent[last]));
    return 1;
}

/* One entity's cache in the rs_seq_caches_write format (count 1). */
rs_err_t rs_seq_caches_write_one(const rs_seq_t *s, uint64_t key, uint8_t *buf,
                                 size_t cap, size_t *len) {
    int64_t pos = rs_seq_ent_pos(s, key);
    *len = 0;
    if (pos < 0) return RS_ERR_NOTFOUND;
    const uint32_t i = s->eindex[pos] - 1;
    const size_t need = RS_SEQ_CACHES_HDR + RS_SEQ_CACHES_TRAILER +
                        rs_seq_caches_ent_size(s, i);
    *len = need;
    if (cap < need) return RS_ERR_TOOBIG;
    uint8_t *p = rs_seq_caches_put_hdr(s, buf);
    p = rs_le_put32(p, 1);
    p = rs_seq_caches_put_ent(s, i, p);
    rs_le_put64(p, rs_hash64(buf, (size_t)(p - buf)));
    return RS_OK;
}
