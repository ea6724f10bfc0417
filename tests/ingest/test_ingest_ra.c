/* test_ingest_ra.c -- the consumer's read-ahead (topics.read_ahead,
 * ingest/ingest_ra.c) against the embedded (librdkafka mock) cluster.
 * The owner polls a few messages at a time, so the ingest thread reads
 * and decodes far ahead of what was returned:
 * - test_ra_order_reject: every message once, each partition in offset
 *   order with no gap, bad input inside read-ahead batches returned as
 *   RS_MSG_REJECT at its offset (counted, dead-lettered with rs-error /
 *   rs-source), committed offsets at the ends; with and without the task
 *   merge, through rs_ingest_poll_ref too, and the same with read_ahead
 *   off (the reference); each
 *   event's body is the one produced with its id (the slots the
 *   read-ahead hands to the task merge carry no other message's bytes).
 * - test_ra_rebalance: a second member joins while the first holds the
 *   rest of every partition read ahead; every message either consumer
 *   returns belongs to a partition it owns at that moment, each consumer
 *   returns each partition's offsets in order with no gap between
 *   rebalances, nothing is lost, and a message returned twice was
 *   returned first by the first member (the mock refuses its commit in
 *   the revoke).  Fails without the drop of the read-ahead of partitions
 *   that left (ingest_ra.c rs_ra_serve): the first member then returns
 *   messages of partitions it no longer owns.
 * - test_ra_ref: the same with rs_ingest_poll_ref and the task merge (the
 *   service's poll): each batch is held while the read-ahead reads on
 *   (pointers to the merge's slots) and checked only then, byte for byte
 *   against a copy taken at the poll and against the ids; one batch is
 *   held across a rebalance served mid-batch (a second member joins; the
 *   revocation runs in rs_ingest_pause, the merge drops what it held of
 *   the partitions that left): the batch is unchanged after it.  Then
 *   both members read everything as in test_ra_rebalance.
 * - test_ra_tap_gen: the tap's contract (ingest.h): within one gen each
 *   partition's messages are contiguous.  A chunk read just before the
 *   owner seeks every partition forward (ctl pair; a test hook holds the
 *   chunk until the pair has begun) and the first chunk after the seek
 *   must not share a gen: they did on main (the gen was read after the
 *   consume call, when the ctl pair had already bumped it), so the
 *   counterparty stage's feed took the jump as a contiguous read and
 *   pushed past offsets nobody had pushed (a silent gap in its store).
 * Not labelled tsan: Debian's librdkafka is not instrumented and its
 * threads crash the TSan runtime (docs/testing.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "ingest/ingest.h"
#include "ingest/ingest_int.h"
#include "tests/support/rs_test_kafka.h"

#define BASE_MS 1700000000000LL
#define NPART 4

static const char *const rs_topics[] = {"events", "labels", "scores",
                                        "alerts", "events.dlq"};

static void produce(rd_kafka_t *rk, const char *topic, const char *key,
                    const void *val, size_t len) {
    assert_int_equal(rs_test_kafka_produce(rk, topic, key, val, len), 0);
}

/* n events ev-0..ev-(n-1), keyed by entity; every bad_every-th one
 * (0: none) replaced by "{not json" keyed "bad-<i>".  Returns the bad
 * count. */
static int produce_range(rd_kafka_t *rk, int from, int n, int bad_every) {
    static char buf[RS_ENCODE_MAX];
    int bad = 0;
    for (int i = from; i < n; i++) {
        rs_event_t ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.id, sizeof(ev.id), "ev-%d", i);
        snprintf(ev.type, sizeof(ev.type), "card");
        snprintf(ev.entity_id, sizeof(ev.entity_id), "card-%d", i % 13);
        ev.event_time_ms = BASE_MS + (int64_t)i * 1000;
        ev.amount = 10.25 + i;
        if (bad_every > 0 && i % bad_every == bad_every - 1) {
            char key[32];
            snprintf(key, sizeof(key), "bad-%d", i);
            produce(rk, "events", key, "{not json", 9);
            bad++;
            continue;
        }
        int len = rs_event_encode(RS_FORMAT_JSON, &ev, buf, sizeof(buf));
        assert_true(len > 0);
        produce(rk, "events", ev.entity_id, buf, (size_t)len);
    }
    rd_kafka_flush(rk, 10000);
    return bad;
}

