/* test_cpstage_kafka.c -- the counterparty stage with its consumer
 * (scoring/cpstage.h) against an in-process librdkafka mock cluster.
 *
 *  - test_fill_equals_core: 900 events over 4 partitions (keyed by entity,
 *    librdkafka's partitioner) and fraud labels over 4 more are produced;
 *    the stage reads them all and every event's shared features, taken
 *    with rs_cpstage_fill by (partition, offset, id), equal bit for bit
 *    those of the merge core fed the same partitions directly; /readyz is
 *    ready once the store read every partition.
 *  - then a lookup of an offset that never comes times out after
 *    cpstage.wait (counted), a lookup with another event's id is "gone",
 *    and once the group commits offset 50 of partition 0 the results below
 *    it are dropped (the stage reads the committed offsets every second):
 *    gone below, still there above.
 *  - test_quiet_busy_watermark: a busy partition (300 events) and a quiet
 *    one (one newer event), the stage's consumer without PARTITION_EOF
 *    and fetching in small pieces, so only its cached high watermarks say
 *    a partition is at its end: the store gets ready, every fill (the
 *    quiet event's first) equals the core's canonical order -- the busy
 *    partition was not passed while it had messages below its watermark
 *    to fetch -- and so do two live events, one per partition, each
 *    merged without a PARTITION_EOF (the second produced once the first
 *    was merged: see live_pair); nothing out of order.
 *  - test_fetch_wait: the stage's consumer gets cpstage.fetch_wait: auto
 *    is 1 ms on librdkafka's mock (on_mock, what the service finds from the
 *    cluster id), else the consumer's own setting (5 ms, the embedded
 *    default; a kafka.fetch.wait.max.ms given is kept); a set value wins
 *    over kafka.fetch.wait.max.ms.
 *  - test_waiter_merges: the stage's thread reads but never merges (test
 *    hook), without PARTITION_EOF: the scoring thread's lookups merge
 *    (and check the watermarks) themselves; every fill equals the core,
 *    two live events too (live_pair).
 *  - test_feed: a scoring consumer's read-ahead feeds the stage
 *    (cpstage.feed); with the stage's own consumer stopped (test hook),
 *    new events reach the store through the feed alone, its read of the
 *    backlog is dropped as duplicates; every fill equals the core.
 *  - test_feed_starved, test_feed_late: the stage's consumer pauses the
 *    partitions the feed supplies (it reads none of their new events) and
 *    fetches them again when a lookup waits with the read-ahead full, or
 *    when the feed has not moved on one for 1 s with data to read (see
 *    each test).
 *  - test_feed_trim_owned: the group commits past events the scoring
 *    consumer read but has not looked up (an instance whose session was
 *    lost, another member committing): the stage keeps their results
 *    while the partition is assigned to it; every fill equals the core.
 *  - test_feed_rebalance_parked: a rebalance parks the read-ahead until
 *    the owner serves it; the feed hears of it first, so the stage's
 *    consumer fetches again and the owner's lookup meanwhile is served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "scoring/cpstage.h"
#include "ingest/ingest_int.h"
#include "scoring/cpstage_int.h"
#include "tests/support/rs_test_kafka.h"

#define NEV 900
#define NPART 4
#define BASE_MS 1767225600000LL

static const char *const topics[] = {"events", "labels"};

typedef struct got_s {
    int n;
    int32_t part[NEV + 64];
    int64_t off[NEV + 64];
    char *payload[NEV + 64];
    size_t len[NEV + 64];
} got_t;

static void collect(void *opaque, const rd_kafka_message_t *rkm) {
    got_t *g = opaque;
    if (g->n >= NEV + 64) return;
    g->part[g->n] = rkm->partition;
    g->off[g->n] = rkm->offset;
    g->payload[g->n] = malloc(rkm->len);
    memcpy(g->payload[g->n], rkm->payload, rkm->len);
    g->len[g->n] = rkm->len;
    g->n++;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_fill_equals_core(void **state) {
    (void)state;
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(1, topics, 2, NPART, errstr, sizeof(errstr));
    if (!cl) fail_msg("cluster: %s", errstr);
    const char *boot = rs_cluster_bootstraps(cl);
    rd_kafka_t *prod = rs_kafka_producer_new(NULL, boot, errstr, sizeof(errstr));
    assert_non_null(prod);
    char buf[512], key[32];
    int nlab = 0;
    for (int i = 0; i < NEV; i++) {
        snprintf(key, sizeof(key), "card-%d", i % 37);
        int len = snprintf(buf, sizeof(buf),
                           "{\"id\":\"k-%d\",\"type\":\"card_tx\",\"entity_id\":"
                           "\"%s\",\"counterparty_id\":\"m-%d\",\"event_time_ms\":"
                           "%lld,\"amount\":%d.5}", i, key, i % 11,
                           (long long)(BASE_MS + (int64_t)i * 240000), 1 + i % 97);
        assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("events"),
                                           RD_KAFKA_V_KEY(key, strlen(key)),
                                           RD_KAFKA_V_VALUE(buf, (size_t)len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
        if (i % 9 == 0 && i % 11 < 3) { /* merchants 0-2 see fraud */
            len = snprintf(buf, sizeof(buf),
                           "{\"event_id\":\"k-%d\",\"entity_id\":\"%s\",\"value\":1,"
                           "\"label_time_ms\":%lld}", i, key,
                           (long long)(BASE_MS + (int64_t)i * 240000 + 3600000));
            assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("labels"),
                                               RD_KAFKA_V_KEY(key, strlen(key)),
                                               RD_KAFKA_V_VALUE(buf, (size_t)len),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             0);
            nlab++;
        }
    }
    assert_int_equal(rd_kafka_flush(prod, 30000), 0);

    /* what the partitions hold, read back */
    got_t *ge = calloc(1, sizeof(*ge)), *gl = calloc(1, sizeof(*gl));
    assert_int_equal(rs_test_kafka_read(boot, "events", NEV, 200, 30000, collect, ge), NEV);
    /* every label: the reference must hold what the stage will read (with
     * "at least one" and a settle time, a loaded machine read a part of
     * them and the stage's fraud counts came out higher than the core's) */
    assert_int_equal(rs_test_kafka_read(boot, "labels", nlab, 200, 30000, collect, gl),
                     nlab);
    assert_true(gl->n > 10);

    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    fc.max_keys = fc.max_counterparties = 1024;
    fc.label_index = 4096;
    fc.label_maturity = 86400000LL;
    rs_ingest_conf_t icon;
    rs_ingest_conf_init(&icon);
    rs_strlcpy(icon.group_id, "g-cp", sizeof(icon.group_id));
    rs_cpstage_conf_t cc;
    rs_cpstage_conf_init(&cc);
    assert_int_equal(cc.enabled, 1);
    assert_true(rs_cpstage_wanted(&cc, &fc));
    cc.wait_ms = 300;
    cc.idle_wait_ms = 0;
    rs_cpstage_opts_t o = {&cc, &fc, &icon, NULL, boot, 86400000LL, 65536, 0};
    rs_err_t err;
    rs_cpstage_t *cs = rs_cpstage_new(&o, &err, errstr, sizeof(errstr));
    if (!cs) fail_msg("rs_cpstage_new: %s", errstr);

    /* the reference: the core fed the same partitions directly */
    rs_cpm_conf_t mc = {.features = &fc, .nparts = {NPART, NPART},
                        .dedup_window_ms = 86400000LL, .dedup_max = 65536};
    rs_cpm_t *m = rs_cpm_new(&mc, errstr, sizeof(errstr));
    assert_non_null(m);
    for (int i = 0; i < ge->n; i++)
        rs_cpm_push(m, 0, ge->part[i], ge->off[i], ge->payload[i], ge->len[i], NULL);
    for (int i = 0; i < gl->n; i++)
        rs_cpm_push(m, 1, gl->part[i], gl->off[i], gl->payload[i], gl->len[i], NULL);
    for (int p = 0; p < NPART; p++) {
        rs_cpm_eof(m, 0, p, 0);
        rs_cpm_eof(m, 1, p, 0);
    }
    while (rs_cpm_step(m, 0, 1000) > 0) {}

    rs_features_t *probe = rs_features_new(&fc, errstr, sizeof(errstr));
    int dim = rs_features_dim(probe);
    float *x = calloc((size_t)dim, 4), *y = calloc((size_t)dim, 4);
    rs_event_t *ev = calloc(1, sizeof(*ev));
    int nonzero = 0;
    for (int i = 0; i < ge->n; i++) {
        assert_int_equal(rs_event_decode(RS_FORMAT_JSON, ge->payload[i], ge->len[i],
                                         ev, errstr, sizeof(errstr)),
                         RS_OK);
        memset(x, 0xff, (size_t)dim * 4);
        memset(y, 0xff, (size_t)dim * 4);
        assert_int_equal(rs_cpstage_fill(cs, ge->part[i], ge->off[i], ev, x, NULL),
                         RS_OK);
        assert_int_equal(rs_cpm_find(m, ge->part[i], ge->off[i],
                                     rs_hash_str(ev->id), y), RS_OK);
        assert_memory_equal(x, y, (size_t)dim * 4);
        for (int k = 0; k < dim; k++)
            if (rs_features_is_shared(probe, k) && x[k] != 0) nonzero++;
    }
    assert_true(nonzero > NEV);
    const char *why = NULL;
    for (int k = 0; k < 100 && !rs_cpstage_ready(cs, &why); k++) sleep_ms(50);
    assert_true(rs_cpstage_ready(cs, &why));

    /* never comes: a timeout after cpstage.wait, shared features 0 */
    rs_strlcpy(ev->id, "nope", sizeof(ev->id));
    x[0] = 7;
    assert_int_equal(rs_cpstage_fill(cs, 0, 100000, ev, x, NULL), RS_ERR_TIMEOUT);
    /* another event at that offset: gone */
    assert_int_equal(rs_cpstage_fill(cs, ge->part[0], ge->off[0], ev, x, NULL),
                     RS_ERR_NOTFOUND);

    /* the group commits partition 0 at 50: below it is dropped */
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set(kc, "bootstrap.servers", boot, errstr, sizeof(errstr));
    rd_kafka_conf_set(kc, "group.id", "g-cp", errstr, sizeof(errstr));
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    assert_non_null(cons);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "events", 0)->offset = 50;
    assert_int_equal(rd_kafka_commit(cons, l, 0), 0);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    int idx10 = -1, idx60 = -1;
    for (int i = 0; i < ge->n; i++) {
        if (ge->part[i] == 0 && ge->off[i] == 10) idx10 = i;
        if (ge->part[i] == 0 && ge->off[i] == 60) idx60 = i;
    }
    assert_true(idx10 >= 0 && idx60 >= 0);
    rs_err_t e10 = RS_OK;
    for (int k = 0; k < 60 && e10 == RS_OK; k++) {
        sleep_ms(100);
        rs_event_decode(RS_FORMAT_JSON, ge->payload[idx10], ge->len[idx10], ev,
                        errstr, sizeof(errstr));
        e10 = rs_cpstage_fill(cs, 0, 10, ev, x, NULL);
    }
    assert_int_equal(e10, RS_ERR_NOTFOUND);
    rs_event_decode(RS_FORMAT_JSON, ge->payload[idx60], ge->len[idx60], ev,
                    errstr, sizeof(errstr));
    assert_int_equal(rs_cpstage_fill(cs, 0, 60, ev, x, NULL), RS_OK);

    rs_cpstage_stats_t *st = calloc(1, sizeof(*st));
    rs_cpstage_stats(cs, st);
    assert_int_equal(st->events, NEV);
    assert_int_equal(st->labels, (uint64_t)gl->n);
    assert_int_equal(st->reordered, 0);
    assert_int_equal(st->miss_timeout, 1);
    assert_true(st->miss_gone >= 2);
    assert_int_equal(st->nparts[0], NPART);
    assert_true(st->held < NEV);
    printf("test_cpstage_kafka: %d events and %d labels, every fill equal to "
           "the core; wait p50 %lld us p99 %lld us\n", ge->n, gl->n,
           (long long)rs_hist_quantile(&st->wait_us, 0.5),
           (long long)rs_hist_quantile(&st->wait_us, 0.99));
    free(st);
    rs_cpstage_destroy(cs);
    rs_cpm_destroy(m);
    rs_features_destroy(probe);
    for (int i = 0; i < ge->n; i++) free(ge->payload[i]);
    for (int i = 0; i < gl->n; i++) free(gl->payload[i]);
    free(ge);
    free(gl);
    free(x);
    free(y);
    free(ev);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

