/* fuzz_csv.c -- libFuzzer target: the CSV reader and foreign JSON lines.
 *
 * Input layout: line 1 is a mapping spec (rs_csv_map_parse; the defaults
 * if it is rejected), line 2 the CSV header, the rest CSV records split
 * with rs_csv_record_len.  Every record is also tried as a foreign JSON
 * line with the same mapping.  Decoded events must round-trip
 * (fuzz_common.h). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

static size_t line_len(const char *p, size_t n) {
    const char *nl = memchr(p, '\n', n);
    return nl ? (size_t)(nl - p) + 1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    size_t n = size;
    char spec[256], es[256];
    rs_csv_map_t map;
    rs_event_t ev;
    double label;
    int has;

    size_t l = line_len(p, n);
    size_t sl = RS_MIN(l, sizeof(spec) - 1);
    memcpy(spec, p, sl);
    spec[sl] = '\0';   /* a NUL inside just shortens the spec */
    if (sl && spec[sl - 1] == '\n') spec[sl - 1] = '\0';
    if (rs_csv_map_parse(&map, spec, es, sizeof(es)) != RS_OK)
        FUZZ_CHECK(rs_csv_map_parse(&map, NULL, es, sizeof(es)) == RS_OK);
    p += l;
    n -= l;

    int complete;
    l = rs_csv_record_len(p, n, &complete);
    rs_csv_t *csv = rs_csv_new(&map, p, l, es, sizeof(es));
    p += l;
    n -= l;
    while (n) {
        l = rs_csv_record_len(p, n, &complete);
        FUZZ_CHECK(l > 0 && l <= n);
        if (csv &&
            rs_csv_decode(csv, p, l, &ev, &label, &has, es, sizeof(es)) ==
                RS_OK) {
            fuzz_event_roundtrip(&ev);
            FUZZ_CHECK(!has || (label >= 0 && label <= 1));
        }
        if (rs_event_from_json_map(&map, p, l, &ev, &label, &has, es,
                                   sizeof(es)) == RS_OK)
            fuzz_event_roundtrip(&ev);
        p += l;
        n -= l;
    }
    rs_csv_destroy(csv);
    return 0;
}
