/* sink_redis_int.h -- the Redis sink's private state, shared by its files
 * (design note: sink_redis.c):
 *   sink_redis.c         configuration, URL, connections, the owner's
 *                        synchronous write and the reads;
 *   sink_redis_cmds.c    the RESP commands of a batch (no I/O);
 *   sink_redis_writer.c  the async path: the ring, the owner's enqueue and
 *                        the writer thread;
 *   sink_redis_rec.c     the compact score record and the stored value ->
 *                        JSON step of the reads (no I/O).
 * Not a public header: only the sink's own files include it. */
#ifndef RS_SINK_REDIS_INT_H
#define RS_SINK_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "scoring/redis_tls.h"
#include "scoring/sink.h"

/* One queued batch in the ring, followed by `bytes` of RESP commands:
 * ncmds commands, then the expiry tail (tail_cmds PEXPIREs of the entity
 * indexes whose refresh the index upkeep skipped, tail_bytes of them),
 * which the writer sends only when the upkeep's bookkeeping may not hold
 * for this connection (rs_redis_tail_needed). */
typedef struct rs_redis_entry_s {
    uint64_t seq;
    uint64_t bytes;      /* payload after this header (tail included)   */
    uint64_t tail_bytes; /* the last tail_bytes of it: the expiry tail  */
    int64_t built_us;    /* owner's monotonic clock at the build        */
    uint32_t ncmds;      /* commands before the tail (= replies)        */
    uint32_t tail_cmds;
    uint32_t nscores;
    uint32_t ninputs;
    uint32_t gen;        /* writer's connection generation at the build */
    uint32_t pad;
} rs_redis_entry_t;

/* Entity index upkeep (sink_redis_cmds.c): the owner's memory of each
 * entity index it maintains, a set-associative table of
 * RS_REDIS_IX_SETS x RS_REDIS_IX_WAYS slots (allocated once, at the first
 * async batch).  A miss (never seen, evicted, or the table reset) gets the
 * full upkeep, so losing an entry only costs commands. */
typedef struct rs_redis_ix_s {
    uint64_t tag;      /* rs_hash_str(entity) | 1; 0: empty              */
    int64_t t_ms;      /* owner's mono ms of the last PEXPIRE built      */
    uint32_t adds;     /* members added since the last trim built        */
    uint32_t epoch;    /* valid iff == sink->ix_epoch                    */
} rs_redis_ix_t;

#define RS_REDIS_IX_WAYS 4
#define RS_REDIS_IX_SETS 16384 /* 64 Ki entities, 1.5 MiB */

/* The upkeep planned for one entity of a batch (grp_plan[i], i the
 * entity's first score in the batch). */
typedef struct rs_redis_ixplan_s {
    rs_redis_ix_t next; /* the slot's value once the batch is queued     */
    int slot;           /* table slot; -1: no table (synchronous path)   */
    uint8_t expire;     /* PEXPIRE among the batch's commands            */
    uint8_t trim;       /* ZREMRANGEBYRANK                               */
} rs_redis_ixplan_t;

#define RS_REDIS_PIPE_ENTRIES 256       /* entries per writer round trip */
#define RS_REDIS_PIPE_BYTES (1u << 20)  /* ... and about this many bytes */
#define RS_REDIS_BACKOFF_MIN_MS 50
#define RS_REDIS_BACKOFF_MAX_MS 2000
#define RS_REDIS_IDLE_PING_MS 1000      /* writer PINGs after this idle  */
#define RS_REDIS_DRAIN_MS 10000         /* destroy: time left to write   */
#define RS_REDIS_REJECT_LOG_MS 10000    /* rejected-command log interval */
#define RS_REDIS_BUFFER_MIN 4096
#define RS_REDIS_HOLD_BYTES (16u << 10) /* redis.flush_delay: no holding
                                         * past this many queued bytes */

