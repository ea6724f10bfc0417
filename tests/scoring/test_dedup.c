/* test_dedup.c -- duplicate event ids (scoring/dedup.h): lookups inside and
 * across batches, the event-time window, a full table, many model
 * versions, enumeration and the serialized form (round trip into tables of
 * other sizes, malformed buffers refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scoring/dedup.h"

static uint64_t key_of(int i) {
    char id[32], ent[32];
    snprintf(id, sizeof(id), "ev-%d", i);
    snprintf(ent, sizeof(ent), "card-%d", i % 7);
    return rs_dedup_key(ent, id);
}

static rs_dedup_rec_t rec_of(int i) {
    rs_dedup_rec_t r;
    memset(&r, 0, sizeof(r));
    r.score = (float)i / 1000.0f;
    r.decision = (uint8_t)(i % 3);
    r.flags = (uint32_t)(i % 2);
    r.has = 1;
    snprintf(r.model_version, sizeof(r.model_version), "seq-test-%d", i / 10);
    return r;
}

static void assert_rec(const rs_dedup_rec_t *got, int i) {
    rs_dedup_rec_t want = rec_of(i);
    assert_int_equal(got->has, 1);
    assert_true(got->score == want.score);
    assert_int_equal(got->decision, want.decision);
    assert_int_equal(got->flags, want.flags);
    assert_string_equal(got->model_version, want.model_version);
}

static void test_keys(void **state) {
    (void)state;
    /* Entity and id both count; stable. */
    assert_true(rs_dedup_key("a", "x") != rs_dedup_key("b", "x"));
    assert_true(rs_dedup_key("a", "x") != rs_dedup_key("a", "y"));
    assert_true(rs_dedup_key("ab", "c") != rs_dedup_key("a", "bc"));
    assert_true(rs_dedup_key("a", "x") == rs_dedup_key("a", "x"));
}

/* New, then duplicate (also before its decision is set: same batch). */
static void test_check_set_get(void **state) {
    (void)state;
    char errstr[256];
    rs_dedup_t *d = rs_dedup_new(1000, 3600000, errstr, sizeof(errstr));
    assert_non_null(d);
    uint64_t h[100], h2;
    rs_dedup_rec_t r;
    for (int i = 0; i < 100; i++)
        assert_int_equal(rs_dedup_check(d, key_of(i), 1000LL * i, &h[i]), 0);
    /* In the same batch: found, no decision yet. */
    assert_int_equal(rs_dedup_check(d, key_of(42), 42000, &h2), 1);
    assert_int_equal(h2, h[42]);
    assert_int_equal(rs_dedup_get(d, h2, &r), RS_OK);
    assert_int_equal(r.has, 0);
    for (int i = 0; i < 100; i++) {
        rs_dedup_rec_t rec = rec_of(i);
        rs_dedup_set(d, h[i], &rec);
    }
    for (int i = 99; i >= 0; i--) {
        assert_int_equal(rs_dedup_check(d, key_of(i), 1000LL * i, &h2), 1);
        assert_int_equal(h2, h[i]);
        assert_int_equal(rs_dedup_get(d, h2, &r), RS_OK);
        assert_rec(&r, i);
    }
    rs_dedup_stats_t st;
    rs_dedup_stats(d, &st);
    assert_int_equal(st.entries, 100);
    assert_int_equal(st.inserts, 100);
    assert_int_equal(st.hits, 101);
    assert_int_equal(st.evictions, 0);
    assert_int_equal(st.bytes, rs_dedup_bytes(1000));
    assert_true(st.bytes < 1000 * 48 + 4096 * 52 + 4096);
    rs_dedup_destroy(d);
    rs_dedup_destroy(NULL);
    assert_null(rs_dedup_new(0, 1000, errstr, sizeof(errstr)));
    assert_null(rs_dedup_new(10, 0, errstr, sizeof(errstr)));
}

/* Entries older than the window behind the newest time expire; a full
 * table evicts its oldest arrival. */
static void test_window_and_capacity(void **state) {
    (void)state;
    char errstr[256];
    rs_dedup_t *d = rs_dedup_new(1000, 60000, errstr, sizeof(errstr));
    uint64_t h;
    for (int i = 0; i < 10; i++)
        assert_int_equal(rs_dedup_check(d, key_of(i), 1000LL * i, &h), 0);
    /* 70 s: events 0..9 (0-9 s) are older than 70 - 60 = 10 s. */
    assert_int_equal(rs_dedup_check(d, key_of(100), 70000, &h), 0);
    assert_int_equal(rs_dedup_check(d, key_of(5), 5000, &h), 0); /* again */
    rs_dedup_stats_t st;
    rs_dedup_stats(d, &st);
    assert_int_equal(st.expired, 10);
    rs_dedup_destroy(d);

    d = rs_dedup_new(4, 3600000, errstr, sizeof(errstr));
    for (int i = 0; i < 6; i++)
        assert_int_equal(rs_dedup_check(d, key_of(i), 1000LL * i, &h), 0);
    rs_dedup_stats(d, &st);
    assert_int_equal(st.entries, 4);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(rs_dedup_check(d, key_of(5), 5000, &h), 1);
    assert_int_equal(rs_dedup_check(d, key_of(2), 2000, &h), 1);
    assert_int_equal(rs_dedup_check(d, key_of(0), 0, &h), 0); /* evicted */
    rs_dedup_destroy(d);
}

/* More versions than the intern table: the oldest entries make room; the
 * records stay right. */
