/* eval.c -- the prequential replay and the metrics accumulator (eval.h).
 *
 * The replay keeps labels in flight in a binary min-heap on (available
 * time, arrival order): before an event at t is scored, every label with
 * available time <= t is applied, so no score can see a label from its
 * future.  Metrics are computed at the end from compact per-event arrays
 * (time, entity hash, truth, pattern, one float per model). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "gbt.h"
#include "common/metrics.h"
#include "model/coldstart.h"
#include "model/maint.h"
#include "model/rul.h"

#define RS_DAY_MS 86400000LL

/* ----------------------------------------------------------- accumulator */

struct rs_eval_acc_s {
    int nm;
    char names[RS_EVAL_MODELS_MAX][16];
    int64_t top_k;
    double thr;
    size_t n, cap;
    int64_t *t;          /* [cap] event time        */
    uint64_t *ent;       /* [cap] entity id hash    */
    uint8_t *label;      /* [cap] truth 0/1         */
    uint8_t *pat;        /* [cap] pattern index     */
    float *score;        /* [cap][nm]               */
    int64_t *known;      /* [cap] fraud label known at (INT64_MAX never) */
    uint8_t *alert;      /* [cap] bit k: model k alerted */
    char rule[160];
    int npat;
    char pats[RS_EVAL_PATTERNS_MAX][RS_EVAL_PATTERN_LEN]; /* [0] = none */
};

rs_eval_acc_t *rs_eval_acc_new(int nmodels, const char *const *names,
                               int64_t top_k, double threshold,
                               char *errstr, size_t errstr_size) {
    if (nmodels < 1 || nmodels > RS_EVAL_MODELS_MAX || top_k < 1 ||
        !isfinite(threshold)) {
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "eval: need 1..%d models, top_k >= 1, a finite threshold",
                RS_EVAL_MODELS_MAX);
        return NULL;
    }
    rs_eval_acc_t *acc = rs_calloc(1, sizeof(*acc));
    acc->nm = nmodels;
    for (int i = 0; i < nmodels; i++)
        rs_strlcpy(acc->names[i], names[i], sizeof(acc->names[i]));
    acc->top_k = top_k;
    acc->thr = threshold;
    rs_strlcpy(acc->pats[0], "none", sizeof(acc->pats[0]));
    acc->npat = 1;
    snprintf(acc->rule, sizeof(acc->rule), "score >= %g", threshold);
    return acc;
}

void rs_eval_acc_destroy(rs_eval_acc_t *acc) {
    if (!acc) return;
    free(acc->t);
    free(acc->ent);
    free(acc->label);
    free(acc->pat);
    free(acc->score);
    free(acc->known);
    free(acc->alert);
    free(acc);
}

void rs_eval_acc_alert_rule(rs_eval_acc_t *acc, const char *rule) {
    rs_strlcpy(acc->rule, rule, sizeof(acc->rule));
}

static int rs_acc_pattern(rs_eval_acc_t *acc, const char *p) {
    if (!p || !*p || !strcmp(p, "none")) return 0;
    for (int i = 1; i < acc->npat; i++)
        if (!strcmp(acc->pats[i], p)) return i;
    if (acc->npat == RS_EVAL_PATTERNS_MAX) return 0;
    rs_strlcpy(acc->pats[acc->npat], p, sizeof(acc->pats[0]));
    return acc->npat++;
}

void rs_eval_acc_add(rs_eval_acc_t *acc, int64_t event_time_ms,
                     const char *entity_id, int label, const char *pattern,
                     const float *scores) {
    uint32_t alerts = 0;
    for (int k = 0; k < acc->nm; k++)
        alerts |= (uint32_t)(scores[k] >= acc->thr) << k;
    rs_eval_acc_add_ex(acc, event_time_ms, entity_id, label, pattern, scores,
                       INT64_MAX, alerts);
}

void rs_eval_acc_add_ex(rs_eval_acc_t *acc, int64_t event_time_ms,
                        const char *entity_id, int label, const char *pattern,
                        const float *scores, int64_t known_ms,
                        uint32_t alerts) {
    if (acc->n == acc->cap) {
        acc->cap = acc->cap ? acc->cap * 2 : 4096;
        acc->t = rs_realloc(acc->t, acc->cap * sizeof(*acc->t));
        acc->ent = rs_realloc(acc->ent, acc->cap * sizeof(*acc->ent));
        acc->label = rs_realloc(acc->label, acc->cap);
        acc->pat = rs_realloc(acc->pat, acc->cap);
        acc->score = rs_realloc(acc->score, acc->cap * (size_t)acc->nm *
                                                sizeof(*acc->score));
        acc->known = rs_realloc(acc->known, acc->cap * sizeof(*acc->known));
        acc->alert = rs_realloc(acc->alert, acc->cap);
    }
    size_t i = acc->n++;
    acc->t[i] = event_time_ms;
    acc->ent[i] = rs_hash_str(entity_id ? entity_id : "");
    acc->label[i] = label ? 1 : 0;
    acc->pat[i] = (uint8_t)rs_acc_pattern(acc, pattern);
    memcpy(acc->score + i * (size_t)acc->nm, scores,
           (size_t)acc->nm * sizeof(*scores));
    acc->known[i] = known_ms;
    acc->alert[i] = (uint8_t)alerts;
}

static int64_t rs_day_of(int64_t t) {
    int64_t d = t / RS_DAY_MS;
    if (t % RS_DAY_MS < 0) d--;
    return d;
}

