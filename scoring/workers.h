/* workers.h -- the service's worker threads (issue 12.2): the per-event
 * work that needs no state shared between events runs on every core.
 *
 * Design (measured, see README "Workers"): the scoring thread keeps what
 * holds state -- duplicate window, features (entity and shared tables),
 * the model's forward with its entity caches, the learning logs, the
 * sinks' queues -- and hands the rest of a batch to a fork-join pool
 * (common/pool.h) in contiguous slices:
 *   - decode of the polled payloads (ingest, rs_ingest_set_pool),
 *   - the score records: fields, explanation (top contributions with
 *     their words, attended events, experts, reasons), timestamps,
 *   - encoding each record once (JSON, and protobuf for Kafka if set)
 *     into an arena of its slice, and, if asked, its compact Redis record
 *     (sink.h rs_redis_rec_encode: the scoring thread then only copies
 *     those bytes into the Redis writer's buffer, instead of encoding
 *     them from records that left the cache long before).
 * Every slice writes only its own rows and its own scratch, and reads
 * what the scoring thread wrote before the stage, so the records are
 * byte for byte those of one thread whatever the interleaving; the
 * weights are not touched (the forward ran before).  service.workers = 1
 * runs every stage inline on the scoring thread (no thread is started).
 *
 * Zero-copy produce: the Kafka bytes of a batch (json / kbytes) are
 * encoded into one of RS_WORKERS_GENS arena sets, taken in turn by
 * rs_workers_hold, and stay there until a later batch takes the same set
 * -- which it may only once the producer is done with them (the Kafka
 * sink holds records until their batch is acknowledged, sink.h
 * rs_sink_kafka_set_hold).  The compact Redis records are copied by the
 * Redis sink at once and use one arena.
 *
 * Threads: every function here is called from the scoring thread; the
 * stages run on it and on the pool's threads.  Allocation: at
 * rs_workers_new, and the encoding arenas grow only while a batch needs
 * more than they hold (as rs_enc_arena_t does). */
#ifndef RS_WORKERS_H
#define RS_WORKERS_H

#include "scoring/scoring.h"
#include "common/pool.h"

typedef struct rs_workers_s rs_workers_t;

/* `n` workers (the scoring thread + n - 1 threads) for feature vectors of
 * `dim`.  NULL with errstr if a thread cannot start.  @locality owner */
rs_workers_t *rs_workers_new(int n, int dim, rs_err_t *err, char *errstr,
                             size_t errstr_size);
/* NULL is a no-op.  @locality owner */
void rs_workers_destroy(rs_workers_t *wk);

/* Arena sets: batches whose Kafka bytes may be in flight at once; one
 * more, RS_WORKERS_GENS itself, is the copy set: never handed out by
 * rs_workers_hold, free for a batch the producer copies (all sets held). */
#define RS_WORKERS_GENS 8

/* The arena set for the records of batch `seq`: the next one in turn (so
 * the one whose bytes are oldest), if the last batch encoded into it is
 * <= `released` -- rs_sink_kafka_acked() when the sink holds the bytes
 * (rs_sink_kafka_holds), UINT64_MAX when it copies them.  Takes it for
 * seq and returns its index (rs_workers_batch_t.gen); -1 while it is
 * still held: the caller serves delivery reports and asks again, or
 * encodes the batch into the copy set (gen RS_WORKERS_GENS) and has the
 * producer copy it (the service: no wait on the scoring path).
 * Allocates nothing.
 * @locality owner */
int rs_workers_hold(rs_workers_t *wk, uint64_t seq, uint64_t released);

/* The pool (for rs_ingest_set_pool); owned by wk. */
rs_pool_t *rs_workers_pool(rs_workers_t *wk);
int rs_workers_n(const rs_workers_t *wk);

/* The records of a scored micro-batch.  Row k (an event) was scored as
 * mout[k] from x[k]; pub[k] is its index in out[] (-1: a replay, no
 * record).  Before the call out[pub[k]] holds score, decision and flags
 * (set by the scoring thread, which also keeps the duplicate window);
 * the stage fills the rest and encodes out[pub[k]] into json[pub[k]]
 * (and kbytes[pub[k]]: the same bytes, or protobuf; and with recs set,
 * recs[pub[k]]: its compact Redis record, NULL for a record the compact
 * form does not take).  json and kbytes live in arena set `gen` (from
 * rs_workers_hold) until a later batch encodes into the same set, or
 * rs_workers_destroy; recs until the next rs_workers_records. */
typedef struct rs_workers_batch_s {
    const rs_service_conf_t *conf;
    const rs_features_t *feat;     /* names and words (read only)        */
    int dim, nev;
    const rs_msg_t *const *msgs;   /* the batch (the consumer's)         */
    const int *ev_msg;             /* [nev] msgs index of row k          */
    const int *pub;                /* [nev]                              */
    const float *x;                /* [nev][dim]                         */
    const float *contrib;          /* [nev][dim], NULL: no explanations  */
    const rs_model_output_t *mout; /* [nev]                              */
    const char *version;           /* model version that scored them     */
    int64_t now_wall_us, now_mono_us; /* the records' stamps             */
    rs_score_t *out;               /* [npub]                             */
    rs_format_t kafka_format;
    const void **json;             /* [npub] out                         */
    size_t *json_lens;
    const void **kbytes;           /* [npub] out                         */
    size_t *klens;
    const void **recs;             /* [npub] out, or NULL: not wanted    */
    size_t *rec_lens;              /* [npub] out (with recs)             */
    int gen;                       /* arena set (rs_workers_hold, or
                                    * RS_WORKERS_GENS: the copy set)     */
    int bad;                       /* out: out index that did not encode */
} rs_workers_batch_t;

/* Fill and encode the records of b (see above).  RS_ERR_TOOBIG if a record
 * does not encode (a corrupt record: a bug, never input), b->bad = its
 * index; RS_ERR_INVALID for a gen out of [0, RS_WORKERS_GENS].  @locality owner */
rs_err_t rs_workers_records(rs_workers_t *wk, rs_workers_batch_t *b);

#endif
