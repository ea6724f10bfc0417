/* test_caches.c -- entity caches across restarts (rs_model_caches_*,
 * model/seq_cache.c).
 *
 * Write + read into a fresh model of the same architecture with the same
 * weights (a snapshot, or the same seed untrained) gives bit for bit the
 * same scores, contributions, explanations (attention weights, attended
 * ids, ranks, experts), flags, evictions and learning records for the
 * next events (with the learning log kept across the restart, their
 * histories rebuild from the records before it); empty caches; kind "lr" (size 0); every single-byte
 * corruption and every truncation is RS_ERR_CORRUPT with the model
 * unchanged; byte mutations behind a repaired checksum never crash and
 * leave the model unchanged or consistent; another architecture is
 * RS_ERR_INVALID naming the difference; a smaller pool keeps the most
 * recently used entities; sizes at the `seq:` defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/seq_int.h"
#include "rs_test_learn.h"

#define DIM 4
static const char *const names4[DIM] = {"f0", "f1", "f2", "f3"};
#define T0 1700000000000LL

/* Every code path: 2 layers, rings of 4 that wrap, top-2 of 4, 16 caches. */
static rs_model_conf_t conf_tiny(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = 8;
    c.pos_weight = 3;
    c.seq.d_model = 8;
    c.seq.history = 4;
    c.seq.layers = 2;
    c.seq.experts = 4;
    c.seq.top_k = 2;
    c.seq.expert_hidden = 8;
    c.seq.buckets = 16;
    c.seq.max_entities = 16;
    c.seq.warmup_updates = 0;
    c.seq.drift_mode = 1; /* all layers learn */
    c.seq.seed = 7;
    c.replay = 0;
    c.average = 0;
    return c;
}

static rs_model_t *new_model(const rs_model_conf_t *c) {
    char err[256] = "";
    rs_model_t *m = rs_model_new(c, DIM, names4, err, sizeof(err));
    if (!m) print_message("rs_model_new: %s\n", err);
    assert_non_null(m);
    return m;
}

typedef struct evs_s {
    char id[40], ent[32], cp[40];
    float x[DIM];
    rs_model_input_t in;
} evs_t;

/* n events over n_ent entities from time t0, ids "<pfx>-<i>" (some ids and
 * counterparties longer than RS_MODEL_ID_MAX - 1: truncated in caches). */
static evs_t *make_stream(int n, int n_ent, uint64_t seed, const char *pfx,
                          int64_t t0) {
    evs_t *ev = calloc((size_t)n, sizeof(*ev));
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    int64_t t = t0;
    for (int i = 0; i < n; i++) {
        evs_t *e = &ev[i];
        t += 1000 + (int64_t)rs_rng_below(&rng, 3600000);
        int ent = (int)rs_rng_below(&rng, (uint64_t)n_ent);
        if (i % 11 == 5)
            snprintf(e->id, sizeof(e->id), "%s-%d-with-a-rather-long-suffix",
                     pfx, i);
        else
            snprintf(e->id, sizeof(e->id), "%s-%d", pfx, i);
        snprintf(e->ent, sizeof(e->ent), "card-%d", ent);
        snprintf(e->cp, sizeof(e->cp), "m-%d", (int)rs_rng_below(&rng, 5));
        for (int k = 0; k < DIM; k++) e->x[k] = (float)rs_rng_normal(&rng);
        e->in.event_id = e->id;
        e->in.entity_id = e->ent;
        e->in.counterparty_id = (i % 7 == 3) ? "" : e->cp;
        e->in.event_time_ms = t;
        e->in.amount = (float)(10 + i) * 1.25f;
        e->in.x = e->x;
        e->in.n_cat = 2;
        e->in.cat_hash[0] = 1000 + rs_rng_below(&rng, 3);
        e->in.cat_hash[1] = 2000 + rs_rng_below(&rng, 3);
    }
    return ev;
}

static rs_model_input_t *inputs(const evs_t *ev, int n) {
    static rs_model_input_t buf[512];
    assert_true(n <= 512);
    for (int i = 0; i < n; i++) buf[i] = ev[i].in;
    return buf;
}

/* Score ev[0..n) in chunks with m (no learning records). */
static void run(rs_model_t *m, const evs_t *ev, int n, int chunk,
                rs_model_output_t *out, float *contrib, unsigned flags) {
    assert_false(flags & RS_MODEL_FWD_REMEMBER);
    for (int i = 0; i < n; i += chunk) {
        int k = RS_MIN(chunk, n - i);
        assert_int_equal(rs_model_forward(m, inputs(ev + i, k), k, out + i,
                                          contrib ? contrib + (size_t)i * DIM
                                                  : NULL,
                                          flags),
                         RS_OK);
    }
}

