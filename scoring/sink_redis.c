/* sink_redis.c -- score records to Redis (key schema in sink.h).
 *
 * Two hiredis contexts, each owned by one thread:
 *   - the owner's (the service thread or a tool): rs_sink_redis_write()
 *     and every read.  A batch's commands (rs_redis_build, the same as on
 *     the async path: records, entity indexes, alert index) are formatted
 *     as RESP into a scratch buffer grown to the largest batch, appended
 *     with redisAppendFormattedCommand, and then all replies are read: one
 *     round trip.
 *     Any I/O error or timeout drops the context (RS_ERR_IO); the next call
 *     reconnects (the caller retries the whole batch: writes are
 *     idempotent).  Error replies (RS_ERR_REDIS) are read to the end so the
 *     connection stays in sync.
 *   - the writer thread's (started by rs_sink_redis_start() or the first
 *     rs_sink_redis_enqueue()).
 *     Failures: reconnect with backoff 50 ms doubling to 2 s; the outage is
 *     logged once when it starts and once when it ends, `healthy` follows
 *     it.  After 1 s without work the writer PINGs, so an outage of a
 *     quiet stream is seen too.
 *
 * Async path.  The owner encodes a batch as RESP commands straight into a
 * byte ring (redis.buffer_bytes; [cap] bytes, positions are absolute
 * uint64 counters, byte = ring[pos % cap]): an entry is a header
 * (rs_redis_entry_t) followed by the commands.  The encoder writes past
 * `tail` and only publishes the new tail (under the mutex) once the whole
 * batch fits, so RS_ERR_AGAIN leaves nothing behind.  The writer appends
 * the bytes of up to RS_REDIS_PIPE_ENTRIES entries (or RS_REDIS_PIPE_BYTES)
 * to its context with redisAppendFormattedCommand, reads the replies, and
 * advances `head` past each entry whose replies all came back: an entry
 * leaves the ring only once written.  On a connection loss the rest is
 * sent again after a reconnect -- idempotent, since records are SET NX and
 * the index a ZADD of the same member.
 *
 * Invariants (under `lock`): head <= tail <= head + cap; `queued` entries
 * lie in [head, tail); when head == tail the owner may move both to the
 * next multiple of cap (the next batch at the ring's first byte); head_seq is the seq of the entry at head when
 * queued > 0; done = queued ? head_seq - 1 : last_seq, kept monotonic.
 * Ring bytes in [head, tail) are only read, by the writer; bytes in
 * [tail, head + cap) only written, by the owner (outside the lock: the
 * mutex that publishes `tail` orders them).
 *
 * Error replies on the async path: LOADING, BUSY, OOM, READONLY, ... (the
 * server cannot take writes now) count as an outage: reconnect, back off,
 * write again.  WRONGTYPE and ERR (the same command would fail again
 * forever: a foreign key of the wrong type in our namespace, or a bug) are
 * counted in `rejected` and logged (rate-limited), and the batch counts
 * as written: the commands Redis did accept are applied.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/fmt.h"
#include "scoring/redis_tls.h"
#include "scoring/sink.h"

/* One queued batch in the ring, followed by `bytes` of RESP commands. */
typedef struct rs_redis_entry_s {
    uint64_t seq;
    uint64_t bytes;    /* payload after this header                     */
    uint32_t ncmds;    /* commands (= replies to read)                  */
    uint32_t nscores;
    uint32_t ninputs;
    uint32_t pad;
} rs_redis_entry_t;

#define RS_REDIS_PIPE_ENTRIES 256       /* entries per writer round trip */
#define RS_REDIS_PIPE_BYTES (1u << 20)  /* ... and about this many bytes */
#define RS_REDIS_BACKOFF_MIN_MS 50
#define RS_REDIS_BACKOFF_MAX_MS 2000
#define RS_REDIS_IDLE_PING_MS 1000      /* writer PINGs after this idle  */
#define RS_REDIS_DRAIN_MS 10000         /* destroy: time left to write   */
#define RS_REDIS_REJECT_LOG_MS 10000    /* rejected-command log interval */
#define RS_REDIS_BUFFER_MIN 4096

struct rs_sink_redis_s {
    rs_redis_conf_t conf;
    rs_redis_url_t url;
    char password[128];    /* AUTH password (env or URL); never logged */
    char endpoint[300];    /* "host:port/db" or "unix:path" for messages */
    char ttl_arg[24];      /* conf.ttl_ms as text                        */
    char input_ttl_arg[24];/* input_ttl_ms (or ttl_ms if 0) as text      */
    char cap_arg[24];      /* -(entity_index_max + 1) as text            */
    char alert_cap_arg[24];/* -(alert_index_max + 1) as text             */
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
    int grp_cap;
    uint32_t grp_tabsz;    /* power of two >= 2 grp_cap                  */
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
    int64_t stop_deadline_us;
    _Atomic uint64_t done;
    _Atomic int healthy;

    struct {
        _Atomic uint64_t writes, scores, io_errors, errors, reconnects;
        _Atomic uint64_t buffer_bytes, buffer_peak, queued_batches,
            buffer_full, written, inputs, write_errors, rejected, outages;
    } c;
};

#define RS_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define RS_ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)
#define RS_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* ----------------------------------------------------------- configuration */

static const rs_conf_field_t rs_redis_fields[] = {
    {"url", RS_CONF_STRING, "", offsetof(rs_redis_conf_t, url),
     sizeof(((rs_redis_conf_t *)0)->url),
     "redis://[[user]:pass@]host[:port][/db], rediss://... (TLS) or "
     "unix:///path[?db=N]; empty = none configured", NULL, 0, 0},
    {"ttl", RS_CONF_DURATION, "7d", offsetof(rs_redis_conf_t, ttl_ms), 0,
     "lifetime of score keys and entity indexes", NULL, 1000,
     366.0 * 86400 * 1000},
    {"key_prefix", RS_CONF_STRING, "rs:", offsetof(rs_redis_conf_t, key_prefix),
     sizeof(((rs_redis_conf_t *)0)->key_prefix), "prefix of every key", NULL,
     0, 0},
    {"entity_index_max", RS_CONF_INT, "1000",
     offsetof(rs_redis_conf_t, entity_index_max), 0,
     "newest scores kept in each entity index", NULL, 1, 1000000},
    {"timeout", RS_CONF_DURATION, "2s", offsetof(rs_redis_conf_t, timeout_ms),
     0, "connect and command timeout", NULL, 1, 600000},
    {"password_env", RS_CONF_STRING, "",
     offsetof(rs_redis_conf_t, password_env),
     sizeof(((rs_redis_conf_t *)0)->password_env),
     "name of the environment variable holding the AUTH password", NULL, 0,
     0},
    {"buffer_bytes", RS_CONF_INT, "67108864",
     offsetof(rs_redis_conf_t, buffer_bytes), 0,
     "bytes of encoded batches held for the writer thread (Redis slow or "
     "down); when full the service pauses consumption", NULL,
     RS_REDIS_BUFFER_MIN, 1e12},
    {"alert_index_max", RS_CONF_INT, "100000",
     offsetof(rs_redis_conf_t, alert_index_max), 0,
     "newest review/decline/alert decisions kept in the alert index "
     "(<prefix>alerts, the analysts' queue)", NULL, 1, 10000000},
    {"input_ttl", RS_CONF_DURATION, "0",
     offsetof(rs_redis_conf_t, input_ttl_ms), 0,
     "lifetime of input logs (rs:input:<event_id>); 0 = same as ttl", NULL,
     0, 366.0 * 86400 * 1000},
    {"tls_verify", RS_CONF_BOOL, "true", offsetof(rs_redis_conf_t, tls_verify),
     0, "rediss://: verify the server's certificate and name (false accepts "
     "any certificate: tests only)", NULL, 0, 0},
    {"tls_ca_file", RS_CONF_STRING, "", offsetof(rs_redis_conf_t, tls_ca_file),
     sizeof(((rs_redis_conf_t *)0)->tls_ca_file),
     "rediss://: CA certificates (PEM) that sign the server's; empty = "
     "tls_ca_dir, or the system store", NULL, 0, 0},
    {"tls_ca_dir", RS_CONF_STRING, "", offsetof(rs_redis_conf_t, tls_ca_dir),
     sizeof(((rs_redis_conf_t *)0)->tls_ca_dir),
     "rediss://: directory of hashed CA certificates (c_rehash)", NULL, 0, 0},
    {"tls_cert_file", RS_CONF_STRING, "",
     offsetof(rs_redis_conf_t, tls_cert_file),
     sizeof(((rs_redis_conf_t *)0)->tls_cert_file),
     "rediss://: client certificate chain (PEM) for servers that require one "
     "(tls-auth-clients)", NULL, 0, 0},
    {"tls_key_file", RS_CONF_STRING, "",
     offsetof(rs_redis_conf_t, tls_key_file),
     sizeof(((rs_redis_conf_t *)0)->tls_key_file),
     "rediss://: private key of tls_cert_file (PEM); empty = in "
     "tls_cert_file", NULL, 0, 0},
    {"tls_server_name", RS_CONF_STRING, "",
     offsetof(rs_redis_conf_t, tls_server_name),
     sizeof(((rs_redis_conf_t *)0)->tls_server_name),
     "rediss://: name expected in the server's certificate and sent as SNI; "
     "empty = the URL's host", NULL, 0, 0},
};

