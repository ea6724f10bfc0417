/* proto.c -- validation, lookups and format dispatch for riskstream records.
 *
 * Design: the three codecs (proto_json.c, proto_pb.c, proto_csv.c) only
 * translate bytes to the flat C records; every semantic rule lives in
 * rs_event_validate / rs_label_validate so that a record is judged the same
 * whichever format it came in.  Also home of the small string and number
 * helpers of proto_int.h.
 *
 * Threads: everything here is reentrant and keeps no state.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"
#include "common/fmt.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------- decisions */

static const char *const rs_decision_names[] = {
    "unspecified", "approve", "review", "decline", "alert"
};

const char *rs_decision_str(rs_decision_t d) {
    if ((int)d < 0 || (size_t)d >= RS_ARRAY_LEN(rs_decision_names))
        return "unspecified";
    return rs_decision_names[d];
}

int rs_decision_parse(const char *s) {
    if (!s) return -1;
    /* Also accept the proto enum names ("DECISION_APPROVE"), which is what
     * the canonical proto3 JSON mapping writes. */
    if (strncasecmp(s, "DECISION_", 9) == 0) s += 9;
    for (size_t i = 0; i < RS_ARRAY_LEN(rs_decision_names); i++)
        if (strcasecmp(s, rs_decision_names[i]) == 0) return (int)i;
    return -1;
}

/* ------------------------------------------------------- event fields */

void rs_event_fields_from_event(rs_event_fields_t *ef, const rs_event_t *ev) {
    int nn = RS_MIN(RS_MAX(ev->n_numeric, 0), RS_MAX_NUMERIC),
        nc = RS_MIN(RS_MAX(ev->n_categ, 0), RS_MAX_CATEG);
    ef->present = 1;
    memcpy(ef->type, ev->type, sizeof(ef->type));
    memcpy(ef->counterparty_id, ev->counterparty_id,
           sizeof(ef->counterparty_id));
    ef->amount = ev->amount;
    ef->n_numeric = nn;
    memcpy(ef->numeric, ev->numeric, sizeof(ev->numeric[0]) * (size_t)nn);
    ef->n_categ = nc;
    memcpy(ef->categ, ev->categ, sizeof(ev->categ[0]) * (size_t)nc);
}

/* --------------------------------------------------------------- helpers */

size_t rs_utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;          /* no overlongs   */
        else if (c == 0xED) hi = 0x9F;     /* no surrogates  */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;          /* no overlongs   */
        else if (c == 0xF4) hi = 0x8F;     /* <= U+10FFFF    */
    } else
        return 0;
    if (n < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return need;
}

long rs_utf8_invalid_at(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) { i++; continue; }
        size_t n = rs_utf8_seq_len(u + i, len - i);
        if (!n) return (long)i;
        i += n;
    }
    return -1;
}

long rs_ctrl_at(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return (long)i;
    }
    return -1;
}

int rs_num_parse(const char *s, size_t len, double *out) {
    if (!s || len == 0 || len >= 64) return -1;
    size_t i = 0, digits = 0;
    if (s[i] == '+' || s[i] == '-') i++;
    while (i < len && isdigit((unsigned char)s[i])) { i++; digits++; }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && isdigit((unsigned char)s[i])) { i++; digits++; }
    }
    if (!digits) return -1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t ed = 0;
        while (i < len && isdigit((unsigned char)s[i])) { i++; ed++; }
        if (!ed) return -1;
    }
    if (i != len) return -1;
    double v;   /* strtod's value, without strtod (common/fmt.h) */
    if (rs_parse_f64(s, len, &v) != len || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int rs_nonfinite_word(const char *s, size_t len, int *is_nan) {
    if (len && (s[0] == '+' || s[0] == '-')) { s++; len--; }
    if (len == 3 && strncasecmp(s, "nan", 3) == 0) { *is_nan = 1; return 1; }
    if ((len == 3 && strncasecmp(s, "inf", 3) == 0) ||
        (len == 8 && strncasecmp(s, "infinity", 8) == 0)) {
        *is_nan = 0;
        return 1;
    }
    return 0;
}

rs_err_t rs_str_copy(char *dst, size_t size, const char *s, size_t len,
                     const char *what, char *errstr, size_t errstr_size) {
    dst[0] = '\0';
    if (len >= size)
        return rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                       "field '%s': too long (%zu bytes, max %zu)", what, len,
                       size - 1);
    if (len && memchr(s, '\0', len))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': contains a NUL byte", what);
    memcpy(dst, s, len);
    dst[len] = '\0';
    return RS_OK;
}

