/* pool.h -- a fork-join pool of worker threads for the data-parallel
 * stages of a batch (decode, explanation, encode).
 *
 * Design: rs_pool_run(pool, n, ...) cuts [0, n) into at most `size`
 * contiguous slices and returns when every slice is done.  Slices are
 * claimed (an atomic counter) by the pool's threads and by the caller,
 * which keeps claiming until none is left: a worker thread that the
 * scheduler has not woken yet (a shared, busy machine) never holds the
 * batch up.  The slices are a pure function of (n, size, min_chunk) and
 * a stage keeps its scratch per SLICE (an encoding arena per slice), so
 * the results do not depend on which thread ran what: they are those of
 * one thread.  A pool of
 * size 1 (or NULL) runs the whole range inline on the caller: no thread,
 * no lock, exactly the single-threaded path.
 *
 * Generic: knows nothing of events or scores (common/).
 *
 * Threads: one caller at a time (the owner, e.g. the service thread)
 * calls rs_pool_run; the stage function runs on the caller and on the
 * pool's threads and must only write what its slice owns.  The pool
 * allocates at rs_pool_new only. */
#ifndef RS_POOL_H
#define RS_POOL_H

#include <stddef.h>

#include "common/common.h"

typedef struct rs_pool_s rs_pool_t;

/* A stage: handle items [lo, hi), slice number `slice` (its scratch). */
typedef void rs_pool_fn(void *opaque, int lo, int hi, int slice);

/* A pool of `size` workers: the caller plus size - 1 threads named
 * "<name>-<i>" (size 1: no thread).  NULL with errstr if a thread cannot
 * be started (RS_ERR_NOMEM) or size is out of [1, RS_POOL_MAX]
 * (RS_ERR_CONFIG).  @locality the owner thread */
#define RS_POOL_MAX 64
rs_pool_t *rs_pool_new(int size, const char *name, rs_err_t *err,
                       char *errstr, size_t errstr_size);
/* Joins the threads.  NULL is a no-op.  @locality the owner thread */
void rs_pool_destroy(rs_pool_t *pool);

/* Workers of the pool (1 for NULL). */
int rs_pool_size(const rs_pool_t *pool);

/* Run fn over [0, n) in s = min(size, n / min_chunk) slices (at least
 * 1: a batch of a few events runs inline on the caller, with no
 * wake-up), and wait for all.  Returns s; slice w is
 * [rs_pool_lo(n, s, w), rs_pool_lo(n, s, w + 1)).
 * @locality the owner thread (not reentrant: no nested runs) */
int rs_pool_run(rs_pool_t *pool, int n, int min_chunk, rs_pool_fn *fn,
                void *opaque);

/* First item of slice w of s over [0, n). */
static inline int rs_pool_lo(int n, int s, int w) {
    return (int)(((long long)n * w) / s);
}

#endif
