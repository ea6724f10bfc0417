/* test_config.c -- unit tests for common/config.c: defaults, every field
 * type, bounds, errors naming key and line, passthrough flattening,
 * rs_conf_set, dump/docs, and garbage input (must never crash or leak; run
 * under ASan to check the latter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

/* A sample module's settings, one field of every type. */
typedef struct test_conf_s {
    char url[32];
    int64_t ttl_ms;
    int64_t workers;
    double ratio;
    int verbose;
    int format;
    char password[16];
    int64_t offset;     /* no bounds: negative allowed */
} test_conf_t;

static const rs_conf_field_t test_fields[] = {
    {"url", RS_CONF_STRING, "unix:///tmp/rs/redis.sock",
     offsetof(test_conf_t, url), sizeof(((test_conf_t *)0)->url),
     "Redis URL"},
    {"ttl", RS_CONF_DURATION, "7d", offsetof(test_conf_t, ttl_ms), 0,
     "Key TTL", NULL, 1000, 30 * 86400000.0},
    {"workers", RS_CONF_INT, "4", offsetof(test_conf_t, workers), 0,
     "Worker threads", NULL, 1, 64},
    {"ratio", RS_CONF_DOUBLE, "0.25", offsetof(test_conf_t, ratio), 0,
     "Sample ratio", NULL, 0, 1},
    {"verbose", RS_CONF_BOOL, "false", offsetof(test_conf_t, verbose), 0,
     "Verbose output"},
    {"format", RS_CONF_ENUM, "protobuf", offsetof(test_conf_t, format), 0,
     "Wire format", "json|protobuf|csv"},
    {"password", RS_CONF_STRING, "", offsetof(test_conf_t, password),
     sizeof(((test_conf_t *)0)->password), "Redis password"},
    {"offset", RS_CONF_INT, "-3", offsetof(test_conf_t, offset), 0,
     "Signed, unbounded"},
};

typedef struct fixture_s {
    rs_conf_t *conf;
    test_conf_t tc;
    rs_kv_t kafka;
    rs_conf_section_t sec;
    char err[512];
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof(*fx));
    memset(&fx->tc, 0xAB, sizeof(fx->tc)); /* defaults must overwrite */
    fx->sec = (rs_conf_section_t){"redis", "Redis connection", test_fields,
                                  (int)RS_ARRAY_LEN(test_fields), &fx->tc};
    rs_kv_init(&fx->kafka);
    fx->conf = rs_conf_new();
    if (rs_conf_add_section(fx->conf, &fx->sec, fx->err, sizeof(fx->err)))
        return -1;
    rs_conf_add_passthrough(fx->conf, "kafka", "librdkafka properties",
                            &fx->kafka);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    rs_conf_destroy(fx->conf);
    rs_kv_free(&fx->kafka);
    free(fx);
    return 0;
}

static rs_err_t load(fixture_t *fx, const char *yaml) {
    fx->err[0] = '\0';
    return rs_conf_load_yaml(fx->conf, yaml, strlen(yaml), "config.yaml",
                             fx->err, sizeof(fx->err));
}

/* Load must fail with RS_ERR_CONFIG and the message contain `want`. */
#define assert_load_fails(fx, yaml, want)                                    \
    do {                                                                     \
        rs_err_t e_ = load(fx, yaml);                                        \
        if (e_ != RS_ERR_CONFIG)                                             \
            fail_msg("expected RS_ERR_CONFIG, got %d (%s) for:\n%s", e_,     \
                     (fx)->err, yaml);                                       \
        if (!strstr((fx)->err, want))                                        \
            fail_msg("error '%s' does not contain '%s'", (fx)->err, want);   \
    } while (0)

static void assert_defaults(const test_conf_t *tc) {
    assert_string_equal(tc->url, "unix:///tmp/rs/redis.sock");
    assert_int_equal(tc->ttl_ms, 7 * 86400000LL);
    assert_int_equal(tc->workers, 4);
    assert_true(tc->ratio == 0.25);
    assert_int_equal(tc->verbose, 0);
    assert_int_equal(tc->format, 1);
    assert_string_equal(tc->password, "");
    assert_int_equal(tc->offset, -3);
}

static void test_defaults(void **state) {
    fixture_t *fx = *state;
    assert_defaults(&fx->tc);
}

static void test_empty_inputs(void **state) {
    fixture_t *fx = *state;
    static const char *empties[] = {"", "\n\n", "# only a comment\n", "---\n",
                                    "--- # c\n...\n", "~\n", "redis:\n",
                                    "redis: ~\nkafka:\n", "redis: {}\n",
                                    "\xEF\xBB\xBF"}; /* BOM only */
    for (size_t i = 0; i < RS_ARRAY_LEN(empties); i++) {
        if (load(fx, empties[i]) != RS_OK)
            fail_msg("'%s' rejected: %s", empties[i], fx->err);
        assert_defaults(&fx->tc);
    }
    assert_int_equal(fx->kafka.cnt, 0);
    /* NULL buffer with zero length is an empty document too. */
    assert_int_equal(rs_conf_load_yaml(fx->conf, NULL, 0, NULL, NULL, 0),
                     RS_OK);
    assert_int_equal(rs_conf_load_yaml(fx->conf, NULL, 5, NULL, NULL, 0),
                     RS_ERR_INVALID);
}

