/* sink_redis.c -- score records to Redis (key schema in sink.h).
 *
 * One blocking hiredis context, owned by the service thread.  A batch is
 * appended command by command (redisAppendCommandArgv formats straight
 * into hiredis's output buffer, so our argv vectors are fixed-size locals
 * and the JSON buffer is allocated once) and then all replies are read:
 * one round trip per batch.
 *
 * Failure model: any I/O error or timeout drops the context (RS_ERR_IO);
 * the next call reconnects.  Commands of the failed batch may or may not
 * have been applied; the caller retries the whole batch and the writes are
 * idempotent.  Error replies (RS_ERR_REDIS) are read to the end so the
 * connection stays in sync.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "scoring/sink.h"

struct rs_sink_redis_s {
    rs_redis_conf_t conf;
    rs_redis_url_t url;
    char password[128];    /* AUTH password (env or URL); never logged */
    char endpoint[300];    /* "host:port/db" or "unix:path" for messages */
    char ttl_arg[24];      /* conf.ttl_ms as text                        */
    char cap_arg[24];      /* -(entity_index_max + 1) as text            */
    redisContext *ctx;     /* NULL: disconnected                         */
    int ever_connected;
    char *json;            /* [RS_ENCODE_MAX] score JSON                 */
    struct {
        _Atomic uint64_t writes, scores, io_errors, errors, reconnects;
    } c;
};

#define RS_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define RS_ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)
#define RS_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* ----------------------------------------------------------- configuration */

static const rs_conf_field_t rs_redis_fields[] = {
    {"url", RS_CONF_STRING, "", offsetof(rs_redis_conf_t, url),
     sizeof(((rs_redis_conf_t *)0)->url),
     "redis://[[user]:pass@]host[:port][/db] or unix:///path[?db=N]; empty = "
     "none configured", NULL, 0, 0},
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
    static const char redis_scheme[] = "redis://", unix_scheme[] = "unix://";
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
    if (strncmp(url, redis_scheme, sizeof(redis_scheme) - 1)) {
        const char *colon = strstr(url, "://");
        return rs_errf(errstr, errstr_size, RS_ERR_CONFIG,
                       "redis url: unsupported scheme '%.*s' (use redis:// "
                       "or unix://)", colon ? (int)(colon - url) : 16, url);
    }

    const char *p = url + sizeof(redis_scheme) - 1;
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
    return RS_OK;
}

/* ------------------------------------------------------------- connection */

static void rs_redis_drop(rs_sink_redis_t *sink) {
    if (sink->ctx) redisFree(sink->ctx);
    sink->ctx = NULL;
}

/* An I/O failure of the context: drop it, RS_ERR_IO. */
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

/* Run one command and expect a non-error reply (freed here). */
static rs_err_t rs_redis_simple(rs_sink_redis_t *sink, int argc,
                                const char **argv, const char *what,
                                char *errstr, size_t errstr_size) {
    redisReply *r = redisCommandArgv(sink->ctx, argc, argv, NULL);
    if (!r) return rs_redis_io_error(sink, what, errstr, errstr_size);
    rs_err_t err = RS_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        err = rs_errf(errstr, errstr_size, RS_ERR_REDIS, "redis %s: %s: %s",
                      sink->endpoint, what, r->str);
        RS_INC(sink->c.errors);
    }
    freeReplyObject(r);
    return err;
}

static rs_err_t rs_redis_connect(rs_sink_redis_t *sink, char *errstr,
                                 size_t errstr_size) {
    struct timeval tv = {.tv_sec = sink->conf.timeout_ms / 1000,
                         .tv_usec = (sink->conf.timeout_ms % 1000) * 1000};
    rs_err_t err;
    if (sink->ctx) return RS_OK;
    sink->ctx = sink->url.is_unix
                    ? redisConnectUnixWithTimeout(sink->url.path, tv)
                    : redisConnectWithTimeout(sink->url.host, sink->url.port,
                                              tv);
    if (!sink->ctx || sink->ctx->err)
        return rs_redis_io_error(sink, "connect", errstr, errstr_size);
    if (redisSetTimeout(sink->ctx, tv) != REDIS_OK)
        return rs_redis_io_error(sink, "set timeout", errstr, errstr_size);
    if (sink->password[0]) {
        const char *argv[3] = {"AUTH", sink->url.user, sink->password};
        err = sink->url.user[0]
                  ? rs_redis_simple(sink, 3, argv, "AUTH", errstr, errstr_size)
                  : rs_redis_simple(sink, 2, (const char *[]){"AUTH",
                                                              sink->password},
                                    "AUTH", errstr, errstr_size);
        if (err != RS_OK) goto fail;
    }
    if (sink->url.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", sink->url.db);
        err = rs_redis_simple(sink, 2, (const char *[]){"SELECT", db},
                              "SELECT", errstr, errstr_size);
        if (err != RS_OK) goto fail;
    }
    if (sink->ever_connected) {
        RS_INC(sink->c.reconnects);
        rs_info("sink", "redis %s: reconnected", sink->endpoint);
    }
    sink->ever_connected = 1;
    return RS_OK;
fail:
    rs_redis_drop(sink);
    return err;
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
    rs_redis_url_parse(conf->url, &sink->url, NULL, 0);
    if (conf->password_env[0])
        rs_strlcpy(sink->password, getenv(conf->password_env),
                   sizeof(sink->password));
    else
        rs_strlcpy(sink->password, sink->url.password, sizeof(sink->password));
    if (sink->url.is_unix)
        snprintf(sink->endpoint, sizeof(sink->endpoint), "unix:%s",
                 sink->url.path);
    else
        snprintf(sink->endpoint, sizeof(sink->endpoint), "%s:%d/%d",
                 sink->url.host, sink->url.port, sink->url.db);
    snprintf(sink->ttl_arg, sizeof(sink->ttl_arg), "%" PRId64, conf->ttl_ms);
    snprintf(sink->cap_arg, sizeof(sink->cap_arg), "%" PRId64,
             -(conf->entity_index_max + 1));
    sink->json = rs_malloc(RS_ENCODE_MAX);
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
    rs_redis_drop(sink);
    rs_free(sink->json);
    memset(sink->password, 0, sizeof(sink->password));
    memset(&sink->url, 0, sizeof(sink->url));
    rs_free(sink);
}

