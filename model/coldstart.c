/* coldstart.c -- the record-weighted blend of coldstart.h. */
#include "model/coldstart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_CS_MAX 64
/* E[min(Z^2, 9)] for a standard normal Z: the clipped mean square of a
 * normal is this much of its variance (E[Z^2; |Z| < 3] + 9 P(|Z| > 3) =
 * 1 - 2 Q(3) - 6 phi(3) + 18 Q(3) = 0.99501). */
#define RS_CS_CLIP2 0.99501

struct rs_coldstart_s {
    int nref;
    int ref[RS_CS_MAX];      /* base_z features of the longest span */
    int nsensors;            /* distinct sensors among them (n0) */
    /* i15step: the fleet's healthy spread of each ref feature (a mean of
     * N readings is not spread like one reading): a Huber scale, squares
     * clipped at (3 s)^2, from a prior of one span of readings at 1 sd */
    double span;             /* N of the longest span (0: the reading's) */
    double nobs;             /* readings observed, prior included */
    double ss[RS_CS_MAX];    /* sum of min(z^2, (3 s)^2) */
    double scale[RS_CS_MAX]; /* s: sqrt(ss / nobs / RS_CS_CLIP2) */
    double c;                /* z / (z + c): z = 3 sd scores the threshold */
    double thr;              /* the alert threshold (u >= thr: in alarm) */
    /* i15noisy: base_noise features of the longest span (noise growth),
     * as a z: the log noise ratio over its sampling sd (noise_sd) */
    int nnoise;
    int noise[RS_CS_MAX];
    double noise_sd;
    uint64_t n;              /* failures learned */
    uint64_t caught;         /* ... that the model's own score caught >= H/3
                              * ahead (its prequential record)           */
    rs_alertpol_t *own;      /* the model's own policy (rs_coldstart_track),
                              * or NULL                                   */
    int64_t horizon;         /* maintenance.horizon of its conf (ms)      */
    /* i15step: per machine, a two-sided CUSUM of each cusum feature in
     * its learned spread (rs_coldstart_track allocates the table).
     * i14cusum: the cusum features are the base_z of the SHORTEST span
     * (a step moves a mean of N readings by 1/N of itself per reading:
     * the 12-reading mean's CUSUM reaches its interval 3-4x sooner than
     * the 48-reading one's), with their own spread, learned like ss */
    int ncu;
    int cref[RS_CS_MAX];     /* base_z features of the shortest span       */
    double cspan;            /* its N (== span: the ref features)          */
    double cnobs;            /* readings observed, its prior included      */
    double css[RS_CS_MAX];   /* sum of min(z^2, (3 s)^2) of cref           */
    double cscale[RS_CS_MAX];
    double k, h;             /* reference value, decision interval         */
    float *cu;               /* [mask + 1][2 ncu]: S+, S-                  */
    /* i16diff: per machine, a two-sided CUSUM of each sensor's reading
     * against its own shortest-span mean, d = base_z - base_z_lastNc
     * (slow parts -- load, daily cycle, drift -- cancel; a step shows
     * at once, ~(N_c - 1) / N_c of itself), in its learned spread, with
     * an interval from its learned lag-1 autocorrelation (rs_cs_dint) */
    int ndf;
    int dref[RS_CS_MAX];     /* the reading's own base_z (span 0)          */
    int dcu[RS_CS_MAX];      /* ... its shortest-span mean: index in cref  */
    double dnobs;            /* readings observed, its prior included      */
    double dss[RS_CS_MAX];   /* sum of min(d^2, (3 s)^2)                   */
    double dscale[RS_CS_MAX];
    double dsp[RS_CS_MAX];   /* sum of clip(d_t) clip(d_t-1), in sds       */
    double dsq[RS_CS_MAX];   /* sum of clip(d_t-1)^2, in sds               */
    double dh[RS_CS_MAX];    /* its decision intervals (rs_cs_dint)        */
    double dbudget;          /* its in-control run length per side, readings */
    float *du;               /* [mask + 1][3 ndf]: S+, S-, d_t-1 (in sds;
                              * NaN: none yet) -- rows as cu's            */
    uint64_t *cukey;         /* [mask + 1] machine; 0 = free               */
    uint32_t mask;
    uint64_t nmach, maxmach;
};

/* Siegmund's approximation of a one-sided CUSUM's in-control run length
 * in looks (N(0, 1) looks, reference k, interval hb): (e^{2kb} - 2kb -
 * 1) / 2k^2, b = hb + 1.166; hb solved for a run length arl by
 * bisection.  Per reading, the CUSUM of a mean of N readings moves N
 * times a look per span, so h = N hb (simulated on means of 48
 * independent readings, 16 machines x 12 000 readings: 4 alarms on one
 * side against the 5.4 designed; test_coldstart test_cusum). */
static double rs_cs_interval(double k, double arl) {
    double lo = 0, hi = 50;
    for (int it = 0; it < 100; it++) {
        double hb = (lo + hi) / 2, b = 2 * k * (hb + 1.166);
        double r = (exp(b) - b - 1) / (2 * k * k);
        if (r < arl) lo = hb; else hi = hb;
    }
    return (lo + hi) / 2;
}

static void rs_cs_dint(rs_coldstart_t *cs);

