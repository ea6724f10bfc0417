/* encode_ref.c -- the score record encoders as they were at main 5504bda
 * (proto/proto_json.c's JSON writer, scoring/sink_redis_rec.c's compact
 * record writer), frozen: the reference test_encode_ref compares the
 * current, faster encoders with, byte for byte.  Not built into the
 * service.  Only the public names are changed (ref_*). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/fmt.h"
#include "proto/proto.h"
#include "proto/proto_int.h"
#include "scoring/sink.h"
#include "encode_ref.h"

#define RS_F32_LIMIT 0x1.ffffffp127

/* ================================================================ encoding */

/* A bounded writer: appends until the buffer (minus the NUL) is full,
 * then only records the overflow. */
typedef struct jw_s {
    char *buf;
    size_t size, len;
    int full;
} jw_t;

static void jw_raw(jw_t *w, const char *s, size_t n) {
    if (w->full) return;
    if (w->len + n >= w->size) {
        w->full = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

#define JW_LIT(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

/* A JSON string from a C buffer of capacity cap (never reads past it). */
static void jw_str(jw_t *w, const char *s, size_t cap) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strnlen(s, cap), i = 0, start = 0;
    char esc[8];

    JW_LIT(w, "\"");
    while (i < n) {
        unsigned c = u[i];
        const char *rep;
        size_t replen;
        if (c >= 0x80) {
            size_t k = rs_utf8_seq_len(u + i, n - i);
            if (k) { i += k; continue; }
            rep = "\\ufffd";
            replen = 6;
        } else if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        } else {
            switch (c) {
            case '"':  rep = "\\\""; break;
            case '\\': rep = "\\\\"; break;
            case '\n': rep = "\\n"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            case '\b': rep = "\\b"; break;
            case '\f': rep = "\\f"; break;
            default:
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                rep = esc;
                break;
            }
            replen = strlen(rep);
        }
        jw_raw(w, s + start, i - start);
        jw_raw(w, rep, replen);
        start = ++i;
    }
    jw_raw(w, s + start, n - start);
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

int ref_event_to_json(const rs_event_t *ev, char *buf, size_t size) {
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

int ref_label_to_json(const rs_label_t *lb, char *buf, size_t size) {
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

int ref_score_to_json(const rs_score_t *sc, char *buf, size_t size) {
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

int ref_redis_rec_encode(const rs_score_t *sc, uint8_t *buf, size_t size) {
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

