/* test_fmt.c -- common/fmt.c against glibc.
 *
 * Output: every text must read back (strtof / strtod) to the same bits;
 * a float32 text also through (float)strtod (readers that parse doubles
 * and narrow), be shortest under that rule (no (n-1)-digit neighbour
 * reads back both ways) and be the closest n-digit decimal when printf's
 * correctly rounded %.{n-1}e reads back.  Checked on the smallest and largest 2^16 float32 subnormals and
 * every 61st between, the first and last 2^10 significands of every
 * float32 binade, 1 M random float32 bit patterns, 0.5 M random doubles
 * plus edge cases (powers of two and their neighbours, binade bounds,
 * subnormals, integers, cents).  RS_FMT_EXHAUSTIVE=1 checks all 2^32
 * float32 bit patterns instead for round trip and shortness (closeness
 * stays sampled: printf is the slow part) with glibc as the reader (hours);
 * RS_FMT_EXHAUSTIVE=fast with rs_parse_f32/_f64 as the reader (minutes);
 * RS_FMT_EXHAUSTIVE_STRIDE=k checks every k-th pattern,
 * RS_FMT_EXHAUSTIVE_FROM=0x7f800000 starts there:
 *   RS_FMT_EXHAUSTIVE=fast build/tests/common/test_fmt
 *   RS_FMT_EXHAUSTIVE=1 RS_FMT_EXHAUSTIVE_STRIDE=16 build/tests/common/test_fmt
 * Input: rs_parse_f64 / _f32 give strtod's / strtof's bits and end on
 * random decimal strings of every shape (long, tiny, huge, halfway).
 * The power-of-ten table and the log approximations are checked with
 * exact big-integer arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "common/fmt.h"
#include "common/fmt_pow10.h"

/* ------------------------------------------------------------ big ints */

#define BN_LIMBS 80 /* 2560 bits: 10^342 * 2^(127+1136) fits */
typedef struct bn_s {
    uint32_t l[BN_LIMBS]; /* little endian */
} bn_t;

static void bn_set(bn_t *a, uint64_t v) {
    memset(a, 0, sizeof(*a));
    a->l[0] = (uint32_t)v;
    a->l[1] = (uint32_t)(v >> 32);
}
static void bn_mul_small(bn_t *a, uint32_t m) {
    uint64_t carry = 0;
    for (int i = 0; i < BN_LIMBS; i++) {
        uint64_t x = (uint64_t)a->l[i] * m + carry;
        a->l[i] = (uint32_t)x;
        carry = x >> 32;
    }
    assert_true(carry == 0);
}
static void bn_shl(bn_t *a, int s) {
    int w = s / 32, b = s % 32;
    for (int i = BN_LIMBS - 1; i >= 0; i--) {
        uint64_t x = i - w >= 0 ? (uint64_t)a->l[i - w] << b : 0;
        if (b && i - w - 1 >= 0) x |= (uint64_t)a->l[i - w - 1] >> (32 - b);
        a->l[i] = (uint32_t)x;
    }
}
static int bn_cmp(const bn_t *a, const bn_t *b) {
    for (int i = BN_LIMBS - 1; i >= 0; i--)
        if (a->l[i] != b->l[i]) return a->l[i] < b->l[i] ? -1 : 1;
    return 0;
}
static void bn_pow10(bn_t *a, int n) {
    bn_set(a, 1);
    for (int i = 0; i < n; i++) bn_mul_small(a, 10);
}
/* a = (hi:lo) as a 128-bit value */
static void bn_set128(bn_t *a, uint64_t hi, uint64_t lo) {
    bn_set(a, lo);
    a->l[2] = (uint32_t)hi;
    a->l[3] = (uint32_t)(hi >> 32);
}
static void bn_add1(bn_t *a) {
    for (int i = 0; i < BN_LIMBS && ++a->l[i] == 0; i++) {
    }
}

