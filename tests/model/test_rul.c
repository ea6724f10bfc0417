/* test_rul.c -- the remaining-useful-life head (model/rul.h):
 *  - test_cap: targets beyond the cap are learned as the cap, estimates
 *    stay in [1 ms, cap]; a copy predicts the same; bad sizes refused;
 *  - test_learns: readings whose first feature falls linearly towards a
 *    failure (noise around it) are estimated within 15 % of the cap after
 *    one pass over 40 lives, far better than the untrained head (its
 *    estimate is the half cap whatever the reading).
 * The learner's side (what is learned when; censoring) is in test_learnlog
 * (test_rul_censoring). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "model/rul.h"

#define HR 3600000LL

static void test_cap(void **st) {
    (void)st;
    assert_null(rs_rul_new(0, 10));
    assert_null(rs_rul_new(3, 0));
    rs_rul_t *r = rs_rul_new(3, 48 * HR), *c = rs_rul_new(3, 48 * HR);
    assert_int_equal(rs_rul_cap(r), 48 * HR);
    float x[3] = {1, 2, 3};
    int64_t p0 = rs_rul_predict(r, x, 0.5f);
    assert_int_equal(p0, 24 * HR); /* untrained: the half cap */
    /* a life far beyond the cap is learned as the cap: the same steps */
    for (int i = 0; i < 500; i++) {
        x[0] = (float)(i % 7);
        rs_rul_learn(r, x, 0.1f, 1000 * HR);
        rs_rul_learn(c, x, 0.1f, 48 * HR);
    }
    assert_int_equal(rs_rul_predict(r, x, 0.1f), rs_rul_predict(c, x, 0.1f));
    assert_true(rs_rul_predict(r, x, 0.1f) > 40 * HR);
    assert_true(rs_rul_predict(r, x, 0.1f) <= 48 * HR);
    /* a negative life is learned as 0; estimates stay >= 1 ms */
    int64_t before = rs_rul_predict(r, x, 0.9f);
    for (int i = 0; i < 3000; i++) {
        x[0] = (float)(i % 7);
        rs_rul_learn(r, x, 0.9f, -5);
        rs_rul_learn(c, x, 0.9f, 0);
    }
    int64_t p = rs_rul_predict(r, x, 0.9f);
    assert_int_equal(p, rs_rul_predict(c, x, 0.9f));
    printf("rul head: %.1f h after 500 readings at the cap, %.1f h after "
           "3000 more at 0\n", (double)before / HR, (double)p / HR);
    assert_true(p >= 1 && p < before / 2);
    /* a copy predicts the same; another size is refused */
    rs_rul_t *d = rs_rul_new(3, 48 * HR);
    assert_int_equal(rs_rul_copy(d, r), RS_OK);
    assert_int_equal(rs_rul_predict(d, x, 0.9f), p);
    assert_int_equal(rs_rul_updates(d), 3500);
    rs_rul_t *other = rs_rul_new(4, 48 * HR);
    assert_int_equal(rs_rul_copy(other, r), RS_ERR_INVALID);
    rs_rul_destroy(other);
    rs_rul_destroy(d);
    rs_rul_destroy(c);
    rs_rul_destroy(r);
    rs_rul_destroy(NULL);
}

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void test_learns(void **st) {
    (void)st;
    const int64_t cap = 48 * HR;
    rs_rul_t *r = rs_rul_new(2, cap);
    uint64_t seed = 42;
    float x[2];
    /* 40 lives of 96 hourly readings each: the first feature is the
     * (capped) remaining life in hours with noise, the second is noise */
    for (int life = 0; life < 40; life++)
        for (int h = 95; h >= 0; h--) {
            double left = h > 48 ? 48 : h;
            x[0] = (float)(left + 2.0 * (urand(&seed) - 0.5));
            x[1] = (float)urand(&seed);
            rs_rul_learn(r, x, 0.5f, (int64_t)h * HR);
        }
    double se = 0, se0 = 0;
    int n = 0;
    for (int h = 0; h <= 48; h += 4) {
        x[0] = (float)h;
        x[1] = 0.5f;
        double e = (double)(rs_rul_predict(r, x, 0.5f) - (int64_t)h * HR);
        se += e * e;
        se0 += (double)(cap / 2 - (int64_t)h * HR) *
               (double)(cap / 2 - (int64_t)h * HR);
        n++;
    }
    double rmse = sqrt(se / n), rmse0 = sqrt(se0 / n);
    printf("rul head: RMSE %.2f h after 40 lives (untrained: %.2f h)\n",
           rmse / HR, rmse0 / HR);
    assert_true(rmse < 0.15 * (double)cap);
    assert_true(rmse < rmse0 / 2);
    rs_rul_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_learns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