static void test_every_type(void **state) {
    fixture_t *fx = *state;
    const char *yaml =
        "# riskstream\n"
        "redis:\n"
        "  url: redis://cache:6379/0\n"
        "  ttl: 36h\n"
        "  workers: 16\n"
        "  ratio: 0.125\n"
        "  verbose: yes\n"
        "  format: csv\n"
        "  password: \"p@ss: word\"\n"
        "  offset: -42\n";
    if (load(fx, yaml)) fail_msg("%s", fx->err);
    assert_string_equal(fx->tc.url, "redis://cache:6379/0");
    assert_int_equal(fx->tc.ttl_ms, 36 * 3600000LL);
    assert_int_equal(fx->tc.workers, 16);
    assert_true(fx->tc.ratio == 0.125);
    assert_int_equal(fx->tc.verbose, 1);
    assert_int_equal(fx->tc.format, 2);
    assert_string_equal(fx->tc.password, "p@ss: word");
    assert_int_equal(fx->tc.offset, -42);

    /* Flow style and quoted numbers are the same values. */
    if (load(fx, "{redis: {workers: '8', ratio: 1, format: json}}"))
        fail_msg("%s", fx->err);
    assert_int_equal(fx->tc.workers, 8);
    assert_true(fx->tc.ratio == 1.0);
    assert_int_equal(fx->tc.format, 0);
    assert_string_equal(fx->tc.url, "redis://cache:6379/0"); /* kept */

    /* A YAML null means "not set": back to the default. */
    if (load(fx, "redis:\n  url:\n  workers: ~\n  verbose: null\n"))
        fail_msg("%s", fx->err);
    assert_string_equal(fx->tc.url, "unix:///tmp/rs/redis.sock");
    assert_int_equal(fx->tc.workers, 4);
    assert_int_equal(fx->tc.verbose, 0);
    /* ...but a quoted empty string is an empty string. */
    assert_int_equal(load(fx, "redis:\n  url: ''\n"), RS_OK);
    assert_string_equal(fx->tc.url, "");

    /* Anchors and aliases work for values. */
    if (load(fx, "redis:\n  workers: &n 12\n  offset: *n\n"))
        fail_msg("%s", fx->err);
    assert_int_equal(fx->tc.workers, 12);
    assert_int_equal(fx->tc.offset, 12);
}

static void test_bool_spellings(void **state) {
    fixture_t *fx = *state;
    static const struct { const char *s; int v; } cases[] = {
        {"true", 1}, {"True", 1}, {"yes", 1}, {"on", 1}, {"1", 1},
        {"false", 0}, {"FALSE", 0}, {"no", 0}, {"off", 0}, {"0", 0}};
    char yaml[64];
    for (size_t i = 0; i < RS_ARRAY_LEN(cases); i++) {
        snprintf(yaml, sizeof(yaml), "redis:\n  verbose: %s\n", cases[i].s);
        if (load(fx, yaml)) fail_msg("%s: %s", cases[i].s, fx->err);
        assert_int_equal(fx->tc.verbose, cases[i].v);
    }
    assert_load_fails(fx, "redis:\n  verbose: maybe\n",
                      "config.yaml:2: redis.verbose: invalid boolean 'maybe'");
}

static void test_bad_values(void **state) {
    fixture_t *fx = *state;
    assert_load_fails(fx,
                      "redis:\n  url: x\n\n\n\n\n  ttl: abc\n",
                      "config.yaml:7: redis.ttl: invalid duration 'abc' "
                      "(expected e.g. 250ms, 10s, 5m, 1h, 7d)");
    assert_load_fails(fx, "redis:\n  workers: 4x\n",
                      "config.yaml:2: redis.workers: invalid integer '4x'");
    assert_load_fails(fx, "redis:\n  workers: 1.5\n", "invalid integer");
    assert_load_fails(fx, "redis:\n  workers: 99999999999999999999\n",
                      "invalid integer");
    assert_load_fails(fx, "redis:\n  ratio: half\n",
                      "redis.ratio: invalid number 'half'");
    assert_load_fails(fx, "redis:\n  ratio: .nan\n", "invalid number");
    assert_load_fails(fx, "redis:\n  ratio: inf\n", "invalid number");
    assert_load_fails(fx, "redis:\n  format: xml\n",
                      "redis.format: invalid value 'xml' (expected one of: "
                      "json, protobuf, csv)");
    assert_load_fails(fx, "redis:\n  format: JSON\n", "invalid value 'JSON'");
    assert_load_fails(fx, "redis:\n  url: redis://a-very-long-host:6379/12\n",
                      "redis.url: value too long (32 bytes, max 31)");
    /* 31 bytes fit exactly into char[32]. */
    assert_int_equal(load(fx, "redis:\n  url: redis://a-very-long-hos:6379/12\n"),
                     RS_OK);
    assert_int_equal(strlen(fx->tc.url), 31);
    /* Long garbage is shortened in the message. */
    char yaml[600] = "redis:\n  ttl: ";
    memset(yaml + strlen(yaml), 'z', 400);
    assert_load_fails(fx, yaml, "invalid duration 'zzzz");
    assert_non_null(strstr(fx->err, "...'"));
    /* A failed value leaves the field as it was. */
    assert_int_equal(fx->tc.ttl_ms, 7 * 86400000LL);
}

