/* test_imerge.c -- the scoring consumer's per-task merge (ingest/imerge.h)
 * and its ordering core (common/tmerge.h), without Kafka.
 *
 *  - test_order_two_topics: one task, events and labels with interleaved
 *    times (ties included), both at their end: handed out in (time,
 *    topic) order -- an event before a label at equal time -- each
 *    topic's own order kept.
 *  - test_hold_until_other_known: events wait while the labels partition
 *    has neither a message nor reached its end (pop gives 0); its end, or
 *    a label, releases them; another task is not held by this one.
 *  - test_watermark_release: the labels partition had messages and is
 *    empty again without a PARTITION_EOF: held until the high watermark
 *    callback says its next offset is caught up (asked once per pop with
 *    the right topic, partition and offset); "not caught up" keeps it.
 *  - test_idle_wait: with idle wait 100 ms an event waits 100 ms after its
 *    arrival for a labels partition at its end; a label that arrives in
 *    that time and is older goes first; one arriving after the wait is
 *    handed out below the frontier and counted as reordered.
 *  - test_reorder_late: with explicit clocks, how late a reordered
 *    message was (rs_imerge_stats_t.reorder_late_ms): its arrival minus
 *    the earliest arrival of the newer messages of its task handed out
 *    ahead of it (2 ms for a label read 2 ms after the event it should
 *    have preceded, not the 3902 ms since the labels topic was first
 *    passed as idle); its topic and
 *    partition; the histogram by the wait that would have merged it in
 *    order and the advice the log prints; a lower bound past
 *    RS_TMERGE_LATE arrivals; with a wait of late_ms + 1 the same
 *    arrivals go in order.
 *  - test_reorder_batch: every message of a late batch older than what
 *    went ahead is counted as reordered (each 2 ms late), not only the
 *    first; the batch's newer one is not; a label older than an event
 *    handed out is counted though newer than the other topic's own late
 *    event handed out after it; an event older only than its own
 *    partition's earlier one is not (the merge's order by the running
 *    max time per topic).
 *  - test_rejects_assign_hold: rejects go as soon as they are a head; a
 *    task with one topic assigned goes in fetch order; leaving drops the
 *    queue; the hold limit is reported once and resumed below half.
 *  - test_random_interleavings: 6 tasks, events with late (non-monotonic)
 *    times, labels with label times around theirs, both topics as a
 *    backlog: 300 random arrival interleavings (random chunks per
 *    partition, random pops, ends signalled once a partition is all
 *    pushed, random max per pop) give per task exactly the reference
 *    2-way merge by (time, topic) of the two partitions, and the same
 *    sequence every time; nothing is reordered.
 *  - test_copy_fields: what a pop copies into the caller's array (only
 *    the fields of the message's kind, an event's unused fields zeroed)
 *    is, for 2000 random events decoded by rs_event_from_json (0..16
 *    numeric and categorical fields, strings of every length) and for
 *    labels and rejects, field for field the slot that was pushed --
 *    every byte of every string buffer and unused entry included -- over
 *    an output array full of garbage; the order is the push order.
 *  - test_ref_lifetime: rs_imerge_pop_ref lends the slots themselves:
 *    while a batch holds them, slots taken for decoding (a new chunk
 *    included), pushes, a rebalance dropping the batch's task
 *    (rs_imerge_assign off, then on again), a copy pop and a second
 *    pop_ref never hand one of them out or change a byte of them; the
 *    second pop_ref lends other slots; rs_imerge_reclaim gives all of
 *    them back (the next slots taken are exactly those).
 *  - test_random_interleavings also runs every other interleaving with
 *    pop_ref (reclaim at the next pop, as the consumer does), reading each
 *    batch only after the pushes that follow it: the same sequence as the
 *    copy pop.  Both fail when pop_ref frees its slots at the pop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "common/tmerge.h"
#include "ingest/imerge.h"

#define BASE_MS 1767225600000LL

static uint64_t rng_s = 88172645463325252ULL;
static uint64_t rnd(void) {
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return rng_s;
}

/* Push a message of (topic, partition, offset) with time key t. */
static int push(rs_imerge_t *im, int topic, int32_t part, int64_t off,
                int64_t t, int64_t at) {
    rs_msg_t *m = rs_imerge_slot(im);
    memset(m, 0, sizeof(*m));
    m->topic = topic;
    m->partition = part;
    m->offset = off;
    if (topic == RS_MSG_TOPIC_EVENTS) {
        m->kind = RS_MSG_EVENT;
        m->ev.event_time_ms = t;
        snprintf(m->ev.id, sizeof(m->ev.id), "e%d-%lld", (int)part,
                 (long long)off);
    } else {
        m->kind = RS_MSG_LABEL;
        m->lb.label_time_ms = t;
        snprintf(m->lb.event_id, sizeof(m->lb.event_id), "l%d-%lld",
                 (int)part, (long long)off);
    }
    return rs_imerge_push(im, m, at);
}

static void push_reject(rs_imerge_t *im, int topic, int32_t part,
                        int64_t off, int64_t at) {
    rs_msg_t *m = rs_imerge_slot(im);
    memset(m, 0, sizeof(*m));
    m->topic = topic;
    m->partition = part;
    m->offset = off;
    m->kind = RS_MSG_REJECT;
    rs_imerge_push(im, m, at);
}

static int64_t key(const rs_msg_t *m) {
    return m->kind == RS_MSG_EVENT ? m->ev.event_time_ms : m->lb.label_time_ms;
}

static rs_msg_t out[4096];

