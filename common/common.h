/* common.h -- the small shared base of riskstream.
 *
 * Errors, logging, clocks, hashing, checked allocation, a seeded PRNG and a
 * tiny key/value list.  Nothing here knows about Kafka, Redis, the schema or
 * the model: every module may include it, it includes no module.
 *
 * Threads: everything here is thread-safe except rs_kv_t (owned by one
 * thread) and rs_rng_t (one per thread).  The log level is process-wide and
 * set once at start.
 */
#ifndef RS_COMMON_H
#define RS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* One error type for the whole code base.  Functions that can fail return
 * rs_err_t and, where a human needs detail, fill a caller-supplied
 * `errstr, errstr_size` buffer (librdkafka style).
 *
 * Retriable: RS_ERR_AGAIN, RS_ERR_TIMEOUT, RS_ERR_IO (the operation may
 * succeed later, e.g. Redis down).  Everything else is fatal for the call. */
typedef enum rs_err_e {
    RS_OK = 0,
    RS_ERR_INVALID,    /* bad argument / malformed input (record rejected) */
    RS_ERR_CONFIG,     /* bad configuration: unknown key, bad value        */
    RS_ERR_NOMEM,      /* allocation failed or a preallocated pool is full */
    RS_ERR_IO,         /* file or socket error (retriable)                 */
    RS_ERR_KAFKA,      /* Kafka client error                               */
    RS_ERR_REDIS,      /* Redis client error                               */
    RS_ERR_NOTFOUND,   /* lookup miss                                      */
    RS_ERR_CORRUPT,    /* checksum / magic / version mismatch in a file    */
    RS_ERR_TOOBIG,     /* input exceeds a size limit                       */
    RS_ERR_AGAIN,      /* try again later (backpressure)                   */
    RS_ERR_TIMEOUT,    /* deadline passed                                  */
    RS_ERR_STATE,      /* call not valid in the object's current state     */
    RS_ERR__CNT
} rs_err_t;

/* Static string for an error code; never NULL. */
const char *rs_err_str(rs_err_t err);
/* 1 if `err` may succeed when retried later. */
int rs_err_retriable(rs_err_t err);

