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
 * entity is evicted when the pool is full.  rs_seq_caches_* (seq_cache.c)
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
 * "sharded forward" section of seq_fwd.c, model/shard.h) runs per-entity
 * lanes on other threads inside the owner's call.  Parameters are one flat
 * float vector; rs_seq_weights_take() copies them into an immutable,
 * refcounted snapshot another model can score with (docs/model.md).
 *
 * Files, along the data flow (seq_priv.h has what they share): this one
 * (configuration, parameters, new/destroy, snapshots, versions, save/
 * load), seq_fwd.c (forward and scoring), seq_bwd.c (backward),
 * seq_learn.c (learning) and seq_cache.c (entity caches).
 */
#define _GNU_SOURCE
#include "model/seq_priv.h"

#include <sys/mman.h>

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

/* ------------------------------------------------------------ helpers */

uint32_t rs_seq_arch_hash(const rs_seq_t *s) {
    const rs_seq_conf_t *c = &s->conf.seq;
    const int64_t a[8] = {s->dim, c->d_model, c->history, c->layers,
                          c->experts, c->top_k, c->expert_hidden, c->buckets};
    uint32_t h = rs_checksum32(a, sizeof(a), 0);
    /* the transform is what mu/istd are of (none: the hash of before) */
    return s->conf.transform ? rs_checksum32("symlog", 6, h) : h;
}

void rs_seq_refresh_std(rs_seq_t *s) {
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

void rs_seq_set_version(rs_seq_t *s) {
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

void rs_seq_run_init(rs_seq_t *s, rs_seq_run_t *rs, int cap) {
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
    rs->vrow = rs_calloc(L1 + RS_SEQ_NB, sizeof(*rs->vrow));
    rs->vcf = rs_aligned_calloc(L1 + RS_SEQ_NB, sizeof(float));
    rs->hist = rs_aligned_calloc((size_t)s->L * s->stride, sizeof(float));
    rs->dK = rs_aligned_calloc((size_t)s->L * d, sizeof(float));
    rs->dV = rs_aligned_calloc((size_t)s->L * d, sizeof(float));
    rs->nzi = rs_calloc((size_t)RS_MAX(H, E), sizeof(int));
}

void rs_seq_run_free(rs_seq_run_t *rs) {
    void *ps[] = {rs->row, rs->u, rs->xin, rs->qkv, rs->att, rs->ctx, rs->x1,
                  rs->gp, rs->sel, rs->gw, rs->hid, rs->yex, rs->xout,
                  rs->logit, rs->gidx, rs->gn, rs->G, rs->Hg, rs->Yg, rs->dx,
                  rs->dx1, rs->dc, rs->dqkv, rs->dh, rs->dy, rs->da, rs->dr,
                  rs->du, rs->tvd, rs->gib, rs->gf, rs->wexp, rs->hist, rs->dK, rs->dV,
                  (void *)rs->vrow, rs->vcf, rs->nzi};
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
    /* Transparent huge pages for the entity caches (tens to hundreds of
     * MB, one entity's few KB read per event from anywhere in them): with
     * 4 KB pages nearly every cache read also misses the TLB (a page walk
     * per array per event); 2 MB pages cover them with a few hundred TLB
     * entries.  Advice only (THP "madvise" or "always"; ignored where
     * unsupported); the contents are the same either way. */
    {
        void *hp[] = {s->ent, s->ekv, s->elpos, s->et, s->emeta, s->eindex};
        const size_t hb[] = {
            s->ecap * sizeof(*s->ent),
            (size_t)s->ecap * s->L * s->stride * sizeof(float),
            (size_t)s->ecap * s->L * sizeof(uint64_t),
            (size_t)s->ecap * s->L * sizeof(int64_t),
            (size_t)s->ecap * s->L * sizeof(rs_seq_meta_t),
            (size_t)p2 * sizeof(uint32_t)};
        for (size_t i = 0; i < RS_ARRAY_LEN(hp); i++) {
            const uintptr_t lo = ((uintptr_t)hp[i] + 4095) & ~(uintptr_t)4095,
                            hi = ((uintptr_t)hp[i] + hb[i]) & ~(uintptr_t)4095;
            if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        }
        /* ... and populated by the background prefault thread ahead of
         * the other lazy tables (rs_prefault: its "soon" queue).  Slots
         * are taken in order (0, 1, ... until max_entities, then LRU
         * reuse), so every page of these arrays is written once the
         * service has seen max_entities entities, the first ones by the
         * first batches.  Left in the lazy queue they came after hundreds
         * of MB of feature tables that the nice-19 thread had not reached
         * when a burst started (2-3 s after start), and the scoring thread
         * and the workers zeroed each 2 MB page themselves on the first
         * entity in it (perf_threads: rs_seq_ent_append's page faults
         * ~3 % of serve's samples at max rate on a VM where a first touch
         * costs ~10 us per 4 KB).  The small arrays first: one slot
         * touches all of them. */
        const int order[] = {0, 5, 2, 3, 4, 1}; /* ekv, the largest, last */
        for (size_t i = 0; i < RS_ARRAY_LEN(order); i++)
            rs_prefault(hp[order[i]], hb[order[i]]);
    }
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

/* The snapshot struct (rs_seq_weights_t) is in seq_int.h: model.c makes
 * the "lr" ones. */

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