static void test_order_two_topics(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 1000, NULL, NULL);
    rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, 0, 1);
    rs_imerge_assign(im, RS_MSG_TOPIC_LABELS, 0, 1);
    /* events 10 30 30 50 20(late); labels 5 30 40 60 */
    int64_t et[] = {10, 30, 30, 50, 20}, lt[] = {5, 30, 40, 60};
    for (int i = 0; i < 5; i++) push(im, 0, 0, i, BASE_MS + et[i], 0);
    assert_int_equal(rs_imerge_pop(im, out, 100, 0), 0); /* labels unknown */
    for (int i = 0; i < 4; i++) push(im, 1, 0, i, BASE_MS + lt[i], 0);
    /* events' end unknown, both have heads: goes until one runs dry */
    int n = rs_imerge_pop(im, out, 100, 0);
    rs_imerge_eof(im, 0, 0, 0);
    rs_imerge_eof(im, 1, 0, 0);
    n += rs_imerge_pop(im, out + n, 100 - n, 0);
    assert_int_equal(n, 9);
    /* expected: L5 E10 E30 E30 L30 L40 E50 E20 L60 */
    const int topic[] = {1, 0, 0, 0, 1, 1, 0, 0, 1};
    const int64_t t[] = {5, 10, 30, 30, 30, 40, 50, 20, 60};
    for (int i = 0; i < 9; i++) {
        assert_int_equal(out[i].topic, topic[i]);
        assert_int_equal(key(&out[i]) - BASE_MS, t[i]);
    }
    /* offsets within a topic increase */
    assert_int_equal(out[2].offset, 1);
    assert_int_equal(out[3].offset, 2);
    rs_imerge_stats_t st;
    rs_imerge_stats(im, &st);
    assert_int_equal(st.merged, 9);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.reordered, 0);
    rs_imerge_destroy(im);
}

static void test_hold_until_other_known(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 1000, NULL, NULL);
    for (int p = 0; p < 2; p++) {
        rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, p, 1);
        rs_imerge_assign(im, RS_MSG_TOPIC_LABELS, p, 1);
    }
    for (int i = 0; i < 3; i++) push(im, 0, 0, i, BASE_MS + i, 0);
    assert_int_equal(rs_imerge_pop(im, out, 100, 0), 0);
    assert_int_equal(rs_imerge_held(im, 0, 0), 3);
    /* task 1: both ends known -> goes; task 0 still held */
    push(im, 0, 1, 0, BASE_MS, 0);
    rs_imerge_eof(im, 1, 1, 0);
    assert_int_equal(rs_imerge_pop(im, out, 100, 0), 1);
    assert_int_equal(out[0].partition, 1);
    assert_int_equal(rs_imerge_held(im, 0, 0), 3);
    /* a label (time 1) on task 0: E0, then L1 vs E1: event first, then
     * L1 before E2; E2 waits: labels empty and not at their end */
    push(im, 1, 0, 0, BASE_MS + 1, 0);
    int n = rs_imerge_pop(im, out, 100, 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].topic, 0);
    assert_int_equal(out[1].topic, 0);
    assert_int_equal(key(&out[1]) - BASE_MS, 1);
    assert_int_equal(out[2].topic, 1);
    assert_int_equal(rs_imerge_pop(im, out, 100, 0), 0);
    rs_imerge_eof(im, 1, 0, 0);
    assert_int_equal(rs_imerge_pop(im, out, 100, 0), 1);
    assert_int_equal(key(&out[0]) - BASE_MS, 2);
    rs_imerge_destroy(im);
}

static int wm_calls, wm_topic, wm_part, wm_answer;
static int64_t wm_off;
static int wm_cb(void *opaque, int topic, int32_t part, int64_t next) {
    (void)opaque;
    wm_calls++;
    wm_topic = topic;
    wm_part = part;
    wm_off = next;
    return wm_answer;
}

static void test_watermark_release(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 1000, wm_cb, NULL);
    rs_imerge_assign(im, 0, 3, 1);
    rs_imerge_assign(im, 1, 3, 1);
    /* no message yet on labels/3: its next offset is unknown, no call */
    push(im, 0, 3, 0, BASE_MS + 10, 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 0);
    assert_int_equal(wm_calls, 0);
    /* a label at 5 (offset 7) goes, then labels/3 is empty without EOF */
    push(im, 1, 3, 7, BASE_MS + 5, 0);
    wm_answer = 0;
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 1);
    assert_int_equal(out[0].topic, 1);
    assert_int_equal(wm_calls, 1);
    assert_int_equal(wm_topic, RS_MSG_TOPIC_LABELS);
    assert_int_equal(wm_part, 3);
    assert_int_equal(wm_off, 8);
    assert_int_equal(rs_imerge_held(im, 0, 3), 1);
    wm_answer = 1;
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 1);
    assert_int_equal(out[0].topic, 0);
    /* ... and then events/3, empty, was asked about too (caught up) */
    assert_int_equal(wm_topic, RS_MSG_TOPIC_EVENTS);
    assert_int_equal(wm_off, 1);
    rs_imerge_stats_t st;
    rs_imerge_stats(im, &st);
    assert_int_equal(st.end_checks, 2);
    rs_imerge_destroy(im);
}

static void test_idle_wait(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(100, 1000, NULL, NULL);
    rs_imerge_assign(im, 0, 0, 1);
    rs_imerge_assign(im, 1, 0, 1);
    rs_imerge_eof(im, 1, 0, 0);
    push(im, 0, 0, 0, BASE_MS + 50, 1000);
    assert_int_equal(rs_imerge_pop(im, out, 10, 1050), 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 1099), 0);
    /* a label older than the event arrives within the wait: first */
    push(im, 1, 0, 0, BASE_MS + 40, 1099);
    rs_imerge_eof(im, 1, 0, 1099);
    assert_int_equal(rs_imerge_pop(im, out, 10, 1099), 1);
    assert_int_equal(out[0].topic, 1);
    /* the event: labels at its end since 1099 -> waits until 1199 */
    assert_int_equal(rs_imerge_pop(im, out, 10, 1150), 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 1199), 1);
    assert_int_equal(out[0].topic, 0);
    /* an older label arriving after the merge went on: reordered */
    push(im, 1, 0, 1, BASE_MS + 45, 1300);
    rs_imerge_eof(im, 0, 0, 1300);
    assert_int_equal(rs_imerge_pop(im, out, 10, 1400), 1);
    rs_imerge_stats_t st;
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 1);
    assert_int_equal(st.reorder_behind_ms, 5);
    rs_imerge_destroy(im);
}

