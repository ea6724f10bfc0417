/* features_spec.c -- the `features:` configuration: scalar table, the
 * `specs:` grammar (parsed from the config's raw node tree), the presets,
 * and the compilation of specs into key tables and a feature layout.
 * Runs at start-up only (allocates freely).  Grammar: docs/features.md. */
#include "features/features_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ config */

static const rs_conf_field_t rs_features_fields[] = {
    {"preset", RS_CONF_ENUM, "cards", offsetof(rs_features_conf_t, preset), 0,
     "built-in specs: cards|sensors|none (`specs:` replaces them, "
     "`extra_specs:` adds to them)", "cards|sensors|none", 0, 0},
    {"max_keys", RS_CONF_INT, "65536",
     offsetof(rs_features_conf_t, max_keys), 0,
     "entity slots preallocated; the least recently seen is evicted when full",
     NULL, 1, 268435456},
    {"max_counterparties", RS_CONF_INT, "65536",
     offsetof(rs_features_conf_t, max_counterparties), 0,
     "slots preallocated for every other key (counterparty, fields)", NULL, 1,
     268435456},
    {"history", RS_CONF_INT, "64", offsetof(rs_features_conf_t, history), 0,
     "events kept per key: the per-key memory cap (stats.cap_hits)", NULL, 1,
     4096},
    {"labels_per_key", RS_CONF_INT, "8",
     offsetof(rs_features_conf_t, labels_per_key), 0,
     "fraud labels kept per key with label-aware specs", NULL, 1, 1024},
    {"key_ttl", RS_CONF_DURATION, "30d", offsetof(rs_features_conf_t, key_ttl),
     0, "event time after which an idle key is forgotten", NULL, 1, 0x1p62},
    {"allowed_lateness", RS_CONF_DURATION, "1h",
     offsetof(rs_features_conf_t, allowed_lateness), 0,
     "events older than the watermark minus this are flagged late", NULL, 0,
     0x1p62},
    {"small_amount", RS_CONF_DOUBLE, "5.0",
     offsetof(rs_features_conf_t, small_amount), 0,
     "cards preset: amounts below this count as small (card testing)", NULL,
     0, 1e12},
    {"label_window", RS_CONF_DURATION, "30d",
     offsetof(rs_features_conf_t, label_window), 0,
     "presets: window of the label-aware features", NULL, 60000, 0x1p62},
    {"label_maturity", RS_CONF_DURATION, "0",
     offsetof(rs_features_conf_t, label_maturity), 0,
     "cards preset: its counterparty windows end this long before the event "
     "so every event in them had time to get its label (0 = the label delay)",
     NULL, 0, 0x1p62},
    {"timezone", RS_CONF_STRING, "UTC", offsetof(rs_features_conf_t, timezone),
     sizeof(((rs_features_conf_t *)0)->timezone),
     "IANA time zone of the calendar transforms (hour_of_day, night, ...), "
     "e.g. Europe/Paris; read from the system tz database", NULL, 0, 0},
    {"label_index", RS_CONF_INT, "1048576",
     offsetof(rs_features_conf_t, label_index), 0,
     "recent event ids remembered to route labels to their keys", NULL, 1,
     268435456},
    {"sensor_fields", RS_CONF_STRING, "temperature,vibration,pressure,rpm",
     offsetof(rs_features_conf_t, sensor_fields),
     sizeof(((rs_features_conf_t *)0)->sensor_fields),
     "sensors preset: comma list of numeric fields (max 8)", NULL, 0, 0},
    {"sensor_spans", RS_CONF_STRING, "12,48",
     offsetof(rs_features_conf_t, sensor_spans),
     sizeof(((rs_features_conf_t *)0)->sensor_spans),
     "sensors preset: comma list of trend spans in readings (1-4 spans, "
     "each 2-4096): per field and span, the mean of the last N readings "
     "against the machine's baseline (base_z) and its slope", NULL, 0, 0},
    {"setting_fields", RS_CONF_STRING, "",
     offsetof(rs_features_conf_t, setting_fields),
     sizeof(((rs_features_conf_t *)0)->setting_fields),
     "operating settings: comma list of up to 4 numeric fields (e.g. "
     "setting1,setting2,setting3) whose values identify the operating "
     "condition; every other numeric field a spec reads is then moved to "
     "the fleet's average condition (each condition's effect, measured "
     "against the machines' own baselines, taken out) before baselines and "
     "trends (docs/maintenance.md); empty: off", NULL, 0, 0},
    {"conditions", RS_CONF_INT, "0",
     offsetof(rs_features_conf_t, conditions), 0,
     "with setting_fields: at most this many operating conditions (0: up "
     "to 16); they are found from the settings", NULL, 0, 16},
    {"sensor_noise", RS_CONF_BOOL, "true",
     offsetof(rs_features_conf_t, sensor_noise), 0,
     "sensors preset: also each field's noise growth over the longest span "
     "(base_noise: successive differences against the machine's own, "
     "beyond chance; the cold-start reference reads it too); measured at "
     "three model seeds, it lifts the noisy and mixed shapes and costs no "
     "shape (docs/maintenance.md); false: the layout without it", NULL,
     0, 0},
    {"baseline_prior", RS_CONF_INT, "16",
     offsetof(rs_features_conf_t, baseline_prior), 0,
     "baselines (base_dev, base_z): a key's running statistics are topped "
     "up to this many readings with the fleet's, so a new machine is scored "
     "against the fleet, not against nothing", NULL, 0, 1000000},
    {"baseline_limit", RS_CONF_DOUBLE, "3",
     offsetof(rs_features_conf_t, baseline_limit), 0,
     "baselines (base_dev, base_z, base_spread, life): a reading farther "
     "than this many standard deviations from its key's baseline is "
     "scored against it but not learned by it, so a machine that goes "
     "out of range stays out of range until it comes back or is repaired "
     "(the control chart's rule: the limits come from in-control "
     "readings); the fleet's baseline learns every reading; 0: the key's "
     "baseline learns every reading too", NULL, 0, 1e6},
    {"baseline_learn_first", RS_CONF_INT, "100",
     offsetof(rs_features_conf_t, baseline_learn_first), 0,
     "with baseline_limit: a key's baseline learns the first this many "
     "readings of its life whatever they are, then judges them (Phase I of "
     "a control chart: limits of individual readings are estimated from "
     "about 100); a young baseline's spread is that of a short stretch and "
     "would refuse the machine's ordinary range", NULL, 0, 100000000},
    {"nouns", RS_CONF_STRING, "", offsetof(rs_features_conf_t, nouns),
     sizeof(((rs_features_conf_t *)0)->nouns),
     "words of reasons: comma list of NAME=noun[/plural] for event, entity, "
     "counterparty, fraud (a positive label) or any key or field (e.g. "
     "event=payment,mcc=merchant category); over the preset's (cards: "
     "payment, card, merchant, fraud; sensors: reading, machine, site, "
     "failure)", NULL, 0, 0},
};

const rs_conf_field_t *rs_features_conf_fields(int *nfields) {
    if (nfields) *nfields = (int)RS_ARRAY_LEN(rs_features_fields);
    return rs_features_fields;
}

void rs_features_conf_init(rs_features_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_features_fields); i++) {
        const rs_conf_field_t *fd = &rs_features_fields[i];
        char *p = (char *)conf + fd->offset;
        switch (fd->type) {
        case RS_CONF_STRING: rs_strlcpy(p, fd->def, fd->size); break;
        case RS_CONF_INT: *(int64_t *)p = strtoll(fd->def, NULL, 0); break;
        case RS_CONF_DOUBLE: *(double *)p = strtod(fd->def, NULL); break;
        case RS_CONF_BOOL: *(int *)p = !strcmp(fd->def, "true"); break;
        case RS_CONF_DURATION: rs_duration_parse(fd->def, (int64_t *)p); break;
        case RS_CONF_ENUM: *(int *)p = 0; break;
        }
    }
}

