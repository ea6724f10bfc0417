/* fuzz_event_json.c -- libFuzzer target: rs_event_from_json (and, on the
 * same bytes, rs_score_from_json).  The streaming event decoder must agree
 * with the jansson one it replaced (same error code, same record, bit for
 * bit) and with its own frozen copy of main 6a42981 (tests/proto/jsonr_ref.c:
 * same code, same message, same record bytes, also after a refusal).  Decoded events must round-trip through
 * JSON and protobuf, decoded scores through JSON (fuzz_common.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "proto/proto_int.h"

rs_err_t rs_event_from_json_ref(const char *buf, size_t len, rs_event_t *ev,
                                char *errstr, size_t errstr_size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static rs_event_t ev;
    static rs_score_t sc;
    static char js[RS_ENCODE_MAX];
    char es[256];
    static rs_event_t ref;
    char es2[256];
    static rs_event_t frz;
    char es3[256];
    rs_err_t err = rs_event_from_json((const char *)data, size, &ev, es,
                                      sizeof(es));
    FUZZ_CHECK(rs_event_from_json_ref((const char *)data, size, &frz, es3,
                                      sizeof(es3)) == err);
    FUZZ_CHECK(memcmp(&ev, &frz, sizeof(ev)) == 0);
    if (err != RS_OK) FUZZ_CHECK(strcmp(es, es3) == 0);
    /* the streaming decoder and the jansson one agree -- except on raw NUL
     * bytes, which jansson skips after a token and RFC 8259 (and we)
     * refuse */
    int cmp = !memchr(data, '\0', size);
    if (cmp)
        FUZZ_CHECK(rs_event_from_json_jansson((const char *)data, size, &ref,
                                              es2, sizeof(es2)) == err);
    if (err == RS_OK) {
        if (cmp) FUZZ_CHECK(fuzz_event_eq(&ev, &ref, 1));
        fuzz_event_roundtrip(&ev);
    } else {
        FUZZ_CHECK(es[0] != '\0');
    }
    if (rs_score_from_json((const char *)data, size, &sc, es, sizeof(es)) ==
        RS_OK) {
        FUZZ_CHECK(rs_score_to_json(&sc, js, sizeof(js)) > 0);
        fuzz_score_roundtrip(&sc);
    }
    return 0;
}
