/* gbt.c -- boosted-trees reference for eval (gbt.h), on libxgboost. */
#include "gbt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define RS_GBT_DAY_MS 86400000LL

void rs_gbt_conf_init(rs_gbt_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    conf->window_ms = 7 * RS_GBT_DAY_MS;
    conf->maturity_ms = 3 * RS_GBT_DAY_MS;
    conf->rounds = 200;
    conf->max_depth = 6;
    conf->eta = 0.1;
    conf->nthread = 1;   /* 2 was 6x slower on a shared 2-core machine */
    conf->balance = 0;
}

#ifndef RS_HAVE_XGBOOST

int rs_gbt_available(void) { return 0; }
rs_gbt_t *rs_gbt_new(int dim, const rs_gbt_conf_t *conf, char *errstr,
                     size_t errstr_size) {
    (void)dim;
    (void)conf;
    rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
            "models: gbt needs libxgboost (ops/deps.sh installs "
            "libxgboost-dev; rebuild)");
    return NULL;
}
void rs_gbt_destroy(rs_gbt_t *g) { (void)g; }
float rs_gbt_score(rs_gbt_t *g, int64_t t, const float *x) {
    (void)g; (void)t; (void)x;
    return 0;
}
void rs_gbt_add(rs_gbt_t *g, int64_t t, const float *x, int64_t known_ms) {
    (void)g; (void)t; (void)x; (void)known_ms;
}
void rs_gbt_stats(const rs_gbt_t *g, rs_gbt_stats_t *st) {
    (void)g;
    memset(st, 0, sizeof(*st));
}

#else

#include <xgboost/c_api.h>

struct rs_gbt_s {
    rs_gbt_conf_t conf;
    int dim;
    /* kept rows, in push (= time) order: a deque over growing arrays */
    size_t head, n, cap;
    int64_t *t;          /* [cap] event time */
    int64_t *known;      /* [cap] positive label known at, INT64_MAX none */
    float *x;            /* [cap][dim] */
    int64_t day;         /* UTC day of the current model, INT64_MIN none */
    int have;            /* a model scores today */
    /* today's trees, flattened from xgboost's JSON dump and walked here:
     * in-place prediction through the C API costs ~0.6 ms per row */
    int *feat;           /* [nn] split feature, -1 for a leaf */
    float *val;          /* [nn] split condition (go yes if x < it) or leaf */
    int *yes, *no, *miss;/* [nn] children (absolute node indices) */
    int *root;           /* [ntree] */
    int nn, ntree, capn, capt;
    double base;         /* margin offset (logit of base_score) */
    float *tx, *ty;      /* training matrix scratch */
    size_t tcap;
    rs_gbt_stats_t st;
};

int rs_gbt_available(void) { return 1; }

rs_gbt_t *rs_gbt_new(int dim, const rs_gbt_conf_t *conf, char *errstr,
                     size_t errstr_size) {
    if (dim < 1 || conf->window_ms < RS_GBT_DAY_MS || conf->maturity_ms < 0 ||
        conf->rounds < 1 || conf->max_depth < 1 || conf->eta <= 0 ||
        conf->nthread < 1) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "gbt: window >= 1d, rounds, depth, eta, nthread > 0");
        return NULL;
    }
    rs_gbt_t *g = rs_calloc(1, sizeof(*g));
    g->conf = *conf;
    g->dim = dim;
    g->day = INT64_MIN;
    return g;
}

void rs_gbt_destroy(rs_gbt_t *g) {
    if (!g) return;
    free(g->feat);
    free(g->val);
    free(g->yes);
    free(g->no);
    free(g->miss);
    free(g->root);
    free(g->t);
    free(g->known);
    free(g->x);
    free(g->tx);
    free(g->ty);
    rs_free(g);
}

void rs_gbt_add(rs_gbt_t *g, int64_t t, const float *x, int64_t known_ms) {
    if (g->head + g->n == g->cap) {
        if (g->head > g->cap / 2) { /* compact */
            memmove(g->t, g->t + g->head, g->n * sizeof(*g->t));
            memmove(g->known, g->known + g->head, g->n * sizeof(*g->known));
            memmove(g->x, g->x + g->head * (size_t)g->dim,
                    g->n * (size_t)g->dim * sizeof(float));
            g->head = 0;
        } else {
            g->cap = g->cap ? g->cap * 2 : 65536;
            g->t = rs_realloc(g->t, g->cap * sizeof(*g->t));
            g->known = rs_realloc(g->known, g->cap * sizeof(*g->known));
            g->x = rs_realloc(g->x, g->cap * (size_t)g->dim * sizeof(float));
        }
    }
    size_t i = g->head + g->n++;
    g->t[i] = t;
    g->known[i] = known_ms;
    memcpy(g->x + i * (size_t)g->dim, x, (size_t)g->dim * sizeof(float));
}

