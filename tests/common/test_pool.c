/* test_pool.c -- the fork-join pool (common/pool.h).
 *
 *  - test_inline: size 1 (and NULL) run the whole range on the caller,
 *    one slice, no thread.
 *  - test_slices: for sizes 2..5 and n from 0 to 300 every item is handled
 *    exactly once, slice w covers [rs_pool_lo(n, s, w), ...), s is
 *    min(size, n / min_chunk) (at least 1).
 *  - test_many_runs: 20 000 back-to-back runs of a 4-worker pool (late
 *    wake-ups of one run must never claim a slice of the next): every run
 *    sums its items exactly once.
 *  - test_bad_size: 0 and RS_POOL_MAX + 1 are configuration errors.
 * Also under TSan (label tsan). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/pool.h"

typedef struct job_s {
    int n;
    _Atomic int *hits;       /* [n] times each item was handled        */
    int lo[RS_POOL_MAX + 1]; /* per slice: its range as seen           */
    int hi[RS_POOL_MAX + 1];
    _Atomic long long sum;
    pthread_t who[RS_POOL_MAX + 1];
} job_t;

static void stage(void *opaque, int lo, int hi, int slice) {
    job_t *j = opaque;
    j->lo[slice] = lo;
    j->hi[slice] = hi;
    j->who[slice] = pthread_self();
    long long s = 0;
    for (int i = lo; i < hi; i++) {
        if (j->hits) atomic_fetch_add(&j->hits[i], 1);
        s += i;
    }
    atomic_fetch_add(&j->sum, s);
}

static void test_inline(void **state) {
    (void)state;
    rs_err_t err;
    char errstr[128];
    rs_pool_t *p = rs_pool_new(1, "t", &err, errstr, sizeof(errstr));
    assert_non_null(p);
    assert_int_equal(rs_pool_size(p), 1);
    assert_int_equal(rs_pool_size(NULL), 1);
    static job_t j;
    memset(&j, 0, sizeof(j));
    assert_int_equal(rs_pool_run(p, 1000, 1, stage, &j), 1);
    assert_int_equal(j.lo[0], 0);
    assert_int_equal(j.hi[0], 1000);
    assert_true(pthread_equal(j.who[0], pthread_self()));
    memset(&j, 0, sizeof(j));
    assert_int_equal(rs_pool_run(NULL, 10, 1, stage, &j), 1);
    assert_int_equal(j.sum, 45);
    assert_int_equal(rs_pool_run(NULL, 0, 1, stage, &j), 0);
    rs_pool_destroy(p);
    rs_pool_destroy(NULL);
}

static void test_slices(void **state) {
    (void)state;
    for (int size = 2; size <= 5; size++) {
        rs_err_t err;
        char errstr[128];
        rs_pool_t *p = rs_pool_new(size, "t", &err, errstr, sizeof(errstr));
        assert_non_null(p);
        for (int n = 0; n <= 300; n += 7) {
            for (int chunk = 1; chunk <= 64; chunk *= 8) {
                static _Atomic int hits[301];
                static job_t j;
                memset(&j, 0, sizeof(j));
                memset(hits, 0, sizeof(hits));
                j.hits = hits;
                int s = rs_pool_run(p, n, chunk, stage, &j);
                int want = n / chunk < size ? n / chunk : size;
                if (want < 1) want = 1;
                if (n == 0) want = 0;
                assert_int_equal(s, want);
                for (int i = 0; i < n; i++) assert_int_equal(hits[i], 1);
                for (int w = 0; w < s; w++) {
                    assert_int_equal(j.lo[w], rs_pool_lo(n, s, w));
                    assert_int_equal(j.hi[w], rs_pool_lo(n, s, w + 1));
                }
                assert_int_equal(j.sum, (long long)n * (n - 1) / 2);
            }
        }
        rs_pool_destroy(p);
    }
}

static void test_many_runs(void **state) {
    (void)state;
    rs_err_t err;
    char errstr[128];
    rs_pool_t *p = rs_pool_new(4, "t", &err, errstr, sizeof(errstr));
    assert_non_null(p);
    static job_t j;
    for (int r = 0; r < 20000; r++) {
        int n = 4 + r % 97;
        memset(&j, 0, sizeof(j));
        rs_pool_run(p, n, 1, stage, &j);
        if (j.sum != (long long)n * (n - 1) / 2)
            fail_msg("run %d: sum %lld, want %lld", r, (long long)j.sum,
                     (long long)n * (n - 1) / 2);
    }
    rs_pool_destroy(p);
}

static void test_bad_size(void **state) {
    (void)state;
    rs_err_t err = RS_OK;
    char errstr[128];
    assert_null(rs_pool_new(0, "t", &err, errstr, sizeof(errstr)));
    assert_int_equal(err, RS_ERR_CONFIG);
    assert_null(rs_pool_new(RS_POOL_MAX + 1, "t", &err, errstr,
                            sizeof(errstr)));
    assert_int_equal(err, RS_ERR_CONFIG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_slices),
        cmocka_unit_test(test_many_runs),
        cmocka_unit_test(test_bad_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