/* What the writer thread is doing (sink->wstate): the owner wakes it only
 * when it waits for work, or holds (redis.flush_delay) and the queued bytes
 * reached RS_REDIS_HOLD_BYTES; busy, it finds the new entries itself. */
enum { RS_REDIS_W_BUSY = 0, RS_REDIS_W_IDLE = 1, RS_REDIS_W_HOLD = 2 };

struct rs_sink_redis_s {
    rs_redis_conf_t conf;
    rs_redis_url_t url;
    char password[128];    /* AUTH password (env or URL); never logged */
    char endpoint[300];    /* "host:port/db" or "unix:path" for messages */
    char ttl_arg[24];      /* conf.ttl_ms as text                        */
    char input_ttl_arg[24];/* input_ttl_ms (or ttl_ms if 0) as text      */
    char cap_arg[24];      /* -(entity_index_max + 1) as text            */
    char alert_cap_arg[24];/* -(alert_index_max + 1) as text             */
    char ix_ttl_arg[24];   /* ttl_ms + 2 ix_period_ms: the async path's
                            * entity index expiry                        */
    int64_t ix_period_ms;  /* ttl / 16: an entity index's expiry is
                            * refreshed when older than this             */
    int64_t ix_slack;      /* entity_index_max / 8 + 16: adds between
                            * trims                                      */
    rs_redis_tls_t *tls;   /* rediss://: TLS context (immutable)         */
    redisContext *ctx;     /* owner's; NULL: disconnected                */
    int ever_connected;

    /* Owner-thread scratch, grown to the largest batch (then reused). */
    rs_enc_arena_t enc;    /* JSON of the entry points given rs_score_t  */
    const void **enc_ptr;  /* [enc_cap] records in `enc`                 */
    size_t *enc_len;       /* [enc_cap]                                  */
    int enc_cap;
    int *grp_next;         /* [2 grp_cap] next score of the same entity,
                            * then first-of-its-entity flags            */
    int *grp_tab;          /* [grp_tabsz] last score index + 1 per entity
                            * (0: empty), open addressing               */
    rs_redis_ixplan_t *grp_plan; /* [grp_cap] upkeep per entity           */
    int grp_cap;
    uint32_t grp_tabsz;    /* power of two >= 2 grp_cap                  */
    rs_redis_ix_t *ix;     /* [RS_REDIS_IX_SETS * RS_REDIS_IX_WAYS]; owner
                            * thread; NULL until the first async batch   */
    uint32_t ix_epoch;     /* bumped: every entry of ix is a miss         */
    uint32_t ix_gen;       /* writer's generation ix was valid for        */
    uint8_t *rec_buf;      /* [RS_REDIS_REC_MAX] a compact record        */
    rs_score_t *rd_sc;     /* reads: a record decoded (compact -> JSON)  */
    char *rd_json;         /* [RS_ENCODE_MAX] reads: its JSON (mget)     */
    unsigned char *wbuf;   /* [wcap] RESP of rs_sink_redis_write_json    */
    size_t wcap;

    /* --- async writer.  Immutable once the thread runs: ring, cap. */
    unsigned char *ring;   /* [cap] RESP entries; NULL until 1st enqueue */
    uint64_t cap;
    int started;           /* owner thread only                          */
    pthread_t thread;
    uint64_t owner_seq;    /* owner thread only: last enqueued seq       */
    pthread_mutex_t lock;  /* guards the fields below                    */
    pthread_cond_t work_cv;/* writer waits: entry queued / stop          */
    pthread_cond_t done_cv;/* rs_sink_redis_wait: done moved             */
    uint64_t head, tail;   /* absolute ring positions                    */
    uint64_t queued;       /* entries in [head, tail)                    */
    uint64_t head_seq;     /* seq of the entry at head (queued > 0)      */
    uint64_t last_seq;     /* seq of the last enqueue (n == 0 included)  */
    int stop;              /* destroy asked the writer to finish         */
    int wstate;            /* RS_REDIS_W_*: the writer's wait            */
    int flush_now;         /* rs_sink_redis_wait: end a hold at once     */
    int64_t stop_deadline_us;
    _Atomic uint64_t done;
    _Atomic int healthy;
    _Atomic uint32_t wgen; /* writer's connection generation: +1 at each
                            * connect, before anything is written on it */