const rs_conf_field_t *rs_redis_conf_fields(int *n) {
    *n = (int)RS_ARRAY_LEN(rs_redis_fields);
    return rs_redis_fields;
}

void rs_redis_conf_section(rs_conf_section_t *sec, rs_redis_conf_t *conf) {
    memset(sec, 0, sizeof(*sec));
    sec->name = RS_REDIS_CONF_SECTION;
    sec->desc = "Redis score store (audit lookups, entity index)";
    sec->fields = rs_redis_fields;
    sec->nfields = (int)RS_ARRAY_LEN(rs_redis_fields);
    sec->base = conf;
}

void rs_redis_conf_init(rs_redis_conf_t *conf) {
    char errstr[256];
    rs_conf_section_t sec;
    memset(conf, 0, sizeof(*conf));
    rs_redis_conf_section(&sec, conf);
    rs_conf_t *reg = rs_conf_new();
    if (rs_conf_add_section(reg, &sec, errstr, sizeof(errstr)) != RS_OK)
        rs_error("sink", "redis defaults: %s", errstr); /* table bug */
    rs_conf_destroy(reg);
}

/* ------------------------------------------------------------- URL parser */

static int rs_parse_uint(const char *s, size_t len, long max, long *out) {
    long v = 0;
    if (len == 0 || len > 9) return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return -1;
    *out = v;
    return 0;
}

static int rs_copy_part(char *dst, size_t size, const char *src, size_t len) {
    if (len >= size) return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

rs_err_t rs_redis_url_parse(const char *url, rs_redis_url_t *out,
                            char *errstr, size_t errstr_size) {
    static const char redis_scheme[] = "redis://", unix_scheme[] = "unix://",
                      rediss_scheme[] = "rediss://";
    long v;
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || !*url)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis url: empty");

    if (!strncmp(url, unix_scheme, sizeof(unix_scheme) - 1)) {
        const char *path = url + sizeof(unix_scheme) - 1;
        const char *q = strchr(path, '?');
        size_t plen = q ? (size_t)(q - path) : strlen(path);
        out->is_unix = 1;
        if (plen == 0 || path[0] != '/')
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: unix:// needs an absolute path "
                           "(unix:///path/to/redis.sock)");
        if (rs_copy_part(out->path, sizeof(out->path), path, plen))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: socket path longer than %zu bytes",
                           sizeof(out->path) - 1);
        if (q) {
            if (strncmp(q, "?db=", 4) ||
                rs_parse_uint(q + 4, strlen(q + 4), 1000000, &v))
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "redis url: bad query '%s' (only ?db=N)", q);
            out->db = (int)v;
        }
        return RS_OK;
    }
    if (!strncmp(url, rediss_scheme, sizeof(rediss_scheme) - 1)) {
        out->tls = 1;
    } else if (strncmp(url, redis_scheme, sizeof(redis_scheme) - 1)) {
        const char *colon = strstr(url, "://");
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis url: unsupported scheme '%.*s' (use redis://, "
                       "rediss:// or unix://; Sentinel and Cluster addressing "
                       "are not supported: see the README)",
                       colon ? (int)(colon - url) : 16, url);
    }

    const char *p = url + (out->tls ? sizeof(rediss_scheme)
                                    : sizeof(redis_scheme)) - 1;
    const char *end = p + strlen(p);
    const char *slash = strchr(p, '/');
    const char *auth_end = NULL;
    /* userinfo: the last '@' before the path */
    for (const char *s = p; s < (slash ? slash : end); s++)
        if (*s == '@') auth_end = s;
    if (auth_end) {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        if (!colon)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: credentials must be [user]:password@");
        if (rs_copy_part(out->user, sizeof(out->user), p, (size_t)(colon - p)) ||
            rs_copy_part(out->password, sizeof(out->password), colon + 1,
                         (size_t)(auth_end - colon - 1)))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: user or password too long");
        p = auth_end + 1;
    }
    const char *hend = slash ? slash : end;
    const char *port = NULL;
    if (*p == '[') { /* [v6addr] */
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: missing ']' in IPv6 host");
        if (rs_copy_part(out->host, sizeof(out->host), p + 1,
                         (size_t)(rb - p - 1)))
            goto host_too_long;
        if (rb + 1 < hend) {
            if (rb[1] != ':')
                return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                               "redis url: junk after ']'");
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(hend - p));
        if (rs_copy_part(out->host, sizeof(out->host), p,
                         (size_t)((colon ? colon : hend) - p)))
            goto host_too_long;
        if (colon) port = colon + 1;
    }
    if (!out->host[0])
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis url: missing host");
    if (port) {
        if (rs_parse_uint(port, (size_t)(hend - port), 65535, &v) || v == 0)
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: bad port '%.*s'", (int)(hend - port),
                           port);
        out->port = (int)v;
    }
    if (slash && slash + 1 < end) {
        if (rs_parse_uint(slash + 1, (size_t)(end - slash - 1), 1000000, &v))
            return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                           "redis url: bad database number '%s'", slash + 1);
        out->db = (int)v;
    }
    return RS_OK;
host_too_long:
    return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                   "redis url: host longer than %zu bytes",
                   sizeof(out->host) - 1);
}

/* The TLS context of a rediss:// configuration. */
static rs_redis_tls_t *rs_redis_tls_open_conf(const rs_redis_conf_t *conf,
                                              char *errstr,
                                              size_t errstr_size) {
    rs_redis_tls_conf_t tc = {conf->tls_verify, conf->tls_ca_file,
                              conf->tls_ca_dir, conf->tls_cert_file,
                              conf->tls_key_file, conf->tls_server_name};
    return rs_redis_tls_new(&tc, errstr, errstr_size);
}

rs_err_t rs_redis_conf_check(const rs_redis_conf_t *conf, char *errstr,
                             size_t errstr_size) {
    rs_redis_url_t url;
    rs_err_t err = rs_redis_url_parse(conf->url, &url, errstr, errstr_size);
    if (err != RS_OK) return err;
    if (conf->password_env[0] && !getenv(conf->password_env))
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis.password_env: environment variable '%s' is not "
                       "set", conf->password_env);
    if (conf->ttl_ms <= 0 || conf->entity_index_max <= 0 ||
        conf->timeout_ms <= 0)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis: ttl, entity_index_max and timeout must be > 0");
    if (conf->buffer_bytes < RS_REDIS_BUFFER_MIN)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis.buffer_bytes: %" PRId64 " is below %d",
                       conf->buffer_bytes, RS_REDIS_BUFFER_MIN);
    if (conf->input_ttl_ms < 0)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis.input_ttl: must be >= 0 (0 = same as ttl)");
    const char *tls_key = conf->tls_ca_file[0]       ? "tls_ca_file"
                          : conf->tls_ca_dir[0]      ? "tls_ca_dir"
                          : conf->tls_cert_file[0]   ? "tls_cert_file"
                          : conf->tls_key_file[0]    ? "tls_key_file"
                          : conf->tls_server_name[0] ? "tls_server_name"
                                                     : NULL;
    if (tls_key && !url.tls)
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis.%s is set but redis.url is not rediss:// (TLS)",
                       tls_key);
    if (url.tls) { /* the files load (exit 2 now, not at the first connect) */
        rs_redis_tls_t *tls = rs_redis_tls_open_conf(conf, errstr,
                                                     errstr_size);
        if (!tls) return RS_ERR_CONFIG;
        rs_redis_tls_destroy(tls);
    }
    return RS_OK;
}

/* ------------------------------------------------------------- connection */

/* One command on `ctx`, expecting a non-error reply (freed here).
 * RS_ERR_IO (ctx unusable) or RS_ERR_REDIS.  @locality ctx's thread */
static rs_err_t rs_redis_cmd_ok(const rs_sink_redis_t *sink,
                                redisContext *ctx, int argc,
                                const char **argv, const char *what,
                                char *errstr, size_t errstr_size) {
    redisReply *r = redisCommandArgv(ctx, argc, argv, NULL);
    if (!r)
        return rs_errf(errstr, errstr_size, RS_ERR_IO, "redis %s: %s: %s",
                       sink->endpoint, what,
                       ctx->errstr[0] ? ctx->errstr : "connection lost");
    rs_err_t err = RS_OK;
    if (r->type == REDIS_REPLY_ERROR)
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS, "redis %s: %s: %s",
                      sink->endpoint, what, r->str);
    freeReplyObject(r);
    return err;
}

/* A new context, connected, with timeouts, AUTH and SELECT done.  Reads
 * only immutable fields of `sink`: callable from the writer thread.
 * RS_ERR_IO (unreachable, lost) or RS_ERR_REDIS (AUTH/SELECT refused). */
