/* test_combine.c -- unit tests of model/combine.c (one model across
 * instances) and of version tags (model.h, model/store.c).
 *
 * Knowledge vectors; the plan (exclusive-learning weights, no double
 * counting, adoption of a dominating version, one name for equal
 * knowledge, deterministic names, unordered input and lineage mismatch
 * refused); the arithmetic on both kinds (weighted means of every state
 * array, pooled standardiser, counters) checked element by element against
 * the formula; determinism (the same inputs, or models loaded from their
 * bytes as another instance would, give byte-identical results); a
 * combined version stored under its tagged name loads and scores bit for
 * bit as the model that was combined (audit --rescore); the message codec
 * (round trip, every truncation, bit flips, and crafted messages with a
 * valid checksum refused naming the field). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/combine.h"
#include "model/model_int.h"
#include "rs_test_learn.h"

#define DIM 8
static const char *const names8[DIM] = {"f0", "f1", "f2", "f3",
                                        "f4", "f5", "f6", "f7"};
#define T0 1700000000000LL

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs_test_combine_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static rs_model_conf_t conf_lr(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_LR;
    c.batch_max = 16;
    c.replay = 0;
    c.average = 3600 * 1000; /* the weight average is combined too */
    return c;
}

static rs_model_conf_t conf_seq(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = 8;
    c.replay = 0;
    c.average = 3600 * 1000;
    c.seq.d_model = 8;
    c.seq.history = 4;
    c.seq.experts = 4;
    c.seq.top_k = 2;
    c.seq.expert_hidden = 8;
    c.seq.buckets = 16;
    c.seq.max_entities = 16;
    c.seq.optimizer = 0; /* adam: both moments are state */
    return c;
}

static rs_model_t *new_model(const rs_model_conf_t *c) {
    char err[256] = "";
    rs_model_t *m = rs_model_new(c, DIM, names8, err, sizeof(err));
    if (!m) fail_msg("rs_model_new: %s", err);
    return m;
}

/* n labelled events of m (entities card-0..4, labels by a rule on x), its
 * records in a log of its own: what one instance learns from its
 * partitions.  seed makes the instances' streams differ. */
static void train(rs_model_t *m, const rs_model_conf_t *c, int n,
                  uint64_t seed) {
    char err[256] = "";
    rs_test_learn_t *t = rs_test_learn_borrow(m, c, err, sizeof(err));
    if (!t) fail_msg("rs_test_learn_borrow: %s", err);
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        float x[DIM];
        double s = 0;
        for (int k = 0; k < DIM; k++) {
            x[k] = (float)rs_rng_normal(&rng) * 3.0f + (float)k;
            s += (k & 1 ? 1 : -1) * (x[k] - k);
        }
        char id[32], ent[16];
        snprintf(id, sizeof(id), "t%llu-%d", (unsigned long long)seed, i);
        snprintf(ent, sizeof(ent), "card-%d", i % 5);
        rs_model_input_t in;
        memset(&in, 0, sizeof(in));
        in.event_id = id;
        in.entity_id = ent;
        in.event_time_ms = T0 + (int64_t)i * 60000;
        in.x = x;
        rs_model_output_t out;
        assert_int_equal(rs_test_learn_forward(t, &in, 1, &out, NULL,
                                               RS_MODEL_FWD_REMEMBER),
                         RS_OK);
        assert_int_equal(rs_test_learn_label(t, id, s > 0, NULL), RS_OK);
    }
    rs_test_learn_destroy(t);
}

/* A copy of m through its bytes (as another instance gets it). */
static rs_model_t *copy_of(const rs_model_t *m, const rs_model_conf_t *c) {
    uint8_t *b;
    size_t n;
    char err[256];
    rs_model_save_mem(m, &b, &n);
    rs_model_t *r = NULL;
    assert_int_equal(rs_model_load_mem(b, n, "copy", c, &r, err, sizeof(err)),
                     RS_OK);
    rs_free(b);
    return r;
}

static int same_bytes(const rs_model_t *a, const rs_model_t *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    rs_model_save_mem(a, &x, &nx);
    rs_model_save_mem(b, &y, &ny);
    int eq = nx == ny && !memcmp(x, y, nx);
    rs_free(x);
    rs_free(y);
    return eq;
}

static rs_know_t know1(const char *o, uint64_t u) {
    rs_know_t k;
    rs_know_clear(&k);
    assert_int_equal(rs_know_add(&k, o, u, u, u * 2), RS_OK);
    return k;
}