rs_coldstart_t *rs_coldstart_new(const char *const *names, int dim,
                                 double alert_threshold) {
    rs_coldstart_t *cs = rs_calloc(1, sizeof(*cs));
    double thr = alert_threshold > 0.01 ? alert_threshold : 0.01;
    if (thr > 1) thr = 1;
    cs->c = 3.0 * (1.0 - thr) / thr;
    cs->thr = thr;
    long best = -1, shortest = 0;
    for (int i = 0; i < dim; i++) {
        const char *z = names[i] ? strstr(names[i], "_base_z") : NULL;
        if (!z) continue;
        long span = !strncmp(z, "_base_z_last", 12) ? strtol(z + 12, NULL, 10) : 0;
        if (span > best) { best = span; cs->nref = 0; }
        if (span == best && cs->nref < RS_CS_MAX) cs->ref[cs->nref++] = i;
        /* the CUSUM's span: the shortest mean (span >= 2; the reading's
         * own base_z, span 0, is not a mean: successive readings share
         * the daily cycle and the load, no independent looks -- its
         * CUSUM at this rate put 6.9-8.3 % of healthy readings in alert,
         * docs/maintenance.md) */
        if (span >= 2 && (!shortest || span < shortest)) {
            shortest = span;
            cs->ncu = 0;
        }
        if (span >= 2 && span == shortest && cs->ncu < RS_CS_MAX)
            cs->cref[cs->ncu++] = i;
    }
    /* one base_z of the longest span per sensor in the presets; count
     * distinct name stems for any layout */
    for (int a = 0; a < cs->nref; a++) {
        const char *na = names[cs->ref[a]];
        size_t la = (size_t)(strstr(na, "_base_z") - na);
        int dup = 0;
        for (int b = 0; b < a && !dup; b++) {
            const char *nb = names[cs->ref[b]];
            size_t lb = (size_t)(strstr(nb, "_base_z") - nb);
            dup = la == lb && !strncmp(na, nb, la);
        }
        cs->nsensors += !dup;
    }
    /* i15noisy: the noise growth of the longest span `_base_noise_lastN`
     * (the sensors are those above: n0 unchanged).  base_noise is the log
     * noise ratio beyond 3 of its sampling sds, the window's part
     * 1.2845 / sqrt(d) for its d |differences| of a normal noise (N - 1
     * of N kept readings, N with the event: `_incl`): the asymptotic sd
     * of a log median, 1 / (2 f(m) m) = 1.1664 with m = 0.6745 the median
     * of |N(0, 1)| and f(m) = 2 phi(m) its density, x 1.1013 for the
     * dependence of successive differences (features/features_int.h).
     * Its z is 3 + base_noise / that sd. */
    long nbest = -1, nd = 1;
    for (int i = 0; cs->nsensors && i < dim; i++) {
        const char *z = names[i] ? strstr(names[i], "_base_noise_last") : NULL;
        if (!z) continue;
        char *end;
        long span = strtol(z + 16, &end, 10);
        if (span < 2) continue;
        if (span > nbest) { nbest = span; cs->nnoise = 0; nd = span - 1; }
        if (span == nbest && !strncmp(end, "_incl", 5)) nd = span;
        if (span == nbest && cs->nnoise < RS_CS_MAX) cs->noise[cs->nnoise++] = i;
    }
    if (cs->nnoise) cs->noise_sd = 1.2845 / sqrt((double)nd);
    cs->span = best > 0 ? (double)best : 0;
    /* the CUSUM looks for a mean 3 of its sds off (the 3-sd rule's shift):
     * k = 1.5; its false alarms as rare as the 3-sd rule's, 1 in 370
     * (two-sided: 740 each side), counted in spans: successive means
     * share all but one reading, so each span's worth of readings is one
     * independent look and its CUSUM moves N times as far */
    cs->k = 1.5;
    /* i14cusum: on the shortest span's means (N_c readings) at the same
     * false-alarm rate per reading: 740 looks of the longest span are
     * 740 N readings, 740 N / N_c looks of N_c readings, so h = N_c
     * hb(k, 740 N / N_c) (12 of 48: hb(2960) = 2.000, h = 24.0; on the
     * longest span itself, N_c = N, this is the design above) */
    cs->cspan = shortest >= 2 && shortest < best ? (double)shortest : cs->span;
    if (cs->cspan == cs->span) { /* one span: the CUSUM reads the ref */
        cs->ncu = cs->nref;
        memcpy(cs->cref, cs->ref, sizeof(cs->ref));
    }
    /* i16diff: the difference d = base_z - base_z_lastNc of each sensor
     * whose reading's own base_z is in the layout beside its CUSUM mean */
    for (int i = 0; cs->cspan >= 2 && i < cs->ncu; i++) {
        const char *nc = names[cs->cref[i]];
        size_t lc = (size_t)(strstr(nc, "_base_z") - nc);
        for (int j = 0; j < dim && cs->ndf < RS_CS_MAX; j++) {
            const char *nj = names[j];
            if (!nj || strlen(nj) != lc + 7 || strncmp(nj, nc, lc) ||
                strcmp(nj + lc, "_base_z"))
                continue;
            cs->dref[cs->ndf] = j;
            cs->dcu[cs->ndf++] = i;
            break;
        }
    }
    /* with the difference's CUSUM the per-reading false-alarm budget of
     * the design (740 N readings per alarm and side) is split in two:
     * 2 x 740 N readings each, 2 x 740 N / N_c looks of the mean's CUSUM
     * (12 of 48: h = 12 hb(5920) = 26.8) and 2 x 740 N readings of the
     * difference's (rs_cs_dint: hb(1.5, 71040) = 3.06 for independent
     * differences) */
    double split = cs->ndf ? 2.0 : 1.0;
    if (cs->span > 0)
        cs->h = cs->cspan *
                rs_cs_interval(cs->k, split * 740.0 * cs->span / cs->cspan);
    cs->dbudget = split * 740.0 * cs->span;
    cs->dnobs = cs->cspan;
    for (int i = 0; i < cs->ndf; i++) {
        /* prior: N_c readings at 1 sd, N_c lag pairs uncorrelated */
        cs->dss[i] = cs->cspan * RS_CS_CLIP2;
        cs->dscale[i] = 1.0;
        cs->dsq[i] = cs->cspan;
        cs->dsp[i] = 0;
    }
    rs_cs_dint(cs);
    cs->nobs = cs->span;
    cs->cnobs = cs->cspan;
    for (int i = 0; i < cs->nref; i++) {
        cs->ss[i] = cs->span * RS_CS_CLIP2;
        cs->scale[i] = 1.0;
    }
    for (int i = 0; i < cs->ncu; i++) {
        cs->css[i] = cs->cspan * RS_CS_CLIP2;
        cs->cscale[i] = 1.0;
    }
    return cs;
}

/* The spread of a ref feature from its clipped squares: between that of
 * a mean of N independent readings (1 / sqrt N: no mean of positively
 * correlated readings is tighter) and that of one reading (1: a mean is
 * never spread wider than its readings; today's 3-sd rule). */
static double rs_cs_scale(double span, double ss, double nobs) {
    double s = sqrt(ss / nobs / RS_CS_CLIP2), lo = 1.0 / sqrt(span);
    return s < lo ? lo : s > 1.0 ? 1.0 : s;
}

static float rs_cs_zmax(const rs_coldstart_t *cs, const float *x);