/* The same through t's learner: with RS_MODEL_FWD_REMEMBER the records
 * go to t's log. */
static void run_tl(rs_test_learn_t *t, const evs_t *ev, int n, int chunk,
                   rs_model_output_t *out, float *contrib, unsigned flags) {
    for (int i = 0; i < n; i += chunk) {
        int k = RS_MIN(chunk, n - i);
        assert_int_equal(rs_test_learn_forward(t, inputs(ev + i, k), k, out + i,
                                               contrib ? contrib + (size_t)i * DIM
                                                       : NULL,
                                               flags),
                         RS_OK);
    }
}

static rs_test_learn_t *wrap_tl(rs_model_t *m, const rs_model_conf_t *c) {
    char err[256] = "";
    assert_non_null(m);
    rs_test_learn_t *t = rs_test_learn_wrap(m, c, err, sizeof(err));
    if (!t) fail_msg("rs_test_learn_wrap: %s", err);
    return t;
}

/* Two learning records equal byte for byte, their state bytes aside (the
 * resolver's: one side may have learned it). */
static void assert_same_rec(const void *a, const void *b, size_t size) {
    assert_non_null(a);
    assert_non_null(b);
    uint8_t *x = malloc(size), *y = malloc(size);
    memcpy(x, a, size);
    memcpy(y, b, size);
    x[offsetof(rs_lrec_hdr_t, state)] = y[offsetof(rs_lrec_hdr_t, state)] = 0;
    assert_memory_equal(x, y, size);
    free(x);
    free(y);
}

/* m's caches as bytes (malloc'd; *len gets the length). */
static uint8_t *caches(const rs_model_t *m, size_t *len) {
    size_t need = rs_model_caches_size(m);
    uint8_t *b = malloc(need ? need : 1);
    assert_int_equal(rs_model_caches_write(m, b, need, len), RS_OK);
    assert_int_equal(*len, need);
    return b;
}

static void read_ok(rs_model_t *m, const uint8_t *b, size_t len) {
    char err[256] = "";
    rs_err_t e = rs_model_caches_read(m, b, len, err, sizeof(err));
    if (e) print_message("rs_model_caches_read: %s\n", err);
    assert_int_equal(e, RS_OK);
}

static int fbits_eq(float a, float b) { return !memcmp(&a, &b, sizeof(a)); }

/* Outputs equal bit for bit (scores, explanation, flags). */
static void assert_same_out(const rs_model_output_t *a,
                            const rs_model_output_t *b, int i) {
    if (!fbits_eq(a->score, b->score))
        print_message("row %d: %.9g vs %.9g\n", i, a->score, b->score);
    assert_true(fbits_eq(a->score, b->score));
    assert_true(fbits_eq(a->self_weight, b->self_weight));
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->n_hist, b->n_hist);
    assert_int_equal(a->n_attended, b->n_attended);
    for (int j = 0; j < a->n_attended; j++) {
        const rs_model_attn_t *x = &a->attended[j], *y = &b->attended[j];
        assert_string_equal(x->event_id, y->event_id);
        assert_string_equal(x->counterparty_id, y->counterparty_id);
        assert_true(x->event_time_ms == y->event_time_ms);
        assert_true(fbits_eq(x->amount, y->amount));
        assert_true(fbits_eq(x->weight, y->weight));
        assert_int_equal(x->rank, y->rank);
    }
    assert_int_equal(a->n_experts, b->n_experts);
    for (int j = 0; j < a->n_experts; j++) {
        assert_int_equal(a->experts[j].expert, b->experts[j].expert);
        assert_true(fbits_eq(a->experts[j].gate, b->experts[j].gate));
    }
}

/* ------------------------------------------------ bit-identical restart */

/* trained: A learns (weights move off the seed), B scores with A's
 * snapshot; else both untrained from the same seed.  B gets A's caches
 * and a copy of A's learning log (a restart keeps both: the caches in the
 * final checkpoint, the log in the state directory). */
