/* test_shard.c -- the forward sharded by entity over worker threads
 * (model/shard.h, model/seq_fwd.c "sharded forward"; issue 12.2).
 *
 * The same event stream is scored by models built alike (same seed, the
 * same perturbation of the weights) with rs_model_forward on one thread
 * and with rs_model_shard_forward on pools of 1, 2 and 4 threads, in calls
 * of varied sizes (1 .. several model.batch_max); every result must be the
 * same bit for bit:
 *  - per event: score, contributions, attended events (ids, times,
 *    amounts, weights, ranks), experts and gates, self weight, history
 *    length, NEW/EVICTED flags, the input log (bytes and length) and the
 *    learning record (bytes: its reference to the entity's previous
 *    record included);
 *  - after the stream: the entity caches (rs_model_caches_write bytes:
 *    rings, times, ids, LRU order), evictions, live entities and the
 *    drift PSI (windows of 50 scores that close inside calls).
 * Entities recur inside one call (a lane then cuts its sub-batch) and
 * across calls.  test_identity_evict uses a pool of 16 entity caches for
 * 40 entities, so calls evict entities they used earlier: the planner
 * ends the segment first (stats.cuts > 0 asserted) and the flags and
 * evictions still match.  test_serial_cases: seq.gemm blas, a DRY call,
 * kind "lr", small calls and a pool of one thread all take the serial path
 * (stats.sharded stays 0 where it must) with the same results, and bad
 * inputs are RS_ERR_INVALID with nothing changed.  It also prints (does
 * not assert: OpenBLAS's business) how many rows of a 512-row cblas_sgemm
 * differ when the rows are split over two calls -- why seq.gemm blas is
 * never sharded.
 *
 * Labelled tsan: the lanes run on real threads (tests/CMakeLists.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "model/learnlog.h"
#include "model/seq_int.h"
#include "model/shard.h"

extern void openblas_set_num_threads(int); /* OpenBLAS's, not in cblas.h */

#define DIM 5
static const char *const names5[DIM] = {"f0", "f1", "f2", "f3", "f4"};
#define T0 1700000000000LL

static rs_model_conf_t conf_seq(int batch_max, int max_entities) {
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_SEQ;
    c.batch_max = batch_max;
    c.seq.d_model = 16;
    c.seq.history = 6;       /* rings that wrap */
    c.seq.layers = 2;
    c.seq.experts = 4;
    c.seq.top_k = 2;
    c.seq.expert_hidden = 16;
    c.seq.buckets = 64;
    c.seq.max_entities = max_entities;
    c.seq.drift_window = 50; /* windows close inside calls */
    c.seq.seed = 11;
    return c;
}

/* A model of conf c with its weights moved off the seed the same way
 * every time (so attention and gates are not near uniform). */
static rs_model_t *new_model(const rs_model_conf_t *c) {
    char err[256] = "";
    rs_model_t *m = rs_model_new(c, DIM, names5, err, sizeof(err));
    if (!m) print_message("rs_model_new: %s\n", err);
    assert_non_null(m);
    rs_seq_t *s = rs_model_seq(m);
    if (s) {
        size_t np;
        float *p = rs_seq_params(s, &np);
        rs_rng_t rng;
        rs_rng_seed(&rng, 99);
        for (size_t i = 0; i < np; i++)
            p[i] += 0.3f * (float)rs_rng_normal(&rng);
    }
    return m;
}

/* The stream: events, their buffers (learning record, input log) and
 * what one model made of them. */
typedef struct stream_s {
    int n;
    char (*id)[40], (*ent)[32], (*cp)[32];
    float *x;                 /* [n][DIM] */
    rs_model_input_t *in;     /* [n] */
} stream_t;

typedef struct result_s {
    rs_model_output_t *out;   /* [n] */
    float *contrib;           /* [n][DIM] */
    uint8_t *lrec;            /* [n][lrec_size] */
    uint8_t *log;             /* [n][log_max] */
    size_t lrec_size, log_max;
    uint8_t *caches;
    size_t caches_len;
    rs_model_stats_t ms;
    rs_model_shard_stats_t ss;
} result_t;

/* n events over n_ent entities; every 9th event repeats the entity of the
 * one before (twice in a row inside a call). */
