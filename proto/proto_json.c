/* proto_json.c -- JSON codec for riskstream records.
 *
 * The event and label decoders of the per-event path are in
 * proto_jsonr.c (streaming, no allocation); the jansson versions below
 * stay as their reference (rs_event_from_json_jansson, ...: tests and the
 * fuzz target compare both).  Score records and foreign lines are decoded
 * here.
 *
 * Decoding goes through jansson (one json_t tree per call, freed before
 * returning); the tree is walked with small typed getters that name the
 * field in every error ("field 'numeric_fields[2].value': expected
 * number").  Field names are the .proto names.  Leniency rules, all in the
 * getters and documented in docs/schema.md:
 *   - null or absent means the proto3 default (a required field is then
 *     "missing");
 *   - id-like strings also accept JSON integers (written in decimal);
 *   - doubles accept numbers and numeric strings ("12.50"), never "NaN" or
 *     "Infinity" (named in the error);
 *   - int64 times accept integers and timestamp strings (rs_time_parse);
 *   - numeric_fields / categorical_fields accept an array of {name, value}
 *     or an object {"name": value};
 *   - unknown keys are ignored.
 *
 * Encoding writes into the caller's buffer with a bounded writer (no
 * allocation, no jansson): every field, arrays for repeated fields, strings
 * escaped per RFC 8259 (control characters as \u00XX, invalid UTF-8 as
 * U+FFFD), doubles in the shortest form that reads back bit-exact
 * (common/fmt.h, no printf), non-finite doubles as null.  The score
 * record's model outputs (score, attended amount and weight, feature
 * value and contribution, gate weight) are float32 values: they are
 * written as the shortest text that reads back as the same float32, and
 * the decoder rounds them to float32 again (jd_f32), so a record
 * decodes, encodes and decodes to the same bits.
 *
 * Threads: reentrant; no state.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"
#include "common/fmt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ decoding */

#define JD_REQ    0x1   /* required: absent or null is an error          */
#define JD_INT_OK 0x2   /* string field also accepts an integer          */
#define JD_STR_OK 0x4   /* number field also accepts a numeric string    */
#define JD_BOOL   0x8   /* number field also accepts true / false        */
#define JD_TIME   0x10  /* int64 field accepts timestamp strings         */

static rs_err_t jd_missing(const char *what, char *errstr, size_t es) {
    return rs_errf(errstr, es, RS_ERR_INVALID, "field '%s': missing", what);
}

static rs_err_t jd_expected(const char *what, const char *type, char *errstr,
                            size_t es) {
    return rs_errf(errstr, es, RS_ERR_INVALID, "field '%s': expected %s",
                   what, type);
}

static int jd_absent(const json_t *v) { return !v || json_is_null(v); }

static rs_err_t jd_str(const json_t *v, const char *what, char *dst,
                       size_t size, int flags, char *errstr, size_t es) {
    dst[0] = '\0';
    if (jd_absent(v))
        return (flags & JD_REQ) ? jd_missing(what, errstr, es) : RS_OK;
    if (json_is_string(v))
        return rs_str_copy(dst, size, json_string_value(v),
                           json_string_length(v), what, errstr, es);
    if ((flags & JD_INT_OK) && json_is_integer(v)) {
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        return rs_str_copy(dst, size, tmp, (size_t)n, what, errstr, es);
    }
    return jd_expected(what, (flags & JD_INT_OK) ? "string or integer"
                                                  : "string", errstr, es);
}

/* Parse a numeric string for a double field, naming NaN / infinity. */
static rs_err_t jd_numstr(const char *s, size_t len, const char *what,
                          double *out, char *errstr, size_t es) {
    int is_nan;
    if (rs_num_parse(s, len, out) == 0) return RS_OK;
    if (rs_nonfinite_word(s, len, &is_nan))
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': %s is not allowed", what,
                       is_nan ? "NaN" : "infinity");
    return rs_errf(errstr, es, RS_ERR_INVALID,
                   "field '%s': expected number, got a non-numeric string",
                   what);
}

/* *present (may be NULL) tells whether a value was there. */
static rs_err_t jd_double(const json_t *v, const char *what, double *out,
                          int flags, int *present, char *errstr, size_t es) {
    if (present) *present = 0;
    *out = 0;
    if (jd_absent(v))
        return (flags & JD_REQ) ? jd_missing(what, errstr, es) : RS_OK;
    if (present) *present = 1;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return RS_OK;
    }
    if ((flags & JD_STR_OK) && json_is_string(v))
        return jd_numstr(json_string_value(v), json_string_length(v), what,
                         out, errstr, es);
    if ((flags & JD_BOOL) && json_is_boolean(v)) {
        *out = json_is_true(v) ? 1.0 : 0.0;
        return RS_OK;
    }
    return jd_expected(what, "number", errstr, es);
}

/* Doubles below this in magnitude round to a finite float32 (FLT_MAX plus
 * half its ulp; the tie rounds to even, i.e. to infinity). */
#define RS_F32_LIMIT 0x1.ffffffp127

/* A float32 field of the score record (see the header): read as a double,
 * then rounded to float32 unless that would overflow (a double outside the
 * float range stays as it is).  The float the encoder wrote comes back
 * bit for bit (tests/common/test_fmt.c checks (float)strtod of every
 * float32's shortest text). */
static rs_err_t jd_f32(const json_t *v, const char *what, double *out,
                       int flags, int *present, char *errstr, size_t es) {
    rs_err_t err = jd_double(v, what, out, flags, present, errstr, es);
    if (err == RS_OK && fabs(*out) < RS_F32_LIMIT) *out = (double)(float)*out;
    return err;
}

