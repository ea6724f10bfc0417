/* model.c -- online logistic regression with delayed labels.
 *
 * See model.h for the contract.  Invariants:
 *  - w (double, bias last) is the master copy the optimiser updates; w32/b32
 *    are its float casts used by the BLAS scoring path and are refreshed
 *    after every step, so a loaded model (which restores w) scores
 *    bit-identically;
 *  - mu/istd are derived from the Welford state only when learning;
 *  - the pending ring spans [tail, tail + span) in insertion order; entries
 *    resolved out of order stay as dead holes until they reach the tail; the
 *    index holds exactly the live entries (linear probing, backward-shift
 *    deletion).
 *
 * The model file (save/load) is model_file.c; the state both share is
 * model_priv.h.
 */
#define _GNU_SOURCE
#include "common/idx.h"
#include "model/model_priv.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RS_ADAM_B1  0.9
#define RS_ADAM_B2  0.999
#define RS_ADAM_EPS 1e-8
#define RS_STD_MIN  1e-3   /* floor of a feature's std when standardising */

/* ------------------------------------------------------------ config */

static const rs_conf_field_t rs_model_fields[] = {
    {"learning_rate", RS_CONF_DOUBLE, "0.01",
     offsetof(rs_model_conf_t, learning_rate), 0, "Adam step size", NULL,
     1e-9, 10},
    {"l2", RS_CONF_DOUBLE, "1e-5", offsetof(rs_model_conf_t, l2), 0,
     "L2 penalty on the weights", NULL, 0, 10},
    {"pos_weight", RS_CONF_DOUBLE, "10", offsetof(rs_model_conf_t, pos_weight),
     0, "loss weight of a positive label (rare class)", NULL, 1e-6, 1e6},
    {"grad_clip", RS_CONF_DOUBLE, "5", offsetof(rs_model_conf_t, grad_clip), 0,
     "maximum L2 norm of one update's gradient", NULL, 1e-9, 1e9},
    {"label_delay", RS_CONF_DURATION, "0",
     offsetof(rs_model_conf_t, label_delay), 0,
     "how long labels take to arrive after their event (e.g. 7d for "
     "chargebacks known after a week); 0 = not declared: observed from the "
     "labels (eval and train take it from --label-delay)", NULL, 0, 0x1p62},
    {"label_horizon", RS_CONF_DURATION, "auto",
     offsetof(rs_model_conf_t, label_horizon), 0,
     "event time after which an unlabelled event is learned as a negative "
     "(it stays in the learning log until then; a positive that comes later "
     "still corrects it); auto = 1.25 x the larger of label_delay and the "
     "observed 99th percentile of label delays, at most label_horizon_max "
     "(label_horizon_max until either is known); a fixed value below the "
     "declared or observed delay is refused", "auto", 1, 0x1p62},
    {"label_horizon_max", RS_CONF_DURATION, "120d",
     offsetof(rs_model_conf_t, label_horizon_max), 0,
     "upper bound of the auto horizon", NULL, 1, 0x1p62},
    {"log_keep", RS_CONF_DURATION, "30d", offsetof(rs_model_conf_t, log_keep),
     0, "learning-log records kept beyond the horizon, so the events that "
     "come later can still rebuild their history from them (an entity idle "
     "longer starts its learning history afresh)", NULL, 0, 0x1p62},
    {"log_segment", RS_CONF_INT, "268435456",
     offsetof(rs_model_conf_t, log_segment), 0,
     "bytes per learning-log segment file (allocated in 4 MiB steps as "
     "records come; whole segments are deleted when their records are "
     "resolved and older than horizon + log_keep)", NULL, 1 << 20, 0x1p40},
    {"publish_every", RS_CONF_INT, "10000",
     offsetof(rs_model_conf_t, publish_every), 0,
     "updates per model version (serve: the trainer publishes one every "
     "this many updates, or every publish_interval)", NULL, 1, 0x1p62},
    {"batch_max", RS_CONF_INT, "512", offsetof(rs_model_conf_t, batch_max), 0,
     "rows per scoring GEMV (larger batches are chunked)", NULL, 1, 65536},
    {"base_rate", RS_CONF_DOUBLE, "0.01", offsetof(rs_model_conf_t, base_rate),
     0, "prior positive rate: a new model starts with its output bias at "
     "logit(base_rate), so before any label it scores base_rate and "
     "approves; 0 = no prior", NULL, 0, 0.5},
    {"transform", RS_CONF_ENUM, "none", offsetof(rs_model_conf_t, transform),
     0, "features are standardised after sign(x) log(1 + |x|) (symlog: "
     "counts and amounts of any scale, heavy tails tamed) or as they are "
     "(none); a model keeps the one it was created with", "none|symlog", 0,
     0},
    {"std_window", RS_CONF_DURATION, "1d", offsetof(rs_model_conf_t, std_window),
     0, "the standardiser's mean and variance follow the scored events of "
     "about this much event time (an exponential forgetting; a day averages "
     "over the daily cycle); 0 = all history", NULL, 0, 0x1p62},
    {"replay", RS_CONF_INT, "1", offsetof(rs_model_conf_t, replay), 0,
     "after each learning step on a new record (a label, a negative at "
     "maturity), this many steps on records drawn from what the learning "
     "log keeps, with their labels (experience replay: the repeated passes "
     "an offline model gets); 0 = none", NULL, 0, 16},
    {"average", RS_CONF_DURATION, "7d", offsetof(rs_model_conf_t, average), 0,
     "a published version scores with the average of the learned weights "
     "over about this much event time (online learning sees its examples "
     "in time order and chases the last hours; the average does not); 0 = "
     "the learned weights themselves", NULL, 0, 0x1p62},
    {"kind", RS_CONF_ENUM, "seq", offsetof(rs_model_conf_t, kind), 0,
     "lr (online logistic regression) or seq (sequence model, `seq:` "
     "section)",
     "lr|seq", 0, 0},
    {"publish_interval", RS_CONF_DURATION, "60s",
     offsetof(rs_model_conf_t, publish_interval_ms), 0,
     "service: the trainer publishes a new version at least this often "
     "when it learned anything (and every publish_every updates)", NULL, 1,
     0x1p62},
    {"keep_versions", RS_CONF_INT, "100", offsetof(rs_model_conf_t, keep_versions),
     0, "service: published versions kept in the model store (oldest "
     "numbers pruned); audit --rescore can only recheck decisions whose "
     "version is still kept", NULL, 1, 1000000},
    {"store_dir", RS_CONF_STRING, "", offsetof(rs_model_conf_t, store_dir),
     sizeof(((rs_model_conf_t *)0)->store_dir),
     "service: model store directory, one <version>.rsm file per published "
     "version (audit --rescore, rollback); empty = no store", NULL, 0, 0},
    {"train_queue", RS_CONF_INT, "4096", offsetof(rs_model_conf_t, train_queue),
     0, "service: learning records queued from scoring to the trainer "
     "thread (scoring waits when full)", NULL, 1, 16777216},
};

