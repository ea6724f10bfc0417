/* test_cpstage.c -- the counterparty stage's merge core (scoring/
 * cpstage_int.h) and the feature engine's scopes it relies on.
 *
 *  - test_scope_split: an engine in ENTITY scope and one in SHARED scope,
 *    fed the same sequence, together give every feature of an engine in
 *    ALL scope bit for bit (the vector is filled by two stages).
 *  - test_interleavings: a random stream (4 events partitions keyed by
 *    entity, 3 labels partitions, late events inside partitions,
 *    duplicates, fraud and genuine labels) pushed into two cores in two
 *    different random interleavings of the partitions, with merges
 *    called at random moments: every event's shared features are equal
 *    bit for bit, and equal to an ALL-scope engine fed the canonical
 *    merge order by hand (the definition: k-way by (time, topic,
 *    partition), partition order kept, duplicates skipped); the label-
 *    aware counterparty features are not all zero (labels reached them).
 *  - test_two_readers: the stage's reader and a feed (some partitions,
 *    random start, random resets, ahead or behind), offsets with holes:
 *    equal bit for bit to the stage's reader alone, each message pushed
 *    once (rs_cpm_push_from).
 *  - test_blocked_idle_reorder: the merge waits for a partition that has
 *    neither a message nor reached its end (lookups say "not yet"); once
 *    it is at its end it goes on idle_wait after the head's arrival; an
 *    older message arriving there later than that is merged and counted
 *    as reordered; one arriving within idle_wait on a partition quiet
 *    for long is merged in order.
 *  - test_reorder_batch: every message of a late batch older than what
 *    was merged ahead is counted as reordered, not only the first; a
 *    message older than another partition's merged one is counted though
 *    newer than that partition's own late message merged after it.
 *  - test_quiet_busy_hwm: with idle_wait 0 and no PARTITION_EOF after
 *    the start, the consumer's cached high watermark (rs_cpm_hwm) marks a
 *    partition at its end once every offset below it was pushed: a quiet
 *    partition's newer event waits while a busy partition has messages
 *    below its watermark not pushed yet (fetched in pieces), then has the
 *    features of the canonical order; on a live stream each partition at
 *    its watermark right after its push lets the next event go without
 *    waiting for a PARTITION_EOF; ends counted by cause.
 *  - test_two_partitions_one_fetch: what the stage's consumer does with a
 *    fetch response that holds an older event of one partition and a
 *    newer one of another (produced in that order), both partitions at
 *    their end by the watermark before: it may hand out the newer one
 *    first, with the other's cached watermark not moved yet.  idle_wait 0
 *    merges it at once and the older one out of order (counted, with the
 *    partition and how far behind; the newer event's features are not the
 *    canonical ones); idle_wait > 0 holds the newer one until the older
 *    one, arrived within idle_wait, is merged first: the canonical order.
 *  - test_find_trim_dedup: a lookup by (partition, offset) with the wrong
 *    id, below a trim, or of a duplicate is "not found"; the buffer
 *    counts.
 *  - test_merge_order_reference: the core's heap merge against a plain
 *    reference (a transcription of the former full scan of every
 *    partition per merged message) on 40 random runs with 2..96
 *    partitions, times on a coarse grid (ties across partitions and
 *    topics), invalid messages, partitions at their end / idle with
 *    idle_wait 0, 3 or 20 ms, random arrival and step clocks, random step
 *    sizes: the same
 *    messages merged in the same order (seen through the release
 *    callback), and after every step the same return value, counters
 *    (rejected, reordered and the last reorder's fields, buffered,
 *    frontier, blocked topic and partition) and caught_up.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "common/tmerge.h"
#include "features/features.h"
#include "proto/proto.h"
#include "scoring/cpstage_int.h"
#include "scoring/dedup.h"

#define BASE_MS 1767225600000LL
#define NEP 4 /* events partitions */
#define NLP 3 /* labels partitions */

static uint64_t rng_s = 88172645463325252ULL;
static uint64_t rnd(void) {
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return rng_s;
}

/* A message of the generated stream. */
typedef struct msg_s {
    int topic, part;
    int64_t offset, t;
    char payload[512];
    size_t len;
    int ev_idx;           /* events: index into evs, else -1            */
} msg_t;

typedef struct stream_s {
    msg_t *m;             /* every message, per partition in order       */
    int n;
} stream_t;

static void conf_features(rs_features_conf_t *fc) {
    rs_features_conf_init(fc);
    fc->max_keys = 4096;
    fc->max_counterparties = 4096;
    fc->label_index = 65536;
    fc->label_maturity = 86400000LL;      /* 1d */
    /* an extra non-entity key: the categorical field mcc */
    rs_features_spec_t *s = &fc->extra[fc->nextra++];
    memset(s, 0, sizeof(*s));
    rs_strlcpy(s->key, "mcc", sizeof(s->key));
    rs_strlcpy(s->value, "amount", sizeof(s->value));
    rs_strlcpy(s->field, "counterparty", sizeof(s->field));
    s->window_ms = 6 * 3600000LL;
    s->aggs = (1u << RS_FEATURES_AGG_COUNT) | (1u << RS_FEATURES_AGG_MEAN) |
              (1u << RS_FEATURES_AGG_STD) | (1u << RS_FEATURES_AGG_FRAUD_COUNT);
}

static int ent_part(int e) { return (int)((uint32_t)(e * 2654435761u) >> 7) % NEP; }

/* Generate: nev events over ~6 days; events partition by entity; labels
 * (about 15 %, a third fraud) by entity into NLP partitions, each labels
 * partition in label-time order; some events late inside their
 * partition, some duplicated. */
static void gen_stream(stream_t *s, int nev) {
    s->m = calloc((size_t)nev * 3, sizeof(msg_t));
    s->n = 0;
    int64_t off[2][8] = {{0}};
    /* labels first collected, then sorted per partition by time */
    msg_t *labs = calloc((size_t)nev, sizeof(msg_t));
    int nl = 0;
    for (int i = 0; i < nev; i++) {
        int e = (int)(rnd() % 60), cp = (int)(rnd() % 9), mcc = (int)(rnd() % 4);
        int64_t t = BASE_MS + (int64_t)i * 500000 / 3 + (int64_t)(rnd() % 60000);
        if (rnd() % 50 == 0) t -= (int64_t)(rnd() % 7200000); /* late */
        if (rnd() % 10 == 0) /* on a 10-minute grid: ties across partitions */
            t = BASE_MS + (t - BASE_MS) / 600000 * 600000;
        int amount = (int)(rnd() % 90000);
        msg_t *m = &s->m[s->n++];
        m->topic = 0;
        m->part = ent_part(e);
        m->offset = off[0][m->part]++;
        m->t = t;
        m->ev_idx = i;
        m->len = (size_t)snprintf(
            m->payload, sizeof(m->payload),
            "{\"id\":\"ev-%d\",\"type\":\"card_tx\",\"entity_id\":\"card-%d\","
            "\"counterparty_id\":\"m-%d\",\"event_time_ms\":%lld,"
            "\"amount\":%d.%02d,\"categorical_fields\":{\"mcc\":\"%d\"}}",
            i, e, cp, (long long)t, amount / 100, amount % 100, 5400 + mcc);
        if (i > 10 && rnd() % 80 == 0) { /* a duplicate of the previous event */
            msg_t *d = &s->m[s->n++];
            *d = *m;
            d->offset = off[0][d->part]++;
            d->ev_idx = -2;
        }
        if (rnd() % 7 == 0) {
            msg_t *l = &labs[nl++];
            l->topic = 1;
            l->part = e % NLP;
            l->t = t + 3600000 + (int64_t)(rnd() % (3 * 86400000LL));
            l->ev_idx = -1;
            int fraud = cp < 3 ? rnd() % 2 == 0 : rnd() % 6 == 0;
            l->len = (size_t)snprintf(
                l->payload, sizeof(l->payload),
                "{\"event_id\":\"ev-%d\",\"entity_id\":\"card-%d\","
                "\"value\":%d,\"label_time_ms\":%lld}",
                i, e, fraud, (long long)l->t);
        }
    }
    /* labels: per partition by time (stable), then appended */
    for (int p = 0; p < NLP; p++) {
        for (;;) {
            int best = -1;
            for (int k = 0; k < nl; k++)
                if (labs[k].part == p && labs[k].ev_idx == -1 &&
                    (best < 0 || labs[k].t < labs[best].t))
                    best = k;
            if (best < 0) break;
            msg_t *m = &s->m[s->n++];
            *m = labs[best];
            m->offset = off[1][p]++;
            labs[best].ev_idx = -3; /* taken */
        }
    }
    free(labs);
}