/* i16diff: the difference's decision interval from its dependence.
 *
 * Siegmund's run length (rs_cs_interval) is that of a CUSUM of
 * INDEPENDENT N(0, 1) looks.  The difference d_t of successive readings
 * is not independent: the generator's load is an AR(1) of 0.95 a
 * reading, and what of it is not cancelled by the N_c-reading mean
 * moves smoothly over a few readings, so d_t and d_t-1 share part of it.
 * Measured in a simulation of d (readings 30 % AR(1) 0.95, 70 %
 * independent): lag-1 correlation 0.095, and the independent design
 * h = hb(1.5, 71040) = 3.06 alarmed 2107 times in 2 x 10^7 readings
 * against 563 designed (3.7x); 60 % AR: rho 0.27, 22x.
 *
 * The derivation: between alarms the CUSUM S_t = max(0, S_t-1 + d_t - k)
 * is, in the diffusion (Brownian) approximation Siegmund's formula is
 * built on, a Brownian motion with drift -k per reading and variance v
 * per reading, v the LONG-RUN variance of the standardised d:
 * lim Var(d_1 + ... + d_L) / L.  Its run length to b is
 *     ARL = v / (2 k^2) (e^{2kb/v} - 2kb/v - 1).
 * With y = S / sqrt v that is a unit-variance motion with drift
 * -k / sqrt v to b / sqrt v, so ARL(k, b; v) = ARL(k / sqrt v, b / sqrt v;
 * 1), Siegmund's formula in scaled units, and the interval that keeps a
 * run length A readings per side is
 *     h = sqrt(v) hb(k / sqrt v, A).
 * For an AR(1) of lag-1 correlation rho, v = sum over lags of rho^|j| =
 * (1 + rho) / (1 - rho).  rho is learned over the fleet like the spreads
 * (a running ratio of sum d_t d_t-1 over sum d_t-1^2, both clipped at 3
 * sds, prior N_c pairs at rho = 0), per sensor.  It is held in [0,
 * 0.95]: a negative measured correlation would shorten h below the
 * independent design, which the budget was made for (iid d: rho =
 * -1/132, within noise of 0); 0.95 bounds a damaged sum.  In the same
 * simulation the interval gives 477 (rho 0.095), 674 (0.27) and 96
 * (0.62) alarms for 563 designed: the budget kept within ~20 % where d
 * is mostly independent, conservative where it is mostly the AR.
 * Per sensor: each its own rho and interval. */
static void rs_cs_dint(rs_coldstart_t *cs) {
    for (int i = 0; i < cs->ndf; i++) {
        double rho = cs->dsq[i] > 0 ? cs->dsp[i] / cs->dsq[i] : 0;
        if (!(rho > 0)) rho = 0;
        if (rho > 0.95) rho = 0.95;
        double v = (1 + rho) / (1 - rho), sv = sqrt(v);
        cs->dh[i] = sv * rs_cs_interval(cs->k / sv, cs->dbudget);
    }
}

/* The difference's spread: from its clipped squares, at least 0.1 (a
 * floor: readings that never move would divide by 0) and at most 1.5
 * (d = z - mean: sd(z) + sd(mean) <= 2 at the readings' own sds; past
 * 1.5 the spread is an outlier's). */
static double rs_cs_dscale(double ss, double nobs) {
    double s = sqrt(ss / nobs / RS_CS_CLIP2);
    return s < 0.1 ? 0.1 : s > 1.5 ? 1.5 : s;
}

/* the machine's difference row [3 ndf] beside its CUSUM row S */
static float *rs_cs_drow(const rs_coldstart_t *cs, const float *S) {
    size_t slot = (size_t)(S - cs->cu) / (size_t)(2 * cs->ncu);
    return cs->du + slot * 3 * (size_t)cs->ndf;
}

/* The machine's CUSUMs [2 ncu] (created if `add`; NULL: table full or
 * not there). */
static float *rs_cs_machine(rs_coldstart_t *cs, uint64_t key, int add) {
    if (!key) key = 1;
    uint32_t i = (uint32_t)(key * 0x9e3779b97f4a7c15ull >> 32) & cs->mask;
    for (uint32_t probe = 0; probe <= cs->mask;
         probe++, i = (i + 1) & cs->mask) {
        if (cs->cukey[i] == key) return cs->cu + (size_t)i * 2 * cs->ncu;
        if (!cs->cukey[i]) {
            if (!add || cs->nmach >= cs->maxmach) return NULL;
            cs->cukey[i] = key;
            cs->nmach++;
            return cs->cu + (size_t)i * 2 * cs->ncu;
        }
    }
    return NULL;
}

/* a new life: the difference's CUSUMs at 0, no previous reading */
static void rs_cs_dreset(rs_coldstart_t *cs, const float *S) {
    float *D = rs_cs_drow(cs, S);
    for (int i = 0; i < cs->ndf; i++) {
        D[3 * i] = D[3 * i + 1] = 0;
        D[3 * i + 2] = NAN;
    }
}

void rs_coldstart_destroy(rs_coldstart_t *cs) {
    if (!cs) return;
    rs_alertpol_destroy(cs->own);
    free(cs->cu);
    free(cs->du);
    free(cs->cukey);
    free(cs);
}

rs_err_t rs_coldstart_track(rs_coldstart_t *cs, const rs_maint_conf_t *mc,
                            char *errstr, size_t errstr_size) {
    rs_alertpol_t *own = rs_alertpol_new(mc, errstr, errstr_size);
    if (!own) return RS_ERR_CONFIG;
    rs_alertpol_destroy(cs->own);
    cs->own = own;
    cs->horizon = mc->horizon;
    if (cs->span > 0 && cs->ncu > 0 && !cs->cu) {
        uint64_t n = 1;
        while (n < (uint64_t)mc->max_machines * 2) n <<= 1;
        cs->mask = (uint32_t)(n - 1);
        cs->maxmach = (uint64_t)mc->max_machines;
        cs->cu = rs_calloc(n * (size_t)(2 * cs->ncu), sizeof(float));
        cs->cukey = rs_calloc(n, sizeof(uint64_t));
        if (cs->ndf) {
            cs->du = rs_calloc(n * (size_t)(3 * cs->ndf), sizeof(float));
            for (size_t j = 0; j < n; j++)
                for (int i = 0; i < cs->ndf; i++)
                    cs->du[j * 3 * (size_t)cs->ndf + 3 * (size_t)i + 2] = NAN;
        }
    }
    return RS_OK;
}