/* Sort keys of the report (file-local qsort comparators). */
typedef struct { int64_t day; uint32_t i; } rs_dayidx_t;
static int rs_cmp_dayidx(const void *a, const void *b) {
    const rs_dayidx_t *x = a, *y = b;
    if (x->day != y->day) return x->day < y->day ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

typedef struct { uint64_t ent; float score; uint8_t pos; } rs_entsc_t;
static int rs_cmp_ent(const void *a, const void *b) {
    const rs_entsc_t *x = a, *y = b;
    return x->ent < y->ent ? -1 : x->ent > y->ent;
}
/* Highest score first; ties by entity hash so the order is total. */
static int rs_cmp_entscore(const void *a, const void *b) {
    const rs_entsc_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->ent < y->ent ? -1 : x->ent > y->ent;
}

typedef struct { uint64_t ent; int64_t known; } rs_entknown_t;
static int rs_cmp_ek(const void *x, const void *y) {
    const rs_entknown_t *a = x, *b = y;
    return a->ent < b->ent ? -1 : a->ent > b->ent;
}

/* Scratch buffers sized for the largest group, reused across groups. */
typedef struct {
    double *s;
    int *l;
    rs_entsc_t *es;
} rs_scratch_t;

/* Metrics of model k over the events idx[0..n). */
static void rs_acc_metrics(const rs_eval_acc_t *acc, const rs_dayidx_t *idx,
                           size_t n, int k, rs_scratch_t *w,
                           rs_eval_metrics_t *m, uint64_t *entities) {
    memset(m, 0, sizeof(*m));
    for (size_t j = 0; j < n; j++) {
        uint32_t i = idx[j].i;
        float sc = acc->score[(size_t)i * (size_t)acc->nm + (size_t)k];
        w->s[j] = sc;
        w->l[j] = acc->label[i];
        m->alerts += (acc->alert[i] >> k) & 1;
        w->es[j] = (rs_entsc_t){acc->ent[i], sc, acc->label[i]};
    }
    m->auc = rs_auc_exact(w->s, w->l, n);
    m->ap = rs_ap_exact(w->s, w->l, n);
    m->alert_rate = n ? (double)m->alerts / (double)n : NAN;
    /* entities of the group: max score, any positive */
    qsort(w->es, n, sizeof(*w->es), rs_cmp_ent);
    size_t ne = 0;
    for (size_t j = 0; j < n; j++) {
        if (ne && w->es[ne - 1].ent == w->es[j].ent) {
            if (w->es[j].score > w->es[ne - 1].score)
                w->es[ne - 1].score = w->es[j].score;
            w->es[ne - 1].pos |= w->es[j].pos;
        } else {
            w->es[ne++] = w->es[j];
        }
    }
    qsort(w->es, ne, sizeof(*w->es), rs_cmp_entscore);
    size_t kk = (size_t)acc->top_k < ne ? (size_t)acc->top_k : ne;
    for (size_t j = 0; j < kk; j++) m->topk_hits += w->es[j].pos;
    m->topk_picks = kk;
    m->p_at_k = kk ? (double)m->topk_hits / (double)kk : NAN;
    if (entities) *entities = ne;
}

rs_eval_report_t *rs_eval_acc_report(const rs_eval_acc_t *acc) {
    if (!acc->n) return NULL;
    size_t n = acc->n;
    rs_eval_report_t *rep = rs_calloc(1, sizeof(*rep));
    rep->nmodels = acc->nm;
    memcpy(rep->model, acc->names, sizeof(rep->model));
    rep->top_k = acc->top_k;
    rep->threshold = acc->thr;
    rs_dayidx_t *idx = rs_malloc(n * sizeof(*idx));
    for (size_t i = 0; i < n; i++)
        idx[i] = (rs_dayidx_t){rs_day_of(acc->t[i]), (uint32_t)i};
    qsort(idx, n, sizeof(*idx), rs_cmp_dayidx);
    rs_scratch_t w = {rs_malloc(n * sizeof(double)), rs_malloc(n * sizeof(int)),
                      rs_malloc(n * sizeof(rs_entsc_t))};
    int nd = 0;
    for (size_t j = 0; j < n; j++) nd += !j || idx[j].day != idx[j - 1].day;
    rep->days = rs_calloc((size_t)nd, sizeof(*rep->days));
    rs_eval_day_t *all = &rep->overall;
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && idx[b].day == idx[a].day) b++;
        rs_eval_day_t *d = &rep->days[rep->ndays++];
        d->day_ms = idx[a].day * RS_DAY_MS;
        d->events = b - a;
        for (size_t j = a; j < b; j++) d->positives += acc->label[idx[j].i];
        for (int k = 0; k < acc->nm; k++) {
            rs_acc_metrics(acc, idx + a, b - a, k, &w, &d->m[k],
                           k ? NULL : &d->entities);
            all->m[k].topk_hits += d->m[k].topk_hits;
            all->m[k].topk_picks += d->m[k].topk_picks;
        }
        all->events += d->events;
        all->positives += d->positives;
        all->entities += d->entities;  /* entity-days */
        a = b;
    }
    for (int k = 0; k < acc->nm; k++) {
        double sa = 0, sp = 0;
        int na = 0, np = 0;
        for (int d = 0; d < rep->ndays; d++) {
            const rs_eval_metrics_t *dm = &rep->days[d].m[k];
            if (!isnan(dm->auc)) { sa += dm->auc; na++; }
            if (!isnan(dm->ap)) { sp += dm->ap; np++; }
        }
        all->m[k].auc_day_mean = na ? sa / na : NAN;
        all->m[k].ap_day_mean = np ? sp / np : NAN;
        rs_eval_metrics_t m;
        rs_acc_metrics(acc, idx, n, k, &w, &m, NULL);
        all->m[k].auc = m.auc;
        all->m[k].ap = m.ap;
        all->m[k].alerts = m.alerts;
        all->m[k].alert_rate = m.alert_rate;
        all->m[k].p_at_k = all->m[k].topk_picks
                               ? (double)all->m[k].topk_hits /
                                     (double)all->m[k].topk_picks
                               : NAN;
    }
    /* weekly card precision@k with known-compromised cards removed */
    {
        /* earliest known fraud label per entity: sorted (entity, known) */
        rs_entknown_t *ek = rs_malloc(n * sizeof(*ek));
        size_t nk = 0;
        for (size_t i = 0; i < n; i++)
            if (acc->known[i] != INT64_MAX)
                ek[nk++] = (rs_entknown_t){acc->ent[i], acc->known[i]};
        qsort(ek, nk, sizeof(*ek), rs_cmp_ek);
        size_t u = 0;
        for (size_t j = 0; j < nk; j++) {
            if (u && ek[u - 1].ent == ek[j].ent) {
                if (ek[j].known < ek[u - 1].known) ek[u - 1].known = ek[j].known;
            } else {
                ek[u++] = ek[j];
            }
        }
        nk = u;
        int64_t first = rep->ndays ? rep->days[0].day_ms : 0;
        int64_t last = rep->ndays ? rep->days[rep->ndays - 1].day_ms : 0;
        rep->nweeks = rep->ndays ? (int)((last - first) / (7 * RS_DAY_MS)) + 1 : 0;
        rep->weeks = rs_calloc((size_t)RS_MAX(rep->nweeks, 1), sizeof(*rep->weeks));
        double dsum[RS_EVAL_MODELS_MAX] = {0};
        int dn = 0;
        rs_dayidx_t *sub = rs_malloc(n * sizeof(*sub));
        for (int wk = 0; wk < rep->nweeks; wk++) {
            rs_eval_week_t *W = &rep->weeks[wk];
            W->start_ms = first + (int64_t)wk * 7 * RS_DAY_MS;
            for (size_t j = 0; j < nk; j++) W->cards_removed += ek[j].known < W->start_ms;
        }
        for (size_t a = 0; a < n;) {
            size_t b = a;
            while (b < n && idx[b].day == idx[a].day) b++;
            int64_t dms = idx[a].day * RS_DAY_MS;
            int wk = (int)((dms - first) / (7 * RS_DAY_MS));
            rs_eval_week_t *W = &rep->weeks[wk];
            size_t m = 0;
            for (size_t j = a; j < b; j++) {
                uint64_t e = acc->ent[idx[j].i];
                size_t lo = 0, hi = nk;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (ek[mid].ent < e) lo = mid + 1; else hi = mid;
                }
                if (lo < nk && ek[lo].ent == e && ek[lo].known < W->start_ms)
                    continue;  /* known compromised before the week */
                sub[m++] = idx[j];
            }
            W->days++;
            dn++;
            for (int k = 0; k < acc->nm; k++) {
                rs_eval_metrics_t mm;
                uint64_t ents = 0;
                if (m) rs_acc_metrics(acc, sub, m, k, &w, &mm, &ents);
                double p = m && mm.topk_picks ? (double)mm.topk_hits / (double)acc->top_k : 0;
                W->card_p_at_k[k] += p;
                dsum[k] += p;
            }
            /* card-days with a fraud among the kept cards */
            {
                uint64_t fc = 0;
                for (size_t j = 0; j < m; j++) {
                    w.es[j] = (rs_entsc_t){acc->ent[sub[j].i], 0, acc->label[sub[j].i]};
                }
                qsort(w.es, m, sizeof(*w.es), rs_cmp_ent);
                for (size_t j = 0; j < m; j++) {
                    int newent = !j || w.es[j].ent != w.es[j - 1].ent;
                    if (newent) {
                        int pos = 0;
                        for (size_t q = j; q < m && w.es[q].ent == w.es[j].ent; q++)
                            pos |= w.es[q].pos;
                        fc += (uint64_t)pos;
                    }
                }
                W->fraud_cards += fc;
            }
            a = b;
        }
        for (int wk = 0; wk < rep->nweeks; wk++)
            for (int k = 0; k < acc->nm; k++)
                rep->weeks[wk].card_p_at_k[k] =
                    rep->weeks[wk].days ? rep->weeks[wk].card_p_at_k[k] / rep->weeks[wk].days
                                        : NAN;
        for (int k = 0; k < acc->nm; k++)
            rep->card_p_at_k[k] = dn ? dsum[k] / dn : NAN;
        free(sub);
        free(ek);
    }
    rs_strlcpy(rep->alert_rule, acc->rule, sizeof(rep->alert_rule));
    /* per pattern: its positives against all negatives */
    if (acc->npat > 1) {
        rep->npatterns = acc->npat - 1;
        for (int p = 1; p < acc->npat; p++) {
            rs_eval_pattern_t *rp = &rep->patterns[p - 1];
            rs_strlcpy(rp->name, acc->pats[p], sizeof(rp->name));
            for (int k = 0; k < acc->nm; k++) {
                size_t m = 0;
                for (size_t i = 0; i < n; i++) {
                    if (acc->label[i] && acc->pat[i] != p) continue;
                    w.s[m] = acc->score[i * (size_t)acc->nm + (size_t)k];
                    w.l[m++] = acc->label[i];
                }
                rp->auc[k] = rs_auc_exact(w.s, w.l, m);
                rp->ap[k] = rs_ap_exact(w.s, w.l, m);
            }
            for (size_t i = 0; i < n; i++)
                rp->positives += acc->label[i] && acc->pat[i] == p;
        }
        for (size_t i = 0; i < n; i++)
            rep->pattern_unmatched += acc->label[i] && !acc->pat[i];
    }
    free(w.s);
    free(w.l);
    free(w.es);
    free(idx);
    return rep;
}