static rs_err_t rs_redis_open(const rs_sink_redis_t *sink,
                              redisContext **out, char *errstr,
                              size_t errstr_size) {
    struct timeval tv = {.tv_sec = sink->conf.timeout_ms / 1000,
                         .tv_usec = (sink->conf.timeout_ms % 1000) * 1000};
    rs_err_t err;
    redisContext *ctx = NULL;
    *out = NULL;
    if (sink->tls) { /* rediss://: TLS through a pump (redis_tls.h) */
        char e2[384];
        int fd;
        if (rs_redis_tls_connect(sink->tls, sink->url.host, sink->url.port,
                                 sink->conf.timeout_ms, &fd, e2,
                                 sizeof(e2)) != RS_OK)
            return rs_errf(errstr, errstr_size, RS_ERR_IO, "redis %s: %s",
                           sink->endpoint, e2);
        ctx = redisConnectFd(fd);
        if (!ctx) close(fd);
    } else {
        ctx = sink->url.is_unix
                  ? redisConnectUnixWithTimeout(sink->url.path, tv)
                  : redisConnectWithTimeout(sink->url.host, sink->url.port,
                                            tv);
    }
    if (!ctx || ctx->err) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO, "redis %s: connect: %s",
                      sink->endpoint,
                      ctx && ctx->errstr[0] ? ctx->errstr : "connection lost");
        goto fail;
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK) {
        err = rs_errf(errstr, errstr_size, RS_ERR_IO,
                      "redis %s: set timeout: %s", sink->endpoint,
                      ctx->errstr[0] ? ctx->errstr : "failed");
        goto fail;
    }
    if (sink->password[0]) {
        const char *argv[3] = {"AUTH", sink->url.user, sink->password};
        err = sink->url.user[0]
                  ? rs_redis_cmd_ok(sink, ctx, 3, argv, "AUTH", errstr,
                                    errstr_size)
                  : rs_redis_cmd_ok(sink, ctx, 2,
                                    (const char *[]){"AUTH", sink->password},
                                    "AUTH", errstr, errstr_size);
        if (err != RS_OK) goto fail;
    }
    if (sink->url.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", sink->url.db);
        err = rs_redis_cmd_ok(sink, ctx, 2, (const char *[]){"SELECT", db},
                              "SELECT", errstr, errstr_size);
        if (err != RS_OK) goto fail;
    }
    *out = ctx;
    return RS_OK;
fail:
    if (ctx) redisFree(ctx);
    return err;
}

static void rs_redis_drop(rs_sink_redis_t *sink) {
    if (sink->ctx) redisFree(sink->ctx);
    sink->ctx = NULL;
}

/* An I/O failure of the owner's context: drop it, RS_ERR_IO. */
static rs_err_t rs_redis_io_error(rs_sink_redis_t *sink, const char *what,
                                  char *errstr, size_t errstr_size) {
    rs_err_t err = rs_errf(errstr, errstr_size, RS_ERR_IO, "redis %s: %s: %s",
                           sink->endpoint, what,
                           sink->ctx && sink->ctx->errstr[0]
                               ? sink->ctx->errstr : "connection lost");
    RS_INC(sink->c.io_errors);
    rs_redis_drop(sink);
    return err;
}

/* (Re)connect the owner's context if needed.  @locality the owner */
static rs_err_t rs_redis_connect(rs_sink_redis_t *sink, char *errstr,
                                 size_t errstr_size) {
    if (sink->ctx) return RS_OK;
    rs_err_t err = rs_redis_open(sink, &sink->ctx, errstr, errstr_size);
    if (err != RS_OK) {
        if (err == RS_ERR_REDIS) RS_INC(sink->c.errors);
        else RS_INC(sink->c.io_errors);
        return err;
    }
    if (sink->ever_connected) {
        RS_INC(sink->c.reconnects);
        rs_info("sink", "redis %s: reconnected", sink->endpoint);
    }
    sink->ever_connected = 1;
    return RS_OK;
}

rs_sink_redis_t *rs_sink_redis_new(const rs_redis_conf_t *conf, char *errstr,
                                   size_t errstr_size) {
    rs_sink_redis_t *sink = NULL;
    struct sigaction sa;

    if (rs_redis_conf_check(conf, errstr, errstr_size) != RS_OK) return NULL;
    /* hiredis writes with write(2): a peer that went away raises SIGPIPE,
     * whose default action kills the process. */
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
        rs_debug("sink", "SIGPIPE set to ignored (hiredis)");
    }
    sink = rs_calloc(1, sizeof(*sink));
    sink->conf = *conf;
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&sink->lock, NULL);
        pthread_cond_init(&sink->work_cv, &ca);
        pthread_cond_init(&sink->done_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    atomic_init(&sink->done, 0);
    atomic_init(&sink->healthy, 1);
    sink->cap = (uint64_t)conf->buffer_bytes;
    atomic_store(&sink->c.buffer_bytes, 0);
    rs_redis_url_parse(conf->url, &sink->url, NULL, 0);
    if (sink->url.tls) {
        sink->tls = rs_redis_tls_open_conf(conf, errstr, errstr_size);
        if (!sink->tls) goto fail;
        if (!conf->tls_verify)
            rs_warn("sink", "redis.tls_verify is false: the server's "
                    "certificate is NOT checked (anyone on the path can read "
                    "and change what riskstream writes); tests only");
    }
    if (conf->password_env[0])
        rs_strlcpy(sink->password, getenv(conf->password_env),
                   sizeof(sink->password));
    else
        rs_strlcpy(sink->password, sink->url.password, sizeof(sink->password));
    if (sink->url.is_unix)
        snprintf(sink->endpoint, sizeof(sink->endpoint), "unix:%s",
                 sink->url.path);
    else
        snprintf(sink->endpoint, sizeof(sink->endpoint), "%s%s:%d/%d",
                 sink->url.tls ? "tls:" : "", sink->url.host, sink->url.port,
                 sink->url.db);
    snprintf(sink->ttl_arg, sizeof(sink->ttl_arg), "%" PRId64, conf->ttl_ms);
    snprintf(sink->input_ttl_arg, sizeof(sink->input_ttl_arg), "%" PRId64,
             conf->input_ttl_ms > 0 ? conf->input_ttl_ms : conf->ttl_ms);
    snprintf(sink->cap_arg, sizeof(sink->cap_arg), "%" PRId64,
             -(conf->entity_index_max + 1));
    snprintf(sink->alert_cap_arg, sizeof(sink->alert_cap_arg), "%" PRId64,
             -(conf->alert_index_max + 1));
    if (rs_redis_connect(sink, errstr, errstr_size) != RS_OK) goto fail;
    rs_info("sink", "redis %s: connected (ttl %" PRId64 " ms, prefix '%s')",
            sink->endpoint, conf->ttl_ms, conf->key_prefix);
    return sink;
fail:
    rs_sink_redis_destroy(sink);
    return NULL;
}

static void rs_redis_writer_stop(rs_sink_redis_t *sink);

void rs_sink_redis_destroy(rs_sink_redis_t *sink) {
    if (!sink) return;
    rs_redis_writer_stop(sink);
    rs_redis_drop(sink);
    rs_redis_tls_destroy(sink->tls);
    rs_free(sink->ring);
    pthread_cond_destroy(&sink->done_cv);
    pthread_cond_destroy(&sink->work_cv);
    pthread_mutex_destroy(&sink->lock);
    rs_enc_arena_free(&sink->enc);
    rs_free(sink->enc_ptr);
    rs_free(sink->enc_len);
    rs_free(sink->grp_next);
    rs_free(sink->grp_tab);
    rs_free(sink->wbuf);
    memset(sink->password, 0, sizeof(sink->password));
    memset(&sink->url, 0, sizeof(sink->url));
    rs_free(sink);
}

/* ------------------------------------------------------------------ write */

/* Key "<prefix>score:<event_id>" / "<prefix>entity:<id>:scores". */
static size_t rs_redis_key(char *buf, size_t size, const char *prefix,
                           const char *a, const char *b, const char *c) {
    const char *part[4] = {prefix, a, b, c};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = RS_MIN(strlen(part[i]), size - 1 - n);
        memcpy(buf + n, part[i], l);
        n += l;
    }
    buf[n] = '\0';
    return n;
}

/* Encoder over the ring: writes [pos, limit) (wrapping at cap) and keeps
 * counting past `limit`, so one pass tells both "fits" and "needs N". */
typedef struct rs_ring_w_s {
    unsigned char *ring; /* [cap] */
    uint64_t cap;
    uint64_t pos;        /* absolute; may run past limit */
    uint64_t limit;      /* head + cap                   */
} rs_ring_w_t;

/* The RESP commands of one batch (below, with the ring writer). */
static void rs_redis_build(rs_sink_redis_t *sink, rs_ring_w_t *w,
                           const rs_score_t *scores, int n,
                           const char *const *json, const size_t *json_lens,
                           const void *const *logs, const size_t *log_lens,
                           uint32_t *ncmds, uint32_t *ninputs);
static void rs_ring_w_linear(rs_ring_w_t *w, unsigned char *buf, size_t cap);
static uint64_t rs_ring_w_pos(const rs_ring_w_t *w);

/* JSON of scores[0..n) in the sink's arena: the entry points that take
 * rs_score_t records encode here, then share the _json path. */