void rs_features_conf_section(rs_conf_section_t *sec, rs_features_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = "features";
    sec->desc = "declarative sliding-window features (docs/features.md)";
    sec->fields = rs_features_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_features_fields);
    sec->base = conf;
}

/* ------------------------------------------------------ aggregations */

static const char *const rs_fe_agg_names[RS_FEATURES_AGG__CNT] = {
    "count", "sum", "mean", "std", "min", "max", "count_below", "distinct",
    "new", "since_last", "ratio_mean", "zscore", "velocity", "fraud_count",
    "fraud_rate", "last", "slope", "deviation", "current", "current_log1p",
    "hour_of_day", "day_of_week", "night", "weekend", "hour_sin", "hour_cos",
    "base_dev", "base_z", "life", "base_spread", "base_noise",
};

const char *rs_features_agg_name(rs_features_agg_t agg) {
    return (int)agg >= 0 && agg < RS_FEATURES_AGG__CNT ? rs_fe_agg_names[agg]
                                                       : NULL;
}

static int rs_fe_agg_parse(const char *s) {
    for (int i = 0; i < RS_FEATURES_AGG__CNT; i++)
        if (!strcmp(s, rs_fe_agg_names[i])) return i;
    return -1;
}

#define RS_FE_AGG_LABEL                                                       \
    ((1u << RS_FEATURES_AGG_FRAUD_COUNT) | (1u << RS_FEATURES_AGG_FRAUD_RATE))
#define RS_FE_AGG_AUX                                                         \
    ((1u << RS_FEATURES_AGG_DISTINCT) | (1u << RS_FEATURES_AGG_NEW))
/* calendar transforms of the event time: no key, window or value */
#define RS_FE_AGG_CAL                                                         \
    ((1u << RS_FEATURES_AGG_HOUR_OF_DAY) | (1u << RS_FEATURES_AGG_DAY_OF_WEEK) | \
     (1u << RS_FEATURES_AGG_NIGHT) | (1u << RS_FEATURES_AGG_WEEKEND) |        \
     (1u << RS_FEATURES_AGG_HOUR_SIN) | (1u << RS_FEATURES_AGG_HOUR_COS))
/* baseline aggregations (per-key running statistics) */
#define RS_FE_AGG_BASE                                                        \
    ((1u << RS_FEATURES_AGG_BASE_DEV) | (1u << RS_FEATURES_AGG_BASE_Z) |      \
     (1u << RS_FEATURES_AGG_LIFE) | (1u << RS_FEATURES_AGG_BASE_SPREAD) |   \
     (1u << RS_FEATURES_AGG_BASE_NOISE))
/* aggregations whose value does not depend on the window */
#define RS_FE_AGG_NOWIN                                                       \
    ((1u << RS_FEATURES_AGG_CURRENT) | (1u << RS_FEATURES_AGG_CURRENT_LOG1P) | \
     RS_FE_AGG_CAL | (1u << RS_FEATURES_AGG_LIFE))
/* what a bucketed window can compute */
#define RS_FE_AGG_BUCKETED                                                    \
    ((1u << RS_FEATURES_AGG_COUNT) | (1u << RS_FEATURES_AGG_SUM) |            \
     (1u << RS_FEATURES_AGG_MEAN) | (1u << RS_FEATURES_AGG_VELOCITY) |        \
     (1u << RS_FEATURES_AGG_FRAUD_COUNT) | (1u << RS_FEATURES_AGG_FRAUD_RATE))

rs_fe_kind_t rs_fe_field_kind(const char *name, int as_value) {
    if (as_value) return !strcmp(name, "amount") ? RS_FE_K_AMOUNT : RS_FE_K_NUMERIC;
    if (!strcmp(name, "entity")) return RS_FE_K_ENTITY;
    if (!strcmp(name, "counterparty")) return RS_FE_K_COUNTERPARTY;
    if (!strcmp(name, "type")) return RS_FE_K_TYPE;
    return RS_FE_K_CATEG;
}

