/* sink_redis.c -- score records to Redis (key schema in sink.h).
 *
 * Files (along the data flow; private state in sink_redis_int.h): this one
 * -- configuration, URL, connections, the owner's synchronous write and the
 * reads; sink_redis_cmds.c -- the RESP commands of a batch (no I/O);
 * sink_redis_writer.c -- the async path: enqueue into the ring and the
 * writer thread; sink_redis_rec.c -- the compact score record
 * (redis.record_format) and the stored value -> JSON step of the reads.
 *
 * Score records: with redis.record_format compact (the default) the
 * stored record is the compact one instead of the JSON: ~40 % of the bytes
 * for Redis to read, store and free.  The service hands it in ready
 * (rs_sink_redis_enqueue_recs: its workers encode it right after the JSON,
 * while the record is in their cache); otherwise, and for records given
 * without one, the command builder encodes it (rs_redis_rec_encode, into
 * the owner's scratch rec_buf, then copied into the RESP).  Every
 * read (get_score, mget of scores) hands out the JSON the scores topic got
 * (rs_redis_rec_json), so callers see no difference, and JSON values
 * (earlier versions, record_format json, records the compact form refuses)
 * pass through as they are.
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
 * batch fits, so RS_ERR_AGAIN leaves nothing behind.  The writer sends
 * the bytes of up to RS_REDIS_PIPE_ENTRIES entries (or RS_REDIS_PIPE_BYTES)
 * straight from the ring with writev (no copy into hiredis's output
 * buffer), reads the replies with hiredis, and
 * advances `head` past each entry whose replies all came back: an entry
 * leaves the ring only once written.  On a connection loss the rest is
 * sent again after a reconnect -- idempotent, since records are SET NX and
 * the index a ZADD of the same member.
 *
 * Flush cadence (redis.flush_delay, default 1 ms).  A slow stream queues
 * small batches one at a time, and each cost a round trip: a wake-up of
 * the writer (the owner's futex), a writev, a wake-up of redis-server and
 * one for the replies.  The writer holds the oldest queued entry until it
 * is flush_delay old, so that the batches queued meanwhile share the round
 * trip; it stops holding at once when RS_REDIS_HOLD_BYTES (16 KiB) are
 * queued (the owner wakes it), when someone waits for an entry
 * (rs_sink_redis_wait: offsets of a transaction, a checkpoint, the drain)
 * or when the sink stops.  The owner signals the writer only when it
 * waits for work or holds past that limit (sink->wstate): a busy writer
 * finds new entries when it looks again.  Measured at 2000 ev/s paced
 * (s12 i12lat): the writer's and redis-server's context switches per event
 * 0.56-0.62 and 0.38-0.60 without it, 0.34-0.37 and 0.27 with 1 ms; a
 * record becomes visible ~0.8 ms later at the median.
 *
 * Invariants (under `lock`): head <= tail <= head + cap; `queued` entries
 * lie in [head, tail); when head == tail the owner may move both to the
 * next multiple of cap (the next batch at the ring's first byte); head_seq is the seq of the entry at head when
 * queued > 0; done = queued ? head_seq - 1 : last_seq, kept monotonic.
 * Ring bytes in [head, tail) are only read, by the writer; bytes in
 * [tail, head + cap) only written, by the owner (outside the lock: the
 * mutex that publishes `tail` orders them).
 *
 * Entity indexes (async path).  With many entities a batch rarely holds
 * one twice, so a PEXPIRE and a trim per entity and batch were nearly two
 * commands per event.  The owner keeps, per entity index it writes, when
 * it last built a PEXPIRE and how many members it added since its last
 * trim (rs_redis_ix_t, a set-associative table of 64 Ki slots allocated
 * once; rs_redis_plan / rs_redis_commit), and builds
 *   - a trim only when the index may hold more than entity_index_max +
 *     slack members (slack = entity_index_max / 8 + 16 adds since the last
 *     trim).  Reads (entity_scores, index_newest) see only the newest
 *     entity_index_max (rs_redis_index_window: ZCARD, and above that the
 *     newest entity_index_max filtered here), so they return exactly what a
 *     trim after every add would have left;
 *   - a PEXPIRE only when the last one is period = ttl / 16 old, and then
 *     of ttl + 2 period: an index expires between ttl and ttl + ttl / 8
 *     after its newest score.  That holds while a batch is written within
 *     period / 2 of its build; an entry that waited longer in the ring, or
 *     that is written on another connection than the one the owner built
 *     it for (wgen: the server may have lost its data, and a ZADD would
 *     recreate an index without an expiry), also sends its expiry tail: the
 *     PEXPIREs the plan skipped, built at the end of every entry
 *     (rs_redis_entry_t tail_cmds / tail_bytes).  The owner resets the
 *     table when it sees a new generation.
 * A miss (an entity new to this instance: start, restart, a partition
 * moved here, evicted from the table) gets the full upkeep, so the table
 * only saves commands: lost, it costs them again.  An entry is committed
 * to the table only once its batch is in the ring (RS_ERR_AGAIN commits
 * nothing).  The synchronous path (tools, tests) always does the full
 * upkeep with PEXPIRE ttl and resets the table.  What is left: a server
 * that loses an index without the writer reconnecting (FLUSHALL, eviction)
 * gets it back from the next ZADD without an expiry until the next refresh
 * (within period of that entity's next scores); two instances writing one
 * entity (a partition moving back and forth) may each count only their own
 * adds, so the index may hold up to entity_index_max + 2 slack.
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
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/fmt.h"
#include "scoring/sink_redis_int.h"

/* ----------------------------------------------------------- configuration */