float rs_coldstart_observe(rs_coldstart_t *cs, uint64_t machine,
                           int64_t t_ms, const float *x, float model_score) {
    if (cs->own) rs_alertpol_step(cs->own, machine, t_ms, model_score);
    float s = model_score;
    float *S = cs->cu ? rs_cs_machine(cs, machine, 1) : NULL;
    if (S && cs->nsensors) {
        /* the CUSUMs, then the reference with them as a z: S = h scores
         * like a mean 3 of its sds off */
        double smax = 0;
        for (int i = 0; i < cs->ncu; i++) {
            double z = x[cs->cref[i]] / cs->cscale[i];
            if (!isfinite(z)) continue;
            double up = S[2 * i] + z - cs->k, dn = S[2 * i + 1] - z - cs->k;
            S[2 * i] = (float)(up > 0 ? up : 0);
            S[2 * i + 1] = (float)(dn > 0 ? dn : 0);
            if (S[2 * i] > smax) smax = S[2 * i];
            if (S[2 * i + 1] > smax) smax = S[2 * i + 1];
        }
        double rmax = smax / cs->h;
        float *D = cs->ndf ? rs_cs_drow(cs, S) : NULL;
        for (int i = 0; D && i < cs->ndf; i++) {
            double d = (x[cs->dref[i]] - x[cs->cref[cs->dcu[i]]]) / cs->dscale[i];
            if (!isfinite(d)) {
                D[3 * i + 2] = NAN;
                continue;
            }
            double up = D[3 * i] + d - cs->k, dn = D[3 * i + 1] - d - cs->k;
            D[3 * i] = (float)(up > 0 ? up : 0);
            D[3 * i + 1] = (float)(dn > 0 ? dn : 0);
            if (D[3 * i] / cs->dh[i] > rmax) rmax = D[3 * i] / cs->dh[i];
            if (D[3 * i + 1] / cs->dh[i] > rmax) rmax = D[3 * i + 1] / cs->dh[i];
        }
        float zc = (float)(3.0 * rmax);
        float zr = rs_cs_zmax(cs, x);
        float zm = zc > zr ? zc : zr;
        double w = rs_coldstart_weight(cs);
        /* the two disagree on this machine: the reference is in alarm
         * (u at or above the threshold: 3 sd, or its CUSUM past the
         * decision interval) while the model's own policy has no episode
         * open here.  The fleet's record w does not say which is right on
         * this machine; the machine's own evidence (the model missing
         * what the reference sees: 0 caught) is weighed equally with it:
         * w_m = (w + 0) / 2 (coldstart.h) */
        if (cs->own && zm / (zm + cs->c) >= cs->thr &&
            !rs_alertpol_is_open(cs->own, machine))
            w *= 0.5;
        double u = (1.0 - w) * zm / (zm + cs->c);
        s = (float)(1.0 - (1.0 - model_score) * (1.0 - u));
    } else {
        s = rs_coldstart_score(cs, x, model_score);
    }
    /* then learn the spread (scored on what was known before: prequential) */
    if (cs->span > 0) {
        cs->nobs += 1;
        for (int i = 0; i < cs->nref; i++) {
            double z = x[cs->ref[i]];
            if (!isfinite(z)) continue;
            double cl = 9.0 * cs->scale[i] * cs->scale[i];
            cs->ss[i] += z * z < cl ? z * z : cl;
            cs->scale[i] = rs_cs_scale(cs->span, cs->ss[i], cs->nobs);
        }
        cs->cnobs += 1;
        for (int i = 0; i < cs->ncu; i++) {
            double z = x[cs->cref[i]];
            if (!isfinite(z)) continue;
            double cl = 9.0 * cs->cscale[i] * cs->cscale[i];
            cs->css[i] += z * z < cl ? z * z : cl;
            cs->cscale[i] = rs_cs_scale(cs->cspan, cs->css[i], cs->cnobs);
        }
        /* i16diff: the difference's spread and lag-1 correlation (over
         * the fleet; the lag from the machine's own previous reading) */
        float *D = S && cs->ndf ? rs_cs_drow(cs, S) : NULL;
        if (cs->ndf) cs->dnobs += 1;
        for (int i = 0; i < cs->ndf; i++) {
            double d = x[cs->dref[i]] - x[cs->cref[cs->dcu[i]]];
            if (!isfinite(d)) continue;
            double cl = 9.0 * cs->dscale[i] * cs->dscale[i];
            double e = d / cs->dscale[i]; /* in the spread it was read in */
            cs->dss[i] += d * d < cl ? d * d : cl;
            cs->dscale[i] = rs_cs_dscale(cs->dss[i], cs->dnobs);
            if (!D) continue;
            double p = D[3 * i + 2];
            e = e > 3 ? 3 : e < -3 ? -3 : e;
            if (isfinite(p)) {
                cs->dsp[i] += e * p;
                cs->dsq[i] += p * p;
            }
            D[3 * i + 2] = (float)e;
        }
        /* the interval follows rho; a bisection a reading is 100 exp():
         * every 256 readings is enough for a running mean of 10^5+ */
        if (cs->ndf && cs->dnobs <= 9007199254740992.0 &&
            ((uint64_t)cs->dnobs & 255) == 0)
            rs_cs_dint(cs);
    }
    return s;
}

void rs_coldstart_machine_failure(rs_coldstart_t *cs, uint64_t machine,
                                  int64_t t_fail_ms) {
    int64_t lead = -1;
    float *S = cs->cu ? rs_cs_machine(cs, machine, 0) : NULL;
    if (S) memset(S, 0, 2 * (size_t)cs->ncu * sizeof(float)); /* new life */
    if (S && cs->ndf) rs_cs_dreset(cs, S);
    if (cs->own) { /* the model's record: did its own score catch it? */
        lead = rs_alertpol_lead(cs->own, machine, t_fail_ms);
        rs_alertpol_failure(cs->own, machine, t_fail_ms, NULL);
    }
    rs_coldstart_failure(cs, lead, cs->horizon);
}

void rs_coldstart_repair(rs_coldstart_t *cs, uint64_t machine) {
    if (cs->own) rs_alertpol_reset(cs->own, machine);
    float *S = cs->cu ? rs_cs_machine(cs, machine, 0) : NULL;
    if (S) memset(S, 0, 2 * (size_t)cs->ncu * sizeof(float));
    if (S && cs->ndf) rs_cs_dreset(cs, S);
}

int rs_coldstart_sensors(const rs_coldstart_t *cs) { return cs->nsensors; }

float rs_coldstart_change(rs_coldstart_t *cs, uint64_t machine) {
    float *S = cs->cu ? rs_cs_machine(cs, machine, 0) : NULL;
    double smax = 0;
    for (int i = 0; S && i < 2 * cs->ncu; i++)
        if (S[i] > smax) smax = S[i];
    double r = smax / cs->h;
    const float *D = S && cs->ndf ? rs_cs_drow(cs, S) : NULL;
    for (int i = 0; D && i < cs->ndf; i++) {
        if (D[3 * i] / cs->dh[i] > r) r = D[3 * i] / cs->dh[i];
        if (D[3 * i + 1] / cs->dh[i] > r) r = D[3 * i + 1] / cs->dh[i];
    }
    return S ? (float)r : 0;
}

float rs_coldstart_step(rs_coldstart_t *cs, uint64_t machine) {
    float *S = cs->cu && cs->ndf ? rs_cs_machine(cs, machine, 0) : NULL;
    const float *D = S ? rs_cs_drow(cs, S) : NULL;
    double r = 0;
    for (int i = 0; D && i < cs->ndf; i++) {
        if (D[3 * i] / cs->dh[i] > r) r = D[3 * i] / cs->dh[i];
        if (D[3 * i + 1] / cs->dh[i] > r) r = D[3 * i + 1] / cs->dh[i];
    }
    return (float)r;
}

float rs_coldstart_reference(const rs_coldstart_t *cs, const float *x) {
    float zmax = rs_cs_zmax(cs, x);
    return (float)(zmax / (zmax + cs->c));
}

static float rs_cs_zmax(const rs_coldstart_t *cs, const float *x) {
    float zmax = 0;
    for (int i = 0; i < cs->nref; i++) {
        float z = fabsf(x[cs->ref[i]]) / (float)cs->scale[i];
        if (isfinite(z) && z > zmax) zmax = z;
    }
    for (int i = 0; i < cs->nnoise; i++) { /* i15noisy: beyond 3 sds only */
        float e = x[cs->noise[i]];
        float z = e > 0 ? (float)(3.0 + e / cs->noise_sd) : 0;
        if (isfinite(z) && z > zmax) zmax = z;
    }
    return zmax;
}

