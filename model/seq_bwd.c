/* seq_bwd.c -- the sequence model's backward of one row: d logit / d
 * inputs for explanations, parameter gradients for learning.
 * Design note: seq.c; what the files share: seq_priv.h. */
#define _GNU_SOURCE
#include "model/seq_priv.h"

/* ----------------------------------------------------------- backward */

/* Backward of row r from d loss / d logit = dlogit.  train 0: only
 * d / d u into rs->du (explanations).  train 2: also every parameter
 * gradient into s->g (whose touched regions the caller zeroed) with the
 * load-balancing term.  train 1 (low drift): only head and gate gradients,
 * stopping below the lowest gate (rs->du is then not computed). */
RS_HOT
void rs_seq_backward(rs_seq_t *s, rs_seq_run_t *rs, int r, float dlogit,
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
            rs_gemv_t(dy, W2, (size_t)H, d, dh, H);
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
            rs_gemv_ti(dh, rs->nzi, rs_nonzeros(dh, H, rs->nzi), W1,
                       (size_t)d, dx1, d);
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
        rs_gemv_ti(dr, rs->nzi, rs_nonzeros(dr, E, rs->nzi), P + s->o_wg[l],
                   (size_t)d, dx1, d);
        if (train)
            for (int e = 0; e < E; e++)
                if (dr[e] != 0)
                    rs_axpy(dr[e], x1, G + s->o_wg[l] + (size_t)e * d, d);
        if (train == 1 && l == 0) return; /* head + gates only */
        /* x1 = xin + Wo ctx: dc = Wo^T dx1, dx = dx1 */
        const float *Wo = P + s->o_wo[l];
        memset(dc, 0, sizeof(float) * (size_t)d);
        rs_gemv_t(dx1, Wo, (size_t)d, d, dc, d);
        if (full)
            for (int i = 0; i < d; i++)
                rs_axpy(dx1[i], ctx, G + s->o_wo[l] + (size_t)i * d, d);
        memcpy(dx, dx1, sizeof(float) * (size_t)d);

        /* attention over the (constant) cache and the event itself */
        const int n = rw->h.n;
        const float *q = qkv, *ks = qkv + d, *vs = qkv + 2 * d;
        const float *tb = P + s->o_tb[l], *TV = P + s->o_tv[l];
        RS_UNUSED(tb);
        const float **vr = rs->vrow;
        float *cf = rs->vcf;
        for (int b = 0; b < RS_SEQ_NB; b++) vr[b] = TV + (size_t)b * d;
        rs_dots(dc, vr, RS_SEQ_NB, d, rs->tvd);
        float *da = rs->da, sa = 0;
        for (int j = 0; j < n; j++) { /* the cached values */
            int sl = (rw->h.start + j) % rw->h.cap;
            vr[j] = rw->h.kv + (size_t)sl * s->stride + (size_t)l * 2 * d + d;
        }
        rs_dots(dc, vr, n, d, da);
        for (int j = 0; j < n; j++) {
            int ib;
            float f;
            ib = rs->gib[(size_t)r * s->L + j];
            f = rs->gf[(size_t)r * s->L + j];
            da[j] = da[j] + rs->tvd[ib] * (1.0f - f) +
                    (f > 0 ? rs->tvd[ib + 1] * f : 0.0f);
            sa += a[j] * da[j];
        }
        da[n] = rs_dot(dc, vs, d) + rs->tvd[0];
        sa += a[n] * da[n];
        float *dq = dqkv, *dk = dqkv + d, *dv = dqkv + 2 * d;
        memset(dqkv, 0, sizeof(float) * 3 * (size_t)d);
        float wb[RS_SEQ_NB] = {0};
        /* dq = sum_j ds_j isq k_j + dss isq k_self: coefficients and rows
         * here, the sum in registers below (rs_gemv_rows: the bits of the
         * axpy chain) */
        for (int j = 0; j < n; j++) {
            float ds = a[j] * (da[j] - sa);
            vr[j] -= d; /* its key */
            cf[j] = ds * isq;
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
        vr[n] = ks;
        cf[n] = dss * isq;
        rs_gemv_rows(cf, vr, n + 1, dq, d);
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
        rs_gemv_t(dqkv, Wqkv, (size_t)d, 3 * d, dx, d);
        if (full)
            for (int i = 0; i < 3 * d; i++)
                rs_axpy(dqkv[i], xin, G + s->o_qkv[l] + (size_t)i * d, d);
    }
    /* x0 = softsign(e): dx0/de = (1 - |x0|)^2 */
    const float *x0 = rs->xin + (size_t)r * d;
    for (int i = 0; i < d; i++) {
        float g = 1.0f - fabsf(x0[i]);
        dx[i] *= g * g;
    }
    const float *u = rs->u + (size_t)r * din;
    memset(rs->du, 0, sizeof(float) * (size_t)din);
    rs_gemv_t(dx, P + s->o_win, (size_t)din, d, rs->du, din);
    if (full)
        for (int i = 0; i < d; i++)
            rs_axpy(dx[i], u, G + s->o_win + (size_t)i * din, din);
    if (full) {
        rs_axpy(1.0f, dx, G + s->o_bin, d);
        if (rw->cp) rs_axpy(1.0f, dx, G + rs_seq_ecp_row(s, rw->cp), d);
        for (int c = 0; c < rw->n_cat; c++)
            rs_axpy(1.0f, dx, G + rs_seq_ecat_row(s, rw->cat[c]), d);
    }
}