    struct {
        _Atomic uint64_t writes, scores, io_errors, errors, reconnects;
        _Atomic uint64_t buffer_bytes, buffer_peak, queued_batches,
            buffer_full, written, inputs, write_errors, rejected, outages,
            flushes;
    } c;
};

#define RS_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define RS_ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)
#define RS_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Encoder over the ring: writes [pos, limit) (wrapping at cap) and keeps
 * counting past `limit`, so one pass tells both "fits" and "needs N". */
typedef struct rs_ring_w_s {
    unsigned char *ring; /* [cap] */
    uint64_t cap;
    uint64_t pos;        /* absolute; may run past limit */
    uint64_t limit;      /* head + cap                   */
    uint64_t off;        /* pos % cap while pos <= limit (kept as the
                          * bytes go in: no division per piece)          */
} rs_ring_w_t;


/* sink_redis.c */
rs_err_t rs_redis_cmd_ok(const rs_sink_redis_t *sink, redisContext *ctx,
                         int argc, const char **argv, const char *what,
                         char *errstr, size_t errstr_size);
rs_err_t rs_redis_open(const rs_sink_redis_t *sink, redisContext **out,
                       char *errstr, size_t errstr_size);
rs_err_t rs_redis_encode(rs_sink_redis_t *sink, const rs_score_t *scores,
                         int n);

/* sink_redis_cmds.c */
size_t rs_redis_key(char *buf, size_t size, const char *prefix,
                    const char *a, const char *b, const char *c);
void rs_ring_w_linear(rs_ring_w_t *w, unsigned char *buf, size_t cap);
uint64_t rs_ring_w_pos(const rs_ring_w_t *w);
void rs_ring_copy_in(unsigned char *ring, uint64_t cap, uint64_t pos,
                     const void *p, size_t len);
void rs_ring_copy_out(const unsigned char *ring, uint64_t cap, uint64_t pos,
                      void *p, size_t len);
void rs_ring_put(rs_ring_w_t *w, const void *p, size_t len);
/* Plan the entity index upkeep of a batch (groups its scores by entity):
 * async 0 -- the synchronous path: full upkeep (ZADD, PEXPIRE ttl, trim)
 * for every entity, and the table reset; async 1 -- from the table, at
 * the owner's clock now_ms.  Call before rs_redis_build; owner thread. */
void rs_redis_plan(rs_sink_redis_t *sink, const rs_score_t *scores, int n,
                   int async, int64_t now_ms);
/* The batch planned is queued (async) or written: the table takes the
 * plan.  Owner thread. */
void rs_redis_commit(rs_sink_redis_t *sink, const rs_score_t *scores, int n);
/* The RESP commands of one planned batch: *ncmds commands, then
 * *tail_cmds PEXPIREs (async plan: the expiry tail; its bytes are the
 * last *tail_bytes written); the synchronous plan has no tail.  recs
 * (may be NULL): compact records made beforehand (sink.h
 * rs_sink_redis_enqueue_recs); the others are encoded here. */
void rs_redis_build(rs_sink_redis_t *sink, rs_ring_w_t *w,
                    const rs_score_t *scores, int n,
                    const char *const *json, const size_t *json_lens,
                    const void *const *recs, const size_t *rec_lens,
                    const void *const *logs, const size_t *log_lens,
                    uint32_t *ncmds, uint32_t *ninputs, uint32_t *tail_cmds,
                    uint64_t *tail_bytes);

/* sink_redis_writer.c */
rs_err_t rs_redis_writer_start(rs_sink_redis_t *sink);
void rs_redis_writer_stop(rs_sink_redis_t *sink);

#endif /* RS_SINK_REDIS_INT_H */