void rs_eval_report_destroy(rs_eval_report_t *rep) {
    if (!rep) return;
    free(rep->weeks);
    free(rep->days);
    free(rep);
}

/* "%.4f" or "-" for NaN, right-aligned in `w`. */
static void rs_pnum(FILE *fp, double v, int w, int pct) {
    if (isnan(v)) fprintf(fp, " %*s", w, "-");
    else if (pct) fprintf(fp, " %*.2f%%", w - 1, v * 100);
    else fprintf(fp, " %*.4f", w, v);
}

static void rs_day_str(int64_t day_ms, char *buf, size_t size) {
    char t[40];
    rs_time_fmt(day_ms, t, sizeof(t));
    snprintf(buf, size, "%.10s", t);
}

void rs_eval_report_print(const rs_eval_report_t *rep, int per_day, FILE *fp) {
    const rs_eval_day_t *all = &rep->overall;
    char pk[16];
    snprintf(pk, sizeof(pk), "P@%lld/day", (long long)rep->top_k);
    if (per_day && rep->ndays) {
        fprintf(fp, "per day (UTC):\n%-10s %8s %6s", "day", "events", "pos");
        for (int k = 0; k < rep->nmodels; k++)
            fprintf(fp, " | %-4s %6s %6s %6s %7s", rep->model[k], "AUC", "AP",
                    "P@k", "alert");
        fputc('\n', fp);
        for (int d = 0; d < rep->ndays; d++) {
            const rs_eval_day_t *dy = &rep->days[d];
            char ds[16];
            rs_day_str(dy->day_ms, ds, sizeof(ds));
            fprintf(fp, "%-10s %8llu %6llu", ds,
                    (unsigned long long)dy->events,
                    (unsigned long long)dy->positives);
            for (int k = 0; k < rep->nmodels; k++) {
                const rs_eval_metrics_t *m = &dy->m[k];
                fprintf(fp, " | %-4s", "");
                if (isnan(m->auc)) fprintf(fp, " %6s", "-");
                else fprintf(fp, " %6.3f", m->auc);
                if (isnan(m->ap)) fprintf(fp, " %6s", "-");
                else fprintf(fp, " %6.3f", m->ap);
                if (isnan(m->p_at_k)) fprintf(fp, " %6s", "-");
                else fprintf(fp, " %6.3f", m->p_at_k);
                fprintf(fp, " %6.2f%%", m->alert_rate * 100);
            }
            fputc('\n', fp);
        }
        fputc('\n', fp);
    }
    char d0[16] = "-", d1[16] = "-";
    if (rep->ndays) {
        rs_day_str(rep->days[0].day_ms, d0, sizeof(d0));
        rs_day_str(rep->days[rep->ndays - 1].day_ms, d1, sizeof(d1));
    }
    fprintf(fp, "overall: %llu events, %llu positives (%.2f%%), %d day(s) "
            "(%s .. %s), top-k %lld entities/day, alerts: %s\n",
            (unsigned long long)all->events,
            (unsigned long long)all->positives,
            all->events ? 100.0 * (double)all->positives / (double)all->events
                        : 0.0,
            rep->ndays, d0, d1, (long long)rep->top_k, rep->alert_rule);
    fprintf(fp, "%-6s %9s %9s %10s %10s %9s %9s\n", "model", "ROC AUC",
            "avg prec", pk, "alert rate", "AUC/day", "AP/day");
    for (int k = 0; k < rep->nmodels; k++) {
        const rs_eval_metrics_t *m = &all->m[k];
        fprintf(fp, "%-6s", rep->model[k]);
        rs_pnum(fp, m->auc, 9, 0);
        rs_pnum(fp, m->ap, 9, 0);
        rs_pnum(fp, m->p_at_k, 10, 0);
        rs_pnum(fp, m->alert_rate, 10, 1);
        rs_pnum(fp, m->auc_day_mean, 9, 0);
        rs_pnum(fp, m->ap_day_mean, 9, 0);
        fputc('\n', fp);
    }
    fprintf(fp, "(ROC AUC, avg prec: all events pooled; AUC/day, AP/day: "
            "mean of the daily values)\n");
    if (rep->nweeks) {
        fprintf(fp, "\ncard precision@%lld per test week (cards whose fraud "
                "label was known before the week removed; each day the top "
                "%lld cards by max score, share with a fraud that day; mean "
                "over the week's days):\n", (long long)rep->top_k,
                (long long)rep->top_k);
        fprintf(fp, "%-10s %4s %8s %10s", "week of", "days", "removed",
                "fraud c-d");
        for (int k = 0; k < rep->nmodels; k++) {
            char h[24];
            snprintf(h, sizeof(h), "CP@%lld %s", (long long)rep->top_k,
                     rep->model[k]);
            fprintf(fp, " %11s", h);
        }
        fputc('\n', fp);
        for (int w = 0; w < rep->nweeks; w++) {
            const rs_eval_week_t *W = &rep->weeks[w];
            char ds[16];
            rs_day_str(W->start_ms, ds, sizeof(ds));
            fprintf(fp, "%-10s %4d %8llu %10llu", ds, W->days,
                    (unsigned long long)W->cards_removed,
                    (unsigned long long)W->fraud_cards);
            for (int k = 0; k < rep->nmodels; k++)
                rs_pnum(fp, W->card_p_at_k[k], 11, 0);
            fputc('\n', fp);
        }
        fprintf(fp, "%-10s %4d %8s %10s", "all days", rep->ndays, "", "");
        for (int k = 0; k < rep->nmodels; k++)
            rs_pnum(fp, rep->card_p_at_k[k], 11, 0);
        fputc('\n', fp);
    }
    if (rep->npatterns) {
        fprintf(fp, "\nper pattern (its positives vs all negatives):\n");
        fprintf(fp, "%-26s %9s", "pattern", "positives");
        for (int k = 0; k < rep->nmodels; k++) {
            char h[24];
            snprintf(h, sizeof(h), "AP %s", rep->model[k]);
            fprintf(fp, " %9s", h);
        }
        for (int k = 0; k < rep->nmodels; k++) {
            char h[24];
            snprintf(h, sizeof(h), "AUC %s", rep->model[k]);
            fprintf(fp, " %9s", h);
        }
        fputc('\n', fp);
        for (int p = 0; p < rep->npatterns; p++) {
            const rs_eval_pattern_t *rp = &rep->patterns[p];
            fprintf(fp, "%-26s %9llu", rp->name,
                    (unsigned long long)rp->positives);
            for (int k = 0; k < rep->nmodels; k++) rs_pnum(fp, rp->ap[k], 9, 0);
            for (int k = 0; k < rep->nmodels; k++)
                rs_pnum(fp, rp->auc[k], 9, 0);
            fputc('\n', fp);
        }
        if (rep->pattern_unmatched)
            fprintf(fp, "(%llu positives have no pattern in the truth file)\n",
                    (unsigned long long)rep->pattern_unmatched);
    }
}