const rs_conf_field_t *rs_model_conf_fields(int *nfields) {
    if (nfields) *nfields = (int)RS_ARRAY_LEN(rs_model_fields);
    return rs_model_fields;
}

double rs_model_conf_max(const char *name) {
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_model_fields); i++)
        if (!strcmp(rs_model_fields[i].name, name)) return rs_model_fields[i].max;
    return 0; /* not a `model:` field: a bug of the caller */
}

void rs_model_conf_init(rs_model_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    /* the table's textual defaults (config.c does the same on registration) */
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_model_fields); i++) {
        const rs_conf_field_t *fd = &rs_model_fields[i];
        char *p = (char *)conf + fd->offset;
        if (fd->type == RS_CONF_DOUBLE)
            *(double *)p = strtod(fd->def, NULL);
        else if (fd->type == RS_CONF_INT)
            *(int64_t *)p = strtoll(fd->def, NULL, 0);
        else if (fd->type == RS_CONF_DURATION) {
            if (fd->choices && !strcmp(fd->def, "auto"))
                *(int64_t *)p = RS_MODEL_HORIZON_AUTO;
            else
                rs_duration_parse(fd->def, (int64_t *)p);
        }
        else if (fd->type == RS_CONF_STRING)
            rs_strlcpy(p, fd->def, fd->size);
        else if (fd->type == RS_CONF_ENUM) {
            /* index of the default among the choices "a|b|c" */
            int idx = 0;
            const char *c = fd->choices;
            size_t dl = strlen(fd->def);
            while (c && *c) {
                const char *e = strchr(c, '|');
                size_t cl = e ? (size_t)(e - c) : strlen(c);
                if (cl == dl && !strncmp(c, fd->def, dl)) break;
                idx++;
                c = e ? e + 1 : NULL;
            }
            *(int *)p = idx;
        }
    }
    rs_seq_conf_init(&conf->seq);
}

void rs_model_conf_section(rs_conf_section_t *sec, rs_model_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "model";
    sec->desc = "risk model: online learning from delayed labels";
    sec->fields = rs_model_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_model_fields);
    sec->base = conf;
}

rs_err_t rs_model_check_conf(const rs_model_conf_t *c, char *errstr,
                             size_t errstr_size) {
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_model_fields); i++) {
        const rs_conf_field_t *fd = &rs_model_fields[i];
        const char *p = (const char *)c + fd->offset;
        if (fd->type == RS_CONF_STRING) continue;
        if (fd->type == RS_CONF_ENUM) {
            int kv = *(const int *)p;
            if (kv != 0 && kv != 1) /* kind lr|seq, transform none|symlog */
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "model.%s: %d is not one of %s", fd->name, kv,
                               fd->choices);
            continue;
        }
        double v = fd->type == RS_CONF_DOUBLE ? *(const double *)p
                                              : (double)*(const int64_t *)p;
        if (fd->type == RS_CONF_DURATION && fd->choices &&
            v == (double)RS_MODEL_HORIZON_AUTO)
            continue; /* "auto" */
        if (!isfinite(v) || v < fd->min || v > fd->max)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "model.%s: %g is out of range [%g, %g]", fd->name, v,
                           fd->min, fd->max);
    }
    return RS_OK;
}

/* ---------------------------------------------------------------- maths */

static inline double rs_sigmoid(double l) {
    return l >= 0 ? 1.0 / (1.0 + exp(-l)) : exp(l) / (1.0 + exp(l));
}

static inline double rs_softplus(double l) {
    return l > 0 ? l + log1p(exp(-l)) : log1p(exp(l));
}

double rs_lr_loss_grad(const double *w, const float *z, int dim, int y,
                       double pos_weight, double l2, double *grad) {
    double l = w[dim], reg = 0;
    for (int i = 0; i < dim; i++) {
        l += w[i] * (double)z[i];
        reg += w[i] * w[i];
    }
    double c = y ? pos_weight : 1.0;
    double loss = c * (rs_softplus(l) - (y ? l : 0.0)) + 0.5 * l2 * reg;
    if (grad) {
        double g = c * (rs_sigmoid(l) - (y ? 1.0 : 0.0));
        for (int i = 0; i < dim; i++) grad[i] = g * (double)z[i] + l2 * w[i];
        grad[dim] = g;
    }
    return loss;
}

/* mu/istd [dim] of the Welford state (m's own: a snapshot's are made by
 * the same function). */
static void rs_model_std_into(const rs_model_t *m, float *mu, float *istd) {
    for (int i = 0; i < m->dim; i++) {
        if (m->nobs < 2) {
            mu[i] = m->nobs ? (float)m->mean[i] : 0.0f;
            istd[i] = 1.0f;
        } else {
            double sd = sqrt(m->m2[i] / (double)m->nobs);
            mu[i] = (float)m->mean[i];
            istd[i] = (float)(1.0 / (sd > RS_STD_MIN ? sd : RS_STD_MIN));
        }
    }
}

void rs_model_refresh_std(rs_model_t *m) {
    rs_model_std_into(m, m->mu, m->istd);
}

void rs_model_refresh_w(rs_model_t *m) {
    for (int i = 0; i < m->dim; i++) m->w32[i] = (float)m->w[i];
    m->b32 = (float)m->w[m->dim];
}

