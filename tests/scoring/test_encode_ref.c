/* test_encode_ref.c -- the score record encoders against their frozen
 * reference (encode_ref.c: the code of main 5504bda), byte for byte:
 *   - rs_score_to_json, rs_event_to_json, rs_label_to_json (the JSON of
 *     the scores topic, of Redis JSON records and of every audit read);
 *   - rs_redis_rec_encode (the compact Redis record);
 * on many random records: strings with quotes, backslashes, control
 * characters, DEL, valid UTF-8 of 2-4 bytes, invalid UTF-8 (stray
 * continuation bytes, overlongs, surrogates, truncated sequences), strings
 * filling their whole buffer without a NUL, garbage after the NUL; numbers
 * at the edges (+-0, NaN, infinities, subnormals, float32 and double
 * extremes, the fixed/exponent notation boundaries, random bits); counts
 * out of range; and buffers too small at every length (same return value,
 * same bytes written). */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "encode_ref.h"
#include "scoring/sink.h"

typedef struct rng_s { uint64_t s; } rng_t;

static uint64_t rnd(rng_t *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static unsigned below(rng_t *r, unsigned n) { return (unsigned)(rnd(r) % n); }

/* Fill buf[cap]: a string of mixed pieces, NUL-terminated (or, rarely,
 * filling the whole buffer), then garbage after the NUL. */
static void rstr(rng_t *r, char *buf, size_t cap) {
    static const char *const piece[] = {
        "a", "tx-", "card", "Z9", " ", "\"", "\\", "\n", "\t", "\r", "\b",
        "\f", "\x01", "\x1f", "\x7f", "/", "<", "\xc3\xa9", "\xe4\xb8\xad",
        "\xf0\x9f\x98\x80", "\xc2\x80", "\xdf\xbf", "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf", /* valid, up to U+10FFFF */
        "\x80", "\xbf", "\xc0\xaf", "\xc1", "\xe0\x80\x80", "\xed\xa0\x80",
        "\xf5", "\xff", "\xfe", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80",
        "\xc3", "\xe4\xb8", "\xf0\x9f\x98", /* invalid / truncated */
        "0123456789abcdef", "merchant_category"};
    size_t n = 0, want;
    unsigned mode = below(r, 64);
    want = mode == 0 ? 0 : mode < 3 ? cap : below(r, (unsigned)cap);
    while (n < want) {
        const char *p = piece[below(r, sizeof(piece) / sizeof(piece[0]))];
        size_t l = strlen(p);
        if (n + l > want) l = want - n;
        memcpy(buf + n, p, l);
        n += l;
    }
    if (mode == 1 && n == cap) return; /* no NUL: fills the buffer */
    if (n >= cap) n = cap - 1;
    buf[n] = '\0';
    for (size_t i = n + 1; i < cap; i++) /* garbage after the end */
        buf[i] = (char)(below(r, 4) ? 1 + below(r, 255) : 0);
}

static double rdbl(rng_t *r, int f32) {
    static const double edge[] = {
        0.0, -0.0, 1.0, -1.0, 0.5, 1e-7, 1e-6, 9.999999e-7, 1e15, 1e16,
        9999999999999998.0, 1e21, 123456789012345678.0, 0.1, 0.3,
        2.2250738585072014e-308, 4.9e-324, DBL_MAX, -DBL_MAX, FLT_MAX,
        -FLT_MAX, 1.401298464324817e-45, 1.1754943508222875e-38,
        3.4028235677973366e38, 16777216.0, 16777217.0, 0.12345679104328156,
        7.038531e-26, 100.0, 12.5, 1767225600000.0};
    uint64_t b;
    double d;
    switch (below(r, 10)) {
    case 0: return edge[below(r, sizeof(edge) / sizeof(edge[0]))];
    case 1: return below(r, 2) ? NAN : below(r, 2) ? INFINITY : -INFINITY;
    case 2: {
        b = rnd(r);
        memcpy(&d, &b, sizeof(d));
        return d;
    }
    case 3: {
        uint32_t fb = (uint32_t)rnd(r);
        float f;
        memcpy(&f, &fb, sizeof(f));
        return (double)f;
    }
    case 4: return (double)(int64_t)(rnd(r) % 10000000) / 100.0;
    case 5: return (double)below(r, 100000);
    default: {
        double v = (double)(rnd(r) >> 11) / 9007199254740992.0;
        if (below(r, 2)) v = -v;
        v *= pow(10.0, (double)((int)below(r, 40) - 20));
        return f32 ? (double)(float)v : v;
    }
    }
}

static int rcount(rng_t *r, int max) {
    unsigned m = below(r, 40);
    if (m == 0) return -1;
    if (m == 1) return max + 1;
    return (int)below(r, (unsigned)max + 1);
}

static void rscore(rng_t *r, rs_score_t *sc) {
    memset(sc, 0x5a, sizeof(*sc)); /* garbage past the counts */
    rstr(r, sc->event_id, sizeof(sc->event_id));
    rstr(r, sc->entity_id, sizeof(sc->entity_id));
    sc->score = rdbl(r, 1);
    sc->decision = (rs_decision_t)(below(r, 20) ? below(r, 5) : 7);
    rstr(r, sc->model_version, sizeof(sc->model_version));
    sc->event_time_ms = (int64_t)rnd(r) >> below(r, 64);
    sc->scored_at_ms = (int64_t)rnd(r) >> below(r, 64);
    sc->latency_us = (int64_t)rnd(r) >> below(r, 64);
    sc->flags = (uint32_t)rnd(r);
    sc->rul = below(r, 2) ? 0 : (int64_t)rnd(r) >> below(r, 64);
    sc->alert_score = below(r, 2) ? 0 : rdbl(r, 1);
    rs_explanation_t *ex = &sc->explanation;
    ex->n_attended = rcount(r, RS_MAX_ATTEND);
    for (int i = 0; i < RS_MAX_ATTEND; i++) {
        rs_attended_t *a = &ex->attended[i];
        rstr(r, a->event_id, sizeof(a->event_id));
        a->event_time_ms = (int64_t)rnd(r) >> below(r, 64);
        a->amount = rdbl(r, 1);
        rstr(r, a->counterparty_id, sizeof(a->counterparty_id));
        a->weight = rdbl(r, 1);
    }
    ex->n_contrib = rcount(r, RS_MAX_CONTRIB);
    for (int i = 0; i < RS_MAX_CONTRIB; i++) {
        rs_contrib_t *c = &ex->contrib[i];
        rstr(r, c->name, sizeof(c->name));
        c->value = rdbl(r, 1);
        c->contribution = rdbl(r, 1);
        rstr(r, c->text, sizeof(c->text));
    }
    ex->n_experts = rcount(r, RS_MAX_EXPERTS);
    for (int i = 0; i < RS_MAX_EXPERTS; i++) {
        ex->experts[i].expert = (uint32_t)rnd(r);
        ex->experts[i].gate_weight = rdbl(r, 1);
    }
    ex->n_reasons = rcount(r, RS_MAX_REASONS);
    for (int i = 0; i < RS_MAX_REASONS; i++)
        rstr(r, ex->reasons[i], RS_REASON_MAX);
    rs_event_fields_t *ef = &sc->event;
    ef->present = (int)below(r, 2);
    rstr(r, ef->type, sizeof(ef->type));
    rstr(r, ef->counterparty_id, sizeof(ef->counterparty_id));
    ef->amount = rdbl(r, 0);
    ef->n_numeric = rcount(r, RS_MAX_NUMERIC);
    for (int i = 0; i < RS_MAX_NUMERIC; i++) {
        rstr(r, ef->numeric[i].name, RS_NAME_MAX);
        ef->numeric[i].value = rdbl(r, 0);
    }
    ef->n_categ = rcount(r, RS_MAX_CATEG);
    for (int i = 0; i < RS_MAX_CATEG; i++) {
        rstr(r, ef->categ[i].name, RS_NAME_MAX);
        rstr(r, ef->categ[i].value, RS_CATVAL_MAX);
    }
}

static char ja[RS_ENCODE_MAX + 16], jb[RS_ENCODE_MAX + 16];
static uint8_t ca[RS_REDIS_REC_MAX + 16], cb[RS_REDIS_REC_MAX + 16];

/* Both JSON writers into equal-filled buffers of `size`: same return,
 * same bytes (the whole buffer: what a too-small buffer got too). */
#define SAME_JSON(fn_new, fn_ref, rec, size, what, i)                      \
    do {                                                                   \
        memset(ja, 'Q', sizeof(ja));                                       \
        memset(jb, 'Q', sizeof(jb));                                       \
        int na_ = fn_new(rec, ja, size), nb_ = fn_ref(rec, jb, size);      \
        if (na_ != nb_ || memcmp(ja, jb, sizeof(ja)))                      \
            fail_msg("%s %d size %zu: new %d, reference %d\nnew %.300s\n"  \
                     "ref %.300s", what, i, (size_t)(size), na_, nb_, ja,  \
                     jb);                                                  \
        full_ = nb_;                                                       \
    } while (0)

static void test_json_equal(void **state) {
    (void)state;
    rng_t r = {0x9e3779b97f4a7c15ULL};
    rs_score_t *sc = malloc(sizeof(*sc));
    int ok = 0, full_;
    for (int i = 0; i < 20000; i++) {
        rscore(&r, sc);
        SAME_JSON(rs_score_to_json, ref_score_to_json, sc, RS_ENCODE_MAX,
                  "score", i);
        if (full_ >= 0) {
            ok++;
            size_t small = 1 + below(&r, (unsigned)full_ + 1);
            SAME_JSON(rs_score_to_json, ref_score_to_json, sc, small,
                      "score (small buffer)", i);
        }
        /* an event and a label from the same strings and numbers */
        rs_event_t ev;
        memset(&ev, 0x5a, sizeof(ev));
        memcpy(ev.id, sc->event_id, sizeof(ev.id));
        memcpy(ev.type, sc->event.type, sizeof(ev.type));
        memcpy(ev.entity_id, sc->entity_id, sizeof(ev.entity_id));
        memcpy(ev.counterparty_id, sc->event.counterparty_id,
               sizeof(ev.counterparty_id));
        ev.event_time_ms = sc->event_time_ms;
        ev.amount = sc->event.amount;
        ev.n_numeric = sc->event.n_numeric;
        memcpy(ev.numeric, sc->event.numeric, sizeof(ev.numeric));
        ev.n_categ = sc->event.n_categ;
        memcpy(ev.categ, sc->event.categ, sizeof(ev.categ));
        SAME_JSON(rs_event_to_json, ref_event_to_json, &ev, RS_ENCODE_MAX,
                  "event", i);
        rs_label_t lb;
        memcpy(lb.event_id, sc->explanation.attended[0].event_id,
               sizeof(lb.event_id));
        memcpy(lb.entity_id, sc->explanation.attended[1].counterparty_id,
               sizeof(lb.entity_id));
        lb.value = sc->score;
        lb.label_time_ms = sc->latency_us;
        SAME_JSON(rs_label_to_json, ref_label_to_json, &lb, RS_ENCODE_MAX,
                  "label", i);
    }
    free(sc);
    /* most records were encodable (the rest: counts out of range) */
    print_message("JSON: %d of 20000 random records encodable\n", ok);
    assert_true(ok > 10000);
}

static void test_compact_equal(void **state) {
    (void)state;
    rng_t r = {0x2545f4914f6cdd1dULL};
    rs_score_t *sc = malloc(sizeof(*sc));
    int ok = 0;
    for (int i = 0; i < 20000; i++) {
        rscore(&r, sc);
        size_t sizes[2] = {RS_REDIS_REC_MAX, 1 + below(&r, 3000)};
        for (int z = 0; z < 2; z++) {
            memset(ca, 'Q', sizeof(ca));
            memset(cb, 'Q', sizeof(cb));
            int na = rs_redis_rec_encode(sc, ca, sizes[z]);
            int nb = ref_redis_rec_encode(sc, cb, sizes[z]);
            if (na != nb || (nb > 0 && memcmp(ca, cb, (size_t)nb)))
                fail_msg("record %d size %zu: new %d, reference %d", i,
                         sizes[z], na, nb);
            ok += z == 0 && nb > 0;
        }
    }
    free(sc);
    print_message("compact: %d of 20000 random records encodable\n", ok);
    assert_true(ok > 2000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_equal),
        cmocka_unit_test(test_compact_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