/* Messages of (topic, part) in order: indexes into s->m. */
static int part_msgs(const stream_t *s, int topic, int part, int *out) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (s->m[i].topic == topic && s->m[i].part == part) out[n++] = i;
    return n;
}

static rs_cpm_t *new_core(const rs_features_conf_t *fc, int64_t idle_ms,
                          void (*release)(void *)) {
    char errstr[256];
    rs_cpm_conf_t c = {.features = fc,
                       .release = release,
                       .nparts = {NEP, NLP},
                       .dedup_window_ms = 86400000LL,
                       .dedup_max = 65536,
                       .idle_wait_ms = idle_ms};
    rs_cpm_t *m = rs_cpm_new(&c, errstr, sizeof(errstr));
    if (!m) fail_msg("rs_cpm_new: %s", errstr);
    return m;
}

/* Feed the whole stream in a random interleaving; merges at random. */
static void feed_random(rs_cpm_t *m, const stream_t *s, uint64_t seed) {
    uint64_t save = rng_s;
    rng_s = seed;
    int *idx[2][8], n[2][8], pos[2][8];
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) {
            idx[t][p] = calloc((size_t)s->n, sizeof(int));
            n[t][p] = part_msgs(s, t, p, idx[t][p]);
            pos[t][p] = 0;
        }
    for (;;) {
        int left = 0;
        for (int t = 0; t < 2; t++)
            for (int p = 0; p < (t ? NLP : NEP); p++)
                left += n[t][p] - pos[t][p];
        if (!left) break;
        int t = (int)(rnd() % 2), p = (int)(rnd() % (t ? NLP : NEP));
        int k = 1 + (int)(rnd() % 40);
        while (k-- && pos[t][p] < n[t][p]) {
            const msg_t *x = &s->m[idx[t][p][pos[t][p]++]];
            rs_cpm_push(m, x->topic, x->part, x->offset, x->payload, x->len,
                        NULL);
        }
        if (rnd() % 3 == 0) rs_cpm_step(m, 0, 1 + (int)(rnd() % 100));
    }
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) {
            rs_cpm_eof(m, t, p, 0);
            free(idx[t][p]);
        }
    while (rs_cpm_step(m, 0, 1000) > 0) {}
    rng_s = save;
}

/* ------------------------------------------------------------- tests */

static void test_scope_split(void **state) {
    (void)state;
    char errstr[256];
    rs_features_conf_t fc;
    conf_features(&fc);
    rs_features_t *all = rs_features_new(&fc, errstr, sizeof(errstr));
    rs_features_t *ent = rs_features_new(&fc, errstr, sizeof(errstr));
    rs_features_t *sh = rs_features_new(&fc, errstr, sizeof(errstr));
    assert_non_null(all);
    assert_non_null(ent);
    assert_non_null(sh);
    rs_features_set_scope(ent, RS_FEATURES_SCOPE_ENTITY);
    rs_features_set_scope(sh, RS_FEATURES_SCOPE_SHARED);
    int dim = rs_features_dim(all), nshared = 0;
    for (int i = 0; i < dim; i++) nshared += rs_features_is_shared(all, i);
    assert_true(nshared >= 10 && nshared < dim); /* 9 cp + 4 mcc */
    stream_t s;
    gen_stream(&s, 1500);
    float *a = calloc((size_t)dim, 4), *b = calloc((size_t)dim, 4);
    rs_event_t ev;
    rs_label_t lb;
    int nev = 0;
    for (int i = 0; i < s.n; i++) { /* generation order, labels at the end */
        const msg_t *m = &s.m[i];
        if (m->topic == 0) {
            assert_int_equal(rs_event_decode(RS_FORMAT_JSON, m->payload, m->len,
                                             &ev, errstr, sizeof(errstr)),
                             RS_OK);
            assert_int_equal(rs_features_process(all, &ev, a, NULL), RS_OK);
            for (int k = 0; k < dim; k++) b[k] = NAN;
            assert_int_equal(rs_features_process(sh, &ev, b, NULL), RS_OK);
            for (int k = 0; k < dim; k++) /* entity ones left as they were */
                if (!rs_features_is_shared(all, k)) assert_true(isnan(b[k]));
            assert_int_equal(rs_features_process(ent, &ev, b, NULL), RS_OK);
            assert_memory_equal(a, b, (size_t)dim * 4);
            nev++;
        } else {
            assert_int_equal(rs_label_decode(RS_FORMAT_JSON, m->payload, m->len,
                                             &lb, errstr, sizeof(errstr)),
                             RS_OK);
            rs_features_label(all, &lb);
            rs_features_label(ent, &lb);
            rs_features_label(sh, &lb);
        }
    }
    assert_true(nev > 1500);
    free(a);
    free(b);
    free(s.m);
    rs_features_destroy(all);
    rs_features_destroy(ent);
    rs_features_destroy(sh);
}

static void test_interleavings(void **state) {
    (void)state;
    char errstr[256];
    rs_features_conf_t fc;
    conf_features(&fc);
    stream_t s;
    gen_stream(&s, 3000);
    rs_cpm_t *m1 = new_core(&fc, 0, NULL), *m2 = new_core(&fc, 0, NULL);
    feed_random(m1, &s, 12345);
    feed_random(m2, &s, 987654321);
    rs_cpm_stats_t st1, st2;
    rs_cpm_stats(m1, &st1);
    rs_cpm_stats(m2, &st2);
    assert_int_equal(st1.reordered, 0);
    assert_int_equal(st2.reordered, 0);
    assert_int_equal(st1.events, st2.events);
    assert_true(st1.duplicates > 0);
    assert_int_equal(st1.duplicates, st2.duplicates);
    assert_true(rs_cpm_caught_up(m1));

    /* The definition, by hand: k-way merge by (time, topic, partition),
     * each partition's order kept, duplicates skipped, into an ALL-scope
     * engine. */
    rs_features_t *ref = rs_features_new(&fc, errstr, sizeof(errstr));
    assert_non_null(ref);
    rs_dedup_t *dd = rs_dedup_new(65536, 86400000LL, errstr, sizeof(errstr));
    int dim = rs_features_dim(ref);
    int *idx[2][8], n[2][8], pos[2][8];
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) {
            idx[t][p] = calloc((size_t)s.n, sizeof(int));
            n[t][p] = part_msgs(&s, t, p, idx[t][p]);
            pos[t][p] = 0;
        }
    float *x = calloc((size_t)dim, 4), *y = calloc((size_t)dim, 4);
    rs_event_t ev;
    rs_label_t lb;
    int checked = 0, label_nonzero = 0, shared_nonzero = 0;
    int fr_idx = -1;
    for (int i = 0; i < dim; i++)
        if (!strcmp(rs_features_name(ref, i), "cp_fraud_count_30d")) fr_idx = i;
    assert_true(fr_idx >= 0);
    for (;;) {
        int bt = -1, bp = -1;
        int64_t best = 0;
        for (int t = 0; t < 2; t++)
            for (int p = 0; p < (t ? NLP : NEP); p++) {
                if (pos[t][p] == n[t][p]) continue;
                const msg_t *h = &s.m[idx[t][p][pos[t][p]]];
                if (bt < 0 || h->t < best) { bt = t; bp = p; best = h->t; }
            }
        if (bt < 0) break;
        const msg_t *h = &s.m[idx[bt][bp][pos[bt][bp]++]];
        if (bt == 1) {
            assert_int_equal(rs_label_decode(RS_FORMAT_JSON, h->payload, h->len,
                                             &lb, errstr, sizeof(errstr)),
                             RS_OK);
            rs_features_label(ref, &lb);
            continue;
        }
        assert_int_equal(rs_event_decode(RS_FORMAT_JSON, h->payload, h->len,
                                         &ev, errstr, sizeof(errstr)),
                         RS_OK);
        uint64_t hd;
        uint64_t idh = rs_hash_str(ev.id);
        if (rs_dedup_check(dd, rs_dedup_key(ev.entity_id, ev.id),
                           ev.event_time_ms, &hd)) {
            assert_int_equal(rs_cpm_find(m1, h->part, h->offset, idh, y),
                             RS_ERR_NOTFOUND);
            continue;
        }
        assert_int_equal(rs_features_process(ref, &ev, x, NULL), RS_OK);
        memset(y, 0xff, (size_t)dim * 4);
        assert_int_equal(rs_cpm_find(m1, h->part, h->offset, idh, y), RS_OK);
        float *z = calloc((size_t)dim, 4);
        memset(z, 0xff, (size_t)dim * 4);
        assert_int_equal(rs_cpm_find(m2, h->part, h->offset, idh, z), RS_OK);
        for (int k = 0; k < dim; k++) {
            if (!rs_features_is_shared(ref, k)) continue;
            if (memcmp(&x[k], &y[k], 4) || memcmp(&y[k], &z[k], 4))
                fail_msg("event %s feature %s: reference %.9g, core 1 %.9g, "
                         "core 2 %.9g", ev.id, rs_features_name(ref, k),
                         (double)x[k], (double)y[k], (double)z[k]);
            if (x[k] != 0) shared_nonzero++;
        }
        if (x[fr_idx] > 0) label_nonzero++;
        free(z);
        checked++;
    }
    printf("test_interleavings: %d events checked bit for bit (%llu labels "
           "merged, %llu duplicates), %d with a counterparty fraud count > 0\n",
           checked, (unsigned long long)st1.labels,
           (unsigned long long)st1.duplicates, label_nonzero);
    assert_int_equal((uint64_t)checked, st1.events);
    assert_true(label_nonzero > 100);
    assert_true(shared_nonzero > 1000);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) free(idx[t][p]);
    free(x);
    free(y);
    free(s.m);
    rs_dedup_destroy(dd);
    rs_features_destroy(ref);
    rs_cpm_destroy(m1);
    rs_cpm_destroy(m2);
}