/* Push a message of (topic, part) arrived at `at`, its topic at its end
 * from then (a live stream read up to its end each time). */
static void push_at(rs_imerge_t *im, int topic, int32_t part, int64_t *off,
                    int64_t t, int64_t at) {
    push(im, topic, part, off[topic]++, t, at);
    rs_imerge_eof(im, topic, part, at);
}

static void test_reorder_late(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 1000, NULL, NULL);
    const int32_t P = 3;
    int64_t off[2] = {0, 0};
    rs_imerge_assign(im, 0, P, 1);
    rs_imerge_assign(im, 1, P, 1);
    rs_imerge_eof(im, 0, P, 0);
    rs_imerge_eof(im, 1, P, 0);
    /* events from 1000 ms on, each popped as it arrives; the labels topic
     * is passed as idle from 1000 (and stays so until a label goes) */
    for (int k = 0; k < 40; k++) {
        push_at(im, 0, P, off, BASE_MS + k * 100, 1000 + k * 100);
        assert_int_equal(rs_imerge_pop(im, out, 10, 1000 + k * 100), 1);
    }
    rs_imerge_stats_t st;
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 0);
    assert_int_equal(st.reorder_late_max_ms, 0);
    /* at 4902 a label 1 ms older than the last event (arrived 4900): 2 ms
     * late (not the 3902 ms since the labels topic was first passed as
     * idle) */
    push_at(im, 1, P, off, BASE_MS + 3899, 4902);
    assert_int_equal(rs_imerge_pop(im, out, 10, 4902), 1);
    assert_int_equal(out[0].topic, RS_MSG_TOPIC_LABELS);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 1);
    assert_int_equal(st.reorder_topic, RS_MSG_TOPIC_LABELS);
    assert_int_equal(st.reorder_part, P);
    assert_int_equal(st.reorder_behind_ms, 1);
    assert_int_equal(st.reorder_late_ms, 2);
    assert_int_equal(st.reorder_late_min, 0);
    /* the earliest arrival of those ahead, not the last one's: events
     * 6000 and 6001 arrived at 6000 and 6003; a label older than both at
     * 6010 is 10 ms late */
    push_at(im, 0, P, off, BASE_MS + 6000, 6000);
    push_at(im, 0, P, off, BASE_MS + 6001, 6003);
    assert_int_equal(rs_imerge_pop(im, out, 10, 6003), 2);
    push_at(im, 1, P, off, BASE_MS + 5999, 6010);
    assert_int_equal(rs_imerge_pop(im, out, 10, 6010), 1);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 2);
    assert_int_equal(st.reorder_late_ms, 10);
    /* handed out later but arrived sooner: label 7001 arrived at 6990,
     * goes after event 7000 (arrived 7000); an event older than both at
     * 7010 (the events topic was passed as idle for the label) is 20 ms
     * late */
    push_at(im, 1, P, off, BASE_MS + 7001, 6990);
    push_at(im, 0, P, off, BASE_MS + 7000, 7000);
    assert_int_equal(rs_imerge_pop(im, out, 10, 7000), 2);
    assert_int_equal(out[0].topic, RS_MSG_TOPIC_EVENTS);
    push_at(im, 0, P, off, BASE_MS + 6999, 7010);
    assert_int_equal(rs_imerge_pop(im, out, 10, 7010), 1);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 3);
    assert_int_equal(st.reorder_topic, RS_MSG_TOPIC_EVENTS);
    assert_int_equal(st.reorder_late_ms, 20);
    assert_int_equal(st.reorder_late_max_ms, 20);
    /* by the wait that would have merged them in order: 2 ms late needs
     * 4 ms (the next power of 2 above), 10 ms 16, 20 ms 32 */
    uint64_t sum = 0;
    for (int b = 0; b < RS_TMERGE_LATE_BUCKETS; b++) sum += st.reorder_late[b];
    assert_int_equal(sum, 3);
    assert_int_equal(st.reorder_late[2], 1);
    assert_int_equal(st.reorder_late[4], 1);
    assert_int_equal(st.reorder_late[5], 1);
    char adv[256];
    rs_tmerge_late_advice("topics.max_task_idle", st.reorder_late,
                          st.reordered, adv, sizeof(adv));
    assert_string_equal(adv, "topics.max_task_idle 16ms: 66.6 %, 32ms: all");
    /* more newer messages ahead of it than the merge remembers (one per
     * distinct arrival): a lower bound, counted as not known */
    for (int k = 0; k < RS_TMERGE_LATE + 10; k++) {
        push_at(im, 0, P, off, BASE_MS + 8000 + k, 8000 + k);
        assert_int_equal(rs_imerge_pop(im, out, 10, 8000 + k), 1);
    }
    push_at(im, 1, P, off, BASE_MS + 7999, 9000);
    assert_int_equal(rs_imerge_pop(im, out, 10, 9000), 1);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 4);
    assert_int_equal(st.reorder_late_min, 1);
    assert_int_equal(st.reorder_late_ms, 9000 - (8000 + 10));
    assert_int_equal(st.reorder_late_max_ms, 9000 - (8000 + 10));
    assert_int_equal(st.reorder_late[RS_TMERGE_LATE_BUCKETS - 1], 1);
    rs_tmerge_late_advice("topics.max_task_idle", st.reorder_late,
                          st.reordered, adv, sizeof(adv));
    assert_string_equal(adv, "topics.max_task_idle 16ms: 50.0 %, 32ms: 75.0 "
                             "%; 1 later than 16384 ms or by more than the "
                             "merge remembers");
    /* with a wait of late_ms + 1 the same arrivals go in order: the label
     * 1 ms older than the last event, 2 ms after it, goes first */
    rs_imerge_t *w = rs_imerge_new(3, 1000, NULL, NULL);
    int64_t off2[2] = {0, 0};
    rs_imerge_assign(w, 0, P, 1);
    rs_imerge_assign(w, 1, P, 1);
    rs_imerge_eof(w, 1, P, 0);
    push_at(w, 0, P, off2, BASE_MS + 3900, 4900);
    assert_int_equal(rs_imerge_pop(w, out, 10, 4902), 0);
    push_at(w, 1, P, off2, BASE_MS + 3899, 4902);
    assert_int_equal(rs_imerge_pop(w, out, 10, 4902), 1);
    assert_int_equal(out[0].topic, RS_MSG_TOPIC_LABELS);
    assert_int_equal(rs_imerge_pop(w, out, 10, 4905), 1);
    rs_imerge_stats(w, &st);
    assert_int_equal(st.reordered, 0);
    rs_imerge_destroy(w);
    rs_imerge_destroy(im);
}