/* 2^f <= 10^n < 2^(f+1): the exact floor(log2(10^n)). */
static int exact_flog2pow10(int n) {
    /* compare 10^|n| against powers of two */
    bn_t p, t;
    int m = n < 0 ? -n : n, f;
    bn_pow10(&p, m);
    int top = -1;
    for (int i = BN_LIMBS - 1; i >= 0 && top < 0; i--)
        if (p.l[i]) top = i * 32 + 31 - __builtin_clz(p.l[i]);
    if (n >= 0) return top;
    /* 10^-m: 2^f <= 10^-m  <=>  2^-f >= 10^m */
    bn_set(&t, 1);
    bn_shl(&t, top);
    f = bn_cmp(&t, &p) == 0 ? -top : -top - 1;
    return f;
}

static void test_pow10_table(void **state) {
    (void)state;
    for (int n = RS_FMT_POW10_MIN; n <= RS_FMT_POW10_MAX; n++) {
        const uint64_t *e = rs_fmt_pow10[n - RS_FMT_POW10_MIN];
        int f = exact_flog2pow10(n), s = 127 - f;
        bn_t lo, hi, x;
        /* T <= 10^n 2^s < T + 1 */
        bn_set128(&lo, e[0], e[1]);
        hi = lo;
        bn_add1(&hi);
        assert_true(e[0] >> 63); /* normalized */
        if (n >= 0) {
            bn_pow10(&x, n);
            if (s >= 0) {
                bn_shl(&x, s);
            } else {
                bn_shl(&lo, -s);
                bn_shl(&hi, -s);
            }
        } else {
            /* T 10^-n <= 2^s < (T+1) 10^-n */
            for (int i = 0; i < -n; i++) {
                bn_mul_small(&lo, 10);
                bn_mul_small(&hi, 10);
            }
            bn_set(&x, 1);
            bn_shl(&x, s);
        }
        if (!(bn_cmp(&lo, &x) <= 0 && bn_cmp(&x, &hi) < 0))
            fail_msg("rs_fmt_pow10 entry 1e%d is wrong", n);
    }
}

/* The shift-multiply logs of fmt.c (re-declared: they are static). */
static int flog10pow2(int q) {
    return (int)(((int64_t)q * 661971961083LL) >> 41);
}
static int flog10_3q_pow2(int q) {
    return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41);
}
static int flog2pow10(int e) {
    return (int)(((int64_t)e * 913124641741LL) >> 38);
}

static void test_logs(void **state) {
    (void)state;
    for (int n = -400; n <= 400; n++)
        if (flog2pow10(n) != exact_flog2pow10(n))
            fail_msg("flog2pow10(%d)", n);
    /* floor(log10(2^q)) and floor(log10(3 2^(q-2))): 10^k <= x < 10^(k+1) */
    for (int q = -1100; q <= 1000; q++) {
        for (int three = 0; three < 2; three++) {
            int k = three ? flog10_3q_pow2(q) : flog10pow2(q);
            /* x = m 2^e with m = 1 or 3, e = q or q-2; scale x, 10^k and
             * 10^(k+1) by 2^E2 10^K10 so all three are integers. */
            int m = three ? 3 : 1, e = three ? q - 2 : q;
            int E2 = e < 0 ? -e : 0, K10 = k < 0 ? -k : 0;
            bn_t x, lo, hi;
            bn_set(&x, (uint64_t)m);
            bn_shl(&x, e + E2);
            for (int i = 0; i < K10; i++) bn_mul_small(&x, 10);
            bn_pow10(&lo, k + K10);
            bn_shl(&lo, E2);
            bn_pow10(&hi, k + 1 + K10);
            bn_shl(&hi, E2);
            if (!(bn_cmp(&lo, &x) <= 0 && bn_cmp(&x, &hi) < 0))
                fail_msg("flog10%spow2(%d) = %d", three ? "_3q_" : "", q, k);
        }
    }
}

/* ------------------------------------------------------------- output */

/* Digits and exponent of a decimal text: value = D * 10^E, D without
 * trailing zeros; n = number of digits of D. */