static rs_err_t rs_redis_encode(rs_sink_redis_t *sink,
                                const rs_score_t *scores, int n) {
    int bad;
    if (n > sink->enc_cap) {
        sink->enc_ptr = rs_realloc(sink->enc_ptr, (size_t)n * sizeof(void *));
        sink->enc_len = rs_realloc(sink->enc_len, (size_t)n * sizeof(size_t));
        sink->enc_cap = n;
    }
    rs_err_t err = rs_score_encode_batch(RS_FORMAT_JSON, scores, n,
                                         &sink->enc, sink->enc_ptr,
                                         sink->enc_len, &bad);
    if (err != RS_OK)
        rs_error("sink", "redis: score of '%.64s' does not encode",
                 scores[bad].event_id);
    return err;
}

/* Read `ncmds` pipelined replies.  First error reply -> RS_ERR_REDIS (all
 * replies are still consumed); I/O failure -> RS_ERR_IO. */
static rs_err_t rs_redis_read_replies(rs_sink_redis_t *sink, int ncmds,
                                      char *errstr, size_t errstr_size) {
    rs_err_t err = RS_OK;
    for (int i = 0; i < ncmds; i++) {
        void *rv = NULL;
        if (redisGetReply(sink->ctx, &rv) != REDIS_OK || !rv)
            return rs_redis_io_error(sink, "write", errstr, errstr_size);
        redisReply *r = rv;
        if (r->type == REDIS_REPLY_ERROR) {
            RS_INC(sink->c.errors);
            if (err == RS_OK)
                err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                              "redis %s: %s", sink->endpoint, r->str);
        }
        freeReplyObject(r);
    }
    return err;
}

rs_err_t rs_sink_redis_write(rs_sink_redis_t *sink, const rs_score_t *scores,
                             int n, char *errstr, size_t errstr_size) {
    if (n <= 0) return RS_OK;
    if (rs_redis_encode(sink, scores, n) != RS_OK)
        return rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                       "redis: a score record does not encode");
    return rs_sink_redis_write_json(sink, scores, n,
                                    (const char *const *)sink->enc_ptr,
                                    sink->enc_len, errstr, errstr_size);
}

rs_err_t rs_sink_redis_write_json(rs_sink_redis_t *sink,
                                  const rs_score_t *scores, int n,
                                  const char *const *json,
                                  const size_t *json_lens, char *errstr,
                                  size_t errstr_size) {
    rs_ring_w_t wr, *w = &wr;
    uint32_t ncmds = 0, ninputs = 0;
    rs_err_t err;
    if (n <= 0) return RS_OK;
    if (!scores || !json || !json_lens)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "redis: no records");
    if ((err = rs_redis_connect(sink, errstr, errstr_size)) != RS_OK)
        return err;
    /* Measure, then build into the scratch buffer (grown once). */
    rs_ring_w_linear(w, NULL, 0);
    rs_redis_build(sink, w, scores, n, json, json_lens, NULL, NULL, &ncmds,
                   &ninputs);
    size_t need = (size_t)rs_ring_w_pos(w);
    if (need > sink->wcap) {
        sink->wbuf = rs_realloc(sink->wbuf, need);
        sink->wcap = need;
    }
    rs_ring_w_linear(w, sink->wbuf, need);
    ncmds = ninputs = 0;
    rs_redis_build(sink, w, scores, n, json, json_lens, NULL, NULL, &ncmds,
                   &ninputs);
    if (redisAppendFormattedCommand(sink->ctx, (const char *)sink->wbuf,
                                    need) != REDIS_OK)
        /* Only fails on OOM; the half-appended pipeline is unusable. */
        return rs_redis_io_error(sink, "append", errstr, errstr_size);
    err = rs_redis_read_replies(sink, (int)ncmds, errstr, errstr_size);
    if (err == RS_OK) {
        RS_INC(sink->c.writes);
        RS_ADD(sink->c.scores, (uint64_t)n);
    }
    return err;
}

/* ------------------------------------------------------------------- reads */

/* One read command with reconnect; the reply (non-error) goes to *out.
 * A connection that turns out dead (the server restarted since the last
 * call) is replaced and the read tried once more: reads are harmless to
 * repeat, and a reader (audit, HTTP API) should not fail once per restart. */
static rs_err_t rs_redis_query(rs_sink_redis_t *sink, int argc,
                               const char **argv, const char *what,
                               redisReply **out, char *errstr,
                               size_t errstr_size) {
    int fresh = !sink->ctx;
    rs_err_t err = rs_redis_connect(sink, errstr, errstr_size);
    *out = NULL;
    if (err != RS_OK) return err;
    redisReply *r = redisCommandArgv(sink->ctx, argc, argv, NULL);
    if (!r && !fresh) {
        rs_redis_io_error(sink, what, errstr, errstr_size);
        if ((err = rs_redis_connect(sink, errstr, errstr_size)) != RS_OK)
            return err;
        r = redisCommandArgv(sink->ctx, argc, argv, NULL);
    }
    if (!r) return rs_redis_io_error(sink, what, errstr, errstr_size);
    if (r->type == REDIS_REPLY_ERROR) {
        RS_INC(sink->c.errors);
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS, "redis %s: %s: %s",
                      sink->endpoint, what, r->str);
        freeReplyObject(r);
        return err;
    }
    *out = r;
    return RS_OK;
}

rs_err_t rs_sink_redis_get_score(rs_sink_redis_t *sink, const char *event_id,
                                 char *json, size_t size, char *errstr,
                                 size_t errstr_size) {
    char key[RS_ID_MAX + 48];
    redisReply *r;
    rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "score:", event_id,
                 "");
    rs_err_t err = rs_redis_query(sink, 2, (const char *[]){"GET", key}, "GET",
                                  &r, errstr, errstr_size);
    if (err != RS_OK) return err;
    if (r->type == REDIS_REPLY_NIL) {
        err = rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                      "redis: no score for event '%.64s'", event_id);
    } else if (r->type != REDIS_REPLY_STRING) {
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                      "redis: unexpected reply type %d for GET", r->type);
    } else if ((size_t)r->len >= size) {
        err = rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                      "redis: score JSON of %zu bytes does not fit in %zu",
                      (size_t)r->len, size);
    } else {
        memcpy(json, r->str, (size_t)r->len);
        json[r->len] = '\0';
    }
    freeReplyObject(r);
    return err;
}

rs_err_t rs_sink_redis_entity_scores(rs_sink_redis_t *sink,
                                     const char *entity_id, int64_t since_ms,
                                     char ids[][RS_ID_MAX], int max, int *n,
                                     char *errstr, size_t errstr_size) {
    char key[RS_ID_MAX + 56], since[24], lim[16];
    redisReply *r;
    *n = 0;
    if (max <= 0) return RS_OK;
    rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "entity:",
                 entity_id, ":scores");
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    snprintf(lim, sizeof(lim), "%d", max);
    const char *argv[] = {"ZRANGEBYSCORE", key, since, "+inf", "LIMIT", "0",
                          lim};
    rs_err_t err = rs_redis_query(sink, 7, argv, "ZRANGEBYSCORE", &r, errstr,
                                  errstr_size);
    if (err != RS_OK) return err;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                      "redis: unexpected reply type %d for ZRANGEBYSCORE",
                      r->type);
    } else {
        for (size_t i = 0; i < r->elements && *n < max; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_STRING || (size_t)e->len >= RS_ID_MAX)
                continue;
            memcpy(ids[*n], e->str, (size_t)e->len);
            ids[*n][e->len] = '\0';
            (*n)++;
        }
    }
    freeReplyObject(r);
    return err;
}

rs_err_t rs_sink_redis_set_model(rs_sink_redis_t *sink, const char *version,
                                 const char *json_meta, char *errstr,
                                 size_t errstr_size) {
    char vkey[RS_VERSION_MAX + 48], ckey[48];
    rs_err_t err = rs_redis_connect(sink, errstr, errstr_size);
    if (err != RS_OK) return err;
    rs_redis_key(vkey, sizeof(vkey), sink->conf.key_prefix, "model:", version,
                 "");
    rs_redis_key(ckey, sizeof(ckey), sink->conf.key_prefix, "model:current",
                 "", "");
    const char *set1[] = {"SET", vkey, json_meta ? json_meta : "{}"};
    const char *set2[] = {"SET", ckey, version};
    if (redisAppendCommandArgv(sink->ctx, 3, set1, NULL) != REDIS_OK ||
        redisAppendCommandArgv(sink->ctx, 3, set2, NULL) != REDIS_OK)
        return rs_redis_io_error(sink, "append", errstr, errstr_size);
    return rs_redis_read_replies(sink, 2, errstr, errstr_size);
}

rs_err_t rs_sink_redis_ping(rs_sink_redis_t *sink, char *errstr,
                            size_t errstr_size) {
    redisReply *r;
    rs_err_t err = rs_redis_query(sink, 1, (const char *[]){"PING"}, "PING",
                                  &r, errstr, errstr_size);
    if (r) freeReplyObject(r);
    return err;
}

