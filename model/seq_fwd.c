/* seq_fwd.c -- the sequence model's forward: the GEMM kernel, attention,
 * gate and experts (rs_seq_run), scoring a micro-batch (outputs,
 * explanations, input logs, learning records, drift), the sharded
 * forward and the rescore of an input log.
 * Design note: seq.c; what the files share: seq_priv.h. */
#define _GNU_SOURCE
#include "model/seq_priv.h"

/* ------------------------------------------------------------ helpers */

/* Start loading n bytes at p into L2 (prefetcht1): for a whole chunk
 * ahead, more than L1 holds beside the rows in use (with many entities
 * the caches come from DRAM). */
static inline void rs_prefetch_l2(const void *p, size_t n) {
    for (size_t o = 0; o < n; o += 64)
        __builtin_prefetch((const char *)p + o, 0, 2);
}

/* Part `part` of `parts` of what the forward reads of row rw's cache --
 * its keys/values (oldest first), then its times -- into L2
 * (prefetcht1).  A whole row is ~130 lines: issued at once, the
 * prefetches wait for free miss buffers; in parts, between other work,
 * they do not. */
static inline void rs_seq_prefetch_row(const rs_seq_t *s,
                                       const rs_seq_row_t *rw, int part,
                                       int parts) {
    const rs_seq_view_t *h = &rw->h;
    const size_t row = sizeof(float) * (size_t)s->stride;
    const size_t kvb = row * (size_t)h->n, tb = sizeof(int64_t) * (size_t)h->cap;
    const size_t tot = kvb + tb, b0 = tot * (size_t)part / (size_t)parts,
                 b1 = tot * (size_t)(part + 1) / (size_t)parts;
    /* ring bytes [b0, b1) of the view, oldest first: kv from slot start
     * to the end of the ring, then from slot 0 */
    const size_t first = row * (size_t)RS_MIN(h->n, h->cap - h->start);
    const char *kv = (const char *)h->kv;
    for (size_t o = b0 & ~(size_t)63; o < RS_MIN(b1, kvb); o += 64) {
        const char *p = o < first ? kv + row * (size_t)h->start + o
                                  : kv + (o - first);
        __builtin_prefetch(p, 0, 2);
    }
    if (b1 > kvb) {
        const size_t t0 = b0 > kvb ? b0 - kvb : 0;
        rs_prefetch_l2((const char *)h->t + t0, b1 - kvb - t0);
    }
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
            const rs_v8 sv[8] = {s00, s01, s02, s03, s10, s11, s12, s13};
            float r[2][4];
            rs_hsum8x8(sv, &r[0][0]);
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
        int j = 0;
        /* eight columns at a time: their horizontal sums together
         * (rs_hsum8x8, the tree of rs_hsum8) */
        for (; j + 8 <= N; j += 8) {
            const float *b0 = B + (size_t)j * ldb, *b1 = b0 + ldb,
                        *b2 = b1 + ldb, *b3 = b2 + ldb, *b4 = b3 + ldb,
                        *b5 = b4 + ldb, *b6 = b5 + ldb, *b7 = b6 + ldb;
            rs_v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0},
                  s6 = {0}, s7 = {0};
            for (int k = 0; k < K8; k += 8) {
                const rs_v8 x0 = rs_ld8(a0 + k);
                s0 += x0 * rs_ld8(b0 + k);
                s1 += x0 * rs_ld8(b1 + k);
                s2 += x0 * rs_ld8(b2 + k);
                s3 += x0 * rs_ld8(b3 + k);
                s4 += x0 * rs_ld8(b4 + k);
                s5 += x0 * rs_ld8(b5 + k);
                s6 += x0 * rs_ld8(b6 + k);
                s7 += x0 * rs_ld8(b7 + k);
            }
            const rs_v8 sv[8] = {s0, s1, s2, s3, s4, s5, s6, s7};
            float r[8];
            rs_hsum8x8(sv, r);
            for (int k = K8; k < K; k++) {
                r[0] += a0[k] * b0[k]; r[1] += a0[k] * b1[k];
                r[2] += a0[k] * b2[k]; r[3] += a0[k] * b3[k];
                r[4] += a0[k] * b4[k]; r[5] += a0[k] * b5[k];
                r[6] += a0[k] * b6[k]; r[7] += a0[k] * b7[k];
            }
            for (int t = 0; t < 8; t++)
                c0[j + t] = beta != 0.0f ? c0[j + t] + r[t] : r[t];
        }
        for (; j < N; j++) {
            const float *b0 = B + (size_t)j * ldb;
            rs_v8 s00 = {0};
            for (int k = 0; k < K8; k += 8) s00 += rs_ld8(a0 + k) * rs_ld8(b0 + k);
            float r0 = rs_hsum8(s00);
            for (int k = K8; k < K; k++) r0 += a0[k] * b0[k];
            c0[j] = beta != 0.0f ? c0[j] + r0 : r0;
        }
    }
}

