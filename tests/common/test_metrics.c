/* test_metrics.c -- unit tests for common/metrics.c: histogram accuracy
 * against exact quantiles, binned AUC/AP against exact and brute force,
 * hand-computed values, rate meter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"

/* cmocka 1.1 only has a float version. */
#define assert_double_equal(a, b, eps)                                       \
    do {                                                                     \
        double a_ = (a), b_ = (b);                                           \
        if (!(fabs(a_ - b_) <= (eps)))                                       \
            fail_msg("%s = %.15g, want %.15g", #a, a_, b_);                  \
    } while (0)

/* ----------------------------------------------------------- histogram */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The exact q-quantile with the histogram's rank convention. */
static int64_t exact_quantile(const int64_t *sorted, size_t n, double q) {
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static void test_hist_empty_and_small(void **state) {
    (void)state;
    rs_hist_t *h = malloc(sizeof(*h));
    rs_hist_init(h);
    assert_int_equal(rs_hist_quantile(h, 0.5), 0);
    assert_true(rs_hist_mean(h) == 0.0);
    /* Values below 128 are exact. */
    for (int v = 0; v < 128; v++) rs_hist_record(h, v);
    assert_int_equal(h->total, 128);
    assert_int_equal(rs_hist_quantile(h, 0.0), 0);
    assert_int_equal(rs_hist_quantile(h, 0.5), 63);
    assert_int_equal(rs_hist_quantile(h, 1.0), 127);
    assert_true(rs_hist_mean(h) == 63.5);
    rs_hist_record(h, -5); /* counts as 0 */
    assert_int_equal(h->min, 0);
    assert_int_equal(h->total, 129);
    assert_int_equal(rs_hist_quantile(h, 1.0 / 129), 0);
    assert_int_equal(rs_hist_quantile(h, 2.0 / 129), 0);
    assert_int_equal(rs_hist_quantile(h, 3.0 / 129), 1);
    free(h);
}

static void test_hist_bucket_error(void **state) {
    (void)state;
    /* For one value v, every quantile reports a value in [v, v*1.0079):
     * checks each bucket edge across the whole covered range. */
    rs_hist_t *h = malloc(sizeof(*h));
    rs_rng_t rng;
    rs_rng_seed(&rng, 5);
    for (int i = 0; i < 20000; i++) {
        int shift = (int)rs_rng_below(&rng, 41);
        int64_t v = (int64_t)(rs_rng_u64(&rng) >> (64 - 1 - shift));
        rs_hist_init(h);
        rs_hist_record(h, v);
        rs_hist_record(h, INT64_C(1) << 41); /* keep max away from v */
        int64_t got = rs_hist_quantile(h, 0.5);
        if (got < v || (double)got > (double)v * (1 + 1.0 / 127))
            fail_msg("v=%lld reported %lld", (long long)v, (long long)got);
    }
    /* Beyond the range: clamped, max stays exact. */
    rs_hist_init(h);
    rs_hist_record(h, INT64_MAX);
    assert_true(h->max == INT64_MAX);
    assert_true(rs_hist_quantile(h, 1.0) == INT64_MAX);
    assert_true(rs_hist_quantile(h, 0.5) == INT64_MAX); /* clamped to min */
    free(h);
}

static void test_hist_random_quantiles(void **state) {
    (void)state;
    const size_t n = 200000;
    int64_t *v = malloc(sizeof(*v) * n);
    rs_hist_t *h = malloc(sizeof(*h));
    rs_hist_t *h1 = malloc(sizeof(*h1)), *h2 = malloc(sizeof(*h2));
    rs_hist_init(h);
    rs_hist_init(h1);
    rs_hist_init(h2);
    rs_rng_t rng;
    rs_rng_seed(&rng, 77);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        /* Latency-like: log-normal around 2ms, in microseconds, plus a few
         * tiny and huge values. */
        double x = exp(log(2000.0) + 1.2 * rs_rng_normal(&rng));
        if (i % 1000 == 0) x = (double)rs_rng_below(&rng, 200);
        if (i % 997 == 0) x = 1e9 * rs_rng_uniform(&rng);
        v[i] = (int64_t)x;
        sum += (double)v[i];
        rs_hist_record(h, v[i]);
        rs_hist_record(i % 2 ? h1 : h2, v[i]);
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    static const double qs[] = {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                                0.99, 0.999, 0.9999, 1.0};
    rs_hist_merge(h1, h2);
    for (size_t i = 0; i < RS_ARRAY_LEN(qs); i++) {
        int64_t exact = exact_quantile(v, n, qs[i]);
        int64_t got = rs_hist_quantile(h, qs[i]);
        double rel = fabs((double)(got - exact)) / (double)RS_MAX(exact, 1);
        if (rel >= 0.01)
            fail_msg("q=%g exact=%lld hist=%lld rel=%g", qs[i],
                     (long long)exact, (long long)got, rel);
        assert_true(got >= exact); /* upper edge */
        assert_int_equal(rs_hist_quantile(h1, qs[i]), got);
    }
    assert_int_equal(rs_hist_quantile(h, 0), v[0]);
    assert_int_equal(rs_hist_quantile(h, 1), v[n - 1]);
    assert_true(fabs(rs_hist_mean(h) - sum / (double)n) < 1e-6 * sum / n);
    assert_int_equal(h1->total, n);
    assert_int_equal(h1->min, h->min);
    assert_int_equal(h1->max, h->max);
    assert_memory_equal(h1->counts, h->counts, sizeof(h->counts));
    free(v);
    free(h);
    free(h1);
    free(h2);
}

/* ------------------------------------------------------------ AUC / AP */

static rs_auc_t *auc_of(const double *s, const int *y, size_t n) {
    rs_auc_t *a = malloc(sizeof(*a));
    rs_auc_init(a);
    for (size_t i = 0; i < n; i++) rs_auc_add(a, s[i], y[i]);
    return a;
}

static void test_auc_known_values(void **state) {
    (void)state;
    /* The scikit-learn doc example: AUC 0.75, AP (1 + 2/3) / 2. */
    const double s1[] = {0.1, 0.4, 0.35, 0.8};
    const int y1[] = {0, 0, 1, 1};
    rs_auc_t *a = auc_of(s1, y1, 4);
    assert_double_equal(rs_auc_exact(s1, y1, 4), 0.75, 1e-12);
    assert_double_equal(rs_auc_roc(a), 0.75, 1e-12);
    assert_double_equal(rs_ap_exact(s1, y1, 4), 5.0 / 6.0, 1e-12);
    assert_double_equal(rs_auc_ap(a), 5.0 / 6.0, 1e-12);
    free(a);

    /* Ties: pos 0.8 vs neg 0.8 counts half.  Pairs won: 0.9 beats both
     * negatives (2), 0.8 ties one and beats one (1.5): 3.5 / 4.
     * AP: threshold 0.9 -> P=1 at R=0.5; threshold 0.8 -> P=2/3 at R=1. */
    const double s2[] = {0.9, 0.8, 0.8, 0.3};
    const int y2[] = {1, 1, 0, 0};
    a = auc_of(s2, y2, 4);
    assert_double_equal(rs_auc_exact(s2, y2, 4), 0.875, 1e-12);
    assert_double_equal(rs_auc_roc(a), 0.875, 1e-12);
    assert_double_equal(rs_ap_exact(s2, y2, 4), 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
    assert_double_equal(rs_auc_ap(a), 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
    free(a);

    /* All tied: AUC 0.5, AP = prevalence. */
    const double s3[] = {0.5, 0.5, 0.5, 0.5, 0.5};
    const int y3[] = {1, 0, 0, 1, 0};
    assert_double_equal(rs_auc_exact(s3, y3, 5), 0.5, 1e-12);
    assert_double_equal(rs_ap_exact(s3, y3, 5), 0.4, 1e-12);

    /* Perfect and inverted rankings; labels other than 0/1 are positive. */
    const double s4[] = {0.1, 0.2, 0.7, 0.9};
    const int y4[] = {0, 0, 5, 1};
    const int y5[] = {1, 1, 0, 0};
    assert_double_equal(rs_auc_exact(s4, y4, 4), 1.0, 1e-12);
    assert_double_equal(rs_ap_exact(s4, y4, 4), 1.0, 1e-12);
    assert_double_equal(rs_auc_exact(s4, y5, 4), 0.0, 1e-12);
    /* Inverted AP: positives at ranks 3 and 4 -> (1/3 + 2/4) / 2. */
    assert_double_equal(rs_ap_exact(s4, y5, 4), (1.0 / 3 + 0.5) / 2, 1e-12);
    a = auc_of(s4, y5, 4);
    assert_double_equal(rs_auc_ap(a), (1.0 / 3 + 0.5) / 2, 1e-12);
    free(a);

    /* Clamping: out-of-range scores go to the end bins. */
    const double s6[] = {-3.0, 0.0, 1.0, 7.0};
    const int y6[] = {0, 0, 1, 1};
    a = auc_of(s6, y6, 4);
    assert_double_equal(rs_auc_roc(a), 1.0, 1e-12);
    assert_int_equal(a->neg[0], 2);
    assert_int_equal(a->pos[RS_AUC_BINS - 1], 2);
    free(a);
}

static void test_auc_one_class_is_nan(void **state) {
    (void)state;
    const double s[] = {0.2, 0.6, 0.9};
    const int pos[] = {1, 1, 1}, neg[] = {0, 0, 0};
    assert_true(isnan(rs_auc_exact(s, pos, 3)));
    assert_true(isnan(rs_auc_exact(s, neg, 3)));
    assert_true(isnan(rs_ap_exact(s, pos, 3)));
    assert_true(isnan(rs_ap_exact(s, neg, 3)));
    assert_true(isnan(rs_auc_exact(s, pos, 0)));
    assert_true(isnan(rs_ap_exact(NULL, NULL, 0)));
    rs_auc_t *a = auc_of(s, pos, 3);
    assert_true(isnan(rs_auc_roc(a)));
    assert_true(isnan(rs_auc_ap(a)));
    rs_auc_init(a);
    assert_true(isnan(rs_auc_roc(a)));
    assert_true(isnan(rs_auc_ap(a)));
    free(a);
}

/* O(n^2) references straight from the definitions. */
static double brute_auc(const double *s, const int *y, size_t n) {
    double won = 0, pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (y[i] && !y[j]) {
                pairs++;
                won += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            }
    return won / pairs;
}

static double brute_ap(const double *s, const int *y, size_t n) {
    double sum = 0;
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!y[i]) continue;
        npos++;
        size_t tp = 0, all = 0; /* at threshold s[i], ties included */
        for (size_t j = 0; j < n; j++)
            if (s[j] >= s[i]) {
                all++;
                tp += y[j] != 0;
            }
        sum += (double)tp / (double)all;
    }
    return sum / (double)npos;
}

static void test_exact_vs_brute_force(void **state) {
    (void)state;
    rs_rng_t rng;
    rs_rng_seed(&rng, 31);
    double s[300];
    int y[300];
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 2 + rs_rng_below(&rng, 299);
        int levels = 1 + (int)rs_rng_below(&rng, 20); /* many ties */
        for (size_t i = 0; i < n; i++) {
            y[i] = rs_rng_uniform(&rng) < 0.3;
            s[i] = (double)rs_rng_below(&rng, (uint64_t)levels) / levels;
        }
        y[0] = 1;
        y[1] = 0;
        assert_double_equal(rs_auc_exact(s, y, n), brute_auc(s, y, n), 1e-12);
        assert_double_equal(rs_ap_exact(s, y, n), brute_ap(s, y, n), 1e-12);
        /* Scores on distinct bins: binned equals exact. */
        rs_auc_t *a = auc_of(s, y, n);
        assert_double_equal(rs_auc_roc(a), brute_auc(s, y, n), 1e-12);
        assert_double_equal(rs_auc_ap(a), brute_ap(s, y, n), 1e-12);
        free(a);
    }
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void test_auc_binned_vs_exact_random(void **state) {
    (void)state;
    const size_t n = 100000;
    double *s = malloc(sizeof(*s) * n);
    int *y = malloc(sizeof(*y) * n);
    rs_rng_t rng;
    rs_rng_seed(&rng, 2718);
    static const double seps[] = {0.0, 0.5, 1.5, 3.0};
    static const double prevs[] = {0.5, 0.1, 0.01};
    for (size_t k = 0; k < RS_ARRAY_LEN(seps); k++)
        for (size_t p = 0; p < RS_ARRAY_LEN(prevs); p++) {
            rs_auc_t *a = malloc(sizeof(*a)), *a1 = malloc(sizeof(*a1));
            rs_auc_init(a);
            rs_auc_init(a1);
            for (size_t i = 0; i < n; i++) {
                y[i] = rs_rng_uniform(&rng) < prevs[p];
                /* Fraud-model-like scores: skewed toward 0. */
                s[i] = sigmoid(-3.0 + (y[i] ? seps[k] : 0.0) +
                               rs_rng_normal(&rng));
                rs_auc_add(a, s[i], y[i]);
                if (i < n / 3) rs_auc_add(a1, s[i], y[i]);
            }
            double exact = rs_auc_exact(s, y, n);
            double binned = rs_auc_roc(a);
            if (fabs(exact - binned) >= 1e-3)
                fail_msg("sep=%g prev=%g: exact %.6f binned %.6f", seps[k],
                         prevs[p], exact, binned);
            double ap_exact = rs_ap_exact(s, y, n), ap = rs_auc_ap(a);
            if (fabs(ap_exact - ap) >= 5e-3)
                fail_msg("sep=%g prev=%g: AP exact %.6f binned %.6f",
                         seps[k], prevs[p], ap_exact, ap);
            /* Separation shows up in the expected direction. */
            if (seps[k] == 0.0) assert_true(fabs(exact - 0.5) < 0.03);
            if (seps[k] == 3.0) assert_true(exact > 0.95);

            /* merge(first third, rest) == all */
            rs_auc_t *a2 = malloc(sizeof(*a2));
            rs_auc_init(a2);
            for (size_t i = n / 3; i < n; i++) rs_auc_add(a2, s[i], y[i]);
            rs_auc_merge(a1, a2);
            assert_int_equal(a1->npos, a->npos);
            assert_int_equal(a1->nneg, a->nneg);
            assert_true(rs_auc_roc(a1) == binned);
            assert_true(rs_auc_ap(a1) == ap);
            free(a);
            free(a1);
            free(a2);
        }
    free(s);
    free(y);
}

static void test_auc_nan_scores(void **state) {
    (void)state;
    /* NaN is the lowest score in both versions, and never crashes qsort. */
    const double s[] = {NAN, 0.2, NAN, 0.9, 0.5};
    const int y[] = {0, 0, 1, 1, 0};
    /* pos NaN: ties neg NaN (0.5), loses to 0.2 and 0.5 -> 0.5
     * pos 0.9: beats all 3 -> 3.  (3.5) / 6 */
    assert_double_equal(rs_auc_exact(s, y, 5), 3.5 / 6, 1e-12);
    rs_auc_t *a = auc_of(s, y, 5);
    assert_double_equal(rs_auc_roc(a), 3.5 / 6, 1e-12);
    free(a);
}

/* ----------------------------------------------------------- rate meter */

static void test_rate(void **state) {
    (void)state;
    rs_rate_t r;
    rs_rate_init(&r);
    int64_t t0 = 1700000000000LL;
    assert_true(rs_rate_per_sec(&r, t0, 10) == 0.0);
    /* 100 events/s for 20 s, spread over each second. */
    for (int ms = 0; ms < 20000; ms += 10) rs_rate_add(&r, t0 + ms, 1);
    assert_int_equal(r.total, 2000);
    assert_double_equal(rs_rate_per_sec(&r, t0 + 20000, 10), 100.0, 1e-9);
    assert_double_equal(rs_rate_per_sec(&r, t0 + 20500, 1), 100.0, 1e-9);
    /* Half the window idle. */
    assert_double_equal(rs_rate_per_sec(&r, t0 + 25000, 10), 50.0, 1e-9);
    /* Long idle: old slots do not come back around the ring. */
    assert_true(rs_rate_per_sec(&r, t0 + 20000 + RS_RATE_SLOTS * 1000, 10) ==
                0.0);
    rs_rate_add(&r, t0 + 200000, 7);
    assert_double_equal(rs_rate_per_sec(&r, t0 + 201000, 1), 7.0, 1e-9);
    assert_double_equal(rs_rate_per_sec(&r, t0 + 201000, 0), 7.0, 1e-9);
    assert_double_equal(rs_rate_per_sec(&r, t0 + 201000, 1000),
                        7.0 / (RS_RATE_SLOTS - 1), 1e-9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_empty_and_small),
        cmocka_unit_test(test_hist_bucket_error),
        cmocka_unit_test(test_hist_random_quantiles),
        cmocka_unit_test(test_auc_known_values),
        cmocka_unit_test(test_auc_one_class_is_nan),
        cmocka_unit_test(test_exact_vs_brute_force),
        cmocka_unit_test(test_auc_binned_vs_exact_random),
        cmocka_unit_test(test_auc_nan_scores),
        cmocka_unit_test(test_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
