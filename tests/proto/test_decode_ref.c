/* test_decode_ref.c -- the event and label JSON decoders against their
 * frozen reference (jsonr_ref.c: proto/proto_jsonr.c of main 6a42981),
 * on many random and hostile messages: the same return code, the same
 * message in errstr, and the same record byte for byte (every field,
 * every double bit for bit, the unused entries; also after a refusal).
 *
 * The messages: events and labels built from random pieces -- keys in any
 * order, duplicated, unknown keys with nested values, blanks of every kind
 * between tokens; strings with every escape (\" \\ \/ \b \f \n \r \t,
 * \uXXXX of 1-3 UTF-8 bytes, surrogate pairs, lone surrogates, \u0000,
 * bad hex, bad escapes), raw control characters, DEL, valid UTF-8 of 2-4
 * bytes and invalid UTF-8 (stray continuation bytes, overlongs, encoded
 * surrogates, truncated sequences), strings of 0..~100 bytes around the
 * buffer sizes and the 8-byte words the decoder scans; numbers at the
 * edges (int64 limits and beyond, -0, leading zeros, fractions and
 * exponents, 1e400, subnormals, numeric strings, NaN/inf words); every
 * field with the wrong type; numeric_fields / categorical_fields as
 * arrays and as objects, with repeated names and too many entries; then
 * a share of them mutated: truncated at any byte, a byte flipped,
 * inserted or deleted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"

rs_err_t rs_event_from_json_ref(const char *buf, size_t len, rs_event_t *ev,
                                char *errstr, size_t errstr_size);
rs_err_t rs_label_from_json_ref(const char *buf, size_t len, rs_label_t *lb,
                                char *errstr, size_t errstr_size);

typedef struct rng_s { uint64_t s; } rng_t;

static uint64_t rnd(rng_t *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static unsigned below(rng_t *r, unsigned n) { return (unsigned)(rnd(r) % n); }

/* A growing message. */
typedef struct buf_s {
    char b[8192];
    size_t n;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
    if (b->n + n > sizeof(b->b)) n = sizeof(b->b) - b->n;
    memcpy(b->b + b->n, s, n);
    b->n += n;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* Blanks between tokens: mostly none (machine-written JSON). */
static void ws(rng_t *r, buf_t *b) {
    static const char *const w[] = {" ", "\t", "\n", "\r", "  ", "\r\n  "};
    if (below(r, 6)) return;
    int k = 1 + (int)below(r, 3);
    for (int i = 0; i < k; i++) puts_(b, w[below(r, 6)]);
}

/* A clean message: every field of a valid kind and size (escapes and
 * UTF-8 only valid ones), so that about half of them are accepted. */
static int g_clean;
#define N_ODD_OK 30

/* The inside of a JSON string (no quotes): pieces, mostly plain. */
static void str_body(rng_t *r, buf_t *b, unsigned maxlen) {
    static const char *const plain[] = {
        "a", "tx-", "card", "Z9", " ", "0123456789abcdef", "merchant_category",
        "_", "-", ".", "x", "~", "/", "<>", "hour_of_day", "mcc"};
    static const char *const odd[] = {
        "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041",
        "\\u00e9", "\\u4e2d", "\\uFFFF", "\\u0080", "\\u07ff", "\\u0800",
        "\\ud83d\\ude00", "\\uD800\\uDC00", "\\udbff\\udfff", "\\u001f",
        "\\u007f", "\\u0022", "\\u005c", "\xc3\xa9", "\xe4\xb8\xad",
        "\xf0\x9f\x98\x80", "\xc2\x80", "\xdf\xbf", "\xef\xbf\xbf",
        "\xf4\x8f\xbf\xbf", "\x7f", /* valid up to here (N_ODD_OK) */
        "\\ud800", "\\udc00", "\\ud800x", "\\ud800\\u0041", "\\u0000",
        "\\u00g1", "\\u12", "\\x", "\\a", "\\", "\\U0041", "\\'",
        "\x01", "\x1f", "\t", "\n", "\x80", "\xbf", "\xc0\xaf", "\xc1\x81", "\xe0\x80\x80",
        "\xed\xa0\x80", "\xf5\x80\x80\x80", "\xff", "\xfe", "\xf0\x80\x80\x80",
        "\xf4\x90\x80\x80", "\xc3", "\xe4\xb8", "\xf0\x9f\x98"};
    unsigned want = g_clean ? 1 + below(r, maxlen)
                  : below(r, 8) ? below(r, maxlen + 1) : below(r, 100);
    size_t st = b->n;
    int hostile = below(r, 4) == 0;
    unsigned nodd = g_clean ? N_ODD_OK : sizeof(odd) / sizeof(odd[0]);
    while (b->n - st < want) {
        if (hostile && below(r, 3) == 0)
            puts_(b, odd[below(r, nodd)]);
        else
            puts_(b, plain[below(r, sizeof(plain) / sizeof(plain[0]))]);
    }
    if (!g_clean && below(r, 2) && b->n - st > want)
        b->n = st + want; /* cut anywhere */
}

static void jstr(rng_t *r, buf_t *b, unsigned maxlen) {
    puts_(b, "\"");
    str_body(r, b, maxlen);
    puts_(b, "\"");
}

static void number(rng_t *r, buf_t *b) {
    static const char *const edge[] = {
        "0", "-0", "1", "-1", "0.0", "-0.0", "17.37", "26.2", "19", "2",
        "1767225608347", "1767225608347.0", "1767225608.347e3",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "-9223372036854775809", "99999999999999999999", "1e400", "-1e400",
        "1e-400", "4.9e-324", "2.2250738585072014e-308",
        "1.7976931348623157e308", "1.7976931348623159e308",
        "3.4028235677973366e38", "3.4028236e38", "340282356779733661637539395458142568448",
        "9007199254740993", "9007199254740992.0", "0.1", "0.30000000000000004",
        "1E2", "1e+2", "1e-2", "01", "-", "1.", ".5", "1e", "1e+", "+1",
        "0x10", "1.5e", "--1", "12.50", "946684800000", "4102444800000",
        "946684800", "0.5", "1", "123456789012345678901234567890.5"};
    char tmp[64];
    switch (below(r, 4)) {
    case 0:
        puts_(b, edge[below(r, sizeof(edge) / sizeof(edge[0]))]);
        return;
    case 1:
        snprintf(tmp, sizeof(tmp), "%lld",
                 (long long)(rnd(r) >> below(r, 64)) * (below(r, 2) ? 1 : -1));
        break;
    case 2: {
        uint64_t bits = rnd(r);
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (d != d || d - d != 0) d = 1.5;
        snprintf(tmp, sizeof(tmp), below(r, 2) ? "%.17g" : "%g", d);
        break;
    }
    default:
        snprintf(tmp, sizeof(tmp), "%u.%02u", below(r, 100000), below(r, 100));
        break;
    }
    puts_(b, tmp);
}

static void value(rng_t *r, buf_t *b, int depth);

/* An arbitrary value (for unknown keys and wrong types). */
static void any_container(rng_t *r, buf_t *b, int depth) {
    int obj = below(r, 2), n = (int)below(r, 4);
    puts_(b, obj ? "{" : "[");
    for (int i = 0; i < n; i++) {
        if (i) puts_(b, ",");
        ws(r, b);
        if (obj) {
            jstr(r, b, 12);
            ws(r, b);
            puts_(b, ":");
            ws(r, b);
        }
        value(r, b, depth + 1);
        ws(r, b);
    }
    puts_(b, obj ? "}" : "]");
}

static void value(rng_t *r, buf_t *b, int depth) {
    switch (below(r, depth > 3 ? 6 : 8)) {
    case 0: puts_(b, "null"); break;
    case 1: puts_(b, below(r, 2) ? "true" : "false"); break;
    case 2: case 3: number(r, b); break;
    case 4: case 5: jstr(r, b, 20); break;
    default: any_container(r, b, depth); break;
    }
}

/* A value for a string field: mostly a string near the buffer size. */
static void str_field(rng_t *r, buf_t *b, unsigned cap) {
    unsigned k = below(r, 12);
    if (g_clean) jstr(r, b, 1 + cap / 3);
    else if (k == 0) value(r, b, 1);
    else if (k == 1) number(r, b);
    else jstr(r, b, below(r, 4) ? cap / 3 : cap + 2);
}

static void num_field(rng_t *r, buf_t *b) {
    unsigned k = below(r, 12);
    if (g_clean) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), below(r, 2) ? "%u.%02u" : "%u", below(r, 100000),
                 below(r, 100));
        puts_(b, tmp);
    } else if (k == 0) value(r, b, 1);
    else if (k == 1) { /* a numeric string */
        static const char *const s[] = {
            "\"12.5\"", "\"-3\"", "\"1e3\"", "\"NaN\"", "\"nan\"", "\"-Infinity\"",
            "\"inf\"", "\" 1\"", "\"1 \"", "\"\"", "\"0x1\"", "\"1e400\"",
            "\"5.\"", "\".5\"", "\"+7\"", "\"1\\u0030\"", "\"12345678901234567890123456789012345678901234567890123456789012345678901234\""};
        puts_(b, s[below(r, sizeof(s) / sizeof(s[0]))]);
    } else number(r, b);
}