/* Strict decimal integer string ("-123"), as proto3 JSON writes int64. */
static int jd_intstr(const char *s, size_t len, int64_t *out) {
    size_t i = 0;
    if (len && s[0] == '-') i++;
    if (i == len || len > 20) return -1;
    for (size_t k = i; k < len; k++)
        if (s[k] < '0' || s[k] > '9') return -1;
    char tmp[24];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno) return -1;
    *out = v;
    return 0;
}

static rs_err_t jd_i64(const json_t *v, const char *what, int64_t *out,
                       int flags, char *errstr, size_t es) {
    *out = 0;
    if (jd_absent(v))
        return (flags & JD_REQ) ? jd_missing(what, errstr, es) : RS_OK;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return RS_OK;
    }
    if (json_is_real(v)) {
        /* 1.7e12 from a producer that only has doubles: fine if integral
         * and exactly representable. */
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
            *out = (int64_t)d;
            return RS_OK;
        }
        return jd_expected(what, "integer", errstr, es);
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (flags & JD_TIME) {
            if (rs_time_parse(s, len, out) == 0) return RS_OK;
            return rs_errf(errstr, es, RS_ERR_INVALID,
                           "field '%s': unparseable timestamp", what);
        }
        if (jd_intstr(s, len, out) == 0) return RS_OK;
    }
    return jd_expected(what, "integer", errstr, es);
}

static rs_err_t jd_u32(const json_t *v, const char *what, uint32_t *out,
                       char *errstr, size_t es) {
    int64_t x;
    rs_err_t err = jd_i64(v, what, &x, 0, errstr, es);
    if (err) return err;
    if (x < 0 || x > (int64_t)UINT32_MAX)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': %lld is outside [0, 4294967295]", what,
                       (long long)x);
    *out = (uint32_t)x;
    return RS_OK;
}

static rs_err_t jd_schema(const json_t *root, char *errstr, size_t es) {
    uint32_t ver = 0;
    rs_err_t err = jd_u32(json_object_get(root, "schema_version"),
                          "schema_version", &ver, errstr, es);
    if (err) return err;
    if (ver > RS_SCHEMA_VERSION)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field 'schema_version': version %u is newer than "
                       "this build (%d)", ver, RS_SCHEMA_VERSION);
    return RS_OK;
}

/* A repeated field: absent -> 0 entries; too many -> RS_ERR_TOOBIG. */
static rs_err_t jd_array(const json_t *v, const char *what, size_t max,
                         size_t *n, char *errstr, size_t es) {
    *n = 0;
    if (jd_absent(v)) return RS_OK;
    if (!json_is_array(v)) return jd_expected(what, "array", errstr, es);
    *n = json_array_size(v);
    if (*n > max)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "field '%s': %zu entries, max %zu", what, *n, max);
    return RS_OK;
}

static rs_err_t jd_elem_obj(const json_t *e, const char *what, size_t i,
                            char *errstr, size_t es) {
    if (json_is_object(e)) return RS_OK;
    return rs_errf(errstr, es, RS_ERR_INVALID,
                   "field '%s[%zu]': expected object", what, i);
}

static rs_err_t jd_load(const char *buf, size_t len, json_t **root,
                        char *errstr, size_t es) {
    json_error_t jerr;
    *root = NULL;
    if (!buf)
        return rs_errf(errstr, es, RS_ERR_INVALID, "no input");
    if (len > RS_MSG_MAX)
        return rs_errf(errstr, es, RS_ERR_TOOBIG,
                       "message of %zu bytes exceeds the limit of %d bytes",
                       len, RS_MSG_MAX);
    json_t *r = json_loadb(buf, len, 0, &jerr);
    if (!r)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "invalid JSON at line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(r)) {
        json_decref(r);
        return rs_errf(errstr, es, RS_ERR_INVALID, "expected a JSON object");
    }
    *root = r;
    return RS_OK;
}