static void dec_of(const char *s, uint64_t *D, int *E, int *n) {
    uint64_t d = 0;
    int e = 0, nd = 0, seen_point = 0, zeros = 0;
    const char *p = s;
    if (*p == '-') p++;
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') { seen_point = 1; continue; }
        if (*p < '0' || *p > '9') fail_msg("bad char in '%s'", s);
        if (seen_point) e--;
        if (nd == 0 && *p == '0') continue;
        if (*p == '0') { zeros++; continue; } /* maybe trailing */
        for (; zeros; zeros--) { d *= 10; nd++; }
        assert_true(nd < 19);
        d = d * 10 + (uint64_t)(*p - '0');
        nd++;
    }
    e += zeros; /* trailing zeros of the digits */
    if (*p) e += atoi(p + 1);
    while (d && d % 10 == 0) { d /= 10; e++; nd--; }
    *D = d;
    *E = e;
    *n = nd;
}

static uint64_t n_checked;
static int closest_checks = 1; /* off in the exhaustive run (printf cost) */

/* The readers: glibc, or (RS_FMT_EXHAUSTIVE=fast) our own parsers, which
 * are checked against glibc below and by fuzz_fmt -- four times faster,
 * so that all 2^32 floats take minutes instead of hours. */
static int fast_readers;

static float rd_f32(const char *t) {
    float f;
    if (fast_readers && rs_parse_f32(t, strlen(t), &f) == strlen(t))
        return f;
    return strtof(t, NULL); /* "inf" and "nan" are not numbers for rs_parse */
}

static double rd_f64(const char *t) {
    double d;
    if (fast_readers && rs_parse_f64(t, strlen(t), &d) == strlen(t))
        return d;
    return strtod(t, NULL);
}

/* t reads back as v through strtof and through strtod + (float) */
static int f32_both(const char *t, float v) {
    float a = rd_f32(t), b = (float)rd_f64(t);
    return !memcmp(&a, &v, 4) && !memcmp(&b, &v, 4);
}

static uint64_t n_longer; /* outputs longer than strtof's shortest */

static void check_f32(float v) {
    char b[RS_FMT_F32_MAX + 1], c[64];
    int len = rs_fmt_f32(v, b);
    assert_true(len > 0 && len < RS_FMT_F32_MAX);
    b[len] = '\0';
    n_checked++;
    if (isnan(v)) { assert_string_equal(b, "nan"); return; }
    float r = rd_f32(b);
    if (memcmp(&r, &v, 4)) fail_msg("f32 %a -> '%s' -> %a", (double)v, b, (double)r);
    /* A reader that parses the text as a double and narrows it (jansson
     * then (float)) gets the same float: no double rounding. */
    r = (float)rd_f64(b);
    if (memcmp(&r, &v, 4))
        fail_msg("f32 %a -> '%s' -> (float)strtod %a", (double)v, b, (double)r);
    if (v == 0 || isinf(v)) return;
    uint64_t D;
    int E, n;
    dec_of(b, &D, &E, &n);
    if (n >= 2) { /* shortest: no (n-1)-digit neighbour reads back (both
                   * ways; strtof alone: then the output is longer only
                   * to spare double-parsing readers a double rounding) */
        for (int up = 0; up < 2; up++) {
            snprintf(c, sizeof(c), "%s%" PRIu64 "e%d", v < 0 ? "-" : "",
                     D / 10 + (uint64_t)up, E + 1);
            if (f32_both(c, v))
                fail_msg("f32 %a: '%s' but '%s' is shorter", (double)v, b, c);
            float x = rd_f32(c);
            if (!memcmp(&x, &v, 4)) n_longer++;
        }
    }
    if (!closest_checks) return;
    snprintf(c, sizeof(c), "%.*e", n - 1, (double)v);
    if (f32_both(c, v)) { /* the closest reads back: it is the answer */
        uint64_t D2;
        int E2, n2;
        dec_of(c, &D2, &E2, &n2);
        if (D2 != D || E2 != E)
            fail_msg("f32 %a: '%s' but '%s' is closer", (double)v, b, c);
    }
}