/* ---------------------------------------------------------------- replay */

void rs_eval_conf_init(rs_eval_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    conf->label_delay_ms = 3 * RS_DAY_MS;
    conf->top_k = 100;
    conf->threshold = 0.5;
    conf->nmodels = 2;
    conf->kinds[0] = RS_MODEL_SEQ;
    conf->kinds[1] = RS_MODEL_LR;
}

rs_err_t rs_eval_conf_models(rs_eval_conf_t *conf, const char *list,
                             char *errstr, size_t errstr_size) {
    int n = 0;
    const char *s = list;
    while (*s) {
        size_t len = strcspn(s, ",");
        int kind;
        if (len == 3 && !memcmp(s, "seq", 3)) kind = RS_MODEL_SEQ;
        else if (len == 2 && !memcmp(s, "lr", 2)) kind = RS_MODEL_LR;
        else if (len == 3 && !memcmp(s, "gbt", 3)) kind = RS_EVAL_KIND_GBT;
        else
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "models: '%.*s' is not a model kind (seq, lr, gbt)",
                           (int)len, s);
        if (kind == RS_EVAL_KIND_GBT && !rs_gbt_available())
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "models: gbt needs libxgboost, which this build "
                           "was made without (ops/deps.sh installs "
                           "libxgboost-dev; rebuild)");
        for (int i = 0; i < n; i++)
            if (conf->kinds[i] == kind)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "models: '%.*s' listed twice", (int)len, s);
        if (n == RS_EVAL_MODELS_MAX)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "models: at most %d", RS_EVAL_MODELS_MAX);
        conf->kinds[n++] = kind;
        s += len;
        if (*s == ',') s++;
    }
    if (!n)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "models: empty list (expected e.g. seq,lr)");
    conf->nmodels = n;
    return RS_OK;
}