/* Two readers of the same partitions (rs_cpm_push_from): the stage's
 * consumer reads every partition from the beginning; a feed reads some of
 * them ("owned") from random positions, is reset at random (a seek or a
 * rebalance: rs_cpm_src_reset, then a new random position, back or
 * forward), and is ahead or behind at random; the offsets have holes
 * (transaction markers).  Merges at random moments.  Every event's shared
 * features equal bit for bit those of a core fed by the stage's reader
 * alone, with the same counters: each message was pushed exactly once, in
 * its partition's order.  Both readers' duplicates and the feed's
 * messages ahead of the pushed end were dropped (counted), and the feed
 * pushed a good part. */
static void test_two_readers(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    stream_t s;
    gen_stream(&s, 3000);
    uint64_t save = rng_s;
    rng_s = 424242;
    { /* holes in the offsets: each partition's offsets gain gaps */
        int64_t shift[2][8] = {{0}};
        for (int i = 0; i < s.n; i++) {
            msg_t *x = &s.m[i];
            if (rnd() % 5 == 0) shift[x->topic][x->part] += 1 + (int64_t)(rnd() % 3);
            x->offset += shift[x->topic][x->part];
        }
    }
    rs_cpm_t *m1 = new_core(&fc, 0, NULL), *m2 = new_core(&fc, 0, NULL);
    feed_random(m1, &s, 777);

    int *idx[2][8], n[2][8], spos[2][8], fpos[2][8], owned[2][8];
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) {
            idx[t][p] = calloc((size_t)s.n, sizeof(int));
            n[t][p] = part_msgs(&s, t, p, idx[t][p]);
            spos[t][p] = 0;
            owned[t][p] = t == 0 ? p != 3 : p != 0;
            fpos[t][p] = (int)(rnd() % (uint64_t)(n[t][p] + 1));
        }
    for (int round = 0;; round++) {
        int left = 0;
        for (int t = 0; t < 2; t++)
            for (int p = 0; p < (t ? NLP : NEP); p++) left += n[t][p] - spos[t][p];
        if (!left) break;
        int t = (int)(rnd() % 2), p = (int)(rnd() % (t ? NLP : NEP));
        int k = 1 + (int)(rnd() % 40);
        if (owned[t][p] && rnd() % 3 != 0) { /* the feed, mostly */
            while (k-- && fpos[t][p] < n[t][p]) {
                const msg_t *x = &s.m[idx[t][p][fpos[t][p]++]];
                rs_cpm_push_from(m2, RS_CPM_SRC_FEED, x->topic, x->part,
                                 x->offset, x->payload, x->len, NULL);
            }
        } else {
            /* the stage's reader, slower on owned partitions */
            if (owned[t][p]) k = 1 + k / 8;
            while (k-- && spos[t][p] < n[t][p]) {
                const msg_t *x = &s.m[idx[t][p][spos[t][p]++]];
                rs_cpm_push_from(m2, RS_CPM_SRC_STAGE, x->topic, x->part,
                                 x->offset, x->payload, x->len, NULL);
            }
        }
        if (rnd() % 97 == 0) { /* the feed's consumer moved: anywhere */
            rs_cpm_src_reset(m2, RS_CPM_SRC_FEED);
            for (int tt = 0; tt < 2; tt++)
                for (int pp = 0; pp < (tt ? NLP : NEP); pp++)
                    fpos[tt][pp] = (int)(rnd() % (uint64_t)(n[tt][pp] + 1));
        }
        if (rnd() % 3 == 0) rs_cpm_step(m2, 0, 1 + (int)(rnd() % 100));
    }
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) rs_cpm_eof(m2, t, p, 0);
    while (rs_cpm_step(m2, 0, 1000) > 0) {}

    rs_cpm_stats_t st1, st2;
    rs_cpm_stats(m1, &st1);
    rs_cpm_stats(m2, &st2);
    printf("test_two_readers: pushed %llu by the stage's reader (%llu "
           "duplicates), %llu by the feed (%llu duplicates, %llu ahead)\n",
           (unsigned long long)st2.src_pushed[0],
           (unsigned long long)st2.src_dup[0],
           (unsigned long long)st2.src_pushed[1],
           (unsigned long long)st2.src_dup[1],
           (unsigned long long)st2.src_gap[1]);
    assert_int_equal(st2.src_pushed[0] + st2.src_pushed[1], (uint64_t)s.n);
    assert_true(st2.src_pushed[1] > (uint64_t)s.n / 4);
    assert_true(st2.src_dup[0] > 0 && st2.src_dup[1] > 0 && st2.src_gap[1] > 0);
    assert_int_equal(st2.src_gap[0], 0);
    assert_int_equal(st1.events, st2.events);
    assert_int_equal(st1.labels, st2.labels);
    assert_int_equal(st1.duplicates, st2.duplicates);
    assert_int_equal(st2.reordered, 0);
    assert_true(rs_cpm_caught_up(m2));
    int dim = 0;
    {
        char errstr[256];
        rs_features_t *f = rs_features_new(&fc, errstr, sizeof(errstr));
        dim = rs_features_dim(f);
        rs_features_destroy(f);
    }
    float *x = calloc((size_t)dim, 4), *y = calloc((size_t)dim, 4);
    rs_event_t ev;
    char errstr[256];
    int checked = 0;
    for (int i = 0; i < s.n; i++) {
        const msg_t *h = &s.m[i];
        if (h->topic) continue;
        assert_int_equal(rs_event_decode(RS_FORMAT_JSON, h->payload, h->len,
                                         &ev, errstr, sizeof(errstr)), RS_OK);
        uint64_t idh = rs_hash_str(ev.id);
        memset(x, 0xff, (size_t)dim * 4);
        memset(y, 0xff, (size_t)dim * 4);
        rs_err_t e1 = rs_cpm_find(m1, h->part, h->offset, idh, x);
        rs_err_t e2 = rs_cpm_find(m2, h->part, h->offset, idh, y);
        assert_int_equal(e1, e2);
        assert_memory_equal(x, y, (size_t)dim * 4);
        checked += e1 == RS_OK;
    }
    assert_int_equal((uint64_t)checked, st1.events);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < (t ? NLP : NEP); p++) free(idx[t][p]);
    free(x);
    free(y);
    free(s.m);
    rs_cpm_destroy(m1);
    rs_cpm_destroy(m2);
    rng_s = save;
}

/* The core keeps a payload until it releases its handle: malloc'd here,
 * freed by release (rs_cpm_conf_t.release = free). */