static void test_bounds(void **state) {
    fixture_t *fx = *state;
    assert_load_fails(fx, "redis:\n  workers: 0\n",
                      "redis.workers: value 0 out of range [1, 64]");
    assert_load_fails(fx, "redis:\n  workers: 65\n", "out of range [1, 64]");
    assert_int_equal(load(fx, "redis:\n  workers: 64\n"), RS_OK);
    assert_int_equal(load(fx, "redis:\n  workers: 1\n"), RS_OK);
    assert_load_fails(fx, "redis:\n  ratio: 1.5\n",
                      "redis.ratio: value 1.5 out of range [0, 1]");
    assert_load_fails(fx, "redis:\n  ratio: -0.1\n", "out of range");
    assert_load_fails(fx, "redis:\n  ttl: 500ms\n",
                      "redis.ttl: duration 500ms out of range [1s, 30d]");
    assert_load_fails(fx, "redis:\n  ttl: 31d\n", "out of range [1s, 30d]");
    assert_int_equal(load(fx, "redis:\n  ttl: 30d\n"), RS_OK);
    /* Fields with min == max == 0 are unbounded. */
    assert_int_equal(load(fx, "redis:\n  offset: -9000000000\n"), RS_OK);
    assert_int_equal(fx->tc.offset, -9000000000LL);
}

static void test_unknown_key_and_section(void **state) {
    fixture_t *fx = *state;
    char yaml[512] = "";
    for (int i = 0; i < 11; i++) strcat(yaml, i ? "# pad\n" : "redis:\n");
    strcat(yaml, "  ttl_sec: 5\n"); /* line 12 */
    assert_load_fails(fx, yaml,
                      "config.yaml:12: unknown key 'redis.ttl_sec' (known "
                      "keys: url, ttl, workers, ratio, verbose, format, "
                      "password, offset)");
    assert_load_fails(fx, "redis:\n  url: x\nredsi:\n  url: y\n",
                      "config.yaml:3: unknown section 'redsi' (known "
                      "sections: redis, kafka)");
    assert_load_fails(fx, "redis:\n  url: a\n  url: b\n",
                      "config.yaml:3: duplicate key 'redis.url'");
    assert_load_fails(fx, "redis: {}\nredis: {}\n",
                      "config.yaml:2: duplicate key 'redis'");
}

static void test_structure_errors(void **state) {
    fixture_t *fx = *state;
    assert_load_fails(fx, "redis:\n  url:\n    - a\n    - b\n",
                      "config.yaml:3: redis.url: expected a scalar value, "
                      "got a sequence");
    assert_load_fails(fx, "redis:\n  url: {a: 1}\n",
                      "redis.url: expected a scalar value, got a mapping");
    assert_load_fails(fx, "- redis\n- kafka\n",
                      "config.yaml:1: top level must be a mapping of "
                      "sections, got a sequence");
    assert_load_fails(fx, "hello\n", "top level must be a mapping");
    assert_load_fails(fx, "redis: 5\n",
                      "section 'redis' must be a mapping of keys, got a "
                      "scalar");
    assert_load_fails(fx, "redis: [a, b]\n", "got a sequence");
    assert_load_fails(fx, "? [a, b]\n: c\n", "expected a scalar");
    assert_load_fails(fx, "redis:\n  ? {k: v}\n  : c\n",
                      "redis: expected a scalar, got a mapping");
    assert_load_fails(fx, "redis:\n  url: \"a\\0b\"\n",
                      "redis.url: value contains a NUL byte");
    assert_load_fails(fx, "redis: {}\n---\nkafka: {}\n",
                      "config.yaml:3: more than one YAML document");
    assert_load_fails(fx, "redis:\n  url: *nowhere\n", "config.yaml:2:");
}

static void test_syntax_errors(void **state) {
    fixture_t *fx = *state;
    assert_load_fails(fx, "redis:\n  url: a\n bad: [\n",
                      "YAML syntax error");
    assert_load_fails(fx, "redis:\n  url: a: b\n",
                      "config.yaml:2:9: YAML syntax error: mapping values "
                      "are not allowed in this context");
    assert_load_fails(fx, "redis:\n\turl: a\n", "config.yaml:2:");
    assert_load_fails(fx, "redis: \"unterminated\n", "YAML syntax error");
    /* Invalid UTF-8 and control bytes: reader errors with a line. */
    assert_load_fails(fx, "redis:\n  url: \xff\xfe\n",
                      "config.yaml:2: invalid YAML input");
    assert_load_fails(fx, "redis:\n  url: a\x01\n", "invalid YAML input");
    static const char nul[] = "redis:\n  url: a\0b\n";
    assert_int_equal(rs_conf_load_yaml(fx->conf, nul, sizeof(nul) - 1, "x",
                                       fx->err, sizeof(fx->err)),
                     RS_ERR_CONFIG);
}

static void test_passthrough(void **state) {
    fixture_t *fx = *state;
    const char *yaml =
        "kafka:\n"
        "  bootstrap.servers: host1:9092,host2:9092\n"
        "  linger.ms: 5\n"
        "  enable.idempotence: true\n"
        "  sasl:\n"
        "    mechanism: PLAIN\n"
        "    username: rs\n"
        "    password: hunter2\n"
        "  ssl: {ca: {location: /etc/ca.pem}}\n"
        "  unset.key:\n"
        "  queue.buffering.max.kbytes: '1024'\n";
    if (load(fx, yaml)) fail_msg("%s", fx->err);
    assert_int_equal(fx->kafka.cnt, 8);
    assert_string_equal(rs_kv_get(&fx->kafka, "bootstrap.servers"),
                        "host1:9092,host2:9092");
    assert_string_equal(rs_kv_get(&fx->kafka, "linger.ms"), "5");
    assert_string_equal(rs_kv_get(&fx->kafka, "enable.idempotence"), "true");
    assert_string_equal(rs_kv_get(&fx->kafka, "sasl.mechanism"), "PLAIN");
    assert_string_equal(rs_kv_get(&fx->kafka, "sasl.username"), "rs");
    assert_string_equal(rs_kv_get(&fx->kafka, "sasl.password"), "hunter2");
    assert_string_equal(rs_kv_get(&fx->kafka, "ssl.ca.location"),
                        "/etc/ca.pem");
    assert_string_equal(rs_kv_get(&fx->kafka, "queue.buffering.max.kbytes"),
                        "1024");
    assert_null(rs_kv_get(&fx->kafka, "unset.key")); /* null: not set */
    /* Order follows the document. */
    assert_string_equal(fx->kafka.keys[0], "bootstrap.servers");
    assert_string_equal(fx->kafka.keys[3], "sasl.mechanism");

    assert_load_fails(fx, "kafka:\n  bootstrap.servers:\n    - a\n    - b\n",
                      "config.yaml:3: kafka.bootstrap.servers: expected a "
                      "scalar or a mapping, got a sequence");
    assert_load_fails(fx, "kafka:\n  sasl:\n    user: a\n    user: b\n",
                      "config.yaml:4: duplicate key 'kafka.sasl.user'");
    assert_load_fails(fx, "kafka:\n  '': x\n", "kafka: empty key");
    assert_load_fails(fx, "kafka: [a]\n",
                      "section 'kafka' must be a mapping");
}