static void roundtrip(int trained) {
    rs_model_conf_t c = conf_tiny();
    rs_test_learn_t *ta = wrap_tl(new_model(&c), &c);
    rs_model_t *a = ta->m;
    enum { N = 300, M = 120 };
    evs_t *ev = make_stream(N, 20, 11, "ev", T0);  /* 20 entities, 16 kept */
    static rs_model_output_t oa[N], ob[N];
    static float ca[N * DIM], cb[N * DIM];
    run_tl(ta, ev, N, 8, oa, ca, RS_MODEL_FWD_REMEMBER | RS_MODEL_FWD_EXPLAIN);
    if (trained)
        for (int i = 0; i < N; i += 2) {
            rs_learner_res_t res;
            assert_int_equal(rs_test_learn_label(ta, ev[i].id, i % 6 == 0,
                                                 &res),
                             RS_OK);
            assert_int_equal(res.outcome, RS_LEARNER_LEARNED);
        }
    rs_model_stats_t sa, sb;
    rs_model_stats(a, &sa);
    assert_int_equal(sa.entities, 16);
    assert_true(sa.evictions > 0);

    /* B: new_like A, with other history for the same entities first (the
     * read must replace it, not merge) */
    char err[256] = "";
    rs_test_learn_t *tb = wrap_tl(rs_model_new_like(a, NULL, err, sizeof(err)),
                                  &c);
    rs_model_t *b = tb->m;
    rs_model_weights_t *w = NULL;
    if (trained) {
        w = rs_model_weights_take(a);
        assert_int_equal(rs_model_weights_use(b, w), RS_OK);
    }
    evs_t *junk = make_stream(40, 30, 99, "junk", T0);
    run(b, junk, 40, 8, ob, cb, 0);

    size_t la, lb2;
    uint8_t *ba = caches(a, &la);
    read_ok(b, ba, la);
    uint8_t *bb = caches(b, &lb2);     /* the same bytes back */
    assert_int_equal(la, lb2);
    assert_memory_equal(ba, bb, la);
    rs_model_stats(b, &sb);
    assert_int_equal(sb.entities, 16);
    free(bb);
    assert_int_equal(rs_test_learn_mirror(tb, ta), N);

    /* the next events: new entities, evicted ones, repeats in a batch */
    evs_t *nx = make_stream(M, 26, 12, "nx", ev[N - 1].in.event_time_ms);
    const unsigned fl = RS_MODEL_FWD_REMEMBER | RS_MODEL_FWD_EXPLAIN;
    run_tl(ta, nx, M, 8, oa, ca, fl);
    run_tl(tb, nx, M, 8, ob, cb, fl);
    int newent = 0, evicted = 0;
    for (int i = 0; i < M; i++) {
        assert_same_out(&oa[i], &ob[i], i);
        newent += (oa[i].flags & RS_MODEL_OUT_NEW_ENTITY) != 0;
        evicted += (oa[i].flags & RS_MODEL_OUT_EVICTED) != 0;
    }
    assert_memory_equal(ca, cb, sizeof(float) * M * DIM);
    assert_true(newent > 0 && evicted > 0 && newent < M);
    print_message("%s: %d next events bit-identical (%d new entities, %d "
                  "evictions)\n", trained ? "trained + snapshot" : "untrained",
                  M, newent, evicted);

    /* learning records of the next events: the same bytes (inputs, score,
     * the reference to the entity's previous record, from the caches), and
     * the history each rebuilds from the log reaches back across the
     * restart into the same records */
    const size_t rsz = rs_model_lrec_size(a);
    assert_int_equal(rs_test_learn_end(ta), N + M);
    assert_int_equal(rs_test_learn_end(tb), N + M);
    for (uint64_t pos = N; pos < N + M; pos++)
        assert_same_rec(rs_test_learn_at(ta, pos), rs_test_learn_at(tb, pos),
                        rsz);
    int across = 0;
    for (int i = 0; i < M; i++) {
        const void *ra, *rb, *ha[8], *hb[8];
        int na, nb;
        assert_int_equal(rs_test_learn_record(ta, nx[i].id, &ra, ha, 8, &na),
                         RS_OK);
        assert_int_equal(rs_test_learn_record(tb, nx[i].id, &rb, hb, 8, &nb),
                         RS_OK);
        assert_int_equal(na, nb);
        assert_int_equal(na, ((const rs_lrec_hdr_t *)ra)->hist);
        assert_int_equal(na, oa[i].n_hist);
        for (int j = 0; j < na; j++) assert_same_rec(ha[j], hb[j], rsz);
        across += na > 0 && ((const rs_lrec_hdr_t *)hb[0])->t <
                                ev[N - 1].in.event_time_ms + 1;
    }
    assert_true(across > 0);
    rs_learner_stats_t ls;
    rs_learner_stats(tb->l, &ls);
    assert_int_equal(ls.hist_cut, 0);

    /* and the caches after the next events are the same bytes */
    ba = (free(ba), caches(a, &la));
    bb = caches(b, &lb2);
    assert_int_equal(la, lb2);
    assert_memory_equal(ba, bb, la);
    rs_model_stats(a, &sa);
    rs_model_stats(b, &sb);
    assert_int_equal(sa.entities, sb.entities);
    free(ba);
    free(bb);
    rs_model_weights_release(w);
    rs_test_learn_destroy(ta);
    rs_test_learn_destroy(tb);
    free(ev);
    free(junk);
    free(nx);
}

static void test_roundtrip_snapshot(void **state) {
    (void)state;
    roundtrip(1);
}