typedef struct rs_pending_s {
    int64_t avail;       /* when the label becomes known         */
    uint64_t seq;        /* arrival order: ties are FIFO          */
    int64_t event_time;  /* of the labelled event (for the hook)  */
    int failure;         /* maintenance: a failure of lb.entity_id */
    rs_label_t lb;
} rs_pending_t;

struct rs_eval_s {
    rs_eval_conf_t conf;
    rs_features_conf_t fconf;
    rs_model_conf_t mconf;
    rs_features_t *f;
    rs_model_t *m[RS_EVAL_MODELS_MAX];   /* NULL for gbt */
    rs_gbt_t *gbt[RS_EVAL_MODELS_MAX];   /* kind gbt only */
    rs_learnlog_t *log[RS_EVAL_MODELS_MAX]; /* learning log per model (not gbt) */
    rs_learner_t *lr[RS_EVAL_MODELS_MAX];   /* ... and its learner       */
    uint64_t pub[RS_EVAL_MODELS_MAX];       /* updates at the last version */
    int dim;
    float *x;            /* [dim] */
    rs_pending_t *heap;  /* min-heap on (avail, seq) */
    size_t nheap, capheap;
    uint64_t seq;
    int64_t watermark;
    int64_t first_t;     /* first event time (warm-up start) */
    rs_eval_acc_t *acc;
    rs_eval_stats_t st;
    /* maintenance mode */
    int maint;
    rs_maint_conf_t mc;
    rs_alertpol_t *pol[RS_EVAL_MODELS_MAX + 1];  /* models, then ref */
    rs_mev_t *mev;
    rs_coldstart_t *cs;  /* the reference */
    /* maintenance.cold_start: per model, the blend (its weight follows the
     * model's own record, kept by the blend's own policy fed the model's
     * score alone: coldstart.h rs_coldstart_track) */
    rs_coldstart_t *csm[RS_EVAL_MODELS_MAX];
    float last_own[RS_EVAL_MODELS_MAX], last_ref;  /* the last reading's */
    rs_rul_t *rul;       /* maintenance.rul: learned with model 0's learner */
};

static int rs_pend_less(const rs_pending_t *a, const rs_pending_t *b) {
    return a->avail != b->avail ? a->avail < b->avail : a->seq < b->seq;
}

static void rs_heap_push(rs_eval_t *e, const rs_pending_t *p) {
    if (e->nheap == e->capheap) {
        e->capheap = e->capheap ? e->capheap * 2 : 1024;
        e->heap = rs_realloc(e->heap, e->capheap * sizeof(*e->heap));
    }
    size_t i = e->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!rs_pend_less(p, &e->heap[up])) break;
        e->heap[i] = e->heap[up];
        i = up;
    }
    e->heap[i] = *p;
}

static void rs_heap_pop(rs_eval_t *e) {
    rs_pending_t last = e->heap[--e->nheap];
    size_t i = 0, n = e->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && rs_pend_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!rs_pend_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
}

/* A single model scores and learns: its drift is its own. */
static double rs_eval_psi(const rs_model_t *m) {
    rs_model_stats_t ms;
    rs_model_stats(m, &ms);
    return ms.drift_psi;
}

/* As serve's trainer: every model.publish_every updates a new version --
 * the weights (or their average, model.average) as a snapshot -- which
 * the model scores with until the next one; it learns on.  `force`:
 * publish now (the first version: the untrained weights). */
static void rs_eval_publish(rs_eval_t *e, int k, int force) {
    rs_model_stats_t ms;
    rs_model_stats(e->m[k], &ms);
    if (!force && ms.updates < e->pub[k] + (uint64_t)e->mconf.publish_every)
        return;
    rs_model_weights_t *w = rs_model_weights_take(e->m[k]);
    rs_model_weights_use(e->m[k], w);
    rs_model_weights_release(w);
    e->pub[k] = ms.updates;
}

