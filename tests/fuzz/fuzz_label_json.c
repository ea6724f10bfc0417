/* fuzz_label_json.c -- libFuzzer target: rs_label_from_json.  A decoded
 * label must round-trip through JSON bit-exact and through protobuf. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char js[RS_ENCODE_MAX];
    static uint8_t pb[RS_ENCODE_MAX];
    rs_label_t lb, back;
    char es[256];
    if (rs_label_from_json((const char *)data, size, &lb, es, sizeof(es)) !=
        RS_OK) {
        FUZZ_CHECK(es[0] != '\0');
        return 0;
    }
    int n = rs_label_to_json(&lb, js, sizeof(js));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(rs_label_from_json(js, (size_t)n, &back, es, sizeof(es)) ==
               RS_OK);
    FUZZ_CHECK(strcmp(lb.event_id, back.event_id) == 0 &&
               strcmp(lb.entity_id, back.entity_id) == 0 &&
               fuzz_dbl_eq(lb.value, back.value, 1) &&
               lb.label_time_ms == back.label_time_ms);
    n = rs_label_to_pb(&lb, pb, sizeof(pb));
    FUZZ_CHECK(n >= 0);
    FUZZ_CHECK(rs_label_from_pb(pb, (size_t)n, &back, es, sizeof(es)) ==
               RS_OK);
    FUZZ_CHECK(strcmp(lb.event_id, back.event_id) == 0 &&
               lb.value == back.value &&
               lb.label_time_ms == back.label_time_ms);
    return 0;
}