static void test_roundtrip_untrained(void **state) {
    (void)state;
    roundtrip(0);
}

/* ---------------------------------------------------- empty, kind "lr" */

static void test_empty_and_lr(void **state) {
    (void)state;
    rs_model_conf_t c = conf_tiny();
    rs_model_t *a = new_model(&c), *b = new_model(&c);
    size_t len = 1;
    uint8_t *e = caches(a, &len);
    assert_int_equal(len, 56); /* header 48 + checksum 8 */
    /* b has entities; reading empty caches clears them */
    evs_t *ev = make_stream(30, 5, 3, "ev", T0);
    static rs_model_output_t o1[30], o2[30];
    run(b, ev, 30, 8, o1, NULL, 0);
    rs_model_stats_t st;
    rs_model_stats(b, &st);
    assert_int_equal(st.entities, 5);
    read_ok(b, e, len);
    rs_model_stats(b, &st);
    assert_int_equal(st.entities, 0);
    assert_int_equal(st.evictions, 0);
    run(a, ev, 30, 8, o1, NULL, RS_MODEL_FWD_EXPLAIN);
    run(b, ev, 30, 8, o2, NULL, RS_MODEL_FWD_EXPLAIN);
    for (int i = 0; i < 30; i++) assert_same_out(&o1[i], &o2[i], i);

    /* size query and a short buffer */
    size_t need = rs_model_caches_size(a), got = 0;
    assert_true(need > 56);
    assert_int_equal(rs_model_caches_write(a, NULL, 0, &got), RS_ERR_TOOBIG);
    assert_int_equal(got, need);
    uint8_t *buf = malloc(need);
    memset(buf, 0xab, need);
    assert_int_equal(rs_model_caches_write(a, buf, need - 1, &got),
                     RS_ERR_TOOBIG);
    assert_int_equal(got, need);
    assert_int_equal(buf[0], 0xab); /* nothing written */
    assert_int_equal(rs_model_caches_write(a, buf, need, NULL), RS_ERR_INVALID);
    assert_int_equal(rs_model_caches_write(a, NULL, 10, &got), RS_ERR_INVALID);
    char err[256] = "";
    assert_int_equal(rs_model_caches_read(a, NULL, 10, err, sizeof(err)),
                     RS_ERR_INVALID);
    /* 0 bytes are not "seq" caches */
    assert_int_equal(rs_model_caches_read(a, NULL, 0, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_int_equal(rs_model_caches_write(a, buf, need, &got), RS_OK);

    /* "lr": no caches */
    rs_model_conf_t cl;
    rs_model_conf_init(&cl);
    cl.kind = RS_MODEL_LR;
    rs_model_t *lr = rs_model_new(&cl, DIM, names4, err, sizeof(err));
    assert_non_null(lr);
    assert_int_equal(rs_model_caches_size(lr), 0);
    got = 99;
    assert_int_equal(rs_model_caches_write(lr, NULL, 0, &got), RS_OK);
    assert_int_equal(got, 0);
    assert_int_equal(rs_model_caches_read(lr, NULL, 0, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_model_caches_read(lr, buf, need, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(err, "'lr'"));
    buf[need / 2] ^= 1;
    assert_int_equal(rs_model_caches_read(lr, buf, need, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    rs_model_destroy(lr);
    free(buf);
    free(e);
    free(ev);
    rs_model_destroy(a);
    rs_model_destroy(b);
}

/* ------------------------------------------- corruption and truncation */

static void test_corrupt(void **state) {
    (void)state;
    rs_model_conf_t c = conf_tiny();
    rs_model_t *a = new_model(&c), *b = new_model(&c);
    evs_t *ev = make_stream(24, 4, 5, "ev", T0);
    evs_t *other = make_stream(20, 6, 6, "o", T0);
    static rs_model_output_t o[24];
    run(a, ev, 24, 8, o, NULL, 0);
    run(b, other, 20, 8, o, NULL, 0);
    size_t len, rlen, l2;
    uint8_t *good = caches(a, &len);
    uint8_t *ref = caches(b, &rlen);    /* b's caches before any read */
    rs_model_stats_t st0, st;
    rs_model_stats(b, &st0);
    uint8_t *buf = malloc(len);
    char err[256];
    print_message("%zu bytes of caches (4 entities)\n", len);

    /* every single-byte corruption, every truncation: corrupt, unchanged */
    for (size_t i = 0; i < len; i++) {
        memcpy(buf, good, len);
        buf[i] ^= (uint8_t)(1u << (i % 8));
        err[0] = '\0';
        assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                         RS_ERR_CORRUPT);
        assert_true(err[0] != '\0');
    }
    for (size_t k = 0; k < len; k++)
        assert_int_equal(rs_model_caches_read(b, good, k, err, sizeof(err)),
                         RS_ERR_CORRUPT);
    memcpy(buf, good, len);
    buf[len - 1] ^= 0x10; /* the checksum itself */
    assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "checksum"));
    uint8_t *now = caches(b, &l2);
    assert_int_equal(l2, rlen);
    assert_memory_equal(now, ref, rlen);
    free(now);
    rs_model_stats(b, &st);
    assert_int_equal(st.entities, st0.entities);
    assert_int_equal(st.evictions, st0.evictions);

    /* a trailing byte, a lying count: corrupt */
    uint8_t *big = malloc(len + 1);
    memcpy(big, good, len - 8);
    big[len - 8] = 0;
    rs_le_put64(big + len - 7, rs_hash64(big, len - 7));
    assert_int_equal(rs_model_caches_read(b, big, len + 1, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "after the last"));
    memcpy(buf, good, len);
    rs_le_put32(buf + 44, rs_le_get32(buf + 44) + 1);
    rs_le_put64(buf + len - 8, rs_hash64(buf, len - 8));
    assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    /* an entity twice (its key copied onto the next one's) */
    memcpy(buf, good, len);
    /* entity 0 starts after the header; its end: t, k/v (2 layers x 2 x
     * d_model 8 floats) and learning-log position of its n0 events, then
     * their meta */
    const size_t e0 = 48, n0 = rs_le_get32(buf + e0 + 8);
    size_t e1 = e0 + 12 + n0 * (8 + 4 * 2 * 2 * 8 + 8);
    for (size_t j = 0; j < n0; j++) {
        e1 += 4;               /* amount */
        e1 += 1 + buf[e1];     /* event id */
        e1 += 1 + buf[e1];     /* counterparty id */
    }
    memcpy(buf + e1, buf + e0, 8);
    rs_le_put64(buf + len - 8, rs_hash64(buf, len - 8));
    assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "twice"));
    /* an event time that would overflow a gap */
    memcpy(buf, good, len);
    rs_le_put64(buf + e0 + 12, (uint64_t)INT64_MIN);
    rs_le_put64(buf + len - 8, rs_hash64(buf, len - 8));
    assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "time"));
    /* a NaN key/value */
    memcpy(buf, good, len);
    rs_le_put32(buf + e0 + 12 + 8 * n0 + 4 * 3, 0x7fc00000u);
    rs_le_put64(buf + len - 8, rs_hash64(buf, len - 8));
    assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "non-finite"));
    now = caches(b, &l2);
    assert_memory_equal(now, ref, rlen);
    free(now);

    /* mutations behind a repaired checksum (what the fuzzer does): no
     * crash; an error leaves b unchanged; a success leaves b consistent
     * (it scores, and its caches write and read back) */
    int ok = 0, bad = 0;
    rs_model_t *cpy = new_model(&c);
    for (size_t i = 0; i + 8 < len; i++) {
        for (int v = 0; v < 3; v++) {
            static const uint8_t x[3] = {0x01, 0x80, 0xff};
            memcpy(buf, good, len);
            buf[i] ^= x[v];
            rs_le_put64(buf + len - 8, rs_hash64(buf, len - 8));
            rs_err_t e = rs_model_caches_read(b, buf, len, err, sizeof(err));
            if (e != RS_OK) {
                assert_true(e == RS_ERR_CORRUPT || e == RS_ERR_INVALID);
                bad++;
                continue;
            }
            ok++;
            size_t l3;
            uint8_t *w = caches(b, &l3);
            read_ok(cpy, w, l3);
            rs_model_output_t q[4];
            assert_int_equal(rs_model_forward(b, inputs(ev, 4), 4, q, NULL,
                                              RS_MODEL_FWD_DRY |
                                                  RS_MODEL_FWD_EXPLAIN),
                             RS_OK);
            free(w);
            read_ok(b, ref, rlen); /* back to b's own */
        }
    }
    print_message("repaired mutations: %d read, %d refused\n", ok, bad);
    assert_true(ok > 0 && bad > 0);
    now = caches(b, &l2);
    assert_memory_equal(now, ref, rlen);
    free(now);
    rs_model_destroy(cpy);
    free(big);
    free(buf);
    free(good);
    free(ref);
    free(ev);
    free(other);
    rs_model_destroy(a);
    rs_model_destroy(b);
}

