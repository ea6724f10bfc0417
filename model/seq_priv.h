/* seq_priv.h -- the sequence model's state and what its files share,
 * private to model/seq*.c (never include it elsewhere: model.c, shard.c
 * and the tests see seq_int.h, whose rs_seq_t stays opaque).
 *
 * The model is split along its data flow (design note: seq.c):
 *   seq.c        configuration, parameter layout and initialisation,
 *                new/destroy, weight snapshots, versions, stats, views,
 *                save/load;
 *   seq_fwd.c    the forward: GEMM kernel, attention, gate and experts
 *                (rs_seq_run); scoring a micro-batch (outputs,
 *                explanations, input logs, learning records, drift); the
 *                sharded forward; the rescore of an input log;
 *   seq_bwd.c    the backward of one row: d logit / d inputs for
 *                explanations, parameter gradients for learning;
 *   seq_learn.c  learning: learning records, the history replay at the
 *                current weights, the optimiser, the weight average;
 *   seq_cache.c  entity caches: index, LRU list and rings, and their
 *                serialisation across restarts.
 * The functions declared at the end are what one of these files calls in
 * another; everything else of a file stays static in it.
 *
 * Threads: those of rs_seq_t (seq.c): its owner thread, and the lanes of
 * a sharded forward inside the owner's call.
 */
#ifndef RS_SEQ_PRIV_H
#define RS_SEQ_PRIV_H

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
#define RS_SEQ_CHUNK     8     /* rows forwarded and explained together  */

#define RS_ADAM_B1  0.9f
#define RS_ADAM_B2  0.999f
#define RS_ADAM_EPS 1e-8f
#define RS_MOMENTUM 0.9f

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
    const float **vrow;   /* [L+1+NB] attention: rows of one weighted sum */
    float *vcf;           /* [L+1+NB] and their weights (one row's dots)   */
    int *nzi;             /* [max(H, E)] indices of a vector's non-zeros   */
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

/* ------------------------------------------------- shared helpers */

/* 8 lanes then a fixed tree: vectorises without -ffast-math and gives the
 * same bits wherever it is inlined (per target clone). */
typedef float rs_v8 __attribute__((vector_size(32)));
typedef float rs_v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define rs_hsum8(v) \
    ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))
#define rs_ld8(p) (*(const rs_v8u *)(const void *)(p))

/* hot functions get an AVX2+FMA clone picked at load time (ifunc) */
/* The ifunc resolver of target_clones runs before the TSan runtime is up
 * and is instrumented: it crashes at load.  TSan builds use one version,
 * and so do builds with -DRS_SEQ_NO_CLONES (the portable path alone, to
 * check it on an AVX2 machine: bench_model --dump of two builds). */
#if defined(__SANITIZE_THREAD__) || defined(RS_SEQ_NO_CLONES)
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

#define rs_st8(p, v) (*(rs_v8w *)(void *)(p) = (v))

/* __builtin_shufflevector: GCC >= 12 and clang (the RS_FUZZ build) */
#define RS_LO(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)
#define RS_HI(a, b) __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15)
#define RS_EV(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define RS_OD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
/* The rs_hsum8 of eight vectors at once: r[j] = rs_hsum8(v[j]), the same
 * additions of the same operands (fewer, vector instructions: level one
 * adds the halves of two vectors per add, levels two and three the
 * neighbours), so the same bits.  Always inlined (target clones; pointers,
 * not vector values, cross its boundary). */
static inline __attribute__((always_inline)) void
rs_hsum8x8(const rs_v8 *v, float *r) {
    /* [v[j][i] + v[j][i+4] (i < 4), the same of v[j+1]] */
    rs_v8 p01 = RS_LO(v[0], v[1]) + RS_HI(v[0], v[1]);
    rs_v8 p23 = RS_LO(v[2], v[3]) + RS_HI(v[2], v[3]);
    rs_v8 p45 = RS_LO(v[4], v[5]) + RS_HI(v[4], v[5]);
    rs_v8 p67 = RS_LO(v[6], v[7]) + RS_HI(v[6], v[7]);
    /* [(v[0]+v[4]) + (v[1]+v[5]), (v[2]+v[6]) + (v[3]+v[7])] per j */
    rs_v8 q03 = RS_EV(p01, p23) + RS_OD(p01, p23);
    rs_v8 q47 = RS_EV(p45, p67) + RS_OD(p45, p67);
    rs_st8(r, RS_EV(q03, q47) + RS_OD(q03, q47));
}