static void time_field(rng_t *r, buf_t *b) {
    static const char *const s[] = {
        "\"2026-01-01T00:00:08.347Z\"", "\"2026-01-01T00:00:08Z\"",
        "\"2026-01-01 00:00:08\"", "\"1767225608347\"", "\"-1\"", "\"yesterday\"",
        "\"2026-13-01T00:00:00Z\"", "\"2026-01-01T00:00:00+02:00\"", "\"\""};
    char tmp[32];
    switch (g_clean ? 7 : below(r, 8)) {
    case 0: puts_(b, s[below(r, sizeof(s) / sizeof(s[0]))]); break;
    case 1: num_field(r, b); break;
    case 2: value(r, b, 1); break;
    default:
        snprintf(tmp, sizeof(tmp), "%lld",
                 946684800000LL + (long long)(rnd(r) % (below(r, 8) ? 3155760000000ULL : 4000000000000ULL)));
        puts_(b, tmp);
    }
}

/* numeric_fields / categorical_fields: array or object form. */
static void fields(rng_t *r, buf_t *b, int categ) {
    unsigned k = g_clean ? 1 + below(r, 15) : below(r, 16);
    if (k == 0) { value(r, b, 1); return; }
    int n = below(r, 8) || g_clean ? (int)below(r, 5) : (int)below(r, 20);
    if (k < 4) { /* object form */
        puts_(b, "{");
        for (int i = 0; i < n; i++) {
            if (i) puts_(b, ",");
            ws(r, b);
            if (below(r, 4) == 0) puts_(b, "\"a\"");
            else jstr(r, b, below(r, 6) || g_clean ? 12 : 34);
            ws(r, b);
            puts_(b, ":");
            ws(r, b);
            if (categ) str_field(r, b, RS_CATVAL_MAX);
            else num_field(r, b);
        }
        ws(r, b);
        puts_(b, "}");
        return;
    }
    puts_(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) puts_(b, ",");
        ws(r, b);
        if (!g_clean && below(r, 30) == 0) { value(r, b, 2); continue; }
        puts_(b, "{");
        int m = below(r, 10) || g_clean ? 2 : (int)below(r, 5);
        for (int j = 0; j < m; j++) {
            if (j) puts_(b, ",");
            ws(r, b);
            unsigned kk = g_clean ? 2 + 5 * (unsigned)j : below(r, 10);
            int is_name = kk < 5 ? (j == 0) : kk < 9 ? (j != 0) : 2;
            if (is_name == 2) jstr(r, b, 8);
            else puts_(b, is_name ? "\"name\"" : (below(r, 20) ? "\"value\"" : "\"val\\u0075e\""));
            ws(r, b);
            puts_(b, ":");
            ws(r, b);
            if (is_name == 1) str_field(r, b, RS_NAME_MAX);
            else if (categ) str_field(r, b, RS_CATVAL_MAX);
            else num_field(r, b);
        }
        ws(r, b);
        puts_(b, "}");
    }
    ws(r, b);
    puts_(b, "]");
}