rs_err_t rs_sink_redis_get_input(rs_sink_redis_t *sink, const char *event_id,
                                 void *buf, size_t cap, size_t *len,
                                 char *errstr, size_t errstr_size) {
    char key[RS_ID_MAX + 48];
    redisReply *r;
    *len = 0;
    rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "input:", event_id,
                 "");
    rs_err_t err = rs_redis_query(sink, 2, (const char *[]){"GET", key}, "GET",
                                  &r, errstr, errstr_size);
    if (err != RS_OK) return err;
    if (r->type == REDIS_REPLY_NIL) {
        err = rs_errf(errstr, errstr_size, RS_ERR_NOTFOUND,
                      "redis: no input logged for event '%.64s'", event_id);
    } else if (r->type != REDIS_REPLY_STRING) {
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                      "redis: unexpected reply type %d for GET", r->type);
    } else {
        *len = (size_t)r->len;
        if ((size_t)r->len > cap)
            err = rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                          "redis: input log of %zu bytes does not fit in %zu",
                          (size_t)r->len, cap);
        else if (r->len)
            memcpy(buf, r->str, (size_t)r->len);
    }
    freeReplyObject(r);
    return err;
}

/* ------------------------------------------- reads and writes for analysts
 *
 * The alert queue and the case view (scoring/http.c): the alert index and
 * the entity index newest first, many records in one MGET, and the
 * analysts' outcomes (<prefix>outcome:<event_id>).  All on the owner's
 * connection, with the reconnect-once rule of rs_redis_query. */

rs_err_t rs_sink_redis_index_newest(rs_sink_redis_t *sink,
                                    const char *entity_id, int64_t min_ms,
                                    int64_t max_ms, int offset,
                                    rs_redis_hit_t *hits, int max, int *n,
                                    char *errstr, size_t errstr_size) {
    char key[RS_ID_MAX + 56], lo[24], hi[24], off[16], lim[16];
    redisReply *r;
    *n = 0;
    if (max <= 0) return RS_OK;
    if (entity_id)
        rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "entity:",
                     entity_id, ":scores");
    else
        rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "alerts", "",
                     "");
    snprintf(lo, sizeof(lo), "%" PRId64, min_ms);
    snprintf(hi, sizeof(hi), "%" PRId64, max_ms);
    snprintf(off, sizeof(off), "%d", RS_MAX(offset, 0));
    snprintf(lim, sizeof(lim), "%d", max);
    const char *argv[] = {"ZREVRANGEBYSCORE", key, hi, lo, "WITHSCORES",
                          "LIMIT", off, lim};
    rs_err_t err = rs_redis_query(sink, 8, argv, "ZREVRANGEBYSCORE", &r,
                                  errstr, errstr_size);
    if (err != RS_OK) return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                      "redis: unexpected reply type %d for ZREVRANGEBYSCORE",
                      r->type);
    } else {
        for (size_t i = 0; i + 1 < r->elements && *n < max; i += 2) {
            redisReply *e = r->element[i], *t = r->element[i + 1];
            if (e->type != REDIS_REPLY_STRING || (size_t)e->len >= RS_ID_MAX)
                continue;
            rs_redis_hit_t *h = &hits[*n];
            memcpy(h->id, e->str, (size_t)e->len);
            h->id[e->len] = '\0';
            /* the score comes as a string (RESP2) */
            h->t_ms = t->type == REDIS_REPLY_STRING
                          ? (int64_t)strtod(t->str, NULL)
                          : (int64_t)t->integer;
            (*n)++;
        }
    }
    freeReplyObject(r);
    return err;
}

rs_err_t rs_sink_redis_mget(rs_sink_redis_t *sink, rs_redis_rec_t kind,
                            const char *const *ids, int n,
                            rs_redis_value_fn fn, void *opaque, char *errstr,
                            size_t errstr_size) {
    if (n <= 0) return RS_OK;
    const char **argv = rs_calloc((size_t)n + 1, sizeof(*argv));
    char (*keys)[RS_ID_MAX + 48] = rs_calloc((size_t)n, sizeof(*keys));
    redisReply *r = NULL;
    argv[0] = "MGET";
    for (int i = 0; i < n; i++) {
        rs_redis_key(keys[i], sizeof(keys[i]), sink->conf.key_prefix,
                     kind == RS_REDIS_OUTCOME ? "outcome:" : "score:", ids[i],
                     "");
        argv[i + 1] = keys[i];
    }
    rs_err_t err = rs_redis_query(sink, n + 1, argv, "MGET", &r, errstr,
                                  errstr_size);
    if (err == RS_OK) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n) {
            err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                          "redis: unexpected reply type %d for MGET",
                          r->type);
        } else {
            for (int i = 0; i < n; i++) {
                redisReply *e = r->element[i];
                if (e->type == REDIS_REPLY_STRING)
                    fn(opaque, i, e->str, (size_t)e->len);
                else
                    fn(opaque, i, NULL, 0);
            }
        }
        freeReplyObject(r);
    }
    rs_free(keys);
    rs_free(argv);
    return err;
}

rs_err_t rs_sink_redis_set_outcome(rs_sink_redis_t *sink,
                                   const char *event_id, const char *json,
                                   int nx, char *errstr,
                                   size_t errstr_size) {
    char key[RS_ID_MAX + 48];
    redisReply *r;
    rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "outcome:",
                 event_id, "");
    const char *argv[] = {"SET", key, json, "PX", sink->ttl_arg, "NX"};
    rs_err_t err = rs_redis_query(sink, nx ? 6 : 5, argv, "SET", &r, errstr,
                                  errstr_size);
    if (err != RS_OK) return err;
    if (r->type == REDIS_REPLY_NIL)
        err = rs_errf(errstr, errstr_size, RS_ERR_STATE,
                      "redis: event '%.64s' already has an outcome",
                      event_id);
    freeReplyObject(r);
    return err;
}

rs_err_t rs_sink_redis_del_outcome(rs_sink_redis_t *sink,
                                   const char *event_id, char *errstr,
                                   size_t errstr_size) {
    char key[RS_ID_MAX + 48];
    redisReply *r;
    rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "outcome:",
                 event_id, "");
    rs_err_t err = rs_redis_query(sink, 2, (const char *[]){"DEL", key},
                                  "DEL", &r, errstr, errstr_size);
    if (r) freeReplyObject(r);
    return err;
}

/* ------------------------------------------------------------ async: ring */

/* A writer over a plain buffer buf[cap] from 0 (buf NULL, cap 0: only
 * count the bytes). */
static void rs_ring_w_linear(rs_ring_w_t *w, unsigned char *buf, size_t cap) {
    *w = (rs_ring_w_t){.ring = buf, .cap = cap ? cap : 1, .pos = 0,
                       .limit = cap};
}

static uint64_t rs_ring_w_pos(const rs_ring_w_t *w) { return w->pos; }

static void rs_ring_copy_in(unsigned char *ring, uint64_t cap, uint64_t pos,
                            const void *p, size_t len) {
    size_t off = (size_t)(pos % cap), first = RS_MIN(len, (size_t)(cap - off));
    memcpy(ring + off, p, first);
    if (len > first) memcpy(ring, (const unsigned char *)p + first, len - first);
}

static void rs_ring_copy_out(const unsigned char *ring, uint64_t cap,
                             uint64_t pos, void *p, size_t len) {
    size_t off = (size_t)(pos % cap), first = RS_MIN(len, (size_t)(cap - off));
    memcpy(p, ring + off, first);
    if (len > first) memcpy((unsigned char *)p + first, ring, len - first);
}

static void rs_ring_put(rs_ring_w_t *w, const void *p, size_t len) {
    if (w->pos + len <= w->limit) rs_ring_copy_in(w->ring, w->cap, w->pos, p, len);
    w->pos += len;
}

/* "<kind><v>\r\n": a RESP array or bulk length. */
static void rs_resp_len(rs_ring_w_t *w, char kind, uint64_t v) {
    char b[24], *e = b + sizeof(b), *p = e;
    *--p = '\n';
    *--p = '\r';
    do *--p = (char)('0' + v % 10); while ((v /= 10));
    *--p = kind;
    rs_ring_put(w, p, (size_t)(e - p));
}

/* A bulk string. */
static void rs_resp_bulk(rs_ring_w_t *w, const void *p, size_t len) {
    rs_resp_len(w, '$', len);
    rs_ring_put(w, p, len);
    rs_ring_put(w, "\r\n", 2);
}

/* Link the scores of each entity: grp_next[i] = the next score of the
 * same entity (-1: none), and grp_next[grp_cap + i] = 1 for the first
 * score of an entity.  Owner thread; grows the scratch to n. */
static void rs_redis_group(rs_sink_redis_t *sink, const rs_score_t *scores,
                           int n) {
    if (n > sink->grp_cap) {
        uint32_t t = 16;
        while (t < 2u * (uint32_t)n) t *= 2;
        sink->grp_next =
            rs_realloc(sink->grp_next, 2 * (size_t)n * sizeof(int));
        sink->grp_tab = rs_realloc(sink->grp_tab, t * sizeof(int));
        sink->grp_cap = n;
        sink->grp_tabsz = t;
    }
    uint32_t mask = sink->grp_tabsz - 1;
    int *first = sink->grp_next + sink->grp_cap;
    memset(sink->grp_tab, 0, sink->grp_tabsz * sizeof(int));
    for (int i = 0; i < n; i++) {
        const char *e = scores[i].entity_id;
        uint32_t h = (uint32_t)rs_hash_str(e) & mask;
        sink->grp_next[i] = -1;
        first[i] = 0;
        for (;; h = (h + 1) & mask) {
            int t = sink->grp_tab[h];
            if (t == 0) {
                sink->grp_tab[h] = i + 1;
                first[i] = 1;
                break;
            }
            if (!strcmp(scores[t - 1].entity_id, e)) {
                sink->grp_next[t - 1] = i;
                sink->grp_tab[h] = i + 1;
                break;
            }
        }
    }
}

