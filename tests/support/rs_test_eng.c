/* rs_test_eng.c -- a small scoring engine for state tests (see
 * rs_test_eng.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scoring/changelog.h"
#include "tests/support/rs_test_eng.h"
#include "tests/support/rs_test_kafka.h"

rs_features_t *rs_test_eng_features(int64_t key_ttl, int64_t label_maturity) {
    rs_features_conf_t c;
    char err[256];
    rs_features_conf_init(&c);
    if (key_ttl) c.key_ttl = key_ttl;
    c.max_keys = 256;
    c.max_counterparties = 256;
    c.label_index = 4096;
    c.label_maturity = label_maturity;
    rs_features_t *f = rs_features_new(&c, err, sizeof(err));
    if (!f) fail_msg("%s", err);
    return f;
}

rs_model_t *rs_test_eng_model(const rs_features_t *f, int dim,
                              const char *const *names, int batch_max,
                              int max_entities) {
    rs_model_conf_t c;
    char es[256];
    const char *fnames[RS_FEATURES_MAX_DIM];
    if (!names) {
        dim = rs_features_dim(f);
        for (int i = 0; i < dim; i++) fnames[i] = rs_features_name(f, i);
        names = fnames;
    }
    rs_model_conf_init(&c);
    c.batch_max = batch_max;
    c.seq.d_model = 4;
    c.seq.history = 4;
    c.seq.layers = 1;
    c.seq.experts = 2;
    c.seq.top_k = 1;
    c.seq.expert_hidden = 4;
    c.seq.buckets = 8;
    c.seq.max_entities = max_entities;
    rs_model_t *m = rs_model_new(&c, dim, names, es, sizeof(es));
    if (!m) fail_msg("%s", es);
    return m;
}

void rs_test_eng_new(rs_test_eng_t *e, const char *dir, int64_t key_ttl) {
    char err[256];
    e->f = rs_test_eng_features(key_ttl, 86400000LL);
    e->m = rs_test_eng_model(e->f, 0, NULL, 8, 64);
    e->d = rs_dedup_new(1024, 86400000LL, err, sizeof(err));
    if (!e->d) fail_msg("%s", err);
    e->ps = rs_pstate_new(dir, e->f, e->m, e->d, err, sizeof(err));
    if (!e->ps) fail_msg("%s", err);
}

void rs_test_eng_free(rs_test_eng_t *e) {
    rs_pstate_destroy(e->ps);
    rs_dedup_destroy(e->d);
    rs_model_destroy(e->m);
    rs_features_destroy(e->f);
}

static int rs_test_eng_sel(void *o, uint64_t key, int32_t p) {
    (void)key;
    return p == *(int32_t *)o;
}

uint8_t *rs_test_eng_bytes(rs_test_eng_t *e, int32_t p, size_t *len) {
    size_t fl = 0, cl, dl, got;
    rs_features_part_write(e->f, p, NULL, 0, &fl, NULL);
    cl = rs_model_caches_size_sel(e->m, rs_test_eng_sel, &p);
    dl = rs_dedup_size_part(e->d, p);
    uint8_t *b = malloc(fl + cl + dl + 1);
    assert_non_null(b);
    assert_int_equal(rs_features_part_write(e->f, p, b, fl, &got, NULL),
                     RS_OK);
    assert_int_equal(rs_model_caches_write_sel(e->m, rs_test_eng_sel, &p,
                                               b + fl, cl, &got), RS_OK);
    assert_int_equal(rs_dedup_write_part(e->d, p, b + fl + cl, dl, &got),
                     RS_OK);
    *len = fl + cl + dl;
    return b;
}

void rs_test_eng_pos(void *o, int32_t p, rs_pstate_pos_t *pos) {
    const int64_t *off = o;
    pos->events = off[p];
    pos->labels = -1;
    pos->log_end = (uint64_t)off[p];
    pos->changelog = -1;
}

void rs_test_eng_batch(rs_test_eng_t *e, int b, rs_msg_t *msgs, int64_t *off,
                       const char *ent) {
    uint8_t rec[8192];
    assert_true(rs_model_lrec_size(e->m) <= sizeof(rec));
    for (int i = 0; i < 8; i++) {
        int k = b * 8 + i, en = k % 6;
        rs_msg_t *m = &msgs[i];
        memset(m, 0, sizeof(*m));
        m->kind = RS_MSG_EVENT;
        m->partition = en % RS_TEST_ENG_NPART;
        m->offset = off[m->partition]++;
        rs_event_t *ev = &m->ev;
        snprintf(ev->id, sizeof(ev->id), "tx-%d", k);
        snprintf(ev->type, sizeof(ev->type), "card_tx");
        snprintf(ev->entity_id, sizeof(ev->entity_id), "%s-%d", ent, en);
        snprintf(ev->counterparty_id, sizeof(ev->counterparty_id), "m-%d", k % 3);
        ev->event_time_ms = 1767225600000LL + (int64_t)k * 60000;
        ev->amount = 5.0 + k % 17;
        float x[RS_FEATURES_MAX_DIM];
        rs_features_set_partition(e->f, m->partition);
        assert_int_equal(rs_features_process(e->f, ev, x, NULL), RS_OK);
        rs_model_input_t in;
        rs_model_output_t out;
        memset(&in, 0, sizeof(in));
        in.event_id = ev->id;
        in.entity_id = ev->entity_id;
        in.counterparty_id = ev->counterparty_id;
        in.event_time_ms = ev->event_time_ms;
        in.amount = (float)ev->amount;
        in.x = x;
        in.lrec = rec;
        in.lpos = RS_LPOS(m->partition, m->offset);
        assert_int_equal(rs_model_forward(e->m, &in, 1, &out, NULL,
                                          RS_MODEL_FWD_REMEMBER), RS_OK);
        uint64_t h;
        rs_dedup_check_part(e->d, rs_dedup_key(ev->entity_id, ev->id),
                            ev->event_time_ms, m->partition, &h);
        rs_dedup_rec_t r;
        memset(&r, 0, sizeof(r));
        r.has = 1;
        r.score = out.score;
        snprintf(r.model_version, sizeof(r.model_version), "v1");
        rs_dedup_set(e->d, h, &r);
    }
}

rs_trainer_t *rs_test_eng_trainer(int dim, const char *const *names) {
    char err[512];
    rs_model_conf_t c;
    rs_model_conf_init(&c);
    c.kind = RS_MODEL_LR;
    c.batch_max = 16;
    c.train_queue = 8;
    c.publish_interval_ms = 600000;
    rs_model_t *tm = rs_model_new(&c, dim, names, err, sizeof(err));
    if (!tm) fail_msg("%s", err);
    rs_err_t e2;
    rs_trainer_t *tr = rs_trainer_new(tm, &c, NULL, &e2, err, sizeof(err));
    if (!tr) fail_msg("%s", err);
    return tr;
}

void rs_test_eng_maint_conf(rs_maint_conf_t *mc) {
    rs_maint_conf_init(mc);
    mc->enabled = 1;
    mc->alert_threshold = 0.5;
    mc->alert_readings = 2;
    mc->max_machines = 64;
    mc->cold_start = 1;
}

rs_alerts_t *rs_test_eng_alerts(const rs_maint_conf_t *mc, int64_t key_ttl,
                                rs_features_t *f, const rs_model_t *scorer,
                                rs_trainer_t *tr) {
    char err[512];
    rs_alerts_opts_t ao = {8, key_ttl};
    rs_alerts_t *al = rs_alerts_new(mc, &ao, f, scorer, tr, err, sizeof(err));
    if (!al) fail_msg("%s", err);
    return al;
}

rs_cluster_t *rs_test_eng_cluster(rs_kv_t *kv, const char **boot) {
    char err[512];
    const char *topics[] = {"events", RS_TEST_ENG_CLOG};
    rs_cluster_t *cl = rs_cluster_new(1, topics, 2, RS_TEST_ENG_NPART, err,
                                      sizeof(err));
    if (!cl) fail_msg("%s", err);
    *boot = rs_cluster_bootstraps(cl);
    rs_kv_init(kv);
    return cl;
}

rs_changelog_t *rs_test_eng_changelog(rs_test_eng_t *e, const rs_kv_t *kv,
                                      const char *boot, int dedup) {
    char err[512];
    rs_changelog_t *c = rs_changelog_new(kv, boot, RS_TEST_ENG_CLOG, e->f,
                                         e->m, dedup ? e->d : NULL, e->ps, 8,
                                         err, sizeof(err));
    if (!c) fail_msg("%s", err);
    return c;
}

int rs_test_eng_key(const rd_kafka_message_t *rkm, rs_pstate_key_t *k) {
    char e[256];
    return rs_pstate_key_parse(rkm->key, rkm->key_len, k, e, sizeof(e)) ? -1
                                                                         : 0;
}

void rs_test_eng_expiry_run(rs_test_eng_t *e, rs_changelog_t *c,
                            int64_t *off) {
    rs_msg_t msgs[8];
    char pfx[16];
    for (int i = 0; i < 13; i++) {
        int bt = i ? 19 + i : 1;
        snprintf(pfx, sizeof(pfx), "n%d", bt);
        rs_test_eng_batch(e, bt, msgs, off, i ? pfx : "old");
        rs_changelog_stage(c, (uint64_t)(i + 1), msgs, 8, rs_test_eng_pos,
                           off);
        rs_changelog_release(c, (uint64_t)(i + 1));
    }
    assert_int_equal(rs_changelog_flush(c, 10000), 0);
}

void rs_test_eng_read_changelog(rs_changelog_t *c, const char *boot,
                                void (*cb)(void *, const rd_kafka_message_t *),
                                void *opaque) {
    rs_changelog_stats_t st;
    rs_changelog_stats(c, &st);
    assert_int_equal(rs_test_kafka_read(boot, RS_TEST_ENG_CLOG,
                                        (int)st.records, 500, 20000, cb,
                                        opaque),
                     (int)st.records);
}
