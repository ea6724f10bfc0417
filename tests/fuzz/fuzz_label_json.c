/* fuzz_label_json.c -- libFuzzer target: rs_label_from_json.  It must
 * agree with the jansson decoder it replaced (same error code, same
 * label) and with its own frozen copy of main 6a42981
 * (tests/proto/jsonr_ref.c: same code, message and record bytes), and a decoded label must round-trip through JSON bit-exact and
 * through protobuf. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "proto/proto_int.h"

rs_err_t rs_label_from_json_ref(const char *buf, size_t len, rs_label_t *lb,
                                char *errstr, size_t errstr_size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char js[RS_ENCODE_MAX];
    static uint8_t pb[RS_ENCODE_MAX];
    rs_label_t lb, back, ref;
    char es[256], es2[256];
    rs_label_t frz;
    char es3[256];
    rs_err_t err = rs_label_from_json((const char *)data, size, &lb, es,
                                      sizeof(es));
    FUZZ_CHECK(rs_label_from_json_ref((const char *)data, size, &frz, es3,
                                      sizeof(es3)) == err);
    FUZZ_CHECK(memcmp(&lb, &frz, sizeof(lb)) == 0);
    if (err != RS_OK) FUZZ_CHECK(strcmp(es, es3) == 0);
    /* the streaming decoder and the jansson one agree (but on raw NUL
     * bytes: see fuzz_event_json.c) */
    int cmp = !memchr(data, '\0', size);
    rs_err_t rerr = cmp ? rs_label_from_json_jansson((const char *)data, size,
                                                     &ref, es2, sizeof(es2))
                        : err;
    FUZZ_CHECK(err == rerr);
    if (err != RS_OK) {
        FUZZ_CHECK(es[0] != '\0');
        return 0;
    }
    if (cmp)
        FUZZ_CHECK(strcmp(lb.event_id, ref.event_id) == 0 &&
               strcmp(lb.entity_id, ref.entity_id) == 0 &&
               fuzz_dbl_eq(lb.value, ref.value, 1) &&
               lb.label_time_ms == ref.label_time_ms);
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
