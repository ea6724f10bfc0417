/* shard.c -- the forward sharded by entity over a pool (see shard.h; the
 * lanes themselves are model/seq_fwd.c "sharded forward"). */
#include <stdlib.h>

#include "model/shard.h"
#include "model/seq_int.h"

struct rs_model_shard_s {
    rs_model_t *m;
    rs_seq_t *seq;        /* kind "seq", else NULL (always serial)       */
    rs_pool_t *pool;
    int threads, max_n;
    rs_seq_lanes_t *pl;   /* NULL: serial only                           */
    rs_model_shard_stats_t st;
};

rs_model_shard_t *rs_model_shard_new(rs_model_t *m, rs_pool_t *pool,
                                     int max_n, char *errstr,
                                     size_t errstr_size) {
    int threads = rs_pool_size(pool);
    if (!m || max_n < 1 || threads > 255) {
        rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                "sharded forward: %s", !m ? "no model"
                : max_n < 1 ? "batch size must be at least 1"
                            : "at most 255 threads");
        return NULL;
    }
    rs_model_shard_t *sh = rs_calloc(1, sizeof(*sh));
    sh->m = m;
    sh->seq = rs_model_seq(m);
    sh->pool = pool;
    sh->threads = threads;
    sh->max_n = max_n;
    sh->st.threads = threads;
    if (sh->seq && threads > 1)
        sh->pl = rs_seq_lanes_new(sh->seq, threads, max_n);
    return sh;
}

void rs_model_shard_destroy(rs_model_shard_t *sh) {
    if (!sh) return;
    rs_seq_lanes_destroy(sh->pl);
    free(sh);
}

/* Pool stage: lane w of the planned segment (one slice = one lane, so
 * the scratch is per lane whichever thread runs it). */
static void rs_model_shard_lane(void *opaque, int lo, int hi, int slice) {
    (void)slice;
    rs_seq_lanes_t *pl = opaque;
    for (int w = lo; w < hi; w++) rs_seq_lanes_run(pl, w);
}

rs_err_t rs_model_shard_forward(rs_model_shard_t *sh,
                                const rs_model_input_t *in, int n,
                                rs_model_output_t *out, float *contrib,
                                unsigned flags) {
    sh->st.calls++;
    int nl = n / RS_MODEL_SHARD_MIN;
    if (nl > sh->threads) nl = sh->threads;
    if (!sh->pl || nl < 2 || !rs_seq_lanes_ok(sh->seq, flags))
        return rs_model_forward(sh->m, in, n, out, contrib, flags);
    if (rs_seq_lanes_check(sh->seq, in, n, flags) != RS_OK)
        return RS_ERR_INVALID; /* nothing scored, as rs_model_forward */
    sh->st.sharded++;
    sh->st.rows += (uint64_t)n;
    for (int from = 0; from < n;) {
        int want = n - from;
        int got = rs_seq_lanes_plan(sh->pl, in, from, n, out, contrib, flags,
                                    nl);
        sh->st.segments++;
        if (got < want && got < sh->max_n) sh->st.cuts++;
        rs_pool_run(sh->pool, nl, 1, rs_model_shard_lane, sh->pl);
        rs_seq_lanes_done(sh->pl);
        from += got;
    }
    return RS_OK;
}

void rs_model_shard_stats(const rs_model_shard_t *sh,
                          rs_model_shard_stats_t *st) {
    *st = sh->st;
}