static inline void rs_model_standardize(const rs_model_t *m, const float *x,
                                        float *z) {
    for (int i = 0; i < m->dim; i++) {
        float v = isfinite(x[i])
                      ? (rs_std_g(m->conf.transform, x[i]) - m->mu[i]) * m->istd[i]
                      : 0.0f;
        z[i] = v > RS_MODEL_Z_CLIP ? RS_MODEL_Z_CLIP
             : v < -RS_MODEL_Z_CLIP ? -RS_MODEL_Z_CLIP : v;
    }
}

void rs_model_name_version(rs_model_t *m) {
    char v[96]; /* a tag fits beside any number below 10^17 */
    snprintf(v, sizeof(v), "%s-%08x-%llu%s%s", "lr", m->conf_hash,
             (unsigned long long)m->vstep, m->vtag[0] ? "." : "", m->vtag);
    rs_strlcpy(m->version, v, sizeof(m->version));
}

/* Hash of what defines the model's lineage: kind, layout, learning setup. */
static uint32_t rs_model_hash_conf(const rs_model_t *m) {
    uint32_t h = rs_checksum32("lr", 2, 0);
    h = rs_checksum32(&m->dim, sizeof(m->dim), h);
    for (int i = 0; i < m->dim; i++)
        h = rs_checksum32(m->names[i], strlen(m->names[i]) + 1, h);
    const double d[4] = {m->conf.learning_rate, m->conf.l2, m->conf.pos_weight,
                         m->conf.grad_clip};
    const int64_t k[2] = {m->conf.label_horizon, m->conf.publish_every};
    h = rs_checksum32(d, sizeof(d), h);
    h = rs_checksum32(k, sizeof(k), h);
    return m->conf.transform ? rs_checksum32("symlog", 6, h) : h;
}

/* ---------------------------------------------------------- new/destroy */

uint32_t rs_model_names_hash(int dim, const char *const *names) {
    uint32_t h = 0;
    for (int i = 0; i < dim; i++)
        h = rs_checksum32(names[i], strlen(names[i]) + 1, h);
    return h;
}

static uint32_t rs_model_names_hash_of(const rs_model_t *m) {
    uint32_t h = 0;
    for (int i = 0; i < m->dim; i++)
        h = rs_checksum32(m->names[i], strlen(m->names[i]) + 1, h);
    return h;
}

/* Kind "seq": the wrapper holds the names; the model lives in m->seq. */
static rs_model_t *rs_model_new_seq(const rs_model_conf_t *conf, int dim,
                                    const char *const *names, char *errstr,
                                    size_t errstr_size) {
    rs_seq_t *sq = rs_seq_new(conf, dim, rs_model_names_hash(dim, names),
                              errstr, errstr_size);
    if (!sq) return NULL;
    rs_model_t *m = rs_calloc(1, sizeof(*m));
    m->conf = *conf;
    m->dim = dim;
    m->seq = sq;
    m->names = rs_calloc((size_t)dim, sizeof(*m->names));
    for (int i = 0; i < dim; i++)
        rs_strlcpy(m->names[i], names[i], RS_MODEL_NAME_MAX);
    return m;
}

rs_model_t *rs_model_new(const rs_model_conf_t *conf, int dim,
                         const char *const *names, char *errstr,
                         size_t errstr_size) {
    if (!conf) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG, "model: no configuration");
        return NULL;
    }
    if (rs_model_check_conf(conf, errstr, errstr_size)) return NULL;
    if (dim < 1 || dim > RS_MODEL_DIM_MAX || !names) {
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "model: dimension %d out of range [1, %d] or no names", dim,
                RS_MODEL_DIM_MAX);
        return NULL;
    }
    for (int i = 0; i < dim; i++) {
        if (!names[i] || !names[i][0] || strlen(names[i]) >= RS_MODEL_NAME_MAX) {
            rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                    "model: feature %d has an empty name or one longer than %d",
                    i, RS_MODEL_NAME_MAX - 1);
            return NULL;
        }
    }

    if (conf->kind == RS_MODEL_SEQ)
        return rs_model_new_seq(conf, dim, names, errstr, errstr_size);

    rs_model_t *m = rs_calloc(1, sizeof(*m));
    m->conf = *conf;
    m->dim = dim;
    m->names = rs_calloc((size_t)dim, sizeof(*m->names));
    for (int i = 0; i < dim; i++)
        rs_strlcpy(m->names[i], names[i], RS_MODEL_NAME_MAX);
    size_t d1 = (size_t)dim + 1;
    m->mean = rs_aligned_calloc((size_t)dim, sizeof(double));
    m->m2 = rs_aligned_calloc((size_t)dim, sizeof(double));
    m->mu = rs_aligned_calloc((size_t)dim, sizeof(float));
    m->istd = rs_aligned_calloc((size_t)dim, sizeof(float));
    m->w = rs_aligned_calloc(d1, sizeof(double));
    m->wa = rs_aligned_calloc(d1, sizeof(double));
    m->w32 = rs_aligned_calloc((size_t)dim, sizeof(float));
    m->am = rs_aligned_calloc(d1, sizeof(double));
    m->av = rs_aligned_calloc(d1, sizeof(double));
    m->batch_max = (int)conf->batch_max;
    m->zb = rs_aligned_calloc((size_t)m->batch_max * (size_t)dim, sizeof(float));
    m->lg = rs_aligned_calloc((size_t)m->batch_max, sizeof(float));
    m->zrow = rs_aligned_calloc((size_t)dim, sizeof(float));
    m->grad = rs_aligned_calloc(d1, sizeof(double));

    m->xrec = rs_aligned_calloc((size_t)dim, sizeof(float));

    /* Cold start: score the prior rate, not 0.5 (which would send every
     * event to review before the first label arrives). */
    if (conf->base_rate > 0 && conf->base_rate < 1)
        m->w[dim] = log(conf->base_rate / (1.0 - conf->base_rate));
    rs_model_refresh_std(m);
    rs_model_refresh_w(m);
    m->conf_hash = rs_model_hash_conf(m);
    m->names_hash = rs_model_names_hash(dim, names);
    rs_model_name_version(m);
    return m;
}