static int push_ev(rs_cpm_t *m, int part, int64_t off, int id, int64_t t) {
    char *b = malloc(256);
    int len = snprintf(b, 256,
                       "{\"id\":\"x-%d\",\"type\":\"card_tx\",\"entity_id\":"
                       "\"c-%d\",\"counterparty_id\":\"m-1\",\"event_time_ms\":"
                       "%lld,\"amount\":10}", id, id, (long long)t);
    return rs_cpm_push(m, 0, part, off, b, (size_t)len, b);
}

static void test_blocked_idle_reorder(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    rs_cpm_t *m = new_core(&fc, 50, free);
    float *y = calloc(512, 4);
    rs_cpm_arrival(m, 1000);
    push_ev(m, 0, 0, 1, BASE_MS + 1000);
    push_ev(m, 1, 0, 2, BASE_MS + 2000);
    /* partitions 2, 3 and the labels: nothing, not at their end */
    assert_int_equal(rs_cpm_step(m, 1000, 100), 0);
    assert_int_equal(rs_cpm_find(m, 0, 0, rs_hash_str("x-1"), y), RS_ERR_AGAIN);
    rs_cpm_stats_t st;
    rs_cpm_stats(m, &st);
    assert_int_equal(st.blocked_topic, 0);
    assert_int_equal(st.blocked_part, 2);
    for (int p = 2; p < NEP; p++) rs_cpm_eof(m, 0, p, 1000);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(m, 1, p, 1000);
    /* at their end: they hold x-1 back until idle_wait (50 ms) after it
     * arrived, then the merge goes on without them; partition 1 (not at
     * its end) holds it once x-1 is merged */
    assert_int_equal(rs_cpm_step(m, 1020, 100), 0);
    assert_int_equal(rs_cpm_step(m, 1049, 100), 0);
    assert_int_equal(rs_cpm_step(m, 1050, 100), 1);
    assert_int_equal(rs_cpm_find(m, 0, 0, rs_hash_str("x-1"), y), RS_OK);
    assert_int_equal(rs_cpm_find(m, 1, 0, rs_hash_str("x-2"), y), RS_ERR_AGAIN);
    /* partition 0 reached its end after x-2 arrived: idle_wait from then */
    rs_cpm_eof(m, 0, 0, 1100);
    assert_int_equal(rs_cpm_step(m, 1100, 100), 0);
    assert_int_equal(rs_cpm_step(m, 1150, 100), 1);
    assert_int_equal(rs_cpm_find(m, 1, 0, rs_hash_str("x-2"), y), RS_OK);
    assert_false(rs_cpm_caught_up(m)); /* partition 1 not at its end yet */
    rs_cpm_eof(m, 0, 1, 1150);
    assert_int_equal(rs_cpm_step(m, 1200, 100), 0);
    assert_true(rs_cpm_caught_up(m));
    /* partition 3 was passed as idle: an older event reaching it more than
     * idle_wait after x-2 is merged, but out of the canonical order */
    rs_cpm_arrival(m, 1300);
    push_ev(m, 3, 0, 3, BASE_MS + 1500);
    rs_cpm_eof(m, 0, 3, 1300); /* and at its end again after it */
    assert_int_equal(rs_cpm_step(m, 1300, 100), 0);
    assert_int_equal(rs_cpm_step(m, 1350, 100), 1);
    rs_cpm_stats_t st2;
    rs_cpm_stats(m, &st2);
    assert_int_equal(st2.reordered, 1);
    assert_int_equal(st2.events, 3);
    assert_int_equal(st2.reorder_topic, 0);
    assert_int_equal(st2.reorder_part, 3);
    assert_int_equal(st2.reorder_behind_ms, 500);
    /* a newer one on an idle partition: in order */
    rs_cpm_arrival(m, 1400);
    push_ev(m, 2, 0, 4, BASE_MS + 9000);
    assert_int_equal(rs_cpm_step(m, 1400, 100), 0); /* the others hold it */
    assert_int_equal(rs_cpm_step(m, 1450, 100), 1);
    rs_cpm_stats(m, &st2);
    assert_int_equal(st2.reordered, 1);
    /* partitions quiet for much longer than idle_wait are not passed for
     * good: every message waits idle_wait from its arrival, so an older
     * one on its way to a quiet partition that comes within idle_wait is
     * merged in order (the wait used to date from the first merge a
     * partition held back: a partition quiet for longer was passed at
     * once, and the first message on it was merged out of order --
     * tests/e2e/scaleout3.sh, a labels partition at the start of a live
     * stream) */
    rs_cpm_eof(m, 0, 2, 1460);
    rs_cpm_arrival(m, 5000);
    push_ev(m, 1, 1, 6, BASE_MS + 10000);
    rs_cpm_eof(m, 0, 1, 5000);
    assert_int_equal(rs_cpm_step(m, 5000, 100), 0); /* the others hold it */
    assert_int_equal(rs_cpm_step(m, 5040, 100), 0);
    rs_cpm_arrival(m, 5045);
    push_ev(m, 0, 1, 7, BASE_MS + 9500); /* it was on its way */
    rs_cpm_eof(m, 0, 0, 5045);
    assert_int_equal(rs_cpm_step(m, 5045, 100), 0); /* x-7: until 5095 */
    assert_int_equal(rs_cpm_step(m, 5094, 100), 0);
    assert_int_equal(rs_cpm_step(m, 5095, 100), 2); /* x-7, then x-6 */
    rs_cpm_stats(m, &st2);
    assert_int_equal(st2.reordered, 1);
    assert_int_equal(st2.events, 6);
    /* idle_wait 0: a partition at its end never holds a merge back */
    rs_cpm_t *z = new_core(&fc, 0, free);
    for (int p = 1; p < NEP; p++) rs_cpm_eof(z, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(z, 1, p, 0);
    push_ev(z, 0, 0, 5, BASE_MS);
    assert_int_equal(rs_cpm_step(z, 0, 100), 1);
    rs_cpm_destroy(z);
    free(y);
    rs_cpm_destroy(m);
}

/* How late a reordered message was (the idle_wait that would have merged
 * it in order), with explicit clocks: from the earliest arrival of the
 * messages merged ahead of it, not from the first time the merge passed
 * its partition as idle (which a quiet partition stays for long: the
 * figure was seconds for a message a few ms late). */
static void push_at(rs_cpm_t *m, int part, int64_t *off, int id, int64_t t,
                    int64_t at) {
    rs_cpm_arrival(m, at);
    push_ev(m, part, off[part]++, id, t);
    rs_cpm_eof(m, 0, part, at);
}

static void test_reorder_late(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    rs_cpm_t *m = new_core(&fc, 0, free);
    int64_t off[NEP] = {0};
    for (int p = 0; p < NEP; p++) rs_cpm_eof(m, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(m, 1, p, 0);
    /* partition 0 busy from 1000 ms on; 1-3 passed as idle from then */
    for (int k = 0; k < 40; k++) {
        push_at(m, 0, off, k, BASE_MS + k * 100, 1000 + k * 100);
        assert_int_equal(rs_cpm_step(m, 1000 + k * 100, 100), 1);
    }
    rs_cpm_stats_t st;
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 0);
    /* at 4902 a message 1 ms older than the last one (arrived 4900)
     * reaches partition 1: 2 ms late, not 3902 ms (since 1000) */
    push_at(m, 1, off, 100, BASE_MS + 3899, 4902);
    assert_int_equal(rs_cpm_step(m, 4902, 100), 1);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 1);
    assert_int_equal(st.reorder_part, 1);
    assert_int_equal(st.reorder_behind_ms, 1);
    assert_int_equal(st.reorder_late_ms, 2);
    assert_int_equal(st.reorder_late_min, 0);
    /* the earliest arrival of those ahead, not the last one's: 6000 and
     * 6001 arrived at 6000 and 6003; one older than both at 6010 */
    push_at(m, 0, off, 101, BASE_MS + 6000, 6000);
    push_at(m, 0, off, 102, BASE_MS + 6001, 6003);
    assert_int_equal(rs_cpm_step(m, 6003, 100), 2);
    push_at(m, 2, off, 103, BASE_MS + 5999, 6010);
    assert_int_equal(rs_cpm_step(m, 6010, 100), 1);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 2);
    assert_int_equal(st.reorder_late_ms, 10);
    /* merged later but arrived sooner: 7001 arrived at 6990, merged after
     * 7000 (arrived 7000); one older than both at 7010 is 20 ms late */
    push_at(m, 3, off, 104, BASE_MS + 7001, 6990);
    push_at(m, 0, off, 105, BASE_MS + 7000, 7000);
    assert_int_equal(rs_cpm_step(m, 7000, 100), 2);
    push_at(m, 1, off, 106, BASE_MS + 6999, 7010);
    assert_int_equal(rs_cpm_step(m, 7010, 100), 1);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 3);
    assert_int_equal(st.reorder_late_ms, 20);
    assert_int_equal(st.reorder_late_max_ms, 20);
    /* by the idle_wait that would have merged them in order: 2 ms late
     * needs 4 ms (the next power of 2 above), 10 ms 16, 20 ms 32 */
    assert_int_equal(st.reorder_late[2], 1);
    assert_int_equal(st.reorder_late[4], 1);
    assert_int_equal(st.reorder_late[5], 1);
    char adv[256];
    rs_tmerge_late_advice("cpstage.idle_wait", st.reorder_late,
                          st.reordered, adv, sizeof(adv));
    assert_string_equal(adv, "cpstage.idle_wait 16ms: 66.6 %, 32ms: all");
    /* more newer messages ahead of it than the merge remembers (one per
     * distinct arrival): the figure is a lower bound */
    for (int k = 0; k < RS_TMERGE_LATE + 10; k++) {
        push_at(m, 0, off, 200 + k, BASE_MS + 8000 + k, 8000 + k);
        assert_int_equal(rs_cpm_step(m, 8000 + k, 100), 1);
    }
    push_at(m, 2, off, 300, BASE_MS + 7999, 9000);
    assert_int_equal(rs_cpm_step(m, 9000, 100), 1);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 4);
    assert_int_equal(st.reorder_late_min, 1);
    assert_int_equal(st.reorder_late_ms, 9000 - (8000 + 10));
    assert_int_equal(st.reorder_late[RS_TMERGE_LATE_BUCKETS - 1], 1);
    rs_tmerge_late_advice("cpstage.idle_wait", st.reorder_late,
                          st.reordered, adv, sizeof(adv));
    assert_string_equal(adv, "cpstage.idle_wait 16ms: 50.0 %, 32ms: 75.0 %; "
                             "1 later than 16384 ms or by more than the "
                             "merge remembers");
    rs_tmerge_late_advice("cpstage.idle_wait", st.reorder_late, 0, adv,
                          sizeof(adv));
    assert_string_equal(adv, "");
    uint64_t unk[RS_TMERGE_LATE_BUCKETS] = {0};
    unk[RS_TMERGE_LATE_BUCKETS - 1] = 2;
    rs_tmerge_late_advice("cpstage.idle_wait", unk, 2, adv, sizeof(adv));
    assert_string_equal(adv, "2 later than 16384 ms or by more than the "
                             "merge remembers");
    rs_cpm_destroy(m);
}