static int produce_events(rd_kafka_t *rk, int n, int bad_every) {
    return produce_range(rk, 0, n, bad_every);
}

static rs_ingest_t *new_consumer(const char *boot, const char *group,
                                 int read_ahead, int merge, int batch_max) {
    rs_ingest_conf_t conf;
    char errstr[512];
    rs_ingest_conf_init(&conf);
    assert_int_equal(conf.read_ahead, 1); /* the default */
    snprintf(conf.group_id, sizeof(conf.group_id), "%s", group);
    conf.read_ahead = read_ahead;
    conf.task_merge = merge;
    if (batch_max > 0) conf.batch_max = batch_max;
    rs_kv_t kv;
    rs_kv_init(&kv);
    rs_kv_set(&kv, "consumer.session.timeout.ms", "6000");
    rs_kv_set(&kv, "consumer.heartbeat.interval.ms", "500");
    rs_ingest_t *ing = rs_ingest_new(&conf, &kv, boot, errstr, sizeof(errstr));
    rs_kv_free(&kv);
    if (!ing) fprintf(stderr, "rs_ingest_new: %s\n", errstr);
    assert_non_null(ing);
    return ing;
}

typedef struct seen_s {
    int64_t next[NPART];   /* next offset expected per events partition */
    int total, rejects, dup;
    unsigned char *ev;     /* [n] events seen, by id                      */
} seen_t;

/* One returned message: in offset order with no gap in its partition. */
static void seen_add(seen_t *s, const rs_msg_t *m) {
    assert_int_equal(m->topic, RS_MSG_TOPIC_EVENTS);
    assert_true(m->partition >= 0 && m->partition < NPART);
    assert_int_equal(m->offset, s->next[m->partition]);
    s->next[m->partition] = m->offset + 1;
    s->total++;
    if (m->kind == RS_MSG_REJECT) {
        assert_true(m->reason[0] != '\0');
        s->rejects++;
        return;
    }
    assert_int_equal(m->kind, RS_MSG_EVENT);
    int i = -1;
    assert_int_equal(sscanf(m->ev.id, "ev-%d", &i), 1);
    /* the body is the one produced with that id (the read-ahead hands
     * its decoded slots to the task merge: no message's bytes under
     * another's head), unused entries zero as the decoder leaves them */
    char ent[32];
    snprintf(ent, sizeof(ent), "card-%d", i % 13);
    assert_string_equal(m->ev.entity_id, ent);
    assert_string_equal(m->ev.type, "card");
    assert_true(m->ev.event_time_ms == BASE_MS + (int64_t)i * 1000);
    assert_true(m->ev.amount == 10.25 + i);
    assert_true(m->ev.n_numeric >= 0 && m->ev.n_numeric <= RS_MAX_NUMERIC);
    assert_true(m->ev.n_categ >= 0 && m->ev.n_categ <= RS_MAX_CATEG);
    static const rs_numeric_t znum;
    static const rs_categ_t zcat;
    for (int k = m->ev.n_numeric; k < RS_MAX_NUMERIC; k++)
        assert_memory_equal(&m->ev.numeric[k], &znum, sizeof(znum));
    for (int k = m->ev.n_categ; k < RS_MAX_CATEG; k++)
        assert_memory_equal(&m->ev.categ[k], &zcat, sizeof(zcat));
    if (s->ev[i]++) s->dup++;
}

typedef struct dlq_s {
    int n, with_error, with_source;
} dlq_t;