static void check_f64(double v) {
    char b[RS_FMT_F64_MAX + 1], c[64];
    int len = rs_fmt_f64(v, b);
    assert_true(len > 0 && len < RS_FMT_F64_MAX);
    b[len] = '\0';
    n_checked++;
    if (isnan(v)) { assert_string_equal(b, "nan"); return; }
    double r = strtod(b, NULL);
    if (memcmp(&r, &v, 8)) fail_msg("f64 %a -> '%s' -> %a", v, b, r);
    if (v == 0 || isinf(v)) return;
    uint64_t D;
    int E, n;
    dec_of(b, &D, &E, &n);
    if (n >= 2) {
        for (int up = 0; up < 2; up++) {
            snprintf(c, sizeof(c), "%s%" PRIu64 "e%d", v < 0 ? "-" : "",
                     D / 10 + (uint64_t)up, E + 1);
            double x = strtod(c, NULL);
            if (!memcmp(&x, &v, 8))
                fail_msg("f64 %a: '%s' but '%s' is shorter", v, b, c);
        }
    }
    snprintf(c, sizeof(c), "%.*e", n - 1, v);
    double x = strtod(c, NULL);
    if (!memcmp(&x, &v, 8)) {
        uint64_t D2;
        int E2, n2;
        dec_of(c, &D2, &E2, &n2);
        if (D2 != D || E2 != E)
            fail_msg("f64 %a: '%s' but '%s' is closer", v, b, c);
    }
}