static void test_many_versions(void **state) {
    (void)state;
    char errstr[256];
    const int n = 50000; /* 5000 versions (rec_of: i / 10) */
    rs_dedup_t *d = rs_dedup_new((uint64_t)n, 3600000000LL, errstr,
                                 sizeof(errstr));
    uint64_t *h = calloc((size_t)n, sizeof(*h));
    for (int i = 0; i < n; i++) {
        assert_int_equal(rs_dedup_check(d, key_of(i), i, &h[i]), 0);
        rs_dedup_rec_t rec = rec_of(i);
        rs_dedup_set(d, h[i], &rec);
    }
    rs_dedup_stats_t st;
    rs_dedup_stats(d, &st);
    printf("versions: %llu entries live of %d, %llu evicted\n",
           (unsigned long long)st.entries, n,
           (unsigned long long)st.evictions);
    assert_true(st.evictions > 0);
    assert_true(st.entries >= 4000 * 10);
    int first = n - (int)st.entries;
    rs_dedup_rec_t r;
    for (int i = first; i < n; i++) {
        assert_int_equal(rs_dedup_get(d, h[i], &r), RS_OK);
        assert_rec(&r, i);
    }
    assert_int_equal(rs_dedup_get(d, h[0], &r), RS_ERR_NOTFOUND);
    free(h);
    rs_dedup_destroy(d);
}

typedef struct visit_s {
    int n;
    uint64_t keys[256];
    int64_t t[256];
    rs_dedup_rec_t rec[256];
} visit_t;

static int visit(void *opaque, uint64_t key, int64_t t,
                 const rs_dedup_rec_t *rec) {
    visit_t *v = opaque;
    v->keys[v->n] = key;
    v->t[v->n] = t;
    v->rec[v->n] = *rec;
    v->n++;
    return 0;
}

/* Write, read back (same size, smaller table: the newest kept), enumerate;
 * malformed buffers refused. */
static void test_serialize(void **state) {
    (void)state;
    char errstr[256];
    rs_dedup_t *d = rs_dedup_new(100, 3600000, errstr, sizeof(errstr));
    uint64_t h;
    for (int i = 0; i < 120; i++) { /* 20 evicted; entry 119 undecided */
        assert_int_equal(rs_dedup_check(d, key_of(i), 1000LL * i, &h), 0);
        rs_dedup_rec_t rec = rec_of(i);
        if (i < 119) rs_dedup_set(d, h, &rec);
    }
    size_t need = rs_dedup_size(d), len;
    uint8_t *buf = malloc(need);
    assert_int_equal(rs_dedup_write(d, buf, need - 1, &len), RS_ERR_TOOBIG);
    assert_int_equal(rs_dedup_write(d, buf, need, &len), RS_OK);
    assert_int_equal(len, need);
    visit_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    rs_dedup_foreach(d, visit, a);
    assert_int_equal(a->n, 100);
    assert_int_equal(a->t[0], 20000);

    rs_dedup_t *e = rs_dedup_new(100, 3600000, errstr, sizeof(errstr));
    assert_int_equal(rs_dedup_read(e, buf, len, errstr, sizeof(errstr)), RS_OK);
    rs_dedup_foreach(e, visit, b);
    assert_int_equal(b->n, 100);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(a->keys[i], b->keys[i]);
        assert_int_equal(a->t[i], b->t[i]);
        assert_memory_equal(&a->rec[i], &b->rec[i], sizeof(a->rec[i]));
    }
    assert_int_equal(rs_dedup_check(e, key_of(50), 50000, &h), 1);
    rs_dedup_rec_t r;
    assert_int_equal(rs_dedup_get(e, h, &r), RS_OK);
    assert_rec(&r, 50);
    rs_dedup_destroy(e);

    /* A smaller table keeps the newest 10. */
    e = rs_dedup_new(10, 3600000, errstr, sizeof(errstr));
    assert_int_equal(rs_dedup_read(e, buf, len, errstr, sizeof(errstr)), RS_OK);
    memset(b, 0, sizeof(*b));
    rs_dedup_foreach(e, visit, b);
    assert_int_equal(b->n, 10);
    assert_int_equal(b->t[0], 110000);
    assert_int_equal(rs_dedup_check(e, key_of(109), 109000, &h), 0);

    /* Malformed: every truncation, a bad entry, a repeated key. */
    for (size_t cut = 0; cut < len; cut += 7)
        assert_int_equal(rs_dedup_read(e, buf, cut, errstr, sizeof(errstr)),
                         RS_ERR_CORRUPT);
    uint8_t *bad = malloc(len);
    memcpy(bad, buf, len);
    size_t ent0 = len - 100 * 32; /* the 10-entry table reads 90..99 */
    bad[ent0 + 99 * 32 + 25] = 7; /* has */
    assert_int_equal(rs_dedup_read(e, bad, len, errstr, sizeof(errstr)),
                     RS_ERR_CORRUPT);
    printf("refused: %s\n", errstr);
    memcpy(bad, buf, len);
    memcpy(bad + ent0 + 99 * 32, bad + ent0 + 98 * 32, 8); /* key of 98 */
    assert_int_equal(rs_dedup_read(e, bad, len, errstr, sizeof(errstr)),
                     RS_ERR_CORRUPT);
    rs_dedup_stats_t st;
    rs_dedup_stats(e, &st);
    assert_int_equal(st.entries, 0); /* refused: empty */
    free(bad);
    free(buf);
    free(a);
    free(b);
    rs_dedup_destroy(e);
    rs_dedup_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_check_set_get),
        cmocka_unit_test(test_window_and_capacity),
        cmocka_unit_test(test_many_versions),
        cmocka_unit_test(test_serialize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
