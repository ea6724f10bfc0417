/* fuzz_tz.c -- libFuzzer target: the TZif reader (rs_tz_parse, common/tz.c).
 *
 * Input: the bytes of a TZif file.  A zone that parses must answer every
 * lookup with an offset within +-26 h and an interval [from, until) that
 * contains the instant; instants far in the past and future and around
 * its transitions are tried.  Seeds: real zones of Debian's tzdata
 * (public domain) in corpus/fuzz_tz. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "common/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char es[256];
    rs_tz_t *tz = rs_tz_parse(data, size, "fuzz", es, sizeof(es));
    if (!tz) return 0;
    static const int64_t when[] = {
        INT64_MIN / 2, -2208988800000LL, -1, 0, 1, 946684800000LL,
        1711846800000LL, 1729990800000LL, 2147483647000LL, 4102444800000LL,
        7258118400000LL, INT64_MAX / 2};
    for (size_t i = 0; i < sizeof(when) / sizeof(when[0]); i++) {
        int64_t from, until;
        int32_t off = rs_tz_offset(tz, when[i], &from, &until);
        FUZZ_CHECK(off >= -26 * 3600 && off <= 26 * 3600);
        FUZZ_CHECK(from <= when[i] || from == INT64_MIN);
        FUZZ_CHECK(until > when[i] || until == INT64_MAX);
        if (from != INT64_MIN) /* the offset holds on the whole interval */
            FUZZ_CHECK(rs_tz_offset(tz, from, NULL, NULL) == off);
    }
    rs_tz_destroy(tz);
    return 0;
}