static void dlq_cb(void *opaque, const rd_kafka_message_t *rkm) {
    dlq_t *d = opaque;
    char err[256], src[256];
    d->n++;
    if (!rs_test_kafka_header(rkm, "rs-error", err, sizeof(err)) && err[0])
        d->with_error++;
    if (!rs_test_kafka_header(rkm, "rs-source", src, sizeof(src)) &&
        !strncmp(src, "events/", 7))
        d->with_source++;
    assert_int_equal(rkm->len, 9);
    assert_memory_equal(rkm->payload, "{not json", 9);
}

/* Read everything a few messages at a time (the read-ahead runs far
 * ahead), storing after each poll; the checks of the file comment. */
static void order_run(const char *boot, const char *group, int read_ahead,
                      int merge, int n, int bad, int ref) {
    rs_ingest_t *ing = new_consumer(boot, group, read_ahead, merge, 0);
    seen_t s = {0};
    s.ev = calloc((size_t)n, 1);
    static rs_msg_t msgs[8];
    static const rs_msg_t *refs[8];
    int64_t deadline = rs_clock_mono_us() + 60000000LL;
    int polls = 0;
    while (s.total < n && rs_clock_mono_us() < deadline) {
        int max = 1 + polls++ % 7; /* 1..7: buffers drained in pieces */
        int got = ref ? rs_ingest_poll_ref(ing, refs, max, 100)
                      : rs_ingest_poll(ing, msgs, max, 100);
        if (got < 0 || got > max)
            fprintf(stderr, "poll: %d of at most %d\n", got, max);
        assert_true(got >= 0 && got <= max);
        for (int i = 0; i < got; i++) seen_add(&s, ref ? refs[i] : &msgs[i]);
        if (got > 0 && ref)
            assert_int_equal(rs_ingest_store_ref(ing, refs, got), RS_OK);
        else if (got > 0)
            assert_int_equal(rs_ingest_store(ing, msgs, got), RS_OK);
    }
    assert_int_equal(s.total, n);
    assert_int_equal(s.rejects, bad);
    assert_int_equal(s.dup, 0);
    rs_ingest_stats_t st;
    rs_ingest_stats(ing, &st);
    assert_int_equal(st.rejected, (uint64_t)bad);
    assert_int_equal(st.events, (uint64_t)(n - bad));
    char e2[256];
    assert_int_equal(rs_ingest_commit_sync(ing, e2, sizeof(e2)), RS_OK);
    rs_ingest_lag_t lag[16];
    int nl = rs_ingest_lag(ing, lag, 16);
    assert_true(nl > 0);
    for (int i = 0; i < nl; i++) assert_int_equal(lag[i].lag, 0);
    rs_ingest_destroy(ing);
    free(s.ev);
}

