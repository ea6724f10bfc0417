/* rs_test_learn.h -- score and learn on one thread, as the tools do
 * (eval, train, faithful): a model, an in-memory learning log of
 * partition 0 and a learner over both (model/learner.h "single-thread
 * use").  The model tests share it instead of each wiring the three.
 *
 *   rs_test_learn_t *t = rs_test_learn_new(&conf, dim, names, err, n);
 *   rs_test_learn_forward(t, in, n, out, contrib, RS_MODEL_FWD_REMEMBER);
 *   rs_test_learn_label(t, "ev-1", 1.0, &res);     (rs_model_learn before)
 *   rs_test_learn_advance(t, watermark, cb, opaque); (rs_model_advance)
 *   rs_test_learn_destroy(t);
 *
 * The struct is open: a test reaches t->m, t->log and t->l for what the
 * wrappers do not cover (rs_learner_label with a psi, rs_learnlog_stats,
 * rs_learner_stats).  The log is in memory; its segment size is
 * conf->log_segment, at most 64 MiB (the pages are touched only when
 * records are written), so a test can make segments roll with a small
 * log_segment.  The learner's horizon is conf->label_horizon (auto by
 * default: set it when a test depends on maturity).
 *
 * No cmocka in here: rescore_fixture and the fuzz seed makers may use it.
 * Threads: one thread per rs_test_learn_t.
 */
#ifndef RS_TEST_LEARN_H
#define RS_TEST_LEARN_H

#include <stddef.h>
#include <stdint.h>

#include "model/learner.h"
#include "model/learnlog.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_test_learn_s {
    rs_model_t *m;          /* owned (unless from rs_test_learn_borrow)   */
    rs_learnlog_t *log;     /* owned, in memory, partition 0              */
    rs_learner_t *l;        /* owned, learns m, log attached              */
    rs_model_conf_t conf;   /* the learner's (copy)                       */
    int own;                /* 1: destroy m with it                       */
} rs_test_learn_t;

/* New model (rs_model_new(conf, dim, names)) with its log and learner.
 * NULL with errstr on failure. */
rs_test_learn_t *rs_test_learn_new(const rs_model_conf_t *conf, int dim,
                                   const char *const *names, char *errstr,
                                   size_t errstr_size);
/* A log and a learner for m (a loaded model, a new_like...): ownership of
 * m moves to the result on success (stays the caller's on failure).
 * conf (copied): the learner's horizon, delay and log settings; NULL:
 * rs_model_conf_init's. */
rs_test_learn_t *rs_test_learn_wrap(rs_model_t *m, const rs_model_conf_t *conf,
                                    char *errstr, size_t errstr_size);
/* As rs_test_learn_wrap, but m stays the caller's (it must outlive the
 * result): a few learning steps of a model a test keeps using. */
rs_test_learn_t *rs_test_learn_borrow(rs_model_t *m,
                                      const rs_model_conf_t *conf,
                                      char *errstr, size_t errstr_size);
/* NULL is a no-op.  Destroys the learner, the log and (unless borrowed)
 * the model. */
void rs_test_learn_destroy(rs_test_learn_t *t);

/* rs_learner_forward(t->l, 0, t->m, ...): with RS_MODEL_FWD_REMEMBER the
 * events' learning records are appended to t->log (in[i].lrec and
 * in[i].lpos are set: in[] is the caller's scratch). */
rs_err_t rs_test_learn_forward(rs_test_learn_t *t, rs_model_input_t *in,
                               int n, rs_model_output_t *out, float *contrib,
                               unsigned flags);
/* Score one event of kind "lr" given only its vector x (entity "") with
 * REMEMBER; *score (may be NULL) gets its score. */
rs_err_t rs_test_learn_score(rs_test_learn_t *t, const char *event_id,
                             int64_t event_time_ms, const float *x,
                             float *score);
/* rs_learner_label of the label (event_id, value), label time 0 (no delay
 * observed), the model's own drift.  res may be NULL.  RS_OK (res says
 * LEARNED, CORRECTED, CONFIRMED or REPEAT) or RS_ERR_NOTFOUND. */
rs_err_t rs_test_learn_label(rs_test_learn_t *t, const char *event_id,
                             double value, rs_learner_res_t *res);
/* Every record matured by watermark_ms learned as a negative (in chunks
 * of `chunk` <= 0: 64, looping while a chunk came back full); resolved as
 * rs_learner_advance.  Returns how many. */
int rs_test_learn_advance(rs_test_learn_t *t, int64_t watermark_ms, int chunk,
                          void (*resolved)(void *opaque, float score,
                                           int label),
                          void *opaque);
/* The record of event_id and its rebuilt history (rs_learner_record). */
rs_err_t rs_test_learn_record(rs_test_learn_t *t, const char *event_id,
                              const void **rec, const void **hist, int cap,
                              int *nh);
/* Append to dst's log the records src's log has past dst's end, as they
 * were appended (state 0: not yet resolved), so dst's learner sees the
 * same records at the same positions (a second trainer, a restart that
 * keeps the log).  Returns how many. */
uint64_t rs_test_learn_mirror(rs_test_learn_t *dst, rs_test_learn_t *src);
/* The record at position pos of t's log (NULL if not kept). */
const void *rs_test_learn_at(rs_test_learn_t *t, uint64_t pos);
/* rs_learnlog_end of t's log. */
uint64_t rs_test_learn_end(const rs_test_learn_t *t);

#ifdef __cplusplus
}
#endif
#endif /* RS_TEST_LEARN_H */