rs_err_t rs_str_check(const char *s, size_t size, const char *what,
                      int required, int no_ctrl, char *errstr,
                      size_t errstr_size) {
    /* the usual string in one pass: printable ASCII up to its NUL (valid
     * UTF-8, no control character); anything else takes the checks below */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* 8 bytes a word: 0x80 in each byte < 0x20 or >= 0x7f (exact for the
     * lowest one, which is all that is used) */
    const uint64_t ones = 0x0101010101010101ULL, high = ones << 7;
    for (; i + 8 <= size; i += 8) {
        uint64_t x, m;
        memcpy(&x, u + i, sizeof(x));
        m = (((x - ones * 0x20) & ~x) | x | ((x & ~high) + ones)) & high;
        if (m) {
            i += (size_t)__builtin_ctzll(m) >> 3;
            goto stop;
        }
    }
#endif
    while (i < size && u[i] >= 0x20 && u[i] < 0x7f) i++;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
stop:
#endif
    if (i < size && u[i] == '\0' && (i > 0 || !required)) return RS_OK;
    const char *nul = memchr(s, '\0', size);
    if (!nul)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': not NUL-terminated within %zu bytes",
                       what, size);
    size_t len = (size_t)(nul - s);
    if (required && len == 0)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': missing or empty", what);
    long at = rs_utf8_invalid_at(s, len);
    if (at >= 0)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': invalid UTF-8 at byte %ld", what, at);
    if (no_ctrl && (at = rs_ctrl_at(s, len)) >= 0)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': control character 0x%02x at byte %ld",
                       what, (unsigned char)s[at], at);
    return RS_OK;
}

unsigned rs_map_roles(const rs_csv_map_t *map, const char *name,
                      size_t len) {
    const char *cols[] = {
        [RS_COL_ID] = map->id,         [RS_COL_TYPE] = map->type,
        [RS_COL_ENTITY] = map->entity, [RS_COL_CPTY] = map->counterparty,
        [RS_COL_TIME] = map->time,     [RS_COL_AMOUNT] = map->amount,
        [RS_COL_LABEL] = map->label,
    };
    unsigned roles = 0;
    for (int r = RS_COL_ID; r <= RS_COL_LABEL; r++) {
        const char *c = cols[r];
        size_t clen = strnlen(c, RS_NAME_MAX);
        if (clen && clen == len && memcmp(c, name, len) == 0)
            roles |= 1u << r;
    }
    return roles;
}

int rs_label_parse(const char *s, size_t len, double *out) {
    if (len == 4 && strncasecmp(s, "true", 4) == 0) { *out = 1; return 0; }
    if (len == 5 && strncasecmp(s, "false", 5) == 0) { *out = 0; return 0; }
    double v;
    if (rs_num_parse(s, len, &v) != 0 || v < 0 || v > 1) return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ validation */

/* Time in the accepted window, with a hint for the classic mistake of
 * sending epoch seconds in a milliseconds field. */
static rs_err_t rs_time_check(int64_t ms, const char *what, char *errstr,
                              size_t errstr_size) {
    if (ms == 0)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': missing", what);
    if (ms >= RS_TIME_MIN_MS && ms < RS_TIME_MAX_MS) return RS_OK;
    int secs = ms >= RS_TIME_MIN_MS / 1000 && ms < RS_TIME_MAX_MS / 1000;
    return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                   "field '%s': %lld is outside [2000-01-01, 2100-01-01)%s",
                   what, (long long)ms,
                   secs ? " (epoch seconds? the field is milliseconds)" : "");
}

static rs_err_t rs_finite_check(double v, const char *what, char *errstr,
                                size_t errstr_size) {
    if (isnan(v))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': NaN is not allowed", what);
    if (isinf(v))
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field '%s': infinity is not allowed", what);
    return RS_OK;
}

