/* fuzz_common.h -- shared checks of the proto fuzz targets.
 *
 * Besides "never crash", every target checks an oracle: a record that
 * decodes must encode, and the encoding must decode to the same record
 * (JSON bit-exact; protobuf equal by value, since protobuf-c writes -0.0
 * as an absent field).  A violation aborts, which libFuzzer reports.
 */
#ifndef RS_FUZZ_COMMON_H
#define RS_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)

static inline int fuzz_dbl_eq(double a, double b, int bits) {
    return bits ? memcmp(&a, &b, sizeof(a)) == 0 : a == b;
}

static inline int fuzz_event_eq(const rs_event_t *a, const rs_event_t *b,
                                int bits) {
    if (strcmp(a->id, b->id) || strcmp(a->type, b->type) ||
        strcmp(a->entity_id, b->entity_id) ||
        strcmp(a->counterparty_id, b->counterparty_id) ||
        a->event_time_ms != b->event_time_ms ||
        !fuzz_dbl_eq(a->amount, b->amount, bits) ||
        a->n_numeric != b->n_numeric || a->n_categ != b->n_categ)
        return 0;
    for (int i = 0; i < a->n_numeric; i++)
        if (strcmp(a->numeric[i].name, b->numeric[i].name) ||
            !fuzz_dbl_eq(a->numeric[i].value, b->numeric[i].value, bits))
            return 0;
    for (int i = 0; i < a->n_categ; i++)
        if (strcmp(a->categ[i].name, b->categ[i].name) ||
            strcmp(a->categ[i].value, b->categ[i].value))
            return 0;
    return 1;
}

/* A valid event must survive JSON and protobuf round trips. */
static inline void fuzz_event_roundtrip(const rs_event_t *ev) {
    static char js[RS_ENCODE_MAX];
    static uint8_t pb[RS_ENCODE_MAX];
    static rs_event_t back;
    char es[256];
    int n = rs_event_to_json(ev, js, sizeof(js));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(rs_event_from_json(js, (size_t)n, &back, es, sizeof(es)) ==
               RS_OK);
    FUZZ_CHECK(fuzz_event_eq(ev, &back, 1));
    n = rs_event_to_pb(ev, pb, sizeof(pb));
    FUZZ_CHECK(n >= 0);
    FUZZ_CHECK(rs_event_from_pb(pb, (size_t)n, &back, es, sizeof(es)) ==
               RS_OK);
    FUZZ_CHECK(fuzz_event_eq(ev, &back, 0));
}

static inline int fuzz_score_eq(const rs_score_t *a, const rs_score_t *b) {
    const rs_explanation_t *x = &a->explanation, *y = &b->explanation;
    if (strcmp(a->event_id, b->event_id) || strcmp(a->entity_id, b->entity_id) ||
        !fuzz_dbl_eq(a->score, b->score, 1) || a->decision != b->decision ||
        strcmp(a->model_version, b->model_version) ||
        a->event_time_ms != b->event_time_ms ||
        a->scored_at_ms != b->scored_at_ms || a->latency_us != b->latency_us ||
        a->flags != b->flags || a->rul != b->rul ||
        /* by value: a -0 alert_score is not written, reads back as 0 */
        !fuzz_dbl_eq(a->alert_score, b->alert_score, 0) ||
        x->n_attended != y->n_attended ||
        x->n_contrib != y->n_contrib || x->n_experts != y->n_experts ||
        x->n_reasons != y->n_reasons)
        return 0;
    for (int i = 0; i < x->n_attended; i++) {
        const rs_attended_t *p = &x->attended[i], *q = &y->attended[i];
        if (strcmp(p->event_id, q->event_id) ||
            p->event_time_ms != q->event_time_ms ||
            !fuzz_dbl_eq(p->amount, q->amount, 1) ||
            strcmp(p->counterparty_id, q->counterparty_id) ||
            !fuzz_dbl_eq(p->weight, q->weight, 1))
            return 0;
    }
    for (int i = 0; i < x->n_contrib; i++)
        if (strcmp(x->contrib[i].name, y->contrib[i].name) ||
            !fuzz_dbl_eq(x->contrib[i].value, y->contrib[i].value, 1) ||
            !fuzz_dbl_eq(x->contrib[i].contribution,
                         y->contrib[i].contribution, 1))
            return 0;
    for (int i = 0; i < x->n_experts; i++)
        if (x->experts[i].expert != y->experts[i].expert ||
            !fuzz_dbl_eq(x->experts[i].gate_weight, y->experts[i].gate_weight,
                         1))
            return 0;
    for (int i = 0; i < x->n_reasons; i++)
        if (strcmp(x->reasons[i], y->reasons[i])) return 0;
    for (int i = 0; i < x->n_contrib; i++)
        if (strcmp(x->contrib[i].text, y->contrib[i].text)) return 0;
    /* Score.event: the event's own fields (doubles, bit for bit) */
    const rs_event_fields_t *e = &a->event, *f = &b->event;
    if (e->present != f->present) return 0;
    if (!e->present) return 1;
    if (strcmp(e->type, f->type) ||
        strcmp(e->counterparty_id, f->counterparty_id) ||
        !fuzz_dbl_eq(e->amount, f->amount, 1) || e->n_numeric != f->n_numeric ||
        e->n_categ != f->n_categ)
        return 0;
    for (int i = 0; i < e->n_numeric; i++)
        if (strcmp(e->numeric[i].name, f->numeric[i].name) ||
            !fuzz_dbl_eq(e->numeric[i].value, f->numeric[i].value, 1))
            return 0;
    for (int i = 0; i < e->n_categ; i++)
        if (strcmp(e->categ[i].name, f->categ[i].name) ||
            strcmp(e->categ[i].value, f->categ[i].value))
            return 0;
    return 1;
}

/* A decoded score record encodes, and its JSON decodes to the same record,
 * bit for bit (float32 fields included: they were rounded to float32 by
 * the first decode and are written as the shortest float32 text). */
static inline void fuzz_score_roundtrip(const rs_score_t *sc) {
    static char js[RS_ENCODE_MAX];
    static rs_score_t back;
    char es[256];
    int n = rs_score_to_json(sc, js, sizeof(js));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(rs_score_from_json(js, (size_t)n, &back, es, sizeof(es)) ==
               RS_OK);
    FUZZ_CHECK(fuzz_score_eq(sc, &back));
}

#endif /* RS_FUZZ_COMMON_H */