static void test_alias_bombs(void **state) {
    fixture_t *fx = *state;
    /* Self-referential mapping: must stop at the depth limit. */
    assert_load_fails(fx, "kafka: &a {x: *a}\n", "nesting deeper than");
    /* Billion laughs: 10^9 nodes if expanded; must stop at the budget. */
    const char *lol =
        "kafka:\n"
        "  a: &a {x0: y, x1: y, x2: y, x3: y, x4: y, x5: y, x6: y, x7: y, "
        "x8: y, x9: y}\n"
        "  b: &b {a0: *a, a1: *a, a2: *a, a3: *a, a4: *a, a5: *a, a6: *a, "
        "a7: *a, a8: *a, a9: *a}\n"
        "  c: &c {b0: *b, b1: *b, b2: *b, b3: *b, b4: *b, b5: *b, b6: *b, "
        "b7: *b, b8: *b, b9: *b}\n"
        "  d: &d {c0: *c, c1: *c, c2: *c, c3: *c, c4: *c, c5: *c, c6: *c, "
        "c7: *c, c8: *c, c9: *c}\n"
        "  e: &e {d0: *d, d1: *d, d2: *d, d3: *d, d4: *d, d5: *d, d6: *d, "
        "d7: *d, d8: *d, d9: *d}\n"
        "  f: &f {e0: *e, e1: *e, e2: *e, e3: *e, e4: *e, e5: *e, e6: *e, "
        "e7: *e, e8: *e, e9: *e}\n"
        "  g: &g {f0: *f, f1: *f, f2: *f, f3: *f, f4: *f, f5: *f, f6: *f, "
        "f7: *f, f8: *f, f9: *f}\n";
    assert_load_fails(fx, lol, "document too large");
}

static void test_pathological_shapes(void **state) {
    fixture_t *fx = *state;
    /* Deep flow nesting (libyaml is quadratic in depth): rejected fast. */
    char *deep = malloc(200001);
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    assert_int_equal(rs_conf_load_yaml(fx->conf, deep, 200000, "deep",
                                       fx->err, sizeof(fx->err)),
                     RS_ERR_CONFIG);
    assert_string_equal(fx->err, "deep:1: YAML nested deeper than 64 levels");
    free(deep);
    /* 64 levels are fine (then rejected by shape, not depth). */
    char yaml[4096] = "kafka:\n  a: ";
    for (int i = 0; i < 63; i++) strcat(yaml, "{a: ");
    strcat(yaml, "x");
    for (int i = 0; i < 63; i++) strcat(yaml, "}");
    assert_load_fails(fx, yaml, "nesting deeper than 16 levels");
    /* Brackets and '&' inside quotes and comments do not count. */
    strcpy(yaml, "kafka:\n  x: \"");
    for (int i = 0; i < 100; i++) strcat(yaml, "[&");
    strcat(yaml, "\"  # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
                 "  y: 'it''s [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n");
    if (load(fx, yaml)) fail_msg("%s", fx->err);
    assert_int_equal(strlen(rs_kv_get(&fx->kafka, "x")), 200);
    const char *y = rs_kv_get(&fx->kafka, "y");
    assert_int_equal(strncmp(y, "it's [[", 7), 0);
    assert_int_equal(strspn(y + 5, "["), strlen(y + 5));
    /* Floods of anchors (libyaml looks them up linearly). */
    size_t cap = 64 * 1024, len = 0;
    char *many = malloc(cap);
    len += (size_t)snprintf(many, cap, "kafka:\n");
    for (int i = 0; i < 1001; i++)
        len += (size_t)snprintf(many + len, cap - len, "  k%d: &a%d v\n", i, i);
    assert_int_equal(rs_conf_load_yaml(fx->conf, many, len, "many", fx->err,
                                       sizeof(fx->err)), RS_ERR_CONFIG);
    assert_string_equal(fx->err, "many:1002: more than 1000 YAML "
                                 "anchors/aliases");
    free(many);
}