/* y[0..n) += sum_{q < nx} a[i_q] W[i_q][0..n) (W row-major, ldw floats
 * per row), i_q = ix[q], or q where ix is NULL: the chain of
 * rs_axpy(a[i_q], W + i_q ldw, y, n) for q = 0, 1, .. with y held in
 * registers (32 columns at a time) instead of loaded and stored per axpy.
 * Each y element gets the same additions in the same order as the chain,
 * so the same bits.  Always inlined, and its callers pass ix as a constant
 * NULL or a list, so each gets its own loop without the test: it must be
 * compiled inside each target clone of its caller. */
static inline __attribute__((always_inline)) void
rs_gemv_tx(const float *a, const int *ix, int nx, const float *W, size_t ldw,
           float *y, int n) {
#define RS_GEMV_ROW(q) (ix ? ix[q] : (q))
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        rs_v8 y0 = rs_ld8(y + j), y1 = rs_ld8(y + j + 8),
              y2 = rs_ld8(y + j + 16), y3 = rs_ld8(y + j + 24);
        for (int q = 0; q < nx; q++) {
            const int i = RS_GEMV_ROW(q);
            const float ai = a[i];
            const float *w = W + (size_t)i * ldw + j;
            y0 = y0 + ai * rs_ld8(w);
            y1 = y1 + ai * rs_ld8(w + 8);
            y2 = y2 + ai * rs_ld8(w + 16);
            y3 = y3 + ai * rs_ld8(w + 24);
        }
        rs_st8(y + j, y0);
        rs_st8(y + j + 8, y1);
        rs_st8(y + j + 16, y2);
        rs_st8(y + j + 24, y3);
    }
    for (; j + 8 <= n; j += 8) {
        rs_v8 y0 = rs_ld8(y + j);
        for (int q = 0; q < nx; q++) {
            const int i = RS_GEMV_ROW(q);
            y0 = y0 + a[i] * rs_ld8(W + (size_t)i * ldw + j);
        }
        rs_st8(y + j, y0);
    }
    for (; j < n; j++) {
        float yj = y[j];
        for (int q = 0; q < nx; q++) {
            const int i = RS_GEMV_ROW(q);
            yj = yj + a[i] * W[(size_t)i * ldw + j];
        }
        y[j] = yj;
    }
#undef RS_GEMV_ROW
}

/* y[0..n) += sum_{i < m} a[i] W[i][0..n): every row (rs_gemv_tx). */
static inline __attribute__((always_inline)) void
rs_gemv_t(const float *a, const float *W, size_t ldw, int m, float *y,
          int n) {
    rs_gemv_tx(a, NULL, m, W, ldw, y, n);
}

/* Indices of the non-zero a[i] (i < m, in order) into ix; their count.
 * Branch-free: which hidden units a relu switched off is unpredictable. */
static inline __attribute__((always_inline)) int
rs_nonzeros(const float *a, int m, int *ix) {
    int nx = 0;
    for (int i = 0; i < m; i++) {
        ix[nx] = i;
        nx += a[i] != 0.0f;
    }
    return nx;
}

/* rs_gemv_t(a, W, ldw, m, y, n) without the rows whose a[i] is 0 (the
 * rows kept listed in ix[0..nx), rs_nonzeros): the same additions in the
 * same order as the chain of axpys that skips them, without a branch per
 * row. */
static inline __attribute__((always_inline)) void
rs_gemv_ti(const float *a, const int *ix, int nx, const float *W, size_t ldw,
           float *y, int n) {
    rs_gemv_tx(a, ix, nx, W, ldw, y, n);
}