void rs_seq_gemm(const rs_seq_t *s, int M, int N, int K, const float *A,
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

/* Forward rows r0 .. r0 + nb of rs (rows filled by the caller up to
 * nall >= r0 + nb: the caches of rows ahead are prefetched): every
 * activation is kept for the backward.  No allocation; reads the views,
 * writes nothing but rs. */
RS_HOT
void rs_seq_run(const rs_seq_t *s, rs_seq_run_t *rs, int r0, int nb, int nall) {
    const int d = s->d, din = s->din, dim = s->dim, E = s->E, k = s->k,
              H = s->H, L1 = s->L + 1, B = rs->cap, r1 = r0 + nb;
    const float *P = rs->P;
    const float isq = 1.0f / sqrtf((float)d);

    /* u [nb][din]: standardised x and the history extras */
    for (int r = r0; r < r1; r++) {
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
    rs_seq_gemm(s, nb, d, din, rs->u + (size_t)r0 * din, din, P + s->o_win,
                din, 0.0f, x0 + (size_t)r0 * d, d);
    for (int r = r0; r < r1; r++) {
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
        rs_seq_gemm(s, nb, 3 * d, d, xin + (size_t)r0 * d, d, P + s->o_qkv[l],
                    d, 0.0f, qkv + (size_t)r0 * 3 * d, 3 * d);
        /* attention, one row at a time over its cache + itself */
        for (int r = r0; r < r1; r++) {
            const rs_seq_row_t *rw = &rs->row[r];
            /* the keys/values and times of the row a chunk ahead: the
             * next chunk's rows are in L2 when it starts (its first loop
             * reads their times) */
            if (r + RS_SEQ_CHUNK < nall)
                rs_seq_prefetch_row(s, &rs->row[r + RS_SEQ_CHUNK], 0, 1);
            const float *q = qkv + (size_t)r * 3 * d;
            float *a = att + (size_t)r * L1;
            float *c = ctx + (size_t)r * d;
            const int n = rw->h.n;
            const float **vr = rs->vrow;
            float *cf = rs->vcf;
            /* q . k_j of the cached keys, eight at a time */
            for (int j = 0; j < n; j++) {
                int sl = (rw->h.start + j) % rw->h.cap;
                vr[j] = rw->h.kv + (size_t)sl * s->stride + (size_t)l * 2 * d;
            }
            rs_dots(q, vr, n, d, a);
            float mx = -INFINITY;
            for (int j = 0; j < n; j++) {
                int ib;
                float f;
                ib = rs->gib[(size_t)r * s->L + j];
                f = rs->gf[(size_t)r * s->L + j];
                float sc = a[j] * isq + tb[ib] * (1.0f - f) +
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
            /* c = sum_j a_j v_j + a_self v_self + sum_b wb_b TV_b, in this
             * order, accumulated in registers (rs_gemv_rows) */
            for (int j = 0; j < n; j++) {
                a[j] *= is;
                int ib;
                float f;
                ib = rs->gib[(size_t)r * s->L + j];
                f = rs->gf[(size_t)r * s->L + j];
                wb[ib] += a[j] * (1.0f - f);
                if (f > 0) wb[ib + 1] += a[j] * f;
                vr[j] += d; /* its value */
                cf[j] = a[j];
            }
            a[n] *= is;
            wb[0] += a[n];
            int m = n;
            vr[m] = q + 2 * d;
            cf[m++] = a[n];
            for (int b = 0; b < RS_SEQ_NB; b++)
                if (wb[b] != 0) {
                    vr[m] = TV + (size_t)b * d;
                    cf[m++] = wb[b];
                }
            memset(c, 0, sizeof(float) * (size_t)d);
            rs_gemv_rows(cf, vr, m, c, d);
        }
        /* x1 = xin + ctx Wo^T */
        memcpy(x1 + (size_t)r0 * d, xin + (size_t)r0 * d,
               sizeof(float) * (size_t)nb * d);
        rs_seq_gemm(s, nb, d, d, ctx + (size_t)r0 * d, d, P + s->o_wo[l], d,
                    1.0f, x1 + (size_t)r0 * d, d);
        /* gate: gp [nb][E] = softmax(x1 Wg^T), top-k */
        rs_seq_gemm(s, nb, E, d, x1 + (size_t)r0 * d, d, P + s->o_wg[l], d,
                    0.0f, gp + (size_t)r0 * E, E);
        memset(rs->gn, 0, sizeof(int) * (size_t)E);
        for (int r = r0; r < r1; r++) {
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
        for (int r = r0; r < r1; r++) {
            float *xo = xnext + (size_t)r * d;
            memcpy(xo, x1 + (size_t)r * d, sizeof(float) * (size_t)d);
            for (int t = 0; t < k; t++)
                rs_axpy(gw[(size_t)r * k + t], yex + ((size_t)r * k + t) * d, xo, d);
        }
    }
    for (int r = r0; r < r1; r++)
        rs->logit[r] = rs_dot(rs->xout + (size_t)r * d, P + s->o_wh, d) + P[s->o_bh];
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

int rs_seq_all_layers(const rs_seq_t *s) {
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

/* Output, explanation, contributions, log, learning record and drift bin
 * of row r of rs (forwarded), input rowin[r] of entity slot rowent[r]
 * (the other arguments: rs_seq_flush_rows). */
static void rs_seq_out_row(rs_seq_t *s, rs_seq_run_t *rs,
                           const uint32_t *rowent, const int *rowin,
                           uint8_t *bins, int bin0,
                           const rs_model_input_t *in, int r, int nb,
                           rs_model_output_t *out, float *contrib,
                           unsigned flags) {
    const int L1 = s->L + 1, B = rs->cap, k = s->k, dim = s->dim;
    const int dry = (flags & RS_MODEL_FWD_DRY) != 0;
    const int ii = rowin[r];
    const rs_seq_row_t *rw = &rs->row[r];
    rs_model_output_t *o = &out[ii];
    int asl[RS_MODEL_ATTEND_MAX]; /* cache slot of attended[t]          */
    /* the row a chunk ahead, in two parts: before and after this row's
     * backward */
    const int pf = r + RS_SEQ_CHUNK < nb;
    if (pf) rs_seq_prefetch_row(s, &rs->row[r + RS_SEQ_CHUNK], 0, 2);
    o->score = (float)rs_sigm((double)rs->logit[r]);
    o->contrib = NULL;
    o->n_attended = 0;
    o->n_experts = 0;
    o->self_weight = 0;
    o->n_hist = rw->h.n;
    o->log_len = 0;
    /* below in.explain_min: as without EXPLAIN and contrib (no backward) */
    if (!rs_model_explains(&in[ii], o->score)) {
        flags &= ~RS_MODEL_FWD_EXPLAIN;
        contrib = NULL;
    }
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
        const int na = RS_MIN(n, RS_MODEL_ATTEND_MAX);
        /* The na largest weights, largest first, newest first on ties;
         * NaN weights (huge cached k/v or diverged weights) are never
         * named.  One pass, newest to oldest, keeping the best so far in
         * order (a weight enters only if larger than the last kept: on a
         * tie the newer one stays ahead). */
        int tj[RS_MODEL_ATTEND_MAX], named = 0;
        float tw[RS_MODEL_ATTEND_MAX];
        for (int j = n - 1; j >= 0; j--) {
            const float wj = w[j];
            if (!(wj >= 0) || (named == na && !(wj > tw[na - 1]))) continue;
            int p = named < na ? named++ : na - 1;
            for (; p > 0 && wj > tw[p - 1]; p--) {
                tw[p] = tw[p - 1];
                tj[p] = tj[p - 1];
            }
            tw[p] = wj;
            tj[p] = j;
        }
        /* the attended events now, their metadata (from memory: only
         * these few of the entity's L) after the backward */
        for (int t = 0; t < named; t++) {
            const int best = tj[t];
            int jo = best < skip ? best : best + 1;
            int sl = (hv->start + jo) % hv->cap;
            const rs_seq_meta_t *m =
                &s->emeta[(size_t)rowent[r] * s->L + sl];
            __builtin_prefetch(m);
            __builtin_prefetch((const char *)(m + 1) - 1);
            asl[t] = sl;
            rs_model_attn_t *at = &o->attended[t];
            at->event_time_ms = hv->t[sl];
            at->weight = tw[t];
            at->rank = nfull - 1 - jo;
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
    if (pf) {
        const rs_seq_row_t *ra = &rs->row[r + RS_SEQ_CHUNK];
        rs_seq_prefetch_row(s, ra, 1, 2);
        /* and what its learning record reads (the newest event's log
         * position) and its append writes (the slot at the ring's head:
         * position and metadata) */
        /* its embedding rows (hashed tables of ~0.5 MB) */
        const size_t eb = sizeof(float) * (size_t)s->d;
        if (ra->cp) rs_prefetch_l2(rs->P + rs_seq_ecp_row(s, ra->cp), eb);
        for (int c = 0; c < ra->n_cat; c++)
            rs_prefetch_l2(rs->P + rs_seq_ecat_row(s, ra->cat[c]), eb);
        const uint32_t ea = rowent[r + RS_SEQ_CHUNK];
        if (ea != RS_SEQ_NO_ENT) {
            const size_t hs = (size_t)ea * s->L +
                              (size_t)((ra->h.start + ra->h.n) % ra->h.cap);
            __builtin_prefetch(&s->elpos[hs], 1, 2);
            __builtin_prefetch(&s->emeta[hs], 1, 2);
            __builtin_prefetch((const char *)&s->emeta[hs + 1] - 1, 1, 2);
        }
    }
    for (int t = 0; t < o->n_attended; t++) {
        const rs_seq_meta_t *m = &s->emeta[(size_t)rowent[r] * s->L + asl[t]];
        rs_model_attn_t *at = &o->attended[t];
        memcpy(at->event_id, m->id, sizeof(at->event_id));
        memcpy(at->counterparty_id, m->cp, sizeof(at->counterparty_id));
        at->amount = m->amount;
    }
    if (in[ii].log && rs_model_logs(&in[ii], o->score))
        o->log_len = rs_seq_log_write(s, rw, in[ii].log);
    if (flags & RS_MODEL_FWD_REMEMBER)
        rs_seq_lrec_write(s, rw, rowent[r], &in[ii], o->score,
                          rs->u[(size_t)r * s->din + dim]);
    if (dry) return;
    if (bins)
        bins[ii - bin0] = (uint8_t)rs_seq_psi_bin(rs->logit[r]);
    else
        rs_seq_drift_add(s, rs->logit[r]);
}

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
    const int dry = (flags & RS_MODEL_FWD_DRY) != 0;
    const int rem = (flags & RS_MODEL_FWD_REMEMBER) != 0;
    if (s->wuse) {
        rs->P = s->wuse->p;
        rs->mu = s->wuse->mu;
        rs->istd = s->wuse->istd;
    } else {
        rs->P = s->p;
        rs->mu = s->mu;
        rs->istd = s->istd;
    }
    /* Forward and explanation chunk by chunk: a row's activations and its
     * entity's cache are still in L1/L2 when its backward and its append
     * read them again (a whole batch of 512 rows is megabytes).  The exact
     * kernel gives every row the same bits whatever the chunk; a chunk's
     * appends cannot change what a later chunk reads (no entity repeats in
     * a sub-batch).  The "blas" kernel keeps whole batches (its bits
     * depend on them). */
    const int ch = s->conf.seq.gemm == 1 ? nb : RS_SEQ_CHUNK;
    for (int c0 = 0; c0 < nb; c0 += ch) {
        const int c1 = RS_MIN(nb, c0 + ch), cn = c1 - c0;
        /* The chunk's activations in rows 0 .. cn of the run state (a
         * window whose row r is the sub-batch's row c0 + r): the same few
         * kilobytes for every chunk, which stay in L1/L2, instead of a
         * fresh part of a megabyte-sized run state per chunk (written
         * back to memory later).  Same bits: the exact kernel computes a
         * row alike at any position. */
        rs_seq_run_t cw = *rs;
        cw.row = rs->row + c0;
        const uint32_t *cent = rowent + c0;
        const int *cin = rowin + c0;
        rs_seq_run(s, &cw, 0, cn, cn); /* prefetch: rs_seq_out_row */
        for (int r = 0; r < cn; r++)
            rs_seq_out_row(s, &cw, cent, cin, bins, bin0, in, r, nb - c0,
                           out, contrib, flags);
        if (dry) continue;
        for (int r = 0; r < cn; r++) {
            const rs_model_input_t *ir = &in[cin[r]];
            rs_seq_ent_append(s, cent[r], &cw, r, ir, rem ? ir->lpos + 1 : 0);
        }
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

/* Entity keys of the inputs ahead of the one being placed, and the
 * memory their placement reads prefetched: the entity index and entries
 * are megabytes, read at random, so each probe (index slot, then the
 * entry and its two LRU neighbours, which the move to the front rewrites)
 * would miss, one after the other.  rs_seq_keys_next(ka, i) for i = from,
 * from + 1, .. in order returns in[i]'s key (rs_hash_str, as before);
 * stale reads ahead only steer prefetches. */
#define RS_SEQ_KA 8 /* inputs ahead whose index slot is prefetched */
typedef struct rs_seq_keys_s {
    const rs_seq_t *s;
    const rs_model_input_t *in;
    int n;
    uint64_t key[2 * RS_SEQ_KA]; /* ring: key of input i at i % (2 KA) */
} rs_seq_keys_t;

static inline void rs_seq_keys_hash(rs_seq_keys_t *ka, int i) {
    const uint64_t key = rs_hash_str(ka->in[i].entity_id);
    ka->key[i % (2 * RS_SEQ_KA)] = key;
    __builtin_prefetch(&ka->s->eindex[(uint32_t)key & ka->s->emask]);
}

static void rs_seq_keys_init(rs_seq_keys_t *ka, const rs_seq_t *s,
                             const rs_model_input_t *in, int from, int n) {
    ka->s = s;
    ka->in = in;
    ka->n = n;
    for (int i = from; i < n && i < from + RS_SEQ_KA; i++) rs_seq_keys_hash(ka, i);
}

static inline uint64_t rs_seq_keys_next(rs_seq_keys_t *ka, int i) {
    const rs_seq_t *s = ka->s;
    if (i + RS_SEQ_KA < ka->n) rs_seq_keys_hash(ka, i + RS_SEQ_KA);
    if (i + RS_SEQ_KA / 2 < ka->n) { /* its index slot came in by now */
        const uint64_t k = ka->key[(i + RS_SEQ_KA / 2) % (2 * RS_SEQ_KA)];
        const uint32_t v = s->eindex[(uint32_t)k & s->emask];
        if (v) __builtin_prefetch(&s->ent[v - 1]);
    }
    if (i + RS_SEQ_KA / 4 < ka->n) { /* and its entry */
        const uint64_t k = ka->key[(i + RS_SEQ_KA / 4) % (2 * RS_SEQ_KA)];
        const uint32_t v = s->eindex[(uint32_t)k & s->emask];
        if (v) {
            const rs_seq_ent_t *e = &s->ent[v - 1];
            if (e->prev >= 0 && (uint32_t)e->prev < s->ecap)
                __builtin_prefetch(&s->ent[e->prev], 1);
            if (e->next >= 0 && (uint32_t)e->next < s->ecap)
                __builtin_prefetch(&s->ent[e->next], 1);
        }
    }
    return ka->key[i % (2 * RS_SEQ_KA)];
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
    rs_seq_keys_t ka;
    rs_seq_keys_init(&ka, s, in, 0, n);
    for (int i = 0; i < n; i++) {
        uint64_t key = rs_seq_keys_next(&ka, i);
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
    rs_seq_keys_t ka;
    rs_seq_keys_init(&ka, s, in, from, RS_MIN(n, from + pl->max_n));
    for (int i = from; i < n && j < pl->max_n; i++, j++) {
        uint64_t key = rs_seq_keys_next(&ka, i);
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
    rs_seq_run(s, tr, 0, 1, 1);
    s->conf.seq.gemm = gemm;
    *score = (float)rs_sigm((double)tr->logit[0]);
    return RS_OK;
}