/* A late batch: every message of it older than what was merged ahead is
 * counted, not only the first (the merge by heads merges a partition's
 * messages in its own order, so in the order of their running max time,
 * then topic and partition: counted is every message merged after one of
 * another partition that order puts after it); the batch's newer one is
 * not; a message older than another partition's merged one is counted
 * though newer than that partition's own late message merged after it. */
static void test_reorder_batch(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    rs_cpm_t *m = new_core(&fc, 0, free);
    int64_t off[NEP] = {0};
    for (int p = 0; p < NEP; p++) rs_cpm_eof(m, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(m, 1, p, 0);
    for (int k = 0; k < 40; k++) {
        push_at(m, 0, off, k, BASE_MS + k * 100, 1000 + k * 100);
        assert_int_equal(rs_cpm_step(m, 1000 + k * 100, 100), 1);
    }
    /* three events read together on partition 1 at 4902, all older than
     * 3900 (read at 4900, merged): all three reordered, 2 ms late each */
    push_at(m, 1, off, 100, BASE_MS + 3850, 4902);
    push_at(m, 1, off, 101, BASE_MS + 3870, 4902);
    push_at(m, 1, off, 102, BASE_MS + 3899, 4902);
    assert_int_equal(rs_cpm_step(m, 4902, 100), 3);
    rs_cpm_stats_t st;
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 3);
    assert_int_equal(st.reorder_late[2], 3);
    assert_int_equal(st.reorder_part, 1);
    assert_int_equal(st.reorder_behind_ms, 1);
    assert_int_equal(st.reorder_late_ms, 2);
    push_at(m, 1, off, 103, BASE_MS + 3950, 4903);
    assert_int_equal(rs_cpm_step(m, 4903, 100), 1);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 3);
    /* partition 0: 5000, then its own late 4500; 4800 on partition 2
     * after both: reordered (behind 5000 by 200) */
    push_at(m, 0, off, 104, BASE_MS + 5000, 5000);
    push_at(m, 0, off, 105, BASE_MS + 4500, 5001);
    assert_int_equal(rs_cpm_step(m, 5001, 100), 2);
    push_at(m, 2, off, 106, BASE_MS + 4800, 5010);
    assert_int_equal(rs_cpm_step(m, 5010, 100), 1);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.reordered, 4);
    assert_int_equal(st.reorder_part, 2);
    assert_int_equal(st.reorder_behind_ms, 200);
    rs_cpm_destroy(m);
}

/* A quiet partition and a busy one with idle_wait 0 (the default) and no
 * PARTITION_EOF after the start: rs_cpm_hwm (the consumer's cached high
 * watermark) says when a partition is at its end. */
static void test_quiet_busy_hwm(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    rs_cpm_t *m = new_core(&fc, 0, free), *ref = new_core(&fc, 0, free);
    float *x = calloc(512, 4), *y = calloc(512, 4);
    for (int p = 0; p < NEP; p++) rs_cpm_eof(m, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(m, 1, p, 0);
    assert_int_equal(rs_cpm_step(m, 0, 100), 0);
    assert_true(rs_cpm_caught_up(m));
    /* (1) the busy partition 0 holds 10 events on the broker (its
     * watermark 10), 5 of them pushed so far (fetched in pieces); the quiet
     * partition 1 one newer event, pushed: it is at its end, and the busy
     * one's 5 go, but the quiet event waits behind the busy partition's
     * other 5 -- data the consumer knows of -- whatever its own watermark
     * says.  A watermark one past what was pushed keeps a partition
     * unknown. */
    for (int i = 0; i < 5; i++) push_ev(m, 0, i, i, BASE_MS + i * 1000LL);
    push_ev(m, 1, 0, 100, BASE_MS + 100000);
    assert_int_equal(rs_cpm_hwm(m, 0, 0, 10, 1), 0);
    assert_int_equal(rs_cpm_hwm(m, 0, 0, 6, 1), 0);
    assert_int_equal(rs_cpm_hwm(m, 0, 1, 1, 1), 1);
    assert_int_equal(rs_cpm_hwm(m, 0, 1, 1, 1), 0); /* already */
    assert_int_equal(rs_cpm_hwm(m, 0, 2, -1001, 1), 0); /* unknown */
    assert_int_equal(rs_cpm_step(m, 1, 100), 5);
    assert_int_equal(rs_cpm_find(m, 1, 0, rs_hash_str("x-100"), x),
                     RS_ERR_AGAIN);
    rs_cpm_stats_t st;
    rs_cpm_stats(m, &st);
    assert_int_equal(st.blocked_topic, 0);
    assert_int_equal(st.blocked_part, 0);
    assert_int_equal(rs_cpm_hwm(m, 0, 0, 10, 1), 0);
    assert_int_equal(rs_cpm_step(m, 1, 100), 0);
    for (int i = 5; i < 10; i++) push_ev(m, 0, i, i, BASE_MS + i * 1000LL);
    assert_int_equal(rs_cpm_step(m, 2, 100), 5); /* partition 0 unknown */
    assert_int_equal(rs_cpm_find(m, 1, 0, rs_hash_str("x-100"), x),
                     RS_ERR_AGAIN);
    assert_int_equal(rs_cpm_hwm(m, 0, 0, 10, 2), 1);
    assert_int_equal(rs_cpm_step(m, 2, 100), 1);
    assert_int_equal(rs_cpm_find(m, 1, 0, rs_hash_str("x-100"), x), RS_OK);
    /* the same features as the canonical order (every event fetched, then
     * PARTITION_EOF everywhere): the quiet event saw all 10 busy ones */
    for (int i = 0; i < 10; i++) push_ev(ref, 0, i, i, BASE_MS + i * 1000LL);
    push_ev(ref, 1, 0, 100, BASE_MS + 100000);
    for (int p = 0; p < NEP; p++) rs_cpm_eof(ref, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(ref, 1, p, 0);
    assert_int_equal(rs_cpm_step(ref, 0, 100), 11);
    memset(y, 0xff, 512 * 4);
    memset(x, 0xff, 512 * 4);
    assert_int_equal(rs_cpm_find(m, 1, 0, rs_hash_str("x-100"), x), RS_OK);
    assert_int_equal(rs_cpm_find(ref, 1, 0, rs_hash_str("x-100"), y), RS_OK);
    assert_memory_equal(x, y, 512 * 4);
    /* (2) a live stream: each partition's watermark reached right after
     * its push lets the next event go without any PARTITION_EOF (what the
     * stage saves: one fetch round trip per partition that had data) */
    push_ev(m, 2, 0, 200, BASE_MS + 200000);
    assert_int_equal(rs_cpm_hwm(m, 0, 2, 1, 3), 1);
    assert_int_equal(rs_cpm_step(m, 3, 100), 1);
    push_ev(m, 0, 10, 300, BASE_MS + 300000);
    assert_int_equal(rs_cpm_step(m, 4, 100), 1); /* its own head goes */
    push_ev(m, 3, 0, 400, BASE_MS + 400000);
    assert_int_equal(rs_cpm_step(m, 4, 100), 0); /* partition 0 unknown */
    assert_int_equal(rs_cpm_find(m, 3, 0, rs_hash_str("x-400"), x),
                     RS_ERR_AGAIN);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.blocked_topic, 0);
    assert_int_equal(st.blocked_part, 0);
    assert_int_equal(rs_cpm_hwm(m, 0, 0, 11, 5), 1);
    assert_int_equal(rs_cpm_step(m, 5, 100), 1);
    assert_int_equal(rs_cpm_find(m, 3, 0, rs_hash_str("x-400"), x), RS_OK);
    /* a PARTITION_EOF after the watermark counts once, not twice */
    rs_cpm_eof(m, 0, 0, 6);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.ends_hwm, 4);
    assert_int_equal(st.ends_eof, NEP + NLP);
    assert_int_equal(st.events, 14);
    free(x);
    free(y);
    rs_cpm_destroy(ref);
    rs_cpm_destroy(m);
}