/* y[0..n) += sum_{i < m} cf[i] row[i][0..n): rs_gemv_t over rows at
 * any addresses (the same bits as the chain of rs_axpy(cf[i], row[i], y,
 * n)). */
static inline __attribute__((always_inline)) void
rs_gemv_rows(const float *cf, const float *const *row, int m, float *y,
             int n) {
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        rs_v8 y0 = rs_ld8(y + j), y1 = rs_ld8(y + j + 8),
              y2 = rs_ld8(y + j + 16), y3 = rs_ld8(y + j + 24);
        for (int i = 0; i < m; i++) {
            const float ci = cf[i], *w = row[i] + j;
            y0 = y0 + ci * rs_ld8(w);
            y1 = y1 + ci * rs_ld8(w + 8);
            y2 = y2 + ci * rs_ld8(w + 16);
            y3 = y3 + ci * rs_ld8(w + 24);
        }
        rs_st8(y + j, y0);
        rs_st8(y + j + 8, y1);
        rs_st8(y + j + 16, y2);
        rs_st8(y + j + 24, y3);
    }
    for (; j + 8 <= n; j += 8) {
        rs_v8 y0 = rs_ld8(y + j);
        for (int i = 0; i < m; i++) y0 = y0 + cf[i] * rs_ld8(row[i] + j);
        rs_st8(y + j, y0);
    }
    for (; j < n; j++) {
        float yj = y[j];
        for (int i = 0; i < m; i++) yj = yj + cf[i] * row[i][j];
        y[j] = yj;
    }
}

/* out[i] = rs_dot(q, row[i], n) for i < m, bit for bit: eight rows at a
 * time, their horizontal sums together (rs_hsum8x8). */
static inline __attribute__((always_inline)) void
rs_dots(const float *q, const float *const *row, int m, int n, float *out) {
    const int n8 = n & ~7;
    int i = 0;
    for (; i + 8 <= m; i += 8) {
        const float *const *r = row + i;
        /* eight named accumulators: GCC keeps an array of them in
         * memory (a store-to-load chain per add), these in registers */
        const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3],
                    *r4 = r[4], *r5 = r[5], *r6 = r[6], *r7 = r[7];
        rs_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0},
              a6 = {0}, a7 = {0};
        for (int k = 0; k < n8; k += 8) {
            const rs_v8 qk = rs_ld8(q + k);
            a0 += qk * rs_ld8(r0 + k);
            a1 += qk * rs_ld8(r1 + k);
            a2 += qk * rs_ld8(r2 + k);
            a3 += qk * rs_ld8(r3 + k);
            a4 += qk * rs_ld8(r4 + k);
            a5 += qk * rs_ld8(r5 + k);
            a6 += qk * rs_ld8(r6 + k);
            a7 += qk * rs_ld8(r7 + k);
        }
        const rs_v8 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        rs_hsum8x8(acc, out + i);
        for (int t = 0; t < 8; t++)
            for (int k = n8; k < n; k++) out[i + t] += q[k] * r[t][k];
    }
    for (; i < m; i++) out[i] = rs_dot(q, row[i], n);
}

static inline double rs_sigm(double l) {
    return l >= 0 ? 1.0 / (1.0 + exp(-l)) : exp(l) / (1.0 + exp(l));
}

static inline size_t rs_seq_ecat_row(const rs_seq_t *s, uint64_t h) {
    return s->o_ecat + (size_t)(h % (uint64_t)s->conf.seq.buckets) * s->d;
}

static inline size_t rs_seq_ecp_row(const rs_seq_t *s, uint64_t h) {
    return s->o_ecp + (size_t)(h % (uint64_t)s->conf.seq.buckets) * s->d;
}

/* u's extra: the history length (rs_seq_run, replayed records). */
static inline float rs_seq_n_in(const rs_seq_t *s, int n) {
    return log1pf((float)n) / log1pf((float)s->L);
}

