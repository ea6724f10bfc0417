/* opcond.c -- operating conditions: online assignment of readings to
 * conditions from their settings, per-condition fleet statistics and the
 * normalisation of the readings (opcond.h).  No I/O, no allocation after
 * rs_opcond_create. */
#include "features/opcond.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OC_S RS_OPCOND_MAX_SETTINGS
#define OC_F RS_OPCOND_MAX_FIELDS
#define OC_C RS_OPCOND_MAX_CONDITIONS
#define OC_W RS_OPCOND_MAX_WARMUP
#define OC_EPS 1e-9   /* floor of the within-condition RMS distance (scaled
                       * units): settings repeated exactly */

/* Welford running statistics. */
typedef struct rs_oc_stat_s {
    double n, mean, m2;
} rs_oc_stat_t;

/* Everything learned (the checkpointed bytes). */
typedef struct rs_oc_state_s {
    double seen;                     /* readings with finite settings      */
    double k;                        /* conditions found                   */
    double scale[OC_S];              /* settings' scale (warm-up sd or 1)  */
    rs_oc_stat_t cen[OC_C][OC_S];    /* centres, in scaled units           */
    rs_oc_stat_t st[OC_C][OC_F];     /* per condition and field: reading
                                      * minus its machine's level          */
    double buf[OC_W][OC_S];          /* warm-up readings' settings         */
} rs_oc_state_t;

struct rs_opcond_s {
    rs_opcond_conf_t c;
    rs_oc_state_t s;
    int cur;                         /* last reading's condition (-1)      */
    double raw[OC_F];                /* its values                         */
    double out[OC_F];                /* normalised                         */
};

rs_opcond_t *rs_opcond_create(const rs_opcond_conf_t *conf, char *errstr,
                              size_t errstr_size) {
    if (!conf || conf->nset < 1 || conf->nset > OC_S || conf->nfield < 0 ||
        conf->nfield > OC_F || conf->max_conditions < 1 ||
        conf->max_conditions > OC_C || conf->warmup < 2 ||
        conf->warmup > OC_W || conf->min_readings < 2) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "operating conditions: 1-%d setting fields, 0-%d fields, "
                "1-%d conditions, a warm-up of 2-%d readings and at least 2 "
                "readings per condition",
                OC_S, OC_F, OC_C, OC_W);
        return NULL;
    }
    rs_opcond_t *o = rs_calloc(1, sizeof(*o));
    o->c = *conf;
    for (int i = 0; i < OC_S; i++) o->c.set[i][RS_NAME_MAX - 1] = '\0';
    for (int i = 0; i < OC_F; i++) o->c.field[i][RS_NAME_MAX - 1] = '\0';
    rs_opcond_reset(o);
    return o;
}

void rs_opcond_destroy(rs_opcond_t *o) { free(o); }

void rs_opcond_reset(rs_opcond_t *o) {
    memset(&o->s, 0, sizeof(o->s));
    for (int d = 0; d < OC_S; d++) o->s.scale[d] = 1.0;
    for (int j = 0; j < OC_F; j++) o->out[j] = o->raw[j] = NAN;
    o->cur = -1;
}

static inline void rs_oc_welford(rs_oc_stat_t *b, double v) {
    b->n += 1;
    double d = v - b->mean;
    b->mean += d / b->n;
    b->m2 += d * (v - b->mean);
    if (b->m2 < 0) b->m2 = 0;
}

/* Squared distance of scaled point p to centre c. */
static inline double rs_oc_d2(const rs_opcond_t *o, const double *p, int c) {
    double s = 0;
    for (int d = 0; d < o->c.nset; d++) {
        double x = p[d] - o->s.cen[c][d].mean;
        s += x * x;
    }
    return s;
}

static int rs_oc_nearest(const rs_opcond_t *o, const double *p, double *d2) {
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < (int)o->s.k; c++) {
        double x = rs_oc_d2(o, p, c);
        if (x < bd) { bd = x; best = c; }
    }
    *d2 = bd;
    return best;
}

/* RMS distance of the readings to their centre (scaled units). */
static double rs_oc_within(const rs_opcond_t *o) {
    double m2 = 0, n = 0;
    for (int c = 0; c < (int)o->s.k; c++) {
        n += o->s.cen[c][0].n;
        for (int d = 0; d < o->c.nset; d++) m2 += o->s.cen[c][d].m2;
    }
    double w = n > 0 ? sqrt(m2 / n) : 0;
    return w > OC_EPS ? w : OC_EPS;
}

/* The fields of one reading in condition c, normalised with the
 * statistics as they are (before the reading): x - e_c + the mean effect
 * of the warm conditions. */