/* A late batch and the merge's order when a topic has late messages of
 * its own.  Counted as reordered: every message handed out after a
 * message of the other topic that the merge, had everything been there,
 * would have handed out after it -- the merge by heads hands a topic's
 * messages out in its own order, so in the order of their running max
 * time (then topic).  So every message of a late batch that is older
 * than what went ahead is counted, not only the first; the other topic's
 * own late message does not hide one; and a topic's own late message
 * (older than its own earlier ones, not than the other topic's) is not
 * counted. */
static void test_reorder_batch(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 1000, NULL, NULL);
    const int32_t P = 2;
    int64_t off[2] = {0, 0};
    rs_imerge_assign(im, 0, P, 1);
    rs_imerge_assign(im, 1, P, 1);
    rs_imerge_eof(im, 0, P, 0);
    rs_imerge_eof(im, 1, P, 0);
    for (int k = 0; k < 40; k++) {
        push_at(im, 0, P, off, BASE_MS + k * 100, 1000 + k * 100);
        assert_int_equal(rs_imerge_pop(im, out, 10, 1000 + k * 100), 1);
    }
    /* three labels read together at 4902, all older than event 3900
     * (read at 4900, handed out): all three are reordered, each 2 ms
     * late (needs a wait of 4 ms) */
    push_at(im, 1, P, off, BASE_MS + 3850, 4902);
    push_at(im, 1, P, off, BASE_MS + 3870, 4902);
    push_at(im, 1, P, off, BASE_MS + 3899, 4902);
    assert_int_equal(rs_imerge_pop(im, out, 10, 4902), 3);
    rs_imerge_stats_t st;
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 3);
    assert_int_equal(st.reorder_late[2], 3);
    assert_int_equal(st.reorder_topic, RS_MSG_TOPIC_LABELS);
    assert_int_equal(st.reorder_behind_ms, 1);
    assert_int_equal(st.reorder_late_ms, 2);
    /* the batch's next label, newer than every event: in order */
    push_at(im, 1, P, off, BASE_MS + 3950, 4903);
    assert_int_equal(rs_imerge_pop(im, out, 10, 4903), 1);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 3);
    /* events 5000, then a late one of 4500 (its partition's order): a
     * label of 4800 read after both goes before event 5000 when all are
     * there -- reordered, 200 ms behind, though newer than the last
     * event handed out */
    push_at(im, 0, P, off, BASE_MS + 5000, 5000);
    push_at(im, 0, P, off, BASE_MS + 4500, 5001);
    assert_int_equal(rs_imerge_pop(im, out, 10, 5001), 2);
    push_at(im, 1, P, off, BASE_MS + 4800, 5010);
    assert_int_equal(rs_imerge_pop(im, out, 10, 5010), 1);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 4);
    assert_int_equal(st.reorder_behind_ms, 200);
    assert_int_equal(st.reorder_late_ms, 10);
    /* event 6000 handed out, then a label of 5500 (reordered); then a
     * late event of 5400 (older than the label, but its own partition
     * had 6000 before it: after the label in any case) is not */
    push_at(im, 0, P, off, BASE_MS + 6000, 6000);
    assert_int_equal(rs_imerge_pop(im, out, 10, 6000), 1);
    push_at(im, 1, P, off, BASE_MS + 5500, 6005);
    assert_int_equal(rs_imerge_pop(im, out, 10, 6005), 1);
    push_at(im, 0, P, off, BASE_MS + 5400, 6010);
    assert_int_equal(rs_imerge_pop(im, out, 10, 6010), 1);
    rs_imerge_stats(im, &st);
    assert_int_equal(st.reordered, 5);
    assert_int_equal(st.reorder_topic, RS_MSG_TOPIC_LABELS);
    assert_int_equal(st.reorder_behind_ms, 500);
    rs_imerge_destroy(im);
}

/* rs_tmerge_log_step, the reorder log both merges keep: the first
 * reorder warns at once, later ones wait for the period, a summary counts
 * and advises only what came since the last line, and nothing new means
 * no line. */