static float f32_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static double f64_of(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

static void test_fmt_examples(void **state) {
    (void)state;
    static const struct { double v; const char *want; } d[] = {
        {0.0, "0"}, {-0.0, "-0"}, {1.0, "1"}, {-2.5, "-2.5"},
        {0.1, "0.1"}, {0.3, "0.3"}, {1.0 / 3, "0.3333333333333333"},
        {42.5, "42.5"}, {1e21, "1e21"}, {1e16, "1e16"}, {1234567890123456.0, "1234567890123456"},
        {12345678901234567.0, "1.2345678901234568e16"},
        {123456789012.0, "123456789012"}, {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"}, {0.000001, "0.000001"}, {1.25e-6, "0.00000125"},
        {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {9007199254740993.0, "9007199254740992"}, {INFINITY, "inf"},
        {-INFINITY, "-inf"},
    };
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        char b[RS_FMT_F64_MAX + 1];
        b[rs_fmt_f64(d[i].v, b)] = '\0';
        assert_string_equal(b, d[i].want);
    }
    static const struct { float v; const char *want; } f[] = {
        {0.1f, "0.1"}, {1.0f / 3, "0.33333334"}, {0.87654321f, "0.8765432"},
        {16777216.0f, "16777216"}, {1e-45f, "1e-45"}, {3.4028235e38f,
        "3.4028235e38"}, {1.17549435e-38f, "1.1754944e-38"}, {-0.5f, "-0.5"},
        {NAN, "nan"},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        char b[RS_FMT_F32_MAX + 1];
        b[rs_fmt_f32(f[i].v, b)] = '\0';
        assert_string_equal(b, f[i].want);
    }
    char b[RS_FMT_I64_MAX + 1];
    b[rs_fmt_i64(INT64_MIN, b)] = '\0';
    assert_string_equal(b, "-9223372036854775808");
    b[rs_fmt_i64(0, b)] = '\0';
    assert_string_equal(b, "0");
    b[rs_fmt_u64(UINT64_MAX, b)] = '\0';
    assert_string_equal(b, "18446744073709551615");
    b[rs_fmt_i64(1767225600000LL, b)] = '\0';
    assert_string_equal(b, "1767225600000");
}

static void test_fmt_f32(void **state) {
    (void)state;
    const char *ex = getenv("RS_FMT_EXHAUSTIVE");
    n_checked = 0;
    if (ex && (*ex == '1' || !strcmp(ex, "fast"))) {
        time_t t0 = time(NULL);
        /* RS_FMT_EXHAUSTIVE_STRIDE=k: every k-th bit pattern only */
        const char *st = getenv("RS_FMT_EXHAUSTIVE_STRIDE");
        uint64_t stride = st && atoi(st) > 0 ? (uint64_t)atoi(st) : 1;
        /* RS_FMT_EXHAUSTIVE_FROM=0x...: start at that bit pattern */
        const char *from = getenv("RS_FMT_EXHAUSTIVE_FROM");
        uint64_t u0 = from ? strtoull(from, NULL, 16) : 0;
        fast_readers = !strcmp(ex, "fast");
        closest_checks = 0; /* round trip (strtof, (float)strtod) and
                             * shortest; closest: the sampled run */
        for (uint64_t u = u0; u <= 0xffffffffULL; u += stride) {
            float v = f32_of((uint32_t)u);
            if (isnan(v)) continue;
            check_f32(v);
            if ((u & 0xfffffff) < stride && u >= stride)
                fprintf(stderr, "  f32 exhaustive: %08" PRIx64 " (%lds)\n", u,
                        (long)(time(NULL) - t0));
        }
        fprintf(stderr, "  f32 exhaustive (%s readers, stride %" PRIu64
                "): %" PRIu64 " values in %lds, %" PRIu64 " longer than "
                "strtof's shortest (double rounding)\n",
                fast_readers ? "rs_parse" : "glibc", stride, n_checked,
                (long)(time(NULL) - t0), n_longer);
        fast_readers = 0;
        return;
    }
    /* subnormals: the smallest and largest 2^16, every 61st between */
    for (uint32_t u = 0; u < (1u << 16); u++) {
        check_f32(f32_of(u));
        check_f32(f32_of((1u << 23) - 1 - u));
    }
    for (uint32_t u = 1u << 16; u < (1u << 23); u += 61) check_f32(f32_of(u));
    /* both ends of every binade */
    for (uint32_t e = 1; e < 255; e++)
        for (uint32_t m = 0; m < (1u << 10); m++) {
            check_f32(f32_of((e << 23) | m));
            check_f32(f32_of((e << 23) | ((1u << 23) - 1 - m)));
        }
    rs_rng_t rng;
    rs_rng_seed(&rng, 12);
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = (uint32_t)rs_rng_u64(&rng);
        check_f32(f32_of(u));
    }
    /* the model's usual range: probabilities, weights */
    for (int i = 0; i < 200000; i++) check_f32((float)rs_rng_uniform(&rng));
    /* a double rounding trap: "7.038531e-26" reads back through strtof but
     * not through strtod + (float) */
    check_f32(0x1.5c87fap-84f);
    check_f32(-0x1.5c87fap-84f);
    fprintf(stderr, "  f32: %" PRIu64 " values checked, %" PRIu64 " longer "
            "than strtof's shortest\n", n_checked, n_longer);
}

static void test_fmt_f64(void **state) {
    (void)state;
    n_checked = 0;
    for (int e = -1074; e <= 1023; e++) {
        double p = ldexp(1.0, e);
        check_f64(p);
        check_f64(-p);
        check_f64(nextafter(p, 0));
        check_f64(nextafter(p, INFINITY));
    }
    for (uint64_t t = 1; t < 20000; t++) { /* small subnormals */
        check_f64(f64_of(t));
        check_f64(f64_of((1ULL << 52) - t)); /* large ones */
    }
    for (uint64_t e = 1; e < 2047; e++)
        for (uint64_t m = 0; m < 16; m++) {
            check_f64(f64_of((e << 52) | m));
            check_f64(f64_of((e << 52) | ((1ULL << 52) - 1 - m)));
        }
    for (int64_t i = -20000; i <= 20000; i++) {
        check_f64((double)i);
        check_f64((double)i / 100);
        check_f64((double)i * 1e-9);
    }
    rs_rng_t rng;
    rs_rng_seed(&rng, 64);
    for (int i = 0; i < 500000; i++) check_f64(f64_of(rs_rng_u64(&rng)));
    for (int i = 0; i < 200000; i++) check_f64(rs_rng_uniform(&rng) * 1000);
    fprintf(stderr, "  f64: %" PRIu64 " values checked\n", n_checked);
}

/* -------------------------------------------------------------- input */

static void check_parse(const char *s) {
    size_t len = strlen(s);
    char *end;
    double want = strtod(s, &end), got = 12345.0;
    size_t n = rs_parse_f64(s, len, &got);
    size_t wn = (size_t)(end - s);
    if (n != wn) fail_msg("'%s': consumed %zu, strtod %zu", s, n, wn);
    if (n && memcmp(&want, &got, 8))
        fail_msg("'%s': %a, strtod %a", s, got, want);
    float wf = strtof(s, &end), gf = 12345.0f;
    n = rs_parse_f32(s, len, &gf);
    if (n != (size_t)(end - s)) fail_msg("'%s': f32 consumed %zu", s, n);
    if (n && memcmp(&wf, &gf, 4))
        fail_msg("'%s': f32 %a, strtof %a", s, (double)gf, (double)wf);
}

static void test_parse_cases(void **state) {
    (void)state;
    static const char *const c[] = {
        "0", "-0", "+0", "0.0", "-0.0", "0e10", "1", "-1", "+1", "1.", ".5",
        "-.5", "5.e3", "1e", "1e+", "1e-", "1e5x", ".", "-", "+", "", "x",
        "00012", "0.000123", "123.456e-7", "1e308", "1.7976931348623157e308",
        "1.7976931348623158e308", "1.7976931348623159e308", "1e309",
        "-1e309", "2.2250738585072011e-308", "2.2250738585072014e-308",
        "4.9406564584124654e-324", "2.4703282292062327e-324",
        "2.4703282292062328e-324", "1e-324", "1e-400", "1e-99999999999",
        "1e99999999999", "9007199254740993", "9007199254740992.5",
        "9007199254740993.0000000000001", "123456789012345678901234567890",
        "0.1", "0.2", "0.3", "3.4028235e38", "3.4028236e38", "3.5e38",
        "1.17549435e-38", "1.4e-45", "7e-46", "7.1e-46", "16777217",
        "16777217.000000001", "33554431", "0.87654321", "1e22", "1e23",
        "8.589973e9", "1.00000005960464477550", "1.0000000596046448",
        "2.00000011920928955078125", "179769313486231580793728971405303415079"
        "934132710037826936173778980444968292764750946649017977587207096330"
        "286416692887910946426483931308050710003939917004590963611452288001"
        "55296e0", "7.038531e-26",
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) check_parse(c[i]);
    char big[2000];
    memset(big, '1', sizeof(big) - 1); /* a number longer than 511 chars */
    big[sizeof(big) - 1] = '\0';
    check_parse(big);
    big[1] = '.';
    check_parse(big);
}

static void test_parse_random(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 99);
    char s[128];
    uint64_t slow0 = rs_parse_fallbacks();
    int n = 0;
    for (int i = 0; i < 300000; i++) {
        int nd = 1 + (int)rs_rng_below(&rng, 22), p = 0;
        if (rs_rng_below(&rng, 2)) s[p++] = '-';
        int point = (int)rs_rng_below(&rng, (uint64_t)nd + 2) - 1;
        for (int k = 0; k < nd; k++) {
            if (k == point) s[p++] = '.';
            s[p++] = (char)('0' + rs_rng_below(&rng, 10));
        }
        int mode = (int)rs_rng_below(&rng, 4);
        if (mode) {
            int e = mode == 1   ? (int)rs_rng_below(&rng, 41) - 20
                    : mode == 2 ? (int)rs_rng_below(&rng, 701) - 350
                                : (int)rs_rng_below(&rng, 101) - 50;
            p += snprintf(s + p, sizeof(s) - (size_t)p, "e%d", e);
        }
        s[p] = '\0';
        check_parse(s);
        n++;
    }
    /* shortest outputs of random doubles and floats read back */
    for (int i = 0; i < 100000; i++) {
        char b[RS_FMT_F64_MAX + 1];
        double v = f64_of(rs_rng_u64(&rng));
        if (!isfinite(v)) continue;
        b[rs_fmt_f64(v, b)] = '\0';
        check_parse(b);
        b[rs_fmt_f32((float)rs_rng_uniform(&rng), b)] = '\0';
        check_parse(b);
    }
    fprintf(stderr, "  parse: %d random strings, %" PRIu64 " strtod "
            "fallbacks in all\n", n, rs_parse_fallbacks() - slow0);
}

