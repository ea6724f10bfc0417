/* proto_rtf.c -- the whitespace run-to-failure reader (proto.h "run to
 * failure"): one row per machine cycle, "unit cycle setting1..S
 * sensor1..N", as public run-to-failure data sets ship it.  No I/O: a
 * line in, an event out; the failure at each unit's last cycle needs the
 * whole file and is decided by the caller (rs_rtf_last_cycles). */
#include "proto/proto.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_rtf_conf_init(rs_rtf_conf_t *c) {
    memset(c, 0, sizeof(*c));
    c->start_ms = 1577836800000LL; /* 2020-01-01T00:00:00Z */
    c->period_ms = 3600000LL;      /* one cycle = 1 h */
    c->settings = 3;
    c->failures = 1;
    for (int i = 0; i < RS_RTF_MAX_COLS; i++) c->keep[i] = 1;
    rs_strlcpy(c->prefix, "unit-", sizeof(c->prefix));
}

/* "2,3,7-9" into keep[1..RS_RTF_MAX_COLS] (1-based sensor numbers). */
static int rs_rtf_list(const char *s, size_t n, uint8_t *keep) {
    memset(keep, 0, RS_RTF_MAX_COLS);
    size_t i = 0;
    int any = 0;
    while (i < n) {
        char *e;
        char tmp[24];
        size_t k = 0;
        while (i + k < n && s[i + k] != ';' && s[i + k] != '+' && k < 23) k++;
        /* items are separated by ';' or '+' (',' separates map keys) */
        memcpy(tmp, s + i, k);
        tmp[k] = '\0';
        long a = strtol(tmp, &e, 10), b = a;
        if (e == tmp) return -1;
        if (*e == '-') {
            char *e2;
            b = strtol(e + 1, &e2, 10);
            if (e2 == e + 1 || *e2) return -1;
        } else if (*e) {
            return -1;
        }
        if (a < 1 || b < a || b > RS_RTF_MAX_COLS) return -1;
        for (long v = a; v <= b; v++) keep[v - 1] = 1;
        any = 1;
        i += k;
        if (i < n) i++;
    }
    return any ? 0 : -1;
}

rs_err_t rs_rtf_conf_parse(rs_rtf_conf_t *c, const char *spec, char *errstr,
                           size_t errstr_size) {
    rs_rtf_conf_init(c);
    if (!spec) return RS_OK;
    if (!strncmp(spec, "rtf:", 4)) spec += 4;
    else if (!strcmp(spec, "rtf")) return RS_OK;
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (!eq)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "--map rtf: '%.*s' is not KEY=VALUE (keys: period, "
                           "start, settings, sensors, units, failures)",
                           (int)n, p);
        size_t kl = (size_t)(eq - p), vl = n - kl - 1;
        const char *v = eq + 1;
        char val[128];
        if (vl >= sizeof(val))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "--map rtf: value of '%.*s' too long", (int)kl, p);
        memcpy(val, v, vl);
        val[vl] = '\0';
        if (kl == 6 && !memcmp(p, "period", 6)) {
            if (rs_duration_parse(val, &c->period_ms) != 0 || c->period_ms < 1)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "--map rtf: period '%s': expected a duration "
                               "such as 1h, 10m", val);
        } else if (kl == 5 && !memcmp(p, "start", 5)) {
            if (rs_time_parse(val, vl, &c->start_ms) != 0)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "--map rtf: start '%s': expected a time such "
                               "as 2020-01-01 00:00:00 or epoch ms", val);
        } else if (kl == 8 && !memcmp(p, "settings", 8)) {
            char *e;
            long s = strtol(val, &e, 10);
            if (e == val || *e || s < 0 || s > 3)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "--map rtf: settings '%s': expected 0..3 "
                               "(operating-setting columns after the cycle)",
                               val);
            c->settings = (int)s;
        } else if (kl == 7 && !memcmp(p, "sensors", 7)) {
            if (rs_rtf_list(val, vl, c->keep) != 0)
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "--map rtf: sensors '%s': expected sensor "
                               "numbers 1..%d as a list such as 2;3;7-9",
                               val, RS_RTF_MAX_COLS);
        } else if (kl == 5 && !memcmp(p, "units", 5)) {
            if (vl >= sizeof(c->prefix))
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "--map rtf: units prefix '%s' too long", val);
            rs_strlcpy(c->prefix, val, sizeof(c->prefix));
        } else if (kl == 8 && !memcmp(p, "failures", 8)) {
            if (!strcmp(val, "last")) c->failures = 1;
            else if (!strcmp(val, "none")) c->failures = 0;
            else
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "--map rtf: failures '%s': expected last (a "
                               "failure at each unit's last cycle: training "
                               "files) or none (test files)", val);
        } else {
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "--map rtf: unknown key '%.*s' (keys: period, "
                           "start, settings, sensors, units, failures)",
                           (int)kl, p);
        }
        p += n;
        if (*p == ',') p++;
    }
    return RS_OK;
}