static void rs_oc_normalise(const rs_opcond_t *o, int c, const double *v,
                            double *out) {
    for (int j = 0; j < o->c.nfield; j++) {
        double x = v[j];
        out[j] = x;
        const rs_oc_stat_t *sc = &o->s.st[c][j];
        if (!isfinite(x) || sc->n < o->c.min_readings) continue; /* cold */
        double n = 0, sm = 0;
        for (int k = 0; k < (int)o->s.k; k++) {
            const rs_oc_stat_t *s = &o->s.st[k][j];
            if (s->n < o->c.min_readings) continue;
            n += s->n;
            sm += s->n * s->mean;
        }
        out[j] = x - sc->mean + sm / n;
    }
}

static void rs_oc_centre(rs_opcond_t *o, int c, const double *p) {
    for (int d = 0; d < o->c.nset; d++) rs_oc_welford(&o->s.cen[c][d], p[d]);
}

/* End of the warm-up: the settings' scales, then farthest-first centres
 * over the buffered readings, then the centres as their readings' means. */
static void rs_oc_found(rs_opcond_t *o) {
    const int W = o->c.warmup, S = o->c.nset;
    rs_oc_state_t *s = &o->s;
    for (int d = 0; d < S; d++) {
        rs_oc_stat_t b = {0, 0, 0};
        for (int i = 0; i < W; i++) rs_oc_welford(&b, s->buf[i][d]);
        double sd = sqrt(b.m2 / b.n);
        s->scale[d] = sd > 0 && isfinite(sd) ? sd : 1.0;
    }
    for (int i = 0; i < W; i++)
        for (int d = 0; d < S; d++) s->buf[i][d] /= s->scale[d];
    /* farthest-first: centre 0 is the first reading, centre k the reading
     * farthest from centres 0..k-1, at distance gap[k]; gap[kmax] is the
     * farthest reading from all of them.  Centres are kept up to the last
     * k whose gap[k] is more than RS_OPCOND_SEPARATION times gap[k + 1]:
     * well-separated settings drop from the distance between conditions
     * to their noise at once; noise alone never does. */
    int cidx[OC_C], kmax = o->c.max_conditions;
    double gap[OC_C + 1], bd[OC_W];
    cidx[0] = 0;
    for (int i = 0; i < W; i++) bd[i] = INFINITY;
    for (int k = 1; k <= kmax; k++) {
        int fi = 0;
        double far = -1;
        for (int i = 0; i < W; i++) {
            double x = 0;
            for (int d = 0; d < S; d++) {
                double y = s->buf[i][d] - s->buf[cidx[k - 1]][d];
                x += y * y;
            }
            if (x < bd[i]) bd[i] = x;
            if (bd[i] > far) { far = bd[i]; fi = i; }
        }
        gap[k] = sqrt(far);
        if (k < kmax) cidx[k] = fi;
    }
    int k = 1;
    for (int j = 1; j < kmax; j++)
        if (gap[j] > RS_OPCOND_SEPARATION * gap[j + 1] && gap[j] > OC_EPS)
            k = j + 1;
    for (int c = 0; c < k; c++)
        for (int d = 0; d < S; d++) s->cen[c][d].mean = s->buf[cidx[c]][d];
    s->k = k;
    /* each buffered reading to its nearest centre point; the centres
     * become their readings' means */
    int8_t asg[OC_W];
    for (int i = 0; i < W; i++) {
        double d2;
        asg[i] = (int8_t)rs_oc_nearest(o, s->buf[i], &d2);
    }
    memset(s->cen, 0, sizeof(s->cen));
    for (int i = 0; i < W; i++) rs_oc_centre(o, asg[i], s->buf[i]);
}

int rs_opcond_observe(rs_opcond_t *o, const double *settings,
                      const double *values, double *out) {
    rs_oc_state_t *s = &o->s;
    const size_t nv = (size_t)o->c.nfield * sizeof(double);
    memmove(o->raw, values, nv);
    o->cur = -1;
    for (int d = 0; d < o->c.nset; d++)
        if (!isfinite(settings[d])) {
            memmove(out, o->raw, nv);
            return -1;
        }
    if (s->seen < o->c.warmup) {
        /* warm-up: buffered, left raw */
        memcpy(s->buf[(int)s->seen], settings,
               (size_t)o->c.nset * sizeof(double));
        s->seen += 1;
        if (s->seen == o->c.warmup) rs_oc_found(o);
        memmove(out, o->raw, nv);
        return -1;
    }
    double p[OC_S], d2;
    for (int d = 0; d < o->c.nset; d++) p[d] = settings[d] / s->scale[d];
    int c = rs_oc_nearest(o, p, &d2);
    if ((int)s->k < o->c.max_conditions &&
        sqrt(d2) > RS_OPCOND_SEPARATION * rs_oc_within(o))
        c = (int)s->k++;   /* far from every known condition: a new one */
    rs_oc_normalise(o, c, o->raw, out);
    rs_oc_centre(o, c, p);
    s->seen += 1;
    o->cur = c;
    return c;
}

