/* maint_eval.c -- eval's maintenance mode: per-event records of the
 * replay (entity, time, truth "fails within the horizon", failure marks,
 * scores, alert-policy decisions) and the report people act on: per
 * failing machine whether an alert came within the horizon and how far
 * ahead (lead time: median and distribution), false alerts per healthy
 * machine-day, the share of healthy readings in an open alert, AUC/AP of
 * "fails within the horizon"; side by side for every model and the
 * reference (a per-machine threshold on the most drifting sensor); an SVG
 * of score against time to failure for a few machines.  No I/O but the
 * FILE* the print is given. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "common/metrics.h"

#define RS_DAY_MS 86400000LL

struct rs_mev_s {
    int nm;                       /* columns: models + reference */
    char names[RS_EVAL_MODELS_MAX + 1][16];
    int64_t horizon;
    double thr;
    size_t n, cap;
    int64_t *t;
    uint64_t *ent;
    uint8_t *truth, *fail;
    uint8_t *dec;                 /* bit k: column k's policy alerted */
    uint8_t *open;                /* bit k: column k's machine in an open episode */
    float *score;                 /* [cap][nm] */
    int64_t *rul;                 /* [cap] RUL estimates, ms (NULL: none) */
    int64_t rul_cap;
};

rs_mev_t *rs_mev_new(int ncols, const char *const *names, int64_t horizon_ms,
                     double threshold) {
    if (ncols < 1 || ncols > RS_EVAL_MODELS_MAX + 1) return NULL;
    rs_mev_t *m = rs_calloc(1, sizeof(*m));
    m->nm = ncols;
    for (int k = 0; k < ncols; k++)
        rs_strlcpy(m->names[k], names[k], sizeof(m->names[k]));
    m->horizon = horizon_ms;
    m->thr = threshold;
    return m;
}

void rs_mev_destroy(rs_mev_t *m) {
    if (!m) return;
    free(m->t);
    free(m->ent);
    free(m->truth);
    free(m->fail);
    free(m->dec);
    free(m->open);
    free(m->score);
    free(m->rul);
    free(m);
}

void rs_mev_add(rs_mev_t *m, int64_t t, uint64_t ent, int truth, int failure,
                const float *scores, uint32_t decisions, uint32_t open) {
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 4096;
        m->t = rs_realloc(m->t, m->cap * sizeof(*m->t));
        m->ent = rs_realloc(m->ent, m->cap * sizeof(*m->ent));
        m->truth = rs_realloc(m->truth, m->cap);
        m->fail = rs_realloc(m->fail, m->cap);
        m->dec = rs_realloc(m->dec, m->cap);
        m->open = rs_realloc(m->open, m->cap);
        m->score = rs_realloc(m->score, m->cap * (size_t)m->nm * sizeof(float));
        if (m->rul) m->rul = rs_realloc(m->rul, m->cap * sizeof(*m->rul));
    }
    size_t i = m->n++;
    m->t[i] = t;
    m->ent[i] = ent;
    m->truth[i] = truth ? 1 : 0;
    m->fail[i] = failure ? 1 : 0;
    m->dec[i] = (uint8_t)decisions;
    m->open[i] = (uint8_t)open;
    memcpy(m->score + i * (size_t)m->nm, scores, (size_t)m->nm * sizeof(float));
}

void rs_mev_rul(rs_mev_t *m, int64_t rul_ms, int64_t cap_ms) {
    if (!m->n) return;
    if (!m->rul) {
        m->rul = rs_calloc(m->cap, sizeof(*m->rul));
        m->rul_cap = cap_ms;
    }
    m->rul[m->n - 1] = rul_ms;
}