/* A fetch response holding an older event of partition 0 (x-10, produced
 * first) and a newer one of partition 1 (x-11): librdkafka hands a response
 * out partition by partition in the order of the request, which it rotates,
 * and the stage may poll the first before the second is queued -- with
 * partition 0's cached watermark not moved yet, since that too is set when
 * its part of the response is read (the interleaving test_cpstage_kafka's
 * live events met on a loaded machine).  Nothing in the consumer then shows
 * that partition 0 has data: idle_wait is what covers it (cpstage.h, "Not
 * exact, and counted"; docs/features.md).  Explicit clocks: deterministic. */
static void test_two_partitions_one_fetch(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    float *x = calloc(512, 4), *y = calloc(512, 4);
    /* the canonical order: both read, every partition at its end */
    rs_cpm_t *ref = new_core(&fc, 0, free);
    push_ev(ref, 0, 0, 10, BASE_MS + 600000);
    push_ev(ref, 1, 0, 11, BASE_MS + 700000);
    for (int p = 0; p < NEP; p++) rs_cpm_eof(ref, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(ref, 1, p, 0);
    assert_int_equal(rs_cpm_step(ref, 0, 100), 2);
    const int64_t waits[] = {0, 20};
    for (int w = 0; w < 2; w++) {
        rs_cpm_t *m = new_core(&fc, waits[w], free);
        /* every partition at its end (empty: watermark 0) */
        for (int p = 0; p < NEP; p++)
            assert_int_equal(rs_cpm_hwm(m, 0, p, 0, 0), 1);
        for (int p = 0; p < NLP; p++)
            assert_int_equal(rs_cpm_hwm(m, 1, p, 0, 0), 1);
        assert_int_equal(rs_cpm_step(m, 0, 100), 0);
        assert_true(rs_cpm_caught_up(m));
        /* partition 1's part of the response first; partition 0's cached
         * watermark still says 0: at its end, as far as anyone knows */
        rs_cpm_arrival(m, 1000);
        push_ev(m, 1, 0, 11, BASE_MS + 700000);
        assert_int_equal(rs_cpm_hwm(m, 0, 0, 0, 1000), 0); /* already */
        int n = rs_cpm_step(m, 1000, 100);
        rs_cpm_stats_t st;
        if (!waits[w]) {
            /* idle_wait 0: x-11 goes now, x-10 (queued a moment later)
             * is merged behind it, counted */
            assert_int_equal(n, 1);
            assert_int_equal(rs_cpm_hwm(m, 0, 1, 1, 1000), 1);
            push_ev(m, 0, 0, 10, BASE_MS + 600000);
            assert_int_equal(rs_cpm_step(m, 1000, 100), 1);
            rs_cpm_stats(m, &st);
            assert_int_equal(st.reordered, 1);
            assert_int_equal(st.reorder_topic, 0);
            assert_int_equal(st.reorder_part, 0);
            assert_int_equal(st.reorder_behind_ms, 100000);
            /* x-11 did not see x-10: its features are not the canonical */
            uint64_t h11 = rs_hash_str("x-11");
            assert_int_equal(rs_cpm_find(m, 1, 0, h11, x), RS_OK);
            assert_int_equal(rs_cpm_find(ref, 1, 0, h11, y), RS_OK);
            assert_true(memcmp(x, y, 512 * 4) != 0);
        } else {
            /* idle_wait 20 ms: x-11 waits (partition 0 at its end, but
             * only since before x-11 arrived); x-10 arrives within it
             * and goes first; both go once x-10 has waited its 20 ms */
            assert_int_equal(n, 0);
            assert_int_equal(rs_cpm_step(m, 1019, 100), 0);
            rs_cpm_arrival(m, 1019);
            push_ev(m, 0, 0, 10, BASE_MS + 600000);
            assert_int_equal(rs_cpm_hwm(m, 0, 0, 1, 1019), 1);
            assert_int_equal(rs_cpm_step(m, 1038, 100), 0);
            assert_int_equal(rs_cpm_step(m, 1039, 100), 2);
            rs_cpm_stats(m, &st);
            assert_int_equal(st.reordered, 0);
            memset(x, 0xff, 512 * 4);
            memset(y, 0xff, 512 * 4);
            for (int part = 0; part < 2; part++) {
                const char *id = part ? "x-11" : "x-10";
                uint64_t h = rs_hash_str(id);
                assert_int_equal(rs_cpm_find(m, part, 0, h, x), RS_OK);
                assert_int_equal(rs_cpm_find(ref, part, 0, h, y), RS_OK);
                assert_memory_equal(x, y, 512 * 4);
            }
        }
        assert_int_equal(st.events, 2);
        rs_cpm_destroy(m);
    }
    free(x);
    free(y);
    rs_cpm_destroy(ref);
}

static void test_find_trim_dedup(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    rs_cpm_t *m = new_core(&fc, 0, free);
    float *y = calloc(512, 4);
    for (int p = 1; p < NEP; p++) rs_cpm_eof(m, 0, p, 0);
    for (int p = 0; p < NLP; p++) rs_cpm_eof(m, 1, p, 0);
    for (int i = 0; i < 3000; i++) push_ev(m, 0, i, i, BASE_MS + i * 1000LL);
    push_ev(m, 0, 3000, 7, BASE_MS + 3000 * 1000LL); /* a duplicate of x-7 */
    char *bad = strdup("{not json");
    rs_cpm_push(m, 0, 0, 3001, bad, strlen(bad), bad); /* a reject */
    push_ev(m, 0, 3002, 3002, BASE_MS + 3002 * 1000LL);
    assert_int_equal(rs_cpm_buffered(m, 0, 0), 3003);
    rs_cpm_eof(m, 0, 0, 0);
    int n = 0, k;
    while ((k = rs_cpm_step(m, 0, 97)) > 0) n += k;
    assert_int_equal(n, 3002); /* the reject is skipped, not merged */
    assert_int_equal(rs_cpm_buffered(m, 0, 0), 0);
    rs_cpm_stats_t st;
    rs_cpm_stats(m, &st);
    assert_int_equal(st.events, 3001);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.held, 3001);
    const int *sh = rs_cpm_shared_idx(m);
    assert_int_equal(rs_cpm_find(m, 0, 5, rs_hash_str("x-5"), y), RS_OK);
    assert_int_equal(y[sh[0]], 5.0f); /* cp_count_1h: 5 before it, 1 s apart */
    assert_int_equal(rs_cpm_find(m, 0, 5, rs_hash_str("x-6"), y),
                     RS_ERR_NOTFOUND);                       /* another id */
    assert_int_equal(rs_cpm_find(m, 0, 3000, rs_hash_str("x-7"), y),
                     RS_ERR_NOTFOUND);                       /* duplicate  */
    assert_int_equal(rs_cpm_find(m, 0, 3001, 1, y), RS_ERR_NOTFOUND);
    assert_int_equal(rs_cpm_find(m, 0, 3002, rs_hash_str("x-3002"), y), RS_OK);
    assert_int_equal(rs_cpm_find(m, 0, 3003, 1, y), RS_ERR_AGAIN); /* later */
    assert_int_equal(rs_cpm_find(m, 1, 0, 1, y), RS_ERR_AGAIN);
    rs_cpm_trim(m, 0, 2000);
    rs_cpm_stats(m, &st);
    assert_int_equal(st.held, 1001);
    assert_int_equal(rs_cpm_find(m, 0, 1999, rs_hash_str("x-1999"), y),
                     RS_ERR_NOTFOUND);
    assert_int_equal(rs_cpm_find(m, 0, 2000, rs_hash_str("x-2000"), y), RS_OK);
    free(y);
    rs_cpm_destroy(m);
}

