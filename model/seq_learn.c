/* seq_learn.c -- the sequence model's learning: learning records, the
 * history replay at the current weights, the optimiser and the
 * weight average.
 * Design note: seq.c; what the files share: seq_priv.h. */
#define _GNU_SOURCE
#include "model/seq_priv.h"

static inline double rs_splus(double l) {
    return l > 0 ? l + log1p(exp(-l)) : log1p(exp(l));
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

size_t rs_seq_lrec_size(const rs_seq_t *s) {
    return (RS_SEQ_LR_X + 4 * (size_t)s->dim + 7) & ~(size_t)7;
}

/* Write the learning record of row rw (entity slot ent, scored `score`,
 * u's gap input `gap`) into in->lrec. */
void rs_seq_lrec_write(const rs_seq_t *s, const rs_seq_row_t *rw,
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
            rs_seq_run(s, tr, 0, 1, 1);
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
    rs_seq_run(s, tr, 0, 1, 1);
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
void rs_seq_av_all(const rs_seq_t *s, float *dst) {
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

/* ------------------------------------------------------------ for tests */

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