rs_eval_t *rs_eval_new(const rs_eval_conf_t *conf, char *errstr,
                       size_t errstr_size) {
    rs_eval_t *e = rs_calloc(1, sizeof(*e));
    e->conf = *conf;
    if (conf->features) e->fconf = *conf->features;
    else rs_features_conf_init(&e->fconf);
    if (conf->model) e->mconf = *conf->model;
    else rs_model_conf_init(&e->mconf);
    if (conf->label_delay_ms < 0) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "label delay must be >= 0");
        goto fail;
    }
    /* the delay labels are given with is the delay the models know */
    if (!e->mconf.label_delay) e->mconf.label_delay = conf->label_delay_ms;
    if (rs_learner_check_conf(&e->mconf, NULL, errstr, errstr_size))
        goto fail;
    e->f = rs_features_new(&e->fconf, errstr, errstr_size);
    if (!e->f) goto fail;
    e->dim = rs_features_dim(e->f);
    const char *names[RS_FEATURES_MAX_DIM];
    for (int i = 0; i < e->dim; i++) names[i] = rs_features_name(e->f, i);
    const char *mnames[RS_EVAL_MODELS_MAX];
    if (conf->nmodels < 1 || conf->nmodels > RS_EVAL_MODELS_MAX) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "models: need 1..%d",
                RS_EVAL_MODELS_MAX);
        goto fail;
    }
    for (int k = 0; k < conf->nmodels; k++) {
        if (conf->kinds[k] == RS_EVAL_KIND_GBT) {
            rs_gbt_conf_t gc;
            rs_gbt_conf_init(&gc);
            gc.maturity_ms = conf->label_delay_ms;
            if (conf->gbt_window_ms) gc.window_ms = conf->gbt_window_ms;
            if (conf->gbt_rounds) gc.rounds = conf->gbt_rounds;
            gc.balance = conf->gbt_balance;
            e->gbt[k] = rs_gbt_new(e->dim, &gc, errstr, errstr_size);
            if (!e->gbt[k]) goto fail;
            mnames[k] = "gbt";
            continue;
        }
        rs_model_conf_t mc = e->mconf;
        mc.kind = conf->kinds[k];
        char err[256];
        e->m[k] = rs_model_new(&mc, e->dim, names, err, sizeof(err));
        if (!e->m[k]) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "model %s: %s",
                    mc.kind == RS_MODEL_SEQ ? "seq" : "lr", err);
            goto fail;
        }
        mnames[k] = rs_model_kind(e->m[k]);
        rs_learnlog_meta_t meta;
        rs_model_lrec_meta(e->m[k], &meta);
        char dir[600] = "";
        if (conf->log_dir && conf->log_dir[0])
            snprintf(dir, sizeof(dir), "%s/%d-%s", conf->log_dir, k,
                     mnames[k]);
        rs_err_t lerr;
        e->log[k] = rs_learnlog_open(dir, 0, &meta, mc.log_segment, &lerr,
                                     err, sizeof(err));
        if (!e->log[k]) {
            rs_errf(errstr, errstr_size, lerr, "%s", err);
            goto fail;
        }
        e->lr[k] = rs_learner_new(e->m[k], &mc);
        rs_learner_attach(e->lr[k], e->log[k]);
        rs_eval_publish(e, k, 1);
    }
    e->x = rs_calloc((size_t)e->dim + 1, sizeof(*e->x));
    e->acc = rs_eval_acc_new(conf->nmodels, mnames, conf->top_k,
                             conf->threshold, errstr, errstr_size);
    if (!e->acc) goto fail;
    if (conf->maint && conf->maint->enabled) {
        e->maint = 1;
        e->mc = *conf->maint;
        const char *cols[RS_EVAL_MODELS_MAX + 1];
        for (int k = 0; k < conf->nmodels; k++) {
            if (e->gbt[k]) {
                rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                        "models: gbt has no maintenance mode (its training "
                        "sets need labels per event)");
                goto fail;
            }
            rs_learner_set_failure_horizon(e->lr[k], e->mc.horizon);
            cols[k] = mnames[k];
        }
        cols[conf->nmodels] = "ref";
        for (int k = 0; k <= conf->nmodels; k++) {
            e->pol[k] = rs_alertpol_new(&e->mc, errstr, errstr_size);
            if (!e->pol[k]) goto fail;
        }
        e->mev = rs_mev_new(conf->nmodels + 1, cols, e->mc.horizon,
                            e->mc.alert_threshold);
        if (e->mc.rul) { /* one head, from the first model's resolution */
            e->rul = rs_rul_new(e->dim, rs_maint_rul_cap(&e->mc));
            rs_learner_set_rul(e->lr[0], e->rul);
        }
        /* the reference reads the base_z features of the longest span
         * (of any span if there is none; of the reading itself last);
         * with maintenance.cold_start the models' scores are blended with
         * it while they learned few failures (model/coldstart.h) */
        e->cs = rs_coldstart_new(names, e->dim, e->mc.alert_threshold);
        /* the reference's per-machine state (its CUSUMs), reset at each
         * failure; its own policy sees 0 and never counts a catch, so its
         * weight stays 0: the `ref` column is the reference alone */
        if (rs_coldstart_track(e->cs, &e->mc, errstr, errstr_size) != RS_OK)
            goto fail;
        for (int k = 0; e->mc.cold_start && k < conf->nmodels; k++) {
            e->csm[k] = rs_coldstart_new(names, e->dim, e->mc.alert_threshold);
            if (rs_coldstart_track(e->csm[k], &e->mc, errstr, errstr_size) !=
                RS_OK)
                goto fail;
        }
        /* maintenance.rehearsal: the first failures' positives replayed
         * (learner.h), n0 the reference's sensors */
        if (e->mc.rehearsal)
            for (int k = 0; k < conf->nmodels; k++)
                rs_learner_set_rehearsal(e->lr[k], rs_coldstart_sensors(e->cs));
    }
    e->watermark = INT64_MIN;
    e->first_t = INT64_MIN;
    return e;