/* numeric_fields: [{"name": n, "value": v}, ...] or {"n": v, ...} */
static rs_err_t jd_numeric_fields(const json_t *v, rs_event_t *ev,
                                  char *errstr, size_t es) {
    char what[96];
    rs_err_t err;
    if (jd_absent(v)) return RS_OK;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        if (json_object_size(v) > RS_MAX_NUMERIC)
            return rs_errf(errstr, es, RS_ERR_TOOBIG,
                           "field 'numeric_fields': %zu entries, max %d",
                           json_object_size(v), RS_MAX_NUMERIC);
        json_object_foreach((json_t *)v, key, val) {
            rs_numeric_t *nf = &ev->numeric[ev->n_numeric];
            int present;
            snprintf(what, sizeof(what), "numeric_fields.%s", key);
            if ((err = rs_str_copy(nf->name, sizeof(nf->name), key,
                                   strlen(key), what, errstr, es)) ||
                (err = jd_double(val, what, &nf->value,
                                 JD_REQ | JD_STR_OK | JD_BOOL, &present,
                                 errstr, es)))
                return err;
            ev->n_numeric++;
        }
        return RS_OK;
    }
    size_t n;
    if ((err = jd_array(v, "numeric_fields", RS_MAX_NUMERIC, &n, errstr, es)))
        return err;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        rs_numeric_t *nf = &ev->numeric[i];
        if ((err = jd_elem_obj(e, "numeric_fields", i, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "numeric_fields[%zu].name", i);
        if ((err = jd_str(json_object_get(e, "name"), what, nf->name,
                          sizeof(nf->name), JD_REQ, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "numeric_fields[%zu].value", i);
        if ((err = jd_double(json_object_get(e, "value"), what, &nf->value,
                             JD_STR_OK | JD_BOOL, NULL, errstr, es)))
            return err;
        ev->n_numeric = (int)i + 1;
    }
    return RS_OK;
}

/* categorical_fields: [{"name": n, "value": s}, ...] or {"n": s, ...} */
static rs_err_t jd_categ_fields(const json_t *v, rs_event_t *ev,
                                char *errstr, size_t es) {
    char what[96];
    rs_err_t err;
    if (jd_absent(v)) return RS_OK;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        if (json_object_size(v) > RS_MAX_CATEG)
            return rs_errf(errstr, es, RS_ERR_TOOBIG,
                           "field 'categorical_fields': %zu entries, max %d",
                           json_object_size(v), RS_MAX_CATEG);
        json_object_foreach((json_t *)v, key, val) {
            rs_categ_t *cf = &ev->categ[ev->n_categ];
            snprintf(what, sizeof(what), "categorical_fields.%s", key);
            if ((err = rs_str_copy(cf->name, sizeof(cf->name), key,
                                   strlen(key), what, errstr, es)) ||
                (err = jd_str(val, what, cf->value, sizeof(cf->value),
                              JD_INT_OK, errstr, es)))
                return err;
            ev->n_categ++;
        }
        return RS_OK;
    }
    size_t n;
    if ((err = jd_array(v, "categorical_fields", RS_MAX_CATEG, &n, errstr,
                        es)))
        return err;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        rs_categ_t *cf = &ev->categ[i];
        if ((err = jd_elem_obj(e, "categorical_fields", i, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "categorical_fields[%zu].name", i);
        if ((err = jd_str(json_object_get(e, "name"), what, cf->name,
                          sizeof(cf->name), JD_REQ, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "categorical_fields[%zu].value", i);
        if ((err = jd_str(json_object_get(e, "value"), what, cf->value,
                          sizeof(cf->value), JD_INT_OK, errstr, es)))
            return err;
        ev->n_categ = (int)i + 1;
    }
    return RS_OK;
}

static rs_err_t jd_event(const json_t *o, rs_event_t *ev, char *errstr,
                         size_t es) {
    rs_err_t err;
    if ((err = jd_str(json_object_get(o, "id"), "id", ev->id, sizeof(ev->id),
                      JD_REQ | JD_INT_OK, errstr, es)) ||
        (err = jd_str(json_object_get(o, "type"), "type", ev->type,
                      sizeof(ev->type), JD_REQ, errstr, es)) ||
        (err = jd_str(json_object_get(o, "entity_id"), "entity_id",
                      ev->entity_id, sizeof(ev->entity_id),
                      JD_REQ | JD_INT_OK, errstr, es)) ||
        (err = jd_str(json_object_get(o, "counterparty_id"),
                      "counterparty_id", ev->counterparty_id,
                      sizeof(ev->counterparty_id), JD_INT_OK, errstr, es)) ||
        (err = jd_i64(json_object_get(o, "event_time_ms"), "event_time_ms",
                      &ev->event_time_ms, JD_REQ | JD_TIME, errstr, es)) ||
        (err = jd_double(json_object_get(o, "amount"), "amount", &ev->amount,
                         JD_STR_OK, NULL, errstr, es)) ||
        (err = jd_numeric_fields(json_object_get(o, "numeric_fields"), ev,
                                 errstr, es)) ||
        (err = jd_categ_fields(json_object_get(o, "categorical_fields"), ev,
                               errstr, es)) ||
        (err = jd_schema(o, errstr, es)))
        return err;
    return RS_OK;
}

rs_err_t rs_event_from_json_jansson(const char *buf, size_t len,
                                    rs_event_t *ev, char *errstr,
                                    size_t errstr_size) {
    json_t *root;
    rs_err_t err;
    if (!ev) return rs_errf(errstr, errstr_size, RS_ERR_INVALID, "no event");
    memset(ev, 0, sizeof(*ev));
    if ((err = jd_load(buf, len, &root, errstr, errstr_size))) return err;
    err = jd_event(root, ev, errstr, errstr_size);
    json_decref(root);
    return err ? err : rs_event_validate(ev, errstr, errstr_size);
}

rs_err_t rs_label_from_json_jansson(const char *buf, size_t len,
                                    rs_label_t *lb, char *errstr,
                                    size_t errstr_size) {
    json_t *root;
    rs_err_t err;
    size_t es = errstr_size;
    if (!lb) return rs_errf(errstr, es, RS_ERR_INVALID, "no label");
    memset(lb, 0, sizeof(*lb));
    if ((err = jd_load(buf, len, &root, errstr, es))) return err;
    if ((err = jd_str(json_object_get(root, "event_id"), "event_id",
                      lb->event_id, sizeof(lb->event_id), JD_REQ | JD_INT_OK,
                      errstr, es)) ||
        (err = jd_str(json_object_get(root, "entity_id"), "entity_id",
                      lb->entity_id, sizeof(lb->entity_id),
                      JD_REQ | JD_INT_OK, errstr, es)) ||
        (err = jd_double(json_object_get(root, "value"), "value", &lb->value,
                         JD_STR_OK | JD_BOOL, NULL, errstr, es)) ||
        (err = jd_i64(json_object_get(root, "label_time_ms"),
                      "label_time_ms", &lb->label_time_ms, JD_REQ | JD_TIME,
                      errstr, es)) ||
        (err = jd_schema(root, errstr, es))) {
        /* err and errstr are set */
    }
    json_decref(root);
    return err ? err : rs_label_validate(lb, errstr, es);
}

static rs_err_t jd_explanation(const json_t *o, rs_explanation_t *ex,
                               char *errstr, size_t es) {
    char what[96];
    rs_err_t err;
    size_t n;
    const json_t *v;

    if (jd_absent(o)) return RS_OK;
    if (!json_is_object(o))
        return jd_expected("explanation", "object", errstr, es);

    v = json_object_get(o, "attended_events");
    if ((err = jd_array(v, "explanation.attended_events", RS_MAX_ATTEND, &n,
                        errstr, es)))
        return err;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        rs_attended_t *at = &ex->attended[i];
        if ((err = jd_elem_obj(e, "explanation.attended_events", i, errstr,
                               es)))
            return err;
#define AT_WHAT(f) \
    (snprintf(what, sizeof(what), "explanation.attended_events[%zu]." f, i), \
     what)
        if ((err = jd_str(json_object_get(e, "event_id"), AT_WHAT("event_id"),
                          at->event_id, sizeof(at->event_id), JD_INT_OK,
                          errstr, es)) ||
            (err = jd_i64(json_object_get(e, "event_time_ms"),
                          AT_WHAT("event_time_ms"), &at->event_time_ms,
                          JD_TIME, errstr, es)) ||
            (err = jd_f32(json_object_get(e, "amount"), AT_WHAT("amount"),
                             &at->amount, JD_STR_OK, NULL, errstr, es)) ||
            (err = jd_str(json_object_get(e, "counterparty_id"),
                          AT_WHAT("counterparty_id"), at->counterparty_id,
                          sizeof(at->counterparty_id), JD_INT_OK, errstr,
                          es)) ||
            (err = jd_f32(json_object_get(e, "weight"), AT_WHAT("weight"),
                             &at->weight, 0, NULL, errstr, es)))
            return err;
#undef AT_WHAT
        ex->n_attended = (int)i + 1;
    }

    v = json_object_get(o, "feature_contributions");
    if ((err = jd_array(v, "explanation.feature_contributions",
                        RS_MAX_CONTRIB, &n, errstr, es)))
        return err;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        rs_contrib_t *fc = &ex->contrib[i];
        if ((err = jd_elem_obj(e, "explanation.feature_contributions", i,
                               errstr, es)))
            return err;
#define FC_WHAT(f)                                                           \
    (snprintf(what, sizeof(what),                                            \
              "explanation.feature_contributions[%zu]." f, i), what)
        if ((err = jd_str(json_object_get(e, "name"), FC_WHAT("name"),
                          fc->name, sizeof(fc->name), 0, errstr, es)) ||
            (err = jd_f32(json_object_get(e, "value"), FC_WHAT("value"),
                             &fc->value, 0, NULL, errstr, es)) ||
            (err = jd_f32(json_object_get(e, "contribution"),
                             FC_WHAT("contribution"), &fc->contribution, 0,
                             NULL, errstr, es)) ||
            (err = jd_str(json_object_get(e, "text"), FC_WHAT("text"),
                          fc->text, sizeof(fc->text), 0, errstr, es)))
            return err;
#undef FC_WHAT
        ex->n_contrib = (int)i + 1;
    }

    v = json_object_get(o, "experts");
    if ((err = jd_array(v, "explanation.experts", RS_MAX_EXPERTS, &n, errstr,
                        es)))
        return err;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        rs_expert_use_t *xu = &ex->experts[i];
        if ((err = jd_elem_obj(e, "explanation.experts", i, errstr, es)))
            return err;
        snprintf(what, sizeof(what), "explanation.experts[%zu].expert", i);
        if ((err = jd_u32(json_object_get(e, "expert"), what, &xu->expert,
                          errstr, es)))
            return err;
        snprintf(what, sizeof(what), "explanation.experts[%zu].gate_weight",
                 i);
        if ((err = jd_f32(json_object_get(e, "gate_weight"), what,
                             &xu->gate_weight, 0, NULL, errstr, es)))
            return err;
        ex->n_experts = (int)i + 1;
    }

    v = json_object_get(o, "reasons");
    if ((err = jd_array(v, "explanation.reasons", RS_MAX_REASONS, &n, errstr,
                        es)))
        return err;
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "explanation.reasons[%zu]", i);
        if ((err = jd_str(json_array_get(v, i), what, ex->reasons[i],
                          sizeof(ex->reasons[i]), JD_REQ, errstr, es)))
            return err;
        ex->n_reasons = (int)i + 1;
    }
    return RS_OK;
}