/* Event i on (partition part) of the events topic: counterparty m-1. */
static void produce_on(rd_kafka_t *prod, int32_t part, int i, int64_t t) {
    char buf[512], key[32];
    snprintf(key, sizeof(key), "card-%d", i);
    int len = snprintf(buf, sizeof(buf),
                       "{\"id\":\"q-%d\",\"type\":\"card_tx\",\"entity_id\":"
                       "\"%s\",\"counterparty_id\":\"m-1\",\"event_time_ms\":"
                       "%lld,\"amount\":%d.5}", i, key, (long long)t, 1 + i % 97);
    assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("events"),
                                       RD_KAFKA_V_PARTITION(part),
                                       RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE(buf, (size_t)len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(prod, 30000), 0); /* one batch each */
}

/* The stage's fill of every event read back equals the core fed the same
 * partitions with PARTITION_EOF everywhere (the canonical order); the
 * newest first, or (ascending) each partition in offset order, as the
 * scoring thread looks them up. */
static void fills_equal_core_dir(rs_cpstage_t *cs, const char *boot, int nev,
                                 const rs_features_conf_t *fc, int ascending) {
    char errstr[512];
    got_t *ge = calloc(1, sizeof(*ge));
    assert_int_equal(rs_test_kafka_read(boot, "events", nev, 200, 30000,
                                        collect, ge), nev);
    rs_cpm_conf_t mc = {.features = fc, .nparts = {NPART, NPART},
                        .dedup_window_ms = 86400000LL, .dedup_max = 65536};
    rs_cpm_t *m = rs_cpm_new(&mc, errstr, sizeof(errstr));
    assert_non_null(m);
    for (int i = 0; i < ge->n; i++)
        rs_cpm_push(m, 0, ge->part[i], ge->off[i], ge->payload[i], ge->len[i],
                    NULL);
    for (int p = 0; p < NPART; p++) {
        rs_cpm_eof(m, 0, p, 0);
        rs_cpm_eof(m, 1, p, 0);
    }
    while (rs_cpm_step(m, 0, 1000) > 0) {}
    float *x = calloc(512, 4), *y = calloc(512, 4);
    rs_event_t *ev = calloc(1, sizeof(*ev));
    for (int k = 0; k < ge->n; k++) { /* the quiet, newest one first */
        int i = ascending ? k : ge->n - 1 - k;
        assert_int_equal(rs_event_decode(RS_FORMAT_JSON, ge->payload[i],
                                         ge->len[i], ev, errstr,
                                         sizeof(errstr)), RS_OK);
        memset(x, 0xff, 512 * 4);
        memset(y, 0xff, 512 * 4);
        assert_int_equal(rs_cpstage_fill(cs, ge->part[i], ge->off[i], ev, x,
                                         NULL), RS_OK);
        assert_int_equal(rs_cpm_find(m, ge->part[i], ge->off[i],
                                     rs_hash_str(ev->id), y), RS_OK);
        assert_memory_equal(x, y, 512 * 4);
    }
    for (int i = 0; i < ge->n; i++) free(ge->payload[i]);
    free(ge);
    free(x);
    free(y);
    free(ev);
    rs_cpm_destroy(m);
}

