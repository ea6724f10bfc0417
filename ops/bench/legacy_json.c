/* legacy_json.c -- the score-record JSON encoder as it was before common/fmt
 * (proto/proto_json.c at main 1fbc8c5: the encoder of d0d6be6 plus
 * Score.event and the contributions' text, kept verbatim but renamed), so
 * that bench_encode measures old and new side by side in one run, on the
 * same record: doubles via snprintf("%.15g") .. "%.17g" with a strtod
 * check, integers via snprintf.  Not used by the service. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/proto_int.h"

int legacy_score_to_json(const rs_score_t *sc, char *buf, size_t size);

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

static void jw_double(jw_t *w, double v) {
    char tmp[40];
    int n;
    if (!isfinite(v)) {
        JW_LIT(w, "null");
        return;
    }
    if (v == 0) {
        /* "-0.0" keeps the sign through jansson (which reads "-0" as the
         * integer 0). */
        if (signbit(v)) JW_LIT(w, "-0.0");
        else JW_LIT(w, "0");
        return;
    }
    for (int prec = 15;; prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v) break;
    }
    jw_raw(w, tmp, (size_t)n);
}

static void jw_i64(jw_t *w, int64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    jw_raw(w, tmp, (size_t)n);
}

static void jw_u32(jw_t *w, uint32_t v) {
    char tmp[16];
    int n = snprintf(tmp, sizeof(tmp), "%u", v);
    jw_raw(w, tmp, (size_t)n);
}

static int jw_finish(jw_t *w) {
    if (w->size) w->buf[w->len] = '\0';
    return w->full ? -1 : (int)w->len;
}

static int jw_bad_count(int n, int max) { return n < 0 || n > max; }

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

int legacy_score_to_json(const rs_score_t *sc, char *buf, size_t size) {
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
    jw_double(&w, sc->score);
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
        jw_double(&w, at->amount);
        JW_LIT(&w, ",\"counterparty_id\":");
        jw_str(&w, at->counterparty_id, sizeof(at->counterparty_id));
        JW_LIT(&w, ",\"weight\":");
        jw_double(&w, at->weight);
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"feature_contributions\":[");
    for (int i = 0; i < ex->n_contrib; i++) {
        const rs_contrib_t *fc = &ex->contrib[i];
        if (i) JW_LIT(&w, ",");
        JW_LIT(&w, "{\"name\":");
        jw_str(&w, fc->name, sizeof(fc->name));
        JW_LIT(&w, ",\"value\":");
        jw_double(&w, fc->value);
        JW_LIT(&w, ",\"contribution\":");
        jw_double(&w, fc->contribution);
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
        jw_double(&w, ex->experts[i].gate_weight);
        JW_LIT(&w, "}");
    }
    JW_LIT(&w, "],\"reasons\":[");
    for (int i = 0; i < ex->n_reasons; i++) {
        if (i) JW_LIT(&w, ",");
        jw_str(&w, ex->reasons[i], sizeof(ex->reasons[i]));
    }
    JW_LIT(&w, "]},\"flags\":");
    jw_u32(&w, sc->flags);
    JW_LIT(&w, ",\"schema_version\":");
    jw_u32(&w, RS_SCHEMA_VERSION);
    jw_event_fields(&w, &sc->event);
    JW_LIT(&w, "}");
    return jw_finish(&w);
}