static rs_err_t jd_decision(const json_t *v, rs_decision_t *out,
                            char *errstr, size_t es) {
    *out = RS_DECISION_UNSPECIFIED;
    if (jd_absent(v)) return RS_OK;
    if (json_is_string(v)) {
        int d = rs_decision_parse(json_string_value(v));
        if (d < 0 || strlen(json_string_value(v)) != json_string_length(v))
            return rs_errf(errstr, es, RS_ERR_INVALID,
                           "field 'decision': unknown decision");
        *out = (rs_decision_t)d;
        return RS_OK;
    }
    if (json_is_integer(v)) {
        json_int_t d = json_integer_value(v);
        if (d < RS_DECISION_UNSPECIFIED || d > RS_DECISION_ALERT)
            return rs_errf(errstr, es, RS_ERR_INVALID,
                           "field 'decision': unknown value %" 
                           JSON_INTEGER_FORMAT, d);
        *out = (rs_decision_t)d;
        return RS_OK;
    }
    return jd_expected("decision", "string or integer", errstr, es);
}

/* Score.event: the event's own fields, decoded with the Event's own
 * getters (same names and leniency) through a scratch rs_event_t; errors
 * name the field as "event.<field>". */
static rs_err_t jd_event_fields(const json_t *o, rs_event_fields_t *ef,
                                char *errstr, size_t es) {
    rs_event_t ev;
    rs_err_t err;
    if (jd_absent(o)) return RS_OK;
    if (!json_is_object(o)) return jd_expected("event", "object", errstr, es);
    memset(&ev, 0, sizeof(ev));
    if ((err = jd_str(json_object_get(o, "type"), "event.type", ev.type,
                      sizeof(ev.type), 0, errstr, es)) ||
        (err = jd_str(json_object_get(o, "counterparty_id"),
                      "event.counterparty_id", ev.counterparty_id,
                      sizeof(ev.counterparty_id), JD_INT_OK, errstr, es)) ||
        (err = jd_double(json_object_get(o, "amount"), "event.amount",
                         &ev.amount, JD_STR_OK, NULL, errstr, es)))
        return err;
    if ((err = jd_numeric_fields(json_object_get(o, "numeric_fields"), &ev,
                                 errstr, es)) ||
        (err = jd_categ_fields(json_object_get(o, "categorical_fields"), &ev,
                               errstr, es))) {
        if (errstr && es && !strncmp(errstr, "field '", 7)) {
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "field 'event.%s", errstr + 7);
            rs_strlcpy(errstr, tmp, es);
        }
        return err;
    }
    rs_event_fields_from_event(ef, &ev);
    return RS_OK;
}

