/* fuzz_rtf.c -- libFuzzer target: the whitespace run-to-failure reader
 * (proto.h rs_rtf_conf_parse, rs_rtf_decode).
 *
 * Input layout: line 1 is a --map spec (the defaults if it is rejected),
 * the rest rows.  Oracles: a decoded row is a valid event (it validated),
 * its time is start + cycle x period, its id names its unit and cycle,
 * only settingK/sensorK fields, and it round-trips through JSON
 * (fuzz_common.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    size_t n = size;
    const char *nl = memchr(p, '\n', n);
    size_t l = nl ? (size_t)(nl - p) + 1 : n;
    char spec[256], es[256];
    size_t sl = RS_MIN(l, sizeof(spec) - 1);
    memcpy(spec, p, sl);
    spec[sl] = '\0';
    if (sl && spec[sl - 1] == '\n') spec[sl - 1] = '\0';
    rs_rtf_conf_t c;
    if (rs_rtf_conf_parse(&c, spec, es, sizeof(es)) != RS_OK) {
        FUZZ_CHECK(es[0] != '\0');
        rs_rtf_conf_init(&c);
    }
    FUZZ_CHECK(c.period_ms >= 1 && c.settings >= 0 && c.settings <= 3);
    p += l;
    n -= l;
    static rs_event_t ev;
    while (n) {
        nl = memchr(p, '\n', n);
        l = nl ? (size_t)(nl - p) + 1 : n;
        int64_t unit = -1, cycle = -1;
        es[0] = '\0';
        rs_err_t e = rs_rtf_decode(&c, p, l, &ev, &unit, &cycle, es, sizeof(es));
        if (e == RS_OK) {
            FUZZ_CHECK(unit >= 0 && cycle >= 0);
            FUZZ_CHECK(rs_event_validate(&ev, es, sizeof(es)) == RS_OK);
            FUZZ_CHECK(ev.event_time_ms ==
                       (int64_t)((double)c.start_ms + (double)cycle * (double)c.period_ms));
            char want[RS_ID_MAX];
            snprintf(want, sizeof(want), "%s%lld-c%lld", c.prefix,
                     (long long)unit, (long long)cycle);
            FUZZ_CHECK(!strcmp(ev.id, want));
            FUZZ_CHECK(ev.n_numeric >= 0 && ev.n_numeric <= RS_MAX_NUMERIC);
            for (int i = 0; i < ev.n_numeric; i++)
                FUZZ_CHECK(!strncmp(ev.numeric[i].name, "setting", 7) ||
                           !strncmp(ev.numeric[i].name, "sensor", 6));
            fuzz_event_roundtrip(&ev);
        } else {
            FUZZ_CHECK(e == RS_ERR_AGAIN || (e == RS_ERR_INVALID && es[0]));
        }
        p += l;
        n -= l;
    }
    return 0;
}