/* ------------------------------------------------------------ knowledge */

static void test_know(void **state) {
    (void)state;
    rs_know_t a = know1("a", 10), b = know1("b", 5);
    assert_int_equal(rs_know_add(&b, "a", 4, 4, 8), RS_OK);
    assert_int_equal(rs_know_union(&a, &b), RS_OK);
    assert_int_equal(a.n, 2);
    assert_int_equal(rs_know_get(&a, "a")->updates, 10); /* max, not sum */
    assert_int_equal(rs_know_get(&a, "b")->updates, 5);
    assert_int_equal(rs_know_updates(&a), 15);
    assert_int_equal(rs_know_obs(&a), 30);
    assert_false(rs_know_equal(&a, &b));
    rs_know_t c = a;
    assert_true(rs_know_equal(&a, &c));
    assert_int_equal(rs_know_add(&c, "", 1, 1, 1), RS_ERR_INVALID);
    rs_know_t full;
    rs_know_clear(&full);
    for (int i = 0; i < RS_COMBINE_ORIGINS; i++) {
        char o[16];
        snprintf(o, sizeof(o), "i%d", i);
        assert_int_equal(rs_know_add(&full, o, 1, 1, 1), RS_OK);
    }
    assert_int_equal(rs_know_add(&full, "x", 1, 1, 1), RS_ERR_TOOBIG);
    assert_int_equal(rs_know_union(&full, &a), RS_ERR_TOOBIG);
    assert_int_equal(full.n, RS_COMBINE_ORIGINS); /* unchanged */
    assert_true(rs_combine_id_valid("a"));
    assert_true(rs_combine_id_valid("node-7"));
    assert_false(rs_combine_id_valid("avg2"));
    assert_false(rs_combine_id_valid("-a"));
    assert_false(rs_combine_id_valid("A"));
    assert_false(rs_combine_id_valid("a.b"));
    assert_false(rs_combine_id_valid("abcdefghijklmnopq")); /* 17 */
}

/* ------------------------------------------------------------ the plan */

