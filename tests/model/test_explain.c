/* test_explain.c -- input logs, rescoring, what-if scoring and the
 * faithfulness of the explanations (model.h "input logs and rescoring",
 * RS_MODEL_FWD_DRY, skip_hist, rs_model_attn_t.rank; ops/bench/faithful.h).
 *
 *  - every input log written by rs_model_forward rescores bit for bit,
 *    both kinds, events scored in batches (several per entity) or alone,
 *    with the model itself, with a copy loaded from its file and with a
 *    weight snapshot (what the audit does with the model store);
 *  - malformed logs are RS_ERR_CORRUPT, logs of another kind, feature set
 *    or architecture RS_ERR_INVALID naming the difference;
 *  - a what-if forward changes nothing (a twin model without them stays
 *    bit-identical), scores like the real forward, sees unknown entities
 *    as new; skip_hist leaves out exactly the event of that rank;
 *  - the attended events are the largest weights in order, the newer
 *    first on ties;
 *  - faithfulness on a small trained generated stream: removing the
 *    top-attributed feature / top-attended past event moves the score more
 *    than a random one (ratio > 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/seq_int.h"
#include "ops/bench/faithful.h"
#include "rs_test_learn.h"

#define DIM 4
static const char *const names4[DIM] = {"f0", "f1", "f2", "f3"};
static const char *const names4b[DIM] = {"f0", "f1", "f2", "g3"};
#define T0 1700000000000LL

static char tmpdir[256];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs_test_explain_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Small "seq" model with every code path (2 layers, wrapping caches). */
static rs_model_conf_t conf_seq(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = 8;
    c.seq.d_model = 8;
    c.seq.history = 4;
    c.seq.layers = 2;
    c.seq.experts = 4;
    c.seq.top_k = 2;
    c.seq.expert_hidden = 8;
    c.seq.buckets = 16;
    c.seq.max_entities = 16;
    c.seq.seed = 7;
    c.seq.warmup_updates = 1000000; /* all layers learn */
    return c;
}

static rs_model_conf_t conf_lr(void) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_LR;
    c.batch_max = 16;
    return c;
}

static rs_model_t *new_model(const rs_model_conf_t *c, int dim,
                             const char *const *names) {
    char err[256] = "";
    rs_model_t *m = rs_model_new(c, dim, names, err, sizeof(err));
    if (!m) print_message("rs_model_new: %s\n", err);
    assert_non_null(m);
    return m;
}

/* The same with its learning log and learner (c: the learner's horizon:
 * label_horizon is set where maturity matters). */
static rs_test_learn_t *new_tl(const rs_model_conf_t *c, int dim,
                               const char *const *names) {
    char err[256] = "";
    rs_test_learn_t *t = rs_test_learn_new(c, dim, names, err, sizeof(err));
    if (!t) fail_msg("rs_test_learn_new: %s", err);
    return t;
}

/* A deterministic stream: few entities (caches wrap), counterparties,
 * categoricals, some non-finite features. */
typedef struct evs_s {
    char id[32], ent[32], cp[32];
    float x[32];
    rs_model_input_t in;
} evs_t;

static evs_t *make_stream(int n, int n_ent, int dim, uint64_t seed) {
    evs_t *ev = calloc((size_t)n, sizeof(*ev));
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    int64_t t = T0;
    for (int i = 0; i < n; i++) {
        evs_t *e = &ev[i];
        t += 1000 + (int64_t)rs_rng_below(&rng, 3600000);
        snprintf(e->id, sizeof(e->id), "ev-%d", i);
        snprintf(e->ent, sizeof(e->ent), "card-%d",
                 (int)rs_rng_below(&rng, (uint64_t)n_ent));
        snprintf(e->cp, sizeof(e->cp), "m-%d", (int)rs_rng_below(&rng, 5));
        for (int k = 0; k < dim; k++) e->x[k] = (float)rs_rng_normal(&rng) * 3;
        if (i % 11 == 5) e->x[1] = NAN;
        e->in.event_id = e->id;
        e->in.entity_id = e->ent;
        e->in.counterparty_id = (i % 7 == 3) ? "" : e->cp;
        e->in.event_time_ms = t;
        e->in.amount = (float)(10 + i);
        e->in.x = e->x;
        e->in.n_cat = i % 3;
        for (int c = 0; c < e->in.n_cat; c++)
            e->in.cat_hash[c] = 1000 * (c + 1) + rs_rng_below(&rng, 3);
    }
    return ev;
}

/* Labels: every 3rd event positive, so the weights move (a label of an
 * event already learned is a repeat: nothing changes). */
static void learn_some(rs_test_learn_t *t, const evs_t *ev, int from, int to) {
    for (int i = from; i < to; i++)
        assert_int_equal(rs_test_learn_label(t, ev[i].id, i % 3 == 0, NULL),
                         RS_OK);
}

typedef struct logs_s {
    int n;
    size_t max;
    uint8_t *buf;        /* [n][max] */
    size_t *len;         /* [n] */
    float *score;        /* [n] */
} logs_t;

static void logs_init(logs_t *l, int n, size_t max) {
    l->n = n;
    l->max = max;
    l->buf = calloc((size_t)n, max);
    l->len = calloc((size_t)n, sizeof(size_t));
    l->score = calloc((size_t)n, sizeof(float));
}