rs_err_t rs_score_from_json(const char *buf, size_t len, rs_score_t *sc,
                            char *errstr, size_t errstr_size) {
    json_t *root;
    rs_err_t err;
    size_t es = errstr_size;
    if (!sc) return rs_errf(errstr, es, RS_ERR_INVALID, "no score");
    memset(sc, 0, sizeof(*sc));
    if ((err = jd_load(buf, len, &root, errstr, es))) return err;
    const json_t *o = root;
    if ((err = jd_str(json_object_get(o, "event_id"), "event_id",
                      sc->event_id, sizeof(sc->event_id), JD_INT_OK, errstr,
                      es)) ||
        (err = jd_str(json_object_get(o, "entity_id"), "entity_id",
                      sc->entity_id, sizeof(sc->entity_id), JD_INT_OK,
                      errstr, es)) ||
        (err = jd_f32(json_object_get(o, "score"), "score", &sc->score,
                         JD_STR_OK, NULL, errstr, es)) ||
        (err = jd_decision(json_object_get(o, "decision"), &sc->decision,
                           errstr, es)) ||
        (err = jd_str(json_object_get(o, "model_version"), "model_version",
                      sc->model_version, sizeof(sc->model_version), 0,
                      errstr, es)) ||
        (err = jd_i64(json_object_get(o, "event_time_ms"), "event_time_ms",
                      &sc->event_time_ms, JD_TIME, errstr, es)) ||
        (err = jd_i64(json_object_get(o, "scored_at_ms"), "scored_at_ms",
                      &sc->scored_at_ms, JD_TIME, errstr, es)) ||
        (err = jd_i64(json_object_get(o, "latency_us"), "latency_us",
                      &sc->latency_us, 0, errstr, es)) ||
        (err = jd_explanation(json_object_get(o, "explanation"),
                              &sc->explanation, errstr, es)) ||
        (err = jd_u32(json_object_get(o, "flags"), "flags", &sc->flags,
                      errstr, es)) ||
        (err = jd_i64(json_object_get(o, "rul"), "rul", &sc->rul, 0, errstr,
                      es)) ||
        (err = jd_f32(json_object_get(o, "alert_score"), "alert_score",
                      &sc->alert_score, JD_STR_OK, NULL, errstr, es)) ||
        (err = jd_event_fields(json_object_get(o, "event"), &sc->event,
                               errstr, es)) ||
        (err = jd_schema(o, errstr, es))) {
        /* err and errstr are set */
    }
    json_decref(root);
    return err;
}

/* ---------------------------------------------------- foreign JSON lines */

/* Time from a number or string of a foreign feed: the same epoch s / ms
 * heuristic as CSV cells (rs_time_parse). */
static rs_err_t jd_foreign_time(const json_t *v, const char *what,
                                int64_t *out, char *errstr, size_t es) {
    char tmp[40];
    const char *s = tmp;
    size_t len;
    if (json_is_integer(v))
        len = (size_t)snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
                               json_integer_value(v));
    else if (json_is_real(v))
        len = (size_t)snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
    else if (json_is_string(v)) {
        s = json_string_value(v);
        len = json_string_length(v);
    } else
        return jd_expected(what, "timestamp", errstr, es);
    if (rs_time_parse(s, len, out) != 0)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s' (time): unparseable timestamp", what);
    return RS_OK;
}