void rs_model_destroy(rs_model_t *m) {
    if (!m) return;
    rs_seq_destroy(m->seq);
    rs_seq_weights_release(m->wuse);
    rs_free(m->names);
    rs_free(m->mean);
    rs_free(m->m2);
    rs_free(m->mu);
    rs_free(m->istd);
    rs_free(m->w);
    rs_free(m->wa);
    rs_free(m->w32);
    rs_free(m->am);
    rs_free(m->av);
    rs_free(m->zb);
    rs_free(m->lg);
    rs_free(m->zrow);
    rs_free(m->grad);
    rs_free(m->xrec);
    rs_free(m);
}

int rs_model_dim(const rs_model_t *m) { return m->dim; }

const char *rs_model_feature_name(const rs_model_t *m, int i) {
    return i >= 0 && i < m->dim ? m->names[i] : NULL;
}

const char *rs_model_kind(const rs_model_t *m) { return m->seq ? "seq" : "lr"; }

const char *rs_model_version(const rs_model_t *m) {
    if (m->seq) return rs_seq_version(m->seq);
    return m->wuse ? m->wuse->version : m->version;
}

rs_err_t rs_model_check_names(const rs_model_t *m, int dim,
                              const char *const *names, char *errstr,
                              size_t errstr_size) {
    if (dim != m->dim)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "model %s has %d features, the feature engine %d",
                       m->version, m->dim, dim);
    for (int i = 0; i < dim; i++)
        if (!names[i] || strcmp(names[i], m->names[i]))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "model %s feature %d is '%s', the feature engine's "
                           "is '%s'",
                           m->version, i, m->names[i],
                           names[i] ? names[i] : "(null)");
    return RS_OK;
}

/* --------------------------------------------------------------- scoring */

rs_err_t rs_model_score(rs_model_t *m, const float *x, int n, float *scores,
                        float *contrib) {
    if (n < 0) return RS_ERR_INVALID;
    if (m->seq) return RS_ERR_STATE;
    const int dim = m->dim;
    for (int r0 = 0; r0 < n; r0 += m->batch_max) {
        int rows = RS_MIN(m->batch_max, n - r0);
        const float *xc = x + (size_t)r0 * dim;
        for (int r = 0; r < rows; r++)
            rs_model_standardize(m, xc + (size_t)r * dim, m->zb + (size_t)r * dim);
        /* lg[rows] = zb[rows][dim] . w32[dim] */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, dim, 1.0f, m->zb, dim,
                    m->w32, 1, 0.0f, m->lg, 1);
        for (int r = 0; r < rows; r++)
            scores[r0 + r] = (float)rs_sigmoid((double)m->lg[r] + (double)m->b32);
        if (contrib) {
            float *c = contrib + (size_t)r0 * dim;
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < dim; i++)
                    c[(size_t)r * dim + i] = m->w32[i] * m->zb[(size_t)r * dim + i];
        }
    }
    return RS_OK;
}

/* ------------------------------------------------- one call path, any kind */

void rs_model_input_from_event(rs_model_input_t *in, const rs_event_t *ev,
                               const float *x) {
    memset(in, 0, sizeof(*in));
    in->event_id = ev->id;
    in->entity_id = ev->entity_id;
    in->counterparty_id = ev->counterparty_id;
    in->event_time_ms = ev->event_time_ms;
    in->amount = (float)ev->amount;
    in->x = x;
    int n = RS_MIN(ev->n_categ, RS_MAX_CATEG);
    in->n_cat = n < 0 ? 0 : n;
    /* the value hashed with its field's name, so "US" as a country and as
     * a currency land in different rows */
    for (int i = 0; i < in->n_cat; i++) {
        const rs_categ_t *c = &ev->categ[i];
        in->cat_hash[i] = rs_hash64_seed(c->value, strnlen(c->value, sizeof(c->value)),
                                         rs_hash64(c->name, strnlen(c->name, sizeof(c->name))));
    }
}

/* Logit of a standardised row without the bias: 8 float lanes then a
 * fixed reduction tree, so a row's bits do not depend on its batch or its
 * position in it, and rs_model_rescore recomputes them exactly.
 * (cblas_sgemv does not promise that: with OpenBLAS 0.3.21 Haswell a row
 * scored alone differs in the last bits from the same row inside a batch
 * for dim 17..100, measured; rs_model_score keeps it.) */
typedef float rs_lr_v8 __attribute__((vector_size(32)));
typedef float rs_lr_v8u __attribute__((vector_size(32), aligned(4), may_alias));