static void test_tmerge_log_step(void **state) {
    (void)state;
    rs_tmerge_log_t lg;
    memset(&lg, 0, sizeof(lg));
    uint64_t late[RS_TMERGE_LATE_BUCKETS] = {0};
    char adv[256] = "";
    uint64_t n = 0;
    int64_t secs = 0;
    const int64_t every = 60000000; /* 60 s */
    assert_int_equal(rs_tmerge_log_step(&lg, late, 0, 1000, every, "k", adv,
                                        sizeof(adv), &n, &secs), 0);
    late[2] = 1; /* one reorder, 2-4 ms late */
    assert_int_equal(rs_tmerge_log_step(&lg, late, 1, 1000, every, "k", adv,
                                        sizeof(adv), &n, &secs), 1);
    late[2] = 2;
    late[5] = 1; /* two more, within the period: no line */
    assert_int_equal(rs_tmerge_log_step(&lg, late, 3, 1000 + every - 1, every,
                                        "k", adv, sizeof(adv), &n, &secs), 0);
    /* the period is over: the two since the warning, 90 s after it */
    assert_int_equal(rs_tmerge_log_step(&lg, late, 3, 1000 + 90000000, every,
                                        "k", adv, sizeof(adv), &n, &secs), 2);
    assert_int_equal(n, 2);
    assert_int_equal(secs, 90);
    assert_string_equal(adv, "k 4ms: 50.0 %, 32ms: all");
    /* nothing new after the period: no line */
    assert_int_equal(rs_tmerge_log_step(&lg, late, 3, 1000 + 200000000,
                                        every, "k", adv, sizeof(adv), &n,
                                        &secs), 0);
}

static void test_rejects_assign_hold(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 8, NULL, NULL);
    rs_imerge_assign(im, 0, 0, 1);
    rs_imerge_assign(im, 1, 0, 1);
    /* a reject at the head goes though labels/0 is unknown */
    push_reject(im, 0, 0, 0, 0);
    push(im, 0, 0, 1, BASE_MS, 0);
    push_reject(im, 0, 0, 2, 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 1);
    assert_int_equal(out[0].kind, RS_MSG_REJECT);
    assert_int_equal(out[0].offset, 0);
    rs_imerge_eof(im, 1, 0, 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 2);
    assert_int_equal(out[0].offset, 1);
    assert_int_equal(out[1].kind, RS_MSG_REJECT);
    /* one topic assigned (labels/5 does not exist): fetch order */
    rs_imerge_assign(im, 0, 5, 1);
    push(im, 0, 5, 0, BASE_MS + 9, 0);
    push(im, 0, 5, 1, BASE_MS + 1, 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 2);
    assert_int_equal(out[0].offset, 0);
    /* leaving drops what waits */
    for (int i = 0; i < 3; i++) push(im, 0, 2, i, BASE_MS + i, 0);
    assert_int_equal(rs_imerge_held(im, 0, 2), 3);
    rs_imerge_assign(im, 0, 2, 0);
    assert_int_equal(rs_imerge_held(im, 0, 2), 0);
    assert_int_equal(rs_imerge_pop(im, out, 10, 0), 0);
    /* hold limit 8: reported once; resumed once at or below 4 */
    rs_imerge_assign(im, 0, 1, 1);
    rs_imerge_assign(im, 1, 1, 1);
    int over = 0;
    for (int i = 0; i < 12; i++) over += push(im, 0, 1, i, BASE_MS + i, 0);
    assert_int_equal(over, 1);
    int resumed = 0;
    rs_imerge_resume(im, 0, (rs_imerge_resume_cb_t *)NULL, NULL);
    push(im, 1, 1, 0, BASE_MS + 7, 0); /* E0..E7 first (tie: event) */
    assert_int_equal(rs_imerge_pop(im, out, 8, 0), 8);
    assert_int_equal(out[7].topic, 0);
    rs_imerge_resume(im, 0, NULL, NULL); /* 4 held: resumed, no callback */
    for (int i = 0; i < 12; i++) resumed += push(im, 0, 1, 12 + i, BASE_MS + 8, 0);
    assert_int_equal(resumed, 1); /* reported again after the resume */
    rs_imerge_stats_t st;
    rs_imerge_stats(im, &st);
    assert_int_equal(st.paused, 2);
    rs_imerge_destroy(im);
}

/* ---------------------------------------------- random interleavings */

#define NT 6
#define NE 400
#define NL 60

typedef struct {
    int64_t t;
    int topic;
    int64_t off;
} ref_t;

static int64_t et[NT][NE], lt[NT][NL];
static ref_t ref[NT][NE + NL], got[NT][NE + NL];
static int nref[NT], ngot[NT];

static void make_input(void) {
    for (int p = 0; p < NT; p++) {
        int64_t t = BASE_MS;
        for (int i = 0; i < NE; i++) {
            t += (int64_t)(rnd() % 20);
            /* 1 in 8 is late: up to 100 ms before the partition's time */
            et[p][i] = rnd() % 8 ? t : t - (int64_t)(rnd() % 100);
        }
        int64_t l = BASE_MS;
        for (int i = 0; i < NL; i++) {
            l += (int64_t)(rnd() % 140);
            lt[p][i] = l - l % 10; /* a coarse grid: ties with events */
        }
        /* the reference: 2-way merge by (time, topic), partition order */
        int a = 0, b = 0;
        nref[p] = 0;
        while (a < NE || b < NL) {
            int take_e = b >= NL || (a < NE && et[p][a] <= lt[p][b]);
            if (take_e) ref[p][nref[p]++] = (ref_t){et[p][a], 0, a}, a++;
            else ref[p][nref[p]++] = (ref_t){lt[p][b], 1, b}, b++;
        }
    }
}