/* The entity index (seq_cache.c maintains it): key -> slot position,
 * and a slot's cached history as a view (scoring reads both per event). */
static inline uint64_t rs_seq_ent_key(const void *s, uint32_t i) {
    return ((const rs_seq_t *)s)->ent[i].key;
}

static inline int64_t rs_seq_ent_pos(const rs_seq_t *s, uint64_t key) {
    return rs_idx_pos(s->eindex, s->emask, key, rs_seq_ent_key, s);
}

static inline rs_seq_view_t rs_seq_ent_view(const rs_seq_t *s, uint32_t i) {
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

/* ------------------------------------------ calls between the files */

/* The declaration of an RS_HOT (target_clones) function that another file
 * calls.  GCC exports the dispatcher under the plain name and wants a
 * plain declaration (one with the attribute makes a second dispatcher
 * over clones that are local to the defining file: undefined at link);
 * clang 14 (the RS_FUZZ build) names it rs_x.ifunc and reaches it only
 * through a declaration with the attribute. */
#if defined(__clang__)
#define RS_HOT_DECL RS_HOT
#else
#define RS_HOT_DECL
#endif

/* seq.c.  Hash of the architecture (dims, transform): who may use a
 * snapshot or an input log. */
uint32_t rs_seq_arch_hash(const rs_seq_t *s);
/* mu/istd from the standardiser's running statistics. */
void rs_seq_refresh_std(rs_seq_t *s);
/* s->version from the config hash, version step and tag. */
void rs_seq_set_version(rs_seq_t *s);
/* Allocate / free a run state of `cap` rows (cold path). */
void rs_seq_run_init(rs_seq_t *s, rs_seq_run_t *rs, int cap);
void rs_seq_run_free(rs_seq_run_t *rs);

/* seq_fwd.c.  C[M][N] = A[M][K] . B[N][K]^T (+ C if beta != 0) with the
 * kernel of seq.gemm. */
void rs_seq_gemm(const rs_seq_t *s, int M, int N, int K, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C,
                 int ldc);
/* Forward rows r0 .. r0 + nb of rs (rows filled by the caller up to
 * nall: those ahead are prefetched), every activation kept for the
 * backward.  A row's results do not depend on r0, nb or the other rows
 * (with the exact kernel).  No allocation. */
RS_HOT_DECL void rs_seq_run(const rs_seq_t *s, rs_seq_run_t *rs, int r0,
                            int nb, int nall);
/* 1 if a learning step trains every layer (drift high, warm-up or
 * seq.drift_mode all), 0 if only the head and the gates. */
int rs_seq_all_layers(const rs_seq_t *s);

/* seq_bwd.c.  Backward of row r of rs from d loss / d logit = dlogit
 * (train 0: d / d u into rs->du; 1: head and gate gradients; 2: every
 * gradient into s->g). */
RS_HOT_DECL void rs_seq_backward(rs_seq_t *s, rs_seq_run_t *rs, int r,
                                 float dlogit, int train);

/* seq_learn.c.  The learning record of row rw (entity slot ent, scored
 * `score`, u's gap input `gap`) into in->lrec. */
void rs_seq_lrec_write(const rs_seq_t *s, const rs_seq_row_t *rw,
                       uint32_t ent, const rs_model_input_t *in, float score,
                       float gap);
/* Every region's weight average as of now into dst[np]. */
void rs_seq_av_all(const rs_seq_t *s, float *dst);

/* seq_cache.c.  Slot of `key`, created (evicting the LRU entity if full)
 * when absent; RS_MODEL_OUT_NEW_ENTITY / _EVICTED into *flags. */
uint32_t rs_seq_ent_get(rs_seq_t *s, uint64_t key, uint32_t *flags);
/* Append row r's K/V (every layer) and meta to entity i's ring. */
void rs_seq_ent_append(rs_seq_t *s, uint32_t i, const rs_seq_run_t *rs, int r,
                       const rs_model_input_t *in, uint64_t lpos1);

#endif /* RS_SEQ_PRIV_H */
