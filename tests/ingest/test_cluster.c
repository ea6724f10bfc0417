/* test_cluster.c -- the embedded broker's retention watch: the mock keeps
 * ~5 MB per partition and silently drops older message sets; the watch
 * must see it.  One partition, 12 MB produced to one topic: its dropped
 * count becomes > 0 and stays below what was produced, the other topics
 * stay at 0, an unknown topic is -1, and the count agrees with the first
 * offset a fresh consumer can still read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"

static void test_retention_watch(void **state) {
    (void)state;
    char errstr[512];
    const char *topics[] = {"events", "scores"};
    rs_cluster_t *c = rs_cluster_new(1, topics, 2, 1, errstr, sizeof(errstr));
    assert_non_null(c);
    assert_int_equal(rs_cluster_watch(c, 100, errstr, sizeof(errstr)), RS_OK);
    assert_int_equal(rs_cluster_watch(c, 100, errstr, sizeof(errstr)), RS_OK);
    rs_kv_t props;
    rs_kv_init(&props);
    rd_kafka_t *p = rs_kafka_producer_new(&props, rs_cluster_bootstraps(c),
                                          errstr, sizeof(errstr));
    assert_non_null(p);
    static char val[300];
    memset(val, 'x', sizeof(val));
    const int n = 40000; /* 12 MB */
    for (int i = 0; i < n; i++) {
        while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC("scores"),
                                 RD_KAFKA_V_VALUE(val, sizeof(val)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        rd_kafka_poll(p, 0);
    }
    assert_int_equal(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t d = 0;
    for (int i = 0; i < 100 && d <= 0; i++) {
        usleep(100000);
        d = rs_cluster_dropped(c, "scores", 0); /* the watcher's reading */
    }
    fprintf(stderr, "dropped %lld of %d\n", (long long)d, n);
    assert_true(d > 0 && d < n);
    assert_true(rs_cluster_dropped(c, "scores", 1) >= d);
    assert_int_equal(rs_cluster_dropped(c, "events", 1), 0);
    assert_int_equal(rs_cluster_dropped(c, "nope", 1), -1);
    /* The count is the first offset still readable. */
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(p, "scores", 0, &lo, &hi,
                                                      5000), 0);
    assert_int_equal(lo, rs_cluster_dropped(c, "scores", 1));
    assert_int_equal(hi, n);
    rd_kafka_destroy(p);
    rs_kv_free(&props);
    rs_cluster_destroy(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
