/* fuzz_event_pb.c -- libFuzzer target: rs_event_from_pb, rs_label_from_pb
 * and rs_score_from_pb on the same bytes.  Decoded records must encode
 * again; events must round-trip (fuzz_common.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rs_event_t ev;
    static rs_label_t lb;
    static rs_score_t sc, sc2;
    static uint8_t pb[RS_ENCODE_MAX];
    static char js[RS_ENCODE_MAX];
    char es[256];
    if (rs_event_from_pb(data, size, &ev, es, sizeof(es)) == RS_OK)
        fuzz_event_roundtrip(&ev);
    else
        FUZZ_CHECK(es[0] != '\0');
    if (rs_label_from_pb(data, size, &lb, es, sizeof(es)) == RS_OK) {
        FUZZ_CHECK(rs_label_to_pb(&lb, pb, sizeof(pb)) >= 0);
        FUZZ_CHECK(rs_label_to_json(&lb, js, sizeof(js)) > 0);
    }
    if (rs_score_from_pb(data, size, &sc, es, sizeof(es)) == RS_OK) {
        /* scores are not validated: any strings, any doubles */
        FUZZ_CHECK(rs_score_to_json(&sc, js, sizeof(js)) > 0);
        int n = rs_score_to_pb(&sc, pb, sizeof(pb));
        FUZZ_CHECK(n >= 0);
        FUZZ_CHECK(rs_score_from_pb(pb, (size_t)n, &sc2, es, sizeof(es)) ==
                   RS_OK);
        FUZZ_CHECK(strcmp(sc.event_id, sc2.event_id) == 0 &&
                   strcmp(sc.model_version, sc2.model_version) == 0 &&
                   sc.explanation.n_attended == sc2.explanation.n_attended &&
                   sc.explanation.n_reasons == sc2.explanation.n_reasons);
    }
    return 0;
}