static void make_stream(stream_t *st, int n, int n_ent, uint64_t seed) {
    st->n = n;
    st->id = calloc((size_t)n, sizeof(*st->id));
    st->ent = calloc((size_t)n, sizeof(*st->ent));
    st->cp = calloc((size_t)n, sizeof(*st->cp));
    st->x = calloc((size_t)n * DIM, sizeof(float));
    st->in = calloc((size_t)n, sizeof(*st->in));
    rs_rng_t rng;
    rs_rng_seed(&rng, seed);
    int64_t t = T0;
    int ent = 0;
    for (int i = 0; i < n; i++) {
        t += 500 + (int64_t)rs_rng_below(&rng, 900000);
        if (i % 9 != 1) ent = (int)rs_rng_below(&rng, (uint64_t)n_ent);
        snprintf(st->id[i], sizeof(st->id[i]), "ev-%d", i);
        snprintf(st->ent[i], sizeof(st->ent[i]), "card-%d", ent);
        snprintf(st->cp[i], sizeof(st->cp[i]), "m-%d",
                 (int)rs_rng_below(&rng, 7));
        for (int k = 0; k < DIM; k++)
            st->x[(size_t)i * DIM + k] = (float)rs_rng_normal(&rng) * 2.0f;
        rs_model_input_t *in = &st->in[i];
        in->event_id = st->id[i];
        in->entity_id = st->ent[i];
        in->counterparty_id = i % 5 == 2 ? "" : st->cp[i];
        in->event_time_ms = t;
        in->amount = (float)(i % 97) * 3.5f;
        in->x = st->x + (size_t)i * DIM;
        in->n_cat = 2;
        in->cat_hash[0] = 100 + rs_rng_below(&rng, 4);
        in->cat_hash[1] = 200 + rs_rng_below(&rng, 4);
    }
}

static void free_stream(stream_t *st) {
    free(st->id);
    free(st->ent);
    free(st->cp);
    free(st->x);
    free(st->in);
}

static void free_result(result_t *r) {
    free(r->out);
    free(r->contrib);
    free(r->lrec);
    free(r->log);
    free(r->caches);
}

/* Call sizes, cycled: single events, small, around and above
 * batch_max, and one above the shard's max_n (two segments). */
static const int sizes[] = {1, 37, 3, 200, 64, 16, 513, 90, 2, 300, 129, 700};

/* Score the stream with m: threads 0 = rs_model_forward, else
 * rs_model_shard_forward on a pool of that many threads. */
static void score(const rs_model_conf_t *c, const stream_t *st, int threads,
                  unsigned flags, result_t *r) {
    rs_model_t *m = new_model(c);
    char err[256] = "";
    rs_pool_t *pool = NULL;
    rs_model_shard_t *sh = NULL;
    if (threads > 0) {
        rs_err_t e;
        pool = rs_pool_new(threads, "rs-test", &e, err, sizeof(err));
        assert_non_null(pool);
        sh = rs_model_shard_new(m, pool, 600, err, sizeof(err));
        assert_non_null(sh);
    }
    memset(r, 0, sizeof(*r));
    const int n = st->n;
    r->lrec_size = rs_model_lrec_size(m);
    r->log_max = rs_model_log_max(m);
    r->out = calloc((size_t)n, sizeof(*r->out));
    r->contrib = calloc((size_t)n * DIM, sizeof(float));
    r->lrec = calloc((size_t)n, r->lrec_size);
    r->log = calloc((size_t)n, r->log_max);
    rs_model_input_t *in = calloc((size_t)n, sizeof(*in));
    memcpy(in, st->in, (size_t)n * sizeof(*in));
    for (int i = 0; i < n; i++) {
        in[i].lrec = r->lrec + (size_t)i * r->lrec_size;
        in[i].lpos = RS_LPOS(i % 3, (uint64_t)i);
        if (i % 4) { /* most events log their inputs */
            in[i].log = r->log + (size_t)i * r->log_max;
            in[i].log_cap = r->log_max;
        }
    }
    const int explain = (flags & RS_MODEL_FWD_EXPLAIN) != 0;
    for (int i = 0, call = 0; i < n; call++) {
        int k = RS_MIN(sizes[call % (int)RS_ARRAY_LEN(sizes)], n - i);
        float *cb = explain ? r->contrib + (size_t)i * DIM : NULL;
        rs_err_t e = sh ? rs_model_shard_forward(sh, in + i, k, r->out + i,
                                                 cb, flags)
                        : rs_model_forward(m, in + i, k, r->out + i, cb,
                                           flags);
        assert_int_equal(e, RS_OK);
        i += k;
    }
    size_t need = rs_model_caches_size(m);
    r->caches = malloc(need ? need : 1);
    assert_int_equal(rs_model_caches_write(m, r->caches, need,
                                           &r->caches_len), RS_OK);
    rs_model_stats(m, &r->ms);
    if (sh) rs_model_shard_stats(sh, &r->ss);
    free(in);
    rs_model_shard_destroy(sh);
    rs_pool_destroy(pool);
    rs_model_destroy(m);
}