static void fills_equal_core(rs_cpstage_t *cs, const char *boot, int nev,
                             const rs_features_conf_t *fc) {
    fills_equal_core_dir(cs, boot, nev, fc, 0);
}

/* The set-up of the watermark tests: a busy partition (300 events on 0)
 * and a quiet one (1 newer event on 1); the stage's consumer without
 * PARTITION_EOF, fetching one message at a time.  `o` points into the
 * fixture: it must not move while the stage lives. */
typedef struct wm_fix_s {
    rs_cluster_t *cl;
    const char *boot;
    rd_kafka_t *prod;
    rs_features_conf_t fc;
    rs_ingest_conf_t icon;
    rs_cpstage_conf_t cc;
    rs_kv_t kv;
    rs_cpstage_opts_t o;
} wm_fix_t;

static void wm_fix_init(wm_fix_t *f, const char *group) {
    char errstr[512];
    f->cl = rs_cluster_new(1, topics, 2, NPART, errstr, sizeof(errstr));
    if (!f->cl) fail_msg("cluster: %s", errstr);
    f->boot = rs_cluster_bootstraps(f->cl);
    f->prod = rs_kafka_producer_new(NULL, f->boot, errstr, sizeof(errstr));
    assert_non_null(f->prod);
    for (int i = 0; i < 300; i++) produce_on(f->prod, 0, i, BASE_MS + i * 1000LL);
    produce_on(f->prod, 1, 1000, BASE_MS + 500000);

    rs_features_conf_init(&f->fc);
    f->fc.max_keys = f->fc.max_counterparties = 1024;
    f->fc.label_index = 4096;
    rs_ingest_conf_init(&f->icon);
    rs_strlcpy(f->icon.group_id, group, sizeof(f->icon.group_id));
    rs_cpstage_conf_init(&f->cc);
    f->cc.idle_wait_ms = 0;
    f->cc.buffer = 64;
    rs_kv_init(&f->kv);
    rs_kv_set(&f->kv, "enable.partition.eof", "false");
    rs_kv_set(&f->kv, "max.partition.fetch.bytes", "512");
    f->o = (rs_cpstage_opts_t){&f->cc, &f->fc, &f->icon, &f->kv, f->boot,
                               86400000LL, 65536, 0, 1};
}

static void wm_fix_fini(wm_fix_t *f) {
    rs_kv_free(&f->kv);
    rd_kafka_destroy(f->prod);
    rs_cluster_destroy(f->cl);
}

