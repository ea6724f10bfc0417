/* fuzz_event_json.c -- libFuzzer target: rs_event_from_json (and, on the
 * same bytes, rs_score_from_json).  Decoded events must round-trip through
 * JSON and protobuf, decoded scores through JSON (fuzz_common.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rs_event_t ev;
    static rs_score_t sc;
    static char js[RS_ENCODE_MAX];
    char es[256];
    if (rs_event_from_json((const char *)data, size, &ev, es, sizeof(es)) ==
        RS_OK)
        fuzz_event_roundtrip(&ev);
    else
        FUZZ_CHECK(es[0] != '\0');
    if (rs_score_from_json((const char *)data, size, &sc, es, sizeof(es)) ==
        RS_OK) {
        FUZZ_CHECK(rs_score_to_json(&sc, js, sizeof(js)) > 0);
        fuzz_score_roundtrip(&sc);
    }
    return 0;
}