static const rs_conf_field_t rs_redis_fields[] = {
    {"url", RS_CONF_STRING, "", offsetof(rs_redis_conf_t, url),
     sizeof(((rs_redis_conf_t *)0)->url),
     "redis://[[user]:pass@]host[:port][/db], rediss://... (TLS) or "
     "unix:///path[?db=N]; empty = none configured", NULL, 0, 0},
    {"ttl", RS_CONF_DURATION, "7d", offsetof(rs_redis_conf_t, ttl_ms), 0,
     "lifetime of score keys; an entity index lives ttl to ttl + ttl/8 "
     "after its newest score", NULL, 1000,
     366.0 * 86400 * 1000},
    {"key_prefix", RS_CONF_STRING, "rs:", offsetof(rs_redis_conf_t, key_prefix),
     sizeof(((rs_redis_conf_t *)0)->key_prefix), "prefix of every key", NULL,
     0, 0},
    {"entity_index_max", RS_CONF_INT, "1000",
     offsetof(rs_redis_conf_t, entity_index_max), 0,
     "newest scores read from each entity index (the service trims it "
     "when it may hold entity_index_max/8 + 16 more)", NULL, 1, 1000000},
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
    {"record_format", RS_CONF_ENUM, "compact",
     offsetof(rs_redis_conf_t, record_format), 0,
     "score records as compact (every field of the JSON, binary: ~40 % of "
     "its bytes, less Redis CPU and memory) or json (the bytes the scores "
     "topic got, readable with redis-cli GET); reads (audit, HTTP API) "
     "return the same JSON from either, and take both", "compact|json", 0,
     0},
    {"input_ttl", RS_CONF_DURATION, "0",
     offsetof(rs_redis_conf_t, input_ttl_ms), 0,
     "lifetime of input logs (rs:input:<event_id>); 0 = same as ttl", NULL,
     0, 366.0 * 86400 * 1000},
    {"flush_delay", RS_CONF_DURATION, "1ms",
     offsetof(rs_redis_conf_t, flush_delay_ms), 0,
     "the writer thread holds a queued batch up to this long (or until 16 "
     "KiB are queued), so that a slow stream's batches go to Redis together "
     "(fewer round trips and wake-ups of the writer and of Redis); a record "
     "becomes visible up to this much later; 0 = each batch at once", NULL,
     0, 10000},
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
rs_err_t rs_redis_cmd_ok(const rs_sink_redis_t *sink,
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
rs_err_t rs_redis_open(const rs_sink_redis_t *sink,
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
    atomic_init(&sink->wgen, 0);
    sink->cap = (uint64_t)conf->buffer_bytes;
    sink->rec_buf = rs_malloc(RS_REDIS_REC_MAX);
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
    sink->ix_period_ms = conf->ttl_ms / 16;
    sink->ix_slack = conf->entity_index_max / 8 + 16;
    snprintf(sink->ix_ttl_arg, sizeof(sink->ix_ttl_arg), "%" PRId64,
             conf->ttl_ms + 2 * sink->ix_period_ms);
    sink->ix_epoch = 1;
    if (rs_redis_connect(sink, errstr, errstr_size) != RS_OK) goto fail;
    rs_info("sink", "redis %s: connected (ttl %" PRId64 " ms, prefix '%s')",
            sink->endpoint, conf->ttl_ms, conf->key_prefix);
    return sink;
fail:
    rs_sink_redis_destroy(sink);
    return NULL;
}


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
    rs_free(sink->grp_plan);
    rs_free(sink->ix);
    rs_free(sink->wbuf);
    rs_free(sink->rec_buf);
    rs_free(sink->rd_sc);
    rs_free(sink->rd_json);
    memset(sink->password, 0, sizeof(sink->password));
    memset(&sink->url, 0, sizeof(sink->url));
    rs_free(sink);
}

/* ------------------------------------------------------------------ write */

/* JSON of scores[0..n) in the sink's arena: the entry points that take
 * rs_score_t records encode here, then share the _json path. */
rs_err_t rs_redis_encode(rs_sink_redis_t *sink,
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
    uint32_t ncmds = 0, ninputs = 0, tcmds = 0;
    uint64_t tbytes = 0;
    rs_err_t err;
    if (n <= 0) return RS_OK;
    if (!scores || !json || !json_lens)
        return rs_errf(errstr, errstr_size, RS_ERR_INVALID,
                       "redis: no records");
    if ((err = rs_redis_connect(sink, errstr, errstr_size)) != RS_OK)
        return err;
    /* Measure, then build into the scratch buffer (grown once). */
    rs_redis_plan(sink, scores, n, 0, 0); /* full upkeep, no tail */
    rs_ring_w_linear(w, NULL, 0);
    rs_redis_build(sink, w, scores, n, json, json_lens, NULL, NULL, NULL,
                   NULL, &ncmds, &ninputs, &tcmds, &tbytes);
    size_t need = (size_t)rs_ring_w_pos(w);
    if (need > sink->wcap) {
        sink->wbuf = rs_realloc(sink->wbuf, need);
        sink->wcap = need;
    }
    rs_ring_w_linear(w, sink->wbuf, need);
    ncmds = ninputs = tcmds = 0;
    rs_redis_build(sink, w, scores, n, json, json_lens, NULL, NULL, NULL,
                   NULL, &ncmds, &ninputs, &tcmds, &tbytes);
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
    } else {
        size_t jl;
        if (!sink->rd_sc) sink->rd_sc = rs_malloc(sizeof(*sink->rd_sc));
        err = rs_redis_rec_json(r->str, (size_t)r->len, sink->rd_sc, json,
                                size, &jl, errstr, errstr_size);
    }
    freeReplyObject(r);
    return err;
}