/* ------------------------------------- merge order vs a reference scan */

typedef struct ref_msg_s {
    char payload[256];
    size_t len;
    int id, valid, topic, part;
    int64_t t, at;        /* time key, arrival (rs_cpm_arrival)          */
} ref_msg_t;

typedef struct ref_part_s {
    int *q;               /* message ids, in order                       */
    int qhead, qn;
    int eof, done_once;
    int64_t eof_ms;
    int taken;            /* any message merged from it                  */
    int64_t pm_t;         /* ... the largest time merged from it         */
} ref_part_t;

typedef struct ref_s {
    int np[2];
    ref_part_t *p[2];
    ref_msg_t *msgs;      /* by id                                       */
    int64_t idle_wait;
    uint64_t rejected, reordered, buffered;
    int64_t frontier;
    int blocked_topic, blocked_part;
    int reorder_topic, reorder_part;
    int64_t reorder_behind, reorder_late, reorder_late_max;
    int64_t hi_t;         /* the highest (running max, input) taken in
                           * order                                       */
    int hi_g;
    int64_t *adv_t, *adv_at; /* [nadv] the takes that raised it: time,  */
    int *adv_g, nadv;     /* input, arrival (late: a full scan of them)  */
    uint64_t late_cmp;    /* reorders whose late_ms was compared         */
    int *order;           /* ids merged, in order                        */
    int norder;
} ref_t;

static int *rel_log;      /* ids of the VALID messages the core released */
static int rel_n;
static uint64_t rel_invalid;
static void ref_release(void *h) {
    ref_msg_t *x = h;
    if (x->valid) rel_log[rel_n++] = x->id;
    else rel_invalid++;
}

/* Pop the invalid heads (the core rejects them when it decodes). */
static int ref_head(ref_t *r, ref_part_t *p) {
    while (p->qn) {
        if (r->msgs[p->q[p->qhead]].valid) return 1;
        p->qhead++;
        p->qn--;
        r->buffered--;
        r->rejected++;
    }
    return 0;
}

/* rs_cpm_step as the full scan it was (3 scans per merged message). */
static int ref_step(ref_t *r, int64_t now, int max) {
    int n = 0;
    r->blocked_topic = -1;
    while (n < max) {
        int bt = -1, bp = -1;
        int64_t best = 0;
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < r->np[t]; i++) {
                ref_part_t *p = &r->p[t][i];
                if (!ref_head(r, p)) continue;
                int64_t kt = r->msgs[p->q[p->qhead]].t;
                if (bt < 0 || kt < best) { bt = t; bp = i; best = kt; }
            }
        int blocked = 0;
        int64_t at = bt >= 0 ? r->msgs[r->p[bt][bp].q[r->p[bt][bp].qhead]].at : 0;
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < r->np[t]; i++) {
                ref_part_t *p = &r->p[t][i];
                if (p->qn) continue;
                if (p->eof) {
                    if (bt < 0) { p->done_once = 1; continue; }
                    if (!r->idle_wait ||
                        now - (at > p->eof_ms ? at : p->eof_ms) >= r->idle_wait) {
                        p->done_once = 1;
                        continue;
                    }
                }
                if (!blocked) { r->blocked_topic = t; r->blocked_part = i; }
                blocked = 1;
            }
        if (blocked || bt < 0) return n;
        ref_part_t *p = &r->p[bt][bp];
        int64_t kt = best;
        /* The definition: with every message there the merge hands them
         * out by (running max time of its partition, topic, partition);
         * reordered: merged after one of another partition that this
         * order puts after it (a full scan of every partition's). */
        int g = bt * r->np[0] + bp, og = -1;
        int64_t pm = p->taken && p->pm_t > kt ? p->pm_t : kt, opm = 0;
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < r->np[t]; i++) {
                int gi = t * r->np[0] + i;
                ref_part_t *q = &r->p[t][i];
                if (gi == g || !q->taken) continue;
                if (og < 0 || q->pm_t > opm || (q->pm_t == opm && gi > og)) {
                    og = gi;
                    opm = q->pm_t;
                }
            }
        if (og >= 0 && (opm > pm || (opm == pm && og > g))) {
            r->reordered++;
            r->reorder_topic = bt;
            r->reorder_part = bp;
            r->reorder_behind = opm - kt;
            /* late: its arrival - the earliest arrival of the takes that
             * raised the high mark past it */
            int found = 0;
            int64_t amin = 0, at = r->msgs[p->q[p->qhead]].at;
            for (int k = 0; k < r->nadv; k++)
                if (r->adv_t[k] > pm || (r->adv_t[k] == pm && r->adv_g[k] > g))
                    if (!found++ || r->adv_at[k] < amin) amin = r->adv_at[k];
            r->reorder_late = found && at > amin ? at - amin : 0;
            if (r->reorder_late > r->reorder_late_max)
                r->reorder_late_max = r->reorder_late;
        } else if (!r->nadv || pm > r->hi_t || (pm == r->hi_t && g > r->hi_g)) {
            r->adv_t[r->nadv] = pm;
            r->adv_g[r->nadv] = g;
            r->adv_at[r->nadv++] = r->msgs[p->q[p->qhead]].at;
            r->hi_t = pm;
            r->hi_g = g;
        }
        p->taken = 1;
        p->pm_t = pm;
        r->frontier = kt;
        r->order[r->norder++] = p->q[p->qhead];
        p->qhead++;
        p->qn--;
        r->buffered--;
        n++;
    }
    return n;
}

static void ref_eof(ref_part_t *p, int64_t now) {
    if (!p->eof) p->eof_ms = now;
    p->eof = 1;
}

static int ref_caught_up(const ref_t *r) {
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < r->np[t]; i++)
            if (!r->p[t][i].done_once) return 0;
    return 1;
}

static void ref_compare(ref_t *r, rs_cpm_t *m, int n_ref, int n_core,
                        int run, int op) {
    if (n_ref != n_core)
        fail_msg("run %d op %d: step merged %d, reference %d", run, op, n_core,
                 n_ref);
    rs_cpm_stats_t st;
    rs_cpm_stats(m, &st);
    assert_int_equal(rel_n, r->norder);
    assert_memory_equal(rel_log, r->order, sizeof(int) * (size_t)r->norder);
    assert_int_equal(st.events + st.labels, (uint64_t)r->norder);
    assert_int_equal(st.rejected, r->rejected);
    assert_int_equal(rel_invalid, r->rejected);
    assert_int_equal(st.reordered, r->reordered);
    if (r->reordered) {
        assert_int_equal(st.reorder_topic, r->reorder_topic);
        assert_int_equal(st.reorder_part, r->reorder_part);
        assert_int_equal(st.reorder_behind_ms, r->reorder_behind);
        /* exact unless more were ahead than the core remembers */
        if (!st.reorder_late_min) {
            assert_int_equal(st.reorder_late_ms, r->reorder_late);
            r->late_cmp++;
        } else {
            assert_true(st.reorder_late_ms <= r->reorder_late);
        }
    }
    assert_int_equal(st.buffered, r->buffered);
    assert_int_equal(st.frontier_ms, r->frontier);
    assert_int_equal(st.blocked_topic, r->blocked_topic);
    if (r->blocked_topic >= 0) assert_int_equal(st.blocked_part, r->blocked_part);
    assert_int_equal(rs_cpm_caught_up(m), ref_caught_up(r));
}