static int64_t rs_gbt_floor_day(int64_t t) {
    int64_t d = t / RS_GBT_DAY_MS;
    return d - (t % RS_GBT_DAY_MS < 0);
}

#define RS_GBT_CHECK(call)                                                   \
    do {                                                                     \
        if ((call) != 0) {                                                   \
            fprintf(stderr, "riskstream eval: gbt: %s: %s\n", #call,         \
                    XGBGetLastError());                                      \
            goto fail;                                                       \
        }                                                                    \
    } while (0)

static double rs_gbt_margin(const rs_gbt_t *g, const float *x) {
    double m = g->base;
    for (int k = 0; k < g->ntree; k++) {
        int i = g->root[k];
        while (g->feat[i] >= 0) {
            float v = x[g->feat[i]];
            i = isnan(v) ? g->miss[i] : v < g->val[i] ? g->yes[i] : g->no[i];
        }
        m += g->val[i];
    }
    return m;
}

/* Value after `"key":` at or after p and before `end`; NULL if absent. */
static const char *rs_gbt_key(const char *p, const char *end, const char *key) {
    size_t kl = strlen(key);
    for (const char *q = p; q && q < end; q++) {
        q = strstr(q, key);
        if (!q || q >= end) return NULL;
        if (q > p && q[-1] == '"' && q[kl] == '"') {
            q += kl + 1;
            while (*q == ' ' || *q == ':') q++;
            return q;
        }
    }
    return NULL;
}

/* Flatten the trees of xgboost's JSON dump (one string per tree; every
 * node's own keys come before its "children"). 0 ok. */
static int rs_gbt_load(rs_gbt_t *g, BoosterHandle b) {
    bst_ulong nt = 0;
    const char **dump = NULL;
    if (XGBoosterDumpModelEx(b, "", 0, "json", &nt, &dump) != 0) return -1;
    g->nn = g->ntree = 0;
    for (bst_ulong k = 0; k < nt; k++) {
        const char *p = dump[k];
        int base = g->nn, maxid = -1;
        for (const char *q = strstr(p, "\"nodeid\""); q; q = strstr(q + 1, "\"nodeid\""))
            maxid++;
        if (g->ntree == g->capt) {
            g->capt = g->capt ? g->capt * 2 : 256;
            g->root = rs_realloc(g->root, (size_t)g->capt * sizeof(int));
        }
        while (g->nn + maxid + 1 > g->capn) {
            g->capn = g->capn ? g->capn * 2 : 4096;
            g->feat = rs_realloc(g->feat, (size_t)g->capn * sizeof(int));
            g->val = rs_realloc(g->val, (size_t)g->capn * sizeof(float));
            g->yes = rs_realloc(g->yes, (size_t)g->capn * sizeof(int));
            g->no = rs_realloc(g->no, (size_t)g->capn * sizeof(int));
            g->miss = rs_realloc(g->miss, (size_t)g->capn * sizeof(int));
        }
        for (int i = 0; i <= maxid; i++) g->feat[base + i] = -2; /* unset */
        const char *q = strstr(p, "\"nodeid\"");
        while (q) {
            const char *next = strstr(q + 1, "\"nodeid\"");
            const char *end = next ? next : q + strlen(q);
            int id = atoi(rs_gbt_key(q, end, "nodeid"));
            if (id < 0 || id > maxid) return -1;
            int i = base + id;
            const char *lv = rs_gbt_key(q, end, "leaf");
            if (lv) {
                g->feat[i] = -1;
                g->val[i] = strtof(lv, NULL);
            } else {
                const char *sp = rs_gbt_key(q, end, "split"),
                           *sc = rs_gbt_key(q, end, "split_condition"),
                           *y = rs_gbt_key(q, end, "yes"),
                           *n = rs_gbt_key(q, end, "no"),
                           *m = rs_gbt_key(q, end, "missing");
                if (!sp || !sc || !y || !n || !m || sp[0] != '"' || sp[1] != 'f')
                    return -1;
                g->feat[i] = atoi(sp + 2);
                g->val[i] = strtof(sc, NULL);
                g->yes[i] = base + atoi(y);
                g->no[i] = base + atoi(n);
                g->miss[i] = base + atoi(m);
                if (g->feat[i] < 0 || g->feat[i] >= g->dim) return -1;
            }
            q = next;
        }
        for (int i = 0; i <= maxid; i++) {
            if (g->feat[base + i] == -2) return -1;
            if (g->feat[base + i] >= 0 &&
                (g->yes[base + i] > base + maxid || g->no[base + i] > base + maxid ||
                 g->miss[base + i] > base + maxid || g->yes[base + i] <= base + i ||
                 g->no[base + i] <= base + i || g->miss[base + i] <= base + i))
                return -1;   /* children come after their parent: no loop */
        }
        g->root[g->ntree++] = base;
        g->nn += maxid + 1;
    }
    return 0;
}