/* 1 for the decisions that go to the alerts topic (review, decline,
 * alert): the ones the alert index lists. */
static int rs_redis_alerted(const rs_score_t *sc) {
    return sc->decision == RS_DECISION_REVIEW ||
           sc->decision == RS_DECISION_DECLINE ||
           sc->decision == RS_DECISION_ALERT;
}

/* The alert index commands of a batch:
 *   ZADD <prefix>alerts t1 id1 t2 id2 ...  (the alerted scores of the batch)
 *   PEXPIRE <prefix>alerts ttl
 *   ZREMRANGEBYRANK <prefix>alerts 0 -(alert_index_max + 1)
 * once per batch (as for an entity index: the same members, expiry and
 * newest alert_index_max as one ZADD + PEXPIRE + trim per alert); nothing
 * when no score of the batch is alerted, the usual case.  Adds to
 * *ncmds. */
static void rs_redis_alert_cmds(const rs_sink_redis_t *sink, rs_ring_w_t *w,
                                const rs_score_t *scores, int n,
                                uint32_t *ncmds) {
    char key[64], tbuf[RS_FMT_I64_MAX];
    uint64_t m = 0;
    for (int i = 0; i < n; i++) m += (uint64_t)rs_redis_alerted(&scores[i]);
    if (m == 0) return;
    size_t kl = rs_redis_key(key, sizeof(key), sink->conf.key_prefix,
                             "alerts", "", "");
    rs_resp_len(w, '*', 2 + 2 * m);
    rs_resp_bulk(w, "ZADD", 4);
    rs_resp_bulk(w, key, kl);
    for (int i = 0; i < n; i++) {
        if (!rs_redis_alerted(&scores[i])) continue;
        rs_resp_bulk(w, tbuf,
                     (size_t)rs_fmt_i64(scores[i].event_time_ms, tbuf));
        rs_resp_bulk(w, scores[i].event_id, strlen(scores[i].event_id));
    }
    rs_resp_len(w, '*', 3);
    rs_resp_bulk(w, "PEXPIRE", 7);
    rs_resp_bulk(w, key, kl);
    rs_resp_bulk(w, sink->ttl_arg, strlen(sink->ttl_arg));
    rs_resp_len(w, '*', 4);
    rs_resp_bulk(w, "ZREMRANGEBYRANK", 15);
    rs_resp_bulk(w, key, kl);
    rs_resp_bulk(w, "0", 1);
    rs_resp_bulk(w, sink->alert_cap_arg, strlen(sink->alert_cap_arg));
    *ncmds += 3;
}

/* The commands of one batch (key schema in sink.h):
 *   per score        SET <prefix>score:<id> json PX ttl NX
 *                    [SET <prefix>input:<id> log PX input_ttl NX]
 *   per entity       ZADD <prefix>entity:<e>:scores t1 id1 t2 id2 ...
 *   of the batch     PEXPIRE <same key> ttl
 *                    ZREMRANGEBYRANK <same key> 0 -(entity_index_max + 1)
 *   per batch with   ZADD <prefix>alerts of its review/decline/alert
 *   an alert         scores, PEXPIRE, ZREMRANGEBYRANK (rs_redis_alert_cmds)
 * The records come first, so an id is in an index only once its record
 * is (the writer sends a batch in order, in one pipeline).  Trimming
 * once after all of an entity's members were added keeps the same newest
 * entity_index_max as trimming after each one; the expiry is set by the
 * batch's last write either way.  Adds to *ncmds / *ninputs. */
static void rs_redis_build(rs_sink_redis_t *sink, rs_ring_w_t *w,
                           const rs_score_t *scores, int n,
                           const char *const *json, const size_t *json_lens,
                           const void *const *logs, const size_t *log_lens,
                           uint32_t *ncmds, uint32_t *ninputs) {
    char key[RS_ID_MAX + 64], tbuf[RS_FMT_I64_MAX];
    const char *prefix = sink->conf.key_prefix;
    const size_t ttl_len = strlen(sink->ttl_arg),
                 ittl_len = strlen(sink->input_ttl_arg),
                 cap_len = strlen(sink->cap_arg);
    for (int i = 0; i < n; i++) {
        const rs_score_t *sc = &scores[i];
        /* NX: the first decision recorded for an event stays the record;
         * a replay after a crash (at-least-once input) cannot replace it
         * with a different one.  The index is idempotent as it is. */
        size_t kl = rs_redis_key(key, sizeof(key), prefix, "score:",
                                 sc->event_id, "");
        rs_resp_len(w, '*', 6);
        rs_resp_bulk(w, "SET", 3);
        rs_resp_bulk(w, key, kl);
        rs_resp_bulk(w, json[i], json_lens[i]);
        rs_resp_bulk(w, "PX", 2);
        rs_resp_bulk(w, sink->ttl_arg, ttl_len);
        rs_resp_bulk(w, "NX", 2);
        (*ncmds)++;
        if (logs && logs[i]) {
            /* NX too: the input of the decision on record. */
            kl = rs_redis_key(key, sizeof(key), prefix, "input:",
                              sc->event_id, "");
            rs_resp_len(w, '*', 6);
            rs_resp_bulk(w, "SET", 3);
            rs_resp_bulk(w, key, kl);
            rs_resp_bulk(w, logs[i], log_lens[i]);
            rs_resp_bulk(w, "PX", 2);
            rs_resp_bulk(w, sink->input_ttl_arg, ittl_len);
            rs_resp_bulk(w, "NX", 2);
            (*ncmds)++;
            (*ninputs)++;
        }
    }
    rs_redis_group(sink, scores, n);
    const int *first = sink->grp_next + sink->grp_cap;
    for (int i = 0; i < n; i++) {
        if (!first[i]) continue; /* its entity's group was written */
        int m = 0;
        for (int j = i; j >= 0; j = sink->grp_next[j]) m++;
        size_t kl = rs_redis_key(key, sizeof(key), prefix, "entity:",
                                 scores[i].entity_id, ":scores");
        rs_resp_len(w, '*', 2 + 2 * (uint64_t)m);
        rs_resp_bulk(w, "ZADD", 4);
        rs_resp_bulk(w, key, kl);
        for (int j = i; j >= 0; j = sink->grp_next[j]) {
            rs_resp_bulk(w, tbuf,
                         (size_t)rs_fmt_i64(scores[j].event_time_ms, tbuf));
            rs_resp_bulk(w, scores[j].event_id, strlen(scores[j].event_id));
        }
        rs_resp_len(w, '*', 3);
        rs_resp_bulk(w, "PEXPIRE", 7);
        rs_resp_bulk(w, key, kl);
        rs_resp_bulk(w, sink->ttl_arg, ttl_len);
        rs_resp_len(w, '*', 4);
        rs_resp_bulk(w, "ZREMRANGEBYRANK", 15);
        rs_resp_bulk(w, key, kl);
        rs_resp_bulk(w, "0", 1);
        rs_resp_bulk(w, sink->cap_arg, cap_len);
        *ncmds += 3;
    }
    rs_redis_alert_cmds(sink, w, scores, n, ncmds);
}

/* ---------------------------------------------------------- async: writer */

/* Writer-thread state (allocated and used by the writer thread only). */
typedef struct rs_redis_writer_s {
    redisContext *ctx;
    int outage;               /* in an outage (logged its start)          */
    int64_t outage_since_us;
    uint64_t outage_failures;
    int backoff_ms;           /* next backoff; 0 = none yet               */
    int64_t reject_log_us;    /* last rejected-command log                */
    uint64_t reject_unlogged; /* rejected since that log                  */
    struct {
        uint64_t end;         /* ring position after the entry            */
        rs_redis_entry_t h;
    } pipe[RS_REDIS_PIPE_ENTRIES];
} rs_redis_writer_t;

/* Set done = queued ? head_seq - 1 : last_seq if that is higher, and wake
 * the waiters.  Caller holds the lock. */
static void rs_redis_done_locked(rs_sink_redis_t *sink) {
    uint64_t d = sink->queued ? sink->head_seq - 1 : sink->last_seq;
    if (d > atomic_load_explicit(&sink->done, memory_order_relaxed)) {
        atomic_store_explicit(&sink->done, d, memory_order_release);
        pthread_cond_broadcast(&sink->done_cv);
    }
}

static struct timespec rs_redis_abstime(int64_t mono_us) {
    struct timespec ts = {.tv_sec = mono_us / 1000000,
                          .tv_nsec = (long)(mono_us % 1000000) * 1000};
    return ts;
}

/* A failed attempt: count it, log the start of an outage once, drop the
 * context.  The caller backs off. */