/* RUL RMSE over the readings ix[0..n) (by entity, time). */
static void rs_mev_rul_report(const rs_mev_t *m, const size_t *ix, size_t n,
                              rs_mev_report_t *r) {
    const double cap = (double)m->rul_cap, H = 3600000.0;
    r->rul = 1;
    r->rul_cap = m->rul_cap;
    /* truths of the known readings: 2 passes (mean, then errors) */
    double *tru = rs_malloc((n + 1) * sizeof(double));
    uint8_t *use = rs_calloc(n + 1, 1);
    double sum = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && m->ent[ix[b]] == m->ent[ix[a]]) b++;
        int64_t next_fail = INT64_MIN;
        const int64_t t_end = m->t[ix[b - 1]];
        for (size_t k = b; k-- > a;) {
            size_t i = ix[k];
            if (m->fail[i]) next_fail = m->t[i];
            double y;
            if (next_fail != INT64_MIN) y = (double)(next_fail - m->t[i]);
            else if ((double)(t_end - m->t[i]) >= cap) y = cap;
            else {
                r->rul_censored++;
                continue;
            }
            if (y > cap) y = cap;
            if (m->rul[i] <= 0) continue; /* no estimate yet */
            tru[k] = y;
            use[k] = 1 + (y <= (double)m->horizon);
            sum += y;
            r->rul_n++;
            if (use[k] == 2) r->rul_near_n++;
        }
        a = b;
    }
    /* the reference: one constant (the mean of every known truth), which
     * cannot know which readings are close to a failure */
    double mean = r->rul_n ? sum / (double)r->rul_n : 0;
    double mean_near = mean;
    double se = 0, se_b = 0, se_n = 0, se_nb = 0;
    for (size_t k = 0; k < n; k++) {
        if (!use[k]) continue;
        double e = (double)m->rul[ix[k]] - tru[k];
        se += e * e;
        se_b += (mean - tru[k]) * (mean - tru[k]);
        if (use[k] == 2) {
            se_n += e * e;
            se_nb += (mean_near - tru[k]) * (mean_near - tru[k]);
        }
    }
    if (r->rul_n) {
        r->rul_rmse_h = sqrt(se / (double)r->rul_n) / H;
        r->rul_base_h = sqrt(se_b / (double)r->rul_n) / H;
    }
    if (r->rul_near_n) {
        r->rul_near_rmse_h = sqrt(se_n / (double)r->rul_near_n) / H;
        r->rul_near_base_h = sqrt(se_nb / (double)r->rul_near_n) / H;
    }
    free(tru);
    free(use);
}