void rs_coldstart_failure(rs_coldstart_t *cs, int64_t lead_ms,
                          int64_t horizon_ms) {
    cs->n++;
    /* the bar's early alert: at least a third of the horizon ahead */
    if (lead_ms >= 0 && (double)lead_ms * 3.0 >= (double)horizon_ms) cs->caught++;
}
uint64_t rs_coldstart_failures(const rs_coldstart_t *cs) { return cs->n; }
uint64_t rs_coldstart_caught(const rs_coldstart_t *cs) { return cs->caught; }
void rs_coldstart_set_failures(rs_coldstart_t *cs, uint64_t n, uint64_t c) {
    cs->n = n;
    cs->caught = c < n ? c : n;
}

double rs_coldstart_weight(const rs_coldstart_t *cs) {
    if (!cs->nsensors) return 1.0;
    /* the posterior mean of the model's early-catch rate, a prior of n0
     * failures not caught (coldstart.h) */
    return (double)cs->caught / ((double)cs->n + (double)cs->nsensors);
}

float rs_coldstart_score(const rs_coldstart_t *cs, const float *x,
                         float model_score) {
    if (!cs->nsensors) return model_score;
    double w = rs_coldstart_weight(cs);
    double u = (1.0 - w) * rs_coldstart_reference(cs, x);
    return (float)(1.0 - (1.0 - model_score) * (1.0 - u));
}

#define RS_CS_MAGIC 0x53435352u /* "RSCS" */

/* The spread block: u32 nref, u32 0, f64 readings observed (prior
 * included), f64 sum of clipped squares [nref].  Version 4 has two: the
 * ref features' (the 3-sd rule's), then the CUSUM features' with the
 * CUSUM's span N_c in place of the 0. */
static size_t rs_cs_spread_size(int nref) { return 16 + 8 * (size_t)nref; }

/* The CUSUM block: u64 m, then m x {u64 machine, f32 S[2 ncu]} (version
 * 5: and f32 S+ S- d_t-1 [ndf] of the difference's CUSUMs). */
static size_t rs_cs_cusum_entry(int ncu, int ndf) {
    return 8 + 8 * (size_t)ncu + 12 * (size_t)ndf;
}
/* i16diff, version 5: the difference's block after the two spread
 * blocks: u32 ndf, u32 N_c, f64 readings observed (prior included), f64
 * clipped squares [ndf], f64 lag products [ndf], f64 lag squares [ndf]. */
static size_t rs_cs_diff_size(int ndf) { return 16 + 24 * (size_t)ndf; }

size_t rs_coldstart_state_size(const rs_coldstart_t *cs) {
    return RS_COLDSTART_STATE + rs_cs_spread_size(cs->nref) +
           rs_cs_spread_size(cs->ncu) + rs_cs_diff_size(cs->ndf) +
           (cs->own ? rs_alertpol_state_size(cs->own) : 8) + 8 +
           (cs->cu ? cs->nmach * rs_cs_cusum_entry(cs->ncu, cs->ndf) : 0);
}

void rs_coldstart_save(const rs_coldstart_t *cs, void *buf) {
    uint32_t hd[2] = {RS_CS_MAGIC, 5};
    char *o = buf;
    memcpy(o, hd, sizeof(hd));
    memcpy(o + 8, &cs->n, sizeof(cs->n));
    memcpy(o + 16, &cs->caught, sizeof(cs->caught));
    o += RS_COLDSTART_STATE;
    uint32_t sh[2] = {(uint32_t)cs->nref, 0};
    memcpy(o, sh, sizeof(sh));
    memcpy(o + 8, &cs->nobs, sizeof(cs->nobs));
    memcpy(o + 16, cs->ss, 8 * (size_t)cs->nref);
    o += rs_cs_spread_size(cs->nref);
    uint32_t ch[2] = {(uint32_t)cs->ncu, (uint32_t)cs->cspan};
    memcpy(o, ch, sizeof(ch));
    memcpy(o + 8, &cs->cnobs, sizeof(cs->cnobs));
    memcpy(o + 16, cs->css, 8 * (size_t)cs->ncu);
    o += rs_cs_spread_size(cs->ncu);
    uint32_t dh[2] = {(uint32_t)cs->ndf, (uint32_t)cs->cspan};
    memcpy(o, dh, sizeof(dh));
    memcpy(o + 8, &cs->dnobs, sizeof(cs->dnobs));
    memcpy(o + 16, cs->dss, 8 * (size_t)cs->ndf);
    memcpy(o + 16 + 8 * (size_t)cs->ndf, cs->dsp, 8 * (size_t)cs->ndf);
    memcpy(o + 16 + 16 * (size_t)cs->ndf, cs->dsq, 8 * (size_t)cs->ndf);
    o += rs_cs_diff_size(cs->ndf);
    if (cs->own) {
        rs_alertpol_save(cs->own, o);
        o += rs_alertpol_state_size(cs->own);
    } else {
        uint64_t none = 0;
        memcpy(o, &none, sizeof(none));
        o += 8;
    }
    uint64_t m = 0;
    char *mp = o;
    o += 8;
    for (uint32_t i = 0; cs->cu && i <= cs->mask; i++) {
        if (!cs->cukey[i]) continue;
        memcpy(o, &cs->cukey[i], 8);
        memcpy(o + 8, cs->cu + (size_t)i * 2 * cs->ncu, 8 * (size_t)cs->ncu);
        if (cs->ndf)
            memcpy(o + 8 + 8 * (size_t)cs->ncu,
                   cs->du + (size_t)i * 3 * cs->ndf, 12 * (size_t)cs->ndf);
        o += rs_cs_cusum_entry(cs->ncu, cs->ndf);
        m++;
    }
    memcpy(mp, &m, 8);
}

/* A spread block at `in` of at most `len` bytes: its count, tag (0, or
 * the CUSUM's span), readings and sums; 0 when it does not fit or a
 * number is damaged (-1). */
static int rs_cs_spread_read(const char *in, size_t len, uint32_t sh[2],
                             double *nobs, double *ss) {
    if (len < 16) return 0;
    memcpy(sh, in, 8);
    if (sh[0] > RS_CS_MAX || len < rs_cs_spread_size((int)sh[0])) return 0;
    memcpy(nobs, in + 8, sizeof(*nobs));
    memcpy(ss, in + 16, 8 * (size_t)sh[0]);
    int ok = isfinite(*nobs) && *nobs >= 0;
    for (uint32_t i = 0; ok && i < sh[0]; i++)
        ok = isfinite(ss[i]) && ss[i] >= 0;
    return ok ? 1 : -1;
}