static int rs_fe_ident_ok(const char *s) {
    if (!*s || strlen(s) >= RS_NAME_MAX) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

/* ------------------------------------------------------- spec grammar */

static rs_err_t rs_fe_need_scalar(const rs_conf_node_t *n, const char *what,
                                  char *errstr, size_t errstr_size) {
    if (n->type != RS_CONF_NODE_SCALAR || n->is_null)
        return rs_conf_node_err(n, errstr, errstr_size,
                                "%s: expected a value", what);
    return RS_OK;
}

static rs_err_t rs_fe_parse_dur(const rs_conf_node_t *n, const char *what,
                                int64_t *out, char *errstr, size_t errstr_size) {
    if (rs_fe_need_scalar(n, what, errstr, errstr_size)) return RS_ERR_CONFIG;
    if (rs_duration_parse(n->value, out) || *out < 0)
        return rs_conf_node_err(n, errstr, errstr_size,
                                "%s: '%s' is not a duration (e.g. 10m, 1h, 7d)",
                                what, n->value);
    return RS_OK;
}

static rs_err_t rs_fe_parse_ident(const rs_conf_node_t *n, const char *what,
                                  char *out, char *errstr, size_t errstr_size) {
    if (rs_fe_need_scalar(n, what, errstr, errstr_size)) return RS_ERR_CONFIG;
    if (!rs_fe_ident_ok(n->value))
        return rs_conf_node_err(n, errstr, errstr_size,
                                "%s: '%s' must be 1-31 letters, digits or '_'",
                                what, n->value);
    rs_strlcpy(out, n->value, RS_NAME_MAX);
    return RS_OK;
}

static rs_err_t rs_fe_parse_num(const rs_conf_node_t *n, const char *what,
                                double lo, double hi, double *out,
                                char *errstr, size_t errstr_size) {
    if (rs_fe_need_scalar(n, what, errstr, errstr_size)) return RS_ERR_CONFIG;
    char *end;
    double v = strtod(n->value, &end);
    if (end == n->value || *end || !isfinite(v) || v < lo || v > hi)
        return rs_conf_node_err(n, errstr, errstr_size,
                                "%s: '%s' is not a number in [%g, %g]", what,
                                n->value, lo, hi);
    *out = v;
    return RS_OK;
}

/* Parse one list entry `m` into *base plus its window and value lists. */
static rs_err_t rs_fe_parse_one(const rs_features_conf_t *conf,
                                const rs_conf_node_t *m, const char *where,
                                rs_features_spec_t *base,
                                const rs_conf_node_t **wins,
                                const rs_conf_node_t **vals, char *errstr,
                                size_t errstr_size) {
    static const char *const keys[] = {
        "name", "key", "value", "values", "window", "windows", "last",
        "offset", "include_current", "aggs", "field", "below", "label_delay",
        "history", "bucket"};
    rs_err_t err;
    if (m->type != RS_CONF_NODE_MAP)
        return rs_conf_node_err(m, errstr, errstr_size,
                                "%s: each spec must be a mapping", where);
    memset(base, 0, sizeof(*base));
    rs_strlcpy(base->key, "entity", sizeof(base->key));
    rs_strlcpy(base->value, "amount", sizeof(base->value));
    rs_strlcpy(base->field, "counterparty", sizeof(base->field));
    base->below = conf->small_amount;
    *wins = *vals = NULL;
    for (int i = 0; i < m->n; i++) {
        const rs_conf_node_t *k = &m->kids[2 * i], *v = &m->kids[2 * i + 1];
        char what[128];
        snprintf(what, sizeof(what), "%s.%s", where, k->value);
        size_t j;
        for (j = 0; j < RS_ARRAY_LEN(keys); j++)
            if (!strcmp(k->value, keys[j])) break;
        if (j == RS_ARRAY_LEN(keys))
            return rs_conf_node_err(k, errstr, errstr_size,
                                    "unknown key '%s' (known: name, key, value, "
                                    "values, window, windows, last, offset, "
                                    "include_current, aggs, field, below, "
                                    "label_delay, history, bucket)", what);
        const char *kk = keys[j];
        if (!strcmp(kk, "name")) {
            if (rs_fe_need_scalar(v, what, errstr, errstr_size)) return RS_ERR_CONFIG;
            if (!rs_fe_ident_ok(v->value) || strlen(v->value) >= sizeof(base->prefix))
                return rs_conf_node_err(v, errstr, errstr_size,
                                        "%s: '%s' must be 1-23 letters, digits "
                                        "or '_'", what, v->value);
            rs_strlcpy(base->prefix, v->value, sizeof(base->prefix));
        } else if (!strcmp(kk, "key")) {
            if ((err = rs_fe_parse_ident(v, what, base->key, errstr, errstr_size)))
                return err;
        } else if (!strcmp(kk, "value")) {
            if ((err = rs_fe_parse_ident(v, what, base->value, errstr, errstr_size)))
                return err;
        } else if (!strcmp(kk, "field")) {
            if ((err = rs_fe_parse_ident(v, what, base->field, errstr, errstr_size)))
                return err;
        } else if (!strcmp(kk, "values") || !strcmp(kk, "windows")) {
            if (v->type != RS_CONF_NODE_SEQ || v->n == 0)
                return rs_conf_node_err(v, errstr, errstr_size,
                                        "%s: expected a non-empty list", what);
            if (kk[0] == 'v') *vals = v; else *wins = v;
        } else if (!strcmp(kk, "window")) {
            *wins = v;
        } else if (!strcmp(kk, "last")) {
            double n;
            if ((err = rs_fe_parse_num(v, what, 1, 4096, &n, errstr, errstr_size)))
                return err;
            base->last_n = (int64_t)n;
        } else if (!strcmp(kk, "offset")) {
            if (v->type == RS_CONF_NODE_SCALAR && !v->is_null &&
                (!strcmp(v->value, "maturity") ||
                 !strcmp(v->value, "label_maturity"))) {
                base->maturity_offset = 1;
                base->offset_ms = 0;
            } else if ((err = rs_fe_parse_dur(v, what, &base->offset_ms, errstr,
                                              errstr_size))) {
                return err;
            }
        } else if (!strcmp(kk, "bucket")) {
            if ((err = rs_fe_parse_dur(v, what, &base->bucket_ms, errstr,
                                       errstr_size)))
                return err;
            if (base->bucket_ms < RS_FE_MIN_MS)
                return rs_conf_node_err(v, errstr, errstr_size,
                                        "%s: a bucket is at least 1m", what);
        } else if (!strcmp(kk, "label_delay")) {
            if ((err = rs_fe_parse_dur(v, what, &base->label_delay_ms, errstr,
                                       errstr_size)))
                return err;
        } else if (!strcmp(kk, "include_current")) {
            if (rs_fe_need_scalar(v, what, errstr, errstr_size)) return RS_ERR_CONFIG;
            if (!strcmp(v->value, "true") || !strcmp(v->value, "yes"))
                base->include_current = 1;
            else if (!strcmp(v->value, "false") || !strcmp(v->value, "no"))
                base->include_current = 0;
            else
                return rs_conf_node_err(v, errstr, errstr_size,
                                        "%s: expected true or false", what);
        } else if (!strcmp(kk, "below")) {
            if ((err = rs_fe_parse_num(v, what, -1e300, 1e300, &base->below,
                                       errstr, errstr_size)))
                return err;
        } else if (!strcmp(kk, "history")) {
            double n;
            if ((err = rs_fe_parse_num(v, what, 1, 4096, &n, errstr, errstr_size)))
                return err;
            base->history = (int64_t)n;
        } else { /* aggs */
            const rs_conf_node_t *list = v;
            int single = v->type == RS_CONF_NODE_SCALAR;
            if (!single && v->type != RS_CONF_NODE_SEQ)
                return rs_conf_node_err(v, errstr, errstr_size,
                                        "%s: expected a list of aggregations",
                                        what);
            int cnt = single ? 1 : list->n;
            for (int a = 0; a < cnt; a++) {
                const rs_conf_node_t *it = single ? v : &list->kids[a];
                const char *name = NULL;
                const rs_conf_node_t *arg = NULL;
                if (it->type == RS_CONF_NODE_SCALAR && !it->is_null) {
                    name = it->value;
                } else if (it->type == RS_CONF_NODE_MAP && it->n == 1) {
                    name = it->kids[0].value;
                    arg = &it->kids[1];
                } else {
                    return rs_conf_node_err(it, errstr, errstr_size,
                                            "%s: an aggregation is a name or "
                                            "{name: argument}", what);
                }
                int ag = rs_fe_agg_parse(name);
                if (ag < 0)
                    return rs_conf_node_err(
                        it, errstr, errstr_size,
                        "%s: unknown aggregation '%s' (known: count, sum, mean, "
                        "std, min, max, count_below, distinct, new, since_last, "
                        "ratio_mean, zscore, velocity, fraud_count, fraud_rate, "
                        "last, slope, deviation, current, current_log1p, "
                        "hour_of_day, day_of_week, night, weekend, hour_sin, "
                        "hour_cos)",
                        what, name);
                if (arg) {
                    if (ag == RS_FEATURES_AGG_COUNT_BELOW) {
                        if ((err = rs_fe_parse_num(arg, what, -1e300, 1e300,
                                                   &base->below, errstr,
                                                   errstr_size)))
                            return err;
                    } else if (ag == RS_FEATURES_AGG_DISTINCT ||
                               ag == RS_FEATURES_AGG_NEW) {
                        if ((err = rs_fe_parse_ident(arg, what, base->field,
                                                     errstr, errstr_size)))
                            return err;
                    } else {
                        return rs_conf_node_err(arg, errstr, errstr_size,
                                                "%s: aggregation '%s' takes no "
                                                "argument", what, name);
                    }
                }
                if (base->aggs & (1u << ag))
                    return rs_conf_node_err(it, errstr, errstr_size,
                                            "%s: aggregation '%s' listed twice",
                                            what, name);
                base->aggs |= 1u << ag;
            }
        }
    }
    if (!base->aggs)
        return rs_conf_node_err(m, errstr, errstr_size, "%s: no aggs", where);
    if (base->last_n && *wins)
        return rs_conf_node_err(m, errstr, errstr_size,
                                "%s: 'last' and 'window(s)' exclude each other",
                                where);
    if (base->last_n && (base->offset_ms || base->maturity_offset))
        return rs_conf_node_err(m, errstr, errstr_size,
                                "%s: 'offset' needs a duration window", where);
    if (base->bucket_ms &&
        (base->last_n || base->include_current || base->label_delay_ms ||
         (base->aggs & ~RS_FE_AGG_BUCKETED)))
        return rs_conf_node_err(m, errstr, errstr_size,
                                "%s: a bucketed window takes only count, sum, "
                                "mean, velocity, fraud_count, fraud_rate, and "
                                "no last, include_current or label_delay",
                                where);
    if (base->last_n && (base->aggs & RS_FE_AGG_LABEL))
        return rs_conf_node_err(m, errstr, errstr_size,
                                "%s: fraud_count/fraud_rate need a duration "
                                "window", where);
    if (base->value[0] && !rs_fe_ident_ok(base->value))
        return rs_conf_node_err(m, errstr, errstr_size, "%s: bad value", where);
    return RS_OK;
}

rs_err_t rs_features_specs_parse(rs_features_conf_t *conf,
                                 const rs_conf_node_t *seq, int extra,
                                 char *errstr, size_t errstr_size) {
    rs_features_spec_t *out = extra ? conf->extra : conf->specs;
    int *n = extra ? &conf->nextra : &conf->nspecs;
    const char *sec = extra ? "features.extra_specs" : "features.specs";
    *n = 0;
    if (!extra) conf->specs_set = 1;
    if (seq->type == RS_CONF_NODE_SCALAR && seq->is_null) return RS_OK;
    if (seq->type != RS_CONF_NODE_SEQ)
        return rs_conf_node_err(seq, errstr, errstr_size,
                                "%s: expected a list of specs", sec);
    for (int i = 0; i < seq->n; i++) {
        char where[64];
        snprintf(where, sizeof(where), "%s[%d]", sec, i);
        rs_features_spec_t base;
        const rs_conf_node_t *wins = NULL, *vals = NULL;
        rs_err_t err = rs_fe_parse_one(conf, &seq->kids[i], where, &base,
                                       &wins, &vals, errstr, errstr_size);
        if (err) return err;
        int nw = !wins ? 1 : wins->type == RS_CONF_NODE_SEQ ? wins->n : 1;
        int nv = vals ? vals->n : 1;
        for (int vi = 0; vi < nv; vi++) {
            rs_features_spec_t sv = base;
            if (vals) {
                char what[96];
                snprintf(what, sizeof(what), "%s.values[%d]", where, vi);
                if ((err = rs_fe_parse_ident(&vals->kids[vi], what, sv.value,
                                             errstr, errstr_size)))
                    return err;
            }
            for (int wi = 0; wi < nw; wi++) {
                rs_features_spec_t s = sv;
                if (wins) {
                    const rs_conf_node_t *w =
                        wins->type == RS_CONF_NODE_SEQ ? &wins->kids[wi] : wins;
                    char what[96];
                    snprintf(what, sizeof(what), "%s.window", where);
                    if (w->type == RS_CONF_NODE_SCALAR && !w->is_null &&
                        !strcmp(w->value, "all"))
                        s.window_ms = 0;
                    else if ((err = rs_fe_parse_dur(w, what, &s.window_ms,
                                                    errstr, errstr_size)))
                        return err;
                    if (s.window_ms == 0 && strcmp(w->value, "all"))
                        return rs_conf_node_err(w, errstr, errstr_size,
                                                "%s: window must be > 0 (or "
                                                "'all')", what);
                }
                if ((s.aggs & RS_FE_AGG_LABEL) && !s.window_ms)
                    return rs_conf_node_err(&seq->kids[i], errstr, errstr_size,
                                            "%s: fraud_count/fraud_rate need "
                                            "a duration window", where);
                if (s.bucket_ms && (!s.window_ms || s.window_ms % s.bucket_ms))
                    return rs_conf_node_err(&seq->kids[i], errstr, errstr_size,
                                            "%s: a bucketed window must be a "
                                            "whole number of buckets", where);
                if (*n == RS_FEATURES_MAX_SPECS)
                    return rs_conf_node_err(&seq->kids[i], errstr, errstr_size,
                                            "%s: more than %d specs after "
                                            "expanding windows and values",
                                            sec, RS_FEATURES_MAX_SPECS);
                out[(*n)++] = s;
            }
        }
    }
    return RS_OK;
}

static rs_err_t rs_fe_raw_hook(void *opaque, const char *section,
                               const char *key, const rs_conf_node_t *value,
                               char *errstr, size_t errstr_size) {
    rs_features_conf_t *conf = opaque;
    if (!strcmp(key, "specs"))
        return rs_features_specs_parse(conf, value, 0, errstr, errstr_size);
    if (!strcmp(key, "extra_specs"))
        return rs_features_specs_parse(conf, value, 1, errstr, errstr_size);
    return rs_conf_node_err(value, errstr, errstr_size,
                            "unknown key '%s.%s' (known keys: the scalar "
                            "settings, specs, extra_specs)", section, key);
}

static void rs_fe_dump_specs(FILE *fp, const char *key,
                             const rs_features_spec_t *s, int n) {
    fprintf(fp, "  %s:%s\n", key, n ? "" : " []");
    for (int i = 0; i < n; i++) {
        char w[32], o[32], d[32];
        const rs_features_spec_t *p = &s[i];
        fprintf(fp, "    - {key: %s, value: %s", p->key, p->value);
        if (p->prefix[0]) fprintf(fp, ", name: %s", p->prefix);
        if (p->last_n) fprintf(fp, ", last: %lld", (long long)p->last_n);
        else if (p->window_ms) {
            rs_duration_fmt(p->window_ms, w, sizeof(w));
            fprintf(fp, ", window: %s", w);
        } else fprintf(fp, ", window: all");
        if (p->maturity_offset) {
            fprintf(fp, ", offset: maturity");
        } else if (p->offset_ms) {
            rs_duration_fmt(p->offset_ms, o, sizeof(o));
            fprintf(fp, ", offset: %s", o);
        }
        if (p->bucket_ms) {
            rs_duration_fmt(p->bucket_ms, o, sizeof(o));
            fprintf(fp, ", bucket: %s", o);
        }
        if (p->label_delay_ms) {
            rs_duration_fmt(p->label_delay_ms, d, sizeof(d));
            fprintf(fp, ", label_delay: %s", d);
        }
        if (p->include_current) fprintf(fp, ", include_current: true");
        if (p->history) fprintf(fp, ", history: %lld", (long long)p->history);
        fprintf(fp, ", field: %s, below: %.17g, aggs: [", p->field, p->below);
        int first = 1;
        for (int a = 0; a < RS_FEATURES_AGG__CNT; a++)
            if (p->aggs & (1u << a)) {
                fprintf(fp, "%s%s", first ? "" : ", ", rs_fe_agg_names[a]);
                first = 0;
            }
        fprintf(fp, "]}\n");
    }
}

static void rs_fe_raw_dump(void *opaque, FILE *fp) {
    const rs_features_conf_t *conf = opaque;
    if (conf->specs_set) rs_fe_dump_specs(fp, "specs", conf->specs, conf->nspecs);
    if (conf->nextra) rs_fe_dump_specs(fp, "extra_specs", conf->extra, conf->nextra);
}

rs_err_t rs_features_conf_add_specs(rs_conf_t *cfg, rs_features_conf_t *conf,
                                    char *errstr, size_t errstr_size) {
    rs_err_t err = rs_conf_add_raw(cfg, "features",
                                   "declarative sliding-window features",
                                   rs_fe_raw_hook, rs_fe_raw_dump, conf,
                                   errstr, errstr_size);
    if (err == RS_OK)
        err = rs_conf_add_raw_doc(cfg, "features", "specs", "list of specs",
                                  "replaces the preset's feature specs "
                                  "(grammar in docs/features.md)", errstr,
                                  errstr_size);
    if (err == RS_OK)
        err = rs_conf_add_raw_doc(cfg, "features", "extra_specs",
                                  "list of specs",
                                  "appended to the preset's (or specs') "
                                  "list", errstr, errstr_size);
    return err;
}

/* ------------------------------------------------------------ presets */

static rs_features_spec_t rs_fe_mk(const char *key, const char *value,
                                   int64_t window, uint32_t aggs) {
    rs_features_spec_t s;
    memset(&s, 0, sizeof(s));
    rs_strlcpy(s.key, key, sizeof(s.key));
    rs_strlcpy(s.value, value, sizeof(s.value));
    rs_strlcpy(s.field, "counterparty", sizeof(s.field));
    s.window_ms = window;
    s.aggs = aggs;
    return s;
}

#define A(x) (1u << RS_FEATURES_AGG_##x)

/* The cards preset: what a fraud team computes first (docs/features.md).
 *  - the card: bursts (10m, 1h: card testing), counts and amounts over
 *    1/7/30 days INCLUDING this payment, the amount against the card's own
 *    30-day history, novelty of the merchant, its own confirmed frauds;
 *  - the counterparty: activity in the last hour, and counts and fraud rates over
 *    1/7/30 days ending at label maturity (offset = label_maturity), in
 *    whole-day buckets so busy merchants are not capped by the ring;
 *  - calendar transforms of the event time in features.timezone. */
static int rs_fe_preset_cards(const rs_features_conf_t *c,
                              rs_features_spec_t *o) {
    const int64_t H = RS_FE_HOUR_MS, D = RS_FE_DAY_MS, L = c->label_window;
    const int64_t win[3] = {D, 7 * D, 30 * D};
    int n = 0;
    o[n++] = rs_fe_mk("entity", "amount", 0, A(CURRENT_LOG1P));
    o[n++] = rs_fe_mk("entity", "amount", 10 * RS_FE_MIN_MS, A(COUNT));
    o[n] = rs_fe_mk("entity", "amount", H, A(COUNT) | A(COUNT_BELOW) | A(MAX));
    o[n++].below = c->small_amount;
    for (int w = 0; w < 3; w++) {
        o[n] = rs_fe_mk("entity", "amount", win[w],
                        A(COUNT) | A(SUM) | A(MEAN) | (w ? 0 : A(DISTINCT)));
        o[n++].include_current = 1;
    }
    o[n++] = rs_fe_mk("entity", "amount", 30 * D,
                      A(MAX) | A(RATIO_MEAN) | A(ZSCORE));
    o[n++] = rs_fe_mk("entity", "amount", 0, A(SINCE_LAST) | A(NEW));
    o[n++] = rs_fe_mk("entity", "amount", L, A(FRAUD_COUNT));
    o[n++] = rs_fe_mk("counterparty", "amount", H, A(COUNT) | A(MEAN));
    for (int w = 0; w < 3; w++) {
        o[n] = rs_fe_mk("counterparty", "amount", win[w],
                        A(COUNT) | A(FRAUD_RATE));
        o[n].maturity_offset = 1;
        o[n++].bucket_ms = D;
    }
    o[n] = rs_fe_mk("counterparty", "amount", L, A(FRAUD_COUNT));
    o[n++].bucket_ms = L % D == 0 ? D : L % H == 0 ? H : 0;
    o[n] = rs_fe_mk("entity", "amount", 0,
                    A(HOUR_OF_DAY) | A(DAY_OF_WEEK) | A(NIGHT) | A(WEEKEND) |
                        A(HOUR_SIN) | A(HOUR_COS));
    rs_strlcpy(o[n++].prefix, "cal", sizeof(o[0].prefix));
    return n;
}

/* The sensors preset (docs/features.md): per machine, its life so far
 * (readings since it was new or last repaired), and per sensor field F:
 * the reading against the machine's own baseline (running statistics
 * over its life, started from the fleet's: a new machine is scored
 * against the fleet), and for each trend span N (features.sensor_spans,
 * in readings, so any cadence works) the mean of the last N readings
 * against that baseline (noise averaged out) and their slope per hour.
 * Not the spread (base_spread): measured, it helps noisy sensors and
 * costs the other shapes (docs/maintenance.md); an extra spec adds it.
 * The noise growth (base_noise, blind to level changes, 0 unless beyond
 * chance) of the longest span with features.sensor_noise (the default).
 * No label-aware feature: a machine's failure labels say that ITS
 * readings before the failure were positives, so counting them in its
 * later readings would pass the label to the model. */
static int rs_fe_preset_sensors(const rs_features_conf_t *c,
                                rs_features_spec_t *o, char *errstr,
                                size_t errstr_size) {
    int n = 0, nf = 0, nspan = 0;
    int64_t span[4];
    const char *p = c->sensor_spans;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char *e;
        long long v = strtoll(p, &e, 10);
        if (e == p || v < 2 || v > 4096 || nspan == 4 ||
            (*e && *e != ',' && !isspace((unsigned char)*e))) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "features.sensor_spans: '%s' must be 1-4 comma-separated "
                    "numbers of readings, each 2-4096", c->sensor_spans);
            return -1;
        }
        span[nspan++] = v;
        p = e;
    }
    o[n] = rs_fe_mk("entity", "amount", 0, A(LIFE));
    n++;
    p = c->sensor_fields;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (!*p) break;
        const char *b = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        char name[RS_NAME_MAX];
        size_t len = (size_t)(e - b);
        if (len >= RS_NAME_MAX) len = RS_NAME_MAX - 1;
        memcpy(name, b, len);
        name[len] = '\0';
        if (!rs_fe_ident_ok(name) || (size_t)(e - b) >= RS_NAME_MAX) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "features.sensor_fields: field name '%.*s' must be 1-31 "
                    "letters, digits and '_'", (int)(e - b), b);
            return -1;
        }
        if (++nf > RS_FEATURES_MAX_SENSORS) {
            rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                    "features.sensor_fields: more than %d fields",
                    RS_FEATURES_MAX_SENSORS);
            return -1;
        }
        o[n++] = rs_fe_mk("entity", name, 0, A(BASE_Z));
        for (int k = 0; k < nspan; k++) {
            /* sensor_noise: the longest span also measures the noise */
            o[n] = rs_fe_mk("entity", name, 0,
                            A(BASE_Z) | A(SLOPE) |
                                (c->sensor_noise && k == nspan - 1
                                     ? A(BASE_NOISE) : 0));
            o[n].last_n = span[k];
            o[n++].include_current = 1;
        }
    }
    return n;
}