static void test_merge_order_reference(void **state) {
    (void)state;
    rs_features_conf_t fc;
    conf_features(&fc);
    uint64_t save = rng_s;
    rng_s = 0x9e3779b97f4a7c15ULL;
    enum { RUNS = 40, OPS = 1500, MAXMSG = 4 * OPS * 6 };
    static const int64_t waits[] = {0, 3, 20};
    uint64_t total_merged = 0, total_reordered = 0, total_blocked = 0;
    uint64_t total_late_cmp = 0;
    for (int run = 0; run < RUNS; run++) {
        ref_t r;
        memset(&r, 0, sizeof(r));
        r.np[0] = 1 + (int)(rnd() % 64);
        r.np[1] = 1 + (int)(rnd() % 32);
        r.idle_wait = waits[rnd() % 3];
        r.msgs = calloc(MAXMSG, sizeof(ref_msg_t));
        r.order = calloc(MAXMSG, sizeof(int));
        r.adv_t = calloc(MAXMSG, sizeof(int64_t));
        r.adv_at = calloc(MAXMSG, sizeof(int64_t));
        r.adv_g = calloc(MAXMSG, sizeof(int));
        r.frontier = INT64_MIN;
        for (int t = 0; t < 2; t++) {
            r.p[t] = calloc((size_t)r.np[t], sizeof(ref_part_t));
            for (int i = 0; i < r.np[t]; i++)
                r.p[t][i].q = calloc(MAXMSG, sizeof(int));
        }
        rel_log = calloc(MAXMSG, sizeof(int));
        rel_n = 0;
        rel_invalid = 0;
        char errstr[256];
        rs_cpm_conf_t c = {.features = &fc,
                           .release = ref_release,
                           .nparts = {r.np[0], r.np[1]},
                           .idle_wait_ms = r.idle_wait};
        rs_cpm_t *m = rs_cpm_new(&c, errstr, sizeof(errstr));
        if (!m) fail_msg("rs_cpm_new: %s", errstr);
        int nmsg = 0;
        int64_t now = 0, *off[2];
        for (int t = 0; t < 2; t++)
            off[t] = calloc((size_t)r.np[t], sizeof(int64_t));
        /* a bias per run: how often partitions reach their end */
        int eof_pct = 5 + (int)(rnd() % 30);
        for (int op = 0; op <= OPS; op++) {
            uint64_t k = rnd() % 100;
            if (op == OPS) { /* the end: every partition at its end */
                for (int t = 0; t < 2; t++)
                    for (int i = 0; i < r.np[t]; i++) {
                        ref_eof(&r.p[t][i], now);
                        rs_cpm_eof(m, t, i, now);
                    }
                for (int guard = 0; guard < 100; guard++) {
                    now += 25; /* past every idle_wait */
                    int nr = ref_step(&r, now, 1 << 20);
                    int nc = rs_cpm_step(m, now, 1 << 20);
                    ref_compare(&r, m, nr, nc, run, op);
                    if (!nr && !r.buffered) break;
                }
                assert_int_equal(r.buffered, 0);
                assert_true(ref_caught_up(&r));
            } else if (k < 45) { /* push 1..6 to one partition */
                int t = (int)(rnd() % 3 == 0), i = (int)(rnd() % (uint64_t)r.np[t]);
                int cnt = 1 + (int)(rnd() % 6);
                /* the arrival clock: around the step clock, either side */
                int64_t at = now - 6 + (int64_t)(rnd() % 10);
                rs_cpm_arrival(m, at);
                for (int j = 0; j < cnt; j++) {
                    ref_msg_t *x = &r.msgs[nmsg];
                    x->id = nmsg++;
                    x->topic = t;
                    x->part = i;
                    /* a coarse grid: ties within and across topics; a
                     * slow drift up so partitions interleave */
                    x->t = BASE_MS + op * 20LL + (int64_t)(rnd() % 8) * 1000;
                    x->at = at;
                    x->valid = rnd() % 12 != 0;
                    if (!x->valid)
                        x->len = (size_t)snprintf(x->payload, sizeof(x->payload),
                                                  "{\"bad\": %d", x->id);
                    else if (t == 0)
                        x->len = (size_t)snprintf(
                            x->payload, sizeof(x->payload),
                            "{\"id\":\"r-%d\",\"type\":\"card_tx\",\"entity_id\":"
                            "\"c-%d\",\"counterparty_id\":\"m-%d\","
                            "\"event_time_ms\":%lld,\"amount\":%d}",
                            x->id, x->id % 50, x->id % 7, (long long)x->t,
                            1 + x->id % 300);
                    else
                        x->len = (size_t)snprintf(
                            x->payload, sizeof(x->payload),
                            "{\"event_id\":\"r-%d\",\"entity_id\":\"c-%d\","
                            "\"value\":%d,\"label_time_ms\":%lld}",
                            x->id / 2, x->id % 50, x->id % 3 == 0,
                            (long long)x->t);
                    ref_part_t *p = &r.p[t][i];
                    p->q[p->qhead + p->qn++] = x->id;
                    p->eof = 0;
                    r.buffered++;
                    assert_int_equal(rs_cpm_push(m, t, i, off[t][i]++, x->payload,
                                                 x->len, x),
                                     0);
                }
            } else if (k < 45 + (uint64_t)eof_pct / 2) { /* one at its end */
                int t = (int)(rnd() % 2), i = (int)(rnd() % (uint64_t)r.np[t]);
                ref_eof(&r.p[t][i], now);
                rs_cpm_eof(m, t, i, now);
            } else if (k < 45 + (uint64_t)eof_pct) { /* the empty ones */
                for (int t = 0; t < 2; t++)
                    for (int i = 0; i < r.np[t]; i++)
                        if (!r.p[t][i].qn && rnd() % 8) {
                            ref_eof(&r.p[t][i], now);
                            rs_cpm_eof(m, t, i, now);
                        }
            } else { /* a step */
                now += (int64_t)(rnd() % 8);
                int max = 1 + (int)(rnd() % 40);
                int nr = ref_step(&r, now, max);
                int nc = rs_cpm_step(m, now, max);
                ref_compare(&r, m, nr, nc, run, op);
                total_blocked += r.blocked_topic >= 0;
            }
        }
        total_merged += (uint64_t)r.norder;
        total_reordered += r.reordered;
        total_late_cmp += r.late_cmp;
        free(r.adv_t);
        free(r.adv_at);
        free(r.adv_g);
        rs_cpm_destroy(m);
        for (int t = 0; t < 2; t++) {
            for (int i = 0; i < r.np[t]; i++) free(r.p[t][i].q);
            free(r.p[t]);
            free(off[t]);
        }
        free(r.msgs);
        free(r.order);
        free(rel_log);
    }
    /* the runs went through every path: merges, reorders, blocked steps */
    print_message("merge vs reference: %llu merged, %llu reordered (the "
                  "last one's late_ms compared %llu times), %llu blocked "
                  "steps\n",
                  (unsigned long long)total_merged,
                  (unsigned long long)total_reordered,
                  (unsigned long long)total_late_cmp,
                  (unsigned long long)total_blocked);
    assert_true(total_merged > 40000);
    assert_true(total_reordered > 100);
    assert_true(total_late_cmp > 100);
    assert_true(total_blocked > 1000);
    rng_s = save;
}

int main(void) {
    rs_log_set_level(RS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_split),
        cmocka_unit_test(test_interleavings),
        cmocka_unit_test(test_two_readers),
        cmocka_unit_test(test_blocked_idle_reorder),
        cmocka_unit_test(test_reorder_late),
        cmocka_unit_test(test_reorder_batch),
        cmocka_unit_test(test_quiet_busy_hwm),
        cmocka_unit_test(test_two_partitions_one_fetch),
        cmocka_unit_test(test_find_trim_dedup),
        cmocka_unit_test(test_merge_order_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