rs_err_t rs_event_from_json_map(const rs_csv_map_t *map, const char *buf,
                                size_t len, rs_event_t *ev,
                                double *label_out, int *has_label,
                                char *errstr, size_t errstr_size) {
    size_t es = errstr_size;
    json_t *root;
    rs_err_t err = RS_OK;
    unsigned found = 0;
    const char *key;
    json_t *v;

    if (has_label) *has_label = 0;
    if (!map || !ev)
        return rs_errf(errstr, es, RS_ERR_INVALID, "no mapping or event");
    memset(ev, 0, sizeof(*ev));
    if ((err = jd_load(buf, len, &root, errstr, es))) return err;

    json_object_foreach(root, key, v) {
        size_t klen = strlen(key);
        unsigned roles = rs_map_roles(map, key, klen);
        if (jd_absent(v)) continue;
        if (!roles) {
            /* An unmapped key: numbers and bools are numeric fields,
             * strings categorical; the rest is ignored. */
            if ((json_is_number(v) || json_is_boolean(v)) &&
                ev->n_numeric < RS_MAX_NUMERIC) {
                rs_numeric_t *nf = &ev->numeric[ev->n_numeric];
                if ((err = rs_str_copy(nf->name, sizeof(nf->name), key, klen,
                                       key, errstr, es)) ||
                    (err = jd_double(v, key, &nf->value, JD_BOOL, NULL,
                                     errstr, es)))
                    break;
                ev->n_numeric++;
            } else if (json_is_string(v) && ev->n_categ < RS_MAX_CATEG) {
                rs_categ_t *cf = &ev->categ[ev->n_categ];
                if ((err = rs_str_copy(cf->name, sizeof(cf->name), key, klen,
                                       key, errstr, es)) ||
                    (err = jd_str(v, key, cf->value, sizeof(cf->value), 0,
                                  errstr, es)))
                    break;
                ev->n_categ++;
            }
            continue;
        }
        found |= roles;
        if ((roles & (1u << RS_COL_ID)) &&
            (err = jd_str(v, key, ev->id, sizeof(ev->id), JD_INT_OK, errstr,
                          es)))
            break;
        if ((roles & (1u << RS_COL_TYPE)) &&
            (err = jd_str(v, key, ev->type, sizeof(ev->type), 0, errstr,
                          es)))
            break;
        if ((roles & (1u << RS_COL_ENTITY)) &&
            (err = jd_str(v, key, ev->entity_id, sizeof(ev->entity_id),
                          JD_INT_OK, errstr, es)))
            break;
        if ((roles & (1u << RS_COL_CPTY)) &&
            (err = jd_str(v, key, ev->counterparty_id,
                          sizeof(ev->counterparty_id), JD_INT_OK, errstr,
                          es)))
            break;
        if ((roles & (1u << RS_COL_TIME)) &&
            (err = jd_foreign_time(v, key, &ev->event_time_ms, errstr, es)))
            break;
        if ((roles & (1u << RS_COL_AMOUNT)) &&
            (err = jd_double(v, key, &ev->amount, JD_STR_OK, NULL, errstr,
                             es)))
            break;
        if (roles & (1u << RS_COL_LABEL)) {
            double lv;
            if (json_is_string(v)) {
                if (rs_label_parse(json_string_value(v),
                                   json_string_length(v), &lv) != 0) {
                    err = rs_errf(errstr, es, RS_ERR_INVALID,
                                  "field '%s' (label): expected a number in "
                                  "[0,1] or true/false", key);
                    break;
                }
            } else if ((err = jd_double(v, key, &lv, JD_BOOL, NULL, errstr,
                                        es))) {
                break;
            } else if (!(lv >= 0 && lv <= 1)) {
                err = rs_errf(errstr, es, RS_ERR_INVALID,
                              "field '%s' (label): %g is outside [0,1]", key,
                              lv);
                break;
            }
            if (label_out) *label_out = lv;
            if (has_label) *has_label = 1;
        }
    }
    json_decref(root);
    if (err) return err;

    static const struct { int role; const char *name; } req[] = {
        { RS_COL_ID, "id" }, { RS_COL_ENTITY, "entity" },
        { RS_COL_TIME, "time" },
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(req); i++) {
        if (found & (1u << req[i].role)) continue;
        const char *col = req[i].role == RS_COL_ID       ? map->id
                          : req[i].role == RS_COL_ENTITY ? map->entity
                                                         : map->time;
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%.*s' (%s): missing", RS_NAME_MAX, col,
                       req[i].name);
    }
    if (!ev->type[0]) rs_strlcpy(ev->type, "event", sizeof(ev->type));
    return rs_event_validate(ev, errstr, es);
}

/* ================================================================ encoding */

/* A bounded writer: appends until the buffer (minus the NUL) is full,
 * then only records the overflow. */
typedef struct jw_s {
    char *buf;
    size_t size, len;
    int full;
} jw_t;

static inline void jw_raw(jw_t *w, const char *s, size_t n) {
    if (w->full) return;
    if (w->len + n >= w->size) {
        w->full = 1;
        return;
    }
    char *d = w->buf + w->len;
    if (n <= 16) {
        /* most pieces (numbers, ids, keys) are short: two overlapping
         * fixed-size moves instead of a library call */
        if (n >= 8) {
            uint64_t a, b;
            memcpy(&a, s, 8);
            memcpy(&b, s + n - 8, 8);
            memcpy(d, &a, 8);
            memcpy(d + n - 8, &b, 8);
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, s, 4);
            memcpy(&b, s + n - 4, 4);
            memcpy(d, &a, 4);
            memcpy(d + n - 4, &b, 4);
        } else if (n) {
            d[0] = s[0];
            d[n / 2] = s[n / 2];
            d[n - 1] = s[n - 1];
        }
    } else {
        memcpy(d, s, n);
    }
    w->len += n;
}

#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

/* 0x80 in each byte of the result whose byte in x (8 string bytes,
 * little endian) needs a look: a control character (NUL, the end, among
 * them), '"', '\\' or a byte >= 0x80.  Exact for the lowest such byte
 * (a borrow can only make a false hit above a true one), which is all
 * jw_str uses. */
static inline uint64_t jw_special8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, high = ones << 7;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) |
            ((b - ones) & ~b) | x) & high;
}

static inline int jw_special1(unsigned c) {
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* A JSON string from a C buffer of capacity cap (never reads past it):
 * one pass that finds the end (NUL or cap) and the bytes to escape
 * together, 8 bytes at a time, and copies the plain runs between them.
 * Bytes after the NUL (inside the buffer) may be read but never decide
 * anything: only the first special byte of a word is used. */
static void jw_str(jw_t *w, const char *s, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = 0;
    char esc[8];

    JW_LIT(w, "\"");
    for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; i + 8 <= cap; i += 8) {
            uint64_t x, m;
            memcpy(&x, u + i, sizeof(x));
            if ((m = jw_special8(x)) != 0) {
                i += (size_t)__builtin_ctzll(m) >> 3;
                break;
            }
        }
#endif
        while (i < cap && !jw_special1(u[i])) i++;
        if (i >= cap || u[i] == 0) break; /* the end */
        unsigned c = u[i];
        const char *rep;
        size_t replen = 2;
        if (c >= 0x80) {
            /* a continuation byte is never NUL, so a sequence checked
             * against the capacity is the one checked against the end */
            size_t k = rs_utf8_seq_len(u + i, cap - i);
            if (k) { i += k; continue; }
            rep = "\\ufffd";
            replen = 6;
        } else {
            switch (c) {
            case '"':  rep = "\\\""; break;
            case '\\': rep = "\\\\"; break;
            case '\n': rep = "\\n"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            case '\b': rep = "\\b"; break;
            case '\f': rep = "\\f"; break;
            default: /* \u00XX, lower-case hex */
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                rep = esc;
                replen = 6;
                break;
            }
        }
        jw_raw(w, s + start, i - start);
        jw_raw(w, rep, replen);
        start = ++i;
    }
    jw_raw(w, s + start, i - start);
    JW_LIT(w, "\"");
}