int rs_features_conf_specs(const rs_features_conf_t *conf,
                           rs_features_spec_t *out, char *errstr,
                           size_t errstr_size) {
    int n = 0;
    if (conf->specs_set) {
        n = conf->nspecs;
        memcpy(out, conf->specs, sizeof(*out) * (size_t)n);
    } else if (conf->preset == 0) {
        n = rs_fe_preset_cards(conf, out);
    } else if (conf->preset == 1) {
        n = rs_fe_preset_sensors(conf, out, errstr, errstr_size);
        if (n < 0) return -1;
    }
    if (n + conf->nextra > RS_FEATURES_MAX_SPECS) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "features: more than %d specs (preset + extra_specs)",
                RS_FEATURES_MAX_SPECS);
        return -1;
    }
    memcpy(out + n, conf->extra, sizeof(*out) * (size_t)conf->nextra);
    n += conf->nextra;
    for (int i = 0; i < n; i++)
        if (out[i].maturity_offset) out[i].offset_ms = conf->label_maturity;
    if (n == 0) {
        rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                "features: no specs (preset none and no specs given)");
        return -1;
    }
    return n;
}

/* ---------------------------------------------------------- compiling */

static const char *rs_fe_key_prefix(const char *key) {
    if (!strcmp(key, "entity")) return "ent";
    if (!strcmp(key, "counterparty")) return "cp";
    return key;
}