fail:
    rs_eval_destroy(e);
    return NULL;
}

void rs_eval_destroy(rs_eval_t *e) {
    if (!e) return;
    for (int k = 0; k < RS_EVAL_MODELS_MAX; k++) {
        rs_learner_destroy(e->lr[k]);
        rs_learnlog_close(e->log[k]);
        rs_model_destroy(e->m[k]);
        rs_gbt_destroy(e->gbt[k]);
        rs_coldstart_destroy(e->csm[k]);
    }
    for (int k = 0; k <= RS_EVAL_MODELS_MAX; k++) rs_alertpol_destroy(e->pol[k]);
    rs_mev_destroy(e->mev);
    rs_rul_destroy(e->rul);
    rs_coldstart_destroy(e->cs);
    rs_features_destroy(e->f);
    rs_eval_acc_destroy(e->acc);
    free(e->x);
    free(e->heap);
    free(e);
}

/* Step 1: every label known at or before `now`. */
static void rs_eval_apply_labels(rs_eval_t *e, int64_t now) {
    while (e->nheap && e->heap[0].avail <= now) {
        rs_pending_t p = e->heap[0];
        rs_heap_pop(e);
        if (e->conf.label_hook)
            e->conf.label_hook(e->conf.hook_opaque, &p.lb, p.event_time, now);
        if (p.failure) {
            /* a failure: learned as failure-horizon labels through the
             * learning log; the machine is repaired (a new life for its
             * baselines and alerts); never a label-aware feature */
            uint64_t ent = rs_hash_str(p.lb.entity_id);
            rs_features_reset(e->f, p.lb.entity_id);
            for (int k = 0; k < e->conf.nmodels; k++)
                rs_learner_failure(e->lr[k], 0, ent, p.event_time, p.avail,
                                   rs_eval_psi(e->m[k]), NULL);
            for (int k = 0; k <= e->conf.nmodels; k++)
                rs_alertpol_failure(e->pol[k], ent, p.event_time, NULL);
            rs_coldstart_machine_failure(e->cs, ent, p.event_time);
            for (int k = 0; k < e->conf.nmodels; k++) {
                if (!e->csm[k]) continue;
                rs_coldstart_machine_failure(e->csm[k], ent, p.event_time);
            }
            e->st.labels_applied++;
            continue;
        }
        rs_features_label(e->f, &p.lb);   /* unknown/duplicate: counted there */
        for (int k = 0; k < e->conf.nmodels; k++) /* miss: learner stats */
            if (e->lr[k])
                rs_learner_label(e->lr[k], 0, &p.lb, p.event_time,
                                 rs_eval_psi(e->m[k]), NULL);
        e->st.labels_applied++;
    }
}