static void test_ra_order_reject(void **state) {
    (void)state;
    rd_kafka_t *prod;
    rs_cluster_t *cl = rs_test_kafka_cluster(1, rs_topics, 5, NPART, &prod);
    const char *boot = rs_cluster_bootstraps(cl);
    const int N = 1500;
    int bad = produce_events(prod, N, 37);
    assert_true(bad > 30);
    order_run(boot, "g-ra-merge", 1, 1, N, bad, 0);
    order_run(boot, "g-ra-plain", 1, 0, N, bad, 0);
    /* the same through rs_ingest_poll_ref: the merge's lent slots, and
     * without the merge the consumer's own array */
    order_run(boot, "g-ra-merge-ref", 1, 1, N, bad, 1);
    order_run(boot, "g-ra-plain-ref", 1, 0, N, bad, 1);
    /* the reference: the same checks without the read-ahead */
    order_run(boot, "g-noread-ahead", 0, 1, N, bad, 0);
    order_run(boot, "g-noread-ahead-plain", 0, 0, N, bad, 0);
    /* each run dead-lettered each reject once (6 groups) */
    dlq_t d = {0};
    assert_int_equal(rs_test_kafka_read(boot, "events.dlq", 6 * bad, 1000,
                                        30000, dlq_cb, &d), 6 * bad);
    assert_int_equal(d.with_error, 6 * bad);
    assert_int_equal(d.with_source, 6 * bad);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

/* Poll consumer `who` (1 = A, 2 = B): every returned message is of a
 * partition it owns now; between two rebalances each consumer returns
 * each partition's offsets in order with no gap and no step back (a
 * read-ahead message of a partition that left and came back, returned
 * after the rebalance, would be followed by the same offsets read again
 * from the committed offset); a message returned again was returned
 * first by A (B re-reads what A returned but could not commit: the mock
 * refuses the commit in the revoke, "rebalance in progress"). */
typedef struct cons_s {
    int who;
    int64_t rb;             /* rebalances seen                           */
    int64_t last[NPART];    /* last offset returned since then, -1: none */
} cons_t;

static int rb_poll(rs_ingest_t *ing, cons_t *c, seen_t *s, int max) {
    static rs_msg_t msgs[64];
    int got = rs_ingest_poll(ing, msgs, max, 20);
    assert_true(got >= 0);
    rs_ingest_stats_t st;
    rs_ingest_stats(ing, &st);
    int fresh = st.rebalances != c->rb; /* served in this poll */
    if (fresh) {
        c->rb = st.rebalances;
        for (int p = 0; p < NPART; p++) c->last[p] = -1;
    }
    for (int i = 0; i < got; i++) {
        const rs_msg_t *m = &msgs[i];
        assert_int_equal(m->kind, RS_MSG_EVENT);
        assert_true(rs_ingest_owns(ing, m->topic, m->partition));
        int64_t *l = &c->last[m->partition];
        if (*l >= 0 && !fresh) assert_int_equal(m->offset, *l + 1);
        *l = m->offset;
        int id = -1;
        assert_int_equal(sscanf(m->ev.id, "ev-%d", &id), 1);
        if (s->ev[id]) {
            assert_int_equal(s->ev[id], 1); /* returned by A first */
            s->dup++;
        }
        if (!s->ev[id]) s->ev[id] = (unsigned char)c->who;
        s->total++;
    }
    if (got > 0) assert_int_equal(rs_ingest_store(ing, msgs, got), RS_OK);
    return got;
}

static int rebalance_run(const char *boot, const char *group, int read_ahead,
                         int n) {
    seen_t s = {0};
    s.ev = calloc((size_t)n, 1);
    /* A takes 100 messages, 2 at a time: its read-ahead holds the rest of
     * every partition (batch_max above the input: the ingest thread is
     * not blocked on a full buffer, so the rebalance reaches it while it
     * holds them). */
    rs_ingest_t *a = new_consumer(boot, group, read_ahead, 0, 2 * n);
    cons_t ca = {1, 0, {-1, -1, -1, -1}}, cb = {2, 0, {-1, -1, -1, -1}};
    int64_t deadline = rs_clock_mono_us() + 90000000LL;
    while (s.total < 100 && rs_clock_mono_us() < deadline)
        rb_poll(a, &ca, &s, 2);
    assert_true(s.total >= 100);
    rs_ingest_stats_t st;
    rs_ingest_stats(a, &st);
    int64_t rb0 = st.rebalances;

    /* B joins: A's partitions are revoked (eager) and split.  Both poll
     * until every message was returned. */
    rs_ingest_t *b = new_consumer(boot, group, read_ahead, 0, 0);
    rs_ingest_stats_t sb = {0};
    int all = 0;
    do { /* A slow (read-ahead full) until B has partitions, then both
          * take a batch per poll, as the service does */
        rb_poll(a, &ca, &s, sb.assigned > 0 ? 64 : 16);
        rb_poll(b, &cb, &s, 64);
        rs_ingest_stats(a, &st);
        rs_ingest_stats(b, &sb);
        all = 1;
        for (int i = 0; i < n && all; i++) all = s.ev[i] != 0;
    } while ((!all || st.rebalances == rb0 || sb.assigned == 0) &&
             rs_clock_mono_us() < deadline);
    assert_true(st.rebalances > rb0);   /* A went through a rebalance */
    assert_true(sb.assigned > 0);       /* ... and B got partitions   */
    assert_true(all);                   /* nothing lost               */
    assert_int_equal(s.total, n + s.dup);
    rs_ingest_destroy(b);
    rs_ingest_destroy(a);
    free(s.ev);
    return s.dup;
}

/* A batch of rs_ingest_poll_ref, held: copied at the poll, checked after
 * `hold`.  The rb_poll checks then. */
typedef struct held_s {
    const rs_msg_t *m[64];
    rs_msg_t snap[64];
    int n;
} held_t;

static int ref_take(rs_ingest_t *ing, cons_t *c, held_t *h, int max) {
    h->n = rs_ingest_poll_ref(ing, h->m, max, 20);
    assert_true(h->n >= 0 && h->n <= max);
    rs_ingest_stats_t st;
    rs_ingest_stats(ing, &st);
    if (st.rebalances != c->rb) { /* served since the last poll */
        c->rb = st.rebalances;
        for (int p = 0; p < NPART; p++) c->last[p] = -1;
    }
    for (int i = 0; i < h->n; i++) {
        assert_true(rs_ingest_owns(ing, h->m[i]->topic, h->m[i]->partition));
        h->snap[i] = *h->m[i];
    }
    return h->n;
}

static void ref_check(rs_ingest_t *ing, cons_t *c, seen_t *s, held_t *h) {
    for (int i = 0; i < h->n; i++) {
        const rs_msg_t *m = h->m[i];
        assert_memory_equal(m, &h->snap[i], sizeof(*m)); /* unchanged */
        assert_int_equal(m->kind, RS_MSG_EVENT);
        int64_t *l = &c->last[m->partition];
        if (*l >= 0) assert_int_equal(m->offset, *l + 1);
        *l = m->offset;
        int id = -1;
        assert_int_equal(sscanf(m->ev.id, "ev-%d", &id), 1);
        char ent[32];
        snprintf(ent, sizeof(ent), "card-%d", id % 13);
        assert_string_equal(m->ev.entity_id, ent);
        assert_true(m->ev.event_time_ms == BASE_MS + (int64_t)id * 1000);
        if (s->ev[id]) {
            assert_int_equal(s->ev[id], 1); /* returned by A first */
            s->dup++;
        }
        if (!s->ev[id]) s->ev[id] = (unsigned char)c->who;
        s->total++;
    }
    if (h->n > 0)
        assert_int_equal(rs_ingest_store_ref(ing, h->m, h->n), RS_OK);
}

static void test_ra_ref(void **state) {
    (void)state;
    rd_kafka_t *prod;
    rs_cluster_t *cl = rs_test_kafka_cluster(1, rs_topics, 5, NPART, &prod);
    const char *boot = rs_cluster_bootstraps(cl);
    const int n1 = 1500, n = 4000;
    produce_events(prod, n1, 0);
    seen_t s = {0};
    s.ev = calloc((size_t)n, 1);
    static held_t ha, hb;
    /* A: read-ahead and task merge (the defaults), batch_max 64 (the
     * ingest thread refills its buffers as A takes them), batches of
     * 1..64 held 2 ms each while the ingest thread reads on */
    rs_ingest_t *a = new_consumer(boot, "g-ra-ref", 1, 1, 64);
    cons_t ca = {1, 0, {-1, -1, -1, -1}}, cb = {2, 0, {-1, -1, -1, -1}};
    int64_t deadline = rs_clock_mono_us() + 90000000LL;
    for (int k = 0; rs_clock_mono_us() < deadline; k++) {
        ref_take(a, &ca, &ha, 1 + (k * 7) % 64);
        if (s.total + ha.n == n1) break; /* the last one: held */
        usleep(2000);
        ref_check(a, &ca, &s, &ha);
    }
    assert_true(ha.n > 0 && s.total + ha.n == n1);
    /* B joins while A holds that batch (A's ingest thread, all read,
     * waits in its consume call, where the rebalance reaches it); the
     * revocation is served inside rs_ingest_pause, between A's polls */
    rs_ingest_stats_t st;
    rs_ingest_stats(a, &st);
    int64_t assigned0 = st.assigned;
    assert_true(assigned0 > 0);
    rs_ingest_t *b = new_consumer(boot, "g-ra-ref", 1, 1, 0);
    while (st.assigned == assigned0 && rs_clock_mono_us() < deadline) {
        ref_take(b, &cb, &hb, 1); /* B joins */
        ref_check(b, &cb, &s, &hb);
        /* (paused once and for all: every resume would queue end of
         * partition events, filling the read-ahead A does not take) */
        assert_int_equal(rs_ingest_pause(a), RS_OK);
        rs_ingest_stats(a, &st);
    }
    assert_int_equal(rs_ingest_resume(a), RS_OK);
    assert_true(st.assigned < assigned0); /* revoked mid-batch */
    ref_check(a, &ca, &s, &ha);           /* ... and the batch intact */
    produce_range(prod, n1, n, 0);
    /* both read the rest, batches held while the other polls */
    rs_ingest_stats_t sb = {0};
    int all = 0, resumed = 0;
    do {
        rs_ingest_stats(a, &st);
        if (!resumed && st.assigned > 0) {
            /* librdkafka keeps a partition paused across its revocation:
             * the ones A got back fetch again */
            assert_int_equal(rs_ingest_resume(a), RS_OK);
            resumed = 1;
        }
        ref_take(a, &ca, &ha, 64);
        ref_take(b, &cb, &hb, 64);
        usleep(1000);
        ref_check(a, &ca, &s, &ha);
        ref_check(b, &cb, &s, &hb);
        rs_ingest_stats(b, &sb);
        all = 1;
        for (int i = 0; i < n && all; i++) all = s.ev[i] != 0;
    } while ((!all || sb.assigned == 0) && rs_clock_mono_us() < deadline);
    assert_true(sb.assigned > 0);
    assert_true(all);
    assert_int_equal(s.total, n + s.dup);
    fprintf(stderr, "ref: %d message(s) read again after the rebalance\n",
            s.dup);
    rs_ingest_destroy(b);
    rs_ingest_destroy(a);
    free(s.ev);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

static void test_ra_rebalance(void **state) {
    (void)state;
    rd_kafka_t *prod;
    rs_cluster_t *cl = rs_test_kafka_cluster(1, rs_topics, 5, NPART, &prod);
    const char *boot = rs_cluster_bootstraps(cl);
    const int N = 4000;
    produce_events(prod, N, 0);
    int d1 = rebalance_run(boot, "g-ra-rb", 1, N);
    int d0 = rebalance_run(boot, "g-noread-ahead-rb", 0, N);
    /* printed: how many A returned that B read again (the mock) */
    fprintf(stderr, "rebalance: %d message(s) read again with read-ahead, "
            "%d without\n", d1, d0);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

/* The tap's record of every message, in call order. */
typedef struct tap_rec_s {
    int n;
    uint64_t gen[8192];
    int32_t part[8192];
    int64_t off[8192];
} tap_rec_t;

static void tap_rec(void *opaque, const rs_ingest_tap_msg_t *msgs, int n,
                    uint64_t gen) {
    tap_rec_t *r = opaque;
    for (int i = 0; i < n && r->n < 8192; i++) {
        if (msgs[i].topic != RS_MSG_TOPIC_EVENTS) continue;
        r->gen[r->n] = gen;
        r->part[r->n] = msgs[i].partition;
        r->off[r->n] = msgs[i].offset;
        r->n++;
    }
}

static void test_ra_tap_gen(void **state) {
    (void)state;
    rd_kafka_t *prod;
    rs_cluster_t *cl = rs_test_kafka_cluster(1, rs_topics, 5, NPART, &prod);
    const char *boot = rs_cluster_bootstraps(cl);
    const int N = 2000; /* ~500 per partition: a chunk is 64 */
    produce_events(prod, N, 0);
    rs_ingest_t *ing = new_consumer(boot, "g-ra-tap", 1, 0, 0);
    tap_rec_t *r = calloc(1, sizeof(*r));
    rs_ingest_set_tap(ing, tap_rec, r);
    atomic_store(&rs_ingest_test_ctl_race, 1);
    static rs_msg_t msgs[64];
    int64_t deadline = rs_clock_mono_us() + 30000000LL;
    while (atomic_load(&rs_ingest_test_ctl_race) != 2 &&
           rs_clock_mono_us() < deadline)
        assert_true(rs_ingest_poll(ing, msgs, 64, 10) >= 0); /* assignment */
    assert_int_equal(atomic_load(&rs_ingest_test_ctl_race), 2);

    /* a chunk is held, read before this: seek every partition forward */
    int64_t target[NPART];
    rs_ingest_ctl_begin(ing);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART);
    for (int p = 0; p < NPART; p++) {
        int64_t lo = -1, hi = -1;
        assert_int_equal(rd_kafka_query_watermark_offsets(ing->rk, "events", p,
                                                          &lo, &hi, 5000), 0);
        assert_true(hi > 200);
        target[p] = hi - 20;
        rd_kafka_topic_partition_list_add(l, "events", p)->offset = target[p];
    }
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ing->rk, l, 5000);
    assert_null(e);
    rd_kafka_topic_partition_list_destroy(l);
    rs_ingest_ctl_end(ing);
    atomic_store(&rs_ingest_test_ctl_race, 0);

    /* read on until the tap has seen every partition's last message */
    int done = 0;
    while (!done && rs_clock_mono_us() < deadline) {
        assert_true(rs_ingest_poll(ing, msgs, 64, 10) >= 0);
        int last[NPART] = {0};
        for (int i = 0; i < r->n; i++)
            if (r->off[i] >= target[r->part[i]] + 19) last[r->part[i]] = 1;
        done = 1;
        for (int p = 0; p < NPART; p++) done &= last[p];
    }
    assert_true(done);
    rs_ingest_set_tap(ing, NULL, NULL);

    /* within one gen, each partition's offsets follow on with no gap */
    uint64_t pgen[NPART];
    int64_t poff[NPART];
    int have[NPART] = {0}, jumps = 0, bad = 0;
    for (int i = 0; i < r->n; i++) {
        int p = r->part[i];
        if (have[p] && r->gen[i] == pgen[p] && r->off[i] != poff[p] + 1) {
            fprintf(stderr, "partition %d: %lld then %lld in gen %llu\n", p,
                    (long long)poff[p], (long long)r->off[i],
                    (unsigned long long)r->gen[i]);
            bad++;
        }
        if (have[p] && r->off[i] > poff[p] + 1) jumps++;
        have[p] = 1;
        pgen[p] = r->gen[i];
        poff[p] = r->off[i];
    }
    fprintf(stderr, "tap: %d messages, %d forward jump(s), %d inside a gen\n",
            r->n, jumps, bad);
    assert_true(jumps >= 1); /* the seek was seen by the tap */
    assert_int_equal(bad, 0);
    rs_ingest_destroy(ing);
    free(r);
    rd_kafka_destroy(prod);
    rs_cluster_destroy(cl);
}

int main(void) {
    if (getenv("RS_TEST_KAFKA_DEBUG")) rs_log_set_level(RS_LOG_DEBUG);
    if (getenv("RS_TEST_FILTER")) /* e.g. test_ra_rebalance */
        cmocka_set_test_filter(getenv("RS_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ra_order_reject),
        cmocka_unit_test(test_ra_rebalance),
        cmocka_unit_test(test_ra_ref),
        cmocka_unit_test(test_ra_tap_gen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