static void test_set(void **state) {
    fixture_t *fx = *state;
    char *err = fx->err;
    size_t n = sizeof(fx->err);
    assert_int_equal(rs_conf_set(fx->conf, "redis.ttl", "1h", err, n), RS_OK);
    assert_int_equal(fx->tc.ttl_ms, 3600000);
    assert_int_equal(rs_conf_set(fx->conf, "redis.format", "json", err, n),
                     RS_OK);
    assert_int_equal(fx->tc.format, 0);
    assert_int_equal(rs_conf_set(fx->conf, "redis.url", "", err, n), RS_OK);
    assert_string_equal(fx->tc.url, "");

    assert_int_equal(rs_conf_set(fx->conf, "kafka.client.id", "rs-1", err, n),
                     RS_OK);
    assert_string_equal(rs_kv_get(&fx->kafka, "client.id"), "rs-1");

    assert_int_equal(rs_conf_set(fx->conf, "redis.ttl", "abc", err, n),
                     RS_ERR_CONFIG);
    assert_string_equal(err, "redis.ttl: invalid duration 'abc' (expected "
                             "e.g. 250ms, 10s, 5m, 1h, 7d)");
    assert_int_equal(fx->tc.ttl_ms, 3600000);
    assert_int_equal(rs_conf_set(fx->conf, "redis.workers", "100", err, n),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(rs_conf_set(fx->conf, "redis.ttl_sec", "5", err, n),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "unknown key 'redis.ttl_sec' (known keys: "
                                "url, ttl,"));
    assert_int_equal(rs_conf_set(fx->conf, "redsi.url", "x", err, n),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "'redsi.url'"));
    assert_non_null(strstr(err, "known sections: redis, kafka"));
    assert_int_equal(rs_conf_set(fx->conf, "redis", "x", err, n),
                     RS_ERR_CONFIG);
    assert_int_equal(rs_conf_set(fx->conf, "kafka.", "x", err, n),
                     RS_ERR_CONFIG);
    assert_int_equal(rs_conf_set(fx->conf, ".url", "x", err, n),
                     RS_ERR_CONFIG);
    assert_int_equal(rs_conf_set(fx->conf, "redis.url", NULL, err, n),
                     RS_ERR_INVALID);
}

/* Run a function that prints to a FILE and return the text (malloc'd). */
static char *capture(void (*fn)(const rs_conf_t *, FILE *),
                     const rs_conf_t *conf) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    fn(conf, fp);
    fclose(fp);
    return buf;
}

static void test_dump_roundtrip(void **state) {
    fixture_t *fx = *state;
    const char *yaml =
        "redis:\n"
        "  url: \"tcp://h:1/\\\"q\\\"\\\\\"\n"
        "  ttl: 90s\n"
        "  workers: 7\n"
        "  ratio: 0.1\n"
        "  verbose: on\n"
        "  format: csv\n"
        "  offset: -5\n"
        "kafka:\n"
        "  client.id: \"rs: main\"\n"
        "  sasl: {password: hunter2}\n"
        "  oauth_token: abc\n";
    if (load(fx, yaml)) fail_msg("%s", fx->err);
    char *out = capture(rs_conf_dump, fx->conf);
    assert_non_null(strstr(out, "redis:\n"));
    assert_non_null(strstr(out, "  ttl: 90s\n"));
    assert_non_null(strstr(out, "  format: csv\n"));
    assert_non_null(strstr(out, "  ratio: 0.1\n"));
    assert_non_null(strstr(out, "  password: \"\"\n")); /* empty: shown */
    assert_non_null(strstr(out, "  sasl.password: \"***\"\n"));
    assert_non_null(strstr(out, "  oauth_token: \"***\"\n"));
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "abc\""));

    /* The dump reads back to the same values (secrets aside). */
    test_conf_t tc2;
    rs_kv_t kv2;
    rs_kv_init(&kv2);
    rs_conf_section_t sec2 = fx->sec;
    sec2.base = &tc2;
    rs_conf_t *conf2 = rs_conf_new();
    assert_int_equal(rs_conf_add_section(conf2, &sec2, NULL, 0), RS_OK);
    rs_conf_add_passthrough(conf2, "kafka", NULL, &kv2);
    if (rs_conf_load_yaml(conf2, out, strlen(out), "dump", fx->err,
                          sizeof(fx->err)))
        fail_msg("dump does not reload: %s\n%s", fx->err, out);
    assert_string_equal(tc2.url, "tcp://h:1/\"q\"\\");
    assert_string_equal(tc2.url, fx->tc.url);
    assert_int_equal(tc2.ttl_ms, 90000);
    assert_int_equal(tc2.workers, 7);
    assert_true(tc2.ratio == 0.1);
    assert_int_equal(tc2.verbose, 1);
    assert_int_equal(tc2.format, 2);
    assert_int_equal(tc2.offset, -5);
    assert_string_equal(rs_kv_get(&kv2, "client.id"), "rs: main");
    assert_string_equal(rs_kv_get(&kv2, "sasl.password"), "***");

    /* Awkward strings survive dump -> load, as values and as keys:
     * YAML folds NEL/LS/PS inside quotes unless they are escaped. */
    static const char *awkward[] = {
        "a\xe2\x80\xa8" "b", "a\xc2\x85" "b", "a\xe2\x80\xa9" "b",
        "\xef\xbb\xbf" "x", " lead", "trail ", "a\n b", "tab\tx", "\x7f",
        "\xc3\xa9", "#hash", "- dash", "k: v", "'q'", "~", "null", "*star",
        "&amp", "[x]", "{y}", "%p", "@at", "`tick", "!bang", "a\\b", "\"q\""};
    char k[16];
    for (size_t i = 0; i < RS_ARRAY_LEN(awkward); i++) {
        snprintf(k, sizeof(k), "awk%zu", i);
        rs_kv_set(&fx->kafka, k, awkward[i]);
        rs_kv_set(&fx->kafka, awkward[i], k);
    }
    free(out);
    out = capture(rs_conf_dump, fx->conf);
    rs_kv_free(&kv2);
    if (rs_conf_load_yaml(conf2, out, strlen(out), "dump", fx->err,
                          sizeof(fx->err)))
        fail_msg("dump does not reload: %s\n%s", fx->err, out);
    assert_int_equal(kv2.cnt, fx->kafka.cnt);
    for (int i = 0; i < fx->kafka.cnt; i++) {
        const char *key = fx->kafka.keys[i];
        const char *want = strstr(key, "password") || strstr(key, "token")
                               ? "***" : fx->kafka.vals[i];
        const char *got = rs_kv_get(&kv2, key);
        if (!got || strcmp(got, want))
            fail_msg("key '%s': got '%s', want '%s'", key,
                     got ? got : "(none)", want);
    }

    /* A set secret string field is masked too. */
    assert_int_equal(rs_conf_set(fx->conf, "redis.password", "s3cret", NULL,
                                 0), RS_OK);
    free(out);
    out = capture(rs_conf_dump, fx->conf);
    assert_non_null(strstr(out, "  password: \"***\"\n"));
    assert_null(strstr(out, "s3cret"));
    free(out);
    rs_conf_destroy(conf2);
    rs_kv_free(&kv2);
}