static void logs_free(logs_t *l) {
    free(l->buf);
    free(l->len);
    free(l->score);
}

/* Score ev[from..to) in chunks of `chunk` with REMEMBER | EXPLAIN and
 * contributions, each event logging into lg[i]. */
static void score_logged(rs_test_learn_t *t, evs_t *ev, int from, int to,
                         int chunk, logs_t *lg) {
    static rs_model_input_t in[64];
    static rs_model_output_t out[64];
    static float contrib[64 * 32];
    for (int i0 = from; i0 < to; i0 += chunk) {
        int n = RS_MIN(chunk, to - i0);
        for (int k = 0; k < n; k++) {
            in[k] = ev[i0 + k].in;
            in[k].log = lg->buf + (size_t)(i0 + k) * lg->max;
            in[k].log_cap = lg->max;
        }
        assert_int_equal(rs_test_learn_forward(t, in, n, out, contrib,
                                               RS_MODEL_FWD_REMEMBER |
                                                   RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        for (int k = 0; k < n; k++) {
            assert_true(out[k].log_len > 0 && out[k].log_len <= lg->max);
            lg->len[i0 + k] = out[k].log_len;
            lg->score[i0 + k] = out[k].score;
        }
    }
}

static int rescore_all(rs_model_t *m, const logs_t *lg, int from, int to) {
    int bad = 0;
    for (int i = from; i < to; i++) {
        float s = -1;
        char err[256] = "";
        rs_err_t e = rs_model_rescore(m, lg->buf + (size_t)i * lg->max,
                                      lg->len[i], &s, err, sizeof(err));
        if (e != RS_OK) print_message("rescore %d: %s\n", i, err);
        assert_int_equal(e, RS_OK);
        bad += memcmp(&s, &lg->score[i], sizeof(float)) != 0;
    }
    return bad;
}

/* Events of lg [from, to) rescored by a and by b: how many differ. */
static int rescore_diff(rs_model_t *a, rs_model_t *b, const logs_t *lg,
                        int from, int to) {
    int bad = 0;
    for (int i = from; i < to; i++) {
        float sa = -1, sb = -2;
        char err[256] = "";
        const uint8_t *log = lg->buf + (size_t)i * lg->max;
        assert_int_equal(rs_model_rescore(a, log, lg->len[i], &sa, err,
                                          sizeof(err)), RS_OK);
        assert_int_equal(rs_model_rescore(b, log, lg->len[i], &sb, err,
                                          sizeof(err)), RS_OK);
        bad += memcmp(&sa, &sb, sizeof(float)) != 0;
    }
    return bad;
}

/* ------------------------------------------------- logs and rescoring */

static void check_rescore_kind(const rs_model_conf_t *c, int dim,
                               const char *const *names, int chunk) {
    enum { N = 400 };
    char err[256], path[512];
    evs_t *ev = make_stream(N, 6, dim, 3);
    rs_test_learn_t *t = new_tl(c, dim, names);
    rs_model_t *m = t->m;
    logs_t lg;
    logs_init(&lg, N, rs_model_log_max(m));

    /* learning between batches: each batch rescored right after it */
    for (int i = 0; i < 300; i += 50) {
        score_logged(t, ev, i, i + 50, chunk, &lg);
        assert_int_equal(rescore_all(m, &lg, i, i + 50), 0);
        learn_some(t, ev, i, i + 50);
    }
    /* the version saved now, then scored: a loaded copy (the model store)
     * rescores the later logs bit for bit */
    snprintf(path, sizeof(path), "%s/m.rsm", tmpdir);
    assert_int_equal(rs_model_save(m, path, err, sizeof(err)), RS_OK);
    rs_model_weights_t *wsaved = rs_model_weights_take(m); /* what the
                                                   * version publishes */
    score_logged(t, ev, 300, N, chunk, &lg);
    rs_model_t *ld = NULL;
    rs_model_conf_t small = *c;  /* audit: small buffers, arch from file */
    small.seq.max_entities = small.batch_max + 1;
    assert_int_equal(rs_model_load(path, &small, &ld, err, sizeof(err)), RS_OK);
    assert_int_equal(rescore_all(ld, &lg, 300, N), 0);
    /* weights moved: the old logs no longer give the old scores */
    learn_some(t, ev, 300, N);
    int moved = 0;
    for (int i = 300; i < N; i++) {
        float s;
        assert_int_equal(rs_model_rescore(m, lg.buf + (size_t)i * lg.max,
                                          lg.len[i], &s, err, sizeof(err)),
                         RS_OK);
        moved += s != lg.score[i];
    }
    assert_true(moved > 0);
    /* what a version publishes (with model.average, the average of its
     * weights) survives the file: a scorer using the snapshot of the saved
     * model and one using the snapshot of the loaded copy (audit --rescore
     * scores with it) agree bit for bit */
    rs_model_weights_t *w = rs_model_weights_take(ld);
    rs_model_t *sa = new_model(c, dim, names), *sb = new_model(c, dim, names);
    assert_int_equal(rs_model_weights_use(sa, wsaved), RS_OK);
    assert_int_equal(rs_model_weights_use(sb, w), RS_OK);
    assert_int_equal(rescore_diff(sa, sb, &lg, 0, N), 0);
    /* ... and with the average on, it is not the last weights */
    if (c->average > 0) assert_true(rescore_diff(sa, ld, &lg, 0, N) > 0);
    rs_model_weights_release(w);
    rs_model_weights_release(wsaved);
    rs_model_destroy(sa);
    rs_model_destroy(sb);
    rs_model_destroy(ld);
    rs_test_learn_destroy(t);
    logs_free(&lg);
    free(ev);
}

static void test_rescore_seq(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq();
    check_rescore_kind(&c, DIM, names4, 8); /* batches, entities repeat */
    check_rescore_kind(&c, DIM, names4, 1); /* one by one */
    c.batch_max = 3;
    check_rescore_kind(&c, DIM, names4, 37); /* chunked by batch_max */
}

static void test_rescore_lr(void **state) {
    (void)state;
    /* dim 23: cblas_sgemv gives a row other bits alone than in a batch */
    static const char *names23[23];
    static char buf[23][8];
    for (int i = 0; i < 23; i++) {
        snprintf(buf[i], sizeof(buf[i]), "v%d", i);
        names23[i] = buf[i];
    }
    rs_model_conf_t c = conf_lr();
    check_rescore_kind(&c, 23, names23, 37);
    check_rescore_kind(&c, 23, names23, 1);
    check_rescore_kind(&c, DIM, names4, 16);
    c.average = 0; /* versions publish the last weights */
    check_rescore_kind(&c, DIM, names4, 16);
}

static void test_log_sizes(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq();
    rs_model_t *m = new_model(&c, DIM, names4);
    /* header 24 + fixed 52 + cat 16*8 + x 4*4 + L * (8 + 2*2*8*4) + 4 */
    assert_int_equal(rs_model_log_max(m), 24 + 52 + 128 + 16 + 4 * 136 + 4);
    rs_model_destroy(m);
    c = conf_lr();
    m = new_model(&c, DIM, names4);
    assert_int_equal(rs_model_log_max(m), 24 + 16 + 4);
    rs_model_destroy(m);
    /* defaults, dim 17: about 8.3 KiB */
    rs_model_conf_init(&c);
    c.seq.max_entities = 1024;
    static const char *n17[17];
    static char b17[17][8];
    for (int i = 0; i < 17; i++) {
        snprintf(b17[i], sizeof(b17[i]), "v%d", i);
        n17[i] = b17[i];
    }
    m = new_model(&c, 17, n17);
    size_t mx = rs_model_log_max(m);
    print_message("log_max at the seq defaults, dim 17: %zu bytes\n", mx);
    assert_true(mx > 8000 && mx < 9000);
    rs_model_destroy(m);
}

/* Re-seal a log whose bytes were edited (checksum over all before it). */
static void reseal(uint8_t *p, size_t len) {
    uint32_t s = (uint32_t)rs_hash64(p, len - 4);
    for (int i = 0; i < 4; i++) p[len - 4 + i] = (uint8_t)(s >> (8 * i));
}

static void expect_err(rs_model_t *m, const uint8_t *log, size_t len,
                       rs_err_t want, const char *needle) {
    char err[256] = "";
    float s = 0;
    rs_err_t e = rs_model_rescore(m, log, len, &s, err, sizeof(err));
    if (e != want || (needle && !strstr(err, needle)))
        print_message("got %s '%s', want %s '%s'\n", rs_err_str(e), err,
                      rs_err_str(want), needle ? needle : "");
    assert_int_equal(e, want);
    if (needle) assert_non_null(strstr(err, needle));
}

static void test_log_errors(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq();
    rs_test_learn_t *t = new_tl(&c, DIM, names4);
    rs_model_t *m = t->m;
    evs_t *ev = make_stream(40, 2, DIM, 5);
    logs_t lg;
    logs_init(&lg, 40, rs_model_log_max(m));
    score_logged(t, ev, 0, 40, 8, &lg);
    const int i = 39; /* full history */
    const size_t len = lg.len[i];
    uint8_t *good = lg.buf + (size_t)i * lg.max;
    uint8_t *b = malloc(lg.max + 8);
    assert_int_equal(rescore_all(m, &lg, 0, 40), 0);

    memcpy(b, good, len);
    expect_err(m, b, len - 1, RS_ERR_CORRUPT, "announces");
    expect_err(m, b, 10, RS_ERR_CORRUPT, "envelope");
    b[0] = 'X';
    expect_err(m, b, len, RS_ERR_CORRUPT, "magic");
    memcpy(b, good, len);
    b[4] = 2;
    expect_err(m, b, len, RS_ERR_CORRUPT, "format");
    memcpy(b, good, len);
    b[len / 2] ^= 1;
    expect_err(m, b, len, RS_ERR_CORRUPT, "checksum");
    /* counts that do not fit the length (sealed) */
    memcpy(b, good, len);
    b[24 + 28 + 20] = 9; /* n_hist > L */
    reseal(b, len);
    expect_err(m, b, len, RS_ERR_CORRUPT, "history");
    memcpy(b, good, len);
    b[24 + 28 + 16] = 3; /* n_cat other than written */
    reseal(b, len);
    expect_err(m, b, len, RS_ERR_CORRUPT, "counts need");
    memcpy(b, good, len);
    b[5] = 7;
    reseal(b, len);
    expect_err(m, b, len, RS_ERR_CORRUPT, "kind");
    expect_err(m, NULL, 0, RS_ERR_INVALID, NULL);

    /* another kind */
    rs_model_conf_t cl = conf_lr();
    rs_model_t *l = new_model(&cl, DIM, names4);
    expect_err(l, good, len, RS_ERR_INVALID, "'seq' model, this model is 'lr'");
    /* another architecture: the field is named */
    rs_model_conf_t c2 = conf_seq();
    c2.seq.d_model = 16;
    rs_model_t *m2 = new_model(&c2, DIM, names4);
    expect_err(m2, good, len, RS_ERR_INVALID, "seq.d_model is 8 in the log");
    rs_model_destroy(m2);
    c2 = conf_seq();
    c2.seq.history = 8;
    m2 = new_model(&c2, DIM, names4);
    expect_err(m2, good, len, RS_ERR_INVALID, "seq.history");
    rs_model_destroy(m2);
    /* other feature names / dimension */
    m2 = new_model(&c, DIM, names4b);
    expect_err(m2, good, len, RS_ERR_INVALID, "feature names");
    rs_model_destroy(m2);
    m2 = new_model(&c, DIM - 1, names4);
    expect_err(m2, good, len, RS_ERR_INVALID, "features");
    rs_model_destroy(m2);
    /* same architecture, other seed (another lineage): rescores, other
     * score -- a what-if with another version is allowed */
    c2 = conf_seq();
    c2.seq.seed = 8;
    m2 = new_model(&c2, DIM, names4);
    float s;
    char err[256];
    assert_int_equal(rs_model_rescore(m2, good, len, &s, err, sizeof(err)),
                     RS_OK);
    assert_true(s != lg.score[i]);
    rs_model_destroy(m2);

    /* an lr log in a seq model */
    float x[DIM] = {1, 2, 3, 4};
    uint8_t lb[64];
    rs_model_input_t in;
    memset(&in, 0, sizeof(in));
    in.x = x;
    in.event_id = "e";
    in.log = lb;
    in.log_cap = sizeof(lb);
    rs_model_output_t out;
    assert_int_equal(rs_model_forward(l, &in, 1, &out, NULL, 0), RS_OK);
    assert_int_equal(out.log_len, 44);
    expect_err(m, lb, out.log_len, RS_ERR_INVALID, "'lr' model");
    expect_err(l, lb, out.log_len - 4, RS_ERR_CORRUPT, NULL);
    /* too small a buffer: nothing scored */
    in.log_cap = 43;
    assert_int_equal(rs_model_forward(l, &in, 1, &out, NULL, 0), RS_ERR_INVALID);
    rs_model_input_t si = ev[0].in;
    si.log = b;
    si.log_cap = rs_model_log_max(m) - 1;
    rs_model_stats_t st0, st1;
    rs_model_stats(m, &st0);
    const uint64_t end0 = rs_test_learn_end(t);
    size_t c0 = rs_model_caches_size(m);
    assert_int_equal(rs_model_forward(m, &si, 1, &out, NULL, 0), RS_ERR_INVALID);
    assert_int_not_equal(rs_test_learn_forward(t, &si, 1, &out, NULL,
                                               RS_MODEL_FWD_REMEMBER),
                         RS_OK);
    rs_model_stats(m, &st1);
    assert_int_equal(rs_test_learn_end(t), end0); /* no record */
    assert_int_equal(rs_model_caches_size(m), c0); /* no cached event */
    assert_int_equal(st0.entities, st1.entities);
    /* REMEMBER without a place for the record: nothing scored either */
    si = ev[0].in;
    assert_int_equal(rs_model_forward(m, &si, 1, &out, NULL,
                                      RS_MODEL_FWD_REMEMBER),
                     RS_ERR_INVALID);
    assert_int_equal(rs_model_caches_size(m), c0);
    rs_model_destroy(l);
    rs_test_learn_destroy(t);
    free(b);
    logs_free(&lg);
    free(ev);
}

/* ------------------------------------------------------------- what-if */

static void outputs_equal(const rs_model_output_t *a, const rs_model_output_t *b) {
    assert_memory_equal(&a->score, &b->score, sizeof(float));
    assert_int_equal(a->n_attended, b->n_attended);
    assert_int_equal(a->n_hist, b->n_hist);
    for (int j = 0; j < a->n_attended; j++) {
        assert_string_equal(a->attended[j].event_id, b->attended[j].event_id);
        assert_memory_equal(&a->attended[j].weight, &b->attended[j].weight,
                            sizeof(float));
        assert_int_equal(a->attended[j].rank, b->attended[j].rank);
    }
}

static void test_dry_changes_nothing(void **state) {
    (void)state;
    enum { N = 304 }; /* batches of 8 */
    rs_model_conf_t c = conf_seq();
    c.seq.max_entities = 12; /* evictions happen */
    c.label_horizon = 6 * 3600000LL; /* maturity before some labels */
    rs_test_learn_t *ta = new_tl(&c, DIM, names4), *tb = new_tl(&c, DIM, names4);
    rs_model_t *a = ta->m, *b = tb->m;
    evs_t *ev = make_stream(N, 14, DIM, 9);
    rs_model_output_t oa[8], ob[8], od[8];
    float ca[8 * DIM], cd[8 * DIM];
    for (int i = 0; i < N; i += 8) {
        rs_model_input_t in[8], wi[8];
        for (int k = 0; k < 8; k++) in[k] = ev[i + k].in;
        /* what-ifs on a only: the batch itself (same entity repeated),
         * unknown entities, skips; REMEMBER is ignored */
        for (int k = 0; k < 8; k++) {
            wi[k] = in[k];
            wi[k].skip_hist = k % 3;
            if (k == 5) wi[k].entity_id = "nobody";
        }
        const uint64_t end0 = rs_test_learn_end(ta);
        assert_int_equal(rs_test_learn_forward(ta, wi, 8, od, cd,
                                               RS_MODEL_FWD_DRY |
                                                   RS_MODEL_FWD_EXPLAIN |
                                                   RS_MODEL_FWD_REMEMBER),
                         RS_OK);
        assert_int_equal(rs_test_learn_end(ta), end0); /* no record */
        assert_true(od[5].flags & RS_MODEL_OUT_NEW_ENTITY);
        assert_int_equal(od[5].n_hist, 0);
        /* a what-if of the first event equals its real score */
        assert_int_equal(rs_model_forward(a, in, 1, od, cd,
                                          RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        assert_int_equal(rs_test_learn_forward(ta, in, 8, oa, ca,
                                               RS_MODEL_FWD_REMEMBER |
                                                   RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        for (int k = 0; k < 8; k++) in[k] = ev[i + k].in;
        assert_int_equal(rs_test_learn_forward(tb, in, 8, ob, NULL,
                                               RS_MODEL_FWD_REMEMBER |
                                                   RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        outputs_equal(&od[0], &oa[0]);
        assert_memory_equal(cd, ca, sizeof(float) * DIM);
        for (int k = 0; k < 8; k++) {
            outputs_equal(&oa[k], &ob[k]);
            assert_int_equal(oa[k].flags, ob[k].flags);
        }
        if (i >= 40) learn_some(ta, ev, i - 40, i - 32), learn_some(tb, ev, i - 40, i - 32);
        assert_int_equal(rs_test_learn_advance(ta, ev[i].in.event_time_ms, 0,
                                               NULL, NULL),
                         rs_test_learn_advance(tb, ev[i].in.event_time_ms, 0,
                                               NULL, NULL));
    }
    rs_model_stats_t sa, sb;
    rs_model_stats(a, &sa);
    rs_model_stats(b, &sb);
    assert_true(sa.evictions > 0);
    assert_true(sa.horizon_negatives > 0);
    assert_int_equal(sa.updates, sb.updates);
    assert_int_equal(sa.horizon_negatives, sb.horizon_negatives);
    rs_learnlog_stats_t la, lb;
    rs_learnlog_stats(ta->log, &la);
    rs_learnlog_stats(tb->log, &lb);
    assert_int_equal(la.end, N);
    assert_int_equal(la.end, lb.end);
    assert_int_equal(la.cursor, lb.cursor);
    assert_int_equal(sa.entities, sb.entities);
    assert_int_equal(sa.evictions, sb.evictions);
    assert_memory_equal(&sa.drift_psi, &sb.drift_psi, sizeof(double));
    char pa[512], pb[512], err[256];
    snprintf(pa, sizeof(pa), "%s/a.rsm", tmpdir);
    snprintf(pb, sizeof(pb), "%s/b.rsm", tmpdir);
    assert_int_equal(rs_model_save(a, pa, err, sizeof(err)), RS_OK);
    assert_int_equal(rs_model_save(b, pb, err, sizeof(err)), RS_OK);
    FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
    int same = 1, ch;
    while ((ch = fgetc(fa)) != EOF) same &= ch == fgetc(fb);
    same &= fgetc(fb) == EOF;
    fclose(fa);
    fclose(fb);
    assert_true(same); /* identical weights, optimiser, drift state */

    /* misuse */
    rs_model_input_t in = ev[0].in;
    in.skip_hist = 1;
    assert_int_equal(rs_model_forward(a, &in, 1, oa, NULL, 0), RS_ERR_INVALID);
    in.skip_hist = -1;
    assert_int_equal(rs_model_forward(a, &in, 1, oa, NULL, RS_MODEL_FWD_DRY),
                     RS_ERR_INVALID);
    rs_test_learn_destroy(ta);
    rs_test_learn_destroy(tb);
    free(ev);
}

/* Attended ranks name the right cached events; skip_hist = rank + 1 leaves
 * exactly that one out; a rank past the history changes nothing; a
 * what-if log rescores to the what-if score. */
static void test_skip_and_rank(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq();
    c.seq.history = 6;
    rs_test_learn_t *t = new_tl(&c, DIM, names4);
    rs_model_t *m = t->m;
    evs_t *ev = make_stream(60, 1, DIM, 4); /* one entity: ev-i in order */
    rs_model_output_t out[8], base;
    for (int i = 0; i < 59; i++)
        assert_int_equal(rs_test_learn_forward(t, &ev[i].in, 1, out, NULL,
                                               RS_MODEL_FWD_REMEMBER),
                         RS_OK);
    const size_t lmax = rs_model_log_max(m);
    uint8_t *lb = malloc(lmax);
    rs_model_input_t in = ev[59].in;
    assert_int_equal(rs_model_forward(m, &in, 1, &base, NULL,
                                      RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                     RS_OK);
    const int L = 6;
    assert_int_equal(base.n_hist, L);
    assert_int_equal(base.n_attended, L);
    for (int j = 0; j < base.n_attended; j++) {
        /* rank r is event 58 - r (the cache holds ev-53 .. ev-58) */
        char want[32];
        snprintf(want, sizeof(want), "ev-%d", 58 - base.attended[j].rank);
        assert_string_equal(base.attended[j].event_id, want);
        assert_int_equal(base.attended[j].event_time_ms,
                         ev[58 - base.attended[j].rank].in.event_time_ms);
    }
    for (int r = 0; r < L; r++) {
        rs_model_output_t o;
        rs_model_input_t wi = in;
        wi.skip_hist = r + 1;
        wi.log = lb;
        wi.log_cap = lmax;
        assert_int_equal(rs_model_forward(m, &wi, 1, &o, NULL,
                                          RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        assert_int_equal(o.n_hist, L - 1);
        assert_int_equal(o.n_attended, L - 1);
        char gone[32];
        snprintf(gone, sizeof(gone), "ev-%d", 58 - r);
        for (int j = 0; j < o.n_attended; j++) {
            assert_string_not_equal(o.attended[j].event_id, gone);
            assert_true(o.attended[j].rank != r);
            char want[32];
            snprintf(want, sizeof(want), "ev-%d", 58 - o.attended[j].rank);
            assert_string_equal(o.attended[j].event_id, want);
        }
        assert_true(o.score != base.score);
        float s;
        char err[256];
        assert_int_equal(rs_model_rescore(m, lb, o.log_len, &s, err, sizeof(err)),
                         RS_OK);
        assert_memory_equal(&s, &o.score, sizeof(float));
    }
    /* past the history: nothing left out */
    rs_model_input_t wi = in;
    wi.skip_hist = L + 1;
    assert_int_equal(rs_model_forward(m, &wi, 1, out, NULL,
                                      RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                     RS_OK);
    outputs_equal(&out[0], &base);
    /* a batch mixing skips and plain rows = the rows one by one */
    rs_model_input_t bi[8];
    for (int k = 0; k < 8; k++) {
        bi[k] = in;
        bi[k].skip_hist = (k * 5) % 9;
    }
    assert_int_equal(rs_model_forward(m, bi, 8, out, NULL,
                                      RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                     RS_OK);
    for (int k = 0; k < 8; k++) {
        rs_model_output_t o;
        assert_int_equal(rs_model_forward(m, &bi[k], 1, &o, NULL,
                                          RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                         RS_OK);
        outputs_equal(&out[k], &o);
    }
    /* the real forward still scores like the what-if baseline */
    assert_int_equal(rs_test_learn_forward(t, &in, 1, out, NULL,
                                           RS_MODEL_FWD_REMEMBER |
                                               RS_MODEL_FWD_EXPLAIN),
                     RS_OK);
    outputs_equal(&out[0], &base);
    free(lb);
    rs_test_learn_destroy(t);
    free(ev);
}

/* ------------------------------------------------ explain_min (issue 12)
 *
 * Twins fed the same events and labels, one with in.explain_min = T (the
 * median score of each call, so a score equal to T occurs): every score,
 * flag, history count, learning record and (afterwards) every cache is
 * the same; an event scoring >= T is explained bit for bit as without the
 * threshold; one below it is output as without RS_MODEL_FWD_EXPLAIN and
 * contributions (contrib NULL, no attended events or experts) and its
 * contribution row is not written.  Both kinds. */
static void explain_min_run(const rs_model_conf_t *c, int *n_above,
                            int *n_below) {
    enum { N = 320, CALL = 32 };
    const float SENT = -12345.0f;
    rs_test_learn_t *ta = new_tl(c, DIM, names4), *tb = new_tl(c, DIM, names4);
    evs_t *ev = make_stream(N, 14, DIM, 21);
    static rs_model_output_t oa[CALL], ob[CALL];
    static float ca[CALL * DIM], cb[CALL * DIM];
    const unsigned fl = RS_MODEL_FWD_REMEMBER | RS_MODEL_FWD_EXPLAIN;
    /* input logs too: b writes them only at or above log_min = T */
    const size_t LM = rs_model_log_max(ta->m);
    uint8_t *lga = malloc((size_t)CALL * LM), *lgb = malloc((size_t)CALL * LM);
    assert_non_null(lga);
    assert_non_null(lgb);
    *n_above = *n_below = 0;
    for (int i = 0; i < N; i += CALL) {
        rs_model_input_t in[CALL];
        for (int k = 0; k < CALL; k++) {
            in[k] = ev[i + k].in;
            in[k].log = lga + (size_t)k * LM;
            in[k].log_cap = LM;
        }
        assert_int_equal(rs_test_learn_forward(ta, in, CALL, oa, ca, fl), RS_OK);
        float sorted[CALL];
        for (int k = 0; k < CALL; k++) sorted[k] = oa[k].score;
        for (int k = 1; k < CALL; k++) /* insertion sort: the median */
            for (int j = k; j > 0 && sorted[j] < sorted[j - 1]; j--) {
                float t = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = t;
            }
        const double T = sorted[CALL / 2];
        for (int k = 0; k < CALL; k++) {
            in[k] = ev[i + k].in;
            in[k].explain_min = T;
            in[k].log = lgb + (size_t)k * LM;
            in[k].log_cap = LM;
            in[k].log_min = T;
        }
        for (int k = 0; k < CALL * DIM; k++) cb[k] = SENT;
        memset(lgb, 0xA5, (size_t)CALL * LM);
        assert_int_equal(rs_test_learn_forward(tb, in, CALL, ob, cb, fl), RS_OK);
        for (int k = 0; k < CALL; k++) {
            const rs_model_output_t *a = &oa[k], *b = &ob[k];
            assert_memory_equal(&a->score, &b->score, sizeof(float));
            assert_int_equal(a->flags, b->flags);
            assert_int_equal(a->n_hist, b->n_hist);
            const float *ra = ca + (size_t)k * DIM, *rb = cb + (size_t)k * DIM;
            if ((double)a->score >= T) {
                (*n_above)++;
                outputs_equal(a, b);
                assert_memory_equal(&a->self_weight, &b->self_weight,
                                    sizeof(float));
                assert_int_equal(a->n_experts, b->n_experts);
                for (int j = 0; j < a->n_experts; j++) {
                    assert_int_equal(a->experts[j].expert, b->experts[j].expert);
                    assert_memory_equal(&a->experts[j].gate,
                                        &b->experts[j].gate, sizeof(float));
                }
                assert_ptr_equal(b->contrib, rb);
                assert_memory_equal(ra, rb, sizeof(float) * DIM);
                assert_true(a->log_len > 0);
                assert_int_equal(a->log_len, b->log_len);
                assert_memory_equal(lga + (size_t)k * LM, lgb + (size_t)k * LM,
                                    a->log_len);
            } else {
                (*n_below)++;
                assert_null(b->contrib);
                assert_int_equal(b->n_attended, 0);
                assert_int_equal(b->n_experts, 0);
                assert_true(b->self_weight == 0.0f);
                for (int j = 0; j < DIM; j++) assert_true(rb[j] == SENT);
                assert_true(a->log_len > 0);
                assert_int_equal(b->log_len, 0); /* not written */
                for (size_t j = 0; j < LM; j++)
                    assert_int_equal(lgb[(size_t)k * LM + j], 0xA5);
            }
        }
        if (i >= 64) {
            learn_some(ta, ev, i - 64, i - 32);
            learn_some(tb, ev, i - 64, i - 32);
        }
    }
    /* the same learning records, byte for byte */
    rs_learnlog_stats_t la, lb;
    rs_learnlog_stats(ta->log, &la);
    rs_learnlog_stats(tb->log, &lb);
    assert_int_equal(la.end, N);
    assert_int_equal(lb.end, N);
    const size_t R = rs_model_lrec_size(ta->m);
    for (uint64_t p = 0; p < N; p++) {
        const void *a = rs_learnlog_rec(ta->log, p), *b = rs_learnlog_rec(tb->log, p);
        assert_non_null(a);
        assert_non_null(b);
        assert_memory_equal(a, b, R);
    }
    /* the same caches and weights: a further stream scores alike */
    evs_t *e2 = make_stream(64, 14, DIM, 22);
    for (int k = 0; k < 64; k++)
        e2[k].in.event_time_ms += ev[N - 1].in.event_time_ms - T0;
    for (int i = 0; i < 64; i += CALL) {
        rs_model_input_t in[CALL];
        for (int k = 0; k < CALL; k++) in[k] = e2[i + k].in;
        assert_int_equal(rs_test_learn_forward(ta, in, CALL, oa, ca, fl), RS_OK);
        for (int k = 0; k < CALL; k++) in[k] = e2[i + k].in;
        assert_int_equal(rs_test_learn_forward(tb, in, CALL, ob, cb, fl), RS_OK);
        for (int k = 0; k < CALL; k++) outputs_equal(&oa[k], &ob[k]);
        assert_memory_equal(ca, cb, sizeof(ca));
    }
    free(e2);
    free(ev);
    free(lga);
    free(lgb);
    rs_test_learn_destroy(ta);
    rs_test_learn_destroy(tb);
}

static void test_explain_min(void **state) {
    (void)state;
    rs_model_conf_t cs = conf_seq(), cl = conf_lr();
    int above, below;
    explain_min_run(&cs, &above, &below);
    print_message("seq: %d events explained, %d below the threshold\n", above,
                  below);
    assert_true(above >= 160 && below >= 100);
    explain_min_run(&cl, &above, &below);
    print_message("lr: %d events explained, %d below the threshold\n", above,
                  below);
    assert_true(above >= 160 && below >= 100);
}

/* ------------------------------------------------------- faithfulness */

static void test_faithful(void **state) {
    (void)state;
    rs_faithful_conf_t c;
    rs_faithful_conf_init(&c);
    c.entities = 400;
    c.days = 20;
    c.warmup_events = 4000;
    c.every = 4;
    c.model.seq.max_entities = 1024;
    rs_faithful_res_t r;
    char err[512] = "";
    rs_err_t e = rs_faithful_run(&c, &r, err, sizeof(err));
    if (e) print_message("faithful: %s\n", err);
    assert_int_equal(e, RS_OK);
    print_message("seq: %llu events, %llu labels, %llu updates (%llu "
                  "positives), AUC %.3f; %llu measured (mean %.1f past "
                  "events)\n"
                  "  feature: top %.5f random %.5f ratio %.2f (top wins %.0f%%)\n"
                  "  history: top %.5f random %.5f ratio %.2f (top wins %.0f%%)\n",
                  (unsigned long long)r.events, (unsigned long long)r.labels,
                  (unsigned long long)r.updates,
                  (unsigned long long)r.positives, r.auc,
                  (unsigned long long)r.measured, r.mean_hist, r.feat_top,
                  r.feat_rand, r.feat_ratio, 100 * r.feat_wins, r.hist_top,
                  r.hist_rand, r.hist_ratio, 100 * r.hist_wins);
    /* trained: it learned, and ranks fraud well above chance */
    assert_true(r.updates > 1000 && r.positives > 10 && r.auc > 0.7);
    assert_true(r.measured > 300);
    assert_int_equal(r.dry_mismatch, 0);
    assert_int_equal(r.rescored, r.measured);
    assert_int_equal(r.rescore_mismatch, 0);
    assert_true(r.feat_ratio > 1.0);
    assert_true(r.hist_ratio > 1.0);
}

/* The attended events are the RS_MODEL_ATTEND_MAX largest attention
 * weights, largest first, the newer first on equal weights (a tie across
 * the cut keeps the newer ones).  Keys are zeroed (Wqkv = 0) and the
 * cached events share one time, so an event's weight follows its
 * recency-rank bias alone: the test sets the biases and knows the order. */
static void test_attended_order(void **state) {
    (void)state;
    enum { L = 16 };
    /* bias of recency rank r (0 = newest): 0.9 at 4, 9, 14; 0.6 at 12, 13;
     * 0.5 at 0, 2, 7, 11 (the cut falls inside this tie: 11 is left out) */
    static const float bias[L] = {0.5f, 0.1f, 0.5f, 0.3f, 0.9f, 0.1f,
                                  0.3f, 0.5f, 0.2f, 0.9f, 0.0f, 0.5f,
                                  0.6f, 0.6f, 0.9f, 0.0f};
    static const int want[RS_MODEL_ATTEND_MAX] = {4, 9, 14, 12, 13, 0, 2, 7};
    for (int pass = 0; pass < 2; pass++) { /* 1: every bias equal */
        rs_model_conf_t c = conf_seq();
        c.seq.history = L;
        c.seq.layers = 1;
        char err[256] = "";
        rs_seq_t *s = rs_seq_new(&c, DIM, 0, err, sizeof(err));
        assert_non_null(s);
        size_t np, off, len;
        float *p = rs_seq_params(s, &np);
        rs_seq_region(s, RS_SEQ_R_QKV, 0, &off, &len);
        memset(p + off, 0, sizeof(float) * len);
        rs_seq_region(s, RS_SEQ_R_TB, 0, &off, &len);
        assert_true(len > L); /* time-gap buckets, then recency ranks */
        memset(p + off, 0, sizeof(float) * len);
        if (!pass)
            for (int r = 0; r < L; r++) p[off + len - L + r] = bias[r];
        evs_t *ev = make_stream(L + 1, 1, DIM, 9);
        rs_model_output_t o;
        for (int i = 0; i <= L; i++) {
            ev[i].in.event_time_ms = T0;
            assert_int_equal(rs_seq_forward(s, &ev[i].in, 1, &o, NULL,
                                            i < L ? 0 : RS_MODEL_FWD_EXPLAIN),
                             RS_OK);
        }
        assert_int_equal(o.n_hist, L);
        assert_int_equal(o.n_attended, RS_MODEL_ATTEND_MAX);
        for (int t = 0; t < RS_MODEL_ATTEND_MAX; t++) {
            const int r = pass ? t : want[t];
            assert_int_equal(o.attended[t].rank, r);
            char id[32];
            snprintf(id, sizeof(id), "ev-%d", L - 1 - r);
            assert_string_equal(o.attended[t].event_id, id);
            if (t) assert_true(o.attended[t].weight <= o.attended[t - 1].weight);
        }
        free(ev);
        rs_seq_destroy(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_sizes),
        cmocka_unit_test(test_rescore_seq),
        cmocka_unit_test(test_rescore_lr),
        cmocka_unit_test(test_log_errors),
        cmocka_unit_test(test_dry_changes_nothing),
        cmocka_unit_test(test_skip_and_rank),
        cmocka_unit_test(test_attended_order),
        cmocka_unit_test(test_explain_min),
        cmocka_unit_test(test_faithful),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