/* The difference's block (version 5) at `in`: as rs_cs_spread_read
 * (the lag products may be negative). */
static int rs_cs_diff_read(const char *in, size_t len, uint32_t dh[2],
                           double *dnobs, double *dss, double *dsp,
                           double *dsq) {
    if (len < 16) return 0;
    memcpy(dh, in, 8);
    if (dh[0] > RS_CS_MAX || len < rs_cs_diff_size((int)dh[0])) return 0;
    size_t n = dh[0];
    memcpy(dnobs, in + 8, sizeof(*dnobs));
    memcpy(dss, in + 16, 8 * n);
    memcpy(dsp, in + 16 + 8 * n, 8 * n);
    memcpy(dsq, in + 16 + 16 * n, 8 * n);
    /* a count of readings: at most 2^53 (a double counts every integer
     * up to there; the refresh below takes it as an integer) */
    int ok = isfinite(*dnobs) && *dnobs >= 0 && *dnobs <= 9007199254740992.0;
    for (size_t i = 0; ok && i < n; i++)
        ok = isfinite(dss[i]) && dss[i] >= 0 && isfinite(dsp[i]) &&
             isfinite(dsq[i]) && dsq[i] >= 0;
    return ok ? 1 : -1;
}

/* a loaded difference row: S+ S- finite and >= 0 (else 0), d_t-1 in
 * [-3, 3] (else none) */
static void rs_cs_dclean(float *D, int ndf) {
    for (int i = 0; i < ndf; i++) {
        if (!(D[3 * i] >= 0) || !isfinite(D[3 * i])) D[3 * i] = 0;
        if (!(D[3 * i + 1] >= 0) || !isfinite(D[3 * i + 1])) D[3 * i + 1] = 0;
        if (!(D[3 * i + 2] >= -3 && D[3 * i + 2] <= 3)) D[3 * i + 2] = NAN;
    }
}

rs_err_t rs_coldstart_load(rs_coldstart_t *cs, const void *buf, size_t len,
                           char *errstr, size_t errstr_size) {
    uint32_t hd[2] = {0, 0};
    uint64_t n = 0, c = 0;
    const char *in = buf;
    if (buf && len >= RS_COLDSTART_STATE_V1) memcpy(hd, buf, sizeof(hd));
    int v1 = hd[1] == 1 && len == RS_COLDSTART_STATE_V1;
    int v2 = hd[1] == 2 && len == RS_COLDSTART_STATE;
    int v34 = (hd[1] == 3 || hd[1] == 4 || hd[1] == 5) &&
              len >= RS_COLDSTART_STATE + 16 + 8;
    uint32_t sh[2] = {0, 0}, ch[2] = {0, 0}, dh[2] = {0, 0};
    double nobs = 0, ss[RS_CS_MAX], cnobs = 0, css[RS_CS_MAX];
    double dnobs = 0, dss[RS_CS_MAX], dsp[RS_CS_MAX], dsq[RS_CS_MAX];
    size_t so = RS_COLDSTART_STATE, sl = 0;
    int damaged = 0;
    if (v34) {
        /* version 3 (before i14cusum): one spread block, its CUSUMs read
         * the ref features; version 4: a second block, the CUSUMs' */
        int r = rs_cs_spread_read(in + so, len - so, sh, &nobs, ss);
        v34 = r != 0 && sh[1] == 0;
        damaged = r < 0;
        if (v34) sl = rs_cs_spread_size((int)sh[0]);
        if (v34 && hd[1] >= 4) {
            r = rs_cs_spread_read(in + so + sl, len - so - sl, ch, &cnobs, css);
            v34 = r != 0;
            damaged |= r < 0;
            if (v34) sl += rs_cs_spread_size((int)ch[0]);
        }
        if (v34 && hd[1] == 5) { /* i16diff: the difference's block */
            r = rs_cs_diff_read(in + so + sl, len - so - sl, dh, &dnobs, dss,
                                dsp, dsq);
            v34 = r != 0;
            damaged |= r < 0;
            if (v34) sl += rs_cs_diff_size((int)dh[0]);
        }
        v34 = v34 && len >= so + sl + 8;
    }
    if (hd[0] == RS_CS_MAGIC && (v1 || v2 || v34)) {
        memcpy(&n, in + sizeof(hd), sizeof(n));
        /* version 1 knew n only: c = n keeps the weight n / (n + n0) it
         * was saved with */
        c = n;
        if (v2 || v34) memcpy(&c, in + sizeof(hd) + sizeof(n), sizeof(c));
    }
    /* counts beyond 2^53 (no fleet reports that many failures) are
     * damage: n would wrap at the next failure and leave c > n, a weight
     * above 1 (fuzz_coldstart found it) */
    if (hd[0] != RS_CS_MAGIC || !(v1 || v2 || v34) || c > n ||
        n > (UINT64_C(1) << 53))
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "cold-start state: %zu bytes, not a version-5, 4 or "
                       "3 state (%d bytes, the spreads and the own "
                       "policy's), version 2 of %d or version 1 of %d, with "
                       "caught <= failures <= 2^53", len, RS_COLDSTART_STATE,
                       RS_COLDSTART_STATE, RS_COLDSTART_STATE_V1);
    if (damaged)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "cold-start state: a spread is not a finite "
                       "non-negative number");
    if (v34) {
        /* the CUSUMs' layout in the state: version 3's read the ref
         * features (their span, sh[0] of them) */
        uint32_t sncu = hd[1] >= 4 ? ch[0] : sh[0];
        double sspan = hd[1] >= 4 ? (double)ch[1] : cs->span;
        uint32_t sndf = hd[1] == 5 ? dh[0] : 0; /* before: none */
        const char *pol = in + so + sl;
        size_t rest = len - so - sl, plen = 0, clen = 0;
        uint64_t m = 0, mc = 0;
        memcpy(&m, pol, sizeof(m));
        char e2[200];
        rs_err_t err = RS_OK;
        /* the policy (8 + 48 m), then the CUSUMs (8 + entry x mc) */
        size_t ce = rs_cs_cusum_entry((int)sncu, (int)sndf);
        if (m > (rest - 8) / 48 || rest - 8 - 48 * m < 8) {
            err = RS_ERR_CORRUPT;
        } else {
            plen = 8 + 48 * m;
            memcpy(&mc, pol + plen, sizeof(mc));
            clen = rest - plen - 8;
            if (mc > clen / ce || clen != mc * ce) err = RS_ERR_CORRUPT;
        }
        if (err != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "cold-start state: %zu bytes after the spreads, "
                           "not the own policy (8 + 48 x machines) and "
                           "CUSUMs (8 + %zu x machines)", rest, ce);
        if (cs->own &&
            (err = rs_alertpol_load(cs->own, pol, plen, e2, sizeof(e2))) != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "cold-start state: the model's own policy: %s", e2);
        /* the CUSUMs of this layout (another number of sensors, or of
         * another span: a version-3 state's read the longest span, where
         * these read the shortest -- they start again at 0); machines
         * beyond the table are dropped */
        int same = (int)sncu == cs->ncu && sspan == cs->cspan;
        /* the difference's CUSUMs: of this layout, and of a version-5
         * state (before: they start at 0) */
        int dsame = same && hd[1] == 5 && (int)sndf == cs->ndf &&
                    (double)dh[1] == cs->cspan && cs->ndf > 0;
        if (cs->cu && same) {
            memset(cs->cukey, 0, ((size_t)cs->mask + 1) * sizeof(*cs->cukey));
            memset(cs->cu, 0, ((size_t)cs->mask + 1) * 2 * cs->ncu * sizeof(float));
            for (uint32_t j = 0; cs->ndf && j <= cs->mask; j++)
                rs_cs_dreset(cs, cs->cu + (size_t)j * 2 * cs->ncu);
            cs->nmach = 0;
            for (uint64_t j = 0; j < mc; j++) {
                const char *e = pol + plen + 8 + j * ce;
                uint64_t key;
                memcpy(&key, e, 8);
                float *S = rs_cs_machine(cs, key, 1);
                if (!S) break;
                memcpy(S, e + 8, 8 * (size_t)cs->ncu);
                for (int i = 0; i < 2 * cs->ncu; i++)
                    if (!(S[i] >= 0) || !isfinite(S[i])) S[i] = 0;
                if (dsame) {
                    float *D = rs_cs_drow(cs, S);
                    memcpy(D, e + 8 + 8 * (size_t)cs->ncu, 12 * (size_t)cs->ndf);
                    rs_cs_dclean(D, cs->ndf);
                }
            }
        }
        /* the spreads of another layout (another number of sensors) are
         * not these: they start again from the prior */
        if ((int)sh[0] == cs->nref && cs->span > 0 && nobs > 0) {
            cs->nobs = nobs;
            for (int i = 0; i < cs->nref; i++) {
                cs->ss[i] = ss[i];
                cs->scale[i] = rs_cs_scale(cs->span, ss[i], nobs);
            }
        }
        if (hd[1] == 3 && same) { /* version 3: the CUSUM's are the ref's */
            cnobs = nobs;
            memcpy(css, ss, 8 * (size_t)sh[0]);
        }
        if (same && cs->cspan > 0 && cnobs > 0) {
            cs->cnobs = cnobs;
            for (int i = 0; i < cs->ncu; i++) {
                cs->css[i] = css[i];
                cs->cscale[i] = rs_cs_scale(cs->cspan, css[i], cnobs);
            }
        }
        if (dsame && dnobs > 0) {
            cs->dnobs = dnobs;
            for (int i = 0; i < cs->ndf; i++) {
                cs->dss[i] = dss[i];
                cs->dscale[i] = rs_cs_dscale(dss[i], dnobs);
                cs->dsp[i] = dsp[i];
                cs->dsq[i] = dsq[i];
            }
            rs_cs_dint(cs);
        }
    }
    cs->n = n;
    cs->caught = c;
    return RS_OK;
}