static void test_plan(void **state) {
    (void)state;
    char err[256];
    rs_combine_plan_t *p = malloc(sizeof(*p)), *q = malloc(sizeof(*q));
    /* two instances that learned apart: weights = what each learned */
    rs_know_t ka = know1("a", 100), kb = know1("b", 50);
    rs_combine_input_t in[3] = {{"a", "seq-0a1b2c3d-7.a", &ka},
                                {"b", "seq-0a1b2c3d-12.b", &kb}};
    assert_int_equal(rs_combine_plan(in, 2, 0, p, err, sizeof(err)), RS_OK);
    assert_int_equal(p->action, RS_COMBINE_AVERAGE);
    assert_int_equal(p->navg, 2);
    assert_true(p->w[0] == 100 && p->w[1] == 50);
    assert_true(p->k[0] == 200 && p->k[1] == 100);
    assert_int_equal(p->number, 13); /* 1 + the largest input number */
    assert_int_equal(strncmp(p->version, "seq-0a1b2c3d-13.avg2-", 21), 0);
    assert_true(rs_model_version_parse(p->version, NULL, NULL));
    assert_int_equal(rs_know_updates(&p->know), 150);
    /* deterministic: the other instance plans the same */
    assert_int_equal(rs_combine_plan(in, 2, 1, q, err, sizeof(err)), RS_OK);
    assert_string_equal(p->version, q->version);
    /* the result knows both: it dominates, b adopts it, a has nothing to do */
    rs_know_t kc = p->know, kb2 = know1("b", 50);
    rs_combine_input_t in2[2] = {{"a", p->version, &kc},
                                 {"b", "seq-0a1b2c3d-12.b", &kb2}};
    assert_int_equal(rs_combine_plan(in2, 2, 1, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_ADOPT);
    assert_int_equal(q->pick, 0);
    assert_true(q->w[1] == 0 && q->k[1] == 0); /* b's 50 are in both */
    assert_int_equal(rs_combine_plan(in2, 2, 0, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_NONE);
    /* b learned 10 more since: only those count for b (no double count) */
    rs_know_t kb3 = know1("b", 60);
    in2[1].know = &kb3;
    in2[1].version = "seq-0a1b2c3d-14.b";
    assert_int_equal(rs_combine_plan(in2, 2, 1, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_AVERAGE);
    assert_true(q->w[0] == 100 && q->w[1] == 10);
    assert_int_equal(rs_know_get(&q->know, "b")->updates, 60);
    assert_int_equal(rs_know_updates(&q->know), 160);
    /* the same knowledge under two names: everyone takes the smaller */
    rs_know_t ke = p->know, kf = p->know;
    rs_combine_input_t in3[2] = {{"a", "seq-0a1b2c3d-13.avg2-0000000f", &ke},
                                 {"b", "seq-0a1b2c3d-13.avg2-0000000a", &kf}};
    assert_int_equal(rs_combine_plan(in3, 2, 0, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_ADOPT);
    assert_int_equal(q->pick, 1);
    assert_int_equal(rs_combine_plan(in3, 2, 1, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_NONE);
    /* a third instance that learned nothing changes nothing */
    rs_know_t kz;
    rs_know_clear(&kz);
    in[2] = (rs_combine_input_t){"c", "seq-0a1b2c3d-1.c", &kz};
    assert_int_equal(rs_combine_plan(in, 3, 2, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_AVERAGE);
    assert_int_equal(q->navg, 2);
    assert_string_equal(q->version, p->version);
    /* an instance that left the group (killed) keeps its last version on
     * the topic; the two that remain reach the same knowledge under two
     * names: the stale one is contained in both and left out, so both
     * adopt the smaller name (before: each weighed "beyond the stale
     * one", they averaged each other under new names for ever) */
    rs_know_t ks = know1("b", 20), kx = know1("b", 20), ky;
    assert_int_equal(rs_know_add(&kx, "a", 100, 100, 200), RS_OK);
    assert_int_equal(rs_know_add(&kx, "c", 70, 70, 140), RS_OK);
    ky = kx;
    assert_true(rs_know_within(&ks, &kx) && !rs_know_within(&kx, &ks));
    assert_true(rs_know_within(&kx, &ky) && rs_know_within(&ky, &kx));
    rs_combine_input_t in4[3] = {{"a", "seq-0a1b2c3d-41.avg2-0000000f", &kx},
                                 {"b", "seq-0a1b2c3d-9.b", &ks},
                                 {"c", "seq-0a1b2c3d-40.avg2-0000000a", &ky}};
    assert_int_equal(rs_combine_plan(in4, 3, 0, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_ADOPT);
    assert_int_equal(q->pick, 2);
    assert_true(q->w[0] == 0 && q->w[1] == 0 && q->w[2] == 0);
    assert_int_equal(rs_combine_plan(in4, 3, 2, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_NONE);
    /* ... and while they still differ, the stale one weighs nothing and
     * the others weigh what they learned beyond each other only */
    assert_int_equal(rs_know_add(&ky, "c", 5, 5, 10), RS_OK);
    assert_int_equal(rs_know_add(&kx, "a", 3, 3, 6), RS_OK);
    assert_int_equal(rs_combine_plan(in4, 3, 1, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_AVERAGE);
    assert_int_equal(q->navg, 2);
    assert_true(q->w[0] == 3 && q->w[1] == 0 && q->w[2] == 5);
    assert_true(q->k[0] == 6 && q->k[1] == 0 && q->k[2] == 10);
    /* the same version on two instances (one adopted it) with a stale
     * third: nothing to do for either */
    rs_know_t kw = kx;
    rs_combine_input_t in5[3] = {{"a", "seq-0a1b2c3d-44.avg2-00000001", &kx},
                                 {"b", "seq-0a1b2c3d-9.b", &ks},
                                 {"c", "seq-0a1b2c3d-44.avg2-00000001", &kw}};
    assert_int_equal(rs_combine_plan(in5, 3, 0, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_NONE);
    assert_int_equal(rs_combine_plan(in5, 3, 2, q, err, sizeof(err)), RS_OK);
    assert_int_equal(q->action, RS_COMBINE_NONE);
    /* refused: order, duplicates, lineage, names */
    rs_combine_input_t bad[2] = {in[1], in[0]};
    assert_int_equal(rs_combine_plan(bad, 2, 0, q, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(err, "increasing"));
    bad[0] = in[0];
    bad[1] = in[0];
    assert_int_equal(rs_combine_plan(bad, 2, 0, q, err, sizeof(err)),
                     RS_ERR_INVALID);
    bad[1] = (rs_combine_input_t){"b", "seq-ffffffff-12.b", &kb};
    assert_int_equal(rs_combine_plan(bad, 2, 0, q, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(err, "lineage mismatch"));
    bad[1] = (rs_combine_input_t){"b", "lr-0a1b2c3d-12.b", &kb};
    assert_int_equal(rs_combine_plan(bad, 2, 0, q, err, sizeof(err)),
                     RS_ERR_INVALID);
    bad[1] = (rs_combine_input_t){"b", "seq-0a1b2c3d-x", &kb};
    assert_int_equal(rs_combine_plan(bad, 2, 0, q, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_int_equal(rs_combine_plan(in, 0, 0, q, err, sizeof(err)),
                     RS_ERR_INVALID);
    free(p);
    free(q);
}

/* ------------------------------------------------------ the arithmetic */

/* Combine a and b (learned apart by instances "a" and "b") and check
 * every state array against the weighted mean, the standardiser against
 * the pooled formula, and the counters. */
static void check_combine(const rs_model_conf_t *c) {
    char err[256];
    rs_model_t *a = new_model(c), *b = new_model(c);
    train(a, c, 60, 1);
    train(b, c, 20, 2);
    rs_model_set_version(a, 3);
    rs_model_set_version_tag(a, "a");
    rs_model_set_version(b, 5);
    rs_model_set_version_tag(b, "b");
    rs_model_stats_t sa, sb;
    rs_model_stats(a, &sa);
    rs_model_stats(b, &sb);
    rs_know_t ka = know1("a", sa.updates), kb = know1("b", sb.updates);
    ka.o[0].obs = sa.observations;
    kb.o[0].obs = sb.observations;
    rs_combine_input_t in[2] = {{"a", sa.version, &ka}, {"b", sb.version, &kb}};
    rs_combine_plan_t *p = malloc(sizeof(*p));
    assert_int_equal(rs_combine_plan(in, 2, 0, p, err, sizeof(err)), RS_OK);
    assert_int_equal(p->action, RS_COMBINE_AVERAGE);
    /* as received: loaded from their bytes */
    rs_model_t *ma[2] = {copy_of(a, c), copy_of(b, c)};
    rs_model_t *r = NULL;
    assert_int_equal(rs_combine_models(ma, p, c, &r, err, sizeof(err)), RS_OK);
    assert_string_equal(rs_model_version(r), p->version);
    assert_int_equal(rs_model_version_number(r), p->number);

    rs_model_view_t va, vb, vr;
    rs_model_view(ma[0], &va);
    rs_model_view(ma[1], &vb);
    rs_model_view(r, &vr);
    const double wa = p->w[0] / (p->w[0] + p->w[1]),
                 wb = p->w[1] / (p->w[0] + p->w[1]);
    assert_true(wa == 60.0 / 80.0 || c->kind == RS_MODEL_SEQ);
    for (int k = 0; k < vr.narr; k++)
        for (size_t i = 0; i < vr.arr[k].n; i++) {
            double x = vr.arr[k].f32 ? vr.arr[k].f32[i] : vr.arr[k].f64[i];
            double ea = va.arr[k].f32 ? va.arr[k].f32[i] : va.arr[k].f64[i];
            double eb = vb.arr[k].f32 ? vb.arr[k].f32[i] : vb.arr[k].f64[i];
            double want = wa * ea + wb * eb;
            if (vr.arr[k].f32) want = (float)want;
            if (x != want)
                fail_msg("%s[%zu] = %.9g, want %.9g", vr.arr[k].name, i, x,
                         want);
        }
    const double K = p->k[0] + p->k[1];
    for (int i = 0; i < DIM; i++) {
        double mean = p->k[0] / K * va.mean[i] + p->k[1] / K * vb.mean[i];
        double var = p->k[0] / K * (va.m2[i] / (double)*va.nobs +
                                    (va.mean[i] - mean) * (va.mean[i] - mean)) +
                     p->k[1] / K * (vb.m2[i] / (double)*vb.nobs +
                                    (vb.mean[i] - mean) * (vb.mean[i] - mean));
        assert_true(fabs(vr.mean[i] - mean) <= 1e-12 * (1 + fabs(mean)));
        assert_true(fabs(vr.m2[i] / (double)*vr.nobs - var) <=
                    1e-9 * (1 + var));
    }
    assert_int_equal(*vr.nobs, sa.observations + sb.observations);
    rs_model_stats_t sr;
    rs_model_stats(r, &sr);
    assert_int_equal(sr.updates, sa.updates + sb.updates);

    /* determinism: again, in another order of loading, from the
     * originals: the same bytes */
    rs_model_t *r2 = NULL, *mb[2] = {copy_of(a, c), copy_of(b, c)};
    assert_int_equal(rs_combine_models(mb, p, c, &r2, err, sizeof(err)),
                     RS_OK);
    assert_true(same_bytes(r, r2));

    /* stored under its tagged name: loads with that name and scores bit
     * for bit like the combined model (what audit --rescore needs) */
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/store-%s", tmpdir, rs_model_kind(r));
    rs_model_store_t *st = rs_model_store_open(dir, 10, err, sizeof(err));
    assert_non_null(st);
    assert_int_equal(rs_model_store_put(st, r, err, sizeof(err)), RS_OK);
    rs_model_t *back = NULL;
    assert_int_equal(rs_model_store_load(st, p->version, c, &back, err,
                                         sizeof(err)),
                     RS_OK);
    assert_string_equal(rs_model_version(back), p->version);
    rs_model_store_entry_t es[4];
    assert_int_equal(rs_model_store_list(st, es, 4), 1);
    assert_string_equal(es[0].version, p->version);
    assert_int_equal(es[0].number, p->number);
    assert_int_equal(rs_model_store_next(st), p->number + 1);
    /* scores: the trainer's snapshot of r vs the stored copy */
    rs_model_t *s1 = rs_model_new_like(r, c, err, sizeof(err)),
               *s2 = rs_model_new_like(r, c, err, sizeof(err));
    rs_model_weights_t *w1 = rs_model_weights_take(r),
                       *w2 = rs_model_weights_take(back);
    assert_string_equal(rs_model_weights_version(w1), p->version);
    assert_int_equal(rs_model_weights_use(s1, w1), RS_OK);
    assert_int_equal(rs_model_weights_use(s2, w2), RS_OK);
    rs_model_weights_release(w1);
    rs_model_weights_release(w2);
    for (int i = 0; i < 20; i++) {
        float x[DIM];
        for (int k = 0; k < DIM; k++) x[k] = (float)((i * 5 + k * 3) % 9) - 4;
        char id[16];
        snprintf(id, sizeof(id), "p%d", i);
        rs_model_input_t in1;
        memset(&in1, 0, sizeof(in1));
        in1.event_id = id;
        in1.entity_id = "card-1";
        in1.event_time_ms = T0 + 100000000 + i;
        in1.x = x;
        rs_model_output_t o1, o2;
        assert_int_equal(rs_model_forward(s1, &in1, 1, &o1, NULL, 0), RS_OK);
        assert_int_equal(rs_model_forward(s2, &in1, 1, &o2, NULL, 0), RS_OK);
        assert_memory_equal(&o1.score, &o2.score, sizeof(float));
        assert_true(o1.score > 0 && o1.score < 1);
    }
    rs_model_destroy(s1);
    rs_model_destroy(s2);
    rs_model_destroy(back);
    rs_model_store_close(st);
    rs_model_destroy(r);
    rs_model_destroy(r2);
    for (int i = 0; i < 2; i++) {
        rs_model_destroy(ma[i]);
        rs_model_destroy(mb[i]);
    }
    rs_model_destroy(a);
    rs_model_destroy(b);
    free(p);
}

static void test_combine_lr(void **state) {
    (void)state;
    rs_model_conf_t c = conf_lr();
    check_combine(&c);
}

static void test_combine_seq(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq();
    check_combine(&c);
}

/* Models of another kind, architecture or feature set are refused. */
static void test_lineage_refused(void **state) {
    (void)state;
    char err[256];
    rs_model_conf_t cl = conf_lr(), cs = conf_seq();
    rs_model_t *a = new_model(&cl), *b = new_model(&cs);
    static const char *const other[DIM] = {"f0", "f1", "f2", "f3",
                                           "f4", "f5", "f6", "g7"};
    rs_model_t *d = rs_model_new(&cl, DIM, other, err, sizeof(err));
    assert_non_null(d);
    rs_combine_plan_t *p = calloc(1, sizeof(*p));
    p->action = RS_COMBINE_AVERAGE;
    p->n = 2;
    p->w[0] = p->w[1] = 1;
    snprintf(p->version, sizeof(p->version), "lr-00000000-2.avg2-00000000");
    p->number = 2;
    rs_model_t *r = (rs_model_t *)1;
    rs_model_t *m1[2] = {a, b}, *m2[2] = {a, d};
    assert_int_equal(rs_combine_models(m1, p, NULL, &r, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_null(r);
    assert_non_null(strstr(err, "lineage mismatch"));
    assert_int_equal(rs_combine_models(m2, p, NULL, &r, err, sizeof(err)),
                     RS_ERR_INVALID);
    assert_non_null(strstr(err, "lineage mismatch"));
    p->action = RS_COMBINE_ADOPT;
    assert_int_equal(rs_combine_models(m2, p, NULL, &r, err, sizeof(err)),
                     RS_ERR_INVALID);
    rs_model_destroy(a);
    rs_model_destroy(b);
    rs_model_destroy(d);
    free(p);
}

/* ------------------------------------------------------ version tags */

static void test_tags(void **state) {
    (void)state;
    rs_model_conf_t c = conf_lr();
    rs_model_t *m = new_model(&c);
    rs_model_set_version(m, 12);
    char base[RS_VERSION_MAX];
    rs_strlcpy(base, rs_model_version(m), sizeof(base));
    assert_int_equal(rs_model_set_version_tag(m, "node-1"), RS_OK);
    char want[RS_VERSION_MAX + 8];
    snprintf(want, sizeof(want), "%s.node-1", base);
    assert_string_equal(rs_model_version(m), want);
    rs_model_set_version(m, 13); /* the tag stays */
    assert_non_null(strstr(rs_model_version(m), "-13.node-1"));
    assert_int_equal(rs_model_set_version_tag(m, "Bad"), RS_ERR_INVALID);
    assert_int_equal(rs_model_set_version_tag(m, "a.b"), RS_ERR_INVALID);
    assert_int_equal(rs_model_set_version_tag(m, "abcdefghijklmnopq"),
                     RS_ERR_INVALID);
    assert_non_null(strstr(rs_model_version(m), "-13.node-1"));
    assert_int_equal(rs_model_set_version_tag(m, ""), RS_OK);
    assert_null(strchr(rs_model_version(m), '.'));
    uint64_t n;
    size_t b;
    assert_true(rs_model_version_parse("seq-0a1b2c3d-17.avg3-0f0f0f0f", &n,
                                       &b));
    assert_int_equal(n, 17);
    assert_int_equal(b, strlen("seq-0a1b2c3d-17"));
    assert_true(rs_model_version_parse("seq-0a1b2c3d-17", &n, &b));
    assert_int_equal(b, strlen("seq-0a1b2c3d-17"));
    assert_false(rs_model_version_parse("seq-0a1b2c3d-17.", NULL, NULL));
    assert_false(rs_model_version_parse("seq-0a1b2c3d-17.x/y", NULL, NULL));
    assert_false(rs_model_version_parse("seq-0a1b2c3d-.a", NULL, NULL));
    assert_false(rs_model_version_parse("../x", NULL, NULL));
    rs_model_destroy(m);
}

/* --------------------------------------------------------- the message */

static void reseal(uint8_t *b, size_t n) {
    uint64_t h = rs_hash64(b, n - 8);
    for (int i = 0; i < 8; i++) b[n - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void test_message(void **state) {
    (void)state;
    char err[256];
    rs_combine_msg_t *m = calloc(1, sizeof(*m)), *d = calloc(1, sizeof(*d));
    rs_strlcpy(m->instance, "node-1", sizeof(m->instance));
    rs_strlcpy(m->version, "seq-0a1b2c3d-9.avg2-01234567",
               sizeof(m->version));
    m->flags = RS_COMBINE_MSG_COMBINED;
    m->produced_ms = 1767225600123LL;
    rs_know_clear(&m->know);
    rs_know_add(&m->know, "node-1", 100, 90, 1000);
    rs_know_add(&m->know, "seq-0a1b2c3d-4", 7, 7, 70);
    m->ninputs = 2;
    rs_strlcpy(m->inputs[0].version, "seq-0a1b2c3d-8.node-1",
               sizeof(m->inputs[0].version));
    m->inputs[0].weight = 0.75;
    rs_strlcpy(m->inputs[1].version, "seq-0a1b2c3d-5.node-2",
               sizeof(m->inputs[1].version));
    m->inputs[1].weight = 0.25;
    static const uint8_t model[] = "RSMODEL\0not really a model";
    m->model = model;
    m->model_len = sizeof(model);
    uint8_t *b;
    size_t n;
    assert_int_equal(rs_combine_msg_encode(m, &b, &n, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_combine_msg_decode(b, n, d, err, sizeof(err)), RS_OK);
    assert_string_equal(d->instance, "node-1");
    assert_string_equal(d->version, m->version);
    assert_int_equal(d->flags, RS_COMBINE_MSG_COMBINED);
    assert_int_equal(d->produced_ms, m->produced_ms);
    assert_true(rs_know_equal(&d->know, &m->know));
    assert_int_equal(d->ninputs, 2);
    assert_string_equal(d->inputs[1].version, m->inputs[1].version);
    assert_true(d->inputs[0].weight == 0.75);
    assert_int_equal(d->model_len, sizeof(model));
    assert_memory_equal(d->model, model, sizeof(model));
    /* every truncation and every single bit flip is refused */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(rs_combine_msg_decode(b, k, d, err, sizeof(err)),
                         RS_ERR_CORRUPT);
    for (size_t k = 0; k < n; k++) {
        b[k] ^= 0x10;
        assert_int_equal(rs_combine_msg_decode(b, n, d, err, sizeof(err)),
                         RS_ERR_CORRUPT);
        b[k] ^= 0x10;
    }
    /* crafted (valid checksum): each names what is wrong */
    struct {
        size_t off;
        uint8_t v;
        const char *what;
    } cr[] = {
        {0, 'X', "magic"},
        {4, 2, "format"},
        {5, 0x80, "flags"},
        {9, 'N', "instance"},      /* "node-1" -> "Node-1" */
        {16, '/', "version"},      /* inside the version name */
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(cr); i++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        c[cr[i].off] = cr[i].v;
        reseal(c, n);
        assert_int_equal(rs_combine_msg_decode(c, n, d, err, sizeof(err)),
                         RS_ERR_CORRUPT);
        if (!strstr(err, cr[i].what))
            fail_msg("crafted %s: '%s'", cr[i].what, err);
        free(c);
    }
    /* an origin twice, labels above updates, a weight outside [0, 1] */
    rs_combine_msg_t *e = calloc(1, sizeof(*e));
    *e = *m;
    uint8_t *c;
    size_t cn;
    e->know.o[1] = e->know.o[0];
    rs_strlcpy(e->know.o[1].origin, "node-2", sizeof(e->know.o[1].origin));
    assert_int_equal(rs_combine_msg_encode(e, &c, &cn, err, sizeof(err)),
                     RS_OK);
    char *o2 = memmem(c, cn, "node-2", 6);
    assert_non_null(o2);
    memcpy(o2, "node-1", 6);
    reseal(c, cn);
    assert_int_equal(rs_combine_msg_decode(c, cn, d, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "twice"));
    rs_free(c);
    *e = *m;
    e->know.o[0].labels = 101;
    assert_int_equal(rs_combine_msg_encode(e, &c, &cn, err, sizeof(err)),
                     RS_ERR_INVALID); /* the encoder refuses it too */
    *e = *m;
    e->inputs[0].weight = 2.0;
    assert_int_equal(rs_combine_msg_encode(e, &c, &cn, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(rs_combine_msg_decode(c, cn, d, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "weight"));
    rs_free(c);
    /* trailing bytes: a model length that does not match */
    uint8_t *t = malloc(n + 1);
    memcpy(t, b, n - 8);
    t[n - 8] = 0;
    reseal(t, n + 1);
    assert_int_equal(rs_combine_msg_decode(t, n + 1, d, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    assert_non_null(strstr(err, "model of"));
    free(t);
    /* a lineage file: no model */
    *e = *m;
    e->model = NULL;
    e->model_len = 0;
    assert_int_equal(rs_combine_msg_encode(e, &c, &cn, err, sizeof(err)),
                     RS_OK);
    assert_int_equal(rs_combine_msg_decode(c, cn, d, err, sizeof(err)), RS_OK);
    assert_int_equal(d->model_len, 0);
    rs_free(c);
    assert_int_equal(rs_combine_msg_decode(NULL, 0, d, err, sizeof(err)),
                     RS_ERR_CORRUPT);
    rs_free(b);
    free(e);
    free(m);
    free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_know),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_combine_lr),
        cmocka_unit_test(test_combine_seq),
        cmocka_unit_test(test_lineage_refused),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