/* Next whitespace-separated token of s[*i..n): start, length (0 at end). */
static size_t rs_rtf_tok(const char *s, size_t n, size_t *i, const char **t) {
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\r' ||
                      s[*i] == '\n'))
        (*i)++;
    size_t b = *i;
    while (*i < n && s[*i] != ' ' && s[*i] != '\t' && s[*i] != '\r' &&
           s[*i] != '\n')
        (*i)++;
    *t = s + b;
    return *i - b;
}

/* A finite decimal number from token t[0..len). */
static int rs_rtf_num(const char *t, size_t len, double *out) {
    char buf[64];
    if (!len || len >= sizeof(buf)) return -1;
    for (size_t k = 0; k < len; k++) {
        char ch = t[k];
        if (!isdigit((unsigned char)ch) && ch != '.' && ch != '-' &&
            ch != '+' && ch != 'e' && ch != 'E')
            return -1;
    }
    memcpy(buf, t, len);
    buf[len] = '\0';
    char *e;
    double v = strtod(buf, &e);
    if (e != buf + len || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

rs_err_t rs_rtf_decode(const rs_rtf_conf_t *c, const char *line, size_t len,
                       rs_event_t *ev, int64_t *unit, int64_t *cycle,
                       char *errstr, size_t errstr_size) {
    size_t i = 0;
    const char *t;
    size_t tl = rs_rtf_tok(line, len, &i, &t);
    if (!tl) return RS_ERR_AGAIN; /* a blank line */
    double u, cy;
    if (rs_rtf_num(t, tl, &u) != 0 || u != floor(u) || u < 0 || u > 1e15)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "column 1 (unit): '%.*s' is not a unit number",
                       (int)(tl > 32 ? 32 : tl), t);
    tl = rs_rtf_tok(line, len, &i, &t);
    if (!tl || rs_rtf_num(t, tl, &cy) != 0 || cy != floor(cy) || cy < 0 ||
        cy > 1e12)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "column 2 (cycle): '%.*s' is not a cycle number",
                       (int)(tl > 32 ? 32 : tl), t);
    double tm = (double)c->start_ms + cy * (double)c->period_ms;
    if (!(tm < 4102444800000.0)) /* 2100-01-01, as validation */
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "column 2 (cycle): cycle %.0f x the period puts the "
                       "event after 2100 (--map rtf:period=, start=)", cy);
    memset(ev, 0, sizeof(*ev));
    *unit = (int64_t)u;
    *cycle = (int64_t)cy;
    snprintf(ev->entity_id, sizeof(ev->entity_id), "%s%lld", c->prefix,
             (long long)*unit);
    snprintf(ev->id, sizeof(ev->id), "%s%lld-c%lld", c->prefix,
             (long long)*unit, (long long)*cycle);
    rs_strlcpy(ev->type, "cycle", sizeof(ev->type));
    ev->event_time_ms = (int64_t)tm;
    ev->amount = 0;
    for (int col = 0;; col++) {
        tl = rs_rtf_tok(line, len, &i, &t);
        if (!tl) break;
        double v;
        int is_setting = col < 3 && col < c->settings;
        int sensor = col - c->settings; /* 0-based sensor number */
        if (rs_rtf_num(t, tl, &v) != 0)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "column %d (%s %d): '%.*s' is not a number",
                           col + 3, is_setting ? "setting" : "sensor",
                           is_setting ? col + 1 : sensor + 1,
                           (int)(tl > 32 ? 32 : tl), t);
        if (!is_setting && (sensor >= RS_RTF_MAX_COLS || !c->keep[sensor]))
            continue;
        if (ev->n_numeric == RS_MAX_NUMERIC)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "more than %d kept columns (settings + sensors): "
                           "choose the sensors with --map rtf:sensors=...",
                           RS_MAX_NUMERIC);
        rs_numeric_t *nf = &ev->numeric[ev->n_numeric++];
        if (is_setting) snprintf(nf->name, sizeof(nf->name), "setting%d", col + 1);
        else snprintf(nf->name, sizeof(nf->name), "sensor%d", sensor + 1);
        nf->value = v;
    }
    return rs_event_validate(ev, errstr, errstr_size);
}