static void rs_redis_w_fail(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                            const char *why) {
    /* Messages from rs_redis_open / rs_redis_cmd_ok start with
     * "redis <endpoint>: ", which ours already says. */
    size_t el = strlen(sink->endpoint);
    if (!strncmp(why, "redis ", 6) && !strncmp(why + 6, sink->endpoint, el) &&
        !strncmp(why + 6 + el, ": ", 2))
        why += 6 + el + 2;
    if (w->ctx) redisFree(w->ctx);
    w->ctx = NULL;
    RS_INC(sink->c.write_errors);
    atomic_store_explicit(&sink->healthy, 0, memory_order_relaxed);
    w->backoff_ms = w->backoff_ms ? RS_MIN(w->backoff_ms * 2,
                                           RS_REDIS_BACKOFF_MAX_MS)
                                  : RS_REDIS_BACKOFF_MIN_MS;
    w->outage_failures++;
    if (w->outage) {
        rs_debug("sink", "redis %s: still down: %s", sink->endpoint, why);
        return;
    }
    w->outage = 1;
    w->outage_since_us = rs_clock_mono_us();
    w->outage_failures = 1;
    RS_INC(sink->c.outages);
    rs_warn("sink", "redis %s: outage: %s; buffering writes (%" PRIu64
            " batch(es), %" PRIu64 " bytes queued, buffer %" PRIu64
            " bytes), retrying every %d ms .. %d ms", sink->endpoint, why,
            RS_LOAD(sink->c.queued_batches), RS_LOAD(sink->c.buffer_bytes),
            sink->cap, RS_REDIS_BACKOFF_MIN_MS, RS_REDIS_BACKOFF_MAX_MS);
}

/* A successful attempt: end the outage (logged once). */
static void rs_redis_w_ok(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    w->backoff_ms = 0;
    atomic_store_explicit(&sink->healthy, 1, memory_order_relaxed);
    if (!w->outage) return;
    w->outage = 0;
    rs_info("sink", "redis %s: outage over after %.1f s (%" PRIu64
            " failed attempt(s)); writing %" PRIu64 " queued batch(es)",
            sink->endpoint,
            (double)(rs_clock_mono_us() - w->outage_since_us) / 1e6,
            w->outage_failures, RS_LOAD(sink->c.queued_batches));
}

static int rs_redis_w_connect(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    char errstr[512];
    if (w->ctx) return 0;
    if (rs_redis_open(sink, &w->ctx, errstr, sizeof(errstr)) == RS_OK) return 0;
    rs_redis_w_fail(sink, w, errstr);
    return -1;
}

/* Sleep the backoff; returns early only when the drain deadline passes. */
static void rs_redis_w_backoff(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    int64_t until = rs_clock_mono_us() + (int64_t)w->backoff_ms * 1000;
    pthread_mutex_lock(&sink->lock);
    for (;;) {
        int64_t now = rs_clock_mono_us(), end = until;
        if (sink->stop && sink->stop_deadline_us < end)
            end = sink->stop_deadline_us;
        if (now >= end) break;
        struct timespec ts = rs_redis_abstime(end);
        pthread_cond_timedwait(&sink->work_cv, &sink->lock, &ts);
    }
    pthread_mutex_unlock(&sink->lock);
}

/* Error replies that mean "not now" (the server cannot take writes at the
 * moment) rather than "never" for this command. */
static int rs_redis_reply_retriable(const char *msg) {
    static const char *const permanent[] = {"WRONGTYPE", "ERR ", "EXECABORT"};
    if (!strncmp(msg, "ERR max number of clients", 25)) return 1;
    for (size_t i = 0; i < RS_ARRAY_LEN(permanent); i++)
        if (!strncmp(msg, permanent[i], strlen(permanent[i]))) return 0;
    return 1;
}

static void rs_redis_w_rejected(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                                const rs_redis_entry_t *h, const char *msg) {
    int64_t now = rs_clock_mono_us();
    RS_INC(sink->c.rejected);
    if (w->reject_log_us &&
        now - w->reject_log_us < (int64_t)RS_REDIS_REJECT_LOG_MS * 1000) {
        w->reject_unlogged++;
        return;
    }
    if (w->reject_unlogged)
        rs_error("sink", "redis %s: command of batch %" PRIu64 " refused: "
                 "%s (not retried; %" PRIu64 " more refused since the last "
                 "report)", sink->endpoint, h->seq, msg, w->reject_unlogged);
    else
        rs_error("sink", "redis %s: command of batch %" PRIu64 " refused: "
                 "%s (not retried)", sink->endpoint, h->seq, msg);
    w->reject_log_us = now;
    w->reject_unlogged = 0;
}

/* Entry pipe[i] is written: it leaves the ring. */
static void rs_redis_w_complete(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                                int i) {
    const rs_redis_entry_t *h = &w->pipe[i].h;
    RS_ADD(sink->c.written, h->nscores);
    RS_ADD(sink->c.inputs, h->ninputs);
    pthread_mutex_lock(&sink->lock);
    sink->head = w->pipe[i].end;
    sink->queued--;
    if (sink->queued) {
        rs_redis_entry_t next;
        rs_ring_copy_out(sink->ring, sink->cap, sink->head, &next,
                         sizeof(next));
        sink->head_seq = next.seq;
    }
    atomic_store_explicit(&sink->c.buffer_bytes, sink->tail - sink->head,
                          memory_order_relaxed);
    atomic_store_explicit(&sink->c.queued_batches, sink->queued,
                          memory_order_relaxed);
    rs_redis_done_locked(sink);
    pthread_mutex_unlock(&sink->lock);
}

/* Write the entries in [head, tail): pipelined rounds of up to
 * RS_REDIS_PIPE_ENTRIES.  Returns 0 when all are written, -1 after a
 * failed attempt (the entries not written stay queued). */
static int rs_redis_w_flush(rs_sink_redis_t *sink, rs_redis_writer_t *w,
                            uint64_t head, uint64_t tail) {
    char why[512];
    while (head < tail) {
        if (rs_redis_w_connect(sink, w)) return -1;
        int k = 0;
        uint64_t pos = head, bytes = 0;
        while (pos < tail && k < RS_REDIS_PIPE_ENTRIES &&
               (k == 0 || bytes < RS_REDIS_PIPE_BYTES)) {
            rs_redis_entry_t *h = &w->pipe[k].h;
            rs_ring_copy_out(sink->ring, sink->cap, pos, h, sizeof(*h));
            uint64_t p = pos + sizeof(*h), off = p % sink->cap;
            size_t first = (size_t)RS_MIN(h->bytes, sink->cap - off);
            if (redisAppendFormattedCommand(w->ctx, (const char *)sink->ring +
                                            off, first) != REDIS_OK ||
                (h->bytes > first &&
                 redisAppendFormattedCommand(w->ctx, (const char *)sink->ring,
                                             (size_t)h->bytes - first) !=
                     REDIS_OK)) {
                rs_redis_w_fail(sink, w, "out of memory appending commands");
                return -1;
            }
            pos = p + h->bytes;
            w->pipe[k].end = pos;
            bytes += h->bytes;
            k++;
        }
        for (int i = 0; i < k; i++) {
            for (uint32_t c = 0; c < w->pipe[i].h.ncmds; c++) {
                void *rv = NULL;
                if (redisGetReply(w->ctx, &rv) != REDIS_OK || !rv) {
                    snprintf(why, sizeof(why), "write: %s",
                             w->ctx->errstr[0] ? w->ctx->errstr
                                               : "connection lost");
                    rs_redis_w_fail(sink, w, why);
                    return -1;
                }
                redisReply *r = rv;
                if (r->type == REDIS_REPLY_ERROR) {
                    if (rs_redis_reply_retriable(r->str)) {
                        /* Drop the connection (the rest of the replies
                         * with it) and write this entry again later. */
                        snprintf(why, sizeof(why), "error reply: %.400s",
                                 r->str);
                        freeReplyObject(r);
                        rs_redis_w_fail(sink, w, why);
                        return -1;
                    }
                    rs_redis_w_rejected(sink, w, &w->pipe[i].h, r->str);
                }
                freeReplyObject(r);
            }
            rs_redis_w_ok(sink, w);
            rs_redis_w_complete(sink, w, i);
        }
        head = w->pipe[k - 1].end;
    }
    return 0;
}

/* Nothing to write for RS_REDIS_IDLE_PING_MS: PING, so that healthy (and
 * the outage log) follow Redis while the stream is quiet. */
static int rs_redis_w_probe(rs_sink_redis_t *sink, rs_redis_writer_t *w) {
    char errstr[512];
    if (rs_redis_w_connect(sink, w)) return -1;
    if (rs_redis_cmd_ok(sink, w->ctx, 1, (const char *[]){"PING"}, "PING",
                        errstr, sizeof(errstr)) != RS_OK) {
        rs_redis_w_fail(sink, w, errstr);
        return -1;
    }
    rs_redis_w_ok(sink, w);
    return 0;
}