/* Finite but huge keys/values (a crafted buffer behind a valid checksum:
 * only finiteness is checked) make the attention NaN: scoring and the
 * explanation must still not crash (found by fuzz_model_caches). */
static void test_huge_values(void **state) {
    (void)state;
    rs_model_conf_t c = conf_tiny();
    rs_model_t *a = new_model(&c), *b = new_model(&c);
    evs_t *ev = make_stream(12, 2, 5, "ev", T0);
    static rs_model_output_t o[12];
    run(a, ev, 12, 8, o, NULL, 0);
    size_t len;
    uint8_t *buf = caches(a, &len);
    const size_t e0 = 48, n0 = rs_le_get32(buf + e0 + 8);
    for (size_t i = 0; i < n0 * 2 * 2 * 8; i++) /* every k, v of it */
        rs_le_put32(buf + e0 + 12 + 8 * n0 + 4 * i,
                    i % 2 ? 0x7f7fffffu : 0xff7fffffu); /* +-FLT_MAX */
    rs_le_put64(buf + len - 8, rs_hash64(buf, len - 8));
    read_ok(b, buf, len);
    const uint64_t key = rs_le_get64(buf + e0);
    int hit = 0;
    for (int i = 0; i < 12; i++) {
        if (rs_hash_str(ev[i].ent) != key) continue;
        rs_model_output_t q;
        float contrib[DIM];
        assert_int_equal(rs_model_forward(b, &ev[i].in, 1, &q, contrib,
                                          RS_MODEL_FWD_EXPLAIN |
                                              RS_MODEL_FWD_DRY),
                         RS_OK);
        assert_true(q.n_attended >= 0 && q.n_attended <= q.n_hist);
        if (!hit++)
            print_message("huge cached k/v: score %g, %d of %d past events "
                          "named\n", q.score, q.n_attended, q.n_hist);
    }
    assert_true(hit > 0);
    free(buf);
    free(ev);
    rs_model_destroy(a);
    rs_model_destroy(b);
}