/* ------------------------------------------------------------------ write */

/* Key "<prefix>score:<event_id>" / "<prefix>entity:<id>:scores". */
static size_t rs_redis_key(char *buf, size_t size, const char *prefix,
                           const char *a, const char *b, const char *c) {
    int n = snprintf(buf, size, "%s%s%s%s", prefix, a, b, c);
    return n < 0 ? 0 : RS_MIN((size_t)n, size - 1);
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
    char skey[RS_ID_MAX + 48], zkey[RS_ID_MAX + 56], tbuf[24];
    size_t skl, zkl, tl;
    int ncmds = 0;
    rs_err_t err = RS_OK;
    const size_t ttl_len = strlen(sink->ttl_arg), cap_len = strlen(sink->cap_arg);

    if (n <= 0) return RS_OK;
    if ((err = rs_redis_connect(sink, errstr, errstr_size)) != RS_OK)
        return err;
    for (int i = 0; i < n; i++) {
        const rs_score_t *sc = &scores[i];
        int jl = rs_score_to_json(sc, sink->json, RS_ENCODE_MAX);
        if (jl < 0) {
            err = rs_errf(errstr, errstr_size, RS_ERR_TOOBIG,
                          "redis: score of '%.64s' does not encode",
                          sc->event_id);
            break;
        }
        skl = rs_redis_key(skey, sizeof(skey), sink->conf.key_prefix, "score:",
                           sc->event_id, "");
        zkl = rs_redis_key(zkey, sizeof(zkey), sink->conf.key_prefix,
                           "entity:", sc->entity_id, ":scores");
        tl = (size_t)snprintf(tbuf, sizeof(tbuf), "%" PRId64,
                              sc->event_time_ms);
        size_t idl = strlen(sc->event_id);
        /* NX: the first decision recorded for an event stays the record; a
         * replay after a crash (at-least-once input) cannot replace it with
         * a different one.  The entity index below is idempotent as is. */
        const char *set[] = {"SET", skey, sink->json, "PX", sink->ttl_arg,
                             "NX"};
        const size_t setl[] = {3, skl, (size_t)jl, 2, ttl_len, 2};
        const char *zadd[] = {"ZADD", zkey, tbuf, sc->event_id};
        const size_t zaddl[] = {4, zkl, tl, idl};
        const char *pexp[] = {"PEXPIRE", zkey, sink->ttl_arg};
        const size_t pexpl[] = {7, zkl, ttl_len};
        const char *trim[] = {"ZREMRANGEBYRANK", zkey, "0", sink->cap_arg};
        const size_t triml[] = {15, zkl, 1, cap_len};
        if (redisAppendCommandArgv(sink->ctx, 6, set, setl) != REDIS_OK ||
            redisAppendCommandArgv(sink->ctx, 4, zadd, zaddl) != REDIS_OK ||
            redisAppendCommandArgv(sink->ctx, 3, pexp, pexpl) != REDIS_OK ||
            redisAppendCommandArgv(sink->ctx, 4, trim, triml) != REDIS_OK)
            /* Only fails on OOM; the half-appended pipeline is unusable. */
            return rs_redis_io_error(sink, "append", errstr, errstr_size);
        ncmds += 4;
    }
    rs_err_t rerr = rs_redis_read_replies(sink, ncmds, errstr, errstr_size);
    if (rerr == RS_ERR_IO) return rerr;
    if (err == RS_OK) err = rerr;
    if (err == RS_OK) {
        RS_INC(sink->c.writes);
        RS_ADD(sink->c.scores, (uint64_t)n);
    }
    return err;
}

/* ------------------------------------------------------------------- reads */

/* One command with reconnect; the reply (non-error) goes to *out. */
static rs_err_t rs_redis_query(rs_sink_redis_t *sink, int argc,
                               const char **argv, const char *what,
                               redisReply **out, char *errstr,
                               size_t errstr_size) {
    rs_err_t err = rs_redis_connect(sink, errstr, errstr_size);
    *out = NULL;
    if (err != RS_OK) return err;
    redisReply *r = redisCommandArgv(sink->ctx, argc, argv, NULL);
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

void rs_sink_redis_stats(const rs_sink_redis_t *sink,
                         rs_sink_redis_stats_t *st) {
    rs_sink_redis_t *s = (rs_sink_redis_t *)sink;
    st->writes = RS_LOAD(s->c.writes);
    st->scores = RS_LOAD(s->c.scores);
    st->io_errors = RS_LOAD(s->c.io_errors);
    st->errors = RS_LOAD(s->c.errors);
    st->reconnects = RS_LOAD(s->c.reconnects);
}
