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

#endif /* RS_FUZZ_COMMON_H */