/* null, or "-0.0" for a negative zero: "-0.0" keeps the sign through
 * jansson (which reads "-0" as the integer 0).  1 if written. */
static int jw_num_special(jw_t *w, double v) {
    if (!isfinite(v)) {
        JW_LIT(w, "null");
        return 1;
    }
    if (v == 0) {
        if (signbit(v)) JW_LIT(w, "-0.0");
        else JW_LIT(w, "0");
        return 1;
    }
    return 0;
}

/* The shortest text that reads back as the same double (common/fmt.h). */
static void jw_double(jw_t *w, double v) {
    char tmp[RS_FMT_F64_MAX];
    if (jw_num_special(w, v)) return;
    jw_raw(w, tmp, (size_t)rs_fmt_f64(v, tmp));
}

/* A value the model computed in float32 (score, weights, contributions):
 * the shortest text that reads back as the same float32 ("0.12345679"
 * rather than "0.12345679104328156"); a double that is not a float32
 * value is written as a double. */
static void jw_f32(jw_t *w, double v) {
    char tmp[RS_FMT_F32_MAX];
    if (jw_num_special(w, v)) return;
    float f = fabs(v) < RS_F32_LIMIT ? (float)v : 0;
    if ((double)f != v) {
        jw_double(w, v);
        return;
    }
    jw_raw(w, tmp, (size_t)rs_fmt_f32(f, tmp));
}

static void jw_i64(jw_t *w, int64_t v) {
    char tmp[RS_FMT_I64_MAX];
    jw_raw(w, tmp, (size_t)rs_fmt_i64(v, tmp));
}

static void jw_u32(jw_t *w, uint32_t v) {
    char tmp[RS_FMT_I64_MAX];
    jw_raw(w, tmp, (size_t)rs_fmt_u64(v, tmp));
}

static int jw_finish(jw_t *w) {
    if (w->size) w->buf[w->len] = '\0';
    return w->full ? -1 : (int)w->len;
}

static int jw_bad_count(int n, int max) { return n < 0 || n > max; }

int rs_event_to_json(const rs_event_t *ev, char *buf, size_t size) {
    jw_t w = { buf, size, 0, 0 };
    if (!ev || !buf || jw_bad_count(ev->n_numeric, RS_MAX_NUMERIC) ||
        jw_bad_count(ev->n_categ, RS_MAX_CATEG))
        return -1;
    JW_LIT(&w, "{\"id\":");
    jw_str(&w, ev->id, sizeof(ev->id));
    JW_LIT(&w, ",\"type\":");
    jw_str(&w, ev->type, sizeof(ev->type));
    JW_LIT(&w, ",\"entity_id\":");
    jw_str(&w, ev->entity_id, sizeof(ev->entity_id));
    JW_LIT(&w, ",\"counterparty_id\":");
    jw_str(&w, ev->counterparty_id, sizeof(ev->counterparty_id));
    JW_LIT(&w, ",\"event_time_ms\":");
    jw_i64(&w, ev->event_time_ms);
    JW_LIT(&w, ",\"amount\":");
    jw_double(&w, ev->amount);
    JW_LIT(&w, ",\"numeric_fields\":[");
    for (int i = 0; i < ev->n_numeric; i++) {
        if (i) JW_LIT(&w, ",");
        JW_LIT(&w, "{\"name\":");
        jw_str(&w, ev->numeric[i].name, sizeof(ev->numeric[i].name));
        JW_LIT(&w, ",\"value\":");
        jw_double(&w, ev->numeric[i].value);
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"categorical_fields\":[");
    for (int i = 0; i < ev->n_categ; i++) {
        if (i) JW_LIT(&w, ",");
        JW_LIT(&w, "{\"name\":");
        jw_str(&w, ev->categ[i].name, sizeof(ev->categ[i].name));
        JW_LIT(&w, ",\"value\":");
        jw_str(&w, ev->categ[i].value, sizeof(ev->categ[i].value));
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"schema_version\":");
    jw_u32(&w, RS_SCHEMA_VERSION);
    JW_LIT(&w, "}");
    return jw_finish(&w);
}

int rs_label_to_json(const rs_label_t *lb, char *buf, size_t size) {
    jw_t w = { buf, size, 0, 0 };
    if (!lb || !buf) return -1;
    JW_LIT(&w, "{\"event_id\":");
    jw_str(&w, lb->event_id, sizeof(lb->event_id));
    JW_LIT(&w, ",\"entity_id\":");
    jw_str(&w, lb->entity_id, sizeof(lb->entity_id));
    JW_LIT(&w, ",\"value\":");
    jw_double(&w, lb->value);
    JW_LIT(&w, ",\"label_time_ms\":");
    jw_i64(&w, lb->label_time_ms);
    JW_LIT(&w, ",\"schema_version\":");
    jw_u32(&w, RS_SCHEMA_VERSION);
    JW_LIT(&w, "}");
    return jw_finish(&w);
}