static int fbits_eq(float a, float b) { return !memcmp(&a, &b, sizeof(a)); }

/* Every result of b equal to a's, bit for bit. */
static void assert_same(const result_t *a, const result_t *b, int n,
                        unsigned flags) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const rs_model_output_t *x = &a->out[i], *y = &b->out[i];
        if (!fbits_eq(x->score, y->score) && bad++ < 5)
            print_message("event %d: score %.9g vs %.9g\n", i, x->score,
                          y->score);
    }
    assert_int_equal(bad, 0);
    for (int i = 0; i < n; i++) {
        const rs_model_output_t *x = &a->out[i], *y = &b->out[i];
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->n_hist, y->n_hist);
        assert_true(fbits_eq(x->self_weight, y->self_weight));
        assert_int_equal(x->n_attended, y->n_attended);
        for (int j = 0; j < x->n_attended; j++) {
            const rs_model_attn_t *p = &x->attended[j], *q = &y->attended[j];
            assert_string_equal(p->event_id, q->event_id);
            assert_string_equal(p->counterparty_id, q->counterparty_id);
            assert_true(p->event_time_ms == q->event_time_ms);
            assert_true(fbits_eq(p->amount, q->amount));
            assert_true(fbits_eq(p->weight, q->weight));
            assert_int_equal(p->rank, q->rank);
        }
        assert_int_equal(x->n_experts, y->n_experts);
        for (int j = 0; j < x->n_experts; j++) {
            assert_int_equal(x->experts[j].expert, y->experts[j].expert);
            assert_true(fbits_eq(x->experts[j].gate, y->experts[j].gate));
        }
        assert_true((x->contrib == NULL) == (y->contrib == NULL));
        assert_int_equal(x->log_len, y->log_len);
        if (i % 4) assert_true(x->log_len > 0);
        assert_memory_equal(a->log + (size_t)i * a->log_max,
                            b->log + (size_t)i * b->log_max, x->log_len);
    }
    if (flags & RS_MODEL_FWD_EXPLAIN)
        assert_memory_equal(a->contrib, b->contrib, sizeof(float) * n * DIM);
    if (flags & RS_MODEL_FWD_REMEMBER)
        assert_memory_equal(a->lrec, b->lrec, a->lrec_size * (size_t)n);
    assert_int_equal(a->caches_len, b->caches_len);
    assert_memory_equal(a->caches, b->caches, a->caches_len);
    assert_int_equal(a->ms.evictions, b->ms.evictions);
    assert_int_equal(a->ms.entities, b->ms.entities);
    assert_memory_equal(&a->ms.drift_psi, &b->ms.drift_psi, sizeof(double));
}

/* Entities recurring in a call and across calls, explanations and
 * learning records on (as the service), then off. */
static void test_identity(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq(64, 4096);
    stream_t st;
    make_stream(&st, 3000, 150, 1);
    const unsigned fl[2] = {RS_MODEL_FWD_REMEMBER | RS_MODEL_FWD_EXPLAIN,
                            RS_MODEL_FWD_REMEMBER};
    for (int f = 0; f < 2; f++) {
        result_t ref, r;
        score(&c, &st, 0, fl[f], &ref);
        /* the reference did something worth comparing */
        assert_true(ref.ms.entities == 150);
        assert_true(ref.ms.drift_psi > 0);
        int hist = 0, multi = 0;
        for (int i = 0; i < st.n; i++) {
            hist += ref.out[i].n_hist > 0;
            multi += ref.out[i].n_attended > 1;
        }
        assert_true(hist > st.n / 2);
        if (f == 0) assert_true(multi > st.n / 2);
        const int threads[3] = {1, 2, 4};
        for (int t = 0; t < 3; t++) {
            score(&c, &st, threads[t], fl[f], &r);
            print_message("identity[%s]: %d threads: %llu of %llu calls "
                          "sharded, %llu segments, %llu rows\n",
                          f ? "no explain" : "explain", threads[t],
                          (unsigned long long)r.ss.sharded,
                          (unsigned long long)r.ss.calls,
                          (unsigned long long)r.ss.segments,
                          (unsigned long long)r.ss.rows);
            assert_same(&ref, &r, st.n, fl[f]);
            if (threads[t] == 1) assert_int_equal(r.ss.sharded, 0);
            else assert_true(r.ss.sharded >= 6 && r.ss.rows > 2000);
            free_result(&r);
        }
        free_result(&ref);
    }
    free_stream(&st);
}