/* Typical record values never take the slow path. */
static void test_parse_fast_path(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 7);
    uint64_t slow0 = rs_parse_fallbacks();
    for (int i = 0; i < 100000; i++) {
        char b[RS_FMT_F64_MAX + 1];
        double v = rs_rng_uniform(&rng) * 1e4, got;
        size_t n = (size_t)rs_fmt_f64(v, b);
        assert_int_equal(rs_parse_f64(b, n, &got), n);
        assert_memory_equal(&got, &v, 8);
        float f = (float)rs_rng_uniform(&rng), gf;
        n = (size_t)rs_fmt_f32(f, b);
        assert_int_equal(rs_parse_f32(b, n, &gf), n);
        assert_memory_equal(&gf, &f, 4);
    }
    assert_int_equal(rs_parse_fallbacks() - slow0, 0);
}

/* rs_fmt_fixed / rs_fmt_general: byte for byte what snprintf writes
 * ("%.Nf", "%+.Nf", "%.Ng") for every precision 0..17 over ties (k / 2^j,
 * exact halves at the last digit kept), integers, powers of ten and their
 * neighbours, negative zero, subnormals, huge values (the snprintf
 * fallback), and random doubles and float32 values of every exponent. */
static void printf_same(double v) {
    char want[512], got[RS_FMT_PRINTF_MAX + 1];
    for (int prec = 0; prec <= 17; prec++) {
        for (int plus = 0; plus < 2; plus++) {
            snprintf(want, sizeof(want), plus ? "%+.*f" : "%.*f", prec, v);
            int n = rs_fmt_fixed(v, prec, plus, got);
            got[n] = '\0';
            if (strcmp(want, got))
                fail_msg("%%%s.%df of %a: '%s', printf '%s'", plus ? "+" : "",
                         prec, v, got, want);
        }
        snprintf(want, sizeof(want), "%.*g", prec, v);
        int n = rs_fmt_general(v, prec, got);
        got[n] = '\0';
        if (strcmp(want, got))
            fail_msg("%%.%dg of %a: '%s', printf '%s'", prec, v, got, want);
    }
}

