/* test_proto.c -- unit tests of the proto module (cmocka).
 *
 * Round trips (JSON, protobuf, JSON -> pb -> JSON), every validation error
 * the decoders name, object vs array forms, CSV and foreign JSON through a
 * mapping, encoder buffer bounds, the protobuf arena, and a robustness loop
 * of random mutations / truncations of valid inputs (run it under
 * -DRS_SANITIZE=address,undefined too).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/proto_int.h"

#define T_2024_03_01_12H 1709294400000LL   /* 2024-03-01 12:00:00 UTC */

static char es[256];

/* ---------------------------------------------------------------- helpers */

static void fill_event(rs_event_t *ev) {
    memset(ev, 0, sizeof(*ev));
    strcpy(ev->id, "tx-0001");
    strcpy(ev->type, "card_tx");
    strcpy(ev->entity_id, "card-42");
    strcpy(ev->counterparty_id, "merchant \"Zoë\" \\ 東京 😀");
    ev->event_time_ms = T_2024_03_01_12H + 250;
    ev->amount = 19.99;
    ev->n_numeric = 3;
    strcpy(ev->numeric[0].name, "temperature");
    ev->numeric[0].value = 0.1;
    strcpy(ev->numeric[1].name, "third");
    ev->numeric[1].value = 1.0 / 3.0;
    strcpy(ev->numeric[2].name, "tiny");
    ev->numeric[2].value = 5e-324;
    ev->n_categ = 2;
    strcpy(ev->categ[0].name, "mcc");
    strcpy(ev->categ[0].value, "5411");
    strcpy(ev->categ[1].name, "note");
    strcpy(ev->categ[1].value, "tab\there\nnl\x01\x1f\x7f \"q\" \\b/");
}

static void fill_label(rs_label_t *lb) {
    memset(lb, 0, sizeof(*lb));
    strcpy(lb->event_id, "tx-0001");
    strcpy(lb->entity_id, "card-42");
    lb->value = 1;
    lb->label_time_ms = T_2024_03_01_12H + 86400000LL * 30;
}

static void fill_score(rs_score_t *sc) {
    memset(sc, 0, sizeof(*sc));
    strcpy(sc->event_id, "tx-0001");
    strcpy(sc->entity_id, "card-42");
    /* model outputs are float32 values (docs/schema.md) */
    sc->score = 0.87341234123412341f;
    sc->decision = RS_DECISION_DECLINE;
    strcpy(sc->model_version, "moe-2024.03.01-a1b2c3");
    sc->event_time_ms = T_2024_03_01_12H;
    sc->scored_at_ms = T_2024_03_01_12H + 3;
    sc->latency_us = 2875;
    sc->flags = RS_SCORE_FLAG_LATE;
    rs_explanation_t *ex = &sc->explanation;
    ex->n_attended = 2;
    strcpy(ex->attended[0].event_id, "tx-0000");
    ex->attended[0].event_time_ms = T_2024_03_01_12H - 60000;
    ex->attended[0].amount = 1234.5;
    strcpy(ex->attended[0].counterparty_id, "m-77");
    ex->attended[0].weight = 0.71f;
    strcpy(ex->attended[1].event_id, "tx-ffff");
    ex->attended[1].event_time_ms = T_2024_03_01_12H - 3600000;
    ex->attended[1].amount = 0;
    ex->attended[1].weight = 0.29f;
    ex->n_contrib = 2;
    strcpy(ex->contrib[0].name, "amount_zscore_7d");
    ex->contrib[0].value = 4.2f;
    ex->contrib[0].contribution = 1.37f;
    strcpy(ex->contrib[1].name, "new_merchant");
    ex->contrib[1].value = 1;
    ex->contrib[1].contribution = -0.25;
    ex->n_experts = 2;
    ex->experts[0].expert = 3;
    ex->experts[0].gate_weight = 0.8f;
    ex->experts[1].expert = 7;
    ex->experts[1].gate_weight = 0.2f;
    ex->n_reasons = 2;
    strcpy(ex->reasons[0], "amount 4.2 sd above the card's 7-day mean");
    strcpy(ex->reasons[1], "first purchase at this merchant");
    strcpy(ex->contrib[0].text, "amount 4.2 sd above the card's 7-day mean");
    rs_event_t ev;
    fill_event(&ev);
    rs_event_fields_from_event(&sc->event, &ev);
}

static int dbl_same(double a, double b) {
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void assert_event_eq(const rs_event_t *a, const rs_event_t *b) {
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->type, b->type);
    assert_string_equal(a->entity_id, b->entity_id);
    assert_string_equal(a->counterparty_id, b->counterparty_id);
    assert_int_equal(a->event_time_ms, b->event_time_ms);
    assert_true(dbl_same(a->amount, b->amount));
    assert_int_equal(a->n_numeric, b->n_numeric);
    for (int i = 0; i < a->n_numeric; i++) {
        assert_string_equal(a->numeric[i].name, b->numeric[i].name);
        assert_true(dbl_same(a->numeric[i].value, b->numeric[i].value));
    }
    assert_int_equal(a->n_categ, b->n_categ);
    for (int i = 0; i < a->n_categ; i++) {
        assert_string_equal(a->categ[i].name, b->categ[i].name);
        assert_string_equal(a->categ[i].value, b->categ[i].value);
    }
}

static void assert_score_eq(const rs_score_t *a, const rs_score_t *b) {
    assert_string_equal(a->event_id, b->event_id);
    assert_string_equal(a->entity_id, b->entity_id);
    assert_true(dbl_same(a->score, b->score));
    assert_int_equal(a->decision, b->decision);
    assert_string_equal(a->model_version, b->model_version);
    assert_int_equal(a->event_time_ms, b->event_time_ms);
    assert_int_equal(a->scored_at_ms, b->scored_at_ms);
    assert_int_equal(a->latency_us, b->latency_us);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->rul, b->rul);
    assert_true(dbl_same(a->alert_score, b->alert_score));
    const rs_explanation_t *x = &a->explanation, *y = &b->explanation;
    assert_int_equal(x->n_attended, y->n_attended);
    for (int i = 0; i < x->n_attended; i++) {
        assert_string_equal(x->attended[i].event_id, y->attended[i].event_id);
        assert_int_equal(x->attended[i].event_time_ms,
                         y->attended[i].event_time_ms);
        assert_true(dbl_same(x->attended[i].amount, y->attended[i].amount));
        assert_string_equal(x->attended[i].counterparty_id,
                            y->attended[i].counterparty_id);
        assert_true(dbl_same(x->attended[i].weight, y->attended[i].weight));
    }
    assert_int_equal(x->n_contrib, y->n_contrib);
    for (int i = 0; i < x->n_contrib; i++) {
        assert_string_equal(x->contrib[i].name, y->contrib[i].name);
        assert_true(dbl_same(x->contrib[i].value, y->contrib[i].value));
        assert_true(dbl_same(x->contrib[i].contribution,
                             y->contrib[i].contribution));
        assert_string_equal(x->contrib[i].text, y->contrib[i].text);
    }
    assert_int_equal(x->n_experts, y->n_experts);
    for (int i = 0; i < x->n_experts; i++) {
        assert_int_equal(x->experts[i].expert, y->experts[i].expert);
        assert_true(dbl_same(x->experts[i].gate_weight,
                             y->experts[i].gate_weight));
    }
    assert_int_equal(x->n_reasons, y->n_reasons);
    for (int i = 0; i < x->n_reasons; i++)
        assert_string_equal(x->reasons[i], y->reasons[i]);
    const rs_event_fields_t *e = &a->event, *f = &b->event;
    assert_int_equal(e->present, f->present);
    if (!e->present) return;
    assert_string_equal(e->type, f->type);
    assert_string_equal(e->counterparty_id, f->counterparty_id);
    assert_true(dbl_same(e->amount, f->amount));
    assert_int_equal(e->n_numeric, f->n_numeric);
    for (int i = 0; i < e->n_numeric; i++) {
        assert_string_equal(e->numeric[i].name, f->numeric[i].name);
        assert_true(dbl_same(e->numeric[i].value, f->numeric[i].value));
    }
    assert_int_equal(e->n_categ, f->n_categ);
    for (int i = 0; i < e->n_categ; i++) {
        assert_string_equal(e->categ[i].name, f->categ[i].name);
        assert_string_equal(e->categ[i].value, f->categ[i].value);
    }
}

/* Decode JSON text as an event, expecting `want` and an errstr containing
 * `frag`. */
static void expect_event_err(const char *json, rs_err_t want,
                             const char *frag) {
    rs_event_t ev;
    es[0] = '\0';
    rs_err_t err = rs_event_from_json(json, strlen(json), &ev, es, sizeof(es));
    if (err != want || !strstr(es, frag))
        fail_msg("input %s\n  got %s '%s'\n  want %s '%s'", json,
                 rs_err_str(err), es, rs_err_str(want), frag);
}

static void expect_event_ok(const char *json, rs_event_t *ev) {
    es[0] = '\0';
    rs_err_t err = rs_event_from_json(json, strlen(json), ev, es, sizeof(es));
    if (err) fail_msg("input %s\n  error %s '%s'", json, rs_err_str(err), es);
}

#define EV_HEAD "{\"id\":\"e1\",\"type\":\"card_tx\",\"entity_id\":\"c1\","
#define EV_TIME "\"event_time_ms\":1709294400000"

/* ------------------------------------------------------------- decisions */

static void test_decision(void **state) {
    (void)state;
    assert_string_equal(rs_decision_str(RS_DECISION_APPROVE), "approve");
    assert_string_equal(rs_decision_str(RS_DECISION_REVIEW), "review");
    assert_string_equal(rs_decision_str(RS_DECISION_DECLINE), "decline");
    assert_string_equal(rs_decision_str(RS_DECISION_ALERT), "alert");
    assert_string_equal(rs_decision_str(RS_DECISION_UNSPECIFIED),
                        "unspecified");
    assert_string_equal(rs_decision_str((rs_decision_t)42), "unspecified");
    assert_int_equal(rs_decision_parse("approve"), RS_DECISION_APPROVE);
    assert_int_equal(rs_decision_parse("Decline"), RS_DECISION_DECLINE);
    assert_int_equal(rs_decision_parse("DECISION_ALERT"), RS_DECISION_ALERT);
    assert_int_equal(rs_decision_parse("unspecified"), 0);
    assert_int_equal(rs_decision_parse("maybe"), -1);
    assert_int_equal(rs_decision_parse(""), -1);
    assert_int_equal(rs_decision_parse(NULL), -1);
}

/* ------------------------------------------------------------ round trips */

