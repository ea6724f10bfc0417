/* test_workers_rec.c -- the records stage (scoring/workers.c,
 * rs_workers_records) on its own, without a broker: a batch of rows with
 * replays among them (no record), explanations above a threshold only,
 * 1, 2 and 3 workers, Kafka in JSON and in protobuf.
 *
 *  - test_records_encoded: json[p] is byte for byte rs_score_encode(JSON,
 *    out[p]) and kbytes[p] the Kafka format's encoding of out[p] (the
 *    same pointer as json[p] for JSON), for every published row; the
 *    records (and so their bytes) do not depend on the number of workers.
 *    The stage encodes each record while it fills the slice
 *    (rs_score_encode_append) and sets the pointers at the end: an offset
 *    or arena mistake there gives other bytes than the record's own (the
 *    stage runs twice on the same workers: arenas reused).
 *  - the same run asks for the compact Redis records too (recs, as the
 *    service does with redis.record_format compact): recs[p] is byte for
 *    byte rs_redis_rec_encode(out[p]) for every published row, with 1, 2
 *    and 3 workers; without recs the stage leaves the arrays alone.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "features/features.h"
#include "scoring/sink.h"
#include "scoring/workers.h"

enum { N = 300 };

typedef struct fix_s {
    rs_features_t *feat;
    int D, npub;
    rs_service_conf_t conf;
    rs_msg_t *msgs;
    const rs_msg_t **mptr; /* the batch holds pointers (rs_ingest_poll_ref) */
    int ev_msg[N], pub[N];
    float *x, *contrib;
    rs_model_output_t *mout;
    rs_score_t *out;
    const void *json[N], *kbytes[N], *recs[N];
    size_t json_lens[N], klens[N], rec_lens[N];
} fix_t;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float unit(void) { return (float)(next() >> 40) / (float)(1 << 24); }

static void fix_init(fix_t *f) {
    memset(f, 0, sizeof(*f));
    rs_features_conf_t c;
    rs_features_conf_init(&c);
    c.max_keys = c.max_counterparties = 64;
    c.label_index = 64;
    char err[256];
    f->feat = rs_features_new(&c, err, sizeof(err));
    if (!f->feat) fail_msg("rs_features_new: %s", err);
    f->D = rs_features_dim(f->feat);
    f->conf.explain_top = 5;
    f->conf.explain_attended = 3;
    f->conf.explain_min_score = 0.3;
    f->msgs = calloc(N, sizeof(*f->msgs));
    f->mptr = calloc(N, sizeof(*f->mptr));
    f->x = calloc((size_t)N * (size_t)f->D, sizeof(float));
    f->contrib = calloc((size_t)N * (size_t)f->D, sizeof(float));
    f->mout = calloc(N, sizeof(*f->mout));
    f->out = calloc(N, sizeof(*f->out));
    assert_non_null(f->msgs);
    assert_non_null(f->mptr);
    for (int i = 0; i < N; i++) f->mptr[i] = &f->msgs[i];
    assert_non_null(f->out);
    for (int k = 0; k < N; k++) {
        rs_msg_t *m = &f->msgs[N - 1 - k]; /* rows not in msgs order */
        f->ev_msg[k] = N - 1 - k;
        m->received_us = 1000 + k;
        rs_event_t *ev = &m->ev;
        snprintf(ev->id, sizeof(ev->id), "tx-%06d-\"q\"", k);
        snprintf(ev->entity_id, sizeof(ev->entity_id), "card-%03d", k % 37);
        snprintf(ev->type, sizeof(ev->type), "card_tx");
        snprintf(ev->counterparty_id, sizeof(ev->counterparty_id),
                 "merchant-\xc3\xa9-%d", k % 11);
        ev->event_time_ms = 1767225600000LL + 37 * k;
        ev->amount = (double)(next() % 100000) / 100.0;
        ev->n_numeric = k % 3;
        for (int i = 0; i < ev->n_numeric; i++) {
            snprintf(ev->numeric[i].name, RS_NAME_MAX, "num%d", i);
            ev->numeric[i].value = unit() * 10;
        }
        ev->n_categ = k % 4;
        for (int i = 0; i < ev->n_categ; i++) {
            snprintf(ev->categ[i].name, RS_NAME_MAX, "cat%d", i);
            snprintf(ev->categ[i].value, RS_CATVAL_MAX, "v%d", k * i);
        }
        for (int i = 0; i < f->D; i++) {
            f->x[(size_t)k * f->D + i] = unit() * 100;
            f->contrib[(size_t)k * f->D + i] = unit() * 2 - 1;
        }
        rs_model_output_t *mo = &f->mout[k];
        mo->contrib = f->contrib + (size_t)k * f->D;
        mo->n_attended = k % 4;
        for (int i = 0; i < mo->n_attended; i++) {
            snprintf(mo->attended[i].event_id,
                     sizeof(mo->attended[i].event_id), "tx-past-%d-%d", k, i);
            snprintf(mo->attended[i].counterparty_id,
                     sizeof(mo->attended[i].counterparty_id), "m-%d", i);
            mo->attended[i].event_time_ms = ev->event_time_ms - 1000 * (i + 1);
            mo->attended[i].amount = unit() * 500;
            mo->attended[i].weight = unit();
        }
        mo->n_experts = 2;
        mo->experts[0].expert = k % 8;
        mo->experts[0].gate = unit();
        mo->experts[1].expert = (k + 3) % 8;
        mo->experts[1].gate = unit();
        /* every 7th row a replay: no record */
        f->pub[k] = k % 7 == 3 ? -1 : f->npub++;
    }
}

