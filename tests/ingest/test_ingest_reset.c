/* test_ingest_reset.c -- rs_ingest_apply_resets (ingest/ingest_consumer.c)
 * against the embedded (librdkafka mock) cluster, deterministically: the
 * consumer errors are handed to the consumer's own error path
 * (rs_ingest_consumer_error, on the owner thread, as rs_ingest_poll does)
 * instead of waiting for librdkafka to raise them under load.
 *
 * - A repeated "no committed offset" error (offset < 0) of a partition
 *   this assignment already re-assigned at the reset target is stale (an
 *   eager re-assign for another partition's reset re-raised it): it is
 *   ignored, nothing is read twice (main ad84143; before, the partition
 *   was read again from the target: 7 duplicate events in test_ingest
 *   test_protobuf under CI load).
 * - An out-of-range error (offset >= 0) of the same partition is still
 *   applied: the partition is read again from the target (policy
 *   earliest), counted in offset_resets.
 *
 * Uses the consumer's private struct (ingest/ingest_int.h) for the topic
 * handle and the re-assign offsets; no test hook in ingest/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "ingest/ingest_int.h"
#include "tests/support/rs_test_kafka.h"

#define NPART 50 /* events per partition */

static const char *const topics[] = {"events", "labels", "scores", "alerts",
                                     "events.dlq"};

/* Copies of each event id ev-<i> read so far. */
typedef struct seen_s {
    int n, dup;
    unsigned char cnt[2 * NPART];
} seen_t;

static void produce_part(rd_kafka_t *rk, int32_t part, int from, int to) {
    static char buf[RS_ENCODE_MAX];
    for (int i = from; i < to; i++) {
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.id, sizeof(ev.id), "ev-%d", i);
        snprintf(ev.type, sizeof(ev.type), "card");
        snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%d", i % 5);
        ev.event_time_ms = 1700000000000LL + (int64_t)i * 1000;
        ev.amount = 1 + i;
        int len = rs_event_encode(RS_FORMAT_JSON, &ev, buf, sizeof(buf));
        assert_true(len > 0);
        rd_kafka_resp_err_t kerr;
        while ((kerr = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC("events"), RD_KAFKA_V_PARTITION(part),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_VALUE(buf, (size_t)len), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        assert_int_equal(kerr, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
}

/* Poll (storing offsets) until s->n reaches `until` or timeout_ms passed. */
static void read_until(rs_ingest_t *ing, seen_t *s, int until,
                       int timeout_ms) {
    static rs_msg_t msgs[64];
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    while (s->n < until && rs_clock_mono_us() < deadline) {
        int n = rs_ingest_poll(ing, msgs, 64, 100);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            int k;
            assert_int_equal(msgs[i].kind, RS_MSG_EVENT);
            assert_int_equal(sscanf(msgs[i].ev.id, "ev-%d", &k), 1);
            assert_true(k >= 0 && k < 2 * NPART);
            if (s->cnt[k]++) s->dup++;
            s->n++;
        }
        if (n > 0) assert_int_equal(rs_ingest_store(ing, msgs, n), RS_OK);
    }
}

/* The re-assign offset this assignment remembers for events [p]. */
static int64_t asg_offset(rs_ingest_t *ing, int32_t p) {
    const rd_kafka_topic_partition_t *a =
        ing->asg ? rd_kafka_topic_partition_list_find(ing->asg, "events", p)
                 : NULL;
    return a ? a->offset : RD_KAFKA_OFFSET_INVALID - 1;
}

/* Hand the consumer an offset-reset error of events [p] at `offset` (< 0:
 * no committed offset; >= 0: that offset was out of range), as librdkafka
 * delivers it (auto.offset.reset=error). */
static void reset_error(rs_ingest_t *ing, int32_t p, int64_t offset) {
    static char why[] = "injected by test_ingest_reset";
    rd_kafka_message_t rkm;
    memset(&rkm, 0, sizeof(rkm));
    rkm.err = RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET;
    rkm.rkt = ing->rkt[RS_MSG_TOPIC_EVENTS];
    rkm.partition = p;
    rkm.offset = offset;
    rkm.payload = why;
    rkm.len = sizeof(why) - 1;
    rs_ingest_consumer_error(ing, &rkm);
}

static void test_reset_repeated_and_out_of_range(void **state) {
    (void)state;
    char errstr[512];
    rd_kafka_t *prod;
    rs_cluster_t *cl = rs_test_kafka_cluster(1, topics, 5, 2, &prod);
    const char *boot = rs_cluster_bootstraps(cl);
    produce_part(prod, 0, 0, NPART);         /* p0: ev-0..49   */
    produce_part(prod, 1, NPART, 2 * NPART); /* p1: ev-50..99  */
    assert_int_equal(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    rs_ingest_conf_t conf;
    rs_ingest_conf_init(&conf);
    snprintf(conf.group_id, sizeof(conf.group_id), "g-reset");
    conf.offset_reset = RS_OFFSET_EARLIEST;
    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_ingest_t *ing = rs_ingest_new(&conf, &kv, boot, errstr, sizeof(errstr));
    rs_kv_free(&kv);
    if (!ing) fail_msg("rs_ingest_new: %s", errstr);
    seen_t *s = calloc(1, sizeof(*s));

    /* No committed offsets: both partitions start at the beginning
     * through the reset path; everything once. */
    read_until(ing, s, 2 * NPART, 60000);
    assert_int_equal(s->n, 2 * NPART);
    assert_int_equal(s->dup, 0);
    assert_int_equal(asg_offset(ing, 1), RD_KAFKA_OFFSET_BEGINNING);
    rs_ingest_stats_t st0, st;
    rs_ingest_stats(ing, &st0);

    /* The stale repeat of p1's "no committed offset" error: ignored.
     * (Applied, the re-assign at BEGINNING reads p1's 50 events again.) */
    reset_error(ing, 1, RD_KAFKA_OFFSET_INVALID);
    read_until(ing, s, 2 * NPART + 1, 5000);
    assert_int_equal(s->dup, 0);
    assert_int_equal(s->n, 2 * NPART);
    rs_ingest_stats(ing, &st);
    assert_int_equal(st.offset_resets, st0.offset_resets);

    /* An out-of-range offset of the same partition: applied (policy
     * earliest: p1 read again from its beginning, p0 untouched). */
    reset_error(ing, 1, 10);
    read_until(ing, s, 3 * NPART, 60000);
    read_until(ing, s, 3 * NPART + 1, 2000); /* nothing more */
    assert_int_equal(s->n, 3 * NPART);
    for (int i = 0; i < 2 * NPART; i++)
        assert_int_equal(s->cnt[i], i < NPART ? 1 : 2);
    rs_ingest_stats(ing, &st);
    assert_int_equal(st.offset_resets, st0.offset_resets + 1);

    rs_ingest_destroy(ing);
    free(s);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_repeated_and_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