static void test_random_interleavings(void **state) {
    (void)state;
    make_input();
    uint64_t total_blocked = 0;
    for (int run = 0; run < 300; run++) {
        rs_imerge_t *im = rs_imerge_new(0, 1u << 20, NULL, NULL);
        int pos[NT][2];
        memset(pos, 0, sizeof(pos));
        memset(ngot, 0, sizeof(ngot));
        for (int p = 0; p < NT; p++) {
            rs_imerge_assign(im, 0, p, 1);
            rs_imerge_assign(im, 1, p, 1);
        }
        int left = NT * (NE + NL);
        int64_t clock = 0;
        static const rs_msg_t *held[64];
        int nheld = 0;
        int done = 0;
        while (done < NT * (NE + NL)) {
            int r = (int)(rnd() % 4);
            if (r < 3 && left > 0) {
                /* a fetch: a random chunk of a random partition */
                int p = (int)(rnd() % NT), tp = (int)(rnd() % 2);
                int lim = tp ? NL : NE;
                int k = (int)(rnd() % 50) + 1;
                for (; k > 0 && pos[p][tp] < lim; k--, pos[p][tp]++, left--)
                    push(im, tp, p, pos[p][tp],
                         tp ? lt[p][pos[p][tp]] : et[p][pos[p][tp]], clock);
                if (pos[p][tp] == lim) rs_imerge_eof(im, tp, p, clock);
            } else if (run % 2) {
                /* pop_ref: the previous batch is read only now, after
                 * the pushes since it (a slot reused meanwhile would
                 * carry another message), then given back */
                for (int i = 0; i < nheld; i++) {
                    int p = held[i]->partition;
                    got[p][ngot[p]++] = (ref_t){key(held[i]), held[i]->topic,
                                                held[i]->offset};
                }
                rs_imerge_reclaim(im);
                int max = (int)(rnd() % 64) + 1;
                nheld = rs_imerge_pop_ref(im, held, max, clock);
                assert_int_equal(rs_imerge_lent(im), nheld);
                if (!nheld) total_blocked++;
                done += nheld;
            } else {
                int max = (int)(rnd() % 64) + 1;
                int n = rs_imerge_pop(im, out, max, clock);
                if (!n) total_blocked++;
                for (int i = 0; i < n; i++) {
                    int p = out[i].partition;
                    got[p][ngot[p]++] =
                        (ref_t){key(&out[i]), out[i].topic, out[i].offset};
                }
                done += n;
            }
            clock += (int64_t)(rnd() % 3);
        }
        for (int i = 0; i < nheld; i++) { /* the last batch */
            int p = held[i]->partition;
            got[p][ngot[p]++] =
                (ref_t){key(held[i]), held[i]->topic, held[i]->offset};
        }
        rs_imerge_reclaim(im);
        assert_int_equal(rs_imerge_lent(im), 0);
        for (int p = 0; p < NT; p++) {
            assert_int_equal(ngot[p], nref[p]);
            for (int i = 0; i < nref[p]; i++) {
                assert_int_equal(got[p][i].topic, ref[p][i].topic);
                assert_int_equal(got[p][i].off, ref[p][i].off);
                assert_int_equal(got[p][i].t, ref[p][i].t);
            }
        }
        rs_imerge_stats_t st;
        rs_imerge_stats(im, &st);
        assert_int_equal(st.reordered, 0);
        assert_int_equal(st.held, 0);
        rs_imerge_destroy(im);
    }
    assert_true(total_blocked > 100); /* the merge did hold back */
}

/* The core alone: idle wait counted from the later of the head's arrival
 * and the other input's end; blocked names the lowest unknown input. */
/* Field for field (every byte of the buffers, padding aside). */
static void assert_msg_same(const rs_msg_t *a, const rs_msg_t *b) {
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->partition, b->partition);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->topic, b->topic);
    assert_int_equal(a->produced_ms, b->produced_ms);
    assert_int_equal(a->received_us, b->received_us);
    assert_int_equal(a->replay, b->replay);
    if (a->kind == RS_MSG_REJECT) {
        assert_memory_equal(a->reason, b->reason, sizeof(a->reason));
        return;
    }
    assert_int_equal(a->reason[0], '\0');
    assert_int_equal(b->reason[0], '\0');
    if (a->kind == RS_MSG_LABEL) {
        assert_memory_equal(a->lb.event_id, b->lb.event_id,
                            sizeof(a->lb.event_id));
        assert_memory_equal(a->lb.entity_id, b->lb.entity_id,
                            sizeof(a->lb.entity_id));
        assert_memory_equal(&a->lb.value, &b->lb.value, sizeof(double));
        assert_int_equal(a->lb.label_time_ms, b->lb.label_time_ms);
        return;
    }
    const rs_event_t *x = &a->ev, *y = &b->ev;
    assert_memory_equal(x, y, offsetof(rs_event_t, event_time_ms));
    assert_int_equal(x->event_time_ms, y->event_time_ms);
    assert_memory_equal(&x->amount, &y->amount, sizeof(double));
    assert_int_equal(x->n_numeric, y->n_numeric);
    for (int k = 0; k < RS_MAX_NUMERIC; k++) {
        assert_memory_equal(x->numeric[k].name, y->numeric[k].name,
                            sizeof(x->numeric[k].name));
        assert_memory_equal(&x->numeric[k].value, &y->numeric[k].value,
                            sizeof(double));
    }
    assert_int_equal(x->n_categ, y->n_categ);
    assert_memory_equal(x->categ, y->categ, sizeof(x->categ));
}

static void rnd_str(char *dst, size_t max) {
    size_t n = 1 + rnd() % (max - 1);
    for (size_t i = 0; i < n; i++) dst[i] = (char)('a' + rnd() % 26);
    dst[n] = '\0';
}