enum { K_ID, K_TYPE, K_ENT, K_CPTY, K_TIME, K_AMT, K_NUM, K_CAT, K_SCHEMA,
       K_UNKNOWN, K_N };
static const char *const ev_key[K_N] = {
    "id", "type", "entity_id", "counterparty_id", "event_time_ms", "amount",
    "numeric_fields", "categorical_fields", "schema_version", NULL};

static void key(rng_t *r, buf_t *b, const char *k) {
    unsigned c = below(r, 40);
    if (!k || (c == 0 && !g_clean)) { /* unknown, or a near miss */
        static const char *const u[] = {
            "\"idx\"", "\"i\"", "\"\"", "\"ID\"", "\"entity\"", "\"amounts\"",
            "\"schema_versio\"", "\"typ\\u0065\"", "\"numeric_fields \""};
        if (!k || below(r, 2)) puts_(b, u[below(r, sizeof(u) / sizeof(u[0]))]);
        else jstr(r, b, 16);
        return;
    }
    if (c == 1) { /* the key with an escape: the same key */
        puts_(b, "\"");
        put(b, k, 1);
        puts_(b, "\\u00");
        char hx[3];
        snprintf(hx, sizeof(hx), "%02x", (unsigned char)k[1]);
        puts_(b, k[1] ? hx : "41");
        puts_(b, k[1] ? k + 2 : "");
        puts_(b, "\"");
        return;
    }
    puts_(b, "\"");
    puts_(b, k);
    puts_(b, "\"");
}