static void fix_free(fix_t *f) {
    rs_features_destroy(f->feat);
    free(f->msgs);
    free(f->mptr);
    free(f->x);
    free(f->contrib);
    free(f->mout);
    free(f->out);
}

/* Run the stage with `n` workers; out[] is set up as the scoring thread
 * leaves it (score, decision, flags).  want_recs: ask for the compact
 * Redis records too. */
static void run(fix_t *f, int n, rs_format_t kfmt, int want_recs) {
    char err[256];
    rs_err_t e;
    rs_workers_t *wk = rs_workers_new(n, f->D, &e, err, sizeof(err));
    if (!wk) fail_msg("rs_workers_new: %s", err);
    uint64_t r = rng;
    rng = 12345;
    for (int p = 0; p < f->npub; p++) {
        memset(&f->out[p], 0xab, sizeof(f->out[p])); /* stale content */
        f->out[p].score = unit();
        f->out[p].decision = (rs_decision_t)(1 + p % 3);
        f->out[p].flags = 0;
        f->out[p].rul = 0;
        f->out[p].alert_score = 0;
    }
    rng = r;
    rs_workers_batch_t b = {
        .conf = &f->conf, .feat = f->feat, .dim = f->D, .nev = N,
        .msgs = f->mptr, .ev_msg = f->ev_msg, .pub = f->pub, .x = f->x,
        .contrib = f->contrib, .mout = f->mout, .version = "seq-test-1",
        .now_wall_us = 1767225700000000LL, .now_mono_us = 5000000,
        .out = f->out, .kafka_format = kfmt, .json = f->json,
        .json_lens = f->json_lens, .kbytes = f->kbytes, .klens = f->klens,
        .recs = want_recs ? f->recs : NULL,
        .rec_lens = want_recs ? f->rec_lens : NULL};
    /* a marker: without recs the stage must not touch them */
    static const char mark[] = "untouched";
    for (int p = 0; p < f->npub; p++) {
        f->recs[p] = mark;
        f->rec_lens[p] = 77;
    }
    /* twice: the second batch (other scores) reuses the slices' arenas */
    for (int rep = 0; rep < 2; rep++) {
        if (rep)
            for (int p = 0; p < f->npub; p++)
                f->out[p].score = 1 - f->out[p].score;
        assert_int_equal(rs_workers_records(wk, &b), RS_OK);
        assert_int_equal(b.bad, -1);
    }
    /* the records are checked before the workers (and their arenas) go */
    static char one[RS_ENCODE_MAX];
    int explained = 0;
    for (int p = 0; p < f->npub; p++) {
        int len = rs_score_encode(RS_FORMAT_JSON, &f->out[p], one, sizeof(one));
        assert_true(len > 0);
        assert_int_equal((size_t)len, f->json_lens[p]);
        assert_memory_equal(f->json[p], one, (size_t)len);
        len = rs_score_encode(kfmt, &f->out[p], one, sizeof(one));
        assert_true(len > 0);
        assert_int_equal((size_t)len, f->klens[p]);
        assert_memory_equal(f->kbytes[p], one, (size_t)len);
        if (kfmt == RS_FORMAT_JSON) assert_ptr_equal(f->kbytes[p], f->json[p]);
        if (!want_recs) {
            assert_ptr_equal(f->recs[p], mark);
            assert_int_equal(f->rec_lens[p], 77);
        } else {
            static uint8_t rec[RS_REDIS_REC_MAX];
            len = rs_redis_rec_encode(&f->out[p], rec, sizeof(rec));
            assert_true(len > 0); /* every record here takes the form */
            assert_non_null(f->recs[p]);
            assert_int_equal((size_t)len, f->rec_lens[p]);
            assert_memory_equal(f->recs[p], rec, (size_t)len);
        }
        explained += f->out[p].explanation.n_contrib > 0;
    }
    assert_true(explained > 0 && explained < f->npub); /* both kinds */
    rs_workers_destroy(wk);
}

static void test_records_encoded(void **state) {
    (void)state;
    static fix_t f;
    fix_init(&f);
    static char ref[N][RS_ENCODE_MAX];
    static size_t ref_len[N];
    for (int fmt = 0; fmt < 2; fmt++) {
        for (int n = 1; n <= 3; n++) {
            run(&f, n, (rs_format_t)fmt, 1);
            if (n == 2) run(&f, n, (rs_format_t)fmt, 0);
            for (int p = 0; p < f.npub; p++) {
                /* the same records whatever the number of workers (run()
                 * checked json[p] against them; those pointers died with
                 * the workers) */
                static char one[RS_ENCODE_MAX];
                int len = rs_score_encode(RS_FORMAT_JSON, &f.out[p], one,
                                          sizeof(one));
                assert_true(len > 0);
                if (n == 1) {
                    ref_len[p] = (size_t)len;
                    memcpy(ref[p], one, (size_t)len);
                    continue;
                }
                assert_int_equal((size_t)len, ref_len[p]);
                assert_memory_equal(one, ref[p], ref_len[p]);
            }
        }
    }
    fix_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