static void test_event_json_roundtrip(void **state) {
    (void)state;
    rs_event_t ev, back;
    char buf[RS_ENCODE_MAX];
    fill_event(&ev);
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_OK);
    int n = rs_event_to_json(&ev, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((int)strlen(buf), n);
    /* escaping: quote, backslash, control characters; UTF-8 kept raw */
    assert_non_null(strstr(buf, "merchant \\\"Zoë\\\" \\\\ 東京 😀"));
    assert_non_null(
        strstr(buf, "tab\\there\\nnl\\u0001\\u001f\x7f \\\"q\\\" \\\\b/"));
    assert_non_null(strstr(buf, "\"amount\":19.99,"));
    assert_non_null(strstr(buf, "\"value\":0.1}"));
    assert_non_null(strstr(buf, "\"schema_version\":1}"));
    assert_null(strchr(buf, '\n'));
    assert_int_equal(rs_event_from_json(buf, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
    assert_event_eq(&ev, &back);
}

static void test_json_doubles(void **state) {
    (void)state;
    const double vals[] = { 0.1, 1.0 / 3.0, 19.99, 1e-300, 5e-324, DBL_MAX,
                            DBL_MIN, 123456789012345678.0, 1e21, 2.5e-7,
                            0.30000000000000004, 100, 7e22, -0.0 };
    rs_score_t sc, back;
    rs_event_t ev, evb;
    char buf[RS_ENCODE_MAX];
    /* doubles (event fields): bit-exact through the shortest text */
    fill_event(&ev);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        ev.numeric[0].value = vals[i];
        int n = rs_event_to_json(&ev, buf, sizeof(buf));
        assert_true(n > 0);
        rs_err_t de = rs_event_from_json(buf, (size_t)n, &evb, es, sizeof(es));
        if (fabs(vals[i]) > FLT_MAX) {
            /* beyond the float range the features compute in: refused,
             * naming the field (it would drop out of every sum) */
            assert_int_equal(de, RS_ERR_INVALID);
            assert_non_null(strstr(es, "numeric_fields[0].value"));
            continue;
        }
        assert_int_equal(de, RS_OK);
        if (!dbl_same(vals[i], evb.numeric[0].value))
            fail_msg("%.17g -> %s -> %.17g", vals[i], buf,
                     evb.numeric[0].value);
    }
    assert_non_null(strstr(buf, "\"value\":-0.0}"));
    /* float32 fields of the score record: the shortest float32 text, and
     * the same float back; a double that is no float32 is read back
     * rounded to float32 (inside the float range) */
    static const struct { double v; const char *text; double back; } f[] = {
        {0.1f, "\"score\":0.1,", 0.1f},
        {1.0f / 3, "\"score\":0.33333334,", 1.0f / 3},
        {0.87341234123412341f, "\"score\":0.8734124,", 0.87341234123412341f},
        {1e-45f, "\"score\":1e-45,", 1e-45f},
        {FLT_MAX, "\"score\":3.4028235e38,", FLT_MAX},
        {0.1, "\"score\":0.1,", 0.1f},
        {1e300, "\"score\":1e300,", 1e300},
        {-0.0, "\"score\":-0.0,", -0.0},
    };
    memset(&sc, 0, sizeof(sc));
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        sc.score = f[i].v;
        int n = rs_score_to_json(&sc, buf, sizeof(buf));
        assert_true(n > 0);
        if (!strstr(buf, f[i].text)) fail_msg("%.17g -> %s", f[i].v, buf);
        assert_int_equal(rs_score_from_json(buf, (size_t)n, &back, es,
                                            sizeof(es)), RS_OK);
        if (!dbl_same(f[i].back, back.score))
            fail_msg("%.17g -> %s -> %.17g", f[i].v, buf, back.score);
    }
    /* non-finite values are never emitted: null, read back as 0 */
    sc.score = NAN;
    sc.explanation.n_contrib = 1;
    sc.explanation.contrib[0].value = INFINITY;
    sc.explanation.contrib[0].contribution = -INFINITY;
    int n = rs_score_to_json(&sc, buf, sizeof(buf));
    assert_true(n > 0);
    assert_null(strstr(buf, "nan"));
    assert_null(strstr(buf, "inf"));
    assert_non_null(strstr(buf, "\"score\":null"));
    assert_int_equal(rs_score_from_json(buf, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
    assert_true(back.score == 0 && back.explanation.contrib[0].value == 0);
}

static void test_label_json_roundtrip(void **state) {
    (void)state;
    rs_label_t lb, back;
    char buf[512];
    fill_label(&lb);
    strcpy(lb.event_id, "ev\"\\é");
    int n = rs_label_to_json(&lb, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(strstr(buf, "\"event_id\":\"ev\\\"\\\\é\""));
    assert_int_equal(rs_label_from_json(buf, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
    assert_string_equal(back.event_id, lb.event_id);
    assert_string_equal(back.entity_id, lb.entity_id);
    assert_true(dbl_same(back.value, lb.value));
    assert_int_equal(back.label_time_ms, lb.label_time_ms);
}

static void test_score_json_roundtrip(void **state) {
    (void)state;
    rs_score_t sc, back;
    char buf[RS_ENCODE_MAX];
    fill_score(&sc);
    strcpy(sc.explanation.reasons[1], "ctl\x02 \"quoted\" \\ ünï");
    int n = rs_score_to_json(&sc, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(strstr(buf, "\"decision\":\"decline\""));
    assert_non_null(strstr(buf, "ctl\\u0002 \\\"quoted\\\" \\\\ ünï"));
    assert_int_equal(rs_score_from_json(buf, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
    assert_score_eq(&sc, &back);
    /* decision also as integer and as the proto enum name */
    const char *j1 = "{\"decision\":2}", *j2 = "{\"decision\":\"DECISION_ALERT\"}";
    assert_int_equal(rs_score_from_json(j1, strlen(j1), &back, es, sizeof(es)),
                     RS_OK);
    assert_int_equal(back.decision, RS_DECISION_REVIEW);
    assert_int_equal(rs_score_from_json(j2, strlen(j2), &back, es, sizeof(es)),
                     RS_OK);
    assert_int_equal(back.decision, RS_DECISION_ALERT);
    const char *j3 = "{\"decision\":\"maybe\"}", *j4 = "{\"decision\":9}";
    assert_int_equal(rs_score_from_json(j3, strlen(j3), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'decision'"));
    assert_int_equal(rs_score_from_json(j4, strlen(j4), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    const char *j5 = "{\"explanation\":{\"reasons\":[\"a\",\"b\",\"c\",\"d\","
                     "\"e\"]}}";
    assert_int_equal(rs_score_from_json(j5, strlen(j5), &back, es, sizeof(es)),
                     RS_ERR_TOOBIG);
    assert_non_null(strstr(es, "explanation.reasons"));
}

/* A batch encoded into one growing arena: every record as encoded alone,
 * pointers valid after the arena grew; a corrupt record names its index;
 * rs_score_encode_append likewise, one record at a time. */
static void test_encode_batch(void **state) {
    (void)state;
    enum { N = 300 };
    static rs_score_t sc[N];
    static const void *out[N];
    static size_t lens[N];
    char one[RS_ENCODE_MAX];
    rs_enc_arena_t arena;
    int bad;
    rs_enc_arena_init(&arena, 100); /* far too small: grows */
    for (int i = 0; i < N; i++) {
        fill_score(&sc[i]);
        snprintf(sc[i].event_id, sizeof(sc[i].event_id), "tx-%d", i);
        sc[i].score = (float)i / N;
    }
    for (int fmt = 0; fmt < 2; fmt++) {
        assert_int_equal(rs_score_encode_batch((rs_format_t)fmt, sc, N, &arena,
                                               out, lens, &bad), RS_OK);
        assert_int_equal(bad, -1);
        size_t total = 0;
        for (int i = 0; i < N; i++) {
            int n = rs_score_encode((rs_format_t)fmt, &sc[i], one, sizeof(one));
            assert_int_equal((size_t)n, lens[i]);
            assert_memory_equal(out[i], one, lens[i]);
            total += lens[i];
        }
        assert_int_equal(arena.len, total);
        assert_true(arena.cap >= total);
    }
    size_t cap = arena.cap;
    assert_int_equal(rs_score_encode_batch(RS_FORMAT_JSON, sc, N, &arena, out,
                                           lens, NULL), RS_OK);
    assert_int_equal(arena.cap, cap); /* warm: no growth */
    sc[7].explanation.n_contrib = RS_MAX_CONTRIB + 1;
    assert_int_equal(rs_score_encode_batch(RS_FORMAT_JSON, sc, N, &arena, out,
                                           lens, &bad), RS_ERR_TOOBIG);
    assert_int_equal(bad, 7);
    /* rs_score_encode_append: the same bytes back to back after what the
     * arena holds; a record that does not encode changes nothing */
    rs_enc_arena_free(&arena);
    rs_enc_arena_init(&arena, 10);
    size_t pos = 0, len = 0;
    for (int i = 0; i < N; i++) {
        if (i == 7) {
            len = 12345;
            assert_int_equal(rs_score_encode_append(RS_FORMAT_JSON, &sc[i],
                                                    &arena, &len),
                             RS_ERR_TOOBIG);
            assert_int_equal(arena.len, pos);
            assert_int_equal(len, 12345);
            continue;
        }
        assert_int_equal(rs_score_encode_append(RS_FORMAT_JSON, &sc[i],
                                                &arena, &len), RS_OK);
        int n = rs_score_to_json(&sc[i], one, sizeof(one));
        assert_int_equal((size_t)n, len);
        assert_int_equal(arena.len, pos + len);
        assert_memory_equal(arena.data + pos, one, len);
        pos += len;
    }
    rs_enc_arena_free(&arena);
    rs_enc_arena_free(&arena); /* twice: fine */
}

/* rs_str_check (its one-pass path for printable ASCII) against the
 * three checks it stands for: NUL within the buffer, non-empty if
 * required, valid UTF-8, no control character if no_ctrl -- the same code
 * and message for 20000 random buffers of printable ASCII with now and
 * then a control byte, 0x7f, a UTF-8 sequence (valid or not), a missing
 * NUL or an empty string. */
static rs_err_t ref_str_check(const char *s, size_t size, const char *what,
                              int required, int no_ctrl, char *errstr,
                              size_t es) {
    const char *nul = memchr(s, '\0', size);
    if (!nul)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': not NUL-terminated within %zu bytes",
                       what, size);
    size_t len = (size_t)(nul - s);
    if (required && len == 0)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': missing or empty", what);
    long at = rs_utf8_invalid_at(s, len);
    if (at >= 0)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': invalid UTF-8 at byte %ld", what, at);
    if (no_ctrl && (at = rs_ctrl_at(s, len)) >= 0)
        return rs_errf(errstr, es, RS_ERR_INVALID,
                       "field '%s': control character 0x%02x at byte %ld",
                       what, (unsigned char)s[at], at);
    return RS_OK;
}

static void test_str_check(void **state) {
    (void)state;
    static const char *const odd[] = {"\x01", "\x1f", "\x7f", "\xc3\xa9",
                                      "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                      "\xc3", "\xff", "\xed\xa0\x80", "\n"};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char buf[16], e1[128], e2[128];
    int seen_ok = 0, seen_err = 0;
    for (int it = 0; it < 20000; it++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t size = 1 + x % sizeof(buf);
        size_t len = (x >> 8) % (size + 1); /* == size: no NUL */
        for (size_t i = 0; i < size; i++)
            buf[i] = (char)(0x20 + ((x >> (i % 48)) + i * 7) % 95);
        if ((x >> 20) % 4 == 0 && len > 0) { /* an odd byte sequence */
            const char *o = odd[(x >> 24) % (sizeof(odd) / sizeof(odd[0]))];
            size_t at = (x >> 32) % len, ol = strlen(o);
            for (size_t k = 0; k < ol && at + k < len; k++) buf[at + k] = o[k];
        }
        if (len < size) buf[len] = '\0';
        int req = (int)((x >> 40) & 1), noc = (int)((x >> 41) & 1);
        rs_err_t a = rs_str_check(buf, size, "f", req, noc, e1, sizeof(e1));
        rs_err_t b = ref_str_check(buf, size, "f", req, noc, e2, sizeof(e2));
        assert_int_equal(a, b);
        if (a != RS_OK) assert_string_equal(e1, e2);
        seen_ok += a == RS_OK;
        seen_err += a != RS_OK;
    }
    assert_true(seen_ok > 1000 && seen_err > 1000);
}

/* The streaming event/label decoders against the jansson ones they
 * replaced: same error code, and on success the same record, bit for
 * bit.  Duplicate keys (the last wins), escapes in keys and values,
 * object forms with repeated names, nesting, numbers at the edges. */
static void test_json_decoders_agree(void **state) {
    (void)state;
#define H "\"id\":\"a\",\"type\":\"t\",\"entity_id\":\"e\",\"event_time_ms\":1709294400000"
    static const char *const ev[] = {
        "{" H "}",
        "{" H ",\"amount\":1,\"amount\":2.5}",
        "{" H ",\"amount\":\"x\",\"amount\":2}",
        "{\"\\u0069d\":\"esc-key\",\"type\":\"t\",\"entity_id\":\"e\","
        "\"event_time_ms\":1709294400000}",
        "{" H ",\"counterparty_id\":\"caf\\u00e9 \\ud83d\\ude00 \\\" \\n\"}",
        "{" H ",\"counterparty_id\":12345678901234}",
        "{" H ",\"counterparty_id\":1.5}",
        "{" H ",\"numeric_fields\":{\"a\":1,\"b\":\"2.5\",\"a\":3}}",
        "{" H ",\"numeric_fields\":{\"a\":\"NaN\",\"a\":3}}",
        "{" H ",\"numeric_fields\":{\"a\":null}}",
        "{" H ",\"numeric_fields\":[{\"name\":\"x\",\"value\":true,"
        "\"name\":\"y\"},{\"value\":1,\"name\":\"z\",\"junk\":[[{}]]}]}",
        "{" H ",\"numeric_fields\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
        "{" H ",\"numeric_fields\":[{\"name\":\"a\"},2]}",
        "{" H ",\"categorical_fields\":{\"mcc\":5411,\"c\":\"FR\",\"mcc\":\"1\"}}",
        "{" H ",\"categorical_fields\":[{\"name\":\"n\",\"value\":7}]}",
        "{" H ",\"categorical_fields\":[{\"name\":\"n\",\"value\":7.5}]}",
        "{" H ",\"event_time_ms\":\"2024-03-01T12:00:00Z\"}",
        "{" H ",\"event_time_ms\":1.7092944e12}",
        "{" H ",\"event_time_ms\":99999999999999999999}",
        "{" H ",\"amount\":1e400}", "{" H ",\"amount\":1e-400}",
        "{" H ",\"amount\":-0}", "{" H ",\"amount\":-0.0}",
        "{" H ",\"amount\":0123}", "{" H ",\"amount\":.5}",
        "{" H ",\"amount\":\"  5\"}", "{" H ",\"amount\":\"5e3\"}",
        "{" H ",\"schema_version\":2}", "{" H ",\"schema_version\":\"1\"}",
        "{" H ",\"x\":{\"y\":[1,{\"z\":null}],\"w\":\"\\ud800\"}}",
        "{" H ",\"x\":\"\\udc00\"}", "{" H ",\"x\":\"\\u0000\"}",
        "{" H ",}", "{" H "} x", "{" H "}\n ", " {" H "}", "[{" H "}]",
        "{" H ",\"x\":[1,]}", "{" H ",\"x\":tru}", "{" H ",\"x\":\"\t\"}",
        "{" H ",\"id\":null}", "{" H ",\"type\":\"\"}", "{}", "", "   ",
        "{\"id\":\"a\"", "{\"id\" \"a\"}", "\"str\"", "42",
        /* array elements walked in place (one scan): whitespace, empty
         * objects, nested values, elements after an error or beyond 16 */
        "{" H ",\"numeric_fields\":[ { \"name\" : \"a\" , \"value\" : 1 } ,"
        "\n{\"value\":{\"v\":[1,{}]},\"name\":\"b\"} , {} ]}",
        "{" H ",\"numeric_fields\":[{\"name\":\"a\",\"value\":1},{},"
        "{\"name\":\"c\",\"value\":2}]}",
        "{" H ",\"numeric_fields\":[{\"name\":\"a\",\"value\":[]},"
        "{\"name\":{\"}\":\"]\"},\"value\":2},[{}],\"{\"]}",
        "{" H ",\"numeric_fields\":[{\"name\":\"a\",\"value\":1},[],"
        "{\"name\":\"b\",\"value\":2}],\"amount\":3}",
        "{" H ",\"numeric_fields\":[{\"name\":\"a\",\"value\":1},"
        "{\"name\":\"b\",\"value\":2},{\"name\":\"c\",\"value\":3},"
        "{\"name\":\"d\",\"value\":4},{\"name\":\"e\",\"value\":5},"
        "{\"name\":\"f\",\"value\":6},{\"name\":\"g\",\"value\":7},"
        "{\"name\":\"h\",\"value\":8},{\"name\":\"i\",\"value\":9},"
        "{\"name\":\"j\",\"value\":10},{\"name\":\"k\",\"value\":11},"
        "{\"name\":\"l\",\"value\":12},{\"name\":\"m\",\"value\":13},"
        "{\"name\":\"n\",\"value\":14},{\"name\":\"o\",\"value\":15},"
        "{\"name\":\"p\",\"value\":16},{\"name\":\"q\",\"value\":17}]}",
        "{" H ",\"categorical_fields\":[ {\"name\":\"a\",\"value\":\"x\"} ,"
        "{ \"value\" : \"y}\" , \"name\" : \"b\\\"]\" }, { } ]}",
        "{" H ",\"categorical_fields\":[{\"name\":\"a\",\"value\":[\"x\"]},"
        "{\"name\":\"b\",\"value\":\"y\"},{\"name\":1}]}",
        "{" H ",\"categorical_fields\":[{\"name\":\"a\",\"value\":\"x\"},"
        "7,{\"name\":\"b\",\"value\":\"y\"}]}",
        "{" H ",\"categorical_fields\":[{\"name\":\"a\",\"value\":\"x\"},"
        "{\"name\":\"b\",\"value\":\"y\",\"name\":\"c\"},{\"name\":\"d\","
        "\"value\":\"z\"}],\"numeric_fields\":[{\"name\":\"n\",\"value\":1}]}",
    };
    rs_event_t a, b;
    char e1[256], e2[256];
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
        rs_err_t x = rs_event_from_json(ev[i], strlen(ev[i]), &a, e1,
                                        sizeof(e1));
        rs_err_t y = rs_event_from_json_jansson(ev[i], strlen(ev[i]), &b, e2,
                                                sizeof(e2));
        if (x != y)
            fail_msg("%s: streaming %d (%s), jansson %d (%s)", ev[i], x, e1,
                     y, e2);
        if (x == RS_OK) assert_event_eq(&a, &b);
        /* the same message for field errors (syntax: wording differs) */
        if (x != RS_OK && strncmp(e2, "invalid JSON", 12) &&
            strcmp(e1, e2))
            fail_msg("%s: '%s' vs '%s'", ev[i], e1, e2);
    }
    /* nesting: 2048 levels are fine, 2049 are not (jansson's limit) */
    for (int depth = 2047; depth <= 2049; depth++) {
        size_t len = 0;
        static char deep[8192];
        len += (size_t)sprintf(deep, "{" H ",\"x\":");
        for (int k = 1; k < depth; k++) deep[len++] = '[';
        for (int k = 1; k < depth; k++) deep[len++] = ']';
        deep[len++] = '}';
        rs_err_t x = rs_event_from_json(deep, len, &a, e1, sizeof(e1));
        rs_err_t y = rs_event_from_json_jansson(deep, len, &b, e2, sizeof(e2));
        if (x != y) fail_msg("depth %d: %d vs %d (%s)", depth, x, y, e2);
    }
#undef H
    static const char *const lb[] = {
        "{\"event_id\":\"a\",\"entity_id\":\"e\",\"value\":1,"
        "\"label_time_ms\":1709294400000}",
        "{\"event_id\":7,\"entity_id\":\"e\",\"value\":true,"
        "\"label_time_ms\":\"2024-03-01 12:00:00\"}",
        "{\"event_id\":\"a\",\"entity_id\":\"e\",\"value\":\"0.5\","
        "\"label_time_ms\":1709294400000,\"value\":2}",
        "{\"event_id\":\"a\",\"entity_id\":\"e\",\"label_time_ms\":1}",
        "{\"event_id\":\"a\"}", "[]",
    };
    for (size_t i = 0; i < sizeof(lb) / sizeof(lb[0]); i++) {
        rs_label_t la, lr;
        rs_err_t x = rs_label_from_json(lb[i], strlen(lb[i]), &la, e1,
                                        sizeof(e1));
        rs_err_t y = rs_label_from_json_jansson(lb[i], strlen(lb[i]), &lr, e2,
                                                sizeof(e2));
        if (x != y)
            fail_msg("%s: streaming %d (%s), jansson %d (%s)", lb[i], x, e1,
                     y, e2);
        if (x == RS_OK) {
            assert_string_equal(la.event_id, lr.event_id);
            assert_true(dbl_same(la.value, lr.value));
            assert_int_equal(la.label_time_ms, lr.label_time_ms);
        }
    }
}

/* Score.event: the event's own fields in the record, the same names as in
 * Event, absent in older records; object form accepted as for events. */
static void test_score_event_fields(void **state) {
    (void)state;
    rs_score_t sc, back;
    char buf[RS_ENCODE_MAX];
    uint8_t pb[RS_ENCODE_MAX];
    fill_score(&sc);
    strcpy(sc.event.counterparty_id, "merchant-9");
    int n = rs_score_to_json(&sc, buf, sizeof(buf));
    assert_true(n > 0);
    assert_non_null(strstr(buf, ",\"event\":{\"type\":\"card_tx\","
                                "\"counterparty_id\":\"merchant-9\","
                                "\"amount\":"));
    assert_non_null(strstr(buf, "{\"name\":\"mcc\",\"value\":\"5411\"}"));
    assert_non_null(strstr(buf, "\"text\":\"amount 4.2 sd above"));
    /* a record without the fields (written before they existed) */
    memset(&sc.event, 0, sizeof(sc.event));
    sc.explanation.contrib[0].text[0] = '\0';
    n = rs_score_to_json(&sc, buf, sizeof(buf));
    assert_null(strstr(buf, "\"event\""));
    assert_int_equal(rs_score_from_json(buf, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
    assert_int_equal(back.event.present, 0);
    n = rs_score_to_pb(&sc, pb, sizeof(pb));
    assert_int_equal(rs_score_from_pb(pb, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
    assert_int_equal(back.event.present, 0);
    assert_score_eq(&sc, &back);
    /* object form, integer counterparty, numeric strings */
    const char *j = "{\"event_id\":\"s-1\",\"event\":{\"type\":\"sensor\","
                    "\"counterparty_id\":7,\"numeric_fields\":"
                    "{\"temperature\":\"71.5\",\"rpm\":1200},"
                    "\"categorical_fields\":{\"site\":\"north\"}}}";
    assert_int_equal(rs_score_from_json(j, strlen(j), &back, es, sizeof(es)),
                     RS_OK);
    assert_int_equal(back.event.present, 1);
    assert_string_equal(back.event.type, "sensor");
    assert_string_equal(back.event.counterparty_id, "7");
    assert_int_equal(back.event.n_numeric, 2);
    assert_true(back.event.numeric[0].value == 71.5);
    assert_string_equal(back.event.categ[0].value, "north");
    /* JSON -> protobuf -> JSON is the same text */
    char j2[RS_ENCODE_MAX];
    int n1 = rs_score_to_json(&back, buf, sizeof(buf));
    n = rs_score_to_pb(&back, pb, sizeof(pb));
    assert_int_equal(rs_score_from_pb(pb, (size_t)n, &sc, es, sizeof(es)),
                     RS_OK);
    int n2 = rs_score_to_json(&sc, j2, sizeof(j2));
    assert_int_equal(n1, n2);
    assert_string_equal(buf, j2);
    /* errors name the field under event. */
    const char *e1 = "{\"event\":[1]}",
               *e2 = "{\"event\":{\"numeric_fields\":[{\"value\":1}]}}",
               *e3 = "{\"event\":{\"amount\":\"NaN\"}}";
    assert_int_equal(rs_score_from_json(e1, strlen(e1), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'event'"));
    assert_int_equal(rs_score_from_json(e2, strlen(e2), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'event.numeric_fields[0].name'"));
    assert_int_equal(rs_score_from_json(e3, strlen(e3), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'event.amount'"));
}

static void test_pb_roundtrip(void **state) {
    (void)state;
    uint8_t buf[RS_ENCODE_MAX];
    rs_event_t ev, evb;
    rs_label_t lb, lbb;
    rs_score_t sc, scb;

    fill_event(&ev);
    ev.numeric[0].value = -1.0e-310;   /* subnormal, sign */
    int n = rs_event_to_pb(&ev, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(rs_event_from_pb(buf, (size_t)n, &evb, es, sizeof(es)),
                     RS_OK);
    assert_event_eq(&ev, &evb);

    fill_label(&lb);
    lb.value = 0.75;
    n = rs_label_to_pb(&lb, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(rs_label_from_pb(buf, (size_t)n, &lbb, es, sizeof(es)),
                     RS_OK);
    assert_string_equal(lbb.event_id, lb.event_id);
    assert_true(dbl_same(lbb.value, lb.value));
    assert_int_equal(lbb.label_time_ms, lb.label_time_ms);

    fill_score(&sc);
    /* scores are not validated: a NaN payload survives bit-exact */
    uint64_t bits = 0x7ff8000000abcdefULL;
    memcpy(&sc.explanation.contrib[1].value, &bits, sizeof(bits));
    sc.explanation.experts[1].gate_weight = DBL_MAX;
    n = rs_score_to_pb(&sc, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(rs_score_from_pb(buf, (size_t)n, &scb, es, sizeof(es)),
                     RS_OK);
    assert_score_eq(&sc, &scb);

    /* an empty explanation stays empty */
    memset(&sc.explanation, 0, sizeof(sc.explanation));
    n = rs_score_to_pb(&sc, buf, sizeof(buf));
    assert_int_equal(rs_score_from_pb(buf, (size_t)n, &scb, es, sizeof(es)),
                     RS_OK);
    assert_score_eq(&sc, &scb);

    /* the dispatchers */
    n = rs_event_encode(RS_FORMAT_PROTOBUF, &ev, buf, sizeof(buf));
    assert_int_equal(rs_event_decode(RS_FORMAT_PROTOBUF, buf, (size_t)n, &evb,
                                     es, sizeof(es)), RS_OK);
    assert_event_eq(&ev, &evb);
    n = rs_label_encode(RS_FORMAT_JSON, &lb, buf, sizeof(buf));
    assert_int_equal(rs_label_decode(RS_FORMAT_JSON, buf, (size_t)n, &lbb, es,
                                     sizeof(es)), RS_OK);
    assert_true(rs_score_encode(RS_FORMAT_JSON, &sc, buf, sizeof(buf)) > 0);
    assert_int_equal(rs_event_decode((rs_format_t)7, buf, 1, &evb, es,
                                     sizeof(es)), RS_ERR_INVALID);
    assert_int_equal(rs_score_encode((rs_format_t)7, &sc, buf, sizeof(buf)),
                     -1);
}

/* The maintenance fields (rul, alert_score: the score the alert policy
 * decided on, issue 15): written only when set, bit-exact through JSON and
 * protobuf and JSON -> protobuf -> JSON; a bad alert_score is named. */
static void test_score_alert_score(void **state) {
    (void)state;
    rs_score_t sc, back, pbb;
    char j1[RS_ENCODE_MAX], j2[RS_ENCODE_MAX];
    uint8_t pb[RS_ENCODE_MAX];
    fill_score(&sc);
    sc.decision = RS_DECISION_ALERT;
    sc.score = 0.0123456789f;            /* the model's own score        */
    sc.alert_score = 0.61803398875f;     /* the cold-start blend (float) */
    sc.rul = 5400000;
    int n1 = rs_score_to_json(&sc, j1, sizeof(j1));
    assert_true(n1 > 0);
    assert_non_null(strstr(j1, "\"alert_score\":0.618"));
    assert_non_null(strstr(j1, "\"rul\":5400000"));
    assert_int_equal(rs_score_from_json(j1, (size_t)n1, &back, es, sizeof(es)),
                     RS_OK);
    assert_score_eq(&sc, &back);
    int np = rs_score_to_pb(&sc, pb, sizeof(pb));
    assert_true(np > 0);
    assert_int_equal(rs_score_from_pb(pb, (size_t)np, &pbb, es, sizeof(es)),
                     RS_OK);
    assert_score_eq(&sc, &pbb);
    int n2 = rs_score_to_json(&pbb, j2, sizeof(j2));
    assert_int_equal(n1, n2);
    assert_string_equal(j1, j2);

    /* 0: the policy decided on `score`: not written, reads back as 0, and
     * the protobuf is one field shorter (proto3 default) */
    sc.alert_score = 0;
    int n0 = rs_score_to_json(&sc, j1, sizeof(j1));
    assert_true(n0 > 0);
    assert_null(strstr(j1, "alert_score"));
    assert_int_equal(rs_score_from_json(j1, (size_t)n0, &back, es, sizeof(es)),
                     RS_OK);
    assert_true(dbl_same(back.alert_score, 0));
    int np0 = rs_score_to_pb(&sc, pb, sizeof(pb));
    assert_int_equal(np0, np - 9); /* tag 14 (1 byte) + fixed64 */
    assert_int_equal(rs_score_from_pb(pb, (size_t)np0, &pbb, es, sizeof(es)),
                     RS_OK);
    assert_true(dbl_same(pbb.alert_score, 0));

    /* as proto3 JSON may write it: a numeric string; rounded to float32 */
    const char *s1 = "{\"alert_score\":\"0.61803398875\"}";
    assert_int_equal(rs_score_from_json(s1, strlen(s1), &back, es, sizeof(es)),
                     RS_OK);
    assert_true(dbl_same(back.alert_score, (double)0.61803398875f));
    const char *b1 = "{\"alert_score\":true}", *b2 = "{\"alert_score\":\"NaN\"}";
    assert_int_equal(rs_score_from_json(b1, strlen(b1), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'alert_score'"));
    assert_int_equal(rs_score_from_json(b2, strlen(b2), &back, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'alert_score'"));
}

static void test_json_pb_json(void **state) {
    (void)state;
    const char *in =
        "{\"id\":\"s-9\",\"type\":\"sensor\",\"entity_id\":\"pump-3\","
        "\"event_time_ms\":\"2024-03-01T12:00:00.125Z\","
        "\"numeric_fields\":{\"temperature\":71.5,\"vibration\":\"0.003\","
        "\"door_open\":true},\"categorical_fields\":{\"site\":\"Zürich\\n\","
        "\"line\":7},\"future_field\":[1,2,{\"x\":null}]}";
    rs_event_t a, b, c;
    char j1[RS_ENCODE_MAX], j2[RS_ENCODE_MAX];
    uint8_t pb[RS_ENCODE_MAX];
    expect_event_ok(in, &a);
    assert_int_equal(a.event_time_ms, T_2024_03_01_12H + 125);
    assert_true(a.amount == 0);
    assert_true(rs_event_numeric(&a, "temperature") == 71.5);
    assert_true(rs_event_numeric(&a, "vibration") == 0.003);
    assert_true(rs_event_numeric(&a, "door_open") == 1);
    assert_true(isnan(rs_event_numeric(&a, "nope")));
    assert_string_equal(rs_event_categ(&a, "site"), "Zürich\n");
    assert_string_equal(rs_event_categ(&a, "line"), "7");
    assert_null(rs_event_categ(&a, "nope"));

    int n1 = rs_event_to_json(&a, j1, sizeof(j1));
    int np = rs_event_to_pb(&a, pb, sizeof(pb));
    assert_true(n1 > 0 && np > 0);
    assert_int_equal(rs_event_from_pb(pb, (size_t)np, &b, es, sizeof(es)),
                     RS_OK);
    int n2 = rs_event_to_json(&b, j2, sizeof(j2));
    assert_int_equal(n1, n2);
    assert_string_equal(j1, j2);
    assert_int_equal(rs_event_from_json(j2, (size_t)n2, &c, es, sizeof(es)),
                     RS_OK);
    assert_event_eq(&a, &c);
}

static void test_object_vs_array(void **state) {
    (void)state;
    rs_event_t a, b;
    expect_event_ok(EV_HEAD EV_TIME ",\"numeric_fields\":{\"t\":1.5,\"h\":2},"
                    "\"categorical_fields\":{\"cc\":\"DE\"}}", &a);
    expect_event_ok(EV_HEAD EV_TIME ",\"numeric_fields\":[{\"name\":\"t\","
                    "\"value\":1.5},{\"name\":\"h\",\"value\":2}],"
                    "\"categorical_fields\":[{\"name\":\"cc\",\"value\":"
                    "\"DE\"}]}", &b);
    assert_event_eq(&a, &b);
    /* defaults: null / absent */
    expect_event_ok(EV_HEAD EV_TIME ",\"amount\":null,\"counterparty_id\":null,"
                    "\"numeric_fields\":null}", &a);
    assert_true(a.amount == 0 && a.n_numeric == 0);
    /* ids as integers; amount as numeric string; real integral time */
    expect_event_ok("{\"id\":123,\"type\":\"t\",\"entity_id\":-5,"
                    "\"event_time_ms\":1.7092944e12,\"amount\":\"12.50\"}", &a);
    assert_string_equal(a.id, "123");
    assert_string_equal(a.entity_id, "-5");
    assert_true(a.amount == 12.5);
    assert_int_equal(a.event_time_ms, 1709294400000LL);
}

static void test_event_time_forms(void **state) {
    (void)state;
    rs_event_t ev;
    const char *forms[] = {
        EV_HEAD "\"event_time_ms\":1709294400000}",
        EV_HEAD "\"event_time_ms\":\"1709294400000\"}",
        EV_HEAD "\"event_time_ms\":\"1709294400\"}",
        EV_HEAD "\"event_time_ms\":\"2024-03-01 12:00:00\"}",
        EV_HEAD "\"event_time_ms\":\"2024-03-01T12:00:00Z\"}",
        EV_HEAD "\"event_time_ms\":\"2024-03-01T12:00:00.000\"}",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        expect_event_ok(forms[i], &ev);
        assert_int_equal(ev.event_time_ms, T_2024_03_01_12H);
    }
}

/* ------------------------------------------------------------- validation */

static void test_event_errors(void **state) {
    (void)state;
    char big[RS_MSG_MAX + 64];

    expect_event_err("{\"type\":\"t\",\"entity_id\":\"c\"," EV_TIME "}",
                     RS_ERR_INVALID, "field 'id': missing");
    expect_event_err("{\"id\":\"\",\"type\":\"t\",\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID, "field 'id': missing or empty");
    expect_event_err("{\"id\":null,\"type\":\"t\",\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID, "field 'id': missing");
    expect_event_err("{\"id\":\"a\\u0001b\",\"type\":\"t\",\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID, "field 'id': control character");
    expect_event_err("{\"id\":\"a\\nb\",\"type\":\"t\",\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID, "field 'id': control character");
    expect_event_err("{\"id\":\"a\",\"type\":\"\",\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID, "field 'type'");
    expect_event_err("{\"id\":\"a\",\"type\":\"t\"," EV_TIME "}",
                     RS_ERR_INVALID, "field 'entity_id': missing");
    expect_event_err("{\"id\":1.5,\"type\":\"t\",\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID,
                     "field 'id': expected string or integer");
    expect_event_err("{\"id\":\"a\",\"type\":7,\"entity_id\":\"c\","
                     EV_TIME "}", RS_ERR_INVALID,
                     "field 'type': expected string");
    expect_event_err(EV_HEAD "\"counterparty_id\":\"m\\u007f\"," EV_TIME "}",
                     RS_ERR_INVALID, "field 'counterparty_id': control");

    /* times */
    expect_event_err(EV_HEAD "\"amount\":1}", RS_ERR_INVALID,
                     "field 'event_time_ms': missing");
    expect_event_err(EV_HEAD "\"event_time_ms\":true}", RS_ERR_INVALID,
                     "field 'event_time_ms': expected integer");
    expect_event_err(EV_HEAD "\"event_time_ms\":[1]}", RS_ERR_INVALID,
                     "field 'event_time_ms': expected integer");
    expect_event_err(EV_HEAD "\"event_time_ms\":1.5}", RS_ERR_INVALID,
                     "field 'event_time_ms': expected integer");
    expect_event_err(EV_HEAD "\"event_time_ms\":1709294400}", RS_ERR_INVALID,
                     "epoch seconds?");
    expect_event_err(EV_HEAD "\"event_time_ms\":99999999999999}",
                     RS_ERR_INVALID, "field 'event_time_ms': 99999999999999 "
                     "is outside [2000-01-01, 2100-01-01)");
    expect_event_err(EV_HEAD "\"event_time_ms\":-1}", RS_ERR_INVALID,
                     "field 'event_time_ms'");
    expect_event_err(EV_HEAD "\"event_time_ms\":4102444800000}",
                     RS_ERR_INVALID, "field 'event_time_ms'");
    expect_event_err(EV_HEAD "\"event_time_ms\":\"1999-12-31 23:59:59\"}",
                     RS_ERR_INVALID, "field 'event_time_ms'");
    expect_event_err(EV_HEAD "\"event_time_ms\":\"yesterday\"}",
                     RS_ERR_INVALID,
                     "field 'event_time_ms': unparseable timestamp");

    /* amounts */
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"NaN\"}", RS_ERR_INVALID,
                     "field 'amount': NaN is not allowed");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"nan\"}", RS_ERR_INVALID,
                     "field 'amount': NaN is not allowed");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"Infinity\"}",
                     RS_ERR_INVALID, "field 'amount': infinity is not allowed");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"-inf\"}", RS_ERR_INVALID,
                     "field 'amount': infinity is not allowed");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"1e999\"}", RS_ERR_INVALID,
                     "field 'amount'");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":-0.01}", RS_ERR_INVALID,
                     "field 'amount': negative");
    /* Finite as a double, infinite as the float features compute in. */
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":1e39}", RS_ERR_INVALID,
                     "field 'amount': 1e+39 exceeds the float range");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"3.5e38\"}",
                     RS_ERR_INVALID, "field 'amount': 3.5e+38 exceeds");
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":{\"t\":-1e300}}",
                     RS_ERR_INVALID, "field 'numeric_fields[0].value' (t): "
                     "-1e+300 exceeds the float range");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"12 EUR\"}", RS_ERR_INVALID,
                     "field 'amount': expected number");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":\"0x10\"}", RS_ERR_INVALID,
                     "field 'amount': expected number");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":true}", RS_ERR_INVALID,
                     "field 'amount': expected number");
    expect_event_err(EV_HEAD EV_TIME ",\"amount\":1e400}", RS_ERR_INVALID,
                     "invalid JSON");

    /* numeric / categorical fields */
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":{\"t\":\"NaN\"}}",
                     RS_ERR_INVALID, "field 'numeric_fields.t': NaN");
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":[{\"name\":\"t\","
                     "\"value\":\"x\"}]}", RS_ERR_INVALID,
                     "field 'numeric_fields[0].value': expected number");
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":[{\"value\":1}]}",
                     RS_ERR_INVALID, "field 'numeric_fields[0].name': missing");
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":[1]}",
                     RS_ERR_INVALID, "field 'numeric_fields[0]': expected "
                     "object");
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":7}", RS_ERR_INVALID,
                     "field 'numeric_fields': expected array");
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":{\"\":1}}",
                     RS_ERR_INVALID, "numeric_fields[0].name");
    expect_event_err(EV_HEAD EV_TIME ",\"categorical_fields\":{\"c\":1.5}}",
                     RS_ERR_INVALID, "field 'categorical_fields.c': expected");
    expect_event_err(EV_HEAD EV_TIME ",\"schema_version\":2}", RS_ERR_INVALID,
                     "field 'schema_version': version 2 is newer");
    expect_event_err(EV_HEAD EV_TIME ",\"schema_version\":-1}",
                     RS_ERR_INVALID, "field 'schema_version'");

    /* too many fields, both forms */
    char js[4096];
    int off = snprintf(js, sizeof(js), EV_HEAD EV_TIME ",\"numeric_fields\":{");
    for (int i = 0; i <= RS_MAX_NUMERIC; i++)
        off += snprintf(js + off, sizeof(js) - (size_t)off, "%s\"f%d\":%d",
                        i ? "," : "", i, i);
    snprintf(js + off, sizeof(js) - (size_t)off, "}}");
    expect_event_err(js, RS_ERR_TOOBIG, "field 'numeric_fields': 17 entries, "
                     "max 16");
    off = snprintf(js, sizeof(js), EV_HEAD EV_TIME ",\"categorical_fields\":[");
    for (int i = 0; i <= RS_MAX_CATEG; i++)
        off += snprintf(js + off, sizeof(js) - (size_t)off,
                        "%s{\"name\":\"c%d\",\"value\":\"v\"}", i ? "," : "",
                        i);
    snprintf(js + off, sizeof(js) - (size_t)off, "]}");
    expect_event_err(js, RS_ERR_TOOBIG, "field 'categorical_fields': 17");

    /* too-long strings: 63 bytes fit an id, 64 do not */
    char id63[64], id64[65];
    memset(id63, 'x', 63); id63[63] = '\0';
    memset(id64, 'x', 64); id64[64] = '\0';
    snprintf(js, sizeof(js), "{\"id\":\"%s\",\"type\":\"t\",\"entity_id\":"
             "\"c\"," EV_TIME "}", id63);
    rs_event_t ev;
    expect_event_ok(js, &ev);
    snprintf(js, sizeof(js), "{\"id\":\"%s\",\"type\":\"t\",\"entity_id\":"
             "\"c\"," EV_TIME "}", id64);
    expect_event_err(js, RS_ERR_TOOBIG, "field 'id': too long (64 bytes, max "
                     "63)");
    snprintf(js, sizeof(js), EV_HEAD EV_TIME ",\"categorical_fields\":"
             "{\"c\":\"%s\"}}", id64);
    expect_event_err(js, RS_ERR_TOOBIG, "field 'categorical_fields.c': too "
                     "long");
    snprintf(js, sizeof(js), EV_HEAD EV_TIME ",\"numeric_fields\":"
             "{\"%s\":1}}", id64);
    expect_event_err(js, RS_ERR_TOOBIG, "too long (64 bytes, max 31)");
    /* multi-byte UTF-8 counts bytes: 16 x "é" = 32 bytes > 31 */
    expect_event_err(EV_HEAD EV_TIME ",\"numeric_fields\":{\"éééééééééééééééé\""
                     ":1}}", RS_ERR_TOOBIG, "max 31");

    /* malformed or oversized input */
    expect_event_err("", RS_ERR_INVALID, "invalid JSON");
    expect_event_err("{\"id\":", RS_ERR_INVALID, "invalid JSON");
    expect_event_err("[1,2]", RS_ERR_INVALID, "expected a JSON object");
    expect_event_err("{\"id\":\"a\\u0000b\"}", RS_ERR_INVALID, "invalid JSON");
    expect_event_err("{\"id\":\"\xff\"}", RS_ERR_INVALID, "invalid JSON");
    memset(big, ' ', sizeof(big));
    memcpy(big, "{}", 2);
    assert_int_equal(rs_event_from_json(big, sizeof(big), &ev, es, sizeof(es)),
                     RS_ERR_TOOBIG);
    assert_non_null(strstr(es, "exceeds the limit"));
    assert_int_equal(rs_event_from_json(NULL, 0, &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    /* errstr may be NULL */
    assert_int_equal(rs_event_from_json("{}", 2, &ev, NULL, 0),
                     RS_ERR_INVALID);
    /* unknown top-level fields are ignored */
    expect_event_ok(EV_HEAD EV_TIME ",\"x_new\":{\"deep\":[1,{\"a\":null}]},"
                    "\"schema_version\":1}", &ev);
}

static void test_validate_struct(void **state) {
    (void)state;
    rs_event_t ev;
    fill_event(&ev);
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_OK);
    ev.amount = NAN;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'amount': NaN is not allowed"));
    ev.amount = INFINITY;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'amount': infinity"));
    ev.amount = -1;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    ev.amount = 3.4e38; /* the largest amounts a float holds still pass */
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_OK);
    ev.amount = 3.5e38; /* protobuf and CSV decode into this struct too */
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'amount': 3.5e+38 exceeds the float"));
    ev.amount = 0;
    ev.numeric[1].value = -INFINITY;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "numeric_fields[1].value' (third)"));
    fill_event(&ev);
    memset(ev.id, 'a', sizeof(ev.id));   /* no NUL */
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'id': not NUL-terminated"));
    uint8_t pb[RS_ENCODE_MAX];
    assert_int_equal(rs_event_to_pb(&ev, pb, sizeof(pb)), -1);
    fill_event(&ev);
    strcpy(ev.entity_id, "bad\xc3");   /* truncated UTF-8 */
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'entity_id': invalid UTF-8 at byte 3"));
    fill_event(&ev);
    ev.n_numeric = -1;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    ev.n_numeric = RS_MAX_NUMERIC + 1;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    char js[RS_ENCODE_MAX];
    assert_int_equal(rs_event_to_json(&ev, js, sizeof(js)), -1);
    fill_event(&ev);
    ev.event_time_ms = 0;
    assert_int_equal(rs_event_validate(&ev, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'event_time_ms': missing"));
    assert_int_equal(rs_event_validate(NULL, es, sizeof(es)), RS_ERR_INVALID);

    rs_label_t lb;
    fill_label(&lb);
    assert_int_equal(rs_label_validate(&lb, es, sizeof(es)), RS_OK);
    lb.value = 1.5;
    assert_int_equal(rs_label_validate(&lb, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'value'"));
    lb.value = NAN;
    assert_int_equal(rs_label_validate(&lb, es, sizeof(es)), RS_ERR_INVALID);
    fill_label(&lb);
    lb.event_id[0] = '\0';
    assert_int_equal(rs_label_validate(&lb, es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'event_id'"));
}

static void test_label_errors(void **state) {
    (void)state;
    rs_label_t lb;
    struct { const char *json; rs_err_t err; const char *frag; } cases[] = {
        { "{\"entity_id\":\"c\",\"value\":1,\"label_time_ms\":1709294400000}",
          RS_ERR_INVALID, "field 'event_id': missing" },
        { "{\"event_id\":\"e\",\"value\":1,\"label_time_ms\":1709294400000}",
          RS_ERR_INVALID, "field 'entity_id': missing" },
        { "{\"event_id\":\"e\",\"entity_id\":\"c\",\"value\":1}",
          RS_ERR_INVALID, "field 'label_time_ms': missing" },
        { "{\"event_id\":\"e\",\"entity_id\":\"c\",\"value\":\"NaN\","
          "\"label_time_ms\":1709294400000}",
          RS_ERR_INVALID, "field 'value': NaN is not allowed" },
        { "{\"event_id\":\"e\",\"entity_id\":\"c\",\"value\":3,"
          "\"label_time_ms\":1709294400000}",
          RS_ERR_INVALID, "field 'value': 3 is outside [0,1]" },
        { "{\"event_id\":\"e\",\"entity_id\":\"c\",\"value\":[],"
          "\"label_time_ms\":1709294400000}",
          RS_ERR_INVALID, "field 'value': expected number" },
        { "{\"event_id\":\"e\",\"entity_id\":\"c\",\"value\":1,"
          "\"label_time_ms\":17}", RS_ERR_INVALID, "field 'label_time_ms'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        es[0] = '\0';
        rs_err_t err = rs_label_from_json(cases[i].json, strlen(cases[i].json),
                                          &lb, es, sizeof(es));
        if (err != cases[i].err || !strstr(es, cases[i].frag))
            fail_msg("%s: got %s '%s'", cases[i].json, rs_err_str(err), es);
    }
    const char *ok = "{\"event_id\":77,\"entity_id\":\"c\",\"value\":true,"
                     "\"label_time_ms\":\"2024-03-01 12:00:00\"}";
    assert_int_equal(rs_label_from_json(ok, strlen(ok), &lb, es, sizeof(es)),
                     RS_OK);
    assert_string_equal(lb.event_id, "77");
    assert_true(lb.value == 1);
    assert_int_equal(lb.label_time_ms, T_2024_03_01_12H);
}

/* ----------------------------------------------------- protobuf specifics */

/* Minimal protobuf writer for hand-made wire inputs. */
static size_t pbw_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}
static size_t pbw_bytes(uint8_t *p, unsigned field, const void *s,
                        size_t len) {
    size_t n = pbw_varint(p, (uint64_t)field << 3 | 2);
    n += pbw_varint(p + n, len);
    memcpy(p + n, s, len);
    return n + len;
}

static void test_pb_errors(void **state) {
    (void)state;
    static uint8_t buf[RS_MSG_MAX + 16];
    rs_event_t ev;
    rs_score_t sc;
    size_t n;

    /* garbage */
    const uint8_t junk[] = { 0x0a, 0x50, 'x' };
    assert_int_equal(rs_event_from_pb(junk, sizeof(junk), &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "malformed protobuf Event"));
    /* an empty message decodes but is not a valid event */
    assert_int_equal(rs_event_from_pb(buf, 0, &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'id'"));

    /* too-long string, too many numeric fields */
    rs_event_t good;
    fill_event(&good);
    int gl = rs_event_to_pb(&good, buf, sizeof(buf));
    n = (size_t)gl;
    char longid[100];
    memset(longid, 'y', sizeof(longid));
    n += pbw_bytes(buf + n, 1, longid, sizeof(longid));   /* last id wins */
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_TOOBIG);
    assert_non_null(strstr(es, "field 'id': too long (100 bytes"));

    n = (size_t)gl;
    for (int i = 0; i < RS_MAX_NUMERIC; i++) {
        uint8_t sub[32];
        size_t sl = pbw_bytes(sub, 1, "x", 1);
        n += pbw_bytes(buf + n, 7, sub, sl);
    }
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_TOOBIG);
    assert_non_null(strstr(es, "field 'numeric_fields': 19 entries, max 16"));

    /* embedded NUL in a string: protobuf-c would cut it at the NUL; such an
     * id must not silently become a different id */
    n = (size_t)gl;
    n += pbw_bytes(buf + n, 1, "ab\0cd", 5);
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'id': contains a NUL byte"));
    n = (size_t)gl;
    {
        uint8_t sub[32];
        size_t sl = pbw_bytes(sub, 1, "mcc", 3);
        sl += pbw_bytes(sub + sl, 2, "54\0" "11", 5);
        n += pbw_bytes(buf + n, 8, sub, sl);
    }
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'categorical_fields.value': contains"));

    /* invalid UTF-8 from the wire is rejected by validation */
    n = (size_t)gl;
    n += pbw_bytes(buf + n, 3, "c\xff", 2);
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "entity_id"));

    /* schema version from the future */
    n = (size_t)gl;
    buf[n++] = 9 << 3;
    buf[n++] = 2;
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "schema_version"));

    /* unknown decision number in a score */
    n = 0;
    buf[n++] = 4 << 3;
    buf[n++] = 9;
    assert_int_equal(rs_score_from_pb(buf, n, &sc, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'decision': unknown value 9"));

    /* oversized input */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(rs_event_from_pb(buf, RS_MSG_MAX + 1, &ev, es,
                                      sizeof(es)), RS_ERR_TOOBIG);
}

static void test_pb_arena(void **state) {
    (void)state;
    static uint8_t buf[RS_MSG_MAX];
    rs_event_t ev, good;
    fill_event(&good);
    int gl = rs_event_to_pb(&good, buf, sizeof(buf));
    assert_true(gl > 0);

    /* warm up; then many decodes do not grow the arena */
    assert_int_equal(rs_event_from_pb(buf, (size_t)gl, &ev, es, sizeof(es)),
                     RS_OK);
    size_t cap = rs_proto_arena_size();
    assert_true(cap >= 16 * 1024);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(rs_event_from_pb(buf, (size_t)gl, &ev, es,
                                          sizeof(es)), RS_OK);
    assert_int_equal(rs_proto_arena_size(), cap);

    /* a message with a 60 KB unknown field needs a bigger arena: it grows
     * and the decode succeeds */
    size_t n = (size_t)gl;
    static char blob[60 * 1024];
    memset(blob, 'u', sizeof(blob));
    n += pbw_bytes(buf + n, 100, blob, sizeof(blob));
    assert_true(n <= RS_MSG_MAX);
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)), RS_OK);
    assert_event_eq(&good, &ev);
    assert_true(rs_proto_arena_size() > cap);
    assert_true(rs_proto_arena_size() <= 4 * RS_MSG_MAX);

    /* 32 K empty sub-messages need far more than 4 * RS_MSG_MAX */
    n = 0;
    while (n + 2 <= RS_MSG_MAX) {
        buf[n++] = 7 << 3 | 2;
        buf[n++] = 0;
    }
    assert_int_equal(rs_event_from_pb(buf, n, &ev, es, sizeof(es)),
                     RS_ERR_TOOBIG);
    assert_non_null(strstr(es, "needs more than"));
    assert_true(rs_proto_arena_size() <= 4 * RS_MSG_MAX);
}

static void *arena_thread(void *arg) {
    const uint8_t *pb = arg;
    rs_event_t ev;
    char e[128];
    size_t len = (size_t)pb[0] | (size_t)pb[1] << 8;
    for (int i = 0; i < 100; i++)
        if (rs_event_from_pb(pb + 2, len, &ev, e, sizeof(e)) != RS_OK)
            return (void *)1;
    return rs_proto_arena_size() > 0 ? NULL : (void *)1;
}

static void test_pb_threads(void **state) {
    (void)state;
    uint8_t pb[2 + RS_ENCODE_MAX];
    rs_event_t ev;
    fill_event(&ev);
    int n = rs_event_to_pb(&ev, pb + 2, sizeof(pb) - 2);
    pb[0] = (uint8_t)(n & 0xff);
    pb[1] = (uint8_t)(n >> 8);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, arena_thread, pb), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv);   /* each thread's arena is freed at exit (ASan) */
    }
}

/* ---------------------------------------------------------- buffer limits */

static void test_encode_bounds(void **state) {
    (void)state;
    rs_event_t ev;
    rs_score_t sc;
    char js[RS_ENCODE_MAX];
    uint8_t pb[RS_ENCODE_MAX];
    fill_event(&ev);
    fill_score(&sc);

    int n = rs_event_to_json(&ev, js, sizeof(js));
    for (int size = 0; size <= n; size++) {
        char small[RS_ENCODE_MAX];
        memset(small, 'Z', sizeof(small));
        assert_int_equal(rs_event_to_json(&ev, small, (size_t)size), -1);
        if (size) assert_true(memchr(small, '\0', (size_t)size) != NULL);
        assert_true(small[size] == 'Z');   /* never writes past size */
    }
    assert_int_equal(rs_event_to_json(&ev, js, (size_t)n + 1), n);

    n = rs_score_to_pb(&sc, pb, sizeof(pb));
    for (int size = 0; size < n; size++)
        assert_int_equal(rs_score_to_pb(&sc, pb, (size_t)size), -1);
    assert_int_equal(rs_score_to_pb(&sc, pb, (size_t)n), n);
    n = rs_score_to_json(&sc, js, sizeof(js));
    for (int size = 0; size <= n; size++)
        assert_int_equal(rs_score_to_json(&sc, js, (size_t)size), -1);

    /* worst case: every string at its maximum, every byte escaped as
     * \u00XX, every count at its maximum, long doubles */
    rs_score_t w;
    memset(&w, 0x01, sizeof(w));
#define MAXSTR(f) ((f)[sizeof(f) - 1] = '\0')
    MAXSTR(w.event_id); MAXSTR(w.entity_id); MAXSTR(w.model_version);
    w.score = -1.2345678901234567e-300;
    w.decision = RS_DECISION_UNSPECIFIED;
    w.event_time_ms = w.scored_at_ms = w.latency_us = INT64_MIN;
    w.flags = UINT32_MAX;
    w.rul = INT64_MAX;          /* written only when > 0 */
    w.alert_score = w.score;    /* written only when != 0 */
    rs_explanation_t *x = &w.explanation;
    x->n_attended = RS_MAX_ATTEND;
    x->n_contrib = RS_MAX_CONTRIB;
    x->n_experts = RS_MAX_EXPERTS;
    x->n_reasons = RS_MAX_REASONS;
    for (int i = 0; i < RS_MAX_ATTEND; i++) {
        MAXSTR(x->attended[i].event_id);
        MAXSTR(x->attended[i].counterparty_id);
        x->attended[i].event_time_ms = INT64_MIN;
        x->attended[i].amount = x->attended[i].weight = w.score;
    }
    for (int i = 0; i < RS_MAX_CONTRIB; i++) {
        MAXSTR(x->contrib[i].name);
        MAXSTR(x->contrib[i].text);
        x->contrib[i].value = x->contrib[i].contribution = w.score;
    }
    for (int i = 0; i < RS_MAX_EXPERTS; i++) {
        x->experts[i].expert = UINT32_MAX;
        x->experts[i].gate_weight = w.score;
    }
    for (int i = 0; i < RS_MAX_REASONS; i++) MAXSTR(x->reasons[i]);
    rs_event_fields_t *wf = &w.event;
    wf->present = 1;
    MAXSTR(wf->type); MAXSTR(wf->counterparty_id);
    wf->amount = w.score;
    wf->n_numeric = RS_MAX_NUMERIC;
    wf->n_categ = RS_MAX_CATEG;
    for (int i = 0; i < RS_MAX_NUMERIC; i++) {
        MAXSTR(wf->numeric[i].name);
        wf->numeric[i].value = w.score;
    }
    for (int i = 0; i < RS_MAX_CATEG; i++) {
        MAXSTR(wf->categ[i].name);
        MAXSTR(wf->categ[i].value);
    }
    n = rs_score_to_json(&w, js, sizeof(js));
    print_message("worst-case score JSON: %d bytes (RS_ENCODE_MAX %d)\n", n,
                  RS_ENCODE_MAX);
    assert_true(n > 0);
    assert_true(rs_score_to_pb(&w, pb, sizeof(pb)) > 0);

    rs_event_t we;
    memset(&we, 0x01, sizeof(we));
    MAXSTR(we.id); MAXSTR(we.type); MAXSTR(we.entity_id);
    MAXSTR(we.counterparty_id);
    we.event_time_ms = INT64_MIN;
    we.amount = w.score;
    we.n_numeric = RS_MAX_NUMERIC;
    we.n_categ = RS_MAX_CATEG;
    for (int i = 0; i < RS_MAX_NUMERIC; i++) {
        MAXSTR(we.numeric[i].name);
        we.numeric[i].value = w.score;
    }
    for (int i = 0; i < RS_MAX_CATEG; i++) {
        MAXSTR(we.categ[i].name);
        MAXSTR(we.categ[i].value);
    }
    n = rs_event_to_json(&we, js, sizeof(js));
    print_message("worst-case event JSON: %d bytes\n", n);
    assert_true(n > 0);
    assert_true(rs_event_to_pb(&we, pb, sizeof(pb)) > 0);
#undef MAXSTR

    /* invalid UTF-8 in an unvalidated record becomes U+FFFD */
    memset(&sc, 0, sizeof(sc));
    strcpy(sc.event_id, "a\xff\xc3(b\xed\xa0\x80");
    n = rs_score_to_json(&sc, js, sizeof(js));
    assert_true(n > 0);
    assert_non_null(strstr(js, "\"a\\ufffd\\ufffd(b\\ufffd\\ufffd\\ufffd\""));
    rs_score_t back;
    assert_int_equal(rs_score_from_json(js, (size_t)n, &back, es, sizeof(es)),
                     RS_OK);
}

/* -------------------------------------------------------------------- CSV */

static void test_csv_map(void **state) {
    (void)state;
    rs_csv_map_t map;
    assert_int_equal(rs_csv_map_parse(&map, NULL, es, sizeof(es)), RS_OK);
    assert_string_equal(map.id, "id");
    assert_string_equal(map.entity, "entity_id");
    assert_string_equal(map.counterparty, "counterparty_id");
    assert_string_equal(map.time, "event_time_ms");
    assert_string_equal(map.label, "label");
    assert_int_equal(rs_csv_map_parse(&map, " id = tx_id ,entity=card,, "
                                      "time=ts,amount=amt,label=is_fraud,"
                                      "counterparty=",
                                      es, sizeof(es)), RS_OK);
    assert_string_equal(map.id, "tx_id");
    assert_string_equal(map.entity, "card");
    assert_string_equal(map.time, "ts");
    assert_string_equal(map.amount, "amt");
    assert_string_equal(map.label, "is_fraud");
    assert_string_equal(map.counterparty, "");
    assert_string_equal(map.type, "type");
    assert_int_equal(rs_csv_map_parse(&map, "id=a,colour=red", es,
                                      sizeof(es)), RS_ERR_CONFIG);
    assert_non_null(strstr(es, "unknown key 'colour'"));
    assert_int_equal(rs_csv_map_parse(&map, "id", es, sizeof(es)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(es, "'id' is not key=column"));
    assert_int_equal(rs_csv_map_parse(&map, "time=", es, sizeof(es)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(es, "'time' needs a column"));
    assert_int_equal(rs_csv_map_parse(&map, "id=0123456789012345678901234567"
                                      "890123", es, sizeof(es)),
                     RS_ERR_CONFIG);
}

static rs_csv_t *csv_open(const char *spec, const char *header) {
    rs_csv_map_t map;
    assert_int_equal(rs_csv_map_parse(&map, spec, es, sizeof(es)), RS_OK);
    return rs_csv_new(&map, header, strlen(header), es, sizeof(es));
}

static void test_csv_decode(void **state) {
    (void)state;
    const char *spec = "id=tx_id,entity=card,counterparty=merchant,time=ts,"
                       "amount=amt,label=is_fraud";
    rs_csv_t *csv = csv_open(spec, "\xEF\xBB\xBFtx_id,card,merchant,ts,amt,"
                             "\"mcc\",country,\"dist, km\",is_fraud\r\n");
    assert_non_null(csv);
    rs_event_t ev;
    double label = -1;
    int has = -1;
    const char *row = "t1,c-9,\"Bob's \"\"Diner\"\", Inc.\",2024-03-01 12:00:00,"
                      "12.50,5812,DE,  3.5 ,1\r\n";
    assert_int_equal(rs_csv_decode(csv, row, strlen(row), &ev, &label, &has,
                                   es, sizeof(es)), RS_OK);
    assert_string_equal(ev.id, "t1");
    assert_string_equal(ev.type, "event");
    assert_string_equal(ev.entity_id, "c-9");
    assert_string_equal(ev.counterparty_id, "Bob's \"Diner\", Inc.");
    assert_int_equal(ev.event_time_ms, T_2024_03_01_12H);
    assert_true(ev.amount == 12.5);
    assert_true(has == 1 && label == 1);
    assert_true(rs_event_numeric(&ev, "mcc") == 5811 + 1);
    assert_true(rs_event_numeric(&ev, "dist, km") == 3.5);
    assert_string_equal(rs_event_categ(&ev, "country"), "DE");

    /* same instant as epoch seconds and epoch ms; empty cells skipped */
    const char *r2 = "t2,c-9,,1709294400,,,\"\",,0";
    assert_int_equal(rs_csv_decode(csv, r2, strlen(r2), &ev, &label, &has, es,
                                   sizeof(es)), RS_OK);
    assert_int_equal(ev.event_time_ms, T_2024_03_01_12H);
    assert_true(ev.amount == 0 && ev.n_numeric == 0 && ev.n_categ == 0);
    assert_true(has == 1 && label == 0);
    const char *r3 = "t3,c-9,m,1709294400000,1e3,x,y,z,";
    assert_int_equal(rs_csv_decode(csv, r3, strlen(r3), &ev, &label, &has, es,
                                   sizeof(es)), RS_OK);
    assert_int_equal(ev.event_time_ms, T_2024_03_01_12H);
    assert_true(ev.amount == 1000);
    assert_int_equal(has, 0);
    assert_int_equal(ev.n_categ, 3);
    /* ISO time; quoted newline inside a cell */
    const char *r4 = "t4,c-9,m,2024-03-01T12:00:00.5Z,1,nan,"
                     "\"multi\nline\",0x10,true";
    assert_int_equal(rs_csv_decode(csv, r4, strlen(r4), &ev, &label, &has, es,
                                   sizeof(es)), RS_OK);
    assert_int_equal(ev.event_time_ms, T_2024_03_01_12H + 500);
    assert_string_equal(rs_event_categ(&ev, "country"), "multi\nline");
    /* "nan" and "0x10" are not plain decimals: categorical */
    assert_string_equal(rs_event_categ(&ev, "mcc"), "nan");
    assert_string_equal(rs_event_categ(&ev, "dist, km"), "0x10");
    assert_true(has == 1 && label == 1);
    /* a newline in an id is rejected */
    const char *r4b = "t4,c-9,\"multi\nline\",1709294400,1,,,,";
    assert_int_equal(rs_csv_decode(csv, r4b, strlen(r4b), &ev, &label, &has,
                                   es, sizeof(es)), RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'counterparty_id': control character"));

    /* errors */
    struct { const char *row; rs_err_t err; const char *frag; } bad[] = {
        { "t5,c,m,2024-03-01 12:00:00,1", RS_ERR_INVALID,
          "row has 5 columns, header has 9" },
        { "t5,c,m,2024-03-01 12:00:00,1,2,3,4,5,6", RS_ERR_INVALID,
          "row has 10 columns, header has 9" },
        { "t5,c,m,yesterday,1,2,3,4,0", RS_ERR_INVALID,
          "column 'ts' (time): unparseable" },
        { "t5,c,m,,1,2,3,4,0", RS_ERR_INVALID, "column 'ts' (time): empty" },
        { "t5,c,m,1709294400,NaN,2,3,4,0", RS_ERR_INVALID,
          "column 'amt' (amount): NaN is not allowed" },
        { "t5,c,m,1709294400,-inf,2,3,4,0", RS_ERR_INVALID,
          "infinity is not allowed" },
        { "t5,c,m,1709294400,-3,2,3,4,0", RS_ERR_INVALID,
          "field 'amount': negative" },
        { "t5,c,m,1709294400,abc,2,3,4,0", RS_ERR_INVALID,
          "column 'amt' (amount): 'abc' is not a number" },
        { "t5,c,m,1709294400,1,2,3,4,2", RS_ERR_INVALID,
          "column 'is_fraud' (label)" },
        { ",c,m,1709294400,1,2,3,4,0", RS_ERR_INVALID, "field 'id'" },
        { "t5,c,m,99,1,2,3,4,0", RS_ERR_INVALID, "field 'event_time_ms'" },
        { "t5,\"c,m,1709294400,1,2,3,4,0", RS_ERR_INVALID,
          "unterminated quoted cell in column 2" },
        { "t5,\"c\"x,m,1709294400,1,2,3,4,0", RS_ERR_INVALID,
          "text after the closing quote in column 2" },
        { "t5,c\"x,m,1709294400,1,2,3,4,0", RS_ERR_INVALID,
          "quote inside unquoted cell in column 2" },
        { "0123456789012345678901234567890123456789012345678901234567890123,"
          "c,m,1709294400,1,2,3,4,0", RS_ERR_TOOBIG, "field 'tx_id': too long" },
        { "t5,c\x01,m,1709294400,1,2,3,4,0", RS_ERR_INVALID,
          "field 'entity_id': control character" },
        { "", RS_ERR_INVALID, "row has 1 columns, header has 9" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        es[0] = '\0';
        rs_err_t err = rs_csv_decode(csv, bad[i].row, strlen(bad[i].row), &ev,
                                     &label, &has, es, sizeof(es));
        if (err != bad[i].err || !strstr(es, bad[i].frag))
            fail_msg("row %s: got %s '%s', want '%s'", bad[i].row,
                     rs_err_str(err), es, bad[i].frag);
    }
    rs_csv_destroy(csv);
    rs_csv_destroy(NULL);
}

static void test_csv_header(void **state) {
    (void)state;
    rs_csv_t *csv;
    /* required column missing: named */
    assert_null(csv_open("id=tx_id,entity=card,time=ts", "tx_id,ts,amount"));
    assert_non_null(strstr(es, "CSV header has no column 'card' (mapped to "
                           "entity)"));
    /* renamed optional column missing: named */
    assert_null(csv_open("id=tx_id,entity=card,time=ts,amount=amt",
                         "tx_id,card,ts,amount"));
    assert_non_null(strstr(es, "no column 'amt' (mapped to amount)"));
    /* default-named optional columns may be absent */
    csv = csv_open("id=tx_id,entity=card,time=ts", "tx_id,card,ts");
    assert_non_null(csv);
    rs_csv_destroy(csv);
    /* header errors */
    assert_null(csv_open(NULL, "id,entity_id,\"event_time_ms"));
    assert_non_null(strstr(es, "unterminated"));
    assert_null(csv_open(NULL, "id,entity_id,event_time_ms,"
                         "a_very_long_column_name_of_40_bytes_xx"));
    assert_non_null(strstr(es, "too long"));

    /* unnamed columns are ignored; one column may serve two roles; the
     * type column; extra columns beyond the maxima are ignored */
    char header[1024], row[1024];
    int h = snprintf(header, sizeof(header), ",card,ts,kind");
    int r = snprintf(row, sizeof(row), "0,card-1,1709294400,sensor");
    for (int i = 0; i < RS_MAX_NUMERIC + 4; i++) {
        h += snprintf(header + h, sizeof(header) - (size_t)h, ",n%d", i);
        r += snprintf(row + r, sizeof(row) - (size_t)r, ",%d", i);
    }
    for (int i = 0; i < RS_MAX_CATEG + 4; i++) {
        h += snprintf(header + h, sizeof(header) - (size_t)h, ",c%d", i);
        r += snprintf(row + r, sizeof(row) - (size_t)r, ",v%d", i);
    }
    csv = csv_open("id=card,entity=card,time=ts,type=kind", header);
    assert_non_null(csv);
    rs_event_t ev;
    int has;
    assert_int_equal(rs_csv_decode(csv, row, (size_t)r, &ev, NULL, &has, es,
                                   sizeof(es)), RS_OK);
    assert_string_equal(ev.id, "card-1");
    assert_string_equal(ev.entity_id, "card-1");
    assert_string_equal(ev.type, "sensor");
    assert_int_equal(ev.n_numeric, RS_MAX_NUMERIC);
    assert_int_equal(ev.n_categ, RS_MAX_CATEG);
    assert_string_equal(ev.numeric[RS_MAX_NUMERIC - 1].name, "n15");
    assert_string_equal(ev.categ[0].value, "v0");
    assert_true(isnan(rs_event_numeric(&ev, "")));
    rs_csv_destroy(csv);
}

static void test_csv_record_len(void **state) {
    (void)state;
    const char *s = "a,\"b\nc\",d\r\ne,f\n\"open";
    int complete;
    size_t n = rs_csv_record_len(s, strlen(s), &complete);
    assert_int_equal(complete, 1);
    assert_int_equal(n, strlen("a,\"b\nc\",d\r\n"));
    size_t m = rs_csv_record_len(s + n, strlen(s) - n, &complete);
    assert_int_equal(complete, 1);
    assert_int_equal(m, 4);
    size_t k = rs_csv_record_len(s + n + m, strlen(s) - n - m, &complete);
    assert_int_equal(complete, 0);
    assert_int_equal(k, 5);
}

static void test_json_map(void **state) {
    (void)state;
    rs_csv_map_t map;
    rs_event_t ev;
    double label = -1;
    int has = -1;
    assert_int_equal(rs_csv_map_parse(&map, "id=tx,entity=card,time=ts,"
                                      "amount=amt,label=fraud", es,
                                      sizeof(es)), RS_OK);
    const char *j = "{\"tx\":991,\"card\":\"c1\",\"ts\":1709294400,"
                    "\"amt\":\"5.25\",\"fraud\":true,\"mcc\":\"5411\","
                    "\"dist\":3.5,\"online\":false,\"tags\":[1],\"x\":null}";
    assert_int_equal(rs_event_from_json_map(&map, j, strlen(j), &ev, &label,
                                            &has, es, sizeof(es)), RS_OK);
    assert_string_equal(ev.id, "991");
    assert_string_equal(ev.type, "event");
    assert_int_equal(ev.event_time_ms, T_2024_03_01_12H);
    assert_true(ev.amount == 5.25);
    assert_true(has == 1 && label == 1);
    assert_string_equal(rs_event_categ(&ev, "mcc"), "5411");
    assert_true(rs_event_numeric(&ev, "dist") == 3.5);
    assert_true(rs_event_numeric(&ev, "online") == 0);
    assert_int_equal(ev.n_numeric, 2);
    const char *j2 = "{\"tx\":\"a\",\"card\":\"c1\",\"ts\":"
                     "\"2024-03-01 12:00:00\"}";
    assert_int_equal(rs_event_from_json_map(&map, j2, strlen(j2), &ev, &label,
                                            &has, es, sizeof(es)), RS_OK);
    assert_int_equal(has, 0);
    assert_int_equal(ev.event_time_ms, T_2024_03_01_12H);
    const char *j3 = "{\"tx\":\"a\",\"ts\":1709294400000}";
    assert_int_equal(rs_event_from_json_map(&map, j3, strlen(j3), &ev, &label,
                                            &has, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'card' (entity): missing"));
    const char *j4 = "{\"tx\":\"a\",\"card\":\"c\",\"ts\":1709294400000,"
                     "\"fraud\":7}";
    assert_int_equal(rs_event_from_json_map(&map, j4, strlen(j4), &ev, &label,
                                            &has, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "(label)"));
    const char *j5 = "{\"tx\":\"a\",\"card\":\"c\",\"ts\":{}}";
    assert_int_equal(rs_event_from_json_map(&map, j5, strlen(j5), &ev, &label,
                                            &has, es, sizeof(es)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(es, "field 'ts'"));
}

/* ------------------------------------------------------------- robustness */

/* Mutate buf[0..len) in place (and maybe its length) with one of a few
 * edits: flip bits, overwrite bytes with interesting values, truncate,
 * duplicate a slice, insert a byte. */
static size_t mutate(rs_rng_t *rng, uint8_t *buf, size_t len, size_t cap) {
    static const uint8_t interesting[] = { 0, 0xff, 0x7f, 0x80, '"', '\\',
                                           '{', '}', '[', ']', ',', ':',
                                           '-', 'e', '.', '0', '9', 0x0a,
                                           0x12, 0x1a, 0x08 };
    int edits = 1 + (int)rs_rng_below(rng, 4);
    for (int e = 0; e < edits && len; e++) {
        size_t at = rs_rng_below(rng, len);
        switch (rs_rng_below(rng, 6)) {
        case 0: buf[at] ^= (uint8_t)(1u << rs_rng_below(rng, 8)); break;
        case 1:
            buf[at] = interesting[rs_rng_below(rng, sizeof(interesting))];
            break;
        case 2: len = at; break;
        case 3: {
            size_t sl = rs_rng_below(rng, 16) + 1;
            if (at + sl <= len && len + sl <= cap) {
                memmove(buf + at + sl, buf + at, len - at);
                len += sl;
            }
            break;
        }
        case 4:
            if (len + 1 <= cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rs_rng_u64(rng);
                len++;
            }
            break;
        default: buf[at] = (uint8_t)rs_rng_u64(rng); break;
        }
    }
    return len;
}

/* The JSON reader's string scan (proto_jsonr.c jr_string: 8 message bytes
 * a word while 8 are left, then byte by byte) with one special sequence at
 * every offset 0..24 of a string of 0..24 plain bytes after it, and the
 * message ending 0..9 blanks after the string's object, so the special
 * byte falls on every byte of the first, second and third word and on the
 * byte-by-byte tail: escapes (\/, \", \\, \u00e9, \ud83d\ude00) and raw
 * UTF-8 are decoded into 'id' exactly; a raw control character (0x01,
 * tab, 0x1f), a stray quote or invalid UTF-8 in a string the record
 * ignores ("note") is refused with the scanner's own message, and DEL
 * (allowed by RFC 8259) passes.  A scan that lets one of these slip
 * through its word test, or stops a byte early or late, fails here. */
static void test_json_string_scan(void **state) {
    (void)state;
    static const struct { const char *in, *dec; } good[] = {
        {"\\/", "/"}, {"\\\"", "\""}, {"\\\\", "\\"},
        {"\\u00e9", "\xc3\xa9"}, {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
        {"\xc3\xa9", "\xc3\xa9"}, {"\xe2\x82\xac", "\xe2\x82\xac"}, {"", ""},
    };
    static const struct { const char *in, *frag; } bad[] = {
        {"\x01", "control character in a string"},
        {"\t", "control character in a string"},
        {"\x1f", "control character in a string"},
        {"\xff", "invalid UTF-8 in a string"},
        {"\xc3", "invalid UTF-8 in a string"},
        {"\\q", "invalid escape"},
        {"\"", "invalid JSON"},
        {"\x7f", NULL}, /* DEL: allowed in JSON */
    };
    /* plain: lead + tail (up to 48) bytes are read from it */
    char json[256], want[RS_ID_MAX], plain[48];
    rs_event_t ev;
    size_t checks = 0;
    for (size_t k = 0; k < sizeof(plain); k++)
        plain[k] = (char)('a' + k % 26);
    for (int lead = 0; lead <= 24; lead++)
        for (int tail = 0; tail <= 24; tail++)
            for (int blanks = 0; blanks <= 9; blanks++) {
                for (size_t g = 0; g < RS_ARRAY_LEN(good); g++) {
                    snprintf(json, sizeof(json),
                             "{\"type\":\"t\",\"entity_id\":\"c\"," EV_TIME
                             ",\"id\":\"%.*s%s%.*s\"}%*s",
                             lead, plain, good[g].in, tail, plain + lead,
                             blanks, "");
                    snprintf(want, sizeof(want), "%.*s%s%.*s", lead, plain,
                             good[g].dec, tail, plain + lead);
                    if (!*want) continue; /* an empty id is refused */
                    memset(&ev, 0x55, sizeof(ev));
                    expect_event_ok(json, &ev);
                    if (strcmp(ev.id, want))
                        fail_msg("input %s\n  id '%s'\n  want '%s'", json,
                                 ev.id, want);
                    checks++;
                }
                for (size_t b = 0; b < RS_ARRAY_LEN(bad); b++) {
                    snprintf(json, sizeof(json),
                             "{\"id\":\"e\",\"type\":\"t\",\"entity_id\":"
                             "\"c\"," EV_TIME ",\"note\":\"%.*s%s%.*s\"}%*s",
                             lead, plain, bad[b].in, tail, plain + lead,
                             blanks, "");
                    if (bad[b].frag)
                        expect_event_err(json, RS_ERR_INVALID, bad[b].frag);
                    else
                        expect_event_ok(json, &ev);
                    checks++;
                }
            }
    assert_true(checks > 50000);
}

static void test_robustness(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 20240301);
    rs_event_t ev;
    rs_label_t lb;
    rs_score_t sc;
    fill_event(&ev);
    fill_label(&lb);
    fill_score(&sc);

    static uint8_t seeds[6][RS_ENCODE_MAX];
    size_t seed_len[6];
    seed_len[0] = (size_t)rs_event_to_json(&ev, (char *)seeds[0],
                                           RS_ENCODE_MAX);
    seed_len[1] = (size_t)rs_event_to_pb(&ev, seeds[1], RS_ENCODE_MAX);
    seed_len[2] = (size_t)rs_label_to_json(&lb, (char *)seeds[2],
                                           RS_ENCODE_MAX);
    seed_len[3] = (size_t)rs_label_to_pb(&lb, seeds[3], RS_ENCODE_MAX);
    seed_len[4] = (size_t)rs_score_to_json(&sc, (char *)seeds[4],
                                           RS_ENCODE_MAX);
    seed_len[5] = (size_t)rs_score_to_pb(&sc, seeds[5], RS_ENCODE_MAX);

    static uint8_t in[2 * RS_ENCODE_MAX];
    static char out[RS_ENCODE_MAX];
    int ok[6] = { 0 };
    for (int iter = 0; iter < 5000; iter++) {
        for (int s = 0; s < 6; s++) {
            memcpy(in, seeds[s], seed_len[s]);
            size_t n = mutate(&rng, in, seed_len[s], sizeof(in));
            rs_err_t err;
            switch (s) {
            case 0:
                err = rs_event_from_json((char *)in, n, &ev, es, sizeof(es));
                if (!err) assert_true(rs_event_to_json(&ev, out, sizeof(out))
                                      > 0);
                break;
            case 1:
                err = rs_event_from_pb(in, n, &ev, es, sizeof(es));
                if (!err) assert_true(rs_event_to_pb(&ev, (uint8_t *)out,
                                                     sizeof(out)) > 0);
                break;
            case 2:
                err = rs_label_from_json((char *)in, n, &lb, es, sizeof(es));
                if (!err) assert_true(rs_label_to_json(&lb, out, sizeof(out))
                                      > 0);
                break;
            case 3:
                err = rs_label_from_pb(in, n, &lb, es, sizeof(es));
                if (!err) assert_true(rs_label_to_pb(&lb, (uint8_t *)out,
                                                     sizeof(out)) >= 0);
                break;
            case 4:
                err = rs_score_from_json((char *)in, n, &sc, es, sizeof(es));
                if (!err) assert_true(rs_score_to_json(&sc, out, sizeof(out))
                                      > 0);
                break;
            default:
                err = rs_score_from_pb(in, n, &sc, es, sizeof(es));
                if (!err) assert_true(rs_score_to_json(&sc, out, sizeof(out))
                                      > 0);
                break;
            }
            if (err) assert_true(es[0] != '\0');
            else ok[s]++;
        }
    }
    /* the mutations are mild enough that some inputs still decode */
    for (int s = 0; s < 6; s++) assert_true(ok[s] > 0);

    /* CSV rows too */
    rs_csv_map_t map;
    rs_csv_map_parse(&map, "id=tx,entity=card,time=ts,amount=amt,label=y",
                     es, sizeof(es));
    const char *hdr = "tx,card,ts,amt,\"a,b\",c,y";
    const char *row = "t1,\"c\"\"1\",2024-03-01 12:00:00,1.5,\"x,y\",3,1\r\n";
    rs_csv_t *csv = rs_csv_new(&map, hdr, strlen(hdr), es, sizeof(es));
    assert_non_null(csv);
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = strlen(row);
        memcpy(in, row, n);
        n = mutate(&rng, in, n, sizeof(in));
        double label;
        int has;
        rs_err_t err = rs_csv_decode(csv, (char *)in, n, &ev, &label, &has,
                                     es, sizeof(es));
        if (!err) assert_true(rs_event_to_json(&ev, out, sizeof(out)) > 0);
    }
    rs_csv_destroy(csv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision),
        cmocka_unit_test(test_event_json_roundtrip),
        cmocka_unit_test(test_json_doubles),
        cmocka_unit_test(test_label_json_roundtrip),
        cmocka_unit_test(test_score_json_roundtrip),
        cmocka_unit_test(test_encode_batch),
        cmocka_unit_test(test_str_check),
        cmocka_unit_test(test_json_decoders_agree),
        cmocka_unit_test(test_score_event_fields),
        cmocka_unit_test(test_pb_roundtrip),
        cmocka_unit_test(test_score_alert_score),
        cmocka_unit_test(test_json_pb_json),
        cmocka_unit_test(test_object_vs_array),
        cmocka_unit_test(test_event_time_forms),
        cmocka_unit_test(test_event_errors),
        cmocka_unit_test(test_validate_struct),
        cmocka_unit_test(test_label_errors),
        cmocka_unit_test(test_pb_errors),
        cmocka_unit_test(test_pb_arena),
        cmocka_unit_test(test_pb_threads),
        cmocka_unit_test(test_encode_bounds),
        cmocka_unit_test(test_csv_map),
        cmocka_unit_test(test_csv_decode),
        cmocka_unit_test(test_csv_header),
        cmocka_unit_test(test_csv_record_len),
        cmocka_unit_test(test_json_map),
        cmocka_unit_test(test_json_string_scan),
        cmocka_unit_test(test_robustness),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