/* -------------------------------------------------- another architecture */

static void test_other_arch(void **state) {
    (void)state;
    rs_model_conf_t c = conf_tiny();
    rs_model_t *a = new_model(&c);
    evs_t *ev = make_stream(20, 4, 5, "ev", T0);
    static rs_model_output_t o[20];
    run(a, ev, 20, 8, o, NULL, 0);
    size_t len;
    uint8_t *buf = caches(a, &len);
    char err[256];
    struct { const char *what; rs_model_conf_t c; } cases[4];
    for (int i = 0; i < 4; i++) cases[i].c = conf_tiny();
    cases[0].what = "seq.history";
    cases[0].c.seq.history = 8;
    cases[1].what = "seq.d_model";
    cases[1].c.seq.d_model = 16;
    cases[2].what = "seq.layers";
    cases[2].c.seq.layers = 1;
    cases[3].what = "seq.buckets";
    cases[3].c.seq.buckets = 32;
    for (int i = 0; i < 4; i++) {
        rs_model_t *b = new_model(&cases[i].c);
        run(b, ev, 20, 8, o, NULL, 0);
        rs_model_stats_t st;
        err[0] = '\0';
        assert_int_equal(rs_model_caches_read(b, buf, len, err, sizeof(err)),
                         RS_ERR_INVALID);
        print_message("%s\n", err);
        assert_non_null(strstr(err, cases[i].what));
        rs_model_stats(b, &st);
        assert_int_equal(st.entities, 4); /* unchanged */
        rs_model_destroy(b);
    }
    /* another number of features */
    static const char *const names5[5] = {"f0", "f1", "f2", "f3", "f4"};
    rs_model_t *d5 = rs_model_new(&c, 5, names5, err, sizeof(err));
    assert_non_null(d5);
    assert_int_equal(rs_model_caches_read(d5, buf, len, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(err, "features"));
    rs_model_destroy(d5);
    /* learning settings, seed, pool sizes, feature names are not the
     * architecture: those read */
    rs_model_conf_t c2 = conf_tiny();
    c2.seq.seed = 8;
    c2.seq.learning_rate = 0.5;
    c2.seq.max_entities = 40;
    static const char *const namesx[DIM] = {"a", "b", "c", "d"};
    rs_model_t *e = rs_model_new(&c2, DIM, namesx, err, sizeof(err));
    assert_non_null(e);
    read_ok(e, buf, len);
    rs_model_destroy(e);
    free(buf);
    free(ev);
    rs_model_destroy(a);
}

/* ---------------------------------------------- a smaller entity pool */

static void test_smaller_pool(void **state) {
    (void)state;
    rs_model_conf_t c = conf_tiny();
    rs_test_learn_t *ta = wrap_tl(new_model(&c), &c);
    rs_model_t *a = ta->m;
    enum { N = 200, NE = 20 };
    evs_t *ev = make_stream(N, NE, 21, "ev", T0);
    static rs_model_output_t o[N];
    run_tl(ta, ev, N, 8, o, NULL, RS_MODEL_FWD_REMEMBER);
    rs_model_stats_t sa, sb;
    rs_model_stats(a, &sa);
    assert_int_equal(sa.entities, 16);
    size_t len;
    uint8_t *buf = caches(a, &len);

    rs_model_conf_t small = conf_tiny();
    small.seq.max_entities = 10;
    char err[256];
    rs_model_t *b = rs_model_new_like(a, &small, err, sizeof(err));
    assert_non_null(b);
    read_ok(b, buf, len);
    rs_model_stats(b, &sb);
    assert_int_equal(sb.entities, 10);
    assert_int_equal(sb.evictions, 6);

    /* recency: the last occurrence of each entity in the stream */
    int last[NE];
    for (int k = 0; k < NE; k++) last[k] = -1;
    for (int i = 0; i < N; i++) last[atoi(ev[i].ent + 5)] = i;
    int kept = 0, dropped = 0;
    for (int k = 0; k < NE; k++) {
        int rank = 0; /* entities used more recently than k */
        for (int j = 0; j < NE; j++) rank += last[j] > last[k];
        evs_t probe = ev[0];
        snprintf(probe.ent, sizeof(probe.ent), "card-%d", k);
        probe.in.entity_id = probe.ent;
        probe.in.event_time_ms = ev[N - 1].in.event_time_ms + 1000;
        rs_model_output_t qa, qb;
        assert_int_equal(rs_model_forward(a, &probe.in, 1, &qa, NULL,
                                          RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        assert_int_equal(rs_model_forward(b, &probe.in, 1, &qb, NULL,
                                          RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        if (last[k] >= 0 && rank < 10) { /* among the 10 most recent */
            assert_same_out(&qa, &qb, k);
            assert_true(qb.n_hist > 0);
            kept++;
        } else {
            assert_true(qb.flags & RS_MODEL_OUT_NEW_ENTITY);
            assert_int_equal(qb.n_hist, 0);
            dropped++;
        }
    }
    assert_int_equal(kept, 10);
    assert_int_equal(dropped, NE - 10);
    /* the kept ones, written again and read into a pool of 16: the same
     * 10, and they evict in the same order as in a */
    size_t l2;
    uint8_t *b2 = caches(b, &l2);
    assert_true(l2 < len);
    rs_model_t *d = rs_model_new_like(a, NULL, err, sizeof(err));
    read_ok(d, b2, l2);
    rs_model_stats_t sd;
    rs_model_stats(d, &sd);
    assert_int_equal(sd.entities, 10);
    free(b2);
    free(buf);
    free(ev);
    rs_test_learn_destroy(ta);
    rs_model_destroy(b);
    rs_model_destroy(d);
}

/* -------------------------------------------- sizes at the seq defaults */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_default_sizes(void **state) {
    (void)state;
    enum { D = 17, NE = 100, PER = 40 };
    const char *nm[D];
    char nbuf[D][8];
    for (int i = 0; i < D; i++) {
        snprintf(nbuf[i], sizeof(nbuf[i]), "x%d", i);
        nm[i] = nbuf[i];
    }
    rs_model_conf_t c;
    rs_model_conf_init(&c); /* the `seq:` architecture defaults */
    c.kind = RS_MODEL_SEQ;
    c.seq.max_entities = 600; /* > batch_max 512; small for the test */
    char err[256];
    rs_model_t *a = rs_model_new(&c, D, nm, err, sizeof(err));
    assert_non_null(a);
    /* NE entities x PER events (more than L = 32: full rings that wrapped);
     * ids "e<entity>-<k>" (6 B) and counterparties "m-<0..9>" (3 B) */
    static float x[NE][D];
    static char ids[NE][16], ents[NE][16], cps[NE][8];
    static rs_model_input_t in[NE];
    static rs_model_output_t out[NE];
    for (int k = 0; k < PER; k++) {
        for (int e = 0; e < NE; e++) {
            snprintf(ids[e], sizeof(ids[e]), "e%02d-%02d", e, k);
            snprintf(ents[e], sizeof(ents[e]), "card-%d", e);
            snprintf(cps[e], sizeof(cps[e]), "m-%d", (e + k) % 10);
            for (int i = 0; i < D; i++) x[e][i] = (float)((e * 7 + k * 3 + i) % 13);
            memset(&in[e], 0, sizeof(in[e]));
            in[e].event_id = ids[e];
            in[e].entity_id = ents[e];
            in[e].counterparty_id = cps[e];
            in[e].event_time_ms = T0 + (int64_t)k * 60000 + e;
            in[e].amount = (float)k;
            in[e].x = x[e];
        }
        assert_int_equal(rs_model_forward(a, in, NE, out, NULL, 0), RS_OK);
    }
    /* time, k/v of 1 layer of d_model 32, log position, amount, 2 lengths */
    const size_t per_event = 8 + 4 * 2 * 32 + 8 + 4 + 2; /* 278 */
    const size_t per_ent = 12 + 32 * (per_event + 6 + 3);
    size_t need = rs_model_caches_size(a);
    assert_int_equal(need, 56 + NE * per_ent);
    uint8_t *buf = malloc(need);
    size_t len;
    /* the second write is timed (the first faults the pages in) */
    assert_int_equal(rs_model_caches_write(a, buf, need, &len), RS_OK);
    double t0 = now_s();
    assert_int_equal(rs_model_caches_write(a, buf, need, &len), RS_OK);
    double t1 = now_s();
    rs_model_t *b = rs_model_new_like(a, NULL, err, sizeof(err));
    double t2 = now_s();
    read_ok(b, buf, len);
    double t3 = now_s();
    rs_model_stats_t st;
    rs_model_stats(a, &st);
    print_message("seq defaults (d_model 32, history 32, 1 layer), dim %d: "
                  "%zu B per full entity (%zu fixed + 32 x 9 B of ids here; "
                  "memory %llu B), %d entities = %zu B; write %.2f ms, read "
                  "%.2f ms (%.0f MB/s)\n",
                  D, per_ent, (size_t)12 + 32 * per_event,
                  (unsigned long long)st.entity_bytes, NE, len,
                  1e3 * (t1 - t0), 1e3 * (t3 - t2),
                  (double)len / (t3 - t2) / 1e6);
    /* scores of one more event per entity: identical */
    static rs_model_output_t oa[NE], ob[NE];
    for (int e = 0; e < NE; e++) in[e].event_time_ms += 3600000;
    assert_int_equal(rs_model_forward(a, in, NE, oa, NULL, RS_MODEL_FWD_EXPLAIN), RS_OK);
    assert_int_equal(rs_model_forward(b, in, NE, ob, NULL, RS_MODEL_FWD_EXPLAIN), RS_OK);
    for (int e = 0; e < NE; e++) {
        assert_int_equal(oa[e].n_hist, 32);
        assert_same_out(&oa[e], &ob[e], e);
    }
    free(buf);
    rs_model_destroy(a);
    rs_model_destroy(b);
}

/* The entity caches are queued for the background prefault thread ahead of
 * the lazy tables (rs_prefault, its "soon" queue): they are written from
 * the first batches on, and behind hundreds of MB of feature tables the
 * scoring thread and the workers faulted them in themselves.  The thread is
 * held on a chunk of its own (as in test_common's test_prefault_soon_first)
 * so the queue does not move; a lazy region queued before the model must
 * come after the model's caches, and once the model is destroyed its ranges
 * are gone from the queue (rs_free drops them: nothing populates freed
 * memory). */
static void test_caches_prefaulted_first(void **state) {
    (void)state;
    const size_t n = (size_t)4 << 20, hn = (size_t)128 << 10;
    unsigned char *h = mmap(NULL, hn, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *lz = mmap(NULL, n, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(h != MAP_FAILED && lz != MAP_FAILED);
    for (int i = 0; i < 300 && rs_prefault_pending(); i++) usleep(10000);
    rs_prefault_hold(1);
    rs_prefault(h, hn); /* one chunk: the thread takes it and is held */
    if (!rs_prefault_pending()) { /* kernel without MADV_POPULATE_WRITE */
        rs_prefault_hold(0);
        munmap(h, hn);
        munmap(lz, n);
        skip();
    }
    int held = 0;
    for (int i = 0; i < 60000 && !held; i++) {
        held = rs_prefault_hold(1);
        if (!held) usleep(1000);
    }
    assert_true(held);
    assert_null(rs_prefault_next());
    rs_zero_lazy(lz, n); /* a table made before the model */
    assert_ptr_equal(rs_prefault_next(), lz);
    rs_model_conf_t c = conf_tiny();
    c.seq.max_entities = 4096; /* caches of a few MB: lazy regions */
    rs_model_t *m = new_model(&c);
    void *next = rs_prefault_next();
    assert_non_null(next);
    assert_ptr_not_equal(next, lz); /* the caches come first */
    rs_model_destroy(m);
    assert_ptr_equal(rs_prefault_next(), lz);
    rs_prefault_cancel(lz, n);
    rs_prefault_hold(0);
    for (int i = 0; i < 1000 && rs_prefault_pending(); i++) usleep(10000);
    assert_int_equal(rs_prefault_pending(), 0);
    munmap(h, hn);
    munmap(lz, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_snapshot),
        cmocka_unit_test(test_roundtrip_untrained),
        cmocka_unit_test(test_empty_and_lr),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_huge_values),
        cmocka_unit_test(test_other_arch),
        cmocka_unit_test(test_smaller_pool),
        cmocka_unit_test(test_default_sizes),
        cmocka_unit_test(test_caches_prefaulted_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