static void test_fmt_printf(void **state) {
    (void)state;
    static const double cases[] = {
        0.0, 1.0, 0.5, 1.5, 2.5, 0.125, 0.375, 1.005, 2.675, 9.9995, 9.9996,
        99.5, 999.5, 0.05, 0.15, 0.25, 0.35, 1e-5, 1.2345e-5, 0.0001,
        0.00012345, 123456.5, 1e15, 1e16, 1e17, 1e18, 9.999999999999999e18,
        1e19, 1.5e19, 1e20, 1e22, 1e300, 1.7976931348623157e308, 5e-324,
        2.2250738585072014e-308, 1e-300, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3,
        12345.6789, 86399.99, 3599.5, 59.5, 0.999949999, 0.99995, 100, 1000,
        123456789012345678.0, 4503599627370495.5, 4503599627370497.0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        printf_same(cases[i]);
        printf_same(-cases[i]);
        printf_same(nextafter(cases[i], 0));
        printf_same(nextafter(cases[i], INFINITY));
    }
    printf_same(INFINITY);
    printf_same(-INFINITY);
    printf_same(NAN);
    /* exact ties at every scale: k / 2^j */
    for (int j = 0; j <= 12; j++)
        for (int k = 1; k < 400; k += 3) printf_same(ldexp((double)k, -j));
    /* integers and halves near the edges of 10^n */
    for (int e = 0; e <= 20; e++) {
        double p = pow(10, e);
        printf_same(p);
        printf_same(p - 0.5);
        printf_same(p + 0.5);
        printf_same(p * 0.99995);
    }
    /* random bit patterns (finite), random values of moderate size, and
     * float32 values promoted (what the explanations format) */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 8000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, 8);
        if (isfinite(d)) printf_same(d);
        double m = ldexp((double)(x >> 11), -53) * pow(10, (int)(x % 24) - 8);
        printf_same(m);
        uint32_t b = (uint32_t)(x >> 32);
        float f;
        memcpy(&f, &b, 4);
        if (isfinite(f)) printf_same((double)f);
    }
}

