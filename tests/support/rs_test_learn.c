/* rs_test_learn.c -- a model, an in-memory learning log and a learner for
 * single-thread tests (see rs_test_learn.h). */
#include "rs_test_learn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RS_TEST_LEARN_SEGMENT_MAX (64ll << 20)

rs_test_learn_t *rs_test_learn_wrap(rs_model_t *m, const rs_model_conf_t *conf,
                                    char *errstr, size_t errstr_size) {
    rs_test_learn_t *t = calloc(1, sizeof(*t));
    if (!t) {
        rs_errf(errstr, errstr_size, RS_ERR_NOMEM, "rs_test_learn: no memory");
        return NULL;
    }
    if (conf) t->conf = *conf;
    else rs_model_conf_init(&t->conf);
    int64_t seg = t->conf.log_segment;
    if (seg > RS_TEST_LEARN_SEGMENT_MAX) seg = RS_TEST_LEARN_SEGMENT_MAX;
    if (seg < (1 << 20)) seg = 1 << 20;
    rs_learnlog_meta_t meta;
    rs_model_lrec_meta(m, &meta);
    rs_err_t err;
    t->log = rs_learnlog_open("", 0, &meta, seg, &err, errstr, errstr_size);
    if (!t->log) {
        free(t);
        return NULL;
    }
    t->l = rs_learner_new(m, &t->conf);
    if (rs_learner_attach(t->l, t->log) != RS_OK) {
        rs_errf(errstr, errstr_size, RS_ERR_STATE,
                "rs_test_learn: the log does not attach");
        rs_learner_destroy(t->l);
        rs_learnlog_close(t->log);
        free(t);
        return NULL;
    }
    t->m = m;
    t->own = 1;
    return t;
}

rs_test_learn_t *rs_test_learn_borrow(rs_model_t *m,
                                      const rs_model_conf_t *conf,
                                      char *errstr, size_t errstr_size) {
    rs_test_learn_t *t = rs_test_learn_wrap(m, conf, errstr, errstr_size);
    if (t) t->own = 0;
    return t;
}

rs_test_learn_t *rs_test_learn_new(const rs_model_conf_t *conf, int dim,
                                   const char *const *names, char *errstr,
                                   size_t errstr_size) {
    rs_model_t *m = rs_model_new(conf, dim, names, errstr, errstr_size);
    if (!m) return NULL;
    rs_test_learn_t *t = rs_test_learn_wrap(m, conf, errstr, errstr_size);
    if (!t) rs_model_destroy(m);
    return t;
}

void rs_test_learn_destroy(rs_test_learn_t *t) {
    if (!t) return;
    rs_learner_destroy(t->l);
    rs_learnlog_close(t->log);
    if (t->own) rs_model_destroy(t->m);
    free(t);
}

rs_err_t rs_test_learn_forward(rs_test_learn_t *t, rs_model_input_t *in,
                               int n, rs_model_output_t *out, float *contrib,
                               unsigned flags) {
    char e[256];
    return rs_learner_forward(t->l, 0, t->m, in, n, out, contrib, flags, e,
                              sizeof(e));
}

rs_err_t rs_test_learn_score(rs_test_learn_t *t, const char *event_id,
                             int64_t event_time_ms, const float *x,
                             float *score) {
    rs_model_input_t in;
    rs_model_output_t out;
    memset(&in, 0, sizeof(in));
    in.event_id = event_id;
    in.entity_id = "";
    in.event_time_ms = event_time_ms;
    in.x = x;
    rs_err_t err = rs_test_learn_forward(t, &in, 1, &out, NULL,
                                         RS_MODEL_FWD_REMEMBER);
    if (!err && score) *score = out.score;
    return err;
}

rs_err_t rs_test_learn_label(rs_test_learn_t *t, const char *event_id,
                             double value, rs_learner_res_t *res) {
    rs_label_t lb;
    memset(&lb, 0, sizeof(lb));
    rs_strlcpy(lb.event_id, event_id, sizeof(lb.event_id));
    lb.value = value;
    return rs_learner_label(t->l, 0, &lb, 0, -1, res);
}

int rs_test_learn_advance(rs_test_learn_t *t, int64_t watermark_ms, int chunk,
                          void (*resolved)(void *opaque, float score,
                                           int label),
                          void *opaque) {
    if (chunk <= 0) chunk = 64;
    int total = 0, k;
    do {
        k = rs_learner_advance(t->l, 0, watermark_ms, -1, chunk, resolved,
                               opaque);
        total += k;
    } while (k == chunk);
    return total;
}

rs_err_t rs_test_learn_record(rs_test_learn_t *t, const char *event_id,
                              const void **rec, const void **hist, int cap,
                              int *nh) {
    return rs_learner_record(t->l, 0, rs_hash_str(event_id), rec, hist, cap,
                             nh);
}

uint64_t rs_test_learn_mirror(rs_test_learn_t *dst, rs_test_learn_t *src) {
    const size_t R = rs_model_lrec_size(src->m);
    uint8_t *rec = malloc(R);
    uint64_t n = 0;
    char e[256];
    for (uint64_t p = rs_learnlog_end(dst->log); p < rs_learnlog_end(src->log);
         p++) {
        const void *r = rs_learnlog_rec(src->log, p);
        if (!r) break;
        memcpy(rec, r, R);
        rec[offsetof(rs_lrec_hdr_t, state)] = 0; /* as appended */
        if (rs_learnlog_append(dst->log, rec, 1, e, sizeof(e)) != RS_OK) break;
        n++;
    }
    free(rec);
    return n;
}

const void *rs_test_learn_at(rs_test_learn_t *t, uint64_t pos) {
    return rs_learnlog_rec(t->log, pos);
}

uint64_t rs_test_learn_end(const rs_test_learn_t *t) {
    return rs_learnlog_end(t->log);
}