static float rs_lr_dot(const float *a, const float *b, int n) {
    rs_lr_v8 acc = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc += *(const rs_lr_v8u *)(const void *)(a + i) *
               *(const rs_lr_v8u *)(const void *)(b + i);
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
              ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Score of raw row x (z [dim] gets its standardised values): the one
 * computation behind the "lr" forward and rescore. */
static float rs_lr_row_score(const rs_model_t *m, const float *x, float *z) {
    rs_model_standardize(m, x, z);
    float lg = rs_lr_dot(z, m->w32, m->dim);
    return (float)rs_sigmoid((double)lg + (double)m->b32);
}

static uint32_t rs_lr_log_arch(const rs_model_t *m) {
    uint32_t d = (uint32_t)m->dim;
    uint32_t h = rs_checksum32(&d, sizeof(d), rs_checksum32("lr", 2, 0));
    return m->conf.transform ? rs_checksum32("symlog", 6, h) : h;
}

/* The "lr" input log of raw row x (layout in model.h). */
static size_t rs_lr_log_write(const rs_model_t *m, const float *x,
                              uint8_t *log) {
    uint8_t *p = rs_model_log_hdr(log, RS_MODEL_LR, 0, rs_lr_log_arch(m),
                                  m->names_hash, (uint32_t)m->dim,
                                  4 * (uint32_t)m->dim);
    p = rs_le_putf32s(p, x, (size_t)m->dim);
    rs_le_put32(p, rs_model_log_sum(log, (size_t)(p - log)));
    return (size_t)(p - log) + RS_MODEL_LOG_TRAILER;
}

size_t rs_model_log_max(const rs_model_t *m) {
    if (m->seq) return rs_seq_log_max(m->seq);
    return RS_MODEL_LOG_HDR + 4 * (size_t)m->dim + RS_MODEL_LOG_TRAILER;
}

/* "lr" learning record: header | f32 x[dim] (model.h). */
static size_t rs_lr_lrec_size(const rs_model_t *m) {
    return (RS_LREC_HDR + sizeof(float) * (size_t)m->dim + 7) & ~(size_t)7;
}

static void rs_lr_lrec_write(const rs_model_t *m, const rs_model_input_t *in,
                             float score) {
    const size_t size = rs_lr_lrec_size(m);
    uint8_t *r = in->lrec;
    memset(r, 0, size);
    rs_lrec_hdr_t *h = (rs_lrec_hdr_t *)(void *)r;
    h->id = rs_hash_str(in->event_id);
    h->entity = in->entity_id ? rs_hash_str(in->entity_id) : 0;
    h->t = in->event_time_ms;
    h->score = score;
    h->kind = RS_MODEL_LR;
    rs_le_putf32s(r + RS_LREC_HDR, in->x, (size_t)m->dim);
    rs_lrec_seal(r, size);
}

rs_err_t rs_model_forward(rs_model_t *m, const rs_model_input_t *in, int n,
                          rs_model_output_t *out, float *contrib,
                          unsigned flags) {
    if (n < 0) return RS_ERR_INVALID;
    if (m->seq) return rs_seq_forward(m->seq, in, n, out, contrib, flags);
    const int dry = (flags & RS_MODEL_FWD_DRY) != 0;
    if (dry) flags &= ~RS_MODEL_FWD_REMEMBER;
    const size_t lmax = rs_model_log_max(m);
    for (int i = 0; i < n; i++)
        if (!in[i].x ||
            ((flags & RS_MODEL_FWD_REMEMBER) &&
             (!in[i].event_id || !in[i].lrec)) ||
            in[i].skip_hist < 0 || (in[i].skip_hist && !dry) ||
            (in[i].log && in[i].log_cap < lmax))
            return RS_ERR_INVALID;
    const int dim = m->dim;
    for (int i = 0; i < n; i++) {
        rs_model_output_t *o = &out[i];
        float *z = m->zb; /* [dim] */
        memset(o, 0, offsetof(rs_model_output_t, attended));
        o->n_experts = 0;
        o->flags = 0;
        o->score = rs_lr_row_score(m, in[i].x, z);
        if (contrib && rs_model_explains(&in[i], o->score)) {
            float *c = contrib + (size_t)i * dim;
            for (int k = 0; k < dim; k++) c[k] = m->w32[k] * z[k];
            o->contrib = c;
        }
        o->log_len = in[i].log && rs_model_logs(&in[i], o->score)
                         ? rs_lr_log_write(m, in[i].x, in[i].log) : 0;
    }
    if (flags & RS_MODEL_FWD_REMEMBER)
        for (int i = 0; i < n; i++) rs_lr_lrec_write(m, &in[i], out[i].score);
    return RS_OK;
}

rs_err_t rs_model_rescore(rs_model_t *m, const void *log, size_t len,
                          float *score, char *errstr, size_t errstr_size) {
    const uint8_t *b = log;
    const size_t env = RS_MODEL_LOG_HDR + RS_MODEL_LOG_TRAILER;
    if (!b || !score)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "rescore: no log or no score pointer");
    if (len < env)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: %zu bytes, shorter than its envelope (%zu)",
                       len, env);
    if (memcmp(b, RS_MODEL_LOG_MAGIC, 4))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "not a riskstream input log (bad magic)");
    if (b[4] != RS_MODEL_LOG_FORMAT)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log format %u is not supported (this build "
                       "reads %u)", b[4], RS_MODEL_LOG_FORMAT);
    const uint32_t blen = rs_le_get32(b + 20);
    if ((uint64_t)blen + env != (uint64_t)len)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: %zu bytes, its header announces %llu",
                       len, (unsigned long long)blen + env);
    const uint32_t want = rs_le_get32(b + RS_MODEL_LOG_HDR + blen);
    const uint32_t got = rs_model_log_sum(b, RS_MODEL_LOG_HDR + (size_t)blen);
    if (want != got)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: checksum mismatch (stored %08x, computed "
                       "%08x): the log is damaged", want, got);
    const int kind = b[5];
    if (kind != RS_MODEL_LR && kind != RS_MODEL_SEQ)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: unknown model kind %d", kind);
    if ((kind == RS_MODEL_SEQ) != (m->seq != NULL))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "input log of a '%s' model, this model is '%s'",
                       kind == RS_MODEL_SEQ ? "seq" : "lr", rs_model_kind(m));
    const uint32_t dim = rs_le_get32(b + 16);
    if (dim != (uint32_t)m->dim)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "input log of %u features, this model has %d", dim,
                       m->dim);
    uint32_t nh = 0;
    for (int i = 0; i < m->dim; i++)
        nh = rs_checksum32(m->names[i], strlen(m->names[i]) + 1, nh);
    if (rs_le_get32(b + 12) != nh)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "input log made with other feature names (hash %08x, "
                       "this model's %08x)", rs_le_get32(b + 12), nh);
    const unsigned lflags = (unsigned)b[6] | (unsigned)b[7] << 8;
    const uint32_t arch = rs_le_get32(b + 8);
    if (m->seq)
        return rs_seq_rescore(m->seq, b + RS_MODEL_LOG_HDR, blen, lflags, arch,
                              score, errstr, errstr_size);
    if (arch != rs_lr_log_arch(m))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "input log from another architecture (hash %08x, this "
                       "model's %08x)", arch, rs_lr_log_arch(m));
    if (blen != 4 * dim)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "input log: an lr body of %u bytes, %u features need "
                       "%u", blen, dim, 4 * dim);
    float *x = m->zb;                       /* [dim] raw, then z in zrow */
    rs_le_getf32s(b + RS_MODEL_LOG_HDR, x, dim);
    *score = rs_lr_row_score(m, x, m->zrow);
    return RS_OK;
}