/* An entity index holds up to entity_index_max + slack members between
 * trims (the async path trims per slack adds, "Entity indexes" above);
 * reads see only the newest entity_index_max, the members a trim after
 * every add would have kept.  *out = NULL when the index holds no more
 * than that (the caller's own query is exact), else the reply of
 * ZREVRANGE key 0 entity_index_max-1 WITHSCORES (newest first, member and
 * score pairs) for the caller to filter. */
static rs_err_t rs_redis_index_window(rs_sink_redis_t *sink, const char *key,
                                      redisReply **out, char *errstr,
                                      size_t errstr_size) {
    char last[24];
    redisReply *r;
    *out = NULL;
    rs_err_t err = rs_redis_query(sink, 2, (const char *[]){"ZCARD", key},
                                  "ZCARD", &r, errstr, errstr_size);
    if (err != RS_OK) return err;
    long long card = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    if (card <= sink->conf.entity_index_max) return RS_OK;
    snprintf(last, sizeof(last), "%" PRId64, sink->conf.entity_index_max - 1);
    const char *argv[] = {"ZREVRANGE", key, "0", last, "WITHSCORES"};
    err = rs_redis_query(sink, 5, argv, "ZREVRANGE", &r, errstr, errstr_size);
    if (err != RS_OK) return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS,
                      "redis: unexpected reply type %d for ZREVRANGE",
                      r->type);
        freeReplyObject(r);
        return err;
    }
    *out = r;
    return RS_OK;
}