/* Two live events after the 301 of the watermark tests' set-up: one on the
 * busy partition 0 (time +600 s), then one on the quiet partition 1 (+700
 * s), each followed by every fill against the core.  The second is
 * produced only once the first is merged (its fill returned): two
 * partitions' messages produced back to back may reach the stage in either
 * order -- librdkafka hands a fetch response out partition by partition,
 * in the order of its request, which it rotates, and the stage may take
 * the newer one before the older is queued, the older partition's cached
 * watermark not moved yet -- and with idle_wait 0 the merge then takes the
 * newer one first and counts the older as reordered: the documented
 * contract (cpstage.h "Not exact, and counted"; test_cpstage's
 * test_two_partitions_one_fetch has that interleaving with explicit
 * clocks).  Produced together, these two were merged out of order in
 * about 1 run in 100 on a loaded machine (0.25 % of pairs). */
static void live_pair(rs_cpstage_t *cs, wm_fix_t *f) {
    produce_on(f->prod, 0, 2000, BASE_MS + 600000);
    fills_equal_core(cs, f->boot, 302, &f->fc);
    produce_on(f->prod, 1, 2001, BASE_MS + 700000);
    fills_equal_core(cs, f->boot, 303, &f->fc);
}

/* A busy partition and a quiet one, the stage's consumer without
 * PARTITION_EOF (enable.partition.eof=false) and fetching in small pieces
 * (max.partition.fetch.bytes 512, one message per batch): only the cached
 * high watermarks can tell the stage a partition is at its end.
 *  - the store becomes ready (every partition, empty ones too, at its
 *    watermark), and the quiet partition's event, newer than all 300 of
 *    the busy partition, has the features of the canonical order: the
 *    stage did not pass the busy partition while it had messages below
 *    its watermark still to fetch;
 *  - live: an event on the busy partition, then (once it is merged) one
 *    on the quiet one, each merged as soon as the stage read it (no
 *    PARTITION_EOF comes: the quiet one once the busy partition is at its
 *    end by its watermark), with the canonical features again; nothing
 *    merged out of order. */
static void test_quiet_busy_watermark(void **state) {
    (void)state;
    char errstr[512];
    wm_fix_t f;
    wm_fix_init(&f, "g-qb");
    rs_err_t err;
    rs_cpstage_t *cs = rs_cpstage_new(&f.o, &err, errstr, sizeof(errstr));
    if (!cs) fail_msg("rs_cpstage_new: %s", errstr);
    const char *why = NULL;
    for (int k = 0; k < 600 && !rs_cpstage_ready(cs, &why); k++) sleep_ms(50);
    if (!rs_cpstage_ready(cs, &why))
        fail_msg("not ready after 30 s without PARTITION_EOF: %s", why);
    fills_equal_core(cs, f.boot, 301, &f.fc);
    live_pair(cs, &f);

    rs_cpstage_stats_t *st = calloc(1, sizeof(*st));
    rs_cpstage_stats(cs, st);
    printf("test_quiet_busy_watermark: %llu events merged, partitions at "
           "their end %llu times by the watermark, %llu by PARTITION_EOF\n",
           (unsigned long long)st->events, (unsigned long long)st->ends_hwm,
           (unsigned long long)st->ends_eof);
    assert_int_equal(st->events, 303);
    assert_int_equal(st->reordered, 0);
    assert_int_equal(st->miss_timeout + st->miss_gone, 0);
    assert_int_equal(st->ends_eof, 0);
    assert_true(st->ends_hwm >= 2 * NPART);
    free(st);
    rs_cpstage_destroy(cs);
    wm_fix_fini(&f);
}

/* The waiting lookup merges (rs_cs_step_waiting): the stage's own thread
 * reads and pushes but never merges (the test hook), its consumer has no
 * PARTITION_EOF and fetches one message at a time, so the lookups alone
 * run the merge and find the partitions at their end by the cached
 * watermarks.
 *  - nothing is merged before the first lookup (the hook holds);
 *  - every fill (the quiet, newest event first) equals the core's
 *    canonical order, and so do two live events (live_pair); every
 *    message was merged by a waiting lookup; nothing out of order, no
 *    miss.
 * Without the lookup's merge the first fill waits for ever (no bound
 * before the store has read the topics once): the test times out. */
static void test_waiter_merges(void **state) {
    (void)state;
    char errstr[512];
    wm_fix_t f;
    wm_fix_init(&f, "g-wm");
    atomic_store(&rs_cpstage_test_nomerge, 1);
    rs_err_t err;
    rs_cpstage_t *cs = rs_cpstage_new(&f.o, &err, errstr, sizeof(errstr));
    if (!cs) fail_msg("rs_cpstage_new: %s", errstr);
    rs_cpstage_stats_t *st = calloc(1, sizeof(*st));
    for (int k = 0; k < 200 && st->buffered == 0; k++) {
        sleep_ms(50);
        rs_cpstage_stats(cs, st);
    }
    assert_true(st->buffered > 0);  /* the stage thread reads ... */
    assert_int_equal(st->events, 0); /* ... and does not merge */
    assert_int_equal(rs_cpstage_ready(cs, NULL), 0);

    fills_equal_core(cs, f.boot, 301, &f.fc);
    live_pair(cs, &f);

    rs_cpstage_stats(cs, st);
    printf("test_waiter_merges: %llu events merged, %llu by waiting lookups; "
           "partitions at their end %llu times by the watermark\n",
           (unsigned long long)st->events,
           (unsigned long long)st->merged_waiting,
           (unsigned long long)st->ends_hwm);
    assert_int_equal(st->events, 303);
    assert_int_equal(st->merged_waiting, st->events + st->labels);
    assert_int_equal(st->reordered, 0);
    assert_int_equal(st->miss_timeout + st->miss_gone, 0);
    assert_int_equal(st->ends_eof, 0);
    assert_true(st->ends_hwm >= 2);
    free(st);
    rs_cpstage_destroy(cs);
    atomic_store(&rs_cpstage_test_nomerge, 0);
    wm_fix_fini(&f);
}

/* One read path (cpstage.feed): the stage reads 300 events with its own
 * consumer and gets ready; then it stops reading (test hook) and a
 * scoring consumer (rs_ingest_t, read-ahead on) is attached: its read of
 * the 300 is dropped as duplicates; 40 new events reach the store only
 * through it, and every fill of the 340 equals the core's canonical
 * order.  The new events go round the partitions, each produced once the
 * one before is merged (as in live_pair: two produced back to back may
 * reach the stage in either order, and with idle_wait 0 the older one is
 * then merged out of order, counted -- the contract, not what this test is
 * about).  Without the feed the new events never reach the store: their
 * fills time out (cpstage.wait) and the test fails. */