/* ------------------------------------------------- one machine's state
 * (coldstart.h rs_coldstart_machine_*): u32 ncu | N << 16, u32 flags (1:
 * the own policy's entry, 2: the CUSUMs of the ref features -- the
 * longest span, as before i14cusum, 4: the CUSUMs of the shortest span),
 * [48 bytes of the own entry], [f32 S+ S- per CUSUM feature].  N is the
 * span the CUSUMs read (N_c, <= 4096); 0 in a record of an instance
 * before i16span, whose CUSUMs' span is not known. */

#define RS_CS_M_OWN 1u
#define RS_CS_M_CUSUM 2u
#define RS_CS_M_CUSUM_SHORT 4u
#define RS_CS_M_CUSUMS (RS_CS_M_CUSUM | RS_CS_M_CUSUM_SHORT)
/* i16diff: the difference's CUSUMs follow the CUSUMs (with 2 or 4):
 * u32 ndf, u32 0, f32 S+ S- d_t-1 per sensor */
#define RS_CS_M_DIFF 8u
/* the header's first word: the CUSUM features (low 16 bits) and their
 * span (high 16 bits) */
#define RS_CS_M_NCU(w) ((w) & 0xffffu)
#define RS_CS_M_SPAN(w) ((w) >> 16)

/* the flag of this layout's CUSUMs */
static uint32_t rs_cs_cusum_flag(const rs_coldstart_t *cs) {
    return cs->cspan == cs->span ? RS_CS_M_CUSUM : RS_CS_M_CUSUM_SHORT;
}

size_t rs_coldstart_machine_save(const rs_coldstart_t *cs, uint64_t machine,
                                 void *buf, size_t cap) {
    char own[RS_ALERTPOL_ENTRY];
    uint32_t flags = 0;
    if (cs->own && rs_alertpol_entry_save(cs->own, machine, own))
        flags |= RS_CS_M_OWN;
    const float *S = cs->cu ? rs_cs_machine((rs_coldstart_t *)cs, machine, 0)
                            : NULL;
    if (S) flags |= rs_cs_cusum_flag(cs);
    if (S && cs->ndf) flags |= RS_CS_M_DIFF;
    if (!flags) return 0;
    size_t need = 8 + (flags & RS_CS_M_OWN ? RS_ALERTPOL_ENTRY : 0) +
                  (S ? 8 * (size_t)cs->ncu : 0) +
                  (flags & RS_CS_M_DIFF ? 8 + 12 * (size_t)cs->ndf : 0);
    if (cap < need) return need;
    char *o = buf;
    /* tagged with the CUSUMs' span: a record of 12-reading CUSUMs is not
     * read as another span's (features.sensor_spans differs) */
    uint32_t hd[2] = {(uint32_t)cs->ncu | (uint32_t)cs->cspan << 16, flags};
    memcpy(o, hd, sizeof(hd));
    o += 8;
    if (flags & RS_CS_M_OWN) {
        memcpy(o, own, RS_ALERTPOL_ENTRY);
        o += RS_ALERTPOL_ENTRY;
    }
    if (S) memcpy(o, S, 8 * (size_t)cs->ncu);
    if (flags & RS_CS_M_DIFF) {
        uint32_t dh[2] = {(uint32_t)cs->ndf, 0};
        o += 8 * (size_t)cs->ncu;
        memcpy(o, dh, sizeof(dh));
        memcpy(o + 8, rs_cs_drow(cs, S), 12 * (size_t)cs->ndf);
    }
    return need;
}