/* ------------------------------------------------------ weight snapshots */

/* Architecture of an "lr" model: who may use its snapshots and records. */
static uint32_t rs_model_lr_arch(const rs_model_t *m) {
    uint32_t h = rs_checksum32("lr", 2, 0);
    h = rs_checksum32(&m->dim, sizeof(m->dim), h);
    /* the transform is what mu/istd are of (none: the hash of before) */
    return m->conf.transform ? rs_checksum32("symlog", 6, h) : h;
}

/* "lr": score with the snapshot in use (the scoring arrays w32, b32, mu,
 * istd hold its values; learning recomputes m's own from w and the
 * Welford state, then calls this again). */
static void rs_model_use_copy(rs_model_t *m) {
    const rs_model_weights_t *w = m->wuse;
    memcpy(m->w32, w->p, sizeof(float) * (size_t)m->dim);
    m->b32 = w->p[m->dim];
    memcpy(m->mu, w->mu, sizeof(float) * (size_t)m->dim);
    memcpy(m->istd, w->istd, sizeof(float) * (size_t)m->dim);
}

rs_model_weights_t *rs_model_weights_take(const rs_model_t *m) {
    if (m->seq) return rs_seq_weights_take(m->seq);
    rs_model_weights_t *w = rs_calloc(1, sizeof(*w));
    atomic_init(&w->refs, 1);
    w->kind = RS_MODEL_LR;
    w->np = (size_t)m->dim + 1;
    w->dim = m->dim;
    w->arch = rs_model_lr_arch(m);
    w->vnum = m->vstep;
    rs_strlcpy(w->version, m->version, sizeof(w->version));
    /* m's own weights, as rs_model_refresh_w/_std make them (the scoring
     * arrays may hold a snapshot m uses) */
    w->p = rs_aligned_calloc(w->np, sizeof(float));
    const double *src = m->conf.average > 0 && m->avn ? m->wa : m->w;
    for (int i = 0; i <= m->dim; i++) w->p[i] = (float)src[i];
    w->mu = rs_aligned_calloc((size_t)m->dim, sizeof(float));
    w->istd = rs_aligned_calloc((size_t)m->dim, sizeof(float));
    rs_model_std_into(m, w->mu, w->istd);
    return w;
}

void rs_model_weights_ref(rs_model_weights_t *w) { rs_seq_weights_ref(w); }

void rs_model_weights_release(rs_model_weights_t *w) {
    rs_seq_weights_release(w);
}

const char *rs_model_weights_version(const rs_model_weights_t *w) {
    return rs_seq_weights_version(w);
}

rs_err_t rs_model_weights_use(rs_model_t *m, rs_model_weights_t *w) {
    if (w && w->kind != (m->seq ? RS_MODEL_SEQ : RS_MODEL_LR))
        return RS_ERR_INVALID;
    if (m->seq) return rs_seq_weights_use(m->seq, w);
    if (w && (w->np != (size_t)m->dim + 1 || w->dim != m->dim ||
              w->arch != rs_model_lr_arch(m)))
        return RS_ERR_INVALID;
    rs_seq_weights_ref(w);
    rs_seq_weights_release(m->wuse);
    m->wuse = w;
    if (w) {
        rs_model_use_copy(m);
    } else {
        rs_model_refresh_std(m);
        rs_model_refresh_w(m);
    }
    return RS_OK;
}

/* ------------------------------------------------------------- learning */

/* One Adam step on x with label y (how: model.h rs_model_learn_t). */
static void rs_model_step(rs_model_t *m, const float *x, int y,
                          rs_model_learn_t how, int64_t t) {
    const int dim = m->dim;
    /* 1. standardised at the current statistics (rs_model_observe keeps
     * them; learning does not move them) -- m's own: the scoring arrays
     * may hold a snapshot m uses (put back after the step) */
    if (m->wuse) rs_model_refresh_std(m);
    rs_model_standardize(m, x, m->zrow);

    /* 2. gradient, clipped by norm.  A correction: the positive's loss
     * minus the negative's (d/dl: c1 (p - 1) - p). */
    rs_lr_loss_grad(m->w, m->zrow, dim, y, m->conf.pos_weight, m->conf.l2,
                    m->grad);
    if (how == RS_MODEL_LEARN_CORRECT) {
        double l = m->w[dim];
        for (int i = 0; i < dim; i++) l += m->w[i] * (double)m->zrow[i];
        double p = rs_sigmoid(l), dl = m->conf.pos_weight * (p - 1.0) - p;
        for (int i = 0; i < dim; i++)
            m->grad[i] = dl * m->zrow[i] + m->conf.l2 * m->w[i];
        m->grad[dim] = dl;
    }
    double norm = 0;
    for (int i = 0; i <= dim; i++) norm += m->grad[i] * m->grad[i];
    norm = sqrt(norm);
    double scale = norm > m->conf.grad_clip ? m->conf.grad_clip / norm : 1.0;

    /* 3. Adam */
    m->adam_t++;
    double c1 = 1.0 - pow(RS_ADAM_B1, (double)m->adam_t);
    double c2 = 1.0 - pow(RS_ADAM_B2, (double)m->adam_t);
    for (int i = 0; i <= dim; i++) {
        double g = m->grad[i] * scale;
        m->am[i] = RS_ADAM_B1 * m->am[i] + (1 - RS_ADAM_B1) * g;
        m->av[i] = RS_ADAM_B2 * m->av[i] + (1 - RS_ADAM_B2) * g * g;
        m->w[i] -= m->conf.learning_rate * (m->am[i] / c1) /
                   (sqrt(m->av[i] / c2) + RS_ADAM_EPS);
    }
    /* the weights a version publishes: their running average */
    double a = rs_avg_rate(++m->avn, t, &m->avt, m->conf.average);
    for (int i = 0; i <= dim; i++) m->wa[i] += a * (m->w[i] - m->wa[i]);
    rs_model_refresh_w(m);
    if (m->wuse) rs_model_use_copy(m); /* scoring stays on the snapshot */

    /* 4. counters and version */
    m->updates++;
    if (how == RS_MODEL_LEARN_REPLAY) {
        m->replays++;
    } else if (how == RS_MODEL_LEARN_CORRECT) {
        m->positives++;
        m->corrections++;
    } else if (y) {
        m->positives++;
    } else {
        m->negatives++;
        if (how == RS_MODEL_LEARN_MATURED) m->horizon_negatives++;
    }
    uint64_t vs = m->updates / (uint64_t)m->conf.publish_every;
    if (!m->vnamed && vs != m->vstep) {
        m->vstep = vs;
        rs_model_name_version(m);
    }
}