rs_err_t rs_eval_push(rs_eval_t *e, const rs_eval_rec_t *rec, float *scores,
                      char *errstr, size_t errstr_size) {
    const rs_event_t *ev = rec->ev;
    int64_t t = ev->event_time_ms;
    rs_eval_apply_labels(e, t);
    if (t > e->watermark) e->watermark = t;
    for (int k = 0; k < e->conf.nmodels; k++) {
        while (e->lr[k] &&
               rs_learner_advance(e->lr[k], 0, e->watermark,
                                  rs_eval_psi(e->m[k]), 4096, NULL, NULL) ==
                   4096) {
        }
        if (e->m[k]) rs_eval_publish(e, k, 0);
    }
    uint32_t flags = 0;
    rs_err_t err = rs_features_process(e->f, ev, e->x, &flags);
    if (err != RS_OK) {
        e->st.rejected++;
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "event '%s': refused by the feature engine (%s)",
                       ev->id, rs_err_str(err));
    }
    rs_model_input_t in;
    rs_model_input_from_event(&in, ev, e->x);
    float sc[RS_EVAL_MODELS_MAX];
    /* when this event's fraud label becomes known (gbt training, the
     * weekly protocol), as the label heap below will apply it */
    int64_t avail = INT64_MAX;
    if (rec->learn && rec->label) {
        avail = rec->label_time_ms ? rec->label_time_ms
                                   : t + e->conf.label_delay_ms;
        if (avail < t) avail = t;
    }
    for (int k = 0; k < e->conf.nmodels; k++) {
        if (e->gbt[k]) {
            sc[k] = rs_gbt_score(e->gbt[k], t, e->x);
            rs_gbt_add(e->gbt[k], t, e->x, avail);
            continue;
        }
        rs_model_output_t out;
        char e2[256];
        err = rs_learner_forward(e->lr[k], 0, e->m[k], &in, 1, &out, NULL,
                                 RS_MODEL_FWD_REMEMBER, e2, sizeof(e2));
        if (err != RS_OK) {
            e->st.rejected++;
            return rs_errf(errstr, errstr_size, err,
                           "event '%s': model %s: %s", ev->id,
                           rs_model_kind(e->m[k]), e2);
        }
        sc[k] = out.score;
    }
    /* maintenance: what the alert policy decides on is what is measured
     * (and written with --scores-out) */
    float raw0 = sc[0];
    if (e->maint && e->mc.cold_start) {
        uint64_t ent = rs_hash_str(ev->entity_id);
        for (int k = 0; k < e->conf.nmodels; k++) {
            e->last_own[k] = sc[k];
            sc[k] = rs_coldstart_observe(e->csm[k], ent, t, e->x, sc[k]);
        }
    }
    if (scores) memcpy(scores, sc, (size_t)e->conf.nmodels * sizeof(*sc));
    if (e->first_t == INT64_MIN) e->first_t = t;
    if (e->maint) {
        /* the reference: a per-machine threshold on the most drifting
         * sensor (z is in the machine's own standard deviations) */
        float msc[RS_EVAL_MODELS_MAX + 1];
        memcpy(msc, sc, (size_t)e->conf.nmodels * sizeof(*sc));
        /* z / (z + c) with c such that z = 3 sd is the alert threshold:
         * "alert when a sensor is 3 sd off the machine's own baseline" */
        msc[e->conf.nmodels] = rs_coldstart_observe(e->cs, rs_hash_str(ev->entity_id), t, e->x, 0.0f);
        e->last_ref = msc[e->conf.nmodels];
        if (!e->mc.cold_start) /* no blend: the scores are the own ones */
            memcpy(e->last_own, sc, (size_t)e->conf.nmodels * sizeof(*sc));
        uint64_t ent = rs_hash_str(ev->entity_id);
        uint32_t dec = 0, open = 0;
        for (int k = 0; k <= e->conf.nmodels; k++) {
            rs_alertpol_decision_t d = rs_alertpol_step(e->pol[k], ent, t, msc[k]);
            dec |= (uint32_t)(d != RS_ALERTPOL_NONE) << k;
            open |= (uint32_t)(rs_alertpol_is_open(e->pol[k], ent) != 0) << k;
        }
        if (!e->conf.no_metrics && t >= e->first_t + e->conf.warmup_ms) {
            rs_mev_add(e->mev, t, ent, rec->label, rec->failure, msc, dec, open);
            if (e->rul)
                rs_mev_rul(e->mev, rs_rul_updates(e->rul) > 0
                                       ? rs_rul_predict(e->rul, e->x, raw0)
                                       : 0,
                           rs_rul_cap(e->rul));
        }
    }
    if (e->conf.no_metrics) {
        /* train: learn only, nothing to measure */
    } else if (t >= e->first_t + e->conf.warmup_ms) {
        uint32_t alerts = 0;
        for (int k = 0; k < e->conf.nmodels; k++) {
            int al = e->conf.alert ? e->conf.alert(e->conf.alert_opaque, ev, sc[k])
                                   : sc[k] >= e->conf.threshold;
            alerts |= (uint32_t)(al != 0) << k;
        }
        rs_eval_acc_add_ex(e->acc, t, ev->entity_id, rec->label, rec->pattern,
                           sc, avail, alerts);
    } else {
        e->st.warmup++;
    }
    e->st.events++;
    if (rec->learn) {
        rs_pending_t p;
        memset(&p, 0, sizeof(p));
        p.avail = rec->label_time_ms ? rec->label_time_ms
                                     : t + e->conf.label_delay_ms;
        if (p.avail < t) p.avail = t;   /* a label cannot precede its event */
        p.seq = e->seq++;
        p.event_time = t;
        rs_strlcpy(p.lb.event_id, ev->id, sizeof(p.lb.event_id));
        rs_strlcpy(p.lb.entity_id, ev->entity_id, sizeof(p.lb.entity_id));
        p.lb.value = rec->label ? 1.0 : 0.0;
        p.lb.label_time_ms = p.avail;
        p.failure = e->maint && rec->failure;
        if (!e->maint || p.failure) rs_heap_push(e, &p);
    }
    return RS_OK;
}

int rs_eval_nmodels(const rs_eval_t *e) { return e->conf.nmodels; }
const char *rs_eval_model_name(const rs_eval_t *e, int i) {
    if (i < 0 || i >= e->conf.nmodels) return NULL;
    return e->gbt[i] ? "gbt" : rs_model_kind(e->m[i]);
}
int rs_eval_dim(const rs_eval_t *e) { return e->dim; }
const rs_features_t *rs_eval_features(const rs_eval_t *e) { return e->f; }
rs_model_t *rs_eval_model(rs_eval_t *e, int i) {
    return i >= 0 && i < e->conf.nmodels ? e->m[i] : NULL; /* NULL: gbt */
}

void rs_eval_stats(const rs_eval_t *e, rs_eval_stats_t *st) {
    *st = e->st;
    st->labels_pending = e->nheap;
    for (int k = 0; k < e->conf.nmodels; k++) {
        if (!e->gbt[k]) {
            rs_model_stats(e->m[k], &st->model[k]);
            rs_learner_stats(e->lr[k], &st->learner[k]);
            continue;
        }
        rs_gbt_stats_t gs;
        rs_gbt_stats(e->gbt[k], &gs);
        memset(&st->model[k], 0, sizeof(st->model[k]));
        st->model[k].updates = gs.trainings;
        st->model[k].positives = gs.positives;
        st->model[k].negatives = gs.negatives;
        st->gbt_last_positives = gs.last_positives;
        st->gbt_last_negatives = gs.last_negatives;
        st->gbt_train_s = gs.train_s;
    }
}

rs_mev_report_t *rs_eval_maint_report(const rs_eval_t *e) {
    return e->mev ? rs_mev_report(e->mev) : NULL;
}

const rs_mev_t *rs_eval_maint(const rs_eval_t *e) { return e->mev; }

int rs_eval_maint_scores(const rs_eval_t *e, float *own, float *ref) {
    if (!e->maint) return 0;
    memcpy(own, e->last_own, (size_t)e->conf.nmodels * sizeof(*own));
    *ref = e->last_ref;
    return 1;
}

rs_eval_report_t *rs_eval_report(const rs_eval_t *e) {
    return rs_eval_acc_report(e->acc);
}

uint64_t rs_eval_epochs(rs_eval_t *e, int epochs, int64_t window_ms) {
    uint64_t steps = 0;
    if (e->watermark == INT64_MIN) return 0;
    int64_t from = window_ms > 0 && e->watermark > INT64_MIN + window_ms
                       ? e->watermark - window_ms
                       : INT64_MIN;
    for (int k = 0; k < e->conf.nmodels; k++)
        if (e->lr[k])
            steps += rs_learner_replay(e->lr[k], 0, from, INT64_MAX, epochs,
                                   (uint64_t)k + 1);
    return steps;
}