static void test_copy_fields(void **state) {
    (void)state;
    enum { N = 2000 };
    rs_imerge_t *im = rs_imerge_new(0, 1u << 20, NULL, NULL);
    /* partition 0: events only, 1: labels only (fetch order), 2: both */
    rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, 0, 1);
    rs_imerge_assign(im, RS_MSG_TOPIC_LABELS, 1, 1);
    rs_msg_t *ref = calloc(N, sizeof(*ref));
    rs_msg_t *out = malloc(N * sizeof(*out));
    static char js[16384];
    char es[160];
    int nev = 0;
    for (int i = 0; i < N; i++) {
        rs_msg_t *m = rs_imerge_slot(im);
        memset(m, 0x5A, sizeof(*m)); /* a slot used before */
        int what = (int)(rnd() % 10);
        m->partition = what == 9 ? 1 : 0;
        m->topic = what == 9 ? RS_MSG_TOPIC_LABELS : RS_MSG_TOPIC_EVENTS;
        m->offset = i;
        m->produced_ms = (int64_t)rnd() % 1000000;
        m->received_us = (int64_t)rnd() % 1000000;
        m->replay = (int)(rnd() % 2);
        m->reason[0] = '\0';
        if (what == 9) {
            char id[RS_ID_MAX], ent[RS_ID_MAX];
            rnd_str(id, sizeof(id));
            rnd_str(ent, sizeof(ent));
            snprintf(js, sizeof(js), "{\"event_id\":\"%s\",\"entity_id\":"
                     "\"%s\",\"value\":%d,\"label_time_ms\":%lld}", id, ent,
                     (int)(rnd() % 2), BASE_MS + (long long)(rnd() % 100000));
            assert_int_equal(rs_label_from_json(js, strlen(js), &m->lb, es,
                                                sizeof(es)), RS_OK);
            m->kind = RS_MSG_LABEL;
        } else if (what == 8) {
            m->kind = RS_MSG_REJECT;
            snprintf(m->reason, sizeof(m->reason), "bad %d", i);
        } else {
            char id[RS_ID_MAX], ent[RS_ID_MAX], cp[RS_ID_MAX],
                ty[RS_TYPE_MAX];
            rnd_str(id, sizeof(id));
            rnd_str(ent, sizeof(ent));
            rnd_str(cp, sizeof(cp));
            rnd_str(ty, sizeof(ty));
            int nn = (int)(rnd() % (RS_MAX_NUMERIC + 1));
            int nc = (int)(rnd() % (RS_MAX_CATEG + 1));
            int o = snprintf(js, sizeof(js), "{\"id\":\"%s\",\"type\":\"%s\","
                             "\"entity_id\":\"%s\",\"counterparty_id\":\"%s\","
                             "\"event_time_ms\":%lld,\"amount\":%d.%02d,"
                             "\"numeric_fields\":[", id, ty, ent, cp,
                             BASE_MS + (long long)(rnd() % 100000),
                             (int)(rnd() % 1000), (int)(rnd() % 100));
            for (int k = 0; k < nn; k++) {
                char nm[RS_NAME_MAX - 2]; /* + up to 2 digits */
                rnd_str(nm, sizeof(nm));
                o += snprintf(js + o, sizeof(js) - (size_t)o,
                              "%s{\"name\":\"%s%d\",\"value\":%d.5}",
                              k ? "," : "", nm, k,
                              (int)(rnd() % 1000) - 500);
            }
            o += snprintf(js + o, sizeof(js) - (size_t)o,
                          "],\"categorical_fields\":[");
            for (int k = 0; k < nc; k++) {
                char nm[RS_NAME_MAX - 2], v[RS_CATVAL_MAX];
                rnd_str(nm, sizeof(nm));
                rnd_str(v, sizeof(v));
                o += snprintf(js + o, sizeof(js) - (size_t)o,
                              "%s{\"name\":\"%s%d\",\"value\":\"%s\"}",
                              k ? "," : "", nm, k, v);
            }
            snprintf(js + o, sizeof(js) - (size_t)o, "]}");
            rs_err_t err = rs_event_from_json(js, strlen(js), &m->ev, es,
                                              sizeof(es));
            if (err != RS_OK) fail_msg("%s: %s", js, es);
            m->kind = RS_MSG_EVENT;
            nev++;
        }
        ref[i] = *m;
        assert_int_equal(rs_imerge_push(im, m, 0), 0);
    }
    assert_true(nev > N / 2);
    memset(out, 0xA5, N * sizeof(*out)); /* garbage: a batch array in use */
    int n = 0, k;
    while (n < N && (k = rs_imerge_pop(im, out + n, 1 + (int)(rnd() % 300),
                                       0)) > 0)
        n += k;
    assert_int_equal(n, N);
    /* per partition, push order; across partitions, every message once */
    int64_t next[2] = {-1, -1};
    for (int i = 0; i < N; i++) {
        int p = out[i].partition;
        assert_true(p == 0 || p == 1);
        assert_true(out[i].offset > next[p]);
        next[p] = out[i].offset;
        assert_msg_same(&out[i], &ref[out[i].offset]);
    }
    free(ref);
    free(out);
    rs_imerge_destroy(im);
}

static int in_set(const rs_msg_t *const *set, int n, const void *p) {
    for (int i = 0; i < n; i++)
        if ((const void *)set[i] == p) return 1;
    return 0;
}