/* rs_fmt_snprintf: the same bytes and return value as snprintf, for
 * every buffer size from 0 (truncation), over the formats the
 * explanations use and the ones it hands to vsnprintf. */
#define SAME(...)                                                          \
    do {                                                                   \
        char w_[400], g_[400];                                             \
        int wn_ = snprintf(w_, sizeof(w_), __VA_ARGS__);                   \
        int gn_ = rs_fmt_snprintf(g_, sizeof(g_), __VA_ARGS__);            \
        if (wn_ != gn_ || strcmp(w_, g_))                                  \
            fail_msg("'%s' (%d), snprintf '%s' (%d)", g_, gn_, w_, wn_);   \
        for (size_t sz_ = 0; sz_ <= (size_t)wn_ + 1 && sz_ <= sizeof(w_);  \
             sz_++) {                                                      \
            memset(w_, 'x', sizeof(w_));                                   \
            memset(g_, 'x', sizeof(g_));                                   \
            wn_ = snprintf(w_, sz_, __VA_ARGS__);                          \
            gn_ = rs_fmt_snprintf(g_, sz_, __VA_ARGS__);                   \
            if (wn_ != gn_ || memcmp(w_, g_, sizeof(w_)))                  \
                fail_msg("size %zu differs", sz_);                         \
        }                                                                  \
    } while (0)

static void test_fmt_snprintf(void **state) {
    (void)state;
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v = ldexp((double)(x >> 11), -53) * pow(10, (int)(x % 12) - 4);
        if (x & 0x100) v = -v;
        if ((x & 0xe00) == 0) v = (double)(int)(v * 8) / 8; /* ties */
        float fv = (float)v;
        int h = (int)(x % 24), k = (int)(x >> 40 & 0xffff) - 100;
        const char *w = (x & 0x400) ? "payments" : "";
        SAME("%s", w);
        SAME("%.0f %s%s%s%s", v, "payments", " at this merchant", w,
             ", usually 3");
        SAME("total %s %s%s%s", "amount", w, " in the last day", "");
        SAME("%.2f", v);
        SAME("%.4g", v);
        SAME("%.4g", (double)fv);
        SAME("%.2g", v);
        SAME("%.3g per hour", fabs(v));
        SAME("%s %.1fx %s average%s", "amount", v, "this card's", w);
        SAME("%s drifted %+.1f sd from %s baseline%s", "temp", v, "x", w);
        SAME("%.*f%% of %s", v > 0 && v < 0.01 ? 1 : 0, v * 100, w);
        SAME("at %02d:00-%02d:59 (%s)", h, h, "Europe/Paris");
        SAME("%02d|%03d|%d|%i|%u", k, k, k, -k, (unsigned)k);
        SAME("%lld ms|%ld|%zu|%llu", (long long)k * 1000000007LL, (long)k,
             (size_t)i, (unsigned long long)x);
        SAME("%.*sies|%.3s|%c|%%", 3, "bodyx", w, 'q');
        SAME("%g|%f|%.0f|%.17g|%.1f hours", v, v, v, v, v / 3600);
        SAME("%s%s with %s under %g%s", w, w, "amount", 1e-5 * (double)k, w);
        /* handed to vsnprintf */
        SAME("%5s|%-3d|%x|%e|%+d|% d|%#g|%08.3f|%*d|%p", w, k, (unsigned)k,
             v, k, k, v, v, 4, k, (void *)0);
    }
    SAME("no conversions");
    SAME("%s", "");
    SAME("%.0f|%.0f|%.0f|%.2f|%.4g", 0.5, 1.5, 2.5, -0.001, -0.0);
    SAME("%.0f second%s", 1e300, "s");
    SAME("%g|%g|%g", INFINITY, -INFINITY, NAN);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pow10_table),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_fmt_examples),
        cmocka_unit_test(test_fmt_f32),
        cmocka_unit_test(test_fmt_f64),
        cmocka_unit_test(test_fmt_printf),
        cmocka_unit_test(test_fmt_snprintf),
        cmocka_unit_test(test_parse_cases),
        cmocka_unit_test(test_parse_random),
        cmocka_unit_test(test_parse_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