/* Train the model of day `day` (UTC day number). */
static void rs_gbt_train(rs_gbt_t *g, int64_t day) {
    const int64_t D = day * RS_GBT_DAY_MS;
    const int64_t lo = D - g->conf.maturity_ms - g->conf.window_ms,
                  hi = D - g->conf.maturity_ms;
    /* forget rows too old for any later window */
    while (g->n && g->t[g->head] < lo) { g->head++; g->n--; }
    size_t m = 0, npos = 0;
    for (size_t k = 0; k < g->n && g->t[g->head + k] < hi; k++) m++;
    if (m > g->tcap) {
        g->tcap = m;
        g->tx = rs_realloc(g->tx, m * (size_t)g->dim * sizeof(float));
        g->ty = rs_realloc(g->ty, m * sizeof(float));
    }
    for (size_t k = 0; k < m; k++) {
        size_t i = g->head + k;
        int pos = g->known[i] < D;   /* only labels known by then */
        g->ty[k] = (float)pos;
        npos += (size_t)pos;
    }
    g->have = 0;
    if (!npos || npos == m) return;  /* nothing to learn: score 0 */
    memcpy(g->tx, g->x + g->head * (size_t)g->dim,
           m * (size_t)g->dim * sizeof(float));
    int64_t t0 = rs_clock_mono_us();
    DMatrixHandle dm = NULL;
    BoosterHandle b = NULL;
    char v[64];
    RS_GBT_CHECK(XGDMatrixCreateFromMat(g->tx, m, (bst_ulong)g->dim, NAN, &dm));
    RS_GBT_CHECK(XGDMatrixSetFloatInfo(dm, "label", g->ty, m));
    RS_GBT_CHECK(XGBoosterCreate(&dm, 1, &b));
    RS_GBT_CHECK(XGBoosterSetParam(b, "objective", "binary:logistic"));
    RS_GBT_CHECK(XGBoosterSetParam(b, "tree_method", "hist"));
    RS_GBT_CHECK(XGBoosterSetParam(b, "verbosity", "0"));
    RS_GBT_CHECK(XGBoosterSetParam(b, "seed", "1"));
    snprintf(v, sizeof(v), "%d", g->conf.max_depth);
    RS_GBT_CHECK(XGBoosterSetParam(b, "max_depth", v));
    snprintf(v, sizeof(v), "%g", g->conf.eta);
    RS_GBT_CHECK(XGBoosterSetParam(b, "eta", v));
    snprintf(v, sizeof(v), "%d", g->conf.nthread);
    RS_GBT_CHECK(XGBoosterSetParam(b, "nthread", v));
    if (g->conf.balance) {
        snprintf(v, sizeof(v), "%g", (double)(m - npos) / (double)npos);
        RS_GBT_CHECK(XGBoosterSetParam(b, "scale_pos_weight", v));
    }
    for (int r = 0; r < g->conf.rounds; r++)
        RS_GBT_CHECK(XGBoosterUpdateOneIter(b, r, dm));
    if (rs_gbt_load(g, b) != 0) {
        fprintf(stderr, "riskstream eval: gbt: cannot read the trees of the "
                "model dump\n");
        goto fail;
    }
    {
        /* the walk must give xgboost's own predictions: take the margin
         * offset from row 0, check a sample of the training rows */
        bst_ulong plen;
        const float *pred;
        RS_GBT_CHECK(XGBoosterPredict(b, dm, 1 /* margin */, 0, 0, &plen, &pred));
        g->base = 0;
        g->base = pred[0] - rs_gbt_margin(g, g->tx);
        double worst = 0;
        for (size_t k = 0; k < m && k < 2000; k++) {
            double d = fabs(rs_gbt_margin(g, g->tx + k * (size_t)g->dim) - pred[k]);
            if (d > worst) worst = d;
        }
        if (worst > 1e-3)
            fprintf(stderr, "riskstream eval: gbt: warning: tree walk differs "
                    "from xgboost's prediction by %.2g (margin)\n", worst);
    }
    XGDMatrixFree(dm);
    XGBoosterFree(b);
    g->have = 1;
    g->st.trainings++;
    g->st.positives += npos;
    g->st.negatives += m - npos;
    g->st.last_positives = npos;
    g->st.last_negatives = m - npos;
    g->st.train_s += (double)(rs_clock_mono_us() - t0) / 1e6;
    return;
fail:
    if (dm) XGDMatrixFree(dm);
    if (b) XGBoosterFree(b);
}

float rs_gbt_score(rs_gbt_t *g, int64_t t, const float *x) {
    int64_t day = rs_gbt_floor_day(t);
    if (day != g->day) {
        g->day = day;
        rs_gbt_train(g, day);
    }
    if (!g->have) return 0;
    return (float)(1.0 / (1.0 + exp(-rs_gbt_margin(g, x))));
}

void rs_gbt_stats(const rs_gbt_t *g, rs_gbt_stats_t *st) { *st = g->st; }

#endif