static void event_msg(rng_t *r, buf_t *b) {
    int order[K_N + 4], n = 0;
    for (int i = 0; i < K_N; i++)
        if (i == K_UNKNOWN ? below(r, 4) == 0
                           : i == K_CPTY || i == K_NUM || i == K_CAT ||
                                     i == K_SCHEMA
                               ? below(r, 5) != 0
                               : g_clean || below(r, 30) != 0)
            order[n++] = i;
    while (n < K_N + 4 && below(r, 6) == 0) order[n++] = (int)below(r, K_N);
    if (below(r, 3) == 0) /* shuffle */
        for (int i = n - 1; i > 0; i--) {
            int j = (int)below(r, (unsigned)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    b->n = 0;
    ws(r, b);
    puts_(b, "{");
    for (int i = 0; i < n; i++) {
        if (i) puts_(b, ",");
        ws(r, b);
        key(r, b, ev_key[order[i]]);
        ws(r, b);
        puts_(b, ":");
        ws(r, b);
        switch (order[i]) {
        case K_ID: case K_ENT: case K_CPTY: str_field(r, b, RS_ID_MAX); break;
        case K_TYPE: str_field(r, b, RS_TYPE_MAX); break;
        case K_TIME: time_field(r, b); break;
        case K_AMT: num_field(r, b); break;
        case K_NUM: fields(r, b, 0); break;
        case K_CAT: fields(r, b, 1); break;
        case K_SCHEMA:
            if (below(r, 4) || g_clean) puts_(b, below(r, 8) ? "1" : "0");
            else num_field(r, b);
            break;
        default: value(r, b, 1); break;
        }
        ws(r, b);
    }
    puts_(b, "}");
    ws(r, b);
}

static void label_msg(rng_t *r, buf_t *b) {
    static const char *const lk[] = {"event_id", "entity_id", "value",
                                     "label_time_ms", "schema_version", NULL};
    b->n = 0;
    puts_(b, "{");
    int n = 0;
    for (int i = 0; i < 6; i++) {
        if (i < 5 ? below(r, 20) == 0 && !g_clean : below(r, 4) != 0) continue;
        if (n++) puts_(b, ",");
        ws(r, b);
        key(r, b, lk[i]);
        ws(r, b);
        puts_(b, ":");
        ws(r, b);
        if (i < 2) str_field(r, b, RS_ID_MAX);
        else if (i == 2 && g_clean) puts_(b, below(r, 2) ? "1" : "0.0");
        else if (i == 2) num_field(r, b);
        else if (i == 3) time_field(r, b);
        else if (i == 4) puts_(b, "1");
        else value(r, b, 1);
    }
    puts_(b, "}");
}

/* Damage a share of them: truncate, flip, insert or delete a byte. */
static void mutate(rng_t *r, buf_t *b) {
    unsigned k = below(r, 10);
    if (g_clean || k >= 4 || b->n == 0) return;
    size_t at = below(r, (unsigned)b->n);
    static const char ins[] = "\"\\{}[],:0-eE.\x01\x80 \xff";
    switch (k) {
    case 0: b->n = at; break;
    case 1:
        if (below(r, 2))
            b->b[at] = (char)((unsigned char)b->b[at] ^ (1u << below(r, 8)));
        else
            b->b[at] = ins[below(r, sizeof(ins) - 1)];
        break;
    case 2:
        if (b->n < sizeof(b->b)) {
            memmove(b->b + at + 1, b->b + at, b->n - at);
            b->b[at] = ins[below(r, sizeof(ins) - 1)];
            b->n++;
        }
        break;
    default:
        memmove(b->b + at, b->b + at + 1, b->n - at - 1);
        b->n--;
        break;
    }
}

/* Decode m with both, on a copy that ends exactly at its last byte (a
 * read past it shows under ASan). */
static int check_event(const buf_t *b, unsigned long *ok) {
    char *m = malloc(b->n ? b->n : 1);
    memcpy(m, b->b, b->n);
    static rs_event_t e1, e2;
    char s1[256], s2[256];
    memset(&e1, 0xA5, sizeof(e1));
    memset(&e2, 0x5A, sizeof(e2));
    memset(s1, 0, sizeof(s1));
    memset(s2, 0, sizeof(s2));
    rs_err_t a = rs_event_from_json(m, b->n, &e1, s1, sizeof(s1));
    rs_err_t c = rs_event_from_json_ref(m, b->n, &e2, s2, sizeof(s2));
    free(m);
    int same = a == c && strcmp(s1, s2) == 0 && memcmp(&e1, &e2, sizeof(e1)) == 0;
    if (!same)
        fprintf(stderr, "event differs: %d vs %d (ref)\n  now: %s\n  ref: %s\n"
                "  msg: %.*s\n", a, c, s1, s2, (int)b->n, b->b);
    *ok += a == RS_OK;
    return same;
}

static int check_label(const buf_t *b, unsigned long *ok) {
    char *m = malloc(b->n ? b->n : 1);
    memcpy(m, b->b, b->n);
    rs_label_t l1, l2;
    char s1[256], s2[256];
    memset(&l1, 0xA5, sizeof(l1));
    memset(&l2, 0x5A, sizeof(l2));
    memset(s1, 0, sizeof(s1));
    memset(s2, 0, sizeof(s2));
    rs_err_t a = rs_label_from_json(m, b->n, &l1, s1, sizeof(s1));
    rs_err_t c = rs_label_from_json_ref(m, b->n, &l2, s2, sizeof(s2));
    free(m);
    int same = a == c && strcmp(s1, s2) == 0 && memcmp(&l1, &l2, sizeof(l1)) == 0;
    if (!same)
        fprintf(stderr, "label differs: %d vs %d (ref)\n  now: %s\n  ref: %s\n"
                "  msg: %.*s\n", a, c, s1, s2, (int)b->n, b->b);
    *ok += a == RS_OK;
    return same;
}

#define N_EVENTS 40000
#define N_LABELS 10000

static void test_events_random(void **state) {
    (void)state;
    rng_t r = {0x9E3779B97F4A7C15ULL};
    static buf_t b;
    unsigned long ok = 0, bad = 0;
    for (int i = 0; i < N_EVENTS; i++) {
        g_clean = below(&r, 2);
        event_msg(&r, &b);
        mutate(&r, &b);
        if (!check_event(&b, &ok) && ++bad >= 5) break;
    }
    fprintf(stderr, "events: %d, accepted %lu, refused %lu, differing %lu\n",
            N_EVENTS, ok, (unsigned long)N_EVENTS - ok, bad);
    assert_int_equal(bad, 0);
    /* both outcomes are exercised in numbers */
    assert_true(ok > N_EVENTS / 10);
    assert_true(N_EVENTS - ok > N_EVENTS / 10);
}

static void test_labels_random(void **state) {
    (void)state;
    rng_t r = {0xD1B54A32D192ED03ULL};
    static buf_t b;
    unsigned long ok = 0, bad = 0;
    for (int i = 0; i < N_LABELS; i++) {
        g_clean = below(&r, 2);
        label_msg(&r, &b);
        mutate(&r, &b);
        if (!check_label(&b, &ok) && ++bad >= 5) break;
    }
    fprintf(stderr, "labels: %d, accepted %lu, differing %lu\n", N_LABELS,
            ok, bad);
    assert_int_equal(bad, 0);
    assert_true(ok > N_LABELS / 10);
}

/* Every prefix of a few messages (a string cut at each byte of an
 * 8-byte word, escapes and UTF-8 sequences cut in their middle). */
static void test_every_prefix(void **state) {
    (void)state;
    static const char *const msg[] = {
        "{\"id\":\"tx-1\",\"type\":\"card_tx\",\"entity_id\":\"card-3250\","
        "\"counterparty_id\":\"m-353\",\"event_time_ms\":1767225608347,"
        "\"amount\":17.37,\"numeric_fields\":[{\"name\":\"hour_of_day\","
        "\"value\":19},{\"name\":\"day_of_week\",\"value\":2}],"
        "\"categorical_fields\":[{\"name\":\"mcc\",\"value\":\"transport\"},"
        "{\"name\":\"country\",\"value\":\"CA\"}],\"schema_version\":1}",
        "{ \"id\" : \"a\\u00e9\\ud83d\\ude00\\\"\\\\\\/z\" ,\n"
        "\"type\":\"t\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\",\"entity_id\":7,"
        "\"event_time_ms\":\"2026-01-01T00:00:08.347Z\",\"amount\":\"12.5\","
        "\"numeric_fields\":{\"a\":1,\"b\":\"2.5\",\"a\":3.25e1},"
        "\"categorical_fields\":{\"k\":\"v\x7f\\b\\f\\n\\r\\t\",\"n\":12}}\r\n"};
    static buf_t b;
    unsigned long ok = 0;
    for (size_t m = 0; m < sizeof(msg) / sizeof(msg[0]); m++) {
        size_t len = strlen(msg[m]);
        for (size_t n = 0; n <= len; n++) {
            memcpy(b.b, msg[m], n);
            b.n = n;
            assert_true(check_event(&b, &ok));
        }
    }
    /* each accepted whole, and the second also without its trailing
     * "\r\n" or "\n": no other prefix */
    assert_int_equal(ok, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_random),
        cmocka_unit_test(test_labels_random),
        cmocka_unit_test(test_every_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