static void test_doc_markdown(void **state) {
    fixture_t *fx = *state;
    char *out = capture(rs_conf_doc_markdown, fx->conf);
    assert_non_null(strstr(out, "## `redis`\n\nRedis connection\n"));
    assert_non_null(strstr(out, "| key | type | default | description |"));
    assert_non_null(strstr(out, "| `url` | string | "
                                "`unix:///tmp/rs/redis.sock` | Redis URL |"));
    assert_non_null(strstr(out, "| `format` | enum: `json` \\| `protobuf` "
                                "\\| `csv` | `protobuf` | Wire format |"));
    assert_non_null(strstr(out, "| `ttl` | duration | `7d` | Key TTL "
                                "(range 1s to 30d) |"));
    assert_non_null(strstr(out, "| `workers` | int | `4` |"));
    assert_non_null(strstr(out, "## `kafka`"));
    /* One table row per field, plus header and separator per section and
     * the passthrough row. */
    int rows = 0;
    for (const char *p = out; (p = strstr(p, "\n|")); p++) rows++;
    assert_int_equal(rows, (int)RS_ARRAY_LEN(test_fields) + 2 * 2 + 1);
    free(out);
}

/* The commented sample: every key after its comment (description, type,
 * range, default), secrets masked, loads back to the same values; raw
 * keys documented with rs_conf_add_raw_doc appear in --doc and the
 * sample. */
static rs_err_t raw_ok(void *o, const char *s, const char *k,
                       const rs_conf_node_t *v, char *e, size_t es) {
    (void)o; (void)s; (void)k; (void)v; (void)e; (void)es;
    return RS_OK;
}

static void test_sample(void **state) {
    fixture_t *fx = *state;
    if (load(fx, "redis:\n  workers: 7\n  password: pw\nkafka:\n  a.b: c\n"))
        fail_msg("%s", fx->err);
    assert_int_equal(rs_conf_add_raw_doc(fx->conf, "redis", "specs", "list",
                                         "x", fx->err, sizeof(fx->err)),
                     RS_ERR_CONFIG); /* no raw hook yet */
    assert_int_equal(rs_conf_add_raw(fx->conf, "redis", NULL, raw_ok, NULL,
                                     NULL, fx->err, sizeof(fx->err)), RS_OK);
    assert_int_equal(rs_conf_add_raw_doc(fx->conf, "redis", "specs",
                                         "list of specs", "extra things",
                                         fx->err, sizeof(fx->err)), RS_OK);
    char *out = capture(rs_conf_sample, fx->conf);
    assert_non_null(strstr(out, "# redis: Redis connection\nredis:\n"));
    assert_non_null(strstr(out, "  # Worker threads [int, range 1 to 64; "
                                "default 4]\n  workers: 7\n"));
    assert_non_null(strstr(out, "  # Wire format [one of: json, protobuf, "
                                "csv; default protobuf]\n  format: protobuf\n"));
    assert_non_null(strstr(out, "  # Key TTL [duration, range 1s to 30d; "
                                "default 7d]\n  ttl: 1w\n"));
    assert_non_null(strstr(out, "  password: \"***\"\n"));
    assert_null(strstr(out, "pw\""));
    assert_non_null(strstr(out, "  # specs: extra things [list of specs; not "
                                "set by default]\n"));
    assert_non_null(strstr(out, "kafka:\n  a.b: \"c\"\n"));
    /* Loads back (the masked secret aside). */
    test_conf_t tc2;
    rs_kv_t kv2;
    rs_kv_init(&kv2);
    rs_conf_section_t sec2 = fx->sec;
    sec2.base = &tc2;
    rs_conf_t *conf2 = rs_conf_new();
    assert_int_equal(rs_conf_add_section(conf2, &sec2, NULL, 0), RS_OK);
    rs_conf_add_passthrough(conf2, "kafka", NULL, &kv2);
    if (rs_conf_load_yaml(conf2, out, strlen(out), "sample", fx->err,
                          sizeof(fx->err)))
        fail_msg("sample does not load: %s\n%s", fx->err, out);
    assert_int_equal(tc2.workers, 7);
    assert_int_equal(tc2.ttl_ms, 7 * 86400000LL);
    assert_string_equal(rs_kv_get(&kv2, "a.b"), "c");
    rs_conf_destroy(conf2);
    rs_kv_free(&kv2);
    free(out);
    out = capture(rs_conf_doc_markdown, fx->conf);
    assert_non_null(strstr(out, "| `specs` | list of specs | | extra things |"));
    free(out);
}