/* Format into errstr (may be NULL) and return err: `return rs_errf(...)`. */
rs_err_t rs_errf(char *errstr, size_t errstr_size, rs_err_t err,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Process exit codes documented in the README. */
#define RS_EXIT_OK      0
#define RS_EXIT_RUNTIME 1
#define RS_EXIT_USAGE   2

/* --------------------------------------------------------------- logging */

typedef enum rs_log_level_e {
    RS_LOG_DEBUG = 0, RS_LOG_INFO, RS_LOG_WARN, RS_LOG_ERROR, RS_LOG_OFF
} rs_log_level_t;

/* Set the process-wide level (default INFO) and output stream (default
 * stderr).  Call once at start, before threads exist. */
void rs_log_set_level(rs_log_level_t level);
rs_log_level_t rs_log_get_level(void);
void rs_log_set_stream(FILE *fp);
/* Parse "debug|info|warn|error|off"; returns -1 if unknown. */
int rs_log_level_parse(const char *s);

/* Structured one-line log: `ts=... level=info mod=ingest msg="..."`.
 * Thread-safe (one fprintf per line). */
void rs_log(rs_log_level_t level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rs_logv(rs_log_level_t level, const char *mod, const char *fmt,
             va_list ap);

#define rs_debug(mod, ...) rs_log(RS_LOG_DEBUG, mod, __VA_ARGS__)
#define rs_info(mod, ...)  rs_log(RS_LOG_INFO, mod, __VA_ARGS__)
#define rs_warn(mod, ...)  rs_log(RS_LOG_WARN, mod, __VA_ARGS__)
#define rs_error(mod, ...) rs_log(RS_LOG_ERROR, mod, __VA_ARGS__)

/* ---------------------------------------------------------------- clocks */

/* Wall clock, milliseconds / microseconds since the Unix epoch. */
int64_t rs_clock_wall_ms(void);
int64_t rs_clock_wall_us(void);
/* Monotonic clock in microseconds / nanoseconds (for latency). */
int64_t rs_clock_mono_us(void);
int64_t rs_clock_mono_ns(void);

/* Parse a duration "250ms", "10s", "5m", "1h", "7d", "2w" or a bare
 * number of milliseconds.  Returns 0 and sets *out_ms, or -1. */
int rs_duration_parse(const char *s, int64_t *out_ms);
/* Format ms as the shortest exact unit ("7d", "90s", "250ms"). */
void rs_duration_fmt(int64_t ms, char *buf, size_t size);

/* Parse a timestamp: epoch seconds, epoch ms (>= 1e11), or
 * "YYYY-MM-DD HH:MM:SS[.fff]" / ISO "YYYY-MM-DDTHH:MM:SS[.fff][Z]" (UTC).
 * Returns 0 and sets *out_ms, or -1. */
int rs_time_parse(const char *s, size_t len, int64_t *out_ms);
/* Format epoch ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void rs_time_fmt(int64_t ms, char *buf, size_t size);

/* --------------------------------------------------------------- hashing */

/* 64-bit hash of bytes (xxHash3, seed 0): stable across runs and machines,
 * so it may be persisted in checkpoints and model files. */
uint64_t rs_hash64(const void *data, size_t len);
uint64_t rs_hash64_seed(const void *data, size_t len, uint64_t seed);
uint64_t rs_hash_str(const char *s);
/* CRC-32C style checksum for file formats (xxh32 based, stable). */
uint32_t rs_checksum32(const void *data, size_t len, uint32_t seed);

/* ------------------------------------------------------------ allocation */

/* Checked allocation: on failure log and abort().  Use only at start-up
 * and in cold paths; the per-event path must not allocate. */
void *rs_malloc(size_t size);
void *rs_calloc(size_t n, size_t size);
void *rs_realloc(void *p, size_t size);
char *rs_strdup(const char *s);
/* 64-byte aligned zeroed allocation (for BLAS buffers and tables); free
 * with rs_free.  Blocks of RS_LAZY_ZERO_MIN bytes or more are zeroed lazily
 * (rs_zero_lazy): their whole pages are left to the kernel, which maps them
 * zero-filled on first touch, so a table sized for millions of keys costs
 * neither time nor resident memory until its slots are used.  Any thread. */
void *rs_aligned_calloc(size_t n, size_t size);
void rs_free(void *p);

/* Memory a configuration implies, for the start-up check: each module
 * lists its big preallocations by the config key that sizes them. */
typedef struct rs_mem_item_s {
    const char *key;     /* e.g. "features.max_keys" (static string)     */
    uint64_t bytes;
} rs_mem_item_t;

/* Bytes this process can hold: the smallest of physical RAM + swap
 * (sysinfo), the cgroup memory limit (v2 memory.max + memory.swap.max, or
 * v1 memory.limit_in_bytes) and RLIMIT_AS.  `what` (may be NULL) gets a
 * description of the limit ("RAM + swap", "cgroup memory.max", ...).
 * UINT64_MAX if nothing can be read.  @locality any thread */
uint64_t rs_mem_limit(char *what, size_t what_size);

/* Zero `bytes` at `p`, which must lie inside one block from rs_malloc,
 * rs_calloc or rs_aligned_calloc (private anonymous memory).  Below
 * RS_LAZY_ZERO_MIN it is memset; above, the partial pages at both ends are
 * memset and the whole pages between are given back with
 * madvise(MADV_DONTNEED): they read as zeros and are faulted in again, one
 * zero page at a time, only when touched.  Used at start (tables, caches,
 * buffers) and on resets, never per event.  Any thread that owns the block. */
#define RS_LAZY_ZERO_MIN ((size_t)1 << 20)
void rs_zero_lazy(void *p, size_t bytes);
/* The pages given back by rs_zero_lazy are then populated (zero-filled,
 * faulted in) by one background thread at the lowest priority, so the
 * first events do not pay the first-touch faults either; their contents are
 * never changed by it, and rs_free drops a block's pending pages.  Bytes
 * still queued (tests, start-up logs).  Any thread. */
size_t rs_prefault_pending(void);
/* Queue the whole pages of [p, p + bytes) for the same background thread
 * (any writable mapping: a preallocated file mapped MAP_SHARED too), so a
 * buffer written sequentially finds its next pages already faulted in.
 * Contents are never changed.  Silently dropped if the queue is full or
 * the kernel lacks MADV_POPULATE_WRITE (the pages then fault on use).
 * Before the range is unmapped or freed, rs_prefault_cancel() it: once
 * that returns the thread does not touch it.  Any thread. */
void rs_prefault(void *p, size_t bytes);
void rs_prefault_cancel(void *p, size_t bytes);
/* Tests only: on = 1 holds the background thread once it has taken its
 * next chunk off the queue, before it populates it (outside the registry
 * lock, as when the low-priority thread is off a CPU mid-chunk); 0 lets it
 * go on.  Returns 1 if a chunk was held at the call.  Any thread. */
int rs_prefault_hold(int on);
/* Tests only: the start of the next queued chunk (NULL: none).  The
 * rs_prefault ranges are served before the rs_zero_lazy regions (each
 * kind in its order).  Any thread. */
void *rs_prefault_next(void);

/* Copy at most size-1 bytes and always NUL-terminate; returns strlen(src). */
size_t rs_strlcpy(char *dst, const char *src, size_t size);

/* ------------------------------------------------------------------- rng */

/* xoshiro256** seeded by splitmix64: deterministic for a given seed on
 * every platform.  One per thread. */
typedef struct rs_rng_s { uint64_t s[4]; } rs_rng_t;
void rs_rng_seed(rs_rng_t *rng, uint64_t seed);
uint64_t rs_rng_u64(rs_rng_t *rng);
double rs_rng_uniform(rs_rng_t *rng);              /* [0,1)            */
double rs_rng_normal(rs_rng_t *rng);               /* N(0,1)           */
double rs_rng_exp(rs_rng_t *rng, double rate);     /* Exp(rate)        */
uint64_t rs_rng_below(rs_rng_t *rng, uint64_t n);  /* [0,n), n > 0     */
int rs_rng_poisson(rs_rng_t *rng, double lambda);

/* --------------------------------------------------------- key/value list */

/* An ordered list of string pairs, e.g. the `kafka:` section of the config
 * passed straight to rd_kafka_conf_set().  Owns copies of its strings. */
typedef struct rs_kv_s {
    char **keys;
    char **vals;
    int cnt, cap;
} rs_kv_t;

void rs_kv_init(rs_kv_t *kv);
/* Set (replace if present) key=val; copies both. */
void rs_kv_set(rs_kv_t *kv, const char *key, const char *val);
/* NULL if absent.  The pointer is owned by kv. */
const char *rs_kv_get(const rs_kv_t *kv, const char *key);
void rs_kv_copy(rs_kv_t *dst, const rs_kv_t *src);
void rs_kv_free(rs_kv_t *kv);

#define RS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RS_UNUSED(x) (void)(x)

#ifdef __cplusplus
}
#endif
#endif /* RS_COMMON_H */