rs_err_t rs_event_validate(const rs_event_t *ev, char *errstr,
                           size_t errstr_size) {
    rs_err_t err;
    char what[48];

    if (!ev)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID, "no event");
    if ((err = rs_str_check(ev->id, sizeof(ev->id), "id", 1, 1, errstr,
                            errstr_size)) ||
        (err = rs_str_check(ev->type, sizeof(ev->type), "type", 1, 1, errstr,
                            errstr_size)) ||
        (err = rs_str_check(ev->entity_id, sizeof(ev->entity_id),
                            "entity_id", 1, 1, errstr, errstr_size)) ||
        (err = rs_str_check(ev->counterparty_id, sizeof(ev->counterparty_id),
                            "counterparty_id", 0, 1, errstr, errstr_size)) ||
        (err = rs_time_check(ev->event_time_ms, "event_time_ms", errstr,
                             errstr_size)) ||
        (err = rs_finite_check(ev->amount, "amount", errstr, errstr_size)))
        return err;
    if (ev->amount < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field 'amount': negative (%g)", ev->amount);
    /* Features and models compute in float: a larger amount would become
     * infinity there and silently drop out of every sum and mean. */
    if (ev->amount > FLT_MAX)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field 'amount': %g exceeds the float range (%g)",
                       ev->amount, (double)FLT_MAX);

    if (ev->n_numeric < 0 || ev->n_numeric > RS_MAX_NUMERIC)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field 'numeric_fields': %d entries, max %d",
                       ev->n_numeric, RS_MAX_NUMERIC);
    /* The field's name for a message is only formatted on failure (a
     * second, identical check): this runs for every event. */
    for (int i = 0; i < ev->n_numeric; i++) {
        const rs_numeric_t *nf = &ev->numeric[i];
        if (rs_str_check(nf->name, sizeof(nf->name), "", 1, 1, NULL, 0)) {
            snprintf(what, sizeof(what), "numeric_fields[%d].name", i);
            return rs_str_check(nf->name, sizeof(nf->name), what, 1, 1,
                                errstr, errstr_size);
        }
        if (!isfinite(nf->value))
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "field 'numeric_fields[%d].value' (%s): %s is "
                           "not allowed", i, nf->name,
                           isnan(nf->value) ? "NaN" : "infinity");
        if (fabs(nf->value) > FLT_MAX)
            return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                           "field 'numeric_fields[%d].value' (%s): %g "
                           "exceeds the float range (%g)", i, nf->name,
                           nf->value, (double)FLT_MAX);
    }

    if (ev->n_categ < 0 || ev->n_categ > RS_MAX_CATEG)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field 'categorical_fields': %d entries, max %d",
                       ev->n_categ, RS_MAX_CATEG);
    for (int i = 0; i < ev->n_categ; i++) {
        const rs_categ_t *cf = &ev->categ[i];
        if (rs_str_check(cf->name, sizeof(cf->name), "", 1, 1, NULL, 0)) {
            snprintf(what, sizeof(what), "categorical_fields[%d].name", i);
            return rs_str_check(cf->name, sizeof(cf->name), what, 1, 1,
                                errstr, errstr_size);
        }
        /* Values are free text: control characters are escaped in JSON. */
        if (rs_str_check(cf->value, sizeof(cf->value), "", 0, 0, NULL, 0)) {
            snprintf(what, sizeof(what), "categorical_fields[%d].value", i);
            return rs_str_check(cf->value, sizeof(cf->value), what, 0, 0,
                                errstr, errstr_size);
        }
    }
    return RS_OK;
}

rs_err_t rs_label_validate(const rs_label_t *lb, char *errstr,
                           size_t errstr_size) {
    rs_err_t err;
    if (!lb)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID, "no label");
    if ((err = rs_str_check(lb->event_id, sizeof(lb->event_id), "event_id",
                            1, 1, errstr, errstr_size)) ||
        (err = rs_str_check(lb->entity_id, sizeof(lb->entity_id),
                            "entity_id", 1, 1, errstr, errstr_size)) ||
        (err = rs_finite_check(lb->value, "value", errstr, errstr_size)) ||
        (err = rs_time_check(lb->label_time_ms, "label_time_ms", errstr,
                             errstr_size)))
        return err;
    if (lb->value < 0 || lb->value > 1)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "field 'value': %g is outside [0,1]", lb->value);
    return RS_OK;
}

/* --------------------------------------------------------------- lookups */

double rs_event_numeric(const rs_event_t *ev, const char *name) {
    if (!ev || !name) return NAN;
    int n = RS_MIN(RS_MAX(ev->n_numeric, 0), RS_MAX_NUMERIC);
    for (int i = 0; i < n; i++)
        if (strncmp(ev->numeric[i].name, name, RS_NAME_MAX) == 0)
            return ev->numeric[i].value;
    return NAN;
}

const char *rs_event_categ(const rs_event_t *ev, const char *name) {
    if (!ev || !name) return NULL;
    int n = RS_MIN(RS_MAX(ev->n_categ, 0), RS_MAX_CATEG);
    for (int i = 0; i < n; i++)
        if (strncmp(ev->categ[i].name, name, RS_NAME_MAX) == 0)
            return ev->categ[i].value;
    return NULL;
}