static const rs_mev_t *rs_mev_cmp_m;
static int rs_mev_cmp(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const rs_mev_t *m = rs_mev_cmp_m;
    if (m->ent[i] != m->ent[j]) return m->ent[i] < m->ent[j] ? -1 : 1;
    if (m->t[i] != m->t[j]) return m->t[i] < m->t[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int rs_mev_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t rs_mev_q(const int64_t *v, size_t n, double q) {
    if (!n) return -1;
    size_t k = (size_t)floor(q * (double)(n - 1) + 0.5);
    return v[k];
}

rs_mev_report_t *rs_mev_report(const rs_mev_t *m) {
    if (!m->n) return NULL;
    rs_mev_report_t *r = rs_calloc(1, sizeof(*r));
    r->ncols = m->nm;
    r->horizon = m->horizon;
    r->threshold = m->thr;
    for (int k = 0; k < m->nm; k++)
        rs_strlcpy(r->col[k].name, m->names[k], sizeof(r->col[k].name));
    size_t n = m->n;
    size_t *ix = rs_malloc(n * sizeof(*ix));
    for (size_t i = 0; i < n; i++) ix[i] = i;
    rs_mev_cmp_m = m;
    qsort(ix, n, sizeof(*ix), rs_mev_cmp);
    r->readings = n;
    /* healthy machine-days: distinct (entity, UTC day) with a healthy
     * reading; machines */
    uint64_t prev_ent = 0;
    int64_t prev_day = INT64_MIN;
    int first = 1;
    for (size_t a = 0; a < n; a++) {
        size_t i = ix[a];
        if (first || m->ent[i] != prev_ent) {
            r->machines++;
            prev_day = INT64_MIN;
        }
        first = 0;
        prev_ent = m->ent[i];
        r->positives += m->truth[i];
        if (m->truth[i]) continue;
        int64_t d = m->t[i] >= 0 ? m->t[i] / RS_DAY_MS : -1;
        if (d != prev_day) r->healthy_days++;
        prev_day = d;
    }
    /* failures and their lead times, per column */
    int64_t *leads[RS_EVAL_MODELS_MAX + 1];
    size_t nlead[RS_EVAL_MODELS_MAX + 1] = {0};
    for (int k = 0; k < m->nm; k++) leads[k] = rs_malloc((n + 1) * sizeof(int64_t));
    size_t ent_start = 0;
    for (size_t a = 0; a < n; a++) {
        size_t i = ix[a];
        if (a == 0 || m->ent[i] != m->ent[ix[a - 1]]) ent_start = a;
        if (!m->fail[i]) continue;
        r->failures++;
        const int64_t T = m->t[i];
        for (int k = 0; k < m->nm; k++) {
            /* the earlier of: the episode open at the failure (from its
             * first open reading), and the first alert within the horizon
             * (rs_alertpol_lead: an episode opened silently in a cool-down
             * after that alert is the same alerted problem) */
            int64_t first_alert = INT64_MIN;
            size_t b = a + 1;
            if ((m->open[i] >> k) & 1)
                while (b-- > ent_start && ((m->open[ix[b]] >> k) & 1))
                    first_alert = m->t[ix[b]];
            for (b = a + 1; b-- > ent_start;) {
                size_t j = ix[b];
                if (m->t[j] < T - m->horizon) break;
                if ((m->dec[j] & (1u << k)) &&
                    (first_alert == INT64_MIN || m->t[j] < first_alert))
                    first_alert = m->t[j];
            }
            if (first_alert == INT64_MIN) continue;
            r->col[k].caught++;
            int64_t lead = T - first_alert;
            if (lead * 3 >= m->horizon) r->col[k].caught_third++;
            leads[k][nlead[k]++] = lead;
        }
    }
    int *lab = rs_malloc(n * sizeof(int));
    double *sc = rs_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) lab[i] = m->truth[i];
    for (int k = 0; k < m->nm; k++) {
        rs_mev_col_t *c = &r->col[k];
        uint64_t healthy = 0;
        for (size_t i = 0; i < n; i++) {
            sc[i] = m->score[i * (size_t)m->nm + (size_t)k];
            int al = (m->dec[i] >> k) & 1, op = (m->open[i] >> k) & 1;
            c->alerts += (uint64_t)al;
            if (!m->truth[i]) {
                healthy++;
                c->false_alerts += (uint64_t)al;
                c->healthy_open += (uint64_t)op;
                c->healthy_above += (uint64_t)(sc[i] >= m->thr);
            }
        }
        c->auc = rs_auc_exact(sc, lab, n);
        c->ap = rs_ap_exact(sc, lab, n);
        c->healthy_open_share = healthy ? (double)c->healthy_open / (double)healthy : 0;
        c->healthy_above_share = healthy ? (double)c->healthy_above / (double)healthy : 0;
        c->false_per_day = r->healthy_days
                               ? (double)c->false_alerts / (double)r->healthy_days
                               : 0;
        qsort(leads[k], nlead[k], sizeof(int64_t), rs_mev_cmp_i64);
        static const double qs[5] = {0.1, 0.25, 0.5, 0.75, 0.9};
        for (int q = 0; q < 5; q++) c->lead_q[q] = rs_mev_q(leads[k], nlead[k], qs[q]);
        free(leads[k]);
    }
    if (m->rul) rs_mev_rul_report(m, ix, n, r);
    free(lab);
    free(sc);
    free(ix);
    return r;
}

void rs_mev_report_destroy(rs_mev_report_t *r) { free(r); }

static void rs_mev_dur(int64_t ms, char *b, size_t n) {
    if (ms < 0) snprintf(b, n, "-");
    else if (ms >= 2 * RS_DAY_MS) snprintf(b, n, "%.1fd", (double)ms / RS_DAY_MS);
    else snprintf(b, n, "%.1fh", (double)ms / 3600000.0);
}

void rs_mev_report_print(const rs_mev_report_t *r, FILE *fp) {
    char h[32];
    rs_mev_dur(r->horizon, h, sizeof(h));
    fprintf(fp, "\nmaintenance: %llu readings of %llu machines, %llu failures, "
            "%llu readings within the %s horizon of a failure (%.2f%%), "
            "%llu healthy machine-days; alert policy: score >= %g for the "
            "configured consecutive readings, one alert per episode\n",
            (unsigned long long)r->readings, (unsigned long long)r->machines,
            (unsigned long long)r->failures,
            (unsigned long long)r->positives, h,
            r->readings ? 100.0 * (double)r->positives / (double)r->readings : 0,
            (unsigned long long)r->healthy_days, r->threshold);
    fprintf(fp, "%-6s %8s %8s %9s %9s %8s %8s %8s %8s %10s %9s %9s\n", "model",
            "ROC AUC", "avg prec", "caught", ">=H/3", "lead p10", "lead p50",
            "lead p90", "alerts", "false/m-d", "healthy%", "above%");
    for (int k = 0; k < r->ncols; k++) {
        const rs_mev_col_t *c = &r->col[k];
        char a[24], b[24], p10[16], p50[16], p90[16];
        snprintf(a, sizeof(a), "%llu/%llu", (unsigned long long)c->caught,
                 (unsigned long long)r->failures);
        snprintf(b, sizeof(b), "%.1f%%", r->failures ? 100.0 * (double)c->caught_third / (double)r->failures : 0);
        rs_mev_dur(c->lead_q[0], p10, sizeof(p10));
        rs_mev_dur(c->lead_q[2], p50, sizeof(p50));
        rs_mev_dur(c->lead_q[4], p90, sizeof(p90));
        fprintf(fp, "%-6s %8.4f %8.4f %9s %9s %8s %8s %8s %8llu %10.3f %8.2f%% "
                "%8.2f%%\n", c->name, c->auc, c->ap, a, b, p10, p50, p90,
                (unsigned long long)c->alerts, c->false_per_day,
                100 * c->healthy_open_share, 100 * c->healthy_above_share);
    }
    fprintf(fp, "(caught: failures in an open alert episode, or with an "
            "alert within the horizon before them; >=H/3: at least a third of "
            "the horizon ahead; lead: failure - the start of that episode or "
            "that alert, whichever came first); false/m-d: alerts on healthy "
            "readings per healthy machine-day; healthy%%: healthy readings "
            "inside an open alert episode; above%%: healthy readings scored >= "
            "the threshold)\n");
    if (r->rul) {
        char cap[32];
        rs_mev_dur(r->rul_cap, cap, sizeof(cap));
        fprintf(fp, "remaining useful life (capped at %s): RMSE %.2f h over "
                "%llu readings (constant-mean reference %.2f h); within the "
                "%s horizon of a failure: RMSE %.2f h over %llu (reference "
                "%.2f h); %llu censored readings left out (their machine seen "
                "running less than the cap after them)\n", cap, r->rul_rmse_h,
                (unsigned long long)r->rul_n, r->rul_base_h, h,
                r->rul_near_rmse_h, (unsigned long long)r->rul_near_n,
                r->rul_near_base_h, (unsigned long long)r->rul_censored);
    }
}

/* --------------------------------------------------------------- plot */

char *rs_mev_plot_svg(const rs_mev_t *m, int machines, const char *title) {
    if (!m->n) return NULL;
    char *out = NULL;
    size_t olen = 0;
    FILE *fp = open_memstream(&out, &olen);
    if (!fp) return NULL;
    const int W = 960, PH = 260, L = 70, R = 30, TOP = 80, GAP = 60;
    const int ncol = m->nm;
    const int Hs = TOP + ncol * (PH + GAP) + 20;
    const double span = 3.0 * (double)m->horizon; /* x: [-3H, 0] */
    static const char *const colors[] = {"#d62728", "#1f77b4", "#2ca02c",
                                         "#9467bd", "#ff7f0e", "#8c564b"};
    fprintf(fp, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, Hs);
    fprintf(fp, "<text x=\"%d\" y=\"24\" font-size=\"15\">", L);
    for (const char *s = title ? title : ""; *s; s++) {
        if (*s == '<') fputs("&lt;", fp);
        else if (*s == '&') fputs("&amp;", fp);
        else fputc(*s, fp);
    }
    fprintf(fp, "</text>\n<text x=\"%d\" y=\"44\">score against time to "
            "failure for %d failing machines (one colour each); the shaded "
            "band is the horizon</text>\n", L, machines);
    /* the failures to draw: the first `machines` by time */
    size_t nf = 0, *fi = rs_malloc((size_t)(machines > 0 ? machines : 1) * sizeof(size_t));
    for (size_t i = 0; i < m->n && nf < (size_t)machines; i++)
        if (m->fail[i]) fi[nf++] = i;
    for (int k = 0; k < ncol; k++) {
        int y0 = TOP + k * (PH + GAP);
        double px0 = L, pw = W - L - R;
        fprintf(fp, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n",
                L, y0 - 8, m->names[k]);
        fprintf(fp, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                "fill=\"#f2f2f2\"/>\n", px0 + pw * (1 - (double)m->horizon / span),
                y0, pw * (double)m->horizon / span, PH);
        fprintf(fp, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%d\" "
                "fill=\"none\" stroke=\"#333\"/>\n", L, y0, pw, PH);
        double ythr = y0 + PH * (1 - m->thr);
        fprintf(fp, "<line x1=\"%d\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n", L, L + pw, ythr,
                ythr);
        for (int g = 0; g <= 3; g++) {
            double x = px0 + pw * g / 3.0;
            char b[32];
            rs_mev_dur((int64_t)(span * (3 - g) / 3.0), b, sizeof(b));
            fprintf(fp, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">-%s"
                    "</text>\n", x, y0 + PH + 16, g == 3 ? "0" : b);
        }
        fprintf(fp, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">1</text>"
                "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n", L - 6,
                y0 + 10, L - 6, y0 + PH);
        for (size_t f = 0; f < nf; f++) {
            size_t i0 = fi[f];
            const uint64_t e = m->ent[i0];
            const int64_t T = m->t[i0];
            fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" "
                    "stroke-width=\"1.2\" points=\"", colors[f % 6]);
            for (size_t j = 0; j <= i0; j++) {
                if (m->ent[j] != e || (double)(T - m->t[j]) > span) continue;
                double x = px0 + pw * (1 - (double)(T - m->t[j]) / span);
                double y = y0 + PH * (1 - m->score[j * (size_t)ncol + (size_t)k]);
                fprintf(fp, "%.1f,%.1f ", x, y);
            }
            fprintf(fp, "\"/>\n");
        }
    }
    fprintf(fp, "</svg>\n");
    free(fi);
    if (fclose(fp)) {
        free(out);
        return NULL;
    }
    return out;
}