void rs_model_stats(const rs_model_t *m, rs_model_stats_t *st) {
    if (m->seq) {
        rs_seq_stats(m->seq, st);
        return;
    }
    memset(st, 0, sizeof(*st));
    st->updates = m->updates;
    st->positives = m->positives;
    st->negatives = m->negatives;
    st->horizon_negatives = m->horizon_negatives;
    st->corrections = m->corrections;
    st->replays = m->replays;
    st->observations = m->nobs;
    rs_strlcpy(st->version, m->version, sizeof(st->version));
}

/* ------------------------------------------ entity caches across restarts */

size_t rs_model_caches_size(const rs_model_t *m) {
    return m->seq ? rs_seq_caches_size(m->seq) : 0;
}

rs_err_t rs_model_caches_write(const rs_model_t *m, void *buf, size_t cap,
                               size_t *len) {
    if (!len || (!buf && cap)) return RS_ERR_INVALID;
    if (!m->seq) {
        *len = 0;
        return RS_OK;
    }
    return rs_seq_caches_write(m->seq, buf, cap, len);
}

rs_err_t rs_model_caches_read(rs_model_t *m, const void *buf, size_t len,
                              char *errstr, size_t errstr_size) {
    if (!buf && len)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "entity caches: no buffer");
    if (m->seq) return rs_seq_caches_read(m->seq, buf, len, errstr, errstr_size);
    if (!len) return RS_OK; /* "lr" has none */
    rs_err_t err = rs_seq_caches_envelope(buf, len, errstr, errstr_size);
    if (err) return err;
    return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                   "entity caches of a 'seq' model, this model is 'lr'");
}

size_t rs_model_caches_size_sel(const rs_model_t *m,
                                rs_model_cache_sel_cb *sel, void *opaque) {
    return m->seq ? rs_seq_caches_size_sel(m->seq, sel, opaque) : 0;
}

rs_err_t rs_model_caches_write_sel(const rs_model_t *m,
                                   rs_model_cache_sel_cb *sel, void *opaque,
                                   void *buf, size_t cap, size_t *len) {
    if (!len || (!buf && cap)) return RS_ERR_INVALID;
    if (!m->seq) {
        *len = 0;
        return RS_OK;
    }
    return rs_seq_caches_write_sel(m->seq, sel, opaque, buf, cap, len);
}

rs_err_t rs_model_caches_merge(rs_model_t *m, const void *buf, size_t len,
                               uint64_t *n, char *errstr, size_t errstr_size) {
    if (n) *n = 0;
    if (!buf && len)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "entity caches: no buffer");
    if (m->seq)
        return rs_seq_caches_merge(m->seq, buf, len, n, errstr, errstr_size);
    return rs_model_caches_read(m, buf, len, errstr, errstr_size);
}

rs_err_t rs_model_caches_write_entity(const rs_model_t *m,
                                      const char *entity_id, void *buf,
                                      size_t cap, size_t *len) {
    if (!len || !entity_id) return RS_ERR_INVALID;
    *len = 0;
    if (!m->seq) return RS_ERR_NOTFOUND;
    return rs_seq_caches_write_one(m->seq, rs_hash_str(entity_id), buf, cap,
                                   len);
}

uint64_t rs_model_caches_drop(rs_model_t *m, rs_model_cache_sel_cb *sel,
                              void *opaque) {
    return m->seq ? rs_seq_caches_drop(m->seq, sel, opaque) : 0;
}

void rs_model_caches_track_gone(rs_model_t *m, uint32_t cap) {
    if (m->seq) rs_seq_caches_track_gone(m->seq, cap);
}

int rs_model_caches_gone_take(rs_model_t *m, const uint64_t **keys,
                              const int32_t **parts, uint64_t *lost) {
    if (lost) *lost = 0;
    if (!m->seq) return 0;
    return rs_seq_caches_gone_take(m->seq, keys, parts, lost);
}

int rs_model_caches_drop_key(rs_model_t *m, int32_t partition,
                             uint64_t key) {
    return m->seq ? rs_seq_caches_drop_key(m->seq, partition, key) : 0;
}

/* ------------------------------------------------ versions, new_like */

void rs_model_set_version(rs_model_t *m, uint64_t n) {
    n &= ~RS_VNAMED_BIT;
    if (m->seq) {
        rs_seq_set_number(m->seq, n);
        return;
    }
    m->vstep = n;
    m->vnamed = 1;
    rs_model_name_version(m);
}

void rs_model_view(rs_model_t *m, rs_model_view_t *v) {
    memset(v, 0, sizeof(*v));
    if (m->seq) {
        rs_seq_view(m->seq, v);
        return;
    }
    const size_t n = (size_t)m->dim + 1;
    v->kind = RS_MODEL_LR;
    v->narr = 4;
    v->arr[0].name = "w";
    v->arr[0].f64 = m->w;
    v->arr[1].name = "average";
    v->arr[1].f64 = m->wa;
    v->arr[2].name = "adam m";
    v->arr[2].f64 = m->am;
    v->arr[3].name = "adam v";
    v->arr[3].f64 = m->av;
    for (int i = 0; i < 4; i++) {
        v->arr[i].n = n;
        v->arr[i].avg_of = i == 1 ? 0 : -1;
    }
    v->dim = m->dim;
    v->mean = m->mean;
    v->m2 = m->m2;
    v->nobs = &m->nobs;
    v->std_tlast = &m->std_tlast;
    v->updates = &m->updates;
    v->positives = &m->positives;
    v->negatives = &m->negatives;
    v->horizon_negatives = &m->horizon_negatives;
    v->avn = &m->avn;
    v->opt_t = &m->adam_t;
    v->avt = &m->avt;
}