/* -------------------------------------------------------------- dispatch */

rs_err_t rs_event_decode(rs_format_t fmt, const void *buf, size_t len,
                         rs_event_t *ev, char *errstr, size_t errstr_size) {
    switch (fmt) {
    case RS_FORMAT_JSON:
        return rs_event_from_json(buf, len, ev, errstr, errstr_size);
    case RS_FORMAT_PROTOBUF:
        return rs_event_from_pb(buf, len, ev, errstr, errstr_size);
    }
    return rs_errf(errstr, errstr_size, RS_ERR_INVALID, "unknown format %d",
                   (int)fmt);
}

rs_err_t rs_label_decode(rs_format_t fmt, const void *buf, size_t len,
                         rs_label_t *lb, char *errstr, size_t errstr_size) {
    switch (fmt) {
    case RS_FORMAT_JSON:
        return rs_label_from_json(buf, len, lb, errstr, errstr_size);
    case RS_FORMAT_PROTOBUF:
        return rs_label_from_pb(buf, len, lb, errstr, errstr_size);
    }
    return rs_errf(errstr, errstr_size, RS_ERR_INVALID, "unknown format %d",
                   (int)fmt);
}

int rs_score_encode(rs_format_t fmt, const rs_score_t *sc, void *buf,
                    size_t size) {
    switch (fmt) {
    case RS_FORMAT_JSON: return rs_score_to_json(sc, buf, size);
    case RS_FORMAT_PROTOBUF: return rs_score_to_pb(sc, buf, size);
    }
    return -1;
}

void rs_enc_arena_init(rs_enc_arena_t *arena, size_t cap) {
    memset(arena, 0, sizeof(*arena));
    if (cap) {
        arena->data = rs_malloc(cap);
        arena->cap = cap;
    }
}

void rs_enc_arena_free(rs_enc_arena_t *arena) {
    if (!arena) return;
    rs_free(arena->data);
    memset(arena, 0, sizeof(*arena));
}

unsigned char *rs_enc_arena_reserve(rs_enc_arena_t *arena, size_t need) {
    if (arena->cap - arena->len < need) {
        size_t cap = arena->cap ? arena->cap : need * 2;
        while (cap - arena->len < need) cap *= 2;
        arena->data = rs_realloc(arena->data, cap);
        arena->cap = cap;
    }
    return arena->data + arena->len;
}

rs_err_t rs_score_encode_append(rs_format_t fmt, const rs_score_t *sc,
                                rs_enc_arena_t *arena, size_t *len) {
    size_t used = arena->len;
    /* Room for any record (RS_ENCODE_MAX) before each: the encoders write
     * into a bounded buffer and never need a second try. */
    unsigned char *at = rs_enc_arena_reserve(arena, RS_ENCODE_MAX);
    int n = rs_score_encode(fmt, sc, at, arena->cap - used);
    if (n < 0) return RS_ERR_TOOBIG;
    *len = (size_t)n;
    arena->len = used + (size_t)n;
    return RS_OK;
}

rs_err_t rs_score_encode_batch(rs_format_t fmt, const rs_score_t *scores,
                               int n, rs_enc_arena_t *arena,
                               const void **out, size_t *out_lens,
                               int *failed) {
    if (failed) *failed = -1;
    arena->len = 0;
    for (int i = 0; i < n; i++)
        if (rs_score_encode_append(fmt, &scores[i], arena, &out_lens[i]) !=
            RS_OK) {
            if (failed) *failed = i;
            arena->len = 0;
            return RS_ERR_TOOBIG;
        }
    /* Pointers only now: the arena may have moved while growing. */
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        out[i] = arena->data + used;
        used += out_lens[i];
    }
    return RS_OK;
}

int rs_event_encode(rs_format_t fmt, const rs_event_t *ev, void *buf,
                    size_t size) {
    switch (fmt) {
    case RS_FORMAT_JSON: return rs_event_to_json(ev, buf, size);
    case RS_FORMAT_PROTOBUF: return rs_event_to_pb(ev, buf, size);
    }
    return -1;
}

int rs_label_encode(rs_format_t fmt, const rs_label_t *lb, void *buf,
                    size_t size) {
    switch (fmt) {
    case RS_FORMAT_JSON: return rs_label_to_json(lb, buf, size);
    case RS_FORMAT_PROTOBUF: return rs_label_to_pb(lb, buf, size);
    }
    return -1;
}