/* 40 entities over 16 caches: calls evict entities they used earlier. */
static void test_identity_evict(void **state) {
    (void)state;
    rs_model_conf_t c = conf_seq(8, 16);
    stream_t st;
    make_stream(&st, 2000, 40, 2);
    const unsigned fl = RS_MODEL_FWD_REMEMBER | RS_MODEL_FWD_EXPLAIN;
    result_t ref, r;
    score(&c, &st, 0, fl, &ref);
    assert_true(ref.ms.evictions > 500);
    int evicted = 0;
    for (int i = 0; i < st.n; i++)
        evicted += (ref.out[i].flags & RS_MODEL_OUT_EVICTED) != 0;
    assert_true(evicted > 500);
    for (int threads = 2; threads <= 4; threads += 2) {
        score(&c, &st, threads, fl, &r);
        print_message("evict: %d threads: %llu calls sharded, %llu segments, "
                      "%llu cut by an eviction; %llu evictions\n", threads,
                      (unsigned long long)r.ss.sharded,
                      (unsigned long long)r.ss.segments,
                      (unsigned long long)r.ss.cuts,
                      (unsigned long long)r.ms.evictions);
        assert_true(r.ss.sharded > 0);
        assert_true(r.ss.cuts > 0);
        assert_true(r.ss.segments > r.ss.sharded);
        assert_same(&ref, &r, st.n, fl);
        free_result(&r);
    }
    free_result(&ref);
    free_stream(&st);
}

/* Rows of a 512-row cblas_sgemm (the QKV shape at the defaults; OpenBLAS
 * on one thread) that differ when computed as two calls of alternate rows
 * (a 2-way shard). */
static int blas_split_rows(void) {
    enum { M = 512, N = 96, K = 32 };
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K);
    float *C = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    float *As = malloc(sizeof(float) * M * K);
    rs_rng_t rng;
    rs_rng_seed(&rng, 3);
    for (int i = 0; i < M * K; i++) A[i] = (float)rs_rng_normal(&rng);
    for (int i = 0; i < N * K; i++) B[i] = (float)rs_rng_normal(&rng);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K,
                B, K, 0.0f, C, N);
    int bad = 0;
    for (int lane = 0; lane < 2; lane++) {
        int m = 0;
        for (int i = lane; i < M; i += 2)
            memcpy(As + (size_t)m++ * K, A + (size_t)i * K, sizeof(float) * K);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, N, K, 1.0f,
                    As, K, B, K, 0.0f, C2, N);
        for (int r = 0; r < m; r++)
            bad += memcmp(C2 + (size_t)r * N, C + (size_t)(lane + 2 * r) * N,
                          sizeof(float) * N) != 0;
    }
    free(A);
    free(B);
    free(C);
    free(C2);
    free(As);
    return bad;
}