rs_seq_t *rs_model_seq(rs_model_t *m) { return m ? m->seq : NULL; }

void rs_model_view_done(rs_model_t *m) {
    if (m->seq) {
        rs_seq_view_done(m->seq);
        return;
    }
    if (m->wuse) return; /* scoring reads the snapshot's copies */
    rs_model_refresh_std(m);
    rs_model_refresh_w(m);
}

rs_err_t rs_model_set_version_tag(rs_model_t *m, const char *tag) {
    if (!tag) tag = "";
    if (!rs_model_version_tag_valid(tag, strlen(tag)) && tag[0])
        return RS_ERR_INVALID;
    if (m->seq) return rs_seq_set_tag(m->seq, tag);
    rs_strlcpy(m->vtag, tag, sizeof(m->vtag));
    rs_model_name_version(m);
    return RS_OK;
}

uint64_t rs_model_version_number(const rs_model_t *m) {
    if (m->seq) return rs_seq_number(m->seq);
    return m->wuse ? m->wuse->vnum : m->vstep;
}

rs_model_t *rs_model_new_like(const rs_model_t *m, const rs_model_conf_t *conf,
                              char *errstr, size_t errstr_size) {
    /* a loaded "seq" wrapper has no conf of its own: the model's */
    const rs_model_conf_t *own = m->seq ? rs_seq_conf(m->seq) : &m->conf;
    rs_model_conf_t use = conf ? *conf : *own;
    use.kind = m->seq ? RS_MODEL_SEQ : RS_MODEL_LR;
    use.transform = own->transform; /* what its statistics are of */
    if (m->seq) { /* the architecture (and initialisation) are m's */
        use.seq.d_model = own->seq.d_model;
        use.seq.history = own->seq.history;
        use.seq.layers = own->seq.layers;
        use.seq.experts = own->seq.experts;
        use.seq.top_k = own->seq.top_k;
        use.seq.expert_hidden = own->seq.expert_hidden;
        use.seq.buckets = own->seq.buckets;
        use.seq.seed = own->seq.seed;
    }
    const char **nameps = rs_calloc((size_t)m->dim, sizeof(*nameps));
    for (int i = 0; i < m->dim; i++) nameps[i] = m->names[i];
    rs_model_t *l = rs_model_new(&use, m->dim, nameps, errstr, errstr_size);
    rs_free(nameps);
    return l;
}

/* --------------------------------------------------- learning records */

int rs_model_conf_mem(const rs_model_conf_t *conf, int dim,
                      rs_mem_item_t *items, int max) {
    (void)dim;
    if (max < 1 || conf->kind != RS_MODEL_SEQ) return 0;
    /* "lr" preallocates O(dim); the learning log is on disk (page cache) */
    items[0] = (rs_mem_item_t){"seq.max_entities",
                               (uint64_t)conf->seq.max_entities *
                                   rs_seq_conf_entity_bytes(conf)};
    return 1;
}

rs_err_t rs_model_lrec_x(const rs_model_t *m, const void *rec, float *x) {
    const rs_lrec_hdr_t *h = rec;
    if (!rec || h->kind != (m->seq ? RS_MODEL_SEQ : RS_MODEL_LR))
        return RS_ERR_INVALID;
    if (m->seq) rs_seq_lrec_x(m->seq, rec, x);
    else rs_le_getf32s((const uint8_t *)rec + RS_LREC_HDR, x, (size_t)m->dim);
    return RS_OK;
}

void rs_model_observe(rs_model_t *m, const void *rec) {
    const rs_lrec_hdr_t *h = rec;
    if (m->seq) {
        rs_seq_observe(m->seq, rec);
        return;
    }
    if (h->kind != RS_MODEL_LR) return;
    rs_le_getf32s((const uint8_t *)rec + RS_LREC_HDR, m->xrec, (size_t)m->dim);
    rs_std_observe(m->mean, m->m2, &m->nobs, &m->std_tlast, m->dim, m->xrec,
                   h->t, m->conf.std_window, m->conf.transform);
    rs_model_refresh_std(m);
    if (m->wuse) rs_model_use_copy(m); /* scoring stays on the snapshot */
}

size_t rs_model_lrec_size(const rs_model_t *m) {
    return m->seq ? rs_seq_lrec_size(m->seq) : rs_lr_lrec_size(m);
}

void rs_model_lrec_meta(const rs_model_t *m, rs_learnlog_meta_t *meta) {
    memset(meta, 0, sizeof(*meta));
    meta->rec_size = (uint32_t)rs_model_lrec_size(m);
    meta->kind = m->seq ? RS_MODEL_SEQ : RS_MODEL_LR;
    meta->arch = m->seq ? rs_seq_record_arch(m->seq) : rs_model_lr_arch(m);
    meta->names_hash = rs_model_names_hash_of(m);
    meta->dim = (uint32_t)m->dim;
}

rs_err_t rs_model_learn_lrec(rs_model_t *m, const void *rec,
                             const void *const *hist, int nh, int y,
                             rs_model_learn_t how, double psi) {
    if (!rec || nh < 0 || (nh && !hist)) return RS_ERR_INVALID;
    if (m->seq)
        return rs_seq_learn_lrec(m->seq, rec, hist, nh, y, how, psi);
    const size_t size = rs_lr_lrec_size(m);
    const rs_lrec_hdr_t *h = rec;
    if (h->kind != RS_MODEL_LR) return RS_ERR_INVALID;
    if (h->sum != rs_lrec_sum(rec, size)) return RS_ERR_CORRUPT;
    rs_le_getf32s((const uint8_t *)rec + RS_LREC_HDR, m->xrec, (size_t)m->dim);
    rs_model_step(m, m->xrec, how == RS_MODEL_LEARN_CORRECT ? 1 : y != 0, how,
                  h->t);
    return RS_OK;
}