/* Member i (newest first) of a window reply: its id (NULL: not one of
 * ours) and its score. */
static const redisReply *rs_redis_window_at(const redisReply *r, size_t i,
                                            double *t) {
    const redisReply *e = r->element[2 * i], *s = r->element[2 * i + 1];
    *t = s->type == REDIS_REPLY_STRING ? strtod(s->str, NULL)
                                       : (double)s->integer;
    return e->type == REDIS_REPLY_STRING && (size_t)e->len < RS_ID_MAX ? e
                                                                       : NULL;
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
    rs_err_t err = rs_redis_index_window(sink, key, &r, errstr, errstr_size);
    if (err != RS_OK) return err;
    if (r) { /* oldest first: the window from its end */
        int taken = 0; /* as LIMIT 0 max: ids not ours count too */
        for (size_t i = r->elements / 2; i-- > 0 && taken < max;) {
            double t;
            const redisReply *e = rs_redis_window_at(r, i, &t);
            if (t < (double)since_ms) continue;
            taken++;
            if (!e) continue;
            memcpy(ids[*n], e->str, (size_t)e->len);
            ids[*n][e->len] = '\0';
            (*n)++;
        }
        freeReplyObject(r);
        return RS_OK;
    }
    snprintf(since, sizeof(since), "%" PRId64, since_ms);
    snprintf(lim, sizeof(lim), "%d", max);
    const char *argv[] = {"ZRANGEBYSCORE", key, since, "+inf", "LIMIT", "0",
                          lim};
    err = rs_redis_query(sink, 7, argv, "ZRANGEBYSCORE", &r, errstr,
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
    if (entity_id) {
        rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "entity:",
                     entity_id, ":scores");
        rs_err_t err = rs_redis_index_window(sink, key, &r, errstr,
                                             errstr_size);
        if (err != RS_OK) return err;
        if (r) {
            int skip = RS_MAX(offset, 0), taken = 0; /* as LIMIT */
            for (size_t i = 0; i < r->elements / 2 && taken < max; i++) {
                double t;
                const redisReply *e = rs_redis_window_at(r, i, &t);
                if (t < (double)min_ms || t > (double)max_ms) continue;
                if (skip > 0) {
                    skip--;
                    continue;
                }
                taken++;
                if (!e) continue;
                rs_redis_hit_t *h = &hits[*n];
                memcpy(h->id, e->str, (size_t)e->len);
                h->id[e->len] = '\0';
                h->t_ms = (int64_t)t;
                (*n)++;
            }
            freeReplyObject(r);
            return RS_OK;
        }
    } else {
        rs_redis_key(key, sizeof(key), sink->conf.key_prefix, "alerts", "",
                     "");
    }
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
                if (e->type != REDIS_REPLY_STRING) {
                    fn(opaque, i, NULL, 0);
                } else if (kind == RS_REDIS_SCORE && e->len > 0 &&
                           (unsigned char)e->str[0] == RS_REDIS_REC_MAGIC) {
                    /* compact: as the JSON the scores topic got */
                    char es[256];
                    size_t jl;
                    if (!sink->rd_sc)
                        sink->rd_sc = rs_malloc(sizeof(*sink->rd_sc));
                    if (!sink->rd_json) sink->rd_json = rs_malloc(RS_ENCODE_MAX);
                    if (rs_redis_rec_json(e->str, (size_t)e->len, sink->rd_sc,
                                          sink->rd_json, RS_ENCODE_MAX, &jl,
                                          es, sizeof(es)) == RS_OK) {
                        fn(opaque, i, sink->rd_json, jl);
                    } else {
                        rs_warn("sink", "redis: record of '%.64s': %s",
                                ids[i], es);
                        fn(opaque, i, NULL, 0);
                    }
                } else {
                    fn(opaque, i, e->str, (size_t)e->len);
                }
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