rs_err_t rs_coldstart_machine_check(uint64_t machine, const void *buf,
                                    size_t len, char *errstr,
                                    size_t errstr_size) {
    uint32_t hd[2] = {0, 0}, dh[2] = {0, 0};
    if (buf && len >= 8) memcpy(hd, buf, sizeof(hd));
    uint32_t ncu = RS_CS_M_NCU(hd[0]);
    size_t need = 8 + (hd[1] & RS_CS_M_OWN ? RS_ALERTPOL_ENTRY : 0) +
                  (hd[1] & RS_CS_M_CUSUMS ? 8 * (size_t)ncu : 0);
    /* the difference's part: its count after the CUSUMs */
    if ((hd[1] & RS_CS_M_DIFF) && ncu <= RS_CS_MAX && len >= need + 8) {
        memcpy(dh, (const char *)buf + need, sizeof(dh));
        if (dh[0] <= RS_CS_MAX) need += 8 + 12 * (size_t)dh[0];
    }
    if (!buf || len < 8 || hd[1] > 15 || !hd[1] ||
        (hd[1] & RS_CS_M_CUSUMS) == RS_CS_M_CUSUMS || ncu > RS_CS_MAX ||
        RS_CS_M_SPAN(hd[0]) > 4096 ||
        ((hd[1] & RS_CS_M_DIFF) &&
         (!(hd[1] & RS_CS_M_CUSUMS) || !dh[0] || dh[0] > RS_CS_MAX || dh[1])) ||
        len != need)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "cold-start machine state: %zu bytes, flags %u, %u "
                       "CUSUM features of span %u, %u differences: not a "
                       "machine's state", len, hd[1], ncu,
                       RS_CS_M_SPAN(hd[0]), dh[0]);
    const char *in = (const char *)buf + 8;
    if (hd[1] & RS_CS_M_OWN) {
        char e2[200];
        uint64_t key;
        memcpy(&key, in, 8);
        if (rs_alertpol_entry_check(in, e2, sizeof(e2)) != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "cold-start machine state: the model's own "
                           "policy: %s", e2);
        if (key != (machine ? machine : 1))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "cold-start machine state: the own policy's "
                           "entry is of machine %llx, not %llx",
                           (unsigned long long)key,
                           (unsigned long long)machine);
        in += RS_ALERTPOL_ENTRY;
    }
    for (uint32_t i = 0; (hd[1] & RS_CS_M_CUSUMS) && i < 2 * ncu; i++) {
        float v;
        memcpy(&v, in + 4 * (size_t)i, 4);
        if (!(v >= 0) || !isfinite(v))
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "cold-start machine state: a CUSUM is not a "
                           "finite non-negative number");
    }
    if (hd[1] & RS_CS_M_DIFF) {
        in += 8 * (size_t)ncu + 8;
        for (uint32_t i = 0; i < 3 * dh[0]; i++) {
            float v;
            memcpy(&v, in + 4 * (size_t)i, 4);
            int ok = i % 3 == 2 ? (isnan(v) || (v >= -3 && v <= 3))
                                : (v >= 0 && isfinite(v));
            if (!ok)
                return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                               "cold-start machine state: a difference's "
                               "CUSUM is not a finite non-negative number "
                               "or its last reading not within 3 sds");
        }
    }
    return RS_OK;
}

/* Remove the machine's CUSUMs (linear probing: the rows after it shift
 * back, no tombstones). */
static void rs_cs_forget_cusum(rs_coldstart_t *cs, uint64_t machine) {
    float *S = cs->cu ? rs_cs_machine(cs, machine, 0) : NULL;
    if (!S) return;
    size_t row = 2 * (size_t)cs->ncu;
    uint32_t i = (uint32_t)((size_t)(S - cs->cu) / (row ? row : 1)), j = i;
    if (cs->ndf) rs_cs_dreset(cs, S);
    cs->cukey[i] = 0;
    memset(S, 0, row * sizeof(float));
    cs->nmach--;
    for (;;) {
        j = (j + 1) & cs->mask;
        if (!cs->cukey[j]) break;
        uint32_t h = (uint32_t)(cs->cukey[j] * 0x9e3779b97f4a7c15ull >> 32) &
                     cs->mask;
        int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays) continue;
        cs->cukey[i] = cs->cukey[j];
        memcpy(cs->cu + i * row, cs->cu + j * row, row * sizeof(float));
        if (cs->ndf) {
            size_t dr = 3 * (size_t)cs->ndf;
            memcpy(cs->du + i * dr, cs->du + j * dr, dr * sizeof(float));
        }
        cs->cukey[j] = 0;
        if (cs->ndf) rs_cs_dreset(cs, cs->cu + j * row);
        memset(cs->cu + j * row, 0, row * sizeof(float));
        i = j;
    }
}

void rs_coldstart_machine_forget(rs_coldstart_t *cs, uint64_t machine) {
    if (cs->own) rs_alertpol_forget(cs->own, machine);
    rs_cs_forget_cusum(cs, machine);
}

rs_err_t rs_coldstart_machine_load(rs_coldstart_t *cs, uint64_t machine,
                                   const void *buf, size_t len, char *errstr,
                                   size_t errstr_size) {
    rs_err_t err = rs_coldstart_machine_check(machine, buf, len, errstr,
                                              errstr_size);
    if (err) return err;
    uint32_t hd[2];
    memcpy(hd, buf, sizeof(hd));
    rs_coldstart_machine_forget(cs, machine);
    const char *in = (const char *)buf + 8;
    if (hd[1] & RS_CS_M_OWN) {
        if (cs->own &&
            (err = rs_alertpol_entry_load(cs->own, in, errstr, errstr_size)))
            return err;
        in += RS_ALERTPOL_ENTRY;
    }
    /* CUSUMs of another layout (another number of sensors, or another
     * span: those of an instance before i14cusum read the longest, those
     * of another features.sensor_spans another shortest, and an untagged
     * record's span is not known) start afresh: S of 12-reading means
     * read as 6-reading ones would be on another scale and interval */
    if ((hd[1] & rs_cs_cusum_flag(cs)) && cs->cu &&
        (int)RS_CS_M_NCU(hd[0]) == cs->ncu &&
        (double)RS_CS_M_SPAN(hd[0]) == cs->cspan) {
        float *S = rs_cs_machine(cs, machine, 1);
        if (!S)
            return rs_errf(errstr, errstr_size, RS_ERR_NOMEM,
                           "cold-start: no room for machine %llx's CUSUMs",
                           (unsigned long long)machine);
        memcpy(S, in, 8 * (size_t)cs->ncu);
        /* i16diff: the difference's CUSUMs of this layout (a record
         * without them, flag 8 clear: an instance before i16diff, at 0) */
        uint32_t dh[2] = {0, 0};
        if (hd[1] & RS_CS_M_DIFF) memcpy(dh, in + 8 * (size_t)cs->ncu, 8);
        if ((hd[1] & RS_CS_M_DIFF) && (int)dh[0] == cs->ndf) {
            float *D = rs_cs_drow(cs, S);
            memcpy(D, in + 8 * (size_t)cs->ncu + 8, 12 * (size_t)cs->ndf);
            rs_cs_dclean(D, cs->ndf);
        }
    }
    return RS_OK;
}
