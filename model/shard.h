/* shard.h -- the model's forward sharded by entity over worker threads
 * (issue 12.2: use every core).
 *
 * Design note
 * -----------
 * rs_model_shard_forward() is rs_model_forward() with the per-entity work
 * of a micro-batch -- the sequence model's forward (standardise, input
 * projection, attention over the entity's cached history, gate, experts,
 * head), the explanation backward, the input logs, the learning records
 * (REMEMBER) and the append to the entity's cache -- split over the
 * threads of a fork-join pool (common/pool.h) by a hash of the entity.
 * So an entity's state is read and written by one thread, in input order,
 * with no lock per event.
 *
 * State, per entity and shared (model/seq_fwd.c "sharded forward"):
 *   - per entity, thread-confined while the lanes run: its cache ring
 *     (keys/values of every layer, times, learning-log positions,
 *     explanation ids/amounts) and its fill;
 *   - shared, serial on the calling thread: the entity index, the LRU
 *     list, slot creation and eviction (planned in input order before the
 *     lanes run), the drift window (fed in input order after);
 *   - read only while the lanes run: the weights (or the snapshot in use)
 *     and the standardiser.
 * The results are those of rs_model_forward bit for bit -- scores,
 * contributions, attended events, experts, flags, input logs, learning
 * records, the caches after the call, evictions and drift -- whatever the
 * number of threads (tests/model/test_shard.c asserts it).  That rests on
 * the exact GEMM kernel (seq.gemm: exact, the default) computing each row
 * the same way whatever its batch; OpenBLAS does not (measured on this
 * box's Haswell kernel: about half the rows of a 2-way row split of a
 * 512-row sgemm differ in the last bits), so with seq.gemm blas, for kind
 * "lr" (per-row and cheap), for a DRY (what-if) call, a pool of one
 * thread or a call of fewer than 2 * RS_MODEL_SHARD_MIN rows, the call is
 * rs_model_forward on the caller's thread.  OpenBLAS is not called by the
 * sharded path at all (no thread-count question there).
 *
 * What stays serial is the caller's: learning-log appends in input order,
 * decisions, the duplicate window (scoring/svc_batch.c).
 *
 * Threads: one owner thread (that of the model) calls everything here;
 * the lanes run on it and on the pool's threads inside
 * rs_model_shard_forward.  Allocation: at rs_model_shard_new only. */
#ifndef RS_MODEL_SHARD_H
#define RS_MODEL_SHARD_H

#include "common/pool.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows per thread below which a call is not split (a wake-up costs about
 * what a few rows of forward + explanation do). */
#define RS_MODEL_SHARD_MIN 8

typedef struct rs_model_shard_s rs_model_shard_t;

/* A sharded forward of m on pool (NULL or size 1: always serial) for calls
 * of up to max_n events (more are planned in several segments).  m and
 * pool are borrowed and must outlive it.  Allocates the lanes' run states
 * (model.batch_max rows each, pages touched only when used).  NULL with
 * errstr if max_n < 1 or the pool has more than 255 threads.
 * @locality the thread that owns m */
rs_model_shard_t *rs_model_shard_new(rs_model_t *m, rs_pool_t *pool,
                                     int max_n, char *errstr,
                                     size_t errstr_size);
void rs_model_shard_destroy(rs_model_shard_t *sh); /* NULL is a no-op */

/* rs_model_forward(m, in, n, out, contrib, flags) with the work split by
 * entity over the pool (see above); same arguments, errors and results.
 * Not reentrant (the pool runs one job at a time).  @locality the thread
 * that owns m */
rs_err_t rs_model_shard_forward(rs_model_shard_t *sh,
                                const rs_model_input_t *in, int n,
                                rs_model_output_t *out /* [n] */,
                                float *contrib /* [n][dim] or NULL */,
                                unsigned flags);

typedef struct rs_model_shard_stats_s {
    int threads;          /* the pool's                                  */
    uint64_t calls;       /* rs_model_shard_forward calls                */
    uint64_t sharded;     /* of which split over more than one thread    */
    uint64_t segments;    /* plans run (>= sharded)                      */
    uint64_t cuts;        /* segments ended early by an eviction          */
    uint64_t rows;        /* events scored by the sharded path           */
} rs_model_shard_stats_t;
void rs_model_shard_stats(const rs_model_shard_t *sh,
                          rs_model_shard_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* RS_MODEL_SHARD_H */
