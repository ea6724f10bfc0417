/* fuzz_fmt.c -- libFuzzer target: common/fmt.c against glibc.
 *
 * The first 8 (4) bytes as a double (float) bit pattern: rs_fmt_f64
 * (rs_fmt_f32) must read back through strtod (strtof) to the same bits and
 * be shortest (neither (n-1)-digit neighbour reads back).  The whole input
 * mapped onto the number alphabet "0123456789.eE+-" (every prefix, sign,
 * point and exponent shape): rs_parse_f64 / rs_parse_f32 must end where
 * strtod / strtof end and give the same bits.  The double also through
 * rs_fmt_fixed / rs_fmt_general: the same text as snprintf's "%.Nf",
 * "%+.Nf" and "%.Ng" (N from the 9th byte).  A mismatch aborts. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fmt.h"

#define FUZZ_CHECK(c) do { if (!(c)) abort(); } while (0)

/* value = D * 10^E of a text written by rs_fmt_*; n digits in D */
static int fuzz_dec(const char *s, uint64_t *D, int *E) {
    uint64_t d = 0;
    int e = 0, nd = 0, pt = 0, zeros = 0;
    if (*s == '-') s++;
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') { pt = 1; continue; }
        if (pt) e--;
        if (nd == 0 && *s == '0') continue;
        if (*s == '0') { zeros++; continue; }
        for (; zeros; zeros--) { d *= 10; nd++; }
        d = d * 10 + (uint64_t)(*s - '0');
        nd++;
    }
    e += zeros;
    if (*s == 'e') e += atoi(s + 1);
    *D = d;
    *E = e;
    return nd;
}

static void fuzz_out(double v, int f32) {
    char b[RS_FMT_F64_MAX + 1], c[64];
    int len = f32 ? rs_fmt_f32((float)v, b) : rs_fmt_f64(v, b);
    FUZZ_CHECK(len > 0 && len < (f32 ? RS_FMT_F32_MAX : RS_FMT_F64_MAX));
    b[len] = '\0';
    if (isnan(v)) return;
    if (f32) {
        float r = strtof(b, NULL), x = (float)v;
        FUZZ_CHECK(!memcmp(&r, &x, 4));
    } else {
        double r = strtod(b, NULL);
        FUZZ_CHECK(!memcmp(&r, &v, 8));
    }
    if (v == 0 || isinf(v)) return;
    uint64_t D;
    int E;
    if (fuzz_dec(b, &D, &E) < 2) return;
    for (int up = 0; up < 2; up++) {
        snprintf(c, sizeof(c), "%s%llue%d", v < 0 ? "-" : "",
                 (unsigned long long)(D / 10 + (uint64_t)up), E + 1);
        if (f32) {
            float r = strtof(c, NULL), x = (float)v;
            FUZZ_CHECK(memcmp(&r, &x, 4) != 0);
        } else {
            double r = strtod(c, NULL);
            FUZZ_CHECK(memcmp(&r, &v, 8) != 0);
        }
    }
}

/* rs_fmt_fixed / rs_fmt_general against snprintf, precisions 0..17 */
static void fuzz_printf(double v, int prec) {
    char want[512], got[RS_FMT_PRINTF_MAX + 1];
    snprintf(want, sizeof(want), "%.*f", prec, v);
    int n = rs_fmt_fixed(v, prec, 0, got);
    FUZZ_CHECK(n >= 0 && n <= RS_FMT_PRINTF_MAX);
    got[n] = '\0';
    FUZZ_CHECK(!strcmp(want, got));
    snprintf(want, sizeof(want), "%+.*f", prec, v);
    n = rs_fmt_fixed(v, prec, 1, got);
    got[n] = '\0';
    FUZZ_CHECK(!strcmp(want, got));
    snprintf(want, sizeof(want), "%.*g", prec, v);
    n = rs_fmt_general(v, prec, got);
    got[n] = '\0';
    FUZZ_CHECK(!strcmp(want, got));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char alpha[16] = "0123456789.eE+-5";
    if (size >= 8) {
        double d;
        memcpy(&d, data, 8);
        fuzz_out(d, 0);
        fuzz_printf(d, size > 8 ? data[8] % 18 : 4);
    }
    if (size >= 4) {
        float f;
        memcpy(&f, data, 4);
        fuzz_out((double)f, 1);
    }
    if (size > 4096) return 0;
    char s[4097];
    for (size_t i = 0; i < size; i++) s[i] = alpha[data[i] & 15];
    s[size] = '\0';
    char *end;
    double want = strtod(s, &end), got;
    size_t n = rs_parse_f64(s, size, &got);
    FUZZ_CHECK(n == (size_t)(end - s));
    FUZZ_CHECK(!n || !memcmp(&want, &got, 8));
    float wf = strtof(s, &end), gf;
    n = rs_parse_f32(s, size, &gf);
    FUZZ_CHECK(n == (size_t)(end - s));
    FUZZ_CHECK(!n || !memcmp(&wf, &gf, 4));
    return 0;
}