static void test_doc_table(void **state) {
    fixture_t *fx = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_int_equal(rs_conf_doc_table(fx->conf, "redis.ttl, redis.format",
                                       fp, fx->err, sizeof(fx->err)), RS_OK);
    fclose(fp);
    assert_string_equal(buf,
        "| key | type | default | description |\n"
        "|-----|------|---------|-------------|\n"
        "| `redis.ttl` | duration | `7d` | Key TTL (range 1s to 30d) |\n"
        "| `redis.format` | enum: `json` \\| `protobuf` \\| `csv` | "
        "`protobuf` | Wire format |\n");
    free(buf);
    buf = NULL;
    fp = open_memstream(&buf, &len);
    assert_int_equal(rs_conf_doc_table(fx->conf, "redis", fp, NULL, 0), RS_OK);
    fclose(fp);
    int rows = 0;
    for (const char *p = buf; (p = strstr(p, "\n|")); p++) rows++;
    assert_int_equal(rows, (int)RS_ARRAY_LEN(test_fields) + 1);
    free(buf);
    /* Unknown names fail before printing anything. */
    const char *bad[] = {"redis.nope", "nosuch", "kafka", "redis.ttl,x.y",
                         "", " , "};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        buf = NULL;
        fp = open_memstream(&buf, &len);
        assert_int_equal(rs_conf_doc_table(fx->conf, bad[i], fp, fx->err,
                                           sizeof(fx->err)), RS_ERR_NOTFOUND);
        fclose(fp);
        assert_int_equal(len, 0);
        free(buf);
    }
    assert_non_null(strstr(fx->err, "empty key list"));
}

static void test_load_file(void **state) {
    fixture_t *fx = *state;
    char path[] = "/tmp/rs_test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "redis:\n  workers: 9\n  ttl: 1x\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    assert_int_equal(rs_conf_load_file(fx->conf, path, fx->err,
                                       sizeof(fx->err)), RS_ERR_CONFIG);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: redis.ttl: invalid duration", path);
    assert_non_null(strstr(fx->err, want));
    assert_int_equal(fx->tc.workers, 9);

    FILE *fp = fopen(path, "w");
    fputs("redis:\n  ttl: 2h\n", fp);
    fclose(fp);
    assert_int_equal(rs_conf_load_file(fx->conf, path, fx->err,
                                       sizeof(fx->err)), RS_OK);
    assert_int_equal(fx->tc.ttl_ms, 7200000);
    unlink(path);

    assert_int_equal(rs_conf_load_file(fx->conf, path, fx->err,
                                       sizeof(fx->err)), RS_ERR_IO);
    assert_non_null(strstr(fx->err, path));
    assert_non_null(strstr(fx->err, "No such file or directory"));
    assert_int_equal(rs_conf_load_file(fx->conf, "/tmp", fx->err,
                                       sizeof(fx->err)), RS_ERR_IO);
    assert_non_null(strstr(fx->err, "/tmp"));
}

