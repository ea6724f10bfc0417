/* coldstart.c -- the record-weighted blend of coldstart.h. */
#include "model/coldstart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RS_CS_MAX 64

struct rs_coldstart_s {
    int nref;
    int ref[RS_CS_MAX];      /* base_z features of the longest span */
    int nsensors;            /* distinct sensors among them (n0) */
    double c;                /* z / (z + c): z = 3 sd scores the threshold */
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
};

rs_coldstart_t *rs_coldstart_new(const char *const *names, int dim,
                                 double alert_threshold) {
    rs_coldstart_t *cs = rs_calloc(1, sizeof(*cs));
    double thr = alert_threshold > 0.01 ? alert_threshold : 0.01;
    if (thr > 1) thr = 1;
    cs->c = 3.0 * (1.0 - thr) / thr;
    long best = -1;
    for (int i = 0; i < dim; i++) {
        const char *z = names[i] ? strstr(names[i], "_base_z") : NULL;
        if (!z) continue;
        long span = !strncmp(z, "_base_z_last", 12) ? strtol(z + 12, NULL, 10) : 0;
        if (span > best) { best = span; cs->nref = 0; }
        if (span == best && cs->nref < RS_CS_MAX) cs->ref[cs->nref++] = i;
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
    return cs;
}

void rs_coldstart_destroy(rs_coldstart_t *cs) {
    if (!cs) return;
    rs_alertpol_destroy(cs->own);
    free(cs);
}

rs_err_t rs_coldstart_track(rs_coldstart_t *cs, const rs_maint_conf_t *mc,
                            char *errstr, size_t errstr_size) {
    rs_alertpol_t *own = rs_alertpol_new(mc, errstr, errstr_size);
    if (!own) return RS_ERR_CONFIG;
    rs_alertpol_destroy(cs->own);
    cs->own = own;
    cs->horizon = mc->horizon;
    return RS_OK;
}

float rs_coldstart_observe(rs_coldstart_t *cs, uint64_t machine,
                           int64_t t_ms, const float *x, float model_score) {
    if (cs->own) rs_alertpol_step(cs->own, machine, t_ms, model_score);
    return rs_coldstart_score(cs, x, model_score);
}

void rs_coldstart_machine_failure(rs_coldstart_t *cs, uint64_t machine,
                                  int64_t t_fail_ms) {
    int64_t lead = -1;
    if (cs->own) { /* the model's record: did its own score catch it? */
        lead = rs_alertpol_lead(cs->own, machine, t_fail_ms);
        rs_alertpol_failure(cs->own, machine, t_fail_ms, NULL);
    }
    rs_coldstart_failure(cs, lead, cs->horizon);
}

void rs_coldstart_repair(rs_coldstart_t *cs, uint64_t machine) {
    if (cs->own) rs_alertpol_reset(cs->own, machine);
}

int rs_coldstart_sensors(const rs_coldstart_t *cs) { return cs->nsensors; }

float rs_coldstart_reference(const rs_coldstart_t *cs, const float *x) {
    float zmax = 0;
    for (int i = 0; i < cs->nref; i++) {
        float z = fabsf(x[cs->ref[i]]);
        if (isfinite(z) && z > zmax) zmax = z;
    }
    for (int i = 0; i < cs->nnoise; i++) { /* i15noisy: beyond 3 sds only */
        float e = x[cs->noise[i]];
        float z = e > 0 ? (float)(3.0 + e / cs->noise_sd) : 0;
        if (isfinite(z) && z > zmax) zmax = z;
    }
    return (float)(zmax / (zmax + cs->c));
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

size_t rs_coldstart_state_size(const rs_coldstart_t *cs) {
    return RS_COLDSTART_STATE + (cs->own ? rs_alertpol_state_size(cs->own) : 8);
}

void rs_coldstart_save(const rs_coldstart_t *cs, void *buf) {
    uint32_t hd[2] = {RS_CS_MAGIC, 3};
    memcpy(buf, hd, sizeof(hd));
    memcpy((char *)buf + sizeof(hd), &cs->n, sizeof(cs->n));
    memcpy((char *)buf + sizeof(hd) + sizeof(cs->n), &cs->caught,
           sizeof(cs->caught));
    char *pol = (char *)buf + RS_COLDSTART_STATE;
    if (cs->own) {
        rs_alertpol_save(cs->own, pol);
    } else {
        uint64_t none = 0;
        memcpy(pol, &none, sizeof(none));
    }
}

rs_err_t rs_coldstart_load(rs_coldstart_t *cs, const void *buf, size_t len,
                           char *errstr, size_t errstr_size) {
    uint32_t hd[2] = {0, 0};
    uint64_t n = 0, c = 0;
    if (buf && len >= RS_COLDSTART_STATE_V1) memcpy(hd, buf, sizeof(hd));
    int v1 = hd[1] == 1 && len == RS_COLDSTART_STATE_V1;
    int v2 = hd[1] == 2 && len == RS_COLDSTART_STATE;
    int v3 = hd[1] == 3 && len >= RS_COLDSTART_STATE + 8;
    if (hd[0] == RS_CS_MAGIC && (v1 || v2 || v3)) {
        memcpy(&n, (const char *)buf + sizeof(hd), sizeof(n));
        /* version 1 knew n only: c = n keeps the weight n / (n + n0) it
         * was saved with */
        c = n;
        if (v2 || v3)
            memcpy(&c, (const char *)buf + sizeof(hd) + sizeof(n), sizeof(c));
    }
    if (hd[0] != RS_CS_MAGIC || !(v1 || v2 || v3) || c > n)
        return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                       "cold-start state: %zu bytes, not a version-3 state "
                       "(%d bytes and the own policy's), version 2 of %d or "
                       "version 1 of %d, with caught <= failures", len,
                       RS_COLDSTART_STATE, RS_COLDSTART_STATE,
                       RS_COLDSTART_STATE_V1);
    if (v3) {
        const char *pol = (const char *)buf + RS_COLDSTART_STATE;
        size_t plen = len - RS_COLDSTART_STATE;
        char e2[200];
        rs_err_t err = RS_OK;
        if (cs->own) {
            err = rs_alertpol_load(cs->own, pol, plen, e2, sizeof(e2));
        } else { /* not tracked here: only its shape is checked */
            uint64_t m;
            memcpy(&m, pol, sizeof(m));
            if (m > (plen - 8) / 48 || plen != 8 + 48 * m) {
                err = RS_ERR_CORRUPT;
                snprintf(e2, sizeof(e2), "alert policy state: %zu bytes, "
                         "not 8 + 48 x %llu machines", plen,
                         (unsigned long long)m);
            }
        }
        if (err != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_CORRUPT,
                           "cold-start state: the model's own policy: %s", e2);
    }
    cs->n = n;
    cs->caught = c;
    return RS_OK;
}
