/* sink_redis_rec.c -- the compact stored score record (redis.record_format:
 * compact; format in sink.h) and the stored value -> JSON step of every
 * read.  No I/O: bytes in, a record or JSON out (fuzzed:
 * tests/fuzz/fuzz_redis_rec.c).
 *
 * Invariant the readers rely on: for every record `sc` that
 * rs_redis_rec_encode() takes, rs_score_to_json(decode(encode(sc))) gives
 * the very bytes rs_score_to_json(sc) gives -- the JSON the scores topic
 * got.  So every field rs_score_to_json reads is kept exactly: integers as
 * (zigzag) varints, doubles bit for bit (as float32 when that is exact, as
 * in the model's outputs), strings byte for byte (invalid UTF-8 included:
 * the JSON encoder replaces it the same way on the way out).  What the
 * compact form cannot hold exactly (a string filling its whole buffer
 * without a NUL, a count out of range) it refuses, and the writer stores
 * the JSON instead: a reader takes either. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scoring/sink.h"

/* Every string of rs_score_t is shorter than 256 bytes: one length byte. */
_Static_assert(RS_ID_MAX <= 256 && RS_REASON_MAX <= 256 &&
                   RS_VERSION_MAX <= 256 && RS_NAME_MAX * 2 <= 256 &&
                   RS_CATVAL_MAX <= 256 && RS_TYPE_MAX <= 256,
               "compact record: string length byte");

/* ------------------------------------------------------------------ encode */

/* The writer: a cursor with one bound check per value (the largest value
 * -- a string -- is at most 256 bytes, a number 10: each check asks for
 * that much room; near the end of a too-small buffer the record is
 * refused, which the caller only sees with a buffer under
 * RS_REDIS_REC_MAX). */
typedef struct rs_rec_w_s {
    uint8_t *p, *end; /* cursor, end of the buffer */
    int bad;          /* too small, or a value the form does not take */
} rs_rec_w_t;

static inline int rw_room(rs_rec_w_t *w, size_t n) {
    if (w->bad || (size_t)(w->end - w->p) < n) {
        w->bad = 1;
        return 0;
    }
    return 1;
}

static inline void rw_u8(rs_rec_w_t *w, unsigned v) {
    if (rw_room(w, 1)) *w->p++ = (uint8_t)v;
}