void rs_opcond_learn(rs_opcond_t *o, int j, double level) {
    if (o->cur < 0 || j < 0 || j >= o->c.nfield) return;
    double r = o->raw[j] - level;
    if (isfinite(r)) rs_oc_welford(&o->s.st[o->cur][j], r);
}

void rs_opcond_learn_field(rs_opcond_t *o, const char *name, double level) {
    for (int j = 0; j < o->c.nfield; j++)
        if (!strcmp(o->c.field[j], name)) {
            rs_opcond_learn(o, j, level);
            return;
        }
}

static double rs_oc_numeric(const rs_event_t *ev, const char *name) {
    for (int i = 0; i < ev->n_numeric && i < RS_MAX_NUMERIC; i++)
        if (!strcmp(ev->numeric[i].name, name)) return ev->numeric[i].value;
    return NAN;
}

int rs_opcond_observe_event(rs_opcond_t *o, const rs_event_t *ev) {
    double set[OC_S], v[OC_F];
    for (int d = 0; d < o->c.nset; d++)
        set[d] = rs_oc_numeric(ev, o->c.set[d]);
    for (int j = 0; j < o->c.nfield; j++)
        v[j] = rs_oc_numeric(ev, o->c.field[j]);
    return rs_opcond_observe(o, set, v, o->out);
}

double rs_opcond_value(const rs_opcond_t *o, const char *name, double raw) {
    for (int j = 0; j < o->c.nfield; j++)
        if (!strcmp(o->c.field[j], name)) return o->out[j];
    return raw;
}

int rs_opcond_count(const rs_opcond_t *o) { return (int)o->s.k; }

double rs_opcond_readings(const rs_opcond_t *o, int c, double *centre) {
    if (c < 0 || c >= (int)o->s.k) return 0;
    if (centre)
        for (int d = 0; d < o->c.nset; d++)
            centre[d] = o->s.cen[c][d].mean * o->s.scale[d];
    return o->s.cen[c][0].n;
}

size_t rs_opcond_state_size(const rs_opcond_t *o) {
    (void)o;
    return sizeof(rs_oc_state_t);
}

void rs_opcond_save(const rs_opcond_t *o, void *buf) {
    memcpy(buf, &o->s, sizeof(o->s));
}

static int rs_oc_stat_ok(const rs_oc_stat_t *b) {
    return b->n >= 0 && isfinite(b->n) && isfinite(b->mean) && b->m2 >= 0 &&
           isfinite(b->m2);
}

const char *rs_opcond_load(rs_opcond_t *o, const void *buf, size_t len) {
    if (len != sizeof(o->s)) {
        rs_opcond_reset(o);
        return "operating conditions: state of another size";
    }
    memcpy(&o->s, buf, sizeof(o->s));
    const rs_oc_state_t *s = &o->s;
    const char *bad = NULL;
    if (!(s->seen >= 0) || !isfinite(s->seen) || s->seen != floor(s->seen))
        bad = "operating conditions: bad reading count";
    else if (!(s->k >= 0) || s->k > o->c.max_conditions || s->k != floor(s->k) ||
             (s->seen < o->c.warmup) != (s->k == 0))
        bad = "operating conditions: bad condition count";
    for (int d = 0; d < OC_S && !bad; d++)
        if (!(s->scale[d] > 0) || !isfinite(s->scale[d]))
            bad = "operating conditions: bad setting scale";
    for (int i = 0; !bad && s->k == 0 && i < (int)s->seen; i++)
        for (int d = 0; d < o->c.nset; d++)
            if (!isfinite(s->buf[i][d]))
                bad = "operating conditions: bad warm-up reading";
    for (int c = 0; c < OC_C && !bad; c++) {
        for (int d = 0; d < OC_S && !bad; d++)
            if (!rs_oc_stat_ok(&s->cen[c][d]))
                bad = "operating conditions: bad centre";
        for (int j = 0; j < OC_F && !bad; j++)
            if (!rs_oc_stat_ok(&s->st[c][j]))
                bad = "operating conditions: bad statistics";
    }
    if (bad) rs_opcond_reset(o);
    for (int j = 0; j < OC_F; j++) o->out[j] = o->raw[j] = NAN;
    o->cur = -1;
    return bad;
}