/* The cases that stay on the caller's thread, with the same results. */
static void test_serial_cases(void **state) {
    (void)state;
    stream_t st;
    make_stream(&st, 600, 30, 3);
    const unsigned fl = RS_MODEL_FWD_REMEMBER | RS_MODEL_FWD_EXPLAIN;
    result_t ref, r;

    /* seq.gemm blas: never sharded (rows would depend on the split) */
    print_message("OpenBLAS: %d of 512 rows of a [512x32]x[32x96] sgemm "
                  "differ when split over two calls, 1 OpenBLAS thread (not "
                  "asserted)\n",
                  blas_split_rows());
    rs_model_conf_t c = conf_seq(64, 4096);
    c.seq.gemm = 1;
    score(&c, &st, 0, fl, &ref);
    score(&c, &st, 2, fl, &r);
    assert_int_equal(r.ss.sharded, 0);
    assert_true(r.ss.calls > 0);
    assert_same(&ref, &r, st.n, fl);
    free_result(&r);
    free_result(&ref);

    /* kind "lr": per row, serial */
    rs_model_conf_t cl;
    rs_model_conf_init(&cl);
    cl.kind = RS_MODEL_LR;
    score(&cl, &st, 0, fl, &ref);
    score(&cl, &st, 2, fl, &r);
    assert_int_equal(r.ss.sharded, 0);
    assert_memory_equal(ref.lrec, r.lrec, ref.lrec_size * (size_t)st.n);
    for (int i = 0; i < st.n; i++)
        assert_true(fbits_eq(ref.out[i].score, r.out[i].score));
    assert_memory_equal(ref.contrib, r.contrib, sizeof(float) * st.n * DIM);
    free_result(&r);
    free_result(&ref);

    /* DRY (what-if), small calls, bad input */
    c = conf_seq(64, 4096);
    rs_model_t *m = new_model(&c), *m2 = new_model(&c);
    char err[256];
    rs_err_t e;
    rs_pool_t *pool = rs_pool_new(2, "rs-test", &e, err, sizeof(err));
    assert_non_null(pool);
    rs_model_shard_t *sh = rs_model_shard_new(m, pool, 600, err, sizeof(err));
    assert_non_null(sh);
    rs_model_output_t *o1 = calloc(600, sizeof(*o1)), *o2 = calloc(600, sizeof(*o2));
    float *c1 = calloc(600 * DIM, sizeof(float)), *c2 = calloc(600 * DIM, sizeof(float));
    /* history first (sharded), then a what-if over all of it */
    assert_int_equal(rs_model_shard_forward(sh, st.in, 500, o1, c1, 0), RS_OK);
    assert_int_equal(rs_model_forward(m2, st.in, 500, o2, c2, 0), RS_OK);
    rs_model_shard_stats_t ss;
    rs_model_shard_stats(sh, &ss);
    assert_int_equal(ss.sharded, 1);
    assert_int_equal(rs_model_shard_forward(sh, st.in + 500, 100, o1, c1,
                                            RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                     RS_OK);
    assert_int_equal(rs_model_forward(m2, st.in + 500, 100, o2, c2,
                                      RS_MODEL_FWD_DRY | RS_MODEL_FWD_EXPLAIN),
                     RS_OK);
    rs_model_shard_stats(sh, &ss);
    assert_int_equal(ss.sharded, 1); /* the DRY call was serial */
    for (int i = 0; i < 100; i++)
        assert_true(fbits_eq(o1[i].score, o2[i].score));
    assert_memory_equal(c1, c2, sizeof(float) * 100 * DIM);
    /* fewer than 2 * RS_MODEL_SHARD_MIN rows: serial */
    assert_int_equal(rs_model_shard_forward(sh, st.in + 500,
                                            2 * RS_MODEL_SHARD_MIN - 1, o1,
                                            NULL, 0), RS_OK);
    rs_model_shard_stats(sh, &ss);
    assert_int_equal(ss.sharded, 1);
    assert_int_equal(rs_model_forward(m2, st.in + 500,
                                      2 * RS_MODEL_SHARD_MIN - 1, o2, NULL, 0),
                     RS_OK);
    /* a bad input: RS_ERR_INVALID, nothing scored or changed */
    size_t n1 = rs_model_caches_size(m);
    rs_model_input_t bad[40];
    memcpy(bad, st.in + 520, sizeof(bad));
    bad[33].entity_id = NULL;
    assert_int_equal(rs_model_shard_forward(sh, bad, 40, o1, NULL, 0),
                     RS_ERR_INVALID);
    bad[33] = st.in[553];
    bad[7].lrec = NULL; /* REMEMBER without a record buffer */
    assert_int_equal(rs_model_shard_forward(sh, bad, 40, o1, NULL,
                                            RS_MODEL_FWD_REMEMBER),
                     RS_ERR_INVALID);
    assert_int_equal(rs_model_shard_forward(sh, bad, -1, o1, NULL, 0),
                     RS_ERR_INVALID);
    assert_int_equal(rs_model_caches_size(m), n1);
    /* and the two models are still alike */
    size_t l1, l2;
    uint8_t *b1 = malloc(n1), *b2 = malloc(rs_model_caches_size(m2));
    assert_int_equal(rs_model_caches_write(m, b1, n1, &l1), RS_OK);
    assert_int_equal(rs_model_caches_write(m2, b2, rs_model_caches_size(m2),
                                           &l2), RS_OK);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    free(o1);
    free(o2);
    free(c1);
    free(c2);
    rs_model_shard_destroy(sh);
    rs_pool_destroy(pool);
    rs_model_destroy(m);
    rs_model_destroy(m2);
    rs_model_shard_destroy(NULL);
    assert_null(rs_model_shard_new(NULL, NULL, 10, err, sizeof(err)));
    free_stream(&st);
}

int main(void) {
    /* OpenBLAS on one thread (what model.h asks of the scoring path): its
     * own worker threads are not instrumented (TSan would report them) */
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_identity_evict),
        cmocka_unit_test(test_serial_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
