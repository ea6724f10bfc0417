/* rs_test_eng.c -- a small scoring engine for state tests (see
 * rs_test_eng.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/support/rs_test_eng.h"

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