static void *rs_redis_writer_main(void *arg) {
    rs_sink_redis_t *sink = arg;
    rs_redis_writer_t *w = rs_calloc(1, sizeof(*w));
    for (;;) {
        uint64_t head, tail;
        int stop, idle = 0;
        int64_t deadline;
        pthread_mutex_lock(&sink->lock);
        while (sink->head == sink->tail && !sink->stop) {
            struct timespec ts = rs_redis_abstime(
                rs_clock_mono_us() + RS_REDIS_IDLE_PING_MS * 1000);
            if (pthread_cond_timedwait(&sink->work_cv, &sink->lock, &ts) ==
                    ETIMEDOUT &&
                sink->head == sink->tail) {
                idle = 1;
                break;
            }
        }
        head = sink->head;
        tail = sink->tail;
        stop = sink->stop;
        deadline = sink->stop_deadline_us;
        pthread_mutex_unlock(&sink->lock);

        if (stop && (head == tail || rs_clock_mono_us() >= deadline)) break;
        if (idle) {
            if (rs_redis_w_probe(sink, w)) rs_redis_w_backoff(sink, w);
            continue;
        }
        if (rs_redis_w_flush(sink, w, head, tail)) rs_redis_w_backoff(sink, w);
    }
    pthread_mutex_lock(&sink->lock);
    if (sink->queued)
        rs_error("sink", "redis %s: stopping with %" PRIu64 " batch(es) (%"
                 PRIu64 " bytes, batches %" PRIu64 "..%" PRIu64 ") not "
                 "written: their input offsets were not stored",
                 sink->endpoint, sink->queued, sink->tail - sink->head,
                 sink->head_seq, sink->last_seq);
    pthread_mutex_unlock(&sink->lock);
    if (w->ctx) redisFree(w->ctx);
    rs_free(w);
    return NULL;
}

static rs_err_t rs_redis_writer_start(rs_sink_redis_t *sink) {
    /* lazily zeroed and prefaulted in the background (rs_zero_lazy): a
     * plain malloc'd ring faulted a fresh page every few KB written until
     * it had wrapped once.  Its size was checked against memory at start
     * (rs_aligned_calloc aborts only where malloc would have failed). */
    sink->ring = rs_aligned_calloc(1, (size_t)sink->cap);
    int rc = pthread_create(&sink->thread, NULL, rs_redis_writer_main, sink);
    if (rc) {
        rs_error("sink", "redis: cannot start the writer thread: %s",
                 strerror(rc));
        rs_free(sink->ring);
        sink->ring = NULL;
        return RS_ERR_NOMEM;
    }
    sink->started = 1;
    rs_info("sink", "redis %s: writer thread started (buffer %" PRIu64
            " bytes)", sink->endpoint, sink->cap);
    return RS_OK;
}

rs_err_t rs_sink_redis_start(rs_sink_redis_t *sink) {
    return sink->started ? RS_OK : rs_redis_writer_start(sink);
}

static void rs_redis_writer_stop(rs_sink_redis_t *sink) {
    if (!sink->started) return;
    pthread_mutex_lock(&sink->lock);
    sink->stop = 1;
    sink->stop_deadline_us = rs_clock_mono_us() + RS_REDIS_DRAIN_MS * 1000LL;
    pthread_cond_broadcast(&sink->work_cv);
    pthread_mutex_unlock(&sink->lock);
    pthread_join(sink->thread, NULL);
    sink->started = 0;
}

/* ---------------------------------------------------------- async: owner */

rs_err_t rs_sink_redis_enqueue(rs_sink_redis_t *sink, const rs_score_t *scores,
                               int n, const void *const *logs,
                               const size_t *log_lens, uint64_t seq) {
    if (n > 0 && scores && rs_redis_encode(sink, scores, n) != RS_OK) {
        rs_error("sink", "redis: batch %" PRIu64 " not queued", seq);
        return RS_ERR_TOOBIG;
    }
    return rs_sink_redis_enqueue_json(sink, scores, n,
                                      (const char *const *)sink->enc_ptr,
                                      sink->enc_len, logs, log_lens, seq);
}

rs_err_t rs_sink_redis_enqueue_json(rs_sink_redis_t *sink,
                                    const rs_score_t *scores, int n,
                                    const char *const *json,
                                    const size_t *json_lens,
                                    const void *const *logs,
                                    const size_t *log_lens, uint64_t seq) {
    if (seq == 0 || n < 0 || (n > 0 && (!scores || !json || !json_lens)) ||
        (logs && !log_lens))
        return RS_ERR_INVALID;
    if (seq < sink->owner_seq) return RS_ERR_STATE;
    if (n == 0) {
        sink->owner_seq = seq;
        pthread_mutex_lock(&sink->lock);
        sink->last_seq = seq;
        rs_redis_done_locked(sink);
        pthread_mutex_unlock(&sink->lock);
        return RS_OK;
    }
    if (!sink->started) {
        rs_err_t err = rs_redis_writer_start(sink);
        if (err != RS_OK) return err;
    }

    /* head only grows: a stale value just means less room.  An empty ring
     * starts its next batch at its first byte again (head = tail moved to
     * the next multiple of cap; the writer holds no position then: it has
     * completed everything up to tail), so while Redis keeps up the batches
     * reuse the same warm pages instead of walking all of
     * redis.buffer_bytes (a first touch of each of its pages, ~0.3 page
     * faults per event in the e2e bench's first 100 000 events, and no
     * cache reuse). */
    pthread_mutex_lock(&sink->lock);
    if (sink->head == sink->tail && sink->tail % sink->cap)
        sink->head = sink->tail = (sink->tail / sink->cap + 1) * sink->cap;
    uint64_t head = sink->head, start = sink->tail;
    pthread_mutex_unlock(&sink->lock);
    rs_ring_w_t w = {.ring = sink->ring, .cap = sink->cap, .pos = start,
                     .limit = head + sink->cap};
    rs_redis_entry_t h = {.seq = seq, .nscores = (uint32_t)n};
    rs_ring_put(&w, &h, sizeof(h)); /* placeholder, filled in below */
    rs_redis_build(sink, &w, scores, n, json, json_lens, logs, log_lens,
                   &h.ncmds, &h.ninputs);
    uint64_t need = w.pos - start;
    if (need > sink->cap) {
        rs_error("sink", "redis: batch %" PRIu64 " of %d score(s) needs %"
                 PRIu64 " bytes, more than redis.buffer_bytes (%" PRIu64
                 "): not queued", seq, n, need, sink->cap);
        return RS_ERR_TOOBIG;
    }
    if (w.pos > w.limit) {
        RS_INC(sink->c.buffer_full);
        return RS_ERR_AGAIN;
    }
    h.bytes = need - sizeof(h);
    rs_ring_copy_in(sink->ring, sink->cap, start, &h, sizeof(h));

    sink->owner_seq = seq;
    pthread_mutex_lock(&sink->lock);
    sink->tail = w.pos;
    if (sink->queued++ == 0) sink->head_seq = seq;
    sink->last_seq = seq;
    uint64_t used = sink->tail - sink->head;
    atomic_store_explicit(&sink->c.buffer_bytes, used, memory_order_relaxed);
    atomic_store_explicit(&sink->c.queued_batches, sink->queued,
                          memory_order_relaxed);
    if (used > RS_LOAD(sink->c.buffer_peak))
        atomic_store_explicit(&sink->c.buffer_peak, used,
                              memory_order_relaxed);
    rs_redis_done_locked(sink);
    pthread_cond_signal(&sink->work_cv);
    pthread_mutex_unlock(&sink->lock);
    return RS_OK;
}

uint64_t rs_sink_redis_done(const rs_sink_redis_t *sink) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    return atomic_load_explicit(&s->done, memory_order_acquire);
}

rs_err_t rs_sink_redis_wait(rs_sink_redis_t *sink, uint64_t seq,
                            int timeout_ms) {
    if (rs_sink_redis_done(sink) >= seq) return RS_OK;
    if (timeout_ms == 0) return RS_ERR_TIMEOUT;
    int64_t deadline = rs_clock_mono_us() + (int64_t)timeout_ms * 1000;
    struct timespec ts = rs_redis_abstime(deadline);
    pthread_mutex_lock(&sink->lock);
    while (rs_sink_redis_done(sink) < seq) {
        if (timeout_ms < 0)
            pthread_cond_wait(&sink->done_cv, &sink->lock);
        else if (pthread_cond_timedwait(&sink->done_cv, &sink->lock, &ts) ==
                 ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&sink->lock);
    return rs_sink_redis_done(sink) >= seq ? RS_OK : RS_ERR_TIMEOUT;
}

int rs_sink_redis_healthy(const rs_sink_redis_t *sink) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    return atomic_load_explicit(&s->healthy, memory_order_relaxed);
}

void rs_sink_redis_stats(const rs_sink_redis_t *sink,
                         rs_sink_redis_stats_t *st) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    memset(st, 0, sizeof(*st));
    st->writes = RS_LOAD(s->c.writes);
    st->scores = RS_LOAD(s->c.scores);
    st->io_errors = RS_LOAD(s->c.io_errors);
    st->errors = RS_LOAD(s->c.errors);
    st->reconnects = RS_LOAD(s->c.reconnects);
    st->buffer_bytes = RS_LOAD(s->c.buffer_bytes);
    st->buffer_max = s->cap;
    st->buffer_peak = RS_LOAD(s->c.buffer_peak);
    st->queued_batches = RS_LOAD(s->c.queued_batches);
    st->buffer_full = RS_LOAD(s->c.buffer_full);
    st->written = RS_LOAD(s->c.written);
    st->inputs = RS_LOAD(s->c.inputs);
    st->write_errors = RS_LOAD(s->c.write_errors);
    st->rejected = RS_LOAD(s->c.rejected);
    st->outages = RS_LOAD(s->c.outages);
    st->done_seq = rs_sink_redis_done(sink);
    st->healthy = rs_sink_redis_healthy(sink);
}