static inline void rw_varint(rs_rec_w_t *w, uint64_t v) {
    if (!rw_room(w, 10)) return;
    while (v >= 0x80) {
        *w->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w->p++ = (uint8_t)v;
}

/* zigzag: small magnitudes of either sign in few bytes */
static inline void rw_i64(rs_rec_w_t *w, int64_t v) {
    uint64_t u = (uint64_t)v;
    rw_varint(w, (u << 1) ^ (uint64_t)-(int64_t)(u >> 63));
}

/* a - b without signed overflow (wraps; rr_add undoes it) */
static inline int64_t rs_rec_sub(int64_t a, int64_t b) {
    uint64_t d = (uint64_t)a - (uint64_t)b;
    int64_t r;
    memcpy(&r, &d, sizeof(r));
    return r;
}

static inline void rw_str(rs_rec_w_t *w, const char *s, size_t cap) {
    size_t n = strnlen(s, cap);
    if (n == cap) { /* no NUL: refused (the JSON is stored instead) */
        w->bad = 1;
        return;
    }
    if (!rw_room(w, 1 + n)) return;
    *w->p++ = (uint8_t)n;
    memcpy(w->p, s, n);
    w->p += n;
}

/* Tag 0: +0.0; 1: a float32 that converts back to the same bits; 2: the
 * 8 bytes of the double (little endian, as the float32's 4). */
static inline void rw_dbl(rs_rec_w_t *w, double v) {
    uint64_t bits;
    if (!rw_room(w, 9)) return;
    memcpy(&bits, &v, sizeof(bits));
    if (bits == 0) {
        *w->p++ = 0;
        return;
    }
    if (fabs(v) <= FLT_MAX) { /* finite and in float range (NaN: false) */
        float f = (float)v;
        double back = (double)f;
        uint64_t bb;
        memcpy(&bb, &back, sizeof(bb));
        if (bb == bits) {
            uint32_t fb;
            memcpy(&fb, &f, sizeof(fb));
            w->p[0] = 1;
            w->p[1] = (uint8_t)fb;
            w->p[2] = (uint8_t)(fb >> 8);
            w->p[3] = (uint8_t)(fb >> 16);
            w->p[4] = (uint8_t)(fb >> 24);
            w->p += 5;
            return;
        }
    }
    *w->p++ = 2;
    for (int i = 0; i < 8; i++) *w->p++ = (uint8_t)(bits >> (8 * i));
}

static inline void rw_count(rs_rec_w_t *w, int n, int max) {
    if (n < 0 || n > max) w->bad = 1;
    else rw_u8(w, (unsigned)n);
}

int rs_redis_rec_encode(const rs_score_t *sc, uint8_t *buf, size_t size) {
    rs_rec_w_t w = {buf, buf + size, 0};
    const rs_explanation_t *ex = &sc->explanation;
    rw_u8(&w, RS_REDIS_REC_MAGIC);
    rw_str(&w, sc->event_id, sizeof(sc->event_id));
    rw_str(&w, sc->entity_id, sizeof(sc->entity_id));
    rw_dbl(&w, sc->score);
    if ((int)sc->decision < 0 || (int)sc->decision > RS_DECISION_ALERT)
        w.bad = 1;
    rw_i64(&w, (int64_t)sc->decision);
    rw_str(&w, sc->model_version, sizeof(sc->model_version));
    rw_i64(&w, sc->event_time_ms);
    rw_i64(&w, rs_rec_sub(sc->scored_at_ms, sc->event_time_ms));
    rw_i64(&w, sc->latency_us);
    rw_varint(&w, sc->flags);
    rw_i64(&w, sc->rul);
    rw_dbl(&w, sc->alert_score);

    rw_count(&w, ex->n_attended, RS_MAX_ATTEND);
    for (int i = 0; !w.bad && i < ex->n_attended; i++) {
        const rs_attended_t *at = &ex->attended[i];
        rw_str(&w, at->event_id, sizeof(at->event_id));
        rw_i64(&w, rs_rec_sub(at->event_time_ms, sc->event_time_ms));
        rw_dbl(&w, at->amount);
        rw_str(&w, at->counterparty_id, sizeof(at->counterparty_id));
        rw_dbl(&w, at->weight);
    }
    rw_count(&w, ex->n_contrib, RS_MAX_CONTRIB);
    for (int i = 0; !w.bad && i < ex->n_contrib; i++) {
        const rs_contrib_t *fc = &ex->contrib[i];
        rw_str(&w, fc->name, sizeof(fc->name));
        rw_dbl(&w, fc->value);
        rw_dbl(&w, fc->contribution);
        rw_str(&w, fc->text, sizeof(fc->text));
    }
    rw_count(&w, ex->n_experts, RS_MAX_EXPERTS);
    for (int i = 0; !w.bad && i < ex->n_experts; i++) {
        rw_varint(&w, ex->experts[i].expert);
        rw_dbl(&w, ex->experts[i].gate_weight);
    }
    rw_count(&w, ex->n_reasons, RS_MAX_REASONS);
    for (int i = 0; !w.bad && i < ex->n_reasons; i++)
        rw_str(&w, ex->reasons[i], sizeof(ex->reasons[i]));

    const rs_event_fields_t *ef = &sc->event;
    rw_u8(&w, ef->present ? 1 : 0);
    if (ef->present) {
        rw_str(&w, ef->type, sizeof(ef->type));
        rw_str(&w, ef->counterparty_id, sizeof(ef->counterparty_id));
        rw_dbl(&w, ef->amount);
        rw_count(&w, ef->n_numeric, RS_MAX_NUMERIC);
        for (int i = 0; !w.bad && i < ef->n_numeric; i++) {
            rw_str(&w, ef->numeric[i].name, sizeof(ef->numeric[i].name));
            rw_dbl(&w, ef->numeric[i].value);
        }
        rw_count(&w, ef->n_categ, RS_MAX_CATEG);
        for (int i = 0; !w.bad && i < ef->n_categ; i++) {
            rw_str(&w, ef->categ[i].name, sizeof(ef->categ[i].name));
            rw_str(&w, ef->categ[i].value, sizeof(ef->categ[i].value));
        }
    }
    return w.bad ? -1 : (int)(w.p - buf);
}

/* ------------------------------------------------------------------ decode */

typedef struct rs_rec_r_s {
    const uint8_t *p; /* [len] */
    size_t len, pos;
    const char *bad;  /* first problem, or NULL */
} rs_rec_r_t;

static int rr_need(rs_rec_r_t *r, size_t n, const char *what) {
    if (r->bad) return 0;
    if (n > r->len - r->pos) {
        r->bad = what;
        return 0;
    }
    return 1;
}

static unsigned rr_u8(rs_rec_r_t *r, const char *what) {
    if (!rr_need(r, 1, what)) return 0;
    return r->p[r->pos++];
}

static uint64_t rr_varint(rs_rec_r_t *r, const char *what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (!rr_need(r, 1, what)) return 0;
        uint8_t b = r->p[r->pos++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = what; /* more than 10 bytes */
    return 0;
}

static int64_t rr_i64(rs_rec_r_t *r, const char *what) {
    uint64_t u = rr_varint(r, what), d = (u >> 1) ^ (uint64_t)-(int64_t)(u & 1);
    int64_t v;
    memcpy(&v, &d, sizeof(v));
    return v;
}

static int64_t rr_add(int64_t a, int64_t b) {
    uint64_t s = (uint64_t)a + (uint64_t)b;
    int64_t v;
    memcpy(&v, &s, sizeof(v));
    return v;
}

static void rr_str(rs_rec_r_t *r, char *dst, size_t cap, const char *what) {
    size_t n = rr_u8(r, what);
    dst[0] = '\0';
    if (r->bad) return;
    if (n >= cap) {
        r->bad = what;
        return;
    }
    if (!rr_need(r, n, what)) return;
    memcpy(dst, r->p + r->pos, n);
    dst[n] = '\0';
    r->pos += n;
}

static double rr_dbl(rs_rec_r_t *r, const char *what) {
    unsigned tag = rr_u8(r, what);
    if (r->bad) return 0;
    if (tag == 0) return 0.0;
    if (tag == 1 && rr_need(r, 4, what)) {
        const uint8_t *b = r->p + r->pos;
        uint32_t fb = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                      (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float f;
        memcpy(&f, &fb, sizeof(f));
        r->pos += 4;
        return (double)f;
    }
    if (tag == 2 && rr_need(r, 8, what)) {
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++)
            bits |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
        double v;
        memcpy(&v, &bits, sizeof(v));
        r->pos += 8;
        return v;
    }
    if (!r->bad) r->bad = what;
    return 0;
}

static int rr_count(rs_rec_r_t *r, int max, const char *what) {
    int n = (int)rr_u8(r, what);
    if (!r->bad && n > max) r->bad = what;
    return r->bad ? 0 : n;
}

rs_err_t rs_redis_rec_decode(const uint8_t *buf, size_t len, rs_score_t *sc,
                             char *errstr, size_t errstr_size) {
    rs_rec_r_t r = {buf, len, 0, NULL};
    rs_explanation_t *ex = &sc->explanation;
    memset(sc, 0, sizeof(*sc));
    if (rr_u8(&r, "magic") != RS_REDIS_REC_MAGIC && !r.bad) r.bad = "magic";
    rr_str(&r, sc->event_id, sizeof(sc->event_id), "event_id");
    rr_str(&r, sc->entity_id, sizeof(sc->entity_id), "entity_id");
    sc->score = rr_dbl(&r, "score");
    int64_t dec = rr_i64(&r, "decision");
    if (!r.bad && (dec < 0 || dec > RS_DECISION_ALERT)) r.bad = "decision";
    sc->decision = (rs_decision_t)(r.bad ? 0 : dec);
    rr_str(&r, sc->model_version, sizeof(sc->model_version), "model_version");
    sc->event_time_ms = rr_i64(&r, "event_time_ms");
    sc->scored_at_ms = rr_add(sc->event_time_ms, rr_i64(&r, "scored_at_ms"));
    sc->latency_us = rr_i64(&r, "latency_us");
    uint64_t flags = rr_varint(&r, "flags");
    if (!r.bad && flags > UINT32_MAX) r.bad = "flags";
    sc->flags = (uint32_t)flags;
    sc->rul = rr_i64(&r, "rul");
    sc->alert_score = rr_dbl(&r, "alert_score");

    ex->n_attended = rr_count(&r, RS_MAX_ATTEND, "attended_events");
    for (int i = 0; !r.bad && i < ex->n_attended; i++) {
        rs_attended_t *at = &ex->attended[i];
        rr_str(&r, at->event_id, sizeof(at->event_id), "attended_events");
        at->event_time_ms =
            rr_add(sc->event_time_ms, rr_i64(&r, "attended_events"));
        at->amount = rr_dbl(&r, "attended_events");
        rr_str(&r, at->counterparty_id, sizeof(at->counterparty_id),
               "attended_events");
        at->weight = rr_dbl(&r, "attended_events");
    }
    ex->n_contrib = rr_count(&r, RS_MAX_CONTRIB, "feature_contributions");
    for (int i = 0; !r.bad && i < ex->n_contrib; i++) {
        rs_contrib_t *fc = &ex->contrib[i];
        rr_str(&r, fc->name, sizeof(fc->name), "feature_contributions");
        fc->value = rr_dbl(&r, "feature_contributions");
        fc->contribution = rr_dbl(&r, "feature_contributions");
        rr_str(&r, fc->text, sizeof(fc->text), "feature_contributions");
    }
    ex->n_experts = rr_count(&r, RS_MAX_EXPERTS, "experts");
    for (int i = 0; !r.bad && i < ex->n_experts; i++) {
        uint64_t e = rr_varint(&r, "experts");
        if (!r.bad && e > UINT32_MAX) r.bad = "experts";
        ex->experts[i].expert = (uint32_t)e;
        ex->experts[i].gate_weight = rr_dbl(&r, "experts");
    }
    ex->n_reasons = rr_count(&r, RS_MAX_REASONS, "reasons");
    for (int i = 0; !r.bad && i < ex->n_reasons; i++)
        rr_str(&r, ex->reasons[i], sizeof(ex->reasons[i]), "reasons");

    rs_event_fields_t *ef = &sc->event;
    unsigned present = rr_u8(&r, "event");
    if (!r.bad && present > 1) r.bad = "event";
    if (!r.bad && present) {
        ef->present = 1;
        rr_str(&r, ef->type, sizeof(ef->type), "event.type");
        rr_str(&r, ef->counterparty_id, sizeof(ef->counterparty_id),
               "event.counterparty_id");
        ef->amount = rr_dbl(&r, "event.amount");
        ef->n_numeric = rr_count(&r, RS_MAX_NUMERIC, "event.numeric_fields");
        for (int i = 0; !r.bad && i < ef->n_numeric; i++) {
            rr_str(&r, ef->numeric[i].name, sizeof(ef->numeric[i].name),
                   "event.numeric_fields");
            ef->numeric[i].value = rr_dbl(&r, "event.numeric_fields");
        }
        ef->n_categ = rr_count(&r, RS_MAX_CATEG, "event.categorical_fields");
        for (int i = 0; !r.bad && i < ef->n_categ; i++) {
            rr_str(&r, ef->categ[i].name, sizeof(ef->categ[i].name),
                   "event.categorical_fields");
            rr_str(&r, ef->categ[i].value, sizeof(ef->categ[i].value),
                   "event.categorical_fields");
        }
    }
    if (!r.bad && r.pos != r.len) r.bad = "trailing bytes";
    if (r.bad) {
        memset(sc, 0, sizeof(*sc));
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "compact score record: bad or truncated field '%s' "
                       "(at byte %zu of %zu)", r.bad, r.pos, len);
    }
    return RS_OK;
}

/* ------------------------------------------------------- stored -> JSON */

rs_err_t rs_redis_rec_json(const void *val, size_t len, rs_score_t *scratch,
                           char *json, size_t size, size_t *json_len,
                           char *errstr, size_t errstr_size) {
    const uint8_t *v = val;
    *json_len = 0;
    if (size) json[0] = '\0';
    if (len == 0 || v[0] != RS_REDIS_REC_MAGIC) { /* JSON: as it is */
        *json_len = len;
        if (len >= size)
            return rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                           "redis: score JSON of %zu bytes does not fit in "
                           "%zu", len, size);
        if (len) memcpy(json, val, len);
        json[len] = '\0';
        return RS_OK;
    }
    rs_score_t *sc = scratch ? scratch : rs_malloc(sizeof(*sc));
    rs_err_t err = rs_redis_rec_decode(v, len, sc, errstr, errstr_size);
    if (err == RS_OK) {
        int n = rs_score_to_json(sc, json, size);
        if (n < 0)
            err = rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                          "redis: score JSON does not fit in %zu bytes",
                          size);
        else
            *json_len = (size_t)n;
    }
    if (!scratch) rs_free(sc);
    return err;
}