static void test_ref_lifetime(void **state) {
    (void)state;
    rs_imerge_t *im = rs_imerge_new(0, 1u << 20, NULL, NULL);
    /* task 0: events and labels (merged); task 1: events only (FIFO) */
    rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, 0, 1);
    rs_imerge_assign(im, RS_MSG_TOPIC_LABELS, 0, 1);
    rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, 1, 1);
    for (int i = 0; i < 30; i++) {
        push(im, RS_MSG_TOPIC_EVENTS, 0, i, BASE_MS + 10 * i, 0);
        push(im, RS_MSG_TOPIC_LABELS, 0, i, BASE_MS + 10 * i + 5, 0);
        push(im, RS_MSG_TOPIC_EVENTS, 1, i, BASE_MS + i, 0);
    }
    rs_imerge_eof(im, RS_MSG_TOPIC_EVENTS, 0, 0);
    rs_imerge_eof(im, RS_MSG_TOPIC_LABELS, 0, 0);
    /* the batch: 40 messages of both tasks (two pops, round robin), held */
    enum { NA = 40 };
    const rs_msg_t *a[NA];
    static rs_msg_t snap[NA];
    assert_int_equal(rs_imerge_pop_ref(im, a, NA / 2, 0), NA / 2);
    assert_int_equal(rs_imerge_pop_ref(im, a + NA / 2, NA / 2, 0), NA / 2);
    assert_int_equal(rs_imerge_lent(im), NA);
    int parts[2] = {0, 0};
    for (int i = 0; i < NA; i++) {
        snap[i] = *a[i];
        parts[a[i]->partition]++;
        for (int j = 0; j < i; j++) assert_ptr_not_equal(a[i], a[j]);
    }
    assert_true(parts[0] > 0 && parts[1] > 0);
    /* while it is held: slots taken and decoded into (more than a chunk:
     * the pool grows), some pushed, some given back */
    static rs_msg_t *taken[600];
    for (int k = 0; k < 600; k++) {
        taken[k] = rs_imerge_slot(im);
        assert_false(in_set(a, NA, taken[k]));
        memset(taken[k], 0xEE, sizeof(*taken[k]));
    }
    for (int k = 0; k < 600; k++) {
        if (k % 3) {
            rs_imerge_unslot(im, taken[k]);
            continue;
        }
        rs_msg_t *m = taken[k];
        memset(m, 0, sizeof(*m));
        m->kind = RS_MSG_EVENT;
        m->topic = RS_MSG_TOPIC_EVENTS;
        m->partition = 1;
        m->offset = 1000 + k;
        m->ev.event_time_ms = BASE_MS + 1000 + k;
        rs_imerge_push(im, m, 0);
    }
    /* a rebalance while the batch is held: task 0 leaves (its queued
     * messages dropped, their slots free) and comes back */
    rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, 0, 0);
    rs_imerge_assign(im, RS_MSG_TOPIC_LABELS, 0, 0);
    rs_imerge_assign(im, RS_MSG_TOPIC_EVENTS, 0, 1);
    rs_imerge_assign(im, RS_MSG_TOPIC_LABELS, 0, 1);
    for (int k = 0; k < 300; k++) {
        taken[k] = rs_imerge_slot(im);
        assert_false(in_set(a, NA, taken[k]));
        memset(taken[k], 0xDD, sizeof(*taken[k]));
    }
    for (int k = 0; k < 300; k++) rs_imerge_unslot(im, taken[k]);
    /* more pops in the same poll: a copy, then other slots lent */
    rs_msg_t c[5];
    assert_int_equal(rs_imerge_pop(im, c, 5, 0), 5);
    for (int k = 0; k < 5; k++) assert_int_equal(c[k].partition, 1);
    enum { NB = 20 };
    const rs_msg_t *b[NB];
    assert_int_equal(rs_imerge_pop_ref(im, b, NB, 0), NB);
    assert_int_equal(rs_imerge_lent(im), NA + NB);
    for (int i = 0; i < NB; i++) assert_false(in_set(a, NA, b[i]));
    for (int k = 0; k < 300; k++) {
        taken[k] = rs_imerge_slot(im);
        assert_false(in_set(a, NA, taken[k]));
        assert_false(in_set(b, NB, taken[k]));
    }
    for (int k = 0; k < 300; k++) rs_imerge_unslot(im, taken[k]);
    /* not a byte of the held batch changed */
    for (int i = 0; i < NA; i++)
        assert_memory_equal(a[i], &snap[i], sizeof(snap[i]));
    /* the next poll: all given back, the next slots taken are those */
    rs_imerge_reclaim(im);
    assert_int_equal(rs_imerge_lent(im), 0);
    int back = 0;
    for (int k = 0; k < NA + NB; k++) {
        taken[k] = rs_imerge_slot(im);
        back += in_set(a, NA, taken[k]) || in_set(b, NB, taken[k]);
    }
    assert_int_equal(back, NA + NB);
    for (int k = 0; k < NA + NB; k++) rs_imerge_unslot(im, taken[k]);
    rs_imerge_destroy(im);
}

static void test_tmerge_core(void **state) {
    (void)state;
    rs_tmerge_t *m = rs_tmerge_new(3, 10);
    rs_tmerge_head(m, 1, 5, 100);
    assert_int_equal(rs_tmerge_next(m, 100), -1);
    assert_int_equal(rs_tmerge_blocked(m), 0);
    rs_tmerge_eof(m, 0, 1, 100);
    rs_tmerge_eof(m, 2, 1, 105);
    assert_int_equal(rs_tmerge_next(m, 109), -1);
    assert_int_equal(rs_tmerge_blocked(m), 0);
    assert_int_equal(rs_tmerge_next(m, 115), 1);
    rs_tmerge_take_t tk;
    rs_tmerge_take(m, 1, &tk);
    assert_int_equal(tk.key_t, 5);
    assert_int_equal(tk.reordered, 0);
    rs_tmerge_empty(m, 1);
    assert_int_equal(rs_tmerge_frontier(m), 5);
    assert_int_equal(rs_tmerge_next(m, 120), -1);
    assert_int_equal(rs_tmerge_blocked(m), 1); /* not at its end */
    rs_tmerge_destroy(m);
}

int main(void) {
    rs_log_set_level(RS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_two_topics),
        cmocka_unit_test(test_hold_until_other_known),
        cmocka_unit_test(test_watermark_release),
        cmocka_unit_test(test_idle_wait),
        cmocka_unit_test(test_reorder_late),
        cmocka_unit_test(test_reorder_batch),
        cmocka_unit_test(test_tmerge_log_step),
        cmocka_unit_test(test_rejects_assign_hold),
        cmocka_unit_test(test_random_interleavings),
        cmocka_unit_test(test_copy_fields),
        cmocka_unit_test(test_ref_lifetime),
        cmocka_unit_test(test_tmerge_core),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