/* ,"event":{...} -- only when the score carries the event's fields. */
static void jw_event_fields(jw_t *w, const rs_event_fields_t *ef) {
    if (!ef->present) return;
    JW_LIT(w, ",\"event\":{\"type\":");
    jw_str(w, ef->type, sizeof(ef->type));
    JW_LIT(w, ",\"counterparty_id\":");
    jw_str(w, ef->counterparty_id, sizeof(ef->counterparty_id));
    JW_LIT(w, ",\"amount\":");
    jw_double(w, ef->amount);
    JW_LIT(w, ",\"numeric_fields\":[");
    for (int i = 0; i < ef->n_numeric; i++) {
        if (i) JW_LIT(w, ",");
        JW_LIT(w, "{\"name\":");
        jw_str(w, ef->numeric[i].name, sizeof(ef->numeric[i].name));
        JW_LIT(w, ",\"value\":");
        jw_double(w, ef->numeric[i].value);
        JW_LIT(w, "}");
    }
    JW_LIT(w, "],\"categorical_fields\":[");
    for (int i = 0; i < ef->n_categ; i++) {
        if (i) JW_LIT(w, ",");
        JW_LIT(w, "{\"name\":");
        jw_str(w, ef->categ[i].name, sizeof(ef->categ[i].name));
        JW_LIT(w, ",\"value\":");
        jw_str(w, ef->categ[i].value, sizeof(ef->categ[i].value));
        JW_LIT(w, "}");
    }
    JW_LIT(w, "]}");
}

int rs_score_to_json(const rs_score_t *sc, char *buf, size_t size) {
    jw_t w = { buf, size, 0, 0 };
    const rs_explanation_t *ex;
    if (!sc || !buf) return -1;
    ex = &sc->explanation;
    if (jw_bad_count(ex->n_attended, RS_MAX_ATTEND) ||
        jw_bad_count(ex->n_contrib, RS_MAX_CONTRIB) ||
        jw_bad_count(ex->n_experts, RS_MAX_EXPERTS) ||
        jw_bad_count(ex->n_reasons, RS_MAX_REASONS) ||
        (sc->event.present &&
         (jw_bad_count(sc->event.n_numeric, RS_MAX_NUMERIC) ||
          jw_bad_count(sc->event.n_categ, RS_MAX_CATEG))))
        return -1;
    JW_LIT(&w, "{\"event_id\":");
    jw_str(&w, sc->event_id, sizeof(sc->event_id));
    JW_LIT(&w, ",\"entity_id\":");
    jw_str(&w, sc->entity_id, sizeof(sc->entity_id));
    JW_LIT(&w, ",\"score\":");
    jw_f32(&w, sc->score);
    JW_LIT(&w, ",\"decision\":\"");
    jw_raw(&w, rs_decision_str(sc->decision),
           strlen(rs_decision_str(sc->decision)));
    JW_LIT(&w, "\",\"model_version\":");
    jw_str(&w, sc->model_version, sizeof(sc->model_version));
    JW_LIT(&w, ",\"event_time_ms\":");
    jw_i64(&w, sc->event_time_ms);
    JW_LIT(&w, ",\"scored_at_ms\":");
    jw_i64(&w, sc->scored_at_ms);
    JW_LIT(&w, ",\"latency_us\":");
    jw_i64(&w, sc->latency_us);

    JW_LIT(&w, ",\"explanation\":{\"attended_events\":[");
    for (int i = 0; i < ex->n_attended; i++) {
        const rs_attended_t *at = &ex->attended[i];
        if (i) JW_LIT(&w, ",");
        JW_LIT(&w, "{\"event_id\":");
        jw_str(&w, at->event_id, sizeof(at->event_id));
        JW_LIT(&w, ",\"event_time_ms\":");
        jw_i64(&w, at->event_time_ms);
        JW_LIT(&w, ",\"amount\":");
        jw_f32(&w, at->amount);
        JW_LIT(&w, ",\"counterparty_id\":");
        jw_str(&w, at->counterparty_id, sizeof(at->counterparty_id));
        JW_LIT(&w, ",\"weight\":");
        jw_f32(&w, at->weight);
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"feature_contributions\":[");
    for (int i = 0; i < ex->n_contrib; i++) {
        const rs_contrib_t *fc = &ex->contrib[i];
        if (i) JW_LIT(&w, ",");
        JW_LIT(&w, "{\"name\":");
        jw_str(&w, fc->name, sizeof(fc->name));
        JW_LIT(&w, ",\"value\":");
        jw_f32(&w, fc->value);
        JW_LIT(&w, ",\"contribution\":");
        jw_f32(&w, fc->contribution);
        JW_LIT(&w, ",\"text\":");
        jw_str(&w, fc->text, sizeof(fc->text));
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"experts\":[");
    for (int i = 0; i < ex->n_experts; i++) {
        if (i) JW_LIT(&w, ",");
        JW_LIT(&w, "{\"expert\":");
        jw_u32(&w, ex->experts[i].expert);
        JW_LIT(&w, ",\"gate_weight\":");
        jw_f32(&w, ex->experts[i].gate_weight);
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"reasons\":[");
    for (int i = 0; i < ex->n_reasons; i++) {
        if (i) JW_LIT(&w, ",");
        jw_str(&w, ex->reasons[i], sizeof(ex->reasons[i]));
    }
    JW_LIT(&w, "]},\"flags\":");
    jw_u32(&w, sc->flags);
    if (sc->rul > 0) { /* written only when there is an estimate */
        JW_LIT(&w, ",\"rul\":");
        jw_i64(&w, sc->rul);
    }
    if (sc->alert_score != 0) { /* written only when the policy decided on
                                 * another score than `score` */
        JW_LIT(&w, ",\"alert_score\":");
        jw_f32(&w, sc->alert_score);
    }
    JW_LIT(&w, ",\"schema_version\":");
    jw_u32(&w, RS_SCHEMA_VERSION);
    jw_event_fields(&w, &sc->event);
    JW_LIT(&w, "}");
    return jw_finish(&w);
}