static void test_bad_tables(void **state) {
    (void)state;
    char err[256];
    test_conf_t tc;
    rs_conf_t *conf = rs_conf_new();
    static const rs_conf_field_t bad_def[] = {
        {"n", RS_CONF_INT, "ten", offsetof(test_conf_t, workers)}};
    rs_conf_section_t s1 = {"a", NULL, bad_def, 1, &tc};
    assert_int_equal(rs_conf_add_section(conf, &s1, err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_string_equal(err, "a.n: bad default: invalid integer 'ten'");

    static const rs_conf_field_t out_of_bounds[] = {
        {"n", RS_CONF_INT, "0", offsetof(test_conf_t, workers), 0, NULL,
         NULL, 1, 2}};
    rs_conf_section_t s2 = {"a", NULL, out_of_bounds, 1, &tc};
    assert_int_equal(rs_conf_add_section(conf, &s2, err, sizeof(err)),
                     RS_ERR_CONFIG);

    static const rs_conf_field_t no_size[] = {
        {"s", RS_CONF_STRING, "x", offsetof(test_conf_t, url), 0}};
    rs_conf_section_t s3 = {"a", NULL, no_size, 1, &tc};
    assert_int_equal(rs_conf_add_section(conf, &s3, err, sizeof(err)),
                     RS_ERR_CONFIG);

    static const rs_conf_field_t no_choices[] = {
        {"e", RS_CONF_ENUM, "x", offsetof(test_conf_t, format)}};
    rs_conf_section_t s4 = {"a", NULL, no_choices, 1, &tc};
    assert_int_equal(rs_conf_add_section(conf, &s4, err, sizeof(err)),
                     RS_ERR_CONFIG);

    static const rs_conf_field_t twice[] = {
        {"n", RS_CONF_INT, "1", offsetof(test_conf_t, workers)},
        {"n", RS_CONF_INT, "1", offsetof(test_conf_t, offset)}};
    rs_conf_section_t s5 = {"a", NULL, twice, 2, &tc};
    assert_int_equal(rs_conf_add_section(conf, &s5, err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "a.n: declared twice"));

    rs_conf_section_t dotted = {"a.b", NULL, NULL, 0, NULL};
    assert_int_equal(rs_conf_add_section(conf, &dotted, err, sizeof(err)),
                     RS_ERR_CONFIG);

    /* NULL defaults zero the field; failed sections were not registered. */
    static const rs_conf_field_t nodef[] = {
        {"n", RS_CONF_INT, NULL, offsetof(test_conf_t, workers)},
        {"s", RS_CONF_STRING, NULL, offsetof(test_conf_t, url), 8}};
    memset(&tc, 0xAB, sizeof(tc));
    rs_conf_section_t s6 = {"a", NULL, nodef, 2, &tc};
    assert_int_equal(rs_conf_add_section(conf, &s6, err, sizeof(err)), RS_OK);
    assert_int_equal(tc.workers, 0);
    assert_string_equal(tc.url, "");
    assert_int_equal(rs_conf_add_section(conf, &s6, err, sizeof(err)),
                     RS_ERR_CONFIG);
    assert_non_null(strstr(err, "registered twice"));

    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_log_set_level(RS_LOG_OFF); /* the duplicate is logged */
    rs_conf_add_passthrough(conf, "a", NULL, &kv); /* duplicate: ignored */
    rs_log_set_level(RS_LOG_INFO);
    assert_int_equal(rs_conf_load_yaml(conf, "a: {n: 3}", 9, "x", err,
                                       sizeof(err)), RS_OK);
    assert_int_equal(tc.workers, 3);
    assert_int_equal(kv.cnt, 0);
    rs_conf_destroy(conf);
    rs_conf_destroy(NULL);
}

/* ------------------------------------------------------------- garbage */

static const char valid_doc[] =
    "# sample\n"
    "redis:\n"
    "  url: \"redis://h:6379\"\n"
    "  ttl: 36h\n"
    "  workers: 16\n"
    "  ratio: 0.5\n"
    "  verbose: true\n"
    "  format: json\n"
    "kafka:\n"
    "  bootstrap.servers: a:9092\n"
    "  sasl: {mechanism: PLAIN, password: x}\n"
    "  ssl:\n"
    "    ca: &ca {location: /etc/ca.pem}\n"
    "  copy: *ca\n"
    "  list: [1, 2]\n";

/* Load and check the result is sane: OK, or CONFIG with a message. */
static void load_garbage(fixture_t *fx, const char *buf, size_t len) {
    fx->err[0] = '\0';
    rs_err_t err = rs_conf_load_yaml(fx->conf, buf, len, "fuzz", fx->err,
                                     sizeof(fx->err));
    if (err != RS_OK && err != RS_ERR_CONFIG)
        fail_msg("unexpected error %d: %s", err, fx->err);
    if (err) {
        assert_true(strlen(fx->err) > 0);
        assert_true(memchr(fx->err, '\0', sizeof(fx->err)) != NULL);
    }
}

static void test_garbage(void **state) {
    fixture_t *fx = *state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 0xC0FFEE);
    char buf[1024];

    /* 2000 random byte strings: half raw bytes, half drawn from YAML
     * punctuation and key words so the parser gets further in. */
    static const char *toks[] = {
        "redis", "kafka", ":", " ", "\n", "  ", "-", "[", "]", "{", "}",
        ",", "&a", "*a", "'", "\"", "?", "#", "url", "ttl", "workers",
        "10s", "abc", "!!str", "|", ">", "---", "...", "~", "\\", "%YAML",
        "\t", "ratio", "1e9", "format", "json"};
    for (int i = 0; i < 2000; i++) {
        size_t len = 0, want = rs_rng_below(&rng, sizeof(buf));
        if (i % 2) {
            for (; len < want; len++) buf[len] = (char)rs_rng_u64(&rng);
        } else {
            while (len < want) {
                const char *t = toks[rs_rng_below(&rng, RS_ARRAY_LEN(toks))];
                size_t tl = strlen(t);
                if (len + tl > want) break;
                memcpy(buf + len, t, tl);
                len += tl;
            }
        }
        load_garbage(fx, buf, len);
    }

    /* Every truncation of a valid document. */
    size_t vlen = sizeof(valid_doc) - 1;
    int ok = 0;
    for (size_t len = 0; len <= vlen; len++) {
        load_garbage(fx, valid_doc, len);
        ok += fx->err[0] == '\0';
    }
    assert_true(ok > 0);
    /* The full valid document ends in a sequence: rejected by name. */
    assert_load_fails(fx, valid_doc, "kafka.list");

    /* Random byte flips of the valid document. */
    for (int i = 0; i < 2000; i++) {
        memcpy(buf, valid_doc, vlen);
        for (int f = 0; f < 1 + (int)rs_rng_below(&rng, 4); f++)
            buf[rs_rng_below(&rng, vlen)] = (char)rs_rng_u64(&rng);
        load_garbage(fx, buf, vlen);
    }
    /* No NUL terminator needed: a buffer ending exactly at a page edge is
     * covered by ASan runs; here just a non-terminated slice. */
    load_garbage(fx, "redis: {url: abc}XXXX", 17);
    assert_string_equal(fx->tc.url, "abc");

    /* Small errstr buffers are honoured. */
    char tiny[8];
    assert_int_equal(rs_conf_load_yaml(fx->conf, "x: 1", 4, "src", tiny,
                                       sizeof(tiny)), RS_ERR_CONFIG);
    assert_int_equal(strlen(tiny), 7);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),        T(test_empty_inputs),
        T(test_every_type),      T(test_bool_spellings),
        T(test_bad_values),      T(test_bounds),
        T(test_unknown_key_and_section), T(test_structure_errors),
        T(test_syntax_errors),   T(test_passthrough),
        T(test_alias_bombs),     T(test_pathological_shapes),
        T(test_set),
        T(test_dump_roundtrip),  T(test_doc_markdown),
        T(test_sample),          T(test_doc_table),
        T(test_load_file),       cmocka_unit_test(test_bad_tables),
        T(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