static const char *rs_fe_key_words(const char *key) {
    if (!strcmp(key, "entity")) return "the entity";
    if (!strcmp(key, "counterparty")) return "the counterparty";
    if (!strcmp(key, "type")) return "the event type";
    return NULL;
}

static void rs_fe_words(int64_t ms, char *buf, size_t size) {
    static const struct { int64_t u; const char *n; } U[] = {
        {RS_FE_DAY_MS, "day"}, {RS_FE_HOUR_MS, "hour"}, {RS_FE_MIN_MS, "minute"},
        {1000, "second"}};
    for (size_t i = 0; i < RS_ARRAY_LEN(U); i++)
        if (ms % U[i].u == 0) {
            int64_t k = ms / U[i].u;
            if (k == 1) snprintf(buf, size, "%s", U[i].n);
            else snprintf(buf, size, "%lld %ss", (long long)k, U[i].n);
            return;
        }
    snprintf(buf, size, "%lld ms", (long long)ms);
}

/* Duration as a name part: the largest exact unit of d, h, m, s, ms. */
static void rs_fe_dur_name(int64_t ms, char *buf, size_t size) {
    static const struct { int64_t u; const char *n; } U[] = {
        {RS_FE_DAY_MS, "d"}, {RS_FE_HOUR_MS, "h"}, {RS_FE_MIN_MS, "m"},
        {1000, "s"}};
    for (size_t i = 0; i < RS_ARRAY_LEN(U); i++)
        if (ms % U[i].u == 0) {
            snprintf(buf, size, "%lld%s", (long long)(ms / U[i].u), U[i].n);
            return;
        }
    snprintf(buf, size, "%lldms", (long long)ms);
}