static void test_feed(void **state) {
    (void)state;
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(1, topics, 2, NPART, errstr, sizeof(errstr));
    if (!cl) fail_msg("cluster: %s", errstr);
    const char *boot = rs_cluster_bootstraps(cl);
    rd_kafka_t *prod = rs_kafka_producer_new(NULL, boot, errstr, sizeof(errstr));
    assert_non_null(prod);
    for (int i = 0; i < 300; i++)
        produce_on(prod, i % NPART, i, BASE_MS + i * 1000LL);

    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    fc.max_keys = fc.max_counterparties = 1024;
    fc.label_index = 4096;
    rs_ingest_conf_t icon;
    rs_ingest_conf_init(&icon);
    rs_strlcpy(icon.group_id, "g-feed", sizeof(icon.group_id));
    assert_int_equal(icon.read_ahead, 1);
    rs_cpstage_conf_t cc;
    rs_cpstage_conf_init(&cc);
    assert_int_equal(cc.feed, 1); /* the default */
    cc.idle_wait_ms = 0;
    cc.wait_ms = 3000;
    rs_cpstage_opts_t o = {&cc, &fc, &icon, NULL, boot, 86400000LL, 65536, 0, 1};
    rs_err_t err;
    rs_cpstage_t *cs = rs_cpstage_new(&o, &err, errstr, sizeof(errstr));
    if (!cs) fail_msg("rs_cpstage_new: %s", errstr);
    const char *why = NULL;
    for (int k = 0; k < 600 && !rs_cpstage_ready(cs, &why); k++) sleep_ms(50);
    assert_true(rs_cpstage_ready(cs, &why));
    rs_cpstage_stats_t *st = calloc(1, sizeof(*st));
    rs_cpstage_stats(cs, st);
    assert_int_equal(st->events, 300);
    atomic_store(&rs_cpstage_test_noread, 1);
    sleep_ms(20); /* a read in progress ends */

    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_kv_set(&kv, "consumer.session.timeout.ms", "6000");
    rs_kv_set(&kv, "consumer.heartbeat.interval.ms", "500");
    rs_ingest_t *ing = rs_ingest_new(&icon, &kv, boot, errstr, sizeof(errstr));
    if (!ing) fail_msg("rs_ingest_new: %s", errstr);
    rs_cpstage_attach(cs, ing);
    static rs_msg_t msgs[64];
    int seen = 0, next = 300;
    int64_t deadline = rs_clock_mono_us() + 60000000LL;
    while (seen < 340 && rs_clock_mono_us() < deadline) {
        int got = rs_ingest_poll(ing, msgs, 64, 10);
        assert_true(got >= 0);
        seen += got;
        rs_cpstage_stats(cs, st);
        /* live, after the backlog: the next one once the last is merged */
        if (seen >= 300 && next < 340 && st->events == (uint64_t)next) {
            produce_on(prod, next % NPART, next, BASE_MS + next * 1000LL);
            next++;
        }
    }
    assert_int_equal(seen, 340);
    fills_equal_core(cs, boot, 340, &fc);

    rs_cpstage_stats(cs, st);
    printf("test_feed: %llu events merged; input: consumer %llu (%llu "
           "duplicates), feed %llu (%llu duplicates, %llu ahead)\n",
           (unsigned long long)st->events,
           (unsigned long long)st->in_pushed[0],
           (unsigned long long)st->in_dup[0],
           (unsigned long long)st->in_pushed[1],
           (unsigned long long)st->in_dup[1],
           (unsigned long long)st->in_ahead[1]);
    assert_int_equal(st->feed, 1);
    assert_int_equal(st->events, 340);
    assert_int_equal(st->in_pushed[0], 300);
    assert_int_equal(st->in_pushed[1], 40);
    assert_int_equal(st->in_dup[1], 300);
    assert_int_equal(st->in_ahead[1], 0);
    assert_int_equal(st->reordered, 0);
    assert_int_equal(st->miss_timeout + st->miss_gone, 0);
    free(st);
    rs_cpstage_destroy(cs); /* before the consumer it taps */
    atomic_store(&rs_cpstage_test_noread, 0);
    rs_ingest_destroy(ing);
    rs_kv_free(&kv);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

/* The feed's set-up (test_feed_starved, test_feed_late): 300 events read
 * by the stage (ready), a scoring consumer attached that reads them too;
 * then, the stage not reading (test hook), one live event per partition
 * reaches the store through the feed alone, so the feed is in step on
 * every events partition and the stage's consumer pauses them all (the
 * feed supplies them); then the stage reads again.  Then NPART more live
 * events: the feed pushes them and the stage's consumer, paused there,
 * reads none of them (on main it read and dropped each one again). */
typedef struct feed_fix_s {
    rs_cluster_t *cl;
    const char *boot;
    rd_kafka_t *prod;
    rs_features_conf_t fc;
    rs_ingest_conf_t icon;
    rs_cpstage_conf_t cc;
    rs_cpstage_opts_t o;
    rs_kv_t kv;
    rs_cpstage_t *cs;
    rs_ingest_t *ing;
    rs_cpstage_stats_t *st;
    int seen, next;           /* events the consumer returned, produced */
} feed_fix_t;

static void feed_poll_until(feed_fix_t *f, int n) {
    static rs_msg_t msgs[64];
    int64_t deadline = rs_clock_mono_us() + 60000000LL;
    while (f->seen < n && rs_clock_mono_us() < deadline) {
        int got = rs_ingest_poll(f->ing, msgs, 64, 10);
        assert_true(got >= 0);
        f->seen += got;
    }
    assert_int_equal(f->seen, n);
}

/* One live event on each partition, each produced once the one before is
 * merged (see test_feed), read by the scoring consumer. */
static void feed_live_round(feed_fix_t *f) {
    int64_t deadline = rs_clock_mono_us() + 60000000LL;
    int until = f->next + NPART;
    while (f->next < until && rs_clock_mono_us() < deadline) {
        rs_cpstage_stats(f->cs, f->st);
        if (f->st->events == (uint64_t)f->next) {
            produce_on(f->prod, f->next % NPART, f->next,
                       BASE_MS + f->next * 1000LL);
            f->next++;
        }
        static rs_msg_t msgs[64];
        int got = rs_ingest_poll(f->ing, msgs, 64, 10);
        assert_true(got >= 0);
        f->seen += got;
    }
    feed_poll_until(f, until);
    for (int k = 0; k < 2000; k++) { /* the last one merged */
        rs_cpstage_stats(f->cs, f->st);
        if (f->st->events == (uint64_t)until) break;
        sleep_ms(5);
    }
    assert_int_equal(f->st->events, until);
}

static void feed_fix_init(feed_fix_t *f, const char *group, int batch_max) {
    char errstr[512];
    memset(f, 0, sizeof(*f));
    f->cl = rs_cluster_new(1, topics, 2, NPART, errstr, sizeof(errstr));
    if (!f->cl) fail_msg("cluster: %s", errstr);
    f->boot = rs_cluster_bootstraps(f->cl);
    f->prod = rs_kafka_producer_new(NULL, f->boot, errstr, sizeof(errstr));
    assert_non_null(f->prod);
    for (int i = 0; i < 300; i++)
        produce_on(f->prod, i % NPART, i, BASE_MS + i * 1000LL);
    rs_features_conf_init(&f->fc);
    f->fc.max_keys = f->fc.max_counterparties = 1024;
    f->fc.label_index = 4096;
    rs_ingest_conf_init(&f->icon);
    rs_strlcpy(f->icon.group_id, group, sizeof(f->icon.group_id));
    if (batch_max > 0) f->icon.batch_max = batch_max;
    rs_cpstage_conf_init(&f->cc);
    f->cc.idle_wait_ms = 0;
    f->cc.wait_ms = 3000;
    f->o = (rs_cpstage_opts_t){&f->cc, &f->fc, &f->icon, NULL, f->boot,
                               86400000LL, 65536, 0, 1};
    rs_err_t err;
    f->cs = rs_cpstage_new(&f->o, &err, errstr, sizeof(errstr));
    if (!f->cs) fail_msg("rs_cpstage_new: %s", errstr);
    const char *why = NULL;
    for (int k = 0; k < 600 && !rs_cpstage_ready(f->cs, &why); k++)
        sleep_ms(50);
    assert_true(rs_cpstage_ready(f->cs, &why));
    f->st = calloc(1, sizeof(*f->st));

    rs_kv_init(&f->kv);
    rs_kv_set(&f->kv, "consumer.session.timeout.ms", "6000");
    rs_kv_set(&f->kv, "consumer.heartbeat.interval.ms", "500");
    f->ing = rs_ingest_new(&f->icon, &f->kv, f->boot, errstr, sizeof(errstr));
    if (!f->ing) fail_msg("rs_ingest_new: %s", errstr);
    rs_cpstage_attach(f->cs, f->ing);
    feed_poll_until(f, 300);
    f->next = 300;

    atomic_store(&rs_cpstage_test_noread, 1);
    sleep_ms(20); /* a read in progress ends */
    feed_live_round(f);
    for (int k = 0; k < 2000; k++) { /* the stage thread pauses them */
        rs_cpstage_stats(f->cs, f->st);
        if (f->st->feed_paused == NPART) break;
        sleep_ms(5);
    }
    assert_int_equal(f->st->feed_paused, NPART);
    atomic_store(&rs_cpstage_test_noread, 0);

    /* the stage reads again, but not what the feed supplies */
    uint64_t stage_in = f->st->in_pushed[0] + f->st->in_dup[0];
    uint64_t feed_in = f->st->in_pushed[1];
    feed_live_round(f);
    rs_cpstage_stats(f->cs, f->st);
    assert_int_equal(f->st->in_pushed[1], feed_in + NPART);
    assert_int_equal(f->st->in_pushed[0] + f->st->in_dup[0], stage_in);
    assert_int_equal(f->st->feed_paused, NPART);
}

static void feed_fix_fini(feed_fix_t *f) {
    rs_cpstage_destroy(f->cs); /* before the consumer it taps */
    rs_ingest_destroy(f->ing);
    rs_kv_free(&f->kv);
    free(f->st);
    rd_kafka_destroy(f->prod);
    rs_cluster_destroy(f->cl);
    atomic_store(&rs_cpstage_test_late_ms, 0);
}

/* starved: the stage's consumer has paused every events partition (the
 * feed supplies them); the scoring consumer's read-ahead (batch_max 16)
 * fills up and stops -- its owner, this thread, does not poll -- while
 * 120 more events arrive, so the feed pushes at most 16 of them; then a
 * lookup of the newest waits.  The merge waits for partitions only the
 * paused consumer or the stopped read-ahead could read: the waiting
 * lookup with the read-ahead full makes the stage fetch them again, and
 * every fill equals the core's canonical order.  feed_late is off (test
 * hook): without the starved rule every fill of the new events times
 * out (cpstage.wait) and the test fails. */
static void test_feed_starved(void **state) {
    (void)state;
    feed_fix_t f;
    feed_fix_init(&f, "g-starve", 16);
    atomic_store(&rs_cpstage_test_late_ms, 3600000);
    int n0 = f.next;
    for (int i = n0; i < n0 + 120; i++)
        produce_on(f.prod, i % NPART, i, BASE_MS + i * 1000LL);
    for (int k = 0; k < 2000 && !rs_ingest_ra_full(f.ing); k++) sleep_ms(5);
    assert_true(rs_ingest_ra_full(f.ing));
    fills_equal_core(f.cs, f.boot, n0 + 120, &f.fc);
    rs_cpstage_stats(f.cs, f.st);
    printf("test_feed_starved: %llu events merged; input: consumer %llu (%llu "
           "duplicates), feed %llu; stage fetch paused for the feed %llu "
           "times, resumed: %llu starved, %llu late, %llu gen\n",
           (unsigned long long)f.st->events,
           (unsigned long long)f.st->in_pushed[0],
           (unsigned long long)f.st->in_dup[0],
           (unsigned long long)f.st->in_pushed[1],
           (unsigned long long)f.st->feed_pauses,
           (unsigned long long)f.st->feed_starved,
           (unsigned long long)f.st->feed_late,
           (unsigned long long)f.st->feed_moved);
    assert_int_equal(f.st->events, n0 + 120);
    assert_true(f.st->feed_starved >= 1);
    assert_int_equal(f.st->feed_late, 0);
    assert_int_equal(f.st->miss_timeout + f.st->miss_gone, 0);
    feed_fix_fini(&f);
}

/* feed_late: the stage's consumer has paused every events partition (the
 * feed supplies them), then the feed stops (its tap removed: no gen
 * change, the read-ahead not full) while the scoring consumer reads one
 * more event (on one partition: two on two partitions, produced back to
 * back, may be merged out of order with idle_wait 0, as test_feed says).
 * After 1 s without the feed moving on a
 * paused partition with data to read, the stage fetches it again: every
 * fill equals the core's canonical order (cpstage.wait 3 s).  Without
 * the backstop the new events never reach the store: their fills time
 * out and the test fails. */
static void test_feed_late(void **state) {
    (void)state;
    feed_fix_t f;
    feed_fix_init(&f, "g-late", 0);
    rs_ingest_set_tap(f.ing, NULL, NULL); /* the feed stops */
    int n0 = f.next;
    produce_on(f.prod, 1, n0, BASE_MS + n0 * 1000LL);
    feed_poll_until(&f, n0 + 1);
    fills_equal_core(f.cs, f.boot, n0 + 1, &f.fc);
    rs_cpstage_stats(f.cs, f.st);
    printf("test_feed_late: %llu events merged; stage fetch resumed: %llu "
           "late, %llu starved, %llu gen\n",
           (unsigned long long)f.st->events,
           (unsigned long long)f.st->feed_late,
           (unsigned long long)f.st->feed_starved,
           (unsigned long long)f.st->feed_moved);
    assert_int_equal(f.st->events, n0 + 1);
    assert_true(f.st->feed_late >= 1);
    assert_int_equal(f.st->feed_starved, 0);
    assert_int_equal(f.st->miss_timeout + f.st->miss_gone, 0);
    feed_fix_fini(&f);
}

/* trim_owned: the group's committed offset passes events the scoring
 * consumer has read (the feed handed them to its scoring thread) that the
 * scoring thread has not looked up yet -- what an instance sees whose
 * session was lost: another member scores and commits the partition while
 * this one still scores its read-ahead until its revoke is served between
 * two batches (scaleout3 with i14cpfeed: A1 scored 5 events of events/5
 * without their counterparty features, "the store has no result for it",
 * as its session was lost, although its store had merged every event of
 * the topic).  Here the scoring consumer commits past them itself, as the
 * other member's commits did.  While the partitions are assigned to it,
 * the stage keeps those results through its reads of the committed
 * offsets, and every fill, each partition in offset order, equals the
 * core's.  Without that rule the stage dropped them at its next read of
 * the committed offsets: the fills were "gone" and the test failed. */
static void test_feed_trim_owned(void **state) {
    (void)state;
    char errstr[512];
    feed_fix_t f;
    feed_fix_init(&f, "g-owned", 0);
    int n0 = f.next;
    got_t *ge = calloc(1, sizeof(*ge));
    assert_int_equal(rs_test_kafka_read(f.boot, "events", n0, 200, 30000,
                                        collect, ge), n0);
    int64_t end[NPART] = {0};
    for (int i = 0; i < ge->n; i++)
        if (ge->off[i] + 1 > end[ge->part[i]]) end[ge->part[i]] = ge->off[i] + 1;
    for (int p = 0; p < NPART; p++) {
        assert_true(end[p] > 0);
        assert_int_equal(rs_ingest_store_offset(f.ing, RS_MSG_TOPIC_EVENTS, p,
                                                end[p] - 1), RS_OK);
    }
    assert_int_equal(rs_ingest_commit_sync(f.ing, errstr, sizeof(errstr)),
                     RS_OK);
    /* two reads of the committed offsets after the commit */
    rs_cpstage_stats(f.cs, f.st);
    uint64_t t0 = f.st->trims;
    for (int k = 0; k < 3000 && f.st->trims < t0 + 2; k++) {
        sleep_ms(10);
        rs_cpstage_stats(f.cs, f.st);
    }
    assert_true(f.st->trims >= t0 + 2);
    uint64_t held = f.st->held;
    fills_equal_core_dir(f.cs, f.boot, n0, &f.fc, 1);
    rs_cpstage_stats(f.cs, f.st);
    printf("test_feed_trim_owned: committed the end of every partition "
           "(%lld, %lld, %lld, %lld); %llu results held after %llu reads of "
           "the committed offsets; %llu served, %llu gone\n",
           (long long)end[0], (long long)end[1], (long long)end[2],
           (long long)end[3], (unsigned long long)held,
           (unsigned long long)f.st->trims, (unsigned long long)f.st->filled,
           (unsigned long long)f.st->miss_gone);
    assert_int_equal(f.st->miss_timeout + f.st->miss_gone, 0);
    for (int i = 0; i < ge->n; i++) free(ge->payload[i]);
    free(ge);
    feed_fix_fini(&f);
}

/* parked: the stage's consumer has paused every events partition (the
 * feed supplies them); a second member joins the group, so the scoring
 * consumer's rebalance callback reaches its read-ahead thread, which parks
 * in it until the owner (this thread) serves it at its next poll: it reads
 * nothing meanwhile.  One new event per partition arrives and the owner,
 * still in its batch, looks the first one up.  The read-ahead announces
 * the rebalance to the feed before it parks (gen moved, n = 0), so the
 * stage's consumer fetches every partition again at once (sought to the
 * end of what was pushed) and the lookup is served.  feed_late is off
 * (test hook) and the read-ahead is not full (no starved rule): without
 * the announcement the lookup waits cpstage.wait (3 s), times out, and
 * the test fails.  After the owner served the rebalance, every fill
 * equals the core's canonical order (nothing skipped by the seek). */
static void test_feed_rebalance_parked(void **state) {
    (void)state;
    char errstr[512];
    feed_fix_t f;
    feed_fix_init(&f, "g-parked", 0);
    atomic_store(&rs_cpstage_test_late_ms, 3600000);
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(kc, "bootstrap.servers", f.boot, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(kc, "group.id", "g-parked", errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(kc, "session.timeout.ms", "6000",
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(kc, "heartbeat.interval.ms", "500",
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *c2 = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    assert_non_null(c2);
    rd_kafka_poll_set_consumer(c2);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, "events", RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(l, "labels", RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(c2, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t deadline = rs_clock_mono_us() + 30000000LL;
    while (!rs_ingest_ra_parked(f.ing) && rs_clock_mono_us() < deadline) {
        rd_kafka_message_t *r = rd_kafka_consumer_poll(c2, 10);
        if (r) rd_kafka_message_destroy(r);
    }
    assert_true(rs_ingest_ra_parked(f.ing));

    int n0 = f.next;
    for (int i = n0; i < n0 + NPART; i++)
        produce_on(f.prod, i % NPART, i, BASE_MS + i * 1000LL);
    /* the owner, still in its batch, looks up the first of them: produced
     * round-robin, partition n0 % NPART holds n0 / NPART before it */
    rs_event_t *ev = calloc(1, sizeof(*ev));
    snprintf(ev->id, sizeof(ev->id), "q-%d", n0);
    float *x = calloc(512, 4);
    rs_err_t e = rs_cpstage_fill(f.cs, n0 % NPART, n0 / NPART, ev, x, NULL);
    rs_cpstage_stats(f.cs, f.st);
    printf("test_feed_rebalance_parked: the lookup during the parked "
           "rebalance: %s; stage fetch resumed: %llu gen, %llu starved, %llu "
           "late\n", rs_err_str(e), (unsigned long long)f.st->feed_moved,
           (unsigned long long)f.st->feed_starved,
           (unsigned long long)f.st->feed_late);
    assert_int_equal(e, RS_OK);
    assert_true(rs_ingest_ra_parked(f.ing)); /* still: it was not served */
    assert_true(f.st->feed_moved >= 1);

    /* the owner serves the rebalance; both members get partitions */
    static rs_msg_t msgs[64];
    deadline = rs_clock_mono_us() + 60000000LL;
    for (;;) {
        assert_true(rs_ingest_poll(f.ing, msgs, 64, 10) >= 0);
        rd_kafka_message_t *r = rd_kafka_consumer_poll(c2, 0);
        if (r) rd_kafka_message_destroy(r);
        rd_kafka_topic_partition_list_t *a = NULL;
        int n2 = 0;
        if (!rd_kafka_assignment(c2, &a) && a) n2 = a->cnt;
        if (a) rd_kafka_topic_partition_list_destroy(a);
        if ((n2 > 0 && !rs_ingest_ra_parked(f.ing)) ||
            rs_clock_mono_us() > deadline)
            break;
    }
    fills_equal_core(f.cs, f.boot, n0 + NPART, &f.fc);
    rs_cpstage_stats(f.cs, f.st);
    assert_int_equal(f.st->events, n0 + NPART);
    assert_int_equal(f.st->miss_timeout + f.st->miss_gone, 0);
    rd_kafka_consumer_close(c2);
    rd_kafka_destroy(c2);
    free(ev);
    free(x);
    feed_fix_fini(&f);
}

/* The fetch.wait.max.ms the stage's consumer runs with. */
static int64_t stage_fetch_wait(const char *boot, int64_t conf_ms, int on_mock,
                                const char *kafka_fwm) {
    char errstr[512];
    rs_features_conf_t fc;
    rs_features_conf_init(&fc);
    fc.max_keys = fc.max_counterparties = 64;
    fc.label_index = 64;
    rs_ingest_conf_t icon;
    rs_ingest_conf_init(&icon);
    rs_strlcpy(icon.group_id, "g-fw", sizeof(icon.group_id));
    rs_cpstage_conf_t cc;
    rs_cpstage_conf_init(&cc);
    assert_int_equal(cc.fetch_wait_ms, RS_CONF_AUTO); /* the default */
    cc.fetch_wait_ms = conf_ms;
    rs_kv_t kv;
    rs_kv_init(&kv);
    if (kafka_fwm) rs_kv_set(&kv, "fetch.wait.max.ms", kafka_fwm);
    rs_cpstage_opts_t o = {&cc, &fc, &icon, &kv, boot, 86400000LL, 65536, 0,
                           on_mock};
    rs_err_t err;
    rs_cpstage_t *cs = rs_cpstage_new(&o, &err, errstr, sizeof(errstr));
    if (!cs) fail_msg("rs_cpstage_new: %s", errstr);
    rs_cpstage_stats_t *st = calloc(1, sizeof(*st));
    rs_cpstage_stats(cs, st);
    int64_t v = st->fetch_wait_ms;
    free(st);
    rs_cpstage_destroy(cs);
    rs_kv_free(&kv);
    return v;
}

static void test_fetch_wait(void **state) {
    (void)state;
    char errstr[512];
    rs_cluster_t *cl = rs_cluster_new(1, topics, 2, NPART, errstr, sizeof(errstr));
    if (!cl) fail_msg("cluster: %s", errstr);
    const char *boot = rs_cluster_bootstraps(cl);
    assert_int_equal(stage_fetch_wait(boot, RS_CONF_AUTO, 1, NULL), 1);
    assert_int_equal(stage_fetch_wait(boot, RS_CONF_AUTO, 1, "5"), 1);
    assert_int_equal(stage_fetch_wait(boot, RS_CONF_AUTO, 0, NULL), 5);
    assert_int_equal(stage_fetch_wait(boot, RS_CONF_AUTO, 0, "40"), 40);
    assert_int_equal(stage_fetch_wait(boot, 7, 0, "40"), 7);
    assert_int_equal(stage_fetch_wait(boot, 0, 1, NULL), 0);
    rs_cluster_destroy(cl);
}

int main(void) {
    rs_log_set_level(RS_LOG_WARN);
    /* RS_TEST_FILTER="test_quiet*" runs a subset (cmocka filter) */
    if (getenv("RS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("RS_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_equals_core),
        cmocka_unit_test(test_fetch_wait),
        cmocka_unit_test(test_quiet_busy_watermark),
        cmocka_unit_test(test_waiter_merges),
        cmocka_unit_test(test_feed),
        cmocka_unit_test(test_feed_starved),
        cmocka_unit_test(test_feed_late),
        cmocka_unit_test(test_feed_trim_owned),
        cmocka_unit_test(test_feed_rebalance_parked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