/* A feature's meaning: truncated if long (it is text for people). */
static void rs_fe_descf(char *d, size_t ds, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rs_fe_descf(char *d, size_t ds, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, ds, fmt, ap);
    va_end(ap);
}

static int rs_fe_add_name(char (*names)[RS_NAME_MAX], int *n, int max,
                          const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], s)) return i;
    if (*n == max) return -1;
    rs_strlcpy(names[*n], s, RS_NAME_MAX);
    return (*n)++;
}

static uint64_t rs_fe_mix(uint64_t h, const void *p, size_t n) {
    return rs_hash64_seed(p, n, h);
}

rs_err_t rs_fe_compile(rs_features_t *f, char *errstr, size_t errstr_size) {
    rs_features_spec_t *sp = rs_calloc(RS_FEATURES_MAX_SPECS, sizeof(*sp));
    int n = rs_features_conf_specs(&f->conf, sp, errstr, errstr_size);
    rs_err_t err = RS_OK;
    if (n < 0) { err = RS_ERR_CONFIG; goto done; }
    f->nspec = n;
    f->ntab = 0;
    f->ent_tab = -1;
    int dim = 0;
    for (int i = 0; i < n; i++) {
        rs_fe_cspec_t *c = &f->spec[i];
        memset(c, 0, sizeof(*c));
        c->s = sp[i];
        const rs_features_spec_t *s = &c->s;
        if (!rs_fe_ident_ok(s->key) || !rs_fe_ident_ok(s->value) ||
            !rs_fe_ident_ok(s->field)) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "features spec %d: key, value and field must be "
                          "identifiers", i);
            goto done;
        }
        if (!s->aggs || (s->aggs >> RS_FEATURES_AGG__CNT)) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "features spec %d: no or unknown aggregations", i);
            goto done;
        }
        if (s->bucket_ms &&
            (s->bucket_ms < RS_FE_MIN_MS || !s->window_ms ||
             s->window_ms % s->bucket_ms || s->last_n || s->include_current ||
             s->label_delay_ms || (s->aggs & ~RS_FE_AGG_BUCKETED))) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "features spec %d: a bucketed window needs a bucket "
                          ">= 1m, a window of whole buckets and only count, "
                          "sum, mean, velocity, fraud_count, fraud_rate", i);
            goto done;
        }
        if ((s->last_n && (s->window_ms || s->offset_ms)) ||
            ((s->aggs & RS_FE_AGG_LABEL) && !s->window_ms) || s->last_n < 0 ||
            s->window_ms < 0 || s->offset_ms < 0 || s->label_delay_ms < 0 ||
            s->last_n > 4096) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "features spec %d: inconsistent window (last with "
                          "a duration or offset, or label aggregation without "
                          "a duration window)", i);
            goto done;
        }
        /* table */
        int t;
        for (t = 0; t < f->ntab; t++)
            if (!strcmp(f->tab[t].key, s->key)) break;
        if (t == f->ntab) {
            if (f->ntab == RS_FEATURES_MAX_TABLES) {
                err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                              "features: more than %d distinct keys",
                              RS_FEATURES_MAX_TABLES);
                goto done;
            }
            rs_fe_tab_t *tb = &f->tab[f->ntab++];
            memset(tb, 0, sizeof(*tb));
            rs_strlcpy(tb->key, s->key, sizeof(tb->key));
            tb->kkind = rs_fe_field_kind(s->key, 0);
            tb->hist = (uint32_t)f->conf.history;
            if (tb->kkind == RS_FE_K_ENTITY) f->ent_tab = t;
        }
        rs_fe_tab_t *tb = &f->tab[t];
        c->tab = t;
        if (s->history && (uint32_t)s->history > tb->hist)
            tb->hist = (uint32_t)s->history;
        if (s->last_n && (uint32_t)s->last_n > tb->hist) tb->hist = (uint32_t)s->last_n;
        if (s->aggs & RS_FE_AGG_LABEL && !s->bucket_ms)
            tb->nlab = (uint32_t)f->conf.labels_per_key;
        if (s->aggs & RS_FE_AGG_CAL) f->has_cal = 1;
        if (s->aggs & RS_FE_AGG_BASE && !tb->nbase) tb->nbase = 1; /* = nv below */
        if (s->aggs & (1u << RS_FEATURES_AGG_BASE_NOISE))
            tb->nbase = 2;  /* = 2 nv below: the differences' too */
        c->vi = rs_fe_add_name(tb->vname, &tb->nv, RS_FEATURES_MAX_VALUES, s->value);
        if (c->vi < 0) {
            err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                          "features: key '%s' has more than %d value fields "
                          "(amount and the numeric fields named in "
                          "specs, extra_specs or sensor_fields)",
                          s->key, RS_FEATURES_MAX_VALUES);
            goto done;
        }
        tb->vkind[c->vi] = rs_fe_field_kind(s->value, 1);
        if (s->bucket_ms) {
            if (tb->bkt_ms && tb->bkt_ms != s->bucket_ms) {
                err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                              "features spec %d: key '%s' has bucketed windows "
                              "with different buckets (one bucket per key)",
                              i, s->key);
                goto done;
            }
            if (tb->bkt_ms && tb->bkt_vi != c->vi) {
                err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                              "features spec %d: key '%s' has bucketed windows "
                              "over different values (one value per key)",
                              i, s->key);
                goto done;
            }
            tb->bkt_ms = s->bucket_ms;
            tb->bkt_vi = c->vi;
            /* buckets from the window's first to the event's own */
            int64_t nb = (s->offset_ms + s->bucket_ms - 1) / s->bucket_ms +
                         s->window_ms / s->bucket_ms + 1;
            if (nb > 65536) {
                err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                              "features spec %d: %lld buckets per key (window "
                              "+ offset over bucket), more than 65536", i,
                              (long long)nb);
                goto done;
            }
            if ((uint32_t)nb > tb->nbkt) tb->nbkt = (uint32_t)nb;
            tb->nrec = (uint32_t)f->conf.labels_per_key;
        }
        c->ai = -1;
        if (s->aggs & RS_FE_AGG_AUX) {
            c->ai = rs_fe_add_name(tb->aname, &tb->na, RS_FEATURES_MAX_AUX, s->field);
            if (c->ai < 0) {
                err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                              "features: key '%s' has more than %d distinct/new "
                              "fields", s->key, RS_FEATURES_MAX_AUX);
                goto done;
            }
            tb->akind[c->ai] = rs_fe_field_kind(s->field, 0);
        }
        {
            const uint32_t nosc = (1u << RS_FEATURES_AGG_FRAUD_COUNT) |
                                  (1u << RS_FEATURES_AGG_CURRENT) |
                                  (1u << RS_FEATURES_AGG_CURRENT_LOG1P);
            const uint32_t vals =
                (1u << RS_FEATURES_AGG_SUM) | (1u << RS_FEATURES_AGG_MEAN) |
                (1u << RS_FEATURES_AGG_STD) | (1u << RS_FEATURES_AGG_MIN) |
                (1u << RS_FEATURES_AGG_MAX) | (1u << RS_FEATURES_AGG_COUNT_BELOW) |
                (1u << RS_FEATURES_AGG_RATIO_MEAN) | (1u << RS_FEATURES_AGG_ZSCORE) |
                (1u << RS_FEATURES_AGG_LAST) | (1u << RS_FEATURES_AGG_SLOPE) |
                (1u << RS_FEATURES_AGG_DEVIATION);
            c->need = ((s->aggs & ~nosc & ~RS_FE_AGG_CAL & ~RS_FE_AGG_BASE)
                           ? RS_FE_NEED_SCAN : 0) |
                      ((s->aggs & vals) ? RS_FE_NEED_VALUES : 0);
            /* a baseline compares the window's mean (x without a window) */
            if ((s->aggs & RS_FE_AGG_BASE & ~(1u << RS_FEATURES_AGG_LIFE)) &&
                (s->last_n || s->window_ms))
                c->need |= RS_FE_NEED_SCAN | RS_FE_NEED_VALUES;
            /* a spread is over the window's values (the kept history
             * without a window) */
            if (s->aggs & ((1u << RS_FEATURES_AGG_BASE_SPREAD) |
                           (1u << RS_FEATURES_AGG_BASE_NOISE)))
                c->need |= RS_FE_NEED_SCAN | RS_FE_NEED_VALUES;
            if (s->bucket_ms) c->need = 0;
        }
        c->out0 = dim;
        for (int a = 0; a < RS_FEATURES_AGG__CNT; a++)
            if (s->aggs & (1u << a)) c->agg[c->nout++] = (uint8_t)a;
        dim += c->nout;
    }
    if (dim > RS_FEATURES_MAX_DIM) {
        err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                      "features: %d features, more than %d", dim,
                      RS_FEATURES_MAX_DIM);
        goto done;
    }
    f->dim = dim;
    f->names = rs_calloc((size_t)dim, sizeof(*f->names));
    f->descs = rs_calloc((size_t)dim, sizeof(*f->descs));
    f->out_spec = rs_calloc((size_t)dim, sizeof(*f->out_spec));
    f->out_agg = rs_calloc((size_t)dim, sizeof(*f->out_agg));
    f->maxhist = 1;
    for (int t = 0; t < f->ntab; t++) {
        rs_fe_tab_t *tb = &f->tab[t];
        tb->item_size = (8 + 4 * (size_t)(tb->nv + tb->na) + 7) & ~(size_t)7;
        if (tb->nbase) tb->nbase = tb->nbase * (uint32_t)tb->nv;
        tb->slot_size = sizeof(rs_fe_hdr_t) + tb->hist * tb->item_size +
                        tb->nlab * sizeof(rs_fe_lab_t) +
                        tb->nbkt * sizeof(rs_fe_bkt_t) +
                        tb->nrec * sizeof(rs_fe_lab_t) +
                        tb->nbase * sizeof(rs_fe_base_t);
        if (tb->hist > f->maxhist) f->maxhist = tb->hist;
    }
    uint64_t fp = 0x5253464531ULL;
    for (int i = 0; i < n; i++) {
        const rs_fe_cspec_t *c = &f->spec[i];
        const rs_features_spec_t *s = &c->s;
        char win[48] = "", off[40] = "", ww[96] = "whole kept history", ow[96] = "";
        if (s->last_n) {
            snprintf(win, sizeof(win), "_last%lld", (long long)s->last_n);
            snprintf(ww, sizeof(ww), "last %lld events", (long long)s->last_n);
        } else if (s->window_ms) {
            char d[32];
            rs_fe_dur_name(s->window_ms, d, sizeof(d));
            snprintf(win, sizeof(win), "_%s", d);
            rs_fe_words(s->window_ms, d, sizeof(d));
            snprintf(ww, sizeof(ww), "last %s", d);
            if (s->bucket_ms) {
                char b[32];
                rs_fe_words(s->bucket_ms, b, sizeof(b));
                snprintf(ww, sizeof(ww), "last %s in whole %s buckets", d, b);
            }
        }
        if (s->offset_ms) {
            char d[32];
            rs_fe_dur_name(s->offset_ms, d, sizeof(d));
            snprintf(off, sizeof(off), "_off%s", d);
            rs_fe_words(s->offset_ms, d, sizeof(d));
            snprintf(ow, sizeof(ow), " ending %s%s before the event",
                     s->bucket_ms ? "at least " : "", d);
        }
        const char *pre = s->prefix[0] ? s->prefix : rs_fe_key_prefix(s->key);
        char kw[64];
        const char *kws = rs_fe_key_words(s->key);
        if (kws) rs_strlcpy(kw, kws, sizeof(kw));
        else snprintf(kw, sizeof(kw), "the event's %s", s->key);
        int amt = !strcmp(s->value, "amount");
        for (int k = 0; k < c->nout; k++) {
            int a = c->agg[k], o = c->out0 + k;
            char name[256];
            int nowin = (RS_FE_AGG_NOWIN >> a) & 1;
            int noval = amt || ((RS_FE_AGG_CAL >> a) & 1);
            snprintf(name, sizeof(name), "%s_%s%s%s%s%s%s%s%s", pre,
                     noval ? "" : s->value, noval ? "" : "_", rs_fe_agg_names[a],
                     (RS_FE_AGG_AUX >> a) & 1 ? "_" : "",
                     (RS_FE_AGG_AUX >> a) & 1 ? s->field : "",
                     nowin ? "" : win, nowin ? "" : off,
                     s->include_current && !nowin ? "_incl" : "");
            if (strlen(name) >= RS_FEATURES_NAME_MAX) {
                err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                              "features: name '%s' longer than %d characters "
                              "(set a shorter `name:`)", name,
                              RS_FEATURES_NAME_MAX - 1);
                goto done;
            }
            for (int j = 0; j < o; j++)
                if (!strcmp(f->names[j], name)) {
                    err = rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                                  "features: feature '%s' declared twice "
                                  "(set `name:` to tell them apart)", name);
                    goto done;
                }
            rs_strlcpy(f->names[o], name, RS_FEATURES_NAME_MAX);
            f->out_spec[o] = (int16_t)i;
            f->out_agg[o] = (uint8_t)a;
            const char *v = s->value;
            char *d = f->descs[o];
            const size_t ds = RS_FE_DESC_MAX;
            const char *cur = s->include_current ? " (this event included)"
                              : s->offset_ms || s->bucket_ms ? ""
                                                             : " before this event";
            switch (a) {
            case RS_FEATURES_AGG_COUNT:
                rs_fe_descf(d, ds, "events of %s in the %s%s%s", kw, ww, ow, cur); break;
            case RS_FEATURES_AGG_SUM:
                rs_fe_descf(d, ds, "sum of %s of %s in the %s%s%s", v, kw, ww, ow, cur); break;
            case RS_FEATURES_AGG_MEAN:
                rs_fe_descf(d, ds, "mean %s of %s in the %s%s (0 if none)", v, kw, ww, ow); break;
            case RS_FEATURES_AGG_STD:
                rs_fe_descf(d, ds, "std of %s of %s in the %s%s (0 if none)", v, kw, ww, ow); break;
            case RS_FEATURES_AGG_MIN:
                rs_fe_descf(d, ds, "min %s of %s in the %s%s (0 if none)", v, kw, ww, ow); break;
            case RS_FEATURES_AGG_MAX:
                rs_fe_descf(d, ds, "max %s of %s in the %s%s (0 if none)", v, kw, ww, ow); break;
            case RS_FEATURES_AGG_COUNT_BELOW:
                rs_fe_descf(d, ds, "events of %s with %s < %g in the %s%s", kw, v, s->below, ww, ow); break;
            case RS_FEATURES_AGG_DISTINCT:
                rs_fe_descf(d, ds, "distinct %s values of %s in the %s%s", s->field, kw, ww, ow); break;
            case RS_FEATURES_AGG_NEW:
                rs_fe_descf(d, ds, "1 if the event's %s is not among %s's in the %s%s", s->field, kw, ww, ow); break;
            case RS_FEATURES_AGG_SINCE_LAST:
                rs_fe_descf(d, ds, "log(1 + seconds since the newest event of %s in the %s%s); log(1 + 1e8) if none", kw, ww, ow); break;
            case RS_FEATURES_AGG_RATIO_MEAN:
                rs_fe_descf(d, ds, "(%s + 1) / (mean + 1) over the %s%s of %s; 1 if none", v, ww, ow, kw); break;
            case RS_FEATURES_AGG_ZSCORE:
                rs_fe_descf(d, ds, "(%s - mean) / (std + 0.01|mean| + 0.01) over the %s%s, clipped to +-100; 0 if < 2 events", v, ww, ow); break;
            case RS_FEATURES_AGG_VELOCITY:
                rs_fe_descf(d, ds, "events of %s per hour in the %s%s", kw, ww, ow); break;
            case RS_FEATURES_AGG_FRAUD_COUNT:
                rs_fe_descf(d, ds, "events of %s in the %s%s whose fraud label arrived before this event", kw, ww, ow); break;
            case RS_FEATURES_AGG_FRAUD_RATE:
                rs_fe_descf(d, ds, "fraud_count / count of %s in the %s%s (0 if no events)", kw, ww, ow); break;
            case RS_FEATURES_AGG_LAST:
                rs_fe_descf(d, ds, "newest %s of %s in the %s%s (0 if none)", v, kw, ww, ow); break;
            case RS_FEATURES_AGG_SLOPE:
                rs_fe_descf(d, ds, "least-squares slope of %s per hour over the %s%s (0 if < 2)", v, ww, ow); break;
            case RS_FEATURES_AGG_DEVIATION:
                rs_fe_descf(d, ds, "%s minus its mean over the %s%s of %s (own baseline)", v, ww, ow, kw); break;
            case RS_FEATURES_AGG_CURRENT:
                rs_fe_descf(d, ds, "%s of this event (0 if absent)", v); break;
            case RS_FEATURES_AGG_HOUR_OF_DAY:
                rs_fe_descf(d, ds, "hour of day of the event, 0-23, in %s", f->conf.timezone); break;
            case RS_FEATURES_AGG_DAY_OF_WEEK:
                rs_fe_descf(d, ds, "day of week of the event, 0 = Monday .. 6 = Sunday, in %s", f->conf.timezone); break;
            case RS_FEATURES_AGG_NIGHT:
                rs_fe_descf(d, ds, "1 if the event is between 00:00 and 06:00 in %s", f->conf.timezone); break;
            case RS_FEATURES_AGG_WEEKEND:
                rs_fe_descf(d, ds, "1 if the event is on a Saturday or Sunday in %s", f->conf.timezone); break;
            case RS_FEATURES_AGG_HOUR_SIN:
                rs_fe_descf(d, ds, "sin(2 pi h / 24), h = fractional hour of the event in %s", f->conf.timezone); break;
            case RS_FEATURES_AGG_HOUR_COS:
                rs_fe_descf(d, ds, "cos(2 pi h / 24), h = fractional hour of the event in %s", f->conf.timezone); break;
            case RS_FEATURES_AGG_BASE_DEV:
                rs_fe_descf(d, ds, "%s%s%s%s minus the baseline mean of %s (its life so far, started from the fleet's)", s->last_n || s->window_ms ? "mean " : "", v, s->last_n || s->window_ms ? " over the " : "", s->last_n || s->window_ms ? ww : "", kw); break;
            case RS_FEATURES_AGG_BASE_Z:
                rs_fe_descf(d, ds, "%s%s%s%s in standard deviations from the baseline of %s (its life so far, started from the fleet's)", s->last_n || s->window_ms ? "mean " : "", v, s->last_n || s->window_ms ? " over the " : "", s->last_n || s->window_ms ? ww : "", kw); break;
            case RS_FEATURES_AGG_LIFE:
                rs_fe_descf(d, ds, "log(1 + events of %s since it was new or last reset)", kw); break;
            case RS_FEATURES_AGG_BASE_SPREAD:
                rs_fe_descf(d, ds, "log(standard deviation of %s over the %s%s / the baseline standard deviation of %s), clipped to +-log 50; 0 if < 2 values", v, ww, ow, kw); break;
            case RS_FEATURES_AGG_BASE_NOISE:
                rs_fe_descf(d, ds, "noise growth of %s over the %s%s beyond chance: r - 3 s if positive, else 0; r = log(noise / the baseline noise of %s), noise from successive differences (blind to level changes: median |difference| of the window against the mean |difference| of its life before it), s = sqrt(1.65/n + 0.826/m) the sampling sd of r for n successive (dependent) differences in the window and m in the baseline; 0 if < 2 differences", v, ww, ow, kw); break;
            default:
                rs_fe_descf(d, ds, "log(1 + %s) of this event (0 if absent)", v); break;
            }
            fp = rs_fe_mix(fp, name, strlen(name));
        }
        fp = rs_fe_mix(fp, s, sizeof(*s));
    }
    for (int t = 0; t < f->ntab; t++) {
        const rs_fe_tab_t *tb = &f->tab[t];
        uint64_t g2[3] = {tb->nbkt, (uint64_t)tb->bkt_ms, tb->nrec};
        fp = rs_fe_mix(fp, g2, sizeof(g2));
        /* only when there are baselines: checkpoints of layouts without
         * them keep loading across the upgrade */
        if (tb->nbase) {
            uint64_t nb = tb->nbase;
            fp = rs_fe_mix(fp, &nb, sizeof(nb));
        }
        uint64_t g[5] = {tb->hist, tb->nlab, tb->item_size,
                         t == f->ent_tab ? (uint64_t)f->conf.max_keys
                                         : (uint64_t)f->conf.max_counterparties,
                         (uint64_t)f->conf.label_index};
        fp = rs_fe_mix(fp, g, sizeof(g));
        fp = rs_fe_mix(fp, tb->key, strlen(tb->key));
    }
    f->fingerprint = fp;
done:
    rs_free(sp);
    return err;
}
